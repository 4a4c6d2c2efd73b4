import pytest

from helpers import Daemon


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
