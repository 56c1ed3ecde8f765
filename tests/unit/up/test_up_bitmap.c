/*
 * test_up_bitmap.c: block bitmaps and status slices
 * (docs/up-protocol.md §2.5, §4.7).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "up.h"

static void
test_bytes(void **state)
{
	assert_int_equal(up_bitmap_bytes(0), 0);
	assert_int_equal(up_bitmap_bytes(1), 1);
	assert_int_equal(up_bitmap_bytes(8), 1);
	assert_int_equal(up_bitmap_bytes(9), 2);
	assert_true(up_bitmap_bytes(UINT32_MAX) == 536870912u);
}

static void
test_set_get_edges(void **state)
{
	uint8_t		 buf[4];
	struct up_bitmap bm;
	const uint32_t	 nbits = 27;
	const uint32_t	 idx[] = { 0, 7, 8, 26 };
	size_t		 i;
	uint32_t	 j;

	memset(buf, 0xcc, sizeof(buf));
	up_bitmap_init(&bm, buf, nbits);
	up_bitmap_clear_all(&bm);
	assert_int_equal(buf[0] | buf[1] | buf[2] | buf[3], 0);
	assert_int_equal(up_bitmap_count(&bm), 0);

	for (i = 0; i < sizeof(idx) / sizeof(idx[0]); i++) {
		up_bitmap_set(&bm, idx[i]);
		assert_true(up_bitmap_get(&bm, idx[i]));
		assert_int_equal(up_bitmap_count(&bm), i + 1);
	}
	/* LSB first: bit 0 = 0x01 of byte 0, bit 7 = 0x80, bit 8 = byte 1. */
	assert_int_equal(buf[0], 0x81);
	assert_int_equal(buf[1], 0x01);
	assert_int_equal(buf[2], 0x00);
	assert_int_equal(buf[3], 0x04);
	for (j = 0; j < nbits; j++)
		assert_int_equal(up_bitmap_get(&bm, j),
		    j == 0 || j == 7 || j == 8 || j == 26);

	/* Out of range: ignored and read as clear. */
	up_bitmap_set(&bm, nbits);
	up_bitmap_set(&bm, UINT32_MAX);
	assert_false(up_bitmap_get(&bm, nbits));
	assert_int_equal(buf[3], 0x04);
	/* Padding bits are not counted. */
	buf[3] |= 0xf8;
	assert_int_equal(up_bitmap_count(&bm), 4);
	buf[3] &= 0x07;

	up_bitmap_clear(&bm, 7);
	assert_false(up_bitmap_get(&bm, 7));
	assert_int_equal(buf[0], 0x01);
	up_bitmap_clear(&bm, nbits + 3);
	assert_int_equal(up_bitmap_count(&bm), 3);

	up_bitmap_init(&bm, buf, 0);
	up_bitmap_set(&bm, 0);
	assert_false(up_bitmap_get(&bm, 0));
	assert_int_equal(up_bitmap_count(&bm), 0);
	up_bitmap_clear_all(&bm);
}

static void
test_next(void **state)
{
	uint8_t		 buf[8];
	struct up_bitmap bm;
	uint32_t	 i;

	up_bitmap_init(&bm, buf, 61);
	up_bitmap_clear_all(&bm);
	assert_int_equal(up_bitmap_next_set(&bm, 0), 61);
	assert_int_equal(up_bitmap_next_clear(&bm, 0), 0);
	assert_int_equal(up_bitmap_next_clear(&bm, 60), 60);
	assert_int_equal(up_bitmap_next_clear(&bm, 61), 61);
	assert_int_equal(up_bitmap_next_clear(&bm, UINT32_MAX), 61);

	up_bitmap_set(&bm, 7);
	up_bitmap_set(&bm, 8);
	up_bitmap_set(&bm, 60);
	assert_int_equal(up_bitmap_next_set(&bm, 0), 7);
	assert_int_equal(up_bitmap_next_set(&bm, 7), 7);
	assert_int_equal(up_bitmap_next_set(&bm, 8), 8);
	assert_int_equal(up_bitmap_next_set(&bm, 9), 60);
	assert_int_equal(up_bitmap_next_set(&bm, 61), 61);

	/* All set: next_clear runs off the end; padding is not a hole. */
	for (i = 0; i < 61; i++)
		up_bitmap_set(&bm, i);
	assert_int_equal(up_bitmap_count(&bm), 61);
	assert_int_equal(up_bitmap_next_clear(&bm, 0), 61);
	up_bitmap_clear(&bm, 0);
	up_bitmap_clear(&bm, 8);
	up_bitmap_clear(&bm, 60);
	assert_int_equal(up_bitmap_next_clear(&bm, 0), 0);
	assert_int_equal(up_bitmap_next_clear(&bm, 1), 8);
	assert_int_equal(up_bitmap_next_clear(&bm, 9), 60);
	assert_int_equal(up_bitmap_next_set(&bm, 0), 1);
	assert_int_equal(up_bitmap_next_set(&bm, 60), 61);
}

/* Compares next_* against a bit-by-bit reference on a pseudo-random map. */
static void
test_next_reference(void **state)
{
	uint8_t		 buf[40];
	struct up_bitmap bm;
	uint32_t	 x = 12345, i, j, ref, nbits = 317;

	up_bitmap_init(&bm, buf, nbits);
	for (i = 0; i < sizeof(buf); i++) {
		x = x * 1103515245u + 12345u;
		/* Mostly full or mostly empty bytes, to hit the byte skip. */
		buf[i] = (x >> 16) % 3 == 0 ? 0xff : (x >> 16) % 3 == 1 ?
		    0x00 : (uint8_t)(x >> 8);
	}
	for (i = 0; i <= nbits; i++) {
		for (ref = i; ref < nbits && !up_bitmap_get(&bm, ref); ref++)
			;
		assert_int_equal(up_bitmap_next_set(&bm, i), ref);
		for (ref = i; ref < nbits && up_bitmap_get(&bm, ref); ref++)
			;
		assert_int_equal(up_bitmap_next_clear(&bm, i), ref);
	}
	for (ref = 0, j = 0; j < nbits; j++)
		ref += up_bitmap_get(&bm, j);
	assert_int_equal(up_bitmap_count(&bm), ref);
}

struct visit {
	uint32_t	 idx[64];
	int		 n;
};

static void
visit_cb(void *arg, uint32_t i)
{
	struct visit	*v = arg;

	assert_true(v->n < 64);
	v->idx[v->n++] = i;
}

static void
test_status_slice(void **state)
{
	uint8_t		 buf[8], out[8];
	struct up_bitmap held;
	struct up_status_body st;
	struct visit	 v;
	uint32_t	 i;

	/* 20 blocks; held: 0-1, 3, 5-10, 12-19; missing: 2, 4, 11. */
	up_bitmap_init(&held, buf, 20);
	up_bitmap_clear_all(&held);
	for (i = 0; i < 20; i++)
		if (i != 2 && i != 4 && i != 11)
			up_bitmap_set(&held, i);

	memset(out, 0xff, sizeof(out));
	up_status_from_bitmap(&held, out, 64, &st);
	assert_int_equal(st.held, 17);
	assert_int_equal(st.first_missing, 2);
	assert_int_equal(st.nbits, 18);
	assert_ptr_equal(st.bits, out);
	/* Relative bits 0, 2, 9 set: 0x05 0x02, padding clear. */
	assert_int_equal(out[0], 0x05);
	assert_int_equal(out[1], 0x02);
	assert_int_equal(out[2], 0x00);

	memset(&v, 0, sizeof(v));
	up_status_foreach_missing(&st, 20, visit_cb, &v);
	assert_int_equal(v.n, 3);
	assert_int_equal(v.idx[0], 2);
	assert_int_equal(v.idx[1], 4);
	assert_int_equal(v.idx[2], 11);

	/* A slice shorter than the image: blocks past it are not visited. */
	up_status_from_bitmap(&held, out, 5, &st);
	assert_int_equal(st.nbits, 5);
	memset(&v, 0, sizeof(v));
	up_status_foreach_missing(&st, 20, visit_cb, &v);
	assert_int_equal(v.n, 2);
	assert_int_equal(v.idx[1], 4);

	/* nblocks smaller than the slice bounds the walk. */
	up_status_from_bitmap(&held, out, 64, &st);
	memset(&v, 0, sizeof(v));
	up_status_foreach_missing(&st, 11, visit_cb, &v);
	assert_int_equal(v.n, 2);

	/* Complete: first_missing == nblocks, empty slice. */
	up_bitmap_set(&held, 2);
	up_bitmap_set(&held, 4);
	up_bitmap_set(&held, 11);
	up_status_from_bitmap(&held, out, 64, &st);
	assert_int_equal(st.held, 20);
	assert_int_equal(st.first_missing, 20);
	assert_int_equal(st.nbits, 0);
	memset(&v, 0, sizeof(v));
	up_status_foreach_missing(&st, 20, visit_cb, &v);
	assert_int_equal(v.n, 0);

	/* Nothing held. */
	up_bitmap_clear_all(&held);
	up_status_from_bitmap(&held, out, 64, &st);
	assert_int_equal(st.held, 0);
	assert_int_equal(st.first_missing, 0);
	assert_int_equal(st.nbits, 20);
	memset(&v, 0, sizeof(v));
	up_status_foreach_missing(&st, 20, visit_cb, &v);
	assert_int_equal(v.n, 20);
	assert_int_equal(v.idx[19], 19);
}

/* Node bitmap -> slice -> STATUS frame -> decoded -> gateway's view. */
static void
test_status_frame_roundtrip(void **state)
{
	uint8_t		 buf[16], out[16], f[UP_FRAME_MAX], gw_buf[16];
	struct up_bitmap held, gw;
	struct up_msg	 m, d;
	struct visit	 v;
	uint32_t	 i;
	int		 n;

	up_bitmap_init(&held, buf, 100);
	up_bitmap_clear_all(&held);
	for (i = 0; i < 100; i++)
		if (i % 7 != 3)
			up_bitmap_set(&held, i);

	memset(&m, 0, sizeof(m));
	m.type = UP_T_STATUS;
	m.session = 9;
	m.u.status.node_id = 42;
	m.u.status.state = UP_NS_RECEIVING;
	up_status_from_bitmap(&held, out, 128, &m.u.status.st);
	n = up_encode(&m, f, sizeof(f));
	assert_true(n > 0);
	assert_int_equal(up_decode(f, (size_t)n, &d), UP_OK);
	assert_int_equal(d.u.status.st.held, up_bitmap_count(&held));
	assert_int_equal(d.u.status.st.first_missing, 3);

	/* The gateway marks what the node misses; it must equal ~held. */
	up_bitmap_init(&gw, gw_buf, 100);
	up_bitmap_clear_all(&gw);
	memset(&v, 0, sizeof(v));
	up_status_foreach_missing(&d.u.status.st, 100, visit_cb, &v);
	for (i = 0; i < (uint32_t)v.n; i++)
		up_bitmap_set(&gw, v.idx[i]);
	for (i = 0; i < 100; i++)
		assert_int_equal(up_bitmap_get(&gw, i),
		    !up_bitmap_get(&held, i));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bytes),
		cmocka_unit_test(test_set_get_edges),
		cmocka_unit_test(test_next),
		cmocka_unit_test(test_next_reference),
		cmocka_unit_test(test_status_slice),
		cmocka_unit_test(test_status_frame_roundtrip),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
