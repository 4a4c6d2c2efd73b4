"""SPEC §9.3: a subscriber that also sends commands gets every reply and
every message as whole RESP units, in order -- including while its socket
is full and messages keep being published.

Every byte the subscriber receives goes through a strict RESP2 parser:
only arrays of bulk strings, exact lengths, CRLF where CRLF must be.
"""

import socket
import threading
import time

MESSAGES = 200_000
BATCH = 1000
PAUSES = (20_000, 90_000, 150_000)     # stop reading here until the server queues


class StrictParseError(AssertionError):
    pass


def parse_units(data):
    """Parse a whole byte string of RESP2 arrays of bulk strings, strictly."""
    units = []
    pos = 0
    end = len(data)
    find = data.find
    while pos < end:
        if data[pos] != 42:  # '*'
            raise StrictParseError("expected '*' at %d: %r" % (pos, data[pos:pos + 40]))
        nl = find(b"\r\n", pos)
        n = int(data[pos + 1:nl])
        if not 1 <= n <= 3 or data[pos + 1:nl] != b"%d" % n:
            raise StrictParseError("bad array header at %d" % pos)
        pos = nl + 2
        items = []
        for _ in range(n):
            if data[pos] != 36:  # '$'
                raise StrictParseError("expected '$' at %d: %r" % (pos, data[pos:pos + 40]))
            nl = find(b"\r\n", pos)
            size = int(data[pos + 1:nl])
            if size < 0 or data[pos + 1:nl] != b"%d" % size:
                raise StrictParseError("bad bulk header at %d" % pos)
            start = nl + 2
            stop = start + size
            if data[stop:stop + 2] != b"\r\n":
                raise StrictParseError("bulk not followed by CRLF at %d" % stop)
            items.append(data[start:stop])
            pos = stop + 2
        units.append(items)
    return units


def client_omem(port, name):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"CLIENT LIST\r\n")
        data = b""
        while not data.endswith(b"\n\r\n") or not data.startswith(b"$"):
            data += s.recv(65536)
    for line in data.decode().split("\n"):
        if " name=%s " % name in line:
            return int(line.split(" omem=")[1].split()[0])
    raise AssertionError("no client named %s" % name)


def test_subscriber_pinging_during_200k_publishes_gets_whole_units_in_order(daemon):
    port = daemon.port
    sub = socket.create_connection(("127.0.0.1", port), timeout=30)
    sub.sendall(b"CLIENT SETNAME sub\r\nSUBSCRIBE c\r\n")
    expect_head = b"+OK\r\n*3\r\n$9\r\nsubscribe\r\n$1\r\nc\r\n:1\r\n"
    head = b""
    while len(head) < len(expect_head):
        head += sub.recv(len(expect_head) - len(head))
    assert head == expect_head

    received = []
    final = b"*2\r\n$4\r\npong\r\n$3\r\nend\r\n"
    done = threading.Event()
    failure = []

    def read_everything():
        # Read all bytes; at each pause point stop until the server holds
        # queued output for us (our socket is full), so publishes and
        # PINGs land on a full socket.
        try:
            total = 0
            pauses = list(PAUSES)
            while True:
                chunk = sub.recv(65536)
                if not chunk:
                    raise AssertionError("subscriber connection closed")
                received.append(chunk)
                total += len(chunk)
                if pauses and total >= pauses[0] * 30:
                    pauses.pop(0)
                    deadline = time.monotonic() + 20
                    while client_omem(port, "sub") == 0:
                        assert time.monotonic() < deadline, "socket never filled"
                        time.sleep(0.005)
                if chunk.endswith(final) or (len(received) > 1 and
                                             (received[-2] + chunk).endswith(final)):
                    return
        except BaseException as e:
            failure.append(e)
        finally:
            done.set()

    reader = threading.Thread(target=read_everything)
    reader.start()
    pub = socket.create_connection(("127.0.0.1", port), timeout=30)
    pings = 0
    for start in range(0, MESSAGES, BATCH):
        pub.sendall(b"".join(b"*3\r\n$7\r\nPUBLISH\r\n$1\r\nc\r\n$%d\r\n%d\r\n" % (len(b"%d" % i), i)
                             for i in range(start, start + BATCH)))
        # The subscriber pipelines PINGs between the messages.
        sub.sendall(b"PING p%d\r\nPING p%d\r\n" % (pings, pings + 1))
        pings += 2
        want = b":1\r\n" * BATCH
        got = b""
        while len(got) < len(want):
            got += pub.recv(len(want) - len(got))
        assert got == want
    sub.sendall(b"PING end\r\n")
    assert done.wait(120), "subscriber did not receive everything"
    reader.join()
    assert not failure, failure
    units = parse_units(b"".join(received))
    messages = [u for u in units if u[0] == b"message"]
    pongs = [u for u in units if u[0] == b"pong"]
    assert len(messages) + len(pongs) == len(units)
    assert messages == [[b"message", b"c", b"%d" % i] for i in range(MESSAGES)]
    assert pongs == [[b"pong", b"p%d" % i] for i in range(pings)] + [[b"pong", b"end"]]
    sub.close()
    pub.close()


def test_strict_parser_rejects_broken_units():
    for broken in (b"*3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$2\r\n1\r\n",   # short bulk
                   b"*2\r\n$4\r\npong\r\n$1\r\nab\r\n",                 # long bulk
                   b"*3\r\n$7\r\nmess*3\r\n$7\r\nmessage\r\n",         # interleaved
                   b"$4\r\npong\r\n"):                                   # not an array
        try:
            parse_units(broken)
        except (StrictParseError, ValueError, IndexError):
            continue
        raise AssertionError("accepted %r" % broken)
