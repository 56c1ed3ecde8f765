/*
 * test_sched_run.c: runtime decisions on a fake clock: stage advance and
 * halt, windows, gates, retries with back-off, the watchdog, deadline,
 * partial failure, atomic groups, modes, technician actions, dynamic
 * membership, persistence across a "kill -9", and the reports.
 */
#include <sys/stat.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <unistd.h>

#include <cmocka.h>

#include "sched_fixture.h"

struct fx {
	struct fake_clock	 fc;
	struct sched_clock	 clk;
	struct sched_out	 out;
	struct cache_pkg	 pk[4];
	struct sched_node	 n[12];
	size_t			 nn;
	struct sched_campaign	*c;
};

static int
setup(void **state)
{
	struct fx	*f = calloc(1, sizeof(*f));
	size_t		 i;

	f->fc.now = T_MON + 2 * 3600;
	f->clk = fake_clock(&f->fc);
	mkpkg(&f->pk[0], "app-2", "app", "2.0", NULL, UP_KIND_FULL, NULL,
	    1000);
	mkpkg(&f->pk[1], "modem-2", "modem", "2.0", NULL, UP_KIND_FULL, NULL,
	    500);
	mkpkg(&f->pk[2], "d-10-15", "app", "1.5", NULL, UP_KIND_DELTA, "1.0",
	    50);
	mkpkg(&f->pk[3], "d-15-20", "app", "2.0", NULL, UP_KIND_DELTA, "1.5",
	    60);
	f->nn = 10;
	for (i = 0; i < f->nn; i++)
		mknode(&f->n[i], i + 1, "s1", "lan0", "app", "0.9");
	*state = f;
	return (0);
}

static int
teardown(void **state)
{
	struct fx	*f = *state;

	sched_campaign_free(f->c);
	sched_out_free(&f->out);
	free(f);
	return (0);
}

static void
mk(struct fx *f, const char *json)
{
	struct sched_policy	 p;
	char			*cause = NULL;

	policy_ok(&p, json);
	sched_campaign_free(f->c);
	f->c = sched_campaign_plan("7", &p, f->pk, 4, f->n, f->nn,
	    f->fc.now, &cause);
	if (f->c == NULL)
		fprintf(stderr, "%s\n", cause);
	assert_non_null(f->c);
	sched_policy_clear(&p);
}

static int
tick(struct fx *f)
{
	sched_out_reset(&f->out);
	return (sched_tick(f->c, &f->clk, &f->out));
}

static int
offered(struct fx *f, uint64_t node)
{
	return ((int)count_dec(&f->out, SCHED_D_OFFER, node));
}

/* The record item `it' owes now. */
static int
due(struct fx *f, const struct sched_item *it)
{
	return (sched_item_report_due(f->c, (size_t)(it - f->c->items),
	    f->fc.now));
}

static void
ok(struct fx *f, uint64_t node, const char *comp)
{
	assert_int_equal(sched_item_result(f->c, node, comp, UP_R_SUCCESS,
	    1000, f->fc.now), 0);
}

static void
test_stage_advance(void **state)
{
	struct fx		*f = *state;
	struct sched_counts	 k;
	size_t			 i;

	mk(f, "{\"stages\":[{\"name\":\"canary\",\"nodes\":[3],"
	    "\"success\":100,\"failure\":0,\"soak\":\"10m\"},"
	    "{\"name\":\"half\",\"percent\":50,\"success\":80,"
	    "\"failure\":25},{\"name\":\"all\",\"rest\":true}]}");
	assert_int_equal(f->c->nstages, 3);
	tick(f);
	assert_true(has_event(&f->out, SCHED_EV_STARTED));
	assert_true(has_event(&f->out, SCHED_EV_STAGE_STARTED));
	/* Only the canary is offered. */
	assert_int_equal(count_dec(&f->out, SCHED_D_OFFER, 0), 1);
	assert_int_equal(offered(f, 3), 1);
	assert_int_equal(f->out.d[2].hold, 0);
	assert_string_equal(sched_item_find(f->c, 1, "app")->wait,
	    "stage 'half' not started");
	/* Nothing new until the canary reports. */
	tick(f);
	assert_int_equal(count_dec(&f->out, SCHED_D_OFFER, 0), 0);
	ok(f, 3, "app");
	f->fc.now += 60;
	tick(f);
	assert_int_equal(f->c->srt[0].state, SCHED_S_SOAKING);
	assert_int_equal(count_dec(&f->out, SCHED_D_OFFER, 0), 0);
	assert_int_equal(f->c->next_wake, f->fc.now + 600);
	/* After the soak: the next stage starts by itself. */
	f->fc.now += 600;
	tick(f);
	assert_true(has_event(&f->out, SCHED_EV_STAGE_PASSED));
	assert_int_equal(f->c->stage, 1);
	/* 50 % of 10 = 5 nodes, the canary counted: 4 more. */
	assert_int_equal(count_dec(&f->out, SCHED_D_OFFER, 0), 4);
	sched_stage_counts(f->c, 1, &k);
	assert_int_equal(k.nodes, 4);
	assert_int_equal(k.active, 4);
	/* Stage "half" holds nodes 1, 2, 4, 5 (node id order). */
	ok(f, 1, "app");
	ok(f, 2, "app");
	ok(f, 4, "app");
	tick(f);			/* 75 % < 80 %: waits */
	assert_int_equal(f->c->stage, 1);
	ok(f, 5, "app");
	tick(f);			/* threshold met, soak 0 */
	assert_int_equal(f->c->stage, 2);
	assert_int_equal(count_dec(&f->out, SCHED_D_OFFER, 0), 5);
	for (i = 6; i <= 10; i++)
		ok(f, i, "app");
	tick(f);
	assert_int_equal(f->c->state, SCHED_C_DONE);
	assert_true(has_event(&f->out, SCHED_EV_DONE));
	assert_string_equal(f->c->reason, "10 of 10 items succeeded");
}

static void
test_stage_halt(void **state)
{
	struct fx		*f = *state;
	char			*cause = NULL;
	size_t			 i;

	mk(f, "{\"retry\":{\"count\":0},\"stages\":[{\"name\":\"first\","
	    "\"count\":4,\"success\":75,\"failure\":25},{\"rest\":true}]}");
	tick(f);
	assert_int_equal(count_dec(&f->out, SCHED_D_OFFER, 0), 4);
	ok(f, 1, "app");
	/* One failure of four: 25 %, not over the limit. */
	sched_item_result(f->c, 2, "app", UP_R_ROLLED_BACK, 0, f->fc.now);
	tick(f);
	assert_int_equal(f->c->state, SCHED_C_RUNNING);
	/* A second: 50 % > 25 %: halt, with the reason upstream. */
	sched_item_result(f->c, 3, "app", UP_R_INTEGRITY, 0, f->fc.now);
	tick(f);
	assert_int_equal(f->c->state, SCHED_C_HALTED);
	assert_true(has_event(&f->out, SCHED_EV_HALTED));
	assert_string_equal(f->c->reason, "stage 'first': 2 of 4 nodes "
	    "failed (50% > 25%)");
	assert_string_equal(sched_item_find(f->c, 2, "app")->reason,
	    "rolled_back");
	/* Nothing more is offered while halted; the running node ends. */
	ok(f, 4, "app");
	tick(f);
	assert_int_equal(count_dec(&f->out, SCHED_D_OFFER, 0), 0);
	assert_int_equal(f->c->state, SCHED_C_HALTED);
	/* approve does not apply; resume overrides the halt. */
	assert_int_equal(sched_campaign_action(f->c, SCHED_A_APPROVE,
	    f->fc.now, &f->out, &cause), -1);
	assert_string_equal(cause, "campaign '7' is halted: cannot approve");
	free(cause);
	assert_int_equal(sched_campaign_action(f->c, SCHED_A_RESUME,
	    f->fc.now, &f->out, NULL), 0);
	tick(f);
	/* Stage "first" passes (overridden); the rest starts. */
	assert_int_equal(f->c->stage, 1);
	assert_int_equal(count_dec(&f->out, SCHED_D_OFFER, 0), 6);
	for (i = 5; i <= 10; i++)
		ok(f, i, "app");
	tick(f);
	assert_int_equal(f->c->state, SCHED_C_DONE);
}

static void
test_window_holds(void **state)
{
	struct fx	*f = *state;

	/* Monday 02:00 UTC; window 01:00-05:00 local at UTC+8 = 17:00 UTC. */
	mk(f, "{\"windows\":[\"mon-fri 01:00-05:00\"],"
	    "\"utc_offset\":\"+08:00\"}");
	f->fc.off = 0;
	tick(f);
	assert_int_equal(count_dec(&f->out, SCHED_D_OFFER, 0), 0);
	assert_string_equal(sched_item_find(f->c, 1, "app")->wait,
	    "window closed; opens 2026-11-23T17:00:00Z");
	assert_int_equal(f->c->next_wake, T_MON + 17 * 3600);
	f->fc.now = T_MON + 17 * 3600;
	tick(f);
	assert_int_equal(count_dec(&f->out, SCHED_D_OFFER, 0), 10);
	assert_string_equal(sched_item_find(f->c, 1, "app")->wait, "");
}

static void
test_gates(void **state)
{
	struct fx		*f = *state;
	struct sched_node	 n;

	f->n[0].battery = 10;
	f->n[1].rssi_dbm = -120;
	f->n[2].snr_db = -10;
	f->n[3].battery = UP_BATTERY_UNKNOWN;		/* mains: passes */
	mk(f, "{\"gates\":{\"min_battery\":30,\"min_rssi\":-110,"
	    "\"min_snr\":-5}}");
	tick(f);
	assert_int_equal(count_dec(&f->out, SCHED_D_OFFER, 0), 7);
	assert_int_equal(offered(f, 1) + offered(f, 2) + offered(f, 3), 0);
	assert_string_equal(sched_item_find(f->c, 1, "app")->wait,
	    "gate: battery 10% < 30%");
	assert_string_equal(sched_item_find(f->c, 2, "app")->wait,
	    "gate: rssi -120 dBm < -110 dBm");
	assert_string_equal(sched_item_find(f->c, 3, "app")->wait,
	    "gate: snr -10 dB < -5 dB");
	/* Node 1 reports a charged battery: offered at the next tick. */
	n = f->n[0];
	n.battery = 80;
	assert_int_equal(sched_node_seen(f->c, &n, f->fc.now), 0);
	tick(f);
	assert_int_equal(offered(f, 1), 1);
	assert_int_equal(count_dec(&f->out, SCHED_D_OFFER, 0), 1);
}

static void
test_retry_backoff_watchdog(void **state)
{
	struct fx		*f = *state;
	struct sched_item	*it;
	int64_t			 t0;

	f->nn = 1;
	mk(f, "{\"retry\":{\"count\":3,\"interval\":\"10s\","
	    "\"max_interval\":\"25s\",\"backoff\":2},\"node_timeout\":\"5m\"}");
	it = sched_item_find(f->c, 1, "app");
	tick(f);
	assert_int_equal(offered(f, 1), 1);
	t0 = f->fc.now;
	/* Attempt 1 lost: retry in 10 s. */
	sched_item_result(f->c, 1, "app", UP_R_CONN_LOST, 100, f->fc.now);
	assert_int_equal(it->state, SCHED_I_RETRY);
	assert_int_equal(it->next_try, t0 + 10);
	tick(f);
	assert_int_equal(offered(f, 1), 0);
	assert_int_equal(f->c->next_wake, t0 + 10);
	f->fc.now = t0 + 10;
	tick(f);
	assert_int_equal(offered(f, 1), 1);
	/* Attempt 2: the node says nothing; the watchdog fires at 5 min. */
	f->fc.now += 299;
	tick(f);
	assert_int_equal(count_dec(&f->out, SCHED_D_ABORT, 1), 0);
	f->fc.now += 1;
	tick(f);
	assert_int_equal(count_dec(&f->out, SCHED_D_ABORT, 1), 1);
	assert_int_equal(it->state, SCHED_I_RETRY);
	assert_int_equal(it->next_try, f->fc.now + 20);	/* 10 * 2 */
	assert_string_equal(it->reason, "watchdog: no result within 300 s");
	f->fc.now += 20;
	tick(f);
	assert_int_equal(offered(f, 1), 1);
	sched_item_result(f->c, 1, "app", UP_R_CONN_LOST, 0, f->fc.now);
	assert_int_equal(it->next_try, f->fc.now + 25);	/* capped */
	f->fc.now += 25;
	tick(f);
	assert_int_equal(offered(f, 1), 1);
	assert_int_equal(it->tries, 4);
	/* Attempt 4 of 1 + 3 fails: final, with the count. */
	sched_item_result(f->c, 1, "app", UP_R_CONN_LOST, 0, f->fc.now);
	assert_int_equal(it->state, SCHED_I_FAILED);
	assert_string_equal(it->reason, "conn_lost (after 4 attempts)");
	assert_int_equal(it->bytes_sent, 100);
	tick(f);
	assert_int_equal(f->c->state, SCHED_C_DONE);
	/* A final non-retryable failure is not retried. */
	f->fc.now += 1;
	mk(f, "{\"retry\":{\"count\":3}}");
	tick(f);
	sched_item_result(f->c, 1, "app", UP_R_SIGNATURE, 0, f->fc.now);
	assert_int_equal(sched_item_find(f->c, 1, "app")->state,
	    SCHED_I_FAILED);
}

static void
test_deadline(void **state)
{
	struct fx	*f = *state;
	size_t		 i;

	f->nn = 3;
	f->n[2].battery = 5;
	mk(f, "{\"deadline\":\"2026-11-23T03:00:00Z\",\"gates\":"
	    "{\"min_battery\":20}}");
	tick(f);
	assert_int_equal(count_dec(&f->out, SCHED_D_OFFER, 0), 2);
	ok(f, 1, "app");
	f->fc.now = T_MON + 3 * 3600;
	tick(f);
	/* Every node is final: the active one aborted, the gated one
	 * expired with its reason. */
	assert_true(has_event(&f->out, SCHED_EV_EXPIRED));
	assert_int_equal(count_dec(&f->out, SCHED_D_ABORT, 2), 1);
	assert_int_equal(f->c->state, SCHED_C_DONE);
	for (i = 0; i < f->c->nitems; i++)
		assert_true(SCHED_I_FINAL(f->c->items[i].state));
	assert_int_equal(sched_item_find(f->c, 1, "app")->state,
	    SCHED_I_SUCCEEDED);
	assert_int_equal(sched_item_find(f->c, 3, "app")->state,
	    SCHED_I_EXPIRED);
	assert_string_equal(sched_item_find(f->c, 3, "app")->reason,
	    "deadline 2026-11-23T03:00:00Z passed; was: gate: battery 5% < "
	    "20%");
}

static void
test_partial_failure(void **state)
{
	struct fx	*f = *state;

	/* Nodes 1, 2 run app 0.9 and modem 1.0; app waits for modem. */
	f->nn = 2;
	addcomp(&f->n[0], "modem", "1.0");
	addcomp(&f->n[1], "modem", "1.0");
	mk(f, "{\"retry\":{\"count\":0},\"order\":[\"modem\",\"app\"]}");
	tick(f);
	assert_int_equal(count_dec(&f->out, SCHED_D_OFFER, 0), 2);
	assert_string_equal(f->out.d[f->out.n - 1].component, "modem");
	assert_string_equal(sched_item_find(f->c, 1, "app")->wait,
	    "waits for node 0x0000000000000001 modem 2.0 (order)");
	/* Node 1's modem fails: its app is skipped; node 2 goes on. */
	sched_item_result(f->c, 1, "modem", UP_R_ROLLED_BACK, 0, f->fc.now);
	ok(f, 2, "modem");
	tick(f);
	assert_int_equal(offered(f, 1), 0);
	assert_int_equal(offered(f, 2), 1);
	assert_int_equal(sched_item_find(f->c, 1, "app")->state,
	    SCHED_I_SKIPPED);
	assert_string_equal(sched_item_find(f->c, 1, "app")->reason,
	    "order node 0x0000000000000001 modem 2.0: failed (rolled_back)");
	/* The member's facts follow the confirmed version. */
	assert_string_equal(sched_node_version(&sched_member_get(f->c,
	    2)->node, "modem"), "2.0");

	/*
	 * Issue 7: the skip is the truth even while the campaign waits for
	 * a stage's approval (or is paused): it is not held back.
	 */
	mk(f, "{\"retry\":{\"count\":0},\"order\":[\"modem\",\"app\"],"
	    "\"stages\":[{\"nodes\":[1,2],\"success\":0},"
	    "{\"rest\":true,\"approve\":true}]}");
	tick(f);
	ok(f, 2, "modem");
	tick(f);
	ok(f, 2, "app");
	tick(f);
	sched_item_result(f->c, 1, "modem", UP_R_ROLLED_BACK, 0, f->fc.now);
	f->c->state = SCHED_C_APPROVAL;
	tick(f);
	assert_int_equal(sched_item_find(f->c, 1, "app")->state,
	    SCHED_I_SKIPPED);
}

static void
test_atomic_and_modes(void **state)
{
	struct fx	*f = *state;
	size_t		 i;

	f->nn = 2;
	addcomp(&f->n[0], "modem", "1.0");
	addcomp(&f->n[1], "modem", "1.0");
	mk(f, "{\"atomic\":[{\"name\":\"radio\",\"components\":[\"app\","
	    "\"modem\"]}]}");
	tick(f);
	assert_int_equal(count_dec(&f->out, SCHED_D_OFFER, 0), 4);
	for (i = 0; i < f->out.n; i++)
		if (f->out.d[i].kind == SCHED_D_OFFER)
			assert_int_equal(f->out.d[i].hold, 1);
	/* Node 1: both verified -> both activate together. */
	assert_int_equal(sched_item_verified(f->c, 1, "app", f->fc.now), 0);
	tick(f);
	assert_int_equal(count_dec(&f->out, SCHED_D_ACTIVATE, 0), 0);
	assert_string_equal(sched_item_find(f->c, 1, "app")->wait,
	    "atomic group 'radio': waits for its members");
	sched_item_verified(f->c, 1, "modem", f->fc.now);
	/* Node 2: modem fails before activation: app is stopped. */
	sched_item_verified(f->c, 2, "app", f->fc.now);
	sched_item_result(f->c, 2, "modem", UP_R_SIGNATURE, 0, f->fc.now);
	tick(f);
	assert_int_equal(count_dec(&f->out, SCHED_D_ACTIVATE, 1), 2);
	assert_int_equal(count_dec(&f->out, SCHED_D_ACTIVATE, 2), 0);
	assert_int_equal(count_dec(&f->out, SCHED_D_ABORT, 2), 1);
	assert_int_equal(sched_item_find(f->c, 2, "app")->state,
	    SCHED_I_SKIPPED);
	/* Node 1: modem confirms, app rolls back: the group failed. */
	ok(f, 1, "modem");
	sched_item_result(f->c, 1, "app", UP_R_ROLLED_BACK, 0, f->fc.now);
	tick(f);
	assert_int_equal(sched_item_find(f->c, 1, "modem")->state,
	    SCHED_I_FAILED);
	assert_string_equal(sched_item_find(f->c, 1, "modem")->reason,
	    "atomic group 'radio': node 0x0000000000000001 app 2.0 rolled "
	    "back after activation; this node runs modem 2.0 and needs a "
	    "rollback");

	/* download-only: verified is final. */
	f->nn = 1;
	mk(f, "{\"mode\":\"download-only\"}");
	tick(f);
	assert_int_equal(f->out.d[f->out.n - 1].hold, 1);
	sched_item_verified(f->c, 1, "app", f->fc.now);
	sched_item_verified(f->c, 1, "modem", f->fc.now);
	tick(f);
	assert_int_equal(sched_item_find(f->c, 1, "app")->state,
	    SCHED_I_DOWNLOADED);
	assert_int_equal(f->c->state, SCHED_C_DONE);

	/* install-at: held until the time. */
	mk(f, "{\"mode\":\"install-at\",\"install_at\":"
	    "\"2026-11-24T01:00:00Z\"}");
	tick(f);
	sched_item_verified(f->c, 1, "app", f->fc.now);
	tick(f);
	assert_int_equal(count_dec(&f->out, SCHED_D_ACTIVATE, 0), 0);
	assert_string_equal(sched_item_find(f->c, 1, "app")->wait,
	    "installs at 2026-11-24T01:00:00Z");
	f->fc.now = T_MON + 86400 + 3600;
	tick(f);
	assert_int_equal(count_dec(&f->out, SCHED_D_ACTIVATE, 1), 1);
}

static void
test_chain_steps(void **state)
{
	struct fx		*f = *state;
	struct sched_item	*it;

	f->nn = 1;
	strcpy(f->n[0].comp[0].version, "1.0");
	mk(f, "{\"step_cost\":0}");
	it = sched_item_find(f->c, 1, "app");
	assert_int_equal(it->nsteps, 2);
	assert_int_equal(it->bytes, 110);
	tick(f);
	assert_string_equal(f->out.d[f->out.n - 1].pkg, "d-10-15");
	ok(f, 1, "app");
	assert_int_equal(it->state, SCHED_I_PENDING);
	tick(f);
	assert_string_equal(f->out.d[f->out.n - 1].pkg, "d-15-20");
	ok(f, 1, "app");
	assert_int_equal(it->state, SCHED_I_SUCCEEDED);
	assert_string_equal(sched_node_version(&sched_member_get(f->c,
	    1)->node, "app"), "2.0");
}

static void
test_actions(void **state)
{
	struct fx	*f = *state;
	char		*cause = NULL;

	mk(f, "{\"approve\":true,\"concurrency\":{\"lan0\":3}}");
	tick(f);
	assert_int_equal(count_dec(&f->out, SCHED_D_OFFER, 0), 0);
	assert_int_equal(f->c->state, SCHED_C_APPROVAL);
	assert_int_equal(sched_campaign_action(f->c, SCHED_A_APPROVE,
	    f->fc.now, &f->out, NULL), 0);
	tick(f);
	/* Per-transport concurrency. */
	assert_int_equal(count_dec(&f->out, SCHED_D_OFFER, 0), 3);
	assert_string_equal(sched_item_find(f->c, 4, "app")->wait,
	    "concurrency: 3 in progress on 'lan0'");
	assert_int_equal(sched_campaign_action(f->c, SCHED_A_PAUSE,
	    f->fc.now, &f->out, NULL), 0);
	ok(f, 1, "app");		/* results still count */
	tick(f);
	assert_int_equal(count_dec(&f->out, SCHED_D_OFFER, 0), 0);
	assert_int_equal(sched_campaign_action(f->c, SCHED_A_PAUSE,
	    f->fc.now, &f->out, &cause), -1);
	assert_string_equal(cause, "campaign '7' is paused: cannot pause");
	free(cause);
	assert_int_equal(sched_campaign_action(f->c, SCHED_A_RESUME,
	    f->fc.now, &f->out, NULL), 0);
	tick(f);
	assert_int_equal(count_dec(&f->out, SCHED_D_OFFER, 0), 1);
	/* Node 2 activating survives a cancel; force-cancel aborts it. */
	sched_item_verified(f->c, 2, "app", f->fc.now);
	sched_out_reset(&f->out);
	assert_int_equal(sched_campaign_action(f->c, SCHED_A_CANCEL,
	    f->fc.now, &f->out, NULL), 0);
	assert_int_equal(count_dec(&f->out, SCHED_D_ABORT, 0), 2);
	assert_int_equal(sched_item_find(f->c, 2, "app")->state,
	    SCHED_I_ACTIVATING);
	assert_int_equal(sched_item_find(f->c, 9, "app")->state,
	    SCHED_I_CANCELLED);
	assert_int_equal(sched_action_parse("force-cancel"),
	    SCHED_A_FORCE_CANCEL);
	assert_int_equal(sched_action_parse("nuke"), -1);
	sched_out_reset(&f->out);
	assert_int_equal(sched_campaign_action(f->c, SCHED_A_FORCE_CANCEL,
	    f->fc.now, &f->out, NULL), 0);
	assert_int_equal(count_dec(&f->out, SCHED_D_ABORT, 2), 1);
	assert_int_equal(sched_item_find(f->c, 2, "app")->state,
	    SCHED_I_CANCELLED);
	/* A late success after the cancel is the truth: recorded. */
	ok(f, 2, "app");
	assert_int_equal(sched_item_find(f->c, 2, "app")->state,
	    SCHED_I_SUCCEEDED);
	assert_int_equal(sched_campaign_action(f->c, SCHED_A_CANCEL,
	    f->fc.now, &f->out, &cause), -1);
	free(cause);
}

static void
test_membership(void **state)
{
	struct fx		*f = *state;
	struct sched_node	 late;
	size_t			 i;

	f->nn = 4;
	mk(f, "{\"stages\":[{\"name\":\"one\",\"count\":2,\"soak\":60},"
	    "{\"name\":\"two\",\"rest\":true}]}");
	tick(f);
	assert_int_equal(count_dec(&f->out, SCHED_D_OFFER, 0), 2);
	/* A node appears in stage one: it joins the current stage. */
	mknode(&late, 50, "s1", "lan0", "app", "0.9");
	assert_int_equal(sched_node_seen(f->c, &late, f->fc.now), 1);
	assert_int_equal(sched_member_get(f->c, 50)->stage, 1 - 1);
	tick(f);
	assert_int_equal(offered(f, 50), 1);
	/* Not a target, or up to date: not added. */
	mknode(&late, 51, "other", "lan0", "app", "0.9");
	late.ncomp = 1;
	strcpy(late.hw, "s1");
	strcpy(late.comp[0].version, "2.0");
	assert_int_equal(sched_node_seen(f->c, &late, f->fc.now), 0);
	assert_null(sched_member_get(f->c, 51));
	for (i = 1; i <= 4; i++)
		ok(f, i, "app");
	ok(f, 50, "app");
	tick(f);
	f->fc.now += 60;
	tick(f);
	tick(f);
	assert_int_equal(f->c->state, SCHED_C_DONE);
	/*
	 * A node appearing after the end does not reopen it (issue 7: a
	 * finished campaign never comes back); its members' facts are
	 * still kept.
	 */
	mknode(&late, 52, "s1", "lan0", "app", "1.0");
	assert_int_equal(sched_node_seen(f->c, &late, f->fc.now), 0);
	assert_int_equal(f->c->state, SCHED_C_DONE);
	assert_null(sched_member_get(f->c, 52));
	tick(f);
	assert_int_equal(f->out.n, 0);
	mknode(&late, 1, "s1", "lan0", "app", "2.1");
	assert_int_equal(sched_node_seen(f->c, &late, f->fc.now), 0);
	assert_string_equal(sched_member_get(f->c, 1)->node.comp[0].version,
	    "2.1");
	assert_int_equal(f->c->state, SCHED_C_DONE);
}

static sqlite3 *
opendb(const char *path)
{
	sqlite3		*db;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	return (db);
}

static void
count_cb(void *arg, const char *id)
{
	(*(int *)arg)++;
	assert_string_equal(id, "7");
}

static void
test_persistence(void **state)
{
	struct fx		*f = *state;
	struct sched_campaign	*c2;
	struct sched_db		*sd;
	sqlite3			*db;
	char			 dir[] = "/tmp/test_sched_XXXXXX", path[64];
	char			*cause = NULL, *a, *b;
	json_t			*ja, *jb;
	size_t			 i;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/db", dir);
	db = opendb(path);
	/* The daemon's transaction stays open; we only use savepoints. */
	assert_int_equal(sqlite3_exec(db, "BEGIN", NULL, NULL, NULL), 0);
	assert_non_null(sd = sched_db_open(db, &cause));
	f->n[4].parent = 1;
	f->n[0].role = SCHED_ROLE_COORDINATOR;
	addtag(&f->n[2], "north");
	mk(f, "{\"stages\":[{\"name\":\"canary\",\"nodes\":[1],\"soak\":60},"
	    "{\"name\":\"b\",\"count\":3}]}");
	tick(f);
	assert_int_equal(offered(f, 1), 1);
	assert_int_equal(sched_db_save(sd, f->c, &cause), 0);
	ok(f, 1, "app");
	tick(f);				/* soaking */
	assert_int_equal(sched_db_save(sd, f->c, &cause), 0);
	f->fc.now += 60;
	tick(f);				/* stage b offered */
	assert_int_equal(count_dec(&f->out, SCHED_D_OFFER, 0), 3);
	sched_item_result(f->c, 2, "app", UP_R_CONN_LOST, 10, f->fc.now);
	assert_int_equal(sched_db_save(sd, f->c, &cause), 0);
	assert_int_equal(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), 0);
	/* "kill -9": drop everything in memory, reopen the database. */
	sched_db_free(sd);
	sqlite3_close(db);
	db = opendb(path);
	assert_non_null(sd = sched_db_open(db, &cause));
	c2 = sched_db_load(sd, "7", &cause);
	if (c2 == NULL)
		fprintf(stderr, "%s\n", cause);
	assert_non_null(c2);
	/* Same state, same report. */
	ja = sched_report_json(f->c);
	jb = sched_report_json(c2);
	json_object_del(ja, "next_wake");
	json_object_del(jb, "next_wake");
	a = json_dumps(ja, JSON_SORT_KEYS);
	b = json_dumps(jb, JSON_SORT_KEYS);
	assert_string_equal(a, b);
	free(a), free(b);
	json_decref(ja), json_decref(jb);
	assert_int_equal(c2->nedges, f->c->nedges);
	assert_true(c2->nedges > 0);		/* coordinator rule rebuilt */
	assert_int_equal(c2->stage, 1);
	assert_int_equal(c2->npkgs, 4);
	assert_memory_equal(&c2->pkgs[1], &f->c->pkgs[1], sizeof(c2->pkgs[1]));
	assert_int_equal(sched_member_get(c2, 3)->node.ntags, 1);
	/* Resumed: nothing offered twice, node 1 (confirmed) never again,
	 * the retry waits for its time. */
	sched_campaign_free(f->c);
	f->c = c2;
	tick(f);
	assert_int_equal(count_dec(&f->out, SCHED_D_OFFER, 0), 0);
	f->fc.now += 60;
	tick(f);
	assert_int_equal(count_dec(&f->out, SCHED_D_OFFER, 0), 1);
	assert_int_equal(offered(f, 2), 1);
	assert_int_equal(sched_db_save(sd, f->c, &cause), 0);
	/* The active list, then delete. */
	{
		int	 n = 0;

		assert_int_equal(sched_db_foreach_active(sd, count_cb, &n), 0);
		assert_int_equal(n, 1);
	}
	assert_int_equal(sched_db_delete(sd, "7", &cause), 0);
	assert_null(sched_db_load(sd, "7", &cause));
	assert_string_equal(cause, "campaign '7': unknown");
	free(cause);
	/* A second open runs no migration twice. */
	sched_db_free(sd);
	assert_non_null(sd = sched_db_open(db, &cause));
	sched_db_free(sd);
	sqlite3_close(db);
	snprintf(path, sizeof(path), "%s/db", dir);
	unlink(path);
	for (i = 0; i < 2; i++) {
		snprintf(path, sizeof(path), "%s/db%s", dir, i ? "-wal" :
		    "-journal");
		unlink(path);
	}
	rmdir(dir);
}

static void
test_reports(void **state)
{
	struct fx	*f = *state;
	json_t		*j, *st, *it;
	char		*csv;
	struct sched_db	*sd;
	sqlite3		*db;
	int		 n = 0;

	f->nn = 2;
	mk(f, "{\"retry\":{\"count\":0}}");
	tick(f);
	f->fc.now += 5;
	ok(f, 1, "app");
	sched_item_result(f->c, 2, "app", UP_R_ROLLED_BACK, 7, f->fc.now);
	tick(f);
	j = sched_report_json(f->c);
	assert_string_equal(json_string_value(json_object_get(j, "state")),
	    "done");
	st = json_array_get(json_object_get(j, "stages"), 0);
	assert_int_equal(json_integer_value(json_object_get(st, "nodes")), 2);
	assert_int_equal(json_integer_value(json_object_get(st,
	    "succeeded")), 1);
	assert_int_equal(json_integer_value(json_object_get(st, "failed")), 1);
	assert_int_equal(json_integer_value(json_object_get(st,
	    "success_rate")), 50);
	it = json_array_get(json_object_get(j, "items"), 1);
	assert_string_equal(json_string_value(json_object_get(it, "node")),
	    "0x0000000000000002");
	assert_string_equal(json_string_value(json_object_get(it, "path")),
	    "full");
	assert_string_equal(json_string_value(json_object_get(it,
	    "result_str")), "rolled_back");
	assert_int_equal(json_integer_value(json_object_get(it,
	    "duration_ms")), 5000);
	assert_int_equal(json_integer_value(json_object_get(it,
	    "bytes_sent")), 7);
	json_decref(j);
	csv = sched_report_csv(f->c);
	assert_non_null(csv);
	assert_non_null(strstr(csv, "campaign,deployment,node,component,from,"
	    "to,path,packages,stage,state,result,result_str,reason,bytes,"
	    "bytes_sent,retries,duration_ms,started,finished\r\n"));
	assert_non_null(strstr(csv, "7,d1,0x0000000000000002,app,0.9,2.0,"
	    "full,app-2,all,failed,11,rolled_back,rolled_back,1000,7,0,5000,"
	    "2026-11-23T02:00:00Z,2026-11-23T02:00:05Z\r\n"));
	free(csv);
	/* Event records. */
	j = sched_event_json(f->c, &f->out.d[f->out.n - 1]);
	assert_string_equal(json_string_value(json_object_get(j, "event")),
	    "done");
	json_decref(j);
	/* foreach_active sees running campaigns only. */
	assert_int_equal(sqlite3_open(":memory:", &db), SQLITE_OK);
	sd = sched_db_open(db, NULL);
	assert_int_equal(sched_db_save(sd, f->c, NULL), 0);
	assert_int_equal(sched_db_foreach_active(sd, count_cb, &n), 0);
	assert_int_equal(n, 0);
	mk(f, "{}");
	assert_int_equal(sched_db_save(sd, f->c, NULL), 0);
	assert_int_equal(sched_db_foreach_active(sd, count_cb, &n), 0);
	assert_int_equal(n, 1);
	sched_db_free(sd);
	sqlite3_close(db);
}

/*
 * Issue 7: a delta that fails on the node is not retried as such: the
 * item falls back to the full image at once and says why; a failure
 * that is not about the delta, or without a full image, is not.
 */
static void
test_delta_fallback(void **state)
{
	struct fx		*f = *state;
	struct sched_item	*it;
	json_t			*j;

	f->nn = 2;
	strcpy(f->n[0].comp[0].version, "1.5");
	strcpy(f->n[1].comp[0].version, "1.5");
	mk(f, "{\"retry\":{\"count\":0}}");
	tick(f);
	assert_string_equal(f->out.d[f->out.n - 1].pkg, "d-15-20");
	sched_item_result(f->c, 1, "app", UP_R_INTEGRITY, 0, f->fc.now);
	it = sched_item_find(f->c, 1, "app");
	assert_int_equal(it->state, SCHED_I_PENDING);
	assert_string_equal(it->reason, "delta d-15-20 failed on the node "
	    "(integrity): falls back to the full image app-2");
	assert_string_equal(it->steps[0], "app-2");
	assert_int_equal(it->nsteps, 1);
	assert_int_equal(it->bytes, 1000);
	/* Offered again at the next tick, although retries are 0. */
	tick(f);
	assert_int_equal(offered(f, 1), 1);
	assert_string_equal(f->out.d[f->out.n - 1].pkg, "app-2");
	ok(f, 1, "app");
	assert_int_equal(it->state, SCHED_I_SUCCEEDED);
	assert_string_equal(it->reason, "full image, after the delta failed");
	j = sched_item_json(f->c, 0);
	assert_string_equal(json_string_value(json_object_get(j, "path")),
	    "full");
	json_decref(j);
	/* A full image that fails is not a delta failure. */
	sched_item_result(f->c, 2, "app", UP_R_CONN_LOST, 0, f->fc.now);
	it = sched_item_find(f->c, 2, "app");
	assert_int_equal(it->state, SCHED_I_FAILED);
	assert_int_equal(it->fell_back, 0);

	/* No full image of the target: the delta failure is final. */
	f->pk[0].version[0] = '9';
	mk(f, "{\"retry\":{\"count\":0}}");
	tick(f);
	sched_item_result(f->c, 1, "app", UP_R_BASE_MISMATCH, 0, f->fc.now);
	assert_int_equal(sched_item_find(f->c, 1, "app")->state,
	    SCHED_I_FAILED);
}

/*
 * Issue 7: busy (result 19) is a transient decline, retried with its
 * own reason; an empty plan waits for targets instead of finishing;
 * the implicit stage of a policy without stages has no thresholds, so
 * a failed node ends the campaign without the "0 % < 0 %" halt; a done
 * campaign shows no next_wake.
 */
static void
test_busy_empty_defaults(void **state)
{
	struct fx		*f = *state;
	struct sched_item	*it;
	struct sched_node	 late;
	json_t			*j;

	f->nn = 1;
	mk(f, "{\"retry\":{\"count\":1,\"interval\":\"10s\"}}");
	tick(f);
	sched_item_result(f->c, 1, "app", UP_R_BUSY, 0, f->fc.now);
	it = sched_item_find(f->c, 1, "app");
	assert_int_equal(it->state, SCHED_I_RETRY);
	assert_string_equal(it->reason, "busy");
	f->fc.now += 10;
	tick(f);
	assert_int_equal(offered(f, 1), 1);
	sched_item_result(f->c, 1, "app", UP_R_ROLLED_BACK, 0, f->fc.now);
	tick(f);
	assert_int_equal(f->c->state, SCHED_C_DONE);
	assert_string_equal(f->c->reason, "0 of 1 items succeeded");
	assert_int_equal(f->c->srt[0].state, SCHED_S_PASSED);
	assert_false(has_event(&f->out, SCHED_EV_HALTED));
	j = sched_report_json(f->c);
	assert_true(json_is_null(json_object_get(j, "next_wake")));
	json_decref(j);

	/* Nobody needs it yet: running, waiting for targets. */
	strcpy(f->n[0].comp[0].version, "2.0");
	mk(f, "{}");
	assert_int_equal(f->c->nitems, 0);
	tick(f);
	tick(f);
	assert_int_equal(f->c->state, SCHED_C_RUNNING);
	assert_string_equal(f->c->reason, "waits for targets: no node needs "
	    "this deployment yet");
	mknode(&late, 40, "s1", "lan0", "app", "1.0");
	assert_int_equal(sched_node_seen(f->c, &late, f->fc.now), 1);
	tick(f);
	assert_int_equal(offered(f, 40), 1);
	assert_string_equal(f->c->reason, "");
	ok(f, 40, "app");
	tick(f);
	assert_int_equal(f->c->state, SCHED_C_DONE);
}

/*
 * Issue 7: what goes upstream.  A final state is reported once, as
 * final; a lost connection is provisional, so the node's late truth may
 * follow it; nothing follows a final record.  Skipped items (the bridge
 * did not offer) are final records too.  duration_ms has milliseconds.
 */
static void
test_report_once(void **state)
{
	struct fx		*f = *state;
	struct sched_item	*a, *b, *c3;
	json_t			*j;

	f->nn = 3;
	mk(f, "{\"retry\":{\"count\":0}}");
	tick(f);
	a = sched_item_find(f->c, 1, "app");
	b = sched_item_find(f->c, 2, "app");
	c3 = sched_item_find(f->c, 3, "app");
	assert_int_equal(due(f, &f->c->items[0]), SCHED_REP_NONE);
	/* Node 1: lost; provisional, then the truth. */
	sched_item_result(f->c, 1, "app", UP_R_CONN_LOST, 0, f->fc.now);
	assert_int_equal(a->state, SCHED_I_FAILED);
	assert_false(sched_item_final_record(a));
	assert_int_equal(due(f, a),
	    SCHED_REP_PROVISIONAL);
	sched_item_reported(f->c, a - f->c->items, SCHED_REP_PROVISIONAL);
	assert_int_equal(due(f, a),
	    SCHED_REP_NONE);
	sched_item_attempt(f->c, 1, "app", 1000, 1250);
	sched_item_attempt(f->c, 1, "app", 4000, 4321);
	ok(f, 1, "app");
	assert_int_equal(a->state, SCHED_I_SUCCEEDED);
	assert_true(sched_item_final_record(a));
	assert_int_equal(due(f, a),
	    SCHED_REP_FINAL);
	sched_item_reported(f->c, a - f->c->items, SCHED_REP_FINAL);
	j = sched_item_json(f->c, a - f->c->items);
	assert_int_equal(json_integer_value(json_object_get(j,
	    "duration_ms")), 3321);
	assert_true(json_is_true(json_object_get(j, "final")));
	json_decref(j);
	/* Node 2: the node's own failure is final; nothing after it. */
	sched_item_result(f->c, 2, "app", UP_R_ROLLED_BACK, 0, f->fc.now);
	assert_int_equal(due(f, b),
	    SCHED_REP_FINAL);
	sched_item_reported(f->c, b - f->c->items, SCHED_REP_FINAL);
	sched_item_result(f->c, 2, "app", UP_R_SUCCESS, 0, f->fc.now);
	assert_int_equal(due(f, b),
	    SCHED_REP_NONE);
	/* Node 3: not offered after all. */
	assert_int_equal(sched_item_skip(f->c, 3, "app", UP_R_INITIAL,
	    f->fc.now, "node runs app 3.0, newer than 2.0"), 0);
	assert_int_equal(c3->state, SCHED_I_SKIPPED);
	assert_string_equal(c3->reason, "node runs app 3.0, newer than 2.0");
	assert_int_equal(due(f, c3),
	    SCHED_REP_FINAL);
	assert_int_equal(sched_item_skip(f->c, 3, "app", UP_R_INITIAL,
	    f->fc.now, "again"), -1);
}

/* Cancelled or expired while activating: the node may still switch. */
static void
test_provisional_cancel(void **state)
{
	struct fx	*f = *state;
	char		*cause = NULL;

	f->nn = 2;
	mk(f, "{}");
	tick(f);
	assert_int_equal(sched_item_verified(f->c, 1, "app", f->fc.now), 0);
	assert_int_equal(sched_item_find(f->c, 1, "app")->state,
	    SCHED_I_ACTIVATING);
	sched_out_reset(&f->out);
	assert_int_equal(sched_campaign_action(f->c, SCHED_A_FORCE_CANCEL,
	    f->fc.now, &f->out, &cause), 0);
	assert_true(sched_item_find(f->c, 1, "app")->provisional);
	assert_false(sched_item_find(f->c, 2, "app")->provisional);
	/*
	 * The campaign is cancelled: it can no longer change either item,
	 * so both records are final now (issue 7); the node's later word
	 * is a late result, not a second final record.
	 */
	assert_int_equal(due(f, sched_item_find(f->c, 1, "app")),
	    SCHED_REP_FINAL);
	assert_int_equal(due(f, sched_item_find(f->c, 2, "app")),
	    SCHED_REP_FINAL);
	sched_item_reported(f->c, 0, SCHED_REP_FINAL);
	ok(f, 1, "app");
	assert_int_equal(sched_item_find(f->c, 1, "app")->state,
	    SCHED_I_SUCCEEDED);
	assert_int_equal(due(f, sched_item_find(f->c, 1, "app")),
	    SCHED_REP_NONE);
}

/*
 * Issue 7: a node written off for good still gets its final record,
 * once: final_after_s after the write-off while the campaign runs (the
 * tick wakes for it), at once when the campaign is done.
 */
static void
test_final_after(void **state)
{
	struct fx		*f = *state;
	struct sched_item	*a, *b;

	f->nn = 3;
	mk(f, "{\"retry\":{\"count\":0}}");
	f->c->final_after_s = 600;
	tick(f);
	a = sched_item_find(f->c, 1, "app");
	b = sched_item_find(f->c, 2, "app");
	sched_item_result(f->c, 1, "app", UP_R_CONN_LOST, 0, f->fc.now);
	assert_int_equal(due(f, a), SCHED_REP_PROVISIONAL);
	sched_item_reported(f->c, (size_t)(a - f->c->items),
	    SCHED_REP_PROVISIONAL);
	assert_int_equal(due(f, a), SCHED_REP_NONE);
	tick(f);
	assert_true(f->c->next_wake <= a->finished + 600);
	f->fc.now += 599;
	assert_int_equal(due(f, a), SCHED_REP_NONE);
	f->fc.now += 1;
	assert_int_equal(due(f, a), SCHED_REP_FINAL);
	assert_true(sched_item_final_record(a) == false);
	sched_item_reported(f->c, (size_t)(a - f->c->items),
	    SCHED_REP_FINAL);
	assert_true(sched_item_final_record(a));
	assert_int_equal(due(f, a), SCHED_REP_NONE);
	/* The node's truth after that: kept, never due again. */
	ok(f, 1, "app");
	assert_int_equal(a->state, SCHED_I_SUCCEEDED);
	assert_int_equal(due(f, a), SCHED_REP_NONE);

	/* Node 2 lost too, then node 3 ends the campaign: final at once. */
	sched_item_result(f->c, 2, "app", UP_R_CONN_LOST, 0, f->fc.now);
	sched_item_reported(f->c, (size_t)(b - f->c->items),
	    SCHED_REP_PROVISIONAL);
	assert_int_equal(due(f, b), SCHED_REP_NONE);
	ok(f, 3, "app");
	tick(f);
	assert_int_equal(f->c->state, SCHED_C_DONE);
	assert_int_equal(due(f, b), SCHED_REP_FINAL);
}

/*
 * A plain cancel lets an activating node finish; if it never reports,
 * the watchdog ends its item (ticks still run for such a campaign), and
 * the record is final: the campaign is over.
 */
static void
test_cancel_activating_watchdog(void **state)
{
	struct fx		*f = *state;
	struct sched_item	*a;
	char			*cause = NULL;

	f->nn = 2;
	mk(f, "{\"node_timeout\":\"10m\"}");
	tick(f);
	assert_int_equal(sched_item_verified(f->c, 1, "app", f->fc.now), 0);
	a = sched_item_find(f->c, 1, "app");
	assert_int_equal(a->state, SCHED_I_ACTIVATING);
	sched_out_reset(&f->out);
	assert_int_equal(sched_campaign_action(f->c, SCHED_A_CANCEL,
	    f->fc.now, &f->out, &cause), 0);
	assert_int_equal(a->state, SCHED_I_ACTIVATING);
	assert_true(sched_campaign_live(f->c));
	f->fc.now += 601;
	tick(f);
	assert_int_equal(a->state, SCHED_I_CANCELLED);
	assert_int_equal(a->result, UP_R_CONN_LOST);
	assert_int_equal(due(f, a), SCHED_REP_FINAL);
	assert_false(sched_campaign_live(f->c));
}

#define T(fn)	cmocka_unit_test_setup_teardown(fn, setup, teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_stage_advance),
		T(test_stage_halt),
		T(test_window_holds),
		T(test_gates),
		T(test_retry_backoff_watchdog),
		T(test_deadline),
		T(test_partial_failure),
		T(test_atomic_and_modes),
		T(test_chain_steps),
		T(test_actions),
		T(test_membership),
		T(test_persistence),
		T(test_reports),
		T(test_delta_fallback),
		T(test_busy_empty_defaults),
		T(test_report_once),
		T(test_provisional_cancel),
		T(test_final_after),
		T(test_cancel_activating_watchdog),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
