/*
 * rplan.c: the repair planner of a polled bus (docs/engine.md, "Polled
 * links"; docs/transports/modbus.md, "Repair: broadcast or unicast").
 *
 * On a polled bus that can broadcast (Modbus RTU) a pass goes to every
 * node at once, then each node is asked for its bitmap.  What it misses
 * can go two ways: written to it alone (each request confirmed by the
 * node, both silences on the line), or broadcast again to every node
 * (no confirmation, one silence) and every node that missed some of it
 * asked again.  A node that missed the pass altogether (a starved node
 * process, a node rebooting) made the first choice expensive: a whole
 * copy written to one node; and blocks several nodes miss were written
 * once per node.
 *
 * So after a pass to all the members' answers are gathered first: a
 * member whose exact needed set is known waits (m->plan_wait, its set
 * kept) until every member still receiving has answered, or is waiting
 * for a later turn (a node that is off).  Then, from the sets, the
 * planner counts for each block the nodes that miss it (k) and compares
 * line time, research/transports.md §3.6: a block to all costs
 * bc = (request)·c + t3.5 (+ the broadcast gap), to one node
 * uc = (request + 8-byte reply)·c + 2·t3.5, and asking a node again ask =
 * its STATUS_REQ and a poll (the plugin's airtime() and poll_time()
 * give each, so the formulas live in the plugin).  A block is worth
 * broadcasting when bc < k·uc; the set R so chosen is worth its round
 * when the writes it saves, sum(k·uc), exceed sum(bc) plus ask for each
 * node that is asked once more because of it: every node is asked
 * again once its blocks are in, whichever way they came, but one with
 * blocks both in R and out of it is asked after the pass and again
 * after its own writes.  Both the set of every such block and the set
 * of those at least two nodes miss are priced; the cheaper wins, or
 * none does and every node gets its own writes.  The chosen blocks go
 * by broadcast (a pass, UP_F_REPAIR), the nodes that missed them are
 * asked again after it, and the plan is made again; the other nodes
 * keep their sets and are served alone.
 *
 * With no broadcast gap a block to all costs less than to one node
 * even when one node alone misses it (8 characters and one t3.5
 * less), so everything missed goes to all again; a gap for nodes that
 * write flash slowly (broadcast_gap_us) raises the count of nodes that
 * must miss a block before it does: k > bc / uc.
 */
#include <sys/queue.h>

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "engine_internal.h"

/* Bytes of a STATUS_REQ targeted at one node (full form, §4.6). */
#define PLAN_ASK_LEN	(UP_HDR_LEN + 8 + UP_CRC_LEN)

static bool
plan_candidate(const struct eng_plan_cost *c, uint32_t b, uint32_t nblocks,
    uint32_t k, uint32_t min_k)
{
	uint64_t	 bc, uc;

	if (k < min_k || k == 0)
		return (false);
	bc = b + 1 == nblocks ? c->bcast_last_us : c->bcast_us;
	uc = b + 1 == nblocks ? c->one_last_us : c->one_us;
	return (bc < (uint64_t)k * uc);
}

/* Line time saved by re-broadcasting the candidates of min_k, us. */
static int64_t
plan_saving(const struct up_bitmap *const *needs, size_t n, uint32_t nblocks,
    const uint16_t *k, const struct eng_plan_cost *c, uint32_t min_k)
{
	uint64_t	 to_all = 0, to_one = 0;
	uint32_t	 b, nodes = 0;
	size_t		 i;

	for (b = 0; b < nblocks; b++) {
		if (!plan_candidate(c, b, nblocks, k[b], min_k))
			continue;
		to_all += b + 1 == nblocks ? c->bcast_last_us : c->bcast_us;
		to_one += (uint64_t)k[b] * (b + 1 == nblocks ?
		    c->one_last_us : c->one_us);
	}
	if (to_all == 0)
		return (0);
	/*
	 * A node is asked again once its blocks are in, either way.  One
	 * with blocks in the set and blocks out of it is asked twice: after
	 * the pass to all, and after its own writes.
	 */
	for (i = 0; i < n; i++) {
		bool	 in = false, out = false;

		for (b = up_bitmap_next_set(needs[i], 0); b < nblocks &&
		    !(in && out); b = up_bitmap_next_set(needs[i], b + 1)) {
			if (plan_candidate(c, b, nblocks, k[b], min_k))
				in = true;
			else
				out = true;
		}
		if (in && out)
			nodes++;
	}
	return ((int64_t)to_one - (int64_t)(to_all +
	    (uint64_t)nodes * c->ask_us));
}

uint32_t
eng__plan_choose(const struct up_bitmap *const *needs, size_t n,
    uint32_t nblocks, const struct eng_plan_cost *c, struct up_bitmap *out,
    int64_t *saved_us)
{
	uint16_t	*k;
	int64_t		 s_all, s_multi, best;
	uint32_t	 b, min_k, chosen = 0;
	size_t		 i;

	*saved_us = 0;
	if (n == 0 || nblocks == 0)
		return (0);
	k = eng__xcalloc(nblocks, sizeof(*k));
	for (i = 0; i < n; i++)
		for (b = up_bitmap_next_set(needs[i], 0); b < nblocks;
		    b = up_bitmap_next_set(needs[i], b + 1))
			if (k[b] < UINT16_MAX)
				k[b]++;
	s_all = plan_saving(needs, n, nblocks, k, c, 1);
	s_multi = plan_saving(needs, n, nblocks, k, c, 2);
	best = s_all >= s_multi ? s_all : s_multi;
	min_k = s_all >= s_multi ? 1 : 2;
	if (best > 0) {
		for (b = 0; b < nblocks; b++)
			if (plan_candidate(c, b, nblocks, k[b], min_k)) {
				up_bitmap_set(out, b);
				chosen++;
			}
		*saved_us = best;
	}
	free(k);
	return (chosen);
}

/* ------------------------------------------------------------------ */
/* In the session                                                       */

bool
eng__plan_park(struct eng_member *m)
{
	struct eng_session	*s = m->s;

	if (!s->plan_open || s->shape != ENG_SHAPE_POLLED ||
	    m->need_buf == NULL || m->nneed == 0)
		return (false);
	m->plan_wait = true;
	s->nplan_wait++;
	return (true);
}

void
eng__plan_unpark(struct eng_member *m)
{
	if (!m->plan_wait)
		return;
	m->plan_wait = false;
	m->s->nplan_wait--;
}

/*
 * Every member still receiving has answered: none is in a turn without
 * its set, none queued to be served now.  A member queued for later (a
 * node that is off, asked again after its silence) or one that answers
 * busy (asked again after its back-off, maybe for minutes) does not
 * hold the others: it is served alone when its turn comes.
 */
static bool
plan_ready(const struct eng_session *s)
{
	const struct eng_member	*m;
	uint64_t		 now = eng__now_us(s->e);

	if (s->nplan_wait == 0)
		return (false);
	TAILQ_FOREACH(m, &s->members, entry) {
		if (m->gone || m->plan_wait || m->state != ENG_M_RECEIVING ||
		    m->busy_since_ms != 0)
			continue;
		if (m->ustep >= ENG_U_CONNECT)
			return (false);		/* being asked */
		if (m->ustep == ENG_U_QUEUED && m->u_nb <= now)
			return (false);		/* about to be */
		if (m->ustep == ENG_U_NONE && m->addr.len != 0 &&
		    !eng__off_pending(m))
			return (false);		/* not queued yet */
	}
	return (true);
}

/* The line times of the plan, from the plugin (§3.6 in its airtime()). */
static void
plan_costs(struct eng_session *s, const struct tp_addr *one,
    struct eng_plan_cost *c)
{
	struct eng_link	*l = s->l;
	struct tp_addr	 all;
	size_t		 full, last;

	/* A DATA frame: its header, the block, a CRC in the full form. */
	full = eng__data_off(s, 0) + s->block_size +
	    (s->compact ? 0 : UP_CRC_LEN);
	last = eng__data_off(s, s->nblocks - 1) +
	    eng__block_len(s, s->nblocks - 1) + (s->compact ? 0 : UP_CRC_LEN);
	tp_addr_broadcast(&all);
	c->bcast_us = eng__link_airtime(l, &all, full);
	c->bcast_last_us = eng__link_airtime(l, &all, last);
	c->one_us = eng__link_airtime(l, one, full);
	c->one_last_us = eng__link_airtime(l, one, last);
	c->ask_us = eng__link_airtime(l, one, PLAN_ASK_LEN) +
	    (l->ops->poll_time != NULL ? l->ops->poll_time(l->tp, one) : 0);
}

bool
eng__plan_round(struct eng_session *s)
{
	const struct up_bitmap	**needs;
	struct eng_member	*m;
	struct eng_plan_cost	 c;
	struct tp_addr		 one;
	int64_t			 saved;
	uint32_t		 n = 0, chosen, b;

	if (!s->plan_open || s->l == NULL || s->nblocks == 0 ||
	    !plan_ready(s))
		return (false);
	needs = eng__xcalloc(s->nplan_wait, sizeof(*needs));
	TAILQ_FOREACH(m, &s->members, entry) {
		if (!m->plan_wait)
			continue;
		if (m->state != ENG_M_RECEIVING || m->need_buf == NULL) {
			/* Moved on (or cancelled) while it waited. */
			eng__plan_unpark(m);
			free(m->need_buf);
			m->need_buf = NULL;
			memset(&m->need, 0, sizeof(m->need));
			m->nneed = 0;
			continue;
		}
		needs[n++] = &m->need;
		one = m->addr;
	}
	if (n == 0) {
		free(needs);
		return (false);
	}
	plan_costs(s, &one, &c);
	up_bitmap_clear_all(&s->needed);
	s->nneeded = 0;
	chosen = eng__plan_choose(needs, n, s->nblocks, &c, &s->needed,
	    &saved);
	free(needs);
	s->plans++;
	s->nneeded = chosen;
	/*
	 * The members wait no more: those with a block going to all are
	 * asked again after the pass (their sets go), the others keep
	 * theirs and are served alone.
	 */
	TAILQ_FOREACH(m, &s->members, entry) {
		if (!m->plan_wait)
			continue;
		eng__plan_unpark(m);
		if (chosen == 0)
			continue;
		for (b = up_bitmap_next_set(&m->need, 0); b < s->nblocks;
		    b = up_bitmap_next_set(&m->need, b + 1))
			if (up_bitmap_get(&s->needed, b))
				break;
		if (b < s->nblocks) {
			free(m->need_buf);
			m->need_buf = NULL;
			memset(&m->need, 0, sizeof(m->need));
			m->nneed = 0;
		}
	}
	if (chosen == 0) {
		/* Every node its own writes; until the next pass to all. */
		s->plan_open = false;
		eng__debug("session %08x: repair plan: %u nodes, each alone",
		    s->id, n);
		return (false);
	}
	s->rebcast += chosen;
	eng__info("session %08x: repair plan: %u blocks to all again for %u "
	    "nodes (saves %" PRId64 " ms of line time)", s->id, chosen, n,
	    saved / 1000);
	return (true);
}
