/*
 * ub_test.c: see ub_test.h.
 */
#include <sys/time.h>

#include <stdint.h>
#include <time.h>

#include <event2/event.h>

#include "ub_test.h"

uint64_t
ubt_now_ms(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000);
}

uint64_t
ubt_host_now_ms(void *arg)
{
	return (ubt_now_ms());
}

static void
ubt_break_cb(evutil_socket_t fd, short what, void *arg)
{
	event_base_loopbreak(arg);
}

void
ubt_run_ms(struct event_base *base, unsigned int ms)
{
	struct event	*ev;
	struct timeval	 tv = { ms / 1000, (suseconds_t)(ms % 1000) * 1000 };

	ev = evtimer_new(base, ubt_break_cb, base);
	evtimer_add(ev, &tv);
	event_base_dispatch(base);
	event_free(ev);
}
