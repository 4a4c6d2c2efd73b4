# Cython declarations for networking.py (pure-Python mode: the .py is the
# source). Only the types of modules below this one are cimported: a
# cimport imports its module when this one is initialised.

cimport cython
from cpython.bytearray cimport PyByteArray_AS_STRING, PyByteArray_GET_SIZE, PyByteArray_Resize
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.exc cimport PyErr_SetFromErrno
from libc.string cimport memcpy
from sakerd.resp cimport RequestReader
from sakerd.server_h cimport Command, Server

cdef Server server
cdef bint COMPILED
cdef bytes CRLF
# Flags tested on the reply path, as C integers (server_h.py's values;
# modules that need them import them from there, not from here).
cdef long long CLIENT_CLOSE_ASAP, CLIENT_MULTI, CLIENT_NO_REPLY_MASK, CLIENT_PENDING_WRITE
cdef long long _CLOSING_FLAGS


cdef extern from "sys/socket.h":
    ssize_t c_recv "recv" (int fd, void *buf, size_t n, int flags)
    ssize_t c_send "send" (int fd, const void *buf, size_t n, int flags)
    enum: MSG_NOSIGNAL

# One buffer for every read: the loop is single threaded (PROTO_IOBUF_LEN).
cdef char recv_buffer[16384]


cdef inline bytes fd_recv(int fd):
    """sock.recv(PROTO_IOBUF_LEN) for the compiled build: recv(2) into one
    static buffer, then a bytes of what came, without the 16 KiB bytes
    object shrunk to size, the argument parsing and the GIL's release and
    retake of socket.recv (the socket is non-blocking: the call never
    waits). Errors raise OSError as socket.recv does (BlockingIOError for
    EAGAIN, InterruptedError for EINTR)."""
    cdef ssize_t n = c_recv(fd, recv_buffer, sizeof(recv_buffer), 0)
    if n < 0:
        PyErr_SetFromErrno(OSError)
    return PyBytes_FromStringAndSize(recv_buffer, n)


cdef inline Py_ssize_t fd_send(int fd, bytearray buf) except -1:
    """sock.send(buf) for the compiled build: send(2) straight from the
    buffer (MSG_NOSIGNAL: a closed peer gives EPIPE, never SIGPIPE)."""
    cdef ssize_t n = c_send(fd, PyByteArray_AS_STRING(buf), PyByteArray_GET_SIZE(buf),
                            MSG_NOSIGNAL)
    if n < 0:
        PyErr_SetFromErrno(OSError)
    return n


cdef inline int buf_append(bytearray buf, bytes data) except -1:
    """buf += data, without the buffer protocol: one resize, one memcpy
    (the reply path's append; networking.py calls it where COMPILED)."""
    cdef Py_ssize_t n = PyByteArray_GET_SIZE(buf)
    cdef Py_ssize_t k = PyBytes_GET_SIZE(data)
    PyByteArray_Resize(buf, n + k)
    memcpy(PyByteArray_AS_STRING(buf) + n, PyBytes_AS_STRING(data), k)
    return 0


cdef inline int buf_append_bulk(bytearray buf, bytes header, bytes data) except -1:
    """buf += header + data + CRLF: a bulk string with one resize."""
    cdef Py_ssize_t n = PyByteArray_GET_SIZE(buf)
    cdef Py_ssize_t h = PyBytes_GET_SIZE(header)
    cdef Py_ssize_t k = PyBytes_GET_SIZE(data)
    cdef char *p
    PyByteArray_Resize(buf, n + h + k + 2)
    p = PyByteArray_AS_STRING(buf) + n
    memcpy(p, PyBytes_AS_STRING(header), h)
    memcpy(p + h, PyBytes_AS_STRING(data), k)
    p[h + k] = 13
    p[h + k + 1] = 10
    return 0


cdef class Client:
    cdef public long long id, flags, ctime, last_interaction, reply_bytes_sent
    cdef public long long obuf_soft_limit_reached_time
    cdef public int fd, resp, events_installed
    cdef public bint authenticated, peer_is_local
    cdef public object sock, send, name, addr, laddr, argv, db, user, user_data, peer_uid
    cdef public object bstate, pending_argvs, tracking_prefixes
    cdef public long long tracking_redirection
    cdef public Command lastcmd
    cdef public RequestReader reader
    cdef public bytearray buf
    cdef public dict pubsub_channels, pubsub_patterns, pubsub_shard_channels
    cdef public list mstate, watched_keys

    cpdef add_reply(self, data, long long silenced_by=*)
    @cython.locals(n=Py_ssize_t)
    cpdef add_reply_bulk(self, b)
    cpdef add_reply_bulk_or_null(self, b)
    cpdef add_reply_long_long(self, n)
    cpdef add_reply_array_len(self, n)
    cpdef add_reply_null(self)
    cpdef add_reply_error(self, msg)


cpdef read_query_from_client(el, fd, Client c, mask)
@cython.locals(reader=RequestReader, flags=cython.longlong, clock=cython.longlong,
               auth_required=bint)
cpdef process_input_buffer(Client c, pending=*)
@cython.locals(total=Py_ssize_t, n=Py_ssize_t)
cpdef bint write_to_client(Client c, bint handler_installed)
@cython.locals(c=Client)
cpdef handle_clients_with_pending_writes()
cpdef free_client(Client c)
cpdef free_client_async(Client c)
cpdef check_output_buffer_limits(Client c)
