"""Configuration (SPEC §3, §4): the file syntax, the command line, CONFIG GET/SET/REWRITE/RESETSTAT.

Parsing properties run on sakerd.config directly; everything an operator
sees (exit codes, messages, CONFIG replies) runs the real daemon.
"""

import os
import re
import subprocess
import sys
import time

import pytest
from hypothesis import given, settings, strategies as st

from helpers import sakerd_env, ROOT, RawConn, free_port
from sakerd import __version__, config as configmod

EXAMPLE_CONF = os.path.join(ROOT, "conf", "saker.conf")


def sakerd(*args, cwd=None, timeout=20):
    """Run `python -m sakerd args...`; returns the CompletedProcess."""
    env = sakerd_env()
    return subprocess.run([sys.executable, "-m", "sakerd"] + list(args), cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def load_text(tmp_path, text, name="saker.conf"):
    path = tmp_path / name
    path.write_text(text)
    return configmod.load_server_config(str(path), [])


# ---- the file syntax ------------------------------------------------------------

def test_example_config_documents_and_sets_every_directive():
    config, errors = configmod.load_server_config(EXAMPLE_CONF, [])
    assert errors == []
    text = open(EXAMPLE_CONF).read()
    for d in configmod.DIRECTIVES:
        # Each directive appears as a line of its own, active or commented out.
        assert re.search(r"^#? ?%s( |$)" % re.escape(d.name), text, re.M), d.name
    # The quick-start values.
    assert config.port == 7379 and config.bind == ["127.0.0.1"]
    assert config.logfile == "" and config.scripts_dir == "../scripts"
    # ...which is the repository's plugins directory.
    assert os.path.samefile(config.resolve_path(config.scripts_dir), os.path.join(ROOT, "scripts"))


def test_example_config_passes_test_config():
    r = sakerd("--test-config", "-c", EXAMPLE_CONF)
    assert (r.returncode, r.stdout) == (0, "configuration OK\n"), r.stderr


NON_DEFAULT = [
    ("bind 127.0.0.1 ::1", "bind", ["127.0.0.1", "::1"]),
    ("port 7400", "port", 7400),
    ("unixsocket /tmp/s.sock", "unixsocket", "/tmp/s.sock"),
    ("unixsocketperm 770", "unixsocketperm", 0o770),
    ("tcp-backlog 128", "tcp_backlog", 128),
    ("timeout 30", "timeout", 30),
    ("tcp-keepalive 60", "tcp_keepalive", 60),
    ("maxclients 50", "maxclients", 50),
    ("daemonize YES", "daemonize", True),
    ("supervised systemd", "supervised", "systemd"),
    ("pidfile /tmp/x.pid", "pidfile", "/tmp/x.pid"),
    ('logfile "/tmp/my log.txt"', "logfile", "/tmp/my log.txt"),
    ("loglevel debug", "loglevel", "debug"),
    ('log-channel ""', "log_channel", ""),
    ("event-channel ev", "event_channel", "ev"),
    ("hz 100", "hz", 100),
    ("databases 4", "databases", 4),
    ("requirepass 'p w\\'d'", "requirepass", "p w'd"),
    ("protected-mode no", "protected_mode", False),
    ("client-output-buffer-limit pubsub 1mb 512kb 5", "client_output_buffer_limit",
     [(0, 0, 0), (256 << 20, 64 << 20, 60), (1 << 20, 512 << 10, 5), (0, 0, 0)]),
    ("client-query-buffer-limit 32mb", "client_query_buffer_limit", 32 << 20),
    ("proto-max-bulk-len 1G", "proto_max_bulk_len", 10 ** 9),
    ("ae-backend select", "ae_backend", "select"),
    ("lua-version 5.1", "lua_version", "5.1"),
    ("lua-path /opt/lua", "lua_path", "/opt/lua"),
    ("lua-cpath /opt/lua/?.so", "lua_cpath", "/opt/lua/?.so"),
    ("scripts-dir plugins", "scripts_dir", "plugins"),
    ("lua-time-limit 100", "lua_time_limit", 100),
    ("lua-task-timeout 200", "lua_task_timeout", 200),
    ("lua-max-memory 64mb", "lua_max_memory", 64 << 20),
    ("enable-exec no", "enable_exec", False),
    ("slowlog-log-slower-than -1", "slowlog_log_slower_than", -1),
    ("slowlog-max-len 5", "slowlog_max_len", 5),
    ("tracking-table-max-keys 10", "tracking_table_max_keys", 10),
    ("lua-debug-checks yes", "lua_debug_checks", True),
    ("aclfile /etc/sakerd/users.acl", "aclfile", "/etc/sakerd/users.acl"),
    ("acllog-max-len 5", "acllog_max_len", 5),
    ("acl-pubsub-default allchannels", "acl_pubsub_default", "allchannels"),
    ("enable-protected-configs local", "enable_protected_configs", "local"),
    ("auth-timeout 3", "auth_timeout", 3),
    ("auth-lock-after 0", "auth_lock_after", 0),
    ("stream-node-max-bytes 1kb", "stream_node_max_bytes", 1024),
    ("stream-node-max-entries 0", "stream_node_max_entries", 0),
    ('log-stream "host:log"', "log_stream", "host:log"),
    ("log-stream-maxlen 0", "log_stream_maxlen", 0),
    ('event-stream ""', "event_stream", ""),
    ("event-stream-maxlen 500", "event_stream_maxlen", 500),
    ("proc-output-maxlen 50", "proc_output_maxlen", 50),
    ("functions-file fns.dump", "functions_file", "fns.dump"),
    ("hash-max-listpack-entries 64", "hash_max_listpack_entries", 64),
    ("hash-max-ziplist-entries 64", "hash_max_listpack_entries", 64),
    ("hash-max-listpack-value 1kb", "hash_max_listpack_value", 1024),
    ("hash-max-ziplist-value 1kb", "hash_max_listpack_value", 1024),
    ("set-max-intset-entries 16", "set_max_intset_entries", 16),
    ("hll-sparse-max-bytes 1kb", "hll_sparse_max_bytes", 1024),
    ("zset-max-listpack-entries 0", "zset_max_listpack_entries", 0),
    ("zset-max-ziplist-entries 0", "zset_max_listpack_entries", 0),
    ("zset-max-listpack-value 10", "zset_max_listpack_value", 10),
    ("zset-max-ziplist-value 10", "zset_max_listpack_value", 10),
    ("list-max-listpack-size 128", "list_max_listpack_size", 128),
    ("list-max-ziplist-size 128", "list_max_listpack_size", 128),
    ("latency-monitor-threshold 100", "latency_monitor_threshold", 100),
    # The only values sakerd accepts: it has no persistence.
    ('save ""', "save", ""),
    ("appendonly no", "appendonly", False),
    ("lua-pattern-max-steps 1000", "lua_pattern_max_steps", 1000),
    ("lua-env-allow PATH MY_SITE", "lua_env_allow", ["PATH", "MY_SITE"]),
    ("metrics-port 9121", "metrics_port", 9121),
    ("metrics-bind ::1", "metrics_bind", "::1"),
    ("fleet-redis redis://a:1 redis://b:2", "fleet_redis", ["redis://a:1", "redis://b:2"]),
    ("fleet-name web01", "fleet_name", "web01"),
    ("fleet-tags role=web dc=ams", "fleet_tags", ["role=web", "dc=ams"]),
    ("fleet-heartbeat-ms 500", "fleet_heartbeat_ms", 500),
    ("fleet-acl-user ops", "fleet_acl_user", "ops"),
    ("fleet-require-signature @exec @WRITE", "fleet_require_signature", ["@exec", "@write"]),
    ("fleet-trusted-keys /etc/sakerd/keys", "fleet_trusted_keys", "/etc/sakerd/keys"),
    ("fleet-spool-max 1mb", "fleet_spool_max", 1 << 20),
    ("fleet-dir /var/lib/x", "fleet_dir", "/var/lib/x"),
    ("fleet-tls-ca-cert ca.crt", "fleet_tls_ca_cert", "ca.crt"),
    ("fleet-tls-cert c.crt", "fleet_tls_cert", "c.crt"),
    ("fleet-tls-key c.key", "fleet_tls_key", "c.key"),
    ('notify-keyspace-events "Kx$"', "notify_keyspace_events", 1 | 8 | 256),
]


def test_every_directive_accepts_a_value(tmp_path):
    assert {line.split()[0] for line, _, _ in NON_DEFAULT} == set(configmod.BY_NAME)
    config, errors = load_text(tmp_path, "\n".join(line for line, _, _ in NON_DEFAULT) + "\n")
    assert errors == []
    for line, attr, want in NON_DEFAULT:
        assert getattr(config, attr) == want, line


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 10 ** 6), st.sampled_from(sorted(configmod.MEMORY_UNITS)),
       st.sampled_from([str.lower, str.upper]))
def test_sizes_with_units(n, unit, case):
    assert configmod.parse_memory(case("%d%s" % (n, unit))) == n * configmod.MEMORY_UNITS[unit]


@pytest.mark.parametrize("bad", ["", "mb", "-1", "1.5mb", "1tb", "1 mb", "--5", "1_000"])
def test_bad_sizes_are_refused(bad):
    with pytest.raises(ValueError, match="argument must be a memory value"):
        configmod.parse_memory(bad)


@pytest.mark.parametrize("bad", ["1_000", "+5", " 5", "0x10", "5.0", ""])
def test_integers_are_parsed_as_strictly_as_redis(tmp_path, bad):
    config, errors = load_text(tmp_path, 'timeout "%s"\n' % bad)
    assert len(errors) == 1 and "argument couldn't be parsed into an integer" in errors[0]


def test_include_is_relative_to_the_including_file_and_later_lines_win(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "common.conf").write_text("timeout 7\nhz 20\n")
    config, errors = load_text(tmp_path, "include sub/common.conf\nhz 30\n")
    assert errors == []
    assert (config.timeout, config.hz) == (7, 30)


def test_errors_in_an_included_file_name_that_file(tmp_path):
    (tmp_path / "inc.conf").write_text("# comment\nhz nope\n")
    config, errors = load_text(tmp_path, "include inc.conf\n")
    assert errors == ["%s:2: 'hz nope' argument couldn't be parsed into an integer" %
                      (tmp_path / "inc.conf")]


# ---- refusing to start ---------------------------------------------------------------

BAD_LINES = [
    ("no-such-directive 1", "Bad directive or wrong number of arguments"),
    ("port 70000", "argument must be between 0 and 65535 inclusive"),
    ("port abc", "argument couldn't be parsed into an integer"),
    ("daemonize maybe", "argument must be 'yes' or 'no'"),
    ("loglevel loud", "argument(s) must be one of the following: debug, verbose, notice, warning"),
    ("client-query-buffer-limit 12zb", "argument must be a memory value"),
    ('logfile "unterminated', "unbalanced quotes in configuration line"),
    ("port 1 2", "wrong number of arguments"),
    ("client-output-buffer-limit pubsub 1mb", "Wrong number of arguments in buffer limit"),
]


@pytest.mark.parametrize("line, reason", BAD_LINES, ids=[b[0].split()[0] + str(i) for i, b in
                                                         enumerate(BAD_LINES)])
def test_bad_line_refuses_to_start_naming_file_line_and_reason(tmp_path, line, reason):
    conf = tmp_path / "bad.conf"
    conf.write_text("# sakerd\nport 0\n%s\n" % line)
    r = sakerd("-c", str(conf))
    assert r.returncode == 1
    assert "%s:3:" % conf in r.stderr and reason in r.stderr, r.stderr


def test_missing_config_file_refuses_to_start(tmp_path):
    r = sakerd("-c", str(tmp_path / "nope.conf"))
    assert r.returncode == 1
    assert "nope.conf" in r.stderr and "No such file or directory" in r.stderr


def test_test_config_lists_every_problem_with_file_and_line(tmp_path):
    conf = tmp_path / "bad.conf"
    conf.write_text("port abc\n# fine\nhz 10\nbogus yes\nprotected-mode perhaps\n"
                    "pidfile /nonexistent-dir/x.pid\n")
    r = sakerd("--test-config", "-c", str(conf))
    assert r.returncode == 1
    lines = r.stderr.splitlines()
    for lineno, reason in ((1, "couldn't be parsed into an integer"),
                           (4, "Bad directive"), (5, "argument must be 'yes' or 'no'"),
                           (6, "/nonexistent-dir does not exist")):
        assert any(l.startswith("%s:%d: " % (conf, lineno)) and reason in l for l in lines), \
            (lineno, r.stderr)
    assert "configuration OK" not in r.stdout


def test_test_config_binds_nothing_and_writes_no_pidfile(tmp_path, make_daemon):
    running = make_daemon()
    conf = tmp_path / "ok.conf"
    # The port is taken by a running daemon: --test-config must not care.
    conf.write_text("port %d\npidfile %s\n" % (running.port, tmp_path / "t.pid"))
    r = sakerd("--test-config", "-c", str(conf))
    assert (r.returncode, r.stdout) == (0, "configuration OK\n"), r.stderr
    assert not (tmp_path / "t.pid").exists()
    assert running.client(protocol=2).ping()


def test_version():
    r = sakerd("--version")
    assert r.returncode == 0
    assert r.stdout.startswith("sakerd v=%s " % __version__)


def test_command_line_overrides_the_file(make_daemon):
    port = free_port()
    d = make_daemon("hz 20\nloglevel warning\n", args=["--port", str(port), "--loglevel", "debug",
                                                        "--hz", "15"], port=port)
    r = d.client(protocol=2)
    assert r.config_get("port") == {"port": str(port)}
    assert r.config_get("loglevel") == {"loglevel": "debug"}
    assert r.config_get("hz") == {"hz": "15"}
    assert "[DEBUG]" in d.log()


def test_config_file_may_be_given_without_dash_c(tmp_path):
    conf = tmp_path / "x.conf"
    conf.write_text("port 1\n")
    r = sakerd("--test-config", str(conf))
    assert r.returncode == 0 and r.stdout == "configuration OK\n"


# ---- CONFIG GET / SET / REWRITE / RESETSTAT ---------------------------------------------

def test_config_get_glob_and_several_patterns(daemon):
    r = daemon.client(protocol=2)
    assert r.config_get("maxclients") == {"maxclients": "10000"}
    got = r.config_get("lua-*")
    assert set(got) == {"lua-version", "lua-path", "lua-cpath", "lua-time-limit",
                        "lua-task-timeout", "lua-max-memory", "lua-debug-checks",
                        "lua-pattern-max-steps", "lua-env-allow"}
    assert got["lua-max-memory"] == str(256 << 20)
    c = daemon.raw()
    c.send(b"CONFIG GET hz databases\r\n")
    assert c.read_reply() == [b"hz", b"10", b"databases", b"16"]
    c.send(b"CONFIG GET nothing-matches-*\r\n")
    assert c.read_reply() == []
    # A plain name is answered as spelt; a secret is never shown, however spelt.
    c.send(b"CONFIG SET requirepass pw\r\nAUTH pw\r\nCONFIG GET REQUIREPASS MaxClients\r\n")
    assert [c.read_reply() for _ in range(3)] == [
        b"OK", b"OK", [b"REQUIREPASS", b"(redacted)", b"MaxClients", b"10000"]]
    c.send(b"CONFIG GET client-output-buffer-limit\r\n")
    assert c.read_reply() == [b"client-output-buffer-limit",
                              b"normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60"]


def test_config_set_takes_effect_live(daemon):
    r = daemon.client(protocol=2)
    assert r.config_set("slowlog-log-slower-than", "0") is True
    r.echo("x")
    assert any(e["command"] == b"ECHO x" for e in r.slowlog_get(5))
    assert r.config_set("loglevel", "debug") is True
    assert r.config_get("loglevel") == {"loglevel": "debug"}
    assert r.config_set("maxclients", "2") is True
    c = daemon.raw()
    c.send(b"PING\r\n")
    assert c.read_line() == b"+PONG"
    third = daemon.raw()
    assert third.read_all() == b"-ERR max number of clients reached\r\n"


def test_config_set_errors_have_redis_texts(daemon):
    c = daemon.raw()
    for cmd, err in [
        (b"CONFIG SET port 1234", b"-ERR CONFIG SET failed (possibly related to argument 'port') "
                                  b"- can't set immutable config"),
        (b"CONFIG SET nosuch 1", b"-ERR Unknown option or number of arguments for CONFIG SET - "
                                 b"'nosuch'"),
        (b"CONFIG SET hz abc", b"-ERR CONFIG SET failed (possibly related to argument 'hz') - "
                               b"argument couldn't be parsed into an integer"),
        (b"CONFIG SET hz 5 hz 6", b"-ERR CONFIG SET failed (possibly related to argument 'hz') - "
                                  b"duplicate parameter"),
        (b"CONFIG SET hz", b"-ERR wrong number of arguments for 'config|set' command"),
        (b"CONFIG SET hz 5 timeout", b"-ERR syntax error"),
    ]:
        c.send(cmd + b"\r\n")
        assert c.read_line() == err


def test_hz_is_clamped_to_1_500_as_in_redis(daemon):
    r = daemon.client(protocol=2)
    assert r.config_set("hz", "1000") and r.config_get("hz") == {"hz": "500"}
    assert r.config_set("hz", "0") and r.config_get("hz") == {"hz": "1"}
    assert r.info("server")["hz"] == 1


def test_config_set_of_several_is_atomic(daemon):
    r = daemon.client(protocol=2)
    c = daemon.raw()
    c.send(b"CONFIG SET timeout 50 hz 20 slowlog-max-len bad\r\n")
    assert c.read_line().startswith(b"-ERR CONFIG SET failed (possibly related to argument "
                                    b"'slowlog-max-len')")
    assert r.config_get("timeout")["timeout"] == "0"
    assert r.config_get("hz")["hz"] == "10"
    c.send(b"CONFIG SET timeout 50 hz 20\r\n")
    assert c.read_line() == b"+OK"
    assert r.config_get("timeout")["timeout"] == "50"
    assert r.config_get("hz")["hz"] == "20"


def test_config_rewrite_keeps_comments_and_reloads_the_same(make_daemon):
    d = make_daemon("# my precious comment\ntimeout 0\n\n# another one\nhz 10\n")
    r = d.client(protocol=2)
    r.config_set("timeout", "42")
    r.config_set("slowlog-max-len", "7")
    r.config_set("client-output-buffer-limit", "pubsub 1mb 1mb 1")
    r.config_set("requirepass", 'se cr"et')
    r.execute_command("AUTH", 'se cr"et')
    before = r.config_get("*")
    assert r.config_rewrite() in (True, b"OK")
    text = open(d.conf).read()
    assert "# my precious comment\ntimeout 42\n\n# another one\nhz 10\n" in text
    assert "slowlog-max-len 7" in text
    config, errors = configmod.load_server_config(d.conf, [])
    assert errors == []
    assert config.requirepass == 'se cr"et'
    for name, value in configmod.config_get(config, ["*"]):
        if name in before and name != "requirepass":
            assert before[name] == value, name
    r2 = sakerd("--test-config", "-c", d.conf)
    assert (r2.returncode, r2.stdout) == (0, "configuration OK\n"), r2.stderr


def test_config_rewrite_without_a_file_is_an_error(tmp_path):
    # Started with no file at all: the embedded defaults, plus an override.
    port = free_port()
    env = sakerd_env()
    proc = subprocess.Popen([sys.executable, "-m", "sakerd", "--port", str(port), "--unixsocket",
                             "", "--user", "default", "on", "nopass", "~*", "&*", "+@all"],
                            cwd=str(tmp_path), env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60   # a ceiling for a loaded machine
        while True:
            try:
                conn = RawConn(("127.0.0.1", port))
                break
            except OSError:
                assert time.monotonic() < deadline, "sakerd did not start"
                time.sleep(0.05)
        conn.send(b"CONFIG REWRITE\r\nCONFIG GET bind\r\n")
        assert conn.read_reply() == ("error", b"ERR The server is running without a config file")
        assert conn.read_reply() == [b"bind", b"127.0.0.1"]
        conn.close()
    finally:
        proc.terminate()
        assert proc.wait(60) == 0


def test_config_resetstat_zeroes_the_counters(daemon):
    r = daemon.client(protocol=2)
    r.config_set("slowlog-log-slower-than", "0")
    for _ in range(3):
        r.echo("x")
    c = daemon.raw()
    c.send(b"NOSUCHCMD\r\n")
    c.read_line()
    assert r.info("stats")["total_commands_processed"] > 3
    assert r.config_resetstat() is True
    stats = r.info("stats")
    # As in Redis, the RESETSTAT itself is counted once it has run.
    assert stats["total_commands_processed"] == 1
    assert stats["total_error_replies"] == 0
    assert stats["total_connections_received"] == 0
    assert sorted(r.info("commandstats")) == ["cmdstat_config|resetstat", "cmdstat_info"]
    assert r.info("errorstats") == {}
    # The slow log is not a statistic: SLOWLOG RESET clears it, not RESETSTAT.
    assert any(e["command"] == b"ECHO x" for e in r.slowlog_get(-1))


def test_a_log_file_that_cannot_be_opened_refuses_to_start(tmp_path):
    conf = tmp_path / "log.conf"
    conf.write_text("port 0\n\nlogfile %s\n" % (tmp_path / "missing-dir" / "x.log"))
    r = sakerd("-c", str(conf))
    assert r.returncode == 1
    assert "%s:3: Can't open the log file %s: No such file or directory" % (
        conf, tmp_path / "missing-dir" / "x.log") in r.stderr, r.stderr
