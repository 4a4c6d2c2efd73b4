"""Server-assisted client-side caching: CLIENT TRACKING (Redis's tracking.c).

A client that turns tracking on is told when a key it may hold in a local
cache changes: an `invalidate` push (RESP3), or a message on channel
`__redis__:invalidate` of the client its messages are redirected to (the
only way in RESP2). Two modes, as in Redis:

- Default: every key a read-only command of the client names is
  remembered in the tracking table (key -> ids of the clients that read
  it). A write to the key (db.signal_modified_key) sends one invalidation
  to each of them and forgets the key: a client hears about a key once per
  read. OPTIN/OPTOUT with CLIENT CACHING yes/no choose per command.
- BCAST: no table; the client names prefixes (none: every key) and hears
  of every key changed under them, batched once per turn of the event loop
  (before_sleep).

The table holds at most `tracking-table-max-keys` keys (0: no limit):
past it, random keys are evicted as if they had changed, so their readers
drop them. A flush invalidates everything with a null. The table keeps
client ids, not clients: entries of clients gone are dropped lazily, when
their key is invalidated, and all at once when no client tracks any more
(the write hook is off then). An invalidation for the client whose command is
running waits until its reply is queued (server.deferred_pushes), as
Redis's tracking_pending_keys.
"""

import random

from .acl import get_keys
from .resp import string2ll
from .server_h import (server, CLIENT_MULTI, CLIENT_PUBSUB, CLIENT_SCRIPT, CMD_PUBSUB,
                       CMD_READONLY, PUSHING)

CLIENT_TRACKING = 1 << 31
CLIENT_TRACKING_BROKEN_REDIR = 1 << 32
CLIENT_TRACKING_BCAST = 1 << 33
CLIENT_TRACKING_OPTIN = 1 << 34
CLIENT_TRACKING_OPTOUT = 1 << 35
CLIENT_TRACKING_CACHING = 1 << 36
CLIENT_TRACKING_NOLOOP = 1 << 37
_ALL_TRACKING_FLAGS = (CLIENT_TRACKING | CLIENT_TRACKING_BROKEN_REDIR | CLIENT_TRACKING_BCAST |
                       CLIENT_TRACKING_OPTIN | CLIENT_TRACKING_OPTOUT | CLIENT_TRACKING_CACHING |
                       CLIENT_TRACKING_NOLOOP)

CHANNEL = b"__redis__:invalidate"
_INVALIDATE3 = b">2\r\n$10\r\ninvalidate\r\n"
_INVALIDATE2 = b"*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n"
_NULLS = {2: b"$-1\r\n", 3: b"_\r\n"}


class State:
    """The tracking table and the prefix table (TrackingTable, PrefixTable)."""
    table = {}          # key -> {client id: None}
    total_items = 0     # ids across the whole table
    prefixes = {}       # prefix -> BcastState
    timeout_counter = 0


class BcastState:
    __slots__ = ("keys", "clients")

    def __init__(self):
        self.keys = {}      # key modified this turn -> the client that modified it
        self.clients = {}   # client -> None


state = State()


# ---- enabling and disabling ------------------------------------------------------------

def enable_tracking(c, redirect_to, options, prefixes):
    if not c.flags & CLIENT_TRACKING:
        server.tracking_clients += 1
    c.flags |= CLIENT_TRACKING
    c.flags &= ~(CLIENT_TRACKING_BROKEN_REDIR | CLIENT_TRACKING_BCAST | CLIENT_TRACKING_OPTIN |
                 CLIENT_TRACKING_OPTOUT | CLIENT_TRACKING_NOLOOP)
    c.tracking_redirection = redirect_to
    if options & CLIENT_TRACKING_BCAST:
        c.flags |= CLIENT_TRACKING_BCAST
        for prefix in prefixes or [b""]:
            enable_bcast_for_prefix(c, prefix)
    c.flags |= options & (CLIENT_TRACKING_OPTIN | CLIENT_TRACKING_OPTOUT | CLIENT_TRACKING_NOLOOP)


def enable_bcast_for_prefix(c, prefix):
    bs = state.prefixes.get(prefix)
    if bs is None:
        bs = state.prefixes[prefix] = BcastState()
    if c not in bs.clients:
        bs.clients[c] = None
        if c.tracking_prefixes is None:
            c.tracking_prefixes = {}
        c.tracking_prefixes[prefix] = None


def disable_tracking(c):
    """disableTracking: the client leaves its prefixes; its table entries
    are dropped lazily."""
    if c.flags & CLIENT_TRACKING_BCAST:
        for prefix in c.tracking_prefixes or ():
            bs = state.prefixes.get(prefix)
            if bs is not None:
                bs.clients.pop(c, None)
                if not bs.clients:
                    del state.prefixes[prefix]
        c.tracking_prefixes = None
    if c.flags & CLIENT_TRACKING:
        server.tracking_clients -= 1
        c.flags &= ~_ALL_TRACKING_FLAGS
        if not server.tracking_clients:
            # Nobody tracks: every entry left is stale (Redis drops them
            # lazily; the write hook is off now, so they go at once).
            state.table = {}
            state.total_items = 0


# ---- remembering and invalidating ------------------------------------------------------

def after_command(c, cmd, argv):
    """call()'s part: the keys a read-only command of a tracking client
    named are remembered; CLIENT CACHING lasts for one command (or one
    transaction) only. Runs only while some client tracks."""
    if cmd.flags & CMD_READONLY and cmd.fullname not in _READONLY_SCRIPTS:
        caller = c
        if c.flags & CLIENT_SCRIPT and server.lua is not None and server.lua.client is not None:
            # A script's read remembers the keys the script declared (its
            # caller's command), as Redis does.
            caller = server.lua.client
            cmd, argv = caller.lastcmd, caller.argv
        if caller.flags & CLIENT_TRACKING and not caller.flags & CLIENT_TRACKING_BCAST:
            remember_keys(caller, cmd, argv)
    if c.flags & CLIENT_TRACKING_CACHING and not c.flags & CLIENT_MULTI and \
            cmd.fullname != "client|caching":
        c.flags &= ~CLIENT_TRACKING_CACHING


# EVAL_RO & co. are read-only, but their keys are the ones their calls read.
_READONLY_SCRIPTS = frozenset(("eval_ro", "evalsha_ro", "fcall_ro"))





def remember_keys(c, cmd, argv):
    """trackingRememberKeys."""
    flags = c.flags
    caching = flags & CLIENT_TRACKING_CACHING
    if (flags & CLIENT_TRACKING_OPTIN and not caching) or \
            (flags & CLIENT_TRACKING_OPTOUT and caching):
        return
    keys = get_keys(cmd, argv)
    if not keys or cmd.flags & CMD_PUBSUB:
        return
    table = state.table
    cid = c.id
    for pos, _ in keys:
        key = argv[pos]
        ids = table.get(key)
        if ids is None:
            ids = table[key] = {}
        if cid not in ids:
            ids[cid] = None
            state.total_items += 1


def invalidate_key(c, key, bcast=True):
    """trackingInvalidateKey: c (None for expiry and evictions) changed key."""
    if bcast and state.prefixes:
        remember_key_to_broadcast(c, key)
    ids = state.table.pop(key, None)
    if ids is None:
        return
    state.total_items -= len(ids)
    current = running_client()
    frame = None
    for cid in ids:
        target = server.clients.get(cid)
        if target is None or not target.flags & CLIENT_TRACKING or \
                target.flags & CLIENT_TRACKING_BCAST:
            continue
        if target.flags & CLIENT_TRACKING_NOLOOP and target is current:
            continue
        if frame is None:
            frame = b"*1\r\n$%d\r\n%s\r\n" % (len(key), key)
        send_tracking_message(target, frame, target is current)


def running_client():
    """The client whose command is running: a script's caller while the
    script's own client runs its calls (Redis's current_client)."""
    c = server.current_client
    if c is not None and c.flags & CLIENT_SCRIPT and server.lua is not None and \
            server.lua.client is not None:
        return server.lua.client
    return c


def remember_key_to_broadcast(c, key):
    for prefix, bs in state.prefixes.items():
        if key.startswith(prefix):
            bs.keys[key] = c


def invalidate_keys_on_flush():
    """trackingInvalidateKeysOnFlush: a null to every tracking client, and
    the table is emptied."""
    if server.tracking_clients:
        current = running_client()
        for c in list(server.clients.values()):
            if c.flags & CLIENT_TRACKING:
                send_tracking_message(c, None, c is current)
    state.table = {}
    state.total_items = 0


def send_tracking_message(c, value, deferred=False):
    """sendTrackingMessage: `value` is the RESP of the keys (None: a null,
    meaning every key) sent to c or to the client it redirects to.

    deferred: c's own command is running, so the frame is queued after its
    reply (the redirected client is another one, whose frame goes now)."""
    redirect = c.tracking_redirection
    using_redirection = False
    if redirect:
        target = server.clients.get(redirect)
        if target is None:
            c.flags |= CLIENT_TRACKING_BROKEN_REDIR
            if c.resp > 2:
                _push(c, b">2\r\n$21\r\ntracking-redir-broken\r\n:%d\r\n" % redirect, deferred)
            return
        deferred = deferred and target is c
        c = target
        using_redirection = True
    if c.resp > 2:
        head = _INVALIDATE3
    elif using_redirection and c.flags & CLIENT_PUBSUB:
        head = _INVALIDATE2
    else:
        return      # RESP2 without a redirection: nowhere to send it
    _push(c, head + (value if value is not None else _NULLS[2 if c.resp == 2 else 3]),
          deferred)



def _push(c, frame, deferred):
    if deferred:
        server.deferred_pushes.append((c, frame))
    else:
        c.add_reply(frame, PUSHING)


# ---- the loop's parts ------------------------------------------------------------------

def broadcast_invalidation_messages():
    """trackingBroadcastInvalidationMessages (before_sleep): the keys
    changed this turn under each prefix, to its BCAST clients."""
    if not server.tracking_clients:
        return
    for prefix in sorted(state.prefixes):
        bs = state.prefixes[prefix]
        if bs.keys:
            common = _broadcast_reply(bs.keys, None)
            for c in list(bs.clients):
                if c.flags & CLIENT_TRACKING_NOLOOP:
                    own = _broadcast_reply(bs.keys, c)
                    if own is not None:
                        send_tracking_message(c, own)
                else:
                    send_tracking_message(c, common)
            bs.keys = {}


def _broadcast_reply(keys, excluded):
    """The array of keys (the ones `excluded` changed left out), or None if empty."""
    names = sorted(k for k, by in keys.items() if excluded is None or by is not excluded)
    if not names:
        return None
    return b"*%d\r\n" % len(names) + b"".join(b"$%d\r\n%s\r\n" % (len(k), k) for k in names)


def limit_used_slots():
    """trackingLimitUsedSlots (each command and the cron, while clients
    track): evict random keys past tracking-table-max-keys, with an effort
    that grows each time the limit is still exceeded."""
    max_keys = server.config.tracking_table_max_keys
    table = state.table
    if not max_keys or len(table) <= max_keys:
        state.timeout_counter = 0
        return
    effort = 100 * (state.timeout_counter + 1)
    while effort > 0 and table:
        effort -= 1
        invalidate_key(None, random.choice(list(table)), bcast=False)
        if len(table) <= max_keys:
            state.timeout_counter = 0
            return
    state.timeout_counter += 1


# ---- CLIENT TRACKING | CACHING | GETREDIR | TRACKINGINFO --------------------------------------

def client_tracking_command(c):
    argv = c.argv
    options = 0
    redirect = 0
    prefixes = []
    j = 3
    while j < len(argv):
        opt = argv[j].lower()
        more = j + 1 < len(argv)
        if opt == b"redirect" and more:
            j += 1
            if redirect:
                c.add_reply_error("A client can only redirect to a single other client")
                return
            redirect = string2ll(argv[j])
            if redirect is None:
                c.add_reply_error("value is not an integer or out of range")
                return
            if redirect not in server.clients:
                c.add_reply_error("The client ID you want redirect to does not exist")
                return
        elif opt == b"bcast":
            options |= CLIENT_TRACKING_BCAST
        elif opt == b"optin":
            options |= CLIENT_TRACKING_OPTIN
        elif opt == b"optout":
            options |= CLIENT_TRACKING_OPTOUT
        elif opt == b"noloop":
            options |= CLIENT_TRACKING_NOLOOP
        elif opt == b"prefix" and more:
            j += 1
            prefixes.append(argv[j])
        else:
            c.add_reply_error("syntax error")
            return
        j += 1
    mode = argv[2].lower()
    if mode == b"on":
        err = _tracking_on_error(c, options, prefixes)
        if err:
            c.add_reply_error(err)
            return
        enable_tracking(c, redirect, options, prefixes)
    elif mode == b"off":
        disable_tracking(c)
    else:
        c.add_reply_error("syntax error")
        return
    c.add_reply(b"+OK\r\n")


def _tracking_on_error(c, options, prefixes):
    """The checks of CLIENT TRACKING ON, in Redis's order: an error or None."""
    if not options & CLIENT_TRACKING_BCAST and prefixes:
        return "PREFIX option requires BCAST mode to be enabled"
    if c.flags & CLIENT_TRACKING and \
            bool(c.flags & CLIENT_TRACKING_BCAST) != bool(options & CLIENT_TRACKING_BCAST):
        return ("You can't switch BCAST mode on/off before disabling tracking for this "
                "client, and then re-enabling it with a different mode.")
    if options & CLIENT_TRACKING_BCAST and \
            options & (CLIENT_TRACKING_OPTIN | CLIENT_TRACKING_OPTOUT):
        return "OPTIN and OPTOUT are not compatible with BCAST"
    if options & CLIENT_TRACKING_OPTIN and options & CLIENT_TRACKING_OPTOUT:
        return "You can't specify both OPTIN mode and OPTOUT mode"
    if (options & CLIENT_TRACKING_OPTIN and c.flags & CLIENT_TRACKING_OPTOUT) or \
            (options & CLIENT_TRACKING_OPTOUT and c.flags & CLIENT_TRACKING_OPTIN):
        return ("You can't switch OPTIN/OPTOUT mode before disabling tracking for this "
                "client, and then re-enabling it with a different mode.")
    if options & CLIENT_TRACKING_BCAST:
        return prefix_collision(c, prefixes)
    return None


def prefix_collision(c, prefixes):
    """checkPrefixCollisionsOrReply: prefixes of one client must not overlap."""
    def overlap(a, b):
        n = min(len(a), len(b))
        return a[:n] == b[:n]

    def text(b):
        return b.decode("utf-8", "replace")

    for i, p in enumerate(prefixes):
        for existing in sorted(c.tracking_prefixes or ()):
            if overlap(existing, p):
                return ("Prefix '%s' overlaps with an existing prefix '%s'. Prefixes for a "
                        "single client must not overlap." % (text(p), text(existing)))
        for q in prefixes[i + 1:]:
            if overlap(p, q):
                return ("Prefix '%s' overlaps with another provided prefix '%s'. Prefixes "
                        "for a single client must not overlap." % (text(p), text(q)))
    return None


def client_caching_command(c):
    if not c.flags & CLIENT_TRACKING:
        c.add_reply_error("CLIENT CACHING can be called only when the client is in tracking "
                          "mode with OPTIN or OPTOUT mode enabled")
        return
    opt = c.argv[2].lower()
    if opt == b"yes":
        if not c.flags & CLIENT_TRACKING_OPTIN:
            c.add_reply_error("CLIENT CACHING YES is only valid when tracking is enabled in "
                              "OPTIN mode.")
            return
    elif opt == b"no":
        if not c.flags & CLIENT_TRACKING_OPTOUT:
            c.add_reply_error("CLIENT CACHING NO is only valid when tracking is enabled in "
                              "OPTOUT mode.")
            return
    else:
        c.add_reply_error("syntax error")
        return
    c.flags |= CLIENT_TRACKING_CACHING
    c.add_reply(b"+OK\r\n")


def redirection(c):
    """CLIENT GETREDIR's value, and CLIENT LIST's redir=."""
    return c.tracking_redirection if c.flags & CLIENT_TRACKING else -1


def client_getredir_command(c):
    c.add_reply_long_long(redirection(c))


# CLIENT TRACKINGINFO's flags, in Redis's order: (the flags it needs, name).
_INFO_FLAGS = ((CLIENT_TRACKING_BCAST, b"bcast"), (CLIENT_TRACKING_OPTIN, b"optin"),
               (CLIENT_TRACKING_OPTIN | CLIENT_TRACKING_CACHING, b"caching-yes"),
               (CLIENT_TRACKING_OPTOUT, b"optout"),
               (CLIENT_TRACKING_OPTOUT | CLIENT_TRACKING_CACHING, b"caching-no"),
               (CLIENT_TRACKING_NOLOOP, b"noloop"),
               (CLIENT_TRACKING_BROKEN_REDIR, b"broken_redirect"))


def client_trackinginfo_command(c):
    flags = c.flags
    names = [b"on" if flags & CLIENT_TRACKING else b"off"]
    names.extend(name for need, name in _INFO_FLAGS if flags & need == need)
    c.add_reply_map_len(3)
    c.add_reply_bulk(b"flags")
    c.add_reply_set_len(len(names))
    for n in names:
        c.add_reply_bulk(n)
    c.add_reply_bulk(b"redirect")
    c.add_reply_long_long(redirection(c))
    c.add_reply_bulk(b"prefixes")
    prefixes = sorted(c.tracking_prefixes or ())
    c.add_reply_array_len(len(prefixes))
    for p in prefixes:
        c.add_reply_bulk(p)


# ---- INFO --------------------------------------------------------------------------------

def total_keys():
    return len(state.table)


def total_items():
    return state.total_items


def total_prefixes():
    return len(state.prefixes)
