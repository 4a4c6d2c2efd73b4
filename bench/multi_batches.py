"""SET in batches of 16, as redis-py sends them: plain pipelines, or each batch
wrapped in MULTI ... EXEC (redis-py's default pipeline(transaction=True)).

redis-benchmark cannot send a transaction, so this driver does both forms
itself, the same way, to compare them fairly: CONNS connections, each with
one batch in flight; a batch's reply has a fixed length (16 +OK, or +OK,
16 +QUEUED and *16 of +OK), so the driver counts bytes instead of parsing.
Reported: SET commands per second (the MULTI and EXEC around them are not
counted as operations).

    python bench/multi_batches.py PORT [--multi] [-n SETS]
"""

import argparse
import selectors
import socket
import time

BATCH = 16
CONNS = 50


def _set(i):
    key = b"key:%06d" % (i % 100000)
    return b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$3\r\nxxx\r\n" % (len(key), key)


def batch_bytes(multi, offset):
    body = b"".join(_set(offset + j) for j in range(BATCH))
    if not multi:
        return body, b"+OK\r\n" * BATCH
    return (b"*1\r\n$5\r\nMULTI\r\n" + body + b"*1\r\n$4\r\nEXEC\r\n",
            b"+OK\r\n" + b"+QUEUED\r\n" * BATCH + b"*%d\r\n" % BATCH + b"+OK\r\n" * BATCH)


def batch_round(port, sets=200_000, multi=False, conns=CONNS, timeout=300.0):
    """SETs per second through batches of 16 (in MULTI/EXEC if multi)."""
    batches = -(-sets // BATCH)
    # A few distinct batches, reused: building requests must not be what we time.
    variants = [batch_bytes(multi, v * BATCH) for v in range(64)]
    reply_len = len(variants[0][1])
    socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(conns)]
    for s in socks:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sel = selectors.DefaultSelector()
    pending = {}
    sent = done = 0
    buf = bytearray(1 << 16)
    try:
        start = time.perf_counter()
        deadline = start + timeout
        for s in socks:
            if sent < batches:
                s.sendall(variants[sent % 64][0])
                pending[s] = reply_len
                sent += 1
            s.setblocking(False)
            sel.register(s, selectors.EVENT_READ)
        while done < batches:
            if time.perf_counter() > deadline:
                raise RuntimeError("batch round timed out: %d of %d batches" % (done, batches))
            for key, _ in sel.select(1.0):
                s = key.fileobj
                n = s.recv_into(buf)
                if not n:
                    raise RuntimeError("server closed a connection")
                pending[s] -= n
                while pending[s] <= 0:
                    done += 1
                    over = -pending[s]
                    if sent < batches:
                        s.setblocking(True)
                        s.sendall(variants[sent % 64][0])
                        s.setblocking(False)
                        sent += 1
                        pending[s] = reply_len - over
                    else:
                        pending[s] = 1 << 62    # no more for this one
                        break
        elapsed = time.perf_counter() - start
    finally:
        for s in socks:
            s.close()
    return batches * BATCH / elapsed


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("port", type=int)
    ap.add_argument("--multi", action="store_true")
    ap.add_argument("-n", type=int, default=200_000)
    args = ap.parse_args()
    print("%.0f SET/s" % batch_round(args.port, args.n, args.multi))


if __name__ == "__main__":
    main()
