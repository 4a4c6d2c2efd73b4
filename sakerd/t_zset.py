"""Sorted set commands: ZADD ZRANGE ZPOPMIN ZUNIONSTORE... (Redis's t_zset.c).

A sorted set is a `ZSet`: a dict member -> score (ZSCORE, ZADD's lookup)
and a sortedcontainers.SortedList of (score, member) pairs (ranks, ranges,
pops), which orders as Redis's skiplist does: by score, then by member
bytes (memcmp). Both are O(log N) per change. `listpack` mirrors the
encoding Redis 7.0 would use (OBJECT ENCODING, ZSCAN's one-call reply):
a new set starts as a listpack unless `zset-max-listpack-entries` is 0 or
its first member is longer than `zset-max-listpack-value`, and turns into a
skiplist for good when a new member passes either limit. Results that are
stored (ZUNIONSTORE, ZRANGESTORE...) are a listpack when they fit.

Scores are C doubles (Python floats). They are parsed as Redis does:
string2d() for scores and weights (strtod, then no leading space, no
trailing bytes, no NaN, no overflow or underflow to zero), and plain
strtod() for ZRANGEBYSCORE's min and max (so "" and " 1" are numbers
there, and "1e999" is inf). They are printed with "%.17g" (inf, -inf),
and with d2string() where Redis returns the listpack's stored text (ZSCAN).

Lexicographic ranges (BYLEX) assume, as Redis says they do, that every
member has the same score; the range is located by bisecting with the
first member's score.

Pops are written for the blocking forms too: generic_zpop() takes the
keys, the end, the count and the reply shape, as genericZpopCommand() does;
BZPOPMIN/BZPOPMAX/BZMPOP pop with it at once when a key has members, and
otherwise block (blocked.py) and serve the woken client with it
(serve_blocked_on_zset, Redis's serveClientsBlockedOnSortedSetKey).
"""

import math
import random
import re

from sortedcontainers import SortedList

from . import blocked, notify
from .blocked import BLOCKED_ZSET, block_for_keys, get_timeout_or_reply
from .db import TYPE_NAMES, WRONGTYPE_ERR, lookup_typed, signal_modified_key
from .networking import CLIENT_DENY_BLOCKING, format_double
from .resp import string2ll, LLONG_MAX
from .server_h import (Command, server, CMD_BLOCKING, CMD_FAST, CMD_NOSCRIPT, CMD_READONLY,
                     CMD_WRITE)
from .t_set import Set, parse_long_or_reply

SYNTAX_ERR = "syntax error"
NOT_INTEGER = "value is not an integer or out of range"
NOT_FLOAT = "value is not a valid float"
NAN_ERR = "resulting score is not a number (NaN)"
RANGE_ERR = "min or max is not a float"
LEX_RANGE_ERR = "min or max not valid string range item"
LONG_MAX = LLONG_MAX
INF = float("inf")

ZSET_MIN = 0
ZSET_MAX = 1

# ZADD flags (ZADD_IN_* in server.h).
ZADD_INCR = 1 << 0
ZADD_NX = 1 << 1
ZADD_XX = 1 << 2
ZADD_GT = 1 << 3
ZADD_LT = 1 << 4
_ZADD_OPTIONS = {b"nx": ZADD_NX, b"xx": ZADD_XX, b"incr": ZADD_INCR, b"gt": ZADD_GT,
                 b"lt": ZADD_LT}


# ---- strtod() and Redis's number texts -----------------------------------------------

_STRTOD = re.compile(
    rb"[ \t\n\v\f\r]*([+-]?)(?:(inf(?:inity)?)|(nan(?:\([0-9a-z_]*\))?)"
    rb"|(0x(?:[0-9a-f]+\.?[0-9a-f]*|\.[0-9a-f]+)(?:p[+-]?[0-9]+)?)"
    rb"|((?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:e[+-]?[0-9]+)?))\Z", re.IGNORECASE)


def strtod_full(s):
    """strtod(s) that must consume all of s: (value, erange), or None.

    As glibc: leading white space is skipped; an empty string converts
    nothing, leaving the end pointer on the terminating NUL (0.0).
    erange: the result overflowed to +-inf or underflowed to zero.
    """
    if not s:
        return 0.0, False
    m = _STRTOD.match(s)
    if m is None:
        return None
    sign, inf, nan, hexnum, dec = m.groups()
    neg = sign == b"-"
    if inf is not None:
        return (-INF if neg else INF), False
    if nan is not None:
        return math.nan, False
    if hexnum is not None:
        try:
            v = float.fromhex(hexnum.decode())
        except OverflowError:
            return (-INF if neg else INF), True
        text = hexnum[2:].split(b"p")[0].split(b"P")[0]
    else:
        v = float(dec)
        text = dec.lower().split(b"e")[0]
    erange = v == INF or (v == 0.0 and text.strip(b"0.") != b"")
    return (-v if neg else v), erange


def string2d(s):
    """Redis's string2d(): a float, or None (getDoubleFromObject refuses)."""
    if len(s) < 16 and s.isdigit():
        return float(s)     # the common case (hot path): exact, no overflow
    if not s or s[0] in b" \t\n\v\f\r":
        return None
    r = strtod_full(s)
    if r is None:
        return None
    v, erange = r
    if v != v or (erange and (v in (INF, -INF) or v == 0.0)):
        return None
    return v


def d2string(v):
    """Redis's d2string(): the text a listpack stores for a score."""
    if v != v:
        return b"nan"
    if v in (INF, -INF):
        return b"inf" if v > 0 else b"-inf"
    if v == 0:
        return b"-0" if math.copysign(1.0, v) < 0 else b"0"
    if -4611686018427387903.0 <= v <= 4611686018427387903.0 and v == int(v):
        return b"%d" % int(v)
    return b"%.17g" % v


# ---- the value ---------------------------------------------------------------------------

class _Above:
    """Compares above every bytes: (score, ABOVE) follows every (score, member)."""
    __slots__ = ()

    def __lt__(self, other):
        return False

    def __gt__(self, other):
        return True

    __le__ = __lt__
    __ge__ = __gt__


ABOVE = _Above()


class ZSet:
    __slots__ = ("dict", "sl", "listpack")

    def __init__(self, listpack=True):
        self.dict = {}
        self.sl = SortedList()
        self.listpack = listpack

    def __len__(self):
        return len(self.dict)

    def __contains__(self, member):
        return member in self.dict

    def insert(self, member, score):
        """Add a member that is not in the set (zsetAdd's insert branch)."""
        if self.listpack:
            cfg = server.config
            if len(self.dict) + 1 > cfg.zset_max_listpack_entries or \
                    len(member) > cfg.zset_max_listpack_value:
                self.listpack = False
            elif score == 0:
                score = 0.0     # a listpack keeps "-0" as the integer 0
        self.dict[member] = score
        self.sl.add((score, member))

    def update(self, member, old, score):
        if self.listpack and score == 0:
            score = 0.0
        self.sl.remove((old, member))
        self.sl.add((score, member))
        self.dict[member] = score

    def delete(self, member):
        score = self.dict.pop(member, None)
        if score is None:
            return False
        self.sl.remove((score, member))
        return True

    def rank(self, member):
        score = self.dict.get(member)
        return None if score is None else self.sl.index((score, member))

    def score_range(self, rng):
        """[first, last] indexes of a score range (last < first: empty)."""
        lo, lo_ex, hi, hi_ex = rng
        sl = self.sl
        first = sl.bisect_right((lo, ABOVE)) if lo_ex else sl.bisect_left((lo, b""))
        last = (sl.bisect_left((hi, b"")) if hi_ex else sl.bisect_right((hi, ABOVE))) - 1
        return first, last

    def lex_range(self, rng, reverse=False):
        """[first, last] indexes of a lex range (last < first: empty).

        BYLEX expects every member to have the same score; then the range
        is found by bisecting. Otherwise members are not in byte order and
        the range is what Redis's listpack walk finds: from the head (the
        tail when reverse) to the first member inside the range, then on
        while members stay inside it.
        """
        sl = self.sl
        if not sl:
            return 0, -1
        if sl[0][0] == sl[-1][0]:
            return self._lex_bisect(rng, sl[0][0])
        lo, lo_ex, hi, hi_ex = rng
        members = [m for _, m in sl]
        n = len(members)
        if not lex_range_may_match(rng, members[0], members[-1]):
            return 0, -1
        if not reverse:
            first = next((i for i in range(n) if lex_gte_min(members[i], lo, lo_ex)), n)
            last = first - 1
            while last + 1 < n and lex_lte_max(members[last + 1], hi, hi_ex):
                last += 1
            return first, last
        last = next((i for i in range(n - 1, -1, -1) if lex_lte_max(members[i], hi, hi_ex)), -1)
        first = last + 1
        while first > 0 and lex_gte_min(members[first - 1], lo, lo_ex):
            first -= 1
        return first, last

    def _lex_bisect(self, rng, score):
        lo, lo_ex, hi, hi_ex = rng
        sl = self.sl
        if lo is LEX_MIN:
            first = 0
        elif lo is LEX_MAX:
            first = len(sl)
        else:
            first = sl.bisect_right((score, lo)) if lo_ex else sl.bisect_left((score, lo))
        if hi is LEX_MAX:
            last = len(sl) - 1
        elif hi is LEX_MIN:
            last = -1
        else:
            last = (sl.bisect_left((score, hi)) if hi_ex else sl.bisect_right((score, hi))) - 1
        return first, last

    def encoding(self):
        return "listpack" if self.listpack else "skiplist"

    def copy(self):
        dup = ZSet(self.listpack)
        dup.dict = dict(self.dict)
        dup.sl = self.sl.copy()
        return dup


TYPE_NAMES[ZSet] = "zset"


def stored_zset(pairs):
    """A ZSet for a stored result (score, member pairs without repeats),
    a listpack when it fits (zsetConvertToListpackIfNeeded)."""
    zs = ZSet(listpack=False)
    d = zs.dict
    for score, m in pairs:
        d[m] = score
    cfg = server.config
    zs.listpack = len(d) <= cfg.zset_max_listpack_entries and \
        all(len(m) <= cfg.zset_max_listpack_value for m in d)
    if zs.listpack:
        for m, s in d.items():
            if s == 0:
                d[m] = 0.0
    zs.sl = SortedList((s, m) for m, s in d.items())
    return zs


# ---- range arguments ----------------------------------------------------------------

def parse_range(lo, hi):
    """zslParseRange(): (min, minex, max, maxex), or None."""
    out = []
    for arg in (lo, hi):
        ex = arg[:1] == b"("
        r = strtod_full(arg[1:] if ex else arg)
        if r is None or r[0] != r[0]:
            return None
        out += (r[0], ex)
    return out[0], out[1], out[2], out[3]


LEX_MIN = object()
LEX_MAX = object()


def lex_gte_min(m, lo, ex):
    """zslLexValueGteMin()."""
    if lo is LEX_MIN:
        return True
    if lo is LEX_MAX:
        return False
    return m > lo if ex else m >= lo


def lex_lte_max(m, hi, ex):
    if hi is LEX_MAX:
        return True
    if hi is LEX_MIN:
        return False
    return m < hi if ex else m <= hi


def lex_cmp(a, b):
    """sdscmplex(): bytes order with LEX_MIN / LEX_MAX at the ends."""
    if a is b:
        return 0
    if a is LEX_MIN or b is LEX_MAX:
        return -1
    if a is LEX_MAX or b is LEX_MIN:
        return 1
    return (a > b) - (a < b)


def lex_range_may_match(rng, head, tail):
    """zzlIsInLexRange(): False when the range is empty, lies above the
    last member or below the first."""
    lo, lo_ex, hi, hi_ex = rng
    cmp = lex_cmp(lo, hi)
    if cmp > 0 or (cmp == 0 and (lo_ex or hi_ex)):
        return False
    return lex_gte_min(tail, lo, lo_ex) and lex_lte_max(head, hi, hi_ex)


def parse_lex_item(arg):
    c = arg[:1]
    if c == b"+":
        return (LEX_MAX, True) if len(arg) == 1 else None
    if c == b"-":
        return (LEX_MIN, True) if len(arg) == 1 else None
    if c == b"(":
        return arg[1:], True
    if c == b"[":
        return arg[1:], False
    return None


def parse_lex_range(lo, hi):
    a = parse_lex_item(lo)
    b = parse_lex_item(hi)
    if a is None or b is None:
        return None
    return a[0], a[1], b[0], b[1]


def parse_long(c, arg):
    v = string2ll(arg)
    if v is None:
        c.add_reply_error(NOT_INTEGER)
    return v


# ---- lookups and replies -----------------------------------------------------------------

# Score texts: "%.17g" costs several times a dict lookup, and the scores a
# ZRANGE prints repeat from one call to the next. Zeros are never cached:
# 0.0 and -0.0 are equal keys but print differently.
_SCORE_TEXT = {}
SCORE_TEXT_MAX = 1 << 16


def score_text(s):
    t = _SCORE_TEXT.get(s)
    if t is None:
        t = b"%.17g" % s    # as Redis's addReplyDouble, inf and -inf included
        if s:
            if len(_SCORE_TEXT) >= SCORE_TEXT_MAX:
                _SCORE_TEXT.clear()
            _SCORE_TEXT[s] = t
    return t


def encode_pairs(c, pairs, withscores):
    """Members (with scores) of (score, member) pairs: one flat array in
    RESP2, [member, score] pairs in RESP3 (ZRANGE ... WITHSCORES).
    Hot path (ZRANGE): comprehensions and one join."""
    if not withscores:
        return b"*%d\r\n" % len(pairs) + b"".join([b"$%d\r\n%s\r\n" % (len(m), m)
                                                    for _, m in pairs])
    get = _SCORE_TEXT.get
    texts = [(get(s) or score_text(s), m) for s, m in pairs]
    if c.resp == 2:
        head = b"*%d\r\n" % (2 * len(pairs))
        body = [b"$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(m), m, len(f), f) for f, m in texts]
    else:
        head = b"*%d\r\n" % len(pairs)
        body = [b"*2\r\n$%d\r\n%s\r\n,%s\r\n" % (len(m), m, f) for f, m in texts]
    return head + b"".join(body)


def notify_zset(c, event, key):
    notify.notify_keyspace_event(notify.NOTIFY_ZSET, event, key, c.db.id)


def notify_del(c, key):
    notify.notify_keyspace_event(notify.NOTIFY_GENERIC, b"del", key, c.db.id)


# ---- ZADD / ZINCRBY / ZREM ------------------------------------------------------------------

def zset_add(zs, score, member, flags):
    """zsetAdd(): (status, new score); status is "nan", "added", "updated"
    or "nop" (NX/XX/GT/LT refused), or None when nothing changed."""
    cur = zs.dict.get(member)
    if cur is not None:
        if flags & ZADD_NX:
            return "nop", cur
        if flags & ZADD_INCR:
            score += cur
            if score != score:
                return "nan", cur
        if (flags & ZADD_LT and score >= cur) or (flags & ZADD_GT and score <= cur):
            return "nop", cur
        if score != cur:
            zs.update(member, cur, score)
            return "updated", score
        return None, score
    if flags & ZADD_XX:
        return "nop", None
    zs.insert(member, score)
    return "added", score


def zadd_generic(c, flags):
    argv = c.argv
    key = argv[1]
    ch = False
    i = 2
    while i < len(argv):
        opt = argv[i].lower()
        if opt == b"ch":
            ch = True
        elif opt in _ZADD_OPTIONS:
            flags |= _ZADD_OPTIONS[opt]
        else:
            break
        i += 1
    elements = len(argv) - i
    if elements % 2 or not elements:
        c.add_reply_error(SYNTAX_ERR)
        return
    elements //= 2
    if flags & ZADD_NX and flags & ZADD_XX:
        c.add_reply_error("XX and NX options at the same time are not compatible")
        return
    if (flags & ZADD_NX and flags & (ZADD_GT | ZADD_LT)) or \
            (flags & ZADD_GT and flags & ZADD_LT):
        c.add_reply_error("GT, LT, and/or NX options at the same time are not compatible")
        return
    incr = flags & ZADD_INCR
    if incr and elements > 1:
        c.add_reply_error("INCR option supports a single increment-element pair")
        return
    scores = []
    for j in range(elements):
        s = string2d(argv[i + 2 * j])
        if s is None:
            c.add_reply_error(NOT_FLOAT)
            return
        scores.append(s)
    db = c.db
    zs, ok = lookup_typed(c, key, ZSet, True)
    if not ok:
        return
    added = updated = processed = 0
    score = 0.0
    if zs is None:
        if flags & ZADD_XX:
            zadd_reply(c, incr, processed, score, ch, added, updated)
            return
        cfg = server.config
        zs = ZSet(listpack=cfg.zset_max_listpack_entries != 0 and
                  len(argv[i + 1]) <= cfg.zset_max_listpack_value)
        db.add(key, zs)
    failed = False
    for j in range(elements):
        status, newscore = zset_add(zs, scores[j], argv[i + 1 + 2 * j], flags)
        if status == "nan":
            c.add_reply_error(NAN_ERR)
            failed = True
            break
        if status == "added":
            added += 1
        elif status == "updated":
            updated += 1
        if status != "nop":
            processed += 1
            score = newscore
    if not failed:
        zadd_reply(c, incr, processed, score, ch, added, updated)
    if added or updated:
        signal_modified_key(c, db, key)
        notify_zset(c, b"zincr" if incr else b"zadd", key)


def zadd_reply(c, incr, processed, score, ch, added, updated):
    if incr:
        if processed:
            c.add_reply_double(score)
        else:
            c.add_reply_null()
    else:
        c.add_reply(b":%d\r\n" % (added + updated if ch else added))


def zadd_command(c):
    zadd_generic(c, 0)


def zincrby_command(c):
    zadd_generic(c, ZADD_INCR)


def zrem_command(c):
    db = c.db
    key = c.argv[1]
    zs, ok = lookup_typed(c, key, ZSet, True)
    if not ok:
        return
    if zs is None:
        c.add_reply(b":0\r\n")
        return
    deleted = 0
    removed = False
    for m in c.argv[2:]:
        if zs.delete(m):
            deleted += 1
        if not zs:
            db.delete(key)
            removed = True
            break
    if deleted:
        notify_zset(c, b"zrem", key)
        if removed:
            notify_del(c, key)
        signal_modified_key(c, db, key)
    c.add_reply(b":%d\r\n" % deleted)


# ---- ZREMRANGEBY* ---------------------------------------------------------------------------

def zremrange_generic(c, kind):
    argv = c.argv
    key = argv[1]
    if kind == "rank":
        start = parse_long(c, argv[2])
        if start is None:
            return
        end = parse_long(c, argv[3])
        if end is None:
            return
    elif kind == "score":
        rng = parse_range(argv[2], argv[3])
        if rng is None:
            c.add_reply_error(RANGE_ERR)
            return
    else:
        rng = parse_lex_range(argv[2], argv[3])
        if rng is None:
            c.add_reply_error(LEX_RANGE_ERR)
            return
    zs, ok = lookup_typed(c, key, ZSet, True)
    if not ok:
        return
    if zs is None:
        c.add_reply(b":0\r\n")
        return
    if kind == "rank":
        first, last = rank_range(start, end, len(zs))
    elif kind == "score":
        first, last = zs.score_range(rng)
    else:
        first, last = zs.lex_range(rng)
    deleted = 0
    if first <= last:
        doomed = zs.sl[first:last + 1]
        del zs.sl[first:last + 1]
        d = zs.dict
        for _, m in doomed:
            del d[m]
        deleted = len(doomed)
    if deleted:
        db = c.db
        removed = not zs
        if removed:
            db.delete(key)
        signal_modified_key(c, db, key)
        notify_zset(c, b"zremrangeby" + kind.encode(), key)
        if removed:
            notify_del(c, key)
    c.add_reply(b":%d\r\n" % deleted)


def rank_range(start, end, llen):
    """Redis's index sanitizing: [first, last], last < first when empty."""
    if start < 0:
        start += llen
    if end < 0:
        end += llen
    if start < 0:
        start = 0
    if start > end or start >= llen:
        return 0, -1
    if end >= llen:
        end = llen - 1
    return start, end


def zremrangebyrank_command(c):
    zremrange_generic(c, "rank")


def zremrangebyscore_command(c):
    zremrange_generic(c, "score")


def zremrangebylex_command(c):
    zremrange_generic(c, "lex")


# ---- reads ----------------------------------------------------------------------------------

def zcard_command(c):
    zs, ok = lookup_typed(c, c.argv[1], ZSet)
    if ok:
        c.add_reply(b":%d\r\n" % (len(zs) if zs is not None else 0))


def zscore_command(c):
    zs, ok = lookup_typed(c, c.argv[1], ZSet)
    if not ok:
        return
    score = None if zs is None else zs.dict.get(c.argv[2])
    if score is None:
        c.add_reply_null()
    else:
        c.add_reply_double(score)


def zmscore_command(c):
    zs, ok = lookup_typed(c, c.argv[1], ZSet)
    if not ok:
        return
    d = zs.dict if zs is not None else {}
    c.add_reply_array_len(len(c.argv) - 2)
    for m in c.argv[2:]:
        score = d.get(m)
        if score is None:
            c.add_reply_null()
        else:
            c.add_reply_double(score)


def zrank_generic(c, reverse):
    zs, ok = lookup_typed(c, c.argv[1], ZSet)
    if not ok:
        return
    rank = None if zs is None else zs.rank(c.argv[2])
    if rank is None:
        c.add_reply_null()
    else:
        c.add_reply(b":%d\r\n" % (len(zs) - 1 - rank if reverse else rank))


def zrank_command(c):
    zrank_generic(c, False)


def zrevrank_command(c):
    zrank_generic(c, True)


def zcount_command(c):
    rng = parse_range(c.argv[2], c.argv[3])
    if rng is None:
        c.add_reply_error(RANGE_ERR)
        return
    zs, ok = lookup_typed(c, c.argv[1], ZSet)
    if ok:
        first, last = zs.score_range(rng) if zs is not None else (0, -1)
        c.add_reply(b":%d\r\n" % max(0, last - first + 1))


def zlexcount_command(c):
    rng = parse_lex_range(c.argv[2], c.argv[3])
    if rng is None:
        c.add_reply_error(LEX_RANGE_ERR)
        return
    zs, ok = lookup_typed(c, c.argv[1], ZSet)
    if ok:
        first, last = zs.lex_range(rng) if zs is not None else (0, -1)
        c.add_reply(b":%d\r\n" % max(0, last - first + 1))


# ---- ZRANGE and its older forms -------------------------------------------------------------

def zrange_generic(c, argc_start, store, rangetype=None, reverse=None):
    """zrangeGenericCommand(): ZRANGE, ZRANGESTORE, Z[REV]RANGE[BYSCORE|BYLEX].

    rangetype "rank", "score", "lex" or None (chosen by BYSCORE/BYLEX);
    reverse True/False or None (chosen by REV).
    """
    argv = c.argv
    key = argv[argc_start]
    minidx, maxidx = argc_start + 1, argc_start + 2
    withscores = False
    offset, limit = 0, -1
    j = argc_start + 3
    while j < len(argv):
        opt = argv[j].lower()
        left = len(argv) - j - 1
        if not store and opt == b"withscores":
            withscores = True
        elif opt == b"limit" and left >= 2:
            offset = parse_long(c, argv[j + 1])
            if offset is None:
                return
            limit = parse_long(c, argv[j + 2])
            if limit is None:
                return
            j += 2
        elif reverse is None and opt == b"rev":
            reverse = True
        elif rangetype is None and opt == b"bylex":
            rangetype = "lex"
        elif rangetype is None and opt == b"byscore":
            rangetype = "score"
        else:
            c.add_reply_error(SYNTAX_ERR)
            return
        j += 1
    reverse = bool(reverse)
    rangetype = rangetype or "rank"
    if limit != -1 and rangetype == "rank":
        c.add_reply_error("syntax error, LIMIT is only supported in combination with either "
                          "BYSCORE or BYLEX")
        return
    if withscores and rangetype == "lex":
        c.add_reply_error("syntax error, WITHSCORES not supported in combination with BYLEX")
        return
    if reverse and rangetype != "rank":
        minidx, maxidx = maxidx, minidx
    if rangetype == "rank":
        start = parse_long(c, argv[minidx])
        if start is None:
            return
        end = parse_long(c, argv[maxidx])
        if end is None:
            return
    elif rangetype == "score":
        rng = parse_range(argv[minidx], argv[maxidx])
        if rng is None:
            c.add_reply_error(RANGE_ERR)
            return
    else:
        rng = parse_lex_range(argv[minidx], argv[maxidx])
        if rng is None:
            c.add_reply_error(LEX_RANGE_ERR)
            return
    zs, ok = lookup_typed(c, key, ZSet)
    if not ok:
        return
    if zs is None:
        pairs = []
    elif rangetype == "rank":
        pairs = range_by_rank(zs, start, end, reverse)
    else:
        first, last = zs.score_range(rng) if rangetype == "score" else \
            zs.lex_range(rng, reverse)
        pairs = range_limited(zs, first, last, offset, limit, reverse)
    if store:
        zrangestore_finish(c, argv[1], pairs)
    else:
        c.add_reply(encode_pairs(c, pairs, withscores))


def range_by_rank(zs, start, end, reverse):
    first, last = rank_range(start, end, len(zs))
    if first > last:
        return []
    if reverse:
        n = len(zs)
        return list(zs.sl.islice(n - 1 - last, n - first, reverse=True))
    return list(zs.sl.islice(first, last + 1))


def range_limited(zs, first, last, offset, limit, reverse):
    """Indexes [first, last] after LIMIT offset count (a negative offset
    walks off the end in Redis: nothing; a negative count: no limit)."""
    if first > last or offset < 0 or (offset > 0 and offset >= len(zs)):
        return []
    n = last - first + 1 - offset
    if n <= 0:
        return []
    if 0 <= limit < n:
        n = limit
    if reverse:
        hi = last - offset
        return list(zs.sl.islice(hi - n + 1, hi + 1, reverse=True))
    lo = first + offset
    return list(zs.sl.islice(lo, lo + n))


def zrangestore_finish(c, dstkey, pairs):
    db = c.db
    if pairs:
        db.set_key(dstkey, stored_zset(pairs))
        signal_modified_key(c, db, dstkey)
        c.add_reply(b":%d\r\n" % len(pairs))
        notify_zset(c, b"zrangestore", dstkey)
    else:
        c.add_reply(b":0\r\n")
        if db.delete(dstkey):
            signal_modified_key(c, db, dstkey)
            notify_del(c, dstkey)


def zrange_command(c):
    zrange_generic(c, 1, False)


def zrangestore_command(c):
    zrange_generic(c, 2, True)


def zrevrange_command(c):
    zrange_generic(c, 1, False, "rank", True)


def zrangebyscore_command(c):
    zrange_generic(c, 1, False, "score", False)


def zrevrangebyscore_command(c):
    zrange_generic(c, 1, False, "score", True)


def zrangebylex_command(c):
    zrange_generic(c, 1, False, "lex", False)


def zrevrangebylex_command(c):
    zrange_generic(c, 1, False, "lex", True)


# ---- ZUNION / ZINTER / ZDIFF -------------------------------------------------------------------

def source_items(v):
    """(member, score) of a ZUNION input: a zset, or a set (scores 1)."""
    if v is None:
        return ()
    if v.__class__ is ZSet:
        return v.dict.items()
    return ((m, 1.0) for m in v)


def source_score(v, m):
    if v.__class__ is ZSet:
        return v.dict.get(m)
    return 1.0 if m in v else None


def aggregate(op, a, b):
    if op == b"sum":
        s = a + b
        return 0.0 if s != s else s     # inf + -inf: Redis stores 0
    if op == b"min":
        return b if b < a else a
    return b if b > a else a


def parse_setop_args(c, numkeys_idx, op, dstkey, card_only):
    """The inputs and options of Z(UNION|INTER|DIFF)[STORE]/ZINTERCARD, or None."""
    argv = c.argv
    setnum = parse_long(c, argv[numkeys_idx])
    if setnum is None:
        return None
    if setnum < 1:
        c.add_reply_error("at least 1 input key is needed for '%s' command" %
                          c.lastcmd.fullname)
        return None
    if setnum > len(argv) - (numkeys_idx + 1):
        c.add_reply_error(SYNTAX_ERR)
        return None
    srcs = []
    lookup_read = c.db.lookup_read
    j = numkeys_idx + 1
    for key in argv[j:j + setnum]:
        v = lookup_read(key)
        if v is not None and v.__class__ is not ZSet and v.__class__ is not Set:
            c.add_reply_error(WRONGTYPE_ERR)
            return None
        srcs.append(v)
    j += setnum
    weights = [1.0] * setnum
    agg = b"sum"
    withscores = False
    limit = 0
    while j < len(argv):
        remaining = len(argv) - j
        opt = argv[j].lower()
        if op != "diff" and not card_only and remaining >= setnum + 1 and opt == b"weights":
            for i in range(setnum):
                w = string2d(argv[j + 1 + i])
                if w is None:
                    c.add_reply_error("weight value is not a float")
                    return None
                weights[i] = w
            j += setnum + 1
        elif op != "diff" and not card_only and remaining >= 2 and opt == b"aggregate":
            agg = argv[j + 1].lower()
            if agg not in (b"sum", b"min", b"max"):
                c.add_reply_error(SYNTAX_ERR)
                return None
            j += 2
        elif remaining >= 1 and dstkey is None and not card_only and opt == b"withscores":
            withscores = True
            j += 1
        elif card_only and remaining >= 2 and opt == b"limit":
            limit = parse_long_or_reply(c, argv[j + 1], 0, LONG_MAX, "LIMIT can't be negative")
            if limit is None:
                return None
            j += 2
        else:
            c.add_reply_error(SYNTAX_ERR)
            return None
    return srcs, weights, agg, withscores, limit


def weighted(score, weight):
    s = score * weight
    return 0.0 if s != s else s


def zsetop(srcs, weights, agg, op, limit=0):
    """The result as a dict member -> score (or a count when limit is not None
    for ZINTERCARD)."""
    if op == "diff":
        first = srcs[0]
        if first is None:
            return {}
        rest = [s for s in srcs[1:] if s is not None]
        return {m: s for m, s in source_items(first)
                if not any(source_score(o, m) is not None for o in rest)}
    order = sorted(range(len(srcs)), key=lambda i: len(srcs[i]) if srcs[i] is not None else 0)
    if op == "union":
        acc = {}
        for i in order:
            w = weights[i]
            for m, s in source_items(srcs[i]):
                s = weighted(s, w)
                old = acc.get(m)
                acc[m] = s if old is None else aggregate(agg, old, s)
        return acc
    first = order[0]
    if srcs[first] is None or not len(srcs[first]):
        return {}
    acc = {}
    for m, s in source_items(srcs[first]):
        score = weighted(s, weights[first])
        for i in order[1:]:
            other = source_score(srcs[i], m) if srcs[i] is not None else None
            if other is None:
                break
            score = aggregate(agg, score, other * weights[i])
        else:
            acc[m] = score
            if limit and len(acc) >= limit:
                break
    return acc


def zsetop_generic(c, dstkey, numkeys_idx, op, card_only=False):
    parsed = parse_setop_args(c, numkeys_idx, op, dstkey, card_only)
    if parsed is None:
        return
    srcs, weights, agg, withscores, limit = parsed
    result = zsetop(srcs, weights, agg, op, limit if card_only else 0)
    if card_only:
        c.add_reply(b":%d\r\n" % len(result))
        return
    pairs = sorted((s, m) for m, s in result.items())
    if dstkey is None:
        c.add_reply(encode_pairs(c, pairs, withscores))
        return
    db = c.db
    if pairs:
        db.set_key(dstkey, stored_zset(pairs))
        signal_modified_key(c, db, dstkey)
        c.add_reply(b":%d\r\n" % len(pairs))
        notify_zset(c, b"z" + op.encode() + b"store", dstkey)
    else:
        c.add_reply(b":0\r\n")
        if db.delete(dstkey):
            signal_modified_key(c, db, dstkey)
            notify_del(c, dstkey)


def zunionstore_command(c):
    zsetop_generic(c, c.argv[1], 2, "union")


def zinterstore_command(c):
    zsetop_generic(c, c.argv[1], 2, "inter")


def zdiffstore_command(c):
    zsetop_generic(c, c.argv[1], 2, "diff")


def zunion_command(c):
    zsetop_generic(c, None, 1, "union")


def zinter_command(c):
    zsetop_generic(c, None, 1, "inter")


def zdiff_command(c):
    zsetop_generic(c, None, 1, "diff")


def zintercard_command(c):
    zsetop_generic(c, None, 1, "inter", card_only=True)


# ---- pops -------------------------------------------------------------------------------------

def zset_pop(c, key, zs, where, count):
    """Remove up to count members from one end of zs at key: the (score,
    member) pairs, in pop order. Notifies, signals, and deletes the key
    when it empties, as genericZpopCommand()."""
    n = min(count, len(zs))
    sl = zs.sl
    if where == ZSET_MAX:
        popped = list(sl.islice(len(sl) - n, len(sl), reverse=True))
        del sl[len(sl) - n:]
    else:
        popped = list(sl.islice(0, n))
        del sl[:n]
    d = zs.dict
    for _, m in popped:
        del d[m]
    db = c.db
    notify_zset(c, b"zpopmax" if where == ZSET_MAX else b"zpopmin", key)
    signal_modified_key(c, db, key)
    if not zs:
        db.delete(key)
        notify_del(c, key)
    return popped


def generic_zpop(c, keys, where, emitkey, count, nested, nil_when_empty):
    """genericZpopCommand(): pop from the first non-empty zset among keys.

    count -1 is a plain single pop. Reply shapes: flat [m, s, ...] (nested
    False), [[m, s], ...] (nested), with the key first when emitkey (BZPOP*:
    flat with the key; ZMPOP/BZMPOP: [key, [[m, s], ...]]). No candidate:
    a null array when nil_when_empty, else an empty array. Returns True
    when something was popped (what a blocked client needs to know).
    """
    zs = key = None
    for key in keys:
        zs = c.db.lookup_write(key)
        if zs is None:
            continue
        if zs.__class__ is not ZSet:
            c.add_reply_error(WRONGTYPE_ERR)
            return False
        break
    if zs is None:
        if nil_when_empty:
            c.add_reply_null_array()
        else:
            c.add_reply(b"*0\r\n")
        return False
    if count == 0:
        c.add_reply(b"*0\r\n")
        return False
    if count == -1:
        count = 1
    popped = zset_pop(c, key, zs, where, count)
    n = len(popped)
    if nested:
        head = b"*%d\r\n" % n
        body = b"".join(b"*2\r\n$%d\r\n%s\r\n" % (len(m), m) + double_bytes(c, s)
                        for s, m in popped)
    else:
        head = b""
        body = b"".join(b"$%d\r\n%s\r\n" % (len(m), m) + double_bytes(c, s) for s, m in popped)
    if not emitkey:
        c.add_reply((head if nested else b"*%d\r\n" % (2 * n)) + body)
    elif nested:
        c.add_reply(b"*2\r\n$%d\r\n%s\r\n" % (len(key), key) + head + body)
    else:
        c.add_reply(b"*%d\r\n$%d\r\n%s\r\n" % (2 * n + 1, len(key), key) + body)
    return True


def double_bytes(c, d):
    f = score_text(d)
    if c.resp == 2:
        return b"$%d\r\n%s\r\n" % (len(f), f)
    return b",%s\r\n" % f


def zpop_min_max(c, where):
    argv = c.argv
    if len(argv) > 3:
        c.add_reply_error(SYNTAX_ERR)
        return
    count = -1
    if len(argv) == 3:
        count = parse_long_or_reply(c, argv[2], 0, LONG_MAX,
                                    "value is out of range, must be positive")
        if count is None:
            return
    generic_zpop(c, argv[1:2], where, False, count, c.resp > 2 and count != -1, False)


def zpopmin_command(c):
    zpop_min_max(c, ZSET_MIN)


def zpopmax_command(c):
    zpop_min_max(c, ZSET_MAX)


def parse_zmpop_args(c, numkeys_idx):
    """ZMPOP/BZMPOP's numkeys key... MIN|MAX [COUNT n]: (keys, where, count) or None."""
    argv = c.argv
    numkeys = parse_long_or_reply(c, argv[numkeys_idx], 1, LONG_MAX,
                                  "numkeys should be greater than 0")
    if numkeys is None:
        return None
    where_idx = numkeys_idx + numkeys + 1
    if where_idx >= len(argv):
        c.add_reply_error(SYNTAX_ERR)
        return None
    w = argv[where_idx].lower()
    if w not in (b"min", b"max"):
        c.add_reply_error(SYNTAX_ERR)
        return None
    where = ZSET_MIN if w == b"min" else ZSET_MAX
    count = -1
    j = where_idx + 1
    while j < len(argv):
        if count == -1 and argv[j].lower() == b"count" and j + 1 < len(argv):
            count = parse_long_or_reply(c, argv[j + 1], 1, LONG_MAX,
                                        "count should be greater than 0")
            if count is None:
                return None
            j += 2
        else:
            c.add_reply_error(SYNTAX_ERR)
            return None
    return argv[numkeys_idx + 1:where_idx], where, (1 if count == -1 else count)


def zmpop_command(c):
    parsed = parse_zmpop_args(c, 1)
    if parsed is not None:
        keys, where, count = parsed
        generic_zpop(c, keys, where, True, count, True, True)


# ---- blocking pops ----------------------------------------------------------------------

blocked.VALUE_BTYPE[ZSet] = BLOCKED_ZSET


def blocking_generic_zpop(c, keys, where, timeout_idx, count, nested, nil_when_empty):
    """blockingGenericZpopCommand(): pop from the first zset among keys, or block."""
    timeout = get_timeout_or_reply(c, c.argv[timeout_idx])
    if timeout is None:
        return
    db = c.db
    for key in keys:
        zs = db.lookup_write(key)
        if zs is None:
            continue
        if zs.__class__ is not ZSet:
            c.add_reply_error(WRONGTYPE_ERR)
            return
        generic_zpop(c, (key,), where, True, count, nested, nil_when_empty)
        return
    if c.flags & CLIENT_DENY_BLOCKING:
        # Not allowed to block (MULTI, scripts): as if timed out, even for 0.
        c.add_reply_null_array()
        return
    block_for_keys(c, BLOCKED_ZSET, keys, timeout, serve_blocked_on_zset,
                   (where, count, nested))


def serve_blocked_on_zset(receiver, db, key, zs, state):
    """The blocked.py serve callback for zsets: the pop of the command that blocked."""
    where, count, nested = state
    generic_zpop(receiver, (key,), where, True, count, nested, nested)
    return True


def bzpopmin_command(c):
    argv = c.argv
    blocking_generic_zpop(c, argv[1:-1], ZSET_MIN, len(argv) - 1, -1, False, False)


def bzpopmax_command(c):
    argv = c.argv
    blocking_generic_zpop(c, argv[1:-1], ZSET_MAX, len(argv) - 1, -1, False, False)


def bzmpop_command(c):
    parsed = parse_zmpop_args(c, 2)
    if parsed is not None:
        keys, where, count = parsed
        blocking_generic_zpop(c, keys, where, 1, count, True, True)


# ---- ZRANDMEMBER / ZSCAN --------------------------------------------------------------------

def zrandmember_command(c):
    argv = c.argv
    if len(argv) >= 3:
        count = parse_long_or_reply(c, argv[2], -LONG_MAX, LONG_MAX)
        if count is None:
            return
        if len(argv) > 4 or (len(argv) == 4 and argv[3].lower() != b"withscores"):
            c.add_reply_error(SYNTAX_ERR)
            return
        withscores = len(argv) == 4
        if withscores and (count < -LONG_MAX // 2 or count > LONG_MAX // 2):
            c.add_reply_error("value is out of range")
            return
        zrandmember_with_count(c, count, withscores)
        return
    zs, ok = lookup_typed(c, argv[1], ZSet)
    if not ok:
        return
    if zs is None:
        c.add_reply_null()
        return
    m = random.choice(tuple(zs.dict))
    c.add_reply(b"$%d\r\n%s\r\n" % (len(m), m))


def zrandmember_with_count(c, count, withscores):
    zs, ok = lookup_typed(c, c.argv[1], ZSet)
    if not ok:
        return
    if zs is None or count == 0:
        c.add_reply(b"*0\r\n")
        return
    members = tuple(zs.dict)
    if count < 0:
        picked = random.choices(members, k=-count)
    elif count >= len(members):
        # zuiNext() walks a sorted set from its tail.
        picked = [m for _, m in reversed(zs.sl)]
    else:
        picked = random.sample(members, count)
    d = zs.dict
    c.add_reply(encode_pairs(c, [(d[m], m) for m in picked], withscores))


def zscan_command(c):
    from .db_commands import parse_scan_cursor_or_reply, scan_generic_command
    cursor = parse_scan_cursor_or_reply(c, c.argv[2])
    if cursor is None:
        return
    zs, ok = lookup_typed(c, c.argv[1], ZSet)
    if not ok:
        return
    if zs is None:
        c.add_reply(b"*2\r\n$1\r\n0\r\n*0\r\n")
        return
    d = zs.dict
    if zs.listpack:
        scan_generic_command(c, d, cursor, True, lambda: [m for _, m in zs.sl],
                             lambda m: d2string(d[m]))
    else:
        scan_generic_command(c, d, cursor, False, lambda: list(d),
                             lambda m: format_double(d[m]))


_W = CMD_WRITE
_R = CMD_READONLY
_F = CMD_FAST
_G = "sorted_set"

COMMANDS = [
    Command("zadd", zadd_command, -4, _W | _F, 1, 1, 1, group=_G,
            summary="Add one or more members to a sorted set, or update its score if it "
                    "already exists"),
    Command("zincrby", zincrby_command, 4, _W | _F, 1, 1, 1, group=_G,
            summary="Increment the score of a member in a sorted set"),
    Command("zrem", zrem_command, -3, _W | _F, 1, 1, 1, group=_G,
            summary="Remove one or more members from a sorted set"),
    Command("zcard", zcard_command, 2, _R | _F, 1, 1, 1, group=_G,
            summary="Get the number of members in a sorted set"),
    Command("zcount", zcount_command, 4, _R | _F, 1, 1, 1, group=_G,
            summary="Count the members in a sorted set with scores within the given values"),
    Command("zlexcount", zlexcount_command, 4, _R | _F, 1, 1, 1, group=_G,
            summary="Count the number of members in a sorted set between a given "
                    "lexicographical range"),
    Command("zscore", zscore_command, 3, _R | _F, 1, 1, 1, group=_G,
            summary="Get the score associated with the given member in a sorted set"),
    Command("zmscore", zmscore_command, -3, _R | _F, 1, 1, 1, group=_G,
            summary="Get the score associated with the given members in a sorted set"),
    Command("zrank", zrank_command, 3, _R | _F, 1, 1, 1, group=_G,
            summary="Determine the index of a member in a sorted set"),
    Command("zrevrank", zrevrank_command, 3, _R | _F, 1, 1, 1, group=_G,
            summary="Determine the index of a member in a sorted set, with scores ordered "
                    "from high to low"),
    Command("zrange", zrange_command, -4, _R, 1, 1, 1, group=_G,
            summary="Return a range of members in a sorted set"),
    Command("zrangestore", zrangestore_command, -5, _W, 1, 2, 1, group=_G,
            summary="Store a range of members from sorted set into another key"),
    Command("zrevrange", zrevrange_command, -4, _R, 1, 1, 1, group=_G,
            summary="Return a range of members in a sorted set, by index, with scores "
                    "ordered from high to low"),
    Command("zrangebyscore", zrangebyscore_command, -4, _R, 1, 1, 1, group=_G,
            summary="Return a range of members in a sorted set, by score"),
    Command("zrevrangebyscore", zrevrangebyscore_command, -4, _R, 1, 1, 1, group=_G,
            summary="Return a range of members in a sorted set, by score, with scores "
                    "ordered from high to low"),
    Command("zrangebylex", zrangebylex_command, -4, _R, 1, 1, 1, group=_G,
            summary="Return a range of members in a sorted set, by lexicographical range"),
    Command("zrevrangebylex", zrevrangebylex_command, -4, _R, 1, 1, 1, group=_G,
            summary="Return a range of members in a sorted set, by lexicographical range, "
                    "ordered from higher to lower strings."),
    Command("zremrangebyrank", zremrangebyrank_command, 4, _W, 1, 1, 1, group=_G,
            summary="Remove all members in a sorted set within the given indexes"),
    Command("zremrangebyscore", zremrangebyscore_command, 4, _W, 1, 1, 1, group=_G,
            summary="Remove all members in a sorted set within the given scores"),
    Command("zremrangebylex", zremrangebylex_command, 4, _W, 1, 1, 1, group=_G,
            summary="Remove all members in a sorted set between the given lexicographical "
                    "range"),
    Command("zpopmin", zpopmin_command, -2, _W | _F, 1, 1, 1, group=_G,
            summary="Remove and return members with the lowest scores in a sorted set"),
    Command("zpopmax", zpopmax_command, -2, _W | _F, 1, 1, 1, group=_G,
            summary="Remove and return members with the highest scores in a sorted set"),
    Command("zmpop", zmpop_command, -4, _W, 0, 0, 0, group=_G,
            summary="Remove and return members with scores in a sorted set"),
    Command("bzpopmin", bzpopmin_command, -3, _W | CMD_NOSCRIPT | CMD_BLOCKING | _F, 1, -2, 1,
            group=_G, summary="Remove and return the member with the lowest score from one or "
                              "more sorted sets, or block until one is available"),
    Command("bzpopmax", bzpopmax_command, -3, _W | CMD_NOSCRIPT | CMD_BLOCKING | _F, 1, -2, 1,
            group=_G, summary="Remove and return the member with the highest score from one or "
                              "more sorted sets, or block until one is available"),
    Command("bzmpop", bzmpop_command, -5, _W | CMD_BLOCKING, 0, 0, 0, group=_G,
            summary="Remove and return members with scores in a sorted set or block until "
                    "one is available"),
    Command("zrandmember", zrandmember_command, -2, _R, 1, 1, 1, group=_G,
            summary="Get one or multiple random elements from a sorted set"),
    Command("zunion", zunion_command, -3, _R, 0, 0, 0, group=_G,
            summary="Add multiple sorted sets"),
    Command("zinter", zinter_command, -3, _R, 0, 0, 0, group=_G,
            summary="Intersect multiple sorted sets"),
    Command("zdiff", zdiff_command, -3, _R, 0, 0, 0, group=_G,
            summary="Subtract multiple sorted sets"),
    Command("zunionstore", zunionstore_command, -4, _W, 1, 1, 1, group=_G,
            summary="Add multiple sorted sets and store the resulting sorted set in a new key"),
    Command("zinterstore", zinterstore_command, -4, _W, 1, 1, 1, group=_G,
            summary="Intersect multiple sorted sets and store the resulting sorted set in a "
                    "new key"),
    Command("zdiffstore", zdiffstore_command, -4, _W, 1, 1, 1, group=_G,
            summary="Subtract multiple sorted sets and store the resulting sorted set in a "
                    "new key"),
    Command("zintercard", zintercard_command, -3, _R, 0, 0, 0, group=_G,
            summary="Intersect multiple sorted sets and return the cardinality of the result"),
    Command("zscan", zscan_command, -3, _R, 1, 1, 1, group=_G,
            summary="Incrementally iterate sorted sets elements and associated scores"),
]
