# Cython declarations for ae.py (pure-Python mode: the .py is the source).

cimport cython

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
                   readable=int, writable=int, barrier=int, events=list)
    cpdef int process_events(self, int flags) except? -1
