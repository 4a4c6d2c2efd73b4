"""Set commands: SADD SREM SMEMBERS SINTER SUNION SDIFF SPOP... (Redis's t_set.c).

A set is a `Set`: a Python set of member bytes that also remembers which
encoding Redis 7.0 would use for it. Redis keeps a set of integers as a
sorted intset while it holds only integers (strict string2ll form) and at
most `set-max-intset-entries` of them; the first other member, or one
member too many, turns it into a hash table for good. That matters beyond
OBJECT ENCODING: an intset replies in ascending numeric order, a hash table
in its bucket order (which no client may rely on). So a Set with `intset`
true replies sorted by value, and any other one in Python's set order.

Random members (SPOP, SRANDMEMBER) come from random.choice over a snapshot
of the members, O(N) in the set's size for one draw; SPOP of one member
from a set of more than SPOP_SNAPSHOT_MAX members takes set.pop()'s
member instead (the hash-table slot order of this process: Python seeds
bytes hashing randomly per process, so it is arbitrary, but not a fresh
uniform draw every call as Redis's dictGetFairRandomKey is).

Every write signals the key (db.signal_modified_key) and notifies
keyspace events with Redis's names, in t_set.c's order.
"""

import random

from . import notify
from .db import TYPE_NAMES, WRONGTYPE_ERR, lookup_typed, signal_modified_key
from .resp import string2ll, LLONG_MAX
from .server_h import Command, server, CMD_FAST, CMD_READONLY, CMD_WRITE

SYNTAX_ERR = "syntax error"
NOT_INTEGER = "value is not an integer or out of range"
SPOP_SNAPSHOT_MAX = 128
LONG_MAX = LLONG_MAX


class Set(set):
    """A set value; `intset` mirrors Redis's OBJ_ENCODING_INTSET."""
    __slots__ = ("intset",)

    def __init__(self, members=()):
        set.__init__(self)
        self.intset = True
        if members:
            self.add_all(members)

    def add_member(self, m):
        """setTypeAdd(): True if m was new; converts the encoding as Redis."""
        if m in self:
            return False
        self.add(m)
        if self.intset and (string2ll(m) is None or
                            len(self) > server.config.set_max_intset_entries):
            self.intset = False
        return True

    def add_all(self, members):
        before = len(self)
        self.update(members)
        if self.intset and (len(self) > server.config.set_max_intset_entries or
                            any(string2ll(m) is None for m in members)):
            self.intset = False
        return len(self) - before

    def copy(self):
        dup = Set()
        dup.update(self)
        dup.intset = self.intset
        return dup

    def ordered(self):
        """The members in the order Redis iterates this encoding."""
        if self.intset:
            return sorted(self, key=int)
        return list(self)


TYPE_NAMES[Set] = "set"


def new_set_for(member):
    """setTypeCreate(): an intset when the first member is an integer."""
    s = Set()
    if string2ll(member) is None:
        s.intset = False
    return s


# ---- replies ----------------------------------------------------------------------

def reply_members(c, members, as_set=True):
    """A set (~ in RESP3) or an array of bulk strings."""
    if as_set and c.resp == 3:
        c.add_reply(b"~%d\r\n" % len(members) +
                    b"".join(b"$%d\r\n%s\r\n" % (len(m), m) for m in members))
    else:
        c.add_reply_bulks(members)


def empty_set(c):
    c.add_reply(b"~0\r\n" if c.resp == 3 else b"*0\r\n")


def delete_if_empty(c, key, s):
    """Remove an emptied set from the keyspace with its "del" event."""
    if not s:
        c.db.delete(key)
        notify.notify_keyspace_event(notify.NOTIFY_GENERIC, b"del", key, c.db.id)
        return True
    return False


# ---- SADD / SREM / SMOVE ---------------------------------------------------------------

def sadd_command(c):
    argv = c.argv
    db = c.db
    key = argv[1]
    s = db.lookup_write(key)
    if s is None:
        s = new_set_for(argv[2])
        db.add(key, s)
    elif s.__class__ is not Set:
        c.add_reply_error(WRONGTYPE_ERR)
        return
    added = s.add_all(argv[2:]) if len(argv) > 3 else s.add_member(argv[2]) * 1
    if added:
        signal_modified_key(c, db, key)
        notify.notify_keyspace_event(notify.NOTIFY_SET, b"sadd", key, db.id)
    c.add_reply(b":%d\r\n" % added)


def srem_command(c):
    db = c.db
    key = c.argv[1]
    s, ok = lookup_typed(c, key, Set, True)
    if not ok:
        return
    if s is None:
        c.add_reply(b":0\r\n")
        return
    deleted = 0
    removed = False
    for m in c.argv[2:]:
        if m in s:
            s.discard(m)
            deleted += 1
            if not s:
                db.delete(key)
                removed = True
                break
    if deleted:
        signal_modified_key(c, db, key)
        notify.notify_keyspace_event(notify.NOTIFY_SET, b"srem", key, db.id)
        if removed:
            notify.notify_keyspace_event(notify.NOTIFY_GENERIC, b"del", key, db.id)
    c.add_reply(b":%d\r\n" % deleted)


def smove_command(c):
    db = c.db
    src_key, dst_key, m = c.argv[1], c.argv[2], c.argv[3]
    src = db.lookup_write(src_key)
    dst = db.lookup_write(dst_key)
    if src is None:
        c.add_reply(b":0\r\n")
        return
    if src.__class__ is not Set or (dst is not None and dst.__class__ is not Set):
        c.add_reply_error(WRONGTYPE_ERR)
        return
    if src is dst:
        c.add_reply(b":1\r\n" if m in src else b":0\r\n")
        return
    if m not in src:
        c.add_reply(b":0\r\n")
        return
    src.discard(m)
    notify.notify_keyspace_event(notify.NOTIFY_SET, b"srem", src_key, db.id)
    delete_if_empty(c, src_key, src)
    if dst is None:
        dst = new_set_for(m)
        db.add(dst_key, dst)
    signal_modified_key(c, db, src_key)
    if dst.add_member(m):
        signal_modified_key(c, db, dst_key)
        notify.notify_keyspace_event(notify.NOTIFY_SET, b"sadd", dst_key, db.id)
    c.add_reply(b":1\r\n")


# ---- membership --------------------------------------------------------------------

def sismember_command(c):
    s, ok = lookup_typed(c, c.argv[1], Set)
    if ok:
        c.add_reply(b":1\r\n" if s is not None and c.argv[2] in s else b":0\r\n")


def smismember_command(c):
    # A missing key is an empty set: a zero for every member.
    s, ok = lookup_typed(c, c.argv[1], Set)
    if not ok:
        return
    s = s or ()
    c.add_reply(b"*%d\r\n" % (len(c.argv) - 2) +
                b"".join(b":1\r\n" if m in s else b":0\r\n" for m in c.argv[2:]))


def scard_command(c):
    s, ok = lookup_typed(c, c.argv[1], Set)
    if ok:
        c.add_reply(b":%d\r\n" % (len(s) if s is not None else 0))


# ---- SPOP / SRANDMEMBER ---------------------------------------------------------------

def random_member(s):
    return random.choice(tuple(s))


def parse_long_or_reply(c, arg, lo, hi, msg=None):
    """getRangeLongFromObjectOrReply(): the integer, or None after replying."""
    v = string2ll(arg)
    if v is None:
        c.add_reply_error(msg or NOT_INTEGER)
        return None
    if v < lo or v > hi:
        c.add_reply_error(msg or "value is out of range, value must between %d and %d" % (lo, hi))
        return None
    return v


def spop_command(c):
    argc = len(c.argv)
    if argc == 3:
        spop_with_count(c)
        return
    if argc > 3:
        c.add_reply_error(SYNTAX_ERR)
        return
    db = c.db
    key = c.argv[1]
    s, ok = lookup_typed(c, key, Set, True)
    if not ok:
        return
    if s is None:
        c.add_reply_null()
        return
    if len(s) <= SPOP_SNAPSHOT_MAX:
        m = random_member(s)
        s.discard(m)
    else:
        m = s.pop()
    notify.notify_keyspace_event(notify.NOTIFY_SET, b"spop", key, db.id)
    c.add_reply(b"$%d\r\n%s\r\n" % (len(m), m))
    delete_if_empty(c, key, s)
    signal_modified_key(c, db, key)


def spop_with_count(c):
    count = parse_long_or_reply(c, c.argv[2], 0, LONG_MAX, "value is out of range, must be positive")
    if count is None:
        return
    db = c.db
    key = c.argv[1]
    s, ok = lookup_typed(c, key, Set, True)
    if not ok:
        return
    if s is None or count == 0:
        empty_set(c)
        return
    size = len(s)
    notify.notify_keyspace_event(notify.NOTIFY_SET, b"spop", key, db.id)
    if count >= size:
        reply_members(c, s.ordered())
        db.delete(key)
        notify.notify_keyspace_event(notify.NOTIFY_GENERIC, b"del", key, db.id)
        signal_modified_key(c, db, key)
        return
    popped = random.sample(tuple(s), count)
    s.difference_update(popped)
    reply_members(c, popped)
    signal_modified_key(c, db, key)


def srandmember_command(c):
    argc = len(c.argv)
    if argc == 3:
        srandmember_with_count(c)
        return
    if argc > 3:
        c.add_reply_error(SYNTAX_ERR)
        return
    s, ok = lookup_typed(c, c.argv[1], Set)
    if not ok:
        return
    if s is None:
        c.add_reply_null()
        return
    m = random_member(s)
    c.add_reply(b"$%d\r\n%s\r\n" % (len(m), m))


def srandmember_with_count(c):
    """Positive count: distinct members; negative: |count| draws with repeats."""
    count = parse_long_or_reply(c, c.argv[2], -LONG_MAX, LONG_MAX)
    if count is None:
        return
    s, ok = lookup_typed(c, c.argv[1], Set)
    if not ok:
        return
    if s is None or count == 0:
        c.add_reply(b"*0\r\n")
        return
    members = tuple(s)
    if count < 0:
        c.add_reply_bulks(random.choices(members, k=-count))
    elif count >= len(members):
        c.add_reply_bulks(s.ordered())
    else:
        c.add_reply_bulks(random.sample(members, count))


# ---- SINTER / SUNION / SDIFF ---------------------------------------------------------------

def lookup_sets(c, keys):
    """The sets at keys (None for missing ones), or False after WRONGTYPE."""
    lookup_read = c.db.lookup_read
    sets = []
    for key in keys:
        s = lookup_read(key)
        if s is not None and s.__class__ is not Set:
            c.add_reply_error(WRONGTYPE_ERR)
            return False
        sets.append(s)
    return sets


def store_result(c, dstkey, result, event):
    """Store a set operation's result at dstkey (setKey, dropping its TTL)."""
    db = c.db
    if result:
        db.set_key(dstkey, result)
        signal_modified_key(c, db, dstkey)
        c.add_reply(b":%d\r\n" % len(result))
        notify.notify_keyspace_event(notify.NOTIFY_SET, event, dstkey, db.id)
    else:
        c.add_reply(b":0\r\n")
        # dbDelete(): an expired but present key counts as deleted too.
        if db.delete(dstkey):
            signal_modified_key(c, db, dstkey)
            notify.notify_keyspace_event(notify.NOTIFY_GENERIC, b"del", dstkey, db.id)


def intersection(sets, limit=0):
    """Members of every set, in the iteration order of the smallest one
    (sinterGenericCommand sorts by cardinality, smallest first)."""
    sets = sorted(sets, key=len)
    first, rest = sets[0], [s for s in sets[1:] if s is not sets[0]]
    out = []
    for m in first.ordered():
        if all(m in s for s in rest):
            out.append(m)
            if limit and len(out) >= limit:
                break
    return out


def sinter_generic(c, keys, dstkey=None, cardinality_only=False, limit=0):
    sets = lookup_sets(c, keys)
    if sets is False:
        return
    if any(s is None for s in sets):
        if dstkey is not None:
            store_result(c, dstkey, None, b"sinterstore")
        elif cardinality_only:
            c.add_reply(b":0\r\n")
        else:
            empty_set(c)
        return
    members = intersection(sets, limit if cardinality_only else 0)
    if cardinality_only:
        c.add_reply(b":%d\r\n" % len(members))
    elif dstkey is not None:
        store_result(c, dstkey, Set(members), b"sinterstore")
    else:
        reply_members(c, members)


def sinter_command(c):
    sinter_generic(c, c.argv[1:])


def sinterstore_command(c):
    sinter_generic(c, c.argv[2:], dstkey=c.argv[1])


def sintercard_command(c):
    argv = c.argv
    numkeys = parse_long_or_reply(c, argv[1], 1, LONG_MAX, "numkeys should be greater than 0")
    if numkeys is None:
        return
    if numkeys > len(argv) - 2:
        c.add_reply_error("Number of keys can't be greater than number of args")
        return
    limit = 0
    j = 2 + numkeys
    while j < len(argv):
        if argv[j].lower() == b"limit" and j + 1 < len(argv):
            j += 1
            limit = parse_long_or_reply(c, argv[j], 0, LONG_MAX, "LIMIT can't be negative")
            if limit is None:
                return
        else:
            c.add_reply_error(SYNTAX_ERR)
            return
        j += 1
    sinter_generic(c, argv[2:2 + numkeys], cardinality_only=True, limit=limit)


def sunion_diff_generic(c, keys, dstkey, union):
    sets = lookup_sets(c, keys)
    if sets is False:
        return
    result = Set()
    if union:
        for s in sets:
            if s:
                result.add_all(s)
    elif sets[0] is not None and not any(s is sets[0] for s in sets[1:]):
        result.add_all(sets[0])
        for s in sets[1:]:
            if s:
                result.difference_update(s)
    if dstkey is None:
        reply_members(c, result.ordered())
    else:
        store_result(c, dstkey, result, b"sunionstore" if union else b"sdiffstore")


def sunion_command(c):
    sunion_diff_generic(c, c.argv[1:], None, True)


def sunionstore_command(c):
    sunion_diff_generic(c, c.argv[2:], c.argv[1], True)


def sdiff_command(c):
    sunion_diff_generic(c, c.argv[1:], None, False)


def sdiffstore_command(c):
    sunion_diff_generic(c, c.argv[2:], c.argv[1], False)


def sscan_command(c):
    from .db_commands import parse_scan_cursor_or_reply, scan_generic_command
    cursor = parse_scan_cursor_or_reply(c, c.argv[2])
    if cursor is None:
        return
    s, ok = lookup_typed(c, c.argv[1], Set)
    if not ok:
        return
    if s is None:
        c.add_reply(b"*2\r\n$1\r\n0\r\n*0\r\n")
        return
    scan_generic_command(c, s, cursor, s.intset, s.ordered if s.intset else lambda: list(s), None)


_W = CMD_WRITE
_R = CMD_READONLY
_F = CMD_FAST
_G = "set"

COMMANDS = [
    Command("sadd", sadd_command, -3, _W | _F, 1, 1, 1, group=_G,
            summary="Add one or more members to a set"),
    Command("srem", srem_command, -3, _W | _F, 1, 1, 1, group=_G,
            summary="Remove one or more members from a set"),
    Command("smembers", sinter_command, 2, _R, 1, 1, 1, group=_G,
            summary="Get all the members in a set"),
    Command("sismember", sismember_command, 3, _R | _F, 1, 1, 1, group=_G,
            summary="Determine if a given value is a member of a set"),
    Command("smismember", smismember_command, -3, _R | _F, 1, 1, 1, group=_G,
            summary="Returns the membership associated with the given elements for a set"),
    Command("scard", scard_command, 2, _R | _F, 1, 1, 1, group=_G,
            summary="Get the number of members in a set"),
    Command("spop", spop_command, -2, _W | _F, 1, 1, 1, group=_G,
            summary="Remove and return one or multiple random members from a set"),
    Command("srandmember", srandmember_command, -2, _R, 1, 1, 1, group=_G,
            summary="Get one or multiple random members from a set"),
    Command("smove", smove_command, 4, _W | _F, 1, 2, 1, group=_G,
            summary="Move a member from one set to another"),
    Command("sinter", sinter_command, -2, _R, 1, -1, 1, group=_G,
            summary="Intersect multiple sets"),
    Command("sintercard", sintercard_command, -3, _R, 0, 0, 0, group=_G,
            summary="Intersect multiple sets and return the cardinality of the result"),
    Command("sinterstore", sinterstore_command, -3, _W, 1, -1, 1, group=_G,
            summary="Intersect multiple sets and store the resulting set in a key"),
    Command("sunion", sunion_command, -2, _R, 1, -1, 1, group=_G,
            summary="Add multiple sets"),
    Command("sunionstore", sunionstore_command, -3, _W, 1, -1, 1, group=_G,
            summary="Add multiple sets and store the resulting set in a key"),
    Command("sdiff", sdiff_command, -2, _R, 1, -1, 1, group=_G,
            summary="Subtract multiple sets"),
    Command("sdiffstore", sdiffstore_command, -3, _W, 1, -1, 1, group=_G,
            summary="Subtract multiple sets and store the resulting set in a key"),
    Command("sscan", sscan_command, -3, _R, 1, 1, 1, group=_G,
            summary="Incrementally iterate Set elements"),
]
