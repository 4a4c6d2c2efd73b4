"""Server state, the command type and the flags: Redis's server.h.

Redis declares in server.h what every .c file shares -- struct
redisServer and its one global `server`, struct redisCommand, the CMD_*
and CLIENT_* flags -- and server.c defines processCommand(), call() and
the cron. sakerd keeps that split: this module is the header, and
sakerd.server is server.c.

This is the bottom of the import graph: it imports nothing of sakerd's,
so networking, the reactor and every command module import it at their
top, and sakerd.server imports them all (a reader finds each dependency
at the top of the file that has it, and no module imports another half
initialised). The few functions of server.c that modules below it call
back (processCommand from networking, call() from EXEC, rejectCommand
from the ACL check, ...) are reached through fields of `server`, bound
when sakerd.server is imported: the place where server.h would declare
their prototypes.

The hot fields are typed in server_h.pxd when the module is compiled
(Cython's pure-Python mode); the .py is the one source either way. A
compiled module that declares `cdef Server server` in its .pxd holds
`server` as a C variable, not as a module attribute: import `server` from
here, never from another module.
"""

import os
import random
import sys
import time

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

# Client flags (the subset of Redis's that sakerd uses, same meaning).
CLIENT_MONITOR = 1 << 2
CLIENT_MULTI = 1 << 3
CLIENT_BLOCKED = 1 << 4      # waiting in a blocking command (blocked.py)
CLIENT_DIRTY_CAS = 1 << 5    # a watched key was touched: EXEC fails (multi.py)
CLIENT_UNBLOCKED = 1 << 7    # unblocked, its pending input not yet run
CLIENT_DIRTY_EXEC = 1 << 12  # an error while queueing: EXEC fails
CLIENT_CLOSE_AFTER_REPLY = 1 << 6
CLIENT_CLOSE_ASAP = 1 << 10
CLIENT_UNIX_SOCKET = 1 << 11
CLIENT_REPLY_OFF = 1 << 22
CLIENT_REPLY_SKIP_NEXT = 1 << 23
CLIENT_REPLY_SKIP = 1 << 24
CLIENT_PUBSUB = 1 << 18
CLIENT_PENDING_WRITE = 1 << 21
CLIENT_PROTECTED = 1 << 28
CLIENT_SCRIPT = 1 << 8       # the fake client of EVAL and saker.call
CLIENT_DENY_BLOCKING = 1 << 41   # may not block: inside EXEC, or a script's client
# Replies are not queued for these: the client asked for none, or it is
# going away (as prepareClientToWrite and _addReplyToBufferOrList do).
CLIENT_NO_REPLY_MASK = (CLIENT_REPLY_OFF | CLIENT_REPLY_SKIP | CLIENT_CLOSE_ASAP |
                        CLIENT_CLOSE_AFTER_REPLY)
# Pub/sub frames are queued whatever CLIENT REPLY says (Redis's CLIENT_PUSHING):
# pass this mask to add_reply() for them.
PUSHING = CLIENT_CLOSE_ASAP | CLIENT_CLOSE_AFTER_REPLY

CLIENT_TYPE_NORMAL = 0
CLIENT_TYPE_SLAVE = 1
CLIENT_TYPE_PUBSUB = 2
CLIENT_TYPE_MASTER = 3
CLIENT_TYPE_NAMES = {"normal": CLIENT_TYPE_NORMAL, "slave": CLIENT_TYPE_SLAVE,
                     "replica": CLIENT_TYPE_SLAVE, "pubsub": CLIENT_TYPE_PUBSUB,
                     "master": CLIENT_TYPE_MASTER}

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
        self.commands_version = 0   # bumped when a command is added or removed
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
        self.heap = None             # memory.HeapTrimmer, set by sakerd.server
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
        # server.c's entry points, which the modules below it call (see
        # the module docstring): bound when sakerd.server is imported.
        self.process_command = None     # process_command(c, argv, clock=0) -> clock
        self.process_commands = None    # process_commands(c, argvs) -> stop
        self.call = None                # call(c, cmd), for EXEC's queue
        self.reject_command = None      # reject_command(c, cmd, msg)
        self.register_command = None    # register_command(cmd)
        self.unregister_command = None  # unregister_command(name)
        self.emit_event = None          # emit_event(type, **fields) -> receivers
        self.update_hot_thresholds = None   # after CONFIG SET
        self.prepare_for_shutdown_and_exit = None   # prepare_for_shutdown_and_exit(code=0)
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

    # ---- errors and lookups ---------------------------------------------

    def count_error_reply(self, code):
        self.stat_total_error_replies += 1
        self.errors[code] = self.errors.get(code, 0) + 1

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


server = Server()
