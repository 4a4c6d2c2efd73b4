"""What the write hooks cost a plain SET and GET, in process (no sockets).

    PYTHONPATH=. python bench/hooks_cost.py            # this tree
    PYTHONPATH=<older tree> python bench/hooks_cost.py # the same, before the hooks

Runs server.process_command() on one client, as a pipeline does, for SET
and GET of 1,000 keys, and prints ns per command: the median of --rounds
rounds of --n commands each, and the minimum. Time is this thread's CPU
time (thread_time), not the wall clock: on a loaded machine waiting for a
core does not count. With --watch, another client WATCHes a key
nobody writes (the db's watched_keys is then not empty, so every SET takes
the WATCH branch of signal_modified_key). Compare the two trees' figures:
the difference is what the hooks (db.signal_modified_key, the MULTI test
in process_command, the ready-keys test after each command) add.
"""

import argparse
import os
import socket
import statistics
import sys
import time


def setup():
    from sakerd import config as configmod, server as servermod
    from sakerd.networking import Client
    cfg = configmod.Config()
    cfg.port = 0
    cfg.logfile = os.devnull
    err = servermod.init_server(cfg)
    assert err is None, err
    # The shipped default user may only PING; this measures the open one.
    from sakerd.acl import users
    assert users.set_user(b"default", [b"on", b"nopass", b"~*", b"&*", b"+@all"]) is None
    a, b = socket.socketpair()
    c = Client(a, a.fileno())
    from sakerd.server_h import server
    server.clients[c.id] = c
    return server, c, b


def run(srv, c, argvs, n):
    process = srv.process_command
    srv.current_client = c
    m = len(argvs)
    t0 = time.thread_time_ns()
    clock = 0
    for i in range(n):
        clock = process(c, argvs[i % m], clock)
        if len(c.buf) > 1 << 16:
            c.buf.clear()
    dt = time.thread_time_ns() - t0
    c.buf.clear()
    return dt / n


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20_000)
    ap.add_argument("--rounds", type=int, default=31)
    ap.add_argument("--watch", action="store_true",
                    help="another client watches a key nobody writes")
    args = ap.parse_args()
    srv, c, _peer = setup()
    if args.watch:
        from sakerd.networking import Client
        a, _b = socket.socketpair()
        w = Client(a, a.fileno())
        srv.current_client = w
        srv.process_command(w, [b"WATCH", b"unrelated"])
    sets = [[b"SET", b"key:%d" % i, b"xxx"] for i in range(1000)]
    gets = [[b"GET", b"key:%d" % i] for i in range(1000)]
    out = {}
    for name, argvs in (("SET", sets), ("GET", gets)):
        run(srv, c, argvs, args.n // 4)     # warm up
        times = [run(srv, c, argvs, args.n) for _ in range(args.rounds)]
        out[name] = (statistics.median(times), min(times))
    print("python %s, %s: SET %.0f ns (min %.0f), GET %.0f ns (min %.0f) per command%s" % (
        sys.version.split()[0], os.path.dirname(os.path.dirname(
            os.path.abspath(sys.modules["sakerd"].__file__))),
        out["SET"][0], out["SET"][1], out["GET"][0], out["GET"][1],
        " (a key is watched)" if args.watch else ""))


if __name__ == "__main__":
    main()
