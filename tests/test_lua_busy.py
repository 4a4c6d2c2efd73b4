"""Runaway scripts: BUSY mode, SCRIPT KILL, SHUTDOWN NOSAVE, pcall cannot catch the kill."""

import hashlib

import pytest

from helpers import wait_busy

BUSY = b"-BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.\r\n"


def eval_cmd(script):
    s = script.encode()
    return b"*3\r\n$4\r\nEVAL\r\n$%d\r\n%s\r\n$1\r\n0\r\n" % (len(s), s)


@pytest.mark.parametrize("script", [
    "while true do end",
    "while true do pcall(function() while true do end end) end",
    "local ok = pcall(function() while true do end end) while true do end",
    "while true do xpcall(function() while true do end end, function() while true do end end) end",
])
def test_script_kill_ends_a_busy_script_even_inside_pcall(make_daemon, script):
    daemon = make_daemon(config="lua-time-limit 100\n")
    runner = daemon.raw()
    runner.send(eval_cmd(script) + b"PING\r\n")   # the PING waits behind the script
    other = wait_busy(daemon)
    other.send(b"GET x\r\nINFO\r\n")
    assert other.read_line() + b"\r\n" == BUSY
    assert other.read_line() + b"\r\n" == BUSY
    other.send(b"SCRIPT KILL\r\n")
    assert other.read_line() == b"+OK"
    sha = hashlib.sha1(script.encode()).hexdigest().encode()
    assert runner.read_line() == (b"-ERR Script killed by user with SCRIPT KILL... script: %s, "
                                  b"on @user_script:1." % sha)
    assert runner.read_line() == b"+PONG"
    other.send(b"SCRIPT KILL\r\nPING\r\n")
    assert other.read_line() == b"-NOTBUSY No scripts in execution right now."
    assert other.read_line() == b"+PONG"
    info = daemon.client(protocol=2).info("lua")
    assert info["lua_timeouts"] == 1
    assert "Slow script detected: still in execution after" in daemon.log()


def test_shutdown_nosave_stops_a_busy_server(make_daemon):
    daemon = make_daemon(config="lua-time-limit 100\n")
    runner = daemon.raw()
    runner.send(eval_cmd("while true do end"))
    other = wait_busy(daemon)
    other.send(b"SHUTDOWN\r\n")
    assert other.read_line() + b"\r\n" == BUSY
    other.send(b"SHUTDOWN NOSAVE\r\n")
    assert daemon.proc.wait(60) == 0


def test_busy_serves_subscribers_and_the_script_result_arrives_after(make_daemon):
    # A slow but finite script: BUSY while it runs, the right answer after.
    daemon = make_daemon(config="lua-time-limit 50\n")
    runner = daemon.raw()
    script = "local t = saker.time() while saker.time() - t < 0.6 do end return 'done'"
    runner.send(eval_cmd(script))
    other = wait_busy(daemon)
    assert runner.read_line() == b"$4"
    assert runner.read_line() == b"done"
    other.send(b"PING\r\n")
    assert other.read_line() == b"+PONG"


def test_a_slow_task_makes_the_server_busy_and_script_kill_stops_it(make_daemon, tmp_path):
    d = tmp_path / "plugins"
    d.mkdir()
    (d / "slow.lua").write_text(
        'saker.every(50, function() while true do end end, {name = "slow"})\n')
    daemon = make_daemon(config="scripts-dir %s\nlua-time-limit 100\nlua-task-timeout 60000\n" % d)
    other = wait_busy(daemon)
    other.send(b"SCRIPT KILL\r\n")
    assert other.read_line() == b"+OK"
    # The task runs again at its next interval (so the kill was logged), busy again.
    other = wait_busy(daemon)
    other.send(b"SCRIPT KILL\r\n")
    assert other.read_line() == b"+OK"
    log = daemon.log()
    assert "Task slow of plugin slow failed: ERR Script killed by user with SCRIPT KILL..." in log
