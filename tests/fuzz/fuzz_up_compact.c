/*
 * fuzz_up_compact.c: the node engine on a small link, fed compact
 * frames (docs/up-protocol.md §11): reassembly of segmented messages,
 * sessions named by tag, parity codes, status lists cut to the uplink,
 * reply slots, the integrity refetch, reboots.
 *
 * The node (uplink 51 bytes, compact by default, a FEC workspace) starts
 * in a compact session (tag 7, parity groups of 8, 43 blocks of 47
 * bytes).  The input is a list of records, u8 op then u8 len then len
 * bytes:
 *   op % 4 == 0: the bytes as one frame;
 *   op % 4 == 1: the same with its CRC-16 made good (when C is set);
 *   op % 4 == 2: time passes (len * 100 ms) and the node ticks;
 *   op % 4 == 3: the bytes as a compact message (C set, CRC-16 added),
 *                sent in SEG frames of 20 bytes under a fresh tag.
 * A node that switched slots is rebooted from what it saved.
 *
 * Invariants (abort() on a violation):
 *  - the node never sends a frame larger than 51 bytes, every frame it
 *    sends decodes, and its segments are marked as a node's;
 *  - its state stays consistent: IDLE exactly when there is no session,
 *    the held bitmap as long as the offer's nblocks, nheld its popcount;
 *  - it never writes outside its staging slot.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "up.h"

#define FZ_SLOT		(64 * 1024)
#define FZ_MTU		51
#define FZ_SESSION	0x5eed0001u

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

struct fz {
	uint32_t	 now;
	uint32_t	 rnd;
	uint8_t		 state[UP_NODE_STATE_MAX];
	size_t		 state_len;
	uint8_t		 bm[256];
	size_t		 bm_len;
	int		 saved;
	int		 verifies;
};

static struct fz	 Z;
static struct up_node	 N;
static uint8_t		 bitmap[256];
static uint8_t		 slot[FZ_SLOT];
static uint8_t		 ws[48 * 1024] __attribute__((aligned(16)));

static int
z_send(void *ctx, const uint8_t *f, size_t len)
{
	struct up_msg	 m;

	(void)ctx;
	if (len > FZ_MTU || up_decode_any(f, len, &m) != UP_OK)
		abort();
	if (m.type == UP_T_SEG && !m.u.seg.from_node)
		abort();
	return (0);
}

static uint32_t
z_now(void *ctx)
{
	return (((struct fz *)ctx)->now);
}

static uint32_t
z_random(void *ctx)
{
	struct fz	*z = ctx;

	z->rnd ^= z->rnd << 13;
	z->rnd ^= z->rnd >> 17;
	z->rnd ^= z->rnd << 5;
	return (z->rnd);
}

static int
z_save(void *ctx, const uint8_t *s, size_t sl, const uint8_t *b, size_t bl)
{
	struct fz	*z = ctx;

	if (sl > sizeof(z->state) || bl > sizeof(z->bm))
		abort();
	memcpy(z->state, s, sl);
	z->state_len = sl;
	memcpy(z->bm, b, bl);
	z->bm_len = bl;
	z->saved = 1;
	return (0);
}

static int
z_load(void *ctx, uint8_t *s, size_t scap, size_t *sl, uint8_t *b,
    size_t bcap, size_t *bl)
{
	struct fz	*z = ctx;

	if (!z->saved || z->state_len > scap || z->bm_len > bcap)
		return (-1);
	memcpy(s, z->state, z->state_len);
	*sl = z->state_len;
	memcpy(b, z->bm, z->bm_len);
	*bl = z->bm_len;
	return (0);
}

static uint32_t
z_cap(void *ctx)
{
	(void)ctx;
	return (FZ_SLOT);
}

static int
z_erase(void *ctx, uint32_t off, uint32_t len)
{
	(void)ctx;
	if (off > FZ_SLOT || len > FZ_SLOT - off)
		abort();
	memset(slot + off, 0xff, len);
	return (0);
}

static int
z_write(void *ctx, uint32_t off, const uint8_t *p, size_t n)
{
	(void)ctx;
	if (off > FZ_SLOT || n > FZ_SLOT - off)
		abort();
	memcpy(slot + off, p, n);
	return (0);
}

static int
z_read(void *ctx, uint32_t off, uint8_t *p, size_t n)
{
	(void)ctx;
	if (off > FZ_SLOT || n > FZ_SLOT - off)
		abort();
	memcpy(p, slot + off, n);
	return (0);
}

/*
 * The engine hashes the package itself.  No real SHA-256 here: every
 * other hash "matches" the offer's, the others do not, so both the
 * refetch (§11.3) and VERIFIED are reached.
 */
static int
z_sha_begin(void *ctx)
{
	(void)ctx;
	return (0);
}

static int
z_sha_update(void *ctx, const uint8_t *p, size_t n)
{
	(void)ctx;
	(void)p;
	(void)n;
	return (0);
}

static int
z_sha_end(void *ctx, uint8_t md[32])
{
	struct fz	*z = ctx;

	if (z->verifies++ % 2 == 0)
		memset(md, 0xee, 32);
	else
		memcpy(md, N.offer.sha256, 32);
	return (0);
}

static int
z_activate(void *ctx, const struct up_offer *o)
{
	(void)ctx;
	(void)o;
	return (0);
}

static const struct up_port zport = {
	.send = z_send,
	.now_ms = z_now,
	.random = z_random,
	.save = z_save,
	.load = z_load,
	.slot_capacity = z_cap,
	.slot_erase = z_erase,
	.slot_write = z_write,
	.slot_read = z_read,
	.sha256_begin = z_sha_begin,
	.sha256_update = z_sha_update,
	.sha256_end = z_sha_end,
	.activate = z_activate
};

static void
boot(const char *version)
{
	struct up_node_info info;
	struct up_node_link link = { FZ_MTU, UP_NL_COMPACT, 4, 100 };

	memset(&info, 0, sizeof(info));
	info.node_id = 0x1122334455667788ULL;
	strcpy(info.hw, "fz");
	info.max_frame = FZ_MTU;
	info.battery = UP_BATTERY_UNKNOWN;
	info.ncomp = 1;
	strcpy(info.comp[0].name, "app");
	strcpy(info.comp[0].version, version);
	up_node_init(&N, &zport, &Z, &info, bitmap, sizeof(bitmap));
	up_node_set_link(&N, &link);
	up_node_set_fec_workspace(&N, ws, sizeof(ws));
	if (up_node_start(&N, NULL) != UP_OK)
		abort();
}

static uint8_t	 mtag;

/* A compact message, in SEG frames of 20 bytes. */
static void
feed_segmented(const uint8_t *msg, size_t len)
{
	uint8_t		 f[UP_FRAME_MAX], s[UP_FRAME_MAX];
	uint16_t	 c;
	int		 n, i, sl;

	if (len < 1 || len + 2 > sizeof(f))
		return;
	memcpy(f, msg, len);
	f[0] |= UP_C_MARK | UP_CF_CRC;
	c = up_crc16_ccitt(UP_CRC16_INIT, f, len);
	f[len] = (uint8_t)c;
	f[len + 1] = (uint8_t)(c >> 8);
	if ((n = up_seg_count(len + 2, 20, 0)) < 1)
		return;
	if (n == 1) {
		(void)up_node_input(&N, f, len + 2);
		return;
	}
	mtag++;
	for (i = 0; i < n; i++) {
		sl = up_seg_build(f, len + 2, 20, 0, mtag, (uint8_t)i, s,
		    sizeof(s));
		if (sl <= 0)
			abort();
		(void)up_node_input(&N, s, (size_t)sl);
	}
}

/* The session the node starts in: a compact OFFER, segmented. */
static void
offer(void)
{
	struct up_msg	 m;
	uint8_t		 f[UP_FRAME_MAX];
	int		 n;

	memset(&m, 0, sizeof(m));
	m.type = UP_T_OFFER;
	m.form = UP_FORM_COMPACT;
	m.session = FZ_SESSION;
	m.cx.tag = 7;
	m.cx.fec_k = 8;
	strcpy(m.u.offer.component, "app");
	strcpy(m.u.offer.to_version, "1.1.0");
	m.u.offer.size = 2000;
	m.u.offer.image_size = 2000;
	m.u.offer.block_size = 47;
	m.u.offer.nblocks = up_nblocks(2000, 47);
	n = up_encode(&m, f, sizeof(f));
	if (n <= 0)
		abort();
	feed_segmented(f, (size_t)n);
}

static void
consistent(void)
{
	uint32_t	 session;
	uint8_t		 st = up_node_get_state(&N, &session, NULL);

	if (st > UP_NS_FAILED || (st == UP_NS_IDLE) != (session == 0))
		abort();
	if (session != 0 && (N.held.nbits != N.offer.nblocks ||
	    N.nheld != up_bitmap_count(&N.held) ||
	    N.nheld > N.offer.nblocks))
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t		 f[UP_FRAME_MAX];
	size_t		 off = 0, len;
	uint16_t	 c;
	uint8_t		 op;
	uint32_t	 session;

	memset(&Z, 0, sizeof(Z));
	Z.now = 1000;
	Z.rnd = 0x2545f491;
	mtag = 0;
	boot("1.0.0");
	offer();
	/* The ACCEPT's slot. */
	Z.now += 500;
	up_node_tick(&N);
	consistent();
	while (off + 2 <= size) {
		op = data[off];
		len = data[off + 1];
		off += 2;
		if (len > size - off)
			len = size - off;
		switch (op % 4) {
		case 0:
			(void)up_node_input(&N, data + off, len);
			break;
		case 1:
			memcpy(f, data + off, len);
			if (len >= 3 && (f[0] & (UP_C_MARK | UP_CF_CRC)) ==
			    (UP_C_MARK | UP_CF_CRC)) {
				c = up_crc16_ccitt(UP_CRC16_INIT, f, len - 2);
				f[len - 2] = (uint8_t)c;
				f[len - 1] = (uint8_t)(c >> 8);
			}
			(void)up_node_input(&N, f, len);
			break;
		case 2:
			Z.now += (uint32_t)len * 100;
			up_node_tick(&N);
			break;
		default:
			feed_segmented(data + off, len);
			break;
		}
		off += len;
		/* A switched node reboots into the new image. */
		if (up_node_get_state(&N, &session, NULL) ==
		    UP_NS_ACTIVATING && N.switched)
			boot("1.1.0");
		consistent();
	}
	return (0);
}
