"""Seeded socket fuzz: many connections throwing mutated RESP at a live sakerd.

    python bench/fuzz_socket.py --seconds 60 --seed 1            # starts its own daemon
    python bench/fuzz_socket.py --port 7379 --seconds 60 --seed 7  # an existing one

The run is bounded in time and reproducible in what it sends: one
random.Random(seed) chooses every action and every byte (what the kernel
delivers in which read still varies, as it must on a real network).

Actions, on up to `connections` sockets at once: open a connection; send a
valid command from a corpus; send a mutated one (bytes flipped, inserted,
deleted, truncated, count or length fields replaced with huge, negative or
non-numeric values); send pure random bytes; announce a large bulk and send
only part of it; read what is waiting; close (sometimes with unread
replies, which makes the kernel send RST). Every 100 ms a separate control
connection sends PING and must get +PONG: its latency is recorded. The
daemon must be alive at every check.

The corpus has no command that would end the experiment on purpose
(SHUTDOWN, CLIENT KILL, CONFIG SET, DEBUG, MONITOR).
"""

import argparse
import os
import random
import socket
import subprocess
import sys
import tempfile
import time

CORPUS = [
    [b"PING"], [b"PING", b"hello"], [b"ECHO", b"x" * 100],
    [b"SET", b"k1", b"v1"], [b"GET", b"k1"], [b"DEL", b"k1", b"k2"], [b"INCR", b"n"],
    [b"LPUSH", b"l", b"a", b"b"], [b"LRANGE", b"l", b"0", b"-1"], [b"HSET", b"h", b"f", b"v"],
    [b"HGETALL", b"h"], [b"MSET", b"a", b"1", b"b", b"2"], [b"EXPIRE", b"a", b"100"],
    [b"SUBSCRIBE", b"c1"], [b"PSUBSCRIBE", b"c*"], [b"UNSUBSCRIBE"], [b"PUBLISH", b"c1", b"m"],
    [b"INFO"], [b"INFO", b"clients"], [b"CLIENT", b"LIST"], [b"CLIENT", b"SETNAME", b"fz"],
    [b"SELECT", b"1"], [b"HELLO", b"3"], [b"HELLO", b"2"], [b"TIME"], [b"DBSIZE"],
    [b"AUTH", b"nopass"], [b"COMMAND", b"COUNT"], [b"PUBSUB", b"CHANNELS"], [b"RESET"],
]
HUGE = [b"-1", b"-9223372036854775808", b"9223372036854775807", b"2147483648",
        b"99999999999999999999", b"0", b"abc", b"", b"1.5", b" 3", b"+4", b"0x10"]


def encode(argv):
    return b"*%d\r\n" % len(argv) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in argv)


def encode_inline(argv):
    return b" ".join(argv) + b"\r\n"


def mutate(rng, data):
    """One random structural or byte-level mutation of a request."""
    kind = rng.randrange(7)
    b = bytearray(data)
    if kind == 0 and b:
        for _ in range(rng.randint(1, 4)):
            b[rng.randrange(len(b))] = rng.randrange(256)
    elif kind == 1:
        pos = rng.randint(0, len(b))
        b[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
    elif kind == 2 and b:
        pos = rng.randrange(len(b))
        del b[pos:pos + rng.randint(1, 8)]
    elif kind == 3:
        b = b[:rng.randint(0, len(b))]
    elif kind == 4:
        # Replace one count or length field with an extreme value.
        fields = [i for i, c in enumerate(b) if c in b"*$"]
        if fields:
            i = rng.choice(fields)
            end = b.find(b"\r", i)
            if end > i:
                b[i + 1:end] = rng.choice(HUGE)
    elif kind == 5:
        b = b * rng.randint(2, 50)
    else:
        b = bytearray(b"\r\n" * rng.randint(1, 3)) + b
    return bytes(b)


def random_payload(rng):
    r = rng.random()
    argv = rng.choice(CORPUS)
    if r < 0.30:
        return encode(argv)
    if r < 0.40:
        return encode_inline(argv)
    if r < 0.80:
        return mutate(rng, encode(argv) if rng.random() < 0.8 else encode_inline(argv))
    if r < 0.95:
        return bytes(rng.randrange(256) for _ in range(rng.randint(1, 512)))
    size = rng.randint(64 * 1024, 4 * 1024 * 1024)
    return b"*2\r\n$4\r\nECHO\r\n$%d\r\n" % size + b"z" * rng.randint(0, size // 2)


def rss_mb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


class Control:
    """The healthy client: PING must get +PONG, quickly."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)

    def ping(self):
        start = time.perf_counter()
        self.sock.sendall(b"PING\r\n")
        data = b""
        while not data.endswith(b"\r\n"):
            chunk = self.sock.recv(64)
            if not chunk:
                break
            data += chunk
        return data == b"+PONG\r\n", time.perf_counter() - start


def _send(sock, data):
    """Send what the kernel takes now: bytes sent, None when the peer is gone."""
    try:
        return sock.send(data)
    except (BlockingIOError, InterruptedError):
        return 0
    except OSError:
        return None


def _read(sock):
    """Bytes waiting on sock; None when the peer closed."""
    try:
        data = sock.recv(1 << 16)
    except (BlockingIOError, InterruptedError):
        return b""
    except OSError:
        return None
    return data or None


def alive(pid):
    if pid is None:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead too.
    with open("/proc/%d/stat" % pid) as f:
        return f.read().rsplit(")", 1)[1].split()[0] != "Z"


def run(port, seed=1, seconds=60, connections=8, pid=None):
    """Fuzz the daemon on `port` for `seconds`; return a dict of figures."""
    rng = random.Random(seed)
    stats = {"seed": seed, "seconds": seconds, "connections": 0, "bytes_sent": 0,
             "protocol_errors": 0, "server_closes": 0, "pings": 0, "pings_ok": 0,
             "ping_ms": [], "rss_start_mb": rss_mb(pid) if pid else 0.0, "rss_max_mb": 0.0}
    control = Control(port)
    socks = []
    deadline = time.monotonic() + seconds
    next_ping = 0.0
    while time.monotonic() < deadline:
        now = time.monotonic()
        if now >= next_ping:
            next_ping = now + 0.1
            assert alive(pid), "daemon died (seed %d)" % seed
            ok, dt = control.ping()
            stats["pings"] += 1
            stats["pings_ok"] += ok
            stats["ping_ms"].append(dt * 1000)
            if pid:
                stats["rss_max_mb"] = max(stats["rss_max_mb"], rss_mb(pid))
        action = rng.random()
        if not socks or action < 0.1 and len(socks) < connections:
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            s.setblocking(False)
            socks.append(s)
            stats["connections"] += 1
            continue
        s = rng.choice(socks)
        if action < 0.8:
            data = random_payload(rng)
            sent = _send(s, data)
            ok = sent is not None
            stats["bytes_sent"] += sent or 0
        else:
            ok = True
        got = _read(s)
        if got:
            stats["protocol_errors"] += got.count(b"-ERR Protocol error")
        if got is None or not ok:
            stats["server_closes"] += 1
        if got is None or not ok or action > 0.93:
            s.close()
            socks.remove(s)
    for s in socks:
        s.close()
    ok, dt = control.ping()
    stats["pings"] += 1
    stats["pings_ok"] += ok
    stats["ping_ms"].append(dt * 1000)
    control.sock.close()
    return stats


def summary(stats):
    ms = sorted(stats["ping_ms"])
    p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))] if ms else 0.0
    return ("seed=%d seconds=%s connections=%d bytes_sent=%d protocol_errors=%d "
            "server_closes=%d pings_ok=%d/%d ping_p99_ms=%.2f ping_max_ms=%.2f "
            "rss_start_mb=%.1f rss_max_mb=%.1f") % (
        stats["seed"], stats["seconds"], stats["connections"], stats["bytes_sent"],
        stats["protocol_errors"], stats["server_closes"], stats["pings_ok"], stats["pings"],
        p99, ms[-1] if ms else 0.0, stats["rss_start_mb"], stats["rss_max_mb"])


def spawn_daemon(workdir):
    """Start sakerd from this checkout on a free port; returns (proc, port)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    conf = os.path.join(workdir, "saker.conf")
    os.makedirs(os.path.join(workdir, "scripts"), exist_ok=True)
    with open(conf, "w") as f:
        f.write("port %d\nlogfile %s\nproto-max-bulk-len 8mb\n"
                "client-output-buffer-limit normal 8mb 0 0\nunixsocket \"\"\n"
                "user default on nopass ~* &* +@all\n" % (
            port, os.path.join(workdir, "sakerd.log")))
    env = dict(os.environ, PYTHONPATH=root)
    proc = subprocess.Popen([sys.executable, "-m", "sakerd", "-c", conf], cwd=workdir, env=env)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc, port
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("sakerd did not start")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, help="fuzz a running daemon (default: start one)")
    ap.add_argument("--pid", type=int, help="its pid, for liveness and RSS checks")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--connections", type=int, default=8)
    args = ap.parse_args()
    proc = None
    port, pid = args.port, args.pid
    with tempfile.TemporaryDirectory() as tmp:
        if port is None:
            proc, port = spawn_daemon(tmp)
            pid = proc.pid
        try:
            stats = run(port, args.seed, args.seconds, args.connections, pid)
            print(summary(stats))
        finally:
            if proc is not None:
                proc.terminate()
                proc.wait(10)


if __name__ == "__main__":
    main()
