"""The keyspace commands (SPEC §5): strings, hashes, lists, keys, expiry.

Replies are byte-exact with Redis 7.0: a script of commands, errors
included, is run against sakerd and a real redis-server and must give the
same bytes in RESP2 and RESP3. The other tests show the wire bytes or the
redis-py values a user sees, expiry with small PX values polled against a
deadline, SCAN's guarantee under concurrent writes, and redis-benchmark
and redis-cli driving the daemon.
"""

import re
import subprocess

import pytest
import redis

from helpers import Daemon, RawConn, require_tool, wait_for


@pytest.fixture(scope="module")
def sakerd(tmp_path_factory):
    d = Daemon(tmp_path_factory.mktemp("keyspace"))
    yield d
    d.stop()


@pytest.fixture
def r(sakerd):
    c = sakerd.client(protocol=2)
    c.flushall()
    return c


@pytest.fixture
def r3(sakerd):
    c = sakerd.client(protocol=3)
    c.flushall()
    return c


# Every command of SPEC §5 with its options and its error cases. Key and
# SCAN order is the hash table's in Redis, so KEYS and SCAN are compared
# as sets in their own tests; TTLs are large enough to read the same.
SCRIPT = """
GET nokey|SET k v|GET k|SET k v EX 0|SET k v EX -1|SET k v PX abc|SET k v EX 10 PX 10
SET k v NX XX|SET k v EX|SET k v KEEPTTL EX 10|SET k v EX 10 EX 20|TTL k|SET k v2 NX
SET k v2 XX GET|SET nk v XX|SET nk v NX GET|SET k v3 GET|SET k v4 foo|SET k v KEEPTTL|TTL k
SET k v EXAT 1|GET k|EXISTS k|SET k v PX 9223372036854775807|SET k v EX 9223372036854776
SET k v EXAT 9999999999|TTL k|SET k v|TTL k|SET k v get get
LPUSH l a b c|GET l|SET l x GET|INCR l|APPEND l x|STRLEN l|GETDEL l|MGET k l nokey
SET n 10|INCR n|INCRBY n 5|DECR n|DECRBY n 3|INCRBY n abc|INCRBY n 1.5|SET n 9223372036854775807
INCR n|DECRBY n -1|SET n -9223372036854775808|DECR n|DECRBY n -9223372036854775808
INCRBY n 9223372036854775808|SET n 010|INCR n|SET n -0|INCR n|SET n +1|INCR n
SET f 10.5|INCRBYFLOAT f 0.1|INCRBYFLOAT f -5e3|INCRBYFLOAT f 1e300|INCRBYFLOAT f -1e300
INCRBYFLOAT f abc|INCRBYFLOAT f inf|INCRBYFLOAT f 1e5000|INCRBYFLOAT f 1e-5000|INCRBYFLOAT f 0x1.8p3
INCRBYFLOAT f .5|INCRBYFLOAT f 5.|INCRBYFLOAT f 1e|INCRBYFLOAT f -1e-20|INCRBYFLOAT f 3e-30|GET f
INCRBYFLOAT g 1e30|INCRBYFLOAT g2 1.2345678901234567890123|INCRBYFLOAT g3 1e4932|INCRBYFLOAT g3 1e4932
INCRBYFLOAT g4 nan|INCRBYFLOAT g5 0.1|INCRBYFLOAT g5 0.2|INCRBYFLOAT g6 5e-18|INCRBYFLOAT g7 1_0
SET s hello|APPEND s +world|APPEND new abc|STRLEN s|STRLEN nokey|GETDEL s|GETDEL s|EXISTS s
MSET a 1 b 2 c 3|MGET a b c d|MSET a|MSET a 1 b|MSETNX a 1 z 2|MSETNX y 1 z 2|SETNX a 5|SETNX q 5
SETEX q 0 v|SETEX q 10 v|PSETEX q 100000 v|GETSET q w|GETSET qq w
HSET h f1 v1 f2 v2|HSET h f1 x f3 v3|HSET h f1|HMSET h f4 v4|HGET h f1|HGET h nof|HGET noh f
HMGET h f1 nof f2|HMGET noh a b|HGETALL h|HGETALL noh|HKEYS h|HVALS h|HKEYS noh|HVALS noh|HLEN h
HLEN noh|HEXISTS h f1|HEXISTS h zz|HDEL h f1 nof|HDEL noh f|HSTRLEN h f2|HINCRBY h n 5
HINCRBY h n -10|HINCRBY h f2 1|HINCRBY h n x|HSET h big 9223372036854775807|HINCRBY h big 1
HINCRBYFLOAT h fl 1.5|HINCRBYFLOAT h fl inf|HINCRBYFLOAT h f2 1|HSETNX h fl 1|HSETNX h new 1
HGETALL h|HDEL h f2 f3 f4 n big fl new|EXISTS h|GET h|HGET k f|HSET k f v|HGETALL k|HINCRBY k f 1
RPUSH r a b c d e|LPUSH r z y|LRANGE r 0 -1|LRANGE r -3 -1|LRANGE r 5 2|LRANGE r -100 100
LRANGE r 0 x|LRANGE nol 0 -1|LLEN r|LLEN nol|LINDEX r 0|LINDEX r -1|LINDEX r 100|LINDEX r x
LINDEX nol 0|LPOP r|RPOP r|LPOP r 2|RPOP r 2|LPOP r 0|LPOP r -1|LPOP r x|LPOP nol|LPOP nol 2
LPOP nol 0|LPOP r 1 2|RPOP r 100|EXISTS r|RPUSH r 1 2 3 4 5 6 7 8 9|LTRIM r 1 -2|LRANGE r 0 -1
LTRIM r 2 1|EXISTS r|LTRIM nol 0 1|RPUSH r 1 2 3|LTRIM r 0 0|LRANGE r 0 -1|LTRIM r x 1|LPUSH k a
LPUSHX nol a|RPUSHX r b|LRANGE r 0 -1|LRANGE k 0 1|LLEN k|LPOP k|RPUSH h x
DEL a b c nokey|DEL a|EXISTS q q nokey|TYPE q|TYPE h|TYPE r|TYPE nokey|UNLINK y z nokey
RENAME nokey x|RENAME q q|RENAME q q2|GET q2|EXPIRE q2 100|RENAME q2 q3|TTL q3|RENAMENX q3 h
RENAMENX q3 q4|RENAMENX nokey z|TTL q4|PTTL nokey|TTL nokey|TTL h|EXPIRE q4 100 NX|EXPIRE q4 200 XX
EXPIRE q4 100 GT|EXPIRE q4 300 GT|EXPIRE q4 400 LT|EXPIRE q4 100 LT|TTL q4|EXPIRE q4 100 NX XX
EXPIRE q4 100 GT LT|EXPIRE q4 100 foo|EXPIRE h 100 XX|EXPIRE h 100 GT|EXPIRE h 100 LT|TTL h
EXPIRE q4 abc|EXPIRE q4 9223372036854776|PEXPIRE q4 9223372036854775807|EXPIRE nokey 10
PERSIST q4|PERSIST q4|PERSIST nokey|TTL q4|EXPIRE q4 -1|EXISTS q4|SET t v|PEXPIREAT t 1|EXISTS t
SET t v|EXPIREAT t 99999999999|TTL t|SCAN abc|SCAN -|SCAN 0 COUNT 0|SCAN 0 COUNT x|SCAN 0 FOO bar
SCAN 0 COUNT|SCAN 18446744073709551616|KEYS nomatch*
GET|SET k|HSET h|LPUSH l|DEL|MGET|EXPIRE k|LPOP
"""


def script_commands():
    return [cmd.split() for line in SCRIPT.strip().splitlines() for cmd in line.split("|")]


@pytest.mark.parametrize("protocol", [2, 3])
def test_every_reply_is_byte_identical_to_redis_server(sakerd, redis_server_port, protocol):
    ours, theirs = RawConn(("127.0.0.1", sakerd.port)), RawConn(("127.0.0.1", redis_server_port))
    try:
        for conn in (ours, theirs):
            if protocol == 3:
                assert conn.call("HELLO", "3").startswith(b"%")
            assert conn.call("FLUSHALL") == b"+OK\r\n"
        mismatches = []
        for args in script_commands():
            mine, real = ours.call(*args), theirs.call(*args)
            if mine != real:
                mismatches.append((" ".join(args), mine, real))
        assert mismatches == []
    finally:
        ours.close()
        theirs.close()


# ---- exact wire bytes ------------------------------------------------------------------

def test_wire_replies_for_missing_keys_and_errors(sakerd):
    c = sakerd.raw()
    c.send(b"FLUSHALL\r\nGET missing\r\nLPUSH l a\r\nGET l\r\nSET n 9223372036854775807\r\n"
           b"INCR n\r\nSET k v EX 0\r\nSET k v NX XX\r\nINCR l\r\nSET f abc\r\nINCR f\r\n"
           b"RENAME nokey x\r\nHSET h f x\r\nHINCRBY h f 1\r\n")
    expected = (b"+OK\r\n$-1\r\n:1\r\n"
                b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"
                b"+OK\r\n-ERR increment or decrement would overflow\r\n"
                b"-ERR invalid expire time in 'set' command\r\n-ERR syntax error\r\n"
                b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"
                b"+OK\r\n-ERR value is not an integer or out of range\r\n"
                b"-ERR no such key\r\n:1\r\n-ERR hash value is not an integer\r\n")
    got = b""
    while len(got) < len(expected):
        got += c.sock.recv(65536)
    assert got == expected


def test_resp3_wire_shapes(sakerd):
    c = sakerd.raw()
    c.send(b"HELLO 3\r\n")
    assert c.read_line().startswith(b"%")
    c.buf = b""      # the rest of the HELLO map is not under test here
    c.send(b"FLUSHALL\r\n")
    while b"+OK\r\n" not in c.buf:
        c._fill()
    c.buf = b""
    c.send(b"GET missing\r\nHSET h a 1\r\nHGETALL h\r\nHGETALL nohash\r\nLPOP nolist 2\r\n"
           b"MGET missing h\r\n")
    expected = b"_\r\n:1\r\n%1\r\n$1\r\na\r\n$1\r\n1\r\n%0\r\n_\r\n*2\r\n_\r\n_\r\n"
    while len(c.buf) < len(expected):
        c._fill()
    assert c.buf == expected


def test_wrongtype_is_counted_in_errorstats(r):
    r.config_resetstat()
    r.rpush("l", "a")
    with pytest.raises(redis.ResponseError, match="^WRONGTYPE Operation against a key"):
        r.get("l")
    assert r.info("errorstats")["errorstat_WRONGTYPE"] == {"count": 1}


# ---- strings -------------------------------------------------------------------------------

def test_string_commands(r):
    assert r.set("k", "v") is True
    assert r.get("k") == b"v"
    assert r.set("k", "w", nx=True) is None
    assert r.set("k", "w", xx=True, get=True) == b"v"
    assert r.set("missing", "x", xx=True) is None
    assert r.getdel("k") == b"w"
    assert r.get("k") is None
    assert r.mset({"a": "1", "b": "2"}) is True
    assert r.mget("a", "nokey", "b") == [b"1", None, b"2"]
    assert r.incr("a") == 2
    assert r.incrby("a", 10) == 12
    assert r.decr("a") == 11
    assert r.decrby("a", 20) == -9
    assert r.incrbyfloat("f", "10.5") == 10.5
    assert r.incrbyfloat("f", "0.1") == 10.6
    assert r.get("f") == b"10.6"        # long double arithmetic, as in Redis
    assert r.incrbyfloat("f", "-0.6") == 10.0
    assert r.get("f") == b"10"
    assert r.append("s", "hello") == 5
    assert r.append("s", " world") == 11
    assert r.strlen("s") == 11
    assert r.strlen("nokey") == 0
    assert r.get("s") == b"hello world"


def test_set_keepttl_and_plain_set_drops_ttl(r):
    r.set("k", "v", ex=100)
    r.set("k", "w", keepttl=True)
    assert 99 <= r.ttl("k") <= 100
    r.incr("n")
    r.expire("n", 100)
    r.incr("n")                         # INCR rewrites in place: TTL kept
    assert 99 <= r.ttl("n") <= 100
    r.set("k", "x")
    assert r.ttl("k") == -1


# ---- hashes ----------------------------------------------------------------------------

def test_hash_commands(r):
    assert r.hset("h", mapping={"f1": "v1", "f2": "v2"}) == 2
    assert r.hset("h", mapping={"f1": "x", "f3": "v3"}) == 1
    assert r.hget("h", "f1") == b"x"
    assert r.hget("h", "nofield") is None
    assert r.hmget("h", ["f1", "nofield", "f3"]) == [b"x", None, b"v3"]
    assert r.hgetall("h") == {b"f1": b"x", b"f2": b"v2", b"f3": b"v3"}
    assert r.hkeys("h") == [b"f1", b"f2", b"f3"]
    assert r.hvals("h") == [b"x", b"v2", b"v3"]
    assert r.hlen("h") == 3
    assert r.hexists("h", "f2") is True
    assert r.hexists("h", "zz") is False
    assert r.hincrby("h", "n", 5) == 5
    assert r.hincrby("h", "n", -7) == -2
    assert r.execute_command("HMSET", "h", "f4", "v4") is True   # +OK
    assert r.hdel("h", "f1", "nofield") == 1
    assert r.hdel("h", "f2", "f3", "f4", "n") == 4
    assert r.exists("h") == 0           # an emptied hash is deleted
    assert r.hgetall("h") == {}


def test_resp3_hash_and_nulls(r3):
    r3.hset("h", mapping={"a": "1", "b": "2"})
    assert r3.hgetall("h") == {b"a": b"1", b"b": b"2"}
    assert r3.get("missing") is None
    assert r3.lpop("nolist", 2) is None
    assert r3.hmget("h", ["a", "zz"]) == [b"1", None]


# ---- lists -----------------------------------------------------------------------------

def test_list_commands(r):
    assert r.rpush("l", "a", "b", "c") == 3
    assert r.lpush("l", "y", "z") == 5
    assert r.lrange("l", 0, -1) == [b"z", b"y", b"a", b"b", b"c"]
    assert r.lrange("l", -2, 100) == [b"b", b"c"]
    assert r.lrange("l", 3, 1) == []
    assert r.llen("l") == 5
    assert r.lindex("l", -1) == b"c"
    assert r.lindex("l", 99) is None
    assert r.lpop("l") == b"z"
    assert r.rpop("l") == b"c"
    assert r.lpop("l", 2) == [b"y", b"a"]
    assert r.rpush("l", "1", "2", "3", "4") == 5
    assert r.rpop("l", 2) == [b"4", b"3"]
    assert r.ltrim("l", 1, -1) is True
    assert r.lrange("l", 0, -1) == [b"1", b"2"]
    assert r.lpop("l", 10) == [b"1", b"2"]
    assert r.exists("l") == 0           # an emptied list is deleted
    assert r.lpop("l") is None
    assert r.lpop("l", 2) is None
    assert r.llen("l") == 0


# ---- keys --------------------------------------------------------------------------------

def test_key_commands(r):
    r.mset({"k1": "a", "k2": "b", "other": "c"})
    r.hset("h", "f", "v")
    r.rpush("l", "x")
    assert r.exists("k1", "k1", "nokey") == 2
    assert [r.type(k) for k in ("k1", "h", "l", "nokey")] == [b"string", b"hash", b"list", b"none"]
    assert sorted(r.keys("k*")) == [b"k1", b"k2"]
    assert sorted(r.keys("*")) == [b"h", b"k1", b"k2", b"l", b"other"]
    assert r.rename("k1", "renamed") is True
    assert r.get("renamed") == b"a"
    with pytest.raises(redis.ResponseError, match="^no such key$"):
        r.rename("k1", "x")
    assert r.delete("renamed", "k2", "nokey") == 2
    assert r.dbsize() == 3


def test_rename_moves_the_ttl(r):
    r.set("src", "v", ex=100)
    r.set("dst", "old")
    r.rename("src", "dst")
    assert r.get("dst") == b"v"
    assert 99 <= r.ttl("dst") <= 100
    assert r.exists("src") == 0


def test_scan_with_match_count_and_type(r):
    r.mset({"user:%d" % i: "x" for i in range(30)})
    r.hset("user:h", "f", "v")
    r.rpush("list:1", "x")
    seen = set()
    cursor = 0
    calls = 0
    while True:
        cursor, keys = r.scan(cursor, match="user:*", count=7)
        seen.update(keys)
        calls += 1
        if cursor == 0:
            break
    assert seen == {b"user:%d" % i for i in range(30)} | {b"user:h"}
    assert calls >= 4                   # COUNT bounds each step
    assert set(r.scan_iter(_type="HASH")) == {b"user:h"}
    assert set(r.scan_iter(match="list:*", _type="list")) == {b"list:1"}


def test_scan_returns_every_key_present_for_the_whole_scan(r):
    stable = {b"stable:%d" % i for i in range(300)}
    interleaved = {}
    for i in range(300):
        interleaved["churn:%d" % i] = "v"
        interleaved["stable:%d" % i] = "v"
    r.mset(interleaved)
    seen = set()
    cursor, step = 0, 0
    while True:
        cursor, keys = r.scan(cursor, count=20)
        seen.update(keys)
        # Delete keys before and after the cursor, add new ones: with a
        # position in the dict's order, deletions would shift keys past it.
        r.delete(*["churn:%d" % (step * 10 + i) for i in range(10)])
        r.mset({"new:%d:%d" % (step, i): "v" for i in range(5)})
        step += 1
        if cursor == 0:
            break
    assert stable <= seen
    assert len(seen & stable) == 300


# ---- expiry ------------------------------------------------------------------------------

def test_px_expiry_lazy_and_ttl_values(r):
    r.set("k", "v", px=100)
    assert 0 < r.pttl("k") <= 100
    assert r.ttl("k") in (0, 1)         # TTL rounds to the nearest second
    wait_for(lambda: r.get("k") is None, 30, "k to expire")
    assert r.ttl("k") == -2
    assert r.pttl("k") == -2
    r.set("p", "v")
    assert r.ttl("p") == -1
    assert r.pexpire("p", 100000) is True
    assert r.persist("p") is True
    assert r.persist("p") is False
    assert r.ttl("p") == -1
    assert r.expire("p", -1) is True    # a time in the past deletes at once
    assert r.exists("p") == 0
    assert r.expire("nokey", 10) is False


def test_active_expiry_removes_keys_nobody_reads(r):
    r.mset({"e%d" % i: "v" for i in range(50)})
    for i in range(50):
        r.pexpire("e%d" % i, 50)
    r.set("keep", "v")
    wait_for(lambda: r.dbsize() == 1, 30, "the expired keys to go")
    assert r.info("stats")["expired_keys"] >= 50
    assert r.keys("*") == [b"keep"]


def test_expire_options(r):
    r.set("k", "v")
    assert r.expire("k", 100, xx=True) is False
    assert r.expire("k", 100, gt=True) is False     # no TTL counts as infinite
    assert r.expire("k", 100, nx=True) is True
    assert r.expire("k", 50, gt=True) is False
    assert r.expire("k", 50, lt=True) is True
    assert 49 <= r.ttl("k") <= 50
    with pytest.raises(redis.ResponseError,
                       match="^NX and XX, GT or LT options at the same time are not compatible$"):
        r.expire("k", 10, nx=True, xx=True)


# ---- external tools ----------------------------------------------------------------------

BENCH_TESTS = ["PING_INLINE", "PING_MBULK", "SET", "GET", "INCR", "LPUSH", "RPUSH",
               "LPOP", "RPOP", "MSET (10 keys)"]


def test_redis_benchmark_runs_every_test_without_errors(sakerd):
    path = require_tool("redis-benchmark")
    proc = subprocess.run([path, "-p", str(sakerd.port), "-t",
                           "ping,set,get,incr,lpush,rpush,lpop,rpop,mset", "-n", "20000", "-q"],
                          capture_output=True, timeout=300)
    out = proc.stdout.decode() + proc.stderr.decode()
    assert proc.returncode == 0, out
    # -q rewrites a progress line with \r; the final figure ends each test.
    finals = re.findall(r"(?:^|\r|\n)\s*([A-Z_]+(?: \(10 keys\))?): ([0-9.]+) requests per second",
                        out)
    assert [name for name, _ in finals] == BENCH_TESTS, out
    assert all(float(rps) > 0 for _, rps in finals)
    assert "ERR" not in out and "error" not in out.lower(), out
    assert sakerd.client(protocol=2).llen("mylist") == 0   # as many pops as pushes


def test_redis_cli_with_arguments(sakerd):
    path = require_tool("redis-cli")

    def cli(*args):
        proc = subprocess.run([path, "-p", str(sakerd.port)] + list(args),
                              capture_output=True, timeout=30)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout.decode()

    assert cli("flushall") == "OK\n"
    assert cli("set", "greeting", "hello world") == "OK\n"
    assert cli("get", "greeting") == "hello world\n"
    assert cli("get", "missing") == "\n"
    assert cli("incrby", "n", "41") == "41\n"
    assert cli("incrbyfloat", "n", "1.5") == "42.5\n"
    assert cli("rpush", "l", "a", "b", "c") == "3\n"
    assert cli("lrange", "l", "0", "-1") == "a\nb\nc\n"
    assert cli("hset", "h", "f", "v") == "1\n"
    assert cli("hgetall", "h") == "f\nv\n"
    assert cli("type", "h") == "hash\n"
    # redis-cli ends an error with an empty line (as with redis-server).
    assert cli("get", "l") == \
        "WRONGTYPE Operation against a key holding the wrong kind of value\n\n"
    assert cli("exists", "greeting", "l", "nope") == "2\n"
    assert cli("del", "greeting") == "1\n"
    # A tty-less redis-cli prints raw replies: nil as an empty line.
    assert cli("--no-raw", "get", "missing") == "(nil)\n"
    assert cli("--no-raw", "lpop", "l", "2") == '1) "a"\n2) "b"\n'
