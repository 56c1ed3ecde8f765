/*
 * airlog.h: a duty-cycle ledger kept by the tests themselves, to check
 * the engine's (engine/duty.c) from outside: every frame a transmitter
 * sent, one after the other, with its time on air, and the most airtime
 * any window of the regulation's length holds (a sliding window, as
 * ETSI EN 300 220 counts it).
 */
#ifndef AIRLOG_H
#define AIRLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct airlog {
	struct airlog_frame {
		uint64_t	 start;	/* us */
		uint32_t	 air;	/* us */
	}		*f;
	size_t		 n;
	size_t		 cap;
	uint64_t	 window;	/* us */
	uint64_t	 budget;	/* us of airtime per window */
	/* Checked at every frame: the window that ends where it ends. */
	size_t		 lo;
	uint64_t	 sum;
	uint64_t	 worst;		/* most airtime in such a window */
	bool		 over;		/* ... above the budget */
	uint64_t	 total;
};

void		 airlog_init(struct airlog *, uint64_t window_us,
		    uint32_t ppm);
void		 airlog_free(struct airlog *);
/* A frame went on the air at start for air us (in order). */
void		 airlog_add(struct airlog *, uint64_t start, uint32_t air);
/* The most airtime in any window, over every frame logged. */
uint64_t	 airlog_max(const struct airlog *);

#endif /* AIRLOG_H */
