"""CPU and memory of supervised programs, their whole process group summed (psutil).

Sampled from the server cron once a second (SAMPLE_MS), never per command:
PROC STATUS, INFO processes and /metrics read the last sample.

- The group's members are found with getpgid() over /proc's pids: one
  system call each, no file read, so a host with many processes costs
  little. psutil then reads each member's /proc/<pid>/stat (cpu_times)
  and statm (memory_info) in one oneshot().
- A member that exits takes its CPU time with it; its last value is kept in
  `cpu_gone`, so cpu_seconds (Prometheus's *_cpu_seconds_total) never goes
  down while the program runs. A new start begins again at 0.
- The members are other users' processes at times (a program that drops
  privileges): psutil's AccessDenied / NoSuchProcess skip that member.
"""

import os
import time

import psutil

SAMPLE_MS = 1000


class Usage:
    """One program's resource usage, updated by sample()."""

    def __init__(self):
        self.reset()

    def reset(self):
        self.rss = 0                # bytes, the group's sum
        self.cpu_percent = 0.0      # over the last sample interval; 100 = one core
        self.cpu_gone = 0.0         # CPU seconds of members that have exited
        self.cpu_by_pid = {}        # pid -> (create_time, user+system seconds)
        self.members = 0
        self.last_total = None      # (monotonic, cpu_seconds) of the previous sample

    def stopped(self):
        """Nothing runs: no memory, no CPU; cpu_seconds stays until the next start."""
        self.rss = 0
        self.cpu_percent = 0.0
        self.members = 0

    @property
    def cpu_seconds(self):
        return self.cpu_gone + sum(c for _, c in self.cpu_by_pid.values())

    def sample(self, pids, now=None):
        """Update from the group's current members."""
        now = time.monotonic() if now is None else now
        rss, seen = 0, {}
        for pid in pids:
            try:
                p = psutil.Process(pid)
                with p.oneshot():
                    t = p.cpu_times()
                    seen[pid] = (p.create_time(), t.user + t.system)
                    rss += p.memory_info().rss
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
        for pid, (created, cpu) in self.cpu_by_pid.items():
            if pid not in seen or seen[pid][0] != created:
                self.cpu_gone += cpu
        self.cpu_by_pid = seen
        self.rss = rss
        self.members = len(seen)
        total = self.cpu_seconds
        if self.last_total is not None and now > self.last_total[0]:
            self.cpu_percent = max(0.0, (total - self.last_total[1]) /
                                   (now - self.last_total[0]) * 100.0)
        self.last_total = (now, total)


def process_groups(pgids):
    """{pgid: [pids]} of the live processes in the given groups."""
    groups = {g: [] for g in pgids}
    if not groups:
        return groups
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            g = os.getpgid(int(entry))
        except OSError:
            continue
        if g in groups:
            groups[g].append(int(entry))
    return groups
