"""§9.6: a million task calls and 100,000 EVALSHA leave Lua heap, registry and RSS flat.

Starts a real sakerd with one plugin whose task does some work (tables,
strings, saker.call, saker.publish) and returns a nested table, warms it
up, then drives the task through TASK RUN (the same bridge call the task's
timer makes) and a script through EVALSHA, and prints the Lua heap (after
a full GC), the registry size and the process RSS before and after.

    python bench/lua_memory.py [--tasks 1000000] [--evalsha 100000] [--lua-version 5.4]
"""

import argparse
import os
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))

from helpers import Daemon  # noqa: E402

WORK = """
local seen = 0
saker.every(3600000, function()
  seen = seen + 1
  local t = {}
  for i = 1, 20 do t[i] = string.rep("x", i) .. i end
  saker.call("incr", "task:runs")
  saker.publish("nobody", table.concat(t, ","))
  return {seen, t[20], {nested = true}}
end, {name = "work"})
"""

SCRIPT = ("local r = {} for i = 1, 10 do r[i] = KEYS[1] .. i end "
          "redis.call('set', KEYS[1], ARGV[1]) return {r, redis.call('get', KEYS[1]), 1.5}")

BATCH = 10000


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def figures(r, pid):
    r.eval("collectgarbage('collect') collectgarbage('collect')", 0)
    info = r.info("lua")
    return {"heap": info["used_memory_lua"], "registry": info["lua_registry_size"],
            "rss_kib": rss_kib(pid), "calls": info["lua_calls"], "gc_steps": info["lua_gc_steps"]}


def drive(r, n, make):
    done = 0
    while done < n:
        pipe = r.pipeline(transaction=False)
        k = min(BATCH, n - done)
        for i in range(k):
            make(pipe, done + i)
        for reply in pipe.execute(raise_on_error=False):
            if isinstance(reply, Exception):
                raise SystemExit("error reply: %s" % reply)
        done += k


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tasks", type=int, default=1000000)
    ap.add_argument("--evalsha", type=int, default=100000)
    ap.add_argument("--warmup", type=int, default=10000)
    ap.add_argument("--lua-version", default="5.4")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        plugins = os.path.join(tmp, "plugins")
        os.mkdir(plugins)
        with open(os.path.join(plugins, "work.lua"), "w") as f:
            f.write(WORK)
        d = Daemon(tmp, "scripts-dir %s\nlua-version %s\nloglevel warning\n" % (
            plugins, args.lua_version))
        try:
            r = d.client(protocol=2)
            sha = r.script_load(SCRIPT)
            task = lambda p, i: p.execute_command("TASK", "RUN", "work")  # noqa: E731
            script = lambda p, i: p.evalsha(sha, 1, "k", "v%d" % (i % 10))  # noqa: E731
            drive(r, args.warmup, task)
            drive(r, args.warmup, script)
            before = figures(r, d.pid)
            t0 = time.monotonic()
            drive(r, args.tasks, task)
            t_tasks = time.monotonic() - t0
            t0 = time.monotonic()
            drive(r, args.evalsha, script)
            t_eval = time.monotonic() - t0
            after = figures(r, d.pid)
            runs = int(r.get("task:runs"))
        finally:
            d.stop()
    print("lua-version %s: %d task calls in %.1f s (%.1f us/call), %d EVALSHA in %.1f s "
          "(%.1f us/call)" % (args.lua_version, args.tasks, t_tasks, t_tasks * 1e6 / args.tasks,
                             args.evalsha, t_eval, t_eval * 1e6 / args.evalsha))
    print("%-22s %12s %12s %12s" % ("", "before", "after", "delta"))
    for key, label in (("heap", "Lua heap (bytes)"), ("registry", "Lua registry entries"),
                       ("rss_kib", "RSS (KiB)"), ("calls", "lua_calls"),
                       ("gc_steps", "lua_gc_steps")):
        print("%-22s %12d %12d %+12d" % (label, before[key], after[key],
                                         after[key] - before[key]))
    print("task runs counted by the task itself: %d" % runs)
    ok = (after["registry"] == before["registry"] and
          abs(after["heap"] - before["heap"]) <= 4096 and
          after["rss_kib"] - before["rss_kib"] < 2048)
    print("flat (registry equal, heap within 4 KiB, RSS grew < 2 MiB): %s" % ("yes" if ok else "NO"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
