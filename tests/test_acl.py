"""Access control: Redis 7 ACLs, peer credentials, the closed default (SPEC §11).

ACL replies are compared byte for byte with a real redis-server 7.0.15 fed
the same commands. The attack of issue 10 (a local unprivileged user makes
root run `id` through EVAL on the shipped config) is replayed as `nobody`.
"""

import os
import re
import socket
import subprocess
import sys

import pytest
import redis

from helpers import (sakerd_env, ROOT, RawConn, encode_command, free_port, require_tool, wait_for)

SHIPPED_CONF = os.path.join(ROOT, "conf", "saker.conf")


def as_nobody(*argv, input=None):
    """Run argv as the unprivileged user nobody: (exit code, stdout+stderr)."""
    setpriv = require_tool("setpriv")
    p = subprocess.run([setpriv, "--reuid=nobody", "--regid=nogroup", "--clear-groups"] +
                       list(argv), input=input, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=30)
    return p.returncode, p.stdout


def both(d_port, r_port, *commands, resp=2):
    """Send the same commands to sakerd and redis-server; both wire replies."""
    out = []
    for port in (d_port, r_port):
        c = RawConn(("127.0.0.1", port))
        if resp == 3:
            c.call("HELLO", 3)
        out.append([c.call(*cmd) for cmd in commands])
        c.close()
    return out


def sorted_rules(b):
    """Command rules with their single commands sorted: Redis lists those in
    its hash table's order, sakerd in its command table's."""
    def sort(m):
        first, rest = m.group(2).split(b" ", 1) if b" " in m.group(2) else (m.group(2), b"")
        cats = [t for t in rest.split() if t[1:2] == b"@"]
        singles = sorted(t for t in rest.split() if t[1:2] != b"@")
        return m.group(1) + b" ".join([first] + cats + singles)
    return re.sub(rb"(\$\d+\r\n)([+-]@all[^\r]*)", sort, b)


def same_side_by_side(d, redis_server_port, *commands, resp=2, mask=sorted_rules):
    ours, theirs = both(d.port, redis_server_port, *commands, resp=resp)
    for cmd, a, b in zip(commands, ours, theirs):
        assert mask(a) == mask(b), "%r: sakerd %r, redis %r" % (cmd, a, b)
    return ours


# ---- the shipped config, as a local attacker and as root ------------------------------------

# The shipped config's unix socket is /run/sakerd/sakerd.sock, one for the
# machine: the tests that run it share one xdist worker (`--dist loadgroup`).
SHIPPED = pytest.mark.xdist_group("shipped-config")


@pytest.fixture
def shipped(tmp_path):
    """sakerd on conf/saker.conf as root, with its default unix socket."""
    port = free_port()
    log = tmp_path / "sakerd.log"
    env = sakerd_env()
    proc = subprocess.Popen([sys.executable, "-m", "sakerd", "-c", SHIPPED_CONF, "--port",
                             str(port), "--logfile", str(log),
                             "--metrics-port", str(free_port())], env=env, cwd=str(tmp_path),
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)

    def ready():
        assert proc.poll() is None, log.read_text() if log.exists() else "exited"
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16) == b"+PONG\r\n" and os.path.exists("/run/sakerd/sakerd.sock")
        except OSError:
            return False
    wait_for(ready, 60, "sakerd on the shipped config")
    yield port
    proc.terminate()
    proc.wait(10)


def exec_commands(canary):
    """Commands that would make root run something; the EVAL one would create `canary`."""
    return [["EVAL", "return saker.exec('id > %s')" % canary, "0"]] + EXEC_COMMANDS


EXEC_COMMANDS = [
    ["PROC", "START", "web"], ["PROC", "STOP", "web"], ["PROC", "RESTART", "web"],
    ["PROC", "SIGNAL", "web", "HUP"], ["TASK", "RUN", "uptime:1"], ["PLUGIN", "RELOAD"],
    ["CONFIG", "SET", "enable-exec", "yes"], ["CONFIG", "REWRITE"], ["SHUTDOWN", "NOSAVE"],
    ["MONITOR"], ["CLIENT", "KILL", "ID", "1"], ["SET", "k", "v"], ["SUBSCRIBE", "log"],
    ["ACL", "SETUSER", "default", "+@all"],
]


@SHIPPED
def test_nobody_on_the_shipped_config_cannot_make_root_run_anything(shipped, tmp_path):
    canary = tmp_path / "pwned"
    cli = require_tool("redis-cli")
    for cmd in exec_commands(canary):
        rc, out = as_nobody(cli, "-p", str(shipped), *cmd)
        full = cmd[0].lower() if cmd[0] not in ("PROC", "TASK", "PLUGIN", "CONFIG", "CLIENT",
                                                 "ACL") else "%s|%s" % (cmd[0].lower(),
                                                                        cmd[1].lower())
        assert out == b"NOPERM this user has no permissions to run the '%s' command\n\n" % \
            full.encode(), (cmd, out)
    assert not canary.exists()
    # What a monitor needs still works.
    assert as_nobody(cli, "-p", str(shipped), "PING") == (0, b"PONG\n")
    rc, out = as_nobody(cli, "-p", str(shipped), "INFO", "server")
    assert b"saker_version:" in out
    rc, out = as_nobody(cli, "-p", str(shipped), "ACL", "WHOAMI")
    assert out == b"NOPERM this user has no permissions to run the 'acl|whoami' command\n\n"


@SHIPPED
def test_the_unix_socket_refuses_nobody_and_logs_root_in_as_admin(shipped):
    st = os.stat("/run/sakerd/sakerd.sock")
    assert (st.st_uid, st.st_mode & 0o777) == (0, 0o700)
    assert (os.stat("/run/sakerd").st_mode & 0o777) == 0o755
    rc, out = as_nobody(sys.executable, "-c", (
        "import socket\n"
        "s = socket.socket(socket.AF_UNIX)\n"
        "try:\n"
        "    s.connect('/run/sakerd/sakerd.sock')\n"
        "except PermissionError as e:\n"
        "    print('EACCES', e.errno)\n"))
    assert out == b"EACCES 13\n"
    cli = require_tool("redis-cli")
    sock = ["-s", "/run/sakerd/sakerd.sock"]
    run = lambda *a: subprocess.run([cli] + sock + list(a), stdout=subprocess.PIPE,
                                    timeout=30).stdout
    assert run("ACL", "WHOAMI") == b"admin\n"
    assert run("EVAL", "return 6 * 7", "0") == b"42\n"
    assert run("CONFIG", "SET", "loglevel", "verbose") == b"OK\n"
    assert run("PROC", "RESTART", "nosuch") == b"ERR no supervised process named 'nosuch'\n\n"
    assert b"user=admin" in run("CLIENT", "INFO")


@SHIPPED
def test_shipped_default_user_is_what_the_issue_says(shipped):
    r = redis.Redis(port=shipped, protocol=2, decode_responses=True)
    assert r.ping() is True
    assert r.command_count() > 80
    assert r.client_setname("probe") is True and r.client_getname() == "probe"
    with pytest.raises(redis.exceptions.NoPermissionError) as e:
        r.get("k")
    assert str(e.value) == "this user has no permissions to run the 'get' command"
    r.close()


def exporter_scrape(port, *args):
    """One scrape by prometheus-redis-exporter of the sakerd on port: its metrics."""
    from test_lifecycle import scrape
    exporter = require_tool("prometheus-redis-exporter")
    web = free_port()
    proc = subprocess.Popen([exporter, "--redis.addr=redis://127.0.0.1:%d" % port,
                             "--web.listen-address=127.0.0.1:%d" % web] + list(args),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        def try_scrape():
            try:
                return scrape("http://127.0.0.1:%d/metrics" % web)
            except OSError:
                return None
        return wait_for(try_scrape, what="the exporter")
    finally:
        proc.terminate()
        proc.wait(10)


@SHIPPED
def test_prometheus_exporter_scrapes_the_shipped_default_without_credentials(shipped):
    m = exporter_scrape(shipped)
    assert m["redis_up"] == 1
    assert m["redis_uptime_in_seconds"] >= 0
    assert "redis_connected_clients" in m


def test_exporter_with_a_monitoring_user_and_password(make_daemon):
    d = make_daemon("user monitor on >mon-pass-1 ~* &* -@all +@read +@connection +info "
                    "+config|get +slowlog +latency +client|list +dbsize\n", open_default=False)
    m = exporter_scrape(d.port, "--redis.user=monitor", "--redis.password=mon-pass-1")
    assert m["redis_up"] == 1
    assert m["redis_connected_clients"] >= 1


# ---- users, rules and replies, side by side with redis-server -------------------------------

SETUP = [
    ("ACL", "SETUSER", "bob", "on", ">pw1", "~k*", "%R~r*", "%W~w*", "&ch*", "+get", "+set",
     "+@hash", "-hset", "+select|0", "+publish", "+subscribe"),
    ("ACL", "SETUSER", "eve", "off", ">x"),
]


def test_acl_setuser_getuser_list_and_errors_match_redis(make_daemon, redis_server_port):
    d = make_daemon()
    rr = redis.Redis(port=redis_server_port)
    rr.execute_command("ACL", "DELUSER", "bob", "eve", "carol")
    cmds = SETUP + [
        ("ACL", "GETUSER", "bob"), ("ACL", "GETUSER", "eve"), ("ACL", "GETUSER", "nobody"),
        ("ACL", "SETUSER", "carol", "on", "~*", "~x"),
        ("ACL", "SETUSER", "carol", "&*", "&x"),
        ("ACL", "SETUSER", "carol", "+nosuchcmd"),
        ("ACL", "SETUSER", "carol", "+@nosuchcat"),
        ("ACL", "SETUSER", "carol", "#abc"),
        ("ACL", "SETUSER", "carol", "<notthere"),
        ("ACL", "SETUSER", "carol", "bogus"),
        ("ACL", "SETUSER", "carol", "%X~k"),
        ("ACL", "SETUSER", "carol", "+config|get|x"),
        ("ACL", "SETUSER", "carol", "+get|"),
        ("ACL", "SETUSER", "a b"),
        ("ACL", "GETUSER", "carol"),
        ("ACL", "SETUSER", "carol", "on", "nopass", "+@all", "-@dangerous", "~*"),
        ("ACL", "GETUSER", "carol"),
        ("ACL", "SETUSER", "carol", "reset"),
        ("ACL", "GETUSER", "carol"),
        ("ACL", "DELUSER", "default"),
        ("ACL", "DELUSER", "carol", "nosuch"),
        ("ACL", "CAT", "nosuchcat"),
        ("ACL", "GENPASS", "0"), ("ACL", "GENPASS", "5000"), ("ACL", "GENPASS", "x"),
        ("ACL", "LOG", "x"), ("ACL", "LOAD"), ("ACL", "SAVE"), ("ACL", "HELP"),
        ("ACL", "NOSUCH"), ("ACL", "WHOAMI", "extra"),
        ("ACL", "DRYRUN", "bob", "get", "k1"), ("ACL", "DRYRUN", "bob", "get", "x"),
        ("ACL", "DRYRUN", "bob", "hset", "k", "f", "v"), ("ACL", "DRYRUN", "bob", "set", "r1", "v"),
        ("ACL", "DRYRUN", "bob", "get", "w1"), ("ACL", "DRYRUN", "bob", "set", "w1", "v"),
        ("ACL", "DRYRUN", "bob", "set", "w1", "v", "GET"),
        ("ACL", "DRYRUN", "bob", "publish", "chx", "m"),
        ("ACL", "DRYRUN", "bob", "publish", "other", "m"),
        ("ACL", "DRYRUN", "bob", "select", "0"), ("ACL", "DRYRUN", "bob", "select", "1"),
        ("ACL", "DRYRUN", "nosuch", "get", "k"), ("ACL", "DRYRUN", "bob", "nosuchcmd"),
        ("ACL", "DRYRUN", "bob", "get"),
        ("ACL", "SETUSER", "keys", "on", "+@all", "~k*", "%R~r*", "%W~w*"),
    ] + [("ACL", "DRYRUN", "keys") + tuple(cmd.split()) for cmd in [
        # Keys at fixed positions (precomputed), at argv-dependent ones
        # (numkeys, keywords, ranges to the end), and the odd ones out.
        "lmove k1 w1 LEFT LEFT", "lmove k1 r1 LEFT LEFT", "lmove r1 w1 LEFT LEFT",
        "rpoplpush k1 x", "rename k1 w1", "copy r1 w1", "copy w1 k2", "getex r1",
        "hget r1 f", "hset w1 f v", "hset r1 f v", "mget k1 r1 w1", "mget k1 r1",
        "mset k1 v w1 v", "mset k1 v r1 v", "del k1 w1", "del k1 x",
        "eval return 2 k1 r1 a b", "eval return 1 w1 k1", "blpop k1 r1 0", "blpop k1 x 0",
        "zunionstore w1 2 k1 r1", "zunionstore r1 2 k1 k2", "xread streams k1 r1 0 0",
        "xread count 1 streams k1 x 0 0", "sinterstore w2 k1 r2", "object encoding r1",
        "set w1 v get", "set k1 v get", "set r1 v", "sort k1 store w1", "sort k1 store r1",
        "getrange w1 0 1", "lmpop 2 k1 w1 left", "lmpop 2 k1 k2 left", "get"]] + [
        ("ACL", "USERS"),
    ]
    # sakerd has its built-in admin and fleet users besides the ones made here.
    d.client().execute_command("ACL", "DELUSER", "admin", "fleet")
    for resp in (2, 3):
        rr.execute_command("ACL", "DELUSER", "bob", "eve", "carol", "keys")
        d.client().execute_command("ACL", "DELUSER", "bob", "eve", "carol", "keys")
        same_side_by_side(d, redis_server_port, *cmds, resp=resp)
    rr.execute_command("ACL", "DELUSER", "keys")


SELECTOR_STEPS = [
    ("ACL", "SETUSER", "sel", "reset", "on", "nopass", "+get", "~k*", "(+set ~w* &ch*)",
     "(", "+hget", "%R~h*", ")"),
    ("ACL", "SETUSER", "sel", "(~x", "+del)"),
    ("ACL", "GETUSER", "sel"),
    ("ACL", "LIST"),
    ("ACL", "DRYRUN", "sel", "get", "k1"), ("ACL", "DRYRUN", "sel", "get", "w1"),
    ("ACL", "DRYRUN", "sel", "set", "w1", "v"), ("ACL", "DRYRUN", "sel", "set", "k1", "v"),
    ("ACL", "DRYRUN", "sel", "hget", "h1", "f"), ("ACL", "DRYRUN", "sel", "hget", "k1", "f"),
    ("ACL", "DRYRUN", "sel", "del", "x"), ("ACL", "DRYRUN", "sel", "del", "x", "k1"),
    ("ACL", "DRYRUN", "sel", "publish", "ch1", "m"), ("ACL", "DRYRUN", "sel", "lpush", "k1", "v"),
    ("AUTH", "sel", "any"),
    ("GET", "k1"), ("SET", "w1", "v"), ("SET", "k1", "v"), ("HGET", "k1", "f"),
    ("MSET", "w1", "v", "k1", "v"), ("LPUSH", "x", "v"), ("ACL", "WHOAMI"),
    ("AUTH", "admin2", "pw"),
    ("ACL", "SETUSER", "sel", "(~x", "+del"),
    ("ACL", "SETUSER", "sel", "(~x bogus)"),
    ("ACL", "SETUSER", "sel", "(~x +nosuchcmd)"),
    ("ACL", "SETUSER", "sel", "(~* ~x)"),
    ("ACL", "SETUSER", "sel", "(\"unbalanced)"),
    ("ACL", "GETUSER", "sel"),
    ("ACL", "SETUSER", "sel", "clearselectors"),
    ("ACL", "GETUSER", "sel"),
    ("ACL", "SETUSER", "sel", "(+@all ~* &*)"),
    ("ACL", "DRYRUN", "sel", "flushall"),
    ("ACL", "SETUSER", "sel", "reset"),
    ("ACL", "LIST"),
    ("ACL", "DELUSER", "sel"),
]


@pytest.mark.parametrize("resp", [2, 3])
def test_selectors_match_redis(make_daemon, redis_server_port, resp):
    """Redis 7's selectors: a command passes if one selector allows all of it;
    GETUSER, ACL LIST, the errors and the denial told match redis-server."""
    d = make_daemon()
    for port in (d.port, redis_server_port):
        r = redis.Redis(port=port)
        # ACL LIST is compared whole: only default, admin2 and sel on both.
        others = [u for u in r.execute_command("ACL", "USERS") if u != b"default"]
        if others:
            r.execute_command("ACL", "DELUSER", *others)
        r.execute_command("ACL", "SETUSER", "admin2", "on", ">pw", "+@all", "~*", "&*")
        r.execute_command("ACL", "LOG", "RESET")
    try:
        same_side_by_side(d, redis_server_port, *SELECTOR_STEPS, resp=resp)
        # The denial each rejected command logged: the relevant error of
        # the selectors (the command's, else the last key none matched).
        logs = [[(e["reason"], e["context"], e["object"], e["username"], e["count"])
                 for e in redis.Redis(port=port, decode_responses=True).acl_log()]
                for port in (d.port, redis_server_port)]
        assert logs[0] == logs[1] and len(logs[0]) == 4, logs
    finally:
        redis.Redis(port=redis_server_port).execute_command("ACL", "DELUSER", "sel", "admin2")


def test_acl_list_describes_users_as_redis(make_daemon, redis_server_port):
    d = make_daemon()
    rr = redis.Redis(port=redis_server_port)
    rr.execute_command("ACL", "DELUSER", "bob", "eve", "mon")
    d.client().execute_command("ACL", "DELUSER", "admin", "fleet")
    cmds = SETUP + [("ACL", "LIST")]
    ours, theirs = both(d.port, redis_server_port, *cmds)
    assert ours[:-1] == theirs[:-1]
    # Single commands come in the command table's order, which differs.
    norm = lambda b: sorted(sorted(line.split(b" ")) for line in b.split(b"\r\n"))
    assert norm(ours[-1]) == norm(theirs[-1])
    rr.execute_command("ACL", "DELUSER", "bob", "eve")


def test_acl_list_rules_rebuild_the_same_user(make_daemon):
    """ACLDescribeUser's promise: its rules, applied to a new user, give the
    same rights (Redis checks the bitmap and panics otherwise)."""
    d = make_daemon()
    r = d.client(decode_responses=True)
    raw = d.raw()
    rules_of = lambda name: re.search(rb"commands\r\n\$\d+\r\n([^\r]*)\r\n",
                                      raw.call("ACL", "GETUSER", name)).group(1).decode()
    for rules in (["-@all", "+@read", "+@connection", "-@dangerous", "+info"],
                  ["+@all", "-@exec", "-@admin", "+config|get", "-get"],
                  ["-@all", "+client", "-client|kill", "+get|x"]):
        r.execute_command("ACL", "SETUSER", "one", "reset", "on", *rules)
        described = rules_of("one")
        assert described.startswith(("-@all ", "+@all ")), described
        r.execute_command("ACL", "SETUSER", "two", "reset", "on", *described.split())
        assert rules_of("two") == described, rules
        for cmd in (["get", "k"], ["config", "get", "x"], ["client", "kill", "id", "1"],
                    ["client", "id"], ["info"], ["set", "k", "v"], ["proc", "start", "x"]):
            assert r.execute_command("ACL", "DRYRUN", "one", *cmd) == \
                r.execute_command("ACL", "DRYRUN", "two", *cmd), (rules, cmd)


def test_noperm_errors_and_acl_log_match_redis(make_daemon, redis_server_port):
    d = make_daemon()
    rr = redis.Redis(port=redis_server_port)
    rr.execute_command("ACL", "DELUSER", "bob")
    rr.execute_command("ACL", "LOG", "RESET")
    for port in (d.port, redis_server_port):
        redis.Redis(port=port).execute_command(*SETUP[0])
    cmds = [("AUTH", "bob", "wrong"), ("AUTH", "nosuch", "x"), ("AUTH", "bob", "pw1"),
            ("ACL", "WHOAMI"), ("GET", "k1"), ("GET", "x"), ("SET", "r1", "v"), ("GET", "r1"),
            ("SET", "w1", "v"), ("GET", "w1"), ("HGET", "k1", "f"), ("HSET", "k1", "f", "v"),
            ("PUBLISH", "ch1", "m"), ("PUBLISH", "zz", "m"), ("SUBSCRIBE", "ch1", "zz"),
            ("SELECT", "1"), ("SELECT", "0"), ("DEL", "k1"), ("CLIENT", "ID")]
    ours, theirs = both(d.port, redis_server_port, *cmds)
    for cmd, a, b in zip(cmds, ours, theirs):
        if cmd == ("CLIENT", "ID"):
            continue
        assert a == b, (cmd, a, b)
    mask = lambda b: re.sub(rb"\$\d+\r\nid=[^\r]*\r\n", b"CINFO",
                            re.sub(rb"age-seconds\r\n(\$\d+\r\n)?[^\r]*\r\n", b"AGE", b))
    logs = [redis.Redis(port=p).execute_command("ACL", "LOG") for p in (d.port, redis_server_port)]
    strip = lambda entries: [{k: v for k, v in e.items()
                              if k not in (b"age-seconds", b"client-info")} for e in entries]
    assert strip(logs[0]) == strip(logs[1])
    assert len(logs[0]) >= 6
    info = redis.Redis(port=d.port).info("stats")
    assert info["acl_access_denied_auth"] == 2
    assert info["acl_access_denied_cmd"] >= 3
    assert info["acl_access_denied_key"] >= 3
    assert info["acl_access_denied_channel"] >= 2
    rr.execute_command("ACL", "DELUSER", "bob")
    assert mask(b"") == b""


def test_redis_py_and_redis_cli_log_in_with_user_and_password(make_daemon):
    d = make_daemon("user ops on >ops-pass ~* &* +@all\n", open_default=False)
    r = d.client(username="ops", password="ops-pass", decode_responses=True)
    assert r.execute_command("ACL", "WHOAMI") == "ops"
    assert r.set("k", "v") is True
    cli = require_tool("redis-cli")
    out = subprocess.run([cli, "-p", str(d.port), "--user", "ops", "--pass", "ops-pass",
                          "--no-auth-warning", "GET", "k"], stdout=subprocess.PIPE,
                         timeout=30).stdout
    assert out == b"v\n"
    out = subprocess.run([cli, "-p", str(d.port), "--user", "ops", "--pass", "bad",
                          "--no-auth-warning", "GET", "k"], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, timeout=30).stdout
    assert b"WRONGPASS invalid username-password pair or user is disabled." in out
    # HELLO 3 AUTH, and CLIENT LIST shows the user.
    c = RawConn(("127.0.0.1", d.port))
    hello = c.call("HELLO", "3", "AUTH", "ops", "ops-pass", "SETNAME", "me")
    assert hello.startswith(b"%7\r\n")
    assert b" name=me " in c.call("CLIENT", "INFO") and b" user=ops " in c.call("CLIENT", "INFO")


def test_hello_setname_before_a_failed_auth_sets_nothing(make_daemon, redis_server_port):
    d = make_daemon()
    for port in (d.port, redis_server_port):
        redis.Redis(port=port).execute_command("ACL", "SETUSER", "hx", "on", ">good", "+@all",
                                               "~*")
    cmds = [("HELLO", "2", "SETNAME", "sneaky", "AUTH", "hx", "bad"), ("CLIENT", "GETNAME"),
            ("HELLO", "2", "AUTH", "hx", "good", "SETNAME", "fine"), ("CLIENT", "GETNAME")]
    ours, theirs = both(d.port, redis_server_port, *cmds)
    mask = lambda b: re.sub(rb"\$2\r\nid\r\n:\d+", b"ID", b)
    assert [mask(x) for x in ours[2:]] == [mask(x) for x in theirs[2:]]
    assert ours[0] == theirs[0] == b"-WRONGPASS invalid username-password pair or user is " \
                                    b"disabled.\r\n"
    # Redis 7.0.15 sets the name before it looks at AUTH (fixed in 7.2);
    # sakerd authenticates first, so a failed HELLO sets nothing.
    assert theirs[1] == b"$6\r\nsneaky\r\n"
    assert ours[1] == b"$-1\r\n" and ours[3] == b"$4\r\nfine\r\n"


def test_categories_of_every_command_are_redis_s(make_daemon, redis_server_port):
    d = make_daemon()
    table = lambda port: {c[0]: c for c in _flatten(_raw_reply(port, "COMMAND"))}
    ours, theirs = table(d.port), table(redis_server_port)
    common = set(ours) & set(theirs)
    assert len(common) > 80
    for name in common:
        mine = set(ours[name][6]) - {b"@exec"}
        assert mine == set(theirs[name][6]), name
    exec_cat = set(redis.Redis(port=d.port).execute_command("ACL", "CAT", "exec"))
    assert {b"config|set", b"config|rewrite", b"shutdown", b"monitor", b"client|kill",
            b"proc|start", b"proc|stop", b"proc|restart", b"proc|signal", b"task|run",
            b"plugin|reload", b"acl|setuser", b"acl|load"} <= exec_cat
    assert b"eval" not in exec_cat
    assert redis.Redis(port=d.port).execute_command("ACL", "CAT")[-1] == b"exec"


def _raw_reply(port, *args):
    c = RawConn(("127.0.0.1", port))
    c.send(encode_command(*args))
    reply = c.read_reply()
    c.close()
    return reply


def _flatten(commands):
    for c in commands:
        yield c
        yield from _flatten(c[9])


# ---- scripts run with their caller's rights ----------------------------------------------

def test_scripts_run_with_the_rights_of_their_caller_as_redis(make_daemon, redis_server_port):
    d = make_daemon()
    for port in (d.port, redis_server_port):
        redis.Redis(port=port).execute_command("ACL", "SETUSER", "sc", "on", ">p", "~a*",
                                               "+@scripting", "+get", "+auth")
    cmds = [("AUTH", "sc", "p"),
            ("EVAL", "return redis.call('get','b')", "0"),
            ("EVAL", "return redis.pcall('set','a','1')", "0"),
            ("EVAL", "return redis.call('get','a1')", "0")]
    same_side_by_side(d, redis_server_port, *cmds)


def test_a_scripting_user_without_exec_cannot_start_signal_or_read_processes(make_daemon):
    d = make_daemon("user sc on >p ~* &* +@all -@exec\n")
    victim = subprocess.Popen(["sleep", "60"])
    try:
        r = d.client(username="sc", password="p", decode_responses=True)
        for snippet, name in (("saker.exec('id')", "exec"),
                              ("saker.supervise{name='x', cmd='sleep 60'}", "supervise"),
                              ("saker.kill(%d, 'TERM')" % victim.pid, "kill"),
                              ("saker.proc(%d, {'environ'})" % d.pid, "proc"),
                              ("saker.modules(%d)" % d.pid, "modules")):
            got = r.eval("local a, b = %s; return {tostring(a), b}" % snippet, 0)
            assert got == ["nil", "NOPERM user 'sc' has no permissions to run saker.%s "
                                  "(it needs @exec)" % name], snippet
        assert victim.poll() is None
        # What is not private still works.
        assert r.eval("return saker.proc(%d).pid" % d.pid, 0) == d.pid
        assert r.eval("return saker.kill(%d, 0)" % victim.pid, 0) == 1
        # The same calls from an +@all user do run.
        admin = d.client(decode_responses=True)
        assert admin.eval("return saker.proc(%d, {'environ'}) ~= nil" % d.pid, 0) == 1
        assert admin.eval("return saker.kill(%d, 'TERM')" % victim.pid, 0) == 1
        assert victim.wait(10) == -15
    finally:
        if victim.poll() is None:
            victim.kill()
            victim.wait()


def test_plugin_commands_declare_their_categories(make_daemon, tmp_path):
    d = make_daemon("user r on >p ~* &* +@all -@exec -@admin\n", subdir="pl", wait=False)
    scripts = os.path.join(d.dir, "scripts")
    with open(os.path.join(scripts, "cmds.lua"), "w") as f:
        f.write("saker.command('greet', function() return 'hi' end, {acl = {'read', '@fast'}})\n"
                "saker.command('danger', function() return 'boom' end)\n")
    d.stop()
    d2 = make_daemon("user r on >p ~* &* +@all -@exec -@admin\n", subdir="pl")
    r = d2.client(username="r", password="p", decode_responses=True)
    assert r.execute_command("greet") == "hi"
    with pytest.raises(redis.exceptions.NoPermissionError) as e:
        r.execute_command("danger")
    assert str(e.value) == "this user has no permissions to run the 'danger' command"
    info = _raw_reply(d2.port, "COMMAND", "INFO", "greet", "danger")
    assert info[0][6] == [b"@read", b"@fast"]
    assert info[1][6] == [b"@admin", b"@slow", b"@dangerous", b"@exec"]


# ---- configuration ---------------------------------------------------------------------------

def test_a_bad_user_rule_names_file_line_and_reason(tmp_path):
    conf = tmp_path / "bad.conf"
    conf.write_text("port 0\nunixsocket \"\"\n\nuser bob on +@nosuchcat\nuser ann on %X~k\n"
                    "user sel on (~k +get\n")
    env = sakerd_env()
    p = subprocess.run([sys.executable, "-m", "sakerd", "--test-config", "-c", str(conf)],
                       env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    assert p.returncode == 1
    err = p.stderr.decode()
    assert "%s:4: Error in user declaration '+@nosuchcat': Unknown command or category name " \
           "in ACL" % conf in err
    assert "%s:5: Error in user declaration '%%X~k': Syntax error" % conf in err
    assert "%s:6: Error in user declaration '(~k': Unmatched parenthesis in acl selector " \
           "starting at '(~k'." % conf in err
    p = subprocess.run([sys.executable, "-m", "sakerd", "-c", str(conf)], env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    assert p.returncode == 1 and ":4: Error in user declaration" in p.stderr.decode()


def test_an_open_default_off_loopback_refuses_the_start(tmp_path):
    conf = tmp_path / "open.conf"
    conf.write_text("port %d\nunixsocket \"\"\nbind 0.0.0.0\nuser default on nopass ~* &* +@all\n"
                    % free_port())
    env = sakerd_env()
    p = subprocess.run([sys.executable, "-m", "sakerd", "-c", str(conf)], env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    assert p.returncode == 1
    assert ("%s:3: refusing to listen on 0.0.0.0: the 'default' user needs no password and "
            "may run @exec commands" % conf) in p.stderr.decode()
    # Without @exec, or with a password, it starts (checked by --test-config).
    for fix in ("user default on nopass ~* &* +@all -@exec\n",
                "user default on >pw ~* &* +@all\n"):
        conf.write_text("port 1\nunixsocket \"\"\nbind 0.0.0.0\n" + fix)
        p = subprocess.run([sys.executable, "-m", "sakerd", "--test-config", "-c", str(conf)],
                           env=env, stdout=subprocess.PIPE, timeout=60)
        assert p.stdout == b"configuration OK\n", fix


def test_protected_configs_need_enable_protected_configs(make_daemon):
    d = make_daemon("enable-exec no\n")
    r = d.client(decode_responses=True)
    for name, value in (("enable-exec", "yes"), ("protected-mode", "no")):
        with pytest.raises(redis.exceptions.ResponseError) as e:
            r.config_set(name, value)
        assert str(e.value) == ("CONFIG SET failed (possibly related to argument '%s') - "
                                "can't set protected config" % name)
    assert r.config_get("enable-exec") == {"enable-exec": "no"}
    d2 = make_daemon("enable-exec no\nenable-protected-configs yes\n")
    assert d2.client().config_set("enable-exec", "yes") is True


def test_enable_exec_no_switches_off_signals_and_private_process_state(make_daemon):
    d = make_daemon("enable-exec no\n")
    r = d.client(decode_responses=True)
    for snippet in ("saker.kill(%d, 'HUP')" % d.pid, "saker.proc(%d, {'environ'})" % d.pid,
                    "saker.modules(%d)" % d.pid, "saker.exec('true')"):
        assert r.eval("local a, b = %s; return {tostring(a), b}" % snippet, 0) == \
            ["nil", "exec disabled by configuration (enable-exec no)"], snippet


def test_aclfile_load_and_save(make_daemon, tmp_path):
    aclfile = tmp_path / "users.acl"
    aclfile.write_text("user default on nopass ~* &* +@all\nuser ann on >a1 ~ann:* +get "
                       "(~log:* +xadd)\n")
    os.chmod(aclfile, 0o600)
    d = make_daemon("aclfile %s\n" % aclfile)
    r = d.client(decode_responses=True)
    # The built-in admin and fleet stay unless the file defines its own.
    assert r.execute_command("ACL", "USERS") == ["admin", "ann", "default", "fleet"]
    r.execute_command("ACL", "SETUSER", "zed", "on", ">z", "+ping")
    assert r.execute_command("ACL", "SAVE") == "OK"
    text = aclfile.read_text()
    assert "user zed on #%s resetchannels -@all +ping\n" % \
        __import__("hashlib").sha256(b"z").hexdigest() in text
    assert "user ann on #%s ~ann:* resetchannels -@all +get (~log:* resetchannels -@all " \
        "+xadd)\n" % __import__("hashlib").sha256(b"a1").hexdigest() in text
    assert os.stat(aclfile).st_mode & 0o777 == 0o600
    assert r.execute_command("ACL", "LOAD") == "OK"
    ann = d.client(username="ann", password="a1", decode_responses=True)
    assert ann.xadd("log:1", {"f": "v"}, id="1-1") == "1-1" and ann.get("ann:x") is None
    with pytest.raises(redis.exceptions.NoPermissionError):
        ann.xadd("ann:x", {"f": "v"})
    aclfile.write_text("user default on nopass ~* &* +@all\nuser bad on +@nosuchcat\n"
                       "user worse on (+get ~k\n")
    with pytest.raises(redis.exceptions.ResponseError) as e:
        r.execute_command("ACL", "LOAD")
    assert "%s:2: Error in applying operation '+@nosuchcat': Unknown command or category " \
           "name in ACL." % aclfile in str(e.value)
    assert "%s:3: Unmatched parenthesis in selector definition." % aclfile in str(e.value)
    assert r.execute_command("ACL", "USERS") == ["admin", "ann", "default", "fleet", "zed"]


def test_deleting_a_user_disconnects_its_clients(make_daemon):
    d = make_daemon("user tmp on >t ~* +@all\n")
    r = d.client(username="tmp", password="t", retry_on_error=[])
    assert r.ping() is True
    d.client().execute_command("ACL", "DELUSER", "tmp")
    with pytest.raises(redis.exceptions.ConnectionError):
        r.ping()


# ---- AUTH abuse -------------------------------------------------------------------------------

def test_failed_auth_is_throttled_per_address_and_logged_once_per_burst(make_daemon):
    d = make_daemon("user default on >right ~* &* +@all\n")
    c = RawConn(("127.0.0.1", d.port))
    wrong = b"-WRONGPASS invalid username-password pair or user is disabled.\r\n"
    for _ in range(200):
        c.send(encode_command("AUTH", "guess"))
    replies = [c.read_wire() for _ in range(200)]
    assert replies == [wrong] * 200
    # Locked out: even the right password fails until the lock expires.
    assert c.call("AUTH", "right") == wrong
    info = d.client(password="right", retry_on_error=[])
    wait_for(lambda: RawConn(("127.0.0.1", d.port)).call("AUTH", "right") == b"+OK\r\n",
             30, "the lock to expire")
    stats = info.info("stats")
    assert stats["auth_failures_throttled"] >= 190
    assert stats["acl_access_denied_auth"] >= 200
    lines = [l for l in d.log().splitlines() if "failed auth" in l.lower()]
    assert 1 <= len(lines) <= 3, lines


def test_unauthenticated_connections_are_closed_after_auth_timeout(make_daemon):
    d = make_daemon("user default on >pw ~* &* +@all\nauth-timeout 1\n")
    c = RawConn(("127.0.0.1", d.port))
    ok = RawConn(("127.0.0.1", d.port))
    assert ok.call("AUTH", "pw") == b"+OK\r\n"
    assert c.is_closed(10)
    assert ok.call("PING") == b"+PONG\r\n"


def test_monitor_and_slowlog_redact_acl_setuser(make_daemon):
    d = make_daemon("slowlog-log-slower-than 0\n")
    r = d.client()
    r.execute_command("ACL", "SETUSER", "s", "on", ">supersecret", "+@all")
    entries = r.slowlog_get(10)
    args = [e["command"] for e in entries]
    assert any(a == b"ACL SETUSER (redacted) (redacted) (redacted) (redacted)" for a in args), args
    assert all(b"supersecret" not in a for a in args)


def test_acl_in_multi_matches_redis(make_daemon, redis_server_port):
    """Denied while queueing: EXECABORT; rights taken away after queueing:
    EXEC's own -NOPERM for that command (execCommand re-checks)."""
    d = make_daemon()
    for port in (d.port, redis_server_port):
        r = redis.Redis(port=port)
        r.execute_command("ACL", "DELUSER", "mx")
        r.execute_command("ACL", "SETUSER", "mx", "on", ">p", "~*", "&*", "+@all", "-flushall")
    cmds = [("AUTH", "mx", "p"), ("MULTI",), ("SET", "a", "1"), ("FLUSHALL",), ("EXEC",),
            ("MULTI",), ("SET", "a", "2"), ("GET", "a")]
    outs = []
    for port in (d.port, redis_server_port):
        c = RawConn(("127.0.0.1", port))
        out = [c.call(*cmd) for cmd in cmds]
        admin = redis.Redis(port=port)
        admin.execute_command("ACL", "SETUSER", "mx", "-get")
        out.append(c.call("EXEC"))
        log = admin.execute_command("ACL", "LOG", "1")[0]
        out.append(repr((log[b"reason"], log[b"context"], log[b"object"])).encode())
        admin.execute_command("ACL", "DELUSER", "mx")
        outs.append(out)
    assert outs[0] == outs[1]
    assert outs[0][4] == b"-EXECABORT Transaction discarded because of previous errors.\r\n"
    assert b"ACLs rules changed" in outs[0][8]


def test_config_rewrite_keeps_the_acl_users_across_a_restart(make_daemon, tmp_path):
    d = make_daemon(subdir="rw")
    r = d.client(decode_responses=True)
    r.execute_command("ACL", "SETUSER", "kept", "on", ">kp", "~k:*", "+get", "+set")
    r.execute_command("ACL", "SETUSER", "sel", "on", ">sp", "+get", "~a*", "(+set ~b*)")
    assert r.execute_command("CONFIG", "REWRITE") == "OK"
    text = open(d.conf).read()
    assert text.count("user default ") == 1
    assert "user kept on #%s ~k:* resetchannels -@all " % \
        __import__("hashlib").sha256(b"kp").hexdigest() in text
    d.stop()
    from helpers import Daemon
    d2 = Daemon(tmp_path / "rw", "include %s\n" % d.conf, port=d.port,
                config_name="again.conf", open_default=False)
    try:
        k = d2.client(username="kept", password="kp", decode_responses=True)
        assert k.set("k:1", "v") is True
        with pytest.raises(redis.exceptions.NoPermissionError):
            k.get("other")
        sel = d2.client(username="sel", password="sp", decode_responses=True)
        assert sel.set("b1", "v") is True and sel.get("a1") is None
        with pytest.raises(redis.exceptions.NoPermissionError):
            sel.set("a1", "v")      # +set is the selector's, on b* only
    finally:
        d2.stop()


GETKEYS_CASES = [
    "get k", "get", "get a b", "ping", "nosuch x", "config get x", "set k v", "set k v get",
    "set k v GET", "set k v nx", "sort k", "sort k by x store d get # store e", "sort_ro k",
    "lmove a b left left", "rpoplpush a b", "mget a b c", "mset a 1 b", "mset a 1 b 2",
    "del a b c", "eval x 0", "eval x 2 a b c", "eval x 2 a", "eval x -1", "fcall f 1 k",
    "zunionstore d 2 a b", "zunionstore d 0 a", "zunion 2 a b", "zinterstore d 1 a weights 1",
    "lmpop 1 a left", "lmpop 0 a left", "lmpop 2 a b right count 2", "blmpop 0 2 a b left",
    "bzmpop 0 1 z min", "sintercard 2 a b limit 1", "xread streams a b", "xread streams a b c",
    "xread count 1 block 0 streams a b 0 0", "xreadgroup group g c streams s >",
    "xadd s * f v", "copy a b", "rename a b", "getex k persist", "object encoding k",
    "hset h f v", "expire k 10", "touch a b", "exists a b", "smove a b m",
    "georadius g 0 0 1 km store d", "bitfield k get u8 0", "bitfield k set u8 0 1",
    "bitfield k overflow sat get u8 0", "bitfield k incrby u8", "pfcount a b",
]


@pytest.mark.parametrize("with_flags", [False, True])
def test_command_getkeys_matches_redis(make_daemon, redis_server_port, with_flags):
    """COMMAND GETKEYS/GETKEYSANDFLAGS find what ACLs check: Redis's key specs,
    and its getkeys procs where the specs can't tell (SET, SORT, BITFIELD)."""
    d = make_daemon()
    sub = "GETKEYSANDFLAGS" if with_flags else "GETKEYS"
    # The commands sakerd has (BITFIELD and PF* may not be there yet).
    listed = d.raw().call("COMMAND", "LIST")
    ours = set(re.findall(rb"\$\d+\r\n([^\r]*)\r\n", listed)) | {b"nosuch"}
    cases = [("COMMAND", sub) + tuple(case.split()) for case in GETKEYS_CASES
             if case.split()[0].encode() in ours]
    assert {case.split()[0] for case in GETKEYS_CASES if case.split()[0].encode() not in ours} \
        <= {"bitfield", "pfcount", "georadius"}
    for resp in (2, 3):
        same_side_by_side(d, redis_server_port, *cases, resp=resp)


def test_command_docs_are_redis_s_for_the_commands_redis_has(make_daemon, redis_server_port):
    """redis-cli builds its hints and `help <cmd>` from COMMAND DOCS."""
    d = make_daemon()
    for resp in (2, 3):
        # (Containers list their subcommands in Redis's hash order: not compared.)
        for name in ("get", "set", "zadd", "xadd", "eval", "blmpop", "sort"):
            same_side_by_side(d, redis_server_port, ("COMMAND", "DOCS", name), resp=resp)
    cli = require_tool("redis-cli")
    out = subprocess.run([cli, "-p", str(d.port), "--no-raw", "COMMAND", "DOCS", "proc"],
                         stdout=subprocess.PIPE, timeout=30).stdout
    assert b"Supervised processes" in out


def test_command_info_has_redis_s_key_specs(make_daemon, redis_server_port):
    d = make_daemon()
    for name in ("get", "lmove", "xread", "eval", "sort", "zunionstore"):
        ours = _raw_reply(d.port, "COMMAND", "INFO", name)[0]
        theirs = _raw_reply(redis_server_port, "COMMAND", "INFO", name)[0]
        assert ours[8] == theirs[8], name
        assert ours[8], name
