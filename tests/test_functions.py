"""Redis Functions, read-only scripts and EVAL's globals, side by side with redis-server 7.0.15.

Each parity case sends the same requests to a real redis-server and to
sakerd, after FUNCTION FLUSH on both, and compares every reply byte for
byte, in RESP2 and RESP3. Then what Redis gets from its RDB and sakerd from
its functions-file: libraries that survive a restart, a file that a kill -9
cannot break, a corrupt file that refuses the start.
"""

import hashlib
import os
import stat
import subprocess
import sys
import threading

import pytest
import redis

from helpers import (sakerd_env, Daemon, RawConn, encode_command, nonexistent_global_error,
                     start_redis_server, wait_for)


def sha(body):
    return hashlib.sha1(body.encode()).hexdigest().encode()


LIB = ("#!lua name=mylib\n"
       "redis.register_function('echo', function(keys, args) return {keys, args} end)\n")
LIB_RO = ("#!lua name=rolib\n"
          "redis.register_function{function_name='get', callback=function(keys, args)\n"
          "  return redis.call('get', keys[1]) end, flags={'no-writes'}, description='reads'}\n")
LIB_FLAGS = ("#!lua name=flagged\n"
             "redis.register_function{function_name='fl', callback=function() return 1 end,\n"
             "  flags={'allow-stale', 'NO-WRITES', 'allow-oom', 'no-cluster',"
             " 'allow-cross-slot-keys'}}\n")
LIB_W = ("#!lua name=wlib\n"
         "redis.register_function('setit', function(keys, args)\n"
         "  return redis.call('set', keys[1], args[1]) end)\n")


def lib(body, name="t"):
    return "#!lua name=%s\n%s" % (name, body)


@pytest.fixture(scope="module")
def saker(tmp_path_factory):
    # Lua 5.1, as redis-server's: the compiler's own messages are the same too.
    d = Daemon(tmp_path_factory.mktemp("functions"), "lua-version 5.1\n")
    yield d
    d.stop()


@pytest.fixture
def both(saker, redis_server_port):
    """both(*requests, resp=2): every reply of both servers, after FUNCTION FLUSH
    and SCRIPT FLUSH on fresh connections; asserts sakerd's bytes are redis-server's."""
    conns = []

    def ask(*requests, resp=2):
        answers = []
        for port in (redis_server_port, saker.port):
            c = RawConn(("127.0.0.1", port))
            conns.append(c)
            c.call("FUNCTION", "FLUSH")
            c.call("SCRIPT", "FLUSH")
            c.call("FLUSHALL")
            if resp == 3:
                c.call("HELLO", "3")
            answers.append([c.call(*req) for req in requests])
        for req, mine, theirs in zip(requests, answers[1], answers[0]):
            assert mine == theirs, "sakerd differs from redis-server on %r" % (req,)
        return answers[1]
    yield ask
    for c in conns:
        c.sock.close()


# ---- each subcommand and its errors, RESP2 and RESP3 ---------------------------------------

PARITY = {
    "load and list": [("FUNCTION", "LOAD", LIB), ("FUNCTION", "LIST"),
                      ("FUNCTION", "LIST", "WITHCODE"), ("FUNCTION", "LIST", "withcode",
                                                         "LIBRARYNAME", "my*"),
                      ("FUNCTION", "LIST", "LIBRARYNAME", "MYLIB"),
                      ("FUNCTION", "LIST", "LIBRARYNAME", "nomatch*")],
    "table form with flags and description": [("FUNCTION", "LOAD", LIB_RO),
                                              ("FUNCTION", "LOAD", LIB_FLAGS),
                                              ("FUNCTION", "LIST", "LIBRARYNAME", "rolib"),
                                              ("FUNCTION", "LIST", "LIBRARYNAME", "flagged")],
    "list errors": [("FUNCTION", "LIST", "LIBRARYNAME"), ("FUNCTION", "LIST", "foo"),
                    ("FUNCTION", "LIST", "WITHCODE", "WITHCODE"),
                    ("FUNCTION", "LIST", "LIBRARYNAME", "a", "LIBRARYNAME", "b")],
    "load replace": [("FUNCTION", "LOAD", LIB), ("FUNCTION", "LOAD", LIB),
                     ("FUNCTION", "LOAD", "REPLACE", LIB), ("FUNCTION", "LOAD", "replace", LIB),
                     ("FUNCTION", "LOAD", "bogus", LIB), ("FCALL", "echo", "1", "k", "a")],
    "metadata errors": [("FUNCTION", "LOAD", "return 1"), ("FUNCTION", "LOAD", "#!lua name=a"),
                        ("FUNCTION", "LOAD", "#!lua name=a name=b\n"),
                        ("FUNCTION", "LOAD", "#!lua foo=bar\n"),
                        ("FUNCTION", "LOAD", "#!lua\nreturn 1"),
                        ("FUNCTION", "LOAD", "#!js name=a\n"),
                        ("FUNCTION", "LOAD", '#!lua "name=a\n'),
                        ("FUNCTION", "LOAD", "#!lua name=a-b\n"),
                        ("FUNCTION", "LOAD", "#!lua name=\n"),
                        ("FUNCTION", "LOAD", "#!LUA NAME=ok\nredis.register_function('x', "
                         "function() return 1 end)"),
                        ("FUNCTION", "LOAD", "#!lua name=q\nlocal x ="),
                        ("FUNCTION", "LOAD"), ("FUNCTION", "LOAD", "REPLACE"),
                        ("FCALL", "f"), ("FCALL_RO",)],
    "register_function errors": [("FUNCTION", "LOAD", lib(body)) for body in (
        "redis.register_function('f')",
        "redis.register_function('f', 1)",
        "redis.register_function({})",
        "redis.register_function({function_name='f'})",
        "redis.register_function({function_name='f', callback=function() end, flags={'bad'}})",
        "redis.register_function({function_name='f', callback=function() end, x=1})",
        "redis.register_function({function_name='f', callback=1})",
        "redis.register_function({function_name='f', callback=function() end, flags='x'})",
        "redis.register_function{function_name={}, callback=function() end}",
        "redis.register_function{[{}]=1}",
        "redis.register_function{[1]=1}",
        "redis.register_function{flags={{}}, function_name='f', callback=function() end}",
        "redis.register_function('f-x', function() end)",
        "redis.register_function('', function() end)",
        "redis.register_function('f', function() end) redis.register_function('f', function() end)",
        "redis.register_function(1, 2, 3)",
        "redis.register_function(0/0, function() end)",
        "redis.register_function(1.5, function() end)",
        "redis.register_function()",
        "local x = 1",
    )],
    "numbers as names": [("FUNCTION", "LOAD", lib(
        "redis.register_function(7, function() return 1 end)\n"
        "redis.register_function{function_name=8, callback=function() return 2 end,"
        " description=9}\n"
        "redis.register_function(-(0/0), function() return 3 end)")),
        ("FCALL", "7", "0"), ("FCALL", "8", "0"), ("FCALL", "nan", "0")],
    "load-time globals": [("FUNCTION", "LOAD", lib(body)) for body in (
        "redis.call('set', 'x', 1)",
        "local s = string.format('x')",
        "x = 1",
        "return y",
        "error('boom')",
        "redis.LOG_NOTICE = 1",
        "redis.log(redis.LOG_NOTICE, redis.REDIS_VERSION, redis.REDIS_VERSION_NUM)",
        "local KEYS = KEYS",
    )],
    "function name collisions": [("FUNCTION", "LOAD", LIB),
                                 ("FUNCTION", "LOAD", LIB.replace("mylib", "other")),
                                 ("FUNCTION", "LOAD", "REPLACE", LIB.replace("mylib", "other")),
                                 ("FUNCTION", "LIST", "LIBRARYNAME", "other")],
    "fcall": [("FUNCTION", "LOAD", LIB), ("FCALL", "echo", "2", "k1", "k2", "a1"),
              ("FCALL", "echo", "0"), ("FCALL_RO", "echo", "0"), ("FCALL", "nope", "0"),
              ("FCALL", "echo", "x"), ("FCALL", "echo", "1"), ("FCALL", "echo", "-1"),
              ("FCALL", "nope", "x"), ("FCALL", "echo")],
    "no-writes functions": [("FUNCTION", "LOAD", LIB_RO), ("FUNCTION", "LOAD", LIB_W),
                            ("SET", "k", "v"), ("FCALL_RO", "get", "1", "k"),
                            ("FCALL", "get", "1", "k"), ("FCALL_RO", "setit", "1", "k", "x"),
                            ("FCALL", "setit", "1", "k", "w"), ("GET", "k"),
                            ("FUNCTION", "LOAD", lib(
                                "redis.register_function{function_name='pub', callback="
                                "function() return redis.call('publish', 'c', 'm') end,"
                                " flags={'no-writes'}}\n"
                                "redis.register_function{function_name='w', callback="
                                "function() return redis.call('set', 'x', 1) end,"
                                " flags={'no-writes'}}")),
                            ("FCALL", "pub", "0"), ("FCALL", "w", "0")],
    "runtime globals": [("FUNCTION", "LOAD", lib(
        "redis.register_function('r', function() return undefined_name end)\n"
        "redis.register_function('w', function() newglobal = 1 end)\n"
        "redis.register_function('k', function() return type(KEYS) end)\n"
        "redis.register_function('rs', function() rawset(_G, 'x', 1) end)\n"
        "redis.register_function('mt', function() setmetatable(_G, {}) end)\n"
        "redis.register_function('reg', function() redis.register_function('z', type) end)\n"
        "redis.register_function('std', function() return {string.upper('a'), math.floor(2.5),"
        " type(redis.call), tostring(redis.nothing), type(_G), type(rawget(_G, 'string'))} end)")),
        ("FCALL", "r", "0"), ("FCALL", "w", "0"), ("FCALL", "k", "0"), ("FCALL", "rs", "0"),
        ("FCALL", "mt", "0"), ("FCALL", "reg", "0"), ("FCALL", "std", "0")],
    "delete": [("FUNCTION", "LOAD", LIB), ("FUNCTION", "DELETE", "nope"),
               ("FUNCTION", "DELETE", "mylib"), ("FCALL", "echo", "0"), ("FUNCTION", "LIST"),
               ("FUNCTION", "DELETE"), ("FUNCTION", "DELETE", "a", "b")],
    "flush": [("FUNCTION", "LOAD", LIB), ("FUNCTION", "FLUSH", "ASYNC"), ("FUNCTION", "LIST"),
              ("FUNCTION", "LOAD", LIB), ("FUNCTION", "FLUSH", "sync"), ("FUNCTION", "LIST"),
              ("FUNCTION", "FLUSH", "bad"), ("FUNCTION", "FLUSH", "a", "b")],
    "stats, kill and help": [("FUNCTION", "LOAD", LIB), ("FUNCTION", "LOAD", LIB_RO),
                             ("FUNCTION", "STATS"), ("FUNCTION", "KILL"),
                             ("FUNCTION", "KILL", "x"), ("FUNCTION", "STATS", "x"),
                             ("FUNCTION", "HELP"), ("FUNCTION", "NOPE"), ("FUNCTION",)],
    "restore errors": [("FUNCTION", "RESTORE", "x"), ("FUNCTION", "RESTORE", "x", "bad"),
                       ("FUNCTION", "RESTORE", "x", "a", "b"), ("FUNCTION", "RESTORE")],
    "eval globals": [("EVAL", script, "0") for script in (
        "x = 1", "return y", "rawset(_G, 'x', 1)", "setmetatable(_G, {})", "_G.x = 1",
        "return _G.y", "return rawget(_G, 'y')", "return type(rawget(_G, 'KEYS'))",
        "return _G[1]", "local t = {} t.x = 1 return t.x", "KEYS = 1",
        "return loadstring('return secret')()", "redis = nil")],
    "eval globals stay read-only through pairs": [
        ("EVAL", "local f, s = pairs(_G) if type(s) == 'table' then pcall(rawset, s, 'leak', 1) "
                 "end return 1", "0"),
        ("EVAL", "return leak", "0")],
    "eval shebang flags": [("EVAL", script, "0") for script in (
        "#!lua flags=no-writes\nreturn redis.call('set', 'x', 1)",
        "#!lua flags=no-writes\nreturn redis.call('get', 'x')",
        "#!lua flags=bad\nreturn 1", "#!lua x=1\nreturn 1", "#!luax\nreturn 1", "#!lua",
        "#!lua flags=\nreturn 1", "#!lua flags=no-writes,,allow-oom\nreturn 1",
        "#! lua\nreturn 1", '#!"lua\nreturn 1', "#!lua flags=NO-WRITES\nreturn 1",
        "#!lua flags=no-writes,allow-oom,allow-stale,no-cluster,allow-cross-slot-keys\n"
        "return 2",
        "#!lua\n\nreturn y")],
    "eval_ro and evalsha_ro": [
        ("EVAL_RO", "return redis.call('set', 'x', 1)", "0"),
        ("EVAL_RO", "return redis.call('get', 'x')", "0"),
        ("EVAL_RO", "#!lua\nreturn redis.call('get', 'x')", "0"),
        ("EVAL_RO", "#!lua flags=no-writes\nreturn redis.call('get', 'x')", "0"),
        ("EVAL_RO", "return redis.call('publish', 'c', 'm')", "0"),
        ("SCRIPT", "LOAD", "#!lua flags=no-writes\nreturn 5"),
        ("EVALSHA_RO", sha("#!lua flags=no-writes\nreturn 5").decode(), "0"),
        ("SCRIPT", "LOAD", "#!lua\nreturn 6"),
        ("EVALSHA_RO", sha("#!lua\nreturn 6").decode(), "0"),
        ("EVALSHA_RO", "abc", "0"), ("EVALSHA_RO", "a" * 40, "0"),
        ("SCRIPT", "LOAD", "#!lua flags=bogus\nreturn 1"),
        ("EVAL_RO", "return 1", "x")],
}


@pytest.mark.parametrize("resp", [2, 3])
@pytest.mark.parametrize("case", list(PARITY))
def test_same_bytes_as_redis_server(both, case, resp):
    both(*PARITY[case], resp=resp)


def test_load_replies_with_the_library_name_and_fcall_passes_keys_and_args(both):
    replies = both(("FUNCTION", "LOAD", LIB), ("FCALL", "echo", "2", "k1", "k2", "a1"))
    assert replies == [b"$5\r\nmylib\r\n",
                       b"*2\r\n*2\r\n$2\r\nk1\r\n$2\r\nk2\r\n*1\r\n$2\r\na1\r\n"]


def test_list_reply_shape_in_resp3(both):
    replies = both(("FUNCTION", "LOAD", LIB_RO), ("FUNCTION", "LIST"), resp=3)
    assert replies[1] == (
        b"*1\r\n%3\r\n$12\r\nlibrary_name\r\n$5\r\nrolib\r\n$6\r\nengine\r\n$3\r\nLUA\r\n"
        b"$9\r\nfunctions\r\n*1\r\n%3\r\n$4\r\nname\r\n$3\r\nget\r\n$11\r\ndescription\r\n"
        b"$5\r\nreads\r\n$5\r\nflags\r\n~1\r\n+no-writes\r\n")


def test_eval_globals_errors_are_redis_7s(both):
    replies = both(("EVAL", "x = 1", "0"), ("EVAL", "return y", "0"),
                   ("EVAL", "rawset(_G, 'x', 1)", "0"), ("EVAL", "setmetatable(_G, {})", "0"))
    assert replies == [
        b"-ERR user_script:1: Attempt to modify a readonly table script: %s, on "
        b"@user_script:1.\r\n" % sha("x = 1"),
        b"-ERR user_script:1: Script attempted to access nonexistent global variable 'y' "
        b"script: %s, on @user_script:1.\r\n" % sha("return y"),
        b"-ERR Attempt to modify a readonly table script: %s, on @user_script:1.\r\n" %
        sha("rawset(_G, 'x', 1)"),
        b"-ERR Attempt to modify a readonly table script: %s, on @user_script:1.\r\n" %
        sha("setmetatable(_G, {})")]


def test_load_time_code_sees_only_the_load_api(both):
    replies = both(("FUNCTION", "LOAD", lib("local f = string.format")),
                   ("FUNCTION", "LOAD", lib("x = 1")))
    assert replies == [
        b"-ERR Error registering functions: ERR user_function:2: Script attempted to access "
        b"nonexistent global variable 'string'\r\n",
        b"-ERR Error registering functions: ERR user_function:2: Attempt to modify a readonly "
        b"table\r\n"]


def test_a_no_writes_script_cannot_write(both):
    script = "#!lua flags=no-writes\nreturn redis.call('set', 'x', 1)"
    replies = both(("EVAL", script, "0"), ("EXISTS", "x"))
    assert replies == [b"-ERR Write commands are not allowed from read-only scripts. script: "
                       b"%s, on @user_script:2.\r\n" % sha(script), b":0\r\n"]


# ---- the load timeout, BUSY, FUNCTION KILL and UNKILLABLE, side by side ---------------------

def test_a_library_looping_at_load_time_fails_after_500_ms(both):
    replies = both(("FUNCTION", "LOAD", lib("local i = 0 while true do i = i + 1 end")),
                   ("FUNCTION", "LIST"), ("PING",))
    assert replies == [b"-ERR Error registering functions: ERR FUNCTION LOAD timeout\r\n",
                       b"*0\r\n", b"+PONG\r\n"]


BUSY_LIB = lib("redis.register_function('spin', function() while true do end end)\n"
               "redis.register_function('wspin', function(keys)\n"
               "  redis.call('set', keys[1], 1) while true do end end)", name="busy")


@pytest.fixture(scope="module")
def busy_pair(tmp_path_factory):
    """A redis-server and a sakerd that go BUSY after 100 ms."""
    proc, port = start_redis_server("--busy-reply-threshold", "100")
    d = Daemon(tmp_path_factory.mktemp("busy"), "lua-time-limit 100\n")
    yield port, d.port
    d.stop()
    proc.terminate()
    proc.wait(10)


def busy_scenario(port, fname, kill_with):
    """Run fname until the server is BUSY; what another client sees (durations masked)."""
    setup = RawConn(("127.0.0.1", port))
    setup.call("FUNCTION", "LOAD", "REPLACE", BUSY_LIB)
    runner = RawConn(("127.0.0.1", port))
    runner.send(encode_command("FCALL", fname, "1", "k"))
    other = RawConn(("127.0.0.1", port))
    seen = []
    wait_for(lambda: other.call("PING").startswith(b"-BUSY"), 30, "the server to go BUSY")
    seen.append(other.call("PING"))
    stats = other.call("FUNCTION", "STATS")
    seen.append(stats[:stats.index(b"duration_ms") + len(b"duration_ms\r\n")])
    seen.append(other.call("SCRIPT", "KILL"))
    seen.append(other.call(kill_with, "KILL"))
    if fname == b"wspin":
        return seen, runner, other
    seen.append(runner.read_wire())
    seen.append(other.call("PING"))
    for c in (setup, runner, other):
        c.sock.close()
    return seen, None, None


def test_function_kill_stops_a_function_that_has_not_written(busy_pair):
    redis_port, saker_port = busy_pair
    theirs, _, _ = busy_scenario(redis_port, b"spin", "FUNCTION")
    mine, _, _ = busy_scenario(saker_port, b"spin", "FUNCTION")
    assert mine == theirs
    assert mine[0] == b"-BUSY Redis is busy running a script. You can only call FUNCTION KILL " \
                      b"or SHUTDOWN NOSAVE.\r\n"
    assert mine[1] == (b"*4\r\n$14\r\nrunning_script\r\n*6\r\n$4\r\nname\r\n$4\r\nspin\r\n"
                       b"$7\r\ncommand\r\n*4\r\n$5\r\nFCALL\r\n$4\r\nspin\r\n$1\r\n1\r\n$1\r\nk\r\n"
                       b"$11\r\nduration_ms\r\n")
    assert mine[2] == b"-BUSY Redis is busy running a script. You can only call FUNCTION KILL " \
                      b"or SHUTDOWN NOSAVE.\r\n"
    assert mine[3:] == [b"+OK\r\n", b"-ERR Script killed by user with SCRIPT KILL... script: "
                        b"spin, on @user_function:2.\r\n", b"+PONG\r\n"]


def test_a_function_that_wrote_is_unkillable(busy_pair):
    for port in busy_pair:
        seen, runner, other = busy_scenario(port, b"wspin", "FUNCTION")
        assert seen[3] == (b"-UNKILLABLE Sorry the script already executed write commands "
                           b"against the dataset. You can either wait the script termination "
                           b"or kill the server in a hard way using the SHUTDOWN NOSAVE "
                           b"command.\r\n")
        other.send(b"SHUTDOWN NOSAVE\r\n")
        assert other.is_closed()
        assert runner.is_closed()


def test_functions_obey_lua_max_memory_and_the_server_goes_on(make_daemon):
    d = make_daemon("lua-max-memory 16mb\n")
    r = d.client()
    r.function_load(lib("redis.register_function('bomb', function()\n"
                        "  local t = {} for i = 1, 1e8 do t[i] = ('x'):rep(100000) .. i end end)"))
    with pytest.raises(redis.ResponseError) as e:
        r.fcall("bomb", 0)
    assert str(e.value).startswith("not enough memory (lua-max-memory reached)")
    assert r.ping()


def test_monitor_shows_fcall_before_the_commands_it_runs(saker):
    r = saker.client()
    r.function_load(LIB_W, replace=True)
    m = saker.raw()
    m.send(b"MONITOR\r\n")
    assert m.read_line() == b"+OK"
    r.fcall("setit", 1, "mk", "mv")
    first, second = m.read_line(), m.read_line()
    assert first.endswith(b'"FCALL" "setit" "1" "mk" "mv"')
    assert second.endswith(b'[0 lua] "set" "mk" "mv"')


# ---- DUMP and RESTORE ------------------------------------------------------------------------

def test_dump_restore_round_trips_between_two_sakerd(make_daemon):
    a, b = make_daemon(), make_daemon()
    ra, rb = a.client(protocol=3), b.client(protocol=3)
    assert ra.function_load(LIB) == b"mylib"
    assert ra.function_load(LIB_RO) == b"rolib"
    payload = ra.function_dump()
    assert rb.function_restore(payload) is True
    assert rb.fcall("echo", 1, "k", "a") == [[b"k"], [b"a"]]
    rb.set("k", "v")
    assert rb.fcall_ro("get", 1, "k") == b"v"
    assert sorted(lib[b"library_name"] for lib in rb.function_list()) == [b"mylib", b"rolib"]
    assert rb.function_dump() == payload
    # The policies, with Redis's texts.
    with pytest.raises(redis.ResponseError) as e:
        rb.function_restore(payload)
    assert str(e.value) == "Library mylib already exists"
    assert rb.function_restore(payload, "REPLACE") is True
    rb.function_load("#!lua name=extra\nredis.register_function('x', function() return 1 end)")
    assert rb.function_restore(payload, "FLUSH") is True
    assert sorted(lib[b"library_name"] for lib in rb.function_list()) == [b"mylib", b"rolib"]
    rb.function_flush()
    rb.function_load(LIB.replace("mylib", "clash"))
    with pytest.raises(redis.ResponseError) as e:
        rb.function_restore(payload, "APPEND")
    assert str(e.value) == "Function echo already exists"
    assert [lib[b"library_name"] for lib in rb.function_list()] == [b"clash"]


def test_restore_policies_answer_as_redis_server(both, saker, redis_server_port):
    # Each server restores its own DUMP; the replies are compared.
    answers = []
    for port in (redis_server_port, saker.port):
        c = RawConn(("127.0.0.1", port))
        c.call("FUNCTION", "FLUSH")
        c.call("FUNCTION", "LOAD", LIB)
        dump = c.call("FUNCTION", "DUMP")
        payload = dump[dump.index(b"\r\n") + 2:-2]
        answers.append([c.call("FUNCTION", "RESTORE", payload),
                        c.call("FUNCTION", "RESTORE", payload, "replace"),
                        c.call("FUNCTION", "LOAD", LIB.replace("mylib", "clash")),
                        c.call("FUNCTION", "DELETE", "mylib"),
                        c.call("FUNCTION", "LOAD", LIB.replace("mylib", "clash")),
                        c.call("FUNCTION", "RESTORE", payload, "APPEND"),
                        c.call("FUNCTION", "RESTORE", payload, "FLUSH"),
                        c.call("FCALL", "echo", "0")])
        c.sock.close()
    assert answers[1] == answers[0]
    assert answers[1][0] == b"-ERR Library mylib already exists\r\n"


def test_a_redis_server_dump_is_refused_with_a_clear_error(saker, redis_server_port):
    theirs = redis.Redis(port=redis_server_port)
    theirs.function_flush()
    theirs.function_load(LIB)
    payload = theirs.function_dump()
    theirs.function_flush()
    r = saker.client()
    r.function_flush()
    with pytest.raises(redis.ResponseError) as e:
        r.function_restore(payload)
    assert str(e.value) == ("DUMP payload is redis-server's RDB encoding, not a sakerd FUNCTION "
                            "DUMP: load its libraries with FUNCTION LOAD")
    assert r.function_list() == []
    # A damaged sakerd payload: Redis's text.
    r.function_load(LIB)
    mine = r.function_dump()
    r.function_flush()
    for bad in (mine[:-1], mine[:-1] + bytes([mine[-1] ^ 1]), b"SAKERFN", b""):
        with pytest.raises(redis.ResponseError) as e:
            r.function_restore(bad)
        assert str(e.value) == "DUMP payload version or checksum are wrong"
    assert r.function_list() == []


# ---- redis-py ---------------------------------------------------------------------------------

def test_redis_py_function_api(saker):
    r = saker.client(decode_responses=True, protocol=3)
    r.function_flush()
    assert r.function_load(LIB_RO) == "rolib"
    assert r.function_load(LIB_W) == "wlib"
    assert r.fcall("setit", 1, "key", "val") == "OK"
    assert r.fcall_ro("get", 1, "key") == "val"
    with pytest.raises(redis.ResponseError) as e:
        r.fcall_ro("setit", 1, "key", "x")
    assert str(e.value) == "Can not execute a script with write flag using *_ro command."
    assert r.eval_ro("return redis.call('get', KEYS[1])", 1, "key") == "val"
    with pytest.raises(redis.ResponseError) as e:
        r.eval_ro("return redis.call('del', KEYS[1])", 1, "key")
    assert str(e.value).startswith("Write commands are not allowed from read-only scripts.")
    s = r.script_load("#!lua flags=no-writes\nreturn redis.call('get', KEYS[1])")
    assert r.evalsha_ro(s, 1, "key") == "val"
    listed = r.function_list(library="rolib", withcode=True)
    assert listed == [{"library_name": "rolib", "engine": "LUA", "library_code": LIB_RO,
                       "functions": [{"name": "get", "description": "reads",
                                      "flags": ["no-writes"]}]}]
    assert r.function_stats() == {"running_script": None, "engines": {
        "LUA": {"libraries_count": 2, "functions_count": 2}}}
    assert r.function_delete("wlib") is True
    info = r.info("memory")
    assert info["number_of_functions"] == 1 and info["number_of_libraries"] == 1
    assert info["used_memory_functions"] > len(LIB_RO)
    r.function_flush()
    info = r.info("memory")
    assert (info["number_of_functions"], info["number_of_libraries"],
            info["used_memory_functions"]) == (0, 0, 0)


def test_info_memory_has_redis_7s_script_fields_in_its_order(saker, redis_server_port):
    fields = []
    for port in (redis_server_port, saker.port):
        reply = RawConn(("127.0.0.1", port)).call("INFO", "memory")
        text = reply[reply.index(b"\r\n") + 2:].decode()
        names = [line.split(":")[0] for line in text.split("\r\n") if ":" in line]
        start = names.index("used_memory_lua")
        fields.append(names[start:names.index("used_memory_scripts_human") + 1])
    assert fields[1] == fields[0]


# ---- plugins keep their own environment --------------------------------------------------------

def test_plugins_keep_their_own_globals(make_daemon, tmp_path):
    os.makedirs(tmp_path / "p" / "scripts")
    with open(tmp_path / "p" / "scripts" / "p.lua", "w") as f:
        f.write("counter = 0\n"
                "saker.command('p.bump', function() counter = counter + 1\n"
                "  return {counter, tostring(undeclared_name)} end)\n")
    d = make_daemon(subdir="p")
    r = d.client()
    assert r.execute_command("P.BUMP") == [1, b"nil"]
    assert r.execute_command("P.BUMP") == [2, b"nil"]
    with pytest.raises(redis.ResponseError) as e:
        r.eval("return counter", 0)
    assert str(e.value) == nonexistent_global_error("return counter", "counter")


# ---- the functions-file --------------------------------------------------------------------------

def test_a_library_survives_a_restart(make_daemon):
    d = make_daemon()
    r = d.client()
    assert r.function_load(LIB) == b"mylib"
    path = os.path.join(d.dir, "functions.lua.dump")
    st = os.lstat(path)
    assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600
    with open(path, "rb") as f:
        assert f.read() == r.function_dump()
    d.stop()
    d = make_daemon(subdir=os.path.basename(d.dir))
    r = d.client()
    assert r.fcall("echo", 1, "k", "a") == [[b"k"], [b"a"]]
    assert r.function_delete("mylib") is True
    d.stop()
    d = make_daemon(subdir=os.path.basename(d.dir))
    assert d.client().function_list() == []


def test_a_rewritten_file_keeps_its_mode(make_daemon):
    d = make_daemon()
    r = d.client()
    r.function_load(LIB)
    path = os.path.join(d.dir, "functions.lua.dump")
    os.chmod(path, 0o400)
    r.function_load(LIB_RO)
    assert stat.S_IMODE(os.lstat(path).st_mode) == 0o400
    assert [n for n in os.listdir(d.dir) if n.endswith(".tmp")] == []


def test_functions_file_directive_and_empty_disables_it(make_daemon):
    d = make_daemon("functions-file lib/fns.dump\n")
    os.mkdir(os.path.join(d.dir, "lib"), 0o700)
    r = d.client()
    r.function_load(LIB)
    assert os.path.exists(os.path.join(d.dir, "lib", "fns.dump"))
    assert r.config_get("functions-file") == {"functions-file": "lib/fns.dump"}
    e = make_daemon('functions-file ""\n')
    e.client().function_load(LIB)
    assert not os.path.exists(os.path.join(e.dir, "functions.lua.dump"))


def test_a_file_that_cannot_be_saved_fails_the_command_and_changes_nothing(make_daemon):
    d = make_daemon("functions-file shared/fns.dump\n")
    shared = os.path.join(d.dir, "shared")
    os.mkdir(shared)
    os.chmod(shared, 0o777)
    r = d.client()
    with pytest.raises(redis.ResponseError) as e:
        r.function_load(LIB)
    assert str(e.value) == "Error saving the functions-file: directory %s is world-writable " \
        "without the sticky bit (mode 0777)" % shared
    assert r.function_list() == [] and os.listdir(shared) == []
    with pytest.raises(redis.ResponseError):
        r.fcall("echo", 0)
    os.chmod(shared, 0o700)
    assert r.function_load(LIB) == b"mylib"
    assert r.fcall("echo", 0) == [[], []]


def run_sakerd(*args):
    env = sakerd_env()
    return subprocess.run([sys.executable, "-m", "sakerd"] + list(args), env=env,
                          capture_output=True, text=True, timeout=60)


def test_a_corrupt_file_refuses_the_start_and_test_config_says_why(make_daemon):
    d = make_daemon()
    d.client().function_load(LIB)
    d.stop()
    path = os.path.join(d.dir, "functions.lua.dump")
    with open(path, "r+b") as f:
        f.seek(20)
        f.write(b"X")
    out = run_sakerd("-c", d.conf)
    assert out.returncode == 1
    assert "Can't load the functions-file %s: DUMP payload version or checksum are wrong" % \
        path in out.stderr
    out = run_sakerd("--test-config", "-c", d.conf)
    assert out.returncode == 1
    assert "%s: functions-file %s: DUMP payload version or checksum are wrong" % (
        d.conf, path) in out.stderr


def test_test_config_checks_the_libraries_in_the_file(make_daemon):
    d = make_daemon()
    d.client().function_load(LIB)
    d.stop()
    assert run_sakerd("--test-config", "-c", d.conf).stdout == "configuration OK\n"


def test_a_symlinked_or_foreign_writable_file_is_refused(make_daemon, tmp_path):
    d = make_daemon()
    d.client().function_load(LIB)
    d.stop()
    path = os.path.join(d.dir, "functions.lua.dump")
    os.chmod(path, 0o622)
    out = run_sakerd("-c", d.conf)
    assert out.returncode == 1 and "it is writable by other users (mode 622" in out.stderr
    os.rename(path, path + ".real")
    os.chmod(path + ".real", 0o600)
    os.symlink(path + ".real", path)
    out = run_sakerd("-c", d.conf)
    assert out.returncode == 1
    assert "Can't load the functions-file %s: can't open it: it is a symbolic link" % path \
        in out.stderr


def test_kill_9_during_function_load_leaves_the_old_or_the_new_file(make_daemon):
    d = make_daemon()
    name = os.path.basename(d.dir)
    versions = [LIB.replace("return {keys, args}", "return %d" % i) for i in range(200)]
    stop = threading.Event()

    def load_forever(port):
        r = redis.Redis(port=port, socket_timeout=5)
        i = 0
        try:
            while not stop.is_set():
                r.function_load(versions[i % len(versions)], replace=True)
                i += 1
        except (redis.ConnectionError, redis.TimeoutError):
            pass

    for round in range(4):
        r = d.client()
        r.function_load(versions[0], replace=True)
        stop.clear()
        loaders = [threading.Thread(target=load_forever, args=(d.port,)) for _ in range(2)]
        for t in loaders:
            t.start()
        wait_for(lambda: r.fcall("echo", 0) not in (0, None), 30, "a few loads")
        d.kill9()
        stop.set()
        for t in loaders:
            t.join(10)
        d = make_daemon(subdir=name, port=d.port)
        assert d.client().fcall("echo", 0) in range(200)
    assert [n for n in os.listdir(d.dir) if n.endswith(".tmp")] == []
