# Cython declarations for ae.py (pure-Python mode: the .py is the source).

cimport cython
from cpython.exc cimport PyErr_CheckSignals, PyErr_SetFromErrno
from libc.errno cimport EINTR, errno as c_errno   # ae.py imports Python's errno
from libc.math cimport ceil

cdef bint COMPILED


cdef extern from "sys/epoll.h" nogil:
    ctypedef union epoll_data_t:
        int fd
    cdef struct epoll_event:
        unsigned int events
        epoll_data_t data
    int epoll_wait(int epfd, epoll_event *events, int maxevents, int timeout)
    enum: EPOLLIN
    enum: EPOLLOUT
    enum: EPOLLERR
    enum: EPOLLHUP

# Filled and read within one epoll_poll() call: no Python code runs in
# between, so a nested loop (a busy script's) cannot overwrite it.
cdef epoll_event fired_events[1024]


cdef inline list epoll_poll(int epfd, object timeout):
    """EpollBackend.poll() for the compiled build: epoll_wait(2) into a C
    array, each fired descriptor packed as fd << 2 | mask, with
    aeApiPoll's translation (IN readable, OUT writable, ERR and HUP both;
    AE_READABLE is 1 and AE_WRITABLE 2). The wait releases the GIL, as
    select.epoll.poll() does. The timeout rounds up to a millisecond, as
    there; EINTR runs the Python signal handlers and returns nothing
    fired (the loop simply turns again). More than 1024 ready descriptors
    are reported by the next calls (epoll is level-triggered)."""
    cdef int ms = -1
    cdef int n, i, mask
    cdef unsigned int ev
    cdef double t
    cdef list out = []
    if timeout is not None:
        t = ceil(timeout * 1000.0)
        ms = 0 if t < 0 else 2147483647 if t > 2147483647 else <int>t
    with nogil:
        n = epoll_wait(epfd, fired_events, 1024, ms)
    if n < 0:
        if c_errno == EINTR:
            PyErr_CheckSignals()
            return out
        PyErr_SetFromErrno(OSError)
    for i in range(n):
        ev = fired_events[i].events
        mask = 0
        if ev & EPOLLIN:
            mask |= 1
        if ev & EPOLLOUT:
            mask |= 2
        if ev & (EPOLLERR | EPOLLHUP):
            mask |= 3
        out.append(fired_events[i].data.fd << 2 | mask)
    return out

cdef class FileEvent:
    cdef public int mask
    cdef public object rfile_proc, wfile_proc, client_data


cdef class EventLoop:
    cdef public object api, before_sleep, after_sleep
    cdef public int setsize, maxfd, flags
    cdef public list events, time_events
    cdef public long long time_event_next_id
    cdef public bint stopped

    @cython.locals(fe=FileEvent)
    cpdef int create_file_event(self, int fd, int mask, proc, client_data=*) except? -1
    @cython.locals(fe=FileEvent)
    cpdef delete_file_event(self, int fd, int mask)
    @cython.locals(fe=FileEvent, processed=int, fired_count=int, invert=int, fd=int, mask=int,
                   readable=int, writable=int, barrier=int, events=list, item=long)
    cpdef int process_events(self, int flags) except? -1
