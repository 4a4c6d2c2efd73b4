"""EVAL side by side with redis-server 7.0.15: the same requests, the same bytes.

Each case is sent to a real redis-server and to sakerd on fresh connections;
both answers are compared with each other and with the bytes written here.
"""

import hashlib

import pytest

from helpers import Daemon, RawConn


def sha(body):
    return hashlib.sha1(body.encode()).hexdigest().encode()


@pytest.fixture(scope="module")
def saker_port(tmp_path_factory):
    d = Daemon(tmp_path_factory.mktemp("parity"))
    yield d.port
    d.stop()


@pytest.fixture
def ask_both(saker_port, redis_server_port):
    """ask_both(*requests, resp=2): the replies to the last request, both servers
    on fresh connections (after HELLO 3 when resp=3); asserts they are equal."""
    conns = []

    def ask(*requests, resp=2):
        answers = []
        for port in (redis_server_port, saker_port):
            c = RawConn(("127.0.0.1", port))
            conns.append(c)
            if resp == 3:
                c.call("HELLO", "3")
            for req in requests:
                last = c.call(*req)
            answers.append(last)
        assert answers[1] == answers[0], "sakerd differs from redis-server"
        return answers[1]
    yield ask
    for c in conns:
        c.close()


def eval_error(script, text):
    return b"-%s script: %s, on @user_script:1.\r\n" % (text, sha(script))


# ---- redis.setresp -------------------------------------------------------------

SETRESP_ERRORS = [
    ("redis.setresp()", b"ERR redis.setresp() requires one argument."),
    ("redis.setresp(2, 3)", b"ERR redis.setresp() requires one argument."),
    ("redis.setresp(4)", b"ERR RESP version must be 2 or 3."),
    ("redis.setresp(1)", b"ERR RESP version must be 2 or 3."),
    ("redis.setresp('x')", b"ERR RESP version must be 2 or 3."),
    ("redis.setresp({})", b"ERR RESP version must be 2 or 3."),
    ("return redis.setresp(4)", b"ERR RESP version must be 2 or 3."),
]


@pytest.mark.parametrize("script,text", SETRESP_ERRORS, ids=[c[0] for c in SETRESP_ERRORS])
def test_setresp_rejects_bad_arguments_with_redis_texts(ask_both, script, text):
    assert ask_both(("EVAL", script, "0")) == eval_error(script, text)


def test_setresp_pcall_returns_the_error_message(ask_both):
    assert ask_both(("EVAL", "local ok, e = pcall(redis.setresp, 9) return e", "0")) == \
        b"$32\r\nERR RESP version must be 2 or 3.\r\n"


@pytest.mark.parametrize("arg", ["2", "3", "'3'", "3.9", "2.5"])
def test_setresp_accepts_what_converts_to_2_or_3(ask_both, arg):
    assert ask_both(("EVAL", "redis.setresp(%s) return 'ok'" % arg, "0")) == b"$2\r\nok\r\n"


SETRESP_CONVERSIONS = [
    # RESP3 null -> nil (RESP2: false)
    ("redis.setresp(3) return type(redis.call('get', 'nokey'))", b"$3\r\nnil\r\n"),
    ("redis.setresp(2) return type(redis.call('get', 'nokey'))", b"$7\r\nboolean\r\n"),
    ("redis.setresp(3) return {1, redis.call('get', 'nokey'), 3}", b"*1\r\n:1\r\n"),
    # RESP3 map -> {map=...}
    ("redis.setresp(3) return type(redis.call('hgetall', 'p:h').map)", b"$5\r\ntable\r\n"),
    ("redis.setresp(3) return redis.call('hgetall', 'p:h').map.f", b"$1\r\nv\r\n"),
    ("redis.setresp(3) return redis.call('hgetall', 'p:h')", b"*2\r\n$1\r\nf\r\n$1\r\nv\r\n"),
    ("redis.setresp(2) return redis.call('hgetall', 'p:h')", b"*2\r\n$1\r\nf\r\n$1\r\nv\r\n"),
    ("redis.setresp(3) return redis.call('hgetall', 'p:none').map == nil", b":0\r\n"),
    # RESP3 verbatim string -> {verbatim_string={format=, string=}}
    ("redis.setresp(3) local v = redis.call('info', 'server').verbatim_string "
     "return {v.format, type(v.string), v.string:sub(1, 8)}",
     b"*3\r\n$3\r\ntxt\r\n$6\r\nstring\r\n$8\r\n# Server\r\n"),
    ("redis.setresp(2) return type(redis.call('info', 'server'))", b"$6\r\nstring\r\n"),
    # Unchanged by the protocol.
    ("redis.setresp(3) return redis.call('set', 'p:k', 'v')", b"+OK\r\n"),
    ("redis.setresp(3) return redis.call('incr', 'p:n') > 0", b":1\r\n"),
    ("redis.setresp(3) return redis.pcall('hgetall', 'p:k')",
     b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"),
    # Booleans returned by the script follow its protocol (RESP2 client).
    ("return {true, false}", b"*2\r\n:1\r\n$-1\r\n"),
    ("redis.setresp(3) return {true, false}", b"*2\r\n:1\r\n:0\r\n"),
    ("redis.setresp(3) redis.setresp(2) return false", b"$-1\r\n"),
]


@pytest.mark.parametrize("script,expected", SETRESP_CONVERSIONS,
                         ids=[c[0] for c in SETRESP_CONVERSIONS])
def test_setresp_switches_reply_conversion_like_redis(ask_both, script, expected):
    # Each case sets up what it reads: under pytest-xdist the cases of this
    # list run on several workers, in no fixed order.
    setup = [("HSET", "p:h", "f", "v"), ("SET", "p:k", "v")]
    assert ask_both(*setup, ("EVAL", script, "0")) == expected


SETRESP_RESP3_CLIENT = [
    ("return {true, false}", b"*2\r\n:1\r\n_\r\n"),
    ("redis.setresp(3) return {true, false}", b"*2\r\n#t\r\n#f\r\n"),
    ("redis.setresp(3) return redis.call('hgetall', 'p:h')", b"%1\r\n$1\r\nf\r\n$1\r\nv\r\n"),
    ("redis.setresp(3) return redis.call('get', 'nokey')", b"_\r\n"),
    ("return {double=1.5}", b",1.5\r\n"),
    ("return {big_number='123456789012345678901234567890'}",
     b"(123456789012345678901234567890\r\n"),
    ("return {verbatim_string={format='txt', string='hi'}}", b"=6\r\ntxt:hi\r\n"),
    ("return {set={a=true}}", b"~1\r\n$1\r\na\r\n"),
]


@pytest.mark.parametrize("script,expected", SETRESP_RESP3_CLIENT,
                         ids=[c[0] for c in SETRESP_RESP3_CLIENT])
def test_setresp_replies_to_a_resp3_client_like_redis(ask_both, script, expected):
    setup = ("HSET", "p:h", "f", "v")
    assert ask_both(setup, ("EVAL", script, "0"), resp=3) == expected


def test_each_script_run_starts_in_resp2(ask_both):
    assert ask_both(("EVAL", "redis.setresp(3) return 1", "0"),
                    ("EVAL", "return type(redis.call('get', 'nokey'))", "0")) == \
        b"$7\r\nboolean\r\n"


# ---- errors of tail-called redis.* functions ----------------------------------------

TAIL_CALLS = [
    ("return redis.call('nosuchcmd')", b"ERR Unknown Redis command called from script"),
    ("return redis.call('get')", b"ERR Wrong number of args calling Redis command from script"),
    ("return redis.call()",
     b"ERR Please specify at least one argument for this redis lib call"),
    ("return redis.call('incr', 'p:h')",
     b"WRONGTYPE Operation against a key holding the wrong kind of value"),
    ("return redis.log(redis.LOG_WARNING)", b"ERR redis.log() requires two arguments or more."),
    ("local function f() return redis.call('nosuchcmd') end return f()",
     b"ERR Unknown Redis command called from script"),
]


@pytest.mark.parametrize("script,text", TAIL_CALLS, ids=[c[0] for c in TAIL_CALLS])
def test_tail_called_redis_function_error_has_the_script_location(ask_both, script, text):
    assert ask_both(("HSET", "p:h", "f", "v"), ("EVAL", script, "0")) == eval_error(script, text)


def test_tail_called_error_on_a_later_line_names_that_line(ask_both):
    script = "local x = 1\n\nreturn redis.call('nosuchcmd')"
    assert ask_both(("EVAL", script, "0")) == (
        b"-ERR Unknown Redis command called from script script: %s, on @user_script:3.\r\n"
        % sha(script))


@pytest.mark.parametrize("script,expected", [
    ("return pcall(redis.call, 'nosuchcmd')", b"$-1\r\n"),
    ("local ok, e = pcall(redis.call, 'nosuchcmd') return e",
     b"$44\r\nERR Unknown Redis command called from script\r\n"),
    ("return redis.pcall('nosuchcmd')", b"-ERR Unknown Redis command called from script\r\n"),
    ("return {coroutine.resume(coroutine.create(function() return redis.call('nosuchcmd') end))}",
     b"*2\r\n$-1\r\n-ERR Unknown Redis command called from script\r\n"),
    ("return type(redis.call)", b"$8\r\nfunction\r\n"),
])
def test_caught_redis_call_errors_are_the_error_tables(ask_both, script, expected):
    assert ask_both(("EVAL", script, "0")) == expected
