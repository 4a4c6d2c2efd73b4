"""redis-py resilience matrix (SPEC §9.8): four client shapes x four disconnections.

Client shapes: a plain client, a pipeline, a PubSub read with get_message,
a PubSub read by run_in_thread. Disconnections: the server restarts on the
same port; `timeout` closes an idle connection; CLIENT KILL; the output
buffer limit closes the client.

Each case uses the client settings that RELIABILITY.md documents for it
(RECIPES below) and asserts that the client works again without the
application re-creating anything: a plain client or pipeline gets correct
replies; a subscriber receives messages published after the event (it has
re-subscribed by itself). Messages published while a subscriber is
disconnected are lost: pub/sub is at-most-once, in Redis as here.

redis-py 8 defaults: Retry(ExponentialWithJitterBackoff(base=10 ms,
cap=1 s), 10 retries) on ConnectionError and TimeoutError, and a PubSub
re-subscribes in on_connect() whenever its connection is re-made.
"""

import threading
import time

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from soak.reliability import wait_for

KINDS = ["client", "pipeline", "pubsub-get_message", "pubsub-run_in_thread"]
EVENTS = ["restart", "idle-timeout", "client-kill", "output-limit"]
CONFIG = ("timeout 1\n"
          "client-output-buffer-limit normal 1mb 0 0\n"
          "client-output-buffer-limit pubsub 256kb 0 0\n")

# Beyond redis-py's defaults, the one setting a case needs is run_in_thread's
# exception_handler (in Subscriber): without it, an error that outlasts the
# retries ends the worker thread for good.


class Subscriber:
    """A PubSub on channel 'ch', read by get_message or by run_in_thread."""

    def __init__(self, client, threaded):
        self.pubsub = client.pubsub()
        self.received = []
        self.errors = []
        self.threaded = threaded
        self.slow = threading.Event()     # set: the reader stops reading (a slow consumer)
        if threaded:
            self.pubsub.subscribe(ch=self._handle)
            self.thread = self.pubsub.run_in_thread(sleep_time=0.05, daemon=True,
                                                    exception_handler=self._on_error)
        else:
            self.pubsub.subscribe("ch")
        wait_for(lambda: self.poll() or self.pubsub.subscribed, 30, "subscription")

    def _handle(self, message):
        self.received.append(message["data"])
        while self.slow.is_set():
            time.sleep(0.01)

    def _on_error(self, exc, pubsub, thread):
        # Called when get_message gave up (retries exhausted): note it and
        # keep the thread running; the next get_message reconnects.
        self.errors.append(exc)
        time.sleep(0.1)

    def poll(self):
        if not self.threaded:
            while not self.slow.is_set():
                msg = self.pubsub.get_message(ignore_subscribe_messages=True, timeout=0.05)
                if msg is None:
                    break
                self.received.append(msg["data"])
        return False

    def close(self):
        if self.threaded:
            self.thread.stop()
            self.thread.join(5)
        self.pubsub.close()


def delivered(admin, sub, tag, patience=0.3):
    """Publish a probe; True once it reached the subscriber within `patience`
    s. A short patience suits a probe retried by wait_for; a single probe
    that must arrive gets a ceiling for a loaded machine."""
    n = len(sub.received)
    probe = ("%s-%d" % (tag, n)).encode()
    admin.publish("ch", probe)
    deadline = time.monotonic() + patience
    while time.monotonic() < deadline:
        sub.poll()
        if probe in sub.received:
            return True
        time.sleep(0.01)
    return False


def works(kind, r, sub, admin, tag, patience=0.3):
    """One round trip of this client shape; True when correct."""
    if kind == "client":
        r.set("k", tag)
        return r.get("k") == tag.encode()
    if kind == "pipeline":
        p = r.pipeline(transaction=False)
        p.set("k", tag).incr("n").get("k")
        res = p.execute()
        return res[0] is True and res[2] == tag.encode()
    return delivered(admin, sub, tag, patience)


def client_ids(admin, kind):
    """Ids of the clients of this kind's type, the asking one left out."""
    typ = "pubsub" if kind.startswith("pubsub") else "normal"
    own = str(admin.client_id())
    return [c["id"] for c in admin.client_list(_type=typ) if c["id"] != own]


def cause(event, kind, d, r, sub, admin, restart, ids_before):
    """Make the server drop the client's connection; returns the (new) admin."""
    if event == "restart":
        return restart()
    if event == "idle-timeout":
        if kind.startswith("pubsub"):
            time.sleep(2.5)    # past `timeout 1` whatever the second's phase
        else:
            wait_for(lambda: not set(ids_before) & set(client_ids(admin, kind)), 10,
                     "the idle connection to be closed")
        return admin
    if event == "client-kill":
        for cid in client_ids(admin, kind):
            admin.client_kill_filter(_id=cid)
        return admin
    if event == "output-limit":
        before = admin.info("stats")["client_output_buffer_limit_disconnections"]
        if kind in ("client", "pipeline"):
            admin.set("big", b"x" * (2 << 20))
            # A reply over the 1 MB hard limit: the server closes the
            # connection; retrying the same command meets the same fate.
            with pytest.raises(redis.ConnectionError):
                if kind == "client":
                    r.get("big")
                else:
                    r.pipeline(transaction=False).get("big").execute()
        else:
            sub.slow.set()
            for _ in range(300):
                admin.publish("ch", b"m" * 32768)
            sub.slow.clear()
        after = admin.info("stats")["client_output_buffer_limit_disconnections"]
        assert after > before
        return admin
    raise AssertionError(event)


@pytest.mark.parametrize("protocol", [2, 3])
@pytest.mark.parametrize("event", EVENTS)
@pytest.mark.parametrize("kind", KINDS)
def test_redis_py_recovers_with_default_settings(make_daemon, kind, event, protocol):
    d = make_daemon(CONFIG, subdir="srv")
    admin = redis.Redis(port=d.port, protocol=2, socket_timeout=10)
    r = redis.Redis(port=d.port, socket_timeout=10, protocol=protocol)
    sub = Subscriber(r, kind.endswith("run_in_thread")) if kind.startswith("pubsub") else None
    state = {"daemon": d}

    def restart():
        state["daemon"].stop()
        state["daemon"] = make_daemon(CONFIG, subdir="srv", port=d.port)
        return redis.Redis(port=d.port, protocol=2, socket_timeout=10)

    try:
        assert works(kind, r, sub, admin, "before", patience=20)
        ids_before = client_ids(admin, kind)
        admin = cause(event, kind, d, r, sub, admin, restart, ids_before)
        if kind.startswith("pubsub") and event == "idle-timeout":
            # Subscribers are exempt from `timeout`: same connection, no reconnect.
            assert client_ids(admin, kind) == ids_before
        # Recovered: the client (or subscriber) works again, by itself.
        assert wait_for(lambda: works(kind, r, sub, admin, "after"), 20,
                        "%s to recover from %s" % (kind, event))
        if sub is not None and sub.threaded:
            assert sub.thread.is_alive()
    finally:
        if sub is not None:
            sub.close()
        r.close()
        admin.close()


def test_pubsub_get_message_without_retry_surfaces_the_disconnect(make_daemon):
    """The control case: with retries off, the application sees the error."""
    d = make_daemon(CONFIG)
    admin = redis.Redis(port=d.port, protocol=2, socket_timeout=10)
    r = redis.Redis(port=d.port, socket_timeout=10, protocol=2, retry=Retry(NoBackoff(), 0))
    sub = Subscriber(r, threaded=False)
    try:
        assert delivered(admin, sub, "before", patience=20)
        admin.client_kill_filter(_type="pubsub")
        with pytest.raises(redis.ConnectionError):
            sub.pubsub.get_message(timeout=1)
        # Calling again reconnects and re-subscribes.
        assert wait_for(lambda: delivered(admin, sub, "after"), 30, "re-subscription")
    finally:
        sub.close()
        r.close()
        admin.close()
