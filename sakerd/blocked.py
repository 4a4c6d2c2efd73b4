"""Blocked clients (Redis's blocked.c and timeout.c): BLPOP and friends, WAIT.

A client blocks inside its command and is answered later, by a write that
makes one of its keys ready, by its timeout, or by CLIENT UNBLOCK. While it
is blocked, what it pipelined behind the blocking command waits (in
c.pending_argvs, and in its query buffer): networking.process_input_buffer
stops at a blocked client and runs the rest once it is unblocked.

The API, for every blocking command (lists, BZPOPMIN/BZMPOP in t_zset.py;
stream reads with BLOCK through block_stream_reader() below):

    block_for_keys(c, btype, keys, timeout, serve, state=None)
        Block c on `keys` of c.db (repeats ignored). `timeout` is an
        absolute unix time in ms, 0 for never (get_timeout_or_reply parses
        the argument). `btype` is the kind of value the client waits for
        (BLOCKED_LIST, BLOCKED_ZSET, BLOCKED_STREAM): a ready key is offered
        to the clients of that kind only when its value is of that kind
        (VALUE_BTYPE). `serve(c, db, key, value, state)` runs when key holds
        such a value: it does the command's work and replies (c is the
        current client meanwhile), and returns True if c is served (it is
        then unblocked), False to keep c waiting. It must delete the key if
        it empties it; after a serve the value is looked up again. `state`
        is the command's own data, kept for serve (positions, count, target).
    block_client(c, btype, timeout)
        Block c on no key (WAIT): only its timeout or CLIENT UNBLOCK ends it.
    replies on timeout: REPLY_ON_TIMEOUT[btype] (a null array for keys, :0
        for WAIT), as replyToBlockedClientTimedOut.
    a command that may block must not when c.flags & CLIENT_DENY_BLOCKING
        (inside MULTI, or from a script): it answers as on a timeout.

Readiness: every write passes db.signal_modified_key, which hands the key
to signal_key_as_ready() when some client is blocked on it; the key is
queued once in server.ready_keys. handle_clients_blocked_on_keys() serves
the queue -- after each top-level command and EXEC (server.process_command)
and before the loop sleeps, as Redis 7.0 does, so that writes of scripts,
tasks and plugin commands wake clients too. The clients blocked on a key
are served in the order they blocked (first blocked, first served), while
the value lasts; a serve that writes another key (BLMOVE's destination)
queues it, and the loop goes on until no key is ready. Redis queues a key
as ready only when it is created (dbAdd); here any write queues it, and
serve() finds nothing to take when the write left it empty or of another
type, which is the same outcome.

Timeouts: blocked clients with a timeout are in a heap ordered by their
deadline (Redis's timeout table, a radix tree); handle_blocked_clients_
timeout() runs before every sleep, so at least once per cron tick, and
costs one test when nobody waits. There is no timer per client.
"""

import heapq
import math

from .db import mstime
from .networking import CLIENT_BLOCKED, CLIENT_DENY_BLOCKING, CLIENT_UNBLOCKED
from .resp import string2ll
from .server_h import server
from .t_string import string2ld, LD_INF

BLOCKED_NONE = 0
BLOCKED_LIST = 1
BLOCKED_WAIT = 2
BLOCKED_STREAM = 4
BLOCKED_ZSET = 5

LLONG_MAX = (1 << 63) - 1


class BlockState:
    """What a blocked client waits for (Redis's c->bpop)."""
    __slots__ = ("btype", "db", "keys", "timeout", "serve", "state")

    def __init__(self, btype, db, keys, timeout, serve, state):
        self.btype = btype
        self.db = db
        self.keys = keys            # dict key -> None, in the order given
        self.timeout = timeout      # absolute unix ms, 0 = never
        self.serve = serve
        self.state = state


def _null_array(c):
    c.add_reply_null_array()


def _zero(c):
    c.add_reply(b":0\r\n")


REPLY_ON_TIMEOUT = {BLOCKED_LIST: _null_array, BLOCKED_ZSET: _null_array,
                    BLOCKED_STREAM: _null_array, BLOCKED_WAIT: _zero}

# The kind of blocked client a value can serve, by the value's Python type.
# Modules adding a type that clients block on add it here.
VALUE_BTYPE = {}


def get_timeout_or_reply(c, arg, seconds=True):
    """getTimeoutFromObjectOrReply(): an absolute ms deadline (0: none), or None.

    Seconds are decimals, rounded up to the millisecond as Redis's
    ceill(x * 1000); a value too large for a C long long becomes LLONG_MIN
    there (x86's conversion), so it is "negative" too.
    """
    if seconds:
        v = string2ld(arg)
        if v is None:
            c.add_reply_error("timeout is not a float or out of range")
            return None
        if v in (LD_INF, -LD_INF):
            ms = -1
        else:
            ms = math.ceil(v * 1000)
            if ms > LLONG_MAX or ms < -LLONG_MAX - 1:
                ms = -1
    else:
        ms = string2ll(arg)
        if ms is None:
            c.add_reply_error("timeout is not an integer or out of range")
            return None
    if ms < 0:
        c.add_reply_error("timeout is negative")
        return None
    if ms > 0:
        ms += mstime()
    return ms


# ---- blocking --------------------------------------------------------------

def block_for_keys(c, btype, keys, timeout, serve, state=None):
    """blockForKeys(): see the module docstring."""
    db = c.db
    bs = BlockState(btype, db, dict.fromkeys(keys), timeout, serve, state)
    blocking = db.blocking_keys
    for key in bs.keys:
        clients = blocking.get(key)
        if clients is None:
            clients = blocking[key] = {}
        clients[c] = None
    _block(c, bs)


def block_client(c, btype, timeout):
    """blockClient() for a wait on no key (WAIT)."""
    _block(c, BlockState(btype, c.db, {}, timeout, None, None))


def _block(c, bs):
    c.bstate = bs
    c.flags |= CLIENT_BLOCKED
    server.blocked_clients += 1
    if bs.timeout:
        heapq.heappush(server.clients_timeout_table, (bs.timeout, c.id, c))


def unblock_client(c, reprocess=True):
    """unblockClient(): forget what c waits for; its pending commands run
    before the next sleep (reprocess=False: c is being freed)."""
    bs = c.bstate
    if bs is None:
        return
    c.bstate = None
    blocking = bs.db.blocking_keys
    for key in bs.keys:
        clients = blocking.get(key)
        if clients is not None:
            clients.pop(c, None)
            if not clients:
                del blocking[key]
    # Its entry in the timeout heap stays and is skipped when it comes up
    # (c.bstate is no longer bs).
    c.flags &= ~CLIENT_BLOCKED
    server.blocked_clients -= 1
    if reprocess and not c.flags & CLIENT_UNBLOCKED:
        c.flags |= CLIENT_UNBLOCKED
        server.unblocked_clients.append(c)


def reply_to_blocked_client_timed_out(c):
    REPLY_ON_TIMEOUT[c.bstate.btype](c)


def unblock_on_timeout(c):
    """The client's time is up (or CLIENT UNBLOCK TIMEOUT)."""
    prev, server.current_client = server.current_client, c
    try:
        reply_to_blocked_client_timed_out(c)
    finally:
        server.current_client = prev
    unblock_client(c)


# ---- readiness ---------------------------------------------------------------

def signal_key_as_ready(db, key):
    """signalKeyAsReady(): queue key once if a client is blocked on it."""
    if key in db.blocking_keys and key not in db.ready_keys:
        db.ready_keys[key] = None
        server.ready_keys.append((db, key))


def scan_database_for_ready_keys(db):
    """scanDatabaseForReadyKeys(): after SWAPDB, every key a client waits on
    that now exists is ready (the write hook saw no write)."""
    for key in db.blocking_keys:
        if key in db.dict:
            signal_key_as_ready(db, key)


def scan_database_for_deleted_streams(emptied, replaced_with):
    """scanDatabaseForDeletedStreams(): a flush or SWAPDB that takes a
    stream away from XREADGROUP readers ends them (-UNBLOCKED)."""
    for key in emptied.blocking_keys:
        was_stream = VALUE_BTYPE.get(emptied.dict.get(key).__class__) == BLOCKED_STREAM
        is_stream = (replaced_with is not None and VALUE_BTYPE.get(
            replaced_with.dict.get(key).__class__) == BLOCKED_STREAM)
        if was_stream and not is_stream:
            signal_stream_key_as_ready(emptied, key)


def handle_clients_blocked_on_keys():
    """handleClientsBlockedOnKeys(): serve the clients of every ready key."""
    while server.ready_keys:
        # Keys made ready while serving (BLMOVE's target) go to a fresh list.
        ready, server.ready_keys = server.ready_keys, []
        for db, key in ready:
            db.ready_keys.pop(key, None)
            serve_clients_blocked_on_key(db, key)


def serve_clients_blocked_on_key(db, key):
    clients = db.blocking_keys.get(key)
    if not clients:
        return
    for receiver in list(clients):
        value = db.lookup(key)
        if value is None:
            break
        btype = VALUE_BTYPE.get(value.__class__)
        bs = receiver.bstate
        if bs is None or bs.btype != btype or bs.db is not db:
            continue
        if _serve(receiver, bs.serve, db, key, value, bs.state):
            unblock_client(receiver)
    # A key that is no longer a stream ends its XREADGROUP readers (Redis
    # 7.0's unblockDeletedStreamReadgroupClients): deleting or overwriting a
    # stream signals it as ready, as any write does here.
    value = db.lookup(key)
    if value is None or VALUE_BTYPE.get(value.__class__) != BLOCKED_STREAM:
        unblock_deleted_stream_readgroup_clients(db, key)


def _serve(receiver, serve, db, key, value, state):
    """Run receiver's serve() as its command: errors count for it."""
    cmd = receiver.lastcmd
    errors = server.stat_total_error_replies
    prev, server.current_client = server.current_client, receiver
    try:
        served = serve(receiver, db, key, value, state)
    finally:
        server.current_client = prev
    if served and cmd is not None and server.stat_total_error_replies != errors:
        cmd.failed_calls += 1
    if server.deferred_pushes:
        from .pubsub import flush_deferred_pushes
        flush_deferred_pushes(receiver)
    return served


# ---- stream readers: XREAD/XREADGROUP BLOCK ---------------------------------------

class StreamWait:
    """A blocked stream reader (t_stream.StreamRead in `read`). Redis serves
    readers only when a key is signalled for streams (XADD, XGROUP DESTROY,
    a stream key created, overwritten or deleted), while here every write
    queues its key: so a reader is served only when its key was signalled
    by t_stream (`signalled`) or holds another stream object than the one
    it last looked at (`seen`: the key was created or replaced). Then an
    XSETID, XGROUP SETID or XDEL wakes nobody, as in Redis."""
    __slots__ = ("read", "seen", "signalled")

    def __init__(self, read, seen):
        self.read = read
        self.seen = seen            # key -> the stream there when last looked at
        self.signalled = set()


def block_stream_reader(c, r):
    """t_stream.block_hook: park c on r.keys; False when c may not block
    (MULTI, scripts): the read then answers as a timeout."""
    if c.flags & CLIENT_DENY_BLOCKING:
        return False
    timeout = r.timeout + mstime() if r.timeout > 0 else 0
    get = c.db.dict.get
    seen = {key: get(key) for key in r.keys}
    block_for_keys(c, BLOCKED_STREAM, r.keys, timeout, _serve_stream_reader,
                   StreamWait(r, seen))
    return True


def signal_stream_key_as_ready(db, key):
    """t_stream.ready_hook: signalKeyAsReady(db, key, OBJ_STREAM)."""
    clients = db.blocking_keys.get(key)
    if not clients:
        return
    for c in clients:
        bs = c.bstate
        if bs is not None and bs.btype == BLOCKED_STREAM:
            bs.state.signalled.add(key)
    signal_key_as_ready(db, key)


def _serve_stream_reader(c, db, key, s, w):
    if key in w.signalled:
        w.signalled.discard(key)
    elif w.seen.get(key) is s:
        return False
    w.seen[key] = s
    from .t_stream import serve_blocked_reader
    return serve_blocked_reader(c, w.read, db, key)


def _reply_stream_gone(c, db, key, value, state):
    c.add_reply_error("-UNBLOCKED the stream key no longer exists")
    return True


def unblock_deleted_stream_readgroup_clients(db, key):
    """unblockDeletedStreamReadgroupClients(): key is gone or not a stream."""
    clients = db.blocking_keys.get(key)
    if not clients:
        return
    for receiver in list(clients):
        bs = receiver.bstate
        if bs is None or bs.btype != BLOCKED_STREAM:
            continue
        if bs.state.read.group is None:
            # Plain XREAD waits on; the stream it saw is gone (not kept alive).
            bs.state.seen[key] = None
            continue
        _serve(receiver, _reply_stream_gone, db, key, None, None)
        unblock_client(receiver)


# ---- timeouts and reprocessing -------------------------------------------------------

def handle_blocked_clients_timeout():
    """handleBlockedClientsTimeout(): answer the clients whose time is up."""
    table = server.clients_timeout_table
    if not table:
        return
    now = mstime()
    while table and table[0][0] < now:
        timeout, _, c = heapq.heappop(table)
        bs = c.bstate
        if bs is not None and bs.timeout == timeout and c.sock is not None:
            unblock_on_timeout(c)


def process_unblocked_clients():
    """processUnblockedClients(): run what the unblocked clients pipelined."""
    from .networking import process_input_buffer
    while server.unblocked_clients:
        c = server.unblocked_clients.pop(0)
        c.flags &= ~CLIENT_UNBLOCKED
        if c.sock is None or c.flags & CLIENT_BLOCKED:
            continue
        pending, c.pending_argvs = c.pending_argvs, None
        if pending:
            process_input_buffer(c, pending)
            if c.sock is None or c.flags & CLIENT_BLOCKED:
                continue
        # What arrived while it was blocked, still in its query buffer.
        process_input_buffer(c)


def before_sleep():
    """The blocked-client work of beforeSleep(), in Redis's order."""
    if server.clients_timeout_table:
        handle_blocked_clients_timeout()
    if server.unblocked_clients:
        process_unblocked_clients()
    if server.ready_keys:
        handle_clients_blocked_on_keys()
    if server.unblocked_clients:
        process_unblocked_clients()


# ---- CLIENT UNBLOCK -----------------------------------------------------------------

def client_unblock(target, error):
    """CLIENT UNBLOCK: 1 if target was blocked and is now answered."""
    if target is None or not target.flags & CLIENT_BLOCKED:
        return False
    if error:
        prev, server.current_client = server.current_client, target
        try:
            target.add_reply_error("-UNBLOCKED client unblocked via CLIENT UNBLOCK")
        finally:
            server.current_client = prev
        unblock_client(target)
    else:
        unblock_on_timeout(target)
    # Redis's updateStatsOnUnblock(target, 0, 0, 1) here counts it failed either way.
    if target.lastcmd is not None:
        target.lastcmd.failed_calls += 1
    return True
