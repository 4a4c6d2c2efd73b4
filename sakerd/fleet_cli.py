"""The operator's side of fleet mode: `sakerd fleet hosts|run|keygen`.

It talks to the central Redis with redis-py, with the same keys as the
agents (SPEC §12, fleet.py), so that anything it does can also be done with
redis-cli (README "Fleet mode").
"""

import argparse
import base64
import json
import os
import secrets
import sys
import time

from . import fleet_target
from .fleet import JOBS, SEEN, host_key, ret_key, signed_message

FINAL = ("ok", "err", "expired", "interrupted")
DEFAULT_REDIS = "redis://127.0.0.1:6379/0"


def connect(urls):
    import redis
    if len(urls) > 1:
        from redis.cluster import RedisCluster, ClusterNode
        from redis.connection import parse_url
        first = parse_url(urls[0])
        nodes = [ClusterNode(parse_url(u)["host"], parse_url(u).get("port", 6379)) for u in urls]
        return RedisCluster(startup_nodes=nodes, username=first.get("username"),
                            password=first.get("password"), decode_responses=True)
    return redis.Redis.from_url(urls[0], decode_responses=True)


def hosts(r):
    """[(name, alive, last seen unix s, tags)] of every host seen, by name."""
    out = []
    for name, score in r.zrange(SEEN, 0, -1, withscores=True):
        alive = r.exists(host_key(name, "alive")) == 1
        tags = r.hget(host_key(name, "info"), "tags") or ""
        out.append((name, alive, int(score), tags))
    return sorted(out)


def targeted(host_list, tree):
    return [h for h in host_list
            if fleet_target.matches(tree, h[0].encode(), fleet_target.parse_tags(h[3].split()))]


def cmd_hosts(args):
    tree = fleet_target.parse(args.target)
    r = connect(args.redis)
    now = time.time()
    for name, alive, seen, tags in targeted(hosts(r), tree):
        print("%-24s %-5s %s (%ds ago) %s" % (name, "alive" if alive else "down",
                                              time.strftime("%Y-%m-%d %H:%M:%S",
                                                            time.localtime(seen)),
                                              now - seen, tags))
    return 0


def load_private_key(path):
    from cryptography.hazmat.primitives.serialization import load_pem_private_key
    with open(path, "rb") as f:
        return load_pem_private_key(f.read(), password=None)


def make_job(jid, target, argv, expires, key=None):
    """The fields of a job entry (bytes values), signed when a key is given."""
    fields = {"jid": jid.encode(), "target": target.encode(),
              "cmd": json.dumps(argv).encode(), "expires": b"%d" % expires}
    if key is not None:
        msg = signed_message(fields["jid"], fields["target"], fields["cmd"], fields["expires"])
        fields["sig"] = base64.b64encode(key.sign(msg))
    return fields


def add_job(r, fields):
    """XADD the job, trimming the stream to 24 h (MINID ~)."""
    minid = "%d-0" % ((time.time() - 86400) * 1000)
    return r.xadd(JOBS, fields, minid=minid, approximate=True)


def wait_results(r, jid, expected, timeout, show):
    """{host: (state, reply, ms)} of the final results, waiting until every
    expected host answered or timeout seconds passed."""
    finals = {}
    pos = "0-0"
    deadline = time.monotonic() + timeout
    while not set(expected) <= set(finals):
        left = deadline - time.monotonic()
        if left <= 0:
            break
        reply = r.xread({ret_key(jid): pos}, block=max(1, int(min(left, 1.0) * 1000)))
        for _, entries in reply or []:
            for entry_id, f in entries:
                pos = entry_id
                if f.get("state") in FINAL and f.get("host") not in finals:
                    finals[f["host"]] = (f["state"], f.get("reply"), f.get("ms"))
                    show(f["host"], f["state"], f.get("ms"), f.get("reply"))
    return finals


def cmd_run(args):
    if not args.cmd:
        print("sakerd fleet run: a command is needed", file=sys.stderr)
        return 2
    tree = fleet_target.parse(args.target)
    r = connect(args.redis)
    key = load_private_key(args.key) if args.key else None
    jid = args.jid or "%d-%s" % (time.time(), secrets.token_hex(4))
    expected = [h[0] for h in targeted(hosts(r), tree) if h[1]]
    add_job(r, make_job(jid, args.target, args.cmd, int(time.time() + args.expires), key))

    def show(host, state, ms, reply):
        print("%-24s %-11s %8s ms  %s" % (host, state, ms, reply))
    finals = wait_results(r, jid, expected, args.timeout, show)
    states = [s for s, _, _ in finals.values()]
    missing = [h for h in expected if h not in finals]
    for h in missing:
        print("%-24s %-11s" % (h, "missing"))
    print("job %s: targeted %d, ok %d, err %d, missing %d" % (
        jid, len(expected), states.count("ok"), len(states) - states.count("ok"), len(missing)))
    return 0 if not missing and states.count("ok") == len(states) else 1


def cmd_keygen(args):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives import serialization
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    try:
        fd = os.open(args.out, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except OSError as e:
        print("sakerd fleet keygen: %s: %s" % (args.out, e.strerror), file=sys.stderr)
        return 1
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    pub = key.public_key().public_bytes(serialization.Encoding.Raw,
                                        serialization.PublicFormat.Raw)
    print("%s %s" % (base64.b64encode(pub).decode(), os.path.basename(args.out)))
    print("private key in %s; add the line above to each host's fleet-trusted-keys file" %
          args.out, file=sys.stderr)
    return 0


def parser():
    env = os.environ.get("SAKERD_FLEET_REDIS")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--redis", action="append", metavar="URL",
                        help="the central Redis (repeat for Cluster seeds); default "
                             "$SAKERD_FLEET_REDIS or %s" % DEFAULT_REDIS)
    p = argparse.ArgumentParser(prog="sakerd fleet", description="Steer the hosts of a fleet.")
    sub = p.add_subparsers(dest="what", required=True)
    h = sub.add_parser("hosts", parents=[common], help="hosts seen: alive, last seen, tags")
    h.add_argument("--target", default="*")
    r = sub.add_parser("run", parents=[common], help="add a job, wait for the results")
    r.add_argument("--target", default="*")
    r.add_argument("--timeout", type=float, default=30.0, help="seconds to wait (30)")
    r.add_argument("--expires", type=float, default=300.0,
                   help="seconds after which hosts ignore the job (300)")
    r.add_argument("--key", help="Ed25519 private key (PEM) to sign the job with")
    r.add_argument("--jid", help="the job id (default: time and random)")
    r.add_argument("cmd", nargs=argparse.REMAINDER, help="the command and its arguments")
    k = sub.add_parser("keygen", help="make an Ed25519 key pair for signing jobs")
    k.add_argument("--out", default="fleet.key", help="private key file (fleet.key)")
    p.set_defaults(default_redis=[env] if env else [DEFAULT_REDIS])
    return p


def main(argv):
    args = parser().parse_args(argv)
    if getattr(args, "redis", None) is None:
        args.redis = args.default_redis
    try:
        return {"hosts": cmd_hosts, "run": cmd_run, "keygen": cmd_keygen}[args.what](args)
    except fleet_target.TargetError as e:
        print("sakerd fleet: bad --target: %s" % e, file=sys.stderr)
        return 2
    except Exception as e:  # redis or file errors: one line, not a traceback
        print("sakerd fleet: %s: %s" % (type(e).__name__, e), file=sys.stderr)
        return 1
