"""Fleet mode: one central Redis (standalone or Cluster) steers many hosts (SPEC §12).

Two threads, and only two. The link thread owns the redis-py client and
nothing else: it sends presence, drains the spool, and reads the jobs
stream. Everything that touches server state happens on the event loop
thread, exactly as a client's command does. They meet in three places:

- `inbox`, a deque (append and popleft are atomic in CPython): the link
  appends jobs it read and log lines it wants written; then it writes one
  byte to a socketpair whose read end is an ordinary readable file event of
  the loop -- the wake-up mechanism the signals use (signals.py). A full
  socket buffer is harmless: the loop is then already due to wake.
- `Spool`, behind a lock: the loop appends results, events and log lines;
  the link peeks a batch, sends it, and then removes what was sent. A batch
  that fails stays, so nothing is lost while the central Redis is down;
  results overflow to a file (never dropped silently), events and log
  lines are dropped oldest-first and counted.
- `Presence`, a dict the loop replaces whole each heartbeat and the link
  only reads: what `fleet:{h:<name>}:info` shows.

The link never calls log(): a log line publishes to subscribers, which is
server state. It posts the line to the inbox instead.

At most once per host. A job's jid is written to the state file (fsynced,
replaced atomically) before the job runs, with the state `running`; after
it ran, `done`. A daemon that died mid-job finds `running` at its next
start, reports `interrupted`, and never runs that job again. The stream
cursor lives in the same file, so a restarted agent catches up on what it
missed within the stream's retention; the link's own read position may run
ahead of it (jobs in flight in the inbox), and a job read twice is skipped
because its jid is known.
"""

import base64
import collections
import json
import os
import random
import re
import socket
import stat
import threading
import time

from . import __version__, acl, fleet_target
from .ae import AE_READABLE
from .log import log, LL_NOTICE, LL_WARNING, LL_DEBUG
from .log import state as log_state
from .safefile import replace_file
from .server_h import server, CMD_BLOCKING

JOBS = "fleet:{ctl}:jobs"
SEEN = "fleet:{ctl}:seen"
EVENTS_ALL = "fleet:{ev}:all"
RET_TTL = 86400
JOURNAL_KEEP = 2 * 86400       # jids older than the stream's retention, twice over
JOURNAL_MAX = 100000
EVENTS_MAXLEN = 10000
EVENTS_ALL_MAXLEN = 100000
LOG_MAXLEN = 1000
XREAD_COUNT = 100
XREAD_BLOCK_MS = 1000
BACKOFF_MIN = 1.0
BACKOFF_MAX = 60.0
FLUSH_RATE = 2000              # spool entries sent per second at most
FLUSH_BATCH = 200
# Errors of a spooled write that retrying cannot cure (any other is retried).
REFUSED_FOR_GOOD = {"NOPERM", "WRONGTYPE", "ERR", "CROSSSLOT"}
JID_RE = re.compile(r"[A-Za-z0-9._:-]{1,128}")
SIGNED_PREFIX = b"sakerd fleet job v1\n"

# Commands a job cannot run: they would attach the job's connectionless
# client to something that outlives the job.
_NOT_IN_JOB = {b"subscribe", b"psubscribe", b"ssubscribe", b"unsubscribe", b"punsubscribe",
               b"sunsubscribe", b"monitor", b"quit", b"reset"}


def host_key(name, what):
    return "fleet:{h:%s}:%s" % (name, what)


def ret_key(jid):
    return "fleet:{j:%s}:ret" % jid


def signed_message(jid, target, cmd, expires):
    """The bytes a job's signature covers: each field length-prefixed (bytes)."""
    return SIGNED_PREFIX + b"".join(b"%d:%s\n" % (len(f), f) for f in (jid, target, cmd, expires))


# ---- files owned by root ----------------------------------------------------

def check_dir_chain(path):
    """None, or why `path` cannot be trusted: every directory from it up to
    / must belong to root or to us, and none may be writable by others
    (a sticky parent such as /tmp is allowed above the first one)."""
    euid = os.geteuid()
    d = os.path.abspath(path)
    first = True
    while True:
        try:
            st = os.lstat(d)
        except OSError as e:
            return "%s: %s" % (d, e.strerror)
        if not stat.S_ISDIR(st.st_mode):
            return "%s is not a directory" % d
        if st.st_uid not in (0, euid):
            return "%s belongs to uid %d" % (d, st.st_uid)
        writable = st.st_mode & 0o022
        if writable and (first or not st.st_mode & stat.S_ISVTX):
            return "%s is writable by others (mode %o)" % (d, stat.S_IMODE(st.st_mode))
        first = False
        parent = os.path.dirname(d)
        if parent == d:
            return None
        d = parent


def state_dir(config):
    if config.fleet_dir:
        return config.resolve_path(config.fleet_dir)
    if os.geteuid() == 0:
        return "/var/lib/sakerd/fleet"
    return os.path.join(config.config_dir, "fleet")


def make_state_dir(path):
    """Create the state directory (mode 700) if needed and check its chain."""
    if not os.path.isdir(path):
        parent = os.path.dirname(path)
        if not os.path.isdir(parent):
            os.makedirs(parent, 0o755, exist_ok=True)
        os.mkdir(path, 0o700)
    return check_dir_chain(path)


def read_nofollow(path):
    """The bytes of path (not through a symlink), or None if it does not exist."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    with os.fdopen(fd, "rb") as f:
        return f.read()


# ---- the state file: cursor and journal --------------------------------------

class State:
    """`state.json`: the stream cursor and every recent jid with its state."""

    def __init__(self, path):
        self.path = path
        self.cursor = None
        self.jobs = {}          # jid -> [state, unix time]

    def load(self):
        data = read_nofollow(self.path)
        if data is None:
            return
        doc = json.loads(data)
        self.cursor = doc.get("cursor")
        self.jobs = doc.get("jobs", {})

    def save(self):
        horizon = time.time() - JOURNAL_KEEP
        jobs = {j: v for j, v in self.jobs.items() if v[1] >= horizon}
        if len(jobs) > JOURNAL_MAX:
            # A flood of jids (from a compromised central Redis) must not
            # grow the file without bound: the newest are kept.
            jobs = dict(sorted(jobs.items(), key=lambda kv: kv[1][1])[-JOURNAL_MAX:])
        self.jobs = jobs
        replace_file(self.path, json.dumps({"cursor": self.cursor, "jobs": self.jobs},
                                           separators=(",", ":")).encode())

    def mark(self, jid, st, expires=0):
        """Record jid; it is kept JOURNAL_KEEP past its expiry, so that a
        signed job replayed by the central Redis is never run twice."""
        self.jobs[jid] = [st, int(max(time.time(), expires))]


# ---- the spool ---------------------------------------------------------------

def _item_size(item):
    return sum(len(k) + sum(len(a) + len(b) for a, b in f.items()) + 16 for k, f, _, _ in item)


class Spool:
    """What waits for the central Redis. An item is a list of stream writes
    (key, fields, maxlen or 0, expire seconds or 0), sent together.

    Results stay in memory up to a quarter of fleet-spool-max, then go to
    the file `spool` (one JSON item a line); results, memory and file
    together, never exceed fleet-spool-max: past that a result is dropped,
    counted and logged. Events and log lines live in memory only, within a
    quarter of fleet-spool-max, dropped oldest-first and counted.
    """

    def __init__(self, path, max_bytes):
        self.lock = threading.Lock()
        self.path = path
        self.max_bytes = max_bytes
        self.mem_max = max_bytes // 4
        self.results = collections.deque()
        self.result_bytes = 0
        self.disk_bytes = 0
        self.events = collections.deque()
        self.event_bytes = 0
        self.events_dropped = 0
        self.results_dropped = 0
        st = None
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            pass
        if st is not None and stat.S_ISREG(st.st_mode):
            self.disk_bytes = st.st_size

    def bytes(self):
        return self.result_bytes + self.disk_bytes + self.event_bytes

    def pending(self):
        return bool(self.results or self.disk_bytes or self.events)

    def push_result(self, item):
        """Queue a result; False when it had to be dropped (spool full)."""
        size = _item_size(item)
        with self.lock:
            if self.result_bytes + self.disk_bytes + size > self.max_bytes:
                self.results_dropped += 1
                return False
            if self.disk_bytes or self.result_bytes + size > self.mem_max:
                self._append_to_file([item])
            else:
                self.results.append(item)
                self.result_bytes += size
        return True

    def push_event(self, item):
        size = _item_size(item)
        with self.lock:
            self.events.append(item)
            self.event_bytes += size
            while self.event_bytes > self.mem_max and self.events:
                self.event_bytes -= _item_size(self.events.popleft())
                self.events_dropped += 1

    def _append_to_file(self, items):
        data = b"".join(json.dumps(i, separators=(",", ":")).encode() + b"\n" for i in items)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW |
                     os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
        self.disk_bytes += len(data)

    def _load_file(self):
        """Move the file's results to memory (they are newer than any there)."""
        data = read_nofollow(self.path) or b""
        for line in data.splitlines():
            try:
                item = [tuple(w) for w in json.loads(line)]
            except ValueError:
                continue
            self.results.append(item)
            self.result_bytes += _item_size(item)
        os.unlink(self.path)
        self.disk_bytes = 0

    def peek(self, n):
        """Up to n items, oldest results first, then events (link thread)."""
        with self.lock:
            if not self.results and self.disk_bytes:
                self._load_file()
            batch = list(self.results)[:n]
            if len(batch) < n:
                batch += list(self.events)[:n - len(batch)]
            return batch

    def remove(self, sent):
        """Drop the items of a batch that was sent (they lead their queues)."""
        with self.lock:
            for item in sent:
                if self.results and self.results[0] is item:
                    self.results.popleft()
                    self.result_bytes -= _item_size(item)
                elif self.events and self.events[0] is item:
                    self.events.popleft()
                    self.event_bytes -= _item_size(item)

    def save_to_file(self):
        """At shutdown: memory results go to the file, before what it holds."""
        with self.lock:
            if not self.results:
                return
            old = read_nofollow(self.path) or b""
            data = b"".join(json.dumps(i, separators=(",", ":")).encode() + b"\n"
                            for i in self.results)
            replace_file(self.path, data + old)
            self.results.clear()
            self.result_bytes = 0
            self.disk_bytes = len(data) + len(old)


# ---- the link thread ---------------------------------------------------------

class Link(threading.Thread):
    """The one thread that talks to the central Redis (see the top of the file)."""

    def __init__(self, fleet):
        super().__init__(name="fleet-link", daemon=True)
        self.fleet = fleet
        self.name_ = fleet.name
        self.urls = list(fleet.config.fleet_redis)
        self.cluster = len(self.urls) > 1
        self.heartbeat = fleet.config.fleet_heartbeat_ms / 1000.0
        self.stopping = threading.Event()
        self.kicked = threading.Event()
        self.client = None
        self.read_pos = fleet.state.cursor
        self.up = False
        self.reconnects = 0
        self.cursor_lag = 0
        self.attempt = 0
        self.next_heartbeat = 0.0
        self.tokens = FLUSH_BATCH
        self.last_refill = time.monotonic()

    # Everything the loop must do is posted: never touch server state here.
    def post(self, *item):
        self.fleet.inbox.append(item)
        self.fleet.wake()

    def run(self):
        while not self.stopping.is_set():
            try:
                if self.client is None:
                    self.connect()
                self.serve_once()
            except Exception as e:   # any failure of the link: reconnect later
                self.lost(e)

    def connect(self):
        import redis
        cfg = self.fleet.config
        tls = {}
        if not any(u.startswith("rediss://") for u in self.urls):
            pass
        elif cfg.fleet_tls_ca_cert:
            tls["ssl_ca_certs"] = cfg.resolve_path(cfg.fleet_tls_ca_cert)
        if cfg.fleet_tls_cert:
            tls["ssl_certfile"] = cfg.resolve_path(cfg.fleet_tls_cert)
        if cfg.fleet_tls_key:
            tls["ssl_keyfile"] = cfg.resolve_path(cfg.fleet_tls_key)
        common = dict(socket_timeout=XREAD_BLOCK_MS / 1000.0 + 10, socket_connect_timeout=5,
                      client_name="sakerd:%s" % self.name_, **tls)
        if self.cluster:
            from redis.cluster import RedisCluster, ClusterNode
            from redis.connection import parse_url
            first = parse_url(self.urls[0])
            nodes = [ClusterNode(parse_url(u).get("host", "localhost"),
                                 parse_url(u).get("port", 6379)) for u in self.urls]
            self.client = RedisCluster(startup_nodes=nodes, username=first.get("username"),
                                       password=first.get("password"),
                                       ssl=self.urls[0].startswith("rediss://"), **common)
        else:
            self.client = redis.Redis.from_url(self.urls[0], **common)
        self.client.ping()
        self.up = True
        self.attempt = 0
        self.next_heartbeat = 0.0
        self.post("link", True, "")

    def lost(self, e):
        text = "%s: %s" % (type(e).__name__, e)
        if not self.cluster and "MOVED" in str(e):
            self.cluster = True      # the one URL is a Cluster node
        if self.client is not None:
            try:
                self.client.close()
            except Exception:
                pass
            self.client = None
        if self.up:
            self.up = False
            self.reconnects += 1
            self.post("link", False, text)
        else:
            self.post("log", LL_DEBUG if self.attempt else LL_WARNING,
                      "Fleet: can't reach the central Redis: %s" % text)
        # Full jitter: anywhere from 1 s up to a cap that doubles per attempt.
        cap = min(BACKOFF_MAX, BACKOFF_MIN * 2 ** self.attempt)
        self.attempt += 1
        self.stopping.wait(random.uniform(BACKOFF_MIN, cap))

    def serve_once(self):
        now = time.monotonic()
        if now >= self.next_heartbeat:
            self.send_presence()
            self.next_heartbeat = now + self.heartbeat * random.uniform(0.8, 1.2)
        more = self.flush_spool()
        block = 50 if more else int(min(XREAD_BLOCK_MS, max(10, (self.next_heartbeat -
                                                                   time.monotonic()) * 1000)))
        reply = self.client.xread({JOBS: self.read_pos}, count=XREAD_COUNT, block=block)
        if self.stopping.is_set():
            return
        entries = reply[0][1] if reply else []
        if not entries:
            self.cursor_lag = 0
            return
        self.read_pos = entries[-1][0].decode()
        self.cursor_lag = (max(0, int(time.time() * 1000) - int(self.read_pos.split("-")[0]))
                           if len(entries) == XREAD_COUNT else 0)
        self.kicked.clear()
        self.post("jobs", entries)
        # The loop answers in microseconds: wait for its results, so that
        # they go out now rather than after the next XREAD's block.
        self.kicked.wait(1.0)
        self.flush_spool()

    def send_presence(self):
        p = self.fleet.presence
        hb_ms = int(self.heartbeat * 1000)
        pipe = self.client.pipeline(transaction=False)
        pipe.set(host_key(self.name_, "alive"), json.dumps(
            {"version": p["version"], "tags": p["tags"], "uptime": p["uptime"]}), px=3 * hb_ms)
        pipe.hset(host_key(self.name_, "info"), mapping=p)
        pipe.zadd(SEEN, {self.name_: int(time.time())})
        pipe.execute()

    def flush_spool(self):
        """Send what the spool holds, at most FLUSH_RATE entries a second;
        True if some is left."""
        spool = self.fleet.spool
        now = time.monotonic()
        self.tokens = min(FLUSH_BATCH, self.tokens + (now - self.last_refill) * FLUSH_RATE)
        self.last_refill = now
        n = int(self.tokens)
        if n <= 0 or not spool.pending():
            return spool.pending()
        batch = spool.peek(n)
        if not batch:
            return False
        pipe = self.client.pipeline(transaction=False)
        expiring = {}
        for item in batch:
            for key, fields, maxlen, expire in item:
                pipe.xadd(key, fields, maxlen=maxlen or None, approximate=True)
                if expire:
                    expiring[key] = expire
        for key, expire in expiring.items():     # once per stream, after its entries
            pipe.expire(key, expire)
        replies = pipe.execute(raise_on_error=False)
        refused = [r for r in replies if isinstance(r, Exception)]
        for r in refused:
            if not isinstance(r, _response_error()) or _error_code(r) not in REFUSED_FOR_GOOD:
                raise r     # MOVED, CLUSTERDOWN, LOADING, OOM...: kept, sent again later
        if refused:
            # Retrying cannot help these: say so, and drop them.
            self.post("log", LL_WARNING, "Fleet: the central Redis refused %d writes: %s" % (
                len(refused), refused[0]))
        spool.remove(batch)
        self.tokens -= len(batch)
        return spool.pending()


def _response_error():
    from redis.exceptions import ResponseError
    return ResponseError


def _error_code(e):
    """The error's code: redis-py keeps it apart (status_code) for the codes
    it knows and leaves it at the start of the text for the others."""
    return getattr(e, "status_code", None) or str(e).split(" ", 1)[0]


# ---- signatures --------------------------------------------------------------

def load_trusted_keys(path):
    """[Ed25519PublicKey] from a file of base64 raw keys, one a line
    (`# comments`, text after the key ignored); raises ValueError."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    err = check_dir_chain(os.path.dirname(os.path.abspath(path)))
    if err:
        raise ValueError("fleet-trusted-keys %s: unsafe directory: %s" % (path, err))
    try:
        st = os.lstat(path)
        data = read_nofollow(path)
    except OSError as e:
        raise ValueError("fleet-trusted-keys %s: %s" % (path, e.strerror))
    if data is None:
        raise ValueError("fleet-trusted-keys %s: No such file or directory" % path)
    if st.st_uid not in (0, os.geteuid()) or st.st_mode & 0o022:
        raise ValueError("fleet-trusted-keys %s: must belong to root and not be writable by "
                         "others (mode %o)" % (path, stat.S_IMODE(st.st_mode)))
    keys = []
    for n, line in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            raw = base64.b64decode(line.split()[0], validate=True)
            keys.append(Ed25519PublicKey.from_public_bytes(raw))
        except ValueError:
            raise ValueError("fleet-trusted-keys %s:%d: not a base64 Ed25519 public key" %
                             (path, n))
    return keys


def verify(keys, sig, message):
    from cryptography.exceptions import InvalidSignature
    try:
        raw = base64.b64decode(sig, validate=True)
    except ValueError:
        return False
    for key in keys:
        try:
            key.verify(raw, message)
            return True
        except (InvalidSignature, ValueError):
            continue
    return False


# ---- replies as JSON ---------------------------------------------------------

def reply_to_json(reply):
    """(is_error, value) of a RESP2 reply, as JSON-ready Python values."""
    from .scripting import parse_reply
    if not reply:
        return False, None
    v = parse_reply(reply)[0]
    if isinstance(v, dict) and b"err" in v:
        return True, v[b"err"].decode("utf-8", "replace")
    return False, _plain(v)


def _plain(v):
    """scripting.parse_reply's values (shaped for Lua) as JSON values; RESP3
    maps become objects (keys as strings), sets lists."""
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        (kind, inner), = v.items()
        if kind == b"err":
            return {"err": _plain(inner)}
        if kind == b"map":
            return {_key(k): _plain(x) for k, x in inner.items()}
        if kind == b"set":
            return [_plain(k) for k in inner]
        if kind == b"verbatim_string":
            return _plain(inner[b"string"])
        return _plain(inner)      # ok, double, big_number
    if v is False:
        return None
    return v


def _key(k):
    k = _plain(k)
    return k if isinstance(k, str) else json.dumps(k)


# ---- the loop side -----------------------------------------------------------

class Fleet:
    def __init__(self, config, name, state, spool, keys):
        self.config = config
        self.name = name
        self.tags = fleet_target.parse_tags(config.fleet_tags)
        self.state = state
        self.spool = spool
        self.keys = keys
        self.keys_path = config.resolve_path(config.fleet_trusted_keys) \
            if config.fleet_trusted_keys else None
        self.require_bits = 0
        for cat in config.fleet_require_signature:
            self.require_bits |= acl.CATEGORY_FLAG[cat[1:]]
        self.inbox = collections.deque()
        self.jobs_run = 0
        self.presence = {}
        self.boot_time = int(time.time())
        self.update_presence()
        self._rsock, self._wsock = socket.socketpair()
        self._rsock.setblocking(False)
        self._wsock.setblocking(False)
        self.link = Link(self)

    def wake(self):
        try:
            self._wsock.send(b"\0")
        except (BlockingIOError, InterruptedError):
            pass    # the buffer is full: the loop wakes anyway
        except OSError:
            pass    # closed at shutdown

    # ---- loop handlers ----

    def read_inbox(self, el, fd, sock, mask):
        try:
            while sock.recv(4096):
                pass
        except (BlockingIOError, InterruptedError):
            pass
        self.dispatch_inbox()

    def cron(self):
        if self.inbox and not server.script_busy:
            self.dispatch_inbox()

    def dispatch_inbox(self):
        held = []
        while self.inbox:
            item = self.inbox.popleft()
            if item[0] == "jobs":
                if server.script_busy:
                    # We are served from a busy script's hook: jobs wait
                    # until it ends (the cron hands them over then).
                    held.append(item)
                    continue
                self.run_jobs(item[1])
                self.link.kicked.set()
            elif item[0] == "log":
                log(item[1], "%s", item[2])
            elif item[0] == "link":
                if item[1]:
                    log(LL_NOTICE, "Fleet: linked to the central Redis as '%s'", self.name)
                else:
                    log(LL_WARNING, "Fleet: lost the central Redis (%s); results and events "
                        "wait in the spool", item[2])
        self.inbox.extendleft(reversed(held))

    def update_presence(self):
        from .info import rss_bytes
        procs = server.procs
        self.presence = {
            "version": __version__,
            "tags": " ".join(self.config.fleet_tags),
            "uptime": int(time.time()) - self.boot_time,
            "boot_time": self.boot_time,
            "pid": server.pid,
            "tcp_port": self.config.port,
            "connected_clients": len(server.clients),
            "used_memory_rss": rss_bytes(),
            "supervised": len(procs.programs) if procs is not None else 0,
            "jobs_run": self.jobs_run,
        }

    def presence_cron(self, el, id, data):
        self.update_presence()
        return max(100, self.config.fleet_heartbeat_ms // 2)

    # ---- jobs ----

    def run_jobs(self, entries):
        for entry_id, fields in entries:
            try:
                self.run_job(fields)
            except Exception as e:    # a bad entry must not stop the others
                log(LL_WARNING, "Fleet: job entry %s failed: %s", entry_id, e)
            self.state.cursor = entry_id.decode()
        self.save_state()

    def save_state(self):
        try:
            self.state.save()
        except OSError as e:
            log(LL_WARNING, "Fleet: can't write %s: %s", self.state.path, e.strerror)

    def report(self, jid, st, reply=None, ms=0.0):
        item = [(ret_key(jid), {"host": self.name, "state": st,
                                "reply": json.dumps(reply), "ms": "%.3f" % ms}, 0, RET_TTL)]
        if not self.spool.push_result(item):
            log(LL_WARNING, "Fleet: spool full (fleet-spool-max): result '%s' of job %s "
                "dropped", st, jid)

    def finish(self, jid, st, reply=None, ms=0.0, expires=0):
        self.state.mark(jid, st, expires)
        self.report(jid, st, reply, ms)

    def run_job(self, fields):
        f = {k.decode("utf-8", "replace"): v for k, v in fields.items()}
        jid = f.get("jid", b"").decode("utf-8", "replace")
        if not JID_RE.fullmatch(jid):
            log(LL_WARNING, "Fleet: job entry without a valid jid ignored")
            return
        if jid in self.state.jobs:
            return      # already run (or refused) here: at most once
        target = f.get("target", b"")
        try:
            tree = fleet_target.parse(target.decode("utf-8", "replace"))
        except fleet_target.TargetError as e:
            return self.finish(jid, "err", "bad target: %s" % e)
        if not fleet_target.matches(tree, self.name.encode(), self.tags):
            return
        try:
            expires = float(f.get("expires", b""))
        except ValueError:
            return self.finish(jid, "err", "bad expires: unix seconds expected")
        if expires < time.time():
            return self.finish(jid, "expired", expires=expires)
        try:
            argv = [a.encode() for a in _argv(json.loads(f.get("cmd", b"")))]
        except ValueError as e:
            return self.finish(jid, "err", "bad cmd: %s" % e, expires=expires)
        err = self.signature_error(argv, f, jid.encode(), target)
        if err:
            return self.finish(jid, "err", err, expires=expires)
        self.execute(jid, argv, expires)

    def signature_error(self, argv, f, jid, target):
        cmd = server.lookup_command(argv)
        if cmd is None or not cmd.acl_categories & self.require_bits:
            return None
        sig = f.get("sig")
        if not sig:
            return "unsigned job"
        keys = self.current_keys()
        if not verify(keys, sig, signed_message(jid, target, f["cmd"], f["expires"])):
            return "unsigned job: no key of fleet-trusted-keys made this signature"
        return None

    def current_keys(self):
        """The trusted keys, read again for each signed job: a key taken out
        of the file stops working at once."""
        if self.keys_path is None:
            return []
        try:
            self.keys = load_trusted_keys(self.keys_path)
        except ValueError as e:
            log(LL_WARNING, "%s (keeping the keys read before)", e)
        return self.keys

    def execute(self, jid, argv, expires):
        from .networking import Client
        # Recorded before it runs: a crash from here on means `interrupted`.
        self.state.mark(jid, "running", expires)
        self.save_state()
        self.report(jid, "ack")
        user = acl.users.get(self.config.fleet_acl_user.encode())
        t0 = time.perf_counter()
        if user is None or not user.enabled:
            is_err, reply = True, "fleet-acl-user '%s' does not exist or is off" % \
                self.config.fleet_acl_user
        elif argv[0].lower() in _NOT_IN_JOB or _blocking(argv):
            is_err, reply = True, "ERR '%s' cannot run as a fleet job" % argv[0].decode(
                "utf-8", "replace")
        else:
            c = Client(None, -1)
            c.user = user
            c.authenticated = True
            prev, server.current_client = server.current_client, c
            try:
                server.process_command(c, argv)
            finally:
                server.current_client = prev
            try:
                is_err, reply = reply_to_json(bytes(c.buf))
            except ValueError as e:   # cannot happen with our own replies; never hang
                is_err, reply = True, "ERR reply not convertible to JSON: %s" % e
        ms = (time.perf_counter() - t0) * 1000
        self.jobs_run += 1
        self.finish(jid, "err" if is_err else "ok", reply, ms, expires)
        log(LL_NOTICE, "Fleet: job %s (%s) %s in %.1f ms", jid,
            argv[0].decode("utf-8", "replace"), "failed" if is_err else "done", ms)

    # ---- events and log mirrored ----

    def mirror_event(self, event):
        fields = {"type": str(event.get("type")), "ts": str(event.get("ts")),
                  "event": json.dumps(event)}
        everyone = dict(fields, host=self.name)
        self.spool.push_event([(host_key(self.name, "events"), fields, EVENTS_MAXLEN, 0),
                               (EVENTS_ALL, everyone, EVENTS_ALL_MAXLEN, 0)])

    def mirror_log_line(self, line):
        if "] [WARNING] [" in line:
            self.spool.push_event([(host_key(self.name, "log"), {"line": line}, LOG_MAXLEN, 0)])

    def shutdown(self):
        self.link.stopping.set()
        self.link.join(1.5)
        try:
            self.spool.save_to_file()
        except OSError as e:
            log(LL_WARNING, "Fleet: can't save the spool to %s: %s", self.spool.path, e.strerror)
        self._wsock.close()

    def info(self):
        return [
            ("fleet_name", self.name),
            ("fleet_link", "up" if self.link.up else "down"),
            ("fleet_reconnects", self.link.reconnects),
            ("fleet_jobs_run", self.jobs_run),
            ("fleet_cursor_lag", self.link.cursor_lag),
            ("fleet_spool_bytes", self.spool.bytes()),
            ("fleet_events_dropped", self.spool.events_dropped),
            ("fleet_results_dropped", self.spool.results_dropped),
        ]


def _argv(v):
    if not isinstance(v, list) or not v or not all(isinstance(a, str) for a in v):
        raise ValueError("a JSON array of strings (the command and its arguments) expected")
    return v


def _blocking(argv):
    cmd = server.lookup_command(argv)
    return cmd is not None and cmd.flags & CMD_BLOCKING


fleet = None


def check_config(config):
    """Problems of the fleet directives ("where: message" each), for
    --test-config and the start."""
    if not config.fleet_redis:
        return []
    problems = []
    where = lambda name: config.origin.get(name, config.config_file or "(defaults)")
    names = {a[0] for a, _ in acl.DEFAULT_USERS + config.user_lines}
    if config.fleet_acl_user not in names and not config.aclfile:
        problems.append("%s: fleet-acl-user '%s' is not a defined user" % (
            where("fleet-acl-user"), config.fleet_acl_user))
    if config.fleet_trusted_keys:
        try:
            load_trusted_keys(config.resolve_path(config.fleet_trusted_keys))
        except ValueError as e:
            problems.append("%s: %s" % (where("fleet-trusted-keys"), e))
    for name in ("fleet-tls-ca-cert", "fleet-tls-cert", "fleet-tls-key"):
        p = config.get(name)
        if p and not os.path.isfile(config.resolve_path(p)):
            problems.append("%s: %s %s: no such file" % (where(name), name, p))
    return problems


def init(srv):
    """Start fleet mode if fleet-redis is set: an error message or None."""
    global fleet
    config = srv.config
    if not config.fleet_redis:
        return None
    problems = check_config(config)
    if problems:
        return problems[0]
    d = state_dir(config)
    try:
        err = make_state_dir(d)
    except OSError as e:
        err = "%s: %s" % (d, e.strerror)
    if err:
        return "Fleet: can't use the state directory %s: %s" % (d, err)
    state = State(os.path.join(d, "state.json"))
    try:
        state.load()
    except (OSError, ValueError) as e:
        return "Fleet: can't read %s: %s" % (state.path, e)
    if state.cursor is None:
        state.cursor = "%d-0" % int(time.time() * 1000)    # a new host: jobs from now on
    keys = load_trusted_keys(config.resolve_path(config.fleet_trusted_keys)) \
        if config.fleet_trusted_keys else []
    name = config.fleet_name or socket.gethostname()
    fleet = Fleet(config, name, state, Spool(os.path.join(d, "spool"), config.fleet_spool_max),
                  keys)
    for jid, (st, _) in list(state.jobs.items()):
        if st == "running":
            log(LL_WARNING, "Fleet: job %s was running when sakerd stopped: interrupted, "
                "not run again", jid)
            fleet.finish(jid, "interrupted")
    fleet.save_state()
    srv.el.create_file_event(fleet._rsock.fileno(), AE_READABLE, fleet.read_inbox, fleet._rsock)
    srv.el.create_time_event(max(100, config.fleet_heartbeat_ms // 2), fleet.presence_cron)
    srv.shutdown_handlers.append(fleet.shutdown)
    srv.cron_handlers.append(fleet.cron)
    srv.event_handlers.append(fleet.mirror_event)
    previous = log_state.publish_hook

    def publish_and_mirror(line):
        if previous is not None:
            previous(line)
        fleet.mirror_log_line(line)
    log_state.publish_hook = publish_and_mirror
    from .info import register_section
    register_section("fleet", "Fleet", fleet.info)
    fleet.link.start()
    log(LL_NOTICE, "Fleet: host '%s', tags '%s', state in %s", name,
        " ".join(config.fleet_tags), d)
    return None
