"""The two fast paths of RequestReader.parse() agree (no daemon).

The compiled build parses canonical requests with resp.scan_canonical(), a
byte loop; the pure build with resp.take_canonical(), hiredis's Reader.
Whichever runs, a buffer must give the same requests, the same protocol
error and the same partial state: checked here on canonical streams cut
anywhere and on streams with bytes changed, inserted or removed at random,
in both builds (the property does not depend on which one is loaded).
"""

import pytest
from hypothesis import example, given, settings, strategies as st

from sakerd import resp
from sakerd.resp import RequestReader, encode_command, scan_canonical

SETTINGS = settings(max_examples=300, deadline=None)

arg = st.one_of(st.binary(max_size=20), st.sampled_from([b"", b"0", b"\r\n", b"*1\r\n", b"$"]))
requests = st.lists(st.lists(arg, min_size=1, max_size=6), min_size=1, max_size=5)
# An edit: (position as a fraction of the length, what to do, the byte).
edits = st.lists(st.tuples(st.floats(0, 1), st.sampled_from("rid"),
                           st.sampled_from(b"*$\r\n0123456789-+:x\x00")), max_size=3)


def apply(data, changes):
    for where, how, byte in changes:
        i = min(int(where * len(data)), max(len(data) - 1, 0))
        if how == "r" and data:
            data = data[:i] + bytes([byte]) + data[i + 1:]
        elif how == "i":
            data = data[:i] + bytes([byte]) + data[i:]
        elif data:
            data = data[:i] + data[i + 1:]
    return data


def parse_with(scanner, data, monkeypatch):
    """Everything parse() leaves behind, with one fast path or the other."""
    monkeypatch.setattr(resp, "CANONICAL_SCANNER", scanner)
    reader = RequestReader()
    got = []
    if reader.feed(data):
        got = reader.parse()
    return (got, reader.error, reader.pos, reader.buf, reader.argv, reader.multibulklen,
            reader.bulklen, reader.pending())


@SETTINGS
@given(reqs=requests, changes=edits)
@example(reqs=[[b"GET", b"k"]], changes=[(0.0, "r", ord("*"))])
@example(reqs=[[b"SET", b"k", b"v"]], changes=[(0.55, "d", 0)])
@example(reqs=[[b"PING"]] * 3, changes=[(0.3, "r", ord("0"))])
def test_scanner_and_hiredis_leave_the_same_state(reqs, changes, monkeypatch_session):
    data = apply(b"".join(encode_command(*r) for r in reqs), changes)
    assert parse_with(True, data, monkeypatch_session) == \
        parse_with(False, data, monkeypatch_session)


@SETTINGS
@given(requests, st.integers(0, 400))
def test_scanner_takes_whole_requests_only(reqs, cut):
    data = b"".join(encode_command(*r) for r in reqs)
    cut = min(cut, len(data))
    out = []
    pos = scan_canonical(data[:cut], 0, out)
    # What it took is a prefix of the requests, ending where the next starts.
    assert out == [list(r) for r in reqs[:len(out)]]
    assert pos == len(b"".join(encode_command(*r) for r in reqs[:len(out)]))


def test_scanner_leaves_what_is_not_canonical_to_the_python_parser():
    ok = encode_command(b"GET", b"k")
    for tail in (b"*0\r\n", b"*01\r\n$1\r\na\r\n", b"*1\r\n$01\r\na\r\n", b"*-1\r\n",
                 b"*1\r\n+a\r\n", b"*1\r\n$1\r\nab\r\n", b"*%d\r\n" % (resp.SCAN_MAX_ARGS + 1),
                 b"PING\r\n", b"*1\r\n$1\r\na\n\n"):
        out = []
        assert scan_canonical(ok + tail, 0, out) == len(ok), tail
        assert out == [[b"GET", b"k"]]


@pytest.fixture(scope="module")
def monkeypatch_session():
    """One MonkeyPatch for the whole module (hypothesis runs a test many
    times; a function-scoped fixture would be shared anyway)."""
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()
