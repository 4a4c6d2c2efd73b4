"""CLIENT TRACKING: server-assisted client-side caching (tracking.py).

What a tracking client receives -- invalidate pushes in RESP3, messages on
__redis__:invalidate through a redirection in RESP2, BCAST batches, the
nulls of a flush, OPTIN/OPTOUT, NOLOOP -- and every error, compared byte for
byte with redis-server 7.0.15; then redis-py's own client-side cache kept
right by sakerd's invalidations, the table's bound, and the INFO fields.
"""

import re

import pytest
import redis

from helpers import Daemon, RawConn, wait_for
from sidebyside import mismatches


@pytest.fixture(scope="module")
def sakerd(tmp_path_factory):
    d = Daemon(tmp_path_factory.mktemp("tracking"))
    yield d
    d.stop()


# Scripts run in RESP3 (every connection says HELLO 3): pushes arrive on the
# tracking connection itself.
RESP3_SCRIPTS = {
    "a_read_key_is_invalidated_once_when_another_client_writes_it": """
        a: FLUSHALL
        a: CLIENT TRACKING ON
        a: GET k
        a: MGET k2 k3
        b: SET k v
        a<
        b: SET k v2
        a: PING
        b: MSET k2 1 k3 2
        a<
        a<
        a: GET k
        b: APPEND k x
        a<
        b: EXPIRE k 100
        a: CLIENT TRACKINGINFO
        a: CLIENT TRACKING OFF
        a: CLIENT TRACKINGINFO
    """,
    "the_clients_own_write_is_told_after_its_reply": """
        a: FLUSHALL
        a: CLIENT TRACKING ON
        a: GET k
        a: SET k v
        a<
        a: GET k
        a: MULTI
        a: SET k v2
        a: GET k
        a: EXEC
        a<
        a: GET k
        a: EVAL redis.call('set',KEYS[1],'x')\\sreturn\\s1 1 k
        a<
    """,
    "noloop_skips_the_clients_own_writes": """
        a: FLUSHALL
        a: CLIENT TRACKING ON NOLOOP
        a: GET k
        a: SET k v
        a: GET k
        b: SET k w
        a<
        a: CLIENT TRACKINGINFO
    """,
    "optin_and_optout": """
        a: FLUSHALL
        a: CLIENT TRACKING ON OPTIN
        a: GET notcached
        a: CLIENT CACHING yes
        a: GET cached
        a: GET notcached2
        b: MSET notcached 1 cached 2 notcached2 3
        a<
        a: CLIENT TRACKINGINFO
        a: CLIENT CACHING yes
        a: CLIENT TRACKINGINFO
        a: CLIENT CACHING no
        a: CLIENT TRACKING ON OPTOUT
        a: CLIENT TRACKING OFF
        a: CLIENT TRACKING ON OPTOUT
        a: GET x
        a: CLIENT CACHING no
        a: GET y
        b: MSET x 1 y 2
        a<
        a: CLIENT TRACKINGINFO
        a: CLIENT CACHING yes
        a: CLIENT CACHING maybe
    """,
    "bcast_sends_the_keys_changed_under_each_prefix": """
        a: FLUSHALL
        a: CLIENT TRACKING ON BCAST PREFIX user: PREFIX obj:
        b: SET user:1 x
        a<
        b: MSET obj:2 z user:3 w other v
        a<
        a<
        b: SET other again
        a: CLIENT TRACKINGINFO
        c: CLIENT TRACKING ON BCAST
        b: SET anything v
        c<
        c: CLIENT TRACKING ON BCAST NOLOOP
        c: SET mine v
        b: SET theirs v
        c<
        a: CLIENT TRACKING ON BCAST PREFIX us
        a: CLIENT TRACKING ON BCAST PREFIX zz PREFIX zzz
        a: CLIENT TRACKING ON BCAST PREFIX user:x
        a: CLIENT TRACKING ON
    """,
    "a_flush_invalidates_everything_with_a_null": """
        a: FLUSHALL
        a: CLIENT TRACKING ON
        b: CLIENT TRACKING ON BCAST
        a: GET k
        c: FLUSHALL
        a<
        b<
        c: FLUSHDB
        a<
        b<
        a: FLUSHALL
        a<
        b<
    """,
    "errors": """
        b: PING
        a: CLIENT TRACKING
        a: CLIENT TRACKING maybe
        a: CLIENT TRACKING ON FOO
        a: CLIENT TRACKING ON PREFIX p
        a: CLIENT TRACKING ON BCAST OPTIN
        a: CLIENT TRACKING ON OPTIN OPTOUT
        a: CLIENT TRACKING ON REDIRECT x
        a: CLIENT TRACKING ON REDIRECT 999999
        a: CLIENT TRACKING ON REDIRECT {b} REDIRECT {b}
        a: CLIENT TRACKING ON REDIRECT
        a: CLIENT CACHING yes
        a: CLIENT CACHING
        a: CLIENT GETREDIR
        a: CLIENT GETREDIR x
        a: CLIENT TRACKINGINFO x
        a: CLIENT TRACKING ON BCAST
        a: CLIENT TRACKING ON
        a: CLIENT TRACKING ON OPTIN
        a: CLIENT TRACKING ON BCAST
        a: CLIENT TRACKING OFF
        a: CLIENT TRACKING ON OPTIN
        a: CLIENT TRACKING ON OPTOUT
        a: CLIENT CACHING no
        a: CLIENT TRACKING OFF
        a: CLIENT TRACKING OFF
        a: CLIENT TRACKINGINFO
    """,
}

# RESP2: invalidations go to the client the tracking one redirects to, as
# messages on __redis__:invalidate (the only way without push frames).
RESP2_SCRIPTS = {
    "redirected_to_a_subscriber": """
        a: FLUSHALL
        b: SUBSCRIBE __redis__:invalidate
        a: CLIENT TRACKING ON REDIRECT {b}
        a: GET k
        c: SET k v
        b<
        a: GET k
        a: SET k w
        b<
        c: FLUSHALL
        b<
        d: CLIENT TRACKING ON
        d: GET k
        c: SET k v
        d: PING
        a: CLIENT TRACKING ON BCAST REDIRECT {b}
        a: CLIENT TRACKING OFF
        a: CLIENT TRACKING ON BCAST PREFIX x REDIRECT {b}
        c: SET xy 1
        b<
    """,
}


@pytest.mark.parametrize("name", sorted(RESP3_SCRIPTS))
def test_resp3_tracking_matches_redis_server(sakerd, redis_server_port, name):
    assert mismatches(sakerd.port, redis_server_port, RESP3_SCRIPTS[name], protocol=3) == []


@pytest.mark.parametrize("name", sorted(RESP2_SCRIPTS))
def test_resp2_redirected_tracking_matches_redis_server(sakerd, redis_server_port, name):
    assert mismatches(sakerd.port, redis_server_port, RESP2_SCRIPTS[name], protocol=2) == []


def test_getredir_client_list_and_a_broken_redirection(sakerd):
    target = RawConn(("127.0.0.1", sakerd.port))
    tid = int(target.call("CLIENT", "ID")[1:-2])
    a = RawConn(("127.0.0.1", sakerd.port))
    assert a.call("HELLO", "3").startswith(b"%")
    assert a.call("CLIENT", "GETREDIR") == b":-1\r\n"
    assert a.call("CLIENT", "TRACKING", "ON", "REDIRECT", str(tid)) == b"+OK\r\n"
    assert a.call("CLIENT", "GETREDIR") == b":%d\r\n" % tid
    info = a.call("CLIENT", "INFO")
    assert re.search(rb" flags=t ", info) and b" redir=%d " % tid in info, info
    assert a.call("GET", "gone") == b"_\r\n"
    target.close()
    wait_for(lambda: b"id=%d " % tid not in a.call("CLIENT", "LIST"), what="target gone")
    other = sakerd.client()
    other.set("gone", "v")
    # The tracking client is told its redirection is broken, in a push.
    assert a.read_wire() == b">2\r\n$21\r\ntracking-redir-broken\r\n:%d\r\n" % tid
    assert re.search(rb" flags=tR ", a.call("CLIENT", "INFO"))
    assert b"broken_redirect" in a.call("CLIENT", "TRACKINGINFO")
    assert a.call("CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "p").startswith(b"-ERR You can't")
    a.call("CLIENT", "TRACKING", "OFF")
    assert a.call("CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "p") == b"+OK\r\n"
    assert re.search(rb" flags=tB ", a.call("CLIENT", "INFO"))
    a.call("RESET")
    assert re.search(rb" flags=N ", a.call("CLIENT", "INFO"))
    a.close()


def test_redis_py_reads_the_invalidations_as_push_frames(sakerd):
    """A redis-py RESP3 connection (its own parser, hiredis or Python) gets
    the invalidation of a key it read through its invalidation handler
    when another client changes the key. (redis-py's CacheConfig cache
    itself asks for Redis 7.4, which sakerd, at 7.0, does not claim.)"""
    conn = redis.Connection(port=sakerd.port, protocol=3)
    conn.connect()
    seen = []
    conn._parser.set_invalidation_push_handler(seen.append)
    conn.send_command("CLIENT", "TRACKING", "ON")
    assert conn.read_response() == b"OK"
    writer = sakerd.client()
    writer.set("csc", "one")
    conn.send_command("GET", "csc")
    assert conn.read_response() == b"one"
    writer.set("csc", "two")
    writer.set("csc", "three")      # told once: the key is no longer remembered
    conn.send_command("GET", "csc")
    assert conn.read_response() == b"three"
    assert seen == [[b"invalidate", [b"csc"]]]
    writer.flushall()
    conn.send_command("PING")
    assert conn.read_response() == b"PONG"
    assert seen[1:] == [[b"invalidate", None]]
    assert writer.info("clients")["tracking_clients"] == 1
    conn.disconnect()
    wait_for(lambda: writer.info("clients")["tracking_clients"] == 0, what="tracking client gone")


def test_the_table_is_bounded_and_counted_in_info(sakerd):
    admin = sakerd.client()
    admin.flushall()
    a = RawConn(("127.0.0.1", sakerd.port))
    assert a.call("HELLO", "3").startswith(b"%")
    assert a.call("CLIENT", "TRACKING", "ON") == b"+OK\r\n"
    a.call("MGET", *["t%d" % i for i in range(10)])
    stats = admin.info("stats")
    assert (stats["tracking_total_keys"], stats["tracking_total_items"]) == (10, 10)
    try:
        admin.config_set("tracking-table-max-keys", "4")
        # The cron evicts random keys past the bound, telling their readers.
        wait_for(lambda: admin.info("stats")["tracking_total_keys"] <= 4, what="eviction")
        evicted = set()
        while len(evicted) < 6:
            frame = a.read_wire()
            m = re.fullmatch(rb">2\r\n\$10\r\ninvalidate\r\n\*1\r\n\$\d+\r\n(t\d)\r\n", frame)
            assert m, frame
            evicted.add(m.group(1))
        assert len(evicted) == 6
    finally:
        admin.config_set("tracking-table-max-keys", "1000000")
    a.close()
    wait_for(lambda: admin.info("clients")["tracking_clients"] == 0, what="client gone")
