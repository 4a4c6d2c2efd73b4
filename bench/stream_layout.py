"""Why t_stream.py keeps entries in nodes: the cost of trimming the head.

    python bench/stream_layout.py

A stream capped at 100,000 entries (XADD ... MAXLEN ~ 100000) trims its
head on every append. Kept as one flat sorted list of IDs (and one of
values), each trim is `del ids[:1]`, a move of the whole list; kept in
nodes of 100 (t_stream.Stream), a trim drops one node per 100 appends.
Prints the cost per append of both, and of a bisect into the flat list
(what a range read starts with either way).
"""

import bisect
import os
import sys
import timeit

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from sakerd import config, db, t_stream  # noqa: E402
from sakerd.server_h import server  # noqa: E402

N = 100000
ROUNDS = 20000


def main():
    server.config = config.Config()
    server.db = [db.Db(0)]
    ids = list(range(N))
    vals = [b"x"] * N
    nxt = [N]

    def flat():
        i = nxt[0]
        nxt[0] += 1
        ids.append(i)
        vals.append(b"x")
        del ids[:1]
        del vals[:1]

    s = t_stream.Stream()
    items = (b"f", b"v")
    for i in range(N):
        s.append(items, (i + 1) << 64)
    nid = [N + 1]

    def nodes_trimmed():
        nid[0] += 1
        s.append(items, nid[0] << 64)
        s.trim(t_stream.TRIM_MAXLEN, N, 0, True, 10000)

    def nodes_untrimmed():
        nid[0] += 1
        s.append(items, nid[0] << 64)

    def us(fn):
        return timeit.timeit(fn, number=ROUNDS) / ROUNDS * 1e6

    print("flat list: append + trim the head to %d:  %8.2f us" % (N, us(flat)))
    print("nodes:     append + MAXLEN ~ %d:          %8.2f us" % (N, us(nodes_trimmed)))
    print("nodes:     append alone:                       %8.2f us" % us(nodes_untrimmed))
    print("flat list: bisect for a range's start:         %8.2f us" %
          us(lambda: bisect.bisect_left(ids, N // 2)))


if __name__ == "__main__":
    main()
