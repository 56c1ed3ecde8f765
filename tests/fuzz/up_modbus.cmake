# Fuzz target of the UP register map for Modbus (up/up_modbus.c).
ub_fuzz_target(fuzz_up_modbus
    SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_up_modbus.c LIBS up)
