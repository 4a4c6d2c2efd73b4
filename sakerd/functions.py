"""Redis Functions: FUNCTION, FCALL, FCALL_RO and the functions-file (Redis's
functions.c and function_lua.c).

A library is the code given to FUNCTION LOAD: a `#!lua name=<lib>` line,
then Lua whose main chunk calls redis.register_function for each function
it defines. The main chunk runs once, at load, with only the load API as
its globals (lua_bridge: the functions' environment); the functions it
registers are kept (as Lua functions held by Python) and run by FCALL
through the bridge's one entry point, like EVAL scripts: same BUSY mode,
same kill, same lua-max-memory, same redis.* table.

The set of libraries (a LibCtx, Redis's functionsLibCtx) is never changed
in place: a command builds the new set on a copy, persists it, and only
then makes it current. So a command that fails -- in the library's code,
or writing the functions-file -- leaves the libraries as they were.

Persistence, which Redis gets from its RDB: the `functions-file` holds the
FUNCTION DUMP payload of the current libraries, rewritten after every
change and loaded at start. The payload is sakerd's own (not Redis's RDB
encoding): a magic, then each library's code, then a SHA-1 of all that.
The file is replaced atomically: written to a new temporary file of
unpredictable name in the same directory (mkstemp: O_EXCL|O_NOFOLLOW),
fsync'ed, renamed over the old one (rename replaces a symlink, never
follows it), then the directory is fsync'ed. A crash at any moment leaves
the old file or the new one, whole.
"""

import hashlib
import math
import os
import re
import stat
import struct
import time

from . import safefile
from .log import log, LL_NOTICE, LL_WARNING
from .lua_bridge import LuaRaise, LOAD_TIMEOUT_MS, KIND_FUNCTION, KIND_EVAL
from .resp import split_args
from .scripting import (BUSY_EVAL_ERR, SCRIPT_FLAGS, ScriptRun, error_text, feed_monitors,
                        get_numkeys, prepare_for_run, push_error, reply_result, run_is_read_only,
                        script_kill)
from .server_h import (Command, server, CMD_ALLOW_BUSY, CMD_LOADING, CMD_NOSCRIPT, CMD_READONLY,
                     CMD_SKIP_MONITOR, CMD_STALE, CMD_WRITE)
from .util import string_match

ENGINE_NAME = b"LUA"
NAME_RE = re.compile(rb"[a-zA-Z0-9_]+\Z")
BAD_NAME_ERR = ("Library names can only contain letters, numbers, or underscores(_) and must "
                "be at least one character long")
DUMP_MAGIC = b"SAKERFN"
DUMP_VERSION = 1
DUMP_CHECKSUM_LEN = 20          # SHA-1 of everything before it
BAD_PAYLOAD_ERR = "DUMP payload version or checksum are wrong"
REDIS_PAYLOAD_ERR = ("DUMP payload is redis-server's RDB encoding, not a sakerd FUNCTION DUMP: "
                     "load its libraries with FUNCTION LOAD")
RDB_OPCODE_FUNCTION2, RDB_OPCODE_FUNCTION = 245, 246


class FunctionInfo:
    __slots__ = ("name", "fn", "library", "desc", "flags")

    def __init__(self, name, fn, library, desc, flags):
        self.name = name            # bytes
        self.fn = fn                # the Lua function (a registry reference)
        self.library = library
        self.desc = desc            # bytes or None
        self.flags = flags          # SCRIPT_FLAG_* bits


class Library:
    __slots__ = ("name", "code", "functions")

    def __init__(self, name, code):
        self.name = name            # bytes
        self.code = code            # the whole code given to FUNCTION LOAD
        self.functions = {}         # name -> FunctionInfo, in registration order


class LibCtx:
    """A set of libraries and the index of their functions (functionsLibCtx)."""

    __slots__ = ("libraries", "functions")

    def __init__(self, libraries=None, functions=None):
        self.libraries = dict(libraries or {})
        self.functions = dict(functions or {})

    def copy(self):
        return LibCtx(self.libraries, self.functions)

    def link(self, lib):
        self.libraries[lib.name] = lib
        for name, fi in lib.functions.items():
            self.functions[name] = fi

    def unlink(self, lib):
        del self.libraries[lib.name]
        for name in lib.functions:
            del self.functions[name]


class Functions:
    """The server's functions: the current libraries and where they persist."""

    current = LibCtx()
    path = None                     # the functions-file, or None: not persisted
    loading = None                  # the Library whose main chunk runs (register_function)
    bridge = None                   # and the bridge running it


# ---- loading a library (functionsCreateWithLibraryCtx) ------------------------------

def extract_lib_metadata(code):
    """(name, engine, code after the shebang line, None) or (None, None, None, error)."""
    if not code.startswith(b"#!"):
        return None, None, None, "Missing library metadata"
    end = code.find(b"\n")
    if end == -1:
        return None, None, None, "Invalid library metadata"
    parts = split_args(code[:end])
    if not parts:
        return None, None, None, "Invalid library metadata"
    engine = parts[0][2:]
    name = None
    for part in parts[1:]:
        if part[:5].lower() == b"name=":
            if name is not None:
                return None, None, None, ("Invalid metadata value, name argument was given "
                                          "multiple times")
            name = part[5:]
            continue
        return None, None, None, "Invalid metadata value given: %s" % _text(part)
    if name is None:
        return None, None, None, "Library name was not given"
    return name, engine, code[end:], None


def _text(b):
    return b.decode("utf-8", "surrogateescape")


def create_library(code, replace, ctx, bridge, timeout_ms=LOAD_TIMEOUT_MS):
    """Load `code` into ctx (changed in place): (library name, None) or (None, error)."""
    name, engine, body, err = extract_lib_metadata(code)
    if err:
        return None, err
    if not NAME_RE.match(name):
        return None, BAD_NAME_ERR
    if engine.upper() != ENGINE_NAME:
        return None, "Engine '%s' not found" % _text(engine)
    old = ctx.libraries.get(name)
    if old is not None and not replace:
        return None, "Library '%s' already exists" % _text(name)
    lib = Library(name, code)
    err = run_library(lib, body, bridge, timeout_ms)
    if err is None and not lib.functions:
        err = "No functions registered"
    if err is None:
        for fname in lib.functions:
            if fname in ctx.functions and ctx.functions[fname].library is not old:
                err = "Function %s already exists" % _text(fname)
                break
    if err is not None:
        release([lib], bridge)
        return None, err
    if old is not None:
        ctx.unlink(old)
    ctx.link(lib)
    return name, None


def run_library(lib, body, bridge, timeout_ms):
    """Compile the library and run its main chunk (luaEngineCreate): an error or None."""
    fn, err = bridge.compile_library(body)
    if fn is None:
        return "Error compiling function: %s" % err
    saved = Functions.loading, Functions.bridge
    Functions.loading, Functions.bridge = lib, bridge
    try:
        res = bridge.load_library(fn, timeout_ms)
    finally:
        Functions.loading, Functions.bridge = saved
    del fn
    if not res.ok:
        return "Error registering functions: %s" % _text(error_text(res))
    return None


def release(libs, bridge):
    """Forget the Lua functions of libraries no set holds any more."""
    for lib in libs:
        bridge.held -= len(lib.functions)
        for fi in lib.functions.values():
            fi.fn = None
        lib.functions = {}


# ---- redis.register_function (luaRegisterFunction) -----------------------------------

def _lua_raise(msg):
    raise LuaRaise(push_error(msg.encode() if isinstance(msg, str) else msg))


def _lua_string(v):
    """lua_isstring + lua_tostring: a string, or a number's text; else None."""
    if isinstance(v, bytes):
        return v
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    if isinstance(v, int) or v == v and abs(v) < 1e15 and v == int(v):
        return b"%d" % v             # Lua 5.1's "%.14g" of an integral value
    if v != v:                       # glibc's printf shows a NaN's sign
        return b"-nan" if math.copysign(1.0, v) < 0 else b"nan"
    return b"%.14g" % v


def _lua_type(v):
    return Functions.bridge.mod.lua_type(v)


def register_function(*args):
    lib = Functions.loading
    if lib is None:
        _lua_raise("redis.register_function can only be called on FUNCTION LOAD command")
    if not 1 <= len(args) <= 2:
        _lua_raise("wrong number of arguments to redis.register_function")
    if len(args) == 1:
        name, fn, desc, flags = read_named_args(args[0])
    else:
        name, fn, desc, flags = read_positional_args(*args)
    if not NAME_RE.match(name):
        _lua_raise(BAD_NAME_ERR)
    if name in lib.functions:
        _lua_raise("Function already exists in the library")
    lib.functions[name] = FunctionInfo(name, fn, lib, desc, flags)
    Functions.bridge.held += 1


def read_positional_args(name, fn):
    name = _lua_string(name)
    if name is None:
        _lua_raise("first argument to redis.register_function must be a string")
    if _lua_type(fn) != "function":
        _lua_raise("second argument to redis.register_function must be a function")
    return name, fn, None, 0


def read_named_args(t):
    if _lua_type(t) != "table":
        _lua_raise("calling redis.register_function with a single argument is only applicable "
                   "to Lua table (representing named arguments).")
    name = desc = fn = None
    flags = 0
    for k, v in t.items():
        key = _lua_string(k)
        if key is None:
            _lua_raise("named argument key given to redis.register_function is not a string")
        key = key.lower()
        if key == b"function_name":
            name = _lua_string(v)
            if name is None:
                _lua_raise("function_name argument given to redis.register_function must be a "
                           "string")
        elif key == b"description":
            desc = _lua_string(v)
            if desc is None:
                _lua_raise("description argument given to redis.register_function must be a "
                           "string")
        elif key == b"callback":
            if _lua_type(v) != "function":
                _lua_raise("callback argument given to redis.register_function must be a "
                           "function")
            fn = v
        elif key == b"flags":
            if _lua_type(v) != "table":
                _lua_raise("flags argument to redis.register_function must be a table "
                           "representing function flags")
            flags = read_flags(v)
        else:
            _lua_raise("unknown argument given to redis.register_function")
    if name is None:
        _lua_raise("redis.register_function must get a function name argument")
    if fn is None:
        _lua_raise("redis.register_function must get a callback argument")
    return name, fn, desc, flags


def read_flags(t):
    """flags={'no-writes', ...}: t[1], t[2]... up to the first nil, case-insensitive."""
    flags = 0
    j = 1
    while True:
        v = t[j]
        if v is None:
            return flags
        s = _lua_string(v)
        for fname, bit in SCRIPT_FLAGS:
            if s is not None and s.lower() == fname.encode():
                flags |= bit
                break
        else:
            _lua_raise("unknown flag given")
        j += 1


def install(bridge):
    """The load API's redis.register_function (call once the redis table is built)."""
    bridge.add_load_function("register_function", register_function)


# ---- FCALL, FCALL_RO --------------------------------------------------------------------

def fcall_generic(c, ro):
    feed_monitors(c)
    argv = c.argv
    fi = Functions.current.functions.get(argv[1])
    if fi is None:
        c.add_reply_error("Function not found")
        return
    numkeys = get_numkeys(c, "Bad number of keys provided")
    if numkeys is None:
        return
    if not prepare_for_run(c, fi.flags, ro):
        return
    name = fi.name.decode()
    owner = server.tasks.eval_owner if server.tasks is not None else None
    saved = ScriptRun.start(run_is_read_only(fi.flags, ro))
    try:
        res = server.lua.call_function(fi.fn, name, argv[3:3 + numkeys], argv[3 + numkeys:],
                                       client=c, owner=owner)
        reply_result(c, res, name, ScriptRun.resp)
    finally:
        ScriptRun.restore(saved)


def fcall_command(c):
    fcall_generic(c, False)


def fcall_ro_command(c):
    fcall_generic(c, True)


# ---- changing the set of libraries ---------------------------------------------------------

def commit(c, new):
    """Persist `new` and make it current: True, or False after replying the error.

    Libraries only one of the two sets holds are released: the old set's
    on success, the new set's on failure.
    """
    old = Functions.current
    err = save_functions_file(new)
    keep, drop = (old, new) if err else (new, old)
    release([lib for name, lib in drop.libraries.items()
             if keep.libraries.get(name) is not lib], server.lua)
    if err:
        c.add_reply_error("Error saving the functions-file: %s" % err)
        return False
    Functions.current = new
    return True


def function_load_command(c):
    argv = c.argv
    replace = False
    pos = 2
    while pos < len(argv) - 1:
        arg = argv[pos]
        pos += 1
        if arg.lower() == b"replace":
            replace = True
            continue
        c.add_reply_error("Unknown option given: %s" % _text(arg))
        return
    if pos >= len(argv):
        c.add_reply_error("Function code is missing")
        return
    new = Functions.current.copy()
    name, err = create_library(argv[pos], replace, new, server.lua)
    if err:
        c.add_reply_error(err)
        return
    if commit(c, new):
        c.add_reply_bulk(name)


def function_delete_command(c):
    lib = Functions.current.libraries.get(c.argv[2])
    if lib is None:
        c.add_reply_error("Library not found")
        return
    new = Functions.current.copy()
    new.unlink(lib)
    if commit(c, new):
        c.add_reply(b"+OK\r\n")


def subcommand_syntax_error(c):
    c.add_reply_error("unknown subcommand or wrong number of arguments for '%s'. Try %s HELP." % (
        _text(c.argv[1][:128]), _text(c.argv[0]).upper()))


def function_flush_command(c):
    argv = c.argv
    if len(argv) > 3:
        subcommand_syntax_error(c)
        return
    if len(argv) == 3 and argv[2].lower() not in (b"sync", b"async"):
        c.add_reply_error("FUNCTION FLUSH only supports SYNC|ASYNC option")
        return
    if commit(c, LibCtx()):
        c.add_reply(b"+OK\r\n")


def function_list_command(c):
    argv = c.argv
    with_code = False
    pattern = None
    i = 2
    while i < len(argv):
        arg = argv[i].lower()
        if not with_code and arg == b"withcode":
            with_code = True
        elif pattern is None and arg == b"libraryname":
            if i >= len(argv) - 1:
                c.add_reply_error("library name argument was not given")
                return
            i += 1
            pattern = argv[i]
        else:
            c.add_reply_error("Unknown argument %s" % _text(argv[i]))
            return
        i += 1
    libs = [lib for lib in Functions.current.libraries.values()
            if pattern is None or string_match(pattern, lib.name, nocase=True)]
    out = [b"*%d\r\n" % len(libs)]
    for lib in libs:
        out.append(library_entry(c, lib, with_code))
    c.add_reply(b"".join(out))


def _bulk(b):
    return b"$%d\r\n%s\r\n" % (len(b), b)


def _map_len(c, n):
    return b"*%d\r\n" % (2 * n) if c.resp == 2 else b"%%%d\r\n" % n


def library_entry(c, lib, with_code):
    out = [_map_len(c, 4 if with_code else 3), _bulk(b"library_name"), _bulk(lib.name),
           _bulk(b"engine"), _bulk(ENGINE_NAME), _bulk(b"functions"),
           b"*%d\r\n" % len(lib.functions)]
    null = b"$-1\r\n" if c.resp == 2 else b"_\r\n"
    for fi in lib.functions.values():
        names = [fname for fname, bit in SCRIPT_FLAGS if fi.flags & bit]
        out += [_map_len(c, 3), _bulk(b"name"), _bulk(fi.name), _bulk(b"description"),
                null if fi.desc is None else _bulk(fi.desc), _bulk(b"flags"),
                b"*%d\r\n" % len(names) if c.resp == 2 else b"~%d\r\n" % len(names)]
        out += [b"+%s\r\n" % n.encode() for n in names]
    if with_code:
        out += [_bulk(b"library_code"), _bulk(lib.code)]
    return b"".join(out)


def function_stats_command(c):
    bridge = server.lua
    running = bridge.depth > 0 and bridge.kind in (KIND_EVAL, KIND_FUNCTION)
    if running and bridge.kind == KIND_EVAL:
        c.add_reply_error(BUSY_EVAL_ERR)
        return
    out = [_map_len(c, 2), _bulk(b"running_script")]
    if not running:
        out.append(b"$-1\r\n" if c.resp == 2 else b"_\r\n")
    else:
        caller = bridge.busy_client.argv if bridge.busy_client is not None else []
        out += [_map_len(c, 3), _bulk(b"name"), _bulk(bridge.label.encode()), _bulk(b"command"),
                b"*%d\r\n" % len(caller)] + [_bulk(a) for a in caller] + [
                _bulk(b"duration_ms"),
                b":%d\r\n" % int((time.monotonic() - bridge.started) * 1000)]
    cur = Functions.current
    out += [_bulk(b"engines"), _map_len(c, 1), _bulk(ENGINE_NAME), _map_len(c, 2),
            _bulk(b"libraries_count"), b":%d\r\n" % len(cur.libraries),
            _bulk(b"functions_count"), b":%d\r\n" % len(cur.functions)]
    c.add_reply(b"".join(out))


def function_kill_command(c):
    script_kill(c, False)


def function_dump_command(c):
    c.add_reply_bulk(dump_payload(Functions.current))


def function_restore_command(c):
    argv = c.argv
    if len(argv) > 4:
        subcommand_syntax_error(c)
        return
    policy = b"append"
    if len(argv) == 4:
        policy = argv[3].lower()
        if policy not in (b"append", b"replace", b"flush"):
            c.add_reply_error("Wrong restore policy given, value should be either FLUSH, APPEND "
                              "or REPLACE.")
            return
    codes, err = parse_payload(argv[2])
    if err:
        c.add_reply_error(err)
        return
    restored, err = load_libraries(codes, server.lua)
    if err is None:
        if policy == b"flush":
            new = restored
        else:
            new = Functions.current.copy()
            err = library_join(new, restored, policy == b"replace")
    if err:
        release(restored.libraries.values(), server.lua)
        c.add_reply_error(err)
        return
    if commit(c, new):
        c.add_reply(b"+OK\r\n")


def load_libraries(codes, bridge):
    """Each code loaded into a new LibCtx (rdbFunctionLoad): (ctx, error or None).

    Redis loads these without a time limit; sakerd keeps lua-task-timeout as
    a last resort, so that a library cannot hang the daemon.
    """
    ctx = LibCtx()
    for code in codes:
        _, err = create_library(code, False, ctx, bridge, bridge.config.lua_task_timeout)
        if err:
            return ctx, err
    return ctx, None


def library_join(dst, src, replace):
    """Add src's libraries to dst (libraryJoin): an error or None (dst then unusable)."""
    for name in src.libraries:
        old = dst.libraries.get(name)
        if old is not None:
            if not replace:
                return "Library %s already exists" % _text(name)
            dst.unlink(old)
    for fname in src.functions:
        if fname in dst.functions:
            return "Function %s already exists" % _text(fname)
    for lib in src.libraries.values():
        dst.link(lib)
    return None


def function_help_command(c):
    c.add_reply_help("FUNCTION", [
        "LOAD [REPLACE] <FUNCTION CODE>",
        "    Create a new library with the given library name and code.",
        "DELETE <LIBRARY NAME>",
        "    Delete the given library.",
        "LIST [LIBRARYNAME PATTERN] [WITHCODE]",
        "    Return general information on all the libraries:",
        "    * Library name",
        "    * The engine used to run the Library",
        "    * Library description",
        "    * Functions list",
        "    * Library code (if WITHCODE is given)",
        "    It also possible to get only function that matches a pattern using LIBRARYNAME argument.",
        "STATS",
        "    Return information about the current function running:",
        "    * Function name",
        "    * Command used to run the function",
        "    * Duration in MS that the function is running",
        "    If no function is running, return nil",
        "    In addition, returns a list of available engines.",
        "KILL",
        "    Kill the current running function.",
        "FLUSH [ASYNC|SYNC]",
        "    Delete all the libraries.",
        "    When called without the optional mode argument, the behavior is determined by the",
        "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
        "    * ASYNC: Asynchronously flush the libraries.",
        "    * SYNC: Synchronously flush the libraries.",
        "DUMP",
        "    Return a serialized payload representing the current libraries, can be restored "
        "using FUNCTION RESTORE command",
        "RESTORE <PAYLOAD> [FLUSH|APPEND|REPLACE]",
        "    Restore the libraries represented by the given payload, it is possible to give a "
        "restore policy to",
        "    control how to handle existing libraries (default APPEND):",
        "    * FLUSH: delete all existing libraries.",
        "    * APPEND: appends the restored libraries to the existing libraries. On collision, "
        "abort.",
        "    * REPLACE: appends the restored libraries to the existing libraries, On collision, "
        "replace the old",
        "      libraries with the new libraries (notice that even on this option there is a "
        "chance of failure",
        "      in case of functions name collision with another library)."])


# ---- the payload of FUNCTION DUMP and of the functions-file ---------------------------------

def dump_payload(ctx):
    """MAGIC, version, library count, each library's code (u32 length first), SHA-1."""
    parts = [DUMP_MAGIC, bytes([DUMP_VERSION]), struct.pack(">I", len(ctx.libraries))]
    for lib in ctx.libraries.values():
        parts += [struct.pack(">I", len(lib.code)), lib.code]
    body = b"".join(parts)
    return body + hashlib.sha1(body).digest()


def parse_payload(data):
    """The library codes of a payload: (codes, None) or (None, error)."""
    if not data.startswith(DUMP_MAGIC):
        if looks_like_redis_dump(data):
            return None, REDIS_PAYLOAD_ERR
        return None, BAD_PAYLOAD_ERR
    head = len(DUMP_MAGIC) + 5
    if len(data) < head + DUMP_CHECKSUM_LEN or data[len(DUMP_MAGIC)] != DUMP_VERSION:
        return None, BAD_PAYLOAD_ERR
    body, checksum = data[:-DUMP_CHECKSUM_LEN], data[-DUMP_CHECKSUM_LEN:]
    if hashlib.sha1(body).digest() != checksum:
        return None, BAD_PAYLOAD_ERR
    count = struct.unpack_from(">I", body, len(DUMP_MAGIC) + 1)[0]
    codes = []
    pos = head
    for _ in range(count):
        if pos + 4 > len(body):
            return None, BAD_PAYLOAD_ERR
        n = struct.unpack_from(">I", body, pos)[0]
        pos += 4
        if pos + n > len(body):
            return None, BAD_PAYLOAD_ERR
        codes.append(body[pos:pos + n])
        pos += n
    if pos != len(body):
        return None, BAD_PAYLOAD_ERR
    return codes, None


def looks_like_redis_dump(data):
    """Redis's payload: RDB function opcodes, then a 2-byte RDB version and a CRC64."""
    return len(data) >= 10 and (len(data) == 10 or data[0] in (RDB_OPCODE_FUNCTION2,
                                                                RDB_OPCODE_FUNCTION))


# ---- the functions-file ----------------------------------------------------------------------

def functions_file_path(config):
    return config.resolve_path(config.functions_file) if config.functions_file else None


def save_functions_file(ctx):
    """Write ctx's libraries to the functions-file: an error message or None."""
    if Functions.path is None:
        return None
    try:
        safefile.replace_file(Functions.path, dump_payload(ctx))
    except safefile.UnsafeFile as e:
        err = str(e)
    except OSError as e:
        err = "%s: %s" % (Functions.path, e.strerror)
    else:
        return None
    log(LL_WARNING, "Can't save the functions-file %s: %s", Functions.path, err)
    return err


def read_functions_file(path):
    """(payload bytes or None when there is no file, error or None)."""
    err = safefile.directory_problem(os.path.dirname(path))
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return None, None
    except OSError as e:
        return None, "can't open it: %s" % (
            "it is a symbolic link" if os.path.islink(path) else e.strerror)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return None, "it is not a regular file"
        if err:
            return None, err
        if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH) or st.st_uid not in (0, os.geteuid()):
            return None, "it is writable by other users (mode %03o, uid %d)" % (
                st.st_mode & 0o777, st.st_uid)
        chunks = []
        while True:
            b = os.read(fd, 1 << 20)
            if not b:
                break
            chunks.append(b)
        return b"".join(chunks), None
    finally:
        os.close(fd)


def load_functions_file(path, bridge):
    """The libraries of the functions-file: (LibCtx, None) or (None, error)."""
    data, err = read_functions_file(path)
    if err:
        return None, err
    if data is None:
        return LibCtx(), None
    codes, err = parse_payload(data)
    if err:
        return None, err
    ctx, err = load_libraries(codes, bridge)
    if err:
        release(ctx.libraries.values(), bridge)
        return None, err
    return ctx, None


def init(srv):
    """At start, after the bridge: register_function, then the functions-file's libraries."""
    install(srv.lua)
    path = functions_file_path(srv.config)
    if path is None:
        return None
    safefile.remove_stale_temporaries(path)
    ctx, err = load_functions_file(path, srv.lua)
    if err:
        return "Can't load the functions-file %s: %s" % (path, err)
    Functions.current = ctx
    Functions.path = path
    if ctx.libraries:
        log(LL_NOTICE, "Loaded %d function librar%s from %s", len(ctx.libraries),
            "y" if len(ctx.libraries) == 1 else "ies", path)
    return None


def check_config(config):
    """--test-config: the functions-file decodes and its libraries load."""
    path = functions_file_path(config)
    if path is None:
        return []
    data, err = read_functions_file(path)
    if err is None and data is not None:
        err = parse_payload(data)[1]
        if err is None:
            from .lua_bridge import LuaBridge
            from .scripting import install_redis_table
            try:
                bridge = LuaBridge(config)
            except Exception as e:
                return ["%s: can't start the Lua runtime: %s" % (path, e)]
            install_redis_table(bridge)
            install(bridge)
            err = load_functions_file(path, bridge)[1]
    if err:
        where = config.origin.get("functions-file", config.config_file or "(defaults)")
        return ["%s: functions-file %s: %s" % (where, path, err)]
    return []


# ---- INFO -------------------------------------------------------------------------------

def functions_memory():
    """used_memory_functions: the bytes of the libraries' code and names."""
    n = 0
    for lib in Functions.current.libraries.values():
        n += len(lib.code) + len(lib.name)
        for fi in lib.functions.values():
            n += len(fi.name) + len(fi.desc or b"")
    return n


def number_of_functions():
    return len(Functions.current.functions)


def number_of_libraries():
    return len(Functions.current.libraries)


# ---- the command table --------------------------------------------------------------------

_SCRIPT_FLAGS = CMD_NOSCRIPT | CMD_STALE | CMD_SKIP_MONITOR


def _function_container():
    grp = "scripting"
    cmd = Command("function", None, -2, 0, group=grp)
    for sub in (
            Command("load", function_load_command, -3, CMD_WRITE | CMD_NOSCRIPT, group=grp,
                    summary="Create a function library.", acl="exec"),
            Command("delete", function_delete_command, 3, CMD_WRITE | CMD_NOSCRIPT, group=grp,
                    summary="Delete a library and all its functions.", acl="exec"),
            Command("flush", function_flush_command, -2, CMD_WRITE | CMD_NOSCRIPT, group=grp,
                    summary="Delete all libraries and functions.", acl="exec"),
            Command("list", function_list_command, -2, CMD_NOSCRIPT, group=grp,
                    summary="List information about all the functions"),
            Command("dump", function_dump_command, 2, CMD_NOSCRIPT, group=grp,
                    summary="Dump all functions into a serialized binary payload"),
            Command("restore", function_restore_command, -3, CMD_WRITE | CMD_NOSCRIPT,
                    group=grp, summary="Restore all the functions on the given payload", acl="exec"),
            Command("stats", function_stats_command, 2, CMD_NOSCRIPT | CMD_ALLOW_BUSY,
                    group=grp, summary="Return information about the function currently "
                    "running (name, description, duration)"),
            Command("kill", function_kill_command, 2, CMD_NOSCRIPT | CMD_ALLOW_BUSY, group=grp,
                    summary="Kill the function currently in execution."),
            Command("help", function_help_command, 2, CMD_LOADING | CMD_STALE, group=grp,
                    summary="Show helpful text about the different subcommands")):
        cmd.add_subcommand(sub)
    return cmd


COMMANDS = [
    Command("fcall", fcall_command, -3, _SCRIPT_FLAGS, group="scripting",
            summary="Invoke a function"),
    Command("fcall_ro", fcall_ro_command, -3, _SCRIPT_FLAGS | CMD_READONLY, group="scripting",
            summary="Invoke a read-only function"),
    _function_container(),
]
