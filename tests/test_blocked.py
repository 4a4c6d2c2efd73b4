"""Blocking commands (blocked.py, t_list.py): BLPOP BRPOP BLMOVE BRPOPLPUSH
BLMPOP, the non-blocking LMOVE LMPOP RPOPLPUSH, WAIT, CLIENT UNBLOCK.

Reply shapes, serving order and the handling of keys made ready together
are compared byte for byte with redis-server 7.0.15 (RESP2 and RESP3); the
rest shows what a client sees: redis-py's blpop from a thread, timeouts, a
blocked client's disconnection, `timeout` sparing blocked clients, and
1,000 clients blocked on 100 keys each answered exactly once.
"""

import random
import re
import select
import threading
import time

import pytest

from helpers import Daemon, RawConn, encode_command, wait_for
from sidebyside import mismatches


@pytest.fixture(scope="module")
def sakerd(tmp_path_factory):
    d = Daemon(tmp_path_factory.mktemp("blocked"))
    yield d
    d.stop()


SCRIPTS = {
    "swapdb_serves_the_clients_blocked_on_keys_it_brings": """
        a: FLUSHALL
        b> BLPOP l 0
        c> BZPOPMIN z 0
        d> BLPOP other 0
        ~ 3
        a: SELECT 1
        a: RPUSH l x y
        a: ZADD z 1 m
        a: SWAPDB 0 1
        b<
        c<
        a: LRANGE l 0 -1
        a: SELECT 0
        a: LRANGE l 0 -1
        a: CLIENT UNBLOCK {d}
        d<
    """,
    "flush_and_swapdb_end_xreadgroup_readers_of_streams_taken_away": """
        a: FLUSHALL
        a: XGROUP CREATE s g $ MKSTREAM
        b> XREADGROUP GROUP g c BLOCK 0 STREAMS s >
        c> XREAD BLOCK 0 STREAMS s $
        ~ 2
        a: FLUSHDB
        b<
        a: XADD s 1-1 f v
        c<
        a: XGROUP CREATE s g $
        b> XREADGROUP GROUP g c BLOCK 0 STREAMS s >
        ~ 1
        a: SELECT 1
        a: SET s notastream
        a: SELECT 0
        a: SWAPDB 0 1
        b<
        a: FLUSHALL
        a: XGROUP CREATE s g $ MKSTREAM
        b> XREADGROUP GROUP g c BLOCK 0 STREAMS s >
        ~ 1
        a: FLUSHALL
        b<
    """,
    "swapdb_touches_the_watchers_of_keys_in_either_db": """
        a: FLUSHALL
        a: SELECT 1
        a: SET k v
        a: SELECT 0
        b: WATCH k
        c: WATCH nokey
        a: SWAPDB 0 1
        b: MULTI
        b: PING
        b: EXEC
        c: MULTI
        c: PING
        c: EXEC
        a: SELECT 1
        a: SET k2 v
        b: WATCH k2
        a: SWAPDB 1 0
        b: MULTI
        b: EXEC
    """,
    "non_blocking_forms": """
        a: FLUSHALL
        a: RPUSH l a b c d
        a: LMOVE l m LEFT RIGHT
        a: LMOVE l m RIGHT LEFT
        a: LMOVE l l LEFT RIGHT
        a: LMOVE l m UP LEFT
        a: LMOVE nokey m LEFT LEFT
        a: RPOPLPUSH l m
        a: RPOPLPUSH l m
        a: LRANGE m 0 -1
        a: EXISTS l
        a: SET s x
        a: LMOVE s m LEFT LEFT
        a: LMOVE m s LEFT LEFT
        a: RPOPLPUSH m s
        a: LMPOP 2 nokey m LEFT
        a: LMPOP 2 nokey m RIGHT COUNT 10
        a: LMPOP 1 m LEFT
        a: LMPOP 0 m LEFT
        a: LMPOP -1 m LEFT
        a: LMPOP x m LEFT
        a: LMPOP 3 m LEFT
        a: LMPOP 1 m MIDDLE
        a: LMPOP 1 m LEFT COUNT 0
        a: LMPOP 1 m LEFT COUNT 1 COUNT 2
        a: LMPOP 1 m LEFT FOO
        a: LMPOP 1 s LEFT
        a: LMPOP 2 nokey s LEFT
        a: RPUSH m x
        a: LMPOP 2 s m LEFT
    """,
    "served_at_once_when_not_empty": """
        a: FLUSHALL
        a: RPUSH l a b c
        a: BLPOP nokey l 0
        a: BRPOP l 0
        a: BLMOVE l m LEFT LEFT 0
        a: BRPOPLPUSH m l 0
        a: BLMPOP 0 2 nokey l RIGHT COUNT 5
        a: SET s x
        a: BLPOP s 0
        a: BLPOP nokey s 0
        a: BLMOVE s l LEFT LEFT 0
        a: RPUSH l y
        a: BLMOVE l s LEFT LEFT 0
        a: BLMPOP 0 1 s LEFT
    """,
    "timeout_and_argument_errors": """
        a: FLUSHALL
        a: BLPOP q -1
        a: BLPOP q abc
        a: BLPOP q inf
        a: BLPOP q 1e20
        a: BLPOP q nan
        a: BLPOP q ''
        a: BLPOP q 0.01
        a: BRPOP q 0.001
        a: BLMOVE q d LEFT LEFT 0.01
        a: BLMOVE q d LEFT SIDE 0.01
        a: BLMOVE q d LEFT LEFT -2
        a: BRPOPLPUSH q d 0.01
        a: BRPOPLPUSH q d x
        a: BLMPOP 0.01 1 q LEFT
        a: BLMPOP x 1 q LEFT
        a: BLMPOP 0 0 q LEFT
        a: BLMPOP 0 1 q LEFT COUNT -1
        a: BLMPOP 0 5 q LEFT
        a: BLPOP
        a: BLMPOP 0 1 q
    """,
    "push_wakes_first_blocked_first": """
        a: FLUSHALL
        b> BLPOP q 0
        ~ 1
        c> BRPOP q 0
        ~ 2
        d> BLPOP q 0
        ~ 3
        a: RPUSH q x y
        b<
        c<
        a: LRANGE q 0 -1
        a: RPUSH q z
        d<
        a: EXISTS q
    """,
    "several_keys_ready_in_one_exec": """
        a: FLUSHALL
        b> BLPOP k1 k2 0
        ~ 1
        c> BLPOP k2 0
        ~ 2
        d> BLPOP k1 0
        ~ 3
        a: MULTI
        a: RPUSH k2 x
        a: RPUSH k1 y
        a: EXEC
        b<
        d<
        a: LRANGE k1 0 -1
        a: LRANGE k2 0 -1
        a: CLIENT UNBLOCK {c} ERROR
        c<
    """,
    "one_command_makes_a_key_ready_for_many": """
        a: FLUSHALL
        b> BLMPOP 0 1 q LEFT COUNT 2
        ~ 1
        c> BLMPOP 0 1 q RIGHT COUNT 2
        ~ 2
        d> BLPOP q 0
        ~ 3
        a: RPUSH q 1 2 3 4 5
        b<
        c<
        d<
        a: EXISTS q
    """,
    "blmove_chain_serves_the_next_list": """
        a: FLUSHALL
        b> BLMOVE src dst RIGHT LEFT 0
        ~ 1
        c> BLPOP dst 0
        ~ 2
        a: RPUSH src x
        b<
        c<
        a: EXISTS src dst
        b> BRPOPLPUSH src dst 0
        ~ 1
        a: SET dst notalist
        a: RPUSH src y
        b<
        a: LRANGE src 0 -1
    """,
    "push_and_pop_in_one_pipeline": """
        a: FLUSHALL
        b> BLPOP q 0
        ~ 1
        a> RPUSH q x
        a> LPOP q
        a<
        a<
        b<
    """,
    "pipelined_behind_a_blocked_command": """
        a: FLUSHALL
        b> BLPOP q 0
        b> PING
        b> GET q
        ~ 1
        a: RPUSH q x
        b<
        b<
        b<
    """,
    "script_push_wakes_after_the_script": """
        a: FLUSHALL
        b> BLPOP q 0
        ~ 1
        a: EVAL redis.call('rpush',KEYS[1],'a');return\\sredis.call('lpop',KEYS[1]) 1 q
        a: EVAL return\\sredis.call('rpush',KEYS[1],'b','c') 1 q
        b<
        a: LRANGE q 0 -1
        a: EVAL return\\sredis.call('blmpop',0,1,'nokey','left') 0
        a: EVAL return\\sredis.call('blpop','q',0) 0
    """,
    "client_unblock": """
        a: FLUSHALL
        b> BLPOP q 0
        ~ 1
        a: CLIENT UNBLOCK {b}
        b<
        b> BLMOVE q d LEFT LEFT 0
        ~ 1
        a: CLIENT UNBLOCK {b} TIMEOUT
        b<
        b> BLMPOP 0 1 q LEFT
        ~ 1
        a: CLIENT UNBLOCK {b} ERROR
        b<
        a: CLIENT UNBLOCK {b}
        a: CLIENT UNBLOCK {b} NOW
        a: CLIENT UNBLOCK x
        a: CLIENT UNBLOCK {b} TIMEOUT extra
        b: PING
    """,
    "wait": """
        a: FLUSHALL
        a: WAIT 0 0
        a: WAIT 0 1000
        a: WAIT 1 10
        a: WAIT x 0
        a: WAIT 0 -1
        a: WAIT 0 1.5
        a: MULTI
        a: WAIT 1 0
        a: EXEC
        b> WAIT 2 0
        ~ 1
        a: CLIENT UNBLOCK {b}
        b<
    """,
    "a_key_set_to_another_type_serves_nobody": """
        a: FLUSHALL
        b> BLPOP q 0
        ~ 1
        a: SET q x
        a: DEL q
        a: MULTI
        a: SET q x
        a: DEL q
        a: RPUSH q y
        a: EXEC
        b<
    """,
}


@pytest.mark.parametrize("protocol", [2, 3])
@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_replies_match_redis_server(sakerd, redis_server_port, name, protocol):
    # "~ n" waits until n clients are blocked: the next step's command then
    # runs after the blocking one on either server.
    assert mismatches(sakerd.port, redis_server_port, SCRIPTS[name], protocol) == []


def test_blocked_state_in_client_list_and_info(sakerd, redis_server_port):
    seen = {}
    for port in (sakerd.port, redis_server_port):
        b = RawConn(("127.0.0.1", port))
        a = RawConn(("127.0.0.1", port))
        bid = b.call("CLIENT", "ID")[1:-2].decode()
        b.send(encode_command("BLPOP", "nothing-here", "0"))
        wait_for(lambda: b"blocked_clients:1\r\n" in a.call("INFO", "clients"),
                 what="the client to block")
        line = [x for x in a.call("CLIENT", "LIST").decode().splitlines()
                if x.startswith("id=%s " % bid) or ("id=%s " % bid) in x][0]
        info = a.call("INFO", "clients").decode()
        a.call("RPUSH", "nothing-here", "v")
        assert b.read_wire() == b"*2\r\n$12\r\nnothing-here\r\n$1\r\nv\r\n"
        seen[port] = (re.search(r"flags=(\S+)", line).group(1),
                      re.search(r"cmd=(\S+)", line).group(1),
                      re.search(r"blocked_clients:(\d+)", info).group(1),
                      re.search(r"blocked_clients:(\d+)", a.call("INFO", "clients").decode()).group(1))
        a.close()
        b.close()
    assert seen[sakerd.port] == seen[redis_server_port] == ("b", "blpop", "1", "0")


def test_timeouts_answer_a_null_after_about_their_time(sakerd):
    a = RawConn(("127.0.0.1", sakerd.port))
    t0 = time.monotonic()
    assert a.call("BLPOP", "empty", "0.3") == b"*-1\r\n"
    took = time.monotonic() - t0
    a.call("HELLO", "3")
    assert a.call("BLMOVE", "empty", "x", "LEFT", "LEFT", "0.05") == b"_\r\n"
    a.close()
    assert took >= 0.3


def test_redis_py_blpop_from_a_thread_gets_what_another_client_pushes(sakerd):
    r = sakerd.client()
    r.delete("jobs")
    got = []
    t = threading.Thread(target=lambda: got.append(sakerd.client().blpop(["jobs"], timeout=10)))
    t.start()
    wait_for(lambda: r.info("clients")["blocked_clients"] == 1, what="blpop to block")
    r.rpush("jobs", "job-1")
    t.join(10)
    assert got == [(b"jobs", b"job-1")]
    assert r.info("clients")["blocked_clients"] == 0


def test_a_blocked_client_that_disconnects_is_freed_at_once(sakerd):
    r = sakerd.client()
    b = RawConn(("127.0.0.1", sakerd.port))
    b.send(encode_command("BLPOP", "never", "0"))
    wait_for(lambda: r.info("clients")["blocked_clients"] == 1, what="the client to block")
    b.close()
    # A ceiling for a loaded machine: BLPOP 0 never times out, so only the
    # close frees it.
    wait_for(lambda: r.info("clients")["blocked_clients"] == 0, timeout=20,
             what="the disconnected client to be freed")
    # Nobody is waiting on the key any more: a push stays in the list.
    r.rpush("never", "v")
    assert r.lrange("never", 0, -1) == [b"v"]


def test_idle_timeout_never_closes_a_blocked_client(sakerd):
    r = sakerd.client()
    r.config_set("timeout", 1)
    try:
        r.delete("late")
        b = RawConn(("127.0.0.1", sakerd.port), timeout=10)
        idle = RawConn(("127.0.0.1", sakerd.port), timeout=10)
        idle.call("PING")
        b.send(encode_command("BLPOP", "late", "0"))
        assert idle.is_closed(timeout=30)    # the idle one goes after about 1-2 s
        time.sleep(1.2)                      # the blocked one outlives it by a cron round
        r.rpush("late", "v")
        assert b.read_wire() == b"*2\r\n$4\r\nlate\r\n$1\r\nv\r\n"
        b.close()
    finally:
        r.config_set("timeout", 0)


def test_a_task_push_wakes_blocked_clients(make_daemon):
    d = make_daemon()
    with open(d.dir + "/scripts/pusher.lua", "w") as f:
        f.write("saker.command('pushlater', function(key)\n"
                "  saker.after(50, function() saker.call('rpush', key, 'from-task') end)\n"
                "  return 'ok'\nend)\n")
    r = d.client()
    r.execute_command("PLUGIN", "RELOAD")
    b = RawConn(("127.0.0.1", d.port), timeout=30)
    b.send(encode_command("BLPOP", "tq", "0"))
    wait_for(lambda: r.info("clients")["blocked_clients"] == 1, timeout=30,
             what="the client to block")
    assert r.execute_command("pushlater", "tq") == b"ok"
    assert b.read_wire() == b"*2\r\n$2\r\ntq\r\n$9\r\nfrom-task\r\n"
    b.close()


def test_thousand_clients_on_hundred_keys_each_answered_exactly_once(sakerd):
    rng = random.Random(7)
    r = sakerd.client()
    r.flushall()
    conns = []
    for i in range(1000):
        c = RawConn(("127.0.0.1", sakerd.port), timeout=30)
        timeout = "%.2f" % rng.uniform(0.2, 3.0)
        c.send(encode_command("BLPOP", "key:%d" % (i % 100), timeout))
        conns.append(c)
    # Some have timed out already, most are blocked: push to random keys.
    pushed = 0
    for _ in range(10):
        keys = rng.sample(range(100), 20)
        for k in keys:
            r.rpush("key:%d" % k, *["v%d" % n for n in range(3)])
            pushed += 3
        time.sleep(0.05)
    replies = {}
    pending = {c.sock.fileno(): c for c in conns}
    deadline = time.monotonic() + 60     # a ceiling: the longest BLPOP timeout is 3 s
    while pending and time.monotonic() < deadline:
        ready, _, _ = select.select(list(pending), [], [], 1)
        for fd in ready:
            c = pending.pop(fd)
            replies[fd] = c.read_wire()
    assert not pending, "%d clients never answered" % len(pending)
    values = [x for x in replies.values() if x != b"*-1\r\n"]
    left = sum(r.llen("key:%d" % k) for k in range(100))
    assert len(values) + left == pushed
    assert all(re.match(rb"\*2\r\n\$\d+\r\nkey:\d+\r\n\$2\r\nv\d\r\n\Z", v) for v in values)
    # Exactly once: nothing more arrives on any connection.
    for c in conns:
        c.sock.setblocking(False)
        try:
            extra = c.sock.recv(100)
        except BlockingIOError:
            extra = b""
        assert extra == b"" and c.buf == b""
        c.close()
    assert r.info("clients")["blocked_clients"] == 0
    assert 0 < len(values) < 1000    # both outcomes happened
