/*
 * test_eng_xrepair.c: the XOR repair planner (bridge/xrepair.c).
 * Random rounds checked against an independent oracle built from the
 * status bodies (every pair covered, no covered node misses two blocks
 * of a frame or lacks knowledge of one, lists encodable within `room'),
 * the frame count on a 30-node round, overflow, and small edge cases.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_internal.h"

/* splitmix64: a seeded, reproducible PRNG. */
static uint64_t
rnd(uint64_t *s)
{
	uint64_t	 z;

	z = (*s += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return (z ^ (z >> 31));
}

static uint32_t
rnd_below(uint64_t *s, uint32_t n)
{
	return ((uint32_t)(rnd(s) % n));
}

/* One simulated node: its held bitmap, status slice and the oracle. */
struct tnode {
	uint8_t		*held;		/* set = held */
	uint8_t		*slice;		/* status bits, set = missing */
	struct up_status_body st;
	uint8_t		*miss;		/* oracle M_i, one byte per block */
	uint32_t	 kend;		/* oracle end of K_i */
	uint32_t	 nmiss;
};

/*
 * Builds node `t' losing each block with probability loss_ppm / 1e6,
 * reporting a slice of at most max_bits bits, then derives the oracle
 * straight from the status body (not through the planner's walker).
 */
static void
tnode_make(struct tnode *t, uint32_t nblocks, uint32_t loss_ppm,
    uint16_t max_bits, uint64_t *s)
{
	struct up_bitmap	 bm;
	uint32_t		 i, idx;
	uint64_t		 end;

	t->held = calloc(1, up_bitmap_bytes(nblocks) + 1);
	t->slice = calloc(1, up_bitmap_bytes(max_bits) + 1);
	t->miss = calloc(1, nblocks + 1);
	assert_non_null(t->held);
	assert_non_null(t->slice);
	assert_non_null(t->miss);
	up_bitmap_init(&bm, t->held, nblocks);
	for (i = 0; i < nblocks; i++)
		if (rnd_below(s, 1000000) >= loss_ppm)
			up_bitmap_set(&bm, i);
	up_status_from_bitmap(&bm, t->slice, max_bits, &t->st);

	t->nmiss = 0;
	for (i = 0; i < t->st.nbits; i++) {
		idx = t->st.first_missing + i;
		if (idx >= nblocks)
			break;
		if (t->st.bits[i / 8] & (1u << (i % 8))) {
			t->miss[idx] = 1;
			t->nmiss++;
		}
	}
	end = (uint64_t)t->st.first_missing + t->st.nbits;
	t->kend = end > nblocks ? nblocks : (uint32_t)end;
}

static void
tnode_free(struct tnode *t)
{
	free(t->held);
	free(t->slice);
	free(t->miss);
}

/* Encodes a block list as §4.15 does and returns its length. */
static size_t
encode_list(const uint32_t *idx, uint8_t n, uint8_t *out)
{
	size_t		 len = 0;
	uint32_t	 gap;
	uint8_t		 i;

	out[len++] = (uint8_t)idx[0];
	out[len++] = (uint8_t)(idx[0] >> 8);
	out[len++] = (uint8_t)(idx[0] >> 16);
	out[len++] = (uint8_t)(idx[0] >> 24);
	for (i = 1; i < n; i++) {
		gap = idx[i] - idx[i - 1];
		assert_true(gap >= 1);
		assert_true(gap < (1u << 28));
		while (gap >= 0x80) {
			out[len++] = (uint8_t)(gap | 0x80);
			gap >>= 7;
		}
		out[len++] = (uint8_t)gap;
	}
	return (len);
}

/*
 * Checks a built plan against the oracle; returns the frame count.
 * covered[] (one byte per block) counts frames listing each block.
 */
static size_t
check_plan(struct xr_plan *p, size_t nf, struct tnode *t, size_t nt,
    uint32_t nblocks, size_t room)
{
	const uint32_t	*idx;
	uint8_t		 n, enc[UP_XOR_MAX * 5 + 4], *listed;
	size_t		 i, k, m, j;
	bool		 anymiss;

	listed = calloc(1, nblocks + 1);
	assert_non_null(listed);
	for (i = 0; i < nf; i++) {
		idx = xr__frame(p, i, &n);
		assert_non_null(idx);
		assert_true(n >= 1 && n <= UP_XOR_MAX);
		for (j = 0; j < n; j++) {
			assert_true(idx[j] < nblocks);
			if (j > 0)
				assert_true(idx[j] > idx[j - 1]);
			/* Only blocks some node misses are listed. */
			anymiss = false;
			for (k = 0; k < nt && !anymiss; k++)
				anymiss = t[k].miss[idx[j]] != 0;
			assert_true(anymiss);
			assert_true(listed[idx[j]] < 255);
			listed[idx[j]]++;
		}
		assert_true(encode_list(idx, n, enc) <= room);
		/*
		 * Every node that misses a listed block misses exactly one
		 * and knows every listed block (all inside K_i).
		 */
		for (k = 0; k < nt; k++) {
			m = 0;
			for (j = 0; j < n; j++)
				m += t[k].miss[idx[j]];
			if (m == 0)
				continue;
			assert_int_equal(m, 1);
			assert_true(idx[n - 1] < t[k].kend);
		}
	}
	/* Every (node, missing block) pair lies in some frame. */
	for (k = 0; k < nt; k++)
		for (j = 0; j < nblocks; j++)
			if (t[k].miss[j])
				assert_true(listed[j] >= 1);
	free(listed);
	return (nf);
}

static void
test_property(void **state)
{
	static const size_t	 rooms[] = { 10, 53, 200 };
	struct tnode		*t;
	struct xr_plan		*p;
	uint64_t		 s = 0x5eed0001;
	uint32_t		 nblocks, loss, iter, nt, i;
	uint16_t		 mb;
	size_t			 r, nf, pairs, frames = 0, listed = 0;

	(void)state;
	for (iter = 0; iter < 150; iter++) {
		nt = 1 + rnd_below(&s, 60);
		nblocks = 1 + rnd_below(&s, 5000);
		loss = 5000 + rnd_below(&s, 45001);	/* 0.5 .. 5 % */
		t = calloc(nt, sizeof *t);
		assert_non_null(t);
		p = xr__new(nblocks, 1u << 16);
		pairs = 0;
		for (i = 0; i < nt; i++) {
			/* A third report a short slice: the rest unknown. */
			switch (rnd_below(&s, 3)) {
			case 0:
				mb = (uint16_t)rnd_below(&s, 64);
				break;
			case 1:
				mb = (uint16_t)rnd_below(&s, 2000);
				break;
			default:
				mb = UINT16_MAX;
				break;
			}
			tnode_make(&t[i], nblocks, loss, mb, &s);
			assert_int_equal(xr__add(p, &t[i].st), 0);
			pairs += t[i].nmiss;
		}
		assert_int_equal(xr__npairs(p), pairs);
		for (r = 0; r < sizeof rooms / sizeof rooms[0]; r++) {
			nf = xr__build(p, rooms[r]);
			assert_true(nf <= pairs);
			if (pairs > 0)
				assert_true(nf >= 1);
			check_plan(p, nf, t, nt, nblocks, rooms[r]);
			frames += nf;
			listed += pairs;
		}
		xr__free(p);
		for (i = 0; i < nt; i++)
			tnode_free(&t[i]);
		free(t);
	}
	printf("property: 150 rounds x 3 rooms, %zu frames for %zu pairs\n",
	    frames, listed);
}

/*
 * 30 nodes at 1 % loss, every node describing every block.  A frame
 * repairs at most one block per node, so max |M_i| frames is a floor;
 * resending the union would cost one frame per distinct lost block.
 */
static void
run_efficiency(uint64_t seed, uint32_t nblocks, size_t room)
{
	struct tnode		 t[30];
	struct xr_plan		*p;
	uint64_t		 s = seed;
	uint32_t		 maxm = 0, i, j, uni = 0;
	size_t			 nf, k;
	uint8_t			 n;

	p = xr__new(nblocks, 65536);
	for (i = 0; i < 30; i++) {
		tnode_make(&t[i], nblocks, 10000, UINT16_MAX, &s);
		/* Full knowledge: the slice reaches the last block. */
		assert_int_equal(t[i].kend, nblocks);
		if (t[i].nmiss > maxm)
			maxm = t[i].nmiss;
		assert_int_equal(xr__add(p, &t[i].st), 0);
	}
	for (j = 0; j < nblocks; j++)
		for (i = 0; i < 30; i++)
			if (t[i].miss[j]) {
				uni++;
				break;
			}
	nf = xr__build(p, room);
	check_plan(p, nf, t, 30, nblocks, room);
	k = 0;
	for (i = 0; i < nf; i++) {
		(void)xr__frame(p, i, &n);
		k += n;
	}
	printf("efficiency: %u blocks, room %zu: %zu pairs, union %u, "
	    "max|M_i| %u, %zu frames (%.2f %% of blocks, %.1f blocks/frame, "
	    "%.3f x max|M_i|)\n", nblocks, room, xr__npairs(p), uni, maxm,
	    nf, 100.0 * nf / nblocks, (double)k / nf, (double)nf / maxm);
	assert_true(nf >= maxm);
	assert_true(nf * 10 <= maxm * 12 + 40);
	xr__free(p);
	for (i = 0; i < 30; i++)
		tnode_free(&t[i]);
}

static void
test_efficiency(void **state)
{
	(void)state;
	run_efficiency(0xfeed0001, 24000, 53);
	run_efficiency(0xfeed0002, 24000, 53);
	run_efficiency(0xfeed0003, 11000, 53);
}

/* A status body with the given missing blocks and slice. */
struct sbody {
	uint8_t		 bits[64];
	struct up_status_body st;
};

static const struct up_status_body *
mkst(struct sbody *b, uint32_t first, uint16_t nbits, const uint32_t *miss,
    size_t nmiss)
{
	size_t	 i;

	memset(b, 0, sizeof *b);
	b->st.first_missing = first;
	b->st.nbits = nbits;
	b->st.bits = b->bits;
	for (i = 0; i < nmiss; i++) {
		assert_true(miss[i] >= first && miss[i] - first < nbits);
		b->bits[(miss[i] - first) / 8] |=
		    (uint8_t)(1u << ((miss[i] - first) % 8));
	}
	return (&b->st);
}

static void
test_overflow(void **state)
{
	static const uint32_t	 m1[] = { 2, 4, 6, 8, 10, 12 };
	static const uint32_t	 m2[] = { 3, 5, 7, 9, 11, 13 };
	struct sbody		 b;
	struct xr_plan		*p;
	const uint32_t		*idx;
	uint8_t			 n;

	(void)state;
	p = xr__new(100, 10);
	assert_int_equal(xr__add(p, mkst(&b, 2, 98, m1, 6)), 0);
	assert_int_equal(xr__npairs(p), 6);
	/* 12 pairs > 10: refused whole, and the plan stays refused. */
	assert_int_equal(xr__add(p, mkst(&b, 3, 97, m2, 6)), -1);
	assert_int_equal(xr__npairs(p), 6);
	assert_int_equal(xr__add(p, mkst(&b, 3, 97, m2, 1)), -1);
	assert_int_equal(xr__build(p, 53), 0);

	xr__reset(p);
	assert_int_equal(xr__npairs(p), 0);
	assert_int_equal(xr__add(p, mkst(&b, 3, 97, m2, 6)), 0);
	assert_int_equal(xr__add(p, mkst(&b, 2, 98, m1, 4)), 0);
	assert_int_equal(xr__npairs(p), 10);
	/*
	 * Two nodes, each knowing everything: every frame pairs one block
	 * of each, so 6 frames; m2's node has the most.
	 */
	assert_int_equal(xr__build(p, 53), 6);
	idx = xr__frame(p, 0, &n);
	assert_int_equal(n, 2);
	assert_int_equal(idx[0], 2);
	assert_int_equal(idx[1], 3);
	assert_null(xr__frame(p, 6, &n));
	assert_int_equal(n, 0);
	xr__free(p);
	xr__free(NULL);
}

static void
test_edges(void **state)
{
	static const uint32_t	 a[] = { 3, 7 }, c[] = { 7, 9 }, all[] = { 7 };
	static const uint32_t	 one[] = { 0, 5, 6, 40 };
	static const uint32_t	 five[] = { 5 }, six[] = { 6 };
	static const uint32_t	 ten[] = { 10 }, twenty[] = { 20 };
	struct sbody		 b;
	struct xr_plan		*p;
	const uint32_t		*idx;
	uint8_t			 n;
	size_t			 nf, i;
	uint32_t		 k;
	bool			 seen7 = false;

	(void)state;
	/* Block 7 is missing at every node: it must go alone. */
	p = xr__new(50, 100);
	assert_int_equal(xr__add(p, mkst(&b, 3, 47, a, 2)), 0);
	assert_int_equal(xr__add(p, mkst(&b, 7, 43, c, 2)), 0);
	assert_int_equal(xr__add(p, mkst(&b, 7, 43, all, 1)), 0);
	nf = xr__build(p, 53);
	assert_int_equal(nf, 2);
	for (i = 0; i < nf; i++) {
		idx = xr__frame(p, i, &n);
		if (idx[0] == 7) {
			assert_int_equal(n, 1);
			seen7 = true;
		} else {
			/* 3 and 9 share a frame: each node misses one. */
			assert_int_equal(n, 2);
			assert_int_equal(idx[0], 3);
			assert_int_equal(idx[1], 9);
		}
	}
	assert_true(seen7);
	/* Most-missed first: block 7 opens the first frame. */
	idx = xr__frame(p, 0, &n);
	assert_int_equal(idx[0], 7);

	/* One node: a frame can repair only one of its blocks. */
	xr__reset(p);
	assert_int_equal(xr__add(p, mkst(&b, 0, 50, one, 4)), 0);
	assert_int_equal(xr__build(p, 200), 4);
	for (i = 0; i < 4; i++) {
		idx = xr__frame(p, i, &n);
		assert_int_equal(n, 1);
		assert_int_equal(idx[0], one[i]);
	}

	/* Two nodes missing 5, a third missing 6: one frame serves all. */
	xr__reset(p);
	assert_int_equal(xr__add(p, mkst(&b, 5, 45, five, 1)), 0);
	assert_int_equal(xr__add(p, mkst(&b, 5, 45, five, 1)), 0);
	assert_int_equal(xr__add(p, mkst(&b, 6, 44, six, 1)), 0);
	assert_int_equal(xr__build(p, 53), 1);
	idx = xr__frame(p, 0, &n);
	assert_int_equal(n, 2);
	assert_int_equal(idx[0], 5);
	assert_int_equal(idx[1], 6);
	/* room < 4: not even the first index fits, so no frame. */
	assert_int_equal(xr__build(p, 3), 0);
	/* room 4: only the first index, one block per frame. */
	assert_int_equal(xr__build(p, 4), 2);
	/* Building again gives the same plan. */
	assert_int_equal(xr__build(p, 53), 1);

	/*
	 * Node A knows only [0, 11) (nbits 1), so block 20, which B misses,
	 * is unknown to A: 10 and 20 must not share a frame.
	 */
	xr__reset(p);
	assert_int_equal(xr__add(p, mkst(&b, 10, 1, ten, 1)), 0);
	assert_int_equal(xr__add(p, mkst(&b, 20, 30, twenty, 1)), 0);
	assert_int_equal(xr__build(p, 53), 2);
	idx = xr__frame(p, 0, &n);
	assert_int_equal(n, 1);
	/* The other way round: A knows [0, 50), B only [0, 21). */
	xr__reset(p);
	assert_int_equal(xr__add(p, mkst(&b, 10, 40, ten, 1)), 0);
	assert_int_equal(xr__add(p, mkst(&b, 20, 1, twenty, 1)), 0);
	assert_int_equal(xr__build(p, 53), 1);

	/* 100 nodes missing one block each: UP_XOR_MAX caps a frame. */
	xr__free(p);
	p = xr__new(200, 100);
	for (i = 0; i < 100; i++) {
		k = (uint32_t)(2 * i);
		assert_int_equal(xr__add(p, mkst(&b, k, (uint16_t)(200 - k),
		    &k, 1)), 0);
	}
	assert_int_equal(xr__build(p, 1000), 3);
	idx = xr__frame(p, 0, &n);
	assert_int_equal(n, UP_XOR_MAX);
	assert_int_equal(idx[UP_XOR_MAX - 1], 2 * (UP_XOR_MAX - 1));
	(void)xr__frame(p, 2, &n);
	assert_int_equal(n, 100 - 2 * UP_XOR_MAX);
	xr__free(p);
	p = xr__new(50, 100);

	/*
	 * nbits 0 with first_missing < nblocks.  §4.7 says first_missing is
	 * missing, but up_status_foreach_missing visits nothing for an empty
	 * slice (it walks only the slice's set bits), and the planner matches
	 * it: no pair, no frame.  A complete node (first_missing == nblocks)
	 * adds nothing either, even with a slice.
	 */
	assert_int_equal(xr__add(p, mkst(&b, 12, 0, NULL, 0)), 0);
	(void)mkst(&b, 50, 8, NULL, 0);
	b.bits[0] = 0xff;
	assert_int_equal(xr__add(p, &b.st), 0);
	assert_int_equal(xr__npairs(p), 0);
	assert_int_equal(xr__build(p, 53), 0);
	/* Set bits past nblocks are not pairs. */
	b.bits[0] = 0xff;
	b.st.first_missing = 46;
	b.st.nbits = 8;
	b.st.bits = b.bits;
	assert_int_equal(xr__add(p, &b.st), 0);
	assert_int_equal(xr__npairs(p), 4);
	assert_int_equal(xr__build(p, 53), 4);
	xr__free(p);
}

int
main(void)
{
	const struct CMUnitTest	 tests[] = {
		cmocka_unit_test(test_property),
		cmocka_unit_test(test_efficiency),
		cmocka_unit_test(test_overflow),
		cmocka_unit_test(test_edges),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
