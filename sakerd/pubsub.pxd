# Cython declarations for pubsub.py (pure-Python mode: the .py is the
# source). networking.py imports this module, so Client is not cimported
# here (a cimport imports its module first).

from sakerd.server_h cimport Server

cdef Server server
