"""Pub/sub as a client sees it: Redis 7.0's wire bytes in RESP2 and RESP3,
over raw sockets, against a real redis-server side by side, and through
redis-py's PubSub (SPEC §6).
"""

import re
import socket
import time

import pytest

from helpers import wait_for


SYNC = b"PING zz-sync\r\n"
SYNC_REPLIES = (b"*2\r\n$4\r\npong\r\n$7\r\nzz-sync\r\n",   # RESP2, subscribed
                b">2\r\n$4\r\npong\r\n$7\r\nzz-sync\r\n",
                b"$7\r\nzz-sync\r\n")


class Wire:
    """A raw connection that returns exactly the bytes a request caused.

    Each request is followed by `PING zz-sync`; everything received up to
    that PING's answer belongs to the request (and to any message pushed
    before it), and nothing after it has been sent yet.
    """

    def __init__(self, port, timeout=10):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""

    def ask(self, data=b""):
        self.sock.sendall(data + SYNC)
        while not self.buf.endswith(SYNC_REPLIES):
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError(self.buf)
            self.buf += chunk
        out, self.buf = self.buf, b""
        for r in SYNC_REPLIES:
            if out.endswith(r):
                return out[:-len(r)]

    def ask_and_close(self, data):
        """Bytes until the server closes the connection."""
        self.sock.sendall(data)
        out = b""
        while True:
            chunk = self.sock.recv(65536)
            if not chunk:
                return out
            out += chunk

    def close(self):
        self.sock.close()


@pytest.fixture
def wire(daemon):
    conns = []

    def make():
        w = Wire(daemon.port)
        conns.append(w)
        return w
    yield make
    for w in conns:
        w.close()


def frame(*items, push=False):
    """A RESP2 array (or RESP3 push) of bulk strings, ints and None."""
    out = (b">%d\r\n" if push else b"*%d\r\n") % len(items)
    for x in items:
        if x is None:
            out += b"_\r\n" if push else b"$-1\r\n"
        elif isinstance(x, int):
            out += b":%d\r\n" % x
        else:
            out += b"$%d\r\n%s\r\n" % (len(x), x)
    return out


# ---- RESP2, byte for byte -----------------------------------------------

def test_subscribe_confirms_each_channel_with_running_count_even_duplicates(wire):
    a = wire()
    assert a.ask(b"SUBSCRIBE a b a\r\n") == (
        frame(b"subscribe", b"a", 1) + frame(b"subscribe", b"b", 2) +
        frame(b"subscribe", b"a", 2))


def test_unsubscribe_with_nothing_subscribed_answers_one_nil_reply(wire):
    a = wire()
    assert a.ask(b"UNSUBSCRIBE\r\n") == b"*3\r\n$11\r\nunsubscribe\r\n$-1\r\n:0\r\n"
    assert a.ask(b"PUNSUBSCRIBE\r\n") == b"*3\r\n$12\r\npunsubscribe\r\n$-1\r\n:0\r\n"
    # Named channels are confirmed even when not subscribed.
    assert a.ask(b"UNSUBSCRIBE x y\r\n") == (frame(b"unsubscribe", b"x", 0) +
                                             frame(b"unsubscribe", b"y", 0))


def test_ping_while_subscribed_answers_pong_array(wire):
    a = wire()
    a.ask(b"SUBSCRIBE a\r\n")
    assert a.ask(b"PING\r\n") == b"*2\r\n$4\r\npong\r\n$0\r\n\r\n"
    assert a.ask(b"PING hello\r\n") == b"*2\r\n$4\r\npong\r\n$5\r\nhello\r\n"


def test_other_commands_while_subscribed_get_redis7_error(wire):
    a = wire()
    a.ask(b"PSUBSCRIBE p*\r\n")
    assert a.ask(b"ECHO x\r\nPUBSUB NUMPAT\r\n") == (
        b"-ERR Can't execute 'echo': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / "
        b"RESET are allowed in this context\r\n"
        b"-ERR Can't execute 'pubsub|numpat': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / "
        b"QUIT / RESET are allowed in this context\r\n")
    # Leaving the last subscription leaves the subscribed context.
    assert a.ask(b"PUNSUBSCRIBE p*\r\nECHO x\r\n") == (
        frame(b"punsubscribe", b"p*", 0) + b"$1\r\nx\r\n")


def test_reset_unsubscribes_everything(wire):
    a, b = wire(), wire()
    a.ask(b"SUBSCRIBE a\r\nPSUBSCRIBE a*\r\n")
    assert a.ask(b"RESET\r\nECHO x\r\n") == b"+RESET\r\n$1\r\nx\r\n"
    assert b.ask(b"PUBLISH a m\r\nPUBSUB NUMPAT\r\n") == b":0\r\n:0\r\n"


def test_quit_while_subscribed_closes_after_ok(wire, daemon):
    a = wire()
    a.ask(b"SUBSCRIBE a\r\n")
    assert a.ask_and_close(b"QUIT\r\nPING\r\n") == b"+OK\r\n"
    r = daemon.client(protocol=2)
    deadline = time.monotonic() + 30   # a ceiling for a loaded machine
    while r.pubsub_numsub("a") != [(b"a", 0)]:
        assert time.monotonic() < deadline
        time.sleep(0.01)


def test_message_and_pmessage_frames(wire):
    a, b = wire(), wire()
    a.ask(b"SUBSCRIBE news.art\r\nPSUBSCRIBE news.*\r\n")
    assert b.ask(b"PUBLISH news.art hello\r\nPUBLISH news.tech x\r\nPUBLISH other y\r\n") == \
        b":2\r\n:1\r\n:0\r\n"
    assert a.ask() == (
        frame(b"message", b"news.art", b"hello") +
        frame(b"pmessage", b"news.*", b"news.art", b"hello") +
        frame(b"pmessage", b"news.*", b"news.tech", b"x"))


def test_binary_safe_channel_and_message(wire):
    a, b = wire(), wire()
    a.ask(b"*2\r\n$9\r\nSUBSCRIBE\r\n$4\r\n\r\n\x00\xff\r\n")
    assert b.ask(b"*3\r\n$7\r\nPUBLISH\r\n$4\r\n\r\n\x00\xff\r\n$3\r\n\r\n*\r\n") == b":1\r\n"
    assert a.ask() == frame(b"message", b"\r\n\x00\xff", b"\r\n*")


def test_glob_rules_in_psubscribe(wire):
    a, b = wire(), wire()
    a.ask(b"PSUBSCRIBE h?llo h[^e]llo h[a-b]x h\\*\r\n")
    assert b.ask(b"PUBLISH hello 1\r\nPUBLISH hallo 2\r\nPUBLISH hbx 3\r\nPUBLISH h* 4\r\n"
                 b"PUBLISH hx 5\r\n") == b":1\r\n:2\r\n:1\r\n:1\r\n:0\r\n"
    assert a.ask() == (frame(b"pmessage", b"h?llo", b"hello", b"1") +
                       frame(b"pmessage", b"h?llo", b"hallo", b"2") +
                       frame(b"pmessage", b"h[^e]llo", b"hallo", b"2") +
                       frame(b"pmessage", b"h[a-b]x", b"hbx", b"3") +
                       frame(b"pmessage", b"h\\*", b"h*", b"4"))


def test_pubsub_introspection(wire):
    a, b = wire(), wire()
    a.ask(b"SUBSCRIBE chan other\r\nPSUBSCRIBE c* c*\r\n")
    assert b.ask(b"PUBSUB NUMSUB chan nope\r\nPUBSUB NUMSUB\r\nPUBSUB NUMPAT\r\n"
                 b"PUBSUB CHANNELS c*\r\nPUBSUB CHANNELS x*\r\n") == (
        b"*4\r\n$4\r\nchan\r\n:1\r\n$4\r\nnope\r\n:0\r\n*0\r\n:1\r\n"
        b"*1\r\n$4\r\nchan\r\n*0\r\n")
    assert sorted(b.ask(b"PUBSUB CHANNELS\r\n").split(b"\r\n")) == sorted(
        b"*2\r\n$4\r\nchan\r\n$5\r\nother\r\n".split(b"\r\n"))
    assert b.ask(b"PUBSUB CHANNELS a b\r\nPUBSUB NUMPAT x\r\nPUBSUB foo\r\nPUBSUB\r\n") == (
        b"-ERR unknown subcommand or wrong number of arguments for 'CHANNELS'. Try PUBSUB HELP.\r\n"
        b"-ERR wrong number of arguments for 'pubsub|numpat' command\r\n"
        b"-ERR unknown subcommand 'foo'. Try PUBSUB HELP.\r\n"
        b"-ERR wrong number of arguments for 'pubsub' command\r\n")


def test_sharded_channels_are_listed_apart(wire):
    """(Order is the hash table's in Redis, so this is not side by side.)"""
    a, b = wire(), wire()
    a.ask(b"SSUBSCRIBE s1 s2\r\nSUBSCRIBE c1\r\n")
    listing = b.ask(b"PUBSUB SHARDCHANNELS\r\n")
    assert listing.startswith(b"*2\r\n") and sorted(listing[4:].split(b"\r\n")[1::2]) == [b"s1", b"s2"]
    assert b.ask(b"PUBSUB CHANNELS\r\n") == b"*1\r\n$2\r\nc1\r\n"
    assert b.ask(b"INFO stats\r\n").count(b"pubsubshard_channels:2\r\n") == 1
    assert re.search(rb"sub=1 psub=0 ssub=2 ", b.ask(b"CLIENT LIST\r\n"))


def test_pubsub_help(wire):
    assert wire().ask(b"PUBSUB HELP\r\n") == (
        b"*14\r\n"
        b"+PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:\r\n"
        b"+CHANNELS [<pattern>]\r\n"
        b"+    Return the currently active channels matching a <pattern> (default: '*').\r\n"
        b"+NUMPAT\r\n"
        b"+    Return number of subscriptions to patterns.\r\n"
        b"+NUMSUB [<channel> ...]\r\n"
        b"+    Return the number of subscribers for the specified channels, excluding\r\n"
        b"+    pattern subscriptions(default: no channels).\r\n"
        b"+SHARDCHANNELS [<pattern>]\r\n"
        b"+    Return the currently active shard level channels matching a <pattern> (default: '*').\r\n"
        b"+SHARDNUMSUB [<shardchannel> ...]\r\n"
        b"+    Return the number of subscribers for the specified shard level channel(s)\r\n"
        b"+HELP\r\n"
        b"+    Prints this help.\r\n")


def test_arity_errors(wire):
    assert wire().ask(b"SUBSCRIBE\r\nPSUBSCRIBE\r\nPUBLISH a\r\n") == (
        b"-ERR wrong number of arguments for 'subscribe' command\r\n"
        b"-ERR wrong number of arguments for 'psubscribe' command\r\n"
        b"-ERR wrong number of arguments for 'publish' command\r\n")


# ---- RESP3 ------------------------------------------------------------------------

def test_resp3_confirmations_and_messages_are_push_frames(wire):
    a, b = wire(), wire()
    assert a.ask(b"HELLO 3\r\n").startswith(b"%7\r\n")
    assert a.ask(b"SUBSCRIBE a b a\r\n") == (
        frame(b"subscribe", b"a", 1, push=True) + frame(b"subscribe", b"b", 2, push=True) +
        frame(b"subscribe", b"a", 2, push=True))
    a.ask(b"PSUBSCRIBE x*\r\n")
    b.ask(b"PUBLISH a m\r\nPUBLISH xy m2\r\n")
    assert a.ask() == (frame(b"message", b"a", b"m", push=True) +
                       frame(b"pmessage", b"x*", b"xy", b"m2", push=True))
    assert a.ask(b"UNSUBSCRIBE a b\r\nUNSUBSCRIBE\r\nPUNSUBSCRIBE x*\r\nPUNSUBSCRIBE\r\n") == (
        frame(b"unsubscribe", b"a", 2, push=True) + frame(b"unsubscribe", b"b", 1, push=True) +
        b">3\r\n$11\r\nunsubscribe\r\n_\r\n:1\r\n" +
        frame(b"punsubscribe", b"x*", 0, push=True) +
        b">3\r\n$12\r\npunsubscribe\r\n_\r\n:0\r\n")


def test_resp3_subscriber_may_run_any_command(wire):
    a = wire()
    a.ask(b"HELLO 3\r\n")
    a.ask(b"SUBSCRIBE a\r\n")
    assert a.ask(b"PING\r\nECHO x\r\nPUBSUB NUMSUB a\r\n") == (
        b"+PONG\r\n$1\r\nx\r\n*2\r\n$1\r\na\r\n:1\r\n")


def test_switching_protocol_while_subscribed(wire):
    a, b = wire(), wire()
    a.ask(b"HELLO 3\r\nSUBSCRIBE a\r\n")
    a.ask(b"HELLO 2\r\n")
    b.ask(b"PUBLISH a m\r\n")
    assert a.ask() == frame(b"message", b"a", b"m")
    assert a.ask(b"HELLO 3\r\n").startswith(b"-ERR Can't execute 'hello'")


# ---- side by side with redis-server -------------------------------------------------

# Scripts of (connection, request); the transcript of what each connection
# receives must be byte-identical on sakerd and redis-server. One pattern
# per published channel at most, since Redis orders patterns by hash.
SCRIPTS = {
    "duplicates": [("a", b"SUBSCRIBE a b a\r\nPSUBSCRIBE p p\r\n"),
                   ("a", b"UNSUBSCRIBE b b\r\nPUNSUBSCRIBE p q\r\n")],
    "nothing-subscribed": [("a", b"UNSUBSCRIBE\r\nPUNSUBSCRIBE\r\nUNSUBSCRIBE a\r\n")],
    "ping": [("a", b"SUBSCRIBE a\r\nPING\r\nPING x\r\nPING x y\r\n")],
    "forbidden": [("a", b"SUBSCRIBE a\r\nECHO x\r\nSELECT 1\r\nPUBLISH a b\r\nCLIENT ID\r\n"
                        b"NOSUCH\r\nSUBSCRIBE\r\n")],
    "reset": [("a", b"SUBSCRIBE a\r\nPSUBSCRIBE b*\r\nRESET\r\nECHO x\r\n"),
              ("b", b"PUBLISH a m\r\nPUBLISH bb m\r\nPUBSUB NUMSUB a\r\nPUBSUB NUMPAT\r\n")],
    "unsubscribe-last-leaves-context": [
        ("a", b"SUBSCRIBE a\r\nPSUBSCRIBE p\r\nUNSUBSCRIBE a\r\nECHO x\r\nPUNSUBSCRIBE\r\nECHO y\r\n")],
    "messages": [("a", b"SUBSCRIBE ch\r\nPSUBSCRIBE c?\r\n"),
                 ("b", b"PUBLISH ch 1\r\nPUBLISH cx 2\r\nPUBLISH ch \r\nPUBLISH zz 3\r\n"),
                 ("a", b"PING\r\n")],
    "introspection": [("a", b"SUBSCRIBE chan\r\nPSUBSCRIBE x* y*\r\n"),
                      ("b", b"PUBSUB NUMSUB chan x\r\nPUBSUB NUMSUB\r\nPUBSUB NUMPAT\r\n"
                            b"PUBSUB CHANNELS\r\nPUBSUB CHANNELS c*\r\nPUBSUB CHANNELS z\r\n"
                            b"PUBSUB CHANNELS a b\r\nPUBSUB NUMPAT x\r\nPUBSUB nope\r\n")],
    "resp3": [("a", b"HELLO 3\r\n"),
              ("a", b"SUBSCRIBE a b\r\nPSUBSCRIBE x*\r\nPING\r\nECHO e\r\n"),
              ("b", b"PUBLISH a 1\r\nPUBLISH xa 2\r\n"),
              ("a", b"UNSUBSCRIBE a\r\nUNSUBSCRIBE b\r\nUNSUBSCRIBE\r\nPUNSUBSCRIBE\r\n"
                    b"PUNSUBSCRIBE\r\nHELLO 2\r\n"),
              ("a", b"SUBSCRIBE c\r\nHELLO 3\r\n")],
    "sharded": [
        ("a", b"SSUBSCRIBE s1 s2 s1\r\nSUBSCRIBE c1\r\nPSUBSCRIBE p*\r\nPING\r\nECHO x\r\n"),
        ("b", b"SPUBLISH s1 m1\r\nSPUBLISH c1 m2\r\nPUBLISH s1 m3\r\nPUBLISH c1 m4\r\n"
              b"SPUBLISH nobody m5\r\nPUBSUB SHARDCHANNELS s1\r\n"
              b"PUBSUB SHARDCHANNELS x*\r\nPUBSUB SHARDNUMSUB s1 s2 s3\r\nPUBSUB SHARDNUMSUB\r\n"
              b"PUBSUB NUMSUB s1 c1\r\nPUBSUB CHANNELS\r\nPUBSUB SHARDCHANNELS a b\r\n"
              b"SPUBLISH s1\r\nSSUBSCRIBE\r\n"),
        ("a", b"SUNSUBSCRIBE s1\r\nUNSUBSCRIBE\r\nPUNSUBSCRIBE\r\nECHO y\r\nSUNSUBSCRIBE\r\n"
              b"SUNSUBSCRIBE\r\nECHO z\r\n"),
        ("c", b"HELLO 3\r\n"),
        ("c", b"SSUBSCRIBE s9\r\nSPUBLISH s9 self\r\nECHO ok\r\nRESET\r\n"),
        ("b", b"SPUBLISH s9 gone\r\nPUBSUB SHARDNUMSUB s9\r\n")],
    # No pattern subscribed: PUBLISHes are batched (pubsub.Fanout); every
    # subscriber must still see every unit in Redis's order, across
    # channels, protocols, other commands and the 64 KB flush.
    "batched-fanout": [
        ("a", b"SUBSCRIBE a b\r\n"),
        ("c", b"HELLO 3\r\n"),
        ("c", b"SUBSCRIBE a\r\n"),
        ("b", b"PUBLISH a 1\r\nPUBLISH b 2\r\nPUBLISH a 3\r\nPUBLISH a 4\r\nPUBLISH none 5\r\n"
              b"ECHO x\r\nPUBLISH a 6\r\nPUBSUB NUMSUB a b\r\nPUBLISH a\r\nPUBLISH b 7\r\n"),
        ("c", b"PUBLISH a self\r\nPUBLISH b 8\r\nECHO y\r\n"),
        ("b", b"".join(b"PUBLISH a %0100d\r\n" % i for i in range(1500)) + b"PUBLISH b end\r\n"),
        ("a", b"UNSUBSCRIBE a\r\n"),
        ("b", b"PUBLISH a 9\r\nPUBLISH b 10\r\n")],
}


def run_script(port, script):
    conns = {}
    transcript = []
    try:
        for name, request in script:
            for other in conns:          # messages pushed before this step
                transcript.append((other, conns[other].ask()))
            conn = conns.setdefault(name, Wire(port))
            transcript.append((name, conn.ask(request)))
        for name in conns:
            transcript.append((name, conns[name].ask()))
    finally:
        for c in conns.values():
            c.close()
    # HELLO's reply carries the connection id, which differs between servers.
    return [(n, re.sub(rb"\$2\r\nid\r\n:\d+\r\n", b"$2\r\nid\r\n:N\r\n", t))
            for n, t in transcript]


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_same_bytes_as_redis_server(daemon, redis_server_port, name):
    want = run_script(redis_server_port, SCRIPTS[name])
    got = run_script(daemon.port, SCRIPTS[name])
    assert got == want


# ---- redis-py ----------------------------------------------------------------------------

@pytest.mark.parametrize("protocol", [2, 3])
def test_redis_py_pubsub(daemon, protocol):
    r = daemon.client(protocol=protocol)
    p = r.pubsub()
    p.subscribe("a", "b")
    p.psubscribe("x*")
    got = [p.get_message(timeout=30) for _ in range(3)]
    assert [(m["type"], m["channel"], m["data"]) for m in got] == [
        ("subscribe", b"a", 1), ("subscribe", b"b", 2), ("psubscribe", b"x*", 3)]
    assert r.publish("a", "hi") == 1
    assert r.publish("xy", "yo") == 1
    assert p.get_message(timeout=30) == {"type": "message", "pattern": None, "channel": b"a",
                                        "data": b"hi"}
    assert p.get_message(timeout=30) == {"type": "pmessage", "pattern": b"x*", "channel": b"xy",
                                        "data": b"yo"}
    assert r.pubsub_numsub("a", "b", "c") == [(b"a", 1), (b"b", 1), (b"c", 0)]
    assert r.pubsub_numpat() == 1
    assert sorted(r.pubsub_channels()) == [b"a", b"b"]
    p.unsubscribe()
    p.punsubscribe()
    got = [p.get_message(timeout=30) for _ in range(3)]
    assert [(m["type"], m["channel"], m["data"]) for m in got] == [
        ("unsubscribe", b"a", 2), ("unsubscribe", b"b", 1), ("punsubscribe", b"x*", 0)]
    p.close()
    assert r.pubsub_numsub("a") == [(b"a", 0)]


def test_redis_py_run_in_thread_handler(daemon):
    r = daemon.client(protocol=3)
    got = []
    p = r.pubsub()
    p.subscribe(**{"jobs": lambda m: got.append(m["data"])})
    worker = p.run_in_thread(sleep_time=0.01)
    try:
        deadline = time.monotonic() + 30   # a ceiling for a loaded machine
        while r.pubsub_numsub("jobs") != [(b"jobs", 1)]:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        for i in range(100):
            r.publish("jobs", str(i))
        while len(got) < 100:
            assert time.monotonic() < deadline
            time.sleep(0.01)
    finally:
        worker.stop()
        worker.join(5)
    assert got == [str(i).encode() for i in range(100)]


# ---- INFO and CLIENT LIST --------------------------------------------------------------

def test_info_and_client_list_count_subscriptions(daemon, wire):
    a, b = wire(), wire()
    a.ask(b"SUBSCRIBE c1 c2\r\nPSUBSCRIBE p*\r\n")
    b.ask(b"CLIENT SETNAME watcher\r\nSUBSCRIBE c1\r\n")
    r = daemon.client(protocol=2)
    stats = r.info("stats")
    assert (stats["pubsub_channels"], stats["pubsub_patterns"]) == (2, 1)
    assert r.info("clients")["pubsub_clients"] == 2
    listing = r.client_list()
    mine = {c["name"]: c for c in listing}
    assert (mine["watcher"]["sub"], mine["watcher"]["psub"], mine["watcher"]["flags"]) == \
        ("1", "0", "P")
    other = [c for c in listing if c["sub"] == "2"]
    assert len(other) == 1 and other[0]["psub"] == "1" and other[0]["flags"] == "P"
    assert sorted(c["name"] for c in r.client_list(_type="pubsub")) == ["", "watcher"]
    a.ask(b"UNSUBSCRIBE\r\nPUNSUBSCRIBE\r\n")
    stats = r.info("stats")
    assert (stats["pubsub_channels"], stats["pubsub_patterns"]) == (1, 0)
    assert r.info("clients")["pubsub_clients"] == 1
    assert r.client_kill_filter(_type="pubsub") == 1
    assert r.info("clients")["pubsub_clients"] == 0


SPIN_200MS = (b"EVAL \"local t = redis.call('TIME') local t0 = t[1] * 1e6 + t[2] "
              b"repeat t = redis.call('TIME') until t[1] * 1e6 + t[2] - t0 > 200000 "
              b"return 1\" 0\r\n")


def test_subscriber_command_in_same_loop_turn_as_batched_publish(wire):
    """A RESP3 subscriber's PING read in the same turn of the loop as a
    batch of PUBLISHes (the server is held by a 200 ms script while both
    arrive, the publisher's first) gets the messages before its pong: the
    open batch is flushed before the subscriber's command runs."""
    sub, pub = wire(), wire()
    sub.ask(b"HELLO 3\r\n")
    assert sub.ask(b"SUBSCRIBE a\r\n") == frame(b"subscribe", b"a", 1, push=True)
    pub.sock.sendall(SPIN_200MS)
    time.sleep(0.05)   # the script is running: it holds the loop for 200 ms
    pub.sock.sendall(b"PUBLISH a 1\r\nPUBLISH a 2\r\n")
    time.sleep(0.05)
    sub.sock.sendall(b"PING\r\n")
    assert pub.ask() == b":1\r\n:1\r\n:1\r\n"
    assert sub.ask() == (frame(b"message", b"a", b"1", push=True) +
                         frame(b"message", b"a", b"2", push=True) + b"+PONG\r\n")


def _until_ok(sock, data):
    """Send data; every byte received until it ends with '+OK'."""
    sock.sendall(data)
    out = b""
    while not out.endswith(b"+OK\r\n"):
        chunk = sock.recv(65536)
        if not chunk:
            raise EOFError(out)
        out += chunk
    return out


def _reply_off_transcript(port):
    sub, pub = Wire(port), Wire(port)
    try:
        sub.ask(b"HELLO 3\r\n")   # RESP3: CLIENT REPLY ON is allowed while subscribed
        sub.sock.sendall(b"CLIENT REPLY OFF\r\nSUBSCRIBE a\r\nPING\r\n")
        wait_for(lambda: pub.ask(b"PUBSUB NUMSUB a\r\n").endswith(b":1\r\n"))
        published = pub.ask(b"PUBLISH a m1\r\n")
        got = _until_ok(sub.sock, b"CLIENT REPLY ON\r\n")
        skip = _until_ok(sub.sock, b"CLIENT REPLY SKIP\r\nUNSUBSCRIBE a\r\nECHO x\r\n"
                                   b"CLIENT REPLY ON\r\n")
        return published, got, skip
    finally:
        sub.close()
        pub.close()


def test_pubsub_frames_ignore_client_reply_off_as_redis(daemon, redis_server_port):
    """Redis 7 marks pub/sub frames CLIENT_PUSHING: CLIENT REPLY OFF/SKIP
    silence command replies (PING, ECHO here) but not subscribe
    confirmations nor messages."""
    want = _reply_off_transcript(redis_server_port)
    assert want[1] == (frame(b"subscribe", b"a", 1, push=True) +
                       frame(b"message", b"a", b"m1", push=True) + b"+OK\r\n")
    assert _reply_off_transcript(daemon.port) == want
