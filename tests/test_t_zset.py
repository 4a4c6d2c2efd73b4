"""Sorted sets (t_zset.py), side by side with redis-server 7.0.15.

The scripted commands, errors included, give the same bytes as
redis-server in RESP2 and RESP3: score parsing (strtod's corners: "",
" 1", 0x10, 1e-310, 1e400, nan) and printing (%.17g, inf, -0 in a listpack),
ranges by rank, score and lex with LIMIT and REV, the set operations with
WEIGHTS and AGGREGATE (NaN sums), pops and ZMPOP's shapes. A hypothesis
state machine drives both with random sequences; a Lua plugin keeps a
top-N through saker.call.
"""

import pytest
from hypothesis import settings
from hypothesis.stateful import run_state_machine_as_test

from helpers import Daemon
from parity import close_machine, parity_machine, run_parity


@pytest.fixture(scope="module")
def sakerd(tmp_path_factory):
    d = Daemon(tmp_path_factory.mktemp("zsets"))
    yield d
    d.stop()


@pytest.fixture
def r(sakerd):
    c = sakerd.client(protocol=2)
    c.flushall()
    return c


SCRIPT = """
ZADD z 1 a 2 b 3 c|ZRANGE z 0 -1|ZRANGE z 0 -1 WITHSCORES|ZADD z 1.5 a|ZADD z CH 1.5 a 2.5 b 4 d|ZCARD z|ZSCORE z a
ZSCORE z nom|ZSCORE noz a|ZMSCORE z a nom d|ZMSCORE noz a b|ZADD z NX 10 a 5 e|ZADD z XX 10 a 6 f|ZRANGE z 0 -1 WITHSCORES
ZADD z GT 5 a|ZADD z GT CH 20 a|ZADD z LT CH 30 a 1 b|ZADD z LT XX CH 0 c 0 zz|ZADD z NX XX 1 a|ZADD z NX GT 1 a
ZADD z GT LT 1 a|ZADD z INCR 1 a 2 b|ZADD z INCR 2 a|ZADD z INCR NX 2 a|ZADD z INCR XX 2 nom|ZADD z INCR GT -1 a
ZADD z 1|ZADD z 1 a 2|ZADD z|ZADD z x a|ZADD z nan a|ZADD z inf a -inf b|ZRANGE z 0 -1 WITHSCORES|ZADD z INCR -inf a
ZADD z INCR +inf b|ZADD z 1e400 a|ZADD z 1e-400 a|ZADD z ' 1' a|ZADD z '1 ' a|ZADD z 0x10 h|ZADD z 1e-310 i|ZADD z -0 j
ZADD z .5 k 5. l 1e3 m 1E+2 n|ZRANGE z 0 -1 WITHSCORES|ZADD z 0.1 p 3.14159265358979 q 1e20 r 123456789012345678 s
ZRANGE z 0 -1 WITHSCORES|ZINCRBY z 1 nz|ZINCRBY z x a|ZINCRBY z 1|ZINCRBY z 0.1 p|ZINCRBY z -inf a|ZSCORE z a|ZINCRBY z inf a
SET str v|ZADD str 1 a|ZINCRBY str 1 a|ZRANGE str 0 -1|ZSCORE str a|ZCARD str|ZREM str a|ZPOPMIN str|ZRANK str a|ZMSCORE str a
ZUNION 1 str|ZINTERSTORE d 2 z str|ZSCAN str 0|ZRANDMEMBER str|ZCOUNT str 0 1|ZLEXCOUNT str - +|ZMPOP 1 str MIN
DEL z|ZADD z 1 a 2 b 3 c 4 d 5 e|ZRANK z a|ZRANK z e|ZREVRANK z a|ZRANK z nom|ZRANK noz a|ZREVRANK noz a
ZRANGE z 1 3|ZRANGE z -2 -1|ZRANGE z 3 1|ZRANGE z -100 100 WITHSCORES|ZRANGE z 0 x|ZRANGE noz 0 -1|ZRANGE z 0 -1 REV
ZRANGE z 1 2 REV WITHSCORES|ZREVRANGE z 0 1|ZREVRANGE z 0 1 WITHSCORES|ZREVRANGE z 0 1 REV|ZREVRANGE z 0 1 LIMIT 0 1
ZRANGE z 0 1 LIMIT 0 1|ZRANGE z 0 1 BYLEX WITHSCORES|ZRANGE z 0 1 FOO|ZRANGE z 0 -1 BYSCORE|ZRANGE z 2 4 BYSCORE WITHSCORES
ZRANGE z (2 4 BYSCORE|ZRANGE z (2 (4 BYSCORE|ZRANGE z -inf +inf BYSCORE LIMIT 1 2|ZRANGE z -inf +inf BYSCORE LIMIT 1 -1
ZRANGE z -inf +inf BYSCORE LIMIT -1 2|ZRANGE z -inf +inf BYSCORE LIMIT 5 2|ZRANGE z -inf +inf BYSCORE LIMIT 0 0
ZRANGE z 4 2 BYSCORE REV|ZRANGE z +inf -inf BYSCORE REV LIMIT 1 2 WITHSCORES|ZRANGE z x 1 BYSCORE|ZRANGE z ( 3 BYSCORE
ZRANGE z '' 3 BYSCORE|ZRANGE z ' 2' 3 BYSCORE|ZRANGE z nan 3 BYSCORE|ZRANGE z (nan 3 BYSCORE|ZRANGE z 1e999 1e999 BYSCORE
ZRANGE z -1e999 2 BYSCORE|ZRANGE z 0x2 3 BYSCORE|ZRANGE z 2 3 BYSCORE LIMIT 0|ZRANGE z 2 3 BYSCORE LIMIT x 1
ZRANGEBYSCORE z 2 4|ZRANGEBYSCORE z 2 4 WITHSCORES LIMIT 1 1|ZRANGEBYSCORE z 2 4 REV|ZRANGEBYSCORE z 2 4 BYSCORE
ZREVRANGEBYSCORE z 4 2|ZREVRANGEBYSCORE z 2 4|ZREVRANGEBYSCORE z +inf -inf WITHSCORES LIMIT 0 2|ZRANGEBYSCORE noz 0 1
ZCOUNT z 2 4|ZCOUNT z (2 4|ZCOUNT z -inf +inf|ZCOUNT z 5 1|ZCOUNT z x 1|ZCOUNT noz 0 1
DEL l|ZADD l 0 a 0 b 0 c 0 d 0 e 0 f|ZRANGEBYLEX l - +|ZRANGEBYLEX l [b [d|ZRANGEBYLEX l (b (d|ZRANGEBYLEX l [b +
ZRANGEBYLEX l - (c|ZRANGEBYLEX l + -|ZRANGEBYLEX l [d [b|ZRANGEBYLEX l [b [b|ZRANGEBYLEX l (b [b|ZRANGEBYLEX l b d
ZRANGEBYLEX l - + LIMIT 1 2|ZRANGEBYLEX l - + WITHSCORES|ZRANGEBYLEX l -a +|ZRANGEBYLEX l [ +|ZRANGEBYLEX l ( +
ZREVRANGEBYLEX l + -|ZREVRANGEBYLEX l [d [b|ZREVRANGEBYLEX l + - LIMIT 1 2|ZRANGE l [b [d BYLEX|ZRANGE l [d [b BYLEX REV
ZRANGE l - + BYLEX LIMIT 2 3|ZLEXCOUNT l - +|ZLEXCOUNT l [b (e|ZLEXCOUNT l x y|ZLEXCOUNT noz - +|ZRANGEBYLEX noz - +
ZRANGESTORE d z 0 2|ZRANGE d 0 -1 WITHSCORES|ZRANGESTORE d z 2 4 BYSCORE REV|ZRANGE d 0 -1 WITHSCORES
ZRANGESTORE d l [b [d BYLEX LIMIT 0 2|ZRANGE d 0 -1|ZRANGESTORE d z 0 1 WITHSCORES|ZRANGESTORE d noz 0 -1|EXISTS d
ZRANGESTORE d z 10 20|ZRANGESTORE d str 0 1|SET d x|ZRANGESTORE d z 0 0|TYPE d
ZREM z a nom|ZREM z nom|ZREM noz a|ZREMRANGEBYRANK z 0 0|ZRANGE z 0 -1|ZREMRANGEBYRANK z x 1|ZREMRANGEBYRANK noz 0 1
ZREMRANGEBYRANK z 5 10|ZADD z 1 a 6 f 7 g|ZREMRANGEBYSCORE z (1 3|ZRANGE z 0 -1 WITHSCORES|ZREMRANGEBYSCORE z x 1
ZREMRANGEBYLEX l [b (d|ZRANGE l 0 -1|ZREMRANGEBYLEX l a b|ZREMRANGEBYLEX l - +|EXISTS l|ZREMRANGEBYRANK z 0 -1|EXISTS z
ZADD z 1 a 2 b 3 c 4 d 5 e|ZPOPMIN z|ZPOPMAX z|ZPOPMIN z 2|ZPOPMAX z 0|ZPOPMIN z -1|ZPOPMIN z x|ZPOPMIN z 1 2
ZPOPMAX z 10|EXISTS z|ZPOPMIN noz|ZPOPMIN noz 2|ZPOPMAX noz 0
ZADD m1 1 a 2 b|ZADD m2 3 c|ZMPOP 2 noz m1 MIN|ZMPOP 2 noz m1 MAX COUNT 5|ZMPOP 1 noz MIN|ZMPOP 2 m1 m2 MAX
ZMPOP 0 m2 MIN|ZMPOP x m2 MIN|ZMPOP 2 m2 MIN|ZMPOP 1 m2 FOO|ZMPOP 1 m2 MIN COUNT 0|ZMPOP 1 m2 MIN COUNT x
ZMPOP 1 m2 MIN COUNT 1 COUNT 1|ZMPOP 1 m2 MIN COUNT|ZMPOP 1 m2 MIN BAR|ZMPOP 1 str MIN|ZMPOP 1 m2 MIN COUNT 1|EXISTS m2
ZADD u1 1 a 2 b 3 c|ZADD u2 10 b 20 c 30 d|SADD us c d e|ZUNION 2 u1 u2|ZUNION 2 u1 u2 WITHSCORES|ZINTER 2 u1 u2 WITHSCORES
ZUNION 3 u1 u2 us WITHSCORES|ZINTER 3 u1 u2 us WITHSCORES|ZDIFF 2 u1 u2 WITHSCORES|ZDIFF 2 u2 us|ZDIFF 1 noz
ZUNION 2 u1 u2 WEIGHTS 2 0.5 WITHSCORES|ZUNION 2 u1 u2 AGGREGATE MIN WITHSCORES|ZUNION 2 u1 u2 AGGREGATE max WITHSCORES
ZINTER 2 u1 u2 WEIGHTS 1 inf WITHSCORES|ZUNION 2 u1 u2 WEIGHTS 0 1 WITHSCORES|ZADD ui 1 a -inf b|ZUNION 2 ui u1 WEIGHTS inf 1 WITHSCORES
ZUNION 2 ui u1 WEIGHTS 0 1 WITHSCORES|ZUNION 2 u1 u2 WEIGHTS 1|ZUNION 2 u1 u2 WEIGHTS 1 x|ZUNION 2 u1 u2 AGGREGATE foo
ZUNION 2 u1 u2 AGGREGATE|ZDIFF 2 u1 u2 WEIGHTS 1 1|ZUNION 0 u1|ZUNION -1 u1|ZUNION x u1|ZUNION 3 u1 u2|ZINTER 2 u1 noz
ZUNION 2 u1 str|ZUNIONSTORE d 2 u1 u2|ZRANGE d 0 -1 WITHSCORES|ZUNIONSTORE d 2 u1 u2 WITHSCORES|ZINTERSTORE d 2 u1 u2 AGGREGATE MAX
ZRANGE d 0 -1 WITHSCORES|ZDIFFSTORE d 2 u1 u2|ZRANGE d 0 -1 WITHSCORES|ZINTERSTORE d 2 u1 noz|EXISTS d|ZUNIONSTORE d 0 u1
ZINTERCARD 2 u1 u2|ZINTERCARD 2 u1 u2 LIMIT 1|ZINTERCARD 2 u1 u2 LIMIT -1|ZINTERCARD 2 u1 u2 LIMIT x|ZINTERCARD 0 u1
ZINTERCARD 2 u1 u2 WITHSCORES|ZINTERCARD 2 u1 noz|ZINTERCARD 3 u1 u2 us|ZINTER 2 u1 u1 WITHSCORES|ZUNION 2 u1 u1 WITHSCORES
ZRANDMEMBER noz|ZRANDMEMBER noz 5|ZRANDMEMBER noz -5 WITHSCORES|ZRANDMEMBER u1 0|ZRANDMEMBER u1 x|ZRANDMEMBER u1 1 FOO
ZRANDMEMBER u1 1 WITHSCORES x|ZRANDMEMBER u1 10 WITHSCORES|ZRANDMEMBER u1 4611686018427387904 WITHSCORES
ZRANDMEMBER u1 -9223372036854775808|?ZRANDMEMBER u1|?ZRANDMEMBER u1 -5 WITHSCORES|?ZRANDMEMBER u1 2
ZSCAN noz 0|ZSCAN u1 0|ZSCAN u1 x|ZSCAN u1 0 MATCH a*|ZSCAN u1 0 COUNT 0|ZADD zs 0.5 a 1e18 b -0 c inf d|ZSCAN zs 0
ZRANGE zs 0 -1 WITHSCORES|ZSCORE zs b|CONFIG SET zset-max-listpack-entries 0|ZADD big 1 a|ZADD big 2 b|OBJECT ENCODING big
CONFIG SET zset-max-listpack-entries 128
ZADD|ZADD z|ZADD z 1|ZINCRBY z 1|ZREM z|ZCARD|ZRANGE z 0|ZRANGESTORE d z 0|ZPOPMIN|ZMPOP 1|ZUNION 1|ZUNIONSTORE d 1
ZRANDMEMBER|ZSCAN z|ZCOUNT z 0|ZLEXCOUNT z -|ZRANK z|ZSCORE z|ZMSCORE z|ZINTERCARD 1|ZREMRANGEBYRANK z 0
"""


@pytest.mark.parametrize("protocol", [2, 3])
def test_zset_commands_are_byte_identical_to_redis_server(sakerd, redis_server_port, protocol):
    assert run_parity(sakerd.port, redis_server_port, SCRIPT, protocol) == []


TEMPLATES = [
    ("", "ZADD {k} {n} {m}"), ("", "ZADD {k} {n} {m} {n} {m}"), ("", "ZADD {k} GT CH {n} {m}"),
    ("", "ZADD {k} XX INCR {n} {m}"), ("", "ZINCRBY {k} {n} {m}"), ("", "ZREM {k} {m} {m}"),
    ("", "ZRANGE {k} 0 -1 WITHSCORES"), ("", "ZRANGE {k} {n} {n} REV"),
    ("", "ZRANGE {k} ({n} {n} BYSCORE LIMIT {n} {n} WITHSCORES"),
    ("", "ZRANGE {k} +inf -inf BYSCORE REV WITHSCORES"), ("", "ZRANGEBYLEX {k} - +"), ("", "ZRANGEBYLEX {k} [{m} ({m} LIMIT {n} {n}"),
    ("", "ZREVRANGEBYLEX {k} ({m} -"), ("", "ZREMRANGEBYLEX {k} [{m} +"),
    ("", "ZCOUNT {k} {n} ({n}"), ("", "ZLEXCOUNT {k} [{m} [{m}"), ("", "ZADD {k} 0 {m} 0 {m}"), ("", "ZRANK {k} {m}"),
    ("", "ZREVRANK {k} {m}"), ("", "ZSCORE {k} {m}"), ("", "ZMSCORE {k} {m} {m}"),
    ("", "ZCARD {k}"), ("", "ZPOPMIN {k}"), ("", "ZPOPMAX {k} {n}"), ("", "ZMPOP 2 {k} {k} MIN"),
    ("", "ZREMRANGEBYRANK {k} {n} {n}"), ("", "ZREMRANGEBYSCORE {k} {n} ({n}"),
    ("", "ZUNIONSTORE {k} 2 {k} {k} WEIGHTS {n} 2"), ("", "ZINTERSTORE {k} 2 {k} {k} AGGREGATE MAX"),
    ("", "ZDIFFSTORE {k} 2 {k} {k}"), ("", "ZUNION 2 {k} {k} WITHSCORES"),
    ("", "ZINTER 2 {k} {k} WITHSCORES"), ("", "ZDIFF 2 {k} {k} WITHSCORES"),
    ("", "ZINTERCARD 2 {k} {k}"), ("", "ZRANGESTORE {k} {k} 0 {n}"), ("", "SADD {k} {m}"),
    ("", "ZSCAN {k} 0"), ("", "OBJECT ENCODING {k}"), ("", "DEL {k}"), ("", "TYPE {k}"),
]
KEYS = ["a", "b", "c"]
MEMBERS = ["x", "y", "z", "1", "10", "w"]


@pytest.mark.parametrize("protocol", [2, 3])
def test_random_zset_sequences_match_redis_server(sakerd, redis_server_port, protocol):
    machine = parity_machine(sakerd.port, redis_server_port, TEMPLATES, KEYS, MEMBERS, protocol)
    try:
        run_state_machine_as_test(machine, settings=settings(
            max_examples=25, stateful_step_count=30, deadline=None))
    finally:
        close_machine(machine)


def test_a_zset_becomes_a_skiplist_past_its_thresholds(r):
    r.zadd("z", {"m%d" % i: i for i in range(128)})
    assert r.object("encoding", "z") == b"listpack"
    r.zadd("z", {"one-more": 0})
    assert r.object("encoding", "z") == b"skiplist"
    r.zadd("long", {"x" * 65: 1})
    assert r.object("encoding", "long") == b"skiplist"
    # A stored result that fits is a listpack again.
    r.zrangestore("small", "z", 0, 9)
    assert r.object("encoding", "small") == b"listpack"


def test_zscan_of_a_large_zset_returns_every_member_once_with_its_score(r):
    scores = {b"m%d" % i: i / 4 for i in range(1000)}
    r.zadd("big", scores)
    seen = {}
    cursor = 0
    while True:
        cursor, batch = r.zscan("big", cursor, count=40)
        for member, score in batch:
            assert member not in seen
            seen[member] = score
        if cursor == 0:
            break
    assert seen == scores


def test_zrandmember_returns_members_with_their_scores(r):
    r.zadd("z", {"a": 1, "b": 2, "c": 3})
    pairs = r.zrandmember("z", -8, withscores=True)
    assert len(pairs) == 16
    for member, score in zip(pairs[::2], pairs[1::2]):
        assert float(score) == {b"a": 1, b"b": 2, b"c": 3}[member]
    two = r.zrandmember("z", 2)
    assert len(set(two)) == 2 and set(two) <= {b"a", b"b", b"c"}


TOPN_PLUGIN = """
-- Keeps the N highest scores seen: a sorted set trimmed after each add.
local N = 3

saker.command("topn_add", function(name, score)
    saker.call("ZADD", "top", score, name)
    saker.call("ZREMRANGEBYRANK", "top", 0, -(N + 1))
    return saker.call("ZCARD", "top")
end)

saker.command("topn_get", function()
    return saker.call("ZREVRANGE", "top", 0, -1, "WITHSCORES")
end)
"""


def test_a_plugin_keeps_a_top_n_in_a_sorted_set_through_saker_call(make_daemon, tmp_path):
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "topn.lua").write_text(TOPN_PLUGIN)
    d = make_daemon(config="scripts-dir %s\n" % plugins)
    r = d.client(protocol=2)
    for name, cpu in [("nginx", 12.5), ("postgres", 40), ("cron", 0.5), ("java", 97.25),
                      ("sshd", 1)]:
        assert r.execute_command("topn_add", name, cpu) <= 3
    assert r.execute_command("topn_get") == [b"java", b"97.25", b"postgres", b"40",
                                             b"nginx", b"12.5"]
    assert r.type("top") == b"zset"
