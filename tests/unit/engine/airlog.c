/*
 * airlog.c: the tests' own duty-cycle ledger (see airlog.h).
 */
#include <stdlib.h>
#include <string.h>

#include "airlog.h"

void
airlog_init(struct airlog *a, uint64_t window_us, uint32_t ppm)
{
	memset(a, 0, sizeof(*a));
	a->window = window_us;
	a->budget = window_us * ppm / 1000000;
}

void
airlog_free(struct airlog *a)
{
	free(a->f);
	memset(a, 0, sizeof(*a));
}

void
airlog_add(struct airlog *a, uint64_t start, uint32_t air)
{
	uint64_t	 e = start + air, from, x;

	if (a->n == a->cap) {
		a->cap = a->cap != 0 ? a->cap * 2 : 1024;
		a->f = realloc(a->f, a->cap * sizeof(*a->f));
	}
	a->f[a->n].start = start;
	a->f[a->n].air = air;
	a->n++;
	a->total += air;
	/* The window (e - W, e]: frames that end inside it, clipped. */
	a->sum += air;
	from = e > a->window ? e - a->window : 0;
	while (a->lo < a->n - 1 && a->f[a->lo].start + a->f[a->lo].air <= from)
		a->sum -= a->f[a->lo++].air;
	x = a->sum;
	if (a->f[a->lo].start < from)
		x -= from - a->f[a->lo].start;
	if (x > a->worst)
		a->worst = x;
	if (x > a->budget)
		a->over = true;
}

uint64_t
airlog_max(const struct airlog *a)
{
	uint64_t	 sum = 0, best = a->worst, b, e, x;
	size_t		 j, hi = 0;

	/* Windows [b, b + W) that begin where a frame begins. */
	for (j = 0; j < a->n; j++) {
		b = a->f[j].start;
		while (hi < a->n && a->f[hi].start < b + a->window)
			sum += a->f[hi++].air;
		x = sum;
		e = a->f[hi - 1].start + a->f[hi - 1].air;
		if (e > b + a->window)
			x -= e - (b + a->window);
		if (x > best)
			best = x;
		sum -= a->f[j].air;
	}
	return (best);
}
