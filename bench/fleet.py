"""Fleet mode at scale: many fleet links against one redis-server (issue 17).

    python bench/fleet.py [--agents 1000] [--procs 40] [--real 10] [--jobs 5]

Simulated agents are instances of sakerd's own fleet.Link, each with its own
name, spread over --procs processes (threads within each), with a trivial
executor in place of the event loop: a job is answered `ack` then `ok`
"PONG" through the same Spool the daemon uses. --real sakerd daemons join
the same fleet. Reported:

* fan-out latency: for each of --jobs jobs targeted at `*`, the time from
  the job's stream id to each final result's stream id (both Redis's clock),
  p50 and p99 over all results, and the time until the last one;
* central memory per agent: used_memory with every agent present, minus
  used_memory before any, divided by the agents;
* central CPU at idle: redis-server's utime+stime over --idle seconds with
  every agent idle, as a share of one core;
* the reconnection storm: redis-server killed and restarted on the same
  port after --down seconds; connections accepted per second after the
  restart (peak over 1 s) and the time until every agent answered a job
  added right after the restart.
"""

import argparse
import collections
import json
import multiprocessing
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import redis  # noqa: E402

JOBS = "fleet:{ctl}:jobs"
SEEN = "fleet:{ctl}:seen"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SimConfig:
    def __init__(self, url, heartbeat_ms):
        self.fleet_redis = [url]
        self.fleet_heartbeat_ms = heartbeat_ms
        self.fleet_tls_ca_cert = self.fleet_tls_cert = self.fleet_tls_key = ""

    def resolve_path(self, p):
        return p


class SimState:
    def __init__(self):
        self.cursor = "%d-0" % int(time.time() * 1000)


class SimAgent:
    """What fleet.Link needs of fleet.Fleet, with jobs answered at once."""

    def __init__(self, name, url, heartbeat_ms, spool_dir):
        from sakerd.fleet import Link, Spool
        self.name = name
        self.config = SimConfig(url, heartbeat_ms)
        self.state = SimState()
        self.spool = Spool(os.path.join(spool_dir, name), 64 << 20)
        self.presence = {"version": "sim", "tags": "sim=1", "uptime": 0, "boot_time": 0}
        self.inbox = collections.deque()
        self.link = Link(self)

    def wake(self):
        from sakerd.fleet import ret_key, RET_TTL
        while self.inbox:
            item = self.inbox.popleft()
            if item[0] != "jobs":
                continue
            for _, f in item[1]:
                key = ret_key(f[b"jid"].decode())
                for st, reply in (("ack", None), ("ok", "PONG")):
                    self.spool.push_result([(key, {"host": self.name, "state": st,
                                                   "reply": json.dumps(reply), "ms": "0.001"},
                                             0, RET_TTL)])
            self.link.kicked.set()


def run_sim(first, count, url, heartbeat_ms, spool_dir, stop):
    agents = [SimAgent("sim-%04d" % i, url, heartbeat_ms, spool_dir)
              for i in range(first, first + count)]
    for a in agents:
        a.link.start()
    stop.wait()
    for a in agents:
        a.link.stopping.set()


def start_redis(port, dir):
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                             "--save", "", "--appendonly", "no", "--dir", dir,
                             "--maxclients", "10000"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait(lambda: _ping(port), 10)
    return proc


def _ping(port):
    try:
        return redis.Redis(port=port).ping()
    except redis.exceptions.RedisError:
        return False


def wait(pred, timeout, interval=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(interval)
    return None


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_real_agents(n, port, base):
    procs = []
    env = dict(os.environ, PYTHONPATH=ROOT)
    for i in range(n):
        d = os.path.join(base, "real-%02d" % i)
        os.makedirs(os.path.join(d, "scripts"))
        conf = os.path.join(d, "saker.conf")
        with open(conf, "w") as f:
            f.write("port %d\nunixsocket \"\"\nlogfile %s/sakerd.log\nfleet-redis "
                    "redis://127.0.0.1:%d/0\nfleet-name real-%02d\nfleet-heartbeat-ms 10000\n"
                    "fleet-dir fleet\n" % (free_port(), d, port, i))
        procs.append(subprocess.Popen([sys.executable, "-m", "sakerd", "-c", conf], cwd=d,
                                      env=env, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL))
    return procs


def fan_out(r, jid, hosts, timeout):
    """Latencies (ms) of every host's final result for one job `*`."""
    job_id = r.xadd(JOBS, {"jid": jid, "target": "*", "cmd": '["ping"]',
                           "expires": str(int(time.time() + 300))})
    t0 = int(job_id.split(b"-")[0])
    key = "fleet:{j:%s}:ret" % jid
    done = {}
    pos = "0-0"
    deadline = time.monotonic() + timeout
    while len(done) < hosts and time.monotonic() < deadline:
        for _, entries in r.xread({key: pos}, count=5000, block=500) or []:
            for eid, f in entries:
                pos = eid
                if f[b"state"] == b"ok":
                    done[f[b"host"]] = int(eid.split(b"-")[0]) - t0
    return done


def pct(values, p):
    return values[min(len(values) - 1, int(len(values) * p / 100))] if values else float("nan")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--agents", type=int, default=1000)
    ap.add_argument("--procs", type=int, default=40)
    ap.add_argument("--real", type=int, default=10)
    ap.add_argument("--jobs", type=int, default=5)
    ap.add_argument("--heartbeat-ms", type=int, default=10000)
    ap.add_argument("--idle", type=float, default=20.0)
    ap.add_argument("--down", type=float, default=10.0)
    args = ap.parse_args()
    base = tempfile.mkdtemp(prefix="fleet-bench-")
    port = free_port()
    central = start_redis(port, base)
    r = redis.Redis(port=port)
    url = "redis://127.0.0.1:%d/0" % port
    base_mem = r.info("memory")["used_memory"]
    ctx = multiprocessing.get_context("fork")
    stop = ctx.Event()
    per = -(-args.agents // args.procs)
    sims = []
    for i in range(args.procs):
        n = min(per, args.agents - i * per)
        p = ctx.Process(target=run_sim, args=(i * per, n, url, args.heartbeat_ms, base, stop))
        p.start()
        sims.append(p)
    reals = start_real_agents(args.real, port, base)
    total = args.agents + args.real
    try:
        t = time.monotonic()
        ok = wait(lambda: r.zcard(SEEN) >= total, 120, 0.2)
        print("agents seen: %d of %d after %.1f s" % (r.zcard(SEEN), total, time.monotonic() - t))
        if not ok:
            return 1
        time.sleep(2)   # the real agents' links settle on their XREAD
        lat, real = [], []
        for j in range(args.jobs):
            one = fan_out(r, "bench-%d" % j, total, 60)
            print("job %d: %d results, last after %d ms" % (j, len(one), max(one.values())))
            lat += one.values()
            real += [ms for h, ms in one.items() if h.startswith(b"real-")]
            time.sleep(1)
        lat.sort()
        real.sort()
        print("fan-out latency to %d agents: p50 %d ms, p99 %d ms, max %d ms" % (
            total, pct(lat, 50), pct(lat, 99), lat[-1]))
        if real:
            print("  of which the %d real agents: p50 %d ms, p99 %d ms, max %d ms" % (
                args.real, pct(real, 50), pct(real, 99), real[-1]))
        mem = r.info("memory")["used_memory"]
        print("central used_memory: %d -> %d bytes: %.1f KB per agent" % (
            base_mem, mem, (mem - base_mem) / total / 1024))
        c0, t0 = cpu_seconds(central.pid), time.monotonic()
        time.sleep(args.idle)
        c1, t1 = cpu_seconds(central.pid), time.monotonic()
        print("central CPU at idle with %d agents: %.1f%% of a core (over %.0f s)" % (
            total, 100 * (c1 - c0) / (t1 - t0), t1 - t0))
        central.kill()
        central.wait()
        time.sleep(args.down)
        central = start_redis(port, base)
        t_restart = time.monotonic()
        r = redis.Redis(port=port)
        r.xadd(JOBS, {"jid": "after-restart", "target": "*", "cmd": '["ping"]',
                      "expires": str(int(time.time() + 600))})
        peak, last_conns, back = 0, 0, None
        key = "fleet:{j:after-restart}:ret"
        while time.monotonic() - t_restart < 150:
            time.sleep(1)
            conns = r.info("stats")["total_connections_received"]
            peak = max(peak, conns - last_conns)
            last_conns = conns
            hosts = {f[b"host"] for _, f in r.xrange(key) if f[b"state"] == b"ok"}
            if len(hosts) >= total:
                back = time.monotonic() - t_restart
                break
        print("reconnection storm after %.0f s down: peak %d connections/s; every agent "
              "answering again after %s" % (args.down, peak,
                                            "%.1f s" % back if back else "more than 150 s"))
    finally:
        stop.set()
        for p in sims:
            p.join(10)
            if p.is_alive():
                p.kill()
        for p in reals:
            p.send_signal(signal.SIGTERM)
        for p in reals:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        central.kill()
        central.wait()
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
