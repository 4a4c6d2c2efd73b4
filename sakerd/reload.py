"""Reloading the configuration: SIGHUP and CONFIG RELOAD.

A reload reads the config file again (its includes, and the command-line
overrides of the start applied on top, as at start) and checks it exactly
as `--test-config` does (main.config_problems). Then, all or nothing:

- any problem: nothing changes; every problem is logged with its file and
  line and published as one `config_reload_failed` event;
- else every directive that CONFIG SET may change and whose value differs
  is set as CONFIG SET would set it (one `config_changed` event each), the
  users are replaced when the file's differ from the live ones (ACL LOAD:
  clients of a removed user are disconnected), the plugins whose files
  changed are reloaded (each atomically, as PLUGIN RELOAD), and a changed
  directive that needs a restart (port, bind, unixsocket, databases, ...)
  is reported as a warning and keeps its running value.

The file is the truth: what CONFIG SET or ACL SETUSER changed live and the
file does not say is undone by a reload, as by a restart.

Supervised programs keep running, as with supervisord's `update` (unlike
its SIGHUP): a program a reloaded plugin supervises again takes its new
settings, and is restarted only if its command changed.

The log file is reopened first, whatever the outcome: logrotate's
postrotate SIGHUP must work even while the config file is being edited.
A SIGHUP that arrives while a script runs (the loop serves clients from the
Lua hook) waits until the script ended: plugins cannot be reloaded from
inside Lua.
"""

from . import config as configmod, log as logmod, systemd
from .log import log, LL_NOTICE, LL_WARNING
from .server_h import server

_pending = False


def request_reload():
    """SIGHUP: reload now, or after the running script (see above)."""
    global _pending
    if server.lua is not None and server.lua.depth:
        if not _pending:
            log(LL_NOTICE, "A script is running: the reload waits until it ends")
            server.cron_handlers.append(_reload_when_idle)
        _pending = True
        return
    reload_config()


def _reload_when_idle():
    global _pending
    if server.lua is not None and server.lua.depth:
        return
    _pending = False
    server.cron_handlers.remove(_reload_when_idle)
    reload_config()


def reload_config():
    """Reload; (problems, report): problems non-empty means nothing changed,
    report the lines saying what changed and what needs a restart."""
    systemd.notify_reloading()
    logmod.reopen()
    cfg = server.config
    if not cfg.config_file:
        problems = ["The server is running without a config file"]
        log(LL_WARNING, "Can't reload: %s", problems[0])
        systemd.notify_reloaded(problems)
        return problems, []
    from .main import config_problems
    new, problems = config_problems(cfg.config_file, cfg.overrides)
    if problems:
        refuse(problems)
        return problems, []
    report, warnings = [], []
    apply_directives(new, report, warnings)
    apply_users(new, report)
    apply_plugins(report, warnings)
    log(LL_NOTICE, "Configuration reloaded from %s: %d change%s%s", cfg.config_file,
        len(report), "" if len(report) == 1 else "s",
        ", %d warning%s" % (len(warnings), "" if len(warnings) == 1 else "s") if warnings else "")
    server.emit_event("config_reloaded", file=cfg.config_file, applied=report, warnings=warnings)
    systemd.notify_reloaded([])
    return [], report + warnings


def refuse(problems):
    log(LL_WARNING, "Can't reload the configuration, the running one stays: %d problem%s",
        len(problems), "" if len(problems) == 1 else "s")
    for p in problems:
        log(LL_WARNING, "%s", p)
    server.emit_event("config_reload_failed", file=server.config.config_file, problems=problems)
    systemd.notify_reloaded(problems)


# ---- directives -------------------------------------------------------------------------

def apply_directives(new, report, warnings):
    """Set the live directives that changed, as CONFIG SET; warn about the others."""
    from .cmd_server import announce_config_change, apply_config_changes
    from .server import adjust_open_files_limit
    cfg = server.config
    changed = []
    for d in configmod.DIRECTIVES:
        old_text, new_text = d.format(cfg.get(d.name)), d.format(new.get(d.name))
        if old_text == new_text:
            continue
        if not d.mutable:
            shown = ("(redacted)", "(redacted)") if d.sensitive else (new_text, old_text)
            warnings.append("%s: %s '%s' needs a restart, the running value '%s' stays" % (
                new.origin.get(d.name, "(defaults)"), d.name, shown[0], shown[1]))
            log(LL_WARNING, "%s", warnings[-1])
            continue
        changed.append((d, old_text))
        setattr(cfg, d.attr, getattr(new, d.attr))
        if d.name in new.origin:
            cfg.origin[d.name] = new.origin[d.name]
        else:
            cfg.origin.pop(d.name, None)
    if any(d.name == "maxclients" for d, _ in changed):
        adjust_open_files_limit()
    apply_config_changes()
    for d, old_text in changed:
        if d.format(cfg.get(d.name)) != old_text:
            report.append(announce_config_change(d, old_text, "Config reload:"))


# ---- users ------------------------------------------------------------------------------

def apply_users(new, report):
    """Install the file's users (and unix socket peers) if they differ from the live ones."""
    from . import acl
    built = acl.load_users(new)     # config_problems checked that this works
    live = {name: u.describe() for name, u in acl.users.users.items()}
    wanted = {name: u.describe() for name, u in built.items()}
    lines = ["user %s %s" % (name.decode("utf-8", "replace"), what)
             for name, what in _user_changes(live, wanted)]
    if lines:
        acl.users.replace_all(built)
    peers = acl.peer_user_map(new)
    if peers != acl.users.peer_users:
        acl.users.peer_users = peers
        lines.append("unixsocket-peer-user mapping changed")
    cfg = server.config
    cfg.user_lines, cfg.peer_user_lines = new.user_lines, new.peer_user_lines
    for line in lines:
        log(LL_NOTICE, "Config reload: %s", line)
    report.extend(lines)


def _user_changes(live, wanted):
    for name in sorted(set(live) | set(wanted)):
        if name not in live:
            yield name, "added"
        elif name not in wanted:
            yield name, "removed (its clients are disconnected)"
        elif live[name] != wanted[name]:
            yield name, "changed"


# ---- plugins and the programs they supervise ---------------------------------------------

def apply_plugins(report, warnings):
    """Reload exactly the plugins whose files changed, appeared or went away."""
    from .procs import supervisor
    from .tasks import file_digest
    mgr = server.tasks
    if mgr is None:
        return
    files = mgr.plugin_files()
    for name in [n for n in mgr.plugins if n not in files]:
        mgr.unload(mgr.plugins[name])
        mgr.digests.pop(name, None)
        report.append("plugin %s unloaded (its file is gone)" % name)
    supervisor.staged = []
    try:
        for name, path in files.items():
            try:
                with open(path, "rb") as f:
                    digest = file_digest(f.read())
            except OSError:
                digest = None      # load() reports why
            if name in mgr.plugins and mgr.digests.get(name) == digest:
                continue
            known = name in mgr.plugins
            err = mgr.load(name, path)
            if err:
                warnings.append(err)
            else:
                report.append("plugin %s %s from %s" % (name, "reloaded" if known else "loaded",
                                                         path))
        staged, supervisor.staged = supervisor.staged, None
    finally:
        supervisor.staged = None
    apply_program_changes(staged, report)


def apply_program_changes(staged, report):
    """Programs supervised again by a reloaded plugin: new settings once the
    plugin loaded; a changed command restarts a program that is up."""
    from .procs import RUNNING, STARTING, BACKOFF
    for owner, prog, opts in staged:
        if owner is None or not owner.live:
            continue          # its plugin failed to load: the old settings stay
        changed = prog.argv != opts["cmd"]
        prog.configure(opts)
        if changed and prog.state in (RUNNING, STARTING, BACKOFF):
            log(LL_NOTICE, "Process %s: its command changed, restarting it", prog.name)
            prog.restart()
            report.append("process %s restarted: its command changed" % prog.name)


# ---- CONFIG RELOAD --------------------------------------------------------------------------

def config_reload_command(c):
    """CONFIG RELOAD: what SIGHUP does, answered with what changed.

    An array of lines (changes, then warnings) when the file was applied,
    an error naming every problem when it was refused."""
    problems, report = reload_config()
    if problems:
        c.add_reply_error("CONFIG RELOAD refused, the running configuration is unchanged: %s" %
                          "; ".join(problems))
        return
    c.add_reply_bulks([line.encode("utf-8", "surrogateescape") for line in report])
