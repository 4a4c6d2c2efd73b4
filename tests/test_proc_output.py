"""Supervised programs' output (issue 16, Output): files with rotation, the
`proc:<name>` channel, the `saker:proc:<name>` stream, PROC TAIL, long lines,
binary bytes, floods, and what happens to output across SIGTERM, SHUTDOWN
and kill -9 (adoption).

Programs are started from EVAL, as a plugin would; each test uses its own
daemon, port and tmp_path.
"""

import os
import pathlib
import signal
import stat
import subprocess
import sys
import tempfile
import time

import psutil
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from helpers import require_tool, wait_for

def supervise(r, name, argv, **opts):
    """saker.supervise{name = name, cmd = argv, opts...} through EVAL (values by ARGV)."""
    fields, args = [], [name]
    for k, v in opts.items():
        if isinstance(v, bool):
            fields.append("%s = %s" % (k, "true" if v else "false"))
        elif isinstance(v, (int, float)):
            fields.append("%s = %r" % (k, v))
        else:
            args.append(v)
            fields.append("%s = ARGV[%d]" % (k, len(args)))
    cmd = []
    for a in argv:
        args.append(a)
        cmd.append("ARGV[%d]" % len(args))
    script = "return saker.supervise{name = ARGV[1], cmd = {%s}%s}" % (
        ", ".join(cmd), "".join(", " + f for f in fields))
    return r.eval(script, 0, *args)


def status(r, name):
    st = r.execute_command("PROC", "STATUS", name)
    return dict(zip(st[::2], st[1::2]))


def entries(r, name):
    """The stream's entries as (stream, line, other fields) in order."""
    out = []
    for _, f in r.xrange("saker:proc:" + name):
        rest = {k: v for k, v in f.items() if k not in (b"stream", b"line")}
        out.append((f[b"stream"], f[b"line"], rest))
    return out


def kill_quietly(pid):
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass


def numbered(n):
    """A program printing n numbered lines on stdout and on stderr, then idling."""
    return [sys.executable, "-c",
            "import sys, time\n"
            "for i in range(%d):\n"
            "    sys.stdout.write('out %%05d\\n' %% i); sys.stdout.flush()\n"
            "    sys.stderr.write('err %%05d\\n' %% i); sys.stderr.flush()\n"
            "time.sleep(300)\n" % n]


def rotated_text(path, backups):
    """path.<backups> ... path.1, path concatenated: the whole output, oldest first."""
    text = b""
    for k in range(backups, 0, -1):
        p = "%s.%d" % (path, k)
        if os.path.exists(p):
            text += open(p, "rb").read()
    return text + open(path, "rb").read()


def test_numbered_lines_reach_files_across_rotations_channel_stream_and_tail(
        make_daemon, tmp_path):
    d = make_daemon()
    r = d.client(protocol=2)
    ps = d.client(protocol=2).pubsub()
    ps.subscribe("proc:num")
    wait_for(lambda: ps.get_message(timeout=1), what="subscribe confirmation")
    out, err = tmp_path / "num.out", tmp_path / "num.err"
    n = 400
    assert supervise(r, "num", numbered(n), startsecs=0, stdout=str(out), stderr=str(err),
                     stdout_maxbytes=1000, stdout_backups=20,
                     stderr_maxbytes="1000", stderr_backups=20) == 1
    want_out = [b"out %05d" % i for i in range(n)]
    want_err = [b"err %05d" % i for i in range(n)]

    got = []
    while len(got) < 2 * n:
        m = ps.get_message(timeout=30)
        assert m is not None, "channel stopped after %d messages" % len(got)
        if m["type"] == "message":
            got.append(m["data"])
    assert [x for x in got if x.startswith(b"out")] == want_out
    assert [x for x in got if x.startswith(b"err")] == want_err

    ents = wait_for(lambda: len(entries(r, "num")) == 2 * n and entries(r, "num"),
                    what="every line in the stream")
    assert [line for s, line, _ in ents if s == b"stdout"] == want_out
    assert [line for s, line, _ in ents if s == b"stderr"] == want_err
    assert all(rest == {} for _, _, rest in ents)
    assert r.execute_command("PROC", "TAIL", "num", "50") == [line for _, line, _ in ents[-50:]]
    assert r.execute_command("PROC", "TAIL", "num") == [line for _, line, _ in ents[-20:]]
    cli = require_tool("redis-cli")
    printed = subprocess.run([cli, "-p", str(d.port), "PROC", "TAIL", "num", "50"],
                             capture_output=True, check=True).stdout
    assert printed == b"".join(line + b"\n" for _, line, _ in ents[-50:])

    # Each file: every line once, in order, across rotations that happen
    # between lines; no file beyond maxbytes.
    assert rotated_text(out, 20) == b"".join(x + b"\n" for x in want_out)
    assert rotated_text(err, 20) == b"".join(x + b"\n" for x in want_err)
    # 4000 bytes each: three full backups and a full current file.
    assert os.path.exists("%s.3" % out) and not os.path.exists("%s.4" % out)
    assert [os.path.getsize("%s.%d" % (out, k)) for k in (1, 2, 3)] == [1000] * 3
    st = status(r, "num")
    assert (st[b"stdout_maxbytes"], st[b"stdout_backups"]) == (b"1000", b"20")
    assert (st[b"stderr_maxbytes"], st[b"stderr_backups"]) == (b"1000", b"20")
    assert (st[b"output_lines"], st[b"output_dropped_lines"]) == (b"%d" % (2 * n), b"0")


def test_defaults_share_one_file_and_only_the_last_backups_are_kept(make_daemon):
    d = make_daemon()
    r = d.client(protocol=2)
    supervise(r, "web", numbered(300), startsecs=0, stdout_maxbytes=500, stdout_backups=2)
    log = os.path.join(d.dir, "proc-web.log")
    wait_for(lambda: len(r.execute_command("PROC", "TAIL", "web", "1000")) == 600,
             what="every line")
    st = status(r, "web")
    assert st[b"stdout"] == st[b"stderr"] == log.encode()
    assert (st[b"stderr_maxbytes"], st[b"stderr_backups"]) == (b"52428800", b"10")
    # stdout and stderr interleave by whole lines in the one file.
    text = rotated_text(log, 2)
    assert not os.path.exists(log + ".3")
    assert 1000 < len(text) <= 1500
    # stdout and stderr interleave by whole lines in the one file, each in
    # order up to its last line; the oldest fell off with the third backup.
    lines = text.split(b"\n")[:-1]
    for tag in (b"out", b"err"):
        mine = [x for x in lines if x.startswith(tag)]
        first = int(mine[0].split()[1]) if mine else 300
        assert mine == [tag + b" %05d" % i for i in range(first, 300)]
    assert len(lines) * 10 == len(text) and lines[-1].endswith(b" 00299")


def test_a_line_longer_than_64k_is_split_into_marked_pieces(make_daemon, tmp_path):
    d = make_daemon()
    r = d.client(protocol=2)
    out = tmp_path / "long.out"
    line = bytes(b"abcdefghij"[i % 10] for i in range(200000))
    prog = ("import sys, time\nsys.stdout.buffer.write(b'%s' * 20000 + b'\\nshort\\n')\n"
            "sys.stdout.flush(); time.sleep(300)\n" % b"abcdefghij".decode())
    supervise(r, "long", [sys.executable, "-c", prog], startsecs=0, stdout=str(out))
    ents = wait_for(lambda: len(entries(r, "long")) == 5 and entries(r, "long"),
                    what="four pieces and a line")
    k = 65536
    assert ents == [(b"stdout", line[:k], {b"partial": b"1"}),
                    (b"stdout", line[k:2 * k], {b"partial": b"1"}),
                    (b"stdout", line[2 * k:3 * k], {b"partial": b"1"}),
                    (b"stdout", line[3 * k:], {}),
                    (b"stdout", b"short", {})]
    assert r.execute_command("PROC", "TAIL", "long", "2") == [line[3 * k:], b"short"]
    wait_for(lambda: out.read_bytes() == line + b"\nshort\n", what="the file, unsplit")


def test_binary_output_passes_through_as_bytes(make_daemon, tmp_path):
    d = make_daemon()
    r = d.client(protocol=2)
    ps = d.client(protocol=2).pubsub()
    ps.subscribe("proc:bin")
    wait_for(lambda: ps.get_message(timeout=1), what="subscribe confirmation")
    out = tmp_path / "bin.out"
    payload = bytes(b for b in range(256) if b != 10) + b"\r\xff\xfe"
    prog = ("import sys, time\nsys.stderr.buffer.write(bytes(b for b in range(256) if b != 10)"
            " + b'\\r\\xff\\xfe\\n'); sys.stderr.flush(); time.sleep(300)\n")
    supervise(r, "bin", [sys.executable, "-c", prog], startsecs=0, stdout=str(out))
    msg = wait_for(lambda: (m := ps.get_message(timeout=1)) and m["type"] == "message" and m,
                   what="the message")
    assert msg["data"] == payload
    assert wait_for(lambda: entries(r, "bin")) == [(b"stderr", payload, {})]
    assert r.execute_command("PROC", "TAIL", "bin") == [payload]
    wait_for(lambda: out.read_bytes() == payload + b"\n", what="the bytes in the file")


def test_the_last_line_without_newline_is_flushed_at_exit(make_daemon):
    d = make_daemon()
    r = d.client(protocol=2)
    supervise(r, "brief", ["printf", "first\\nno newline at the end"], startsecs=0,
              autorestart=False)
    wait_for(lambda: status(r, "brief")[b"state"] == b"exited", what="exit")
    wait_for(lambda: status(r, "brief")[b"output_pipes"] == b"0", what="EOF on both pipes")
    assert r.execute_command("PROC", "TAIL", "brief") == [b"first", b"no newline at the end"]
    assert open(os.path.join(d.dir, "proc-brief.log"), "rb").read() == \
        b"first\nno newline at the end"


def test_a_flood_keeps_rss_bounded_drops_counted_lines_and_ping_answering(make_daemon):
    d = make_daemon()
    r = d.client(protocol=2)
    me = psutil.Process(d.pid)
    r.ping()
    rss0 = me.memory_info().rss
    # yes writes as fast as the pipe takes it (GB/s); the file rotates at
    # 1 MB into one backup, so the disk holds at most 2 MB of it.
    supervise(r, "flood", ["yes", "a line of flood output, quite a bit longer than a y"],
              startsecs=0, stdout_maxbytes="1mb", stdout_backups=1)
    pid = int(wait_for(lambda: status(r, "flood")[b"pid"], what="the pid"))
    try:
        wait_for(lambda: int(status(r, "flood")[b"output_dropped_lines"]) > 0,
                 what="lines dropped from the stream")
        peak = 0
        pings = 0
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            assert r.ping() is True
            pings += 1
            peak = max(peak, me.memory_info().rss)
        st = status(r, "flood")
        assert int(st[b"output_lines"]) > 1000
        assert pings > 10
        # Bounded: the queue (1 MiB), the stream (proc-output-maxlen short
        # lines) and the read buffers; not the gigabytes written.
        assert peak - rss0 < 64 * 1024 * 1024, (rss0, peak)
        ents = entries(r, "flood")
        assert 1000 <= len(ents) <= 1200
        assert any(b"dropped" in rest for _, _, rest in ents)
        # At most maxbytes plus the end of the line in progress at the limit.
        for f in ("proc-flood.log", "proc-flood.log.1"):
            assert os.path.getsize(os.path.join(d.dir, f)) < 1024 * 1024 + 52
        assert not os.path.exists(os.path.join(d.dir, "proc-flood.log.2"))
    finally:
        r.execute_command("PROC", "STOP", "flood")
        wait_for(lambda: status(r, "flood")[b"state"] == b"stopped", what="stop")
        kill_quietly(pid)
    assert r.ping() is True


def test_sigterm_and_shutdown_stop_programs_after_draining_their_last_output(make_daemon,
                                                                            tmp_path):
    prog = ("trap 'echo bye $$; exit 0' TERM; echo hello $$; "
            "while :; do sleep 0.05; done")
    node = tmp_path / "node"
    (node / "scripts").mkdir(parents=True)
    (node / "scripts" / "polite.lua").write_text(
        'saker.supervise{name = "polite", startsecs = 0, cmd = {"sh", "-c", %r}}\n' % prog)
    log = node / "proc-polite.log"
    before = 0
    for how in ("SIGTERM", "SHUTDOWN"):
        d = make_daemon(subdir="node")
        r = d.client(protocol=2)
        pid = int(wait_for(lambda: status(r, "polite")[b"state"] == b"running"
                           and status(r, "polite")[b"pid"], what="running"))
        wait_for(lambda: r.execute_command("PROC", "TAIL", "polite") == [b"hello %d" % pid],
                 what="hello")
        if how == "SIGTERM":
            assert d.stop() == 0
        else:
            cli = require_tool("redis-cli")
            subprocess.run([cli, "-p", str(d.port), "SHUTDOWN"], capture_output=True)
            assert d.proc.wait(60) == 0
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == "zombie"
        # Its goodbye, written as it stopped, reached the file before sakerd exited.
        # (sh also reports on stderr, the same file, that its sleep was "Terminated".)
        assert log.read_bytes()[before:].replace(b"Terminated\n", b"") == \
            b"hello %d\nbye %d\n" % (pid, pid)
        before = log.stat().st_size


@pytest.fixture
def strays():
    pids = []
    yield pids
    for pid in pids:
        kill_quietly(pid)


def test_kill9_keeps_programs_and_capture_resumes_after_adoption(make_daemon, tmp_path, strays):
    # The program prints n lines for each say-<tag><n> file that appears in
    # its directory: the test decides what is printed while sakerd is dead.
    prog = ('while :; do for f in say-*; do [ -e "$f" ] || continue; '
            'n=${f#say-?}; i=0; while [ $i -lt $n ]; do echo "$f line $i"; i=$((i+1)); done; '
            'rm "$f"; done; sleep 0.02; done')
    node = tmp_path / "node"
    work = node / "work"
    (node / "scripts").mkdir(parents=True)
    work.mkdir()
    (node / "scripts" / "talker.lua").write_text(
        'saker.supervise{name = "talker", startsecs = 0, cwd = %r, stdout_maxbytes = "1mb",'
        ' cmd = {"sh", "-c", %r}}\n' % (str(work), prog))
    # Every line stays in the stream, however many come at once.
    config = "proc-output-maxlen 1000000\n"
    d = make_daemon(config, subdir="node")
    r = d.client(protocol=2)
    pid = int(wait_for(lambda: status(r, "talker")[b"pid"], what="talker running"))
    strays.append(pid)

    def say(tag, n, wait=True):
        f = work / ("say-%s%d" % (tag, n))
        f.touch()
        if wait:
            wait_for(lambda: not f.exists(), what="said " + tag)
        return f

    def said(tag, n):
        return [b"say-%s%d line %d" % (tag.encode(), n, i) for i in range(n)]

    say("a", 3)
    wait_for(lambda: r.execute_command("PROC", "TAIL", "talker") == said("a", 3),
             what="lines before the kill")
    d.kill9()
    # While sakerd is dead the program keeps running and printing: its pipe
    # still has a reader (its own duplicate), so no SIGPIPE.
    say("b", 5)
    assert psutil.Process(pid).status() != "zombie"

    d2 = make_daemon(config, subdir="node", port=d.port)
    r2 = d2.client(protocol=2)
    assert wait_for(lambda: status(r2, "talker")[b"state"] == b"running"
                    and status(r2, "talker")[b"pid"], what="adopted") == b"%d" % pid
    assert "Process talker: adopting pid %d" % pid in d2.log()
    assert status(r2, "talker")[b"output_pipes"] == b"2"
    # What it printed while sakerd was dead arrives first, then what follows.
    say("d", 2)
    wait_for(lambda: r2.execute_command("PROC", "TAIL", "talker", "100") ==
             said("b", 5) + said("d", 2), what="lines after adoption")
    assert [s for s, _, _ in entries(r2, "talker")] == [b"stdout"] * 7

    # Dead again, and 2.3 MB printed: more than the 1 MiB pipe holds. The
    # program blocks in its write (backpressure) until sakerd is back.
    d2.kill9()
    big = say("e", 100000, wait=False)
    wait_for(lambda: "pipe" in open("/proc/%d/wchan" % pid).read(), what="a blocked write")
    assert big.exists()
    d3 = make_daemon(config, subdir="node", port=d.port)
    r3 = d3.client(protocol=2)
    wait_for(lambda: not big.exists(), 30, "the program to finish its 2.3 MB")
    # The file has every byte once sakerd has read the pipe; the channel and
    # the stream publish the queue at most 1 ms per turn of the loop, so the
    # next line waits for an empty queue (else it could be one of the lines
    # a full queue drops).
    last_e = said("e", 100000)[-1] + b"\n"
    wait_for(lambda: (node / "proc-talker.log").read_bytes().endswith(last_e), 30,
             "the 2.3 MB in the file")
    wait_for(lambda: status(r3, "talker")[b"output_queued_bytes"] == b"0", 60,
             "the queue published")
    say("f", 1)
    wait_for(lambda: r3.execute_command("PROC", "TAIL", "talker", "1") == said("f", 1), 30,
             what="the line after the flood")
    assert status(r3, "talker")[b"pid"] == b"%d" % pid
    # The file, across three sakerds and the rotations: every line once, in order.
    text = rotated_text(node / "proc-talker.log", 10)
    assert text == b"".join(x + b"\n" for t, n in (("a", 3), ("b", 5), ("d", 2), ("e", 100000),
                                                    ("f", 1)) for x in said(t, n))
    assert os.path.exists(str(node / "proc-talker.log") + ".1")
    assert d3.stop() == 0
    wait_for(lambda: not psutil.pid_exists(pid) or psutil.Process(pid).status() == "zombie",
             what="the adopted program stopped with sakerd")


def test_bad_output_options_are_refused_naming_the_field(make_daemon):
    d = make_daemon()
    r = d.client(protocol=2)

    def err(opt):
        with pytest.raises(Exception) as e:
            r.eval('return saker.supervise{name = "x", cmd = {"true"}, %s}' % opt, 0)
        return str(e.value).split(" script: ")[0]

    assert err('stdout_maxbytes = "lots"') == (
        "bad argument #1 to 'supervise' (field 'stdout_maxbytes': memory size like "
        "\"200mb\" expected, got 'lots')")
    assert err("stdout_backups = -1") == (
        "bad argument #1 to 'supervise' (field 'stdout_backups': must not be negative)")
    assert err("stderr_backups = 1.5") == (
        "bad argument #1 to 'supervise' (field 'stderr_backups': integer expected, got number)")
    assert err("stderr_maxbytes = {}") == (
        "bad argument #1 to 'supervise' (field 'stderr_maxbytes': memory size like "
        "\"200mb\" expected, got table)")
    assert r.execute_command("PROC", "LIST") == []


def test_proc_tail_arguments_help_and_docs(make_daemon):
    d = make_daemon()
    r = d.client(protocol=2)
    raw = d.raw()
    assert raw.call("PROC", "TAIL", "nope") == b"-ERR no supervised process named 'nope'\r\n"
    supervise(r, "quiet", ["sleep", "300"], startsecs=0)
    assert raw.call("PROC", "TAIL", "quiet") == b"*0\r\n"
    assert raw.call("PROC", "TAIL", "quiet", "-1") == \
        b"-ERR value is out of range, must be positive\r\n"
    assert raw.call("PROC", "TAIL", "quiet", "x") == \
        b"-ERR value is out of range, must be positive\r\n"
    assert raw.call("PROC", "TAIL", "quiet", "1", "2") == b"-ERR syntax error\r\n"
    assert raw.call("PROC", "TAIL") == b"-ERR wrong number of arguments for 'proc|tail' command\r\n"
    help_text = r.execute_command("PROC", "HELP")
    assert b"TAIL <name> [<count>]" in help_text
    docs = raw.call("COMMAND", "DOCS", "proc")
    assert b"$9\r\nproc|tail\r\n" in docs
    assert b"Show the last lines a supervised process wrote" in docs
    r.execute_command("PROC", "STOP", "quiet")


# ---- files written as root: attacks by `nobody` ---------------------------------------------

# The attacker's tools are test_hardening_files' (the fixtures too).
from test_hardening_files import (  # noqa: E402,F401
    as_nobody, assert_untouched, public_dir, victim)


def test_symlinks_planted_at_the_log_or_its_backups_are_never_followed(
        make_daemon, public_dir, victim):
    assert os.geteuid() == 0
    d = make_daemon()
    r = d.client(protocol=2)
    log = public_dir / "web.log"
    # At the log itself: refused, the start fails with the reason.
    as_nobody("ln", "-s", str(victim), str(log))
    supervise(r, "web", numbered(10), startsecs=0, stdout=str(log), max_retries=0)
    wait_for(lambda: status(r, "web")[b"state"] == b"fatal", what="fatal")
    assert status(r, "web")[b"last_error"] == (
        "can't open %s: %s is a symbolic link" % (log, log)).encode()
    assert_untouched(victim)
    os.unlink(log)
    # At every backup name: rotation moves the links, never writes through them.
    for k in range(1, 5):
        as_nobody("ln", "-s", str(victim), "%s.%d" % (log, k))
    supervise(r, "web2", numbered(200), startsecs=0, stdout=str(log), stdout_maxbytes=400,
              stdout_backups=3)
    wait_for(lambda: len(r.execute_command("PROC", "TAIL", "web2", "1000")) == 400,
             what="every line")
    assert_untouched(victim)
    for k in (1, 2, 3):
        p = pathlib.Path("%s.%d" % (log, k))
        assert not p.is_symlink() and stat.S_ISREG(p.lstat().st_mode)
        assert p.lstat().st_uid == 0
        assert p.read_bytes().startswith(b"out ") or p.read_bytes().startswith(b"err ")
    assert pathlib.Path("%s.4" % log).is_symlink()      # beyond the backups: left alone
    assert stat.S_IMODE(log.lstat().st_mode) == 0o644
    r.execute_command("PROC", "STOP", "web2")


# ---- rotation, as a property ------------------------------------------------------------------

@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(chunks=st.lists(st.one_of(st.binary(max_size=40), st.just(b"\n"),
                                 st.builds(lambda n: b"x" * n + b"\n", st.integers(0, 40))),
                       max_size=40),
       maxbytes=st.integers(1, 60))
def test_rotation_keeps_every_byte_and_cuts_only_between_lines_or_pieces(tmp_path, chunks,
                                                                         maxbytes):
    from sakerd import proc_output
    d = tempfile.mkdtemp(dir=tmp_path)
    path = os.path.join(d, "f.log")
    f = proc_output.LogFile(path, maxbytes, 1000)
    f.open()
    old, proc_output.MAX_LINE = proc_output.MAX_LINE, 16
    try:
        for c in chunks:
            f.write(c)
    finally:
        proc_output.MAX_LINE = old
        f.close()
    n = 1
    while os.path.exists("%s.%d" % (path, n)):
        n += 1
    files = [open("%s.%d" % (path, k), "rb").read() for k in range(n - 1, 0, -1)]
    data = b"".join(chunks)
    assert b"".join(files) + open(path, "rb").read() == data
    done = b""
    for text in files:
        assert text                      # a rotation never leaves an empty backup
        done += text
        in_line = len(done) - (done.rfind(b"\n") + 1)
        assert done.endswith(b"\n") or in_line % 16 == 0
        # Over maxbytes only by the line (or 16-byte piece) that did not fit.
        assert len(text) <= maxbytes + 16
