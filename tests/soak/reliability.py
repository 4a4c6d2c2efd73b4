"""Shared tools of the reliability tests: RESP unit reader, /proc memory, scale knob.

wait_for comes from tests/helpers.py and is re-exported here.

Scale: every reliability test has a CI size and a full size, chosen by the
environment variable SAKERD_SOAK (unset: CI size, "1": full size). The code
path is the same; only the numbers change.

Memory is read from /proc/<pid>/status: VmRSS is the resident set now,
VmHWM its high-water mark since the process started (both in kB).
"""

import os
import socket

from helpers import wait_for  # noqa: F401  (re-exported for the reliability tests)

SOAK = os.environ.get("SAKERD_SOAK", "") not in ("", "0")


def scale(ci, full):
    """The CI-sized value, or the full-sized one under SAKERD_SOAK=1."""
    return full if SOAK else ci


def proc_status_kb(pid, field):
    """A Vm* field of /proc/<pid>/status in kB (VmRSS, VmHWM, ...)."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError("%s not in /proc/%d/status" % (field, pid))


def rss_mb(pid):
    return proc_status_kb(pid, "VmRSS") / 1024.0


def hwm_mb(pid):
    return proc_status_kb(pid, "VmHWM") / 1024.0



class UnitConn:
    """A raw socket whose reader returns each RESP2 reply as its exact bytes."""

    def __init__(self, port, host="127.0.0.1", timeout=10, source=None):
        self.sock = socket.create_connection((host, port), timeout=timeout,
                                             source_address=source)
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self):
        data = self.sock.recv(1 << 20)
        if not data:
            raise EOFError("connection closed; unread %r" % self.buf[:200])
        self.buf += data

    def _line_end(self, pos):
        while True:
            i = self.buf.find(b"\r\n", pos)
            if i >= 0:
                return i
            self._fill()

    def _unit_end(self, pos):
        end = self._line_end(pos)
        kind = self.buf[pos:pos + 1]
        if kind in (b"+", b"-", b":"):
            return end + 2
        n = int(self.buf[pos + 1:end])
        if kind == b"$":
            stop = end + 2 + (n + 2 if n >= 0 else 0)
            while len(self.buf) < stop:
                self._fill()
            return stop
        if kind == b"*":
            pos = end + 2
            for _ in range(max(n, 0)):
                pos = self._unit_end(pos)
            return pos
        raise AssertionError("not RESP2: %r" % self.buf[pos:pos + 100])

    def read_unit(self):
        """The bytes of exactly one complete reply."""
        end = self._unit_end(0)
        unit, self.buf = self.buf[:end], self.buf[end:]
        return unit

    def read_until_closed(self, timeout=10):
        """Everything the server sends before closing the connection."""
        self.sock.settimeout(timeout)
        out, self.buf = self.buf, b""
        while True:
            try:
                data = self.sock.recv(1 << 20)
            except ConnectionResetError:
                return out
            if not data:
                return out
            out += data

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def bulk(b):
    return b"$%d\r\n%s\r\n" % (len(b), b)


def multibulk(*args):
    return b"*%d\r\n" % len(args) + b"".join(bulk(a) for a in args)


def inline(*args):
    """An inline request with every argument quoted and \\xHH-escaped."""
    return b" ".join(b'"' + b"".join(b"\\x%02x" % c for c in a) + b'"' for a in args) + b"\r\n"


def info_field(client, section, field):
    return client.info(section)[field]
