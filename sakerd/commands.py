"""The command table: every module's COMMANDS list, registered in one place.

A command is a server.Command: name, handler, arity (negative: at least
that many), flags, key positions, group. Each module keeps its commands
next to their handlers; adding a command touches that list only.
"""

from . import (acl, bitops, cmd_server, db_commands, functions, geo, hyperloglog, latency, multi,
               object, procs, pubsub, scripting, sort, t_hash, t_list, t_set, t_stream, t_string,
               t_zset, tasks)

MODULES = (cmd_server, acl, db_commands, t_string, t_hash, t_list, t_set, t_zset, t_stream, sort,
           object, latency, multi, pubsub, procs, scripting, functions, tasks, bitops, hyperloglog,
           geo)


def populate(server):
    for module in MODULES:
        for cmd in module.COMMANDS:
            server.register_command(cmd)
