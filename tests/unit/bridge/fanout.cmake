# bridge/ fan-out engine: registry, pacer (simulated clock) and the
# engine end to end over tp_mem (an in-memory transport implementing
# transport.h) with simulated nodes running up/'s node engine.
ub_unit_test(test_bridge_registry SOURCES test_bridge_registry.c
    LIBS ubbridge)
ub_unit_test(test_bridge_pacer SOURCES test_bridge_pacer.c LIBS ubbridge)
ub_unit_test(test_bridge_fanout SOURCES test_bridge_fanout.c fanout_fixture.c
    tp_mem.c sim_node.c LIBS ubbridge)
