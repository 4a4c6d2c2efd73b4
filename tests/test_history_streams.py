"""The daemon's history as streams (history.py): every log line is an entry of
`log-stream` (saker:log), every lifecycle event one of `event-stream`
(saker:events), both in db 0, trimmed to their -maxlen, never recursing.
"""

import time

from helpers import wait_for

LOG_LOOP = "for i = 1, tonumber(ARGV[1]) do redis.log(redis.LOG_WARNING, ARGV[2] .. i) end"


def entries(r, key):
    """[(id, {field: value})]: redis-py keeps the fields in their order."""
    return r.xrange(key)


def test_each_log_line_is_an_entry_with_level_module_line_and_msg(make_daemon):
    d = make_daemon("loglevel verbose\n")
    r = d.client(protocol=2, decode_responses=True)
    r.ping()
    got = wait_for(lambda: [e for _, e in entries(r, "saker:log")
                            if e["msg"].startswith("Accepted 127.0.0.1:")], what="the entry")
    e = got[-1]
    assert (e["level"], e["module"]) == ("verbose", "networking")
    # The same line, with the same origin, is in the log file.
    assert "[VERBOSE] [networking:%s] %s" % (e["line"], e["msg"]) in d.log()
    assert r.type("saker:log") == "stream"
    assert "saker:log" in r.scan(0, count=1000)[1]


def test_xread_from_the_last_id_returns_the_lines_logged_since(daemon):
    r = daemon.client(protocol=2, decode_responses=True)
    r.eval(LOG_LOOP, 0, 1, "before-")
    last = r.xrevrange("saker:log", count=1)[0][0]
    r.eval(LOG_LOOP, 0, 3, "after-")
    [[key, got]] = r.xread({"saker:log": last})
    assert key == "saker:log"
    assert [(f["level"], f["module"], f["msg"]) for _, f in got] == \
        [("warning", "user_script", "after-%d" % i) for i in (1, 2, 3)]


def test_events_are_entries_with_the_envelope_fields_in_order(daemon):
    r = daemon.client(protocol=2, decode_responses=True)
    r.config_set("slowlog-max-len", "64")
    [(_, e)] = r.xrevrange("saker:events", count=1)
    assert list(e) == ["type", "ts", "name", "old", "new"]
    assert (e["type"], e["name"], e["old"], e["new"]) == ("config_changed", "slowlog-max-len",
                                                          "128", "64")
    assert abs(float(e["ts"]) - time.time()) < 60


def test_a_program_gone_fatal_with_nobody_subscribed_left_its_states_in_order(daemon):
    r = daemon.client(protocol=2, decode_responses=True)
    assert r.eval('return saker.supervise{name = "crash", cmd = "exit 7", backoff_ms = 50, '
                  'max_retries = 2}', 0) == 1
    wait_for(lambda: r.execute_command("PROC", "LIST")[0].startswith("name=crash state=fatal"),
             what="the program to go fatal")
    states = [(e["from_state"], e["to_state"]) for _, e in entries(r, "saker:events")
              if e["type"] == "process_state" and e["name"] == "crash"]
    assert states == [("stopped", "starting")] + \
        [("starting", "backoff"), ("backoff", "starting")] * 2 + [("starting", "fatal")]
    fatal = [e for _, e in entries(r, "saker:events") if e.get("to_state") == "fatal"][0]
    assert (fatal["exit_status"], fatal["retries"]) == ("7", "2")


def test_log_stream_stays_within_maxlen_under_load(make_daemon):
    d = make_daemon("log-stream-maxlen 1000\n")
    r = d.client(protocol=2, decode_responses=True)
    r.eval(LOG_LOOP, 0, 8000, "line-")
    n = r.xlen("saker:log")
    # Trimmed by whole nodes of 100 entries: never under maxlen, at most a node over.
    assert 1000 <= n < 1100
    # (A slow machine may log "Slow script ..." after the loop.)
    msgs = [f["msg"] for _, f in r.xrevrange("saker:log", count=5)]
    assert [m for m in msgs if m.startswith("line-")][0] == "line-8000"
    assert r.xinfo_stream("saker:log")["entries-added"] >= 8000


def test_each_line_is_appended_once_and_nothing_recurses_under_load(make_daemon):
    # Keyspace notifications and a log-channel subscriber make every append
    # publish; still each line is one entry, in order, and one file line.
    d = make_daemon("log-stream-maxlen 0\n")
    r = d.client(protocol=2, decode_responses=True)
    sub = d.client(protocol=2, decode_responses=True).pubsub()
    sub.subscribe("log")
    wait_for(lambda: r.pubsub_numsub("log") == [("log", 1)], what="the subscriber")
    r.execute_command("DEL", "saker:log")
    r.eval(LOG_LOOP, 0, 3000, "load-")
    msgs = [e["msg"] for _, e in entries(r, "saker:log") if e["msg"].startswith("load-")]
    assert msgs == ["load-%d" % i for i in range(1, 3001)]
    assert sum(1 for line in d.log().splitlines() if line.endswith("] load-1")) == 1
    assert r.ping()
    sub.close()


def test_a_deleted_stream_is_recreated_and_a_foreign_key_is_left_alone(daemon):
    r = daemon.client(protocol=2, decode_responses=True)
    assert r.delete("saker:log") == 1
    r.eval(LOG_LOOP, 0, 1, "again-")
    assert [e["msg"] for _, e in entries(r, "saker:log")] == ["again-1"]
    r.set("saker:log", "mine")
    r.eval(LOG_LOOP, 0, 5, "skipped-")
    assert r.get("saker:log") == "mine"
    assert "skipped-5" in daemon.log()


def test_empty_key_turns_the_streams_off(make_daemon):
    d = make_daemon('log-stream ""\nevent-stream ""\n')
    r = d.client(protocol=2, decode_responses=True)
    r.eval(LOG_LOOP, 0, 3, "x-")
    r.config_set("slowlog-max-len", "64")
    assert r.exists("saker:log", "saker:events") == 0
    assert r.config_get("log-stream") == {"log-stream": ""}


def test_a_consumer_group_gets_events_again_after_its_restart(daemon):
    r = daemon.client(protocol=2, decode_responses=True)
    r.execute_command("XGROUP", "CREATE", "saker:events", "alerts", "$", "MKSTREAM")
    r.config_set("slowlog-max-len", "32")
    r.config_set("slowlog-max-len", "16")
    first = daemon.client(protocol=2, decode_responses=True)
    [[_, got]] = first.xreadgroup("alerts", "pager", {"saker:events": ">"})
    assert [f["new"] for _, f in got] == ["32", "16"]
    first.close()   # crashed before XACK: a restarted consumer reads its history again
    again = daemon.client(protocol=2, decode_responses=True)
    [[_, pending]] = again.xreadgroup("alerts", "pager", {"saker:events": "0"})
    assert [i for i, _ in pending] == [i for i, _ in got]
    assert again.xack("saker:events", "alerts", *[i for i, _ in pending]) == 2
    assert again.xpending("saker:events", "alerts")["pending"] == 0
