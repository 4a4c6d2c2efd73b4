"""Server CPU per request, user and system apart: sakerd, redis-server, uvloop peer.

    python bench/cpu_split.py                         # GET, -P 16 and -P 1, 3 rounds
    python bench/cpu_split.py --test set --pipeline 16 --requests 2000000 --rounds 5

bench/run.py reports user + system together; this splits them, because the
kernel's share (the same syscalls for every server) and the server's own
code are different questions. The three servers run side by side (started
as run.py starts them), the same redis-benchmark run goes to each in turn,
and /proc/PID/stat's utime and stime are read around it. Printed: the median
over the rounds of µs per request, and every round.
"""

import argparse
import os
import statistics
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from run import CLK_TCK, prepare_workload, rb_args, redis_benchmark, start_servers  # noqa: E402


def user_system(pid):
    """utime and stime of the whole process, in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--test", default="get", help="a redis-benchmark test, or lrange_100")
    ap.add_argument("--pipeline", type=int, action="append",
                    help="-P values (default 16 and 1; repeat the option for several)")
    ap.add_argument("--requests", type=int, default=0,
                    help="-n per run (default 2,000,000 at -P 16 and up, 300,000 below)")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args(argv)
    names = ("sakerd", "redis", "uvloop")
    with tempfile.TemporaryDirectory() as workdir:
        servers = start_servers(names, workdir, workdir)
        try:
            for pipeline in args.pipeline or [16, 1]:
                n = args.requests or (2_000_000 if pipeline >= 16 else 300_000)
                per = {name: [] for name in names}
                for _ in range(args.rounds):
                    for name in names:
                        srv = servers[name]
                        prepare_workload(srv, args.test)
                        u0, s0 = user_system(srv.pid)
                        redis_benchmark(srv.port, rb_args(args.test, pipeline, n), timeout=600)
                        u1, s1 = user_system(srv.pid)
                        per[name].append(((u1 - u0) * 1e6 / n, (s1 - s0) * 1e6 / n))
                print("%s -P %d, -n %d, %d rounds: server CPU per request, user + system (us)"
                      % (args.test, pipeline, n, args.rounds))
                for name in names:
                    user = statistics.median(u for u, _ in per[name])
                    system = statistics.median(s for _, s in per[name])
                    rounds = ", ".join("%.2f+%.2f" % r for r in per[name])
                    print("  %-7s %.2f + %.2f   (%s)" % (name, user, system, rounds))
        finally:
            for srv in servers.values():
                srv.stop()


if __name__ == "__main__":
    main()
