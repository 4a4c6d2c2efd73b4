"""Host and process inspection with psutil: saker.proc, procs, modules, sysinfo, kill, pidof.

What the OS lets an unprivileged process see decides the shape of this API
(Linux; psutil reads /proc):

- /proc/<pid>/stat, status, statm and cmdline are readable by anyone, so
  pid, ppid, name, status, username, create time, CPU times, memory and
  threads of any process can be read. saker.proc returns those by default.
- exe, cwd, environ, open files, descriptors, memory maps (loaded modules)
  and I/O counters need ptrace access to the process: same user (and not
  setuid), or CAP_SYS_PTRACE. They are asked for by name
  (saker.proc(pid, {"open_files"}), saker.modules(pid)), and a refusal is
  an error value: psutil's AccessDenied, NoSuchProcess and ZombieProcess
  become `nil, message` (SPEC §9.7), never an exception into the loop.
- disk_usage() of a network mount can hang on a dead server; sysinfo and
  INFO host only look at the physical partitions psutil lists by default
  (all=False), which leaves NFS/CIFS out.
- cpu_percent(interval=None) compares with the previous call; init() makes
  the first call so that the first INFO host has a meaningful value.
"""

import os
import re
import signal

import psutil

from .lua_bridge import ArgError, lua_type, saker_api
from .pidfile import check_pidfile
from .procs import exec_refused, parse_signal

# Readable for any process.
BASIC_FIELDS = ("pid", "ppid", "name", "status", "username", "create_time", "cmdline",
                "cpu_times", "memory_info", "num_threads", "nice", "terminal")
# Need ptrace access to the process; asked for by name.
PRIVILEGED_FIELDS = ("exe", "cwd", "environ", "open_files", "num_fds", "io_counters",
                     "connections", "memory_maps")
PROC_FIELDS = set(BASIC_FIELDS) | set(PRIVILEGED_FIELDS) | {"uids", "gids", "cpu_percent",
                                                            "memory_percent", "children"}
LIST_FIELDS = ["pid", "ppid", "name", "username", "status", "create_time", "cmdline"]


def plain(value):
    """psutil's namedtuples and lists as tables the bridge can hand to Lua."""
    if hasattr(value, "_asdict"):
        return {k: plain(v) for k, v in value._asdict().items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, psutil.Process):
        return value.pid
    if hasattr(value, "name") and hasattr(value, "value"):   # enums (socket family, ...)
        return value.name
    return value


def psutil_error(e, pid, what):
    """The message of `nil, message` for a psutil refusal."""
    if isinstance(e, psutil.ZombieProcess):
        return "process %d is a zombie: its %s is gone" % (pid, what)
    if isinstance(e, psutil.NoSuchProcess):
        return "no such process: %d" % pid
    if isinstance(e, psutil.AccessDenied):
        name = _name_or_none(pid)
        return "access denied: %s of process %d%s" % (what, pid, " (%s)" % name if name else "")
    return "%s of process %d: %s" % (what, pid, e)


def _name_or_none(pid):
    try:
        return psutil.Process(pid).name()
    except psutil.Error:
        return None


def check_pid(argno, pid):
    if pid != int(pid) or pid <= 0:
        raise ArgError(argno, "pid must be a positive integer")
    return int(pid)


def check_fields(argno, fields):
    if fields is None or fields == {}:
        return list(BASIC_FIELDS)
    if not isinstance(fields, list):
        raise ArgError(argno, "table expected, got %s" % lua_type(fields))
    for f in fields:
        if f not in PROC_FIELDS:
            raise ArgError(argno, "unknown field '%s'" % f)
    return list(fields)


def read_field(p, field):
    if field == "pid":
        return p.pid
    if field == "connections":
        return (getattr(p, "net_connections", None) or p.connections)()
    if field == "cpu_percent":
        return p.cpu_percent(interval=None)
    return getattr(p, field)()


@saker_api("proc", "integer", "table?")
def saker_proc(pid, fields=None):
    """saker.proc(pid [, fields]) -> table | nil, message."""
    pid = check_pid(1, pid)
    fields = check_fields(2, fields)
    if any(f in PRIVILEGED_FIELDS for f in fields):
        refused = exec_refused("proc")
        if refused:
            return None, refused
    try:
        p = psutil.Process(pid)
        out = {}
        with p.oneshot():
            for field in fields:
                try:
                    out[field] = plain(read_field(p, field))
                except psutil.Error as e:
                    return None, psutil_error(e, pid, field)
        return out
    except psutil.Error as e:
        return None, psutil_error(e, pid, "process")


def _matches(info, flt):
    if "name" in flt and info.get("name") != flt["name"]:
        return False
    if "user" in flt and info.get("username") != flt["user"]:
        return False
    if "ppid" in flt and info.get("ppid") != flt["ppid"]:
        return False
    if "cmdline" in flt and flt["cmdline"] not in " ".join(info.get("cmdline") or []):
        return False
    return True


def check_filter(argno, flt):
    if flt is None or flt == {} or flt == []:
        return {}
    if isinstance(flt, str):
        return {"name": flt}
    if not isinstance(flt, dict):
        raise ArgError(argno, "string or table expected, got %s" % lua_type(flt))
    for k, v in flt.items():
        if k in ("name", "user", "cmdline"):
            if not isinstance(v, str):
                raise ArgError(argno, "field '%s': string expected, got %s" % (k, lua_type(v)))
        elif k == "ppid":
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise ArgError(argno, "field 'ppid': number expected, got %s" % lua_type(v))
        else:
            raise ArgError(argno, "unknown filter '%s'" % k)
    return flt


@saker_api("procs", "string|table?")
def saker_procs(flt=None):
    """saker.procs([filter]) -> list of {pid, ppid, name, username, status, create_time, cmdline}.

    filter: a process name, or {name=, user=, ppid=, cmdline= (substring)}.
    Fields the OS refuses are nil; processes that vanish are skipped.
    """
    flt = check_filter(1, flt)
    out = []
    for p in psutil.process_iter(LIST_FIELDS, ad_value=None):
        info = p.info
        if _matches(info, flt):
            out.append({k: plain(v) for k, v in info.items() if v is not None})
    return out


LIBRARY_RE = re.compile(r"\.so(\.[0-9.]+)?$")


@saker_api("modules", "integer")
def saker_modules(pid):
    """saker.modules(pid) -> sorted list of loaded shared libraries | nil, message."""
    pid = check_pid(1, pid)
    refused = exec_refused("modules")
    if refused:
        return None, refused
    try:
        maps = psutil.Process(pid).memory_maps(grouped=True)
    except psutil.Error as e:
        return None, psutil_error(e, pid, "modules")
    return sorted({m.path for m in maps if m.path.startswith("/") and LIBRARY_RE.search(m.path)})


@saker_api("kill", "integer", "string|integer?")
def saker_kill(pid, sig=None):
    """saker.kill(pid [, signal]) -> true | nil, message; "HUP", "SIGHUP", 1; 0 checks only."""
    pid = check_pid(1, pid)
    signum = signal.SIGTERM if sig is None else parse_signal(sig, allow_zero=True)
    if signum is None:
        raise ArgError(2, "invalid signal '%s'" % sig)
    refused = exec_refused("kill") if signum else None
    if refused:
        return None, refused
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        return None, "no such process: %d" % pid
    except PermissionError:
        return None, "not permitted to signal process %d" % pid
    except OSError as e:
        return None, "can't signal process %d: %s" % (pid, e.strerror)
    return True


@saker_api("pidof", "string")
def saker_pidof(path):
    """saker.pidof(pidfile) -> pid | nil, message (stale and reused pids are refused)."""
    if not path:
        raise ArgError(1, "empty path")
    pid, err = check_pidfile(path)
    if pid is None:
        return None, err
    return pid


def partitions():
    out = []
    for part in psutil.disk_partitions(all=False):
        try:
            usage = psutil.disk_usage(part.mountpoint)
        except OSError:
            continue
        out.append((part, usage))
    return out


@saker_api("sysinfo")
def saker_sysinfo():
    """saker.sysinfo() -> {hostname, boot_time, cpu, load, memory, swap, disks, network}."""
    load = os.getloadavg()
    vm = psutil.virtual_memory()
    sw = psutil.swap_memory()
    net = psutil.net_io_counters()
    return {
        "hostname": os.uname().nodename,
        "boot_time": psutil.boot_time(),
        "cpu": {"count": psutil.cpu_count() or 0, "percent": psutil.cpu_percent(interval=None)},
        "load": [load[0], load[1], load[2]],
        "memory": plain(vm),
        "swap": plain(sw),
        "disks": [dict(mountpoint=p.mountpoint, device=p.device, fstype=p.fstype,
                       total=u.total, used=u.used, free=u.free, percent=u.percent)
                  for p, u in partitions()],
        "network": plain(net) if net is not None else {},
    }


def section_host():
    load = os.getloadavg()
    vm = psutil.virtual_memory()
    sw = psutil.swap_memory()
    rows = [
        ("load1", "%.2f" % load[0]), ("load5", "%.2f" % load[1]), ("load15", "%.2f" % load[2]),
        ("cpu_count", psutil.cpu_count() or 0),
        ("cpu_percent", "%.1f" % psutil.cpu_percent(interval=None)),
        ("mem_total", vm.total), ("mem_available", vm.available), ("mem_used", vm.used),
        ("mem_percent", "%.1f" % vm.percent),
        ("swap_total", sw.total), ("swap_used", sw.used), ("swap_percent", "%.1f" % sw.percent),
    ]
    net = psutil.net_io_counters()
    if net is not None:
        rows += [("net_bytes_sent", net.bytes_sent), ("net_bytes_recv", net.bytes_recv),
                 ("net_packets_sent", net.packets_sent), ("net_packets_recv", net.packets_recv),
                 ("net_errin", net.errin), ("net_errout", net.errout),
                 ("net_dropin", net.dropin), ("net_dropout", net.dropout)]
    rows.append(("boot_time", int(psutil.boot_time())))
    for part, usage in partitions():
        rows.append("disk_%s:total=%d,used=%d,free=%d,percent=%.1f" % (
            _mount_label(part.mountpoint), usage.total, usage.used, usage.free, usage.percent))
    return rows


def _mount_label(mountpoint):
    """'/' -> 'root', '/var/lib' -> 'var_lib': a name that fits an INFO field."""
    label = re.sub(r"[^A-Za-z0-9]+", "_", mountpoint).strip("_")
    return label or "root"


def init(srv):
    """INFO host (not in the default set: it reads /proc and statfs each time)."""
    from .info import register_section
    psutil.cpu_percent(interval=None)
    register_section("host", "Host", section_host, default=False)
