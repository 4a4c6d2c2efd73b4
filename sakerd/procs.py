"""Processes: saker.exec, reaping, supervision (saker.supervise), PROC, INFO processes.

Some facts about Unix processes that shaped this module:

- SIGCHLD is not queued. Two children exiting close together may raise it
  once, so the reaper calls waitpid(-1, WNOHANG) until it returns 0 (children
  left, none exited) or ECHILD (no children at all), and records every status
  it collects in a bounded table that exec and supervision consult.
- waitpid(-1) reaps every child, so the reaper must be the only code that
  waits on our children. Children are started with subprocess.Popen, whose
  C launcher (vfork + exec, close_fds, setsid, chdir, restore_signals,
  exec errors raised in the parent) is several times faster than a fork of
  this process; but a Popen object waits on its pid from poll(), wait() and
  __del__ (and subprocess._cleanup() polls the ones __del__ parked), which
  would race the reaper and could even take the status of a later child
  that reused the pid. So spawn() keeps each Popen until the reaper has
  collected its pid and then sets its returncode: a Popen whose returncode
  is set never calls waitpid again. Nothing else in sakerd may call
  poll()/wait() on a child, nor run subprocess.run() while this module reaps.
- The child calls setsid() (start_new_session): it leads its own session
  and process group (pgid == pid), so killpg() reaches it and what it
  forked, and signals meant for sakerd's terminal or group do not.
- A disposition of SIG_IGN survives execve; sakerd ignores SIGPIPE, and
  Popen's restore_signals puts SIGPIPE back to SIG_DFL in the child. On its
  vfork path (ours: no preexec_fn, no user change) the launcher blocks all
  signals until the child has reset its handlers, so one sent to the child
  early (PROC STOP right after a start) stays pending until then and takes
  its default action.
- A program that daemonizes forks and lets its parent exit; the orphan is
  reparented to the nearest ancestor marked PR_SET_CHILD_SUBREAPER (Linux
  3.4+), else to init. sakerd marks itself at start, so those grandchildren
  become its children: it reaps them and supervision sees them exit.
- saker.exec returns to Lua synchronously, yet must not stall the server for
  wait_ms. It runs a bounded nested loop (wait_serving_clients): wait on the
  event loop's epoll descriptor (readable when any watched fd is ready, the
  signal wake-up socket included, so SIGCHLD ends the wait at once), then
  process file events without sleeping and flush pending replies. The
  caller's own socket is unwatched meanwhile, so its pipelined commands do
  not run in the middle of its current one; time events (cron, tasks,
  supervision timers) wait until the outer loop runs again.
"""

import collections
import ctypes
import os
import random
import re
import signal
import subprocess
import sys
import time

from . import ae
from . import healthcheck
from . import safefile
from .proc_output import OutputFileError, ProgramOutput, tail_lines
from .proc_usage import SAMPLE_MS, Usage, process_groups
from .log import log, LL_DEBUG, LL_VERBOSE, LL_NOTICE, LL_WARNING
from .lua_bridge import ArgError, lua_type, saker_api
from .pidfile import check_pidfile, pidfile_signature, process_start_time, read_proc_stat
from .server_h import server, Command, CMD_ADMIN, CMD_LOADING, CMD_STALE

PR_SET_CHILD_SUBREAPER = 36
RECENT_EXITS_MAX = 4096          # statuses kept for exec and supervision to find
WAIT_SLICE_MS = 10               # how often a waiting exec re-checks its pidfile
SHUTDOWN_STOP_BUDGET_MS = 4000   # sakerd's own SIGTERM must not wait longer for children
EXEC_DISABLED = "exec disabled by configuration (enable-exec no)"


def exec_refused(fname):
    """Why the running Lua code may not start, signal or read the private
    state of processes, or None: `enable-exec no`, or a calling user without
    every @exec right (a script runs with its caller's rights; tasks and
    plugin loading run as admin)."""
    if not server.config.enable_exec:
        return EXEC_DISABLED
    from .acl import SERVER_USER, user_may_exec
    caller = server.lua.client if server.lua is not None else None
    user = caller.user if caller is not None else SERVER_USER
    if not user_may_exec(user):
        return "NOPERM user '%s' has no permissions to run saker.%s (it needs @exec)" % (
            user.name.decode("utf-8", "replace"), fname)
    return None

STOPPED, STARTING, RUNNING, BACKOFF, EXITED, FATAL, STOPPING = (
    "stopped", "starting", "running", "backoff", "exited", "fatal", "stopping")

# ---- statuses and signals ------------------------------------------------------

def signal_name(signum):
    try:
        return signal.Signals(signum).name
    except ValueError:
        return "signal %d" % signum


def parse_signal(value, allow_zero=False):
    """A signal number from 9, "9", "KILL", "SIGKILL" (any case); None if unknown.

    0 (no signal: only check that the process exists) only with allow_zero.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)) or (isinstance(value, str) and value.isdigit()):
        n = int(value)
        if n == 0 and allow_zero:
            return 0
        return n if n in signal.valid_signals() and n > 0 else None
    name = value.upper()
    if not name.startswith("SIG"):
        name = "SIG" + name
    sig = getattr(signal.Signals, name, None) if name.isidentifier() else None
    return int(sig) if sig is not None else None


def describe_status(status):
    """'exited with status 3' or 'killed by signal 9 (SIGKILL)' for a waitpid status."""
    if os.WIFEXITED(status):
        return "exited with status %d" % os.WEXITSTATUS(status)
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        text = "killed by signal %d (%s)" % (sig, signal_name(sig))
        if os.WCOREDUMP(status):
            text += ", core dumped"
        return text
    return "changed state (status 0x%x)" % status


def status_fields(status):
    """Event fields for a waitpid status: exit_status or signal."""
    if status is None:
        return {}
    if os.WIFEXITED(status):
        return {"exit_status": os.WEXITSTATUS(status)}
    if os.WIFSIGNALED(status):
        return {"signal": signal_name(os.WTERMSIG(status))}
    return {}


# ---- reaping ---------------------------------------------------------------------

class Reaper:
    """Collects every child's exit status; the only caller of waitpid."""

    def __init__(self):
        self.exits = collections.OrderedDict()   # pid -> waitpid status, oldest first
        self.children_reaped = 0
        self.listeners = {}                      # pid -> fn(pid, status)
        self.launched = {}                       # pid -> its Popen, until reaped

    def reap_children(self):
        """waitpid(-1, WNOHANG) until nothing is left (SIGCHLD coalesces)."""
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            except InterruptedError:
                continue
            if pid == 0:
                return
            self.record(pid, status)

    def record(self, pid, status):
        self.children_reaped += 1
        child = self.launched.pop(pid, None)
        if child is not None:
            # Set, Popen never waits on this pid again (see the docstring).
            child.returncode = os.waitstatus_to_exitcode(status)
        self.exits[pid] = status
        self.exits.move_to_end(pid)
        while len(self.exits) > RECENT_EXITS_MAX:
            self.exits.popitem(last=False)
        log(LL_VERBOSE, "Child %d %s", pid, describe_status(status))
        listener = self.listeners.pop(pid, None)
        if listener is not None:
            try:
                listener(pid, status)
            except Exception as e:   # a supervision bug must not stop the reaping
                log(LL_WARNING, "Handling the exit of child %d failed: %r", pid, e)

    def take_exit(self, pid):
        """The recorded status of pid, removed from the table; None if not (yet) reaped."""
        return self.exits.pop(pid, None)


reaper = Reaper()


def become_subreaper():
    """prctl(PR_SET_CHILD_SUBREAPER, 1): orphaned descendants are reparented to us."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
            err = ctypes.get_errno()
            log(LL_WARNING, "Can't become a child subreaper: %s", os.strerror(err))
            return False
    except (OSError, AttributeError) as e:
        log(LL_WARNING, "Can't become a child subreaper: %s", e)
        return False
    return True


def child_pids():
    """Our children, zombies included, from /proc/<pid>/task/<tid>/children.

    That file (Linux 3.5+, CONFIG_PROC_CHILDREN) lists each thread's
    children directly; scanning every /proc entry instead costs one read
    per process on the host, which each INFO would pay (about 1 ms per 50
    processes, and a pipelined burst of INFO stalls every other client).
    """
    me = os.getpid()
    try:
        pids = []
        for tid in os.listdir("/proc/%d/task" % me):
            with open("/proc/%d/task/%s/children" % (me, tid), "rb") as f:
                pids.extend(int(p) for p in f.read().split())
        return pids
    except OSError:
        return [int(e) for e in os.listdir("/proc") if e.isdigit()]


def count_zombies():
    """Children of ours in state Z, from /proc (should always be 0 between events)."""
    me = os.getpid()
    n = 0
    for pid in child_pids():
        stat = read_proc_stat(pid)
        if stat is not None and stat[0] == "Z" and stat[1] == me:
            n += 1
    return n


# ---- spawning --------------------------------------------------------------------

class SpawnError(Exception):
    pass


class OwnOutputPath(str):
    """A path that sakerd chose (not the caller): opened as safefile does."""


def default_output_path(stem):
    """Where a child's output goes when the caller names no file.

    A file `<stem>.log` next to sakerd's log file, or /dev/null when sakerd
    logs to stdout (a child writing on our terminal would interleave with us).
    """
    cfg = server.config
    if not cfg.logfile:
        return os.devnull
    logdir = os.path.dirname(os.path.abspath(cfg.written_path("logfile")))
    return OwnOutputPath(os.path.join(logdir, "%s.log" % stem))


def _open_output(path):
    try:
        if isinstance(path, OwnOutputPath):
            # Its name is predictable: a symlink planted there is refused, not followed.
            return safefile.open_append(path)
        return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
    except OSError as e:
        raise SpawnError("can't open %s: %s" % (path, e.strerror))


def spawn(argv, cwd=None, env=None, stdout=os.devnull, stderr=None):
    """Start argv in a new session; its pid, or raises SpawnError.

    stdin is /dev/null; stdout and stderr are appended to the given files
    (stderr defaults to stdout's file); every other descriptor is closed.
    """
    fds = []
    try:
        out_fd = _open_output(stdout)
        fds.append(out_fd)
        err_fd = out_fd if stderr is None or stderr == stdout else _open_output(stderr)
        fds.append(err_fd)
        return launch(argv, cwd, env, out_fd, err_fd)
    finally:
        for fd in set(fds):
            os.close(fd)


def launch(argv, cwd, env, out_fd, err_fd, pass_fds=()):
    """Start argv in a new session on these descriptors (and pass_fds); its pid.

    Raises SpawnError. The caller closes its descriptors.
    """
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    try:
        child = subprocess.Popen(argv, cwd=cwd, env=full_env, stdin=subprocess.DEVNULL,
                                 stdout=out_fd, stderr=err_fd, close_fds=True,
                                 pass_fds=pass_fds, start_new_session=True,
                                 restore_signals=True)
    except OSError as e:
        # Popen has reaped the child whose chdir or exec failed.
        if cwd and e.filename == cwd:
            raise SpawnError("can't change directory to %s: %s" % (cwd, e.strerror))
        raise SpawnError("can't execute %s: %s" % (argv[0], e.strerror or e))
    reaper.launched[child.pid] = child
    return child.pid


# ---- serving clients while exec waits -------------------------------------------------

def wait_serving_clients(done, timeout_ms):
    """Call done() until it is true or timeout_ms pass, serving other clients.

    Returns done()'s last value. See the module docstring for why the
    caller's socket is unwatched during the wait.
    """
    from .networking import handle_clients_with_pending_writes
    el = server.el
    caller = _protect_client(server.current_client)
    try:
        deadline = time.monotonic() + timeout_ms / 1000.0
        while True:
            result = done()
            remaining = deadline - time.monotonic()
            if result or remaining <= 0:
                return result
            _wait_for_events(el, min(remaining * 1000.0, WAIT_SLICE_MS))
            el.process_events(ae.AE_FILE_EVENTS | ae.AE_DONT_WAIT)
            handle_clients_with_pending_writes()
    finally:
        _unprotect_client(caller)


def _wait_for_events(el, ms):
    """Sleep up to ms, waking early when any descriptor of the loop is ready."""
    ep = getattr(el.api, "ep", None)
    if ep is not None:
        ae.wait(ep.fileno(), ae.AE_READABLE, max(1, int(ms)))
    else:
        time.sleep(min(ms, 1.0) / 1000.0)


def _protect_client(c):
    if c is None or c.sock is None or not c.events_installed & ae.AE_READABLE:
        return None
    server.el.delete_file_event(c.fd, ae.AE_READABLE)
    c.events_installed &= ~ae.AE_READABLE
    return c


def _unprotect_client(c):
    from .networking import read_query_from_client, free_client_async
    if c is None or c.sock is None:
        return
    if server.el.create_file_event(c.fd, ae.AE_READABLE, read_query_from_client, c) != ae.AE_OK:
        free_client_async(c)
        return
    c.events_installed |= ae.AE_READABLE


# ---- saker.exec -----------------------------------------------------------------------

def check_argv(argno, cmd):
    """cmd as an argv list: a string runs under /bin/sh -c; a table is argv itself."""
    if isinstance(cmd, str):
        if not cmd.strip():
            raise ArgError(argno, "empty command")
        return ["/bin/sh", "-c", cmd]
    if isinstance(cmd, dict) and not cmd:
        cmd = []
    if not isinstance(cmd, list):
        raise ArgError(argno, "string or table expected, got %s" % lua_type(cmd))
    if not cmd:
        raise ArgError(argno, "empty argv table")
    argv = []
    for i, a in enumerate(cmd, 1):
        if isinstance(a, bool) or not isinstance(a, (str, int, float)):
            raise ArgError(argno, "argv[%d]: string expected, got %s" % (i, lua_type(a)))
        argv.append(a if isinstance(a, str) else _number_text(a))
    return argv


def _number_text(n):
    return str(int(n)) if isinstance(n, float) and n.is_integer() else str(n)


def check_options(argno, opts, spec):
    """opts as a dict after checking every field against spec {name: (kind, default)}."""
    if opts is None or (isinstance(opts, (list, dict)) and not opts):
        opts = {}
    if isinstance(opts, list):
        raise ArgError(argno, "options table expected (name = value), got a list")
    if not isinstance(opts, dict):
        raise ArgError(argno, "table expected, got %s" % lua_type(opts))
    out = {}
    for key in opts:
        if key not in spec:
            raise ArgError(argno, "unknown option '%s'" % key)
    for key, (kind, default) in spec.items():
        value = opts.get(key)
        out[key] = default if value is None else _check_field(argno, key, kind, value)
    return out


def _check_field(argno, key, kind, value):
    if kind == "string":
        if not isinstance(value, str):
            raise ArgError(argno, "field '%s': string expected, got %s" % (key, lua_type(value)))
        return value
    if kind == "boolean":
        if not isinstance(value, bool):
            raise ArgError(argno, "field '%s': boolean expected, got %s" % (key, lua_type(value)))
        return value
    if kind == "duration":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ArgError(argno, "field '%s': number expected, got %s" % (key, lua_type(value)))
        if value < 0:
            raise ArgError(argno, "field '%s': must not be negative" % key)
        return value
    if kind == "count":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
            raise ArgError(argno, "field '%s': integer expected, got %s" % (key, lua_type(value)))
        if value < 0:
            raise ArgError(argno, "field '%s': must not be negative" % key)
        return int(value)
    if kind == "env":
        return _check_env(argno, key, value)
    if kind == "cmd":
        try:
            return check_argv(argno, value)
        except ArgError as e:
            raise ArgError(argno, "field '%s': %s" % (key, e.message))
    if kind == "check":
        return healthcheck.parse_check(argno, value)
    if kind == "size":
        return _check_size(argno, key, value)
    if kind == "bytes":
        return _check_size(argno, key, value, allow_zero=True)
    if kind == "signal":
        sig = parse_signal(value) if isinstance(value, (str, int, float)) else None
        if sig is None:
            raise ArgError(argno, "field '%s': invalid signal '%s'" % (key, value))
        return sig
    raise AssertionError(kind)


def _check_size(argno, key, value, allow_zero=False):
    """A memory size: bytes as a number, or a string like "200mb" (config.parse_memory)."""
    from .config import parse_memory
    least = 0 if allow_zero else 1
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value == int(value) \
            and value >= least:
        return int(value)
    if isinstance(value, str):
        try:
            n = parse_memory(value)
        except ValueError:
            n = -1
        if n >= least:
            return n
    raise ArgError(argno, "field '%s': memory size like \"200mb\" expected, got %s" % (
        key, "'%s'" % value if isinstance(value, str) else lua_type(value)))


def _check_env(argno, key, value):
    if isinstance(value, list) and not value:
        value = {}
    if not isinstance(value, dict):
        raise ArgError(argno, "field '%s': table expected, got %s" % (key, lua_type(value)))
    env = {}
    for k, v in value.items():
        if not isinstance(k, str) or not k or "=" in k:
            raise ArgError(argno, "field '%s': invalid variable name '%s'" % (key, k))
        if isinstance(v, bool) or not isinstance(v, (str, int, float)):
            raise ArgError(argno, "field '%s': value of %s: string expected, got %s"
                           % (key, k, lua_type(v)))
        env[k] = v if isinstance(v, str) else _number_text(v)
    return env


EXEC_OPTIONS = {
    "pidfile": ("string", None), "cwd": ("string", None), "env": ("env", None),
    "stdout": ("string", None), "stderr": ("string", None), "wait_ms": ("duration", 100),
}


def resolve(path, cwd):
    """A path given by Lua, relative to the child's directory when one is set."""
    if path is None or os.path.isabs(path):
        return path
    return os.path.abspath(os.path.join(cwd or os.getcwd(), path))


def command_stem(cmd, argv):
    """A file-name-safe word for a command: its program's base name ("exit 3" -> "exit")."""
    word = cmd.split()[0] if isinstance(cmd, str) else argv[0]
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", os.path.basename(word)).strip("_.")
    return stem or "sh"


def output_text(stdout, stderr):
    if stderr is None or stderr == stdout:
        return "(output: %s)" % stdout
    return "(stdout: %s, stderr: %s)" % (stdout, stderr)


@saker_api("exec", "string|table", "table?")
def saker_exec(cmd, opts=None):
    """saker.exec(cmd [, opts]) -> pid, pidfile | nil, message (SPEC §7.3)."""
    argv = check_argv(1, cmd)
    o = check_options(2, opts, EXEC_OPTIONS)
    refused = exec_refused("exec")
    if refused:
        return None, refused
    cwd = resolve(o["cwd"], None)
    pidfile = resolve(o["pidfile"], cwd)
    stdout = resolve(o["stdout"], cwd) or default_output_path("exec-" + command_stem(cmd, argv))
    stderr = resolve(o["stderr"], cwd)
    before = pidfile_signature(pidfile) if pidfile else None
    try:
        pid = spawn(argv, cwd, o["env"], stdout, stderr)
    except SpawnError as e:
        return None, str(e)
    log(LL_VERBOSE, "exec: started pid %d: %s", pid, " ".join(argv))
    return _wait_for_start(pid, pidfile, before, o["wait_ms"], output_text(stdout, stderr))


def _wait_for_start(pid, pidfile, before, wait_ms, output):
    """exec's answer once the child exited, wrote its pidfile, or wait_ms passed."""
    state = {}

    def settled():
        reaper.reap_children()
        if pid in reaper.exits:
            state["status"] = reaper.take_exit(pid)
            return True
        if pidfile:
            daemon = _fresh_pidfile_pid(pidfile, before)
            if daemon is not None:
                state["daemon"] = daemon
                return True
        return False

    wait_serving_clients(settled, wait_ms)
    if "daemon" in state:
        return state["daemon"], pidfile
    status = state.get("status")
    if status is None:
        return pid, pidfile
    if os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0 and pidfile:
        # The program daemonized: its first process exited 0 and the real
        # one writes the pidfile (maybe a moment later: give it the rest of
        # wait_ms).
        wait_serving_clients(lambda: _fresh_pidfile_pid(pidfile, before) is not None,
                             max(wait_ms, 50))
        daemon = _fresh_pidfile_pid(pidfile, before)
        if daemon is not None:
            return daemon, pidfile
        _, why = check_pidfile(pidfile)
        return None, "%s but its pidfile names no live process (%s) %s" % (
            describe_status(status), why or "pidfile not rewritten", output)
    return None, "%s %s" % (describe_status(status), output)


def _fresh_pidfile_pid(pidfile, before):
    """The pid in pidfile if it was written since `before` and names a live process."""
    sig = pidfile_signature(pidfile)
    if sig is None or sig == before:
        return None
    pid, _ = check_pidfile(pidfile)
    return pid


# ---- supervision -------------------------------------------------------------------------

SUPERVISE_OPTIONS = {
    "name": ("string", None), "cmd": ("cmd", None), "pidfile": ("string", None),
    "cwd": ("string", None), "env": ("env", None), "stdout": ("string", None),
    "stderr": ("string", None), "autorestart": ("boolean", True),
    "startsecs": ("duration", 1), "backoff_ms": ("duration", 500),
    "backoff_max_ms": ("duration", 30000), "max_retries": ("count", 10),
    "stop_signal": ("signal", signal.SIGTERM), "stop_timeout_ms": ("duration", 5000),
    "check": ("check", None), "max_rss": ("size", None), "for_ms": ("duration", 0),
    "stdout_maxbytes": ("bytes", 50 * 1024 * 1024), "stdout_backups": ("count", 10),
    "stderr_maxbytes": ("bytes", 50 * 1024 * 1024), "stderr_backups": ("count", 10),
}

NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


class Program:
    """One supervised program and its state machine (SPEC §7.4).

    stopped --START--> starting --startsecs--> running --exit--> backoff|exited
    starting --exit--> backoff --delay--> starting; more than max_retries
    failed starts in a row --> fatal. STOP from any state --> stopping -->
    stopped, and nothing but START/RESTART leaves stopped.
    """

    def __init__(self, name, opts):
        self.name = name
        self.state = STOPPED
        self.pid = None
        self.pgid = None
        self.started_at = None      # time.time() of the current start
        self.retries = 0            # failed starts in a row
        self.starts = 0
        self.last_exit = None       # waitpid status of the last exit
        self.last_error = ""
        self.timer = None           # the pending ae time event
        self.restart_when_stopped = False
        self.leader_exited = False  # the first process exited 0: waiting for its pidfile
        self.pidfile_before = None
        self.health = None          # its HealthCheck, when it has a `check`
        self.kill_reason = None     # why sakerd itself is killing a running program
        self.ever_healthy = False   # since the current start
        self.usage = Usage()
        self.rss_over_since = None  # monotonic time RSS first exceeded max_rss
        self.output = ProgramOutput(name)
        self.configure(opts)

    def configure(self, opts):
        self.argv = opts["cmd"]
        self.cwd = resolve(opts["cwd"], None)
        self.pidfile = resolve(opts["pidfile"], self.cwd)
        self.env = opts["env"]
        self.stdout = resolve(opts["stdout"], self.cwd) or default_output_path("proc-" + self.name)
        self.stderr = resolve(opts["stderr"], self.cwd)
        self.rotation = {"stdout": (opts["stdout_maxbytes"], opts["stdout_backups"]),
                         "stderr": (opts["stderr_maxbytes"], opts["stderr_backups"])}
        self.output.configure(self.stdout, self.stderr, self.rotation["stdout"],
                              self.rotation["stderr"])
        self.autorestart = opts["autorestart"]
        self.startsecs = opts["startsecs"]
        self.backoff_ms = opts["backoff_ms"]
        self.backoff_max_ms = max(opts["backoff_max_ms"], opts["backoff_ms"])
        self.max_retries = opts["max_retries"]
        self.stop_signal = opts["stop_signal"]
        self.stop_timeout_ms = opts["stop_timeout_ms"]
        self.max_rss = opts["max_rss"]
        self.for_ms = opts["for_ms"]
        self.configure_check(opts["check"])

    def configure_check(self, spec):
        """A changed check (a plugin reload) replaces the old one, running at once if we run."""
        if self.health is not None and self.health.spec == spec:
            return
        if self.health is not None:
            self.health.stop()
        self.health = healthcheck.HealthCheck(self, spec) if spec else None
        if self.health is not None and self.state == RUNNING and not self.kill_reason:
            self.health.start()

    # -- transitions --------------------------------------------------------------

    def set_state(self, to, **fields):
        frm, self.state = self.state, to
        extra = "".join(" %s=%s" % kv for kv in fields.items())
        log(LL_NOTICE, "Process %s: %s -> %s%s%s", self.name, frm, to,
            " (pid %d)" % self.pid if self.pid else "", extra)
        server.emit_event("process_state", name=self.name, from_state=frm, to_state=to,
                          pid=self.pid, **fields)
        if to in (STOPPED, BACKOFF, EXITED, FATAL):
            self.usage.stopped()
        if self.health is not None and (frm == RUNNING) != (to == RUNNING):
            if to == RUNNING:
                self.health.start()
            else:
                self.health.stop()

    def start(self):
        """START: from stopped, exited, fatal or backoff; False if already up."""
        if self.state in (STARTING, RUNNING, STOPPING):
            return False
        self.cancel_timer()
        self.retries = 0
        self.restart_when_stopped = False
        self.spawn()
        return True

    def spawn(self):
        self.timer = None
        if not server.config.enable_exec:
            self.last_error = EXEC_DISABLED
            self.pid = None
            self.set_state(FATAL, reason=EXEC_DISABLED)
            return
        self.leader_exited = False
        self.kill_reason = None
        self.ever_healthy = False
        self.usage.reset()
        self.rss_over_since = None
        self.pidfile_before = pidfile_signature(self.pidfile) if self.pidfile else None
        env = dict(self.env or {})
        env[SUPERVISED_ENV] = supervision_tag(self.name)
        try:
            pid = self.launch(env)
        except SpawnError as e:
            self.pid = None
            self.last_error = str(e)
            self.start_failed(reason=str(e))
            return
        self.pid = self.pgid = pid
        self.starts += 1
        self.started_at = time.time()
        reaper.listeners[pid] = self.on_exit
        self.set_state(STARTING)
        if self.startsecs <= 0 and not self.pidfile:
            self.became_running()
        else:
            self.timer = server.el.create_time_event(self.startsecs * 1000, self._startsecs_passed)

    def launch(self, env):
        """Start the program on pipes that sakerd reads (proc_output.py); its pid."""
        try:
            out_w, err_w, reads = self.output.prepare()
        except OutputFileError as e:
            raise SpawnError(str(e))
        except OSError as e:
            raise SpawnError("can't make pipes for its output: %s" % e.strerror)
        try:
            pid = launch(self.argv, self.cwd, env, out_w, err_w, pass_fds=reads)
        except SpawnError:
            self.output.abandon(out_w, err_w, reads)
            raise
        self.output.started(out_w, err_w, reads)
        return pid

    def _startsecs_passed(self, el, id, data):
        self.timer = None
        if self.state != STARTING:
            return ae.AE_NOMORE
        if not self.leader_exited:
            self.became_running()
            return ae.AE_NOMORE
        daemon = _fresh_pidfile_pid(self.pidfile, self.pidfile_before)
        if daemon is None:
            _, why = check_pidfile(self.pidfile)
            self.last_error = "exited with status 0 but its pidfile names no live process (%s)" % (
                why or "pidfile not rewritten")
            self.start_failed(reason=self.last_error)
            return ae.AE_NOMORE
        self.adopt(daemon)
        self.became_running()
        return ae.AE_NOMORE

    def adopt(self, pid):
        """Follow the daemon that the started program left behind."""
        self.pid = pid
        try:
            pgid = os.getpgid(pid)
        except OSError:
            pgid = None
        # Never signal our own group by way of a daemon that stayed in it.
        self.pgid = pgid if pgid != os.getpgrp() else None
        self.leader_exited = False
        # check_pidfile just saw it alive: a status recorded under this pid
        # belongs to an earlier process that had the same number.
        reaper.take_exit(pid)
        reaper.listeners[pid] = self.on_exit

    def adopt_survivor(self, pid):
        """Take over an instance left running by an earlier sakerd (find_survivor)."""
        self.adopt(pid)
        self.started_at = process_start_time(pid) or time.time()
        log(LL_NOTICE, "Process %s: adopting pid %d, left running by an earlier sakerd",
            self.name, pid)
        self.output.adopt(pid)
        self.became_running()

    def became_running(self):
        # With a health check, a start succeeds when the program is first
        # healthy (health_changed): one that never is ends fatal.
        if self.health is None:
            self.retries = 0
        self.set_state(RUNNING)

    def health_changed(self, health, reason):
        """The HealthCheck's verdict changed: count a success, or act on a failure."""
        if health == healthcheck.HEALTHY:
            self.ever_healthy = True
            self.retries = 0
        elif self.health.spec["action"] == "restart" and self.state == RUNNING:
            self.kill_for("unhealthy: %s" % reason)

    def kill_for(self, reason):
        """Stop a running program that sakerd judged broken; on_exit restarts it
        through the backoff (a failed start if it was never healthy)."""
        if self.kill_reason or not self.pid or self.leader_exited:
            return
        self.kill_reason = reason
        if self.health is not None:
            self.health.stop()
        log(LL_WARNING, "Process %s (pid %d): restarting, %s", self.name, self.pid, reason)
        self.signal_group(self.stop_signal)
        self.cancel_timer()
        self.timer = server.el.create_time_event(self.stop_timeout_ms, self._kill_timed_out)

    def _kill_timed_out(self, el, id, data):
        self.timer = None
        if self.state == RUNNING and self.kill_reason:
            self.signal_group(signal.SIGKILL)
        return ae.AE_NOMORE

    def restart_killed(self, status):
        """The program that kill_for stopped has exited: back off and start again."""
        self.cancel_timer()
        if self.pgid:
            try:
                os.killpg(self.pgid, signal.SIGKILL)   # what it left in its group
            except OSError:
                pass
        reason, self.kill_reason = self.kill_reason, None
        self.last_error = reason
        if self.ever_healthy or self.health is None:
            self.retries = 0
        self.start_failed(status, reason=reason)

    def start_failed(self, status=None, reason=None):
        """The start did not last startsecs: back off, or give up after max_retries."""
        self.retries += 1
        fields = status_fields(status)
        if reason:
            fields["reason"] = reason
        if self.retries > self.max_retries:
            self.pid = None
            self.retries = self.max_retries     # the retries made, all failed
            self.set_state(FATAL, retries=self.retries, **fields)
            return
        self.schedule_backoff(fields)

    def schedule_backoff(self, fields):
        delay = self.backoff_delay_ms()
        self.pid = None
        self.set_state(BACKOFF, delay_ms=delay, retries=self.retries, **fields)
        self.timer = server.el.create_time_event(delay, self._backoff_passed)

    def backoff_delay_ms(self):
        """backoff_ms * 2^(retries-1), times a jitter factor in [1, 1.25), capped.

        Upward jitter keeps successive delays strictly growing (until the cap)
        while spreading restarts of programs that failed together.
        """
        base = self.backoff_ms * (2 ** min(self.retries - 1, 40))
        return int(min(self.backoff_max_ms, base * (1.0 + random.random() * 0.25)))

    def _backoff_passed(self, el, id, data):
        self.timer = None
        if self.state == BACKOFF:
            self.spawn()
        return ae.AE_NOMORE

    def on_exit(self, pid, status):
        """The reaper collected our process."""
        if pid != self.pid:
            return
        if self.state == STARTING and self.pidfile and not self.leader_exited \
                and os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0:
            self.leader_exited = True      # daemonized: the pidfile tells the rest
            return
        self.last_exit = status
        if self.state == STOPPING:
            self.finish_stop(status)
        elif self.state == STARTING:
            self.cancel_timer()
            self.last_error = describe_status(status)
            self.start_failed(status)
        elif self.state == RUNNING and self.kill_reason:
            self.restart_killed(status)
        elif self.state == RUNNING:
            self.last_error = describe_status(status)
            if self.autorestart:
                self.retries = 1
                self.schedule_backoff(status_fields(status))
            else:
                self.pid = None
                self.set_state(EXITED, **status_fields(status))

    def stop(self):
        """STOP: a manual stop, never undone by autorestart."""
        self.restart_when_stopped = False
        self.kill_reason = None
        if self.state == STARTING and self.leader_exited:
            # Between the daemonizing parent's exit and startsecs: stop the
            # daemon if its pidfile already names it.
            daemon = _fresh_pidfile_pid(self.pidfile, self.pidfile_before)
            if daemon is not None:
                self.adopt(daemon)
        if self.state in (STARTING, RUNNING) and self.pid and not self.leader_exited:
            self.cancel_timer()
            self.set_state(STOPPING)
            self.signal_group(self.stop_signal)
            self.timer = server.el.create_time_event(self.stop_timeout_ms, self._stop_timed_out)
        elif self.state != STOPPING:
            self.cancel_timer()
            self.pid = None
            if self.state != STOPPED:
                self.set_state(STOPPED)

    def restart(self):
        if self.state in (STARTING, RUNNING, STOPPING) and not self.leader_exited:
            self.stop()
            self.restart_when_stopped = True
        else:
            self.stop()
            self.start()

    def _stop_timed_out(self, el, id, data):
        self.timer = None
        if self.state == STOPPING:
            log(LL_WARNING, "Process %s (pid %d) did not stop within %d ms: sending SIGKILL",
                self.name, self.pid, self.stop_timeout_ms)
            self.signal_group(signal.SIGKILL)
        return ae.AE_NOMORE

    def finish_stop(self, status):
        self.cancel_timer()
        # What the leader left behind in its group is stopped with it.
        if self.pgid:
            try:
                os.killpg(self.pgid, signal.SIGKILL)
            except OSError:
                pass
        self.set_state(STOPPED, **status_fields(status))
        self.pid = None
        if self.restart_when_stopped:
            self.restart_when_stopped = False
            self.start()

    def signal_group(self, sig):
        try:
            if self.pgid:
                os.killpg(self.pgid, sig)
            else:
                os.kill(self.pid, sig)
        except ProcessLookupError:
            pass
        except OSError as e:
            log(LL_WARNING, "Can't signal process %s (pid %s): %s", self.name, self.pid, e.strerror)

    def cancel_timer(self):
        if self.timer is not None:
            server.el.delete_time_event(self.timer)
            self.timer = None

    def check_alive(self):
        """Cron: notice the end of a daemon that is not our child (we never reap it)."""
        if self.pid and self.state in (RUNNING, STOPPING) and self.pid in reaper.listeners:
            stat = read_proc_stat(self.pid)
            if stat is None or (stat[0] in ("Z", "X") and stat[1] != os.getpid()):
                reaper.listeners.pop(self.pid, None)
                self.on_exit(self.pid, 0)

    # -- resources --------------------------------------------------------------------

    def sampled(self, pids, now):
        """A new resource sample; restart a program that stayed above max_rss for for_ms."""
        self.usage.sample(pids, now)
        if not self.max_rss or self.usage.rss <= self.max_rss or self.state != RUNNING:
            self.rss_over_since = None
            return
        if self.rss_over_since is None:
            self.rss_over_since = now
        if (now - self.rss_over_since) * 1000.0 >= self.for_ms:
            self.kill_for("rss %d bytes above max_rss %d for %d ms" % (
                self.usage.rss, self.max_rss, int((now - self.rss_over_since) * 1000)))

    def usage_pairs(self):
        pairs = [("cpu_percent", "%.1f" % self.usage.cpu_percent), ("rss", self.usage.rss),
                 ("cpu_seconds", "%.2f" % self.usage.cpu_seconds)]
        if self.max_rss:
            pairs += [("max_rss", self.max_rss), ("for_ms", self.for_ms)]
        return pairs

    # -- reports ------------------------------------------------------------------------

    def uptime(self):
        if self.state in (RUNNING, STOPPING) and self.started_at:
            return int(time.time() - self.started_at)
        return 0

    def last_exit_text(self):
        """The last exit as its status number or its signal's name; '-' before any."""
        if self.last_exit is None:
            return "-"
        f = status_fields(self.last_exit)
        return str(f["exit_status"]) if "exit_status" in f else f.get("signal", "?")

    def status_pairs(self):
        return [
            ("name", self.name), ("state", self.state), ("pid", self.pid or 0),
            ("uptime", self.uptime()), ("starts", self.starts), ("retries", self.retries),
            ("last_exit", self.last_exit_text()), ("last_error", self.last_error),
            ("cmd", " ".join(self.argv)), ("pidfile", self.pidfile or ""),
            ("cwd", self.cwd or ""), ("stdout", self.stdout), ("stderr", self.stderr or self.stdout),
            ("stdout_maxbytes", self.rotation["stdout"][0]),
            ("stdout_backups", self.rotation["stdout"][1]),
            ("stderr_maxbytes", self.rotation["stderr"][0]),
            ("stderr_backups", self.rotation["stderr"][1]),
        ] + self.output.status_pairs() + [
            ("autorestart", "yes" if self.autorestart else "no"), ("startsecs", self.startsecs),
            ("backoff_ms", self.backoff_ms), ("backoff_max_ms", self.backoff_max_ms),
            ("max_retries", self.max_retries), ("stop_signal", signal_name(self.stop_signal)),
            ("stop_timeout_ms", self.stop_timeout_ms),
        ] + self.usage_pairs() + (self.health.status_pairs() if self.health is not None else [])

    def list_line(self):
        return "name=%s state=%s pid=%d uptime=%d starts=%d retries=%d last_exit=%s cmd=%s" % (
            self.name, self.state, self.pid or 0, self.uptime(), self.starts, self.retries,
            self.last_exit_text(), " ".join(self.argv))

    def info_line(self):
        line = "proc_%s:state=%s,pid=%d,uptime=%d,starts=%d,retries=%d,last_exit=%s," \
            "cpu_percent=%.1f,rss=%d" % (
                self.name, self.state, self.pid or 0, self.uptime(), self.starts, self.retries,
                self.last_exit_text(), self.usage.cpu_percent, self.usage.rss)
        if self.health is not None:
            line += ",health=%s" % self.health.health
        return line


class Supervisor:
    """The supervised programs by name, in the order they were added."""

    def __init__(self):
        self.programs = {}
        self.staged = None      # a list while a config reload loads plugins
        self.last_sample = 0.0

    def get(self, name):
        return self.programs.get(name)

    def cron(self):
        for p in list(self.programs.values()):
            p.check_alive()
        now = time.monotonic()
        if (now - self.last_sample) * 1000.0 >= SAMPLE_MS:
            self.last_sample = now
            self.sample_usage(now)

    def sample_usage(self, now):
        """Resource usage of every running program, its whole process group summed."""
        live = [p for p in self.programs.values() if p.state in (STARTING, RUNNING) and p.pid]
        groups = process_groups({p.pgid for p in live if p.pgid})
        for p in live:
            p.sampled(groups.get(p.pgid) or [p.pid], now)

    def stop_all_for_shutdown(self):
        """sakerd is exiting: stop our programs, waiting a bounded time."""
        live = [p for p in self.programs.values() if p.state in (STARTING, RUNNING, STOPPING)]
        if not live:
            self.drain_output()
            return
        log(LL_NOTICE, "Stopping %d supervised process%s", len(live), "" if len(live) == 1 else "es")
        for p in live:
            if p.state != STOPPING:
                p.stop()
        budget = min(SHUTDOWN_STOP_BUDGET_MS, max(p.stop_timeout_ms for p in live))
        self.wait_for_stops(live, budget, 0.01)
        for p in live:
            if p.state == STOPPING:
                log(LL_WARNING, "Process %s still running at shutdown: sending SIGKILL", p.name)
                p.signal_group(signal.SIGKILL)
        self.wait_for_stops(live, 1000, 0.005)
        # Their last words: what the pipes still hold goes to the files and streams.
        self.drain_output()

    def wait_for_stops(self, live, budget_ms, step):
        """Reap and read output until no program of live is stopping, or budget_ms pass."""
        deadline = time.monotonic() + budget_ms / 1000.0
        while time.monotonic() < deadline and any(p.state == STOPPING for p in live):
            reaper.reap_children()
            self.cron()     # adopted programs are not our children: watch /proc
            self.drain_output()   # a program blocked on a full pipe could not exit
            time.sleep(step)

    def drain_output(self):
        for p in self.programs.values():
            p.output.drain_available()


supervisor = Supervisor()


@saker_api("supervise", "table")
def saker_supervise(spec):
    """saker.supervise{name=, cmd=, ...} -> true | nil, message; starts it at once."""
    o = check_options(1, spec, SUPERVISE_OPTIONS)
    if o["name"] is None:
        raise ArgError(1, "field 'name': string expected, got nil")
    if not NAME_RE.match(o["name"]):
        raise ArgError(1, "field 'name': only letters, digits, '_', '.', '-' (1 to 64)")
    if o["cmd"] is None:
        raise ArgError(1, "field 'cmd': string or table expected, got nil")
    refused = exec_refused("supervise")
    if refused:
        return None, refused
    name = o["name"]
    prog = supervisor.get(name)
    if prog is not None:
        # Supervising a known name again (a plugin reload) updates its
        # settings for the next start; its state, and a manual STOP, stay.
        # During a config reload the new settings wait until the plugin
        # has loaded, and a changed command restarts it (reload.py).
        if supervisor.staged is not None:
            supervisor.staged.append((server.lua.owner, prog, o))
        else:
            prog.configure(o)
        return True
    prog = Program(name, o)
    supervisor.programs[name] = prog
    survivor = find_survivor(prog)
    if survivor is not None:
        prog.adopt_survivor(survivor)
    else:
        prog.start()
    return True


# ---- adoption after a crash ------------------------------------------------------------------
#
# Supervised programs lead their own sessions, so a kill -9 of sakerd leaves
# them running, reparented to init (or to an outer subreaper). When sakerd
# starts again on the same config and a plugin supervises the same name,
# starting another copy would duplicate it. The survivor is found by the
# program's pidfile (identity as check_pidfile defines it), else by the
# marker spawn() put in its environment: /proc/<pid>/environ holds the
# environment a process was started with, readable only for our own
# processes. The marker names the program and this sakerd instance (config
# file and port), so another instance's programs are never taken. An
# adopted program is not our child: the supervisor cron notices its end
# through /proc (Program.check_alive), and autorestart then applies.

SUPERVISED_ENV = "SAKERD_SUPERVISED"


def supervision_tag(name):
    cfg = server.config
    return "%s@%s:%d" % (name, cfg.config_file or "-", cfg.port)


def find_survivor(prog):
    """The pid of a live instance of prog started by an earlier sakerd, or None."""
    if prog.pidfile:
        pid, _ = check_pidfile(prog.pidfile)
        if pid is not None:
            return pid
    marker = ("%s=%s" % (SUPERVISED_ENV, supervision_tag(prog.name))).encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        pid = int(entry)
        try:
            with open("/proc/%d/environ" % pid, "rb") as f:
                if marker not in f.read().split(b"\0"):
                    continue
            stat = read_proc_stat(pid)
            if stat is not None and stat[0] not in ("Z", "X"):
                found.append((os.getsid(pid) != pid, pid))
        except OSError:
            continue
    # The one sakerd started leads its session; what it forked inherits the marker.
    return min(found)[1] if found else None


# ---- PROC ------------------------------------------------------------------------------------

def _program_or_error(c):
    name = c.argv[2].decode("utf-8", "surrogateescape")
    prog = supervisor.get(name)
    if prog is None:
        c.add_reply_error("no supervised process named '%s'" % name)
    return prog


def proc_list_command(c):
    c.add_reply_bulks([p.list_line().encode("utf-8", "surrogateescape")
                       for p in supervisor.programs.values()])


def proc_status_command(c):
    prog = _program_or_error(c)
    if prog is None:
        return
    pairs = prog.status_pairs()
    c.add_reply_map_len(len(pairs))
    for k, v in pairs:
        c.add_reply_bulk(k.encode())
        c.add_reply_bulk(str(v).encode("utf-8", "surrogateescape"))


def proc_start_command(c):
    prog = _program_or_error(c)
    if prog is None:
        return
    if not prog.start():
        c.add_reply_error("process '%s' is already %s" % (prog.name, prog.state))
        return
    c.add_reply(b"+OK\r\n")


def proc_stop_command(c):
    prog = _program_or_error(c)
    if prog is not None:
        prog.stop()
        c.add_reply(b"+OK\r\n")


def proc_restart_command(c):
    prog = _program_or_error(c)
    if prog is not None:
        prog.restart()
        c.add_reply(b"+OK\r\n")


def proc_signal_command(c):
    prog = _program_or_error(c)
    if prog is None:
        return
    sig = parse_signal(c.argv[3].decode("latin-1"))
    if sig is None:
        c.add_reply_error("invalid signal '%s'" % c.argv[3].decode("utf-8", "replace"))
        return
    if not server.config.enable_exec:
        c.add_reply_error(EXEC_DISABLED)
        return
    if prog.state not in (STARTING, RUNNING, STOPPING) or not prog.pid:
        c.add_reply_error("process '%s' is not running" % prog.name)
        return
    try:
        os.kill(prog.pid, sig)
    except OSError as e:
        c.add_reply_error("can't signal process '%s' (pid %d): %s" % (prog.name, prog.pid, e.strerror))
        return
    c.add_reply(b"+OK\r\n")


TAIL_DEFAULT = 20


def proc_tail_command(c):
    """PROC TAIL <name> [n]: the last n lines (stdout and stderr as they came), oldest first."""
    prog = _program_or_error(c)
    if prog is None:
        return
    n = TAIL_DEFAULT
    if len(c.argv) > 4:
        c.add_reply_error("syntax error")
        return
    if len(c.argv) == 4:
        from .t_list import get_long_at_least_or_reply
        n = get_long_at_least_or_reply(c, c.argv[3], 0, "value is out of range, must be positive")
        if n is None:
            return
    c.add_reply_bulks(tail_lines(prog.output, n))


def proc_help_command(c):
    c.add_reply_help("PROC", [
        "LIST",
        "    One line per supervised process: name= state= pid= uptime= starts= retries=",
        "    last_exit= cmd= (cmd is the rest of the line).",
        "STATUS <name>",
        "    Every field of one supervised process.",
        "START <name>",
        "    Start a stopped, exited or fatal process (resets its retries).",
        "STOP <name>",
        "    Send its stop signal to the process group, SIGKILL after stop_timeout_ms.",
        "    A stopped process stays stopped until START or RESTART.",
        "RESTART <name>",
        "    STOP, then START once it has stopped.",
        "SIGNAL <name> <signal>",
        "    Send a signal (name like HUP or number) to the process.",
        "TAIL <name> [<count>]",
        "    The last <count> lines (default 20) the process wrote, stdout and stderr",
        "    as they came, oldest first (the stream saker:proc:<name> tells them apart)."])


def proc_command(c):
    c.add_reply_error("wrong number of arguments for 'proc' command")


def _proc_commands():
    # Not NOSCRIPT: a plugin task may restart what its health check found broken.
    flags = CMD_ADMIN | CMD_LOADING | CMD_STALE
    container = Command("proc", proc_command, -2, flags, group="processes",
                        summary="Supervised processes")
    # @exec: the subcommands that start, stop or signal processes (acl.py).
    for name, fn, arity, acl, summary in (
            ("list", proc_list_command, 2, "", "List supervised processes"),
            ("status", proc_status_command, 3, "", "Show every field of a supervised process"),
            ("start", proc_start_command, 3, "exec", "Start a supervised process"),
            ("stop", proc_stop_command, 3, "exec", "Stop a supervised process"),
            ("restart", proc_restart_command, 3, "exec", "Restart a supervised process"),
            ("signal", proc_signal_command, 4, "exec", "Send a signal to a supervised process"),
            ("tail", proc_tail_command, -3, "", "Show the last lines a supervised process wrote"),
            ("help", proc_help_command, 2, "", "Show helpful text about the different subcommands")):
        container.add_subcommand(Command(name, fn, arity, flags, group="processes",
                                         summary=summary, acl=acl))
    return container


COMMANDS = [_proc_commands()]


# ---- INFO processes and start-up -----------------------------------------------------------

def section_processes():
    progs = list(supervisor.programs.values())
    rows = [
        ("supervised", len(progs)),
        ("running", sum(1 for p in progs if p.state == RUNNING)),
        ("backoff", sum(1 for p in progs if p.state == BACKOFF)),
        ("fatal", sum(1 for p in progs if p.state == FATAL)),
        ("children_reaped", reaper.children_reaped),
        ("zombies", count_zombies()),
    ]
    return rows + [p.info_line() for p in progs]


def shutdown():
    supervisor.stop_all_for_shutdown()


def init(srv):
    """Become a subreaper, hook SIGCHLD, cron, shutdown and INFO processes."""
    from .info import register_section
    subreaper = become_subreaper()
    log(LL_DEBUG if subreaper else LL_WARNING, "Child subreaper: %s", "yes" if subreaper else "no")
    srv.procs = supervisor
    srv.sigchld_handlers.append(reaper.reap_children)
    srv.cron_handlers.append(supervisor.cron)
    srv.shutdown_handlers.append(shutdown)
    register_section("processes", "Processes", section_processes)
    # Children that exited before the handler existed (none normally).
    reaper.reap_children()
