"""Output buffer limits by client class (SPEC §6, §9.4): a client that does
not read is cut off at its class's limit, asynchronously, with one warning
log line naming it, a `client_killed` event and an INFO counter; the server's
memory stays bounded and publishers and other subscribers do not notice.

Publisher latency is compared with itself measured at the same time: every
tenth PUBLISH goes to a quiet channel that the slow subscriber is not on.
On a shared machine a burst of load in the ten seconds of the flood moves
any percentile taken before it; the quiet channel sees the same bursts.
"""

import json
import socket
import multiprocessing
import time

from helpers import wait_for

MIB = 1024 * 1024
FLOOD, QUIET = b"flood", b"quiet"      # same length: every frame has one size
QUIET_EVERY = 10


def payload(i):
    return b"%08d" % i + b"x" * 1016


def sequence(start, stop):
    """(channel, i) in publishing order: message i on flood, every tenth
    also on quiet."""
    for i in range(start, stop):
        yield FLOOD, i
        if i % QUIET_EVERY == QUIET_EVERY - 1:
            yield QUIET, i


def message_frame(channel, i):
    return b"*3\r\n$7\r\nmessage\r\n$5\r\n%s\r\n$1024\r\n%s\r\n" % (channel, payload(i))


def rss_kib(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError(field)



def subscribe(port, channel, name, *more):
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    channels = (channel,) + more
    s.sendall(b"CLIENT SETNAME %s\r\nSUBSCRIBE %s\r\n" % (name, b" ".join(channels)))
    want = b"+OK\r\n" + b"".join(
        b"*3\r\n$9\r\nsubscribe\r\n$%d\r\n%s\r\n:%d\r\n" % (len(ch), ch, n + 1)
        for n, ch in enumerate(channels))
    got = b""
    while len(got) < len(want):
        got += s.recv(len(want) - len(got))
    assert got == want
    return s


def check_stream(port, name, count, conn):
    """In a child process: subscribe, then check the stream is exactly
    frames 0..count-1. A process, not a thread, so that the publisher's
    latency measured in the parent never waits for this one's GIL."""
    try:
        sock = subscribe(port, FLOOD, name, QUIET)
        conn.send("ready")
        pending = bytearray()
        size = len(message_frame(FLOOD, 0))
        seen = 0
        for channel, i in sequence(0, count):
            while len(pending) < size:
                chunk = sock.recv(256 * 1024)
                if not chunk:
                    raise AssertionError("closed after %d messages" % seen)
                pending += chunk
            if pending[:size] != message_frame(channel, i):
                raise AssertionError("message %d: %r" % (seen, bytes(pending[:80])))
            del pending[:size]
            seen += 1
        if pending:
            raise AssertionError("extra bytes %r" % bytes(pending[:80]))
        conn.send((seen, None))
    except BaseException as e:
        conn.send((-1, repr(e)))


def publish_timed(pub, start, stop):
    """PUBLISH one message at a time; latencies in seconds by channel."""
    lat = {FLOOD: [], QUIET: []}
    for channel, i in sequence(start, stop):
        req = b"*3\r\n$7\r\nPUBLISH\r\n$5\r\n%s\r\n$1024\r\n%s\r\n" % (channel, payload(i))
        t = time.perf_counter()
        pub.sendall(req)
        reply = pub.recv(64)
        lat[channel].append(time.perf_counter() - t)
        assert reply in (b":2\r\n", b":3\r\n"), reply
    return lat


def p99(values):
    return sorted(values)[int(len(values) * 0.99)]


def median(values):
    return sorted(values)[len(values) // 2]


def test_slow_subscriber_is_cut_off_at_pubsub_limit_without_hurting_others(daemon):
    """§9.4: 100,000 x 1 KiB published while one subscriber never reads."""
    port = daemon.port
    idle_count, flood_count = 3000, 100_000
    events = subscribe(port, b"events", b"watcher")
    ctx = multiprocessing.get_context("fork")
    checkers = []
    for i in range(2):
        ours, theirs = ctx.Pipe()
        proc = ctx.Process(target=check_stream,
                           args=(port, b"good%d" % i, idle_count + flood_count, theirs))
        proc.start()
        checkers.append((proc, ours))
    for proc, conn in checkers:
        assert conn.poll(120) and conn.recv() == "ready"
    pub = socket.create_connection(("127.0.0.1", port), timeout=30)
    idle = publish_timed(pub, 0, idle_count)
    start_rss = rss_kib(daemon.pid, "VmRSS")

    slow = subscribe(port, b"flood", b"slow")
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    r = daemon.client(protocol=2)
    slow_id = [int(c["id"]) for c in r.client_list() if c["name"] == "slow"][0]
    flood = publish_timed(pub, idle_count, idle_count + flood_count)

    for proc, conn in checkers:
        assert conn.poll(300), "a good subscriber did not receive everything"
        total = idle_count + flood_count
        assert conn.recv() == (total + total // QUIET_EVERY, None)
        proc.join(10)
    assert r.info("stats")["client_output_buffer_limit_disconnections"] == 1
    assert "slow" not in [c["name"] for c in r.client_list()]
    peak = rss_kib(daemon.pid, "VmHWM")
    assert (peak - start_rss) * 1024 <= 64 * MIB, (start_rss, peak)
    print("PUBLISH p99 idle %.0fus, flooded channel %.0fus, quiet channel meanwhile %.0fus; "
          "median idle %.0fus, flooded %.0fus; RSS start %d KiB, peak %d KiB" % (
              p99(idle[FLOOD]) * 1e6, p99(flood[FLOOD]) * 1e6, p99(flood[QUIET]) * 1e6,
              median(idle[FLOOD]) * 1e6, median(flood[FLOOD]) * 1e6, start_rss, peak))
    # Publishing to the slow subscriber's channel is no slower than to a
    # channel it is not on, measured in the same seconds ...
    assert p99(flood[FLOOD]) <= 5 * p99(flood[QUIET])
    # ... and the server as a whole is not slowed (medians shrug off bursts).
    assert median(flood[FLOOD]) <= 5 * median(idle[FLOOD])

    # (What the kernel does with the unsent tail of the closed socket --
    # deliver it, or drop the orphan under memory pressure -- is its own.)
    slow.close()

    events.settimeout(10)
    data = b""
    while b"client_killed" not in data or not data.endswith(b"\r\n"):
        data += events.recv(65536)
    body = data.split(b"\r\n")[-2]
    event = json.loads(body)
    assert set(event) == {"type", "ts", "reason", "id", "addr", "name", "omem", "class"}
    assert (event["type"], event["reason"], event["id"], event["name"], event["class"]) == \
        ("client_killed", "output-buffer-limit", slow_id, "slow", "pubsub")
    # Cut off when its queue first reached the 32mb hard limit.
    assert 32 * MIB <= event["omem"] < 32 * MIB + 2048
    warnings = [l for l in daemon.log().splitlines() if "output buffer limits" in l]
    assert len(warnings) == 1
    assert "[WARNING]" in warnings[0] and " name=slow " in warnings[0]
    assert "Client id=%d addr=" % slow_id in warnings[0]


def fill_without_reading(port, name, channel, publisher, megabytes):
    """A subscriber that never reads, then `megabytes` published to it."""
    s = subscribe(port, channel, name)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    chunk = b"*3\r\n$7\r\nPUBLISH\r\n$%d\r\n%s\r\n$1024\r\n%s\r\n" % (
        len(channel), channel, b"y" * 1024)
    for _ in range(megabytes):
        publisher.sendall(chunk * 1024)
        got = b""
        while len(got) < 4 * 1024:
            got += publisher.recv(65536)
    return s


def test_soft_limit_set_live_disconnects_after_its_seconds(daemon):
    r = daemon.client(protocol=2)
    assert r.config_set("client-output-buffer-limit", "pubsub 0 512kb 2")
    assert r.config_get("client-output-buffer-limit") == {
        "client-output-buffer-limit": "normal 0 0 0 slave 268435456 67108864 60 pubsub 0 524288 2"}
    pub = socket.create_connection(("127.0.0.1", daemon.port), timeout=30)
    s = fill_without_reading(daemon.port, b"soft", b"s", pub, 8)
    # Over the soft limit, but not for more than its seconds yet: still there.
    omem = [int(c["omem"]) for c in r.client_list() if c["name"] == "soft"]
    assert omem and omem[0] > 512 * 1024
    # Nothing more is published: the clients cron closes it.
    wait_for(lambda: "soft" not in [c["name"] for c in r.client_list()], 30, "soft close")
    assert r.info("stats")["client_output_buffer_limit_disconnections"] == 1
    s.close()


def test_normal_class_limit_and_no_limit_for_pubsub_when_zeroed(daemon):
    r = daemon.client(protocol=2)
    r.config_set("client-output-buffer-limit", "normal 1mb 0 0 pubsub 0 0 0")
    # A normal client pipelining big replies and not reading is cut off.
    hog = socket.create_connection(("127.0.0.1", daemon.port), timeout=30)
    hog.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    hog.sendall(b"CLIENT SETNAME hog\r\n")
    big = b"ECHO " + b"z" * 60000 + b"\r\n"
    try:
        for _ in range(200):
            hog.sendall(big)
    except OSError:
        pass
    wait_for(lambda: "hog" not in [c["name"] for c in r.client_list()], 30, "hog close")
    assert r.info("stats")["client_output_buffer_limit_disconnections"] == 1
    # With pubsub limits at 0, a subscriber may queue past 32mb... within reason:
    pub = socket.create_connection(("127.0.0.1", daemon.port), timeout=30)
    s = fill_without_reading(daemon.port, b"unlimited", b"u", pub, 40)
    omem = [int(c["omem"]) for c in r.client_list() if c["name"] == "unlimited"]
    assert omem and omem[0] > 32 * MIB
    assert r.info("stats")["client_output_buffer_limit_disconnections"] == 1
    # ... until the limit comes back: it applies at the next check (the cron).
    r.config_set("client-output-buffer-limit", "pubsub 32mb 8mb 60")
    wait_for(lambda: "unlimited" not in [c["name"] for c in r.client_list()], 10,
             "close after CONFIG SET")
    assert r.info("stats")["client_output_buffer_limit_disconnections"] == 2
    s.close()
    line = [l for l in daemon.log().splitlines() if "output buffer limits" in l][0]
    assert " name=hog " in line and " flags=N " in line
