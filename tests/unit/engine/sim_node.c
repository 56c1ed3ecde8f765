/*
 * sim_node.c: simulated end nodes on tp_mem (see sim_node.h).  On a
 * medium with a fake clock (tclock.h) a node's time and timers are that
 * clock's; otherwise CLOCK_MONOTONIC and libevent's timers.
 */
#include <sys/time.h>

#include <event2/event.h>

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cache.h"
#include "sim_node.h"
#include "tclock.h"

static void	 sim_schedule(struct sim_node *);
static uint32_t	 sim_now_ms(void *);
static const struct up_port sim_port;

/* Down (down_at_verify_ms): hears nothing, says nothing. */
static bool
sim_down(struct sim_node *sn)
{
	if (sn->down_until == 0)
		return (false);
	if (sn->down_at_verify_ms == UINT32_MAX ||
	    (int32_t)(sim_now_ms(sn) - sn->down_until) < 0)
		return (true);
	sn->down_until = 0;
	return (false);
}

/* A count list it sends (§11.7 form 2): when, and was it complete. */
static void
sim_note_status(struct sim_node *sn, const uint8_t *frame, size_t len)
{
	struct up_msg	 m;

	if (up_decode_any(frame, len, &m) != UP_OK ||
	    m.type != UP_T_STATUS || m.u.status.st.form != UP_SB_COUNTS)
		return;
	if (sn->counts_sent < SIM_NODE_COUNTS_AT)
		sn->counts_at[sn->counts_sent] = tclock_now(sn->tc);
	sn->counts_sent++;
	if (sn->n.offer.nblocks != 0 && sn->n.nheld == sn->n.offer.nblocks)
		sn->counts_complete++;
}

static int
sim_send(void *ctx, const uint8_t *frame, size_t len)
{
	struct sim_node	*sn = ctx;

	if (sn->mute || sim_down(sn))
		return (0);
	if (len > 1 && frame[1] == UP_T_RESULT && len <= UP_FRAME_MAX) {
		memcpy(sn->last_result, frame, len);
		sn->last_result_len = len;
		sn->results_sent++;
	}
	sim_note_status(sn, frame, len);
	tp_mem_node_send(sn->mn, frame, len);
	return (0);
}

static uint32_t
sim_now_ms(void *ctx)
{
	struct sim_node	*sn = ctx;

	return ((uint32_t)(tclock_now(sn->tc) / 1000));
}

/* Arms one of the node's timers ms from now, on its clock. */
static void
sim_arm(struct sim_node *sn, struct event *ev, struct ttimer *t,
    uint32_t ms)
{
	struct timeval	 tv;

	if (sn->tc != NULL) {
		ttimer_at(sn->tc, t, sn->tc->now_us + (uint64_t)ms * 1000);
		return;
	}
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	evtimer_add(ev, &tv);
}

static uint32_t
sim_random(void *ctx)
{
	struct sim_node	*sn = ctx;

	sn->rng ^= sn->rng << 13;
	sn->rng ^= sn->rng >> 17;
	sn->rng ^= sn->rng << 5;
	return (sn->rng);
}

static int
sim_save(void *ctx, const uint8_t *state, size_t state_len,
    const uint8_t *bitmap, size_t bitmap_len)
{
	struct sim_node	*sn = ctx;

	if (state_len > sizeof(sn->saved_state))
		return (-1);
	memcpy(sn->saved_state, state, state_len);
	sn->saved_state_len = state_len;
	free(sn->saved_bm);
	sn->saved_bm = malloc(bitmap_len + 1);
	if (bitmap_len > 0)
		memcpy(sn->saved_bm, bitmap, bitmap_len);
	sn->saved_bm_len = bitmap_len;
	sn->saved = true;
	return (0);
}

static int
sim_load(void *ctx, uint8_t *state, size_t state_cap, size_t *state_len,
    uint8_t *bitmap, size_t bitmap_cap, size_t *bitmap_len)
{
	struct sim_node	*sn = ctx;

	if (!sn->saved || sn->saved_state_len > state_cap ||
	    sn->saved_bm_len > bitmap_cap)
		return (-1);
	memcpy(state, sn->saved_state, sn->saved_state_len);
	*state_len = sn->saved_state_len;
	if (sn->saved_bm_len > 0)
		memcpy(bitmap, sn->saved_bm, sn->saved_bm_len);
	*bitmap_len = sn->saved_bm_len;
	return (0);
}

static uint32_t
sim_slot_capacity(void *ctx)
{
	return (((struct sim_node *)ctx)->slot_cap);
}

static int
sim_slot_erase(void *ctx, uint32_t off, uint32_t len)
{
	struct sim_node	*sn = ctx;

	if (off > sn->slot_cap || len > sn->slot_cap - off)
		return (-1);
	memset(sn->slot + off, 0xff, len);
	return (0);
}

static int
sim_slot_write(void *ctx, uint32_t off, const uint8_t *p, size_t n)
{
	struct sim_node	*sn = ctx;

	if (off > sn->slot_cap || n > sn->slot_cap - off)
		return (-1);
	memcpy(sn->slot + off, p, n);
	return (0);
}

static int
sim_slot_read(void *ctx, uint32_t off, uint8_t *p, size_t n)
{
	struct sim_node	*sn = ctx;

	if (off > sn->slot_cap || n > sn->slot_cap - off)
		return (-1);
	memcpy(p, sn->slot + off, n);
	return (0);
}

/* The engine hashes the slot in steps; test packages are unsigned
 * (sig_alg none), so the port has no sig_verify. */
static int
sim_sha256_begin(void *ctx)
{
	struct sim_node	*sn = ctx;

	if (sn->sha == NULL && (sn->sha = cache_sha_new()) == NULL)
		return (-1);
	/* cache_sha_final leaves it reset; a dropped hash is ended here. */
	if (sn->sha_open) {
		uint8_t	 d[32];

		cache_sha_final(sn->sha, d);
	}
	sn->sha_open = true;
	return (0);
}

static int
sim_sha256_update(void *ctx, const uint8_t *p, size_t n)
{
	cache_sha_update(((struct sim_node *)ctx)->sha, p, n);
	return (0);
}

static int
sim_sha256_end(void *ctx, uint8_t md[32])
{
	struct sim_node	*sn = ctx;

	cache_sha_final(sn->sha, md);
	sn->sha_open = false;
	return (0);
}

static void
sim_boot(void *arg)
{
	struct sim_node	*sn = arg;
	unsigned int	 i;

	/* The new slot boots and passes its health check. */
	for (i = 0; i < sn->info.ncomp; i++)
		if (strcmp(sn->info.comp[i].name, sn->n.offer.component) == 0)
			memcpy(sn->info.comp[i].version, sn->next_version,
			    sizeof(sn->info.comp[i].version));
	sn->rebooting = false;
	up_node_init(&sn->n, &sim_port, sn, &sn->info, sn->bm, sn->bm_cap);
	if (sn->nlink_set)
		up_node_set_link(&sn->n, &sn->nlink);
	up_node_start(&sn->n, NULL);
	sim_schedule(sn);
}

static void
sim_boot_cb(int fd, short ev, void *arg)
{
	sim_boot(arg);
}

static int
sim_activate(void *ctx, const struct up_offer *o)
{
	struct sim_node	*sn = ctx;

	memcpy(sn->next_version, o->to_version, sizeof(sn->next_version));
	sn->rebooting = true;
	/* A connected node's connection ends with its reboot. */
	tp_mem_node_drop(sn->mn);
	sim_arm(sn, sn->boot_ev, &sn->boot_t, sn->boot_delay_ms);
	return (0);
}

static const struct up_port sim_port = {
	.send = sim_send,
	.now_ms = sim_now_ms,
	.random = sim_random,
	.save = sim_save,
	.load = sim_load,
	.slot_capacity = sim_slot_capacity,
	.slot_erase = sim_slot_erase,
	.slot_write = sim_slot_write,
	.slot_read = sim_slot_read,
	.sha256_begin = sim_sha256_begin,
	.sha256_update = sim_sha256_update,
	.sha256_end = sim_sha256_end,
	.activate = sim_activate,
};

static void
sim_tick(void *arg)
{
	struct sim_node	*sn = arg;

	if (sn->rebooting)
		return;
	up_node_tick(&sn->n);
	sim_schedule(sn);
}

static void
sim_tick_cb(int fd, short ev, void *arg)
{
	sim_tick(arg);
}

static void
sim_schedule(struct sim_node *sn)
{
	if (sn->rebooting)
		return;
	sim_arm(sn, sn->tick_ev, &sn->tick_t, up_node_next_ms(&sn->n));
}

/* An ACCEPT "busy" to an OFFER (its slot serves another session). */
static void
sim_busy(struct sim_node *sn, const struct up_msg *offer)
{
	struct up_msg	 a;
	uint8_t		 buf[UP_FRAME_MAX];
	int		 n;

	if (strcmp(offer->u.offer.component, "app") != 0)
		return;
	memset(&a, 0, sizeof(a));
	a.type = UP_T_ACCEPT;
	a.session = offer->session;
	a.u.accept.node_id = sn->info.node_id;
	a.u.accept.code = UP_R_BUSY;
	if ((n = up_encode(&a, buf, sizeof(buf))) > 0)
		sim_send(sn, buf, (size_t)n);
}

static void
sim_rx(void *arg, const uint8_t *frame, size_t len)
{
	struct sim_node	*sn = arg;
	struct up_msg	 m;

	if (sn->deaf || sn->rebooting || sim_down(sn))
		return;
	if (sn->down_at_verify_ms != 0 && !sn->down_done && len > 1 &&
	    frame[1] == UP_T_VERIFY) {
		sn->down_done = true;
		sn->down_until = sim_now_ms(sn) + (sn->down_at_verify_ms ==
		    UINT32_MAX ? 1 : sn->down_at_verify_ms);
		if (sn->down_until == 0)
			sn->down_until = 1;
		return;
	}
	/* What a node without XOR does: an unknown type, dropped (§4.15). */
	/* A node built before §11: compact frames are not UP to it. */
	if (sn->full_only && len > 0 && (frame[0] & UP_C_MARK) != 0)
		return;
	if (sn->no_xor && len > 1 && frame[1] == UP_T_XOR)
		return;
	/* The first lose_aborts ABORTs are lost on the air. */
	if (sn->lose_aborts > 0 && up_decode_any(frame, len, &m) == UP_OK &&
	    m.type == UP_T_ABORT) {
		sn->lose_aborts--;
		return;
	}
	if (sn->busy && up_decode(frame, len, &m) == UP_OK &&
	    m.type == UP_T_OFFER) {
		sim_busy(sn, &m);
		return;
	}
	if (up_decode_any(frame, len, &m) == UP_OK && m.type == UP_T_DATA) {
		sn->rx_data++;
		if (m.form == UP_FORM_COMPACT && sn->n.tag_bound &&
		    m.cx.tag == sn->n.tag)
			m.session = sn->n.session;
		if (m.session == sn->n.session &&
		    sn->n.state == UP_NS_RECEIVING &&
		    m.u.data.index < sn->n.held.nbits &&
		    up_bitmap_get(&sn->n.held, m.u.data.index))
			sn->dup_data++;
	}
	up_node_input(&sn->n, frame, len);
	sim_schedule(sn);
}

/* Its connection came up with mtu, or went down (0). */
static void
sim_link(void *arg, uint32_t mtu)
{
	struct sim_node	*sn = arg;

	sn->link_mtu = mtu;
	/* A notification carries what the connection's MTU allows. */
	if (sn->nlink_set && mtu != 0) {
		sn->nlink.uplink_mtu = (uint16_t)mtu;
		up_node_set_link(&sn->n, &sn->nlink);
	}
}

void
sim_node_set_link(struct sim_node *sn, uint8_t flags)
{
	memset(&sn->nlink, 0, sizeof(sn->nlink));
	sn->nlink.flags = flags;
	sn->nlink.uplink_mtu = sn->link_mtu != 0 ? (uint16_t)sn->link_mtu :
	    (uint16_t)sn->info.max_frame;
	sn->nlink_set = true;
	up_node_set_link(&sn->n, &sn->nlink);
}

/*
 * The carrier module delivered file bytes [off, off + len): the station's
 * link layer gathers them into whole blocks of its session and hands
 * each to its UP engine (up_node_put_block: blocks out of band).
 */
static void
sim_oob(void *arg, uint64_t off, const uint8_t *p, size_t len)
{
	struct sim_node		*sn = arg;
	const struct up_offer	*o = &sn->n.offer;
	uint64_t		 end = off + len, b0, b1, lo, hi;
	uint32_t		 b, blen, session;

	if (sim_node_state(sn, &session, NULL) != UP_NS_RECEIVING ||
	    o->block_size == 0 || end > sn->slot_cap || end > o->size)
		return;
	if (sn->oob_session != session || sn->oob_n != o->nblocks) {
		free(sn->oob_cnt);
		sn->oob_cnt = calloc(o->nblocks, sizeof(*sn->oob_cnt));
		sn->oob_n = o->nblocks;
		sn->oob_session = session;
	}
	/* The staging copy: the slot itself is the engine's. */
	if (sn->oob_buf == NULL)
		sn->oob_buf = calloc(1, sn->slot_cap);
	memcpy(sn->oob_buf + off, p, len);
	b0 = off / o->block_size;
	b1 = (end - 1) / o->block_size;
	for (b = (uint32_t)b0; b <= b1 && b < o->nblocks; b++) {
		lo = (uint64_t)b * o->block_size;
		blen = b == o->nblocks - 1 ? (uint32_t)(o->size - lo) :
		    o->block_size;
		hi = lo + blen;
		sn->oob_cnt[b] += (uint32_t)((end < hi ? end : hi) -
		    (off > lo ? off : lo));
		if (sn->oob_cnt[b] == blen &&
		    up_node_put_block(&sn->n, session, b, sn->oob_buf + lo,
		    blen) == UP_OK)
			sn->oob_blocks++;
	}
	sim_schedule(sn);
}

struct sim_node *
sim_node_new(struct event_base *base, struct tp_mem_medium *m, uint8_t id,
    uint64_t node_id, const char *hw, const char *comp, const char *version,
    uint32_t slot_cap, double loss_pct, uint32_t seed)
{
	struct sim_node	*sn;

	sn = calloc(1, sizeof(*sn));
	sn->base = base;
	sn->slot_cap = slot_cap;
	sn->slot = calloc(1, slot_cap);
	sn->bm_cap = up_bitmap_bytes(slot_cap / 16 + 1);
	sn->bm = calloc(1, sn->bm_cap);
	sn->rng = seed * 2654435761u + id;
	if (sn->rng == 0)
		sn->rng = 1;
	sn->boot_delay_ms = 20;
	sn->info.node_id = node_id;
	strncpy(sn->info.hw, hw, sizeof(sn->info.hw) - 1);
	sn->info.max_frame = UP_FRAME_MAX;
	sn->info.battery = UP_BATTERY_UNKNOWN;
	sn->info.rssi_dbm = UP_RSSI_UNKNOWN;
	sn->info.snr_db = UP_SNR_UNKNOWN;
	sn->info.ncomp = 1;
	strncpy(sn->info.comp[0].name, comp, UP_NAME_MAX);
	strncpy(sn->info.comp[0].version, version, UP_VER_MAX);
	sn->tc = tp_mem_clock(m);
	sn->tick_ev = evtimer_new(base, sim_tick_cb, sn);
	sn->boot_ev = evtimer_new(base, sim_boot_cb, sn);
	ttimer_init(&sn->tick_t, sim_tick, sn);
	ttimer_init(&sn->boot_t, sim_boot, sn);
	sn->mn = tp_mem_node_new(m, id, loss_pct, seed, sim_rx, sn);
	tp_mem_node_hooks(sn->mn, sim_link, sim_oob);
	up_node_init(&sn->n, &sim_port, sn, &sn->info, sn->bm, sn->bm_cap);
	up_node_start(&sn->n, NULL);
	sim_schedule(sn);
	return (sn);
}

void
sim_node_free(struct sim_node *sn)
{
	if (sn == NULL)
		return;
	event_free(sn->tick_ev);
	event_free(sn->boot_ev);
	if (sn->tc != NULL) {
		ttimer_del(sn->tc, &sn->tick_t);
		ttimer_del(sn->tc, &sn->boot_t);
	}
	tp_mem_node_free(sn->mn);
	free(sn->slot);
	free(sn->bm);
	free(sn->saved_bm);
	free(sn->oob_cnt);
	free(sn->oob_buf);
	cache_sha_free(sn->sha);
	free(sn);
}

uint8_t
sim_node_state(struct sim_node *sn, uint32_t *session, uint8_t *result)
{
	return (up_node_get_state(&sn->n, session, result));
}

const char *
sim_node_version(struct sim_node *sn, const char *comp)
{
	unsigned int	 i;

	for (i = 0; i < sn->info.ncomp; i++)
		if (strcmp(sn->info.comp[i].name, comp) == 0)
			return (sn->info.comp[i].version);
	return (NULL);
}

void
sim_node_resend_result(struct sim_node *sn)
{
	if (sn->last_result_len > 0)
		tp_mem_node_send(sn->mn, sn->last_result,
		    sn->last_result_len);
}
