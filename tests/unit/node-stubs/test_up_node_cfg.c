/*
 * test_up_node_cfg.c: the node engine built with a port's configuration
 * (up/up_config.h: -DUP_CONFIG_FILE="test_port_config.h", the sources of
 * up/ compiled into this binary with it).  The engine honours every
 * option: erase and hash steps, the save cadence, the stale time, the
 * RESULT back-off, the longest tick interval and no hash on receipt
 * (UP_NODE_HASH_RX 0: VERIFY hashes the whole slot, in steps).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "up.h"

#define NODE_ID		0x42
#define CAP		(64 * 1024)
#define SIZE		(20000u)
#define BS		500
#define S1		0x51u
#define S2		0x52u

static struct {
	uint32_t	 now;
	uint8_t		 slot[CAP];
	uint8_t		 state[UP_NODE_STATE_MAX];
	size_t		 state_len;
	uint8_t		 bm[1024];
	size_t		 bm_len;
	int		 saves;
	int		 erases;
	uint32_t	 erase_len_max;
	size_t		 hashed, hashed_max;
	EVP_MD_CTX	*sha;
	uint8_t		 last_type, last_code, last_state;
	int		 results;
} F;

static struct up_node	 N;
static uint8_t		 bitmap[1024];
static uint8_t		 image[SIZE];

static int
c_send(void *ctx, const uint8_t *p, size_t n)
{
	struct up_msg	 m;

	assert_int_equal(up_decode(p, n, &m), UP_OK);
	F.last_type = m.type;
	if (m.type == UP_T_ACCEPT)
		F.last_code = m.u.accept.code;
	if (m.type == UP_T_RESULT) {
		F.results++;
		F.last_state = m.u.result.state;
		F.last_code = m.u.result.result;
	}
	return (0);
}

static uint32_t
c_now(void *ctx)
{
	return (F.now);
}

static uint32_t
c_random(void *ctx)
{
	return (0);
}

static int
c_save(void *ctx, const uint8_t *st, size_t sl, const uint8_t *bm,
    size_t bl)
{
	memcpy(F.state, st, sl);
	F.state_len = sl;
	memcpy(F.bm, bm, bl);
	F.bm_len = bl;
	F.saves++;
	return (0);
}

static int
c_load(void *ctx, uint8_t *st, size_t scap, size_t *sl, uint8_t *bm,
    size_t bcap, size_t *bl)
{
	return (-1);
}

static uint32_t
c_cap(void *ctx)
{
	return (CAP);
}

static int
c_erase(void *ctx, uint32_t off, uint32_t len)
{
	assert_int_equal(off % UP_NODE_ERASE_STEP, 0);
	memset(F.slot + off, 0xff, len);
	F.erases++;
	if (len > F.erase_len_max)
		F.erase_len_max = len;
	return (0);
}

static int
c_write(void *ctx, uint32_t off, const uint8_t *p, size_t n)
{
	memcpy(F.slot + off, p, n);
	return (0);
}

static int
c_read(void *ctx, uint32_t off, uint8_t *p, size_t n)
{
	memcpy(p, F.slot + off, n);
	return (0);
}

static int
c_sha_begin(void *ctx)
{
	if (F.sha == NULL)
		F.sha = EVP_MD_CTX_new();
	return (EVP_DigestInit_ex(F.sha, EVP_sha256(), NULL) == 1 ? 0 : -1);
}

static int
c_sha_update(void *ctx, const uint8_t *p, size_t n)
{
	F.hashed += n;
	return (EVP_DigestUpdate(F.sha, p, n) == 1 ? 0 : -1);
}

static int
c_sha_end(void *ctx, uint8_t md[32])
{
	return (EVP_DigestFinal_ex(F.sha, md, NULL) == 1 ? 0 : -1);
}

static int
c_activate(void *ctx, const struct up_offer *o)
{
	return (-1);		/* the slot switch fails: a final RESULT */
}

static const struct up_port c_port = {
	.send = c_send, .now_ms = c_now, .random = c_random,
	.save = c_save, .load = c_load,
	.slot_capacity = c_cap, .slot_erase = c_erase,
	.slot_write = c_write, .slot_read = c_read,
	.sha256_begin = c_sha_begin, .sha256_update = c_sha_update,
	.sha256_end = c_sha_end, .activate = c_activate
};

static int
c_feed(struct up_msg *m)
{
	uint8_t		 buf[UP_FRAME_MAX];
	int		 len;

	len = up_encode(m, buf, sizeof(buf));
	assert_true(len > 0);
	return (up_node_input(&N, buf, (size_t)len));
}

static void
c_tick(void)
{
	F.hashed = 0;
	up_node_tick(&N);
	if (F.hashed > F.hashed_max)
		F.hashed_max = F.hashed;
}

static void
c_offer(uint32_t session, const char *comp, const char *to, uint32_t size)
{
	struct up_msg	 m;
	struct up_offer	*o = &m.u.offer;

	memset(&m, 0, sizeof(m));
	m.type = UP_T_OFFER;
	m.session = session;
	strcpy(o->component, comp);
	strcpy(o->to_version, to);
	o->kind = UP_KIND_FULL;
	o->size = o->image_size = size;
	EVP_Digest(image, size, o->sha256, NULL, EVP_sha256(), NULL);
	memcpy(o->image_sha256, o->sha256, 32);
	o->block_size = BS;
	o->nblocks = up_nblocks(size, BS);
	assert_int_equal(c_feed(&m), UP_OK);
}

static void
c_target(uint8_t type, uint32_t session)
{
	struct up_msg	 m;

	memset(&m, 0, sizeof(m));
	m.type = type;
	m.session = session;
	assert_int_equal(c_feed(&m), UP_OK);
}

static void
test_port_config(void **state)
{
	struct up_node_info info;
	struct up_msg	 m;
	uint32_t	 i, saves, gaps[] = { 500, 1000, 2000, 4000, 4000 };
	int		 steps = 0, r;

	for (i = 0; i < SIZE; i++)
		image[i] = (uint8_t)(i * 13 + 1);
	memset(&F, 0, sizeof(F));
	F.now = 100;
	memset(&info, 0, sizeof(info));
	info.node_id = NODE_ID;
	info.ncomp = 2;
	strcpy(info.comp[0].name, "app");
	strcpy(info.comp[0].version, "1.0");
	strcpy(info.comp[1].name, "os");
	strcpy(info.comp[1].version, "3.0");
	up_node_init(&N, &c_port, NULL, &info, bitmap, sizeof(bitmap));
	assert_int_equal(up_node_start(&N, NULL), UP_OK);
	assert_int_equal(up_node_next_ms(&N), UP_NODE_IDLE_MS);

	/* The erase: ceil(19900 / 4096) = 5 steps of at most a sector. */
	c_offer(S1, "app", "1.1", SIZE - 100);
	assert_int_equal(F.last_code, UP_R_INITIAL);
	while (up_node_next_ms(&N) == 0) {
		c_tick();
		assert_true(++steps < 100);
	}
	assert_int_equal(F.erases, 5);
	assert_int_equal(F.erase_len_max, 4096);

	/* Saves every 8 blocks (the timer is far). */
	saves = (uint32_t)F.saves;
	for (i = 0; i < 16; i++) {
		memset(&m, 0, sizeof(m));
		m.type = UP_T_DATA;
		m.session = S1;
		m.u.data.index = i;
		m.u.data.len = BS;
		m.u.data.data = image + i * BS;
		assert_int_equal(c_feed(&m), UP_OK);
	}
	assert_int_equal((uint32_t)F.saves, saves + 2);

	/*
	 * Stale after 10 s: another component's package replaces the
	 * session (one staging slot).
	 */
	F.now += 9999;
	c_offer(S2, "os", "3.1", SIZE);
	assert_int_equal(F.last_code, UP_R_BUSY);
	F.now += 1;
	c_offer(S2, "os", "3.1", SIZE);
	assert_int_equal(F.last_code, UP_R_INITIAL);
	while (up_node_next_ms(&N) == 0)
		c_tick();
	for (i = 0; i < up_nblocks(SIZE, BS); i++) {
		memset(&m, 0, sizeof(m));
		m.type = UP_T_DATA;
		m.session = S2;
		m.u.data.index = i;
		m.u.data.len = (uint16_t)(SIZE - i * BS < BS ? SIZE - i * BS :
		    BS);
		m.u.data.data = image + i * BS;
		assert_int_equal(c_feed(&m), UP_OK);
	}
	assert_int_equal(up_node_get_state(&N, NULL, NULL), UP_NS_DOWNLOADED);

	/* No hash on receipt: the whole slot, 1 KiB per tick, 20 ticks. */
	assert_false(N.hash_live);
	c_target(UP_T_VERIFY, S2);
	steps = 0;
	F.hashed_max = 0;
	while (up_node_next_ms(&N) == 0) {
		c_tick();
		steps++;
	}
	assert_int_equal(steps, 20);
	assert_int_equal(F.hashed_max, 1024);
	assert_int_equal(up_node_get_state(&N, NULL, NULL), UP_NS_VERIFIED);

	/* A failed switch: FAILED, resent after 0.5, 1, 2, 4, 4 s. */
	memset(&m, 0, sizeof(m));
	m.type = UP_T_ACTIVATE;
	m.session = S2;
	assert_int_equal(c_feed(&m), UP_OK);
	c_tick();
	assert_int_equal(F.last_state, UP_NS_FAILED);
	for (i = 0; i < 5; i++) {
		r = F.results;
		assert_int_equal(up_node_next_ms(&N), gaps[i]);
		F.now += gaps[i] - 1;
		c_tick();
		assert_int_equal(F.results, r);
		F.now += 1;
		c_tick();
		assert_int_equal(F.results, r + 1);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_port_config),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
