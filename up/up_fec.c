/*
 * up_fec.c: the parity code of LoRaWAN TS004 (Fragmented Data Block
 * Transport v1.0.0 §7-8, v2.0.0 Appendix A), applied per group of k
 * blocks (docs/up-protocol.md §4.6).
 *
 * The code is systematic: the blocks themselves are sent first (DATA),
 * then parity rows, each the XOR of a pseudo-random half of the group's
 * blocks chosen by matrix_line() (TS004 A.1, a sparse random parity
 * check code after Gallager).  Rows are defined for any row number, so
 * the gateway can keep producing fresh rows ("fountain"), and one row
 * repairs a different loss at every node.
 *
 * The decoder follows TS004 A.2 (keep a triangular binary matrix over
 * the lost blocks, XOR data along) in Gauss-Jordan form: every stored
 * row has a pivot among the missing blocks and no other stored row has
 * that bit, so a row whose vector is its pivot alone is a recovered
 * block, handed out at once.  Everything is XOR; no allocation.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "up.h"

/* ------------------------------------------------------------------ */
/* The row generator (TS004 Appendix A.1)                             */

uint32_t
up_fec_prbs23(uint32_t x)
{
	uint32_t	 b0, b1;

	/*
	 * TS004 A.1: b0 = x & 1, b1 = (x & 32) / 32, x = floor(x / 2) +
	 * (b0 ^ b1) * 2^22.  The spec adds, it does not OR: for row
	 * numbers above 8380 the seed 1 + 1001 * row exceeds 23 bits and
	 * the two differ.
	 */
	b0 = x & 1;
	b1 = (x >> 5) & 1;
	return ((x >> 1) + ((b0 ^ b1) << 22));
}

static bool
fec_pow2(uint32_t m)
{
	return (m != 0 && (m & (m - 1)) == 0);
}

int
up_fec_matrix_line(uint32_t row, uint32_t m, uint8_t *bits, size_t cap)
{
	uint32_t	 x, mm, r, i, n = 0;

	if (row < 1 || row > UP_FEC_ROW_MAX || m < 1 || m > 65535 ||
	    bits == NULL)
		return (UP_EINVAL);
	if (cap < (m + 7) / 8)
		return (UP_ENOSPC);
	memset(bits, 0, (m + 7) / 8);
	/* The seed depends only on the row number (TS004 A.1). */
	x = 1 + 1001 * row;
	/* A power of two would give periodic patterns: use m + 1. */
	mm = fec_pow2(m) ? m + 1 : m;
	for (i = 0; i < m / 2; i++) {
		r = 1u << 16;
		while (r >= m) {
			x = up_fec_prbs23(x);
			r = x % mm;
		}
		/* Draws may repeat: the row has at most m / 2 ones. */
		if ((bits[r / 8] & (1u << (r % 8))) == 0) {
			bits[r / 8] |= (uint8_t)(1u << (r % 8));
			n++;
		}
	}
	return ((int)n);
}

uint32_t
up_fec_ngroups(uint32_t nblocks, uint16_t k)
{
	if (k == 0)
		return (0);
	return (nblocks / k + (nblocks % k != 0));
}

uint16_t
up_fec_group_len(uint32_t nblocks, uint16_t k, uint32_t g)
{
	uint64_t	 first = (uint64_t)g * k;

	if (k == 0 || first >= nblocks)
		return (0);
	return (nblocks - first < k ? (uint16_t)(nblocks - first) : k);
}

void
up_fec_xor(uint8_t *dst, const uint8_t *src, size_t n)
{
	size_t	 i;

	for (i = 0; i < n; i++)
		dst[i] ^= src[i];
}

/* ------------------------------------------------------------------ */
/* PARITY frames                                                      */

int
up_fec_parity_parse(const struct up_msg *m, struct up_fec_parity *p)
{
	struct up_rd	 rd;

	if (m == NULL || p == NULL || m->type != UP_T_PARITY)
		return (UP_EINVAL);
	/* The codec checked one byte after the row; we need the header. */
	if (m->u.data.len < UP_FEC_HDR_LEN + 1)
		return (UP_ELEN);
	up_rd_init(&rd, m->u.data.data, m->u.data.len);
	p->row = m->u.data.index;
	p->group = up_rd_u32(&rd);
	p->k = up_rd_u16(&rd);
	if (up_rd_err(&rd) != UP_OK)
		return (UP_ELEN);
	if (p->row < 1 || p->row > UP_FEC_ROW_MAX || p->k == 0)
		return (UP_ERANGE);
	p->len = (uint16_t)(m->u.data.len - UP_FEC_HDR_LEN);
	p->data = m->u.data.data + UP_FEC_HDR_LEN;
	return (UP_OK);
}

int
up_fec_seal_parity(uint8_t *buf, size_t cap, uint8_t flags,
    uint32_t session, uint32_t row, uint32_t group, uint16_t k,
    uint16_t len)
{
	struct up_wr	 wr;

	if (buf == NULL || row < 1 || row > UP_FEC_ROW_MAX || k == 0 ||
	    len == 0)
		return (len == 0 ? UP_ELEN : UP_EINVAL);
	if ((size_t)len + UP_FEC_HDR_LEN > UINT16_MAX)
		return (UP_ELEN);
	if (cap < UP_FEC_DATA_OFF + (size_t)len + UP_CRC_LEN)
		return (UP_ENOSPC);
	up_wr_init(&wr, buf + UP_DATA_OFF, UP_FEC_HDR_LEN);
	up_wr_u32(&wr, group);
	up_wr_u16(&wr, k);
	return (up_seal_data(buf, cap, UP_T_PARITY, flags, session, row,
	    (uint16_t)(len + UP_FEC_HDR_LEN)));
}

/* ------------------------------------------------------------------ */
/* Encoder and planner                                                */

int
up_fec_encode(uint32_t row, uint16_t m, uint8_t *out, size_t blen,
    uint8_t *bits, uint8_t *scratch, up_fec_read_fn *read, void *ctx)
{
	int		 e;
	uint16_t	 i;

	if (out == NULL || scratch == NULL || read == NULL || blen == 0)
		return (UP_EINVAL);
	if ((e = up_fec_matrix_line(row, m, bits, ((size_t)m + 7) / 8)) < 0)
		return (e);
	memset(out, 0, blen);
	for (i = 0; i < m; i++) {
		if ((bits[i / 8] & (1u << (i % 8))) == 0)
			continue;
		if (read(ctx, i, scratch, blen) != 0)
			return (UP_EPORT);
		up_fec_xor(out, scratch, blen);
	}
	return (UP_OK);
}

/* Lowest set bit of v[n bytes], or -1. */
static int
fec_vec_low(const uint8_t *v, size_t n)
{
	size_t		 i;
	unsigned int	 b;

	for (i = 0; i < n; i++)
		if (v[i] != 0) {
			for (b = 0; (v[i] & (1u << b)) == 0; b++)
				;
			return ((int)(i * 8 + b));
		}
	return (-1);
}

static bool
fec_bit(const uint8_t *v, unsigned int i)
{
	return ((v[i / 8] & (1u << (i % 8))) != 0);
}

int
up_fec_rows_needed(uint16_t m, const uint8_t *missing, uint32_t first_row,
    unsigned int max_rows)
{
	uint8_t		 line[UP_FEC_VEC_BYTES], v[UP_FEC_VEC_BYTES];
	uint8_t		 basis[UP_FEC_K_MAX][UP_FEC_VEC_BYTES];
	bool		 have[UP_FEC_K_MAX];
	size_t		 nb = ((size_t)m + 7) / 8, j;
	unsigned int	 want = 0, rank = 0, n, i;
	int		 p;

	if (m < 1 || m > UP_FEC_K_MAX || missing == NULL || first_row < 1)
		return (-1);
	for (i = 0; i < m; i++)
		if (fec_bit(missing, i))
			want++;
	if (want == 0)
		return (0);
	memset(have, 0, sizeof(have));
	for (n = 0; n < max_rows; n++) {
		if (first_row + n > UP_FEC_ROW_MAX)
			return (-1);
		(void)up_fec_matrix_line(first_row + n, m, line, sizeof(line));
		/* Only the missing columns matter to this node. */
		for (j = 0; j < nb; j++)
			v[j] = line[j] & missing[j];
		/* Reduce by the basis (one row per leading bit). */
		while ((p = fec_vec_low(v, nb)) >= 0 && have[p])
			for (j = 0; j < nb; j++)
				v[j] ^= basis[p][j];
		if (p < 0)
			continue;
		memcpy(basis[p], v, nb);
		have[p] = true;
		if (++rank == want)
			return ((int)n + 1);
	}
	return (-1);
}

/* ------------------------------------------------------------------ */
/* Decoder                                                            */

#define FEC_NB(d)	(((size_t)(d)->m + 7) / 8)

static uint8_t *
fec_s1(struct up_fec_dec *d)
{
	return (d->scratch);
}

static uint8_t *
fec_s2(struct up_fec_dec *d)
{
	return (d->scratch + d->blen);
}

/*
 * Stored rows live in RAM for slots below d->nram, in the caller's row
 * store above (store row slot - nram).
 */
static uint8_t *
fec_ram(struct up_fec_dec *d, uint16_t slot)
{
	if (slot < d->nram)
		return (d->rows + (size_t)slot * d->blen);
	return (NULL);
}

static int
fec_store_read(struct up_fec_dec *d, uint16_t slot, uint8_t *buf)
{
	if (d->ops->row_read(d->ctx, d->group, (uint16_t)(slot - d->nram),
	    buf, d->blen) != 0)
		return (UP_EPORT);
	return (UP_OK);
}

static int
fec_store_write(struct up_fec_dec *d, uint16_t slot, const uint8_t *buf)
{
	if (d->ops->row_write(d->ctx, d->group, (uint16_t)(slot - d->nram),
	    buf, d->blen) != 0)
		return (UP_EPORT);
	return (UP_OK);
}

/* dst ^= stored row `slot' (data only). */
static int
fec_row_xor_from(struct up_fec_dec *d, uint16_t slot, uint8_t *dst)
{
	uint8_t	*r;

	if ((r = fec_ram(d, slot)) != NULL) {
		up_fec_xor(dst, r, d->blen);
		return (UP_OK);
	}
	if (fec_store_read(d, slot, fec_s2(d)) != UP_OK)
		return (UP_EPORT);
	up_fec_xor(dst, fec_s2(d), d->blen);
	return (UP_OK);
}

/* stored row `slot' ^= src (data only). */
static int
fec_row_xor_into(struct up_fec_dec *d, uint16_t slot, const uint8_t *src)
{
	uint8_t	*p;

	if ((p = fec_ram(d, slot)) != NULL) {
		up_fec_xor(p, src, d->blen);
		return (UP_OK);
	}
	p = fec_s2(d);
	if (fec_store_read(d, slot, p) != UP_OK)
		return (UP_EPORT);
	up_fec_xor(p, src, d->blen);
	return (fec_store_write(d, slot, p));
}

static int
fec_row_put(struct up_fec_dec *d, uint16_t slot, const uint8_t *src)
{
	uint8_t	*r;

	if ((r = fec_ram(d, slot)) != NULL) {
		if (r != src)
			memcpy(r, src, d->blen);
		return (UP_OK);
	}
	return (fec_store_write(d, slot, src));
}

/* Reads stored row `slot' into s2 (or returns it in place). */
static const uint8_t *
fec_row_get(struct up_fec_dec *d, uint16_t slot)
{
	uint8_t	*r;

	if ((r = fec_ram(d, slot)) != NULL)
		return (r);
	if (fec_store_read(d, slot, fec_s2(d)) != UP_OK)
		return (NULL);
	return (fec_s2(d));
}

/* Forgets stored row `slot': the last one takes its place. */
static int
fec_row_delete(struct up_fec_dec *d, uint16_t slot)
{
	uint16_t	 last = d->nrows - 1;
	const uint8_t	*p;

	if (slot != last) {
		if ((p = fec_row_get(d, last)) == NULL ||
		    fec_row_put(d, slot, p) != UP_OK)
			return (UP_EPORT);
		memcpy(d->vec[slot], d->vec[last], UP_FEC_VEC_BYTES);
		d->piv[slot] = d->piv[last];
	}
	memset(d->vec[last], 0, UP_FEC_VEC_BYTES);
	d->nrows--;
	return (UP_OK);
}

static void
fec_known_set(struct up_fec_dec *d, uint16_t i)
{
	d->known[i / 8] |= (uint8_t)(1u << (i % 8));
	d->nknown++;
}

/*
 * Makes `slot' the only row with its pivot's bit: XORs it into every
 * other stored row that has the bit (Gauss-Jordan step).
 */
static int
fec_eliminate(struct up_fec_dec *d, uint16_t slot)
{
	const uint8_t	*p;
	uint16_t	 j, col = d->piv[slot];
	size_t		 b, nb = FEC_NB(d);

	p = NULL;
	for (j = 0; j < d->nrows; j++) {
		if (j == slot || !fec_bit(d->vec[j], col))
			continue;
		if (p == NULL) {
			/* With the row in the store, s1 holds it. */
			if ((p = fec_ram(d, slot)) == NULL) {
				if (fec_store_read(d, slot, fec_s1(d)) !=
				    UP_OK)
					return (UP_EPORT);
				p = fec_s1(d);
			}
		}
		for (b = 0; b < nb; b++)
			d->vec[j][b] ^= d->vec[slot][b];
		if (fec_row_xor_into(d, j, p) != UP_OK)
			return (UP_EPORT);
	}
	return (UP_OK);
}

/*
 * Hands out every stored row that is a single block.  Returns how many
 * (>= 0) or UP_EPORT.
 */
static int
fec_emit(struct up_fec_dec *d)
{
	const uint8_t	*p;
	uint16_t	 j, col;
	size_t		 nb = FEC_NB(d);
	int		 n = 0, low;
	uint8_t		 v[UP_FEC_VEC_BYTES];

	for (j = 0; j < d->nrows; ) {
		col = d->piv[j];
		memcpy(v, d->vec[j], nb);
		v[col / 8] &= (uint8_t)~(1u << (col % 8));
		if ((low = fec_vec_low(v, nb)) >= 0) {
			j++;
			continue;
		}
		if ((p = fec_row_get(d, j)) == NULL ||
		    d->ops->src_write(d->ctx, d->group, col, p, d->blen) != 0)
			return (UP_EPORT);
		fec_known_set(d, col);
		/* No other row has a pivot's bit: nothing to XOR out. */
		if (fec_row_delete(d, j) != UP_OK)
			return (UP_EPORT);
		n++;
	}
	return (n);
}

int
up_fec_dec_init(struct up_fec_dec *d, const struct up_fec_ops *ops,
    void *ctx, uint32_t group, uint16_t m, uint16_t k, uint16_t blen,
    uint8_t *scratch, uint8_t *rows, size_t rows_len, uint16_t store_rows)
{
	size_t	 cap, nram;

	if (d == NULL || ops == NULL || ops->src_read == NULL ||
	    ops->src_write == NULL || scratch == NULL || m < 1 || m > k ||
	    k > UP_FEC_K_MAX || blen == 0)
		return (UP_EINVAL);
	memset(d, 0, sizeof(*d));
	d->ops = ops;
	d->ctx = ctx;
	d->scratch = scratch;
	d->group = group;
	d->m = m;
	d->k = k;
	d->blen = blen;
	nram = rows != NULL ? rows_len / blen : 0;
	if (nram > m)
		nram = m;
	d->rows = nram > 0 ? rows : NULL;
	d->nram = (uint16_t)nram;
	cap = nram;
	if (ops->row_read != NULL && ops->row_write != NULL)
		cap += store_rows;
	/* Never more stored rows than missing blocks (<= m). */
	d->maxrows = (uint16_t)(cap < m ? cap : m);
	if (d->maxrows == 0)
		return (UP_EINVAL);
	return (UP_OK);
}

int
up_fec_dec_source(struct up_fec_dec *d, uint16_t i)
{
	uint8_t		*src;
	uint16_t	 j;
	size_t		 nb = FEC_NB(d);
	int		 low, e, n;
	bool		 read = false;

	if (i >= d->m)
		return (UP_EINVAL);
	if (fec_bit(d->known, i))
		return (0);
	fec_known_set(d, i);
	src = fec_s1(d);
	for (j = 0; j < d->nrows; ) {
		if (!fec_bit(d->vec[j], i)) {
			j++;
			continue;
		}
		/* Take the block out of the row (it is not missing now). */
		if (!read) {
			if (d->ops->src_read(d->ctx, d->group, i, src,
			    d->blen) != 0)
				return (UP_EPORT);
			read = true;
		}
		if (fec_row_xor_into(d, j, src) != UP_OK)
			return (UP_EPORT);
		d->vec[j][i / 8] &= (uint8_t)~(1u << (i % 8));
		if (d->piv[j] != i) {
			j++;
			continue;
		}
		/* It was this row's pivot: pick another, or drop it. */
		if ((low = fec_vec_low(d->vec[j], nb)) < 0) {
			if (fec_row_delete(d, j) != UP_OK)
				return (UP_EPORT);
			continue;
		}
		d->piv[j] = (uint16_t)low;
		/* s1 is about to be reused by fec_eliminate(). */
		read = false;
		if ((e = fec_eliminate(d, j)) != UP_OK)
			return (e);
		/* Rows before j may have changed: start over. */
		j = 0;
	}
	n = fec_emit(d);
	return (n);
}

int
up_fec_dec_parity(struct up_fec_dec *d, uint32_t row, const uint8_t *data,
    size_t len)
{
	uint8_t		 line[UP_FEC_VEC_BYTES], v[UP_FEC_VEC_BYTES];
	bool		 used[UP_FEC_K_MAX];
	uint8_t		*acc;
	size_t		 nb = FEC_NB(d), b;
	uint16_t	 j, slot, i;
	int		 e, low;

	if (data == NULL || len != d->blen || row < 1 ||
	    row > UP_FEC_ROW_MAX)
		return (UP_EINVAL);
	if (d->nknown == d->m)
		return (0);
	(void)up_fec_matrix_line(row, d->m, line, sizeof(line));
	/*
	 * Bits first: drop the known blocks, reduce by the stored rows.
	 * A row that adds nothing costs no data work at all.
	 */
	for (b = 0; b < nb; b++)
		v[b] = line[b] & (uint8_t)~d->known[b];
	memset(used, 0, sizeof(used));
	for (j = 0; j < d->nrows; j++)
		if (fec_bit(v, d->piv[j])) {
			for (b = 0; b < nb; b++)
				v[b] ^= d->vec[j][b];
			used[j] = true;
		}
	if ((low = fec_vec_low(v, nb)) < 0)
		return (0);
	if (d->nrows >= d->maxrows)
		return (UP_ENOSPC);

	/* Now the data, in s1: parity ^ known blocks ^ rows used. */
	acc = fec_s1(d);
	memcpy(acc, data, d->blen);
	for (i = 0; i < d->m; i++) {
		if (!fec_bit(line, i) || !fec_bit(d->known, i))
			continue;
		if (d->ops->src_read(d->ctx, d->group, i, fec_s2(d),
		    d->blen) != 0)
			return (UP_EPORT);
		up_fec_xor(acc, fec_s2(d), d->blen);
	}
	for (j = 0; j < d->nrows; j++)
		if (used[j] && fec_row_xor_from(d, j, acc) != UP_OK)
			return (UP_EPORT);
	slot = d->nrows;
	if (fec_row_put(d, slot, acc) != UP_OK)
		return (UP_EPORT);
	memcpy(d->vec[slot], v, nb);
	d->piv[slot] = (uint16_t)low;
	d->nrows++;
	if ((e = fec_eliminate(d, slot)) != UP_OK)
		return (e);
	return (fec_emit(d));
}

uint16_t
up_fec_dec_missing(const struct up_fec_dec *d)
{
	return (d->m - d->nknown);
}

uint16_t
up_fec_dec_rows(const struct up_fec_dec *d)
{
	return (d->nrows);
}
