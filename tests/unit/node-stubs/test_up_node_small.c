/*
 * test_up_node_small.c: the node engine (up/up_node.c) on small links,
 * in the compact form of docs/up-protocol.md §11.
 *
 * A node on a 51-byte LoRa-like link and one on a 20-byte BLE-like link
 * each complete a whole session with loss both ways, against a small
 * gateway written here from up/'s gateway side only (compact encoding,
 * segmentation and reassembly, the status aggregator, the parity
 * encoder): the segmented OFFER and ANNOUNCE, compact DATA, parity
 * sized from count lists or retransmission from run lists, VERIFY,
 * ACTIVATE, the reboot and the acknowledged RESULT.  No frame the node
 * sends may exceed its uplink MTU.  Around that: reply slots (200 nodes
 * booting at once, OFFER and VERIFY answers), the tag rules, the CRC-16
 * rule of a weak link, the integrity refetch, the only-missing flag, and
 * a saved state of the previous format.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "up.h"

#define NODE_ID		0x1122334455667788ULL
#define SESSION		0x5eed0001u
#define SLOT_CAP	(16 * 1024)
#define BITMAP_CAP	512
#define PKG_SIZE	3000
#define QMAX		512
#define ROWS_CAP	(4 * 32 * 47)	/* row store: 32 rows of 47 B a slot */

/* ------------------------------------------------------------------ */
/* The fake node port                                                 */

struct fake {
	uint32_t	 rnd;		/* xorshift32 state */
	uint16_t	 mtu;		/* uplink: every frame must fit */
	uint8_t		 state[UP_NODE_STATE_MAX];
	size_t		 state_len;
	uint8_t		 bm[BITMAP_CAP];
	size_t		 bm_len;
	bool		 saved;
	uint8_t		 slot[SLOT_CAP];
	int		 nactivate;
	EVP_MD_CTX	*sha;
	uint32_t	 sent_bytes;
	uint32_t	 sent_frames;
	/* The parity row store (up_port.rows_*), ROWS_CAP bytes or none. */
	uint32_t	 rows_cap;
	uint8_t		 rows[ROWS_CAP];
	uint8_t		 rows_valid[ROWS_CAP];	/* written since boot */
	uint32_t	 rows_writes;
	uint32_t	 rows_reads;
};

/* Frames in flight, node -> gateway. */
struct qf {
	int		 node;
	uint32_t	 at;
	uint16_t	 len;
	uint8_t		 b[UP_FRAME_MAX];
};

static uint32_t		 now;
static struct qf	 q[QMAX];
static int		 nq;
static struct fake	 F;
static struct up_node	 N;
static uint8_t		 bitmap_buf[BITMAP_CAP];
static uint8_t		 image[PKG_SIZE];
static uint8_t		 fec_ws[96 * 1024] __attribute__((aligned(16)));

static uint32_t
xs(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return (*s);
}

static int
f_send(void *ctx, const uint8_t *frame, size_t len)
{
	struct fake	*f = ctx;

	/* The node never sends more than its uplink takes (§11.1). */
	if (f->mtu != 0 && len > f->mtu)
		fail_msg("node sent %zu bytes on a %u-byte uplink", len,
		    f->mtu);
	assert_true(nq < QMAX);
	q[nq].node = f == &F ? 0 : 1;
	q[nq].at = now;
	q[nq].len = (uint16_t)len;
	memcpy(q[nq].b, frame, len);
	nq++;
	f->sent_bytes += (uint32_t)len;
	f->sent_frames++;
	return (0);
}

static uint32_t
f_now(void *ctx)
{
	(void)ctx;
	return (now);
}

static uint32_t
f_random(void *ctx)
{
	return (xs(&((struct fake *)ctx)->rnd));
}

static int
f_save(void *ctx, const uint8_t *state, size_t state_len,
    const uint8_t *bm, size_t bm_len)
{
	struct fake	*f = ctx;

	assert_true(state_len <= sizeof(f->state) && bm_len <= sizeof(f->bm));
	memcpy(f->state, state, state_len);
	f->state_len = state_len;
	memcpy(f->bm, bm, bm_len);
	f->bm_len = bm_len;
	f->saved = true;
	return (0);
}

static int
f_load(void *ctx, uint8_t *state, size_t state_cap, size_t *state_len,
    uint8_t *bm, size_t bm_cap, size_t *bm_len)
{
	struct fake	*f = ctx;

	if (!f->saved || f->state_len > state_cap || f->bm_len > bm_cap)
		return (-1);
	memcpy(state, f->state, f->state_len);
	*state_len = f->state_len;
	memcpy(bm, f->bm, f->bm_len);
	*bm_len = f->bm_len;
	return (0);
}

static uint32_t
f_slot_capacity(void *ctx)
{
	(void)ctx;
	return (SLOT_CAP);
}

static int
f_slot_erase(void *ctx, uint32_t off, uint32_t len)
{
	assert_true(off + len <= SLOT_CAP);
	memset(((struct fake *)ctx)->slot + off, 0xff, len);
	return (0);
}

static int
f_slot_write(void *ctx, uint32_t off, const uint8_t *p, size_t n)
{
	assert_true(off + n <= SLOT_CAP);
	memcpy(((struct fake *)ctx)->slot + off, p, n);
	return (0);
}

static int
f_slot_read(void *ctx, uint32_t off, uint8_t *p, size_t n)
{
	assert_true(off + n <= SLOT_CAP);
	memcpy(p, ((struct fake *)ctx)->slot + off, n);
	return (0);
}

/* The engine hashes the slot itself (docs/up-node-engine.md). */
static int
f_sha_begin(void *ctx)
{
	struct fake	*f = ctx;

	if (f->sha == NULL)
		f->sha = EVP_MD_CTX_new();
	return (EVP_DigestInit_ex(f->sha, EVP_sha256(), NULL) == 1 ? 0 : -1);
}

static int
f_sha_update(void *ctx, const uint8_t *p, size_t n)
{
	return (EVP_DigestUpdate(((struct fake *)ctx)->sha, p, n) == 1 ? 0 :
	    -1);
}

static int
f_sha_end(void *ctx, uint8_t md[32])
{
	unsigned int	 n = 32;

	return (EVP_DigestFinal_ex(((struct fake *)ctx)->sha, md, &n) == 1 ?
	    0 : -1);
}

static int
f_activate(void *ctx, const struct up_offer *o)
{
	(void)o;
	((struct fake *)ctx)->nactivate++;
	return (0);
}

static uint32_t
f_rows_capacity(void *ctx)
{
	return (((struct fake *)ctx)->rows_cap);
}

static int
f_rows_read(void *ctx, uint32_t off, uint8_t *p, size_t n)
{
	struct fake	*f = ctx;
	size_t		 i;

	assert_true(off + n <= f->rows_cap);
	/* Only what the engine wrote since it started (up.h). */
	for (i = 0; i < n; i++)
		assert_int_equal(f->rows_valid[off + i], 1);
	memcpy(p, f->rows + off, n);
	f->rows_reads++;
	return (0);
}

static int
f_rows_write(void *ctx, uint32_t off, const uint8_t *p, size_t n)
{
	struct fake	*f = ctx;

	assert_true(off + n <= f->rows_cap);
	memcpy(f->rows + off, p, n);
	memset(f->rows_valid + off, 1, n);
	f->rows_writes++;
	return (0);
}

static const struct up_port fake_port = {
	.send = f_send,
	.now_ms = f_now,
	.random = f_random,
	.save = f_save,
	.load = f_load,
	.slot_capacity = f_slot_capacity,
	.slot_erase = f_slot_erase,
	.slot_write = f_slot_write,
	.slot_read = f_slot_read,
	.sha256_begin = f_sha_begin,
	.sha256_update = f_sha_update,
	.sha256_end = f_sha_end,
	.activate = f_activate,
	.rows_capacity = f_rows_capacity,
	.rows_read = f_rows_read,
	.rows_write = f_rows_write
};

static uint8_t		 image_sha[32];

static struct up_node_link link_cfg;
static bool		 with_fec;
static size_t		 fec_ws_len;	/* of fec_ws the node gets */
static int		 fec_budget;	/* rows in RAM, -1: the default */

static void
info_fill(struct up_node_info *info, const char *version, uint16_t mtu)
{
	memset(info, 0, sizeof(*info));
	info->node_id = NODE_ID;
	strcpy(info->hw, "tiny-1");
	info->max_frame = mtu;
	info->battery = UP_BATTERY_UNKNOWN;
	info->rssi_dbm = UP_RSSI_UNKNOWN;
	info->snr_db = UP_SNR_UNKNOWN;
	info->ncomp = 1;
	strcpy(info->comp[0].name, "app");
	strcpy(info->comp[0].version, version);
}

/* (Re)boots the node from what F saved: a power cycle. */
static void
boot(const char *version)
{
	struct up_node_info info;

	info_fill(&info, version, F.mtu);
	memset(&N, 0x5a, sizeof(N));
	up_node_init(&N, &fake_port, &F, &info, bitmap_buf,
	    sizeof(bitmap_buf));
	up_node_set_link(&N, &link_cfg);
	if (with_fec)
		up_node_set_fec_workspace(&N, fec_ws, fec_ws_len);
	if (fec_budget >= 0)
		up_node_set_fec_rows(&N, (uint16_t)fec_budget);
	/* A power cut: the row store holds stale rows, never to be read. */
	memset(F.rows, 0xa5, sizeof(F.rows));
	memset(F.rows_valid, 0, sizeof(F.rows_valid));
	assert_int_equal(up_node_start(&N, NULL), UP_OK);
}

static void
node_setup(uint16_t mtu, uint8_t flags, bool fec)
{
	EVP_MD_CTX	*sha = F.sha;
	unsigned int	 n = 32;
	size_t		 i;

	memset(&F, 0, sizeof(F));
	F.sha = sha;
	F.rnd = 0x12345678;
	F.mtu = mtu;
	now = 1000;
	nq = 0;
	memset(&link_cfg, 0, sizeof(link_cfg));
	link_cfg.uplink_mtu = mtu;
	link_cfg.flags = flags;
	with_fec = fec;
	fec_ws_len = sizeof(fec_ws);
	fec_budget = -1;
	for (i = 0; i < sizeof(image); i++)
		image[i] = (uint8_t)(i * 13 + i / 7);
	assert_int_equal(EVP_Digest(image, sizeof(image), image_sha, &n,
	    EVP_sha256(), NULL), 1);
}

/* ------------------------------------------------------------------ */
/* A small gateway, from up/'s gateway side                            */

struct gw {
	uint16_t	 mtu;		/* downlink */
	uint8_t		 cflags;	/* on every compact frame */
	uint32_t	 loss_pct;	/* each way */
	uint32_t	 rnd;
	uint8_t		 mtag;
	/* The session. */
	uint8_t		 tag;
	uint8_t		 k;
	uint16_t	 bs;
	uint32_t	 nblocks;
	uint16_t	 row[64];	/* next parity row per group */
	/* What came back. */
	struct up_seg_rx rx;
	uint8_t		 rxbuf[1024];
	bool		 announced;
	struct up_cx	 ann_cx;
	int		 accepts;
	uint8_t		 acc_caps;
	int		 statuses;
	struct up_status_body st;	/* the last one; list copied */
	uint8_t		 st_list[UP_FRAME_MAX];
	uint8_t		 st_bits[UP_FRAME_MAX];
	int		 results;
	uint8_t		 res_state, res_result;
	char		 res_version[UP_VER_MAX + 1];
	uint32_t	 uplink_bytes;
	uint32_t	 frames_down;
} G;

static bool
lost(void)
{
	return (xs(&G.rnd) % 100 < G.loss_pct);
}

/* One frame over the air to the node, maybe lost. */
static void
down(const uint8_t *b, size_t len)
{
	assert_true(len <= G.mtu);
	G.frames_down++;
	if (lost())
		return;
	(void)up_node_input(&N, b, len);
}

/* A compact message, in segments when it does not fit. */
static void
down_msg(struct up_msg *m, bool new_tag)
{
	uint8_t		 f[UP_FRAME_MAX], s[UP_FRAME_MAX];
	int		 len, n, i, sl;

	m->form = UP_FORM_COMPACT;
	m->cx.cflags = G.cflags;
	len = up_encode(m, f, sizeof(f));
	assert_true(len > 0);
	if ((size_t)len <= G.mtu) {
		down(f, (size_t)len);
		return;
	}
	m->cx.cflags |= UP_CF_CRC;
	len = up_encode(m, f, sizeof(f));
	if (new_tag)
		G.mtag++;
	n = up_seg_count((size_t)len, G.mtu, G.cflags);
	assert_true(n >= 2);
	for (i = 0; i < n; i++) {
		sl = up_seg_build(f, (size_t)len, G.mtu, G.cflags, G.mtag,
		    (uint8_t)i, s, sizeof(s));
		assert_true(sl > 0);
		down(s, (size_t)sl);
	}
}

static void
gw_handle(struct up_msg *m)
{
	const struct up_status_body *st = NULL;

	switch (m->type) {
	case UP_T_ANNOUNCE:
		assert_int_equal(m->form, UP_FORM_COMPACT);
		assert_true(m->u.announce.node_id == NODE_ID);
		G.announced = true;
		G.ann_cx = m->cx;
		break;
	case UP_T_ACCEPT:
		assert_int_equal(m->u.accept.code, UP_R_INITIAL);
		G.accepts++;
		G.acc_caps = m->cx.caps;
		st = &m->u.accept.st;
		break;
	case UP_T_STATUS:
		G.statuses++;
		st = &m->u.status.st;
		break;
	case UP_T_RESULT:
		G.results++;
		G.res_state = m->u.result.state;
		G.res_result = m->u.result.result;
		strcpy(G.res_version, m->u.result.version);
		break;
	default:
		fail_msg("gateway got type %u", m->type);
	}
	if (st != NULL) {
		/* Keep it past the frame buffer it borrows from. */
		G.st = *st;
		if (st->list_len > 0)
			memcpy(G.st_list, st->list, st->list_len);
		G.st.list = G.st_list;
		if (st->bits != NULL)
			memcpy(G.st_bits, st->bits, up_bitmap_bytes(st->nbits));
		G.st.bits = G.st_bits;
		assert_int_equal(up_status_check(&G.st, G.nblocks,
		    G.k != 0 ? up_fec_ngroups(G.nblocks, G.k) : 0), UP_OK);
	}
}

/* Everything the node sent: over the air (maybe lost), decoded. */
static void
gw_drain(void)
{
	struct up_msg	 m;
	int		 i, len;

	for (i = 0; i < nq; i++) {
		G.uplink_bytes += q[i].len;
		/* On a weak link the node's compact frames carry the CRC. */
		if ((G.cflags & UP_CF_CRC) != 0 && (q[i].b[0] & UP_C_MARK))
			assert_int_equal(q[i].b[0] & UP_CF_CRC, UP_CF_CRC);
		if (lost())
			continue;
		assert_int_equal(up_decode_any(q[i].b, q[i].len, &m), UP_OK);
		if (m.type == UP_T_SEG) {
			assert_true(m.u.seg.from_node);
			len = up_seg_rx_put(&G.rx, &m.u.seg);
			assert_true(len >= 0);
			if (len == 0)
				continue;
			assert_int_equal(up_cdecode(G.rxbuf, (size_t)len, &m),
			    UP_OK);
		}
		gw_handle(&m);
	}
	nq = 0;
}

/* Lets `ms' pass in steps of 50 ms, the node ticking; no drain. */
static void
step(uint32_t ms)
{
	uint32_t	 end = now + ms;

	while (now < end) {
		now += 50;
		up_node_tick(&N);
	}
}

/* The same, then the gateway reads what the node sent. */
static void
run(uint32_t ms)
{
	step(ms);
	gw_drain();
}

static void
gw_init(uint16_t mtu, uint8_t cflags, uint32_t loss)
{
	memset(&G, 0, sizeof(G));
	G.mtu = mtu;
	G.cflags = cflags;
	G.loss_pct = loss;
	G.rnd = 0xdeadbeef;
	G.mtag = 200;
	up_seg_rx_init(&G.rx, G.rxbuf, sizeof(G.rxbuf));
}

static void
gw_offer_of(const char *component, uint32_t session, uint8_t tag,
    uint8_t k, bool new_tag)
{
	struct up_msg	 m;
	struct up_offer	*o = &m.u.offer;

	memset(&m, 0, sizeof(m));
	m.type = UP_T_OFFER;
	m.session = session;
	m.cx.tag = tag;
	m.cx.fec_k = k;
	m.cx.slots = 8;
	m.cx.slot_ms = 300;
	strcpy(o->component, component);
	strcpy(o->to_version, "1.1.0");
	o->kind = UP_KIND_FULL;
	o->size = PKG_SIZE;
	o->image_size = PKG_SIZE;
	memcpy(o->sha256, image_sha, 32);
	memcpy(o->image_sha256, image_sha, 32);
	o->sig_alg = UP_SIG_ED25519;
	o->sig_len = 64;
	memset(o->sig, 0x5c, 64);
	o->block_size = G.bs;
	o->nblocks = G.nblocks;
	o->deadline_s = 3600;
	G.tag = tag;
	G.k = k;
	down_msg(&m, new_tag);
}

static void
gw_offer(uint32_t session, uint8_t tag, uint8_t k, bool new_tag)
{
	gw_offer_of("app", session, tag, k, new_tag);
}

static void
gw_data(uint32_t i)
{
	uint8_t		 f[UP_FRAME_MAX];
	uint32_t	 off = i * G.bs;
	uint16_t	 len = (uint16_t)(PKG_SIZE - off < G.bs ?
			    PKG_SIZE - off : G.bs);
	int		 n;

	memcpy(f + up_cdata_off(i), image + off, len);
	n = up_cseal(f, sizeof(f), UP_T_DATA, G.cflags, G.tag, i, len);
	assert_true(n > 0);
	down(f, (size_t)n);
}

/*
 * Block i with its byte 7 flipped, sealed as the link seals (with the
 * CRC-16 when G.cflags asks for it): a tampered block the link's own
 * check passes.  The node hashes blocks as they arrive, so a block
 * bad on the wire, not one changed in its flash afterwards, is what
 * VERIFY must catch.
 */
static void
gw_data_tampered(uint32_t i)
{
	uint8_t		 f[UP_FRAME_MAX];
	uint32_t	 off = i * G.bs;
	uint16_t	 len = (uint16_t)(PKG_SIZE - off < G.bs ?
			    PKG_SIZE - off : G.bs);
	int		 n;

	memcpy(f + up_cdata_off(i), image + off, len);
	f[up_cdata_off(i) + 7] ^= 1;
	n = up_cseal(f, sizeof(f), UP_T_DATA, G.cflags, G.tag, i, len);
	assert_true(n > 0);
	down(f, (size_t)n);
}

struct gw_grp {
	uint32_t	 first;
};

static void	 small_after_parity(void);

static int
gw_read(void *ctx, uint16_t i, uint8_t *buf, size_t blen)
{
	struct gw_grp	*g = ctx;
	uint32_t	 off = (g->first + i) * G.bs;
	size_t		 len = PKG_SIZE - off < blen ? PKG_SIZE - off : blen;

	memset(buf, 0, blen);
	memcpy(buf, image + off, len);
	return (0);
}

/* Fresh parity row of group g (§11.5.6: its code, no group header). */
static void
gw_parity(uint32_t g)
{
	uint8_t		 f[UP_FRAME_MAX], bits[32], scratch[UP_FRAME_MAX];
	struct gw_grp	 grp;
	uint32_t	 code, ng = up_fec_ngroups(G.nblocks, G.k);
	uint16_t	 m = up_fec_group_len(G.nblocks, G.k, g);
	int		 n;

	grp.first = g * G.k;
	G.row[g]++;
	assert_int_equal(up_cparity_code(G.row[g], g, ng, &code), UP_OK);
	assert_int_equal(up_fec_encode(G.row[g], m, f + up_cdata_off(code),
	    G.bs, bits, scratch, gw_read, &grp), UP_OK);
	n = up_cseal(f, sizeof(f), UP_T_PARITY, G.cflags, G.tag, code, G.bs);
	assert_true(n > 0);
	down(f, (size_t)n);
	small_after_parity();
}

static void
gw_target(uint8_t type, uint16_t slots, uint8_t req)
{
	struct up_msg	 m;

	memset(&m, 0, sizeof(m));
	m.type = type;
	m.session = SESSION;
	m.cx.slots = slots;
	m.cx.slot_ms = 300;
	m.cx.req = req;
	down_msg(&m, true);
}

static uint8_t	 agg_bits[BITMAP_CAP], agg_need[64];

/*
 * A node short of RAM (test_session_row_budget): its FEC workspace and
 * row budget, its row store, and a power cut while rows are in it.
 */
static struct {
	bool		 on;
	size_t		 ws_len;
	int		 budget;
	uint32_t	 store;
	bool		 cut;		/* power cut with rows in the store */
	bool		 cut_done;
	uint16_t	 most_rows;	/* most rows one decoder held */
	unsigned int	 nslots;	/* the workspace as carved */
	size_t		 ram_rows;	/* rows in RAM per decoder */
	unsigned int	 store_rows;	/* and in the store */
} small;

/* Rows the node's decoders hold now, the most of any one. */
static uint16_t
node_rows_held(void)
{
	unsigned int	 s;
	uint16_t	 r, most = 0;

	for (s = 0; s < N.fec_nslots; s++)
		if ((N.fec_inuse & (1u << s)) != 0 &&
		    (r = up_fec_dec_rows(&N.fec_dec[s])) > most)
			most = r;
	return (most);
}

/* After each PARITY frame: watch the rows, maybe cut the power. */
static void
small_after_parity(void)
{
	uint16_t	 r;

	if (!small.on)
		return;
	r = node_rows_held();
	small.nslots = N.fec_nslots;
	small.ram_rows = N.fec_rows_len / N.fec_blen;
	small.store_rows = N.fec_store_rows;
	if (r > small.most_rows)
		small.most_rows = r;
	if (small.cut && !small.cut_done && r >= small.budget + 2) {
		/* Rows in the store; RAM gone, flash as last saved. */
		small.cut_done = true;
		print_message("power cut with %u rows held (%d in RAM)\n",
		    (unsigned)r, small.budget);
		boot("1.0.0");
	}
}

/*
 * One whole session over the link; returns the repair rounds it took.
 */
static int
session(uint16_t mtu, uint8_t link_flags, uint8_t cflags, bool fec,
    uint8_t k, uint32_t loss)
{
	struct up_status_agg agg;
	struct up_msg	 m;
	uint32_t	 i, g, ng;
	int		 rounds = 0, tries;

	node_setup(mtu, link_flags, fec);
	if (small.on) {
		fec_ws_len = small.ws_len;
		fec_budget = small.budget;
		F.rows_cap = small.store;
	}
	link_cfg.slots = 16;
	link_cfg.slot_ms = 200;
	gw_init(mtu, cflags, loss);
	boot("1.0.0");
	G.bs = up_cblock_size(PKG_SIZE, mtu, cflags);
	G.nblocks = up_nblocks(PKG_SIZE, G.bs);
	assert_true(G.nblocks <= BITMAP_CAP * 8);

	/* The boot ANNOUNCE, in a random slot, segmented. */
	for (tries = 0; !G.announced && tries < 10; tries++) {
		run(5000);
		if (!G.announced) {
			memset(&m, 0, sizeof(m));
			m.type = UP_T_DISCOVER;
			m.cx.slots = 4;
			m.cx.slot_ms = 500;
			down_msg(&m, true);
		}
	}
	assert_true(G.announced);
	/* An ANNOUNCE never fits 20 bytes: it went in segments (this
	 * one, 48 bytes, fits 51). */
	assert_true(mtu > 20 || N.seg_sent >= 1);
	assert_int_equal(G.ann_cx.uplink_mtu, mtu);
	assert_int_equal(G.ann_cx.fec_kmax, fec ? UP_FEC_K_MAX : 0);

	/* The OFFER, repeated 3 times under one message tag. */
	for (tries = 0; G.accepts == 0 && tries < 10; tries++) {
		for (i = 0; i < 3; i++)
			gw_offer(SESSION, 7, k, i == 0);
		run(8 * 300 + 500);
	}
	assert_true(G.accepts > 0);
	assert_int_equal((G.acc_caps & UP_ACAP_PARITY) != 0, fec && k != 0);

	for (i = 0; i < G.nblocks; i++)
		gw_data(i);
	run(200);

	/* Repair rounds: nodes still missing answer, in slots. */
	ng = k != 0 ? up_fec_ngroups(G.nblocks, k) : 1;
	while (up_node_get_state(&N, NULL, NULL) == UP_NS_RECEIVING) {
		assert_true(++rounds < 40);
		G.statuses = 0;
		gw_target(UP_T_STATUS_REQ, 4, UP_SQ_MISSING |
		    (fec ? UP_SB_COUNTS : UP_SB_RUNS));
		run(4 * 300 + 200);
		if (G.statuses == 0)
			continue;	/* lost, or silent: ask again */
		assert_int_equal(up_status_agg_init(&agg, G.nblocks, k,
		    agg_bits, sizeof(agg_bits), agg_need, sizeof(agg_need)),
		    UP_OK);
		assert_int_equal(up_status_agg_add(&agg, &G.st), UP_OK);
		if (fec) {
			assert_int_equal(G.st.form, UP_SB_COUNTS);
			/* Fresh rows: what it needs, and two more. */
			for (g = 0; g < ng; g++)
				for (i = 0; agg_need[g] > 0 &&
				    i < agg_need[g] + 2u; i++)
					gw_parity(g);
		} else {
			assert_int_equal(G.st.form, UP_SB_RUNS);
			for (i = 0; i < G.nblocks; i++)
				if (up_bitmap_get(&agg.missing, i))
					gw_data(i);
		}
		run(200);
	}

	/* VERIFY in slots, until the RESULT comes through. */
	for (tries = 0; G.results == 0; tries++) {
		assert_true(tries < 20);
		gw_target(UP_T_VERIFY, 4, 0);
		run(4 * 300 + 200);
	}
	assert_int_equal(G.res_state, UP_NS_VERIFIED);
	assert_memory_equal(F.slot, image, PKG_SIZE);

	/* ACTIVATE; the node switches, reboots into 1.1.0, reports. */
	for (tries = 0; F.nactivate == 0; tries++) {
		assert_true(tries < 20);
		memset(&m, 0, sizeof(m));
		m.type = UP_T_ACTIVATE;
		m.session = SESSION;
		m.u.activate.delay_ms = 100;
		down_msg(&m, true);
		run(300);
	}
	G.results = 0;
	boot("1.1.0");
	for (tries = 0; G.results == 0 || G.res_state != UP_NS_UPDATED;
	    tries++) {
		assert_true(tries < 20);
		run(2000);
	}
	assert_int_equal(G.res_result, UP_R_SUCCESS);
	assert_string_equal(G.res_version, "1.1.0");
	/* Acknowledged: the resends stop. */
	for (tries = 0; N.unacked; tries++) {
		assert_true(tries < 20);
		memset(&m, 0, sizeof(m));
		m.type = UP_T_RESULT_ACK;
		m.session = SESSION;
		m.u.target.node_id = NODE_ID;
		down_msg(&m, true);
		run(100);
	}
	G.results = 0;
	run(120000);
	assert_int_equal(G.results, 0);
	print_message("%u-byte link, %u %% loss: %u blocks of %u, %d repair "
	    "rounds, %u frames down, %u bytes up in %u frames\n",
	    (unsigned)mtu, (unsigned)loss, (unsigned)G.nblocks,
	    (unsigned)G.bs, rounds, (unsigned)G.frames_down,
	    (unsigned)F.sent_bytes, (unsigned)F.sent_frames);
	return (rounds);
}

/* ------------------------------------------------------------------ */
/* Whole sessions                                                      */

/* LoRa DR0: 51 bytes, its own CRC relied on, parity from count lists. */
static void
test_session_lora51(void **state)
{
	(void)session(51, UP_NL_COMPACT, 0, true, 16, 10);
	assert_int_equal(G.bs, 47);
}

/*
 * A node with little RAM (docs/up-node-engine.md, "Parity"): a workspace
 * of four decoders with room for 2 rows each, the row budget 2, and a
 * row store for 32 rows per decoder.  Groups of 32 at 25 % loss miss
 * about 8 blocks each: the rows beyond 2 go to the store, and the
 * package still decodes.  Then the same with a power cut while rows are
 * in the store: the node boots from what it saved, the stale rows are
 * never read (the fake port asserts it), and the session finishes with
 * the right image.
 */
static void
row_budget_session(bool cut)
{
	uint16_t	 bs = 47;

	memset(&small, 0, sizeof(small));
	small.on = true;
	small.budget = 2;
	small.ws_len = UP_NODE_FEC_SLOTS * (sizeof(struct up_fec_dec) +
	    2 * bs) + 2 * bs + 16;
	small.store = ROWS_CAP;
	small.cut = cut;
	(void)session(51, UP_NL_COMPACT, 0, true, 32, 25);
	assert_int_equal(G.bs, bs);
	/* RAM held 2 rows per decoder; the rest went to the store. */
	assert_int_equal(small.nslots, UP_NODE_FEC_SLOTS);
	assert_int_equal(small.ram_rows, 2);
	assert_int_equal(small.store_rows, 32);
	assert_true(small.most_rows > 2);
	assert_true(F.rows_writes > 0 && F.rows_reads > 0);
	if (cut)
		assert_true(small.cut_done);
	print_message("row budget 2: at most %u rows held, %u row store "
	    "writes, %u reads\n", (unsigned)small.most_rows,
	    (unsigned)F.rows_writes, (unsigned)F.rows_reads);
	small.on = false;
}

static void
test_session_row_budget(void **state)
{
	(void)state;
	row_budget_session(false);
}

static void
test_session_row_budget_cut(void **state)
{
	(void)state;
	row_budget_session(true);
}

/* The same link without a FEC workspace: run lists and DATA. */
static void
test_session_lora51_nofec(void **state)
{
	(void)session(51, UP_NL_COMPACT, 0, false, 16, 10);
}

/* BLE before the MTU exchange: 20 bytes, the link names the node. */
static void
test_session_ble20(void **state)
{
	(void)session(20, UP_NL_COMPACT | UP_NL_ADDRESSED, 0, false, 0, 10);
	assert_int_equal(G.bs, 16);
}

/* 20 bytes with parity too (groups of 8). */
static void
test_session_ble20_fec(void **state)
{
	(void)session(20, UP_NL_COMPACT | UP_NL_ADDRESSED, 0, true, 8, 5);
}

/* A weak link (1376.2-like): every compact frame carries a CRC-16. */
static void
test_session_crc_link(void **state)
{
	(void)session(51, UP_NL_COMPACT | UP_NL_CRC, UP_CF_CRC, true, 16, 5);
	assert_int_equal(G.bs, 45);
}

/* ------------------------------------------------------------------ */
/* Reply slots                                                         */

/*
 * A compact OFFER and VERIFY are answered in a random slot of their
 * schedule (8 slots of 300 ms here); full-form ones at once.
 */
static void
test_answers_in_slots(void **state)
{
	struct up_msg	 m;
	uint8_t		 f[UP_FRAME_MAX];
	uint32_t	 t0, d, seen = 0, i;
	int		 n;

	for (i = 0; i < 24; i++) {
		node_setup(51, UP_NL_COMPACT, false);
		F.rnd = 0x1000193u * (i + 7);
		gw_init(51, 0, 0);
		boot("1.0.0");
		run(100);
		G.bs = 47;
		G.nblocks = up_nblocks(PKG_SIZE, 47);
		nq = 0;
		t0 = now;
		gw_offer(SESSION, 7, 0, true);
		while (nq == 0 && now < t0 + 8 * 300)
			step(50);
		assert_int_equal(nq, 1);
		d = q[0].at - t0;
		assert_int_equal(d % 300, 0);
		seen |= 1u << (d / 300);
		assert_int_equal(up_cdecode(q[0].b, q[0].len, &m), UP_OK);
		assert_int_equal(m.type, UP_T_ACCEPT);
		gw_drain();
		/* The VERIFY of a complete node: RESULT in a slot too. */
		for (n = 0; n < (int)G.nblocks; n++)
			gw_data((uint32_t)n);
		run(100);
		t0 = now;
		gw_target(UP_T_VERIFY, 8, 0);
		while (nq == 0 && now < t0 + 8 * 300 + 50)
			step(50);
		assert_int_equal(nq, 1);
		/* The hash takes the first tick (50 ms), then the slot. */
		assert_true(q[0].at >= t0 + 50);
		assert_int_equal((q[0].at - t0 - 50) % 300, 0);
		seen |= 1u << (8 + (q[0].at - t0 - 50) / 300);
		gw_drain();
		assert_int_equal(G.res_state, UP_NS_VERIFIED);
	}
	/* Several slots were drawn, for both. */
	for (i = 0, n = 0; i < 8; i++)
		n += (seen >> i) & 1;
	assert_true(n >= 4);
	for (i = 8, n = 0; i < 16; i++)
		n += (seen >> i) & 1;
	assert_true(n >= 4);

	/* A full-form OFFER is answered at once, in the full form. */
	node_setup(0, 0, false);
	boot("1.0.0");
	nq = 0;
	memset(&m, 0, sizeof(m));
	m.type = UP_T_OFFER;
	m.session = SESSION;
	strcpy(m.u.offer.component, "app");
	strcpy(m.u.offer.to_version, "1.1.0");
	m.u.offer.size = PKG_SIZE;
	m.u.offer.image_size = PKG_SIZE;
	m.u.offer.block_size = 1000;
	m.u.offer.nblocks = 3;
	n = up_encode(&m, f, sizeof(f));
	assert_int_equal(up_node_input(&N, f, (size_t)n), UP_OK);
	assert_int_equal(nq, 1);
	assert_int_equal(q[0].b[0], UP_PROTO_VERSION);
}

/*
 * 200 meters regain mains power at once: their boot ANNOUNCEs spread
 * over the link's 600 slots of 100 ms (§11.9).
 */
#define NSPREAD		200
static struct {
	struct up_node	 n;
	struct fake	 f;
	uint8_t		 bm[8];
} spread[NSPREAD];
static uint32_t	 first_tx[NSPREAD];

static int
s_send(void *ctx, const uint8_t *frame, size_t len)
{
	struct fake	*f = ctx;
	size_t		 i = (size_t)((uint8_t *)f - (uint8_t *)&spread[0].f) /
			    sizeof(spread[0]);

	(void)frame;
	assert_true(len <= 51);
	if (first_tx[i] == 0)
		first_tx[i] = now;
	return (0);
}

static int
s_load(void *ctx, uint8_t *a, size_t b, size_t *c, uint8_t *d, size_t e,
    size_t *g)
{
	return (-1);
}

static int
s_save(void *ctx, const uint8_t *a, size_t b, const uint8_t *c, size_t d)
{
	return (0);
}

static const struct up_port spread_port = {
	.send = s_send,
	.now_ms = f_now,
	.random = f_random,
	.save = s_save,
	.load = s_load,
	.slot_capacity = f_slot_capacity
};

static void
test_boot_spread(void **state)
{
	struct up_node_info info;
	struct up_node_link link = { 51, UP_NL_COMPACT, 600, 100 };
	unsigned int	 per_slot[600], i, used = 0, worst = 0, at_once = 0;
	uint32_t	 t0, t;

	now = 5000;
	t0 = now;
	memset(first_tx, 0, sizeof(first_tx));
	info_fill(&info, "1.0.0", 51);
	for (i = 0; i < NSPREAD; i++) {
		memset(&spread[i].f, 0, sizeof(spread[i].f));
		spread[i].f.rnd = 0x9e3779b9u * (i + 1);
		info.node_id = 1000 + i;
		up_node_init(&spread[i].n, &spread_port, &spread[i].f, &info,
		    spread[i].bm, sizeof(spread[i].bm));
		up_node_set_link(&spread[i].n, &link);
		assert_int_equal(up_node_start(&spread[i].n, NULL), UP_OK);
		if (first_tx[i] != 0)
			at_once++;
	}
	for (t = 0; t <= 600 * 100; t += 10) {
		now = t0 + t;
		for (i = 0; i < NSPREAD; i++)
			up_node_tick(&spread[i].n);
	}
	memset(per_slot, 0, sizeof(per_slot));
	for (i = 0; i < NSPREAD; i++) {
		assert_true(first_tx[i] != 0);
		per_slot[(first_tx[i] - t0) / 100]++;
	}
	for (i = 0; i < 600; i++) {
		used += per_slot[i] > 0;
		if (per_slot[i] > worst)
			worst = per_slot[i];
	}
	print_message("200 boots: %u answered at once, %u slots used, at "
	    "most %u in one\n", at_once, used, worst);
	/* Slot 0 is "at once"; otherwise spread: no pile-up. */
	assert_true(at_once <= 5);
	assert_true(used >= 150);
	assert_true(worst <= 5);

	/* Without a boot schedule (the LAN) all 200 answer at once. */
	memset(first_tx, 0, sizeof(first_tx));
	link.slots = 0;
	for (i = 0, at_once = 0; i < NSPREAD; i++) {
		up_node_init(&spread[i].n, &spread_port, &spread[i].f, &info,
		    spread[i].bm, sizeof(spread[i].bm));
		up_node_set_link(&spread[i].n, &link);
		assert_int_equal(up_node_start(&spread[i].n, NULL), UP_OK);
		at_once += first_tx[i] != 0;
	}
	assert_int_equal(at_once, NSPREAD);
}

/* ------------------------------------------------------------------ */
/* Tags, CRC, integrity, only-missing                                 */

/* The node joins a compact session and holds blocks 0..held-1. */
static void
join(uint16_t mtu, uint8_t flags, uint8_t cflags, uint32_t held)
{
	uint32_t	 i;

	node_setup(mtu, flags, false);
	gw_init(mtu, cflags, 0);
	boot("1.0.0");
	G.bs = up_cblock_size(PKG_SIZE, mtu, cflags);
	G.nblocks = up_nblocks(PKG_SIZE, G.bs);
	gw_offer(SESSION, 7, 0, true);
	run(3000);
	assert_int_equal(G.accepts, 1);
	for (i = 0; i < held; i++)
		gw_data(i);
}

static void
test_tags(void **state)
{
	uint8_t		 f[64];
	int		 n;

	join(51, UP_NL_COMPACT, 0, 3);
	assert_int_equal(N.nheld, 3);
	/* Another tag: another session's block, ignored. */
	memcpy(f + 4, image + 3 * 47, 47);
	n = up_cseal(f, sizeof(f), UP_T_DATA, 0, 8, 3, 47);
	assert_int_equal(up_node_input(&N, f, (size_t)n), UP_OK);
	assert_int_equal(N.nheld, 3);
	/* Our tag: taken. */
	G.tag = 7;
	gw_data(3);
	assert_int_equal(N.nheld, 4);
	/* Tag 7 offered to another session (of another component, so
	 * this node stays silent): our binding goes ... */
	gw_offer_of("boot", SESSION + 1, 7, 0, true);
	assert_false(N.tag_bound);
	G.tag = 7;
	gw_data(4);
	assert_int_equal(N.nheld, 4);
	/* ... and an OFFER of our package binds its new tag: resumed. */
	gw_offer(SESSION + 2, 9, 0, true);
	run(3000);
	assert_true(N.tag_bound);
	assert_int_equal(N.tag, 9);
	assert_int_equal(N.session, SESSION + 2);
	G.tag = 9;
	gw_data(4);
	assert_int_equal(N.nheld, 5);
	/* The binding survives a reboot (persisted with the session). */
	(void)up_node_flush(&N);
	boot("1.0.0");
	assert_true(N.tag_bound && N.tag == 9 && N.compact);
	gw_data(5);
	assert_int_equal(N.nheld, 6);
	/* A stale session takes no block by tag (§11.4). */
	now += 3600u * 1000 + 1;
	gw_data(6);
	assert_int_equal(N.nheld, 6);
}

static void
test_weak_link_needs_crc(void **state)
{
	uint8_t		 f[64];
	int		 n;

	join(51, UP_NL_COMPACT | UP_NL_CRC, UP_CF_CRC, 0);
	/* Without the CRC-16 a compact frame is refused... */
	memcpy(f + 4, image, 45);
	n = up_cseal(f, sizeof(f), UP_T_DATA, 0, 7, 0, 45);
	assert_int_equal(up_node_input(&N, f, (size_t)n), UP_EBADCRC);
	assert_int_equal(N.nheld, 0);
	/* ... with it, taken; and the node's own frames carry it
	 * (gw_drain checks). */
	gw_data(0);
	assert_int_equal(N.nheld, 1);
	gw_target(UP_T_STATUS_REQ, 0, UP_SB_RUNS);
	run(100);
	assert_int_equal(G.statuses, 1);
}

/*
 * §11.3: a block corrupted on a link whose CRC was relied on.  The first
 * hash failure makes the node receive again; the second is final.
 */
static void
test_integrity_refetch(void **state)
{
	uint8_t		 f[64];
	uint32_t	 i;
	int		 n;

	join(51, UP_NL_COMPACT, 0, 0);
	for (i = 0; i < G.nblocks; i++) {
		if (i != 5) {
			gw_data(i);
			continue;
		}
		/* A corruption the link's CRC missed. */
		memcpy(f + 4, image + i * G.bs, G.bs);
		f[10] ^= 0x40;
		n = up_cseal(f, sizeof(f), UP_T_DATA, 0, 7, i, G.bs);
		(void)up_node_input(&N, f, (size_t)n);
	}
	assert_int_equal(up_node_get_state(&N, NULL, NULL), UP_NS_DOWNLOADED);
	run(200);
	G.results = 0;
	gw_target(UP_T_VERIFY, 0, 0);
	run(100);
	assert_int_equal(G.results, 1);
	assert_int_equal(G.res_state, UP_NS_RECEIVING);
	assert_int_equal(G.res_result, UP_R_INTEGRITY);
	assert_int_equal(up_node_get_state(&N, NULL, NULL), UP_NS_RECEIVING);
	assert_int_equal(N.nheld, 0);
	assert_false(N.unacked);		/* not final */
	/* Sent again, right this time: VERIFIED. */
	for (i = 0; i < G.nblocks; i++)
		gw_data(i);
	G.results = 0;
	gw_target(UP_T_VERIFY, 0, 0);
	run(100);
	assert_int_equal(G.res_state, UP_NS_VERIFIED);

	/* Twice in one session: FAILED for good. */
	join(51, UP_NL_COMPACT, 0, 0);
	for (n = 0; n < 2; n++) {
		gw_data_tampered(0);
		for (i = 1; i < G.nblocks; i++)
			gw_data(i);
		G.results = 0;
		gw_target(UP_T_VERIFY, 0, 0);
		run(100);
	}
	assert_int_equal(G.res_state, UP_NS_FAILED);
	assert_int_equal(G.res_result, UP_R_INTEGRITY);
	assert_true(N.unacked);

	/* With a CRC on every frame, the first failure is final. */
	join(51, UP_NL_COMPACT | UP_NL_CRC, UP_CF_CRC, 0);
	gw_data_tampered(0);
	for (i = 1; i < G.nblocks; i++)
		gw_data(i);
	gw_target(UP_T_VERIFY, 0, 0);
	run(100);
	assert_int_equal(G.res_state, UP_NS_FAILED);
}

static void
test_only_missing(void **state)
{
	uint32_t	 i;

	join(51, UP_NL_COMPACT, 0, 10);
	G.statuses = 0;
	gw_target(UP_T_STATUS_REQ, 0, UP_SB_RUNS | UP_SQ_MISSING);
	run(100);
	assert_int_equal(G.statuses, 1);
	assert_int_equal(G.st.first_missing, 10);
	for (i = 10; i < G.nblocks; i++)
		gw_data(i);
	run(100);		/* the unsolicited STATUS of completion */
	G.statuses = 0;
	gw_target(UP_T_STATUS_REQ, 0, UP_SB_RUNS | UP_SQ_MISSING);
	run(100);
	assert_int_equal(G.statuses, 0);
	/* Without the flag it answers: a run list with no run. */
	gw_target(UP_T_STATUS_REQ, 0, UP_SB_RUNS);
	run(100);
	assert_int_equal(G.statuses, 1);
	assert_int_equal(G.st.first_missing, G.nblocks);
	assert_int_equal(G.st.nent, 0);
}

/* A state saved by the previous format (2, no compact set-up) loads. */
static void
test_state_format_1(void **state)
{
	uint32_t	 crc;
	size_t		 len;

	node_setup(0, 0, false);
	gw_init(UP_FRAME_MAX, 0, 0);
	boot("1.0.0");
	/* A full-form session: format 2 with a zero compact set-up. */
	{
		struct up_msg	 m;
		uint8_t		 f[UP_FRAME_MAX];
		int		 n;

		memset(&m, 0, sizeof(m));
		m.type = UP_T_OFFER;
		m.session = SESSION;
		strcpy(m.u.offer.component, "app");
		strcpy(m.u.offer.to_version, "1.1.0");
		m.u.offer.size = PKG_SIZE;
		m.u.offer.image_size = PKG_SIZE;
		m.u.offer.block_size = 1000;
		m.u.offer.nblocks = 3;
		n = up_encode(&m, f, sizeof(f));
		assert_int_equal(up_node_input(&N, f, (size_t)n), UP_OK);
	}
	assert_int_equal(F.state[4], 3);
	len = F.state_len;
	/* Drop the 3 bytes of set-up and the CRC; format 2; new CRC. */
	assert_int_equal(F.state[len - 7] | F.state[len - 6] |
	    F.state[len - 5], 0);
	len -= 7;
	F.state[4] = 2;
	crc = up_crc32(0, F.state, len);
	F.state[len++] = (uint8_t)crc;
	F.state[len++] = (uint8_t)(crc >> 8);
	F.state[len++] = (uint8_t)(crc >> 16);
	F.state[len++] = (uint8_t)(crc >> 24);
	F.state_len = len;
	boot("1.0.0");
	assert_int_equal(up_node_get_state(&N, NULL, NULL), UP_NS_RECEIVING);
	assert_false(N.compact);
	/* Saved again, in format 2. */
	{
		struct up_msg	 m;
		uint8_t		 f[UP_FRAME_MAX];
		int		 n;

		memset(&m, 0, sizeof(m));
		m.type = UP_T_DATA;
		m.session = SESSION;
		m.u.data.index = 0;
		m.u.data.len = 1000;
		m.u.data.data = image;
		n = up_encode(&m, f, sizeof(f));
		assert_int_equal(up_node_input(&N, f, (size_t)n), UP_OK);
		assert_int_equal(up_node_flush(&N), UP_OK);
	}
	assert_int_equal(F.state[4], 3);
	/* A tag in a set-up without the compact form is refused. */
	F.state[F.state_len - 6] = 5;
	len = F.state_len - 4;
	crc = up_crc32(0, F.state, len);
	F.state[len] = (uint8_t)crc;
	F.state[len + 1] = (uint8_t)(crc >> 8);
	F.state[len + 2] = (uint8_t)(crc >> 16);
	F.state[len + 3] = (uint8_t)(crc >> 24);
	boot("1.0.0");
	assert_int_equal(up_node_get_state(&N, NULL, NULL), UP_NS_IDLE);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_session_lora51),
		cmocka_unit_test(test_session_lora51_nofec),
		cmocka_unit_test(test_session_row_budget),
		cmocka_unit_test(test_session_row_budget_cut),
		cmocka_unit_test(test_session_ble20),
		cmocka_unit_test(test_session_ble20_fec),
		cmocka_unit_test(test_session_crc_link),
		cmocka_unit_test(test_answers_in_slots),
		cmocka_unit_test(test_boot_spread),
		cmocka_unit_test(test_tags),
		cmocka_unit_test(test_weak_link_needs_crc),
		cmocka_unit_test(test_integrity_refetch),
		cmocka_unit_test(test_only_missing),
		cmocka_unit_test(test_state_format_1),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
