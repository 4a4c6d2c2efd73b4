"""Sets (t_set.py), side by side with redis-server 7.0.15.

The scripted commands, errors included, give the same bytes as
redis-server in RESP2 and RESP3 (parity.py: replies of hash-table sets are
compared as sorted lists, intsets byte for byte, random replies by shape).
A hypothesis state machine then drives both with random sequences over a
few keys and members (integers and not, so sets change encoding), and the
random commands are checked for what they promise.
"""

import pytest
from hypothesis import settings
from hypothesis.stateful import run_state_machine_as_test

from helpers import Daemon
from parity import close_machine, parity_machine, run_parity


@pytest.fixture(scope="module")
def sakerd(tmp_path_factory):
    d = Daemon(tmp_path_factory.mktemp("sets"))
    yield d
    d.stop()


@pytest.fixture
def r(sakerd):
    c = sakerd.client(protocol=2)
    c.flushall()
    return c


SCRIPT = """
SADD s 3 1 2|SADD s 2 4|SMEMBERS s|SCARD s|SISMEMBER s 1|SISMEMBER s 9|SISMEMBER nos 1
SMISMEMBER s 1 9 2|SMISMEMBER nos a b|SADD s 010|~SMEMBERS s|SADD i 5 -3 0 9223372036854775807 -9223372036854775808
SMEMBERS i|SADD i 9223372036854775808|~SMEMBERS i|SADD j 1 2 3|SREM j 2 9|SREM j 1 3|EXISTS j|SREM nos a
SADD h a b c|~SMEMBERS h|SMEMBERS nos|SCARD nos|SET str x|SADD str a|SMEMBERS str|SCARD str|SISMEMBER str a
SMISMEMBER str a|SREM str a|SPOP str|SRANDMEMBER str|SMOVE str s a|SMOVE s str 1|SINTER s str|SUNION s str
SDIFF str s|SINTERCARD 1 str|SINTERSTORE d str|SSCAN str 0
SADD a 1 2 3 4 5|SADD b 3 4 5 6|SADD c 5 6 7|SINTER a b|SINTER a b c|SINTER a nos|SINTER nos a
SUNION a b c|SUNION nos|SDIFF a b|SDIFF a b c|SDIFF nos a|SDIFF a a|SDIFF a nos|SDIFF b a c
SINTERSTORE d a b|SMEMBERS d|SINTERSTORE d a nos|EXISTS d|SUNIONSTORE d a c|SMEMBERS d|SDIFFSTORE d a b
SMEMBERS d|SET d x|EXPIRE d 100|SUNIONSTORE d a|TTL d|SDIFFSTORE d a a|EXISTS d|SDIFFSTORE d nos|SINTERSTORE d nos
SINTERCARD 2 a b|SINTERCARD 2 a b LIMIT 1|SINTERCARD 2 a b LIMIT 0|SINTERCARD 3 a b c LIMIT 10
SINTERCARD 0 a|SINTERCARD -1 a|SINTERCARD x a|SINTERCARD 3 a b|SINTERCARD 1 a LIMIT|SINTERCARD 1 a LIMIT -1
SINTERCARD 1 a LIMIT x|SINTERCARD 1 a FOO 1|SINTERCARD 1 nos|SINTERCARD 2 a nos
SMOVE a b 1|SMEMBERS a|SMEMBERS b|SMOVE a b 9|SMOVE nos b 1|SMOVE a a 2|SMOVE a a 9|SMOVE a newk 2|SMEMBERS newk
SADD one x|SMOVE one b x|EXISTS one|~SMEMBERS b|SMOVE b a x|~SMEMBERS a|TYPE a|TYPE nos
SPOP nos|SPOP nos 1|SPOP nos 0|SPOP a 0|SPOP a -1|SPOP a x|SPOP a 1 2|SADD p 1 2 3|SPOP p 3|EXISTS p|SADD p 7|SPOP p|EXISTS p
SADD p 1 2 3|SPOP p 10|SRANDMEMBER nos|SRANDMEMBER nos 5|SRANDMEMBER nos -5|SRANDMEMBER nos 0|SRANDMEMBER a 0
SRANDMEMBER a x|SRANDMEMBER a 1 2|~SRANDMEMBER a 100|SRANDMEMBER a -9223372036854775808|?SRANDMEMBER a -5|?SRANDMEMBER a 2
?SRANDMEMBER a|SADD rr 1 2 3 4 5 6 7 8|?SPOP rr|?SPOP rr 2|SCARD rr|?SPOP rr 10|EXISTS rr|SSCAN nos 0|SSCAN nos x|SSCAN a x|^SSCAN a 0|SSCAN a 0 COUNT 0|SSCAN a 0 COUNT x
SSCAN a 0 MATCH 5*|SSCAN a 0 FOO|SSCAN a 0 COUNT|SSCAN nos 0 FOO|SSCAN a 0 TYPE string|SSCAN a 18446744073709551616
SADD|SADD s|SREM s|SCARD|SISMEMBER s|SMISMEMBER s|SMOVE a b|SINTER|SINTERSTORE d|SPOP|SRANDMEMBER|SSCAN a
SUNIONSTORE d|SDIFFSTORE d|SINTERCARD 1
"""


@pytest.mark.parametrize("protocol", [2, 3])
def test_set_commands_are_byte_identical_to_redis_server(sakerd, redis_server_port, protocol):
    assert run_parity(sakerd.port, redis_server_port, SCRIPT, protocol) == []


TEMPLATES = [
    ("", "SADD {k} {m}"), ("", "SADD {k} {m} {m} {m}"), ("", "SREM {k} {m} {m}"),
    ("~", "SMEMBERS {k}"), ("", "SCARD {k}"), ("", "SISMEMBER {k} {m}"),
    ("", "SMISMEMBER {k} {m} {m}"), ("", "SMOVE {k} {k} {m}"), ("~", "SINTER {k} {k}"),
    ("~", "SUNION {k} {k} {k}"), ("~", "SDIFF {k} {k}"), ("", "SINTERCARD 2 {k} {k}"),
    ("", "SINTERSTORE {k} {k} {k}"), ("", "SUNIONSTORE {k} {k} {k}"),
    ("", "SDIFFSTORE {k} {k} {k}"), ("", "TYPE {k}"), ("", "DEL {k}"), ("", "SET {k} {m}"),
    ("^", "SSCAN {k} 0 COUNT 100"), ("", "OBJECT ENCODING {k}"), ("~", "SORT {k} ALPHA"),
]
KEYS = ["a", "b", "c"]
MEMBERS = ["1", "2", "-7", "10", "007", "x", "yy", "3.5"]


@pytest.mark.parametrize("protocol", [2, 3])
def test_random_set_sequences_match_redis_server(sakerd, redis_server_port, protocol):
    machine = parity_machine(sakerd.port, redis_server_port, TEMPLATES, KEYS, MEMBERS, protocol)
    try:
        run_state_machine_as_test(machine, settings=settings(
            max_examples=25, stateful_step_count=30, deadline=None))
    finally:
        close_machine(machine)


def test_intset_turns_into_a_hashtable_past_set_max_intset_entries(r, sakerd):
    r.config_set("set-max-intset-entries", 4)
    try:
        r.sadd("s", 4, 3, 2, 1)
        assert r.object("encoding", "s") == b"intset"
        # An intset replies in numeric order, as Redis's does.
        assert sakerd.raw().call("SMEMBERS", "s") == b"*4\r\n$1\r\n1\r\n$1\r\n2\r\n" \
            b"$1\r\n3\r\n$1\r\n4\r\n"
        r.sadd("s", 5)
        assert r.object("encoding", "s") == b"hashtable"
        r.srem("s", 5)
        assert r.object("encoding", "s") == b"hashtable"     # never converts back
    finally:
        r.config_set("set-max-intset-entries", 512)


def test_spop_removes_what_it_returns(r):
    r.sadd("s", *range(20))
    popped = r.spop("s", 5)
    assert len(popped) == 5 and len(set(popped)) == 5
    assert r.scard("s") == 15
    assert not any(r.sismember("s", m) for m in popped)
    one = r.spop("s")
    assert one not in popped and not r.sismember("s", one)
    rest = r.spop("s", 100)
    assert len(rest) == 14 and r.exists("s") == 0


def test_srandmember_counts(r):
    r.sadd("s", "a", "b", "c")
    many = r.srandmember("s", -10)
    assert len(many) == 10 and set(many) <= {b"a", b"b", b"c"}
    two = r.srandmember("s", 2)
    assert len(two) == 2 and len(set(two)) == 2 and set(two) <= {b"a", b"b", b"c"}
    assert sorted(r.srandmember("s", 3)) == [b"a", b"b", b"c"]
    assert r.scard("s") == 3


def test_sscan_of_a_large_set_returns_every_member_once(r):
    members = {b"m%d" % i for i in range(1000)}
    r.sadd("big", *members)
    seen = []
    cursor = 0
    calls = 0
    while True:
        cursor, batch = r.sscan("big", cursor, count=50)
        seen += batch
        calls += 1
        if cursor == 0:
            break
    assert calls > 10
    assert len(seen) == 1000 and set(seen) == members


def test_type_rename_expire_and_scan_type_know_sets(r):
    r.sadd("s", "a")
    assert r.type("s") == b"set"
    r.rename("s", "t")
    assert r.smembers("t") == {b"a"}
    r.pexpire("t", 50)
    assert r.scan(0, _type="set") == (0, [b"t"])
    assert r.keys("*") == [b"t"]
