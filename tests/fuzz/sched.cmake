# scheduler/: the deployment policy parser (and a plan + ticks of what
# parses).
ub_fuzz_target(fuzz_sched_policy SOURCES fuzz_sched_policy.c LIBS ubsched)
