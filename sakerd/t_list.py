"""List commands: LPUSH RPUSH LPOP RPOP LRANGE LLEN LTRIM LINDEX (t_list.c).

A list is a collections.deque of bytes: O(1) pushes and pops at both ends,
as Redis's quicklist. Ranges are read with itertools.islice (a deque has
no O(1) access in the middle). A list left empty is deleted, as in Redis.

LPUSH/RPUSH/LPOP/RPOP are the hot path (benchmarked): they look the key up
inline.
"""

from collections import deque
from itertools import islice

from . import notify
from .db import WRONGTYPE_ERR, signal_modified_key
from .resp import string2ll, LLONG_MIN
from .server import Command, CMD_FAST, CMD_READONLY, CMD_WRITE

NOT_INTEGER = "value is not an integer or out of range"
SYNTAX_ERR = "syntax error"
EMPTY_ARRAY = b"*0\r\n"


def push_generic(c, head, xx=False):
    """pushGenericCommand(): LPUSH/RPUSH, and LPUSHX/RPUSHX with xx."""
    argv = c.argv
    db = c.db
    key = argv[1]
    if db.expires and key in db.expires:
        db.expire_if_needed(key)
    lst = db.dict.get(key)
    if lst is None:
        if xx:
            c.add_reply(b":0\r\n")
            return
        lst = db.dict[key] = deque()
    elif lst.__class__ is not deque:
        c.add_reply_error(WRONGTYPE_ERR)
        return
    # LPUSH a b c pushes a, then b, then c at the head: extendleft's order.
    if head:
        lst.extendleft(argv[2:])
    else:
        lst.extend(argv[2:])
    c.add_reply(b":%d\r\n" % len(lst))


def lpush_command(c):
    push_generic(c, True)


def rpush_command(c):
    push_generic(c, False)


def lpushx_command(c):
    push_generic(c, True, True)


def rpushx_command(c):
    push_generic(c, False, True)


def pop_generic(c, head):
    """popGenericCommand(): one element as a bulk, or with COUNT an array."""
    argv = c.argv
    argc = len(argv)
    if argc > 3:
        c.add_reply_error("wrong number of arguments for '%s' command" % c.lastcmd.fullname)
        return
    count = 0
    if argc == 3:
        # getPositiveLongFromObjectOrReply(): one message for both failures.
        count = string2ll(argv[2])
        if count is None or count < 0:
            c.add_reply_error("value is out of range, must be positive")
            return
    db = c.db
    key = argv[1]
    if db.expires and key in db.expires:
        db.expire_if_needed(key)
    lst = db.dict.get(key)
    if lst is None:
        if argc == 3:
            c.add_reply_null_array()
        else:
            c.add_reply_null()
        return
    if lst.__class__ is not deque:
        c.add_reply_error(WRONGTYPE_ERR)
        return
    if argc == 2:
        v = lst.popleft() if head else lst.pop()
        c.add_reply(b"$%d\r\n%s\r\n" % (len(v), v))
    elif not count:
        c.add_reply(EMPTY_ARRAY)
        return
    else:
        pop = lst.popleft if head else lst.pop
        items = [pop() for _ in range(min(count, len(lst)))]
        c.add_reply_bulks(items)
    if not lst:
        db.delete(key)


def lpop_command(c):
    pop_generic(c, True)


def rpop_command(c):
    pop_generic(c, False)


def lookup_list_read(c, key):
    """(list or None, ok): ok is False when WRONGTYPE was replied."""
    lst = c.db.lookup_read(key)
    if lst is not None and lst.__class__ is not deque:
        c.add_reply_error(WRONGTYPE_ERR)
        return None, False
    return lst, True


def normalize_range(start, end, llen):
    """Redis's index conversion: (start, end) inclusive, or None if empty."""
    if start < 0:
        start += llen
    if end < 0:
        end += llen
    if start < 0:
        start = 0
    # start >= 0 now, so this is also true when end < 0.
    if start > end or start >= llen:
        return None
    if end >= llen:
        end = llen - 1
    return start, end


def get_index_args(c):
    """The start/end arguments (argv[2], argv[3]) as integers, or None."""
    start = string2ll(c.argv[2])
    end = string2ll(c.argv[3])
    if start is None or end is None:
        c.add_reply_error(NOT_INTEGER)
        return None
    return start, end


def lrange_command(c):
    indexes = get_index_args(c)
    if indexes is None:
        return
    lst, ok = lookup_list_read(c, c.argv[1])
    if not ok:
        return
    rng = None if lst is None else normalize_range(indexes[0], indexes[1], len(lst))
    if rng is None:
        c.add_reply(EMPTY_ARRAY)
    else:
        c.add_reply_bulks(tuple(islice(lst, rng[0], rng[1] + 1)))


def ltrim_command(c):
    indexes = get_index_args(c)
    if indexes is None:
        return
    db = c.db
    key = c.argv[1]
    lst = db.lookup_write(key)
    if lst is None:
        c.add_reply(b"+OK\r\n")
        return
    if lst.__class__ is not deque:
        c.add_reply_error(WRONGTYPE_ERR)
        return
    rng = normalize_range(indexes[0], indexes[1], len(lst))
    if rng is None:
        db.delete(key)
    else:
        start, end = rng
        kept = end - start + 1
        if kept < len(lst) // 2:
            # Cheaper to copy what stays than to pop what goes.
            db.dict[key] = deque(islice(lst, start, end + 1))
        else:
            for _ in range(start):
                lst.popleft()
            for _ in range(len(lst) - kept):
                lst.pop()
    c.add_reply(b"+OK\r\n")


def llen_command(c):
    lst, ok = lookup_list_read(c, c.argv[1])
    if ok:
        c.add_reply_long_long(0 if lst is None else len(lst))


def lindex_command(c):
    lst, ok = lookup_list_read(c, c.argv[1])
    if not ok:
        return
    if lst is None:
        c.add_reply_null()
        return
    index = string2ll(c.argv[2])
    if index is None:
        c.add_reply_error(NOT_INTEGER)
        return
    if index < 0:
        index += len(lst)
    if 0 <= index < len(lst):
        v = lst[index]
        c.add_reply(b"$%d\r\n%s\r\n" % (len(v), v))
    else:
        c.add_reply_null()


# ---- LSET / LREM / LINSERT / LPOS -------------------------------------------------------

def lookup_list_write(c, key):
    """(list or None, ok) for a write: ok is False when WRONGTYPE was replied."""
    lst = c.db.lookup_write(key)
    if lst is not None and lst.__class__ is not deque:
        c.add_reply_error(WRONGTYPE_ERR)
        return None, False
    return lst, True


def lset_command(c):
    db = c.db
    key = c.argv[1]
    lst, ok = lookup_list_write(c, key)
    if not ok:
        return
    if lst is None:
        c.add_reply_error("no such key")
        return
    index = string2ll(c.argv[2])
    if index is None:
        c.add_reply_error(NOT_INTEGER)
        return
    if index < 0:
        index += len(lst)
    if not 0 <= index < len(lst):
        c.add_reply_error("index out of range")
        return
    lst[index] = c.argv[3]
    c.add_reply(b"+OK\r\n")
    signal_modified_key(c, db, key)
    notify.notify_keyspace_event(notify.NOTIFY_LIST, b"lset", key, db.id)


def lrem_command(c):
    """LREM key count element: count > 0 from the head, < 0 from the tail, 0 all."""
    toremove = string2ll(c.argv[2])
    if toremove is None:
        c.add_reply_error(NOT_INTEGER)
        return
    db = c.db
    key = c.argv[1]
    lst, ok = lookup_list_write(c, key)
    if not ok:
        return
    if lst is None:
        c.add_reply(b":0\r\n")
        return
    element = c.argv[3]
    limit = abs(toremove)
    removed = 0
    kept = []
    items = reversed(lst) if toremove < 0 else lst
    for item in items:
        if item == element and (not limit or removed < limit):
            removed += 1
        else:
            kept.append(item)
    if removed:
        if toremove < 0:
            kept.reverse()
        lst.clear()
        lst.extend(kept)
        signal_modified_key(c, db, key)
        notify.notify_keyspace_event(notify.NOTIFY_LIST, b"lrem", key, db.id)
    if not lst:
        db.delete(key)
        notify.notify_keyspace_event(notify.NOTIFY_GENERIC, b"del", key, db.id)
    c.add_reply(b":%d\r\n" % removed)


def linsert_command(c):
    argv = c.argv
    where = argv[2].lower()
    if where not in (b"before", b"after"):
        c.add_reply_error(SYNTAX_ERR)
        return
    db = c.db
    key = argv[1]
    lst, ok = lookup_list_write(c, key)
    if not ok:
        return
    if lst is None:
        c.add_reply(b":0\r\n")
        return
    try:
        index = lst.index(argv[3])
    except ValueError:
        c.add_reply(b":-1\r\n")
        return
    lst.insert(index if where == b"before" else index + 1, argv[4])
    signal_modified_key(c, db, key)
    notify.notify_keyspace_event(notify.NOTIFY_LIST, b"linsert", key, db.id)
    c.add_reply(b":%d\r\n" % len(lst))


def parse_positive_or_reply(c, arg, msg):
    """getPositiveLongFromObjectOrReply() with a message for both failures."""
    v = string2ll(arg)
    if v is None or v < 0:
        c.add_reply_error(msg)
        return None
    return v


def lpos_command(c):
    argv = c.argv
    rank, count, maxlen = 1, -1, 0
    j = 3
    while j < len(argv):
        opt = argv[j].lower()
        if j + 1 >= len(argv) or opt not in (b"rank", b"count", b"maxlen"):
            c.add_reply_error(SYNTAX_ERR)
            return
        j += 1
        if opt == b"rank":
            rank = string2ll(argv[j])
            if rank is None:
                c.add_reply_error(NOT_INTEGER)
                return
            if rank == 0:
                c.add_reply_error("RANK can't be zero: use 1 to start from the first match, 2 "
                                  "from the second ... or use negative to start from the end "
                                  "of the list")
                return
        elif opt == b"count":
            count = parse_positive_or_reply(c, argv[j], "COUNT can't be negative")
            if count is None:
                return
        else:
            maxlen = parse_positive_or_reply(c, argv[j], "MAXLEN can't be negative")
            if maxlen is None:
                return
        j += 1
    lst, ok = lookup_list_read(c, argv[1])
    if not ok:
        return
    if lst is None:
        if count != -1:
            c.add_reply(EMPTY_ARRAY)
        else:
            c.add_reply_null()
        return
    matches = list_positions(lst, argv[2], rank, count if count != -1 else 1, maxlen)
    if count != -1:
        c.add_reply(b"*%d\r\n" % len(matches) + b"".join(b":%d\r\n" % m for m in matches))
    elif matches:
        c.add_reply(b":%d\r\n" % matches[0])
    else:
        c.add_reply_null()


def list_positions(lst, element, rank, count, maxlen):
    """The indexes of element from the |rank|-th match on (from the tail
    when rank < 0), at most count of them (0: all), looking at no more
    than maxlen items (0: all)."""
    n = len(lst)
    reverse = rank < 0
    # Redis negates a negative rank in C: LLONG_MIN stays negative, and
    # every match then counts (no skip).
    skip = 0 if rank == LLONG_MIN else abs(rank) - 1
    items = reversed(lst) if reverse else lst
    out = []
    for i, item in enumerate(items):
        if maxlen and i >= maxlen:
            break
        if item == element:
            if skip:
                skip -= 1
                continue
            out.append(n - 1 - i if reverse else i)
            if count and len(out) >= count:
                break
    return out


_W = CMD_WRITE
_R = CMD_READONLY
_F = CMD_FAST
_G = "list"

COMMANDS = [
    Command("lpush", lpush_command, -3, _W | _F, 1, 1, 1, group=_G,
            summary="Prepend one or multiple elements to a list"),
    Command("rpush", rpush_command, -3, _W | _F, 1, 1, 1, group=_G,
            summary="Append one or multiple elements to a list"),
    Command("lpushx", lpushx_command, -3, _W | _F, 1, 1, 1, group=_G,
            summary="Prepend an element to a list, only if the list exists"),
    Command("rpushx", rpushx_command, -3, _W | _F, 1, 1, 1, group=_G,
            summary="Append an element to a list, only if the list exists"),
    Command("lpop", lpop_command, -2, _W | _F, 1, 1, 1, group=_G,
            summary="Remove and get the first elements in a list"),
    Command("rpop", rpop_command, -2, _W | _F, 1, 1, 1, group=_G,
            summary="Remove and get the last elements in a list"),
    Command("lrange", lrange_command, 4, _R, 1, 1, 1, group=_G,
            summary="Get a range of elements from a list"),
    Command("ltrim", ltrim_command, 4, _W, 1, 1, 1, group=_G,
            summary="Trim a list to the specified range"),
    Command("llen", llen_command, 2, _R | _F, 1, 1, 1, group=_G,
            summary="Get the length of a list"),
    Command("lindex", lindex_command, 3, _R, 1, 1, 1, group=_G,
            summary="Get an element from a list by its index"),
    Command("lset", lset_command, 4, _W, 1, 1, 1, group=_G,
            summary="Set the value of an element in a list by its index"),
    Command("lrem", lrem_command, 4, _W, 1, 1, 1, group=_G,
            summary="Remove elements from a list"),
    Command("linsert", linsert_command, 5, _W, 1, 1, 1, group=_G,
            summary="Insert an element before or after another element in a list"),
    Command("lpos", lpos_command, -3, _R, 1, 1, 1, group=_G,
            summary="Return the index of matching elements on a list"),
]
