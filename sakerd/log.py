"""Logging: Redis-like log lines to stdout or `logfile`, and to the log channel.

Format: ``[YYYY-MM-DD HH:MM:SS.mmm] [LEVEL] [module:line] text``. Each line
is also published to `log-channel` through `publish_hook` and appended to
`log-stream` through `stream_hook`, unless the line was itself caused by
publishing or appending a log line (a guard flag breaks the cycle: a log
line written meanwhile is written to the file only).
"""

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
    f = sys._getframe(1)
    module = os.path.splitext(os.path.basename(f.f_code.co_filename))[0]
    _write(text, level, module, f.f_lineno)


def log_from(level, where, text):
    """Log with an explicit origin (a Lua plugin's file:line)."""
    if level < state.verbosity:
        return
    module, _, lineno = where.rpartition(":")
    _write(text, level, module or where, int(lineno) if lineno.isdigit() else 0)
