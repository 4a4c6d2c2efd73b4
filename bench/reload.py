"""What a reload costs: CONFIG RELOAD on conf/saker.conf, nothing changed.

    python bench/reload.py [--rounds 20]

Starts sakerd on conf/saker.conf (a free port, its unix socket in a
temporary directory, where the kernel names us admin) and times CONFIG
RELOAD from a client, round trip: the file
and its plugins are read and checked as --test-config does (a fresh Lua
runtime compiles every plugin), then compared with the running state. Prints
the median and the maximum in ms. During the reload the loop serves no one:
this is how long a SIGHUP (a logrotate) holds every client.
"""

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=20)
    args = ap.parse_args()
    import redis
    port = free_port()
    tmp = tempfile.mkdtemp(prefix="sakerd-bench-")
    sock = os.path.join(tmp, "s.sock")
    env = dict(os.environ, PYTHONPATH=ROOT)
    proc = subprocess.Popen([sys.executable, "-m", "sakerd", "-c",
                             os.path.join(ROOT, "conf", "saker.conf"), "--port", str(port),
                             "--unixsocket", sock, "--logfile", "/dev/null"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        r = redis.Redis(unix_socket_path=sock, protocol=2)
        deadline = time.monotonic() + 20
        while True:
            try:
                r.ping()
                break
            except (redis.ConnectionError, FileNotFoundError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        plugins = len(r.execute_command("PLUGIN", "LIST"))
        times = []
        for _ in range(args.rounds):
            t = time.perf_counter()
            assert r.execute_command("CONFIG", "RELOAD") == []
            times.append((time.perf_counter() - t) * 1000)
        print("CONFIG RELOAD, nothing changed, %d plugins: median %.1f ms, max %.1f ms "
              "(%d rounds)" % (plugins, statistics.median(times), max(times), args.rounds))
        r.close()
    finally:
        proc.terminate()
        proc.wait(10)
        os.rmdir(tmp)


if __name__ == "__main__":
    main()
