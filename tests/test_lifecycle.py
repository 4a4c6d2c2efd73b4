"""The daemon's life: instances (§9.1), accept storms (§9.2), EMFILE, signals,
daemonize, systemd notification, redis-py reconnects (§9.8) and Prometheus's
redis_exporter. Every test runs the real daemon as a subprocess.
"""

import os
import re
import resource
import select
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from helpers import (sakerd_env, OPEN_DEFAULT_USER, ROOT, free_port, log_line_time, require_tool,
                     wait_for)



def raise_nofile(n):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < n:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(n, hard), hard))
    assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] >= n, "cannot raise ulimit -n to %d" % n


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid, "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def process_gone(pid):
    """True once pid has exited (a zombie waiting for init counts as gone)."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] in (b"Z", b"X")
    except FileNotFoundError:
        return True


def warnings_in(log):
    return [l for l in log.splitlines() if "[WARNING]" in l]


def info_field(r, section, name):
    return r.info(section)[name]


# ---- §9.1 one instance per port and pidfile -----------------------------------------

def test_second_instance_on_the_same_port_exits_naming_the_holder(make_daemon, tmp_path):
    pidfile = tmp_path / "first.pid"
    first = make_daemon("pidfile %s\n" % pidfile)
    second = make_daemon(port=first.port, wait=False)
    assert second.proc.wait(60) == 1
    out = second.output()
    assert "127.0.0.1:%d" % first.port in out and "Address already in use" in out, out
    assert "pid %d" % first.pid in out, out
    assert first.client(protocol=2).ping()
    assert pidfile.read_text() == "%d\n" % first.pid


def test_second_instance_with_the_same_pidfile_exits_naming_the_pid(make_daemon, tmp_path):
    pidfile = tmp_path / "shared.pid"
    first = make_daemon("pidfile %s\n" % pidfile)
    second = make_daemon("pidfile %s\n" % pidfile, wait=False)
    assert second.proc.wait(60) == 1
    out = second.output()
    assert str(pidfile) in out and "pid %d" % first.pid in out, out
    assert first.client(protocol=2).ping()
    assert pidfile.read_text() == "%d\n" % first.pid
    # The refused instance bound nothing.
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", second.port), timeout=1).close()


def test_stale_pidfile_after_kill_9_does_not_prevent_a_restart(make_daemon, tmp_path):
    pidfile = tmp_path / "s.pid"
    first = make_daemon("pidfile %s\n" % pidfile)
    first.kill9()
    assert pidfile.read_text() == "%d\n" % first.pid   # left behind
    again = make_daemon("pidfile %s\n" % pidfile, port=first.port)
    assert again.client(protocol=2).ping()
    assert pidfile.read_text() == "%d\n" % again.pid
    assert again.stop() == 0
    assert not pidfile.exists()


# ---- §9.2 accept storms ------------------------------------------------------------------

def test_connect_close_storm_and_burst_leave_the_server_healthy_and_quiet(make_daemon):
    raise_nofile(4500)
    # maxclients sized for the burst: a smaller ulimit -n than the default
    # 10000 needs would make the daemon warn that it lowered maxclients.
    d = make_daemon("maxclients 3000\n")
    addr = ("127.0.0.1", d.port)
    for _ in range(20000):
        s = socket.socket()
        s.connect(addr)
        s.close()
    burst = []
    try:
        for _ in range(2000):
            s = socket.socket()
            s.connect(addr)
            burst.append(s)
        for s in burst:
            s.sendall(b"PING\r\n")
        for s in burst:
            s.settimeout(10)
            assert s.recv(16) == b"+PONG\r\n"
        r = d.client(protocol=2)
        assert info_field(r, "clients", "connected_clients") == 2001
    finally:
        for s in burst:
            s.close()
    wait_for(lambda: info_field(r, "clients", "connected_clients") == 1, what="burst freed")
    stats = r.info("stats")
    assert stats["rejected_connections"] == 0
    assert stats["total_connections_received"] >= 22001
    assert warnings_in(d.log()) == []


def test_out_of_file_descriptors_neither_spins_nor_crashes(make_daemon):
    d = make_daemon()
    r = d.client(protocol=2)
    r.ping()
    # Leave the daemon 40 descriptors: a few are in use already.
    resource.prlimit(d.pid, resource.RLIMIT_NOFILE, (40, 40))
    conns = []
    try:
        for _ in range(60):
            s = socket.create_connection(("127.0.0.1", d.port), timeout=10)
            s.sendall(b"PING\r\n")
            conns.append(s)
        wait_for(lambda: "Too many open files" in d.log(), what="EMFILE warning")
        cpu0, t0 = cpu_seconds(d.pid), time.monotonic()
        time.sleep(3)
        share = (cpu_seconds(d.pid) - cpu0) / (time.monotonic() - t0)
        assert share < 0.10, "sakerd spun at %.0f%% CPU while out of fds" % (share * 100)
        emfile_lines = [l for l in warnings_in(d.log()) if "Too many open files" in l]
        assert 1 <= len(emfile_lines) <= 5, emfile_lines    # rate-limited
        assert r.ping()                                     # existing clients are served
        # Free descriptors: the connections waiting in the backlog are
        # accepted and answered.
        time.sleep(0.5)
        readable = set(select.select(conns, [], [], 0)[0])
        served = [s for s in conns if s in readable]
        waiting = [s for s in conns if s not in readable]
        for s in served:
            assert s.recv(16) == b"+PONG\r\n"
        assert served and waiting
        for s in served:
            s.close()
        for s in waiting:
            s.settimeout(10)
            assert s.recv(16) == b"+PONG\r\n"
    finally:
        for s in conns:
            s.close()
    new = d.raw()
    new.send(b"PING\r\n")
    assert new.read_line() == b"+PONG"


# ---- signals --------------------------------------------------------------------------------

def test_sigterm_exits_0_within_a_second_despite_a_write_blocked_client(make_daemon, tmp_path):
    pidfile = tmp_path / "t.pid"
    d = make_daemon("pidfile %s\n" % pidfile)
    blocked = socket.create_connection(("127.0.0.1", d.port))
    blocked.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    blocked.sendall(b"CONFIG GET *\r\n" * 5000)   # megabytes of replies, never read
    r = d.client(protocol=2)

    def write_blocked():
        # Megabytes queued, and the writable handler waiting on a full socket.
        return any(c["events"] == "rw" and int(c["omem"]) > 1 << 20 for c in r.client_list())
    wait_for(write_blocked, what="a write-blocked client")
    os.kill(d.pid, signal.SIGTERM)
    # A ceiling, not a delay: a client that never reads would hold it forever.
    assert d.proc.wait(60) == 0
    assert not pidfile.exists()
    assert "Received SIGTERM scheduling shutdown..." in d.log()
    # The daemon's own clock (its log), not the test's: from the signal to
    # "ready to exit" took under a second; the process exit after it (freeing
    # megabytes of replies) is what a loaded machine stretches.
    assert shutdown_seconds(d.log()) < 1.0, d.log()
    blocked.close()


def shutdown_seconds(log):
    """Seconds from 'Received SIG... scheduling shutdown' to 'ready to exit' in a log."""
    lines = log.splitlines()
    got = [l for l in lines if "scheduling shutdown..." in l][-1]
    done = [l for l in lines if "is now ready to exit, bye bye..." in l][-1]
    return log_line_time(done) - log_line_time(got)


def test_sigint_exits_0_too(make_daemon):
    d = make_daemon()
    os.kill(d.pid, signal.SIGINT)
    assert d.proc.wait(60) == 0
    assert "Received SIGINT scheduling shutdown..." in d.log()


def test_sighup_reopens_the_log_file_at_once(make_daemon):
    # hz 1: the cron runs once a second, so a prompt reaction proves that
    # the signal woke the loop through its wake-up fd.
    d = make_daemon("hz 1\n")
    r = d.client(protocol=2)
    reactions = []
    for i in range(5):
        os.rename(d.logfile, "%s.%d" % (d.logfile, i))
        start = time.monotonic()
        os.kill(d.pid, signal.SIGHUP)
        wait_for(lambda: os.path.exists(d.logfile), what="a new log file")
        reactions.append(time.monotonic() - start)
        assert "Received SIGHUP" in open("%s.%d" % (d.logfile, i)).read()
    # Reopened at once: a cron-driven reopen (hz 1) would take 0-1 s, so its
    # median of five stays under 0.3 s only 16% of the time; the median
    # (not each one) lets a loaded machine stall two of them.
    assert sorted(reactions)[2] < 0.3, reactions
    r.config_set("loglevel", "verbose")  # logs a NOTICE line
    wait_for(lambda: "CONFIG SET loglevel changed" in d.log(), what="a line in the new file")
    assert r.ping()


# ---- daemonize / systemd -----------------------------------------------------------------------

def test_daemonize_forks_and_the_pidfile_names_the_daemon(tmp_path):
    port = free_port()
    pidfile = tmp_path / "d.pid"
    conf = tmp_path / "d.conf"
    conf.write_text("port %d\ndaemonize yes\npidfile %s\nlogfile %s\n" %
                    (port, pidfile, tmp_path / "d.log"))
    env = sakerd_env()
    parent = subprocess.run([sys.executable, "-m", "sakerd", "-c", str(conf)], env=env,
                            cwd=str(tmp_path), timeout=20, capture_output=True)
    assert parent.returncode == 0, parent.stderr
    pid = int(wait_for(lambda: pidfile.exists() and pidfile.read_text().strip(),
                       what="the pidfile"))
    try:
        r = redis.Redis(port=port, protocol=2, socket_timeout=5,
                        retry=Retry(ExponentialBackoff(cap=0.2, base=0.02), 50),
                        retry_on_error=[redis.ConnectionError])
        assert r.info("server")["process_id"] == pid
        assert pid != parent.returncode and not process_gone(pid)
        r.close()
    finally:
        os.kill(pid, signal.SIGTERM)
        wait_for(lambda: process_gone(pid), what="the daemon to exit")
    wait_for(lambda: not pidfile.exists(), what="pidfile removal")


def test_supervised_systemd_notifies_ready_status_and_stopping(make_daemon, tmp_path):
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(15)
    try:
        d = make_daemon("supervised systemd\n", env={"NOTIFY_SOCKET": path})
        ready = sock.recv(4096).decode()
        assert "READY=1" in ready.split("\n") and "STATUS=" in ready
        os.kill(d.pid, signal.SIGTERM)
        assert d.proc.wait(60) == 0
        # STATUS= updates (clients, programs, tasks) may come before it.
        message = sock.recv(4096).decode()
        while message.startswith("STATUS="):
            message = sock.recv(4096).decode()
        assert message.split("\n")[0] == "STOPPING=1"
    finally:
        sock.close()


# ---- §9.8 redis-py reconnects --------------------------------------------------------------------

def user_client(port, explicit_retry):
    """A redis-py client as a user configures it (RESP3, the redis-py 8 default)."""
    kw = {}
    if explicit_retry:
        kw = dict(retry=Retry(ExponentialBackoff(cap=1.0, base=0.05), retries=10),
                  retry_on_error=[redis.ConnectionError])
    return redis.Redis(port=port, socket_timeout=5, **kw)


@pytest.mark.parametrize("explicit_retry", [False, True], ids=["default-retry", "explicit-retry"])
def test_redis_py_reconnects_after_restart_timeout_and_kill(make_daemon, explicit_retry):
    d = make_daemon()
    r = user_client(d.port, explicit_retry)
    admin = d.client(protocol=2)
    my_id = r.client_id()
    # 1. CLIENT KILL.
    assert admin.client_kill_filter(_id=my_id) == 1
    assert r.ping()
    assert r.client_id() != my_id
    # 2. The server's idle timeout closed the connection.
    admin.config_set("timeout", "1")
    my_id = r.client_id()
    wait_for(lambda: all(c["id"] != str(my_id) for c in admin.client_list()), timeout=10,
             what="the idle timeout")
    assert r.echo("after timeout") == b"after timeout"
    admin.config_set("timeout", "0")
    # 3. The server restarted on the same port.
    admin.close()
    assert d.stop() == 0
    again = make_daemon(port=d.port)
    assert r.echo("after restart") == b"after restart"
    assert r.info("server")["process_id"] == again.pid
    r.close()


def test_redis_py_subscriber_resubscribes_after_client_kill(make_daemon):
    d = make_daemon()
    r = user_client(d.port, True)
    p = r.pubsub()
    p.subscribe("news")
    assert p.get_message(timeout=30)["type"] == "subscribe"
    admin = d.client(protocol=2)
    killed = admin.client_kill_filter(_type="pubsub")
    assert killed == 1
    # The next read notices the closed connection, reconnects, re-subscribes.
    msg = p.get_message(timeout=30)
    while msg is None or msg["type"] != "subscribe":
        msg = p.get_message(timeout=30)
    assert admin.publish("news", "hello") == 1
    msg = p.get_message(timeout=30)
    assert msg["type"] == "message" and msg["data"] == b"hello"
    p.close()


# ---- Prometheus redis_exporter --------------------------------------------------------------------

def scrape(url):
    with urllib.request.urlopen(url, timeout=5) as resp:
        text = resp.read().decode()
    metrics = {}
    for line in text.splitlines():
        m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$", line)
        if m and not m.group(2):
            metrics[m.group(1)] = float(m.group(3))
    return metrics


def test_prometheus_redis_exporter_scrapes_sakerd(make_daemon):
    exporter = require_tool("prometheus-redis-exporter")
    d = make_daemon()
    r = d.client(protocol=2)
    for i in range(25):
        r.echo("x")
    web = free_port()
    proc = subprocess.Popen([exporter, "--redis.addr=redis://127.0.0.1:%d" % d.port,
                             "--web.listen-address=127.0.0.1:%d" % web],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        url = "http://127.0.0.1:%d/metrics" % web

        def try_scrape():
            try:
                return scrape(url)
            except OSError:
                return None
        before = r.info("stats")["total_commands_processed"]
        up_before = r.info("server")["uptime_in_seconds"]
        m = wait_for(try_scrape, what="the exporter")
        after = r.info("server")
        assert m["redis_up"] == 1
        # Our connection plus the exporter's own.
        assert m["redis_connected_clients"] == 2
        assert before < m["redis_commands_processed_total"] <= \
            r.info("stats")["total_commands_processed"]
        # Read by the exporter between our two INFOs (however long a loaded
        # machine made the scrape take).
        assert up_before <= m["redis_uptime_in_seconds"] <= after["uptime_in_seconds"]
    finally:
        proc.terminate()
        proc.wait(10)


def test_low_ulimit_lowers_maxclients_with_a_warning(tmp_path):
    port = free_port()
    conf = tmp_path / "l.conf"
    log = tmp_path / "l.log"
    conf.write_text("port %d\nlogfile %s\nunixsocket \"\"\n%s" % (port, log, OPEN_DEFAULT_USER))
    env = sakerd_env()
    proc = subprocess.Popen([sys.executable, "-m", "sakerd", "-c", str(conf)], env=env,
                            cwd=str(tmp_path), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (100, 100)))
    conns = []
    try:
        r = redis.Redis(port=port, protocol=2, socket_timeout=5,
                        retry=Retry(ExponentialBackoff(cap=0.2, base=0.02), 50),
                        retry_on_error=[redis.ConnectionError])
        assert r.config_get("maxclients") == {"maxclients": "68"}    # 100 - 32 reserved
        assert ("You requested maxclients of 10000 requiring at least 10032 max file "
                "descriptors.") in log.read_text()
        assert "maxclients has been reduced to 68 to compensate for low ulimit." in log.read_text()
        for _ in range(67):          # 67 + redis-py's connection = 68
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.sendall(b"PING\r\n")
            assert s.recv(7) == b"+PONG\r\n"
            conns.append(s)
        extra = socket.create_connection(("127.0.0.1", port), timeout=5)
        assert extra.recv(100) == b"-ERR max number of clients reached\r\n"
        extra.close()
        r.close()
    finally:
        for s in conns:
            s.close()
        proc.terminate()
        assert proc.wait(60) == 0
