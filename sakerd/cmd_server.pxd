# Cython declarations for cmd_server.py (pure-Python mode: the .py is the
# source): PING, the commonest of its commands, types its client.

from sakerd.networking cimport Client
from sakerd.server_h cimport Server

cdef Server server


cpdef ping_command(Client c)
