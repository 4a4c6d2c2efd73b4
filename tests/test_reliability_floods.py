"""Slowloris and floods: a healthy client keeps a fast PING while others misbehave.

Latency is always compared with a baseline measured in the same test, on
the same daemon, just before the load: the machine (2 shared cores in CI)
may be slow, but the load must not make the daemon slower for others. The
bound is the issue's 50 ms p99, widened to 3x the baseline p99 on a machine
so busy that the unloaded baseline is already above 17 ms.

Memory is the daemon's VmRSS / VmHWM from /proc.

Sizes are CI sizes; SAKERD_SOAK=1 selects the full ones (same code).
"""

import os
import resource
import socket
import subprocess
import sys
import threading
import time

import pytest

from helpers import sakerd_env, ROOT, free_port
from soak.reliability import (UnitConn, hwm_mb, multibulk, rss_mb, scale, wait_for)


def raise_nofile(n):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = n if hard == resource.RLIM_INFINITY else min(n, hard)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] >= n, \
        "this test needs ulimit -n >= %d (hard limit is %s)" % (n, hard)


def p99(samples):
    s = sorted(samples)
    return s[min(len(s) - 1, int(len(s) * 0.99))]


class Pinger:
    """The healthy client: PING round trips, in milliseconds."""

    def __init__(self, port):
        self.conn = UnitConn(port)

    def ping_ms(self):
        start = time.perf_counter()
        self.conn.send(b"PING\r\n")
        assert self.conn.read_unit() == b"+PONG\r\n"
        return (time.perf_counter() - start) * 1000

    def sample(self, n, gap=0.002):
        out = []
        for _ in range(n):
            out.append(self.ping_ms())
            time.sleep(gap)
        return out


def latency_bound(baseline_p99):
    return max(50.0, 3 * baseline_p99)


def other_clients(port):
    """connected_clients, not counting the connection that asks."""
    c = UnitConn(port)
    c.send(b"INFO clients\r\n")
    text = c.read_unit()
    c.close()
    return int(text.split(b"connected_clients:")[1].split(b"\r\n")[0]) - 1


@pytest.mark.parametrize("idle", [scale(5000, 9000)])
def test_idle_connections_cost_no_latency_and_little_memory(make_daemon, idle):
    raise_nofile(idle + 1000)
    d = make_daemon("maxclients %d\n" % (idle + 100))
    pinger = Pinger(d.port)
    base = pinger.sample(300)
    rss_before = rss_mb(d.pid)
    socks = []
    try:
        for i in range(idle):
            socks.append(socket.create_connection(("127.0.0.1", d.port), timeout=30))
            if i % 400 == 399:
                # Let accept catch up so the 511 backlog never drops SYNs.
                wait_for(lambda: other_clients(d.port) >= len(socks), 30, "accepts")
        wait_for(lambda: other_clients(d.port) == idle + 1, 30, "all idle clients")
        # Several server cron passes (hz 10) walk all clients during the sample.
        loaded = pinger.sample(600)
        rss_loaded = rss_mb(d.pid)
    finally:
        for s in socks:
            s.close()
    per_client_kb = (rss_loaded - rss_before) * 1024 / idle
    print("idle=%d ping p99 baseline %.2f ms, loaded %.2f ms; rss %.1f -> %.1f MB (%.1f kB/client)"
          % (idle, p99(base), p99(loaded), rss_before, rss_loaded, per_client_kb))
    assert p99(loaded) < latency_bound(p99(base))
    # A Client, its reader and its epoll registration are a few kB of
    # Python objects; 32 kB each would mean per-client buffers kept around.
    assert per_client_kb < 32
    wait_for(lambda: other_clients(d.port) == 1, 30, "idle clients to be freed")


@pytest.mark.parametrize("slow, seconds", [scale((300, 6), (2000, 60))])
def test_one_byte_per_second_clients_do_not_slow_others(make_daemon, slow, seconds):
    """Slowloris: each slow client sends a request one byte per second.

    With seconds=6 the request is PING\\r\\n and every slow client must end
    up with exactly +PONG; longer runs send an ECHO of that many bytes.
    """
    raise_nofile(slow + 1000)
    d = make_daemon()
    pinger = Pinger(d.port)
    base = pinger.sample(300)
    if seconds == 6:
        request, reply = b"PING\r\n", b"+PONG\r\n"
    else:
        # *2 $4 ECHO $NN: 21 bytes of framing around a two-digit payload.
        payload = b"s" * (seconds - 21)
        request, reply = multibulk(b"ECHO", payload), b"$%d\r\n%s\r\n" % (len(payload), payload)
        assert len(request) == seconds
    conns = [UnitConn(d.port) for _ in range(slow)]
    wait_for(lambda: other_clients(d.port) == slow + 1, 30, "slow clients")
    loaded = []
    for i in range(len(request)):
        byte = request[i:i + 1]
        for c in conns:
            c.send(byte)
        tick = time.monotonic() + 1.0
        while time.monotonic() < tick:
            loaded.append(pinger.ping_ms())
            time.sleep(0.005)
    for c in conns:
        assert c.read_unit() == reply
        c.close()
    print("slow=%d ping p99 baseline %.2f ms, loaded %.2f ms over %d samples"
          % (slow, p99(base), p99(loaded), len(loaded)))
    assert p99(loaded) < latency_bound(p99(base))


FLOOD_CONFIG = ("client-output-buffer-limit normal 32mb 16mb 5\n"
                "client-query-buffer-limit 32mb\n"
                "proto-max-bulk-len 2gb\n")


def flood(port, total, chunk, result):
    """Send `total` bytes of pipelined ECHO requests, never reading a reply."""
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    sent = 0
    try:
        while sent < total:
            s.sendall(chunk)
            sent += len(chunk)
        result["outcome"] = "sent everything"
    except OSError as e:
        result["outcome"] = type(e).__name__
    result["sent"] = sent
    s.close()


def giant_query(port, total, result):
    """One ECHO whose bulk argument announces `total` bytes and streams them."""
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    sent = 0
    block = b"q" * (1 << 20)
    try:
        s.sendall(b"*2\r\n$4\r\nECHO\r\n$%d\r\n" % total)
        while sent < total:
            s.sendall(block)
            sent += len(block)
        result["outcome"] = "sent everything"
        result["reply"] = s.recv(100)
    except OSError as e:
        result["outcome"] = type(e).__name__
    result["sent"] = sent
    s.close()


@pytest.mark.parametrize("total", [scale(256 << 20, 1 << 30)])
@pytest.mark.parametrize("kind", ["pipeline-no-read", "giant-query"])
def test_flooding_client_is_cut_off_and_others_stay_fast(make_daemon, total, kind):
    """A client pushing `total` bytes (1 GiB in the full run) without reading.

    pipeline-no-read: ECHO 4 kB requests whose replies pile up: the client
    is closed at the 32 MB output limit. giant-query: one bulk argument
    that never ends: closed at the 32 MB query buffer limit. Meanwhile the
    healthy client's PING p99 keeps the bound and RSS stays bounded.
    """
    d = make_daemon(FLOOD_CONFIG)
    pinger = Pinger(d.port)
    base = pinger.sample(300)
    rss_before = rss_mb(d.pid)
    loaded = []
    rounds = 0
    # Flooders one after another until the pings under flood are enough
    # for a p99 (200): one flood is cut off in a second or so, and the p99
    # of its 30-odd samples was their maximum, one stall of a loaded machine.
    while len(loaded) < 200 and rounds < 30:
        result = {}
        if kind == "pipeline-no-read":
            chunk = multibulk(b"ECHO", b"e" * 4096) * 16
            t = threading.Thread(target=flood, args=(d.port, total, chunk, result))
        else:
            t = threading.Thread(target=giant_query, args=(d.port, total, result))
        t.start()
        while t.is_alive():
            loaded.append(pinger.ping_ms())
            time.sleep(0.005)
        t.join()
        rounds += 1
        assert result["outcome"] in ("ConnectionResetError", "BrokenPipeError"), result
        assert result["sent"] < total
    info = d.client(protocol=2).info("stats")
    peak = hwm_mb(d.pid)
    print("%s x%d: %s after %d MB; ping p99 baseline %.2f ms, loaded %.2f ms (%d samples); "
          "rss before %.1f MB, peak %.1f MB" % (kind, rounds, result["outcome"],
                                                result["sent"] >> 20, p99(base), p99(loaded),
                                                len(loaded), rss_before, peak))
    if kind == "pipeline-no-read":
        assert info["client_output_buffer_limit_disconnections"] == rounds
    else:
        assert d.log().count("Closing client that reached max query buffer length") == rounds
    assert p99(loaded) < latency_bound(p99(base))
    # One client's 32 MB limit, plus the bytearray's growth slack and the
    # reads in flight: 96 MB over the start is far below what 256 MB
    # (or 1 GiB) of unbounded buffering would take.
    assert peak - rss_before < 96, (rss_before, peak)
    assert Pinger(d.port).ping_ms() >= 0


def start_with_nofile(tmp_path, limit):
    """sakerd started under `ulimit -n limit` (soft and hard), as a shell would."""
    port = free_port()
    conf = tmp_path / "saker.conf"
    (tmp_path / "scripts").mkdir()
    conf.write_text("port %d\nlogfile %s\n" % (port, tmp_path / "sakerd.log"))
    env = sakerd_env()
    proc = subprocess.Popen(
        [sys.executable, "-m", "sakerd", "-c", str(conf)], cwd=str(tmp_path), env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit)))

    def ready():
        assert proc.poll() is None, (tmp_path / "sakerd.log").read_text()
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                return s.recv(10) == b"+PONG\r\n"
        except OSError:
            return False
    wait_for(ready, 60, "sakerd under ulimit -n %d" % limit)
    return proc, port


def test_low_fd_limit_lowers_maxclients_and_never_runs_out(tmp_path):
    """ulimit -n 100: maxclients drops to 68 (Redis keeps 32 fds in reserve),
    extra clients get the maxclients error instead of the daemon hitting
    EMFILE, and freed slots are usable again at once."""
    proc, port = start_with_nofile(tmp_path, 100)
    try:
        log = (tmp_path / "sakerd.log").read_text()
        assert "maxclients has been reduced to 68 to compensate for low ulimit" in log
        held = [UnitConn(port) for _ in range(68)]
        wait_for(lambda: other_clients_via(held[0]) == 67, 30, "68 clients")
        extra = [UnitConn(port) for _ in range(50)]
        for c in extra:
            assert c.read_until_closed() == b"-ERR max number of clients reached\r\n"
            c.close()
        held.pop().close()
        wait_for(lambda: other_clients_via(held[0]) == 66, 30, "a freed slot")
        late = UnitConn(port)
        late.send(b"PING\r\n")
        assert late.read_unit() == b"+PONG\r\n"
        assert "Too many open files" not in (tmp_path / "sakerd.log").read_text()
        for c in held + [late]:
            c.close()
    finally:
        proc.terminate()
        assert proc.wait(60) == 0


def other_clients_via(c):
    c.send(b"INFO clients\r\n")
    text = c.read_unit()
    return int(text.split(b"connected_clients:")[1].split(b"\r\n")[0]) - 1
