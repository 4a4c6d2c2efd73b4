"""String commands: GET SET MGET MSET INCR... (Redis's t_string.c).

A string is a `bytes` value in Db.dict. Commands that rewrite a value in
place (INCR, APPEND, INCRBYFLOAT) keep the key's TTL, as Redis's
dbOverwrite() does; SET, MSET and GETSET drop it, as setKey() does.

GET and SET are the hot path (benchmarked against redis-server): they look
the key up inline instead of through Db.lookup_read/lookup_write, and SET
without options never parses options. With keyspace notifications on, SET
takes the general path (set_generic), which publishes them.

INCRBYFLOAT and HINCRBYFLOAT compute in C's `long double`, which on x86-64
is the x87 80-bit extended format: a 64-bit significand, exponents down to
2**-16382 (then subnormals to 2**-16445), overflow at 2**16384. Python has
no such type, so a number is kept as an exact Fraction, rounded to that
format (nearest, ties to even) after parsing and after the addition, and
printed exactly the way glibc's "%.17Lf" does, then stripped of trailing
zeros like Redis's ld2string(LD_STR_HUMAN). That is why "10.5 + 0.1"
answers "10.6" here as in Redis, where a double would print 10.599999999999999.
Parsing follows strtold(): decimal or hex (0x...p...) notation, "inf" and
"infinity" in any case, and Redis's string2ld() refusals: empty, leading
space, trailing garbage, NaN, overflow, underflow to zero.
"""

import re
from fractions import Fraction

from . import notify
from .db import WRONGTYPE_ERR, mstime, signal_modified_key
from .notify import notify_keyspace_event, NOTIFY_GENERIC, NOTIFY_STRING
from .resp import string2ll, LLONG_MAX, LLONG_MIN
from .server_h import Command, server, CMD_FAST, CMD_READONLY, CMD_WRITE

OK = b"+OK\r\n"
SYNTAX_ERR = "syntax error"
NOT_INTEGER = "value is not an integer or out of range"
NOT_FLOAT = "value is not a valid float"
NAN_OR_INF = "increment would produce NaN or Infinity"

# SET option flags (OBJ_SET_* and friends in t_string.c).
SET_NX = 1 << 0
SET_XX = 1 << 1
SET_EX = 1 << 2
SET_PX = 1 << 3
SET_KEEPTTL = 1 << 4
SET_GET = 1 << 5
SET_EXAT = 1 << 6
SET_PXAT = 1 << 7
_ANY_EXPIRE = SET_EX | SET_PX | SET_EXAT | SET_PXAT


# ---- long double emulation (see the module docstring) -----------------------

MAX_LONG_DOUBLE_CHARS = 5 * 1024
LD_MANT_DIG = 64
LD_MIN_EXP = -16382          # exponent of the smallest normal number
LD_OVERFLOW = 1 << 16384
LD_INF = float("inf")

_DEC_FLOAT = re.compile(rb"([+-]?)(?:([0-9]+)\.?([0-9]*)|\.([0-9]+))(?:[eE]([+-]?[0-9]+))?\Z")
_HEX_FLOAT = re.compile(rb"([+-]?)0[xX](?:([0-9a-fA-F]+)\.?([0-9a-fA-F]*)|\.([0-9a-fA-F]+))"
                        rb"(?:[pP]([+-]?[0-9]+))?\Z")
_INF = re.compile(rb"([+-]?)(?:inf|infinity)\Z", re.IGNORECASE)
_DIGITS_CHUNK = 4000         # below sys.get_int_max_str_digits()'s default


def _digits_to_int(s, base=10):
    """int(s, base) for any length (int() refuses more than 4300 digits)."""
    if len(s) <= _DIGITS_CHUNK:
        return int(s, base)
    n = 0
    for i in range(0, len(s), _DIGITS_CHUNK):
        chunk = s[i:i + _DIGITS_CHUNK]
        n = n * base ** len(chunk) + int(chunk, base)
    return n


def _int_to_digits(n):
    """str(n) for any size n >= 0 (str() refuses more than 4300 digits)."""
    if n < 10 ** _DIGITS_CHUNK:
        return str(n)
    hi, lo = divmod(n, 10 ** _DIGITS_CHUNK)
    return _int_to_digits(hi) + str(lo).zfill(_DIGITS_CHUNK)


def round_long_double(x):
    """x (a Fraction) rounded to the nearest long double; None on overflow."""
    if not x:
        return x
    n, d = abs(x.numerator), x.denominator
    e = n.bit_length() - d.bit_length()
    if (n << max(0, -e)) < (d << max(0, e)):
        e -= 1                          # now 2**e <= |x| < 2**(e+1)
    q = max(e, LD_MIN_EXP) - (LD_MANT_DIG - 1)   # weight of the last bit
    if q >= 0:
        m = round(Fraction(x.numerator, x.denominator << q))
        r = Fraction(m << q)
    else:
        m = round(x * (1 << -q))
        r = Fraction(m, 1 << -q)
    return None if abs(r) >= LD_OVERFLOW else r


def _exact_value(sign, int_digits, frac_digits, exp, base):
    """The exact value of a parsed number; LD_INF when it certainly
    overflows, None when it certainly underflows to zero (tested first: a
    huge exponent must not make us build a huge integer)."""
    digits = (int_digits + frac_digits).lstrip(b"0")
    if not digits:
        return Fraction(0)
    # A fraction digit is worth 4 bits of the binary exponent in hex
    # (0x1.8p3 == 0x18p-1), one unit of the decimal exponent otherwise.
    exp -= len(frac_digits) * (4 if base == 16 else 1)
    if base == 16:
        magnitude = len(digits) * 4 + exp           # about log2 |x|
        if magnitude > 16400:
            return LD_INF
        if magnitude < -16500:
            return None
        m = _digits_to_int(digits, 16)
        v = Fraction(m << exp) if exp >= 0 else Fraction(m, 1 << -exp)
    else:
        magnitude = len(digits) + exp               # about log10 |x|
        if magnitude > 4940:
            return LD_INF
        if magnitude < -4960:
            return None
        m = _digits_to_int(digits)
        v = Fraction(m * 10 ** exp) if exp >= 0 else Fraction(m, 10 ** -exp)
    return -v if sign == b"-" else v


def string2ld(s):
    """strtold() with string2ld()'s checks: a Fraction, +-LD_INF, or None."""
    if not s or len(s) >= MAX_LONG_DOUBLE_CHARS:
        return None
    m = _DEC_FLOAT.match(s)
    base = 10
    if m is None:
        m = _HEX_FLOAT.match(s)
        base = 16
    if m is None:
        m = _INF.match(s)
        if m is None:
            return None
        return -LD_INF if m.group(1) == b"-" else LD_INF
    sign, int_digits, frac_digits, only_frac, exp = m.groups()
    if only_frac is not None:
        int_digits, frac_digits = b"", only_frac
    v = _exact_value(sign, int_digits, frac_digits, int(exp) if exp else 0, base)
    if v is LD_INF or v is None:
        return None                     # ERANGE: HUGE_VAL or zero
    r = round_long_double(v)
    if r is None or (v and not r):
        return None                     # ERANGE: overflow, or underflow to zero
    return r


def ld2string_human(v):
    """"%.17Lf" of v without trailing zeros (ld2string's LD_STR_HUMAN)."""
    scaled = round(abs(v) * 10 ** 17)   # glibc rounds exactly, ties to even
    digits = _int_to_digits(scaled).rjust(18, "0")
    frac = digits[-17:].rstrip("0")
    out = digits[:-17] + ("." + frac if frac else "")
    # printf keeps the sign of a negative number that rounds to zero, and
    # Redis then turns the resulting "-0" into "0".
    if v < 0 and out != "0":
        out = "-" + out
    return out.encode()


def long_double_add(value, incr):
    """value + incr in long double, or None for NaN/Infinity."""
    if value in (LD_INF, -LD_INF) or incr in (LD_INF, -LD_INF):
        return None
    return round_long_double(value + incr)


# ---- helpers -------------------------------------------------------------------

def check_string_length(c, size, append):
    """checkStringLength(): the result may not exceed proto-max-bulk-len."""
    if size + append > server.config.proto_max_bulk_len:
        c.add_reply_error("string exceeds maximum allowed size (proto-max-bulk-len)")
        return False
    return True


def get_generic(c):
    """getGenericCommand(): reply with the string at argv[1]; False on WRONGTYPE."""
    v = c.db.lookup_read(c.argv[1])
    if v is None:
        c.add_reply_null()
    elif v.__class__ is not bytes:
        c.add_reply_error(WRONGTYPE_ERR)
        return False
    else:
        c.add_reply(b"$%d\r\n%s\r\n" % (len(v), v))
    return True


# ---- GET / SET (hot path) --------------------------------------------------------

def get_command(c):
    db = c.db
    key = c.argv[1]
    if db.expires and key in db.expires:
        db.expire_if_needed(key)
    v = db.dict.get(key)
    if v is None:
        server.stat_keyspace_misses += 1
        c.add_reply_null()
        return
    server.stat_keyspace_hits += 1
    if type(v) is bytes:
        c.add_reply_bulk(v)
    else:
        c.add_reply_error(WRONGTYPE_ERR)


def set_command(c):
    argv = c.argv
    if len(argv) != 3 or server.notify_keyspace_events:
        set_with_options(c)
        return
    db = c.db
    key = argv[1]
    expires = db.expires
    # lookupKeyWrite() expires a stale key first (counted in expired_keys);
    # then setKey() drops whatever TTL the key had.
    if expires and key in expires and not db.expire_if_needed(key):
        del expires[key]
    db.dict[key] = argv[2]
    if db.watched_keys or db.blocking_keys or server.tracking_clients:
        # signal_modified_key's own tests, inlined: the call costs more.
        signal_modified_key(c, db, key)
    c.add_reply(OK)


def parse_set_options(c):
    """parseExtendedStringArgumentsOrReply() for SET: (flags, expire arg) or None."""
    argv = c.argv
    flags = 0
    expire = None
    j = 3
    argc = len(argv)
    while j < argc:
        opt = argv[j].upper()
        has_next = j + 1 < argc
        if opt == b"NX" and not flags & SET_XX:
            flags |= SET_NX
        elif opt == b"XX" and not flags & SET_NX:
            flags |= SET_XX
        elif opt == b"GET":
            flags |= SET_GET
        elif opt == b"KEEPTTL" and not flags & _ANY_EXPIRE:
            flags |= SET_KEEPTTL
        elif opt in _EXPIRE_OPTIONS and has_next and \
                not flags & (SET_KEEPTTL | _ANY_EXPIRE & ~_EXPIRE_OPTIONS[opt]):
            flags |= _EXPIRE_OPTIONS[opt]
            expire = argv[j + 1]
            j += 1
        else:
            c.add_reply_error(SYNTAX_ERR)
            return None
        j += 1
    return flags, expire


_EXPIRE_OPTIONS = {b"EX": SET_EX, b"PX": SET_PX, b"EXAT": SET_EXAT, b"PXAT": SET_PXAT}


def expire_to_ms_or_reply(c, arg, flags):
    """getExpireMillisecondsOrReply(): the absolute expire time in ms, or None."""
    ms = string2ll(arg)
    if ms is None:
        c.add_reply_error(NOT_INTEGER)
        return None
    seconds = flags & (SET_EX | SET_EXAT)
    if ms <= 0 or (seconds and ms > LLONG_MAX // 1000):
        c.add_reply_error("invalid expire time in '%s' command" % c.lastcmd.fullname)
        return None
    if seconds:
        ms *= 1000
    if flags & (SET_EX | SET_PX):
        ms += mstime()
    if ms > LLONG_MAX:
        # C's signed overflow leaves a negative number: the same error.
        c.add_reply_error("invalid expire time in '%s' command" % c.lastcmd.fullname)
        return None
    return ms


def set_generic(c, flags, key, value, expire, ok_reply=OK, abort_reply=None):
    """setGenericCommand(): SET and its variants (SETNX, SETEX, PSETEX)."""
    when = None
    if expire is not None:
        when = expire_to_ms_or_reply(c, expire, flags)
        if when is None:
            return
    if flags & SET_GET and not get_generic(c):
        return
    db = c.db
    found = db.lookup_write(key) is not None
    if flags & SET_NX and found or flags & SET_XX and not found:
        if not flags & SET_GET:
            if abort_reply is None:
                c.add_reply_null()
            else:
                c.add_reply(abort_reply)
        return
    db.set_key(key, value, keepttl=bool(flags & SET_KEEPTTL), found=found)
    notify_keyspace_event(NOTIFY_STRING, b"set", key, db.id)
    if when is not None:
        db.set_expire(key, when)
        notify_keyspace_event(NOTIFY_GENERIC, b"expire", key, db.id)
    if not flags & SET_GET:
        c.add_reply(ok_reply)


def set_with_options(c):
    if len(c.argv) == 3:
        set_generic(c, 0, c.argv[1], c.argv[2], None)
        return
    parsed = parse_set_options(c)
    if parsed is None:
        return
    flags, expire = parsed
    set_generic(c, flags, c.argv[1], c.argv[2], expire)


def setnx_command(c):
    set_generic(c, SET_NX, c.argv[1], c.argv[2], None, b":1\r\n", b":0\r\n")


def setex_command(c):
    set_generic(c, SET_EX, c.argv[1], c.argv[3], c.argv[2])


def psetex_command(c):
    set_generic(c, SET_PX, c.argv[1], c.argv[3], c.argv[2])


def getset_command(c):
    if not get_generic(c):
        return
    db = c.db
    db.set_key(c.argv[1], c.argv[2])
    notify_keyspace_event(NOTIFY_STRING, b"set", c.argv[1], db.id)


def getdel_command(c):
    db = c.db
    key = c.argv[1]
    if get_generic(c) and db.delete(key):
        signal_modified_key(c, db, key)
        notify_keyspace_event(NOTIFY_GENERIC, b"del", key, db.id)


# ---- multiple keys ------------------------------------------------------------------

def mget_command(c):
    argv = c.argv
    lookup_read = c.db.lookup_read
    c.add_reply_array_len(len(argv) - 1)
    for key in argv[1:]:
        v = lookup_read(key)
        # MGET never fails: a non-string is a null like a missing key.
        if v.__class__ is bytes:
            c.add_reply(b"$%d\r\n%s\r\n" % (len(v), v))
        else:
            c.add_reply_null()


def mset_command(c):
    argv = c.argv
    if len(argv) % 2 == 0:
        c.add_reply_error("wrong number of arguments for '%s' command" % c.lastcmd.fullname)
        return
    db = c.db
    if server.notify_keyspace_events or db.watched_keys or db.blocking_keys or \
            server.tracking_clients:
        mset_generic(c, db, argv)
        c.add_reply(OK)
        return
    expires = db.expires
    if expires:
        for key in argv[1::2]:
            if key in expires and not db.expire_if_needed(key):
                del expires[key]
    # A key given twice takes its last value, as in Redis.
    db.dict.update(zip(argv[1::2], argv[2::2]))
    c.add_reply(OK)


def mset_generic(c, db, argv):
    """msetGenericCommand()'s loop: one setKey and one `set` event per pair."""
    for j in range(1, len(argv), 2):
        db.set_key(argv[j], argv[j + 1])
        notify_keyspace_event(NOTIFY_STRING, b"set", argv[j], db.id)


def msetnx_command(c):
    argv = c.argv
    if len(argv) % 2 == 0:
        c.add_reply_error("wrong number of arguments for '%s' command" % c.lastcmd.fullname)
        return
    db = c.db
    keys = argv[1::2]
    if any(db.lookup_write(key) is not None for key in keys):
        c.add_reply(b":0\r\n")
        return
    mset_generic(c, db, argv)
    c.add_reply(b":1\r\n")


# ---- counters ----------------------------------------------------------------------

def incr_decr(c, incr):
    """incrDecrCommand() (hot path for INCR): the TTL is kept."""
    db = c.db
    key = c.argv[1]
    if db.expires and key in db.expires:
        db.expire_if_needed(key)
    v = db.dict.get(key)
    if v is None:
        value = 0
    elif v.__class__ is not bytes:
        c.add_reply_error(WRONGTYPE_ERR)
        return
    else:
        value = string2ll(v)
        if value is None:
            c.add_reply_error(NOT_INTEGER)
            return
    value += incr
    if value > LLONG_MAX or value < LLONG_MIN:
        c.add_reply_error("increment or decrement would overflow")
        return
    if v is None:
        db.add(key, b"%d" % value)
    else:
        db.dict[key] = b"%d" % value
    if db.watched_keys or db.blocking_keys or server.tracking_clients:
        signal_modified_key(c, db, key)
    if server.notify_keyspace_events:
        notify_keyspace_event(NOTIFY_STRING, b"incrby", key, db.id)
    c.add_reply(b":%d\r\n" % value)


def incr_command(c):
    incr_decr(c, 1)


def decr_command(c):
    incr_decr(c, -1)


def incrby_command(c):
    incr = string2ll(c.argv[2])
    if incr is None:
        c.add_reply_error(NOT_INTEGER)
        return
    incr_decr(c, incr)


def decrby_command(c):
    incr = string2ll(c.argv[2])
    if incr is None:
        c.add_reply_error(NOT_INTEGER)
        return
    if incr == LLONG_MIN:
        # Negating LLONG_MIN would overflow.
        c.add_reply_error("decrement would overflow")
        return
    incr_decr(c, -incr)


def incrbyfloat_command(c):
    db = c.db
    key = c.argv[1]
    v = db.lookup_write(key)
    if v is not None and v.__class__ is not bytes:
        c.add_reply_error(WRONGTYPE_ERR)
        return
    value = Fraction(0) if v is None else string2ld(v)
    incr = string2ld(c.argv[2])
    if value is None or incr is None:
        c.add_reply_error(NOT_FLOAT)
        return
    value = long_double_add(value, incr)
    if value is None:
        c.add_reply_error(NAN_OR_INF)
        return
    new = ld2string_human(value)
    if v is None:
        db.add(key, new)
    else:
        db.dict[key] = new
    signal_modified_key(c, db, key)
    notify_keyspace_event(NOTIFY_STRING, b"incrbyfloat", key, db.id)
    c.add_reply(b"$%d\r\n%s\r\n" % (len(new), new))


# ---- APPEND / STRLEN --------------------------------------------------------------------

def append_command(c):
    db = c.db
    key = c.argv[1]
    append = c.argv[2]
    v = db.lookup_write(key)
    if v is None:
        v = append
        db.add(key, v)
    elif v.__class__ is not bytes:
        c.add_reply_error(WRONGTYPE_ERR)
        return
    elif not check_string_length(c, len(v), len(append)):
        return
    else:
        v += append
        db.dict[key] = v
    signal_modified_key(c, db, key)
    notify_keyspace_event(NOTIFY_STRING, b"append", key, db.id)
    c.add_reply_long_long(len(v))


def strlen_command(c):
    v = c.db.lookup_read(c.argv[1])
    if v is None:
        c.add_reply(b":0\r\n")
    elif v.__class__ is not bytes:
        c.add_reply_error(WRONGTYPE_ERR)
    else:
        c.add_reply_long_long(len(v))


# ---- GETEX / GETRANGE / SETRANGE / LCS ------------------------------------------------------

SET_PERSIST = 1 << 8


def parse_getex_options(c):
    """parseExtendedStringArgumentsOrReply() for GETEX: (flags, expire) or None."""
    argv = c.argv
    flags = 0
    expire = None
    j = 2
    while j < len(argv):
        opt = argv[j].upper()
        has_next = j + 1 < len(argv)
        if opt == b"PERSIST" and not flags & _ANY_EXPIRE:
            flags |= SET_PERSIST
        elif opt in _EXPIRE_OPTIONS and has_next and \
                not flags & (SET_PERSIST | _ANY_EXPIRE & ~_EXPIRE_OPTIONS[opt]):
            flags |= _EXPIRE_OPTIONS[opt]
            expire = argv[j + 1]
            j += 1
        else:
            c.add_reply_error(SYNTAX_ERR)
            return None
        j += 1
    return flags, expire


def getex_command(c):
    parsed = parse_getex_options(c)
    if parsed is None:
        return
    flags, expire = parsed
    db = c.db
    key = c.argv[1]
    v = db.lookup_read(key)
    if v is None:
        c.add_reply_null()
        return
    if v.__class__ is not bytes:
        c.add_reply_error(WRONGTYPE_ERR)
        return
    when = None
    if expire is not None:
        when = expire_to_ms_or_reply(c, expire, flags)
        if when is None:
            return
    c.add_reply(b"$%d\r\n%s\r\n" % (len(v), v))
    if flags & (SET_EXAT | SET_PXAT) and when <= mstime():
        # An absolute time already past deletes the key (checkAlreadyExpired).
        db.delete(key)
        signal_modified_key(c, db, key)
        notify.notify_keyspace_event(notify.NOTIFY_GENERIC, b"del", key, db.id)
    elif when is not None:
        db.set_expire(key, when)
        signal_modified_key(c, db, key)
        notify.notify_keyspace_event(notify.NOTIFY_GENERIC, b"expire", key, db.id)
    elif flags & SET_PERSIST and db.remove_expire(key):
        signal_modified_key(c, db, key)
        notify.notify_keyspace_event(notify.NOTIFY_GENERIC, b"persist", key, db.id)


def getrange_command(c):
    start = string2ll(c.argv[2])
    if start is None:
        c.add_reply_error(NOT_INTEGER)
        return
    end = string2ll(c.argv[3])
    if end is None:
        c.add_reply_error(NOT_INTEGER)
        return
    v = c.db.lookup_read(c.argv[1])
    if v is None:
        c.add_reply(b"$0\r\n\r\n")
        return
    if v.__class__ is not bytes:
        c.add_reply_error(WRONGTYPE_ERR)
        return
    n = len(v)
    if start < 0 and end < 0 and start > end:
        c.add_reply(b"$0\r\n\r\n")
        return
    if start < 0:
        start = max(0, start + n)
    if end < 0:
        end = max(0, end + n)
    end = min(end, n - 1)
    if start > end or n == 0:
        c.add_reply(b"$0\r\n\r\n")
    else:
        part = v[start:end + 1]
        c.add_reply(b"$%d\r\n%s\r\n" % (len(part), part))


def setrange_command(c):
    argv = c.argv
    offset = string2ll(argv[2])
    if offset is None:
        c.add_reply_error(NOT_INTEGER)
        return
    if offset < 0:
        c.add_reply_error("offset is out of range")
        return
    db = c.db
    key = argv[1]
    value = argv[3]
    v = db.lookup_write(key)
    if v is None:
        if not value:
            c.add_reply(b":0\r\n")
            return
        if not check_string_length(c, offset, len(value)):
            return
        v = b""
    elif v.__class__ is not bytes:
        c.add_reply_error(WRONGTYPE_ERR)
        return
    elif not value:
        c.add_reply(b":%d\r\n" % len(v))
        return
    elif not check_string_length(c, offset, len(value)):
        return
    if len(v) < offset:
        v += bytes(offset - len(v))
    v = v[:offset] + value + v[offset + len(value):]
    # Overwriting in place keeps the TTL (Redis edits the value object).
    db.dict[key] = v
    signal_modified_key(c, db, key)
    notify.notify_keyspace_event(notify.NOTIFY_STRING, b"setrange", key, db.id)
    c.add_reply(b":%d\r\n" % len(v))


def lcs_table(a, b):
    """The LCS length table, rows of array('I'): row i is LCS(a[:i], b[:j])."""
    from array import array
    rows = [array("I", bytes(4 * (len(b) + 1)))]
    for i in range(1, len(a) + 1):
        prev = rows[-1]
        row = array("I", prev)
        ai = a[i - 1]
        left = 0
        for j in range(1, len(b) + 1):
            if ai == b[j - 1]:
                left = prev[j - 1] + 1
            elif prev[j] > left:
                left = prev[j]
            row[j] = left
        rows.append(row)
    return rows


def lcs_command(c):
    argv = c.argv
    db = c.db
    a = db.lookup_read(argv[1])
    b = db.lookup_read(argv[2])
    if (a is not None and a.__class__ is not bytes) or (b is not None and b.__class__ is not bytes):
        c.add_reply_error("The specified keys must contain string values")
        return
    a = a or b""
    b = b or b""
    getlen = getidx = withmatchlen = False
    minmatchlen = 0
    j = 3
    while j < len(argv):
        opt = argv[j].lower()
        if opt == b"idx":
            getidx = True
        elif opt == b"len":
            getlen = True
        elif opt == b"withmatchlen":
            withmatchlen = True
        elif opt == b"minmatchlen" and j + 1 < len(argv):
            minmatchlen = string2ll(argv[j + 1])
            if minmatchlen is None:
                c.add_reply_error(NOT_INTEGER)
                return
            minmatchlen = max(0, minmatchlen)
            j += 1
        else:
            c.add_reply_error(SYNTAX_ERR)
            return
        j += 1
    if getlen and getidx:
        c.add_reply_error("If you want both the length and indexes, please just use IDX.")
        return
    if (len(a) + 1) * (len(b) + 1) * 4 > server.config.proto_max_bulk_len:
        c.add_reply_error("Insufficient memory, transient memory for LCS exceeds "
                          "proto-max-bulk-len")
        return
    table = lcs_table(a, b)
    total = table[len(a)][len(b)]
    if getlen:
        c.add_reply(b":%d\r\n" % total)
        return
    result, ranges = lcs_walk(a, b, table, total, minmatchlen)
    if not getidx:
        c.add_reply(b"$%d\r\n%s\r\n" % (len(result), result))
        return
    out = [b"*%d\r\n" % len(ranges)]
    for (a0, a1), (b0, b1) in ranges:
        out.append(b"*%d\r\n*2\r\n:%d\r\n:%d\r\n*2\r\n:%d\r\n:%d\r\n" %
                   (2 + withmatchlen, a0, a1, b0, b1))
        if withmatchlen:
            out.append(b":%d\r\n" % (a1 - a0 + 1))
    c.add_reply_map_len(2)
    c.add_reply(b"$7\r\nmatches\r\n" + b"".join(out) + b"$3\r\nlen\r\n:%d\r\n" % total)


def lcs_walk(a, b, table, total, minmatchlen):
    """Walk the table back from the end as lcsCommand() does: the LCS
    string and the matching ranges ((a start, a end), (b start, b end))."""
    result = bytearray(total)
    ranges = []
    idx = total
    i, j = len(a), len(b)
    astart = len(a)     # len(a): no range open
    aend = bstart = bend = 0
    while i > 0 and j > 0:
        emit = False
        if a[i - 1] == b[j - 1]:
            result[idx - 1] = a[i - 1]
            if astart == len(a):
                astart = aend = i - 1
                bstart = bend = j - 1
            elif astart == i and bstart == j:
                astart -= 1
                bstart -= 1
            else:
                emit = True
            if astart == 0 or bstart == 0:
                emit = True
            idx -= 1
            i -= 1
            j -= 1
        else:
            if table[i - 1][j] > table[i][j - 1]:
                i -= 1
            else:
                j -= 1
            if astart != len(a):
                emit = True
        if emit:
            if minmatchlen == 0 or aend - astart + 1 >= minmatchlen:
                ranges.append(((astart, aend), (bstart, bend)))
            astart = len(a)
    return bytes(result), ranges


_W = CMD_WRITE
_R = CMD_READONLY
_F = CMD_FAST
_G = "string"

COMMANDS = [
    Command("get", get_command, 2, _R | _F, 1, 1, 1, group=_G,
            summary="Get the value of a key"),
    Command("set", set_command, -3, _W, 1, 1, 1, group=_G,
            summary="Set the string value of a key"),
    Command("setnx", setnx_command, 3, _W | _F, 1, 1, 1, group=_G,
            summary="Set the value of a key, only if the key does not exist"),
    Command("setex", setex_command, 4, _W, 1, 1, 1, group=_G,
            summary="Set the value and expiration of a key"),
    Command("psetex", psetex_command, 4, _W, 1, 1, 1, group=_G,
            summary="Set the value and expiration in milliseconds of a key"),
    Command("getset", getset_command, 3, _W | _F, 1, 1, 1, group=_G,
            summary="Set the string value of a key and return its old value"),
    Command("getdel", getdel_command, 2, _W | _F, 1, 1, 1, group=_G,
            summary="Get the value of a key and delete the key"),
    Command("mget", mget_command, -2, _R | _F, 1, -1, 1, group=_G,
            summary="Get the values of all the given keys"),
    Command("mset", mset_command, -3, _W, 1, -1, 2, group=_G,
            summary="Set multiple keys to multiple values"),
    Command("msetnx", msetnx_command, -3, _W, 1, -1, 2, group=_G,
            summary="Set multiple keys to multiple values, only if none of the keys exist"),
    Command("incr", incr_command, 2, _W | _F, 1, 1, 1, group=_G,
            summary="Increment the integer value of a key by one"),
    Command("decr", decr_command, 2, _W | _F, 1, 1, 1, group=_G,
            summary="Decrement the integer value of a key by one"),
    Command("incrby", incrby_command, 3, _W | _F, 1, 1, 1, group=_G,
            summary="Increment the integer value of a key by the given amount"),
    Command("decrby", decrby_command, 3, _W | _F, 1, 1, 1, group=_G,
            summary="Decrement the integer value of a key by the given number"),
    Command("incrbyfloat", incrbyfloat_command, 3, _W | _F, 1, 1, 1, group=_G,
            summary="Increment the float value of a key by the given amount"),
    Command("append", append_command, 3, _W | _F, 1, 1, 1, group=_G,
            summary="Append a value to a key"),
    Command("strlen", strlen_command, 2, _R | _F, 1, 1, 1, group=_G,
            summary="Get the length of the value stored in a key"),
    Command("getex", getex_command, -2, _W | _F, 1, 1, 1, group=_G,
            summary="Get the value of a key and optionally set its expiration"),
    Command("getrange", getrange_command, 4, _R, 1, 1, 1, group=_G,
            summary="Get a substring of the string stored at a key"),
    Command("substr", getrange_command, 4, _R, 1, 1, 1, group=_G,
            summary="Get a substring of the string stored at a key"),
    Command("setrange", setrange_command, 4, _W, 1, 1, 1, group=_G,
            summary="Overwrite part of a string at key starting at the specified offset"),
    Command("lcs", lcs_command, -3, _R, 1, 2, 1, group=_G,
            summary="Find longest common substring"),
]
