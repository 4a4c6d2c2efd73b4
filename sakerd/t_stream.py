"""Streams: XADD XRANGE XREAD XGROUP XREADGROUP XACK XCLAIM XINFO... (Redis's t_stream.c).

The layout. A stream is a list of nodes, each holding up to
`stream-node-max-entries` entries in ID order, as Redis's radix tree of
listpacks; `keys` is the parallel list of the nodes' first ("master") IDs.
An ID is one Python int, ms << 64 | seq: IDs compare, increment (the
successor of 5-18446744073709551615 is 6-0) and bisect as plain integers.
A node keeps its live IDs in one list and, in a parallel one, each entry's
reply bytes, built once at XADD (an entry never changes; every read sends
those bytes; the fields are not kept apart: only the node's first field
names are, for the byte count below). So:
- an append is two list appends on the tail node (a new node every 100);
- a range read bisects `keys` for the first node, then the node's IDs, and
  walks forward or back: O(log n + returned);
- trimming from the head drops whole nodes with one slice deletion, and
  within a node deletes a prefix of two short lists.
A flat sorted list of all IDs would make appends and reads as cheap, but
trimming its head is a move of the whole list: `python bench/stream_layout.py`
measures, for a stream capped at 100,000 entries, 297 us per append with a
flat list trimmed at every XADD against 35 us with nodes (29 us of which is
the append itself, on a loaded 2-core machine). The nodes also make Redis's
observable node behaviour fall out of the same structure:

Why the nodes are Redis's nodes. `MAXLEN ~`/`MINID ~` remove only whole
nodes, LIMIT counts whole nodes, XINFO reports radix-tree-keys and -nodes:
what remains after an approximate trim depends on where Redis's nodes
begin. Redis starts a new node when the tail one holds max-entries entries
(deleted ones count) or when its listpack's size plus the new entry's
field and value lengths reaches `stream-node-max-bytes`. So each node
tracks the exact byte size the listpack would have (listpack.c's
encodings: integers 1..9 bytes, strings that parse as int64 stored as
integers, back-lengths), and its tombstones: XDEL and exact trims remove an
entry from our lists but count it as deleted, as Redis marks a flag and
keeps the bytes; a node whose last live entry is XDELed goes away. XINFO's
radix-tree-nodes is computed from the master IDs as rax.c lays out a
compressed trie of 16-byte big-endian keys.

Consumer groups hold a pending-entries list (PEL): a dict ID -> NACK plus
the sorted list of its IDs (IdIndex), once per group and once per
consumer, as Redis's two radix trees sharing the NACKs. Groups and
consumers reply in name order (rax order: bytewise).

Blocking (XREAD/XREADGROUP BLOCK): a read that finds data answers at once,
as Redis; one that would wait blocks through blocked.py (`block_hook`,
plugged in at the end of this file), and `serve_blocked_reader()` answers
it when a key it waits on gets new entries (Redis's
serveClientsBlockedOnStreamKey). Inside MULTI it answers as a timeout.
"""

import time
from bisect import bisect_left, bisect_right, insort

from . import notify
from .cmd_server import _container
from .db import WRONGTYPE_ERR, TYPE_NAMES, mstime, lookup_typed, signal_modified_key
from .resp import encode_bulk_array, string2ll
from .server_h import (Command, server, CMD_BLOCKING, CMD_FAST, CMD_LOADING, CMD_READONLY,
                     CMD_STALE, CMD_WRITE)

_time = time.time

U64 = (1 << 64) - 1
ID_MAX = (1 << 128) - 1
SCG_INVALID_ENTRIES_READ = -1
STREAM_LISTPACK_MAX_SIZE = 1 << 30
XREAD_BLOCKED_DEFAULT_COUNT = 1000

NOT_INTEGER = "value is not an integer or out of range"
INVALID_ID = "Invalid stream ID specified as stream command argument"
SYNTAX_ERR = "syntax error"
OK = b"+OK\r\n"
EMPTY_ARRAY = b"*0\r\n"

TRIM_NONE = 0
TRIM_MAXLEN = 1
TRIM_MINID = 2


def id_bytes(i):
    return b"%d-%d" % (i >> 64, i & U64)


def _id_bulk(i):
    s = b"%d-%d" % (i >> 64, i & U64)
    return b"$%d\r\n%s\r\n" % (len(s), s)


# ---- listpack sizes (listpack.c), to start nodes where Redis does --------------------

def _int_enc_len(v):
    if 0 <= v <= 127:
        return 1
    if -4096 <= v <= 4095:
        return 2
    if -32768 <= v <= 32767:
        return 3
    if -8388608 <= v <= 8388607:
        return 4
    if -2147483648 <= v <= 2147483647:
        return 5
    return 9


def _backlen(n):
    if n <= 127:
        return 1
    if n < 16383:
        return 2
    if n < 2097151:
        return 3
    if n < 268435455:
        return 4
    return 5


def _lp_int(v):
    """Bytes of an integer element with its back-length (always one byte)."""
    if 0 <= v <= 127:
        return 2
    return _int_enc_len(v) + 1


_INT_START = frozenset(b"-0123456789")
_INT_HEADS = frozenset([b""] + [bytes([ch]) for ch in b"-0123456789"])


def _lp_str(s):
    """Bytes of a string element: as an integer when it parses as one."""
    n = len(s)
    if n and n < 21 and s[0] in _INT_START:
        v = string2ll(s)
        if v is not None:
            return _int_enc_len(v) + 1
    e = 1 + n if n < 64 else 2 + n if n < 4096 else 5 + n
    return e + _backlen(e)


def _int64(v):
    """A uint64 difference as C stores it in an int64."""
    v &= U64
    return v - (1 << 64) if v >= 1 << 63 else v


class Node:
    """One listpack of Redis's radix tree: entries from `master` on."""
    __slots__ = ("master", "ids", "wire", "deleted", "fields", "body", "tail")

    def __init__(self, master, fields):
        self.master = master
        self.ids = []
        self.wire = []          # per entry: its reply bytes, built by append()
        self.deleted = 0        # tombstones: they count toward max-entries
        self.fields = fields    # the master entry's field names
        # The listpack without its count and deleted integers: num-fields,
        # the fields, the master terminator, then the entries.
        self.body = _lp_int(len(fields)) + sum(map(_lp_str, fields)) + 1 + 1
        self.tail = master      # last ID appended, tombstone or not

    def lp_bytes(self):
        # 6 bytes of header, the end byte, count and deleted, the body.
        return 7 + _lp_int(len(self.ids)) + _lp_int(self.deleted) + self.body


class NACK:
    __slots__ = ("delivery_time", "delivery_count", "consumer")

    def __init__(self, consumer, now):
        self.delivery_time = now
        self.delivery_count = 1
        self.consumer = consumer


class IdIndex:
    """A PEL: ID -> NACK with its IDs kept sorted (Redis's rax of 128-bit keys)."""
    __slots__ = ("d", "keys")

    def __init__(self):
        self.d = {}
        self.keys = []

    def __len__(self):
        return len(self.d)

    def insert(self, i, nack):
        if i in self.d:
            return False
        self.d[i] = nack
        keys = self.keys
        if not keys or i > keys[-1]:
            keys.append(i)
        else:
            insort(keys, i)
        return True

    def remove(self, i):
        if self.d.pop(i, None) is None:
            return
        keys = self.keys
        del keys[bisect_left(keys, i)]

    def from_id(self, start):
        """The IDs >= start, in order (a copy: callers change the PEL)."""
        return self.keys[bisect_left(self.keys, start):]


class Consumer:
    __slots__ = ("name", "seen_time", "pel")

    def __init__(self, name):
        self.name = name
        self.seen_time = mstime()
        self.pel = IdIndex()


class CG:
    __slots__ = ("last_id", "entries_read", "pel", "consumers")

    def __init__(self, last_id, entries_read):
        self.last_id = last_id
        self.entries_read = entries_read
        self.pel = IdIndex()
        self.consumers = {}


class Stream:
    __slots__ = ("nodes", "keys", "length", "last_id", "first_id", "max_deleted",
                 "entries_added", "cgroups")

    def __init__(self):
        self.nodes = []
        self.keys = []          # nodes' master IDs, for bisect
        self.length = 0
        self.last_id = 0
        self.first_id = 0
        self.max_deleted = 0
        self.entries_added = 0
        self.cgroups = None     # name -> CG

    # ---- append ---------------------------------------------------------------------

    def append(self, items, use_id=None, seq_given=True):
        """streamAppendItem(): the new ID as a bulk reply, or an error text.

        The hot path of XADD (and of every log line): one function.
        """
        last = self.last_id
        if use_id is not None:
            if seq_given:
                new = use_id
            elif last >> 64 == use_id >> 64:
                if last & U64 == U64:
                    # Redis answers with a stale errno here: this text.
                    return "Elements are too large to be stored"
                new = last + 1
            else:
                new = use_id
        else:
            now = int(_time() * 1000)
            new = now << 64 if now > last >> 64 else (last + 1 if last != ID_MAX else 0)
        if new <= last:
            return "The ID specified in XADD is equal or smaller than the target stream top item"
        totlen = 0
        for x in items:
            totlen += len(x)
        if totlen > STREAM_LISTPACK_MAX_SIZE:
            return "Elements are too large to be stored"
        nodes = self.nodes
        node = nodes[-1] if nodes else None
        if node is not None and self._node_full(node, totlen):
            node = None
        fields = items[0::2]
        if node is None:
            node = Node(new, fields)
            nodes.append(node)
            self.keys.append(new)
            same = True
        else:
            same = fields == node.fields
        master = node.master
        d = (new >> 64) - (master >> 64)
        size = 2 + (2 if 0 <= d <= 127 else _lp_int(_int64(d)))
        d = (new & U64) - (master & U64)
        size += 2 if 0 <= d <= 127 else _lp_int(_int64(d))
        n = len(fields)
        if same:
            size += _lp_int(n + 3)
            for v in items[1::2]:
                # Inline for the common value: a short string, not a number.
                size += 2 + len(v) if len(v) < 64 and v[:1] not in _INT_HEADS else _lp_str(v)
        else:
            size += _lp_int(n) + _lp_int(2 * n + 4)
            for x in items:
                size += _lp_str(x)
        node.body += size
        ids = b"%d-%d" % (new >> 64, new & U64)
        bulk = b"$%d\r\n%s\r\n" % (len(ids), ids)
        if n == 1:
            f, v = items
            node.wire.append(b"*2\r\n%s*2\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (
                bulk, len(f), f, len(v), v))
        else:
            node.wire.append(b"*2\r\n" + bulk + encode_bulk_array(items))
        node.ids.append(new)
        node.tail = new
        self.length += 1
        self.entries_added += 1
        self.last_id = new
        if self.length == 1:
            self.first_id = new
        return bulk

    @staticmethod
    def _node_full(node, totlen):
        cfg = server.config
        max_bytes = cfg.stream_node_max_bytes if cfg is not None else 4096
        max_entries = cfg.stream_node_max_entries if cfg is not None else 100
        if max_bytes == 0 or max_bytes > STREAM_LISTPACK_MAX_SIZE:
            max_bytes = STREAM_LISTPACK_MAX_SIZE
        if max_entries and len(node.ids) + node.deleted >= max_entries:
            return True
        return node.lp_bytes() + totlen >= max_bytes

    # ---- reading ---------------------------------------------------------------------

    def range(self, start, end, rev=False):
        """(id, entry reply bytes) for start <= id <= end, in order or reversed."""
        keys = self.keys
        nodes = self.nodes
        if not rev:
            ni = bisect_right(keys, start) - 1
            if ni < 0:
                ni = 0
            first = True
            for node in nodes[ni:]:
                ids = node.ids
                j = bisect_left(ids, start) if first else 0
                first = False
                wire = node.wire
                for k in range(j, len(ids)):
                    i = ids[k]
                    if i > end:
                        return
                    yield i, wire[k]
        else:
            ni = bisect_right(keys, end) - 1
            first = True
            while ni >= 0:
                node = nodes[ni]
                ni -= 1
                ids = node.ids
                j = bisect_right(ids, end) if first else len(ids)
                first = False
                wire = node.wire
                for k in range(j - 1, -1, -1):
                    i = ids[k]
                    if i < start:
                        return
                    yield i, wire[k]

    def lookup(self, i):
        """The reply bytes of entry i, or None."""
        ni = bisect_right(self.keys, i) - 1
        if ni < 0:
            return None
        node = self.nodes[ni]
        k = bisect_left(node.ids, i)
        if k < len(node.ids) and node.ids[k] == i:
            return node.wire[k]
        return None

    def first_live_id(self):
        for node in self.nodes:
            if node.ids:
                return node.ids[0]
        return None

    def last_live_id(self):
        for node in reversed(self.nodes):
            if node.ids:
                return node.ids[-1]
        return 0

    # ---- deleting ---------------------------------------------------------------------

    def delete(self, i):
        """streamDeleteItem(): True if entry i existed."""
        ni = bisect_right(self.keys, i) - 1
        if ni < 0:
            return False
        node = self.nodes[ni]
        ids = node.ids
        k = bisect_left(ids, i)
        if k == len(ids) or ids[k] != i:
            return False
        if len(ids) == 1:
            # Its last live entry: Redis frees the whole listpack.
            del self.nodes[ni]
            del self.keys[ni]
        else:
            del ids[k]
            del node.wire[k]
            node.deleted += 1
        self.length -= 1
        return True

    def trim(self, strategy, maxlen, minid, approx, limit):
        """streamTrim(): remove entries from the head; how many were removed."""
        if strategy == TRIM_NONE:
            return 0
        nodes = self.nodes
        deleted = 0
        whole = 0
        for node in nodes:
            if strategy == TRIM_MAXLEN and self.length <= maxlen:
                break
            entries = len(node.ids)
            if limit and deleted + entries > limit:
                break
            if strategy == TRIM_MAXLEN:
                remove_node = self.length - entries >= maxlen
            else:
                remove_node = node.tail < minid
            if remove_node:
                whole += 1
                self.length -= entries
                deleted += entries
                continue
            if approx:
                break
            if strategy == TRIM_MAXLEN:
                k = self.length - maxlen
            else:
                k = bisect_left(node.ids, minid)
            del node.ids[:k]
            del node.wire[:k]
            node.deleted += k
            self.length -= k
            deleted += k
            break
        if whole:
            del nodes[:whole]
            del self.keys[:whole]
        if self.length == 0:
            self.first_id = 0
        elif deleted:
            self.first_id = self.first_live_id()
        return deleted

    # ---- consumer groups ------------------------------------------------------------

    def range_has_tombstones(self, start, end=ID_MAX):
        """streamRangeHasTombstones()."""
        md = self.max_deleted
        if not self.length or not md:
            return False
        if self.first_id > md:
            return False
        return start <= md <= end

    def estimate_distance(self, i):
        """streamEstimateDistanceFromFirstEverEntry(): the logical read counter of i."""
        if not self.entries_added:
            return 0
        if not self.length and i <= self.last_id:
            return self.entries_added
        if i == self.last_id:
            return self.entries_added
        if i > self.last_id:
            return SCG_INVALID_ENTRIES_READ
        md = self.max_deleted
        if not md or md < self.first_id:
            if i < self.first_id:
                return self.entries_added - self.length
            if i == self.first_id:
                return self.entries_added - self.length + 1
        return SCG_INVALID_ENTRIES_READ

    def group_lag(self, cg):
        """streamReplyWithCGLag(): the lag, or None when it cannot be known."""
        if not self.entries_added:
            return 0
        if cg.entries_read != SCG_INVALID_ENTRIES_READ and \
                not self.range_has_tombstones(cg.last_id):
            return self.entries_added - cg.entries_read
        er = self.estimate_distance(cg.last_id)
        if er != SCG_INVALID_ENTRIES_READ:
            return self.entries_added - er
        return None

    def rax_nodes(self):
        """The node count of Redis's radix tree holding these master IDs."""
        if not self.keys:
            return 1
        return _rax_nodes([k.to_bytes(16, "big") for k in self.keys], 0)


def _rax_nodes(keys, depth):
    """Nodes of a rax subtree whose node starts at `depth` (keys sorted, distinct,
    16 bytes): a compressed node spans a run of one-child levels; a branching
    node has one child node per distinct next byte; a key ends in a leaf."""
    if len(keys) == 1:
        return 1 if depth == 16 else 2
    first, last = keys[0], keys[-1]
    lcp = depth
    while first[lcp] == last[lcp]:
        lcp += 1
    n = 1 if lcp > depth else 0     # the compressed node, then the branch
    n += 1
    i = 0
    while i < len(keys):
        b = keys[i][lcp]
        j = i + 1
        while j < len(keys) and keys[j][lcp] == b:
            j += 1
        n += _rax_nodes(keys[i:j], lcp + 1)
        i = j
    return n


TYPE_NAMES[Stream] = "stream"


# ---- ID parsing ------------------------------------------------------------------------

_SPACES = b" \t\n\v\f\r"


def string2ull(s):
    """Redis's string2ull: string2ll, else C's strtoull (spaces, a sign) in full."""
    v = string2ll(s)
    if v is not None:
        return v if v >= 0 else None
    t = s.lstrip(_SPACES)
    neg = False
    if t[:1] in (b"+", b"-"):
        neg = t[:1] == b"-"
        t = t[1:]
    if not t or not t.isdigit():
        return None
    v = int(t)
    if v > U64:
        return None
    return (-v) & U64 if neg else v


def parse_id(s, missing_seq=0, strict=False, want_seq_given=False):
    """streamGenericParseIDOrReply(): (id, seq_given) or None when invalid."""
    if len(s) > 127:
        return None
    nul = s.find(b"\0")
    if nul != -1:
        s = s[:nul]     # C string functions stop at the NUL
    if s == b"-":
        return None if strict else (0, True)
    if s == b"+":
        return None if strict else (ID_MAX, True)
    dash = s.find(b"-")
    seq_given = True
    if dash == -1:
        ms = string2ull(s)
        seq = missing_seq
    else:
        ms = string2ull(s[:dash])
        tail = s[dash + 1:]
        if want_seq_given and tail == b"*":
            seq = 0
            seq_given = False
        else:
            seq = string2ull(tail)
            if seq is None:
                return None
    if ms is None:
        return None
    return (ms << 64) | seq, seq_given


def parse_id_or_reply(c, s, missing_seq=0, strict=False):
    r = parse_id(s, missing_seq, strict)
    if r is None:
        c.add_reply_error(INVALID_ID)
        return None
    return r[0]


def parse_interval_id_or_reply(c, s, missing_seq):
    """streamParseIntervalIDOrReply(): (id, exclusive) or None after replying."""
    if len(s) > 1 and s[:1] == b"(":
        i = parse_id_or_reply(c, s[1:], missing_seq, strict=True)
        return None if i is None else (i, True)
    i = parse_id_or_reply(c, s, missing_seq)
    return None if i is None else (i, False)


def parse_range_or_reply(c, start_arg, end_arg):
    """start and end of XRANGE/XPENDING with ( bounds applied, or None."""
    r = parse_interval_id_or_reply(c, start_arg, 0)
    if r is None:
        return None
    start, ex = r
    if ex:
        if start == ID_MAX:
            c.add_reply_error("invalid start ID for the interval")
            return None
        start += 1
    r = parse_interval_id_or_reply(c, end_arg, U64)
    if r is None:
        return None
    end, ex = r
    if ex:
        if end == 0:
            c.add_reply_error("invalid end ID for the interval")
            return None
        end -= 1
    return start, end


def get_long_long_or_reply(c, s, msg=NOT_INTEGER):
    v = string2ll(s)
    if v is None:
        c.add_reply_error(msg)
    return v


def non_negative_or_reply(c, s, negative_err):
    """An integer >= 0, or None after replying."""
    v = get_long_long_or_reply(c, s)
    if v is not None and v < 0:
        c.add_reply_error(negative_err)
        return None
    return v


# ---- lookups ---------------------------------------------------------------------------

def stream_or_reply(c, key, missing, write=False):
    """The stream at key, or None after replying WRONGTYPE or, when there is
    none, `missing` (reply bytes, or an error text)."""
    s, ok = lookup_typed(c, key, Stream, write)
    if s is None and ok:
        if missing.__class__ is str:
            c.add_reply_error(missing)
        else:
            c.add_reply(missing)
    return s


def group_or_reply(c, key, name, missing=None):
    """(stream, group), or None after replying WRONGTYPE, or NOGROUP (or
    `missing` when given) for a missing key or group."""
    s, ok = lookup_typed(c, key, Stream)
    if not ok:
        return None
    cg = s.cgroups.get(name) if s is not None and s.cgroups else None
    if cg is None:
        if missing is None:
            _nogroup(c, key, name)
        else:
            c.add_reply(missing)
        return None
    return s, cg


def _notify(event, key, dbid):
    notify.notify_keyspace_event(notify.NOTIFY_STREAM, event, key, dbid)


def create_consumer(cg, name, key, dbid):
    """streamCreateConsumer(): a new consumer, notified; None if it exists."""
    if name in cg.consumers:
        return None
    consumer = cg.consumers[name] = Consumer(name)
    _notify(b"xgroup-createconsumer", key, dbid)
    return consumer


def lookup_or_create_consumer(cg, name, key, dbid):
    consumer = cg.consumers.get(name)
    if consumer is None:
        return create_consumer(cg, name, key, dbid)
    consumer.seen_time = mstime()
    return consumer


# ---- XADD / XTRIM ------------------------------------------------------------------------

class TrimArgs:
    __slots__ = ("strategy", "approx", "limit", "maxlen", "minid", "id", "id_given",
                 "seq_given", "no_mkstream", "idpos")

    def __init__(self):
        self.strategy = TRIM_NONE
        self.approx = False
        self.limit = 0
        self.maxlen = 0
        self.minid = 0
        self.id = 0
        self.id_given = False
        self.seq_given = True
        self.no_mkstream = False
        self.idpos = 0


def parse_add_trim_args(c, xadd):
    """streamParseAddOrTrimArgsOrReply(): TrimArgs, or None after replying."""
    argv = c.argv
    argc = len(argv)
    a = TrimArgs()
    limit_given = False
    i = 2
    while i < argc:
        moreargs = argc - 1 - i
        opt = argv[i]
        lopt = opt.lower()
        if xadd and opt == b"*":
            break
        elif lopt in (b"maxlen", b"minid") and moreargs:
            if a.strategy != TRIM_NONE:
                c.add_reply_error("syntax error, MAXLEN and MINID options at the same time "
                                  "are not compatible")
                return None
            nxt = argv[i + 1]
            a.approx = moreargs >= 2 and nxt == b"~"
            if moreargs >= 2 and nxt in (b"~", b"="):
                i += 1
            if lopt == b"maxlen":
                v = non_negative_or_reply(c, argv[i + 1], "The MAXLEN argument must be >= 0.")
                if v is None:
                    return None
                a.maxlen = v
                a.strategy = TRIM_MAXLEN
            else:
                v = parse_id_or_reply(c, argv[i + 1], 0, strict=True)
                if v is None:
                    return None
                a.minid = v
                a.strategy = TRIM_MINID
            i += 1
        elif lopt == b"limit" and moreargs:
            v = non_negative_or_reply(c, argv[i + 1], "The LIMIT argument must be >= 0.")
            if v is None:
                return None
            a.limit = v
            limit_given = True
            i += 1
        elif xadd and lopt == b"nomkstream":
            a.no_mkstream = True
        elif xadd:
            r = parse_id(opt, 0, strict=True, want_seq_given=True)
            if r is None:
                c.add_reply_error(INVALID_ID)
                return None
            a.id, a.seq_given = r
            a.id_given = True
            break
        else:
            c.add_reply_error(SYNTAX_ERR)
            return None
        i += 1
    if a.limit and a.strategy == TRIM_NONE:
        c.add_reply_error("syntax error, LIMIT cannot be used without specifying a "
                          "trimming strategy")
        return None
    if not xadd and a.strategy == TRIM_NONE:
        c.add_reply_error("syntax error, XTRIM must be called with a trimming strategy")
        return None
    if limit_given:
        if not a.approx:
            c.add_reply_error("syntax error, LIMIT cannot be used without the special ~ option")
            return None
    elif a.approx:
        # At most 100 nodes of work per trim, as Redis.
        limit = 100 * server.config.stream_node_max_entries
        if limit <= 0:
            limit = 10000
        a.limit = min(limit, 1000000)
    else:
        a.limit = 0
    a.idpos = i
    return a


def xadd_command(c):
    argv = c.argv
    # XADD key * ...: no options to parse (the common case, fast).
    a = _AUTO_ID_ARGS if argv[2] == b"*" else parse_add_trim_args(c, True)
    if a is None:
        return
    field_pos = a.idpos + 1
    nitems = len(argv) - field_pos
    if nitems < 2 or nitems % 2:
        c.add_reply_error("wrong number of arguments for 'xadd' command")
        return
    if a.id_given and a.seq_given and a.id == 0:
        c.add_reply_error("The ID specified in XADD must be greater than 0-0")
        return
    key = argv[1]
    db = c.db
    s, ok = lookup_typed(c, key, Stream, True)
    if not ok:
        return
    if s is None:
        if a.no_mkstream:
            c.add_reply_null()
            return
        s = Stream()
        db.add(key, s)
    if s.last_id == ID_MAX:
        c.add_reply_error("The stream has exhausted the last possible ID, unable to add more items")
        return
    reply = s.append(tuple(argv[field_pos:]), a.id if a.id_given else None, a.seq_given)
    if reply.__class__ is str:
        c.add_reply_error(reply)
        return
    c.add_reply(reply)
    signal_modified_key(c, db, key)
    _notify(b"xadd", key, db.id)
    if a.strategy != TRIM_NONE and s.trim(a.strategy, a.maxlen, a.minid, a.approx, a.limit):
        _notify(b"xtrim", key, db.id)
    signal_key_as_ready(db, key)


_AUTO_ID_ARGS = TrimArgs()
_AUTO_ID_ARGS.idpos = 2


def xtrim_command(c):
    a = parse_add_trim_args(c, False)
    if a is None:
        return
    key = c.argv[1]
    s = stream_or_reply(c, key, b":0\r\n", write=True)
    if s is None:
        return
    deleted = s.trim(a.strategy, a.maxlen, a.minid, a.approx, a.limit)
    if deleted:
        _notify(b"xtrim", key, c.db.id)
        signal_modified_key(c, c.db, key)
    c.add_reply_long_long(deleted)


def append_entry(db, key, items, maxlen):
    """XADD key MAXLEN ~ maxlen * items, for the server's own streams.

    Returns the new ID, or None when the key holds another type. Signals
    and notifies as XADD does, and wakes the readers blocked on the key.
    """
    s = db.lookup_write(key)
    if s is None:
        s = Stream()
        db.add(key, s)
    elif s.__class__ is not Stream:
        return None
    if s.last_id == ID_MAX:
        return None
    if s.append(items).__class__ is str:
        return None
    signal_modified_key(None, db, key)
    _notify(b"xadd", key, db.id)
    if maxlen and s.trim(TRIM_MAXLEN, maxlen, 0, True, _default_approx_limit()):
        _notify(b"xtrim", key, db.id)
    signal_key_as_ready(db, key)
    return s.last_id


def _default_approx_limit():
    limit = 100 * server.config.stream_node_max_entries
    return min(limit if limit > 0 else 10000, 1000000)


# ---- XRANGE / XREVRANGE / XLEN / XDEL --------------------------------------------------

def xrange_generic(c, rev):
    argv = c.argv
    if rev:
        r = parse_range_or_reply(c, argv[3], argv[2])
    else:
        r = parse_range_or_reply(c, argv[2], argv[3])
    if r is None:
        return
    start, end = r
    count = -1
    j = 4
    while j < len(argv):
        if argv[j].lower() == b"count" and j + 1 < len(argv):
            count = get_long_long_or_reply(c, argv[j + 1])
            if count is None:
                return
            if count < 0:
                count = 0
            j += 2
        else:
            c.add_reply_error(SYNTAX_ERR)
            return
    s = stream_or_reply(c, argv[1], EMPTY_ARRAY)
    if s is None:
        return
    if count == 0:
        c.add_reply_null_array()
        return
    parts = []
    for i, wire in s.range(start, end, rev):
        parts.append(wire)
        if len(parts) == count:
            break
    c.add_reply(b"*%d\r\n" % len(parts) + b"".join(parts))


def xrange_command(c):
    xrange_generic(c, False)


def xrevrange_command(c):
    xrange_generic(c, True)


def xlen_command(c):
    s, ok = lookup_typed(c, c.argv[1], Stream)
    if ok:
        c.add_reply_long_long(0 if s is None else s.length)


def xdel_command(c):
    key = c.argv[1]
    s = stream_or_reply(c, key, b":0\r\n", write=True)
    if s is None:
        return
    ids = []
    for arg in c.argv[2:]:
        i = parse_id_or_reply(c, arg, 0, strict=True)
        if i is None:
            return
        ids.append(i)
    deleted = 0
    first_entry = False
    for i in ids:
        if s.delete(i):
            if i == s.first_id:
                first_entry = True
            if i > s.max_deleted:
                s.max_deleted = i
            deleted += 1
    if deleted:
        if s.length == 0:
            s.first_id = 0
        elif first_entry:
            s.first_id = s.first_live_id()
        signal_modified_key(c, c.db, key)
        _notify(b"xdel", key, c.db.id)
    c.add_reply_long_long(deleted)


# ---- XREAD / XREADGROUP ----------------------------------------------------------------

class StreamRead:
    """A parsed XREAD/XREADGROUP: what a blocked reader waits for."""
    __slots__ = ("keys", "ids", "group", "consumer", "noack", "count", "timeout")

    def __init__(self):
        self.keys = []
        self.ids = []           # per key: entries must be greater than this
        self.group = None       # group name for XREADGROUP
        self.consumer = None
        self.noack = False
        self.count = 0
        self.timeout = -1       # ms; -1 = no BLOCK, 0 = forever


def xread_get_keys(argv):
    """xreadGetKeys(): the positions of the keys of XREAD/XREADGROUP (the
    first half of what follows STREAMS), for key-pattern checks; [] when
    the request is malformed (the command then answers its own error)."""
    skip = {b"block": 1, b"count": 1, b"group": 2, b"noack": 0}
    i = 1
    while i < len(argv):
        opt = argv[i].lower()
        if opt == b"streams":
            n = len(argv) - i - 1
            return [] if n == 0 or n % 2 else list(range(i + 1, i + 1 + n // 2))
        if opt not in skip:
            break
        i += 1 + skip[opt]
    return []


def parse_xread_or_reply(c, xreadgroup):
    """The request of xreadCommand(): a StreamRead, or None after replying."""
    argv = c.argv
    argc = len(argv)
    r = StreamRead()
    streams_arg = 0
    i = 1
    while i < argc:
        moreargs = argc - i - 1
        o = argv[i].lower()
        if o == b"block" and moreargs:
            from .networking import CLIENT_SCRIPT
            if c.flags & CLIENT_SCRIPT:
                c.add_reply_error("%s command is not allowed with BLOCK option from scripts"
                                  % argv[0].decode("utf-8", "replace"))
                return None
            i += 1
            t = get_long_long_or_reply(c, argv[i], "timeout is not an integer or out of range")
            if t is None:
                return None
            if t < 0:
                c.add_reply_error("timeout is negative")
                return None
            r.timeout = t
        elif o == b"count" and moreargs:
            i += 1
            v = get_long_long_or_reply(c, argv[i])
            if v is None:
                return None
            r.count = max(v, 0)
        elif o == b"streams" and moreargs:
            streams_arg = i + 1
            n = argc - streams_arg
            if n % 2:
                c.add_reply_error("Unbalanced XREAD list of streams: for each stream key an "
                                  "ID or '$' must be specified.")
                return None
            break
        elif o == b"group" and moreargs >= 2:
            if not xreadgroup:
                c.add_reply_error("The GROUP option is only supported by XREADGROUP. You "
                                  "called XREAD instead.")
                return None
            r.group = argv[i + 1]
            r.consumer = argv[i + 2]
            i += 2
        elif o == b"noack":
            if not xreadgroup:
                c.add_reply_error("The NOACK option is only supported by XREADGROUP. You "
                                  "called XREAD instead.")
                return None
            r.noack = True
        else:
            c.add_reply_error(SYNTAX_ERR)
            return None
        i += 1
    if not streams_arg:
        c.add_reply_error(SYNTAX_ERR)
        return None
    if xreadgroup and r.group is None:
        c.add_reply_error("Missing GROUP option for XREADGROUP")
        return None
    n = (argc - streams_arg) // 2
    r.keys = argv[streams_arg:streams_arg + n]
    db = c.db
    for key, arg in zip(r.keys, argv[streams_arg + n:]):
        s = db.lookup_read(key)
        if s is not None and s.__class__ is not Stream:
            c.add_reply_error(WRONGTYPE_ERR)
            return None
        if r.group is not None and (s is None or s.cgroups is None or
                                    r.group not in s.cgroups):
            c.add_reply_error(b"-NOGROUP No such key '%s' or consumer group '%s' in "
                              b"XREADGROUP with GROUP option" % (key, r.group))
            return None
        if arg == b"$":
            if xreadgroup:
                c.add_reply_error(
                    "The $ ID is meaningless in the context of XREADGROUP: you want to read "
                    "the history of this consumer by specifying a proper ID, or use the > ID "
                    "to get new messages. The $ ID would just return an empty result set.")
                return None
            r.ids.append(s.last_id if s is not None else 0)
        elif arg == b">":
            if not xreadgroup:
                c.add_reply_error("The > ID can be specified only when calling XREADGROUP "
                                  "using the GROUP <group> <consumer> option.")
                return None
            r.ids.append(ID_MAX)    # resolved to the group's last ID when served
        else:
            i = parse_id_or_reply(c, arg, 0, strict=True)
            if i is None:
                return None
            r.ids.append(i)
    return r


def reply_with_range(c, s, start, end, count, cg=None, consumer=None, noack=False):
    """streamReplyWithRange() forward, with a group: deliver and track the PEL.

    Returns the reply bytes (an array of entries)."""
    parts = []
    now = mstime() if cg is not None and not noack else 0
    for i, wire in s.range(start, end):
        if cg is not None and i > cg.last_id:
            if cg.entries_read != SCG_INVALID_ENTRIES_READ and \
                    not s.range_has_tombstones(i):
                cg.entries_read += 1
            elif s.entries_added:
                cg.entries_read = s.estimate_distance(i)
            cg.last_id = i
        parts.append(wire)
        if cg is not None and not noack:
            nack = NACK(consumer, now)
            if cg.pel.insert(i, nack):
                consumer.pel.insert(i, nack)
            else:
                nack = cg.pel.d[i]
                nack.consumer.pel.remove(i)
                nack.consumer = consumer
                nack.delivery_time = mstime()
                nack.delivery_count = 1
                consumer.pel.insert(i, nack)
        if len(parts) == count:
            break
    return b"*%d\r\n" % len(parts) + b"".join(parts)


def reply_from_consumer_pel(c, s, start, count, consumer):
    """streamReplyWithRangeFromConsumerPEL(): the consumer's history from start."""
    parts = []
    for i in consumer.pel.from_id(start):
        if count and len(parts) >= count:
            break
        wire = s.lookup(i)
        if wire is None:
            # Pending but gone from the stream (XDEL, XTRIM): the ID, no fields.
            parts.append(b"*2\r\n" + _id_bulk(i) + (b"*-1\r\n" if c.resp == 2 else b"_\r\n"))
        else:
            nack = consumer.pel.d[i]
            nack.delivery_time = mstime()
            nack.delivery_count += 1
            parts.append(wire)
    return b"*%d\r\n" % len(parts) + b"".join(parts)


def _serve_key(c, s, key, gt, r, history):
    """One key's part of an XREAD(GROUP) reply: [key, entries] (RESP3: a map entry)."""
    head = (b"*2\r\n" if c.resp == 2 else b"") + b"$%d\r\n%s\r\n" % (len(key), key)
    if r.group is None:
        return head + reply_with_range(c, s, gt + 1, ID_MAX, r.count)
    cg = s.cgroups[r.group]
    consumer = lookup_or_create_consumer(cg, r.consumer, key, c.db.id)
    if history:
        return head + reply_from_consumer_pel(c, s, gt + 1, r.count, consumer)
    return head + reply_with_range(c, s, gt + 1, ID_MAX, r.count, cg, consumer, r.noack)


def serve_stream_read(c, r):
    """Answer a read with every key that has something for it now; False if
    none has (and nothing was replied)."""
    db = c.db
    parts = []
    for key, gt in zip(r.keys, r.ids):
        s = db.lookup_read(key)
        if s is None:
            continue
        history = False
        if r.group is not None:
            last = s.cgroups[r.group].last_id
            if gt != ID_MAX:
                # An explicit ID reads the consumer's own history, always.
                history = True
            elif s.length and s.last_live_id() > last:
                gt = last
            else:
                continue
        elif not s.length or s.last_live_id() <= gt:
            continue
        parts.append(_serve_key(c, s, key, gt, r, history))
    if not parts:
        return False
    n = len(parts)
    c.add_reply((b"*%d\r\n" % n if c.resp == 2 else b"%%%d\r\n" % n) + b"".join(parts))
    return True


def serve_blocked_reader(c, r, db, key):
    """serveClientsBlockedOnStreamKey() for one blocked client and one key.

    The function a blocked-client mechanism calls when `key` gets new
    entries (or its group is destroyed): True if it replied (with the
    entries, or -NOGROUP), and the client is to be unblocked.
    """
    s = db.lookup_read(key)
    if s is None or s.__class__ is not Stream:
        return False
    gt = r.ids[r.keys.index(key)]
    cg = consumer = None
    if r.group is not None:
        cg = s.cgroups.get(r.group) if s.cgroups else None
        if cg is None:
            c.add_reply_error("-NOGROUP the consumer group this client was blocked on no "
                              "longer exists")
            return True
        gt = cg.last_id
    if s.last_id <= gt:
        return False
    if cg is not None:
        consumer = lookup_or_create_consumer(cg, r.consumer, key, db.id)
    head = (b"*1\r\n*2\r\n" if c.resp == 2 else b"%1\r\n") + b"$%d\r\n%s\r\n" % (len(key), key)
    count = r.count or XREAD_BLOCKED_DEFAULT_COUNT
    c.add_reply(head + reply_with_range(c, s, gt + 1, ID_MAX, count, cg, consumer, r.noack))
    return True


# The blocked-client mechanism, when there is one: block_hook(c, read) parks
# the client on read.keys; ready_hook(db, key) tells it a key has new data.
block_hook = None
ready_hook = None


def signal_key_as_ready(db, key):
    """signalKeyAsReady(db, key, OBJ_STREAM): readers blocked on key may be served."""
    if ready_hook is not None:
        ready_hook(db, key)


def xread_generic(c, xreadgroup):
    r = parse_xread_or_reply(c, xreadgroup)
    if r is None:
        return
    if serve_stream_read(c, r):
        return
    if r.timeout != -1 and block_hook is not None and block_hook(c, r):
        return
    # No BLOCK (or nothing to block with): as a timeout.
    c.add_reply_null_array()


def xread_command(c):
    xread_generic(c, False)


def xreadgroup_command(c):
    xread_generic(c, True)


# ---- XGROUP -------------------------------------------------------------------------------

def _subcommand_syntax_error(c):
    c.add_reply_error(b"unknown subcommand or wrong number of arguments for '%s'. Try %s HELP."
                      % (c.argv[1][:128], c.argv[0].upper()))


def _no_key_for_xgroup(c):
    c.add_reply_error("The XGROUP subcommand requires the key to exist. Note that for CREATE "
                      "you may want to use the MKSTREAM option to create an empty stream "
                      "automatically.")


def _xgroup_prepare(c, create=False, setid=False):
    """The options and lookups every XGROUP subcommand with a key starts with:
    (stream, group or None, mkstream, entries_read), or None after replying."""
    argv = c.argv
    mkstream = False
    entries_read = SCG_INVALID_ENTRIES_READ
    i = 5
    while i < len(argv):
        opt = argv[i].lower()
        if create and opt == b"mkstream":
            mkstream = True
            i += 1
        elif (create or setid) and opt == b"entriesread" and i + 1 < len(argv):
            v = get_long_long_or_reply(c, argv[i + 1])
            if v is None:
                return None
            if v < 0 and v != SCG_INVALID_ENTRIES_READ:
                c.add_reply_error("value for ENTRIESREAD must be positive or -1")
                return None
            entries_read = v
            i += 2
        else:
            _subcommand_syntax_error(c)
            return None
    s, ok = lookup_typed(c, argv[2], Stream, True)
    if not ok:
        return None
    cg = None
    if not mkstream:
        if s is None:
            _no_key_for_xgroup(c)
            return None
        cg = s.cgroups.get(argv[3]) if s.cgroups else None
        if cg is None and not create and argv[1].lower() != b"destroy":
            c.add_reply_error(b"-NOGROUP No such consumer group '%s' for key name '%s'"
                              % (argv[3], argv[2]))
            return None
    return s, cg, mkstream, entries_read


def _group_id_or_reply(c, s, arg, strict):
    """A group's last-delivered ID: `$` (the stream's last ID) or an ID."""
    if arg == b"$":
        return s.last_id if s is not None else 0
    return parse_id_or_reply(c, arg, 0, strict)


def xgroup_create_command(c):
    argv = c.argv
    p = _xgroup_prepare(c, create=True)
    if p is None:
        return
    s, _, mkstream, entries_read = p
    if len(argv) > 8:
        _subcommand_syntax_error(c)
        return
    key = argv[2]
    i = _group_id_or_reply(c, s, argv[4], strict=True)
    if i is None:
        return
    if s is None:
        s = Stream()
        c.db.add(key, s)
        signal_modified_key(c, c.db, key)
    if s.cgroups is None:
        s.cgroups = {}
    if argv[3] in s.cgroups:
        c.add_reply_error("-BUSYGROUP Consumer Group name already exists")
        return
    s.cgroups[argv[3]] = CG(i, entries_read)
    c.add_reply(OK)
    _notify(b"xgroup-create", key, c.db.id)


def xgroup_setid_command(c):
    argv = c.argv
    p = _xgroup_prepare(c, setid=True)
    if p is None:
        return
    s, cg, _, entries_read = p
    if len(argv) not in (5, 7):
        _subcommand_syntax_error(c)
        return
    i = _group_id_or_reply(c, s, argv[4], strict=False)
    if i is None:
        return
    cg.last_id = i
    cg.entries_read = entries_read
    c.add_reply(OK)
    _notify(b"xgroup-setid", argv[2], c.db.id)


def xgroup_destroy_command(c):
    argv = c.argv
    p = _xgroup_prepare(c)
    if p is None:
        return
    s, cg, _, _ = p
    if cg is None:
        c.add_reply(b":0\r\n")
        return
    del s.cgroups[argv[3]]
    c.add_reply(b":1\r\n")
    _notify(b"xgroup-destroy", argv[2], c.db.id)
    # Readers blocked on the group learn it is gone (-NOGROUP).
    signal_key_as_ready(c.db, argv[2])


def xgroup_createconsumer_command(c):
    argv = c.argv
    p = _xgroup_prepare(c)
    if p is None:
        return
    cg = p[1]
    created = create_consumer(cg, argv[4], argv[2], c.db.id)
    c.add_reply(b":1\r\n" if created is not None else b":0\r\n")


def xgroup_delconsumer_command(c):
    argv = c.argv
    p = _xgroup_prepare(c)
    if p is None:
        return
    cg = p[1]
    consumer = cg.consumers.get(argv[4])
    pending = 0
    if consumer is not None:
        pending = len(consumer.pel)
        for i in consumer.pel.keys:
            cg.pel.remove(i)
        del cg.consumers[argv[4]]
        _notify(b"xgroup-delconsumer", argv[2], c.db.id)
    c.add_reply_long_long(pending)


XGROUP_HELP = (
    "CREATE <key> <groupname> <id|$> [option]",
    "    Create a new consumer group. Options are:",
    "    * MKSTREAM",
    "      Create the empty stream if it does not exist.",
    "    * ENTRIESREAD entries_read",
    "      Set the group's entries_read counter (internal use).",
    "CREATECONSUMER <key> <groupname> <consumer>",
    "    Create a new consumer in the specified group.",
    "DELCONSUMER <key> <groupname> <consumer>",
    "    Remove the specified consumer.",
    "DESTROY <key> <groupname>",
    "    Remove the specified group.",
    "SETID <key> <groupname> <id|$> [ENTRIESREAD entries_read]",
    "    Set the current group ID and entries_read counter.",
)


def xgroup_help_command(c):
    c.add_reply_help("XGROUP", XGROUP_HELP)


# ---- XSETID / XACK ------------------------------------------------------------------------

def xsetid_command(c):
    argv = c.argv
    i = parse_id_or_reply(c, argv[2], 0, strict=True)
    if i is None:
        return
    entries_added = -1
    max_xdel = 0
    j = 3
    while j < len(argv):
        moreargs = len(argv) - 1 - j
        opt = argv[j].lower()
        if opt == b"entriesadded" and moreargs:
            v = non_negative_or_reply(c, argv[j + 1], "entries_added must be positive")
            if v is None:
                return
            entries_added = v
            j += 2
        elif opt == b"maxdeletedid" and moreargs:
            v = parse_id_or_reply(c, argv[j + 1], 0, strict=True)
            if v is None:
                return
            if i < v:
                c.add_reply_error("The ID specified in XSETID is smaller than the provided "
                                  "max_deleted_entry_id")
                return
            max_xdel = v
            j += 2
        else:
            c.add_reply_error(SYNTAX_ERR)
            return
    s = stream_or_reply(c, argv[1], "no such key", write=True)
    if s is None:
        return
    if s.length > 0:
        if i < s.last_live_id():
            c.add_reply_error("The ID specified in XSETID is smaller than the target stream "
                              "top item")
            return
        if entries_added != -1 and s.length > entries_added:
            c.add_reply_error("The entries_added specified in XSETID is smaller than the "
                              "target stream length")
            return
    s.last_id = i
    if entries_added != -1:
        s.entries_added = entries_added
    if max_xdel:
        s.max_deleted = max_xdel
    c.add_reply(OK)
    _notify(b"xsetid", argv[1], c.db.id)


def xack_command(c):
    argv = c.argv
    sg = group_or_reply(c, argv[1], argv[2], b":0\r\n")
    if sg is None:
        return
    cg = sg[1]
    ids = []
    for arg in argv[3:]:
        i = parse_id_or_reply(c, arg, 0, strict=True)
        if i is None:
            return
        ids.append(i)
    acked = 0
    pel = cg.pel
    for i in ids:
        nack = pel.d.get(i)
        if nack is not None:
            pel.remove(i)
            nack.consumer.pel.remove(i)
            acked += 1
    c.add_reply_long_long(acked)


# ---- XPENDING ------------------------------------------------------------------------------

def _nogroup(c, key, group):
    c.add_reply_error(b"-NOGROUP No such key '%s' or consumer group '%s'" % (key, group))


def xpending_command(c):
    argv = c.argv
    argc = len(argv)
    justinfo = argc == 3
    if argc != 3 and (argc < 6 or argc > 9):
        c.add_reply_error(SYNTAX_ERR)
        return
    minidle = 0
    consumer_name = None
    if argc >= 6:
        startidx = 3
        if argv[3].lower() == b"idle":
            minidle = get_long_long_or_reply(c, argv[4])
            if minidle is None:
                return
            if argc < 8:
                c.add_reply_error(SYNTAX_ERR)
                return
            startidx += 2
        count = get_long_long_or_reply(c, argv[startidx + 2])
        if count is None:
            return
        if count < 0:
            count = 0
        r = parse_range_or_reply(c, argv[startidx], argv[startidx + 1])
        if r is None:
            return
        start, end = r
        if startidx + 3 < argc:
            consumer_name = argv[startidx + 3]
    sg = group_or_reply(c, argv[1], argv[2])
    if sg is None:
        return
    cg = sg[1]
    if justinfo:
        c.add_reply(_pending_summary(c, cg))
        return
    if consumer_name is not None:
        consumer = cg.consumers.get(consumer_name)
        if consumer is None:
            c.add_reply(EMPTY_ARRAY)
            return
        pel = consumer.pel
    else:
        pel = cg.pel
    now = mstime()
    parts = []
    for i in pel.from_id(start):
        if not count or i > end:
            break
        nack = pel.d[i]
        if minidle and now - nack.delivery_time < minidle:
            continue
        count -= 1
        name = nack.consumer.name
        parts.append(b"*4\r\n%s$%d\r\n%s\r\n:%d\r\n:%d\r\n" % (
            _id_bulk(i), len(name), name, max(now - nack.delivery_time, 0),
            nack.delivery_count))
    c.add_reply(b"*%d\r\n" % len(parts) + b"".join(parts))


def _pending_summary(c, cg):
    pel = cg.pel
    if not len(pel):
        null = b"$-1\r\n" if c.resp == 2 else b"_\r\n"
        return b"*4\r\n:0\r\n" + null + null + (b"*-1\r\n" if c.resp == 2 else b"_\r\n")
    owners = []
    for name in sorted(cg.consumers):
        n = len(cg.consumers[name].pel)
        if n:
            count = b"%d" % n
            owners.append(b"*2\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(name), name,
                                                                  len(count), count))
    return b"*4\r\n:%d\r\n%s%s*%d\r\n%s" % (len(pel), _id_bulk(pel.keys[0]),
                                            _id_bulk(pel.keys[-1]), len(owners),
                                            b"".join(owners))


# ---- XCLAIM / XAUTOCLAIM ---------------------------------------------------------------

def _claim(cg, consumer, i, nack, delivery_time, bump):
    """Give the pending entry i to consumer."""
    if nack.consumer is not consumer and nack.consumer is not None:
        nack.consumer.pel.remove(i)
    nack.delivery_time = delivery_time
    if bump:
        nack.delivery_count += 1
    if nack.consumer is not consumer:
        consumer.pel.insert(i, nack)
        nack.consumer = consumer


def xclaim_command(c):
    argv = c.argv
    key = argv[1]
    sg = group_or_reply(c, key, argv[2])
    if sg is None:
        return
    s, cg = sg
    minidle = get_long_long_or_reply(c, argv[4], "Invalid min-idle-time argument for XCLAIM")
    if minidle is None:
        return
    minidle = max(minidle, 0)
    ids = []
    j = 5
    while j < len(argv):
        r = parse_id(argv[j], 0, strict=True)
        if r is None:
            break
        ids.append(r[0])
        j += 1
    now = mstime()
    retrycount = -1
    deliverytime = -1
    force = justid = False
    last_id = 0
    while j < len(argv):
        moreargs = len(argv) - 1 - j
        opt = argv[j].lower()
        if opt == b"force":
            force = True
        elif opt == b"justid":
            justid = True
        elif opt == b"idle" and moreargs:
            j += 1
            v = get_long_long_or_reply(c, argv[j], "Invalid IDLE option argument for XCLAIM")
            if v is None:
                return
            deliverytime = now - v
        elif opt == b"time" and moreargs:
            j += 1
            v = get_long_long_or_reply(c, argv[j], "Invalid TIME option argument for XCLAIM")
            if v is None:
                return
            deliverytime = v
        elif opt == b"retrycount" and moreargs:
            j += 1
            v = get_long_long_or_reply(c, argv[j],
                                       "Invalid RETRYCOUNT option argument for XCLAIM")
            if v is None:
                return
            retrycount = v
        elif opt == b"lastid" and moreargs:
            j += 1
            v = parse_id_or_reply(c, argv[j], 0, strict=True)
            if v is None:
                return
            last_id = v
        else:
            c.add_reply_error(b"Unrecognized XCLAIM option '%s'" % argv[j])
            return
        j += 1
    if last_id > cg.last_id:
        cg.last_id = last_id
    if deliverytime != -1:
        if deliverytime < 0 or deliverytime > now:
            deliverytime = now
    else:
        deliverytime = now
    consumer = None
    parts = []
    name = argv[3]
    for i in ids:
        nack = cg.pel.d.get(i)
        wire = s.lookup(i)
        if wire is None:
            if nack is not None:
                cg.pel.remove(i)
                nack.consumer.pel.remove(i)
            continue
        if force and nack is None:
            nack = NACK(None, now)
            cg.pel.insert(i, nack)
        if nack is None:
            continue
        if nack.consumer is not None and minidle and now - nack.delivery_time < minidle:
            continue
        if consumer is None:
            consumer = lookup_or_create_consumer(cg, name, key, c.db.id)
        _claim(cg, consumer, i, nack, deliverytime, retrycount < 0 and not justid)
        if retrycount >= 0:
            nack.delivery_count = retrycount
        parts.append(_id_bulk(i) if justid else wire)
    c.add_reply(b"*%d\r\n" % len(parts) + b"".join(parts))


def xautoclaim_command(c):
    argv = c.argv
    key = argv[1]
    minidle = get_long_long_or_reply(c, argv[4],
                                     "Invalid min-idle-time argument for XAUTOCLAIM")
    if minidle is None:
        return
    minidle = max(minidle, 0)
    r = parse_interval_id_or_reply(c, argv[5], 0)
    if r is None:
        return
    start, ex = r
    if ex:
        if start == ID_MAX:
            c.add_reply_error("invalid start ID for the interval")
            return
        start += 1
    count = 100
    justid = False
    j = 6
    while j < len(argv):
        moreargs = len(argv) - 1 - j
        opt = argv[j].lower()
        if opt == b"count" and moreargs:
            v = string2ll(argv[j + 1])
            if v is None or not 1 <= v <= (2 ** 63 - 1) // 16:
                c.add_reply_error("COUNT must be > 0")
                return
            count = v
            j += 1
        elif opt == b"justid":
            justid = True
        else:
            c.add_reply_error(SYNTAX_ERR)
            return
        j += 1
    sg = group_or_reply(c, key, argv[2])
    if sg is None:
        return
    s, cg = sg
    if count * 16 >= 1 << 47:
        # Redis allocates 16 bytes per COUNT up front; beyond the address
        # space no allocator can give it.
        c.add_reply_error("Insufficient memory, failed allocating transient memory, COUNT too high.")
        return
    attempts = count * 10
    now = mstime()
    consumer = None
    parts = []
    deleted = []
    pel = cg.pel
    keys = pel.from_id(start)
    pos = 0
    while attempts and count and pos < len(keys):
        attempts -= 1
        i = keys[pos]
        pos += 1
        nack = pel.d[i]
        wire = s.lookup(i)
        if wire is None:
            pel.remove(i)
            nack.consumer.pel.remove(i)
            deleted.append(i)
            count -= 1
            continue
        if minidle and now - nack.delivery_time < minidle:
            continue
        if consumer is None:
            consumer = lookup_or_create_consumer(cg, argv[3], key, c.db.id)
        _claim(cg, consumer, i, nack, now, not justid)
        parts.append(_id_bulk(i) if justid else wire)
        count -= 1
    # The cursor: the next pending ID, 0-0 when the PEL was walked to its end.
    cursor = keys[pos] if pos < len(keys) else 0
    c.add_reply(b"*3\r\n" + _id_bulk(cursor) + b"*%d\r\n" % len(parts) + b"".join(parts) +
                b"*%d\r\n" % len(deleted) + b"".join(_id_bulk(i) for i in deleted))


# ---- XINFO ------------------------------------------------------------------------------

def _bulk(b):
    return b"$%d\r\n%s\r\n" % (len(b), b)


def _map(c, n):
    return b"*%d\r\n" % (2 * n) if c.resp == 2 else b"%%%d\r\n" % n


def _null(c):
    return b"$-1\r\n" if c.resp == 2 else b"_\r\n"


def _int_or_null(c, v):
    return _null(c) if v is None else b":%d\r\n" % v


def xinfo_stream_reply(c, s):
    argv = c.argv
    opts = argv[3:]
    full = True
    count = 10
    if not opts:
        full = False
    else:
        if len(opts) not in (1, 3) or opts[0].lower() != b"full":
            _subcommand_syntax_error(c)
            return
        if len(opts) == 3:
            if opts[1].lower() != b"count":
                _subcommand_syntax_error(c)
                return
            count = get_long_long_or_reply(c, opts[2])
            if count is None:
                return
            if count < 0:
                count = 10
    out = [_map(c, 9 if full else 10),
           b"$6\r\nlength\r\n:%d\r\n" % s.length,
           b"$15\r\nradix-tree-keys\r\n:%d\r\n" % len(s.keys),
           b"$16\r\nradix-tree-nodes\r\n:%d\r\n" % s.rax_nodes(),
           b"$17\r\nlast-generated-id\r\n" + _id_bulk(s.last_id),
           b"$20\r\nmax-deleted-entry-id\r\n" + _id_bulk(s.max_deleted),
           b"$13\r\nentries-added\r\n:%d\r\n" % s.entries_added,
           b"$23\r\nrecorded-first-entry-id\r\n" + _id_bulk(s.first_id)]
    if not full:
        out.append(b"$6\r\ngroups\r\n:%d\r\n" % (len(s.cgroups) if s.cgroups else 0))
        for name, rev in ((b"first-entry", False), (b"last-entry", True)):
            out.append(_bulk(name))
            entry = next(s.range(0, ID_MAX, rev), None)
            out.append(_null(c) if entry is None else entry[1])
        c.add_reply(b"".join(out))
        return
    entries = []
    for _, wire in s.range(0, ID_MAX):
        entries.append(wire)
        if len(entries) == count:
            break
    out.append(b"$7\r\nentries\r\n*%d\r\n" % len(entries) + b"".join(entries))
    out.append(b"$6\r\ngroups\r\n")
    groups = s.cgroups or {}
    out.append(b"*%d\r\n" % len(groups))
    for name in sorted(groups):
        out.append(_xinfo_full_group(c, s, name, groups[name], count))
    c.add_reply(b"".join(out))


def _xinfo_full_group(c, s, name, cg, count):
    out = [_map(c, 7), b"$4\r\nname\r\n", _bulk(name),
           b"$17\r\nlast-delivered-id\r\n", _id_bulk(cg.last_id),
           b"$12\r\nentries-read\r\n",
           _int_or_null(c, None if cg.entries_read == SCG_INVALID_ENTRIES_READ
                        else cg.entries_read),
           b"$3\r\nlag\r\n", _int_or_null(c, s.group_lag(cg)),
           b"$9\r\npel-count\r\n:%d\r\n" % len(cg.pel), b"$7\r\npending\r\n"]
    keys = cg.pel.keys[:count] if count else cg.pel.keys
    out.append(b"*%d\r\n" % len(keys))
    for i in keys:
        nack = cg.pel.d[i]
        cname = nack.consumer.name
        out.append(b"*4\r\n%s$%d\r\n%s\r\n:%d\r\n:%d\r\n" % (
            _id_bulk(i), len(cname), cname, nack.delivery_time, nack.delivery_count))
    out.append(b"$9\r\nconsumers\r\n*%d\r\n" % len(cg.consumers))
    for cname in sorted(cg.consumers):
        consumer = cg.consumers[cname]
        out.append(_map(c, 4) + b"$4\r\nname\r\n" + _bulk(cname) +
                   b"$9\r\nseen-time\r\n:%d\r\n" % consumer.seen_time +
                   b"$9\r\npel-count\r\n:%d\r\n" % len(consumer.pel) + b"$7\r\npending\r\n")
        ckeys = consumer.pel.keys[:count] if count else consumer.pel.keys
        out.append(b"*%d\r\n" % len(ckeys))
        for i in ckeys:
            nack = consumer.pel.d[i]
            out.append(b"*3\r\n%s:%d\r\n:%d\r\n" % (_id_bulk(i), nack.delivery_time,
                                                   nack.delivery_count))
    return b"".join(out)


def _xinfo_lookup(c):
    s = c.db.lookup_read(c.argv[2])
    if s is None:
        c.add_reply_error("no such key")
        return None
    if s.__class__ is not Stream:
        c.add_reply_error(WRONGTYPE_ERR)
        return None
    return s


def xinfo_stream_command(c):
    s = _xinfo_lookup(c)
    if s is not None:
        xinfo_stream_reply(c, s)


def xinfo_groups_command(c):
    s = _xinfo_lookup(c)
    if s is None:
        return
    groups = s.cgroups or {}
    out = [b"*%d\r\n" % len(groups)]
    for name in sorted(groups):
        cg = groups[name]
        out.append(_map(c, 6) + b"$4\r\nname\r\n" + _bulk(name) +
                   b"$9\r\nconsumers\r\n:%d\r\n" % len(cg.consumers) +
                   b"$7\r\npending\r\n:%d\r\n" % len(cg.pel) +
                   b"$17\r\nlast-delivered-id\r\n" + _id_bulk(cg.last_id) +
                   b"$12\r\nentries-read\r\n" +
                   _int_or_null(c, None if cg.entries_read == SCG_INVALID_ENTRIES_READ
                                else cg.entries_read) +
                   b"$3\r\nlag\r\n" + _int_or_null(c, s.group_lag(cg)))
    c.add_reply(b"".join(out))


def xinfo_consumers_command(c):
    s = _xinfo_lookup(c)
    if s is None:
        return
    argv = c.argv
    cg = s.cgroups.get(argv[3]) if s.cgroups else None
    if cg is None:
        c.add_reply_error(b"-NOGROUP No such consumer group '%s' for key name '%s'"
                          % (argv[3], argv[2]))
        return
    now = mstime()
    out = [b"*%d\r\n" % len(cg.consumers)]
    for name in sorted(cg.consumers):
        consumer = cg.consumers[name]
        out.append(_map(c, 3) + b"$4\r\nname\r\n" + _bulk(name) +
                   b"$7\r\npending\r\n:%d\r\n" % len(consumer.pel) +
                   b"$4\r\nidle\r\n:%d\r\n" % max(now - consumer.seen_time, 0))
    c.add_reply(b"".join(out))


XINFO_HELP = (
    "CONSUMERS <key> <groupname>",
    "    Show consumers of <groupname>.",
    "GROUPS <key>",
    "    Show the stream consumer groups.",
    "STREAM <key> [FULL [COUNT <count>]",
    "    Show information about the stream.",
)


def xinfo_help_command(c):
    c.add_reply_help("XINFO", XINFO_HELP)


# ---- the command table ---------------------------------------------------------------

_W = CMD_WRITE
_R = CMD_READONLY
_F = CMD_FAST
_G = "stream"


COMMANDS = [
    Command("xadd", xadd_command, -5, _W | _F, 1, 1, 1, group=_G,
            summary="Appends a new entry to a stream"),
    Command("xtrim", xtrim_command, -4, _W, 1, 1, 1, group=_G,
            summary="Trims the stream to (approximately if '~' is passed) a certain size"),
    Command("xrange", xrange_command, -4, _R, 1, 1, 1, group=_G,
            summary="Return a range of elements in a stream, with IDs matching the "
                    "specified IDs interval"),
    Command("xrevrange", xrevrange_command, -4, _R, 1, 1, 1, group=_G,
            summary="Return a range of elements in a stream, with IDs matching the "
                    "specified IDs interval, in reverse order"),
    Command("xlen", xlen_command, 2, _R | _F, 1, 1, 1, group=_G,
            summary="Return the number of entries in a stream"),
    Command("xdel", xdel_command, -3, _W | _F, 1, 1, 1, group=_G,
            summary="Removes the specified entries from the stream"),
    # Keys follow STREAMS: Redis's legacy triple is 0 0 0 (movable keys).
    Command("xread", xread_command, -4, _R | CMD_BLOCKING, 0, 0, 0, group=_G,
            summary="Return never seen elements in multiple streams, with IDs greater "
                    "than the ones reported by the caller for each stream. Can block."),
    Command("xreadgroup", xreadgroup_command, -7, _W | CMD_BLOCKING, 0, 0, 0, group=_G,
            summary="Return new entries from a stream using a consumer group, or access "
                    "the history of the pending entries for a given consumer. Can block."),
    Command("xack", xack_command, -4, _W | _F, 1, 1, 1, group=_G,
            summary="Marks a pending message as correctly processed"),
    Command("xpending", xpending_command, -3, _R, 1, 1, 1, group=_G,
            summary="Return information and entries from a stream consumer group pending "
                    "entries list"),
    Command("xclaim", xclaim_command, -6, _W | _F, 1, 1, 1, group=_G,
            summary="Changes (or acquires) ownership of a message in a consumer group"),
    Command("xautoclaim", xautoclaim_command, -6, _W | _F, 1, 1, 1, group=_G,
            summary="Changes (or acquires) ownership of messages in a consumer group"),
    Command("xsetid", xsetid_command, -3, _W | _F, 1, 1, 1, group=_G,
            summary="An internal command for replicating stream values"),
    _container("xgroup", [
        Command("create", xgroup_create_command, -5, _W, 2, 2, 1, group=_G,
                summary="Create a consumer group."),
        Command("setid", xgroup_setid_command, -5, _W, 2, 2, 1, group=_G,
                summary="Set a consumer group to an arbitrary last delivered ID value."),
        Command("destroy", xgroup_destroy_command, 4, _W, 2, 2, 1, group=_G,
                summary="Destroy a consumer group."),
        Command("createconsumer", xgroup_createconsumer_command, 5, _W, 2, 2, 1, group=_G,
                summary="Create a consumer in a consumer group."),
        Command("delconsumer", xgroup_delconsumer_command, 5, _W, 2, 2, 1, group=_G,
                summary="Delete a consumer from a consumer group."),
        Command("help", xgroup_help_command, 2, CMD_LOADING | CMD_STALE, group=_G,
                summary="Show helpful text about the different subcommands"),
    ], _G, proc=None),
    _container("xinfo", [
        Command("consumers", xinfo_consumers_command, 4, _R, 2, 2, 1, group=_G,
                summary="List the consumers in a consumer group"),
        Command("groups", xinfo_groups_command, 3, _R, 2, 2, 1, group=_G,
                summary="List the consumer groups of a stream"),
        Command("stream", xinfo_stream_command, -3, _R, 2, 2, 1, group=_G,
                summary="Get information about a stream"),
        Command("help", xinfo_help_command, 2, CMD_LOADING | CMD_STALE, group=_G,
                summary="Show helpful text about the different subcommands"),
    ], _G, proc=None),
]


# Blocking reads go through blocked.py (imported here, at the end: it
# imports modules that import this one).
from . import blocked as _blocked  # noqa: E402

_blocked.VALUE_BTYPE[Stream] = _blocked.BLOCKED_STREAM
block_hook = _blocked.block_stream_reader
ready_hook = _blocked.signal_stream_key_as_ready
