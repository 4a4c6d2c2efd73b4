"""List commands: LPUSH RPUSH LPOP RPOP LRANGE LLEN LTRIM LINDEX LMOVE
RPOPLPUSH LMPOP and the blocking BLPOP BRPOP BLMOVE BRPOPLPUSH BLMPOP (t_list.c).

A list is a collections.deque of bytes: O(1) pushes and pops at both ends,
as Redis's quicklist. Ranges are read with itertools.islice (a deque has
no O(1) access in the middle). A list left empty is deleted, as in Redis.

LPUSH/RPUSH/LPOP/RPOP are the hot path (benchmarked): they look the key up
inline.

Blocking pops block through blocked.py when no key has elements: the
client waits with a BlockPos (where to pop, where to push, the count),
and serve_blocked_on_list() does its pop when a key is ready, with the
replies and events of Redis's serveClientBlockedOnList.
"""

from collections import deque
from itertools import islice

from . import blocked, notify
from .blocked import BLOCKED_LIST, block_for_keys, get_timeout_or_reply
from .db import WRONGTYPE_ERR, lookup_typed, signal_modified_key
from .networking import CLIENT_DENY_BLOCKING
from .notify import notify_keyspace_event, NOTIFY_GENERIC, NOTIFY_LIST
from .resp import string2ll, LLONG_MIN
from .server_h import server, Command, CMD_BLOCKING, CMD_FAST, CMD_NOSCRIPT, CMD_READONLY, CMD_WRITE

NOT_INTEGER = "value is not an integer or out of range"
SYNTAX_ERR = "syntax error"
EMPTY_ARRAY = b"*0\r\n"
LIST_HEAD = True
LIST_TAIL = False
LONG_MAX = (1 << 63) - 1

blocked.VALUE_BTYPE[deque] = BLOCKED_LIST


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
        lst = deque()
        db.add(key, lst)
    elif lst.__class__ is not deque:
        c.add_reply_error(WRONGTYPE_ERR)
        return
    # LPUSH a b c pushes a, then b, then c at the head: extendleft's order.
    if head:
        lst.extendleft(argv[2:])
    else:
        lst.extend(argv[2:])
    c.add_reply(b":%d\r\n" % len(lst))
    if db.watched_keys or db.blocking_keys or server.tracking_clients:
        # signal_modified_key's own tests, inlined: the call costs more.
        signal_modified_key(c, db, key)
    if server.notify_keyspace_events:
        notify_keyspace_event(NOTIFY_LIST, b"lpush" if head else b"rpush", key, db.id)


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
    if not lst or db.watched_keys or db.blocking_keys or server.notify_keyspace_events or \
            server.tracking_clients:
        list_elements_removed(c, db, key, head, lst)


def list_elements_removed(c, db, key, head, lst):
    """listElementsRemoved(): the pop event, the key deleted when empty."""
    if server.notify_keyspace_events:
        notify_keyspace_event(NOTIFY_LIST, b"lpop" if head else b"rpop", key, db.id)
    if not lst:
        db.delete(key)
        notify_keyspace_event(NOTIFY_GENERIC, b"del", key, db.id)
    signal_modified_key(c, db, key)


def lpop_command(c):
    pop_generic(c, True)


def rpop_command(c):
    pop_generic(c, False)


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
    lst, ok = lookup_typed(c, c.argv[1], deque)
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
        lst = None
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
    notify_keyspace_event(NOTIFY_LIST, b"ltrim", key, db.id)
    if lst is None:
        db.delete(key)
        notify_keyspace_event(NOTIFY_GENERIC, b"del", key, db.id)
    signal_modified_key(c, db, key)
    c.add_reply(b"+OK\r\n")


def llen_command(c):
    lst, ok = lookup_typed(c, c.argv[1], deque)
    if ok:
        c.add_reply_long_long(0 if lst is None else len(lst))


def lindex_command(c):
    lst, ok = lookup_typed(c, c.argv[1], deque)
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


# ---- LMOVE / RPOPLPUSH / LMPOP ----------------------------------------------------

def get_list_position_or_reply(c, arg):
    """LEFT or RIGHT: LIST_HEAD / LIST_TAIL, or None after a syntax error."""
    where = arg.lower()
    if where == b"left":
        return LIST_HEAD
    if where == b"right":
        return LIST_TAIL
    c.add_reply_error(SYNTAX_ERR)
    return None


def lmove_handle_push(c, db, dstkey, dst, value, head):
    """lmoveHandlePush(): push on the destination (made if missing), reply value."""
    if dst is None:
        dst = deque()
        db.add(dstkey, dst)
    signal_modified_key(c, db, dstkey)
    if head:
        dst.appendleft(value)
    else:
        dst.append(value)
    notify_keyspace_event(NOTIFY_LIST, b"lpush" if head else b"rpush", dstkey, db.id)
    c.add_reply(b"$%d\r\n%s\r\n" % (len(value), value))


def lmove_generic(c, wherefrom, whereto):
    db = c.db
    srckey, dstkey = c.argv[1], c.argv[2]
    src = db.lookup_write(srckey)
    if src is None:
        c.add_reply_null()
        return
    if src.__class__ is not deque:
        c.add_reply_error(WRONGTYPE_ERR)
        return
    dst = db.lookup_write(dstkey)
    if dst is not None and dst.__class__ is not deque:
        c.add_reply_error(WRONGTYPE_ERR)
        return
    value = src.popleft() if wherefrom else src.pop()
    lmove_handle_push(c, db, dstkey, dst, value, whereto)
    list_elements_removed(c, db, srckey, wherefrom, src)


def get_wherefrom_whereto_or_reply(c):
    """LMOVE's and BLMOVE's two positions (argv[3], argv[4]), or None."""
    wherefrom = get_list_position_or_reply(c, c.argv[3])
    if wherefrom is None:
        return None
    whereto = get_list_position_or_reply(c, c.argv[4])
    if whereto is None:
        return None
    return wherefrom, whereto


def lmove_command(c):
    positions = get_wherefrom_whereto_or_reply(c)
    if positions is not None:
        lmove_generic(c, *positions)


def rpoplpush_command(c):
    lmove_generic(c, LIST_TAIL, LIST_HEAD)


def list_pop_range_and_reply_with_key(c, db, key, lst, head, count):
    """listPopRangeAndReplyWithKey(): *2 key [elements], in popping order."""
    pop = lst.popleft if head else lst.pop
    items = [pop() for _ in range(min(count, len(lst)))]
    c.add_reply(b"*2\r\n$%d\r\n%s\r\n" % (len(key), key))
    c.add_reply_bulks(items)
    list_elements_removed(c, db, key, head, lst)


def first_non_empty_list(c, db, keys):
    """(key, list) of the first of keys holding elements, (None, None) if
    none does, or None after replying WRONGTYPE (a key before it is no list)."""
    for key in keys:
        lst = db.lookup_write(key)
        if lst is None:
            continue
        if lst.__class__ is not deque:
            c.add_reply_error(WRONGTYPE_ERR)
            return None
        if lst:
            return key, lst
    return None, None


def mpop_generic(c, keys, head, count):
    db = c.db
    found = first_non_empty_list(c, db, keys)
    if found is None:
        return
    key, lst = found
    if key is None:
        c.add_reply_null_array()
    else:
        list_pop_range_and_reply_with_key(c, db, key, lst, head, count)


def get_long_at_least_or_reply(c, arg, minimum, msg):
    """getRangeLongFromObjectOrReply(minimum, LONG_MAX) (with 0, Redis's
    getPositiveLongFromObjectOrReply): msg for any failure."""
    v = string2ll(arg)
    if v is None or v < minimum:
        c.add_reply_error(msg)
        return None
    return v


def lmpop_generic(c, numkeys_idx, block):
    """LMPOP numkeys key... LEFT|RIGHT [COUNT n]; BLMPOP timeout numkeys ..."""
    argv = c.argv
    numkeys = get_long_at_least_or_reply(c, argv[numkeys_idx], 1,
                                         "numkeys should be greater than 0")
    if numkeys is None:
        return
    where_idx = numkeys_idx + numkeys + 1
    if where_idx >= len(argv):
        c.add_reply_error(SYNTAX_ERR)
        return
    head = get_list_position_or_reply(c, argv[where_idx])
    if head is None:
        return
    count = -1
    j = where_idx + 1
    while j < len(argv):
        if count == -1 and argv[j].lower() == b"count" and j + 1 < len(argv):
            j += 1
            count = get_long_at_least_or_reply(c, argv[j], 1, "count should be greater than 0")
            if count is None:
                return
        else:
            c.add_reply_error(SYNTAX_ERR)
            return
        j += 1
    if count == -1:
        count = 1
    keys = argv[numkeys_idx + 1:where_idx]
    if block:
        blocking_pop_generic(c, keys, head, 1, count)
    else:
        mpop_generic(c, keys, head, count)


def lmpop_command(c):
    lmpop_generic(c, 1, False)


# ---- blocking pops ------------------------------------------------------------------

class BlockPos:
    """What a client blocked in a list pop does once served (Redis's blockPos
    plus bpop.target and bpop.count): count -1 is BLPOP/BRPOP's single pop."""
    __slots__ = ("wherefrom", "whereto", "target", "count")

    def __init__(self, wherefrom, whereto=None, target=None, count=-1):
        self.wherefrom = wherefrom
        self.whereto = whereto
        self.target = target
        self.count = count


def serve_blocked_on_list(receiver, db, key, lst, pos):
    """serveClientBlockedOnList(): the blocked.py serve callback for lists."""
    head = pos.wherefrom
    if pos.target is None:
        if pos.count != -1:
            list_pop_range_and_reply_with_key(receiver, db, key, lst, head, pos.count)
            return True
        value = lst.popleft() if head else lst.pop()
        receiver.add_reply(b"*2\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (
            len(key), key, len(value), value))
        notify_keyspace_event(NOTIFY_LIST, b"lpop" if head else b"rpop", key, db.id)
    else:
        dst = db.lookup_write(pos.target)
        if dst is not None and dst.__class__ is not deque:
            receiver.add_reply_error(WRONGTYPE_ERR)
        else:
            value = lst.popleft() if head else lst.pop()
            lmove_handle_push(receiver, db, pos.target, dst, value, pos.whereto)
            notify_keyspace_event(NOTIFY_LIST, b"lpop" if head else b"rpop", key, db.id)
    if not lst:
        db.delete(key)
        notify_keyspace_event(NOTIFY_GENERIC, b"del", key, db.id)
    # No signal_modified_key for key: the push that made it ready did it.
    return True


def blocking_pop_generic(c, keys, head, timeout_idx, count):
    """blockingPopGenericCommand(): pop from the first non-empty key, or block."""
    timeout = get_timeout_or_reply(c, c.argv[timeout_idx])
    if timeout is None:
        return
    db = c.db
    found = first_non_empty_list(c, db, keys)
    if found is None:
        return
    key, lst = found
    if key is not None:
        if count != -1:
            list_pop_range_and_reply_with_key(c, db, key, lst, head, count)
            return
        value = lst.popleft() if head else lst.pop()
        c.add_reply(b"*2\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(key), key, len(value), value))
        list_elements_removed(c, db, key, head, lst)
        return
    if c.flags & CLIENT_DENY_BLOCKING:
        # Not allowed to block (MULTI, scripts): as if timed out, even for 0.
        c.add_reply_null_array()
        return
    block_for_keys(c, BLOCKED_LIST, keys, timeout, serve_blocked_on_list,
                   BlockPos(head, count=count))


def blpop_command(c):
    blocking_pop_generic(c, c.argv[1:-1], LIST_HEAD, len(c.argv) - 1, -1)


def brpop_command(c):
    blocking_pop_generic(c, c.argv[1:-1], LIST_TAIL, len(c.argv) - 1, -1)


def blmove_generic(c, wherefrom, whereto, timeout):
    src = c.db.lookup_write(c.argv[1])
    if src is not None and src.__class__ is not deque:
        c.add_reply_error(WRONGTYPE_ERR)
        return
    if src is not None:
        lmove_generic(c, wherefrom, whereto)
    elif c.flags & CLIENT_DENY_BLOCKING:
        c.add_reply_null()
    else:
        block_for_keys(c, BLOCKED_LIST, [c.argv[1]], timeout, serve_blocked_on_list,
                       BlockPos(wherefrom, whereto, c.argv[2]))


def blmove_command(c):
    positions = get_wherefrom_whereto_or_reply(c)
    if positions is None:
        return
    timeout = get_timeout_or_reply(c, c.argv[5])
    if timeout is not None:
        blmove_generic(c, *positions, timeout)


def brpoplpush_command(c):
    timeout = get_timeout_or_reply(c, c.argv[3])
    if timeout is not None:
        blmove_generic(c, LIST_TAIL, LIST_HEAD, timeout)


def blmpop_command(c):
    lmpop_generic(c, 2, True)


# ---- LSET / LREM / LINSERT / LPOS -------------------------------------------------------

def lset_command(c):
    db = c.db
    key = c.argv[1]
    lst, ok = lookup_typed(c, key, deque, True)
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
    lst, ok = lookup_typed(c, key, deque, True)
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
    lst, ok = lookup_typed(c, key, deque, True)
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
            count = get_long_at_least_or_reply(c, argv[j], 0, "COUNT can't be negative")
            if count is None:
                return
        else:
            maxlen = get_long_at_least_or_reply(c, argv[j], 0, "MAXLEN can't be negative")
            if maxlen is None:
                return
        j += 1
    lst, ok = lookup_typed(c, argv[1], deque)
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
_NS = CMD_NOSCRIPT
_B = CMD_BLOCKING
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
    Command("lmove", lmove_command, 5, _W, 1, 2, 1, group=_G,
            summary="Pop an element from a list, push it to another list and return it"),
    Command("rpoplpush", rpoplpush_command, 3, _W, 1, 2, 1, group=_G,
            summary="Remove the last element in a list, prepend it to another list and "
                    "return it"),
    Command("lmpop", lmpop_command, -4, _W, 0, 0, 0, group=_G,
            summary="Pop elements from a list"),
    Command("blpop", blpop_command, -3, _W | _NS | _B, 1, -2, 1, group=_G,
            summary="Remove and get the first element in a list, or block until one is "
                    "available"),
    Command("brpop", brpop_command, -3, _W | _NS | _B, 1, -2, 1, group=_G,
            summary="Remove and get the last element in a list, or block until one is "
                    "available"),
    Command("blmove", blmove_command, 6, _W | _NS | _B, 1, 2, 1, group=_G,
            summary="Pop an element from a list, push it to another list and return it; "
                    "or block until one is available"),
    Command("brpoplpush", brpoplpush_command, 4, _W | _NS | _B, 1, 2, 1, group=_G,
            summary="Pop an element from a list, push it to another list and return it; "
                    "or block until one is available"),
    Command("blmpop", blmpop_command, -5, _W | _B, 0, 0, 0, group=_G,
            summary="Pop elements from a list, or block until one is available"),
    Command("lset", lset_command, 4, _W, 1, 1, 1, group=_G,
            summary="Set the value of an element in a list by its index"),
    Command("lrem", lrem_command, 4, _W, 1, 1, 1, group=_G,
            summary="Remove elements from a list"),
    Command("linsert", linsert_command, 5, _W, 1, 1, 1, group=_G,
            summary="Insert an element before or after another element in a list"),
    Command("lpos", lpos_command, -3, _R, 1, 1, 1, group=_G,
            summary="Return the index of matching elements on a list"),
]
