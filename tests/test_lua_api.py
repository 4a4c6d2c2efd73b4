"""§9.9: every saker.* function of the bridge, tasks and scripting rejects bad
arguments with a Lua error naming the function and the argument; the daemon
keeps serving. (The process functions have their rows in test_procs.py.)
"""

import socket
import time

import pytest

F = "function() end"

# (call arguments as Lua source, exact error message)
BAD_CALLS = [
    ("saker.log", "bad argument #1 to 'log' (string expected, got no value)"),
    ("saker.log, {}", "bad argument #1 to 'log' (string expected, got table)"),
    ("saker.log, 'loud', 'x'",
     "bad argument #1 to 'log' (invalid log level 'loud' (debug, verbose, notice or warning))"),
    ("saker.log, 'notice', {}", "bad argument #2 to 'log' (string expected, got table)"),
    ("saker.log, 'notice', 'a', nil", "bad argument #3 to 'log' (string expected, got nil)"),
    ("saker.publish", "bad argument #1 to 'publish' (string expected, got no value)"),
    ("saker.publish, nil, 'm'", "bad argument #1 to 'publish' (string expected, got nil)"),
    ("saker.publish, 'ch'", "bad argument #2 to 'publish' (string expected, got no value)"),
    ("saker.publish, 'ch', true", "bad argument #2 to 'publish' (string expected, got boolean)"),
    ("saker.publish, 'ch', 'm', 'x'", "bad argument #3 to 'publish' (no value expected, got string)"),
    ("saker.call", "bad argument #1 to 'call' (string expected, got no value)"),
    ("saker.call, {}", "bad argument #1 to 'call' (string expected, got table)"),
    ("saker.call, 'get', " + F, "bad argument #2 to 'call' (string expected, got function)"),
    ("saker.pcall", "bad argument #1 to 'pcall' (string expected, got no value)"),
    ("saker.pcall, 'set', 'k', {}", "bad argument #3 to 'pcall' (string expected, got table)"),
    ("saker.time, 1", "bad argument #1 to 'time' (no value expected, got number)"),
    ("saker.hostname, 'x'", "bad argument #1 to 'hostname' (no value expected, got string)"),
    ("saker.every", "bad argument #1 to 'every' (number expected, got no value)"),
    ("saker.every, 'soon', " + F, "bad argument #1 to 'every' (number expected, got string)"),
    ("saker.every, 0, " + F, "bad argument #1 to 'every' (interval must be positive)"),
    ("saker.every, 10", "bad argument #2 to 'every' (function expected, got no value)"),
    ("saker.every, 10, 'f'", "bad argument #2 to 'every' (function expected, got string)"),
    ("saker.every, 10, %s, 5" % F, "bad argument #3 to 'every' (table expected, got number)"),
    ("saker.every, 10, %s, {name = 1}" % F,
     "bad argument #3 to 'every' (field 'name' must be a string)"),
    ("saker.every, 10, %s, {enabled = 'yes'}" % F,
     "bad argument #3 to 'every' (field 'enabled' must be a boolean)"),
    ("saker.after", "bad argument #1 to 'after' (number expected, got no value)"),
    ("saker.after, -1, " + F, "bad argument #1 to 'after' (delay must not be negative)"),
    ("saker.after, 1, {}", "bad argument #2 to 'after' (function expected, got table)"),
    ("saker.cancel", "bad argument #1 to 'cancel' (integer or string expected, got no value)"),
    ("saker.cancel, {}", "bad argument #1 to 'cancel' (integer or string expected, got table)"),
    ("saker.cancel, 1.5", "bad argument #1 to 'cancel' (number has no integer representation)"),
    ("saker.command", "bad argument #1 to 'command' (string expected, got no value)"),
    ("saker.command, 'x'", "bad argument #2 to 'command' (function expected, got no value)"),
    ("saker.command, 'bad name', " + F,
     "bad argument #1 to 'command' (invalid command name 'bad name')"),
    ("saker.command, 'x', %s, {arity = 'a'}" % F,
     "bad argument #3 to 'command' (field 'arity' must be a non-zero integer)"),
    ("saker.command, 'x', %s, {summary = {}}" % F,
     "bad argument #3 to 'command' (field 'summary' must be a string)"),
]


def test_every_saker_function_rejects_bad_arguments_naming_function_and_argument(daemon):
    r = daemon.client(protocol=2)
    for call, message in BAD_CALLS:
        got = r.eval("local ok, e = pcall(%s) return {tostring(ok), e}" % call, 0)
        assert got == [b"false", message.encode()], call
    assert r.ping()


def test_an_uncaught_bad_argument_names_the_script_line(daemon):
    r = daemon.client(protocol=2)
    with pytest.raises(Exception) as e:
        r.eval("local x = 1\nsaker.publish(nil, 'm')\nreturn x", 0)
    assert str(e.value).startswith(
        "user_script:2: bad argument #1 to 'publish' (string expected, got nil) script: ")


def test_operational_failures_return_nil_and_a_message(daemon):
    r = daemon.client(protocol=2)
    assert r.eval("return {tostring(saker.cancel(424242)), select(2, saker.cancel(424242))}",
                  0) == [b"nil", b"no such task '424242'"]
    assert r.eval("return {tostring(saker.command('get', function() end)),"
                  " select(2, saker.command('get', function() end))}", 0) == \
        [b"nil", b"command 'get' already exists"]


def test_saker_functions_work(daemon):
    r = daemon.client(protocol=2)
    p = r.pubsub()
    p.subscribe("ch")
    assert p.get_message(timeout=30)["type"] == "subscribe"
    assert r.eval("return saker.publish('ch', 'hi')", 0) == 1
    assert p.get_message(timeout=30)["data"] == b"hi"
    assert r.eval("return saker.hostname()", 0) == socket.gethostname().encode()
    assert abs(r.eval("return saker.time()", 0) - time.time()) < 5
    r.eval("saker.log('warning', 'from', 'lua', 42)", 0)
    assert "[user_script:1] from lua 42" in daemon.log()
    tid = r.eval("return saker.after(1, function() saker.call('set', 'fired', 'yes') end)", 0)
    assert isinstance(tid, int)
    deadline = time.monotonic() + 30   # a ceiling for a loaded machine
    while r.get("fired") != b"yes":
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert r.eval("return saker.command('echo2', function(a) return a .. a end)", 0) == 1
    assert r.execute_command("ECHO2", "ab") == b"abab"
