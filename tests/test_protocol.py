"""Wire behaviour of the request parser, byte for byte (Redis's protocol.tcl cases)."""

import pytest


def test_empty_query_is_ignored(daemon):
    c = daemon.raw()
    c.send(b"\r\n")
    c.send(b"PING\r\n")
    assert c.read_line() == b"+PONG"


def test_negative_multibulk_length_is_an_empty_request(daemon):
    c = daemon.raw()
    c.send(b"*-10\r\nPING\r\n")
    assert c.read_line() == b"+PONG"


PROTOCOL_ERRORS = [
    (b"*3000000000\r\n", b"-ERR Protocol error: invalid multibulk length\r\n"),
    (b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\nfooz\r\n", b"-ERR Protocol error: expected '$', got 'f'\r\n"),
    (b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$-10\r\n", b"-ERR Protocol error: invalid bulk length\r\n"),
    (b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$2000000000\r\n", b"-ERR Protocol error: invalid bulk length\r\n"),
    (b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$blabla\r\n", b"-ERR Protocol error: invalid bulk length\r\n"),
    (b"*1\r\nfoo\r\n", b"-ERR Protocol error: expected '$', got 'f'\r\n"),
    (b'set """test-key""" test-value\r\n', b"-ERR Protocol error: unbalanced quotes in request\r\n"),
    (b"x" * (64 * 1024 + 10), b"-ERR Protocol error: too big inline request\r\n"),
    (b"*" + b"1" * (64 * 1024 + 10), b"-ERR Protocol error: too big mbulk count string\r\n"),
    (b"*1\r\n$" + b"1" * (64 * 1024 + 10), b"-ERR Protocol error: too big bulk count string\r\n"),
]


@pytest.mark.parametrize("request_bytes, error", PROTOCOL_ERRORS,
                         ids=[e[1][25:-2].decode().replace(" ", "-") + str(i)
                              for i, e in enumerate(PROTOCOL_ERRORS)])
def test_protocol_error_replies_exact_text_and_closes(daemon, request_bytes, error):
    c = daemon.raw()
    c.send(request_bytes)
    # A command pipelined behind the error must never run: a line-less
    # oversized request cannot be followed by one, the others can.
    if len(request_bytes) < 1000:
        c.send(b"\r\nSET ran yes\r\n")
    assert c.read_all() == error
    assert daemon.client().get("ran") is None


def test_commands_behind_quit_never_run(daemon):
    c = daemon.raw()
    c.send(b"SET k v\r\nQUIT\r\nSET k other\r\nPING\r\n")
    assert c.read_all() == b"+OK\r\n+OK\r\n"
    assert daemon.client().get("k") == b"v"


def test_unknown_command_error_text(daemon):
    c = daemon.raw()
    c.send(b"FOO a b\r\n")
    assert c.read_line() == b"-ERR unknown command 'FOO', with args beginning with: 'a' 'b' "


def test_wrong_arity_error_text(daemon):
    c = daemon.raw()
    c.send(b"*4\r\n$4\r\nping\r\n$1\r\nx\r\n$1\r\ny\r\n$1\r\nz\r\n")
    assert c.read_line() == b"-ERR wrong number of arguments for 'ping' command"


def test_pipelined_multibulk_in_one_byte_chunks(daemon):
    c = daemon.raw()
    data = b"*2\r\n$4\r\nECHO\r\n$5\r\nhello\r\n" * 3 + b"PING\r\n"
    for i in range(len(data)):
        c.send(data[i:i + 1])
    assert [c.read_reply() for _ in range(4)] == [b"hello", b"hello", b"hello", b"PONG"]


@pytest.mark.parametrize("seq", [b"\x00", b"*\x00", b"$\x00"], ids=["nul", "star-nul", "dollar-nul"])
def test_desync_garbage_gets_protocol_error_and_close(daemon, seq):
    # Redis's "Protocol desync regression test": garbage with no line end
    # must end in a protocol error and a closed connection, not a stall.
    c = daemon.raw()
    c.send(seq)
    try:
        for _ in range(40):
            c.send(b"payload" * 1024)
    except OSError:
        pass
    assert c.read_all().startswith(b"-ERR Protocol error: too big ")
