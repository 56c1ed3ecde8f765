/*
 * test_eng_parity.c: the first parity batch of a slow link (the N99 rule
 * of research/transports.md §1.2, engine/parity.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>

#include "engine_internal.h"

/* The bound itself, in doubles, as §1.2 writes it. */
static double
n99(double k, double p)
{
	return ((k + 7 + 2.33 * sqrt(k * p / (1 - p))) / (1 - p));
}

static void
test_n99_values(void **state)
{
	(void)state;
	/* Nothing measured: no parity before a node asks for it. */
	assert_int_equal(eng__fec_rows_n99(64, 0), 0);
	/* k = 64 at 10 %: N99 = 85.8 frames, 22 rows. */
	assert_int_equal(eng__fec_rows_n99(64, 100000), 22);
	/* The e2e package: 94 blocks of 218 B at 10 %, N99 = 120.6. */
	assert_int_equal(eng__fec_rows_n99(94, 100000), 27);
	/* 5 %: N99(64) = 79.2. */
	assert_int_equal(eng__fec_rows_n99(64, 50000), 16);
	/* Half the frames lost or worse: a whole group's worth, no more. */
	assert_int_equal(eng__fec_rows_n99(64, 500000), 64);
	assert_int_equal(eng__fec_rows_n99(10, 400000), 10);
	assert_int_equal(eng__fec_rows_n99(0, 100000), 0);
}

/* Never below the bound, never a whole row above it, monotonic in p. */
static void
test_n99_bound(void **state)
{
	uint32_t	 ppm;
	uint16_t	 k, r, last;
	double		 b;

	(void)state;
	for (k = 2; k <= 128; k++) {
		last = 0;
		for (ppm = 1000; ppm < 400000; ppm += 7919) {
			r = eng__fec_rows_n99(k, ppm);
			b = n99(k, ppm / 1e6) - k;
			if (b < k) {
				assert_true(r >= b - 1e-9);
				assert_true(r < b + 1);
			} else
				assert_int_equal(r, k);
			assert_true(r >= last);
			last = r;
		}
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_n99_values),
		cmocka_unit_test(test_n99_bound),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
