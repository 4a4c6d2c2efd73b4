import pytest

from helpers import Daemon, start_redis_server


@pytest.fixture
def make_daemon(tmp_path):
    """Factory: make_daemon(config="...", args=[...]) -> a started Daemon."""
    started = []

    def make(config="", args=(), subdir=None, **kw):
        d = tmp_path / subdir if subdir else tmp_path / ("d%d" % len(started))
        d.mkdir(exist_ok=True)
        daemon = Daemon(d, config, args, **kw)
        started.append(daemon)
        return daemon

    yield make
    for daemon in started:
        daemon.stop()


@pytest.fixture
def daemon(make_daemon):
    return make_daemon()


@pytest.fixture(scope="module")
def redis_server_port():
    """A real redis-server 7 on a free port, to compare sakerd's bytes with."""
    proc, port = start_redis_server()
    yield port
    proc.terminate()
    proc.wait(10)
