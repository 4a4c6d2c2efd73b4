"""HyperLogLog (hyperloglog.py), side by side with redis-server 7.0.15.

The acceptance test is GET of an HLL key: the same PFADDs and PFMERGEs give
redis-server's bytes (header, cached cardinality, sparse opcodes or dense
registers) and PFCOUNT its estimate, in RESP2 and RESP3. Covered: the
cases of Redis's tests/unit/hyperloglog.tcl, seeded random sequences that
promote sparse HLLs to dense (also under a small hll-sparse-max-bytes),
a hypothesis state machine that also corrupts values with SETRANGE/APPEND,
crafted corrupt sparse values, keyspace events and WATCH.
"""

import random

import pytest
from hypothesis import settings
from hypothesis.stateful import run_state_machine_as_test

from helpers import Daemon, RawConn
from parity import close_machine, parity_machine, run_parity
from sidebyside import mismatches
from test_notify import published_frames

HEADER = b"HYLL\x01\x00\x00\x00" + bytes(7) + b"\x80"


@pytest.fixture(scope="module")
def sakerd(tmp_path_factory):
    d = Daemon(tmp_path_factory.mktemp("hll"))
    yield d
    d.stop()


SCRIPT = """
PFADD hll|EXISTS hll|GET hll|PFCOUNT hll|PFADD hll a b c|PFADD hll a b c|GET hll|PFADD hll ''|PFCOUNT hll|GET hll
PFCOUNT hll|PFADD hll 1 2 3 4 5|PFCOUNT hll|PFADD hll 6 7 8 8 9 10|PFCOUNT hll|GET hll|PFDEBUG DECODE hll
PFDEBUG ENCODING hll|PFDEBUG encoding hll|PFDEBUG GETREG hll|PFDEBUG ENCODING hll|GET hll|PFDEBUG TODENSE hll
PFDEBUG DECODE hll|PFCOUNT hll|PFADD hll x y|GET hll|PFCOUNT hll|PFDEBUG FOO hll|PFDEBUG FOO nokey|PFDEBUG GETREG nokey
PFDEBUG ENCODING|PFDEBUG ENCODING hll extra|PFCOUNT nokey|PFCOUNT nokey nokey2|PFMERGE dst nokey|GET dst|EXISTS dst
PFADD h1 a b c|PFADD h2 b c d|PFADD h3 c d e|PFMERGE hm h1 h2 h3|PFCOUNT hm|GET hm|PFCOUNT h1 h2 h3|PFCOUNT h1 nokey h3
PFMERGE h1 h1|GET h1|PFMERGE hm hll h1|GET hm|PFCOUNT hm|PFMERGE h2 nokey|GET h2|PFDEBUG TODENSE h3|PFMERGE h4 h1 h3|GET h4
PFMERGE h5 h3|GET h5|PFCOUNT h3 h1|PFDEBUG GETREG h4
SET str foo|PFADD str a|PFCOUNT str|PFMERGE str h1|PFMERGE h1 str|PFCOUNT h1 str|PFDEBUG ENCODING str|GET h1
LPUSH l a|PFADD l a|PFCOUNT l|PFCOUNT h1 l|PFMERGE l h1|PFMERGE h1 l|PFDEBUG ENCODING l|SET n 12345678901234567
PFADD n a|SET hy HYLL|PFADD hy a|SET hy2 HYLLxxxxxxxxxxxxxxxxx|PFCOUNT hy2
PFADD|PFCOUNT|PFMERGE|PFDEBUG|PFDEBUG GETREG|PFSELFTEST x
"""


@pytest.mark.parametrize("protocol", [2, 3])
def test_hll_commands_are_byte_identical_to_redis_server(sakerd, redis_server_port, protocol):
    assert run_parity(sakerd.port, redis_server_port, SCRIPT, protocol) == []


def test_pfselftest_passes(sakerd):
    assert sakerd.raw().call("PFSELFTEST") == b"+OK\r\n"


def _elements(rng, n):
    return " ".join(str(rng.random()) for _ in range(n))


def _growing_script(rng):
    """PFADDs of random batches until the HLL turns dense, its bytes and
    estimate read after each, then merges of sparse and dense HLLs."""
    lines = []
    for i in range(45):
        lines.append("PFADD g %s|GET g|PFCOUNT g|PFDEBUG ENCODING g" % _elements(rng, 1 + i * 4))
        if i % 9 == 0:
            lines.append("PFADD s%d %s|GET s%d" % (i, _elements(rng, 1 + i), i))
    lines.append("PFMERGE m s0 s9 s18|GET m|PFCOUNT m s27 s36|PFMERGE m2 s27 g s36|GET m2|PFCOUNT m2")
    lines.append("PFMERGE s9 s0|GET s9|PFCOUNT g s0 s9 nokey|PFDEBUG TODENSE s18|GET s18|PFCOUNT s18")
    return "\n".join(lines)


def test_random_adds_and_merges_give_redis_server_s_bytes(sakerd, redis_server_port):
    script = _growing_script(random.Random(1000))
    assert run_parity(sakerd.port, redis_server_port, script) == []


def test_hll_sparse_max_bytes_decides_the_promotion(sakerd, redis_server_port):
    rng = random.Random(3000)
    script = "CONFIG GET hll-sparse-max-bytes|CONFIG SET hll-sparse-max-bytes 120\n" + "\n".join(
        "PFADD p %s|GET p|PFDEBUG ENCODING p|PFADD q%d %s|PFMERGE p2 p2 q%d|GET p2"
        % (_elements(rng, 3), i % 3, _elements(rng, 2), i % 3) for i in range(30))
    script += "\nCONFIG SET hll-sparse-max-bytes 0|PFADD z a|PFADD z b|GET z"
    # A large limit keeps crowded HLLs sparse: runs of equal adjacent
    # registers (merged VAL opcodes) become common, in PFADD and in PFMERGE.
    script += "\nCONFIG SET hll-sparse-max-bytes 12000\n" + "\n".join(
        "PFADD w %s|GET w|PFCOUNT w" % _elements(rng, 500) for _ in range(6))
    script += "\nPFADD dd %s|PFDEBUG TODENSE dd|PFMERGE w2 dd|GET w2|PFMERGE w3 w2 w|GET w3" % (
        _elements(rng, 2500))
    try:
        assert run_parity(sakerd.port, redis_server_port, script) == []
    finally:
        for port in (sakerd.port, redis_server_port):
            RawConn(("127.0.0.1", port)).call("CONFIG", "SET", "hll-sparse-max-bytes", "3000")


CORRUPT = {
    "covers 16384 then a VAL": HEADER + b"\x7f\xff\x80",
    "covers 16384 then a ZERO": HEADER + b"\x7f\xff\x00",
    "a VAL run past the end": HEADER + b"\x7f\xfe\x81\x00",
    "one register short": HEADER + b"\x7f\xfe",
    "exact with a VAL": HEADER + b"\x7f\xfe\x80",
    "truncated XZERO": HEADER + b"\x7f\xfe\x80\x40",
    "twice the registers": HEADER + b"\x7f\xff\x7f\xff\x80",
    "VAL 32 runs": HEADER + b"\xff" * 4096,
    "header only": HEADER,
    "cached card": b"HYLL\x01\x00\x00\x00\x07\x00\x00\x00\x00\x00\x00\x00\x7f\xff",
    "dense short": b"HYLL\x00" + bytes(100),
    "encoding 2": b"HYLL\x02" + bytes(20),
}


@pytest.mark.parametrize("name", sorted(CORRUPT))
def test_corrupt_sparse_values_are_judged_as_redis_server_judges_them(sakerd, redis_server_port,
                                                                      name):
    script = """PFCOUNT c|GET c|PFCOUNT c nokey|PFCOUNT nokey c|PFMERGE d c|GET d|DEL d|PFADD c a b
    GET c|PFDEBUG DECODE c|PFDEBUG TODENSE c|GET c|PFDEBUG GETREG c|PFADD c 1 2 3 4 5 6 7 8 9 10 11 12|GET c"""
    setup = [("SET", "c", CORRUPT[name])]
    assert run_parity(sakerd.port, redis_server_port, script, setup=setup) == []


def test_randomly_corrupted_hlls_are_detected_as_redis_server_does(sakerd, redis_server_port):
    """hyperloglog.tcl's fuzzing, each corruption replayed on both servers."""
    rng = random.Random(77)
    lines = []
    for _ in range(50):
        lines.append("DEL c|PFADD c %s" % _elements(rng, rng.randrange(1, 400)))
        for _ in range(5):
            # Offsets past the 16-byte header, within the smallest value.
            lines.append("SETRANGE c %d %s" % (rng.randrange(16, 20), rng.choice("z@\x7f\x80?A")))
            if rng.random() < 0.5:
                break
        lines.append("GET c|PFCOUNT c|PFADD c x y z|GET c|PFCOUNT c h|PFMERGE c h|GET c")
    assert run_parity(sakerd.port, redis_server_port, "\n".join(lines),
                      setup=[("PFADD", "h", "a")]) == []


TEMPLATES = [
    ("", "PFADD {k} {m}"), ("", "PFADD {k} {m} {m} {m} {m}"), ("", "PFCOUNT {k}"),
    ("", "PFCOUNT {k} {k}"), ("", "PFMERGE {k} {k} {k}"), ("", "GET {k}"),
    ("", "PFDEBUG ENCODING {k}"), ("", "PFDEBUG DECODE {k}"), ("", "PFDEBUG TODENSE {k}"),
    ("", "SETRANGE {k} {n}7 {m}"), ("", "APPEND {k} {m}"), ("", "DEL {k}"), ("", "SET {k} {m}"),
]
KEYS = ["a", "b", "c"]
MEMBERS = ["1", "2", "x", "yy", "", "HYLL", "\x80", "foo-%d"]


@pytest.mark.parametrize("protocol", [2, 3])
def test_random_hll_sequences_match_redis_server(sakerd, redis_server_port, protocol):
    members = [m % i if "%" in m else m for m in MEMBERS for i in range(12)]
    machine = parity_machine(sakerd.port, redis_server_port, TEMPLATES, KEYS, members, protocol)
    try:
        run_state_machine_as_test(machine, settings=settings(
            max_examples=15, stateful_step_count=30, deadline=None))
    finally:
        close_machine(machine)


HLL_WRITES = [
    ("PFADD", "h", "a"), ("PFADD", "h", "a"), ("PFADD", "h"), ("PFADD", "g"), ("PFCOUNT", "h"),
    ("PFCOUNT", "h"), ("PFCOUNT", "h", "g"), ("PFMERGE", "h", "g"), ("PFMERGE", "new", "nokey"),
    ("PFDEBUG", "TODENSE", "h"), ("PFDEBUG", "GETREG", "g"), ("PFADD", "h", "b"),
]


@pytest.mark.parametrize("protocol", [2, 3])
def test_hll_writes_publish_redis_s_keyspace_events(sakerd, redis_server_port, protocol):
    ours = published_frames(sakerd.port, "KEAn", HLL_WRITES, protocol)
    assert ours == published_frames(redis_server_port, "KEAn", HLL_WRITES, protocol)
    events = [f[1].split(b"\r\n")[-4] for f in ours if f[0] == "frame" and b"keyevent" in f[1]]
    assert events[:3] == [b"__keyevent@0__:new", b"__keyevent@0__:pfadd",
                          b"__keyevent@0__:new"]


WATCH = """
a: PFADD h a
a: WATCH h
b: PFADD h a
a: MULTI
a: PFCOUNT h
a: EXEC
a: WATCH h
b: PFCOUNT h
a: MULTI
a: PFCOUNT h
a: EXEC
a: WATCH h
b: PFCOUNT h
a: MULTI
a: GET h
a: EXEC
a: WATCH h
b: PFMERGE h h
a: MULTI
a: GET h
a: EXEC
a: WATCH h
b: PFDEBUG TODENSE h
a: MULTI
a: PFDEBUG ENCODING h
a: EXEC
"""


def test_watch_sees_pfadd_pfmerge_and_a_cache_update(sakerd, redis_server_port):
    for port in (sakerd.port, redis_server_port):
        RawConn(("127.0.0.1", port)).call("FLUSHALL")
    assert mismatches(sakerd.port, redis_server_port, WATCH) == []
