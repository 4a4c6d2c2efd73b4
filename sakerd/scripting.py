"""Scripting: EVAL, EVALSHA, SCRIPT, the redis.* functions, saker.call & co.

Conversions follow Redis 7 (script_lua.c) both ways.

Lua -> reply: string -> bulk; number -> integer, truncated toward zero
(NaN and infinities as LLONG_MIN, as the C cast does on x86); true -> :1,
false and nil -> null; a table with a string `err` field -> error, `ok`
-> status, `double`, `big_number`, `verbatim_string`, `map`, `set` ->
those types; any other table -> array of t[1], t[2], ... up to the first
nil.

Reply -> Lua (redis.call): integer -> number; bulk -> string; null bulk
and null array -> false; array -> table; status -> {ok=...}; error ->
{err=...}, raised by redis.call and returned by redis.pcall. After
redis.setresp(3) the script's commands answer in RESP3, whose types add:
null -> nil; boolean -> boolean; map -> {map={k=v}}; set -> {set={m=true}};
double -> {double=n}; big number -> {big_number=s}; verbatim string ->
{verbatim_string={format=, string=}}; attributes are skipped.

The redis.* functions are C functions to Lua (see add_c_function in
lua_bridge), as in Redis: `return redis.call(...)` is a tail call that
keeps the script's frame, so its error still carries the script's line.

Errors of a script come back as Redis 7 writes them: the message (with
"ERR " in front unless it came from an {err=...} table), then " script:
<sha>, on @user_script:<line>." when the line is known.
"""

import hashlib
import socket
import time

from .lua_bridge import ArgError, LuaRaise, saker_api, _number_text, KIND_EVAL, KIND_FUNCTION
from .log import log_from, LEVEL_BY_NAME, LL_DEBUG, LL_WARNING
from .acl import SERVER_USER, script_denied_error
from .networking import CLIENT_DENY_BLOCKING, CLIENT_SCRIPT, create_fake_client
from .resp import split_args, string2ll
from .server_h import (Command, server, CMD_ALLOW_BUSY, CMD_NOSCRIPT, CMD_READONLY,
                     CMD_SKIP_MONITOR, CMD_STALE, CMD_WRITE)
from . import info
from .util import bytes_to_human

LLONG_MIN = -2 ** 63
NOSCRIPT_ERR = "-NOSCRIPT No matching script. Please use EVAL."
NOTBUSY_ERR = "-NOTBUSY No scripts in execution right now."
UNKILLABLE_ERR = ("-UNKILLABLE Sorry the script already executed write commands against the "
                  "dataset. You can either wait the script termination or kill the server in a "
                  "hard way using the SHUTDOWN NOSAVE command.")
BUSY_EVAL_ERR = ("-BUSY Redis is busy running a script. You can only call SCRIPT KILL or "
                 "SHUTDOWN NOSAVE.")
BUSY_FUNCTION_ERR = ("-BUSY Redis is busy running a script. You can only call FUNCTION KILL or "
                     "SHUTDOWN NOSAVE.")
RO_SCRIPT_ERR = b"-ERR Write commands are not allowed from read-only scripts.\r\n"
RO_COMMAND_ERR = "Can not execute a script with write flag using *_ro command."

# Script flags (Redis's script.h), from a `#!lua flags=...` shebang or
# redis.register_function's flags; EVAL_COMPAT_MODE marks a script without shebang.
SCRIPT_FLAG_NO_WRITES = 1 << 0
SCRIPT_FLAG_ALLOW_OOM = 1 << 1
SCRIPT_FLAG_ALLOW_STALE = 1 << 2
SCRIPT_FLAG_NO_CLUSTER = 1 << 3
SCRIPT_FLAG_EVAL_COMPAT_MODE = 1 << 4
SCRIPT_FLAG_ALLOW_CROSS_SLOT = 1 << 5
SCRIPT_FLAGS = (("no-writes", SCRIPT_FLAG_NO_WRITES), ("allow-oom", SCRIPT_FLAG_ALLOW_OOM),
                ("allow-stale", SCRIPT_FLAG_ALLOW_STALE), ("no-cluster", SCRIPT_FLAG_NO_CLUSTER),
                ("allow-cross-slot-keys", SCRIPT_FLAG_ALLOW_CROSS_SLOT))
# Commands Redis flags may_replicate: a read-only script may not call them either.
_MAY_REPLICATE = {b"publish", b"spublish", b"pfcount"}
MAX_REPLY_DEPTH = 64
REDIS_VERSION = "7.0.15"
REDIS_VERSION_NUM = 0x07000f


# ---- Lua values -> RESP ----------------------------------------------------

def _null(resp):
    return b"$-1\r\n" if resp == 2 else b"_\r\n"


def _clean(b):
    return b.replace(b"\r", b" ").replace(b"\n", b" ")


def _error_unit(msg):
    """An error reply written as given (Redis's addReplyErrorFormat("-%s"))."""
    msg = _clean(msg)
    server.count_error_reply(msg.split(b" ", 1)[0].lstrip(b"-").decode("latin-1") or "ERR")
    return b"-" + msg + b"\r\n"


def _integer(v):
    if v != v or v in (float("inf"), float("-inf")) or not -2 ** 63 <= v < 2 ** 63:
        return LLONG_MIN
    return int(v)


def _double(v, resp):
    if v != v:
        s = b"nan"
    elif v in (float("inf"), float("-inf")):
        s = b"inf" if v > 0 else b"-inf"
    else:
        s = b"%.17g" % v
    return b"$%d\r\n%s\r\n" % (len(s), s) if resp == 2 else b",%s\r\n" % s


def _bool(v, resp, script_resp):
    """Redis 7.0: a script in RESP2 (the default) answers true as 1 and false
    as null; one that called redis.setresp(3) answers booleans (0/1 in RESP2)."""
    if script_resp == 2:
        return b":1\r\n" if v else _null(resp)
    if resp == 2:
        return b":1\r\n" if v else b":0\r\n"
    return b"#t\r\n" if v else b"#f\r\n"


def lua_to_resp(v, resp, out, depth=0, script_resp=2):
    """Append the RESP encoding of a converted Lua value to the list `out`.

    resp: the client's protocol; script_resp: the script's (redis.setresp).
    """
    if isinstance(v, bytes):
        out.append(b"$%d\r\n%s\r\n" % (len(v), v))
    elif isinstance(v, bool):
        out.append(_bool(v, resp, script_resp))
    elif isinstance(v, (int, float)):
        out.append(b":%d\r\n" % _integer(v))
    elif isinstance(v, dict):
        if depth >= MAX_REPLY_DEPTH:
            out.append(_error_unit(b"ERR reached lua stack limit"))
        else:
            _table_to_resp(v, resp, out, depth, script_resp)
    else:
        out.append(_null(resp))


def _table_to_resp(t, resp, out, depth, script_resp):
    err = t.get(b"err")
    if isinstance(err, bytes):
        out.append(_error_unit(err))
        return
    ok = t.get(b"ok")
    if isinstance(ok, bytes):
        out.append(b"+" + _clean(ok) + b"\r\n")
        return
    d = t.get(b"double")
    if isinstance(d, (int, float)) and not isinstance(d, bool):
        out.append(_double(float(d), resp))
        return
    big = t.get(b"big_number")
    if isinstance(big, bytes):
        big = _clean(big)
        out.append(b"$%d\r\n%s\r\n" % (len(big), big) if resp == 2 else b"(" + big + b"\r\n")
        return
    verb = t.get(b"verbatim_string")
    if isinstance(verb, dict) and isinstance(verb.get(b"format"), bytes) and \
            isinstance(verb.get(b"string"), bytes):
        s = verb[b"string"]
        if resp == 2:
            out.append(b"$%d\r\n%s\r\n" % (len(s), s))
        else:
            out.append(b"=%d\r\n%s:%s\r\n" % (len(s) + 4, verb[b"format"][:3], s))
        return
    m = t.get(b"map")
    if isinstance(m, dict):
        out.append(b"*%d\r\n" % (2 * len(m)) if resp == 2 else b"%%%d\r\n" % len(m))
        for k, v in m.items():
            lua_to_resp(k, resp, out, depth + 1, script_resp)
            lua_to_resp(v, resp, out, depth + 1, script_resp)
        return
    s = t.get(b"set")
    if isinstance(s, dict):
        out.append(b"*%d\r\n" % len(s) if resp == 2 else b"~%d\r\n" % len(s))
        for k in s:
            lua_to_resp(k, resp, out, depth + 1, script_resp)
        return
    items = []
    j = 1
    while j in t:
        items.append(t[j])
        j += 1
    out.append(b"*%d\r\n" % len(items))
    for v in items:
        lua_to_resp(v, resp, out, depth + 1, script_resp)


def reply_value(c, v, script_resp=2):
    """Reply to c with a converted Lua value, as one unit."""
    out = []
    lua_to_resp(v, c.resp, out, 0, script_resp)
    c.add_reply(b"".join(out))


def error_text(res, sha=None):
    """The error reply text (without "-") of a failed call."""
    msg = res.error.encode("utf-8", "replace")
    if not res.raw:
        msg = b"ERR " + msg
    if sha and res.source and res.line:
        msg += b" script: %s, on %s:%d." % (sha.encode(), res.source.encode("utf-8", "replace"),
                                           res.line)
    return msg


def reply_result(c, res, sha=None, script_resp=2):
    """Reply to c with what a call into Lua produced (value or error)."""
    if res.ok:
        reply_value(c, res.value, script_resp)
    else:
        c.add_reply(_error_unit(error_text(res, sha)))


# ---- RESP -> Lua values (the replies of redis.call) -------------------------

def parse_reply(buf, pos=0):
    """(value, next position) of the RESP reply at buf[pos:], converted for Lua."""
    end = buf.index(b"\r\n", pos)
    t = buf[pos:pos + 1]
    line = bytes(buf[pos + 1:end])
    pos = end + 2
    if t == b"+":
        return {b"ok": line}, pos
    if t == b"-":
        return {b"err": line}, pos
    if t == b":":
        return int(line), pos
    if t in (b"$", b"=", b"!"):
        n = int(line)
        if n < 0:
            return False, pos
        data = bytes(buf[pos:pos + n])
        if t == b"=":
            data = {b"verbatim_string": {b"format": data[:3], b"string": data[4:]}}
        elif t == b"!":
            data = push_error(b"-" + data)
        return data, pos + n + 2
    if t in (b"*", b">"):
        n = int(line)
        if n < 0:
            return False, pos
        items = []
        for _ in range(n):
            v, pos = parse_reply(buf, pos)
            items.append(v)
        return items, pos
    if t == b"~":
        members = {}
        for _ in range(int(line)):
            k, pos = parse_reply(buf, pos)
            members[k if not isinstance(k, list) else tuple(k)] = True
        return {b"set": members}, pos
    if t == b"%":
        n = int(line)
        m = {}
        for _ in range(n):
            k, pos = parse_reply(buf, pos)
            v, pos = parse_reply(buf, pos)
            m[k if not isinstance(k, list) else tuple(k)] = v
        return {b"map": m}, pos
    if t == b"|":
        # Attributes are not shown to scripts: skip them, convert what follows.
        for _ in range(2 * int(line)):
            pos = parse_reply(buf, pos)[1]
        return parse_reply(buf, pos)
    if t == b"_":
        return None, pos
    if t == b"#":
        return line == b"t", pos
    if t == b",":
        return {b"double": float(line)}, pos
    if t == b"(":
        return {b"big_number": line}, pos
    raise ValueError("unexpected reply type %r" % t)


# ---- running server commands from Lua ----------------------------------------

# Commands that would attach the fake client to something that outlives
# the call (subscriptions), besides the ones flagged CMD_NOSCRIPT.
_NOT_FROM_SCRIPT = {b"subscribe", b"psubscribe", b"unsubscribe", b"punsubscribe",
                    b"ssubscribe", b"sunsubscribe", b"quit", b"reset"}

_fake_clients = []


def _caller_db():
    c = server.lua.client if server.lua is not None else None
    return c.db if c is not None else server.db[0]


def execute_from_lua(argv, resp=2):
    """Run argv as a command of a script speaking RESP `resp`; the reply bytes."""
    cmd = server.lookup_command(argv)
    if cmd is None or cmd.proc is None and cmd.subcommands is None:
        return b"-ERR Unknown Redis command called from script\r\n"
    argc = len(argv)
    if (cmd.arity > 0 and cmd.arity != argc) or argc < -cmd.arity or cmd.proc is None:
        cmd.rejected_calls += 1
        return b"-ERR Wrong number of args calling Redis command from script\r\n"
    if cmd.flags & CMD_NOSCRIPT or argv[0].lower() in _NOT_FROM_SCRIPT:
        cmd.rejected_calls += 1
        return b"-ERR This Redis command is not allowed from script\r\n"
    caller = server.lua.client if server.lua is not None else None
    user = caller.user if caller is not None else SERVER_USER
    if user.restricted:
        # A script runs with its caller's rights (scriptVerifyACL).
        err = script_denied_error(user, cmd, argv, caller or server.current_client)
        if err is not None:
            cmd.rejected_calls += 1
            return b"-ERR %s\r\n" % err.encode()
    if cmd.flags & CMD_WRITE or ScriptRun.read_only:
        if ScriptRun.read_only and (cmd.flags & CMD_WRITE or argv[0].lower() in _MAY_REPLICATE):
            cmd.rejected_calls += 1
            server.count_error_reply("ERR")
            return RO_SCRIPT_ERR
        if cmd.flags & CMD_WRITE:
            ScriptRun.write_dirty = True   # from now on, SCRIPT/FUNCTION KILL refuse
    c = _fake_clients.pop() if _fake_clients else create_fake_client()
    try:
        c.flags = CLIENT_SCRIPT | CLIENT_DENY_BLOCKING
        c.resp = resp
        c.user = user
        c.db = _caller_db()
        prev, server.current_client = server.current_client, c
        try:
            server.process_command(c, argv)
        finally:
            server.current_client = prev
        reply = bytes(c.buf)
    finally:
        c.buf = bytearray()
        c.argv = None
        _fake_clients.append(c)
    return reply


def push_error(text):
    """Redis's luaPushErrorBuff: "-CODE msg" or "msg" -> {err="CODE msg"}."""
    if text.startswith(b"-"):
        code, sep, msg = text[1:].partition(b" ")
        if not sep:
            code, msg = b"ERR", text[1:]
    else:
        code, msg = b"ERR", text
    return {b"err": code + b" " + msg.strip(b"\r\n")}


def call_from_lua(argv, raise_error, resp=2):
    reply = execute_from_lua(argv, resp)
    if reply[:1] == b"-":
        err = push_error(reply.rstrip(b"\r\n"))
        if raise_error:
            raise LuaRaise(err)
        return err
    if not reply:
        return None
    return parse_reply(reply)[0]


# ---- the redis.* table ------------------------------------------------------
#
# Each function returns its Lua value or raises LuaRaise(error value): they
# are installed with add_c_function, so they are C functions to Lua.

class ScriptRun:
    """The running EVAL or FCALL (Redis's scriptRunCtx).

    resp: the protocol redis.call speaks (None: no script runs); read_only:
    write commands are refused (a no-writes script, *_RO); write_dirty: it
    has written, so it can no longer be killed.
    """
    resp = None
    read_only = False
    write_dirty = False

    @classmethod
    def start(cls, read_only):
        saved = (cls.resp, cls.read_only, cls.write_dirty)
        cls.resp, cls.read_only, cls.write_dirty = 2, read_only, False  # each run starts in RESP2
        return saved

    @classmethod
    def restore(cls, saved):
        cls.resp, cls.read_only, cls.write_dirty = saved


def prepare_for_run(c, script_flags, ro):
    """Redis's scriptPrepareForRun checks: True, or False after replying the error.

    sakerd has no replicas, cluster nor maxmemory: of its checks only the
    write flag against *_RO commands applies.
    """
    if not script_flags & (SCRIPT_FLAG_EVAL_COMPAT_MODE | SCRIPT_FLAG_NO_WRITES) and ro:
        c.add_reply_error(RO_COMMAND_ERR)
        return False
    return True


def run_is_read_only(script_flags, ro):
    return ro or (not script_flags & SCRIPT_FLAG_EVAL_COMPAT_MODE and
                  bool(script_flags & SCRIPT_FLAG_NO_WRITES))


def script_kill(c, is_eval):
    """SCRIPT KILL (is_eval) and FUNCTION KILL: Redis's scriptKill.

    SCRIPT KILL also stops sakerd's tasks and plugin commands; FUNCTION
    KILL stops functions only.
    """
    bridge = server.lua
    if bridge.depth == 0:
        c.add_reply_error(NOTBUSY_ERR)
        return
    kind = bridge.kind
    if kind in (KIND_EVAL, KIND_FUNCTION) and ScriptRun.write_dirty:
        c.add_reply_error(UNKILLABLE_ERR)
        return
    if is_eval and kind == KIND_FUNCTION:
        c.add_reply_error(BUSY_FUNCTION_ERR)
        return
    if not is_eval and kind != KIND_FUNCTION:
        c.add_reply_error(BUSY_EVAL_ERR)
        return
    bridge.kill()
    c.add_reply(b"+OK\r\n")


def _redis_raise(text):
    raise LuaRaise(push_error(text))


def _redis_argv(args):
    """Redis's luaArgsToRedisArgv: strings and numbers, else an error."""
    if not args:
        return None, b"Please specify at least one argument for this redis lib call"
    argv = []
    for a in args:
        if isinstance(a, bytes):
            argv.append(a)
        elif isinstance(a, (int, float)) and not isinstance(a, bool):
            argv.append(_number_text(a))
        else:
            return None, b"Lua redis lib command arguments must be strings or integers"
    return argv, None


def _redis_generic(raise_error):
    def entry(*args):
        argv, err = _redis_argv(args)
        if argv is None:
            if raise_error:
                _redis_raise(err)
            return server.lua.to_lua(push_error(err))
        return server.lua.to_lua(call_from_lua(argv, raise_error, ScriptRun.resp or 2))
    return entry


def _lua_tonumber(v):
    """Lua's lua_tonumber: a number, a numeric string's value, else 0."""
    if isinstance(v, bool) or v is None:
        return 0
    if isinstance(v, (int, float)):
        return v
    if isinstance(v, bytes):
        text = v.strip()
        try:
            return float(text)
        except ValueError:
            try:
                return int(text, 16) if text.lower().startswith((b"0x", b"-0x")) else 0
            except ValueError:
                return 0
    return 0


def redis_setresp(*args):
    if ScriptRun.resp is None:
        _redis_raise(b"redis.setresp can only be called inside a script invocation")
    if len(args) != 1:
        _redis_raise(b"redis.setresp() requires one argument.")
    n = _lua_tonumber(args[0])
    resp = int(n) if n == n and abs(n) < 2 ** 31 else 0   # C's (int) cast
    if resp not in (2, 3):
        _redis_raise(b"RESP version must be 2 or 3.")
    ScriptRun.resp = resp


def redis_sha1hex(*args):
    if len(args) != 1:
        _redis_raise(b"wrong number of arguments")
    s = args[0]
    if isinstance(s, (int, float)) and not isinstance(s, bool):
        s = _number_text(s)
    elif not isinstance(s, bytes):
        s = b""
    return hashlib.sha1(s).hexdigest().encode()


def redis_error_reply(*args):
    if len(args) != 1 or not isinstance(args[0], bytes):
        return server.lua.to_lua(push_error(b"wrong number or type of arguments"))
    text = args[0] if args[0].startswith(b"-") else b"-" + args[0]
    return server.lua.to_lua(push_error(text))


def redis_status_reply(*args):
    if len(args) != 1 or not isinstance(args[0], bytes):
        return server.lua.to_lua(push_error(b"wrong number or type of arguments"))
    return server.lua.to_lua({b"ok": args[0]})


def redis_log(*args):
    if len(args) < 2:
        _redis_raise(b"redis.log() requires two arguments or more.")
    level = args[0]
    if isinstance(level, bytes):
        try:
            level = float(level)
        except ValueError:
            level = None
    if not isinstance(level, (int, float)) or isinstance(level, bool):
        _redis_raise(b"First argument must be a number (log level).")
    level = int(level)
    if not LL_DEBUG <= level <= LL_WARNING:
        _redis_raise(b"Invalid debug level.")
    parts = []
    for a in args[1:]:
        if isinstance(a, bytes):
            parts.append(a)
        elif isinstance(a, (int, float)) and not isinstance(a, bool):
            parts.append(_number_text(a))
    log_from(level, server.lua.where(), b" ".join(parts).decode("utf-8", "replace"))


def install_redis_table(bridge):
    bridge.add_c_function("redis", "call", _redis_generic(True))
    bridge.add_c_function("redis", "pcall", _redis_generic(False))
    bridge.add_c_function("redis", "setresp", redis_setresp)
    bridge.add_c_function("redis", "sha1hex", redis_sha1hex)
    bridge.add_c_function("redis", "error_reply", redis_error_reply)
    bridge.add_c_function("redis", "status_reply", redis_status_reply)
    bridge.add_c_function("redis", "log", redis_log)
    bridge.add_c_function("redis", "replicate_commands", lambda *a: True)
    for name, value in (("LOG_DEBUG", 0), ("LOG_VERBOSE", 1), ("LOG_NOTICE", 2),
                        ("LOG_WARNING", 3), ("REDIS_VERSION", REDIS_VERSION.encode()),
                        ("REDIS_VERSION_NUM", REDIS_VERSION_NUM)):
        bridge.set_constant("redis", name, value)


# ---- saker.* functions of this module ------------------------------------------

@saker_api("call", "bytes", "bytes...")
def saker_call(*argv):
    """saker.call(cmd, ...): the command's reply; its error is raised."""
    return call_from_lua(list(argv), True)


@saker_api("pcall", "bytes", "bytes...")
def saker_pcall(*argv):
    """saker.pcall(cmd, ...): the command's reply, or {err=...}."""
    return call_from_lua(list(argv), False)


@saker_api("log", "string", "string...")
def saker_log(level, *parts):
    lvl = LEVEL_BY_NAME.get(level.lower())
    if lvl is None:
        raise ArgError(1, "invalid log level '%s' (debug, verbose, notice or warning)" % level)
    log_from(lvl, server.lua.where(), " ".join(parts))


@saker_api("publish", "bytes", "bytes")
def saker_publish(channel, message):
    from .pubsub import publish
    return publish(channel, message)


@saker_api("time")
def saker_time():
    """Wall-clock seconds (a float with microsecond resolution)."""
    return time.time()


@saker_api("hostname")
def saker_hostname():
    return socket.gethostname()


# ---- EVAL, EVALSHA, SCRIPT ----------------------------------------------------------

def _eval_owner():
    return server.tasks.eval_owner if server.tasks is not None else None


def extract_shebang_flags(body):
    """Redis's evalExtractShebangFlags: (flags, shebang length, None) or (.., error)."""
    if not body.startswith(b"#!"):
        return SCRIPT_FLAG_EVAL_COMPAT_MODE, 0, None
    end = body.find(b"\n")
    if end == -1:
        return 0, 0, "Invalid script shebang"
    parts = split_args(body[:end])
    if not parts:
        return 0, 0, "Invalid engine in script shebang"
    if parts[0] != b"#!lua":
        return 0, 0, "Unexpected engine in script shebang: %s" % _text(parts[0])
    flags = 0
    for part in parts[1:]:
        if not part.startswith(b"flags="):
            return 0, 0, "Unknown lua shebang option: %s" % _text(part)
        flags, err = parse_flag_list(part[6:], flags)
        if err:
            return 0, 0, err
    return flags, end, None


def parse_flag_list(text, flags):
    """"no-writes,allow-oom" (case-sensitive, as Redis's strcmp) -> flags, or an error."""
    if not text:
        return flags, None
    for name in text.split(b","):
        for fname, bit in SCRIPT_FLAGS:
            if name == fname.encode():
                flags |= bit
                break
        else:
            return flags, "Unexpected flag in script shebang: %s" % _text(name)
    return flags, None


def _text(b):
    return b.decode("utf-8", "surrogateescape")


class ScriptsMemory:
    """used_memory_scripts_eval: the cached scripts' bodies and shas (lua_scripts_mem)."""
    bytes = 0


def scripts_memory():
    return ScriptsMemory.bytes


def create_script(body):
    """Redis's luaCreateFunction: (sha, None) or (None, the error reply text)."""
    bridge = server.lua
    sha = hashlib.sha1(body).hexdigest()
    if sha in bridge.scripts:
        return sha, None
    flags, skip, err = extract_shebang_flags(body)
    if err:
        return None, err.encode("utf-8", "surrogateescape")
    sha, err = bridge.compile_script(body, skip, flags)
    if sha is None:
        return None, ("Error compiling script (new function): %s" % err).encode(
            "utf-8", "surrogateescape")
    ScriptsMemory.bytes += len(body) + len(sha)
    return sha, None


def feed_monitors(c):
    """EVAL and FCALL are skip_monitor: fed here, before the commands they run
    (Redis's evalCommand), so MONITOR shows the script first."""
    if server.monitors:
        from .networking import monitor_feed
        monitor_feed(c, c.argv)


def get_numkeys(c, not_a_number):
    """argv[2] of EVAL or FCALL as a number of keys, or None after replying the error."""
    argv = c.argv
    numkeys = string2ll(argv[2])
    if numkeys is None:
        c.add_reply_error(not_a_number)
    elif numkeys > len(argv) - 3:
        c.add_reply_error("Number of keys can't be greater than number of args")
    elif numkeys < 0:
        c.add_reply_error("Number of keys can't be negative")
    else:
        return numkeys
    return None


def eval_generic(c, evalsha, ro=False):
    argv = c.argv
    numkeys = get_numkeys(c, "value is not an integer or out of range")
    if numkeys is None:
        return
    bridge = server.lua
    if evalsha:
        sha = argv[1].decode("latin-1").lower()
        if sha not in bridge.scripts:
            c.add_reply_error(NOSCRIPT_ERR)
            return
    else:
        sha, err = create_script(argv[1])
        if sha is None:
            c.add_reply_error(err)
            return
    flags = bridge.scripts[sha]
    if not prepare_for_run(c, flags, ro):
        return
    keys = argv[3:3 + numkeys]
    args = argv[3 + numkeys:]
    saved = ScriptRun.start(run_is_read_only(flags, ro))
    try:
        res = bridge.eval_script(sha, keys, args, client=c, owner=_eval_owner())
        reply_result(c, res, sha, ScriptRun.resp)
    finally:
        ScriptRun.restore(saved)


def eval_command(c, ro=False):
    feed_monitors(c)
    eval_generic(c, False, ro)


def eval_ro_command(c):
    eval_command(c, True)


def evalsha_command(c, ro=False):
    feed_monitors(c)
    if len(c.argv[1]) != 40:
        c.add_reply_error(NOSCRIPT_ERR)
        return
    eval_generic(c, True, ro)


def evalsha_ro_command(c):
    evalsha_command(c, True)


def script_load_command(c):
    sha, err = create_script(c.argv[2])
    if sha is None:
        c.add_reply_error(err)
        return
    c.add_reply_bulk(sha.encode())


def script_exists_command(c):
    scripts = server.lua.scripts
    c.add_reply(b"*%d\r\n" % (len(c.argv) - 2) + b"".join(
        b":1\r\n" if a.decode("latin-1").lower() in scripts else b":0\r\n" for a in c.argv[2:]))


def script_flush_command(c):
    argv = c.argv
    if len(argv) > 3 or len(argv) == 3 and argv[2].lower() not in (b"sync", b"async"):
        c.add_reply_error("SCRIPT FLUSH only support SYNC|ASYNC option")
        return
    server.lua.flush_scripts()
    ScriptsMemory.bytes = 0
    c.add_reply(b"+OK\r\n")


def script_kill_command(c):
    script_kill(c, True)


def script_help_command(c):
    c.add_reply_help("SCRIPT", [
        "EXISTS <sha1> [<sha1> ...]",
        "    Return information about the existence of the scripts in the script cache.",
        "FLUSH [ASYNC|SYNC]",
        "    Flush the Lua scripts cache.",
        "KILL",
        "    Kill the currently executing Lua script (or Lua task or plugin command).",
        "LOAD <script>",
        "    Load a script into the scripts cache without executing it."])


def _script_container():
    grp = "scripting"
    cmd = Command("script", None, -2, CMD_NOSCRIPT, group=grp)
    for sub in (
            Command("load", script_load_command, 3, CMD_NOSCRIPT, group=grp,
                    summary="Load the specified Lua script into the script cache."),
            Command("exists", script_exists_command, -3, CMD_NOSCRIPT, group=grp,
                    summary="Check existence of scripts in the script cache."),
            Command("flush", script_flush_command, -2, CMD_NOSCRIPT, group=grp,
                    summary="Remove all the scripts from the script cache."),
            Command("kill", script_kill_command, 2, CMD_NOSCRIPT | CMD_ALLOW_BUSY, group=grp,
                    summary="Kill the script currently in execution."),
            Command("help", script_help_command, 2, CMD_NOSCRIPT, group=grp,
                    summary="Show helpful text about the different subcommands")):
        cmd.add_subcommand(sub)
    return cmd


# Redis's flags of EVAL & co: noscript stale skip_monitor (no_mandatory_keys movablekeys).
_EVAL_FLAGS = CMD_NOSCRIPT | CMD_STALE | CMD_SKIP_MONITOR

COMMANDS = [
    Command("eval", eval_command, -3, _EVAL_FLAGS, group="scripting",
            summary="Execute a Lua script server side"),
    Command("eval_ro", eval_ro_command, -3, _EVAL_FLAGS | CMD_READONLY, group="scripting",
            summary="Execute a read-only Lua script server side"),
    Command("evalsha", evalsha_command, -3, _EVAL_FLAGS, group="scripting",
            summary="Execute a Lua script server side"),
    Command("evalsha_ro", evalsha_ro_command, -3, _EVAL_FLAGS | CMD_READONLY, group="scripting",
            summary="Execute a read-only Lua script server side"),
    _script_container(),
]


# ---- INFO lua -----------------------------------------------------------------

def section_lua():
    b = server.lua
    if b is None:
        return []
    heap = b.memory_used()
    return [
        ("lua_version", b.version_string()),
        ("used_memory_lua", heap),
        ("used_memory_lua_human", bytes_to_human(heap)),
        ("lua_registry_size", b.registry_size()),
        ("lua_calls", b.calls),
        ("lua_errors", b.errors),
        ("lua_timeouts", b.timeouts),
        ("number_of_cached_scripts", len(b.scripts)),
        ("lua_gc_steps", b.gc_steps),
        ("lua_debug_checks", 1 if b.config.lua_debug_checks else 0),
        ("lua_debug_leaks", b.debug_leaks),
    ]


info.register_section("lua", "Lua", section_lua)
