"""Side-by-side parity: the same commands to sakerd and redis-server, bytes compared.

A script is lines of commands separated by "|", arguments split on spaces
('' is an empty argument). A command prefixed with "~" has a reply whose
order Redis leaves to its hash table (SMEMBERS of a hash-table set...): its
top-level elements are compared as a sorted list; its type byte and
length still have to match. A command prefixed with "^" is a SCAN-style
reply ([cursor, [elements]]) whose elements are compared as a sorted list.
A command prefixed with "?" is sent to both but only the reply's type
byte, and an aggregate's length, are compared (random replies).
"""

from helpers import RawConn


def script_commands(script):
    out = []
    for line in script.strip().splitlines():
        for cmd in line.split("|"):
            cmd = cmd.strip()
            if not cmd:
                continue
            mode = ""
            if cmd[0] in "~?^":
                mode, cmd = cmd[0], cmd[1:]
            args = [b"" if a == "''" else a.encode() for a in cmd.split(" ") if a]
            out.append((mode, args))
    return out


def split_wire(data):
    """(header line, [element wire bytes]) of one aggregate reply."""
    pos = data.index(b"\r\n") + 2
    head = data[:pos]
    kind = head[:1]
    if kind not in b"*~%>" or head[1:2] == b"-":
        return head, [data[pos:]]
    n = int(head[1:-2]) * (2 if kind == b"%" else 1)
    items = []
    for _ in range(n):
        end = _end_of(data, pos)
        items.append(data[pos:end])
        pos = end
    return head, items


def _end_of(data, pos):
    eol = data.index(b"\r\n", pos)
    kind, n = data[pos:pos + 1], data[pos + 1:eol]
    pos = eol + 2
    if kind in b"$=!":
        n = int(n)
        return pos if n < 0 else pos + n + 2
    if kind in b"*~>%|":
        n = max(0, int(n)) * (2 if kind in b"%|" else 1)
        for _ in range(n):
            pos = _end_of(data, pos)
    return pos


def normalize(mode, reply):
    if reply[:1] not in b"*~%>":
        # Scalars: a random one by its type, any other as its bytes.
        return reply[:1] if mode == "?" else reply
    if mode == "~":
        head, items = split_wire(reply)
        return head, sorted(items)
    if mode == "^":
        head, (cursor, elements) = split_wire(reply)
        return head, cursor, normalize("~", elements)
    if mode == "?":
        return split_wire(reply)[0]
    return reply


def run_parity(port, redis_port, script, protocol=2, setup=()):
    """[(command, ours, redis)] for every reply that differs."""
    ours, theirs = RawConn(("127.0.0.1", port)), RawConn(("127.0.0.1", redis_port))
    try:
        for conn in (ours, theirs):
            if protocol == 3:
                assert conn.call("HELLO", "3").startswith(b"%")
            assert conn.call("FLUSHALL") == b"+OK\r\n"
            for args in setup:
                conn.call(*args)
        mismatches = []
        for mode, args in script_commands(script):
            mine, real = ours.call(*args), theirs.call(*args)
            if normalize(mode, mine) != normalize(mode, real):
                mismatches.append((b" ".join(args), mine, real))
        return mismatches
    finally:
        ours.close()
        theirs.close()


def parity_machine(port, redis_port, templates, keys, members, protocol=2):
    """A hypothesis state machine that sends random commands to both servers.

    templates: (mode, "CMD {k} [{m} ...") pairs; each {k} is drawn from
    keys, each {m} from members, each {n} from small integers. Every reply is compared as run_parity() does; a mismatch fails
    with the command sequence hypothesis shrank it to.
    """
    from hypothesis import strategies as st
    from hypothesis.stateful import RuleBasedStateMachine, rule

    conns = (RawConn(("127.0.0.1", port)), RawConn(("127.0.0.1", redis_port)))
    for conn in conns:
        if protocol == 3:
            assert conn.call("HELLO", "3").startswith(b"%")

    draws = {"{k}": lambda data: data.draw(st.sampled_from(keys)),
             "{m}": lambda data: data.draw(st.sampled_from(members)),
             "{n}": lambda data: str(data.draw(st.integers(-3, 6)))}

    def fill(template, data):
        out = []
        for word in template.split(" "):
            for mark, draw in draws.items():
                while mark in word:
                    word = word.replace(mark, draw(data), 1)
            out.append(word.encode())
        return out

    class Machine(RuleBasedStateMachine):
        def __init__(self):
            super().__init__()
            for conn in conns:
                assert conn.call("FLUSHALL") == b"+OK\r\n"

        @rule(data=st.data(), index=st.integers(0, len(templates) - 1))
        def command(self, data, index):
            mode, template = templates[index]
            args = fill(template, data)
            mine, real = conns[0].call(*args), conns[1].call(*args)
            assert normalize(mode, mine) == normalize(mode, real), (b" ".join(args), mine, real)

    Machine.connections = conns
    return Machine


def close_machine(machine):
    for conn in machine.connections:
        conn.close()
