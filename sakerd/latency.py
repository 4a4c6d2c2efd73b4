"""The latency monitor: LATENCY LATEST|HISTORY|RESET|DOCTOR|HELP (Redis's latency.c).

With `latency-monitor-threshold` N > 0 (ms), every command that runs N ms
or longer adds a sample to its event's time series: "fast-command" for
commands flagged fast, "command" for the others, as Redis's call() does.
A series keeps LATENCY_TS_LEN samples, one per second at most (a second
sample in the same second keeps the larger latency), and the all-time
maximum. redis_exporter reads LATENCY LATEST on every scrape.

The hot path pays nothing: server.process_command compares a command's
duration with one precomputed threshold, the smaller of the slowlog's and
this one (server.update_hot_thresholds), and only then calls slow_command().
"""

import time

from .server_h import Command, server, CMD_ADMIN, CMD_FAST, CMD_LOADING, CMD_NOSCRIPT, CMD_STALE

LATENCY_TS_LEN = 160


class TimeSeries:
    __slots__ = ("idx", "max", "samples")

    def __init__(self):
        self.idx = 0
        self.max = 0
        self.samples = [(0, 0)] * LATENCY_TS_LEN    # (unix time, ms)


EVENTS = {}     # event name (bytes) -> TimeSeries, in creation order


def add_sample(event, latency_ms):
    """latencyAddSample()."""
    ts = EVENTS.get(event)
    if ts is None:
        ts = EVENTS[event] = TimeSeries()
    now = int(time.time())
    if latency_ms > ts.max:
        ts.max = latency_ms
    prev = (ts.idx + LATENCY_TS_LEN - 1) % LATENCY_TS_LEN
    when, old = ts.samples[prev]
    if when == now:
        if latency_ms > old:
            ts.samples[prev] = (now, latency_ms)
        return
    ts.samples[ts.idx] = (now, latency_ms)
    ts.idx = (ts.idx + 1) % LATENCY_TS_LEN


def add_sample_if_needed(event, latency_ms):
    threshold = server.config.latency_monitor_threshold
    if threshold and latency_ms >= threshold:
        add_sample(event, latency_ms)


def slow_command(c, cmd, ns, slowlog=True):
    """A command ran at least the hot path's threshold: feed the slowlog
    (unless slowlog is false) and the latency monitor, each against its
    own threshold."""
    if slowlog and ns >= server.slowlog_ns:
        from .cmd_server import slowlog_push
        slowlog_push(c, c.argv, ns // 1000)
    add_sample_if_needed(b"fast-command" if cmd.flags & CMD_FAST else b"command",
                         ns // 1000000)


def hot_threshold_ns(slowlog_ns):
    """The duration from which process_command calls slow_command()."""
    server.slowlog_ns = slowlog_ns
    threshold = server.config.latency_monitor_threshold
    if threshold:
        return min(slowlog_ns, threshold * 1000000)
    return slowlog_ns


def reset_events(names=None):
    """latencyResetEvent(): the number of series removed."""
    if names is None:
        n = len(EVENTS)
        EVENTS.clear()
        return n
    return sum(1 for name in names if EVENTS.pop(name, None) is not None)


# ---- the command ---------------------------------------------------------------------

def latency_latest_command(c):
    out = [b"*%d\r\n" % len(EVENTS)]
    for event, ts in EVENTS.items():
        when, ms = ts.samples[(ts.idx + LATENCY_TS_LEN - 1) % LATENCY_TS_LEN]
        out.append(b"*4\r\n$%d\r\n%s\r\n:%d\r\n:%d\r\n:%d\r\n" % (len(event), event, when, ms,
                                                              ts.max))
    c.add_reply(b"".join(out))


def latency_history_command(c):
    ts = EVENTS.get(c.argv[2])
    samples = [] if ts is None else \
        [s for s in ts.samples[ts.idx:] + ts.samples[:ts.idx] if s[0]]
    c.add_reply(b"*%d\r\n" % len(samples) +
                b"".join(b"*2\r\n:%d\r\n:%d\r\n" % s for s in samples))


def latency_reset_command(c):
    c.add_reply_long_long(reset_events(c.argv[2:] if len(c.argv) > 2 else None))


def latency_doctor_command(c):
    c.add_reply_verbatim(latency_report())


def event_stats(ts):
    """analyzeLatencyForEvent(): (samples, avg, mean deviation, period s)."""
    samples = [ms for when, ms in ts.samples if when]
    if not samples:
        return 0, 0, 0, 0
    oldest = min(when for when, _ in ts.samples if when)
    avg = sum(samples) // len(samples)
    mad = sum(abs(avg - ms) for ms in samples) // len(samples)
    period = int(time.time()) - oldest or 1
    return len(samples), avg, mad, period


def latency_report():
    """createLatencyReport(), for the events sakerd records."""
    cfg = server.config
    threshold = cfg.latency_monitor_threshold
    if not threshold:
        return (b"I'm sorry, Dave, I can't do that. Latency monitoring is disabled in this Redis "
                b"instance. You may use \"CONFIG SET latency-monitor-threshold <milliseconds>.\" "
                b"in order to enable it. If we weren't in a deep space mission I'd suggest to "
                b"take a look at https://redis.io/topics/latency-monitor.\n")
    out = []
    advise = set()
    for n, (event, ts) in enumerate(EVENTS.items(), 1):
        if n == 1:
            out.append(b"Dave, I have observed latency spikes in this Redis instance. You don't "
                       b"mind talking about it, do you Dave?\n\n")
        samples, avg, mad, period = event_stats(ts)
        out.append(b"%d. %s: %d latency spikes (average %dms, mean deviation %dms, period %.2f "
                   b"sec). Worst all time event %dms.\n" %
                   (n, event, samples, avg, mad, period / samples if samples else 0, ts.max))
        if event == b"command":
            if cfg.slowlog_log_slower_than < 0:
                advise.add("slowlog_enabled")
            elif cfg.slowlog_log_slower_than // 1000 > threshold:
                advise.add("slowlog_tuning")
            advise.update(("slowlog_inspect", "large_objects"))
        elif event == b"fast-command":
            advise.add("scheduler")
    if not EVENTS:
        out.append(b"Dave, no latency spike was observed during the lifetime of this Redis "
                   b"instance, not in the slightest bit. I honestly think you ought to sit down "
                   b"calmly, take a stress pill, and think things over.\n")
    elif not advise:
        out.append(b"\nWhile there are latency events logged, I'm not able to suggest any easy "
                   b"fix. Please use the Redis community to get some help, providing this report "
                   b"in your help request.\n")
    else:
        out.append(b"\nI have a few advices for you:\n\n")
        for kind in ADVICE_ORDER:
            if kind in advise:
                text = ADVICES[kind]
                out.append(text % (threshold * 1000) if b"%d" in text else text)
    return b"".join(out)


# createLatencyReport()'s advices, in the order it gives them.
ADVICE_ORDER = ("slowlog_enabled", "slowlog_tuning", "slowlog_inspect", "scheduler",
                "large_objects")
ADVICES = {
    "slowlog_enabled": (
        b"- There are latency issues with potentially slow commands you are using. Try to "
        b"enable the Slow Log Redis feature using the command 'CONFIG SET "
        b"slowlog-log-slower-than %d'. If the Slow log is disabled Redis is not able to log "
        b"slow commands execution for you.\n"),
    "slowlog_tuning": (
        b"- Your current Slow Log configuration only logs events that are slower than your "
        b"configured latency monitor threshold. Please use 'CONFIG SET "
        b"slowlog-log-slower-than %d'.\n"),
    "slowlog_inspect": (
        b"- Check your Slow Log to understand what are the commands you are running which are "
        b"too slow to execute. Please check https://redis.io/commands/slowlog for more "
        b"information.\n"),
    "scheduler": (
        b"- The system is slow to execute Redis code paths not containing system calls. This "
        b"usually means the system does not provide Redis CPU time to run for long periods. "
        b"You should try to:\n"
        b"  1) Lower the system load.\n"
        b"  2) Use a computer / VM just for Redis if you are running other software in the "
        b"same system.\n"
        b"  3) Check if you have a \"noisy neighbour\" problem.\n"
        b"  4) Check with 'redis-cli --intrinsic-latency 100' what is the intrinsic latency "
        b"in your system.\n"
        b"  5) Check if the problem is allocator-related by recompiling Redis with "
        b"MALLOC=libc, if you are using Jemalloc. However this may create fragmentation "
        b"problems.\n"),
    "large_objects": (
        b"- Deleting, expiring or evicting (because of maxmemory policy) large objects is a "
        b"blocking operation. If you have very large objects that are often deleted, expired, "
        b"or evicted, try to fragment those objects into multiple smaller objects.\n"),
}


def latency_help_command(c):
    c.add_reply_help("LATENCY", [
        "DOCTOR",
        "    Return a human readable latency analysis report.",
        "HISTORY <event>",
        "    Return time-latency samples for the <event> class.",
        "LATEST",
        "    Return the latest latency samples for all events.",
        "RESET [<event> ...]",
        "    Reset latency data of one or more <event> classes.",
        "    (default: reset all data for all event classes)"])


def _latency_container():
    cmd = Command("latency", latency_help_command, -2, 0, group="server")
    flags = CMD_ADMIN | CMD_NOSCRIPT | CMD_LOADING | CMD_STALE
    for name, proc, arity, summary in (
            ("latest", latency_latest_command, 2,
             "Return the latest latency samples for all events."),
            ("history", latency_history_command, 3,
             "Return timestamp-latency samples for the event."),
            ("reset", latency_reset_command, -2,
             "Reset latency data for one or more events."),
            ("doctor", latency_doctor_command, 2,
             "Return a human readable latency analysis report."),
            ("help", latency_help_command, 2,
             "Show helpful text about the different subcommands.")):
        cmd.add_subcommand(Command(name, proc, arity, flags if name != "help" else
                                   CMD_LOADING | CMD_STALE, group="server", summary=summary))
    return cmd


COMMANDS = [_latency_container()]
