"""RSS of sakerd while its log lines fill `log-stream` (README "The daemon's history").

    python bench/history_memory.py [--lines 6000000] [--batch 10000]

Starts sakerd with the defaults (log-stream saker:log, log-stream-maxlen
10000) on a free port, logs `--lines` lines of 60 bytes through EVAL
(redis.log at warning level, `--batch` lines per call: 6,000,000 is what a
task logging 10,000 lines a second writes in 10 minutes), and prints the
RSS (VmRSS) and the stream's length after every tenth of the lines. The
log file goes to a temporary directory, removed at the end.
"""

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LOOP = "for i = 1, tonumber(ARGV[1]) do redis.log(redis.LOG_WARNING, ARGV[2] .. i) end"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=6000000)
    ap.add_argument("--batch", type=int, default=10000)
    args = ap.parse_args()
    import redis
    work = tempfile.mkdtemp(prefix="sakerd-history-")
    port = free_port()
    os.mkdir(os.path.join(work, "scripts"))
    proc = subprocess.Popen([sys.executable, "-m", "sakerd", "--port", str(port),
                             "--logfile", os.path.join(work, "log"),
                             "--scripts-dir", os.path.join(work, "scripts")],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        r = redis.Redis(port=port, socket_timeout=600)
        deadline = time.monotonic() + 20
        while True:
            try:
                r.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        text = "x" * 50 + " line "
        print("lines      rss_mib  xlen   lines/s")
        print("%-10d %7.1f  %-6d" % (0, rss_mib(proc.pid), r.xlen("saker:log")))
        done = 0
        step = max(args.lines // 10, args.batch)
        t0 = time.monotonic()
        while done < args.lines:
            r.eval(LOOP, 0, args.batch, text)
            done += args.batch
            if done % step == 0 or done >= args.lines:
                print("%-10d %7.1f  %-6d %.0f" % (done, rss_mib(proc.pid), r.xlen("saker:log"),
                                                  done / (time.monotonic() - t0)), flush=True)
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
