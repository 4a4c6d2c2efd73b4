"""Signals reach the event loop through a wake-up descriptor.

Nothing of substance runs inside a Python signal handler. The handlers
installed here do nothing; what matters is signal.set_wakeup_fd(): the C
level handler writes the signal number to our socketpair, whose read end
is an ordinary readable file event of the loop. Because epoll.poll()
retries after EINTR by itself (PEP 475), that write is also what makes a
sleeping poll return promptly. The read handler then dispatches each
signal from the loop, where any code may run.

SIGCHLD is coalesced by the kernel (two children exiting may raise it
once), so its handler must reap with waitpid(-1, WNOHANG) until nothing is
left rather than once per signal.
"""

import signal
import socket

from .ae import AE_READABLE
from .log import log, LL_WARNING, LL_NOTICE
from .server_h import server

_pair = None


def _noop(signum, frame):
    pass


def read_signals(el, fd, sock, mask):
    try:
        data = sock.recv(512)
    except (BlockingIOError, InterruptedError):
        return
    for signum in data:
        handle_signal(signum)


def handle_signal(signum):
    if signum in (signal.SIGTERM, signal.SIGINT):
        if server.shutdown_asap:
            return
        name = "SIGTERM" if signum == signal.SIGTERM else "SIGINT"
        log(LL_WARNING, "Received %s scheduling shutdown...", name)
        server.shutdown_asap = True
        server.prepare_for_shutdown_and_exit()
    elif signum == signal.SIGHUP:
        log(LL_NOTICE, "Received SIGHUP, reloading the configuration")
        from .reload import request_reload
        request_reload()
    elif signum == signal.SIGCHLD:
        for handler in list(server.sigchld_handlers):
            handler()


def setup_signal_handlers(el):
    global _pair
    r, w = socket.socketpair()
    r.setblocking(False)
    w.setblocking(False)
    _pair = (r, w)
    signal.set_wakeup_fd(w.fileno(), warn_on_full_buffer=False)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD):
        signal.signal(sig, _noop)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    el.create_file_event(r.fileno(), AE_READABLE, read_signals, r)
