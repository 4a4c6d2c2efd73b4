"""Basic TCP and unix socket library: a port of Redis's anet.c.

Every function returns its result and an error message, never raises into
the event loop: ``(value, None)`` on success, ``(None, "message")`` on
failure. The accept functions distinguish three outcomes:

* a connection: ``(sock, addr, None)``;
* nothing more to accept now: ``(None, None, ANET_AGAIN)``. EAGAIN and
  EWOULDBLOCK after a level-triggered wake are normal (another process or a
  reset took the connection); ECONNABORTED means the peer gave up while in
  the backlog. None of them is an error worth a log line;
* a real error such as EMFILE: ``(None, None, "accept: Too many open files")``.

EINTR is retried here, as Redis does, so the caller never sees it.
"""

import errno
import os
import socket
import struct
import stat

ANET_AGAIN = "again"

_AGAIN_ERRNOS = frozenset((errno.EAGAIN, errno.EWOULDBLOCK, errno.ECONNABORTED))


def _listen(sock, backlog):
    sock.setblocking(False)
    sock.listen(backlog)


def tcp_server(port, bindaddr, backlog):
    """Listen on bindaddr:port; IPv6 when the address has a colon."""
    family = socket.AF_INET6 if bindaddr and ":" in bindaddr else socket.AF_INET
    if bindaddr == "*":
        bindaddr = ""
    elif bindaddr == "::*":
        bindaddr = "::"
    try:
        infos = socket.getaddrinfo(bindaddr or None, port, family, socket.SOCK_STREAM,
                                   0, socket.AI_PASSIVE)
    except socket.gaierror as e:
        return None, "%s: %s" % (bindaddr, e.strerror)
    err = None
    for af, socktype, proto, _, sa in infos:
        try:
            sock = socket.socket(af, socktype, proto)
        except OSError as e:
            err = "socket: %s" % e.strerror
            continue
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if af == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(sa)
            _listen(sock, backlog)
        except OSError as e:
            sock.close()
            err = "bind: %s" % e.strerror
            continue
        return sock, None
    return None, err or "unable to bind socket"


def unix_server(path, perm, backlog):
    """Listen on a unix socket; a stale socket file at path is replaced."""
    try:
        if stat.S_ISSOCK(os.lstat(path).st_mode):
            os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as e:
        return None, "unlink %s: %s" % (path, e.strerror)
    try:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    except OSError as e:
        return None, "socket: %s" % e.strerror
    try:
        # Create the socket file with no permissions for anyone but us, then
        # open it up to `perm`: never a window where it is world-writable.
        old = os.umask(0o177)
        try:
            sock.bind(path)
        finally:
            os.umask(old)
        if perm:
            os.chmod(path, perm)
        _listen(sock, backlog)
    except OSError as e:
        sock.close()
        return None, "%s: %s" % (path, e.strerror)
    return sock, None


def _family_of(addr):
    """The address family of an accepted peer, from the shape of its address."""
    if isinstance(addr, tuple):
        return socket.AF_INET6 if len(addr) == 4 else socket.AF_INET
    return socket.AF_UNIX


def _generic_accept(sock):
    while True:
        try:
            # socket.accept() would read sock.family and sock.type, each
            # converted to an enum member: ~1.5 us per connection, a tenth
            # of the accept path. _accept() is what it calls underneath.
            fd, addr = sock._accept()
        except InterruptedError:
            continue
        except OSError as e:
            if e.errno in _AGAIN_ERRNOS:
                return None, None, ANET_AGAIN
            return None, None, "accept: %s" % (e.strerror or e)
        conn = socket.socket(_family_of(addr), socket.SOCK_STREAM, 0, fd)
        conn.setblocking(False)
        return conn, addr, None


def tcp_accept(sock):
    """Accept a TCP connection: (conn, (ip, port), err)."""
    conn, addr, err = _generic_accept(sock)
    if conn is None:
        return None, None, err
    return conn, (addr[0], addr[1]), None


def unix_accept(sock):
    """Accept a unix connection: (conn, path, err)."""
    conn, addr, err = _generic_accept(sock)
    if conn is None:
        return None, None, err
    return conn, sock.getsockname(), None


_UCRED = struct.Struct("3i")     # struct ucred: pid, uid, gid


def peer_uid(sock):
    """The uid of a unix socket's peer (SO_PEERCRED: the kernel's word, not
    the peer's, taken when it connected), or None if it cannot be read."""
    try:
        _, uid, _ = _UCRED.unpack(sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                                  _UCRED.size))
    except (OSError, AttributeError):
        return None
    return uid


def enable_tcp_no_delay(sock):
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError as e:
        return "setsockopt TCP_NODELAY: %s" % e.strerror
    return None


def keep_alive(sock, interval):
    """Enable SO_KEEPALIVE and, on Linux, probe after `interval` seconds."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        if hasattr(socket, "TCP_KEEPIDLE"):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, interval)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, max(1, interval // 3))
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 3)
    except OSError as e:
        return "setsockopt SO_KEEPALIVE: %s" % e.strerror
    return None


def format_addr(ip, port):
    """ip:port, with IPv6 in brackets as in CLIENT LIST."""
    if ":" in ip:
        return "[%s]:%d" % (ip, port)
    return "%s:%d" % (ip, port)


def fd_to_string(sock, local):
    """The local or peer address of a socket, as ip:port.

    Unix sockets are "/unixsocket:0" both ways, as in Redis 7.0's
    anetFdToString (an accepted unix peer has no name of its own).
    """
    try:
        addr = sock.getsockname() if local else sock.getpeername()
    except OSError:
        return "/unixsocket:0" if sock.family == socket.AF_UNIX else "?:0"
    # Only inet addresses are tuples (sock.family would cost an enum lookup).
    if isinstance(addr, tuple):
        return format_addr(addr[0], addr[1])
    return "/unixsocket:0"


def port_holder(port):
    """(pid, name) of the process listening on TCP port, or None (Linux, best effort).

    Used to name the holder when bind() fails with EADDRINUSE.
    """
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    fields = line.split()
                    local, state, inode = fields[1], fields[3], fields[9]
                    if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                        inodes.add("socket:[%s]" % inode)
        except (OSError, StopIteration, IndexError, ValueError):
            continue
    if not inodes:
        return None
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        fd_dir = "/proc/%s/fd" % pid
        try:
            for fd in os.listdir(fd_dir):
                try:
                    if os.readlink("%s/%s" % (fd_dir, fd)) in inodes:
                        with open("/proc/%s/comm" % pid) as f:
                            return int(pid), f.read().strip()
                except OSError:
                    continue
        except OSError:
            continue
    return None
