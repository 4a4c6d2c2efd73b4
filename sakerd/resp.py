"""RESP: the request parser and reply encoders. Pure functions, no sockets.

The parser is a port of processInlineBuffer/processMultibulkBuffer from
Redis's networking.c, with the same limits and the same error texts. It is
incremental like Redis's: a multibulk request that arrives in pieces keeps
the arguments already read, so a request with a million arguments, or a
500 MB argument arriving 16 KB at a time, is never rescanned from the start.
While a large bulk argument is incomplete, the reader only collects chunks
(``need`` says how many bytes must be present before parsing can progress)
and joins them once, when the argument is whole.

Like Redis, the parser does not verify the CRLF after a count or a bulk: it
skips two bytes.

Fast path (parse() is the hot path of the server): hiredis's C Reader splits
a buffer of multibulk requests several times faster than the Python loop,
but it accepts more than Redis does (RESP3 types, '+' items inside arrays,
nested arrays, '*-1') and words its errors its own way. So it is trusted
only for the leading requests it returns that are canonical arrays of bulk
strings, which take_canonical() checks by position: each request starts
with '*', each item with '$', and the next one starts exactly where the
canonical encoding of the one before ends. At the first request that fails
this (or is incomplete, or makes hiredis raise), the Python parser takes
over at that request's first byte and answers exactly as Redis would.
Unauthenticated clients always use the Python parser (their limits are
checked one request at a time). The compiled build replaces hiredis with
scan_canonical(), a byte loop that takes the same canonical requests and
costs less than hiredis's objects once it is C.
"""

import re

try:
    import cython
    COMPILED = cython.compiled   # the compiled build: True
except ImportError:              # pure Python, no Cython installed
    COMPILED = False

import hiredis

PROTO_INLINE_MAX_SIZE = 64 * 1024
PROTO_MBULK_BIG_ARG = 32 * 1024
INT_MAX = 2 ** 31 - 1
LLONG_MAX = 2 ** 63 - 1
LLONG_MIN = -2 ** 63

_SPACE = frozenset(b" \t\n\v\f\r")
_HEX = frozenset(b"0123456789abcdefABCDEF")
_ESCAPES = {ord("n"): 10, ord("r"): 13, ord("t"): 9, ord("b"): 8, ord("a"): 7}


class ProtocolError(Exception):
    pass


def string2ll(s):
    """Redis's strict string to long long: the integer, or None.

    No spaces, no '+', no leading zeros, no "-0", within 64-bit range.
    """
    n = len(s)
    if n == 0 or n > 20:
        return None
    if s.isdigit():
        if s[0] == 48 and n > 1:
            return None
        v = int(s)
        return v if v <= LLONG_MAX else None
    if s[0] == 45 and n > 1 and s[1] != 48 and s[1:].isdigit():
        v = int(s)
        return v if v >= LLONG_MIN else None
    return None


def split_args(line):
    """Split a line into arguments like Redis's sdssplitargs().

    Returns a list of bytes, or None for unbalanced quotes (or a closing
    quote not followed by a space). A NUL byte ends the line, as in C.
    """
    out = []
    n = len(line)
    i = 0
    while True:
        while i < n and line[i] in _SPACE:
            i += 1
        if i >= n or line[i] == 0:
            return out
        cur = bytearray()
        inq = insq = False
        while True:
            ch = line[i] if i < n else 0
            nxt = line[i + 1] if i + 1 < n else 0
            if inq:
                if ch == 92 and nxt == 120 and i + 3 < n and \
                        line[i + 2] in _HEX and line[i + 3] in _HEX:
                    cur.append(int(line[i + 2:i + 4], 16))
                    i += 3
                elif ch == 92 and nxt:
                    i += 1
                    cur.append(_ESCAPES.get(nxt, nxt))
                elif ch == 34:
                    # Closing quote must be followed by a space or nothing.
                    if nxt and nxt not in _SPACE:
                        return None
                    i += 1
                    break
                elif ch == 0:
                    return None  # unterminated quotes
                else:
                    cur.append(ch)
            elif insq:
                if ch == 92 and nxt == 39:
                    i += 1
                    cur.append(39)
                elif ch == 39:
                    if nxt and nxt not in _SPACE:
                        return None
                    i += 1
                    break
                elif ch == 0:
                    return None
                else:
                    cur.append(ch)
            else:
                if ch in (32, 10, 13, 9, 0):
                    break
                if ch == 34:
                    inq = True
                elif ch == 39:
                    insq = True
                else:
                    cur.append(ch)
            if ch:
                i += 1
            else:
                break
        out.append(bytes(cur))


def repr_arg(s):
    """Quote bytes like Redis's sdscatrepr (MONITOR, error messages)."""
    out = ['"']
    for ch in s:
        if ch == 92:
            out.append("\\\\")
        elif ch == 34:
            out.append('\\"')
        elif ch == 10:
            out.append("\\n")
        elif ch == 13:
            out.append("\\r")
        elif ch == 9:
            out.append("\\t")
        elif ch == 7:
            out.append("\\a")
        elif ch == 8:
            out.append("\\b")
        elif 32 <= ch < 127:
            out.append(chr(ch))
        else:
            out.append("\\x%02x" % ch)
    out.append('"')
    return "".join(out)


# One hiredis Reader serves every connection: the server is single threaded
# and take_canonical() leaves it empty, or replaces it when it is not.
_hiredis_reader = hiredis.Reader()
# hiredis allocates a list of the announced size as soon as it reads the
# header of an array, set, push or attribute ('*3000000000' asks for 24 GB,
# which freeing or a GC pass then walks): buffers that may announce 10000
# items or more anywhere are left to the Python parser. The search for '*'
# has a literal prefix, which the re module scans for quickly; the other
# three type bytes are rare in requests and only searched for when present.
_BIG_ARRAY = re.compile(rb"\*[0-9]{5}")
_BIG_AGGREGATE = re.compile(rb"[*~>|][0-9]{5}")


def _may_announce_big_aggregate(buf, pos):
    if len(buf) - pos < 128:
        # A request or two: one pass of the character class costs less
        # than three finds.
        return _BIG_AGGREGATE.search(buf, pos) is not None
    if _BIG_ARRAY.search(buf, pos) is not None:
        return True
    if buf.find(b"~", pos) == buf.find(b">", pos) == buf.find(b"|", pos) == -1:
        return False
    return _BIG_AGGREGATE.search(buf, pos) is not None


def take_canonical(buf, pos, out):
    """Append the canonical multibulk requests at buf[pos:] to out (hot path).

    pos is the first byte of a request. Returns the position after the last
    request taken: the first byte of one the Python parser must read, or
    len(buf).
    """
    global _hiredis_reader
    if _may_announce_big_aggregate(buf, pos):
        return pos
    reader = _hiredis_reader
    reader.feed(buf, pos)
    gets = reader.gets
    try:
        argv = gets()
        while argv is not False:
            if buf[pos] != 42:  # '*': hiredis read some other type here
                break
            n = len(argv)     # TypeError for None ('*-1')
            p = pos + (4 if n < 10 else 5 if n < 100 else len(b"*%d\r\n" % n))
            for a in argv:
                if buf[p] != 36:  # '$'
                    break
                n = len(a)    # TypeError for None ('$-1')
                # '$', the digits of n, CRLF, n bytes, CRLF.
                p += n + (6 if n < 10 else 7 if n < 100 else 8 if n < 1000 else
                          9 if n < 10000 else len(b"$%d\r\n\r\n" % n))
            else:
                if argv:      # '*0': an empty request, skipped as by Redis
                    out.append(argv)
                pos = p
                argv = gets()
                continue
            break
    except (hiredis.ProtocolError, TypeError, IndexError):
        pass
    if pos != len(buf):
        # hiredis holds unread bytes or half a reply: start afresh.
        _hiredis_reader = hiredis.Reader()
    return pos


SCAN_MAX_ARGS = 1024    # bigger requests are left to the Python parser


def scan_canonical(buf, pos, out):
    """take_canonical() as a byte loop: the compiled build's fast path.

    Compiled (resp.pxd types every index as a C integer and the buffer as
    a C pointer), this loop reads each byte once and builds each argument
    straight from the buffer, several times cheaper than the
    hiredis Reader's objects and callbacks; interpreted, it would be many
    times slower, so the pure build keeps hiredis (CANONICAL_SCANNER).

    It takes the leading requests that are whole canonical arrays of at
    most SCAN_MAX_ARGS bulk strings: '*', a count of 1 to SCAN_MAX_ARGS
    without a leading zero, CRLF, then per item '$', a length without a
    leading zero, CRLF, the bytes and CRLF. The caller has checked that no
    bulk can be over proto-max-bulk-len (the buffer is shorter). At the
    first request that is anything else, or incomplete, it returns that
    request's first byte for the Python parser.
    """
    end = len(buf)
    # Compiled, `data` is the buffer's unsigned char *: every index below
    # is checked against `end` before it is read, and data[i:j] is a bytes
    # object made straight from the bytes (no slice object).
    data = buf
    while pos < end:
        if data[pos] != 42:          # '*'
            return pos
        p = pos + 1
        n = 0
        while p < end:
            ch = data[p]
            if ch < 48 or ch > 57:  # not a digit
                break
            n = n * 10 + ch - 48
            if n > SCAN_MAX_ARGS or n == 0:
                return pos
            p += 1
        if p + 1 >= end or data[p] != 13 or data[p + 1] != 10 or n == 0:
            return pos
        p += 2
        argv = []
        while n:
            if p >= end or data[p] != 36:    # '$'
                return pos
            p += 1
            start = p
            size = 0
            while p < end:
                ch = data[p]
                if ch < 48 or ch > 57:
                    break
                if p - start == 18:     # more than the buffer can hold
                    return pos
                size = size * 10 + ch - 48
                p += 1
            if p == start or (data[start] == 48 and p - start > 1):
                return pos
            # CR LF, size bytes, CR LF: the last at p + size + 3.
            if p + size + 3 >= end or data[p] != 13 or data[p + 1] != 10:
                return pos
            p += 2
            if data[p + size] != 13 or data[p + size + 1] != 10:
                return pos
            argv.append(data[p:p + size])
            p += size + 2
            n -= 1
        out.append(argv)
        pos = p
    return pos


# The byte loop where it is compiled code, hiredis where it would be Python
# (a module global, so that tests can run either on either build).
CANONICAL_SCANNER = COMPILED


class RequestReader:
    """Incremental request parser for one connection.

    feed() adds bytes; parse() returns the complete requests (lists of
    bytes) found so far. A protocol error stops parsing and is left in
    ``error`` (the text after "-ERR "); the caller replies and closes.
    """

    __slots__ = ("buf", "pos", "chunks", "chunks_len", "need", "argv",
                 "argv_len_sum", "multibulklen", "bulklen", "error", "max_bulk_len")

    def __init__(self, max_bulk_len=512 * 1024 * 1024):
        self.reset()
        self.error = None
        self.max_bulk_len = max_bulk_len

    def feed(self, data):
        """Add data; return True when parse() may make progress."""
        if self.need:
            self.chunks.append(data)
            self.chunks_len += len(data)
            if len(self.buf) - self.pos + self.chunks_len < self.need:
                return False
            data = b"".join(self.chunks)
            self.chunks = []
            self.chunks_len = 0
            self.need = 0
        if self.pos >= len(self.buf):
            self.buf = data
        else:
            self.buf = self.buf[self.pos:] + data
        self.pos = 0
        return True

    def pending(self):
        """Bytes held: unparsed input plus arguments of a partial request."""
        return len(self.buf) - self.pos + self.chunks_len + self.argv_len_sum

    def reset(self):
        self.buf = b""
        self.pos = 0
        self.chunks = []
        self.chunks_len = 0
        self.need = 0
        self.argv = None
        self.argv_len_sum = 0
        self.multibulklen = 0
        self.bulklen = -1

    def parse(self, auth_required=False):
        """Parse every complete request in the buffer (hot path).

        With auth_required, return after one request: the limits for an
        unauthenticated client must be checked against the state that the
        previous request (maybe AUTH) left.
        """
        buf = self.buf
        pos = self.pos
        end = len(buf)
        out = []
        # hiredis gets one go per call, at the first request boundary: at
        # once, or after the Python loop has finished a request that came
        # in pieces (a pipeline larger than one read).
        fast = not auth_required and end <= self.max_bulk_len
        while pos < end and self.error is None:
            argv = self.argv
            if argv is None:
                if fast and buf[pos] == 42:
                    fast = False
                    pos = (scan_canonical(buf, pos, out) if CANONICAL_SCANNER else
                           take_canonical(buf, pos, out))
                    continue
                if buf[pos] != 42:  # not '*': an inline request
                    pos = self._parse_inline(buf, pos, end, out)
                    if pos < 0:
                        pos = -pos - 1
                        break
                    if auth_required and out:
                        break
                    continue
                cr = buf.find(b"\r", pos, pos + PROTO_INLINE_MAX_SIZE + 3)
                if cr == -1 or cr > end - 2:
                    if cr == -1 and end - pos > PROTO_INLINE_MAX_SIZE:
                        self.error = "Protocol error: too big mbulk count string"
                    break
                s = buf[pos + 1:cr]
                ll = int(s) if s.isdigit() and (s[0] != 48 or len(s) == 1) else string2ll(s)
                if ll is None or ll > INT_MAX:
                    if b"\0" in s:
                        # Redis finds the CR with strchr(), which stops at
                        # a NUL: for it this line has no end yet.
                        if end - pos > PROTO_INLINE_MAX_SIZE:
                            self.error = "Protocol error: too big mbulk count string"
                        break
                    self.error = "Protocol error: invalid multibulk length"
                    break
                if ll > 10 and auth_required:
                    self.error = "Protocol error: unauthenticated multibulk length"
                    break
                pos = cr + 2
                if ll <= 0:
                    continue
                argv = []
                mbl = ll
                bl = -1
            else:
                mbl = self.multibulklen
                bl = self.bulklen
            while mbl:
                if bl == -1:
                    cr = buf.find(b"\r", pos, pos + PROTO_INLINE_MAX_SIZE + 3)
                    if cr == -1 or cr > end - 2:
                        if cr == -1 and end - pos > PROTO_INLINE_MAX_SIZE:
                            self.error = "Protocol error: too big bulk count string"
                        break
                    s = buf[pos + 1:cr]
                    bl = int(s) if s.isdigit() and (s[0] != 48 or len(s) == 1) else None
                    if bl is None or buf[pos] != 36 or bl > self.max_bulk_len:
                        # The slow path: every error of a bulk count line.
                        bl = -1
                        if b"\0" in buf[pos:cr]:
                            # strchr() stops at the NUL, as above.
                            if end - pos > PROTO_INLINE_MAX_SIZE:
                                self.error = "Protocol error: too big bulk count string"
                            break
                        if buf[pos] != 36:  # '$'
                            self.error = "Protocol error: expected '$', got '%s'" % chr(buf[pos])
                            break
                        bl = string2ll(s)
                        if bl is None or bl < 0 or bl > self.max_bulk_len:
                            self.error = "Protocol error: invalid bulk length"
                            bl = -1
                            break
                    if bl > 16384 and auth_required:
                        self.error = "Protocol error: unauthenticated bulk length"
                        bl = -1
                        break
                    pos = cr + 2
                if end - pos < bl + 2:
                    # Not enough data (+2 == trailing \r\n). For a big
                    # argument, let feed() collect chunks without rejoining.
                    if bl >= PROTO_MBULK_BIG_ARG:
                        self.need = bl + 2
                    break
                argv.append(buf[pos:pos + bl])
                self.argv_len_sum += bl
                pos += bl + 2
                bl = -1
                mbl -= 1
            if mbl:
                self.argv = argv
                self.multibulklen = mbl
                self.bulklen = bl
                break
            out.append(argv)
            self.argv = None
            self.argv_len_sum = 0
            self.multibulklen = 0
            self.bulklen = -1
            if auth_required:
                break
        if pos >= end:
            self.buf = b""
            self.pos = 0
        else:
            self.pos = pos
        return out

    def _parse_inline(self, buf, pos, end, out):
        """Parse one inline request at pos; return the new position.

        Returns -(pos + 1) when the request is incomplete or bad.
        """
        nl = buf.find(b"\n", pos)
        if nl != -1 and buf.find(b"\0", pos, nl) != -1:
            # Redis finds the newline with strchr(), which stops at a NUL:
            # for it the line has no end yet (until the size limit).
            nl = -1
        if nl == -1:
            if end - pos > PROTO_INLINE_MAX_SIZE:
                self.error = "Protocol error: too big inline request"
            return -(pos + 1)
        stop = nl - 1 if nl > pos and buf[nl - 1] == 13 else nl
        args = split_args(buf[pos:stop])
        if args is None:
            self.error = "Protocol error: unbalanced quotes in request"
            return -(pos + 1)
        if args:
            out.append(args)
        return nl + 1


# ---- reply encoding --------------------------------------------------

def encode_bulk(b):
    return b"$%d\r\n%s\r\n" % (len(b), b)


def encode_bulk_array(items):
    """An array of bulk strings: a request's encoding, which hiredis's C
    pack_command() builds about twice as fast as Python. TypeError if an
    item is None (a nil has no place in a request)."""
    return hiredis.pack_command(tuple(items))


def encode_integer(n):
    return b":%d\r\n" % n


def encode_error(msg):
    """An error reply; msg has no leading '-'. Newlines would break RESP."""
    if isinstance(msg, str):
        msg = msg.encode()
    msg = msg.replace(b"\r", b" ").replace(b"\n", b" ")
    if not msg.startswith(b"-"):
        msg = b"-" + msg
    return msg + b"\r\n"


def encode_status(s):
    if isinstance(s, str):
        s = s.encode()
    return b"+" + s.replace(b"\r", b" ").replace(b"\n", b" ") + b"\r\n"


def encode_array_len(n):
    return b"*%d\r\n" % n


NULL_BULK = b"$-1\r\n"
NULL_ARRAY = b"*-1\r\n"
RESP3_NULL = b"_\r\n"

# Redis's shared objects (createSharedObjects): the replies of small
# integers and the headers of short bulks and arrays are built once, so
# the hot replies are appended without formatting.
OBJ_SHARED_INTEGERS = 10000
OBJ_SHARED_BULKHDR_LEN = 32
SHARED_INTEGERS = [b":%d\r\n" % n for n in range(OBJ_SHARED_INTEGERS)]
SHARED_BULKHDR = [b"$%d\r\n" % n for n in range(OBJ_SHARED_BULKHDR_LEN)]
SHARED_MBULKHDR = [b"*%d\r\n" % n for n in range(OBJ_SHARED_BULKHDR_LEN)]


def encode_value(v):
    """Encode a plain Python value: bytes/str bulk, int, None nil, list array."""
    if v is None:
        return NULL_BULK
    if isinstance(v, bytes):
        return encode_bulk(v)
    if isinstance(v, str):
        return encode_bulk(v.encode())
    if isinstance(v, bool):
        return encode_integer(int(v))
    if isinstance(v, int):
        return encode_integer(v)
    if isinstance(v, (list, tuple)):
        return b"*%d\r\n" % len(v) + b"".join(encode_value(x) for x in v)
    raise TypeError("cannot encode %r" % type(v))


def encode_command(*args):
    """A request as a client sends it: a multibulk of bulk strings."""
    parts = [b"*%d\r\n" % len(args)]
    for a in args:
        if isinstance(a, str):
            a = a.encode()
        elif isinstance(a, int):
            a = b"%d" % a
        parts.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(parts)
