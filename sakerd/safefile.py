"""Files sakerd writes, as root, safely: no symlink, no foreign directory.

Some facts about writing files as root that this module relies on.

* A path in a directory another user can write is theirs, not ours. They
  can put a symlink at it (open() follows it: root then truncates, chmods
  or appends to the target, /etc/shadow included), a hard link to any file
  on the same filesystem (fs.protected_hardlinks stops that only where it
  is set), or a file of their own that we would then trust. The sticky bit
  (/tmp) stops them from renaming or deleting our entries, not from
  creating theirs first.
* So, as OpenSSH's secure_filename() does for authorized_keys, the whole
  directory chain of a path is checked before anything is written: every
  directory from the file's up to / must be owned by root or by us, and
  writable by no one else, except a world-writable directory with the
  sticky bit (where others cannot touch what we create). The refusal names
  the directory and its mode.
* Even in a checked directory, files are opened with O_NOFOLLOW (a symlink
  at the last component fails with ELOOP instead of being followed), new
  files with O_EXCL, and what was opened is checked with fstat() (the file
  itself, not the name): a regular file, one link, owned by root or us.
* A file replaced as a whole (CONFIG REWRITE) is written to a temporary
  file that mkstemp() creates with an unpredictable name and O_EXCL in the
  target's own directory, given the original's mode and owner before it
  gets a byte, fsynced, renamed over the target, and the directory is
  fsynced so that the rename survives a crash.
"""

import errno
import os
import stat
import tempfile


class UnsafeFile(OSError):
    """A path sakerd refuses to write; str() and strerror say which part and why."""

    def __init__(self, message):
        super().__init__(errno.EPERM, message)

    def __str__(self):
        return self.strerror


def _describe_mode(st):
    return "%04o" % stat.S_IMODE(st.st_mode)


def directory_problem(directory):
    """None if no other user can change `directory` or its parents, else why not.

    As OpenSSH's secure_filename(): the real path is walked up to /.
    """
    me = os.geteuid()
    d = os.path.realpath(directory)
    while True:
        try:
            st = os.stat(d)
        except OSError as e:
            return "directory %s: %s" % (d, e.strerror)
        if not stat.S_ISDIR(st.st_mode):
            return "%s is not a directory" % d
        mode = st.st_mode
        if st.st_uid not in (0, me):
            return "directory %s is owned by another user (uid %d, mode %s)" % (
                d, st.st_uid, _describe_mode(st))
        sticky = mode & stat.S_ISVTX
        if mode & stat.S_IWOTH and not sticky:
            return "directory %s is world-writable without the sticky bit (mode %s)" % (
                d, _describe_mode(st))
        if mode & stat.S_IWGRP and not sticky and st.st_gid != 0 and st.st_gid != os.getegid():
            return "directory %s is writable by group %d (mode %s)" % (
                d, st.st_gid, _describe_mode(st))
        parent = os.path.dirname(d)
        if parent == d:
            return None
        d = parent


def path_problem(path):
    """directory_problem() for the directory that holds `path`."""
    return directory_problem(os.path.dirname(os.path.abspath(path)) or "/")


def _check_opened(fd, path):
    """The file behind fd is a plain file of ours with one name; else UnsafeFile."""
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        why = "is not a regular file"
    elif st.st_nlink != 1:
        why = "has %d hard links" % st.st_nlink
    elif st.st_uid not in (0, os.geteuid()):
        why = "is owned by another user (uid %d)" % st.st_uid
    else:
        return st
    os.close(fd)
    raise UnsafeFile("%s %s" % (path, why))


def _open_checked(path, flags, mode):
    # A missing directory is left to open() to report, with its own errno.
    problem = path_problem(path) if os.path.isdir(os.path.dirname(os.path.abspath(path))) else None
    if problem:
        raise UnsafeFile(problem)
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    except OSError:
        # O_NOFOLLOW met a symlink: ELOOP (EACCES with O_CREAT on some kernels).
        if os.path.islink(path):
            raise UnsafeFile("%s is a symbolic link" % path) from None
        raise
    _check_opened(fd, path)
    return fd


def open_append(path, mode=0o644):
    """A descriptor appending to path (created with `mode` if absent)."""
    return _open_checked(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, mode)


def open_for_lock(path, mode=0o644):
    """A read-write descriptor of path (a pidfile), created if absent, not truncated."""
    return _open_checked(path, os.O_RDWR | os.O_CREAT, mode)


def fsync_directory(directory):
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def replace_file(path, data):
    """Replace the file at path (its target, if path is a symlink) with data.

    The new file keeps the old one's mode and owner; a file that does not
    exist yet gets 0600. Raises OSError (UnsafeFile for a refused path).
    """
    target = os.path.realpath(path)
    directory = os.path.dirname(target)
    problem = directory_problem(directory)
    if problem:
        raise UnsafeFile(problem)
    try:
        st = os.stat(target)
    except FileNotFoundError:
        st = None
    if st is not None and not stat.S_ISREG(st.st_mode):
        raise UnsafeFile("%s is not a regular file" % target)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(target) + ".", suffix=".tmp",
                               dir=directory)
    try:
        try:
            # Mode and owner first: not one byte is readable by anyone else.
            os.fchmod(fd, stat.S_IMODE(st.st_mode) if st else 0o600)
            if st is not None and (st.st_uid, st.st_gid) != (os.geteuid(), os.getegid()):
                os.fchown(fd, st.st_uid, st.st_gid)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    fsync_directory(directory)


def remove_stale_temporaries(path):
    """The temporary files of replace_file(path) a crash left behind: our
    prefix and suffix, regular, ours (never a file another user put there)."""
    directory, base = os.path.split(os.path.realpath(path))
    prefix = "." + base + "."
    try:
        names = os.listdir(directory)
    except OSError:
        return
    for n in names:
        if n.startswith(prefix) and n.endswith(".tmp"):
            p = os.path.join(directory, n)
            try:
                st = os.lstat(p)
                if stat.S_ISREG(st.st_mode) and st.st_uid == os.geteuid():
                    os.unlink(p)
            except OSError:
                pass


def ensure_private_directory(directory, mode=0o755):
    """Create directory (owned by us, `mode`) if it is missing; its problem or None."""
    try:
        os.makedirs(directory, mode, exist_ok=True)
    except OSError as e:
        return "can't create directory %s: %s" % (directory, e.strerror)
    return directory_problem(directory)
