"""EVAL, EVALSHA and SCRIPT: Redis 7's conversions and error texts, byte for byte.

The expected bytes were produced by redis-server 7.0.15 for the same scripts.
"""

import hashlib

import pytest

from helpers import Daemon


def sha(body):
    return hashlib.sha1(body.encode()).hexdigest()


def read_raw(conn):
    """One whole RESP2 reply, as the bytes on the wire."""
    line = conn.read_line() + b"\r\n"
    t, n = line[:1], line[1:-2]
    if t == b"$":
        return line + (conn.read_exact(int(n) + 2) if int(n) >= 0 else b"")
    if t == b"*":
        return line + b"".join(read_raw(conn) for _ in range(max(int(n), 0)))
    return line


def command(*args):
    args = [a.encode() if isinstance(a, str) else a for a in args]
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """One daemon for the stateless cases of this file (they are many)."""
    d = Daemon(tmp_path_factory.mktemp("eval"))
    yield d
    d.stop()


@pytest.fixture
def conn(shared):
    c = shared.raw()
    yield c
    c.close()


def ask(conn, *args):
    conn.send(command(*args))
    return read_raw(conn)


CONVERSIONS = [
    ("return 1", b":1\r\n"),
    ("return 3.99", b":3\r\n"),
    ("return -3.99", b":-3\r\n"),
    ("return 1/0", b":-9223372036854775808\r\n"),
    ("return 0/0", b":-9223372036854775808\r\n"),
    ("return 'x'", b"$1\r\nx\r\n"),
    ("return {1,2,{3,'a'},nil,5}", b"*3\r\n:1\r\n:2\r\n*2\r\n:3\r\n$1\r\na\r\n"),
    ("return {1, nil, 3}", b"*1\r\n:1\r\n"),
    ("return {[1]=1,[3]=3}", b"*1\r\n:1\r\n"),
    ("return {x=1}", b"*0\r\n"),
    ("return true", b":1\r\n"),
    ("return false", b"$-1\r\n"),
    ("return nil", b"$-1\r\n"),
    ("return {ok='fine'}", b"+fine\r\n"),
    ("return {err='My Error'}", b"-My Error\r\n"),
    ("return {err='-X y'}", b"--X y\r\n"),
    ("return redis.error_reply('My Error')", b"-My Error\r\n"),
    ("return redis.error_reply('-CODE x')", b"-CODE x\r\n"),
    ("return redis.status_reply('OK2')", b"+OK2\r\n"),
    ("return {double=3.5}", b"$3\r\n3.5\r\n"),
    ("return {map={a=1}}", b"*2\r\n$1\r\na\r\n:1\r\n"),
    ("return {1, 'a', {ok='x'}, {err='y'}}", b"*4\r\n:1\r\n$1\r\na\r\n+x\r\n-y\r\n"),
    ("return redis.sha1hex('')", b"$40\r\nda39a3ee5e6b4b0d3255bfef95601890afd80709\r\n"),
    ("return redis.call('ping')", b"+PONG\r\n"),
    ("return redis.call('get','nokey')", b"$-1\r\n"),
    ("return {redis.call('get','nokey')}", b"*1\r\n$-1\r\n"),
    ("return redis.call('set', 'n', 0.1) and redis.call('get','n')",
     b"$19\r\n0.10000000000000001\r\n"),
    ("return redis.call('set', 'n', 10) and redis.call('get','n')", b"$2\r\n10\r\n"),
    ("return redis.call('hset','h','a','1') and redis.call('hgetall','h')",
     b"*2\r\n$1\r\na\r\n$1\r\n1\r\n"),
    ("return type(redis.call('hgetall','nohash'))", b"$5\r\ntable\r\n"),
    ("return tostring(KEYS[1]) .. tostring(ARGV[1])", b"$6\r\nnilnil\r\n"),
]


@pytest.mark.parametrize("script,expected", CONVERSIONS, ids=[c[0] for c in CONVERSIONS])
def test_eval_reply_conversion_matches_redis(conn, script, expected):
    assert ask(conn, "EVAL", script, "0") == expected


def test_redis_call_error_is_raised_with_script_location_and_pcall_returns_it(conn):
    assert ask(conn, "SET", "s", "v") == b"+OK\r\n"
    script = "redis.call('set','s','v'); local v = redis.call('incr','s') return v"
    assert ask(conn, "EVAL", script, "0") == (
        b"-ERR value is not an integer or out of range script: %s, on @user_script:1.\r\n"
        % sha(script).encode())
    assert ask(conn, "EVAL", "return redis.pcall('incr','s')", "0") == \
        b"-ERR value is not an integer or out of range\r\n"
    assert ask(conn, "EVAL", "return {redis.pcall('incr','s')}", "0") == \
        b"*1\r\n-ERR value is not an integer or out of range\r\n"
    # Lua's pcall catches redis.call's error as its message (Redis 7).
    assert ask(conn, "EVAL", "local ok, e = pcall(redis.call,'incr','s') return e", "0") == \
        b"$43\r\nERR value is not an integer or out of range\r\n"
    assert ask(conn, "EVAL", "return pcall(redis.call,'incr','s')", "0") == b"$-1\r\n"


@pytest.mark.parametrize("script,error", [
    ("error('boom')", "ERR user_script:1: boom"),
    ("error({err='CUSTOM thing'})", "CUSTOM thing"),
    ("redis.call('nosuch')", "ERR Unknown Redis command called from script"),
    ("redis.call('get')", "ERR Wrong number of args calling Redis command from script"),
    ("redis.call('eval','return 1','0')", "ERR This Redis command is not allowed from script"),
    ("redis.call('subscribe','x')", "ERR This Redis command is not allowed from script"),
    ("redis.call({})", "ERR Lua redis lib command arguments must be strings or integers"),
    ("redis.call('set','a',{})",
     "ERR Lua redis lib command arguments must be strings or integers"),
    ("redis.log(redis.LOG_WARNING)", "ERR redis.log() requires two arguments or more."),
    ("redis.log('x','y')", "ERR First argument must be a number (log level)."),
])
def test_script_errors_have_redis7_text(conn, script, error):
    assert ask(conn, "EVAL", script, "0") == (
        "-%s script: %s, on @user_script:1.\r\n" % (error, sha(script))).encode()


def test_tail_called_redis_call_error_keeps_the_location(conn):
    # redis.call is a C function, as in Redis: a tail call to it keeps the
    # script's frame, so the error names the script and the line.
    sha = hashlib.sha1(b"return redis.call('nosuch')").hexdigest().encode()
    assert ask(conn, "EVAL", "return redis.call('nosuch')", "0") == (
        b"-ERR Unknown Redis command called from script script: %s, "
        b"on @user_script:1.\r\n" % sha)


def test_eval_argument_errors(conn):
    assert ask(conn, "EVAL", "return 'a' .. ", "0") == (
        b"-ERR Error compiling script (new function): user_script:1: "
        b"unexpected symbol near <eof>\r\n")
    assert ask(conn, "EVAL", "return 1", "2", "a") == \
        b"-ERR Number of keys can't be greater than number of args\r\n"
    assert ask(conn, "EVAL", "return 1", "-1") == b"-ERR Number of keys can't be negative\r\n"
    assert ask(conn, "EVAL", "return 1", "x") == b"-ERR value is not an integer or out of range\r\n"
    assert ask(conn, "EVAL") == b"-ERR wrong number of arguments for 'eval' command\r\n"


def test_keys_and_argv(conn):
    assert ask(conn, "EVAL", "return {KEYS[1], KEYS[2], ARGV[1], #ARGV}", "2", "k1", "k2",
               "a1", "a2") == b"*4\r\n$2\r\nk1\r\n$2\r\nk2\r\n$2\r\na1\r\n:2\r\n"


def test_evalsha_and_script_cache(conn):
    body = "return ARGV[1]"
    h = sha(body)
    assert ask(conn, "EVALSHA", h, "0", "x") == b"-NOSCRIPT No matching script. Please use EVAL.\r\n"
    assert ask(conn, "EVALSHA", "abc", "0") == b"-NOSCRIPT No matching script. Please use EVAL.\r\n"
    assert ask(conn, "SCRIPT", "LOAD", body) == b"$40\r\n%s\r\n" % h.encode()
    assert ask(conn, "SCRIPT", "EXISTS", h, h.upper(), "ab") == b"*3\r\n:1\r\n:1\r\n:0\r\n"
    assert ask(conn, "EVALSHA", h.upper(), "0", "x") == b"$1\r\nx\r\n"
    assert ask(conn, "SCRIPT", "FLUSH", "x") == b"-ERR SCRIPT FLUSH only support SYNC|ASYNC option\r\n"
    assert ask(conn, "SCRIPT", "FLUSH") == b"+OK\r\n"
    assert ask(conn, "SCRIPT", "EXISTS", h) == b"*1\r\n:0\r\n"
    assert ask(conn, "SCRIPT", "KILL") == b"-NOTBUSY No scripts in execution right now.\r\n"
    assert ask(conn, "SCRIPT", "foo") == b"-ERR unknown subcommand 'foo'. Try SCRIPT HELP.\r\n"
    assert ask(conn, "SCRIPT", "LOAD") == b"-ERR wrong number of arguments for 'script|load' command\r\n"


def test_eval_replies_resp3_nulls_and_maps(daemon):
    conn = daemon.raw()
    conn.send(command("HELLO", "3") + command("PING"))
    data = b""
    while b"+PONG\r\n" not in data:
        data += conn.sock.recv(65536)
    conn.buf = b""
    conn.send(command("EVAL", "return nil", "0"))
    assert conn.read_line() == b"_"
    conn.send(command("EVAL", "return {map={a=1}}", "0"))
    assert conn.read_line() == b"%1"
    assert conn.read_line() == b"$1" and conn.read_line() == b"a" and conn.read_line() == b":1"
    conn.send(command("EVAL", "return {double=1.5}", "0"))
    assert conn.read_line() == b",1.5"


def test_saker_call_from_eval_uses_the_callers_database(daemon):
    r = daemon.client(protocol=2, db=3)
    assert r.eval("return saker.call('set', KEYS[1], ARGV[1])", 1, "k", "v") == b"OK"
    assert r.get("k") == b"v"
    assert daemon.client(protocol=2, db=0).get("k") is None
    assert r.eval("return saker.pcall('incr', 'k').err", 0) == \
        b"ERR value is not an integer or out of range"
    with pytest.raises(Exception) as e:
        r.eval("local v = saker.call('incr', 'k') return v", 0)
    assert str(e.value).startswith("value is not an integer or out of range script:")


def test_info_lua_counts_calls_and_cached_scripts(daemon):
    r = daemon.client(protocol=2)
    before = r.info("lua")
    r.eval("return 1", 0)
    r.script_load("return 2")
    with pytest.raises(Exception):
        r.eval("error('x')", 0)
    info = r.info("lua")
    assert info["number_of_cached_scripts"] == 3
    assert info["lua_calls"] >= before["lua_calls"] + 2
    assert info["lua_errors"] == before["lua_errors"] + 1
    assert info["lua_version"] == "Lua 5.4"
    assert info["used_memory_lua"] > 0 and info["lua_registry_size"] > 0


def test_hitting_lua_max_memory_fails_that_call_only(make_daemon):
    daemon = make_daemon(config="lua-max-memory 8mb\n")
    r = daemon.client(protocol=2)
    with pytest.raises(Exception) as e:
        r.eval("local t = {} for i = 1, 1e8 do t[i] = string.rep('x', 100) .. i end", 0)
    assert str(e.value) == "not enough memory (lua-max-memory reached)"
    assert r.eval("return 'still fine'", 0) == b"still fine"
    assert r.info("lua")["used_memory_lua"] < 1024 * 1024
