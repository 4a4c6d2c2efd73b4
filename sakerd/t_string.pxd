# Cython declarations for t_string.py (pure-Python mode: the .py is the
# source): GET and SET, the commonest commands, type their client and db.

cimport cython
from sakerd.db cimport Db
from sakerd.networking cimport Client
from sakerd.server_h cimport Server

cdef Server server


@cython.locals(db=Db)
cpdef get_command(Client c)
@cython.locals(db=Db, expires=dict)
cpdef set_command(Client c)
