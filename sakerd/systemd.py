"""systemd: sd_notify() without libsystemd, the watchdog, and the unit's assumptions.

Some facts about systemd that shaped this module:

- A `Type=notify` service tells the manager about itself with datagrams on
  the AF_UNIX socket named by $NOTIFY_SOCKET (a leading '@' names an
  abstract socket): `READY=1` ends the start, `STOPPING=1` begins the stop,
  `STATUS=text` is what `systemctl status` shows. With systemd >= 253 a
  reload is tracked too: `RELOADING=1` together with `MONOTONIC_USEC=` (the
  CLOCK_MONOTONIC time of the request, in microseconds), then `READY=1` when
  it is done, whatever its outcome. Older managers ignore what they do not
  know.
- `WatchdogSec=` sets $WATCHDOG_USEC (and $WATCHDOG_PID, the process meant):
  unless `WATCHDOG=1` arrives at least that often, systemd kills the
  service with SIGABRT and, with Restart=, starts it again. sd_watchdog_enabled()
  advises pinging at half the interval. The pings come from the server
  cron, and from the Lua hook while a script runs within lua-time-limit;
  a script past lua-time-limit (BUSY) stops them, so a daemon stuck in
  Lua is restarted by systemd rather than kept alive by its own hook.
- Children inherit the environment: supervised programs see NOTIFY_SOCKET,
  but `NotifyAccess=main` (the default of Type=notify) makes the manager
  ignore what they send, and $WATCHDOG_PID names sakerd, not them.
"""

import os
import socket
import time

from .log import log, LL_WARNING
from .server_h import server


def notify(state):
    """sd_notify(): one datagram to $NOTIFY_SOCKET; False if there is none."""
    path = os.environ.get("NOTIFY_SOCKET")
    if not path:
        return False
    if path.startswith("@"):
        path = "\0" + path[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
            s.sendto(state.encode(), path)
    except OSError as e:
        log(LL_WARNING, "Can't send notification to systemd: %s", e.strerror)
        return False
    return True


def supervised():
    """Whether sakerd talks to systemd (`supervised systemd` or `auto`)."""
    return server.config is not None and server.config.supervised in ("systemd", "auto")


def status_text():
    """STATUS=: what `systemctl status sakerd` shows under the unit's name."""
    progs = list(server.procs.programs.values()) if server.procs is not None else []
    running = sum(1 for p in progs if p.state == "running")
    tasks = len(server.tasks.tasks) if server.tasks is not None else 0
    return "Ready: %d client%s, %d of %d program%s running, %d task%s" % (
        len(server.clients), "" if len(server.clients) == 1 else "s", running, len(progs),
        "" if len(progs) == 1 else "s", tasks, "" if tasks == 1 else "s")


def notify_ready():
    if supervised():
        Watchdog.status = status_text()
        notify("READY=1\nSTATUS=%s\n" % Watchdog.status)


def notify_reloading():
    if supervised():
        notify("RELOADING=1\nMONOTONIC_USEC=%d\nSTATUS=Reloading the configuration\n" %
               (time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000))


def notify_reloaded(problems):
    """After a reload, applied (problems empty) or refused: READY=1 in both cases."""
    if not supervised():
        return
    if problems:
        Watchdog.status = "Reload refused (%d problem%s), running on the previous " \
            "configuration" % (len(problems), "" if len(problems) == 1 else "s")
    else:
        Watchdog.status = status_text()
    notify("READY=1\nSTATUS=%s\n" % Watchdog.status)


# ---- the watchdog ---------------------------------------------------------------------

class Watchdog:
    """WATCHDOG=1 every half $WATCHDOG_USEC, and STATUS= when it changes."""

    interval_ns = 0          # half of WATCHDOG_USEC; 0 = no watchdog
    last_ns = 0
    status = ""

    @classmethod
    def setup(cls):
        usec = os.environ.get("WATCHDOG_USEC", "")
        pid = os.environ.get("WATCHDOG_PID", "")
        cls.interval_ns = 0
        if not supervised() or not usec.isdigit() or int(usec) == 0:
            return
        if pid and pid != str(os.getpid()):
            return           # meant for another process (sd_watchdog_enabled)
        cls.interval_ns = int(usec) * 1000 // 2
        cls.ping(time.monotonic_ns())

    @classmethod
    def ping(cls, now):
        cls.last_ns = now
        notify("WATCHDOG=1\n")


def watchdog_cron():
    """From the server cron: ping when half the interval is reached, or
    would be passed by more than half a cron period at the next tick."""
    if supervised() and server.cronloops % max(1, server.hz) == 0:
        text = status_text()
        if text != Watchdog.status and not Watchdog.status.startswith("Reload refused"):
            Watchdog.status = text
            notify("STATUS=%s\n" % text)
    if Watchdog.interval_ns:
        now = time.monotonic_ns()
        if now - Watchdog.last_ns + 500_000_000 // server.hz >= Watchdog.interval_ns:
            Watchdog.ping(now)


def watchdog_from_script(elapsed_ms, time_limit_ms):
    """From the Lua hook: a script within lua-time-limit keeps the pings going."""
    if Watchdog.interval_ns and (not time_limit_ms or elapsed_ms <= time_limit_ms):
        now = time.monotonic_ns()
        if now - Watchdog.last_ns >= Watchdog.interval_ns:
            Watchdog.ping(now)


def init(srv):
    Watchdog.setup()
    srv.cron_handlers.append(watchdog_cron)


# ---- what the unit assumes, checked by --test-config --------------------------------

RUNTIME_DIRECTORY = "/run/sakerd"     # conf/sakerd.service: RuntimeDirectory=sakerd


def under_systemd():
    """Started by systemd (ExecStart or ExecStartPre of a unit)."""
    return bool(os.environ.get("NOTIFY_SOCKET") or os.environ.get("INVOCATION_ID"))


def check_unit(config):
    """Problems with what conf/sakerd.service assumes: "file:line: message" each."""
    problems = []
    for name in ("pidfile", "unixsocket", "logfile"):
        p = config.get(name)
        if p:
            where = config.origin.get(name, config.config_file or "(defaults)")
            problems.extend("%s: %s: %s" % (where, name, msg)
                            for msg in _directory_problems(config.resolve_path(p)))
    if under_systemd():
        if config.supervised not in ("systemd", "auto"):
            problems.append("%s: supervised %s: started by systemd, which waits for READY=1 "
                            "(Type=notify): use supervised systemd" % (
                                config.origin.get("supervised", "(defaults)"),
                                config.supervised))
        elif config.daemonize and config.supervised != "systemd":
            problems.append("%s: daemonize yes: under systemd sakerd must stay in the "
                            "foreground (supervised systemd ignores daemonize)" %
                            config.origin.get("daemonize", "(defaults)"))
    return problems


def _directory_problems(path):
    """What the unit makes of the directory of a file sakerd writes: a
    read-only file system (ProtectSystem=). Whether another user could
    change the directory is checked for every start, not only under
    systemd (main.check_directories, safefile.directory_problem)."""
    d = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(d):
        return []        # check_paths says so (or the unit creates it: RuntimeDirectory)
    if not os.access(d, os.W_OK) and _read_only_fs(d):
        return ["directory %s is on a read-only file system (ProtectSystem= in the unit?): use "
                "%s (RuntimeDirectory=sakerd) or add it to ReadWritePaths=" % (
                    d, RUNTIME_DIRECTORY)]
    return []


def _read_only_fs(d):
    try:
        return bool(os.statvfs(d).f_flag & os.ST_RDONLY)
    except OSError:
        return False
