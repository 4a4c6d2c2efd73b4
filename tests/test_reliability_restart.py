"""Crash and restart: kill -9 under load, then start again on the same config.

sakerd's pidfile is locked with flock, so the kernel drops the lock when
the process dies however it dies: the leftover file is stale by definition
and the next start takes it over. Supervised programs lead their own
sessions and outlive sakerd; the restarted sakerd must adopt them (by
pidfile, or by the SAKERD_SUPERVISED marker in their environment) instead
of starting second copies, and must still restart them when they die.
"""

import os
import signal
import threading

import pytest

from soak.reliability import wait_for

MARKER = b"SAKERD_SUPERVISED="


def marked_processes(name):
    """Live pids whose environment carries the supervision marker of `name`."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/environ" % entry, "rb") as f:
                env = f.read().split(b"\0")
            with open("/proc/%s/stat" % entry, "rb") as f:
                state = f.read().rsplit(b")", 1)[1].split()[0]
        except OSError:
            continue
        if state != b"Z" and any(e.startswith(MARKER + name.encode() + b"@") for e in env):
            pids.append(int(entry))
    return sorted(pids)


def proc_status(r, name):
    return dict(zip(*[iter(r.execute_command("PROC", "STATUS", name))] * 2))


def running_pid(r, name):
    st = proc_status(r, name)
    return int(st[b"pid"]) if st[b"state"] == b"running" else None


def hammer(client, stop, acked):
    """Load: INCR as fast as one connection goes, until the server vanishes."""
    try:
        while not stop.is_set():
            client.incr("load")
            acked.append(1)
    except Exception:
        pass


@pytest.fixture
def no_strays():
    yield
    for name in ("withpid", "nopid"):
        for pid in marked_processes(name):
            os.kill(pid, signal.SIGKILL)


def test_kill9_under_load_restarts_cleanly_and_adopts_supervised(make_daemon, tmp_path, no_strays):
    node = tmp_path / "node"
    (node / "scripts").mkdir(parents=True)
    pidfile = node / "saker.pid"
    (node / "scripts" / "services.lua").write_text(
        'saker.supervise{name = "withpid", pidfile = "%s/withpid.pid", startsecs = 0.2,\n'
        '  cmd = {"sh", "-c", "echo $$ > %s/withpid.pid; exec sleep 1000"}}\n'
        'saker.supervise{name = "nopid", cmd = {"sleep", "1001"}, startsecs = 0.2,\n'
        '  backoff_ms = 100}\n' % (node, node))
    config = "pidfile %s\n" % pidfile
    d = make_daemon(config, subdir="node")
    r = d.client(protocol=2)
    before = {n: wait_for(lambda n=n: running_pid(r, n), 10, n + " running")
              for n in ("withpid", "nopid")}

    stop, acked = threading.Event(), []
    loaders = [threading.Thread(target=hammer, args=(d.client(protocol=2), stop, acked))
               for _ in range(4)]
    for t in loaders:
        t.start()
    wait_for(lambda: len(acked) > 2000, 30, "load to build up")
    d.kill9()
    stop.set()
    for t in loaders:
        t.join(10)
    # The children outlived sakerd; its pidfile is left behind, unlocked.
    assert pidfile.read_text() == "%d\n" % d.pid
    assert {n: marked_processes(n) for n in before} == {n: [p] for n, p in before.items()}

    log_size = os.path.getsize(d.logfile)
    d2 = make_daemon(config, subdir="node", port=d.port)
    r2 = d2.client(protocol=2)
    assert pidfile.read_text() == "%d\n" % d2.pid
    after = {n: wait_for(lambda n=n: running_pid(r2, n), 10, n + " running") for n in before}
    assert after == before
    assert {n: marked_processes(n) for n in before} == {n: [p] for n, p in before.items()}
    new_log = d2.log()[log_size:]
    for n, p in before.items():
        assert "Process %s: adopting pid %d, left running by an earlier sakerd" % (n, p) in new_log
    assert "Traceback" not in new_log and "# " not in new_log.replace("# Server", "")

    # An adopted program is not our child, yet its death is noticed and
    # autorestart starts exactly one new copy.
    os.kill(before["nopid"], signal.SIGKILL)
    restarted = wait_for(lambda: (running_pid(r2, "nopid") or before["nopid"]) != before["nopid"]
                         and running_pid(r2, "nopid"), 10, "nopid restarted")
    assert marked_processes("nopid") == [restarted]
    assert r2.info("processes")["zombies"] == 0

    # A clean stop stops the adopted program too.
    assert d2.stop() == 0
    wait_for(lambda: not marked_processes("withpid") and not marked_processes("nopid"), 10,
             "supervised programs to stop with sakerd")
