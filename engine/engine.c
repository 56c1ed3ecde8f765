/*
 * engine.c: the engine object, its clock and its one deadline.
 *
 * Time.  The engine reads time only through the clock the daemon gave it
 * (struct eng_clock) and keeps every timer as a deadline in a struct:
 * a session's phase timer and result timer (eng_session), a link's
 * transmit loop and next DISCOVER (eng_link).  eng_next_deadline() is the
 * earliest of them; whenever it may have moved, the engine hands it to
 * clock->arm(), and the daemon calls eng_run() when it comes.  The daemon
 * arms one libevent timer for it (bridge/fanout.c); a test advances a
 * fake clock to it and calls eng_run() (tests/unit/engine/), so the whole
 * engine runs deterministically and without waiting.  Why not a libevent
 * timer per session and link, as before: every timer would then read the
 * system clock through libevent, and no test could drive a 10-hour duty
 * cycle or a 30-second result back-off except in real time.  The cost of
 * one deadline is a walk over the sessions and links when it is
 * recomputed (tens of them), not per frame.
 *
 * Callbacks.  The daemon hears from the engine only from the engine's
 * own entry points, eng_run() and the plugins' callbacks (link.c),
 * bracketed by eng__enter/eng__leave.  A daemon call that would cause a
 * callback (starting or poking a session) sets a flag on the session and
 * makes the deadline "now": the work runs in the next eng_run().  The
 * callbacks that end a piece of work, session_settled and session_error,
 * are deferred to eng__leave, where nothing of the engine is in use on
 * the stack: the daemon may stop or close sessions there.  A member the
 * daemon removes while the engine is busy is unlinked from its session's
 * hash and counts at once, and freed in eng__leave.
 */
#include <sys/queue.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_internal.h"

/* ------------------------------------------------------------------ */
/* Small helpers                                                        */

void *
eng__xcalloc(size_t n, size_t size)
{
	void	*p;

	if (n == 0 || size == 0)
		n = size = 1;
	if ((p = calloc(n, size)) == NULL) {
		eng__warnx("engine: out of memory (%zu x %zu bytes)", n, size);
		abort();
	}
	return (p);
}

void *
eng__xreallocarray(void *p, size_t n, size_t size)
{
	void	*q;

	if (n == 0 || size == 0)
		n = size = 1;
	if (size != 0 && n > SIZE_MAX / size) {
		eng__warnx("engine: %zu x %zu bytes overflows", n, size);
		abort();
	}
	if ((q = realloc(p, n * size)) == NULL) {
		eng__warnx("engine: out of memory (%zu x %zu bytes)", n, size);
		abort();
	}
	return (q);
}

void
eng__strlcpy(char *dst, const char *src, size_t size)
{
	size_t	 n = strlen(src);

	if (size == 0)
		return;
	if (n >= size)
		n = size - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

uint64_t
eng__now_us(struct eng *e)
{
	return (e->clock.now_us(e->clock.arg));
}

uint64_t
eng__now_ms(struct eng *e)
{
	return (eng__now_us(e) / 1000);
}

/* ------------------------------------------------------------------ */
/* The deadline                                                         */

uint64_t
eng_next_deadline(struct eng *e)
{
	struct eng_session	*s;
	uint64_t		 d = ENG_NEVER, x;
	size_t			 i;

	if (e->pending)
		return (0);
	for (i = 0; i < e->nlinks; i++)
		if ((x = eng__link_deadline(e->links[i])) < d)
			d = x;
	TAILQ_FOREACH(s, &e->sessions, entry)
		if ((x = eng__session_deadline(s)) < d)
			d = x;
	return (d);
}

static void
eng_rearm(struct eng *e)
{
	uint64_t	 d = eng_next_deadline(e);

	if (d == e->armed)
		return;
	e->armed = d;
	e->clock.arm(e->clock.arg, d);
}

void
eng__touch(struct eng *e)
{
	if (e->busy == 0)
		eng_rearm(e);
}

void
eng__enter(struct eng *e)
{
	e->busy++;
}

/* Fires the deferred callbacks until none is left. */
static void
eng_post(struct eng *e)
{
	struct eng_session	*s;
	bool			 again = true;

	if (!e->post)
		return;
	e->posting = true;
	while (again) {
		again = false;
		e->post = false;
		TAILQ_FOREACH(s, &e->sessions, entry) {
			if (s->error_pending) {
				s->error_pending = false;
				e->cb.session_error(e->cb.arg, s);
				again = true;
				break;	/* the list may have changed */
			}
			if (s->settle_pending) {
				s->settle_pending = false;
				e->cb.session_settled(e->cb.arg, s);
				again = true;
				break;
			}
		}
	}
	e->posting = false;
}

void
eng__leave(struct eng *e)
{
	struct eng_member	*m;

	if (e->busy == 1 && !e->posting) {
		eng_post(e);
		while ((m = TAILQ_FIRST(&e->graveyard)) != NULL) {
			TAILQ_REMOVE(&e->graveyard, m, gentry);
			TAILQ_REMOVE(&m->s->members, m, entry);
			free(m);
		}
	}
	if (--e->busy == 0)
		eng_rearm(e);
}

void
eng_run(struct eng *e)
{
	struct eng_session	*s, *next;
	uint64_t		 now;
	size_t			 i;

	eng__enter(e);
	e->armed = ENG_NEVER;	/* the daemon's timer has fired */
	if (e->pending) {
		e->pending = false;
		TAILQ_FOREACH_SAFE(s, &e->sessions, entry, next) {
			if (s->start_pending) {
				s->start_pending = false;
				s->poke_pending = false;
				eng__session_start_now(s);
			} else if (s->poke_pending) {
				s->poke_pending = false;
				eng__session_poke_now(s);
			}
		}
	}
	now = eng__now_us(e);
	TAILQ_FOREACH_SAFE(s, &e->sessions, entry, next) {
		if (s->frozen_us != 0)
			continue;	/* its link is down */
		if (s->nuactive > 0)
			eng__u_run(s, now);
		if (s->timer_at <= now) {
			s->timer_at = ENG_NEVER;
			eng__phase_timer(s);
		}
		if (s->rtimer_at <= now) {
			s->rtimer_at = ENG_NEVER;
			eng__result_timer(s);
		}
	}
	for (i = 0; i < e->nlinks; i++)
		eng__link_run(e->links[i], now);
	eng__leave(e);
}

/* ------------------------------------------------------------------ */
/* The engine                                                           */

struct eng *
eng_new(struct event_base *base, const struct eng_clock *clock,
    const struct eng_cb *cb, const struct eng_params *defaults)
{
	struct eng	*e;

	e = eng__xcalloc(1, sizeof(*e));
	e->base = base;
	e->clock = *clock;
	e->cb = *cb;
	e->defaults = *defaults;
	e->armed = ENG_NEVER;
	TAILQ_INIT(&e->sessions);
	TAILQ_INIT(&e->graveyard);
	return (e);
}

void
eng_free(struct eng *e)
{
	struct eng_session	*s;
	size_t			 i;

	if (e == NULL)
		return;
	while ((s = TAILQ_FIRST(&e->sessions)) != NULL)
		eng_session_free(s);
	for (i = 0; i < e->nlinks; i++)
		eng__link_close(e->links[i]);
	if (e->armed != ENG_NEVER)
		e->clock.arm(e->clock.arg, ENG_NEVER);
	free(e);
}

void
eng_set_params(struct eng *e, const struct eng_params *p)
{
	size_t	 i;

	e->defaults = *p;
	for (i = 0; i < e->nlinks; i++)
		eng_link_set_params(e->links[i], p);
}

void
eng_stats(struct eng *e, struct eng_stats *st)
{
	*st = e->stats;
}
