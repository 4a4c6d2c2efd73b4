"""Side-by-side scripts: the same steps on several connections, to sakerd and
to redis-server, and the bytes each connection received, compared.

A script is one step per line:

    a: SET k v          a sends the command and reads its reply
    b> BLPOP q 0        b sends it and does not wait (it blocks)
    b<                  b reads one reply now
    a: CLIENT UNBLOCK {b} ERROR    {b} is connection b's client id
    ~ 2                 wait until INFO says 2 clients are blocked

Connections (one lowercase letter each) are opened on first use, each in
RESP2 or in the protocol asked for (HELLO 3). Arguments are split on spaces;
`''` is an empty argument and `\\s` a space inside one.
"""

from helpers import RawConn, wait_for


def parse_script(text):
    steps = []
    for line in text.strip().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("~"):
            steps.append(("~", "~", [line[1:].strip()]))
            continue
        name, kind, rest = line[0], line[1], line[2:].strip()
        assert kind in ":><", line
        args = [a.replace("\\s", " ") if a != "''" else "" for a in rest.split()]
        steps.append((name, kind, args))
    return steps


class Side:
    """The connections of one server while a script runs."""

    def __init__(self, port, protocol):
        self.port = port
        self.protocol = protocol
        self.conns = {}
        self.ids = {}

    def conn(self, name):
        c = self.conns.get(name)
        if c is None:
            c = self.conns[name] = RawConn(("127.0.0.1", self.port))
            if self.protocol == 3:
                assert c.call("HELLO", "3").startswith(b"%")
            self.ids[name] = c.call("CLIENT", "ID")[1:-2].decode()
        return c

    def close(self):
        for c in self.conns.values():
            c.close()


def run_script(port, text, protocol=2):
    """[(step, reply bytes)] of every reply read by the script."""
    side = Side(port, protocol)
    out = []
    try:
        steps = parse_script(text)
        for name, _, _ in steps:
            side.conn(name)
        for name, kind, args in steps:
            c = side.conn(name)
            if kind == "~":
                wait_for(lambda: b"blocked_clients:%s\r\n" % args[0].encode() in
                         c.call("INFO", "clients"), what="%s blocked clients" % args[0])
                continue
            args = [a.format(**side.ids) if "{" in a else a for a in args]
            label = "%s%s %s" % (name, kind, " ".join(args))
            if kind in ":>":
                c.send(_encode(args))
            if kind in ":<":
                out.append((label, c.read_wire()))
    finally:
        side.close()
    return out


def _encode(args):
    args = [a.encode() for a in args]
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)


def mismatches(saker_port, redis_port, text, protocol=2):
    """The steps whose replies differ: [] when sakerd answers like redis-server.

    The labels carry client ids, which differ between the servers: the
    comparison is on the replies, in order."""
    ours = run_script(saker_port, text, protocol)
    theirs = run_script(redis_port, text, protocol)
    assert len(ours) == len(theirs)
    return [(label, mine, real) for (label, mine), (_, real) in zip(ours, theirs) if mine != real]
