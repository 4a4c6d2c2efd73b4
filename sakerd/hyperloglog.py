"""HyperLogLog: PFADD PFCOUNT PFMERGE PFDEBUG PFSELFTEST (Redis's hyperloglog.c).

An HLL is an ordinary string value with Redis's exact layout, so that GET
of it gives redis-server's bytes and a value copied between the two works:

    "HYLL" | encoding (0 dense, 1 sparse) | 3 zero bytes | cardinality
    cache (8 bytes, little endian; the top bit set = stale) | registers

16384 registers of 6 bits. Dense: the registers packed little-endian
(register i is bits 6i..6i+5 of the block read as one little-endian
integer), 12288 bytes. Sparse: run-length opcodes ZERO (00xxxxxx, 1-64
zero registers), XZERO (01xxxxxx yyyyyyyy, 1-16384 zeros), VAL
(1vvvvvxx: 1-4 registers of value 1-32). A new HLL is sparse; it turns
dense when a register would exceed 32 or the string would grow past
`hll-sparse-max-bytes`. The sparse bytes depend on the order of the
updates (runs are split and merged in place), so hllSparseSet() is ported
step by step rather than re-encoded from the registers.

Elements are hashed with MurmurHash64A (seed 0xadc83b19) exactly as Redis;
the cardinality is Otmar Ertl's estimator (hllTau/hllSigma) in doubles as
in C, rounded as llroundl() does. The dense block is unpacked to one byte
per register with bytes.translate() on every third byte rather than per
register in Python.
"""

import math
import random
import re
import struct
from collections import Counter

from .db import WRONGTYPE_ERR, signal_modified_key
from .notify import notify_keyspace_event, NOTIFY_STRING
from .server_h import Command, server, CMD_ADMIN, CMD_FAST, CMD_READONLY, CMD_WRITE

HLL_P = 14
HLL_Q = 64 - HLL_P
HLL_REGISTERS = 1 << HLL_P
HLL_P_MASK = HLL_REGISTERS - 1
HLL_BITS = 6
HLL_REGISTER_MAX = (1 << HLL_BITS) - 1
HLL_HDR_SIZE = 16
HLL_DENSE_SIZE = HLL_HDR_SIZE + (HLL_REGISTERS * HLL_BITS + 7) // 8
HLL_DENSE = 0
HLL_SPARSE = 1
HLL_MAX_ENCODING = 1
HLL_SPARSE_VAL_MAX_VALUE = 32
HLL_SPARSE_VAL_MAX_LEN = 4
HLL_SPARSE_ZERO_MAX_LEN = 64
HLL_SPARSE_XZERO_MAX_LEN = 16384
HLL_ALPHA_INF = 0.721347520444481703680

INVALID_HLL_ERR = "-INVALIDOBJ Corrupted HLL object detected"
NOT_HLL_ERR = "-WRONGTYPE Key is not a valid HyperLogLog string value."

U64 = (1 << 64) - 1
MURMUR_M = 0xc6a4a7935bd1e995
MURMUR_SEED = 0xadc83b19

# A new HLL: sparse, one XZERO opcode covering all 16384 registers.
EMPTY_SPARSE = b"HYLL\x01\x00\x00\x00" + bytes(8) + b"\x7f\xff"


# ---- hashing -------------------------------------------------------------------------------

def murmurhash64a(data, seed=MURMUR_SEED):
    """MurmurHash64A as Redis computes it on a little-endian machine."""
    n = len(data)
    h = (seed ^ (n * MURMUR_M)) & U64
    nblocks = n >> 3
    if nblocks:
        for k in struct.unpack_from("<%dQ" % nblocks, data):
            k = (k * MURMUR_M) & U64
            k ^= k >> 47
            h ^= (k * MURMUR_M) & U64
            h = (h * MURMUR_M) & U64
    if n & 7:
        h ^= int.from_bytes(data[nblocks << 3:], "little")
        h = (h * MURMUR_M) & U64
    h ^= h >> 47
    h = (h * MURMUR_M) & U64
    return h ^ (h >> 47)


def pat_len(ele):
    """hllPatLen(): (register index, length of the 0...01 run + 1)."""
    h = murmurhash64a(ele)
    index = h & HLL_P_MASK
    h = (h >> HLL_P) | (1 << HLL_Q)     # the run ends by bit Q at the latest
    return index, (h & -h).bit_length()


# ---- dense registers ----------------------------------------------------------------------

_AND63 = bytes(b & 63 for b in range(256))
_SHR2 = bytes(b >> 2 for b in range(256))
_SHR4 = bytes(b >> 4 for b in range(256))
_SHR6 = bytes(b >> 6 for b in range(256))
_LOW2_SHL4 = bytes((b & 3) << 4 for b in range(256))
_LOW4_SHL2 = bytes((b & 15) << 2 for b in range(256))
_SHL2 = bytes((b << 2) & 0xFF for b in range(256))
_SHL4 = bytes((b << 4) & 0xFF for b in range(256))
_SHL6 = bytes((b << 6) & 0xFF for b in range(256))


def _or(a, b):
    """Bytewise OR of two equal-length byte strings (disjoint bits here)."""
    return (int.from_bytes(a, "big") | int.from_bytes(b, "big")).to_bytes(len(a), "big")


def unpack_dense(block):
    """The 12288-byte dense block as 16384 bytes, one register each."""
    b0, b1, b2 = block[0::3], block[1::3], block[2::3]
    regs = bytearray(HLL_REGISTERS)
    regs[0::4] = b0.translate(_AND63)
    regs[1::4] = _or(b0.translate(_SHR6), b1.translate(_LOW4_SHL2))
    regs[2::4] = _or(b1.translate(_SHR4), b2.translate(_LOW2_SHL4))
    regs[3::4] = b2.translate(_SHR2)
    return regs


def pack_dense(regs):
    """unpack_dense()'s inverse: 16384 register bytes (each < 64) packed."""
    r0, r1, r2, r3 = bytes(regs[0::4]), bytes(regs[1::4]), bytes(regs[2::4]), bytes(regs[3::4])
    block = bytearray(HLL_DENSE_SIZE - HLL_HDR_SIZE)
    block[0::3] = _or(r0, r1.translate(_SHL6))
    block[1::3] = _or(r1.translate(_SHR2), r2.translate(_SHL4))
    block[2::3] = _or(r2.translate(_SHR4), r3.translate(_SHL2))
    return block


def dense_get(buf, index):
    """HLL_DENSE_GET_REGISTER on a whole HLL value (header included)."""
    bit = index * HLL_BITS
    byte = HLL_HDR_SIZE + (bit >> 3)
    fb = bit & 7
    if fb <= 8 - HLL_BITS:
        return (buf[byte] >> fb) & HLL_REGISTER_MAX
    return ((buf[byte] >> fb) | (buf[byte + 1] << (8 - fb))) & HLL_REGISTER_MAX


def dense_set(buf, index, count):
    """hllDenseSet(): raise register index to count; 1 if it changed."""
    bit = index * HLL_BITS
    byte = HLL_HDR_SIZE + (bit >> 3)
    fb = bit & 7
    if fb <= 8 - HLL_BITS:
        old = (buf[byte] >> fb) & HLL_REGISTER_MAX
        if count <= old:
            return 0
        buf[byte] = (buf[byte] & ~(HLL_REGISTER_MAX << fb)) | (count << fb)
        return 1
    old = ((buf[byte] >> fb) | (buf[byte + 1] << (8 - fb))) & HLL_REGISTER_MAX
    if count <= old:
        return 0
    buf[byte] = (buf[byte] & ~(HLL_REGISTER_MAX << fb) & 0xFF) | ((count << fb) & 0xFF)
    buf[byte + 1] = (buf[byte + 1] & ~(HLL_REGISTER_MAX >> (8 - fb))) | (count >> (8 - fb))
    return 1


# ---- sparse opcodes --------------------------------------------------------------------------

def _opcode(buf, p, end):
    """(registers spanned, value, opcode length) of the opcode at p. Past the
    end C reads the string's NUL terminator: so do we (a truncated XZERO)."""
    b = buf[p]
    if b & 0x80:
        return (b & 3) + 1, ((b >> 2) & 0x1F) + 1, 1
    if b & 0x40:
        low = buf[p + 1] if p + 1 < end else 0
        return (((b & 0x3F) << 8) | low) + 1, 0, 2
    return (b & 0x3F) + 1, 0, 1


def _val(value, length):
    return (((value - 1) << 2) | (length - 1)) | 0x80


def _zeros(length):
    if length > HLL_SPARSE_ZERO_MAX_LEN:
        return bytes((((length - 1) >> 8) | 0x40, (length - 1) & 0xFF))
    return bytes((length - 1,))


def sparse_registers(buf):
    """The registers of a sparse HLL as 16384 bytes, or None if corrupt.

    hllSparseToDense()'s and hllMerge()'s walk as redis-server 7.0.15
    (Debian's, with the CVE-2025-32023 fix) does it: a VAL run reaching past
    register 16383 makes the value corrupt, even when the runs before it
    covered exactly 16384 registers (7.0.15's source stops there and
    accepts it)."""
    regs = bytearray(HLL_REGISTERS)
    idx = 0
    p = HLL_HDR_SIZE
    end = len(buf)
    while p < end:
        span, value, oplen = _opcode(buf, p, end)
        if value:
            if span + idx > HLL_REGISTERS:
                return None
            regs[idx:idx + span] = bytes((value,)) * span
        idx += span
        p += oplen
    return regs if idx == HLL_REGISTERS else None


def sparse_to_dense(buf):
    """hllSparseToDense(): the dense bytearray (header and cache kept), the
    value itself if dense already, None if the sparse data is corrupt."""
    if buf[4] == HLL_DENSE:
        return buf
    regs = sparse_registers(buf)
    if regs is None:
        return None
    out = bytearray(buf[:HLL_HDR_SIZE])
    out[4] = HLL_DENSE
    out += pack_dense(regs)
    return out


# The sparse opcodes as runs of one-byte opcodes (ZERO, VAL), each ended by
# an XZERO (two bytes; one when truncated at the end, its second byte then
# read as C reads the NUL terminator). Walking runs instead of opcodes keeps
# the per-opcode work in C: a run's spans are one translate() and sum().
_RUN = re.compile(rb"([\x00-\x3f\x80-\xff]*)([\x40-\x7f][\x00-\xff]?)?", re.DOTALL)
_SPAN1 = bytes(b + 1 if b < 0x40 else (b & 3) + 1 if b & 0x80 else 0 for b in range(256))
_ZERO_SPAN = bytes(b + 1 if b < 0x40 else 0 for b in range(256))


def _xzero_span(buf, p, end):
    return (((buf[p] & 0x3F) << 8) | (buf[p + 1] if p + 1 < end else 0)) + 1


def _sparse_runs(buf):
    """(one-byte opcodes run, its start, XZERO position or -1) over buf."""
    p = HLL_HDR_SIZE
    end = len(buf)
    while p < end:
        m = _RUN.match(buf, p)
        yield m.group(1), p, m.start(2)
        p = m.end()


def locate_opcode(buf, index):
    """hllSparseSet()'s step 1: (p, first, span, value, oplen, prev) of the
    opcode covering register index (first: its first register; prev: the
    opcode before, -1 if none), or None if the opcodes end before index.
    (_sparse_runs() inlined: this is PFADD's hot loop.)"""
    end = len(buf)
    first = 0
    prev = -1
    p = HLL_HDR_SIZE
    match = _RUN.match
    while p < end:
        m = match(buf, p)
        run = m.group(1)
        if run:
            spans = run.translate(_SPAN1)
            total = sum(spans)
            if index < first + total:
                # The opcode: whole 64-opcode chunks skipped by their sums.
                k = 0
                while True:
                    chunk = sum(spans[k:k + 64])
                    if index < first + chunk:
                        break
                    first += chunk
                    k += 64
                while index >= first + spans[k]:
                    first += spans[k]
                    k += 1
                op = p + k
                if op > p:
                    prev = op - 1
                b = buf[op]
                value = ((b >> 2) & 0x1F) + 1 if b & 0x80 else 0
                return op, first, spans[k], value, 1, prev
            first += total
            prev = p + len(run) - 1
        xpos = m.start(2)
        if xpos >= 0:
            span = (((buf[xpos] & 0x3F) << 8) | (buf[xpos + 1] if xpos + 1 < end else 0)) + 1
            if index < first + span:
                return xpos, first, span, 0, 2, prev
            first += span
            prev = xpos
        p = m.end()
    return None


def sparse_set(buf, index, count):
    """hllSparseSet(): (1 changed / 0 not / -1 corrupt, value): the value is
    buf edited in place, or a new dense one after a promotion."""
    if count > HLL_SPARSE_VAL_MAX_VALUE:
        return _promote(buf, index, count)
    found = locate_opcode(buf, index)
    if found is None:
        return -1, buf
    p, first, span, value, oplen, prev = found
    end = len(buf)
    nxt = p + oplen
    if nxt >= end:
        nxt = -1
    runlen = span
    # Step 2: the trivial updates, else the split of the run.
    if value:
        if value >= count:
            return 0, buf
        if runlen == 1:
            buf[p] = _val(count, 1)
            return _merge_adjacent(buf, prev), buf
    elif oplen == 1 and runlen == 1:
        buf[p] = _val(count, 1)
        return _merge_adjacent(buf, prev), buf
    last = first + span - 1
    seq = bytearray()
    if not value:
        if index != first:
            seq += _zeros(index - first)
        seq.append(_val(count, 1))
        if index != last:
            seq += _zeros(last - index)
    else:
        if index != first:
            seq.append(_val(value, index - first))
        seq.append(_val(count, 1))
        if index != last:
            seq.append(_val(value, last - index))
    # Step 3: the new sequence in place of the opcode.
    deltalen = len(seq) - oplen
    if deltalen > 0 and end + deltalen > server.config.hll_sparse_max_bytes:
        return _promote(buf, index, count)
    if nxt >= 0:
        buf[p:nxt] = seq
    else:
        # Last opcode: C copies seq at p and sets the length to end+deltalen
        # (shorter than p+len(seq) only for a truncated trailing XZERO).
        buf[p:] = seq
        del buf[end + deltalen:]
    return _merge_adjacent(buf, prev), buf


def _merge_adjacent(buf, prev):
    """Step 4: merge adjacent VAL opcodes of equal value, scanning up to 5
    opcodes from the one before the change; then invalidate the cache."""
    p = prev if prev >= 0 else HLL_HDR_SIZE
    end = len(buf)
    scanlen = 5
    while p < end and scanlen:
        scanlen -= 1
        b = buf[p]
        if not b & 0x80:
            p += 2 if b & 0x40 else 1
            continue
        if p + 1 < end and buf[p + 1] & 0x80:
            b2 = buf[p + 1]
            if (b >> 2) & 0x1F == (b2 >> 2) & 0x1F:
                length = (b & 3) + (b2 & 3) + 2
                if length <= HLL_SPARSE_VAL_MAX_LEN:
                    buf[p + 1] = (b & 0x7C) | (length - 1) | 0x80
                    del buf[p]
                    end -= 1
                    continue
        p += 1
    buf[15] |= 0x80
    return 1


def _promote(buf, index, count):
    dense = sparse_to_dense(buf)
    if dense is None:
        return -1, buf
    dense_set(dense, index, count)
    return 1, dense


def hll_add(buf, ele):
    """hllAdd(): (1 if a register changed / 0 / -1 corrupt, value)."""
    index, count = pat_len(ele)
    if buf[4] == HLL_DENSE:
        return dense_set(buf, index, count), buf
    if buf[4] == HLL_SPARSE:
        return sparse_set(buf, index, count)
    return -1, buf


# ---- counting ------------------------------------------------------------------------------------

def hll_sigma(x):
    if x == 1.0:
        return math.inf
    y = 1.0
    z = x
    while True:
        x *= x
        z_prime = z
        z += x * y
        y += y
        if z_prime == z:
            return z


def hll_tau(x):
    if x == 0.0 or x == 1.0:
        return 0.0
    y = 1.0
    z = 1 - x
    while True:
        x = math.sqrt(x)
        z_prime = z
        y *= 0.5
        z -= math.pow(1 - x, 2) * y
        if z_prime == z:
            return z / 3


def histogram_of(regs):
    """reghisto of 16384 register bytes: how many registers hold each value
    (counted only for the few values present)."""
    histo = [0] * 64
    for v in set(regs):
        histo[v] = regs.count(v)
    return histo


def sparse_histogram(buf):
    """hllSparseRegHisto(): (reghisto, valid)."""
    histo = [0] * 64
    end = len(buf)
    runs = []
    for run, _, xpos in _sparse_runs(buf):
        runs.append(run)
        if xpos >= 0:
            histo[0] += _xzero_span(buf, xpos, end)
    ops = b"".join(runs)
    histo[0] += sum(ops.translate(_ZERO_SPAN))
    for b, n in Counter(ops).items():
        if b & 0x80:
            histo[((b >> 2) & 0x1F) + 1] += n * ((b & 3) + 1)
    return histo, sum(histo) == HLL_REGISTERS


def estimate(histo):
    """hllCount()'s estimate from a register histogram."""
    m = float(HLL_REGISTERS)
    z = m * hll_tau((m - histo[HLL_Q + 1]) / m)
    for j in range(HLL_Q, 0, -1):
        z += histo[j]
        z *= 0.5
    z += m * hll_sigma(histo[0] / m)
    e = HLL_ALPHA_INF * m * m / z
    r = math.floor(e)                   # llroundl(): halves away from zero
    return r + 1 if e - r >= 0.5 else r


def hll_count(buf):
    """The cardinality of an HLL value; None if its sparse data is corrupt."""
    if buf[4] == HLL_DENSE:
        return estimate(histogram_of(unpack_dense(buf[HLL_HDR_SIZE:])))
    histo, valid = sparse_histogram(buf)
    # Judged before estimating: too few registers can make z zero.
    return estimate(histo) if valid else None


def registers_of(buf):
    """An HLL's 16384 registers, one byte each; None if corrupt."""
    if buf[4] == HLL_DENSE:
        return unpack_dense(buf[HLL_HDR_SIZE:])
    return sparse_registers(buf)


_LANE_HIGH = int.from_bytes(b"\x80" * HLL_REGISTERS, "little")


def registers_max(a, b):
    """The bytewise maximum of two 16384-byte register arrays (values < 128),
    computed on them as two big integers, one 8-bit lane per register: in
    (a | 0x80) - b no lane borrows, and a lane keeps its top bit exactly
    where a >= b; that bit, spread over its lane, selects a or b."""
    x = int.from_bytes(a, "little")
    y = int.from_bytes(b, "little")
    mask = (((x | _LANE_HIGH) - y) & _LANE_HIGH) >> 7
    mask *= 0xFF
    return ((x & mask) | (y & ~mask)).to_bytes(HLL_REGISTERS, "little")


# ---- the commands ------------------------------------------------------------------

def hll_value_or_reply(c, v):
    """isHLLObjectOrReply(): True if v is a valid HLL string."""
    if v.__class__ is not bytes:
        c.add_reply_error(WRONGTYPE_ERR)
        return False
    if len(v) < HLL_HDR_SIZE or v[:4] != b"HYLL" or v[4] > HLL_MAX_ENCODING or \
            (v[4] == HLL_DENSE and len(v) != HLL_DENSE_SIZE):
        c.add_reply_error(NOT_HLL_ERR)
        return False
    return True


def merge_sources(c, keys):
    """hllMerge() of the HLLs at keys: the register maxima (missing keys
    count as empty), and whether one of them is dense; None after an error
    reply."""
    maxregs = bytes(HLL_REGISTERS)
    any_dense = False
    for key in keys:
        v = c.db.lookup_read(key)
        if v is None:
            continue
        if not hll_value_or_reply(c, v):
            return None
        any_dense = any_dense or v[4] == HLL_DENSE
        regs = registers_of(v)
        if regs is None:
            c.add_reply_error(INVALID_HLL_ERR)
            return None
        maxregs = registers_max(maxregs, regs)
    return maxregs, any_dense


def pfadd_command(c):
    db = c.db
    key = c.argv[1]
    v = db.lookup_write(key)
    updated = 0
    if v is None:
        v = EMPTY_SPARSE
        db.add(key, v)
        updated = 1
    elif not hll_value_or_reply(c, v):
        return
    buf = bytearray(v)
    for ele in c.argv[2:]:
        ret, buf = hll_add(buf, ele)
        if ret == 1:
            updated += 1
        elif ret == -1:
            # Redis edits the value in place: what was added stays.
            db.dict[key] = bytes(buf)
            c.add_reply_error(INVALID_HLL_ERR)
            return
    if updated:
        buf[15] |= 0x80
        db.dict[key] = bytes(buf)
        signal_modified_key(c, db, key)
        notify_keyspace_event(NOTIFY_STRING, b"pfadd", key, db.id)
        c.add_reply(b":1\r\n")
    else:
        c.add_reply(b":0\r\n")


def pfcount_command(c):
    db = c.db
    argv = c.argv
    if len(argv) > 2:
        merged = merge_sources(c, argv[1:])
        if merged is not None:
            c.add_reply_long_long(estimate(histogram_of(merged[0])))
        return
    key = argv[1]
    v = db.lookup_read(key)
    if v is None:
        c.add_reply(b":0\r\n")
        return
    if not hll_value_or_reply(c, v):
        return
    if not v[15] & 0x80:
        c.add_reply_long_long(int.from_bytes(v[8:16], "little"))
        return
    card = hll_count(v)
    if card is None:
        c.add_reply_error(INVALID_HLL_ERR)
        return
    # The cache is part of the string: storing it modifies the key.
    db.dict[key] = v[:8] + card.to_bytes(8, "little") + v[16:]
    signal_modified_key(c, db, key)
    c.add_reply_long_long(card)


def pfmerge_command(c):
    db = c.db
    argv = c.argv
    merged = merge_sources(c, argv[1:])
    if merged is None:
        return
    maxregs, use_dense = merged
    key = argv[1]
    v = db.lookup_write(key)
    if v is None:
        v = EMPTY_SPARSE
        db.add(key, v)
    buf = bytearray(v)
    if use_dense:
        buf = sparse_to_dense(buf)
        if buf is None:
            c.add_reply_error(INVALID_HLL_ERR)
            return
    if buf[4] == HLL_DENSE:
        # The target is one of the sources: its registers are the maxima
        # (what hllDenseSet() of each would leave), packed at once.
        buf[HLL_HDR_SIZE:] = pack_dense(maxregs)
    else:
        for j, count in enumerate(maxregs):
            if count:
                if buf[4] == HLL_DENSE:
                    dense_set(buf, j, count)
                else:
                    buf = sparse_set(buf, j, count)[1]
    buf[15] |= 0x80
    db.dict[key] = bytes(buf)
    signal_modified_key(c, db, key)
    # Redis publishes pfadd for PFMERGE too (a mass add of elements).
    notify_keyspace_event(NOTIFY_STRING, b"pfadd", key, db.id)
    c.add_reply(b"+OK\r\n")


def sparse_decode(buf):
    """PFDEBUG DECODE's text: z:len Z:len v:value,len."""
    out = []
    p = HLL_HDR_SIZE
    end = len(buf)
    while p < end:
        span, value, oplen = _opcode(buf, p, end)
        if value:
            out.append("v:%d,%d" % (value, span))
        else:
            out.append("%s:%d" % ("Z" if oplen == 2 else "z", span))
        p += oplen
    return " ".join(out).encode()


def pfdebug_command(c):
    db = c.db
    sub = c.argv[1]
    key = c.argv[2]
    v = db.lookup_write(key)
    if v is None:
        c.add_reply_error("The specified key does not exist")
        return
    if not hll_value_or_reply(c, v):
        return
    name = sub.lower()
    if name == b"getreg" or name == b"todense":
        converted = v[4] == HLL_SPARSE
        if converted:
            dense = sparse_to_dense(bytearray(v))
            if dense is None:
                c.add_reply_error(INVALID_HLL_ERR)
                return
            v = db.dict[key] = bytes(dense)
        if name == b"todense":
            c.add_reply(b":1\r\n" if converted else b":0\r\n")
            return
        regs = unpack_dense(v[HLL_HDR_SIZE:])
        c.add_reply(b"*%d\r\n" % HLL_REGISTERS + b"".join(_INT_REPLY[r] for r in regs))
    elif name == b"decode":
        if v[4] != HLL_SPARSE:
            c.add_reply_error("HLL encoding is not sparse")
            return
        c.add_reply_bulk(sparse_decode(v))
    elif name == b"encoding":
        c.add_reply(b"+sparse\r\n" if v[4] == HLL_SPARSE else b"+dense\r\n")
    else:
        c.add_reply_error("Unknown PFDEBUG subcommand '%s'"
                          % sub.decode("utf-8", "backslashreplace"))


_INT_REPLY = [b":%d\r\n" % n for n in range(64)]

# PFSELFTEST checks what Redis's does, on fewer rounds: Redis's 1000 rounds
# of random registers and 10 million additions (checkpoints 1, 10, ... 10**7)
# take minutes in Python, and the command runs in the event loop; here 20
# rounds and 10**4 additions, about half a second.
SELFTEST_REGISTER_CYCLES = 20
SELFTEST_MAX_ELEMENTS = 10000


def selftest():
    """None if the self test passes, else the TESTFAILED message."""
    buf = bytearray(HLL_DENSE_SIZE)
    for _ in range(SELFTEST_REGISTER_CYCLES):
        values = bytes(random.getrandbits(6) for _ in range(HLL_REGISTERS))
        buf[HLL_HDR_SIZE:] = pack_dense(values)
        regs = unpack_dense(buf[HLL_HDR_SIZE:])
        for i in range(HLL_REGISTERS):
            if regs[i] != values[i] or dense_get(buf, i) != values[i]:
                return "TESTFAILED Register %d should be %d but is %d" % (i, values[i], regs[i])
    dense = bytearray(HLL_DENSE_SIZE)
    dense[:5] = b"HYLL\x00"
    sparse = bytearray(EMPTY_SPARSE)
    relerr = 1.04 / math.sqrt(HLL_REGISTERS)
    checkpoint = 1
    seed = random.getrandbits(64)
    pack = struct.Struct("<Q").pack
    for j in range(1, SELFTEST_MAX_ELEMENTS + 1):
        ele = pack(j ^ seed)
        index, count = pat_len(ele)
        dense_set(dense, index, count)
        sparse = hll_add(sparse, ele)[1]
        if j != checkpoint:
            continue
        if j < server.config.hll_sparse_max_bytes / 2 and sparse[4] != HLL_SPARSE:
            return "TESTFAILED sparse encoding not used"
        card = hll_count(dense)
        if card != hll_count(sparse):
            return "TESTFAILED dense/sparse disagree"
        maxerr = 1 if j == 10 else math.ceil(relerr * 6 * checkpoint)
        if abs(checkpoint - card) > maxerr:
            return "TESTFAILED Too big error. card:%d abserr:%d" % (checkpoint,
                                                                    abs(checkpoint - card))
        checkpoint *= 10
    return None


def pfselftest_command(c):
    failure = selftest()
    if failure:
        c.add_reply_error(failure)
    else:
        c.add_reply(b"+OK\r\n")


_G = "hyperloglog"

COMMANDS = [
    Command("pfadd", pfadd_command, -2, CMD_WRITE | CMD_FAST, 1, 1, 1, group=_G,
            summary="Adds the specified elements to the specified HyperLogLog."),
    Command("pfcount", pfcount_command, -2, CMD_READONLY, 1, -1, 1, group=_G,
            summary="Return the approximated cardinality of the set(s) observed by the "
                    "HyperLogLog at key(s)."),
    Command("pfmerge", pfmerge_command, -2, CMD_WRITE, 1, -1, 1, group=_G,
            summary="Merge N different HyperLogLogs into a single one."),
    Command("pfdebug", pfdebug_command, 3, CMD_WRITE | CMD_ADMIN, 2, 2, 1, group=_G,
            summary="Internal commands for debugging HyperLogLog values"),
    Command("pfselftest", pfselftest_command, 1, CMD_ADMIN, 0, 0, 0, group=_G,
            summary="An internal command for testing HyperLogLog values"),
]
