/*
 * test_bridge_fanout.c: the fan-out engine end to end over tp_mem, with
 * simulated nodes running the real node engine (up_node_*), a real
 * SQLite database and a real cache in a temp dir, and no uplink (results
 * go to a report hook and SQLite).
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

#include "fanout_internal.h"
#include "sim_node.h"
#include "tp_mem.h"

#define FX_MAX_NODES	8
#define FX_MAX_REPORTS	64

struct fx {
	char			 dir[64];
	struct event_base	*base;
	struct event		*beat;
	sqlite3			*db;
	struct cache		*cache;
	struct registry		*reg;
	struct fanout		*f;
	struct ub_config	 conf;
	struct tp_mem_params	 params;
	struct tp_mem_medium	*m;
	struct sim_node		*nodes[FX_MAX_NODES];
	int			 nnodes;

	uint8_t			*pkg;
	size_t			 pkg_len;
	struct cache_pkg	 cp;
	struct uplink_deployment dep;
	struct uplink_manifest	 mf;

	int			 nreports;
	char			*reports[FX_MAX_REPORTS];
};

/* The test's fixture, freed by the teardown if an assertion failed. */
static struct fx *cur_fx;

static uint64_t
now_ms(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
}

static void
fx_report(void *arg, const char *line)
{
	struct fx	*fx = arg;

	if (fx->nreports < FX_MAX_REPORTS)
		fx->reports[fx->nreports++] = strdup(line);
}

static void
fx_beat(int fd, short ev, void *arg)
{
}

/* Runs the loop until pred() or timeout; returns pred(). */
static bool
fx_run(struct fx *fx, bool (*pred)(struct fx *), unsigned int timeout_ms)
{
	uint64_t	 end = now_ms() + timeout_ms;

	while (!pred(fx)) {
		if (now_ms() > end)
			return (false);
		event_base_loop(fx->base, EVLOOP_ONCE);
	}
	return (true);
}

static bool
fx_never(struct fx *fx)
{
	return (false);
}

static void
fx_sleep(struct fx *fx, unsigned int ms)
{
	fx_run(fx, fx_never, ms);
}

static void
fx_conf(struct fx *fx, const struct tp_ops *ops)
{
	struct ub_config	*c = &fx->conf;

	memset(c, 0, sizeof(*c));
	c->gateway_id = "gw-test-01";
	c->block_size = 1024;
	c->rate_pct = 100;
	c->offer_window_ms = 60;
	c->offer_repeats = 3;
	c->status_window_ms = 40;
	c->max_rounds = 5;
	c->activate_delay_ms = 10;
	c->result_timeout_s = 3;
	c->discover_interval_s = 0;
	c->session_deadline_s = 600;
	c->ntransports = 1;
	c->transports[0].name = "mem0";
	c->transports[0].type = (char *)ops->name;
	c->transports[0].ops = ops;
	c->transports[0].conf.name = "mem0";
	c->transports[0].conf.options = ops->options;
}

static void
fx_default_params(struct tp_mem_params *p)
{
	memset(p, 0, sizeof(*p));
	p->caps.mtu = UP_FRAME_MAX;
	p->caps.flags = TP_CAP_BROADCAST | TP_CAP_UNICAST;
	p->caps.bitrate_bps = 50000000;
	p->caps.frame_overhead = 42;
	p->caps.tx_queue = 64;
}

static void
fx_put_blob(struct fx *fx, size_t len, uint32_t seed)
{
	struct cache_writer	*w;
	char			*cause = NULL;
	size_t			 i;

	fx->pkg_len = len;
	fx->pkg = malloc(len);
	srandom(seed);
	for (i = 0; i < len; i++)
		fx->pkg[i] = (uint8_t)random();
	memset(&fx->cp, 0, sizeof(fx->cp));
	strcpy(fx->cp.id, "app-1.1.0");
	strcpy(fx->cp.component, "app");
	strcpy(fx->cp.version, "1.1.0");
	fx->cp.kind = UP_KIND_FULL;
	fx->cp.size = len;
	fx->cp.image_size = len;
	cache_sha256(fx->pkg, len, fx->cp.sha256);
	memcpy(fx->cp.image_sha256, fx->cp.sha256, 32);
	strcpy(fx->cp.url, "app-1.1.0.bin");
	fx->cp.manifest_serial = 1;

	w = cache_writer_open(fx->cache, fx->cp.sha256, len, &cause);
	assert_non_null(w);
	assert_int_equal(cache_writer_write(w, fx->pkg, len, &cause), 0);
	assert_int_equal(cache_writer_finish(w, &cause), 0);

	memset(&fx->dep, 0, sizeof(fx->dep));
	strcpy(fx->dep.id, "dep-1");
	fx->dep.npkgs = 1;
	strcpy(fx->dep.pkgs[0], "app-1.1.0");
	fx->dep.policy_json = "{}";
	memset(&fx->mf, 0, sizeof(fx->mf));
	fx->mf.serial = 1;
	fx->mf.npkgs = 1;
	fx->mf.pkgs = &fx->cp;
	fx->mf.ndeps = 1;
	fx->mf.deps = &fx->dep;
}

static void
fx_engine(struct fx *fx)
{
	char	*cause = NULL;

	fx->f = fanout_new(fx->base, &fx->conf, fx->db, fx->cache, fx->reg,
	    &cause);
	if (fx->f == NULL)
		fail_msg("fanout_new: %s", cause);
	fanout__set_report_hook(fx->f, fx_report, fx);
	if (fanout_open_transports(fx->f, &cause) != 0)
		fail_msg("fanout_open_transports: %s", cause);
}

/* Temp dir, db, cache, registry, medium and engine; no nodes yet. */
static struct fx *
fx_new(const struct tp_ops *ops, const struct tp_mem_params *p,
    size_t pkg_len)
{
	struct fx		*fx;
	struct event_config	*cfg;
	struct timeval		 tv = { 0, 10000 };
	char			 path[128], *cause = NULL;

	fx = calloc(1, sizeof(*fx));
	strcpy(fx->dir, "/tmp/ub-fanout-XXXXXX");
	assert_non_null(mkdtemp(fx->dir));
	/* As upbridged should: libevent's default clock has 4 ms steps. */
	cfg = event_config_new();
	if (getenv("UB_TEST_COARSE") == NULL)
		event_config_set_flag(cfg, EVENT_BASE_FLAG_PRECISE_TIMER);
	fx->base = event_base_new_with_config(cfg);
	event_config_free(cfg);
	fx->beat = event_new(fx->base, -1, EV_PERSIST, fx_beat, fx);
	event_add(fx->beat, &tv);
	snprintf(path, sizeof(path), "%s/state.db", fx->dir);
	if ((fx->db = db_open(path, 1, &cause)) == NULL)
		fail_msg("db_open: %s", cause);
	snprintf(path, sizeof(path), "%s/cache", fx->dir);
	if ((fx->cache = cache_open(fx->db, path, 0, &cause)) == NULL)
		fail_msg("cache_open: %s", cause);
	if ((fx->reg = registry_open(fx->db, &cause)) == NULL)
		fail_msg("registry_open: %s", cause);
	fx_put_blob(fx, pkg_len, 7);
	if (p != NULL)
		fx->params = *p;
	else
		fx_default_params(&fx->params);
	fx->m = tp_mem_medium_new(fx->base, "mem0", &fx->params);
	fx_conf(fx, ops);
	cur_fx = fx;
	fx_engine(fx);
	return (fx);
}

static void
fx_free(struct fx *fx)
{
	char	 cmd[128];
	int	 i;

	cur_fx = NULL;
	fanout_free(fx->f);
	for (i = 0; i < fx->nnodes; i++)
		sim_node_free(fx->nodes[i]);
	tp_mem_medium_free(fx->m);
	registry_free(fx->reg);
	cache_free(fx->cache);
	db_close(fx->db);
	event_free(fx->beat);
	event_base_free(fx->base);
	for (i = 0; i < fx->nreports; i++)
		free(fx->reports[i]);
	free(fx->pkg);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fx->dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", fx->dir);
	free(fx);
}

static struct sim_node *
fx_node(struct fx *fx, uint64_t id, uint32_t slot, double loss)
{
	struct sim_node	*sn;

	sn = sim_node_new(fx->base, fx->m, (uint8_t)(fx->nnodes + 1), id,
	    "hw-a", "app", "1.0.0", slot, loss, 1000 + (uint32_t)id);
	fx->nodes[fx->nnodes++] = sn;
	return (sn);
}

static bool
fx_all_known(struct fx *fx)
{
	return (registry_count(fx->reg) == (size_t)fx->nnodes);
}

static int
fx_nstate(struct fx *fx, uint8_t state)
{
	int	 i, n = 0;

	for (i = 0; i < fx->nnodes; i++)
		if (sim_node_state(fx->nodes[i], NULL, NULL) == state)
			n++;
	return (n);
}

/* The campaign's state, or "" if none. */
static const char *
fx_cstate(struct fx *fx, char *buf, size_t len)
{
	json_t	*a, *c;

	buf[0] = '\0';
	a = fanout_campaigns_json(fx->f);
	if ((c = json_array_get(a, 0)) != NULL)
		snprintf(buf, len, "%s", json_string_value(
		    json_object_get(c, "state")));
	json_decref(a);
	return (buf);
}

static bool
fx_done(struct fx *fx)
{
	char	 buf[32];

	return (strcmp(fx_cstate(fx, buf, sizeof(buf)), "done") == 0);
}

static bool
fx_all_acked(struct fx *fx)
{
	int	 i;

	for (i = 0; i < fx->nnodes; i++)
		if (fx->nodes[i]->n.unacked || fx->nodes[i]->rebooting)
			return (false);
	return (fx_done(fx));
}

static void
fx_start(struct fx *fx)
{
	assert_true(fx_run(fx, fx_all_known, 2000));
	fanout_manifest(fx->f, &fx->mf);
	/* No uplink: the package is in the cache already. */
	fanout_package_ready(fx->f, fx->cp.sha256);
}

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

static bool
fx_queue_full(struct fx *fx)
{
	return (tp_mem_queued(fx->m) == 4 &&
	    tp_mem_counts(fx->m)->eagain > 0);
}

/* TP_EAGAIN stops the engine; writable() resumes it; nothing is lost. */
static void
test_eagain_writable(void **state)
{
	struct fx		*fx;
	struct tp_mem_params	 p;
	struct fo_tp		*t;
	uint64_t		 frames;

	fx_default_params(&p);
	p.caps.tx_queue = 4;
	fx = fx_new(&tp_mem_ops, &p, 40 * 1024);
	fx_node(fx, 0x601, 128 * 1024, 0);
	fx_node(fx, 0x602, 128 * 1024, 0);
	assert_true(fx_run(fx, fx_all_known, 2000));
	tp_mem_hold(fx->m, true);
	fanout_manifest(fx->f, &fx->mf);
	fanout_package_ready(fx->f, fx->cp.sha256);
	assert_true(fx_run(fx, fx_queue_full, 5000));
	t = fanout__tp(fx->f, "mem0");
	assert_true(t->pacer.blocked);
	frames = tp_mem_counts(fx->m)->frames;
	fx_sleep(fx, 100);
	/* Blocked: no send was even tried again without writable(). */
	assert_int_equal(tp_mem_counts(fx->m)->frames, frames);
	assert_int_equal(tp_mem_counts(fx->m)->eagain, 1);

	tp_mem_hold(fx->m, false);
	assert_true(fx_run(fx, fx_all_acked, 20000));
	assert_int_equal(fx_nstate(fx, UP_NS_UPDATED), 2);
	assert_true(tp_mem_counts(fx->m)->eagain >= 1);
	assert_true(t->pacer.eagain >= 1);
	fx_free(fx);
}

/* With tx_done, at most tx_queue frames are outstanding. */
static void
test_tx_done_queue(void **state)
{
	struct fx		*fx;
	struct tp_mem_params	 p;

	fx_default_params(&p);
	p.caps.tx_queue = 3;
	p.tx_done = true;
	fx = fx_new(&tp_mem_ops, &p, 40 * 1024);
	fx_node(fx, 0x701, 128 * 1024, 0);
	fx_start(fx);
	assert_true(fx_run(fx, fx_all_acked, 20000));
	assert_true(tp_mem_counts(fx->m)->max_outstanding <= 3);
	assert_int_equal(tp_mem_counts(fx->m)->eagain, 0);
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
 * Real time: DATA leaves at the paced rate (bitrate * rate_pct, frame
 * overhead counted) within 2 %, driven by timers, not a busy loop.
 */
static void
test_engine_rate(void **state)
{
	struct fx		*fx;
	struct tp_mem_params	 p;
	struct tp_mem_counts	*c;
	double			 dt, bits, rate, cpu0, cpu, wall0, wall;

	fx_default_params(&p);
	p.caps.bitrate_bps = 4000000;
	fx = fx_new(&tp_mem_ops, &p, 400 * 1024);
	fx->conf.rate_pct = 50;		/* 2 Mbit/s */
	fanout_reconfig(fx->f, &fx->conf);
	fx_node(fx, 0x801, 512 * 1024, 0);
	cpu0 = cpu_seconds();
	wall0 = (double)now_ms() / 1000;
	fx_start(fx);
	assert_true(fx_run(fx, fx_all_acked, 20000));
	cpu = cpu_seconds() - cpu0;
	wall = (double)now_ms() / 1000 - wall0;

	c = tp_mem_counts(fx->m);
	dt = (double)(c->last_data_us - c->first_data_us) / 1e6;
	/* n frames span n - 1 intervals. */
	bits = (double)(c->data_bytes + 42 * c->by_type[UP_T_DATA]) * 8 *
	    (double)(c->by_type[UP_T_DATA] - 1) /
	    (double)c->by_type[UP_T_DATA];
	rate = bits / dt;
	print_message("rate %.0f bit/s over %.3f s, cpu %.3f s of %.3f s\n",
	    rate, dt, cpu, wall);
	assert_true(dt > 1.0);
	assert_true(rate > 2000000 * 0.98 && rate < 2000000 * 1.02);
	assert_true(cpu < wall * 0.5);
	fx_free(fx);
}

static bool
fx_some_data(struct fx *fx)
{
	return (tp_mem_counts(fx->m)->by_type[UP_T_DATA] >= 20);
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
	fx_sleep(fx, 300);
	assert_true(c->by_type[UP_T_DATA] > data);

	assert_int_equal(fanout_campaign_cancel(fx->f, id, &cause), 0);
	assert_string_equal(fx_cstate(fx, buf, sizeof(buf)), "cancelled");
	fx_sleep(fx, 200);
	assert_true(c->by_type[UP_T_ABORT] >= 1);
	assert_int_equal(fx_nstate(fx, UP_NS_IDLE), 2);
	assert_int_equal(fx->nreports, 2);
	assert_int_equal(fx_reports_matching(fx, "\"state\":\"cancelled\""),
	    2);
	assert_int_equal(fanout_campaign_resume(fx->f, id, &cause), -1);
	free(cause);
	fx_free(fx);
}

/* Garbage is counted and ignored; nothing changes. */
static void
test_bad_frames(void **state)
{
	struct fx		*fx;
	struct fo_tp		*t;
	struct sim_node		*sn;
	json_t			*cj;
	uint8_t			 junk[64];
	size_t			 n;

	fx = fx_new(&tp_mem_ops, NULL, 8 * 1024);
	sn = fx_node(fx, 0xa01, 64 * 1024, 0);
	assert_true(fx_run(fx, fx_all_known, 2000));
	memset(junk, 0xa5, sizeof(junk));
	tp_mem_node_send(sn->mn, junk, sizeof(junk));
	/* A valid-looking header with a broken CRC. */
	junk[0] = UP_PROTO_VERSION;
	junk[1] = UP_T_ANNOUNCE;
	tp_mem_node_send(sn->mn, junk, 20);
	fx_sleep(fx, 50);
	t = fanout__tp(fx->f, "mem0");
	assert_int_equal(t->rx_bad, 2);
	assert_int_equal(registry_count(fx->reg), 1);
	cj = fanout_campaigns_json(fx->f);
	n = json_array_size(cj);
	json_decref(cj);
	assert_int_equal(n, 0);
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
 * A duty-cycled link with the plugin's own airtime model (LoRa-like):
 * 10 % over a 200 ms window, 2 ms per frame.  Airtime on the "air" never
 * exceeds 10 % of the elapsed time plus the one full bucket.
 */
static void
test_duty_cycle_engine(void **state)
{
	struct fx		*fx;
	struct tp_mem_params	 p;
	struct tp_mem_counts	*c;
	uint64_t		 air, span;

	fx_default_params(&p);
	p.caps.duty_cycle_ppm = 100000;
	p.caps.duty_window_ms = 200;
	p.airtime_us = 2000;
	fx = fx_new(&tp_mem_air_ops, &p, 40 * 1024);
	fx_node(fx, 0xe01, 128 * 1024, 0);
	fx_start(fx);
	assert_true(fx_run(fx, fx_all_acked, 20000));
	c = tp_mem_counts(fx->m);
	air = c->frames * 2000;
	span = c->last_us - c->first_us;
	print_message("duty: %" PRIu64 " frames, %" PRIu64 " us on air in %"
	    PRIu64 " us\n", c->frames, air, span);
	assert_true(c->frames > 40);
	assert_true(air <= span / 10 + 20000 + 2000);
	/* And the engine did not idle much beyond what the duty allows. */
	assert_true(span <= (air - 20000) * 10 * 13 / 10 + 500000);
	fx_free(fx);
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
		cmocka_unit_test_teardown(test_eagain_writable, teardown),
		cmocka_unit_test_teardown(test_tx_done_queue, teardown),
		cmocka_unit_test_teardown(test_engine_rate, teardown),
		cmocka_unit_test_teardown(test_pause_resume_cancel, teardown),
		cmocka_unit_test_teardown(test_bad_frames, teardown),
		cmocka_unit_test_teardown(test_non_member_aborted, teardown),
		cmocka_unit_test_teardown(test_views, teardown),
		cmocka_unit_test_teardown(test_late_joiners, teardown),
		cmocka_unit_test_teardown(test_duty_cycle_engine, teardown),
	};

	log_init(1, 0);
	log_setverbose(getenv("UB_TEST_VERBOSE") != NULL);
	up_log_set_hook(log_up_hook);
	return (cmocka_run_group_tests(tests, NULL, NULL));
}
