"""Properties of sakerd.resp, driven by hypothesis (no daemon).

- a valid command stream parses to the same commands however it is chunked;
- inline splitting follows Redis's sdssplitargs(): checked against an
  independent reference written from the C source's rules, and by a
  quoting round-trip;
- what the encoders write, a strict RESP2 decoder reads back;
- string2ll accepts exactly what Redis's string2ll accepts.
"""

import re

from hypothesis import example, given, settings, strategies as st

from sakerd.resp import (LLONG_MAX, LLONG_MIN, RequestReader, encode_command, encode_value,
                         repr_arg, split_args, string2ll)

SETTINGS = settings(max_examples=150, deadline=None)

# ---- chunked parsing ---------------------------------------------------------

arg = st.one_of(
    st.binary(max_size=40),
    # Past PROTO_MBULK_BIG_ARG (32 KiB): exercises the chunk-collecting path.
    st.sampled_from([b"B" * 40000, b"\r\n" * 20000]),
)
multibulk_cmd = st.lists(arg, min_size=1, max_size=5)
inline_token = st.text(alphabet="abcXYZ019_-:", min_size=1, max_size=8).map(str.encode)
inline_cmd = st.lists(inline_token, min_size=1, max_size=4)
command = st.one_of(multibulk_cmd.map(lambda a: ("m", a)), inline_cmd.map(lambda a: ("i", a)))


def encode_stream(cmds):
    out = []
    for kind, argv in cmds:
        if kind == "m":
            out.append(encode_command(*argv))
        else:
            out.append(b" ".join(argv) + b"\r\n")
    return b"".join(out)


def parse_in_chunks(data, cuts):
    reader = RequestReader()
    got = []
    prev = 0
    for cut in sorted(set(cuts)) + [len(data)]:
        if cut <= prev:
            continue
        if reader.feed(data[prev:cut]):
            got.extend(reader.parse())
        prev = cut
    assert reader.error is None
    return got, reader


@SETTINGS
@given(st.lists(command, min_size=1, max_size=6), st.lists(st.integers(0, 200000), max_size=30))
def test_any_chunking_parses_to_the_same_commands(cmds, cuts):
    data = encode_stream(cmds)
    got, reader = parse_in_chunks(data, [c % (len(data) + 1) for c in cuts])
    assert got == [list(argv) for _, argv in cmds]
    assert reader.pending() == 0


@SETTINGS
@given(st.lists(command, min_size=1, max_size=4), st.integers(1, 7))
def test_byte_at_a_time_equals_all_at_once(cmds, step):
    data = encode_stream(cmds)
    if len(data) > 5000:
        data = encode_stream([c for c in cmds if len(encode_stream([c])) < 1000]) or b"PING\r\n"
    whole, _ = parse_in_chunks(data, [])
    pieces, _ = parse_in_chunks(data, range(0, len(data), step))
    assert pieces == whole


@SETTINGS
@given(st.lists(multibulk_cmd, min_size=1, max_size=3), st.integers(0, 60))
def test_a_partial_request_is_kept_until_complete(cmds, missing):
    data = b"".join(encode_command(*a) for a in cmds)
    missing = min(missing, len(data) - 1) + 1
    reader = RequestReader()
    reader.feed(data[:-missing])
    first = reader.parse()
    # Only whole requests come out; the rest waits.
    assert first == [list(a) for a in cmds][:len(first)]
    assert len(first) < len(cmds)
    if reader.feed(data[-missing:]):
        first.extend(reader.parse())
    assert first == [list(a) for a in cmds]


# ---- inline splitting ------------------------------------------------------------

C_ISSPACE = b" \t\n\v\f\r"
HEX = b"0123456789abcdefABCDEF"


def sdssplitargs_reference(line):
    """sdssplitargs() restated from the C source's rules, written
    independently of sakerd.resp.split_args. None means "goto err"."""
    line = line.split(b"\0", 1)[0]   # C strings end at NUL
    args = []
    i, n = 0, len(line)

    def at(k):
        return line[k:k + 1]

    while True:
        while i < n and line[i] in C_ISSPACE:
            i += 1
        if i >= n:
            return args
        token = bytearray()
        state = "plain"
        while True:
            c = at(i)
            if state == "plain":
                if c in (b"", b" ", b"\n", b"\r", b"\t"):
                    i += 1
                    break
                if c == b'"':
                    state = "double"
                elif c == b"'":
                    state = "single"
                else:
                    token += c
                i += 1
            elif state == "double":
                if c == b"":
                    return None                    # unterminated quotes
                if c == b"\\" and at(i + 1) == b"x" and at(i + 2) != b"" and \
                        at(i + 2) in HEX and at(i + 3) != b"" and at(i + 3) in HEX:
                    token.append(int(line[i + 2:i + 4], 16))
                    i += 4
                elif c == b"\\" and at(i + 1) != b"":
                    esc = at(i + 1)
                    token += {b"n": b"\n", b"r": b"\r", b"t": b"\t", b"b": b"\b",
                              b"a": b"\a"}.get(esc, esc)
                    i += 2
                elif c == b'"':
                    if at(i + 1) != b"" and at(i + 1) not in C_ISSPACE:
                        return None                # closing quote glued to text
                    i += 2
                    break
                else:
                    token += c
                    i += 1
            else:  # single quotes
                if c == b"":
                    return None
                if c == b"\\" and at(i + 1) == b"'":
                    token += b"'"
                    i += 2
                elif c == b"'":
                    if at(i + 1) != b"" and at(i + 1) not in C_ISSPACE:
                        return None
                    i += 2
                    break
                else:
                    token += c
                    i += 1
        args.append(bytes(token))


tricky_line = st.lists(st.sampled_from(
    [b" ", b"\t", b"\n", b"\r", b"\v", b"\f", b"\0", b'"', b"'", b"\\", b"x", b"4", b"1",
     b"g", b"F", b"n", b"a", b"b", b"\xff", b"\x7f"]), max_size=24).map(b"".join)


@settings(max_examples=600, deadline=None)
@given(tricky_line)
@example(b'"\\x41\\x4a" \'it\\\'s\' plain')
@example(b'set """test-key""" test-value')
@example(b'"foo"bar')
@example(b"'unterminated")
@example(b'"\\x4"')
@example(b"a\vb \va")
@example(b"one\0two")
def test_split_args_matches_sdssplitargs(line):
    assert split_args(line) == sdssplitargs_reference(line)


def test_split_args_examples_from_redis():
    assert split_args(b'"\\x41\\x4a" \'it\\\'s\' plain') == [b"AJ", b"it's", b"plain"]
    assert split_args(b'  "a b"  c\td ') == [b"a b", b"c", b"d"]
    assert split_args(b'"a\\nb\\tc\\\\d\\"e"') == [b'a\nb\tc\\d"e']
    assert split_args(b'"foo"bar') is None
    assert split_args(b'"unterminated') is None
    assert split_args(b"") == []


def quote_double(arg):
    """Quote any bytes for an inline command, with sdssplitargs escapes."""
    out = bytearray(b'"')
    for ch in arg:
        if ch in b'"\\':
            out += b"\\" + bytes([ch])
        elif 32 <= ch < 127:
            out.append(ch)
        else:
            out += b"\\x%02x" % ch
    return bytes(out + b'"')


def quote_single(arg):
    # Inside single quotes only \' is an escape; a backslash before the
    # closing quote would be one, so such args are double-quoted instead.
    if arg.endswith(b"\\") or b"\0" in arg:
        return quote_double(arg)
    return b"'" + arg.replace(b"'", b"\\'") + b"'"


@SETTINGS
@given(st.lists(st.binary(max_size=20), max_size=6), st.sampled_from([quote_double, quote_single]),
       st.sampled_from([b" ", b"\t", b"  "]))
def test_quoting_round_trips_through_split_args(args, quote, sep):
    line = sep.join(quote(a) for a in args)
    assert split_args(line) == args


@SETTINGS
@given(st.binary(max_size=30))
def test_repr_arg_is_read_back_by_split_args(arg):
    # MONITOR's sdscatrepr quoting is valid inline syntax for the same bytes.
    assert split_args(repr_arg(arg).encode()) == [arg]


# ---- encoder / parser round trip ---------------------------------------------------

class Resp2Decoder:
    """A strict RESP2 decoder, written for the test."""

    def __init__(self, data):
        self.data = data
        self.pos = 0

    def line(self):
        end = self.data.index(b"\r\n", self.pos)
        s = self.data[self.pos:end]
        self.pos = end + 2
        return s

    def value(self):
        s = self.line()
        kind, rest = s[:1], s[1:]
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            if n == -1:
                return None
            v = self.data[self.pos:self.pos + n]
            assert self.data[self.pos + n:self.pos + n + 2] == b"\r\n"
            self.pos += n + 2
            return v
        if kind == b"*":
            return [self.value() for _ in range(int(rest))]
        raise AssertionError("unexpected %r" % s)


def plain(v):
    """What a RESP2 client reads back for a Python value."""
    if isinstance(v, str):
        return v.encode()
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, list):
        return [plain(x) for x in v]
    return v


values = st.recursive(
    st.one_of(st.none(), st.binary(max_size=20), st.text(max_size=10), st.booleans(),
              st.integers(LLONG_MIN, LLONG_MAX)),
    lambda children: st.lists(children, max_size=4), max_leaves=12)


@SETTINGS
@given(values)
def test_encode_value_round_trips(v):
    data = encode_value(v)
    dec = Resp2Decoder(data)
    assert dec.value() == plain(v)
    assert dec.pos == len(data)


@SETTINGS
@given(st.lists(st.one_of(st.binary(max_size=30), st.text(max_size=10),
                          st.integers(LLONG_MIN, LLONG_MAX)), min_size=1, max_size=8))
def test_encode_command_is_parsed_back(args):
    reader = RequestReader()
    reader.feed(encode_command(*args))
    expect = [a.encode() if isinstance(a, str) else b"%d" % a if isinstance(a, int) else a
              for a in args]
    assert reader.parse() == [expect]


# ---- string2ll -------------------------------------------------------------------

_STRICT = re.compile(rb"0|-?[1-9][0-9]*\Z")


def string2ll_reference(s):
    """Redis accepts "0", or an optional '-' then 1-9 then digits, in range."""
    if not _STRICT.fullmatch(s):
        return None
    v = int(s)
    return v if LLONG_MIN <= v <= LLONG_MAX else None


@settings(max_examples=500, deadline=None)
@given(st.one_of(
    st.lists(st.sampled_from(list(b"0123456789-+ .xe\t")), max_size=22).map(bytes),
    st.integers(LLONG_MIN - 10, LLONG_MAX + 10).map(lambda n: b"%d" % n),
    st.sampled_from([b"-0", b"+1", b"01", b"-", b"", b" 1", b"1 ", b"9223372036854775807",
                     b"9223372036854775808", b"-9223372036854775808", b"-9223372036854775809",
                     b"00", b"1e3", b"\xd9\xa1"])))
def test_string2ll_matches_redis_strictness(s):
    assert string2ll(s) == string2ll_reference(s)
