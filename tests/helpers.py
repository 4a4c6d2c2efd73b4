"""Test support: start the real daemon on a free port, talk to it raw.

Every daemon a test starts is stopped by its pid at teardown (SIGTERM, then
SIGKILL if it does not exit within 30 s: a loaded machine's ceiling; tests
assert d.stop() == 0).

The daemon runs the sakerd that the tests themselves import: the source tree
when pytest runs from it (`python3 -m pytest` puts the current directory
first on sys.path), the installed package when it does not (.ci/run runs
`python3 -P -m pytest` on the compiled install, so the compiled modules are
the ones tested). SAKERD_DIR names it.
"""

import os
import shutil
import signal
import site
import socket
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

try:
    import sakerd
except ImportError:          # neither installed nor run from the source tree
    sys.path.insert(0, ROOT)
    import sakerd

SAKERD_DIR = os.path.dirname(os.path.abspath(sakerd.__file__))
_SAKERD_PARENT = os.path.dirname(SAKERD_DIR)
# An installed sakerd is found by the daemon's interpreter without help; a
# source tree is put first on the daemon's PYTHONPATH.
_DAEMON_PYTHONPATH = (None if _SAKERD_PARENT in site.getsitepackages() + [site.getusersitepackages()]
                      else _SAKERD_PARENT)


def sakerd_env(**extra):
    """os.environ for a subprocess that runs `python -m sakerd` (the tests' sakerd)."""
    # PYTHONSAFEPATH: `python -m` would put the working directory (the
    # source tree, when pytest runs from it) first on sys.path, and the
    # daemon would run the .py files instead of an installed compiled build.
    env = dict(os.environ, PYTHONSAFEPATH="1", **extra)
    if _DAEMON_PYTHONPATH is not None:
        env["PYTHONPATH"] = _DAEMON_PYTHONPATH + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _ephemeral_low():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


# Ports the tests hand out: below the kernel's ephemeral range, so neither a
# bind(("", 0)) nor an outgoing connection of any process takes one between
# free_port() and the daemon's bind, and low enough that port + 10000 (a
# Redis Cluster bus port) is outside both this range and the ephemeral one.
# Each pytest-xdist worker owns a slice, and walks it in order from a random
# start: no two workers, and no two calls in one worker, hand out the same
# port while its first daemon may still be starting. (The kernel's choice
# for bind(0) is random, and does repeat: two agents of one fleet test once
# got the same port, and the second's PONG came from the first.)
_PORT_TOP = min(22000, _ephemeral_low() - 10000)
_PORT_BOTTOM = 12000


def _port_slice():
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1)
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    index = int(worker[2:]) if worker[2:].isdigit() else 0
    size = (_PORT_TOP - _PORT_BOTTOM) // max(1, count)
    low = _PORT_BOTTOM + (index % max(1, count)) * size
    return low, size


_port_cursor = [None]


def _bindable(port):
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port(bus=False):
    """A loopback port nothing is bound to, not handed out before by this
    process (see _PORT_TOP). bus: port + 10000 is free too (Redis Cluster)."""
    if _PORT_TOP - _PORT_BOTTOM < 100:      # an odd ephemeral range: the kernel's choice
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]
    low, size = _port_slice()
    if _port_cursor[0] is None:
        import random
        _port_cursor[0] = random.randrange(size)
    for _ in range(size):
        port = low + _port_cursor[0] % size
        _port_cursor[0] += 1
        if _bindable(port) and (not bus or _bindable(port + 10000)):
            return port
    raise AssertionError("no free port in %d..%d" % (low, low + size - 1))


def listener_pid_matches(pid, port):
    """False if a process other than `pid` listens on `port` (True when none
    does, or it cannot tell): the answer on the port is someone else's."""
    from sakerd.anet import port_holder
    holder = port_holder(port)
    return holder is None or holder[0] == pid


def wait_for(predicate, timeout=30.0, what="condition", interval=0.02):
    """Poll predicate() until it is true; fail naming `what` after timeout s.

    The timeout is a ceiling, not a delay: the default is sized for a loaded
    2-core CI machine running the suite with -n 3, where work that takes
    0.1 s alone can take many seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.1fs waiting for %s" % (timeout, what))
        time.sleep(interval)


SCRIPT_BUSY = (b"-BUSY Redis is busy running a script. You can only call SCRIPT KILL or "
               b"SHUTDOWN NOSAVE.")


def wait_busy(daemon, timeout=30.0):
    """A new connection whose PING got -BUSY (a script is past lua-time-limit),
    polled until one does."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        c = daemon.raw()
        c.send(b"PING\r\n")
        if c.read_line() == SCRIPT_BUSY:
            return c
        c.close()
        time.sleep(0.02)
    raise AssertionError("the server never became BUSY")


def log_line_time(line):
    """The wall-clock time (time.time()) of a sakerd log line's [timestamp]."""
    import datetime
    stamp = line[1:line.index("]")]
    return datetime.datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S.%f").timestamp()


def start_redis_server(*args, dir=None):
    """Start Debian's redis-server on a free loopback port: (proc, port).

    The caller stops it by its pid (proc.terminate(); proc.wait()).
    """
    path = require_tool("redis-server")
    port = free_port()
    cmd = [path, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    if dir is not None:
        cmd += ["--dir", str(dir)]
    proc = subprocess.Popen(cmd + list(args), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def up():
        assert proc.poll() is None, "redis-server exited with %s" % proc.returncode
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except OSError:
            return False
        # What answered must be this redis-server, not another holder of the port.
        return listener_pid_matches(proc.pid, port)
    wait_for(up, 60, "redis-server to start")
    return proc, port


def require_tool(name):
    """Path of an external tool; a missing tool fails the test (never skips)."""
    path = shutil.which(name)
    assert path, "%s is required (installed by .ci/run)" % name
    return path


# The tests' own base config: sakerd ships a closed `default` user (PING,
# INFO and COMMAND only, SPEC §11); the tests of everything else run with
# Redis's open default user, which this line gives them. Tests of access
# control pass open_default=False, or set their own `user default` line.
OPEN_DEFAULT_USER = "user default on nopass ~* &* +@all\n"


class Daemon:
    def __init__(self, tmpdir, config="", args=(), port=None, env=None, user=None,
                 wait=True, config_name="saker.conf", prefix=(), open_default=True):
        # prefix: a command that runs the daemon, e.g. setpriv dropping capabilities.
        self.dir = str(tmpdir)
        self.port = free_port() if port is None else port
        self.conf = os.path.join(self.dir, config_name)
        self.logfile = os.path.join(self.dir, "sakerd.log")
        text = "port %d\nlogfile %s\n" % (self.port, self.logfile)
        if "unixsocket " not in config:
            # No unix socket unless the test asks for one (the default path
            # is /run/sakerd/sakerd.sock as root: one daemon at a time).
            text += 'unixsocket ""\n'
        if open_default and "user default " not in config and "aclfile " not in config:
            text += OPEN_DEFAULT_USER
        if "scripts-dir" not in config:
            os.makedirs(os.path.join(self.dir, "scripts"), exist_ok=True)
        text += config
        with open(self.conf, "w") as f:
            f.write(text)
        self.args = list(args)
        cmd = list(prefix) + [sys.executable, "-m", "sakerd", "-c", self.conf] + self.args
        full_env = sakerd_env()
        if env:
            full_env.update(env)
        self.stdout_path = os.path.join(self.dir, "stdout.txt")
        self._out = open(self.stdout_path, "ab")
        self.proc = subprocess.Popen(cmd, cwd=self.dir, env=full_env, stdout=self._out,
                                     stderr=subprocess.STDOUT, user=user)
        self.pid = self.proc.pid
        self._clients = []
        if wait:
            try:
                self.wait_ready()
            except BaseException:
                # Nobody holds this daemon yet (make_daemon records it after
                # the constructor): stop it here, or it outlives the test.
                self.stop()
                raise

    def wait_ready(self, timeout=60.0):
        # Returns as soon as the daemon answers; the bound only matters on a
        # loaded machine (a parallel run), where a start can take many seconds.
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("sakerd exited with %s:\n%s" % (self.proc.returncode, self.output()))
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    s.sendall(b"PING\r\n")
                    answered = s.recv(64).startswith((b"+PONG", b"-NOAUTH", b"-BUSY"))
                # Only this daemon's answer counts: another process that holds
                # the port would hide that this one failed to bind it.
                if answered and listener_pid_matches(self.pid, self.port):
                    return
            except OSError:
                pass
            time.sleep(0.02)
        raise AssertionError("sakerd did not become ready:\n" + self.output())

    def output(self):
        self._out.flush()
        text = ""
        for p in (self.stdout_path, self.logfile):
            try:
                with open(p, "rb") as f:
                    text += f.read().decode("utf-8", "replace")
            except OSError:
                pass
        return text

    def log(self):
        try:
            with open(self.logfile, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def client(self, **kw):
        import redis
        kw.setdefault("socket_timeout", 30)   # a bound for a loaded machine, not a wait
        r = redis.Redis(host="127.0.0.1", port=self.port, **kw)
        self._clients.append(r)
        return r

    def raw(self, timeout=30):
        s = RawConn(("127.0.0.1", self.port), timeout)
        self._clients.append(s)
        return s

    def stop(self, timeout=30.0):
        for c in self._clients:
            try:
                c.close()
            except Exception:
                pass
        self._clients = []
        if self.proc.poll() is None:
            try:
                os.kill(self.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self.proc.wait()
        self._out.close()
        return self.proc.returncode

    def kill9(self):
        os.kill(self.pid, signal.SIGKILL)
        self.proc.wait()


def encode_command(*args):
    """A request as a client library sends it: an array of bulk strings."""
    args = [a if isinstance(a, bytes) else str(a).encode() for a in args]
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)


class RawConn:
    """A plain socket speaking bytes, with a strict RESP reader."""

    def __init__(self, addr, timeout=30):
        self.sock = socket.create_connection(addr, timeout=timeout)
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise EOFError("connection closed")
        self.buf += data

    def read_line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def read_exact(self, n):
        while len(self.buf) < n:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def read_reply(self):
        """One RESP2 reply as Python values; errors as ('ERR', text)."""
        line = self.read_line()
        t, rest = line[:1], line[1:]
        if t == b"+":
            return rest
        if t == b"-":
            return ("error", rest)
        if t == b":":
            return int(rest)
        if t == b"$":
            n = int(rest)
            if n < 0:
                return None
            data = self.read_exact(n + 2)
            assert data[-2:] == b"\r\n", data
            return data[:-2]
        if t == b"*":
            n = int(rest)
            if n < 0:
                return None
            return [self.read_reply() for _ in range(n)]
        raise AssertionError("not RESP: %r" % line)

    def read_wire(self):
        """One RESP2 or RESP3 reply as its raw bytes."""
        line = self.read_line() + b"\r\n"
        kind, n = line[:1], line[1:-2]
        if kind in b"$=!":
            n = int(n)
            return line if n < 0 else line + self.read_exact(n + 2)
        if kind in b"*~>%|":
            n = max(0, int(n)) * (2 if kind in b"%|" else 1)
            return line + b"".join(self.read_wire() for _ in range(n))
        return line

    def call(self, *args):
        """Send one command (bytes, str or numbers); its reply as raw bytes."""
        self.send(encode_command(*args))
        return self.read_wire()

    def read_all(self, timeout=30):
        """Everything until the server closes the connection."""
        self.sock.settimeout(timeout)
        out = self.buf
        self.buf = b""
        while True:
            try:
                data = self.sock.recv(65536)
            except ConnectionResetError:
                break
            if not data:
                break
            out += data
        return out

    def is_closed(self, timeout=30):
        self.sock.settimeout(timeout)
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True

    def close(self):
        self.sock.close()


def nonexistent_global_error(script, name, line=1):
    """redis-server 7.0.15's error text for an EVAL script reading an undeclared global."""
    import hashlib
    sha = hashlib.sha1(script.encode() if isinstance(script, str) else script).hexdigest()
    return ("user_script:%d: Script attempted to access nonexistent global variable '%s' "
            "script: %s, on @user_script:%d." % (line, name, sha, line))
