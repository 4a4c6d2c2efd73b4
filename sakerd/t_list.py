"""List commands: LPUSH RPUSH LPOP RPOP LRANGE LLEN LTRIM LINDEX (t_list.c).

A list is a collections.deque of bytes: O(1) pushes and pops at both ends,
as Redis's quicklist. Ranges are read with itertools.islice (a deque has
no O(1) access in the middle). A list left empty is deleted, as in Redis.

LPUSH/RPUSH/LPOP/RPOP are the hot path (benchmarked): they look the key up
inline.
"""

from collections import deque
from itertools import islice

from .db import WRONGTYPE_ERR
from .resp import string2ll
from .server import Command, CMD_FAST, CMD_READONLY, CMD_WRITE

NOT_INTEGER = "value is not an integer or out of range"
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
]
