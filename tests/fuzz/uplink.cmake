# uplink/: the cloud manifest parser.
ub_fuzz_target(fuzz_manifest SOURCES fuzz_manifest.c LIBS ubuplink)
