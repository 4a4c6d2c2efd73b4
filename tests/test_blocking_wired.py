"""XREAD/XREADGROUP BLOCK and BZPOPMIN/BZPOPMAX/BZMPOP, wired to blocked.py.

Every schedule runs on sakerd and on redis-server 7.0.15, RESP2 and RESP3,
and the bytes each connection receives are compared. A script step is

    a: CMD        a sends CMD and reads its reply
    b> CMD        b sends CMD, then the script waits until b is blocked
                  (CLIENT LIST shows flags=b, on a control connection)
    b+ CMD        b sends CMD and does not wait (pipelined behind a block)
    b<            b reads one reply now

so no step depends on timing. redis-py's xread(block=...) and bzpopmin
run in threads while another client writes.
"""

import threading

import pytest
import redis

from helpers import Daemon, RawConn, encode_command, start_redis_server, wait_for


@pytest.fixture(scope="module")
def sakerd(tmp_path_factory):
    d = Daemon(tmp_path_factory.mktemp("blocking"))
    yield d
    d.stop()


@pytest.fixture(scope="module")
def redis_port():
    proc, port = start_redis_server()
    yield port
    proc.terminate()
    proc.wait(10)


def _encode(args):
    args = [a.encode() for a in args]
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)


def run(port, text, protocol):
    """The replies (bytes) read by the script's steps, in order."""
    conns, ids, out = {}, {}, []
    ctl = RawConn(("127.0.0.1", port))

    def conn(name):
        if name not in conns:
            c = conns[name] = RawConn(("127.0.0.1", port))
            if protocol == 3:
                assert c.call("HELLO", "3").startswith(b"%")
            ids[name] = c.call("CLIENT", "ID")[1:-2].decode()
        return conns[name]

    def blocked(name):
        return b"flags=b" in ctl.call("CLIENT", "LIST", "ID", ids[name])

    try:
        for line in text.strip().splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            name, kind, rest = line[0], line[1], line[2:].strip()
            c = conn(name)
            args = [a.replace("\\s", " ") if a != "''" else "" for a in rest.split()]
            args = [a.format(**ids) if "{" in a else a for a in args]
            if kind in ":>+":
                c.send(_encode(args))
            if kind == ">":
                wait_for(lambda: blocked(name), 30, "%s to block in %s" % (name, rest))
            if kind in ":<":
                out.append((line, c.read_wire()))
    finally:
        ctl.close()
        for c in conns.values():
            c.close()
    return out


def mismatches(sakerd, redis_port, text, protocol):
    ours = run(sakerd.port, text, protocol)
    theirs = run(redis_port, text, protocol)
    assert len(ours) == len(theirs)
    return [(label, mine, real) for (label, mine), (_, real) in zip(ours, theirs)
            if mine != real]


SCRIPTS = {
    "xread_dollar_and_ids": """
        a: FLUSHALL
        a: XADD s 1-1 f v
        b> XREAD BLOCK 0 STREAMS s $
        a: XADD s 2-1 f v2 g w
        b<
        b: XREAD BLOCK 0 COUNT 1 STREAMS s 0-0
        b> XREAD BLOCK 0 STREAMS s 2-1
        a: XADD s 3-0 f v3
        b<
        b> XREAD BLOCK 0 STREAMS nokey $
        a: XADD nokey 1-0 x y
        b<
    """,
    "xread_several_keys_and_readers": """
        a: FLUSHALL
        b> XREAD BLOCK 0 STREAMS s1 s2 $ $
        c> XREAD BLOCK 0 COUNT 1 STREAMS s2 $
        d> XREAD BLOCK 0 STREAMS s1 $
        a: MULTI
        a: XADD s2 1-0 a 1
        a: XADD s2 2-0 b 2
        a: EXEC
        b<
        c<
        a: XADD s1 1-0 c 3
        d<
    """,
    "writes_that_wake_nobody": """
        a: FLUSHALL
        a: XADD s 1-0 f v
        a: XADD s 2-0 f v
        b> XREAD BLOCK 0 STREAMS s $
        a: XSETID s 5-0
        a: XDEL s 1-0
        a: XTRIM s MAXLEN 5
        a: XADD s 6-0 f v6
        b<
        a: XGROUP CREATE s g $
        c> XREADGROUP GROUP g alice BLOCK 0 STREAMS s >
        a: XGROUP SETID s g 0
        a: XGROUP CREATECONSUMER s g bob
        a: XADD s 7-0 f v7
        c<
    """,
    "xreadgroup_consumers_share_the_group": """
        a: FLUSHALL
        a: XGROUP CREATE s g $ MKSTREAM
        b> XREADGROUP GROUP g alice BLOCK 0 STREAMS s >
        c> XREADGROUP GROUP g bob BLOCK 0 COUNT 1 STREAMS s >
        d> XREADGROUP GROUP g carol BLOCK 0 NOACK STREAMS s >
        a: XADD s 1-0 f v1
        b<
        a: XADD s 2-0 f v2
        c<
        a: XADD s 3-0 f v3
        d<
        a: XPENDING s g
        b: XREADGROUP GROUP g alice BLOCK 0 STREAMS s 0
    """,
    "xgroup_destroy_and_key_gone": """
        a: FLUSHALL
        a: XGROUP CREATE s g $ MKSTREAM
        b> XREADGROUP GROUP g alice BLOCK 0 STREAMS s >
        c> XREAD BLOCK 0 STREAMS s $
        a: XGROUP DESTROY s g
        b<
        a: XGROUP CREATE s g $
        b> XREADGROUP GROUP g alice BLOCK 0 STREAMS s >
        a: DEL s
        b<
        a: XADD s 1-0 f v
        c<
        a: XGROUP CREATE s g $
        b> XREADGROUP GROUP g alice BLOCK 0 STREAMS s >
        a: MULTI
        a: DEL s
        a: SET s x
        a: EXEC
        b<
        a: XREADGROUP GROUP g alice STREAMS s 0
    """,
    "streams_replaced_renamed_and_expired": """
        a: FLUSHALL
        a: XADD src 5-0 f v
        b> XREAD BLOCK 0 STREAMS dst $
        a: RENAME src dst
        b<
        a: XGROUP CREATE dst g $
        b> XREADGROUP GROUP g c BLOCK 0 STREAMS dst >
        c> XREAD BLOCK 0 STREAMS dst $
        a: PEXPIRE dst 1
        b<
        a: XADD other 9-0 f v
        a: RENAME other dst
        c<
    """,
    "stream_timeouts_and_errors": """
        a: FLUSHALL
        a: XREAD BLOCK 20 STREAMS s $
        a: XGROUP CREATE s g $ MKSTREAM
        a: XREADGROUP GROUP g c BLOCK 20 STREAMS s >
        a: XREAD BLOCK -1 STREAMS s $
        a: XREAD BLOCK x STREAMS s $
        a: XREAD BLOCK 1.5 STREAMS s $
        a: XREADGROUP GROUP g c BLOCK 0 STREAMS s 0
        a: XREAD BLOCK 0 STREAMS s
        a: XREADGROUP GROUP nog c BLOCK 0 STREAMS s >
    """,
    "non_blocking_in_multi_and_scripts": """
        a: FLUSHALL
        a: XGROUP CREATE s g $ MKSTREAM
        a: MULTI
        a: XREAD BLOCK 0 STREAMS s $
        a: XREADGROUP GROUP g c BLOCK 0 STREAMS s >
        a: BZPOPMIN z 0
        a: BZPOPMAX z 0
        a: BZMPOP 0 1 z MIN
        a: ZADD z 1 m
        a: BZPOPMIN z 0
        a: EXEC
        a: EVAL return\\sredis.call('xread','block',0,'streams','s','$') 0
        a: EVAL return\\sredis.pcall('xreadgroup','group','g','c','block',0,'streams','s','>') 0
        a: EVAL return\\sredis.call('xread','streams','s','$') 0
        a: EVAL return\\sredis.pcall('bzpopmin','z',0) 0
        a: EVAL return\\sredis.call('bzmpop',0,1,'z','min') 0
        a: EVAL return\\sredis.call('bzmpop',0,1,'nokey','min') 0
    """,
    "bzpop_serving_order": """
        a: FLUSHALL
        b> BZPOPMIN z1 z2 0
        c> BZPOPMAX z2 0
        d> BZMPOP 0 2 z1 z2 MAX COUNT 5
        e> BZMPOP 0 1 z2 MIN
        a: ZADD z2 1 a 2 b 3 c 4 d
        b<
        c<
        d<
        a: ZADD z1 1.5 x 2.5 y
        e> BZPOPMIN z2 0
        a: ZADD z2 -inf lo
        e<
        a: EXISTS z1 z2
    """,
    "bzpop_at_once_and_errors": """
        a: FLUSHALL
        a: ZADD z 1 a 2 b 3.5 c
        a: BZPOPMIN nokey z 0
        a: BZPOPMAX z 0
        a: BZMPOP 0 2 nokey z MIN COUNT 10
        a: SET w x
        a: BZPOPMIN nokey w 0
        a: BZMPOP 0 1 w MAX
        a: BZPOPMIN z abc
        a: BZPOPMIN z -1
        a: BZPOPMIN z 1e400
        a: BZPOPMIN nokey 0.01
        a: BZMPOP 0.01 1 nokey MIN
        a: BZMPOP 0 0 z MIN
        a: BZMPOP 0 1 z FOO
        a: BZMPOP 0 1 z MIN COUNT 0
        a: BZMPOP 0 1 z MIN COUNT 1 COUNT 2
        a: BZMPOP x 1 z MIN
        a: BZPOPMIN z
    """,
    "bzpop_other_types_and_deletes": """
        a: FLUSHALL
        b> BZPOPMIN z 0
        c> BLPOP z 0
        a: LPUSH z x
        c<
        a: SET z str
        a: DEL z
        a: ZADD z 7 m
        b<
        b> BZMPOP 0 1 z MIN
        a: MULTI
        a: ZADD z 1 a
        a: ZREM z a
        a: EXEC
        a: ZADD z 2 b
        b<
    """,
    "client_unblock_and_pipelining": """
        a: FLUSHALL
        b> XREAD BLOCK 0 STREAMS s $
        a: CLIENT UNBLOCK {b}
        b<
        b> BZPOPMIN z 0
        a: CLIENT UNBLOCK {b} ERROR
        b<
        b: XREADGROUP GROUP g c BLOCK 0 STREAMS s >
        a: XGROUP CREATE s g $ MKSTREAM
        b> XREADGROUP GROUP g c BLOCK 0 STREAMS s >
        b+ PING
        b+ XREAD STREAMS s 0
        a: XADD s 1-0 f v
        b<
        b<
        b<
    """,
}


@pytest.mark.parametrize("protocol", [2, 3])
@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_schedules_match_redis_server(sakerd, redis_port, name, protocol):
    assert mismatches(sakerd, redis_port, SCRIPTS[name], protocol) == []


def _info_fields(conn, name):
    """COMMAND INFO name: arity, first/last key, step and ACL categories."""
    conn.send(encode_command("COMMAND", "INFO", name))
    info = conn.read_reply()[0]
    return info[1], info[3:6], info[6]


def test_command_table_entries_match_redis_server(sakerd, redis_port):
    ours = RawConn(("127.0.0.1", sakerd.port))
    theirs = RawConn(("127.0.0.1", redis_port))
    try:
        for name in ("bzpopmin", "bzpopmax", "bzmpop", "xread", "xreadgroup"):
            assert _info_fields(ours, name) == _info_fields(theirs, name)
    finally:
        ours.close()
        theirs.close()


STATS_SCRIPT = """
    a: FLUSHALL
    a: CONFIG RESETSTAT
    b> XREAD BLOCK 0 STREAMS s $
    a: CLIENT UNBLOCK {b}
    b<
    b> BZPOPMIN z 0
    a: CLIENT UNBLOCK {b} ERROR
    b<
    a: XGROUP CREATE s g $ MKSTREAM
    b> XREADGROUP GROUP g c BLOCK 0 STREAMS s >
    a: XGROUP DESTROY s g
    b<
    b> BZMPOP 0 1 z MIN
    a: ZADD z 1 m
    b<
    b: BZPOPMAX z 0.01
"""


def _cmdstats(port):
    c = RawConn(("127.0.0.1", port))
    try:
        c.send(encode_command("INFO", "commandstats"))
        text = c.read_reply().decode()
    finally:
        c.close()
    out = {}
    for line in text.splitlines():
        if line.startswith("cmdstat_"):
            name, rest = line[8:].split(":", 1)
            f = dict(kv.split("=") for kv in rest.split(","))
            out[name] = (f["calls"], f["failed_calls"])
    return out


def test_calls_and_failed_calls_count_as_redis(sakerd, redis_port):
    assert mismatches(sakerd, redis_port, STATS_SCRIPT, 2) == []
    names = ("xread", "xreadgroup", "bzpopmin", "bzpopmax", "bzmpop", "zadd")
    ours, theirs = _cmdstats(sakerd.port), _cmdstats(redis_port)
    assert {n: ours.get(n) for n in names} == {n: theirs.get(n) for n in names}


def test_the_log_stream_wakes_a_reader(sakerd):
    reader = RawConn(("127.0.0.1", sakerd.port))
    writer = RawConn(("127.0.0.1", sakerd.port))
    try:
        rid = reader.call("CLIENT", "ID")[1:-2]
        reader.send(encode_command("XREAD", "BLOCK", "0", "STREAMS", "saker:log", "$"))
        wait_for(lambda: b"flags=b" in writer.call("CLIENT", "LIST", "ID", rid), 10,
                 "the reader to block")
        assert writer.call("EVAL", "redis.log(redis.LOG_WARNING, 'wake up') return 1",
                           "0") == b":1\r\n"
        reply = reader.read_reply()
        assert reply[0][0] == b"saker:log"
        fields = reply[0][1][0][1]
        assert dict(zip(fields[::2], fields[1::2]))[b"msg"] == b"wake up"
        assert dict(zip(fields[::2], fields[1::2]))[b"level"] == b"warning"
    finally:
        reader.close()
        writer.close()


def _in_thread(fn):
    result = {}

    def target():
        try:
            result["value"] = fn()
        except Exception as e:  # reported by the assertion below
            result["value"] = e
    t = threading.Thread(target=target)
    t.start()
    return t, result


def _wait_blocked(r, n):
    wait_for(lambda: r.info("clients")["blocked_clients"] >= n, 30, "%d blocked clients" % n)


def test_redis_py_xread_block_and_bzpopmin_from_threads(sakerd):
    r = redis.Redis(port=sakerd.port, decode_responses=True)
    try:
        r.delete("s", "z")
        first = r.xadd("s", {"n": "0"})
        t1, res1 = _in_thread(lambda: redis.Redis(port=sakerd.port, decode_responses=True)
                              .xread({"s": "$"}, block=0))
        t2, res2 = _in_thread(lambda: redis.Redis(port=sakerd.port, decode_responses=True)
                              .bzpopmin(["z"], timeout=0))
        _wait_blocked(r, 2)
        new = r.xadd("s", {"n": "1"})
        r.zadd("z", {"m": 2.5})
        t1.join(10)
        t2.join(10)
        assert res1["value"] == [["s", [(new, {"n": "1"})]]]
        assert new != first
        assert res2["value"] == ("z", "m", 2.5)
        # A timeout: redis-py sees None after block ms.
        assert r.xread({"s": "$"}, block=30) == []
        assert r.bzpopmax(["z"], timeout=0.03) is None
        assert r.info("clients")["blocked_clients"] == 0
    finally:
        r.close()


def test_many_readers_each_get_every_entry_once(sakerd):
    """Readers that re-block with the last ID they saw miss nothing while a
    writer appends (served in order, each entry once)."""
    r = redis.Redis(port=sakerd.port)
    r.delete("feed")
    n_readers, n_entries = 4, 60

    def reader():
        c = redis.Redis(port=sakerd.port)
        last, got = "0-0", []
        while len(got) < n_entries:
            for _, entries in c.xread({"feed": last}, block=0):
                for eid, fields in entries:
                    got.append(int(fields[b"n"]))
                    last = eid
        c.close()
        return got
    threads = [_in_thread(reader) for _ in range(n_readers)]
    for i in range(n_entries):
        r.xadd("feed", {"n": i})
    for t, _ in threads:
        t.join(20)
    assert [res["value"] for _, res in threads] == [list(range(n_entries))] * n_readers
    r.close()
