"""Plugins and tasks: loading, commands, TASK/PLUGIN, reload, errors, timeouts, C modules."""

import json
import os
import subprocess
import sys
import time

import pytest
import redis

from helpers import ROOT, nonexistent_global_error, sakerd_env, require_tool, wait_for


def plugin_dir(tmp_path, files, name="plugins"):
    d = tmp_path / name
    d.mkdir(exist_ok=True)
    for fname, text in files.items():
        (d / fname).write_text(text)
    return d


def start(make_daemon, tmp_path, files, config=""):
    d = plugin_dir(tmp_path, files)
    daemon = make_daemon(config="scripts-dir %s\n%s" % (d, config))
    return daemon, d



def tasks_by_name(r):
    return {t[b"name"].decode(): t for t in
            (dict(zip(row[::2], row[1::2])) for row in r.execute_command("TASK", "LIST"))}


COUNTER = """
local n = 0
saker.every(20, function() n = n + 1 end, {name = "tick"})
saker.command("count", function() return n end, {arity = 1, summary = "ticks so far"})
saker.command("greet", function(who, ...) return {"hello", who, select("#", ...)} end)
"""


def test_plugin_command_and_task(make_daemon, tmp_path):
    daemon, _ = start(make_daemon, tmp_path, {"counter.lua": COUNTER})
    r = daemon.client(protocol=2)
    assert wait_for(lambda: r.execute_command("COUNT") >= 3)
    assert r.execute_command("GREET", "bob", "x", "y") == [b"hello", b"bob", 2]
    with pytest.raises(redis.ResponseError) as e:
        r.execute_command("COUNT", "extra")
    assert str(e.value) == "wrong number of arguments for 'count' command"
    raw = daemon.raw()
    raw.send(b"COMMAND INFO count\r\n")
    info = raw.read_reply()[0]
    assert info[0] == b"count" and info[1] == 1
    raw.send(b"INFO commandstats\r\n")
    assert b"cmdstat_count:calls=" in raw.read_reply()
    task = tasks_by_name(r)["tick"]
    assert task[b"plugin"] == b"counter" and task[b"interval"] == 20 and task[b"enabled"] == 1
    assert task[b"runs"] >= 3 and task[b"errors"] == 0 and task[b"last_error"] == b""
    raw.send(b"INFO tasks\r\n")
    assert b"task_tick:runs=" in raw.read_reply()
    plugins = r.execute_command("PLUGIN", "LIST")
    p = dict(zip(plugins[0][::2], plugins[0][1::2]))
    assert p[b"name"] == b"counter" and p[b"status"] == b"loaded"
    assert p[b"tasks"] == 1 and p[b"commands"] == b"count greet"


def test_task_disable_enable_and_run(make_daemon, tmp_path):
    daemon, _ = start(make_daemon, tmp_path, {"counter.lua": COUNTER})
    r = daemon.client(protocol=2)
    assert r.execute_command("TASK", "DISABLE", "tick") == b"OK"
    frozen = r.execute_command("COUNT")
    time.sleep(0.2)   # ten intervals: a disabled task must not run in any of them
    assert r.execute_command("COUNT") == frozen
    assert tasks_by_name(r)["tick"][b"enabled"] == 0
    assert r.execute_command("TASK", "RUN", "tick") is None
    assert r.execute_command("COUNT") == frozen + 1
    assert r.execute_command("TASK", "ENABLE", "tick") == b"OK"
    assert wait_for(lambda: r.execute_command("COUNT") >= frozen + 3)
    with pytest.raises(redis.ResponseError) as e:
        r.execute_command("TASK", "RUN", "nope")
    assert str(e.value) == "no such task 'nope'"


def test_reload_replaces_atomically_and_a_broken_version_keeps_the_old(make_daemon, tmp_path):
    daemon, d = start(make_daemon, tmp_path, {"v.lua": """
saker.command("version", function() return 1 end)
saker.every(1000, function() end, {name = "old-task"})
saker.every(1000, function() end)
"""})
    r = daemon.client(protocol=2)
    assert r.execute_command("VERSION") == 1
    (d / "v.lua").write_text("""
saker.command("version", function() return 2 end)
saker.every(1000, function() end, {name = "new-task"})
saker.every(1000, function() end)
""")
    assert r.execute_command("PLUGIN", "RELOAD", "v") == b"OK"
    assert r.execute_command("VERSION") == 2
    assert list(tasks_by_name(r)) == ["new-task", "v:1"]
    (d / "v.lua").write_text("""
saker.command("version", function() return 3 end)
saker.every(1000, function() end, {name = "newest-task"})
error("half way")
""")
    with pytest.raises(redis.ResponseError) as e:
        r.execute_command("PLUGIN", "RELOAD", "v")
    assert str(e.value) == ("Plugin v failed to load: v.lua:4: half way "
                            "(the previous version keeps running)")
    assert r.execute_command("VERSION") == 2
    assert list(tasks_by_name(r)) == ["new-task", "v:1"]
    p = r.execute_command("PLUGIN", "LIST")[0]
    assert dict(zip(p[::2], p[1::2]))[b"error"] == b"v.lua:4: half way"
    os.unlink(d / "v.lua")
    assert r.execute_command("PLUGIN", "RELOAD") == b"OK"
    assert r.execute_command("PLUGIN", "LIST") == []
    with pytest.raises(redis.ResponseError) as e:
        r.execute_command("VERSION")
    assert str(e.value).startswith("unknown command 'VERSION'")


def test_failing_task_is_logged_counted_published_and_stays_scheduled(make_daemon, tmp_path):
    daemon, _ = start(make_daemon, tmp_path, {"bad.lua": """
saker.every(30, function()
  local t = nil
  return t.field
end, {name = "crash"})
"""})
    r = daemon.client(protocol=2)
    p = r.pubsub()
    p.subscribe("events")
    assert p.get_message(timeout=30)["type"] == "subscribe"
    msg = p.get_message(timeout=30)
    event = json.loads(msg["data"])
    assert event["type"] == "task_error" and event["task"] == "crash" and event["plugin"] == "bad"
    assert event["error"] == "ERR bad.lua:4: attempt to index a nil value (local 't')"
    assert wait_for(lambda: tasks_by_name(r)["crash"][b"errors"] >= 3)
    t = tasks_by_name(r)["crash"]
    assert t[b"runs"] == t[b"errors"]
    assert t[b"last_error"] == b"ERR bad.lua:4: attempt to index a nil value (local 't')"
    assert "[bad.lua:4] Task crash of plugin bad failed: ERR bad.lua:4: attempt to index" in \
        daemon.log()


def test_runaway_task_is_killed_and_runs_again(make_daemon, tmp_path):
    daemon, _ = start(make_daemon, tmp_path, {"loop.lua": """
saker.every(50, function()
  while true do pcall(function() while true do end end) end
end, {name = "spin"})
"""}, config="lua-task-timeout 200\nlua-time-limit 0\n")
    r = daemon.client(protocol=2)
    wait_for(lambda: tasks_by_name(r)["spin"][b"timeouts"] >= 2)
    assert r.ping()
    t = tasks_by_name(r)["spin"]
    assert t[b"last_error"] == b"ERR task 'spin' timed out after 200 ms (lua-task-timeout)"
    assert t[b"enabled"] == 1 and float(t[b"max_ms"]) >= 200
    assert r.info("lua")["lua_timeouts"] >= 2


def test_plugin_command_timeout_replies_error_and_server_stays_healthy(make_daemon, tmp_path):
    daemon, _ = start(make_daemon, tmp_path, {"slow.lua": """
saker.command("slow", function() while true do end end)
"""}, config="lua-task-timeout 150\nlua-time-limit 0\n")
    r = daemon.client(protocol=2)
    with pytest.raises(redis.ResponseError) as e:
        r.execute_command("SLOW")
    assert str(e.value) == "command 'slow' timed out after 150 ms (lua-task-timeout)"
    assert r.ping()


def test_a_plugin_cannot_see_or_change_another_plugins_globals(make_daemon, tmp_path):
    daemon, _ = start(make_daemon, tmp_path, {
        "a.lua": 'secret = "a-only"\nsaker.command("a_secret", function() return secret end)',
        "b.lua": """
saker.command("b_peek", function() return tostring(secret) end)
saker.command("b_poison", function()
  local ok, e = pcall(function() string.upper = function() return "pwned" end end)
  local ok2, e2 = pcall(rawset, saker, "publish", print)
  return {tostring(ok), e, tostring(ok2), e2}
end)
"""})
    r = daemon.client(protocol=2)
    assert r.execute_command("A_SECRET") == b"a-only"
    assert r.execute_command("B_PEEK") == b"nil"
    assert r.execute_command("B_POISON") == [
        b"false", b"b.lua:4: attempt to modify read-only table 'string' (field 'upper')",
        b"false", b"bad argument #1 to 'rawset' (attempt to modify a read-only table)"]
    assert r.eval("return string.upper('x')", 0) == b"X"


class Undeclared:
    """Reading this global fails in EVAL with Redis 7's error (read-only globals)."""

    def __init__(self, name):
        self.name = name


ESCAPES = [
    ("return type(io)", Undeclared("io")),
    ("return type(os.execute)", b"nil"),
    ("return type(debug)", Undeclared("debug")),
    ("return type(package)", Undeclared("package")),
    ("return type(python)", Undeclared("python")),
    ("return type(dofile)", Undeclared("dofile")),
    ("return type(loadfile)", Undeclared("loadfile")),
    ("return type(string.dump)", b"nil"),
    ("return type(getfenv)", Undeclared("getfenv")),
    ("return tostring(getmetatable(''))", b"false"),
    ("return tostring(getmetatable(_G))", b"false"),
    ("return select(2, load(string.char(27) .. 'LuaT'))", b"attempt to load a binary chunk"),
    ("return select(2, pcall(require, 'io'))",
     None),   # checked by prefix below: not found on lua-path/lua-cpath
    ("return select(2, pcall(collectgarbage, 'stop'))",
     b"bad argument #1 to 'collectgarbage' (option 'stop' is not allowed)"),
    ("return load('return os.exit')() == nil", 1),
    ("return type(saker.call)", b"function"),
]


def test_escape_attempts_fail(daemon):
    r = daemon.client(protocol=2)
    for script, expected in ESCAPES:
        if isinstance(expected, Undeclared):
            with pytest.raises(redis.ResponseError) as e:
                r.eval(script, 0)
            assert str(e.value) == nonexistent_global_error(script, expected.name)
            continue
        got = r.eval(script, 0)
        if expected is None:
            assert got.startswith(b"module 'io' not found:"), got
        else:
            assert got == expected, script
    # Python objects: the saker functions are Lua closures; nothing exposes a
    # Python attribute, and lupa's `python` module is gone.
    assert r.eval("return type(getmetatable(saker.log))", 0) == b"nil"
    assert r.eval("local ok, e = pcall(function() return saker.log.__class__ end) return e",
                  0).endswith(b"attempt to index a function value (field 'log')")
    assert r.ping()


def cjson_dir(version):
    path = "/usr/lib/x86_64-linux-gnu/lua/%s" % version
    assert os.path.exists(os.path.join(path, "cjson.so")), \
        "lua-cjson for Lua %s is required (installed by .ci/run)" % version
    return path


@pytest.mark.parametrize("version", ["5.2", "5.4"])
def test_require_a_c_module_built_for_the_configured_lua(make_daemon, tmp_path, version):
    daemon, _ = start(make_daemon, tmp_path, {"json.lua": """
local cjson = require "cjson"
saker.command("tojson", function(...) return cjson.encode({args = {...}, n = 2}) end)
"""}, config="lua-version %s\nlua-cpath %s\n" % (version, cjson_dir(version)))
    r = daemon.client(protocol=2)
    assert json.loads(r.execute_command("TOJSON", "a", "b")) == {"args": ["a", "b"], "n": 2}
    assert r.info("lua")["lua_version"] == "Lua %s" % version


def test_test_config_reports_plugin_syntax_errors_with_file_and_line(tmp_path):
    d = plugin_dir(tmp_path, {"ok.lua": "saker.log('notice', 'fine')\n",
                              "broken.lua": "local x = 1\nlocal y = = 2\n"})
    conf = tmp_path / "saker.conf"
    conf.write_text("scripts-dir %s\n" % d)
    out = subprocess.run([sys.executable, "-m", "sakerd", "--test-config", "-c", str(conf)],
                         cwd=tmp_path, env=sakerd_env(), capture_output=True, text=True, timeout=30)
    assert out.returncode == 1
    assert "%s:2: unexpected symbol near '='" % (d / "broken.lua") in out.stderr
    assert "ok.lua" not in out.stderr


def test_example_plugins_load_and_answer(make_daemon):
    daemon = make_daemon(config="scripts-dir %s\n" % os.path.join(ROOT, "scripts"))
    r = daemon.client(protocol=2)
    health = r.execute_command("HEALTH")
    assert health[0] == b"host" and b"load1" in health and b"mem_used_percent" in health
    assert b" up " in r.execute_command("UPTIME") and b"load average:" in r.execute_command("UPTIME")
    assert any(line.startswith(b"/ ") for line in r.execute_command("DISKUSAGE"))
    assert set(tasks_by_name(r)) == {"disk-check", "host-health"}
    assert r.execute_command("TASK", "RUN", "host-health") is None
    cli = require_tool("redis-cli")
    out = subprocess.run([cli, "-p", str(daemon.port), "uptime"], capture_output=True,
                         text=True, timeout=10)
    assert " up " in out.stdout
