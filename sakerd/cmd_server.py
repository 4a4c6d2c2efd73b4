"""Connection and server commands: PING ECHO QUIT AUTH SELECT HELLO RESET
CLIENT COMMAND CONFIG DBSIZE FLUSHDB FLUSHALL TIME MONITOR SLOWLOG SHUTDOWN INFO
WAIT.
"""

import time

from . import __version__, REDIS_COMPAT_VERSION, config as configmod, tracking
from .log import log, LL_NOTICE, LL_WARNING, set_level
from .networking import (
    CLIENT_CLOSE_AFTER_REPLY, CLIENT_MONITOR, CLIENT_PUBSUB, CLIENT_REPLY_OFF,
    CLIENT_REPLY_SKIP, CLIENT_REPLY_SKIP_NEXT, CLIENT_TYPE_NAMES, CLIENT_UNIX_SOCKET,
    authenticate_peer, client_command_help,
    client_info_string, free_client, free_client_async, remove_client_from)
from .acl import (command_has_keys, get_keys, users, category_names, update_default_password,
                  ACL_DENIED_AUTH, ACL_LOG_CTX_TOPLEVEL)
from .auth_throttle import auth_failed, auth_succeeded, auth_throttled
from .resp import string2ll
from .server_h import (
    Command, server, CMD_ADMIN, CMD_ALLOW_BUSY, CMD_ALLOW_SUBSCRIBED, CMD_FAST, CMD_LOADING,
    CMD_BLOCKING, CMD_NO_AUTH, CMD_NO_MULTI, CMD_NOSCRIPT, CMD_READONLY, CMD_SKIP_MONITOR,
    CMD_SKIP_SLOWLOG, CMD_STALE, CMD_WRITE)

OK = b"+OK\r\n"
SYNTAX_ERR = "syntax error"
NOT_INTEGER = "value is not an integer or out of range"


def get_long_or_reply(c, arg, msg=NOT_INTEGER):
    v = string2ll(arg)
    if v is None:
        c.add_reply_error(msg)
    return v


# ---- connection ----------------------------------------------------------

def ping_command(c):
    argv = c.argv
    if len(argv) > 2:
        c.add_reply_error("wrong number of arguments for 'ping' command")
        return
    if c.flags & CLIENT_PUBSUB and c.resp == 2:
        arg = argv[1] if len(argv) == 2 else b""
        c.add_reply(b"*2\r\n$4\r\npong\r\n$%d\r\n%s\r\n" % (len(arg), arg))
    elif len(argv) == 1:
        c.add_reply(b"+PONG\r\n")
    else:
        c.add_reply_bulk(argv[1])


def echo_command(c):
    c.add_reply_bulk(c.argv[1])


def quit_command(c):
    c.add_reply(OK)
    c.flags |= CLIENT_CLOSE_AFTER_REPLY


def auth_command(c):
    argv = c.argv
    if len(argv) > 3:
        c.add_reply_error(SYNTAX_ERR)
        return
    if len(argv) == 2:
        # Mimic the old behavior of giving an error for the two argument
        # form if no password is configured.
        if users.default.nopass:
            c.add_reply_error("AUTH <password> called without any password configured for "
                              "the default user. Are you sure your configuration is correct?")
            return
        username = b"default"
    else:
        username = argv[1]
    if authenticate(c, username, argv[-1]):
        c.add_reply(OK)
    else:
        c.add_reply_error("-WRONGPASS invalid username-password pair or user is disabled.")


def authenticate(c, username, password):
    """ACLAuthenticateUser, behind the per-address limit on failures (auth.py)."""
    throttled = auth_throttled(c)
    user = users.get(username) if not throttled else None
    if user is not None and user.check_password(password):
        c.authenticated = True
        c.user = user
        auth_succeeded(c)
        return True
    users.add_log_entry(c, ACL_DENIED_AUTH, ACL_LOG_CTX_TOPLEVEL, 0, username=username,
                        obj=c.argv[0])
    if not throttled:
        auth_failed(c)
    return False


def select_command(c):
    idx = string2ll(c.argv[1])
    if idx is None:
        c.add_reply_error(NOT_INTEGER)
        return
    if not 0 <= idx < len(server.db):
        c.add_reply_error("DB index is out of range")
        return
    c.db = server.db[idx]
    c.add_reply(OK)


def hello_command(c):
    argv = c.argv
    ver = 0
    j = 1
    if len(argv) >= 2:
        ver = string2ll(argv[1])
        j = 2
        if ver is None:
            c.add_reply_error("Protocol version is not an integer or out of range")
            return
        if ver < 2 or ver > 3:
            c.add_reply_error("-NOPROTO unsupported protocol version")
            return
    username = password = clientname = None
    while j < len(argv):
        more = len(argv) - 1 - j
        opt = argv[j].lower()
        if opt == b"auth" and more >= 2:
            username, password = argv[j + 1], argv[j + 2]
            j += 3
        elif opt == b"setname" and more:
            clientname = argv[j + 1]
            if not _valid_name_or_reply(c, clientname):
                return
            j += 2
        else:
            c.add_reply_error("Syntax error in HELLO option '%s'" % argv[j].decode("utf-8", "replace"))
            return
    # As Redis's helloCommand: authenticate first, then (only if that
    # worked, or no AUTH was needed) switch protocol and set the name.
    if username is not None and not authenticate(c, username, password):
        c.add_reply_error("-WRONGPASS invalid username-password pair or user is disabled.")
        return
    if not c.authenticated:
        c.add_reply_error("-NOAUTH HELLO must be called with the client already authenticated, "
                          "otherwise the HELLO AUTH <user> <pass> option can be used to "
                          "authenticate the client and select the RESP protocol version at "
                          "the same time")
        return
    if clientname is not None:
        c.name = clientname or None
    if ver:
        c.resp = ver
    c.add_reply_map_len(7)
    for key, value in ((b"server", b"redis"), (b"version", REDIS_COMPAT_VERSION.encode()),
                       (b"proto", c.resp), (b"id", c.id), (b"mode", b"standalone"),
                       (b"role", b"master")):
        c.add_reply_bulk(key)
        if isinstance(value, int):
            c.add_reply_long_long(value)
        else:
            c.add_reply_bulk(value)
    c.add_reply_bulk(b"modules")
    c.add_reply_array_len(0)


def reset_command(c):
    from . import multi, pubsub
    multi.discard_transaction(c)
    pubsub.unsubscribe_all_channels(c, False)
    pubsub.unsubscribe_all_patterns(c, False)
    pubsub.unsubscribe_all_shard_channels(c, False)
    c.flags &= ~CLIENT_PUBSUB
    if c.flags & CLIENT_MONITOR:
        c.flags &= ~CLIENT_MONITOR
        remove_client_from(server.monitors, c)
    c.flags &= ~(CLIENT_REPLY_OFF | CLIENT_REPLY_SKIP | CLIENT_REPLY_SKIP_NEXT)
    tracking.disable_tracking(c)
    c.db = server.db[0]
    c.resp = 2
    c.name = None
    # clearClientConnectionState: back to the default user, logged in only
    # if it needs no password; a unix socket peer is its mapped user again.
    c.user = users.default
    c.authenticated = users.default.nopass and users.default.enabled
    if c.flags & CLIENT_UNIX_SOCKET:
        authenticate_peer(c)
    c.add_reply(b"+RESET\r\n")


# ---- CLIENT ----------------------------------------------------------------------

def _valid_name_or_reply(c, name):
    if any(ch < 33 or ch > 126 for ch in name):
        c.add_reply_error("Client names cannot contain spaces, newlines or special characters.")
        return False
    return True


def _set_name_or_reply(c, name):
    if not _valid_name_or_reply(c, name):
        return False
    c.name = name or None
    return True


def client_id_command(c):
    c.add_reply_long_long(c.id)


def client_info_command(c):
    c.add_reply_verbatim((client_info_string(c) + "\n").encode())


def client_list_command(c):
    argv = c.argv
    clients = list(server.clients.values())
    if len(argv) == 4 and argv[2].lower() == b"type":
        t = CLIENT_TYPE_NAMES.get(argv[3].lower().decode("utf-8", "replace"))
        if t is None:
            c.add_reply_error("Unknown client type '%s'" % argv[3].decode("utf-8", "replace"))
            return
        clients = [x for x in clients if x.client_type() == t]
    elif len(argv) >= 4 and argv[2].lower() == b"id":
        ids = set()
        for a in argv[3:]:
            v = string2ll(a)
            if v is None:
                c.add_reply_error("Invalid client ID")
                return
            ids.add(v)
        clients = [x for x in clients if x.id in ids]
    elif len(argv) != 2:
        c.add_reply_error(SYNTAX_ERR)
        return
    c.add_reply_verbatim("".join(client_info_string(x) + "\n" for x in clients).encode())


def client_setname_command(c):
    if _set_name_or_reply(c, c.argv[2]):
        c.add_reply(OK)


def client_getname_command(c):
    if c.name is None:
        c.add_reply_null()
    else:
        c.add_reply_bulk(c.name)


def client_reply_command(c):
    mode = c.argv[2].lower()
    if mode == b"on":
        c.flags &= ~(CLIENT_REPLY_SKIP | CLIENT_REPLY_OFF)
        c.add_reply(OK)
    elif mode == b"off":
        c.flags |= CLIENT_REPLY_OFF
    elif mode == b"skip":
        if not c.flags & CLIENT_REPLY_OFF:
            c.flags |= CLIENT_REPLY_SKIP_NEXT
    else:
        c.add_reply_error(SYNTAX_ERR)


def client_kill_command(c):
    argv = c.argv
    if len(argv) == 3:
        # Old style syntax: CLIENT KILL <addr>
        addr = argv[2].decode("utf-8", "replace")
        for x in list(server.clients.values()):
            if x.addr == addr:
                c.add_reply(OK)
                _kill(c, x)
                return

        c.add_reply_error("No such client")
        return
    if len(argv) % 2:
        c.add_reply_error(SYNTAX_ERR)
        return
    addr = laddr = None
    cid = ctype = user = None
    skipme = True
    for i in range(2, len(argv), 2):
        opt, val = argv[i].lower(), argv[i + 1]
        if opt == b"id":
            cid = string2ll(val)
            if cid is None or cid <= 0:
                c.add_reply_error("client-id should be greater than 0")
                return
        elif opt == b"type":
            ctype = CLIENT_TYPE_NAMES.get(val.lower().decode("utf-8", "replace"))
            if ctype is None:
                c.add_reply_error("Unknown client type '%s'" % val.decode("utf-8", "replace"))
                return
        elif opt == b"addr":
            addr = val.decode("utf-8", "replace")
        elif opt == b"laddr":
            laddr = val.decode("utf-8", "replace")
        elif opt == b"skipme":
            if val.lower() == b"yes":
                skipme = True
            elif val.lower() == b"no":
                skipme = False
            else:
                c.add_reply_error(SYNTAX_ERR)
                return
        elif opt == b"user":
            user = users.get(val)
            if user is None:
                c.add_reply_error("No such user '%s'" % val.decode("utf-8", "replace"))
                return
        else:
            c.add_reply_error(SYNTAX_ERR)
            return
    killed = 0
    kill_self = False
    for x in list(server.clients.values()):

        if addr is not None and x.addr != addr:
            continue
        if laddr is not None and x.laddr != laddr:
            continue
        if cid is not None and x.id != cid:
            continue
        if ctype is not None and x.client_type() != ctype:
            continue
        if user is not None and x.user is not user:
            continue
        if x is c and skipme:
            continue
        killed += 1
        if x is c:
            kill_self = True
        else:
            _kill(c, x)
    c.add_reply_long_long(killed)
    if kill_self:
        _kill(c, c)


def _kill(c, target):
    # A client killing itself is flagged only after its reply is queued:
    # CLOSE_AFTER_REPLY stops replies from being added.
    if target is c:
        c.flags |= CLIENT_CLOSE_AFTER_REPLY
    else:
        free_client(target)



def client_unblock_command(c):
    """CLIENT UNBLOCK id [TIMEOUT|ERROR]: 1 if that client was blocked."""
    from .blocked import client_unblock
    argv = c.argv
    if len(argv) > 4:
        c.add_reply_error("unknown subcommand or wrong number of arguments for '%s'. "
                          "Try CLIENT HELP." % argv[1].decode("utf-8", "replace"))
        return
    error = False
    if len(argv) == 4:
        reason = argv[3].lower()
        if reason not in (b"timeout", b"error"):
            c.add_reply_error("CLIENT UNBLOCK reason should be TIMEOUT or ERROR")
            return
        error = reason == b"error"
    cid = string2ll(argv[2])
    if cid is None:
        c.add_reply_error(NOT_INTEGER)
        return
    c.add_reply(b":1\r\n" if client_unblock(server.clients.get(cid), error) else b":0\r\n")


def client_help_command(c):
    c.add_reply_help("CLIENT", client_command_help())


def client_command(c):
    # Reached only for a bare CLIENT (arity -2 rejects it); subcommands dispatch.
    c.add_reply_error("wrong number of arguments for 'client' command")


# ---- COMMAND ---------------------------------------------------------------------

_FLAG_NAMES = [(CMD_WRITE, "write"), (CMD_READONLY, "readonly"), (CMD_ADMIN, "admin"),
               (CMD_NOSCRIPT, "noscript"), (CMD_BLOCKING, "blocking"), (CMD_LOADING, "loading"),
               (CMD_STALE, "stale"), (CMD_SKIP_MONITOR, "skip_monitor"),
               (CMD_SKIP_SLOWLOG, "skip_slowlog"), (CMD_FAST, "fast"), (CMD_NO_AUTH, "no_auth"),
               (CMD_NO_MULTI, "no_multi"), (CMD_ALLOW_BUSY, "allow_busy")]


def _all_commands():
    seen = {}
    for cmd in server.commands.values():
        seen[cmd.name] = cmd
    return [seen[k] for k in sorted(seen)]


def _command_info(cmd):
    flags = [n for f, n in _FLAG_NAMES if cmd.flags & f]
    if cmd.flags & CMD_ALLOW_SUBSCRIBED:
        flags.append("pubsub")
    parts = [b"*10\r\n", b"$%d\r\n%s\r\n" % (len(cmd.fullname), cmd.fullname.encode()),
             b":%d\r\n" % cmd.arity,
             b"*%d\r\n" % len(flags) + b"".join(b"+%s\r\n" % f.encode() for f in flags),
             b":%d\r\n:%d\r\n:%d\r\n" % (cmd.first_key, cmd.last_key, cmd.key_step),
             _categories_reply(cmd), b"*0\r\n", _key_specs_reply(cmd)]
    subs = list((cmd.subcommands or {}).values())
    parts.append(b"*%d\r\n" % len(subs))
    parts.extend(_command_info(s) for s in subs)
    return b"".join(parts)


def _key_specs_reply(cmd):
    """Redis's key specifications, for the commands Redis has (commands_docs.py)."""
    from .commands_docs import KEY_SPECS
    specs = KEY_SPECS.get(cmd.fullname)
    return b"*0\r\n" if specs is None else resp3_to_resp2(specs)


def _categories_reply(cmd):
    """addReplyCommandCategories: "+@cat" for each ACL category, Redis's order."""
    names = category_names(cmd.acl_categories)
    return b"*%d\r\n" % len(names) + b"".join(b"+@%s\r\n" % n.encode() for n in names)


def _map_len(n, resp):
    """A map header: *2n in RESP2, %n in RESP3 (COMMAND DOCS is all maps)."""
    return b"*%d\r\n" % (n * 2) if resp == 2 else b"%%%d\r\n" % n


def _command_docs(cmd, resp):
    summary = (cmd.summary or cmd.fullname).encode()
    fields = [b"summary", summary, b"since", b"1.0.0", b"group", cmd.group.encode()]
    subs = list((cmd.subcommands or {}).values())
    parts = [_map_len(len(fields) // 2 + (1 if subs else 0), resp)]
    parts.extend(b"$%d\r\n%s\r\n" % (len(x), x) for x in fields)
    if subs:
        parts.append(b"$11\r\nsubcommands\r\n" + _map_len(len(subs), resp))
        for s in subs:
            parts.append(b"$%d\r\n%s\r\n" % (len(s.fullname), s.fullname.encode()))
            parts.append(_command_docs(s, resp))
    return b"".join(parts)


def command_command(c):
    cmds = _all_commands()
    c.add_reply(b"*%d\r\n" % len(cmds) + b"".join(_command_info(x) for x in cmds))


def command_count_command(c):
    c.add_reply_long_long(len(_all_commands()))


def command_list_command(c):
    c.add_reply_bulks([x.name.encode() for x in _all_commands()])


def command_info_command(c):
    names = c.argv[2:]
    if not names:
        command_command(c)
        return
    out = [b"*%d\r\n" % len(names)]
    for n in names:
        cmd = server.commands.get(n.lower())
        out.append(_command_info(cmd) if cmd else b"$-1\r\n" if c.resp == 2 else b"_\r\n")
    c.add_reply(b"".join(out))


def command_docs_command(c):
    """COMMAND DOCS: Redis's own documentation for the commands Redis has
    (commands_docs.py, what redis-server 7.0.15 answers: summary, since,
    complexity, history, arguments), sakerd's summary for its own."""
    from .commands_docs import DOCS
    names = c.argv[2:]
    cmds = _all_commands() if not names else \
        [server.commands[n.lower()] for n in names if n.lower() in server.commands]
    out = [_map_len(len(cmds), c.resp)]
    for cmd in cmds:
        out.append(b"$%d\r\n%s\r\n" % (len(cmd.name), cmd.name.encode()))
        docs = DOCS.get(cmd.fullname)
        if docs is None:
            out.append(_command_docs(cmd, c.resp))
        else:
            out.append(docs if c.resp == 3 else resp3_to_resp2(docs))
    c.add_reply(b"".join(out))


def resp3_to_resp2(data):
    """A RESP3 reply of maps, sets, arrays and scalars as RESP2 would send it:
    a map as an array of its keys and values, a set as an array."""
    out = []
    pos = 0
    while pos < len(data):
        end = data.index(b"\r\n", pos)
        kind, n = data[pos:pos + 1], data[pos + 1:end]
        if kind == b"%":
            out.append(b"*%d\r\n" % (2 * int(n)))
        elif kind == b"~":
            out.append(b"*" + n + b"\r\n")
        elif kind == b"$":
            size = int(n)
            out.append(data[pos:end + 2 + max(size + 2, 0)])
            pos = end + 2 + max(size + 2, 0)
            continue
        else:
            out.append(data[pos:end + 2])
        pos = end + 2
    return b"".join(out)


# Commands whose keys may all be absent (Redis's CMD_NO_MANDATORY_KEYS).
_NO_MANDATORY_KEYS = frozenset(("eval", "evalsha", "eval_ro", "evalsha_ro", "fcall", "fcall_ro"))
# addReplyFlagsForKeyArgs' names, in its order.
_KEY_FLAG_NAMES = (("RO", "RO"), ("RW", "RW"), ("OW", "OW"), ("RM", "RM"),
                   ("ACCESS", "access"), ("UPDATE", "update"), ("INSERT", "insert"),
                   ("DELETE", "delete"), ("NOT_KEY", "not_key"), ("INCOMPLETE", "incomplete"),
                   ("VARIABLE_FLAGS", "variable_flags"))


def command_getkeys_command(c):
    get_keys_subcommand(c, False)


def command_getkeysandflags_command(c):
    get_keys_subcommand(c, True)


def get_keys_subcommand(c, with_flags):
    """getKeysSubcommandImpl: the keys of a full command, as Redis finds them."""
    argv = c.argv[2:]
    cmd = server.lookup_command(argv)
    if cmd is None:
        c.add_reply_error("Invalid command specified")
        return
    if not command_has_keys(cmd):
        c.add_reply_error("The command has no key arguments")
        return
    if (cmd.arity > 0 and cmd.arity != len(argv)) or len(argv) < -cmd.arity:
        c.add_reply_error("Invalid number of arguments specified for command")
        return
    keys = get_keys(cmd, argv)
    if not keys and cmd.fullname not in _NO_MANDATORY_KEYS:
        c.add_reply_error("Invalid arguments specified for command")
        return
    c.add_reply_array_len(len(keys))
    for pos, spec in keys:
        if with_flags:
            c.add_reply_array_len(2)
            c.add_reply_bulk(argv[pos])
            names = [name for flag, name in _KEY_FLAG_NAMES if flag in spec.flags]
            c.add_reply_set_len(len(names))
            c.add_reply("".join("+%s\r\n" % name for name in names).encode())
        else:
            c.add_reply_bulk(argv[pos])


def command_help_command(c):
    c.add_reply_help("COMMAND", [
        "(no subcommand)", "    Return details about all commands.",
        "COUNT", "    Return the total number of commands in this server.",
        "LIST", "    Return a list of all commands in this server.",
        "INFO [<command-name> ...]", "    Return details about multiple commands.",
        "DOCS [<command-name> ...]", "    Return documentation details about multiple commands.",
        "GETKEYS <full-command>", "    Return the keys from a full Redis command.",
        "GETKEYSANDFLAGS <full-command>",
        "    Return the keys and the access flags from a full Redis command."])


# ---- CONFIG ---------------------------------------------------------------------------

def config_get_command(c):
    pats = [a.decode("utf-8", "replace") for a in c.argv[2:]]
    pairs = configmod.config_get(server.config, pats)
    c.add_reply_map_len(len(pairs))
    for name, value in pairs:
        d = configmod.BY_NAME.get(name.lower())
        if d is not None and d.sensitive and value:
            # A secret is never shown, even to an authenticated client.
            value = "(redacted)"
        c.add_reply_bulk(name.encode())
        c.add_reply_bulk(value.encode("utf-8", "surrogateescape"))


def config_set_command(c):
    argv = c.argv
    if len(argv) % 2:
        # A directive without its value (arity already wants 4 or more).
        c.add_reply_error(SYNTAX_ERR)
        return
    pairs = [(argv[i].decode("utf-8", "replace"), argv[i + 1].decode("utf-8", "surrogateescape"))
             for i in range(2, len(argv), 2)]
    old = {n.lower(): configmod.BY_NAME[n.lower()].format(server.config.get(n.lower()))
           for n, _ in pairs if n.lower() in configmod.BY_NAME}
    err = configmod.config_set(server.config, pairs, _protected_allowed(c))
    if err:
        c.add_reply_error(err)
        return
    if any(n.lower() == "requirepass" for n, _ in pairs):
        update_default_password(server.config.requirepass)
    apply_config_changes()
    for name, _ in pairs:
        announce_config_change(configmod.BY_NAME[name.lower()], old[name.lower()], "CONFIG SET")
    c.add_reply(OK)


def announce_config_change(d, old, how):
    """Log and publish (config_changed) that directive d changed from old
    (its formatted value), as `how` did it; what changed, secrets redacted."""
    new = d.format(server.config.get(d.name))
    shown_old, shown_new = (("(redacted)", "(redacted)") if d.sensitive else (old, new))
    text = "%s changed from '%s' to '%s'" % (d.name, shown_old, shown_new)
    log(LL_NOTICE, "%s %s", how, text)
    server.emit_event("config_changed", name=d.name, old=shown_old, new=shown_new)
    return text


def _protected_allowed(c):
    """allowProtectedAction(): enable-protected-configs yes, or local and a
    local client."""
    mode = server.config.enable_protected_configs
    return mode == "yes" or mode == "local" and c.peer_is_local


def apply_config_changes():
    """Make live settings take effect after CONFIG SET."""
    cfg = server.config
    set_level(cfg.loglevel)
    server.update_hot_thresholds()
    server.hz = cfg.hz
    # Each reader captured proto-max-bulk-len when its client connected.
    for client in server.clients.values():
        client.reader.max_bulk_len = cfg.proto_max_bulk_len


def config_reload_command(c):
    from .reload import config_reload_command as reload_command
    reload_command(c)


def config_rewrite_command(c):
    # CONFIG REWRITE FORCE (sakerd's): rewrite even a file edited since it was loaded.
    # Any other argument is an arity error, as Redis's CONFIG REWRITE (arity 2) says.
    force = len(c.argv) == 3 and c.argv[2].lower() == b"force"
    if len(c.argv) > 2 and not force:
        c.add_reply_error("wrong number of arguments for '%s' command" % c.lastcmd.fullname)
        return
    err = configmod.rewrite(server.config, force)
    if err:
        c.add_reply_error(err)
        return
    log(LL_NOTICE, "CONFIG REWRITE executed with success.")
    c.add_reply(OK)


def config_resetstat_command(c):
    # As in Redis, the slow log is left alone: SLOWLOG RESET clears it.
    server.reset_stats()
    c.add_reply(OK)


def config_help_command(c):
    c.add_reply_help("CONFIG", [
        "GET <pattern>", "    Return parameters matching the glob-like <pattern> and their values.",
        "SET <directive> <value>", "    Set the configuration <directive> to <value>.",
        "RESETSTAT", "    Reset statistics reported by the INFO command.",
        "REWRITE [FORCE]", "    Rewrite the configuration file (FORCE: even if it changed on disk).",
        "RELOAD", "    Re-read the configuration file and apply what changed (as SIGHUP does)."])


# ---- server -----------------------------------------------------------------------------

def dbsize_command(c):
    c.add_reply_long_long(len(c.db.dict))


def _flush_args_ok(c):
    if len(c.argv) > 2 or len(c.argv) == 2 and c.argv[1].lower() not in (b"sync", b"async"):
        c.add_reply_error(SYNTAX_ERR)
        return False
    return True


def signal_flushed_db(db):
    """signalFlushedDb(): before db is emptied, XREADGROUP readers of its
    streams are ended and the watchers of its keys see the change. Redis
    publishes no keyspace event for a flush."""
    from .blocked import scan_database_for_deleted_streams
    from .multi import touch_all_watched_keys_in_db
    scan_database_for_deleted_streams(db, None)
    touch_all_watched_keys_in_db(db, None)


def signal_flushed_dbs(dbs):
    """A flush of dbs: each is signalled, then the tracking clients told
    that every key is invalid (trackingInvalidateKeysOnFlush)."""
    for db in dbs:
        signal_flushed_db(db)
    tracking.invalidate_keys_on_flush()


def flushdb_command(c):
    if _flush_args_ok(c):
        signal_flushed_dbs([c.db])
        c.db.flush()
        c.add_reply(OK)


def flushall_command(c):
    if _flush_args_ok(c):
        signal_flushed_dbs(server.db)
        for db in server.db:
            db.flush()
        c.add_reply(OK)


def wait_command(c):
    """WAIT numreplicas timeout: there are no replicas, so 0 -- at once for
    0 replicas, else after the timeout (0: never), as redis-server does."""
    from .blocked import BLOCKED_WAIT, block_client, get_timeout_or_reply
    from .networking import CLIENT_DENY_BLOCKING
    numreplicas = string2ll(c.argv[1])
    if numreplicas is None:
        c.add_reply_error(NOT_INTEGER)
        return
    timeout = get_timeout_or_reply(c, c.argv[2], seconds=False)
    if timeout is None:
        return
    if numreplicas <= 0 or c.flags & CLIENT_DENY_BLOCKING:
        c.add_reply(b":0\r\n")
        return
    block_client(c, BLOCKED_WAIT, timeout)


def time_command(c):
    t = time.time_ns() // 1000
    c.add_reply_bulks([b"%d" % (t // 1000000), b"%d" % (t % 1000000)])


def role_command(c):
    """ROLE: always a master with no replicas (sakerd replicates nothing)."""
    c.add_reply(b"*3\r\n$6\r\nmaster\r\n:0\r\n*0\r\n")


def lastsave_command(c):
    """LASTSAVE: nothing is ever saved, so the start, as Redis's lastsave
    before any save (INFO persistence's rdb_last_save_time)."""
    c.add_reply_long_long(int(server.stat_starttime))


def monitor_command(c):
    if c.flags & CLIENT_MONITOR:
        return
    c.flags |= CLIENT_MONITOR
    server.monitors.append(c)
    c.add_reply(OK)


def shutdown_command(c):
    flags = set(a.lower() for a in c.argv[1:])
    if not flags <= {b"nosave", b"save", b"now", b"force", b"abort"} or \
            {b"nosave", b"save"} <= flags:
        c.add_reply_error(SYNTAX_ERR)
        return
    if b"abort" in flags:
        c.add_reply_error("No shutdown in progress.")
        return
    if server.script_busy and b"nosave" not in flags:
        c.add_reply_error("-BUSY Redis is busy running a script. You can only call "
                          "SCRIPT KILL or SHUTDOWN NOSAVE.")
        return
    server.prepare_for_shutdown_and_exit()


def info_command(c):
    from .info import gen_info
    sections = [a.decode("utf-8", "replace").lower() for a in c.argv[1:]]
    c.add_reply_verbatim(gen_info(sections).encode())


# ---- SLOWLOG -----------------------------------------------------------------------------

SLOWLOG_ENTRY_MAX_ARGC = 32
SLOWLOG_ENTRY_MAX_STRING = 128


def slowlog_push(c, argv, duration):
    if server.config.slowlog_max_len == 0:
        return
    from .networking import _redacted_argv
    argv = _redacted_argv(argv)
    args = []
    n = min(len(argv), SLOWLOG_ENTRY_MAX_ARGC)
    for j in range(n):
        if n != len(argv) and j == n - 1:
            args.append(b"... (%d more arguments)" % (len(argv) - n + 1))
            break
        a = argv[j]
        if len(a) > SLOWLOG_ENTRY_MAX_STRING:
            a = a[:SLOWLOG_ENTRY_MAX_STRING] + b"... (%d more bytes)" % (
                len(a) - SLOWLOG_ENTRY_MAX_STRING)
        args.append(a)
    entry = (server.slowlog_entry_id, int(time.time()), duration, args,
             c.addr.encode(), c.name or b"")
    server.slowlog_entry_id += 1
    server.slowlog.insert(0, entry)
    del server.slowlog[server.config.slowlog_max_len:]


def slowlog_get_command(c):
    count = 10
    if len(c.argv) == 3:
        count = string2ll(c.argv[2])
        if count is None or count < -1:
            c.add_reply_error("count should be greater than or equal to -1")
            return
        if count == -1:
            count = len(server.slowlog)
    elif len(c.argv) > 3:
        c.add_reply_error("unknown subcommand or wrong number of arguments for '%s'. Try "
                          "SLOWLOG HELP." % c.argv[1][:128].decode("utf-8", "replace"))
        return
    entries = server.slowlog[:count]
    out = [b"*%d\r\n" % len(entries)]
    for id, ts, dur, args, addr, name in entries:
        out.append(b"*6\r\n:%d\r\n:%d\r\n:%d\r\n*%d\r\n" % (id, ts, dur, len(args)))
        out.extend(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)
        out.append(b"$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(addr), addr, len(name), name))
    c.add_reply(b"".join(out))


def slowlog_len_command(c):
    c.add_reply_long_long(len(server.slowlog))


def slowlog_reset_command(c):
    server.slowlog.clear()
    c.add_reply(OK)


def slowlog_help_command(c):
    c.add_reply_help("SLOWLOG", [
        "GET [<count>]",
        "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
        "    Entries are made of:",
        "    id, timestamp, time in microseconds, arguments array, client IP and port,",
        "    client name",
        "LEN", "    Return the length of the slowlog.",
        "RESET", "    Reset the slowlog."])


def _container(name, subs, group, flags=0, proc=client_command, arity=-2):
    """A command with subcommands; proc/arity serve the bare form (COMMAND)."""
    cmd = Command(name, proc, arity, flags, group=group)
    for sub in subs:
        cmd.add_subcommand(sub)
    return cmd


_SUB = Command
_CONN = "connection"
_SRV = "server"
_ANY = CMD_LOADING | CMD_STALE

COMMANDS = [
    Command("ping", ping_command, -1, CMD_FAST | CMD_ALLOW_SUBSCRIBED | _ANY, group=_CONN,
            summary="Ping the server"),
    Command("echo", echo_command, 2, CMD_FAST | _ANY, group=_CONN, summary="Echo the given string"),
    Command("quit", quit_command, -1, CMD_FAST | CMD_NO_AUTH | CMD_ALLOW_SUBSCRIBED |
            CMD_ALLOW_BUSY | _ANY, group=_CONN, summary="Close the connection"),
    Command("auth", auth_command, -2, CMD_NOSCRIPT | CMD_NO_AUTH | CMD_FAST | _ANY,
            group=_CONN, summary="Authenticate to the server"),
    Command("select", select_command, 2, CMD_FAST | _ANY, group=_CONN,
            summary="Change the selected database for the current connection"),
    Command("hello", hello_command, -1, CMD_NO_AUTH | CMD_FAST | _ANY | CMD_NOSCRIPT,
            group=_CONN, summary="Handshake with the server"),
    Command("reset", reset_command, 1, CMD_NO_AUTH | CMD_FAST | CMD_ALLOW_SUBSCRIBED |
            CMD_NOSCRIPT | _ANY, group=_CONN, summary="Reset the connection"),
    _container("client", [
        _SUB("id", client_id_command, 2, _ANY, group=_CONN, summary="Returns the client ID for the current connection"),
        _SUB("info", client_info_command, 2, _ANY, group=_CONN, summary="Returns information about the current client connection."),
        _SUB("list", client_list_command, -2, CMD_ADMIN | _ANY, group=_CONN, summary="Get the list of client connections"),
        _SUB("kill", client_kill_command, -3, CMD_ADMIN | _ANY, group=_CONN, summary="Kill the connection of a client", acl="exec"),
        _SUB("setname", client_setname_command, 3, _ANY, group=_CONN, summary="Set the current connection name"),
        _SUB("getname", client_getname_command, 2, _ANY, group=_CONN, summary="Get the current connection name"),
        _SUB("reply", client_reply_command, 3, _ANY, group=_CONN, summary="Instruct the server whether to reply to commands"),
        _SUB("tracking", tracking.client_tracking_command, -3, CMD_NOSCRIPT | _ANY, group=_CONN, summary="Enable or disable server assisted client side caching support"),
        _SUB("caching", tracking.client_caching_command, 3, CMD_NOSCRIPT | _ANY, group=_CONN, summary="Instruct the server about tracking or not keys in the next request"),
        _SUB("getredir", tracking.client_getredir_command, 2, CMD_NOSCRIPT | _ANY, group=_CONN, summary="Get tracking notifications redirection client ID if any"),
        _SUB("trackinginfo", tracking.client_trackinginfo_command, 2, CMD_NOSCRIPT | _ANY, group=_CONN, summary="Return information about server assisted client side caching for the current connection"),
        _SUB("unblock", client_unblock_command, -3, CMD_ADMIN | CMD_NOSCRIPT | _ANY, group=_CONN, summary="Unblock a client blocked in a blocking command from a different connection"),
        _SUB("help", client_help_command, 2, _ANY, group=_CONN, summary="Show helpful text about the different subcommands"),
    ], _CONN, _ANY),
    _container("command", [
        _SUB("count", command_count_command, 2, _ANY, group=_SRV, summary="Get total number of Redis commands"),
        _SUB("list", command_list_command, -2, _ANY, group=_SRV, summary="Get an array of Redis command names"),
        _SUB("info", command_info_command, -2, _ANY, group=_SRV, summary="Get array of specific Redis command details, or all when no argument is given."),
        _SUB("docs", command_docs_command, -2, _ANY, group=_SRV, summary="Get array of specific Redis command documentation"),
        _SUB("getkeys", command_getkeys_command, -4, _ANY, group=_SRV, summary="Extract keys given a full Redis command"),
        _SUB("getkeysandflags", command_getkeysandflags_command, -4, _ANY, group=_SRV, summary="Extract keys and access flags given a full Redis command"),
        _SUB("help", command_help_command, 2, _ANY, group=_SRV, summary="Show helpful text about the different subcommands"),
    ], _SRV, _ANY, proc=command_command, arity=-1),
    _container("config", [
        _SUB("get", config_get_command, -3, CMD_ADMIN | CMD_NOSCRIPT | _ANY, group=_SRV, summary="Get the values of configuration parameters"),
        _SUB("set", config_set_command, -4, CMD_ADMIN | CMD_NOSCRIPT | _ANY, group=_SRV, summary="Set configuration parameters to the given values", acl="exec"),
        _SUB("rewrite", config_rewrite_command, -2, CMD_ADMIN | CMD_NOSCRIPT | _ANY, group=_SRV, summary="Rewrite the configuration file with the in memory configuration", acl="exec"),
        _SUB("reload", config_reload_command, 2, CMD_ADMIN | CMD_NOSCRIPT | _ANY, group=_SRV, summary="Re-read the configuration file and apply what changed", acl="exec"),
        _SUB("resetstat", config_resetstat_command, 2, CMD_ADMIN | CMD_NOSCRIPT | _ANY, group=_SRV, summary="Reset the stats returned by INFO"),
        _SUB("help", config_help_command, 2, _ANY, group=_SRV, summary="Show helpful text about the different subcommands"),
    ], _SRV, _ANY),
    _container("slowlog", [
        _SUB("get", slowlog_get_command, -2, CMD_ADMIN | _ANY, group=_SRV, summary="Get the slow log's entries"),
        _SUB("len", slowlog_len_command, 2, CMD_ADMIN | _ANY, group=_SRV, summary="Get the slow log's length"),
        _SUB("reset", slowlog_reset_command, 2, CMD_ADMIN | _ANY, group=_SRV, summary="Clear all entries from the slow log"),
        _SUB("help", slowlog_help_command, 2, _ANY, group=_SRV, summary="Show helpful text about the different subcommands"),
    ], _SRV, _ANY),
    Command("dbsize", dbsize_command, 1, CMD_READONLY | CMD_FAST, group="keyspace",
            summary="Return the number of keys in the selected database"),
    Command("flushdb", flushdb_command, -1, CMD_WRITE, group="keyspace",
            summary="Remove all keys from the current database"),
    Command("flushall", flushall_command, -1, CMD_WRITE, group="keyspace",
            summary="Remove all keys from all databases"),
    Command("time", time_command, 1, CMD_FAST | _ANY, group=_SRV, summary="Return the current server time"),
    Command("role", role_command, 1, CMD_ADMIN | CMD_NOSCRIPT | CMD_FAST | _ANY, group=_SRV,
            summary="Return the role of the instance in the context of replication"),
    Command("lastsave", lastsave_command, 1, CMD_FAST | _ANY, group=_SRV, acl="admin dangerous",
            summary="Get the UNIX time stamp of the last successful save to disk"),
    Command("monitor", monitor_command, 1, CMD_ADMIN | CMD_NOSCRIPT | _ANY, group=_SRV,
            summary="Listen for all requests received by the server in real time", acl="exec"),
    Command("shutdown", shutdown_command, -1, CMD_ADMIN | CMD_NOSCRIPT | CMD_ALLOW_BUSY |
            CMD_NO_MULTI | _ANY,
            group=_SRV, summary="Synchronously save the dataset to disk and then shut down the server",
            acl="exec"),
    Command("info", info_command, -1, CMD_LOADING | CMD_STALE, group=_SRV,
            summary="Get information and statistics about the server"),
    Command("wait", wait_command, 3, CMD_NOSCRIPT, group="generic", acl="connection",
            summary="Wait for the synchronous replication of all the write commands sent in "
                    "the context of the current connection"),
]
