"""INFO: sections of `field:value` lines, Redis 7 field names (SPEC §8).

A section is a function returning a list of (field, value) pairs or of raw
lines; later subsystems (Lua, tasks, processes, host) add theirs with
register_section(). Sections are joined as Redis does: "# Name" header,
CRLF after every line, one blank line between sections.
"""

import os
import platform
import resource
import sys
import time

from . import __version__, REDIS_COMPAT_VERSION, tracking
from .acl import (users as acl_users, ACL_DENIED_AUTH, ACL_DENIED_CHANNEL, ACL_DENIED_CMD,
                  ACL_DENIED_KEY)
from .auth_throttle import stats as auth_stats
from .compiled import running_compiled
from .server_h import (server, CLIENT_PUBSUB, STATS_METRIC_COMMAND, STATS_METRIC_NET_INPUT,
                     STATS_METRIC_NET_OUTPUT)
from .util import bytes_to_human

_PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_bytes():
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * _PAGE
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def section_server():
    uptime = int(time.time() - server.stat_starttime)
    cfg = server.config
    return [
        ("saker_version", __version__),
        ("redis_version", REDIS_COMPAT_VERSION),
        ("redis_mode", "standalone"),
        ("os", "%s %s %s" % (platform.system(), platform.release(), platform.machine())),
        ("arch_bits", "64" if sys.maxsize > 2 ** 32 else "32"),
        ("multiplexing_api", server.el.get_api_name()),
        ("python_version", platform.python_version()),
        ("compiled", "yes" if running_compiled() else "no"),
        ("process_id", server.pid),
        ("run_id", server.run_id),
        ("tcp_port", cfg.port),
        ("server_time_usec", time.time_ns() // 1000),
        ("uptime_in_seconds", uptime),
        ("uptime_in_days", uptime // 86400),
        ("hz", server.hz),
        ("configured_hz", cfg.hz),
        ("lua_version", _lua_version()),
        ("executable", server.executable),
        ("config_file", cfg.config_file or ""),
    ]


def _lua_version():
    if server.lua is not None:
        return server.lua.version_string()
    return server.config.lua_version


def section_clients():
    return [
        ("connected_clients", len(server.clients)),
        ("cluster_connections", 0),
        ("maxclients", server.config.maxclients),
        ("client_recent_max_input_buffer", server.stat_client_recent_max_input),
        ("client_recent_max_output_buffer", server.stat_client_recent_max_output),
        ("blocked_clients", server.blocked_clients),
        ("tracking_clients", server.tracking_clients),
        ("clients_in_timeout_table", sum(1 for c in server.clients.values()
                                          if c.bstate is not None and c.bstate.timeout)),
        ("pubsub_clients", sum(1 for c in server.clients.values()
                               if c.flags & CLIENT_PUBSUB)),
    ]


def lua_memory():
    return server.lua.memory_used() if server.lua is not None else 0


def section_memory():
    rss = rss_bytes()
    if rss > server.stat_peak_memory:
        server.stat_peak_memory = rss
    lua = lua_memory()
    return [
        ("used_memory", rss),
        ("used_memory_human", bytes_to_human(rss)),
        ("used_memory_rss", rss),
        ("used_memory_rss_human", bytes_to_human(rss)),
        ("used_memory_peak", server.stat_peak_memory),
        ("used_memory_peak_human", bytes_to_human(server.stat_peak_memory)),
        ("used_memory_lua", lua),
        ("used_memory_vm_eval", lua),
        ("used_memory_lua_human", bytes_to_human(lua)),
    ] + scripts_memory(lua) + [
        ("maxmemory", 0),
        ("maxmemory_human", "0B"),
        ("maxmemory_policy", "noeviction"),
        ("mem_allocator", "pymalloc"),
        ("allocator_trims", server.heap.trims),
    ]


def scripts_memory(lua):
    """Redis 7's scripts and functions fields of INFO memory, in its order.

    sakerd runs EVAL scripts and functions in one Lua VM: its heap counts
    once, as used_memory_vm_eval; used_memory_vm_functions is 0.
    """
    from . import functions, scripting
    scripts = scripting.scripts_memory()
    fn = functions.functions_memory()
    return [
        ("used_memory_scripts_eval", scripts),
        ("number_of_cached_scripts", len(server.lua.scripts) if server.lua is not None else 0),
        ("number_of_functions", functions.number_of_functions()),
        ("number_of_libraries", functions.number_of_libraries()),
        ("used_memory_vm_functions", 0),
        ("used_memory_vm_total", lua),
        ("used_memory_vm_total_human", bytes_to_human(lua)),
        ("used_memory_functions", fn),
        ("used_memory_scripts", scripts + fn),
        ("used_memory_scripts_human", bytes_to_human(scripts + fn)),
    ]


def section_persistence():
    return [("loading", 0), ("async_loading", 0), ("rdb_changes_since_last_save", 0),
            ("rdb_bgsave_in_progress", 0), ("rdb_last_save_time", int(server.stat_starttime)),
            ("rdb_last_bgsave_status", "ok"), ("aof_enabled", 0),
            ("aof_rewrite_in_progress", 0), ("aof_last_bgrewrite_status", "ok")]


def section_stats():
    return [
        ("total_connections_received", server.stat_numconnections),
        ("total_commands_processed", server.stat_numcommands),
        ("instantaneous_ops_per_sec", server.get_instantaneous_metric(STATS_METRIC_COMMAND)),
        ("total_net_input_bytes", server.stat_net_input_bytes),
        ("total_net_output_bytes", server.stat_net_output_bytes),
        ("instantaneous_input_kbps", "%.2f" % (
            server.get_instantaneous_metric(STATS_METRIC_NET_INPUT) / 1024)),
        ("instantaneous_output_kbps", "%.2f" % (
            server.get_instantaneous_metric(STATS_METRIC_NET_OUTPUT) / 1024)),
        ("rejected_connections", server.stat_rejected_conn),
        ("expired_keys", server.stat_expiredkeys),
        ("evicted_keys", 0),
        ("keyspace_hits", server.stat_keyspace_hits),
        ("keyspace_misses", server.stat_keyspace_misses),
        ("pubsub_channels", len(server.pubsub_channels)),
        ("pubsub_patterns", len(server.pubsub_patterns)),
        ("pubsubshard_channels", len(server.pubsub_shard_channels)),
        ("tracking_total_keys", tracking.total_keys()),
        ("tracking_total_items", tracking.total_items()),
        ("tracking_total_prefixes", tracking.total_prefixes()),
        ("total_error_replies", server.stat_total_error_replies),
        ("client_query_buffer_limit_disconnections", server.stat_client_qbuf_limit_disconnections),
        ("client_output_buffer_limit_disconnections", server.stat_client_outbuf_limit_disconnections),
        ("accept_eagain", server.stat_accept_eagain),
        # Redis 7.2's names for the ACL denials (ACL LOG has the details).
        ("acl_access_denied_auth", acl_users.denied[ACL_DENIED_AUTH]),
        ("acl_access_denied_cmd", acl_users.denied[ACL_DENIED_CMD]),
        ("acl_access_denied_key", acl_users.denied[ACL_DENIED_KEY]),
        ("acl_access_denied_channel", acl_users.denied[ACL_DENIED_CHANNEL]),
        ("auth_failures_throttled", auth_stats["throttled"]),
    ]


def section_replication():
    return [("role", "master"), ("connected_slaves", 0), ("master_repl_offset", 0)]


def section_cpu():
    me = resource.getrusage(resource.RUSAGE_SELF)
    ch = resource.getrusage(resource.RUSAGE_CHILDREN)
    return [
        ("used_cpu_sys", "%.6f" % me.ru_stime),
        ("used_cpu_user", "%.6f" % me.ru_utime),
        ("used_cpu_sys_children", "%.6f" % ch.ru_stime),
        ("used_cpu_user_children", "%.6f" % ch.ru_utime),
    ]


def every_command():
    """Each command and subcommand once (the table also holds aliases)."""
    seen = set()
    for cmd in server.commands.values():
        if cmd.name in seen:
            continue
        seen.add(cmd.name)
        yield cmd
        yield from (cmd.subcommands or {}).values()


def section_commandstats():
    lines = []
    for c in every_command():
        if not (c.calls or c.rejected_calls or c.failed_calls):
            continue
        lines.append("cmdstat_%s:calls=%d,usec=%d,usec_per_call=%.2f,rejected_calls=%d,"
                     "failed_calls=%d" % (c.fullname, c.calls, c.nsec // 1000,
                                          c.nsec / 1000 / c.calls if c.calls else 0,
                                          c.rejected_calls, c.failed_calls))
    return sorted(lines)


def section_errorstats():
    return ["errorstat_%s:count=%d" % (code, n) for code, n in sorted(server.errors.items())]


def section_keyspace():
    lines = []
    for db in server.db:
        if db.dict:
            lines.append("db%d:keys=%d,expires=%d,avg_ttl=%d" % (
                db.id, len(db.dict), len(db.expires), db.avg_ttl))
    return lines


# name -> (title, function, in the default set)
SECTIONS = {}
ORDER = []


def register_section(name, title, fn, default=True):
    if name not in SECTIONS:
        ORDER.append(name)
    SECTIONS[name] = (title, fn, default)


for _name, _title, _fn, _default in (
        ("server", "Server", section_server, True),
        ("clients", "Clients", section_clients, True),
        ("memory", "Memory", section_memory, True),
        ("persistence", "Persistence", section_persistence, True),
        ("stats", "Stats", section_stats, True),
        ("replication", "Replication", section_replication, True),
        ("cpu", "CPU", section_cpu, True),
        ("commandstats", "Commandstats", section_commandstats, False),
        ("errorstats", "Errorstats", section_errorstats, True),
        ("keyspace", "Keyspace", section_keyspace, True)):
    register_section(_name, _title, _fn, _default)


def _render(title, rows):
    out = ["# %s\r\n" % title]
    for row in rows:
        if isinstance(row, tuple):
            out.append("%s:%s\r\n" % row)
        else:
            out.append(row + "\r\n")
    return "".join(out)


def gen_info(names):
    """The INFO text for the requested section names (lower case).

    As Redis's genInfoSectionDict: "default" adds the default sections to
    any others named, "all" and "everything" give every section.
    """
    want = set(names or ["default"])
    if "all" in want or "everything" in want:
        wanted = list(ORDER)
    else:
        wanted = [n for n in ORDER if n in want or "default" in want and SECTIONS[n][2]]
    parts = []
    for n in wanted:
        title, fn, _ = SECTIONS[n]
        parts.append(_render(title, fn()))
    return "\r\n".join(parts)
