"""Prometheus metrics: GET /metrics on `metrics-bind`:`metrics-port`, served from the event loop.

The exposition is built by prometheus_client from one custom collector that
reads sakerd's state when a scrape arrives (no background thread, no
metric objects updated on the hot path); HTTP/1.1 is spoken through h11
(sans-I/O: we only move bytes between it and a non-blocking socket).

Who can scrape: whoever can connect to metrics-bind (127.0.0.1 by
default: every local user, no remote one). Metrics carry no secrets
(names of programs, tasks and commands, counters), but with
`protected-mode yes` a peer that is not on loopback is refused (403), as
Redis's protected mode refuses remote clients of an instance without a
password.

h11 and prometheus_client are imported when metrics-port is set, not
before: a daemon without metrics does not pay their import time.

Bounds: at most MAX_CONNECTIONS scrapers at once (more are closed at
accept), a request head of at most MAX_REQUEST_HEAD bytes, and a
connection that has not finished within IDLE_TIMEOUT_MS is closed. One
request per connection (Connection: close): Prometheus reconnects per
scrape anyway.
"""

import bisect
from http import HTTPStatus
import ipaddress

from . import ae, anet
from .log import log, LL_NOTICE, LL_VERBOSE, LL_WARNING
from .server_h import server

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
MAX_CONNECTIONS = 16
MAX_REQUEST_HEAD = 16384
IDLE_TIMEOUT_MS = 10000
ACCEPTS_PER_CALL = 100
RECV_CHUNK = 16384

# sakerd_task_duration_seconds buckets: tasks run from microseconds to lua-task-timeout.
TASK_BUCKETS = (0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0)

PROCESS_STATES = ("stopped", "starting", "running", "backoff", "exited", "fatal", "stopping")


# ---- task durations (the only state kept for metrics: a histogram needs its buckets) ----

task_durations = {}    # task id -> [count per bucket (non-cumulative)..., +Inf count, sum]


def observe_task(task, seconds):
    """Called by tasks.py after each run of a task."""
    h = task_durations.get(task.id)
    if h is None:
        h = task_durations[task.id] = [0] * (len(TASK_BUCKETS) + 1) + [0.0]
    h[bisect.bisect_left(TASK_BUCKETS, seconds)] += 1
    h[-1] += seconds


# ---- the collector ------------------------------------------------------------------------

class SakerdCollector:
    """Every sakerd_* metric, read from the server's state at scrape time."""

    def collect(self):
        from prometheus_client.core import GaugeMetricFamily
        yield GaugeMetricFamily("sakerd_up", "1 while sakerd is serving", value=1)
        yield GaugeMetricFamily("sakerd_connected_clients", "Connected Redis-protocol clients",
                                value=len(server.clients))
        from .info import lua_memory
        yield GaugeMetricFamily("sakerd_lua_memory_bytes", "Lua heap in use", value=lua_memory())
        yield from self.process_metrics()
        yield from self.task_metrics()
        yield self.command_metric()

    def process_metrics(self):
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
        progs = list(server.procs.programs.values()) if server.procs is not None else []
        state = GaugeMetricFamily("sakerd_process_state",
                                  "1 for the current state of a supervised program",
                                  labels=["name", "state"])
        healthy = GaugeMetricFamily("sakerd_process_healthy",
                                    "1 if the program's health check passes (programs with a check)",
                                    labels=["name"])
        restarts = CounterMetricFamily("sakerd_process_restarts",
                                       "Starts of the program after its first", labels=["name"])
        uptime = GaugeMetricFamily("sakerd_process_uptime_seconds",
                                   "Seconds since the program's current start", labels=["name"])
        cpu = CounterMetricFamily("sakerd_process_cpu_seconds",
                                  "CPU seconds of the program's process group since its start",
                                  labels=["name"])
        rss = GaugeMetricFamily("sakerd_process_resident_memory_bytes",
                                "RSS of the program's process group", labels=["name"])
        for p in progs:
            for s in PROCESS_STATES:
                state.add_metric([p.name, s], 1 if p.state == s else 0)
            if p.health is not None:
                healthy.add_metric([p.name], 1 if p.health.health == "healthy" else 0)
            restarts.add_metric([p.name], max(p.starts - 1, 0))
            uptime.add_metric([p.name], p.uptime())
            cpu.add_metric([p.name], p.usage.cpu_seconds)
            rss.add_metric([p.name], p.usage.rss)
        return state, healthy, restarts, uptime, cpu, rss

    def task_metrics(self):
        from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily
        tasks = list(server.tasks.tasks.values()) if server.tasks is not None else []
        runs = CounterMetricFamily("sakerd_task_runs", "Runs of a Lua task", labels=["task"])
        errors = CounterMetricFamily("sakerd_task_errors", "Failed runs of a Lua task",
                                     labels=["task"])
        duration = HistogramMetricFamily("sakerd_task_duration_seconds",
                                         "Duration of a Lua task's runs", labels=["task"])
        live = set()
        for t in tasks:
            live.add(t.id)
            runs.add_metric([t.name], t.runs)
            errors.add_metric([t.name], t.errors)
            h = task_durations.get(t.id) or [0] * (len(TASK_BUCKETS) + 1) + [0.0]
            buckets, acc = [], 0
            for bound, n in zip(TASK_BUCKETS + (float("inf"),), h[:-1]):
                acc += n
                buckets.append(("+Inf" if bound == float("inf") else repr(bound), acc))
            duration.add_metric([t.name], buckets, h[-1])
        for gone in set(task_durations) - live:     # bounded by the live tasks
            del task_durations[gone]
        return runs, errors, duration

    def command_metric(self):
        from prometheus_client.core import CounterMetricFamily
        total = CounterMetricFamily("sakerd_commands", "Calls of a command (INFO commandstats)",
                                    labels=["cmd"])
        from .info import every_command
        for c in every_command():
            if c.calls:
                total.add_metric([c.fullname], c.calls)
        return total


registry = None     # built by init()


def exposition():
    """The text a scrape receives."""
    from prometheus_client import generate_latest
    return generate_latest(registry)


# ---- the HTTP side ------------------------------------------------------------------------

class Scrape:
    """One HTTP connection: read a request, answer it, close."""

    def __init__(self, listener, sock, addr):
        import h11
        self.listener = listener
        self.sock = sock
        self.fd = sock.fileno()
        self.addr = addr
        self.conn = h11.Connection(our_role=h11.SERVER, max_incomplete_event_size=MAX_REQUEST_HEAD)
        self.request = None
        self.outbuf = b""
        self.watched = ae.AE_NONE
        self.timer = server.el.create_time_event(IDLE_TIMEOUT_MS, self._timed_out)

    def watch(self, mask, proc):
        el = server.el
        if self.watched:
            el.delete_file_event(self.fd, self.watched)
            self.watched = ae.AE_NONE
        if el.create_file_event(self.fd, mask, proc) != ae.AE_OK:
            return self.close()
        self.watched = mask

    def _timed_out(self, el, id, data):
        self.timer = None
        self.close()
        return ae.AE_NOMORE

    def read(self, el, fd, data, mask):
        import h11
        try:
            chunk = self.sock.recv(RECV_CHUNK)
        except BlockingIOError:
            return
        except OSError:
            return self.close()
        try:
            self.conn.receive_data(chunk)
            while True:
                event = self.conn.next_event()
                if event is h11.NEED_DATA:
                    if not chunk:
                        return self.close()
                    return
                if isinstance(event, h11.Request):
                    self.request = event
                elif isinstance(event, h11.EndOfMessage):
                    return self.respond()
                elif isinstance(event, h11.ConnectionClosed):
                    return self.close()
        except h11.RemoteProtocolError as e:
            self.send_response(e.error_status_hint, b"bad request\n")

    def respond(self):
        req = self.request
        target = req.target.split(b"?", 1)[0]
        if not self.allowed():
            self.send_response(403, b"metrics are served to loopback clients only "
                                    b"(protected-mode yes)\n")
        elif target != b"/metrics":
            self.send_response(404, b"not found: try /metrics\n")
        elif req.method not in (b"GET", b"HEAD"):
            self.send_response(405, b"method not allowed\n", [("Allow", "GET, HEAD")])
        else:
            body = exposition()
            self.send_response(200, b"" if req.method == b"HEAD" else body,
                               length=len(body), content_type=CONTENT_TYPE)

    def allowed(self):
        if not server.config.protected_mode:
            return True
        try:
            return ipaddress.ip_address(self.addr[0].split("%")[0]).is_loopback
        except ValueError:
            return False

    def send_response(self, status, body, extra=(), length=None, content_type="text/plain"):
        import h11
        headers = [("Content-Type", content_type),
                   ("Content-Length", str(len(body) if length is None else length)),
                   ("Connection", "close")] + list(extra)
        try:
            self.outbuf = self.conn.send(h11.Response(status_code=status, headers=headers,
                                                      reason=HTTPStatus(status).phrase))
            if body:
                self.outbuf += self.conn.send(h11.Data(data=body))
            self.outbuf += self.conn.send(h11.EndOfMessage())
        except h11.LocalProtocolError as e:    # a bug of ours: never raise into the loop
            log(LL_WARNING, "Metrics response failed: %s", e)
            return self.close()
        self.write(None, None, None, None)

    def write(self, el, fd, data, mask):
        try:
            n = self.sock.send(self.outbuf)
        except BlockingIOError:
            n = 0
        except OSError:
            return self.close()
        self.outbuf = self.outbuf[n:]
        if self.outbuf:
            if self.watched != ae.AE_WRITABLE:
                self.watch(ae.AE_WRITABLE, self.write)
        else:
            self.close()

    def close(self):
        if self.sock is None:
            return
        if self.watched:
            server.el.delete_file_event(self.fd, self.watched)
        if self.timer is not None:
            server.el.delete_time_event(self.timer)
            self.timer = None
        self.sock.close()
        self.sock = None
        self.listener.scrapes.discard(self)


class MetricsListener:
    def __init__(self, sock):
        self.sock = sock
        self.scrapes = set()

    def accept(self, el, fd, data, mask):
        for _ in range(ACCEPTS_PER_CALL):
            conn, addr, err = anet.tcp_accept(self.sock)
            if conn is None:
                if err != anet.ANET_AGAIN:
                    log(LL_VERBOSE, "Accepting a metrics client: %s", err)
                return
            if len(self.scrapes) >= MAX_CONNECTIONS:
                conn.close()
                continue
            scrape = Scrape(self, conn, addr)
            self.scrapes.add(scrape)
            scrape.watch(ae.AE_READABLE, scrape.read)

    def close(self):
        for scrape in list(self.scrapes):
            scrape.close()
        server.el.delete_file_event(self.sock.fileno(), ae.AE_READABLE)
        self.sock.close()


listener = None


def init(srv):
    """Listen on metrics-bind:metrics-port when the port is set; an error message or None."""
    global listener, registry
    cfg = srv.config
    if not cfg.metrics_port:
        return None
    from prometheus_client import CollectorRegistry
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SakerdCollector())
    sock, err = anet.tcp_server(cfg.metrics_port, cfg.metrics_bind, cfg.tcp_backlog)
    if sock is None:
        return "Could not create the metrics listening socket %s:%d: %s" % (
            cfg.metrics_bind, cfg.metrics_port, err)
    listener = MetricsListener(sock)
    if srv.el.create_file_event(sock.fileno(), ae.AE_READABLE, listener.accept) != ae.AE_OK:
        return "Unrecoverable error creating the metrics listening file event."
    srv.shutdown_handlers.append(shutdown)
    log(LL_NOTICE, "Serving Prometheus metrics on http://%s/metrics",
        anet.format_addr(cfg.metrics_bind, cfg.metrics_port))
    return None


def shutdown():
    global listener
    if listener is not None:
        listener.close()
        listener = None
