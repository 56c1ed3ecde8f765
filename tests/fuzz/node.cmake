# The node side: the engine's saved state decoder (up/up_node.c, through
# up_node_start with a fake port) and upnode's own files (node-stubs/
# node_port.c: boot.rec and state.bin); seed corpora in
# corpus/fuzz_node_state/ and corpus/fuzz_boot_record/.
ub_fuzz_target(fuzz_node_state
    SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_node_state.c LIBS up)
ub_fuzz_target(fuzz_boot_record
    SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_boot_record.c LIBS upnode_port)
