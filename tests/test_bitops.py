"""Bit operations (bitops.py), side by side with redis-server 7.0.15.

The cases of Redis's tests/unit/bitops.tcl and bitfield.tcl, errors and
edge offsets included, give the same bytes as redis-server in RESP2 and
RESP3; so do seeded random sequences of SETBIT/BITCOUNT/BITPOS/BITOP ranges
and of BITFIELD operations of every width, offset form and overflow mode,
and a hypothesis state machine mixing them with string commands. The
keyspace events, WATCH and the proto-max-bulk-len limit are compared too.
"""

import random

import pytest
from hypothesis import settings
from hypothesis.stateful import run_state_machine_as_test

from helpers import Daemon, RawConn
from parity import close_machine, parity_machine, run_parity
from sidebyside import mismatches
from test_notify import published_frames


@pytest.fixture(scope="module")
def sakerd(tmp_path_factory):
    d = Daemon(tmp_path_factory.mktemp("bitops"))
    yield d
    d.stop()


SCRIPT = r"""
BITCOUNT nokey|BITCOUNT nokey 0 -1|BITCOUNT nokey x y|SET s foobar|BITCOUNT s|BITCOUNT s 0 0|BITCOUNT s 1 1
BITCOUNT s 1 1 BYTE|BITCOUNT s 5 30 BIT|BITCOUNT s 5 30 bit|BITCOUNT s 0 -1 BIT|BITCOUNT s -1 -2|BITCOUNT s -1 -2 FOO
BITCOUNT s 100 200|BITCOUNT s -100 -50|BITCOUNT s 0 1000|BITCOUNT s 1|BITCOUNT s 1 x|BITCOUNT s x 1
BITCOUNT s 0 1 FOO|BITCOUNT s 0 1 BIT x|BITCOUNT s 9223372036854775807 -9223372036854775808 BIT
BITCOUNT s -9223372036854775808 9223372036854775807 BIT|BITCOUNT s 7 7 BIT|BITCOUNT s 47 47 BIT
SET n 1234|BITCOUNT n|GETBIT n 2|BITPOS n 1|SET e ''|BITCOUNT e|BITCOUNT e 0 -1|BITPOS e 0|BITPOS e 1
SETBIT k 7 1|SETBIT k 7 1|SETBIT k 7 0|GET k|SETBIT k 100 1|GET k|STRLEN k|GETBIT k 100|GETBIT k 101
GETBIT k 100000|GETBIT nokey 0|GETBIT k -1|GETBIT k x|SETBIT k -1 1|SETBIT k x 1|SETBIT k 1 2|SETBIT k 1 -1
SETBIT k 1 x|SETBIT k 1 ''|SETBIT k 4294967296 1|SETBIT k 4294967295999 1|GETBIT k 4294967296|SETBIT k 01 1
SETBIT k +1 1|SETBIT k 1 01|SETBIT newk 0 0|GET newk|SETBIT newk2 15 1|GET newk2
BITPOS nokey 0|BITPOS nokey 1|BITPOS nokey 2|BITPOS nokey x|BITPOS s 2|BITPOS s -1|BITPOS s x 1|BITPOS s 1 x
BITPOS z 0|BITPOS z 1|BITPOS o 0|BITPOS o 1|BITPOS o 0 1|BITPOS o 0 0 -1
BITPOS o 0 0 -1 BIT|BITPOS o 1 0 -1 BIT|BITPOS o 0 2 BIT|BITPOS m 0|BITPOS m 1 2|BITPOS m 0 0 0
BITPOS m 0 12 BIT|BITPOS m 1 12 15 BIT|BITPOS m 1 12 20 BIT|BITPOS m 0 3 11 BIT|BITPOS m 1 -5 -1 BIT|BITPOS m 1 5 3
BITPOS m 1 0 0 FOO|BITPOS m 1 x 0 FOO|BITPOS m 1 0 x FOO|BITPOS m 1 0 1 BIT extra|BITPOS m 0 100|BITPOS m 0 -100
BITPOS s 1 9223372036854775807 -9223372036854775808 BIT|BITPOS s 0 -9223372036854775808 BIT
SET a foobar|SET b abcdef|SET c 12|BITOP AND d a b|GET d|BITOP OR d a b c|GET d|BITOP XOR d a b c nokey|GET d
BITOP NOT d a|GET d|BITOP not d nokey|EXISTS d|SET d x|BITOP AND d nokey nokey2|EXISTS d|BITOP NOT d a b
BITOP FOO d a|BITOP AND d|BITOP AND d e|EXISTS d|BITOP and d a|GET d|BITOP XOR a a a|GET a|SET d x|EXPIRE d 100
BITOP OR d b|TTL d|BITOP OR d e nokey|EXISTS d
LPUSH l x|SETBIT l 0 1|GETBIT l 0|BITCOUNT l|BITCOUNT l x|BITPOS l 1|BITPOS l x|BITPOS l 1 x|BITOP AND d l|BITOP AND d a l
BITOP NOT l a|TYPE l|BITFIELD l GET u8 0|BITFIELD l SET u8 0 1|BITFIELD_RO l GET u8 0|BITFIELD l FOO
BITFIELD bf SET i8 0 -100 GET i8 0 SET i8 0 101 GET i8 0|BITFIELD bf SET u8 0 255 GET u8 0 SET u8 0 100 GET u8 0
BITFIELD bf SET u8 0 10 GET u8 0 INCRBY u8 0 100 INCRBY u8 0 100|GET bf|BITFIELD bf|BITFIELD nokey|BITFIELD_RO nokey
BITFIELD bf SET u8 #0 65 SET u8 #1 66 SET u8 #2 67|GET bf|BITFIELD bf GET u8 #2 GET i4 #3 GET u63 #0 GET i64 #1
BITFIELD bf INCRBY u2 100 1 OVERFLOW SAT INCRBY u2 102 1|BITFIELD bf OVERFLOW WRAP INCRBY u2 100 1 INCRBY u2 100 1
BITFIELD bf OVERFLOW sat SET u8 0 1000 SET i8 0 -1000 SET i8 0 1000 GET i8 0|BITFIELD bf OVERFLOW FAIL INCRBY i8 0 -300 GET i8 0
BITFIELD bf SET u8 0 255 OVERFLOW SAT INCRBY u8 0 10 OVERFLOW FAIL INCRBY u8 0 10 OVERFLOW WRAP INCRBY u8 0 10
BITFIELD bf SET i64 0 9223372036854775807 INCRBY i64 0 1 OVERFLOW SAT INCRBY i64 0 9223372036854775807 GET i64 0
BITFIELD bf SET i64 0 -9223372036854775808 OVERFLOW SAT INCRBY i64 0 -1 OVERFLOW FAIL INCRBY i64 0 -1 OVERFLOW WRAP INCRBY i64 0 -1
BITFIELD bf SET u63 0 -1 OVERFLOW SAT SET u63 0 -1 OVERFLOW FAIL SET u63 0 -1 GET u63 0|BITFIELD bf SET i1 0 -1 SET i1 0 1 GET i1 0
BITFIELD bf OVERFLOW SAT SET i8 0 -9223372036854775808 GET i8 0 SET i8 0 9223372036854775807 GET i8 0
BITFIELD bf OVERFLOW SAT SET i4 3 -9223372036854775807 SET i60 2 -9223372036854775808 GET i60 2
BITFIELD bf GET u64 0|BITFIELD bf GET i65 0|BITFIELD bf GET i0 0|BITFIELD bf GET u0 0|BITFIELD bf GET x8 0|BITFIELD bf GET i 0
BITFIELD bf GET i-1 0|BITFIELD bf GET i08 0|BITFIELD bf GET i8 -1|BITFIELD bf GET i8 x|BITFIELD bf GET i8 #-1|BITFIELD bf GET i8 #x
BITFIELD bf GET i8 #|BITFIELD bf GET i8|BITFIELD bf SET i8 0|BITFIELD bf INCRBY i8 0|BITFIELD bf OVERFLOW|BITFIELD bf OVERFLOW FOO
BITFIELD bf FOO i8 0|BITFIELD bf SET i8 0 x|BITFIELD bf SET i8 0 9223372036854775808|BITFIELD bf GET i8 0 FOO
BITFIELD bf GET i8 4294967295|BITFIELD bf GET i8 4294967296|BITFIELD bf GET i64 #67108863|BITFIELD bf GET i64 #67108864
BITFIELD bf GET u8 #536870911|BITFIELD bf GET u8 #536870912|BITFIELD bf GET i64 #1152921504606846976|BITFIELD bf GET i8 #2305843009213693952
BITFIELD bf GET u8 #-1152921504606846976|BITFIELD bf set i8 0 1 get I8 0|BITFIELD bf OVERFLOW FAIL SET i8 0 1000
BITFIELD_RO bf GET i8 0 GET u4 #3|BITFIELD_RO bf SET i8 0 1|BITFIELD_RO bf INCRBY i8 0 1|BITFIELD_RO bf GET i8|BITFIELD_RO bf|BITFIELD_RO bf OVERFLOW SAT
BITFIELD_RO bf FOO|BITFIELD_RO bf GET u64 0|BITFIELD_RO bf OVERFLOW SAT GET i8 0
BITFIELD created OVERFLOW FAIL SET u2 10 7|EXISTS created|GET created|BITFIELD created2 SET u8 0 0|GET created2
BITFIELD s GET u8 0 GET u8 8 GET u16 40 GET i32 44|BITFIELD n GET u8 0
SETBIT|SETBIT k 1|GETBIT k|BITCOUNT|BITPOS k|BITOP AND d|BITFIELD|BITFIELD_RO
"""


@pytest.mark.parametrize("protocol", [2, 3])
def test_bit_commands_are_byte_identical_to_redis_server(sakerd, redis_server_port, protocol):
    setup = [("SET", "z", b"\0\0\0"), ("SET", "o", b"\xff\xff\xff"), ("SET", "m", b"\xff\xf0\x00")]
    assert run_parity(sakerd.port, redis_server_port, SCRIPT, protocol, setup) == []


def _random_range_script(rng, n):
    """SETBITs over a few hundred bytes, then ranges of BITCOUNT and BITPOS
    in BYTE and BIT units (negative, reversed, past the end)."""
    lines = []
    for _ in range(n):
        lines.append("SETBIT r %d %d" % (rng.randrange(1200), rng.randrange(2)))
    for _ in range(n):
        s, e = rng.randrange(-180, 180), rng.randrange(-180, 180)
        key = rng.choice(["r", "ones"])
        lines.append("BITCOUNT %s %d %d" % (key, s, e))
        lines.append("BITCOUNT %s %d %d BIT" % (key, s * 7, e * 9))
        bit = rng.randrange(2)
        lines.append("BITPOS %s %d %d" % (key, bit, s))
        lines.append("BITPOS %s %d %d %d" % (key, bit, s, e))
        lines.append("BITPOS %s %d %d %d BIT" % (key, bit, s * 7, e * 9))
        lines.append("BITPOS %s %d %d -1 BIT" % (key, bit, s * 5))
    for op in ("AND", "OR", "XOR"):
        lines.append("BITOP %s d r ones nokey|GET d|BITOP NOT d d|GET d" % op)
    return "\n".join(lines)


def test_random_bit_ranges_match_redis_server(sakerd, redis_server_port):
    rng = random.Random(1507)
    script = _random_range_script(rng, 150)
    setup = [("SET", "ones", b"\xff" * 10)]
    assert run_parity(sakerd.port, redis_server_port, script, setup=setup) == []


def _random_bitfield(rng):
    args = ["BITFIELD", rng.choice(["f", "f", "g"])]
    for _ in range(rng.randrange(1, 5)):
        sub = rng.choice(["GET", "SET", "INCRBY", "INCRBY", "OVERFLOW"])
        if sub == "OVERFLOW":
            args += ["OVERFLOW", rng.choice(["WRAP", "SAT", "FAIL"])]
            continue
        signed = rng.random() < 0.5
        bits = rng.randrange(1, 65 if signed else 64)
        args += [sub, ("i" if signed else "u") + str(bits),
                 rng.choice([str(rng.randrange(130)), "#%d" % rng.randrange(12)])]
        if sub != "GET":
            args.append(str(rng.choice([
                rng.randrange(-2 ** 63, 2 ** 63), rng.randrange(-300, 300),
                rng.randrange(-2 ** bits, 2 ** bits), 2 ** 63 - 1, -2 ** 63, 0, -1, 1])))
    return args


@pytest.mark.parametrize("protocol", [2, 3])
def test_random_bitfield_sequences_match_redis_server(sakerd, redis_server_port, protocol):
    rng = random.Random(3221 + protocol)
    script = "\n".join(" ".join(_random_bitfield(rng)) for _ in range(700)) + "\nGET f|GET g"
    assert run_parity(sakerd.port, redis_server_port, script, protocol) == []


TEMPLATES = [
    ("", "SETBIT {k} {n} 1"), ("", "SETBIT {k} {n} 0"), ("", "GETBIT {k} {n}"),
    ("", "BITCOUNT {k}"), ("", "BITCOUNT {k} {n} {n} BIT"), ("", "BITPOS {k} 0 {n} {n} BIT"),
    ("", "BITPOS {k} 1 {n}"), ("", "BITOP {m} {k} {k} {k}"), ("", "BITOP NOT {k} {k}"),
    ("", "BITFIELD {k} INCRBY i5 {n} {n} GET u4 #{n}"),
    ("", "BITFIELD {k} OVERFLOW SAT INCRBY u3 {n} {n} OVERFLOW FAIL INCRBY i3 #{n} {n}"),
    ("", "BITFIELD {k} SET u2 {n} {n} OVERFLOW WRAP INCRBY i9 {n} -{n}"),
    ("", "BITFIELD_RO {k} GET i7 {n}"), ("", "GET {k}"), ("", "APPEND {k} {m}"),
    ("", "SETRANGE {k} {n} {m}"), ("", "DEL {k}"), ("", "LPUSH {k} x"), ("", "STRLEN {k}"),
]
KEYS = ["a", "b", "c"]
MEMBERS = ["AND", "OR", "XOR", "x", "\xff", "7"]


@pytest.mark.parametrize("protocol", [2, 3])
def test_random_bit_command_sequences_match_redis_server(sakerd, redis_server_port, protocol):
    machine = parity_machine(sakerd.port, redis_server_port, TEMPLATES, KEYS, MEMBERS, protocol)
    try:
        run_state_machine_as_test(machine, settings=settings(
            max_examples=20, stateful_step_count=30, deadline=None))
    finally:
        close_machine(machine)


def test_offsets_are_limited_by_proto_max_bulk_len(sakerd, redis_server_port):
    script = """
    CONFIG SET proto-max-bulk-len 1mb|SETBIT big 8388607 1|STRLEN big|SETBIT big 8388608 1|GETBIT big 8388608
    BITFIELD big GET u8 #1048575|BITFIELD big GET u8 #1048576|BITFIELD big SET i64 8388607 -1|STRLEN big
    BITCOUNT big|BITCOUNT big -2 -1 BIT|BITPOS big 1|BITPOS big 1 -1|BITPOS big 0 -1 -1 BIT|BITOP NOT big2 big
    BITCOUNT big2|BITPOS big2 0|BITOP XOR big2 big2 big|BITCOUNT big2
    CONFIG SET proto-max-bulk-len 512mb|SETBIT big 4294967296 0|GETBIT big 4294967295|BITFIELD big GET u8 4294967288
    """
    try:
        assert run_parity(sakerd.port, redis_server_port, script) == []
    finally:
        for port in (sakerd.port, redis_server_port):
            RawConn(("127.0.0.1", port)).call("CONFIG", "SET", "proto-max-bulk-len", "512mb")


def test_bitcount_and_bitpos_of_a_large_string(sakerd, redis_server_port):
    """An 8 MB string: counted and searched without a per-byte Python loop
    (the same answers as redis-server, within the test's time)."""
    value = bytes(range(256)) * (8 * 4096)
    setup = [("SET", "big", value), ("SETRANGE", "z", str(len(value) - 1), "\x01"),
             ("SET", "ones", b"\xff" * (1 << 20) + b"\xfe"), ("SET", "allones", b"\xff" * 9000)]
    script = """BITCOUNT big|BITCOUNT big 1 -2|BITCOUNT big 9 8000001 BIT|BITPOS big 1 1|BITPOS z 1
    BITPOS ones 0|BITPOS ones 0 4097|BITPOS ones 0 -1 -1|BITPOS ones 1 -1|BITPOS allones 0|BITPOS allones 0 0 -1
    BITPOS allones 0 8191 -1 BIT|BITPOS allones 1 4096|BITPOS z 0 4096 8191|BITPOS z 1 4096 8191
    BITPOS z 1 -8 -1 BIT|BITPOS z 0 0 -1|BITOP AND d big z|BITCOUNT d|BITOP NOT d big|BITCOUNT d"""
    assert run_parity(sakerd.port, redis_server_port, script, setup=setup) == []


BIT_WRITES = [
    ("SETBIT", "k", "3", "1"), ("SETBIT", "k", "3", "1"), ("SETBIT", "k", "3", "0"),
    ("SETBIT", "k", "30", "0"), ("SETBIT", "k", "3", "0"), ("BITOP", "OR", "d", "k", "nokey"),
    ("BITOP", "AND", "d", "nokey"), ("BITOP", "AND", "d", "nokey"),
    ("BITFIELD", "f", "SET", "u8", "0", "5"), ("BITFIELD", "f", "SET", "u8", "0", "5"),
    ("BITFIELD", "f", "GET", "u8", "0"), ("BITFIELD", "f", "INCRBY", "u8", "0", "1"),
    ("BITFIELD", "g", "OVERFLOW", "FAIL", "SET", "u2", "0", "9"),
    ("BITFIELD", "f", "OVERFLOW", "FAIL", "INCRBY", "u8", "0", "1000"),
    ("BITFIELD", "f", "SET", "u8", "100", "0"), ("BITFIELD_RO", "f", "GET", "u8", "0"),
    ("BITCOUNT", "f"), ("GETBIT", "f", "1"), ("BITPOS", "f", "1"),
]


@pytest.mark.parametrize("protocol", [2, 3])
def test_bit_writes_publish_redis_s_keyspace_events(sakerd, redis_server_port, protocol):
    ours = published_frames(sakerd.port, "KEAn", BIT_WRITES, protocol)
    assert ours == published_frames(redis_server_port, "KEAn", BIT_WRITES, protocol)
    events = [f[1] for f in ours if f[0] == "frame" and b"keyevent" in f[1]]
    assert [e.split(b"\r\n")[-4] for e in events][:3] == [b"__keyevent@0__:new",
                                                          b"__keyevent@0__:setbit",
                                                          b"__keyevent@0__:setbit"]


WATCH = """
a: SET k \\x01
a: WATCH k
b: SETBIT k 7 1
a: MULTI
a: GET k
a: EXEC
a: WATCH k
b: SETBIT k 6 0
b: GETBIT k 7
a: MULTI
a: GET k
a: EXEC
a: WATCH k d
b: BITOP NOT d k
a: MULTI
a: GET d
a: EXEC
a: WATCH k
b: BITFIELD k SET u8 0 1
a: MULTI
a: GET k
a: EXEC
a: WATCH k
b: BITFIELD k OVERFLOW FAIL INCRBY u8 0 300
b: BITFIELD k GET u8 0
a: MULTI
a: GET k
a: EXEC
"""


def test_watch_sees_only_the_bit_writes_that_change_the_key(sakerd, redis_server_port):
    for conn_port in (sakerd.port, redis_server_port):
        RawConn(("127.0.0.1", conn_port)).call("FLUSHALL")
    assert mismatches(sakerd.port, redis_server_port, WATCH) == []
