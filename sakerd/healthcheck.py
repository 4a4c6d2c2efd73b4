"""Health checks of supervised programs: tcp, http and exec probes on the event loop.

saker.supervise{..., check = {tcp = "127.0.0.1:8080"}} (or {http = URL,
expect = 200}, or {exec = argv}), with interval_ms, timeout_ms, failures and
action ("restart" or "event"). A program's health is `unknown` until its
first probe answers, `healthy` after a success, `unhealthy` after `failures`
failures in a row; each change is a `process_health` event and a log line.

Some facts that shaped this module:

- A non-blocking connect() answers EINPROGRESS; the socket becomes writable
  once the connection is made or has failed, and getsockopt(SO_ERROR) then
  says which. Nothing here ever waits: every step is an ae file event, and
  one ae time event per probe bounds it by timeout_ms.
- Name resolution (getaddrinfo) blocks, so a check names an IP address
  (or `localhost`, taken as 127.0.0.1) and is refused otherwise when the
  program is supervised, not when the probe runs.
- HTTP is spoken through h11 (a sans-I/O HTTP/1.1 state machine): we only
  move bytes between it and the socket. The probe is done at the response
  head; the body is never read.
- An exec probe is a child like any other: spawn() starts it in its own
  group, the reaper collects it (never waitpid here), and a timed-out probe
  is killed with its group.
"""

import errno
import ipaddress
import os
import signal
import socket
import time
import urllib.parse

from . import ae
from .log import log, LL_NOTICE, LL_WARNING
from .lua_bridge import ArgError, lua_type
from .server_h import server

UNKNOWN, HEALTHY, UNHEALTHY = "unknown", "healthy", "unhealthy"
ACTIONS = ("restart", "event")
RECV_CHUNK = 16384
MAX_RESPONSE_HEAD = 65536     # h11 refuses a longer head: a probe's memory is bounded

CHECK_DEFAULTS = {"interval_ms": 10000, "timeout_ms": 2000, "failures": 3, "action": "restart"}


# ---- options -------------------------------------------------------------------------

def parse_check(argno, value):
    """The `check` field of saker.supervise as a dict; raises ArgError naming the field."""
    if not isinstance(value, dict):
        raise ArgError(argno, "field 'check': table expected, got %s" % lua_type(value))
    known = {"tcp", "http", "exec", "expect"} | set(CHECK_DEFAULTS)
    for key in value:
        if key not in known:
            raise ArgError(argno, "field 'check': unknown option '%s'" % key)
    kinds = [k for k in ("tcp", "http", "exec") if k in value]
    if len(kinds) != 1:
        raise ArgError(argno, "field 'check': exactly one of 'tcp', 'http', 'exec' expected")
    kind = kinds[0]
    spec = {"kind": kind}
    if kind == "tcp":
        spec["addr"] = _check_address(argno, "check.tcp", value["tcp"])
        spec["target"] = value["tcp"]
    elif kind == "http":
        spec.update(_check_url(argno, value["http"]))
    else:
        from .procs import check_argv
        try:
            spec["argv"] = check_argv(argno, value["exec"])
        except ArgError as e:
            raise ArgError(argno, "field 'check.exec': %s" % e.message)
        spec["target"] = " ".join(spec["argv"])
    if "expect" in value and kind != "http":
        raise ArgError(argno, "field 'check.expect': only for an http check")
    spec["expect"] = _check_int(argno, "expect", value.get("expect", 200), 100, 599)
    spec["interval_ms"] = _check_int(argno, "interval_ms", value.get("interval_ms"), 1, None)
    spec["timeout_ms"] = _check_int(argno, "timeout_ms", value.get("timeout_ms"), 1, None)
    spec["failures"] = _check_int(argno, "failures", value.get("failures"), 1, None)
    action = value.get("action", CHECK_DEFAULTS["action"])
    if action not in ACTIONS:
        raise ArgError(argno, "field 'check.action': 'restart' or 'event' expected, got %s"
                       % (repr(action) if isinstance(action, str) else lua_type(action)))
    spec["action"] = action
    return spec


def _check_int(argno, key, value, lo, hi):
    if value is None:
        return CHECK_DEFAULTS[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
        raise ArgError(argno, "field 'check.%s': integer expected, got %s" % (key, lua_type(value)))
    if value < lo or (hi is not None and value > hi):
        raise ArgError(argno, "field 'check.%s': out of range" % key)
    return int(value)


def _check_address(argno, field, value):
    """"127.0.0.1:8080" or "[::1]:8080" -> a sockaddr tuple and its family."""
    if not isinstance(value, str):
        raise ArgError(argno, "field '%s': string expected, got %s" % (field, lua_type(value)))
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ArgError(argno, "field '%s': host:port expected, got '%s'" % (field, value))
    return _numeric_addr(argno, field, host.strip("[]"), int(port))


def _numeric_addr(argno, field, host, port):
    if host == "localhost":
        host = "127.0.0.1"
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        raise ArgError(argno, "field '%s': '%s' is not an IP address (no DNS lookups)"
                       % (field, host))
    if ip.version == 6:
        return socket.AF_INET6, (str(ip), port, 0, 0)
    return socket.AF_INET, (str(ip), port)


def _check_url(argno, value):
    if not isinstance(value, str):
        raise ArgError(argno, "field 'check.http': string expected, got %s" % lua_type(value))
    u = urllib.parse.urlsplit(value)
    if u.scheme != "http" or not u.hostname:
        raise ArgError(argno, "field 'check.http': http://host:port/path expected, got '%s'"
                       % value)
    try:
        port = u.port or 80
    except ValueError:
        raise ArgError(argno, "field 'check.http': bad port in '%s'" % value)
    path = u.path or "/"
    if u.query:
        path += "?" + u.query
    return {"addr": _numeric_addr(argno, "check.http", u.hostname, port), "target": value,
            "host": u.netloc, "path": path}


# ---- probes: each calls done(ok, message) exactly once unless cancelled -------------

class SocketProbe:
    """Connect without blocking; subclasses talk once connected."""

    def __init__(self, spec, done):
        self.spec = spec
        self.done = done
        self.sock = None
        self.watched = ae.AE_NONE

    def start(self):
        family, addr = self.spec["addr"]
        try:
            self.sock = socket.socket(family, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
            self.sock.setblocking(False)
            err = self.sock.connect_ex(addr)
        except OSError as e:
            return self.finish(False, "connect: %s" % (e.strerror or e))
        if err not in (0, errno.EINPROGRESS):
            return self.finish(False, "connect: %s" % os.strerror(err))
        self.watch(ae.AE_WRITABLE, self._connected)

    def watch(self, mask, proc):
        el = server.el
        if self.watched:
            el.delete_file_event(self.sock.fileno(), self.watched)
        if el.create_file_event(self.sock.fileno(), mask, proc) != ae.AE_OK:
            self.watched = ae.AE_NONE
            return self.finish(False, "too many open descriptors")
        self.watched = mask

    def _connected(self, el, fd, data, mask):
        err = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            return self.finish(False, "connect: %s" % os.strerror(err))
        self.connected()

    def connected(self):
        self.finish(True, "ok")

    def finish(self, ok, message):
        done, self.done = self.done, None
        self.cancel()
        if done is not None:
            done(ok, message)

    def cancel(self):
        self.done = None
        if self.sock is not None:
            if self.watched:
                server.el.delete_file_event(self.sock.fileno(), self.watched)
                self.watched = ae.AE_NONE
            self.sock.close()
            self.sock = None


class TcpProbe(SocketProbe):
    """Healthy when the port accepts a connection."""


class HttpProbe(SocketProbe):
    """Healthy when GET answers the expected status."""

    def connected(self):
        import h11      # here: a daemon without http checks does not pay its import
        self.h11 = h11
        self.conn = h11.Connection(our_role=h11.CLIENT, max_incomplete_event_size=MAX_RESPONSE_HEAD)
        request = h11.Request(method="GET", target=self.spec["path"], headers=[
            ("Host", self.spec["host"]), ("User-Agent", "sakerd-healthcheck"),
            ("Connection", "close")])
        self.outbuf = self.conn.send(request) + self.conn.send(h11.EndOfMessage())
        self._write(None, None, None, None)

    def _write(self, el, fd, data, mask):
        try:
            n = self.sock.send(self.outbuf)
        except BlockingIOError:
            n = 0
        except OSError as e:
            return self.finish(False, "send: %s" % (e.strerror or e))
        self.outbuf = self.outbuf[n:]
        if self.outbuf:
            self.watch(ae.AE_WRITABLE, self._write)
        else:
            self.watch(ae.AE_READABLE, self._read)

    def _read(self, el, fd, data, mask):
        h11 = self.h11
        try:
            chunk = self.sock.recv(RECV_CHUNK)
        except BlockingIOError:
            return
        except OSError as e:
            return self.finish(False, "recv: %s" % (e.strerror or e))
        try:
            self.conn.receive_data(chunk)
            event = self.conn.next_event()
        except h11.RemoteProtocolError as e:
            return self.finish(False, "bad HTTP response: %s" % e)
        if event is h11.NEED_DATA:
            return
        if isinstance(event, h11.Response):
            expect = self.spec["expect"]
            if event.status_code == expect:
                return self.finish(True, "ok")
            return self.finish(False, "HTTP status %d (expected %d)" % (event.status_code, expect))
        if isinstance(event, h11.InformationalResponse):
            return      # 100 Continue and the like: the final head follows
        self.finish(False, "connection closed before a response")


class ExecProbe:
    """Healthy when the command exits 0; its output goes to /dev/null."""

    def __init__(self, spec, done):
        self.spec = spec
        self.done = done
        self.pid = None

    def start(self):
        from .procs import SpawnError, reaper, spawn, describe_status
        self.describe_status = describe_status
        try:
            self.pid = spawn(self.spec["argv"], stdout=os.devnull)
        except SpawnError as e:
            return self._finish(False, str(e))
        reaper.listeners[self.pid] = self._exited

    def _exited(self, pid, status):
        self.pid = None
        if os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0:
            self._finish(True, "ok")
        else:
            self._finish(False, self.describe_status(status))

    def _finish(self, ok, message):
        done, self.done = self.done, None
        if done is not None:
            done(ok, message)

    def cancel(self):
        """Timed out or no longer wanted: kill its group; the reaper collects it."""
        self.done = None
        if self.pid is not None:
            try:
                os.killpg(self.pid, signal.SIGKILL)
            except OSError:
                pass


PROBES = {"tcp": TcpProbe, "http": HttpProbe, "exec": ExecProbe}


# ---- the check of one program -------------------------------------------------------------

class HealthCheck:
    """Runs one program's probe every interval_ms while the program runs.

    Invariant: at most one probe in flight, bounded by its timeout event.
    """

    def __init__(self, program, spec):
        self.program = program
        self.spec = spec
        self.health = UNKNOWN
        self.failures = 0            # consecutive
        self.checks = 0
        self.last_result = ""
        self.last_at = 0.0           # unix time of the last answer
        self.last_latency_ms = 0.0
        self.probe = None
        self.probe_started = 0.0
        self.interval_timer = None
        self.timeout_timer = None

    def describe(self):
        return "%s %s" % (self.spec["kind"], self.spec["target"])

    def start(self):
        """The program is running: probe every interval_ms, the first after one
        interval (as Docker's HEALTHCHECK: a program gets time to open its port)."""
        self.stop()
        self.health = UNKNOWN
        self.failures = 0
        self.interval_timer = server.el.create_time_event(self.spec["interval_ms"], self._tick)

    def stop(self):
        if self.interval_timer is not None:
            server.el.delete_time_event(self.interval_timer)
            self.interval_timer = None
        self._end_probe()

    def _tick(self, el, id, data):
        if self.probe is None:
            self.probe = PROBES[self.spec["kind"]](self.spec, self._answered)
            self.probe_started = time.monotonic()
            self.timeout_timer = el.create_time_event(self.spec["timeout_ms"], self._timed_out)
            self.probe.start()
        return self.spec["interval_ms"]

    def _timed_out(self, el, id, data):
        self.timeout_timer = None
        probe = self.probe
        if probe is not None:
            probe.cancel()
            self._answered(False, "timed out after %d ms" % self.spec["timeout_ms"])
        return ae.AE_NOMORE

    def _end_probe(self):
        if self.timeout_timer is not None:
            server.el.delete_time_event(self.timeout_timer)
            self.timeout_timer = None
        if self.probe is not None:
            self.probe.cancel()
            self.probe = None

    def _answered(self, ok, message):
        self.last_latency_ms = (time.monotonic() - self.probe_started) * 1000.0
        self.probe = None
        self._end_probe()
        self.checks += 1
        self.last_at = time.time()
        self.last_result = message
        if ok:
            self.failures = 0
            if self.health != HEALTHY:
                self._change(HEALTHY, message)
            return
        self.failures += 1
        if self.failures >= self.spec["failures"] and self.health != UNHEALTHY:
            self._change(UNHEALTHY, message)

    def _change(self, to, reason):
        frm, self.health = self.health, to
        name = self.program.name
        if to == HEALTHY:
            log(LL_NOTICE, "Process %s: %s -> healthy (%s)", name, frm, self.describe())
        else:
            log(LL_WARNING, "Process %s: %s -> unhealthy after %d failed check%s (%s: %s)",
                name, frm, self.failures, "" if self.failures == 1 else "s",
                self.describe(), reason)
        server.emit_event("process_health", name=name, from_health=frm, to_health=to,
                          pid=self.program.pid, failures=self.failures, check=self.describe(),
                          reason=reason)
        self.program.health_changed(to, reason)

    def status_pairs(self):
        return [
            ("health", self.health), ("check", self.describe()),
            ("check_action", self.spec["action"]), ("checks", self.checks),
            ("last_check", self.last_result or "-"), ("last_check_at", int(self.last_at)),
            ("last_check_latency_ms", "%.2f" % self.last_latency_ms),
            ("check_failures", self.failures),
        ]
