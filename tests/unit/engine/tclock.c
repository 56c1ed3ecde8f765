/*
 * tclock.c: the fake clock (see tclock.h).
 */
#include <sys/queue.h>

#include <stdint.h>
#include <time.h>

#include "tclock.h"

void
tclock_init(struct tclock *c, uint64_t start_us)
{
	c->now_us = start_us;
	TAILQ_INIT(&c->timers);
}

uint64_t
tclock_now(const struct tclock *c)
{
	struct timespec	 ts;

	if (c != NULL)
		return (c->now_us);
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000);
}

void
ttimer_init(struct ttimer *t, void (*fn)(void *), void *arg)
{
	t->at = UINT64_MAX;
	t->on = false;
	t->fn = fn;
	t->arg = arg;
}

void
ttimer_del(struct tclock *c, struct ttimer *t)
{
	if (t->on) {
		TAILQ_REMOVE(&c->timers, t, entry);
		t->on = false;
	}
	t->at = UINT64_MAX;
}

void
ttimer_at(struct tclock *c, struct ttimer *t, uint64_t at)
{
	ttimer_del(c, t);
	t->at = at;
	t->on = true;
	TAILQ_INSERT_TAIL(&c->timers, t, entry);
}

uint64_t
tclock_next(const struct tclock *c)
{
	const struct ttimer	*t;
	uint64_t		 at = UINT64_MAX;

	TAILQ_FOREACH(t, &c->timers, entry)
		if (t->at < at)
			at = t->at;
	return (at);
}

bool
tclock_fire_one(struct tclock *c)
{
	struct ttimer	*t, *due = NULL;

	TAILQ_FOREACH(t, &c->timers, entry)
		if (t->at <= c->now_us && (due == NULL || t->at < due->at))
			due = t;
	if (due == NULL)
		return (false);
	ttimer_del(c, due);
	due->fn(due->arg);
	return (true);
}
