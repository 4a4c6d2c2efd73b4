"""Server state, command dispatch, cron and the main loop (Redis's server.c).

`server` is the one Server instance, as in Redis; every module imports it.
This module imports the others lazily (in init_server and friends) so that
they can import `server` at their top.
"""

import json
import os
import random
import resource
import sys
import time

from .log import log, LL_WARNING
from .memory import HeapTrimmer

# process_command() reads the clock once per command: spare it the module lookup.
_perf_counter_ns = time.perf_counter_ns

# Command flags (the subset of Redis's that sakerd uses).
CMD_WRITE = 1 << 0
CMD_READONLY = 1 << 1
CMD_ADMIN = 1 << 4
CMD_PUBSUB = 1 << 5
CMD_NOSCRIPT = 1 << 6
CMD_LOADING = 1 << 9
CMD_STALE = 1 << 10
CMD_SKIP_MONITOR = 1 << 11
CMD_SKIP_SLOWLOG = 1 << 12
CMD_FAST = 1 << 14
CMD_NO_AUTH = 1 << 15
CMD_BLOCKING = 1 << 19
CMD_NO_MULTI = 1 << 24
CMD_ALLOW_BUSY = 1 << 26      # may run while a script is in BUSY state
CMD_ALLOW_SUBSCRIBED = 1 << 27  # may run in RESP2 subscribed context
CMD_FANOUT = 1 << 28          # may add to the open pub/sub fan-out (PUBLISH)

# The client flags process_command() tests, for the subscribed context and
# for MULTI (the other client flags are in networking.py, which imports
# this module).
CLIENT_MULTI = 1 << 3
CLIENT_SCRIPT = 1 << 8
CLIENT_PUBSUB = 1 << 18
CLIENT_SCRIPT = 1 << 8
_PUBSUB_OR_MULTI = CLIENT_PUBSUB | CLIENT_MULTI

STATS_METRIC_SAMPLES = 16
STATS_METRIC_COMMAND = 0
STATS_METRIC_NET_INPUT = 1
STATS_METRIC_NET_OUTPUT = 2
STATS_METRIC_COUNT = 3


class Command:
    __slots__ = ("name", "fullname", "proc", "arity", "flags", "first_key", "last_key",
                 "key_step", "subcommands", "group", "summary", "calls", "nsec",
                 "rejected_calls", "failed_calls", "parent", "plugin", "acl",
                 "acl_id", "acl_categories", "key_specs")

    def __init__(self, name, proc, arity, flags=0, first_key=0, last_key=0, key_step=0,
                 group="generic", summary="", acl=""):
        self.name = name
        self.fullname = name
        self.proc = proc
        self.arity = arity
        self.flags = flags
        self.first_key = first_key
        self.last_key = last_key
        self.key_step = key_step
        self.subcommands = None
        self.group = group
        self.summary = summary
        self.parent = None
        self.plugin = None
        # ACL categories beyond those the flags and the group imply (acl.py),
        # as in Redis's command JSON "acl_categories": "keyspace dangerous".
        self.acl = acl
        self.acl_id = 0             # set by acl.table.setup() at registration
        self.acl_categories = 0
        self.key_specs = ()
        self.reset_stats()

    def reset_stats(self):
        self.calls = 0
        self.nsec = 0       # INFO commandstats shows usec: nsec // 1000
        self.rejected_calls = 0
        self.failed_calls = 0

    def add_subcommand(self, sub):
        if self.subcommands is None:
            self.subcommands = {}
        sub.parent = self
        sub.fullname = "%s|%s" % (self.name, sub.name)
        self.subcommands[sub.name.encode()] = sub


class Server:
    """All server state. Fields keep Redis's names where they have one."""

    def __init__(self):
        self.config = None
        self.el = None
        self.commands = {}          # name bytes (lower and upper) -> Command
        self.clients = {}           # id -> Client, in creation order
        self.clients_pending_write = []
        self.clients_to_close = []
        self.monitors = []
        self.listeners = []         # (sock, handler)
        self.db = []
        self.next_client_id = 1
        self.current_client = None
        self.pid = os.getpid()
        self.run_id = "%040x" % random.getrandbits(160)
        self.executable = os.path.abspath(sys.argv[0]) if sys.argv else ""
        self.unixtime = int(time.time())
        self.mstime = int(time.time() * 1000)
        self.stat_starttime = time.time()
        self.cronloops = 0
        self.hz = 10
        self.shutdown_asap = False
        self.exit_code = 0
        self.accept_error_logged_at = 0.0
        self.accepting_paused_until = 0.0
        self.obuf_check_threshold = 1 << 62
        self.slowlog_threshold_ns = 1 << 62   # the smaller of slowlog_ns and latency's
        self.slowlog_ns = 1 << 62
        self.pidfile = None
        self.pubsub_channels = {}   # channel -> {client: None}
        self.pubsub_patterns = {}   # pattern -> {client: None}
        self.pubsub_shard_channels = {}   # shard channel -> {client: None}
        self.slowlog = []
        self.slowlog_entry_id = 0
        self.script_busy = False     # a script passed lua-time-limit: -BUSY mode
        self.lua = None              # the Lua bridge, when built
        self.heap = HeapTrimmer()    # gives freed heap pages back (memory.py)
        self.procs = None            # the process manager, when built
        self.tasks = None            # plugins and tasks, when built
        self.sigchld_handlers = []
        self.shutdown_handlers = []
        self.cron_handlers = []
        self.event_handlers = []    # fn(event dict), for every lifecycle event (fleet.py)
        self.deferred_pushes = []   # (client, frame): see pubsub.publish
        self.tracking_clients = 0   # clients with CLIENT TRACKING on (tracking.py)
        self.fanout = None          # the open pubsub.Fanout batch, if any
        self.notify_keyspace_events = 0   # NOTIFY_* classes published (notify.py)
        self.prev_err_count = 0     # error replies when a command last counted a failure
        self.blocked_clients = 0    # blocked.py: how many clients are blocked,
        self.ready_keys = []        # (db, key) made ready since the last serve,
        self.unblocked_clients = []   # unblocked clients whose input waits,
        self.clients_timeout_table = []   # heap of (deadline ms, id, client)
        self.reset_stats()

    def reset_stats(self):
        self.stat_numcommands = 0
        self.stat_numconnections = 0
        self.stat_rejected_conn = 0
        self.stat_net_input_bytes = 0
        self.stat_net_output_bytes = 0
        self.stat_expiredkeys = 0
        self.stat_keyspace_hits = 0
        self.stat_keyspace_misses = 0
        self.stat_total_error_replies = 0
        self.stat_client_outbuf_limit_disconnections = 0
        self.stat_client_qbuf_limit_disconnections = 0
        self.stat_accept_eagain = 0
        self.stat_peak_memory = 0
        self.errors = {}            # error code -> count (errorstats)
        self.inst_metric = [[0] * STATS_METRIC_SAMPLES for _ in range(STATS_METRIC_COUNT)]
        self.inst_metric_idx = [0] * STATS_METRIC_COUNT
        self.inst_metric_last = [(0, 0)] * STATS_METRIC_COUNT
        self.stat_client_recent_max_input = 0
        self.stat_client_recent_max_output = 0
        for cmd in self.commands.values():
            cmd.reset_stats()
            for sub in (cmd.subcommands or {}).values():
                sub.reset_stats()

    # ---- errors and events ----------------------------------------------

    def count_error_reply(self, code):
        self.stat_total_error_replies += 1
        self.errors[code] = self.errors.get(code, 0) + 1

    def emit_event(self, type, **fields):
        """Publish a lifecycle event as JSON on `event-channel` (SPEC §6) and
        append it to `event-stream` (history.py).

        Schema: {"type": <str>, "ts": <unix seconds, float>, ...fields}.
        """
        event = {"type": type, "ts": round(time.time(), 3)}
        event.update(fields)
        for handler in self.event_handlers:
            handler(event)
        from . import history, pubsub
        history.append_event(event)     # to `event-stream` too
        channel = self.config.event_channel if self.config else ""
        if not channel:
            return 0
        return pubsub.publish(channel.encode(), json.dumps(event, sort_keys=False).encode(),
                              out_of_band=True)

    def pubsub_unsubscribe_all(self, c):
        if c.flags & CLIENT_PUBSUB:
            from . import pubsub
            pubsub.unsubscribe_all_channels(c, False)
            pubsub.unsubscribe_all_patterns(c, False)
            pubsub.unsubscribe_all_shard_channels(c, False)

    # ---- commands -----------------------------------------------------------

    def register_command(self, cmd):
        from .acl import table
        name = cmd.name.lower().encode()
        self.commands[name] = cmd
        self.commands[name.upper()] = cmd
        table.setup(cmd)

    def unregister_command(self, name):
        from .acl import table
        name = name.lower().encode()
        cmd = self.commands.pop(name, None)
        self.commands.pop(name.upper(), None)
        if cmd is not None:
            table.remove(cmd)

    def lookup_command(self, argv):
        """The Command for argv (a subcommand when it has some), or None."""
        name = argv[0]
        cmd = self.commands.get(name)
        if cmd is None:
            cmd = self.commands.get(name.lower())
            if cmd is None:
                return None
        if cmd.subcommands is not None and len(argv) > 1:
            return cmd.subcommands.get(argv[1].lower())
        return cmd

    def process_command(self, c, argv, clock=0):
        """Check a request and run it: processCommand() and call() (hot path).

        One function, not two: a Python call costs as much as all the
        checks. Scripts come here too, after their own checks (scripting.py):
        their fake client is authenticated, never subscribed, and may run
        while the server is BUSY with the script itself. The caller makes c
        the current client (once per pipeline, not per command).

        The duration is measured from `clock` when given: the end of the
        previous command of the same pipeline. That is one clock read per
        command instead of two (a read costs ~47 ns from Python); the time
        between two commands (the lookup and checks of this one, well under
        a microsecond) counts as this command's. Durations add up in
        nanoseconds. Returns the clock at the end of the command, or `clock`
        if the command was refused.
        """
        cmd = self.commands.get(argv[0])
        if cmd is None or cmd.subcommands is not None:
            cmd = self.lookup_command(argv)
            if cmd is None:
                if self.fanout is not None:
                    self.fanout.flush()
                self._reject_unknown(c, argv)
                return clock
        if self.fanout is not None and (c.pubsub_channels or not cmd.flags & CMD_FANOUT):
            # Messages published before this command reach their
            # subscribers before anything this command does (pubsub.Fanout).
            self.fanout.flush()
        c.argv = argv
        c.lastcmd = cmd
        arity = cmd.arity
        if arity != len(argv) and (arity > 0 or len(argv) < -arity):
            self.reject_command(c, cmd, "wrong number of arguments for '%s' command" % cmd.fullname)
            return clock
        flags = cmd.flags
        if not c.authenticated and not flags & CMD_NO_AUTH:
            self.reject_command(c, cmd, "-NOAUTH Authentication required.")
            return clock
        if c.flags & _PUBSUB_OR_MULTI:
            # In MULTI or subscribed: one flag test for both on the common
            # path. In MULTI, a command that passes every check is queued
            # instead of run (multi.py).
            if self._refused_in_context(c, cmd, flags, argv):
                return clock
            if c.flags & CLIENT_MULTI and cmd.proc not in _multi.NOT_QUEUED:
                _multi.queue_multi_command(c, cmd, argv)
                return clock
        elif c.user.restricted and not c.flags & CLIENT_SCRIPT and _acl_denied(c, cmd, argv):
            # (A script's calls are checked against its caller: scripting.py.)
            return clock
        elif self.script_busy and not flags & CMD_ALLOW_BUSY and self._refused_while_busy(c, cmd):
            return clock
        # call()
        errors = self.stat_total_error_replies
        if not clock:
            clock = _perf_counter_ns()
        try:
            cmd.proc(c)
        except Exception as e:
            # A bug in one command must not take the daemon down: log it
            # with its traceback, answer an error, keep serving.
            self._command_crashed(c, cmd, e)
        if self.monitors and not flags & (CMD_SKIP_MONITOR | CMD_ADMIN):
            # After the command, as Redis 7: SELECT shows the new db.
            from .networking import monitor_feed
            monitor_feed(c, c.argv)
        if self.tracking_clients:
            _tracking.after_command(c, cmd, argv)
        if self.deferred_pushes:
            from .pubsub import flush_deferred_pushes
            flush_deferred_pushes(c)
        end = _perf_counter_ns()
        ns = end - clock
        cmd.calls += 1
        cmd.nsec += ns
        if self.stat_total_error_replies != errors:
            self._count_failed(cmd)
        self.stat_numcommands += 1
        if ns >= self.slowlog_threshold_ns:
            self._slowlog(c, cmd, ns)
        if self.ready_keys and not c.flags & CLIENT_SCRIPT and not self.script_busy:
            # Clients blocked on keys this command made ready (blocked.py);
            # a script's commands wait for the end of the script.
            _blocked.handle_clients_blocked_on_keys()
        return end

    def call(self, c, cmd):
        """call() for a command EXEC runs from its queue (multi.py).

        process_command does the same inline (its hot path). Frames held for
        c (pubsub.publish) wait for the end of EXEC, and so do the clients
        blocked on keys the queued commands make ready.
        """
        if self.fanout is not None and (c.pubsub_channels or not cmd.flags & CMD_FANOUT):
            self.fanout.flush()
        errors = self.stat_total_error_replies
        clock = _perf_counter_ns()
        try:
            cmd.proc(c)
        except Exception as e:
            self._command_crashed(c, cmd, e)
        if self.monitors and not cmd.flags & (CMD_SKIP_MONITOR | CMD_ADMIN):
            from .networking import monitor_feed
            monitor_feed(c, c.argv)
        if self.tracking_clients:
            _tracking.after_command(c, cmd, c.argv)
        ns = _perf_counter_ns() - clock
        cmd.calls += 1
        cmd.nsec += ns
        if self.stat_total_error_replies != errors:
            self._count_failed(cmd)
        self.stat_numcommands += 1
        if ns >= self.slowlog_threshold_ns:
            self._slowlog(c, cmd, ns)

    def _count_failed(self, cmd):
        """incrCommandStatsOnError(): error replies were added while cmd
        ran; cmd failed unless a nested command (in EXEC, in a script)
        already counted them all as its own. prev_err_count is the error
        count when a command last counted a failure: if that happened
        during cmd, it is at least the count cmd started with."""
        if self.stat_total_error_replies != self.prev_err_count:
            cmd.failed_calls += 1
        self.prev_err_count = self.stat_total_error_replies

    def _slowlog(self, c, cmd, ns):
        """cmd ran at least the hot threshold: the slowlog and the latency
        monitor (latency.py). A blocked command goes to the slowlog when it
        is answered, as Redis does."""
        from .networking import CLIENT_BLOCKED
        from .latency import slow_command
        slow_command(c, cmd, ns, not cmd.flags & CMD_SKIP_SLOWLOG and not c.flags & CLIENT_BLOCKED)

    def reject_command(self, c, cmd, msg):
        """rejectCommand(): refuse cmd with msg; in MULTI, doom the transaction
        (a refused EXEC ends it with -EXECABORT)."""
        cmd.rejected_calls += 1
        if c.flags & CLIENT_MULTI:
            _multi.flag_transaction(c)
        if cmd.proc is _multi.exec_command:
            _multi.exec_command_abort(c, msg)
        else:
            c.add_reply_error(msg)

    def _refused_in_context(self, c, cmd, flags, argv):
        """The checks of a client in MULTI or subscribed, in processCommand's
        order (the ACL check after the no-multi one): True if refused."""
        if c.flags & CLIENT_MULTI and flags & CMD_NO_MULTI:
            self.reject_command(c, cmd, "Command not allowed inside a transaction")
            return True
        if c.user.restricted and _acl_denied(c, cmd, argv):
            return True
        if c.flags & CLIENT_PUBSUB and c.resp == 2 and not flags & CMD_ALLOW_SUBSCRIBED:
            self.reject_command(
                c, cmd, "Can't execute '%s': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / "
                "QUIT / RESET are allowed in this context" % cmd.fullname)
            return True
        return bool(self.script_busy and not flags & CMD_ALLOW_BUSY and
                    self._refused_while_busy(c, cmd))

    def _refused_while_busy(self, c, cmd):
        if c.flags & CLIENT_SCRIPT:
            return False    # the busy script's own calls
        # A function is killed with FUNCTION KILL; everything else with SCRIPT KILL.
        killer = "FUNCTION" if self.lua is not None and self.lua.kind == "function" else "SCRIPT"
        self.reject_command(c, cmd, "-BUSY Redis is busy running a script. You can only call "
                            "%s KILL or SHUTDOWN NOSAVE." % killer)
        return True

    def _reject_unknown(self, c, argv):
        if c.flags & CLIENT_MULTI:
            _multi.flag_transaction(c)
        name = argv[0]
        parent = self.commands.get(name) or self.commands.get(name.lower())
        # The client's bytes are echoed as they are, as C's "%.128s" would
        # print them: at most 128 bytes, and nothing past a NUL.
        if parent is not None and parent.subcommands is not None:
            err = b"unknown subcommand '%s'. Try %s HELP." % (
                _c_str(argv[1])[:128], _c_str(name).upper())
        else:
            args = b""
            for a in argv[1:]:
                if len(args) >= 128:
                    break
                args += b"'%s' " % _c_str(a)[:128 - len(args)]
            err = b"unknown command '%s', with args beginning with: %s" % (
                _c_str(name)[:128], args)
        c.add_reply_error(err)

    def _command_crashed(self, c, cmd, exc):
        import traceback
        log(LL_WARNING, "Internal error in '%s' command: %s", cmd.fullname,
            "".join(traceback.format_exception(exc)).rstrip().replace("\n", " | "))
        c.add_reply_error("internal error in '%s' command: %s" % (cmd.fullname, exc))

    # ---- cron -----------------------------------------------------------------

    def update_cached_time(self):
        now = time.time()
        self.unixtime = int(now)
        self.mstime = int(now * 1000)

    def track_instantaneous_metric(self, metric, current_reading):
        now = self.mstime
        last_ms, last_reading = self.inst_metric_last[metric]
        t = now - last_ms
        ops = current_reading - last_reading
        ops_sec = ops * 1000 // t if t > 0 else 0
        idx = self.inst_metric_idx[metric]
        self.inst_metric[metric][idx] = ops_sec
        self.inst_metric_idx[metric] = (idx + 1) % STATS_METRIC_SAMPLES
        self.inst_metric_last[metric] = (now, current_reading)

    def get_instantaneous_metric(self, metric):
        return sum(self.inst_metric[metric]) // STATS_METRIC_SAMPLES

    def pause_accepting(self, ms):
        """Stop watching the listeners for ms: used when accept() hits EMFILE."""
        from .ae import AE_READABLE
        if self.accepting_paused_until:
            return
        self.accepting_paused_until = time.monotonic() + ms / 1000.0
        for sock, _ in self.listeners:
            self.el.delete_file_event(sock.fileno(), AE_READABLE)

    def resume_accepting(self):
        from .ae import AE_READABLE
        if not self.accepting_paused_until or time.monotonic() < self.accepting_paused_until:
            return
        self.accepting_paused_until = 0.0
        for sock, handler in self.listeners:
            self.el.create_file_event(sock.fileno(), AE_READABLE, handler, sock)


def _acl_denied(c, cmd, argv):
    """acl.reject_denied, bound on first use (acl imports this module)."""
    global _acl_denied
    from .acl import reject_denied as _acl_denied
    return _acl_denied(c, cmd, argv)


def _c_str(b):
    """b as a C string sees it: up to its first NUL."""
    nul = b.find(b"\0")
    return b if nul == -1 else b[:nul]


server = Server()


def cron_should_run(ms):
    """run_with_period(): true once every `ms` milliseconds of cron."""
    period = 1000 // server.hz
    return ms <= period or server.cronloops % max(1, ms // period) == 0


def server_cron(el, id, data):
    from . import db
    server.update_cached_time()
    if cron_should_run(100):
        server.track_instantaneous_metric(STATS_METRIC_COMMAND, server.stat_numcommands)
        server.track_instantaneous_metric(STATS_METRIC_NET_INPUT, server.stat_net_input_bytes)
        server.track_instantaneous_metric(STATS_METRIC_NET_OUTPUT, server.stat_net_output_bytes)
    clients_cron()
    if cron_should_run(1000):
        server.heap.cron(server)
        from . import auth_throttle
        auth_throttle.prune()
    db.databases_cron()
    if server.tracking_clients:
        _tracking.limit_used_slots()
    server.resume_accepting()
    for handler in list(server.cron_handlers):
        handler()
    if server.config.hz != server.hz:
        server.hz = server.config.hz
    server.cronloops += 1
    if server.shutdown_asap:
        prepare_for_shutdown_and_exit()
    return 1000 // server.hz


CLIENTS_CRON_MIN_ITERATIONS = 5


class _ClientsCronCursor:
    """Where clients_cron() left off: the rest of the current round."""
    pending = []
    max_in = 0
    max_out = 0


def clients_cron():
    """Idle timeouts, soft output limits, recent max buffers.

    As Redis's clientsCron: each call visits numclients/hz clients (at least
    5), so every client is seen about once a second whatever hz is, and
    10,000 idle clients cost a fraction of what visiting all of them at
    every tick would. The recent max buffers are those of the last round.
    """
    from . import networking
    cursor = _ClientsCronCursor
    now = server.unixtime
    numclients = len(server.clients)
    iterations = min(numclients, max(numclients // server.hz, CLIENTS_CRON_MIN_ITERATIONS))
    clients = server.clients
    for _ in range(iterations):
        if not cursor.pending:
            server.stat_client_recent_max_input = cursor.max_in
            server.stat_client_recent_max_output = cursor.max_out
            cursor.max_in = cursor.max_out = 0
            cursor.pending = list(clients.values())
        c = cursor.pending.pop()
        if c.sock is None or clients.get(c.id) is not c:
            continue   # freed since the round started
        if networking.clients_cron_handle_timeout(c, now):
            continue
        if c.buf:
            networking.check_output_buffer_limits(c)
        qb = c.reader.pending()
        if qb > cursor.max_in:
            cursor.max_in = qb
        if len(c.buf) > cursor.max_out:
            cursor.max_out = len(c.buf)


def update_hot_thresholds():
    """Settings the hot path compares with, precomputed from the config:
    the reply size above which add_reply checks the output limits, the
    duration from which call() logs to the slowlog (never, when negative),
    and the keyspace event classes that writes publish (notify.py)."""
    cfg = server.config
    limits = [v for h, s, _ in cfg.client_output_buffer_limit for v in (h, s) if v]
    server.obuf_check_threshold = min(limits) if limits else 1 << 62
    slower = cfg.slowlog_log_slower_than
    from .latency import hot_threshold_ns
    server.slowlog_threshold_ns = hot_threshold_ns(slower * 1000 if slower >= 0 else 1 << 62)
    server.notify_keyspace_events = cfg.notify_keyspace_events


_networking = None  # sakerd.networking, bound by the first before_sleep()
# multi.py and blocked.py, bound by init_server(): process_command reaches
# them without an import statement (which costs ~0.5 us).
_multi = None
_blocked = None
_tracking = None


def before_sleep(el):
    # Runs on every turn of the loop: import networking (which imports this
    # module) once, not per call -- an import statement costs ~0.5 us.
    global _networking
    if _networking is None:
        from . import networking as _networking
    if server.clients_timeout_table or server.unblocked_clients or server.ready_keys:
        _blocked.before_sleep()
    if server.tracking_clients:
        _tracking.broadcast_invalidation_messages()
    _networking.handle_clients_with_pending_writes()
    _networking.free_clients_in_async_free_queue()


# ---- listening ----------------------------------------------------------------


def listen_to_port():
    """Bind every `bind` address; returns an error message or None."""
    from . import anet, networking
    cfg = server.config
    if cfg.port == 0 and not cfg.unixsocket:
        return None
    if cfg.port:
        for addr in cfg.bind:
            optional = addr.startswith("-")
            addr = addr.lstrip("-")
            sock, err = anet.tcp_server(cfg.port, addr, cfg.tcp_backlog)
            if sock is None:
                if optional:
                    log(LL_WARNING, "Could not create server TCP listening socket %s:%d: %s",
                        addr, cfg.port, err)
                    continue
                return "Could not create server TCP listening socket %s:%d: %s" % (
                    addr, cfg.port, err)
            server.listeners.append((sock, networking.accept_tcp_handler))
    if cfg.unixsocket:
        path = cfg.written_path("unixsocket")
        sock, err = anet.unix_server(path, cfg.unixsocketperm, cfg.tcp_backlog)
        if sock is None:
            return "Failed opening Unix socket: %s" % err
        server.listeners.append((sock, networking.accept_unix_handler))
    return None


def close_listening_sockets(unlink_unix=True):
    from .ae import AE_READABLE
    for sock, _ in server.listeners:
        try:
            server.el.delete_file_event(sock.fileno(), AE_READABLE)
        except (OSError, ValueError):
            pass
        sock.close()
    server.listeners = []
    if unlink_unix and server.config.unixsocket:
        try:
            os.unlink(server.config.written_path("unixsocket"))
        except OSError:
            pass


def adjust_open_files_limit():
    """Raise RLIMIT_NOFILE for maxclients, or lower maxclients, as Redis does."""
    cfg = server.config
    reserved = 32
    want = cfg.maxclients + reserved
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= want:
        return
    new = want if hard == resource.RLIM_INFINITY else min(want, hard)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
        soft = new
    except (ValueError, OSError):
        pass
    if soft < want:
        old = cfg.maxclients
        cfg.maxclients = max(1, soft - reserved)
        log(LL_WARNING, "You requested maxclients of %d requiring at least %d max file "
            "descriptors. Server can't set maximum open files to %d because of OS error: "
            "the limit is %d. Current maximum open files is %d. maxclients has been "
            "reduced to %d to compensate for low ulimit.", old, want, want, hard, soft,
            cfg.maxclients)


def bind_hook_modules():
    global _multi, _blocked, _tracking
    from . import multi as _multi, blocked as _blocked, tracking as _tracking


def init_server(config):
    from . import acl, ae, db, commands
    bind_hook_modules()
    server.config = config
    server.hz = config.hz
    server.db = [db.Db(i) for i in range(config.databases)]
    adjust_open_files_limit()
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    setsize = max(config.maxclients + 128, 1024)
    if soft != resource.RLIM_INFINITY:
        setsize = max(setsize, soft + 1)
    server.el = ae.EventLoop(setsize, config.ae_backend)
    commands.populate(server)
    err = acl.init(config)
    if err:
        return err
    update_hot_thresholds()
    err = listen_to_port()
    if err:
        return err
    for sock, handler in server.listeners:
        if server.el.create_file_event(sock.fileno(), ae.AE_READABLE, handler, sock) != 0:
            return "Unrecoverable error creating server listening file event."
    server.el.create_time_event(1, server_cron)
    server.el.before_sleep = before_sleep
    return None


# ---- shutdown ---------------------------------------------------------------


def prepare_for_shutdown_and_exit(code=0):
    """Stop accepting, flush replies, run shutdown handlers, remove pidfile."""
    from .networking import handle_clients_with_pending_writes
    if server.el.stopped:
        # Already done in this pass (SIGTERM handled, then the cron saw
        # shutdown_asap): do it once.
        return
    log(LL_WARNING, "User requested shutdown...")
    if server.config.supervised in ("systemd", "auto"):
        # As Redis's prepareForShutdown: systemd learns it at once, before
        # the shutdown handlers (stopping supervised processes) run.
        from .main import notify_systemd
        notify_systemd("STOPPING=1\n")
    close_listening_sockets()
    for handler in list(server.shutdown_handlers):
        try:
            handler()
        except Exception as e:  # a handler failing must not keep us running
            log(LL_WARNING, "Shutdown handler failed: %s", e)
    # Flush what can be flushed without blocking: a write-blocked client
    # does not hold the shutdown.
    handle_clients_with_pending_writes()
    for c in list(server.clients.values()):
        if c.buf and c.sock is not None:
            try:
                c.sock.send(c.buf)
            except OSError:
                pass
    if server.pidfile is not None:
        server.pidfile.remove()
        server.pidfile = None
    log(LL_WARNING, "sakerd is now ready to exit, bye bye...")
    server.exit_code = code
    server.el.stop()
