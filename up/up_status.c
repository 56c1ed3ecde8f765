/*
 * up_status.c: the compact status bodies (docs/up-protocol.md §11.7).
 *
 * A node says what it misses in one of three forms: the bitmap slice
 * of §4.7, a run list (runs of missing blocks, varint-coded, which
 * covers a whole 300 MB package in one frame when the losses allow) or
 * a count list (how many parity rows each group still needs: the few
 * bytes a LoRa uplink can afford).  This file holds the encodings, the
 * node's builders (cut to the node's uplink MTU), and the gateway's
 * side: walkers that never leave the package and an aggregator that
 * folds a status round into the union of missing blocks and the rows
 * each parity group needs.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "up.h"
#include "up_internal.h"

/* One past the last u32 block index: runs may end here, not beyond. */
#define UP_ST_END		((uint64_t)1 << 32)

/* ------------------------------------------------------------------ */
/* Encodings                                                          */

/*
 * Reads one run of a run list: returns its first block and length, and
 * advances *pos to its end.  `first' says whether it is the list's
 * first run (whose gap must be 0, §11.7); the rest need a gap >= 1.
 */
static void
up_st_rd_run(struct up_rd *rd, bool first, uint64_t *pos, uint64_t *start,
    uint64_t *len)
{
	uint32_t	 g2, extra = 0;

	g2 = up__rd_varint(rd);
	if ((g2 & 1) != 0)
		extra = up__rd_varint(rd);
	if (rd->err != UP_OK)
		return;
	if ((first && (g2 >> 1) != 0) || (!first && (g2 >> 1) == 0)) {
		rd->err = UP_ERANGE;
		return;
	}
	*start = *pos + (g2 >> 1);
	*len = (g2 & 1) != 0 ? (uint64_t)extra + 2 : 1;
	if (*start + *len > UP_ST_END) {
		rd->err = UP_ERANGE;
		return;
	}
	*pos = *start + *len;
}

/* One entry of a count list; *g is the previous group + 1 (0 first). */
static void
up_st_rd_need(struct up_rd *rd, uint64_t *g, uint64_t *group,
    uint32_t *need)
{
	uint32_t	 gap;

	gap = up__rd_varint(rd);
	*need = up__rd_varint(rd);
	if (rd->err != UP_OK)
		return;
	*group = *g + gap;
	if (*group >= UP_ST_END || *need == 0) {
		rd->err = UP_ERANGE;
		return;
	}
	*g = *group + 1;
}

void
up__rd_status_list(struct up_rd *rd, uint8_t form, struct up_status_body *st)
{
	uint64_t	 pos, start, len, g, group;
	uint32_t	 v, j, need;
	size_t		 from;

	memset(st, 0, sizeof(*st));
	st->form = form;
	if (form == UP_SB_RUNS) {
		st->held = up__rd_varint(rd);
		st->first_missing = up__rd_varint(rd);
	} else
		st->missing = up__rd_varint(rd);
	v = up__rd_varint(rd);
	if (rd->err != UP_OK)
		return;
	st->nent = v >> 1;
	st->cut = (v & 1) != 0;
	/* Each entry takes a byte (a run) or two (a group) at least:
	 * a count beyond that is a short body, found before the loop. */
	if ((uint64_t)st->nent * (form == UP_SB_RUNS ? 1 : 2) >
	    up_rd_left(rd)) {
		rd->err = UP_ESHORT;
		return;
	}
	from = rd->off;
	pos = st->first_missing;
	g = 0;
	for (j = 0; j < st->nent && rd->err == UP_OK; j++) {
		if (form == UP_SB_RUNS)
			up_st_rd_run(rd, j == 0, &pos, &start, &len);
		else
			up_st_rd_need(rd, &g, &group, &need);
	}
	if (rd->err != UP_OK)
		return;
	st->list = rd->p + from;
	st->list_len = (uint16_t)(rd->off - from);
}

/*
 * The entries of a run or count list are what nent says, exactly
 * (§11.7): the encoder's check, so it never writes a list that a
 * decoder rejects.
 */
int
up__check_status_list(const struct up_status_body *st)
{
	struct up_rd	 rd;
	uint64_t	 pos = st->first_missing, g = 0, a, b;
	uint32_t	 j, need;

	if (st->list_len > 0 && st->list == NULL)
		return (UP_EINVAL);
	if (st->nent > 0x7fffffffu)
		return (UP_ERANGE);
	up_rd_init(&rd, st->list, st->list_len);
	for (j = 0; j < st->nent && up_rd_err(&rd) == UP_OK; j++) {
		if (st->form == UP_SB_RUNS)
			up_st_rd_run(&rd, j == 0, &pos, &a, &b);
		else
			up_st_rd_need(&rd, &g, &a, &need);
	}
	if (up_rd_err(&rd) != UP_OK)
		return (up_rd_err(&rd));
	return (up_rd_left(&rd) == 0 ? UP_OK : UP_ELEN);
}

void
up__wr_status_list(struct up_wr *wr, const struct up_status_body *st)
{
	if (st->form == UP_SB_RUNS) {
		up__wr_varint(wr, st->held);
		up__wr_varint(wr, st->first_missing);
	} else
		up__wr_varint(wr, st->missing);
	up__wr_varint(wr, st->nent * 2 + (st->cut ? 1 : 0));
	up_wr_bytes(wr, st->list, st->list_len);
}

size_t
up_status_body_len(const struct up_status_body *st)
{
	size_t		 n;

	switch (st->form) {
	case UP_SB_BITMAP:
		return (10 + up_bitmap_bytes(st->nbits));
	case UP_SB_RUNS:
		n = up__varint_len(st->held) +
		    up__varint_len(st->first_missing);
		break;
	default:
		n = up__varint_len(st->missing);
		break;
	}
	return (n + up__varint_len(st->nent * 2 + (st->cut ? 1 : 0)) +
	    st->list_len);
}

/* ------------------------------------------------------------------ */
/* Node side: builders                                                */

/* Appends varint v to out[*len] if it fits cap; false if not. */
static bool
up_st_put(uint8_t *out, size_t cap, size_t *len, uint32_t v)
{
	struct up_wr	 wr;

	up_wr_init(&wr, out + *len, cap - *len);
	up__wr_varint(&wr, v);
	if (up_wr_err(&wr) != UP_OK)
		return (false);
	*len += wr.off;
	return (true);
}

int
up_status_runs(const struct up_bitmap *held, uint8_t *out, size_t cap,
    size_t budget, struct up_status_body *st)
{
	uint32_t	 nblocks = held->nbits, s, e, pos, gap, len;
	size_t		 hdr, enc, list = 0;

	memset(st, 0, sizeof(*st));
	st->form = UP_SB_RUNS;
	st->held = up_bitmap_count(held);
	st->first_missing = up_bitmap_next_clear(held, 0);
	st->list = out;
	hdr = up__varint_len(st->held) + up__varint_len(st->first_missing);
	/* Cut: a body that could not be built must never read as "all
	 * the rest is held". */
	if (hdr + 1 > budget) {
		st->cut = true;
		return (UP_ENOSPC);
	}
	/* From the lowest missing block up, while the next run fits. */
	pos = st->first_missing;
	s = st->first_missing;
	while (s < nblocks) {
		e = up_bitmap_next_set(held, s);
		gap = s - pos;
		len = e - s;
		/* 2 * gap + long is a 32-bit varint: gaps below 2^31. */
		enc = up__varint_len((gap & 0x7fffffffu) * 2 + (len > 1)) +
		    (len > 1 ? up__varint_len(len - 2) : 0);
		if (gap > 0x7fffffffu || list + enc > cap ||
		    hdr + up__varint_len((st->nent + 1) * 2 + 1) + list +
		    enc > budget) {
			st->cut = true;
			break;
		}
		(void)up_st_put(out, cap, &list, gap * 2 + (len > 1));
		if (len > 1)
			(void)up_st_put(out, cap, &list, len - 2);
		st->nent++;
		pos = e;
		if (e >= nblocks)
			break;
		s = up_bitmap_next_clear(held, e);
	}
	st->list_len = (uint16_t)list;
	return ((int)up_status_body_len(st));
}

int
up_status_counts(uint32_t missing, uint32_t ngroups,
    uint32_t (*need)(void *, uint32_t), void *arg, uint8_t *out,
    size_t cap, size_t budget, struct up_status_body *st)
{
	uint32_t	 g, n, next = 0;
	size_t		 hdr, enc, list = 0;

	memset(st, 0, sizeof(*st));
	st->form = UP_SB_COUNTS;
	st->missing = missing;
	st->list = out;
	hdr = up__varint_len(missing);
	if (hdr + 1 > budget) {
		st->cut = true;
		return (UP_ENOSPC);
	}
	for (g = 0; g < ngroups && missing > 0; g++) {
		if ((n = need(arg, g)) == 0)
			continue;
		enc = up__varint_len(g - next) + up__varint_len(n);
		if (list + enc > cap || hdr + up__varint_len((st->nent + 1) *
		    2 + 1) + list + enc > budget) {
			st->cut = true;
			break;
		}
		(void)up_st_put(out, cap, &list, g - next);
		(void)up_st_put(out, cap, &list, n);
		st->nent++;
		next = g + 1;
	}
	st->list_len = (uint16_t)list;
	return ((int)up_status_body_len(st));
}

/* ------------------------------------------------------------------ */
/* Gateway side: walking a body                                       */

/*
 * The runs of a body, in order, as [start, start + len).  A bitmap
 * slice's runs are read off its bits.  Stops at the first run that
 * starts at or past `limit' (returned as such: the caller decides).
 * fn == NULL only walks.  Returns UP_OK or the encoding's error.
 */
static int
up_st_runs(const struct up_status_body *st,
    int (*fn)(void *, uint64_t, uint64_t), void *arg)
{
	struct up_rd	 rd;
	uint64_t	 pos, start = 0, len = 0, i, n;
	uint32_t	 j;
	int		 e;

	if (st->form == UP_SB_BITMAP) {
		if (st->bits == NULL)
			return (UP_OK);
		for (i = 0; i < st->nbits; i = n) {
			if (((st->bits[i / 8] >> (i % 8)) & 1) == 0) {
				n = i + 1;
				continue;
			}
			for (n = i + 1; n < st->nbits &&
			    ((st->bits[n / 8] >> (n % 8)) & 1) != 0; n++)
				;
			start = (uint64_t)st->first_missing + i;
			if (start + (n - i) > UP_ST_END)
				return (UP_ERANGE);
			if (fn != NULL && (e = fn(arg, start, n - i)) != UP_OK)
				return (e);
		}
		return (UP_OK);
	}
	if (st->form != UP_SB_RUNS)
		return (UP_OK);
	up_rd_init(&rd, st->list, st->list_len);
	pos = st->first_missing;
	for (j = 0; j < st->nent; j++) {
		up_st_rd_run(&rd, j == 0, &pos, &start, &len);
		if ((e = up_rd_err(&rd)) != UP_OK)
			return (e);
		if (fn != NULL && (e = fn(arg, start, len)) != UP_OK)
			return (e);
	}
	return (UP_OK);
}

static int
up_st_needs(const struct up_status_body *st,
    int (*fn)(void *, uint64_t, uint32_t), void *arg)
{
	struct up_rd	 rd;
	uint64_t	 g = 0, group = 0;
	uint32_t	 j, need = 0;
	int		 e;

	if (st->form != UP_SB_COUNTS)
		return (UP_OK);
	up_rd_init(&rd, st->list, st->list_len);
	for (j = 0; j < st->nent; j++) {
		up_st_rd_need(&rd, &g, &group, &need);
		if ((e = up_rd_err(&rd)) != UP_OK)
			return (e);
		if (fn != NULL && (e = fn(arg, group, need)) != UP_OK)
			return (e);
	}
	return (UP_OK);
}

struct up_st_lim {
	uint64_t	 limit;
	uint64_t	 last;		/* end of the last run / group */
};

static int
up_st_in_runs(void *arg, uint64_t start, uint64_t len)
{
	struct up_st_lim *l = arg;

	l->last = start + len;
	return (start + len > l->limit ? UP_ERANGE : UP_OK);
}

static int
up_st_in_groups(void *arg, uint64_t group, uint32_t need)
{
	struct up_st_lim *l = arg;

	(void)need;
	l->last = group + 1;
	return (group >= l->limit ? UP_ERANGE : UP_OK);
}

int
up_status_check(const struct up_status_body *st, uint32_t nblocks,
    uint32_t ngroups)
{
	struct up_st_lim lim;

	if (st == NULL)
		return (UP_EINVAL);
	switch (st->form) {
	case UP_SB_BITMAP:
	case UP_SB_RUNS:
		if (st->held > nblocks || st->first_missing > nblocks)
			return (UP_ERANGE);
		/* Runs must stay inside the package; a bitmap slice may
		 * have padding bits past it, which §2.5 ignores. */
		if (st->form == UP_SB_BITMAP)
			return (UP_OK);
		if (st->first_missing == nblocks && st->nent > 0)
			return (UP_ERANGE);
		lim.limit = nblocks;
		return (up_st_runs(st, up_st_in_runs, &lim));
	case UP_SB_COUNTS:
		if (st->missing > nblocks)
			return (UP_ERANGE);
		lim.limit = ngroups > 0 ? ngroups : 1;
		return (up_st_needs(st, up_st_in_groups, &lim));
	default:
		return (UP_ERANGE);
	}
}

struct up_st_walk {
	uint32_t	 limit;
	void		(*fn)(void *, uint32_t, uint32_t);
	void		*arg;
};

static int
up_st_walk_run(void *arg, uint64_t start, uint64_t len)
{
	struct up_st_walk *w = arg;

	if (start >= w->limit)
		return (UP_ERANGE);
	if (start + len > w->limit) {
		w->fn(w->arg, (uint32_t)start, (uint32_t)(w->limit - start));
		return (UP_ERANGE);
	}
	w->fn(w->arg, (uint32_t)start, (uint32_t)len);
	return (UP_OK);
}

static int
up_st_walk_need(void *arg, uint64_t group, uint32_t need)
{
	struct up_st_walk *w = arg;

	if (group >= w->limit)
		return (UP_ERANGE);
	w->fn(w->arg, (uint32_t)group, need);
	return (UP_OK);
}

int
up_status_foreach_run(const struct up_status_body *st, uint32_t nblocks,
    void (*fn)(void *, uint32_t, uint32_t), void *arg)
{
	struct up_st_walk w;
	int		 e;

	w.limit = nblocks;
	w.fn = fn;
	w.arg = arg;
	e = up_st_runs(st, up_st_walk_run, &w);
	/* A bitmap slice's padding past the package is not an error. */
	if (e == UP_ERANGE && st->form == UP_SB_BITMAP)
		return (UP_OK);
	return (e);
}

int
up_status_foreach_need(const struct up_status_body *st, uint32_t ngroups,
    void (*fn)(void *, uint32_t, uint32_t), void *arg)
{
	struct up_st_walk w;

	w.limit = ngroups > 0 ? ngroups : 1;
	w.fn = fn;
	w.arg = arg;
	return (up_st_needs(st, up_st_walk_need, &w));
}

uint32_t
up_status_described(const struct up_status_body *st, uint32_t nblocks,
    uint32_t ngroups)
{
	struct up_st_lim lim;
	uint64_t	 end;

	if (ngroups == 0)
		ngroups = 1;
	switch (st->form) {
	case UP_SB_BITMAP:
		if (st->first_missing >= nblocks)
			return (nblocks);
		end = (uint64_t)st->first_missing + st->nbits;
		return (end < nblocks ? (uint32_t)end : nblocks);
	case UP_SB_RUNS:
		if (!st->cut || st->first_missing >= nblocks)
			return (nblocks);
		lim.limit = UP_ST_END;
		lim.last = st->first_missing;
		(void)up_st_runs(st, up_st_in_runs, &lim);
		return (lim.last < nblocks ? (uint32_t)lim.last : nblocks);
	case UP_SB_COUNTS:
		if (!st->cut)
			return (ngroups);
		lim.limit = UP_ST_END;
		lim.last = 0;
		(void)up_st_needs(st, up_st_in_groups, &lim);
		return (lim.last < ngroups ? (uint32_t)lim.last : ngroups);
	default:
		return (0);
	}
}

/* ------------------------------------------------------------------ */
/* Gateway side: the aggregate of a status round                      */

int
up_status_agg_init(struct up_status_agg *a, uint32_t nblocks, uint16_t k,
    uint8_t *bits, size_t bits_len, uint8_t *need, size_t need_len)
{
	uint32_t	 ng;

	if (a == NULL || bits == NULL || need == NULL)
		return (UP_EINVAL);
	ng = k != 0 ? up_fec_ngroups(nblocks, k) : 1;
	if (bits_len < up_bitmap_bytes(nblocks) || need_len < ng)
		return (UP_EINVAL);
	memset(a, 0, sizeof(*a));
	a->nblocks = nblocks;
	a->k = k;
	a->ngroups = ng;
	up_bitmap_init(&a->missing, bits, nblocks);
	up_bitmap_clear_all(&a->missing);
	a->need = need;
	memset(need, 0, ng);
	return (UP_OK);
}

/* Ends the running group of the body being added. */
static void
up_agg_flush(struct up_status_agg *a)
{
	uint32_t	 n = a->g_n > 255 ? 255 : a->g_n;

	if (a->g_n > 0 && n > a->need[a->g_cur])
		a->need[a->g_cur] = (uint8_t)n;
	a->g_n = 0;
}

static void
up_agg_run(void *arg, uint32_t start, uint32_t len)
{
	struct up_status_agg *a = arg;
	uint32_t	 i, g, end;

	for (i = 0; i < len; i++)
		up_bitmap_set(&a->missing, start + i);
	/* Count the run into its groups (§4.6), in block order. */
	while (len > 0) {
		g = a->k != 0 ? start / a->k : 0;
		end = a->k != 0 ? (g + 1) * a->k : a->nblocks;
		if (end > a->nblocks || end < start)
			end = a->nblocks;
		if (g != a->g_cur)
			up_agg_flush(a);
		a->g_cur = g;
		i = end - start < len ? end - start : len;
		a->g_n += i;
		start += i;
		len -= i;
	}
}

static void
up_agg_need(void *arg, uint32_t group, uint32_t need)
{
	struct up_status_agg *a = arg;

	if (need > 255)
		need = 255;
	if (need > a->need[group])
		a->need[group] = (uint8_t)need;
}

int
up_status_agg_add(struct up_status_agg *a, const struct up_status_body *st)
{
	if (a == NULL || st == NULL)
		return (UP_EINVAL);
	/* Nothing is applied from a body that does not check whole. */
	if (up_status_check(st, a->nblocks, a->ngroups) != UP_OK)
		return (UP_ERANGE);
	a->bodies++;
	if (up_status_described(st, a->nblocks, a->ngroups) <
	    (st->form == UP_SB_COUNTS ? a->ngroups : a->nblocks))
		a->cut++;
	if (st->form == UP_SB_COUNTS) {
		a->counts++;
		if (st->missing == 0)
			a->complete++;
		(void)up_status_foreach_need(st, a->ngroups, up_agg_need, a);
		return (UP_OK);
	}
	if (st->first_missing >= a->nblocks)
		a->complete++;
	a->g_cur = 0;
	a->g_n = 0;
	(void)up_status_foreach_run(st, a->nblocks, up_agg_run, a);
	up_agg_flush(a);
	return (UP_OK);
}
