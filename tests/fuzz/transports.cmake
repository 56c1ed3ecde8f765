# Fuzz target of the transport option checker (transports/tp_conf.c) and
# the lan plugin's address parser; seed corpus in corpus/fuzz_tp_conf/:
# good and bad [transport.*] sections and address strings.
ub_fuzz_target(fuzz_tp_conf
    SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_tp_conf.c LIBS ubtransports)
