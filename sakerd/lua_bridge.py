"""The Lua runtime: every call into Lua, the sandbox, the `saker` API.

The `saker` table is built from SAKER_API: a Python function becomes
saker.<name> by decorating it with @saker_api(name, *argspec). The bridge
checks the arguments against argspec the way Lua's own libraries do and
raises `bad argument #N to 'name' (string expected, got nil)` on a wrong
call, converts the arguments to plain Python values, and converts the
return value back.

argspec items: "string", "number", "integer", "boolean", "table",
"function", "any"; "a|b" for alternatives; a trailing "?" for optional.
Conversions into Python: string -> str, number -> int when integral else
float, boolean -> bool, nil -> None, table -> dict or list (a list when
its keys are exactly 1..n), function -> the Lua function (kept only by
functions that register callbacks on purpose).
The Python function returns one value or a tuple of values; the
operational-failure convention is `return None, "message"`. Raising
ArgError(n, "message") gives `bad argument #n to 'name' (message)`.

Extensions of the argspec grammar, used by the bridge's own functions:
"bytes" is a string kept as bytes (binary safe; a number becomes its
decimal text, %.17g for non-integers, as Redis formats command
arguments); an item ending in "..." checks every remaining argument
against that type ("bytes...", "string...", "any..."). Raising
LuaRaise(value) raises `value` (any convertible value, a table for
Redis-style {err=...} errors) as the Lua error, unchanged.

Some facts about lupa and Lua that the bridge relies on.

* RTLD_GLOBAL. lupa's extension modules (lupa.lua51 ... lupa.luajit21) link
  the Lua interpreter statically. A Lua C module such as Debian's
  lua-cjson (/usr/lib/x86_64-linux-gnu/lua/5.4/cjson.so) is not linked
  against liblua: it expects lua_pushstring & co. to be already present in
  the process's global symbol namespace. Python dlopen()s extension modules
  with RTLD_LOCAL, which hides those symbols, and `require "cjson"` then
  fails with "undefined symbol: lua_...". So the lupa module is imported
  with sys.setdlopenflags(RTLD_NOW | RTLD_GLOBAL) around the import (and
  only one lupa module is ever imported per process, or their identical
  symbol names would clash).
* The registry. Every Lua object that Python holds (a lupa _LuaTable,
  _LuaFunction) is a luaL_ref in the Lua registry, released when the
  Python wrapper dies. luaL_unref leaves the slot behind holding a
  free-list integer, so the registry's population is counted as entries
  whose value is not a number: that count returns to its starting value
  when nothing is kept, and is what INFO reports as lua_registry_size.
* Hooks. A count hook (debug.sethook(hook, "", N)) runs every N VM
  instructions; it is how a runaway script is noticed and stopped. Lua
  clears `allowhook` while a hook runs and a hook that raises leaves it
  cleared until a pcall catches the error: an xpcall message handler
  called for that error runs with hooks off and could loop forever, so
  the sandbox's xpcall never calls a user's handler for a kill. A killed
  call re-raises from the hook on every instruction (except in the
  bridge's own code) until it has unwound: pcall cannot catch a kill.
  LuaJIT does not run count hooks inside compiled traces, so the JIT is
  switched off.
* Errors from a hook or a memory failure do not reach an xpcall message
  handler in every version (LUA_ERRMEM never does); run() copes with a
  plain string error.
"""

SAKER_API = {}


class ArgError(Exception):
    """A bad argument detected by the function itself."""

    def __init__(self, argno, message):
        super().__init__(message)
        self.argno = argno
        self.message = message


def lua_type(v):
    """The Lua type name of an argument as a saker function receives it
    (already converted to Python), for its own bad-argument messages."""
    if v is None:
        return "nil"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, (dict, list, tuple)):
        return "table"
    return "function" if callable(v) else "userdata"


def saker_api(name, *argspec):
    """Register fn as saker.<name> with the given argument spec."""
    def register(fn):
        SAKER_API[name] = (fn, argspec)
        return fn
    return register





import hashlib
import importlib
import os
import sys
import time
import traceback

from .log import log, log_from, LL_DEBUG, LL_NOTICE, LL_WARNING
from .lua_patterns import PATTERNS_SOURCE
from .server_h import server
from .systemd import Watchdog, watchdog_from_script

LUPA_MODULES = {"5.1": "lua51", "5.2": "lua52", "5.3": "lua53", "5.4": "lua54",
                "luajit": "luajit21"}
HOOK_COUNT = 100000        # VM instructions between two runaway checks (Redis's value)
GC_PERIOD = 50             # calls between two incremental GC steps (LUA_GC_CYCLE_PERIOD)
GC_STEP_KB = 50
MAX_CONVERT_DEPTH = 64     # nesting of tables converted between Lua and Python
KIND_EVAL, KIND_TASK, KIND_COMMAND, KIND_PLUGIN = "eval", "task", "command", "plugin"
KIND_FUNCTION, KIND_LOAD = "function", "function load"
# Redis's scripts: they go BUSY after lua-time-limit instead of being timed out.
SCRIPT_KINDS = (KIND_EVAL, KIND_FUNCTION)
LOAD_TIMEOUT_MS = 500      # FUNCTION LOAD's limit for a library's main chunk (LOAD_TIMEOUT_MS)
LOAD_TIMEOUT_ERR = "ERR FUNCTION LOAD timeout"

KILLED_BY_USER = "ERR Script killed by user with SCRIPT KILL..."
KILLED_BY_SHUTDOWN = "ERR Script killed: the server is shutting down"


class LuaRaise(Exception):
    """Raise `value` in Lua as the error object (e.g. a {err=...} table)."""

    def __init__(self, value):
        super().__init__(value)
        self.value = value


class LuaResult:
    """What a call into Lua produced, as plain Python values.

    ok: the call returned; values: its return values (tables as dicts).
    Otherwise error: the message; raw: it came from an {err=...} table (it
    then carries its own error code); source/line: where it was raised.
    """

    __slots__ = ("ok", "values", "error", "raw", "source", "line")

    def __init__(self, ok, values=(), error=None, raw=False, source=None, line=None):
        self.ok = ok
        self.values = values
        self.error = error
        self.raw = raw
        self.source = source
        self.line = line

    @property
    def value(self):
        return self.values[0] if self.values else None

    def where(self):
        """"file:line" of the error, when known."""
        if self.source and self.line:
            return "%s:%d" % (self.source.lstrip("@="), self.line)
        return ""


def import_lupa(version):
    """The lupa module for a `lua-version`, imported with RTLD_GLOBAL."""
    name = "lupa." + LUPA_MODULES[version]
    if name in sys.modules:
        return sys.modules[name]
    flags = sys.getdlopenflags()
    sys.setdlopenflags(os.RTLD_NOW | os.RTLD_GLOBAL)
    try:
        return importlib.import_module(name)
    finally:
        sys.setdlopenflags(flags)


def _deny_attributes(obj, name, setting):
    # Lua never gets a Python object but a function wrapped in a closure;
    # even so, no attribute of one is reachable.
    raise AttributeError("access to Python attributes is not allowed")


def lua_path_templates(value, base_dir, lua):
    """`lua-path`/`lua-cpath` as Lua search templates.

    A value containing "?" is a template list already ("dir/?.lua;...");
    otherwise it is a ;-separated list of directories. Relative paths are
    taken from the config file's directory.
    """
    if not value:
        return ""
    out = []
    for item in value.split(";"):
        item = item.strip()
        if not item:
            continue
        if not os.path.isabs(item):
            item = os.path.join(base_dir, item)
        if "?" in item:
            out.append(item)
        elif lua:
            out.append(os.path.join(item, "?.lua"))
            out.append(os.path.join(item, "?", "init.lua"))
        else:
            out.append(os.path.join(item, "?.so"))
    return ";".join(out)


# The bridge's own Lua code: run once with the real globals, it keeps
# private references (debug, io.open, package.loadlib, load) and returns
# the table B of entry points. Its chunk name marks its frames: the hook
# never interrupts them.
BRIDGE_SOURCE = "=[sakerd]"
BOOTSTRAP = r"""
local check, py_print, hook_count, lua_path, lua_cpath, unwrap_error = ...
local SOURCE = "=[sakerd]"
local G = _G
local getinfo, sethook, getregistry = debug.getinfo, debug.sethook, debug.getregistry
local real_load, loadstring, setfenv = load, loadstring, setfenv
local loadlib, io_open = package.loadlib, io.open
local pcall, xpcall, error, type, tostring, select, next, pairs, ipairs =
      pcall, xpcall, error, type, tostring, select, next, pairs, ipairs
local setmetatable, getmetatable, rawset, rawget = setmetatable, getmetatable, rawset, rawget
local unpack = table.unpack or unpack
local concat = table.concat
local co_create, co_resume, co_status = coroutine.create, coroutine.resume, coroutine.status
local collect = collectgarbage
local function pack(...) return {n = select("#", ...), ...} end
local xpcall_args = (_VERSION ~= "Lua 5.1") or (jit ~= nil)

if jit then jit.off() end          -- count hooks do not fire in compiled traces
string.dump = nil                  -- no way back from a function to bytecode
getmetatable("").__metatable = false  -- the string library stays private
local as_function = python.as_function  -- a Python callable as a C function
-- lupa's one metatable for every Python object (POBJECT): a script that
-- could get it could replace __call for all of them (the hook included).
local dgetmetatable = debug.getmetatable
local py_mt = dgetmetatable(check)
py_mt.__metatable = false
G.python = nil                     -- lupa's module: nothing of Python is reachable
if package and package.loaded then package.loaded.python = nil end

local B = {}
local killed = nil                 -- the kill error while a killed call unwinds

-- The first frame above `level` that is neither C nor the bridge's own.
local function user_frame(level)
  for l = level, level + 8 do
    local i = getinfo(l, "Sl")
    if not i then return nil end
    if i.what ~= "C" and i.source ~= SOURCE then return i end
  end
  return nil
end

local function hook()
  if killed then
    local i = getinfo(2, "S")
    if i and i.source == SOURCE then return end
    error(killed, 0)
  end
  local why = check()
  if why then
    killed = {err = why}
    sethook(hook, "", 1)
    error(killed, 0)
  end
end

-- What a C function's Python code raised (a LuaRaise) reaches Lua as a
-- userdata wrapping the exception: every place that catches an error turns
-- it back into the value it carries.
local function error_value(e)
  if dgetmetatable(e) == py_mt then
    local v = unwrap_error(e)
    if v ~= nil then return v end
    return "error object is a Python object"   -- never handed to a script
  end
  return e
end

local function handler(e)
  e = error_value(e)
  local i = user_frame(2)
  local msg, raw
  if type(e) == "table" and type(rawget(e, "err")) == "string" then
    msg, raw = rawget(e, "err"), true
  elseif type(e) == "string" or type(e) == "number" then
    msg, raw = tostring(e), false
  elseif type(e) == "userdata" then
    -- A Python exception lupa could not hand back (say, recursion too deep).
    msg, raw = tostring(e), false
  else
    msg, raw = "(error object is a " .. type(e) .. " value)", false
  end
  return {msg, raw, i and i.source, i and i.currentline}
end

local function outcome(r)
  if r[1] then return true, r.n - 1, unpack(r, 2, r.n) end
  local e = r[2]
  if type(e) == "table" then return false, e[1], e[2], e[3], e[4] end
  return false, tostring(e), false, nil, nil
end

-- What the conversion of a result to Python may cost: every value counts
-- ENTRY_COST bytes plus its string's length against the budget
-- (lua-max-memory); one string may not exceed the bulk limit
-- (proto-max-bulk-len). Values are counted where they are visited, as the
-- conversion visits them: a table reached twice counts twice, so a shared
-- or cyclic structure runs out of budget instead of stalling the server.
local ENTRY_COST = 64
local result_budget, result_bulk = 256 * 1024 * 1024, 512 * 1024 * 1024

local function over_budget(what)
  return {"ERR result too large to return from Lua: " .. what, true}
end

local function result_cost(v, left, depth)
  local t = type(v)
  left = left - ENTRY_COST
  if t == "string" then
    if #v > result_bulk then
      return nil, "a string of " .. #v .. " bytes exceeds proto-max-bulk-len (" .. result_bulk .. ")"
    end
    left = left - #v
  elseif t == "table" and depth < 66 then
    local why
    for k, x in next, v do
      left, why = result_cost(k, left, depth + 1)
      if left then left, why = result_cost(x, left, depth + 1) end
      if not left then return nil, why end
    end
  end
  if left < 0 then
    return nil, "its conversion needs more than lua-max-memory (" .. result_budget .. " bytes)"
  end
  return left
end

local function check_result(r)
  local left = result_budget
  for i = 2, r.n do
    local why
    left, why = result_cost(r[i], left, 0)
    if not left then return {n = 2, false, over_budget(why)} end
  end
  return r
end

function B.set_result_limits(budget, bulk)
  result_budget, result_bulk = budget, bulk
end

-- Run fn(...) protected; armed: the outermost call, which owns the hook.
function B.run(armed, fn, ...)
  if armed then killed = nil; cdepth, cbase = 0, 0; sethook(hook, "", hook_count) end
  local r
  if xpcall_args then
    r = pack(xpcall(fn, handler, ...))
  else
    local a = pack(...)
    r = pack(xpcall(function() return fn(unpack(a, 1, a.n)) end, handler))
  end
  if armed and r[1] then r = check_result(r) end   -- still killable while it counts
  if armed then sethook(); killed = nil end
  return outcome(r)
end

-- ---- C re-entry depth ---------------------------------------------------------
-- string.gsub, table.sort and coroutine.resume call back into Lua from C,
-- each nesting a C frame: LuaJIT has no C stack limit and segfaults a few
-- hundred levels down (5.1 and 5.4 stop at 200). Every such function of
-- the sandbox counts its nesting in cdepth and refuses past MAX_CDEPTH.
-- An error unwinding through one does not decrement it: the catch points
-- (pcall, xpcall, resume) put back the depth they were entered at, relative
-- to cbase, the depth at which the running coroutine was last resumed (a
-- coroutine may yield inside a pcall and be resumed from another depth).
local MAX_CDEPTH = 180
local cdepth, cbase = 0, 0

local function enter_c(name)
  if cdepth >= MAX_CDEPTH then
    error("C stack overflow (calls nested " .. MAX_CDEPTH .. " deep through " .. name .. ")", 0)
  end
  cdepth = cdepth + 1
end

local function leave_c(...)
  cdepth = cdepth - 1
  return ...
end

-- Wrap a C function f that may call Lua: the wrapper counts its nesting.
local function counted(name, f)
  return function(...)
    enter_c(name)
    return leave_c(f(...))
  end
end

-- After a coroutine stopped: a kill that hit it ends its resumer too, at
-- once (the resumer's own hook may be thousands of instructions away).
local function kill_resumer()
  if killed then
    sethook(hook, "", 1)
    error(killed, 0)
  end
end

-- ---- the sandbox ------------------------------------------------------------

local readonly_tables = setmetatable({}, {__mode = "k"})
-- The global tables of EVAL scripts and functions (Redis 7's read-only _G):
-- proxy -> the table of its fields.
local redis_globals = setmetatable({}, {__mode = "k"})
local READONLY = "Attempt to modify a readonly table"

local function readonly(t, name)
  local proxy = {}
  readonly_tables[proxy] = true
  setmetatable(proxy, {
    __index = t,
    __newindex = function(_, k)
      error("attempt to modify read-only table '" .. name .. "' (field '" .. tostring(k) .. "')", 2)
    end,
    __pairs = function() return function(_, k) return next(t, k) end, proxy, nil end,
    __metatable = false,
  })
  return proxy
end

local function check_writable(t, fname)
  if readonly_tables[t] then
    error("bad argument #1 to '" .. fname .. "' (attempt to modify a read-only table)", 3)
  end
end

local function copy(t, skip)
  local c = {}
  for k, v in pairs(t) do
    if not (skip and skip[k]) then c[k] = v end
  end
  return c
end

local S = {}
for _, k in ipairs({"assert", "error", "ipairs", "next", "pairs", "rawequal", "rawget",
                    "rawlen", "select", "getmetatable", "tonumber",
                    "tostring", "type", "unpack", "_VERSION"}) do
  S[k] = G[k]
end

-- Lua runs __gc finalizers with hooks off (GCTM clears allowhook), at any
-- later GC step: a finalizer that loops could never be killed. Lua marks a
-- table for finalization only if its metatable has __gc (a raw field) when
-- setmetatable is called, so refusing such metatables closes the door.
function S.setmetatable(t, mt)
  if redis_globals[t] then error(READONLY, 0) end
  if type(mt) == "table" and rawget(mt, "__gc") ~= nil then
    error("bad argument #2 to 'setmetatable' (__gc metamethods are not allowed)", 2)
  end
  -- Called by pcall, the C function's own errors carry no position: add the caller's.
  local ok, r = pcall(setmetatable, t, mt)
  if not ok then error(r, 2) end
  return r
end

function S.rawset(t, k, v)
  if redis_globals[t] then error(READONLY, 0) end
  check_writable(t, "rawset")
  return rawset(t, k, v)
end

-- Redis's pcall: an {err=...} error comes back as its message.
function S.pcall(f, ...)
  local own = cdepth - cbase
  local r = pack(pcall(f, ...))
  cdepth = cbase + own
  if not r[1] then r[2] = error_value(r[2]) end
  if not r[1] and type(r[2]) == "table" and type(rawget(r[2], "err")) == "string" then
    r[2] = rawget(r[2], "err")
  end
  return unpack(r, 1, r.n)
end

function S.xpcall(f, h, ...)
  local guarded = function(e)
    if killed then return e end     -- hooks are off in here: never run user code
    return h(error_value(e))
  end
  local own = cdepth - cbase
  local r
  if xpcall_args then
    r = pack(xpcall(f, guarded, ...))
  else
    local a = pack(...)
    r = pack(xpcall(function() return f(unpack(a, 1, a.n)) end, guarded))
  end
  cdepth = cbase + own
  return unpack(r, 1, r.n)
end

local gc_allowed = {count = true, step = true, collect = true}
function S.collectgarbage(opt, arg)
  opt = opt or "collect"
  if not gc_allowed[opt] then
    error("bad argument #1 to 'collectgarbage' (option '" .. tostring(opt) .. "' is not allowed)", 2)
  end
  return collect(opt, arg)
end

function S.print(...)
  local parts = {}
  for i = 1, select("#", ...) do parts[i] = tostring((select(i, ...))) end
  local f = user_frame(2)
  py_print(f and (f.short_src .. ":" .. tostring(f.currentline)) or "lua:0", concat(parts, "\t"))
end

local tbl = copy(table)
for _, name in ipairs({"insert", "remove", "sort"}) do
  local real = table[name]
  if real then
    tbl[name] = function(t, ...) check_writable(t, name); return real(t, ...) end
  end
end
tbl.sort = counted("table.sort", tbl.sort)
if table.move then
  tbl.move = function(a1, f, e, t, a2)
    check_writable(a2 or a1, "move")
    return table.move(a1, f, e, t, a2)
  end
end

local co = copy(coroutine)
function co.create(f)
  local c = co_create(f)
  sethook(c, hook, "", hook_count)    -- a coroutine has its own hook
  return c
end
-- resume counted as a C re-entry; the depths of the resumer come back
-- whatever the coroutine did (yielded, returned or died).
local function resume(c, ...)
  enter_c("coroutine.resume")
  local depth, base = cdepth - 1, cbase
  cbase = cdepth
  local r = pack(co_resume(c, ...))
  cdepth, cbase = depth, base
  kill_resumer()
  return r
end
function co.resume(c, ...)
  local r = resume(c, ...)
  if not r[1] then r[2] = error_value(r[2]) end
  return unpack(r, 1, r.n)
end
function co.wrap(f)
  local c = co.create(f)
  return function(...)
    local r = resume(c, ...)
    if not r[1] then error(r[2], 0) end
    return unpack(r, 2, r.n)
  end
end
if coroutine.close then
  function co.close(c)
    local ok, e = coroutine.close(c)
    if ok then return ok end
    return ok, error_value(e)
  end
end

local str = copy(string, {dump = true})
str.gsub = counted("string.gsub", string.gsub)
S.string = readonly(str, "string")
dgetmetatable("").__index = str    -- ("x"):gsub(...) is the sandbox's gsub too
S.table = readonly(tbl, "table")
S.math = readonly(copy(math), "math")
S.coroutine = readonly(co, "coroutine")
-- os.getenv sees only the variables of lua-env-allow (B.allow_env): the
-- daemon's environment may hold secrets (SAKERD_DB_PASSWORD=...).
local real_getenv, env_allowed = os.getenv, {}
local function getenv(name)
  if type(name) ~= "string" and type(name) ~= "number" then
    error("bad argument #1 to 'getenv' (string expected, got " .. type(name) .. ")", 2)
  end
  name = tostring(name)
  if env_allowed[name] then return real_getenv(name) end
  return nil
end
S.os = readonly({time = os.time, clock = os.clock, date = os.date, getenv = getenv}, "os")
if utf8 then S.utf8 = readonly(copy(utf8), "utf8") end
if bit32 then S.bit32 = readonly(copy(bit32), "bit32") end
if bit then S.bit = readonly(copy(bit), "bit") end

local saker_t, redis_t = {}, {}
S.saker = readonly(saker_t, "saker")
S.redis = readonly(redis_t, "redis")

-- ---- environments, compiling, require ----------------------------------------

local function compile(src, name, env)
  if type(src) ~= "string" then return nil, "chunk is not a string" end
  if src:byte(1) == 27 then return nil, "attempt to load a binary chunk" end
  if setfenv then
    local fn, err = loadstring(src, name)
    if not fn then return nil, err end
    setfenv(fn, env)
    return fn
  end
  return real_load(src, name, "t", env)
end

local function read_chunk(reader)
  local parts = {}
  while true do
    local p = reader()
    if p == nil or p == "" then break end
    if type(p) ~= "string" then return nil, "reader function must return a string" end
    parts[#parts + 1] = p
  end
  return concat(parts)
end

local function read_file(path)
  local f = io_open(path, "rb")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return s
end

local function module_error(name, path, err)
  error("error loading module '" .. name .. "' from file '" .. path .. "':\n\t" .. tostring(err), 3)
end

local function make_require(env)
  local loaded = {}
  return function(name)
    if type(name) ~= "string" then
      error("bad argument #1 to 'require' (string expected, got " .. type(name) .. ")", 2)
    end
    local m = loaded[name]
    if m ~= nil then return m end
    local fname = name:gsub("%.", "/")
    local tried = {}
    for tpl in lua_path:gmatch("[^;]+") do
      local path = tpl:gsub("%?", fname)
      local src = read_file(path)
      if src then
        local fn, err = compile(src, "@" .. path, env)
        if not fn then module_error(name, path, err) end
        local r = fn(name, path)
        if r == nil then r = true end
        loaded[name] = r
        return r
      end
      tried[#tried + 1] = "\n\tno file '" .. path .. "'"
    end
    local sym = "luaopen_" .. name:gsub("%.", "_")
    for tpl in lua_cpath:gmatch("[^;]+") do
      local path = tpl:gsub("%?", fname)
      local f = io_open(path, "rb")
      if f then
        f:close()
        local open, err = loadlib(path, sym)
        if not open then module_error(name, path, err) end
        local r = open(name, path)
        if r == nil then r = true end
        loaded[name] = r
        return r
      end
      tried[#tried + 1] = "\n\tno file '" .. path .. "'"
    end
    error("module '" .. name .. "' not found:" .. concat(tried), 2)
  end
end

local env_mt = {__index = S, __metatable = false}

-- require, load and loadstring of an environment: chunks they compile see `env`.
local function add_loaders(fields, env)
  fields.require = make_require(env)
  local function env_load(chunk, chunkname, mode, e)
    if type(chunk) == "function" then
      local err
      chunk, err = read_chunk(chunk)
      if not chunk then return nil, err end
    end
    if type(chunk) ~= "string" then
      error("bad argument #1 to 'load' (string expected, got " .. type(chunk) .. ")", 2)
    end
    return compile(chunk, chunkname or chunk, e or env)
  end
  fields.load = env_load
  if setfenv then
    fields.loadstring = function(s, chunkname) return env_load(s, chunkname) end
  end
end

local function new_env()
  local env = setmetatable({}, env_mt)
  env._G = env
  add_loaders(env, env)
  return env
end

-- ---- Redis 7's read-only globals: EVAL scripts and functions -----------------
--
-- A plugin owns its environment; a script written for Redis expects Redis 7's
-- instead: one global table, read-only, where reading a name it lacks is an
-- error. Standard Lua has no read-only tables, so the global table is an
-- empty proxy: reads go through __index to `fields` (whose own __index
-- raises for a missing name), and every store into the proxy hits
-- __newindex. The error texts are redis-server 7.0.15's (script_lua.c and
-- its patched Lua); level 2 names the script's line, as luaL_error does.

local function nonexistent(_, k)
  if type(k) ~= "string" and type(k) ~= "number" then
    error("Second argument to luaProtectedTableError must be a string or number", 2)
  end
  error("Script attempted to access nonexistent global variable '" .. k .. "'", 2)
end

local function refuse_write() error(READONLY, 2) end

-- The read-only proxy over `fields`, and its metatable (kept private).
local function readonly_globals(fields)
  setmetatable(fields, {__index = nonexistent, __metatable = false})
  local g = {}
  -- pairs(_G) walks the fields, never hands them out (they would be writable).
  local mt = {__index = fields, __newindex = refuse_write, __metatable = false,
              __pairs = function() return function(_, k) return next(fields, k) end, g, nil end}
  setmetatable(g, mt)
  redis_globals[g] = fields
  return g, mt
end

-- rawget(_G, name) reads the fields behind the proxy, as on Redis's real table.
local function globals_rawget(...)
  local t, k = ...
  local n = select("#", ...)
  if type(t) ~= "table" then
    error("bad argument #1 to 'rawget' (table expected, got " ..
          (n < 1 and "no value" or type(t)) .. ")", 2)
  end
  if n < 2 then error("bad argument #2 to 'rawget' (value expected)", 2) end
  return (rawget(redis_globals[t] or t, k))
end

-- The sandbox as globals of a read-only table of its own.
local function sandbox_globals()
  local fields = copy(S)
  local g, mt = readonly_globals(fields)
  fields._G = g
  fields.rawget = globals_rawget
  add_loaders(fields, g)
  return g, mt, fields
end

-- Built at first use: by then every sandbox function is in S.
local eval_g, eval_fields
local function eval_globals()
  if not eval_g then
    local _
    eval_g, _, eval_fields = sandbox_globals()
  end
  return eval_g
end

-- Functions (Redis's function_lua.c): every library compiles into one
-- environment. While FUNCTION LOAD runs a library's main chunk its globals
-- are the load API only (redis.register_function, redis.log and the
-- constants); afterwards, when its functions run, the sandbox.
local fn_g, fn_mt, fn_fields, load_api
local load_redis_fields = {}
local LOAD_API_COPIED = {"log", "LOG_DEBUG", "LOG_VERBOSE", "LOG_NOTICE", "LOG_WARNING",
                         "REDIS_VERSION", "REDIS_VERSION_NUM"}

local function function_globals()
  if not fn_g then
    fn_g, fn_mt, fn_fields = sandbox_globals()
    for _, k in ipairs(LOAD_API_COPIED) do load_redis_fields[k] = redis_t[k] end
    load_api = setmetatable({redis = (readonly_globals(load_redis_fields))},
                            {__index = nonexistent, __metatable = false})
  end
  return fn_g
end

-- ---- entry points for Python ----------------------------------------------------

local scripts = {}      -- sha -> the compiled script

function B.compile_script(sha, body)
  local fn, err = compile(body, "@user_script", eval_globals())
  if not fn then return false, err end
  scripts[sha] = fn
  return true
end

function B.run_script(armed, sha, numkeys, ...)
  local fn = scripts[sha]
  local a = pack(...)
  local keys, argv = {}, {}
  for i = 1, numkeys do keys[i] = a[i] end
  for i = numkeys + 1, a.n do argv[i - numkeys] = a[i] end
  -- On EVAL, KEYS and ARGV are globals (luaCallFunction).
  eval_fields.KEYS = keys
  eval_fields.ARGV = argv
  return B.run(armed, fn)
end

-- A library's main chunk, compiled in the functions' environment; or false, err.
function B.compile_library(code)
  local fn, err = compile(code, "@user_function", function_globals())
  if not fn then return false, err end
  return fn
end

-- Run a library's main chunk with the load API as its globals.
function B.run_library(armed, fn)
  fn_mt.__index = load_api
  local r = pack(B.run(armed, fn))
  fn_mt.__index = fn_fields
  return unpack(r, 1, r.n)
end

-- Call a registered function with its keys and arguments (two tables).
function B.run_function(armed, fn, nkeys, ...)
  local a = pack(...)
  local keys, args = {}, {}
  for i = 1, nkeys do keys[i] = a[i] end
  for i = nkeys + 1, a.n do args[i - nkeys] = a[i] end
  return B.run(armed, fn, keys, args)
end

-- redis.<name> of the load API (redis.register_function).
function B.add_load_function(name, py) load_redis_fields[name] = as_function(py) end

function B.flush_scripts() scripts = {} end

-- Compile a plugin in a new environment and run its main chunk.
function B.run_plugin(armed, src, chunkname)
  local fn, err = compile(src, chunkname, new_env())
  if not fn then return false, err, false, nil, nil end
  return B.run(armed, fn)
end

function B.check_plugin(src, chunkname)
  local fn, err = compile(src, chunkname, new_env())
  if not fn then return false, err end
  return true
end

function B.add_function(tname, name, py)
  local t = tname == "redis" and redis_t or saker_t
  t[name] = function(...)
    local r = pack(py(...))
    if r[1] then return unpack(r, 2, r.n) end
    error(r[2], 2)
  end
end

-- A Python function called as a C function: it returns its values and
-- raises LuaRaise(value) for a Lua error. Being C, a tail call to it keeps
-- the caller's frame, so an error it raises still knows the script's line.
function B.add_c_function(tname, name, py)
  local t = tname == "redis" and redis_t or saker_t
  t[name] = as_function(py)
end

function B.set_constant(tname, name, value)
  local t = tname == "redis" and redis_t or saker_t
  t[name] = value
end

function B.where()
  local i = user_frame(2)
  if not i then return "lua", 0 end
  return i.short_src, i.currentline
end

function B.registry_size()
  local n = 0
  for _, v in next, getregistry() do
    if type(v) ~= "number" then n = n + 1 end
  end
  return n
end

function B.heap_bytes()
  return math.floor(collect("count") * 1024)
end

function B.anchor(v) return v end

function B.allow_env(names)
  env_allowed = {}
  for _, n in ipairs(names) do env_allowed[n] = true end
end

-- The bounded pattern functions (lua_patterns) replace the sandbox's;
-- returns the setter of their limit.
function B.install_patterns(src)
  local chunk = assert((loadstring or real_load)(src, SOURCE))
  local F, set_max_steps = chunk(str.gsub)
  for k, v in pairs(F) do str[k] = v end
  return set_max_steps
end

-- After a failure that escaped run(): no hook, no kill left behind.
function B.disarm() sethook(); killed = nil end

function B.gc_step(kb) return collect("step", kb) end
function B.gc_full() return collect("collect") end

-- debug.sethook creates its registry table on first use: do it now, so
-- that the registry is as big before the first call as after it.
sethook(hook, "", hook_count)
sethook()

return B
"""


def _lua_type_name(v, lupa_mod):
    if v is None:
        return "nil"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, bytes):
        return "string"
    t = lupa_mod.lua_type(v)
    return t or "userdata"


def _number_text(v):
    """A number as Redis formats a command argument: integers exactly, else %.17g."""
    if isinstance(v, int) or (v == v and v not in (float("inf"), float("-inf")) and v == int(v)
                              and abs(v) < 2 ** 63):
        return b"%d" % int(v)
    return (b"%.17g" % v)


class LuaBridge:
    """The one Lua state of the server and the only way into it."""

    def __init__(self, config, scripts_dir=None):
        self.config = config
        self.mod = import_lupa(config.lua_version)
        max_memory = config.lua_max_memory or None
        self.lua = self.mod.LuaRuntime(
            register_eval=False, register_builtins=False, unpack_returned_tuples=True,
            max_memory=max_memory, attribute_filter=_deny_attributes, encoding=None)
        base = config.config_dir
        scripts_dir = scripts_dir or config.resolve_path(config.scripts_dir)
        lua_path = lua_path_templates(config.lua_path or scripts_dir, base, True)
        lua_cpath = lua_path_templates(config.lua_cpath, base, False)
        self.B = self.lua.execute(BOOTSTRAP, self._hook_check, self._print,
                                  HOOK_COUNT, lua_path.encode(), lua_cpath.encode(),
                                  self._unwrap_error, name=BRIDGE_SOURCE.encode())
        self.B.allow_env(self.lua.table_from([n.encode() for n in config.lua_env_allow]))
        self.result_limits = None
        self._anchor = self.B.anchor
        self._set_pattern_steps = self.B.install_patterns(PATTERNS_SOURCE.encode())
        self._run = self.B.run
        self._run_script = self.B.run_script
        self._run_plugin = self.B.run_plugin
        self._run_library = self.B.run_library
        self._run_function = self.B.run_function
        self._registry_size = self.B.registry_size
        self._heap_bytes = self.B.heap_bytes
        self.calls = 0
        self.errors = 0
        self.timeouts = 0
        self.gc_steps = 0
        self.debug_leaks = 0
        self.held = 0                 # Lua functions deliberately kept by Python
        self.depth = 0
        self.owner = None             # who the running code belongs to (a plugin)
        self.client = None            # the client whose command runs it, if any
        self.started = 0.0
        self.kind = None
        self.label = ""
        self.kill_reason = None
        self.busy = False
        self.busy_client = None
        self.client_protected = False
        self.scripts = {}             # sha -> script flags: the scripts EVALSHA can run
        self.load_timeout = LOAD_TIMEOUT_MS

    # ---- building the saker and redis tables -------------------------------

    def install_api(self):
        """Build saker.* from SAKER_API: call at init, after every module registered."""
        for name, (fn, spec) in sorted(SAKER_API.items()):
            self.add_function("saker", name, self.api_entry(name, fn, spec))

    def add_function(self, table, name, entry):
        """entry(*lua_args) -> (True, values...) or (False, error value)."""
        self.B.add_function(table.encode(), name.encode(), entry)

    def add_c_function(self, table, name, fn):
        """fn(*lua_args) -> value(s), or raises LuaRaise(value) as the Lua error."""
        self.B.add_c_function(table.encode(), name.encode(), self.c_function_entry(name, fn))

    def c_function_entry(self, name, fn):
        """fn as Lua may call it: only LuaRaise ever leaves it, and none after a kill.

        Any other exception (a bug, or `int(nan)` on a script's argument)
        would reach Lua as a Python object: it becomes an error string.
        """
        def entry(*args):
            if self.kill_reason and self.depth:
                raise LuaRaise({"err": self.kill_reason})
            try:
                return fn(*args)
            except LuaRaise as e:
                value = e.value
            except Exception as e:
                log(LL_WARNING, "%s raised %s", name, traceback.format_exc().rstrip())
                value = "%s: internal error: %s" % (name, e)
            # Raised afresh, outside the handler, once args is gone: the error
            # object lives on in Lua, and a traceback reaching the arguments
            # would keep Lua objects of a coroutine that may be collected
            # first (their release then touches a freed lua_State: a segfault
            # on 5.1).
            del args
            raise LuaRaise(value)
        return entry

    def anchor(self, fn):
        """fn as an object of the main Lua state.

        lupa ties each Lua object it hands Python to the lua_State it came
        from, and uses that state to call and release it: a function passed
        from inside a coroutine would outlive its coroutine's state. Passed
        through a function of the main state, it comes back tied to that.
        """
        return self._anchor(fn)

    def _unwrap_error(self, e):
        """The Lua error value a C function's LuaRaise carries, else a string, never e."""
        if isinstance(e, LuaRaise):
            try:
                return self.to_lua(e.value)
            except (TypeError, ValueError):
                pass
        return ("%s: %s" % (type(e).__name__, e)).encode("utf-8", "replace")

    def set_constant(self, table, name, value):
        self.B.set_constant(table.encode(), name.encode(), value)

    def api_entry(self, name, fn, spec):
        checker = ArgChecker(name, spec, self)

        def entry(*args):
            if self.kill_reason and self.depth:
                # A killed script stays killed: no saker.* call runs after the kill.
                return False, self.to_lua({"err": self.kill_reason})
            try:
                result = fn(*checker.convert(args))
                if isinstance(result, tuple):
                    return (True,) + tuple(self.to_lua(v) for v in result)
                return True, self.to_lua(result)
            except ArgError as e:
                return False, ("bad argument #%d to '%s' (%s)" % (e.argno, name, e.message)).encode()
            except LuaRaise as e:
                return False, self.to_lua(e.value)
            except Exception as e:  # a bug must become a Lua error, never a crash
                log(LL_WARNING, "saker.%s raised %s", name, traceback.format_exc().rstrip())
                return False, ("saker.%s: internal error: %s" % (name, e)).encode()
        return entry

    # ---- conversions -------------------------------------------------------

    def to_lua(self, v, depth=0):
        """A plain Python value as a Lua value (str -> string, list/dict -> table)."""
        if v is None or isinstance(v, (bool, bytes)):
            return v
        if isinstance(v, int):
            return v if -2 ** 63 <= v < 2 ** 63 else float(v)
        if isinstance(v, float):
            return v
        if isinstance(v, str):
            return v.encode("utf-8", "surrogateescape")
        if depth > MAX_CONVERT_DEPTH:
            raise ValueError("value nested too deeply for Lua")
        if isinstance(v, (list, tuple)):
            return self.lua.table_from([self.to_lua(x, depth + 1) for x in v])
        if isinstance(v, dict):
            return self.lua.table_from({self.to_lua(k, depth + 1): self.to_lua(x, depth + 1)
                                        for k, x in v.items()})
        if isinstance(v, (bytearray, memoryview)):
            return bytes(v)
        if self.mod.lua_type(v) == "function":
            return v
        raise TypeError("cannot pass %s to Lua" % type(v).__name__)

    def table_to_dict(self, t, depth=0):
        """A Lua table as a dict of all its raw fields (nested tables too)."""
        if depth > MAX_CONVERT_DEPTH:
            raise ValueError("reached lua stack limit")
        out = {}
        lua_type = self.mod.lua_type
        for k, v in t.items():
            if lua_type(k) is not None:
                continue   # a table or function as a key has no Python equivalent
            if lua_type(v) == "table":
                v = self.table_to_dict(v, depth + 1)
            elif lua_type(v) is not None:
                v = LuaOpaque(lua_type(v))
            out[k] = v
        return out

    def plain(self, v):
        """A returned Lua value as a plain Python value (tables as dicts)."""
        t = self.mod.lua_type(v)
        if t is None:
            return v
        if t == "table":
            return self.table_to_dict(v)
        return LuaOpaque(t)

    # ---- the choke point -----------------------------------------------------

    def call(self, fn, *args, kind=KIND_TASK, label="", client=None, owner=None):
        """Call a registered Lua function."""
        return self.enter(self._run, (fn,) + args, kind, label, client, owner)

    def eval_script(self, sha, keys, argv, client=None, owner=None):
        return self.enter(self._run_script, (sha.encode(), len(keys)) + tuple(keys) + tuple(argv),
                          KIND_EVAL, sha, client, owner)

    def load_library(self, fn, timeout_ms=LOAD_TIMEOUT_MS):
        """Run a library's main chunk (from compile_library) with the load API as globals,
        killed after timeout_ms (0: never)."""
        self.load_timeout = timeout_ms
        return self.enter(self._run_library, (fn,), KIND_LOAD, "FUNCTION LOAD", None, None)

    def call_function(self, fn, name, keys, args, client=None, owner=None):
        """FCALL: call a registered function with its keys and arguments."""
        return self.enter(self._run_function, (fn, len(keys)) + tuple(keys) + tuple(args),
                          KIND_FUNCTION, name, client, owner)

    def load_plugin(self, source, chunkname, label, owner=None):
        return self.enter(self._run_plugin, (source, chunkname.encode()), KIND_PLUGIN, label,
                          None, owner)

    def enter(self, entry, args, kind, label, client, owner):
        """Every call that runs plugin or script code passes here.

        The outermost call owns the deadline and the hook. Results are
        converted to plain Python values before returning, so nothing of
        Lua survives the call except what was deliberately registered.
        """
        outer = self.depth == 0
        before = self.begin(kind, label, client) if outer else None
        saved = (self.owner, self.client)
        self.owner, self.client = owner, client
        self.depth += 1
        self.calls += 1
        try:
            result = self.protected(entry, args, outer)
        finally:
            self.depth -= 1
            self.owner, self.client = saved
            if outer:
                self.leave_busy()
        if not result.ok:
            self.count_failure(result)
        if outer:
            self.end(before, label)
        return result

    def begin(self, kind, label, client):
        """Start the outermost call: its deadline, and a measure for the leak check."""
        self.set_result_limits()
        self.started = time.monotonic()
        self.kind = kind
        self.label = label
        self.kill_reason = None
        self.busy_client = client
        return self.measure() if self.config.lua_debug_checks else None

    def protected(self, entry, args, outer):
        """Run entry(outer, *args); whatever happens, a LuaResult."""
        try:
            # No local keeps what Lua returned: converted, it is dropped at once.
            return self._result(entry(outer, *args))
        except self.mod.LuaMemoryError:
            # Lua 5.1 has no emergency GC: the heap is still full, and the
            # next call into Lua (disarm below) would fail outside any
            # protected call, which aborts the process. Free it first.
            self.lua.gccollect()
            error = "not enough memory"
        except self.mod.LuaError as e:
            error = str(e).split("\nstack traceback:")[0]
        except ValueError as e:   # a result that cannot be converted
            return LuaResult(False, error=str(e))
        if outer:
            self.B.disarm()       # the failure escaped run(): no hook may stay behind
        return LuaResult(False, error=error)

    def set_result_limits(self):
        """What converting a result and matching a pattern may cost (live settings)."""
        cfg = self.config
        limits = (cfg.lua_max_memory or 2 ** 62, cfg.proto_max_bulk_len, cfg.lua_pattern_max_steps)
        if limits != self.result_limits:
            self.B.set_result_limits(limits[0], limits[1])
            self._set_pattern_steps(limits[2])
            self.result_limits = limits

    def count_failure(self, result):
        self.errors += 1
        if result.error == "not enough memory":
            # The failed call's garbage is collectable now: free it at once.
            self.lua.gccollect()
            result.error = "not enough memory (lua-max-memory reached)"

    def end(self, before, label):
        """After the outermost call: the periodic GC step and the leak check."""
        if self.calls % GC_PERIOD == 0:
            self.B.gc_step(GC_STEP_KB)
            self.gc_steps += 1
        if before is not None:
            self.check_leaks(before, label)

    def _result(self, raw):
        if raw[0]:
            n = raw[1]
            plain = self.plain
            return LuaResult(True, [plain(v) for v in raw[2:2 + n]])
        msg = raw[1]
        msg = msg.decode("utf-8", "replace") if isinstance(msg, bytes) else str(msg)
        source = raw[3].decode("utf-8", "replace") if isinstance(raw[3], bytes) else None
        line = int(raw[4]) if isinstance(raw[4], (int, float)) else None
        return LuaResult(False, error=msg, raw=bool(raw[2]), source=source, line=line)

    # ---- runaway code: the hook's verdict, BUSY mode, SCRIPT KILL -------------

    def _hook_check(self):
        """Called by the count hook: None to go on, or the kill error text."""
        if self.depth == 0:
            return None           # a coroutine resumed outside any call
        if self.kill_reason:
            return self.kill_reason.encode()
        if server.el is not None and server.el.stopped:
            self.kill_reason = KILLED_BY_SHUTDOWN
            return self.kill_reason.encode()
        elapsed = (time.monotonic() - self.started) * 1000
        cfg = self.config
        if self.kind == KIND_LOAD:
            # As Redis's luaEngineLoadHook: no BUSY mode, a hard limit.
            if self.load_timeout and elapsed > self.load_timeout:
                self.kill_reason = LOAD_TIMEOUT_ERR
                return self.kill_reason.encode()
            return None
        if self.kind not in SCRIPT_KINDS and cfg.lua_task_timeout and \
                elapsed > cfg.lua_task_timeout:
            self.timeouts += 1
            self.kill_reason = "ERR %s '%s' timed out after %d ms (lua-task-timeout)" % (
                self.kind, self.label, cfg.lua_task_timeout)
            return self.kill_reason.encode()
        if Watchdog.interval_ns:
            watchdog_from_script(elapsed, cfg.lua_time_limit)
        if cfg.lua_time_limit and elapsed > cfg.lua_time_limit:
            if not self.busy:
                self.enter_busy(elapsed)
            try:
                self.serve_while_busy()
            except Exception:  # a failing handler must not kill the script
                log(LL_WARNING, "Serving clients during a busy script failed: %s",
                    traceback.format_exc().rstrip())
            if self.kill_reason:
                return self.kill_reason.encode()
        return None

    def enter_busy(self, elapsed):
        from .ae import AE_READABLE
        log(LL_WARNING, "Slow script detected: still in execution after %d milliseconds. "
            "You can try killing the script using the %s command. "
            "Script name is: %s.", elapsed,
            "FUNCTION KILL" if self.kind == KIND_FUNCTION else "SCRIPT KILL", self.label)
        self.busy = True
        server.script_busy = True
        c = self.busy_client
        # The caller's pipelined commands must wait for its reply: stop
        # reading from it while the loop is served from the hook.
        if c is not None and c.sock is not None and c.events_installed & AE_READABLE:
            server.el.delete_file_event(c.fd, AE_READABLE)
            c.events_installed &= ~AE_READABLE
            self.client_protected = True

    def serve_while_busy(self):
        from .ae import AE_FILE_EVENTS, AE_DONT_WAIT
        from .networking import handle_clients_with_pending_writes
        server.update_cached_time()
        server.el.process_events(AE_FILE_EVENTS | AE_DONT_WAIT)
        handle_clients_with_pending_writes()

    def leave_busy(self):
        if not self.busy:
            return
        from .ae import AE_READABLE
        from .networking import read_query_from_client
        self.busy = False
        server.script_busy = False
        c = self.busy_client
        if self.client_protected and c is not None and c.sock is not None:
            if server.el.create_file_event(c.fd, AE_READABLE, read_query_from_client, c) == 0:
                c.events_installed |= AE_READABLE
        self.client_protected = False
        self.busy_client = None
        log(LL_WARNING, "Slow script %s finished after %d milliseconds.", self.label,
            (time.monotonic() - self.started) * 1000)

    def kill(self):
        """SCRIPT KILL: True if a running call was told to stop."""
        if self.depth == 0:
            return False
        if not self.kill_reason:
            log(LL_WARNING, "Lua script killed by user with SCRIPT KILL.")
            self.timeouts += 1
            self.kill_reason = KILLED_BY_USER
        return True

    # ---- introspection for INFO and the leak checks ------------------------------

    def registry_size(self):
        return self._registry_size()

    def memory_used(self):
        return self._heap_bytes()

    def version_string(self):
        impl = self.lua.lua_implementation
        return impl.decode() if isinstance(impl, bytes) else str(impl)

    def where(self):
        """"file:line" of the Lua code calling the current saker.* function."""
        src, line = self.B.where()
        return "%s:%d" % (src.decode("utf-8", "replace") if isinstance(src, bytes) else src,
                          int(line or 0))

    def measure(self):
        self.B.gc_full()
        return (self._heap_bytes(), self._registry_size(), self.held)

    def check_leaks(self, before, label):
        heap, reg, held = self.measure()
        leaked = (reg - held) - (before[1] - before[2])
        if leaked > 0:
            self.debug_leaks += 1
            log(LL_WARNING, "lua-debug-checks: %s left %d registry entries behind "
                "(heap %d -> %d bytes)", label, leaked, before[0], heap)
        else:
            log(LL_DEBUG, "lua-debug-checks: %s heap %d -> %d bytes, registry %d -> %d",
                label, before[0], heap, before[1], reg)

    def _print(self, where, text):
        log_from(LL_NOTICE, where.decode("utf-8", "replace"), text.decode("utf-8", "replace"))

    # ---- scripts cache -----------------------------------------------------------

    def compile_script(self, body, skip=0, flags=0):
        """(sha, None) or (None, compile error message).

        The sha is the whole body's; the code compiled starts at `skip`
        (after a shebang line, whose line feed stays for the line numbers).
        """
        sha = hashlib.sha1(body).hexdigest()
        if sha in self.scripts:
            return sha, None
        self.calls += 1
        r = self.B.compile_script(sha.encode(), body[skip:] if skip else body)
        ok, err = r if isinstance(r, tuple) else (r, None)
        if not ok:
            self.errors += 1
            return None, err.decode("utf-8", "replace")
        self.scripts[sha] = flags
        return sha, None

    def compile_library(self, code):
        """(the library's main chunk, None) or (None, compile error message)."""
        self.calls += 1
        r = self.B.compile_library(code)
        if isinstance(r, tuple):
            self.errors += 1
            return None, r[1].decode("utf-8", "replace")
        return r, None

    def add_load_function(self, name, fn):
        """redis.<name> while FUNCTION LOAD runs a library (a C function, as add_c_function)."""
        self.B.add_load_function(name.encode(), fn)

    def flush_scripts(self):
        self.B.flush_scripts()
        self.scripts.clear()
        self.lua.gccollect()

    def check_plugin(self, source, chunkname):
        """A compile error message, or None."""
        r = self.B.check_plugin(source, chunkname.encode())
        ok, err = r if isinstance(r, tuple) else (r, None)
        return None if ok else err.decode("utf-8", "replace")


class LuaOpaque:
    """A Lua function, coroutine or userdata in a result: only its type survives."""

    __slots__ = ("type",)

    def __init__(self, type):
        self.type = type


# ---- argument checking ------------------------------------------------------

_ARG_TYPES = ("string", "bytes", "number", "integer", "boolean", "table", "function", "any")


def _expected(alts):
    """"string or table": the Lua type names of the alternatives."""
    names = []
    for a in alts:
        a = "string" if a == "bytes" else "value" if a == "any" else a
        if a not in names:
            names.append(a)
    return " or ".join(names)


class ArgChecker:
    """Checks and converts one saker function's arguments (see the argspec)."""

    def __init__(self, name, spec, bridge):
        self.name = name
        self.bridge = bridge
        self.items = []         # (alternatives, optional)
        self.rest = None        # alternatives for every further argument
        for item in spec:
            if item.endswith("..."):
                self.rest = tuple(item[:-3].split("|"))
                break
            optional = item.endswith("?")
            alts = tuple(item.rstrip("?").split("|"))
            for a in alts:
                if a not in _ARG_TYPES:
                    raise ValueError("saker.%s: unknown argument type %r" % (name, a))
            self.items.append((alts, optional))

    def convert(self, args):
        out = []
        n = len(args)
        for i, (alts, optional) in enumerate(self.items):
            if i >= n or args[i] is None and optional:
                if not optional:
                    raise ArgError(i + 1, "%s expected, got no value" % _expected(alts))
                out.append(None)
                continue
            out.append(self.one(i + 1, args[i], alts))
        if n > len(self.items):
            if self.rest is None:
                extra = args[len(self.items)]
                raise ArgError(len(self.items) + 1, "no value expected, got %s" %
                               _lua_type_name(extra, self.bridge.mod))
            for j in range(len(self.items), n):
                out.append(self.one(j + 1, args[j], self.rest))
        # Trailing optional arguments that were not given stay absent.
        while out and out[-1] is None and len(out) > n:
            out.pop()
        return out

    def one(self, argno, v, alts):
        mod = self.bridge.mod
        if isinstance(v, (int, float)) and not isinstance(v, bool) and \
                ("integer" in alts or "number" in alts):
            # A number given where a number is accepted is never read as a string.
            alts = [t for t in alts if t not in ("string", "bytes")]
        for t in alts:
            ok, value = self.accepts(t, v, mod)
            if ok:
                return value
        if "integer" in alts and isinstance(v, float):
            raise ArgError(argno, "number has no integer representation")
        raise ArgError(argno, "%s expected, got %s" % (_expected(alts), _lua_type_name(v, mod)))

    def accepts(self, t, v, mod):
        if t == "any":
            return True, self.to_python(v, mod)
        if t in ("string", "bytes"):
            if isinstance(v, bytes):
                return True, v if t == "bytes" else v.decode("utf-8", "surrogateescape")
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                text = _number_text(v)
                return True, text if t == "bytes" else text.decode()
            return False, None
        if t in ("number", "integer"):
            if isinstance(v, bytes):
                try:
                    v = float(v) if not v.strip().lstrip(b"-").isdigit() else int(v)
                except ValueError:
                    return False, None
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                return False, None
            if isinstance(v, float) and v == v and abs(v) < 2 ** 63 and v == int(v):
                v = int(v)
            if t == "integer" and not isinstance(v, int):
                return False, None
            return True, v
        if t == "boolean":
            return (True, v) if isinstance(v, bool) else (False, None)
        lt = mod.lua_type(v)
        if t == "table" and lt == "table":
            return True, self.to_python(v, mod)
        if t == "function" and lt == "function":
            return True, self.bridge.anchor(v)
        return False, None

    def to_python(self, v, mod, depth=0):
        """A Lua argument as the contract says: dict, or list when keys are 1..n."""
        if isinstance(v, bytes):
            return v.decode("utf-8", "surrogateescape")
        if isinstance(v, float) and v == v and abs(v) < 2 ** 63 and v == int(v):
            return int(v)
        lt = mod.lua_type(v)
        if lt != "table":
            return v
        if depth > MAX_CONVERT_DEPTH:
            raise ArgError(1, "table nested too deeply")
        d = {}
        for k, x in v.items():
            k = self.to_python(k, mod, depth + 1)
            if isinstance(k, (dict, list)):
                continue
            d[k] = self.to_python(x, mod, depth + 1)
        if d and all(isinstance(k, int) and not isinstance(k, bool) for k in d) and \
                sorted(d) == list(range(1, len(d) + 1)):
            return [d[i] for i in range(1, len(d) + 1)]
        return d

