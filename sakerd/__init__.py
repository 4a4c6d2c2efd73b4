"""sakerd: a host agent that speaks the Redis protocol."""

__version__ = "0.1.0"

# What INFO's redis_version and HELLO report, for tools that check it.
REDIS_COMPAT_VERSION = "7.0.15"
