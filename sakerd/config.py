"""Configuration: redis.conf syntax, the directive table, CONFIG GET/SET/REWRITE.

A config file is read line by line: `directive arg...`, `#` comments,
arguments split like Redis's sdssplitargs (quotes, \\xHH escapes), sizes
such as 32mb, `include path`. Every problem is collected with its file and
line, so `--test-config` can report them all at once; the server refuses to
start on the first list that is not empty.

Each directive is one row of DIRECTIVES: its name, its kind (how a value is
parsed and shown), its default, and whether CONFIG SET may change it live.
A value lives on the Config object under the directive's name with dashes
turned to underscores (`client-query-buffer-limit` -> client_query_buffer_limit).
"""

import difflib
import fnmatch
import os
import re

from . import safefile
from .resp import split_args, string2ll
from .util import string_match

MEMORY_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1024, "m": 1000 ** 2, "mb": 1024 ** 2,
                "g": 1000 ** 3, "gb": 1024 ** 3}


class ConfigError(Exception):
    pass


def parse_memory(s):
    """"32mb" -> 33554432; raises ValueError as Redis's memtoull refuses.

    Digits then an optional unit, nothing else: no sign, no spaces.
    """
    m = _MEMORY_RE.fullmatch(s.lower())
    if m is None or m.group(2) not in MEMORY_UNITS:
        raise ValueError("argument must be a memory value")
    return int(m.group(1)) * MEMORY_UNITS[m.group(2)]


_MEMORY_RE = re.compile(r"([0-9]+)([a-z]*)", re.ASCII)


def _bool(s):
    s = s.lower()
    if s == "yes":
        return True
    if s == "no":
        return False
    raise ValueError("argument must be 'yes' or 'no'")


def _int_range(lo, hi):
    def parse(s):
        # string2ll's strictness, as Redis's numeric configs: no spaces,
        # no '+', no '_' digit separators (which int() would take).
        v = string2ll(s.encode("utf-8", "surrogateescape"))
        if v is None:
            raise ValueError("argument couldn't be parsed into an integer")
        if not lo <= v <= hi:
            raise ValueError("argument must be between %d and %d inclusive" % (lo, hi))
        return v
    return parse


def _hz(s):
    """hz as Redis takes it: any integer >= 0, clamped to 1..500 (updateHZ)."""
    return min(max(_int_range(0, 2 ** 31 - 1)(s), 1), 500)


def _enum(*names):
    def parse(s):
        if s.lower() not in names:
            raise ValueError("argument(s) must be one of the following: %s" % ", ".join(names))
        return s.lower()
    return parse


def _octal(s):
    try:
        v = int(s, 8)
    except ValueError:
        raise ValueError("argument couldn't be parsed as an octal permission mode")
    if not 0 <= v <= 0o777:
        raise ValueError("argument must be a permission mode between 000 and 777")
    return v


def _string(s):
    return s


def _optional_string(s):
    return s or None


CLASS_INDEX = {"normal": 0, "slave": 1, "replica": 1, "pubsub": 2}


def parse_obuf_limits(args, current):
    """client-output-buffer-limit <class> <hard> <soft> <soft seconds> [...]"""
    if len(args) % 4:
        raise ValueError("Wrong number of arguments in buffer limit configuration.")
    limits = list(current)
    for i in range(0, len(args), 4):
        klass = args[i].lower()
        if klass not in CLASS_INDEX:
            raise ValueError("Invalid client class specified in buffer limit configuration.")
        try:
            hard = parse_memory(args[i + 1])
            soft = parse_memory(args[i + 2])
            secs = int(args[i + 3])
            if secs < 0:
                raise ValueError
        except ValueError:
            raise ValueError("Error in hard, soft or soft_seconds setting in buffer limit configuration.")
        limits[CLASS_INDEX[klass]] = (hard, soft, secs)
    # The master class has no limits of its own; index 3 mirrors normal.
    while len(limits) < 4:
        limits.append((0, 0, 0))
    return limits


def format_obuf_limits(limits):
    out = []
    for name, i in (("normal", 0), ("slave", 1), ("pubsub", 2)):
        h, s, secs = limits[i]
        out.append("%s %d %d %d" % (name, h, s, secs))
    return " ".join(out)


class Directive:
    __slots__ = ("name", "attr", "parse", "default", "mutable", "multi", "fmt", "sensitive",
                 "alias")

    def __init__(self, name, parse, default, mutable=True, multi=False, fmt=None, sensitive=False,
                 alias=None):
        self.name = name
        self.alias = alias       # Redis's older name, answered by CONFIG GET too
        self.attr = name.replace("-", "_")
        self.parse = parse
        self.default = default
        self.mutable = mutable
        self.multi = multi       # takes all its arguments as a list
        self.fmt = fmt
        self.sensitive = sensitive

    def format(self, v):
        if self.fmt is not None:
            return self.fmt(v)
        if isinstance(v, bool):
            return "yes" if v else "no"
        if v is None:
            return ""
        if isinstance(v, list):
            return " ".join(v)
        return str(v)


def _fmt_octal(v):
    return "%o" % v


def _bind_list(args):
    if not args:
        raise ValueError("bind needs at least one address")
    return list(args)


def _lua_version(s):
    s = s.lower()
    if s not in ("5.1", "5.2", "5.3", "5.4", "luajit"):
        raise ValueError("argument(s) must be one of the following: 5.1, 5.2, 5.3, 5.4, luajit")
    return s


def _keyspace_events(s):
    from .notify import keyspace_events_string_to_flags
    return keyspace_events_string_to_flags(s)


def _fmt_keyspace_events(v):
    from .notify import keyspace_events_flags_to_string
    return keyspace_events_flags_to_string(v)


def _no_save(args):
    """save: only "" (no snapshots) is accepted; sakerd has no persistence."""
    if args in ([], [""]):
        return ""
    raise ValueError("sakerd has no persistence: only save \"\" is accepted")


def _no_appendonly(s):
    if _bool(s):
        raise ValueError("sakerd has no persistence: only appendonly no is accepted")
    return False


def _env_names(args):
    """lua-env-allow: the environment variables os.getenv shows to Lua ("" = none)."""
    names = [a for a in args if a]
    for n in names:
        if "=" in n or "\0" in n:
            raise ValueError("'%s' is not an environment variable name" % n)
    return names


def _obuf_default():
    return [(0, 0, 0), (256 * 1024 * 1024, 64 * 1024 * 1024, 60),
            (32 * 1024 * 1024, 8 * 1024 * 1024, 60), (0, 0, 0)]


DIRECTIVES = [
    Directive("bind", _bind_list, ["127.0.0.1"], mutable=False, multi=True),
    Directive("port", _int_range(0, 65535), 7379, mutable=False),
    # None: the shipped default, DEFAULT_UNIXSOCKET_ROOT as root, else
    # sakerd.sock beside the config file (resolve_defaults); "" disables it.
    Directive("unixsocket", _string, None, mutable=False),
    Directive("unixsocketperm", _octal, 0o700, mutable=False, fmt=_fmt_octal),
    Directive("tcp-backlog", _int_range(0, 2 ** 31 - 1), 511, mutable=False),
    Directive("timeout", _int_range(0, 2 ** 31 - 1), 0),
    Directive("tcp-keepalive", _int_range(0, 2 ** 31 - 1), 300),
    Directive("maxclients", _int_range(1, 2 ** 31 - 1), 10000),
    Directive("daemonize", _bool, False, mutable=False),
    Directive("supervised", _enum("no", "systemd", "upstart", "auto"), "no", mutable=False),
    Directive("pidfile", _optional_string, None, mutable=False),
    Directive("logfile", _string, "", mutable=False),
    Directive("loglevel", _enum("debug", "verbose", "notice", "warning"), "notice"),
    Directive("log-channel", _string, "log"),
    Directive("event-channel", _string, "events"),
    Directive("hz", _hz, 10),
    Directive("databases", _int_range(1, 2 ** 31 - 1), 16, mutable=False),
    Directive("requirepass", _optional_string, None, sensitive=True),
    Directive("protected-mode", _bool, True),
    Directive("client-output-buffer-limit", None, None, multi=True,
              fmt=format_obuf_limits),
    Directive("client-query-buffer-limit", parse_memory, 1024 ** 3),
    Directive("proto-max-bulk-len", parse_memory, 512 * 1024 ** 2),
    Directive("ae-backend", _enum("epoll", "select"), "epoll", mutable=False),
    Directive("lua-version", _lua_version, "5.4", mutable=False),
    Directive("lua-path", _optional_string, None, mutable=False),
    Directive("lua-cpath", _optional_string, None, mutable=False),
    Directive("scripts-dir", _string, "scripts", mutable=False),
    Directive("lua-time-limit", _int_range(0, 2 ** 31 - 1), 5000),
    Directive("lua-task-timeout", _int_range(0, 2 ** 31 - 1), 10000),
    Directive("lua-max-memory", parse_memory, 256 * 1024 ** 2, mutable=False),
    Directive("enable-exec", _bool, True),
    Directive("lua-pattern-max-steps", _int_range(0, 2 ** 53), 10 ** 8),
    Directive("lua-env-allow", _env_names, ["PATH", "HOME", "LANG", "TZ", "HOSTNAME"],
              mutable=False, multi=True),
    Directive("slowlog-log-slower-than", _int_range(-1, 2 ** 63 - 1), 10000),
    Directive("slowlog-max-len", _int_range(0, 2 ** 31 - 1), 128),
    Directive("tracking-table-max-keys", _int_range(0, 2 ** 63 - 1), 1000000),
    Directive("lua-debug-checks", _bool, False),
    # Access control (acl.py). `user` and `unixsocket-peer-user` lines are
    # repeatable: load_string() collects them in user_lines / peer_user_lines.
    Directive("aclfile", _string, "", mutable=False),
    Directive("acllog-max-len", _int_range(0, 2 ** 63 - 1), 128),
    Directive("acl-pubsub-default", _enum("allchannels", "resetchannels"), "resetchannels"),
    Directive("enable-protected-configs", _enum("no", "yes", "local"), "no", mutable=False),
    Directive("auth-timeout", _int_range(0, 2 ** 31 - 1), 10),
    # Failed AUTHs from one address before it is locked out (auth_throttle.py); 0: never.
    Directive("auth-lock-after", _int_range(0, 2 ** 31 - 1), 5),
    # Kept as NOTIFY_* bits; server.notify_keyspace_events mirrors it (notify.py).
    Directive("notify-keyspace-events", _keyspace_events, 0, fmt=_fmt_keyspace_events),
    # Encoding thresholds: sakerd keeps one Python structure per type, but
    # OBJECT ENCODING answers what Redis 7.0 would under these (object.py).
    Directive("hash-max-listpack-entries", _int_range(0, 2 ** 63 - 1), 512,
              alias="hash-max-ziplist-entries"),
    Directive("hash-max-listpack-value", parse_memory, 64, alias="hash-max-ziplist-value"),
    Directive("set-max-intset-entries", _int_range(0, 2 ** 63 - 1), 512),
    Directive("zset-max-listpack-entries", _int_range(0, 2 ** 63 - 1), 128,
              alias="zset-max-ziplist-entries"),
    Directive("zset-max-listpack-value", parse_memory, 64, alias="zset-max-ziplist-value"),
    Directive("list-max-listpack-size", _int_range(-2 ** 31, 2 ** 31 - 1), -2,
              alias="list-max-ziplist-size"),
    # HyperLogLogs (hyperloglog.py) turn dense past this many bytes of sparse encoding.
    Directive("hll-sparse-max-bytes", parse_memory, 3000),
    Directive("latency-monitor-threshold", _int_range(0, 2 ** 63 - 1), 0),
    # Accepted only with the values meaning "no persistence" (test harnesses
    # and tools set them); anything else is refused with a clear error.
    Directive("save", _no_save, "", multi=True),
    Directive("appendonly", _no_appendonly, False),
    # Streams (t_stream.py): Redis's node size limits, and the daemon's own
    # history kept in streams of db 0 (empty key: off; maxlen 0: untrimmed).
    Directive("stream-node-max-bytes", parse_memory, 4096),
    Directive("stream-node-max-entries", _int_range(0, 2 ** 63 - 1), 100),
    Directive("log-stream", _string, "saker:log"),
    Directive("log-stream-maxlen", _int_range(0, 2 ** 63 - 1), 10000),
    Directive("event-stream", _string, "saker:events"),
    Directive("event-stream-maxlen", _int_range(0, 2 ** 63 - 1), 10000),
    # Supervised programs' lines in saker:proc:<name> (proc_output.py),
    # MAXLEN ~ this; 0: no stream (PROC TAIL answers nothing).
    Directive("proc-output-maxlen", _int_range(0, 2 ** 63 - 1), 1000),
    # Redis Functions' libraries, kept across restarts (functions.py); "" = not kept.
    Directive("functions-file", _string, "functions.lua.dump", mutable=False),
    # Prometheus metrics (metrics.py): GET /metrics on metrics-bind:metrics-port; 0 = off.
    Directive("metrics-port", _int_range(0, 65535), 0, mutable=False),
    Directive("metrics-bind", _string, "127.0.0.1", mutable=False),
]

# Fleet mode (fleet.py, SPEC §12): one central Redis (or Cluster seeds) for
# many hosts. None of these change live: the link is built once at start.
# `fleet-redis` lines accumulate (several Cluster seed nodes).


def _fleet_url(args):
    for url in args:
        if not url.startswith(("redis://", "rediss://")):
            raise ValueError("argument must be a redis:// or rediss:// URL")
    return list(args)


def _fleet_tags(args):
    for tag in args:
        key, eq, value = tag.partition("=")
        if not eq or not key or not _TAG_RE.fullmatch(key) or not _TAG_RE.fullmatch(value):
            raise ValueError("tags must be key=value, each of letters, digits and . _ - : /")
    return list(args)


_TAG_RE = re.compile(r"[A-Za-z0-9._:/-]+", re.ASCII)


def _fleet_categories(args):
    from .acl import CATEGORIES
    out = []
    for a in args:
        if a in ("", "none"):
            continue
        if not a.startswith("@") or a[1:].lower() not in CATEGORIES:
            raise ValueError("argument must be ACL categories such as @exec (or none): '%s'" % a)
        out.append(a.lower())
    return out


DIRECTIVES += [
    Directive("fleet-redis", _fleet_url, [], mutable=False, multi=True, sensitive=True),
    Directive("fleet-name", _string, "", mutable=False),
    Directive("fleet-tags", _fleet_tags, [], mutable=False, multi=True),
    Directive("fleet-heartbeat-ms", _int_range(100, 3600000), 10000, mutable=False),
    Directive("fleet-acl-user", _string, "fleet", mutable=False),
    Directive("fleet-require-signature", _fleet_categories,
              ["@exec", "@scripting", "@admin", "@dangerous"], mutable=False, multi=True),
    Directive("fleet-trusted-keys", _string, "", mutable=False),
    Directive("fleet-spool-max", parse_memory, 64 * 1024 ** 2, mutable=False),
    Directive("fleet-dir", _string, "", mutable=False),
    Directive("fleet-tls-ca-cert", _string, "", mutable=False),
    Directive("fleet-tls-cert", _string, "", mutable=False),
    Directive("fleet-tls-key", _string, "", mutable=False),
]
# Directives whose lines add to the list instead of replacing it.
ACCUMULATED = {"fleet-redis"}

# CONFIG SET may change these only with `enable-protected-configs yes` (or
# `local`, from a loopback or unix socket client): the paths sakerd writes
# or loads code from, and the switches that keep it safe (Redis's
# PROTECTED_CONFIG).
PROTECTED = {"logfile", "pidfile", "unixsocket", "aclfile", "scripts-dir", "lua-path",
             "lua-cpath", "enable-exec", "protected-mode", "lua-version", "dir",
             "functions-file", "lua-env-allow"}

BY_NAME = {d.name: d for d in DIRECTIVES}
BY_NAME.update({d.alias: d for d in DIRECTIVES if d.alias})

# Running as root, relative paths of the files sakerd writes live here.
ROOT_DIRS = {"pidfile": "/run/sakerd", "unixsocket": "/run/sakerd", "logfile": "/var/log/sakerd"}


class Config:
    """Every directive's value as an attribute, plus where it came from."""

    def __init__(self):
        for d in DIRECTIVES:
            v = d.default
            if d.name == "client-output-buffer-limit":
                v = _obuf_default()
            setattr(self, d.attr, list(v) if isinstance(v, list) else v)
        self.config_file = None
        self.config_dir = os.getcwd()
        self.origin = {}         # directive name -> "file:line" that set it
        self.user_lines = []     # ([name, rule...], "file:line") of `user` lines
        self.peer_user_lines = []    # ((uid, acl user), "file:line")
        self.loaded_bytes = None  # the config file as loaded: CONFIG REWRITE checks it is unchanged
        self.overrides = []      # the `--directive value` lines of the command line

    def get(self, name):
        return getattr(self, BY_NAME[name].attr)

    def set_from_args(self, name, args):
        """Parse and store one directive; raises ValueError with Redis's reason."""
        d = BY_NAME.get(name.lower())
        if d is None:
            raise KeyError(name)
        if d.name == "client-output-buffer-limit":
            setattr(self, d.attr, parse_obuf_limits(args, self.client_output_buffer_limit))
            return
        if d.multi:
            v = d.parse(args)
            if d.name in ACCUMULATED:
                v = getattr(self, d.attr) + v
            setattr(self, d.attr, v)
            return
        if len(args) != 1:
            raise ValueError("wrong number of arguments")
        setattr(self, d.attr, d.parse(args[0]))

    def resolve_path(self, p):
        """Paths in the config file are relative to the file's directory."""
        if p is None or os.path.isabs(p):
            return p
        return os.path.normpath(os.path.join(self.config_dir, p))

    def written_path(self, name):
        """Where the file of `pidfile`, `logfile` or `unixsocket` is written.

        An absolute path is used as given. A relative one is relative to the
        config file's directory, except when sakerd runs as root: a config
        directory such as /etc/sakerd is no place for runtime files, so it
        is then relative to ROOT_DIRS[name] (created 0755 if missing).
        """
        p = getattr(self, BY_NAME[name].attr)
        if not p or os.path.isabs(p) or os.geteuid() != 0:
            return self.resolve_path(p)
        return os.path.normpath(os.path.join(ROOT_DIRS[name], p))


def _decode(b):
    return b.decode("utf-8", "surrogateescape")


def load_file(config, path, errors, depth=0):
    """Read path into config; append "file:line: reason" strings to errors."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        errors.append("%s: can't open config file: %s" % (path, e.strerror))
        return
    if depth == 0:
        config.loaded_bytes = data
    load_string(config, data, path, errors, depth)


def load_string(config, data, path, errors, depth=0):
    for lineno, raw in enumerate(data.split(b"\n"), 1):
        line = raw.strip()
        if not line or line.startswith(b"#"):
            continue
        args = split_args(line)
        if args is None:
            errors.append("%s:%d: unbalanced quotes in configuration line" % (path, lineno))
            continue
        args = [_decode(a) for a in args]
        name = args[0].lower()
        if name == "include":
            if len(args) != 2:
                errors.append("%s:%d: include takes exactly one path" % (path, lineno))
            elif depth > 10:
                errors.append("%s:%d: include nested too deeply" % (path, lineno))
            else:
                inc = args[1]
                if not os.path.isabs(inc):
                    inc = os.path.join(os.path.dirname(os.path.abspath(path)), inc)
                load_file(config, inc, errors, depth + 1)
            continue
        if name in ("user", "unixsocket-peer-user"):
            err = _repeatable_line(config, name, args[1:], "%s:%d" % (path, lineno))
            if err:
                errors.append("%s:%d: %s" % (path, lineno, err))
            continue
        try:
            config.set_from_args(name, args[1:])
            config.origin[name] = "%s:%d" % (path, lineno)
        except KeyError:
            errors.append("%s:%d: Bad directive or wrong number of arguments: '%s'" %
                          (path, lineno, args[0]))
        except ValueError as e:
            errors.append("%s:%d: '%s' %s" % (path, lineno, " ".join(args), e))


def _repeatable_line(config, name, args, origin):
    """Collect a `user` or `unixsocket-peer-user` line; None or the reason."""
    from . import acl
    if name == "user":
        err = acl.check_user_line(args)
        if err is None:
            if any(a[0] == args[0] for a, _ in config.user_lines):
                return "Duplicate user found. A user can only be defined once in config files"
            config.user_lines.append((args, origin))
        return err
    if len(args) != 2:
        return "unixsocket-peer-user takes a uid or user name and an ACL user name"
    uid = _uid_of(args[0])
    if uid is None:
        return "unixsocket-peer-user: no such system user '%s'" % args[0]
    config.peer_user_lines.append(((uid, args[1]), origin))
    return None


def _uid_of(s):
    import pwd
    if s.isdigit():
        return int(s)
    try:
        return pwd.getpwnam(s).pw_uid
    except KeyError:
        return None


DEFAULT_UNIXSOCKET_ROOT = "/run/sakerd/sakerd.sock"


def resolve_defaults(config):
    """Defaults that depend on who runs sakerd: the unix socket path."""
    if config.unixsocket is None:
        config.unixsocket = DEFAULT_UNIXSOCKET_ROOT if os.geteuid() == 0 else \
            os.path.join(config.config_dir, "sakerd.sock")


def load_server_config(path, overrides):
    """Build a Config from a file and `--directive value` overrides.

    Returns (config, errors).
    """
    config = Config()
    errors = []
    if path:
        config.config_file = os.path.abspath(path)
        config.config_dir = os.path.dirname(config.config_file)
        load_file(config, path, errors)
    if overrides:
        config.overrides = list(overrides)   # a reload (reload.py) applies them again
        load_string(config, "\n".join(overrides).encode(), "(command line)", errors)
    resolve_defaults(config)
    return config, errors


# ---- CONFIG GET / SET / REWRITE ------------------------------------------

def config_get(config, patterns):
    """[(name, value)] for every directive matching any glob pattern."""
    out = []
    seen = set()
    for pat in patterns:
        # As Redis's CONFIG GET: a glob matches with stringmatch() rules,
        # case-insensitively; a plain name is answered as the client spelt it.
        glob = any(ch in pat for ch in "[*?")
        for d in DIRECTIVES:
            for name in (d.name, d.alias) if d.alias else (d.name,):
                if name in seen:
                    continue
                if glob:
                    if not string_match(pat.encode(), name.encode(), nocase=True):
                        continue
                elif pat.lower() != name:
                    continue
                seen.add(name)
                v = getattr(config, d.attr)
                out.append((name if glob else pat, d.format(v)))
    return out


def config_set(config, pairs, protected_allowed=False):
    """Set several directives atomically: all succeed or none changes.

    protected_allowed: whether this client may change PROTECTED directives.

    Returns None, or Redis's error text.
    """
    backup = {}
    for name, value in pairs:
        d = BY_NAME.get(name.lower())
        if d is None or d.name in backup:
            if d is None:
                return "Unknown option or number of arguments for CONFIG SET - '%s'" % name
            return "CONFIG SET failed (possibly related to argument '%s') - duplicate parameter" % name
        if not d.mutable:
            return "CONFIG SET failed (possibly related to argument '%s') - can't set immutable config" % name
        if d.name in PROTECTED and not protected_allowed:
            return "CONFIG SET failed (possibly related to argument '%s') - can't set protected config" % name
        backup[d.name] = getattr(config, d.attr)
    for name, value in pairs:
        d = BY_NAME[name.lower()]
        args = split_args(value.encode("utf-8", "surrogateescape")) if d.multi else [value]
        if args is None:
            args = [value]
        args = [a.decode("utf-8", "surrogateescape") if isinstance(a, bytes) else a for a in args]
        try:
            config.set_from_args(d.name, args)
        except ValueError as e:
            for n, v in backup.items():
                setattr(config, BY_NAME[n].attr, v)
            return "CONFIG SET failed (possibly related to argument '%s') - %s" % (name, e)
    return None


def _quote(v):
    """A value as a config argument that split_args() reads back exactly.

    Plain when it has nothing split_args treats specially; otherwise in
    double quotes, with \\ and \" escaped and every control byte (and every
    byte that is not UTF-8, kept as a surrogate) written as \\xHH.
    """
    if v and not _NEEDS_QUOTES.search(v):
        return v
    return '"%s"' % _UNSAFE_IN_QUOTES.sub(_escape_char, v)


_NEEDS_QUOTES = re.compile('[\\s"\'\\\\\x00-\x1f\x7f\udc80-\udcff]')
_UNSAFE_IN_QUOTES = re.compile('["\\\\\x00-\x1f\x7f\udc80-\udcff]')


def _escape_char(m):
    ch = m.group()
    if ch in '"\\':
        return "\\" + ch
    code = ord(ch)
    return "\\x%02x" % (code - 0xdc00 if code >= 0xdc00 else code)


def rewrite(config, force=False):
    """Rewrite the config file in place, as Redis's CONFIG REWRITE does.

    Lines of directives that changed are replaced where they stand,
    comments and the order of the file are kept, directives set away from
    their default that the file lacks are appended. Returns None or an error.

    A file that changed on disk since it was loaded (or last rewritten) is
    not rewritten unless `force`: its manual edits would be lost silently.
    The new file replaces the old one's target (a symlinked config stays a
    symlink), with the old one's mode and owner (safefile.replace_file).
    """
    path = config.config_file
    if not path:
        return "The server is running without a config file"
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        return "Rewriting config file: %s" % e.strerror
    if not force and config.loaded_bytes is not None and data != config.loaded_bytes:
        return "CONFIG REWRITE refused: %s changed on disk since it was loaded (%s); " \
            "CONFIG REWRITE FORCE overwrites it" % (path, changed_lines(config.loaded_bytes, data))
    out = ("\n".join(rewritten_lines(config, data)) + "\n").encode("utf-8", "surrogateescape")
    try:
        safefile.replace_file(path, out)
    except OSError as e:
        return "Rewriting config file: %s" % e.strerror
    config.loaded_bytes = out
    return None


def changed_lines(old, new, most=3):
    """"line 3 is now 'port 1', line 7 removed": what differs, for an error text."""
    a = old.decode("utf-8", "backslashreplace").split("\n")
    b = new.decode("utf-8", "backslashreplace").split("\n")
    out = []
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag in ("replace", "insert"):
            out.extend("line %d is now %r" % (j + 1, b[j][:60]) for j in range(j1, j2))
        if tag in ("replace", "delete") and i2 - i1 > j2 - j1:
            out.extend("line %d %r removed" % (i + 1, a[i][:60]) for i in range(i1 + j2 - j1, i2))
    shown = ", ".join(out[:most])
    return shown + (" and %d more" % (len(out) - most) if len(out) > most else "")


def rewritten_lines(config, data):
    lines = data.decode("utf-8", "surrogateescape").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    out = []
    written = set()
    users = _rewritten_user_lines(config, lines)
    for line in lines:
        args = split_args(line.strip().encode("utf-8", "surrogateescape")) \
            if line.strip() and not line.strip().startswith("#") else None
        if not args:
            out.append(line)
            continue
        name = args[0].decode("utf-8", "surrogateescape").lower()
        if name == "user" and users is not None:
            # rewriteConfigUserOption: the users as ACL has them now, where
            # the first user line stood.
            out.extend(users)
            users = []
            continue
        d = BY_NAME.get(name)
        if d is None or name == "include":
            out.append(line)
            continue
        if d.name in written:
            continue
        written.add(d.name)
        out.append(_directive_line(config, d))
    for d in DIRECTIVES:
        if d.name in written:
            continue
        v = getattr(config, d.attr)
        default = d.default if d.name != "client-output-buffer-limit" else _obuf_default()
        if v != default:
            out.append(_directive_line(config, d))
    if users:
        out.extend(users)
    return out


def _rewritten_user_lines(config, lines):
    """The `user` lines CONFIG REWRITE writes, or None to leave them alone:
    with an aclfile (ACL SAVE keeps the users), or when the file has no user
    line of its own but includes others (which may define them)."""
    if config.aclfile:
        return None
    has_user = any(l.strip().lower().startswith("user ") for l in lines)
    has_include = any(l.strip().lower().startswith("include ") for l in lines)
    if not has_user and has_include:
        return None
    from . import acl
    return ["user %s %s" % (u.name.decode("utf-8", "surrogateescape"), u.describe())
            for u in acl.users.sorted_users()]


def _directive_line(config, d):
    v = getattr(config, d.attr)
    if d.name == "client-output-buffer-limit":
        return "\n".join("client-output-buffer-limit %s %d %d %d" % (n, *v[i])
                         for n, i in (("normal", 0), ("replica", 1), ("pubsub", 2)))
    if d.multi:
        return "%s %s" % (d.name, " ".join(_quote(x) for x in v))
    return "%s %s" % (d.name, _quote(d.format(v)))
