"""SORT and SORT_RO (Redis's sort.c).

SORT key [BY pattern] [LIMIT offset count] [GET pattern ...] [ASC|DESC]
[ALPHA] [STORE destination] sorts a list, set or sorted set. Numbers are
compared as C doubles parsed by strtod (ties by the element's bytes),
ALPHA compares bytes (Redis uses strcoll(), which is byte order in the C
and C.UTF-8 locales). BY pattern reads each element's weight from the key
(or hash field, "key->field") the pattern names with `*` replaced by the
element; a BY pattern without `*` skips the sort. GET works the same way,
"#" meaning the element itself.

The one thing sakerd cannot reproduce: Redis's qsort is not stable, so
elements with equal BY weights under ALPHA come out in an unspecified
order there and in their input order here.
"""

from collections import deque

from . import notify
from .db import WRONGTYPE_ERR, signal_modified_key
from .resp import string2ll
from .server_h import Command, CMD_READONLY, CMD_WRITE
from .t_set import Set
from .t_zset import ZSet, strtod_full

SYNTAX_ERR = "syntax error"
NOT_INTEGER = "value is not an integer or out of range"


class SortOptions:
    __slots__ = ("desc", "alpha", "start", "count", "by", "dontsort", "gets", "store")

    def __init__(self):
        self.desc = self.alpha = self.dontsort = False
        self.start, self.count = 0, -1
        self.by = self.store = None
        self.gets = []


def parse_sort_options(c, readonly):
    argv = c.argv
    o = SortOptions()
    j = 2
    while j < len(argv):
        opt = argv[j].lower()
        left = len(argv) - j - 1
        if opt == b"asc":
            o.desc = False
        elif opt == b"desc":
            o.desc = True
        elif opt == b"alpha":
            o.alpha = True
        elif opt == b"limit" and left >= 2:
            o.start, o.count = string2ll(argv[j + 1]), string2ll(argv[j + 2])
            if o.start is None or o.count is None:
                c.add_reply_error(NOT_INTEGER)
                return None
            j += 2
        elif not readonly and opt == b"store" and left >= 1:
            o.store = argv[j + 1]
            j += 1
        elif opt == b"by" and left >= 1:
            o.by = argv[j + 1]
            o.dontsort = b"*" not in o.by
            j += 1
        elif opt == b"get" and left >= 1:
            o.gets.append(argv[j + 1])
            j += 1
        else:
            c.add_reply_error(SYNTAX_ERR)
            return None
        j += 1
    return o


def lookup_by_pattern(db, pattern, subst):
    """lookupKeyByPattern(): the string (or hash field) pattern names for subst."""
    if pattern == b"#":
        return subst
    star = pattern.find(b"*")
    if star < 0:
        return None
    arrow = pattern.find(b"->", star + 1)
    field = None
    if arrow >= 0 and arrow + 2 < len(pattern):
        field = pattern[arrow + 2:]
        pattern = pattern[:arrow]
    v = db.lookup_read(pattern[:star] + subst + pattern[star + 1:])
    if v is None:
        return None
    if field is not None:
        return v.get(field) if v.__class__ is dict else None
    return v if v.__class__ is bytes else None


def sort_range(start, count, n):
    """Redis's LIMIT clamping: (start, end) inclusive; end < start is empty."""
    start = min(max(start, 0), n)
    count = min(max(count, -1), n)
    end = n - 1 if count < 0 else start + count - 1
    if start >= n:
        start, end = n - 1, n - 2
    return start, min(end, n - 1)


def elements_of(v, o, start, end):
    """The elements to sort, in Redis's order; with dontsort on a list or
    sorted set, only the LIMIT range (already in output order)."""
    cls = v.__class__
    if cls is deque:
        if o.dontsort:
            if end < start:
                return []
            items = list(reversed(v)) if o.desc else list(v)
            return items[start:end + 1]
        return list(v)
    if cls is Set:
        return v.ordered()
    if o.dontsort:
        if end < start:
            return []
        pairs = v.sl[::-1] if o.desc else v.sl
        return [m for _, m in pairs[start:end + 1]]
    return list(v.dict)


def sort_elements(c, o, items):
    """Sort items in place by o; False when a weight is not a number."""
    db = c.db
    if o.alpha:
        if o.by is not None:
            weights = {e: lookup_by_pattern(db, o.by, e) for e in items}
            items.sort(key=lambda e: (weights[e] is not None, weights[e] or b""),
                       reverse=o.desc)
        else:
            items.sort(reverse=o.desc)
        return True
    scores = {}
    for e in items:
        w = lookup_by_pattern(db, o.by, e) if o.by is not None else e
        if w is None:
            scores[e] = 0.0
            continue
        r = strtod_full(w)
        if r is None or r[1] or r[0] != r[0]:
            return False
        scores[e] = r[0]
    items.sort(key=lambda e: (scores[e], e), reverse=o.desc)
    return True


def sort_generic(c, readonly):
    o = parse_sort_options(c, readonly)
    if o is None:
        return
    db = c.db
    v = db.lookup_read(c.argv[1])
    if v is not None and v.__class__ not in (deque, Set, ZSet):
        c.add_reply_error(WRONGTYPE_ERR)
        return
    if v is None:
        v = deque()
    from .networking import CLIENT_SCRIPT
    if o.dontsort and v.__class__ is Set and (o.store is not None or c.flags & CLIENT_SCRIPT):
        # A set's order is its hash table's: sort it so the result replicates.
        o.dontsort, o.alpha, o.by = False, True, None
    n = len(v)
    start, end = sort_range(o.start, o.count, n)
    items = elements_of(v, o, start, end)
    if o.dontsort and v.__class__ is not Set:
        end -= start
        start = 0
    elif not o.dontsort and not sort_elements(c, o, items):
        c.add_reply_error("One or more scores can't be converted into double")
        return
    chosen = items[start:end + 1] if end >= start else []
    if o.gets:
        out = [lookup_by_pattern(db, g, e) for e in chosen for g in o.gets]
    else:
        out = chosen
    if o.store is None:
        c.add_reply_bulks(out)
        return
    store_sorted(c, o.store, [b"" if x is None else x for x in out])


def store_sorted(c, key, out):
    db = c.db
    if out:
        db.set_key(key, deque(out))
        signal_modified_key(c, db, key)
        notify.notify_keyspace_event(notify.NOTIFY_LIST, b"sortstore", key, db.id)
    elif db.delete(key):
        signal_modified_key(c, db, key)
        notify.notify_keyspace_event(notify.NOTIFY_GENERIC, b"del", key, db.id)
    c.add_reply(b":%d\r\n" % len(out))


def sort_command(c):
    sort_generic(c, False)


def sort_ro_command(c):
    sort_generic(c, True)


COMMANDS = [
    Command("sort", sort_command, -2, CMD_WRITE, 1, 1, 1, group="generic",
            acl="set sortedset list dangerous",
            summary="Sort the elements in a list, set or sorted set"),
    Command("sort_ro", sort_ro_command, -2, CMD_READONLY, 1, 1, 1, group="generic",
            acl="set sortedset list dangerous",
            summary="Sort the elements in a list, set or sorted set. Read-only variant of SORT."),
]
