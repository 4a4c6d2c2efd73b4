"""Failed AUTH: counted, slowed down and logged per client address.

Redis answers every AUTH at once, so one connection can try 20,000
passwords in well under a second. sakerd allows `auth-lock-after` failures (5) from an
address (the IP of a TCP client, the uid of a unix socket peer), then locks
that address out for a time that doubles with each further failure, up to
AUTH_LOCK_MAX_MS: during the lock every AUTH from the address fails with the
usual WRONGPASS reply without the password being looked at, so guessing
drops to one try per lock. A success clears the address's record.

Logging is once per burst: the first failure is logged, the next ones are
counted and summed up in one line at most every AUTH_LOG_INTERVAL seconds.
"""

import time

from .log import log, LL_WARNING
from .server_h import server

AUTH_LOCK_MIN_MS = 100
AUTH_LOCK_MAX_MS = 10000
AUTH_LOG_INTERVAL = 10.0
AUTH_FORGET_AFTER = 900.0       # an address quiet this long starts afresh
AUTH_MAX_ADDRESSES = 10000      # bounded memory whatever the number of peers


class _Record:
    __slots__ = ("failures", "locked_until", "lock_ms", "last", "logged_at", "unlogged")

    def __init__(self, now):
        self.failures = 0
        self.locked_until = 0.0
        self.lock_ms = 0
        self.last = now
        self.logged_at = 0.0
        self.unlogged = 0


_records = {}
stats = {"failed": 0, "throttled": 0}


def address_of(c):
    if c.peer_uid is not None:
        return "uid %d" % c.peer_uid
    host, _, _ = c.addr.rpartition(":")
    return host or c.addr


def auth_throttled(c):
    """True if c's address is locked out: the AUTH fails unchecked."""
    rec = _records.get(address_of(c))
    if rec is None or time.monotonic() >= rec.locked_until:
        return False
    stats["throttled"] += 1
    _failure(c, rec, time.monotonic())
    return True


def auth_failed(c):
    now = time.monotonic()
    addr = address_of(c)
    rec = _records.get(addr)
    if rec is None:
        if len(_records) >= AUTH_MAX_ADDRESSES:
            prune(now, force=True)
        rec = _records[addr] = _Record(now)
    rec.failures += 1
    free = server.config.auth_lock_after if server.config is not None else 5
    if free and rec.failures > free:
        rec.lock_ms = min(AUTH_LOCK_MAX_MS, max(AUTH_LOCK_MIN_MS, rec.lock_ms * 2))
        rec.locked_until = now + rec.lock_ms / 1000.0
    _failure(c, rec, now)


def _failure(c, rec, now):
    stats["failed"] += 1
    rec.last = now
    rec.unlogged += 1
    if now - rec.logged_at >= AUTH_LOG_INTERVAL:
        if rec.unlogged == 1:
            log(LL_WARNING, "Failed AUTH attempt from %s", c.addr)
        else:
            log(LL_WARNING, "%d failed AUTH attempts from %s in the last %d seconds%s",
                rec.unlogged, address_of(c), max(1, int(now - rec.logged_at))
                if rec.logged_at else 0,
                " (locked out for %d ms after each)" % rec.lock_ms if rec.lock_ms else "")
        rec.logged_at = now
        rec.unlogged = 0


def auth_succeeded(c):
    _records.pop(address_of(c), None)


def prune(now=None, force=False):
    """Forget quiet addresses (from the cron); with force, the oldest half."""
    now = time.monotonic() if now is None else now
    for addr in [a for a, r in _records.items() if now - r.last > AUTH_FORGET_AFTER]:
        del _records[addr]
    if force and len(_records) >= AUTH_MAX_ADDRESSES:
        for addr in sorted(_records, key=lambda a: _records[a].last)[:len(_records) // 2]:
            del _records[addr]
