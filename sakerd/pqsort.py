"""The sorts under GEORADIUS's COUNT: Redis's pqsort.c and glibc's qsort.

Equal distances (the same point added twice, or a point and its twin
across the antimeridian) leave the order of a reply to the sort's
algorithm, so both are ported as C runs them:

- pqsort(): Redis's partial quicksort (Bentley & McIlroy's qsort from
  NetBSD, recursing only into the parts that overlap [lrange, rrange]),
  used when COUNT keeps fewer items than were found. It is not stable.
- qsort(): glibc 2.36's qsort on Redis's 40-byte geoPoints: a top-down
  merge sort (msort, indirect above 32 bytes), which is stable. Python's
  sort gives the same order whenever the comparator is consistent; only
  a NaN distance (the haversine of two near-antipodal points) makes it
  inconsistent, and then the merge itself is run.

cmp(a, b) returns <0, 0 or >0 as C comparators do.
"""


def _med3(v, a, b, c, cmp):
    if cmp(v[a], v[b]) < 0:
        if cmp(v[b], v[c]) < 0:
            return b
        return c if cmp(v[a], v[c]) < 0 else a
    if cmp(v[b], v[c]) > 0:
        return b
    return a if cmp(v[a], v[c]) < 0 else c


def _vecswap(v, i, j, n):
    for k in range(n):
        v[i + k], v[j + k] = v[j + k], v[i + k]


def _outside(lo, n, lrange, rrange):
    """Whether elements [lo, lo + n) are all before or all after [lrange, rrange]."""
    return (lrange < lo and rrange < lo) or (lrange >= lo + n and rrange >= lo + n)


def _partition(v, a, n, cmp):
    """One step of _pqsort() on v[a:a + n] (n >= 7): the two parts still to
    sort, (start, length) each, as C leaves them."""
    pm = a + n // 2
    if n > 7:
        pl = a
        pn = a + n - 1
        if n > 40:
            d = n // 8
            pl = _med3(v, pl, pl + d, pl + 2 * d, cmp)
            pm = _med3(v, pm - d, pm, pm + d, cmp)
            pn = _med3(v, pn - 2 * d, pn - d, pn, cmp)
        pm = _med3(v, pl, pm, pn, cmp)
    v[a], v[pm] = v[pm], v[a]
    pa = pb = a + 1
    pc = pd = a + n - 1
    while True:
        while pb <= pc:
            r = cmp(v[pb], v[a])
            if r > 0:
                break
            if r == 0:
                v[pa], v[pb] = v[pb], v[pa]
                pa += 1
            pb += 1
        while pb <= pc:
            r = cmp(v[pc], v[a])
            if r < 0:
                break
            if r == 0:
                v[pc], v[pd] = v[pd], v[pc]
                pd -= 1
            pc -= 1
        if pb > pc:
            break
        v[pb], v[pc] = v[pc], v[pb]
        pb += 1
        pc -= 1
    pn = a + n
    r = min(pa - a, pb - pa)
    _vecswap(v, a, pb - r, r)
    r = min(pd - pc, pn - pd - 1)
    _vecswap(v, pb, pn - r, r)
    return (a, pb - pa), (pn - (pd - pc), pd - pc)


def _insertion_sort(v, a, n, cmp):
    for pm in range(a + 1, a + n):
        pl = pm
        while pl > a and cmp(v[pl - 1], v[pl]) > 0:
            v[pl], v[pl - 1] = v[pl - 1], v[pl]
            pl -= 1


def _pqsort(v, n, cmp, lrange, rrange):
    """C recurses into the first part and loops on the second; the parts
    are disjoint, so the order they are sorted in changes nothing, and a
    stack here keeps a crafted input from exhausting Python's recursion."""
    todo = [(0, n)]
    while todo:
        a, n = todo.pop()
        if n < 7:
            _insertion_sort(v, a, n, cmp)
            continue
        for start, length in _partition(v, a, n, cmp):
            if length > 1 and not _outside(start, length, lrange, rrange):
                todo.append((start, length))


def pqsort(v, cmp, lrange, rrange):
    """Sort v in place enough that [lrange, rrange] holds what a full sort
    would put there, in order (Redis's pqsort())."""
    _pqsort(v, len(v), cmp, lrange, rrange)


def msort(v, cmp):
    """glibc's msort_with_tmp(): a new list, v sorted (stable)."""
    n = len(v)
    if n <= 1:
        return list(v)
    n1 = n // 2
    left = msort(v[:n1], cmp)
    right = msort(v[n1:], cmp)
    out = []
    i = j = 0
    while i < len(left) and j < len(right):
        if cmp(left[i], right[j]) <= 0:
            out.append(left[i])
            i += 1
        else:
            out.append(right[j])
            j += 1
    out.extend(left[i:])
    out.extend(right[j:])
    return out
