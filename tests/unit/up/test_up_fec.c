/*
 * test_up_fec.c: the TS004 parity code of up/up_fec.c: the row generator
 * against docs/up-protocol.md §10.6 (read at run time) and values derived
 * by hand, the PARITY fields, the encoder, the planner, and the decoder
 * with random losses, any arrival order, too few rows, rows off RAM and
 * too little row memory.
 */
#include <ctype.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "up.h"

#define DOC_PATH	UB_SOURCE_DIR "/docs/up-protocol.md"
#define MAXB		64		/* block bytes in these tests */
#define MAXN		300		/* blocks of a test "package" */

/* ------------------------------------------------------------------ */
/* A test package and a node's view of it                             */

struct pkg {
	uint32_t	 nblocks;
	uint16_t	 k;
	uint16_t	 blen;
	uint32_t	 size;		/* bytes; the last block is short */
	uint8_t		 data[MAXN][MAXB];	/* the truth */
	uint8_t		 have[MAXN][MAXB];	/* the node's slot */
	bool		 held[MAXN];
	uint32_t	 group;		/* for the encoder callback */
	unsigned int	 writes;	/* src_write calls */
	/* Rows off RAM (row_read/row_write). */
	uint8_t		 rowstore[UP_FEC_K_MAX][MAXB];
	unsigned int	 row_io;
	uint32_t	 dgroup;	/* the decoder's group */
};

static uint32_t	 rng = 12345;

static uint32_t
rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 17;
	rng ^= rng << 5;
	return (rng);
}

static uint16_t
blk_len(const struct pkg *p, uint32_t i)
{
	if (i == p->nblocks - 1)
		return ((uint16_t)(p->size - i * p->blen));
	return (p->blen);
}

static void
pkg_init(struct pkg *p, uint32_t nblocks, uint16_t k, uint16_t blen,
    uint16_t last_len)
{
	uint32_t	 i, j;

	memset(p, 0, sizeof(*p));
	p->nblocks = nblocks;
	p->k = k;
	p->blen = blen;
	p->size = (nblocks - 1) * blen + last_len;
	for (i = 0; i < nblocks; i++)
		for (j = 0; j < blk_len(p, i); j++)
			p->data[i][j] = (uint8_t)rnd();
}

/* Encoder callback: block i of p->group, zero-padded. */
static int
enc_read(void *ctx, uint16_t i, uint8_t *buf, size_t blen)
{
	struct pkg	*p = ctx;
	uint32_t	 b = p->group * p->k + i;

	memset(buf, 0, blen);
	memcpy(buf, p->data[b], blk_len(p, b));
	return (0);
}

static int
src_read(void *ctx, uint32_t group, uint16_t i, uint8_t *buf, size_t blen)
{
	struct pkg	*p = ctx;
	uint32_t	 b = group * p->k + i;

	assert_true(p->held[b]);
	memset(buf, 0, blen);
	memcpy(buf, p->have[b], blk_len(p, b));
	return (0);
}

static int
src_write(void *ctx, uint32_t group, uint16_t i, const uint8_t *buf,
    size_t blen)
{
	struct pkg	*p = ctx;
	uint32_t	 b = group * p->k + i;
	size_t		 j;

	assert_false(p->held[b]);
	assert_int_equal(blen, p->blen);
	/* The padding of a short last block must come out as zeros. */
	for (j = blk_len(p, b); j < blen; j++)
		assert_int_equal(buf[j], 0);
	memcpy(p->have[b], buf, blk_len(p, b));
	p->held[b] = true;
	p->writes++;
	return (0);
}

static int
row_read(void *ctx, uint32_t group, uint16_t slot, uint8_t *buf,
    size_t blen)
{
	struct pkg	*p = ctx;

	assert_int_equal(group, p->dgroup);
	assert_true(slot < UP_FEC_K_MAX);
	memcpy(buf, p->rowstore[slot], blen);
	p->row_io++;
	return (0);
}

static int
row_write(void *ctx, uint32_t group, uint16_t slot, const uint8_t *buf,
    size_t blen)
{
	struct pkg	*p = ctx;

	assert_int_equal(group, p->dgroup);
	assert_true(slot < UP_FEC_K_MAX);
	memcpy(p->rowstore[slot], buf, blen);
	p->row_io++;
	return (0);
}

static const struct up_fec_ops ram_ops = { src_read, src_write, NULL, NULL };
static const struct up_fec_ops flash_ops = { src_read, src_write, row_read,
    row_write };

/* Parity row r of group g, as the gateway makes it. */
static void
mk_parity(struct pkg *p, uint32_t g, uint32_t r, uint8_t *out)
{
	uint8_t		 bits[UP_FEC_VEC_BYTES], scratch[MAXB];

	p->group = g;
	assert_int_equal(up_fec_encode(r, up_fec_group_len(p->nblocks, p->k,
	    g), out, p->blen, bits, scratch, enc_read, p), UP_OK);
}

/* A node receives block b (DATA). */
static int
deliver(struct pkg *p, struct up_fec_dec *d, uint32_t b)
{
	memcpy(p->have[b], p->data[b], blk_len(p, b));
	p->held[b] = true;
	return (d != NULL ? up_fec_dec_source(d, (uint16_t)(b % p->k)) : 0);
}

static void
assert_group_ok(struct pkg *p, uint32_t g)
{
	uint32_t	 b, m = up_fec_group_len(p->nblocks, p->k, g);

	for (b = g * p->k; b < g * p->k + m; b++) {
		assert_true(p->held[b]);
		assert_memory_equal(p->have[b], p->data[b], blk_len(p, b));
	}
}

/* ------------------------------------------------------------------ */
/* Row generator                                                      */

static void
test_prbs23_by_hand(void **state)
{
	uint8_t	 bits[2];

	(void)state;
	/*
	 * TS004 A.1 by hand: 1002 = 0b1111101010, b0 = 0, b5 = 1, so
	 * 1002 >> 1 = 501 plus 1 << 22 = 4194805.  4194805 = 0x4001f5: b0
	 * = 1, b5 = 1: 2097402 with nothing added.
	 */
	assert_int_equal(up_fec_prbs23(1002), 4194805);
	assert_int_equal(up_fec_prbs23(4194805), 2097402);
	/* '+', not '|': bit 22 already set and b0 ^ b5 = 1 carries. */
	assert_int_equal(up_fec_prbs23(0x01800000u | 1u),
	    (0x01800000u >> 1) + (1u << 22));
	assert_int_not_equal(up_fec_prbs23(0x01800001u),
	    (0x01800001u >> 1) | (1u << 22));
	/* 4194805 % 5 = 0, 2097402 % 5 = 2 (mm = 5 for m = 4). */
	assert_int_equal(up_fec_matrix_line(1, 4, bits, 1), 2);
	assert_int_equal(bits[0], 0x05);
	/* Bad arguments. */
	assert_int_equal(up_fec_matrix_line(0, 4, bits, 1), UP_EINVAL);
	assert_int_equal(up_fec_matrix_line(UP_FEC_ROW_MAX + 1, 4, bits, 1),
	    UP_EINVAL);
	assert_int_equal(up_fec_matrix_line(1, 0, bits, 1), UP_EINVAL);
	assert_int_equal(up_fec_matrix_line(1, 10, bits, 1), UP_ENOSPC);
}

/* Reads the ```upfec blocks of the protocol document. */
static void
test_doc_rows(void **state)
{
	FILE		*f;
	char		 line[1024], *p, *end;
	uint8_t		 want[64], got[64];
	unsigned long	 r = 0, m = 0, v;
	int		 in = 0, nwant = 0, nblk = 0, lineno = 0;

	(void)state;
	if ((f = fopen(DOC_PATH, "r")) == NULL)
		fail_msg("cannot open %s", DOC_PATH);
	while (fgets(line, sizeof(line), f) != NULL) {
		lineno++;
		if (!in) {
			if (strncmp(line, "```upfec", 8) == 0) {
				in = 1;
				nwant = 0;
				r = m = 0;
			}
			continue;
		}
		if (strncmp(line, "```", 3) == 0) {
			in = 0;
			assert_true(r >= 1 && m >= 1);
			assert_int_equal(nwant, (int)((m + 7) / 8));
			memset(got, 0xee, sizeof(got));
			assert_true(up_fec_matrix_line((uint32_t)r,
			    (uint32_t)m, got, sizeof(got)) >= 0);
			if (memcmp(got, want, (size_t)nwant) != 0)
				fail_msg("line %d: matrix_line(%lu, %lu) "
				    "differs", lineno, r, m);
			nblk++;
			continue;
		}
		if (strncmp(line, "value:", 6) == 0) {
			r = strtoul(line + 6, &end, 10);
			m = strtoul(end, NULL, 10);
		} else if (strncmp(line, "hex:", 4) == 0) {
			p = line + 4;
			for (;;) {
				v = strtoul(p, &end, 16);
				if (end == p)
					break;
				assert_true(nwant < (int)sizeof(want));
				want[nwant++] = (uint8_t)v;
				p = end;
			}
		}
	}
	fclose(f);
	assert_false(in);
	print_message("%d matrix_line vectors\n", nblk);
	assert_true(nblk >= 10);
}

/* Rows have about m/2 draws: at most m/2 ones, and roughly 0.39 m. */
static void
test_row_density(void **state)
{
	uint8_t		 bits[UP_FEC_VEC_BYTES];
	unsigned int	 r, total = 0;
	int		 n;

	(void)state;
	for (r = 1; r <= 1000; r++) {
		n = up_fec_matrix_line(r, 64, bits, sizeof(bits));
		assert_true(n >= 1 && n <= 32);
		total += (unsigned int)n;
	}
	/* 64 * (1 - e^-0.5) = 25.2 expected distinct ones per row. */
	assert_true(total > 22000 && total < 28000);
	assert_int_equal(up_fec_ngroups(300, 64), 5);
	assert_int_equal(up_fec_ngroups(256, 64), 4);
	assert_int_equal(up_fec_group_len(300, 64, 4), 44);
	assert_int_equal(up_fec_group_len(300, 64, 5), 0);
	assert_int_equal(up_fec_group_len(300, 0, 0), 0);
}

/* ------------------------------------------------------------------ */
/* PARITY frames                                                      */

static void
test_parity_frame(void **state)
{
	uint8_t			 f[UP_FRAME_MAX];
	struct up_msg		 m;
	struct up_fec_parity	 p;
	int			 n;

	(void)state;
	memset(f + UP_FEC_DATA_OFF, 0xa5, 100);
	n = up_fec_seal_parity(f, sizeof(f), UP_F_REPAIR, 0x5eed0001, 7, 3,
	    64, 100);
	assert_int_equal(n, UP_PARITY_OVERHEAD + 100);
	assert_int_equal(up_decode(f, (size_t)n, &m), UP_OK);
	assert_int_equal(m.type, UP_T_PARITY);
	assert_int_equal(m.flags, UP_F_REPAIR);
	assert_int_equal(up_fec_parity_parse(&m, &p), UP_OK);
	assert_int_equal(p.row, 7);
	assert_int_equal(p.group, 3);
	assert_int_equal(p.k, 64);
	assert_int_equal(p.len, 100);
	assert_ptr_equal(p.data, f + UP_FEC_DATA_OFF);

	/* The layout of §4.6, byte by byte. */
	assert_int_equal(f[10], 7);
	assert_int_equal(f[14], 3);
	assert_int_equal(f[18], 64);
	assert_int_equal(f[19], 0);

	/* Too short for the FEC header, row 0, k 0. */
	m.u.data.len = UP_FEC_HDR_LEN;
	assert_int_equal(up_fec_parity_parse(&m, &p), UP_ELEN);
	m.u.data.len = 100 + UP_FEC_HDR_LEN;
	m.u.data.index = 0;
	assert_int_equal(up_fec_parity_parse(&m, &p), UP_ERANGE);
	m.u.data.index = UP_FEC_ROW_MAX + 1;
	assert_int_equal(up_fec_parity_parse(&m, &p), UP_ERANGE);
	m.u.data.index = 1;
	f[18] = 0;
	assert_int_equal(up_fec_parity_parse(&m, &p), UP_ERANGE);
	m.type = UP_T_DATA;
	assert_int_equal(up_fec_parity_parse(&m, &p), UP_EINVAL);

	assert_int_equal(up_fec_seal_parity(f, sizeof(f), 0, 1, 0, 0, 64, 1),
	    UP_EINVAL);
	assert_int_equal(up_fec_seal_parity(f, sizeof(f), 0, 1, 1, 0, 0, 1),
	    UP_EINVAL);
	assert_int_equal(up_fec_seal_parity(f, sizeof(f), 0, 1, 1, 0, 64, 0),
	    UP_ELEN);
	assert_int_equal(up_fec_seal_parity(f, 40, 0, 1, 1, 0, 64, 20),
	    UP_ENOSPC);
	/* A full-size block does not fit once the FEC header is added. */
	assert_true(up_fec_seal_parity(f, sizeof(f), 0, 1, 1, 0, 64,
	    UP_FRAME_MAX - UP_DATA_OVERHEAD) < 0);
}

/* ------------------------------------------------------------------ */
/* Encoder and decoder                                                */

/* The parity of row r is the XOR its matrix line says. */
static void
test_encode(void **state)
{
	static struct pkg	 p;
	uint8_t			 out[MAXB], want[MAXB], bits[8];
	uint16_t		 i;

	(void)state;
	pkg_init(&p, 10, 10, 16, 16);
	mk_parity(&p, 0, 2, out);
	/* matrix_line(2, 10) = 0x35 0x02: blocks 0, 2, 4, 5 and 9. */
	assert_int_equal(up_fec_matrix_line(2, 10, bits, sizeof(bits)), 5);
	assert_int_equal(bits[0], 0x35);
	assert_int_equal(bits[1], 0x02);
	memset(want, 0, sizeof(want));
	for (i = 0; i < 10; i++)
		if (i == 0 || i == 2 || i == 4 || i == 5 || i == 9)
			up_fec_xor(want, p.data[i], 16);
	assert_memory_equal(out, want, 16);
}

/*
 * Random losses up to the limit, for several group sizes and a short
 * last block: sources first, then consecutive rows; the number of rows
 * the decoder needed equals the planner's prediction.
 */
static void
run_losses(const struct up_fec_ops *ops, size_t ram_rows,
    unsigned int trials)
{
	static struct pkg	 p;
	static uint8_t		 rows[UP_FEC_K_MAX * MAXB];
	struct up_fec_dec	 d;
	uint8_t			 scratch[2 * MAXB], par[MAXB];
	uint8_t			 miss[UP_FEC_VEC_BYTES];
	static const uint16_t	 ks[] = { 1, 2, 5, 16, 64, 100, 128 };
	unsigned int		 t, ki, lost, i, r, need, used;
	uint16_t		 m, k;
	uint32_t		 g, b, first;
	int			 e, rec, total_extra = 0, nrun = 0;
	unsigned long		 store_io = 0;

	for (ki = 0; ki < sizeof(ks) / sizeof(ks[0]); ki++) {
		k = ks[ki];
		for (t = 0; t < trials; t++) {
			/* Two groups, the last one shorter, short block. */
			pkg_init(&p, k + (k > 1 ? k / 2 + 1 : 1), k, MAXB,
			    (uint16_t)(1 + rnd() % MAXB));
			g = t % up_fec_ngroups(p.nblocks, k);
			m = up_fec_group_len(p.nblocks, k, g);
			first = g * k;
			/* Lose up to the whole group. */
			lost = t == 0 ? m : 1 + rnd() % m;
			p.dgroup = g;
			p.row_io = 0;
			assert_int_equal(up_fec_dec_init(&d, ops, &p, g, m, k,
			    MAXB, scratch, ram_rows > 0 ? rows : NULL,
			    ram_rows * MAXB, UP_FEC_K_MAX), UP_OK);
			memset(miss, 0, sizeof(miss));
			for (i = 0; i < lost; ) {
				b = rnd() % m;
				if ((miss[b / 8] & (1u << (b % 8))) == 0) {
					miss[b / 8] |= (uint8_t)(1u << (b % 8));
					i++;
				}
			}
			for (i = 0; i < m; i++)
				if ((miss[i / 8] & (1u << (i % 8))) == 0)
					assert_int_equal(deliver(&p, &d,
					    first + i), 0);
			assert_int_equal(up_fec_dec_missing(&d), lost);
			r = 1 + rnd() % 1000;
			e = up_fec_rows_needed(m, miss, r, 4 * m + 40);
			if (m == 1) {
				/* matrix_line(r, 1) is empty: no row helps. */
				assert_int_equal(e, -1);
				continue;
			}
			assert_true(e >= (int)lost);
			need = (unsigned int)e;
			rec = 0;
			for (used = 0; up_fec_dec_missing(&d) > 0; used++) {
				assert_true(used < need);
				mk_parity(&p, g, r + used, par);
				e = up_fec_dec_parity(&d, r + used, par, MAXB);
				assert_true(e >= 0);
				rec += e;
			}
			assert_int_equal(used, need);
			assert_int_equal(rec, lost);
			assert_int_equal(up_fec_dec_rows(&d), 0);
			assert_group_ok(&p, g);
			/* Never more rows stored than blocks missing. */
			if (ops == &ram_ops || lost <= ram_rows)
				assert_int_equal(p.row_io, 0);
			store_io += p.row_io;
			total_extra += (int)(need - lost);
			nrun++;
		}
	}
	print_message("%d decodes, %.2f rows over the losses on average\n",
	    nrun, (double)total_extra / nrun);
	/* Rows beyond the RAM ones went to the store. */
	if (ops == &flash_ops)
		assert_true(store_io > 0);
	/* TS004 A.3: about 2 extra rows on average, never many more. */
	assert_true((double)total_extra / nrun < 3.5);
}

static void
test_decode_losses(void **state)
{
	(void)state;
	run_losses(&ram_ops, UP_FEC_K_MAX, 40);
}

static void
test_decode_rows_off_ram(void **state)
{
	(void)state;
	run_losses(&flash_ops, 0, 15);
}

/*
 * A row budget of 3 in RAM, the rest in the store: rows move between
 * the two as they are stored, eliminated and deleted, and every group
 * still decodes right with the same rows.
 */
static void
test_decode_rows_spilled(void **state)
{
	(void)state;
	run_losses(&flash_ops, 3, 15);
}

/*
 * Any order: parity rows first, then some sources arrive late (a
 * retransmission), rows interleaved with them; the data still comes out
 * right and nothing is written twice.
 */
static void
test_decode_any_order(void **state)
{
	static struct pkg	 p;
	static uint8_t		 rows[64 * MAXB];
	struct up_fec_dec	 d;
	uint8_t			 scratch[2 * MAXB], par[MAXB];
	const struct up_fec_ops	*ops;
	uint16_t		 order[64];
	unsigned int		 t, i, j, nlate, nrows, r, ndel;
	uint16_t		 tmp;
	int			 e;

	(void)state;
	for (t = 0; t < 60; t++) {
		ops = t % 2 ? &flash_ops : &ram_ops;
		pkg_init(&p, 64, 64, MAXB, MAXB);
		/* RAM, the store alone, or 5 rows in RAM and the rest. */
		p.dgroup = 0;
		assert_int_equal(up_fec_dec_init(&d, ops, &p, 0, 64, 64, MAXB,
		    scratch, t % 4 == 1 ? NULL : rows, t % 4 == 3 ? 5 * MAXB :
		    sizeof(rows), 64), UP_OK);
		for (i = 0; i < 64; i++)
			order[i] = (uint16_t)i;
		for (i = 63; i > 0; i--) {
			j = rnd() % (i + 1);
			tmp = order[i];
			order[i] = order[j];
			order[j] = tmp;
		}
		/* 44 sources now, 20 missing of which 8 arrive late. */
		for (i = 0; i < 44; i++)
			assert_true(deliver(&p, &d, order[i]) >= 0);
		ndel = 44;
		nlate = 8;
		r = 1 + rnd() % 5000;
		nrows = 0;
		for (i = 0; up_fec_dec_missing(&d) > 0; i++) {
			assert_true(i < 200);
			if (i % 3 == 1 && nlate > 0) {
				j = 44 + 8 - nlate--;
				/* Late DATA: skip it if parity got it. */
				if (!p.held[order[j]]) {
					e = deliver(&p, &d, order[j]);
					assert_true(e >= 0);
					ndel++;
				}
				continue;
			}
			mk_parity(&p, 0, r, par);
			e = up_fec_dec_parity(&d, r++, par, MAXB);
			assert_true(e >= 0);
			nrows++;
		}
		assert_group_ok(&p, 0);
		/* Every block came once: by DATA or by the decoder. */
		assert_int_equal(p.writes + ndel, 64);
	}
}

/* Too few rows: the decoder holds what it has and claims nothing. */
static void
test_decode_too_few(void **state)
{
	static struct pkg	 p;
	static uint8_t		 rows[64 * MAXB];
	struct up_fec_dec	 d;
	uint8_t			 scratch[2 * MAXB], par[MAXB];
	uint8_t			 miss[UP_FEC_VEC_BYTES];
	unsigned int		 i, t, lost = 10;
	int			 need;
	uint32_t		 r;

	(void)state;
	for (t = 0; t < 20; t++) {
		pkg_init(&p, 64, 64, MAXB, MAXB);
		assert_int_equal(up_fec_dec_init(&d, &ram_ops, &p, 0, 64, 64,
		    MAXB, scratch, rows, sizeof(rows), 0), UP_OK);
		memset(miss, 0, sizeof(miss));
		for (i = 0; i < 64; i++) {
			if (i % 6 == t % 6 && i / 6 < lost)
				miss[i / 8] |= (uint8_t)(1u << (i % 8));
			else
				(void)deliver(&p, &d, i);
		}
		assert_int_equal(up_fec_dec_missing(&d), lost);
		r = 1 + t * 100;
		need = up_fec_rows_needed(64, miss, r, 200);
		assert_true(need >= (int)lost);
		for (i = 0; i + 1 < (unsigned int)need; i++) {
			mk_parity(&p, 0, r + i, par);
			assert_true(up_fec_dec_parity(&d, r + i, par,
			    MAXB) >= 0);
		}
		/* One row short: something is still missing... */
		assert_true(up_fec_dec_missing(&d) > 0);
		/* ... and every block handed out is right. */
		for (i = 0; i < 64; i++)
			if (p.held[i])
				assert_memory_equal(p.have[i], p.data[i],
				    MAXB);
		/* The same row again adds nothing. */
		mk_parity(&p, 0, r, par);
		assert_int_equal(up_fec_dec_parity(&d, r, par, MAXB), 0);
		/* The last row completes it. */
		mk_parity(&p, 0, r + need - 1, par);
		assert_true(up_fec_dec_parity(&d, r + need - 1, par,
		    MAXB) > 0);
		assert_int_equal(up_fec_dec_missing(&d), 0);
		assert_group_ok(&p, 0);
		/* Complete: further rows are ignored. */
		assert_int_equal(up_fec_dec_parity(&d, r + need, par, MAXB), 0);
	}
}

/* Row memory for 2 rows: a third useful row is refused, not stored. */
static void
test_decode_no_room(void **state)
{
	static struct pkg	 p;
	uint8_t			 rows[2 * MAXB], scratch[2 * MAXB];
	uint8_t			 par[MAXB];
	struct up_fec_dec	 d;
	unsigned int		 i;
	uint32_t		 r;
	int			 e, full = 0;

	(void)state;
	pkg_init(&p, 64, 64, MAXB, MAXB);
	assert_int_equal(up_fec_dec_init(&d, &ram_ops, &p, 0, 64, 64, MAXB,
	    scratch, rows, sizeof(rows), 0), UP_OK);
	for (i = 10; i < 64; i++)
		(void)deliver(&p, &d, i);
	for (r = 1; r < 60; r++) {
		mk_parity(&p, 0, r, par);
		e = up_fec_dec_parity(&d, r, par, MAXB);
		if (e == UP_ENOSPC)
			full++;
		else
			assert_true(e >= 0);
		assert_true(up_fec_dec_rows(&d) <= 2);
	}
	assert_true(full > 0);
	for (i = 0; i < 64; i++)
		if (p.held[i])
			assert_memory_equal(p.have[i], p.data[i], MAXB);
	/* Bad arguments. */
	assert_int_equal(up_fec_dec_parity(&d, 0, par, MAXB), UP_EINVAL);
	assert_int_equal(up_fec_dec_parity(&d, 1, par, MAXB - 1), UP_EINVAL);
	assert_int_equal(up_fec_dec_source(&d, 64), UP_EINVAL);
	assert_int_equal(up_fec_dec_init(&d, &ram_ops, &p, 0, 65, 64, MAXB,
	    scratch, rows, sizeof(rows), 0), UP_EINVAL);
	assert_int_equal(up_fec_dec_init(&d, &ram_ops, &p, 0, 64, 64, MAXB,
	    scratch, rows, MAXB - 1, 0), UP_EINVAL);
	assert_int_equal(up_fec_dec_init(&d, &ram_ops, &p, 0, 1,
	    UP_FEC_K_MAX + 1, MAXB, scratch, rows, sizeof(rows), 0),
	    UP_EINVAL);
	/* RAM for 2 rows and a store of 3: a sixth useful row is refused. */
	pkg_init(&p, 64, 64, MAXB, MAXB);
	assert_int_equal(up_fec_dec_init(&d, &flash_ops, &p, 0, 64, 64, MAXB,
	    scratch, rows, sizeof(rows), 3), UP_OK);
	for (i = 10; i < 64; i++)
		(void)deliver(&p, &d, i);
	for (r = 1, full = 0; r < 60; r++) {
		mk_parity(&p, 0, r, par);
		e = up_fec_dec_parity(&d, r, par, MAXB);
		if (e == UP_ENOSPC)
			full++;
		else
			assert_true(e >= 0);
		assert_true(up_fec_dec_rows(&d) <= 5);
	}
	assert_true(full > 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_prbs23_by_hand),
		cmocka_unit_test(test_doc_rows),
		cmocka_unit_test(test_row_density),
		cmocka_unit_test(test_parity_frame),
		cmocka_unit_test(test_encode),
		cmocka_unit_test(test_decode_losses),
		cmocka_unit_test(test_decode_rows_off_ram),
		cmocka_unit_test(test_decode_rows_spilled),
		cmocka_unit_test(test_decode_any_order),
		cmocka_unit_test(test_decode_too_few),
		cmocka_unit_test(test_decode_no_room),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
