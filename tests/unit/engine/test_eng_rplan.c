/*
 * test_eng_rplan.c: the repair planner of a polled bus alone (rplan.c,
 * eng__plan_choose): which blocks go to every node again and which to
 * single nodes, from the nodes' needed sets and the line times of
 * research/transports.md §3.6 for Modbus RTU at 115,200 bit/s, 8E1
 * (c = 11 bits, t3.5 = 1.75 ms), a 246-byte frame (FC 0x10 request of
 * 255 characters, confirmation of 8):
 *
 *   to all  bc = 255·11/115200 + t3.5        = 26.10 ms (+ the gap)
 *   to one  uc = (255 + 8)·11/115200 + 2·t3.5 = 28.61 ms
 *   ask one    = STATUS_REQ, its confirmation, a poll and its reply,
 *                each with a t3.5: about 16 ms
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

#define NB	100		/* blocks in the package */
#define NODES	16

static uint8_t		 bufs[NODES][(NB + 7) / 8];
static struct up_bitmap	 need[NODES];
static const struct up_bitmap *needs[NODES];
static uint8_t		 outbuf[(NB + 7) / 8];
static struct up_bitmap	 out;

static void
reset(void)
{
	int	 i;

	for (i = 0; i < NODES; i++) {
		up_bitmap_init(&need[i], bufs[i], NB);
		up_bitmap_clear_all(&need[i]);
		needs[i] = &need[i];
	}
	up_bitmap_init(&out, outbuf, NB);
	up_bitmap_clear_all(&out);
}

/* §3.6 at 115,200 bit/s, 8E1, with gap_us after a broadcast. */
static void
rtu_costs(struct eng_plan_cost *c, uint32_t gap_us)
{
	uint32_t	 t35 = 1750;

	c->bcast_us = 255 * 11 * 1000000ULL / 115200 + t35 + gap_us;
	c->one_us = (255 + 8) * 11 * 1000000ULL / 115200 + 2 * t35;
	/* The last block is as long here. */
	c->bcast_last_us = c->bcast_us;
	c->one_last_us = c->one_us;
	/* STATUS_REQ of 22 bytes (31 characters) + 8, a poll 15 + 41. */
	c->ask_us = (31 + 8 + 15 + 41) * 11 * 1000000ULL / 115200 + 4 * t35;
}

static uint32_t
choose(int n, uint32_t gap_us, int64_t *saved)
{
	struct eng_plan_cost c;

	rtu_costs(&c, gap_us);
	return (eng__plan_choose(needs, (size_t)n, NB, &c, &out, saved));
}

/* A block every node misses goes to all again. */
static void
test_shared_block(void **state)
{
	int64_t		 saved;
	int		 i;

	reset();
	for (i = 0; i < NODES; i++)
		up_bitmap_set(&need[i], 7);
	assert_int_equal(choose(NODES, 0, &saved), 1);
	assert_true(up_bitmap_get(&out, 7));
	/* 16 writes of 28.6 ms against one of 26.1 ms. */
	assert_true(saved > 400000 && saved < 460000);
}

/*
 * A node that missed the pass altogether: its 100 blocks to all again
 * cost 2.5 ms less each than written to it alone (seen on a loaded
 * machine: a whole copy was written to a starved node).
 */
static void
test_missed_pass(void **state)
{
	int64_t		 saved;
	uint32_t	 b;

	reset();
	for (b = 0; b < NB; b++)
		up_bitmap_set(&need[3], b);
	up_bitmap_set(&need[5], 40);
	assert_int_equal(choose(NODES, 0, &saved), NB);
	assert_true(saved > 200000);
	assert_int_equal(up_bitmap_count(&out), NB);
}

/*
 * With no broadcast gap even a block one node alone misses costs less
 * to all (one silence and 8 characters less); a gap for slow flash
 * (broadcast_gap_us, 5 ms here: bc 31.1 ms > uc 28.6 ms) sends a block
 * to all only once two nodes miss it, and one node's blocks, however
 * many, to that node alone.
 */
static void
test_gap(void **state)
{
	int64_t		 saved;
	uint32_t	 b;

	reset();
	up_bitmap_set(&need[0], 9);
	assert_int_equal(choose(NODES, 0, &saved), 1);
	assert_true(saved > 2000 && saved < 3000);

	reset();
	up_bitmap_set(&need[0], 9);
	assert_int_equal(choose(NODES, 5000, &saved), 0);
	assert_int_equal(saved, 0);
	assert_int_equal(up_bitmap_count(&out), 0);

	reset();
	for (b = 0; b < NB; b++)
		up_bitmap_set(&need[2], b);
	assert_int_equal(choose(NODES, 5000, &saved), 0);

	/* Two nodes miss block 3 (57.2 > 31.1 ms): that one goes to all. */
	reset();
	up_bitmap_set(&need[1], 3);
	up_bitmap_set(&need[2], 3);
	up_bitmap_set(&need[4], 60);
	assert_int_equal(choose(NODES, 5000, &saved), 1);
	assert_true(up_bitmap_get(&out, 3));
	assert_false(up_bitmap_get(&out, 60));
}

/*
 * A node with blocks both in the set and out of it is asked twice
 * (after the pass to all and after its own writes): that ask is
 * priced.  Here two nodes share block 3, and each also misses its own
 * block; with a 5 ms gap the shared block saves 26.1 ms, less than the
 * two extra asks of about 16 ms each: everything goes to single nodes.
 */
static void
test_split_nodes(void **state)
{
	int64_t		 saved;

	reset();
	up_bitmap_set(&need[1], 3);
	up_bitmap_set(&need[1], 20);
	up_bitmap_set(&need[2], 3);
	up_bitmap_set(&need[2], 21);
	assert_int_equal(choose(NODES, 5000, &saved), 0);
	/* Three nodes sharing it: 85.8 - 31.1 - 3 · 16 > 0. */
	up_bitmap_set(&need[6], 3);
	up_bitmap_set(&need[6], 22);
	assert_int_equal(choose(NODES, 5000, &saved), 1);
	assert_true(up_bitmap_get(&out, 3));
}

/* Nothing missing, nobody asking: nothing to plan. */
static void
test_nothing(void **state)
{
	int64_t		 saved;

	reset();
	assert_int_equal(choose(NODES, 0, &saved), 0);
	assert_int_equal(choose(0, 0, &saved), 0);
	assert_int_equal(saved, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_shared_block),
		cmocka_unit_test(test_missed_pass),
		cmocka_unit_test(test_gap),
		cmocka_unit_test(test_split_nodes),
		cmocka_unit_test(test_nothing),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
