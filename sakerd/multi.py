"""Transactions: MULTI EXEC DISCARD WATCH UNWATCH (Redis's multi.c).

Queueing. In MULTI, server.process_command queues every command that
passed its checks (existence, arity, auth, ACL, subscribed context, BUSY)
except EXEC DISCARD MULTI WATCH QUIT RESET, and answers +QUEUED; a command
refused by those checks flags the transaction (CLIENT_DIRTY_EXEC, Redis's
flagTransaction) and EXEC then answers -EXECABORT. Queued commands are
(Command, argv) pairs in c.mstate.

EXEC runs the queue through server.call(), one command after the other,
inside EXEC's own command: no other client, timer, task or fan-out flush
can run in between, because nothing returns to the event loop. Blocking
commands in it answer as if timed out (CLIENT_DENY_BLOCKING). Clients
blocked on keys the transaction made ready are served after EXEC, as after
any command. MONITOR sees MULTI when it runs, then each queued command
and EXEC when EXEC runs, and commandstats count them the same way, as in
Redis 7.0.

WATCH. Each Db has watched_keys: key -> {client: WatchedKey}; each client
has c.watched_keys, a list of WatchedKey. Every write passes
db.signal_modified_key, which calls touch_watched_key() only when the
db's watched_keys is not empty (one dict test for a server where nobody
watches). A touched key marks its watchers CLIENT_DIRTY_CAS, and their EXEC
answers a null array. A key that was already expired when watched is
remembered as such (Redis's wk->expired): its deletion by expiry does not
count as a change, and EXEC checks whether a watched key has expired since.
FLUSHDB and FLUSHALL touch every watched key that existed
(touch_all_watched_keys_in_db).
"""

from .cmd_server import quit_command, reset_command
from .networking import (CLIENT_BLOCKED, CLIENT_DENY_BLOCKING, CLIENT_DIRTY_CAS,
                         CLIENT_DIRTY_EXEC)
from .server_h import (server, Command, CLIENT_MULTI, CMD_ALLOW_BUSY, CMD_FAST, CMD_LOADING,
                     CMD_NOSCRIPT, CMD_SKIP_SLOWLOG, CMD_STALE)

EXECABORT = b"-EXECABORT Transaction discarded because of previous errors.\r\n"


class WatchedKey:
    __slots__ = ("client", "db", "key", "expired")

    def __init__(self, client, db, key, expired):
        self.client = client
        self.db = db
        self.key = key
        self.expired = expired  # the key was already logically expired when watched


# ---- queueing (called from server.process_command) -------------------------------

def queue_multi_command(c, cmd, argv):
    """queueMultiCommand(): nothing is kept once the transaction is doomed."""
    if not c.flags & (CLIENT_DIRTY_CAS | CLIENT_DIRTY_EXEC):
        c.mstate.append((cmd, argv))
    c.add_reply(b"+QUEUED\r\n")


def flag_transaction(c):
    """flagTransaction(): an error while queueing makes EXEC fail."""
    if c.flags & CLIENT_MULTI:
        c.flags |= CLIENT_DIRTY_EXEC


def discard_transaction(c):
    c.mstate = []
    c.flags &= ~(CLIENT_MULTI | CLIENT_DIRTY_CAS | CLIENT_DIRTY_EXEC)
    unwatch_all_keys(c)


# ---- MULTI / EXEC / DISCARD --------------------------------------------------------

def multi_command(c):
    if c.flags & CLIENT_MULTI:
        c.add_reply_error("MULTI calls can not be nested")
        return
    c.flags |= CLIENT_MULTI
    c.add_reply(b"+OK\r\n")


def discard_command(c):
    if not c.flags & CLIENT_MULTI:
        c.add_reply_error("DISCARD without MULTI")
        return
    discard_transaction(c)
    c.add_reply(b"+OK\r\n")


def exec_command_abort(c, error):
    """execCommandAbort(): EXEC refused by a check of process_command."""
    discard_transaction(c)
    if isinstance(error, str):
        error = error.encode()
    if error.startswith(b"-"):
        error = error[1:]
    c.add_reply_error(b"-EXECABORT Transaction discarded because of: " + error.strip(b"\r\n"))
    # MONITOR saw MULTI: show that the transaction is over.
    if server.monitors:
        from .networking import monitor_feed
        monitor_feed(c, c.argv)


def acl_denied_in_exec(c, cmd, argv):
    """ACLs are checked again when EXEC runs a queued command, in case they
    changed since it was queued (execCommand): True after the -NOPERM reply."""
    from .acl import exec_denial_reason
    reason = exec_denial_reason(c, cmd, argv)
    if reason is None:
        return False
    c.add_reply_error("-NOPERM ACLs rules changed between the moment the transaction was "
                      "accumulated and the EXEC call. This command is no longer allowed for "
                      "the following reason: %s" % reason)
    return True


def exec_command(c):
    if not c.flags & CLIENT_MULTI:
        c.add_reply_error("EXEC without MULTI")
        return
    if is_watched_key_expired(c):
        c.flags |= CLIENT_DIRTY_CAS
    if c.flags & (CLIENT_DIRTY_CAS | CLIENT_DIRTY_EXEC):
        if c.flags & CLIENT_DIRTY_EXEC:
            c.add_reply_error(EXECABORT)
        else:
            c.add_reply_null_array()
        discard_transaction(c)
        return
    old_flags = c.flags
    c.flags |= CLIENT_DENY_BLOCKING
    unwatch_all_keys(c)     # as soon as possible: touching them costs nothing now
    queued = c.mstate
    c.mstate = []
    orig_argv, orig_cmd = c.argv, c.lastcmd
    try:
        c.add_reply_array_len(len(queued))
        call = server.call
        restricted = c.user.restricted
        for cmd, argv in queued:
            c.argv = argv
            c.lastcmd = cmd
            if restricted and acl_denied_in_exec(c, cmd, argv):
                continue
            call(c, cmd)
    finally:
        if not old_flags & CLIENT_DENY_BLOCKING:
            c.flags &= ~CLIENT_DENY_BLOCKING
        c.argv, c.lastcmd = orig_argv, orig_cmd
        discard_transaction(c)
    assert not c.flags & CLIENT_BLOCKED


# ---- WATCH ------------------------------------------------------------------------

def watch_for_key(c, key):
    db = c.db
    for wk in c.watched_keys:
        if wk.db is db and wk.key == key:
            return
    wk = WatchedKey(c, db, key, db.key_is_expired(key))
    clients = db.watched_keys.get(key)
    if clients is None:
        clients = db.watched_keys[key] = {}
    clients[c] = wk
    c.watched_keys.append(wk)


def unwatch_all_keys(c):
    """unwatchAllKeys(): the caller clears CLIENT_DIRTY_CAS if it must."""
    if not c.watched_keys:
        return
    for wk in c.watched_keys:
        watched = wk.db.watched_keys
        clients = watched.get(wk.key)
        if clients is not None:
            clients.pop(c, None)
            if not clients:
                del watched[wk.key]
    c.watched_keys = []


def is_watched_key_expired(c):
    """A watched key expired since WATCH (ignoring the ones already expired then)."""
    for wk in c.watched_keys:
        if not wk.expired and wk.db.key_is_expired(wk.key):
            return True
    return False


def touch_watched_key(db, key):
    """touchWatchedKey(): mark every client watching key dirty."""
    clients = db.watched_keys.get(key)
    if not clients:
        return
    for c, wk in list(clients.items()):
        if wk.expired:
            # Watched when already expired: its deletion is no logical change.
            if key not in db.dict:
                wk.expired = False
                continue
            # Redis 7.0.15 stops at the first such watcher whose key exists
            # again (a `break` in its loop); kept for byte parity.
            break
        c.flags |= CLIENT_DIRTY_CAS
        # No need to hear about its other keys again.
        unwatch_all_keys(c)


def touch_all_watched_keys_in_db(emptied, replaced_with=None):
    """touchAllWatchedKeysInDb(): before FLUSHDB/FLUSHALL empty `emptied`, or
    SWAPDB replaces its contents with `replaced_with`'s.

    A watcher is dirtied when its key exists in either. Expiry is kept
    exact as Redis keeps it: an expired key that is deleted (flushed) or
    stays expired is no logical change; a missing key replaced by an
    expired one is remembered as expired.
    """
    if not emptied.watched_keys:
        return
    for key, clients in list(emptied.watched_keys.items()):
        exists_in_emptied = key in emptied.dict
        in_replacement = replaced_with is not None and key in replaced_with.dict
        if not exists_in_emptied and not in_replacement:
            continue
        for c, wk in list(clients.items()):
            if wk.expired:
                if not in_replacement:
                    wk.expired = False
                    continue
                if replaced_with.key_is_expired(key):
                    continue
            elif not exists_in_emptied and replaced_with.key_is_expired(key):
                wk.expired = True
                continue
            c.flags |= CLIENT_DIRTY_CAS


def watch_command(c):
    if c.flags & CLIENT_MULTI:
        c.add_reply_error("WATCH inside MULTI is not allowed")
        return
    if not c.flags & CLIENT_DIRTY_CAS:
        for key in c.argv[1:]:
            watch_for_key(c, key)
    c.add_reply(b"+OK\r\n")


def unwatch_command(c):
    unwatch_all_keys(c)
    c.flags &= ~CLIENT_DIRTY_CAS
    c.add_reply(b"+OK\r\n")


# The commands process_command runs at once in MULTI instead of queueing.
NOT_QUEUED = {exec_command, discard_command, multi_command, watch_command, quit_command,
              reset_command}

_T = CMD_NOSCRIPT | CMD_LOADING | CMD_STALE
_G = "transactions"

COMMANDS = [
    Command("multi", multi_command, 1, _T | CMD_FAST | CMD_ALLOW_BUSY, group=_G,
            summary="Mark the start of a transaction block"),
    Command("exec", exec_command, 1, _T | CMD_SKIP_SLOWLOG, group=_G,
            summary="Execute all commands issued after MULTI"),
    Command("discard", discard_command, 1, _T | CMD_FAST | CMD_ALLOW_BUSY, group=_G,
            summary="Discard all commands issued after MULTI"),
    Command("watch", watch_command, -2, _T | CMD_FAST | CMD_ALLOW_BUSY, 1, -1, 1, group=_G,
            summary="Watch the given keys to determine execution of the MULTI/EXEC block"),
    Command("unwatch", unwatch_command, 1, _T | CMD_FAST | CMD_ALLOW_BUSY, group=_G,
            summary="Forget about all watched keys"),
]
