# Fuzz target of the UP frame codec (up/up_frame.c); seed corpus in
# corpus/fuzz_up_frame/: the vectors of docs/up-protocol.md §10 plus
# truncated and bit-flipped variants of the valid ones.
ub_fuzz_target(fuzz_up_frame
    SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_up_frame.c LIBS up)
