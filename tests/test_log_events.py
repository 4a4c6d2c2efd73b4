"""The log channel and lifecycle events (SPEC §6): every log line is also a
message on `log-channel`; events are JSON objects on `event-channel`.
"""

import json
import re
import socket
import subprocess
import threading
import time

from helpers import require_tool, wait_for

LINE = re.compile(r"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}\] \[(DEBUG|VERBOSE|NOTICE|WARNING)\] "
                  r"\[[\w.]+:\d+\] ")



def test_redis_cli_subscribe_log_shows_connection_log_line(make_daemon, tmp_path):
    cli = require_tool("redis-cli")
    daemon = make_daemon("loglevel verbose\n")
    out_path = tmp_path / "cli.out"
    with open(out_path, "wb") as out:
        proc = subprocess.Popen([cli, "-p", str(daemon.port), "subscribe", "log"],
                                stdout=out, stderr=subprocess.STDOUT)
    try:
        r = daemon.client(protocol=2)
        wait_for(lambda: r.pubsub_numsub("log") == [(b"log", 1)], what="redis-cli subscribed")
        with socket.create_connection(("127.0.0.1", daemon.port)) as s:
            addr = "%s:%d" % s.getsockname()
            want = "Accepted %s\n" % addr
            text = wait_for(lambda: want in out_path.read_text() and out_path.read_text(),
                            what="the log line in redis-cli's output")
    finally:
        proc.terminate()
        proc.wait(10)
    # redis-cli prints each message as its three elements, one per line.
    lines = text.split("\n")
    assert lines[:3] == ["subscribe", "log", "1"]
    i = [n for n, l in enumerate(lines) if l.endswith("Accepted " + addr)][0]
    assert lines[i - 2:i] == ["message", "log"]
    assert LINE.match(lines[i]) and "[VERBOSE] [networking:" in lines[i]
    # The message is exactly the line written to the log file.
    assert lines[i] in daemon.log().splitlines()


_readers = {}


def read_frames(sock, n):
    """n RESP2 arrays (of bulk strings and integers) from sock."""
    f = _readers.setdefault(sock, sock.makefile("rb"))
    frames = []
    for _ in range(n):
        head = f.readline()
        assert head.startswith(b"*"), head
        items = []
        for _ in range(int(head[1:])):
            line = f.readline()
            if line.startswith(b":"):
                items.append(int(line[1:]))
            else:
                assert line.startswith(b"$"), line
                items.append(f.read(int(line[1:]) + 2)[:-2])
        frames.append(items)
    return frames


def subscriber(port, *channels):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"SUBSCRIBE %s\r\n" % b" ".join(channels))
    assert read_frames(s, len(channels)) == [
        [b"subscribe", ch, i + 1] for i, ch in enumerate(channels)]
    return s


def test_config_set_logs_line_and_emits_event(daemon):
    s = subscriber(daemon.port, b"log", b"events")
    r = daemon.client(protocol=2)
    before = time.time()
    assert r.config_set("loglevel", "verbose")
    log_msg, event_msg = read_frames(s, 2)
    assert log_msg[:2] == [b"message", b"log"]
    line = log_msg[2].decode()
    assert LINE.match(line) and line.endswith(
        "[NOTICE] [cmd_server:%s] CONFIG SET loglevel changed from 'notice' to 'verbose'" %
        line.split("[cmd_server:")[1].split("]")[0])
    assert line in daemon.log().splitlines()
    assert event_msg[:2] == [b"message", b"events"]
    event = json.loads(event_msg[2])
    assert list(event) == ["type", "ts", "name", "old", "new"]
    assert (event["type"], event["name"], event["old"], event["new"]) == \
        ("config_changed", "loglevel", "notice", "verbose")
    assert before - 1 <= event["ts"] <= time.time() + 1


def test_log_channel_is_live_configurable_and_empty_turns_it_off(daemon):
    r = daemon.client(protocol=2)
    s = socket.create_connection(("127.0.0.1", daemon.port), timeout=10)
    s.sendall(b"PSUBSCRIBE *\r\n")
    read_frames(s, 1)
    r.config_set("log-channel", "mylog")
    # The line about the change is logged after it: it goes to the new channel.
    (msg, event) = read_frames(s, 2)
    assert msg[:3] == [b"pmessage", b"*", b"mylog"] and msg[3].endswith(
        b"CONFIG SET log-channel changed from 'log' to 'mylog'")
    assert event[2] == b"events"
    r.config_set("log-channel", "")
    # Off: the config_changed event arrives with no log message before it.
    (event,) = read_frames(s, 1)
    assert event[:3] == [b"pmessage", b"*", b"events"]
    assert json.loads(event[3])["name"] == "log-channel"
    r.config_set("event-channel", "ev2")
    (event,) = read_frames(s, 1)
    assert event[2] == b"ev2" and json.loads(event[3])["new"] == "ev2"
    s.close()


def test_log_subscriber_cut_off_by_log_lines_does_not_recurse(daemon):
    """The warning about a log subscriber over its limit is logged while a
    log line is being published: it goes to the file only, exactly once."""
    r = daemon.client(protocol=2)
    r.config_set("client-output-buffer-limit", "pubsub 4mb 0 0")
    slow = socket.create_connection(("127.0.0.1", daemon.port), timeout=10)
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)
    slow.sendall(b"CLIENT SETNAME slowlog\r\nSUBSCRIBE log\r\n")
    good = subscriber(daemon.port, b"log")
    received = []
    stop = threading.Event()

    def drain():
        good.settimeout(0.2)
        while not stop.is_set():
            try:
                data = good.recv(1 << 20)
            except socket.timeout:
                continue
            if not data:
                return
            received.append(data)

    reader = threading.Thread(target=drain)
    reader.start()
    try:
        wait_for(lambda: r.pubsub_numsub("log") == [(b"log", 2)], what="subscribers")
        # Each CONFIG SET logs a ~200 KB line (old and new value).
        values = ["a" * 100_000, "b" * 100_000]
        n = 0
        while r.info("stats")["client_output_buffer_limit_disconnections"] == 0:
            assert n < 200, "the slow log subscriber was never cut off"
            r.config_set("event-channel", values[n % 2])
            n += 1
        assert r.ping()
    finally:
        stop.set()
        reader.join(10)
    warnings = [l for l in daemon.log().splitlines() if "output buffer limits" in l]
    assert len(warnings) == 1 and " name=slowlog " in warnings[0]
    assert b"output buffer limits" not in b"".join(received)
    assert "Traceback" not in daemon.output()
    slow.close()
    good.close()


def test_log_line_and_event_for_a_resp3_subscriber_follow_its_own_reply(daemon):
    """A log line or event published while a RESP3 subscriber's own command
    runs is held until that command's reply is complete, so it can never
    land between the parts of a reply."""
    s = socket.create_connection(("127.0.0.1", daemon.port), timeout=10)
    s.sendall(b"HELLO 3\r\nSUBSCRIBE log events\r\n")
    f = _readers.setdefault(s, s.makefile("rb"))
    assert f.readline() == b"%7\r\n"
    while f.readline() != b"*0\r\n":      # the rest of HELLO's map ends with modules
        pass
    for n, ch in enumerate((b"log", b"events")):
        assert [f.readline() for _ in range(6)] == [
            b">3\r\n", b"$9\r\n", b"subscribe\r\n", b"$%d\r\n" % len(ch), ch + b"\r\n",
            b":%d\r\n" % (n + 1)]
    s.sendall(b"CONFIG SET loglevel verbose\r\n")
    assert f.readline() == b"+OK\r\n"
    assert [f.readline() for _ in range(5)] == [
        b">3\r\n", b"$7\r\n", b"message\r\n", b"$3\r\n", b"log\r\n"]
    f.readline()
    assert f.readline().endswith(
        b"CONFIG SET loglevel changed from 'notice' to 'verbose'\r\n")
    assert [f.readline() for _ in range(5)] == [
        b">3\r\n", b"$7\r\n", b"message\r\n", b"$6\r\n", b"events\r\n"]
    f.readline()
    assert json.loads(f.readline())["type"] == "config_changed"
    s.close()
