"""Giving memory back to the kernel once clients are done with it.

Redis links jemalloc, which returns freed pages by itself. sakerd runs on
glibc's malloc, which keeps freed memory for reuse in two ways that matter
to a daemon whose clients come and go with megabytes of buffers:

- Blocks of 128 KiB or more start as mappings of their own, but each time
  one is freed glibc raises that threshold to its size (up to 32 MiB), so
  later large buffers come from the heap. pin_malloc_thresholds() sets the
  thresholds explicitly, which turns that adjustment off (mallopt(3)).
- Freed chunks inside the heap keep their pages until malloc_trim() hands
  the whole free pages back (MADV_DONTNEED). After bursts of hostile traffic
  the heap held 30-75 MB of free pages with no client connected; trimming
  brought RSS back within 6 MB of a fresh process.

HeapTrimmer.cron() runs once a second from the server cron. It trims only
when the traffic counters moved since its last look, so an idle daemon
never pays for it. A trim walks every free chunk: 3 ms on a fragmented
50 MB heap, but also 9 ms on a 480 MB one with nothing to give back. So a
trim that cost over a millisecond and gave back less than 1 MiB doubles
the wait before the next one (2 s, 4 s, ... 64 s); one that gave memory
back resets it. A busy server with a large, steady heap then spends at
most 9 ms a minute on it.
"""

import ctypes
import os
import sys
import time

# glibc's mallopt parameter numbers (malloc.h).
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 128 * 1024
TRAFFIC_QUANTUM = 1 << 20   # bytes moved before a trim is worth trying
TRIM_WORTH = 1 << 20        # a trim that gives back less is not worth repeating...
TRIM_CHEAP = 0.001          # ...unless it costs less than this (seconds)
TRIM_BACKOFF_MAX = 64       # seconds
PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_bytes():
    """Our resident set size; None when /proc cannot be read (out of fds)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * PAGE
    except OSError:
        return None


def _libc():
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None)
        libc.mallopt, libc.malloc_trim   # glibc only: musl has neither
    except (OSError, AttributeError):
        return None
    return libc


class HeapTrimmer:
    def __init__(self):
        self.libc = _libc()
        self.trims = 0
        self.signature = None
        self.backoff = 0        # seconds to wait after a useless, costly trim
        self.next_trim = 0.0

    def pin_malloc_thresholds(self):
        """Every block of 128 KiB or more is a mapping, unmapped when freed."""
        if self.libc is None:
            return False
        return bool(self.libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)
                    and self.libc.mallopt(M_TRIM_THRESHOLD, 2 * MMAP_THRESHOLD))

    def cron(self, server):
        """Trim the heap if clients moved data or came and went since the
        last look, unless the last trims were expensive and useless."""
        if self.libc is None:
            return
        moved = (server.stat_net_input_bytes + server.stat_net_output_bytes) // TRAFFIC_QUANTUM
        signature = (moved, server.stat_numconnections, len(server.clients))
        if signature == self.signature:
            return
        self.signature = signature
        now = time.monotonic()
        if now < self.next_trim:
            return
        before = rss_bytes()
        if before is None:
            return      # out of descriptors: the cron must not fail; trim later
        self.libc.malloc_trim(0)
        cost = time.monotonic() - now
        self.trims += 1
        after = rss_bytes()
        if (after is None or before - after < TRIM_WORTH) and cost > TRIM_CHEAP:
            self.backoff = min(self.backoff * 2 or 2, TRIM_BACKOFF_MAX)
        else:
            self.backoff = 0
        self.next_trim = now + self.backoff
