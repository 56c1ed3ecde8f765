# bridge/: the node registry, and campaigns wired to the engine end to
# end over tp_mem (tests/unit/engine/: an in-memory transport
# implementing transport.h) with simulated nodes running up/'s node
# engine, a real SQLite database and cache, on the real clock.
ub_unit_test(test_bridge_registry SOURCES test_bridge_registry.c
    LIBS ubbridge)
ub_unit_test(test_bridge_fanout SOURCES test_bridge_fanout.c fanout_fixture.c
    ../engine/tp_mem.c ../engine/sim_node.c ../engine/tclock.c LIBS ubbridge)
target_include_directories(test_bridge_fanout PRIVATE
    ${CMAKE_CURRENT_SOURCE_DIR}/../engine)
