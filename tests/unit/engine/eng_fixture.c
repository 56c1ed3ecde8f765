/*
 * eng_fixture.c: see eng_fixture.h.
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

#include "cache.h"
#include "eng_fixture.h"

struct efx *cur_efx;

/* ------------------------------------------------------------------ */
/* The clock                                                            */

static uint64_t
efx_clock_now(void *arg)
{
	struct efx	*fx = arg;

	return (fx->tc.now_us);
}

static void
efx_clock_arm(void *arg, uint64_t at)
{
	struct efx	*fx = arg;

	if (at == UINT64_MAX) {
		ttimer_del(&fx->tc, &fx->eng_t);
		return;
	}
	/* A deadline in the past means "now". */
	ttimer_at(&fx->tc, &fx->eng_t, at > fx->tc.now_us ? at :
	    fx->tc.now_us);
}

static void
efx_eng_timer(void *arg)
{
	struct efx	*fx = arg;

	eng_run(fx->e);
}

/* ------------------------------------------------------------------ */
/* The source: the package in memory                                    */

static int
efx_src_read(void *arg, uint64_t off, uint8_t *buf, size_t len)
{
	struct efx	*fx = arg;

	fx->callbacks++;
	if (fx->read_fails || off > fx->pkg_len || len > fx->pkg_len - off)
		return (-1);
	/* Never past the verified prefix: the engine must not ask. */
	assert_true(off + len <= fx->limit);
	memcpy(buf, fx->pkg + off, len);
	return (0);
}

static uint64_t
efx_src_limit(void *arg)
{
	return (((struct efx *)arg)->limit);
}

static bool
efx_src_complete(void *arg)
{
	return (((struct efx *)arg)->complete);
}

/* ------------------------------------------------------------------ */
/* The callbacks                                                        */

struct efx_node *
efx_known(struct efx *fx, uint64_t id)
{
	int	 i;

	for (i = 0; i < fx->nnodes; i++)
		if (fx->kn[i].id == id)
			return (&fx->kn[i]);
	return (NULL);
}

static struct efx_node *
efx_of(struct eng_member *m)
{
	struct efx_node	*k = eng_member_udata(m);

	assert_non_null(k);
	assert_ptr_equal(k->m, m);
	return (k);
}

static void
efx_mirror(struct efx_node *k)
{
	struct eng_member_info	 mi;

	eng_member_info(k->m, &mi);
	k->state = mi.state;
	k->result = mi.result;
	k->held = mi.held;
	if (mi.state == ENG_M_RECEIVING && mi.held > k->recv_held)
		k->recv_held = mi.held;
}

static void
efx_cb_member(void *arg, struct eng_member *m, enum eng_mev ev)
{
	struct efx	*fx = arg;
	struct efx_node	*k = efx_of(m);

	fx->callbacks++;
	efx_mirror(k);
	if (ev == ENG_MEV_STARTED)
		k->started++;
	if (fx->remove_on_cb == m) {
		/* A daemon may drop a member from inside a callback. */
		fx->remove_on_cb = NULL;
		eng_member_remove(m);
		k->m = NULL;
		k->targeted = false;	/* and it is not taken back */
	}
}

static void
efx_cb_member_final(void *arg, struct eng_member *m, const char *version,
    const char *why)
{
	struct efx	*fx = arg;
	struct efx_node	*k = efx_of(m);

	fx->callbacks++;
	efx_mirror(k);
	assert_true(ENG_M_FINAL(k->state));
	k->finals++;
	snprintf(k->version, sizeof(k->version), "%s",
	    version != NULL ? version : "");
	snprintf(k->why, sizeof(k->why), "%s", why != NULL ? why : "");
}

static bool
efx_cb_member_revive(void *arg, struct eng_member *m)
{
	struct efx	*fx = arg;
	struct efx_node	*k = efx_of(m);

	fx->callbacks++;
	if (k->tries >= 3)
		return (false);
	k->tries++;
	return (true);
}

/* Offer time: the daemon may take a member back out (issue 7). */
static bool
efx_cb_member_offer(void *arg, struct eng_member *m)
{
	struct efx	*fx = arg;
	struct efx_node	*k = efx_of(m);

	fx->offers_asked++;
	if (k == NULL || k->id != fx->veto_node)
		return (true);
	eng_member_remove(m);
	k->m = NULL;
	return (false);
}

static struct eng_member *
efx_add(struct efx *fx, struct efx_node *k)
{
	struct eng_member_conf	 mc;

	memset(&mc, 0, sizeof(mc));
	mc.node = k->id;
	mc.state = ENG_M_PENDING;
	mc.addr = k->addr;
	mc.max_frame = k->max_frame;
	k->m = eng_member_add(fx->s, &mc, k);
	assert_non_null(k->m);
	k->state = ENG_M_PENDING;
	k->tries++;
	return (k->m);
}

static int
efx_cb_stranger(void *arg, struct eng_session *s, uint64_t node,
    const struct tp_addr *src)
{
	struct efx	*fx = arg;
	struct efx_node	*k = efx_known(fx, node);

	fx->callbacks++;
	fx->strangers++;
	if (s != fx->s)
		return (0);	/* a session of the test's own */
	if (k == NULL || !k->announced || !k->targeted ||
	    k->id == fx->veto_node)
		return (-1);
	if (k->m == NULL) {
		k->addr = *src;
		efx_add(fx, k);
	}
	return (1);
}

static void
efx_cb_session_save(void *arg, struct eng_session *s, bool durable)
{
	struct efx		*fx = arg;
	struct eng_session_info	 si;

	fx->callbacks++;
	if (fx->s != NULL && s != fx->s)
		return;		/* a session of the test's own */
	eng_session_info(s, &si);
	fx->saves++;
	if (durable)
		fx->durable_saves++;
	fx->sid = si.id;
	fx->block_size = si.block_size;
}

static void
efx_cb_session_settled(void *arg, struct eng_session *s)
{
	struct efx	*fx = arg;

	fx->callbacks++;
	fx->settled++;
}

static void
efx_cb_session_error(void *arg, struct eng_session *s)
{
	struct efx	*fx = arg;

	fx->callbacks++;
	fx->errors++;
	eng_session_close(s);
}

static void
efx_cb_announce(void *arg, struct eng_link *l, const struct tp_addr *src,
    const struct up_announce *a)
{
	struct efx	*fx = arg;
	struct efx_node	*k = efx_known(fx, a->node_id);
	bool		 first;

	fx->callbacks++;
	fx->announces++;
	assert_ptr_equal(l, fx->l);
	if (k == NULL)
		return;
	first = !k->announced;
	k->announced = true;
	k->addr = *src;
	k->max_frame = a->max_frame;
	k->targeted = fx->hw[0] == '\0' || strcmp(fx->hw, a->hw) == 0;
	if (k->m != NULL) {
		eng_member_set_addr(k->m, src, a->max_frame);
		/* It lost the session (reflashed, aborted): offer again. */
		if (a->session != fx->sid && a->state == UP_NS_IDLE &&
		    (k->state == ENG_M_RECEIVING ||
		    k->state == ENG_M_DOWNLOADED ||
		    k->state == ENG_M_VERIFIED)) {
			eng_member_restart(k->m);
			k->state = ENG_M_PENDING;
		}
		return;
	}
	/* Dynamic membership: a newcomer joins the running session. */
	if (first && fx->auto_join && fx->s != NULL && k->targeted) {
		efx_add(fx, k);
		eng_session_poke(fx->s);
	}
}

static void
efx_cb_unknown_session(void *arg, struct eng_link *l, uint32_t id,
    const struct up_msg *m)
{
	struct efx	*fx = arg;

	fx->callbacks++;
	fx->unknown++;
}

/* ------------------------------------------------------------------ */
/* Set-up                                                               */

void
efx_default_params(struct eng_params *p)
{
	memset(p, 0, sizeof(*p));
	p->block_size = 1024;
	p->rate_pct = 100;
	p->offer_window_ms = 60;
	p->offer_repeats = 3;
	p->status_window_ms = 40;
	p->max_rounds = 5;
	p->activate_delay_ms = 10;
	p->result_timeout_s = 3;
	p->discover_interval_s = 0;
	p->session_deadline_s = 600;
	p->fec = true;
	p->fec_k = 64;
	p->fec_proactive = ENG_FEC_AUTO;
	p->xor_repair = true;
}

void
efx_default_link(struct tp_mem_params *p)
{
	memset(p, 0, sizeof(*p));
	p->caps.mtu = UP_FRAME_MAX;
	p->caps.flags = TP_CAP_BROADCAST | TP_CAP_UNICAST;
	p->caps.bitrate_bps = 50000000;
	p->caps.frame_overhead = 42;
	p->caps.tx_queue = 64;
}

static void
efx_package(struct efx *fx, size_t len)
{
	size_t	 i;
	uint32_t x = 0x12345678;

	fx->pkg_len = len;
	fx->pkg = malloc(len != 0 ? len : 1);
	for (i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		fx->pkg[i] = (uint8_t)x;
	}
	memset(&fx->offer, 0, sizeof(fx->offer));
	strcpy(fx->offer.component, "app");
	strcpy(fx->offer.to_version, "1.1.0");
	fx->offer.kind = UP_KIND_FULL;
	fx->offer.size = (uint32_t)len;
	fx->offer.image_size = (uint32_t)len;
	cache_sha256(fx->pkg, len, fx->offer.sha256);
	memcpy(fx->offer.image_sha256, fx->offer.sha256, 32);
	fx->limit = len;
	fx->complete = true;
}

void
efx_engine(struct efx *fx, const struct tp_ops *ops)
{
	struct eng_clock	 clock;
	struct eng_cb		 cb;
	struct tp_conf		 conf;
	char			*cause = NULL;

	memset(&clock, 0, sizeof(clock));
	clock.arg = fx;
	clock.now_us = efx_clock_now;
	clock.arm = efx_clock_arm;
	memset(&cb, 0, sizeof(cb));
	cb.arg = fx;
	cb.member = efx_cb_member;
	cb.member_final = efx_cb_member_final;
	cb.member_revive = efx_cb_member_revive;
	cb.member_offer = efx_cb_member_offer;
	cb.stranger = efx_cb_stranger;
	cb.session_save = efx_cb_session_save;
	cb.session_settled = efx_cb_session_settled;
	cb.session_error = efx_cb_session_error;
	cb.announce = efx_cb_announce;
	cb.unknown_session = efx_cb_unknown_session;
	fx->e = eng_new(fx->base, &clock, &cb, &fx->params);
	memset(&conf, 0, sizeof(conf));
	conf.name = "mem0";
	conf.options = ops->options;
	if ((fx->l = eng_link_open(fx->e, "mem0", ops, &conf, NULL,
	    &cause)) == NULL)
		fail_msg("eng_link_open: %s", cause);
}

struct efx *
efx_new(const struct tp_ops *ops, const struct tp_mem_params *mp,
    const struct eng_params *p, size_t pkg_len)
{
	struct efx		*fx;

	fx = calloc(1, sizeof(*fx));
	cur_efx = fx;
	fx->base = event_base_new();
	tclock_init(&fx->tc, 1000000);
	ttimer_init(&fx->eng_t, efx_eng_timer, fx);
	efx_package(fx, pkg_len);
	if (mp != NULL)
		fx->mp = *mp;
	else
		efx_default_link(&fx->mp);
	if (p != NULL)
		fx->params = *p;
	else
		efx_default_params(&fx->params);
	fx->m = tp_mem_medium_new(fx->base, "mem0", &fx->mp);
	tp_mem_set_clock(fx->m, &fx->tc);

	efx_engine(fx, ops);
	return (fx);
}

void
efx_free(struct efx *fx)
{
	int	 i;

	cur_efx = NULL;
	eng_free(fx->e);
	for (i = 0; i < fx->nnodes; i++)
		sim_node_free(fx->nodes[i]);
	tp_mem_medium_free(fx->m);
	event_base_free(fx->base);
	free(fx->pkg);
	free(fx);
}

struct sim_node *
efx_node_comp(struct efx *fx, uint64_t id, const char *hw, const char *comp,
    uint32_t slot, double loss)
{
	struct sim_node	*sn;

	assert_true(fx->nnodes < EFX_MAX_NODES);
	fx->kn[fx->nnodes].id = id;
	sn = sim_node_new(fx->base, fx->m, (uint8_t)(fx->nnodes + 1), id, hw,
	    comp, "1.0.0", slot, loss, 1000 + (uint32_t)id);
	fx->nodes[fx->nnodes++] = sn;
	return (sn);
}

struct sim_node *
efx_node_hw(struct efx *fx, uint64_t id, const char *hw, uint32_t slot,
    double loss)
{
	return (efx_node_comp(fx, id, hw, "app", slot, loss));
}

struct sim_node *
efx_node(struct efx *fx, uint64_t id, uint32_t slot, double loss)
{
	return (efx_node_hw(fx, id, "hw-a", slot, loss));
}

/* ------------------------------------------------------------------ */
/* Running                                                              */

bool
efx_run(struct efx *fx, bool (*pred)(struct efx *), unsigned int timeout_ms)
{
	uint64_t	 end, next;

	end = fx->tc.now_us + (uint64_t)timeout_ms * 1000;

	for (;;) {
		/* Frames on the medium go at once (zero-time events). */
		while (event_base_get_num_events(fx->base,
		    EVENT_BASE_COUNT_ACTIVE) > 0)
			event_base_loop(fx->base, EVLOOP_NONBLOCK);
		if (pred(fx))
			return (true);
		if (tclock_fire_one(&fx->tc))
			continue;
		if ((next = tclock_next(&fx->tc)) == UINT64_MAX) {
			/* Nothing will ever happen again. */
			return (pred(fx));
		}
		if (next > end) {
			fx->tc.now_us = end;
			return (pred(fx));
		}
		fx->tc.now_us = next;
	}
}

bool
efx_never(struct efx *fx)
{
	return (false);
}

void
efx_sleep(struct efx *fx, unsigned int ms)
{
	efx_run(fx, efx_never, ms);
}

bool
efx_all_known(struct efx *fx)
{
	int	 i;

	for (i = 0; i < fx->nnodes; i++)
		if (!fx->kn[i].announced)
			return (false);
	return (true);
}

bool
efx_done(struct efx *fx)
{
	int	 i;

	for (i = 0; i < fx->nnodes; i++) {
		if (fx->nodes[i]->n.unacked || fx->nodes[i]->rebooting)
			return (false);
		if (fx->kn[i].m != NULL && !ENG_M_FINAL(fx->kn[i].state))
			return (false);
	}
	return (true);
}

int
efx_nstate(struct efx *fx, uint8_t state)
{
	int	 i, n = 0;

	for (i = 0; i < fx->nnodes; i++)
		if (sim_node_state(fx->nodes[i], NULL, NULL) == state)
			n++;
	return (n);
}

int
efx_nfinal(struct efx *fx, enum eng_mstate st)
{
	int	 i, n = 0;

	for (i = 0; i < fx->nnodes; i++)
		if (fx->kn[i].m != NULL && fx->kn[i].state == st)
			n++;
	return (n);
}

void
efx_session(struct efx *fx, uint32_t id, uint16_t block_size)
{
	struct eng_session_conf	 sc;
	char			*cause = NULL;

	memset(&sc, 0, sizeof(sc));
	sc.id = id != 0 ? id : 0x5e55a000;
	sc.link = "mem0";
	sc.block_size = block_size;
	sc.offer = &fx->offer;
	if ((fx->s = eng_session_new(fx->e, &sc, fx, &cause)) == NULL)
		fail_msg("eng_session_new: %s", cause);
	fx->sid = sc.id;
}

void
efx_join_all(struct efx *fx)
{
	int	 i;

	for (i = 0; i < fx->nnodes; i++)
		if (fx->kn[i].announced && fx->kn[i].targeted &&
		    fx->kn[i].m == NULL)
			efx_add(fx, &fx->kn[i]);
}

void
efx_go(struct efx *fx)
{
	struct eng_source	 src;

	memset(&src, 0, sizeof(src));
	src.arg = fx;
	src.read = efx_src_read;
	src.limit = efx_src_limit;
	src.complete = efx_src_complete;
	eng_session_start(fx->s, &src);
}

void
efx_start(struct efx *fx)
{
	assert_true(efx_run(fx, efx_all_known, 2000));
	efx_session(fx, 0, 0);
	efx_join_all(fx);
	efx_go(fx);
}

struct tp_mem_counts *
efx_counts(struct efx *fx)
{
	return (tp_mem_counts(fx->m));
}
