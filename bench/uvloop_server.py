"""A minimal asyncio + uvloop RESP server: the strongest Python peer.

This is the yardstick for sakerd's hot path in bench/run.py, so it is
written to be as fast as a Python server of the protocol can reasonably be:

* uvloop runs the reactor and the socket I/O in C (libuv);
* hiredis's C Reader parses the requests;
* every reply produced by one data_received() call is joined and written
  with one transport.write(), so a pipeline of 16 requests costs one
  send() system call, as in Redis;
* the dispatch table maps the command name bytes, upper and lower case,
  straight to a bound handler, with no per-command object.

It implements just what the benchmark workloads send (PING, ECHO, SET, GET,
INCR, DEL, LPUSH, RPUSH, LPOP, RPOP, LRANGE, LLEN, MSET, SADD, SPOP, ZADD,
ZRANGE, PUBLISH, SUBSCRIBE, FLUSHALL, CONFIG, QUIT) and no more: no
expiry, inline requests only as whole lines, no databases. Sorted sets are
a dict plus a sortedcontainers.SortedList, as in sakerd.

Run: python bench/uvloop_server.py --port 7390
"""

import argparse
import asyncio
from collections import deque
from itertools import islice

import hiredis
import uvloop
from sortedcontainers import SortedList

OK = b"+OK\r\n"
PONG = b"+PONG\r\n"
NULL = b"$-1\r\n"
WRONGTYPE = b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"
NOT_INT = b"-ERR value is not an integer or out of range\r\n"

data = {}        # key -> bytes | deque
channels = {}    # channel -> set of RespProtocol
dirty = []       # subscribers with queued messages, flushed by the publisher


def bulk(b):
    return b"$%d\r\n%s\r\n" % (len(b), b)


def wrong_args(name):
    return b"-ERR wrong number of arguments for '%s' command\r\n" % name.lower()


def cmd_ping(conn, argv):
    if len(argv) == 1:
        return PONG
    return bulk(argv[1])


def cmd_echo(conn, argv):
    return bulk(argv[1]) if len(argv) == 2 else wrong_args(argv[0])


def cmd_set(conn, argv):
    if len(argv) != 3:
        return wrong_args(argv[0])
    data[argv[1]] = argv[2]
    return OK


def cmd_get(conn, argv):
    if len(argv) != 2:
        return wrong_args(argv[0])
    v = data.get(argv[1])
    if v is None:
        return NULL
    if v.__class__ is not bytes:
        return WRONGTYPE
    return b"$%d\r\n%s\r\n" % (len(v), v)


def cmd_incr(conn, argv):
    if len(argv) != 2:
        return wrong_args(argv[0])
    key = argv[1]
    v = data.get(key, b"0")
    if v.__class__ is not bytes:
        return WRONGTYPE
    try:
        n = int(v) + 1
    except ValueError:
        return NOT_INT
    data[key] = b"%d" % n
    return b":%d\r\n" % n


def cmd_del(conn, argv):
    n = 0
    for k in argv[1:]:
        if data.pop(k, None) is not None:
            n += 1
    return b":%d\r\n" % n


def cmd_mset(conn, argv):
    if len(argv) < 3 or len(argv) % 2 == 0:
        return wrong_args(argv[0])
    it = iter(argv[1:])
    for k in it:
        data[k] = next(it)
    return OK


def _list_for_push(key):
    lst = data.get(key)
    if lst is None:
        lst = data[key] = deque()
    elif lst.__class__ is not deque:
        return None
    return lst


def cmd_lpush(conn, argv):
    if len(argv) < 3:
        return wrong_args(argv[0])
    lst = _list_for_push(argv[1])
    if lst is None:
        return WRONGTYPE
    lst.extendleft(argv[2:])
    return b":%d\r\n" % len(lst)


def cmd_rpush(conn, argv):
    if len(argv) < 3:
        return wrong_args(argv[0])
    lst = _list_for_push(argv[1])
    if lst is None:
        return WRONGTYPE
    lst.extend(argv[2:])
    return b":%d\r\n" % len(lst)


def _pop(argv, left):
    if len(argv) != 2:
        return wrong_args(argv[0])
    lst = data.get(argv[1])
    if lst is None:
        return NULL
    if lst.__class__ is not deque:
        return WRONGTYPE
    v = lst.popleft() if left else lst.pop()
    if not lst:
        del data[argv[1]]
    return bulk(v)


def cmd_lpop(conn, argv):
    return _pop(argv, True)


def cmd_rpop(conn, argv):
    return _pop(argv, False)


def cmd_llen(conn, argv):
    lst = data.get(argv[1])
    if lst is None:
        return b":0\r\n"
    if lst.__class__ is not deque:
        return WRONGTYPE
    return b":%d\r\n" % len(lst)


def cmd_lrange(conn, argv):
    if len(argv) != 4:
        return wrong_args(argv[0])
    lst = data.get(argv[1])
    if lst is None:
        return b"*0\r\n"
    if lst.__class__ is not deque:
        return WRONGTYPE
    try:
        start = int(argv[2])
        stop = int(argv[3])
    except ValueError:
        return NOT_INT
    n = len(lst)
    if start < 0:
        start = max(n + start, 0)
    if stop < 0:
        stop += n
    if stop >= n:
        stop = n - 1
    if start > stop or start >= n:
        return b"*0\r\n"
    parts = [b"*%d\r\n" % (stop - start + 1)]
    parts += [b"$%d\r\n%s\r\n" % (len(v), v) for v in islice(lst, start, stop + 1)]
    return b"".join(parts)


def cmd_sadd(conn, argv):
    if len(argv) < 3:
        return wrong_args(argv[0])
    s = data.get(argv[1])
    if s is None:
        s = data[argv[1]] = set()
    elif s.__class__ is not set:
        return WRONGTYPE
    n = len(s)
    s.update(argv[2:])
    return b":%d\r\n" % (len(s) - n)


def cmd_spop(conn, argv):
    if len(argv) != 2:
        return wrong_args(argv[0])
    s = data.get(argv[1])
    if s is None:
        return NULL
    if s.__class__ is not set:
        return WRONGTYPE
    v = s.pop()
    if not s:
        del data[argv[1]]
    return bulk(v)


class ZSet:
    __slots__ = ("dict", "sl")

    def __init__(self):
        self.dict = {}
        self.sl = SortedList()


def cmd_zadd(conn, argv):
    if len(argv) < 4 or len(argv) % 2:
        return wrong_args(argv[0])
    try:
        pairs = [(float(argv[i]), argv[i + 1]) for i in range(2, len(argv), 2)]
    except ValueError:
        return b"-ERR value is not a valid float\r\n"
    z = data.get(argv[1])
    if z is None:
        z = data[argv[1]] = ZSet()
    elif z.__class__ is not ZSet:
        return WRONGTYPE
    added = 0
    for score, m in pairs:
        old = z.dict.get(m)
        if old is None:
            added += 1
        elif old == score:
            continue
        else:
            z.sl.remove((old, m))
        z.dict[m] = score
        z.sl.add((score, m))
    return b":%d\r\n" % added


def cmd_zrange(conn, argv):
    """ZRANGE key start stop [WITHSCORES], by rank only."""
    if len(argv) not in (4, 5):
        return wrong_args(argv[0])
    z = data.get(argv[1])
    if z is None:
        return b"*0\r\n"
    if z.__class__ is not ZSet:
        return WRONGTYPE
    try:
        start, stop = int(argv[2]), int(argv[3])
    except ValueError:
        return NOT_INT
    n = len(z.dict)
    if start < 0:
        start = max(n + start, 0)
    if stop < 0:
        stop += n
    stop = min(stop, n - 1)
    if start > stop:
        return b"*0\r\n"
    items = z.sl.islice(start, stop + 1)
    if len(argv) == 4:
        return b"*%d\r\n" % (stop - start + 1) + b"".join(
            b"$%d\r\n%s\r\n" % (len(m), m) for _, m in items)
    parts = [b"*%d\r\n" % (2 * (stop - start + 1))]
    for score, m in items:
        f = b"%.17g" % score
        parts.append(b"$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(m), m, len(f), f))
    return b"".join(parts)


def cmd_publish(conn, argv):
    if len(argv) != 3:
        return wrong_args(argv[0])
    subs = channels.get(argv[1])
    if not subs:
        return b":0\r\n"
    ch, msg = argv[1], argv[2]
    frame = b"*3\r\n$7\r\nmessage\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(ch), ch, len(msg), msg)
    # Queue, don't write: the publisher's data_received() flushes every
    # subscriber once, after the whole pipeline (one send() per subscriber).
    for s in subs:
        if not s.pending:
            dirty.append(s)
        s.pending.append(frame)
    return b":%d\r\n" % len(subs)


def cmd_subscribe(conn, argv):
    if len(argv) < 2:
        return wrong_args(argv[0])
    out = []
    for ch in argv[1:]:
        if ch not in conn.channels:
            conn.channels.add(ch)
            channels.setdefault(ch, set()).add(conn)
        out.append(b"*3\r\n$9\r\nsubscribe\r\n$%d\r\n%s\r\n:%d\r\n"
                   % (len(ch), ch, len(conn.channels)))
    return b"".join(out)


def cmd_flushall(conn, argv):
    data.clear()
    return OK


def cmd_config(conn, argv):
    # redis-benchmark asks CONFIG GET save / appendonly at start.
    if len(argv) == 3 and argv[1].lower() == b"get":
        return b"*2\r\n%s$0\r\n\r\n" % bulk(argv[2])
    return b"*0\r\n"


def cmd_quit(conn, argv):
    conn.closing = True
    return OK


COMMANDS = {}
for _name, _fn in list(globals().items()):
    if _name.startswith("cmd_"):
        _n = _name[4:].encode()
        COMMANDS[_n] = COMMANDS[_n.upper()] = _fn


def flush_subscribers():
    for s in dirty:
        if not s.transport.is_closing():
            s.transport.write(b"".join(s.pending))
        s.pending = []
    dirty.clear()


class RespProtocol(asyncio.Protocol):
    __slots__ = ("transport", "reader", "channels", "closing", "pending")

    def connection_made(self, transport):
        self.transport = transport
        self.reader = hiredis.Reader()
        self.channels = set()
        self.closing = False
        self.pending = []

    def connection_lost(self, exc):
        for ch in self.channels:
            subs = channels.get(ch)
            if subs is not None:
                subs.discard(self)
                if not subs:
                    del channels[ch]
        self.channels = set()

    def dispatch(self, argv, out):
        fn = COMMANDS.get(argv[0])
        if fn is None:
            fn = COMMANDS.get(argv[0].lower())
        if fn is None:
            out.append(b"-ERR unknown command '%s'\r\n" % argv[0][:128])
        else:
            out.append(fn(self, argv))

    def data_received(self, chunk):
        out = []
        if chunk[:1] != b"*" and not self.reader.has_data():
            # Inline commands (SUBSCRIBE ch from bench/fanout.py): whole
            # lines only, which is all the benchmarks send.
            for line in chunk.split(b"\n"):
                argv = line.split()
                if argv:
                    self.dispatch(argv, out)
        else:
            self.parse_multibulk(chunk, out)
        if out:
            self.transport.write(b"".join(out) if len(out) > 1 else out[0])
        if dirty:
            flush_subscribers()
        if self.closing:
            self.transport.close()

    def parse_multibulk(self, chunk, out):
        reader = self.reader
        reader.feed(chunk)
        gets = reader.gets
        commands = COMMANDS
        try:
            argv = gets()
            while argv is not False:
                fn = commands.get(argv[0])
                if fn is None:
                    self.dispatch(argv, out)
                else:
                    out.append(fn(self, argv))
                if self.closing:
                    break
                argv = gets()
        except hiredis.ProtocolError:
            out.append(b"-ERR Protocol error\r\n")
            self.closing = True


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=7390)
    ap.add_argument("--bind", default="127.0.0.1")
    args = ap.parse_args()
    uvloop.install()
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    srv = loop.run_until_complete(
        loop.create_server(RespProtocol, args.bind, args.port, backlog=511, reuse_address=True))
    try:
        loop.run_forever()
    except KeyboardInterrupt:
        pass
    finally:
        srv.close()


if __name__ == "__main__":
    main()
