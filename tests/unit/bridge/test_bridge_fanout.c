/*
 * test_bridge_fanout.c: campaigns wired to the engine, end to end over
 * tp_mem, with simulated nodes running the real node engine (up_node_*),
 * a real SQLite database and a real cache in a temp dir, and no uplink
 * (results go to a report hook and SQLite), on the real clock: reports,
 * persistence, resume from the database, the technician's actions,
 * deployment targets, the views and dynamic membership.  The engine's
 * own behaviour (pacing, TP_EAGAIN, tx_done, duty cycle, bad frames) is
 * tested alone in tests/unit/engine/.
 */
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>

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
#include <time.h>
#include <unistd.h>

#include "fanout_fixture.h"

static int
fx_reports_matching(struct fx *fx, const char *needle)
{
	int	 i, n = 0;

	for (i = 0; i < fx->nreports; i++)
		if (strstr(fx->reports[i], needle) != NULL)
			n++;
	return (n);
}

static uint32_t
fx_nblocks(struct fx *fx)
{
	return (up_nblocks((uint32_t)fx->pkg_len, fx->conf.block_size));
}

static json_t *
fx_campaign(struct fx *fx)
{
	json_t		*a, *c;
	char		 id[32];

	a = fanout_campaigns_json(fx->f);
	assert_int_equal(json_array_size(a), 1);
	snprintf(id, sizeof(id), "%s", json_string_value(json_object_get(
	    json_array_get(a, 0), "id")));
	json_decref(a);
	c = fanout_campaign_json(fx->f, id);
	assert_non_null(c);
	return (c);
}

/* ------------------------------------------------------------------ */

/*
 * Five nodes, 5 % independent loss each: every node updates, and the
 * gateway sends each block once plus one retransmission per
 * transmission that at least one node lost (shared repair).
 */
static void
test_campaign_loss(void **state)
{
	struct fx		*fx;
	struct tp_mem_counts	*c;
	json_t			*cj, *nodes, *n;
	const struct registry_node *rn;
	size_t			 i;
	uint32_t		 nblocks;
	int			 k;

	fx = fx_new(&tp_mem_ops, NULL, 200 * 1024 + 77);
	for (k = 0; k < 5; k++)
		fx_node(fx, 0x100 + k, 512 * 1024, 5.0);
	fx_start(fx);
	assert_true(fx_run(fx, fx_all_acked, 20000));

	nblocks = fx_nblocks(fx);
	c = tp_mem_counts(fx->m);
	assert_int_equal(fx_nstate(fx, UP_NS_UPDATED), 5);
	for (k = 0; k < 5; k++) {
		assert_string_equal(sim_node_version(fx->nodes[k], "app"),
		    "1.1.0");
		rn = registry_get(fx->reg, 0x100 + k);
		assert_non_null(rn);
		assert_string_equal(rn->comp[0].version, "1.1.0");
	}
	print_message("%u blocks, %" PRIu64 " DATA sent, %" PRIu64 " lost "
	    "by at least one node, %" PRIu64 " frames in all\n", nblocks,
	    c->by_type[UP_T_DATA], c->data_lost_any, c->frames);
	/* Losses happened and were repaired by shared retransmissions. */
	assert_true(c->data_lost_any > 0);
	assert_true(c->by_type[UP_T_DATA] > nblocks);
	assert_true(c->by_type[UP_T_DATA] <= nblocks + c->data_lost_any);

	/* One report per node, all updated/success. */
	assert_int_equal(fx->nreports, 5);
	assert_int_equal(fx_reports_matching(fx, "\"state\":\"updated\""), 5);
	assert_int_equal(fx_reports_matching(fx,
	    "\"result_str\":\"success\""), 5);
	assert_int_equal(fx_reports_matching(fx, "\"gateway\":\"gw-test-01\""),
	    5);
	assert_int_equal(fx_reports_matching(fx, "\"from\":\"1.0.0\""), 5);

	cj = fx_campaign(fx);
	nodes = json_object_get(cj, "nodes");
	assert_int_equal(json_array_size(nodes), 5);
	json_array_foreach(nodes, i, n) {
		assert_string_equal(json_string_value(json_object_get(n,
		    "state")), "updated");
		assert_true(json_integer_value(json_object_get(n,
		    "bytes_sent")) >= (json_int_t)fx->pkg_len);
		assert_int_equal(json_integer_value(json_object_get(n, "pct")),
		    100);
	}
	json_decref(cj);
	fx_free(fx);
}

/* A node that declines (no space) and one that never answers. */
static void
test_decline_and_silent(void **state)
{
	struct fx	*fx;
	sqlite3_stmt	*st;
	int		 n = 0;

	fx = fx_new(&tp_mem_ops, NULL, 64 * 1024);
	fx_node(fx, 0x201, 256 * 1024, 0);
	fx_node(fx, 0x202, 16 * 1024, 0);	/* slot too small */
	fx_node(fx, 0x203, 256 * 1024, 0);
	assert_true(fx_run(fx, fx_all_known, 2000));
	fx->nodes[2]->deaf = true;		/* announced, then silent */
	fanout_manifest(fx->f, &fx->mf);
	fanout_package_ready(fx->f, fx->cp.sha256);
	assert_true(fx_run(fx, fx_all_acked, 20000));

	assert_int_equal(sim_node_state(fx->nodes[0], NULL, NULL),
	    UP_NS_UPDATED);
	assert_int_equal(fx->nreports, 3);
	assert_int_equal(fx_reports_matching(fx, "\"node\":\"0x0000000000000201"
	    "\",\"campaign\""), 1);
	assert_int_equal(fx_reports_matching(fx, "\"state\":\"declined\","
	    "\"result\":2,\"result_str\":\"no_space\""), 1);
	assert_int_equal(fx_reports_matching(fx, "\"state\":\"failed\","
	    "\"result\":4"), 1);

	/* The same, persisted. */
	assert_int_equal(sqlite3_prepare_v2(fx->db, "SELECT node, state, "
	    "result FROM campaign_nodes ORDER BY node", -1, &st, NULL),
	    SQLITE_OK);
	while (sqlite3_step(st) == SQLITE_ROW) {
		switch (sqlite3_column_int(st, 0)) {
		case 0x201:
			assert_string_equal(sqlite3_column_text(st, 1),
			    "updated");
			break;
		case 0x202:
			assert_string_equal(sqlite3_column_text(st, 1),
			    "declined");
			assert_int_equal(sqlite3_column_int(st, 2),
			    UP_R_NO_SPACE);
			break;
		case 0x203:
			assert_string_equal(sqlite3_column_text(st, 1),
			    "failed");
			assert_int_equal(sqlite3_column_int(st, 2),
			    UP_R_CONN_LOST);
			break;
		default:
			fail();
		}
		n++;
	}
	sqlite3_finalize(st);
	assert_int_equal(n, 3);
	fx_free(fx);
}

static uint32_t fx_stop_at;

static bool
fx_half_sent(struct fx *fx)
{
	return (tp_mem_counts(fx->m)->by_type[UP_T_DATA] >= fx_stop_at);
}

/*
 * The engine stops mid-transfer and comes back on the same database:
 * same session id, and no node gets a block it already has.
 */
static void
test_resume(void **state)
{
	struct fx		*fx;
	struct tp_mem_counts	*c;
	uint32_t		 nblocks, sess, held;
	int			 k;

	fx = fx_new(&tp_mem_ops, NULL, 300 * 1024);
	for (k = 0; k < 3; k++)
		fx_node(fx, 0x300 + k, 512 * 1024, 0);
	nblocks = fx_nblocks(fx);
	fx_stop_at = nblocks / 2;
	fx_start(fx);
	assert_true(fx_run(fx, fx_half_sent, 10000));
	c = tp_mem_counts(fx->m);
	sess = c->last_session;
	assert_true(sess != 0 && sess == c->last_offer_session);

	/* Stop the engine: frames still in the medium are lost. */
	fanout_free(fx->f);
	fx->f = NULL;
	fx_sleep(fx, 50);
	held = fx->nodes[0]->n.nheld;
	assert_true(held > 0 && held < nblocks);
	for (k = 0; k < 3; k++) {
		assert_int_equal(fx->nodes[k]->n.nheld, held);
		assert_int_equal(sim_node_state(fx->nodes[k], NULL, NULL),
		    UP_NS_RECEIVING);
	}
	memset(c, 0, sizeof(*c));

	fx_engine(fx);
	assert_true(fx_run(fx, fx_all_acked, 20000));
	/* The nodes came back by OFFER or by ANNOUNCE: the same session. */
	assert_int_equal(c->last_session, sess);
	assert_true(c->last_offer_session == 0 ||
	    c->last_offer_session == sess);
	assert_int_equal(fx_nstate(fx, UP_NS_UPDATED), 3);
	/* Only what was missing went out again. */
	assert_int_equal(c->by_type[UP_T_DATA], nblocks - held);
	for (k = 0; k < 3; k++)
		assert_int_equal(fx->nodes[k]->dup_data, 0);
	assert_int_equal(fx->nreports, 3);
	fx_free(fx);
}

static uint64_t	 fx_acks_want;

static bool
fx_node0_acked(struct fx *fx)
{
	return (tp_mem_node_acks(fx->nodes[0]->mn) >= fx_acks_want);
}

/* A RESULT sent twice is acknowledged twice and reported once. */
static void
test_duplicate_result(void **state)
{
	struct fx	*fx;
	json_t		*st;
	uint64_t	 acks;

	fx = fx_new(&tp_mem_ops, NULL, 20 * 1024);
	fx_node(fx, 0x401, 128 * 1024, 0);
	fx_node(fx, 0x402, 128 * 1024, 0);
	/*
	 * The manifest first, the nodes later, and no package_ready: the
	 * engine finds the complete blob in the cache by itself.
	 */
	fanout_manifest(fx->f, &fx->mf);
	assert_true(fx_run(fx, fx_all_known, 2000));
	assert_true(fx_run(fx, fx_all_acked, 10000));
	assert_int_equal(fx->nreports, 2);
	acks = tp_mem_node_acks(fx->nodes[0]->mn);
	assert_true(acks >= 1);

	sim_node_resend_result(fx->nodes[0]);
	fx_acks_want = acks + 1;
	assert_true(fx_run(fx, fx_node0_acked, 5000));
	/* Once: a second acknowledgement or report would come at once. */
	fx_sleep(fx, 100);
	assert_int_equal(tp_mem_node_acks(fx->nodes[0]->mn), acks + 1);
	assert_int_equal(fx->nreports, 2);
	st = fanout_status_json(fx->f);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(st,
	    "results"), "duplicates")), 1);
	json_decref(st);
	fx_free(fx);
}

/* A node written off after activation whose RESULT comes late. */
static void
test_late_result(void **state)
{
	struct fx	*fx;
	json_t		*cj, *n;

	fx = fx_new(&tp_mem_ops, NULL, 20 * 1024);
	fx->conf.result_timeout_s = 1;
	fanout_reconfig(fx->f, &fx->conf);
	fx_node(fx, 0x501, 128 * 1024, 0);
	fx->nodes[0]->boot_delay_ms = 1600;	/* slower than the timeout */
	fx_start(fx);
	assert_true(fx_run(fx, fx_done, 10000));
	assert_int_equal(fx->nreports, 1);
	assert_int_equal(fx_reports_matching(fx, "\"result\":4,"), 1);

	assert_true(fx_run(fx, fx_all_acked, 10000));
	assert_int_equal(fx->nreports, 2);
	assert_int_equal(fx_reports_matching(fx, "\"state\":\"updated\""), 1);
	cj = fx_campaign(fx);
	n = json_array_get(json_object_get(cj, "nodes"), 0);
	assert_string_equal(json_string_value(json_object_get(n, "state")),
	    "updated");
	json_decref(cj);
	fx_free(fx);
}

static double
cpu_seconds(void)
{
	struct rusage	 ru;

	getrusage(RUSAGE_SELF, &ru);
	return (ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	    ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6);
}

/*
 * Seconds this process has spent runnable but waiting for a CPU
 * (/proc/self/schedstat, second field, ns); 0 where the kernel does
 * not keep it.
 */
static double
runq_wait_seconds(void)
{
	FILE			*f;
	unsigned long long	 run, wait;
	int			 n;

	if ((f = fopen("/proc/self/schedstat", "r")) == NULL)
		return (0);
	n = fscanf(f, "%llu %llu", &run, &wait);
	fclose(f);
	return (n == 2 ? (double)wait / 1e9 : 0);
}

/*
 * The daemon's wiring of the engine's clock on the real loop: DATA
 * leaves at the paced rate (bitrate * rate_pct, frame overhead counted),
 * never faster than it, driven by the one libevent timer the engine
 * asks for, not a busy loop.  The pacer's exact rate is the engine's
 * test (test_eng_session.c, test_rate, on a fake clock).
 */
static void
test_real_clock_pacing(void **state)
{
	struct fx		*fx;
	struct tp_mem_params	 p;
	struct tp_mem_counts	*c;
	double			 dt, bits, rate, cpu0, cpu, wall0, wall;
	double			 wait0, wait, rate_run;

	fx_default_params(&p);
	p.caps.bitrate_bps = 4000000;
	fx = fx_new(&tp_mem_ops, &p, 400 * 1024);
	fx->conf.rate_pct = 50;		/* 2 Mbit/s */
	fanout_reconfig(fx->f, &fx->conf);
	fx_node(fx, 0x801, 512 * 1024, 0);
	cpu0 = cpu_seconds();
	wait0 = runq_wait_seconds();
	wall0 = (double)ubt_now_ms() / 1000;
	fx_start(fx);
	assert_true(fx_run(fx, fx_all_acked, 20000));
	cpu = cpu_seconds() - cpu0;
	wait = runq_wait_seconds() - wait0;
	wall = (double)ubt_now_ms() / 1000 - wall0;

	c = tp_mem_counts(fx->m);
	dt = (double)(c->last_data_us - c->first_data_us) / 1e6;
	/* n frames span n - 1 intervals. */
	bits = (double)(c->data_bytes + 42 * c->by_type[UP_T_DATA]) * 8 *
	    (double)(c->by_type[UP_T_DATA] - 1) /
	    (double)c->by_type[UP_T_DATA];
	rate = bits / dt;
	/*
	 * The time this process waited for a CPU it was ready to use is
	 * the loaded machine's, not the pacer's: ctest runs this beside
	 * e2e tests, and late wake-ups under load measured 0.78 of the
	 * rate on the wall clock.
	 */
	rate_run = dt - wait > dt / 4 ? bits / (dt - wait) : rate;
	print_message("rate %.0f bit/s over %.3f s (%.0f without %.3f s "
	    "waiting for a CPU), cpu %.3f s of %.3f s\n", rate, dt, rate_run,
	    wait, cpu, wall);
	assert_true(dt > 1.0);
	/*
	 * Never faster than the rate (+2 %), on the wall clock.  Not much
	 * slower once the time spent waiting for a CPU is set aside
	 * (docs/benchmarks.md measures the pacing; this only checks it is
	 * in place).
	 */
	assert_true(rate < 2000000 * 1.02);
	assert_true(rate_run > 2000000 * 0.85);
	assert_true(cpu < wall * 0.5);
	fx_free(fx);
}

static bool
fx_some_data(struct fx *fx)
{
	return (tp_mem_counts(fx->m)->by_type[UP_T_DATA] >= 20);
}

static uint64_t	 fx_data_after;

static bool
fx_more_data(struct fx *fx)
{
	return (tp_mem_counts(fx->m)->by_type[UP_T_DATA] > fx_data_after);
}

/* The cancel's ABORT reached both nodes and both were reported. */
static bool
fx_aborted(struct fx *fx)
{
	return (tp_mem_counts(fx->m)->by_type[UP_T_ABORT] >= 1 &&
	    fx_nstate(fx, UP_NS_IDLE) == 2 && fx->nreports >= 2);
}

/* Pause stops sending; resume goes on; cancel aborts and reports. */
static void
test_pause_resume_cancel(void **state)
{
	struct fx		*fx;
	struct tp_mem_params	 p;
	struct tp_mem_counts	*c;
	char			 id[32], buf[32], *cause = NULL;
	json_t			*cj;
	uint64_t		 data;

	fx_default_params(&p);
	p.caps.bitrate_bps = 2000000;
	fx = fx_new(&tp_mem_ops, &p, 200 * 1024);
	fx_node(fx, 0x901, 512 * 1024, 0);
	fx_node(fx, 0x902, 512 * 1024, 0);
	fx_start(fx);
	assert_true(fx_run(fx, fx_some_data, 5000));
	c = tp_mem_counts(fx->m);
	cj = fx_campaign(fx);
	snprintf(id, sizeof(id), "%s", json_string_value(json_object_get(cj,
	    "id")));
	json_decref(cj);

	assert_int_equal(fanout_campaign_pause(fx->f, "nope", &cause), -1);
	assert_non_null(cause);
	free(cause);
	cause = NULL;
	assert_int_equal(fanout_campaign_pause(fx->f, id, &cause), 0);
	assert_string_equal(fx_cstate(fx, buf, sizeof(buf)), "paused");
	fx_sleep(fx, 30);
	data = c->by_type[UP_T_DATA];
	fx_sleep(fx, 300);
	assert_int_equal(c->by_type[UP_T_DATA], data);

	assert_int_equal(fanout_campaign_resume(fx->f, id, &cause), 0);
	fx_data_after = data;
	assert_true(fx_run(fx, fx_more_data, 5000));

	assert_int_equal(fanout_campaign_cancel(fx->f, id, &cause), 0);
	assert_string_equal(fx_cstate(fx, buf, sizeof(buf)), "cancelled");
	assert_true(fx_run(fx, fx_aborted, 5000));
	assert_true(c->by_type[UP_T_ABORT] >= 1);
	assert_int_equal(fx_nstate(fx, UP_NS_IDLE), 2);
	assert_int_equal(fx->nreports, 2);
	assert_int_equal(fx_reports_matching(fx, "\"state\":\"cancelled\""),
	    2);
	assert_int_equal(fanout_campaign_resume(fx->f, id, &cause), -1);
	free(cause);
	fx_free(fx);
}

/*
 * A node outside the deployment's target that accepts the broadcast
 * offer is aborted: it must not install what it was not meant to get.
 */
static void
test_non_member_aborted(void **state)
{
	struct fx		*fx;
	struct sim_node		*other;

	fx = fx_new(&tp_mem_ops, NULL, 30 * 1024);
	fx->dep.nhw = 1;
	strcpy(fx->dep.hw[0], "hw-a");
	fx_node(fx, 0xb01, 128 * 1024, 0);
	other = sim_node_new(fx->base, fx->m, 9, 0xb02, "hw-b", "app",
	    "1.0.0", 128 * 1024, 0, 77);
	fx->nodes[fx->nnodes++] = other;
	fx_start(fx);
	assert_true(fx_run(fx, fx_all_acked, 10000));
	assert_int_equal(sim_node_state(fx->nodes[0], NULL, NULL),
	    UP_NS_UPDATED);
	assert_int_equal(sim_node_state(other, NULL, NULL), UP_NS_IDLE);
	assert_string_equal(sim_node_version(other, "app"), "1.0.0");
	assert_true(tp_mem_counts(fx->m)->by_type[UP_T_ABORT] >= 1);
	assert_int_equal(fx->nreports, 1);
	assert_int_equal(fx_reports_matching(fx, "0x0000000000000b02"), 0);
	fx_free(fx);
}

/* The control socket's views while a campaign runs and after. */
static void
test_views(void **state)
{
	struct fx		*fx;
	struct tp_mem_params	 p;
	json_t			*st, *tp, *pr, *row, *cj, *sess;
	size_t			 i;

	fx_default_params(&p);
	p.caps.bitrate_bps = 1000000;
	fx = fx_new(&tp_mem_ops, &p, 100 * 1024);
	fx_node(fx, 0xc01, 256 * 1024, 0);
	fx_node(fx, 0xc02, 256 * 1024, 0);
	fx_start(fx);
	assert_true(fx_run(fx, fx_some_data, 5000));

	st = fanout_status_json(fx->f);
	tp = json_array_get(json_object_get(st, "transports"), 0);
	assert_string_equal(json_string_value(json_object_get(tp, "name")),
	    "mem0");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(
	    tp, "caps"), "mtu")), UP_FRAME_MAX);
	assert_true(json_integer_value(json_object_get(json_object_get(tp,
	    "pacer"), "frames")) > 0);
	assert_true(json_integer_value(json_object_get(json_object_get(
	    json_object_get(tp, "stats"), "engine"), "tx_data")) > 0);
	/* Link shapes: a LAN has no peers and serves nobody alone. */
	assert_true(json_is_array(json_object_get(tp, "peers")));
	assert_int_equal(json_array_size(json_object_get(tp, "peers")), 0);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(
	    tp, "shape"), "served")), 0);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(
	    tp, "shape"), "slots")), 4);
	assert_int_equal(json_integer_value(json_object_get(st, "nodes")), 2);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(st,
	    "campaigns"), "running")), 1);
	json_decref(st);

	pr = fanout_progress_json(fx->f);
	assert_int_equal(json_array_size(pr), 2);
	json_array_foreach(pr, i, row) {
		assert_string_equal(json_string_value(json_object_get(row,
		    "campaign")), "1");
		assert_true(json_integer_value(json_object_get(row,
		    "nblocks")) == 100);
		assert_true(json_integer_value(json_object_get(row, "pct")) <=
		    100);
		assert_non_null(json_object_get(row, "rate_bps"));
	}
	json_decref(pr);

	cj = fanout_campaign_json(fx->f, "1");
	assert_non_null(cj);
	sess = json_array_get(json_object_get(cj, "sessions"), 0);
	assert_int_equal(json_integer_value(json_object_get(sess,
	    "block_size")), 1024);
	assert_int_equal(strlen(json_string_value(json_object_get(sess,
	    "session"))), 8);
	assert_string_equal(json_string_value(json_object_get(sess, "shape")),
	    "broadcast");
	assert_true(json_is_false(json_object_get(sess, "frozen")));
	json_decref(cj);
	assert_null(fanout_campaign_json(fx->f, "42"));
	assert_null(fanout_campaign_json(fx->f, "x"));

	assert_true(fx_run(fx, fx_all_acked, 20000));
	pr = fanout_progress_json(fx->f);
	assert_int_equal(json_array_size(pr), 0);	/* nothing active */
	json_decref(pr);
	fx_free(fx);
}

/*
 * Dynamic membership: a node that shows up mid-transfer joins the
 * running session; one that shows up after the campaign is done reopens
 * it.
 */
static void
test_late_joiners(void **state)
{
	struct fx		*fx;
	struct tp_mem_params	 p;
	char			 buf[32];

	fx_default_params(&p);
	p.caps.bitrate_bps = 4000000;
	fx = fx_new(&tp_mem_ops, &p, 100 * 1024);
	fx_node(fx, 0xd01, 256 * 1024, 0);
	fx_node(fx, 0xd02, 256 * 1024, 0);
	fx_start(fx);
	assert_true(fx_run(fx, fx_some_data, 5000));
	fx_node(fx, 0xd03, 256 * 1024, 0);	/* boots and announces */
	assert_true(fx_run(fx, fx_all_acked, 20000));
	assert_int_equal(fx_nstate(fx, UP_NS_UPDATED), 3);
	assert_int_equal(fx->nreports, 3);
	/* The latecomer got the blocks it missed in a repair pass. */
	assert_true(tp_mem_counts(fx->m)->by_type[UP_T_DATA] > 100);

	fx_node(fx, 0xd04, 256 * 1024, 0);
	fx_sleep(fx, 50);
	assert_string_equal(fx_cstate(fx, buf, sizeof(buf)), "running");
	assert_true(fx_run(fx, fx_all_acked, 20000));
	assert_int_equal(fx_nstate(fx, UP_NS_UPDATED), 4);
	assert_int_equal(fx->nreports, 4);
	assert_int_equal(fx_reports_matching(fx, "0x0000000000000d04"), 1);
	fx_free(fx);
}

/*
 * Topology from the link (fo_route.c): the routes a link reports by
 * address reach the registry as parents, levels and relay roles, once
 * the nodes at those addresses are known, whatever the order.
 */
static void
test_routes(void **state)
{
	struct fx			*fx;
	struct eng_link			*l;
	const struct registry_node	*rn;
	struct tp_addr			 a[4], none, later;
	char				*cause = NULL;
	int				 i;

	fx = fx_new(&tp_mem_ops, NULL, 64 * 1024);
	for (i = 0; i < 4; i++)
		fx_node(fx, 0xd01 + (uint64_t)i, 256 * 1024, 0);
	assert_true(fx_run(fx, fx_all_known, 2000));
	assert_non_null(l = eng_link_find(fx->f->eng, "mem0"));
	for (i = 0; i < 4; i++) {
		assert_non_null(rn = registry_get(fx->reg,
		    0xd01 + (uint64_t)i));
		a[i] = rn->addr;
	}
	memset(&none, 0, sizeof(none));

	/* d04 behind d03 behind d02; d02 heard by the module itself.  The
	 * child comes first: its parent is unknown as a route, but known
	 * as a node. */
	fanout__route(fx->f, l, &a[3], &a[2], 3);
	fanout__route(fx->f, l, &a[2], &a[1], 2);
	fanout__route(fx->f, l, &a[1], &none, 1);
	assert_non_null(rn = registry_get(fx->reg, 0xd04));
	assert_int_equal(rn->parent, 0xd03);
	assert_int_equal(rn->level, 3);
	assert_int_equal(rn->role, SCHED_ROLE_LEAF);
	assert_non_null(rn = registry_get(fx->reg, 0xd03));
	assert_int_equal(rn->parent, 0xd02);
	assert_int_equal(rn->level, 2);
	assert_int_equal(rn->role, SCHED_ROLE_RELAY);
	assert_non_null(rn = registry_get(fx->reg, 0xd02));
	assert_int_equal(rn->parent, 0);
	assert_int_equal(rn->level, 1);
	assert_int_equal(rn->role, SCHED_ROLE_RELAY);

	/* d04 moves under d02: d03 relays for nobody any more. */
	fanout__route(fx->f, l, &a[3], &a[1], 2);
	assert_int_equal(registry_get(fx->reg, 0xd04)->parent, 0xd02);
	assert_int_equal(registry_get(fx->reg, 0xd04)->level, 2);
	assert_int_equal(registry_get(fx->reg, 0xd03)->role, SCHED_ROLE_LEAF);
	assert_int_equal(registry_get(fx->reg, 0xd02)->role, SCHED_ROLE_RELAY);

	/* A role a technician set that is not the link's is kept. */
	assert_int_equal(registry_set_topology(fx->reg, 0xd01, 0, 0,
	    SCHED_ROLE_COORDINATOR, &cause), 0);
	fanout__route(fx->f, l, &a[0], &none, 1);
	assert_int_equal(registry_get(fx->reg, 0xd01)->role,
	    SCHED_ROLE_COORDINATOR);
	assert_int_equal(registry_get(fx->reg, 0xd01)->level, 1);

	/* A route at an address no node was heard at waits for it; the
	 * node at d03's address is then heard elsewhere: the new route
	 * takes it. */
	later = a[2];
	later.b[0] ^= 0x80;
	fanout__route(fx->f, l, &later, &a[0], 2);
	assert_int_equal(registry_get(fx->reg, 0xd03)->parent, 0xd02);
	fanout__route_heard(fx->f, l, &later, 0xd03);
	assert_int_equal(registry_get(fx->reg, 0xd03)->parent, 0xd01);
	assert_int_equal(registry_get(fx->reg, 0xd03)->level, 2);
	assert_int_equal(registry_get(fx->reg, 0xd01)->role,
	    SCHED_ROLE_COORDINATOR);
	/* Level 0 (unknown) says nothing. */
	fanout__route(fx->f, l, &a[3], &none, 0);
	assert_int_equal(registry_get(fx->reg, 0xd04)->level, 2);
	(void)state;
}

static int
teardown(void **state)
{
	if (cur_fx != NULL)
		fx_free(cur_fx);
	return (0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_campaign_loss, teardown),
		cmocka_unit_test_teardown(test_decline_and_silent, teardown),
		cmocka_unit_test_teardown(test_resume, teardown),
		cmocka_unit_test_teardown(test_duplicate_result, teardown),
		cmocka_unit_test_teardown(test_late_result, teardown),
		cmocka_unit_test_teardown(test_real_clock_pacing, teardown),
		cmocka_unit_test_teardown(test_pause_resume_cancel, teardown),
		cmocka_unit_test_teardown(test_non_member_aborted, teardown),
		cmocka_unit_test_teardown(test_views, teardown),
		cmocka_unit_test_teardown(test_late_joiners, teardown),
		cmocka_unit_test_teardown(test_routes, teardown),
	};

	log_init(1, 0);
	log_setverbose(getenv("UB_TEST_VERBOSE") != NULL);
	up_log_set_hook(log_up_hook);
	return (cmocka_run_group_tests(tests, NULL, NULL));
}
