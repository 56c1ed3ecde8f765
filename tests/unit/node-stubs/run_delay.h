/*
 * run_delay.h: how long this test, or anything on the host, waited for
 * a CPU: the measure the real-time checks of the medium simulator's
 * tests (test_sim_bus.c, test_sim_frames.c) make allowance for.
 *
 * Those tests run the simulator and every program it serves on one
 * thread, on real pty pairs, and check when characters arrive in real
 * time.  On a loaded host (CI runs the suite with ctest -j2 on two
 * cores, end-to-end tests beside it) the thread is runnable but not
 * running for tens of milliseconds now and then, and so is the kernel
 * worker that moves a pty's bytes; every deadline slips by as much.
 * That is not the simulator's fault, and it is measurable:
 *  - per thread, Linux counts the time spent waiting on a run queue
 *    (/proc/thread-self/schedstat, second field, "run_delay", ns;
 *    Documentation/scheduler/sched-stats.rst);
 *  - for the whole host, pressure stall information counts the time
 *    during which at least one runnable task waited for a CPU
 *    (/proc/pressure/cpu, "some ... total=", us;
 *    Documentation/accounting/psi.rst): the pty's kernel worker too.
 * A window's stall is the larger of the two over the window (0 where
 * the kernel has neither).  A real-time bound is then checked as "late
 * by at most a fixed slack plus the stall measured over the same
 * window": as strict as before on an idle host, and never failed by a
 * pause that happened to the host, not to the simulator.  Early is never
 * excused: causality holds whatever the load.
 *
 * The simulator's own accounting (the simulated times it stamps on every
 * character and transmission, which the tests record through their
 * personality's callbacks) does not depend on the load at all, and is
 * checked exactly; scenarios whose outcome depends on when the thread
 * got to run (who talks first on a bus) are repeated when the accounting
 * shows they did not happen as scripted.
 */
#ifndef RUN_DELAY_H
#define RUN_DELAY_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * The fixed slack of a real-time bound: what the pty's kernel worker
 * and the thread's own work per character may take on an idle host.
 * An AddressSanitizer build does that work several times slower (every
 * memory access is checked), which no stall measure counts: the CI's
 * ASan pass missed the 3 ms bound of test_hears_loss_delay with no
 * stall measured.
 */
#if defined(__SANITIZE_ADDRESS__)
#define RT_SLACK_MS	10
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define RT_SLACK_MS	10
#endif
#endif
#ifndef RT_SLACK_MS
#define RT_SLACK_MS	3
#endif

struct stall {
	uint64_t	 run_delay_ns;	/* this thread's, at the mark */
	uint64_t	 psi_some_us;	/* the host's, at the mark */
};

/* The thread's run delay so far in ns, or 0 when the kernel has none. */
static inline uint64_t
stall_run_delay_ns(void)
{
	unsigned long long	 cpu, wait;
	FILE			*f;
	int			 n;

	if ((f = fopen("/proc/thread-self/schedstat", "r")) == NULL)
		return (0);
	n = fscanf(f, "%llu %llu", &cpu, &wait);
	fclose(f);
	return (n == 2 ? (uint64_t)wait : 0);
}

/* The host's CPU "some" stall so far in us, or 0 without PSI. */
static inline uint64_t
stall_psi_some_us(void)
{
	char			 line[256], *p;
	unsigned long long	 total = 0;
	FILE			*f;

	if ((f = fopen("/proc/pressure/cpu", "r")) == NULL)
		return (0);
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, "some ", 5) == 0 &&
		    (p = strstr(line, "total=")) != NULL) {
			total = strtoull(p + 6, NULL, 10);
			break;
		}
	fclose(f);
	return ((uint64_t)total);
}

static inline void
stall_mark(struct stall *s)
{
	s->run_delay_ns = stall_run_delay_ns();
	s->psi_some_us = stall_psi_some_us();
}

/* The stall since the mark, ms. */
static inline double
stall_ms(const struct stall *s)
{
	uint64_t	 rd = stall_run_delay_ns(), ps = stall_psi_some_us();
	double		 a = 0, b = 0;

	if (rd > s->run_delay_ns)
		a = (double)(rd - s->run_delay_ns) / 1e6;
	if (ps > s->psi_some_us)
		b = (double)(ps - s->psi_some_us) / 1e3;
	return (a > b ? a : b);
}

#endif /* RUN_DELAY_H */
