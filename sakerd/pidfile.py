"""Pidfiles: our own, locked for the life of the process, and others', checked.

Our pidfile is opened with O_CREAT and locked with flock(LOCK_EX|LOCK_NB)
before anything is written to it; never through a symlink, and only if it
is a plain file of ours in a directory no other user can write
(safefile.open_for_lock). The lock lives as long as the open file
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

from . import safefile


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
            # Never through a symlink, never a file someone else can swap (safefile).
            fd = safefile.open_for_lock(self.path, 0o644)
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
        try:
            # A stale file may have been left group/world-writable: whoever
            # can write our pidfile can aim `kill $(cat pidfile)` elsewhere.
            os.fchmod(fd, 0o644)
        except OSError:
            pass
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


def read_proc_stat(pid):
    """(state, ppid, start_ticks) of pid from /proc/<pid>/stat, or None if it is gone."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            stat = f.read()
    except OSError:
        return None
    # The command name may contain spaces and parentheses: split after the
    # last ')'.
    fields = stat[stat.rfind(b")") + 2:].split()
    return fields[0].decode(), int(fields[1]), int(fields[19])


def process_start_time(pid):
    """Unix time at which pid started (from /proc), or None if it is gone or a zombie."""
    stat = read_proc_stat(pid)
    if stat is None or stat[0] in ("Z", "X"):
        return None
    return boot_time() + stat[2] / os.sysconf("SC_CLK_TCK")


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


# How much later than the pidfile's mtime a process may seem to have
# started and still be the one that wrote it: btime in /proc/stat is whole
# seconds (truncated), start times count clock ticks, and the wall clock may
# have been slewed since boot.
START_TIME_SLACK = 2.0


def check_pidfile(path):
    """(pid, None) for a live process that matches path; (None, reason) otherwise.

    Identity: the pid must name a live process (not a zombie), and that
    process must have started before the pidfile was last written; a
    process that started after it cannot have written it: its pid was
    reused, and the pidfile is stale.
    """
    try:
        st = os.stat(path)
    except OSError as e:
        return None, "%s: %s" % (path, e.strerror)
    pid = read_pid(path)
    if pid is None:
        if not os.access(path, os.R_OK):
            return None, "%s: Permission denied" % path
        return None, "%s: no pid in file" % path
    stat = read_proc_stat(pid)
    if stat is None:
        return None, "%s: stale pidfile, process %d is not running" % (path, pid)
    if stat[0] in ("Z", "X"):
        return None, "%s: stale pidfile, process %d has exited (zombie)" % (path, pid)
    started = boot_time() + stat[2] / os.sysconf("SC_CLK_TCK")
    if started > st.st_mtime + START_TIME_SLACK:
        return None, "%s: stale pidfile, pid %d was reused by a process started later" % (path, pid)
    return pid, None


def pidfile_signature(path):
    """What identifies one write of path: (inode, mtime_ns, size), or None if absent.

    exec compares it before and after starting a program to tell the
    program's own pidfile from a leftover of an earlier run.
    """
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size
