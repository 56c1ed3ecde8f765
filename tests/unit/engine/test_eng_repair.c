/*
 * test_eng_repair.c: the engine's repair planners (TS004 parity, XOR),
 * the engine alone on a fake clock over tp_mem, with simulated nodes
 * running the real node engine (with an FEC workspace, or without one
 * like an MCU-light node, or dropping XOR like an older node).  The same
 * loss pattern is repaired once by resending the union of the lost
 * blocks (fec = no), once with parity and once with XOR: parity and XOR
 * must need far fewer repair frames, and nodes without them must still
 * finish.  The fixture is eng_fixture.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <event2/event.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eng_fixture.h"

#define FX_MAX_NODES	EFX_MAX_NODES


/* FEC workspace of a node: 4 groups of 64 rows of 1 KiB. */
#define FX_WS	(UP_NODE_FEC_SLOTS * \
    (sizeof(struct up_fec_dec) + 64 * 1024) + 2 * 1024 + 16)
static uint64_t	 fx_ws[FX_MAX_NODES][FX_WS / 8 + 1];

/*
 * Blocks each node decoded from parity, sampled while the loop runs: the
 * activation reboot re-initialises the node's engine and its counters.
 */
static uint32_t	 fx_recovered[FX_MAX_NODES];

static bool
fx_acked_sampling(struct efx *fx)
{
	int	 i;

	for (i = 0; i < fx->nnodes; i++)
		if (fx->nodes[i]->n.fec_recovered > fx_recovered[i])
			fx_recovered[i] = fx->nodes[i]->n.fec_recovered;
	return (efx_done(fx));
}

struct fx_result {
	uint32_t	 nblocks;
	uint64_t	 data;		/* DATA frames */
	uint64_t	 parity;	/* PARITY frames */
	uint64_t	 xor_;		/* XOR frames */
	uint64_t	 repair;	/* all three, beyond the first pass */
	uint64_t	 recovered;	/* blocks the nodes decoded */
	uint64_t	 lost_any;
};

/*
 * n nodes at loss % each, the first n_fec of them with a workspace; one
 * campaign to the end.  proactive is the fec_proactive option.
 */
static int	 fx_xor;	/* the xor option of the next fx_race */
static int	 fx_no_xor;	/* nodes (the last ones) that drop XOR */

static void
fx_race(int fec, int n, int n_fec, double loss, const char *proactive,
    struct fx_result *r)
{
	struct efx		*fx;
	struct eng_params	 p;
	struct tp_mem_counts	*c;
	struct sim_node		*sn;
	int			 k;

	efx_default_params(&p);
	p.fec = fec != 0;
	p.fec_k = 64;
	p.fec_proactive = strcmp(proactive, "auto") == 0 ? ENG_FEC_AUTO :
	    atoi(proactive);
	p.max_rounds = 10;
	p.xor_repair = fx_xor != 0;
	fx = efx_new(&tp_mem_ops, NULL, &p, 600 * 1024 + 333);
	for (k = 0; k < n; k++) {
		sn = efx_node(fx, 0x100 + k, 1024 * 1024, loss);
		sn->no_xor = k >= n - fx_no_xor;
		if (k < n_fec)
			up_node_set_fec_workspace(&sn->n, fx_ws[k],
			    sizeof(fx_ws[k]));
	}
	memset(fx_recovered, 0, sizeof(fx_recovered));
	efx_start(fx);
	assert_true(efx_run(fx, fx_acked_sampling, 120000));
	assert_int_equal(efx_nstate(fx, UP_NS_UPDATED), n);
	assert_int_equal(efx_nfinal(fx, ENG_M_UPDATED), n);
	for (k = 0; k < n; k++)
		assert_string_equal(sim_node_version(fx->nodes[k], "app"),
		    "1.1.0");
	c = efx_counts(fx);
	memset(r, 0, sizeof(*r));
	r->nblocks = up_nblocks((uint32_t)fx->pkg_len, p.block_size);
	r->data = c->by_type[UP_T_DATA];
	r->parity = c->by_type[UP_T_PARITY];
	r->xor_ = c->by_type[UP_T_XOR];
	r->repair = r->data + r->parity + r->xor_ - r->nblocks;
	r->lost_any = c->data_lost_any;
	for (k = 0; k < n; k++)
		r->recovered += fx_recovered[k];
	print_message("fec=%s xor=%s proactive=%s nodes=%d (fec %d, no xor "
	    "%d) loss=%.0f%%: %u blocks, %" PRIu64 " DATA, %" PRIu64
	    " PARITY, %" PRIu64 " XOR, %" PRIu64 " repair frames, %" PRIu64
	    " lost by >= 1 node, %" PRIu64 " decoded\n", fec ? "yes" : "no",
	    fx_xor ? "yes" : "no", proactive, n, n_fec, fx_no_xor, loss,
	    r->nblocks, r->data, r->parity, r->xor_, r->repair, r->lost_any,
	    r->recovered);
	efx_free(fx);
}

/*
 * 20 nodes at 5 % independent loss.  Resending the union costs about
 * one frame per block lost by any node (1 - 0.95^20 = 64 % of them);
 * parity costs about the worst node's loss per group of 64, plus TS004's
 * ~2 rows: far less.
 */
static void
test_parity_vs_union(void **state)
{
	struct fx_result	 u, p;

	(void)state;
	fx_race(0, 20, 20, 5.0, "0", &u);
	fx_race(1, 20, 20, 5.0, "0", &p);
	assert_int_equal(u.parity, 0);
	assert_true(u.repair >= u.lost_any / 2);
	assert_true(p.parity > 0);
	/* Every node decoded blocks from parity. */
	assert_true(p.recovered > 0);
	/* Far fewer repair frames: under half of the union's. */
	assert_true(p.repair * 2 < u.repair);
	/*
	 * Bounded by the worst node per group: at 5 % of 64 blocks the
	 * worst of 20 nodes loses about 8, TS004 needs about 2 more, the
	 * parity itself is lost 5 % of the time: ~12 per group.
	 */
	assert_true(p.repair <= 14 * up_fec_ngroups(p.nblocks, 64));
}

/*
 * Nodes without an FEC workspace ignore PARITY; after one parity round
 * the gateway resends their blocks as DATA and they finish too.
 */
static void
test_parity_mixed_nodes(void **state)
{
	struct fx_result	 r;

	(void)state;
	fx_race(1, 8, 5, 5.0, "0", &r);
	assert_true(r.parity > 0);
	assert_true(r.recovered > 0);
	/* Everyone updated (checked in fx_race) with DATA repairs too. */
	assert_true(r.data > r.nblocks);
}

/*
 * Proactive parity in the first pass (here 10 % of k: 7 rows per group)
 * repairs most losses before any STATUS round: what is left for the
 * repair rounds is a fraction of what they carry without it.
 */
static void
test_parity_proactive(void **state)
{
	struct fx_result	 r, z;

	(void)state;
	fx_race(1, 10, 10, 3.0, "0", &z);
	fx_race(1, 10, 10, 3.0, "10", &r);
	assert_true(r.parity >= 7 * up_fec_ngroups(r.nblocks, 64));
	assert_true(r.recovered > 0);
	/* Parity sent beyond the proactive rows: little or none. */
	assert_true(r.data + r.parity - r.nblocks -
	    7 * up_fec_ngroups(r.nblocks, 64) < z.repair);
}

/*
 * XOR repair on the same race: one XOR frame repairs one loss at each of
 * many nodes with no decoding rank to make up, so it needs about the
 * worst node's losses in all (5 % of 601 blocks: about 30, 45 for the
 * worst of 20), well under TS004's ~12 per group of 64.
 */
static void
test_xor_vs_parity(void **state)
{
	struct fx_result	 p, x;

	(void)state;
	fx_xor = 0;
	fx_race(1, 20, 20, 5.0, "0", &p);
	fx_xor = 1;
	fx_race(1, 20, 20, 5.0, "0", &x);
	fx_xor = 0;
	assert_int_equal(p.xor_, 0);
	assert_true(x.xor_ > 0);
	assert_true(x.repair * 3 < p.repair * 2);
	assert_true(x.repair <= 90);
}

/*
 * Two nodes drop every XOR frame (as a node without XOR would): after a
 * round without progress they are kept out of the plan and get DATA,
 * and everyone finishes (checked in fx_race).
 */
static void
test_xor_old_nodes(void **state)
{
	struct fx_result	 x;

	(void)state;
	fx_xor = 1;
	fx_no_xor = 2;
	fx_race(1, 8, 8, 5.0, "0", &x);
	fx_xor = 0;
	fx_no_xor = 0;
	assert_true(x.xor_ > 0);
	assert_true(x.data > x.nblocks);
}

static int
teardown(void **state)
{
	(void)state;
	if (cur_efx != NULL)
		efx_free(cur_efx);
	return (0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_parity_vs_union, teardown),
		cmocka_unit_test_teardown(test_parity_mixed_nodes, teardown),
		cmocka_unit_test_teardown(test_parity_proactive, teardown),
		cmocka_unit_test_teardown(test_xor_vs_parity, teardown),
		cmocka_unit_test_teardown(test_xor_old_nodes, teardown),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
