/*
 * fuzz_eng_answer.c: the gateway's handling of node frames.  The fan-out
 * engine (engine/) runs alone on a fake clock over the in-memory
 * transport (tests/unit/engine/tp_mem.c, tclock.c), one session of a
 * small package, and the input plays the nodes: ACCEPTs, STATUS slices,
 * RESULTs, ABORTs and ANNOUNCEs from random node ids (members, a node the
 * daemon takes when it accepts, a node that is another session's, one
 * that was never targeted), naming the session, another one or none,
 * raw bytes, time passing, and the daemon's own calls (cancel, restart,
 * remove, add back, hold, release, poke).  The daemon side is a small
 * one, like tests/unit/engine/eng_fixture.c, that takes a final member
 * back (member_revive) when its final state was not the node's own word.
 *
 * Input: a header byte (bit 0: member 0x104 is held at VERIFIED; bits
 * 1-2: the revive budget), then records, an op byte and its operands
 * (missing bytes read 0):
 *   op % 8 == 0  ACCEPT: u8 node, u8 session, u8 code, body
 *             1  STATUS: u8 node, u8 session, u8 state, body
 *             2  RESULT: u8 node, u8 session, u8 state, u8 result,
 *                u8 version
 *             3  ABORT: u8 node, u8 session, u8 reason
 *             4  ANNOUNCE: u8 node, u8 session, u8 state
 *             5  time passes: u16 ms
 *             6  the daemon: u8 action, u8 node, u8 code
 *             7  raw frame from a node: u8 node, u8 len, len bytes
 * where a body is u16 held, u16 first_missing, u8 nbits, then
 * (nbits + 7) / 8 bytes of bitmap.
 *
 * Invariants (abort() on a violation):
 *  - the session's per-state counts (eng_session_info nstate) and
 *    member count are those of its members, after every step;
 *  - member_final reports a final state, and never twice for a member
 *    without that member going back to a non-final state in between,
 *    unless the earlier one was the engine's or the daemon's (a
 *    write-off, a busy decline, a cancel): a node's own final word
 *    (RESULT, ACCEPT decline or already, its ABORT) is reported once;
 *  - ENG_MEV_STATE never carries a final state; an UPDATED member never
 *    changes again but by the daemon's own calls;
 *  - no callback fires from inside a daemon's eng_* call, and member
 *    callbacks name members of the session with the daemon's udata;
 *  - the source is never read past its limit; every frame the engine
 *    sends decodes and names the session (or none);
 *  - time always moves: the engine never asks to run at "now" forever;
 *  - once the nodes fall silent for good, every member ends final
 *    (but one held at VERIFIED): nothing waits forever.
 */
#include <event2/event.h>

#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "tclock.h"
#include "tp_mem.h"

#define FZ_NODES	8
#define FZ_MEMBERS	5	/* 0x100 .. 0x104 start as members */
#define FZ_TAKEN	5	/* 0x105: taken when it accepts */
#define FZ_ELSEWHERE	6	/* 0x106: another session's */
#define FZ_SID		0x5e550001u
#define FZ_PKG		(23 * 64 + 17)

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

struct fz_node {
	uint64_t		 id;
	struct tp_mem_node	*rx;
	struct eng_member	*m;
	enum eng_mstate		 state;		/* as reported */
	bool			 own_final;	/* the node's own word */
	unsigned int		 revived;
};

struct fz {
	struct tclock		 tc;
	struct ttimer		 eng_t;
	struct eng		*e;
	struct tp_mem_medium	*med;
	struct eng_link		*l;
	struct eng_session	*s;
	struct fz_node		 n[FZ_NODES];
	unsigned int		 revive_budget;
	bool			 in_daemon;
	uint64_t		 limit;		/* source's prefix */
	uint8_t			 pkg[FZ_PKG];
};

static struct event_base *base;
static struct fz	 F;

/* ------------------------------------------------------------------ */
/* The daemon                                                           */

static void
fz_quiet(int level, const char *fmt, va_list ap)
{
}

static struct fz_node *
fz_of(struct eng_member *m)
{
	struct fz_node	*k = eng_member_udata(m);

	if (F.in_daemon || k == NULL || k->m != m ||
	    eng_member_session(m) != F.s)
		abort();
	return (k);
}

static enum eng_mstate
fz_state(struct eng_member *m)
{
	struct eng_member_info	 mi;

	eng_member_info(m, &mi);
	return (mi.state);
}

static void
cb_member(void *arg, struct eng_member *m, enum eng_mev ev)
{
	struct fz_node	*k = fz_of(m);
	enum eng_mstate	 st = fz_state(m);

	if (ev == ENG_MEV_STATE && ENG_M_FINAL(st))
		abort();
	if (k->state == ENG_M_UPDATED && st != ENG_M_UPDATED)
		abort();	/* UPDATED is the end */
	if (!ENG_M_FINAL(st))
		k->own_final = false;
	k->state = st;
}

static void
cb_member_final(void *arg, struct eng_member *m, const char *version,
    const char *why)
{
	struct fz_node	*k = fz_of(m);
	enum eng_mstate	 st = fz_state(m);

	if (!ENG_M_FINAL(st))
		abort();
	/* The node's own final word is reported once. */
	if (k->own_final || k->state == ENG_M_UPDATED)
		abort();
	k->own_final = why == NULL;
	k->state = st;
}

static bool
cb_member_revive(void *arg, struct eng_member *m)
{
	struct fz_node	*k = fz_of(m);

	if (!ENG_M_FINAL(fz_state(m)) || fz_state(m) == ENG_M_UPDATED)
		abort();
	/* A daemon takes back what was not the node's own final word. */
	if (k->own_final || k->revived >= F.revive_budget)
		return (false);
	k->revived++;
	return (true);
}

static bool
cb_member_offer(void *arg, struct eng_member *m)
{
	(void)fz_of(m);
	return (true);
}

static struct eng_member *
fz_add(struct fz_node *k, const struct tp_addr *addr, bool hold)
{
	struct eng_member_conf	 mc;

	memset(&mc, 0, sizeof(mc));
	mc.node = k->id;
	mc.state = ENG_M_PENDING;
	if (addr != NULL)
		mc.addr = *addr;
	mc.max_frame = UP_FRAME_MAX;
	mc.hold = hold;
	k->m = eng_member_add(F.s, &mc, k);
	k->state = ENG_M_PENDING;
	k->own_final = false;
	return (k->m);
}

static int
cb_stranger(void *arg, struct eng_session *s, uint64_t node,
    const struct tp_addr *src)
{
	struct fz_node	*k;

	if (F.in_daemon || s != F.s)
		abort();
	if (node == F.n[FZ_ELSEWHERE].id)
		return (0);
	k = &F.n[FZ_TAKEN];
	if (node != k->id)
		return (-1);
	if (k->m == NULL && fz_add(k, src, false) == NULL)
		abort();
	return (1);
}

static void
cb_session_save(void *arg, struct eng_session *s, bool durable)
{
	if (F.in_daemon || s != F.s)
		abort();
}

static void
cb_session_settled(void *arg, struct eng_session *s)
{
	if (F.in_daemon || s != F.s)
		abort();
}

static void
cb_session_error(void *arg, struct eng_session *s)
{
	abort();	/* the source never fails here */
}

static void
cb_announce(void *arg, struct eng_link *l, const struct tp_addr *src,
    const struct up_announce *a)
{
	int	 i;

	if (F.in_daemon || l != F.l)
		abort();
	for (i = 0; i < FZ_NODES; i++) {
		if (F.n[i].id != a->node_id || F.n[i].m == NULL)
			continue;
		/* As the daemon does (campaign.c): it lost the session. */
		eng_member_set_addr(F.n[i].m, src, a->max_frame);
		if (a->session != FZ_SID && a->state == UP_NS_IDLE &&
		    (F.n[i].state == ENG_M_RECEIVING ||
		    F.n[i].state == ENG_M_DOWNLOADED ||
		    F.n[i].state == ENG_M_VERIFIED)) {
			eng_member_restart(F.n[i].m);
			F.n[i].state = ENG_M_PENDING;
			F.n[i].own_final = false;
		}
	}
}

static void
cb_unknown_session(void *arg, struct eng_link *l, uint32_t id,
    const struct up_msg *m)
{
	if (F.in_daemon || l != F.l || id == FZ_SID)
		abort();
}

/* ------------------------------------------------------------------ */
/* Clock, source, medium                                                */

static uint64_t
clk_now(void *arg)
{
	return (F.tc.now_us);
}

static void
clk_arm(void *arg, uint64_t at)
{
	if (at == UINT64_MAX) {
		ttimer_del(&F.tc, &F.eng_t);
		return;
	}
	ttimer_at(&F.tc, &F.eng_t, at > F.tc.now_us ? at : F.tc.now_us);
}

static void
eng_timer(void *arg)
{
	eng_run(F.e);
}

static int
src_read(void *arg, uint64_t off, uint8_t *buf, size_t len)
{
	if (off > F.limit || len > F.limit - off)
		abort();
	memcpy(buf, F.pkg + off, len);
	return (0);
}

static uint64_t
src_limit(void *arg)
{
	return (F.limit);
}

static bool
src_complete(void *arg)
{
	return (F.limit == FZ_PKG);
}

/* What a node hears from the gateway: a valid frame of the session. */
static void
node_rx(void *arg, const uint8_t *frame, size_t len)
{
	struct up_msg	 m;

	if (up_decode(frame, len, &m) != UP_OK ||
	    (m.session != 0 && m.session != FZ_SID))
		abort();
}

/* ------------------------------------------------------------------ */
/* Checks                                                               */

static void
fz_counts(void)
{
	struct eng_session_info	 si;
	uint32_t		 nstate[ENG_M_NSTATES];
	size_t			 nm = 0;
	int			 i;

	memset(nstate, 0, sizeof(nstate));
	for (i = 0; i < FZ_NODES; i++) {
		if (F.n[i].m == NULL)
			continue;
		if (eng_member_find(F.s, F.n[i].id) != F.n[i].m)
			abort();
		nstate[fz_state(F.n[i].m)]++;
		nm++;
	}
	eng_session_info(F.s, &si);
	if (si.nmembers != nm || memcmp(si.nstate, nstate,
	    sizeof(nstate)) != 0)
		abort();
}

/* Runs what is due up to now + ms, frames first, timers one by one. */
static void
fz_run(uint64_t ms)
{
	uint64_t	 end = F.tc.now_us + ms * 1000, next, last = 0;
	unsigned int	 same = 0;

	for (;;) {
		while (event_base_get_num_events(base,
		    EVENT_BASE_COUNT_ACTIVE) > 0)
			event_base_loop(base, EVLOOP_NONBLOCK);
		fz_counts();
		if (tclock_fire_one(&F.tc)) {
			/* Time must move: not an endless "run now". */
			if (F.tc.now_us == last) {
				if (++same > 100000)
					abort();
			} else {
				last = F.tc.now_us;
				same = 0;
			}
			continue;
		}
		if ((next = tclock_next(&F.tc)) == UINT64_MAX || next > end) {
			F.tc.now_us = end;
			return;
		}
		F.tc.now_us = next;
	}
}

/* ------------------------------------------------------------------ */
/* The nodes' side                                                      */

struct fz_in {
	const uint8_t	*p;
	size_t		 len, off;
};

static uint8_t
in_u8(struct fz_in *in)
{
	return (in->off < in->len ? in->p[in->off++] : 0);
}

static uint16_t
in_u16(struct fz_in *in)
{
	uint16_t	 v = in_u8(in);

	return ((uint16_t)(v | in_u8(in) << 8));
}

static uint32_t
sess_pick(uint8_t v)
{
	switch (v % 8) {
	case 6:
		return (0x0bad0000u + v);
	case 7:
		return (0);
	default:
		return (FZ_SID);
	}
}

static uint8_t	 bits[64];

static void
body(struct fz_in *in, struct up_status_body *b)
{
	size_t	 i, nb;

	memset(b, 0, sizeof(*b));
	b->held = in_u16(in);
	b->first_missing = in_u16(in);
	b->nbits = in_u8(in);
	nb = ((size_t)b->nbits + 7) / 8;
	for (i = 0; i < nb; i++)
		bits[i] = in_u8(in);
	b->bits = bits;
}

static void
node_send(struct fz_node *k, const struct up_msg *m)
{
	uint8_t	 f[UP_FRAME_MAX];
	int	 n;

	if ((n = up_encode(m, f, sizeof(f))) > 0)
		tp_mem_node_send(k->rx, f, (size_t)n);
}

static void
op_node(struct fz_in *in, uint8_t op)
{
	static const char *const versions[] = { "1.1.0", "1.0.0", "", "9" };
	struct fz_node	*k = &F.n[in_u8(in) % FZ_NODES];
	struct up_msg	 m;
	uint8_t		 v;

	memset(&m, 0, sizeof(m));
	m.session = sess_pick(in_u8(in));
	switch (op) {
	case 0:
		m.type = UP_T_ACCEPT;
		m.u.accept.node_id = k->id;
		v = in_u8(in);
		m.u.accept.code = v < 128 ? UP_R_INITIAL : v < 160 ?
		    UP_R_BUSY : v < 176 ? UP_R_ALREADY : v % 21;
		body(in, &m.u.accept.st);
		break;
	case 1:
		m.type = UP_T_STATUS;
		m.u.status.node_id = k->id;
		m.u.status.state = in_u8(in) % 7;
		body(in, &m.u.status.st);
		break;
	case 2:
		m.type = UP_T_RESULT;
		m.u.result.node_id = k->id;
		v = in_u8(in);
		m.u.result.state = v % 4 == 0 ? UP_NS_VERIFIED : v % 4 == 1 ?
		    UP_NS_UPDATED : v % 4 == 2 ? UP_NS_FAILED : v % 7;
		m.u.result.result = in_u8(in) % 21;
		strcpy(m.u.result.component, "app");
		strcpy(m.u.result.version, versions[in_u8(in) % 4]);
		break;
	case 3:
		m.type = UP_T_ABORT;
		m.u.target.node_id = k->id;
		m.u.target.reason = in_u8(in) % 21;
		break;
	default:
		m.type = UP_T_ANNOUNCE;
		m.u.announce.node_id = k->id;
		strcpy(m.u.announce.hw, "hw-a");
		m.u.announce.max_frame = UP_FRAME_MAX;
		m.u.announce.battery = UP_BATTERY_UNKNOWN;
		m.u.announce.rssi_dbm = UP_RSSI_UNKNOWN;
		m.u.announce.snr_db = UP_SNR_UNKNOWN;
		m.u.announce.session = m.session;
		m.session = 0;
		m.u.announce.state = in_u8(in) % 7;
		m.u.announce.ncomp = 1;
		strcpy(m.u.announce.comp[0].name, "app");
		strcpy(m.u.announce.comp[0].version, "1.0.0");
		break;
	}
	node_send(k, &m);
}

static void
op_daemon(struct fz_in *in)
{
	uint8_t		 a = in_u8(in);
	struct fz_node	*k = &F.n[in_u8(in) % FZ_NODES];
	uint8_t		 code = in_u8(in) % 21;

	F.in_daemon = true;
	switch (a % 8) {
	case 0:
		if (k->m != NULL) {
			eng_member_cancel(k->m, code, (code & 1) != 0);
			if (ENG_M_FINAL(fz_state(k->m)) &&
			    !ENG_M_FINAL(k->state))
				k->own_final = false;
			k->state = fz_state(k->m);
		}
		break;
	case 1:
		if (k->m != NULL) {
			eng_member_restart(k->m);
			k->state = ENG_M_PENDING;
			k->own_final = false;
		}
		break;
	case 2:
		if (k->m != NULL) {
			eng_member_remove(k->m);
			k->m = NULL;
		}
		break;
	case 3:
		if (k->m == NULL && k - F.n != FZ_ELSEWHERE) {
			if (fz_add(k, NULL, false) == NULL)
				abort();
			eng_session_poke(F.s);
		}
		break;
	case 4:
		if (k->m != NULL)
			eng_member_set_hold(k->m, (code & 1) != 0);
		break;
	case 5:
		/* The package grows (streaming), or completes. */
		F.limit = F.limit + 64 * (code + 1) > FZ_PKG ? FZ_PKG :
		    F.limit + 64 * (code + 1);
		eng_session_poke(F.s);
		break;
	case 6:
		if (k->m != NULL) {
			struct tp_addr	 ad;

			memset(&ad, 0, sizeof(ad));
			ad.len = 1;
			ad.b[0] = (uint8_t)(k - F.n + 1);
			eng_member_set_addr(k->m, &ad, UP_FRAME_MAX);
		}
		break;
	default:
		eng_link_abort(F.l, FZ_SID, k->id, NULL, UP_R_ABORTED);
		break;
	}
	F.in_daemon = false;
	fz_counts();
}

/* ------------------------------------------------------------------ */

static void
fz_setup(uint8_t hdr)
{
	struct eng_clock	 clock;
	struct eng_cb		 cb;
	struct eng_params	 p;
	struct tp_mem_params	 mp;
	struct tp_conf		 conf;
	struct eng_session_conf	 sc;
	struct eng_source	 src;
	struct up_offer		 offer;
	char			*cause = NULL;
	int			 i;

	memset(&F, 0, sizeof(F));
	tclock_init(&F.tc, 1000000);
	ttimer_init(&F.eng_t, eng_timer, NULL);
	for (i = 0; i < FZ_PKG; i++)
		F.pkg[i] = (uint8_t)(i * 13 + 7);
	F.limit = (hdr & 8) ? 5 * 64 : FZ_PKG;
	F.revive_budget = (hdr >> 1) & 3;

	memset(&mp, 0, sizeof(mp));
	mp.caps.mtu = UP_FRAME_MAX;
	mp.caps.flags = TP_CAP_BROADCAST | TP_CAP_UNICAST;
	mp.caps.bitrate_bps = 1000000;
	mp.caps.frame_overhead = 42;
	mp.caps.tx_queue = 64;
	F.med = tp_mem_medium_new(base, "fz0", &mp);
	tp_mem_set_clock(F.med, &F.tc);

	memset(&p, 0, sizeof(p));
	p.block_size = 64;
	p.rate_pct = 100;
	p.offer_window_ms = 60;
	p.offer_repeats = 3;
	p.status_window_ms = 40;
	p.max_rounds = 3;
	p.activate_delay_ms = 10;
	p.result_timeout_s = 3;
	p.session_deadline_s = 600;
	p.node_silence_ms = 2000;
	p.fec = (hdr & 16) != 0;
	p.fec_k = 4;
	p.fec_proactive = ENG_FEC_AUTO;
	p.xor_repair = (hdr & 32) != 0;

	memset(&clock, 0, sizeof(clock));
	clock.now_us = clk_now;
	clock.arm = clk_arm;
	memset(&cb, 0, sizeof(cb));
	cb.member = cb_member;
	cb.member_final = cb_member_final;
	cb.member_revive = cb_member_revive;
	cb.member_offer = cb_member_offer;
	cb.stranger = cb_stranger;
	cb.session_save = cb_session_save;
	cb.session_settled = cb_session_settled;
	cb.session_error = cb_session_error;
	cb.announce = cb_announce;
	cb.unknown_session = cb_unknown_session;
	F.e = eng_new(base, &clock, &cb, &p);
	memset(&conf, 0, sizeof(conf));
	conf.name = "fz0";
	conf.options = tp_mem_ops.options;
	if ((F.l = eng_link_open(F.e, "fz0", &tp_mem_ops, &conf, NULL,
	    &cause)) == NULL)
		abort();

	memset(&offer, 0, sizeof(offer));
	strcpy(offer.component, "app");
	strcpy(offer.to_version, "1.1.0");
	offer.kind = UP_KIND_FULL;
	offer.size = offer.image_size = FZ_PKG;
	memset(&sc, 0, sizeof(sc));
	sc.id = FZ_SID;
	sc.link = "fz0";
	sc.offer = &offer;
	if ((F.s = eng_session_new(F.e, &sc, NULL, &cause)) == NULL)
		abort();

	for (i = 0; i < FZ_NODES; i++) {
		F.n[i].id = 0x100 + (uint64_t)i;
		F.n[i].rx = tp_mem_node_new(F.med, (uint8_t)(i + 1), 0,
		    (uint32_t)i, node_rx, &F.n[i]);
	}
	F.in_daemon = true;
	for (i = 0; i < FZ_MEMBERS; i++) {
		struct tp_addr	 ad;

		memset(&ad, 0, sizeof(ad));
		ad.len = 1;
		ad.b[0] = (uint8_t)(i + 1);
		if (fz_add(&F.n[i], &ad, i == 4 && (hdr & 1)) == NULL)
			abort();
	}
	memset(&src, 0, sizeof(src));
	src.read = src_read;
	src.limit = src_limit;
	src.complete = src_complete;
	eng_session_start(F.s, &src);
	F.in_daemon = false;
}

static void
fz_teardown(void)
{
	int	 i;

	eng_free(F.e);
	for (i = 0; i < FZ_NODES; i++)
		tp_mem_node_free(F.n[i].rx);
	tp_mem_medium_free(F.med);
	/* Nothing may be left for the next input. */
	while (event_base_get_num_events(base, EVENT_BASE_COUNT_ACTIVE) > 0)
		event_base_loop(base, EVLOOP_NONBLOCK);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz_in	 in = { data, size, 0 };
	struct fz_node	*k;
	uint8_t		 op, len, f[256];
	int		 i;

	up_log_set_hook(fz_quiet);
	if (base == NULL && (base = event_base_new()) == NULL)
		abort();
	fz_setup(in_u8(&in));
	fz_run(0);
	while (in.off < in.len) {
		op = in_u8(&in);
		switch (op % 8) {
		case 5:
			fz_run(in_u16(&in));
			break;
		case 6:
			op_daemon(&in);
			break;
		case 7:
			k = &F.n[in_u8(&in) % FZ_NODES];
			len = in_u8(&in);
			for (i = 0; i < len; i++)
				f[i] = in_u8(&in);
			tp_mem_node_send(k->rx, f, len);
			break;
		default:
			op_node(&in, op % 8);
			break;
		}
		fz_run(0);
	}
	/* The nodes fall silent for good: everything ends. */
	F.limit = FZ_PKG;
	F.in_daemon = true;
	eng_session_poke(F.s);
	F.in_daemon = false;
	for (i = 0; i < 8; i++)
		fz_run(600 * 1000);
	for (i = 0; i < FZ_NODES; i++) {
		struct eng_member_info	 mi;

		if ((k = &F.n[i])->m == NULL)
			continue;
		eng_member_info(k->m, &mi);
		if (!ENG_M_FINAL(mi.state) &&
		    !(mi.hold && mi.state == ENG_M_VERIFIED))
			abort();
	}
	fz_teardown();
	return (0);
}
