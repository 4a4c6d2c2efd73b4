"""Start-up of the subsystems built on the core: Lua plugins, tasks, processes."""


def init_extensions(server):
    """Bring up the subsystems after the listeners; an error message or None."""
    from .pubsub import init_log_channel
    from .history import init_history_streams
    from . import metrics, procs, sysinfo
    init_log_channel()
    init_history_streams()
    # Before the Lua bridge: their saker.* functions register at import.
    procs.init(server)
    sysinfo.init(server)
    # After the log channel's hook, which fleet mode wraps.
    from . import fleet
    err = metrics.init(server) or fleet.init(server)
    if err:
        return err
    # Keep this last: the bridge builds the saker table from every saker.*
    # function registered so far, then loads the plugins that use them.
    from .tasks import init_lua
    from . import functions
    return init_lua(server) or functions.init(server)


def check_config_extensions(config):
    """--test-config checks of the subsystems: a list of problems."""
    from .tasks import check_plugins
    from .functions import check_config
    from .fleet import check_config as check_fleet
    return check_fleet(config) + check_plugins(config) + check_config(config)
