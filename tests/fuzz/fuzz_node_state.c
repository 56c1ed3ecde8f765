/*
 * fuzz_node_state.c: the node engine's persisted state decoder (up/
 * up_node.c, node_load) reached the way a node reaches it: through
 * up_node_start() with a fake port whose load() hands back the input as
 * the saved state blob and block bitmap.
 *
 * Input: u16 little-endian blob length L, L blob bytes, then the bitmap.
 * Each input is tried twice: as it is, and with the blob's bitmap CRC
 * (offset 16) and trailing CRC-32 made consistent, because mutations
 * almost never get past two CRC-32s and the checks behind them are where
 * the bugs would be.
 *
 * Invariants (abort() on a violation):
 *  - up_node_start() succeeds whatever was saved: a blob that does not
 *    decode is "nothing saved" (IDLE), never half a state;
 *  - the engine's state is consistent: IDLE exactly when there is no
 *    session, the held bitmap as long as the offer's nblocks, nheld its
 *    popcount and at most nblocks;
 *  - a resumed state saved again and loaded by a fresh engine gives the
 *    same engine, which saves the same bytes (a fixed point);
 *  - driving the resumed engine (STATUS_REQ, DATA, VERIFY, ACTIVATE,
 *    RESULT_ACK, ABORT) and its work in steps (an interrupted erase, the
 *    hash) keeps it consistent, never writes outside the slot, and every
 *    frame it sends decodes.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "up.h"

#define FZ_BITMAP_CAP	4096		/* 32,768 blocks */
#define FZ_SLOT_CAP	(1024u * 1024)
#define FZ_NODE_ID	0x1122334455667788ULL

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

struct fz_port {
	const uint8_t	*blob;		/* what load() returns */
	size_t		 blob_len;
	const uint8_t	*bm;
	size_t		 bm_len;
	bool		 have;

	uint8_t		 saved[UP_NODE_STATE_MAX];	/* last save() */
	size_t		 saved_len;
	uint8_t		 saved_bm[FZ_BITMAP_CAP];
	size_t		 saved_bm_len;
	bool		 saved_any;

	uint32_t	 now;
	uint32_t	 rnd;
	int		 verify;	/* the hash matches (UP_R_INITIAL) or not */
	const struct up_node *node;	/* for the offer's digest */
};

static uint8_t	 fixed[2 + UP_NODE_STATE_MAX + FZ_BITMAP_CAP];
static uint8_t	 bm1[FZ_BITMAP_CAP], bm2[FZ_BITMAP_CAP];

static int
fz_send(void *ctx, const uint8_t *frame, size_t len)
{
	struct up_msg	 m;

	/* Whatever the engine resumed, what it sends is a valid frame. */
	if (up_decode(frame, len, &m) != UP_OK)
		abort();
	return (0);
}

static uint32_t
fz_now(void *ctx)
{
	return (((struct fz_port *)ctx)->now);
}

static uint32_t
fz_random(void *ctx)
{
	struct fz_port	*p = ctx;

	p->rnd = p->rnd * 1103515245u + 12345u;
	return (p->rnd);
}

static int
fz_save(void *ctx, const uint8_t *state, size_t state_len,
    const uint8_t *bitmap, size_t bitmap_len)
{
	struct fz_port	*p = ctx;

	if (state_len > sizeof(p->saved) || bitmap_len > sizeof(p->saved_bm))
		abort();
	memcpy(p->saved, state, state_len);
	p->saved_len = state_len;
	if (bitmap_len > 0)
		memcpy(p->saved_bm, bitmap, bitmap_len);
	p->saved_bm_len = bitmap_len;
	p->saved_any = true;
	return (0);
}

static int
fz_load(void *ctx, uint8_t *state, size_t state_cap, size_t *state_len,
    uint8_t *bitmap, size_t bitmap_cap, size_t *bitmap_len)
{
	struct fz_port	*p = ctx;

	/* A port never hands back more than the engine has room for. */
	if (!p->have || p->blob_len > state_cap || p->bm_len > bitmap_cap)
		return (-1);
	memcpy(state, p->blob, p->blob_len);
	*state_len = p->blob_len;
	if (p->bm_len > 0)
		memcpy(bitmap, p->bm, p->bm_len);
	*bitmap_len = p->bm_len;
	return (0);
}

static uint32_t
fz_slot_capacity(void *ctx)
{
	return (FZ_SLOT_CAP);
}

static int
fz_slot_erase(void *ctx, uint32_t off, uint32_t len)
{
	/* Like node_port.c: out of the slot is a failed erase. */
	if (off > FZ_SLOT_CAP || len > FZ_SLOT_CAP - off)
		return (-1);
	return (0);
}

static int
fz_slot_write(void *ctx, uint32_t off, const uint8_t *buf, size_t n)
{
	/* Like node_port.c: out of the slot is a failed write. */
	if (off > FZ_SLOT_CAP || n > FZ_SLOT_CAP - off)
		return (-1);
	return (0);
}

static int
fz_slot_read(void *ctx, uint32_t off, uint8_t *buf, size_t n)
{
	if (off > FZ_SLOT_CAP || n > FZ_SLOT_CAP - off)
		return (-1);
	memset(buf, 0, n);
	return (0);
}

static int
fz_sha_begin(void *ctx)
{
	return (0);
}

static int
fz_sha_update(void *ctx, const uint8_t *buf, size_t n)
{
	return (0);
}

/* "The hash matches" is a knob: the offer's own digest, or zeros. */
static int
fz_sha_end(void *ctx, uint8_t md[32])
{
	struct fz_port	*p = ctx;

	if (p->verify == UP_R_INITIAL && p->node != NULL)
		memcpy(md, p->node->offer.sha256, 32);
	else
		memset(md, 0, 32);
	return (0);
}

static int
fz_activate(void *ctx, const struct up_offer *o)
{
	return (0);
}

static const struct up_port fz_ops = {
	.send = fz_send,
	.now_ms = fz_now,
	.random = fz_random,
	.save = fz_save,
	.load = fz_load,
	.slot_capacity = fz_slot_capacity,
	.slot_erase = fz_slot_erase,
	.slot_write = fz_slot_write,
	.slot_read = fz_slot_read,
	.sha256_begin = fz_sha_begin,
	.sha256_update = fz_sha_update,
	.sha256_end = fz_sha_end,
	.activate = fz_activate
};

static void
fz_quiet(int level, const char *fmt, va_list ap)
{
}

static void
fz_info(struct up_node_info *info)
{
	memset(info, 0, sizeof(*info));
	info->node_id = FZ_NODE_ID;
	strcpy(info->hw, "fz-hw");
	info->max_frame = UP_FRAME_MAX;
	info->battery = UP_BATTERY_UNKNOWN;
	info->rssi_dbm = UP_RSSI_UNKNOWN;
	info->snr_db = UP_SNR_UNKNOWN;
	info->ncomp = 2;
	strcpy(info->comp[0].name, "app");
	strcpy(info->comp[0].version, "1.0.0");
	strcpy(info->comp[1].name, "boot");
	strcpy(info->comp[1].version, "2.0.0");
}

static void
fz_consistent(const struct up_node *n)
{
	if (n->state > UP_NS_FAILED)
		abort();
	if ((n->state == UP_NS_IDLE) != (n->session == 0))
		abort();
	/* Work in steps only where it belongs (up_node.c NODE_W_*). */
	if (n->work > 5 || (n->work == 1 && n->state != UP_NS_RECEIVING) ||
	    (n->work >= 2 && n->state != UP_NS_DOWNLOADED))
		abort();
	if (n->session == 0)
		return;
	if (n->held.nbits != n->offer.nblocks ||
	    (uint64_t)n->offer.nblocks > (uint64_t)n->bitmap_cap * 8 ||
	    n->nheld > n->offer.nblocks ||
	    n->nheld != up_bitmap_count(&n->held))
		abort();
}

/* Feeds one message; the engine answers with an up_err at worst. */
static void
fz_input(struct up_node *n, const struct up_msg *m)
{
	uint8_t		 frame[UP_FRAME_MAX];
	int		 len, e;

	if ((len = up_encode(m, frame, sizeof(frame))) <= 0)
		return;
	e = up_node_input(n, frame, (size_t)len);
	if (e != UP_OK && e != UP_ERANGE && e != UP_ELEN && e != UP_ESTATE &&
	    e != UP_EPORT)
		abort();
	fz_consistent(n);
}

static void
fz_tick(struct up_node *n, struct fz_port *p, uint32_t ms)
{
	unsigned int	 i;

	p->now += ms;
	up_node_tick(n);
	fz_consistent(n);
	/* Work in steps runs while up_node_next_ms() says 0. */
	for (i = 0; i < 4096 && n->work != 0; i++) {
		up_node_tick(n);
		fz_consistent(n);
	}
	if (n->work != 0)
		abort();
}

static void
fz_data(struct up_node *n, uint32_t index)
{
	static const uint8_t	 zero[UP_FRAME_MAX];
	struct up_msg		 m;
	uint64_t		 off = (uint64_t)index * n->offer.block_size;

	if (index >= n->offer.nblocks || off >= n->offer.size)
		return;
	memset(&m, 0, sizeof(m));
	m.type = UP_T_DATA;
	m.session = n->session;
	m.u.data.index = index;
	m.u.data.len = (uint16_t)(n->offer.size - off < n->offer.block_size ?
	    n->offer.size - off : n->offer.block_size);
	m.u.data.data = zero;
	if (m.u.data.len > UP_FRAME_MAX - UP_DATA_OVERHEAD)
		return;
	fz_input(n, &m);
}

static void
fz_target(struct up_node *n, uint8_t type, uint64_t node, uint8_t reason)
{
	struct up_msg	 m;

	memset(&m, 0, sizeof(m));
	m.type = type;
	m.session = n->session;
	m.u.target.node_id = node;
	m.u.target.window_ms = 10;
	m.u.target.reason = reason;
	fz_input(n, &m);
}

/* Drives a resumed engine through the rest of a session. */
static void
fz_drive(struct up_node *n, struct fz_port *p, uint8_t knobs)
{
	struct up_msg	 m;
	uint32_t	 i;

	if (n->session == 0)
		return;
	/* An erase cut by the power loss goes on first. */
	fz_tick(n, p, 0);
	fz_target(n, UP_T_STATUS_REQ, 0, 0);
	fz_tick(n, p, 50);
	/* The first missing block, the last block, then everything. */
	fz_data(n, up_bitmap_next_clear(&n->held, 0));
	if (n->session != 0)
		fz_data(n, n->offer.nblocks - 1);
	for (i = 0; n->session != 0 && n->state == UP_NS_RECEIVING &&
	    i < n->offer.nblocks && i < 256; i++)
		fz_data(n, up_bitmap_next_clear(&n->held, 0));
	if (n->session == 0)
		return;
	p->verify = (knobs & 1) ? UP_R_INTEGRITY : UP_R_INITIAL;
	fz_target(n, UP_T_VERIFY, (knobs & 2) ? FZ_NODE_ID : 0, 0);
	fz_tick(n, p, 0);
	if (n->session == 0)
		return;
	memset(&m, 0, sizeof(m));
	m.type = UP_T_ACTIVATE;
	m.session = n->session;
	m.u.activate.node_id = 0;
	m.u.activate.delay_ms = 0;
	fz_input(n, &m);
	fz_tick(n, p, 1);
	if (n->session == 0 || (n->state == UP_NS_ACTIVATING && n->switched))
		return;
	fz_tick(n, p, 1500);
	fz_target(n, UP_T_RESULT_ACK, FZ_NODE_ID, 0);
	if ((knobs & 4) && n->session != 0)
		fz_target(n, UP_T_ABORT, 0, UP_R_FAILED);
}

static void
fz_run(const uint8_t *data, size_t size)
{
	static struct up_node	 n1, n2;
	static struct fz_port	 p1, p2;
	struct up_node_info	 info;
	size_t			 blen;

	if (size < 2)
		return;
	blen = (size_t)data[0] | (size_t)data[1] << 8;
	if (blen > size - 2)
		blen = size - 2;

	memset(&p1, 0, sizeof(p1));
	p1.blob = data + 2;
	p1.blob_len = blen;
	p1.bm = data + 2 + blen;
	p1.bm_len = size - 2 - blen;
	p1.have = true;
	p1.now = 0xfffff000u;		/* wraps during the run */
	p1.node = &n1;
	fz_info(&info);
	up_node_init(&n1, &fz_ops, &p1, &info, bm1, sizeof(bm1));
	if (up_node_start(&n1, NULL) != UP_OK)
		abort();
	fz_consistent(&n1);

	if (n1.session != 0 && !(n1.state == UP_NS_ACTIVATING &&
	    n1.switched)) {
		/* Save what was resumed; a fresh engine must load it back. */
		n1.dirty = 1;
		if (up_node_flush(&n1) != UP_OK || !p1.saved_any)
			abort();
		memset(&p2, 0, sizeof(p2));
		p2.blob = p1.saved;
		p2.blob_len = p1.saved_len;
		p2.bm = p1.saved_bm;
		p2.bm_len = p1.saved_bm_len;
		p2.have = true;
		p2.now = p1.now;
		p2.node = &n2;
		up_node_init(&n2, &fz_ops, &p2, &info, bm2, sizeof(bm2));
		if (up_node_start(&n2, NULL) != UP_OK)
			abort();
		fz_consistent(&n2);
		if (n2.session != n1.session || n2.state != n1.state ||
		    n2.result != n1.result || n2.unacked != n1.unacked ||
		    n2.switched != n1.switched || n2.nheld != n1.nheld ||
		    n2.offer.nblocks != n1.offer.nblocks ||
		    memcmp(bm1, bm2, up_bitmap_bytes(n1.offer.nblocks)) != 0)
			abort();
		/* And saves the very same bytes (offer included). */
		n2.dirty = 1;
		if (up_node_flush(&n2) != UP_OK || !p2.saved_any ||
		    p2.saved_len != p1.saved_len ||
		    memcmp(p2.saved, p1.saved, p1.saved_len) != 0 ||
		    p2.saved_bm_len != p1.saved_bm_len ||
		    memcmp(p2.saved_bm, p1.saved_bm, p1.saved_bm_len) != 0)
			abort();
	}
	fz_drive(&n1, &p1, blen > 0 ? data[2 + blen - 1] : 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t		 blen, bmlen;
	uint32_t	 crc;
	uint8_t		*blob;

	up_log_set_hook(fz_quiet);
	fz_run(data, size);

	if (size < 2 || size > sizeof(fixed))
		return (0);
	memcpy(fixed, data, size);
	blen = (size_t)fixed[0] | (size_t)fixed[1] << 8;
	if (blen > size - 2 || blen < 24)
		return (0);
	blob = fixed + 2;
	bmlen = size - 2 - blen;
	crc = up_crc32(0, blob + blen, bmlen);
	blob[16] = (uint8_t)crc;
	blob[17] = (uint8_t)(crc >> 8);
	blob[18] = (uint8_t)(crc >> 16);
	blob[19] = (uint8_t)(crc >> 24);
	crc = up_crc32(0, blob, blen - 4);
	blob[blen - 4] = (uint8_t)crc;
	blob[blen - 3] = (uint8_t)(crc >> 8);
	blob[blen - 2] = (uint8_t)(crc >> 16);
	blob[blen - 1] = (uint8_t)(crc >> 24);
	fz_run(fixed, size);
	return (0);
}
