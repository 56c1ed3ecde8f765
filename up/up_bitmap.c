/*
 * up_bitmap.c: block bitmaps and the status slices built from them.
 *
 * Bit i lives in byte i / 8 at bit position i % 8 (LSB first), the same
 * order on the wire (docs/up-protocol.md §4.7) and in a node's persisted
 * state, so a slice can be copied without reshuffling.  Indexes at or
 * past nbits are ignored by the setters and read as clear.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "up.h"

size_t
up_bitmap_bytes(uint32_t nbits)
{
	return (((size_t)nbits + 7) / 8);
}

void
up_bitmap_init(struct up_bitmap *bm, uint8_t *bits, uint32_t nbits)
{
	bm->bits = bits;
	bm->nbits = bits != NULL ? nbits : 0;
}

void
up_bitmap_clear_all(struct up_bitmap *bm)
{
	if (bm->nbits > 0)
		memset(bm->bits, 0, up_bitmap_bytes(bm->nbits));
}

void
up_bitmap_set(struct up_bitmap *bm, uint32_t i)
{
	if (i < bm->nbits)
		bm->bits[i / 8] |= (uint8_t)(1u << (i % 8));
}

void
up_bitmap_clear(struct up_bitmap *bm, uint32_t i)
{
	if (i < bm->nbits)
		bm->bits[i / 8] &= (uint8_t)~(1u << (i % 8));
}

bool
up_bitmap_get(const struct up_bitmap *bm, uint32_t i)
{
	if (i >= bm->nbits)
		return (false);
	return ((bm->bits[i / 8] >> (i % 8)) & 1);
}

static unsigned int
up_popcount8(uint8_t b)
{
	unsigned int	 n = 0;

	for (; b != 0; b &= (uint8_t)(b - 1))
		n++;
	return (n);
}

uint32_t
up_bitmap_count(const struct up_bitmap *bm)
{
	uint32_t	 full = bm->nbits / 8, i, n = 0;
	unsigned int	 rest = bm->nbits % 8;

	for (i = 0; i < full; i++)
		n += up_popcount8(bm->bits[i]);
	/* Bits past nbits in the last byte are padding, not blocks. */
	if (rest != 0)
		n += up_popcount8((uint8_t)(bm->bits[full] &
		    ((1u << rest) - 1)));
	return (n);
}

/*
 * First index >= from whose bit equals `want', or nbits.  Whole bytes
 * that cannot match are skipped, so a mostly complete bitmap of a large
 * image is scanned at one compare per 8 blocks.
 */
static uint32_t
up_bitmap_next(const struct up_bitmap *bm, uint32_t from, bool want)
{
	uint8_t		 skip = want ? 0x00 : 0xff;
	uint32_t	 i = from;

	while (i < bm->nbits) {
		if (i % 8 == 0 && bm->nbits - i >= 8 &&
		    bm->bits[i / 8] == skip) {
			i += 8;
			continue;
		}
		if (up_bitmap_get(bm, i) == want)
			return (i);
		i++;
	}
	return (bm->nbits);
}

uint32_t
up_bitmap_next_clear(const struct up_bitmap *bm, uint32_t from)
{
	return (up_bitmap_next(bm, from, false));
}

uint32_t
up_bitmap_next_set(const struct up_bitmap *bm, uint32_t from)
{
	return (up_bitmap_next(bm, from, true));
}

void
up_status_from_bitmap(const struct up_bitmap *held, uint8_t *out,
    uint16_t max_bits, struct up_status_body *st)
{
	uint32_t	 first, n, i;

	first = up_bitmap_next_clear(held, 0);
	n = held->nbits - first;
	if (n > max_bits)
		n = max_bits;
	/* The whole body: a bitmap slice, none of the compact fields. */
	memset(st, 0, sizeof(*st));
	st->form = UP_SB_BITMAP;
	st->held = up_bitmap_count(held);
	st->first_missing = first;
	st->nbits = (uint16_t)n;
	st->bits = out;
	/* The slice inverts the sense: set = missing (§4.7). */
	if (n > 0)
		memset(out, 0, up_bitmap_bytes(n));
	for (i = 0; i < n; i++)
		if (!up_bitmap_get(held, first + i))
			out[i / 8] |= (uint8_t)(1u << (i % 8));
}

struct up_bm_each {
	void		(*fn)(void *, uint32_t);
	void		*arg;
};

static void
up_bm_each_run(void *arg, uint32_t start, uint32_t len)
{
	struct up_bm_each *e = arg;
	uint32_t	 i;

	for (i = 0; i < len; i++)
		e->fn(e->arg, start + i);
}

void
up_status_foreach_missing(const struct up_status_body *st,
    uint32_t nblocks, void (*fn)(void *, uint32_t), void *arg)
{
	struct up_bm_each each;
	uint32_t	 i, idx;

	/* A run list names runs; a count list names no block (§11.7). */
	if (st->form == UP_SB_RUNS) {
		each.fn = fn;
		each.arg = arg;
		(void)up_status_foreach_run(st, nblocks, up_bm_each_run,
		    &each);
		return;
	}
	if (st->form != UP_SB_BITMAP || st->bits == NULL)
		return;
	for (i = 0; i < st->nbits; i++) {
		idx = st->first_missing + i;
		/* Past the image, or wrapped around 2^32: nothing more. */
		if (idx >= nblocks || idx < st->first_missing)
			break;
		if ((st->bits[i / 8] >> (i % 8)) & 1)
			fn(arg, idx);
	}
}
