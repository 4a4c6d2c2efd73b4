"""Crash and restart: kill -9 under load, then start again on the same config.

sakerd's pidfile is locked with flock, so the kernel drops the lock when
the process dies however it dies: the leftover file is stale by definition
and the next start takes it over. Supervised programs lead their own
sessions and outlive sakerd; the restarted sakerd must adopt them (by
pidfile, or by the SAKERD_SUPERVISED marker in their environment) instead
of starting second copies, start afresh those that died meanwhile, and
still restart adopted ones when they die.
"""

import os
import signal
import threading

import pytest

from soak.reliability import wait_for

# Each supervised program is a `sleep` with its own duration, so its copies
# can be counted by command line, however sakerd recognises them. The
# durations are this test process's own (a parallel run, another checkout's
# tests on the same machine): long, and distinct from theirs.
_MARK = 100000 + os.getpid() * 3
SLEEPS = {"withpid": b"%d" % _MARK, "nopid": b"%d" % (_MARK + 1), "envless": b"%d" % (_MARK + 2)}


def marked_processes(name):
    """Live pids running this program's `sleep`."""
    want = b"sleep\0" + SLEEPS[name] + b"\0"
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % entry, "rb") as f:
                cmdline = f.read()
            with open("/proc/%s/stat" % entry, "rb") as f:
                state = f.read().rsplit(b")", 1)[1].split()[0]
        except OSError:
            continue
        if state != b"Z" and cmdline == want:
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
    for name in SLEEPS:
        for pid in marked_processes(name):
            os.kill(pid, signal.SIGKILL)


def test_kill9_under_load_restarts_cleanly_and_adopts_supervised(make_daemon, tmp_path, no_strays):
    node = tmp_path / "node"
    (node / "scripts").mkdir(parents=True)
    pidfile = node / "saker.pid"
    (node / "scripts" / "services.lua").write_text(
        'saker.supervise{name = "withpid", pidfile = "%s/withpid.pid", startsecs = 0.2,\n'
        '  cmd = {"sh", "-c", "echo $$ > %s/withpid.pid; exec sleep %s"}}\n'
        'saker.supervise{name = "nopid", cmd = {"sleep", "%s"}, startsecs = 0.2,\n'
        '  backoff_ms = 100}\n'
        # env -i: no SAKERD_SUPERVISED marker survives; only the pidfile tells.
        'saker.supervise{name = "envless", pidfile = "%s/envless.pid", startsecs = 0.2,\n'
        '  cmd = {"env", "-i", "/bin/sh", "-c", "echo $$ > %s/envless.pid; exec sleep %s"}}\n'
        % (node, node, SLEEPS["withpid"].decode(), SLEEPS["nopid"].decode(), node, node,
           SLEEPS["envless"].decode()))
    config = "pidfile %s\n" % pidfile
    d = make_daemon(config, subdir="node")
    r = d.client(protocol=2)
    before = {n: wait_for(lambda n=n: running_pid(r, n), 30, n + " running")
              for n in SLEEPS}

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

    # A survivor that dies while sakerd is down leaves a stale pidfile
    # behind: that program is started afresh, not adopted.
    os.kill(before["withpid"], signal.SIGKILL)
    wait_for(lambda: not marked_processes("withpid"), 30, "withpid to die")

    log_size = os.path.getsize(d.logfile)
    d2 = make_daemon(config, subdir="node", port=d.port)
    r2 = d2.client(protocol=2)
    assert pidfile.read_text() == "%d\n" % d2.pid
    after = {n: wait_for(lambda n=n: running_pid(r2, n), 30, n + " running") for n in before}
    assert after["nopid"] == before["nopid"]          # adopted by its marker
    assert after["envless"] == before["envless"]      # adopted by its pidfile
    assert after["withpid"] != before["withpid"]      # gone: started afresh
    assert {n: marked_processes(n) for n in after} == {n: [p] for n, p in after.items()}
    new_log = d2.log()[log_size:]
    for n in ("nopid", "envless"):
        assert "Process %s: adopting pid %d, left running by an earlier sakerd" % (
            n, before[n]) in new_log
    assert "Process withpid: adopting" not in new_log
    assert "Traceback" not in new_log and "# " not in new_log.replace("# Server", "")

    # An adopted program is not our child, yet its death is noticed and
    # autorestart starts exactly one new copy.
    os.kill(before["nopid"], signal.SIGKILL)
    restarted = wait_for(lambda: (running_pid(r2, "nopid") or before["nopid"]) != before["nopid"]
                         and running_pid(r2, "nopid"), 30, "nopid restarted")
    assert marked_processes("nopid") == [restarted]
    assert r2.info("processes")["zombies"] == 0

    # A clean stop stops the adopted program too.
    assert d2.stop() == 0
    wait_for(lambda: not any(marked_processes(n) for n in SLEEPS), 30,
             "supervised programs to stop with sakerd")
