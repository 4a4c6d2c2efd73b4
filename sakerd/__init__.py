"""sakerd: a host agent that speaks the Redis protocol."""

__version__ = "0.1.0"

# What INFO's redis_version and HELLO report, for tools that check it.
REDIS_COMPAT_VERSION = "7.0.15"

# SAKERD_PURE_PYTHON=1: import every module from its .py, even where a
# compiled one sits beside it (sakerd/compiled.py).
from . import compiled as _compiled  # noqa: E402

if _compiled.PURE_PYTHON:
    _compiled.install_pure_python_finder()

