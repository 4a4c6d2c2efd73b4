"""Keyspace notifications (notify.py): the frames a subscriber of
__keyspace@<db>__ and __keyevent@<db>__ receives, compared byte for byte with
redis-server 7.0.15 for a representative set of writes, lazy and active
expiry, the `new` class and FLUSHDB; and `notify-keyspace-events` as
CONFIG GET and SET show it.
"""

import time

import pytest

from helpers import Daemon, RawConn, encode_command, start_redis_server, wait_for


@pytest.fixture(scope="module")
def sakerd(tmp_path_factory):
    d = Daemon(tmp_path_factory.mktemp("notify"), "hz 1\n")
    yield d
    d.stop()


@pytest.fixture(scope="module")
def redis_port():
    proc, port = start_redis_server("--hz", "1")
    yield port
    proc.terminate()
    proc.wait(10)


MARK = "__keyspace@0__:zz-end-of-test"


def published_frames(port, classes, commands, protocol=2, pause_after=()):
    """Every frame a pattern subscriber gets while `commands` run, in order.

    The replies of the writing connection come along, as (command, reply),
    to show where each event falls for a RESP3 client that writes and
    listens on one connection."""
    a = RawConn(("127.0.0.1", port))
    a.call("FLUSHALL")
    assert a.call("CONFIG", "SET", "notify-keyspace-events", classes) == b"+OK\r\n"
    sub = RawConn(("127.0.0.1", port))
    if protocol == 3:
        sub.call("HELLO", "3")
    sub.send(encode_command("PSUBSCRIBE", "__key*__:*"))
    sub.read_wire()
    out = []
    for i, args in enumerate(commands):
        out.append(("reply", " ".join(args), a.call(*args)))
        if i in pause_after:
            time.sleep(0.1)     # a PX 20 key's time passes
    a.call("PUBLISH", MARK, "done")
    while True:
        frame = sub.read_wire()
        out.append(("frame", frame))
        if MARK.encode() in frame:
            break
    a.call("CONFIG", "SET", "notify-keyspace-events", "")
    a.close()
    sub.close()
    return out


WRITES = [
    ("SET", "k", "v"), ("SET", "k", "v2", "EX", "100"), ("SET", "k", "v3", "NX"),
    ("GETSET", "k", "v4"), ("APPEND", "k", "x"), ("APPEND", "k2", "y"), ("INCR", "n"),
    ("INCRBY", "n", "5"), ("INCRBYFLOAT", "n", "1.5"), ("MSET", "a", "1", "b", "2"),
    ("MSETNX", "a", "1", "c", "3"), ("SETNX", "d", "4"), ("SETEX", "e", "100", "5"),
    ("GETDEL", "e"), ("DEL", "k", "nokey", "a"), ("UNLINK", "b"),
    ("EXPIRE", "c", "100"), ("PERSIST", "c"), ("PEXPIRE", "c", "0"), ("EXPIRE", "nokey", "10"),
    ("LPUSH", "l", "a", "b", "c"), ("RPUSH", "l", "d"), ("LPUSHX", "nol", "x"), ("RPOP", "l"),
    ("LPOP", "l", "2"), ("LMOVE", "l", "l2", "LEFT", "RIGHT"), ("RPOPLPUSH", "l2", "l3"),
    ("RPUSH", "t", "1", "2", "3"), ("LTRIM", "t", "0", "0"), ("LTRIM", "t", "5", "10"),
    ("LMPOP", "1", "l3", "LEFT", "COUNT", "5"), ("BLPOP", "nolist", "l3", "0.01"),
    ("HSET", "h", "f", "v", "g", "w"), ("HSETNX", "h", "f", "x"), ("HSETNX", "h", "z", "x"),
    ("HINCRBY", "h", "n", "1"), ("HINCRBYFLOAT", "h", "n", "0.5"), ("HDEL", "h", "f", "nof"),
    ("HDEL", "h", "g", "z", "n"), ("SET", "r", "1", "PX", "100000"), ("RENAME", "r", "r2"),
    ("SET", "r3", "x"), ("RENAME", "r2", "r3"), ("RENAMENX", "r3", "r4"),
    ("RENAME", "r4", "r4"), ("FLUSHDB",), ("SET", "after", "flush"),
]


@pytest.mark.parametrize("classes", ["KEA", "AKEn", "K$", "Elgx", "Kh", "En"])
def test_frames_for_writes_match_redis_server(sakerd, redis_port, classes):
    ours = published_frames(sakerd.port, classes, WRITES)
    theirs = published_frames(redis_port, classes, WRITES)
    assert ours == theirs


def test_resp3_writer_sees_its_events_where_redis_puts_them(sakerd, redis_port):
    """One RESP3 connection both subscribed and writing: pushes and replies
    interleave in Redis's order (the event before or after the reply, as
    each command publishes it)."""
    seen = {}
    for port in (sakerd.port, redis_port):
        a = RawConn(("127.0.0.1", port))
        a.call("HELLO", "3")
        a.call("FLUSHALL")
        a.call("CONFIG", "SET", "notify-keyspace-events", "KEA")
        a.call("SUBSCRIBE", "__keyspace@0__:k", "__keyspace@0__:h")
        a.read_wire()   # the second channel's confirmation
        wire = []
        for args in [("SET", "k", "v"), ("HSET", "h", "f", "v"), ("EXPIRE", "k", "100"),
                     ("DEL", "k"), ("PING",)]:
            a.send(encode_command(*args))
            wire.append(a.read_wire())
            if args == ("SET", "k", "v") or args[0] in ("HSET", "EXPIRE", "DEL"):
                wire.append(a.read_wire())
        a.call("CONFIG", "SET", "notify-keyspace-events", "")
        seen[port] = wire
        a.close()
    assert seen[sakerd.port] == seen[redis_port]
    assert seen[sakerd.port][:2] == [b">3\r\n$7\r\nmessage\r\n$16\r\n__keyspace@0__:k\r\n$3\r\nset\r\n",
                                     b"+OK\r\n"]


def test_lazy_and_active_expiry_publish_expired(sakerd, redis_port):
    # hz 1 on both: the active cycle runs once a second, so the GET after
    # 100 ms almost always finds the key first (lazy); either way the
    # frames are the same, and the last key is left to the active cycle.
    commands = [("SET", "lazy", "v", "PX", "20"), ("GET", "lazy"), ("EXISTS", "lazy")]
    ours = published_frames(sakerd.port, "KEA", commands, pause_after=(0,))
    theirs = published_frames(redis_port, "KEA", commands, pause_after=(0,))
    assert ours == theirs
    assert ("frame", b"*4\r\n$8\r\npmessage\r\n$10\r\n__key*__:*\r\n$22\r\n__keyevent@0__:expired"
                     b"\r\n$4\r\nlazy\r\n") in ours
    for port in (sakerd.port, redis_port):
        a = RawConn(("127.0.0.1", port))
        a.call("CONFIG", "SET", "notify-keyspace-events", "Ex")
        sub = RawConn(("127.0.0.1", port))
        sub.call("SUBSCRIBE", "__keyevent@0__:expired")
        a.call("SET", "active", "v", "PX", "20")
        sub.sock.settimeout(5)
        assert sub.read_wire() == (b"*3\r\n$7\r\nmessage\r\n$22\r\n__keyevent@0__:expired\r\n"
                                   b"$6\r\nactive\r\n")
        a.call("CONFIG", "SET", "notify-keyspace-events", "")
        a.close()
        sub.close()


def test_blocked_client_served_publishes_the_pop(sakerd, redis_port):
    seen = {}
    for port in (sakerd.port, redis_port):
        a = RawConn(("127.0.0.1", port))
        a.call("FLUSHALL")
        a.call("CONFIG", "SET", "notify-keyspace-events", "El")
        sub = RawConn(("127.0.0.1", port))
        sub.call("PSUBSCRIBE", "__keyevent@0__:*")
        b = RawConn(("127.0.0.1", port))
        b.send(encode_command("BLMOVE", "src", "dst", "LEFT", "RIGHT", "0"))
        wait_for(lambda: b"blocked_clients:1\r\n" in a.call("INFO", "clients"),
                 what="the client to block")
        a.call("RPUSH", "src", "x", "y")
        b.read_wire()
        a.call("PUBLISH", "__keyevent@0__:zz", "end")
        frames = []
        while not frames or b"zz" not in frames[-1]:
            frames.append(sub.read_wire())
        seen[port] = frames
        a.call("CONFIG", "SET", "notify-keyspace-events", "")
        for c in (a, b, sub):
            c.close()
    assert seen[sakerd.port] == seen[redis_port]


def test_config_get_and_set_formatting_matches_redis_server(sakerd, redis_port):
    values = ["", "KEA", "AKE", "Ag$lshzxeKEtmdn", "gK", "$lshzxetdnE", "mK", "n", "x",
              "KEAn", "AKEm", "zzz", "Q", "KEA ", "A$"]
    seen = {}
    for port in (sakerd.port, redis_port):
        a = RawConn(("127.0.0.1", port))
        out = []
        for v in values:
            out.append(a.call("CONFIG", "SET", "notify-keyspace-events", v))
            out.append(a.call("CONFIG", "GET", "notify-keyspace-events"))
        a.call("CONFIG", "SET", "notify-keyspace-events", "")
        seen[port] = out
        a.close()
    assert seen[sakerd.port] == seen[redis_port]


def test_directive_in_the_config_file(make_daemon):
    d = make_daemon('notify-keyspace-events "Kx"\n')
    r = d.client()
    assert r.config_get("notify-keyspace-events") == {"notify-keyspace-events": "xK"}
    bad = Daemon(d.dir + "/..", 'notify-keyspace-events "KQ"\n', wait=False,
                 config_name="bad.conf", port=d.port + 1 if d.port < 65000 else d.port - 1)
    assert bad.proc.wait(60) == 1
    assert "Invalid event class character" in bad.output()
