"""Keyspace commands: DEL EXISTS KEYS SCAN TYPE RENAME and the expire
commands EXPIRE PEXPIRE EXPIREAT PEXPIREAT TTL PTTL PERSIST (Redis's db.c
and expire.c).

Expire times are absolute unix milliseconds (Db.expires). A key whose time
has passed is gone for every command: lookups expire it lazily, the cron
actively (db.databases_cron). EXPIRE with a time already in the past
deletes the key at once and answers 1, as Redis does on a master.
"""

import re
from collections import deque

from . import notify
from .blocked import scan_database_for_deleted_streams, scan_database_for_ready_keys
from .db import SCAN_POS_BITS, TYPE_NAMES, mstime, signal_modified_key
from .multi import touch_all_watched_keys_in_db
from .notify import notify_keyspace_event, NOTIFY_GENERIC
from .resp import string2ll, LLONG_MAX, LLONG_MIN
from .server_h import Command, server, CMD_FAST, CMD_READONLY, CMD_WRITE
from .util import string_match

NOT_INTEGER = "value is not an integer or out of range"
SYNTAX_ERR = "syntax error"
ULONG_MAX = (1 << 64) - 1

# Expire command flags (EXPIRE_NX... in expire.c).
EXPIRE_NX = 1 << 0
EXPIRE_XX = 1 << 1
EXPIRE_GT = 1 << 2
EXPIRE_LT = 1 << 3
_EXPIRE_FLAGS = {b"NX": EXPIRE_NX, b"XX": EXPIRE_XX, b"GT": EXPIRE_GT, b"LT": EXPIRE_LT}

_CURSOR = re.compile(rb"[+-]?[0-9]*\Z")


def type_name(v):
    return "none" if v is None else TYPE_NAMES[v.__class__]


# ---- DEL / EXISTS / TYPE --------------------------------------------------------

def del_command(c):
    db = c.db
    deleted = 0
    for key in c.argv[1:]:
        # An expired key is not counted as deleted.
        if db.lookup_write(key) is not None and db.delete(key):
            signal_modified_key(c, db, key)
            notify_keyspace_event(NOTIFY_GENERIC, b"del", key, db.id)
            deleted += 1
    c.add_reply_long_long(deleted)


def exists_command(c):
    lookup_read = c.db.lookup_read
    c.add_reply_long_long(sum(1 for key in c.argv[1:] if lookup_read(key) is not None))


def type_command(c):
    c.add_reply_status(type_name(c.db.lookup_read(c.argv[1])))


# ---- KEYS / SCAN ----------------------------------------------------------------

def keys_command(c):
    db = c.db
    pattern = c.argv[1]
    allkeys = pattern == b"*"
    keys = [key for key in db.dict
            if (allkeys or string_match(pattern, key)) and not db.key_is_expired(key)]
    c.add_reply_bulks(keys)


def parse_scan_cursor_or_reply(c, arg):
    """parseScanCursorOrReply(): strtoul()'s rules, or "invalid cursor"."""
    if not _CURSOR.match(arg) or arg in (b"+", b"-"):
        c.add_reply_error("invalid cursor")
        return None
    digits = arg.lstrip(b"+-")
    cursor = int(digits) if digits else 0
    if cursor > ULONG_MAX:
        c.add_reply_error("invalid cursor")
        return None
    if arg.startswith(b"-"):
        cursor = (-cursor) & ULONG_MAX    # strtoul negates in unsigned arithmetic
    return cursor


def scan_command(c):
    """SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]."""
    argv = c.argv
    cursor = parse_scan_cursor_or_reply(c, argv[1])
    if cursor is None:
        return
    count = 10
    pattern = typename = None
    i = 2
    while i < len(argv):
        opt = argv[i].lower()
        if i + 1 >= len(argv) or opt not in (b"count", b"match", b"type"):
            c.add_reply_error(SYNTAX_ERR)
            return
        if opt == b"count":
            count = string2ll(argv[i + 1])
            if count is None:
                c.add_reply_error(NOT_INTEGER)
                return
            if count < 1:
                c.add_reply_error(SYNTAX_ERR)
                return
        elif opt == b"match":
            # "*" matches everything: the same as no pattern.
            pattern = None if argv[i + 1] == b"*" else argv[i + 1]
        else:
            typename = argv[i + 1].decode("latin-1").lower()
        i += 2
    db = c.db
    cursor, keys = db.scan_keys(cursor, count)
    if pattern is not None:
        keys = [key for key in keys if string_match(pattern, key)]
    if typename is not None:
        keys = [key for key in keys if type_name(db.lookup_read(key)) == typename]
    keys = [key for key in keys if not db.expire_if_needed(key)]
    cursor = b"%d" % cursor
    c.add_reply(b"*2\r\n$%d\r\n%s\r\n" % (len(cursor), cursor))
    c.add_reply_bulks(keys)


# ---- SSCAN / HSCAN / ZSCAN ---------------------------------------------------------

# Walks of large collections, as db.scan_keys walks the keyspace: the first
# call snapshots the members, later calls walk the snapshot, skipping the
# members removed meanwhile. A cursor is (walk id << 32) | position.
COLLECTION_SCANS = {}
COLLECTION_SCANS_MAX = 16
_next_collection_scan = [1]


def parse_collection_scan_options(c):
    """scanGenericCommand()'s COUNT and MATCH: (count, pattern) or None."""
    argv = c.argv
    count = 10
    pattern = None
    i = 3
    while i < len(argv):
        opt = argv[i].lower()
        if opt == b"count" and len(argv) - i >= 2:
            count = string2ll(argv[i + 1])
            if count is None:
                c.add_reply_error(NOT_INTEGER)
                return None
            if count < 1:
                c.add_reply_error(SYNTAX_ERR)
                return None
        elif opt == b"match" and len(argv) - i >= 2:
            pattern = None if argv[i + 1] == b"*" else argv[i + 1]
        else:
            c.add_reply_error(SYNTAX_ERR)
            return None
        i += 2
    return count, pattern


def scan_generic_command(c, o, cursor, small, members, value_of):
    """SSCAN/HSCAN/ZSCAN over o, after its key was found.

    small: Redis keeps o in a compact encoding (intset, listpack), which it
    returns whole in one call with cursor 0. members() lists the members in
    Redis's order; value_of(member) gives the bytes that follow each member
    (field value, score), or value_of is None for sets.
    """
    options = parse_collection_scan_options(c)
    if options is None:
        return
    count, pattern = options
    if small:
        found = members()
        cursor = 0
    else:
        cursor, found = _collection_scan_step(o, cursor, count, members)
    if pattern is not None:
        found = [m for m in found if string_match(pattern, m)]
    if value_of is not None:
        found = [x for m in found for x in (m, value_of(m))]
    cursor = b"%d" % cursor
    c.add_reply(b"*2\r\n$%d\r\n%s\r\n" % (len(cursor), cursor))
    c.add_reply_bulks(found)


def _collection_scan_step(o, cursor, count, members):
    scan_id = cursor >> SCAN_POS_BITS
    pos = cursor & ((1 << SCAN_POS_BITS) - 1)
    entry = COLLECTION_SCANS.get(scan_id) if cursor else None
    if entry is None or entry[0] is not o:
        scan_id = _next_collection_scan[0]
        _next_collection_scan[0] = scan_id % (1 << 31) + 1
        while len(COLLECTION_SCANS) >= COLLECTION_SCANS_MAX:
            del COLLECTION_SCANS[next(iter(COLLECTION_SCANS))]
        entry = COLLECTION_SCANS[scan_id] = (o, members())
    snapshot = entry[1]
    found = []
    end = len(snapshot)
    while pos < end and len(found) < count:
        m = snapshot[pos]
        pos += 1
        if m in o:
            found.append(m)
    if pos >= end:
        del COLLECTION_SCANS[scan_id]
        return 0, found
    return (scan_id << SCAN_POS_BITS) | pos, found


# ---- RENAME ---------------------------------------------------------------------

def rename_generic(c, nx):
    """RENAME/RENAMENX: the value moves with its TTL."""
    db = c.db
    src, dst = c.argv[1], c.argv[2]
    v = db.lookup_write(src)
    if v is None:
        c.add_reply_error("no such key")
        return
    if src == dst:
        c.add_reply(b":0\r\n" if nx else b"+OK\r\n")
        return
    when = db.get_expire(src)
    if db.lookup_write(dst) is not None:
        if nx:
            c.add_reply(b":0\r\n")
            return
        db.delete(dst)
    db.add(dst, v)
    if when != -1:
        db.set_expire(dst, when)
    db.delete(src)
    signal_modified_key(c, db, src)
    signal_modified_key(c, db, dst)
    notify_keyspace_event(NOTIFY_GENERIC, b"rename_from", src, db.id)
    notify_keyspace_event(NOTIFY_GENERIC, b"rename_to", dst, db.id)
    c.add_reply(b":1\r\n" if nx else b"+OK\r\n")


def rename_command(c):
    rename_generic(c, False)


def renamenx_command(c):
    rename_generic(c, True)


# ---- EXPIRE family ----------------------------------------------------------------

def parse_expire_flags_or_reply(c):
    """parseExtendedExpireArgumentsOrReply(): the NX/XX/GT/LT flags, or None."""
    flags = 0
    for opt in c.argv[3:]:
        flag = _EXPIRE_FLAGS.get(opt.upper())
        if flag is None:
            c.add_reply_error("Unsupported option %s" % opt.decode("utf-8", "replace"))
            return None
        flags |= flag
    # These texts start with an all-caps word: "-ERR " keeps add_reply_error
    # from taking it for an error code.
    if flags & EXPIRE_NX and flags & (EXPIRE_XX | EXPIRE_GT | EXPIRE_LT):
        c.add_reply_error("-ERR NX and XX, GT or LT options at the same time are not compatible")
        return None
    if flags & EXPIRE_GT and flags & EXPIRE_LT:
        c.add_reply_error("-ERR GT and LT options at the same time are not compatible")
        return None
    return flags


def expire_condition_met(flags, when, current):
    """NX/XX/GT/LT against the current expire (-1: none, an infinite TTL)."""
    if flags & EXPIRE_NX and current != -1:
        return False
    if flags & EXPIRE_XX and current == -1:
        return False
    if flags & EXPIRE_GT and (current == -1 or when <= current):
        return False
    if flags & EXPIRE_LT and current != -1 and when >= current:
        return False
    return True


def expire_generic(c, basetime, seconds):
    """expireGenericCommand(): relative (basetime = now) or absolute times."""
    flags = parse_expire_flags_or_reply(c)
    if flags is None:
        return
    when = string2ll(c.argv[2])
    if when is None:
        c.add_reply_error(NOT_INTEGER)
        return
    # Negative times are allowed, but overflows are not.
    if seconds:
        if when > LLONG_MAX // 1000 or when < -(-LLONG_MIN // 1000):
            c.add_reply_error("invalid expire time in '%s' command" % c.lastcmd.fullname)
            return
        when *= 1000
    if when > LLONG_MAX - basetime:
        c.add_reply_error("invalid expire time in '%s' command" % c.lastcmd.fullname)
        return
    when += basetime
    db = c.db
    key = c.argv[1]
    if db.lookup_write(key) is None:
        c.add_reply(b":0\r\n")
        return
    if flags and not expire_condition_met(flags, when, db.get_expire(key)):
        c.add_reply(b":0\r\n")
        return
    if when <= mstime():
        db.delete(key)
        signal_modified_key(c, db, key)
        notify_keyspace_event(NOTIFY_GENERIC, b"del", key, db.id)
        c.add_reply(b":1\r\n")
    else:
        db.set_expire(key, when)
        c.add_reply(b":1\r\n")
        signal_modified_key(c, db, key)
        notify_keyspace_event(NOTIFY_GENERIC, b"expire", key, db.id)


def expire_command(c):
    expire_generic(c, mstime(), True)


def pexpire_command(c):
    expire_generic(c, mstime(), False)


def expireat_command(c):
    expire_generic(c, 0, True)


def pexpireat_command(c):
    expire_generic(c, 0, False)


def expire_or_reply(c, lookup):
    """The absolute expire time (ms) of argv[1], or None after replying -2
    (no such key, looked up with `lookup`) or -1 (no expire)."""
    key = c.argv[1]
    if lookup(key) is None:
        c.add_reply(b":-2\r\n")
        return None
    when = c.db.get_expire(key)
    if when == -1:
        c.add_reply(b":-1\r\n")
        return None
    return when


def ttl_generic(c, in_ms):
    """TTL/PTTL: -2 for no key, -1 for no expire; TTL rounds to seconds."""
    when = expire_or_reply(c, c.db.lookup_read)
    if when is None:
        return
    ttl = max(0, when - mstime())
    c.add_reply_long_long(ttl if in_ms else (ttl + 500) // 1000)


def ttl_command(c):
    ttl_generic(c, False)


def pttl_command(c):
    ttl_generic(c, True)


def persist_command(c):
    db = c.db
    key = c.argv[1]
    if db.lookup_write(key) is not None and db.remove_expire(key):
        signal_modified_key(c, db, key)
        notify_keyspace_event(NOTIFY_GENERIC, b"persist", key, db.id)
        c.add_reply(b":1\r\n")
    else:
        c.add_reply(b":0\r\n")


# ---- COPY / MOVE / SWAPDB / RANDOMKEY / TOUCH / EXPIRETIME ---------------------------------

SAME_OBJECT_ERR = "source and destination objects are the same"
DB_RANGE_ERR = "DB index is out of range"
INT_MAX = (1 << 31) - 1


def dup_value(v):
    """A deep enough copy for COPY: strings are immutable, containers are not."""
    cls = v.__class__
    if cls is bytes:
        return v
    if cls is deque:
        return deque(v)
    if cls is dict:
        return dict(v)
    return v.copy()     # t_set.Set, t_zset.ZSet


def parse_db_index_or_reply(c, arg, msg=None):
    """getIntFromObjectOrReply() then selectDb(): the Db, or None after an error."""
    n = string2ll(arg)
    if n is None or not -INT_MAX - 1 <= n <= INT_MAX:
        c.add_reply_error(msg or (NOT_INTEGER if n is None else
                                  "value is out of range, value must between %d and %d" %
                                  (-INT_MAX - 1, INT_MAX)))
        return None
    if not 0 <= n < len(server.db):
        c.add_reply_error(DB_RANGE_ERR)
        return None
    return server.db[n]


def copy_command(c):
    argv = c.argv
    src = dst = c.db
    replace = False
    j = 3
    while j < len(argv):
        opt = argv[j].lower()
        if opt == b"replace":
            replace = True
        elif opt == b"db" and j + 1 < len(argv):
            dst = parse_db_index_or_reply(c, argv[j + 1])
            if dst is None:
                return
            j += 1
        else:
            c.add_reply_error(SYNTAX_ERR)
            return
        j += 1
    key, newkey = argv[1], argv[2]
    if src is dst and key == newkey:
        c.add_reply_error(SAME_OBJECT_ERR)
        return
    v = src.lookup_read(key)
    if v is None:
        c.add_reply(b":0\r\n")
        return
    when = src.get_expire(key)
    if dst.lookup_write(newkey) is not None:
        if not replace:
            c.add_reply(b":0\r\n")
            return
        dst.delete(newkey)
    dst.add(newkey, dup_value(v))
    if when != -1:
        dst.set_expire(newkey, when)
    signal_modified_key(c, dst, newkey)
    notify.notify_keyspace_event(notify.NOTIFY_GENERIC, b"copy_to", newkey, dst.id)
    c.add_reply(b":1\r\n")


def move_command(c):
    src = c.db
    dst = parse_db_index_or_reply(c, c.argv[2])
    if dst is None:
        return
    if src is dst:
        c.add_reply_error(SAME_OBJECT_ERR)
        return
    key = c.argv[1]
    v = src.lookup_write(key)
    if v is None:
        c.add_reply(b":0\r\n")
        return
    when = src.get_expire(key)
    if dst.lookup_write(key) is not None:
        c.add_reply(b":0\r\n")
        return
    dst.add(key, v)
    if when != -1:
        dst.set_expire(key, when)
    src.delete(key)
    signal_modified_key(c, src, key)
    signal_modified_key(c, dst, key)
    notify.notify_keyspace_event(notify.NOTIFY_GENERIC, b"move_from", key, src.id)
    notify.notify_keyspace_event(notify.NOTIFY_GENERIC, b"move_to", key, dst.id)
    c.add_reply(b":1\r\n")


def swapdb_command(c):
    """Swap two databases' contents; clients stay on their db numbers.

    As dbSwapDatabases(): the keys WATCHed in either are touched and the
    XREADGROUP readers of a stream swapped away are ended before the swap;
    after it, the clients blocked on keys that now exist are served.
    """
    a = parse_db_index_or_reply_msg(c, c.argv[1], "invalid first DB index")
    if a is False:
        return
    b = parse_db_index_or_reply_msg(c, c.argv[2], "invalid second DB index")
    if b is False:
        return
    if a is None or b is None:
        c.add_reply_error(DB_RANGE_ERR)
        return
    if a is not b:
        touch_all_watched_keys_in_db(a, b)
        touch_all_watched_keys_in_db(b, a)
        scan_database_for_deleted_streams(a, b)
        scan_database_for_deleted_streams(b, a)
        for field in ("dict", "expires", "avg_ttl", "scans"):
            va, vb = getattr(a, field), getattr(b, field)
            setattr(a, field, vb)
            setattr(b, field, va)
        scan_database_for_ready_keys(a)
        scan_database_for_ready_keys(b)
    c.add_reply(b"+OK\r\n")


def parse_db_index_or_reply_msg(c, arg, msg):
    """SWAPDB's index: the Db, None when out of range, False after an error."""
    n = string2ll(arg)
    if n is None or not -INT_MAX - 1 <= n <= INT_MAX:
        c.add_reply_error(msg)
        return False
    return server.db[n] if 0 <= n < len(server.db) else None


def randomkey_command(c):
    c.add_reply_bulk_or_null(c.db.random_key())


def touch_command(c):
    lookup_read = c.db.lookup_read
    c.add_reply_long_long(sum(1 for key in c.argv[1:] if lookup_read(key) is not None))


def expiretime_generic(c, in_ms):
    """EXPIRETIME/PEXPIRETIME: the absolute unix time, -1 without, -2 no key."""
    when = expire_or_reply(c, c.db.lookup)
    if when is None:
        return
    when = max(0, when)
    c.add_reply_long_long(when if in_ms else (when + 500) // 1000)


def expiretime_command(c):
    expiretime_generic(c, False)


def pexpiretime_command(c):
    expiretime_generic(c, True)


_W = CMD_WRITE
_R = CMD_READONLY
_F = CMD_FAST
_G = "keyspace"

COMMANDS = [
    Command("del", del_command, -2, _W, 1, -1, 1, group=_G,
            summary="Delete a key"),
    Command("unlink", del_command, -2, _W | _F, 1, -1, 1, group=_G,
            summary="Delete a key asynchronously in another thread. Otherwise it is just as DEL, "
                    "but non blocking."),
    Command("exists", exists_command, -2, _R | _F, 1, -1, 1, group=_G,
            summary="Determine if a key exists"),
    Command("type", type_command, 2, _R | _F, 1, 1, 1, group=_G,
            summary="Determine the type stored at key"),
    Command("keys", keys_command, 2, _R, group=_G,
            summary="Find all keys matching the given pattern"),
    Command("scan", scan_command, -2, _R, group=_G,
            summary="Incrementally iterate the keys space"),
    Command("rename", rename_command, 3, _W, 1, 2, 1, group=_G,
            summary="Rename a key"),
    Command("renamenx", renamenx_command, 3, _W | _F, 1, 2, 1, group=_G,
            summary="Rename a key, only if the new key does not exist"),
    Command("expire", expire_command, -3, _W | _F, 1, 1, 1, group=_G,
            summary="Set a key's time to live in seconds"),
    Command("pexpire", pexpire_command, -3, _W | _F, 1, 1, 1, group=_G,
            summary="Set a key's time to live in milliseconds"),
    Command("expireat", expireat_command, -3, _W | _F, 1, 1, 1, group=_G,
            summary="Set the expiration for a key as a UNIX timestamp"),
    Command("pexpireat", pexpireat_command, -3, _W | _F, 1, 1, 1, group=_G,
            summary="Set the expiration for a key as a UNIX timestamp specified in milliseconds"),
    Command("ttl", ttl_command, 2, _R | _F, 1, 1, 1, group=_G,
            summary="Get the time to live for a key in seconds"),
    Command("pttl", pttl_command, 2, _R | _F, 1, 1, 1, group=_G,
            summary="Get the time to live for a key in milliseconds"),
    Command("persist", persist_command, 2, _W | _F, 1, 1, 1, group=_G,
            summary="Remove the expiration from a key"),
    Command("copy", copy_command, -3, _W, 1, 2, 1, group=_G,
            summary="Copy a key"),
    Command("move", move_command, 3, _W | _F, 1, 1, 1, group=_G,
            summary="Move a key to another database"),
    Command("swapdb", swapdb_command, 3, _W | _F, group=_G, acl="dangerous",
            summary="Swaps two Redis databases"),
    Command("randomkey", randomkey_command, 1, _R, group=_G,
            summary="Return a random key from the keyspace"),
    Command("touch", touch_command, -2, _R | _F, 1, -1, 1, group=_G,
            summary="Alters the last access time of a key(s). Returns the number of existing "
                    "keys specified."),
    Command("expiretime", expiretime_command, 2, _R | _F, 1, 1, 1, group=_G,
            summary="Get the expiration Unix timestamp for a key"),
    Command("pexpiretime", pexpiretime_command, 2, _R | _F, 1, 1, 1, group=_G,
            summary="Get the expiration Unix timestamp for a key in milliseconds"),
]
