# Cython declarations for resp.py (pure-Python mode: the .py is the source).

cimport cython

cdef class RequestReader:
    cdef public bytes buf
    cdef public Py_ssize_t pos, chunks_len, need, argv_len_sum, multibulklen, max_bulk_len
    cdef public object bulklen      # -1, or the length of the bulk being read
    cdef public list chunks
    cdef public object argv, error

    cpdef bint feed(self, data)
    cpdef Py_ssize_t pending(self)
    cpdef reset(self)
    @cython.locals(pos=Py_ssize_t, end=Py_ssize_t, cr=Py_ssize_t, mbl=Py_ssize_t,
                   fast=bint, argv=list)
    cpdef list parse(self, bint auth_required=*)


@cython.locals(p=Py_ssize_t, n=Py_ssize_t)
cpdef Py_ssize_t take_canonical(bytes buf, Py_ssize_t pos, list out)
@cython.locals(end=Py_ssize_t, p=Py_ssize_t, n=Py_ssize_t, start=Py_ssize_t,
               size=Py_ssize_t, ch=cython.uchar, argv=list, data=cython.p_uchar)
cpdef Py_ssize_t scan_canonical(bytes buf, Py_ssize_t pos, list out) except -1
