"""Transactions (multi.py): MULTI EXEC DISCARD WATCH UNWATCH, as Redis 7.0.

Every reply shape is compared byte for byte with redis-server 7.0.15 in
RESP2 and RESP3 (sidebyside.py scripts); redis-py's pipeline() and
transaction() are driven with a concurrent writer that forces retries; a
hypothesis property feeds random interleavings of two clients to both
servers and asks for the same replies.
"""

import re
import threading
import time

import pytest
import redis
from hypothesis import HealthCheck, given, settings, strategies as st

from helpers import Daemon, RawConn, wait_for
from sidebyside import mismatches, run_script


@pytest.fixture(scope="module")
def sakerd(tmp_path_factory):
    d = Daemon(tmp_path_factory.mktemp("multi"))
    yield d
    d.stop()


SCRIPTS = {
    "queue_and_exec": """
        a: FLUSHALL
        a: MULTI
        a: SET k 1
        a: INCR k
        a: GET k
        a: LPUSH k x
        a: INCRBY k notanumber
        a: EXEC
        a: GET k
        a: MULTI
        a: EXEC
    """,
    "errors_outside_and_inside": """
        a: FLUSHALL
        a: EXEC
        a: DISCARD
        a: MULTI
        a: MULTI
        a: WATCH k
        a: SET k 1
        a: DISCARD
        a: GET k
        a: DISCARD
        a: MULTI
        a: SHUTDOWN
        a: EXEC
    """,
    "queueing_errors_abort": """
        a: FLUSHALL
        a: MULTI
        a: SET k 1
        a: NOSUCHCOMMAND x
        a: SET k 2
        a: EXEC
        a: GET k
        a: MULTI
        a: SET k
        a: EXEC
        a: MULTI
        a: GET
        a: DISCARD
        a: GET k
    """,
    "watch_other_client": """
        a: FLUSHALL
        a: SET k 1
        a: WATCH k
        b: SET k 2
        a: MULTI
        a: GET k
        a: EXEC
        a: WATCH k
        a: MULTI
        a: GET k
        a: EXEC
        a: WATCH nokey
        b: SET nokey 1
        a: MULTI
        a: PING
        a: EXEC
    """,
    "watch_own_write_and_unwatch": """
        a: FLUSHALL
        a: WATCH k
        a: SET k 1
        a: MULTI
        a: PING
        a: EXEC
        a: WATCH k
        b: SET k 2
        a: UNWATCH
        a: MULTI
        a: PING
        a: EXEC
        a: WATCH k other
        b: DEL nothing
        b: LPUSH other x
        a: MULTI
        a: PING
        a: EXEC
    """,
    "watch_every_write_kind": """
        a: FLUSHALL
        b: SET s 1
        b: HSET h f v
        b: RPUSH l a b
        a: WATCH s
        b: APPEND s x
        a: MULTI
        a: EXEC
        a: WATCH h
        b: HINCRBY h n 1
        a: MULTI
        a: EXEC
        a: WATCH l
        b: RPOP l
        a: MULTI
        a: EXEC
        a: WATCH s
        b: EXPIRE s 100
        a: MULTI
        a: EXEC
        a: WATCH s
        b: PERSIST s
        a: MULTI
        a: EXEC
        a: WATCH s
        b: RENAME s s2
        a: MULTI
        a: EXEC
        a: WATCH h
        b: HGET h f
        b: EXPIRE nokey 10
        a: MULTI
        a: EXEC
        a: WATCH s2
        b: EVAL return\\sredis.call('incr',KEYS[1]) 1 s2
        a: MULTI
        a: EXEC
    """,
    "watch_flush_and_select": """
        a: FLUSHALL
        b: SET k 1
        a: WATCH k nokey
        b: FLUSHDB
        a: MULTI
        a: EXEC
        a: WATCH nokey
        b: FLUSHALL
        a: MULTI
        a: EXEC
        b: SELECT 1
        b: SET k 1
        a: WATCH k
        b: SET k 2
        a: MULTI
        a: EXEC
        a: SELECT 1
        a: WATCH k
        b: SET k 3
        a: SELECT 0
        a: MULTI
        a: EXEC
        b: FLUSHALL
    """,
    "watch_expiry": """
        a: FLUSHALL
        a: SET k 1 PX 30
        a: WATCH k
        a: DEBUG SLEEP 0
        a: MULTI
        a: PING
        a: EXEC
    """,
    "blocking_commands_in_multi": """
        a: FLUSHALL
        a: MULTI
        a: BLPOP q 0
        a: BRPOP q 1
        a: BLMOVE q d LEFT RIGHT 0
        a: BRPOPLPUSH q d 0
        a: BLMPOP 0 1 q LEFT
        a: RPUSH q x
        a: BLPOP q 0
        a: EXEC
    """,
    "eval_and_multi": """
        a: FLUSHALL
        a: EVAL return\\sredis.call('multi') 0
        a: EVAL return\\sredis.call('exec') 0
        a: EVAL return\\sredis.pcall('watch','k') 0
        a: MULTI
        a: EVAL return\\sredis.call('incr',KEYS[1]) 1 k
        a: EVAL return\\sredis.call('blmpop',0,1,'q','left') 0
        a: EVAL return\\sredis.call('blpop','q',0) 0
        a: EXEC
    """,
    "reset_ends_multi_and_watch": """
        a: FLUSHALL
        a: WATCH k
        a: MULTI
        a: SET k 1
        a: RESET
        a: EXEC
        a: GET k
    """,
    "subscribed_resp2_and_quit_queued": """
        a: FLUSHALL
        a: MULTI
        a: SUBSCRIBE ch
        a: PING
        a: EXEC
        a: MULTI
        a: PUBLISH ch m
        a: EXEC
    """,
}

MULTI_ONLY_RESP3 = """
    a: FLUSHALL
    s: SUBSCRIBE ch
    s: MULTI
    s: PUBLISH ch m1
    s: SET k v
    s: PUBLISH ch m2
    s: EXEC
    s: PING
"""


@pytest.mark.parametrize("protocol", [2, 3])
@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_replies_match_redis_server(sakerd, redis_server_port, name, protocol):
    script = SCRIPTS[name]
    if name == "watch_expiry":
        # The key expires between WATCH and EXEC: wait for that on both.
        script = script.replace("a: DEBUG SLEEP 0", "")
        check_watch_expiry(sakerd, redis_server_port, protocol)
        return
    assert mismatches(sakerd.port, redis_server_port, script, protocol) == []


def check_watch_expiry(sakerd, redis_server_port, protocol):
    out = {}
    for port in (sakerd.port, redis_server_port):
        a = RawConn(("127.0.0.1", port))
        if protocol == 3:
            a.call("HELLO", "3")
        a.call("FLUSHALL")
        a.call("SET", "k", "1", "PX", "50")
        assert a.call("WATCH", "k") == b"+OK\r\n"
        time.sleep(0.12)   # no readiness to wait for: the key's time passes
        a.call("MULTI")
        a.call("PING")
        out[port] = a.call("EXEC")
        a.close()
    assert out[sakerd.port] == out[redis_server_port] == (b"*-1\r\n" if protocol == 2 else b"_\r\n")


def test_resp3_subscriber_transaction_matches_redis_server(sakerd, redis_server_port):
    """A RESP3 subscriber publishing to itself inside EXEC gets the push
    frames where Redis 7.0 puts them: inside the EXEC reply."""
    assert mismatches(sakerd.port, redis_server_port, MULTI_ONLY_RESP3, 3) == []


def test_exec_wire_bytes(sakerd):
    out = run_script(sakerd.port, """
        a: FLUSHALL
        a: MULTI
        a: SET k 1
        a: INCR k
        a: LPUSH k x
        a: EXEC
        a: MULTI
        a: NOSUCH
        a: EXEC
    """)
    assert [reply for _, reply in out] == [
        b"+OK\r\n", b"+OK\r\n", b"+QUEUED\r\n", b"+QUEUED\r\n", b"+QUEUED\r\n",
        b"*3\r\n+OK\r\n:2\r\n-WRONGTYPE Operation against a key holding the wrong kind of value\r\n",
        b"+OK\r\n", b"-ERR unknown command 'NOSUCH', with args beginning with: \r\n",
        b"-EXECABORT Transaction discarded because of previous errors.\r\n"]


def _client_fields(port, watcher_id):
    conn = RawConn(("127.0.0.1", port))
    listing = conn.call("CLIENT", "LIST").decode()
    conn.close()
    for line in listing.splitlines():
        if line.startswith("id=%s " % watcher_id) or "\nid=%s " % watcher_id in line:
            return re.search(r"flags=(\S+)", line).group(1), re.search(r" multi=(\S+)", line).group(1)
    raise AssertionError(listing)


def test_client_list_shows_multi_flag_and_queue_length(sakerd, redis_server_port):
    seen = {}
    for port in (sakerd.port, redis_server_port):
        a = RawConn(("127.0.0.1", port))
        cid = a.call("CLIENT", "ID")[1:-2].decode()
        states = [_client_fields(port, cid)]
        a.call("MULTI")
        a.call("SET", "k", "v")
        a.call("GET", "k")
        states.append(_client_fields(port, cid))
        a.call("DISCARD")
        a.call("WATCH", "k")
        b = RawConn(("127.0.0.1", port))
        b.call("SET", "k", "2")
        b.close()
        states.append(_client_fields(port, cid))
        a.call("UNWATCH")
        states.append(_client_fields(port, cid))
        a.close()
        seen[port] = states
    assert seen[sakerd.port] == seen[redis_server_port] == [
        ("N", "-1"), ("x", "2"), ("d", "-1"), ("N", "-1")]


def _monitor_lines(port, steps):
    mon = RawConn(("127.0.0.1", port))
    assert mon.call("MONITOR") == b"+OK\r\n"
    a = RawConn(("127.0.0.1", port))
    for args in steps:
        a.call(*args)
    a.call("ECHO", "end")
    lines = []
    while True:
        line = mon.read_line().decode()
        # "+1700000000.123456 [0 127.0.0.1:port] "cmd" ...": keep db and command.
        m = re.match(r'\+\d+\.\d+ \[(\d+) [^\]]+\] (.*)', line)
        lines.append("%s %s" % m.groups())
        if '"end"' in line:
            break
    mon.close()
    a.close()
    return lines


def test_monitor_shows_what_redis_shows(sakerd, redis_server_port):
    steps = [("MULTI",), ("SET", "k", "1"), ("GET", "k"), ("EXEC",),
             ("MULTI",), ("NOSUCH",), ("EXEC",), ("MULTI",), ("PING",), ("DISCARD",)]
    ours = _monitor_lines(sakerd.port, steps)
    theirs = _monitor_lines(redis_server_port, steps)
    assert ours == theirs
    assert ours[:4] == ['0 "MULTI"', '0 "SET" "k" "1"', '0 "GET" "k"', '0 "EXEC"']


def _commandstats(port):
    a = RawConn(("127.0.0.1", port))
    a.call("CONFIG", "RESETSTAT")
    for args in [("MULTI",), ("SET", "k", "1"), ("INCR", "k"), ("LPUSH", "k", "x"), ("EXEC",),
                 ("MULTI",), ("GET", "k", "extra"), ("EXEC",), ("MULTI",), ("PING",),
                 ("DISCARD",)]:
        a.call(*args)
    info = a.call("INFO", "commandstats").decode()
    stats = a.call("INFO", "stats").decode()
    a.close()
    out = {}
    for name, calls, rejected, failed in re.findall(
            r"cmdstat_(\w+):calls=(\d+),usec=\d+,usec_per_call=[\d.]+,"
            r"rejected_calls=(\d+),failed_calls=(\d+)", info):
        out[name] = (int(calls), int(rejected), int(failed))
    out["total_commands_processed"] = int(
        re.search(r"total_commands_processed:(\d+)", stats).group(1))
    return out


def test_commandstats_count_exec_and_queued_commands_as_redis(sakerd, redis_server_port):
    ours, theirs = _commandstats(sakerd.port), _commandstats(redis_server_port)
    assert ours == theirs
    assert ours["exec"] == (2, 0, 1) and ours["set"] == (1, 0, 0) and ours["lpush"] == (1, 0, 1)


def test_exec_runs_with_nothing_interleaved(sakerd):
    """A reader polling while a long transaction runs sees all or nothing."""
    a = RawConn(("127.0.0.1", sakerd.port))
    a.call("SET", "n", "0")
    seen = set()
    stop = threading.Event()

    def reader():
        b = RawConn(("127.0.0.1", sakerd.port))
        while not stop.is_set():
            seen.add(b.call("GET", "n"))
        b.close()

    t = threading.Thread(target=reader)
    t.start()
    try:
        for _ in range(5):
            batch = b"*1\r\n$5\r\nMULTI\r\n" + b"*2\r\n$4\r\nINCR\r\n$1\r\nn\r\n" * 2000 + \
                b"*1\r\n$4\r\nEXEC\r\n"
            a.send(batch)
            assert a.read_wire() == b"+OK\r\n"
            for _ in range(2000):
                assert a.read_wire() == b"+QUEUED\r\n"
            assert a.read_wire().startswith(b"*2000\r\n")
    finally:
        stop.set()
        t.join()
        a.close()
    values = sorted(int(v.split(b"\r\n")[1]) for v in seen)
    assert all(v % 2000 == 0 for v in values), values


def test_redis_py_pipeline_is_a_transaction(sakerd):
    r = sakerd.client()
    r.delete("p")
    pipe = r.pipeline()
    pipe.set("p", 1).incr("p").lpush("p", "x").get("p")
    with pytest.raises(redis.ResponseError):
        pipe.execute()
    assert r.get("p") == b"2"
    assert r.pipeline().incr("p").incr("p").execute() == [3, 4]


def test_redis_py_transaction_retries_when_a_concurrent_writer_touches_the_key(sakerd):
    r = sakerd.client()
    other = sakerd.client()
    r.set("balance", 100)
    attempts = []

    def withdraw(pipe):
        attempts.append(1)
        balance = int(pipe.get("balance"))
        if len(attempts) < 3:
            other.incrby("balance", 10)   # a concurrent writer between WATCH and EXEC
        pipe.multi()
        pipe.set("balance", balance - 30)

    r.transaction(withdraw, "balance")
    assert len(attempts) == 3
    assert r.get("balance") == b"90"    # 100 + 10 + 10 - 30: no update lost


def test_many_threads_incrementing_through_watch_lose_nothing(sakerd):
    r = sakerd.client()
    r.set("counter", 0)

    def worker():
        c = sakerd.client()
        for _ in range(50):
            c.transaction(lambda p: (lambda v: (p.multi(), p.set("counter", int(v) + 1)))(
                p.get("counter")), "counter")

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert r.get("counter") == b"200"


def test_a_freed_client_leaves_no_watch_behind(sakerd):
    a = RawConn(("127.0.0.1", sakerd.port))
    a.call("WATCH", "gone1", "gone2")
    a.call("MULTI")
    a.call("SET", "gone1", "x")
    a.close()
    b = sakerd.client()
    wait_for(lambda: all("multi=-1" in line or "cmd=multi" not in line
                         for line in b.execute_command("CLIENT", "LIST").decode().splitlines()),
             what="the MULTI client to go away")
    assert b.get("gone1") is None
    b.set("gone1", "y")     # touching a key nobody watches any more
    assert b.get("gone1") == b"y"


# ---- property: random interleavings give Redis's outcomes ----------------------------

OPS = st.sampled_from([
    "WATCH k1", "WATCH k2", "WATCH k1 k2", "UNWATCH", "MULTI", "EXEC", "DISCARD",
    "SET k1 a", "SET k2 b", "INCR k1", "INCR k2", "GET k1", "GET k2", "DEL k1", "DEL k2",
    "LPUSH k1 x", "RPOP k1", "EXPIRE k2 100", "PERSIST k2", "RENAME k1 k2", "FLUSHDB",
])


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from("ab"), OPS), min_size=1, max_size=25))
def test_random_interleavings_match_redis_server(sakerd, redis_server_port, schedule):
    script = "a: FLUSHALL\n" + "\n".join("%s: %s" % (who, op) for who, op in schedule)
    script += "\na: RESET\nb: RESET\na: GET k1\na: GET k2\na: LRANGE k1 0 -1"
    assert mismatches(sakerd.port, redis_server_port, script) == []
