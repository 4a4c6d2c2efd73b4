"""Command dispatch, the cron, start and shutdown: Redis's server.c.

The state and the types are in sakerd.server_h (server.h); this module
defines what server.c does with them: process_command() and call() (the
hot path of every request), the server cron, init_server(), the listeners
and shutdown. It sits at the top of the import graph, under main.py only:
it imports the modules it calls, none of them imports it, and the few of
them that call back into it (networking's process_input_buffer, EXEC,
the ACL check, plugins registering commands, lifecycle events) reach
these functions through the fields of `server` bound at the end of this
module.
"""

import json
import os
import resource
import time
import traceback

from . import (acl, ae, anet, auth_throttle, blocked as _blocked, commands, db, history,
               latency, multi as _multi, networking, pubsub, systemd, tracking as _tracking)
from .log import log, LL_WARNING
from .memory import HeapTrimmer
from .server_h import (
    server, CMD_ADMIN, CMD_ALLOW_BUSY, CMD_ALLOW_SUBSCRIBED, CMD_FANOUT, CMD_NO_AUTH, CMD_NO_MULTI,
    CMD_SKIP_MONITOR, CMD_SKIP_SLOWLOG, CLIENT_BLOCKED, CLIENT_CLOSE_AFTER_REPLY,
    CLIENT_CLOSE_ASAP, CLIENT_MULTI, CLIENT_PUBSUB, CLIENT_REPLY_SKIP, CLIENT_REPLY_SKIP_NEXT,
    CLIENT_SCRIPT, STATS_METRIC_COMMAND, STATS_METRIC_NET_INPUT, STATS_METRIC_NET_OUTPUT)

try:
    import cython
    COMPILED = cython.compiled   # the compiled build: True, and monotonic_ns() exists
except ImportError:              # pure Python, no Cython installed
    COMPILED = False

# process_command() reads the clock once per command: spare it the module
# lookup. Compiled, it calls clock_gettime() itself (server.pxd's
# monotonic_ns(), the same CLOCK_MONOTONIC), sparing the int object too.
_perf_counter_ns = time.perf_counter_ns

_PUBSUB_OR_MULTI = CLIENT_PUBSUB | CLIENT_MULTI


# ---- events and the command table --------------------------------------------

def emit_event(type, **fields):
    """Publish a lifecycle event as JSON on `event-channel` (SPEC §6) and
    append it to `event-stream` (history.py).

    Schema: {"type": <str>, "ts": <unix seconds, float>, ...fields}.
    """
    event = {"type": type, "ts": round(time.time(), 3)}
    event.update(fields)
    for handler in server.event_handlers:
        handler(event)
    history.append_event(event)     # to `event-stream` too
    channel = server.config.event_channel if server.config else ""
    if not channel:
        return 0
    return pubsub.publish(channel.encode(), json.dumps(event, sort_keys=False).encode(),
                          out_of_band=True)


def register_command(cmd):
    server.commands_version += 1    # process_commands' cache of the last name
    name = cmd.name.lower().encode()
    server.commands[name] = cmd
    server.commands[name.upper()] = cmd
    acl.table.setup(cmd)


def unregister_command(name):
    server.commands_version += 1
    name = name.lower().encode()
    cmd = server.commands.pop(name, None)
    server.commands.pop(name.upper(), None)
    if cmd is not None:
        acl.table.remove(cmd)


# ---- processCommand() and call() --------------------------------------------

# Flag sets tested after each command of a pipeline, OR-ed once here.
_CLOSING_FLAGS = CLIENT_CLOSE_AFTER_REPLY | CLIENT_CLOSE_ASAP
_SKIP_FLAGS = CLIENT_REPLY_SKIP | CLIENT_REPLY_SKIP_NEXT
_AFTER_COMMAND_FLAGS = _CLOSING_FLAGS | _SKIP_FLAGS | CLIENT_BLOCKED


def process_commands(c, cmds):
    """Run the requests parsed from c's query buffer, in order (hot path):
    the loop of processInputBuffer() over processCommandAndResetClient().

    It lives here, not in networking.py, so that each command costs one C
    call to process_command in the compiled build instead of a Python call
    from networking (which sits below this module); networking makes one
    call per pipeline. Returns True when c may run nothing more now: it is
    blocked (the rest waits in c.pending_argvs, blocked.py) or closing.
    """
    clock = 0   # each command's end is the next one's start (process_command)
    # A pipeline repeats its commands: the previous request's name and
    # Command spare the next one the hash and the lookup of its name, as
    # long as no command was registered or removed in between.
    name = None
    known = None
    version = server.commands_version
    it = iter(cmds)
    for argv in it:
        first = argv[0]
        if first == name and version == server.commands_version:
            clock = process_command(c, argv, clock, known)
        else:
            clock = process_command(c, argv, clock)
            known = c.lastcmd
            if known is not None and known.parent is None and known.subcommands is None:
                name = first
                version = server.commands_version
            else:
                name = None
        flags = c.flags
        if flags & _AFTER_COMMAND_FLAGS:
            if flags & CLIENT_BLOCKED:
                # The rest waits until c is answered (blocked.py).
                c.pending_argvs = list(it)
                return True
            if flags & _SKIP_FLAGS:
                # resetClient(): SKIP silenced the command just run;
                # SKIP_NEXT (CLIENT REPLY SKIP) silences the next one.
                c.flags = flags = flags & ~_SKIP_FLAGS | (
                    CLIENT_REPLY_SKIP if flags & CLIENT_REPLY_SKIP_NEXT else 0)
            if flags & _CLOSING_FLAGS:
                # CLOSE_AFTER_REPLY (QUIT, protocol error), CLOSE_ASAP: no
                # command pipelined behind may run, nor grow the reply.
                return True
    return False


def process_command(c, argv, clock=0, cmd=None):
    """Check a request and run it: processCommand() and call() (hot path).

    One function, not two: a Python call costs as much as all the
    checks. Scripts come here too, after their own checks (scripting.py):
    their fake client is authenticated, never subscribed, and may run
    while the server is BUSY with the script itself. The caller makes c
    the current client (once per pipeline, not per command). `cmd`, when
    given, is the Command that argv[0] names (process_commands knows it).

    The duration is measured from `clock` when given: the end of the
    previous command of the same pipeline. That is one clock read per
    command instead of two (a read costs ~47 ns from Python); the time
    between two commands (the lookup and checks of this one, well under
    a microsecond) counts as this command's. Durations add up in
    nanoseconds. Returns the clock at the end of the command, or `clock`
    if the command was refused.
    """
    if cmd is None:
        cmd = server.commands.get(argv[0])
    if cmd is None or cmd.subcommands is not None:
        cmd = server.lookup_command(argv)
        if cmd is None:
            if server.fanout is not None:
                server.fanout.flush()
            c.lastcmd = None    # as Redis's c->lastcmd (process_commands relies on it)
            _reject_unknown(c, argv)
            return clock
    if server.fanout is not None and (c.pubsub_channels or not cmd.flags & CMD_FANOUT):
        # Messages published before this command reach their
        # subscribers before anything this command does (pubsub.Fanout).
        server.fanout.flush()
    c.argv = argv
    c.lastcmd = cmd
    arity = cmd.arity
    if arity != len(argv) and (arity > 0 or len(argv) < -arity):
        reject_command(c, cmd, "wrong number of arguments for '%s' command" % cmd.fullname)
        return clock
    flags = cmd.flags
    if not c.authenticated and not flags & CMD_NO_AUTH:
        reject_command(c, cmd, "-NOAUTH Authentication required.")
        return clock
    if c.flags & _PUBSUB_OR_MULTI:
        # In MULTI or subscribed: one flag test for both on the common
        # path. In MULTI, a command that passes every check is queued
        # instead of run (multi.py).
        if _refused_in_context(c, cmd, flags, argv):
            return clock
        if c.flags & CLIENT_MULTI and cmd.proc not in _multi.NOT_QUEUED:
            _multi.queue_multi_command(c, cmd, argv)
            return clock
    elif c.user.restricted and not c.flags & CLIENT_SCRIPT and acl.reject_denied(c, cmd, argv):
        # (A script's calls are checked against its caller: scripting.py.)
        return clock
    elif server.script_busy and not flags & CMD_ALLOW_BUSY and _refused_while_busy(c, cmd):
        return clock
    # call()
    errors = server.stat_total_error_replies
    if not clock:
        clock = monotonic_ns() if COMPILED else _perf_counter_ns()  # noqa: F821
    try:
        cmd.proc(c)
    except Exception as e:
        # A bug in one command must not take the daemon down: log it
        # with its traceback, answer an error, keep serving.
        _command_crashed(c, cmd, e)
    if server.monitors and not flags & (CMD_SKIP_MONITOR | CMD_ADMIN):
        # After the command, as Redis 7: SELECT shows the new db.
        networking.monitor_feed(c, c.argv)
    if server.tracking_clients:
        _tracking.after_command(c, cmd, argv)
    if server.deferred_pushes:
        pubsub.flush_deferred_pushes(c)
    end = monotonic_ns() if COMPILED else _perf_counter_ns()    # noqa: F821
    ns = end - clock
    cmd.calls += 1
    cmd.nsec += ns
    if server.stat_total_error_replies != errors:
        _count_failed(cmd)
    server.stat_numcommands += 1
    if ns >= server.slowlog_threshold_ns:
        _slowlog(c, cmd, ns)
    if server.ready_keys and not c.flags & CLIENT_SCRIPT and not server.script_busy:
        # Clients blocked on keys this command made ready (blocked.py);
        # a script's commands wait for the end of the script.
        _blocked.handle_clients_blocked_on_keys()
    return end


def call(c, cmd):
    """call() for a command EXEC runs from its queue (multi.py).

    process_command does the same inline (its hot path). Frames held for
    c (pubsub.publish) wait for the end of EXEC, and so do the clients
    blocked on keys the queued commands make ready.
    """
    if server.fanout is not None and (c.pubsub_channels or not cmd.flags & CMD_FANOUT):
        server.fanout.flush()
    errors = server.stat_total_error_replies
    clock = _perf_counter_ns()
    try:
        cmd.proc(c)
    except Exception as e:
        _command_crashed(c, cmd, e)
    if server.monitors and not cmd.flags & (CMD_SKIP_MONITOR | CMD_ADMIN):
        networking.monitor_feed(c, c.argv)
    if server.tracking_clients:
        _tracking.after_command(c, cmd, c.argv)
    ns = _perf_counter_ns() - clock
    cmd.calls += 1
    cmd.nsec += ns
    if server.stat_total_error_replies != errors:
        _count_failed(cmd)
    server.stat_numcommands += 1
    if ns >= server.slowlog_threshold_ns:
        _slowlog(c, cmd, ns)


def _count_failed(cmd):
    """incrCommandStatsOnError(): error replies were added while cmd
    ran; cmd failed unless a nested command (in EXEC, in a script)
    already counted them all as its own. prev_err_count is the error
    count when a command last counted a failure: if that happened
    during cmd, it is at least the count cmd started with."""
    if server.stat_total_error_replies != server.prev_err_count:
        cmd.failed_calls += 1
    server.prev_err_count = server.stat_total_error_replies


def _slowlog(c, cmd, ns):
    """cmd ran at least the hot threshold: the slowlog and the latency
    monitor (latency.py). A blocked command goes to the slowlog when it
    is answered, as Redis does."""
    latency.slow_command(c, cmd, ns,
                         not cmd.flags & CMD_SKIP_SLOWLOG and not c.flags & CLIENT_BLOCKED)


def reject_command(c, cmd, msg):
    """rejectCommand(): refuse cmd with msg; in MULTI, doom the transaction
    (a refused EXEC ends it with -EXECABORT)."""
    cmd.rejected_calls += 1
    if c.flags & CLIENT_MULTI:
        _multi.flag_transaction(c)
    if cmd.proc is _multi.exec_command:
        _multi.exec_command_abort(c, msg)
    else:
        c.add_reply_error(msg)


def _refused_in_context(c, cmd, flags, argv):
    """The checks of a client in MULTI or subscribed, in processCommand's
    order (the ACL check after the no-multi one): True if refused."""
    if c.flags & CLIENT_MULTI and flags & CMD_NO_MULTI:
        reject_command(c, cmd, "Command not allowed inside a transaction")
        return True
    if c.user.restricted and acl.reject_denied(c, cmd, argv):
        return True
    if c.flags & CLIENT_PUBSUB and c.resp == 2 and not flags & CMD_ALLOW_SUBSCRIBED:
        reject_command(
            c, cmd, "Can't execute '%s': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / "
            "QUIT / RESET are allowed in this context" % cmd.fullname)
        return True
    return bool(server.script_busy and not flags & CMD_ALLOW_BUSY and
                _refused_while_busy(c, cmd))


def _refused_while_busy(c, cmd):
    if c.flags & CLIENT_SCRIPT:
        return False    # the busy script's own calls
    # A function is killed with FUNCTION KILL; everything else with SCRIPT KILL.
    killer = "FUNCTION" if server.lua is not None and server.lua.kind == "function" else "SCRIPT"
    reject_command(c, cmd, "-BUSY Redis is busy running a script. You can only call "
                   "%s KILL or SHUTDOWN NOSAVE." % killer)
    return True


def _reject_unknown(c, argv):
    if c.flags & CLIENT_MULTI:
        _multi.flag_transaction(c)
    name = argv[0]
    parent = server.commands.get(name) or server.commands.get(name.lower())
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


def _command_crashed(c, cmd, exc):
    log(LL_WARNING, "Internal error in '%s' command: %s", cmd.fullname,
        "".join(traceback.format_exception(exc)).rstrip().replace("\n", " | "))
    c.add_reply_error("internal error in '%s' command: %s" % (cmd.fullname, exc))


def _c_str(b):
    """b as a C string sees it: up to its first NUL."""
    nul = b.find(b"\0")
    return b if nul == -1 else b[:nul]


# ---- cron ------------------------------------------------------------------

def cron_should_run(ms):
    """run_with_period(): true once every `ms` milliseconds of cron."""
    period = 1000 // server.hz
    return ms <= period or server.cronloops % max(1, ms // period) == 0


def server_cron(el, id, data):
    server.update_cached_time()
    if cron_should_run(100):
        server.track_instantaneous_metric(STATS_METRIC_COMMAND, server.stat_numcommands)
        server.track_instantaneous_metric(STATS_METRIC_NET_INPUT, server.stat_net_input_bytes)
        server.track_instantaneous_metric(STATS_METRIC_NET_OUTPUT, server.stat_net_output_bytes)
    clients_cron()
    if cron_should_run(1000):
        server.heap.cron(server)
        auth_throttle.prune()
    db.databases_cron()
    if server.tracking_clients:
        _tracking.limit_used_slots()
    networking.resume_accepting()
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
    server.slowlog_threshold_ns = latency.hot_threshold_ns(
        slower * 1000 if slower >= 0 else 1 << 62)
    server.notify_keyspace_events = cfg.notify_keyspace_events


def before_sleep(el):
    if server.clients_timeout_table or server.unblocked_clients or server.ready_keys:
        _blocked.before_sleep()
    if server.tracking_clients:
        _tracking.broadcast_invalidation_messages()
    networking.handle_clients_with_pending_writes()
    networking.free_clients_in_async_free_queue()


# ---- listening ----------------------------------------------------------------


def listen_to_port():
    """Bind every `bind` address; returns an error message or None."""
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
    for sock, _ in server.listeners:
        try:
            server.el.delete_file_event(sock.fileno(), ae.AE_READABLE)
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


def init_server(config):
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
    if server.el.stopped:
        # Already done in this pass (SIGTERM handled, then the cron saw
        # shutdown_asap): do it once.
        return
    log(LL_WARNING, "User requested shutdown...")
    if server.config.supervised in ("systemd", "auto"):
        # As Redis's prepareForShutdown: systemd learns it at once, before
        # the shutdown handlers (stopping supervised processes) run.
        systemd.notify("STOPPING=1\n")
    close_listening_sockets()
    for handler in list(server.shutdown_handlers):
        try:
            handler()
        except Exception as e:  # a handler failing must not keep us running
            log(LL_WARNING, "Shutdown handler failed: %s", e)
    # Flush what can be flushed without blocking: a write-blocked client
    # does not hold the shutdown.
    networking.handle_clients_with_pending_writes()
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


server.heap = HeapTrimmer()    # gives freed heap pages back (memory.py)
# The entry points that the modules below this one call (server_h.py).
server.process_command = process_command
server.process_commands = process_commands
server.call = call
server.reject_command = reject_command
server.register_command = register_command
server.unregister_command = unregister_command
server.emit_event = emit_event
server.update_hot_thresholds = update_hot_thresholds
server.prepare_for_shutdown_and_exit = prepare_for_shutdown_and_exit
