"""Command line, start-up and the main loop: `sakerd [-c] FILE [--directive value ...]`."""

import os
import socket
import sys

from . import __version__, config as configmod, log as logmod
from .log import log, LL_NOTICE, LL_WARNING

USAGE = """Usage: sakerd [/path/to/saker.conf] [options]
       sakerd -c /path/to/saker.conf [--directive value ...]
       sakerd --test-config -c /path/to/saker.conf
       sakerd -v or --version
       sakerd -h or --help
       sakerd fleet hosts|run|keygen ... (fleet mode's operator commands)

Examples:
       sakerd (run on the embedded defaults: bind 127.0.0.1, port 7379)
       sakerd conf/saker.conf
       sakerd -c conf/saker.conf --port 7400 --loglevel debug
"""


def parse_args(argv):
    """(config_path, overrides, test_config) or raises SystemExit."""
    if argv[:1] == ["fleet"]:
        from .fleet_cli import main as fleet_main
        raise SystemExit(fleet_main(argv[1:]))
    path = None
    overrides = []
    test_config = False
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in ("-v", "--version"):
            print("sakerd v=%s python=%s" % (__version__, sys.version.split()[0]))
            raise SystemExit(0)
        if a in ("-h", "--help"):
            print(USAGE, end="")
            raise SystemExit(0)
        if a == "--test-config":
            test_config = True
        elif a == "-c":
            if i + 1 >= len(argv):
                print("sakerd: -c needs a config file", file=sys.stderr)
                raise SystemExit(1)
            path = argv[i + 1]
            i += 1
        elif a.startswith("--"):
            args = []
            while i + 1 < len(argv) and not argv[i + 1].startswith("--"):
                args.append(argv[i + 1])
                i += 1
            overrides.append(" ".join([a[2:]] + [_quote(x) for x in args]))
        elif path is None and i == 0 or path is None and not overrides:
            path = a
        else:
            print("sakerd: unexpected argument '%s'\n\n%s" % (a, USAGE), file=sys.stderr)
            raise SystemExit(1)
        i += 1
    return path, overrides, test_config


def _quote(s):
    if s and not any(ch in s for ch in " \"'\\\t"):
        return s
    return '"%s"' % s.replace("\\", "\\\\").replace('"', '\\"')


def check_paths(config):
    """Problems with paths named in the config: "file:line: message" each."""
    problems = []
    for name in ("pidfile", "logfile", "unixsocket"):
        p = config.get(name)
        if not p:
            continue
        where = config.origin.get(name, config.config_file or "(defaults)")
        d = os.path.dirname(os.path.abspath(config.resolve_path(p)))
        if name == "unixsocket" and config.unixsocket_is_default and not os.path.exists(d):
            continue    # created at start
        if not os.path.isdir(d):
            problems.append("%s: %s: directory %s does not exist" % (where, name, d))
        elif not os.access(d, os.W_OK):
            problems.append("%s: %s: directory %s is not writable" % (where, name, d))
    return problems


def check_log_file(config):
    """As Redis's config loader: a logfile that cannot be opened for
    appending refuses the start (instead of logging nowhere)."""
    if not config.logfile:
        return []
    path = config.resolve_path(config.logfile)
    try:
        open(path, "a").close()
    except OSError as e:
        where = config.origin.get("logfile", config.config_file or "(defaults)")
        return ["%s: Can't open the log file %s: %s" % (where, path, e.strerror)]
    return []


def notify_systemd(state):
    """sd_notify() without libsystemd: one datagram to $NOTIFY_SOCKET."""
    path = os.environ.get("NOTIFY_SOCKET")
    if not path:
        return False
    if path.startswith("@"):
        path = "\0" + path[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
            s.sendto(state.encode(), path)
    except OSError as e:
        log(LL_WARNING, "Can't send notification to systemd: %s", e.strerror)
        return False
    return True


def daemonize():
    """Fork into the background, as Redis does: fork, setsid, stdio to /dev/null."""
    if os.fork() > 0:
        os._exit(0)
    os.setsid()
    fd = os.open(os.devnull, os.O_RDWR)
    for std in (0, 1, 2):
        os.dup2(fd, std)
    if fd > 2:
        os.close(fd)


def test_config(path, overrides):
    config, errors = configmod.load_server_config(path, overrides)
    errors.extend(check_paths(config))
    from .acl import check_config
    errors.extend(check_config(config))
    # Plugins are checked even when the config has errors: list everything.
    from .extensions import check_config_extensions
    errors.extend(check_config_extensions(config))
    if errors:
        for e in errors:
            print(e, file=sys.stderr)
        print("configuration has %d problem%s" % (len(errors), "" if len(errors) == 1 else "s"),
              file=sys.stderr)
        return 1
    print("configuration OK")
    return 0


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    path, overrides, testing = parse_args(argv)
    if testing:
        return test_config(path, overrides)
    config, errors = configmod.load_server_config(path, overrides)
    if not errors:
        from .acl import check_config
        errors = check_config(config)
    if not errors:
        errors = check_log_file(config)
    if errors:
        print("\n*** FATAL CONFIG FILE ERROR (sakerd %s) ***" % __version__, file=sys.stderr)
        for e in errors:
            print(e, file=sys.stderr)
        return 1
    if config.daemonize and config.supervised != "systemd":
        daemonize()
    logmod.setup(config.resolve_path(config.logfile) if config.logfile else "", config.loglevel)
    return run(config, path)


def run(config, path):
    from .server import server, init_server
    from .pidfile import Pidfile, PidfileError
    from .signals import setup_signal_handlers
    from .extensions import init_extensions
    server.pid = os.getpid()
    server.heap.pin_malloc_thresholds()
    if not path:
        log(LL_WARNING, "Warning: no config file specified, using the default config. "
            "In order to specify a config file use sakerd /path/to/saker.conf")
    log(LL_NOTICE, "sakerd %s starting, pid=%d", __version__, server.pid)
    if config.pidfile:
        try:
            server.pidfile = Pidfile(config.resolve_path(config.pidfile)).acquire()
        except PidfileError as e:
            log(LL_WARNING, "Can't start: %s", e)
            print("sakerd: %s" % e, file=sys.stderr)
            return 1
    err = init_server(config)
    if err:
        from .anet import port_holder
        holder = port_holder(config.port) if "in use" in err else None
        if holder:
            err += " (held by pid %d, %s)" % holder
        log(LL_WARNING, "%s", err)
        print("sakerd: %s" % err, file=sys.stderr)
        if server.pidfile is not None:
            server.pidfile.remove()
        return 1
    setup_signal_handlers(server.el)
    err = init_extensions(server)
    if err:
        log(LL_WARNING, "%s", err)
        print("sakerd: %s" % err, file=sys.stderr)
        if server.pidfile is not None:
            server.pidfile.remove()
        return 1
    where = ["%s:%d" % (a.lstrip("-"), config.port) for a in config.bind] if config.port else []
    if config.unixsocket:
        where.append("unix socket %s" % config.unixsocket)
    log(LL_NOTICE, "Ready to accept connections on %s", ", ".join(where) or "nothing (port 0)")
    if config.supervised in ("systemd", "auto"):
        notify_systemd("STATUS=Ready to accept connections\nREADY=1\n")
    server.el.main()
    return server.exit_code
