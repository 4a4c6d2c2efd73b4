"""Prometheus metrics on metrics-port (issue 16): the exposition, promtool, a real prometheus."""

import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request

from helpers import free_port, require_tool, wait_for
from test_procs import Events


def metrics_daemon(make_daemon, config=""):
    port = free_port()
    d = make_daemon("metrics-port %d\n%s" % (port, config))
    d.metrics_port = port
    return d


def scrape(d, path="/metrics", method="GET"):
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (d.metrics_port, path), method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, dict(resp.headers), resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode()


def samples(text):
    """{'name{labels}': value} of an exposition's sample lines."""
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, value = line.rsplit(" ", 1)
            out[key] = float(value)
    return out


def test_metrics_report_programs_tasks_lua_clients_and_commands(make_daemon):
    d = metrics_daemon(make_daemon)
    r = d.client(protocol=2, decode_responses=True)
    ev = Events(d)
    r.eval('saker.every(50, function() end, {name = "tick"}); '
           'saker.every(50, function() error("boom") end, {name = "bad"}); '
           'return saker.supervise{name = "web", cmd = "exec sleep 300", startsecs = 0.1, '
           'check = {tcp = "127.0.0.1:" .. ARGV[1], interval_ms = 100}}', 0, d.port)
    ev.wait_for("web", "running")
    r.set("k", "v")
    r.execute_command("PROC", "LIST")
    wait_for(lambda: samples(scrape(d)[2]).get('sakerd_process_healthy{name="web"}') == 1,
             what="web healthy")
    wait_for(lambda: int(samples(scrape(d)[2]).get('sakerd_task_errors_total{task="bad"}', 0)) >= 2,
             what="task runs")
    wait_for(lambda: samples(scrape(d)[2])['sakerd_process_resident_memory_bytes{name="web"}'] > 0,
             what="a resource sample")
    status, headers, text = scrape(d)
    assert status == 200
    assert headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert headers["Connection"] == "close"
    s = samples(text)
    assert s["sakerd_up"] == 1
    assert s['sakerd_process_state{name="web",state="running"}'] == 1
    assert s['sakerd_process_state{name="web",state="stopped"}'] == 0
    assert sum(v for k, v in s.items() if k.startswith('sakerd_process_state{name="web"')) == 1
    assert s['sakerd_process_healthy{name="web"}'] == 1
    assert s['sakerd_process_restarts_total{name="web"}'] == 0
    assert s['sakerd_process_uptime_seconds{name="web"}'] >= 0
    assert 'sakerd_process_cpu_seconds_total{name="web"}' in s
    assert s['sakerd_task_runs_total{task="tick"}'] >= 1
    assert s['sakerd_task_errors_total{task="tick"}'] == 0
    runs = s['sakerd_task_duration_seconds_count{task="tick"}']
    assert runs >= 1 and s['sakerd_task_duration_seconds_bucket{le="+Inf",task="tick"}'] == runs
    assert 'sakerd_task_duration_seconds_bucket{le="0.001",task="tick"}' in s
    assert s["sakerd_lua_memory_bytes"] > 0
    assert s["sakerd_connected_clients"] >= 2        # r and the events subscriber
    assert s['sakerd_commands_total{cmd="set"}'] == 1
    assert s['sakerd_commands_total{cmd="proc|list"}'] == 1
    assert s['sakerd_commands_total{cmd="eval"}'] == 1
    # A program without a check has no healthy sample.
    r.eval('return saker.supervise{name = "plain", cmd = "exec sleep 300"}', 0)
    assert 'sakerd_process_healthy{name="plain"}' not in samples(scrape(d)[2])
    assert r.ping() is True


def test_promtool_accepts_the_exposition(make_daemon):
    promtool = require_tool("promtool")
    d = metrics_daemon(make_daemon)
    r = d.client(protocol=2, decode_responses=True)
    r.eval('saker.every(50, function() end, {name = "tick"}); '
           'return saker.supervise{name = "web", cmd = "exec sleep 300", '
           'check = {tcp = "127.0.0.1:" .. ARGV[1]}}', 0, d.port)
    wait_for(lambda: "sakerd_task_duration_seconds_bucket" in scrape(d)[2], what="a task run")
    text = scrape(d)[2]
    out = subprocess.run([promtool, "check", "metrics"], input=text.encode(),
                         capture_output=True, timeout=30)
    assert (out.returncode, out.stdout, out.stderr) == (0, b"", b"")


def test_a_real_prometheus_scrapes_sakerd(make_daemon, tmp_path):
    prometheus = require_tool("prometheus")
    d = metrics_daemon(make_daemon)
    r = d.client(protocol=2, decode_responses=True)
    r.eval('return saker.supervise{name = "web", cmd = "exec sleep 300", startsecs = 0.1}', 0)
    conf = tmp_path / "prometheus.yml"
    conf.write_text("global:\n  scrape_interval: 1s\nscrape_configs:\n"
                    "  - job_name: sakerd\n    static_configs:\n"
                    "      - targets: ['127.0.0.1:%d']\n" % d.metrics_port)
    web = free_port()
    log = open(tmp_path / "prometheus.log", "wb")
    proc = subprocess.Popen([prometheus, "--config.file=%s" % conf,
                             "--storage.tsdb.path=%s" % (tmp_path / "tsdb"),
                             "--web.listen-address=127.0.0.1:%d" % web],
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        query = urllib.parse.urlencode({"query": 'sakerd_process_state{name="web",state="running"}'})

        def answered():
            try:
                with urllib.request.urlopen("http://127.0.0.1:%d/api/v1/query?%s" % (web, query),
                                            timeout=5) as resp:
                    result = json.load(resp)["data"]["result"]
            except OSError:
                return None
            return result or None
        # A ceiling: prometheus starts its TSDB, then scrapes once a second.
        result = wait_for(answered, 90, "prometheus to scrape sakerd", interval=0.5)
        assert len(result) == 1
        assert result[0]["metric"] == {"__name__": "sakerd_process_state", "name": "web",
                                       "state": "running", "instance": "127.0.0.1:%d" % d.metrics_port,
                                       "job": "sakerd"}
        assert result[0]["value"][1] == "1"
    finally:
        proc.terminate()
        proc.wait(60)
        log.close()


def test_other_paths_methods_and_bad_requests(make_daemon):
    d = metrics_daemon(make_daemon)
    assert scrape(d, "/")[0:1] == (404,)
    assert scrape(d, "/")[2] == "not found: try /metrics\n"
    status, headers, body = scrape(d, method="POST")
    assert (status, headers["Allow"], body) == (405, "GET, HEAD", "method not allowed\n")
    status, headers, body = scrape(d, method="HEAD")
    assert status == 200 and body == "" and int(headers["Content-Length"]) > 100
    with socket.create_connection(("127.0.0.1", d.metrics_port), timeout=10) as s:
        s.sendall(b"NOT HTTP\r\n\r\n")
        reply = s.recv(4096)
        assert reply.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    # The query string is ignored, as Prometheus's own exporters do.
    assert scrape(d, "/metrics?x=1")[0] == 200
    assert d.client().ping() is True


def test_a_client_that_sends_nothing_is_closed_and_does_not_block_scrapes(make_daemon):
    d = metrics_daemon(make_daemon)
    # The 10 s run from the accept, which is after t0: a lower bound that a
    # slow scrape below cannot eat into (t0 was once taken after it).
    t0 = time.monotonic()
    idle = socket.create_connection(("127.0.0.1", d.metrics_port), timeout=60)
    try:
        idle.sendall(b"GET /metrics HTTP/1.1\r\n")       # never finishes its head
        assert scrape(d)[0] == 200
        assert idle.recv(100) == b""                    # closed after 10 s
        assert 9.9 < time.monotonic() - t0 < 40         # a ceiling for a loaded machine
    finally:
        idle.close()


def test_metrics_port_off_by_default_and_a_busy_port_refuses_the_start(make_daemon):
    d = make_daemon()
    assert d.client().config_get("metrics-port") == {"metrics-port": "0"}
    assert d.client().config_get("metrics-bind") == {"metrics-bind": "127.0.0.1"}
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen(1)
    try:
        port = holder.getsockname()[1]
        bad = make_daemon("metrics-port %d\n" % port, wait=False)
        assert bad.proc.wait(60) == 1
        assert ("Could not create the metrics listening socket 127.0.0.1:%d: bind: "
                "Address already in use" % port) in bad.output()
    finally:
        holder.close()


def test_protected_mode_refuses_a_peer_not_on_loopback(make_daemon):
    addrs = [a for a in subprocess.run(["hostname", "-I"], capture_output=True, text=True)
             .stdout.split() if ":" not in a and not a.startswith("127.")]
    assert addrs, "this test needs a non-loopback IPv4 address"
    d = metrics_daemon(make_daemon, "metrics-bind 0.0.0.0\n")
    with socket.create_connection((addrs[0], d.metrics_port), timeout=10,
                                  source_address=(addrs[0], 0)) as s:
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        reply = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 403 Forbidden\r\n")
    assert reply.endswith(b"\r\n\r\nmetrics are served to loopback clients only (protected-mode yes)\n")
    assert scrape(d)[0] == 200
