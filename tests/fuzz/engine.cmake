# engine/: the gateway's handling of node frames, the engine driven alone
# on a fake clock over the in-memory transport of the engine's unit
# tests; corpus/fuzz_eng_answer/.
set(UB_ENG_TEST ${PROJECT_SOURCE_DIR}/tests/unit/engine)
ub_fuzz_target(fuzz_eng_answer
    SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_eng_answer.c
    ${UB_ENG_TEST}/tp_mem.c ${UB_ENG_TEST}/tclock.c
    LIBS ubengine PkgConfig::LIBEVENT)
target_include_directories(fuzz_eng_answer PRIVATE ${UB_ENG_TEST})
