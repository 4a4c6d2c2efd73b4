"""sakerd side by side with redis-server and a uvloop peer: one entry point.

    python bench/run.py                       # full run (~12 min), writes BENCHMARKS.md
    python bench/run.py --rounds 2 --quick    # a quick look, printed only

Each round starts the three servers afresh, each on a free loopback port:

* sakerd:       python -m sakerd --port P --scripts-dir <empty dir> (with
                Redis's open default user: --user default on nopass ~* &* +@all),
                from this tree: the compiled build when the modules with a .pxd
                are compiled in place (sakerd/*.so), else pure Python
* sakerd-pure:  the same from a copy of sakerd/*.py only (no extension
                modules): the pure-Python build, side by side with the other
* sakerd-base:  with --base REV, the same from `git archive REV sakerd`: an
                older tree (pure Python), to compare a change in one run
* redis-server: redis-server --port P --save '' --appendonly no
* uvloop:       python bench/uvloop_server.py --port P  (bench's Python peer)

then runs the same workloads against each, the servers taking turns
(the order rotates every round, so drift of the machine spreads evenly):

* redis-benchmark -c 50 -P 1 and -P 16, one test per run: ping_mbulk, set,
  get, incr, lpush, lrange_100 (LRANGE mylist 0 99 on a prefilled list), and
  the set and sorted set ones: sadd, zadd (redis-benchmark's own), zrange_100
  (ZRANGE myzset 0 99 WITHSCORES on a prefilled 600-member zset), spop (SPOP
  myset on a set prefilled with as many members as the run pops). -n
  is calibrated per server and test so that each run lasts >= --seconds;
* streams, the same way (sakerd and redis-server only): xadd (XADD
  mystream * f v) and xrange_100 (XRANGE mystream - + COUNT 100 on a
  stream of 600 entries);
* churn: redis-benchmark -k 0 (a new connection per PING), conns/s;
* batch: bench/multi_batches.py, SET in batches of 16 from 50 connections,
  as plain pipelines and wrapped in MULTI/EXEC (redis-py's default
  pipeline()), SETs/s -- redis-benchmark cannot send transactions;
* fanout: bench/fanout.py's round, 1 publisher (batches of 100 PUBLISH of
  100 bytes, 4 batches in flight) and 10 subscribers, delivered messages/s;
* idle: CPU share over --idle-seconds right after start, RSS at start.

Facts it relies on: /proc/PID/stat fields 14 and 15 (utime, stime, in clock
ticks) sum every thread of the process, so redis-server's helper threads are
counted; VmHWM in /proc/PID/status is the peak resident set. A sakerd started
with the example plugins (scripts/ of the repository, when it has any) is
measured for idle CPU and RSS too, since that is what the target names.

Reported per workload and server: ops/s (redis-benchmark's rps, or delivered
messages/s, or connections/s), server CPU seconds, ops per server CPU-second,
peak RSS; and the ratios sakerd/redis and sakerd/uvloop paired within each
round, as median [min, max] over the rounds.
"""

import argparse
import csv
import io
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import fanout  # noqa: E402  (bench/fanout.py: the fan-out workload)
import multi_batches  # noqa: E402  (bench/multi_batches.py: SET batches, MULTI/EXEC)
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")

SERVERS = ("sakerd", "sakerd-pure", "sakerd-base", "redis", "uvloop")
BASE_REV = None     # --base: the revision sakerd-base runs
RB_TESTS = ("ping_mbulk", "set", "get", "incr", "lpush", "lrange_100")
# Stream workloads (redis-benchmark has no -t for them: custom commands).
# The uvloop peer has no streams: these run on sakerd and redis-server only.
STREAM_TESTS = ("xadd", "xrange_100")
TYPE_TESTS = ("sadd", "zadd", "zrange_100", "spop")     # no targets of their own


# ---- processes ----------------------------------------------------------

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid):
    """utime + stime of the whole process, in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        # The command name (field 2) may hold spaces: split after its ')'.
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def status_kib(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def resp_call(port, *args, timeout=5.0):
    """Send one command, return the first reply line (enough for PING/DEL)."""
    req = b"*%d\r\n" % len(args) + b"".join(
        b"$%d\r\n%s\r\n" % (len(a), a) for a in (x if isinstance(x, bytes) else x.encode()
                                                  for x in args))
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(req)
        data = b""
        while b"\r\n" not in data:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    return data.split(b"\r\n", 1)[0]


class Server:
    """One server process under test."""

    def __init__(self, name, argv, port, workdir, env=None, cwd=None):
        self.name = name
        self.port = port
        self.log_path = os.path.join(workdir, "%s-%d.log" % (name, port))
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(argv, cwd=cwd or ROOT, stdout=self.log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
        self.pid = self.proc.pid

    def wait_ready(self, deadline_s=20.0):
        deadline = time.monotonic() + deadline_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                if resp_call(self.port, "PING", timeout=1.0) == b"+PONG":
                    return
            except OSError:
                pass
            time.sleep(0.05)
        self.stop()
        with open(self.log_path, "rb") as f:
            tail = f.read()[-2000:].decode("utf-8", "replace")
        raise RuntimeError("%s did not become ready on port %d:\n%s" % (self.name, self.port, tail))

    def cpu(self):
        return cpu_seconds(self.pid)

    def rss_mib(self):
        return status_kib(self.pid, "VmRSS") / 1024.0

    def hwm_mib(self):
        return status_kib(self.pid, "VmHWM") / 1024.0

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def pure_tree(workdir):
    """A copy of the package's .py files: `python -m sakerd` run from it
    cannot import an extension module built in the tree."""
    root = os.path.join(workdir, "pure")
    if not os.path.isdir(root):
        shutil.copytree(os.path.join(ROOT, "sakerd"), os.path.join(root, "sakerd"),
                        ignore=shutil.ignore_patterns("*.so", "*.c", "*.pxd", "__pycache__"))
    return root


def base_tree(workdir):
    """sakerd/ of BASE_REV, extracted with git archive."""
    root = os.path.join(workdir, "base")
    if not os.path.isdir(root):
        os.mkdir(root)
        archive = subprocess.run(["git", "-C", ROOT, "archive", BASE_REV, "sakerd"],
                                 stdout=subprocess.PIPE, check=True).stdout
        subprocess.run(["tar", "-x", "-C", root], input=archive, check=True)
    return root


def server_cwd(name, workdir):
    if name == "sakerd-pure":
        return pure_tree(workdir)
    if name == "sakerd-base":
        return base_tree(workdir)
    return None


def server_argv(name, port, scripts_dir):
    if name in ("sakerd", "sakerd-pure", "sakerd-base"):
        # Redis's open default user (sakerd ships a closed one), no unix socket.
        return [sys.executable, "-m", "sakerd", "--port", str(port),
                "--scripts-dir", scripts_dir, "--unixsocket", "",
                "--user", "default", "on", "nopass", "~*", "&*", "+@all"]
    if name == "redis":
        return ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no"]
    if name == "uvloop":
        return [sys.executable, os.path.join(HERE, "uvloop_server.py"), "--port", str(port)]
    raise ValueError(name)


def start_servers(names, workdir, scripts_dir):
    servers = {}
    try:
        for name in names:
            port = free_port()
            servers[name] = Server(name, server_argv(name, port, scripts_dir), port, workdir,
                                   cwd=server_cwd(name, workdir))
        for s in servers.values():
            s.wait_ready()
    except Exception:
        for s in servers.values():
            s.stop()
        raise
    return servers


# ---- workloads -------------------------------------------------------------

def redis_benchmark(port, args, timeout):
    """Run redis-benchmark --csv; return the rps of its last row."""
    cmd = ["redis-benchmark", "-p", str(port), "--csv", "-q"] + args
    out = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         timeout=timeout, check=True).stdout.decode()
    rows = [r for r in csv.reader(io.StringIO(out)) if r and r[0] != "test"]
    if not rows:
        raise RuntimeError("redis-benchmark printed no result: %r" % out)
    return float(rows[-1][1])


def rb_args(test, pipeline, n):
    base = ["-c", "50", "-P", str(pipeline), "-n", str(n)]
    if test == "lrange_100":
        # Without its LPUSH prelude (prefilled by prepare_workload), so that
        # the CPU measured is LRANGE's alone.
        return base + ["lrange", "mylist", "0", "99"]
    if test == "xadd":
        return base + ["xadd", "mystream", "*", "f", "v"]
    if test == "xrange_100":
        return base + ["xrange", "mystream", "-", "+", "COUNT", "100"]
    if test == "zrange_100":
        return base + ["zrange", "myzset", "0", "99", "WITHSCORES"]
    if test == "churn":
        return ["-c", "50", "-k", "0", "-n", str(n), "-t", "ping_mbulk"]
    return base + ["-t", test]


def prepare_workload(srv, test, n=0):
    if test == "lrange_100":
        resp_call(srv.port, "DEL", "mylist")
        resp_call(srv.port, "RPUSH", "mylist", *(["xxx"] * 600))
    if test in STREAM_TESTS:
        resp_call(srv.port, "DEL", "mystream")
    if test == "xrange_100":
        for i in range(600):
            resp_call(srv.port, "XADD", "mystream", "%d-1" % (i + 1), "f", "v")
    elif test == "zrange_100":
        resp_call(srv.port, "DEL", "myzset")
        members = []
        for i in range(600):
            members += [str(i * 1.5), "element:%06d" % i]
        resp_call(srv.port, "ZADD", "myzset", *members)
    elif test == "spop":
        # Every SPOP of the run pops a member (redis-benchmark's own SPOP
        # test pops an empty set after its first request).
        resp_call(srv.port, "DEL", "myset")
        for start in range(0, n, 10000):
            resp_call(srv.port, "SADD", "myset",
                      *("m:%d" % i for i in range(start, min(n, start + 10000))),
                      timeout=60)


def supports(name, workload):
    """Whether server `name` has the commands of `workload`."""
    return name != "uvloop" or workload.split(":")[-1] not in STREAM_TESTS


def measure(srv, fn):
    """Run fn(); return (its result, server CPU seconds, wall seconds)."""
    c0 = srv.cpu()
    t0 = time.perf_counter()
    result = fn()
    wall = time.perf_counter() - t0
    return result, srv.cpu() - c0, wall


def run_rb(srv, test, pipeline, n):
    prepare_workload(srv, test, n)
    timeout = 120 + n / 1000.0
    rps, cpu, wall = measure(srv, lambda: redis_benchmark(srv.port, rb_args(test, pipeline, n),
                                                          timeout))
    return {"ops": rps, "n": n, "cpu": cpu, "wall": wall}


def run_fanout(srv, n):
    """bench/fanout.py's round: 1 publisher, 10 subscribers, delivered msg/s."""
    rate, cpu, wall = measure(srv, lambda: fanout.fanout_round(srv.port, n,
                                                               timeout=120 + n / 1000.0))
    return {"ops": rate, "n": n * fanout.SUBSCRIBERS, "cpu": cpu, "wall": wall}


def run_workload(srv, workload, n):
    kind, _, arg = workload.partition(":")
    if kind == "churn":
        rps, cpu, wall = measure(srv, lambda: redis_benchmark(
            srv.port, rb_args("churn", 1, n), 120 + n / 100.0))
        return {"ops": rps, "n": n, "cpu": cpu, "wall": wall}
    if kind == "fanout":
        return run_fanout(srv, n)
    if kind == "batch":
        if arg == "multi" and srv.name == "uvloop":
            return None     # the uvloop peer has no transactions
        rate, cpu, wall = measure(srv, lambda: multi_batches.batch_round(
            srv.port, n, multi=arg == "multi", timeout=120 + n / 1000.0))
        return {"ops": rate, "n": n, "cpu": cpu, "wall": wall}
    pipeline = int(kind[1:])
    return run_rb(srv, arg, pipeline, n)


def workloads(selected):
    out = []
    for p in (1, 16):
        for t in RB_TESTS + STREAM_TESTS + TYPE_TESTS:
            out.append("P%d:%s" % (p, t))
    out += ["churn", "fanout", "batch:plain", "batch:multi"]
    if selected:
        want = set(selected.split(","))
        out = [w for w in out if w in want or w.split(":")[-1] in want or w.split(":")[0] in want]
    return out


PROBE_N = {"churn": 3000, "fanout": 20000, "batch:plain": 50000, "batch:multi": 50000}


def probe_n(workload):
    if workload in PROBE_N:
        return PROBE_N[workload]
    return 20000 if workload.startswith("P1:") else 100000


def calibrated_n(result, seconds, workload):
    """Requests for a run of `seconds` at the rate of a probe run."""
    rate = result["ops"]
    if workload == "fanout":
        rate /= fanout.SUBSCRIBERS
    n = int(rate * seconds * 1.15)
    return max(n, 1000)


# ---- the run ------------------------------------------------------------------

def idle_and_rss(servers, seconds):
    """RSS right after start, then CPU share over `seconds` of idleness."""
    start = {name: s.cpu() for name, s in servers.items()}
    rss = {name: s.rss_mib() for name, s in servers.items()}
    time.sleep(seconds)
    return {name: {"rss_start_mib": rss[name],
                   "idle_cpu_pct": 100.0 * (s.cpu() - start[name]) / seconds}
            for name, s in servers.items()}


def example_plugins_dir():
    d = os.path.join(ROOT, "scripts")
    if os.path.isdir(d) and any(f.endswith(".lua") for f in os.listdir(d)):
        return d
    return None


def run_rounds(args):
    names = [n for n in SERVERS if n in args.servers.split(",")]
    wls = workloads(args.workloads)
    workdir = tempfile.mkdtemp(prefix="sakerd-bench-")
    empty_scripts = os.path.join(workdir, "scripts")
    os.mkdir(empty_scripts)
    results = {"rounds": [], "n": {}}
    try:
        # Calibration: a probe run per server and workload sizes -n.
        servers = start_servers(names, workdir, empty_scripts)
        try:
            for wl in wls:
                for name in names:
                    if not supports(name, wl):
                        continue
                    r = run_workload(servers[name], wl, probe_n(wl))
                    if r is None:
                        continue
                    results["n"]["%s %s" % (name, wl)] = calibrated_n(r, args.seconds, wl)
                    log(args, "probe %-8s %-16s %10.0f ops/s -> n=%d" % (
                        name, wl, r["ops"], results["n"]["%s %s" % (name, wl)]))
        finally:
            for s in servers.values():
                s.stop()
        for rnd in range(args.rounds):
            results["rounds"].append(run_round(args, rnd, names, wls, workdir, empty_scripts,
                                               results["n"]))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return results


def run_round(args, rnd, names, wls, workdir, empty_scripts, ns):
    servers = start_servers(names, workdir, empty_scripts)
    plugins = example_plugins_dir()
    try:
        if plugins and "sakerd" in names:
            port = free_port()
            servers["sakerd+plugins"] = Server("sakerd+plugins",
                                               server_argv("sakerd", port, plugins), port, workdir)
            servers["sakerd+plugins"].wait_ready()
        time.sleep(0.5)  # let start-up work (imports, first cron) settle
        res = {"idle": idle_and_rss(servers, args.idle_seconds), "work": {}}
        if "sakerd+plugins" in servers:
            servers.pop("sakerd+plugins").stop()
        order = names[rnd % len(names):] + names[:rnd % len(names)]
        for wl in wls:
            res["work"][wl] = {}
            for name in order:
                if not supports(name, wl) or "%s %s" % (name, wl) not in ns:
                    continue    # a workload this server cannot run
                r = run_workload(servers[name], wl, ns["%s %s" % (name, wl)])
                res["work"][wl][name] = r
                log(args, "round %d %-8s %-16s %10.0f ops/s  cpu %.2fs  wall %.2fs" % (
                    rnd + 1, name, wl, r["ops"], r["cpu"], r["wall"]))
        res["hwm_mib"] = {name: s.hwm_mib() for name, s in servers.items()}
    finally:
        for s in servers.values():
            s.stop()
    return res


def log(args, text):
    if not args.silent:
        print(text, file=sys.stderr, flush=True)


# ---- report ---------------------------------------------------------------------

def stats(values):
    return statistics.median(values), min(values), max(values)


def fmt_ratio(values):
    if not values:
        return "-"
    med, lo, hi = stats(values)
    return "%.2f [%.2f, %.2f]" % (med, lo, hi)


def fmt_num(v):
    if v >= 100:
        return "{:,.0f}".format(v)
    return "%.2f" % v


def ratios(rounds, wl, key, a, b):
    out = []
    for r in rounds:
        w = r["work"].get(wl, {})
        if a in w and b in w:
            va, vb = metric(w[a], key), metric(w[b], key)
            if vb:
                out.append(va / vb)
    return out


def metric(r, key):
    if key == "ops":
        return r["ops"]
    if key == "eff":
        return r["n"] / r["cpu"] if r["cpu"] > 0 else 0.0
    return r[key]


def median_of(rounds, wl, name, key):
    vals = [metric(r["work"][wl][name], key) for r in rounds if name in r["work"].get(wl, {})]
    return statistics.median(vals) if vals else None


WL_LABELS = {"churn": "churn (-k 0, conns/s)", "fanout": "fan-out 1x10 (delivered msg/s)",
             "batch:plain": "set -P 16, Python driver (SET/s)",
             "batch:multi": "set -P 16 in MULTI/EXEC, Python driver (SET/s)"}


def wl_label(wl):
    if wl in WL_LABELS:
        return WL_LABELS[wl]
    p, t = wl.split(":")
    return "%s -P %s" % (t, p[1:])


PEERS = ("sakerd-pure", "sakerd-base", "redis", "uvloop")


def ratio_columns(names):
    """The sakerd/<peer> ratio columns for the peers present in this run."""
    return ["sakerd/%s" % other for other in PEERS if "sakerd" in names and other in names]


def table_throughput(results, names, wls):
    rounds = results["rounds"]
    head = ["workload"] + ["%s ops/s" % n for n in names] + ratio_columns(names)
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for wl in wls:
        row = [wl_label(wl)]
        for n in names:
            v = median_of(rounds, wl, n, "ops")
            row.append(fmt_num(v) if v is not None else "-")
        for other in PEERS:
            if "sakerd" in names and other in names:
                row.append(fmt_ratio(ratios(rounds, wl, "ops", "sakerd", other)))
        lines.append("| " + " | ".join(row) + " |")
    return lines


def table_efficiency(results, names, wls):
    rounds = results["rounds"]
    head = ["workload"] + ["%s ops/CPU-s (CPU s)" % n for n in names] + ratio_columns(names)
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for wl in wls:
        row = [wl_label(wl)]
        for n in names:
            eff = median_of(rounds, wl, n, "eff")
            cpu = median_of(rounds, wl, n, "cpu")
            row.append("%s (%.2f)" % (fmt_num(eff), cpu) if eff is not None else "-")
        for other in PEERS:
            if "sakerd" in names and other in names:
                row.append(fmt_ratio(ratios(rounds, wl, "eff", "sakerd", other)))
        lines.append("| " + " | ".join(row) + " |")
    return lines


def table_idle(results):
    rounds = results["rounds"]
    names = list(rounds[0]["idle"])
    lines = ["| server | RSS at start (MiB) | idle CPU (%) | peak RSS, VmHWM (MiB) |",
             "|---|---|---|---|"]
    for n in names:
        rss = statistics.median(r["idle"][n]["rss_start_mib"] for r in rounds)
        idle = statistics.median(r["idle"][n]["idle_cpu_pct"] for r in rounds)
        hwm = [r["hwm_mib"][n] for r in rounds if n in r["hwm_mib"]]
        lines.append("| %s | %.1f | %.2f | %s |" % (
            n, rss, idle, "%.1f" % statistics.median(hwm) if hwm else "- (idle only)"))
    return lines


def targets(results, names):
    """The issue's targets, each with the measured paired median."""
    rounds = results["rounds"]
    out = []

    def med(wl, key, other):
        v = ratios(rounds, wl, key, "sakerd", other)
        return statistics.median(v) if v else None

    def check(label, value, goal, above=True):
        if value is None:
            return
        ok = value >= goal if above else value < goal
        out.append("| %s | %s %s | %.2f | %s |" % (label, ">=" if above else "<", goal, value,
                                                   "met" if ok else "not met"))

    # Issue 19: the compiled build, per server CPU-second.
    for t in ("ping_mbulk", "set", "get"):
        check("-P 16 %s, sakerd/redis ops per CPU-s" % t, med("P16:" + t, "eff", "redis"), 0.6)
        check("-P 16 %s, sakerd/uvloop ops per CPU-s" % t, med("P16:" + t, "eff", "uvloop"), 1.2)
    for t in RB_TESTS:
        check("-P 1 %s, sakerd/redis ops per CPU-s" % t, med("P1:" + t, "eff", "redis"), 0.8)
    for wl in ("P16:ping_mbulk", "P16:set", "P16:get", "P1:ping_mbulk", "P1:set", "P1:get"):
        v = ratios(rounds, wl, "eff", "sakerd-pure", "sakerd-base")
        check("%s, sakerd-pure/sakerd-base ops per CPU-s" % wl_label(wl),
              statistics.median(v) if v else None, 1.0)
    check("fan-out, sakerd/redis delivered msg/s", med("fanout", "ops", "redis"), 0.6)
    check("churn, sakerd/redis conns/s", med("churn", "ops", "redis"), 0.9)
    idle_name = "sakerd+plugins" if "sakerd+plugins" in rounds[0]["idle"] else "sakerd"
    if idle_name in rounds[0]["idle"]:
        check("%s idle CPU %%" % idle_name,
              statistics.median(r["idle"][idle_name]["idle_cpu_pct"] for r in rounds), 0.5, False)
        check("%s RSS at start (MiB)" % idle_name,
              statistics.median(r["idle"][idle_name]["rss_start_mib"] for r in rounds), 40, False)
    if not out:
        return []
    return ["| target | goal | measured (paired median) | |", "|---|---|---|---|"] + out


def tool_version(argv):
    try:
        return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              timeout=10).stdout.decode().strip().splitlines()[0]
    except (OSError, subprocess.SubprocessError, IndexError):
        return "unavailable"


def machine():
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    import hiredis
    import uvloop
    commit = tool_version(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"])
    return [
        "- CPUs (nproc): %d, model: %s" % (os.cpu_count(), model),
        "- kernel: %s %s" % (platform.system(), platform.release()),
        "- python: %s (%s)" % (platform.python_version(), platform.python_implementation()),
        "- %s; %s" % (tool_version(["redis-server", "--version"]),
                      tool_version(["redis-benchmark", "--version"])),
        "- uvloop %s, hiredis %s; sakerd at commit %s" % (uvloop.__version__, hiredis.__version__,
                                                          commit),
    ]


def report(results, args, names, wls, elapsed):
    plugins = example_plugins_dir()
    lines = [
        "# Benchmarks",
        "",
        "Produced by `%s` (%d rounds, %g s per run, %.1f minutes in all)." % (
            args.command_line, len(results["rounds"]), args.seconds, elapsed / 60.0),
        "Servers run side by side on loopback, restarted every round, taking turns in a",
        "rotating order; ratios are paired within a round: median [min, max] over the rounds.",
        "The uvloop peer is `bench/uvloop_server.py` (asyncio + uvloop + hiredis.Reader).",
        "On a machine with few cores the client (redis-benchmark) competes with the server",
        "for CPU, so ops per server CPU-second is the fairer measure of the server's own cost.",
        "",
        "## Machine",
        "",
    ] + machine() + [
        "",
        "## Throughput (median ops/s)",
        "",
    ] + table_throughput(results, names, wls) + [
        "",
        "## Server CPU cost (median ops per server CPU-second; median server CPU seconds per run)",
        "",
    ] + table_efficiency(results, names, wls) + [
        "",
        "## Idle and memory",
        "",
        "Idle CPU over %.0f s right after start; sakerd+plugins loads %s." % (
            args.idle_seconds, "`scripts/` of the repository" if plugins else
            "nothing (the repository has no example plugins yet)"),
        "Peak RSS is VmHWM at the end of a round (it includes the data the workloads stored).",
        "",
    ] + table_idle(results)
    tgt = targets(results, names)
    if tgt:
        lines += ["", "## Targets (issues 7 and 19)", ""] + tgt
    return "\n".join(lines) + "\n"


NOTES_MARKER = "<!-- Notes below this line are kept when bench/run.py rewrites the file. -->"


def kept_notes(path):
    """The hand-written part of an existing report (profiles, analysis)."""
    try:
        with open(path) as f:
            old = f.read()
    except OSError:
        return ""
    i = old.find(NOTES_MARKER)
    return "\n" + old[i:] if i >= 0 else ""


def main(argv=None):
    ap = argparse.ArgumentParser(description="Benchmark sakerd against redis-server and a "
                                 "uvloop peer (see the module docstring).")
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    ap.add_argument("--quick", action="store_true",
                    help="short runs (0.5 s each, 2 s idle) and print instead of writing "
                         "BENCHMARKS.md unless --out is given")
    ap.add_argument("--seconds", type=float, default=None,
                    help="target duration of each run (default 2.2, quick 0.5)")
    ap.add_argument("--idle-seconds", type=float, default=None,
                    help="idle CPU window (default 10, quick 2)")
    ap.add_argument("--servers", default="sakerd,sakerd-pure,redis,uvloop",
                    help="comma-separated subset of %s" % ",".join(SERVERS))
    ap.add_argument("--base", default=None, metavar="REV",
                    help="also run sakerd-base: sakerd/ at git revision REV")
    ap.add_argument("--workloads", default="",
                    help="comma-separated subset: P1, P16, a test name (set, get, ...), "
                         "P16:set, churn, fanout, batch (default all)")
    ap.add_argument("--out", default=None,
                    help="report path (default BENCHMARKS.md; '-' prints it)")
    ap.add_argument("--json", default=None, help="also write the raw results here")
    ap.add_argument("--silent", action="store_true", help="no progress lines on stderr")
    args = ap.parse_args(argv)
    global BASE_REV
    BASE_REV = args.base
    if args.base and "sakerd-base" not in args.servers.split(","):
        args.servers += ",sakerd-base"
    if args.seconds is None:
        args.seconds = 0.5 if args.quick else 2.2
    if args.idle_seconds is None:
        args.idle_seconds = 2.0 if args.quick else 10.0
    if args.out is None:
        args.out = "-" if args.quick else os.path.join(ROOT, "BENCHMARKS.md")
    args.command_line = "python bench/run.py" + (
        " " + " ".join(sys.argv[1:]) if argv is None and sys.argv[1:] else "")
    for tool in ("redis-benchmark", "redis-server"):
        if shutil.which(tool) is None:
            print("bench: %s is not installed (Debian: apt-get install redis-server "
                  "redis-tools)" % tool, file=sys.stderr)
            return 1
    names = [n for n in SERVERS if n in args.servers.split(",")]
    wls = workloads(args.workloads)
    t0 = time.monotonic()
    results = run_rounds(args)
    text = report(results, args, names, wls, time.monotonic() - t0)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    if args.out == "-":
        sys.stdout.write(text)
    else:
        notes = kept_notes(args.out)  # before open() empties the file
        with open(args.out, "w") as f:
            f.write(text + notes)
        print("wrote %s" % args.out, file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
