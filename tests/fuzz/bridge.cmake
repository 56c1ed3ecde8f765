# bridge/: the control request checker (control__parse) and the INI
# config loader (config_load); seed corpora in corpus/fuzz_control/ and
# corpus/fuzz_config/: valid and broken requests and config files.
ub_fuzz_target(fuzz_control
    SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_control.c LIBS ubbridge)
ub_fuzz_target(fuzz_config
    SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_config.c LIBS ubbridge)
