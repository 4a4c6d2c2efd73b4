"""Lua isolation: known sandbox escapes, each refused with a clear error, nothing leaking.

The catalogue comes from Redis's Lua advisories (CVE-2015-4335 loadstring
of bytecode, CVE-2018-11218/11219 cmsgpack/struct, CVE-2024-46981 GC
metatables, globals shared between scripts) and from lupa's surface
(python.eval, python.builtins, attribute access on wrapped Python objects,
register_eval/register_builtins). Each case runs as an EVAL script on every
Lua flavour lupa ships that sakerd supports, against a live daemon.

lupa: the installed 2.8's change log lists no attribute_filter fix, and
sakerd does not depend on attribute_filter alone: it builds the runtime
with register_eval=False and register_builtins=False, removes the
`python` global and package.loaded.python, and hands Lua only Lua closures
around Python functions (the filter is a second wall). lupa >= 2.5 is the
safe floor: 2.3 and 2.4 lost dlopen() (GH#284), which C modules need, and
2.5 bundles Lua 5.4.8.
"""

import hashlib
import socket

import lupa
import pytest
import redis

from helpers import Daemon, nonexistent_global_error

VERSIONS = {"5.4": "lua54", "5.1": "lua51", "luajit": "luajit21"}


@pytest.fixture(scope="module", params=list(VERSIONS))
def lua_daemon(request, tmp_path_factory):
    d = Daemon(tmp_path_factory.mktemp("lua"),
               "lua-version %s\nlua-max-memory 64mb\nlua-time-limit 500\n" % request.param)
    d.lua_version = request.param
    yield d
    d.stop()


def bytecode(version):
    """A real precompiled chunk for this Lua flavour (string.dump in lupa)."""
    mod = __import__("lupa." + VERSIONS[version], fromlist=["LuaRuntime"])
    return mod.LuaRuntime(encoding=None).eval("string.dump(function() return 'pwned' end)")


ERR = object()   # marker: the value that follows is a substring of the error


class Undeclared:
    """EVAL's globals are Redis 7's read-only table: reading this undeclared
    name fails with redis-server's exact error (it used to read as nil)."""

    def __init__(self, name):
        self.name = name


CATALOGUE = [
    # Libraries that reach the OS or the VM's internals are simply absent.
    ("package.loadlib", "return type(package)", Undeclared("package")),
    ("io", "return type(io)", Undeclared("io")),
    ("os.execute", "return {type(os.execute), type(os.remove), type(os.exit)}",
     [b"nil", b"nil", b"nil"]),
    ("debug.getregistry", "return debug.getregistry()", Undeclared("debug")),
    ("getfenv", "return type(getfenv)", Undeclared("getfenv")),
    ("newproxy", "return type(newproxy)", Undeclared("newproxy")),
    ("dofile", "return type(dofile)", Undeclared("dofile")),
    ("loadfile", "return type(loadfile)", Undeclared("loadfile")),
    # lupa's bridge to Python.
    ("python global", "return type(python)", Undeclared("python")),
    ("python.eval", "return python.eval('1+1')", Undeclared("python")),
    ("python.builtins", "return python.builtins.open('/etc/passwd')", Undeclared("python")),
    ("require python", "return require('python')", (ERR, b"module 'python' not found")),
    ("require io", "return require('io')", (ERR, b"module 'io' not found")),
    # Bytecode: string.dump is gone; bytecode from outside is refused by load.
    ("string.dump", "return type(string.dump)", b"nil"),
    ("string.dump via string metatable", "return type(('').dump)", b"nil"),
    ("load binary chunk", "local f, err = load(ARGV[1]); return {type(f), err}",
     [b"nil", b"attempt to load a binary chunk"]),
    ("load binary chunk via reader",
     "local s = ARGV[1]; local f, err = load(function() local p = s; s = nil; return p end)"
     "; return {type(f), err}", [b"nil", b"attempt to load a binary chunk"]),
    ("loadstring binary chunk (5.1)",
     "if not rawget(_G, 'loadstring') then return {'nil', 'attempt to load a binary chunk'} end "
     "local f, err = loadstring(ARGV[1]); return {type(f), err}",
     [b"nil", b"attempt to load a binary chunk"]),
    # Shared tables are read-only, their metatables locked.
    ("string metatable", "return getmetatable('') == false and 'locked' or 'open'", b"locked"),
    ("string metatable __index", "getmetatable('').__index.upper = nil",
     (ERR, b"attempt to index a boolean value")),
    ("assign into shared string", "string.upper = function() return 'x' end",
     (ERR, b"attempt to modify read-only table 'string' (field 'upper')")),
    ("rawset on shared string", "rawset(string, 'upper', print)",
     (ERR, b"bad argument #1 to 'rawset' (attempt to modify a read-only table)")),
    ("rawset on saker", "rawset(saker, 'call', print)",
     (ERR, b"bad argument #1 to 'rawset' (attempt to modify a read-only table)")),
    ("table.insert into shared table", "table.insert(math, print)",
     (ERR, b"bad argument #1 to 'insert' (attempt to modify a read-only table)")),
    ("setmetatable on shared table", "setmetatable(os, {__index = function() return print end})",
     (ERR, b"cannot change a protected metatable")),
    ("setmetatable on _G", "setmetatable(_G, {__index = function() return 'x' end})",
     (ERR, b"Attempt to modify a readonly table script: ")),
    ("getmetatable(_G) hides the sandbox", "return tostring(getmetatable(_G))", b"false"),
    ("pairs(_G) hands out no writable table",
     "local f, s = pairs(_G); pcall(rawset, s, 'leak', 1); return tostring(rawget(_G, 'leak'))",
     b"nil"),
    # Finalizers run with hooks off: a looping __gc could never be killed.
    ("__gc finalizer", "setmetatable({}, {__gc = function() while true do end end})",
     (ERR, b"bad argument #2 to 'setmetatable' (__gc metamethods are not allowed)")),
    ("__gc added after setmetatable is inert",
     "local mt = {}; local t = setmetatable({}, mt); mt.__gc = function() while true do end end;"
     " t = nil; collectgarbage('collect'); return 'alive'", b"alive"),
    ("collectgarbage stop", "collectgarbage('stop')",
     (ERR, b"bad argument #1 to 'collectgarbage' (option 'stop' is not allowed)")),
    # Memory: the heap cap holds; the error is the script's, not the server's
    # (Lua 5.1 has no emergency GC: the bridge must free the heap before its
    # next call into Lua, or that call aborts the process).
    ("heap bomb", "local t = {}; for i = 1, 1e8 do t[i] = ('x'):rep(100000) .. i end",
     (ERR, b"not enough memory (lua-max-memory reached)")),
]

# No Python object (userdata) nor foreign thread is reachable by walking
# everything a script can see, including what saker.* functions return.
WALK = """
local seen, found = {}, {}
local function walk(v, path, depth)
  if depth > 8 or seen[v] then return end
  seen[v] = true
  local t = type(v)
  if t == "userdata" or t == "thread" then found[#found + 1] = path .. " is a " .. t end
  if t == "table" then
    for k, x in pairs(v) do walk(k, path .. "[key]", depth + 1); walk(x, path .. "." .. tostring(k), depth + 1) end
  end
  local mt = getmetatable(v)
  if type(mt) == "table" then walk(mt, path .. "<mt>", depth + 1) end
end
walk(_G, "_G", 0)
walk(saker.sysinfo(), "sysinfo", 0)
walk(saker.proc(saker.call("INFO", "server"):match("process_id:(%d+)") + 0), "proc", 0)
walk({pcall(saker.call, "NOSUCHCOMMAND")}, "pcall", 0)
return found
"""


@pytest.mark.parametrize("name, script, expected", CATALOGUE, ids=[c[0] for c in CATALOGUE])
def test_escape_is_refused(lua_daemon, name, script, expected):
    r = lua_daemon.client(protocol=2)
    code = bytecode(lua_daemon.lua_version)
    if isinstance(expected, Undeclared):
        with pytest.raises(redis.ResponseError) as e:
            r.eval(script, 0, code)
        assert str(e.value) == nonexistent_global_error(script, expected.name)
    elif isinstance(expected, tuple) and expected[0] is ERR:
        with pytest.raises(redis.ResponseError) as e:
            r.eval(script, 0, code)
        for part in expected[1:]:
            assert part in str(e.value).encode()
    else:
        assert r.eval(script, 0, code) == expected
    # Nothing leaked into what the next script sees.
    assert r.eval("return {string.upper('a'), ('b'):upper(), type(os.time)}", 0) == \
        [b"A", b"B", b"function"]
    with pytest.raises(redis.ResponseError) as e:
        r.eval("return x", 0)
    assert str(e.value) == nonexistent_global_error("return x", "x")
    assert r.ping()


def test_no_python_object_is_reachable(lua_daemon):
    r = lua_daemon.client(protocol=2)
    assert r.eval(WALK, 0) == []


def test_scripts_cannot_create_globals_for_each_other(lua_daemon):
    # Redis 7: the global table is read-only, so no script leaves a global
    # behind for the next one; redis-server 7.0.15's exact errors.
    r = lua_daemon.client(protocol=2)
    for script, prefix in (("secret = 'A-only'; return secret", "user_script:1: "),
                           ("_G.other = 1", "user_script:1: "),
                           ("rawset(_G, 'other', 1)", "")):
        with pytest.raises(redis.ResponseError) as e:
            r.eval(script, 0)
        assert str(e.value) == "%sAttempt to modify a readonly table script: %s, on " \
            "@user_script:1." % (prefix, hashlib.sha1(script.encode()).hexdigest())
    assert r.eval("return {tostring(rawget(_G, 'secret')), tostring(rawget(_G, 'other')),"
                  "type(rawget(_G, 'KEYS'))}", 0) == [b"nil", b"nil", b"table"]
    # A chunk compiled by load sees the same read-only globals (redis-server
    # 7.0.15 names the chunk the same way for loadstring).
    script = "return load('return secret')()"
    with pytest.raises(redis.ResponseError) as e:
        r.eval(script, 0)
    assert str(e.value) == "[string \"return secret\"]:1: Script attempted to access " \
        "nonexistent global variable 'secret' script: %s, on return secret:1." % \
        hashlib.sha1(script.encode()).hexdigest()


def test_plugins_do_not_see_each_others_globals(tmp_path):
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    (scripts / "a.lua").write_text("token = 'plugin-a'\n"
                                   "saker.command('a.token', function() return tostring(token) end)\n")
    (scripts / "b.lua").write_text("saker.command('b.token', function() return tostring(token) end)\n"
                                   "string_upper_before = string.upper\n")
    d = Daemon(tmp_path, "")
    try:
        r = d.client(protocol=2)
        assert r.execute_command("a.token") == b"plugin-a"
        assert r.execute_command("b.token") == b"nil"
        with pytest.raises(redis.ResponseError) as e:
            r.eval("return tostring(token)", 0)
        assert str(e.value) == nonexistent_global_error("return tostring(token)", "token")
    finally:
        d.stop()
