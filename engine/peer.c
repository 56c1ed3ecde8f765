/*
 * peer.c: the peers of a link, the slots of members served alone, and
 * the fair queue in front of them (docs/engine.md, "Link shapes").
 *
 * Peers.  A link whose nodes are reached one by one keeps a peer per
 * node address: a connection of a TP_CAP_CONNECT link (BLE, Modbus TCP)
 * with its own MTU (an ATT MTU is per connection: 23 until the exchange,
 * then up to 247), a node a polled link or a discovering link listed
 * (TP_PEER_FOUND), or simply the address of a member served alone.  The
 * table holds at most ENG_PEERS_MAX peers; an idle one is forgotten to
 * make room.  A peer's index is stable for its life, so it travels in
 * the low 16 bits of a frame's tx cookie and tx_done finds it again.
 *
 * Slots.  At most `slots' members are served alone at once on a link:
 * its max_peers (a BLE controller's connection limit), else the
 * profile's unicast_slots.  Every other member that needs serving waits
 * in the link's queue, one queue for every session on the link, first
 * in first out: a member joins at the end when it needs serving and
 * again at the end when its connection drops or its turn is over (a
 * result visit that came too early), so no member waits for more than
 * the members ahead of it.  A member is never preempted: its turn ends
 * when it has nothing left to do now (verified, activated, final) or
 * its connection drops.  Memory: a member served alone holds its exact
 * needed set (nblocks bits) only while it holds a slot.
 *
 * Connections (TP_CAP_CONNECT).  A member that gets a slot gets its
 * peer connected (connect(), then TP_PEER_UP with the connection's MTU)
 * and keeps it until its turn ends; then its last frames go and the
 * engine disconnects.  A peer that drops mid-transfer puts its member
 * back at the end of the queue: it resumes from the node's own bitmap
 * (its ACCEPT or STATUS) when its turn comes again.  Connects that fail
 * ENG_TRIES times in a row with no answer in between write the member
 * off; it comes back (member_revive) when the node is heard again.
 *
 * Visits.  On a link where a DISCOVER to all does not reach every node
 * (connect, polled, unicast-only), a peer the plugin found
 * (TP_PEER_FOUND: scanned, probed, listed by a module) and never visited,
 * or not for discover_interval_s, gets a visit when a slot is free and
 * no member waits: connect, a unicast DISCOVER, its ANNOUNCE (polled
 * for on a polled link), disconnect.  The ANNOUNCE goes to the daemon
 * as on any link.
 *
 * Every plugin op (connect, disconnect) is called from eng_run(), never
 * from inside a plugin's callback: callbacks only change state and make
 * the link due.
 */
#include <sys/queue.h>

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "engine_internal.h"

#define PEER_CONNECT_MS	10000	/* a connect() with no answer */

static const char *const pstate_names[] = {
	"idle", "connecting", "up", "closing"
};

const char *
eng__pstate_str(enum eng_pstate st)
{
	if ((size_t)st >= sizeof(pstate_names) / sizeof(pstate_names[0]))
		return ("?");
	return (pstate_names[st]);
}

static bool
peer_connects(const struct eng_link *l)
{
	return ((l->caps.flags & TP_CAP_CONNECT) != 0 &&
	    l->ops->connect != NULL);
}

/* The link is due now: the tx loop, the scheduler. */
static void
peer_due(struct eng_link *l)
{
	l->sched_at = 0;
	eng__touch(l->e);
}

/* ------------------------------------------------------------------ */
/* The table                                                            */

struct eng_peer *
eng__peer_find(struct eng_link *l, const struct tp_addr *a)
{
	size_t	 i;

	if (a == NULL || a->len == 0 || (a->flags & TP_ADDR_F_BROADCAST) != 0)
		return (NULL);
	for (i = 0; i < l->npeers; i++)
		if (l->peers[i] != NULL && tp_addr_eq(&l->peers[i]->addr, a))
			return (l->peers[i]);
	return (NULL);
}

static bool
peer_idle(const struct eng_peer *p)
{
	return (p->state == ENG_PS_IDLE && p->m == NULL && !p->visit &&
	    p->rm == NULL && p->pq == ENG_PQ_NONE && p->queued == 0 &&
	    p->inflight == 0);
}

struct eng_peer *
eng__peer_get(struct eng_link *l, const struct tp_addr *a)
{
	struct eng_peer	*p, *old = NULL;
	size_t		 i, free_i = SIZE_MAX, live = 0;

	if ((p = eng__peer_find(l, a)) != NULL)
		return (p);
	if (a == NULL || a->len == 0 || (a->flags & TP_ADDR_F_BROADCAST) != 0)
		return (NULL);
	for (i = 0; i < l->npeers; i++) {
		if ((p = l->peers[i]) == NULL) {
			if (free_i == SIZE_MAX)
				free_i = i;
			continue;
		}
		live++;
		if (peer_idle(p) && (old == NULL || p->used_ms < old->used_ms))
			old = p;
	}
	if (live >= ENG_PEERS_MAX) {
		if (old == NULL) {
			eng__warnx("%s: %d peers in use, no room for another",
			    l->name, ENG_PEERS_MAX);
			return (NULL);
		}
		/* The idle peer unused longest makes room. */
		free_i = old->idx;
		free(old->seg_buf);
		free(old);
		l->peers[free_i] = NULL;
	}
	if (free_i == SIZE_MAX) {
		if (l->npeers == l->cpeers) {
			l->cpeers = l->cpeers != 0 ? l->cpeers * 2 : 16;
			l->peers = eng__xreallocarray(l->peers, l->cpeers,
			    sizeof(*l->peers));
		}
		free_i = l->npeers++;
	}
	p = eng__xcalloc(1, sizeof(*p));
	p->l = l;
	p->idx = (uint32_t)free_i;
	p->addr = *a;
	p->rssi_dbm = INT16_MAX;
	p->used_ms = eng__now_ms(l->e);
	l->peers[free_i] = p;
	return (p);
}

size_t
eng__dst_mtu(struct eng_link *l, const struct tp_addr *dst)
{
	struct eng_peer	*p;
	size_t		 mtu = eng__link_mtu(l);

	if (dst == NULL || !peer_connects(l) ||
	    (p = eng__peer_find(l, dst)) == NULL || p->mtu == 0)
		return (mtu);
	return (p->mtu < mtu ? p->mtu : mtu);
}

void
eng__peers_free(struct eng_link *l)
{
	size_t	 i;

	for (i = 0; i < l->npeers; i++) {
		if (l->peers[i] != NULL)
			free(l->peers[i]->seg_buf);
		free(l->peers[i]);
	}
	free(l->peers);
	l->peers = NULL;
	l->npeers = l->cpeers = 0;
}

/* ------------------------------------------------------------------ */
/* Slots and the queue                                                  */

void
eng__slots(struct eng_link *l)
{
	if (l->caps.max_peers != 0)
		l->slots = l->caps.max_peers;
	else
		l->slots = l->p.unicast_slots != 0 ? l->p.unicast_slots :
		    ENG_USLOTS;
	peer_due(l);
}

void
eng__uqueue(struct eng_member *m, uint64_t nb_us)
{
	struct eng_link	*l = m->s->l;

	if (l == NULL || m->gone || m->ustep != ENG_U_NONE)
		return;
	m->ustep = ENG_U_QUEUED;
	m->u_nb = nb_us;
	TAILQ_INSERT_TAIL(&l->uqueue, m, qentry);
	l->nqueued++;
	m->s->nuqueued++;
	if (nb_us < l->sched_at)
		l->sched_at = nb_us;
	eng__touch(l->e);
}

void
eng__udequeue(struct eng_member *m)
{
	struct eng_link	*l = m->s->l;

	if (m->ustep != ENG_U_QUEUED || l == NULL)
		return;
	TAILQ_REMOVE(&l->uqueue, m, qentry);
	l->nqueued--;
	m->s->nuqueued--;
	m->ustep = ENG_U_NONE;
}

/* Takes a slot for p. */
static void
peer_take(struct eng_peer *p)
{
	if (!p->slot) {
		p->slot = true;
		p->l->nslots++;
	}
	if (p->state == ENG_PS_CLOSING) {
		/* Its connection is still up: the next user keeps it. */
		p->state = ENG_PS_UP;
		p->l->nclosing--;
		p->disc = false;
	}
}

static void
peer_untake(struct eng_peer *p)
{
	if (p->slot) {
		p->slot = false;
		p->l->nslots--;
	}
}

/*
 * Connects p for its user.  Returns 0 when it is connected or
 * connecting, 1 when the plugin has no free connection now (TP_EAGAIN:
 * try again after a TP_PEER_DOWN), -1 when it refused.
 */
static int
peer_connect(struct eng_peer *p)
{
	struct eng_link	*l = p->l;
	int		 rc;

	if (!peer_connects(l) || p->state == ENG_PS_UP ||
	    p->state == ENG_PS_CONNECTING)
		return (0);
	rc = l->ops->connect(l->tp, &p->addr);
	if (rc == TP_OK) {
		p->state = ENG_PS_CONNECTING;
		return (0);
	}
	if (rc == TP_EAGAIN)
		return (1);
	p->fails++;
	eng__debug("%s: connect refused: %d", l->name, rc);
	return (-1);
}

/* A visit: DISCOVER to the peer, then its ANNOUNCE (polled for). */
static void
peer_visit_send(struct eng_peer *p)
{
	struct eng_link	*l = p->l;
	struct up_msg	 m;
	uint64_t	 now = eng__now_us(l->e), w;

	memset(&m, 0, sizeof(m));
	m.type = UP_T_DISCOVER;
	m.u.discover.window_ms = 0;	/* alone on the link: at once */
	eng__ctrl(l, NULL, &p->addr, &m);
	w = l->pf.status_window_ms;
	if (l->caps.response_ms > w)
		w = l->caps.response_ms;
	p->visit_at = now + (w + 100 + w / 4) * 1000 * ENG_TRIES;
	if (p->visit_at < l->visit_at)
		l->visit_at = p->visit_at;
	if ((l->caps.flags & TP_CAP_POLLED) != 0)
		eng__poll(p, now);
}

/*
 * The visit is over: answered (its ANNOUNCE came), or not.  A peer is
 * visited when it is found, and then every discover_s; one that did not
 * answer (a Modbus TCP server that was not listening yet when the
 * daemon started, a node rebooting, an ANNOUNCE lost) would otherwise
 * stay unknown until then, or for ever on a link that reports each peer
 * found once: it is visited again after 1, 2, 4 ... 32 s.
 */
static void
peer_visit_end(struct eng_peer *p, bool answered)
{
	struct eng_link	*l = p->l;
	uint64_t	 now = eng__now_us(l->e);

	if (!p->visit)
		return;
	p->visit = false;
	p->visit_at = ENG_NEVER;
	if (answered) {
		p->visited_ms = eng__now_ms(l->e);
		p->visit_fails = 0;
	} else {
		p->visit_nb = now + ((uint64_t)ENG_RETRY_MS << p->visit_fails) *
		    1000;
		if (p->visit_fails < 5)
			p->visit_fails++;
		p->visit_want = true;
		if (p->visit_nb < l->sched_at)
			l->sched_at = p->visit_nb;
		eng__touch(l->e);
	}
	eng__peer_release(p);
}

/*
 * Gives m a slot: its peer, connected on a connect link.  false when
 * it cannot have one now (its peer is busy with another session's
 * member, the plugin has no free connection).
 */
static bool
sched_member(struct eng_link *l, struct eng_member *m, bool *stop)
{
	struct eng_session	*s = m->s;
	struct eng_peer		*p;
	int			 rc;

	if ((p = eng__peer_get(l, &m->addr)) == NULL)
		return (false);
	if (p->m != NULL || p->visit)
		return (false);		/* another session's turn on it */
	eng__udequeue(m);
	peer_take(p);
	p->m = m;
	m->peer = p;
	p->used_ms = eng__now_ms(l->e);
	TAILQ_INSERT_TAIL(&s->uactive, m, aentry);
	s->nuactive++;
	m->ustep = ENG_U_CONNECT;
	m->u_at = ENG_NEVER;
	if ((rc = peer_connect(p)) == 1) {
		/* No free connection: first in the queue again, later. */
		TAILQ_REMOVE(&s->uactive, m, aentry);
		s->nuactive--;
		p->m = NULL;
		m->peer = NULL;
		peer_untake(p);
		m->ustep = ENG_U_QUEUED;
		TAILQ_INSERT_HEAD(&l->uqueue, m, qentry);
		l->nqueued++;
		s->nuqueued++;
		*stop = true;
		return (false);
	}
	if (rc == -1) {
		eng__u_peer_down(m, true);
		return (true);
	}
	if (p->state == ENG_PS_CONNECTING)
		m->u_at = eng__now_us(l->e) + PEER_CONNECT_MS * 1000;
	else
		eng__u_begin(m);
	return (true);
}

static bool
sched_visit(struct eng_link *l, struct eng_peer *p, bool *stop)
{
	int	 rc;

	peer_take(p);
	p->visit = true;
	p->visit_want = false;
	p->used_ms = eng__now_ms(l->e);
	if ((rc = peer_connect(p)) == 1) {
		p->visit = false;
		p->visit_want = true;
		peer_untake(p);
		*stop = true;
		return (false);
	}
	if (rc == -1) {
		peer_visit_end(p, false);
		return (true);
	}
	if (p->state == ENG_PS_CONNECTING) {
		p->visit_at = eng__now_us(l->e) + PEER_CONNECT_MS * 1000;
		if (p->visit_at < l->visit_at)
			l->visit_at = p->visit_at;
	} else
		peer_visit_send(p);
	return (true);
}

void
eng__sched(struct eng_link *l)
{
	struct eng_member	*m, *next;
	uint64_t		 now = eng__now_us(l->e), nb = ENG_NEVER;
	size_t			 i;
	bool			 stop = false;

	l->sched_at = ENG_NEVER;
	if (!l->up || l->tp == NULL)
		return;
	/*
	 * Result visits first: short (a VERIFY, its RESULT), bounded (until
	 * the member's result deadline), and a rebooted node cannot tell
	 * its result until it is visited.
	 */
	TAILQ_FOREACH_SAFE(m, &l->uqueue, qentry, next) {
		if (l->nslots >= l->slots || stop)
			break;
		if (m->state != ENG_M_ACTIVATING || m->u_nb > now ||
		    m->s->frozen_us != 0 || !eng__runnable(m->s))
			continue;
		sched_member(l, m, &stop);
	}
	TAILQ_FOREACH_SAFE(m, &l->uqueue, qentry, next) {
		if (l->nslots >= l->slots || stop)
			break;
		if (m->u_nb > now) {
			if (m->u_nb < nb)
				nb = m->u_nb;
			continue;
		}
		if (m->s->frozen_us != 0 || !eng__runnable(m->s))
			continue;
		sched_member(l, m, &stop);
	}
	/* Visits when no member waits for a slot. */
	for (i = 0; i < l->npeers && !stop; i++) {
		if (l->nslots >= l->slots)
			break;
		if (l->peers[i] == NULL || !l->peers[i]->visit_want ||
		    l->peers[i]->m != NULL || l->peers[i]->visit)
			continue;
		if (l->peers[i]->visit_nb > now) {
			/* A visit without an answer, made again later. */
			if (l->peers[i]->visit_nb < nb)
				nb = l->peers[i]->visit_nb;
			continue;
		}
		sched_visit(l, l->peers[i], &stop);
	}
	if (l->nslots < l->slots && !stop)
		l->sched_at = nb;
}

/* ------------------------------------------------------------------ */
/* Its user is done with it                                             */

void
eng__peer_release(struct eng_peer *p)
{
	struct eng_link	*l = p->l;

	p->m = NULL;
	p->visit = false;
	p->used_ms = eng__now_ms(l->e);
	if (p->pq == ENG_PQ_WAIT)
		eng__poll_cancel(p);
	peer_untake(p);
	if (peer_connects(l) && (p->state == ENG_PS_UP ||
	    p->state == ENG_PS_CONNECTING)) {
		/* Its last frames go first (eng__peer_idle). */
		p->state = ENG_PS_CLOSING;
		p->disc = false;
		l->nclosing++;
	}
	peer_due(l);
	eng__kick(l);
}

/* Disconnects the closing peers whose frames are out. */
void
eng__peer_idle(struct eng_link *l)
{
	struct eng_peer	*p;
	size_t		 i;

	if (l->nclosing == 0 || l->tp == NULL)
		return;
	for (i = 0; i < l->npeers; i++) {
		if ((p = l->peers[i]) == NULL || p->state != ENG_PS_CLOSING ||
		    p->disc || p->queued > 0 ||
		    (l->pend_len != 0 && tp_addr_eq(&l->pend_dst, &p->addr)) ||
		    (l->pacer.track_inflight && p->inflight > 0))
			continue;
		p->disc = true;
		l->ops->disconnect(l->tp, &p->addr);
	}
}

/* ------------------------------------------------------------------ */
/* Frames                                                               */

void
eng__peer_queued(struct eng_link *l, const struct tp_addr *dst, int d)
{
	struct eng_peer	*p;

	if ((p = eng__peer_find(l, dst)) == NULL)
		return;
	if (d > 0)
		p->queued++;
	else if (p->queued > 0)
		p->queued--;
}

void
eng__peer_sent(struct eng_peer *p, size_t len)
{
	p->inflight++;
	p->tx_frames++;
	p->tx_bytes += len;
	p->used_ms = eng__now_ms(p->l->e);
}

void
eng__peer_tx_done(struct eng_link *l, uint64_t cookie, int status)
{
	struct eng_peer	*p;
	uint32_t	 i = (uint32_t)(cookie & 0xffff);

	if (i == 0 || i - 1 >= l->npeers || (p = l->peers[i - 1]) == NULL)
		return;
	if (p->inflight > 0)
		p->inflight--;
	if (p->m != NULL && status == TP_EBUSY)
		eng__u_busy(p->m, p->m->u_cookie == cookie ? ENG_UB_REQUEST :
		    ENG_UB_FRAME);
	else if (p->m != NULL && status == TP_OK &&
	    (l->caps.flags & TP_CAP_LINK_ACK) != 0) {
		/* It took a frame: not busy any more. */
		p->m->busy_since_ms = 0;
		p->m->busy_gap_ms = 0;
	}
	if (p->m != NULL && (p->m->ustep == ENG_U_ACKED ||
	    p->m->ustep == ENG_U_ACTIVATE) && p->m->u_cookie == cookie)
		eng__u_ack_done(p->m, status);
	if (p->state == ENG_PS_CLOSING)
		peer_due(l);
}

void
eng__peer_rx(struct eng_link *l, const struct tp_addr *src,
    const struct up_msg *m)
{
	struct eng_peer	*p;

	if ((p = eng__peer_find(l, src)) == NULL)
		return;
	p->rx_frames++;
	p->used_ms = eng__now_ms(l->e);
	if (p->pq == ENG_PQ_FLY)
		p->poll_rx = true;
	if (p->visit && m != NULL && m->type == UP_T_ANNOUNCE)
		peer_visit_end(p, true);
}

/* ------------------------------------------------------------------ */
/* Events                                                               */

/* A found peer deserves a visit: never visited, or not for a while. */
static bool
peer_wants_visit(const struct eng_link *l, const struct eng_peer *p)
{
	uint64_t	 now = eng__now_ms(l->e);

	/* Where a DISCOVER to all reaches every node, no visits. */
	if (((l->caps.flags & TP_CAP_BROADCAST) != 0 &&
	    (l->caps.flags & (TP_CAP_CONNECT | TP_CAP_POLLED)) == 0) ||
	    p->visit || p->visit_want)
		return (false);
	if (p->visited_ms == 0)
		return (true);
	return (l->pf.discover_s != 0 && now - p->visited_ms >=
	    (uint64_t)l->pf.discover_s * 1000);
}

void
eng__peer_event(struct eng_link *l, const struct tp_addr *a,
    enum tp_peer_event ev, const struct tp_peer_info *info)
{
	struct eng_peer		*p;
	struct eng_member	*m;
	enum eng_pstate		 was;

	/* Its place in the link's routing tree: the daemon's. */
	if ((ev == TP_PEER_FOUND || ev == TP_PEER_ROUTE) && info != NULL &&
	    info->level != 0 && l->e->cb.peer_route != NULL)
		l->e->cb.peer_route(l->e->cb.arg, l, a, &info->parent,
		    info->level);
	switch (ev) {
	case TP_PEER_FOUND:
		if ((p = eng__peer_get(l, a)) == NULL)
			break;
		if (info != NULL && info->rssi_dbm != INT16_MAX)
			p->rssi_dbm = info->rssi_dbm;
		if (peer_wants_visit(l, p)) {
			p->visit_want = true;
			peer_due(l);
		}
		break;
	case TP_PEER_UP:
		if ((p = eng__peer_get(l, a)) == NULL)
			break;
		was = p->state;
		p->state = ENG_PS_UP;
		p->disc = false;
		if (was == ENG_PS_CLOSING)
			l->nclosing--;
		p->mtu = info != NULL ? info->mtu : 0;
		if (info != NULL && info->rssi_dbm != INT16_MAX)
			p->rssi_dbm = info->rssi_dbm;
		p->connects++;
		p->inflight = 0;
		p->used_ms = eng__now_ms(l->e);
		eng__debug("%s: peer up, mtu %u", l->name, p->mtu);
		if (p->m != NULL)
			eng__u_peer_up(p->m);
		else if (p->visit)
			peer_visit_send(p);
		else {
			/* Nobody asked for it (any more): close it. */
			p->state = ENG_PS_CLOSING;
			l->nclosing++;
			peer_due(l);
		}
		break;
	case TP_PEER_DOWN:
		if ((p = eng__peer_find(l, a)) == NULL)
			break;
		was = p->state;
		p->state = ENG_PS_IDLE;
		p->mtu = 0;
		p->inflight = 0;
		p->disc = false;
		if (was == ENG_PS_CLOSING)
			l->nclosing--;
		if (p->pq == ENG_PQ_WAIT)
			eng__poll_cancel(p);
		eng__debug("%s: peer down (%s, reason %d)", l->name,
		    eng__pstate_str(was), info != NULL ? info->reason : 0);
		if ((m = p->m) != NULL) {
			if (was == ENG_PS_CONNECTING)
				p->fails++;
			else
				p->drops++;
			eng__u_peer_down(m, was == ENG_PS_CONNECTING);
		} else if (p->visit)
			peer_visit_end(p, false);
		peer_due(l);
		break;
	case TP_PEER_MTU:
		if ((p = eng__peer_find(l, a)) != NULL && info != NULL) {
			p->mtu = info->mtu;
			eng__debug("%s: peer mtu %u", l->name, p->mtu);
			eng__kick(l);
		}
		break;
	default:
		break;	/* what the engine does not use */
	}
}

/*
 * The link went down: every connection is gone.  Members served alone
 * go back to the front of the queue in their order, to resume first
 * when the link returns; nothing counts as their failure.
 */
void
eng__peers_down(struct eng_link *l)
{
	struct eng_session	*s;
	struct eng_member	*m, *prev;
	struct eng_peer		*p;
	size_t			 i;

	TAILQ_FOREACH(s, &l->e->sessions, entry) {
		if (s->l != l)
			continue;
		/* Last first, each to the head: the order is kept. */
		while ((m = TAILQ_LAST(&s->uactive, eng_queue)) != NULL) {
			prev = m;
			eng__u_release(prev, false, 0);
			prev->ustep = ENG_U_QUEUED;
			prev->u_nb = 0;
			TAILQ_INSERT_HEAD(&l->uqueue, prev, qentry);
			l->nqueued++;
			s->nuqueued++;
		}
	}
	for (i = 0; i < l->npeers; i++) {
		if ((p = l->peers[i]) == NULL)
			continue;
		if (p->visit) {
			p->visit = false;
			p->visit_want = true;
			peer_untake(p);
		}
		if (p->pq != ENG_PQ_NONE)
			eng__poll_cancel(p);
		p->state = ENG_PS_IDLE;
		p->mtu = 0;
		p->inflight = 0;
		p->disc = false;
	}
	l->nclosing = 0;
	l->visit_at = ENG_NEVER;
}

uint64_t
eng__peers_deadline(const struct eng_link *l)
{
	uint64_t	 d = l->sched_at;

	if (l->visit_at < d)
		d = l->visit_at;
	if (l->nclosing > 0 && l->tx_at < d)
		d = l->tx_at;
	return (d);
}

void
eng__peers_run(struct eng_link *l, uint64_t now)
{
	struct eng_peer	*p;
	size_t		 i;

	if (l->visit_at <= now) {
		l->visit_at = ENG_NEVER;
		for (i = 0; i < l->npeers; i++) {
			if ((p = l->peers[i]) == NULL || !p->visit)
				continue;
			if (p->visit_at <= now) {
				eng__debug("%s: visit without an answer",
				    l->name);
				peer_visit_end(p, false);
			} else if (p->visit_at < l->visit_at)
				l->visit_at = p->visit_at;
		}
	}
	if (l->sched_at <= now)
		eng__sched(l);
	eng__peer_idle(l);
}

/* ------------------------------------------------------------------ */
/* Public                                                               */

int
eng_link_peer_info(struct eng_link *l, size_t i, struct eng_peer_info *pi)
{
	struct eng_peer	*p;
	size_t		 j, n = 0;

	for (j = 0; j < l->npeers; j++) {
		if ((p = l->peers[j]) == NULL)
			continue;
		if (n++ != i)
			continue;
		memset(pi, 0, sizeof(*pi));
		pi->addr = p->addr;
		pi->state = eng__pstate_str(p->state);
		pi->mtu = p->mtu;
		pi->rssi_dbm = p->rssi_dbm;
		if (p->m != NULL) {
			pi->node = p->m->node;
			pi->session = p->m->s->id;
			pi->step = eng__ustep_str(p->m->ustep);
		} else
			pi->step = p->visit ? "visit" : "";
		pi->inflight = p->inflight;
		pi->connects = p->connects;
		pi->drops = p->drops;
		pi->fails = p->fails;
		pi->tx_frames = p->tx_frames;
		pi->tx_bytes = p->tx_bytes;
		pi->rx_frames = p->rx_frames;
		pi->idle_ms = eng__now_ms(l->e) - p->used_ms;
		return (0);
	}
	return (-1);
}
