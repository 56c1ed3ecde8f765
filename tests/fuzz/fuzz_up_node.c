/*
 * fuzz_up_node.c: the node engine (up/up_node.c) fed random streams of
 * full (v1) frames across sessions and states: OFFERs of full images and
 * VCDIFF deltas from several session ids, DATA, PARITY (real TS004 rows)
 * and XOR (real XORs) of the offered packages or of noise, STATUS_REQ,
 * VERIFY, ACTIVATE, RESULT_ACK, ABORT and DISCOVER aimed at the node, at
 * all or at another node, raw and mutated frames, time, and power cuts.
 * The compact frames of small links are fuzz_up_compact's; the saved
 * state decoder is fuzz_node_state's.
 *
 * The node (app 1.0.0 and boot 2.0.0, hardware "fz-hw") has a 64 KiB
 * staging slot, a package area for deltas, a FEC workspace and a
 * signature check: a descriptor "verifies" when the first four bytes of
 * its signature are the CRC-32 of its encoding (up_desc_encode), so the
 * gateway side of this target can sign, and a mutated descriptor fails.
 * Hashes are real SHA-256 (OpenSSL).  An image the node switched to boots
 * (its version runs) or rolls back, as the input says.
 *
 * Input: records, an op byte then its operands (missing bytes read 0):
 *   op % 16 ==  0  raw frame: u8 len, len bytes
 *               1  OFFER: u8 session pick, u8 what, u8 version pick,
 *                  u8 size, u8 block pick, u8 security, u8 flags
 *               2  DATA: u8 session, u16 index, u8 how (noise, length)
 *               3  PARITY: u8 session, u16 row, u16 group, u8 k, u8 how
 *               4  XOR: u8 session, u8 n, u16 first, u8 gap, u8 how
 *               5  STATUS_REQ  6 VERIFY  7 RESULT_ACK  8 ABORT:
 *                  u8 session, u8 target pick, u8 reason/window
 *               9  ACTIVATE: u8 session, u8 target, u16 delay
 *              10  DISCOVER: u16 window
 *              11  time passes: u16 ms, then the node's ticks and work
 *              12  power cut: the node boots from what it saved
 *              13  the last frame built, one byte changed, CRC resealed:
 *                  u8 where, u8 xor
 *              14  the image a switch boots: u8 (bit 0 rolls back)
 *              15  every block of the current session's package, then
 *                  VERIFY (so the later states are reached quickly)
 *
 * Invariants (abort() on a violation):
 *  - every frame the node sends decodes and fits its max_frame;
 *  - its state stays consistent: IDLE exactly when there is no session,
 *    the held bitmap as long as the offer's nblocks, nheld its popcount,
 *    work in steps only in the states it belongs to, RECEIVING..VERIFIED
 *    never with a complete-but-unknown bitmap;
 *  - it never touches the slot or package area outside their bounds,
 *    and only for an offer whose signature verifies and that the
 *    anti-rollback rule allows (docs/up-protocol.md §5.4): never older
 *    than what runs unless signed as a downgrade, never below the
 *    component's security floor;
 *  - it activates only that, and only when the staged image's SHA-256
 *    is the signed image_sha256 (the bytes are the signed ones);
 *  - a security floor never falls, across power cuts too;
 *  - up_node_input() returns an up_err at worst.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "up.h"

#define FZ_SLOT		(64 * 1024)
#define FZ_PKG		(16 * 1024)
#define FZ_NODE		0x00000000fedcba98ULL
#define FZ_OTHER	0x0000000000000777ULL
#define FZ_NSESS	4

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* What the gateway side offered in a session (to send its blocks). */
struct fz_sess {
	uint32_t	 id;
	bool		 on;
	struct up_offer	 o;
	uint8_t		 pkg[8192];	/* the package sent */
};

struct fz {
	uint32_t	 now;
	uint32_t	 rnd;
	/* Persisted: the port's flash. */
	uint8_t		 state[UP_NODE_STATE_MAX];
	size_t		 state_len;
	uint8_t		 bm[4096];
	size_t		 bm_len;
	bool		 saved;
	uint32_t	 saved_floor[2];	/* floors in the last save */
	/* What runs. */
	char		 run[2][UP_VER_MAX + 1];
	bool		 rollback;	/* the next switch rolls back */
	struct fz_sess	 sess[FZ_NSESS];
	uint8_t		 last[UP_FRAME_MAX];	/* last frame */
	size_t		 last_len;
	EVP_MD_CTX	*md;
};

static struct fz	 Z;
static struct up_node	 N;
static struct up_vcd	 vcd;
static uint8_t		 vcd_buf[256];
static uint8_t		 bitmap[4096];
static uint8_t		 slot[FZ_SLOT], area[FZ_PKG];
static uint8_t		 ws[40 * 1024] __attribute__((aligned(16)));

static const char *const comps[2] = { "app", "boot" };

/*
 * A delta from 1.0.0 to 1.1.0 (RFC 3284 vectors of test_up_vcdiff.c):
 * one window, every address mode, 35 bytes out; then a VCD_TARGET
 * window over them, read back from the slot.
 */
static const uint8_t vec_delta[] = {
	0xd6, 0xc3, 0xc4, 0x00, 0x00,
	0x00, 0x1b, 0x23, 0x00, 0x06, 0x0a, 0x06,
	'a', 'b', 'c', 'z', 'Q', '!',
	0x04, 0x13, 0x06, 0x00, 0x04, 0x24, 0x34, 0x74, 0xa3, 0xf7,
	0x00, 0x04, 0x01, 0x09, 0x02, 0x00,
	0x02, 0x04, 0x00, 0x09, 0x08, 0x00, 0x00, 0x02, 0x02, 0x14, 0x14,
	0x00, 0x01
};
static const char vec_image[] =
    "abcabcabczzzzzzzzbcabzzzzQcabcabca!abcabcaa";

/* ------------------------------------------------------------------ */
/* The gateway's signature, as this target models it                 */

static void
fz_sign(struct up_offer *o)
{
	uint8_t		 d[UP_DESC_MAX];
	uint32_t	 c;
	int		 len;

	o->sig_alg = UP_SIG_ED25519;
	o->sig_len = 64;
	memset(o->sig, 0, sizeof(o->sig));
	if ((len = up_desc_encode(o, d, sizeof(d))) < 0)
		return;
	c = up_crc32(0, d, (size_t)len);
	memcpy(o->sig, &c, 4);
}

static bool
fz_signed(const struct up_offer *o)
{
	uint8_t		 d[UP_DESC_MAX];
	uint32_t	 c;
	int		 len;

	if (o->sig_alg != UP_SIG_ED25519 || o->sig_len != 64 ||
	    (len = up_desc_encode(o, d, sizeof(d))) < 0)
		return (false);
	c = up_crc32(0, d, (size_t)len);
	return (memcmp(o->sig, &c, 4) == 0);
}

static int
fz_comp(const char *name)
{
	if (strcmp(name, comps[0]) == 0)
		return (0);
	if (strcmp(name, comps[1]) == 0)
		return (1);
	return (-1);
}

/* §5.4, from what runs and the floors: may this offer be installed? */
static void
fz_rule(const struct up_offer *o)
{
	int	 c = fz_comp(o->component);

	if (c < 0 || !fz_signed(o))
		abort();
	if (up_version_cmp(o->to_version, Z.run[c]) < 0 &&
	    (o->desc_flags & UP_DESC_DOWNGRADE) == 0)
		abort();
	if (o->security_version < up_node_get_floor(&N, o->component))
		abort();
}

static void
fz_sha(const uint8_t *p, size_t n, uint8_t md[32])
{
	unsigned int	 len = 32;

	if (EVP_Digest(p, n, md, &len, EVP_sha256(), NULL) != 1)
		abort();
}

/* ------------------------------------------------------------------ */
/* The port                                                           */

static int
z_send(void *ctx, const uint8_t *f, size_t len)
{
	struct up_msg	 m;

	if (len > UP_FRAME_MAX || up_decode_any(f, len, &m) != UP_OK)
		abort();
	return (0);
}

static uint32_t
z_now(void *ctx)
{
	return (Z.now);
}

static uint32_t
z_random(void *ctx)
{
	Z.rnd ^= Z.rnd << 13;
	Z.rnd ^= Z.rnd >> 17;
	Z.rnd ^= Z.rnd << 5;
	return (Z.rnd);
}

static int
z_save(void *ctx, const uint8_t *s, size_t sl, const uint8_t *b, size_t bl)
{
	int	 c;

	if (sl > sizeof(Z.state) || bl > sizeof(Z.bm))
		abort();
	memcpy(Z.state, s, sl);
	Z.state_len = sl;
	memcpy(Z.bm, b, bl);
	Z.bm_len = bl;
	Z.saved = true;
	for (c = 0; c < 2; c++)
		Z.saved_floor[c] = up_node_get_floor(&N, comps[c]);
	return (0);
}

static int
z_save_bitmap(void *ctx, uint32_t off, const uint8_t *p, size_t n)
{
	if (!Z.saved || off > Z.bm_len || n > Z.bm_len - off)
		abort();
	memcpy(Z.bm + off, p, n);
	return (0);
}

static int
z_load(void *ctx, uint8_t *s, size_t scap, size_t *sl, uint8_t *b,
    size_t bcap, size_t *bl)
{
	if (!Z.saved || Z.state_len > scap || Z.bm_len > bcap)
		return (-1);
	memcpy(s, Z.state, Z.state_len);
	*sl = Z.state_len;
	memcpy(b, Z.bm, Z.bm_len);
	*bl = Z.bm_len;
	return (0);
}

static uint32_t
z_cap(void *ctx)
{
	return (FZ_SLOT);
}

static int
z_erase(void *ctx, uint32_t off, uint32_t len)
{
	if (off > FZ_SLOT || len > FZ_SLOT - off)
		abort();
	fz_rule(&N.offer);
	memset(slot + off, 0xff, len);
	return (0);
}

static int
z_write(void *ctx, uint32_t off, const uint8_t *p, size_t n)
{
	if (off > FZ_SLOT || n > FZ_SLOT - off)
		abort();
	fz_rule(&N.offer);
	memcpy(slot + off, p, n);
	return (0);
}

static int
z_read(void *ctx, uint32_t off, uint8_t *p, size_t n)
{
	if (off > FZ_SLOT || n > FZ_SLOT - off)
		abort();
	memcpy(p, slot + off, n);
	return (0);
}

static uint32_t
z_pkg_cap(void *ctx)
{
	return (FZ_PKG);
}

static int
z_pkg_erase(void *ctx, uint32_t off, uint32_t len)
{
	if (off > FZ_PKG || len > FZ_PKG - off)
		abort();
	fz_rule(&N.offer);
	memset(area + off, 0xff, len);
	return (0);
}

static int
z_pkg_write(void *ctx, uint32_t off, const uint8_t *p, size_t n)
{
	if (off > FZ_PKG || n > FZ_PKG - off)
		abort();
	fz_rule(&N.offer);
	memcpy(area + off, p, n);
	return (0);
}

static int
z_pkg_read(void *ctx, uint32_t off, uint8_t *p, size_t n)
{
	if (off > FZ_PKG || n > FZ_PKG - off)
		abort();
	memcpy(p, area + off, n);
	return (0);
}

/* The running image: what the delta's source reads. */
static int
z_base_read(void *ctx, uint32_t off, uint8_t *p, size_t n)
{
	size_t	 i;

	if (off > FZ_SLOT || n > FZ_SLOT - off)
		abort();
	for (i = 0; i < n; i++)
		p[i] = (uint8_t)((off + i) * 7);
	return (0);
}

static int
z_sha_begin(void *ctx)
{
	return (EVP_DigestInit_ex(Z.md, EVP_sha256(), NULL) == 1 ? 0 : -1);
}

static int
z_sha_update(void *ctx, const uint8_t *p, size_t n)
{
	return (EVP_DigestUpdate(Z.md, p, n) == 1 ? 0 : -1);
}

static int
z_sha_end(void *ctx, uint8_t md[32])
{
	unsigned int	 len = 32;

	return (EVP_DigestFinal_ex(Z.md, md, &len) == 1 ? 0 : -1);
}

static int
z_sig(void *ctx, const struct up_offer *o, const uint8_t *desc, size_t len)
{
	uint8_t		 d[UP_DESC_MAX];
	int		 l;
	uint32_t	 c;

	/* The engine hands over the descriptor of `o'. */
	if ((l = up_desc_encode(o, d, sizeof(d))) < 0 || (size_t)l != len ||
	    memcmp(d, desc, len) != 0)
		abort();
	c = up_crc32(0, desc, len);
	if (o->sig_alg != UP_SIG_ED25519 || o->sig_len != 64 ||
	    memcmp(o->sig, &c, 4) != 0)
		return (UP_R_SIGNATURE);
	return (UP_R_INITIAL);
}

static int
z_activate(void *ctx, const struct up_offer *o)
{
	uint8_t		 md[32];

	if (o != &N.offer && memcmp(o, &N.offer, sizeof(*o)) != 0)
		abort();
	fz_rule(o);
	if (o->image_size > FZ_SLOT)
		abort();
	fz_sha(slot, o->image_size, md);
	if (memcmp(md, o->image_sha256, 32) != 0)
		abort();	/* not the signed bytes */
	return (0);
}

static const struct up_port zport = {
	.send = z_send,
	.now_ms = z_now,
	.random = z_random,
	.save = z_save,
	.save_bitmap = z_save_bitmap,
	.load = z_load,
	.slot_capacity = z_cap,
	.slot_erase = z_erase,
	.slot_write = z_write,
	.slot_read = z_read,
	.sha256_begin = z_sha_begin,
	.sha256_update = z_sha_update,
	.sha256_end = z_sha_end,
	.sig_verify = z_sig,
	.activate = z_activate,
	.pkg_capacity = z_pkg_cap,
	.pkg_erase = z_pkg_erase,
	.pkg_write = z_pkg_write,
	.pkg_read = z_pkg_read,
	.base_read = z_base_read
};

/* ------------------------------------------------------------------ */
/* The node's life                                                    */

static void
fz_quiet(int level, const char *fmt, va_list ap)
{
}

static void
consistent(void)
{
	uint32_t	 session;
	uint8_t		 st = up_node_get_state(&N, &session, NULL);
	int		 c;

	if (st > UP_NS_FAILED || (st == UP_NS_IDLE) != (session == 0))
		abort();
	if (N.work > 5 || (N.work == 1 && st != UP_NS_RECEIVING) ||
	    (N.work >= 2 && st != UP_NS_DOWNLOADED))
		abort();
	if (session != 0 && (N.held.nbits != N.offer.nblocks ||
	    N.nheld != up_bitmap_count(&N.held) ||
	    N.nheld > N.offer.nblocks))
		abort();
	/* DOWNLOADED and on hold every block; RECEIVING not. */
	if (session != 0 && st >= UP_NS_DOWNLOADED && st <= UP_NS_VERIFIED &&
	    N.nheld != N.offer.nblocks)
		abort();
	for (c = 0; c < 2; c++)
		if (up_node_get_floor(&N, comps[c]) < Z.saved_floor[c])
			abort();	/* a floor fell */
}

static void
boot(void)
{
	struct up_node_info info;
	int		 c;

	memset(&info, 0, sizeof(info));
	info.node_id = FZ_NODE;
	strcpy(info.hw, "fz-hw");
	info.max_frame = UP_FRAME_MAX;
	info.battery = UP_BATTERY_UNKNOWN;
	info.rssi_dbm = UP_RSSI_UNKNOWN;
	info.snr_db = UP_SNR_UNKNOWN;
	info.ncomp = 2;
	for (c = 0; c < 2; c++) {
		strcpy(info.comp[c].name, comps[c]);
		strcpy(info.comp[c].version, Z.run[c]);
	}
	up_node_init(&N, &zport, &Z, &info, bitmap, sizeof(bitmap));
	up_node_set_fec_workspace(&N, ws, sizeof(ws));
	up_node_set_delta_mem(&N, &vcd, vcd_buf, sizeof(vcd_buf));
	if (up_node_start(&N, NULL) != UP_OK)
		abort();
	consistent();
}

/* The switch the node asked for: its image boots, or rolls back. */
static void
fz_switched(void)
{
	uint32_t	 session;
	int		 c;

	if (up_node_get_state(&N, &session, NULL) != UP_NS_ACTIVATING ||
	    !N.switched)
		return;
	c = fz_comp(N.offer.component);
	if (c >= 0 && !Z.rollback)
		strcpy(Z.run[c], N.offer.to_version);
	boot();
}

/* Ticks while the node has work due, as a main loop does. */
static void
fz_settle(void)
{
	unsigned int	 i;

	for (i = 0; i < 4096; i++) {
		if (up_node_next_ms(&N) != 0)
			break;
		up_node_tick(&N);
		consistent();
		fz_switched();
	}
}

static void
fz_input(const uint8_t *f, size_t len)
{
	int	 e;

	if (len > sizeof(Z.last))
		len = sizeof(Z.last);
	memcpy(Z.last, f, len);
	Z.last_len = len;
	e = up_node_input(&N, f, len);
	if (e > 0)
		abort();
	consistent();
	fz_switched();
	fz_settle();
}

static void
fz_send_msg(const struct up_msg *m)
{
	uint8_t	 f[UP_FRAME_MAX];
	int	 n;

	if ((n = up_encode(m, f, sizeof(f))) > 0)
		fz_input(f, (size_t)n);
}

/* ------------------------------------------------------------------ */
/* The gateway side                                                   */

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

static struct fz_sess *
sess_pick(uint8_t v)
{
	return (&Z.sess[v % FZ_NSESS]);
}

static uint32_t
sess_id(uint8_t v)
{
	/* A few known ids, sometimes one nobody offered, or 0. */
	if (v >= 0xf0)
		return (v == 0xff ? 0 : 0x0bad0000u + v);
	return (sess_pick(v)->id);
}

static uint64_t
target_pick(uint8_t v)
{
	switch (v % 3) {
	case 0:
		return (0);
	case 1:
		return (FZ_NODE);
	default:
		return (FZ_OTHER);
	}
}

static const char *const versions[] = {
	"1.0.0", "1.1.0", "0.9.0", "2.0.0", "1.1.0-rc.1", "2.1", "10.0.0",
	"1.0.0+b2"
};

static void
op_offer(struct fz_in *in)
{
	static const uint16_t	 blocks[] = { 32, 100, 256, 1024 };
	struct fz_sess		*s = sess_pick(in_u8(in));
	struct up_offer		*o = &s->o;
	struct up_msg		 m;
	uint8_t			 what = in_u8(in), vp = in_u8(in);
	uint8_t			 size = in_u8(in), bp = in_u8(in);
	uint8_t			 secv = in_u8(in), flags = in_u8(in);
	uint32_t		 i, x;

	memset(o, 0, sizeof(*o));
	strcpy(o->component, comps[(what >> 1) & 1]);
	if (what & 4) {
		o->nhw = 1;
		strcpy(o->hw[0], (what & 8) ? "other-hw" : "fz-hw");
	}
	strcpy(o->to_version, versions[vp % 8]);
	o->security_version = secv & 0x0f;
	o->desc_flags = flags & 0x03;
	if (what & 1) {
		/* The delta of vec_delta, from 1.0.0. */
		o->kind = UP_KIND_DELTA;
		o->delta_format = UP_DELTA_VCDIFF;
		strcpy(o->from_version, (what & 16) ? "0.9.0" : "1.0.0");
		o->size = sizeof(vec_delta);
		memcpy(s->pkg, vec_delta, sizeof(vec_delta));
		o->image_size = sizeof(vec_image) - 1;
		fz_sha((const uint8_t *)vec_image, o->image_size,
		    o->image_sha256);
		fz_sha(s->pkg, o->size, o->sha256);
	} else {
		o->kind = UP_KIND_FULL;
		o->size = 1 + (uint32_t)size * 31;
		x = 0x12345u + size;
		for (i = 0; i < o->size; i++) {
			x = x * 1103515245u + 12345u;
			s->pkg[i] = (uint8_t)(x >> 16);
		}
		fz_sha(s->pkg, o->size, o->sha256);
		memcpy(o->image_sha256, o->sha256, 32);
		o->image_size = o->size;
	}
	/* A wrong hash: the verification fails. */
	if (what & 32)
		o->sha256[0] ^= 1;
	if (what & 64)
		o->ndeps = 1, strcpy(o->deps[0].component, "boot"),
		    strcpy(o->deps[0].min_version, "2.0.0");
	o->block_size = blocks[bp & 3];
	o->nblocks = (o->size + o->block_size - 1) / o->block_size;
	o->deadline_s = 600;
	if (!(what & 128))
		fz_sign(o);	/* else unsigned: declined */
	if (bp & 4)
		s->id = 0x5e550000u + (bp >> 3);	/* a new session id */
	else if (s->id == 0)
		s->id = 0x5e550100u + (uint32_t)(s - Z.sess);
	s->on = true;
	memset(&m, 0, sizeof(m));
	m.type = UP_T_OFFER;
	m.session = s->id;
	m.u.offer = *o;
	fz_send_msg(&m);
}

static uint32_t
blk_len(const struct up_offer *o, uint32_t index)
{
	if (o->nblocks == 0 || index >= o->nblocks)
		return (0);
	if (index == o->nblocks - 1)
		return (o->size - index * o->block_size);
	return (o->block_size);
}

static void
op_data(struct fz_in *in)
{
	uint8_t		 sv = in_u8(in), f[UP_FRAME_MAX];
	struct fz_sess	*s = sess_pick(sv);
	uint16_t	 index = in_u16(in);
	uint8_t		 how = in_u8(in);
	uint32_t	 len;
	int		 n;

	len = blk_len(&s->o, index);
	if (how & 1)
		len = (how >> 1) * 9;	/* a wrong length */
	if (len == 0 || len > UP_FRAME_MAX - UP_DATA_OVERHEAD)
		return;
	if (index < s->o.nblocks && index * s->o.block_size + len <=
	    sizeof(s->pkg))
		memcpy(f + UP_DATA_OFF, s->pkg + index * s->o.block_size,
		    len);
	else
		memset(f + UP_DATA_OFF, 0x3c, len);
	if (how & 0x80)
		f[UP_DATA_OFF] ^= 0xa5;		/* noise */
	n = up_seal_data(f, sizeof(f), UP_T_DATA, (how & 0x40) ?
	    UP_F_REPAIR : 0, sess_id(sv), index, (uint16_t)len);
	if (n > 0)
		fz_input(f, (size_t)n);
}

static const struct fz_sess	*par_s;

static int
par_read(void *ctx, uint16_t i, uint8_t *buf, size_t blen)
{
	uint32_t	 first = *(const uint32_t *)ctx, index, len;

	index = first + i;
	len = blk_len(&par_s->o, index);
	memset(buf, 0, blen);
	if (len > blen)
		len = (uint32_t)blen;
	if (len > 0 && index * par_s->o.block_size + len <=
	    sizeof(par_s->pkg))
		memcpy(buf, par_s->pkg + index * par_s->o.block_size, len);
	return (0);
}

static void
op_parity(struct fz_in *in)
{
	uint8_t		 sv = in_u8(in), f[UP_FRAME_MAX];
	uint8_t		 bits[16], scratch[1024];
	struct fz_sess	*s = sess_pick(sv);
	uint16_t	 row = in_u16(in), group = in_u16(in);
	uint8_t		 k = in_u8(in), how = in_u8(in);
	uint32_t	 first, m;
	uint16_t	 blen = s->o.block_size;
	int		 n;

	if (k == 0 || k > 128 || blen == 0 || blen > sizeof(scratch) ||
	    (size_t)blen + UP_PARITY_OVERHEAD > UP_FRAME_MAX)
		return;
	group %= 64;
	first = (uint32_t)group * k;
	m = first < s->o.nblocks ? s->o.nblocks - first : 1;
	if (m > k)
		m = k;
	par_s = s;
	if (row == 0)
		row = 1;
	if (up_fec_encode(row, (uint16_t)m, f + UP_FEC_DATA_OFF, blen, bits,
	    scratch, par_read, &first) != UP_OK)
		return;
	if (how & 1)
		f[UP_FEC_DATA_OFF + how % blen] ^= 0x5a;	/* noise */
	n = up_fec_seal_parity(f, sizeof(f), (how & 2) ? UP_F_REPAIR : 0,
	    sess_id(sv), row, group, (how & 4) ? (uint16_t)(k + 1) : k,
	    blen);
	if (n > 0)
		fz_input(f, (size_t)n);
}

static void
op_xor(struct fz_in *in)
{
	uint8_t		 sv = in_u8(in), f[UP_FRAME_MAX];
	struct fz_sess	*s = sess_pick(sv);
	uint8_t		 nn = in_u8(in) % 6 + 1, gap = in_u8(in) % 5 + 1;
	uint16_t	 first = in_u16(in);
	uint8_t		 how = in_u8(in);
	uint32_t	 idx[6], i, j, len, maxlen = 0, bl;
	size_t		 off;
	int		 n;

	for (i = 0; i < nn; i++) {
		idx[i] = (uint32_t)first + i * gap;
		if ((bl = blk_len(&s->o, idx[i])) > maxlen)
			maxlen = bl;
	}
	if (maxlen == 0)
		maxlen = 16;
	if ((off = up_xor_data_off(nn, idx)) == 0 ||
	    off + maxlen + UP_CRC_LEN > UP_FRAME_MAX)
		return;
	memset(f + off, 0, maxlen);
	for (i = 0; i < nn; i++) {
		len = blk_len(&s->o, idx[i]);
		for (j = 0; j < len && idx[i] * s->o.block_size + j <
		    sizeof(s->pkg); j++)
			f[off + j] ^= s->pkg[idx[i] * s->o.block_size + j];
	}
	if (how & 1)
		f[off] ^= 0x77;		/* noise */
	n = up_xor_seal(f, sizeof(f), (how & 2) ? UP_F_REPAIR : 0,
	    sess_id(sv), nn, idx, (uint16_t)maxlen);
	if (n > 0)
		fz_input(f, (size_t)n);
}

static void
op_target(struct fz_in *in, uint8_t type)
{
	struct up_msg	 m;
	uint8_t		 sv = in_u8(in), tp = in_u8(in), v = in_u8(in);

	memset(&m, 0, sizeof(m));
	m.type = type;
	m.session = sess_id(sv);
	m.u.target.node_id = target_pick(tp);
	m.u.target.window_ms = (uint16_t)v * 8;
	m.u.target.reason = v % 21;
	fz_send_msg(&m);
}

static void
op_activate(struct fz_in *in)
{
	struct up_msg	 m;
	uint8_t		 sv = in_u8(in), tp = in_u8(in);
	uint16_t	 delay = in_u16(in);

	memset(&m, 0, sizeof(m));
	m.type = UP_T_ACTIVATE;
	m.session = sess_id(sv);
	m.u.activate.node_id = target_pick(tp);
	m.u.activate.delay_ms = delay;
	fz_send_msg(&m);
}

static void
op_time(uint16_t ms)
{
	Z.now += ms;
	up_node_tick(&N);
	consistent();
	fz_switched();
	fz_settle();
}

/* Every block of the node's session as its gateway sent it, VERIFY. */
static void
op_all(void)
{
	struct fz_sess	*s = NULL;
	struct up_msg	 m;
	uint8_t		 f[UP_FRAME_MAX];
	uint32_t	 i, len;
	int		 k, n;

	for (k = 0; k < FZ_NSESS; k++)
		if (Z.sess[k].on && Z.sess[k].id == N.session)
			s = &Z.sess[k];
	if (s == NULL)
		return;
	for (i = 0; i < s->o.nblocks && N.session == s->id; i++) {
		len = blk_len(&s->o, i);
		if (len > UP_FRAME_MAX - UP_DATA_OVERHEAD)
			return;
		memcpy(f + UP_DATA_OFF, s->pkg + i * s->o.block_size, len);
		if ((n = up_seal_data(f, sizeof(f), UP_T_DATA, 0, s->id, i,
		    (uint16_t)len)) > 0)
			fz_input(f, (size_t)n);
	}
	op_time(100);
	memset(&m, 0, sizeof(m));
	m.type = UP_T_VERIFY;
	m.session = s->id;
	fz_send_msg(&m);
	op_time(1000);
}

static void
op_mutate(struct fz_in *in)
{
	uint8_t		 f[UP_FRAME_MAX];
	uint8_t		 where = in_u8(in), x = in_u8(in);
	uint32_t	 c;
	size_t		 len = Z.last_len;

	if (len < UP_OVERHEAD)
		return;
	memcpy(f, Z.last, len);
	f[where % (len - UP_CRC_LEN)] ^= x;
	c = up_crc32(0, f, len - UP_CRC_LEN);
	f[len - 4] = (uint8_t)c;
	f[len - 3] = (uint8_t)(c >> 8);
	f[len - 2] = (uint8_t)(c >> 16);
	f[len - 1] = (uint8_t)(c >> 24);
	fz_input(f, len);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz_in	 in = { data, size, 0 };
	struct up_msg	 m;
	EVP_MD_CTX	*md = Z.md;
	uint8_t		 op, len;

	up_log_set_hook(fz_quiet);
	if (md == NULL && (md = EVP_MD_CTX_new()) == NULL)
		abort();
	memset(&Z, 0, sizeof(Z));
	Z.md = md;
	Z.now = 0xffff0000u;		/* wraps during the run */
	Z.rnd = 0x2545f491;
	strcpy(Z.run[0], "1.0.0");
	strcpy(Z.run[1], "2.0.0");
	boot();
	while (in.off < in.len) {
		op = in_u8(&in);
		switch (op % 16) {
		case 0:
			len = in_u8(&in);
			if (len > in.len - in.off)
				len = (uint8_t)(in.len - in.off);
			fz_input(in.p + in.off, len);
			in.off += len;
			break;
		case 1:
			op_offer(&in);
			break;
		case 2:
			op_data(&in);
			break;
		case 3:
			op_parity(&in);
			break;
		case 4:
			op_xor(&in);
			break;
		case 5:
			op_target(&in, UP_T_STATUS_REQ);
			break;
		case 6:
			op_target(&in, UP_T_VERIFY);
			break;
		case 7:
			op_target(&in, UP_T_RESULT_ACK);
			break;
		case 8:
			op_target(&in, UP_T_ABORT);
			break;
		case 9:
			op_activate(&in);
			break;
		case 10:
			memset(&m, 0, sizeof(m));
			m.type = UP_T_DISCOVER;
			m.u.discover.window_ms = in_u16(&in);
			fz_send_msg(&m);
			break;
		case 11:
			op_time(in_u16(&in));
			break;
		case 12:
			boot();		/* power cut: RAM is gone */
			break;
		case 13:
			op_mutate(&in);
			break;
		case 14:
			Z.rollback = (in_u8(&in) & 1) != 0;
			break;
		default:
			op_all();
			break;
		}
	}
	/* Long quiet: timers run out, nothing breaks. */
	op_time(60000);
	op_time(60000);
	return (0);
}
