# Cython types for util.py (compiled by setup.py; the .py stays the source).
# string_match() runs for every PUBLISH per pattern subscription, every key
# of KEYS/SCAN MATCH and every ACL key pattern: its scan loop in C integers.
cimport cython

@cython.locals(ntok=Py_ssize_t, nstr=Py_ssize_t, i=Py_ssize_t, t=Py_ssize_t,
               star=Py_ssize_t, mark=Py_ssize_t, tokens=list)
cpdef bint string_match(pattern, string, bint nocase=*)
