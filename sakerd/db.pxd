# Cython declarations for db.py (pure-Python mode: the .py is the source).

from sakerd.server_h cimport Server

cdef Server server


cdef class Db:
    cdef public long long id, avg_ttl, next_scan_id
    cdef public dict dict, expires, scans, watched_keys, blocking_keys, ready_keys

    cpdef bint expire_if_needed(self, key)
    cpdef lookup(self, key)
    cpdef lookup_read(self, key)
    cpdef lookup_write(self, key)


cpdef signal_modified_key(c, Db db, key)
