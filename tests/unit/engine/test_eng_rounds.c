/*
 * test_eng_rounds.c: the repair rounds planner of a slow broadcast link
 * (docs/engine.md "Small and expensive links", engine/reply.c and
 * parity.c; issue 9), on a fake clock over tp_mem.
 *
 * Twelve nodes on a LoRa-like radio (222-byte frames at 5.5 kbit/s, half
 * duplex, 1 % duty), 10 % independent loss each, a 20 KiB package, the
 * link's loss already measured by an earlier session.  Every frame the
 * gateway sends and every count list a node sends is watched:
 *  - the first pass carries, per group, the N99 batch for the measured
 *    loss (eng__fec_rows_n99 of the group's length);
 *  - repair rounds to all ask count lists only from nodes missing
 *    something (UP_SQ_MISSING) in a reply schedule of about 2.5 slots a
 *    node, and no node that holds every block answers one;
 *  - the answers fall in random slots of the schedule, not all in one;
 *  - repair is fresh parity rows only: no (group, row) twice, no block
 *    as DATA again, except for a lone straggler the planner chose to
 *    serve its blocks (and then only blocks it misses).
 * Then the lone straggler: the decision's arithmetic with the link's
 * own figures, and a field where one node loses much more than the rest
 * and is finished alone.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_internal.h"
#include "eng_fixture.h"

#define NODES		12
#define PKG		(20 * 1024)
#define MTU		222
#define WS		(80 * 1024)
#define MAXB		256		/* blocks of the package, at most */
#define MAXG		8
#define MAXROUNDS	64

static uint8_t		 ws[NODES][WS] __attribute__((aligned(16)));

/* 5.5 kbit/s (SF7/125 kHz), 13 bytes of preamble and header. */
static uint32_t
air_5k5(size_t len)
{
	return ((uint32_t)((len + 13) * 8 * 1000000 / 5470));
}

/* What the gateway sent, as the test saw it. */
static struct watch {
	struct efx	*fx;
	int		 lone;		/* node index of the straggler, -1 */
	uint32_t	 ngroups;
	uint16_t	 k;
	bool		 asked;		/* a STATUS_REQ went out */
	unsigned int	 first_parity[MAXG];	/* per group, first pass */
	uint8_t		 data_sent[MAXB];
	uint8_t		 rows_sent[MAXG][512 / 8];
	unsigned int	 data_again;	/* DATA of a block sent before */
	unsigned int	 data_again_bad;	/* ... not for a lone one */
	unsigned int	 rows_again;
	unsigned int	 parity;
	/* Count rounds to all: when their schedule starts, its slots. */
	unsigned int	 nrounds;
	uint64_t	 round_at[MAXROUNDS];
	uint16_t	 round_slots[MAXROUNDS];
	uint16_t	 round_slot_ms[MAXROUNDS];
	unsigned int	 counts_req_bad;	/* a broadcast count ask
						   without MISSING */
	unsigned int	 lone_asks;	/* targeted run-list asks */
	unsigned int	 data_again_verify;	/* after VERIFY's answers */
	enum { ASK_NONE, ASK_COUNTS, ASK_RUNS, ASK_VERIFY } last_ask;
	bool		 deaf_pass;	/* the straggler misses pass 1 */
} W;

/* Every node but the straggler holds every block. */
static bool
w_others_done(struct watch *w)
{
	struct sim_node	*sn;
	int		 k;

	for (k = 0; k < w->fx->nnodes; k++) {
		sn = w->fx->nodes[k];
		if (k != w->lone && (sn->n.offer.nblocks == 0 ||
		    sn->n.nheld != sn->n.offer.nblocks))
			return (false);
	}
	return (true);
}

/* Some node still misses block i. */
static bool
w_missed(struct watch *w, uint32_t i)
{
	int	 k;

	for (k = 0; k < w->fx->nnodes; k++)
		if (!up_bitmap_get(&w->fx->nodes[k]->n.held, i))
			return (true);
	return (false);
}

static void
watch_tx(void *arg, uint64_t now, const uint8_t *frame, size_t len)
{
	struct watch	*w = arg;
	struct eng_session *s = w->fx->s;
	struct up_msg	 m;
	uint32_t	 row, g, i;

	if (up_decode_any(frame, len, &m) != UP_OK)
		return;
	if (s != NULL && W.ngroups == 0 && s->fec_ngroups != 0) {
		w->ngroups = s->fec_ngroups;
		w->k = s->fec_k;
		assert_true(w->ngroups <= MAXG);
	}
	switch (m.type) {
	case UP_T_DATA:
		i = m.u.data.index;
		assert_true(i < MAXB);
		if (w->data_sent[i]) {
			/*
			 * Only after an answer that names blocks (a run list
			 * asked of a lone straggler, or VERIFY's answer of a
			 * node whose count list was lost), never after count
			 * lists; and for a lone straggler, a block it misses.
			 */
			w->data_again++;
			if (w->last_ask == ASK_COUNTS || !w_missed(w, i))
				w->data_again_bad++;
			else if (w->last_ask == ASK_VERIFY)
				w->data_again_verify++;
		}
		/* The straggler sleeps until the others are done. */
		if (w->lone >= 0 && w->deaf_pass && !w->asked)
			w->fx->nodes[w->lone]->deaf = true;
		w->data_sent[i] = 1;
		break;
	case UP_T_PARITY:
		assert_int_equal(up_cparity_split(m.u.data.index,
		    w->ngroups, &row, &g), UP_OK);
		assert_true(g < MAXG && row < 512);
		if (w->rows_sent[g][row / 8] & (1u << (row % 8)))
			w->rows_again++;
		w->rows_sent[g][row / 8] |= (uint8_t)(1u << (row % 8));
		if (!w->asked)
			w->first_parity[g]++;
		w->parity++;
		break;
	case UP_T_VERIFY:
		w->last_ask = ASK_VERIFY;
		break;
	case UP_T_STATUS_REQ:
		w->asked = true;
		if (w->lone >= 0 && w_others_done(w))
			w->fx->nodes[w->lone]->deaf = false;
		w->last_ask = (m.cx.req & UP_SQ_FORM) == UP_SB_COUNTS ?
		    ASK_COUNTS : ASK_RUNS;
		if (m.u.target.node_id != 0) {
			if ((m.cx.req & UP_SQ_FORM) == UP_SB_RUNS)
				w->lone_asks++;
			break;
		}
		if ((m.cx.req & UP_SQ_FORM) != UP_SB_COUNTS)
			break;
		if ((m.cx.req & UP_SQ_MISSING) == 0)
			w->counts_req_bad++;
		if (w->nrounds < MAXROUNDS) {
			w->round_at[w->nrounds] = now + air_5k5(len);
			w->round_slots[w->nrounds] = m.cx.slots;
			w->round_slot_ms[w->nrounds] = m.cx.slot_ms;
		}
		w->nrounds++;
		break;
	default:
		break;
	}
}

static bool
known(struct efx *fx)
{
	return (efx_all_known(fx));
}

/*
 * The field: NODES nodes at `loss' percent, node `lone' (or none: -1)
 * at lone_loss.  The link's loss is set as an earlier session left it.
 */
static struct efx *
field(double loss, int lone, double lone_loss)
{
	struct efx		*fx;
	struct tp_mem_params	 mp;
	struct eng_params	 p;
	struct sim_node		*sn;
	int			 k;

	efx_default_link(&mp);
	mp.caps.mtu = MTU;
	mp.caps.flags = TP_CAP_BROADCAST | TP_CAP_UNICAST |
	    TP_CAP_HALF_DUPLEX | TP_CAP_COMPACT | TP_CAP_FCS;
	mp.caps.bitrate_bps = 5470;
	mp.caps.frame_overhead = 13;
	mp.caps.duty_cycle_ppm = 10000;
	mp.caps.duty_window_ms = 3600000;
	mp.caps.tx_queue = 4;
	mp.tx_done = true;
	mp.air_fn = air_5k5;
	efx_default_params(&p);
	p.max_rounds = 10;
	p.discover_interval_s = 30;
	fx = efx_new(&tp_mem_air_ops, &mp, &p, PKG);
	memset(&W, 0, sizeof(W));
	W.fx = fx;
	W.lone = lone;
	tp_mem_set_tx_hook(fx->m, watch_tx, &W);
	for (k = 0; k < NODES; k++) {
		sn = efx_node(fx, 0xd00 + k, 256 * 1024, k == lone ?
		    lone_loss : loss);
		sn->info.max_frame = MTU;
		sim_node_set_link(sn, UP_NL_COMPACT);
		sn->nlink.uplink_mtu = MTU;
		sn->nlink.slots = 16;
		sn->nlink.slot_ms = 1000;
		up_node_set_link(&sn->n, &sn->nlink);
		up_node_set_fec_workspace(&sn->n, ws[k], WS);
	}
	assert_true(efx_run(fx, known, 2 * 3600 * 1000));
	/* The loss the nodes reported after an earlier first pass. */
	fx->l->loss_ppm = 100000;
	return (fx);
}

static void
run_all(struct efx *fx)
{
	int	 k;

	efx_start(fx);
	assert_true(efx_run(fx, efx_done, 48 * 3600 * 1000));
	for (k = 0; k < NODES; k++) {
		assert_int_equal(fx->kn[k].state, ENG_M_UPDATED);
		assert_int_equal(fx->kn[k].finals, 1);
	}
}

/* Slot of an answer at `at' in count round r, or -1: not in it. */
static int
slot_of(unsigned int r, uint64_t at)
{
	uint64_t	 end;

	if (r >= MAXROUNDS || W.round_slot_ms[r] == 0 || at < W.round_at[r])
		return (-1);
	end = W.round_at[r] + (uint64_t)W.round_slots[r] *
	    W.round_slot_ms[r] * 1000;
	if (at >= end)
		return (-1);
	return ((int)((at - W.round_at[r]) / (W.round_slot_ms[r] * 1000)));
}

static void
test_rounds(void **state)
{
	struct efx		*fx;
	struct eng_session_info	 si;
	uint64_t		 counts = 0, complete = 0;
	unsigned int		 r, n, spread = 0, multi = 0;
	uint32_t		 g;
	uint16_t		 m;
	uint8_t			 used[256];
	int			 k, sl;

	(void)state;
	fx = field(10, -1, 0);
	run_all(fx);
	eng_session_info(fx->s, &si);
	assert_true(W.ngroups > 0);

	/* The first pass: the N99 batch of each group, for 10 %. */
	for (g = 0; g < W.ngroups; g++) {
		m = up_fec_group_len(si.nblocks, W.k, g);
		assert_int_equal(W.first_parity[g],
		    eng__fec_rows_n99(m, 100000));
	}
	/* Every block went out once as DATA... */
	for (g = 0; g < si.nblocks; g++)
		assert_int_equal(W.data_sent[g], 1);
	/* ... and repair was fresh rows only. */
	assert_int_equal(W.rows_again, 0);
	assert_int_equal(W.data_again_bad, 0);

	/* Count rounds to all, with MISSING, in schedules for the asked. */
	assert_true(W.nrounds > 0);
	assert_int_equal(W.counts_req_bad, 0);
	assert_true(W.round_slots[0] >= (NODES * 5) / 2);

	/* Answers only from nodes missing something, in random slots. */
	for (k = 0; k < NODES; k++) {
		counts += fx->nodes[k]->counts_sent;
		complete += fx->nodes[k]->counts_complete;
	}
	assert_true(counts > 0);
	assert_int_equal(complete, 0);
	for (r = 0; r < W.nrounds && r < MAXROUNDS; r++) {
		memset(used, 0, sizeof(used));
		for (n = 0, k = 0; k < NODES; k++) {
			struct sim_node	*sn = fx->nodes[k];
			uint64_t	 i;

			for (i = 0; i < sn->counts_sent &&
			    i < SIM_NODE_COUNTS_AT; i++)
				if ((sl = slot_of(r, sn->counts_at[i])) >= 0) {
					assert_true(sl < W.round_slots[r]);
					if (sl < 256 && !used[sl]++)
						n++;
					else
						n += 0;
				}
		}
		/* n: distinct slots used in round r. */
		if (n >= 2)
			spread++;
		for (sl = 0, k = 0; k < 256; k++)
			sl += used[k];
		if (sl >= 3)
			multi++;
	}
	print_message("%u blocks, %u groups: first pass %u rows; %u count "
	    "rounds to all (%u with 3+ answers, %u spread over 2+ slots), "
	    "%" PRIu64 " count lists, %u parity frames, %u DATA again "
	    "(%u after VERIFY), %" PRIu64 " lone rounds\n", si.nblocks,
	    W.ngroups, W.first_parity[0], W.nrounds, multi, spread, counts,
	    W.parity, W.data_again, W.data_again_verify, si.lone_rounds);
	assert_true(multi > 0);
	assert_true(spread >= multi);
	efx_free(fx);
}

/*
 * The decision's arithmetic on this link: 218-byte blocks in 235-byte
 * frames (356 ms), a 16-byte targeted ask and a run list of its own.
 */
static void
test_lone_cost(void **state)
{
	struct efx	*fx;
	struct eng_link	*l;

	(void)state;
	fx = field(10, -1, 0);
	l = fx->l;
	/* Holding no row (D = e): its 5 blocks, not 5 + 2 rows. */
	assert_true(eng__lone_cheaper(l, 94, 5, 5, 1));
	/* Rows in two groups: 4 more rows saved. */
	assert_true(eng__lone_cheaper(l, 94, 6, 6, 2));
	/* One row held of 5: its 5 blocks against 4 + 2 rows. */
	assert_true(eng__lone_cheaper(l, 94, 5, 4, 1));
	/* Three rows held: 5 blocks against 2 + 2 rows: parity. */
	assert_false(eng__lone_cheaper(l, 94, 5, 2, 1));
	assert_false(eng__lone_cheaper(l, 94, 5, 3, 1));
	/* A run list that needs more than one uplink frame: parity. */
	assert_false(eng__lone_cheaper(l, 94, 120, 120, 2));
	/* Nothing missing, or nonsense: no. */
	assert_false(eng__lone_cheaper(l, 94, 0, 0, 0));
	assert_false(eng__lone_cheaper(l, 94, 3, 4, 1));
	efx_free(fx);
}

/*
 * A straggler alone: eleven nodes on a clean link finish with the first
 * pass and its repair; the twelfth sleeps through them (deaf from the
 * first DATA to the first STATUS_REQ after the others are done), so it
 * misses every block and holds no row.  Its
 * count list alone comes back (94 rows short of 94 blocks: no row
 * held); the planner asks it alone for its run list and sends its
 * blocks (94 frames, not 94 + 2 rows per group); none reaches it while
 * it holds it already, no row goes twice, and it is updated like the
 * rest.  (At 1 % duty that pass waits most of an hour for budget, longer
 * than the fixture's 600 s session deadline: the node then takes the
 * session for stale and drops its tagged DATA until a frame names the
 * session, so a second lone round sends what it dropped.)
 */
static void
test_lone_straggler(void **state)
{
	struct efx		*fx;
	struct eng_session_info	 si;

	(void)state;
	fx = field(0, 7, 0);
	W.deaf_pass = true;
	run_all(fx);
	eng_session_info(fx->s, &si);
	print_message("lone straggler: %" PRIu64 " lone rounds, %u targeted "
	    "run-list asks, %u blocks sent again, %u parity frames, %"
	    PRIu64 " count rounds\n", si.lone_rounds, W.lone_asks,
	    W.data_again, W.parity, si.count_rounds);
	assert_true(si.lone_rounds >= 1);
	assert_true(W.lone_asks >= si.lone_rounds);
	/* Its blocks again, and only blocks someone missed when sent. */
	assert_true(W.data_again >= si.nblocks);
	assert_int_equal(W.data_again_bad, 0);
	assert_int_equal(W.rows_again, 0);
	assert_int_equal(fx->nodes[7]->dup_data, 0);
	efx_free(fx);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rounds),
		cmocka_unit_test(test_lone_cost),
		cmocka_unit_test(test_lone_straggler),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
