/*
 * tclock.h: a fake clock with timers for the engine's tests (STYLE.md,
 * "Tests": a fake clock at the seam).  Time moves only when the test
 * says so: tclock_advance() jumps to the earliest timer and runs what is
 * due.  tp_mem and sim_node use it when their medium has one; with none
 * they use CLOCK_MONOTONIC and libevent's timers, as the bridge's tests
 * on the real clock do.
 */
#ifndef TCLOCK_H
#define TCLOCK_H

#include <sys/queue.h>

#include <stdbool.h>
#include <stdint.h>

struct ttimer {
	uint64_t		 at;	/* us on the clock */
	bool			 on;
	void			 (*fn)(void *);
	void			*arg;
	TAILQ_ENTRY(ttimer)	 entry;
};

struct tclock {
	uint64_t		 now_us;
	TAILQ_HEAD(, ttimer)	 timers;
};

void		 tclock_init(struct tclock *, uint64_t start_us);
/* Now in microseconds: the fake clock's, or CLOCK_MONOTONIC's if NULL. */
uint64_t	 tclock_now(const struct tclock *);
void		 ttimer_init(struct ttimer *, void (*fn)(void *), void *arg);
/* (Re)arms t to fire at `at' (absolute us). */
void		 ttimer_at(struct tclock *, struct ttimer *, uint64_t at);
void		 ttimer_del(struct tclock *, struct ttimer *);
/* The earliest armed timer, UINT64_MAX if none. */
uint64_t	 tclock_next(const struct tclock *);
/*
 * Runs the earliest timer due at now; false if none is.  One at a time,
 * so the test's loop can deliver frames between two timers.
 */
bool		 tclock_fire_one(struct tclock *);

#endif /* TCLOCK_H */
