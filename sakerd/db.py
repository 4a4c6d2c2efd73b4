"""The keyspace: databases, lookups with lazy expiry, active expiry (db.c, expire.c).

A Db holds `dict` (key bytes -> value) and `expires` (key -> absolute unix
ms). Values are typed by their Python type: bytes is a string, dict a hash,
collections.deque a list, t_set.Set a set, t_zset.ZSet a sorted set. Keys
expire lazily on access and actively in the cron, with Redis's adaptive
sampling.

SCAN cursors. Redis walks its hash table's buckets in reverse-binary order,
which survives rehashing; a Python dict offers no such walk, and a plain
position in its key order is not stable, because deleting a key shifts
every later key down one place. So the first SCAN call takes a snapshot of
the key order (a list of references, one C-level copy) and later calls walk
that snapshot, skipping keys deleted meanwhile: every key present for the
whole scan is returned exactly once. The cursor is (snapshot id << 32) |
position; a Db keeps its last SCAN_SNAPSHOTS snapshots, and a cursor whose
snapshot is gone continues at its position in the current key order.
"""

import random
import time
from collections import deque

from .server_h import server

ACTIVE_EXPIRE_CYCLE_KEYS_PER_LOOP = 20
ACTIVE_EXPIRE_CYCLE_SLOW_TIME_PERC = 25

SCAN_SNAPSHOTS = 16
SCAN_POS_BITS = 32

WRONGTYPE = b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"
WRONGTYPE_ERR = "-WRONGTYPE Operation against a key holding the wrong kind of value"

# TYPE's names by value class; a type module adds its own class (t_set's Set,
# t_zset's ZSet, t_stream's Stream: they import this module, so it cannot
# import them).
TYPE_NAMES = {bytes: "string", dict: "hash", deque: "list"}


def mstime():
    return int(time.time() * 1000)


class Db:
    __slots__ = ("id", "dict", "expires", "avg_ttl", "scans", "next_scan_id",
                 "watched_keys", "blocking_keys", "ready_keys")

    def __init__(self, id):
        self.id = id
        self.dict = {}
        self.expires = {}
        self.avg_ttl = 0
        self.scans = {}             # snapshot id -> list of keys, oldest first
        self.next_scan_id = 1
        self.watched_keys = {}      # key -> {client: WatchedKey} (multi.py)
        self.blocking_keys = {}     # key -> {client: None}, in blocking order (blocked.py)
        self.ready_keys = {}        # keys queued in server.ready_keys (blocked.py)

    def expire_if_needed(self, key):
        """Delete key if its time has passed; True if it was expired."""
        when = self.expires.get(key)
        if when is None or when > mstime():
            return False
        self.delete_expired_key(key)
        return True

    def delete_expired_key(self, key):
        """deleteExpiredKeyAndPropagate(): lazy and active expiry alike."""
        self.delete(key)
        notify_keyspace_event(NOTIFY_EXPIRED, b"expired", key, self.id)
        signal_modified_key(None, self, key)
        server.stat_expiredkeys += 1

    def lookup(self, key):
        """The value at key, or None (lazy expiry; no hit/miss stats)."""
        if self.expires and key in self.expires:
            self.expire_if_needed(key)
        return self.dict.get(key)

    def lookup_read(self, key):
        """lookupKeyRead(): like lookup, counting keyspace hits and misses."""
        if self.expires and key in self.expires:
            self.expire_if_needed(key)
        v = self.dict.get(key)
        if v is None:
            server.stat_keyspace_misses += 1
        else:
            server.stat_keyspace_hits += 1
        return v

    def lookup_write(self, key):
        if self.expires and key in self.expires:
            self.expire_if_needed(key)
        return self.dict.get(key)

    def set_key(self, key, value, keepttl=False, found=None):
        """setKey(): store value (dbAdd or dbOverwrite); the TTL is removed
        unless keepttl; the key is signalled as modified. `found`: whether
        the caller's lookup found the key (None: look)."""
        if found is None:
            found = self.lookup_write(key) is not None
        if found:
            self.dict[key] = value
        else:
            self.add(key, value)
        if not keepttl and self.expires:
            self.expires.pop(key, None)
        signal_modified_key(None, self, key)

    def add(self, key, value):
        """dbAdd(): key must not exist; publishes the `new` event."""
        self.dict[key] = value
        if server.notify_keyspace_events & NOTIFY_NEW:
            notify_keyspace_event(NOTIFY_NEW, b"new", key, self.id)

    def delete(self, key):
        if key in self.dict:
            del self.dict[key]
            self.expires.pop(key, None)
            return True
        return False

    def set_expire(self, key, when_ms):
        self.expires[key] = when_ms

    def get_expire(self, key):
        return self.expires.get(key, -1)

    def remove_expire(self, key):
        return self.expires.pop(key, None) is not None

    def key_is_expired(self, key):
        """keyIsExpired(): past its time, but left in place (KEYS uses it)."""
        when = self.expires.get(key)
        return when is not None and when <= mstime()

    def flush(self):
        # Callers signal watchers and blocked readers first (signalFlushedDb).
        n = len(self.dict)
        self.dict = {}
        self.expires = {}
        self.avg_ttl = 0
        self.scans = {}
        return n

    def scan_keys(self, cursor, count):
        """One SCAN step: (next cursor, keys still present), see the module doc.

        Walks up to `count` snapshot entries that are still in the db; the
        next cursor is 0 when the snapshot is exhausted.
        """
        scan_id = cursor >> SCAN_POS_BITS
        pos = cursor & ((1 << SCAN_POS_BITS) - 1)
        snapshot = self.scans.get(scan_id) if cursor else None
        if snapshot is None:
            snapshot, scan_id = self._new_scan_snapshot(scan_id if cursor else 0)
        d = self.dict
        keys = []
        end = len(snapshot)
        while pos < end and len(keys) < count:
            key = snapshot[pos]
            pos += 1
            if key in d:
                keys.append(key)
        if pos >= end:
            del self.scans[scan_id]
            return 0, keys
        return (scan_id << SCAN_POS_BITS) | pos, keys

    def _new_scan_snapshot(self, scan_id):
        if not scan_id:
            scan_id = self.next_scan_id
            # Ids wrap below 2**31 so that a cursor always fits a C long.
            self.next_scan_id = scan_id % (1 << 31) + 1
        while len(self.scans) >= SCAN_SNAPSHOTS:
            del self.scans[next(iter(self.scans))]
        snapshot = self.scans[scan_id] = list(self.dict)
        return snapshot, scan_id

    def random_key(self):
        while self.dict:
            key = random.choice(list(self.dict)) if len(self.dict) < 64 else \
                next(iter(self.dict))
            if not self.expire_if_needed(key):
                return key
        return None


def lookup_typed(c, key, cls, write=False):
    """lookupKeyRead/Write() and checkType(): (value of class cls or None, ok),
    ok False when -WRONGTYPE was replied."""
    v = c.db.lookup_write(key) if write else c.db.lookup_read(key)
    if v is not None and type(v) is not cls:
        c.add_reply_error(WRONGTYPE_ERR)
        return None, False
    return v, True


def signal_modified_key(c, db, key):
    """signalModifiedKey(): every write calls this for each key it changes.

    c is the client that wrote (None for expiry and the server itself).
    The one hook on the write path: WATCH (multi.py), the clients blocked
    on keys (blocked.py) and client-side caching (tracking.py) hang off it;
    each costs one test when unused. The hottest writes (SET, INCR, LPUSH...)
    inline these tests before calling it.
    """
    if db.watched_keys:
        _multi.touch_watched_key(db, key)
    if db.blocking_keys:
        _blocked.signal_key_as_ready(db, key)
    if server.tracking_clients:
        _tracking.invalidate_key(c, key)


def active_expire_cycle(time_limit_us):
    """Sample keys with a TTL in each db, delete the expired ones.

    Like Redis: while more than a quarter of a sample was expired, sample
    again, until the time limit for this cycle is used.
    """
    start = time.perf_counter()
    limit = time_limit_us / 1e6
    now = mstime()
    for db in server.db:
        expires = db.expires
        while expires:
            sample = random.sample(list(expires), min(ACTIVE_EXPIRE_CYCLE_KEYS_PER_LOOP, len(expires))) \
                if len(expires) <= 1000 else _sample_large(expires)
            expired = 0
            ttl_sum = ttl_samples = 0
            for key in sample:
                when = expires.get(key)
                if when is None:
                    continue
                if when <= now:
                    db.delete_expired_key(key)
                    expired += 1
                else:
                    ttl_sum += when - now
                    ttl_samples += 1
            if ttl_samples:
                avg = ttl_sum // ttl_samples
                db.avg_ttl = avg if not db.avg_ttl else (db.avg_ttl // 50) * 49 + avg // 50
            if expired <= len(sample) // 4 or time.perf_counter() - start > limit:
                break
        if time.perf_counter() - start > limit:
            break


def _sample_large(expires):
    # random.sample over a big dict's keys is O(n); take a random window of
    # the insertion order instead, which is what Redis's bucket walk gives.
    keys = iter(expires)
    skip = random.randrange(max(1, len(expires) - ACTIVE_EXPIRE_CYCLE_KEYS_PER_LOOP))
    out = []
    for i, k in enumerate(keys):
        if i >= skip:
            out.append(k)
            if len(out) == ACTIVE_EXPIRE_CYCLE_KEYS_PER_LOOP:
                break
    return out


def databases_cron():
    limit_us = 1000000 * ACTIVE_EXPIRE_CYCLE_SLOW_TIME_PERC // server.hz // 100
    active_expire_cycle(limit_us)


# At the end: these modules import this one (through t_string).
from . import blocked as _blocked, multi as _multi, tracking as _tracking  # noqa: E402
from .notify import notify_keyspace_event, NOTIFY_EXPIRED, NOTIFY_NEW  # noqa: E402
