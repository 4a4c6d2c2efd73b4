"""Pub/sub: SUBSCRIBE, PSUBSCRIBE, UNSUBSCRIBE, PUNSUBSCRIBE, PUBLISH, PUBSUB;
the log channel. A port of Redis 7.0's pubsub.c.

Whole units. Every message and every (un)subscribe confirmation is built
as one complete RESP unit and appended with a single add_reply(), so no
code path can interleave two units on a connection, whatever the
subscriber pipelines in between, and whether or not its socket is full
(networking.py writes the buffer in order, with no regard for unit
boundaries). A subscriber that cannot keep up hits its output buffer
limit inside add_reply() and is closed asynchronously; the publisher only
pays for appending bytes.

Fan-out in batches. A PUBLISH from an ordinary client (not subscribed to
anything, not a script) while no pattern is subscribed and no MONITOR is
on opens a Fanout for its channel, and the next PUBLISHes to that channel
are appended to it: the frames are built once and each subscriber's buffer
gets them all with one add_reply() when the batch is flushed, instead of
one append per subscriber per message (which cost more than parsing and
running the PUBLISH itself). The batch is flushed -- always before any
other reply can reach one of its subscribers, so every subscriber sees
every unit in the order Redis would send them -- before any command of a
subscribed client, before any command but PUBLISH, before a protocol
error reply, on any publish that is not batched (a log line, an event, a
script's or a task's publish, another channel), on any subscription
change, once it holds FANOUT_FLUSH_BYTES, and whenever pending replies
are written (networking.handle_clients_with_pending_writes: before the
loop sleeps, and in the loops that serve clients while a script runs or
saker.exec waits).

Protocols. A RESP2 subscriber gets arrays (`*3 message ch msg`) and, in
Redis's words, is in "subscribed context": only (P)SUBSCRIBE,
(P)UNSUBSCRIBE, PING, QUIT and RESET are allowed (server.process_command
enforces it). A RESP3 subscriber gets the same shapes as push frames
(`>3 ...`), the nil of an UNSUBSCRIBE with nothing subscribed is `_`, and
it may run any command while subscribed.

Log channel. init_log_channel() installs log.state.publish_hook, so every
log line is also published to `log-channel` (empty: off). log.py sets a
guard while the hook runs: a line logged while publishing a log line
(an output limit warning, say) goes to the log file only, never round again.
Log lines and events can be published from inside any command; for the
client running that command they wait until its reply is complete (see
publish()), so they cannot split a reply a RESP3 subscriber is receiving.

Sharded pub/sub (SSUBSCRIBE, SUNSUBSCRIBE, SPUBLISH, PUBSUB SHARDCHANNELS
and SHARDNUMSUB) is Redis 7.0's without a cluster: a namespace of its own
('smessage' frames, no patterns), whose (un)subscribe counts are of shard
channels only, while a shard subscription puts a client in the subscribed
context like any other.

Redis keeps a client's patterns in a list and the server's in a dict; here
both sides are dicts used as ordered sets (value None): O(1) membership,
and iteration in subscription order.
"""

from . import log as logmod
from .resp import OBJ_SHARED_INTEGERS, SHARED_INTEGERS
from .server_h import (server, Command, CLIENT_PUBSUB, CLIENT_SCRIPT, PUSHING,
                       CMD_ALLOW_SUBSCRIBED, CMD_FANOUT, CMD_FAST, CMD_LOADING, CMD_NOSCRIPT,
                       CMD_STALE)
from .util import string_match

_PUBSUB = CMD_LOADING | CMD_STALE

# The header of a 3-element pub/sub frame and the nil, by protocol version.
_HEADER3 = {2: b"*3\r\n", 3: b">3\r\n"}
_NULL = {2: b"$-1\r\n", 3: b"_\r\n"}


def _bulk(b):
    return b"$%d\r\n%s\r\n" % (len(b), b)


# A batch is flushed once its frames for one protocol reach this size: an
# output buffer limit is then checked at most this far past the point
# where Redis would check it.
FANOUT_FLUSH_BYTES = 64 * 1024


class Fanout:
    """Messages published to one channel, not yet given to its subscribers."""

    __slots__ = ("channel", "subscribers", "head", "frames2", "frames3")

    def __init__(self, channel, subscribers):
        self.channel = channel
        self.subscribers = list(subscribers)
        self.head = b"$7\r\nmessage\r\n" + _bulk(channel)
        protocols = {c.resp for c in self.subscribers}
        self.frames2 = bytearray() if 2 in protocols else None
        self.frames3 = bytearray() if 3 in protocols else None

    def add(self, message):
        """Queue one message; the number of clients that will receive it."""
        body = b"%s$%d\r\n%s\r\n" % (self.head, len(message), message)
        frames = self.frames2
        if frames is not None:
            frames += b"*3\r\n"
            frames += body
        if self.frames3 is not None:
            frames = self.frames3
            frames += b">3\r\n"
            frames += body
        if len(frames) >= FANOUT_FLUSH_BYTES:
            self.flush()
        return len(self.subscribers)

    def flush(self):
        server.fanout = None
        frames2, frames3 = self.frames2, self.frames3
        for c in self.subscribers:
            c.add_reply(frames2 if c.resp == 2 else frames3, PUSHING)


def _flush_fanout():
    if server.fanout is not None:
        server.fanout.flush()


def subscription_count(c):
    """clientSubscriptionsCount(): channels plus patterns."""
    return len(c.pubsub_channels) + len(c.pubsub_patterns)


def _reply_subscription(c, kind, name, count=None):
    """One confirmation frame: kind, name (None: a nil), running count
    (of channels and patterns, unless given: shard channels count apart)."""
    c.add_reply(_HEADER3[c.resp] + _bulk(kind) +
                (_NULL[c.resp] if name is None else _bulk(name)) +
                b":%d\r\n" % (subscription_count(c) if count is None else count), PUSHING)


def _leave_pubsub_if_done(c):
    if not c.pubsub_channels and not c.pubsub_patterns and not c.pubsub_shard_channels:
        c.flags &= ~CLIENT_PUBSUB


# ---- subscribing ---------------------------------------------------------

def _subscribe(c, mine, everyone, name):
    """Add name to the client's set and c to the server's set for name."""
    _flush_fanout()
    if name not in mine:
        mine[name] = None
        everyone.setdefault(name, {})[c] = None
    c.flags |= CLIENT_PUBSUB


def _unsubscribe(c, mine, everyone, name):
    _flush_fanout()
    if name in mine:
        del mine[name]
        subs = everyone[name]
        del subs[c]
        if not subs:
            # Drop the entry of the last subscriber, or PUBSUB CHANNELS
            # would grow with every channel ever used.
            del everyone[name]
    _leave_pubsub_if_done(c)


def _unsubscribe_all(c, mine, unsubscribe, notify, kind, count=None):
    """Unsubscribe from every name; with nothing subscribed, one nil reply."""
    n = len(mine)
    for name in list(mine):
        unsubscribe(c, name, notify)
    if notify and n == 0:
        _reply_subscription(c, kind, None, count)
    return n


def subscribe_channel(c, channel):
    """Subscribe c to channel (a no-op if it already is) and confirm."""
    _subscribe(c, c.pubsub_channels, server.pubsub_channels, channel)
    _reply_subscription(c, b"subscribe", channel)


def unsubscribe_channel(c, channel, notify):
    """Unsubscribe c from channel; confirms even if it was not subscribed."""
    _unsubscribe(c, c.pubsub_channels, server.pubsub_channels, channel)
    if notify:
        _reply_subscription(c, b"unsubscribe", channel)


def subscribe_pattern(c, pattern):
    _subscribe(c, c.pubsub_patterns, server.pubsub_patterns, pattern)
    _reply_subscription(c, b"psubscribe", pattern)


def unsubscribe_pattern(c, pattern, notify):
    _unsubscribe(c, c.pubsub_patterns, server.pubsub_patterns, pattern)
    if notify:
        _reply_subscription(c, b"punsubscribe", pattern)


def subscribe_shard_channel(c, channel):
    _subscribe(c, c.pubsub_shard_channels, server.pubsub_shard_channels, channel)
    _reply_subscription(c, b"ssubscribe", channel, len(c.pubsub_shard_channels))


def unsubscribe_shard_channel(c, channel, notify):
    _unsubscribe(c, c.pubsub_shard_channels, server.pubsub_shard_channels, channel)
    if notify:
        _reply_subscription(c, b"sunsubscribe", channel, len(c.pubsub_shard_channels))


def unsubscribe_all_channels(c, notify):
    return _unsubscribe_all(c, c.pubsub_channels, unsubscribe_channel, notify, b"unsubscribe")


def unsubscribe_all_patterns(c, notify):
    return _unsubscribe_all(c, c.pubsub_patterns, unsubscribe_pattern, notify, b"punsubscribe")


def unsubscribe_all_shard_channels(c, notify):
    return _unsubscribe_all(c, c.pubsub_shard_channels, unsubscribe_shard_channel, notify,
                            b"sunsubscribe", 0)


def pubsub_unsubscribe_all(c):
    """pubsubUnsubscribeAllChannels & co. for a client being freed."""
    if c.flags & CLIENT_PUBSUB:
        unsubscribe_all_channels(c, False)
        unsubscribe_all_patterns(c, False)
        unsubscribe_all_shard_channels(c, False)


# ---- publishing (hot path) -------------------------------------------------

def publish(channel, message, out_of_band=False):
    """Send message to channel's subscribers and matching patterns; receivers.

    Each frame is encoded once per protocol version and appended whole.
    The subscriber dicts are copied before the loop: appending a reply may
    log (an output limit was hit), and a log line may be published.

    out_of_band: the message is a log line or an event, which can be
    published from anywhere -- also between the parts of a reply that a
    command is building for a RESP3 client subscribed to the channel. For
    the client whose command is running, such a frame is held back and
    queued when the command returns (server.call flushes); later frames to
    that client wait behind it, so the order is kept.
    """
    _flush_fanout()
    receivers = 0
    tail = None
    running = server.current_client
    subs = server.pubsub_channels.get(channel)
    if subs:
        tail = _bulk(channel) + _bulk(message)
        frame2 = b"*3\r\n$7\r\nmessage\r\n" + tail
        frame3 = None
        # Both frames have the same length: the room a buffer must have left
        # under the output-limit check for the inlined add_reply() below.
        limit = server.obuf_check_threshold - len(frame2)
        subs = list(subs)
        receivers += len(subs)
        for c in subs:
            if c.resp == 2:
                frame = frame2
            else:
                if frame3 is None:
                    frame3 = b">3\r\n$7\r\nmessage\r\n" + tail
                frame = frame3
            if c is running and (out_of_band or server.deferred_pushes):
                server.deferred_pushes.append((c, frame))
            else:
                # Client.add_reply() inlined for the common case of a fan-out
                # (this loop is its hot path): replies already queued, none
                # suppressed, still under the limit check after this frame.
                buf = c.buf
                if buf and not c.flags & PUSHING and len(buf) <= limit:
                    buf += frame
                else:
                    c.add_reply(frame, PUSHING)
    if server.pubsub_patterns:
        for pattern, clients in list(server.pubsub_patterns.items()):
            if not string_match(pattern, channel):
                continue
            if tail is None:
                tail = _bulk(channel) + _bulk(message)
            body = b"$8\r\npmessage\r\n" + _bulk(pattern) + tail
            for c in list(clients):
                frame = (b"*4\r\n" if c.resp == 2 else b">4\r\n") + body
                if c is running and (out_of_band or server.deferred_pushes):
                    server.deferred_pushes.append((c, frame))
                else:
                    c.add_reply(frame, PUSHING)
                receivers += 1
    return receivers


def flush_deferred_pushes(finished):
    """Queue the frames held back while the command of `finished` ran.

    A command run by a script (its fake client) is nested in the command of
    the script's caller, which is still running: its frames wait for that.
    """
    if finished.flags & CLIENT_SCRIPT:
        return
    held, server.deferred_pushes = server.deferred_pushes, []
    for c, frame in held:
        c.add_reply(frame, PUSHING)


def publish_log_line(line):
    """log.state.publish_hook: one log line, one message on `log-channel`."""
    channel = server.config.log_channel
    if channel:
        publish(channel.encode("utf-8", "surrogateescape"),
                line.encode("utf-8", "backslashreplace"), out_of_band=True)


def init_log_channel():
    """Publish every log line from now on (called by init_extensions)."""
    logmod.state.publish_hook = publish_log_line


# ---- commands -----------------------------------------------------------------

def _for_each_name(c, subscribe):
    for name in c.argv[1:]:
        subscribe(c, name)


def _unsubscribe_names(c, unsubscribe, unsubscribe_all):
    """The names given, or all of them (one nil reply if there are none)."""
    if len(c.argv) == 1:
        unsubscribe_all(c, True)
    else:
        for name in c.argv[1:]:
            unsubscribe(c, name, True)


def subscribe_command(c):
    _for_each_name(c, subscribe_channel)


def unsubscribe_command(c):
    _unsubscribe_names(c, unsubscribe_channel, unsubscribe_all_channels)


def psubscribe_command(c):
    _for_each_name(c, subscribe_pattern)


def punsubscribe_command(c):
    _unsubscribe_names(c, unsubscribe_pattern, unsubscribe_all_patterns)


def publish_command(c):
    if c.flags & (CLIENT_PUBSUB | CLIENT_SCRIPT) or server.pubsub_patterns or \
            server.monitors or server.deferred_pushes:
        receivers = publish(c.argv[1], c.argv[2])
    else:
        receivers = publish_batched(c.argv[1], c.argv[2])
    c.add_reply(SHARED_INTEGERS[receivers] if receivers < OBJ_SHARED_INTEGERS else
                b":%d\r\n" % receivers)


def spublish_command(c):
    """SPUBLISH: 'smessage' frames to the shard channel's subscribers."""
    channel, message = c.argv[1], c.argv[2]
    subs = server.pubsub_shard_channels.get(channel)
    receivers = 0
    if subs:
        body = b"$8\r\nsmessage\r\n" + _bulk(channel) + _bulk(message)
        for s in list(subs):
            s.add_reply(_HEADER3[s.resp] + body, PUSHING)
        receivers = len(subs)
    c.add_reply(b":%d\r\n" % receivers)


def ssubscribe_command(c):
    _for_each_name(c, subscribe_shard_channel)


def sunsubscribe_command(c):
    _unsubscribe_names(c, unsubscribe_shard_channel, unsubscribe_all_shard_channels)


def publish_batched(channel, message):
    """publish() through the channel's Fanout (see the module docstring)."""
    fanout = server.fanout
    if fanout is not None:
        if fanout.channel == channel:
            return fanout.add(message)
        fanout.flush()
    subscribers = server.pubsub_channels.get(channel)
    if not subscribers:
        return 0
    server.fanout = fanout = Fanout(channel, subscribers)
    return fanout.add(message)


def _subcommand_syntax_error(c):
    """addReplySubcommandSyntaxError(): the subcommand as typed, %.128s."""
    c.add_reply_error("unknown subcommand or wrong number of arguments for '%s'. Try %s HELP." % (
        c.argv[1][:128].decode("utf-8", "replace"), c.argv[0].decode("utf-8", "replace").upper()))


def _channel_list(c, channels):
    argv = c.argv
    if len(argv) > 3:
        _subcommand_syntax_error(c)
        return
    pat = argv[2] if len(argv) == 3 else None
    c.add_reply_bulks([ch for ch in channels if pat is None or string_match(pat, ch)])


def _numsub(c, channels):
    out = [b"*%d\r\n" % ((len(c.argv) - 2) * 2)]
    for ch in c.argv[2:]:
        out.append(_bulk(ch) + b":%d\r\n" % len(channels.get(ch, ())))
    c.add_reply(b"".join(out))


def pubsub_channels_command(c):
    _channel_list(c, server.pubsub_channels)


def pubsub_numsub_command(c):
    _numsub(c, server.pubsub_channels)


def pubsub_shardchannels_command(c):
    _channel_list(c, server.pubsub_shard_channels)


def pubsub_shardnumsub_command(c):
    _numsub(c, server.pubsub_shard_channels)


def pubsub_numpat_command(c):
    c.add_reply_long_long(len(server.pubsub_patterns))


def pubsub_help_command(c):
    c.add_reply_help("PUBSUB", [
        "CHANNELS [<pattern>]",
        "    Return the currently active channels matching a <pattern> (default: '*').",
        "NUMPAT",
        "    Return number of subscriptions to patterns.",
        "NUMSUB [<channel> ...]",
        "    Return the number of subscribers for the specified channels, excluding",
        "    pattern subscriptions(default: no channels).",
        "SHARDCHANNELS [<pattern>]",
        "    Return the currently active shard level channels matching a <pattern> (default: '*').",
        "SHARDNUMSUB [<shardchannel> ...]",
        "    Return the number of subscribers for the specified shard level channel(s)"])


def _pubsub_container():
    cmd = Command("pubsub", None, -2, _PUBSUB, group="pubsub")
    for sub in (
            Command("channels", pubsub_channels_command, -2, _PUBSUB, group="pubsub",
                    summary="List active channels"),
            Command("numsub", pubsub_numsub_command, -2, _PUBSUB, group="pubsub",
                    summary="Get the count of subscribers for channels"),
            Command("numpat", pubsub_numpat_command, 2, _PUBSUB, group="pubsub",
                    summary="Get the count of unique patterns pattern subscriptions"),
            Command("shardchannels", pubsub_shardchannels_command, -2, _PUBSUB, group="pubsub",
                    summary="List active shard channels"),
            Command("shardnumsub", pubsub_shardnumsub_command, -2, _PUBSUB, group="pubsub",
                    summary="Get the count of subscribers for shard channels"),
            Command("help", pubsub_help_command, 2, _PUBSUB, group="pubsub",
                    summary="Show helpful text about the different subcommands")):
        cmd.add_subcommand(sub)
    return cmd


_SUBCTX = _PUBSUB | CMD_ALLOW_SUBSCRIBED
COMMANDS = [
    Command("subscribe", subscribe_command, -2, _SUBCTX, group="pubsub",
            summary="Listen for messages published to the given channels"),
    Command("unsubscribe", unsubscribe_command, -1, _SUBCTX, group="pubsub",
            summary="Stop listening for messages posted to the given channels"),
    Command("psubscribe", psubscribe_command, -2, _SUBCTX, group="pubsub",
            summary="Listen for messages published to channels matching the given patterns"),
    Command("punsubscribe", punsubscribe_command, -1, _SUBCTX, group="pubsub",
            summary="Stop listening for messages posted to channels matching the given patterns"),
    Command("publish", publish_command, 3, _PUBSUB | CMD_FAST | CMD_FANOUT, group="pubsub",
            summary="Post a message to a channel"),
    Command("ssubscribe", ssubscribe_command, -2, _SUBCTX | CMD_NOSCRIPT, 1, -1, 1,
            group="pubsub", summary="Listen for messages published to the given shard channels"),
    Command("sunsubscribe", sunsubscribe_command, -1, _SUBCTX | CMD_NOSCRIPT, 1, -1, 1,
            group="pubsub", summary="Stop listening for messages posted to the given shard channels"),
    Command("spublish", spublish_command, 3, _PUBSUB | CMD_FAST, 1, 1, 1, group="pubsub",
            summary="Post a message to a shard channel"),
    _pubsub_container(),
]
