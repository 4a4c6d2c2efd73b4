"""Differential test: sakerd and redis-server 7 answer the same bytes to the same input.

hypothesis builds request streams from fragments that matter to the parser
(counts, lengths, quotes, escapes, CR/LF, NUL, spaces) around commands whose
answers do not depend on state (PING, ECHO, unknown commands). Each stream
is sent on a fresh connection to both servers, the write side is then shut
down, and everything up to the server's close is compared byte for byte:
replies, protocol error texts, and where the connection is dropped.
"""

import os
import shutil
import socket
import subprocess
import time

import pytest
from hypothesis import HealthCheck, example, given, settings, strategies as st

from helpers import free_port, require_tool


@pytest.fixture(scope="module")
def redis_port(tmp_path_factory):
    server = require_tool("redis-server")
    port = free_port()
    d = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen([server, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", str(d)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)
    yield port
    proc.terminate()
    proc.wait(10)


@pytest.fixture(scope="module")
def saker_port(tmp_path_factory):
    from helpers import Daemon
    d = Daemon(tmp_path_factory.mktemp("saker"))
    yield d.port
    d.stop()


def exchange(port, data):
    """Send data, close our side, return all the server sent until it closed."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        out = b""
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                return out + b"<RESET>"
            if not chunk:
                return out
            out += chunk
    finally:
        s.close()


FRAGMENTS = [
    b"PING", b"ECHO", b"echo", b"NOSUCH", b" ", b"  ", b"\t", b"\r\n", b"\n", b"\r", b"\0",
    b'"', b"'", b"\\", b"\\x41", b"\\x4", b"\\n", b"a", b"b c", b"*", b"*1", b"*2", b"*-1", b"*0",
    b"*3000000000", b"$", b"$1", b"$2", b"$4", b"$-1", b"$0", b"$x", b"0", b"01", b"-",
    b"*2\r\n$4\r\nECHO\r\n$3\r\nabc\r\n", b"*1\r\n$4\r\nPING\r\n", b"PING\r\n",
    b'ECHO "x y"\r\n', b"ECHO 'q'\r\n", b"QUIT\r\n", b"\xff", b"$10\r\n", b"*10\r\n",
    b"*1\r\n$0\r\n\r\n", b"+", b":", b"-1",
]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.binary(max_size=3)),
                min_size=1, max_size=12).map(b"".join))
@example(b'ECHO "a"b\r\nPING\r\n')
@example(b"*1\r\n$4\r\nPINGXX\r\nPING\r\n")
@example(b"*2\r\n$4\r\nECHO\r\n$-1\r\n")
@example(b"ECHO \"\\x4g\" '\\x41'\r\n")
def test_same_bytes_as_redis(redis_port, saker_port, stream):
    assert exchange(saker_port, stream) == exchange(redis_port, stream)
