"""Fleet mode: agents steered through a real central redis-server (issue 17, SPEC §12).

Every agent is a real sakerd subprocess whose link talks to a real
redis-server on loopback; the operator's side is plain redis-py on the
central Redis (the commands README gives for redis-cli), or `sakerd fleet`.
A job's results are read from `fleet:{j:<jid>}:ret` exactly as an operator
would. Agents process jobs in stream order, so once every host answered a
later job, a host that did not answer an earlier one was not targeted.
"""

import base64
import json
import os
import subprocess
import sys
import time

import pytest
import redis
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from helpers import sakerd_env, Daemon, free_port, require_tool, start_redis_server, wait_for

JOBS = "fleet:{ctl}:jobs"
SEEN = "fleet:{ctl}:seen"
FINAL = ("ok", "err", "expired", "interrupted")
HOSTS = {"web-1": "role=web dc=ams", "web-2": "role=web dc=ams", "web-3": "role=web dc=fra",
         "db-1": "role=db dc=ams", "db-2": "role=db dc=fra"}


def agent_config(port, name, tags="", keys=None, extra="", url=None):
    text = ("fleet-redis %s\nfleet-name %s\nfleet-heartbeat-ms 300\nfleet-dir fleet\n" %
            (url or "redis://127.0.0.1:%d/0" % port, name))
    if tags:
        text += "fleet-tags %s\n" % tags
    if keys:
        text += "fleet-trusted-keys %s\n" % keys
    return text + extra


def public_line(key):
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode() + " operator\n"


def signature(key, jid, target, cmd, expires):
    """README's signed message: a fixed line, then each field as len:bytes\\n."""
    msg = b"sakerd fleet job v1\n" + b"".join(
        b"%d:%s\n" % (len(f), f) for f in (jid.encode(), target.encode(), cmd.encode(),
                                           expires.encode()))
    return base64.b64encode(key.sign(msg)).decode()


def add_job(r, jid, target, argv, expires=None, key=None, sign_target=None):
    """XADD a job as an operator with redis-cli would; the entry id."""
    cmd = json.dumps(argv)
    expires = str(int(time.time() + 60) if expires is None else int(expires))
    fields = {"jid": jid, "target": target, "cmd": cmd, "expires": expires}
    if key is not None:
        fields["sig"] = signature(key, jid, sign_target or target, cmd, expires)
    return r.xadd(JOBS, fields)


def results(r, jid):
    """{host: [(state, reply)]} in stream order."""
    out = {}
    for _, f in r.xrange("fleet:{j:%s}:ret" % jid):
        out.setdefault(f[b"host"].decode(), []).append(
            (f[b"state"].decode(), json.loads(f[b"reply"])))
    return out


def wait_results(r, jid, hosts, timeout=30):
    def done():
        got = results(r, jid)
        return got if all(h in got and got[h][-1][0] in FINAL for h in hosts) else None
    return wait_for(done, timeout, "final results of %s from %s" % (jid, sorted(hosts)))


def info_fleet(d):
    return d.client(decode_responses=True).info("fleet")


def link_state(d):
    """fleet_link, or None while the daemon answers -BUSY."""
    try:
        return info_fleet(d).get("fleet_link")
    except redis.exceptions.BusyLoadingError:
        return None
    except redis.exceptions.ResponseError as e:
        assert str(e).startswith("BUSY"), e
        return None


def wait_linked(d, timeout=30):
    wait_for(lambda: info_fleet(d).get("fleet_link") == "up", timeout, "the fleet link")


def start_agents(base, port, names, keys=None, extra=""):
    agents = {}
    for name in names:
        d = os.path.join(str(base), name)
        os.makedirs(d, exist_ok=True)
        agents[name] = Daemon(d, agent_config(port, name, HOSTS.get(name, ""), keys, extra),
                              wait=False)
    for a in agents.values():
        a.wait_ready()
    return agents


@pytest.fixture(scope="module")
def signer():
    return Ed25519PrivateKey.generate()


@pytest.fixture(scope="module")
def fleet5(tmp_path_factory, signer):
    """One central redis-server and five agents: (central client, agents)."""
    base = tmp_path_factory.mktemp("fleet5")
    keys = base / "trusted-keys"
    keys.write_text("# who may sign jobs\n" + public_line(signer))
    proc, port = start_redis_server()
    agents = start_agents(base, port, HOSTS, keys=keys)
    r = redis.Redis(port=port)
    try:
        wait_for(lambda: r.zcard(SEEN) == 5, 30, "five agents seen")
        yield r, agents
    finally:
        for a in agents.values():
            a.stop()
        proc.terminate()
        proc.wait(10)


def test_presence_alive_info_and_seen(fleet5):
    r, agents = fleet5
    assert sorted(m.decode() for m in r.zrange(SEEN, 0, -1)) == sorted(HOSTS)
    now = time.time()
    for name, tags in HOSTS.items():
        alive = json.loads(r.get("fleet:{h:%s}:alive" % name))
        assert alive["tags"] == tags and alive["version"]
        # TTL: three heartbeats of 300 ms.
        assert 0 < r.pttl("fleet:{h:%s}:alive" % name) <= 900
        info = r.hgetall("fleet:{h:%s}:info" % name)
        assert info[b"tags"] == tags.encode()
        assert int(info[b"pid"]) == agents[name].pid
        assert abs(r.zscore(SEEN, name) - now) < 10


def test_glob_target_runs_on_matching_hosts_only(fleet5):
    r, _ = fleet5
    add_job(r, "glob1", "web-*", ["ping"])
    add_job(r, "glob1-all", "*", ["echo", "hi"])
    everyone = wait_results(r, "glob1-all", HOSTS)
    assert everyone == {h: [("ack", None), ("ok", "hi")] for h in HOSTS}
    assert results(r, "glob1") == {h: [("ack", None), ("ok", "PONG")]
                                   for h in ("web-1", "web-2", "web-3")}
    assert r.ttl("fleet:{j:glob1}:ret") > 86000


@pytest.mark.parametrize("target, hosts", [
    ("role=db and dc=fra", {"db-2"}),
    ("(web-1 or db-1) and not dc=fra", {"web-1", "db-1"}),
    ("role=web and not web-2", {"web-1", "web-3"}),
    ("dc=a*", {"web-1", "web-2", "db-1"}),
])
def test_tag_targets(fleet5, target, hosts):
    r, _ = fleet5
    jid = "tag-%d" % abs(hash(target))
    add_job(r, jid, target, ["ping"])
    add_job(r, jid + "-all", "*", ["ping"])
    wait_results(r, jid + "-all", HOSTS)
    assert set(results(r, jid)) == hosts


def test_jobs_run_as_the_read_only_fleet_user(fleet5):
    r, agents = fleet5
    agents["web-1"].client().set("k", "local value")
    add_job(r, "ro1", "web-1", ["get", "k"])
    add_job(r, "ro2", "web-1", ["set", "k", "other"])
    add_job(r, "ro3", "web-1", ["mget", "k", "nokey"])
    assert wait_results(r, "ro1", ["web-1"]) == {"web-1": [("ack", None), ("ok", "local value")]}
    assert wait_results(r, "ro2", ["web-1"]) == {"web-1": [
        ("ack", None), ("err", "NOPERM this user has no permissions to run the 'set' command")]}
    assert wait_results(r, "ro3", ["web-1"]) == {"web-1": [
        ("ack", None), ("ok", ["local value", None])]}
    # A RESP3 map reply becomes a JSON object.
    add_job(r, "ro4", "web-1", ["hello", "3"])
    (_, _), (st, reply) = wait_results(r, "ro4", ["web-1"])["web-1"]
    assert st == "ok" and reply["proto"] == 3 and reply["role"] == "master"
    assert agents["web-1"].client().get("k") == b"local value"


def test_unsigned_exec_job_is_refused_and_nothing_runs(fleet5):
    r, agents = fleet5
    for jid, argv in (("u1", ["proc", "start", "web"]), ("u2", ["config", "set", "hz", "50"]),
                      ("u3", ["eval", "return 1", "0"]), ("u4", ["info", "server"])):
        add_job(r, jid, "*", argv)
        assert wait_results(r, jid, HOSTS) == {h: [("err", "unsigned job")] for h in HOSTS}
    assert agents["db-1"].client().config_get("hz") == {"hz": "10"}


def test_signed_job_runs(fleet5, signer):
    r, _ = fleet5
    add_job(r, "s1", "role=db", ["info", "server"], key=signer)
    got = wait_results(r, "s1", ["db-1", "db-2"])
    for h in ("db-1", "db-2"):
        (st1, _), (st2, reply) = got[h]
        assert (st1, st2) == ("ack", "ok") and "saker_version:" in reply


def test_signature_must_cover_the_target_and_come_from_a_trusted_key(fleet5, signer):
    r, _ = fleet5
    # Signed for web-1 only, retargeted to every host by whoever holds the central Redis.
    add_job(r, "s2", "*", ["info"], key=signer, sign_target="web-1")
    add_job(r, "s3", "*", ["info"], key=Ed25519PrivateKey.generate())
    want = "unsigned job: no key of fleet-trusted-keys made this signature"
    assert wait_results(r, "s2", HOSTS) == {h: [("err", want)] for h in HOSTS}
    assert wait_results(r, "s3", HOSTS) == {h: [("err", want)] for h in HOSTS}


def test_expired_job_is_reported_and_not_run(fleet5):
    r, agents = fleet5
    before = info_fleet(agents["web-2"])["fleet_jobs_run"]
    add_job(r, "e1", "web-2", ["ping"], expires=time.time() - 5)
    assert wait_results(r, "e1", ["web-2"]) == {"web-2": [("expired", None)]}
    assert info_fleet(agents["web-2"])["fleet_jobs_run"] == before


def test_bad_jobs_get_clear_errors(fleet5):
    r, _ = fleet5
    r.xadd(JOBS, {"jid": "b1", "target": "web-1 and", "cmd": '["ping"]', "expires": "9999999999"})
    r.xadd(JOBS, {"jid": "b2", "target": "web-1", "cmd": '"ping"', "expires": "9999999999"})
    r.xadd(JOBS, {"jid": "b3", "target": "web-1", "cmd": '["ping"]', "expires": "soon"})
    assert wait_results(r, "b1", HOSTS)["web-1"] == [
        ("err", "bad target: expected a host, key=value, 'not' or '(' at 9")]
    assert wait_results(r, "b2", ["web-1"]) == {"web-1": [
        ("err", "bad cmd: a JSON array of strings (the command and its arguments) expected")]}
    assert wait_results(r, "b3", ["web-1"]) == {"web-1": [
        ("err", "bad expires: unix seconds expected")]}


def test_a_jid_runs_once_even_if_added_twice(fleet5):
    r, _ = fleet5
    add_job(r, "twice", "web-3", ["ping"])
    add_job(r, "twice", "web-3", ["echo", "again"])
    add_job(r, "twice-after", "web-3", ["ping"])
    wait_results(r, "twice-after", ["web-3"])
    assert results(r, "twice") == {"web-3": [("ack", None), ("ok", "PONG")]}


def test_events_and_warnings_are_mirrored(fleet5):
    r, agents = fleet5
    c = agents["db-2"].client()
    c.config_set("slowlog-max-len", "64")
    c.eval("redis.log(redis.LOG_WARNING, 'disk almost full') return 1", 0)

    def mirrored():
        ev = [json.loads(f[b"event"]) for _, f in r.xrange("fleet:{h:db-2}:events")]
        logs = [f[b"line"].decode() for _, f in r.xrange("fleet:{h:db-2}:log")]
        return (ev, logs) if any(e["type"] == "config_changed" for e in ev) and \
            any("disk almost full" in line for line in logs) else None
    ev, logs = wait_for(mirrored, 30, "the event and the warning on the central Redis")
    changed = [e for e in ev if e["type"] == "config_changed"][-1]
    assert (changed["name"], changed["old"], changed["new"]) == ("slowlog-max-len", "128", "64")
    everyone = [f for _, f in r.xrange("fleet:{ev}:all") if f[b"type"] == b"config_changed"]
    assert everyone[-1][b"host"] == b"db-2"
    assert all("[WARNING]" in line for line in logs)


def test_info_fleet(fleet5):
    r, agents = fleet5
    info = info_fleet(agents["web-1"])
    assert info["fleet_name"] == "web-1" and info["fleet_link"] == "up"
    for field in ("fleet_reconnects", "fleet_jobs_run", "fleet_cursor_lag", "fleet_spool_bytes",
                  "fleet_events_dropped"):
        assert isinstance(info[field], int), field


def test_operator_cli_hosts_and_run(fleet5, signer, tmp_path):
    r, _ = fleet5
    url = "redis://127.0.0.1:%d/0" % r.connection_pool.connection_kwargs["port"]
    env = sakerd_env()

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "sakerd", "fleet"] + list(args), env=env,
                              capture_output=True, text=True, timeout=60)
    out = cli("hosts", "--redis", url, "--target", "role=db")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert [line.split()[:2] for line in lines] == [["db-1", "alive"], ["db-2", "alive"]]
    assert lines[0].endswith("role=db dc=ams")
    keyfile = tmp_path / "op.key"
    out = cli("keygen", "--out", str(keyfile))
    assert out.returncode == 0 and len(base64.b64decode(out.stdout.split()[0])) == 32
    assert os.stat(keyfile).st_mode & 0o777 == 0o600
    out = cli("run", "--redis", url, "--target", "web-*", "--timeout", "20", "echo", "x")
    assert out.returncode == 0, out.stdout + out.stderr
    assert sorted(line.split()[:2] for line in out.stdout.splitlines()[:-1]) == [
        ["web-1", "ok"], ["web-2", "ok"], ["web-3", "ok"]]
    assert out.stdout.splitlines()[-1].endswith(": targeted 3, ok 3, err 0, missing 0")
    # Signed with the operator's key file (trusted by the agents).
    with open(keyfile, "wb") as f:
        f.write(signer.private_bytes(serialization.Encoding.PEM,
                                     serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption()))
    out = cli("run", "--redis", url, "--target", "db-1", "--key", str(keyfile), "info", "cpu")
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.splitlines()[-1].endswith(": targeted 1, ok 1, err 0, missing 0")
    out = cli("run", "--redis", url, "--target", "db-1", "info", "cpu")
    assert out.returncode == 1 and "unsigned job" in out.stdout


# ---- faults -------------------------------------------------------------------

class Central:
    """The central redis-server of a test, on loopback, with an AOF (fsync
    always) so that kill() then restart() on the same port keeps its data."""

    def __init__(self, dir):
        self.dir = dir
        dir.mkdir()
        self.proc, self.port = start_redis_server("--appendonly", "yes", "--appendfsync",
                                                  "always", dir=dir)

    def kill(self):
        self.proc.kill()
        self.proc.wait(10)

    def restart(self):
        self.proc = subprocess.Popen(
            [require_tool("redis-server"), "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "yes", "--dir", str(self.dir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def up():
            assert self.proc.poll() is None, "redis-server exited with %s" % self.proc.returncode
            try:
                return redis.Redis(port=self.port).ping()
            except redis.exceptions.RedisError:
                return False
        wait_for(up, 60, "redis-server to restart")


@pytest.fixture
def central(tmp_path):
    c = Central(tmp_path / "central")
    yield c
    c.kill()


def test_central_restart_jobs_before_and_after_complete_once(make_daemon, central):
    port = central.port
    agents = [make_daemon(agent_config(port, n), subdir=n) for n in ("a1", "a2")]
    r = redis.Redis(port=port)
    for a in agents:
        wait_linked(a)
    add_job(r, "before", "*", ["ping"])
    wait_results(r, "before", ["a1", "a2"])
    central.kill()
    for a in agents:
        wait_for(lambda: info_fleet(a)["fleet_link"] == "down", 30, "the link to drop")
    # While the central Redis is away, events wait in the spool.
    agents[0].client().config_set("slowlog-max-len", "65")
    assert info_fleet(agents[0])["fleet_spool_bytes"] > 0
    central.restart()
    for a in agents:
        wait_linked(a, 40)
    add_job(r, "after", "*", ["ping"])
    wait_results(r, "after", ["a1", "a2"])
    for jid in ("before", "after"):
        assert results(r, jid) == {h: [("ack", None), ("ok", "PONG")] for h in ("a1", "a2")}
    wait_for(lambda: any(f[b"type"] == b"config_changed"
                         for _, f in r.xrange("fleet:{h:a1}:events")), 10, "spooled event")
    assert all(info_fleet(a)["fleet_reconnects"] >= 1 for a in agents)


def spinning_agent(make_daemon, tmp_path, signer, port, name, jid):
    """An agent whose jobs run as a user with every right, busy in a signed
    job that never ends (an EVAL loop) once its ack is on the central Redis:
    (the agent, its config)."""
    keys = tmp_path / "keys"
    keys.write_text(public_line(signer))
    conf = agent_config(port, name, keys=keys,
                        extra="user jobs on nopass ~* &* +@all\nfleet-acl-user jobs\n")
    a = make_daemon(conf, subdir=name)
    wait_linked(a)
    r = redis.Redis(port=port)
    add_job(r, jid, name, ["eval", "while true do end", "0"], key=signer)
    wait_for(lambda: results(r, jid) == {name: [("ack", None)]}, 30, "the ack")
    return a, conf


def test_result_made_while_central_is_down_survives_an_agent_restart(make_daemon, tmp_path,
                                                                     signer, central):
    r = redis.Redis(port=central.port)
    a, conf = spinning_agent(make_daemon, tmp_path, signer, central.port, "sp", "long")
    central.kill()
    # The job ends (killed from the console) while the central Redis is away.
    assert a.raw().call("SCRIPT", "KILL") == b"+OK\r\n"    # answered once BUSY
    wait_for(lambda: link_state(a) == "down", 30, "the script to end, the link to drop")
    assert info_fleet(a)["fleet_spool_bytes"] > 0
    a.stop()
    spool = os.path.join(a.dir, "fleet", "spool")
    assert os.stat(spool).st_mode & 0o777 == 0o600
    assert b'"state":"err"' in open(spool, "rb").read()
    central.restart()
    a = make_daemon(conf, subdir="sp")
    got = wait_results(r, "long", ["sp"])
    assert [st for st, _ in got["sp"]] == ["ack", "err"]
    assert "Script killed by user with SCRIPT KILL" in got["sp"][1][1]
    wait_for(lambda: not os.path.exists(spool), 30, "the spool file to be sent")


def test_events_beyond_the_spool_are_dropped_oldest_first_and_counted(make_daemon, central):
    a = make_daemon(agent_config(central.port, "ev", extra="fleet-spool-max 8kb\n"),
                    subdir="ev")
    wait_linked(a)
    r = redis.Redis(port=central.port)
    central.kill()
    wait_for(lambda: info_fleet(a)["fleet_link"] == "down", 30, "the link to drop")
    c = a.client()
    for n in range(100, 140):
        c.config_set("slowlog-max-len", str(n))
    info = info_fleet(a)
    assert info["fleet_events_dropped"] > 0
    assert info["fleet_spool_bytes"] <= 8192 // 4
    central.restart()
    wait_linked(a, 40)
    wait_for(lambda: any(json.loads(f[b"event"]).get("new") == "139"
                         for _, f in r.xrange("fleet:{h:ev}:events")), 10, "the last event")
    news = [json.loads(f[b"event"])["new"] for _, f in r.xrange("fleet:{h:ev}:events")
            if f[b"type"] == b"config_changed"]
    assert "100" not in news and news == [str(n) for n in range(140 - len(news), 140)]


def test_agent_killed_mid_job_reports_interrupted_after_restart(make_daemon, tmp_path, signer,
                                                                central):
    r = redis.Redis(port=central.port)
    a, conf = spinning_agent(make_daemon, tmp_path, signer, central.port, "k1", "spin")
    a.kill9()
    a = make_daemon(conf, subdir="k1")
    assert wait_results(r, "spin", ["k1"]) == {"k1": [("ack", None), ("interrupted", None)]}
    # ...and never again: a later job is answered, the interrupted one is not rerun.
    add_job(r, "next", "k1", ["ping"])
    wait_results(r, "next", ["k1"])
    assert results(r, "spin") == {"k1": [("ack", None), ("interrupted", None)]}
    assert "job spin was running when sakerd stopped" in a.log()


def test_stopped_agent_catches_up_on_missed_jobs(make_daemon, central):
    a = make_daemon(agent_config(central.port, "late"), subdir="late")
    wait_linked(a)
    r = redis.Redis(port=central.port)
    add_job(r, "seen", "late", ["ping"])
    wait_results(r, "seen", ["late"])
    a.stop()
    add_job(r, "missed1", "late", ["echo", "one"])
    add_job(r, "missed2", "*", ["echo", "two"])
    a = make_daemon(agent_config(central.port, "late"), subdir="late")
    assert wait_results(r, "missed1", ["late"]) == {"late": [("ack", None), ("ok", "one")]}
    assert wait_results(r, "missed2", ["late"]) == {"late": [("ack", None), ("ok", "two")]}
    assert results(r, "seen") == {"late": [("ack", None), ("ok", "PONG")]}
    st = os.stat(os.path.join(a.dir, "fleet", "state.json"))
    assert st.st_mode & 0o777 == 0o600
    assert os.stat(os.path.join(a.dir, "fleet")).st_mode & 0o777 == 0o700


# ---- the central Redis's own ACL users ------------------------------------------

HOST_RULES = ("on >tok-{h} resetkeys resetchannels -@all +ping +hello +client|setname "
              "~fleet:{{h:{h}}}:* +set +hset +expire +xadd %R~fleet:{{ctl}}:jobs +xread +xrange "
              "~fleet:{{ctl}}:seen +zadd ~fleet:{{j:*}}:ret ~fleet:{{ev}}:all")


def test_per_host_acl_users_on_the_central_redis(make_daemon, central):
    port = central.port
    admin = redis.Redis(port=port)
    for h in ("web01", "web02"):
        admin.execute_command("ACL", "SETUSER", "h:" + h, *HOST_RULES.format(h=h).split())
    agents = [make_daemon(agent_config(port, h, url="redis://h%%3A%s:tok-%s@127.0.0.1:%d/0"
                                       % (h, h, port)), subdir=h)
              for h in ("web01", "web02")]
    for a in agents:
        wait_linked(a)
    add_job(admin, "acl1", "*", ["ping"])
    assert wait_results(admin, "acl1", ["web01", "web02"]) == {
        h: [("ack", None), ("ok", "PONG")] for h in ("web01", "web02")}
    wait_for(lambda: admin.exists("fleet:{h:web02}:info"), 30, "web02's info")
    web01 = redis.Redis(port=port, username="h:web01", password="tok-web01")
    for denied in (lambda: web01.hgetall("fleet:{h:web02}:info"),
                   lambda: web01.get("fleet:{h:web02}:alive"),
                   lambda: web01.set("fleet:{h:web02}:alive", "forged"),
                   lambda: web01.xadd(JOBS, {"jid": "evil", "target": "*",
                                             "cmd": '["ping"]', "expires": "9999999999"}),
                   lambda: web01.xrange("fleet:{h:web02}:events")):
        with pytest.raises(redis.exceptions.NoPermissionError):
            denied()
    assert web01.xrange(JOBS)[0][1][b"jid"] == b"acl1"
    assert all(info_fleet(a)["fleet_link"] == "up" for a in agents)
    assert "refused" not in agents[0].log()


def test_test_config_reports_fleet_problems(tmp_path):
    conf = tmp_path / "bad.conf"
    conf.write_text("fleet-redis redis://127.0.0.1:1\nfleet-acl-user nobody-here\n"
                    "fleet-trusted-keys %s\n" % (tmp_path / "missing"))
    env = sakerd_env()
    out = subprocess.run([sys.executable, "-m", "sakerd", "--test-config", "-c", str(conf)],
                         env=env, capture_output=True, text=True, timeout=30)
    assert out.returncode == 1
    assert "%s:2: fleet-acl-user 'nobody-here' is not a defined user" % conf in out.stderr
    assert "%s:3: fleet-trusted-keys %s: No such file or directory" % (
        conf, tmp_path / "missing") in out.stderr


# ---- a Redis Cluster as the central Redis -------------------------------------------

def cluster_ports(n):
    """n free ports whose cluster bus ports (port + 10000) are free too."""
    return [free_port(bus=True) for _ in range(n)]


@pytest.fixture
def cluster(tmp_path):
    """Three masters made by `redis-cli --cluster create` on loopback: their ports."""
    ports = cluster_ports(3)
    procs = []
    try:
        for port in ports:
            d = tmp_path / ("node%d" % port)
            d.mkdir()
            procs.append(subprocess.Popen(
                [require_tool("redis-server"), "--port", str(port), "--bind", "127.0.0.1",
                 "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                 "--save", "", "--appendonly", "no", "--dir", str(d)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        for port in ports:
            wait_for(lambda: _pings(port), 30, "cluster node %d" % port)
        out = subprocess.run([require_tool("redis-cli"), "--cluster", "create"] +
                             ["127.0.0.1:%d" % p for p in ports] +
                             ["--cluster-replicas", "0", "--cluster-yes"],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stdout + out.stderr
        for port in ports:
            wait_for(lambda: b"cluster_state:ok" in redis.Redis(port=port).execute_command(
                "CLUSTER", "INFO"), 20, "cluster_state:ok on %d" % port)
        yield ports
    finally:
        for p in procs:
            p.kill()
            p.wait(10)


def _pings(port):
    try:
        return redis.Redis(port=port).ping()
    except redis.exceptions.RedisError:
        return False


def test_fleet_on_a_three_master_redis_cluster(cluster, make_daemon, tmp_path, signer):
    from redis.cluster import RedisCluster, ClusterNode
    keys = tmp_path / "keys"
    keys.write_text(public_line(signer))
    seeds = "".join("fleet-redis redis://127.0.0.1:%d\n" % p for p in cluster)
    names = {"web-1": "role=web dc=ams", "web-2": "role=web dc=fra", "db-1": "role=db dc=ams"}
    agents = {}
    for name, tags in names.items():
        agents[name] = make_daemon(seeds + agent_config(0, name, tags, keys)
                                   .replace("fleet-redis redis://127.0.0.1:0/0\n", ""),
                                   subdir=name, wait=False)
    for a in agents.values():
        a.wait_ready()
        wait_linked(a)
    r = RedisCluster(startup_nodes=[ClusterNode("127.0.0.1", p) for p in cluster])
    # The keys live on different masters: the hash tags spread them over slots.
    slots = {r.keyslot(k) for k in (JOBS, "fleet:{h:web-1}:alive", "fleet:{j:c1}:ret")}
    assert len(slots) == 3
    wait_for(lambda: r.zcard(SEEN) == 3, 30, "three agents seen")
    add_job(r, "c1", "role=web", ["echo", "hello"])
    add_job(r, "c2", "*", ["proc", "start", "x"])
    add_job(r, "c3", "dc=ams", ["info", "server"], key=signer)
    add_job(r, "c4", "*", ["ping"], expires=time.time() - 1)
    assert wait_results(r, "c1", ["web-1", "web-2"]) == {
        h: [("ack", None), ("ok", "hello")] for h in ("web-1", "web-2")}
    assert wait_results(r, "c2", names) == {h: [("err", "unsigned job")] for h in names}
    got = wait_results(r, "c3", ["web-1", "db-1"])
    assert set(got) == {"web-1", "db-1"} and all(
        v[-1][0] == "ok" and "saker_version:" in v[-1][1] for v in got.values())
    assert wait_results(r, "c4", names) == {h: [("expired", None)] for h in names}
    # The operator's CLI, given the seeds.
    env = sakerd_env()
    args = [a for p in cluster for a in ("--redis", "redis://127.0.0.1:%d" % p)]
    out = subprocess.run([sys.executable, "-m", "sakerd", "fleet", "run"] + args +
                         ["--target", "db-*", "ping"], env=env, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.splitlines()[-1].endswith(": targeted 1, ok 1, err 0, missing 0")


# ---- the target language --------------------------------------------------------------

@pytest.mark.parametrize("target, matched", [
    ("*", {"web-1", "web-2", "db-1"}),
    ("web-*", {"web-1", "web-2"}),
    ("db-[12]", {"db-1"}),
    ("role=web or role=db and dc=fra", {"web-1", "web-2"}),      # and binds tighter
    ("(role=web or role=db) and dc=fra", {"web-2"}),
    ("not not web-1", {"web-1"}),
    ("NOT(dc=ams)AND role=web", {"web-2"}),
    ("dc=*", {"web-1", "web-2"}),                  # db-1 has no dc tag
    ("nosuch=x or not *", set()),
])
def test_target_expressions(target, matched):
    from sakerd import fleet_target
    hosts = {"web-1": "role=web dc=ams", "web-2": "role=web dc=fra", "db-1": "role=db"}
    tree = fleet_target.parse(target)
    assert {h for h, tags in hosts.items() if fleet_target.matches(
        tree, h.encode(), fleet_target.parse_tags(tags.split()))} == matched


@pytest.mark.parametrize("target, error", [
    ("", "empty target"),
    ("   ", "empty target"),
    ("web-1 and", "expected a host, key=value, 'not' or '(' at 9"),
    ("(web-1 or db-1", "expected ')' at 14"),
    ("web-1 db-1", "unexpected 'db-1' at 6"),
    ("role= and x", "tag needs key=value at 0"),
    ("=web", "tag needs key=value at 0"),
    (")", "expected a host, key=value, 'not' or '(' at 0"),
    ("not " * 100 + "x", "target nested too deeply at 256"),
])
def test_target_errors(target, error):
    from sakerd import fleet_target
    with pytest.raises(fleet_target.TargetError) as e:
        fleet_target.parse(target)
    assert str(e.value) == error
