"""Access: passwords, protected mode, file modes, and secrets that must not leak.

The error texts are checked byte for byte against a real redis-server
(7.0) started side by side with the same settings: NOAUTH, WRONGPASS, the
unauthenticated protocol limits, the DENIED text of protected mode.

Protected mode: Redis's islocalClient() counts only 127.0.0.1, ::1 and
unix sockets as local. Linux routes all of 127.0.0.0/8 to lo, so a client
that binds its source address to 127.0.0.2 is, for the server, a
non-loopback peer: that is how these tests play the remote client.
"""

import os
import re
import socket
import stat

import pytest

from helpers import start_redis_server
from soak.reliability import UnitConn, multibulk

SECRET = "s3cr3t-Pa55-QX7"
NEW_SECRET = "n3w-s3cr3t-ZZ9"


class RealRedis:
    def __init__(self, tmp_path, *args):
        self.proc, self.port = start_redis_server(*args, dir=tmp_path)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)


@pytest.fixture
def real_redis(tmp_path):
    started = []

    def start(*args):
        r = RealRedis(tmp_path, *args)
        started.append(r)
        return r

    yield start
    for r in started:
        r.stop()


def exchange(port, data, host="127.0.0.1", source=None):
    """Send data then QUIT (allowed before AUTH); everything until close."""
    c = UnitConn(port, host=host, source=source)
    c.send(data + b"QUIT\r\n")
    out = c.read_until_closed()
    c.close()
    return out


UNAUTHENTICATED = [
    b"PING\r\n",
    multibulk(b"SET", b"k", b"v"),
    b"AUTH wrong\r\n",
    b"AUTH default wrong\r\n",
    b"AUTH nosuchuser " + SECRET.encode() + b"\r\n",
    b"AUTH a b c\r\n",
    b"HELLO 3\r\n",
    b"HELLO 2 AUTH default wrong\r\n",
    b"*11\r\n",
    b"*2\r\n$4\r\nECHO\r\n$20000\r\n",
    b"AUTH " + SECRET.encode() + b"\r\nPING\r\n",
    b"HELLO 2 AUTH default " + SECRET.encode() + b"\r\nPING\r\n",
]


@pytest.mark.parametrize("request_bytes", UNAUTHENTICATED,
                         ids=[r[:20].decode("latin-1").replace(SECRET, "secret")
                              for r in UNAUTHENTICATED])
def test_requirepass_answers_like_redis(make_daemon, real_redis, request_bytes):
    d = make_daemon("requirepass %s\n" % SECRET)
    r = real_redis("--requirepass", SECRET)
    # HELLO's reply carries the client id, which differs between servers.
    same_id = lambda b: re.sub(rb"\$2\r\nid\r\n:\d+", b"$2\r\nid\r\n:N", b)
    got = same_id(exchange(d.port, request_bytes))
    assert got == same_id(exchange(r.port, request_bytes))
    assert got  # every case answers something before closing


def test_auth_without_password_configured_answers_like_redis(make_daemon, real_redis):
    d = make_daemon()
    r = real_redis()
    for req in (b"AUTH foo\r\n", b"AUTH default anything\r\n", b"AUTH other x\r\n"):
        assert exchange(d.port, req) == exchange(r.port, req)


PROTECTED = ("bind 127.0.0.1 127.0.0.2\nenable-protected-configs yes\n")


def test_protected_mode_refuses_non_loopback_peer_with_redis_text(make_daemon, real_redis):
    d = make_daemon(PROTECTED)
    r = real_redis("--bind", "127.0.0.1", "127.0.0.2")
    remote = ("127.0.0.2", 0)
    denied = exchange(d.port, b"PING\r\n", host="127.0.0.2", source=remote)
    assert denied.startswith(b"-DENIED Redis is running in protected mode")
    assert denied == exchange(r.port, b"PING\r\n", host="127.0.0.2", source=remote)
    # The loopback peer 127.0.0.1 is served on either address.
    assert exchange(d.port, b"PING\r\n", host="127.0.0.2") == b"+PONG\r\n+OK\r\n"
    assert exchange(d.port, b"PING\r\n") == b"+PONG\r\n+OK\r\n"
    assert d.client(protocol=2).info("stats")["rejected_connections"] == 1


def test_protected_mode_lifts_with_a_password_or_when_disabled(make_daemon):
    d = make_daemon(PROTECTED)
    remote = ("127.0.0.2", 0)
    admin = d.client(protocol=2)
    admin.config_set("requirepass", SECRET)
    assert exchange(d.port, b"PING\r\n", host="127.0.0.2", source=remote) == \
        b"-NOAUTH Authentication required.\r\n+OK\r\n"
    admin.execute_command("AUTH", SECRET)
    admin.config_set("requirepass", "")
    assert exchange(d.port, b"PING\r\n", host="127.0.0.2", source=remote).startswith(b"-DENIED")
    admin.config_set("protected-mode", "no")
    assert exchange(d.port, b"PING\r\n", host="127.0.0.2", source=remote) == b"+PONG\r\n+OK\r\n"


def test_unix_socket_is_local_in_protected_mode_and_gets_its_perm(make_daemon, tmp_path):
    sock_path = str(tmp_path / "s.sock")
    d = make_daemon("unixsocket %s\nunixsocketperm 770\n" % sock_path)
    assert stat.S_IMODE(os.stat(sock_path).st_mode) == 0o770
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(10)
    s.connect(sock_path)
    s.sendall(b"PING\r\n")
    assert s.recv(100) == b"+PONG\r\n"
    s.close()


def test_pidfile_and_socket_are_not_world_writable_even_with_umask_0(make_daemon, tmp_path):
    pidfile = tmp_path / "saker.pid"
    sock_path = tmp_path / "default.sock"
    # A stale pidfile left world-writable (by someone else, or an old umask)
    # must not stay writable: anyone could point our pidfile at another pid.
    pidfile.write_text("999999\n")
    os.chmod(pidfile, 0o666)
    # The daemon's directory itself is made before umask 0: a world-writable
    # one would be refused (tests/test_hardening_files.py).
    (tmp_path / "d0").mkdir(mode=0o755)
    old = os.umask(0)
    try:
        d = make_daemon("pidfile %s\nunixsocket %s\n" % (pidfile, sock_path))
    finally:
        os.umask(old)
    assert pidfile.read_text() == "%d\n" % d.pid
    assert stat.S_IMODE(os.stat(pidfile).st_mode) & 0o022 == 0
    assert stat.S_IMODE(os.stat(sock_path).st_mode) == 0o700   # unixsocketperm default


def normalize_monitor(lines):
    """MONITOR lines without the timestamp and client address."""
    return [re.sub(rb"^\+[0-9.]+ \[\d+ [^\]]+\] ", b"", ln) for ln in lines]


def monitor_lines(port, password, requests, n):
    mon = UnitConn(port)
    mon.send(b"AUTH " + password.encode() + b"\r\nMONITOR\r\n")
    assert mon.read_unit() == b"+OK\r\n"
    assert mon.read_unit() == b"+OK\r\n"
    c = UnitConn(port)
    for req in requests:
        c.send(req)
        c.read_unit()
    lines = [mon.read_unit().rstrip(b"\r\n") for _ in range(n)]
    mon.close()
    c.close()
    return normalize_monitor(lines)


SENSITIVE = [
    b"AUTH wrong\r\n",
    b"AUTH " + SECRET.encode() + b"\r\n",
    b"AUTH default " + SECRET.encode() + b"\r\n",
    b"HELLO 2 AUTH default " + SECRET.encode() + b"\r\n",
    b"HELLO 2 AUTH default " + SECRET.encode() + b" SETNAME cli\r\n",
    b"ECHO done\r\n",
]


def test_monitor_shows_auth_redacted_like_redis(make_daemon, real_redis):
    d = make_daemon("requirepass %s\n" % SECRET)
    r = real_redis("--requirepass", SECRET)
    ours = monitor_lines(d.port, SECRET, SENSITIVE, len(SENSITIVE))
    assert ours == monitor_lines(r.port, SECRET, SENSITIVE, len(SENSITIVE))
    assert not any(SECRET.encode() in ln for ln in ours), ours
    assert ours[-1] == b'"ECHO" "done"'


def test_secrets_never_reach_logs_slowlog_info_or_config_get(make_daemon):
    d = make_daemon("requirepass %s\nloglevel debug\nslowlog-log-slower-than 0\n" % SECRET)
    listener = UnitConn(d.port)
    listener.send(b"AUTH %s\r\nSUBSCRIBE log events\r\n" % SECRET.encode())
    for _ in range(3):
        listener.read_unit()
    c = UnitConn(d.port)
    for req in SENSITIVE[:5] + [
            multibulk(b"CONFIG", b"SET", b"requirepass", NEW_SECRET.encode()),
            b"AUTH " + NEW_SECRET.encode() + b"\r\n",
            b"CONFIG GET requirepass\r\n", b"CONFIG GET *\r\n",
            b"SLOWLOG GET 100\r\n", b"INFO everything\r\n", b"CLIENT LIST\r\n",
            b"CLIENT INFO\r\n"]:
        c.send(req)
        reply = c.read_unit()
        for s in (SECRET, NEW_SECRET):
            assert s.encode() not in reply, (req, reply)
    c.send(b"CONFIG GET requirepass\r\n")
    assert c.read_unit() == b"*2\r\n$11\r\nrequirepass\r\n$10\r\n(redacted)\r\n"
    c.send(b"SLOWLOG GET 100\r\n")
    slowlog = c.read_unit()
    assert slowlog.count(b"(redacted)") >= 6
    # What the subscriber received on the log and events channels so far.
    listener.sock.settimeout(0.5)
    published = listener.buf
    try:
        while True:
            data = listener.sock.recv(1 << 20)
            if not data:
                break
            published += data
    except socket.timeout:
        pass
    assert b"Failed AUTH attempt" in published
    d.stop()
    with open(d.stdout_path, "rb") as f:
        everything = f.read() + d.log().encode() + published
    for s in (SECRET, NEW_SECRET):
        assert s.encode() not in everything


def test_enable_exec_no_makes_saker_exec_fail_with_a_clear_message(make_daemon):
    d = make_daemon("enable-exec no\nenable-protected-configs yes\n")
    r = d.client(protocol=2)
    got = r.eval("local pid, err = saker.exec('true'); return {tostring(pid), err}", 0)
    assert got == [b"nil", b"exec disabled by configuration (enable-exec no)"]
    r.config_set("enable-exec", "yes")
    pid = r.eval("return (saker.exec({'sleep', '5'}))", 0)
    assert isinstance(pid, int) and pid > 0
    r.eval("saker.kill(%d, 'KILL')" % pid, 0)
