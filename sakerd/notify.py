"""Keyspace notifications (Redis's notify.c): __keyspace@<db>__ and __keyevent@<db>__.

Write commands call notify_keyspace_event(type, event, key, dbid) once per
event, with the event names Redis emits; `notify-keyspace-events` selects
which types are published.
"""

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
NOTIFY_KEY_MISS = 1 << 11   # m
NOTIFY_LOADED = 1 << 12     # module only
NOTIFY_MODULE = 1 << 13     # d
NOTIFY_NEW = 1 << 14        # n


def notify_keyspace_event(type, event, key, dbid):
    """Publish event (bytes, e.g. b"set") about key in db dbid if enabled."""
