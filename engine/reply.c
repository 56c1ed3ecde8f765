/*
 * reply.c: how nodes answer on small and expensive links: reply
 * schedules, the status form of a round, count lists and the round's
 * aggregate (docs/engine.md, "Small and expensive links";
 * docs/up-protocol.md §11.7, §11.9).
 *
 * Reply schedules.  On a shared half-duplex medium answers that overlap
 * are lost, and on a duty-cycled one a lost answer costs minutes.  So a
 * compact request on a slow link (profile.c: an answer takes a
 * millisecond or more on the air) carries a schedule sized to the nodes
 * it asks and to the link: slots about 2.5 times the nodes, each as long
 * as an answer on the air plus a turnaround.  The session's wait and the
 * half-duplex quiet (link.c) follow from it.
 *
 * Status forms.  A LAN asks for bitmap slices (full frames) or run lists
 * (compact).  Where every uplink byte costs airtime (a slow link) and the
 * session repairs with parity that every receiving member can use, a
 * round asks for count lists ("still n rows in group g") from the nodes
 * that miss something only (UP_SQ_MISSING): a node that holds every
 * block stays silent, so a round is paid by the nodes that need it.
 * Silence is then ambiguous (complete, or an answer lost): a silent node
 * is presumed complete and goes to VERIFY, which a node still missing
 * blocks answers with a run list (§11.5.7).
 *
 * Count lists name no block, so what they ask for is parity: the
 * round's aggregate (up_status_agg) holds, per group, the most rows any
 * node needs, and each such group gets that many fresh rows plus
 * ENG_FEC_EXTRA (TS004's code needs on average 1.6 more rows than the
 * blocks it recovers, §4.6).  A group whose rows run out (the row limit,
 * or a parity code past what the block size's index carries) cannot be
 * served that way: the next round asks for run lists, and those blocks
 * go as DATA.
 *
 * The lone straggler.  When the count lists of a round came from one
 * member, the only one still receiving, the engine weighs what it would
 * send against asking that member alone (a targeted STATUS_REQ and its
 * answer) for its run list and sending exactly its blocks as DATA
 * (eng__lone_check).  On shared air a frame to one costs what a frame to
 * all does, so the only gains are in what is sent: parity by count costs
 * D + ENG_FEC_EXTRA rows per group (D: the rank the node's decoders
 * lack), the blocks cost e frames (e: the blocks it misses, e >= D, the
 * difference being rows its decoders hold).  A node holding few rows (no
 * parity yet, or decoders lost in a power cut) is served cheaper by its
 * blocks; one holding many by parity.  docs/transports/lora.md, "The
 * lone straggler", has the figures.
 */
#include <sys/queue.h>

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "engine_internal.h"

uint64_t
eng__ask_schedule(struct eng_session *s, uint8_t type, unsigned int n)
{
	struct eng_link	*l = s->l;
	uint64_t	 w, floor = eng__window(s);

	s->sched_slots = s->sched_slot_ms = 0;
	if (l == NULL || !l->pf.slow || !s->compact || n == 0)
		return (floor);
	/*
	 * Every answer is one frame: an ACCEPT's and a STATUS's list is
	 * cut to the node's uplink, a RESULT fits one (§11.6).
	 */
	eng__schedule(l, n, 1, &s->sched_slots, &s->sched_slot_ms);
	w = eng__schedule_ms(l, n, 1);
	(void)type;
	return (w > floor ? w : floor);
}

void
eng__status_form(struct eng_session *s)
{
	struct eng_member	*m;
	bool			 counts;

	s->sched_req = 0;
	s->sq_missing = false;
	if (!s->compact)
		return;		/* bitmap slices in full frames */
	s->sched_req = UP_SB_RUNS;
	counts = s->fec_k != 0 && s->shape == ENG_SHAPE_BROADCAST &&
	    s->l != NULL && s->l->pf.slow && !s->want_runs;
	TAILQ_FOREACH(m, &s->members, entry)
		if (m->state == ENG_M_RECEIVING && m->acaps_known &&
		    (m->acaps & UP_ACAP_PARITY) == 0)
			counts = false;	/* it needs its blocks as DATA */
	s->want_runs = false;
	if (counts) {
		s->sched_req = UP_SB_COUNTS | UP_SQ_MISSING;
		s->sq_missing = true;
		s->count_rounds++;
	}
}

/* ------------------------------------------------------------------ */
/* The round's aggregate                                                */

void
eng__agg_free(struct eng_session *s)
{
	free(s->agg_bits);
	free(s->agg_need);
	s->agg_bits = s->agg_need = NULL;
	memset(&s->agg, 0, sizeof(s->agg));
}

void
eng__agg_open(struct eng_session *s)
{
	uint32_t	 ng;

	eng__agg_free(s);
	if (s->nblocks == 0)
		return;
	ng = s->fec_k != 0 ? s->fec_ngroups : 1;
	s->agg_bits = eng__xcalloc(1, up_bitmap_bytes(s->nblocks));
	s->agg_need = eng__xcalloc(ng, 1);
	eng__agg_round(s);
}

void
eng__agg_round(struct eng_session *s)
{
	uint32_t	 ng;

	if (s->agg_bits == NULL)
		return;
	ng = s->fec_k != 0 ? s->fec_ngroups : 1;
	(void)up_status_agg_init(&s->agg, s->nblocks, s->fec_k,
	    s->agg_bits, up_bitmap_bytes(s->nblocks), s->agg_need, ng);
	s->round_counts = 0;
}

void
eng__agg_add(struct eng_session *s, const struct up_status_body *st)
{
	if (s->agg_bits == NULL || st->form == UP_SB_BITMAP)
		return;
	(void)up_status_agg_add(&s->agg, st);
}

/*
 * The round's count lists become parity plans: per group the most rows
 * a node needs, and ENG_FEC_EXTRA more.  Called before the repair pass
 * is planned (eng__fec_plan).
 */
static void
reply_count_plan(struct eng_session *s)
{
	uint32_t	 g, rows;

	if (s->fec_k == 0 || s->agg.counts == 0)
		return;
	for (g = 0; g < s->fec_ngroups; g++) {
		if (s->agg.need[g] == 0)
			continue;
		rows = (uint32_t)s->agg.need[g] + ENG_FEC_EXTRA;
		if ((uint32_t)s->fec_next[g] + rows - 1 > UP_FEC_ROW_MAX) {
			/* Out of rows: its blocks go as DATA, by run lists. */
			s->fec_flags[g] |= ENG_FEC_DATA;
			s->want_runs = true;
			continue;
		}
		if (rows > s->fec_plan[g])
			s->fec_plan[g] = (uint16_t)rows;
		s->fec_flags[g] |= ENG_FEC_COUNT;
		s->fec_counted = true;
	}
}

void
eng__counts_apply(struct eng_session *s, struct eng_member *m,
    const struct up_status_body *st)
{
	uint32_t	 missing;

	if (up_status_check(st, s->nblocks, s->fec_k != 0 ? s->fec_ngroups :
	    0) != UP_OK) {
		eng__debug("session %08x: node 0x%016" PRIx64 ": count list "
		    "past its %u groups, ignored", s->id, m->node,
		    s->fec_ngroups);
		return;
	}
	s->counts_heard++;
	missing = st->missing < s->nblocks ? st->missing : s->nblocks;
	if (missing > 0) {
		s->round_counts++;
		s->round_node = m->node;
	}
	m->known = true;
	m->held = s->nblocks - missing;
	if (missing == 0) {
		m->held = s->nblocks;
		if (m->state <= ENG_M_RECEIVING)
			eng__set_state(m, ENG_M_DOWNLOADED);
		else
			eng__progress(m);
		return;
	}
	if (m->state != ENG_M_RECEIVING)
		eng__set_state(m, ENG_M_RECEIVING);
	else
		eng__progress(m);
	if (s->fec_k == 0) {
		/* One group of everything: only its blocks can repair it. */
		s->want_runs = true;
		return;
	}
	eng__agg_add(s, st);
	reply_count_plan(s);
}

void
eng__sq_missing_end(struct eng_session *s)
{
	struct eng_member	*m;

	if (!s->sq_missing)
		return;
	s->sq_missing = false;
	TAILQ_FOREACH(m, &s->members, entry) {
		if (!m->asked || m->answered || m->state != ENG_M_RECEIVING)
			continue;
		/*
		 * Silent to "answer only if missing something": complete, or
		 * its answer was lost.  VERIFY tells: a node still missing
		 * blocks answers it with its run list.
		 */
		eng__answered(m);
		/*
		 * As a node that says "nothing missing" (counts_apply): the
		 * first pass's loss measure (eng__fec_measure) would count
		 * the blocks it held at its ACCEPT as lost.
		 */
		m->held = s->nblocks;
		eng__set_state(m, ENG_M_DOWNLOADED);
	}
}

/* ------------------------------------------------------------------ */
/* The lone straggler                                                   */

/* A compact targeted STATUS_REQ: header, node id, schedule, CRC. */
#define REPLY_TREQ_BYTES	16
/* A compact STATUS's fixed part before its list (§11.7), at most. */
#define REPLY_STATUS_BYTES	16

static unsigned int
reply_varint_len(uint32_t v)
{
	unsigned int	 n = 1;

	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return (n);
}

bool
eng__lone_cheaper(struct eng_link *l, uint32_t nblocks, uint32_t missing,
    uint32_t deficit, uint32_t groups)
{
	uint64_t	 frame, parity, runs;
	size_t		 list, up;

	if (l == NULL || !l->pf.slow || missing == 0 || groups == 0 ||
	    deficit > missing)
		return (false);
	/*
	 * Its run list must come back in one frame: at worst every block
	 * it misses is a run of its own, two varints each.
	 */
	list = REPLY_STATUS_BYTES + (size_t)missing * 2 *
	    reply_varint_len(nblocks);
	up = l->pf.answer_bytes > l->caps.frame_overhead ?
	    l->pf.answer_bytes - l->caps.frame_overhead : 0;
	if (list > up)
		return (false);
	frame = l->pf.frame_us;
	parity = ((uint64_t)deficit + (uint64_t)ENG_FEC_EXTRA * groups) *
	    frame;
	/*
	 * Air, the budget's measure: the gateway's request, the node's
	 * answer, the frames.  The reply slot's idle turnaround is wall
	 * time only (and parity short by a row costs a round of its own).
	 */
	runs = eng__air(l, REPLY_TREQ_BYTES) + eng__air(l, list) +
	    (uint64_t)missing * frame;
	return (runs < parity);
}

void
eng__lone_check(struct eng_session *s)
{
	struct eng_member	*m, *lone = NULL;
	uint32_t		 g, d = 0, ng = 0, e;

	if (s->fec_k == 0 || !s->fec_counted || s->round_counts != 1 ||
	    s->nstate[ENG_M_RECEIVING] != 1 || s->agg_need == NULL)
		return;
	TAILQ_FOREACH(m, &s->members, entry)
		if (m->state == ENG_M_RECEIVING)
			lone = m;
	/*
	 * The list was its own; it is asked alone next round (eng__ask);
	 * it uses parity (its ACCEPT said so).
	 */
	if (lone == NULL || lone->node != s->round_node || !lone->known ||
	    s->nmembers < 3 ||
	    (lone->acaps_known && (lone->acaps & UP_ACAP_PARITY) == 0))
		return;
	/* One list this round: the aggregate is that member's. */
	for (g = 0; g < s->fec_ngroups; g++)
		if (s->agg.need[g] != 0) {
			d += s->agg.need[g];
			ng++;
		}
	e = s->nblocks - (lone->held < s->nblocks ? lone->held : s->nblocks);
	if (!eng__lone_cheaper(s->l, s->nblocks, e, d, ng))
		return;
	eng__info("session %08x: node 0x%016" PRIx64 " alone misses %u "
	    "blocks (%u rows short in %u groups): its run list and its "
	    "blocks, not parity", s->id, lone->node, e, d, ng);
	for (g = 0; g < s->fec_ngroups; g++)
		if ((s->fec_flags[g] & ENG_FEC_COUNT) != 0) {
			s->fec_flags[g] &= (uint8_t)~ENG_FEC_COUNT;
			s->fec_plan[g] = 0;
		}
	s->fec_counted = false;
	s->want_runs = true;
	s->lone_rounds++;
}
