"""Bit operations on strings: SETBIT GETBIT BITCOUNT BITPOS BITOP BITFIELD
BITFIELD_RO (Redis's bitops.c).

A bitmap is an ordinary string value (`bytes` in Db.dict, see t_string.py):
bit 0 is the most significant bit of the first byte. Writes that reach past
the end grow the string with zero bytes, as sdsgrowzero() does, and keep
the key's TTL (Redis edits the value object in place); since `bytes` is
immutable a write stores a new value, which costs a copy of the string.

Counting and searching never loop per byte in Python: BITCOUNT is
int.from_bytes(...).bit_count(), BITPOS strips the runs of 0x00 / 0xff
bytes with bytes.lstrip(), BITOP combines whole strings as integers.

BITFIELD does its arithmetic on Python integers but reproduces C's: the
overflow checks of checkSignedBitfieldOverflow() compute their limits in
wrapping 64-bit arithmetic (so does the `#` offset multiplication), which
decides corner cases such as SET of a very negative value into a small
signed field the way redis-server does.
"""

from .db import WRONGTYPE_ERR, signal_modified_key
from .notify import notify_keyspace_event, NOTIFY_GENERIC, NOTIFY_STRING
from .resp import string2ll
from .server_h import Command, server, CMD_FAST, CMD_READONLY, CMD_WRITE

SYNTAX_ERR = "syntax error"
NOT_INTEGER = "value is not an integer or out of range"
BIT_OFFSET_ERR = "bit offset is not an integer or out of range"
BIT_VALUE_ERR = "bit is not an integer or out of range"
BITFIELD_TYPE_ERR = ("Invalid bitfield type. Use something like i16 u8. "
                     "Note that u64 is not supported but i64 is.")

U64 = (1 << 64) - 1

OVERFLOW_WRAP = 0
OVERFLOW_SAT = 1
OVERFLOW_FAIL = 2

OP_GET = 0
OP_SET = 1
OP_INCRBY = 2


def _int64(v):
    """v reduced to a C int64_t, as a wrapping conversion does."""
    v &= U64
    return v - (1 << 64) if v >> 63 else v


# ---- argument parsing ------------------------------------------------------------

def get_bit_offset(c, arg, hash=False, bits=0):
    """getBitOffsetFromArgument(): the bit offset, or None (error replied).

    With `hash`, "#N" means N times `bits` (multiplied in int64, as in C).
    The offset's byte must lie below proto-max-bulk-len."""
    usehash = hash and bits > 0 and arg[:1] == b"#"
    off = string2ll(arg[1:] if usehash else arg)
    if off is not None:
        if usehash:
            off = _int64(off * bits)
        if off >= 0 and (off >> 3) < server.config.proto_max_bulk_len:
            return off
    c.add_reply_error(BIT_OFFSET_ERR)
    return None


def get_bitfield_type(c, arg):
    """getBitfieldTypeFromArgument(): (signed, bits), or None (error replied)."""
    kind = arg[:1]
    if kind == b"i" or kind == b"u":
        # strlen() stops at a NUL byte, as C reads the argument.
        bits = string2ll(arg[1:].split(b"\0", 1)[0])
        signed = kind == b"i"
        if bits is not None and 1 <= bits <= (64 if signed else 63):
            return signed, bits
    c.add_reply_error(BITFIELD_TYPE_ERR)
    return None


def lookup_string_for_bit(c, maxbit):
    """lookupStringForBitCommand(): (value grown to hold maxbit, dirty), or
    None after WRONGTYPE. A missing key is created (dbAdd: the `new` event
    fires now, before the command's own). dirty: created or grown."""
    db = c.db
    key = c.argv[1]
    size = (maxbit >> 3) + 1
    v = db.lookup_write(key)
    if v is None:
        v = bytes(size)
        db.add(key, v)
        return v, True
    if v.__class__ is not bytes:
        c.add_reply_error(WRONGTYPE_ERR)
        return None
    if len(v) < size:
        return v + bytes(size - len(v)), True
    return v, False


def lookup_string_for_read(c, key):
    """The string at key for a reading bit command: bytes, None if missing,
    False after WRONGTYPE."""
    v = c.db.lookup_read(key)
    if v is not None and v.__class__ is not bytes:
        c.add_reply_error(WRONGTYPE_ERR)
        return False
    return v


# ---- SETBIT / GETBIT ---------------------------------------------------------------

def setbit_command(c):
    argv = c.argv
    offset = get_bit_offset(c, argv[2])
    if offset is None:
        return
    on = string2ll(argv[3])
    if on is None or on & ~1:
        c.add_reply_error(BIT_VALUE_ERR)
        return
    found = lookup_string_for_bit(c, offset)
    if found is None:
        return
    v, dirty = found
    byte = offset >> 3
    mask = 1 << (7 - (offset & 7))
    old = v[byte]
    bitval = 1 if old & mask else 0
    if dirty or bitval != on:
        new = (old | mask) if on else (old & ~mask)
        db = c.db
        key = argv[1]
        db.dict[key] = v[:byte] + bytes((new,)) + v[byte + 1:]
        signal_modified_key(c, db, key)
        notify_keyspace_event(NOTIFY_STRING, b"setbit", key, db.id)
    c.add_reply(b":1\r\n" if bitval else b":0\r\n")


def getbit_command(c):
    offset = get_bit_offset(c, c.argv[2])
    if offset is None:
        return
    v = lookup_string_for_read(c, c.argv[1])
    if v is False:
        return
    byte = offset >> 3
    if v is not None and byte < len(v) and v[byte] & (1 << (7 - (offset & 7))):
        c.add_reply(b":1\r\n")
    else:
        c.add_reply(b":0\r\n")


# ---- BITCOUNT / BITPOS ---------------------------------------------------------------

def parse_range_unit(c, arg):
    """BYTE or BIT (any case): True for BIT, None after a syntax error."""
    unit = arg.lower()
    if unit == b"bit":
        return True
    if unit == b"byte":
        return False
    c.add_reply_error(SYNTAX_ERR)
    return None


def byte_range(start, end, strlen, isbit):
    """(start, end, first_mask, last_mask): a BYTE or BIT range of a string
    of strlen bytes, negative indexes counted from the end, clamped, then
    turned into bytes; the masks are the bits of the first and the last
    byte outside a BIT range (0 for BYTE)."""
    totlen = strlen << 3 if isbit else strlen
    if start < 0:
        start += totlen
    if end < 0:
        end += totlen
    if start < 0:
        start = 0
    if end < 0:
        end = 0
    if end >= totlen:
        end = totlen - 1
    if not isbit or start > end:
        return start, end, 0, 0
    first_mask = ~((1 << (8 - (start & 7))) - 1) & 0xFF
    last_mask = (1 << (7 - (end & 7))) - 1
    return start >> 3, end >> 3, first_mask, last_mask


def bitcount_command(c):
    argv = c.argv
    v = lookup_string_for_read(c, argv[1])
    if v is False:
        return
    if v is None:
        c.add_reply(b":0\r\n")
        return
    argc = len(argv)
    first_mask = last_mask = 0
    if argc == 4 or argc == 5:
        start = string2ll(argv[2])
        end = string2ll(argv[3]) if start is not None else None
        if end is None:
            c.add_reply_error(NOT_INTEGER)
            return
        if start < 0 and end < 0 and start > end:
            c.add_reply(b":0\r\n")
            return
        isbit = False
        if argc == 5:
            isbit = parse_range_unit(c, argv[4])
            if isbit is None:
                return
        start, end, first_mask, last_mask = byte_range(start, end, len(v), isbit)
    elif argc == 2:
        start, end = 0, len(v) - 1
    else:
        c.add_reply_error(SYNTAX_ERR)
        return
    if start > end:
        c.add_reply(b":0\r\n")
        return
    count = int.from_bytes(v[start:end + 1], "big").bit_count()
    # The bits of the edge bytes outside the range were counted: remove them.
    if first_mask:
        count -= (v[start] & first_mask).bit_count()
    if last_mask:
        count -= (v[end] & last_mask).bit_count()
    c.add_reply_long_long(count)


_SKIP_BLOCK = 4096
_SKIP = {0: b"\xff" * _SKIP_BLOCK, 1: bytes(_SKIP_BLOCK)}


def first_bit(s, bit):
    """redisBitpos(): the position of the first `bit` in s, the string
    considered padded with zero bits on the right: looking for 0 in all
    ones answers len*8; looking for 1 in all zeros answers -1.

    Whole blocks of 0xff (0x00) bytes are skipped by startswith() (a
    memcmp, no copy), the rest of the last block by lstrip()."""
    skip = _SKIP[bit]
    n = len(s)
    i = 0
    while i + _SKIP_BLOCK <= n and s.startswith(skip, i):
        i += _SKIP_BLOCK
    block = s[i:i + _SKIP_BLOCK]
    rest = block.lstrip(skip[:1])
    if not rest:
        return n << 3 if bit == 0 else -1
    i += len(block) - len(rest)
    b = rest[0] if bit else rest[0] ^ 0xFF
    return (i << 3) + 8 - b.bit_length()


def bitpos_command(c):
    argv = c.argv
    bit = string2ll(argv[2])
    if bit is None:
        c.add_reply_error(NOT_INTEGER)
        return
    if bit != 0 and bit != 1:
        c.add_reply_error("The bit argument must be 1 or 0.")
        return
    v = lookup_string_for_read(c, argv[1])
    if v is False:
        return
    if v is None:
        c.add_reply(b":-1\r\n" if bit else b":0\r\n")
        return
    argc = len(argv)
    end_given = False
    first_mask = last_mask = 0
    if 4 <= argc <= 6:
        start = string2ll(argv[3])
        if start is None:
            c.add_reply_error(NOT_INTEGER)
            return
        isbit = False
        if argc == 6:
            isbit = parse_range_unit(c, argv[5])
            if isbit is None:
                return
        if argc >= 5:
            end = string2ll(argv[4])
            if end is None:
                c.add_reply_error(NOT_INTEGER)
                return
            end_given = True
        else:
            end = -1
        start, end, first_mask, last_mask = byte_range(start, end, len(v), isbit)
    elif argc == 3:
        start, end = 0, len(v) - 1
    else:
        c.add_reply_error(SYNTAX_ERR)
        return
    if start > end:
        c.add_reply(b":-1\r\n")
        return
    c.add_reply_long_long(bitpos_in_range(v, bit, start, end, first_mask, last_mask,
                                          end_given))


def _masked_byte(b, bit, mask):
    """b with the bits of mask made unable to match `bit`."""
    return b & ~mask & 0xFF if bit else b | mask


def bitpos_in_range(v, bit, start, end, first_mask, last_mask, end_given):
    """bitposCommand()'s search of bytes start..end, the edge bytes' bits
    outside a BIT range masked; -1 when not found."""
    nbytes = end - start + 1
    pos = None
    if first_mask:
        b = _masked_byte(v[start], bit, first_mask)
        if last_mask and nbytes == 1:
            b = _masked_byte(b, bit, last_mask)
        pos = first_bit(bytes((b,)), bit)
        if nbytes == 1 or (pos != -1 and pos != 8):
            pos = _bitpos_result(pos, bit, start, nbytes, end_given)
            return pos
        start += 1
        nbytes -= 1
    curbytes = nbytes - (1 if last_mask else 0)
    if curbytes > 0:
        pos = first_bit(v[start:start + curbytes], bit)
        if nbytes == curbytes or (pos != -1 and pos != curbytes << 3):
            return _bitpos_result(pos, bit, start, nbytes, end_given)
        start += curbytes
        nbytes -= curbytes
    pos = first_bit(bytes((_masked_byte(v[end], bit, last_mask),)), bit)
    return _bitpos_result(pos, bit, start, nbytes, end_given)


def _bitpos_result(pos, bit, start, nbytes, end_given):
    # With an explicit end, a 0 found only in the padding past the range is
    # no 0 of the range.
    if end_given and bit == 0 and pos == nbytes << 3:
        return -1
    return pos + (start << 3) if pos != -1 else -1


# ---- BITOP ---------------------------------------------------------------------------------

_BITOPS = {b"and": 0, b"or": 1, b"xor": 2, b"not": 3}


def bitop_command(c):
    argv = c.argv
    op = _BITOPS.get(argv[1].lower())
    if op is None:
        c.add_reply_error(SYNTAX_ERR)
        return
    if op == 3 and len(argv) != 4:
        c.add_reply_error("BITOP NOT must be called with a single source key.")
        return
    sources = []
    for key in argv[3:]:
        v = lookup_string_for_read(c, key)
        if v is False:
            return
        sources.append(v or b"")
    maxlen = max(len(v) for v in sources)
    db = c.db
    target = argv[2]
    if maxlen:
        # Shorter strings (and missing keys) are zero-padded to maxlen.
        ints = [int.from_bytes(v, "big") << ((maxlen - len(v)) << 3) for v in sources]
        res = ints[0]
        if op == 0:
            for n in ints[1:]:
                res &= n
        elif op == 1:
            for n in ints[1:]:
                res |= n
        elif op == 2:
            for n in ints[1:]:
                res ^= n
        else:
            res ^= (1 << (maxlen << 3)) - 1
        db.set_key(target, res.to_bytes(maxlen, "big"))
        notify_keyspace_event(NOTIFY_STRING, b"set", target, db.id)
    elif db.delete(target):
        # dbDelete(): no expiry check first, as in Redis.
        signal_modified_key(c, db, target)
        notify_keyspace_event(NOTIFY_GENERIC, b"del", target, db.id)
    c.add_reply_long_long(maxlen)


# ---- BITFIELD ---------------------------------------------------------------------------

def get_unsigned_field(v, offset, bits):
    """getUnsignedBitfield(): the bits at offset, v zero-padded past its end."""
    first = offset >> 3
    last = (offset + bits - 1) >> 3
    chunk = v[first:last + 1]
    n = int.from_bytes(chunk, "big") << ((last + 1 - first - len(chunk)) << 3)
    return (n >> ((8 - ((offset + bits) & 7)) & 7)) & ((1 << bits) - 1)


def get_signed_field(v, offset, bits):
    n = get_unsigned_field(v, offset, bits)
    return n - (1 << bits) if n >> (bits - 1) else n


def set_field(v, offset, bits, value):
    """setUnsignedBitfield(): v (long enough) with the low `bits` bits of
    value stored at offset; signed values go in as their two's complement."""
    first = offset >> 3
    last = (offset + bits - 1) >> 3
    shift = (8 - ((offset + bits) & 7)) & 7
    width = last + 1 - first
    mask = ((1 << bits) - 1) << shift
    n = int.from_bytes(v[first:last + 1], "big")
    n = (n & ~mask) | ((value << shift) & mask)
    return v[:first] + n.to_bytes(width, "big") + v[last + 1:]


def check_unsigned_overflow(value, incr, bits, owtype):
    """checkUnsignedBitfieldOverflow(): (overflow, limit): overflow 1 or -1
    (0: none), limit the value WRAP or SAT stores instead."""
    fmax = (1 << bits) - 1
    if value > fmax or (incr > 0 and incr > fmax - value):
        if owtype == OVERFLOW_WRAP:
            return 1, (value + incr) & fmax
        return 1, fmax
    if incr < 0 and incr < -value:
        if owtype == OVERFLOW_WRAP:
            return 1, (value + incr) & fmax
        return -1, 0
    return 0, None


def check_signed_overflow(value, incr, bits, owtype):
    """checkSignedBitfieldOverflow(), its limits computed in wrapping int64
    as C does (this decides e.g. SET of -2**63 into an i8 as an overflow
    upwards, so SAT stores the maximum: what redis-server answers)."""
    fmax = (1 << (bits - 1)) - 1
    fmin = -fmax - 1
    maxincr = _int64(fmax - value)
    minincr = _int64(fmin - value)
    if value > fmax or (bits != 64 and incr > maxincr) or \
            (value >= 0 and incr > 0 and incr > maxincr):
        if owtype == OVERFLOW_WRAP:
            return 1, _signed_wrap(value, incr, bits)
        return 1, fmax
    if value < fmin or (bits != 64 and incr < minincr) or \
            (value < 0 and incr < 0 and incr < minincr):
        if owtype == OVERFLOW_WRAP:
            return 1, _signed_wrap(value, incr, bits)
        return -1, fmin
    return 0, None


def _signed_wrap(value, incr, bits):
    s = (value + incr) & ((1 << bits) - 1)
    return s - (1 << bits) if s >> (bits - 1) else s


def parse_bitfield_ops(c):
    """The (opcode, offset, value, owtype, bits, signed) list of BITFIELD's
    arguments, or None after an error reply."""
    argv = c.argv
    argc = len(argv)
    ops = []
    owtype = OVERFLOW_WRAP
    j = 2
    while j < argc:
        remargs = argc - j - 1
        sub = argv[j].lower()
        if sub == b"get" and remargs >= 2:
            opcode = OP_GET
        elif sub == b"set" and remargs >= 3:
            opcode = OP_SET
        elif sub == b"incrby" and remargs >= 3:
            opcode = OP_INCRBY
        elif sub == b"overflow" and remargs >= 1:
            kind = argv[j + 1].lower()
            if kind == b"wrap":
                owtype = OVERFLOW_WRAP
            elif kind == b"sat":
                owtype = OVERFLOW_SAT
            elif kind == b"fail":
                owtype = OVERFLOW_FAIL
            else:
                c.add_reply_error("Invalid OVERFLOW type specified")
                return None
            j += 2
            continue
        else:
            c.add_reply_error(SYNTAX_ERR)
            return None
        ftype = get_bitfield_type(c, argv[j + 1])
        if ftype is None:
            return None
        signed, bits = ftype
        offset = get_bit_offset(c, argv[j + 2], True, bits)
        if offset is None:
            return None
        value = 0
        if opcode != OP_GET:
            value = string2ll(argv[j + 3])
            if value is None:
                c.add_reply_error(NOT_INTEGER)
                return None
        ops.append((opcode, offset, value, owtype, bits, signed))
        j += 3 if opcode == OP_GET else 4
    return ops


def bitfield_generic(c, readonly_command):
    ops = parse_bitfield_ops(c)
    if ops is None:
        return
    writes = [op for op in ops if op[0] != OP_GET]
    dirty = False
    if not writes:
        v = lookup_string_for_read(c, c.argv[1])
        if v is False:
            return
    else:
        if readonly_command:
            c.add_reply_error("BITFIELD_RO only supports the GET subcommand")
            return
        found = lookup_string_for_bit(c, max(op[1] + op[4] - 1 for op in writes))
        if found is None:
            return
        v, dirty = found
    out = [b"*%d\r\n" % len(ops)]
    changes = 0
    for opcode, offset, value, owtype, bits, signed in ops:
        if opcode == OP_GET:
            if v is None:
                out.append(b":0\r\n")
            elif signed:
                out.append(b":%d\r\n" % get_signed_field(v, offset, bits))
            else:
                out.append(b":%d\r\n" % get_unsigned_field(v, offset, bits))
            continue
        if signed:
            old = get_signed_field(v, offset, bits)
            if opcode == OP_INCRBY:
                overflow, limit = check_signed_overflow(old, value, bits, owtype)
                new = limit if overflow else old + value
                ret = new
            else:
                overflow, limit = check_signed_overflow(value, 0, bits, owtype)
                new = limit if overflow else value
                ret = old
        else:
            old = get_unsigned_field(v, offset, bits)
            if opcode == OP_INCRBY:
                overflow, limit = check_unsigned_overflow(old, value, bits, owtype)
                new = limit if overflow else old + value
                ret = new
            else:
                # The value is taken as a uint64_t, as C converts it.
                uvalue = value & U64
                overflow, limit = check_unsigned_overflow(uvalue, 0, bits, owtype)
                new = limit if overflow else uvalue
                ret = old
        if overflow and owtype == OVERFLOW_FAIL:
            out.append(b"$-1\r\n" if c.resp == 2 else b"_\r\n")
            continue
        out.append(b":%d\r\n" % ret)
        v = set_field(v, offset, bits, new)
        if dirty or old != new:
            changes += 1
    if writes:
        c.db.dict[c.argv[1]] = v
    if changes:
        db = c.db
        key = c.argv[1]
        signal_modified_key(c, db, key)
        notify_keyspace_event(NOTIFY_STRING, b"setbit", key, db.id)
    c.add_reply(b"".join(out))


def bitfield_command(c):
    bitfield_generic(c, False)


def bitfield_ro_command(c):
    bitfield_generic(c, True)


_W = CMD_WRITE
_R = CMD_READONLY
_F = CMD_FAST
_G = "bitmap"

COMMANDS = [
    Command("setbit", setbit_command, 4, _W, 1, 1, 1, group=_G,
            summary="Sets or clears the bit at offset in the string value stored at key"),
    Command("getbit", getbit_command, 3, _R | _F, 1, 1, 1, group=_G,
            summary="Returns the bit value at offset in the string value stored at key"),
    Command("bitcount", bitcount_command, -2, _R, 1, 1, 1, group=_G,
            summary="Count set bits in a string"),
    Command("bitpos", bitpos_command, -3, _R, 1, 1, 1, group=_G,
            summary="Find first bit set or clear in a string"),
    Command("bitop", bitop_command, -4, _W, 2, -1, 1, group=_G,
            summary="Perform bitwise operations between strings"),
    Command("bitfield", bitfield_command, -2, _W, 1, 1, 1, group=_G,
            summary="Perform arbitrary bitfield integer operations on strings"),
    Command("bitfield_ro", bitfield_ro_command, -2, _R | _F, 1, 1, 1, group=_G,
            summary="Perform arbitrary bitfield integer operations on strings. "
                    "Read-only variant of BITFIELD"),
]
