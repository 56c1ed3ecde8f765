/*
 * member.c: a session's members: the list and hash by node id, the state
 * changes the engine makes and the callbacks that report them, and what
 * the daemon may change (restart, cancel, hold, address).
 *
 * Every state change the engine makes goes through eng__set_state() or
 * eng__final(), which keep the session's per-state counts (nstate, the
 * phase machine's view of its members) and then call the daemon: so the
 * daemon's copy of a member's state is always the engine's.  The changes
 * the daemon makes (eng_member_restart, eng_member_cancel) fire no
 * callback: it knows.
 */
#include <sys/queue.h>

#include <stdlib.h>
#include <string.h>

#include "engine_internal.h"

static const char *const eng_mstate_names[] = {
	"pending", "offered", "receiving", "downloaded", "verified",
	"activating", "updated", "failed", "declined", "cancelled", "skipped"
};

const char *
eng_mstate_str(enum eng_mstate st)
{
	if ((size_t)st >= sizeof(eng_mstate_names) /
	    sizeof(eng_mstate_names[0]))
		return ("?");
	return (eng_mstate_names[st]);
}

/* ------------------------------------------------------------------ */
/* The hash                                                             */

static size_t
member_bucket(uint64_t node, size_t nhash)
{
	return ((size_t)((node * 0x9e3779b97f4a7c15ULL) >> 32) & (nhash - 1));
}

static void
member_hash_grow(struct eng_session *s)
{
	struct eng_member	**nh, *m, *next;
	size_t			  i, n = s->nhash != 0 ? s->nhash * 2 : 64, h;

	nh = eng__xcalloc(n, sizeof(*nh));
	for (i = 0; i < s->nhash; i++)
		for (m = s->hash[i]; m != NULL; m = next) {
			next = m->hnext;
			h = member_bucket(m->node, n);
			m->hnext = nh[h];
			nh[h] = m;
		}
	free(s->hash);
	s->hash = nh;
	s->nhash = n;
}

static void
member_unhash(struct eng_member *m)
{
	struct eng_session	*s = m->s;
	struct eng_member	**pp;

	for (pp = &s->hash[member_bucket(m->node, s->nhash)]; *pp != NULL;
	    pp = &(*pp)->hnext)
		if (*pp == m) {
			*pp = m->hnext;
			break;
		}
}

struct eng_member *
eng__member(struct eng_session *s, uint64_t node)
{
	struct eng_member	*m;

	if (s->nhash == 0)
		return (NULL);
	for (m = s->hash[member_bucket(node, s->nhash)]; m != NULL;
	    m = m->hnext)
		if (m->node == node)
			return (m);
	return (NULL);
}

/* ------------------------------------------------------------------ */
/* State changes made by the engine                                     */

void
eng__set_state(struct eng_member *m, enum eng_mstate st)
{
	struct eng_session	*s = m->s;
	struct eng		*e = s->e;

	if (m->gone)
		return;
	s->nstate[m->state]--;
	s->nstate[st]++;
	m->state = st;
	e->cb.member(e->cb.arg, m, ENG_MEV_STATE);
}

void
eng__progress(struct eng_member *m)
{
	struct eng	*e = m->s->e;

	if (!m->gone)
		e->cb.member(e->cb.arg, m, ENG_MEV_PROGRESS);
}

void
eng__started(struct eng_member *m)
{
	struct eng	*e = m->s->e;

	m->joined_ms = eng__now_ms(e);
	if (!m->gone)
		e->cb.member(e->cb.arg, m, ENG_MEV_STARTED);
}

void
eng__answered(struct eng_member *m)
{
	if (m->asked && !m->answered) {
		m->answered = true;
		if (m->s->unanswered > 0)
			m->s->unanswered--;
	}
}

/* Engine bookkeeping of a final state, with or without a callback. */
static void
member_final(struct eng_member *m, enum eng_mstate st, uint8_t result)
{
	struct eng_session	*s = m->s;

	if (m->asked && !m->answered) {
		m->answered = true;
		if (s->unanswered > 0)
			s->unanswered--;
	}
	m->result = result;
	m->node_final = false;
	s->nstate[m->state]--;
	s->nstate[st]++;
	m->state = st;
	/*
	 * Its turn alone, its part of an offload, are over; but a final
	 * RESULT is still acknowledged in its turn (unicast.c, u_keep).
	 */
	if (m->ustep != ENG_U_NONE && !m->u_keep)
		eng__u_release(m, false, 0);
	if (m->off) {
		m->off = false;
		if (s->off_peers > 0)
			s->off_peers--;
	}
}

void
eng__final(struct eng_member *m, enum eng_mstate st, uint8_t result,
    const char *version, const char *why)
{
	struct eng	*e = m->s->e;

	if (m->gone)
		return;
	member_final(m, st, result);
	/* The node's own word, or the engine's (a write-off, busy). */
	m->node_final = why == NULL;
	e->stats.finals++;
	e->cb.member_final(e->cb.arg, m, version, why);
	eng__settle(m->s);
}

void
eng__write_off(struct eng_member *m, const char *why)
{
	eng__debug("session %08x: node 0x%016llx written off: %s", m->s->id,
	    (unsigned long long)m->node, why);
	eng__final(m, ENG_M_FAILED, UP_R_CONN_LOST, NULL, why);
}

/*
 * Write-offs wait for a node's reboot (issue 7).  A node that misses its
 * asks is written off only once it has also been silent for its link's
 * silence_ms (the profile's node_silence_ms, else derived from the link,
 * link.c): a node that reboots for a few seconds during repair or verify
 * answers the next round instead of being reported lost.  Every frame
 * from the node, its ANNOUNCE (eng_member_set_addr) and each offer
 * restart the clock.
 */
void
eng__heard(struct eng_member *m, const struct tp_addr *src)
{
	m->addr = *src;
	m->heard_ms = eng__now_ms(m->s->e);
	/* An answer: whatever it was busy with is over. */
	m->busy_since_ms = 0;
	m->busy_until_us = 0;
	m->busy_gap_ms = 0;
}

/*
 * The node refused a frame or a poll as busy (TP_EBUSY: Modbus
 * exception 06, Server Device Busy, which the Modbus Application
 * Protocol V1.1b3 §7 defines as "the client should retransmit the
 * message later").  It answered, so it is alive: the silence clock
 * restarts and no try is counted.  The next ask waits a back-off that
 * doubles from ENG_BUSY_MIN_MS up to ENG_BUSY_MAX_MS; a refusal of a
 * frame that left before the current wait ended does not double it
 * again.  Returns when to ask again, clock us.  eng__busy_over() says
 * when it has been busy, unheard, for the link's node_busy_ms.
 */
uint64_t
eng__busy(struct eng_member *m)
{
	struct eng	*e = m->s->e;
	uint64_t	 now = eng__now_us(e);

	m->heard_ms = eng__now_ms(e);
	if (m->busy_since_ms == 0)
		m->busy_since_ms = m->heard_ms != 0 ? m->heard_ms : 1;
	if (now >= m->busy_until_us) {
		if (m->busy_gap_ms == 0)
			m->busy_gap_ms = ENG_BUSY_MIN_MS;
		else if ((m->busy_gap_ms *= 2) > ENG_BUSY_MAX_MS)
			m->busy_gap_ms = ENG_BUSY_MAX_MS;
		m->busy_until_us = now + (uint64_t)m->busy_gap_ms * 1000;
		eng__debug("session %08x: node 0x%016llx busy, asked again in "
		    "%u ms", m->s->id, (unsigned long long)m->node,
		    m->busy_gap_ms);
	}
	return (m->busy_until_us);
}

bool
eng__busy_over(const struct eng_member *m)
{
	const struct eng_session *s = m->s;
	uint64_t		 now = eng__now_ms(s->e), limit;

	if (m->busy_since_ms == 0)
		return (false);
	limit = s->l != NULL && s->l->p.node_busy_ms != 0 ?
	    s->l->p.node_busy_ms : ENG_BUSY_MS;
	return (now >= m->busy_since_ms && now - m->busy_since_ms >= limit);
}

bool
eng__silent(const struct eng_member *m)
{
	const struct eng_session *s = m->s;
	uint64_t		 now = eng__now_ms(s->e), limit;

	limit = s->l != NULL ? s->l->silence_ms : ENG_SILENCE_MS;
	return (now >= m->heard_ms && now - m->heard_ms >= limit);
}

void
eng__offer_lost(struct eng_member *m)
{
	if (m->result == UP_R_BUSY) {
		/* It answered, each round: its slot serves another session. */
		eng__final(m, ENG_M_DECLINED, UP_R_BUSY, NULL,
		    "busy with another session");
	} else if (eng__silent(m))
		eng__write_off(m, "no answer to the offer");
}

bool
eng__offer_member(struct eng_member *m)
{
	struct eng	*e = m->s->e;

	if (m->gone || m->state != ENG_M_PENDING ||
	    !e->cb.member_offer(e->cb.arg, m) || m->gone ||
	    m->state != ENG_M_PENDING)
		return (false);
	m->heard_ms = eng__now_ms(e);	/* the silence clock starts */
	eng__set_state(m, ENG_M_OFFERED);
	return (true);
}

/* ------------------------------------------------------------------ */
/* The daemon's side                                                    */

struct eng_member *
eng_member_add(struct eng_session *s, const struct eng_member_conf *c,
    void *udata)
{
	struct eng_member	*m;
	size_t			 h;

	if (eng__member(s, c->node) != NULL)
		return (NULL);
	if (s->nmembers + 1 > s->nhash)
		member_hash_grow(s);
	m = eng__xcalloc(1, sizeof(*m));
	m->s = s;
	m->udata = udata;
	m->node = c->node;
	m->state = c->state < ENG_M_NSTATES ? c->state : ENG_M_PENDING;
	m->result = c->result;
	m->held = c->held;
	m->addr = c->addr;
	m->max_frame = c->max_frame;
	m->hold = c->hold;
	m->heard_ms = eng__now_ms(s->e);
	h = member_bucket(m->node, s->nhash);
	m->hnext = s->hash[h];
	s->hash[h] = m;
	TAILQ_INSERT_TAIL(&s->members, m, entry);
	s->nmembers++;
	s->nstate[m->state]++;
	return (m);
}

void
eng_member_remove(struct eng_member *m)
{
	struct eng_session	*s = m->s;
	struct eng		*e = s->e;

	if (m->gone)
		return;
	if (m->asked && !m->answered && s->unanswered > 0)
		s->unanswered--;
	m->asked = m->answered = false;
	eng__u_forget(m);
	if (m->off) {
		m->off = false;
		if (s->off_peers > 0)
			s->off_peers--;
	}
	member_unhash(m);
	s->nmembers--;
	s->nstate[m->state]--;
	if (e->busy > 0) {
		/*
		 * The engine may be walking the list: keep it linked, inert
		 * (a final state no phase looks at), until eng__leave.
		 */
		m->gone = true;
		m->state = ENG_M_CANCELLED;
		m->udata = NULL;
		TAILQ_INSERT_TAIL(&e->graveyard, m, gentry);
		return;
	}
	TAILQ_REMOVE(&s->members, m, entry);
	free(m);
}

struct eng_member *
eng_member_find(struct eng_session *s, uint64_t node)
{
	return (eng__member(s, node));
}

void *
eng_member_udata(const struct eng_member *m)
{
	return (m->udata);
}

struct eng_session *
eng_member_session(const struct eng_member *m)
{
	return (m->s);
}

void
eng_member_restart(struct eng_member *m)
{
	struct eng_session	*s = m->s;

	if (m->gone)
		return;
	eng__u_release(m, false, 0);
	m->result = UP_R_INITIAL;
	m->known = false;
	m->offers = m->stall = 0;
	m->heard_ms = eng__now_ms(s->e);
	m->u_fails = 0;
	s->nstate[m->state]--;
	s->nstate[ENG_M_PENDING]++;
	m->state = ENG_M_PENDING;
	eng_session_poke(s);
}

void
eng_member_cancel(struct eng_member *m, uint8_t code, bool tell)
{
	struct eng_session	*s = m->s;
	struct eng_link		*l;
	struct up_msg		 msg;
	int			 i;

	if (m->gone || ENG_M_FINAL(m->state))
		return;
	if (tell && m->state > ENG_M_PENDING &&
	    (l = eng__session_link(s)) != NULL) {
		memset(&msg, 0, sizeof(msg));
		msg.type = UP_T_ABORT;
		msg.session = s->id;
		msg.u.target.node_id = m->node;
		msg.u.target.reason = code;
		/* ABORT is not acknowledged: a few times. */
		for (i = 0; i < ENG_TRIES; i++)
			eng__ctrl(l, s, (l->caps.flags & TP_CAP_UNICAST) != 0 &&
			    m->addr.len > 0 ? &m->addr : NULL, &msg);
	}
	member_final(m, ENG_M_CANCELLED, code);
}

void
eng_member_set_hold(struct eng_member *m, bool hold)
{
	if (m->hold == hold)
		return;
	m->hold = hold;
	if (!hold && m->state == ENG_M_VERIFIED)
		eng_session_poke(m->s);
}

void
eng_member_set_addr(struct eng_member *m, const struct tp_addr *addr,
    uint16_t max_frame)
{
	m->addr = *addr;
	if (max_frame != 0)
		m->max_frame = max_frame;
	m->heard_ms = eng__now_ms(m->s->e);	/* alive: not silent */
}

/*
 * The blocks a receiving node probably holds now, for the progress
 * views.  The gateway learns what a node holds only from its ACCEPT and
 * STATUS replies, about once per repair round, so `held' lags a whole
 * data pass behind and a first pass would show 0 % until it ends.
 *
 * During a pass every block the node still missed at its last report is
 * sent once, in index order: eng__fill_data() walks the union `needed'
 * upwards from `cursor', and all the node's missing blocks lie in
 * [first_missing, nblocks).  The engine keeps no per-node bitmap, so we
 * take those blocks as spread evenly over that range: the share of it
 * the cursor has passed is the share of them sent since the report.  A
 * node that joined during this pass (its first answer came after the
 * pass began) missed the blocks sent before, which we estimate from the
 * time it joined.  Lost frames make this an upper bound; the node's next
 * STATUS corrects it.  It never reaches nblocks: a node says itself when
 * it has everything.  Read-only and O(1) per node.
 */
static uint32_t
member_est(const struct eng_member *m)
{
	const struct eng_session *s = m->s;
	uint64_t		 span, passed, from, est, now, elapsed, joined;

	if (m->state != ENG_M_RECEIVING || s->nblocks == 0 || s->pass == 0 ||
	    m->held >= s->nblocks)
		return (m->held);
	/* A reply in this status round is newer than every block sent. */
	if (s->phase == ENG_P_STATUS && m->answered)
		return (m->held);
	if (s->phase != ENG_P_DATA && s->phase != ENG_P_STATUS)
		return (m->held);

	from = m->first_missing;
	if (s->cursor <= from || from >= s->nblocks)
		return (m->held);
	if (s->phase == ENG_P_DATA && m->joined_ms != 0) {
		now = eng__now_ms(s->e);
		elapsed = now > s->phase_ms ? now - s->phase_ms : 0;
		if (m->joined_ms > s->phase_ms && elapsed > 0) {
			joined = (uint64_t)s->cursor *
			    (m->joined_ms - s->phase_ms) / elapsed;
			if (joined > from)
				from = joined;
			if (s->cursor <= from)
				return (m->held);
		}
	}
	span = s->nblocks - m->first_missing;
	passed = s->cursor - from;
	est = m->held + (uint64_t)(s->nblocks - m->held) * passed / span;
	if (est >= s->nblocks)
		est = s->nblocks - 1;
	return ((uint32_t)(est > m->held ? est : m->held));
}

void
eng_member_info(const struct eng_member *m, struct eng_member_info *mi)
{
	memset(mi, 0, sizeof(*mi));
	mi->node = m->node;
	mi->state = m->state;
	mi->result = m->result;
	mi->held = m->held;
	mi->est_held = member_est(m);
	mi->nblocks = m->s->nblocks;
	mi->addr = m->addr;
	mi->hold = m->hold;
	mi->step = eng__ustep_str(m->ustep);
	mi->need = m->nneed;
}
