"""Files sakerd writes as root (issue 12, items 1 and 2; SPEC §11, last paragraph).

Each attack is carried out by the unprivileged user `nobody` (setpriv) in a
directory every user can write to, while sakerd runs as root, as on a host.
The directory is sticky and world-writable, as /tmp is: sakerd accepts it
(others cannot rename or delete its files there), but anything at a
predictable name in it may be the attacker's. A "victim" file stands for
/etc/shadow: root-owned, 0600, and must come out of every attack unchanged.
"""

import os
import pathlib
import shutil
import signal
import stat
import subprocess
import sys
import tempfile

import pytest
from hypothesis import given, settings, strategies as st, HealthCheck

from helpers import sakerd_env, Daemon, require_tool, wait_for

VICTIM_TEXT = b"root:$6$precious:19000:0:99999:7:::\n"


def as_nobody(*argv):
    """Run argv as nobody:nogroup, without supplementary groups; it must succeed."""
    setpriv = require_tool("setpriv")
    subprocess.run([setpriv, "--reuid=nobody", "--regid=nogroup", "--clear-groups", *argv],
                   check=True, cwd="/")


@pytest.fixture
def public_dir():
    """A sticky world-writable directory (as /tmp) where nobody plants things.

    Made in /tmp itself: pytest's tmp_path is private to root.
    """
    d = tempfile.mkdtemp(prefix="sakerd-public-")
    os.chmod(d, 0o1777)
    yield pathlib.Path(d)
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def victim(tmp_path):
    """A root-owned 0600 file in a private directory: what the attacker aims at."""
    d = tmp_path / "private"
    d.mkdir(mode=0o700)
    v = d / "shadow"
    v.write_bytes(VICTIM_TEXT)
    os.chmod(v, 0o600)
    return v


def assert_untouched(victim):
    st_ = os.stat(victim)
    assert victim.read_bytes() == VICTIM_TEXT
    assert stat.S_IMODE(st_.st_mode) == 0o600
    assert (st_.st_uid, st_.st_gid) == (0, 0)


def restart(d, tmp_path):
    """A new daemon on the same port that loads d's (rewritten) config file."""
    d.stop()
    return Daemon(os.path.dirname(d.conf), "include %s\n" % d.conf, port=d.port,
                  config_name="restart.conf", open_default=False)   # (the include has it)


def start_refused(tmp_path, config):
    """sakerd started on config must refuse: its exit status and stderr."""
    conf = tmp_path / "refused.conf"
    conf.write_text(config)
    env = sakerd_env()
    return subprocess.run([sys.executable, "-m", "sakerd", "-c", str(conf)], env=env,
                          capture_output=True, text=True, timeout=30)


def test_a_symlink_at_the_pidfile_path_is_refused_not_truncated(tmp_path, public_dir, victim):
    pidfile = public_dir / "sakerd.pid"
    as_nobody("ln", "-s", str(victim), str(pidfile))
    r = start_refused(tmp_path, "port 0\npidfile %s\n" % pidfile)
    assert r.returncode == 1
    assert "can't open pidfile %s: %s is a symbolic link" % (pidfile, pidfile) in r.stderr
    assert_untouched(victim)


def test_a_symlink_at_the_logfile_path_is_refused_not_appended_to(tmp_path, public_dir, victim):
    logfile = public_dir / "sakerd.log"
    as_nobody("ln", "-s", str(victim), str(logfile))
    r = start_refused(tmp_path, "port 0\nlogfile %s\n" % logfile)
    assert r.returncode == 1
    assert "Can't open the log file %s: %s is a symbolic link" % (logfile, logfile) in r.stderr
    assert_untouched(victim)


def test_a_hard_link_or_a_file_of_another_user_at_the_logfile_is_refused(tmp_path, public_dir):
    theirs = public_dir / "theirs.log"
    as_nobody("touch", str(theirs))
    r = start_refused(tmp_path, "port 0\nlogfile %s\n" % theirs)
    assert r.returncode == 1
    assert "%s is owned by another user (uid %d)" % (theirs, os.stat(theirs).st_uid) in r.stderr
    mine = public_dir / "mine"
    mine.write_text("x")
    linked = public_dir / "linked.log"
    os.link(mine, linked)
    r = start_refused(tmp_path, "port 0\nlogfile %s\n" % linked)
    assert "%s has 2 hard links" % linked in r.stderr


def test_a_symlink_at_an_exec_default_output_file_is_refused(make_daemon, public_dir, victim):
    d = make_daemon("logfile %s\n" % (public_dir / "sakerd.log"))
    as_nobody("ln", "-s", str(victim), str(public_dir / "exec-echo.log"))
    r = d.client()
    reply = r.eval("local pid, err = saker.exec({'echo', 'pwned'}) return {tostring(pid), err}", 0)
    assert reply == [b"nil", ("can't open %s: %s is a symbolic link" % (
        public_dir / "exec-echo.log", public_dir / "exec-echo.log")).encode()]
    assert_untouched(victim)
    # Without the attacker's link the same call works and writes its own file.
    os.unlink(public_dir / "exec-echo.log")
    pid = r.eval("return saker.exec({'echo', 'hello'})", 0)
    assert isinstance(pid, int) or pid is None
    wait_for(lambda: (public_dir / "exec-echo.log").exists() and
             (public_dir / "exec-echo.log").read_bytes() == b"hello\n", what="exec output")


@pytest.mark.parametrize("directive", ["pidfile", "logfile", "unixsocket"])
def test_a_directory_others_can_write_is_refused_at_start_and_by_test_config(tmp_path, directive):
    open_dir = tmp_path / "open"
    open_dir.mkdir()
    os.chmod(open_dir, 0o777)
    config = "port 0\n%s %s\n" % (directive, open_dir / "f")
    r = start_refused(tmp_path, config)
    assert r.returncode == 1
    expect = "%s: refusing to write in an unsafe directory: directory %s is world-writable " \
             "without the sticky bit (mode 0777)" % (directive, open_dir)
    assert expect in r.stderr
    conf = tmp_path / "refused.conf"
    t = subprocess.run([sys.executable, "-m", "sakerd", "--test-config", "-c", str(conf)],
                       env=sakerd_env(), capture_output=True, text=True)
    assert t.returncode == 1
    assert "%s:2: %s" % (conf, expect) in t.stderr


def test_a_directory_owned_by_another_user_is_refused(tmp_path):
    theirs = tmp_path / "theirs"
    theirs.mkdir(mode=0o755)
    os.chown(theirs, 65534, 65534)
    r = start_refused(tmp_path, "port 0\npidfile %s\n" % (theirs / "x.pid"))
    assert r.returncode == 1
    assert "directory %s is owned by another user (uid 65534, mode 0755)" % theirs in r.stderr


def test_as_root_relative_runtime_paths_live_in_root_owned_directories(make_daemon):
    name = "hardening-test-%d" % os.getpid()
    log = "/var/log/sakerd/%s.log" % name
    pid = "/run/sakerd/%s.pid" % name
    try:
        d = make_daemon("logfile %s.log\npidfile %s.pid\n" % (name, name))
        d.client().ping()
        wait_for(lambda: os.path.exists(log) and b"Ready to accept" in open(log, "rb").read(),
                 what="the log in /var/log/sakerd")
        assert open(pid).read() == "%d\n" % d.pid
        for directory in ("/var/log/sakerd", "/run/sakerd"):
            st_ = os.stat(directory)
            assert st_.st_uid == 0 and stat.S_IMODE(st_.st_mode) & 0o022 == 0
        d.stop()
    finally:
        for p in (log, pid):
            if os.path.exists(p):
                os.unlink(p)


# ---- CONFIG REWRITE ----------------------------------------------------------------

def test_rewrite_temporary_file_cannot_be_predicted_and_the_config_stays_ours(
        make_daemon, public_dir, victim):
    # The config lives in the public directory: the attacker plants the old,
    # predictable temporary name for every pid the daemon might have.
    d = Daemon(public_dir, "")
    try:
        conf = public_dir / "saker.conf"
        as_nobody("ln", "-s", str(victim), "%s.tmp-%d" % (conf, d.pid))
        r = d.client()
        assert r.config_set("log-channel", "$(id>/tmp/x)") is True
        assert r.execute_command("CONFIG", "REWRITE") == b"OK"
        assert_untouched(victim)
        st_ = os.lstat(conf)
        assert stat.S_ISREG(st_.st_mode) and st_.st_uid == 0
        assert b"log-channel $(id>/tmp/x)\n" in conf.read_bytes()
        assert not [n for n in os.listdir(public_dir) if n.startswith(".saker.conf.")]
    finally:
        d.stop()


def test_rewrite_keeps_the_mode_and_owner_of_the_config(make_daemon, tmp_path):
    d = make_daemon("requirepass s3cret\n", subdir="m")
    conf = tmp_path / "m" / "saker.conf"
    os.chown(conf, 65534, 65534)
    os.chmod(conf, 0o600)
    r = d.client(password="s3cret")
    r.config_set("loglevel", "debug")
    assert r.execute_command("CONFIG", "REWRITE") == b"OK"
    st_ = os.stat(conf)
    assert stat.S_IMODE(st_.st_mode) == 0o600
    assert (st_.st_uid, st_.st_gid) == (65534, 65534)
    assert b"loglevel debug\n" in conf.read_bytes()


def test_rewrite_refuses_a_config_edited_since_start_unless_force(make_daemon, tmp_path):
    d = make_daemon("loglevel notice\nhz 10\n", subdir="e")
    conf = tmp_path / "e" / "saker.conf"
    text = conf.read_text()
    conf.write_text(text.replace("hz 10\n", "hz 20\n# keep me\n"))
    raw = d.raw()
    raw.send(b"CONFIG REWRITE\r\n")
    n = text.splitlines().index("hz 10") + 1
    assert raw.read_line() == (
        "-ERR CONFIG REWRITE refused: %s changed on disk since it was loaded (line %d is now "
        "'hz 20', line %d is now '# keep me'); CONFIG REWRITE FORCE overwrites it" % (
            conf, n, n + 1)).encode()
    assert "hz 20\n# keep me\n" in conf.read_text()
    raw.send(b"CONFIG REWRITE FORCE\r\nCONFIG REWRITE\r\nCONFIG REWRITE NOW\r\n")
    assert raw.read_line() == b"+OK"
    assert raw.read_line() == b"+OK"      # what it wrote is now what it loaded
    assert raw.read_line() == b"-ERR wrong number of arguments for 'config|rewrite' command"
    assert "hz 10\n# keep me\n" in conf.read_text()


def test_a_symlinked_config_is_rewritten_at_its_target(make_daemon, tmp_path):
    real_dir = tmp_path / "etc"
    real_dir.mkdir()
    target = real_dir / "saker.conf"
    target.write_text("")
    (tmp_path / "s").mkdir()
    link = tmp_path / "s" / "saker.conf"
    os.symlink(target, link)
    d = make_daemon("", subdir="s")       # writes its config through the link
    r = d.client()
    r.config_set("hz", "25")
    assert r.execute_command("CONFIG", "REWRITE") == b"OK"
    assert os.path.islink(link) and os.readlink(link) == str(target)
    assert b"hz 25\n" in target.read_bytes()


def test_a_value_with_control_bytes_survives_rewrite_and_restart(make_daemon, tmp_path):
    value = "a\x0bb\x00c\nd\re\tf\"g\\h \x7f\xe9#"
    d = make_daemon("", subdir="c")
    r = d.client()
    assert r.config_set("log-channel", value) is True
    assert r.execute_command("CONFIG", "REWRITE") == b"OK"
    d2 = restart(d, tmp_path)
    try:
        assert d2.client().config_get("log-channel")["log-channel"] == value
    finally:
        d2.stop()


# Values CONFIG SET may be given: any text, and the shapes its parsers like.
CONFIG_VALUES = st.one_of(
    st.text(max_size=12),
    st.text(alphabet="\x00\x01\x07\x0b\x0c\r\n\t \"'\\#x\x7f\xe9\udcff", max_size=8),
    st.integers(-5, 2 ** 40).map(str),
    st.sampled_from(["yes", "no", "0", "1mb", "10kb", "debug", "warning", "normal 1mb 2mb 3",
                     "pubsub 0 0 0", "", "-1"]))
MUTABLE = sorted(d.name for d in __import__("sakerd.config", fromlist=["x"]).DIRECTIVES
                 if d.mutable)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(MUTABLE), CONFIG_VALUES), min_size=1, max_size=4))
def test_any_value_config_set_accepts_survives_rewrite_and_reload(tmp_path, changes):
    from sakerd import config as configmod
    conf = tmp_path / "prop.conf"
    conf.write_text("# comment\nport 0\nlog-channel log\n")
    config, errors = configmod.load_server_config(str(conf), [])
    assert errors == []
    for name, value in changes:
        configmod.config_set(config, [(name, value)])      # accepted or refused
    assert configmod.rewrite(config) is None
    reloaded, errors = configmod.load_server_config(str(conf), [])
    assert errors == []
    for d in configmod.DIRECTIVES:
        assert getattr(reloaded, d.attr) == getattr(config, d.attr), d.name
