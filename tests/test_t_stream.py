"""Streams (t_stream.py): every command, option and error, byte for byte with redis-server 7.0.

Scripts of commands run against sakerd and a real redis-server and must give
the same bytes in RESP2 and RESP3. IDs are explicit wherever an ID is shown,
so both servers agree; where the server's clock shows (an auto ID, a
delivery time, an idle time) only those digits are masked.
"""

import re

import pytest

from helpers import Daemon, RawConn, wait_for


@pytest.fixture(scope="module")
def sakerd(tmp_path_factory):
    d = Daemon(tmp_path_factory.mktemp("streams"))
    yield d
    d.stop()


def _split(script):
    return [cmd.split(" ") for line in script.strip().splitlines() for cmd in line.split("|")]


# Clock-dependent digits: unix ms (13 digits), and idle times, which are
# small numbers of ms that two servers may see one apart.
_MASKS = [
    (re.compile(rb"\d{13}"), b"T"),
    (re.compile(rb"(\$4\r\nidle\r\n):\d+"), rb"\1:N"),
    # XPENDING extended entries: id, consumer, idle ms, deliveries.
    (re.compile(rb"(\*4\r\n\$\d+\r\n\d+-\d+\r\n\$\d+\r\n[^\r]*\r\n):\d+"), rb"\1:N"),
]


def _mask(b):
    for rx, sub in _MASKS:
        b = rx.sub(sub, b)
    return b


def compare(sakerd, redis_port, script, protocol, masked=False):
    ours, theirs = RawConn(("127.0.0.1", sakerd.port)), RawConn(("127.0.0.1", redis_port))
    try:
        for conn in (ours, theirs):
            if protocol == 3:
                assert conn.call("HELLO", "3").startswith(b"%")
            assert conn.call("FLUSHALL") == b"+OK\r\n"
        mismatches = []
        for args in _split(script):
            mine, real = ours.call(*args), theirs.call(*args)
            if masked:
                mine, real = _mask(mine), _mask(real)
            if mine != real:
                mismatches.append((" ".join(args), mine, real))
        assert mismatches == []
    finally:
        ours.close()
        theirs.close()


XADD_SCRIPT = """
XADD s 1-1 f v|XADD s 1-1 f v|XADD s 1-0 f v|XADD s 1-2 f v g w|XADD s 1-* a b|XADD s 2-* a b
XADD s 0-0 f v|XADD n 0-0 f v|EXISTS n|XADD s 0-* f v|XADD s 5 f v|XADD s 5-18446744073709551615 f v
XADD s 5-* f v|XADD s 6-1 f|XADD s 6-1|XADD s 6-1 f v g|XADD s bad f v|XADD s 6-x f v|XADD s -6 f v
XADD s - f v|XADD s + f v|XADD s 18446744073709551616-0 f v|XADD s 7-18446744073709551616 f v
XADD s 007-1 f v|XADD s 8-+1 f v|XADD s 10-1 f v|XLEN s|XLEN nokey
XADD s NOMKSTREAM 11-1 f v|XADD m NOMKSTREAM 1-1 f v|EXISTS m|XADD m nomkstream * f|XADD s 18446744073709551615-18446744073709551615 f v
XADD s * f v|XADD s 1-1 f v|XLEN s|XRANGE s - +|TYPE s|SET str x|XADD str 1-1 f v|XLEN str
XADD x MAXLEN 2 1-1 f v|XADD x MAXLEN 2 2-1 f v|XADD x MAXLEN = 2 3-1 f v|XRANGE x - +
XADD x MAXLEN ~ 2 4-1 f v|XLEN x|XADD x MAXLEN -1 5-1 f v|XADD x MAXLEN abc 5-1 f v
XADD x MINID 4 6-1 f v|XRANGE x - +|XADD x MINID = 6-1 7-1 f v|XRANGE x - +|XADD x MINID ~ 7 8-1 f v
XADD x MINID bad 9-1 f v|XADD x MINID - 9-1 f v|XADD x MAXLEN 1 MINID 1 9-1 f v
XADD x MINID 1 MAXLEN 1 9-1 f v|XADD x LIMIT 10 9-1 f v|XADD x MAXLEN 1 LIMIT 10 9-1 f v
XADD x MAXLEN ~ 1 LIMIT 10 9-1 f v|XADD x MAXLEN ~ 1 LIMIT -1 10-1 f v|XADD x MAXLEN ~ 1 LIMIT x 10-1 f v
XADD x MAXLEN ~ 0 LIMIT 0 10-1 f v|XLEN x|XADD x MAXLEN|XADD x MAXLEN 5|XADD x foo 11-1 f v
XADD x maxlen 0 12-1 f v|XLEN x|EXISTS x|XRANGE x - +|XADD x 12-1 f v|XADD x 13-1 "" ""
XADD x 14-1 f v f v|XRANGE x - +|XADD x LIMIT 0 15-1 f v|XADD x MAXLEN ~ 1 LIMIT 0 16-1 f v
XADD x NOMKSTREAM MAXLEN 1 17-1 f v|XRANGE x - +|XADD|XADD x|XADD x *
"""

RANGE_SCRIPT = """
XADD s 1-1 a 1|XADD s 1-2 b 2|XADD s 2-0 c 3 d 4|XADD s 3-5 e 5|XADD s 10-0 f 6
XRANGE s - +|XRANGE s 1 1|XRANGE s 1-2 2|XRANGE s (1-1 +|XRANGE s - (10-0|XRANGE s (1-1 (3-5
XRANGE s (- +|XRANGE s - (+|XRANGE s (18446744073709551615-18446744073709551615 +
XRANGE s - (0-0|XRANGE s ( +|XRANGE s (( +|XRANGE s + -|XRANGE s 5 1|XRANGE s - + COUNT 2
XRANGE s - + COUNT 0|XRANGE s - + COUNT -1|XRANGE s - + COUNT x|XRANGE s - + COUNT|XRANGE s - + FOO 1
XRANGE s - + COUNT 1 COUNT 3|XRANGE s bad +|XRANGE s - bad|XRANGE nokey - +|XRANGE nokey - + COUNT 0
XREVRANGE s + -|XREVRANGE s + - COUNT 2|XREVRANGE s (10-0 (1-1|XREVRANGE s 3 2|XREVRANGE s - +
XREVRANGE s + - COUNT 0|XREVRANGE nokey + -|XRANGE s 2 2|XRANGE s 2-0 2-0|XRANGE s 3 3
SET str x|XRANGE str - +|XREVRANGE str + -|XLEN str|XRANGE s|XRANGE s -
XDEL s 1-2 2-0 99-0|XDEL s 1-2|XRANGE s - +|XDEL s bad|XDEL s -|XDEL nokey 1-1|XDEL str 1-1
XDEL s 1-1 3-5 10-0|XLEN s|EXISTS s|XRANGE s - +|XADD s 10-0 f v|XADD s 10-1 f v|XRANGE s - +
XDEL s 10-1 bad|XLEN s|XDEL s
"""

TRIM_SCRIPT = """
XADD s 1-1 f v|XADD s 2-1 f v|XADD s 3-1 f v|XADD s 4-1 f v|XADD s 5-1 f v
XTRIM s MAXLEN 3|XRANGE s - +|XTRIM s MAXLEN = 2|XTRIM s MAXLEN ~ 1|XTRIM s MINID 5|XRANGE s - +
XTRIM s MINID = 6|XLEN s|EXISTS s|XTRIM s|XTRIM s FOO|XTRIM s MAXLEN|XTRIM s MAXLEN -1
XTRIM s MAXLEN 1 LIMIT 1|XTRIM s MAXLEN ~ 1 LIMIT 1|XTRIM s MINID ~ x|XTRIM s LIMIT 5
XTRIM s MAXLEN 1 MINID 1|XTRIM nokey MAXLEN 1|SET str v|XTRIM str MAXLEN 1|XTRIM s NOMKSTREAM MAXLEN 1
XTRIM s MAXLEN 0 extra|XTRIM s MAXLEN ~ 0 LIMIT 0
"""

GROUP_SCRIPT = """
XGROUP CREATE s g $|XGROUP CREATE s g $ MKSTREAM|XGROUP CREATE s g $ MKSTREAM|EXISTS s|TYPE s
XGROUP CREATE s g2 0 ENTRIESREAD 5|XGROUP CREATE s g3 0 ENTRIESREAD -2|XGROUP CREATE s g3 0 ENTRIESREAD x
XGROUP CREATE s g3 bad|XGROUP CREATE s g3 -|XGROUP CREATE s g3 0 FOO|XGROUP CREATE s g3 0 MKSTREAM MKSTREAM MKSTREAM MKSTREAM
XGROUP CREATE s g3 0 MKSTREAM ENTRIESREAD|XGROUP CREATE|XGROUP CREATE s|XGROUP CREATE s g
XGROUP SETID s g 5-5|XGROUP SETID s nog 0|XGROUP SETID nokey g 0|XGROUP SETID s g $ ENTRIESREAD 3
XGROUP SETID s g bad|XGROUP SETID s g 0 MKSTREAM|XGROUP SETID s g 0 ENTRIESREAD 1 x y|XGROUP SETID s g -
XGROUP SETID s g +|XINFO GROUPS s|XGROUP CREATECONSUMER s g alice|XGROUP CREATECONSUMER s g alice
XGROUP CREATECONSUMER s nog bob|XGROUP CREATECONSUMER nokey g bob|XGROUP CREATECONSUMER s g
XGROUP DELCONSUMER s g alice|XGROUP DELCONSUMER s g alice|XGROUP DELCONSUMER s nog alice
XGROUP DESTROY s g2|XGROUP DESTROY s g2|XGROUP DESTROY nokey g|XGROUP DESTROY s g extra
XGROUP FOO|XGROUP FOO s g|XGROUP HELP|XGROUP HELP x|XGROUP|SET str v|XGROUP CREATE str g $
XGROUP CREATE str g $ MKSTREAM|XGROUP SETID str g 0|XGROUP DESTROY str g|XINFO GROUPS s
XGROUP CREATE n g 0-1 MKSTREAM|XINFO STREAM n|XGROUP CREATE n g1 5 ENTRIESREAD 0
"""

READ_SCRIPT = """
XADD s 1-1 a 1|XADD s 2-1 b 2|XADD s 3-1 c 3|XADD t 1-1 x 1
XREAD STREAMS s 0|XREAD STREAMS s 2-1|XREAD STREAMS s 3-1|XREAD STREAMS s $|XREAD COUNT 1 STREAMS s t 0 0
XREAD COUNT 0 STREAMS s 1|XREAD COUNT -5 STREAMS s 1|XREAD COUNT x STREAMS s 1|XREAD STREAMS s
XREAD STREAMS s t 0|XREAD STREAMS nokey 0|XREAD STREAMS nokey s 0 0|XREAD STREAMS s >|XREAD STREAMS s bad
XREAD STREAMS s -|XREAD STREAMS s +|XREAD FOO STREAMS s 0|XREAD GROUP g c STREAMS s 0|XREAD NOACK STREAMS s 0
XREAD COUNT 1|XREAD STREAMS|XREAD BLOCK 100 STREAMS s 0|XREAD BLOCK -1 STREAMS s 0|XREAD BLOCK x STREAMS s 0
XREAD BLOCK 0 COUNT 2 STREAMS s 0|SET str v|XREAD STREAMS str 0|XREAD STREAMS s str 0 0
XREAD STREAMS s 18446744073709551615-18446744073709551615|XREAD STREAMS s 2|XREAD streams s 0
XDEL s 3-1|XREAD STREAMS s 2-1|XREAD STREAMS s 1-1|XADD e 1-1 f v|XDEL e 1-1|XREAD STREAMS e 0|XREAD STREAMS e $
"""

READGROUP_SCRIPT = """
XADD s 1-1 a 1|XADD s 2-1 b 2|XADD s 3-1 c 3|XGROUP CREATE s g 0|XGROUP CREATE s h $
XREADGROUP GROUP g alice COUNT 1 STREAMS s >|XREADGROUP GROUP g alice STREAMS s >|XREADGROUP GROUP g alice STREAMS s >
XREADGROUP GROUP g alice STREAMS s 0|XREADGROUP GROUP g alice COUNT 1 STREAMS s 1-1|XREADGROUP GROUP g bob STREAMS s 0
XREADGROUP GROUP g alice STREAMS s $|XREADGROUP GROUP nog alice STREAMS s >|XREADGROUP GROUP g alice STREAMS nokey >
XREADGROUP STREAMS s >|XREADGROUP GROUP g alice STREAMS s|XREADGROUP GROUP g alice COUNT x STREAMS s >
XREADGROUP GROUP g STREAMS s >|XREADGROUP GROUP g alice STREAMS s bad|XREADGROUP GROUP g alice NOACK STREAMS s >
XADD s 4-1 d 4|XREADGROUP GROUP g carol NOACK STREAMS s >|XINFO GROUPS s|XREADGROUP GROUP h dave STREAMS s >
XPENDING s g|XPENDING s h|XPENDING s nog|XPENDING nokey g|XPENDING s g - + 10|XPENDING s g - + 10 alice
XPENDING s g - + 10 nobody|XPENDING s g - + 1|XPENDING s g (1-1 + 10|XPENDING s g - (3-1 10|XPENDING s g - + 0
XPENDING s g - + -1|XPENDING s g - + x|XPENDING s g bad + 10|XPENDING s g - bad 10|XPENDING s g - +
XPENDING s g IDLE 0 - + 10|XPENDING s g IDLE 100000 - + 10|XPENDING s g IDLE x - + 10|XPENDING s g IDLE 10 - +
XPENDING s g IDLE 0 - + 10 alice|XPENDING s g - + 10 alice extra|XPENDING s g x|XPENDING s|XPENDING s g IDLE 0 - + 10 alice x
XACK s g 1-1|XACK s g 1-1|XACK s g 2-1 3-1 9-9|XACK s nog 1-1|XACK nokey g 1-1|XACK s g bad|XACK s g 4-1 bad
XPENDING s g|XREADGROUP GROUP h dave STREAMS s 0|XDEL s 4-1|XREADGROUP GROUP h dave STREAMS s 0
XPENDING s h - + 10 dave|XINFO CONSUMERS s h|XINFO GROUPS s|SET str v|XREADGROUP GROUP g a STREAMS str >
XACK str g 1-1|XPENDING str g|XGROUP CREATE s k 2-1|XREADGROUP GROUP k zed COUNT 1 STREAMS s >
XINFO GROUPS s|XADD s 9-1 z 9|XINFO GROUPS s|XGROUP SETID s k 0|XINFO GROUPS s|XREADGROUP GROUP k zed STREAMS s >
XINFO GROUPS s|XREADGROUP GROUP g alice BLOCK 10 STREAMS s >|XREADGROUP GROUP g alice BLOCK 10 STREAMS s 0
"""

CLAIM_SCRIPT = """
XADD s 1-1 a 1|XADD s 2-1 b 2|XADD s 3-1 c 3|XADD s 4-1 d 4|XGROUP CREATE s g 0
XREADGROUP GROUP g alice STREAMS s >
XCLAIM s g bob 0 1-1|XCLAIM s g bob 0 1-1 2-1 JUSTID|XCLAIM s g bob 0 9-9|XCLAIM s g bob 0 1-1 RETRYCOUNT 7
XPENDING s g - + 10|XCLAIM s g carol 1000000 1-1|XCLAIM s g carol 0 bad|XCLAIM s g carol x 1-1
XCLAIM s g carol 0 1-1 IDLE x|XCLAIM s g carol 0 1-1 TIME x|XCLAIM s g carol 0 1-1 RETRYCOUNT x
XCLAIM s g carol 0 1-1 LASTID bad|XCLAIM s g carol 0 1-1 FOO|XCLAIM s nog carol 0 1-1|XCLAIM nokey g c 0 1-1
XCLAIM s g carol 0 1-1 IDLE|XCLAIM s g dave 0 1-1 IDLE 5000000 JUSTID|XCLAIM s g dave -5 2-1 TIME 1 RETRYCOUNT 0
XCLAIM s g dave 0 1-1 LASTID 99-0 JUSTID|XINFO GROUPS s|XDEL s 3-1|XCLAIM s g erin 0 3-1|XPENDING s g
XADD s 5-1 e 5|XCLAIM s g erin 0 5-1|XCLAIM s g erin 0 5-1 FORCE JUSTID|XPENDING s g - + 10 erin
XCLAIM s g erin 0 5-1 3-1 FORCE|XCLAIM s g erin 0 6-1 FORCE|XINFO CONSUMERS s g|SET str v|XCLAIM str g c 0 1-1
XAUTOCLAIM s g zed 0 0|XAUTOCLAIM s g zed 0 0 COUNT 2|XAUTOCLAIM s g zed 0 2-1 COUNT 1 JUSTID
XAUTOCLAIM s g zed 0 (1-1 COUNT 1|XAUTOCLAIM s g zed 1000000 0|XAUTOCLAIM s g zed 0 0 COUNT 0
XAUTOCLAIM s g zed 0 0 COUNT x|XAUTOCLAIM s g zed 0 0 COUNT -1|XAUTOCLAIM s g zed 0 0 FOO|XAUTOCLAIM s g zed x 0
XAUTOCLAIM s g zed 0 bad|XAUTOCLAIM s nog zed 0 0|XAUTOCLAIM nokey g zed 0 0|XAUTOCLAIM str g zed 0 0
XDEL s 1-1 2-1|XAUTOCLAIM s g yan 0 0 COUNT 1|XAUTOCLAIM s g yan 0 0|XPENDING s g|XAUTOCLAIM s g yan 0 (18446744073709551615-18446744073709551615
XAUTOCLAIM s g yan 0 0 COUNT 1000000000000000000|XAUTOCLAIM s g yan 0 0 COUNT 576460752303423487
"""

INFO_SCRIPT = """
XADD s 1-1 a 1|XADD s 2-1 b 2 c 3|XADD s 3-1 a 1|XINFO STREAM s|XINFO STREAM s FULL
XINFO STREAM s FULL COUNT 1|XINFO STREAM s FULL COUNT 0|XINFO STREAM s FULL COUNT -1|XINFO STREAM s FULL COUNT x
XINFO STREAM s FOO|XINFO STREAM s FULL FOO 1|XINFO STREAM s FULL COUNT|XINFO STREAM nokey|SET str v|XINFO STREAM str
XGROUP CREATE s g 0|XGROUP CREATE s a $|XREADGROUP GROUP g c1 COUNT 1 STREAMS s >|XREADGROUP GROUP g c2 STREAMS s >
XINFO GROUPS s|XINFO GROUPS nokey|XINFO GROUPS str|XINFO GROUPS|XINFO GROUPS s x|XINFO CONSUMERS s g
XINFO CONSUMERS s nog|XINFO CONSUMERS nokey g|XINFO CONSUMERS s|XINFO HELP|XINFO HELP x|XINFO FOO s|XINFO
XDEL s 2-1|XINFO STREAM s|XINFO GROUPS s|XGROUP CREATE s b 0|XINFO GROUPS s|XDEL s 1-1 3-1|XINFO STREAM s
XINFO GROUPS s|XSETID s 2-1|XSETID s 5-1 ENTRIESADDED 1|XSETID s 5-1 ENTRIESADDED 10 MAXDELETEDID 4-0|XINFO STREAM s
XSETID s 5-1 MAXDELETEDID 6-0|XSETID s bad|XSETID s 5-1 ENTRIESADDED -1|XSETID s 5-1 ENTRIESADDED x
XSETID s 5-1 FOO|XSETID nokey 1-1|XSETID str 1-1|XSETID s -|XSETID s 0-0|XADD s 4-1 f v|XADD s 6-1 f v
XSETID s 5-1|XSETID s 6-1 ENTRIESADDED 0|XSETID s 18446744073709551615-18446744073709551615|XADD s * f v
XINFO STREAM s FULL|XADD e 1-1 f v|XDEL e 1-1|XINFO STREAM e|XINFO STREAM e FULL
"""

SCRIPTS = {"xadd": XADD_SCRIPT, "range": RANGE_SCRIPT, "trim": TRIM_SCRIPT, "group": GROUP_SCRIPT,
           "read": READ_SCRIPT}
MASKED_SCRIPTS = {"readgroup": READGROUP_SCRIPT, "claim": CLAIM_SCRIPT, "info": INFO_SCRIPT}


@pytest.mark.parametrize("protocol", [2, 3])
@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_replies_are_byte_identical_to_redis_server(sakerd, redis_server_port, name, protocol):
    compare(sakerd, redis_server_port, SCRIPTS[name], protocol)


@pytest.mark.parametrize("protocol", [2, 3])
@pytest.mark.parametrize("name", sorted(MASKED_SCRIPTS))
def test_group_replies_match_redis_server_but_for_clock_digits(sakerd, redis_server_port, name,
                                                               protocol):
    compare(sakerd, redis_server_port, MASKED_SCRIPTS[name], protocol, masked=True)


# ---- the node layout: what approximate trimming keeps ------------------------------------

def _random_node_script(rnd):
    """XADD/XDEL/XTRIM with ~ and LIMIT over node sizes of every kind: values
    that fill a node's bytes, integers stored small, IDs far apart."""
    cmds = [["CONFIG", "SET", "stream-node-max-entries", str(rnd.choice([100, 5, 1, 0, 17]))],
            ["CONFIG", "SET", "stream-node-max-bytes", str(rnd.choice([4096, 100, 0, 1, 300]))]]
    ms = 1
    added = []
    for _ in range(rnd.randint(10, 300)):
        op = rnd.random()
        if op < 0.7:
            ms += rnd.choice([0, 1, 1, 200, 70000, 10 ** 9])
            seq = rnd.choice(["*", "0", "5", str(rnd.randint(0, 2 ** 64 - 1))])
            items = []
            for k in range(rnd.choice([1, 1, 2, 3])):
                items += [rnd.choice(["f", "g", "12", "-5", "field%d" % k]),
                          rnd.choice(["v", "1", "-4097", "99999999999",
                                      "x" * rnd.choice([1, 63, 64, 200, 5000])])]
            trim = []
            if rnd.random() < 0.2:
                trim = [rnd.choice(["MAXLEN", "MINID"]), rnd.choice(["~", "=", "~"])]
                trim.append(str(rnd.randint(0, 50)) if trim[0] == "MAXLEN"
                            else "%d-0" % (ms - rnd.randint(0, 3000)))
                if trim[1] == "~" and rnd.random() < 0.3:
                    trim += ["LIMIT", str(rnd.randint(0, 30))]
            cmds.append(["XADD", "s"] + trim + ["%d-%s" % (ms, seq)] + items)
            added.append("%d-%s" % (ms, "0" if seq == "*" else seq))
        elif op < 0.85 and added:
            cmds.append(["XDEL", "s"] + [rnd.choice(added) for _ in range(rnd.randint(1, 5))])
        elif op < 0.95:
            kind = rnd.choice(["MAXLEN", "MINID"])
            arg = str(rnd.randint(0, 60)) if kind == "MAXLEN" else str(ms - rnd.randint(0, 5000))
            extra = ["LIMIT", str(rnd.randint(0, 40))] if rnd.random() < 0.3 else []
            cmds.append(["XTRIM", "s", kind, "~", arg] + extra)
        else:
            cmds.append(["XINFO", "STREAM", "s"])
    return cmds + [["XINFO", "STREAM", "s"], ["XRANGE", "s", "-", "+"], ["FLUSHALL"],
                   ["CONFIG", "SET", "stream-node-max-entries", "100"],
                   ["CONFIG", "SET", "stream-node-max-bytes", "4096"]]


def test_approximate_trimming_keeps_the_entries_redis_server_keeps(sakerd, redis_server_port):
    import random
    ours, theirs = RawConn(("127.0.0.1", sakerd.port)), RawConn(("127.0.0.1", redis_server_port))
    try:
        for seed in range(40):
            for args in _random_node_script(random.Random(seed)):
                mine, real = ours.call(*args), theirs.call(*args)
                assert (seed, args[:5], mine) == (seed, args[:5], real)
    finally:
        ours.close()
        theirs.close()


def test_maxlen_approx_trims_whole_nodes_of_100(sakerd):
    c = sakerd.raw()
    c.call("DEL", "s")
    for i in range(1, 351):
        c.call("XADD", "s", "MAXLEN", "~", "120", "%d-1" % i, "f", "v")
    # Nodes start at 1, 101, 201, 301: dropping the first leaves 250 >= 120,
    # the second 150, the third would leave 50 < 120.
    assert c.call("XLEN", "s") == b":150\r\n"
    assert c.call("XRANGE", "s", "-", "+", "COUNT", "1") == \
        b"*1\r\n*2\r\n$5\r\n201-1\r\n*2\r\n$1\r\nf\r\n$1\r\nv\r\n"


# ---- the generic commands on streams ------------------------------------------------------

def test_type_del_rename_expire_and_scan_type_work_on_streams(sakerd):
    r = sakerd.client(protocol=2, decode_responses=True)
    r.flushall()
    r.xadd("s", {"f": "v"}, id="1-1")
    r.set("str", "x")
    assert r.type("s") == "stream"
    assert r.scan(0, _type="stream") == (0, ["s"])
    assert r.rename("s", "t") is True
    assert r.xrange("t") == [("1-1", {"f": "v"})]
    assert r.pexpire("t", 30) is True
    wait_for(lambda: r.exists("t") == 0, what="the stream to expire")
    r.xadd("u", {"f": "v"}, id="1-1")
    assert r.delete("u") == 1 and r.xlen("u") == 0


def test_xread_block_with_nothing_to_read_answers_as_a_timeout(sakerd):
    # The read blocks (blocked.py) and its 10 ms run out: a null array.
    c = sakerd.raw()
    c.call("DEL", "s")
    assert c.call("XREAD", "BLOCK", "10", "STREAMS", "s", "$") == b"*-1\r\n"


# ---- random sequences with consumer groups: the same replies as redis-server --------------

from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

_ID = st.builds(lambda ms, seq: "%d-%d" % (ms, seq), st.integers(1, 12), st.integers(0, 2))
_CMD = st.one_of(
    st.builds(lambda i, f: ["XADD", "s", i, f, "v"], _ID, st.sampled_from(["f", "g", "1"])),
    st.builds(lambda i: ["XDEL", "s", i], _ID),
    st.builds(lambda n: ["XTRIM", "s", "MAXLEN", str(n)], st.integers(0, 10)),
    st.builds(lambda i: ["XTRIM", "s", "MINID", i], _ID),
    st.builds(lambda a, b: ["XRANGE", "s", a, b], _ID, _ID),
    st.builds(lambda c, n: ["XREADGROUP", "GROUP", "g", c, "COUNT", str(n), "STREAMS", "s", ">"],
              st.sampled_from(["alice", "bob"]), st.integers(0, 3)),
    st.builds(lambda c: ["XREADGROUP", "GROUP", "g", c, "STREAMS", "s", "0"],
              st.sampled_from(["alice", "bob"])),
    st.builds(lambda i: ["XACK", "s", "g", i], _ID),
    st.builds(lambda c, i: ["XCLAIM", "s", "g", c, "0", i, "JUSTID"],
              st.sampled_from(["alice", "bob"]), _ID),
    st.builds(lambda c: ["XAUTOCLAIM", "s", "g", c, "0", "0", "COUNT", "2", "JUSTID"],
              st.sampled_from(["alice", "bob", "carol"])),
    st.just(["XPENDING", "s", "g"]),
    st.just(["XINFO", "GROUPS", "s"]),
    st.just(["XINFO", "STREAM", "s"]),
)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(_CMD, max_size=40))
def test_random_group_sequences_answer_as_redis_server(sakerd, redis_server_port, cmds):
    ours, theirs = RawConn(("127.0.0.1", sakerd.port)), RawConn(("127.0.0.1", redis_server_port))
    try:
        for conn in (ours, theirs):
            conn.call("DEL", "s")
            conn.call("XGROUP", "CREATE", "s", "g", "0", "MKSTREAM")
        for args in cmds:
            assert (args, ours.call(*args)) == (args, theirs.call(*args))
    finally:
        ours.close()
        theirs.close()


def test_stream_commands_from_scripts_answer_as_redis_server(sakerd, redis_server_port):
    scripts = ["return redis.call('xread','BLOCK','0','STREAMS','s','0')",
               "return redis.call('XREAD','COUNT','1','STREAMS','s','0')",
               "return redis.pcall('xreadgroup','GROUP','g','c','STREAMS','s','>')",
               "return redis.call('xadd','s','2-1','a','b')",
               "return redis.call('xinfo','groups','s')"]
    ours, theirs = RawConn(("127.0.0.1", sakerd.port)), RawConn(("127.0.0.1", redis_server_port))
    try:
        for conn in (ours, theirs):
            conn.call("DEL", "s")
            conn.call("XADD", "s", "1-1", "f", "v")
            conn.call("XGROUP", "CREATE", "s", "g", "0")
        for script in scripts:
            assert (script, ours.call("EVAL", script, "0")) == \
                (script, theirs.call("EVAL", script, "0"))
    finally:
        ours.close()
        theirs.close()
