"""Keyspace notifications (Redis's notify.c): __keyspace@<db>__ and __keyevent@<db>__.

Write commands call notify_keyspace_event(type, event, key, dbid) once per
event, with the event names Redis emits and in Redis's order (as in its
t_*.c, db.c and expire.c); `notify-keyspace-events` selects which classes
are published. The selected classes live in server.notify_keyspace_events
(an int of NOTIFY_* bits, 0 when off): a command's hot path tests it once
and takes its general path, the one that notifies, only when it is set.

Each event is published like any PUBLISH, while the command runs: a
subscriber that also wrote the key (RESP3) sees the event before the
command's reply, as in Redis.
"""

from .server_h import server

# Event classes, as Redis's NOTIFY_* flags.
NOTIFY_KEYSPACE = 1 << 0    # K
NOTIFY_KEYEVENT = 1 << 1    # E
NOTIFY_GENERIC = 1 << 2     # g
NOTIFY_STRING = 1 << 3      # $
NOTIFY_LIST = 1 << 4        # l
NOTIFY_SET = 1 << 5         # s
NOTIFY_HASH = 1 << 6        # h
NOTIFY_ZSET = 1 << 7        # z
NOTIFY_EXPIRED = 1 << 8     # x
NOTIFY_EVICTED = 1 << 9     # e
NOTIFY_STREAM = 1 << 10     # t
NOTIFY_KEY_MISS = 1 << 11   # m (not part of A, on purpose)
NOTIFY_LOADED = 1 << 12     # module only
NOTIFY_MODULE = 1 << 13     # d
NOTIFY_NEW = 1 << 14        # n (not part of A)
NOTIFY_ALL = (NOTIFY_GENERIC | NOTIFY_STRING | NOTIFY_LIST | NOTIFY_SET | NOTIFY_HASH |
              NOTIFY_ZSET | NOTIFY_EXPIRED | NOTIFY_EVICTED | NOTIFY_STREAM | NOTIFY_MODULE)

_LETTERS = {"A": NOTIFY_ALL, "g": NOTIFY_GENERIC, "$": NOTIFY_STRING, "l": NOTIFY_LIST,
            "s": NOTIFY_SET, "h": NOTIFY_HASH, "z": NOTIFY_ZSET, "x": NOTIFY_EXPIRED,
            "e": NOTIFY_EVICTED, "K": NOTIFY_KEYSPACE, "E": NOTIFY_KEYEVENT,
            "t": NOTIFY_STREAM, "m": NOTIFY_KEY_MISS, "d": NOTIFY_MODULE, "n": NOTIFY_NEW}
# The class letters in the order keyspaceEventsFlagsToString() writes them.
_CLASS_ORDER = "g$lshzxetdn"


def keyspace_events_string_to_flags(classes):
    """"KEA" -> flags; ValueError with Redis's CONFIG SET text for a bad letter."""
    flags = 0
    for ch in classes:
        bit = _LETTERS.get(ch)
        if bit is None:
            raise ValueError("Invalid event class character. Use 'Ag$lshzxeKEtmdn'.")
        flags |= bit
    return flags


def keyspace_events_flags_to_string(flags):
    """The reverse, as CONFIG GET shows it: "A" for all classes, then K E m."""
    if flags & NOTIFY_ALL == NOTIFY_ALL:
        out = "A"       # Redis drops n here: "AnKE" reads back as "AKE"
    else:
        out = "".join(ch for ch in _CLASS_ORDER if flags & _LETTERS[ch])
    if flags & NOTIFY_KEYSPACE:
        out += "K"
    if flags & NOTIFY_KEYEVENT:
        out += "E"
    if flags & NOTIFY_KEY_MISS:
        out += "m"
    return out


def notify_keyspace_event(type, event, key, dbid):
    """Publish event (bytes, e.g. b"set") about key in db dbid if enabled."""
    flags = server.notify_keyspace_events
    if not flags & type:
        return
    from .pubsub import publish
    if flags & NOTIFY_KEYSPACE:
        publish(b"__keyspace@%d__:%s" % (dbid, key), event)
    if flags & NOTIFY_KEYEVENT:
        publish(b"__keyevent@%d__:%s" % (dbid, event), key)
