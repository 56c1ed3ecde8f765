# Fuzz target of the ble transport's ATT codec and client state machine
# (transports/ble/); seed corpus in corpus/fuzz_ble_att/: a whole good
# set-up, and set-ups with bad answers, as length-prefixed PDUs.
ub_fuzz_target(fuzz_ble_att
    SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_ble_att.c LIBS ubtransports)
target_include_directories(fuzz_ble_att PRIVATE
    ${PROJECT_SOURCE_DIR}/transports/ble)
