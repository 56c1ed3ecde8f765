/*
 * test_up_node.c: the node-side UP engine (up/up_node.c) against a fake
 * port: a fake clock, captured frames decoded with up_decode(), a memory
 * slot and a memory "flash" for the saved state, OpenSSL's SHA-256, and
 * a fake "signature" (the SHA-256 of the descriptor, twice) that stands
 * for the cloud's Ed25519 key.  A "power cut" throws the engine away and
 * starts a new one from what the fake saved.
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
#define OTHER_ID	0x0000000000000042ULL
#define SLOT_CAP	(32 * 1024)	/* the default slot (F.cap) */
#define BIG_CAP		(256 * 1024)	/* the most F.cap may be */
#define BITMAP_CAP	4096		/* bytes: 32768 blocks */
#define MAX_SENT	256

struct fake {
	uint32_t	 now;
	uint32_t	 rnd;
	/* Frames the node sent. */
	uint8_t		 sent[MAX_SENT][UP_FRAME_MAX];
	size_t		 sent_len[MAX_SENT];
	int		 nsent;
	/* The node's persistent memory. */
	uint8_t		 state[UP_NODE_STATE_MAX];
	size_t		 state_len;
	uint8_t		 bitmap[BITMAP_CAP];
	size_t		 bitmap_len;
	int		 saved;
	int		 nsaves;
	uint64_t	 meta;		/* bytes written by saves */
	int		 nspans;	/* save_bitmap calls */
	int		 save_fail;
	/* The staging slot. */
	uint8_t		 slot[BIG_CAP];
	uint32_t	 cap;
	int		 nprepare;	/* erases begun (offset 0) */
	int		 nerase;	/* erase steps */
	uint32_t	 erase_max;	/* longest erase step */
	int		 erase_fail;
	int		 nwrites;
	int		 write_fail;
	int		 nreads;
	int		 read_fail;
	/* SHA-256 and the fake signature. */
	EVP_MD_CTX	*sha;
	int		 nverify;	/* hashes completed */
	size_t		 hash_max;	/* bytes hashed in one tick */
	size_t		 hash_tick;
	int		 sig_result;	/* forced sig_verify result, or 0 */
	int		 nsig;		/* sig_verify calls */
	/* Decisions. */
	int		 offer_code;
	int		 nactivate;
	int		 activate_ret;
	uint8_t		 last_state;
	int		 nstate;
};

static struct fake	 F;
static struct up_node	 N;
static uint8_t		 bitmap_buf[BITMAP_CAP];
static uint8_t		 image[BIG_CAP];

static int
f_send(void *ctx, const uint8_t *frame, size_t len)
{
	struct fake	*f = ctx;

	assert_true(len <= UP_FRAME_MAX);
	assert_true(f->nsent < MAX_SENT);
	memcpy(f->sent[f->nsent], frame, len);
	f->sent_len[f->nsent++] = len;
	return (0);
}

static uint32_t
f_now(void *ctx)
{
	return (((struct fake *)ctx)->now);
}

static uint32_t
f_random(void *ctx)
{
	return (((struct fake *)ctx)->rnd);
}

static int
f_save(void *ctx, const uint8_t *state, size_t state_len,
    const uint8_t *bitmap, size_t bitmap_len)
{
	struct fake	*f = ctx;

	if (f->save_fail)
		return (-1);
	assert_true(state_len <= sizeof(f->state));
	assert_true(bitmap_len <= sizeof(f->bitmap));
	memcpy(f->state, state, state_len);
	f->state_len = state_len;
	memcpy(f->bitmap, bitmap, bitmap_len);
	f->bitmap_len = bitmap_len;
	f->saved = 1;
	f->nsaves++;
	f->meta += state_len + bitmap_len;
	return (0);
}

/* Progress in place: only ever sets bits of what save() stored. */
static int
f_save_bitmap(void *ctx, uint32_t off, const uint8_t *p, size_t n)
{
	struct fake	*f = ctx;
	size_t		 i;

	if (f->save_fail)
		return (-1);
	assert_true(f->saved && off + n <= f->bitmap_len);
	for (i = 0; i < n; i++)
		assert_int_equal(f->bitmap[off + i] & ~p[i], 0);
	memcpy(f->bitmap + off, p, n);
	f->meta += n;
	f->nspans++;
	return (0);
}

static int
f_load(void *ctx, uint8_t *state, size_t state_cap, size_t *state_len,
    uint8_t *bitmap, size_t bitmap_cap, size_t *bitmap_len)
{
	struct fake	*f = ctx;

	if (!f->saved || f->state_len > state_cap ||
	    f->bitmap_len > bitmap_cap)
		return (-1);
	memcpy(state, f->state, f->state_len);
	*state_len = f->state_len;
	memcpy(bitmap, f->bitmap, f->bitmap_len);
	*bitmap_len = f->bitmap_len;
	return (0);
}

static uint32_t
f_slot_capacity(void *ctx)
{
	return (((struct fake *)ctx)->cap);
}

static int
f_slot_erase(void *ctx, uint32_t off, uint32_t len)
{
	struct fake	*f = ctx;

	if (f->erase_fail)
		return (-1);
	assert_true(off <= f->cap && len <= f->cap - off);
	/* Step-aligned ranges (the port's sector rule). */
	assert_int_equal(off % UP_NODE_ERASE_STEP, 0);
	memset(f->slot + off, 0xff, len);
	if (off == 0)
		f->nprepare++;
	f->nerase++;
	if (len > f->erase_max)
		f->erase_max = len;
	return (0);
}

static int
f_slot_write(void *ctx, uint32_t off, const uint8_t *p, size_t n)
{
	struct fake	*f = ctx;

	if (f->write_fail)
		return (-1);
	assert_true(off + n <= f->cap);
	memcpy(f->slot + off, p, n);
	f->nwrites++;
	return (0);
}

static int
f_slot_read(void *ctx, uint32_t off, uint8_t *p, size_t n)
{
	struct fake	*f = ctx;

	if (f->read_fail)
		return (-1);
	assert_true(off + n <= f->cap);
	memcpy(p, f->slot + off, n);
	f->nreads++;
	return (0);
}

static int
f_offer_check(void *ctx, const struct up_offer *o)
{
	return (((struct fake *)ctx)->offer_code);
}

static int
f_sha_begin(void *ctx)
{
	struct fake	*f = ctx;

	if (f->sha == NULL)
		assert_non_null(f->sha = EVP_MD_CTX_new());
	assert_int_equal(EVP_DigestInit_ex(f->sha, EVP_sha256(), NULL), 1);
	return (0);
}

static int
f_sha_update(void *ctx, const uint8_t *p, size_t n)
{
	struct fake	*f = ctx;

	f->hash_tick += n;
	if (f->hash_tick > f->hash_max)
		f->hash_max = f->hash_tick;
	assert_int_equal(EVP_DigestUpdate(f->sha, p, n), 1);
	return (0);
}

static int
f_sha_end(void *ctx, uint8_t md[32])
{
	struct fake	*f = ctx;
	unsigned int	 len = 0;

	assert_int_equal(EVP_DigestFinal_ex(f->sha, md, &len), 1);
	assert_int_equal(len, 32);
	f->nverify++;
	return (0);
}

/* The fake cloud key: a "signature" is SHA-256(desc) twice. */
static void
fake_sign(const uint8_t *desc, size_t len, uint8_t sig[64])
{
	unsigned int	 n = 0;

	assert_int_equal(EVP_Digest(desc, len, sig, &n, EVP_sha256(), NULL),
	    1);
	memcpy(sig + 32, sig, 32);
}

static int
f_sig_verify(void *ctx, const struct up_offer *o, const uint8_t *desc,
    size_t len)
{
	struct fake	*f = ctx;
	uint8_t		 want[64], chk[UP_DESC_MAX];

	f->nsig++;
	/* The engine hands over exactly up_desc_encode(o). */
	assert_int_equal(up_desc_encode(o, chk, sizeof(chk)), (int)len);
	assert_memory_equal(chk, desc, len);
	if (f->sig_result != 0)
		return (f->sig_result);
	if (o->sig_alg != UP_SIG_ED25519)
		return (UP_R_UNSUPPORTED);
	fake_sign(desc, len, want);
	if (o->sig_len != 64 || memcmp(o->sig, want, 64) != 0)
		return (UP_R_SIGNATURE);
	return (UP_R_INITIAL);
}

static int
f_activate(void *ctx, const struct up_offer *o)
{
	struct fake	*f = ctx;

	f->nactivate++;
	return (f->activate_ret);
}

static void
f_state_changed(void *ctx, uint8_t state, uint8_t result)
{
	struct fake	*f = ctx;

	f->last_state = state;
	f->nstate++;
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
	.offer_check = f_offer_check,
	.sha256_begin = f_sha_begin,
	.sha256_update = f_sha_update,
	.sha256_end = f_sha_end,
	.sig_verify = f_sig_verify,
	.activate = f_activate,
	.state_changed = f_state_changed
};

/* The same port, with progress saves in place (a NOR flash port). */
static struct up_port	 fake_port_nor;
static const struct up_port *port = &fake_port;

/* ------------------------------------------------------------------ */
/* Helpers                                                            */

static void
info_fill(struct up_node_info *info, const char *app_version)
{
	memset(info, 0, sizeof(*info));
	info->node_id = NODE_ID;
	strcpy(info->hw, "sim-1");
	info->max_frame = UP_FRAME_MAX;
	info->battery = UP_BATTERY_UNKNOWN;
	info->rssi_dbm = UP_RSSI_UNKNOWN;
	info->snr_db = UP_SNR_UNKNOWN;
	info->ncomp = 2;
	strcpy(info->comp[0].name, "app");
	strcpy(info->comp[0].version, app_version);
	strcpy(info->comp[1].name, "os");
	strcpy(info->comp[1].version, "2.3");
}

static void	 settle(void);

/* Boots a node whose "app" runs `version' from what F saved. */
static void
boot(const char *version)
{
	struct up_node_info info;

	info_fill(&info, version);
	/* A new engine: nothing survives but F's saved state and slot. */
	memset(&N, 0x5a, sizeof(N));
	memset(bitmap_buf, 0xa5, sizeof(bitmap_buf));
	up_node_init(&N, port, &F, &info, bitmap_buf,
	    sizeof(bitmap_buf));
	assert_int_equal(up_node_start(&N, NULL), UP_OK);
	settle();
}

static int
setup(void **state)
{
	uint32_t	 i;

	EVP_MD_CTX_free(F.sha);
	port = &fake_port;
	fake_port_nor = fake_port;
	fake_port_nor.save_bitmap = f_save_bitmap;
	memset(&F, 0, sizeof(F));
	F.now = 1000;
	F.cap = SLOT_CAP;
	F.offer_code = UP_R_INITIAL;
	for (i = 0; i < sizeof(image); i++)
		image[i] = (uint8_t)(i * 7 + i / 251);
	boot("1.0.0");
	return (0);
}

static void
clear_sent(void)
{
	F.nsent = 0;
}

static int
count_sent(uint8_t type)
{
	int		 i, n = 0;
	uint8_t		 t;

	for (i = 0; i < F.nsent; i++) {
		assert_int_equal(up_peek(F.sent[i], F.sent_len[i], &t, NULL),
		    UP_OK);
		if (t == type)
			n++;
	}
	return (n);
}

/* Decodes the last frame of `type' the node sent; fails if none. */
static void
last_sent(uint8_t type, struct up_msg *m)
{
	int		 i;
	uint8_t		 t;

	for (i = F.nsent - 1; i >= 0; i--) {
		assert_int_equal(up_peek(F.sent[i], F.sent_len[i], &t, NULL),
		    UP_OK);
		if (t == type) {
			assert_int_equal(up_decode(F.sent[i], F.sent_len[i],
			    m), UP_OK);
			return;
		}
	}
	fail_msg("no frame of type %u sent", type);
}

/*
 * Runs the engine's work in steps (erase, hash, apply) to its end, one
 * up_node_tick() per step, as a port's loop does while up_node_next_ms()
 * is 0.  The clock does not move.
 */
static void
settle(void)
{
	int		 i;

	for (i = 0; i < 100000 && N.work != 0; i++) {
		F.hash_tick = 0;
		up_node_tick(&N);
	}
	assert_int_equal(N.work, 0);
}

/* One frame in, without running the work it starts. */
static int
feed_raw(const struct up_msg *m)
{
	uint8_t		 buf[UP_FRAME_MAX];
	int		 len;

	len = up_encode(m, buf, sizeof(buf));
	assert_true(len > 0);
	return (up_node_input(&N, buf, (size_t)len));
}

/* One frame in; then the work it started runs to its end. */
static int
feed(const struct up_msg *m)
{
	int		 e;

	e = feed_raw(m);
	settle();
	return (e);
}

/* Signs `o' with the fake cloud key (after any change to it). */
static void
offer_sign(struct up_offer *o)
{
	uint8_t		 desc[UP_DESC_MAX];
	int		 n;

	n = up_desc_encode(o, desc, sizeof(desc));
	assert_true(n > 0);
	o->sig_alg = UP_SIG_ED25519;
	o->sig_len = 64;
	fake_sign(desc, (size_t)n, o->sig);
}

/* A signed full image of `image': its first `size' bytes. */
static void
offer_fill(struct up_offer *o, uint32_t size, uint16_t block_size)
{
	unsigned int	 n = 0;

	memset(o, 0, sizeof(*o));
	strcpy(o->component, "app");
	strcpy(o->to_version, "1.1.0");
	o->kind = UP_KIND_FULL;
	o->size = size;
	o->image_size = size;
	assert_int_equal(EVP_Digest(image, size, o->sha256, &n, EVP_sha256(),
	    NULL), 1);
	memcpy(o->image_sha256, o->sha256, sizeof(o->sha256));
	o->block_size = block_size;
	o->nblocks = up_nblocks(size, block_size);
	o->deadline_s = 600;
	offer_sign(o);
}

static int
send_offer(uint32_t session, const struct up_offer *o)
{
	struct up_msg	 m;

	memset(&m, 0, sizeof(m));
	m.type = UP_T_OFFER;
	m.session = session;
	m.u.offer = *o;
	return (feed(&m));
}

/* The default package: 1037 bytes in 100-byte blocks (11 blocks). */
#define PKG_SIZE	1037
#define PKG_BS		100
#define PKG_NB		11
#define S1		0xc0ffee01u
#define S2		0xc0ffee02u

static void
offer_default(uint32_t session)
{
	struct up_offer	 o;

	offer_fill(&o, PKG_SIZE, PKG_BS);
	assert_int_equal(send_offer(session, &o), UP_OK);
}

static int
send_block(uint32_t session, uint32_t index, uint32_t size, uint16_t bs)
{
	struct up_msg	 m;
	uint32_t	 off = index * bs;

	memset(&m, 0, sizeof(m));
	m.type = UP_T_DATA;
	m.session = session;
	m.u.data.index = index;
	m.u.data.len = (uint16_t)(size - off < bs ? size - off : bs);
	m.u.data.data = image + off;
	return (feed(&m));
}

/*
 * An XOR (§4.15) of the listed blocks of a `size'-byte image in `bs'
 * blocks, each zero-padded to the longest; `delta' changes the data
 * length the frame carries (0: the right one).  Indices past the image
 * count as whole blocks of zeros.
 */
static int
send_xor(uint32_t session, uint8_t n, const uint32_t *idx, uint32_t size,
    uint16_t bs, int delta)
{
	static uint8_t	 data[UP_FRAME_MAX];
	struct up_msg	 m;
	uint32_t	 off, bl, len = 0, j;
	unsigned int	 i;

	memset(data, 0, sizeof(data));
	memset(&m, 0, sizeof(m));
	for (i = 0; i < n; i++) {
		off = idx[i] * bs;
		bl = off >= size ? bs : size - off < bs ? size - off : bs;
		if (bl > len)
			len = bl;
		for (j = 0; j < bl && off < size; j++)
			data[j] ^= image[off + j];
		m.u.xor_.index[i] = idx[i];
	}
	m.type = UP_T_XOR;
	m.flags = UP_F_REPAIR;
	m.session = session;
	m.u.xor_.n = n;
	m.u.xor_.len = (uint16_t)((int)len + delta);
	m.u.xor_.data = data;
	return (feed(&m));
}

static int
send_target(uint8_t type, uint32_t session, uint64_t node, uint16_t window,
    uint8_t reason)
{
	struct up_msg	 m;

	memset(&m, 0, sizeof(m));
	m.type = type;
	m.session = session;
	m.u.target.node_id = node;
	m.u.target.window_ms = window;
	m.u.target.reason = reason;
	return (feed(&m));
}

static int
send_activate(uint32_t session, uint64_t node, uint32_t delay)
{
	struct up_msg	 m;

	memset(&m, 0, sizeof(m));
	m.type = UP_T_ACTIVATE;
	m.session = session;
	m.u.activate.node_id = node;
	m.u.activate.delay_ms = delay;
	return (feed(&m));
}

static void
advance(uint32_t ms)
{
	F.now += ms;
	up_node_tick(&N);
	settle();
}

static uint8_t
node_state(uint32_t *session)
{
	return (up_node_get_state(&N, session, NULL));
}

/* Offer S1 and deliver every block: the node is DOWNLOADED. */
static void
download_all(uint32_t session)
{
	uint32_t	 i;

	offer_default(session);
	for (i = 0; i < PKG_NB; i++)
		assert_int_equal(send_block(session, i, PKG_SIZE, PKG_BS),
		    UP_OK);
	assert_int_equal(node_state(NULL), UP_NS_DOWNLOADED);
}

static void
verify_ok(uint32_t session)
{
	struct up_msg	 m;

	download_all(session);
	clear_sent();
	assert_int_equal(send_target(UP_T_VERIFY, session, 0, 0, 0), UP_OK);
	last_sent(UP_T_RESULT, &m);
	assert_int_equal(m.u.result.state, UP_NS_VERIFIED);
	assert_int_equal(node_state(NULL), UP_NS_VERIFIED);
}

/* ------------------------------------------------------------------ */
/* Tests                                                              */

static void
test_start_announces(void **state)
{
	struct up_node_info info;
	struct up_msg	 m;

	assert_int_equal(F.nsent, 1);
	last_sent(UP_T_ANNOUNCE, &m);
	assert_int_equal(m.session, 0);
	assert_true(m.u.announce.node_id == NODE_ID);
	assert_string_equal(m.u.announce.hw, "sim-1");
	assert_int_equal(m.u.announce.state, UP_NS_IDLE);
	assert_int_equal(m.u.announce.session, 0);
	assert_int_equal(m.u.announce.free_kib, SLOT_CAP / 1024);
	assert_int_equal(m.u.announce.ncomp, 2);
	assert_string_equal(m.u.announce.comp[0].name, "app");
	assert_string_equal(m.u.announce.comp[0].version, "1.0.0");
	/* Frames before start are refused. */
	info_fill(&info, "1.0.0");
	up_node_init(&N, port, &F, &info, bitmap_buf,
	    sizeof(bitmap_buf));
	assert_int_equal(send_target(UP_T_VERIFY, S1, 0, 0, 0), UP_ESTATE);
}

static void
test_discover_random_delay(void **state)
{
	clear_sent();
	F.rnd = 1234567;	/* % 500 = 67 */
	{
		struct up_msg	 m;

		memset(&m, 0, sizeof(m));
		m.type = UP_T_DISCOVER;
		m.u.discover.window_ms = 500;
		assert_int_equal(feed(&m), UP_OK);
	}
	assert_int_equal(up_node_next_ms(&N), 67);
	advance(66);
	assert_int_equal(count_sent(UP_T_ANNOUNCE), 0);
	advance(1);
	assert_int_equal(count_sent(UP_T_ANNOUNCE), 1);
	advance(10000);
	assert_int_equal(count_sent(UP_T_ANNOUNCE), 1);
	assert_int_equal(up_node_next_ms(&N), UP_NODE_IDLE_MS);
}

static void
test_offer_accept(void **state)
{
	struct up_msg	 m, m2;
	uint32_t	 s;

	clear_sent();
	offer_default(S1);
	assert_int_equal(F.nsent, 1);
	last_sent(UP_T_ACCEPT, &m);
	assert_int_equal(m.session, S1);
	assert_true(m.u.accept.node_id == NODE_ID);
	assert_int_equal(m.u.accept.code, UP_R_INITIAL);
	assert_int_equal(m.u.accept.st.held, 0);
	assert_int_equal(m.u.accept.st.first_missing, 0);
	assert_int_equal(m.u.accept.st.nbits, PKG_NB);
	assert_int_equal(m.u.accept.st.bits[0], 0xff);
	assert_int_equal(m.u.accept.st.bits[1], 0x07);
	assert_int_equal(node_state(&s), UP_NS_RECEIVING);
	assert_int_equal(s, S1);
	assert_int_equal(F.nprepare, 1);
	assert_true(F.saved);
	assert_int_equal(F.last_state, UP_NS_RECEIVING);

	/* A repeated OFFER gets the same ACCEPT and changes nothing. */
	F.nsaves = 0;
	offer_default(S1);
	assert_int_equal(F.nsent, 2);
	last_sent(UP_T_ACCEPT, &m2);
	assert_int_equal(F.sent_len[0], F.sent_len[1]);
	assert_memory_equal(F.sent[0], F.sent[1], F.sent_len[0]);
	assert_int_equal(F.nprepare, 1);
	assert_int_equal(F.nsaves, 0);
}

static void
test_data_gaps_status_slice(void **state)
{
	struct up_msg	 m;
	uint32_t	 i;

	offer_default(S1);
	for (i = 0; i < PKG_NB; i++)
		if (i != 3 && i != 7)
			assert_int_equal(send_block(S1, i, PKG_SIZE, PKG_BS),
			    UP_OK);
	/* Duplicates are not written again. */
	assert_int_equal(send_block(S1, 0, PKG_SIZE, PKG_BS), UP_OK);
	assert_int_equal(F.nwrites, PKG_NB - 2);
	assert_memory_equal(F.slot, image, 3 * PKG_BS);
	assert_memory_equal(F.slot + 4 * PKG_BS, image + 4 * PKG_BS,
	    3 * PKG_BS);
	assert_memory_equal(F.slot + 8 * PKG_BS, image + 8 * PKG_BS,
	    PKG_SIZE - 8 * PKG_BS);

	/* STATUS_REQ: answered after random % window. */
	clear_sent();
	F.rnd = 10123;		/* % 1000 = 123 */
	assert_int_equal(send_target(UP_T_STATUS_REQ, S1, 0, 1000, 0), UP_OK);
	assert_int_equal(F.nsent, 0);
	advance(122);
	assert_int_equal(F.nsent, 0);
	advance(1);
	assert_int_equal(F.nsent, 1);
	last_sent(UP_T_STATUS, &m);
	assert_int_equal(m.session, S1);
	assert_true(m.u.status.node_id == NODE_ID);
	assert_int_equal(m.u.status.state, UP_NS_RECEIVING);
	assert_int_equal(m.u.status.st.held, PKG_NB - 2);
	assert_int_equal(m.u.status.st.first_missing, 3);
	assert_int_equal(m.u.status.st.nbits, PKG_NB - 3);
	/* Bits relative to first_missing: blocks 3 and 7 missing. */
	assert_int_equal(m.u.status.st.bits[0], 0x11);

	/* A request for another node or session is not answered. */
	clear_sent();
	assert_int_equal(send_target(UP_T_STATUS_REQ, S1, OTHER_ID, 0, 0),
	    UP_OK);
	assert_int_equal(send_target(UP_T_STATUS_REQ, S2, 0, 0, 0), UP_OK);
	advance(5000);
	assert_int_equal(F.nsent, 0);
	/* Targeted at this node with window 0: at the next tick. */
	assert_int_equal(send_target(UP_T_STATUS_REQ, S1, NODE_ID, 0, 0),
	    UP_OK);
	assert_int_equal(up_node_next_ms(&N), 0);
	advance(0);
	assert_int_equal(count_sent(UP_T_STATUS), 1);

	/* The missing blocks complete it: one unsolicited STATUS. */
	clear_sent();
	assert_int_equal(send_block(S1, 7, PKG_SIZE, PKG_BS), UP_OK);
	assert_int_equal(F.nsent, 0);
	assert_int_equal(send_block(S1, 3, PKG_SIZE, PKG_BS), UP_OK);
	assert_int_equal(F.nsent, 1);
	last_sent(UP_T_STATUS, &m);
	assert_int_equal(m.u.status.state, UP_NS_DOWNLOADED);
	assert_int_equal(m.u.status.st.held, PKG_NB);
	assert_int_equal(m.u.status.st.first_missing, PKG_NB);
	assert_int_equal(m.u.status.st.nbits, 0);
	assert_memory_equal(F.slot, image, PKG_SIZE);
	assert_int_equal(node_state(NULL), UP_NS_DOWNLOADED);
	assert_int_equal(F.last_state, UP_NS_DOWNLOADED);
	/* More data (repairs for others) changes nothing. */
	assert_int_equal(send_block(S1, 3, PKG_SIZE, PKG_BS), UP_ESTATE);
	assert_int_equal(F.nwrites, PKG_NB);
}

static void
test_status_slice_bounded(void **state)
{
	struct up_offer	 o;
	struct up_msg	 m;
	uint32_t	 i;

	/* 20000 one-byte blocks: more than one frame can describe. */
	offer_fill(&o, 20000, 1);
	assert_int_equal(send_offer(S1, &o), UP_OK);
	last_sent(UP_T_ACCEPT, &m);
	assert_int_equal(m.u.accept.st.nbits, UP_NODE_SLICE_MAX * 8);
	for (i = 0; i < 10; i++)
		assert_int_equal(send_block(S1, i, 20000, 1), UP_OK);
	assert_int_equal(send_block(S1, 12, 20000, 1), UP_OK);
	clear_sent();
	assert_int_equal(send_target(UP_T_STATUS_REQ, S1, 0, 0, 0), UP_OK);
	advance(0);
	last_sent(UP_T_STATUS, &m);
	assert_true(F.sent_len[0] <= UP_FRAME_MAX);
	assert_int_equal(m.u.status.st.held, 11);
	assert_int_equal(m.u.status.st.first_missing, 10);
	assert_int_equal(m.u.status.st.nbits, UP_NODE_SLICE_MAX * 8);
	assert_int_equal(m.u.status.st.bits[0], 0xfb);	/* 12 held */
}

static void
test_data_bounds(void **state)
{
	struct up_msg	 m;
	uint32_t	 s;
	int		 saves, writes;

	offer_default(S1);
	saves = F.nsaves;
	writes = F.nwrites;
	clear_sent();
	/* Index past the image. */
	assert_int_equal(send_block(S1, PKG_NB, PKG_NB * PKG_BS + 10, PKG_BS),
	    UP_ERANGE);
	/* Short middle block. */
	memset(&m, 0, sizeof(m));
	m.type = UP_T_DATA;
	m.session = S1;
	m.u.data.index = 2;
	m.u.data.len = PKG_BS - 1;
	m.u.data.data = image;
	assert_int_equal(feed(&m), UP_ELEN);
	/* Last block must be exactly the remainder (37 bytes). */
	m.u.data.index = PKG_NB - 1;
	m.u.data.len = PKG_BS;
	assert_int_equal(feed(&m), UP_ELEN);
	m.u.data.len = 36;
	assert_int_equal(feed(&m), UP_ELEN);
	/* Another session's block is ignored. */
	assert_int_equal(send_block(S2, 0, PKG_SIZE, PKG_BS), UP_OK);
	assert_int_equal(F.nwrites, writes);
	assert_int_equal(F.nsaves, saves);
	assert_int_equal(F.nsent, 0);
	assert_int_equal(node_state(&s), UP_NS_RECEIVING);
	assert_int_equal(s, S1);
	/* The right remainder is taken. */
	m.u.data.len = PKG_SIZE - (PKG_NB - 1) * PKG_BS;
	m.u.data.data = image + (PKG_NB - 1) * PKG_BS;
	assert_int_equal(feed(&m), UP_OK);
	assert_int_equal(F.nwrites, writes + 1);
}

static void
test_periodic_save(void **state)
{
	uint32_t	 i;
	size_t		 cost;
	int		 saves;

	up_node_set_save_every(&N, 4);
	offer_default(S1);
	saves = F.nsaves;
	for (i = 0; i < 3; i++)
		assert_int_equal(send_block(S1, i, PKG_SIZE, PKG_BS), UP_OK);
	assert_int_equal(F.nsaves, saves);
	assert_int_equal(send_block(S1, 3, PKG_SIZE, PKG_BS), UP_OK);
	assert_int_equal(F.nsaves, saves + 1);
	/*
	 * One more block: 100 bytes, less than the save would write (the
	 * blob and the bitmap): the timer leaves it for later (wear).
	 */
	cost = F.state_len + F.bitmap_len;
	assert_true(cost > PKG_BS);
	assert_int_equal(send_block(S1, 4, PKG_SIZE, PKG_BS), UP_OK);
	assert_int_equal(up_node_next_ms(&N), UP_NODE_SAVE_DELAY_MS);
	advance(UP_NODE_SAVE_DELAY_MS);
	assert_int_equal(F.nsaves, saves + 1);
	/* Blocks worth the save: the timer saves them a second later. */
	for (i = 5; (i - 4) * PKG_BS < cost; i++)
		assert_int_equal(send_block(S1, i, PKG_SIZE, PKG_BS), UP_OK);
	assert_true(i <= 8);
	assert_int_equal(up_node_next_ms(&N), UP_NODE_SAVE_DELAY_MS);
	advance(UP_NODE_SAVE_DELAY_MS - 1);
	assert_int_equal(F.nsaves, saves + 1);
	advance(1);
	assert_int_equal(F.nsaves, saves + 2);
	assert_int_equal(F.bitmap[0], (1u << i) - 1);
	/* A clean shutdown saves whatever is left. */
	assert_int_equal(send_block(S1, i, PKG_SIZE, PKG_BS), UP_OK);
	assert_int_equal(up_node_flush(&N), UP_OK);
	assert_int_equal(F.nsaves, saves + 3);
}

static void
test_verify_ok(void **state)
{
	struct up_msg	 m;
	int		 n;

	verify_ok(S1);
	assert_int_equal(F.nverify, 1);
	last_sent(UP_T_RESULT, &m);
	assert_int_equal(m.session, S1);
	assert_int_equal(m.u.result.result, UP_R_INITIAL);
	assert_string_equal(m.u.result.component, "app");
	assert_string_equal(m.u.result.version, "1.0.0");
	/* VERIFIED is not final: no resend. */
	n = F.nsent;
	advance(60000);
	assert_int_equal(F.nsent, n);
	/* A repeated VERIFY gets the same answer, without re-checking. */
	assert_int_equal(send_target(UP_T_VERIFY, S1, NODE_ID, 0, 0), UP_OK);
	assert_int_equal(F.nsent, n + 1);
	assert_int_equal(F.nverify, 1);
	/* VERIFY for another node: nothing. */
	assert_int_equal(send_target(UP_T_VERIFY, S1, OTHER_ID, 0, 0), UP_OK);
	assert_int_equal(F.nsent, n + 1);
}

static void
test_verify_receiving_reports_status(void **state)
{
	struct up_msg	 m;

	offer_default(S1);
	assert_int_equal(send_block(S1, 0, PKG_SIZE, PKG_BS), UP_OK);
	clear_sent();
	assert_int_equal(send_target(UP_T_VERIFY, S1, 0, 0, 0), UP_OK);
	assert_int_equal(F.nverify, 0);
	last_sent(UP_T_STATUS, &m);
	assert_int_equal(m.u.status.st.held, 1);
	assert_int_equal(count_sent(UP_T_RESULT), 0);
}

/* Checks the RESULT back-off: 1, 2, 4, 8, 16, 30, 30 s. */
static void
check_backoff(uint8_t state, uint8_t result)
{
	static const uint32_t gaps[] = { 1000, 2000, 4000, 8000, 16000,
	    30000, 30000, 30000 };
	struct up_msg	 m;
	unsigned int	 i;
	int		 n;

	for (i = 0; i < sizeof(gaps) / sizeof(gaps[0]); i++) {
		n = count_sent(UP_T_RESULT);
		assert_int_equal(up_node_next_ms(&N), gaps[i]);
		advance(gaps[i] - 1);
		assert_int_equal(count_sent(UP_T_RESULT), n);
		advance(1);
		assert_int_equal(count_sent(UP_T_RESULT), n + 1);
		last_sent(UP_T_RESULT, &m);
		assert_int_equal(m.u.result.state, state);
		assert_int_equal(m.u.result.result, result);
	}
}

static void
test_verify_bad_hash(void **state)
{
	struct up_msg	 m;
	uint32_t	 i;

	/*
	 * A corrupted flash: block 5 came before block 0, so the hash reads
	 * it back from the slot (blocks in order are hashed as received).
	 */
	offer_default(S1);
	for (i = 1; i < PKG_NB; i++)
		assert_int_equal(send_block(S1, i, PKG_SIZE, PKG_BS), UP_OK);
	F.slot[5 * PKG_BS + 3] ^= 1;
	assert_int_equal(send_block(S1, 0, PKG_SIZE, PKG_BS), UP_OK);
	assert_int_equal(node_state(NULL), UP_NS_DOWNLOADED);
	clear_sent();
	assert_int_equal(send_target(UP_T_VERIFY, S1, 0, 0, 0), UP_OK);
	last_sent(UP_T_RESULT, &m);
	assert_int_equal(m.u.result.state, UP_NS_FAILED);
	assert_int_equal(m.u.result.result, UP_R_INTEGRITY);
	assert_int_equal(F.last_state, UP_NS_FAILED);
	check_backoff(UP_NS_FAILED, UP_R_INTEGRITY);
}

static void
test_verify_bad_signature(void **state)
{
	struct up_msg	 m;
	int		 n;

	download_all(S1);
	F.sig_result = UP_R_SIGNATURE;
	clear_sent();
	assert_int_equal(send_target(UP_T_VERIFY, S1, 0, 0, 0), UP_OK);
	last_sent(UP_T_RESULT, &m);
	assert_int_equal(m.u.result.state, UP_NS_FAILED);
	assert_int_equal(m.u.result.result, UP_R_SIGNATURE);
	/* A failed image is never activated. */
	assert_int_equal(send_activate(S1, 0, 0), UP_ESTATE);
	advance(0);
	assert_int_equal(F.nactivate, 0);
	/* ACK stops the resends. */
	assert_int_equal(send_target(UP_T_RESULT_ACK, S1, NODE_ID, 0, 0),
	    UP_OK);
	n = F.nsent;
	advance(120000);
	assert_int_equal(F.nsent, n);
}

static void
test_activate_confirm_ack(void **state)
{
	struct up_msg	 m;
	uint32_t	 s;
	int		 n;

	verify_ok(S1);
	/* ACTIVATE for another node does nothing. */
	assert_int_equal(send_activate(S1, OTHER_ID, 0), UP_OK);
	assert_int_equal(node_state(NULL), UP_NS_VERIFIED);
	assert_int_equal(send_activate(S1, 0, 500), UP_OK);
	assert_int_equal(node_state(NULL), UP_NS_ACTIVATING);
	assert_int_equal(F.last_state, UP_NS_ACTIVATING);
	assert_int_equal(up_node_next_ms(&N), 500);
	advance(499);
	assert_int_equal(F.nactivate, 0);
	/* A duplicate ACTIVATE does not restart the delay. */
	assert_int_equal(send_activate(S1, 0, 500), UP_OK);
	advance(1);
	assert_int_equal(F.nactivate, 1);
	/* Halted until the platform reboots it. */
	clear_sent();
	assert_int_equal(send_target(UP_T_VERIFY, S1, 0, 0, 0), UP_OK);
	advance(5000);
	assert_int_equal(F.nsent, 0);

	/* Reboot into the new version: confirmed, RESULT then ANNOUNCE. */
	boot("1.1.0");
	assert_int_equal(F.nsent, 2);
	assert_int_equal(up_peek(F.sent[0], F.sent_len[0], &m.type, NULL), 0);
	assert_int_equal(m.type, UP_T_RESULT);
	last_sent(UP_T_RESULT, &m);
	assert_int_equal(m.session, S1);
	assert_int_equal(m.u.result.state, UP_NS_UPDATED);
	assert_int_equal(m.u.result.result, UP_R_SUCCESS);
	assert_string_equal(m.u.result.version, "1.1.0");
	last_sent(UP_T_ANNOUNCE, &m);
	assert_int_equal(m.u.announce.state, UP_NS_UPDATED);
	assert_int_equal(m.u.announce.session, S1);
	check_backoff(UP_NS_UPDATED, UP_R_SUCCESS);

	/* ACKs for another node or session do not stop it. */
	assert_int_equal(send_target(UP_T_RESULT_ACK, S1, OTHER_ID, 0, 0),
	    UP_OK);
	assert_int_equal(send_target(UP_T_RESULT_ACK, S2, NODE_ID, 0, 0),
	    UP_OK);
	n = count_sent(UP_T_RESULT);
	advance(30000);
	assert_int_equal(count_sent(UP_T_RESULT), n + 1);
	assert_int_equal(send_target(UP_T_RESULT_ACK, S1, NODE_ID, 0, 0),
	    UP_OK);
	advance(300000);
	assert_int_equal(count_sent(UP_T_RESULT), n + 1);

	/* The ACK was persisted: another reboot only announces. */
	clear_sent();
	boot("1.1.0");
	assert_int_equal(F.nsent, 1);
	assert_int_equal(count_sent(UP_T_ANNOUNCE), 1);
	assert_int_equal(node_state(&s), UP_NS_UPDATED);
	assert_int_equal(s, S1);
	/*
	 * The same session's offer again (reopened for latecomers): the
	 * gateway has our acknowledged record, so not a word.  Another
	 * session's offer of the same version: already runs it.
	 */
	clear_sent();
	offer_default(S1);
	assert_int_equal(count_sent(UP_T_ACCEPT), 0);
	assert_int_equal(node_state(&s), UP_NS_UPDATED);
	offer_default(S2);
	last_sent(UP_T_ACCEPT, &m);
	assert_int_equal(m.u.accept.code, UP_R_ALREADY);
}

static void
test_rollback(void **state)
{
	struct up_msg	 m;

	verify_ok(S1);
	assert_int_equal(send_activate(S1, NODE_ID, 0), UP_OK);
	advance(0);
	assert_int_equal(F.nactivate, 1);
	clear_sent();
	/* The health check failed: the old version booted. */
	boot("1.0.0");
	last_sent(UP_T_RESULT, &m);
	assert_int_equal(m.u.result.state, UP_NS_FAILED);
	assert_int_equal(m.u.result.result, UP_R_ROLLED_BACK);
	assert_string_equal(m.u.result.version, "1.0.0");
	check_backoff(UP_NS_FAILED, UP_R_ROLLED_BACK);
	/* Unacked, so a power cut resends it at the next boot. */
	clear_sent();
	boot("1.0.0");
	assert_int_equal(count_sent(UP_T_RESULT), 1);
	last_sent(UP_T_RESULT, &m);
	assert_int_equal(m.u.result.result, UP_R_ROLLED_BACK);
}

static void
test_activate_port_fails(void **state)
{
	struct up_msg	 m;

	verify_ok(S1);
	F.activate_ret = -1;
	assert_int_equal(send_activate(S1, 0, 0), UP_OK);
	clear_sent();
	advance(0);
	assert_int_equal(F.nactivate, 1);
	last_sent(UP_T_RESULT, &m);
	assert_int_equal(m.u.result.state, UP_NS_FAILED);
	assert_int_equal(m.u.result.result, UP_R_FAILED);
}

static void
test_power_cut_receiving(void **state)
{
	struct up_msg	 m;
	uint32_t	 s, i;

	up_node_set_save_every(&N, 4);
	offer_default(S1);
	for (i = 0; i < 6; i++)
		assert_int_equal(send_block(S1, i, PKG_SIZE, PKG_BS), UP_OK);
	/* Cut before the save timer: blocks 4 and 5 are lost. */
	clear_sent();
	boot("1.0.0");
	assert_int_equal(node_state(&s), UP_NS_RECEIVING);
	assert_int_equal(s, S1);
	last_sent(UP_T_ANNOUNCE, &m);
	assert_int_equal(m.u.announce.session, S1);
	assert_int_equal(m.u.announce.state, UP_NS_RECEIVING);
	/* The repeated OFFER reports what survived. */
	clear_sent();
	offer_default(S1);
	last_sent(UP_T_ACCEPT, &m);
	assert_int_equal(m.u.accept.code, UP_R_INITIAL);
	assert_int_equal(m.u.accept.st.held, 4);
	assert_int_equal(m.u.accept.st.first_missing, 4);
	assert_int_equal(F.nprepare, 1);	/* not erased again */
	for (i = 4; i < PKG_NB; i++)
		assert_int_equal(send_block(S1, i, PKG_SIZE, PKG_BS), UP_OK);
	assert_int_equal(node_state(NULL), UP_NS_DOWNLOADED);
	assert_memory_equal(F.slot, image, PKG_SIZE);
}

static void
test_power_cut_downloaded_verified(void **state)
{
	struct up_msg	 m;

	download_all(S1);
	boot("1.0.0");
	assert_int_equal(node_state(NULL), UP_NS_DOWNLOADED);
	clear_sent();
	assert_int_equal(send_target(UP_T_VERIFY, S1, 0, 0, 0), UP_OK);
	last_sent(UP_T_RESULT, &m);
	assert_int_equal(m.u.result.state, UP_NS_VERIFIED);
	/*
	 * The signed descriptor survived: the signature over the offer as
	 * loaded after the reboot verified.
	 */
	assert_int_equal(N.offer.sig_len, 64);
	assert_true(F.nsig >= 1);
	boot("1.0.0");
	assert_int_equal(node_state(NULL), UP_NS_VERIFIED);
	assert_int_equal(send_activate(S1, 0, 0), UP_OK);
	advance(0);
	assert_int_equal(F.nactivate, 1);
}

static void
test_power_cut_during_activate_delay(void **state)
{
	verify_ok(S1);
	assert_int_equal(send_activate(S1, 0, 10000), UP_OK);
	advance(100);
	/* Cut before the switch: the activation carries on at boot. */
	boot("1.0.0");
	assert_int_equal(node_state(NULL), UP_NS_ACTIVATING);
	assert_int_equal(F.nactivate, 0);
	assert_int_equal(up_node_next_ms(&N), 0);
	advance(0);
	assert_int_equal(F.nactivate, 1);
	boot("1.1.0");
	assert_int_equal(node_state(NULL), UP_NS_UPDATED);
}

static void
test_resume_new_session(void **state)
{
	struct up_msg	 m;
	uint32_t	 s, i;
	int		 writes;

	offer_default(S1);
	for (i = 0; i < 5; i++)
		assert_int_equal(send_block(S1, i, PKG_SIZE, PKG_BS), UP_OK);
	/* The gateway restarted with a new session id, same package. */
	clear_sent();
	offer_default(S2);
	last_sent(UP_T_ACCEPT, &m);
	assert_int_equal(m.session, S2);
	assert_int_equal(m.u.accept.code, UP_R_INITIAL);
	assert_int_equal(m.u.accept.st.held, 5);
	assert_int_equal(m.u.accept.st.first_missing, 5);
	assert_int_equal(F.nprepare, 1);
	assert_int_equal(node_state(&s), UP_NS_RECEIVING);
	assert_int_equal(s, S2);
	/* The old session's blocks are now foreign. */
	writes = F.nwrites;
	assert_int_equal(send_block(S1, 5, PKG_SIZE, PKG_BS), UP_OK);
	assert_int_equal(F.nwrites, writes);
	assert_int_equal(send_block(S2, 5, PKG_SIZE, PKG_BS), UP_OK);
	assert_int_equal(F.nwrites, writes + 1);
	assert_int_equal(up_node_flush(&N), UP_OK);
	/* Survives a power cut too. */
	boot("1.0.0");
	assert_int_equal(node_state(&s), UP_NS_RECEIVING);
	assert_int_equal(s, S2);
	offer_default(S2);
	last_sent(UP_T_ACCEPT, &m);
	assert_int_equal(m.u.accept.st.held, 6);
}

static void
test_resume_verified_reverifies(void **state)
{
	struct up_msg	 m;

	verify_ok(S1);
	clear_sent();
	offer_default(S2);
	last_sent(UP_T_ACCEPT, &m);
	assert_int_equal(m.u.accept.code, UP_R_INITIAL);
	assert_int_equal(m.u.accept.st.held, PKG_NB);
	assert_int_equal(node_state(NULL), UP_NS_DOWNLOADED);
	assert_int_equal(send_target(UP_T_VERIFY, S2, 0, 0, 0), UP_OK);
	assert_int_equal(F.nverify, 2);
	assert_int_equal(node_state(NULL), UP_NS_VERIFIED);
}

static void
expect_decline(uint32_t session, const struct up_offer *o, int code)
{
	struct up_msg	 m;

	clear_sent();
	assert_int_equal(send_offer(session, o), UP_OK);
	assert_int_equal(F.nsent, 1);
	last_sent(UP_T_ACCEPT, &m);
	assert_int_equal(m.session, session);
	assert_int_equal(m.u.accept.code, code);
	/* A decline describes nothing held. */
	if (code != UP_R_INITIAL)
		assert_int_equal(m.u.accept.st.nbits, 0);
}

static void
test_declines(void **state)
{
	struct up_offer	 o;
	int		 saves = F.nsaves;

	/* Runs to_version already. */
	offer_fill(&o, PKG_SIZE, PKG_BS);
	strcpy(o.to_version, "1.0.0");
	expect_decline(S1, &o, UP_R_ALREADY);
	/* Bigger than the slot. */
	offer_fill(&o, SLOT_CAP + 1, 1024);
	expect_decline(S1, &o, UP_R_NO_SPACE);
	/* More blocks than the bitmap can track. */
	F.cap = 1 << 20;
	offer_fill(&o, BITMAP_CAP * 8 + 1, 1);
	expect_decline(S1, &o, UP_R_NO_MEMORY);
	F.cap = SLOT_CAP;
	/* A delta against a base it does not run. */
	offer_fill(&o, PKG_SIZE, PKG_BS);
	o.kind = UP_KIND_DELTA;
	o.delta_format = UP_DELTA_VCDIFF;
	strcpy(o.from_version, "0.9.0");
	expect_decline(S1, &o, UP_R_BASE_MISMATCH);
	strcpy(o.from_version, "1.0.0");
	expect_decline(S1, &o, UP_R_UNSUPPORTED);
	/* Dependencies, compared as versions. */
	offer_fill(&o, PKG_SIZE, PKG_BS);
	o.ndeps = 1;
	strcpy(o.deps[0].component, "os");
	strcpy(o.deps[0].min_version, "2.10");
	expect_decline(S1, &o, UP_R_DEPENDENCY);
	strcpy(o.deps[0].component, "bootloader");
	strcpy(o.deps[0].min_version, "");
	expect_decline(S1, &o, UP_R_DEPENDENCY);
	/* Local policy. */
	F.offer_code = UP_R_LOW_BATTERY;
	offer_fill(&o, PKG_SIZE, PKG_BS);
	expect_decline(S1, &o, UP_R_LOW_BATTERY);
	F.offer_code = UP_R_INITIAL;
	/* A decline changed nothing. */
	assert_int_equal(node_state(NULL), UP_NS_IDLE);
	assert_int_equal(F.nprepare, 0);
	assert_int_equal(F.nsaves, saves);

	/* Not for this node: silence. */
	clear_sent();
	offer_fill(&o, PKG_SIZE, PKG_BS);
	o.nhw = 2;
	strcpy(o.hw[0], "sim-2");
	strcpy(o.hw[1], "sim-3");
	assert_int_equal(send_offer(S1, &o), UP_OK);
	strcpy(o.component, "radio");
	o.nhw = 0;
	assert_int_equal(send_offer(S1, &o), UP_OK);
	assert_int_equal(F.nsent, 0);
	assert_int_equal(node_state(NULL), UP_NS_IDLE);

	/* Listed hw and satisfied deps ("2.3" == "2.3.0"): accepted. */
	offer_fill(&o, PKG_SIZE, PKG_BS);
	o.nhw = 2;
	strcpy(o.hw[0], "sim-2");
	strcpy(o.hw[1], "sim-1");
	o.ndeps = 1;
	strcpy(o.deps[0].component, "os");
	strcpy(o.deps[0].min_version, "2.3.0-rc1");
	offer_sign(&o);
	expect_decline(S1, &o, UP_R_INITIAL);
	assert_int_equal(node_state(NULL), UP_NS_RECEIVING);
}

static void
test_busy_and_stale(void **state)
{
	struct up_offer	 o;
	uint32_t	 s;

	offer_default(S1);
	assert_int_equal(send_block(S1, 0, PKG_SIZE, PKG_BS), UP_OK);
	/* Another component's package while S1 is live: busy, S1 kept. */
	offer_fill(&o, 2000, 200);
	strcpy(o.component, "os");
	strcpy(o.to_version, "2.4");
	offer_sign(&o);
	expect_decline(S2, &o, UP_R_BUSY);
	assert_int_equal(node_state(&s), UP_NS_RECEIVING);
	assert_int_equal(s, S1);
	/* S1 silent past its deadline (600 s): S2 replaces it. */
	advance(600 * 1000);
	expect_decline(S2, &o, UP_R_INITIAL);
	assert_int_equal(node_state(&s), UP_NS_RECEIVING);
	assert_int_equal(s, S2);
	assert_int_equal(F.nprepare, 2);
}

static void
test_abort(void **state)
{
	uint32_t	 s;
	struct up_msg	 m;

	offer_default(S1);
	assert_int_equal(send_block(S1, 0, PKG_SIZE, PKG_BS), UP_OK);
	/* For another session or node: ignored. */
	assert_int_equal(send_target(UP_T_ABORT, S2, 0, 0, UP_R_ABORTED),
	    UP_OK);
	assert_int_equal(send_target(UP_T_ABORT, S1, OTHER_ID, 0,
	    UP_R_ABORTED), UP_OK);
	assert_int_equal(node_state(NULL), UP_NS_RECEIVING);
	assert_int_equal(send_target(UP_T_ABORT, S1, 0, 0, UP_R_ABORTED),
	    UP_OK);
	assert_int_equal(node_state(&s), UP_NS_IDLE);
	assert_int_equal(s, 0);
	assert_int_equal(F.last_state, UP_NS_IDLE);
	boot("1.0.0");
	assert_int_equal(node_state(&s), UP_NS_IDLE);
	last_sent(UP_T_ANNOUNCE, &m);
	assert_int_equal(m.u.announce.session, 0);
}

static void
test_slot_write_fails(void **state)
{
	struct up_msg	 m;

	offer_default(S1);
	F.write_fail = 1;
	clear_sent();
	assert_int_equal(send_block(S1, 0, PKG_SIZE, PKG_BS), UP_EPORT);
	last_sent(UP_T_ABORT, &m);
	assert_int_equal(m.session, S1);
	assert_true(m.u.target.node_id == NODE_ID);
	assert_int_equal(m.u.target.reason, UP_R_FAILED);
	assert_int_equal(node_state(NULL), UP_NS_IDLE);
}

static void
test_bad_frames_change_nothing(void **state)
{
	uint8_t		 buf[UP_FRAME_MAX], state_before[UP_NODE_STATE_MAX];
	struct up_msg	 m;
	struct up_offer	 o;
	size_t		 len;
	int		 saves, n;
	uint32_t	 s;

	offer_default(S1);
	assert_int_equal(send_block(S1, 0, PKG_SIZE, PKG_BS), UP_OK);
	advance(UP_NODE_SAVE_DELAY_MS);
	saves = F.nsaves;
	memcpy(state_before, F.state, F.state_len);
	clear_sent();

	/* A valid OFFER for S2 with a flipped bit, truncated, etc. */
	offer_fill(&o, 2000, 200);
	memset(&m, 0, sizeof(m));
	m.type = UP_T_OFFER;
	m.session = S2;
	m.u.offer = o;
	n = up_encode(&m, buf, sizeof(buf));
	assert_true(n > 0);
	len = (size_t)n;
	buf[20] ^= 0x01;
	assert_int_equal(up_node_input(&N, buf, len), UP_EBADCRC);
	buf[20] ^= 0x01;
	assert_int_equal(up_node_input(&N, buf, len - 1), UP_ESHORT);
	assert_int_equal(up_node_input(&N, buf, 5), UP_ESHORT);
	buf[0] = 9;
	assert_int_equal(up_node_input(&N, buf, len), UP_EVERSION);
	/* Inconsistent nblocks is rejected by the codec. */
	m.u.offer.nblocks++;
	assert_true(up_encode(&m, buf, sizeof(buf)) < 0);

	assert_int_equal(F.nsent, 0);
	assert_int_equal(F.nsaves, saves);
	assert_int_equal(F.nprepare, 1);
	assert_memory_equal(F.state, state_before, F.state_len);
	assert_int_equal(node_state(&s), UP_NS_RECEIVING);
	assert_int_equal(s, S1);
	assert_int_equal(N.rx_errors, 4);
	/* Node-to-gateway frames (looped back) are ignored. */
	memset(&m, 0, sizeof(m));
	m.type = UP_T_RESULT;
	m.session = S1;
	m.u.result.node_id = OTHER_ID;
	m.u.result.state = UP_NS_UPDATED;
	assert_int_equal(feed(&m), UP_OK);
	assert_int_equal(F.nsent, 0);
	assert_int_equal(F.nsaves, saves);
}

static void
test_corrupt_state_ignored(void **state)
{
	struct up_msg	 m;
	uint32_t	 s;

	offer_default(S1);
	assert_int_equal(send_block(S1, 0, PKG_SIZE, PKG_BS), UP_OK);
	advance(UP_NODE_SAVE_DELAY_MS);
	/* A flipped bit anywhere in the blob. */
	F.state[F.state_len / 2] ^= 0x10;
	clear_sent();
	boot("1.0.0");
	assert_int_equal(node_state(&s), UP_NS_IDLE);
	assert_int_equal(s, 0);
	last_sent(UP_T_ANNOUNCE, &m);
	assert_int_equal(m.u.announce.state, UP_NS_IDLE);
	F.state[F.state_len / 2] ^= 0x10;
	boot("1.0.0");
	assert_int_equal(node_state(&s), UP_NS_RECEIVING);
	/* A bitmap that does not match its CRC. */
	F.bitmap[0] ^= 0x02;
	boot("1.0.0");
	assert_int_equal(node_state(NULL), UP_NS_IDLE);
	F.bitmap[0] ^= 0x02;
	/* An unknown format version. */
	F.state[4] = 4;
	boot("1.0.0");
	assert_int_equal(node_state(NULL), UP_NS_IDLE);
	F.state[4] = 3;
	/* Truncated. */
	F.state_len -= 3;
	boot("1.0.0");
	assert_int_equal(node_state(NULL), UP_NS_IDLE);
	F.state_len += 3;
	boot("1.0.0");
	assert_int_equal(node_state(NULL), UP_NS_RECEIVING);
}

static void
test_timer_wrap(void **state)
{
	F.now = 0xffffff00u;
	boot("1.0.0");
	offer_default(S1);
	clear_sent();
	F.rnd = 0x300;
	assert_int_equal(send_target(UP_T_STATUS_REQ, S1, 0, 1000, 0), UP_OK);
	assert_int_equal(up_node_next_ms(&N), 0x300);
	advance(0xff);		/* now == 0xffffffff */
	assert_int_equal(F.nsent, 0);
	advance(0x200);		/* wrapped: 0x1ff, still before */
	assert_int_equal(F.nsent, 0);
	assert_int_equal(up_node_next_ms(&N), 1);
	advance(1);
	assert_int_equal(count_sent(UP_T_STATUS), 1);
	/* A second request with a later time does not delay the first. */
	F.rnd = 900;
	assert_int_equal(send_target(UP_T_STATUS_REQ, S1, 0, 1000, 0), UP_OK);
	F.rnd = 10;
	assert_int_equal(send_target(UP_T_STATUS_REQ, S1, 0, 1000, 0), UP_OK);
	assert_int_equal(up_node_next_ms(&N), 10);
}

/* ------------------------------------------------------------------ */
/* XOR repair (docs/up-protocol.md §4.15)                             */

/* Offers the default package and delivers every block but `skip'. */
static void
receive_all_but(uint32_t session, const uint32_t *skip, unsigned int nskip)
{
	uint32_t	 i;
	unsigned int	 k;

	offer_default(session);
	for (i = 0; i < PKG_NB; i++) {
		for (k = 0; k < nskip; k++)
			if (skip[k] == i)
				break;
		if (k == nskip)
			assert_int_equal(send_block(session, i, PKG_SIZE,
			    PKG_BS), UP_OK);
	}
}

static void
test_xor_recovers_one(void **state)
{
	static const uint32_t miss[] = { 3, 7 };
	uint32_t	 idx[3] = { 1, 3, 8 };
	struct up_msg	 m;
	int		 writes;

	receive_all_but(S1, miss, 2);
	writes = F.nwrites;
	assert_memory_not_equal(F.slot + 3 * PKG_BS, image + 3 * PKG_BS,
	    PKG_BS);
	/* 1 and 8 held, 3 missing: 3 = data ^ 1 ^ 8, read back from flash. */
	assert_int_equal(send_xor(S1, 3, idx, PKG_SIZE, PKG_BS, 0), UP_OK);
	assert_int_equal(F.nwrites, writes + 1);
	assert_int_equal(F.nreads, 2);
	assert_memory_equal(F.slot + 3 * PKG_BS, image + 3 * PKG_BS, PKG_BS);
	assert_int_equal(node_state(NULL), UP_NS_RECEIVING);
	/* Held like DATA: the STATUS says so, a repeat changes nothing. */
	clear_sent();
	assert_int_equal(send_target(UP_T_STATUS_REQ, S1, 0, 0, 0), UP_OK);
	advance(0);
	last_sent(UP_T_STATUS, &m);
	assert_int_equal(m.u.status.st.held, PKG_NB - 1);
	assert_int_equal(m.u.status.st.first_missing, 7);
	assert_int_equal(send_xor(S1, 3, idx, PKG_SIZE, PKG_BS, 0), UP_OK);
	assert_int_equal(F.nwrites, writes + 1);
	/* Persisted like DATA: after the save delay it is in the bitmap. */
	advance(UP_NODE_SAVE_DELAY_MS);
	assert_int_equal(F.bitmap[0], 0x7f);
	assert_int_equal(F.bitmap[1], 0x07);
}

static void
test_xor_two_or_none_missing(void **state)
{
	static const uint32_t miss[] = { 5, 6 };
	uint32_t	 two[3] = { 4, 5, 6 }, none[2] = { 0, 9 };
	uint8_t		 slot[SLOT_CAP];
	int		 writes, saves;

	receive_all_but(S1, miss, 2);
	advance(UP_NODE_SAVE_DELAY_MS);
	writes = F.nwrites;
	saves = F.nsaves;
	memcpy(slot, F.slot, sizeof(slot));
	clear_sent();
	/* Two of the listed blocks missing: of no use, dropped. */
	assert_int_equal(send_xor(S1, 3, two, PKG_SIZE, PKG_BS, 0), UP_OK);
	/* None missing: dropped too. */
	assert_int_equal(send_xor(S1, 2, none, PKG_SIZE, PKG_BS, 0), UP_OK);
	advance(UP_NODE_SAVE_DELAY_MS);
	assert_int_equal(F.nwrites, writes);
	assert_int_equal(F.nsaves, saves);
	assert_int_equal(F.nsent, 0);
	assert_memory_equal(F.slot, slot, sizeof(slot));
	assert_int_equal(F.bitmap[0], 0x9f);
	assert_int_equal(node_state(NULL), UP_NS_RECEIVING);
	/* Once 5 is in, the same frame recovers 6. */
	assert_int_equal(send_block(S1, 5, PKG_SIZE, PKG_BS), UP_OK);
	assert_int_equal(send_xor(S1, 3, two, PKG_SIZE, PKG_BS, 0), UP_OK);
	assert_memory_equal(F.slot, image, PKG_SIZE);
	assert_int_equal(node_state(NULL), UP_NS_DOWNLOADED);
}

static void
test_xor_bounds(void **state)
{
	static const uint32_t miss[] = { 3 };
	uint32_t	 past[2] = { 3, PKG_NB }, mid[2] = { 2, 3 };
	uint32_t	 last[1] = { PKG_NB - 1 }, s;
	int		 writes, saves;

	receive_all_but(S1, miss, 1);
	advance(UP_NODE_SAVE_DELAY_MS);
	writes = F.nwrites;
	saves = F.nsaves;
	clear_sent();
	/* An index past the image. */
	assert_int_equal(send_xor(S1, 2, past, PKG_SIZE, PKG_BS, 0),
	    UP_ERANGE);
	/* Data of another length than the longest listed block. */
	assert_int_equal(send_xor(S1, 2, mid, PKG_SIZE, PKG_BS, -1),
	    UP_ELEN);
	assert_int_equal(send_xor(S1, 2, mid, PKG_SIZE, PKG_BS, 1), UP_ELEN);
	/* The last block alone: exactly its 37 bytes. */
	assert_int_equal(send_xor(S1, 1, last, PKG_SIZE, PKG_BS, 63),
	    UP_ELEN);
	assert_int_equal(send_xor(S1, 1, last, PKG_SIZE, PKG_BS, -1),
	    UP_ELEN);
	/* Another session's XOR is ignored. */
	assert_int_equal(send_xor(S2, 2, mid, PKG_SIZE, PKG_BS, 0), UP_OK);
	assert_int_equal(F.nwrites, writes);
	assert_int_equal(F.nsaves, saves);
	assert_int_equal(F.nsent, 0);
	assert_int_equal(node_state(&s), UP_NS_RECEIVING);
	assert_int_equal(s, S1);
	/* The right one is taken. */
	assert_int_equal(send_xor(S1, 2, mid, PKG_SIZE, PKG_BS, 0), UP_OK);
	assert_int_equal(F.nwrites, writes + 1);
	assert_int_equal(node_state(NULL), UP_NS_DOWNLOADED);
	/* Not RECEIVING any more: like DATA, UP_ESTATE. */
	assert_int_equal(send_xor(S1, 2, mid, PKG_SIZE, PKG_BS, 0),
	    UP_ESTATE);
	assert_int_equal(send_target(UP_T_VERIFY, S1, 0, 0, 0), UP_OK);
	assert_int_equal(node_state(NULL), UP_NS_VERIFIED);
	assert_int_equal(send_xor(S1, 2, mid, PKG_SIZE, PKG_BS, 0),
	    UP_ESTATE);
	assert_int_equal(node_state(NULL), UP_NS_VERIFIED);
	assert_int_equal(F.nwrites, writes + 1);
}

static void
test_xor_last_block(void **state)
{
	static const uint32_t miss[] = { 4, PKG_NB - 1 };
	uint32_t	 a[2] = { 4, PKG_NB - 1 }, b[1] = { PKG_NB - 1 };
	uint32_t	 c[2] = { 0, PKG_NB - 1 };
	int		 writes;

	/* The short last block missing, a full one held: cut to 37. */
	receive_all_but(S1, miss, 2);
	assert_int_equal(send_block(S1, 4, PKG_SIZE, PKG_BS), UP_OK);
	writes = F.nwrites;
	memset(F.slot + PKG_SIZE, 0xee, PKG_NB * PKG_BS - PKG_SIZE);
	assert_int_equal(send_xor(S1, 2, a, PKG_SIZE, PKG_BS, 0), UP_OK);
	assert_int_equal(F.nwrites, writes + 1);
	assert_memory_equal(F.slot, image, PKG_SIZE);
	/* Nothing written past the image. */
	assert_int_equal(F.slot[PKG_SIZE], 0xee);
	assert_int_equal(F.slot[PKG_NB * PKG_BS - 1], 0xee);
	assert_int_equal(node_state(NULL), UP_NS_DOWNLOADED);

	/* The last block alone (n = 1): its data is the block. */
	setup(NULL);
	receive_all_but(S1, b, 1);
	memset(F.slot + PKG_SIZE, 0xee, PKG_NB * PKG_BS - PKG_SIZE);
	assert_int_equal(send_xor(S1, 1, b, PKG_SIZE, PKG_BS, 0), UP_OK);
	assert_memory_equal(F.slot, image, PKG_SIZE);
	assert_int_equal(F.slot[PKG_SIZE], 0xee);
	assert_int_equal(node_state(NULL), UP_NS_DOWNLOADED);

	/* A full block missing, the short last one held and padded. */
	setup(NULL);
	receive_all_but(S1, c, 1);
	assert_int_equal(send_xor(S1, 2, c, PKG_SIZE, PKG_BS, 0), UP_OK);
	assert_memory_equal(F.slot, image, PKG_SIZE);
	assert_int_equal(node_state(NULL), UP_NS_DOWNLOADED);
}

/* Blocks longer than the engine's read buffer are read in pieces. */
static void
test_xor_big_blocks(void **state)
{
	struct up_offer	 o;
	uint32_t	 i, idx[3] = { 0, 1, 3 };
	uint32_t	 size = 3 * 1440 + 500;

	offer_fill(&o, size, 1440);
	assert_int_equal(send_offer(S1, &o), UP_OK);
	for (i = 1; i < 4; i++)
		assert_int_equal(send_block(S1, i, size, 1440), UP_OK);
	assert_int_equal(send_xor(S1, 3, idx, size, 1440, 0), UP_OK);
	assert_true(F.nreads >= 3);
	assert_memory_equal(F.slot, image, size);
	assert_int_equal(node_state(NULL), UP_NS_DOWNLOADED);
}

/* The XOR that completes the image: DOWNLOADED, STATUS, then VERIFY. */
static void
test_xor_completes(void **state)
{
	static const uint32_t miss[] = { 6 };
	uint32_t	 idx[4] = { 0, 6, 7, PKG_NB - 1 };
	struct up_msg	 m;

	receive_all_but(S1, miss, 1);
	clear_sent();
	assert_int_equal(send_xor(S1, 4, idx, PKG_SIZE, PKG_BS, 0), UP_OK);
	assert_int_equal(node_state(NULL), UP_NS_DOWNLOADED);
	assert_int_equal(F.last_state, UP_NS_DOWNLOADED);
	assert_int_equal(F.nsent, 1);
	last_sent(UP_T_STATUS, &m);
	assert_int_equal(m.u.status.state, UP_NS_DOWNLOADED);
	assert_int_equal(m.u.status.st.held, PKG_NB);
	assert_memory_equal(F.slot, image, PKG_SIZE);
	clear_sent();
	assert_int_equal(send_target(UP_T_VERIFY, S1, 0, 0, 0), UP_OK);
	last_sent(UP_T_RESULT, &m);
	assert_int_equal(m.u.result.state, UP_NS_VERIFIED);
}

/* A slot read that fails gives up like the parity decoder does. */
static void
test_xor_read_fails(void **state)
{
	static const uint32_t miss[] = { 2 };
	uint32_t	 idx[2] = { 1, 2 };
	struct up_msg	 m;
	int		 writes;

	receive_all_but(S1, miss, 1);
	writes = F.nwrites;
	F.read_fail = 1;
	clear_sent();
	assert_int_equal(send_xor(S1, 2, idx, PKG_SIZE, PKG_BS, 0), UP_EPORT);
	assert_int_equal(F.nwrites, writes);
	last_sent(UP_T_ABORT, &m);
	assert_int_equal(m.session, S1);
	assert_int_equal(m.u.target.reason, UP_R_FAILED);
	assert_int_equal(node_state(NULL), UP_NS_IDLE);
	/* And a failed write of the recovered block too. */
	setup(NULL);
	receive_all_but(S1, miss, 1);
	F.write_fail = 1;
	clear_sent();
	assert_int_equal(send_xor(S1, 2, idx, PKG_SIZE, PKG_BS, 0), UP_EPORT);
	assert_int_equal(count_sent(UP_T_ABORT), 1);
	assert_int_equal(node_state(NULL), UP_NS_IDLE);
}

/* ------------------------------------------------------------------ */
/* Work in steps: erase and verify bounded per tick                   */

/* A 200 KiB image in 1000-byte blocks: four erase steps, seven hashes. */
#define BIG_SIZE	(200u * 1024)
#define BIG_BS		1000

static void
big_offer(uint32_t session)
{
	struct up_offer	 o;
	struct up_msg	 m;

	F.cap = BIG_CAP;
	offer_fill(&o, BIG_SIZE, BIG_BS);
	memset(&m, 0, sizeof(m));
	m.type = UP_T_OFFER;
	m.session = session;
	m.u.offer = o;
	assert_int_equal(feed_raw(&m), UP_OK);
}

static int
big_block(uint32_t session, uint32_t index)
{
	struct up_msg	 m;
	uint32_t	 off = index * BIG_BS;

	memset(&m, 0, sizeof(m));
	m.type = UP_T_DATA;
	m.session = session;
	m.u.data.index = index;
	m.u.data.len = (uint16_t)(BIG_SIZE - off < BIG_BS ? BIG_SIZE - off :
	    BIG_BS);
	m.u.data.data = image + off;
	return (feed_raw(&m));
}

/*
 * STATUS_REQ for this node (window 0: answered at the next tick),
 * without running the work to its end.
 */
static void
poll_status(uint32_t session)
{
	struct up_msg	 m;

	memset(&m, 0, sizeof(m));
	m.type = UP_T_STATUS_REQ;
	m.session = session;
	m.u.target.node_id = NODE_ID;
	clear_sent();
	assert_int_equal(feed_raw(&m), UP_OK);
}

/*
 * The erase of a new transfer runs one UP_NODE_ERASE_STEP per tick after
 * the ACCEPT went out, and the node answers between the steps; blocks
 * land only where the erase has been (one more step for a block just
 * past its front, none far ahead).
 */
static void
test_erase_in_steps(void **state)
{
	struct up_msg	 m;
	uint32_t	 steps;

	clear_sent();
	big_offer(S1);
	/* Answered before any erase. */
	last_sent(UP_T_ACCEPT, &m);
	assert_int_equal(m.u.accept.code, UP_R_INITIAL);
	assert_int_equal(node_state(NULL), UP_NS_RECEIVING);
	assert_int_equal(F.nerase, 0);
	assert_int_equal(up_node_next_ms(&N), 0);

	/* A block far past the erase's front: dropped, not written. */
	assert_int_equal(big_block(S1, 150), UP_OK);
	assert_int_equal(F.nwrites, 0);
	assert_int_equal(F.nerase, 0);
	/* Block 0 is just past the front: one step, then stored. */
	assert_int_equal(big_block(S1, 0), UP_OK);
	assert_int_equal(F.nerase, 1);
	assert_int_equal(F.nwrites, 1);

	/* Ticks: one bounded step each; the node answers meanwhile. */
	steps = F.nerase;
	while (N.work != 0) {
		poll_status(S1);
		up_node_tick(&N);
		assert_int_equal(F.nerase, (int)++steps);
		assert_true(F.erase_max <= UP_NODE_ERASE_STEP);
		last_sent(UP_T_STATUS, &m);
		assert_int_equal(m.u.status.state, UP_NS_RECEIVING);
		assert_int_equal(m.u.status.st.held, 1);
		assert_true(steps < 100);
	}
	assert_int_equal(steps, (BIG_SIZE + UP_NODE_ERASE_STEP - 1) /
	    UP_NODE_ERASE_STEP);
	/* Block 0 survived the rest of the erase; 150 comes now. */
	assert_memory_equal(F.slot, image, BIG_BS);
	assert_int_equal(big_block(S1, 150), UP_OK);
	assert_int_equal(F.nwrites, 2);

}

/*
 * A first pass in order, with no tick between the frames (the gateway
 * sends faster than the port's loop turns): every block meets the
 * erase's front and is stored; none waits for a repair.
 */
static void
test_erase_keeps_up(void **state)
{
	uint32_t	 i;

	big_offer(S1);
	for (i = 0; i < up_nblocks(BIG_SIZE, BIG_BS); i++)
		assert_int_equal(big_block(S1, i), UP_OK);
	assert_int_equal(F.nwrites, (int)up_nblocks(BIG_SIZE, BIG_BS));
	assert_int_equal(node_state(NULL), UP_NS_DOWNLOADED);
	assert_memory_equal(F.slot, image, BIG_SIZE);
	assert_true(F.erase_max <= UP_NODE_ERASE_STEP);
	assert_int_equal(N.work, 0);
}

/* A power cut during the erase: it starts again, nothing is held. */
static void
test_erase_power_cut(void **state)
{
	struct up_msg	 m;
	uint32_t	 i, s;

	big_offer(S1);
	up_node_tick(&N);
	for (i = 0; i < 20; i++)
		assert_int_equal(big_block(S1, i), UP_OK);
	up_node_set_save_every(&N, 1);
	assert_int_equal(big_block(S1, 20), UP_OK);
	assert_true(F.saved);
	assert_int_equal(N.work, 1);
	/* The cut. */
	F.nerase = 0;
	F.nprepare = 0;
	N.started = false;
	memset(&m, 0, sizeof(m));
	clear_sent();
	{
		struct up_node_info info;

		info_fill(&info, "1.0.0");
		up_node_init(&N, port, &F, &info, bitmap_buf,
		    sizeof(bitmap_buf));
		assert_int_equal(up_node_start(&N, NULL), UP_OK);
	}
	assert_int_equal(node_state(&s), UP_NS_RECEIVING);
	assert_int_equal(s, S1);
	assert_int_equal(N.work, 1);
	assert_int_equal(N.nheld, 0);
	last_sent(UP_T_ANNOUNCE, &m);
	settle();
	assert_int_equal(F.nprepare, 1);
	assert_int_equal(F.nerase, (BIG_SIZE + UP_NODE_ERASE_STEP - 1) /
	    UP_NODE_ERASE_STEP);
	/* Erased and saved as such: the next cut does not erase again. */
	boot("1.0.0");
	assert_int_equal(N.work, 0);
	assert_int_equal(F.nprepare, 1);
}

/* A failed erase gives the session up: ABORT(failed), IDLE. */
static void
test_erase_fails(void **state)
{
	struct up_msg	 m;

	F.erase_fail = 1;
	big_offer(S1);
	clear_sent();
	up_node_tick(&N);
	last_sent(UP_T_ABORT, &m);
	assert_int_equal(m.u.target.reason, UP_R_FAILED);
	assert_int_equal(node_state(NULL), UP_NS_IDLE);
	assert_int_equal(N.work, 0);
	assert_int_equal(up_node_next_ms(&N) > 0, 1);
}

/*
 * VERIFY hashes UP_NODE_VERIFY_STEP bytes per tick; the node answers a
 * STATUS_REQ between steps; the RESULT comes when the last step and the
 * signature check are done; a VERIFY meanwhile starts nothing new.
 */
static void
test_verify_in_steps(void **state)
{
	struct up_msg	 m, v;
	uint32_t	 i, ticks = 0;

	big_offer(S1);
	settle();
	for (i = 0; i < up_nblocks(BIG_SIZE, BIG_BS); i++)
		assert_int_equal(big_block(S1, i), UP_OK);
	assert_int_equal(node_state(NULL), UP_NS_DOWNLOADED);
	/*
	 * Hashed as received; a power cut loses that, and the whole slot
	 * is hashed again, in steps (catching up, or at VERIFY as here).
	 */
	assert_int_equal(N.hash_off, BIG_SIZE);
	boot("1.0.0");
	assert_int_equal(node_state(NULL), UP_NS_DOWNLOADED);
	assert_true(N.hash_live);
	assert_int_equal(N.hash_off, 0);
	F.hash_max = 0;
	memset(&v, 0, sizeof(v));
	v.type = UP_T_VERIFY;
	v.session = S1;
	clear_sent();
	assert_int_equal(feed_raw(&v), UP_OK);
	assert_int_equal(count_sent(UP_T_RESULT), 0);
	assert_int_equal(N.work, 2);
	assert_int_equal(up_node_next_ms(&N), 0);
	while (N.work != 0) {
		F.hash_tick = 0;
		up_node_tick(&N);
		ticks++;
		assert_true(F.hash_tick <= UP_NODE_VERIFY_STEP);
		if (N.work == 0)
			break;
		/* Still DOWNLOADED, and answering. */
		assert_int_equal(count_sent(UP_T_RESULT), 0);
		poll_status(S1);
		F.hash_tick = 0;
		F.now++;
		up_node_tick(&N);
		ticks++;
		last_sent(UP_T_STATUS, &m);
		assert_int_equal(m.u.status.state, UP_NS_DOWNLOADED);
		/* A repeated VERIFY starts nothing new. */
		assert_int_equal(feed_raw(&v), UP_OK);
		assert_int_equal(count_sent(UP_T_RESULT), 0);
		assert_true(ticks < 100);
	}
	assert_true(F.hash_max <= UP_NODE_VERIFY_STEP);
	assert_true(ticks >= (BIG_SIZE + UP_NODE_VERIFY_STEP - 1) /
	    UP_NODE_VERIFY_STEP);
	assert_int_equal(F.nverify, 1);
	last_sent(UP_T_RESULT, &m);
	assert_int_equal(m.u.result.state, UP_NS_VERIFIED);
	assert_int_equal(node_state(NULL), UP_NS_VERIFIED);
}

/* ------------------------------------------------------------------ */
/* Hash on receipt (docs/up-node-engine.md, "Hash on receipt")        */

/* Ticks while the engine asks for one at once; each hashes one step. */
static uint32_t
hash_ticks(void)
{
	uint32_t	 ticks = 0;

	while (up_node_next_ms(&N) == 0) {
		F.hash_tick = 0;
		up_node_tick(&N);
		assert_true(F.hash_tick <= UP_NODE_VERIFY_STEP);
		assert_true(++ticks < 1000);
	}
	return (ticks);
}

/* VERIFY, answered at once: no byte of the slot read. */
static void
verify_no_reads(uint32_t session, uint8_t state, uint8_t result)
{
	struct up_msg	 m;

	F.nreads = 0;
	F.nverify = 0;
	clear_sent();
	assert_int_equal(send_target(UP_T_VERIFY, session, 0, 0, 0), UP_OK);
	last_sent(UP_T_RESULT, &m);
	assert_int_equal(m.u.result.state, state);
	assert_int_equal(m.u.result.result, result);
	assert_int_equal(F.nreads, 0);
	assert_int_equal(F.nverify, 1);
}

/* In order: every block hashed as it came, VERIFY reads nothing. */
static void
test_hash_rx_in_order(void **state)
{
	uint32_t	 i;

	big_offer(S1);
	settle();
	assert_true(N.hash_live);
	F.nreads = 0;
	for (i = 0; i < up_nblocks(BIG_SIZE, BIG_BS); i++)
		assert_int_equal(big_block(S1, i), UP_OK);
	assert_int_equal(node_state(NULL), UP_NS_DOWNLOADED);
	assert_int_equal(N.hash_off, BIG_SIZE);
	assert_int_equal(N.hash_rx, BIG_SIZE);
	assert_int_equal(F.nreads, 0);
	assert_int_equal(hash_ticks(), 0);
	verify_no_reads(S1, UP_NS_VERIFIED, UP_R_INITIAL);
	assert_false(N.hash_live);
}

/*
 * Out of order: the blocks behind a gap wait; when it fills they are
 * read back, a step per tick, and folded in.  Blocks an XOR recovers
 * count like DATA.
 */
static void
test_hash_rx_out_of_order(void **state)
{
	uint32_t	 i, nb = up_nblocks(BIG_SIZE, BIG_BS);
	uint32_t	 pair[2] = { 99, 100 };

	big_offer(S1);
	settle();
	for (i = 1; i < nb; i++)
		if (i != 100)
			assert_int_equal(big_block(S1, i), UP_OK);
	assert_int_equal(N.hash_off, 0);
	assert_int_equal(hash_ticks(), 0);	/* nothing to do yet */
	assert_int_equal(big_block(S1, 0), UP_OK);
	assert_int_equal(N.hash_off, BIG_BS);
	assert_int_equal(up_node_next_ms(&N), 0);
	/* 99 blocks read back, 32 KiB a tick, up to the gap at 100. */
	F.nreads = 0;
	assert_int_equal(hash_ticks(),
	    (99 * BIG_BS + UP_NODE_VERIFY_STEP - 1) / UP_NODE_VERIFY_STEP);
	assert_int_equal(N.hash_off, 100 * BIG_BS);
	assert_true(F.nreads > 0);
	assert_int_equal(node_state(NULL), UP_NS_RECEIVING);
	/* Block 100 from an XOR with 99: recovered, hashed as stored. */
	assert_int_equal(send_xor(S1, 2, pair, BIG_SIZE, BIG_BS, 0), UP_OK);
	assert_int_equal(node_state(NULL), UP_NS_DOWNLOADED);
	assert_int_equal(N.hash_off, 101 * BIG_BS);
	assert_int_equal(N.hash_rx, 2 * BIG_BS);
	/* The rest catches up in DOWNLOADED, before any VERIFY. */
	assert_true(hash_ticks() > 0);
	assert_int_equal(N.hash_off, BIG_SIZE);
	verify_no_reads(S1, UP_NS_VERIFIED, UP_R_INITIAL);
}

/* A lent hash buffer: one read per step, catching up and at VERIFY. */
static void
test_hash_rx_buffer(void **state)
{
	static uint8_t	 hb[UP_NODE_VERIFY_STEP];
	struct up_msg	 m;
	uint32_t	 i, ticks, nb = up_nblocks(BIG_SIZE, BIG_BS);

	up_node_set_hash_buf(&N, hb, sizeof(hb));
	big_offer(S1);
	settle();
	for (i = 1; i < nb; i++)
		assert_int_equal(big_block(S1, i), UP_OK);
	F.nreads = 0;
	assert_int_equal(big_block(S1, 0), UP_OK);
	ticks = hash_ticks();
	assert_int_equal(ticks, (BIG_SIZE - BIG_BS + UP_NODE_VERIFY_STEP - 1) /
	    UP_NODE_VERIFY_STEP);
	assert_int_equal(F.nreads, ticks);
	assert_int_equal(N.hash_off, BIG_SIZE);
	/* After a cut, VERIFY hashes the slot: a read per step too. */
	boot("1.0.0");
	up_node_set_hash_buf(&N, hb, sizeof(hb));
	F.nreads = 0;
	clear_sent();
	assert_int_equal(send_target(UP_T_VERIFY, S1, 0, 0, 0), UP_OK);
	last_sent(UP_T_RESULT, &m);
	assert_int_equal(m.u.result.state, UP_NS_VERIFIED);
	assert_int_equal(F.nreads, (BIG_SIZE + UP_NODE_VERIFY_STEP - 1) /
	    UP_NODE_VERIFY_STEP);
	/* Smaller than the scratch: not taken. */
	up_node_set_hash_buf(&N, hb, 16);
	assert_null(N.hash_buf);
}

/*
 * Power cuts: the running hash is not saved; a boot rebuilds it from
 * the slot (the blocks the saved bitmap holds), also a boot in the
 * middle of that, and the session goes on to VERIFIED.
 */
static void
test_hash_rx_resume(void **state)
{
	uint32_t	 i, held, nb = up_nblocks(BIG_SIZE, BIG_BS);

	big_offer(S1);
	settle();
	for (i = 0; i < 150; i++)
		assert_int_equal(big_block(S1, i), UP_OK);
	assert_int_equal(N.hash_off, 150 * BIG_BS);
	boot("1.0.0");				/* power cut */
	assert_int_equal(node_state(NULL), UP_NS_RECEIVING);
	held = N.nheld;
	assert_true(held >= 64 && held <= 150);
	assert_true(N.hash_live);
	assert_int_equal(N.hash_off, 0);
	/* One step, then another cut. */
	assert_int_equal(up_node_next_ms(&N), 0);
	up_node_tick(&N);
	assert_int_equal(N.hash_off, UP_NODE_VERIFY_STEP);
	boot("1.0.0");
	assert_int_equal(N.hash_off, 0);
	assert_int_equal(N.nheld, held);
	assert_true(hash_ticks() > 0);
	assert_int_equal(N.hash_off, held * BIG_BS);
	for (i = 0; i < nb; i++)
		assert_int_equal(big_block(S1, i), UP_OK);
	assert_int_equal(node_state(NULL), UP_NS_DOWNLOADED);
	assert_int_equal(N.hash_off, BIG_SIZE);
	verify_no_reads(S1, UP_NS_VERIFIED, UP_R_INITIAL);
}

/*
 * A tampered block is still caught: one bad on the wire (its frame
 * valid), and one changed in flash before a power cut, which the
 * rebuilt hash reads back.
 */
static void
test_hash_rx_tampered(void **state)
{
	static uint8_t	 bad[BIG_BS];
	struct up_msg	 m;
	uint32_t	 i, nb = up_nblocks(BIG_SIZE, BIG_BS);

	big_offer(S1);
	settle();
	for (i = 0; i < nb; i++) {
		if (i != 3) {
			assert_int_equal(big_block(S1, i), UP_OK);
			continue;
		}
		memcpy(bad, image + i * BIG_BS, BIG_BS);
		bad[17] ^= 0x80;
		memset(&m, 0, sizeof(m));
		m.type = UP_T_DATA;
		m.session = S1;
		m.u.data.index = i;
		m.u.data.len = BIG_BS;
		m.u.data.data = bad;
		assert_int_equal(feed_raw(&m), UP_OK);
	}
	assert_int_equal(N.hash_off, BIG_SIZE);
	verify_no_reads(S1, UP_NS_FAILED, UP_R_INTEGRITY);

	/* A new session of the same package; flash changed, then a cut. */
	big_offer(S2);
	settle();
	for (i = 0; i < nb; i++)
		assert_int_equal(big_block(S2, i), UP_OK);
	assert_int_equal(node_state(NULL), UP_NS_DOWNLOADED);
	F.slot[7 * BIG_BS + 1] ^= 1;
	boot("1.0.0");
	assert_true(hash_ticks() > 0);
	assert_int_equal(N.hash_off, BIG_SIZE);
	verify_no_reads(S2, UP_NS_FAILED, UP_R_INTEGRITY);
}

/* ------------------------------------------------------------------ */
/* Anti-rollback (docs/up-protocol.md §5.4)                           */

#define S3		0xc0ffee03u
#define S4		0xc0ffee04u

/* The default package as app `to', security version `sv', `flags'. */
static void
offer_as(struct up_offer *o, const char *to, uint32_t sv, uint8_t flags)
{
	offer_fill(o, PKG_SIZE, PKG_BS);
	strcpy(o->to_version, to);
	o->security_version = sv;
	o->desc_flags = flags;
	offer_sign(o);
}

/* A signed full image of the first `size' bytes, app `to'. */
static void
offer_sized(struct up_offer *o, const char *to, uint32_t size)
{
	offer_fill(o, size, PKG_BS);
	strcpy(o->to_version, to);
	offer_sign(o);
}

/* Takes `o' all the way: download, verify, activate, boot, ACK. */
static void
install(uint32_t session, const struct up_offer *o)
{
	struct up_msg	 m;
	uint32_t	 i;
	uint8_t		 res;

	expect_decline(session, o, UP_R_INITIAL);
	for (i = 0; i < PKG_NB; i++)
		assert_int_equal(send_block(session, i, PKG_SIZE, PKG_BS),
		    UP_OK);
	assert_int_equal(send_target(UP_T_VERIFY, session, 0, 0, 0), UP_OK);
	assert_int_equal(node_state(NULL), UP_NS_VERIFIED);
	assert_int_equal(send_activate(session, 0, 0), UP_OK);
	advance(0);
	boot(o->to_version);
	assert_int_equal(up_node_get_state(&N, NULL, &res), UP_NS_UPDATED);
	assert_int_equal(res, UP_R_SUCCESS);
	assert_int_equal(send_target(UP_T_RESULT_ACK, session, NODE_ID, 0, 0),
	    UP_OK);
	last_sent(UP_T_ANNOUNCE, &m);
	assert_string_equal(m.u.announce.comp[0].version, o->to_version);
}

/* Everything an offer must not have touched, to compare afterwards. */
struct untouched {
	uint8_t		 slot[SLOT_CAP];
	int		 nerase, nwrites, nsaves;
	uint8_t		 state;
	uint32_t	 session, nheld;
};

static void
snap(struct untouched *u)
{
	memcpy(u->slot, F.slot, sizeof(u->slot));
	u->nerase = F.nerase;
	u->nwrites = F.nwrites;
	u->nsaves = F.nsaves;
	u->state = node_state(&u->session);
	u->nheld = N.nheld;
}

static void
same_as(const struct untouched *u)
{
	uint32_t	 s;

	assert_memory_equal(u->slot, F.slot, sizeof(u->slot));
	assert_int_equal(F.nerase, u->nerase);
	assert_int_equal(F.nwrites, u->nwrites);
	assert_int_equal(F.nsaves, u->nsaves);
	assert_int_equal(node_state(&s), u->state);
	assert_int_equal(s, u->session);
	assert_int_equal(N.nheld, u->nheld);
}

/* Replays the DATA of the default package in `session'. */
static void
replay_data(uint32_t session)
{
	uint32_t	 i;

	for (i = 0; i < PKG_NB; i++)
		(void)send_block(session, i, PKG_SIZE, PKG_BS);
}

/*
 * The attack: a node that runs app 2.0.0 (security version 2)
 * gets a replayed, genuinely signed OFFER and the DATA of an old session
 * (app 1.1.0, security version 1).  It declines `downgrade' and writes,
 * erases and saves nothing.  An old package signed before the anti-
 * rollback fields existed (form 1: security version 0) is refused the
 * same way, and so is a replay at the floor but of an older version.
 */
static void
test_replayed_old_package(void **state)
{
	struct untouched u;
	struct up_offer	 o, old;
	uint32_t	 s;

	offer_as(&o, "2.0.0", 2, 0);
	install(S1, &o);
	assert_int_equal(up_node_get_floor(&N, "app"), 2);
	offer_as(&old, "1.1.0", 1, 0);
	snap(&u);
	expect_decline(S2, &old, UP_R_DOWNGRADE);
	replay_data(S2);
	same_as(&u);

	/* Form 1 (signed before security versions): floor 2 > 0. */
	offer_as(&old, "1.1.0", 0, 0);
	expect_decline(S3, &old, UP_R_DOWNGRADE);
	/* At the floor, but older than what runs, unsigned as one. */
	offer_as(&old, "1.9.9", 2, 0);
	expect_decline(S3, &old, UP_R_DOWNGRADE);
	replay_data(S3);
	same_as(&u);
	/* After a reboot: the floor and the refusal stay. */
	boot("2.0.0");
	assert_int_equal(up_node_get_floor(&N, "app"), 2);
	offer_as(&old, "1.1.0", 1, 0);
	expect_decline(S2, &old, UP_R_DOWNGRADE);
	assert_int_equal(node_state(&s), UP_NS_UPDATED);
	assert_int_equal(s, S1);
}

/*
 * A downgrade the cloud signed as one (desc_flags UP_DESC_DOWNGRADE) is
 * taken, as long as its security version is not below the floor; the
 * floor never falls and no flag lowers it.
 */
static void
test_signed_downgrade(void **state)
{
	struct up_offer	 o;

	offer_as(&o, "2.0.0", 2, 0);
	install(S1, &o);
	offer_as(&o, "1.5.0", 2, UP_DESC_DOWNGRADE);
	install(S2, &o);
	assert_int_equal(up_node_get_floor(&N, "app"), 2);
	/* Below the floor: refused, whatever the flag says. */
	offer_as(&o, "1.4.0", 1, UP_DESC_DOWNGRADE);
	expect_decline(S3, &o, UP_R_DOWNGRADE);
	offer_as(&o, "9.0.0", 1, 0);
	expect_decline(S3, &o, UP_R_DOWNGRADE);
	/* A newer version at a higher security version raises it. */
	offer_as(&o, "3.0.0", 7, 0);
	install(S3, &o);
	assert_int_equal(up_node_get_floor(&N, "app"), 7);
	/* A signed downgrade at the floor still goes. */
	offer_as(&o, "2.9.0", 7, UP_DESC_DOWNGRADE);
	install(S4, &o);
	assert_int_equal(up_node_get_floor(&N, "app"), 7);
}

/*
 * The node checks the signature at the OFFER, before it erases: a
 * forged claim of a newer version, of a downgrade permission or of a
 * higher security version costs nothing.  A signed flag it does not
 * know is declined `unsupported'.
 */
static void
test_forged_claims(void **state)
{
	struct untouched u;
	struct up_offer	 o, old;

	offer_as(&o, "2.0.0", 2, 0);
	install(S1, &o);
	snap(&u);
	offer_as(&old, "1.1.0", 2, 0);
	strcpy(old.to_version, "3.0.0");
	expect_decline(S2, &old, UP_R_SIGNATURE);
	offer_as(&old, "1.1.0", 2, 0);
	old.desc_flags = UP_DESC_DOWNGRADE;
	expect_decline(S2, &old, UP_R_SIGNATURE);
	offer_as(&old, "3.0.0", 1, 0);
	old.security_version = 9;
	expect_decline(S2, &old, UP_R_SIGNATURE);
	replay_data(S2);
	same_as(&u);
	/* Unknown flag bits, signed: not this node's to ignore. */
	offer_as(&o, "3.0.0", 3, 0x80);
	expect_decline(S2, &o, UP_R_UNSUPPORTED);
	offer_as(&o, "3.0.0", 3, 0x80 | UP_DESC_DOWNGRADE);
	expect_decline(S2, &o, UP_R_UNSUPPORTED);
	same_as(&u);
	/* The genuine offer goes. */
	offer_as(&o, "3.0.0", 3, 0);
	expect_decline(S2, &o, UP_R_INITIAL);
}

/*
 * Power cuts.  The floor rises in the same save that records UPDATED,
 * so a cut right after the confirm keeps both.  A node cut in the middle
 * of a later update still refuses the old package afterwards, and the
 * refusal leaves the interrupted transfer as it was.
 */
static void
test_floor_power_cuts(void **state)
{
	struct untouched u;
	struct up_offer	 o, old;
	uint32_t	 s, i;

	offer_as(&o, "2.0.0", 2, 0);
	expect_decline(S1, &o, UP_R_INITIAL);
	for (i = 0; i < PKG_NB; i++)
		assert_int_equal(send_block(S1, i, PKG_SIZE, PKG_BS), UP_OK);
	assert_int_equal(send_target(UP_T_VERIFY, S1, 0, 0, 0), UP_OK);
	assert_int_equal(send_activate(S1, 0, 0), UP_OK);
	advance(0);
	assert_int_equal(up_node_get_floor(&N, "app"), 0);
	/* Boot into 2.0.0, confirmed; cut before the RESULT is ACKed. */
	boot("2.0.0");
	assert_int_equal(up_node_get_floor(&N, "app"), 2);
	boot("2.0.0");
	assert_int_equal(node_state(&s), UP_NS_UPDATED);
	assert_int_equal(up_node_get_floor(&N, "app"), 2);
	assert_true(N.unacked);
	assert_int_equal(send_target(UP_T_RESULT_ACK, S1, NODE_ID, 0, 0),
	    UP_OK);

	/* A later update, cut after some blocks were saved. */
	up_node_set_save_every(&N, 3);
	offer_as(&o, "2.1.0", 3, 0);
	expect_decline(S2, &o, UP_R_INITIAL);
	for (i = 0; i < 7; i++)
		assert_int_equal(send_block(S2, i, PKG_SIZE, PKG_BS), UP_OK);
	boot("2.0.0");
	assert_int_equal(node_state(&s), UP_NS_RECEIVING);
	assert_int_equal(s, S2);
	assert_int_equal(N.nheld, 6);
	assert_int_equal(up_node_get_floor(&N, "app"), 2);
	snap(&u);
	offer_as(&old, "1.1.0", 1, 0);
	expect_decline(S3, &old, UP_R_DOWNGRADE);
	replay_data(S3);
	same_as(&u);
	/* And the interrupted one completes. */
	for (i = 6; i < PKG_NB; i++)
		assert_int_equal(send_block(S2, i, PKG_SIZE, PKG_BS), UP_OK);
	assert_int_equal(node_state(NULL), UP_NS_DOWNLOADED);
}

/*
 * A held image is checked again at boot and at ACTIVATE: if what runs or
 * the floor moved since the OFFER, it is a downgrade now and is given up
 * (FAILED, downgrade), never activated.
 */
static void
test_rollback_at_boot_and_activate(void **state)
{
	struct up_offer	 o;
	struct up_msg	 m;
	uint32_t	 i;
	uint8_t		 res;

	offer_as(&o, "1.5.0", 1, 0);
	expect_decline(S1, &o, UP_R_INITIAL);
	for (i = 0; i < PKG_NB; i++)
		assert_int_equal(send_block(S1, i, PKG_SIZE, PKG_BS), UP_OK);
	/* The platform now boots app 2.0.0 (installed another way). */
	clear_sent();
	boot("2.0.0");
	assert_int_equal(up_node_get_state(&N, NULL, &res), UP_NS_FAILED);
	assert_int_equal(res, UP_R_DOWNGRADE);
	last_sent(UP_T_RESULT, &m);
	assert_int_equal(m.u.result.result, UP_R_DOWNGRADE);

	/* A floor raised by the platform after VERIFY stops ACTIVATE. */
	boot("1.0.0");
	offer_as(&o, "1.6.0", 1, 0);
	expect_decline(S2, &o, UP_R_INITIAL);
	for (i = 0; i < PKG_NB; i++)
		assert_int_equal(send_block(S2, i, PKG_SIZE, PKG_BS), UP_OK);
	assert_int_equal(send_target(UP_T_VERIFY, S2, 0, 0, 0), UP_OK);
	assert_int_equal(node_state(NULL), UP_NS_VERIFIED);
	assert_int_equal(up_node_raise_floor(&N, "app", 4), UP_OK);
	assert_int_equal(up_node_raise_floor(&N, "app", 3), UP_OK);
	assert_int_equal(up_node_get_floor(&N, "app"), 4);
	assert_int_equal(send_activate(S2, 0, 0), UP_OK);
	advance(0);
	assert_int_equal(F.nactivate, 0);
	assert_int_equal(up_node_get_state(&N, NULL, &res), UP_NS_FAILED);
	assert_int_equal(res, UP_R_DOWNGRADE);
	/* The raised floor was saved. */
	boot("1.0.0");
	assert_int_equal(up_node_get_floor(&N, "app"), 4);
}

/* Floors of several components, each kept; a full table declines. */
static void
test_floors_table(void **state)
{
	struct up_offer	 o;
	char		 name[8];
	unsigned int	 i;

	assert_int_equal(up_node_raise_floor(&N, "", 1), UP_EINVAL);
	for (i = 0; i < UP_MAX_COMPONENTS; i++) {
		snprintf(name, sizeof(name), "c%u", i);
		assert_int_equal(up_node_raise_floor(&N, name, i + 1), UP_OK);
	}
	assert_int_equal(up_node_raise_floor(&N, "app", 1), UP_ENOSPC);
	boot("1.0.0");
	for (i = 0; i < UP_MAX_COMPONENTS; i++) {
		snprintf(name, sizeof(name), "c%u", i);
		assert_int_equal(up_node_get_floor(&N, name), i + 1);
	}
	/* An app image with a security version has nowhere to go. */
	offer_as(&o, "1.1.0", 1, 0);
	expect_decline(S1, &o, UP_R_NO_MEMORY);
	/* One without is fine. */
	offer_as(&o, "1.1.0", 0, 0);
	expect_decline(S1, &o, UP_R_INITIAL);
}

/*
 * State saved by an engine of before the anti-rollback fields (blob
 * format 1, the fuzz corpus' `receiving' seed) still loads: the node
 * updated over the air finds the session that installed it.
 */
static void
test_old_state_loads(void **state)
{
	FILE		*f;
	uint8_t		 buf[UP_NODE_STATE_MAX + BITMAP_CAP + 2];
	size_t		 len, blen;
	uint32_t	 s;

	f = fopen(UB_SOURCE_DIR "/tests/fuzz/corpus/fuzz_node_state/"
	    "receiving", "rb");
	assert_non_null(f);
	len = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	blen = (size_t)buf[0] | (size_t)buf[1] << 8;
	assert_true(blen + 2 <= len);
	assert_int_equal(buf[2 + 4], 1);	/* format 1 */
	memcpy(F.state, buf + 2, blen);
	F.state_len = blen;
	memcpy(F.bitmap, buf + 2 + blen, len - 2 - blen);
	F.bitmap_len = len - 2 - blen;
	F.saved = 1;
	boot("1.0.0");
	assert_int_equal(node_state(&s), UP_NS_RECEIVING);
	assert_true(s != 0);
	assert_int_equal(N.offer.security_version, 0);
	assert_int_equal(N.offer.desc_flags, 0);
	assert_int_equal(up_node_get_floor(&N, "app"), 0);
	/* Saved again, it is the current format (3: with the compact
	 * set-up of docs/up-protocol.md §11.4). */
	assert_int_equal(up_node_raise_floor(&N, "os", 1), UP_OK);
	assert_int_equal(F.state[4], 3);
	boot("1.0.0");
	assert_int_equal(node_state(NULL), UP_NS_RECEIVING);
	assert_int_equal(up_node_get_floor(&N, "os"), 1);
	/* A floor above the held image's: given up at boot (§5.4). */
	assert_int_equal(up_node_raise_floor(&N, "app", 1), UP_OK);
	boot("1.0.0");
	assert_int_equal(node_state(NULL), UP_NS_FAILED);
}

/* ------------------------------------------------------------------ */
/* One staging slot: supersede, busy, and ABORT releases               */

/*
 * A newer version of the held image's component supersedes a
 * downloaded-but-not-activated image (RECEIVING, DOWNLOADED, VERIFIED),
 * also after a reboot (the orphan of a session that no longer exists);
 * anything else is busy; during ACTIVATING nothing takes the slot.
 */
static void
test_supersede(void **state)
{
	struct up_offer	 o;
	uint32_t	 s, i;

	offer_as(&o, "1.1.0", 0, 0);
	expect_decline(S1, &o, UP_R_INITIAL);
	for (i = 0; i < PKG_NB; i++)
		assert_int_equal(send_block(S1, i, PKG_SIZE, PKG_BS), UP_OK);
	assert_int_equal(node_state(NULL), UP_NS_DOWNLOADED);
	boot("1.0.0");
	/* Not newer than the held 1.1.0: busy.  Another component: busy. */
	offer_sized(&o, "1.1.0-rc1", PKG_SIZE - 1);
	expect_decline(S2, &o, UP_R_BUSY);
	offer_fill(&o, 2000, 200);
	strcpy(o.component, "os");
	strcpy(o.to_version, "2.4");
	offer_sign(&o);
	expect_decline(S2, &o, UP_R_BUSY);
	assert_int_equal(node_state(&s), UP_NS_DOWNLOADED);
	assert_int_equal(s, S1);
	/* Newer: S1 is given up, S2 starts from scratch. */
	offer_sized(&o, "1.2.0", PKG_SIZE - 37);
	expect_decline(S2, &o, UP_R_INITIAL);
	assert_int_equal(node_state(&s), UP_NS_RECEIVING);
	assert_int_equal(s, S2);
	assert_int_equal(N.nheld, 0);
	assert_int_equal(F.nprepare, 2);
	/* The held one in VERIFIED is superseded as well. */
	for (i = 0; i < up_nblocks(PKG_SIZE - 37, PKG_BS); i++)
		assert_int_equal(send_block(S2, i, PKG_SIZE - 37, PKG_BS),
		    UP_OK);
	assert_int_equal(send_target(UP_T_VERIFY, S2, 0, 0, 0), UP_OK);
	assert_int_equal(node_state(NULL), UP_NS_VERIFIED);
	offer_as(&o, "1.3.0", 0, 0);
	expect_decline(S3, &o, UP_R_INITIAL);
	assert_int_equal(node_state(&s), UP_NS_RECEIVING);
	assert_int_equal(s, S3);
	/* Not during the switch. */
	replay_data(S3);
	assert_int_equal(send_target(UP_T_VERIFY, S3, 0, 0, 0), UP_OK);
	assert_int_equal(send_activate(S3, 0, 10000), UP_OK);
	assert_int_equal(node_state(NULL), UP_NS_ACTIVATING);
	offer_as(&o, "9.0.0", 0, 0);
	expect_decline(S4, &o, UP_R_BUSY);
	/* A supersede must pass the anti-rollback rule and the signature. */
	assert_int_equal(send_target(UP_T_ABORT, S3, NODE_ID, 0, 0), UP_OK);
	offer_as(&o, "1.1.0", 0, 0);
	expect_decline(S1, &o, UP_R_INITIAL);
	offer_sized(&o, "1.2.0", PKG_SIZE - 37);
	o.security_version = 5;
	expect_decline(S2, &o, UP_R_SIGNATURE);
	assert_int_equal(node_state(&s), UP_NS_RECEIVING);
	assert_int_equal(s, S1);
}

/*
 * A targeted ABORT for the held session releases the image to IDLE in
 * every non-final state before the switch: RECEIVING (even while
 * erasing), DOWNLOADED (even while verifying), VERIFIED, ACTIVATING
 * during its delay, and after a reboot (what a gateway sends a node that
 * announces an orphan session).
 */
static void
test_abort_releases(void **state)
{
	static const uint8_t want[] = { UP_NS_RECEIVING, UP_NS_DOWNLOADED,
	    UP_NS_DOWNLOADED, UP_NS_VERIFIED, UP_NS_ACTIVATING,
	    UP_NS_VERIFIED };
	struct up_msg	 m;
	uint32_t	 s, i;
	int		 k;

	for (k = 0; k < 6; k++) {
		clear_sent();
		memset(&m, 0, sizeof(m));
		m.type = UP_T_OFFER;
		m.session = S1;
		offer_fill(&m.u.offer, PKG_SIZE, PKG_BS);
		assert_int_equal(feed_raw(&m), UP_OK);
		if (k > 0) {
			settle();
			for (i = 0; i < PKG_NB; i++)
				(void)send_block(S1, i, PKG_SIZE, PKG_BS);
			if (k >= 3)
				assert_int_equal(send_target(UP_T_VERIFY, S1,
				    0, 0, 0), UP_OK);
			if (k == 2) {
				memset(&m, 0, sizeof(m));
				m.type = UP_T_VERIFY;
				m.session = S1;
				assert_int_equal(feed_raw(&m), UP_OK);
				assert_int_equal(N.work, 2);
			}
			if (k == 4)
				assert_int_equal(send_activate(S1, 0, 60000),
				    UP_OK);
			if (k == 5)
				boot("1.0.0");
		} else
			assert_int_equal(N.work, 1);
		assert_int_equal(node_state(NULL), want[k]);
		/* Another node's ABORT changes nothing. */
		assert_int_equal(send_target(UP_T_ABORT, S1, OTHER_ID, 0,
		    UP_R_ABORTED), UP_OK);
		assert_true(node_state(NULL) != UP_NS_IDLE);
		assert_int_equal(send_target(UP_T_ABORT, S1, NODE_ID, 0,
		    UP_R_ABORTED), UP_OK);
		assert_int_equal(node_state(&s), UP_NS_IDLE);
		assert_int_equal(s, 0);
		assert_int_equal(N.work, 0);
		advance(60000);
		assert_int_equal(F.nactivate, 0);
		boot("1.0.0");
		assert_int_equal(node_state(NULL), UP_NS_IDLE);
	}
}

/* ------------------------------------------------------------------ */
/* Persistence and flash wear                                          */

/*
 * 32-byte blocks (a LoRa link) of a 256 KiB image: 8192 blocks, a 1 KiB
 * bitmap, one block every 2 s.  Saving the blob and the whole bitmap at
 * every timer (each block) would write some 40 times the data; the wear
 * rule keeps what the saves write below the data they record, and a
 * port with save_bitmap writes a few bytes per save.  A power cut loses
 * only what was not worth saving yet.
 */
#define LORA_SIZE	(256u * 1024)
#define LORA_BS		32

static void
lora_offer(uint32_t session)
{
	struct up_offer	 o;

	F.cap = BIG_CAP;
	offer_fill(&o, LORA_SIZE, LORA_BS);
	assert_int_equal(send_offer(session, &o), UP_OK);
	assert_int_equal(node_state(NULL), UP_NS_RECEIVING);
}

static uint64_t
lora_receive(uint32_t session, uint32_t from, uint32_t to)
{
	uint64_t	 meta = F.meta;
	uint32_t	 i;

	for (i = from; i < to; i++) {
		assert_int_equal(send_block(session, i, LORA_SIZE, LORA_BS),
		    UP_OK);
		advance(2000);
	}
	return (F.meta - meta);
}

static void
test_wear_tiny_blocks(void **state)
{
	uint64_t	 meta, data;
	uint32_t	 nb = up_nblocks(LORA_SIZE, LORA_BS), s, held;

	lora_offer(S1);
	/* Half the image, block by block. */
	meta = lora_receive(S1, 0, nb / 2);
	data = (uint64_t)(nb / 2) * LORA_BS;
	print_message("saves wrote %llu bytes for %llu of data\n",
	    (unsigned long long)meta, (unsigned long long)data);
	assert_true(meta > 0);
	assert_true(meta <= data / UP_NODE_SAVE_RATIO);
	/* A cut: what was saved is there, what was not is little. */
	boot("1.0.0");
	assert_int_equal(node_state(&s), UP_NS_RECEIVING);
	held = N.nheld;
	assert_true(held <= nb / 2);
	assert_true((uint64_t)(nb / 2 - held) * LORA_BS <=
	    (uint64_t)UP_NODE_SAVE_RATIO * (F.state_len + F.bitmap_len));
	/* The rest, and the image is whole. */
	meta = lora_receive(S1, held, nb);
	assert_int_equal(node_state(NULL), UP_NS_DOWNLOADED);
	assert_memory_equal(F.slot, image, LORA_SIZE);
}

/* The same with save_bitmap: a few bytes per save, nothing lost. */
static void
test_wear_in_place(void **state)
{
	uint64_t	 meta, data;
	uint32_t	 nb = up_nblocks(LORA_SIZE, LORA_BS), s;

	port = &fake_port_nor;
	boot("1.0.0");
	lora_offer(S1);
	meta = lora_receive(S1, 0, nb / 2);
	data = (uint64_t)(nb / 2) * LORA_BS;
	print_message("in place: saves wrote %llu bytes for %llu of data "
	    "(%d spans)\n", (unsigned long long)meta,
	    (unsigned long long)data, F.nspans);
	assert_true(F.nspans > 0);
	/* A byte per block at most (the timer saves each block's byte). */
	assert_true(meta <= data / LORA_BS);
	/* A cut: the bits saved in place are there (no CRC covers them). */
	boot("1.0.0");
	assert_int_equal(node_state(&s), UP_NS_RECEIVING);
	assert_int_equal(s, S1);
	assert_true(N.nheld >= nb / 2 - 8);
	/* A failed span save falls back to the whole, atomic save. */
	F.nsaves = 0;
	(void)lora_receive(S1, N.nheld, N.nheld + 64);
	assert_int_equal(F.nsaves, 0);
	F.save_fail = 1;
	(void)lora_receive(S1, N.nheld, N.nheld + 8);
	F.save_fail = 0;
	(void)lora_receive(S1, N.nheld, nb);
	assert_int_equal(node_state(NULL), UP_NS_DOWNLOADED);
	assert_memory_equal(F.slot, image, LORA_SIZE);
	/* DOWNLOADED is saved whole; a cut keeps it. */
	boot("1.0.0");
	assert_int_equal(node_state(NULL), UP_NS_DOWNLOADED);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_start_announces, setup),
		cmocka_unit_test_setup(test_discover_random_delay, setup),
		cmocka_unit_test_setup(test_offer_accept, setup),
		cmocka_unit_test_setup(test_data_gaps_status_slice, setup),
		cmocka_unit_test_setup(test_status_slice_bounded, setup),
		cmocka_unit_test_setup(test_data_bounds, setup),
		cmocka_unit_test_setup(test_periodic_save, setup),
		cmocka_unit_test_setup(test_verify_ok, setup),
		cmocka_unit_test_setup(test_verify_receiving_reports_status,
		    setup),
		cmocka_unit_test_setup(test_verify_bad_hash, setup),
		cmocka_unit_test_setup(test_verify_bad_signature, setup),
		cmocka_unit_test_setup(test_activate_confirm_ack, setup),
		cmocka_unit_test_setup(test_rollback, setup),
		cmocka_unit_test_setup(test_activate_port_fails, setup),
		cmocka_unit_test_setup(test_power_cut_receiving, setup),
		cmocka_unit_test_setup(test_power_cut_downloaded_verified,
		    setup),
		cmocka_unit_test_setup(test_power_cut_during_activate_delay,
		    setup),
		cmocka_unit_test_setup(test_resume_new_session, setup),
		cmocka_unit_test_setup(test_resume_verified_reverifies, setup),
		cmocka_unit_test_setup(test_declines, setup),
		cmocka_unit_test_setup(test_busy_and_stale, setup),
		cmocka_unit_test_setup(test_abort, setup),
		cmocka_unit_test_setup(test_slot_write_fails, setup),
		cmocka_unit_test_setup(test_bad_frames_change_nothing, setup),
		cmocka_unit_test_setup(test_corrupt_state_ignored, setup),
		cmocka_unit_test_setup(test_timer_wrap, setup),
		cmocka_unit_test_setup(test_xor_recovers_one, setup),
		cmocka_unit_test_setup(test_xor_two_or_none_missing, setup),
		cmocka_unit_test_setup(test_xor_bounds, setup),
		cmocka_unit_test_setup(test_xor_last_block, setup),
		cmocka_unit_test_setup(test_xor_big_blocks, setup),
		cmocka_unit_test_setup(test_xor_completes, setup),
		cmocka_unit_test_setup(test_xor_read_fails, setup),
		cmocka_unit_test_setup(test_erase_in_steps, setup),
		cmocka_unit_test_setup(test_erase_keeps_up, setup),
		cmocka_unit_test_setup(test_erase_power_cut, setup),
		cmocka_unit_test_setup(test_erase_fails, setup),
		cmocka_unit_test_setup(test_verify_in_steps, setup),
		cmocka_unit_test_setup(test_hash_rx_in_order, setup),
		cmocka_unit_test_setup(test_hash_rx_out_of_order, setup),
		cmocka_unit_test_setup(test_hash_rx_resume, setup),
		cmocka_unit_test_setup(test_hash_rx_buffer, setup),
		cmocka_unit_test_setup(test_hash_rx_tampered, setup),
		cmocka_unit_test_setup(test_replayed_old_package, setup),
		cmocka_unit_test_setup(test_signed_downgrade, setup),
		cmocka_unit_test_setup(test_forged_claims, setup),
		cmocka_unit_test_setup(test_floor_power_cuts, setup),
		cmocka_unit_test_setup(test_rollback_at_boot_and_activate,
		    setup),
		cmocka_unit_test_setup(test_floors_table, setup),
		cmocka_unit_test_setup(test_old_state_loads, setup),
		cmocka_unit_test_setup(test_supersede, setup),
		cmocka_unit_test_setup(test_abort_releases, setup),
		cmocka_unit_test_setup(test_wear_tiny_blocks, setup),
		cmocka_unit_test_setup(test_wear_in_place, setup),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
