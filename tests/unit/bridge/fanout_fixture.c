/*
 * fanout_fixture.c: see fanout_fixture.h.
 */
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fanout_fixture.h"

struct fx *cur_fx;


void
fx_report(void *arg, const char *line)
{
	struct fx	*fx = arg;

	if (fx->nreports < FX_MAX_REPORTS)
		fx->reports[fx->nreports++] = strdup(line);
}

void
fx_beat(int fd, short ev, void *arg)
{
}

/* Runs the loop until pred() or timeout; returns pred(). */
bool
fx_run(struct fx *fx, bool (*pred)(struct fx *), unsigned int timeout_ms)
{
	uint64_t	 end = ubt_now_ms() + timeout_ms;

	while (!pred(fx)) {
		if (ubt_now_ms() > end)
			return (false);
		event_base_loop(fx->base, EVLOOP_ONCE);
	}
	return (true);
}

bool
fx_never(struct fx *fx)
{
	return (false);
}

void
fx_sleep(struct fx *fx, unsigned int ms)
{
	fx_run(fx, fx_never, ms);
}

void
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
	/* A node silent this long is written off (issue 7; 10 s on a LAN). */
	c->transports[0].node_silence_s = 2;
}

void
fx_default_params(struct tp_mem_params *p)
{
	memset(p, 0, sizeof(*p));
	p->caps.mtu = UP_FRAME_MAX;
	p->caps.flags = TP_CAP_BROADCAST | TP_CAP_UNICAST;
	p->caps.bitrate_bps = 50000000;
	p->caps.frame_overhead = 42;
	p->caps.tx_queue = 64;
}

void
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

void
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
struct fx *
fx_new(const struct tp_ops *ops, const struct tp_mem_params *p,
    size_t pkg_len)
{
	struct fx		*fx;
	struct event_config	*cfg;
	struct timeval		 tv = { 0, 10000 };
	char			 path[128], *cause = NULL;

	fx = calloc(1, sizeof(*fx));
	strcpy(fx->dir, "/tmp/ub-fx-XXXXXX");
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

void
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

struct sim_node *
fx_node(struct fx *fx, uint64_t id, uint32_t slot, double loss)
{
	struct sim_node	*sn;

	sn = sim_node_new(fx->base, fx->m, (uint8_t)(fx->nnodes + 1), id,
	    "hw-a", "app", "1.0.0", slot, loss, 1000 + (uint32_t)id);
	fx->nodes[fx->nnodes++] = sn;
	return (sn);
}

bool
fx_all_known(struct fx *fx)
{
	return (registry_count(fx->reg) == (size_t)fx->nnodes);
}

int
fx_nstate(struct fx *fx, uint8_t state)
{
	int	 i, n = 0;

	for (i = 0; i < fx->nnodes; i++)
		if (sim_node_state(fx->nodes[i], NULL, NULL) == state)
			n++;
	return (n);
}

/* The campaign's state, or "" if none. */
const char *
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

bool
fx_done(struct fx *fx)
{
	char	 buf[32];

	return (strcmp(fx_cstate(fx, buf, sizeof(buf)), "done") == 0);
}

bool
fx_all_acked(struct fx *fx)
{
	int	 i;

	for (i = 0; i < fx->nnodes; i++)
		if (fx->nodes[i]->n.unacked || fx->nodes[i]->rebooting)
			return (false);
	return (fx_done(fx));
}

void
fx_start(struct fx *fx)
{
	assert_true(fx_run(fx, fx_all_known, 2000));
	fanout_manifest(fx->f, &fx->mf);
	/* No uplink: the package is in the cache already. */
	fanout_package_ready(fx->f, fx->cp.sha256);
}
