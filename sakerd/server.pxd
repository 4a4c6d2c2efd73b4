# Cython declarations for server.py (pure-Python mode: the .py is the
# source). process_commands, process_command and call type their client
# and command.

cimport cython
from posix.time cimport clock_gettime, timespec, CLOCK_MONOTONIC
from sakerd.networking cimport Client
from sakerd.server_h cimport Command, Server

cdef Server server
cdef bint COMPILED


cdef inline long long monotonic_ns() noexcept:
    """time.perf_counter_ns() without its int object (server.py calls it
    where COMPILED): CLOCK_MONOTONIC, the clock perf_counter_ns reads."""
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return ts.tv_sec * 1000000000 + ts.tv_nsec

# The flags process_command tests, as C integers (server_h.py's values).
cdef long long CLIENT_BLOCKED, CLIENT_CLOSE_AFTER_REPLY, CLIENT_CLOSE_ASAP, CLIENT_MULTI
cdef long long CLIENT_PUBSUB, CLIENT_REPLY_SKIP, CLIENT_REPLY_SKIP_NEXT, CLIENT_SCRIPT
cdef long long CMD_ADMIN, CMD_ALLOW_BUSY, CMD_ALLOW_SUBSCRIBED, CMD_FANOUT, CMD_NO_AUTH
cdef long long CMD_NO_MULTI, CMD_SKIP_MONITOR, CMD_SKIP_SLOWLOG
cdef long long _AFTER_COMMAND_FLAGS, _CLOSING_FLAGS, _PUBSUB_OR_MULTI, _SKIP_FLAGS


@cython.locals(arity=cython.longlong, flags=cython.longlong,
               errors=cython.longlong, end=cython.longlong, ns=cython.longlong)
cpdef long long process_command(Client c, argv, long long clock=*, Command cmd=*) except? -1
@cython.locals(clock=cython.longlong, flags=cython.longlong, version=cython.longlong,
               known=Command, name=bytes, first=bytes)
cpdef bint process_commands(Client c, list cmds) except -1
@cython.locals(errors=cython.longlong, clock=cython.longlong, ns=cython.longlong)
cpdef call(Client c, Command cmd)
cpdef reject_command(Client c, Command cmd, msg)
