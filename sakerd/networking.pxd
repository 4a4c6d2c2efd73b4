# Cython declarations for networking.py (pure-Python mode: the .py is the
# source). Only the types of modules below this one are cimported: a
# cimport imports its module when this one is initialised.

cimport cython
from sakerd.resp cimport RequestReader
from sakerd.server_h cimport Command, Server

cdef Server server


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
