/*
 * poll.c: polled links (TP_CAP_POLLED: Modbus RTU, Modbus TCP, any link
 * where a node may not speak first), docs/engine.md "Link shapes".
 *
 * On such a link nothing arrives unless the gateway asks the node for
 * it (Modbus: reads its outbox registers), so the engine never waits in
 * a window for answers nobody was asked for: every window is a poll
 * schedule.  A poll is a link operation like a frame: it waits in the
 * link's poll queue (after the control frames, before data), the pacer
 * charges its time on the link (ops->poll_time() before, the airtime in
 * tx_done after), and its end comes as tx_done(cookie): the answer, if
 * the node had one, arrived by rx() before.
 *
 * Who waits on a poll is what decides the next one:
 *  - a member served alone waiting for its answer (unicast.c): polled
 *    at once when its request has left, again after 20, 40, ... up to
 *    1,000 ms while its answer is not in and its wait lasts, at once
 *    when the last poll brought another frame (its outbox may hold
 *    more);
 *  - a session-level round (the OFFER round of a polled bus before its
 *    pass to all): each asked member is polled until it answered, at
 *    most ENG_TRIES times, and the round ends when the last poll of the
 *    last member is over, not when a window expires;
 *  - a discovery visit (peer.c): polled until its ANNOUNCE is in.
 * Peers hold their poll state (struct eng_peer), the link its queues.
 */
#include <sys/queue.h>

#include <string.h>

#include "engine_internal.h"

#define POLL_GAP_MS	20	/* after an empty poll of a round or visit */

void
eng__poll(struct eng_peer *p, uint64_t at)
{
	struct eng_link	*l = p->l;

	if (p->pq == ENG_PQ_FLY)
		return;		/* its end decides what follows */
	if (p->pq == ENG_PQ_WAIT) {
		if (at < p->poll_at)
			p->poll_at = at;
	} else {
		p->pq = ENG_PQ_WAIT;
		p->poll_at = at;
		TAILQ_INSERT_TAIL(&l->pollq, p, pentry);
	}
	if (at <= eng__now_us(l->e))
		eng__kick(l);
	else
		eng__touch(l->e);
}

void
eng__poll_cancel(struct eng_peer *p)
{
	struct eng_link	*l = p->l;

	if (p->pq == ENG_PQ_WAIT)
		TAILQ_REMOVE(&l->pollq, p, pentry);
	else if (p->pq == ENG_PQ_FLY)
		TAILQ_REMOVE(&l->pollfly, p, pentry);
	p->pq = ENG_PQ_NONE;
}

struct eng_peer *
eng__poll_next(struct eng_link *l, uint64_t now)
{
	struct eng_peer	*p;

	TAILQ_FOREACH(p, &l->pollq, pentry)
		if (p->poll_at <= now) {
			TAILQ_REMOVE(&l->pollq, p, pentry);
			p->pq = ENG_PQ_NONE;
			return (p);
		}
	return (NULL);
}

uint64_t
eng__poll_deadline(const struct eng_link *l)
{
	const struct eng_peer	*p;
	uint64_t		 d = ENG_NEVER;

	if (!l->up || l->pacer.blocked)
		return (ENG_NEVER);
	TAILQ_FOREACH(p, &l->pollq, pentry)
		if (p->poll_at < d)
			d = p->poll_at;
	return (d);
}

void
eng__poll_sent(struct eng_peer *p, uint64_t cookie, uint32_t est)
{
	struct eng_link	*l = p->l;

	p->pq = ENG_PQ_FLY;
	p->poll_cookie = cookie;
	p->poll_est = est;
	p->poll_rx = false;
	TAILQ_INSERT_TAIL(&l->pollfly, p, pentry);
	l->polls++;
	if (p->m != NULL)
		p->m->s->polls++;
	else if (p->rm != NULL)
		p->rm->s->polls++;
}

/* ------------------------------------------------------------------ */
/* Rounds                                                               */

/* The member still owes the round its answer. */
static bool
poll_round_waits(const struct eng_member *m)
{
	if (m->gone || !m->s->poll_round)
		return (false);
	if (m->s->phase == ENG_P_OFFER)
		return (m->state == ENG_M_OFFERED);
	return (m->asked && !m->answered);
}

static void
poll_round_left(struct eng_session *s)
{
	if (!s->poll_round || s->round_polls == 0)
		return;
	if (--s->round_polls == 0) {
		/* Every asked node was heard or polled enough: go on. */
		s->poll_round = false;
		s->timer_at = 0;
		eng__touch(s->e);
	}
}

static void
poll_round_step(struct eng_peer *p)
{
	struct eng_member	*m = p->rm;
	uint64_t		 now = eng__now_us(p->l->e), gap;

	if (poll_round_waits(m) && ++p->rpolls < ENG_TRIES) {
		gap = p->poll_rx ? 0 : (uint64_t)POLL_GAP_MS << p->rpolls;
		eng__poll(p, now + gap * 1000);
		return;
	}
	p->rm = NULL;
	poll_round_left(m->s);
}

void
eng__poll_round(struct eng_session *s, enum eng_mstate st)
{
	struct eng_link		*l = s->l;
	struct eng_member	*m;
	struct eng_peer		*p;
	uint64_t		 now = eng__now_us(s->e), safety;

	s->round_polls = 0;
	s->poll_round = true;
	TAILQ_FOREACH(m, &s->members, entry) {
		if (m->state != st || m->gone || m->addr.len == 0 ||
		    (p = eng__peer_get(l, &m->addr)) == NULL || p->m != NULL)
			continue;
		if (p->rm == NULL || p->rm->s != s)
			s->round_polls++;
		p->rm = m;
		p->rpolls = 0;
		eng__poll(p, now);
	}
	if (s->round_polls == 0) {
		s->poll_round = false;
		eng__arm(s, 0);
		return;
	}
	/*
	 * Polls end with tx_done; should a plugin never report one, the
	 * phase still goes on after this long.
	 */
	safety = eng__window(s) + eng__margin(s) + (uint64_t)s->round_polls *
	    ENG_TRIES * (l->caps.response_ms + POLL_GAP_MS * 8 + 100);
	eng__arm(s, safety);
}

void
eng__poll_round_end(struct eng_session *s)
{
	struct eng_link	*l = s->l;
	size_t		 i;

	s->poll_round = false;
	s->round_polls = 0;
	if (l == NULL)
		return;
	for (i = 0; i < l->npeers; i++)
		if (l->peers[i] != NULL && l->peers[i]->rm != NULL &&
		    l->peers[i]->rm->s == s)
			l->peers[i]->rm = NULL;
}

/* ------------------------------------------------------------------ */
/* The end of a poll                                                    */

bool
eng__poll_done(struct eng_link *l, uint64_t cookie, int status,
    uint32_t airtime_us)
{
	struct eng_peer	*p;
	uint64_t	 now = eng__now_us(l->e);

	TAILQ_FOREACH(p, &l->pollfly, pentry)
		if (p->poll_cookie == cookie)
			break;
	if (p == NULL)
		return (false);
	TAILQ_REMOVE(&l->pollfly, p, pentry);
	p->pq = ENG_PQ_NONE;
	pacer__tx_done(&l->pacer, true, p->poll_band, p->poll_slot,
	    p->poll_est, airtime_us);
	if (!p->poll_rx)
		l->polls_empty++;
	if (status != TP_OK)
		eng__debug("%s: poll failed: %d", l->name, status);
	if (p->rm != NULL && status == TP_EBUSY)
		(void)eng__busy(p->rm);		/* alive: not silent */
	if (p->m != NULL && status == TP_EBUSY)
		eng__u_busy(p->m, ENG_UB_POLL);	/* polled again later */
	else if (p->m != NULL)
		eng__u_poll_empty(p->m);	/* no-op once it answered */
	else if (p->visit && now + POLL_GAP_MS * 1000 < p->visit_at)
		eng__poll(p, now + (p->poll_rx ? 0 : POLL_GAP_MS * 1000));
	if (p->rm != NULL)
		poll_round_step(p);
	eng__kick(l);
	return (true);
}
