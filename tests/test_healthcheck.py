"""Health checks of supervised programs (issue 16): tcp, http, exec probes on the loop."""

import os
import signal
import sys

import pytest

from helpers import free_port, wait_for
from test_procs import Events, kill_quietly, proc_stat


class HealthEvents(Events):
    """Events that also collects process_health events."""

    def __init__(self, daemon):
        self.health = []
        super().__init__(daemon)

    def collect(self, ev):
        super().collect(ev)
        if ev["type"] == "process_health":
            self.health.append(ev)

    def wait_health(self, name, to, after=0):
        def found():
            self.poll()
            hits = [e for e in self.health if e["name"] == name and e["to_health"] == to]
            return hits[after] if len(hits) > after else None
        return wait_for(found, 30, "%s -> %s" % (name, to))


def health_events(d):
    return HealthEvents(d)


def status(r, name):
    s = r.execute_command("PROC", "STATUS", name)
    return dict(zip(s[::2], s[1::2]))


def test_http_check_unhealthy_after_failures_restarted_then_healthy_again(make_daemon):
    d = make_daemon()
    r = d.client(protocol=2, decode_responses=True)
    ev = health_events(d)
    port = free_port()
    r.eval('return saker.supervise{name = "web", startsecs = 1, backoff_ms = 50, '
           'stop_timeout_ms = 300, cmd = {ARGV[1], "-m", "http.server", "--bind", "127.0.0.1", '
           'ARGV[2]}, check = {http = "http://127.0.0.1:" .. ARGV[2] .. "/", expect = 200, '
           'interval_ms = 500, timeout_ms = 300, failures = 3}}', 0, sys.executable, port)
    first = ev.wait_for("web", "running")["pid"]
    healthy = ev.wait_health("web", "healthy")
    assert (healthy["from_health"], healthy["pid"], healthy["check"]) == (
        "unknown", first, "http http://127.0.0.1:%d/" % port)
    s = status(r, "web")
    assert (s["state"], s["health"], s["last_check"], s["check_failures"]) == (
        "running", "healthy", "ok", "0")
    assert float(s["last_check_latency_ms"]) > 0
    # Stopped mid-test, the server accepts connections (the kernel does)
    # but never answers: each probe times out.
    os.kill(first, signal.SIGSTOP)
    try:
        bad = ev.wait_health("web", "unhealthy")
        assert (bad["from_health"], bad["failures"], bad["reason"]) == (
            "healthy", 3, "timed out after 300 ms")
        # Restarted through the backoff: SIGTERM stays pending on a stopped
        # process, so the SIGKILL after stop_timeout_ms ends it.
        backoff = ev.wait_for("web", "backoff")
        assert (backoff["signal"], backoff["retries"], backoff["reason"]) == (
            "SIGKILL", 1, "unhealthy: timed out after 300 ms")
        second = ev.wait_for("web", "running")["pid"]
        assert second != first
        again = ev.wait_health("web", "healthy", after=1)
        assert (again["from_health"], again["pid"]) == ("unknown", second)
    finally:
        kill_quietly(first)
    assert "Process web: healthy -> unhealthy after 3 failed checks (http http://127.0.0.1:%d/: " \
        "timed out after 300 ms)" % port in d.log()
    assert "Process web (pid %d): restarting, unhealthy: timed out after 300 ms" % first in d.log()
    assert status(r, "web")["retries"] == "0"


def test_http_check_wrong_status_is_a_failure(make_daemon):
    d = make_daemon()
    r = d.client(protocol=2, decode_responses=True)
    ev = health_events(d)
    port = free_port()
    r.eval('return saker.supervise{name = "web", startsecs = 0.1, cmd = {ARGV[1], "-m", '
           '"http.server", "--bind", "127.0.0.1", ARGV[2]}, check = {http = "http://127.0.0.1:" '
           '.. ARGV[2] .. "/missing", interval_ms = 100, failures = 20, action = "event"}}',
           0, sys.executable, port)
    bad = ev.wait_health("web", "unhealthy")
    assert bad["reason"] == "HTTP status 404 (expected 200)"
    # action = "event": reported, not restarted.
    s = status(r, "web")
    assert (s["state"], s["health"], s["starts"], s["check_action"]) == (
        "running", "unhealthy", "1", "event")


def test_port_that_never_opens_ends_fatal(make_daemon):
    d = make_daemon()
    r = d.client(protocol=2, decode_responses=True)
    ev = health_events(d)
    port = free_port()
    r.eval('return saker.supervise{name = "deaf", cmd = "exec sleep 300", startsecs = 0.1, '
           'backoff_ms = 50, max_retries = 2, check = {tcp = "127.0.0.1:" .. ARGV[1], '
           'interval_ms = 50, failures = 2}}', 0, port)
    fatal = ev.wait_for("deaf", "fatal")
    assert (fatal["from_state"], fatal["retries"], fatal["signal"]) == ("running", 2, "SIGTERM")
    assert fatal["reason"] == "unhealthy: connect: Connection refused"
    assert [e["to_state"] for e in ev.events if e["name"] == "deaf"] == [
        "starting", "running", "backoff"] * 2 + ["starting", "running", "fatal"]
    assert len([e for e in ev.health if e["to_health"] == "unhealthy"]) == 3
    s = status(r, "deaf")
    assert (s["state"], s["starts"], s["pid"]) == ("fatal", "3", "0")
    assert r.info("processes")["zombies"] == 0


def test_exec_check_that_hangs_is_timed_out_and_killed(make_daemon, tmp_path):
    d = make_daemon()
    r = d.client(protocol=2, decode_responses=True)
    ev = health_events(d)
    marker = tmp_path / "probe.pid"
    r.eval('return saker.supervise{name = "slow", cmd = "exec sleep 300", startsecs = 0.1, '
           'check = {exec = {"sh", "-c", "echo $$ > " .. ARGV[1] .. "; exec sleep 30"}, '
           'interval_ms = 5000, timeout_ms = 200, failures = 1, action = "event"}}', 0, str(marker))
    bad = ev.wait_health("slow", "unhealthy")
    assert bad["reason"] == "timed out after 200 ms"
    probe = int(marker.read_text())
    # The probe was killed and reaped: no zombie, nothing left.
    wait_for(lambda: proc_stat(probe) is None, what="the probe to be gone")
    assert r.info("processes")["zombies"] == 0
    s = status(r, "slow")
    assert (s["state"], s["health"], s["check"], s["last_check"]) == (
        "running", "unhealthy", 'exec sh -c echo $$ > %s; exec sleep 30' % marker,
        "timed out after 200 ms")


def test_exec_check_exit_status_decides(make_daemon, tmp_path):
    d = make_daemon()
    r = d.client(protocol=2, decode_responses=True)
    ev = health_events(d)
    flag = tmp_path / "ok"
    r.eval('return saker.supervise{name = "p", cmd = "exec sleep 300", startsecs = 0.1, '
           'check = {exec = {"test", "-e", ARGV[1]}, interval_ms = 100, failures = 1, '
           'action = "event"}}', 0, str(flag))
    assert ev.wait_health("p", "unhealthy")["reason"] == "exited with status 1"
    flag.write_text("")
    assert ev.wait_health("p", "healthy")["from_health"] == "unhealthy"
    info = r.info("processes")["proc_p"]
    assert (info["state"], info["health"]) == ("running", "healthy")


@pytest.mark.parametrize("check, message", [
    ("{tcp = 5}", "field 'check.tcp': string expected, got number"),
    ('"tcp"', "field 'check': table expected, got string"),
    ("{}", "field 'check': exactly one of 'tcp', 'http', 'exec' expected"),
    ('{tcp = "127.0.0.1"}', "field 'check.tcp': host:port expected, got '127.0.0.1'"),
    ('{tcp = "example.com:80"}', "field 'check.tcp': 'example.com' is not an IP address "
     "(no DNS lookups)"),
    ('{http = "https://127.0.0.1/"}',
     "field 'check.http': http://host:port/path expected, got 'https://127.0.0.1/'"),
    ('{http = "http://127.0.0.1/", expect = "ok"}', "field 'check.expect': integer expected, got string"),
    ('{tcp = "127.0.0.1:1", expect = 200}', "field 'check.expect': only for an http check"),
    ('{exec = {}}', "field 'check.exec': empty argv table"),
    ('{tcp = "127.0.0.1:1", interval_ms = 0}', "field 'check.interval_ms': out of range"),
    ('{tcp = "127.0.0.1:1", failures = 1.5}', "field 'check.failures': integer expected, got number"),
    ('{tcp = "127.0.0.1:1", action = "reboot"}',
     "field 'check.action': 'restart' or 'event' expected, got 'reboot'"),
    ('{tcp = "127.0.0.1:1", port = 1}', "field 'check': unknown option 'port'"),
])
def test_bad_check_options_name_the_field(daemon, check, message):
    r = daemon.client(protocol=2, decode_responses=True)
    err = r.eval('local ok, err = pcall(saker.supervise, {name = "x", cmd = "true", check = %s}); '
                 'return {ok and 1 or 0, tostring(err)}' % check, 0)
    assert err == [0, "bad argument #1 to 'supervise' (%s)" % message]
    assert r.execute_command("PROC", "LIST") == []


def test_supervising_again_replaces_or_removes_the_check(make_daemon):
    d = make_daemon()
    r = d.client(protocol=2, decode_responses=True)
    ev = health_events(d)
    spec = ('return saker.supervise{name = "p", cmd = "exec sleep 300", startsecs = 0.1%s}')
    r.eval(spec % ', check = {tcp = "127.0.0.1:" .. ARGV[1], interval_ms = 100, failures = 1, '
           'action = "event"}', 0, free_port())
    assert ev.wait_health("p", "unhealthy")["from_health"] == "unknown"
    # A plugin reload supervising it again with another check: the new one runs at once.
    r.eval(spec % ', check = {tcp = "127.0.0.1:" .. ARGV[1], interval_ms = 100}', 0, d.port)
    healthy = ev.wait_health("p", "healthy")
    assert (healthy["from_health"], healthy["check"]) == ("unknown", "tcp 127.0.0.1:%d" % d.port)
    s = status(r, "p")
    assert (s["starts"], s["check_action"]) == ("1", "restart")
    r.eval(spec % "", 0)
    assert "health" not in status(r, "p")
    assert "health" not in r.info("processes")["proc_p"]
