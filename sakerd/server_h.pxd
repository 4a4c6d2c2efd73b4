# Cython declarations for server_h.py (pure-Python mode: the .py is the
# source). Server's hot fields are typed; the rest live in its __dict__.

cdef class Command:
    cdef public object name, fullname, proc, subcommands, group, summary, parent, plugin
    cdef public object acl, key_specs
    cdef public long long arity, flags, first_key, last_key, key_step
    cdef public long long calls, nsec, rejected_calls, failed_calls
    cdef public long long acl_id, acl_categories


cdef class Server:
    cdef dict __dict__
    cdef public object config, el, current_client, fanout, lua, process_command, call
    cdef public dict commands, clients
    cdef public list clients_pending_write, clients_to_close, monitors, deferred_pushes
    cdef public list ready_keys, unblocked_clients, clients_timeout_table, db
    cdef public long long next_client_id, unixtime, mstime, commands_version
    cdef public long long obuf_check_threshold, slowlog_threshold_ns
    cdef public long long notify_keyspace_events, prev_err_count, tracking_clients
    cdef public long long stat_numcommands, stat_total_error_replies
    cdef public long long stat_net_input_bytes, stat_net_output_bytes
    cdef public long long stat_keyspace_hits, stat_keyspace_misses
    cdef public bint script_busy

    cpdef count_error_reply(self, code)
    cpdef lookup_command(self, argv)
