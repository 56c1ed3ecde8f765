# Fuzz target of the transport option checker (transports/tp_conf.c) and
# the lan plugin's address parser; seed corpus in corpus/fuzz_tp_conf/:
# good and bad [transport.*] sections and address strings.
ub_fuzz_target(fuzz_tp_conf
    SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_tp_conf.c LIBS ubtransports)
# Fuzz target of the lora plugin's UART side: the bounded line assembler
# and the RUI3 dialect's parser; seed corpus in corpus/fuzz_lora_at/: the
# manual's lines, receive lines good and bad, banners, noise.
ub_fuzz_target(fuzz_lora_at
    SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_lora_at.c LIBS ubtransports)
target_include_directories(fuzz_lora_at PRIVATE
    ${PROJECT_SOURCE_DIR}/transports/lora)
