"""Plugins and tasks: Lua files from `scripts-dir`, saker.every/after/cancel/
command, the TASK and PLUGIN commands, INFO `tasks`.

A plugin is one `*.lua` file of scripts-dir, run at start in its own
environment. What it registers while its main chunk runs (tasks, commands)
is staged on the new Plugin and goes live only when the chunk has run
without error: a reload replaces the old version's tasks and commands in
one step, and a plugin that fails to load leaves the old version running.

A task is an ae time event whose procedure calls its Lua function through
the bridge and returns the interval (AE_NOMORE for saker.after, or when
the task was cancelled or disabled meanwhile). A failing or timed-out task
is logged, counted, published as a `task_error` event, and stays
scheduled.
"""

import hashlib
import os
import re
import time

from .ae import AE_NOMORE
from .log import log, log_from, LL_NOTICE, LL_WARNING
from .lua_bridge import ArgError, LuaBridge, saker_api, KIND_COMMAND, KIND_TASK
from .server_h import Command, server, CMD_ADMIN, CMD_NOSCRIPT
from . import metrics
from . import info, scripting

COMMAND_NAME = re.compile(r"^[a-z][a-z0-9_.-]{0,63}$")


class Plugin:
    """A loaded (or staged) plugin: what it registered, and how its load went."""

    __slots__ = ("name", "path", "tasks", "commands", "error", "loaded_at", "seq", "live")

    def __init__(self, name, path, live=False):
        self.name = name
        self.path = path
        self.tasks = {}          # id -> Task
        self.commands = {}       # name -> Command
        self.error = None
        self.loaded_at = 0
        self.seq = 0             # for default task names <plugin>:<n>
        self.live = live         # registrations take effect at once


class Task:
    __slots__ = ("id", "name", "plugin", "fn", "interval", "oneshot", "enabled", "te_id",
                 "runs", "errors", "timeouts", "last_ms", "total_ms", "max_ms", "last_error",
                 "cancelled")

    def __init__(self, id, name, plugin, fn, interval, oneshot, enabled):
        self.id = id
        self.name = name
        self.plugin = plugin
        self.fn = fn
        self.interval = interval
        self.oneshot = oneshot
        self.enabled = enabled
        self.te_id = None
        self.runs = self.errors = self.timeouts = 0
        self.last_ms = self.total_ms = self.max_ms = 0.0
        self.last_error = ""
        self.cancelled = False


class TaskManager:
    """server.tasks: the plugins of scripts-dir and every task."""

    def __init__(self, bridge, scripts_dir):
        self.bridge = bridge
        self.dir = scripts_dir
        self.plugins = {}
        self.tasks = {}
        self.next_id = 1
        # name -> digest of the file as it was last loaded (or tried):
        # a config reload reloads only the plugins whose files changed.
        self.digests = {}
        # Tasks and commands registered by EVAL scripts belong here.
        self.eval_owner = Plugin("eval", None, live=True)

    # ---- plugins ------------------------------------------------------------

    def plugin_files(self):
        try:
            names = sorted(os.listdir(self.dir))
        except FileNotFoundError:
            log(LL_NOTICE, "No scripts-dir %s: no plugins to load", self.dir)
            return {}
        except OSError as e:
            log(LL_WARNING, "Can't read scripts-dir %s: %s", self.dir, e.strerror)
            return {}
        return {n[:-4]: os.path.join(self.dir, n) for n in names
                if n.endswith(".lua") and os.path.isfile(os.path.join(self.dir, n))}

    def load_all(self):
        """Load every plugin of scripts-dir; a list of error messages."""
        errors = []
        for name, path in self.plugin_files().items():
            err = self.load(name, path)
            if err:
                errors.append(err)
        return errors

    def load(self, name, path):
        """Load (or reload) one plugin atomically; an error message or None."""
        try:
            with open(path, "rb") as f:
                source = f.read()
        except OSError as e:
            return self.load_failed(name, path, "%s: %s" % (path, e.strerror))
        self.digests[name] = file_digest(source)
        new = Plugin(name, path)
        started = time.monotonic()
        res = self.bridge.load_plugin(source, "@" + os.path.basename(path), name, owner=new)
        if not res.ok:
            self.discard(new)
            return self.load_failed(name, path, res.error)
        old = self.plugins.get(name)
        if old is not None:
            self.unload(old)
        self.commit(new)
        log(LL_NOTICE, "Plugin %s loaded from %s in %.1f ms: %d task(s), %d command(s)",
            name, path, (time.monotonic() - started) * 1000, len(new.tasks), len(new.commands))
        return None

    def load_failed(self, name, path, message):
        old = self.plugins.get(name)
        if old is None:
            # Listed by PLUGIN LIST with its error; it registered nothing.
            old = self.plugins[name] = Plugin(name, path, live=True)
        text = "Plugin %s failed to load: %s" % (name, message)
        if old.loaded_at:
            text += " (the previous version keeps running)"
        old.error = message
        log(LL_WARNING, "%s", text)
        return text

    def commit(self, plugin):
        plugin.live = True
        plugin.error = None
        plugin.loaded_at = int(time.time())
        self.plugins[plugin.name] = plugin
        for cmd in plugin.commands.values():
            server.register_command(cmd)
        for task in plugin.tasks.values():
            self.tasks[task.id] = task
            if task.enabled:
                self.schedule(task)

    def unload(self, plugin):
        for task in list(plugin.tasks.values()):
            self.forget(task)
        for name in plugin.commands:
            server.unregister_command(name)
            self.bridge.held -= 1
        plugin.commands = {}
        self.plugins.pop(plugin.name, None)

    def discard(self, plugin):
        """Drop what a plugin that failed to load had staged."""
        for task in plugin.tasks.values():
            task.fn = None
            self.bridge.held -= 1
        self.bridge.held -= len(plugin.commands)
        plugin.tasks = {}
        plugin.commands = {}

    def reload(self, name=None):
        """PLUGIN RELOAD [name]: a list of error messages."""
        files = self.plugin_files()
        if name is not None:
            if name not in files:
                if name not in self.plugins:
                    return ["no such plugin '%s'" % name]
                self.unload(self.plugins[name])
                return []
            err = self.load(name, files[name])
            return [err] if err else []
        errors = []
        for gone in [n for n in self.plugins if n not in files]:
            self.unload(self.plugins[gone])
        for n, path in files.items():
            err = self.load(n, path)
            if err:
                errors.append(err)
        return errors

    # ---- tasks ------------------------------------------------------------------

    def owner(self):
        owner = self.bridge.owner
        return owner if owner is not None else self.eval_owner

    def find(self, key):
        if isinstance(key, int):
            task = self.tasks.get(key)
            if task is None:
                task = self.staged_task(lambda t: t.id == key)
            return task
        for task in self.tasks.values():
            if task.name == key:
                return task
        return self.staged_task(lambda t: t.name == key)

    def staged_task(self, pred):
        owner = self.bridge.owner
        if owner is not None and not owner.live:
            for task in owner.tasks.values():
                if pred(task):
                    return task
        return None

    def add_task(self, ms, fn, opts, oneshot):
        plugin = self.owner()
        opts = opts or {}
        name = opts.get("name")
        if name is not None and not isinstance(name, str):
            raise ArgError(3, "field 'name' must be a string")
        enabled = opts.get("enabled", True)
        if not isinstance(enabled, bool):
            raise ArgError(3, "field 'enabled' must be a boolean")
        if name is None:
            plugin.seq += 1
            name = "%s:%d" % (plugin.name, plugin.seq)
        existing = self.find(name)
        if existing is not None and existing.plugin is not self.replaced_by(plugin):
            return None, "a task named '%s' already exists" % name
        task = Task(self.next_id, name, plugin, fn, ms, oneshot, enabled)
        self.next_id += 1
        self.bridge.held += 1
        plugin.tasks[task.id] = task
        if plugin.live:
            self.tasks[task.id] = task
            if enabled:
                self.schedule(task)
        return task.id

    def replaced_by(self, plugin):
        """The live plugin a staged one replaces (its names may be reused)."""
        return self.plugins.get(plugin.name) if not plugin.live else None

    def schedule(self, task):
        if task.te_id is None:
            task.te_id = server.el.create_time_event(task.interval, self.fire, task)

    def unschedule(self, task):
        if task.te_id is not None:
            server.el.delete_time_event(task.te_id)
            task.te_id = None

    def forget(self, task):
        """Cancel a task for good: no timer, no reference to its function."""
        task.cancelled = True
        self.unschedule(task)
        self.tasks.pop(task.id, None)
        task.plugin.tasks.pop(task.id, None)
        if task.fn is not None:
            task.fn = None
            self.bridge.held -= 1

    def fire(self, el, te_id, task):
        if task.cancelled or not task.enabled or task.te_id != te_id:
            return AE_NOMORE
        self.run(task)
        if task.cancelled or not task.enabled or task.te_id != te_id:
            return AE_NOMORE
        if task.oneshot:
            task.te_id = None
            self.forget(task)
            return AE_NOMORE
        return task.interval

    def run(self, task):
        """Run a task once now; the LuaResult."""
        started = time.perf_counter()
        res = self.bridge.call(task.fn, kind=KIND_TASK, label=task.name, owner=task.plugin)
        ms = (time.perf_counter() - started) * 1000
        task.runs += 1
        task.last_ms = ms
        task.total_ms += ms
        if ms > task.max_ms:
            task.max_ms = ms
        metrics.observe_task(task, ms / 1000.0)
        if not res.ok:
            self.task_failed(task, res)
        return res

    def task_failed(self, task, res):
        task.errors += 1
        if self.bridge.kill_reason:
            task.timeouts += 1
        text = scripting.error_text(res).decode("utf-8", "replace")
        task.last_error = text
        where = res.where() or "%s:0" % (task.plugin.name + ".lua")
        log_from(LL_WARNING, where, "Task %s of plugin %s failed: %s" % (
            task.name, task.plugin.name, text))
        server.emit_event("task_error", task=task.name, plugin=task.plugin.name, error=text)

    def set_enabled(self, task, enabled):
        task.enabled = enabled
        if enabled:
            self.schedule(task)
        else:
            self.unschedule(task)

    # ---- plugin commands ------------------------------------------------------------

    def add_command(self, name, fn, opts):
        plugin = self.owner()
        opts = opts or {}
        arity = opts.get("arity", -1)
        if not isinstance(arity, int) or isinstance(arity, bool) or arity == 0:
            raise ArgError(3, "field 'arity' must be a non-zero integer")
        summary = opts.get("summary", "")
        if not isinstance(summary, str):
            raise ArgError(3, "field 'summary' must be a string")
        acl_cats = _command_acl_option(opts.get("acl"))
        lname = name.lower()
        if not COMMAND_NAME.match(lname):
            raise ArgError(1, "invalid command name '%s'" % name)
        existing = server.commands.get(lname.encode())
        if existing is not None:
            mine = self.replaced_by(plugin) or plugin
            if existing.plugin is None:
                return None, "command '%s' already exists" % lname
            if existing.plugin != mine.name:
                return None, "command '%s' is registered by plugin '%s'" % (
                    lname, existing.plugin)
        if lname in plugin.commands:
            self.bridge.held -= 1
        cmd = Command(lname, self.command_proc(plugin, lname, fn), arity, 0,
                      group="plugin", summary=summary or "Lua command of plugin %s" % plugin.name,
                      acl=acl_cats)
        cmd.plugin = plugin.name
        plugin.commands[lname] = cmd
        self.bridge.held += 1
        if plugin.live:
            server.register_command(cmd)
        return True

    def command_proc(self, plugin, name, fn):
        bridge = self.bridge

        def proc(c):
            res = bridge.call(fn, *c.argv[1:], kind=KIND_COMMAND, label=name, owner=plugin,
                              client=c)
            scripting.reply_result(c, res)
        return proc


def file_digest(source):
    return hashlib.sha1(source).digest()


# A plugin command that declares no categories may do anything a plugin can:
# only users with every one of these may run it.
PLUGIN_COMMAND_DEFAULT_ACL = "admin dangerous exec"


def _command_acl_option(value):
    """opts.acl of saker.command: a list of ACL category names ("read" or
    "@read"), as the categories the command is in (acl.py)."""
    from .acl import CATEGORY_FLAG
    if value is None:
        return PLUGIN_COMMAND_DEFAULT_ACL
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        raise ArgError(3, "field 'acl' must be a list of ACL category names")
    names = []
    for v in value:
        if not isinstance(v, str) or v.lstrip("@").lower() not in CATEGORY_FLAG:
            raise ArgError(3, "field 'acl': unknown ACL category '%s'" % (v,))
        names.append(v.lstrip("@").lower())
    return " ".join(names)


# ---- saker.* functions of this module ----------------------------------------

def _manager():
    return server.tasks


@saker_api("every", "number", "function", "table?")
def saker_every(ms, fn, opts=None):
    """saker.every(ms, fn [, {name=, enabled=}]) -> task id."""
    if ms <= 0:
        raise ArgError(1, "interval must be positive")
    return _manager().add_task(ms, fn, opts, oneshot=False)


@saker_api("after", "number", "function")
def saker_after(ms, fn):
    """saker.after(ms, fn) -> task id: run fn once, ms from now."""
    if ms < 0:
        raise ArgError(1, "delay must not be negative")
    return _manager().add_task(ms, fn, None, oneshot=True)


@saker_api("cancel", "integer|string")
def saker_cancel(key):
    """saker.cancel(id or name) -> true, or nil and a message."""
    mgr = _manager()
    task = mgr.find(key)
    if task is None:
        return None, "no such task '%s'" % key
    mgr.forget(task)
    return True


@saker_api("command", "string", "function", "table?")
def saker_command(name, fn, opts=None):
    """saker.command(name, fn [, {arity=, summary=, acl={"read", ...}}]) -> true, or nil and a message."""
    return _manager().add_command(name, fn, opts)


# ---- TASK and PLUGIN commands ---------------------------------------------------------

def _bulk(s):
    if isinstance(s, str):
        s = s.encode("utf-8", "replace")
    return b"$%d\r\n%s\r\n" % (len(s), s)


def _map(c, pairs):
    out = [b"*%d\r\n" % (2 * len(pairs)) if c.resp == 2 else b"%%%d\r\n" % len(pairs)]
    for k, v in pairs:
        out.append(_bulk(k))
        out.append(b":%d\r\n" % v if isinstance(v, int) else _bulk(v))
    return b"".join(out)


def task_fields(task):
    return [("name", task.name), ("plugin", task.plugin.name),
            ("interval", int(task.interval) if not task.oneshot else 0),
            ("oneshot", int(task.oneshot)), ("enabled", int(task.enabled)),
            ("runs", task.runs), ("errors", task.errors), ("timeouts", task.timeouts),
            ("last_ms", "%.3f" % task.last_ms),
            ("avg_ms", "%.3f" % (task.total_ms / task.runs if task.runs else 0.0)),
            ("max_ms", "%.3f" % task.max_ms), ("last_error", task.last_error)]


def task_list_command(c):
    tasks = sorted(server.tasks.tasks.values(), key=lambda t: t.id)
    c.add_reply(b"*%d\r\n" % len(tasks) + b"".join(_map(c, task_fields(t)) for t in tasks))


def _task_or_reply(c):
    name = c.argv[2].decode("utf-8", "surrogateescape")
    task = server.tasks.find(name)
    if task is None:
        c.add_reply_error("no such task '%s'" % name)
    return task


def task_run_command(c):
    task = _task_or_reply(c)
    if task is not None:
        scripting.reply_result(c, server.tasks.run(task))


def task_enable_command(c):
    task = _task_or_reply(c)
    if task is not None:
        server.tasks.set_enabled(task, True)
        c.add_reply(b"+OK\r\n")


def task_disable_command(c):
    task = _task_or_reply(c)
    if task is not None:
        server.tasks.set_enabled(task, False)
        c.add_reply(b"+OK\r\n")


def task_help_command(c):
    c.add_reply_help("TASK", [
        "LIST",
        "    List the tasks: name, plugin, interval, enabled, runs, errors, timings, last error.",
        "RUN <name>",
        "    Run a task now, once, and reply with what it returned.",
        "ENABLE <name>",
        "    Schedule a disabled task again.",
        "DISABLE <name>",
        "    Stop running a task on its timer (TASK RUN still runs it)."])


def plugin_fields(p):
    return [("name", p.name), ("file", p.path or ""),
            ("status", "error" if p.error and not p.loaded_at else "loaded"),
            ("tasks", len(p.tasks)), ("commands", " ".join(sorted(p.commands))),
            ("loaded_at", p.loaded_at), ("error", p.error or "")]


def plugin_list_command(c):
    plugins = [server.tasks.plugins[n] for n in sorted(server.tasks.plugins)]
    c.add_reply(b"*%d\r\n" % len(plugins) + b"".join(_map(c, plugin_fields(p)) for p in plugins))


def plugin_reload_command(c):
    if len(c.argv) > 3:
        c.add_reply_error("wrong number of arguments for 'plugin|reload' command")
        return
    name = c.argv[2].decode("utf-8", "surrogateescape") if len(c.argv) == 3 else None
    errors = server.tasks.reload(name)
    if errors:
        c.add_reply_error("; ".join(errors))
    else:
        c.add_reply(b"+OK\r\n")


def plugin_help_command(c):
    c.add_reply_help("PLUGIN", [
        "LIST",
        "    List the plugins of scripts-dir with their tasks, commands and load errors.",
        "RELOAD [<name>]",
        "    Reload one plugin, or rescan scripts-dir and reload every plugin. A plugin",
        "    that fails to load keeps its previous version running."])


def _container(name, subs, summary):
    cmd = Command(name, None, -2, 0, group="saker", summary=summary)
    for sub in subs:
        cmd.add_subcommand(sub)
    return cmd


COMMANDS = [
    _container("task", [
        Command("list", task_list_command, 2, 0, group="saker", summary="List the Lua tasks"),
        Command("run", task_run_command, 3, CMD_ADMIN, group="saker", summary="Run a task now",
                acl="exec"),
        Command("enable", task_enable_command, 3, CMD_ADMIN, group="saker",
                summary="Enable a task"),
        Command("disable", task_disable_command, 3, CMD_ADMIN, group="saker",
                summary="Disable a task"),
        Command("help", task_help_command, 2, 0, group="saker",
                summary="Show helpful text about the different subcommands"),
    ], "Lua tasks"),
    _container("plugin", [
        Command("list", plugin_list_command, 2, 0, group="saker", summary="List the plugins"),
        Command("reload", plugin_reload_command, -2, CMD_ADMIN | CMD_NOSCRIPT, group="saker",
                acl="exec",
                summary="Reload one or every plugin"),
        Command("help", plugin_help_command, 2, 0, group="saker",
                summary="Show helpful text about the different subcommands"),
    ], "Lua plugins"),
]


# ---- INFO tasks ---------------------------------------------------------------------

def _info_name(name):
    return re.sub(r"[^A-Za-z0-9_]", "_", name)


def section_tasks():
    if server.tasks is None:
        return []
    lines = []
    for t in sorted(server.tasks.tasks.values(), key=lambda t: t.id):
        lines.append("task_%s:runs=%d,errors=%d,timeouts=%d,last_ms=%.3f,avg_ms=%.3f,"
                     "max_ms=%.3f,enabled=%d" % (
                         _info_name(t.name), t.runs, t.errors, t.timeouts, t.last_ms,
                         t.total_ms / t.runs if t.runs else 0.0, t.max_ms, int(t.enabled)))
    return lines


info.register_section("tasks", "Tasks", section_tasks)


# ---- start-up and --test-config -------------------------------------------------------

def scripts_dir(config):
    return config.resolve_path(config.scripts_dir)


def init_lua(srv):
    """Create the bridge (server.lua), the task manager, and load the plugins."""
    try:
        bridge = LuaBridge(srv.config, scripts_dir(srv.config))
    except Exception as e:  # lupa missing or broken: nothing Lua can work
        return "Can't start the Lua runtime (lua-version %s): %s" % (srv.config.lua_version, e)
    bridge.install_api()
    scripting.install_redis_table(bridge)
    srv.lua = bridge
    srv.tasks = TaskManager(bridge, scripts_dir(srv.config))
    log(LL_NOTICE, "Lua runtime: %s", bridge.version_string())
    srv.tasks.load_all()
    return None


def check_plugins(config):
    """--test-config: compile every plugin; problems as "file:line: message"."""
    d = scripts_dir(config)
    if not os.path.isdir(d):
        return []
    try:
        bridge = LuaBridge(config, d)
    except Exception as e:
        return ["lua-version %s: can't start the Lua runtime: %s" % (config.lua_version, e)]
    problems = []
    for n in sorted(os.listdir(d)):
        path = os.path.join(d, n)
        if not n.endswith(".lua") or not os.path.isfile(path):
            continue
        try:
            with open(path, "rb") as f:
                source = f.read()
        except OSError as e:
            problems.append("%s: %s" % (path, e.strerror))
            continue
        err = bridge.check_plugin(source, "@" + n)
        if err:
            # Lua names the chunk by its file name; the operator wants the path.
            problems.append(path + err[len(n):] if err.startswith(n + ":") else
                            "%s: %s" % (path, err))
    return problems
