"""Pub/sub: SUBSCRIBE, PSUBSCRIBE, UNSUBSCRIBE, PUNSUBSCRIBE, PUBLISH, PUBSUB.

Every message is appended to each subscriber's output buffer as one
complete RESP unit (add_reply takes whole units only), so no code path can
interleave two units on a connection, whatever the subscriber pipelines in
between. A subscriber that cannot keep up hits its output buffer limit in
add_reply and is closed asynchronously; the publisher is never slowed.
"""

from .networking import CLIENT_PUBSUB
from .server import server, Command, CMD_ALLOW_SUBSCRIBED, CMD_FAST, CMD_LOADING, CMD_STALE
from .util import string_match

_PUBSUB = CMD_LOADING | CMD_STALE


def _bulk(b):
    return b"$%d\r\n%s\r\n" % (len(b), b)


def _count(c):
    return len(c.pubsub_channels) + len(c.pubsub_patterns)


def _reply_subscription(c, kind, name):
    """*3 kind name count; name None is the nil of UNSUBSCRIBE with nothing."""
    c.add_reply(b"*3\r\n" + _bulk(kind) + (b"$-1\r\n" if name is None else _bulk(name)) +
                b":%d\r\n" % _count(c))


def subscribe_channel(c, channel):
    if channel not in c.pubsub_channels:
        c.pubsub_channels[channel] = None
        server.pubsub_channels.setdefault(channel, {})[c] = None
    c.flags |= CLIENT_PUBSUB
    _reply_subscription(c, b"subscribe", channel)


def unsubscribe_channel(c, channel, notify):
    if channel in c.pubsub_channels:
        del c.pubsub_channels[channel]
        subs = server.pubsub_channels.get(channel)
        if subs is not None:
            subs.pop(c, None)
            if not subs:
                del server.pubsub_channels[channel]
    if not _count(c):
        c.flags &= ~CLIENT_PUBSUB
    if notify:
        _reply_subscription(c, b"unsubscribe", channel)


def subscribe_pattern(c, pattern):
    if pattern not in c.pubsub_patterns:
        c.pubsub_patterns[pattern] = None
        server.pubsub_patterns.setdefault(pattern, {})[c] = None
    c.flags |= CLIENT_PUBSUB
    _reply_subscription(c, b"psubscribe", pattern)


def unsubscribe_pattern(c, pattern, notify):
    if pattern in c.pubsub_patterns:
        del c.pubsub_patterns[pattern]
        subs = server.pubsub_patterns.get(pattern)
        if subs is not None:
            subs.pop(c, None)
            if not subs:
                del server.pubsub_patterns[pattern]
    if not _count(c):
        c.flags &= ~CLIENT_PUBSUB
    if notify:
        _reply_subscription(c, b"punsubscribe", pattern)


def unsubscribe_all_channels(c, notify):
    count = len(c.pubsub_channels)
    for channel in list(c.pubsub_channels):
        unsubscribe_channel(c, channel, notify)
    if notify and count == 0:
        _reply_subscription(c, b"unsubscribe", None)
    return count


def unsubscribe_all_patterns(c, notify):
    count = len(c.pubsub_patterns)
    for pattern in list(c.pubsub_patterns):
        unsubscribe_pattern(c, pattern, notify)
    if notify and count == 0:
        _reply_subscription(c, b"punsubscribe", None)
    return count


def publish(channel, message):
    """Send message to channel's subscribers and matching patterns; receivers."""
    receivers = 0
    subs = server.pubsub_channels.get(channel)
    if subs:
        unit = b"*3\r\n$7\r\nmessage\r\n" + _bulk(channel) + _bulk(message)
        for c in list(subs):
            c.add_reply(unit)
            receivers += 1
    if server.pubsub_patterns:
        tail = _bulk(channel) + _bulk(message)
        for pattern, clients in list(server.pubsub_patterns.items()):
            if not string_match(pattern, channel):
                continue
            unit = b"*4\r\n$8\r\npmessage\r\n" + _bulk(pattern) + tail
            for c in list(clients):
                c.add_reply(unit)
                receivers += 1
    return receivers


def subscribe_command(c):
    for channel in c.argv[1:]:
        subscribe_channel(c, channel)


def unsubscribe_command(c):
    if len(c.argv) == 1:
        unsubscribe_all_channels(c, True)
    else:
        for channel in c.argv[1:]:
            unsubscribe_channel(c, channel, True)


def psubscribe_command(c):
    for pattern in c.argv[1:]:
        subscribe_pattern(c, pattern)


def punsubscribe_command(c):
    if len(c.argv) == 1:
        unsubscribe_all_patterns(c, True)
    else:
        for pattern in c.argv[1:]:
            unsubscribe_pattern(c, pattern, True)


def publish_command(c):
    c.add_reply_long_long(publish(c.argv[1], c.argv[2]))


def pubsub_channels_command(c):
    argv = c.argv
    if len(argv) > 3:
        c.add_reply_error("wrong number of arguments for 'pubsub|channels' command")
        return
    pat = argv[2] if len(argv) == 3 else None
    c.add_reply_bulks([ch for ch in server.pubsub_channels
                       if pat is None or string_match(pat, ch)])


def pubsub_numsub_command(c):
    out = [b"*%d\r\n" % ((len(c.argv) - 2) * 2)]
    for ch in c.argv[2:]:
        out.append(_bulk(ch) + b":%d\r\n" % len(server.pubsub_channels.get(ch, ())))
    c.add_reply(b"".join(out))


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
        "    pattern subscriptions(default: no channels)."])


def _pubsub_container():
    cmd = Command("pubsub", None, -2, _PUBSUB, group="pubsub")
    for sub in (
            Command("channels", pubsub_channels_command, -2, _PUBSUB, group="pubsub",
                    summary="List active channels"),
            Command("numsub", pubsub_numsub_command, -2, _PUBSUB, group="pubsub",
                    summary="Get the count of subscribers for channels"),
            Command("numpat", pubsub_numpat_command, 2, _PUBSUB, group="pubsub",
                    summary="Get the count of unique patterns pattern subscriptions"),
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
    Command("publish", publish_command, 3, _PUBSUB | CMD_FAST, group="pubsub",
            summary="Post a message to a channel"),
    _pubsub_container(),
]
