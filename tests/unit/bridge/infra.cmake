# bridge/ infrastructure: config, database, control socket.  The control
# test links a fake engine (fanout_*, registry_*, uplink and cache views)
# so it checks the socket, the protocol and the command table alone.
ub_unit_test(test_bridge_config SOURCES test_bridge_config.c
    LIBS ubbridge)
ub_unit_test(test_bridge_db SOURCES test_bridge_db.c LIBS ubbridge)
ub_unit_test(test_bridge_control SOURCES test_bridge_control.c
    LIBS ubbridge)
