"""The Lua bridge against hostile scripts (issue 12, items 3 to 7), on 5.4, 5.1 and LuaJIT.

Each test is one of the issue's reproductions: before the fix it handed a
script a Python object (and with it the hook), killed the daemon with a
segfault, let a killed script write, stalled the server with PING and
SCRIPT KILL unanswered, or showed a secret from the environment.
"""

import hashlib
import os
import time

import pytest

from sakerd import commands, procs, scripting, sysinfo, tasks  # noqa: F401  (every saker.* function)
from sakerd.lua_bridge import SAKER_API

from helpers import wait_busy

VERSIONS = ["5.4", "5.1", "luajit"]
REDIS_FUNCTIONS = ["call", "pcall", "setresp", "sha1hex", "error_reply", "status_reply", "log",
                   "replicate_commands"]


def eval_cmd(script, *args):
    parts = [b"EVAL", script.encode(), b"%d" % 0] + [a.encode() for a in args]
    return b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts)


def sha(script):
    return hashlib.sha1(script.encode()).hexdigest()


@pytest.fixture(params=VERSIONS)
def lua_daemon(request, make_daemon):
    return make_daemon("lua-version %s\nlua-time-limit 100\n" % request.param)


# ---- 3. no Python object reaches Lua ------------------------------------------------

def test_a_python_exception_reaches_a_script_as_a_string(lua_daemon):
    r = lua_daemon.client()
    script = """
    local ok, e = pcall(redis.log, 0/0, 'x')
    return {tostring(ok), type(e), tostring(getmetatable(e)), e}
    """
    ok, kind, mt, text = r.eval(script, 0)
    assert (ok, kind, mt) == (b"false", b"string", b"false")
    assert text.startswith(b"log: internal error: ")


WALK = r"""
local unpack = table.unpack or unpack
local bad = {
  {n = 0}, {n = 1, nil}, {n = 1, 0/0}, {n = 1, {}}, {n = 1, true}, {n = 1, function() end},
  {n = 1, coroutine.create(function() end)}, {n = 1, 2^63}, {n = 1, -2^63}, {n = 1, 1/0},
  {n = 1, {{}}}, {n = 2, nil, 0/0}, {n = 2, nil, {}}, {n = 2, 0/0, 0/0}, {n = 3, {}, {}, {}},
  {n = 2, "", 0/0}, {n = 2, "", {}},
}
local found, calls = {}, 0
local function check(where, v, depth)
  local t = type(v)
  if t == "userdata" or t == "cdata" then
    found[#found + 1] = where .. " gave a " .. t
  elseif t == "table" and depth < 4 then
    for k, x in next, v do check(where, k, depth + 1); check(where, x, depth + 1) end
  end
  if t ~= "string" and t ~= "table" and getmetatable(v) ~= nil then
    found[#found + 1] = where .. " gave a value with a metatable"
  end
end
-- With a first argument of "" only the functions that cannot act on it.
local harmless = {["saker.log"] = true, ["saker.publish"] = true, ["saker.pidof"] = true,
                  ["redis.sha1hex"] = true, ["redis.error_reply"] = true,
                  ["redis.status_reply"] = true, ["redis.log"] = true}
for _, name in ipairs(ARGV) do
  local tname, fname = name:match("^(%w+)%.(.+)$")
  local f = (tname == "redis" and redis or saker)[fname]
  if type(f) ~= "function" then found[#found + 1] = name .. " is not a function" end
  for i, a in ipairs(bad) do
    if a[1] ~= "" or harmless[name] then
      local where = name .. " #" .. i
      calls = calls + 1
      check(where .. " pcall", {pcall(f, unpack(a, 1, a.n))}, 0)
      xpcall(function() return f(unpack(a, 1, a.n)) end,
             function(e) check(where .. " xpcall", e, 0) return e end)
      local co = coroutine.create(function() return f(unpack(a, 1, a.n)) end)
      check(where .. " resume", {coroutine.resume(co)}, 0)
      check(where .. " wrap", {pcall(coroutine.wrap(function() return f(unpack(a, 1, a.n)) end))}, 0)
    end
  end
end
found[#found + 1] = "calls " .. calls
return found
"""


def test_every_saker_and_redis_function_with_bad_arguments_gives_only_lua_values(lua_daemon):
    names = ["saker." + n for n in sorted(SAKER_API)] + ["redis." + n for n in REDIS_FUNCTIONS]
    r = lua_daemon.client()
    # Every function a script can reach is walked (pairs sees through the
    # read-only tables on 5.2+ only).
    listed = r.eval("local t = {} for _, name in ipairs({'saker', 'redis'}) do "
                    "for k, v in pairs(_G[name]) do if type(v) == 'function' then "
                    "t[#t + 1] = name .. '.' .. k end end end return t", 0)
    if r.eval("return _VERSION", 0) == b"Lua 5.4":
        assert len(listed) == len(names) and set(listed) == {n.encode() for n in names}
    found = r.eval(WALK, 0, *names)
    assert found[-1].startswith(b"calls ") and int(found[-1][6:]) >= 15 * len(names)
    assert found[:-1] == []
    assert r.ping()


def test_lupa_metatable_cannot_be_reached_to_disable_the_hook(lua_daemon):
    # The attack: take the Python exception's metatable, replace
    # __call (which runs the hook's check), then loop. Now there is none to
    # take, and the loop gets BUSY and SCRIPT KILL as any other.
    script = """
    local ok, e = pcall(redis.log, 0/0, 'x')
    local mt = getmetatable(e)
    if type(mt) == 'table' then mt.__call = function() return nil end end
    while true do end
    """
    runner = lua_daemon.raw()
    runner.send(eval_cmd(script))
    other = wait_busy(lua_daemon)
    other.send(b"SCRIPT KILL\r\n")
    assert other.read_line() == b"+OK"
    assert runner.read_line() == (b"-ERR Script killed by user with SCRIPT KILL... script: %s, "
                                  b"on @user_script:5." % sha(script).encode())


# ---- 4. C stack depth ---------------------------------------------------------------

@pytest.mark.parametrize("script,through", [
    ("local function f(s) return (s:gsub('.', f)) end; return {pcall(f, 'a')}", "string.gsub"),
    ("local function f(s) return (string.gsub(s, '.', setmetatable({}, {__index = "
     "function(t, k) return f(k) end}))) end; return {pcall(f, 'a')}", "string.gsub"),
    ("local function f() return coroutine.wrap(f)() end; return {pcall(f)}", "coroutine.resume"),
    ("local function f() return coroutine.resume(coroutine.create(f)) end; "
     "local function g() local ok, e = f(); return e end; "
     "local r = {coroutine.resume(coroutine.create(function() "
     "local function h() local t = {coroutine.resume(coroutine.create(h))}; "
     "if not t[1] then error(t[2], 0) end; return t[2] end; return h() end))}; return r",
     "coroutine.resume"),
    ("local function f(s) return (s:gsub('.', function(c) return select(2, pcall(f, c)) end)) end; "
     "return {pcall(f, 'a')}", "string.gsub"),
    ("local function f(a, b) table.sort({3, 2, 1}, f) return a < b end; "
     "return {pcall(table.sort, {3, 2, 1}, f)}", "table.sort"),
])
def test_deep_recursion_through_c_functions_is_an_error_not_a_crash(lua_daemon, script, through):
    r = lua_daemon.client()
    ok, err = r.eval(script, 0)[:2]
    assert ok in (None, 1)     # false, or true when the script's own pcall caught it
    # 5.1 may stop first, at its own limit of 200 C calls (pcall is one there).
    assert err in (("C stack overflow (calls nested 180 deep through %s)" % through).encode(),
                   b"C stack overflow")
    assert r.ping() and lua_daemon.proc.poll() is None


def test_the_depth_guard_forgets_caught_errors(lua_daemon):
    # pcall and resume restore the depth: 1000 caught overflows in a row do
    # not make a later, shallow call fail.
    script = """
    local function f(s) return (s:gsub('.', f)) end
    for i = 1, 1000 do pcall(f, 'a') end
    for i = 1, 1000 do coroutine.resume(coroutine.create(function() pcall(f, 'a') error('x') end)) end
    return string.gsub('abc', '%w', function(c) return c:upper() end)
    """
    assert lua_daemon.client().eval(script, 0) == b"ABC"


# ---- 5. SCRIPT KILL ends coroutines ---------------------------------------------------

@pytest.mark.parametrize("script", [
    "local co = coroutine.create(function() while true do end end) "
    "coroutine.resume(co) redis.call('SET', 'k', 'v') return 'done'",
    "local f = coroutine.wrap(function() while true do end end) "
    "pcall(f) pcall(redis.call, 'SET', 'k', 'v') redis.call('SET', 'k', 'v') return 'done'",
    "local co = coroutine.create(function() coroutine.resume(coroutine.create(function() "
    "while true do end end)) end) "
    "coroutine.resume(co) saker.call('SET', 'k', 'v') return 'done'",
])
def test_script_kill_ends_the_script_whose_coroutine_was_killed(lua_daemon, script):
    runner = lua_daemon.raw()
    runner.send(eval_cmd(script))
    other = wait_busy(lua_daemon)
    other.send(b"SCRIPT KILL\r\n")
    assert other.read_line() == b"+OK"
    reply = runner.read_line()
    assert reply.startswith(b"-ERR Script killed by user with SCRIPT KILL... script: ")
    other.send(b"GET k\r\n")
    assert other.read_line() == b"$-1"


# ---- 6. stalls: patterns and huge results -----------------------------------------------

def test_a_backtracking_pattern_is_refused_at_once_and_the_server_keeps_answering(lua_daemon):
    r = lua_daemon.client()
    script = "return {pcall(string.find, string.rep('a', 330), '.-.-.-b')}"
    start = time.monotonic()
    ok, err = r.eval(script, 0)
    took = time.monotonic() - start
    assert ok is None
    assert err == (b"find: pattern too complex for a subject of 330 bytes: up to 9.6e+10 "
                   b"matching steps, over lua-pattern-max-steps (100000000)")
    print("refused in %.1f ms" % (took * 1000))
    assert r.ping()


@pytest.mark.parametrize("script,expected", [
    ("return string.match(string.rep(' ', 50) .. 'x y' .. string.rep(' ', 50), '^%s*(.-)%s*$')",
     b"x y"),
    ("local s = string.rep('key=value ', 100000) return select(2, s:gsub('(%w+)=(%w+)', '%2=%1'))",
     100000),
    ("local n = 0 for a, b in string.gmatch(string.rep('ab12 ', 50000), '(%a+)(%d+)') do n = n + 1 end "
     "return n", 50000),
    ("return {string.find(string.rep('x', 1000000) .. 'needle', 'needle', 1, true)}",
     [1000001, 1000006]),
    ("return {string.find(string.rep('x', 100000) .. ' 42', '(%d+)$')}", [100002, 100003, b"42"]),
    ("return ('hello world'):gsub('o', '0')", b"hell0 w0rld"),
])
def test_ordinary_patterns_on_large_subjects_still_work(lua_daemon, script, expected):
    assert lua_daemon.client().eval(script, 0) == expected


def test_the_pattern_limit_is_a_live_setting(lua_daemon):
    r = lua_daemon.client()
    script = "return string.find(string.rep('a', 40), '.-.-b')"
    assert r.eval(script, 0) is None          # 41^3 * 6 steps: under the default
    r.config_set("lua-pattern-max-steps", "1000")
    with pytest.raises(Exception) as e:
        r.eval(script, 0)
    assert "pattern too complex for a subject of 40 bytes" in str(e.value)
    r.config_set("lua-pattern-max-steps", "0")   # 0: no limit
    assert r.eval("return string.find(string.rep('a', 40), '.-.-.-.-b')", 0) is None


def vm_hwm_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])


@pytest.mark.parametrize("version", VERSIONS)
def test_a_huge_result_fails_with_a_clear_error_instead_of_a_stall(make_daemon, version):
    d = make_daemon("lua-version %s\nlua-max-memory 256mb\n" % version)
    r = d.client(socket_timeout=60)
    before = vm_hwm_kb(d.pid)
    start = time.monotonic()
    with pytest.raises(Exception) as e:
        r.eval("local t = {} for i = 1, 8000000 do t[i] = i end return t", 0)
    took = time.monotonic() - start
    assert "result too large to return from Lua: its conversion needs more than " \
           "lua-max-memory (268435456 bytes)" in str(e.value)
    grew = (vm_hwm_kb(d.pid) - before) / 1024
    print("%s: refused after %.1f s, peak RSS grew %.0f MB" % (version, took, grew))
    assert grew < 600
    assert r.ping()
    # One string longer than proto-max-bulk-len.
    r.config_set("proto-max-bulk-len", "1mb")
    with pytest.raises(Exception) as e:
        r.eval("return string.rep('x', 2 * 1024 * 1024)", 0)
    assert "a string of 2097152 bytes exceeds proto-max-bulk-len (1048576)" in str(e.value)
    # A table reached many times counts each time (no exponential stall).
    with pytest.raises(Exception) as e:
        r.eval("local t = {1} for i = 1, 60 do t = {t, t} end return t", 0)
    assert "result too large" in str(e.value)


# ---- 7. os.getenv ------------------------------------------------------------------------

@pytest.mark.parametrize("version", VERSIONS)
def test_os_getenv_sees_only_the_allowed_variables(make_daemon, version):
    env = {"SAKERD_DB_PASSWORD": "hunter2", "MY_SITE": "eu-1", "HOME": "/root"}
    d = make_daemon("lua-version %s\n" % version, env=env)
    r = d.client()
    script = "return {tostring(os.getenv('SAKERD_DB_PASSWORD')), tostring(os.getenv('HOME')), " \
             "tostring(os.getenv('MY_SITE'))}"
    assert r.eval(script, 0) == [b"nil", b"/root", b"nil"]
    assert r.config_get("lua-env-allow") == {"lua-env-allow": "PATH HOME LANG TZ HOSTNAME"}
    d2 = make_daemon("lua-version %s\nlua-env-allow MY_SITE\n" % version, env=env)
    assert d2.client().eval(script, 0) == [b"nil", b"nil", b"eu-1"]
    with pytest.raises(Exception) as e:
        d2.client().eval("return os.getenv({})", 0)
    assert "bad argument #1 to 'getenv' (string expected, got table)" in str(e.value)
