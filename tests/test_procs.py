"""saker.exec, reaping, supervision and PROC (SPEC §7.3, §7.4, §9.5).

Every process function is driven from Lua through EVAL, as a plugin would
call it; `pair` returns a (value, message) result as a two-element array.
"""

import json
import os
import re
import signal
import subprocess
import threading
import time

import pytest

from helpers import require_tool, wait_for

PAIR = "local a, b = %s; return {a or false, b or false}"


def pair(r, call, *args):
    """Run `call` (a Lua expression returning v, err) in EVAL; [v, err] with nil -> None."""
    return r.eval(PAIR % call, 0, *args)


def proc_stat(pid):
    """(state, ppid, pgid, session, comm) from /proc, or None when gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            data = f.read()
    except OSError:
        return None
    comm = data[data.index("(") + 1:data.rindex(")")]
    fields = data[data.rindex(")") + 2:].split()
    return fields[0], int(fields[1]), int(fields[2]), int(fields[3]), comm


def children_of(pid):
    """{child pid: state} of pid's children, read from /proc."""
    out = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = proc_stat(int(entry))
            if st is not None and st[1] == pid:
                out[int(entry)] = st[0]
    return out


def process_group(pgid):
    """Pids of the live members of a process group, from /proc."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = proc_stat(int(entry))
            if st is not None and st[2] == pgid and st[0] != "Z":
                out.append(int(entry))
    return sorted(out)


def kill_quietly(pid, sig=signal.SIGKILL):
    try:
        os.kill(pid, sig)
    except OSError:
        pass


class Events:
    """A subscriber on the `events` channel collecting process_state events."""

    def __init__(self, daemon):
        self.ps = daemon.client(protocol=2, decode_responses=True).pubsub()
        self.ps.subscribe("events")
        wait_for(lambda: self.ps.get_message(timeout=1), what="subscribe confirmation")
        self.events = []
        self.cursor = {}     # name -> index of the first event wait_for has not consumed

    def poll(self, timeout=0.1):
        msg = self.ps.get_message(timeout=timeout)
        while msg is not None:
            if msg["type"] == "message":
                self.collect(json.loads(msg["data"]))
            msg = self.ps.get_message(timeout=0)
        return self.events

    def collect(self, ev):
        if ev["type"] == "process_state":
            self.events.append(ev)

    def wait_for(self, name, to_state, timeout=30.0):
        """The next event of `name` entering `to_state`, after those already waited for."""
        def found():
            self.poll()
            for i in range(self.cursor.get(name, 0), len(self.events)):
                e = self.events[i]
                if e["name"] == name and e["to_state"] == to_state:
                    self.cursor[name] = i + 1
                    return e
            return None
        return wait_for(found, timeout, "%s -> %s" % (name, to_state))

    def transitions(self, name):
        return [(e["from_state"], e["to_state"]) for e in self.poll() if e["name"] == name]


# ---- exec ---------------------------------------------------------------------------------------

def test_exec_reports_exit_status_signal_and_output_file(make_daemon):
    d = make_daemon()
    r = d.client(protocol=2, decode_responses=True)
    assert pair(r, 'saker.exec("exit 3")') == [
        None, "exited with status 3 (output: %s/exec-exit.log)" % d.dir]
    assert pair(r, 'saker.exec({"sh", "-c", "kill -9 $$"})') == [
        None, "killed by signal 9 (SIGKILL) (output: %s/exec-sh.log)" % d.dir]
    assert pair(r, 'saker.exec({"/nonexistent/prog"})') == [
        None, "can't execute /nonexistent/prog: No such file or directory"]
    assert pair(r, 'saker.exec("true", {cwd = "/nonexistent"})') == [
        None, "can't change directory to /nonexistent: No such file or directory"]
    pid, pidfile = pair(r, 'saker.exec("exec sleep 30", {wait_ms = 50})')
    try:
        assert pidfile is None
        state, ppid, pgid, session, comm = proc_stat(pid)
        assert (ppid, pgid, session, comm) == (d.pid, pid, pid, "sleep")
    finally:
        kill_quietly(pid)


def test_exec_child_gets_cwd_env_files_and_nothing_else(make_daemon, tmp_path):
    d = make_daemon()
    r = d.client(protocol=2, decode_responses=True)
    out, err = tmp_path / "out.txt", tmp_path / "err.txt"
    script = ("ls /proc/$$/fd; pwd; echo $FOO; grep SigIgn /proc/$$/status; "
              "echo oops >&2; exit 0")
    # wait_ms: a ceiling (exec answers as soon as the child exits); the
    # default 100 ms can pass before a loaded machine has run the shell.
    res = pair(r, 'saker.exec({"sh", "-c", ARGV[1]}, {cwd = "/usr", env = {FOO = "bar"}, '
                  'stdout = ARGV[2], stderr = ARGV[3], wait_ms = 30000})', script, str(out),
               str(err))
    assert res == [None, "exited with status 0 (stdout: %s, stderr: %s)" % (out, err)]
    lines = out.read_text().splitlines()
    # Only stdin, stdout and stderr: none of sakerd's sockets leak into the child.
    assert lines[:5] == ["0", "1", "2", "/usr", "bar"]
    # sakerd ignores SIGPIPE; the child must not inherit that.
    sigign = int(lines[5].split()[1], 16)
    assert not sigign & (1 << (signal.SIGPIPE - 1))
    assert err.read_text() == "oops\n"


def test_exec_returns_the_daemon_pid_from_its_pidfile(make_daemon, tmp_path):
    d = make_daemon()
    r = d.client(protocol=2, decode_responses=True)
    pidfile = tmp_path / "daemon.pid"
    # A leftover pidfile naming a live process must not be taken for the new one.
    pidfile.write_text("%d\n" % d.pid)
    # The daemonizing shape: the first process forks the real one, which
    # writes the pidfile, and exits 0.
    pid, path = pair(r, 'saker.exec("(sleep 30 & echo $! > ' + str(pidfile) + ')", '
                        '{pidfile = ARGV[1], wait_ms = 2000})', str(pidfile))
    try:
        assert path == str(pidfile)
        assert pid == int(pidfile.read_text())
        # Its parent exited; as a child subreaper sakerd adopted it. (The
        # pidfile may be written before the background shell execs sleep.)
        wait_for(lambda: proc_stat(pid)[4] == "sleep", what="exec of sleep")
        # The subshell writes the pidfile before it exits: sakerd adopts the
        # sleep once it has.
        wait_for(lambda: proc_stat(pid)[1] == d.pid, what="the sleep adopted by sakerd")
    finally:
        kill_quietly(pid)
    wait_for(lambda: pid not in children_of(d.pid), what="the daemon to be reaped")


def test_exec_keeps_serving_other_clients_during_wait_ms(make_daemon):
    d = make_daemon()
    r = d.client(protocol=2, decode_responses=True)
    other = d.client(protocol=2)
    result = {}

    def run_exec():
        t0 = time.monotonic()
        result["pid"] = pair(r, 'saker.exec("exec sleep 30", {wait_ms = 3000})')[0]
        result["elapsed"] = time.monotonic() - t0

    th = threading.Thread(target=run_exec)
    th.start()
    latencies = []
    while th.is_alive():
        t0 = time.monotonic()
        assert other.ping() is True
        latencies.append(time.monotonic() - t0)
    th.join()
    kill_quietly(result["pid"])
    assert result["elapsed"] >= 3.0
    # Other clients were answered all along, not after the wait: no PING
    # waited for half of it (a loaded machine stalls one for a fraction of
    # a second, not for 1.5 s), and they kept coming.
    assert len(latencies) > 100, len(latencies)
    assert max(latencies) < 1.5, max(latencies)


def test_messages_published_during_exec_wait_arrive_during_it(make_daemon):
    """PUBLISHes served while exec waits are batched (pubsub.Fanout); the
    batch goes out with the other replies of the waiting loop, not when
    the exec returns."""
    d = make_daemon()
    r = d.client(protocol=2, decode_responses=True)
    publisher = d.client(protocol=2)
    sub = d.client(protocol=2).pubsub()
    sub.subscribe("during")
    assert sub.get_message(timeout=30)["type"] == "subscribe"
    result = {}

    def run_exec():
        result["pid"] = pair(r, 'saker.exec("exec sleep 30", {wait_ms = 30000})')[0]
        result["done"] = time.monotonic()

    th = threading.Thread(target=run_exec)
    th.start()
    try:
        # exec is waiting once PUBLISH is answered while EVAL still runs.
        # (wait_ms is long so that a loaded machine still finds it waiting;
        # the sleep is killed below, which ends the wait.)
        wait_for(lambda: any(c.get("cmd") == "eval" for c in publisher.client_list()),
                 30, "the EVAL to be waiting in exec")
        assert publisher.publish("during", "m1") == 1
        msg = sub.get_message(timeout=20)
        got = time.monotonic()
        assert msg is not None and msg["data"] == b"m1", msg
        assert th.is_alive(), "the message came only after exec returned"
    finally:
        for pid in children_of(d.pid):
            if (proc_stat(pid) or "?????")[4] == "sleep":
                kill_quietly(pid)
        th.join()
        if result.get("pid"):       # None: exec reported the killed sleep's exit
            kill_quietly(result["pid"])
        sub.close()
    assert got < result["done"]


def test_exec_disabled_by_configuration(make_daemon):
    d = make_daemon("enable-exec no\n")
    r = d.client(protocol=2, decode_responses=True)
    msg = "exec disabled by configuration (enable-exec no)"
    assert pair(r, 'saker.exec("true")') == [None, msg]
    assert pair(r, 'saker.supervise{name = "x", cmd = "sleep 1"}') == [None, msg]
    assert r.execute_command("PROC", "LIST") == []


# ---- supervision ----------------------------------------------------------------------------

def test_crashing_program_backs_off_exponentially_then_goes_fatal(make_daemon):
    d = make_daemon()
    r = d.client(protocol=2, decode_responses=True)
    ev = Events(d)
    assert r.eval('return saker.supervise{name = "crash", cmd = "exit 7", backoff_ms = 100, '
                  'max_retries = 4}', 0) == 1
    fatal = ev.wait_for("crash", "fatal")
    assert (fatal["from_state"], fatal["exit_status"], fatal["retries"]) == ("starting", 7, 4)
    events = [e for e in ev.poll() if e["name"] == "crash"]
    assert [(e["from_state"], e["to_state"]) for e in events] == \
        [("stopped", "starting")] + [("starting", "backoff"), ("backoff", "starting")] * 4 + \
        [("starting", "fatal")]
    # The delay announced with each backoff, and the one measured until the
    # next start, grow exponentially: backoff_ms * 2^n * [1, 1.25).
    announced = [e["delay_ms"] for e in events if e["to_state"] == "backoff"]
    measured = [(b["ts"] - a["ts"]) * 1000 for a, b in zip(events, events[1:])
                if a["to_state"] == "backoff"]
    # A restart never comes early; how late it may come is the machine's:
    # a loaded 2-core CI machine delayed one by 3.1 s, so the ceiling is wide.
    for n, (a, m) in enumerate(zip(announced, measured)):
        assert 100 * 2 ** n <= a < 125 * 2 ** n
        assert a - 5 <= m < a + 10000
    assert r.execute_command("PROC", "LIST") == [
        "name=crash state=fatal pid=0 uptime=0 starts=5 retries=4 last_exit=7 cmd=/bin/sh -c exit 7"]
    info = r.info("processes")
    assert (info["supervised"], info["fatal"], info["running"], info["zombies"]) == (1, 1, 0, 0)
    assert info["proc_crash"] == {"state": "fatal", "pid": 0, "uptime": 0, "starts": 5,
                                  "retries": 4, "last_exit": 7, "cpu_percent": 0.0, "rss": 0}
    # START resets the retries: it fails again from the first delay.
    assert r.execute_command("PROC", "START", "crash") == "OK"
    assert ev.wait_for("crash", "backoff")["retries"] == 1


def test_stop_kills_a_term_ignoring_group_after_timeout_and_it_stays_stopped(make_daemon):
    d = make_daemon()
    r = d.client(protocol=2, decode_responses=True)
    ev = Events(d)
    # The shell and both of its children ignore SIGTERM (SIG_IGN is inherited).
    r.eval('return saker.supervise{name = "stubborn", startsecs = 0.2, backoff_ms = 100, '
           'stop_timeout_ms = 700, cmd = "trap \'\' TERM; sleep 300 & sleep 300 & wait"}', 0)
    running = ev.wait_for("stubborn", "running")
    leader = running["pid"]
    group = wait_for(lambda: len(process_group(leader)) == 3 and process_group(leader),
                       what="the shell and its two children")
    t0 = time.monotonic()
    assert r.execute_command("PROC", "STOP", "stubborn") == "OK"
    stopped = ev.wait_for("stubborn", "stopped")
    elapsed = time.monotonic() - t0
    # Killed after its own stop_timeout_ms (700), not the default 5000: the
    # log says which, and the lower bound that it waited; the upper bound is
    # only a ceiling, as a loaded machine delays the event.
    assert "Process stubborn (pid %d) did not stop within 700 ms: sending SIGKILL" % leader \
        in d.log()
    assert 0.6 <= elapsed < 30, elapsed
    assert stopped["signal"] == "SIGKILL"
    assert ev.transitions("stubborn")[-2:] == [("running", "stopping"), ("stopping", "stopped")]
    # Its children died with it.
    wait_for(lambda: not any(proc_stat(p) for p in group), what="the group to be gone")
    # A manual STOP is never undone by autorestart.
    time.sleep(5)
    assert ev.transitions("stubborn")[-1] == ("stopping", "stopped")
    assert r.execute_command("PROC", "STATUS", "stubborn")[:4] == ["name", "stubborn",
                                                                   "state", "stopped"]
    assert "Process stubborn (pid %d) did not stop within 700 ms: sending SIGKILL" % leader in d.log()


def test_proc_commands(make_daemon, tmp_path):
    d = make_daemon()
    r = d.client(protocol=2, decode_responses=True)
    ev = Events(d)
    pidfile = tmp_path / "web.pid"
    r.eval('return saker.supervise{name = "web", cmd = {"sleep", "300"}, startsecs = 0.1}', 0)
    # A daemonizing program is followed through its pidfile.
    r.eval('return saker.supervise{name = "daemon", pidfile = ARGV[1], startsecs = 0.3, '
           'cmd = "(sleep 300 & echo $! > ' + str(pidfile) + ')"}', 0, str(pidfile))
    web = ev.wait_for("web", "running")["pid"]
    daemon = ev.wait_for("daemon", "running")["pid"]
    assert daemon == int(pidfile.read_text())
    assert proc_stat(daemon)[4] == "sleep"

    cli = require_tool("redis-cli")
    out = subprocess.run([cli, "-p", str(d.port), "PROC", "LIST"], capture_output=True,
                         text=True, check=True).stdout
    assert re.sub(r"uptime=\d+", "uptime=N", out) == (
        "name=web state=running pid=%d uptime=N starts=1 retries=0 last_exit=- cmd=sleep 300\n"
        "name=daemon state=running pid=%d uptime=N starts=1 retries=0 last_exit=- "
        "cmd=/bin/sh -c (sleep 300 & echo $! > %s)\n" % (web, daemon, pidfile))
    status = r.execute_command("PROC", "STATUS", "web")
    fields = dict(zip(status[::2], status[1::2]))
    assert fields["state"] == "running" and fields["pid"] == str(web)
    assert fields["stdout"] == fields["stderr"] == "%s/proc-web.log" % d.dir
    assert (fields["stop_signal"], fields["stop_timeout_ms"]) == ("SIGTERM", "5000")

    def err(*args):
        with pytest.raises(Exception) as e:
            r.execute_command("PROC", *args)
        return str(e.value)

    assert err("STATUS", "nope") == "no supervised process named 'nope'"
    assert err("START", "web") == "process 'web' is already running"
    assert err("SIGNAL", "web", "NOTASIG") == "invalid signal 'NOTASIG'"
    assert err("FOO") == "unknown subcommand 'FOO'. Try PROC HELP."
    assert err("STOP") == "wrong number of arguments for 'proc|stop' command"

    assert r.execute_command("PROC", "SIGNAL", "web", "KILL") == "OK"
    exited = ev.wait_for("web", "backoff")
    assert (exited["from_state"], exited["signal"]) == ("running", "SIGKILL")
    web2 = ev.wait_for("web", "running")["pid"]
    assert web2 != web
    assert r.execute_command("PROC", "RESTART", "web") == "OK"
    wait_for(lambda: ev.transitions("web")[-3:] == [
        ("running", "stopping"), ("stopping", "stopped"), ("stopped", "starting")],
        what="restart")
    assert r.execute_command("PROC", "STOP", "daemon") == "OK"
    ev.wait_for("daemon", "stopped")
    wait_for(lambda: proc_stat(daemon) is None, what="the daemon to be gone")
    # Without autorestart, a program that ran its startsecs and then exited stays exited.
    r.eval('return saker.supervise{name = "once", cmd = "sleep 0.3; exit 4", startsecs = 0.1, '
           'autorestart = false}', 0)
    exited = ev.wait_for("once", "exited")
    assert (exited["from_state"], exited["exit_status"]) == ("running", 4)
    assert r.execute_command("PROC", "STATUS", "once")[:4] == ["name", "once", "state", "exited"]
    help_lines = r.execute_command("PROC", "HELP")
    assert help_lines[0] == "PROC <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"
    assert "SIGNAL <name> <signal>" in help_lines


def test_sigterm_stops_supervised_processes_but_not_execed_ones(make_daemon):
    d = make_daemon()
    r = d.client(protocol=2, decode_responses=True)
    ev = Events(d)
    r.eval('return saker.supervise{name = "svc", cmd = "exec sleep 300", startsecs = 0.1}', 0)
    supervised = ev.wait_for("svc", "running")["pid"]
    plain = pair(r, 'saker.exec("exec sleep 300", {wait_ms = 10})')[0]
    try:
        os.kill(d.pid, signal.SIGTERM)
        assert d.proc.wait(60) == 0
        assert proc_stat(supervised) is None or proc_stat(supervised)[0] == "Z"
        assert proc_stat(plain)[0] != "Z" and proc_stat(plain)[4] == "sleep"
        assert "Stopping 1 supervised process" in d.log()
    finally:
        kill_quietly(plain)


def test_plugin_supervises_at_start_and_a_reload_does_not_undo_stop(make_daemon, tmp_path):
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "services.lua").write_text(
        'saker.supervise{name = "svc", cmd = "exec sleep 300", startsecs = 0.1}\n'
        'saker.command("svc-restart", function() return saker.call("PROC", "RESTART", "svc") end)\n')
    d = make_daemon("scripts-dir %s\n" % plugins)
    r = d.client(protocol=2, decode_responses=True)
    ev = Events(d)
    wait_for(lambda: "state=running" in r.execute_command("PROC", "LIST")[0], what="svc running")
    # A plugin command may drive PROC through saker.call.
    assert r.execute_command("SVC-RESTART") == "OK"
    ev.wait_for("svc", "stopped")
    ev.wait_for("svc", "running")
    assert r.execute_command("PROC", "STOP", "svc") == "OK"
    ev.wait_for("svc", "stopped")
    # Reloading the plugin supervises "svc" again: its settings are updated,
    # its manual STOP stays.
    assert r.execute_command("PLUGIN", "RELOAD", "services") == "OK"
    assert ev.transitions("svc")[-1] == ("stopping", "stopped")
    assert r.execute_command("PROC", "STATUS", "svc")[3] == "stopped"
