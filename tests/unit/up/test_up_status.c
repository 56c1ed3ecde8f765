/*
 * test_up_status.c: the compact status bodies of docs/up-protocol.md
 * §11.7 (up/up_status.c): the node's run-list and count-list builders
 * (exact when they fit, a correct prefix when cut to the uplink MTU),
 * the gateway's walkers and checks, and the aggregator of a status
 * round; plus the figure §11.7 quotes for a 300 MB package.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "up.h"

#define BIG		214000		/* 300 MB in 1,400-byte blocks */

static uint8_t	 heldbuf[BIG / 8 + 1], aggbits[BIG / 8 + 1];
static uint8_t	 seen[BIG];
static uint8_t	 list[UP_FRAME_MAX];
static uint8_t	 frame[UP_FRAME_MAX];
static uint32_t	 rng = 12345;

static uint32_t
rnd(void)
{
	/* xorshift32: the same sequence on every run. */
	rng ^= rng << 13;
	rng ^= rng >> 17;
	rng ^= rng << 5;
	return (rng);
}

/* A held bitmap of nblocks with `miss' random holes and some bursts. */
static void
make_held(struct up_bitmap *held, uint32_t nblocks, uint32_t miss,
    uint32_t bursts)
{
	uint32_t	 i, at, len;

	up_bitmap_init(held, heldbuf, nblocks);
	memset(heldbuf, 0xff, up_bitmap_bytes(nblocks));
	for (i = 0; i < miss; i++)
		up_bitmap_clear(held, rnd() % nblocks);
	for (i = 0; i < bursts; i++) {
		at = rnd() % nblocks;
		for (len = 1 + rnd() % 200; len > 0 && at < nblocks; len--)
			up_bitmap_clear(held, at++);
	}
}

static void
mark(void *arg, uint32_t idx)
{
	(void)arg;
	assert_int_equal(seen[idx], 0);
	seen[idx] = 1;
}

/* The body says exactly the held bitmap's holes below `end'. */
static void
check_exact(const struct up_bitmap *held, const struct up_status_body *st,
    uint32_t end)
{
	uint32_t	 i;

	memset(seen, 0, held->nbits);
	up_status_foreach_missing(st, held->nbits, mark, NULL);
	for (i = 0; i < held->nbits; i++) {
		if (i < end)
			assert_int_equal(seen[i], !up_bitmap_get(held, i));
		else
			assert_int_equal(seen[i], 0);
	}
}

/* Encodes the body in a compact STATUS and decodes it back. */
static void
wire(const struct up_status_body *st, bool node_id, bool crc,
    struct up_msg *d, int *len)
{
	struct up_msg	 m;

	memset(&m, 0, sizeof(m));
	m.type = UP_T_STATUS;
	m.form = UP_FORM_COMPACT;
	m.session = 0x5eed0001;
	m.u.status.node_id = node_id ? 0x0102030405060708ULL : 0;
	m.u.status.state = UP_NS_RECEIVING;
	m.u.status.st = *st;
	m.cx.cflags = crc ? UP_CF_CRC : 0;
	*len = up_encode(&m, frame, sizeof(frame));
	assert_true(*len > 0);
	assert_int_equal(up_cdecode(frame, (size_t)*len, d), UP_OK);
	assert_int_equal(up_status_body_len(&d->u.status.st),
	    up_status_body_len(st));
}

static void
test_runs_exact(void **state)
{
	struct up_bitmap held;
	struct up_status_body st;
	struct up_msg	 d;
	uint32_t	 sizes[] = { 1, 7, 64, 1000, 50000 };
	int		 body, len;
	size_t		 i;

	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		make_held(&held, sizes[i], sizes[i] / 50, sizes[i] / 5000);
		body = up_status_runs(&held, list, sizeof(list), 1400, &st);
		assert_true(body > 0);
		assert_false(st.cut);
		assert_int_equal(st.held, up_bitmap_count(&held));
		wire(&st, true, true, &d, &len);
		assert_int_equal(len, 1 + 4 + 8 + 1 + body + 2);
		assert_int_equal(up_status_check(&d.u.status.st, sizes[i], 0),
		    UP_OK);
		check_exact(&held, &d.u.status.st, sizes[i]);
		assert_int_equal(up_status_described(&d.u.status.st,
		    sizes[i], 0), sizes[i]);
	}
	/* Nothing missing: 3 varints. */
	make_held(&held, 300, 0, 0);
	assert_int_equal(up_status_runs(&held, list, sizeof(list), 20, &st),
	    2 + 2 + 1);
	assert_int_equal(st.first_missing, 300);
	assert_int_equal(st.nent, 0);
	/* Everything missing: one long run. */
	up_bitmap_clear_all(&held);
	assert_int_equal(up_status_runs(&held, list, sizeof(list), 20, &st),
	    1 + 1 + 1 + 1 + 2);
	check_exact(&held, &st, 300);
}

/* Cut to a 20-byte notification and a 51-byte LoRa frame. */
static void
test_runs_cut(void **state)
{
	struct up_bitmap held;
	struct up_status_body st;
	struct up_msg	 d;
	uint32_t	 end;
	int		 len, mtu;

	for (mtu = 20; mtu <= 51; mtu += 31) {
		make_held(&held, 5000, 200, 3);
		/* Header without node id: 6 bytes. */
		assert_true(up_status_runs(&held, list, sizeof(list),
		    (size_t)mtu - 6, &st) > 0);
		assert_true(st.cut);
		assert_true(st.nent >= 1);
		wire(&st, false, false, &d, &len);
		assert_true(len <= mtu);
		end = up_status_described(&d.u.status.st, 5000, 0);
		assert_true(end > st.first_missing && end < 5000);
		/* Exact up to the end of the last run, silent after. */
		check_exact(&held, &d.u.status.st, end);
	}
	/* Not even the header fits: nothing said, and it says so. */
	assert_int_equal(up_status_runs(&held, list, sizeof(list), 3, &st),
	    UP_ENOSPC);
	assert_true(st.cut);
	assert_int_equal(st.nent, 0);
}

/* §11.7's figure: 800 scattered misses of 214,000 blocks in one frame. */
static void
test_runs_300mb(void **state)
{
	struct up_bitmap held;
	struct up_status_body st;
	struct up_msg	 d;
	int		 body, len;
	/* A compact STATUS with node id and CRC-16: 16 bytes around. */
	size_t		 budget = UP_FRAME_MAX - 16;

	rng = 4242;
	make_held(&held, BIG, 800, 0);
	body = up_status_runs(&held, list, sizeof(list), budget, &st);
	assert_true(body > 0);
	assert_false(st.cut);
	wire(&st, true, true, &d, &len);
	assert_true(len <= UP_FRAME_MAX);
	check_exact(&held, &d.u.status.st, BIG);
	print_message("800 misses of %u blocks: %d-byte body\n", BIG, body);
	/* The bitmap slice of §4.7 would have needed 19 frames. */
	assert_true((BIG - st.first_missing + 11511) / 11512 >= 18);

	/* 2,000 misses (about 1 %): cut, a correct prefix. */
	make_held(&held, BIG, 2000, 0);
	body = up_status_runs(&held, list, sizeof(list), budget, &st);
	assert_true(st.cut);
	wire(&st, true, true, &d, &len);
	check_exact(&held, &d.u.status.st,
	    up_status_described(&d.u.status.st, BIG, 0));
	print_message("2000 misses: cut at block %u\n",
	    up_status_described(&d.u.status.st, BIG, 0));

	/* Losses in bursts fit far more: 100 bursts of up to 200. */
	make_held(&held, BIG, 0, 100);
	assert_true(up_status_runs(&held, list, sizeof(list), budget, &st) <
	    500);
	assert_false(st.cut);
}

static uint32_t	 needs[100];

static uint32_t
need_of(void *arg, uint32_t g)
{
	(void)arg;
	return (needs[g]);
}

static char	 got[512];

static void
put_need(void *arg, uint32_t g, uint32_t n)
{
	size_t	 l = strlen(got);

	(void)arg;
	snprintf(got + l, sizeof(got) - l, "%u:%u ", (unsigned)g,
	    (unsigned)n);
}

static void
test_counts(void **state)
{
	struct up_status_body st;
	struct up_msg	 d;
	int		 body, len;
	uint32_t	 end;

	memset(needs, 0, sizeof(needs));
	needs[1] = 1;
	needs[3] = 2;
	needs[40] = 130;
	body = up_status_counts(4 + 130, 50, need_of, NULL, list,
	    sizeof(list), 30, &st);
	/* missing 134 (2), ng (1), (1,1) (1,2) (36,130: 1 + 2). */
	assert_int_equal(body, 2 + 1 + 2 + 2 + 3);
	assert_false(st.cut);
	wire(&st, true, false, &d, &len);
	assert_int_equal(up_status_check(&d.u.status.st, 10000, 50), UP_OK);
	got[0] = '\0';
	assert_int_equal(up_status_foreach_need(&d.u.status.st, 50, put_need,
	    NULL), UP_OK);
	assert_string_equal(got, "1:1 3:2 40:130 ");
	assert_int_equal(up_status_described(&d.u.status.st, 10000, 50),
	    50);
	/* Group 40 is past a session of 40 groups. */
	assert_int_equal(up_status_check(&d.u.status.st, 10000, 40),
	    UP_ERANGE);
	got[0] = '\0';
	assert_int_equal(up_status_foreach_need(&d.u.status.st, 40, put_need,
	    NULL), UP_ERANGE);
	assert_string_equal(got, "1:1 3:2 ");
	/* More missing than blocks. */
	assert_int_equal(up_status_check(&d.u.status.st, 100, 50), UP_ERANGE);

	/* Cut: a budget of 7 bytes keeps two entries. */
	body = up_status_counts(134, 50, need_of, NULL, list, sizeof(list),
	    7, &st);
	assert_int_equal(body, 7);
	assert_true(st.cut);
	assert_int_equal(st.nent, 2);
	end = up_status_described(&st, 10000, 50);
	assert_int_equal(end, 4);
	/* Nothing missing: no entry even if a group says so. */
	body = up_status_counts(0, 50, need_of, NULL, list, sizeof(list), 7,
	    &st);
	assert_int_equal(body, 2);
	assert_int_equal(st.nent, 0);
}

static void
test_check(void **state)
{
	struct up_bitmap held;
	struct up_status_body st;

	make_held(&held, 100, 0, 0);
	up_bitmap_clear(&held, 99);
	assert_true(up_status_runs(&held, list, sizeof(list), 50, &st) > 0);
	assert_int_equal(up_status_check(&st, 100, 0), UP_OK);
	/* The same run list against a smaller package. */
	assert_int_equal(up_status_check(&st, 99, 0), UP_ERANGE);
	assert_int_equal(up_status_check(&st, 50, 0), UP_ERANGE);
	/* Complete, yet lists a run. */
	st.first_missing = 100;
	assert_int_equal(up_status_check(&st, 100, 0), UP_ERANGE);
	st.first_missing = 99;
	st.held = 101;
	assert_int_equal(up_status_check(&st, 100, 0), UP_ERANGE);
	st.form = 3;
	assert_int_equal(up_status_check(&st, 100, 0), UP_ERANGE);
}

static void
test_agg(void **state)
{
	struct up_status_agg a;
	struct up_status_body st;
	struct up_bitmap held;
	uint8_t		 need[8], slice[2], before[sizeof(need)];
	uint8_t		 bm[4];
	uint32_t	 i;

	/* 30 blocks in groups of 8: 4 groups (the last of 6). */
	assert_int_equal(up_status_agg_init(&a, 30, 8, aggbits,
	    sizeof(aggbits), need, sizeof(need)), UP_OK);
	assert_int_equal(a.ngroups, 4);
	assert_int_equal(up_status_agg_init(&a, 30, 8, aggbits, 3, need,
	    sizeof(need)), UP_EINVAL);
	assert_int_equal(up_status_agg_init(&a, 30, 8, aggbits,
	    sizeof(aggbits), need, 3), UP_EINVAL);
	(void)up_status_agg_init(&a, 30, 8, aggbits, sizeof(aggbits), need,
	    sizeof(need));

	/* Node 1: a run list missing 2, 3 and 9-17 (groups 0, 1, 2). */
	up_bitmap_init(&held, bm, 30);
	memset(bm, 0xff, sizeof(bm));
	up_bitmap_clear(&held, 2);
	up_bitmap_clear(&held, 3);
	for (i = 9; i <= 17; i++)
		up_bitmap_clear(&held, i);
	assert_true(up_status_runs(&held, list, sizeof(list), 50, &st) > 0);
	assert_int_equal(up_status_agg_add(&a, &st), UP_OK);
	assert_int_equal(need[0], 2);
	assert_int_equal(need[1], 7);
	assert_int_equal(need[2], 2);
	assert_int_equal(need[3], 0);

	/* Node 2: a bitmap slice from 20: missing 20 and 29. */
	memset(&st, 0, sizeof(st));
	st.held = 28;
	st.first_missing = 20;
	st.nbits = 10;
	slice[0] = 0x01;
	slice[1] = 0x02;
	st.bits = slice;
	assert_int_equal(up_status_agg_add(&a, &st), UP_OK);
	assert_int_equal(need[2], 2);
	assert_int_equal(need[3], 1);

	/* Node 3: a count list: 5 rows in group 3. */
	memset(needs, 0, sizeof(needs));
	needs[3] = 5;
	(void)up_status_counts(5, 4, need_of, NULL, list, sizeof(list), 20,
	    &st);
	assert_int_equal(up_status_agg_add(&a, &st), UP_OK);
	assert_int_equal(need[3], 5);

	/* Node 4: complete. */
	make_held(&held, 30, 0, 0);
	(void)up_status_runs(&held, list, sizeof(list), 20, &st);
	assert_int_equal(up_status_agg_add(&a, &st), UP_OK);

	assert_int_equal(a.bodies, 4);
	assert_int_equal(a.complete, 1);
	assert_int_equal(a.counts, 1);
	for (i = 0; i < 30; i++)
		assert_int_equal(up_bitmap_get(&a.missing, i),
		    i == 2 || i == 3 || (i >= 9 && i <= 17) || i == 20 ||
		    i == 29);

	/* A body past the package changes nothing. */
	memcpy(before, need, sizeof(need));
	needs[3] = 0;
	needs[4] = 9;
	(void)up_status_counts(9, 5, need_of, NULL, list, sizeof(list), 20,
	    &st);
	assert_int_equal(up_status_agg_add(&a, &st), UP_ERANGE);
	assert_memory_equal(need, before, sizeof(need));
	assert_int_equal(a.bodies, 4);

	/* k = 0: one group of everything; need saturates at 255. */
	assert_int_equal(up_status_agg_init(&a, 1000, 0, aggbits,
	    sizeof(aggbits), need, 1), UP_OK);
	make_held(&held, 1000, 0, 0);
	for (i = 0; i < 300; i++)
		up_bitmap_clear(&held, i * 3);
	(void)up_status_runs(&held, list, sizeof(list), 1400, &st);
	assert_int_equal(up_status_agg_add(&a, &st), UP_OK);
	assert_int_equal(need[0], 255);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_runs_exact),
		cmocka_unit_test(test_runs_cut),
		cmocka_unit_test(test_runs_300mb),
		cmocka_unit_test(test_counts),
		cmocka_unit_test(test_check),
		cmocka_unit_test(test_agg),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
