"""Pidfiles: our own, locked for the life of the process, and others', checked.

Our pidfile is opened with O_CREAT and locked with flock(LOCK_EX|LOCK_NB)
before anything is written to it. The lock lives as long as the open file
description, so it is released by the kernel however we die (kill -9
included): a pidfile whose lock can be taken is stale by definition, and a
pidfile whose lock is held names a live instance, whose pid we report
without touching the file. On exit we remove the file only if it is still
ours (same inode, our pid inside).

Others' pidfiles (for saker.pidof and supervision) cannot rely on locks. A
pid read from one is trusted only if that process is alive and started
before the pidfile was last written: a pid that the kernel reused for a
later process is stale.
"""

import errno
import fcntl
import os
import time


class PidfileError(Exception):
    pass


def read_pid(path):
    """The pid written in path, or None."""
    try:
        with open(path, "rb") as f:
            data = f.read(64)
    except OSError:
        return None
    data = data.strip().split(b"\n", 1)[0].strip()
    if not data.isdigit():
        return None
    pid = int(data)
    return pid if pid > 0 else None


class Pidfile:
    """Our own pidfile."""

    def __init__(self, path):
        self.path = path
        self.fd = None
        self.inode = None

    def acquire(self, pid=None):
        """Lock and write the pidfile; raises PidfileError naming the holder."""
        pid = pid or os.getpid()
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as e:
            raise PidfileError("can't open pidfile %s: %s" % (self.path, e.strerror))
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            os.close(fd)
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                holder = read_pid(self.path)
                raise PidfileError("pidfile %s is locked by a running instance (pid %s)" %
                                   (self.path, holder if holder else "unknown"))
            raise PidfileError("can't lock pidfile %s: %s" % (self.path, e.strerror))
        os.ftruncate(fd, 0)
        os.write(fd, b"%d\n" % pid)
        os.fsync(fd)
        self.fd = fd
        self.inode = os.fstat(fd).st_ino
        return self

    def remove(self):
        """Unlink the file if it is still ours, then release the lock."""
        if self.fd is None:
            return
        try:
            st = os.stat(self.path)
            if st.st_ino == self.inode and read_pid(self.path) == os.getpid():
                os.unlink(self.path)
        except OSError:
            pass
        os.close(self.fd)
        self.fd = None


def process_start_time(pid):
    """Unix time at which pid started (from /proc), or None if it is gone."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            stat = f.read()
    except OSError:
        return None
    # The command name may contain spaces and parentheses: split after the
    # last ')'.
    fields = stat[stat.rfind(b")") + 2:].split()
    state = fields[0]
    if state in (b"Z", b"X"):
        return None
    start_ticks = int(fields[19])
    hz = os.sysconf("SC_CLK_TCK")
    return boot_time() + start_ticks / hz


_boot_time = None


def boot_time():
    global _boot_time
    if _boot_time is None:
        with open("/proc/stat", "rb") as f:
            for line in f:
                if line.startswith(b"btime "):
                    _boot_time = int(line.split()[1])
                    break
    return _boot_time


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return process_start_time(pid) is not None


def check_pidfile(path):
    """(pid, None) for a live process that matches path; (None, reason) otherwise.

    A process that started after the pidfile was last modified cannot have
    written it: its pid was reused, and the pidfile is stale.
    """
    try:
        st = os.stat(path)
    except OSError as e:
        return None, "%s: %s" % (path, e.strerror)
    pid = read_pid(path)
    if pid is None:
        return None, "%s: no pid in file" % path
    started = process_start_time(pid)
    if started is None:
        return None, "%s: stale pidfile, process %d is not running" % (path, pid)
    # /proc start times have clock-tick resolution and btime whole seconds.
    if started > st.st_mtime + 2.0:
        return None, "%s: stale pidfile, pid %d was reused by a process started later" % (path, pid)
    return pid, None
