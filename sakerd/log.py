"""Logging: Redis-like log lines to stdout or `logfile`, and to the log channel.

Format: ``[YYYY-MM-DD HH:MM:SS.mmm] [LEVEL] [module:line] text``. Each line
is also published to `log-channel` through `publish_hook` and appended to
`log-stream` through `stream_hook`, unless the line was itself caused by
publishing or appending a log line (a guard flag breaks the cycle: a log
line written meanwhile is written to the file only).

Who called log(), in both builds. log() names its caller's module and line
from ``sys._getframe(1)``. A function compiled by Cython (the modules with a
.pxd, sakerd/compiled.py) has no Python frame: ``sys._getframe(1)`` is then
the nearest *Python* function up the stack, some way away from the call. So
log() also knows where the compiled modules call it: on the first log line
after a compiled sakerd module is imported it reads that module's .py (the
one source of the compiled code, installed beside it) and records the line
of every ``log(level, "literal format", ...)`` call, by format. A call whose
format is one of those, and that the frame's own line does not make, comes
from compiled code and is named by that record. Nothing of this runs on the
path that does not log (the level test comes first), and in the pure build
the record is empty. Hence, in a module with a .pxd, log() takes a literal
format that no other log() call of a compiled module uses
(tests/test_build.py checks it).
"""

import ast
import importlib.machinery
import os
import sys
import time

from . import safefile

LL_DEBUG = 0
LL_VERBOSE = 1
LL_NOTICE = 2
LL_WARNING = 3
LL_RAW = 1 << 10

LEVEL_NAMES = {LL_DEBUG: "DEBUG", LL_VERBOSE: "VERBOSE", LL_NOTICE: "NOTICE", LL_WARNING: "WARNING"}
LEVEL_BY_NAME = {"debug": LL_DEBUG, "verbose": LL_VERBOSE, "notice": LL_NOTICE, "warning": LL_WARNING}


class _State:
    verbosity = LL_NOTICE
    logfile = ""           # "" = stdout
    stream = None
    publish_hook = None    # fn(line: str), set by the pub/sub layer
    stream_hook = None     # fn(level, module, lineno, text), set by history.py
    publishing = False
    syslog_ident = "sakerd"


state = _State()


def setup(logfile, level):
    state.logfile = logfile or ""
    state.verbosity = LEVEL_BY_NAME.get(level, LL_NOTICE)
    reopen()


def set_level(level):
    state.verbosity = LEVEL_BY_NAME.get(level, LL_NOTICE)


def reopen():
    """Open (or reopen, on SIGHUP) the log file; stdout when none is set."""
    old = state.stream
    if state.logfile:
        try:
            # Appended to as root: never through a symlink (safefile).
            state.stream = os.fdopen(safefile.open_append(state.logfile), "a", buffering=1,
                                     encoding="utf-8", errors="backslashreplace")
        except OSError as e:
            state.stream = sys.stdout
            _write("Can't open the log file %s: %s" % (state.logfile, e.strerror), LL_WARNING,
                   "log", 0)
    else:
        state.stream = sys.stdout
    if old is not None and old is not sys.stdout and old is not state.stream:
        try:
            old.close()
        except OSError:
            pass


def format_line(level, where, text):
    now = time.time()
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now))
    return "[%s.%03d] [%s] [%s] %s" % (stamp, int(now * 1000) % 1000,
                                       LEVEL_NAMES.get(level, "NOTICE"), where, text)


def _write(text, level, module, lineno):
    line = format_line(level, "%s:%d" % (module, lineno), text)
    stream = state.stream or sys.stdout
    try:
        stream.write(line + "\n")
        stream.flush()
    except (OSError, ValueError):
        pass
    hook = state.publish_hook
    stream_hook = state.stream_hook
    if (hook is not None or stream_hook is not None) and not state.publishing:
        state.publishing = True
        try:
            if hook is not None:
                hook(line)
            if stream_hook is not None:
                stream_hook(level, module, lineno, text)
        finally:
            state.publishing = False


def log(level, fmt, *args):
    """serverLog(): log at `level` if it passes the configured verbosity."""
    if level < state.verbosity:
        return
    text = fmt % args if args else fmt
    module, lineno = _caller(sys._getframe(1), fmt)
    _write(text, level, module, lineno)


def _caller(frame, fmt):
    """(module, line) of the log() call with `fmt` whose nearest Python frame is `frame`."""
    filename = frame.f_code.co_filename
    lineno = frame.f_lineno
    compiled = _compiled_log_calls().get(fmt)
    if compiled is not None and not _calls_log_at(filename, lineno, fmt):
        return compiled
    return os.path.splitext(os.path.basename(filename))[0], lineno


class _LogCalls:
    sources = {}           # .py path -> {fmt: [(first line, last line)]} of its log() calls
    compiled = {}          # fmt -> (module, line) in the compiled sakerd modules
    compiled_seen = set()  # names of the compiled modules read into `compiled`
    modules_seen = 0       # len(sys.modules) when `compiled` was last brought up to date


def _log_calls_in(path):
    """{fmt: [(first line, last line)]} of the log(level, "fmt", ...) calls in a .py file."""
    calls = _LogCalls.sources.get(path)
    if calls is None:
        calls = _LogCalls.sources[path] = {}
        try:
            with open(path, "rb") as f:
                tree = ast.parse(f.read(), path)
        except (OSError, SyntaxError, ValueError):
            return calls
        for node in ast.walk(tree):
            if (isinstance(node, ast.Call) and len(node.args) >= 2
                    and getattr(node.func, "id", getattr(node.func, "attr", None)) == "log"
                    and isinstance(node.args[1], ast.Constant)
                    and isinstance(node.args[1].value, str)):
                calls.setdefault(node.args[1].value, []).append((node.lineno, node.end_lineno))
    return calls


def _calls_log_at(path, lineno, fmt):
    return any(first <= lineno <= last for first, last in _log_calls_in(path).get(fmt, ()))


def _compiled_log_calls():
    """fmt -> (module, line) of the log() calls of the compiled sakerd modules imported."""
    if len(sys.modules) != _LogCalls.modules_seen:
        _LogCalls.modules_seen = len(sys.modules)
        for name, module in list(sys.modules.items()):
            if (name.startswith("sakerd.") and name not in _LogCalls.compiled_seen
                    and isinstance(getattr(module.__spec__, "loader", None),
                                   importlib.machinery.ExtensionFileLoader)):
                _LogCalls.compiled_seen.add(name)
                source = os.path.join(os.path.dirname(module.__file__),
                                      name.rpartition(".")[2] + ".py")
                for fmt, lines in _log_calls_in(source).items():
                    _LogCalls.compiled.setdefault(fmt, (name.rpartition(".")[2], lines[0][0]))
    return _LogCalls.compiled


def log_from(level, where, text):
    """Log with an explicit origin (a Lua plugin's file:line)."""
    if level < state.verbosity:
        return
    module, _, lineno = where.rpartition(":")
    _write(text, level, module or where, int(lineno) if lineno.isdigit() else 0)
