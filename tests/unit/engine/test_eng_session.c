/*
 * test_eng_session.c: the engine alone (engine/engine.h) on a fake
 * clock, over tp_mem, with simulated nodes running up/'s node engine.
 * No SQLite, cache or campaign: the fixture (eng_fixture.c) is the
 * daemon.  Session flow with loss, declines and silent nodes, results
 * (duplicate, late), resume with the same session id, pacing (rate,
 * TP_EAGAIN, tx_done, duty cycle), bad frames, non-members, latecomers,
 * a streaming source, a failing source, and the callback rules.
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

static uint32_t
efx_nblocks(struct efx *fx)
{
	return (up_nblocks((uint32_t)fx->pkg_len, fx->params.block_size));
}

static bool
efx_ready(struct efx *fx)
{
	return (efx_all_known(fx));
}

/* ------------------------------------------------------------------ */

/*
 * Five nodes, 5 % independent loss each: every node updates, each is
 * reported final once, and the gateway sends each block once plus one
 * retransmission per transmission that at least one node lost (shared
 * repair).  Twice, to show the fake clock makes runs identical.
 */
static void
run_loss(struct tp_mem_counts *out)
{
	struct efx		*fx;
	struct eng_params	 p;
	struct tp_mem_counts	*c;
	uint32_t		 nblocks;
	int			 k;

	efx_default_params(&p);
	p.fec = false;
	p.xor_repair = false;
	fx = efx_new(&tp_mem_ops, NULL, &p, 200 * 1024 + 77);
	for (k = 0; k < 5; k++)
		efx_node(fx, 0x100 + k, 512 * 1024, 5.0);
	efx_start(fx);
	assert_true(efx_run(fx, efx_done, 60000));

	nblocks = efx_nblocks(fx);
	c = efx_counts(fx);
	assert_int_equal(efx_nstate(fx, UP_NS_UPDATED), 5);
	assert_int_equal(efx_nfinal(fx, ENG_M_UPDATED), 5);
	for (k = 0; k < 5; k++) {
		assert_string_equal(sim_node_version(fx->nodes[k], "app"),
		    "1.1.0");
		assert_int_equal(fx->kn[k].finals, 1);
		assert_int_equal(fx->kn[k].result, UP_R_SUCCESS);
		assert_string_equal(fx->kn[k].version, "1.1.0");
		assert_true(fx->kn[k].started >= 1);
	}
	print_message("%u blocks, %" PRIu64 " DATA sent, %" PRIu64 " lost "
	    "by at least one node, %" PRIu64 " frames in all, %.3f s\n",
	    nblocks, c->by_type[UP_T_DATA], c->data_lost_any, c->frames,
	    (double)(fx->tc.now_us - 1000000) / 1e6);
	/* Losses happened and were repaired by shared retransmissions. */
	assert_true(c->data_lost_any > 0);
	assert_true(c->by_type[UP_T_DATA] > nblocks);
	assert_true(c->by_type[UP_T_DATA] <= nblocks + c->data_lost_any);
	/* A new session id is durable before an OFFER carries it. */
	assert_true(fx->durable_saves >= 1);
	assert_int_equal(fx->block_size, 1024);
	assert_true(fx->settled > 0);
	*out = *c;
	efx_free(fx);
}

static void
test_loss(void **state)
{
	struct tp_mem_counts	 a, b;

	run_loss(&a);
	run_loss(&b);
	assert_int_equal(a.frames, b.frames);
	assert_int_equal(a.by_type[UP_T_DATA], b.by_type[UP_T_DATA]);
	assert_int_equal(a.last_us, b.last_us);
}

/* A node that declines (no space) and one that never answers. */
static void
test_decline_and_silent(void **state)
{
	struct efx	*fx;

	fx = efx_new(&tp_mem_ops, NULL, NULL, 64 * 1024);
	efx_node(fx, 0x201, 256 * 1024, 0);
	efx_node(fx, 0x202, 16 * 1024, 0);	/* slot too small */
	efx_node(fx, 0x203, 256 * 1024, 0);
	assert_true(efx_run(fx, efx_ready, 2000));
	fx->nodes[2]->deaf = true;		/* announced, then silent */
	efx_start(fx);
	assert_true(efx_run(fx, efx_done, 60000));

	assert_int_equal(fx->kn[0].state, ENG_M_UPDATED);
	assert_int_equal(fx->kn[1].state, ENG_M_DECLINED);
	assert_int_equal(fx->kn[1].result, UP_R_NO_SPACE);
	assert_int_equal(fx->kn[2].state, ENG_M_FAILED);
	assert_int_equal(fx->kn[2].result, UP_R_CONN_LOST);
	assert_string_equal(fx->kn[2].why, "no answer to the offer");
	assert_int_equal(fx->kn[0].finals + fx->kn[1].finals +
	    fx->kn[2].finals, 3);
	efx_free(fx);
}

/* A RESULT sent twice is acknowledged twice and reported once. */
static void
test_duplicate_result(void **state)
{
	struct efx		*fx;
	struct eng_stats	 st;
	uint64_t		 acks;

	fx = efx_new(&tp_mem_ops, NULL, NULL, 20 * 1024);
	efx_node(fx, 0x401, 128 * 1024, 0);
	efx_node(fx, 0x402, 128 * 1024, 0);
	efx_start(fx);
	assert_true(efx_run(fx, efx_done, 10000));
	acks = tp_mem_node_acks(fx->nodes[0]->mn);
	assert_true(acks >= 1);

	sim_node_resend_result(fx->nodes[0]);
	efx_sleep(fx, 100);
	assert_int_equal(tp_mem_node_acks(fx->nodes[0]->mn), acks + 1);
	assert_int_equal(fx->kn[0].finals, 1);
	eng_stats(fx->e, &st);
	assert_int_equal(st.duplicate_results, 1);
	efx_free(fx);
}

/*
 * A RESULT that contradicts the node's own final word (stale, reordered,
 * forged) is acknowledged, so the node stops resending, and ignored: a
 * member is reported final once (fuzz_eng_answer found the second).
 */
static void
test_conflicting_result(void **state)
{
	struct efx		*fx;
	struct eng_stats	 st;
	struct up_msg		 m;
	uint8_t			 f[UP_FRAME_MAX];
	uint64_t		 acks;
	int			 n;

	fx = efx_new(&tp_mem_ops, NULL, NULL, 20 * 1024);
	efx_node(fx, 0x411, 128 * 1024, 0);
	efx_start(fx);
	assert_true(efx_run(fx, efx_done, 10000));
	assert_int_equal(fx->kn[0].state, ENG_M_UPDATED);
	assert_int_equal(fx->kn[0].finals, 1);
	acks = tp_mem_node_acks(fx->nodes[0]->mn);

	memset(&m, 0, sizeof(m));
	m.type = UP_T_RESULT;
	m.session = fx->sid;
	m.u.result.node_id = 0x411;
	m.u.result.state = UP_NS_FAILED;
	m.u.result.result = UP_R_INTEGRITY;
	strcpy(m.u.result.component, "app");
	strcpy(m.u.result.version, "1.0.0");
	assert_true((n = up_encode(&m, f, sizeof(f))) > 0);
	tp_mem_node_send(fx->nodes[0]->mn, f, (size_t)n);
	efx_sleep(fx, 100);
	assert_int_equal(fx->kn[0].finals, 1);
	assert_int_equal(fx->kn[0].state, ENG_M_UPDATED);
	assert_int_equal(tp_mem_node_acks(fx->nodes[0]->mn), acks + 1);
	eng_stats(fx->e, &st);
	assert_int_equal(st.conflicting_results, 1);
	assert_int_equal(st.finals, 1);
	efx_free(fx);
}

static bool
efx_first_final(struct efx *fx)
{
	return (fx->kn[0].finals >= 1);
}

/* A node written off after activation whose RESULT comes late. */
static void
test_late_result(void **state)
{
	struct efx		*fx;
	struct eng_params	 p;

	efx_default_params(&p);
	p.result_timeout_s = 1;
	fx = efx_new(&tp_mem_ops, NULL, &p, 20 * 1024);
	efx_node(fx, 0x501, 128 * 1024, 0);
	fx->nodes[0]->boot_delay_ms = 1600;	/* slower than the timeout */
	efx_start(fx);
	assert_true(efx_run(fx, efx_first_final, 10000));
	assert_int_equal(fx->kn[0].state, ENG_M_FAILED);
	assert_int_equal(fx->kn[0].result, UP_R_CONN_LOST);
	assert_string_equal(fx->kn[0].why, "no result after activation");

	assert_true(efx_run(fx, efx_done, 10000));
	/* The late result replaces the write-off. */
	assert_int_equal(fx->kn[0].finals, 2);
	assert_int_equal(fx->kn[0].state, ENG_M_UPDATED);
	assert_string_equal(sim_node_version(fx->nodes[0], "app"), "1.1.0");
	efx_free(fx);
}

static uint32_t	 stop_at;

static bool
efx_half_sent(struct efx *fx)
{
	return (efx_counts(fx)->by_type[UP_T_DATA] >= stop_at);
}

/*
 * The engine stops mid-transfer (the gateway dies) and a new one
 * resumes the session with the same id and block size, as a daemon does
 * from what session_save gave it: nodes answer the OFFER with what they
 * hold, and only the missing blocks go out again.
 */
static void
test_resume(void **state)
{
	struct efx		*fx;
	struct tp_mem_counts	*c;
	uint32_t		 nblocks, sid, held;
	uint16_t		 bs;
	int			 k;

	fx = efx_new(&tp_mem_ops, NULL, NULL, 300 * 1024);
	for (k = 0; k < 3; k++)
		efx_node(fx, 0x300 + k, 512 * 1024, 0);
	nblocks = efx_nblocks(fx);
	stop_at = nblocks / 2;
	efx_start(fx);
	assert_true(efx_run(fx, efx_half_sent, 10000));
	sid = fx->sid;
	bs = fx->block_size;
	assert_int_equal(bs, 1024);

	/* Kill the engine: frames still in the medium are lost. */
	eng_free(fx->e);
	fx->s = NULL;
	for (k = 0; k < 3; k++)
		fx->kn[k].m = NULL;
	efx_sleep(fx, 50);
	held = fx->nodes[0]->n.nheld;
	assert_true(held > 0 && held < nblocks);
	for (k = 0; k < 3; k++) {
		assert_int_equal(fx->nodes[k]->n.nheld, held);
		assert_int_equal(sim_node_state(fx->nodes[k], NULL, NULL),
		    UP_NS_RECEIVING);
	}
	c = efx_counts(fx);
	memset(c, 0, sizeof(*c));

	efx_engine(fx, &tp_mem_ops);
	efx_session(fx, sid, bs);
	efx_join_all(fx);
	efx_go(fx);
	assert_true(efx_run(fx, efx_done, 30000));
	assert_int_equal(c->last_session, sid);
	assert_int_equal(efx_nstate(fx, UP_NS_UPDATED), 3);
	/* Only what was missing went out again. */
	assert_int_equal(c->by_type[UP_T_DATA], nblocks - held);
	for (k = 0; k < 3; k++)
		assert_int_equal(fx->nodes[k]->dup_data, 0);
	efx_free(fx);
}

static bool
efx_queue_full(struct efx *fx)
{
	return (tp_mem_queued(fx->m) == 4 && efx_counts(fx)->eagain > 0);
}

/* TP_EAGAIN stops the link; writable() resumes it; nothing is lost. */
static void
test_eagain_writable(void **state)
{
	struct efx		*fx;
	struct tp_mem_params	 mp;
	struct eng_link_info	 li;
	uint64_t		 frames;

	efx_default_link(&mp);
	mp.caps.tx_queue = 4;
	fx = efx_new(&tp_mem_ops, &mp, NULL, 40 * 1024);
	efx_node(fx, 0x601, 128 * 1024, 0);
	efx_node(fx, 0x602, 128 * 1024, 0);
	assert_true(efx_run(fx, efx_ready, 2000));
	tp_mem_hold(fx->m, true);
	efx_start(fx);
	assert_true(efx_run(fx, efx_queue_full, 5000));
	eng_link_info(fx->l, &li);
	assert_true(li.pacer.blocked);
	frames = efx_counts(fx)->frames;
	efx_sleep(fx, 100);
	/* Blocked: no send was even tried again without writable(). */
	assert_int_equal(efx_counts(fx)->frames, frames);
	assert_int_equal(efx_counts(fx)->eagain, 1);

	tp_mem_hold(fx->m, false);
	assert_true(efx_run(fx, efx_done, 20000));
	assert_int_equal(efx_nstate(fx, UP_NS_UPDATED), 2);
	eng_link_info(fx->l, &li);
	assert_true(li.pacer.eagain >= 1);
	assert_false(li.pacer.blocked);
	efx_free(fx);
}

/* With tx_done, at most tx_queue frames are outstanding. */
static void
test_tx_done_queue(void **state)
{
	struct efx		*fx;
	struct tp_mem_params	 mp;

	efx_default_link(&mp);
	mp.caps.tx_queue = 3;
	mp.tx_done = true;
	fx = efx_new(&tp_mem_ops, &mp, NULL, 40 * 1024);
	efx_node(fx, 0x701, 128 * 1024, 0);
	efx_start(fx);
	assert_true(efx_run(fx, efx_done, 20000));
	assert_true(efx_counts(fx)->max_outstanding <= 3);
	assert_int_equal(efx_counts(fx)->eagain, 0);
	efx_free(fx);
}

/*
 * On the fake clock the pacer's rate is exact: DATA leaves at bitrate *
 * rate_pct (frame overhead counted), at most the GCRA's 8 ms tolerance
 * ahead of it, over a 1.6 s pass.
 */
static void
test_rate(void **state)
{
	struct efx		*fx;
	struct tp_mem_params	 mp;
	struct eng_params	 p;
	struct tp_mem_counts	*c;
	double			 dt, bits, rate;

	efx_default_link(&mp);
	mp.caps.bitrate_bps = 4000000;
	efx_default_params(&p);
	p.rate_pct = 50;			/* 2 Mbit/s */
	fx = efx_new(&tp_mem_ops, &mp, &p, 400 * 1024);
	efx_node(fx, 0x801, 512 * 1024, 0);
	efx_start(fx);
	assert_true(efx_run(fx, efx_done, 20000));

	c = efx_counts(fx);
	dt = (double)(c->last_data_us - c->first_data_us) / 1e6;
	/* n frames span n - 1 intervals. */
	bits = (double)(c->data_bytes + 42 * c->by_type[UP_T_DATA]) * 8 *
	    (double)(c->by_type[UP_T_DATA] - 1) /
	    (double)c->by_type[UP_T_DATA];
	rate = bits / dt;
	print_message("rate %.0f bit/s over %.3f s (fake clock)\n", rate, dt);
	assert_true(dt > 1.5);
	assert_true(rate >= 2000000 * 0.995);
	assert_true(rate <= 2000000 * (1 + 0.008 / dt) + 1);
	efx_free(fx);
}

/* Garbage is counted and ignored; nothing changes. */
static void
test_bad_frames(void **state)
{
	struct efx		*fx;
	struct eng_link_info	 li;
	struct sim_node		*sn;
	uint8_t			 junk[64];
	unsigned int		 announces;

	fx = efx_new(&tp_mem_ops, NULL, NULL, 8 * 1024);
	sn = efx_node(fx, 0xa01, 64 * 1024, 0);
	assert_true(efx_run(fx, efx_ready, 2000));
	efx_sleep(fx, 200);
	announces = fx->announces;
	memset(junk, 0xa5, sizeof(junk));
	tp_mem_node_send(sn->mn, junk, sizeof(junk));
	/* A valid-looking header with a broken CRC. */
	junk[0] = UP_PROTO_VERSION;
	junk[1] = UP_T_ANNOUNCE;
	tp_mem_node_send(sn->mn, junk, 20);
	efx_sleep(fx, 50);
	eng_link_info(fx->l, &li);
	assert_int_equal(li.rx_bad, 2);
	assert_int_equal(fx->announces, announces);
	efx_free(fx);
}

/*
 * A node outside the package's target that accepts the broadcast offer
 * is aborted when the daemon says it was not targeted.
 */
static void
test_non_member_aborted(void **state)
{
	struct efx	*fx;
	struct sim_node	*other;

	fx = efx_new(&tp_mem_ops, NULL, NULL, 30 * 1024);
	strcpy(fx->hw, "hw-a");
	efx_node(fx, 0xb01, 128 * 1024, 0);
	other = efx_node_hw(fx, 0xb02, "hw-b", 128 * 1024, 0);
	efx_start(fx);
	assert_true(efx_run(fx, efx_done, 10000));
	assert_int_equal(sim_node_state(fx->nodes[0], NULL, NULL),
	    UP_NS_UPDATED);
	assert_int_equal(sim_node_state(other, NULL, NULL), UP_NS_IDLE);
	assert_string_equal(sim_node_version(other, "app"), "1.0.0");
	assert_true(fx->strangers >= 1);
	assert_true(efx_counts(fx)->by_type[UP_T_ABORT] >= 1);
	assert_null(fx->kn[1].m);
	efx_free(fx);
}

/*
 * The same stranger loses the ABORTs its ACCEPTs draw (a radio loses
 * one frame in ten) and goes on with the session it heard.  Its STATUS
 * and RESULT draw an ABORT again, and a session that met a stranger
 * names each member in its ACTIVATE: before, the ACTIVATE to all
 * installed the package on it.
 */
static void
test_non_member_lost_abort(void **state)
{
	struct efx	*fx;
	struct sim_node	*other;

	fx = efx_new(&tp_mem_ops, NULL, NULL, 30 * 1024);
	strcpy(fx->hw, "hw-a");
	efx_node(fx, 0xb01, 128 * 1024, 0);
	other = efx_node_hw(fx, 0xb02, "hw-b", 128 * 1024, 0);
	other->lose_aborts = 3;
	efx_start(fx);
	assert_true(efx_run(fx, efx_done, 10000));
	assert_int_equal(sim_node_state(fx->nodes[0], NULL, NULL),
	    UP_NS_UPDATED);
	assert_int_equal(other->lose_aborts, 0);
	/*
	 * Not installed: the ACTIVATE named the member.  The stranger may
	 * still hold the verified image it heard; its next ANNOUNCE gets it
	 * released (the daemon's campaign__orphan_check).
	 */
	assert_int_not_equal(sim_node_state(other, NULL, NULL),
	    UP_NS_UPDATED);
	assert_string_equal(sim_node_version(other, "app"), "1.0.0");
	assert_true(efx_counts(fx)->by_type[UP_T_ABORT] >= 3);
	assert_null(fx->kn[1].m);
	efx_free(fx);
}

static bool
efx_some_data(struct efx *fx)
{
	return (efx_counts(fx)->by_type[UP_T_DATA] >= 20);
}

/*
 * Dynamic membership: a node that shows up mid-transfer joins the
 * running session; one that shows up after everyone finished wakes the
 * idle session again.
 */
static void
test_late_joiners(void **state)
{
	struct efx		*fx;
	struct tp_mem_params	 mp;

	efx_default_link(&mp);
	mp.caps.bitrate_bps = 4000000;
	fx = efx_new(&tp_mem_ops, &mp, NULL, 100 * 1024);
	fx->auto_join = true;
	efx_node(fx, 0xd01, 256 * 1024, 0);
	efx_node(fx, 0xd02, 256 * 1024, 0);
	efx_start(fx);
	assert_true(efx_run(fx, efx_some_data, 5000));
	efx_node(fx, 0xd03, 256 * 1024, 0);	/* boots and announces */
	assert_true(efx_run(fx, efx_done, 20000));
	assert_int_equal(efx_nstate(fx, UP_NS_UPDATED), 3);
	assert_int_equal(efx_nfinal(fx, ENG_M_UPDATED), 3);
	/* The latecomer got the blocks it missed in a repair pass. */
	assert_true(efx_counts(fx)->by_type[UP_T_DATA] > 100);

	efx_node(fx, 0xd04, 256 * 1024, 0);
	assert_true(efx_run(fx, efx_ready, 2000));
	assert_true(efx_run(fx, efx_done, 20000));
	assert_int_equal(efx_nstate(fx, UP_NS_UPDATED), 4);
	assert_int_equal(fx->kn[3].state, ENG_M_UPDATED);
	efx_free(fx);
}

/*
 * A duty-cycled link with the plugin's own airtime model (LoRa-like):
 * 10 % over a 200 ms window, 2 ms per frame.  The ledger is never
 * exceeded: at every frame, the airtime spent so far is at most 10 % of
 * the time since the link opened plus the one full bucket it starts
 * with.
 */
struct duty {
	uint64_t	 t0;
	uint64_t	 air;
	uint64_t	 frames;
	uint64_t	 worst;		/* most air ahead of the budget */
	bool		 over;
};

static void
duty_tx(void *arg, uint64_t now, const uint8_t *frame, size_t len)
{
	struct duty	*d = arg;
	uint64_t	 budget;

	d->air += 2000;
	d->frames++;
	budget = (now - d->t0) / 10 + 20000;
	if (d->air > budget) {
		d->over = true;
		if (d->air - budget > d->worst)
			d->worst = d->air - budget;
	}
}

static void
test_duty_cycle(void **state)
{
	struct efx		*fx;
	struct tp_mem_params	 mp;
	struct duty		 d;
	uint64_t		 span;

	efx_default_link(&mp);
	mp.caps.duty_cycle_ppm = 100000;
	mp.caps.duty_window_ms = 200;
	mp.airtime_us = 2000;
	memset(&d, 0, sizeof(d));
	fx = efx_new(&tp_mem_air_ops, &mp, NULL, 40 * 1024);
	d.t0 = fx->tc.now_us;	/* the bucket starts full at open */
	tp_mem_set_tx_hook(fx->m, duty_tx, &d);
	efx_node(fx, 0xe01, 128 * 1024, 0);
	efx_start(fx);
	assert_true(efx_run(fx, efx_done, 60000));
	span = efx_counts(fx)->last_us - d.t0;
	print_message("duty: %" PRIu64 " frames, %" PRIu64 " us on air in %"
	    PRIu64 " us\n", d.frames, d.air, span);
	assert_true(d.frames > 40);
	assert_false(d.over);
	/* And the engine did not idle much beyond what the duty allows. */
	assert_true(span <= (d.air - 20000) * 10 * 11 / 10 + 500000);
	efx_free(fx);
}

/*
 * A package still downloading: the source's verified prefix grows, and
 * the engine never reads past it (the fixture asserts it on every read);
 * VERIFY waits until the source says the whole package was checked.
 */
static bool
efx_pass_waits(struct efx *fx)
{
	struct eng_session_info	 si;

	eng_session_info(fx->s, &si);
	return (si.phase == ENG_P_DATA && efx_counts(fx)->frames > 0 &&
	    tp_mem_queued(fx->m) == 0);
}

static bool
efx_all_downloaded(struct efx *fx)
{
	return (efx_nfinal(fx, ENG_M_DOWNLOADED) +
	    efx_nfinal(fx, ENG_M_VERIFIED) == fx->nnodes &&
	    efx_nfinal(fx, ENG_M_DOWNLOADED) == fx->nnodes);
}

static void
test_streaming_source(void **state)
{
	struct efx	*fx;
	uint64_t	 data;
	int		 step;

	fx = efx_new(&tp_mem_ops, NULL, NULL, 64 * 1024);
	efx_node(fx, 0xf01, 128 * 1024, 0);
	efx_node(fx, 0xf02, 128 * 1024, 0);
	fx->limit = 10 * 1024 + 100;	/* 10 whole blocks */
	fx->complete = false;
	efx_start(fx);
	assert_true(efx_run(fx, efx_pass_waits, 5000));
	efx_sleep(fx, 200);
	assert_int_equal(efx_counts(fx)->by_type[UP_T_DATA], 10);
	for (step = 2; fx->limit < fx->pkg_len; step++) {
		fx->limit = (uint64_t)step * 10 * 1024;
		if (fx->limit > fx->pkg_len)
			fx->limit = fx->pkg_len;
		data = efx_counts(fx)->by_type[UP_T_DATA];
		eng_session_poke(fx->s);
		efx_sleep(fx, 100);
		assert_true(efx_counts(fx)->by_type[UP_T_DATA] > data);
	}
	/* Every block is out, the hash is not checked yet: no VERIFY. */
	assert_true(efx_run(fx, efx_all_downloaded, 5000));
	efx_sleep(fx, 500);
	assert_int_equal(efx_counts(fx)->by_type[UP_T_VERIFY], 0);
	assert_int_equal(efx_nfinal(fx, ENG_M_DOWNLOADED), 2);
	fx->complete = true;
	eng_session_poke(fx->s);
	assert_true(efx_run(fx, efx_done, 10000));
	assert_int_equal(efx_nfinal(fx, ENG_M_UPDATED), 2);
	assert_int_equal(efx_counts(fx)->by_type[UP_T_DATA], 64);
	efx_free(fx);
}

/* A source that cannot be read stops the session and says so. */
static bool
efx_errored(struct efx *fx)
{
	return (fx->errors > 0);
}

static void
test_source_error(void **state)
{
	struct efx		*fx;
	struct eng_session_info	 si;
	uint64_t		 frames;

	fx = efx_new(&tp_mem_ops, NULL, NULL, 64 * 1024);
	efx_node(fx, 0x1001, 128 * 1024, 0);
	efx_start(fx);
	assert_true(efx_run(fx, efx_some_data, 5000));
	fx->read_fails = true;
	assert_true(efx_run(fx, efx_errored, 5000));
	assert_int_equal(fx->errors, 1);
	eng_session_info(fx->s, &si);
	assert_int_equal(si.phase, ENG_P_STOPPED);
	assert_false(si.running);
	frames = efx_counts(fx)->by_type[UP_T_DATA];
	efx_sleep(fx, 1000);
	assert_int_equal(efx_counts(fx)->by_type[UP_T_DATA], frames);
	efx_free(fx);
}

/*
 * The callback rules: no call of the daemon fires a callback before it
 * returns (the work waits for eng_run, whose deadline is then "now"),
 * and a member the daemon removes from inside a callback is freed only
 * once the engine's work is over.
 */
static void
test_callback_rules(void **state)
{
	struct efx	*fx;
	unsigned int	 n;

	fx = efx_new(&tp_mem_ops, NULL, NULL, 64 * 1024);
	efx_node(fx, 0x1101, 128 * 1024, 0);
	efx_node(fx, 0x1102, 128 * 1024, 0);
	efx_node(fx, 0x1103, 128 * 1024, 0);
	assert_true(efx_run(fx, efx_ready, 2000));
	n = fx->callbacks;
	efx_session(fx, 0, 0);
	efx_join_all(fx);
	efx_go(fx);
	eng_session_poke(fx->s);
	eng_member_set_hold(fx->kn[0].m, true);
	eng_member_set_hold(fx->kn[0].m, false);
	assert_int_equal(fx->callbacks, n);
	assert_true(eng_next_deadline(fx->e) <= fx->tc.now_us);

	/* The second node is dropped by the daemon at its first report. */
	fx->remove_on_cb = fx->kn[1].m;
	assert_true(efx_run(fx, efx_done, 20000));
	assert_null(fx->kn[1].m);
	assert_int_equal(fx->kn[0].state, ENG_M_UPDATED);
	assert_int_equal(fx->kn[2].state, ENG_M_UPDATED);
	/* Its ACCEPT made it a stranger, which was not targeted. */
	assert_int_equal(sim_node_state(fx->nodes[1], NULL, NULL),
	    UP_NS_IDLE);

	/* Cancel fires nothing: the daemon knows. */
	n = fx->callbacks;
	eng_member_cancel(fx->kn[0].m, UP_R_ABORTED, true);
	assert_int_equal(fx->callbacks, n);
	efx_free(fx);
}

/*
 * Issue 7: a node that goes quiet during verify (a reboot) is asked
 * again, not written off, while it is silent for less than the link's
 * node_silence_ms; one that stays quiet is written off after that.  The
 * default comes from the link (10 s on this LAN).
 */
static void
test_silent_during_verify(void **state)
{
	struct efx		*fx;
	struct eng_link_info	 li;
	uint64_t		 t0;

	fx = efx_new(&tp_mem_ops, NULL, NULL, 64 * 1024);
	eng_link_info(fx->l, &li);
	assert_int_equal(li.node_silence_ms, 10000);
	efx_node(fx, 0x1201, 256 * 1024, 0);
	efx_node(fx, 0x1202, 256 * 1024, 0);
	/* Both go down at their first VERIFY; 0x1201 is back after 3 s. */
	fx->nodes[0]->down_at_verify_ms = 3000;
	fx->nodes[1]->down_at_verify_ms = UINT32_MAX;
	t0 = fx->tc.now_us;
	efx_start(fx);
	assert_true(efx_run(fx, efx_done, 60000));
	assert_int_equal(fx->kn[0].state, ENG_M_UPDATED);
	assert_int_equal(fx->kn[0].finals, 1);
	assert_int_equal(fx->kn[1].state, ENG_M_FAILED);
	assert_int_equal(fx->kn[1].result, UP_R_CONN_LOST);
	assert_string_equal(fx->kn[1].why, "no answer to VERIFY");
	assert_true(fx->tc.now_us - t0 >= 10000 * 1000ULL);
	efx_free(fx);
}

/* A profile's node_silence_ms wins over the derived one. */
static void
test_silence_profile(void **state)
{
	struct efx		*fx;
	struct eng_params	 p;
	struct eng_link_info	 li;
	struct tp_mem_params	 mp;

	efx_default_params(&p);
	p.node_silence_ms = 2500;
	fx = efx_new(&tp_mem_ops, NULL, &p, 16 * 1024);
	eng_link_info(fx->l, &li);
	assert_int_equal(li.node_silence_ms, 2500);
	efx_free(fx);
	/* A slow duty-cycled link: four frames on air at 1 %. */
	efx_default_link(&mp);
	mp.caps.mtu = 51;
	mp.caps.frame_overhead = 13;
	mp.caps.bitrate_bps = 5470;
	mp.caps.duty_cycle_ppm = 10000;
	fx = efx_new(&tp_mem_ops, &mp, NULL, 16 * 1024);
	eng_link_info(fx->l, &li);
	assert_int_equal(li.node_silence_ms, 10000 + 4 * 9360);
	efx_free(fx);
}

/*
 * Issue 7: a node that answers every offer round "busy" (its slot serves
 * another session) is declined with that result and says why; it is not
 * written off as a lost connection.
 */
static void
test_busy_declined(void **state)
{
	struct efx	*fx;

	fx = efx_new(&tp_mem_ops, NULL, NULL, 16 * 1024);
	efx_node(fx, 0x1301, 128 * 1024, 0);
	efx_node(fx, 0x1302, 128 * 1024, 0);
	fx->nodes[1]->busy = true;
	efx_start(fx);
	assert_true(efx_run(fx, efx_done, 30000));
	assert_int_equal(fx->kn[0].state, ENG_M_UPDATED);
	assert_int_equal(fx->kn[1].state, ENG_M_DECLINED);
	assert_int_equal(fx->kn[1].result, UP_R_BUSY);
	assert_string_equal(fx->kn[1].why, "busy with another session");
	efx_free(fx);
}

/*
 * Issue 7: a member the daemon will not take back (written off, out of
 * tries) whose node turns up accepting its session again is told ABORT:
 * it must not sit in a session finished for it.  A node the daemon
 * keeps out at offer time (member_offer) is never offered.
 */
static void
test_final_member_aborted(void **state)
{
	struct efx	*fx;
	uint64_t	 aborts;

	fx = efx_new(&tp_mem_ops, NULL, NULL, 64 * 1024);
	efx_node(fx, 0x1401, 256 * 1024, 0);
	efx_node(fx, 0x1402, 256 * 1024, 0);
	efx_node(fx, 0x1403, 256 * 1024, 0);
	assert_true(efx_run(fx, efx_ready, 2000));
	fx->veto_node = 0x1403;
	fx->kn[1].tries = 3;		/* the daemon will not revive it */
	fx->nodes[1]->deaf = true;
	efx_start(fx);
	assert_true(efx_run(fx, efx_done, 60000));
	assert_int_equal(fx->kn[0].state, ENG_M_UPDATED);
	assert_int_equal(fx->kn[1].state, ENG_M_FAILED);
	assert_null(fx->kn[2].m);
	assert_int_equal(sim_node_state(fx->nodes[2], NULL, NULL), UP_NS_IDLE);
	assert_true(fx->offers_asked >= 2);
	/* Node 2 hears the session again: it is aborted, not left there. */
	aborts = efx_counts(fx)->by_type[UP_T_ABORT];
	fx->nodes[1]->deaf = false;
	eng_member_restart(fx->kn[0].m);	/* an OFFER goes out again */
	efx_sleep(fx, 3000);
	assert_true(efx_counts(fx)->by_type[UP_T_ABORT] > aborts);
	assert_int_equal(sim_node_state(fx->nodes[1], NULL, NULL), UP_NS_IDLE);
	efx_free(fx);
}

/* DISCOVER at open and every discover_interval_s after. */
static void
test_discover(void **state)
{
	struct efx		*fx;
	struct eng_params	 p;

	efx_default_params(&p);
	p.discover_interval_s = 2;
	fx = efx_new(&tp_mem_ops, NULL, &p, 8 * 1024);
	efx_sleep(fx, 9000);
	/* At open, then at 2, 4, 6 and 8 s. */
	assert_int_equal(efx_counts(fx)->by_type[UP_T_DISCOVER], 5);
	efx_free(fx);
}

static int
teardown(void **state)
{
	if (cur_efx != NULL)
		efx_free(cur_efx);
	return (0);
}

static void
log_stderr(int level, const char *fmt, va_list ap)
{
	if (level != UP_LOG_WARN && getenv("UB_TEST_VERBOSE") == NULL)
		return;
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_loss, teardown),
		cmocka_unit_test_teardown(test_decline_and_silent, teardown),
		cmocka_unit_test_teardown(test_duplicate_result, teardown),
		cmocka_unit_test_teardown(test_conflicting_result, teardown),
		cmocka_unit_test_teardown(test_late_result, teardown),
		cmocka_unit_test_teardown(test_resume, teardown),
		cmocka_unit_test_teardown(test_eagain_writable, teardown),
		cmocka_unit_test_teardown(test_tx_done_queue, teardown),
		cmocka_unit_test_teardown(test_rate, teardown),
		cmocka_unit_test_teardown(test_bad_frames, teardown),
		cmocka_unit_test_teardown(test_non_member_aborted, teardown),
		cmocka_unit_test_teardown(test_non_member_lost_abort, teardown),
		cmocka_unit_test_teardown(test_late_joiners, teardown),
		cmocka_unit_test_teardown(test_duty_cycle, teardown),
		cmocka_unit_test_teardown(test_streaming_source, teardown),
		cmocka_unit_test_teardown(test_source_error, teardown),
		cmocka_unit_test_teardown(test_callback_rules, teardown),
		cmocka_unit_test_teardown(test_discover, teardown),
		cmocka_unit_test_teardown(test_silent_during_verify, teardown),
		cmocka_unit_test_teardown(test_silence_profile, teardown),
		cmocka_unit_test_teardown(test_busy_declined, teardown),
		cmocka_unit_test_teardown(test_final_member_aborted, teardown),
	};

	up_log_set_hook(log_stderr);
	return (cmocka_run_group_tests(tests, NULL, NULL));
}
