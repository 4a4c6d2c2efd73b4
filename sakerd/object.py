"""OBJECT ENCODING|REFCOUNT|IDLETIME|FREQ|HELP and MEMORY USAGE|STATS|DOCTOR|HELP
(Redis's object.c).

Encodings. sakerd keeps one Python structure per type, but OBJECT
ENCODING answers what Redis 7.0 would for the same value under the same
thresholds (CONFIG SET changes them live):

- string: "int" for a strict integer of at most 20 characters, "embstr" up
  to 44 bytes, else "raw" (what SET's tryObjectEncoding gives; Redis also
  says "raw" for a short string grown in place by APPEND or SETRANGE,
  which sakerd does not track);
- list: "quicklist" (Redis 7.0 has no other list encoding);
- hash: "listpack" while it has at most hash-max-listpack-entries fields and
  no field or value longer than hash-max-listpack-value, else "hashtable"
  (from the hash's current content: Redis never converts back, so a hash
  that grew past a limit and shrank again stays "hashtable" there);
- set: "intset" or "hashtable", tracked by t_set.Set as Redis converts;
- zset: "listpack" or "skiplist", tracked by t_zset.ZSet as Redis converts.

REFCOUNT is 2147483647 for the integers 0..9999, which Redis shares, else 1.
sakerd keeps no per-key access clock (that would cost every lookup a
write), so IDLETIME is 0; FREQ answers Redis's error for a server without
an LFU maxmemory policy, which sakerd never has.

MEMORY USAGE is an estimate of the Python objects a key holds, by
sys.getsizeof(): the key's bytes, its share of the database dict (and of
the expires dict when it has a TTL, with the int holding the time), and
the value: the container itself plus each member (a hash's fields and
values, a sorted set's members, float scores, (score, member) tuples and
its SortedList's sublists). Like Redis, a collection larger than SAMPLES
(default 5; 0 = all) is estimated from its first SAMPLES members. MEMORY
STATS's dataset.bytes adds up the same estimates over the first 1000 keys
of each database, scaled to its size; total.allocated is the process RSS.
"""

import sys
from collections import deque

from .resp import string2ll
from .server_h import Command, server, CMD_LOADING, CMD_READONLY, CMD_STALE
from .t_set import Set
from .t_zset import ZSet

OBJ_SHARED_REFCOUNT = 2147483647
OBJ_SHARED_INTEGERS = 10000
OBJ_ENCODING_EMBSTR_SIZE_LIMIT = 44
OBJ_COMPUTE_SIZE_DEF_SAMPLES = 5
STATS_SAMPLE_KEYS = 1000
_getsizeof = sys.getsizeof


# ---- OBJECT -------------------------------------------------------------------------------

def string_encoding(v):
    if len(v) <= 20 and string2ll(v) is not None:
        return "int"
    return "embstr" if len(v) <= OBJ_ENCODING_EMBSTR_SIZE_LIMIT else "raw"


def hash_encoding(h):
    cfg = server.config
    if len(h) > cfg.hash_max_listpack_entries:
        return "hashtable"
    limit = cfg.hash_max_listpack_value
    if any(len(f) > limit or len(v) > limit for f, v in h.items()):
        return "hashtable"
    return "listpack"


def object_encoding(v):
    cls = v.__class__
    if cls is bytes:
        return string_encoding(v)
    if cls is deque:
        return "quicklist"
    if cls is dict:
        return hash_encoding(v)
    if cls is Set:
        return "intset" if v.intset else "hashtable"
    if cls is ZSet:
        return v.encoding()
    return "unknown"


def object_lookup(c):
    """objectCommandLookupOrReply(): the value at argv[2], or None after a null."""
    v = c.db.lookup(c.argv[2])
    if v is None:
        c.add_reply_null()
    return v


def object_encoding_command(c):
    v = object_lookup(c)
    if v is not None:
        c.add_reply_bulk(object_encoding(v).encode())


def object_refcount_command(c):
    v = object_lookup(c)
    if v is not None:
        n = string2ll(v) if v.__class__ is bytes else None
        shared = n is not None and 0 <= n < OBJ_SHARED_INTEGERS
        c.add_reply_long_long(OBJ_SHARED_REFCOUNT if shared else 1)


def object_idletime_command(c):
    if object_lookup(c) is not None:
        c.add_reply(b":0\r\n")


def object_freq_command(c):
    if object_lookup(c) is not None:
        c.add_reply_error("An LFU maxmemory policy is not selected, access frequency not "
                          "tracked. Please note that when switching between policies at "
                          "runtime LRU and LFU data will take some time to adjust.")


def object_help_command(c):
    c.add_reply_help("OBJECT", [
        "ENCODING <key>",
        "    Return the kind of internal representation used in order to store the value",
        "    associated with a <key>.",
        "FREQ <key>",
        "    Return the access frequency index of the <key>. The returned integer is",
        "    proportional to the logarithm of the recent access frequency of the key.",
        "IDLETIME <key>",
        "    Return the idle time of the <key>, that is the approximated number of",
        "    seconds elapsed since the last access to the key.",
        "REFCOUNT <key>",
        "    Return the number of references of the value associated with the specified",
        "    <key>."])


# ---- MEMORY ---------------------------------------------------------------------------------

def sampled(items, n, samples, size_of):
    """Sum of size_of over items, or its estimate from the first samples."""
    if n <= samples:
        return sum(size_of(x) for x in items)
    total = 0
    for i, x in enumerate(items):
        if i == samples:
            break
        total += size_of(x)
    return total * n // samples


def _pair_size(kv):
    return _getsizeof(kv[0]) + _getsizeof(kv[1])


def value_size(v, samples):
    """The estimated bytes of a value (see the module docstring)."""
    cls = v.__class__
    if cls is bytes:
        return _getsizeof(v)
    if cls is deque:
        return _getsizeof(v) + sampled(v, len(v), samples, _getsizeof)
    if cls is dict:
        return _getsizeof(v) + sampled(v.items(), len(v), samples, _pair_size)
    if cls is Set:
        return _getsizeof(v) + sampled(v, len(v), samples, _getsizeof)
    if cls is ZSet:
        sl = v.sl
        lists = getattr(sl, "_lists", ())
        overhead = _getsizeof(v) + _getsizeof(v.dict) + _getsizeof(sl) + \
            _getsizeof(lists) + sum(_getsizeof(sub) for sub in lists) + \
            _getsizeof(getattr(sl, "_maxes", ())) + _getsizeof(getattr(sl, "_index", ()))
        # Each member: its bytes, its float score and its (score, member) tuple.
        per_member = _getsizeof((0.0, b"")) + _getsizeof(0.0)
        return overhead + sampled(v.dict, len(v), samples,
                                  lambda m: _getsizeof(m) + per_member)
    return _getsizeof(v)


def key_usage(db, key, v, samples):
    size = _getsizeof(key) + value_size(v, samples)
    size += _getsizeof(db.dict) // max(1, len(db.dict))
    if key in db.expires:
        size += _getsizeof(db.expires) // len(db.expires) + _getsizeof(db.expires[key])
    return size


def memory_usage_command(c):
    argv = c.argv
    samples = OBJ_COMPUTE_SIZE_DEF_SAMPLES
    j = 3
    while j < len(argv):
        if argv[j].lower() == b"samples" and j + 1 < len(argv):
            samples = string2ll(argv[j + 1])
            if samples is None:
                c.add_reply_error("value is not an integer or out of range")
                return
            if samples < 0:
                c.add_reply_error("syntax error")
                return
            if samples == 0:
                samples = 1 << 63
            j += 2
        else:
            c.add_reply_error("syntax error")
            return
    db = c.db
    key = argv[2]
    v = db.dict.get(key)     # as Redis: the raw dict, no lazy expiry
    if v is None:
        c.add_reply_null()
        return
    c.add_reply_long_long(key_usage(db, key, v, samples))


def memory_overhead():
    """The numbers MEMORY STATS and DOCTOR report (getMemoryOverheadData)."""
    from .info import lua_memory
    from .memory import rss_bytes
    rss = rss_bytes() or 0
    if rss > server.stat_peak_memory:
        server.stat_peak_memory = rss
    clients = sum(len(cl.buf) + len(getattr(cl.reader, "buf", b"") or b"")
                  for cl in server.clients.values())
    dbs = []
    dataset = keys = 0
    for db in server.db:
        if not db.dict:
            continue
        main, expires = _getsizeof(db.dict), _getsizeof(db.expires) if db.expires else 0
        dbs.append((db.id, main, expires))
        keys += len(db.dict)
        # Estimated from the first STATS_SAMPLE_KEYS keys of each db, so
        # that MEMORY STATS stays quick on a large keyspace.
        dataset += sampled(db.dict.items(), len(db.dict), STATS_SAMPLE_KEYS,
                           lambda kv: _getsizeof(kv[0]) +
                           value_size(kv[1], OBJ_COMPUTE_SIZE_DEF_SAMPLES))
    return {"rss": rss, "peak": server.stat_peak_memory, "clients": clients,
            "lua": lua_memory(), "dbs": dbs, "keys": keys, "dataset": dataset}


def memory_stats_command(c):
    m = memory_overhead()
    overhead = m["clients"] + sum(main + exp for _, main, exp in m["dbs"])
    rss = m["rss"] or 1
    fields = [
        (b"peak.allocated", m["peak"]),
        (b"total.allocated", m["rss"]),
        (b"clients.normal", m["clients"]),
        (b"lua.caches", m["lua"]),
    ]
    for dbid, main, exp in m["dbs"]:
        fields.append((b"db.%d" % dbid, [(b"overhead.hashtable.main", main),
                                          (b"overhead.hashtable.expires", exp)]))
    fields += [
        (b"overhead.total", overhead),
        (b"keys.count", m["keys"]),
        (b"keys.bytes-per-key", (m["dataset"] + overhead) // m["keys"] if m["keys"] else 0),
        (b"dataset.bytes", m["dataset"]),
        (b"dataset.percentage", m["dataset"] * 100.0 / rss),
        (b"peak.percentage", m["rss"] * 100.0 / (m["peak"] or 1)),
    ]
    c.add_reply(encode_stats(c, fields))


def encode_stats(c, fields):
    out = [b"*%d\r\n" % (2 * len(fields)) if c.resp == 2 else b"%%%d\r\n" % len(fields)]
    for name, value in fields:
        out.append(b"$%d\r\n%s\r\n" % (len(name), name))
        if isinstance(value, list):
            out.append(encode_stats(c, value))
        elif isinstance(value, float):
            s = b"%.17g" % value
            out.append(b"$%d\r\n%s\r\n" % (len(s), s) if c.resp == 2 else b",%s\r\n" % s)
        else:
            out.append(b":%d\r\n" % value)
    return b"".join(out)


def memory_doctor_command(c):
    c.add_reply_verbatim(memory_doctor_report(memory_overhead()))


def memory_doctor_report(m):
    """getMemoryDoctorReport(), for what sakerd can measure: an "empty"
    instance is one whose keys and buffers take under 5 MB (the Python
    process itself always does)."""
    if m["dataset"] + m["clients"] < 5 * 1024 * 1024:
        return (b"Hi Sam, this instance is empty or is using very little memory, my issues "
                b"detector can't be used in these conditions. Please, leave for your mission on "
                b"Earth and fill it with some data. The new Sam and I will be back to our "
                b"programming as soon as I finished rebooting.\n")
    reports = []
    if m["rss"] and m["peak"] / m["rss"] > 1.5:
        reports.append(
            b" * Peak memory: In the past this instance used more than 150% the memory that is "
            b"currently using. The allocator is normally not able to release memory after a "
            b"peak, so you can expect to see a big fragmentation ratio, however this is actually "
            b"harmless and is only due to the memory peak, and if the Redis instance Resident Set "
            b"Size (RSS) is currently bigger than expected, the memory will be used as soon as "
            b"you fill the Redis instance with more data. If the memory peak was only occasional "
            b"and you want to try to reclaim memory, please try the MEMORY PURGE command, "
            b"otherwise the only other option is to shutdown and restart the instance.\n\n")
    if server.clients and m["clients"] / len(server.clients) > 1024 * 200:
        reports.append(
            b" * Big client buffers: The clients output buffers in this instance are greater "
            b"than 200K per client (on average). This may result from different causes, like "
            b"Pub/Sub clients subscribed to channels bot not receiving data fast enough, so that "
            b"data piles on the Redis instance output buffer, or clients sending commands with "
            b"large replies or very large sequences of commands in the same pipeline. Please use "
            b"the CLIENT LIST command in order to investigate the issue if it causes problems in "
            b"your instance, or to understand better why certain clients are using a big amount "
            b"of memory.\n\n")
    if not reports:
        return (b"Hi Sam, I can't find any memory issue in your instance. I can only account for "
                b"what occurs on this base.\n")
    return (b"Sam, I detected a few issues in this Redis instance memory implants:\n\n" +
            b"".join(reports) + b"I'm here to keep you safe, Sam. I want to help you.\n")


def memory_malloc_stats_command(c):
    c.add_reply_bulk(b"Stats not supported for the current allocator")


def memory_purge_command(c):
    """Give free heap pages back to the kernel now (glibc's malloc_trim)."""
    libc = server.heap.libc
    if libc is not None:
        libc.malloc_trim(0)
    c.add_reply(b"+OK\r\n")


def memory_help_command(c):
    c.add_reply_help("MEMORY", [
        "DOCTOR",
        "    Return memory problems reports.",
        "MALLOC-STATS",
        "    Return internal statistics report from the memory allocator.",
        "PURGE",
        "    Attempt to purge dirty pages for reclamation by the allocator.",
        "STATS",
        "    Return information about the memory usage of the server.",
        "USAGE <key> [SAMPLES <count>]",
        "    Return memory in bytes used by <key> and its value. Nested values are",
        "    sampled up to <count> times (default: 5, 0 means sample all)."])


def _container(name, subs, group, help_proc):
    cmd = Command(name, help_proc, -2, 0, group=group)
    for sub in subs:
        cmd.add_subcommand(sub)
    return cmd


_R = CMD_READONLY
_ANY = CMD_LOADING | CMD_STALE

COMMANDS = [
    _container("object", [
        Command("encoding", object_encoding_command, 3, _R, 2, 2, 1, group="generic",
                summary="Inspect the internal encoding of a Redis object"),
        Command("refcount", object_refcount_command, 3, _R, 2, 2, 1, group="generic",
                summary="Get the number of references to the value of the key"),
        Command("idletime", object_idletime_command, 3, _R, 2, 2, 1, group="generic",
                summary="Get the time since a Redis object was last accessed"),
        Command("freq", object_freq_command, 3, _R, 2, 2, 1, group="generic",
                summary="Get the logarithmic access frequency counter of a Redis object"),
        Command("help", object_help_command, 2, _ANY, group="generic",
                summary="Show helpful text about the different subcommands"),
    ], "generic", object_help_command),
    _container("memory", [
        Command("usage", memory_usage_command, -3, _R, 2, 2, 1, group="server",
                summary="Estimate the memory usage of a key"),
        Command("stats", memory_stats_command, 2, 0, group="server",
                summary="Show memory usage details"),
        Command("doctor", memory_doctor_command, 2, 0, group="server",
                summary="Outputs memory problems report"),
        Command("malloc-stats", memory_malloc_stats_command, 2, 0, group="server",
                summary="Show allocator internal stats"),
        Command("purge", memory_purge_command, 2, 0, group="server",
                summary="Ask the allocator to release memory"),
        Command("help", memory_help_command, 2, _ANY, group="server",
                summary="Show helpful text about the different subcommands"),
    ], "server", memory_help_command),
]
