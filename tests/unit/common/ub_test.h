/*
 * ub_test.h: what the unit tests that run a real event loop (plugins on
 * pty pairs and sockets, simulators, child processes) share: the clock,
 * running the loop for a while, and waiting for a condition.
 *
 * Waits are bounded and count slices of the loop, not the clock: a wait
 * of ms is ms / UBT_SLICE_MS runs of the loop of UBT_SLICE_MS each, so on
 * a loaded host (CI's two cores, the ASan build) it lasts longer, never
 * shorter.  A test that checks that something happened waits for it
 * (UBT_WAIT_FOR); a fixed pause (ubt_run_ms) only precedes a check that
 * something did not happen.
 */
#ifndef UB_TEST_H
#define UB_TEST_H

#include <stdint.h>

struct event_base;

#define UBT_SLICE_MS	5

/* CLOCK_MONOTONIC in milliseconds. */
uint64_t	 ubt_now_ms(void);
/* The same for a tp_host's now_ms (the argument is not used). */
uint64_t	 ubt_host_now_ms(void *);
/* Runs base's loop for ms of real time (at least). */
void		 ubt_run_ms(struct event_base *, unsigned int ms);

/*
 * Runs base's loop until cond holds, at most ms (in slices, see above);
 * fails the test (cmocka's fail_msg, which the file includes) naming
 * cond if it does not hold by then.
 */
#define UBT_WAIT_FOR(base, cond, ms) do {				\
	unsigned int	 ubt_w_;					\
									\
	for (ubt_w_ = 0; !(cond) && ubt_w_ < (unsigned int)(ms);	\
	    ubt_w_ += UBT_SLICE_MS)					\
		ubt_run_ms((base), UBT_SLICE_MS);			\
	if (!(cond))							\
		fail_msg("after %u ms: %s", (unsigned int)(ms), #cond);	\
} while (0)

#endif /* UB_TEST_H */
