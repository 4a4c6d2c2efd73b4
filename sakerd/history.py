"""The daemon's history kept as streams: every log line in `log-stream`, every
lifecycle event in `event-stream` (both in db 0, approximately trimmed to
their -maxlen directives).

Pub/sub delivers a line at most once, to whoever listens at that moment;
the streams keep the last lines and events for whoever asks later
(`XREVRANGE saker:events + - COUNT 20`), to follow live (`XREAD BLOCK 0
STREAMS saker:log $`) or to consume at least once with a group.

The keys are ordinary keys: SCAN shows them, DEL removes them (the next
line or event creates them again), a key of another type makes the server
skip its appends. Appending never recurses: a log line written while a
line or an event is being appended (log.py's guard) goes to the log file
only, and an event raised while an event is appended is not appended.

Fields. A log line: level (debug verbose notice warning), module, line,
msg. An event: its JSON envelope's keys in order (type, ts, ...), strings
as they are, other values as JSON (1, 1.5, true, null, {...}).
"""

import json

from . import log as logmod
from .server_h import server

_LEVELS = {level: name.lower().encode() for level, name in logmod.LEVEL_NAMES.items()}


class _State:
    appending_event = False


_state = _State()


def _db0():
    return server.db[0] if server.db else None


def append_log_line(level, module, lineno, text):
    """log.state.stream_hook: one log line, one entry in `log-stream`."""
    cfg = server.config
    db = _db0()
    if cfg is None or not cfg.log_stream or db is None:
        return
    from .t_stream import append_entry
    append_entry(db, cfg.log_stream.encode("utf-8", "surrogateescape"),
                 (b"level", _LEVELS.get(level, b"notice"),
                  b"module", module.encode("utf-8", "backslashreplace"),
                  b"line", b"%d" % lineno,
                  b"msg", text.encode("utf-8", "backslashreplace")),
                 cfg.log_stream_maxlen)


def _field_value(v):
    if isinstance(v, str):
        return v.encode("utf-8", "backslashreplace")
    return json.dumps(v).encode()


def append_event(event):
    """One lifecycle event (its envelope dict), one entry in `event-stream`."""
    cfg = server.config
    db = _db0()
    if cfg is None or not cfg.event_stream or db is None or _state.appending_event:
        return
    from .t_stream import append_entry
    items = []
    for k, v in event.items():
        items.append(k.encode("utf-8", "backslashreplace"))
        items.append(_field_value(v))
    _state.appending_event = True
    # A log line written meanwhile goes to the file only (log.py's guard).
    was, logmod.state.publishing = logmod.state.publishing, True
    try:
        append_entry(db, cfg.event_stream.encode("utf-8", "surrogateescape"), tuple(items),
                     cfg.event_stream_maxlen)
    finally:
        logmod.state.publishing = was
        _state.appending_event = False


def init_history_streams():
    """Append every log line from now on (called by init_extensions)."""
    logmod.state.stream_hook = append_log_line
