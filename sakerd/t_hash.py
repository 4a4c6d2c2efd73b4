"""Hash commands: HSET HGET HMGET HGETALL HDEL... (Redis's t_hash.c).

A hash is a `dict` of field bytes -> value bytes. Python dicts keep
insertion order, which is the order Redis replies in for the small hashes
it keeps as a listpack (an existing field updated in place keeps its
place). A hash left with no fields is deleted, as in Redis: no empty hash
ever exists in the keyspace.
"""

import random
from fractions import Fraction

from .db import WRONGTYPE_ERR, lookup_typed, signal_modified_key
from .notify import notify_keyspace_event, NOTIFY_GENERIC, NOTIFY_HASH
from .resp import string2ll, LLONG_MAX, LLONG_MIN
from .server_h import Command, CMD_FAST, CMD_READONLY, CMD_WRITE
from .t_string import NOT_INTEGER, NAN_OR_INF, ld2string_human, long_double_add, string2ld, LD_INF

OK = b"+OK\r\n"


def lookup_hash_write_or_create(c, key):
    """hashTypeLookupWriteOrCreate(): the hash at key (new if missing), or
    None after replying WRONGTYPE."""
    db = c.db
    h = db.lookup_write(key)
    if h is None:
        h = {}
        db.add(key, h)
    elif h.__class__ is not dict:
        c.add_reply_error(WRONGTYPE_ERR)
        return None
    return h


def hash_modified(c, event):
    """signalModifiedKey() and the hash's event, after the reply as in t_hash.c."""
    key = c.argv[1]
    db = c.db
    signal_modified_key(c, db, key)
    notify_keyspace_event(NOTIFY_HASH, event, key, db.id)


def _bulks(items):
    return b"".join(b"$%d\r\n%s\r\n" % (len(v), v) for v in items)


def hset_command(c):
    """HSET replies with the number of new fields, HMSET with +OK."""
    argv = c.argv
    if len(argv) % 2 == 1:
        c.add_reply_error("wrong number of arguments for '%s' command" % c.lastcmd.fullname)
        return
    h = lookup_hash_write_or_create(c, argv[1])
    if h is None:
        return
    created = 0
    for i in range(2, len(argv), 2):
        field = argv[i]
        if field not in h:
            created += 1
        h[field] = argv[i + 1]
    if argv[0][1] in b"sS":
        c.add_reply_long_long(created)
    else:
        c.add_reply(OK)
    hash_modified(c, b"hset")


def hsetnx_command(c):
    argv = c.argv
    h = lookup_hash_write_or_create(c, argv[1])
    if h is None:
        return
    if argv[2] in h:
        c.add_reply(b":0\r\n")
        return
    h[argv[2]] = argv[3]
    c.add_reply(b":1\r\n")
    hash_modified(c, b"hset")


def hget_command(c):
    h, ok = lookup_typed(c, c.argv[1], dict)
    if not ok:
        return
    c.add_reply_bulk_or_null(None if h is None else h.get(c.argv[2]))


def hmget_command(c):
    # A missing key is an empty hash: a null for every field.
    h, ok = lookup_typed(c, c.argv[1], dict)
    if not ok:
        return
    fields = c.argv[2:]
    c.add_reply_bulks([None] * len(fields) if h is None else [h.get(f) for f in fields])


def hgetall_command(c):
    h, ok = lookup_typed(c, c.argv[1], dict)
    if not ok:
        return
    if h is None:
        c.add_reply_map_len(0)
        return
    c.add_reply_map_len(len(h))
    c.add_reply(b"".join(b"$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(f), f, len(v), v)
                         for f, v in h.items()))


def hkeys_command(c):
    h, ok = lookup_typed(c, c.argv[1], dict)
    if ok:
        h = h or {}
        c.add_reply(b"*%d\r\n" % len(h) + _bulks(h.keys()))


def hvals_command(c):
    h, ok = lookup_typed(c, c.argv[1], dict)
    if ok:
        h = h or {}
        c.add_reply(b"*%d\r\n" % len(h) + _bulks(h.values()))


def hdel_command(c):
    db = c.db
    key = c.argv[1]
    h = db.lookup_write(key)
    if h is None:
        c.add_reply(b":0\r\n")
        return
    if h.__class__ is not dict:
        c.add_reply_error(WRONGTYPE_ERR)
        return
    deleted = 0
    for field in c.argv[2:]:
        if h.pop(field, None) is not None:
            deleted += 1
            if not h:
                db.delete(key)
                break
    if deleted:
        hash_modified(c, b"hdel")
        if not h:
            notify_keyspace_event(NOTIFY_GENERIC, b"del", key, db.id)
    c.add_reply_long_long(deleted)


def hexists_command(c):
    h, ok = lookup_typed(c, c.argv[1], dict)
    if ok:
        c.add_reply(b":1\r\n" if h is not None and c.argv[2] in h else b":0\r\n")


def hlen_command(c):
    h, ok = lookup_typed(c, c.argv[1], dict)
    if ok:
        c.add_reply_long_long(0 if h is None else len(h))


def hstrlen_command(c):
    h, ok = lookup_typed(c, c.argv[1], dict)
    if ok:
        v = None if h is None else h.get(c.argv[2])
        c.add_reply_long_long(0 if v is None else len(v))


def hincrby_command(c):
    argv = c.argv
    incr = string2ll(argv[3])
    if incr is None:
        c.add_reply_error(NOT_INTEGER)
        return
    h = lookup_hash_write_or_create(c, argv[1])
    if h is None:
        return
    old = h.get(argv[2])
    if old is None:
        value = 0
    else:
        value = string2ll(old)
        if value is None:
            c.add_reply_error("hash value is not an integer")
            return
    value += incr
    if value > LLONG_MAX or value < LLONG_MIN:
        c.add_reply_error("increment or decrement would overflow")
        return
    h[argv[2]] = b"%d" % value
    c.add_reply_long_long(value)
    hash_modified(c, b"hincrby")


def hincrbyfloat_command(c):
    argv = c.argv
    incr = string2ld(argv[3])
    if incr is None:
        c.add_reply_error("value is not a valid float")
        return
    if incr in (LD_INF, -LD_INF):
        c.add_reply_error("value is NaN or Infinity")
        return
    h = lookup_hash_write_or_create(c, argv[1])
    if h is None:
        return
    old = h.get(argv[2])
    value = Fraction(0) if old is None else string2ld(old)
    if value is None:
        c.add_reply_error("hash value is not a float")
        return
    value = long_double_add(value, incr)
    if value is None:
        c.add_reply_error(NAN_OR_INF)
        return
    new = ld2string_human(value)
    h[argv[2]] = new
    c.add_reply(b"$%d\r\n%s\r\n" % (len(new), new))
    hash_modified(c, b"hincrbyfloat")


# ---- HRANDFIELD / HSCAN -----------------------------------------------------------------

LONG_MAX = LLONG_MAX


def hrandfield_command(c):
    argv = c.argv
    if len(argv) >= 3:
        count = string2ll(argv[2])
        if count is None:
            c.add_reply_error(NOT_INTEGER)
            return
        if count < -LONG_MAX:
            c.add_reply_error("value is out of range, value must between %d and %d" %
                              (-LONG_MAX, LONG_MAX))
            return
        if len(argv) > 4 or (len(argv) == 4 and argv[3].lower() != b"withvalues"):
            c.add_reply_error("syntax error")
            return
        withvalues = len(argv) == 4
        if withvalues and (count < -LONG_MAX // 2 or count > LONG_MAX // 2):
            c.add_reply_error("value is out of range")
            return
        hrandfield_with_count(c, count, withvalues)
        return
    h, ok = lookup_typed(c, argv[1], dict)
    if not ok:
        return
    c.add_reply_bulk_or_null(None if h is None else random.choice(tuple(h)))


def hrandfield_with_count(c, count, withvalues):
    h, ok = lookup_typed(c, c.argv[1], dict)
    if not ok:
        return
    if h is None or count == 0:
        c.add_reply(b"*0\r\n")
        return
    fields = tuple(h)
    if count < 0:
        picked = random.choices(fields, k=-count)
    elif count >= len(fields):
        picked = fields
    else:
        picked = random.sample(fields, count)
    if not withvalues:
        c.add_reply(b"*%d\r\n" % len(picked) + _bulks(picked))
    elif c.resp == 2:
        c.add_reply(b"*%d\r\n" % (2 * len(picked)) +
                    b"".join(b"$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(f), f, len(h[f]), h[f])
                             for f in picked))
    else:
        c.add_reply(b"*%d\r\n" % len(picked) +
                    b"".join(b"*2\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(f), f, len(h[f]), h[f])
                             for f in picked))


def hscan_command(c):
    from .db_commands import parse_scan_cursor_or_reply, scan_generic_command
    from .object import hash_encoding
    cursor = parse_scan_cursor_or_reply(c, c.argv[2])
    if cursor is None:
        return
    h, ok = lookup_typed(c, c.argv[1], dict)
    if not ok:
        return
    if h is None:
        c.add_reply(b"*2\r\n$1\r\n0\r\n*0\r\n")
        return
    scan_generic_command(c, h, cursor, hash_encoding(h) == "listpack", lambda: list(h), h.get)


_W = CMD_WRITE
_R = CMD_READONLY
_F = CMD_FAST
_G = "hash"

COMMANDS = [
    Command("hset", hset_command, -4, _W | _F, 1, 1, 1, group=_G,
            summary="Set the string value of a hash field"),
    Command("hmset", hset_command, -4, _W | _F, 1, 1, 1, group=_G,
            summary="Set multiple hash fields to multiple values"),
    Command("hsetnx", hsetnx_command, 4, _W | _F, 1, 1, 1, group=_G,
            summary="Set the value of a hash field, only if the field does not exist"),
    Command("hget", hget_command, 3, _R | _F, 1, 1, 1, group=_G,
            summary="Get the value of a hash field"),
    Command("hmget", hmget_command, -3, _R | _F, 1, 1, 1, group=_G,
            summary="Get the values of all the given hash fields"),
    Command("hgetall", hgetall_command, 2, _R, 1, 1, 1, group=_G,
            summary="Get all the fields and values in a hash"),
    Command("hkeys", hkeys_command, 2, _R, 1, 1, 1, group=_G,
            summary="Get all the fields in a hash"),
    Command("hvals", hvals_command, 2, _R, 1, 1, 1, group=_G,
            summary="Get all the values in a hash"),
    Command("hdel", hdel_command, -3, _W | _F, 1, 1, 1, group=_G,
            summary="Delete one or more hash fields"),
    Command("hexists", hexists_command, 3, _R | _F, 1, 1, 1, group=_G,
            summary="Determine if a hash field exists"),
    Command("hlen", hlen_command, 2, _R | _F, 1, 1, 1, group=_G,
            summary="Get the number of fields in a hash"),
    Command("hstrlen", hstrlen_command, 3, _R | _F, 1, 1, 1, group=_G,
            summary="Get the length of the value of a hash field"),
    Command("hincrby", hincrby_command, 4, _W | _F, 1, 1, 1, group=_G,
            summary="Increment the integer value of a hash field by the given number"),
    Command("hincrbyfloat", hincrbyfloat_command, 4, _W | _F, 1, 1, 1, group=_G,
            summary="Increment the float value of a hash field by the given amount"),
    Command("hrandfield", hrandfield_command, -2, _R, 1, 1, 1, group=_G,
            summary="Get one or multiple random fields from a hash"),
    Command("hscan", hscan_command, -3, _R, 1, 1, 1, group=_G,
            summary="Incrementally iterate hash fields and associated values"),
]
