"""Reloading the configuration (SIGHUP, CONFIG RELOAD), the systemd watchdog
and notifications, and the unit and logrotate files of conf/."""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

import redis

from helpers import sakerd_env, ROOT, log_line_time, require_tool, wait_for
from test_procs import Events as ProcessEvents


class Events(ProcessEvents):
    """A subscriber on `events`, keeping every event (not only process_state) in order."""

    def poll(self, timeout=0.1):
        for msg in iter(lambda: self.ps.get_message(timeout=timeout), None):
            timeout = 0
            if msg["type"] == "message":
                self.events.append(json.loads(msg["data"]))
        return self.events

    def wait_for(self, type, timeout=15.0):
        """Every event up to and including the first of `type`; consumed."""
        def found():
            self.poll()
            for i, e in enumerate(self.events):
                if e["type"] == type:
                    got, self.events = self.events[:i + 1], self.events[i + 1:]
                    return got
            return None
        return wait_for(found, timeout, "a %s event" % type)


def strip(events, *types):
    """The events of the given types without their time stamps."""
    return [{k: v for k, v in e.items() if k != "ts"} for e in events if e["type"] in types]


def status(r, name):
    fields = r.execute_command("PROC", "STATUS", name)
    return dict(zip(fields[::2], fields[1::2]))


def program_pid(r, name):
    fields = status(r, name)
    return fields["state"], int(fields["pid"])


def wait_running(r, name):
    return wait_for(lambda: program_pid(r, name)[0] == "running" and program_pid(r, name)[1],
                    what="%s running" % name)


PLUGIN_V1 = """saker.log("notice", "plugin p loaded: v1")
saker.command("hi", function() return "v1" end)
saker.supervise{name = "keep", cmd = "exec sleep 300", startsecs = 0.1}
saker.supervise{name = "change", cmd = "exec sleep 300", startsecs = 0.1}
"""

PLUGIN_V2 = """saker.log("notice", "plugin p loaded: v2")
saker.command("hi", function() return "v2" end)
saker.supervise{name = "keep", cmd = "exec sleep 300", startsecs = 0.1, stop_timeout_ms = 3000}
saker.supervise{name = "change", cmd = "exec sleep 301", startsecs = 0.1}
"""

OTHER = 'saker.log("notice", "plugin q loaded")\nsaker.command("q", function() return "q" end)\n'


def plugin_daemon(make_daemon, tmp_path, config=""):
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "p.lua").write_text(PLUGIN_V1)
    (plugins / "q.lua").write_text(OTHER)
    d = make_daemon("scripts-dir %s\n%s" % (plugins, config))
    return d, plugins


def append(d, text):
    with open(d.conf, "a") as f:
        f.write(text)


def line_of(d, text):
    """"<config file>:<line>" of the line that starts with text."""
    with open(d.conf) as f:
        for n, line in enumerate(f, 1):
            if line.startswith(text):
                return "%s:%d" % (d.conf, n)
    raise AssertionError("no line %r in %s" % (text, d.conf))


# ---- SIGHUP ---------------------------------------------------------------------------------

def test_sighup_applies_directives_plugins_and_users_and_keeps_programs_running(
        make_daemon, tmp_path):
    d, plugins = plugin_daemon(make_daemon, tmp_path)
    r = d.client(protocol=2, decode_responses=True)
    keep = wait_running(r, "keep")
    change = wait_running(r, "change")
    assert r.execute_command("HI") == "v1"
    ev = Events(d)
    append(d, "loglevel verbose\nuser alice on >secret ~* &* +@all\n")
    (plugins / "p.lua").write_text(PLUGIN_V2)
    os.kill(d.pid, signal.SIGHUP)
    events = ev.wait_for("config_reloaded")
    assert strip(events, "config_changed", "config_reloaded") == [
        {"type": "config_changed", "name": "loglevel", "old": "notice", "new": "verbose"},
        {"type": "config_reloaded", "file": d.conf,
         "applied": ["loglevel changed from 'notice' to 'verbose'",
                     "user alice added",
                     "plugin p reloaded from %s" % (plugins / "p.lua"),
                     "process change restarted: its command changed"],
         "warnings": []}]
    # Applied: the directive, the plugin's new version, the new user.
    assert r.config_get("loglevel") == {"loglevel": "verbose"}
    assert r.execute_command("HI") == "v2"
    alice = redis.Redis(port=d.port, username="alice", password="secret", protocol=2,
                        decode_responses=True)
    assert alice.acl_whoami() == "alice"
    alice.close()
    # Only the plugin whose file changed was loaded again.
    log = d.log()
    assert log.count("plugin q loaded") == 1 and log.count("plugin p loaded: v2") == 1
    assert r.execute_command("Q") == "q"
    # Programs keep running; only the one whose command changed restarts.
    assert program_pid(r, "keep") == ("running", keep)
    assert status(r, "keep")["stop_timeout_ms"] == "3000"
    new_change = wait_running(r, "change")
    assert new_change != change
    assert status(r, "change")["cmd"] == "/bin/sh -c exec sleep 301"
    assert "Received SIGHUP, reloading the configuration" in log
    assert d.stop() == 0


def test_sighup_with_a_broken_file_keeps_the_running_config_and_logs_every_problem(
        make_daemon, tmp_path):
    d, plugins = plugin_daemon(make_daemon, tmp_path)
    r = d.client(protocol=2, decode_responses=True)
    keep = wait_running(r, "keep")
    ev = Events(d)
    append(d, "loglevel debug\nbogus-directive 1\nhz abc\nuser bob on >x bogusrule\n")
    (plugins / "p.lua").write_text('saker.command("hi", function() return "v2" end\n')
    os.kill(d.pid, signal.SIGHUP)
    events = ev.wait_for("config_reload_failed")
    # Exactly what --test-config finds in the same files.
    checked = subprocess.run([sys.executable, "-m", "sakerd", "--test-config", "-c", d.conf],
                             env=sakerd_env(), capture_output=True,
                             text=True, timeout=30)
    assert checked.returncode == 1
    expected = checked.stderr.splitlines()[:-1]
    assert expected == [
        "%s: Bad directive or wrong number of arguments: 'bogus-directive'" %
        line_of(d, "bogus-directive"),
        "%s: 'hz abc' argument couldn't be parsed into an integer" % line_of(d, "hz abc"),
        "%s: Error in user declaration 'bogusrule': Syntax error" % line_of(d, "user bob"),
        "%s:2: ')' expected (to close '(' at line 1) near <eof>" % (plugins / "p.lua"),
    ]
    assert strip(events, "config_reload_failed", "config_changed") == [
        {"type": "config_reload_failed", "file": d.conf, "problems": expected}]
    log = d.log()
    assert "Can't reload the configuration, the running one stays: 4 problems" in log
    for problem in expected:
        assert "] %s\n" % problem in log
    # The old configuration stays in force, plugins included.
    assert r.config_get("loglevel") == {"loglevel": "notice"}
    assert r.config_get("hz") == {"hz": "10"}
    assert r.execute_command("HI") == "v1"
    assert r.acl_users() == ["admin", "default", "fleet"]
    assert program_pid(r, "keep") == ("running", keep)
    assert d.stop() == 0


def test_sighup_during_a_busy_script_reloads_once_the_script_ended(make_daemon):
    d = make_daemon("lua-time-limit 200\n")
    stuck = d.raw()
    stuck.send(b"EVAL \"while true do end\" 0\r\n")
    wait_for(lambda: _busy(d), what="BUSY")
    append(d, "hz 20\n")
    os.kill(d.pid, signal.SIGHUP)
    wait_for(lambda: "A script is running: the reload waits until it ends" in d.log(),
             what="the deferral")
    assert "Configuration reloaded" not in d.log()
    assert d.raw().call("SCRIPT", "KILL") == b"+OK\r\n"
    assert stuck.read_reply()[0] == "error"
    r = d.client(protocol=2, decode_responses=True)
    wait_for(lambda: r.config_get("hz") == {"hz": "20"}, what="the reload")
    assert d.log().count("Configuration reloaded") == 1


# ---- CONFIG RELOAD --------------------------------------------------------------------------

def test_config_reload_replies_with_what_changed_or_every_problem(make_daemon, tmp_path):
    d, plugins = plugin_daemon(make_daemon, tmp_path, "user bob on >pw ~* &* +@all\n")
    r = d.raw()
    r.call("PING")
    assert r.call("CONFIG", "RELOAD") == b"*0\r\n"       # nothing changed
    bob = redis.Redis(port=d.port, username="bob", password="pw", protocol=2)
    assert bob.ping()
    # bob's line removed, a directive that needs a restart, a live one.
    with open(d.conf) as f:
        text = f.read().replace("user bob on >pw ~* &* +@all\n", "")
    with open(d.conf, "w") as f:
        f.write(text + "port %d\ntimeout 300\n" % (d.port + 1))
    (plugins / "q.lua").unlink()
    lines = [b"timeout changed from '0' to '300'",
             b"user bob removed (its clients are disconnected)",
             b"plugin q unloaded (its file is gone)",
             b"%s: port '%d' needs a restart, the running value '%d' stays" % (
                 line_of(d, "port %d" % (d.port + 1)).encode(), d.port + 1, d.port)]
    assert r.call("CONFIG", "RELOAD") == b"*4\r\n" + b"".join(
        b"$%d\r\n%s\r\n" % (len(x), x) for x in lines)
    assert r.call("CONFIG", "GET", "port") == b"*2\r\n$4\r\nport\r\n$%d\r\n%d\r\n" % (
        len(str(d.port)), d.port)
    assert r.call("Q").startswith(b"-ERR unknown command 'Q'")
    wait_for(lambda: not _alive(bob), what="bob's client to be disconnected")
    # A broken file: an error naming every problem; nothing changes.
    append(d, "timeout -1\nmaxclients many\n")
    assert r.call("CONFIG", "RELOAD") == (
        "-ERR CONFIG RELOAD refused, the running configuration is unchanged: "
        "%s: 'timeout -1' argument must be between 0 and 2147483647 inclusive; "
        "%s: 'maxclients many' argument couldn't be parsed into an integer\r\n" % (
            line_of(d, "timeout -1"), line_of(d, "maxclients many"))).encode()
    assert r.call("CONFIG", "GET", "timeout") == b"*2\r\n$7\r\ntimeout\r\n$3\r\n300\r\n"


def _alive(client):
    try:
        client.ping()
        return True
    except redis.ConnectionError:
        return False


def test_config_reload_is_admin_noscript_and_exec(make_daemon):
    d = make_daemon()
    r = d.raw()
    assert (b"*10\r\n$13\r\nconfig|reload\r\n:2\r\n"
        b"*4\r\n+admin\r\n+noscript\r\n+loading\r\n+stale\r\n:0\r\n:0\r\n:0\r\n"
        b"*4\r\n+@admin\r\n+@slow\r\n+@dangerous\r\n+@exec\r\n*0\r\n*0\r\n*0\r\n"
            ) in r.call("COMMAND", "INFO", "config")
    assert r.call("EVAL", "return redis.call('config', 'reload')", 0).startswith(
        b"-ERR This Redis command is not allowed from script")


def test_a_reload_without_a_config_file_is_refused(tmp_path):
    from helpers import free_port
    port = free_port()
    env = sakerd_env()
    proc = subprocess.Popen([sys.executable, "-m", "sakerd", "--port", str(port),
                             "--unixsocket", "", "--user", "default", "on", "nopass", "~*",
                             "&*", "+@all"], cwd=str(tmp_path), env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        r = redis.Redis(port=port, protocol=2, decode_responses=True)
        wait_for(lambda: _alive(r), what="sakerd to start")
        try:
            r.execute_command("CONFIG", "RELOAD")
            raise AssertionError("CONFIG RELOAD succeeded")
        except redis.ResponseError as e:
            assert str(e) == ("CONFIG RELOAD refused, the running configuration is unchanged: "
                              "The server is running without a config file")
        r.close()
    finally:
        proc.terminate()
        assert proc.wait(60) == 0


# ---- systemd --------------------------------------------------------------------------------

class NotifySocket:
    """The datagram socket systemd would listen on: (monotonic time, message) pairs."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.2)
        self.messages = []
        self.lock = threading.Lock()
        self.running = True
        self.thread = threading.Thread(target=self._receive, daemon=True)
        self.thread.start()

    def _receive(self):
        while self.running:
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            with self.lock:
                self.messages.append((time.monotonic(), data.decode()))

    def pings(self, start=0.0, end=float("inf")):
        with self.lock:
            return [t for t, m in self.messages if m == "WATCHDOG=1\n" and start <= t <= end]

    def others(self):
        with self.lock:
            return [m for _, m in self.messages if m != "WATCHDOG=1\n"]

    def close(self):
        self.running = False
        self.thread.join()
        self.sock.close()


def logged_at(d, text):
    """time.monotonic() of the daemon's first log line containing text."""
    line = next(l for l in d.log().splitlines() if text in l)
    return log_line_time(line) - (time.time() - time.monotonic())


def max_gap(times, start, end):
    points = [start] + times + [end]
    return max(b - a for a, b in zip(points, points[1:]))


def test_watchdog_pings_every_half_interval_and_stops_for_a_stuck_script(make_daemon, tmp_path):
    sock = NotifySocket(tmp_path / "notify.sock")
    try:
        d = make_daemon("supervised systemd\nlua-time-limit 1000\n",
                        env={"NOTIFY_SOCKET": str(tmp_path / "notify.sock"),
                             "WATCHDOG_USEC": "400000"})
        r = d.client(protocol=2, decode_responses=True)
        wait_for(lambda: sock.pings(), what="a first WATCHDOG=1")
        # Idle: a ping every 200 ms (half of WATCHDOG_USEC), never a gap
        # that would make systemd act (400 ms).
        start = time.monotonic()
        time.sleep(1.5)
        idle = sock.pings(start, time.monotonic())
        assert max_gap(idle, start, time.monotonic()) < 0.4, idle
        assert len(idle) >= 5
        gaps = [b - a for a, b in zip(idle, idle[1:])]
        assert sorted(gaps)[len(gaps) // 2] >= 0.15     # half the interval, not faster
        # Under load: clients hammering, and scripts running within
        # lua-time-limit for longer than the watchdog's interval (the pings
        # then come from the Lua hook).
        stop = threading.Event()

        def hammer():
            c = d.client(protocol=2)
            while not stop.is_set():
                p = c.pipeline(transaction=False)
                for i in range(200):
                    p.set("k%d" % i, "v")
                p.execute(raise_on_error=False)

        threads = [threading.Thread(target=hammer) for _ in range(3)]
        for t in threads:
            t.start()
        start = time.monotonic()
        for _ in range(2):
            assert r.eval("local t = saker.time() while saker.time() - t < 0.6 do end return 1",
                          0) == 1
        time.sleep(0.3)
        stop.set()
        for t in threads:
            t.join()
        loaded = sock.pings(start, time.monotonic())
        assert max_gap(loaded, start, time.monotonic()) < 0.4, loaded
        # A script stuck past lua-time-limit: no pings until it is killed.
        stuck = d.raw()
        stuck.send(b"EVAL \"while true do end\" 0\r\n")
        wait_for(lambda: _busy(d), what="BUSY")
        time.sleep(1.2)
        killed = time.monotonic()
        assert d.raw().call("SCRIPT", "KILL") == b"+OK\r\n"
        assert stuck.read_reply()[0] == "error"
        # When the script crossed lua-time-limit, by the daemon's own log
        # line: the test's send time is earlier by however long a loaded
        # machine took to start the script.
        crossed = logged_at(d, "Slow script detected")
        assert sock.pings(crossed + 0.25, killed) == []
        assert sock.pings(crossed - 0.5, crossed)       # within the limit: still pinging
        wait_for(lambda: sock.pings(killed), what="the pings to resume")
    finally:
        sock.close()


def _busy(d):
    return d.raw().call("PING").startswith(b"-BUSY")


def test_status_ready_and_reloading_notifications(make_daemon, tmp_path):
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "p.lua").write_text(
        'saker.every(60000, function() end)\n'
        'saker.supervise{name = "svc", cmd = "exec sleep 300", startsecs = 0}\n')
    sock = NotifySocket(tmp_path / "notify.sock")
    try:
        d = make_daemon("supervised systemd\nscripts-dir %s\n" % plugins,
                        env={"NOTIFY_SOCKET": str(tmp_path / "notify.sock")})
        wait_for(lambda: sock.others(), what="READY=1")
        assert sock.others()[0] == "READY=1\nSTATUS=Ready: 0 clients, 1 of 1 program running, " \
                                   "1 task\n"
        r = d.client(protocol=2, decode_responses=True)
        r.ping()
        wait_for(lambda: "STATUS=Ready: 1 client, 1 of 1 program running, 1 task\n" in
                 sock.others(), what="a STATUS= with the client")
        before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        append(d, "hz 20\n")
        os.kill(d.pid, signal.SIGHUP)
        wait_for(lambda: sock.others()[-1].startswith("READY=1"), what="READY=1 after the reload")
        reloading, ready = sock.others()[-2:]
        m = re.fullmatch(r"RELOADING=1\nMONOTONIC_USEC=(\d+)\nSTATUS=Reloading the "
                         r"configuration\n", reloading)
        assert m and before <= int(m.group(1)) <= time.clock_gettime_ns(
            time.CLOCK_MONOTONIC) // 1000
        assert ready == "READY=1\nSTATUS=Ready: 1 client, 1 of 1 program running, 1 task\n"
        # A refused reload ends with READY=1 too, and says so.
        append(d, "hz abc\n")
        os.kill(d.pid, signal.SIGHUP)
        wait_for(lambda: sock.others()[-1].startswith("READY=1") and
                 len(sock.others()) >= 6, what="READY=1 after the refused reload")
        assert sock.others()[-1] == "READY=1\nSTATUS=Reload refused (1 problem), running on " \
                                    "the previous configuration\n"
        assert r.config_get("hz") == {"hz": "20"}
    finally:
        sock.close()


# ---- the files of conf/ ---------------------------------------------------------------------

UNIT = os.path.join(ROOT, "conf", "sakerd.service")
LOGROTATE = os.path.join(ROOT, "conf", "sakerd.logrotate")


def unit_settings():
    out = {}
    with open(UNIT) as f:
        for line in f:
            if "=" in line and not line.startswith("#"):
                k, v = line.rstrip("\n").split("=", 1)
                out.setdefault(k, []).append(v)
    return out


def test_systemd_analyze_verify_accepts_the_unit(tmp_path):
    analyze = require_tool("systemd-analyze")
    # verify wants the programs of Exec*= to exist: the unit names the
    # packaged /usr/bin/sakerd; here sakerd is wherever pip put it.
    sakerd = require_tool("sakerd")
    with open(UNIT) as f:
        text = f.read()
    assert text.count("/usr/bin/sakerd ") == 2
    unit = tmp_path / "sakerd.service"
    unit.write_text(text.replace("/usr/bin/sakerd ", sakerd + " "))
    out = subprocess.run([analyze, "verify", "--man=no", str(unit)], capture_output=True,
                         text=True, timeout=60)
    assert (out.returncode, out.stdout, out.stderr) == (0, "", "")
    s = unit_settings()
    assert s["Type"] == ["notify"] and s["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert s["RuntimeDirectory"] == ["sakerd"] and s["KillMode"] == ["mixed"]
    assert all("--supervised systemd --daemonize no" in v for v in s["ExecStart"])
    # Nothing that would take from supervised programs what root's services need.
    for option in ("NoNewPrivileges", "ProtectSystem", "PrivateTmp", "DynamicUser",
                   "PrivateUsers", "MemoryDenyWriteExecute", "User"):
        assert option not in s


def test_logrotate_accepts_the_file_and_its_rotation_reopens_the_log(make_daemon, tmp_path):
    logrotate = require_tool("logrotate")
    out = subprocess.run([logrotate, "-d", "-s", str(tmp_path / "state"), LOGROTATE],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert "error" not in (out.stdout + out.stderr).lower()
    with open(LOGROTATE) as f:
        text = f.read()
    assert "copytruncate" not in re.sub(r"#.*", "", text)
    # The same stanza for a test daemon's log: rotated, and sakerd writes
    # to the new file at once.
    d = make_daemon()
    body = text.split("/var/log/sakerd/sakerd.log", 1)[1]
    body = re.sub(r"postrotate.*endscript", "postrotate\n        kill -HUP %d\n    endscript" %
                  d.pid, body, flags=re.S)
    body = body.replace("create 0640 root adm", "create 0640 root root")
    conf = tmp_path / "rotate.conf"
    conf.write_text(d.logfile + body)
    out = subprocess.run([logrotate, "-f", "-s", str(tmp_path / "state"), str(conf)],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    wait_for(lambda: "Received SIGHUP" in open(d.logfile + ".1").read(), what="the HUP")
    wait_for(lambda: "Configuration reloaded" in d.log(), what="a line in the new log file")
    assert oct(os.stat(d.logfile).st_mode & 0o777) == "0o640"


# ---- --test-config and the unit's assumptions -----------------------------------------------

def run_test_config(conf, env=None):
    return subprocess.run([sys.executable, "-m", "sakerd", "--test-config", "-c", str(conf)],
                          env=sakerd_env(**(env or {})),
                          capture_output=True, text=True, timeout=30)


def test_test_config_checks_the_directories_and_supervision_the_unit_assumes(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    conf = tmp_path / "s.conf"
    conf.write_text('unixsocket ""\npidfile %s/s.pid\n' % shared)
    out = run_test_config(conf)
    assert out.returncode == 1
    assert out.stderr.splitlines() == [
        "%s:2: pidfile: refusing to write in an unsafe directory: directory %s is "
        "world-writable without the sticky bit (mode 0777)" % (conf, shared),
        "configuration has 1 problem"]
    # Under systemd (Type=notify), sakerd must say it is ready.
    conf.write_text('unixsocket ""\n')
    assert run_test_config(conf).returncode == 0
    out = run_test_config(conf, {"NOTIFY_SOCKET": str(tmp_path / "n.sock")})
    assert out.stderr.splitlines() == [
        "(defaults): supervised no: started by systemd, which waits for READY=1 "
        "(Type=notify): use supervised systemd", "configuration has 1 problem"]
    conf.write_text('unixsocket ""\nsupervised systemd\n')
    assert run_test_config(conf, {"NOTIFY_SOCKET": str(tmp_path / "n.sock")}).stdout == \
        "configuration OK\n"
