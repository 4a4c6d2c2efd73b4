"""A simple event-driven programming library: a port of Redis's ae.c.

File events call a handler when a descriptor becomes readable or writable;
time events call a procedure at a point in monotonic time, and the value the
procedure returns says in how many milliseconds to call it again (or
AE_NOMORE to delete it).

Some facts about the OS that this module relies on:

* Readiness is level-triggered (epoll without EPOLLET, and select). A wake-up
  only says "try now": the handler must tolerate EAGAIN on the next
  read/accept, because another process, or a reset connection, may have taken
  the data in between.
* epoll reports EPOLLERR and EPOLLHUP whether or not they were asked for. Like
  Redis we hand them to both handlers, so that the read or write fails and the
  handler frees the connection, instead of spinning on an event nobody reads.
* PEP 475: since Python 3.5 epoll.poll() and select.select() retry by
  themselves after EINTR, with the timeout recomputed. A signal therefore
  never makes the poll return on its own; signals reach the loop through a
  wake-up descriptor registered as an ordinary file event (see
  sakerd.signals), which makes the retried poll return at once.
* A descriptor closed while still registered: epoll drops it from its
  interest set by itself, select() fails with EBADF on it. The select
  backend forgets such descriptors, so both backends go on the same way.
* Timers are measured on time.monotonic_ns(): a wall-clock jump must not fire
  every timer at once nor starve them for an hour.
"""

import abc
import errno
import os
import select
import time

try:
    import cython
    COMPILED = cython.compiled   # the compiled build: True, and ae.pxd's epoll_poll() exists
except ImportError:              # pure Python, no Cython installed
    COMPILED = False

AE_OK = 0
AE_ERR = -1

AE_NONE = 0
AE_READABLE = 1     # the two low bits: ApiBackend.poll() packs fd << 2 | mask
AE_WRITABLE = 2
# With WRITABLE, never fire the event if the READABLE event already fired in
# the same iteration. Useful when you want to persist things to disk before
# sending replies, and want to do that in a group fashion.
AE_BARRIER = 4

AE_FILE_EVENTS = 1 << 0
AE_TIME_EVENTS = 1 << 1
AE_ALL_EVENTS = AE_FILE_EVENTS | AE_TIME_EVENTS
AE_DONT_WAIT = 1 << 2
AE_CALL_BEFORE_SLEEP = 1 << 3
AE_CALL_AFTER_SLEEP = 1 << 4

AE_NOMORE = -1
AE_DELETED_EVENT_ID = -1


def monotonic_us():
    return time.monotonic_ns() // 1000


class FileEvent:
    __slots__ = ("mask", "rfile_proc", "wfile_proc", "client_data")

    def __init__(self):
        self.mask = AE_NONE
        self.rfile_proc = None
        self.wfile_proc = None
        self.client_data = None


class TimeEvent:
    __slots__ = ("id", "when", "time_proc", "finalizer_proc", "client_data", "refcount")

    def __init__(self, id, when, time_proc, client_data, finalizer_proc):
        self.id = id
        self.when = when
        self.time_proc = time_proc
        self.client_data = client_data
        self.finalizer_proc = finalizer_proc
        self.refcount = 0


class ApiBackend(abc.ABC):
    """The multiplexing interface: what differs between OS mechanisms.

    add_event/del_event receive the mask the fd had before the call, so a
    backend can tell a first registration from a modification.
    """

    name = "none"

    def resize(self, setsize):
        return AE_OK

    @abc.abstractmethod
    def add_event(self, fd, old_mask, mask):
        """Watch fd for `mask` in addition to `old_mask`; AE_OK or AE_ERR."""

    @abc.abstractmethod
    def del_event(self, fd, old_mask, delmask):
        """Stop watching fd for `delmask`."""

    @abc.abstractmethod
    def poll(self, timeout):
        """Wait up to `timeout` seconds (None: forever); return the fired
        descriptors, each as one int: fd << 2 | mask (AE_READABLE and
        AE_WRITABLE are the two low bits), no tuple per descriptor."""

    def close(self):
        pass


# aeApiPoll's translation of epoll events, as a table indexed by the bits
# it looks at: IN is readable, OUT writable, ERR and HUP both. (select has
# no EPOLL* names where there is no epoll.)
_EPOLL_BITS = (select.EPOLLIN | select.EPOLLOUT | select.EPOLLERR | select.EPOLLHUP
               if hasattr(select, "epoll") else 0)


def _ae_mask(ev):
    if not _EPOLL_BITS:
        return 0
    mask = 0
    if ev & select.EPOLLIN:
        mask |= AE_READABLE
    if ev & select.EPOLLOUT:
        mask |= AE_WRITABLE
    if ev & (select.EPOLLERR | select.EPOLLHUP):
        mask |= AE_READABLE | AE_WRITABLE
    return mask


_EPOLL_TO_AE = [_ae_mask(ev) for ev in range(_EPOLL_BITS + 1)]


class EpollBackend(ApiBackend):
    name = "epoll"

    def __init__(self, setsize):
        self.ep = select.epoll(setsize)
        self.setsize = setsize

    def resize(self, setsize):
        self.setsize = setsize
        return AE_OK

    def add_event(self, fd, old_mask, mask):
        # If the fd was already monitored for some event, we need a MOD
        # operation. Otherwise we need an ADD operation.
        mask |= old_mask
        events = 0
        if mask & AE_READABLE:
            events |= select.EPOLLIN
        if mask & AE_WRITABLE:
            events |= select.EPOLLOUT
        try:
            if old_mask == AE_NONE:
                self.ep.register(fd, events)
            else:
                self.ep.modify(fd, events)
        except OSError:
            return AE_ERR
        return AE_OK

    def del_event(self, fd, old_mask, delmask):
        mask = old_mask & ~delmask
        events = 0
        if mask & AE_READABLE:
            events |= select.EPOLLIN
        if mask & AE_WRITABLE:
            events |= select.EPOLLOUT
        try:
            if mask & (AE_READABLE | AE_WRITABLE):
                self.ep.modify(fd, events)
            else:
                # The fd may already be closed by the caller: the kernel has
                # then dropped it from the set itself.
                self.ep.unregister(fd)
        except OSError:
            pass

    def poll(self, timeout):
        if COMPILED:
            # epoll_wait(2) on the same epoll descriptor, into a C array
            # (ae.pxd): no (fd, events) tuples to build and take apart.
            return epoll_poll(self.ep.fileno(), timeout)   # noqa: F821
        if timeout is None:
            timeout = -1
        masks = _EPOLL_TO_AE
        return [fd << 2 | masks[ev & _EPOLL_BITS] for fd, ev in self.ep.poll(timeout, self.setsize)]

    def close(self):
        self.ep.close()


class SelectBackend(ApiBackend):
    """Portable fallback. select() cannot watch descriptors >= FD_SETSIZE."""

    name = "select"
    FD_SETSIZE = 1024

    def __init__(self, setsize):
        self.rfds = set()
        self.wfds = set()

    def resize(self, setsize):
        return AE_OK

    def add_event(self, fd, old_mask, mask):
        if fd >= self.FD_SETSIZE:
            return AE_ERR
        if mask & AE_READABLE:
            self.rfds.add(fd)
        if mask & AE_WRITABLE:
            self.wfds.add(fd)
        return AE_OK

    def del_event(self, fd, old_mask, delmask):
        if delmask & AE_READABLE:
            self.rfds.discard(fd)
        if delmask & AE_WRITABLE:
            self.wfds.discard(fd)

    def poll(self, timeout):
        if not self.rfds and not self.wfds:
            if timeout is None:
                # Nothing can ever wake us: behave like select(0,...) would.
                timeout = 3600.0
            time.sleep(timeout)
            return []
        try:
            r, w, _ = select.select(self.rfds, self.wfds, (), timeout)
        except OSError as e:
            if e.errno != errno.EBADF:
                raise
            # A descriptor was closed without its events being deleted:
            # epoll forgets such an fd by itself, select() fails on it.
            # Forget it here too, so that the loop goes on.
            self._forget_closed_fds()
            return []
        if not w:
            return [fd << 2 | AE_READABLE for fd in r]
        masks = dict.fromkeys(r, AE_READABLE)
        for fd in w:
            masks[fd] = masks.get(fd, 0) | AE_WRITABLE
        return [fd << 2 | mask for fd, mask in masks.items()]

    def _forget_closed_fds(self):
        for fd in list(self.rfds | self.wfds):
            try:
                os.fstat(fd)
            except OSError:
                self.rfds.discard(fd)
                self.wfds.discard(fd)


BACKENDS = {"epoll": EpollBackend, "select": SelectBackend}


def default_backend():
    return "epoll" if hasattr(select, "epoll") else "select"


class EventLoop:
    def __init__(self, setsize, backend=None):
        backend = backend or default_backend()
        if backend not in BACKENDS:
            raise ValueError("unknown ae backend '%s'" % backend)
        self.api = BACKENDS[backend](setsize)
        self.setsize = setsize
        self.events = [FileEvent() for _ in range(setsize)]
        self.maxfd = -1
        self.time_events = []
        self.time_event_next_id = 0
        self.stopped = False
        self.flags = 0
        self.before_sleep = None
        self.after_sleep = None

    def get_api_name(self):
        return self.api.name

    def get_set_size(self):
        return self.setsize

    def resize_set_size(self, setsize):
        """Resize the maximum set size of the event loop.

        If the requested set size is smaller than the current set size but
        there is already a file descriptor in use that is >= the requested
        set size minus one, AE_ERR is returned and the operation is not
        performed at all.
        """
        if setsize == self.setsize:
            return AE_OK
        if self.maxfd >= setsize:
            return AE_ERR
        if self.api.resize(setsize) == AE_ERR:
            return AE_ERR
        if setsize > self.setsize:
            self.events.extend(FileEvent() for _ in range(setsize - self.setsize))
        else:
            del self.events[setsize:]
        self.setsize = setsize
        return AE_OK

    def set_dont_wait(self, no_wait):
        if no_wait:
            self.flags |= AE_DONT_WAIT
        else:
            self.flags &= ~AE_DONT_WAIT

    def stop(self):
        self.stopped = True

    # ---- file events -------------------------------------------------

    def create_file_event(self, fd, mask, proc, client_data=None):
        if fd >= self.setsize:
            return AE_ERR
        fe = self.events[fd]
        if self.api.add_event(fd, fe.mask, mask) == AE_ERR:
            return AE_ERR
        fe.mask |= mask
        if mask & AE_READABLE:
            fe.rfile_proc = proc
        if mask & AE_WRITABLE:
            fe.wfile_proc = proc
        fe.client_data = client_data
        if fd > self.maxfd:
            self.maxfd = fd
        return AE_OK

    def delete_file_event(self, fd, mask):
        if fd >= self.setsize:
            return
        fe = self.events[fd]
        if fe.mask == AE_NONE:
            return
        # We want to always remove AE_BARRIER if set when AE_WRITABLE
        # is removed.
        if mask & AE_WRITABLE:
            mask |= AE_BARRIER
        self.api.del_event(fd, fe.mask, mask)
        fe.mask &= ~mask
        if fe.mask == AE_NONE:
            # In C these are dangling pointers; in Python they would keep the
            # handler's object (a freed client with its buffers) alive until
            # the descriptor number happens to be reused.
            fe.rfile_proc = fe.wfile_proc = fe.client_data = None
        if fd == self.maxfd and fe.mask == AE_NONE:
            # Update the max fd
            j = self.maxfd - 1
            events = self.events
            while j >= 0 and events[j].mask == AE_NONE:
                j -= 1
            self.maxfd = j

    def get_file_events(self, fd):
        if fd >= self.setsize:
            return AE_NONE
        return self.events[fd].mask

    def get_file_client_data(self, fd):
        if fd >= self.setsize:
            return None
        fe = self.events[fd]
        return fe.client_data if fe.mask != AE_NONE else None

    # ---- time events -------------------------------------------------

    def create_time_event(self, milliseconds, proc, client_data=None, finalizer_proc=None):
        id = self.time_event_next_id
        self.time_event_next_id += 1
        te = TimeEvent(id, monotonic_us() + int(milliseconds * 1000), proc,
                       client_data, finalizer_proc)
        self.time_events.append(te)
        return id

    def delete_time_event(self, id):
        # Deletion is lazy: the event is unlinked (and its finalizer run) by
        # the next pass over the timers, so that deleting the running timer,
        # or one after it, from inside a callback is safe.
        for te in self.time_events:
            if te.id == id:
                te.id = AE_DELETED_EVENT_ID
                return AE_OK
        return AE_ERR

    def _us_until_earliest_timer(self):
        """How many microseconds until the first timer should fire; -1 if none.

        O(N): timers are few (server cron, tasks, supervision backoffs).
        A deleted timer counts as due: the next pass must unlink it and run
        its finalizer, instead of sleeping until some other event wakes us.
        """
        earliest = None
        for te in self.time_events:
            when = 0 if te.id == AE_DELETED_EVENT_ID else te.when
            if earliest is None or when < earliest:
                earliest = when
        if earliest is None:
            return -1
        now = monotonic_us()
        return 0 if now >= earliest else earliest - now

    def _process_time_events(self):
        processed = 0
        # Make sure we don't process time events created by time events in
        # this iteration.
        max_id = self.time_event_next_id - 1
        now = monotonic_us()
        for te in list(self.time_events):
            if te.id == AE_DELETED_EVENT_ID:
                # A running timer that deleted itself is freed once its
                # callback has returned (refcount back to zero).
                if te.refcount:
                    continue
                self.time_events.remove(te)
                if te.finalizer_proc is not None:
                    te.finalizer_proc(self, te.client_data)
                    now = monotonic_us()
                continue
            if te.id > max_id:
                continue
            if te.when <= now:
                te.refcount += 1
                retval = te.time_proc(self, te.id, te.client_data)
                te.refcount -= 1
                processed += 1
                now = monotonic_us()
                if retval != AE_NOMORE and te.id != AE_DELETED_EVENT_ID:
                    te.when = now + int(retval * 1000)
                else:
                    te.id = AE_DELETED_EVENT_ID
        return processed

    # ---- the loop ----------------------------------------------------

    def process_events(self, flags):
        """Process every pending file event, then every due time event.

        Without AE_DONT_WAIT the call sleeps until a file event fires or the
        nearest timer is due. Returns the number of events processed.
        """
        processed = 0
        if not (flags & AE_TIME_EVENTS) and not (flags & AE_FILE_EVENTS):
            return 0

        # We want to call poll() even if there are no file events to process
        # as long as we want to process time events, in order to sleep until
        # the next time event is ready to fire.
        if self.maxfd != -1 or ((flags & AE_TIME_EVENTS) and not (flags & AE_DONT_WAIT)):
            timeout = None
            if flags & AE_TIME_EVENTS and not (flags & AE_DONT_WAIT):
                us = self._us_until_earliest_timer()
                if us >= 0:
                    timeout = us / 1e6
            if timeout is None and flags & AE_DONT_WAIT:
                timeout = 0
            if self.flags & AE_DONT_WAIT:
                timeout = 0

            if self.before_sleep is not None and flags & AE_CALL_BEFORE_SLEEP:
                self.before_sleep(self)

            fired = self.api.poll(timeout)

            if self.after_sleep is not None and flags & AE_CALL_AFTER_SLEEP:
                self.after_sleep(self)

            events = self.events
            # The masks as locals (C integers in the compiled build).
            readable, writable, barrier = AE_READABLE, AE_WRITABLE, AE_BARRIER
            for item in fired:
                fd = item >> 2
                mask = item & 3
                fe = events[fd]
                fired_count = 0
                # Normally we execute the readable event first, and the
                # writable event later. With AE_BARRIER the writable event
                # goes first: the handler wants to do something (fsync, say)
                # before replying to a client.
                invert = fe.mask & barrier
                if not invert and fe.mask & mask & readable:
                    fe.rfile_proc(self, fd, fe.client_data, mask)
                    fired_count += 1
                    fe = events[fd]  # Refresh in case of resize.
                if fe.mask & mask & writable:
                    if not fired_count or fe.wfile_proc is not fe.rfile_proc:
                        fe.wfile_proc(self, fd, fe.client_data, mask)
                        fired_count += 1
                if invert:
                    fe = events[fd]
                    if fe.mask & mask & readable and (
                            not fired_count or fe.wfile_proc is not fe.rfile_proc):
                        fe.rfile_proc(self, fd, fe.client_data, mask)
                        fired_count += 1
                processed += 1

        if flags & AE_TIME_EVENTS:
            processed += self._process_time_events()
        return processed

    def main(self):
        self.stopped = False
        while not self.stopped:
            self.process_events(AE_ALL_EVENTS | AE_CALL_BEFORE_SLEEP | AE_CALL_AFTER_SLEEP)

    def close(self):
        self.api.close()


def wait(fd, mask, milliseconds):
    """Wait up to `milliseconds` for fd to become readable/writable."""
    events = 0
    if mask & AE_READABLE:
        events |= select.POLLIN
    if mask & AE_WRITABLE:
        events |= select.POLLOUT
    p = select.poll()
    p.register(fd, events)
    res = p.poll(milliseconds)
    if not res:
        return 0
    revents = res[0][1]
    ret = 0
    if revents & select.POLLIN:
        ret |= AE_READABLE
    if revents & select.POLLOUT:
        ret |= AE_WRITABLE
    if revents & (select.POLLERR | select.POLLHUP):
        ret |= AE_WRITABLE
    return ret
