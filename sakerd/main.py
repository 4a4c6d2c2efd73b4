"""Command line, start-up and the main loop: `sakerd [-c] FILE [--directive value ...]`."""

import os
import sys

from . import __version__, config as configmod, log as logmod, safefile
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


WRITTEN_FILES = ("pidfile", "logfile", "unixsocket")


def check_paths(config):
    """Problems with paths named in the config: "file:line: message" each."""
    problems = []
    for name in WRITTEN_FILES:
        if not config.get(name):
            continue
        d = os.path.dirname(os.path.abspath(config.written_path(name)))
        if not os.path.isdir(d) and d == configmod.ROOT_DIRS[name]:
            continue    # created at start (prepare_directories)
        if not os.path.isdir(d):
            problems.append("%s: %s: directory %s does not exist%s" % (
                _origin(config, name), name, d, _created_by(d)))
        elif not os.access(d, os.W_OK):
            problems.append("%s: %s: directory %s is not writable" % (_origin(config, name), name, d))
    return problems + check_directories(config)


def _origin(config, name):
    return config.origin.get(name, config.config_file or "(defaults)")


def check_directories(config):
    """A file sakerd writes in a directory another user can change is refused (safefile)."""
    problems = []
    for name in WRITTEN_FILES:
        if not config.get(name):
            continue
        d = os.path.dirname(os.path.abspath(config.written_path(name)))
        while not os.path.isdir(d) and os.path.dirname(d) != d:
            d = os.path.dirname(d)     # a directory to be created: its parent decides
        problem = safefile.directory_problem(d)
        if problem:
            problems.append("%s: %s: refusing to write in an unsafe directory: %s" % (
                _origin(config, name), name, problem))
    return problems


def prepare_directories(config):
    """Create the root-owned default directories that relative paths need (as root)."""
    problems = []
    for name in WRITTEN_FILES:
        if not config.get(name):
            continue
        d = os.path.dirname(config.written_path(name))
        if d == configmod.ROOT_DIRS[name] and not os.path.isdir(d):
            problem = safefile.ensure_private_directory(d)
            if problem:
                problems.append("%s: %s: %s" % (_origin(config, name), name, problem))
    return problems


def _created_by(d):
    from .systemd import RUNTIME_DIRECTORY
    if d != RUNTIME_DIRECTORY:
        return ""
    return (" (conf/sakerd.service creates it: RuntimeDirectory=sakerd; without systemd: "
            "mkdir -m 755 %s)" % d)


def check_log_file(config):
    """As Redis's config loader: a logfile that cannot be opened for
    appending refuses the start (instead of logging nowhere)."""
    if not config.logfile:
        return []
    path = config.written_path("logfile")
    try:
        os.close(safefile.open_append(path))
    except OSError as e:
        return ["%s: Can't open the log file %s: %s" % (_origin(config, "logfile"), path, e.strerror)]
    return []


def notify_systemd(state):
    """sd_notify() without libsystemd (systemd.py)."""
    from .systemd import notify
    return notify(state)


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


def config_problems(path, overrides):
    """Load and check everything, as --test-config and a reload do: (config, problems)."""
    config, errors = configmod.load_server_config(path, overrides)
    errors.extend(check_paths(config))
    from .systemd import check_unit
    errors.extend(check_unit(config))
    from .acl import check_config
    errors.extend(check_config(config))
    # Plugins are checked even when the config has errors: list everything.
    from .extensions import check_config_extensions
    errors.extend(check_config_extensions(config))
    return config, errors


def test_config(path, overrides):
    config, errors = config_problems(path, overrides)
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
        errors = check_directories(config) or prepare_directories(config) or \
            check_log_file(config)
    if errors:
        print("\n*** FATAL CONFIG FILE ERROR (sakerd %s) ***" % __version__, file=sys.stderr)
        for e in errors:
            print(e, file=sys.stderr)
        return 1
    if config.daemonize and config.supervised != "systemd":
        daemonize()
    logmod.setup(config.written_path("logfile") if config.logfile else "", config.loglevel)
    return run(config, path)


def run(config, path):
    from .server import init_server
    from .server_h import server
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
            server.pidfile = Pidfile(config.written_path("pidfile")).acquire()
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
    from . import systemd
    systemd.notify_ready()
    systemd.init(server)
    server.el.main()
    return server.exit_code
