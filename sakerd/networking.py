"""Clients: accept, read, parse, reply, write, free. A port of networking.c.

Replies are appended to the client's output buffer (a bytearray) as whole
RESP units, in order. A client with something to send is put on
server.clients_pending_write; before the loop sleeps, handle_clients_with_
pending_writes() writes each one directly, and installs the writable
handler only for the clients whose socket buffer filled up (removed again
as soon as it drains). Each write sends everything queued, with no regard
for message boundaries, until the buffer is empty or the kernel answers
EAGAIN: two units can never interleave because a unit is appended whole,
and the backlog can never outgrow what the socket takes.

Freeing: a client is freed synchronously when that is safe (we are in its
own handler), otherwise marked CLOSE_ASAP and freed from before_sleep by
free_clients_in_async_free_queue(), never in the middle of a write.
"""

import time

try:
    import cython
    COMPILED = cython.compiled   # the compiled build: True, and networking.pxd's C helpers exist
except ImportError:              # pure Python, no Cython installed
    COMPILED = False

from . import anet, config, pubsub
from .ae import AE_READABLE, AE_WRITABLE
from .log import log, LL_VERBOSE, LL_WARNING
from .resp import (RequestReader, encode_bulk_array, repr_arg, NULL_BULK, OBJ_SHARED_BULKHDR_LEN,
                   OBJ_SHARED_INTEGERS, RESP3_NULL, SHARED_BULKHDR, SHARED_INTEGERS,
                   SHARED_MBULKHDR)
from .server_h import (  # noqa: F401  (the CLIENT_* names are re-exported)
    server, CLIENT_BLOCKED, CLIENT_CLOSE_AFTER_REPLY, CLIENT_CLOSE_ASAP, CLIENT_DENY_BLOCKING,
    CLIENT_DIRTY_CAS, CLIENT_DIRTY_EXEC, CLIENT_MONITOR, CLIENT_MULTI, CLIENT_NO_REPLY_MASK,
    CLIENT_PENDING_WRITE, CLIENT_PROTECTED, CLIENT_PUBSUB, CLIENT_REPLY_OFF, CLIENT_REPLY_SKIP,
    CLIENT_REPLY_SKIP_NEXT, CLIENT_SCRIPT, CLIENT_TYPE_MASTER, CLIENT_TYPE_NAMES,
    CLIENT_TYPE_NORMAL, CLIENT_TYPE_PUBSUB, CLIENT_TYPE_SLAVE, CLIENT_UNBLOCKED,
    CLIENT_UNIX_SOCKET, PUSHING)
from .acl import users, user_for_peer, SERVER_USER
from .tracking import (CLIENT_TRACKING, CLIENT_TRACKING_BCAST, CLIENT_TRACKING_BROKEN_REDIR,
                       disable_tracking, redirection as tracking_redirection)

MAX_ACCEPTS_PER_CALL = 1000
CRLF = b"\r\n"
PROTO_IOBUF_LEN = 16 * 1024     # networking.pxd's recv_buffer has this size
NET_MAX_WRITES_PER_EVENT = 1024 * 64

DENIED_PROTECTED = (
    b"-DENIED Redis is running in protected mode because protected "
    b"mode is enabled and no password is set for the default user. "
    b"In this mode connections are only accepted from the loopback interface. "
    b"If you want to connect from external computers to Redis you "
    b"may adopt one of the following solutions: "
    b"1) Just disable protected mode sending the command "
    b"'CONFIG SET protected-mode no' from the loopback interface "
    b"by connecting to Redis from the same host the server is "
    b"running, however MAKE SURE Redis is not publicly accessible "
    b"from internet if you do so. Use CONFIG REWRITE to make this "
    b"change permanent. "
    b"2) Alternatively you can just disable the protected mode by "
    b"editing the Redis configuration file, and setting the protected "
    b"mode option to 'no', and then restarting the server. "
    b"3) If you started the server manually just for testing, restart "
    b"it with the '--protected-mode no' option. "
    b"4) Setup a an authentication password for the default user. "
    b"NOTE: You only need to do one of the above things in order for "
    b"the server to start accepting connections from the outside.\r\n")


def format_double(d):
    """Bytes of a double as Redis prints it (%.17g, inf, -inf, nan)."""
    if d != d:
        return b"nan"
    if d == float("inf"):
        return b"inf"
    if d == float("-inf"):
        return b"-inf"
    return (b"%.17g" % d)


class Client:
    __slots__ = (
        "id", "sock", "fd", "flags", "name", "addr", "laddr", "ctime",
        "last_interaction", "reader", "argv", "lastcmd", "db",
        "authenticated", "resp", "buf", "reply_bytes_sent",
        "obuf_soft_limit_reached_time", "pubsub_channels", "pubsub_patterns",
        "pubsub_shard_channels",
        "send", "events_installed", "peer_is_local", "user_data", "user", "peer_uid",
        "mstate", "watched_keys", "bstate", "pending_argvs", "tracking_redirection",
        "tracking_prefixes")

    def __init__(self, sock, fd, flags=0):
        self.id = server.next_client_id
        server.next_client_id += 1
        self.sock = sock
        self.fd = fd
        self.flags = flags
        self.name = None
        self.addr = ""
        self.laddr = ""
        self.ctime = self.last_interaction = server.unixtime
        self.reader = RequestReader(server.config.proto_max_bulk_len)
        self.argv = None
        self.lastcmd = None
        self.db = server.db[0]
        # As Redis's createClient: the default user, logged in at once if it
        # needs no password (and is enabled).
        self.user = users.default
        self.authenticated = users.default.nopass and users.default.enabled
        self.peer_uid = None
        self.resp = 2
        self.buf = bytearray()
        self.reply_bytes_sent = 0
        self.obuf_soft_limit_reached_time = 0
        self.pubsub_channels = {}
        self.pubsub_patterns = {}
        self.pubsub_shard_channels = {}
        self.send = sock.send if sock is not None else None
        self.events_installed = 0
        self.peer_is_local = True
        self.user_data = None
        self.mstate = []            # queued (Command, argv) in MULTI (multi.py)
        self.watched_keys = []      # WatchedKey entries (multi.py)
        self.bstate = None          # what a blocked client waits for (blocked.py)
        self.pending_argvs = None   # requests parsed behind a blocking command
        self.tracking_redirection = 0   # CLIENT TRACKING REDIRECT id (tracking.py)
        self.tracking_prefixes = None   # BCAST prefixes: {prefix: None}

    # ---- replies (hot path) ------------------------------------------

    def add_reply(self, data, silenced_by=CLIENT_NO_REPLY_MASK):
        """Queue one or more whole RESP units (pub/sub frames: silenced_by=PUSHING)."""
        if self.flags & silenced_by:
            return
        buf = self.buf
        if not buf and self.sock is not None and not self.flags & CLIENT_PENDING_WRITE:
            self.flags |= CLIENT_PENDING_WRITE
            server.clients_pending_write.append(self)
        if COMPILED and type(data) is bytes:
            buf_append(buf, data)   # noqa: F821  (C: networking.pxd)
        else:
            buf += data
        if len(buf) > server.obuf_check_threshold:
            check_output_buffer_limits(self)

    def add_reply_bulk(self, b):
        """A bulk string (hot path: GET): a shared header, no formatting,
        and the value appended to the reply buffer as it is, not first
        joined with its header into a copy: add_reply() inlined."""
        if self.flags & CLIENT_NO_REPLY_MASK:
            return
        buf = self.buf
        if not buf and self.sock is not None and not self.flags & CLIENT_PENDING_WRITE:
            self.flags |= CLIENT_PENDING_WRITE
            server.clients_pending_write.append(self)
        n = len(b)
        header = SHARED_BULKHDR[n] if n < OBJ_SHARED_BULKHDR_LEN else b"$%d\r\n" % n
        if COMPILED and type(b) is bytes:
            buf_append_bulk(buf, header, b)     # noqa: F821  (C: networking.pxd)
        else:
            buf += header
            buf += b
            buf += CRLF
        if len(buf) > server.obuf_check_threshold:
            check_output_buffer_limits(self)

    def add_reply_bulk_or_null(self, b):
        if b is None:
            self.add_reply_null()
        else:
            self.add_reply_bulk(b)

    def add_reply_long_long(self, n):
        self.add_reply(SHARED_INTEGERS[n] if type(n) is int and 0 <= n < OBJ_SHARED_INTEGERS
                       else b":%d\r\n" % n)

    def add_reply_array_len(self, n):
        self.add_reply(SHARED_MBULKHDR[n] if 0 <= n < OBJ_SHARED_BULKHDR_LEN else b"*%d\r\n" % n)

    def add_reply_bulks(self, items):
        """An array of bulk strings (None items are nil)."""
        try:
            data = encode_bulk_array(items)
        except TypeError:   # a None among the items
            pass
        else:
            self.add_reply(data)
            return
        parts = [b"*%d\r\n" % len(items)]
        null = b"$-1\r\n" if self.resp == 2 else b"_\r\n"
        for b in items:
            parts.append(null if b is None else b"$%d\r\n%s\r\n" % (len(b), b))
        self.add_reply(b"".join(parts))

    # RESP3-aware shapes: each picks the RESP2 equivalent for resp=2 clients.

    def add_reply_null(self):
        """The null bulk/array: $-1 in RESP2, _ in RESP3."""
        self.add_reply(NULL_BULK if self.resp == 2 else RESP3_NULL)

    def add_reply_null_array(self):
        self.add_reply(b"*-1\r\n" if self.resp == 2 else b"_\r\n")

    def add_reply_map_len(self, n):
        """n key/value pairs follow: *2n in RESP2, %n in RESP3."""
        self.add_reply(b"*%d\r\n" % (n * 2) if self.resp == 2 else b"%%%d\r\n" % n)

    def add_reply_set_len(self, n):
        self.add_reply(b"*%d\r\n" % n if self.resp == 2 else b"~%d\r\n" % n)

    def add_reply_push_len(self, n):
        """Out-of-band data (pub/sub messages): an array in RESP2, > in RESP3."""
        self.add_reply(b"*%d\r\n" % n if self.resp == 2 else b">%d\r\n" % n)

    def add_reply_double(self, d):
        """A double: a bulk string in RESP2 (Redis's %.17g), , in RESP3."""
        s = format_double(d)
        if self.resp == 2:
            self.add_reply(b"$%d\r\n%s\r\n" % (len(s), s))
        else:
            self.add_reply(b",%s\r\n" % s)

    def add_reply_bool(self, b):
        if self.resp == 2:
            self.add_reply(b":1\r\n" if b else b":0\r\n")
        else:
            self.add_reply(b"#t\r\n" if b else b"#f\r\n")

    def add_reply_verbatim(self, text, ext=b"txt"):
        """Human-readable text (CLIENT LIST, INFO in RESP3): = or a bulk."""
        if self.resp == 2:
            self.add_reply_bulk(text)
        else:
            self.add_reply(b"=%d\r\n%s:%s\r\n" % (len(text) + 4, ext, text))

    def add_reply_status(self, s):
        if isinstance(s, str):
            s = s.encode()
        self.add_reply(b"+" + s + b"\r\n")

    def add_reply_error(self, msg):
        """Add "-ERR msg", or "-CODE rest" when msg starts with "-CODE".

        As in Redis's addReplyErrorLength: only a leading '-' marks an error
        code; newlines in the text become spaces so the protocol stays
        intact; the error is counted in errorstats by its code.
        """
        if isinstance(msg, str):
            msg = msg.encode()
        if msg.endswith(b"\r\n"):
            msg = msg[:-2]
        msg = msg.replace(b"\r", b" ").replace(b"\n", b" ")
        if msg.startswith(b"-"):
            msg = msg[1:]
            code = msg.split(b" ", 1)[0]
        else:
            msg = b"ERR " + msg
            code = b"ERR"
        server.count_error_reply(code.decode("latin-1"))
        self.add_reply(b"-" + msg + b"\r\n")

    def add_reply_help(self, name, lines):
        """Reply to SUBCOMMAND HELP like Redis's addReplyHelp."""
        head = "%s <subcommand> [<arg> [value] [opt] ...]. Subcommands are:" % name
        items = [head] + list(lines) + ["HELP", "    Prints this help."]
        self.add_reply(b"*%d\r\n" % len(items) +
                       b"".join(b"+" + s.encode() + b"\r\n" for s in items))

    def reply_pending(self):
        return len(self.buf)

    def is_fake(self):
        return self.sock is None

    def client_type(self):
        if self.flags & CLIENT_PUBSUB:
            return CLIENT_TYPE_PUBSUB
        return CLIENT_TYPE_NORMAL

    def auth_required(self):
        return not self.authenticated


def create_fake_client():
    """A client with no connection: its replies stay in c.buf for the caller."""
    c = Client(None, -1, CLIENT_SCRIPT | CLIENT_DENY_BLOCKING)
    c.user = SERVER_USER
    c.authenticated = True
    return c


def create_client(sock, flags):
    fd = sock.fileno()
    c = Client(sock, fd, flags)
    if server.el.create_file_event(fd, AE_READABLE, read_query_from_client, c) != 0:
        return None
    c.events_installed = AE_READABLE
    server.clients[c.id] = c
    return c


# ---- accept ----------------------------------------------------------

def _is_local(addr, unix):
    """Redis's islocalClient(): a unix socket, or exactly 127.0.0.1 or ::1.

    Other loopback addresses (127.0.0.2, ...) count as remote, as in Redis.
    """
    if unix:
        return True
    return addr == "127.0.0.1" or addr == "::1"


def accept_common_handler(sock, flags, ip):
    if len(server.clients) >= server.config.maxclients:
        # A best effort error message: don't check write errors.
        try:
            sock.send(b"-ERR max number of clients reached\r\n")
        except OSError:
            pass
        server.stat_rejected_conn += 1
        sock.close()
        return
    c = create_client(sock, flags)
    if c is None:
        log(LL_WARNING, "Error registering fd event for the new client (fd=%d)", sock.fileno())
        sock.close()
        return
    c.addr = anet.fd_to_string(sock, False)
    c.laddr = anet.fd_to_string(sock, True)
    c.peer_is_local = _is_local(ip, flags & CLIENT_UNIX_SOCKET)
    if flags & CLIENT_UNIX_SOCKET:
        authenticate_peer(c)
    # If the server is running in protected mode (the default) and there is
    # no password set, we don't accept requests from non loopback
    # interfaces. Instead we try to explain the user what to do to fix it.
    if server.config.protected_mode and users.default.nopass and not c.peer_is_local:
        try:
            sock.send(DENIED_PROTECTED)
        except OSError:
            pass
        server.stat_rejected_conn += 1
        free_client_async(c)
        return
    server.stat_numconnections += 1
    log(LL_VERBOSE, "Accepted %s", c.addr)


def authenticate_peer(c):
    """Log a unix socket client in by its peer's uid (SO_PEERCRED), as
    PostgreSQL's peer authentication: unixsocket-peer-user maps the uid to
    an ACL user. An unmapped peer stays the default user."""
    uid = anet.peer_uid(c.sock)
    c.peer_uid = uid
    if uid is None:
        return
    user = user_for_peer(uid)
    if user is not None and user.enabled:
        c.user = user
        c.authenticated = True
        log(LL_VERBOSE, "Unix socket peer uid %d logged in as '%s'", uid,
            user.name.decode("utf-8", "replace"))


def _accept_error(err):
    """accept() failed for a reason other than "nothing more": EMFILE & co.

    The listening socket stays readable while the backlog is full, so
    level-triggered polling would spin; pause accepting for a moment and
    warn at a limited rate instead.
    """
    now = time.monotonic()
    if now - server.accept_error_logged_at >= 1.0:
        server.accept_error_logged_at = now
        log(LL_WARNING, "Accepting client connection: %s", err)
    pause_accepting(100)


def pause_accepting(ms):
    """Stop watching the listeners for ms: used when accept() hits EMFILE."""
    if server.accepting_paused_until:
        return
    server.accepting_paused_until = time.monotonic() + ms / 1000.0
    for sock, _ in server.listeners:
        server.el.delete_file_event(sock.fileno(), AE_READABLE)


def resume_accepting():
    if not server.accepting_paused_until or time.monotonic() < server.accepting_paused_until:
        return
    server.accepting_paused_until = 0.0
    for sock, handler in server.listeners:
        server.el.create_file_event(sock.fileno(), AE_READABLE, handler, sock)


def accept_tcp_handler(el, fd, listener, mask):
    for _ in range(MAX_ACCEPTS_PER_CALL):
        conn, addr, err = anet.tcp_accept(listener)
        if conn is None:
            if err is anet.ANET_AGAIN:
                server.stat_accept_eagain += 1
            else:
                _accept_error(err)
            return
        anet.enable_tcp_no_delay(conn)
        if server.config.tcp_keepalive:
            anet.keep_alive(conn, server.config.tcp_keepalive)
        accept_common_handler(conn, 0, addr[0])


def accept_unix_handler(el, fd, listener, mask):
    for _ in range(MAX_ACCEPTS_PER_CALL):
        conn, path, err = anet.unix_accept(listener)
        if conn is None:
            if err is anet.ANET_AGAIN:
                server.stat_accept_eagain += 1
            else:
                _accept_error(err)
            return
        log(LL_VERBOSE, "Accepted connection to %s", path)
        accept_common_handler(conn, CLIENT_UNIX_SOCKET, path)


# ---- freeing -----------------------------------------------------------

def unlink_client(c):
    if c.sock is None:
        return
    el = server.el
    if c.events_installed:
        el.delete_file_event(c.fd, AE_READABLE | AE_WRITABLE)
        c.events_installed = 0
    try:
        c.sock.close()
    except OSError:
        pass
    c.sock = None
    c.send = None
    # Whoever still holds the client object must not hold its buffers.
    c.reader.reset()
    c.buf = bytearray()
    if c.flags & CLIENT_PENDING_WRITE:
        c.flags &= ~CLIENT_PENDING_WRITE
        remove_client_from(server.clients_pending_write, c)


def remove_client_from(clients, c):
    """Take c out of a list of clients, if it is there."""
    try:
        clients.remove(c)
    except ValueError:
        pass


def free_client(c):
    """Free a client now: unsubscribe, unregister, close the socket."""
    if server.current_client is c:
        # Freed from inside its own command (QUIT-like paths, CLIENT KILL
        # of itself): the caller still uses it, so do it asynchronously.
        free_client_async(c)
        return
    pubsub.pubsub_unsubscribe_all(c)
    if c.flags & (CLIENT_BLOCKED | CLIENT_MULTI) or c.watched_keys:
        # (blocked.py and multi.py sit above this module: they import it.)
        from . import blocked, multi
        if c.flags & CLIENT_BLOCKED:
            blocked.unblock_client(c, reprocess=False)
        multi.discard_transaction(c)    # no queue and no watch left behind
    if c.flags & CLIENT_UNBLOCKED:
        c.flags &= ~CLIENT_UNBLOCKED
        remove_client_from(server.unblocked_clients, c)
    if c.flags & CLIENT_MONITOR:
        remove_client_from(server.monitors, c)
    if c.flags & CLIENT_TRACKING:
        disable_tracking(c)
    unlink_client(c)
    server.clients.pop(c.id, None)
    if c.flags & CLIENT_CLOSE_ASAP:
        remove_client_from(server.clients_to_close, c)
    c.flags &= ~CLIENT_CLOSE_ASAP


def free_client_async(c):
    """Schedule the client to be freed before the next sleep."""
    if c.flags & CLIENT_CLOSE_ASAP or c.sock is None and c.id not in server.clients:
        return
    c.flags |= CLIENT_CLOSE_ASAP
    server.clients_to_close.append(c)


def free_clients_in_async_free_queue():
    freed = 0
    while server.clients_to_close:
        c = server.clients_to_close.pop(0)
        c.flags &= ~CLIENT_CLOSE_ASAP
        if server.current_client is c:
            server.current_client = None
        free_client(c)
        freed += 1
    return freed


# ---- reading -------------------------------------------------------------

def read_query_from_client(el, fd, c, mask):
    try:
        data = fd_recv(c.fd) if COMPILED else c.sock.recv(PROTO_IOBUF_LEN)  # noqa: F821
    except (BlockingIOError, InterruptedError):
        return
    except OSError as e:
        log(LL_VERBOSE, "Reading from client: %s", e.strerror)
        free_client(c)
        return
    if not data:
        log(LL_VERBOSE, "Client closed connection id=%d addr=%s", c.id, c.addr)
        free_client(c)
        return
    c.last_interaction = server.unixtime
    server.stat_net_input_bytes += len(data)
    reader = c.reader
    if not reader.feed(data):
        if reader.pending() > server.config.client_query_buffer_limit:
            _close_on_query_limit(c)
        return
    process_input_buffer(c)
    if c.flags & CLIENT_CLOSE_AFTER_REPLY and not c.buf:
        # No reply left to wait for (CLIENT REPLY OFF, then QUIT): the
        # writer would never see this client, so close it from here.
        free_client_async(c)
    elif (reader.buf or reader.argv is not None) and c.sock is not None and \
            reader.pending() > server.config.client_query_buffer_limit:
        # (Nothing is pending unless bytes or a partial request remain.)
        _close_on_query_limit(c)


def _close_on_query_limit(c):
    log(LL_WARNING, "Closing client that reached max query buffer length: %s",
        client_info_string(c))
    server.stat_client_qbuf_limit_disconnections += 1
    free_client_async(c)


_CLOSING_FLAGS = CLIENT_CLOSE_AFTER_REPLY | CLIENT_CLOSE_ASAP


def process_input_buffer(c, pending=None):
    """Run every complete request in the client's query buffer (hot path).

    A blocked client runs nothing: what it sent stays in its query buffer,
    and what was already parsed behind the blocking command waits in
    c.pending_argvs, given back here as `pending` once it is unblocked
    (blocked.process_unblocked_clients).
    """
    if c.flags & CLIENT_BLOCKED:
        return
    reader = c.reader
    process_commands = server.process_commands
    # c is the current client while its commands run; a nested loop (a busy
    # script serving other clients from its hook) puts back the one it
    # interrupted.
    prev, server.current_client = server.current_client, c
    try:
        while True:
            auth_required = not c.authenticated
            if pending is None:
                cmds = reader.parse(auth_required)
            else:
                cmds, pending = pending, None
            if c.flags & _CLOSING_FLAGS:
                return
            if cmds and process_commands(c, cmds):
                return  # blocked or closing
            if reader.error is not None:
                set_protocol_error(c, reader.error)
                return
            # An unauthenticated client gets one request per parse(); go on
            # with the rest, which that request (AUTH, HELLO) may have made legal.
            if not auth_required or not cmds:
                return
    finally:
        server.current_client = prev
        if server.deferred_pushes:
            # Held while c was the current client but not in a command
            # (a log line of a protocol error): c is no longer running.
            pubsub.flush_deferred_pushes(c)


def set_protocol_error(c, err):
    if server.fanout is not None:
        server.fanout.flush()   # messages published before come first
    # latin-1: "expected '$', got '%c'" carries the client's byte as is.
    c.add_reply_error(err.encode("latin-1"))
    log(LL_VERBOSE, "Protocol error (%s) from client: %s", err, client_info_string(c))
    c.flags |= CLIENT_CLOSE_AFTER_REPLY
    c.reader.reset()


# ---- writing ---------------------------------------------------------------

def write_to_client(c, handler_installed):
    """Write the whole queued reply until done or EAGAIN.

    Returns False if the client was freed (or must not be touched again).
    """
    buf = c.buf
    send = c.send
    total = 0
    while buf:
        try:
            n = fd_send(c.fd, buf) if COMPILED else send(buf)    # noqa: F821
        except (BlockingIOError, InterruptedError):
            break
        except OSError as e:
            log(LL_VERBOSE, "Error writing to client: %s", e.strerror)
            free_client_async(c)
            return False
        total += n
        del buf[:n]
    if total:
        server.stat_net_output_bytes += total
        c.reply_bytes_sent += total
        c.last_interaction = server.unixtime
    if not buf:
        c.obuf_soft_limit_reached_time = 0
        if handler_installed:
            c.events_installed &= ~AE_WRITABLE
            server.el.delete_file_event(c.fd, AE_WRITABLE)
        if c.flags & CLIENT_CLOSE_AFTER_REPLY:
            free_client_async(c)
            return False
    return True


def send_reply_to_client(el, fd, c, mask):
    write_to_client(c, True)


def handle_clients_with_pending_writes():
    """Called before sleeping: try to write replies directly (hot path).

    Also from the loops that serve clients while a script runs or exec
    waits: messages still in an open fan-out batch go out with the rest.
    """
    if server.fanout is not None:
        server.fanout.flush()
    pending = server.clients_pending_write
    if not pending:
        return 0
    server.clients_pending_write = []
    n = len(pending)
    for c in pending:
        c.flags &= ~CLIENT_PENDING_WRITE
        if c.sock is None or c.flags & CLIENT_CLOSE_ASAP:
            continue
        if not write_to_client(c, False):
            continue
        if c.buf and not c.events_installed & AE_WRITABLE:
            # The kernel buffer is full: write the rest when it drains.
            if server.el.create_file_event(c.fd, AE_WRITABLE, send_reply_to_client, c) != 0:
                free_client_async(c)
            else:
                c.events_installed |= AE_WRITABLE
    return n


# ---- output buffer limits ----------------------------------------------------

def check_output_buffer_limits(c):
    """Schedule c for closing if its reply buffer is over its class limit.

    Over the hard limit, or over the soft limit for longer than the soft
    seconds. Called when a reply is appended and from the clients cron.
    """
    if c.sock is None or c.flags & CLIENT_CLOSE_ASAP:
        return False
    used = len(c.buf)
    klass = c.client_type()
    hard, soft, soft_seconds = server.config.client_output_buffer_limit[klass]
    hard_reached = hard and used >= hard
    soft_reached = soft and used >= soft
    if soft_reached:
        # As Redis: the soft limit counts once it has held for more than
        # soft_seconds, measured from the first check that saw it.
        now = server.unixtime
        if not c.obuf_soft_limit_reached_time:
            c.obuf_soft_limit_reached_time = now
            soft_reached = False
        elif now - c.obuf_soft_limit_reached_time <= soft_seconds:
            soft_reached = False
    else:
        c.obuf_soft_limit_reached_time = 0
    if not (hard_reached or soft_reached):
        return False
    info = client_info_string(c)
    # Close first, report after: CLOSE_ASAP makes add_reply a no-op, so
    # the log line and event published below cannot re-enter for c.
    # Nothing more may be sent: drop what is queued, close before sleeping.
    free_client_async(c)
    c.buf = bytearray()
    log(LL_WARNING, "Client %s scheduled to be closed ASAP for overcoming of output buffer limits.", info)
    server.stat_client_outbuf_limit_disconnections += 1
    server.emit_event("client_killed", reason="output-buffer-limit", id=c.id, addr=c.addr,
                      name=c.name.decode("utf-8", "replace") if c.name else "",
                      omem=used, **{"class": _CLASS_NAMES[klass]})
    return True


_CLASS_NAMES = {CLIENT_TYPE_NORMAL: "normal", CLIENT_TYPE_SLAVE: "replica",
                CLIENT_TYPE_PUBSUB: "pubsub", CLIENT_TYPE_MASTER: "master"}


# ---- clients cron ----------------------------------------------------------------

def clients_cron_handle_timeout(c, now):
    """Close c if idle longer than `timeout`, or still not authenticated
    after `auth-timeout`; returns True if it was freed."""
    auth_timeout = server.config.auth_timeout
    if auth_timeout and not c.authenticated and now - c.ctime > auth_timeout:
        log(LL_VERBOSE, "Closing client that did not authenticate in time")
        free_client(c)
        return True
    timeout = server.config.timeout
    if timeout and not c.flags & (CLIENT_PUBSUB | CLIENT_MONITOR | CLIENT_BLOCKED) and \
            now - c.last_interaction > timeout:
        log(LL_VERBOSE, "Closing idle client")
        free_client(c)
        return True
    return False


# ---- CLIENT LIST ---------------------------------------------------------------------

# CLIENT LIST's flag letters, in Redis's order (catClientInfoString).
_FLAG_LETTERS = ((CLIENT_MONITOR, "O"), (CLIENT_PUBSUB, "P"), (CLIENT_MULTI, "x"),
                 (CLIENT_BLOCKED, "b"), (CLIENT_TRACKING, "t"), (CLIENT_TRACKING_BROKEN_REDIR, "R"),
                 (CLIENT_TRACKING_BCAST, "B"), (CLIENT_DIRTY_CAS, "d"), (CLIENT_CLOSE_AFTER_REPLY, "c"),
                 (CLIENT_UNBLOCKED, "u"), (CLIENT_CLOSE_ASAP, "A"), (CLIENT_UNIX_SOCKET, "U"))


def client_flags_string(c):
    flags = c.flags
    return "".join(letter for flag, letter in _FLAG_LETTERS if flags & flag) or "N"


def client_info_string(c):
    now = server.unixtime
    events = ""
    if c.events_installed & AE_READABLE:
        events += "r"
    if c.events_installed & AE_WRITABLE:
        events += "w"
    cmd = c.lastcmd.fullname if c.lastcmd is not None else "NULL"
    qbuf = c.reader.pending()
    return ("id=%d addr=%s laddr=%s fd=%d name=%s age=%d idle=%d flags=%s db=%d "
            "sub=%d psub=%d ssub=%d multi=%d qbuf=%d qbuf-free=%d argv-mem=%d multi-mem=%d "
            "rbs=%d rbp=%d obl=0 oll=0 omem=%d tot-mem=%d events=%s cmd=%s user=%s "
            "redir=%d resp=%d") % (
        c.id, c.addr, c.laddr, c.fd, (c.name or b"").decode("utf-8", "replace"),
        now - c.ctime, now - c.last_interaction, client_flags_string(c), c.db.id,
        len(c.pubsub_channels), len(c.pubsub_patterns), len(c.pubsub_shard_channels),
        len(c.mstate) if c.flags & CLIENT_MULTI else -1, qbuf, 0, c.reader.argv_len_sum,
        multi_state_mem_overhead(c), len(c.buf), len(c.buf), len(c.buf), len(c.buf) + qbuf, events, cmd,
        c.user.name.decode("utf-8", "replace"), tracking_redirection(c), c.resp)


def multi_state_mem_overhead(c):
    """multiStateMemOverhead(), with Redis's struct sizes: the queued
    arguments (each counted as an robj* plus its bytes), 56 bytes per watched
    key (a list node and a watchedKey), 24 per allocated queue slot (Redis
    grows the queue from 2 by doubling)."""
    mem = 0
    count = len(c.mstate)
    for _, argv in c.mstate:
        mem += sum(len(a) for a in argv) + 8 * len(argv)
    alloc = 0
    if count:
        alloc = 2
        while alloc < count:
            alloc *= 2
    return mem + 56 * len(c.watched_keys) + 24 * alloc


def _redacted_argv(argv):
    """argv with secrets hidden as Redis's redactClientCommandArgument does:
    every AUTH argument, and the user and password of HELLO's AUTH option."""
    name = argv[0].lower() if argv else b""
    if name == b"auth":
        return argv[:1] + [b"(redacted)"] * (len(argv) - 1)
    if name == b"acl" and len(argv) > 2 and argv[1].lower() == b"setuser":
        # aclCommand redacts every argument from the user name on.
        return argv[:2] + [b"(redacted)"] * (len(argv) - 2)
    if name == b"hello":
        argv = list(argv)
        for j in range(2, len(argv) - 2):
            if argv[j].lower() == b"auth":
                argv[j + 1] = argv[j + 2] = b"(redacted)"
                break
    elif name == b"config" and len(argv) > 3 and argv[1].lower() == b"set":
        # configSetCommand redacts the value of every sensitive directive.
        argv = list(argv)
        for j in range(2, len(argv) - 1, 2):
            d = config.BY_NAME.get(argv[j].lower().decode("latin-1"))
            if d is not None and d.sensitive:
                argv[j + 1] = b"(redacted)"
    return argv


def monitor_feed(c, argv):
    """Send the command to every MONITOR client, Redis's format."""
    now = time.time()
    if c.flags & CLIENT_SCRIPT:
        origin = "lua"
    elif c.flags & CLIENT_UNIX_SOCKET:
        origin = "unix:%s" % server.config.unixsocket
    else:
        origin = c.addr
    argv = _redacted_argv(argv)
    line = "+%.6f [%d %s] %s\r\n" % (now, c.db.id, origin,
                                     " ".join(repr_arg(a) for a in argv))
    data = line.encode()
    for m in server.monitors:
        m.add_reply(data)


def client_command_help():
    return [
        "CACHING (YES|NO)",
        "    Enable/disable tracking of the keys for next command in OPTIN/OPTOUT modes.",
        "GETREDIR",
        "    Return the client ID we are redirecting to when tracking is enabled.",
        "GETNAME",
        "    Return the name of the current connection.",
        "ID",
        "    Return the ID of the current connection.",
        "INFO",
        "    Return information about the current client connection.",
        "KILL <ip:port>",
        "    Kill connection made from <ip:port>.",
        "KILL <option> <value> [<option> <value> [...]]",
        "    Kill connections. Options are:",
        "    * ADDR (<ip:port>|<unixsocket>:0)",
        "      Kill connections made from the specified address",
        "    * LADDR (<ip:port>|<unixsocket>:0)",
        "      Kill connections made to specified local address",
        "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
        "      Kill connections by type.",
        "    * ID <client-id>",
        "      Kill connections by client id.",
        "    * SKIPME (YES|NO)",
        "      Skip killing current connection (default: yes).",
        "LIST [options ...]",
        "    Return information about client connections. Options:",
        "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
        "      Return clients of specified type.",
        "REPLY (ON|OFF|SKIP)",
        "    Control the replies sent to the current connection.",
        "SETNAME <name>",
        "    Assign the name <name> to the current connection.",
        "TRACKING (ON|OFF) [REDIRECT <id>] [BCAST] [PREFIX <prefix> [...]]",
        "         [OPTIN] [OPTOUT] [NOLOOP]",
        "    Control server assisted client side caching.",
        "TRACKINGINFO",
        "    Report tracking status for the current connection.",
        "UNBLOCK <clientid> [TIMEOUT|ERROR]",
        "    Unblock the specified blocked client.",
    ]
