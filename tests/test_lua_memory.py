"""§9.6, short version: many calls into Lua leave the Lua heap and registry flat.

bench/lua_memory.py runs the full 1,000,000 task calls / 100,000 EVALSHA
and reports RSS too.
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "bench"))
from lua_memory import SCRIPT, WORK  # noqa: E402  (the workload of the full figure)


def settle(r):
    """A full GC, then the Lua figures of INFO."""
    r.eval("collectgarbage('collect') collectgarbage('collect')", 0)
    info = r.info("lua")
    return info["used_memory_lua"], info["lua_registry_size"]


def pound(r, sha, n):
    pipe = r.pipeline(transaction=False)
    for i in range(n):
        pipe.execute_command("TASK", "RUN", "work")
        pipe.evalsha(sha, 1, "k", "v%d" % (i % 10))
    for reply in pipe.execute():
        assert not isinstance(reply, Exception), reply


def test_heap_and_registry_stay_flat_across_many_calls(make_daemon, tmp_path):
    d = tmp_path / "plugins"
    d.mkdir()
    (d / "work.lua").write_text(WORK)
    daemon = make_daemon(config="scripts-dir %s\n" % d)
    r = daemon.client(protocol=2)
    sha = r.script_load(SCRIPT)
    pound(r, sha, 2000)                     # warm up: every code path, caches, interned strings
    heap0, reg0 = settle(r)
    pound(r, sha, 10000)
    heap1, reg1 = settle(r)
    assert reg1 == reg0
    assert abs(heap1 - heap0) <= 1024, (heap0, heap1)
    info = r.info("lua")
    assert info["lua_gc_steps"] >= 24000 // 50 - 1
    assert r.get("task:runs") == b"12000"


def test_debug_checks_find_no_leak_in_any_kind_of_call(make_daemon, tmp_path):
    d = tmp_path / "plugins"
    d.mkdir()
    (d / "work.lua").write_text(WORK + """
saker.command("echoall", function(...) return {...} end)
""")
    daemon = make_daemon(config="scripts-dir %s\nlua-debug-checks yes\n" % d)
    r = daemon.client(protocol=2)
    sha = r.script_load(SCRIPT)
    pound(r, sha, 100)
    for _ in range(50):
        assert r.execute_command("ECHOALL", "a", "b") == [b"a", b"b"]
    r.eval("return saker.after(1, function() end)", 0)
    r.execute_command("PLUGIN", "RELOAD")
    info = r.info("lua")
    assert info["lua_debug_checks"] == 1
    assert info["lua_debug_leaks"] == 0
