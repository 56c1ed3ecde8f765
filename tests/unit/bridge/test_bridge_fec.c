/*
 * test_bridge_fec.c: TS004 parity repair in the fan-out engine, end to
 * end over tp_mem with simulated nodes running the real node engine
 * (with an FEC workspace, or without one like an MCU-light node).  The
 * same loss pattern is repaired once by resending the union of the lost
 * blocks (fec = no) and once with parity (fec = yes): parity must need
 * far fewer repair frames, and nodes without FEC must still finish.
 * The fixture is test_bridge_fanout.c's.
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

#define FX_MAX_NODES	24
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
	strcpy(fx->dir, "/tmp/ub-fec-XXXXXX");
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
fx_acked_sampling(struct fx *fx)
{
	int	 i;

	for (i = 0; i < fx->nnodes; i++)
		if (fx->nodes[i]->n.fec_recovered > fx_recovered[i])
			fx_recovered[i] = fx->nodes[i]->n.fec_recovered;
	return (fx_all_acked(fx));
}

struct fx_result {
	uint32_t	 nblocks;
	uint64_t	 data;		/* DATA frames */
	uint64_t	 parity;	/* PARITY frames */
	uint64_t	 repair;	/* both, beyond the first pass */
	uint64_t	 recovered;	/* blocks the nodes decoded */
	uint64_t	 lost_any;
};

/*
 * n nodes at loss % each, the first n_fec of them with a workspace; one
 * campaign to the end.  proactive is the fec_proactive option.
 */
static void
fx_race(int fec, int n, int n_fec, double loss, const char *proactive,
    struct fx_result *r)
{
	struct fx		*fx;
	struct tp_mem_counts	*c;
	struct sim_node		*sn;
	int			 k;

	fx = fx_new(&tp_mem_ops, NULL, 600 * 1024 + 333);
	fx->conf.fec = fec;
	fx->conf.fec_k = 64;
	fx->conf.fec_proactive = (char *)proactive;
	fx->conf.max_rounds = 10;
	for (k = 0; k < n; k++) {
		sn = fx_node(fx, 0x100 + k, 1024 * 1024, loss);
		if (k < n_fec)
			up_node_set_fec_workspace(&sn->n, fx_ws[k],
			    sizeof(fx_ws[k]));
	}
	memset(fx_recovered, 0, sizeof(fx_recovered));
	fx_start(fx);
	assert_true(fx_run(fx, fx_acked_sampling, 40000));
	assert_int_equal(fx_nstate(fx, UP_NS_UPDATED), n);
	for (k = 0; k < n; k++)
		assert_string_equal(sim_node_version(fx->nodes[k], "app"),
		    "1.1.0");
	c = tp_mem_counts(fx->m);
	memset(r, 0, sizeof(*r));
	r->nblocks = up_nblocks((uint32_t)fx->pkg_len, fx->conf.block_size);
	r->data = c->by_type[UP_T_DATA];
	r->parity = c->by_type[UP_T_PARITY];
	r->repair = r->data + r->parity - r->nblocks;
	r->lost_any = c->data_lost_any;
	for (k = 0; k < n; k++)
		r->recovered += fx_recovered[k];
	print_message("fec=%s proactive=%s nodes=%d (fec %d) loss=%.0f%%: "
	    "%u blocks, %" PRIu64 " DATA, %" PRIu64 " PARITY, %" PRIu64
	    " repair frames, %" PRIu64 " lost by >= 1 node, %" PRIu64
	    " decoded\n", fec ? "yes" : "no", proactive, n, n_fec, loss,
	    r->nblocks, r->data, r->parity, r->repair, r->lost_any,
	    r->recovered);
	fx_free(fx);
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

static int
teardown(void **state)
{
	(void)state;
	if (cur_fx != NULL)
		fx_free(cur_fx);
	return (0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_parity_vs_union, teardown),
		cmocka_unit_test_teardown(test_parity_mixed_nodes, teardown),
		cmocka_unit_test_teardown(test_parity_proactive, teardown),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
