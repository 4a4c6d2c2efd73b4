"""Connection and server commands, byte for byte as Redis 7 answers them (SPEC §5, §8).

Limits (maxclients, query buffer, bulk length, timeout), CLIENT, AUTH and
protected mode, HELLO, RESET, SELECT, MONITOR, SLOWLOG, COMMAND (and
redis-cli on top of it), SHUTDOWN, INFO. Real daemon, raw sockets and redis-py.
"""

import os
import pty
import re
import select
import signal
import socket
import subprocess
import time

import pytest

from helpers import RawConn, require_tool, wait_for



def exchange(conn, data, n=1):
    conn.send(data)
    return [conn.read_reply() for _ in range(n)]


def nothing_more(conn, wait=0.3):
    """True if no byte arrives within `wait` seconds."""
    r, _, _ = select.select([conn.sock], [], [], wait)
    return not r and not conn.buf


# ---- limits ------------------------------------------------------------------------

def test_maxclients_answers_the_exact_error_then_closes(make_daemon):
    d = make_daemon("maxclients 2\n")
    a, b = d.raw(), d.raw()
    assert exchange(a, b"PING\r\n") == [b"PONG"]
    assert exchange(b, b"PING\r\n") == [b"PONG"]
    assert d.raw().read_all() == b"-ERR max number of clients reached\r\n"
    assert exchange(a, b"INFO stats\r\n")[0].count(b"rejected_connections:1\r\n") == 1
    b.close()
    wait_for(lambda: b"connected_clients:1\r\n" in exchange(a, b"INFO clients\r\n")[0])
    assert exchange(d.raw(), b"PING\r\n") == [b"PONG"]


def test_query_buffer_limit_closes_the_client(make_daemon):
    d = make_daemon("client-query-buffer-limit 1mb\n")
    c = d.raw()
    c.send(b"*2\r\n$4\r\nECHO\r\n$3000000\r\n")
    try:
        for _ in range(40):
            c.send(b"x" * 65536)
    except OSError:
        pass
    assert c.read_all() == b""
    r = d.client(protocol=2)
    assert r.info("stats")["client_query_buffer_limit_disconnections"] == 1
    assert "Closing client that reached max query buffer length" in d.log()


def test_proto_max_bulk_len_and_live_change(make_daemon):
    d = make_daemon("proto-max-bulk-len 1000\n")
    ok = d.raw()
    assert exchange(ok, b"*2\r\n$4\r\nECHO\r\n$1000\r\n" + b"a" * 1000 + b"\r\n") == [b"a" * 1000]
    c = d.raw()
    c.send(b"*2\r\n$4\r\nECHO\r\n$1001\r\n")
    assert c.read_all() == b"-ERR Protocol error: invalid bulk length\r\n"
    # CONFIG SET applies to connections already open.
    assert exchange(ok, b"CONFIG SET proto-max-bulk-len 2000\r\n") == [b"OK"]
    assert exchange(ok, b"*2\r\n$4\r\nECHO\r\n$1001\r\n" + b"b" * 1001 + b"\r\n") == [b"b" * 1001]


def test_idle_timeout_closes_normal_clients_but_not_subscribers_or_monitors(make_daemon):
    d = make_daemon("timeout 1\n")
    idle, sub, mon = d.raw(), d.raw(), d.raw()
    assert exchange(sub, b"SUBSCRIBE ch\r\n") == [[b"subscribe", b"ch", 1]]
    assert exchange(mon, b"MONITOR\r\n") == [b"OK"]
    assert exchange(idle, b"PING\r\n") == [b"PONG"]
    start = time.monotonic()
    assert idle.read_all(timeout=60) == b""     # a ceiling for a loaded machine
    assert time.monotonic() - start >= 1.0      # not before `timeout 1`
    r = d.client(protocol=2)
    assert r.publish("ch", "still here") == 1
    assert sub.read_reply() == [b"message", b"ch", b"still here"]


# ---- CLIENT ---------------------------------------------------------------------------

CLIENT_LINE = re.compile(
    r"id=(\d+) addr=127\.0\.0\.1:(\d+) laddr=127\.0\.0\.1:(\d+) fd=\d+ name=(\S*) age=\d+ idle=\d+ "
    r"flags=(\w+) db=(\d+) sub=0 psub=0 ssub=0 multi=-1 qbuf=\d+ qbuf-free=\d+ argv-mem=\d+ "
    r"multi-mem=0 rbs=\d+ rbp=\d+ obl=0 oll=0 omem=\d+ tot-mem=\d+ events=r cmd=(\S+) "
    r"user=default redir=-1 resp=(\d)\n")


def test_client_id_setname_getname_info_list(daemon):
    c = daemon.raw()
    [cid] = exchange(c, b"CLIENT ID\r\n")
    assert exchange(c, b"CLIENT GETNAME\r\n") == [None]
    assert exchange(c, b"CLIENT SETNAME worker-1\r\n") == [b"OK"]
    assert exchange(c, b"CLIENT SETNAME \"a b\"\r\n") == [
        ("error", b"ERR Client names cannot contain spaces, newlines or special characters.")]
    assert exchange(c, b"CLIENT GETNAME\r\n") == [b"worker-1"]
    [info] = exchange(c, b"CLIENT INFO\r\n")
    m = CLIENT_LINE.fullmatch(info.decode())
    assert m, info
    assert (int(m.group(1)), m.group(3), m.group(4), m.group(5), m.group(6), m.group(7),
            m.group(8)) == (cid, str(daemon.port), "worker-1", "N", "0", "client|info", "2")
    other = daemon.raw()
    [oid] = exchange(other, b"CLIENT ID\r\n")
    assert oid > cid
    [listing] = exchange(c, b"CLIENT LIST\r\n")
    ids = [int(CLIENT_LINE.fullmatch(l + "\n").group(1)) for l in listing.decode().splitlines()]
    assert ids == [cid, oid]
    [only] = exchange(c, b"CLIENT LIST ID %d\r\n" % oid)
    assert only.startswith(b"id=%d " % oid) and only.count(b"\n") == 1
    assert exchange(c, b"CLIENT LIST TYPE pubsub\r\n") == [b""]
    c.send(b"CLIENT LIST ID 0\r\n")
    assert c.read_line() + c.read_line() == b"$0"       # no such client: empty, as Redis
    assert exchange(c, b"CLIENT LIST ID x\r\n") == [("error", b"ERR Invalid client ID")]
    assert exchange(c, b"CLIENT LIST TYPE bogus\r\n") == [("error", b"ERR Unknown client type 'bogus'")]
    assert exchange(c, b"CLIENT NOSUCH\r\n") == [
        ("error", b"ERR unknown subcommand 'NOSUCH'. Try CLIENT HELP.")]


def test_client_kill_by_addr_id_laddr_type_and_skipme(daemon):
    me = daemon.raw()
    victims = [daemon.raw() for _ in range(4)]
    ids = [exchange(v, b"CLIENT ID\r\n")[0] for v in victims]
    [listing] = exchange(me, b"CLIENT LIST\r\n")
    addr = {int(m.group(1)): "127.0.0.1:" + m.group(2)
            for m in CLIENT_LINE.finditer(listing.decode())}
    # Old form: CLIENT KILL addr.
    assert exchange(me, b"CLIENT KILL %s\r\n" % addr[ids[0]].encode()) == [b"OK"]
    assert victims[0].read_all() == b""
    assert exchange(me, b"CLIENT KILL 127.0.0.1:1\r\n") == [("error", b"ERR No such client")]
    # New form, by id and by addr.
    assert exchange(me, b"CLIENT KILL ID %d\r\n" % ids[1]) == [1]
    assert victims[1].read_all() == b""
    assert exchange(me, b"CLIENT KILL ADDR %s\r\n" % addr[ids[2]].encode()) == [1]
    assert victims[2].read_all() == b""
    assert exchange(me, b"CLIENT KILL ID 0\r\n") == [
        ("error", b"ERR client-id should be greater than 0")]
    assert exchange(me, b"CLIENT KILL TYPE nope\r\n") == [("error", b"ERR Unknown client type 'nope'")]
    assert exchange(me, b"CLIENT KILL ID 1 BOGUS x\r\n") == [("error", b"ERR syntax error")]
    # LADDR matches every client of this listener; SKIPME (default yes) spares me.
    assert exchange(me, b"CLIENT KILL LADDR 127.0.0.1:%d\r\n" % daemon.port) == [1]
    assert victims[3].read_all() == b""
    assert exchange(me, b"CLIENT KILL TYPE normal\r\n") == [0]
    # SKIPME no: I am killed too, after my reply; what I pipelined behind never runs.
    me.send(b"CLIENT KILL TYPE normal SKIPME no\r\nPING\r\n")
    assert me.read_all() == b":1\r\n"


def test_client_reply_on_off_skip(daemon):
    c = daemon.raw()
    c.send(b"CLIENT REPLY SKIP\r\nECHO skipped\r\nECHO seen\r\n")
    assert c.read_reply() == b"seen"
    c.send(b"CLIENT REPLY OFF\r\nECHO a\r\nPING\r\nCLIENT REPLY ON\r\nECHO b\r\n")
    assert c.read_reply() == b"OK"
    assert c.read_reply() == b"b"
    assert nothing_more(c)
    # QUIT while replies are off still closes the connection.
    c.send(b"CLIENT REPLY OFF\r\nQUIT\r\n")
    assert c.read_all() == b""


# ---- AUTH, protected mode, HELLO, RESET, SELECT ------------------------------------------

NOAUTH_HELLO = (b"NOAUTH HELLO must be called with the client already authenticated, otherwise "
                b"the HELLO AUTH <user> <pass> option can be used to authenticate the client and "
                b"select the RESP protocol version at the same time")


def test_requirepass_auth_and_error_texts(make_daemon):
    d = make_daemon("requirepass s3cret\n")
    c = d.raw()
    assert exchange(c, b"PING\r\n") == [("error", b"NOAUTH Authentication required.")]
    assert exchange(c, b"HELLO\r\n") == [("error", NOAUTH_HELLO)]
    assert exchange(c, b"AUTH nope\r\n") == [
        ("error", b"WRONGPASS invalid username-password pair or user is disabled.")]
    assert exchange(c, b"AUTH someone s3cret\r\n") == [
        ("error", b"WRONGPASS invalid username-password pair or user is disabled.")]
    # AUTH and commands pipelined behind it, in one packet.
    assert exchange(c, b"AUTH s3cret\r\nPING\r\nECHO x\r\n", 3) == [b"OK", b"PONG", b"x"]
    c2 = d.raw()
    assert exchange(c2, b"AUTH default s3cret\r\n") == [b"OK"]
    c3 = d.raw()
    assert exchange(c3, b"HELLO 2 AUTH default s3cret\r\n")[0][:4] == [b"server", b"redis",
                                                                        b"version", b"7.0.15"]
    # Unauthenticated clients may not send big requests.
    c4 = d.raw()
    c4.send(b"*20\r\n")
    assert c4.read_all() == b"-ERR Protocol error: unauthenticated multibulk length\r\n"
    c5 = d.raw()
    c5.send(b"*2\r\n$4\r\nAUTH\r\n$20000\r\n")
    assert c5.read_all() == b"-ERR Protocol error: unauthenticated bulk length\r\n"
    assert d.client(protocol=2, password="s3cret").ping()


def test_auth_without_a_password_configured(daemon):
    c = daemon.raw()
    assert exchange(c, b"AUTH x\r\n") == [
        ("error", b"ERR AUTH <password> called without any password configured for the default "
                  b"user. Are you sure your configuration is correct?")]
    assert exchange(c, b"AUTH a b c\r\n") == [("error", b"ERR syntax error")]


DENIED = (
    b"-DENIED Redis is running in protected mode because protected mode is enabled and no "
    b"password is set for the default user. In this mode connections are only accepted from the "
    b"loopback interface. If you want to connect from external computers to Redis you may adopt "
    b"one of the following solutions: 1) Just disable protected mode sending the command 'CONFIG "
    b"SET protected-mode no' from the loopback interface by connecting to Redis from the same "
    b"host the server is running, however MAKE SURE Redis is not publicly accessible from "
    b"internet if you do so. Use CONFIG REWRITE to make this change permanent. 2) Alternatively "
    b"you can just disable the protected mode by editing the Redis configuration file, and "
    b"setting the protected mode option to 'no', and then restarting the server. 3) If you "
    b"started the server manually just for testing, restart it with the '--protected-mode no' "
    b"option. 4) Setup a an authentication password for the default user. NOTE: You only need "
    b"to do one of the above things in order for the server to start accepting connections from "
    b"the outside.\r\n")


def connect_from(src, port):
    """A RawConn whose peer address is `src` (127.0.0.2 is not local for Redis)."""
    conn = RawConn.__new__(RawConn)
    conn.sock = socket.socket()
    conn.sock.settimeout(10)
    conn.sock.bind((src, 0))
    conn.sock.connect((src, port))
    conn.buf = b""
    return conn


def test_protected_mode_denies_other_loopback_addresses(make_daemon):
    d = make_daemon("bind 127.0.0.1 127.0.0.2\nenable-protected-configs yes\n")
    outsider = connect_from("127.0.0.2", d.port)
    assert outsider.read_all() == DENIED
    r = d.client(protocol=2)
    assert r.info("stats")["rejected_connections"] == 1
    assert r.config_set("protected-mode", "no")
    outsider = connect_from("127.0.0.2", d.port)
    assert exchange(outsider, b"PING\r\n") == [b"PONG"]
    # With a password, non-local clients may connect (and must AUTH).
    assert r.config_set("protected-mode", "yes") and r.config_set("requirepass", "pw")
    outsider = connect_from("127.0.0.2", d.port)
    assert exchange(outsider, b"PING\r\n") == [("error", b"NOAUTH Authentication required.")]


def test_hello_2_and_3(daemon):
    c = daemon.raw()
    [cid] = exchange(c, b"CLIENT ID\r\n")
    c.send(b"HELLO 2 SETNAME h2\r\n")
    assert c.read_reply() == [b"server", b"redis", b"version", b"7.0.15", b"proto", 2,
                              b"id", cid, b"mode", b"standalone", b"role", b"master",
                              b"modules", []]
    assert exchange(c, b"CLIENT GETNAME\r\n") == [b"h2"]
    c.send(b"HELLO 3\r\n")
    expect = (b"%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$6\r\n7.0.15\r\n"
              b"$5\r\nproto\r\n:3\r\n$2\r\nid\r\n:" + str(cid).encode() + b"\r\n"
              b"$4\r\nmode\r\n$10\r\nstandalone\r\n$4\r\nrole\r\n$6\r\nmaster\r\n"
              b"$7\r\nmodules\r\n*0\r\n")
    got = b""
    while len(got) < len(expect):
        got += c.sock.recv(4096)
    assert got == expect
    assert exchange(c, b"HELLO 4\r\n") == [("error", b"NOPROTO unsupported protocol version")]
    assert exchange(c, b"HELLO x\r\n") == [
        ("error", b"ERR Protocol version is not an integer or out of range")]
    assert exchange(c, b"HELLO 3 BOGUS\r\n") == [("error", b"ERR Syntax error in HELLO option 'BOGUS'")]


def test_select_and_reset(make_daemon):
    d = make_daemon("requirepass pw\n")
    c = d.raw()
    assert exchange(c, b"AUTH pw\r\nSELECT 15\r\n", 2) == [b"OK", b"OK"]
    assert exchange(c, b"SELECT 16\r\n") == [("error", b"ERR DB index is out of range")]
    assert exchange(c, b"SELECT x\r\n") == [("error", b"ERR value is not an integer or out of range")]
    assert b" db=15 " in exchange(c, b"CLIENT INFO\r\n")[0]
    assert exchange(c, b"CLIENT SETNAME n\r\nSUBSCRIBE ch\r\n", 2)[1] == [b"subscribe", b"ch", 1]
    assert exchange(c, b"RESET\r\n") == [b"RESET"]
    assert exchange(c, b"PING\r\n") == [("error", b"NOAUTH Authentication required.")]
    info = exchange(c, b"AUTH pw\r\nCLIENT INFO\r\n", 2)[1]
    assert b" name= " in info and b" db=0 " in info and b" flags=N " in info
    r = d.client(protocol=2, password="pw")
    assert r.publish("ch", "x") == 0


# ---- MONITOR, SLOWLOG --------------------------------------------------------------------

MONITOR_LINE = re.compile(rb"\d{10}\.\d{6} \[(\d+) 127\.0\.0\.1:\d+\] (.*)")


def test_monitor_shows_commands_in_redis_format_with_secrets_redacted(make_daemon):
    d = make_daemon("requirepass pw\n")
    mon = d.raw()
    assert exchange(mon, b"AUTH pw\r\nMONITOR\r\n", 2) == [b"OK", b"OK"]
    c = d.raw()
    c.send(b'AUTH pw\r\nSELECT 2\r\nECHO "a b\\n\\x01"\r\nCONFIG GET hz\r\n'
            b"HELLO 2 AUTH default pw\r\n")
    for _ in range(5):
        c.read_reply()
    lines = [MONITOR_LINE.fullmatch(mon.read_reply()) for _ in range(4)]
    assert all(lines), lines
    assert [(m.group(1), m.group(2)) for m in lines] == [
        (b"0", b'"AUTH" "(redacted)"'),
        (b"2", b'"SELECT" "2"'),     # fed after it ran, as Redis does
        (b"2", b'"ECHO" "a b\\n\\x01"'),
        # CONFIG is an admin command: not shown.
        (b"2", b'"HELLO" "2" "AUTH" "(redacted)" "(redacted)"'),
    ]


def test_slowlog(make_daemon):
    d = make_daemon("slowlog-log-slower-than 0\nslowlog-max-len 3\n")
    c = d.raw()
    [port] = [int(x) for x in re.findall(rb" addr=127\.0\.0\.1:(\d+)",
                                         exchange(c, b"CLIENT INFO\r\n")[0])]
    exchange(c, b"CLIENT SETNAME slow\r\nECHO hello\r\n", 2)
    [[entry]] = exchange(c, b"SLOWLOG GET 1\r\n")
    eid, ts, usec, args, addr, name = entry
    assert args == [b"ECHO", b"hello"]
    assert (addr, name) == (b"127.0.0.1:%d" % port, b"slow")
    assert abs(ts - time.time()) < 5 and usec >= 0
    assert exchange(c, b"SLOWLOG LEN\r\n") == [3]     # slowlog-max-len
    exchange(c, b"AUTH x\r\n")
    long_cmd = (b"*40\r\n$7\r\nCOMMAND\r\n$4\r\nINFO\r\n$200\r\n" + b"z" * 200 + b"\r\n" +
                b"$1\r\nx\r\n" * 37)
    exchange(c, long_cmd)
    [entries] = exchange(c, b"SLOWLOG GET -1\r\n")
    [long_args, auth_args] = [e[3] for e in entries[:2]]
    assert auth_args == [b"AUTH", b"(redacted)"]
    assert len(long_args) == 32 and long_args[-1] == b"... (9 more arguments)"
    assert long_args[2] == b"z" * 128 + b"... (72 more bytes)"
    assert exchange(c, b"SLOWLOG RESET\r\n") == [b"OK"]
    [entries] = exchange(c, b"SLOWLOG GET\r\n")
    assert [e[3] for e in entries] == [[b"SLOWLOG", b"RESET"]]
    assert exchange(c, b"SLOWLOG GET 1 2\r\n") == [
        ("error", b"ERR unknown subcommand or wrong number of arguments for 'GET'. Try SLOWLOG HELP.")]
    assert exchange(c, b"SLOWLOG GET -2\r\n") == [
        ("error", b"ERR count should be greater than or equal to -1")]


# ---- COMMAND and redis-cli -----------------------------------------------------------------

def test_command_count_info_docs(daemon):
    c = daemon.raw()
    [count] = exchange(c, b"COMMAND COUNT\r\n")
    [everything] = exchange(c, b"COMMAND\r\n")
    assert count == len(everything) > 20
    [[echo, missing]] = exchange(c, b"COMMAND INFO echo nosuchcmd\r\n")
    assert missing is None
    c.send(b"COMMAND INFO nosuchcmd\r\n")
    assert c.read_line() + c.read_line() == b"*1$-1"
    assert echo[:6] == [b"echo", 2, echo[2], 0, 0, 0] and b"fast" in echo[2]
    [[config]] = exchange(c, b"COMMAND INFO config\r\n")
    subs = {s[0] for s in config[9]}
    assert {b"config|get", b"config|set", b"config|rewrite", b"config|resetstat"} <= subs
    [docs] = exchange(c, b"COMMAND DOCS echo\r\n")
    assert docs[0] == b"echo"
    fields = dict(zip(docs[1][::2], docs[1][1::2]))
    assert fields[b"summary"] == b"Echo the given string" and fields[b"group"] == b"connection"


def test_redis_cli_with_arguments_and_interactively(daemon):
    cli = require_tool("redis-cli")
    port = str(daemon.port)
    run = lambda *a: subprocess.run([cli, "-p", port] + list(a), capture_output=True, text=True,
                                    timeout=10)
    assert run("ping").stdout == "PONG\n"
    assert run("client", "setname", "x").stdout == "OK\n"
    assert run("config", "get", "port").stdout == "port\n%s\n" % port
    assert run("info", "server").stdout.startswith("# Server\nsaker_version:")
    assert run("nosuchcmd").stdout.startswith("ERR unknown command 'nosuchcmd'")
    # Interactive: redis-cli fetches COMMAND DOCS for its hints at start.
    pid, fd = pty.fork()
    if pid == 0:
        # TERM=dumb: linenoise reads plain lines instead of querying the cursor.
        os.execve(cli, [cli, "-p", port], dict(os.environ, TERM="dumb"))
    try:
        out = b""
        os.write(fd, b"ping\r")
        deadline = time.monotonic() + 30   # a ceiling for a loaded machine
        while b"PONG" not in out:
            assert time.monotonic() < deadline, out
            if select.select([fd], [], [], 0.5)[0]:
                out += os.read(fd, 4096)
        os.write(fd, b"client id\r")
        while b"(integer)" not in out:
            assert time.monotonic() < deadline, out
            if select.select([fd], [], [], 0.5)[0]:
                out += os.read(fd, 4096)
        os.write(fd, b"quit\r")
        assert os.waitpid(pid, 0)[1] == 0
    finally:
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        os.close(fd)


# ---- SHUTDOWN -------------------------------------------------------------------------------

@pytest.mark.parametrize("args", [b"", b" NOSAVE"])
def test_shutdown_closes_the_connection_and_exits_0(make_daemon, tmp_path, args):
    pidfile = tmp_path / "x.pid"
    d = make_daemon("pidfile %s\n" % pidfile)
    c = d.raw()
    assert exchange(c, b"SHUTDOWN BOGUS\r\n") == [("error", b"ERR syntax error")]
    assert exchange(c, b"SHUTDOWN ABORT\r\n") == [("error", b"ERR No shutdown in progress.")]
    c.send(b"SHUTDOWN" + args + b"\r\n")
    assert c.read_all() == b""
    assert d.proc.wait(60) == 0
    assert not pidfile.exists()


# ---- INFO --------------------------------------------------------------------------------------

REQUIRED_FIELDS = {
    "Server": ["saker_version", "redis_version", "process_id", "run_id", "tcp_port",
               "uptime_in_seconds", "uptime_in_days", "hz", "configured_hz", "multiplexing_api",
               "executable", "config_file", "lua_version", "python_version", "os", "arch_bits"],
    "Clients": ["connected_clients", "maxclients", "client_recent_max_input_buffer",
                "client_recent_max_output_buffer", "blocked_clients", "pubsub_clients"],
    "Memory": ["used_memory", "used_memory_human", "used_memory_rss", "used_memory_peak",
               "used_memory_lua", "used_memory_lua_human", "mem_allocator"],
    "Stats": ["total_connections_received", "total_commands_processed",
              "instantaneous_ops_per_sec", "total_net_input_bytes", "total_net_output_bytes",
              "instantaneous_input_kbps", "instantaneous_output_kbps", "rejected_connections",
              "expired_keys", "keyspace_hits", "keyspace_misses", "pubsub_channels",
              "pubsub_patterns", "total_error_replies", "client_output_buffer_limit_disconnections",
              "accept_eagain"],
    "CPU": ["used_cpu_sys", "used_cpu_user", "used_cpu_sys_children", "used_cpu_user_children"],
}


def parse_info(text):
    """{section title: {field: value}}, checking the layout on the way."""
    assert text.endswith(b"\r\n")
    sections = {}
    for block in text.decode().split("\r\n\r\n"):
        lines = block.rstrip("\r\n").split("\r\n")
        assert lines[0].startswith("# "), block
        fields = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            assert sep and name and " " not in name, line
            fields[name] = value
        sections[lines[0][2:]] = fields
    return sections


def test_info_sections(daemon):
    c = daemon.raw()
    exchange(c, b"ECHO x\r\nNOSUCH\r\nSET k v\r\n", 3)
    default = parse_info(exchange(c, b"INFO\r\n")[0])
    assert "Commandstats" not in default
    for title, fields in REQUIRED_FIELDS.items():
        assert set(fields) <= set(default[title]), title
    assert {"Server", "Clients", "Memory", "Stats", "CPU", "Keyspace", "Errorstats"} <= set(default)
    assert default["Server"]["tcp_port"] == str(daemon.port)
    assert default["Server"]["process_id"] == str(daemon.pid)
    # k, and saker:log (log-stream: the start-up lines are in it).
    assert default["Keyspace"] == {"db0": "keys=2,expires=0,avg_ttl=0"}
    assert default["Errorstats"] == {"errorstat_ERR": "count=1"}
    for arg in (b"all", b"everything", b"ALL"):
        full = parse_info(exchange(c, b"INFO " + arg + b"\r\n")[0])
        assert set(default) < set(full)
        assert re.fullmatch(r"calls=1,usec=\d+,usec_per_call=\d+\.\d\d,rejected_calls=0,"
                            r"failed_calls=0", full["Commandstats"]["cmdstat_echo"])
    two = parse_info(exchange(c, b"INFO cpu SERVER\r\n")[0])
    assert list(two) == ["Server", "CPU"]
    more = parse_info(exchange(c, b"INFO default commandstats\r\n")[0])
    assert set(more) == set(default) | {"Commandstats"}
    assert exchange(c, b"INFO nosuchsection\r\n") == [b""]
    assert exchange(c, b"INFO commandstats\r\n")[0].startswith(b"# Commandstats\r\ncmdstat_")


# ---- listeners ---------------------------------------------------------------------------------

def test_listens_on_ipv4_ipv6_and_a_unix_socket(make_daemon, tmp_path):
    path = str(tmp_path / "saker.sock")
    d = make_daemon("bind 127.0.0.1 ::1 -192.0.2.1\nunixsocket %s\nunixsocketperm 770\n"
                    "user default on nopass ~* &* +@all -@exec\n" % path)
    # The optional address that cannot be bound is a warning, not a failure.
    assert "Could not create server TCP listening socket 192.0.2.1:%d" % d.port in d.log()
    six = socket.create_connection(("::1", d.port), timeout=10)
    six.sendall(b"CLIENT INFO\r\n")
    data = six.recv(4096)
    assert b" addr=[::1]:" in data and b" laddr=[::1]:%d " % d.port in data
    six.close()
    assert os.stat(path).st_mode & 0o777 == 0o770
    unix = socket.socket(socket.AF_UNIX)
    unix.settimeout(10)
    unix.connect(path)
    unix.sendall(b"CLIENT INFO\r\n")
    data = unix.recv(4096)
    # Redis 7.0 names both ends of a unix connection "/unixsocket".
    assert b" addr=/unixsocket:0 laddr=/unixsocket:0 " in data and b" flags=U " in data
    unix.close()
    assert d.stop() == 0
    assert not os.path.exists(path)


def test_an_address_that_cannot_be_bound_refuses_to_start(make_daemon):
    # (A default user without @exec: sakerd refuses an open one off loopback.)
    d = make_daemon("bind 127.0.0.1 192.0.2.1\nuser default on nopass ~* &* +@all -@exec\n",
                    wait=False)
    assert d.proc.wait(60) == 1
    assert "Could not create server TCP listening socket 192.0.2.1:%d" % d.port in d.output()


def test_writable_handler_only_while_the_socket_is_full(daemon):
    admin = daemon.client(protocol=2)
    slow = daemon.raw()
    [slow_id] = exchange(slow, b"CLIENT ID\r\n")
    payload = b"x" * 100000
    reply = b"$100000\r\n" + payload + b"\r\n"
    # 20 MB of replies, more than the kernel buffers hold; not read yet.
    slow.send((b"*2\r\n$4\r\nECHO\r\n$100000\r\n" + payload + b"\r\n") * 200)

    def slow_client():
        return next(c for c in admin.client_list() if c["id"] == str(slow_id))
    wait_for(lambda: slow_client()["events"] == "rw", what="the writable handler")
    got = bytearray()
    while len(got) < 200 * len(reply):
        got += slow.sock.recv(1 << 20)
    assert got == reply * 200
    # Drained: the handler is gone and nothing is queued.
    wait_for(lambda: slow_client()["events"] == "r" and slow_client()["omem"] == "0",
             what="the handler removed")
