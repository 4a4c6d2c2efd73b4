"""CPU and RSS of supervised programs, their process group summed; max_rss (issue 16)."""

import sys

import pytest

from helpers import wait_for
from test_healthcheck import status
from test_procs import Events

# A group of two: a Python child holding 64 MiB, and the shell spinning on a core.
HOG = ("%s -c 'x = bytearray(64 << 20); import time; time.sleep(300)' & "
       "while :; do :; done" % sys.executable)


def test_status_and_info_show_the_groups_cpu_and_rss(make_daemon):
    d = make_daemon()
    r = d.client(protocol=2, decode_responses=True)
    ev = Events(d)
    r.eval('return saker.supervise{name = "hog", cmd = ARGV[1], startsecs = 0.1}', 0, HOG)
    ev.wait_for("hog", "running")
    s = wait_for(lambda: (lambda s: int(s["rss"]) > 64 << 20 and float(s["cpu_percent"]) > 10
                          and s)(status(r, "hog")), timeout=20, what="the group's usage")
    assert float(s["cpu_seconds"]) > 0
    info = r.info("processes")["proc_hog"]
    assert info["state"] == "running" and info["rss"] > 64 << 20
    assert "max_rss" not in s
    # Stopped, it holds nothing; the CPU it used stays counted until it starts again.
    r.execute_command("PROC", "STOP", "hog")
    ev.wait_for("hog", "stopped")
    s = status(r, "hog")
    assert (s["rss"], s["cpu_percent"]) == ("0", "0.0") and float(s["cpu_seconds"]) > 0


def test_max_rss_restarts_a_program_that_stays_above_it(make_daemon):
    d = make_daemon()
    r = d.client(protocol=2, decode_responses=True)
    ev = Events(d)
    r.eval('return saker.supervise{name = "fat", cmd = ARGV[1], startsecs = 0.1, '
           'backoff_ms = 100, max_rss = "32mb", for_ms = 1500}', 0,
           "exec %s -c 'x = bytearray(64 << 20); import time; time.sleep(300)'" % sys.executable)
    first = ev.wait_for("fat", "running")
    backoff = ev.wait_for("fat", "backoff", timeout=30)
    assert backoff["reason"].startswith("rss ")
    assert " above max_rss 33554432 for " in backoff["reason"]
    held = int(backoff["reason"].split(" for ")[1].split()[0])
    assert held >= 1500
    assert backoff["retries"] == 1 and backoff["signal"] == "SIGTERM"
    assert ev.wait_for("fat", "running")["pid"] != first["pid"]
    s = status(r, "fat")
    assert (s["max_rss"], s["for_ms"]) == (str(32 << 20), "1500")
    assert "restarting, rss " in d.log()


@pytest.mark.parametrize("value, message", [
    ('"lots"', "field 'max_rss': memory size like \"200mb\" expected, got 'lots'"),
    ("true", "field 'max_rss': memory size like \"200mb\" expected, got boolean"),
    ("0", "field 'max_rss': memory size like \"200mb\" expected, got number"),
])
def test_bad_max_rss_names_the_field(daemon, value, message):
    r = daemon.client(protocol=2, decode_responses=True)
    err = r.eval('local ok, err = pcall(saker.supervise, {name = "x", cmd = "true", max_rss = %s}); '
                 'return {ok and 1 or 0, tostring(err)}' % value, 0)
    assert err == [0, "bad argument #1 to 'supervise' (%s)" % message]
