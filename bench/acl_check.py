"""What the ACL check costs per command, in process (no sockets).

    python bench/acl_check.py [--rounds 7]

Builds the server in this process (config, command table, users), makes one
client per kind of user and feeds each a 16-request pipeline of GET or SET
through networking.process_input_buffer(), the path a socket's bytes take.
The users, timed in interleaved rounds (median of the rounds, µs per
command):

* open:       user default on nopass ~* &* +@all (unrestricted: the hot path
              only tests c.user.restricted)
* commands:   +@all -@exec ~* &*  (restricted: one bit test per command)
* keys:       +@all -@exec ~k* &* (and every key matched against ~k*)

The replies are dropped after each pipeline; the db is the real keyspace.
"""

import argparse
import os
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from sakerd import acl, config as configmod  # noqa: E402
from sakerd.server import init_server  # noqa: E402
from sakerd.server_h import server  # noqa: E402

USERS = {
    "open": None,
    "commands": [b"on", b"nopass", b"+@all", b"-@exec", b"~*", b"&*"],
    "keys": [b"on", b"nopass", b"+@all", b"-@exec", b"~k*", b"&*"],
}
PIPELINE = 16


def pipeline(*args):
    one = b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)
    return one * PIPELINE


def setup():
    cfg, errors = configmod.load_server_config(None, [
        "port 0", 'unixsocket ""', "user default on nopass ~* &* +@all", "logfile /dev/null"])
    assert not errors, errors
    assert init_server(cfg) is None
    from sakerd.networking import Client
    clients = {}
    for name, rules in USERS.items():
        c = Client(None, -1)
        if rules is not None:
            acl.users.set_user(name.encode(), rules)
            c.user = acl.users.get(name.encode())
        clients[name] = c
    return clients


def run_once(c, data, n):
    from sakerd.networking import process_input_buffer
    reader = c.reader
    t = time.perf_counter_ns()
    for _ in range(n):
        reader.feed(data)
        process_input_buffer(c)
        c.buf = bytearray()
    return (time.perf_counter_ns() - t) / (n * PIPELINE) / 1000


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--n", type=int, default=3000)
    args = ap.parse_args()
    clients = setup()
    workloads = {"GET k1": pipeline(b"GET", b"k1"), "SET k1 v": pipeline(b"SET", b"k1", b"v")}
    results = {(w, u): [] for w in workloads for u in clients}
    for r in range(args.rounds):
        order = list(clients)
        order = order[r % len(order):] + order[:r % len(order)]
        for w, data in workloads.items():
            for u in order:
                results[(w, u)].append(run_once(clients[u], data, args.n))
    print("| workload | open (unrestricted) | +@all -@exec | +@all -@exec ~k* |")
    print("|---|---|---|---|")
    for w in workloads:
        med = [statistics.median(results[(w, u)]) for u in clients]
        print("| %s | %.3f µs | %.3f µs (+%.0f ns) | %.3f µs (+%.0f ns) |" % (
            w, med[0], med[1], (med[1] - med[0]) * 1000, med[2], (med[2] - med[0]) * 1000))


if __name__ == "__main__":
    main()
