/*
 * unicast.c: a member served alone (docs/engine.md, "Link shapes").
 *
 * On a link where a frame reaches one node (BLE, Modbus TCP: connected
 * unicast with limited peers; a unicast-only link), and for the repair
 * of a polled bus after its first pass to all (Modbus RTU), a session
 * is still one package on one link, but each member is served alone
 * when its turn comes (peer.c gives turns): its own OFFER, its own
 * STATUS_REQ, the blocks of its exact needed set, its own VERIFY and
 * ACTIVATE, and later a visit for its RESULT.  Why one session with
 * per-member sub-state rather than a session per peer: the daemon, the
 * persistence and the node all see one session (one id, one block
 * size, one OFFER the cloud signed), a member that moves from a slot to
 * the queue and back keeps its place in it, and the link's slots are
 * shared fairly by every session on the link instead of by whichever
 * session asked first.
 *
 * A member's step follows its state (u_next): PENDING/OFFERED get an
 * OFFER, RECEIVING its blocks (or a STATUS_REQ when its needed set is
 * not known), DOWNLOADED a VERIFY once the package is whole, VERIFIED
 * an ACTIVATE (unless held: it waits without a slot), ACTIVATING a
 * VERIFY that asks for its RESULT (result.c's deadline still writes it
 * off).  A request waits for its answer from the time it left the link
 * (eng__u_sent, from the tx loop), not from when it was queued: a
 * STATUS_REQ behind a window of data does not expire before it is sent.
 * On a polled link the wait is a series of polls (poll.c), never a
 * listen: the node cannot speak before it is asked.
 *
 * The needed set of a member served alone is exact: its ACCEPT or
 * STATUS lists what it misses (and every block past what its answer
 * describes), the blocks go to it once, then it is asked again.  A
 * member with no progress for max_rounds rounds, or silent for
 * ENG_TRIES requests, is written off as in the broadcast phases.
 */
#include <sys/queue.h>

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "engine_internal.h"

#define U_RESEND_MS	50	/* a request the ring could not take */
#define U_POLL_MIN_MS	20	/* gap after an empty poll, doubling */
#define U_POLL_MAX_MS	1000
#define U_SMALL_MTU	64	/* below: status as a bitmap slice */

static void	 u_next(struct eng_member *);

static const char *const ustep_names[] = {
	"", "queued", "connecting", "offer", "status", "data", "verify",
	"activate", "result", "acked"
};

const char *
eng__ustep_str(uint8_t st)
{
	if (st >= sizeof(ustep_names) / sizeof(ustep_names[0]))
		return ("?");
	return (ustep_names[st]);
}

bool
eng__unicast(const struct eng_session *s)
{
	return (s->shape == ENG_SHAPE_UNICAST || s->shape == ENG_SHAPE_POLLED);
}

static bool
u_waiting(uint8_t step)
{
	return (step == ENG_U_OFFER || step == ENG_U_STATUS ||
	    step == ENG_U_VERIFY || step == ENG_U_RESULT ||
	    step == ENG_U_ACKED);
}

/* The member needs a turn now. */
static bool
u_wants(const struct eng_member *m)
{
	const struct eng_session *s = m->s;

	if (m->gone || m->addr.len == 0 ||
	    (m->addr.flags & TP_ADDR_F_BROADCAST) != 0)
		return (false);
	switch (m->state) {
	case ENG_M_RECEIVING:
		/* Its blocks come from the module first (offload.c). */
		return (!eng__off_pending(m) && !m->plan_wait);
	case ENG_M_PENDING:
	case ENG_M_OFFERED:
	case ENG_M_ACTIVATING:
		return (true);
	case ENG_M_DOWNLOADED:
		return (s->src.complete(s->src.arg));
	case ENG_M_VERIFIED:
		return (!m->hold);
	default:
		return (false);
	}
}

/* When a member not yet served should first be: ACTIVATING ones later. */
static uint64_t
u_first(const struct eng_member *m, uint64_t now)
{
	if (m->state == ENG_M_ACTIVATING)
		return (now + (uint64_t)ENG_POLL_MS / 2 * 1000);
	return (now);
}

bool
eng__u_serve(struct eng_session *s)
{
	struct eng_member	*m;
	uint64_t		 now = eng__now_us(s->e);
	bool			 any = false, noaddr = false;

	TAILQ_FOREACH(m, &s->members, entry) {
		if (m->ustep != ENG_U_NONE) {
			any = true;
			continue;
		}
		if (!u_wants(m)) {
			if (!m->gone && m->addr.len == 0 &&
			    !ENG_M_FINAL(m->state))
				noaddr = true;
			continue;
		}
		if (m->u_gap_ms == 0)
			m->u_gap_ms = ENG_POLL_MS;
		eng__uqueue(m, u_first(m, now));
		any = true;
	}
	if (noaddr)
		eng__debug("session %08x: members without an address wait "
		    "for their ANNOUNCE", s->id);
	if (!any)
		return (false);
	eng__disarm(s);
	s->phase = ENG_P_SERVE;
	return (true);
}

/* ------------------------------------------------------------------ */
/* Requests and their answers                                           */

/* How long an answer to the member's request may take, ms. */
static uint64_t
u_wait_ms(const struct eng_member *m)
{
	const struct eng_session *s = m->s;
	uint64_t		 w = eng__window(s) + eng__margin(s);

	if (s->l != NULL && s->l->caps.response_ms + 100 > w)
		w = s->l->caps.response_ms + 100;
	if (m->ustep == ENG_U_VERIFY && eng__verify_wait(s) > w)
		w = eng__verify_wait(s);
	return (w);
}

static void
u_request(struct eng_member *m, uint8_t step, bool again)
{
	struct eng_session	*s = m->s;
	struct eng_link		*l = s->l;
	struct up_msg		 msg;

	if (!again)
		m->u_tries = 0;
	m->ustep = step;
	m->u_sent = m->u_heard = false;
	m->u_polls = 0;
	m->u_at = ENG_NEVER;
	memset(&msg, 0, sizeof(msg));
	msg.session = s->id;
	switch (step) {
	case ENG_U_OFFER:
		msg.type = UP_T_OFFER;
		msg.u.offer = s->offer;
		s->offer_us = eng__now_us(s->e);
		break;
	case ENG_U_STATUS:
		msg.type = UP_T_STATUS_REQ;
		msg.u.target.node_id = m->node;
		m->progress_held = m->held;
		if (s->compact && l != NULL && eng__dst_mtu(l, &m->addr) <
		    U_SMALL_MTU) {
			/*
			 * A node on a small connection cuts its answer to a
			 * few bytes (§11.7): a bitmap slice then describes
			 * more blocks than a run list of scattered losses.
			 */
			eng__cf_msg(l, s, &msg, &msg);
			msg.cx.req = UP_SB_BITMAP;
		}
		break;
	default:
		/* VERIFY; as a poll for the RESULT too (§5.2 step 5). */
		msg.type = UP_T_VERIFY;
		msg.u.target.node_id = m->node;
		break;
	}
	if (l == NULL || eng__ctrl_to(l, s, m, &m->addr, &msg) == -1)
		m->u_at = eng__now_us(s->e) + U_RESEND_MS * 1000;
}

void
eng__u_sent(struct eng_member *m)
{
	struct eng_session	*s = m->s;
	uint64_t		 now;

	if (m->gone || !u_waiting(m->ustep) || m->u_sent)
		return;
	now = eng__now_us(s->e);
	m->u_sent = true;
	m->u_deadline = now + u_wait_ms(m) * 1000;
	if (m->ustep == ENG_U_ACKED && m->u_confirm)
		m->u_at = m->u_deadline;	/* tx_done first, surely */
	else if (s->polled && m->peer != NULL) {
		m->u_at = ENG_NEVER;
		eng__poll(m->peer, now);
	} else
		m->u_at = m->u_deadline;
	eng__touch(s->e);
}

void
eng__u_poll_empty(struct eng_member *m)
{
	uint64_t	 now = eng__now_us(m->s->e), gap, at;
	uint32_t	 sh;

	if (m->gone || !u_waiting(m->ustep) || !m->u_sent || m->u_heard)
		return;
	sh = m->u_polls < 6 ? m->u_polls : 6;
	gap = (uint64_t)U_POLL_MIN_MS << sh;
	if (gap > U_POLL_MAX_MS)
		gap = U_POLL_MAX_MS;
	m->u_polls++;
	/* A frame came, but not this one: more may wait in its outbox. */
	if (m->peer != NULL && m->peer->poll_rx)
		gap = 0;
	at = now + gap * 1000;
	m->u_at = at < m->u_deadline ? at : m->u_deadline;
	eng__touch(m->s->e);
}

/*
 * A busy refusal (member.c, eng__busy): the node is alive and took
 * nothing.  A refused request is asked again once the back-off is over,
 * without counting a try (nothing was lost: the node said no); a
 * refused poll is polled again then, and its answer waited for that
 * much longer; refused data pauses the member's data for the back-off
 * (what was refused shows in its next STATUS).  u_timer writes it off
 * once busy for the link's node_busy_ms, never from here (a plugin's
 * callback).
 */
void
eng__u_busy(struct eng_member *m, enum eng_ubusy what)
{
	struct eng_session	*s = m->s;
	uint64_t		 at, w;

	if (m->gone || m->ustep < ENG_U_OFFER)
		return;
	at = eng__busy(m);
	switch (m->ustep) {
	case ENG_U_DATA:
		if (m->state == ENG_M_RECEIVING)
			m->u_at = at;	/* u_fill skips it until then */
		break;
	case ENG_U_OFFER:
	case ENG_U_STATUS:
	case ENG_U_VERIFY:
	case ENG_U_RESULT:
		if (!m->u_sent || m->u_heard || what == ENG_UB_FRAME)
			break;
		if (what == ENG_UB_REQUEST) {
			/* Nothing to poll for: the request is sent again. */
			if (m->peer != NULL && m->peer->pq == ENG_PQ_WAIT)
				eng__poll_cancel(m->peer);
			m->u_sent = false;
		} else {
			w = at + u_wait_ms(m) * 1000;
			if (w > m->u_deadline)
				m->u_deadline = w;
		}
		m->u_at = at;
		break;
	default:
		/* ACTIVATE repeats, an ACK: their own tx_done handling. */
		break;
	}
	eng__touch(s->e);
}

/* The data step: its blocks go round robin with the other members'. */
static void
u_data(struct eng_member *m)
{
	m->ustep = ENG_U_DATA;
	m->u_at = ENG_NEVER;
	m->ucursor = 0;
	eng__data_add(m->s->l, m->s);
}

static void
u_activate_send(struct eng_member *m)
{
	const struct eng_params	*p = eng__params(m->s);
	struct up_msg		 msg;
	unsigned int		 r = p->offer_repeats != 0 ?
				    p->offer_repeats : 1;

	/* Tagged with the member: a confirmed one ends the repeats. */
	memset(&msg, 0, sizeof(msg));
	msg.type = UP_T_ACTIVATE;
	msg.session = m->s->id;
	msg.u.activate.node_id = m->node;
	msg.u.activate.delay_ms = p->activate_delay_ms;
	(void)eng__ctrl_to(m->s->l, m->s, m, &m->addr, &msg);
	m->u_rep++;
	m->u_at = eng__now_us(m->s->e) + (uint64_t)p->offer_window_ms / r *
	    1000;
}

static void
u_activate(struct eng_member *m)
{
	struct eng_session	*s = m->s;
	struct eng		*e = s->e;

	m->result_due_ms = 0;	/* eng__activating sets it */
	eng__set_state(m, ENG_M_ACTIVATING);
	if (m->gone)
		return;
	eng__activating(s);
	/* Durable before the ACTIVATE leaves (docs/engine.md). */
	e->cb.session_save(e->cb.arg, s, true);
	if (m->gone || m->ustep == ENG_U_NONE)
		return;
	m->ustep = ENG_U_ACTIVATE;
	m->u_rep = 0;
	u_activate_send(m);
}

/* Picks the member's next step from its state; ends its turn if none. */
static void
u_next(struct eng_member *m)
{
	struct eng_session	*s = m->s;

	if (m->gone || ENG_M_FINAL(m->state) || !eng__runnable(s) ||
	    s->frozen_us != 0) {
		eng__u_release(m, false, 0);
		return;
	}
	switch (m->state) {
	case ENG_M_PENDING:
		/* Offer time: the daemon looks at the node as it is now. */
		if (!eng__offer_member(m))
			break;
		/* FALLTHROUGH */
	case ENG_M_OFFERED:
		u_request(m, ENG_U_OFFER, false);
		return;
	case ENG_M_RECEIVING:
		if (eng__off_pending(m))
			break;	/* accepted: the module sends its blocks */
		if (eng__plan_park(m))
			break;	/* its set waits for the plan (rplan.c) */
		if (m->need_buf != NULL && m->nneed > 0)
			u_data(m);
		else
			u_request(m, ENG_U_STATUS, false);
		return;
	case ENG_M_DOWNLOADED:
		if (!s->src.complete(s->src.arg))
			break;	/* the poke on completion serves it */
		u_request(m, ENG_U_VERIFY, false);
		return;
	case ENG_M_VERIFIED:
		if (m->hold)
			break;
		u_activate(m);
		return;
	case ENG_M_ACTIVATING:
		u_request(m, ENG_U_RESULT, false);
		return;
	default:
		break;
	}
	eng__u_release(m, false, 0);
}

void
eng__u_begin(struct eng_member *m)
{
	u_next(m);
}

void
eng__u_heard(struct eng_member *m, uint8_t type)
{
	struct eng_session	*s = m->s;
	const struct eng_params	*p = eng__params(s);
	uint64_t		 now = eng__now_us(s->e);

	if (m->gone || m->ustep < ENG_U_OFFER)
		return;
	m->u_fails = 0;
	switch (m->ustep) {
	case ENG_U_OFFER:
		if (type != UP_T_ACCEPT)
			return;
		if (m->state == ENG_M_OFFERED) {
			/*
			 * Busy with another session: its turn again later;
			 * busy every time, it is declined so.
			 */
			if (++m->offers >= ENG_TRIES) {
				eng__u_release(m, false, 0);
				eng__offer_lost(m);
				return;
			}
			eng__u_release(m, true, now +
			    (uint64_t)p->offer_window_ms * 1000);
			return;
		}
		break;
	case ENG_U_STATUS:
	case ENG_U_DATA:
		if (type != UP_T_STATUS)
			return;
		if (m->u_data) {
			/* A round: did the blocks sent since help? */
			m->u_data = false;
			if (m->held > m->progress_held)
				m->stall = 0;
			else if (++m->stall > p->max_rounds) {
				eng__write_off(m, "no progress in max_rounds "
				    "repair rounds");
				return;
			}
		}
		if (m->ustep == ENG_U_DATA && m->state == ENG_M_RECEIVING)
			return;	/* a late answer: the data goes on */
		break;
	case ENG_U_VERIFY:
		if (type != UP_T_RESULT && type != UP_T_STATUS)
			return;
		if (type == UP_T_STATUS && m->state == ENG_M_DOWNLOADED)
			return;	/* still hashing: its RESULT follows */
		break;
	case ENG_U_RESULT:
		if (type != UP_T_RESULT)
			return;
		if (m->state == ENG_M_ACTIVATING) {
			/*
			 * It had not rebooted yet (VERIFIED, answer.c sent
			 * the ACTIVATE again): visit it later.
			 */
			eng__u_release(m, true, now +
			    ((uint64_t)p->activate_delay_ms + ENG_POLL_MS) *
			    1000);
			return;
		}
		break;
	default:
		return;
	}
	m->u_heard = true;
	m->u_at = ENG_NEVER;
	u_next(m);
}

/*
 * Its final RESULT is on record (member_final returned): acknowledge it
 * in its turn, then make sure the ACK arrived before the turn ends: on a
 * polled or connected link a node that missed it could not resend its
 * RESULT once its turn is over.  A link that confirms its frames
 * (TP_CAP_LINK_ACK) says so in tx_done.  Elsewhere a VERIFY follows the
 * ACK: a node still owed one answers it with its RESULT again (§5.2
 * step 5; answer.c then acknowledges it again), one that has it has
 * left the session and stays silent.
 */
void
eng__u_ack(struct eng_member *m)
{
	struct eng_session	*s = m->s;
	struct up_msg		 msg;
	bool			 confirmed;

	if (m->ustep == ENG_U_ACKED)
		m->u_tries++;
	else
		m->u_tries = 0;
	if (m->u_tries >= ENG_TRIES || m->gone) {
		eng__u_release(m, false, 0);
		return;
	}
	m->ustep = ENG_U_ACKED;
	m->u_sent = m->u_heard = false;
	m->u_polls = 0;
	m->u_at = ENG_NEVER;
	confirmed = s->l != NULL &&
	    (s->l->caps.flags & TP_CAP_LINK_ACK) != 0 &&
	    s->l->pacer.track_inflight;
	memset(&msg, 0, sizeof(msg));
	msg.type = UP_T_RESULT_ACK;
	msg.session = s->id;
	msg.u.target.node_id = m->node;
	m->u_confirm = confirmed;
	if (s->l == NULL || eng__ctrl_to(s->l, s, confirmed ? m : NULL,
	    &m->addr, &msg) == -1) {
		eng__u_release(m, false, 0);
		return;
	}
	if (confirmed)
		return;		/* tx_done says */
	msg.type = UP_T_VERIFY;
	if (eng__ctrl_to(s->l, s, m, &m->addr, &msg) == -1)
		eng__u_release(m, false, 0);
}

void
eng__u_ack_done(struct eng_member *m, int status)
{
	const struct eng_params	*p = eng__params(m->s);
	uint64_t		 now = eng__now_us(m->s->e);

	if ((m->s->l->caps.flags & TP_CAP_LINK_ACK) == 0)
		return;
	if (m->ustep == ENG_U_ACTIVATE) {
		/* The node confirmed its ACTIVATE: no repeats needed. */
		if (status == TP_OK) {
			m->u_gap_ms = ENG_POLL_MS;
			eng__u_release(m, true, now +
			    ((uint64_t)p->activate_delay_ms + ENG_POLL_MS) *
			    1000);
		}
		return;
	}
	if (status == TP_OK)
		eng__u_release(m, false, 0);	/* confirmed */
	else
		eng__u_ack(m);
}

/* ------------------------------------------------------------------ */
/* Connections                                                          */

void
eng__u_peer_up(struct eng_member *m)
{
	if (m->ustep == ENG_U_CONNECT)
		eng__u_begin(m);
}

void
eng__u_peer_down(struct eng_member *m, bool connecting)
{
	struct eng_session	*s = m->s;
	const struct eng_params	*p = eng__params(s);
	uint64_t		 now = eng__now_us(s->e), nb;

	if (m->ustep == ENG_U_ACTIVATE || m->state == ENG_M_ACTIVATING) {
		/* Activated: it reboots.  Its RESULT is asked for later. */
		nb = m->ustep == ENG_U_RESULT ? now + (uint64_t)m->u_gap_ms *
		    1000 : now + ((uint64_t)p->activate_delay_ms +
		    ENG_POLL_MS) * 1000;
		eng__u_release(m, true, nb);
		return;
	}
	if (++m->u_fails >= ENG_TRIES && eng__silent(m)) {
		/* Unreachable for its link's silence limit and three turns. */
		eng__u_release(m, false, 0);
		eng__write_off(m, connecting ? "cannot connect" :
		    "connection lost, no answer");
		return;
	}
	/* Back in the queue: it resumes from the node's own bitmap. */
	eng__info("session %08x: node 0x%016" PRIx64 " %s, queued again",
	    s->id, m->node, connecting ? "cannot connect" :
	    "lost its connection");
	eng__u_release(m, true, now + (uint64_t)ENG_RETRY_MS * m->u_fails *
	    1000);
}

/* ------------------------------------------------------------------ */
/* Turns                                                                */

void
eng__u_release(struct eng_member *m, bool requeue, uint64_t nb_us)
{
	struct eng_session	*s = m->s;
	struct eng_peer		*p;

	if (m->ustep == ENG_U_NONE) {
		if (requeue)
			eng__uqueue(m, nb_us);
		return;
	}
	if (m->ustep == ENG_U_QUEUED) {
		if (!requeue)
			eng__udequeue(m);
		else {
			m->u_nb = nb_us;
			if (s->l != NULL && nb_us < s->l->sched_at)
				s->l->sched_at = nb_us;
		}
		return;
	}
	TAILQ_REMOVE(&s->uactive, m, aentry);
	s->nuactive--;
	if (s->ufill == m)
		s->ufill = NULL;
	if (!m->plan_wait) {
		free(m->need_buf);
		m->need_buf = NULL;
		memset(&m->need, 0, sizeof(m->need));
		m->nneed = 0;
	}
	m->u_at = ENG_NEVER;
	m->u_sent = m->u_heard = false;
	m->ustep = ENG_U_NONE;
	if ((p = m->peer) != NULL) {
		m->peer = NULL;
		p->m = NULL;
		eng__peer_release(p);
	}
	if (requeue && !m->gone && !ENG_M_FINAL(m->state))
		eng__uqueue(m, nb_us);
	if ((s->plan_open || (s->nuactive == 0 && s->nuqueued == 0)) &&
	    s->running) {
		/*
		 * Maybe nothing is left to serve, or the repair plan can
		 * be made (rplan.c): look again (deferred).
		 */
		s->poke_pending = true;
		s->e->pending = true;
		eng__touch(s->e);
	}
}

void
eng__u_forget(struct eng_member *m)
{
	struct eng_link	*l = m->s->l;
	struct eng_peer	*p;
	size_t		 i;

	eng__plan_unpark(m);
	eng__u_release(m, false, 0);
	eng__udequeue(m);
	/* A set kept for the repair plan (rplan.c). */
	free(m->need_buf);
	m->need_buf = NULL;
	memset(&m->need, 0, sizeof(m->need));
	m->nneed = 0;
	if (l == NULL)
		return;
	eng__forget_member(l, m);
	for (i = 0; i < l->npeers; i++)
		if ((p = l->peers[i]) != NULL && p->rm == m)
			p->rm = NULL;
}

void
eng__u_forget_session(struct eng_session *s)
{
	struct eng_member	*m;

	TAILQ_FOREACH(m, &s->members, entry)
		if (m->ustep != ENG_U_NONE || m->need_buf != NULL)
			eng__u_forget(m);
	s->plan_open = false;
	s->round_polls = 0;
	s->poll_round = false;
}

/* ------------------------------------------------------------------ */
/* The exact needed set                                                 */

static void
u_need_cb(void *arg, uint32_t i)
{
	struct eng_member	*m = arg;

	if (i < m->need.nbits && !up_bitmap_get(&m->need, i)) {
		up_bitmap_set(&m->need, i);
		m->nneed++;
	}
}

void
eng__u_status(struct eng_member *m, const struct up_status_body *st)
{
	struct eng_session	*s = m->s;
	uint32_t		 end, i;

	if (m->ustep < ENG_U_CONNECT || s->nblocks == 0 ||
	    !eng__status_ok(s, st, &end))
		return;
	if (m->need_buf == NULL) {
		m->need_buf = eng__xcalloc(1, up_bitmap_bytes(s->nblocks));
		up_bitmap_init(&m->need, m->need_buf, s->nblocks);
	} else
		up_bitmap_clear_all(&m->need);
	m->nneed = 0;
	m->ucursor = 0;
	if (st->first_missing >= s->nblocks)
		return;
	u_need_cb(m, st->first_missing);
	up_status_foreach_missing(st, s->nblocks, u_need_cb, m);
	/*
	 * Past what it described nothing is known.  A node that described
	 * nothing past its first missing block (its first report in a
	 * session, a fresh slot) gets everything from there; one whose
	 * answer was cut (a small uplink) gets what it listed and is asked
	 * again: resending the rest blind would mostly resend blocks it
	 * holds.
	 */
	if (end <= st->first_missing + 1)
		for (i = end; i < s->nblocks; i++)
			u_need_cb(m, i);
}

/* ------------------------------------------------------------------ */
/* Data                                                                 */

/* Frames in flight to one peer: its share of the plugin's queue. */
static bool
u_window_open(const struct eng_member *m)
{
	const struct eng_link	*l = m->s->l;
	uint32_t		 w;

	if (m->peer == NULL || !l->pacer.track_inflight ||
	    l->caps.tx_queue == 0)
		return (true);
	w = l->caps.tx_queue / (l->slots != 0 ? l->slots : 1);
	if (w == 0)
		w = 1;
	return (m->peer->inflight < w);
}

/* Next block of m's needed set within the sendable prefix, or nblocks. */
static uint32_t
u_next_block(struct eng_member *m, uint32_t lb)
{
	uint32_t	 i;

	i = up_bitmap_next_set(&m->need, m->ucursor);
	if (i >= lb)
		i = up_bitmap_next_set(&m->need, 0);
	return (i < lb ? i : m->s->nblocks);
}

static size_t
u_fill_one(struct eng_session *s, struct eng_member *m, uint8_t *buf,
    size_t cap, struct tp_addr *dst, uint32_t i)
{
	size_t		 len = eng__block_len(s, i), mtu, n;
	uint8_t		 flags;
	int		 rc;

	if (s->compact) {
		/* A frame the connection cannot take goes in segments. */
		if (!eng__read(s, (uint64_t)i * s->block_size,
		    buf + up_cdata_off(i), len))
			return ((size_t)-1);
		if ((n = eng__cf_seal(s, buf, UP_FRAME_MAX, UP_T_DATA, i,
		    len)) == 0)
			return (0);
		*dst = m->addr;
		return (n);
	}
	mtu = eng__dst_mtu(s->l, &m->addr);
	if (mtu < cap)
		cap = mtu;
	if (UP_DATA_OFF + len + UP_CRC_LEN > cap)
		return (0);	/* this connection cannot carry it now */
	if (!eng__read(s, (uint64_t)i * s->block_size, buf + UP_DATA_OFF,
	    len))
		return ((size_t)-1);
	flags = i == s->nblocks - 1 ? UP_F_LAST : 0;
	rc = up_seal_data(buf, cap, UP_T_DATA, flags, s->id, i,
	    (uint16_t)len);
	if (rc <= 0) {
		eng__warnx("session %08x: block %u: %s", s->id, i,
		    up_strerror(rc));
		return (0);
	}
	*dst = m->addr;
	return ((size_t)rc);
}

size_t
eng__u_fill(struct eng_session *s, uint8_t *buf, size_t cap,
    struct tp_addr *dst)
{
	struct eng_member	*m, *start;
	uint64_t		 lim;
	uint32_t		 lb, i;
	size_t			 n;
	bool			 any = false;

	if (!eng__runnable(s) || s->nuactive == 0) {
		eng__data_remove(s->l, s);
		return (0);
	}
	lim = s->src.limit(s->src.arg);
	lb = lim >= s->offer.size ? s->nblocks :
	    (uint32_t)(lim / s->block_size);
	start = s->ufill != NULL ? TAILQ_NEXT(s->ufill, aentry) : NULL;
	if (start == NULL)
		start = TAILQ_FIRST(&s->uactive);
	m = start;
	do {
		if (m->ustep == ENG_U_DATA && m->nneed > 0 &&
		    m->u_at == ENG_NEVER) {
			any = true;
			if (u_window_open(m) &&
			    (i = u_next_block(m, lb)) < s->nblocks) {
				n = u_fill_one(s, m, buf, cap, dst, i);
				if (n == (size_t)-1)
					return (0);	/* source error */
				if (n > 0) {
					up_bitmap_clear(&m->need, i);
					m->nneed--;
					m->ucursor = i + 1;
					m->u_data = true;
					s->ufill = m;
					if (m->nneed == 0)
						u_request(m, ENG_U_STATUS,
						    false);
					return (n);
				}
			}
		}
		if ((m = TAILQ_NEXT(m, aentry)) == NULL)
			m = TAILQ_FIRST(&s->uactive);
	} while (m != start);
	if (!any)
		eng__data_remove(s->l, s);
	return (0);
}

/* ------------------------------------------------------------------ */
/* Timers                                                               */

static void
u_timeout(struct eng_member *m)
{
	struct eng_session	*s = m->s;
	uint64_t		 now = eng__now_us(s->e);
	const char		*why;

	if (m->ustep == ENG_U_ACKED) {
		/* No RESULT again: the ACK arrived, the turn is over. */
		eng__u_release(m, false, 0);
		return;
	}
	if (m->ustep == ENG_U_RESULT) {
		if (m->result_due_ms != 0 &&
		    now / 1000 >= m->result_due_ms) {
			/* A visit past its deadline, unanswered. */
			eng__u_release(m, false, 0);
			eng__write_off(m, "no result after activation");
			return;
		}
		/* Not back yet: visited later, backing off. */
		eng__u_release(m, true, now + (uint64_t)m->u_gap_ms * 1000);
		m->u_gap_ms = m->u_gap_ms * 2 < ENG_POLL_MAX_MS ?
		    m->u_gap_ms * 2 : ENG_POLL_MAX_MS;
		return;
	}
	if (++m->u_tries < ENG_TRIES) {
		u_request(m, m->ustep, true);
		return;
	}
	if (!eng__silent(m)) {
		/*
		 * Rebooting, perhaps (issue 7): asked again in a later
		 * turn, once it has been silent for its link's limit.
		 */
		eng__u_release(m, true, now +
		    (uint64_t)m->s->l->silence_ms * 1000);
		return;
	}
	why = m->ustep == ENG_U_OFFER ? "no answer to the offer" :
	    m->ustep == ENG_U_STATUS ? "no answer to STATUS_REQ" :
	    "no answer to VERIFY";
	eng__u_release(m, false, 0);
	eng__write_off(m, why);
}

static void
u_timer(struct eng_member *m)
{
	struct eng_session	*s = m->s;
	const struct eng_params	*p = eng__params(s);
	uint64_t		 now = eng__now_us(s->e);
	unsigned int		 r = p->offer_repeats != 0 ?
				    p->offer_repeats : 1;

	if (eng__busy_over(m)) {
		/* It said busy, and only that, for node_busy_ms. */
		eng__u_release(m, false, 0);
		eng__write_off(m, "busy for longer than node_busy_s");
		return;
	}
	switch (m->ustep) {
	case ENG_U_DATA:
		/* A busy node's pause is over: its blocks go on. */
		if (s->l != NULL)
			eng__data_add(s->l, s);
		break;
	case ENG_U_CONNECT:
		/* connect() never answered: give the slot up, try later. */
		eng__u_peer_down(m, true);
		break;
	case ENG_U_OFFER:
	case ENG_U_STATUS:
	case ENG_U_VERIFY:
	case ENG_U_RESULT:
		if (!m->u_sent)
			u_request(m, m->ustep, true);	/* the ring was full */
		else if (s->polled && m->peer != NULL && now < m->u_deadline)
			eng__poll(m->peer, now);
		else
			u_timeout(m);
		break;
	case ENG_U_ACKED:
		if (!m->u_sent)
			eng__u_ack(m);
		else if (s->polled && m->peer != NULL && m->u_polls == 0) {
			/* A RESULT in its outbox again would mean no ACK. */
			m->u_polls++;
			eng__poll(m->peer, now);
		} else
			eng__u_release(m, false, 0);
		break;
	case ENG_U_ACTIVATE:
		if (m->u_rep < r) {
			u_activate_send(m);
			break;
		}
		m->u_gap_ms = ENG_POLL_MS;
		eng__u_release(m, true, now + ((uint64_t)p->activate_delay_ms +
		    ENG_POLL_MS) * 1000);
		break;
	default:
		break;
	}
}

uint64_t
eng__u_deadline(const struct eng_session *s)
{
	const struct eng_member	*m;
	uint64_t		 d = ENG_NEVER;

	if (s->frozen_us != 0)
		return (ENG_NEVER);
	TAILQ_FOREACH(m, &s->uactive, aentry)
		if (m->u_at < d)
			d = m->u_at;
	return (d);
}

void
eng__u_run(struct eng_session *s, uint64_t now)
{
	struct eng_member	*m;
	bool			 again = true;

	if (s->frozen_us != 0)
		return;
	/*
	 * One timer at a time, from the head each time: a timer may end
	 * other members' turns (a write-off's callback may remove any
	 * member), so no pointer is kept across one.  At most `slots'
	 * members are active.
	 */
	while (again) {
		again = false;
		TAILQ_FOREACH(m, &s->uactive, aentry)
			if (m->u_at <= now) {
				m->u_at = ENG_NEVER;
				u_timer(m);
				again = true;
				break;
			}
	}
}
