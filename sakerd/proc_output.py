"""Supervised programs' output: pipes read on the event loop, written to
rotated log files, published to `proc:<name>`, appended to `saker:proc:<name>`.

Some facts about pipes that shaped this module:

- A write to a pipe that has no reader left raises SIGPIPE in the writer
  (EPIPE if it ignores the signal). If sakerd held the only read end, a
  `kill -9` of sakerd would kill every supervised program at its next
  write, and adoption (procs.find_survivor) would find nothing to adopt. So
  the child also inherits a duplicate of each pipe's read end (it never
  reads it): the pipe always has a reader. While sakerd is dead the pipe
  fills, then the program's writes block until a reader drains it -- the
  backpressure of any slow reader, nothing lost, no signal.
- Opening /proc/<pid>/fd/1 when that descriptor is a pipe opens the pipe
  itself, as a FIFO (open(2) on the pipe's inode): O_RDONLY gives a new read
  end of the same pipe, and O_NONBLOCK makes the open return at once. A
  restarted sakerd that adopts a program resumes reading there; what the
  program wrote meanwhile is still in the pipe. (Checked on Linux 6.x: the
  program blocked in anon_pipe_write while no one read, and every line came
  out of the reopened end, in order.) Before opening, sakerd checks that
  fd 1 is a pipe and that the program also holds a read end of that same
  pipe -- the duplicate only sakerd gives -- so the stdout pipe of a
  process that sakerd did not start (found by a pidfile) is never stolen.
- O_NONBLOCK belongs to the open file description, which the child's
  duplicate shares with sakerd's end: it is non-blocking too, harmless since
  the child never reads it. The write ends the child writes to stay blocking.
- A pipe reads EOF once its last *writer* is closed (readers do not count):
  when the program and everything it forked have exited, or closed it.
  sakerd keeps no write end.
- F_SETPIPE_SZ raises the pipe's buffer from 64 KiB to 1 MiB
  (/proc/sys/fs/pipe-max-size for unprivileged users; refused when the
  user's pipe-user-pages limits are spent, then the default stays): a burst,
  or the time sakerd takes to restart, fits in it.
- Readiness is level-triggered: one read of at most READ_CHUNK per readable
  event, then back to the loop; what is left makes the next poll return at
  once, so a program writing as fast as it can shares the loop fairly with
  clients instead of owning it.

What a line costs: the file gets every byte at once (one write per chunk).
The channel and the stream cost a PUBLISH and an XADD per line, about a
thousand times more, so lines wait in a per-program queue of at most
PENDING_MAX_BYTES, drained DRAIN_LINES per program per turn of the loop by
a zero-delay time event. A program printing faster than that overflows the
queue: the lines that do not fit reach the file but not the channel and
the stream; they are counted (PROC STATUS output_dropped_lines) and the next
entry appended carries `dropped <n>`. Memory stays bounded by the queue,
the 64 KiB line buffer per pipe and the stream's proc-output-maxlen.
"""

import collections
import fcntl
import os
import stat
import tempfile
import time

from . import ae
from . import safefile
from .log import log, LL_WARNING

READ_CHUNK = 64 * 1024          # bytes per read
READS_PER_EVENT = 4             # reads per readable event per pipe, at most
READ_PAUSE_MS = 1               # pause of a pipe that still had data after them
SHUTDOWN_READS = 64             # per pipe per call while sakerd exits: 4 MiB, > a full pipe
MAX_LINE = 64 * 1024            # longer lines become pieces marked `partial 1`
PIPE_SIZE = 1 << 20             # F_SETPIPE_SZ
PENDING_MAX_BYTES = 1 << 20     # lines waiting for the channel and the stream, per program
DRAIN_NS = 1000000              # time spent publishing lines per turn of the loop
DRAIN_STEP = 16                 # lines per program between two looks at the clock
DRAIN_PAUSE_MS = 4              # after a pass that used all of DRAIN_NS
F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)

STDOUT, STDERR = b"stdout", b"stderr"
# Queue entries: one line, a piece of a long line, or a run of whole lines
# ending in b"\n" (split only when drained: a flood is never split in Python).
LINE, PIECE, RUN = 0, 1, 2


class OutputFileError(Exception):
    """A program's output file could not be opened (the message names it)."""


# ---- log files with rotation -------------------------------------------------------------
#
# sakerd writes the file as root, in a directory that may be sticky and
# world-writable (safefile's rules admit it). The file is opened by
# safefile.open_append (no symlink, one link, ours). Rotation never opens a
# name: the new file is created by mkstemp (an unpredictable name, O_EXCL)
# in the same directory, the backups are shifted by rename(2) (which replaces
# a planted symlink or file at the destination instead of following it), and
# the new file is renamed over `path`. Only `path`'s own descriptor is ever
# written to. A rename that fails (a planted directory) leaves the current
# file in place and rotation is tried again after another maxbytes.

class LogFile:
    """An append-only file rotated at maxbytes into path.1 ... path.<backups>."""

    def __init__(self, path, maxbytes, backups):
        self.path = path
        self.maxbytes = maxbytes     # 0: never rotated
        self.backups = backups       # 0: rotation empties the file
        self.fd = None
        self.size = 0
        self.limit = maxbytes
        self.line_len = 0            # bytes written since the last b"\n"
        self.failing = False         # a write failed: warned once until one succeeds

    def open(self):
        """Open the file if it is not open; raises OSError (UnsafeFile)."""
        if self.fd is None:
            self.fd = safefile.open_append(self.path)
            self.size = os.fstat(self.fd).st_size
            self.limit = self.maxbytes
            self.line_len = 0

    def close(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def write(self, data):
        """Append data; rotate between lines (or the 64 KiB pieces of a longer one)."""
        if self.fd is None:
            return
        while data:
            cut = self.cut_point(data)
            if cut is None:
                self._write(data)
                return
            if cut:
                self._write(data[:cut])
                data = data[cut:]
            if not self.rotate():
                self._write(data)      # tried again after another maxbytes
                return

    def cut_point(self, data):
        """Where to rotate in data: None if not in it, else the offset (0: before it)."""
        if not self.maxbytes or self.size + len(data) <= self.limit:
            return None
        room = max(0, self.limit - self.size)
        # The last boundary within room: after a newline, or where the
        # current line reaches a multiple of MAX_LINE.
        nl = data.rfind(b"\n", 0, room) + 1
        start_len = self.line_len if nl == 0 else 0
        piece = nl + (start_len + room - nl) // MAX_LINE * MAX_LINE - start_len
        cut = max(nl, piece if piece > nl else 0)
        if cut:
            return cut
        if self.size and self.line_len % MAX_LINE == 0:
            return 0
        # No boundary within room: the line in progress ends this file.
        nl = data.find(b"\n") + 1
        first = MAX_LINE - self.line_len % MAX_LINE
        if nl:
            first = min(first, nl)
        return first if first < len(data) else None

    def _write(self, data):
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(self.fd, view):]
        except OSError as e:
            if not self.failing:
                self.failing = True
                log(LL_WARNING, "Can't write to %s: %s (output lost until writes succeed)",
                    self.path, e.strerror)
            return
        self.failing = False
        self.size += len(data)
        k = data.rfind(b"\n")
        self.line_len = len(data) - k - 1 if k >= 0 else self.line_len + len(data)

    def rotate(self):
        """path -> path.1 -> ... -> path.<backups>; a fresh file at path. False if
        that failed (the current file stays)."""
        directory = os.path.dirname(self.path) or "."
        try:
            fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(self.path) + ".",
                                       dir=directory)
        except OSError as e:
            return self._rotation_failed("can't create a file in %s: %s" % (directory, e.strerror))
        try:
            st = os.fstat(self.fd)
            os.fchmod(fd, stat.S_IMODE(st.st_mode))
            if (st.st_uid, st.st_gid) != (os.geteuid(), os.getegid()):
                os.fchown(fd, st.st_uid, st.st_gid)
            fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_APPEND)
            self._shift_backups()
            if self.backups:
                # A second name for the current file, then the new file
                # renamed over the first: `path` never stops existing (a
                # reader such as `tail -F` never sees it missing).
                try:
                    os.unlink(self.path + ".1")     # (a name, never followed)
                except FileNotFoundError:
                    pass
                os.link(self.path, self.path + ".1")
            os.rename(tmp, self.path)
        except OSError as e:
            os.close(fd)
            try:
                os.unlink(tmp)
            except OSError:
                pass
            return self._rotation_failed("%s: %s" % (e.filename or self.path, e.strerror))
        os.close(self.fd)
        self.fd = fd
        self.size = 0
        self.limit = self.maxbytes
        self.line_len = 0
        return True

    def _shift_backups(self):
        for k in range(self.backups - 1, 0, -1):
            try:
                os.rename("%s.%d" % (self.path, k), "%s.%d" % (self.path, k + 1))
            except FileNotFoundError:
                pass
            except OSError as e:
                log(LL_WARNING, "Can't rotate %s.%d: %s", self.path, k, e.strerror)

    def _rotation_failed(self, why):
        log(LL_WARNING, "Can't rotate %s: %s (writing on, next try after %d more bytes)",
            self.path, why, self.maxbytes)
        self.limit = self.size + self.maxbytes
        return False


# ---- reading a pipe ------------------------------------------------------------------------

class OutputPipe:
    """The read end of one of a program's pipes (its stdout or its stderr)."""

    def __init__(self, output, stream, fd):
        self.output = output
        self.stream = stream         # STDOUT or STDERR
        self.fd = fd
        self.fragment = b""          # the line in progress, at most MAX_LINE bytes

    def register(self):
        from .server_h import server
        if server.el.create_file_event(self.fd, ae.AE_READABLE, self.readable) != ae.AE_OK:
            log(LL_WARNING, "Process %s: can't watch its %s (fd %d): output not captured",
                self.output.name, self.stream.decode(), self.fd)
            os.close(self.fd)
            self.fd = None
            return False
        return True

    def readable(self, el, fd, data, mask):
        for _ in range(READS_PER_EVENT):
            if not self.read_once():
                return
        # Still more: a flood. Unwatched for READ_PAUSE_MS, sakerd sleeps in
        # between instead of being busy all the time, and the scheduler wakes
        # it at once for a client (a busy process waits for its share).
        el.delete_file_event(fd, ae.AE_READABLE)
        el.create_time_event(READ_PAUSE_MS, self.resume)

    def resume(self, el, id, data):
        if self.fd is not None and not self.register():
            self.output.pipes.remove(self)
        return ae.AE_NOMORE

    def read_once(self):
        """One read of at most READ_CHUNK; False once nothing is left for now."""
        try:
            data = os.read(self.fd, READ_CHUNK)
        except (BlockingIOError, InterruptedError):
            return False
        except OSError as e:
            log(LL_WARNING, "Process %s: reading its %s failed: %s", self.output.name,
                self.stream.decode(), e.strerror)
            data = b""
        if not data:
            self.closed()
            return False
        self.output.file_for(self.stream).write(data)
        self.split(data)
        return True

    def split(self, data):
        """Queue data's lines; the line in progress waits in self.fragment."""
        queue = self.output.queue
        stream = self.stream
        first = data.find(b"\n")
        if first < 0:
            self.fragment += data
            self._queue_long_fragment()
            return
        if self.fragment:
            # Only this line can be longer than MAX_LINE: the others lie
            # wholly within one read of READ_CHUNK bytes.
            self._queue_line(self.fragment + data[:first])
            self.fragment = b""
        else:
            queue(stream, LINE, data[:first])
        last = data.rfind(b"\n")
        if last > first:
            queue(stream, RUN, data[first + 1:last + 1])
        self.fragment = data[last + 1:]
        self._queue_long_fragment()

    def _queue_line(self, line):
        while len(line) > MAX_LINE:
            self.output.queue(self.stream, PIECE, line[:MAX_LINE])
            line = line[MAX_LINE:]
        self.output.queue(self.stream, LINE, line)

    def _queue_long_fragment(self):
        while len(self.fragment) > MAX_LINE:
            self.output.queue(self.stream, PIECE, self.fragment[:MAX_LINE])
            self.fragment = self.fragment[MAX_LINE:]

    def closed(self):
        """EOF: the last line, even without its newline, then forget the pipe."""
        from .server_h import server
        if self.fragment:
            self.output.queue(self.stream, LINE, self.fragment)
            self.fragment = b""
        server.el.delete_file_event(self.fd, ae.AE_READABLE)
        os.close(self.fd)
        self.fd = None
        self.output.pipe_closed(self)

    def drain_available(self):
        """Read until EAGAIN or EOF, at most SHUTDOWN_READS times (shutdown,
        outside the loop: a program still writing must not hold sakerd)."""
        for _ in range(SHUTDOWN_READS):
            if self.fd is None or not self.read_once():
                return


# ---- one program's output ------------------------------------------------------------------

class ProgramOutput:
    """A supervised program's files, pipes and queue of lines for the channel and stream."""

    def __init__(self, name):
        self.name = name
        self.channel = ("proc:%s" % name).encode()
        self.key = ("saker:proc:%s" % name).encode()
        self.files = {}              # STDOUT/STDERR -> LogFile (the same one when shared)
        self.settings = None
        self.pipes = []              # OutputPipe, current and earlier instances
        self.pending = collections.deque()   # [stream, kind, payload, offset]
        self.pending_bytes = 0
        self.lines = 0               # lines (pieces) published and appended
        self.dropped = 0             # lines that reached only the file
        self.gap = 0                 # dropped since the last line appended

    # -- files --------------------------------------------------------------------------

    def configure(self, stdout, stderr, out_rotation, err_rotation):
        """New file settings; files whose settings changed are reopened."""
        settings = (stdout, stderr, out_rotation, err_rotation)
        if settings == self.settings:
            return
        self.settings = settings
        for f in set(self.files.values()):
            f.close()
        self.files = {}
        out = self._log_file(stdout, out_rotation)
        err = out if stderr is None or stderr == stdout else self._log_file(stderr, err_rotation)
        self.files = {STDOUT: out, STDERR: err}
        if self.pipes:
            try:
                self.open_files()
            except OutputFileError as e:
                log(LL_WARNING, "Process %s: %s", self.name, e)

    @staticmethod
    def _log_file(path, rotation):
        # /dev/null: no file at all (the channel and the stream still get the lines).
        return _NO_FILE if path == os.devnull else LogFile(path, *rotation)

    def open_files(self):
        """Open the files not open yet; raises OutputFileError naming the file."""
        for f in set(self.files.values()):
            try:
                f.open()
            except OSError as e:
                raise OutputFileError("can't open %s: %s" % (f.path, e.strerror)) from None

    def file_for(self, stream):
        return self.files.get(stream, _NO_FILE)

    # -- pipes ---------------------------------------------------------------------------

    def prepare(self):
        """Open the files and make the pipes: (child's stdout, stderr, read ends).

        Raises OutputFileError or OSError; the caller passes the read ends to the child too
        (see the module docstring) and calls started() or abandon().
        """
        self.open_files()
        ends = []
        try:
            for _ in (STDOUT, STDERR):
                r, w = os.pipe2(os.O_CLOEXEC)
                ends += [r, w]
                try:
                    fcntl.fcntl(w, F_SETPIPE_SZ, PIPE_SIZE)
                except OSError:
                    pass
                os.set_blocking(r, False)
        except OSError:
            for fd in ends:
                os.close(fd)
            raise
        return ends[1], ends[3], (ends[0], ends[2])

    def started(self, out_w, err_w, reads):
        """The child runs: sakerd keeps only the read ends, watched by the loop."""
        os.close(out_w)
        os.close(err_w)
        for stream, fd in zip((STDOUT, STDERR), reads):
            self._watch(stream, fd)

    @staticmethod
    def abandon(out_w, err_w, reads):
        for fd in (out_w, err_w) + tuple(reads):
            os.close(fd)

    def _watch(self, stream, fd):
        pipe = OutputPipe(self, stream, fd)
        if pipe.register():
            self.pipes.append(pipe)

    def adopt(self, pid):
        """Read again the pipes of a program an earlier sakerd started (module docstring)."""
        seen = set()
        for stream, n in ((STDOUT, 1), (STDERR, 2)):
            fd = _reopen_our_pipe(pid, n, seen)
            if fd is not None:
                self._watch(stream, fd)
        if not seen:
            log(LL_WARNING, "Process %s (pid %d): its output is not a pipe sakerd made: "
                "not captured until it restarts", self.name, pid)
        else:
            try:
                self.open_files()
            except OutputFileError as e:
                log(LL_WARNING, "Process %s: %s", self.name, e)

    def pipe_closed(self, pipe):
        self.pipes.remove(pipe)
        _schedule_drain(self)

    def drain_available(self):
        """Shutdown: read what the pipes hold, then publish every queued line."""
        for pipe in list(self.pipes):
            pipe.drain_available()
        while self.pending:
            self.drain(DRAIN_STEP)

    # -- the channel and the stream --------------------------------------------------------

    def queue(self, stream, kind, payload):
        n = len(payload)
        if self.pending_bytes + n > PENDING_MAX_BYTES:
            lost = payload.count(b"\n") if kind == RUN else 1
            self.dropped += lost
            self.gap += lost
            return
        self.pending.append([stream, kind, payload, 0])
        self.pending_bytes += n
        _schedule_drain(self)

    def drain(self, budget):
        """Publish and append up to budget queued lines, in order (a hot loop)."""
        if _publish is None:
            _bind()
        pending = self.pending
        cfg = _server.config
        maxlen = cfg.proc_output_maxlen
        db = _server.db[0] if maxlen and _server.db else None
        key, channel = self.key, self.channel
        emitted = 0
        while emitted < budget and pending:
            entry = pending[0]
            stream, kind, payload, offset = entry
            if kind == RUN:
                nl = payload.find(b"\n", offset)
                line = payload[offset:nl]
                entry[3] = nl = nl + 1
                if nl == len(payload):
                    pending.popleft()
                    self.pending_bytes -= nl
            else:
                line = payload
                pending.popleft()
                self.pending_bytes -= len(payload)
            emitted += 1
            if db is not None:
                if kind == PIECE or self.gap:
                    items = self.marked_items(stream, line, kind == PIECE)
                else:
                    items = (b"stream", stream, b"line", line)
                _append_entry(db, key, items, maxlen)
            self.gap = 0
            _publish(channel, line, True)
        self.lines += emitted

    def marked_items(self, stream, line, partial):
        items = [b"stream", stream, b"line", line]
        if partial:
            items += [b"partial", b"1"]
        if self.gap:
            items += [b"dropped", b"%d" % self.gap]
        return tuple(items)

    def status_pairs(self):
        return [("output_lines", self.lines), ("output_dropped_lines", self.dropped),
                ("output_queued_bytes", self.pending_bytes), ("output_pipes", len(self.pipes))]


# Bound on first use: pubsub and t_stream import the server, which imports procs.
_publish = _append_entry = _server = None


def _bind():
    global _publish, _append_entry, _server
    from .pubsub import publish as _publish
    from .server_h import server as _server
    from .t_stream import append_entry as _append_entry


class _NoFile:
    """/dev/null: nothing opened, nothing written."""

    def open(self):
        pass

    def close(self):
        pass

    def write(self, data):
        pass


_NO_FILE = _NoFile()


def _reopen_our_pipe(pid, n, seen):
    """A new read end of pid's fd n if it is a pipe sakerd made; None otherwise.

    Ours: the process also holds a read-only descriptor of the same pipe
    (the duplicate spawn passed). A pipe already opened (2>&1) is skipped.
    """
    base = "/proc/%d/fd" % pid
    try:
        target = os.readlink("%s/%d" % (base, n))
        if not target.startswith("pipe:") or target in seen:
            return None
        if not any(_is_read_end(pid, base, entry, target) for entry in os.listdir(base)
                   if entry not in ("1", "2")):
            return None
        fd = os.open("%s/%d" % (base, n), os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    st = os.fstat(fd)
    if not stat.S_ISFIFO(st.st_mode) or target != "pipe:[%d]" % st.st_ino:
        os.close(fd)     # fd n changed between the check and the open
        return None
    seen.add(target)
    return fd


def _is_read_end(pid, base, entry, target):
    try:
        if os.readlink("%s/%s" % (base, entry)) != target:
            return False
        with open("/proc/%d/fdinfo/%s" % (pid, entry), "rb") as f:
            for line in f:
                if line.startswith(b"flags:"):
                    return int(line.split()[1], 8) & os.O_ACCMODE == os.O_RDONLY
    except (OSError, ValueError):
        pass
    return False


# ---- draining on the loop ----------------------------------------------------------------

class _Drainer:
    timer = None
    outputs = {}     # ProgramOutput -> None, in the order they first waited


_drainer = _Drainer()


def _schedule_drain(output):
    from .server_h import server
    if output.pending:
        _drainer.outputs[output] = None
    if _drainer.timer is None and _drainer.outputs and server.el is not None:
        _drainer.timer = server.el.create_time_event(0, _drain_pending)


def _drain_pending(el, id, data):
    """Time event: DRAIN_STEP lines per program in turn, for DRAIN_NS at most.

    Lines left: again at the next turn of the loop; but after a pass that
    used all of DRAIN_NS (a flood), only after DRAIN_PAUSE_MS, so that
    publishing lines takes at most a fifth of sakerd's time: a sakerd busy
    all the time would answer its clients only when the scheduler gives it
    its share, and a flood would slow every PING.
    """
    outputs = _drainer.outputs
    deadline = time.perf_counter_ns() + DRAIN_NS
    while outputs:
        for output in list(outputs):
            output.drain(DRAIN_STEP)
            if not output.pending:
                del outputs[output]
        if time.perf_counter_ns() >= deadline:
            return DRAIN_PAUSE_MS if outputs else _drain_done()
    return _drain_done()


def _drain_done():
    _drainer.timer = None
    return ae.AE_NOMORE


# ---- PROC TAIL -------------------------------------------------------------------------------

def tail_lines(output, n):
    """The `line` field of the last n entries of the program's stream, oldest first."""
    from .server_h import server
    from .t_stream import Stream, ID_MAX
    s = server.db[0].lookup(output.key) if server.db else None
    if s is None or s.__class__ is not Stream or n <= 0:
        return []
    lines = []
    for _, wire in s.range(0, ID_MAX, True):
        line = _line_field(wire)
        if line is not None:
            lines.append(line)
            if len(lines) == n:
                break
    lines.reverse()
    return lines


def _line_field(wire):
    """The value of field `line` in an entry's reply bytes (*2 id *2n f v ...), or None."""
    pos = wire.index(b"\r\n", wire.index(b"\r\n") + 1) + 2    # past *2 and $len of the id
    pos = wire.index(b"\r\n", pos) + 2                         # past the id
    end = wire.index(b"\r\n", pos)
    count = int(wire[pos + 1:end])
    pos = end + 2
    values = []
    for _ in range(count):
        end = wire.index(b"\r\n", pos)
        size = int(wire[pos + 1:end])
        values.append(wire[end + 2:end + 2 + size])
        pos = end + 4 + size
    for k in range(0, len(values) - 1, 2):
        if values[k] == b"line":
            return values[k + 1]
    return None
