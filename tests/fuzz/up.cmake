# Fuzz target of the UP frame codecs, full and compact (up/up_frame.c,
# up/up_cframe.c, status lists); seed corpus in
# corpus/fuzz_up_frame/: the vectors of docs/up-protocol.md §10 plus
# truncated and bit-flipped variants of the valid ones.
ub_fuzz_target(fuzz_up_frame
    SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_up_frame.c LIBS up)
# The node engine fed compact frames (docs/up-protocol.md §11): segments,
# tags, parity codes, status lists, reply slots; corpus/fuzz_up_compact/.
ub_fuzz_target(fuzz_up_compact
    SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_up_compact.c LIBS up)
# The VCDIFF decoder (up/up_vcdiff.c) fed random deltas against a base
# image, in budgeted steps as the node runs it; corpus/fuzz_up_vcdiff/:
# xdelta3 deltas of variants of the target's base image, hand-made
# VCD_TARGET windows, truncated and flipped ones.
ub_fuzz_target(fuzz_up_vcdiff
    SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_up_vcdiff.c LIBS up)
# The node engine fed random streams of full (v1) frames across sessions
# and states (PARITY and XOR included, power cuts, switches that boot or
# roll back), with the anti-rollback rule and the signed image as
# invariants; corpus/fuzz_up_node/.
ub_fuzz_target(fuzz_up_node
    SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_up_node.c
    LIBS up PkgConfig::OPENSSL)
