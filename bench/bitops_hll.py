"""What the bitmap and HyperLogLog commands cost, in process (no sockets).

    PYTHONPATH=. python bench/bitops_hll.py [--rounds 7] [--n 2000]

Runs server.process_command() on one client (hooks_cost.py's set-up) and
prints µs of this thread's CPU time per command, the median of --rounds
rounds of --n commands: bit commands on a 1 KB and a 1 MB string (a bit
write copies the string: `bytes` are immutable), PFADD into a sparse and a
dense HLL, PFCOUNT with the cache stale (every PFADD makes it so) and
valid, and PFMERGE of two dense HLLs.
"""

import argparse
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hooks_cost  # noqa: E402  (bench/hooks_cost.py: the in-process server and client)


def workloads():
    kb, mb = b"\x5a" * 1024, b"\x5a" * (1 << 20)
    elements = [b"e%d" % i for i in range(5000)]
    return [
        ("SETBIT 1 KB", [(b"SET", b"k", kb)], [[b"SETBIT", b"k", b"%d" % (i * 7 % 8192), b"%d" % (i & 1)]
                                               for i in range(512)]),
        ("SETBIT 1 MB", [(b"SET", b"k", mb)], [[b"SETBIT", b"k", b"%d" % (i * 7919), b"%d" % (i & 1)]
                                               for i in range(512)]),
        ("GETBIT 1 MB", [(b"SET", b"k", mb)], [[b"GETBIT", b"k", b"%d" % (i * 7919)]
                                               for i in range(512)]),
        ("BITCOUNT 1 MB", [(b"SET", b"k", mb)], [[b"BITCOUNT", b"k"]]),
        ("BITCOUNT 1 MB BIT range", [(b"SET", b"k", mb)],
         [[b"BITCOUNT", b"k", b"3", b"8000000", b"BIT"]]),
        ("BITPOS 1 MB (at the end)", [(b"SET", b"k", bytes(1 << 20) + b"\x01")],
         [[b"BITPOS", b"k", b"1"]]),
        ("BITFIELD INCRBY i16 1 KB", [(b"SET", b"k", kb)],
         [[b"BITFIELD", b"k", b"INCRBY", b"i16", b"#%d" % (i % 500), b"7"] for i in range(500)]),
        ("PFADD sparse, 1 element", [(b"DEL", b"h")], [[b"PFADD", b"h", e] for e in elements[:1000]]),
        ("PFADD dense, 1 element", [(b"PFADD", b"h", *elements)],
         [[b"PFADD", b"h", b"x%d" % i] for i in range(1000)]),
        ("PFCOUNT dense, cache stale", [(b"PFADD", b"h", *elements)],
         [[b"PFADD", b"h", b"y%d" % i] if i % 2 else [b"PFCOUNT", b"h"] for i in range(1000)]),
        ("PFCOUNT cached", [(b"PFADD", b"h", *elements), (b"PFCOUNT", b"h")], [[b"PFCOUNT", b"h"]]),
        ("PFMERGE 2 dense", [(b"PFADD", b"h", *elements), (b"PFADD", b"g", *elements[::-1])],
         [[b"PFMERGE", b"m", b"h", b"g"]]),
    ]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    srv, c, _peer = hooks_cost.setup()
    from sakerd import acl
    acl.users.set_user(b"bench", [b"on", b"nopass", b"+@all", b"~*", b"&*"])
    c.user = acl.users.get(b"bench")
    srv.current_client = c
    print("%-28s %10s %10s" % ("command", "median µs", "min µs"))
    for name, setup, argvs in workloads():
        times = []
        for _ in range(args.rounds):
            srv.process_command(c, [b"FLUSHALL"], 0)
            for cmd in setup:
                srv.process_command(c, list(cmd), 0)
            assert not c.buf.startswith(b"-"), bytes(c.buf[:100])
            c.buf.clear()
            times.append(hooks_cost.run(srv, c, argvs, args.n) / 1000)
        print("%-28s %10.1f %10.1f" % (name, statistics.median(times), min(times)))


if __name__ == "__main__":
    main()
