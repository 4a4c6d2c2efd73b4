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

import fnmatch
import os
import re

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
    __slots__ = ("name", "attr", "parse", "default", "mutable", "multi", "fmt", "sensitive")

    def __init__(self, name, parse, default, mutable=True, multi=False, fmt=None, sensitive=False):
        self.name = name
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
    Directive("slowlog-log-slower-than", _int_range(-1, 2 ** 63 - 1), 10000),
    Directive("slowlog-max-len", _int_range(0, 2 ** 31 - 1), 128),
    Directive("lua-debug-checks", _bool, False),
    # Access control (acl.py). `user` and `unixsocket-peer-user` lines are
    # repeatable: load_string() collects them in user_lines / peer_user_lines.
    Directive("aclfile", _string, "", mutable=False),
    Directive("acllog-max-len", _int_range(0, 2 ** 63 - 1), 128),
    Directive("acl-pubsub-default", _enum("allchannels", "resetchannels"), "resetchannels"),
    Directive("enable-protected-configs", _enum("no", "yes", "local"), "no", mutable=False),
    Directive("auth-timeout", _int_range(0, 2 ** 31 - 1), 10),
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
        self.unixsocket_is_default = False
        self.user_lines = []     # ([name, rule...], "file:line") of `user` lines
        self.peer_user_lines = []    # ((uid, acl user), "file:line")

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
        config.unixsocket_is_default = True


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
        load_string(config, "\n".join(overrides).encode(), "(command line)", errors)
    resolve_defaults(config)
    return config, errors


# ---- CONFIG GET / SET / REWRITE ------------------------------------------

# Read-only answers for tools that ask a Redis server about persistence
# (redis-benchmark warns "Could not fetch server CONFIG" without them).
# sakerd has no persistence; these are not directives.
COMPAT_GET = (("save", ""), ("appendonly", "no"))


def config_get(config, patterns):
    """[(name, value)] for every directive matching any glob pattern."""
    out = []
    seen = set()
    for pat in patterns:
        for name, value in COMPAT_GET:
            if name not in seen and fnmatch.fnmatchcase(name, pat.lower()) and "*" not in pat:
                seen.add(name)
                out.append((name, value))
    for pat in patterns:
        # As Redis's CONFIG GET: a glob matches with stringmatch() rules,
        # case-insensitively; a plain name is answered as the client spelt it.
        glob = any(ch in pat for ch in "[*?")
        for d in DIRECTIVES:
            if d.name in seen:
                continue
            if glob:
                if not string_match(pat.encode(), d.name.encode(), nocase=True):
                    continue
            elif pat.lower() != d.name:
                continue
            seen.add(d.name)
            v = getattr(config, d.attr)
            out.append((d.name if glob else pat, d.format(v)))
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
        args = split_args(value.encode()) if d.multi else [value]
        if args is None:
            args = [value]
        args = [a.decode() if isinstance(a, bytes) else a for a in args]
        try:
            config.set_from_args(d.name, args)
        except ValueError as e:
            for n, v in backup.items():
                setattr(config, BY_NAME[n].attr, v)
            return "CONFIG SET failed (possibly related to argument '%s') - %s" % (name, e)
    return None


def _quote(v):
    if v == "" or any(ch in v for ch in ' "\'\t\r\n\\'):
        return '"%s"' % v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return v


def rewrite(config):
    """Rewrite the config file in place, as Redis's CONFIG REWRITE does.

    Lines of directives that changed are replaced where they stand,
    comments and the order of the file are kept, directives set away from
    their default that the file lacks are appended. Returns None or an error.
    """
    path = config.config_file
    if not path:
        return "The server is running without a config file"
    try:
        with open(path, "rb") as f:
            lines = f.read().decode("utf-8", "surrogateescape").split("\n")
    except OSError as e:
        return "Rewriting config file: %s" % e.strerror
    if lines and lines[-1] == "":
        lines.pop()
    out = []
    written = set()
    for line in lines:
        args = split_args(line.strip().encode()) if line.strip() and not line.strip().startswith("#") else None
        if not args:
            out.append(line)
            continue
        name = args[0].decode().lower()
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
    tmp = path + ".tmp-%d" % os.getpid()
    try:
        with open(tmp, "w", encoding="utf-8", errors="surrogateescape") as f:
            f.write("\n".join(out) + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        return "Rewriting config file: %s" % e.strerror
    return None


def _directive_line(config, d):
    v = getattr(config, d.attr)
    if d.name == "client-output-buffer-limit":
        return "\n".join("client-output-buffer-limit %s %d %d %d" % (n, *v[i])
                         for n, i in (("normal", 0), ("replica", 1), ("pubsub", 2)))
    if d.multi:
        return "%s %s" % (d.name, " ".join(_quote(x) for x in v))
    return "%s %s" % (d.name, _quote(d.format(v)))
