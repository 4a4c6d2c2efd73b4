# Cython declarations for server.py (pure-Python mode: the .py is the
# source). process_command and call type their client and command.

cimport cython
from sakerd.networking cimport Client
from sakerd.server_h cimport Command, Server

cdef Server server


@cython.locals(cmd=Command, arity=cython.longlong, flags=cython.longlong,
               errors=cython.longlong, end=cython.longlong, ns=cython.longlong)
cpdef long long process_command(Client c, argv, long long clock=*) except? -1
@cython.locals(errors=cython.longlong, clock=cython.longlong, ns=cython.longlong)
cpdef call(Client c, Command cmd)
cpdef reject_command(Client c, Command cmd, msg)
