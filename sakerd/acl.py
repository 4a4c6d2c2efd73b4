"""Access control lists: users, their rules, and the check every command passes (acl.c).

The model is Redis 7.0's, with its syntax and replies: a user has flags
(on/off, nopass), SHA-256 password hashes, a bitmap of the commands it may
run (with `+cmd|firstarg` exceptions), key patterns with read/write rights
(`~p`, `%R~p`, `%W~p`) and channel patterns (`&p`), in its root selector
and in each `(...)` selector (class Selector). Categories are Redis's, plus
sakerd's own `@exec`: the commands that start, signal or stop processes or
load code into the daemon.

Command ids and bitmaps. Every command and subcommand gets a small integer
id (stable per full name, as ACLGetCommandID), and a user's rights are a
Python int with bit `id` set for each allowed command. `+@all` sets every
bit, including those of commands registered later (a negative int has
infinitely many ones), which is Redis's "can execute future commands";
`-@all` clears them. Since plugin commands come and go, each user keeps the
command rules applied since its last `+@all`/`-@all` and its bitmap is
rebuilt from them whenever the command table changes: a user given
`+@all -@exec` never gains a plugin command registered after the rule.

The check (check_command) runs from server.process_command only for users
that are restricted at all (not allcommands + allkeys + allchannels): for
the usual `+@all ~* &*` user the hot path pays one attribute test.
"""

import hashlib
import hmac
import os
import time

from .commands_def import COMMANDS as REDIS_COMMANDS
from .resp import split_args
from .server_h import (server, Command, CLIENT_MULTI, CMD_ADMIN, CMD_BLOCKING, CMD_FAST,
                       CMD_LOADING, CMD_NO_AUTH, CMD_NOSCRIPT, CMD_PUBSUB, CMD_READONLY, CMD_STALE,
                       CMD_WRITE)
from .util import string_match

# Redis's categories in Redis's order (ACL CAT, COMMAND INFO), then sakerd's.
CATEGORIES = ["keyspace", "read", "write", "set", "sortedset", "list", "hash", "string",
              "bitmap", "hyperloglog", "geo", "stream", "pubsub", "admin", "fast", "slow",
              "blocking", "dangerous", "connection", "transaction", "scripting", "exec"]
CATEGORY_FLAG = {name: 1 << i for i, name in enumerate(CATEGORIES)}

ACL_OK = 0
ACL_DENIED_CMD = 1
ACL_DENIED_KEY = 2
ACL_DENIED_AUTH = 3
ACL_DENIED_CHANNEL = 4

ACL_READ_PERMISSION = 1
ACL_WRITE_PERMISSION = 2
ACL_ALL_PERMISSION = 3

ACL_LOG_CTX_TOPLEVEL = 0
ACL_LOG_CTX_LUA = 1
ACL_LOG_CTX_MULTI = 2
_CONTEXT_NAMES = {ACL_LOG_CTX_TOPLEVEL: "toplevel", ACL_LOG_CTX_LUA: "lua",
                  ACL_LOG_CTX_MULTI: "multi"}
_REASON_NAMES = {ACL_DENIED_CMD: "command", ACL_DENIED_KEY: "key",
                 ACL_DENIED_CHANNEL: "channel", ACL_DENIED_AUTH: "auth"}
ACL_LOG_GROUPING_MAX_TIME_DELTA = 60000

# Key spec flags that need a right (ACLSelectorCheckKey).
_NEEDS_READ = {"ACCESS"}
_NEEDS_WRITE = {"INSERT", "DELETE", "UPDATE"}

# Implicit categories from the command flags (setImplicitACLCategories).
_FLAG_CATEGORIES = None


class ACLError(Exception):
    """A rule that cannot be applied; str() is Redis's ACLSetUserStringError text."""


ERR_UNKNOWN = "Unknown command or category name in ACL"
ERR_SYNTAX = "Syntax error"
ERR_KEYS_AFTER_ALL = ("Adding a pattern after the * pattern (or the 'allkeys' flag) is not "
                      "valid and does not have any effect. Try 'resetkeys' to start with an "
                      "empty list of patterns")
ERR_CHANNELS_AFTER_ALL = ("Adding a pattern after the * pattern (or the 'allchannels' flag) is "
                          "not valid and does not have any effect. Try 'resetchannels' to start "
                          "with an empty list of channels")
ERR_NO_SUCH_PASSWORD = "The password you are trying to remove from the user does not exist"
ERR_BAD_HASH = ("The password hash must be exactly 64 characters and contain only lowercase "
                "hexadecimal characters")
ERR_FIRSTARG_OF_SUB = "Allowing first-arg of a subcommand is not supported"


def hash_password(password):
    return hashlib.sha256(password).hexdigest()


def _check_hash(h):
    if len(h) != 64 or any(ch not in "0123456789abcdef" for ch in h):
        raise ACLError(ERR_BAD_HASH)
    return h


def has_spaces(s):
    """ACLStringHasSpaces: names and patterns may not hold spaces or NULs."""
    return any(ch in b" \t\r\n\0" for ch in s)


# ---- the command table as ACLs see it -----------------------------------------------

class CommandTable:
    """Ids, categories and key specs of every registered command."""

    def __init__(self):
        self.ids = {}           # full name -> id (stable across re-registration)
        self.by_name = {}       # full name -> Command (top-level and subcommands)
        self.generation = 0

    def command_id(self, fullname):
        cid = self.ids.get(fullname)
        if cid is None:
            cid = self.ids[fullname] = len(self.ids)
        return cid

    def setup(self, cmd):
        """Give cmd (and its subcommands) an id, categories and key specs."""
        for c in [cmd] + list((cmd.subcommands or {}).values()):
            c.acl_id = self.command_id(c.fullname)
            c.acl_categories = command_categories(c)
            c.key_specs = command_key_specs(c)
            _FIXED_KEYS[c] = fixed_key_positions(c)
            self.by_name[c.fullname] = c
        self.generation += 1

    def remove(self, cmd):
        for c in [cmd] + list((cmd.subcommands or {}).values()):
            if self.by_name.get(c.fullname) is c:
                del self.by_name[c.fullname]
        self.generation += 1

    def lookup(self, name):
        """ACLLookupCommand: 'get' or 'config|get', case-insensitively."""
        return self.by_name.get(name.lower())

    def commands(self):
        return list(self.by_name.values())

    def category_bits(self, flag):
        bits = 0
        for c in self.by_name.values():
            if c.acl_categories & flag:
                bits |= 1 << c.acl_id
        return bits

    def command_bits(self, cmd):
        """The bits +cmd sets: cmd's own and, for a container, its subcommands'."""
        bits = 1 << cmd.acl_id
        for sub in (cmd.subcommands or {}).values():
            bits |= 1 << sub.acl_id
        return bits


table = CommandTable()


def _flag_categories():
    return ((CMD_WRITE, "write"), (CMD_READONLY, "read"), (CMD_ADMIN, "admin"),
            (CMD_ADMIN, "dangerous"), (CMD_PUBSUB, "pubsub"), (CMD_FAST, "fast"),
            (CMD_BLOCKING, "blocking"))


_GROUP_CATEGORIES = {"string": "string", "list": "list", "hash": "hash", "set": "set",
                     "sorted_set": "sortedset", "stream": "stream", "generic": "keyspace",
                     "keyspace": "keyspace", "connection": "connection",
                     "scripting": "scripting", "transactions": "transaction",
                     "pubsub": "pubsub", "geo": "geo", "bitmap": "bitmap",
                     "hyperloglog": "hyperloglog"}


def command_categories(cmd):
    """Redis's categories for a command Redis has, else those its flags and
    group imply (setImplicitACLCategories); plus the command's own `acl`."""
    global _FLAG_CATEGORIES
    redis = REDIS_COMMANDS.get(cmd.fullname)
    if redis is not None:
        names = set(redis[0].split())
    else:
        if _FLAG_CATEGORIES is None:
            _FLAG_CATEGORIES = _flag_categories()
        names = {name for flag, name in _FLAG_CATEGORIES if cmd.flags & flag}
        if cmd.group in _GROUP_CATEGORIES:
            names.add(_GROUP_CATEGORIES[cmd.group])
        if "read" in names and "scripting" in names:
            names.discard("read")
    names.update(cmd.acl.split())
    if "fast" not in names:
        names.add("slow")
    bits = 0
    for name in names:
        bits |= CATEGORY_FLAG[name]
    return bits


def category_names(bits):
    return [name for name in CATEGORIES if bits & CATEGORY_FLAG[name]]


class KeySpec:
    __slots__ = ("flags", "needs", "begin", "find", "incomplete")

    def __init__(self, flags, begin, find):
        self.flags = flags
        needs = 0
        if _NEEDS_READ & set(flags):
            needs |= ACL_READ_PERMISSION
        if _NEEDS_WRITE & set(flags):
            needs |= ACL_WRITE_PERMISSION
        self.needs = needs
        self.begin = begin
        self.find = find
        self.incomplete = "INCOMPLETE" in flags


def command_key_specs(cmd):
    """Redis's key specs for cmd, or a range spec from its legacy key triple."""
    redis = REDIS_COMMANDS.get(cmd.fullname)
    if redis is not None:
        return [KeySpec(*spec) for spec in redis[1]]
    if not cmd.first_key:
        return []
    flags = ("RW", "ACCESS", "UPDATE") if cmd.flags & CMD_WRITE else ("RO", "ACCESS")
    last = cmd.last_key - cmd.first_key if cmd.last_key >= 0 else cmd.last_key
    return [KeySpec(flags, ("index", cmd.first_key), ("range", last, cmd.key_step, 0))]


# Command -> (positions, argc needed) when its keys sit at fixed positions
# (GET, HSET, LMOVE...: index/range specs only), else None.
_FIXED_KEYS = {}


def fixed_key_positions(cmd):
    """get_keys() for cmd precomputed, when it does not depend on argv but
    for its length: ([(position, KeySpec)], the argc they need) or None."""
    if cmd.fullname in _GETKEYS_PROCS:
        return None
    positions = []
    need = 0
    for spec in cmd.key_specs:
        if spec.begin[0] != "index" or spec.find[0] != "range" or spec.find[1] < 0 \
                or spec.incomplete:
            return None
        first = spec.begin[1]
        last = first + spec.find[1]
        positions.extend((i, spec) for i in range(first, last + 1, spec.find[2]))
        need = max(need, last + 1)
    return tuple(positions), need


def command_has_keys(cmd):
    """doesCommandHaveKeys: key specs, or a getkeys proc."""
    return bool(cmd.key_specs) or cmd.fullname in _GETKEYS_PROCS


def get_keys(cmd, argv):
    """[(position, KeySpec)] of the keys in argv (getKeysFromCommandWithSpecs):
    the spec's flags say how the key is used, its `needs` the rights.

    A malformed command yields no keys: it fails in its own handler.
    """
    fixed = _FIXED_KEYS.get(cmd)
    if fixed is not None:
        return fixed[0] if len(argv) >= fixed[1] else ()
    proc = _GETKEYS_PROCS.get(cmd.fullname)
    if proc is not None:
        return proc(argv)
    argc = len(argv)
    out = []
    for spec in cmd.key_specs:
        begin = spec.begin
        if begin[0] == "index":
            first = begin[1]
        elif begin[0] == "keyword":
            first = _find_keyword(argv, begin[1].encode(), begin[2])
            if not first:
                continue
        else:
            return []
        find = spec.find
        if find[0] == "range":
            _, lastkey, step, limit = find
            if lastkey >= 0:
                last = first + lastkey
            elif not limit:
                last = argc + lastkey
            else:
                last = first + ((argc - first) // limit + lastkey)
        elif find[0] == "keynum":
            _, keynumidx, firstkey, step = find
            from .resp import string2ll
            if first + keynumidx >= argc:
                return []
            numkeys = string2ll(argv[first + keynumidx])
            if numkeys is None or numkeys < 0:
                return []
            first += firstkey
            last = first + numkeys - 1
        else:
            return []
        if last >= argc or last < first or first >= argc:
            # Also numkeys 0: Redis's getkeys procs then find no key at all.
            return []
        out.extend((i, spec) for i in range(first, last + 1, step))
        if spec.incomplete:
            return []
    return out


def _find_keyword(argv, keyword, startfrom):
    argc = len(argv)
    if startfrom > 0:
        indexes = range(startfrom, argc)
    else:
        indexes = range(argc + startfrom, 0, -1)
    for i in indexes:
        if 1 <= i < argc and argv[i].lower() == keyword.lower():
            return i + 1
    return 0


# The getkeys procs Redis uses where specs can't tell (VARIABLE_FLAGS, an
# unknown spec): which key, and how it is used, depends on the arguments.
_READ_SPEC = KeySpec(("RO", "ACCESS"), ("index", 1), ("range", 0, 1, 0))
_READ_WRITE_SPEC = KeySpec(("RW", "ACCESS", "UPDATE"), ("index", 1), ("range", 0, 1, 0))
_OVERWRITE_SPEC = KeySpec(("OW", "UPDATE"), ("index", 1), ("range", 0, 1, 0))


def _set_keys(argv):
    """setGetKeys: SET reads its key only with GET."""
    if len(argv) > 3 and any(a.lower() == b"get" for a in argv[3:]):
        return [(1, _READ_WRITE_SPEC)]
    return [(1, _OVERWRITE_SPEC)]


def _bitfield_keys(argv):
    """bitfieldGetKeys: read-only when every subcommand is GET."""
    i = 2
    while i < len(argv):
        op = argv[i].lower()
        if op == b"get" and i + 2 < len(argv):
            i += 3
        elif op == b"overflow" and i + 1 < len(argv):
            i += 2
        else:
            return [(1, _READ_WRITE_SPEC)]
    return [(1, _READ_SPEC)]


def _sort_keys(argv):
    """sortGetKeys: the sorted key, and the last STORE destination."""
    keys = [(1, _READ_SPEC)]
    store = None
    i = 2
    skips = {b"limit": 2, b"get": 1, b"by": 1}
    while i < len(argv):
        a = argv[i].lower()
        if a in skips:
            i += skips[a]
        elif a == b"store" and i + 1 < len(argv):
            store = i + 1
        i += 1
    if store is not None:
        keys.append((store, _OVERWRITE_SPEC))
    return keys


_GETKEYS_PROCS = {"set": _set_keys, "bitfield": _bitfield_keys, "sort": _sort_keys,
                  "sort_ro": _sort_keys}


# Channels named by the pub/sub commands (getChannelsFromCommand): which
# arguments, and whether they are patterns. UNSUBSCRIBE & co. are not checked.
_CHANNEL_ARGS = {"publish": (1, 2, False), "spublish": (1, 2, False),
                 "subscribe": (1, None, False), "ssubscribe": (1, None, False),
                 "psubscribe": (1, None, True)}


# ---- users ------------------------------------------------------------------------------

class Selector:
    """aclSelector: the commands, keys and channels of one set of rights.

    A user's root selector holds the rules given outside parentheses; each
    `(...)` rule adds another. A command passes if one selector allows all
    of it: the command, every key it names and every channel.
    """
    __slots__ = ("allowed", "firstargs", "command_rules", "allkeys", "patterns",
                 "allchannels", "channels", "key_matchers", "generation")

    def __init__(self):
        self.allowed = 0                # command bitmap (see the module doc)
        self.firstargs = {}             # command id -> [allowed first args (lower)]
        self.command_rules = []         # rules since the last +@all / -@all
        self.allkeys = False
        self.patterns = []              # [(pattern bytes, ACL_*_PERMISSION)]
        self.allchannels = False
        self.channels = []              # [pattern bytes]
        self.key_matchers = []          # [(ACL_*_PERMISSION, key -> bool)], from patterns
        self.generation = table.generation

    def copy(self):
        s = Selector()
        s.allowed = self.allowed
        s.firstargs = {k: list(v) for k, v in self.firstargs.items()}
        s.command_rules = list(self.command_rules)
        s.allkeys, s.patterns = self.allkeys, list(self.patterns)
        s.allchannels, s.channels = self.allchannels, list(self.channels)
        s.key_matchers = list(self.key_matchers)
        s.generation = self.generation
        return s

    @property
    def unrestricted(self):
        return self.allowed == -1 and self.allkeys and self.allchannels

    # ---- rules -------------------------------------------------------------------

    def set_rule(self, op, low, lenient=False):
        """ACLSetSelector: apply one command, key or channel rule; raises ACLError."""
        if low in (b"allkeys", b"~*"):
            self.allkeys = True
            self.patterns = []
        elif low == b"resetkeys":
            self.allkeys = False
            self.patterns = []
        elif low in (b"allchannels", b"&*"):
            self.allchannels = True
            self.channels = []
        elif low == b"resetchannels":
            self.allchannels = False
            self.channels = []
        elif op[:1] in (b"~", b"%"):
            self._add_key_pattern(op)
        elif op[:1] == b"&":
            if self.allchannels:
                raise ACLError(ERR_CHANNELS_AFTER_ALL)
            pat = op[1:]
            if has_spaces(pat):
                raise ACLError(ERR_SYNTAX)
            if pat not in self.channels:
                self.channels.append(pat)
            self.allchannels = False
        elif low in (b"allcommands", b"+@all", b"nocommands", b"-@all") or \
                op[:1] in (b"+", b"-"):
            try:
                self._apply_command_rule(op, check=True)
            except ACLError as e:
                if not (lenient and str(e) == ERR_UNKNOWN and op[1:2] != b"@"):
                    raise
            if low in (b"allcommands", b"+@all", b"nocommands", b"-@all"):
                self.command_rules = []
            else:
                self.command_rules.append(op)
        else:
            raise ACLError(ERR_SYNTAX)
        self.key_matchers = [(flags, glob_matcher(pat)) for pat, flags in self.patterns]

    def _add_key_pattern(self, op):
        if self.allkeys:
            raise ACLError(ERR_KEYS_AFTER_ALL)
        flags = 0
        offset = 1
        if op[:1] == b"%":
            while offset < len(op):
                ch = op[offset:offset + 1].upper()
                if ch == b"R" and not flags & ACL_READ_PERMISSION:
                    flags |= ACL_READ_PERMISSION
                elif ch == b"W" and not flags & ACL_WRITE_PERMISSION:
                    flags |= ACL_WRITE_PERMISSION
                elif ch == b"~":
                    offset += 1
                    break
                else:
                    raise ACLError(ERR_SYNTAX)
                offset += 1
            else:
                raise ACLError(ERR_SYNTAX)
        else:
            flags = ACL_ALL_PERMISSION
        pat = op[offset:]
        if has_spaces(pat):
            raise ACLError(ERR_SYNTAX)
        for i, (p, f) in enumerate(self.patterns):
            if p == pat:
                self.patterns[i] = (p, f | flags)
                break
        else:
            self.patterns.append((pat, flags))
        self.allkeys = False

    def _apply_command_rule(self, op, check):
        """Apply +cmd -cmd +@cat -@cat +cmd|sub +cmd|firstarg to the bitmap."""
        low = op.lower()
        if low in (b"allcommands", b"+@all"):
            self.allowed = -1
            self.firstargs = {}
            return
        if low in (b"nocommands", b"-@all"):
            self.allowed = 0
            self.firstargs = {}
            return
        allow = op[:1] == b"+"
        name = op[1:].decode("utf-8", "replace")
        if name.startswith("@"):
            flag = CATEGORY_FLAG.get(name[1:].lower())
            if flag is None:
                raise ACLError(ERR_UNKNOWN)
            bits = table.category_bits(flag)
            for cmd in table.commands():
                if cmd.acl_categories & flag:
                    self.firstargs.pop(cmd.acl_id, None)
            self._change(bits, allow)
            return
        if allow and "|" in name:
            parent_name, _, sub = name.rpartition("|")
            parent = table.lookup(parent_name)
            if parent is None:
                raise ACLError(ERR_UNKNOWN)
            if parent.parent is not None:
                raise ACLError(ERR_FIRSTARG_OF_SUB)
            if not sub:
                raise ACLError(ERR_SYNTAX)
            if parent.subcommands is not None:
                cmd = table.lookup(name)
                if cmd is None:
                    raise ACLError(ERR_UNKNOWN)
                self._change(table.command_bits(cmd), True)
                self.firstargs.pop(cmd.acl_id, None)
            else:
                args = self.firstargs.setdefault(parent.acl_id, [])
                if sub.lower() not in args:
                    args.append(sub.lower())
            return
        cmd = table.lookup(name)
        if cmd is None:
            raise ACLError(ERR_UNKNOWN)
        self._change(table.command_bits(cmd), allow)
        self.firstargs.pop(cmd.acl_id, None)
        for sub in (cmd.subcommands or {}).values():
            self.firstargs.pop(sub.acl_id, None)

    def _change(self, bits, allow):
        if allow:
            self.allowed |= bits
        else:
            self.allowed &= ~bits

    def refresh_commands(self):
        """Rebuild the bitmap after the command table changed (module doc)."""
        if self.generation == table.generation:
            return
        self.generation = table.generation
        base = -1 if self.allowed < 0 else 0
        self.allowed = base
        self.firstargs = {}
        for rule in self.command_rules:
            try:
                self._apply_command_rule(rule, check=False)
            except ACLError:
                pass    # a command that went away (a plugin's)

    # ---- checks ------------------------------------------------------------------------

    def may_run(self, cmd, argv):
        """ACLSelectorCheckCmd's command part."""
        if self.allowed >> cmd.acl_id & 1:
            return True
        args = self.firstargs.get(cmd.acl_id)
        if args:
            idx = 2 if cmd.parent is not None else 1
            return len(argv) > idx and argv[idx].lower().decode("utf-8", "replace") in args
        return False

    def check_key(self, key, needs):
        if self.allkeys:
            return True
        for flags, matches in self.key_matchers:
            if flags & needs == needs and matches(key):
                return True
        return False

    def check_channel(self, channel, is_pattern):
        if self.allchannels:
            return True
        for pat in self.channels:
            if (is_pattern and pat == channel) or (not is_pattern and glob_matcher(pat)(channel)):
                return True
        return False

    def check_command(self, cmd, argv, cache=None):
        """ACLSelectorCheckCmd: (ACL_OK or a denial, argv position).

        cache: a list the selectors of one user share, holding
        get_keys(cmd, argv) once the first of them needed it."""
        if self.generation != table.generation:
            self.refresh_commands()
        if not self.allowed >> cmd.acl_id & 1 and not cmd.flags & CMD_NO_AUTH and \
                not self.may_run(cmd, argv):
            return ACL_DENIED_CMD, 0
        if not self.allkeys:
            if cache is None:
                keys = get_keys(cmd, argv)
            else:
                if not cache:
                    cache.append(get_keys(cmd, argv))
                keys = cache[0]
            for pos, spec in keys:
                if not self.check_key(argv[pos], spec.needs):
                    return ACL_DENIED_KEY, pos
        if not self.allchannels:
            spec = _CHANNEL_ARGS.get(cmd.fullname)
            if spec is not None:
                first, end, is_pattern = spec
                for pos in range(first, end or len(argv)):
                    if pos < len(argv) and not self.check_channel(argv[pos], is_pattern):
                        return ACL_DENIED_CHANNEL, pos
        return ACL_OK, 0

    def allows_all(self, bits):
        if self.generation != table.generation:
            self.refresh_commands()
        return self.allowed & bits == bits

    def allows_any(self, bits):
        if self.generation != table.generation:
            self.refresh_commands()
        return bool(self.allowed & bits)

    # ---- description -------------------------------------------------------------------

    def describe(self):
        """ACLDescribeSelector: its keys, channels and command rules."""
        parts = []
        if self.allkeys:
            parts.append("~*")
        else:
            parts.extend(_pattern_string(p, f) for p, f in self.patterns)
        if self.allchannels:
            parts.append("&*")
        else:
            parts.append("resetchannels")
            parts.extend("&" + p.decode("utf-8", "surrogateescape") for p in self.channels)
        parts.append(self.describe_commands())
        return " ".join(parts)

    def key_patterns_string(self):
        if self.allkeys:
            return "~*"
        return " ".join(_pattern_string(p, f) for p, f in self.patterns)

    def channel_patterns_string(self):
        if self.allchannels:
            return "&*"
        return " ".join("&" + p.decode("utf-8", "surrogateescape") for p in self.channels)

    def describe_commands(self):
        """ACLDescribeSelectorCommandRules: +@all/-@all, the categories that fit
        best, then single commands, checked against the bitmap they rebuild."""
        if self.generation != table.generation:
            self.refresh_commands()
        additive = self.allowed >= 0
        rules = ["-@all" if additive else "+@all"]
        fake = Selector()
        fake._apply_command_rule(rules[0].encode(), False)
        temp = self.allowed
        applied = set()
        while True:
            best, mindiff, maxsame = None, None, 0
            for name in CATEGORIES:
                if name in applied:
                    continue
                on = off = 0
                flag = CATEGORY_FLAG[name]
                for cmd in table.commands():
                    if cmd.acl_categories & flag:
                        if temp >> cmd.acl_id & 1:
                            on += 1
                        else:
                            off += 1
                diff, same = (off, on) if additive else (on, off)
                if same > diff and (mindiff is None or diff < mindiff or
                                    (diff == mindiff and same > maxsame)):
                    best, mindiff, maxsame = name, diff, same
            if best is None:
                break
            op = ("+@" if additive else "-@") + best
            fake._apply_command_rule(op.encode(), False)
            bits = table.category_bits(CATEGORY_FLAG[best])
            temp = temp & ~bits if additive else temp | bits
            rules.append(op)
            applied.add(best)
        for cmd in sorted(table.commands(), key=lambda c: c.acl_id):
            userbit = self.allowed >> cmd.acl_id & 1
            if userbit != fake.allowed >> cmd.acl_id & 1:
                rules.append(("+" if userbit else "-") + cmd.fullname)
                fake._change(table.command_bits(cmd), bool(userbit))
            if not userbit:
                for arg in self.firstargs.get(cmd.acl_id, ()):
                    rules.append("+%s|%s" % (cmd.fullname, arg))
        return " ".join(rules)


class User:
    """A user: its flags, password hashes and selectors (the root one first)."""
    __slots__ = ("name", "enabled", "nopass", "sanitize", "passwords", "selectors",
                 "restricted")

    def __init__(self, name):
        self.name = name                # bytes
        self.enabled = False
        self.nopass = False
        self.sanitize = None            # "sanitize-payload" or "skip-sanitize-payload"
        self.passwords = []             # sha256 hex strings
        self.selectors = [Selector()]
        self.update_restricted()

    @property
    def root(self):
        return self.selectors[0]

    def copy(self, name=None):
        u = User(self.name if name is None else name)
        u.enabled, u.nopass, u.sanitize = self.enabled, self.nopass, self.sanitize
        u.passwords = list(self.passwords)
        u.selectors = [s.copy() for s in self.selectors]
        u.update_restricted()
        return u

    def assign(self, other):
        """ACLCopyUser: take other's rules, keeping this object (clients hold it)."""
        for attr in User.__slots__:
            if attr != "name":
                setattr(self, attr, getattr(other, attr))

    def update_restricted(self):
        # Unrestricted: one selector with every command (all bits set, no
        # exceptions), every key and channel; process_command skips the check.
        self.restricted = len(self.selectors) > 1 or not self.selectors[0].unrestricted

    # ---- rules -------------------------------------------------------------------

    def set_rule(self, op, lenient=False):
        """ACLSetUser: apply one rule (bytes); raises ACLError.

        lenient (the config file): a rule naming a command that does not
        exist yet is kept, for a plugin to define that command later."""
        if not op:
            return
        low = op.lower()
        if low == b"on":
            self.enabled = True
        elif low == b"off":
            self.enabled = False
        elif low in (b"skip-sanitize-payload", b"sanitize-payload"):
            self.sanitize = low.decode()    # (no RESTORE here: only shown)
        elif low == b"nopass":
            self.nopass = True
            self.passwords = []
        elif low == b"resetpass":
            self.nopass = False
            self.passwords = []
        elif op[:1] in (b">", b"#"):
            h = hash_password(op[1:]) if op[:1] == b">" else _check_hash(op[1:].decode("latin-1"))
            if h not in self.passwords:
                self.passwords.append(h)
            self.nopass = False
        elif op[:1] in (b"<", b"!"):
            h = hash_password(op[1:]) if op[:1] == b"<" else _check_hash(op[1:].decode("latin-1"))
            if h not in self.passwords:
                raise ACLError(ERR_NO_SUCH_PASSWORD)
            self.passwords.remove(h)
        elif op[:1] == b"(" and op[-1:] == b")":
            self.selectors.append(selector_from_opset(op, lenient))
        elif low == b"clearselectors":
            del self.selectors[1:]
        elif low == b"reset":
            for rule in (b"resetpass", b"resetkeys", b"resetchannels", b"off",
                         b"sanitize-payload", b"clearselectors", b"-@all"):
                self.set_rule(rule)
            if server_acl_pubsub_default_all():
                self.set_rule(b"allchannels")
        else:
            self.root.set_rule(op, low, lenient)
        self.update_restricted()

    # ---- checks ------------------------------------------------------------------------

    def check_password(self, password):
        if not self.enabled:
            return False
        if self.nopass:
            return True
        h = hash_password(password)
        ok = False
        for p in self.passwords:
            # Constant time per candidate, as time_independent_strcmp.
            ok |= hmac.compare_digest(h, p)
        return ok

    def check(self, cmd, argv):
        """ACLCheckAllUserCommandPerm: (ACL_OK or a denial, argv position).

        With several selectors, the error told is the command's if none
        may run it, else the last key or channel that none could match."""
        selectors = self.selectors
        if len(selectors) == 1:
            return selectors[0].check_command(cmd, argv)
        cache = []
        relevant, last = ACL_DENIED_CMD, 0
        for s in selectors:
            result, pos = s.check_command(cmd, argv, cache)
            if result == ACL_OK:
                return ACL_OK, 0
            if result > relevant or (result == relevant and pos > last):
                relevant, last = result, pos
        return relevant, last

    def check_channel(self, channel, is_pattern):
        """ACLUserCheckChannelPerm: one selector allows the channel."""
        return any(s.check_channel(channel, is_pattern) for s in self.selectors)

    def allows_all(self, bits):
        """One selector may run every command of bits (the @exec category)."""
        return any(s.allows_all(bits) for s in self.selectors)

    def allows_any(self, bits):
        return any(s.allows_any(bits) for s in self.selectors)

    # ---- description -------------------------------------------------------------------

    def describe(self):
        """ACLDescribeUser: the rules that rebuild this user, as ACL LIST shows them."""
        parts = self.flag_names()
        parts.extend("#" + p for p in self.passwords)
        parts.append(self.root.describe())
        text = " ".join(parts)
        for s in self.selectors[1:]:
            text += " (%s)" % s.describe()
        return text

    def flag_names(self):
        """ACLUserFlags in Redis's order."""
        return ["on" if self.enabled else "off"] + (["nopass"] if self.nopass else []) + \
            ([self.sanitize] if self.sanitize else [])


def selector_from_opset(op, lenient=False):
    """aclCreateSelectorFromOpSet: `(rule rule ...)` as a new selector."""
    s = Selector()
    # Unbalanced quotes make no rules at all, as sdssplitargs' NULL.
    for rule in split_args(op[1:-1]) or ():
        s.set_rule(rule, rule.lower(), lenient)
    return s


def merge_selector_arguments(rules):
    """ACLMergeSelectorArguments: `(~k` `+get)` given as separate arguments
    are one selector rule. Returns (rules, None), or (None, the argument
    opening a parenthesis never closed)."""
    merged = []
    opening = None
    for op in rules:
        if opening is None and op[:1] == b"(" and op[-1:] != b")":
            opening = [op]
            continue
        if opening is not None:
            opening.append(op)
            if op[-1:] == b")":
                merged.append(b" ".join(opening))
                opening = None
            continue
        merged.append(op)
    if opening is not None:
        return None, opening[0]
    return merged, None


def unmatched_parenthesis(op):
    return "Unmatched parenthesis in acl selector starting at '%s'." % (
        op.decode("utf-8", "surrogateescape"))


_GLOB_SPECIAL = frozenset(b"*?[\\")
_matchers = {}


def glob_matcher(pat):
    """A function key -> bool with Redis's glob rules for pat (util.string_match),
    shortcut for the usual patterns: a literal, `prefix*`, `*`."""
    m = _matchers.get(pat)
    if m is None:
        head = pat[:-1] if pat.endswith(b"*") else pat
        if not _GLOB_SPECIAL.intersection(head):
            if head is pat:
                m = pat.__eq__
            elif head:
                m = lambda key, prefix=head: key.startswith(prefix)
            else:
                m = bool     # "*": any key but the empty one, as stringmatchlen
        else:
            m = lambda key, pattern=pat: string_match(pattern, key)
        if len(_matchers) >= 4096:
            _matchers.clear()
        _matchers[pat] = m
    return m


def _pattern_string(pat, flags):
    text = pat.decode("utf-8", "surrogateescape")
    if flags == ACL_ALL_PERMISSION:
        return "~" + text
    if flags == ACL_READ_PERMISSION:
        return "%R~" + text
    return "%W~" + text


def server_acl_pubsub_default_all():
    cfg = server.config
    return cfg is not None and getattr(cfg, "acl_pubsub_default", "resetchannels") == "allchannels"


# ---- the users table -------------------------------------------------------------------

class Users:
    """Every user by name; `default` always exists."""

    def __init__(self):
        self.users = {}
        self.default = User(b"default")
        for rule in (b"+@all", b"~*", b"&*", b"on", b"nopass"):
            self.default.set_rule(rule)
        self.users[b"default"] = self.default
        self.log = []                    # ACL LOG entries, newest first
        self.peer_users = {}             # uid -> user name (unix socket peers)
        self.denied = {ACL_DENIED_AUTH: 0, ACL_DENIED_CMD: 0, ACL_DENIED_KEY: 0,
                       ACL_DENIED_CHANNEL: 0}

    def get(self, name):
        return self.users.get(name)

    def set_user(self, name, rules):
        """ACLStringSetUser: apply every rule to a copy, then all at once.

        Returns None or Redis's error text."""
        rules, unmatched = merge_selector_arguments(rules)
        if unmatched is not None:
            return unmatched_parenthesis(unmatched)
        current = self.users.get(name)
        temp = current.copy() if current is not None else User(name)
        for rule in rules:
            try:
                temp.set_rule(rule)
            except ACLError as e:
                return "Error in ACL SETUSER modifier '%s': %s" % (
                    rule.decode("utf-8", "surrogateescape"), e)
        if current is None:
            self.users[name] = temp
        else:
            current.assign(temp)
            kill_clients_losing_channels(current)
        return None

    def delete(self, name):
        u = self.users.pop(name, None)
        if u is not None:
            kill_clients_of(u)
        return u is not None

    def sorted_users(self):
        return [self.users[k] for k in sorted(self.users)]

    def replace_all(self, users):
        """Install a new set of users (ACL LOAD); `default` keeps its object."""
        new_default = users.pop(b"default", None)
        if new_default is None:
            new_default = Users().default
        old = self.users
        self.default.assign(new_default)
        self.users = {b"default": self.default}
        for name, u in users.items():
            existing = old.get(name)
            if existing is not None:
                existing.assign(u)
                self.users[name] = existing
            else:
                self.users[name] = u
        for name, u in old.items():
            if name not in self.users:
                kill_clients_of(u)

    # ---- ACL LOG --------------------------------------------------------------------

    def add_log_entry(self, c, reason, context, argpos, username=None, obj=None):
        """addACLLogEntry: group with a similar recent entry, else add one."""
        from .networking import client_info_string
        self.denied[reason] = self.denied.get(reason, 0) + 1
        if obj is None:
            if reason == ACL_DENIED_CMD:
                obj = c.lastcmd.fullname.encode() if c.lastcmd else b""
            elif reason in (ACL_DENIED_KEY, ACL_DENIED_CHANNEL):
                obj = c.argv[argpos]
            elif reason == ACL_DENIED_AUTH:
                obj = c.argv[0]
            else:
                obj = b""
        if username is None:
            username = c.user.name
        now = int(time.time() * 1000)
        info = client_info_string(c).encode("utf-8", "surrogateescape")
        for i, e in enumerate(self.log[:10]):
            if e["reason"] == reason and e["context"] == context and \
                    abs(e["ctime"] - now) <= ACL_LOG_GROUPING_MAX_TIME_DELTA and \
                    e["object"] == obj and e["username"] == username:
                e["count"] += 1
                e["ctime"] = now
                e["cinfo"] = info
                del self.log[i]
                self.log.insert(0, e)
                return
        self.log.insert(0, {"count": 1, "reason": reason, "context": context, "object": obj,
                            "username": username, "ctime": now, "cinfo": info})
        del self.log[server.config.acllog_max_len:]


users = Users()


def kill_clients_of(user):
    """ACLFreeUserAndKillClients: a deleted user's connections are closed."""
    from .networking import free_client_async, CLIENT_CLOSE_AFTER_REPLY
    for c in list(server.clients.values()):
        if c.user is user:
            if c is server.current_client:
                c.flags |= CLIENT_CLOSE_AFTER_REPLY
            else:
                free_client_async(c)


def kill_clients_losing_channels(user):
    """ACLKillPubsubClientsIfNeeded: subscribers the new rules no longer allow."""
    if any(s.allchannels for s in user.selectors):
        return
    from .networking import free_client_async
    for c in list(server.clients.values()):
        if c.user is not user:
            continue
        subs = [(ch, False) for ch in c.pubsub_channels] + \
            [(p, True) for p in c.pubsub_patterns] + \
            [(ch, False) for ch in c.pubsub_shard_channels]
        if any(not user.check_channel(ch, pat) for ch, pat in subs):
            free_client_async(c)


# ---- the check on the command path --------------------------------------------------

def reject_denied(c, cmd, argv):
    """The per-command check for a restricted user (server.process_command):
    True, with -NOPERM replied (rejectCommand: in MULTI, the transaction is
    doomed) and logged, if c's user may not run argv."""
    result, pos = c.user.check(cmd, argv)
    if result == ACL_OK:
        return False
    context = ACL_LOG_CTX_MULTI if c.flags & CLIENT_MULTI else ACL_LOG_CTX_TOPLEVEL
    users.add_log_entry(c, result, context, pos)
    if result == ACL_DENIED_CMD:
        msg = "-NOPERM this user has no permissions to run the '%s' command" % cmd.fullname
    elif result == ACL_DENIED_KEY:
        msg = "-NOPERM this user has no permissions to access one of the keys used as arguments"
    else:
        msg = ("-NOPERM this user has no permissions to access one of the channels used as "
               "arguments")
    server.reject_command(c, cmd, msg)
    return True


_EXEC_DENIED = {ACL_DENIED_CMD: "no permission to execute the command or subcommand",
                ACL_DENIED_KEY: "no permission to touch the specified keys",
                ACL_DENIED_CHANNEL: "no permission to access one of the channels used as "
                                    "arguments"}


def exec_denial_reason(c, cmd, argv):
    """EXEC's check of a queued command: None, or the reason (logged)."""
    result, pos = c.user.check(cmd, argv)
    if result == ACL_OK:
        return None
    users.add_log_entry(c, result, ACL_LOG_CTX_MULTI, pos)
    return _EXEC_DENIED[result]


_SCRIPT_DENIED = {ACL_DENIED_CMD: "can't run this command or subcommand",
                  ACL_DENIED_KEY: "can't access at least one of the keys mentioned in the "
                                  "command arguments",
                  ACL_DENIED_CHANNEL: "can't publish to the channel mentioned in the command"}


def script_denied_error(user, cmd, argv, caller):
    """scriptVerifyACL: the error text for a script's call, or None.

    caller: the client whose script it is (its info goes to ACL LOG)."""
    result, pos = user.check(cmd, argv)
    if result == ACL_OK:
        return None
    if result == ACL_DENIED_CMD:
        obj = cmd.fullname.encode()
    else:
        obj = argv[pos]
    users.add_log_entry(caller, result, ACL_LOG_CTX_LUA, pos, username=user.name, obj=obj)
    return "The user executing the script %s" % _SCRIPT_DENIED[result]


def user_may_exec(user):
    """Whether user may run the @exec category (the saker.* process functions)."""
    if not user.restricted:
        return True
    return user.allows_all(table.category_bits(CATEGORY_FLAG["exec"]))


# ---- the internal user ---------------------------------------------------------------

def _server_user():
    u = User(b"admin")
    for rule in (b"on", b"+@all", b"~*", b"&*"):
        u.set_rule(rule)
    return u


# Tasks, plugin loading and the server's own calls run as this user: every
# right, whatever the ACL table says about a user called admin.
SERVER_USER = _server_user()


# ---- loading ---------------------------------------------------------------------------

def check_user_line(args):
    """Validate `user <name> rules...` from the config: None or the reason."""
    if not args:
        return "wrong number of arguments"
    name = args[0].encode("utf-8", "surrogateescape")
    if has_spaces(name):
        return "Usernames can't contain spaces or null characters"
    try:
        user_from_rules(name, args[1:])
    except ValueError as e:
        return str(e)
    return None


def user_from_rules(name, args):
    """A User from a config line's rules (str), selectors merged; raises
    ValueError("Error in user declaration ...")."""
    rules, unmatched = merge_selector_arguments(
        [a.encode("utf-8", "surrogateescape") for a in args])
    if unmatched is not None:
        raise ValueError("Error in user declaration '%s': %s" % (
            unmatched.decode("utf-8", "surrogateescape"), unmatched_parenthesis(unmatched)))
    u = User(name)
    for rule in rules:
        try:
            u.set_rule(rule, lenient=True)
        except ACLError as e:
            raise ValueError("Error in user declaration '%s': %s" % (
                rule.decode("utf-8", "surrogateescape"), e))
    return u


def build_users(lines, where):
    """{name: User} from [(args, "file:line")]; raises ValueError("file:line: reason")."""
    out = {}
    for args, origin in lines:
        name = args[0].encode("utf-8", "surrogateescape")
        if name in out:
            raise ValueError("%s: Duplicate user found. A user can only be defined once in "
                             "config files" % origin)
        try:
            out[name] = user_from_rules(name, args[1:])
        except ValueError as e:
            raise ValueError("%s: %s" % (origin, e))
    return out


def parse_acl_file(path):
    """ACLLoadFromFile's parsing: ({name: User}, None) or (None, errors text)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        return None, "Error loading ACLs, opening file '%s': %s" % (path, e.strerror)
    errors = []
    out = {}
    for lineno, raw in enumerate(data.split(b"\n"), 1):
        line = raw.strip(b" \t\r\n")
        if not line:
            continue
        argv = split_args(line)
        if argv is None:
            errors.append("%s:%d: unbalanced quotes in acl line. " % (path, lineno))
            continue
        if not argv:
            continue
        if argv[0] != b"user" or len(argv) < 2:
            errors.append("%s:%d should start with user keyword followed by the username. " %
                          (path, lineno))
            continue
        name = argv[1]
        if has_spaces(name):
            errors.append("'%s:%d: username '%s' contains invalid characters. " %
                          (path, lineno, name.decode("utf-8", "replace")))
            continue
        if name in out:
            errors.append("WARNING: Duplicate user '%s' found on line %d. " %
                          (name.decode("utf-8", "replace"), lineno))
            continue
        rules, unmatched = merge_selector_arguments(argv[2:])
        if unmatched is not None:
            errors.append("%s:%d: Unmatched parenthesis in selector definition." % (path, lineno))
            continue
        u = out[name] = User(name)
        syntax_error = False
        for rule in rules:
            try:
                u.set_rule(rule)
            except ACLError as e:
                if str(e) == ERR_UNKNOWN:
                    errors.append("%s:%d: Error in applying operation '%s': %s. " % (
                        path, lineno, rule.decode("utf-8", "replace"), e))
                elif not syntax_error:
                    errors.append("%s:%d: %s. " % (path, lineno, e))
                    syntax_error = True
    if errors:
        return None, "".join(errors) + ("WARNING: ACL errors detected, no change to the "
                                        "previously active ACL rules was performed")
    return out, None


def acl_file_text():
    return "".join("user %s %s\n" % (u.name.decode("utf-8", "surrogateescape"), u.describe())
                   for u in users.sorted_users())


def save_acl_file(path):
    """ACLSaveToFile, through safefile.replace_file (a temporary file beside
    it, renamed over it, keeping its mode and owner): None or the error."""
    from .safefile import replace_file
    try:
        replace_file(path, acl_file_text().encode("utf-8", "surrogateescape"))
    except OSError as e:
        return "Writing ACL file for ACL SAVE: %s" % (e.strerror or e)
    return None


# ---- start-up ----------------------------------------------------------------------

# The shipped default (SPEC §11): the unauthenticated `default` user may
# connect, PING, read INFO and COMMAND, nothing else; `admin` may do
# everything but has no password, so only a mapped unix socket peer
# (unixsocket-peer-user) is ever logged in as admin.
DEFAULT_USERS = [
    (["default", "on", "nopass", "resetkeys", "resetchannels", "-@all", "+@connection",
      "-@dangerous", "+info", "+command"], "(defaults)"),
    (["admin", "on", "~*", "&*", "+@all"], "(defaults)"),
    # Fleet jobs run as this user (fleet-acl-user): read-only. It has no
    # password and is not nopass, so no client can AUTH as it.
    (["fleet", "on", "resetkeys", "%R~*", "resetchannels", "-@all", "+@connection", "+@read",
      "+info", "+proc|list", "+proc|status", "+task|list"], "(defaults)"),
]
DEFAULT_PEER_USERS = [((0, "admin"), "(defaults)")]


def populate_table():
    """Register the built-in commands with the ACL table (before the server
    does), so that the config's user rules can be checked against them."""
    from . import commands
    for module in commands.MODULES:
        for cmd in module.COMMANDS:
            table.setup(cmd)


def load_users(config):
    """The users of a config: {name: User}; raises ValueError("where: reason")."""
    lines = {}
    for args, origin in DEFAULT_USERS + config.user_lines:
        lines[args[0]] = (args, origin)
    if config.aclfile and config.user_lines:
        raise ValueError("%s: Configuring sakerd with users defined in the config file and at "
                         "the same time an ACL file path is invalid: define either an ACL file "
                         "or users in the config file, not both" %
                         config.origin.get("aclfile", "(config)"))
    built = build_users(lines.values(), None)
    if config.aclfile:
        from_file, errors = parse_acl_file(config.resolve_path(config.aclfile))
        if errors:
            raise ValueError("%s: %s" % (config.origin.get("aclfile", "aclfile"), errors))
        built.update(from_file)
    if config.requirepass:
        d = built[b"default"]
        d.set_rule(b"resetpass")
        d.set_rule(b">" + config.requirepass.encode("utf-8", "surrogateescape"))
    return built


def peer_user_map(config):
    """uid -> ACL user name for unix socket peers (unixsocket-peer-user)."""
    out = {}
    lines = config.peer_user_lines or DEFAULT_PEER_USERS + [((os.getuid(), "admin"),
                                                             "(defaults)")]
    for (uid, name), _ in lines:
        out[uid] = name.encode("utf-8", "surrogateescape")
    return out


_LOOPBACK = ("127.", "::1", "localhost")


def check_exposure(config, built):
    """A TCP listener off loopback where `default` reaches @exec without a
    password refuses the start: the reason, or None."""
    if not config.port:
        return None
    exposed = [a.lstrip("-") for a in config.bind if not a.lstrip("-").startswith(_LOOPBACK)]
    default = built[b"default"]
    if not exposed or not default.enabled or not default.nopass:
        return None
    if not default.allows_any(table.category_bits(CATEGORY_FLAG["exec"])):
        return None
    where = config.origin.get("bind", "(defaults)")
    return ("%s: refusing to listen on %s: the 'default' user needs no password and may run "
            "@exec commands (processes, code) there. Bind to 127.0.0.1 only, give 'default' a "
            "password (user default on >secret ...) or take away @exec "
            "(user default ... -@exec)" % (where, " ".join(exposed)))


def check_config(config):
    """Every access control problem of a config, "file:line: reason" each."""
    populate_table()
    try:
        built = load_users(config)
    except ValueError as e:
        return [str(e)]
    err = check_exposure(config, built)
    return [err] if err else []


def init(config):
    """Install the config's users at start-up: an error message or None."""
    populate_table()
    try:
        built = load_users(config)
    except ValueError as e:
        return str(e)
    err = check_exposure(config, built)
    if err:
        return err
    users.replace_all(built)
    users.peer_users = peer_user_map(config)
    return None


def user_for_peer(uid):
    """The user a unix socket peer is logged in as, or None (then `default`)."""
    name = users.peer_users.get(uid)
    return users.get(name) if name is not None else None


def update_default_password(password):
    """requirepass (CONFIG SET): the default user's one password, or nopass."""
    d = users.default
    d.set_rule(b"resetpass")
    if password:
        d.set_rule(b">" + password.encode("utf-8", "surrogateescape"))
    else:
        d.set_rule(b"nopass")


# ---- the ACL command -------------------------------------------------------------------

def _reply_str(c, s):
    c.add_reply_bulk(s.encode("utf-8", "surrogateescape") if isinstance(s, str) else s)


def acl_setuser_command(c):
    argv = c.argv
    name = argv[2]
    if has_spaces(name):
        c.add_reply_error("Usernames can't contain spaces or null characters")
        return
    err = users.set_user(name, argv[3:])
    if err is None:
        c.add_reply(b"+OK\r\n")
    else:
        c.add_reply_error(err)


def acl_deluser_command(c):
    names = c.argv[2:]
    if b"default" in names:
        c.add_reply_error("The 'default' user cannot be removed")
        return
    c.add_reply_long_long(sum(1 for n in names if users.delete(n)))


def acl_getuser_command(c):
    u = users.get(c.argv[2])
    if u is None:
        c.add_reply_null()
        return
    c.add_reply_map_len(6)
    _reply_str(c, "flags")
    flags = u.flag_names()
    c.add_reply_set_len(len(flags))
    for f in flags:
        _reply_str(c, f)
    _reply_str(c, "passwords")
    c.add_reply_array_len(len(u.passwords))
    for p in u.passwords:
        _reply_str(c, p)
    reply_selector_description(c, u.root)
    _reply_str(c, "selectors")
    c.add_reply_array_len(len(u.selectors) - 1)
    for sel in u.selectors[1:]:
        c.add_reply_map_len(3)
        reply_selector_description(c, sel)


def reply_selector_description(c, sel):
    """aclAddReplySelectorDescription: commands, keys, channels."""
    _reply_str(c, "commands")
    _reply_str(c, sel.describe_commands())
    _reply_str(c, "keys")
    _reply_str(c, sel.key_patterns_string())
    _reply_str(c, "channels")
    _reply_str(c, sel.channel_patterns_string())


def acl_list_command(c):
    all_users = users.sorted_users()
    c.add_reply_array_len(len(all_users))
    for u in all_users:
        _reply_str(c, "user %s %s" % (u.name.decode("utf-8", "surrogateescape"), u.describe()))


def acl_users_command(c):
    c.add_reply_bulks([u.name for u in users.sorted_users()])


def acl_whoami_command(c):
    c.add_reply_bulk(c.user.name)


_NO_ACL_FILE = ("This Redis instance is not configured to use an ACL file. You may want to "
                "specify users via the ACL SETUSER command and then issue a CONFIG REWRITE "
                "(assuming you have a Redis configuration file set) in order to store users in "
                "the Redis configuration.")


def _acl_file():
    cfg = server.config
    return cfg.resolve_path(cfg.aclfile) if cfg.aclfile else None


def acl_load_command(c):
    path = _acl_file()
    if path is None:
        c.add_reply_error(_NO_ACL_FILE)
        return
    loaded, errors = parse_acl_file(path)
    if errors:
        c.add_reply_error(errors)
        return
    if server.config.requirepass and b"default" not in loaded:
        pass
    users.replace_all(loaded)
    c.add_reply(b"+OK\r\n")


def acl_save_command(c):
    path = _acl_file()
    if path is None:
        c.add_reply_error(_NO_ACL_FILE)
        return
    err = save_acl_file(path)
    if err:
        from .log import log, LL_WARNING
        log(LL_WARNING, "%s", err)
        c.add_reply_error("There was an error trying to save the ACLs. Please check the server "
                          "logs for more information")
        return
    c.add_reply(b"+OK\r\n")


def acl_cat_command(c):
    if len(c.argv) == 2:
        c.add_reply_bulks([n.encode() for n in CATEGORIES])
        return
    if len(c.argv) != 3:
        _subcommand_syntax_error(c)
        return
    flag = CATEGORY_FLAG.get(c.argv[2].lower().decode("utf-8", "replace"))
    if flag is None:
        c.add_reply_error("Unknown category '%s'" %
                          c.argv[2][:128].decode("utf-8", "replace"))
        return
    c.add_reply_bulks([cmd.fullname.encode() for cmd in table.commands()
                       if cmd.acl_categories & flag])


GENPASS_MAX_BITS = 4096


def acl_genpass_command(c):
    bits = 256
    if len(c.argv) == 3:
        from .resp import string2ll
        bits = string2ll(c.argv[2])
        if bits is None:
            c.add_reply_error("value is not an integer or out of range")
            return
    elif len(c.argv) > 3:
        _subcommand_syntax_error(c)
        return
    if bits <= 0 or bits > GENPASS_MAX_BITS:
        c.add_reply_error("ACL GENPASS argument must be the number of bits for the output "
                          "password, a positive number up to %d" % GENPASS_MAX_BITS)
        return
    chars = (bits + 3) // 4
    c.add_reply_bulk(os.urandom((chars + 1) // 2).hex()[:chars].encode())


def acl_log_command(c):
    argv = c.argv
    count = 10
    if len(argv) == 3:
        if argv[2].lower() == b"reset":
            users.log.clear()
            c.add_reply(b"+OK\r\n")
            return
        from .resp import string2ll
        count = string2ll(argv[2])
        if count is None:
            c.add_reply_error("value is not an integer or out of range")
            return
        count = max(count, 0)
    elif len(argv) > 3:
        _subcommand_syntax_error(c)
        return
    entries = users.log[:count]
    now = int(time.time() * 1000)
    c.add_reply_array_len(len(entries))
    for e in entries:
        c.add_reply_map_len(7)
        _reply_str(c, "count")
        c.add_reply_long_long(e["count"])
        _reply_str(c, "reason")
        _reply_str(c, _REASON_NAMES.get(e["reason"], "unknown"))
        _reply_str(c, "context")
        _reply_str(c, _CONTEXT_NAMES.get(e["context"], "unknown"))
        _reply_str(c, "object")
        _reply_str(c, e["object"])
        _reply_str(c, "username")
        _reply_str(c, e["username"])
        _reply_str(c, "age-seconds")
        c.add_reply_double((now - e["ctime"]) / 1000)
        _reply_str(c, "client-info")
        _reply_str(c, e["cinfo"])


def acl_dryrun_command(c):
    argv = c.argv
    u = users.get(argv[2])
    if u is None:
        c.add_reply_error("User '%s' not found" % argv[2].decode("utf-8", "replace"))
        return
    args = argv[3:]
    cmd = server.lookup_command(args)
    if cmd is None:
        c.add_reply_error("Command '%s' not found" % args[0].decode("utf-8", "replace"))
        return
    if (cmd.arity > 0 and cmd.arity != len(args)) or len(args) < -cmd.arity:
        c.add_reply_error("wrong number of arguments for '%s' command" % cmd.fullname)
        return
    result, pos = u.check(cmd, args)
    if result == ACL_DENIED_CMD:
        _reply_str(c, "This user has no permissions to run the '%s' command" % cmd.fullname)
    elif result == ACL_DENIED_KEY:
        _reply_str(c, b"This user has no permissions to access the '%s' key" % args[pos])
    elif result == ACL_DENIED_CHANNEL:
        _reply_str(c, b"This user has no permissions to access the '%s' channel" % args[pos])
    else:
        c.add_reply(b"+OK\r\n")


def acl_help_command(c):
    c.add_reply_help("ACL", [
        "CAT [<category>]",
        "    List all commands that belong to <category>, or all command categories",
        "    when no category is specified.",
        "DELUSER <username> [<username> ...]",
        "    Delete a list of users.",
        "DRYRUN <username> <command> [<arg> ...]",
        "    Returns whether the user can execute the given command without executing the command.",
        "GETUSER <username>",
        "    Get the user's details.",
        "GENPASS [<bits>]",
        "    Generate a secure 256-bit user password. The optional `bits` argument can",
        "    be used to specify a different size.",
        "LIST",
        "    Show users details in config file format.",
        "LOAD",
        "    Reload users from the ACL file.",
        "LOG [<count> | RESET]",
        "    Show the ACL log entries.",
        "SAVE",
        "    Save the current config to the ACL file.",
        "SETUSER <username> <attribute> [<attribute> ...]",
        "    Create or modify a user with the specified attributes.",
        "USERS",
        "    List all the registered usernames.",
        "WHOAMI",
        "    Return the current connection username."])


def _subcommand_syntax_error(c):
    c.add_reply_error("unknown subcommand or wrong number of arguments for '%s'. Try ACL HELP." %
                      c.argv[1][:128].decode("utf-8", "replace"))


def acl_command(c):
    c.add_reply_error("wrong number of arguments for 'acl' command")


def _acl_container():
    adm = CMD_ADMIN | CMD_NOSCRIPT | CMD_LOADING | CMD_STALE
    any_ = CMD_NOSCRIPT | CMD_LOADING | CMD_STALE
    cmd = Command("acl", acl_command, -2, 0, group="server", summary="A container for ACL commands")
    for name, proc, arity, flags, extra, summary in (
            ("cat", acl_cat_command, -2, any_, "", "List the ACL categories or the commands inside a category"),
            ("deluser", acl_deluser_command, -3, adm, "", "Remove the specified ACL users and the associated rules"),
            ("dryrun", acl_dryrun_command, -4, adm, "", "Returns whether the user can execute the given command without executing the command."),
            ("genpass", acl_genpass_command, -2, any_, "", "Generate a pseudorandom secure password to use for ACL users"),
            ("getuser", acl_getuser_command, 3, adm, "", "Get the rules for a specific ACL user"),
            ("list", acl_list_command, 2, adm, "", "List the current ACL rules in ACL config file format"),
            ("load", acl_load_command, 2, adm, "exec", "Reload the ACLs from the configured ACL file"),
            ("log", acl_log_command, -2, adm, "", "List latest events denied because of ACLs in place"),
            ("save", acl_save_command, 2, adm, "", "Save the current ACL rules in the configured ACL file"),
            ("setuser", acl_setuser_command, -3, adm, "exec", "Modify or create the rules for a specific ACL user"),
            ("users", acl_users_command, 2, adm, "", "List the username of all the configured ACL rules"),
            ("whoami", acl_whoami_command, 2, any_, "", "Return the name of the user associated to the current connection"),
            ("help", acl_help_command, 2, CMD_LOADING | CMD_STALE, "", "Show helpful text about the different subcommands")):
        cmd.add_subcommand(Command(name, proc, arity, flags, group="server", summary=summary,
                                   acl=extra))
    return cmd


COMMANDS = [_acl_container()]
