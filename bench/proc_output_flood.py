"""PING latency and RSS of sakerd while a supervised program floods its stdout.

    python bench/proc_output_flood.py [--pings 20000]

Starts sakerd on a free port with a plugin supervising one program, then
sends `--pings` PINGs one at a time from one redis-py connection and
reports p50/p99/max latency, sakerd's peak RSS and CPU, and what the
program wrote (its /proc/<pid>/io wchar), in three runs:

- idle: the program sleeps (the baseline);
- 100 MB/s: the program writes 100-byte lines in 1 MiB blocks paced at
  100 MB/s;
- unbounded: `yes` with a 100-byte line, as fast as the pipe takes it.

The output file rotates at 50 MB into 1 backup in a temporary directory,
removed at the end. Lines beyond what sakerd publishes are counted in PROC
STATUS output_dropped_lines (they reach the file only).
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LINE = "x" * 99
PACED = ("import sys, time\n"
         "block = (%r + '\\n').encode() * 10486\n"
         "out = sys.stdout.buffer\n"
         "t0 = time.monotonic(); n = 0\n"
         "while True:\n"
         "    out.write(block); out.flush(); n += 1\n"
         "    delay = t0 + n * len(block) / 100e6 - time.monotonic()\n"
         "    if delay > 0: time.sleep(delay)\n" % LINE)
PROGRAMS = {
    "idle": ["sleep", "3600"],
    "100MB/s": [sys.executable, "-c", PACED],
    "unbounded": ["yes", LINE],
}


sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from history_memory import free_port, rss_mib  # noqa: E402  (bench's shared helpers)


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wchar(pid):
    try:
        with open("/proc/%d/io" % pid) as f:
            for line in f:
                if line.startswith("wchar:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def lua_argv(argv):
    return "{%s}" % ", ".join('"%s"' % a.replace("\\", "\\\\").replace('"', '\\"')
                              .replace("\n", "\\n") for a in argv)


def start(work, argv):
    port = free_port()
    scripts = os.path.join(work, "scripts")
    os.makedirs(scripts, exist_ok=True)
    with open(os.path.join(scripts, "flood.lua"), "w") as f:
        f.write('saker.supervise{name = "flood", startsecs = 0, stdout_maxbytes = "50mb", '
                'stdout_backups = 1, cmd = %s}\n' % lua_argv(argv))
    conf = os.path.join(work, "saker.conf")
    with open(conf, "w") as f:
        f.write("port %d\nlogfile %s\nscripts-dir %s\nunixsocket \"\"\n"
                "user default on nopass ~* &* +@all\n" % (port, os.path.join(work, "sakerd.log"),
                                                          scripts))
    proc = subprocess.Popen([sys.executable, "-m", "sakerd", "-c", conf], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return proc, port


def status(r):
    st = r.execute_command("PROC", "STATUS", "flood")
    return dict(zip(st[::2], st[1::2]))


def run(name, argv, pings):
    import redis
    work = tempfile.mkdtemp(prefix="sakerd-flood-")
    proc, port = start(work, argv)
    try:
        r = redis.Redis(port=port, socket_timeout=60, protocol=2)
        deadline = time.monotonic() + 20
        while True:
            try:
                if status(r)[b"state"] == b"running":
                    break
            except redis.ConnectionError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("sakerd did not start")
            time.sleep(0.05)
        child = int(status(r)[b"pid"])
        time.sleep(1)         # let the flood reach its steady state
        w0, c0, t0 = wchar(child), cpu_seconds(proc.pid), time.monotonic()
        peak = rss_mib(proc.pid)
        lat = []
        for i in range(pings):
            s = time.perf_counter()
            r.ping()
            lat.append(time.perf_counter() - s)
            if i % 500 == 0:
                peak = max(peak, rss_mib(proc.pid))
        elapsed = time.monotonic() - t0
        w1, c1 = wchar(child), cpu_seconds(proc.pid)
        st = status(r)
        lat.sort()
        print("%-10s %8.3f %8.3f %8.2f %8.1f %6.0f%% %9.1f %12s %12s" % (
            name, lat[len(lat) // 2] * 1e3, lat[int(len(lat) * 0.99)] * 1e3, lat[-1] * 1e3,
            peak, 100 * (c1 - c0) / elapsed, (w1 - w0) / elapsed / 1e6,
            st[b"output_lines"].decode(), st[b"output_dropped_lines"].decode()), flush=True)
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(work, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pings", type=int, default=20000)
    args = ap.parse_args()
    print("%-10s %8s %8s %8s %8s %7s %9s %12s %12s" % (
        "program", "p50_ms", "p99_ms", "max_ms", "rss_mib", "cpu", "MB/s", "lines", "dropped"))
    for name, argv in PROGRAMS.items():
        run(name, argv, args.pings)


if __name__ == "__main__":
    main()
