"""What one command of a 16-request pipeline costs the server, in process.

    PYTHONPATH=. python bench/pipeline_cost.py             # this tree (compiled if built)
    PYTHONPATH=<pure copy> python bench/pipeline_cost.py   # the same, pure Python

Runs the server's whole path for a pipeline on one client over a socket
pair, as the event loop would: read_query_from_client() (recv, parse,
process_command for each request, replies queued), then
handle_clients_with_pending_writes() (send); only that is timed, not the
peer sending the pipeline and draining the replies. No epoll: the figure
is the server's own cost per command, its recv and send included. Prints ns per command for PING, SET
and GET: the median of --rounds rounds of --n pipelines each, and the
minimum, in this thread's CPU time (thread_time: waiting for a core on a
loaded machine does not count). Which build ran is printed too.
"""

import argparse
import os
import socket
import statistics
import sys
import time

PIPELINE = 16


def setup():
    from sakerd import config as configmod, server as servermod
    from sakerd.networking import Client
    try:
        from sakerd.server_h import server
    except ImportError:     # a tree from before server_h.py (bench/run.py --base)
        from sakerd.server import server
    cfg = configmod.Config()
    cfg.port = 0
    cfg.logfile = os.devnull
    # Redis's open default user, as bench/run.py starts sakerd.
    cfg.user_lines.append((["default", "on", "nopass", "~*", "&*", "+@all"], "bench"))
    err = servermod.init_server(cfg)
    assert err is None, err
    a, b = socket.socketpair()
    a.setblocking(False)
    c = Client(a, a.fileno())
    server.clients[c.id] = c
    return server, c, b


def encode(*args):
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)


def run(c, peer, batch, n):
    from sakerd import networking
    read, flush = networking.read_query_from_client, networking.handle_clients_with_pending_writes
    clock = time.thread_time_ns
    spent = 0
    for _ in range(n):
        peer.sendall(batch)     # the client's side: not counted
        t0 = clock()
        read(None, c.fd, c, 1)
        flush()
        spent += clock() - t0
        peer.recv(1 << 16)
    return spent / (n * PIPELINE)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000, help="pipelines per round")
    ap.add_argument("--rounds", type=int, default=15)
    args = ap.parse_args()
    _srv, c, peer = setup()
    workloads = (("PING", encode(b"PING") * PIPELINE),
                 ("SET", encode(b"SET", b"key:__rand_int__", b"xxx") * PIPELINE),
                 ("GET", encode(b"GET", b"key:__rand_int__") * PIPELINE))
    out = []
    for name, batch in workloads:
        run(c, peer, batch, args.n // 4)    # warm up
        times = [run(c, peer, batch, args.n) for _ in range(args.rounds)]
        out.append("%s %.0f ns (min %.0f)" % (name, statistics.median(times), min(times)))
    import sakerd.networking
    build = "compiled" if sakerd.networking.__file__.endswith((".so", ".pyd")) else "pure"
    print("python %s, %s (%s): %s per command in a %d-request pipeline" % (
        sys.version.split()[0], os.path.dirname(os.path.dirname(
            os.path.abspath(sys.modules["sakerd"].__file__))), build, ", ".join(out), PIPELINE))


if __name__ == "__main__":
    main()
