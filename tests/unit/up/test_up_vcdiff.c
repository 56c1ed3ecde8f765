/*
 * test_up_vcdiff.c: the VCDIFF decoder (up/up_vcdiff.c) against deltas
 * made by the real xdelta3 tool, hand-made RFC 3284 vectors for what
 * xdelta3 never writes (VCD_TARGET, every address mode), truncated and
 * corrupted deltas, and the node engine applying a delta through a fake
 * port (up/up_node.c).
 *
 * The deltas are made at test time: `xdelta3 -e -9 -S none -A -n
 * [-W 16384] -s OLD NEW OUT' (scripts/setup installs xdelta3).  Every
 * callback checks that the decoder stays inside the buffers it was given
 * and writes the target in order, so a bounds bug fails here and not only
 * under ASan.
 */
#include <sys/stat.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <openssl/evp.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "up.h"

static char	 tmpdir[64];

/* ------------------------------------------------------------------ */
/* Helpers: data, xdelta3                                             */

static uint32_t
rnd(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return (*s);
}

static void
fill_random(uint8_t *p, size_t n, uint32_t seed)
{
	size_t		 i;

	for (i = 0; i < n; i++)
		p[i] = (uint8_t)(rnd(&seed) >> 11);
}

/*
 * Something like a linked firmware image: Thumb-like code words from a
 * small vocabulary with varying immediates, string tables and zero
 * padding between sections.
 */
static void
fw_make(uint8_t *p, size_t n, uint32_t seed)
{
	static const char *const words[] = { "sensor", "error: ", "timeout",
	    "littlefs", "mbedtls", "ok\n", "radio", "%s:%d ", "config" };
	size_t		 i = 0, k, end;
	uint32_t	 w, kind;

	while (i < n) {
		kind = rnd(&seed) % 8;
		end = i + 256 + rnd(&seed) % 4096;
		if (end > n)
			end = n;
		if (kind < 5) {
			for (; i + 4 <= end; i += 4) {
				w = 0x4600u + (rnd(&seed) % 64) * 0x101u;
				if (rnd(&seed) % 4 == 0)
					w = rnd(&seed);
				memcpy(p + i, &w, 4);
			}
		} else if (kind < 7) {
			while (i < end) {
				const char *s = words[rnd(&seed) % 9];

				k = strlen(s);
				if (k > end - i)
					k = end - i;
				memcpy(p + i, s, k);
				i += k;
			}
		} else {
			memset(p + i, 0, end - i);
			i = end;
		}
		for (; i < end; i++)
			p[i] = 0xff;
	}
}

static uint8_t *
read_whole(const char *path, size_t *len)
{
	struct stat	 st;
	uint8_t		*p;
	FILE		*f;

	assert_non_null(f = fopen(path, "rb"));
	assert_int_equal(fstat(fileno(f), &st), 0);
	p = malloc((size_t)st.st_size + 1);
	assert_non_null(p);
	assert_int_equal(fread(p, 1, (size_t)st.st_size, f),
	    (size_t)st.st_size);
	fclose(f);
	*len = (size_t)st.st_size;
	return (p);
}

static void
write_whole(const char *path, const uint8_t *p, size_t n)
{
	FILE		*f;

	assert_non_null(f = fopen(path, "wb"));
	if (n > 0)
		assert_int_equal(fwrite(p, 1, n, f), n);
	assert_int_equal(fclose(f), 0);
}

/* Runs xdelta3 -e with `opts' on OLD -> NEW; returns the delta. */
static uint8_t *
xdelta(const char *opts, const uint8_t *old, size_t olen,
    const uint8_t *new, size_t nlen, size_t *dlen)
{
	char		 cmd[512], po[128], pn[128], pd[128];
	int		 rc;

	snprintf(po, sizeof(po), "%s/old", tmpdir);
	snprintf(pn, sizeof(pn), "%s/new", tmpdir);
	snprintf(pd, sizeof(pd), "%s/delta", tmpdir);
	write_whole(po, old, olen);
	write_whole(pn, new, nlen);
	snprintf(cmd, sizeof(cmd), "xdelta3 -e -f %s -s %s %s %s", opts, po,
	    pn, pd);
	rc = system(cmd);
	if (rc != 0)
		fail_msg("`%s' failed (%d): is xdelta3 installed "
		    "(scripts/setup)?", cmd, rc);
	return (read_whole(pd, dlen));
}

/* The node profile and the plain profile of the issue. */
#define XD_NODE		"-9 -S none -A -n -W 16384"
#define XD_PLAIN	"-9 -S none -A -n"

/* ------------------------------------------------------------------ */
/* A checked in-memory decode                                          */

struct mem {
	const uint8_t	*delta;
	size_t		 dlen;
	const uint8_t	*src;
	size_t		 slen;
	uint8_t		*out;
	size_t		 ocap;
	size_t		 written;
	int		 oob;		/* asked outside the buffers */
	int		 fail_write;	/* fail writes past this - 1 */
};

static int
m_delta(void *ctx, uint32_t off, uint8_t *p, size_t n)
{
	struct mem	*m = ctx;

	if (off > m->dlen || n > m->dlen - off) {
		m->oob++;
		return (-1);
	}
	memcpy(p, m->delta + off, n);
	return (0);
}

static int
m_source(void *ctx, uint32_t off, uint8_t *p, size_t n)
{
	struct mem	*m = ctx;

	if (off > m->slen || n > m->slen - off) {
		m->oob++;
		return (-1);
	}
	memcpy(p, m->src + off, n);
	return (0);
}

static int
m_write(void *ctx, uint32_t off, const uint8_t *p, size_t n)
{
	struct mem	*m = ctx;

	/* Sequential, inside the output. */
	if (off != m->written || off > m->ocap || n > m->ocap - off) {
		m->oob++;
		return (-1);
	}
	if (m->fail_write != 0 && (size_t)m->fail_write - 1 < off + n)
		return (-1);
	memcpy(m->out + off, p, n);
	m->written += n;
	return (0);
}

static int
m_readback(void *ctx, uint32_t off, uint8_t *p, size_t n)
{
	struct mem	*m = ctx;

	if (off > m->written || n > m->written - off) {
		m->oob++;
		return (-1);
	}
	memcpy(p, m->out + off, n);
	return (0);
}

static const struct up_vcd_io io_rb = {
	.delta_read = m_delta, .source_read = m_source,
	.target_write = m_write, .target_read = m_readback
};
static const struct up_vcd_io io_norb = {
	.delta_read = m_delta, .source_read = m_source,
	.target_write = m_write, .target_read = NULL
};

static struct up_vcd	 dec;

/*
 * Decodes `delta' over `src' into out[ocap] with a window buffer of
 * buf_len bytes, `budget' bytes per up_vcd_run() call.  Returns the
 * final up_vcd_run() value; *steps counts the calls.
 */
static int
decode(const uint8_t *delta, size_t dlen, const uint8_t *src, size_t slen,
    uint8_t *out, size_t ocap, size_t buf_len, bool readback,
    uint32_t budget, struct mem *m, unsigned int *steps)
{
	uint8_t		*buf;
	unsigned int	 n = 0;
	int		 r;

	memset(m, 0, sizeof(*m));
	m->delta = delta;
	m->dlen = dlen;
	m->src = src;
	m->slen = slen;
	m->out = out;
	m->ocap = ocap;
	/* Exactly buf_len bytes, so ASan sees any overrun of it. */
	buf = malloc(buf_len);
	assert_non_null(buf);
	r = up_vcd_init(&dec, readback ? &io_rb : &io_norb, m,
	    (uint32_t)dlen, (uint32_t)slen, (uint32_t)ocap, buf, buf_len);
	assert_int_equal(r, UP_OK);
	do {
		r = up_vcd_run(&dec, budget);
		n++;
		assert_true(n < 10000000);
	} while (r == UP_VCD_MORE);
	free(buf);
	if (steps != NULL)
		*steps = n;
	assert_int_equal(m->oob, 0);
	assert_int_equal(m->written, up_vcd_written(&dec));
	return (r);
}

/* Makes the delta with `opts', decodes it, checks the bytes. */
static void
roundtrip(const char *opts, const uint8_t *old, size_t olen,
    const uint8_t *new, size_t nlen, size_t buf_len, bool readback)
{
	struct mem	 m;
	uint8_t		*d, *out;
	size_t		 dlen;

	d = xdelta(opts, old, olen, new, nlen, &dlen);
	out = malloc(nlen + 1);
	assert_non_null(out);
	assert_int_equal(decode(d, dlen, old, olen, out, nlen, buf_len,
	    readback, 0, &m, NULL), UP_OK);
	assert_int_equal(m.written, nlen);
	assert_memory_equal(out, new, nlen);
	free(out);
	free(d);
}

/* ------------------------------------------------------------------ */
/* Deltas made by xdelta3                                             */

static void
test_identical(void **state)
{
	uint8_t		*a;
	size_t		 n = 100000;

	(void)state;
	a = malloc(n);
	fill_random(a, n, 1);
	roundtrip(XD_NODE, a, n, a, n, UP_VCD_WINDOW, false);
	/* -W 16384 gives COPY-only windows of at most 16 KiB. */
	assert_true(dec.windows >= 6);
	assert_true(dec.max_window <= UP_VCD_WINDOW);
	roundtrip(XD_PLAIN, a, n, a, n, n, false);
	assert_int_equal(dec.windows, 1);
	free(a);
}

static void
test_appended(void **state)
{
	uint8_t		*a, *b;
	size_t		 n = 50000, extra = 20000;

	(void)state;
	a = malloc(n + extra);
	fill_random(a, n + extra, 2);
	b = a;
	/* new = old + 20 000 new bytes: the tail windows have no source. */
	roundtrip(XD_NODE, a, n, b, n + extra, UP_VCD_WINDOW, false);
	roundtrip(XD_PLAIN, a, n, b, n + extra, n + extra, false);
	/* An empty base and an empty target. */
	roundtrip(XD_NODE, a, 0, b, 3000, UP_VCD_WINDOW, false);
	roundtrip(XD_NODE, a, 3000, b, 0, UP_VCD_WINDOW, false);
	free(a);
}

static void
test_changed_bytes(void **state)
{
	uint8_t		*a, *b;
	size_t		 n = 70000, i;
	uint32_t	 s = 3;

	(void)state;
	a = malloc(n);
	b = malloc(n);
	fw_make(a, n, 3);
	memcpy(b, a, n);
	for (i = 0; i < 60; i++)
		b[rnd(&s) % n] ^= (uint8_t)(1 + rnd(&s) % 255);
	roundtrip(XD_NODE, a, n, b, n, UP_VCD_WINDOW, false);
	roundtrip(XD_PLAIN, a, n, b, n, n, false);
	/* A source shorter than the delta's source segments. */
	{
		struct mem	 m;
		uint8_t		*d, *out;
		size_t		 dlen;

		d = xdelta(XD_NODE, a, n, b, n, &dlen);
		out = malloc(n);
		assert_int_equal(decode(d, dlen, a, n / 2, out, n,
		    UP_VCD_WINDOW, false, 0, &m, NULL), UP_ERANGE);
		assert_string_equal(up_vcd_why(&dec),
		    "source segment outside the source");
		free(out);
		free(d);
	}
	free(a);
	free(b);
}

static void
test_shuffled_blocks(void **state)
{
	uint8_t		*a, *b;
	size_t		 n = 128 * 1024, bs = 4096, nb = n / bs, i, j;
	unsigned int	 perm[32], t;
	uint32_t	 s = 4;

	(void)state;
	a = malloc(n);
	b = malloc(n);
	fill_random(a, n, 4);
	for (i = 0; i < nb; i++)
		perm[i] = (unsigned int)i;
	for (i = nb - 1; i > 0; i--) {
		j = rnd(&s) % (i + 1);
		t = perm[i];
		perm[i] = perm[j];
		perm[j] = t;
	}
	for (i = 0; i < nb; i++)
		memcpy(b + i * bs, a + perm[i] * bs, bs);
	roundtrip(XD_NODE, a, n, b, n, UP_VCD_WINDOW, false);
	roundtrip(XD_PLAIN, a, n, b, n, n, false);
	free(a);
	free(b);
}

/* A 1 MiB firmware-like pair with scattered edits, an insertion that
 * shifts everything after it, a deletion and an appended tail. */
#define FW_OLD		(1024 * 1024)
static uint8_t *
fw_pair(uint8_t **newp, size_t *nlen)
{
	uint8_t		*a, *b, *ins;
	size_t		 o = 0, w = 0, cut1 = 300000, cut2 = 700000, i;
	uint32_t	 s = 5;

	a = malloc(FW_OLD);
	b = malloc(FW_OLD + 8192);
	ins = malloc(2048);
	fw_make(a, FW_OLD, 5);
	fw_make(ins, 2048, 55);
	memcpy(b, a, cut1);
	o = w = cut1;
	memcpy(b + w, ins, 100);		/* insert 100 bytes */
	w += 100;
	memcpy(b + w, a + o, cut2 - o);
	w += cut2 - o;
	o = cut2 + 50;				/* delete 50 bytes */
	memcpy(b + w, a + o, FW_OLD - o);
	w += FW_OLD - o;
	memcpy(b + w, ins, 2048);		/* append 2 KiB */
	w += 2048;
	for (i = 0; i < 80; i++)		/* scattered patches */
		b[rnd(&s) % w] ^= (uint8_t)(1 + rnd(&s) % 255);
	free(ins);
	*newp = b;
	*nlen = w;
	return (a);
}

static void
test_firmware_1mib(void **state)
{
	struct mem	 m;
	uint8_t		*a, *b, *d, *out;
	size_t		 nlen, dlen;
	unsigned int	 steps;

	(void)state;
	a = fw_pair(&b, &nlen);
	out = malloc(nlen);

	/* The node profile: 16 KiB windows, decoded in a 16 KiB buffer,
	 * never reading the target back, in 4 KiB steps. */
	d = xdelta(XD_NODE, a, FW_OLD, b, nlen, &dlen);
	assert_true(dlen < nlen / 4);
	assert_int_equal(decode(d, dlen, a, FW_OLD, out, nlen,
	    UP_VCD_WINDOW, false, 4096, &m, &steps), UP_OK);
	assert_int_equal(m.written, nlen);
	assert_memory_equal(out, b, nlen);
	assert_true(dec.max_window <= UP_VCD_WINDOW);
	assert_int_equal(dec.readbacks, 0);
	/* Steps end between instructions: one COPY may fill a window. */
	assert_true(steps > nlen / UP_VCD_WINDOW);
	print_message("1 MiB firmware: delta %zu bytes, %u windows, "
	    "max window %u, decoder struct %zu bytes + %u buffer\n", dlen,
	    dec.windows, dec.max_window, sizeof(struct up_vcd),
	    UP_VCD_WINDOW);
	/* One byte less of window buffer is refused without read-back. */
	assert_int_equal(decode(d, dlen, a, FW_OLD, out, nlen,
	    dec.max_window - 1, false, 0, &m, NULL), UP_ENOSPC);
	free(d);

	/* xdelta3's default window (8 MiB: one window for 1 MiB) still
	 * decodes in 16 KiB of RAM by reading the output back. */
	d = xdelta(XD_PLAIN, a, FW_OLD, b, nlen, &dlen);
	assert_int_equal(decode(d, dlen, a, FW_OLD, out, nlen,
	    UP_VCD_WINDOW, true, 0, &m, NULL), UP_OK);
	assert_memory_equal(out, b, nlen);
	assert_int_equal(dec.windows, 1);
	assert_int_equal(dec.max_window, nlen);
	/* Even in the smallest buffer. */
	memset(out, 0, nlen);
	assert_int_equal(decode(d, dlen, a, FW_OLD, out, nlen,
	    UP_VCD_BUF_MIN, true, 65536, &m, NULL), UP_OK);
	assert_memory_equal(out, b, nlen);
	/* Without read-back the window does not fit. */
	assert_int_equal(decode(d, dlen, a, FW_OLD, out, nlen,
	    UP_VCD_WINDOW, false, 0, &m, NULL), UP_ENOSPC);
	assert_string_equal(up_vcd_why(&dec), "target window larger than "
	    "the window buffer");
	/* A wrong base gives wrong bytes (caught by image_sha256), or an
	 * error, never a crash. */
	a[12345] ^= 0xff;
	(void)decode(d, dlen, a, FW_OLD, out, nlen, UP_VCD_WINDOW, true, 0,
	    &m, NULL);
	free(d);
	free(out);
	free(a);
	free(b);
}

/* The RAM a node needs: the struct plus the window buffer. */
static void
test_memory_bound(void **state)
{
	(void)state;
	/* Caches (4 + 768) * 4 + 3 section buffers + fields < 4 KiB. */
	assert_true(sizeof(struct up_vcd) <= 4096);
	assert_true(sizeof(struct up_vcd) >=
	    (UP_VCD_NEAR + UP_VCD_SAME * 256) * 4 + 3 * UP_VCD_SECBUF);
	print_message("sizeof(struct up_vcd) = %zu, + UP_VCD_WINDOW %u = "
	    "%zu bytes\n", sizeof(struct up_vcd), UP_VCD_WINDOW,
	    sizeof(struct up_vcd) + UP_VCD_WINDOW);
}

/* xdelta3's own checksum (no -n) is accepted and checked; its default
 * secondary compression and its application header are handled. */
static void
test_xdelta_options(void **state)
{
	struct mem	 m;
	uint8_t		*a, *b, *d, *out;
	size_t		 n = 40000, dlen, i;

	(void)state;
	a = malloc(n);
	b = malloc(n);
	out = malloc(n);
	fw_make(a, n, 6);
	memcpy(b, a, n);
	for (i = 0; i < n; i += 997)
		b[i] ^= 0x5a;

	/* Adler-32 present (VCD_ADLER32 in every window). */
	d = xdelta("-9 -S none -A -W 16384", a, n, b, n, &dlen);
	assert_int_equal(decode(d, dlen, a, n, out, n, UP_VCD_WINDOW, false,
	    0, &m, NULL), UP_OK);
	assert_memory_equal(out, b, n);
	/* A wrong base now fails the window's checksum. */
	a[100] ^= 1;
	assert_int_equal(decode(d, dlen, a, n, out, n, UP_VCD_WINDOW, false,
	    0, &m, NULL), UP_EBADCRC);
	assert_string_equal(up_vcd_why(&dec), "adler32 mismatch");
	a[100] ^= 1;
	free(d);

	/* The application header (no -A) is skipped. */
	d = xdelta("-9 -S none -n -W 16384", a, n, b, n, &dlen);
	assert_int_equal(decode(d, dlen, a, n, out, n, UP_VCD_WINDOW, false,
	    0, &m, NULL), UP_OK);
	assert_memory_equal(out, b, n);
	free(d);

	/* Secondary compression (xdelta3's default) is refused. */
	d = xdelta("-9 -S lzma -A -n", a, n, b, n, &dlen);
	if (dlen > 4 && (d[4] & 0x01)) {
		assert_int_equal(decode(d, dlen, a, n, out, n, UP_VCD_WINDOW,
		    false, 0, &m, NULL), UP_EVERSION);
		assert_int_equal(m.written, 0);
	}
	free(d);
	free(a);
	free(b);
	free(out);
}

/* ------------------------------------------------------------------ */
/* Hand-made RFC 3284 vectors                                          */

/*
 * One window, no source, every address mode and both kinds of double
 * instruction (checked against `xdelta3 -d'):
 *   ADD 3 "abc"; COPY 6 SELF 0 (overlapping: "abcabc"); RUN 4 'z';
 *   COPY 4 HERE 4 (addr 9); COPY 4 NEAR0 +1 (addr 1); COPY 4 SAME0
 *   byte 9 (addr 9); ADD 1 "Q" + COPY 4 SELF 2; COPY 4 SELF 0 + ADD 1 "!".
 */
static const uint8_t vec_modes[] = {
	0xd6, 0xc3, 0xc4, 0x00, 0x00,		/* header */
	0x00, 0x1b, 0x23, 0x00, 0x06, 0x0a, 0x06,	/* window */
	'a', 'b', 'c', 'z', 'Q', '!',		/* data */
	0x04, 0x13, 0x06, 0x00, 0x04, 0x24, 0x34, 0x74, 0xa3, 0xf7,
	0x00, 0x04, 0x01, 0x09, 0x02, 0x00	/* addresses */
};
static const char vec_modes_out[] = "abcabcabczzzzzzzzbcabzzzzQcabcabca!";

/*
 * Two windows: ADD "wxyz"; then a VCD_TARGET window over the 4 target
 * bytes already written: COPY 4 SELF 0 ("wxyz"), COPY 4 SELF 1, which
 * runs from the segment ("xyz") into the window itself ("w").
 */
static const uint8_t vec_target[] = {
	0xd6, 0xc3, 0xc4, 0x00, 0x00,
	0x00, 0x0a, 0x04, 0x00, 0x04, 0x01, 0x00, 'w', 'x', 'y', 'z', 0x05,
	0x02, 0x04, 0x00, 0x09, 0x08, 0x00, 0x00, 0x02, 0x02, 0x14, 0x14,
	0x00, 0x01
};
static const char vec_target_out[] = "wxyzwxyzxyzw";

static void
test_vectors(void **state)
{
	struct mem	 m;
	uint8_t		 out[64], d[64];

	(void)state;
	assert_int_equal(decode(vec_modes, sizeof(vec_modes), NULL, 0, out,
	    sizeof(vec_modes_out) - 1, UP_VCD_BUF_MIN, false, 0, &m, NULL),
	    UP_OK);
	assert_memory_equal(out, vec_modes_out, sizeof(vec_modes_out) - 1);

	assert_int_equal(decode(vec_target, sizeof(vec_target), NULL, 0, out,
	    sizeof(vec_target_out) - 1, UP_VCD_BUF_MIN, true, 0, &m, NULL),
	    UP_OK);
	assert_memory_equal(out, vec_target_out, sizeof(vec_target_out) - 1);
	assert_int_equal(dec.windows, 2);
	assert_true(dec.readbacks > 0);
	/* VCD_TARGET needs target_read. */
	assert_int_equal(decode(vec_target, sizeof(vec_target), NULL, 0, out,
	    sizeof(vec_target_out) - 1, UP_VCD_BUF_MIN, false, 0, &m, NULL),
	    UP_EVERSION);
	assert_int_equal(m.written, 4);
	/* A target longer than expected stops before writing it. */
	assert_int_equal(decode(vec_modes, sizeof(vec_modes), NULL, 0, out,
	    10, UP_VCD_BUF_MIN, false, 0, &m, NULL), UP_ERANGE);
	assert_int_equal(m.written, 0);

	/* Refused features: each header bit, a compressed section. */
	memcpy(d, vec_modes, sizeof(vec_modes));
	d[4] = 0x01;			/* VCD_DECOMPRESS */
	assert_int_equal(decode(d, sizeof(vec_modes), NULL, 0, out, 64,
	    UP_VCD_BUF_MIN, false, 0, &m, NULL), UP_EVERSION);
	d[4] = 0x02;			/* VCD_CODETABLE */
	assert_int_equal(decode(d, sizeof(vec_modes), NULL, 0, out, 64,
	    UP_VCD_BUF_MIN, false, 0, &m, NULL), UP_EVERSION);
	d[4] = 0x08;
	assert_int_equal(decode(d, sizeof(vec_modes), NULL, 0, out, 64,
	    UP_VCD_BUF_MIN, false, 0, &m, NULL), UP_EVERSION);
	d[4] = 0x00;
	d[3] = 'S';			/* open-vcdiff's extended format */
	assert_int_equal(decode(d, sizeof(vec_modes), NULL, 0, out, 64,
	    UP_VCD_BUF_MIN, false, 0, &m, NULL), UP_EVERSION);
	d[3] = 0x00;
	d[8] = 0x01;			/* Delta_Indicator: VCD_DATACOMP */
	assert_int_equal(decode(d, sizeof(vec_modes), NULL, 0, out, 64,
	    UP_VCD_BUF_MIN, false, 0, &m, NULL), UP_EVERSION);
	d[8] = 0x00;
	d[5] = 0x03;			/* VCD_SOURCE | VCD_TARGET */
	assert_int_equal(decode(d, sizeof(vec_modes), NULL, 0, out, 64,
	    UP_VCD_BUF_MIN, false, 0, &m, NULL), UP_ERANGE);
	d[5] = 0x00;
	d[0] = 'V';			/* not VCDIFF */
	assert_int_equal(decode(d, sizeof(vec_modes), NULL, 0, out, 64,
	    UP_VCD_BUF_MIN, false, 0, &m, NULL), UP_ERANGE);
	/* A failing write callback. */
	memset(&m, 0, sizeof(m));
	{
		uint8_t	 buf[UP_VCD_BUF_MIN];

		m.delta = vec_modes;
		m.dlen = sizeof(vec_modes);
		m.out = out;
		m.ocap = sizeof(out);
		m.fail_write = 1;
		assert_int_equal(up_vcd_init(&dec, &io_norb, &m,
		    sizeof(vec_modes), 0, sizeof(out), buf, sizeof(buf)),
		    UP_OK);
		assert_int_equal(up_vcd_run(&dec, 0), UP_EPORT);
		/* Sticky. */
		assert_int_equal(up_vcd_run(&dec, 0), UP_EPORT);
		assert_int_equal(up_vcd_init(&dec, &io_norb, &m, 1, 0, 1,
		    buf, UP_VCD_BUF_MIN - 1), UP_EINVAL);
		assert_int_equal(up_vcd_run(&dec, 0), UP_EINVAL);
	}
}

/* ------------------------------------------------------------------ */
/* Truncated and corrupted deltas                                      */

/* Every prefix: an error, or (cut at a window boundary) fewer bytes. */
static void
check_truncations(const uint8_t *d, size_t dlen, const uint8_t *src,
    size_t slen, size_t tlen, bool readback, size_t buf_len)
{
	struct mem	 m;
	uint8_t		*out;
	size_t		 cut;
	int		 r;

	out = malloc(tlen + 1);
	for (cut = 0; cut < dlen; cut++) {
		r = decode(d, cut, src, slen, out, tlen, buf_len, readback, 0,
		    &m, NULL);
		assert_true(r < 0 || (r == UP_OK && m.written < tlen));
	}
	free(out);
}

/* Flips bytes everywhere: whatever comes out, nothing is touched outside
 * the buffers (the callbacks count it, ASan watches the rest). */
static void
check_corruptions(const uint8_t *d0, size_t dlen, const uint8_t *src,
    size_t slen, size_t tlen, bool readback, size_t buf_len,
    unsigned int *nerr)
{
	static const uint8_t	 flips[] = { 0x01, 0x80, 0xff, 0x7f };
	struct mem		 m;
	uint8_t			*d, *out;
	size_t			 i, f, step;
	int			 r;

	d = malloc(dlen);
	out = malloc(tlen + 1);
	step = dlen > 3000 ? dlen / 3000 : 1;
	for (i = 0; i < dlen; i += step) {
		for (f = 0; f < sizeof(flips); f++) {
			memcpy(d, d0, dlen);
			d[i] ^= flips[f];
			r = decode(d, dlen, src, slen, out, tlen, buf_len,
			    readback, 0, &m, NULL);
			assert_true(r <= UP_OK);
			if (r < 0)
				(*nerr)++;
		}
	}
	free(d);
	free(out);
}

static void
test_truncated_corrupt(void **state)
{
	uint8_t		*a, *b, *d, *g;
	size_t		 n = 48 * 1024, dlen, i;
	unsigned int	 nerr = 0;
	uint32_t	 s = 8;

	(void)state;
	a = malloc(n);
	b = malloc(n + 1000);
	fw_make(a, n, 8);
	memcpy(b, a, n);
	for (i = 0; i < 150; i++)
		b[rnd(&s) % n] ^= (uint8_t)(1 + i);
	memcpy(b + n, a + 77, 1000);
	d = xdelta(XD_NODE, a, n, b, n + 1000, &dlen);
	print_message("truncating and corrupting a %zu-byte delta\n", dlen);
	check_truncations(d, dlen, a, n, n + 1000, false, UP_VCD_WINDOW);
	check_corruptions(d, dlen, a, n, n + 1000, false, UP_VCD_WINDOW,
	    &nerr);
	check_corruptions(d, dlen, a, n, n + 1000, true, UP_VCD_BUF_MIN,
	    &nerr);
	free(d);
	d = xdelta(XD_PLAIN, a, n, b, n + 1000, &dlen);
	check_truncations(d, dlen, a, n, n + 1000, true, 1024);
	free(d);
	/* The hand-made vectors, at every byte. */
	check_truncations(vec_modes, sizeof(vec_modes), NULL, 0, 35, false,
	    UP_VCD_BUF_MIN);
	check_truncations(vec_target, sizeof(vec_target), NULL, 0, 12, true,
	    UP_VCD_BUF_MIN);
	check_corruptions(vec_modes, sizeof(vec_modes), NULL, 0, 35, false,
	    UP_VCD_BUF_MIN, &nerr);
	check_corruptions(vec_target, sizeof(vec_target), NULL, 0, 12, true,
	    UP_VCD_BUF_MIN, &nerr);
	print_message("corrupted deltas: %u of the decodes failed\n", nerr);
	assert_true(nerr > 100);

	/* Garbage after a valid header. */
	g = malloc(512);
	s = 9;
	for (i = 0; i < 3000; i++) {
		struct mem	 m;
		uint8_t		 out[4096];
		size_t		 len = 6 + rnd(&s) % 500;

		fill_random(g, len, rnd(&s));
		memcpy(g, "\xd6\xc3\xc4\x00\x00", 5);
		g[5] &= 0x07;
		(void)decode(g, len, a, n, out, sizeof(out), UP_VCD_BUF_MIN,
		    (i & 1) != 0, 0, &m, NULL);
	}
	free(g);
	free(a);
	free(b);
}

/* ------------------------------------------------------------------ */
/* The node engine applying a delta through a fake port                */

#define E_SLOT		(2 * 1024 * 1024)
#define E_BS		1024
#define E_ID		0x77

struct fake {
	uint32_t	 now;
	uint8_t		 base[E_SLOT];	/* the running slot */
	uint8_t		 slot[E_SLOT];	/* the staging slot */
	uint8_t		 pkg[E_SLOT];	/* the package area */
	uint32_t	 pkg_cap;
	uint8_t		 blob[UP_NODE_STATE_MAX];
	size_t		 blob_len;
	uint8_t		 bm[8192];
	size_t		 bm_len;
	bool		 saved;
	EVP_MD_CTX	*sha;		/* port->sha256_* */
	int		 sig_result;	/* what sig_verify answers */
	unsigned int	 slot_prepares, pkg_prepares, slot_writes;
	unsigned int	 pkg_writes, results, accepts;
	uint8_t		 accept_code, result_state, result_code;
};

static struct fake	 F;
static struct up_node	 N;
static uint8_t		 n_bitmap[8192];
static struct up_vcd	 n_vcd;
static uint8_t		 n_win[UP_VCD_WINDOW];

static int
f_send(void *ctx, const uint8_t *p, size_t n)
{
	struct up_msg	 m;

	(void)ctx;
	assert_int_equal(up_decode(p, n, &m), UP_OK);
	if (m.type == UP_T_ACCEPT) {
		F.accepts++;
		F.accept_code = m.u.accept.code;
	} else if (m.type == UP_T_RESULT) {
		F.results++;
		F.result_state = m.u.result.state;
		F.result_code = m.u.result.result;
	}
	return (0);
}

static uint32_t
f_now(void *ctx)
{
	(void)ctx;
	return (F.now);
}

static uint32_t
f_random(void *ctx)
{
	(void)ctx;
	return (7);
}

static int
f_save(void *ctx, const uint8_t *st, size_t sl, const uint8_t *bm,
    size_t bl)
{
	(void)ctx;
	assert_true(sl <= sizeof(F.blob) && bl <= sizeof(F.bm));
	memcpy(F.blob, st, sl);
	F.blob_len = sl;
	memcpy(F.bm, bm, bl);
	F.bm_len = bl;
	F.saved = true;
	return (0);
}

static int
f_load(void *ctx, uint8_t *st, size_t scap, size_t *sl, uint8_t *bm,
    size_t bcap, size_t *bl)
{
	(void)ctx;
	if (!F.saved || F.blob_len > scap || F.bm_len > bcap)
		return (-1);
	memcpy(st, F.blob, F.blob_len);
	*sl = F.blob_len;
	memcpy(bm, F.bm, F.bm_len);
	*bl = F.bm_len;
	return (0);
}

static uint32_t
f_slot_capacity(void *ctx)
{
	(void)ctx;
	return (E_SLOT);
}

/* Counts erases begun (the first step, at offset 0). */
static int
f_slot_erase(void *ctx, uint32_t off, uint32_t len)
{
	(void)ctx;
	assert_true(off <= E_SLOT && len <= E_SLOT - off);
	memset(F.slot + off, 0xff, len);
	if (off == 0)
		F.slot_prepares++;
	return (0);
}

static int
f_slot_write(void *ctx, uint32_t off, const uint8_t *p, size_t n)
{
	(void)ctx;
	assert_true(off <= E_SLOT && n <= E_SLOT - off);
	memcpy(F.slot + off, p, n);
	F.slot_writes++;
	return (0);
}

static int
f_slot_read(void *ctx, uint32_t off, uint8_t *p, size_t n)
{
	(void)ctx;
	assert_true(off <= E_SLOT && n <= E_SLOT - off);
	memcpy(p, F.slot + off, n);
	return (0);
}

static int
f_sha_begin(void *ctx)
{
	(void)ctx;
	if (F.sha == NULL)
		assert_non_null(F.sha = EVP_MD_CTX_new());
	assert_int_equal(EVP_DigestInit_ex(F.sha, EVP_sha256(), NULL), 1);
	return (0);
}

static int
f_sha_update(void *ctx, const uint8_t *p, size_t n)
{
	(void)ctx;
	assert_int_equal(EVP_DigestUpdate(F.sha, p, n), 1);
	return (0);
}

static int
f_sha_end(void *ctx, uint8_t md[32])
{
	unsigned int	 n = 0;

	(void)ctx;
	assert_int_equal(EVP_DigestFinal_ex(F.sha, md, &n), 1);
	return (0);
}

/* The cloud's signature: the test decides. */
static int
f_sig_verify(void *ctx, const struct up_offer *o, const uint8_t *d,
    size_t n)
{
	(void)ctx;
	(void)o;
	(void)d;
	(void)n;
	return (F.sig_result);
}

static int
f_activate(void *ctx, const struct up_offer *o)
{
	(void)ctx;
	(void)o;
	return (0);
}

static uint32_t
f_pkg_capacity(void *ctx)
{
	(void)ctx;
	return (F.pkg_cap);
}

static int
f_pkg_erase(void *ctx, uint32_t off, uint32_t len)
{
	(void)ctx;
	assert_true(off <= F.pkg_cap && len <= F.pkg_cap - off);
	if (off == 0)
		F.pkg_prepares++;
	return (0);
}

static int
f_pkg_write(void *ctx, uint32_t off, const uint8_t *p, size_t n)
{
	(void)ctx;
	assert_true(off <= F.pkg_cap && n <= F.pkg_cap - off);
	memcpy(F.pkg + off, p, n);
	F.pkg_writes++;
	return (0);
}

static int
f_pkg_read(void *ctx, uint32_t off, uint8_t *p, size_t n)
{
	(void)ctx;
	assert_true(off <= F.pkg_cap && n <= F.pkg_cap - off);
	memcpy(p, F.pkg + off, n);
	return (0);
}

static int
f_base_read(void *ctx, uint32_t off, uint8_t *p, size_t n)
{
	(void)ctx;
	assert_true(off <= E_SLOT && n <= E_SLOT - off);
	memcpy(p, F.base + off, n);
	return (0);
}

static const struct up_port e_port = {
	.send = f_send, .now_ms = f_now, .random = f_random,
	.save = f_save, .load = f_load,
	.slot_capacity = f_slot_capacity, .slot_erase = f_slot_erase,
	.slot_write = f_slot_write, .slot_read = f_slot_read,
	.sha256_begin = f_sha_begin, .sha256_update = f_sha_update,
	.sha256_end = f_sha_end, .sig_verify = f_sig_verify,
	.activate = f_activate,
	.pkg_capacity = f_pkg_capacity, .pkg_erase = f_pkg_erase,
	.pkg_write = f_pkg_write, .pkg_read = f_pkg_read,
	.base_read = f_base_read
};

/* The same port before delta support: no package area. */
static const struct up_port e_port_old = {
	.send = f_send, .now_ms = f_now, .random = f_random,
	.save = f_save, .load = f_load,
	.slot_capacity = f_slot_capacity, .slot_erase = f_slot_erase,
	.slot_write = f_slot_write, .slot_read = f_slot_read,
	.sha256_begin = f_sha_begin, .sha256_update = f_sha_update,
	.sha256_end = f_sha_end, .sig_verify = f_sig_verify,
	.activate = f_activate
};

/* Work in steps of the engine (up_node.c NODE_W_*), for the asserts. */
#define W_NONE		0
#define W_HASH		2
#define W_APPLY		4

/* Boots a fresh engine from F's saved state. */
static void
e_boot(const struct up_port *port, bool delta_mem)
{
	struct up_node_info info;

	memset(&info, 0, sizeof(info));
	info.node_id = E_ID;
	strcpy(info.hw, "sim-1");
	info.max_frame = UP_FRAME_MAX;
	info.ncomp = 1;
	strcpy(info.comp[0].name, "app");
	strcpy(info.comp[0].version, "1.0.0");
	memset(&N, 0x5a, sizeof(N));
	up_node_init(&N, port, NULL, &info, n_bitmap, sizeof(n_bitmap));
	if (delta_mem)
		up_node_set_delta_mem(&N, &n_vcd, n_win, sizeof(n_win));
	assert_int_equal(up_node_start(&N, NULL), UP_OK);
}

static int
e_setup(void **state)
{
	(void)state;
	EVP_MD_CTX_free(F.sha);
	memset(&F, 0, sizeof(F));
	F.now = 1000;
	F.pkg_cap = E_SLOT;
	F.sig_result = UP_R_INITIAL;
	return (0);
}

/* Ticks while the engine erases (a new transfer's package area). */
static void
e_erase(void)
{
	unsigned int	 ticks = 0;

	while (N.work == 1) {
		up_node_tick(&N);
		assert_true(++ticks < 100000);
	}
}

static int
e_feed(struct up_msg *m)
{
	uint8_t		 buf[UP_FRAME_MAX];
	int		 len, e;

	len = up_encode(m, buf, sizeof(buf));
	assert_true(len > 0);
	e = up_node_input(&N, buf, (size_t)len);
	e_erase();
	return (e);
}

static void
e_sha(const uint8_t *p, size_t len, uint8_t md[32])
{
	unsigned int	 n = 0;

	assert_int_equal(EVP_Digest(p, len, md, &n, EVP_sha256(), NULL), 1);
}

static uint8_t *e_old, *e_new, *e_delta;
static size_t	 e_nlen, e_dlen;

/* The package sent and the image it makes; their digests go in the
 * offer (NULL: zeros, for offers that are declined anyway). */
static const uint8_t *e_pkg_bytes, *e_img_bytes;

static void
e_offer(uint32_t session, const char *from, uint8_t format, uint32_t size,
    uint32_t image_size)
{
	struct up_msg	 m;
	struct up_offer	*o = &m.u.offer;

	memset(&m, 0, sizeof(m));
	m.type = UP_T_OFFER;
	m.session = session;
	strcpy(o->component, "app");
	strcpy(o->from_version, from);
	strcpy(o->to_version, "1.1.0");
	o->kind = UP_KIND_DELTA;
	o->delta_format = format;
	o->size = size;
	o->image_size = image_size;
	if (e_pkg_bytes != NULL && size == e_dlen)
		e_sha(e_pkg_bytes, size, o->sha256);
	if (e_img_bytes != NULL && image_size == e_nlen)
		e_sha(e_img_bytes, image_size, o->image_sha256);
	o->sig_alg = UP_SIG_ED25519;
	o->sig_len = 64;
	o->block_size = E_BS;
	o->nblocks = up_nblocks(size, E_BS);
	F.accepts = 0;
	(void)e_feed(&m);
}

static void
e_send_all(uint32_t session, const uint8_t *pkg, size_t len)
{
	struct up_msg	 m;
	uint32_t	 i, nb = up_nblocks((uint32_t)len, E_BS);

	for (i = 0; i < nb; i++) {
		memset(&m, 0, sizeof(m));
		m.type = UP_T_DATA;
		m.session = session;
		m.u.data.index = i;
		m.u.data.data = pkg + (size_t)i * E_BS;
		m.u.data.len = (uint16_t)(i == nb - 1 ?
		    len - (size_t)i * E_BS : E_BS);
		assert_int_equal(e_feed(&m), UP_OK);
	}
}

static void
e_verify(uint32_t session)
{
	struct up_msg	 m;

	memset(&m, 0, sizeof(m));
	m.type = UP_T_VERIFY;
	m.session = session;
	assert_int_equal(e_feed(&m), UP_OK);
}

/* Ticks until the checks and the apply end; returns the ticks. */
static unsigned int
e_apply(void)
{
	unsigned int	 ticks = 0;

	while (N.work != W_NONE) {
		assert_int_equal(up_node_next_ms(&N), 0);
		up_node_tick(&N);
		assert_true(++ticks < 100000);
	}
	return (ticks);
}


static int
e_group_setup(void **state)
{
	(void)state;
	e_old = fw_pair(&e_new, &e_nlen);
	e_delta = xdelta(XD_NODE, e_old, FW_OLD, e_new, e_nlen, &e_dlen);
	e_pkg_bytes = e_delta;
	e_img_bytes = e_new;
	return (0);
}

static void
test_engine_delta(void **state)
{
	unsigned int	 ticks;
	uint8_t		 st;

	(void)state;
	memcpy(F.base, e_old, FW_OLD);
	e_boot(&e_port, true);
	e_offer(0x5e550001, "1.0.0", UP_DELTA_VCDIFF, (uint32_t)e_dlen,
	    (uint32_t)e_nlen);
	assert_int_equal(F.accepts, 1);
	assert_int_equal(F.accept_code, UP_R_INITIAL);
	assert_int_equal(up_node_get_state(&N, NULL, NULL), UP_NS_RECEIVING);
	/* The delta goes to the package area; the slot is not touched. */
	assert_int_equal(F.pkg_prepares, 1);
	assert_int_equal(F.slot_prepares, 0);
	e_send_all(0x5e550001, e_delta, e_dlen);
	assert_int_equal(up_node_get_state(&N, NULL, NULL),
	    UP_NS_DOWNLOADED);
	assert_int_equal(F.slot_writes, 0);
	assert_memory_equal(F.pkg, e_delta, e_dlen);

	/*
	 * VERIFY: the package is hashed, then the slot erased and the
	 * apply runs, all in steps.
	 */
	e_verify(0x5e550001);
	assert_int_equal(N.work, W_HASH);
	assert_int_equal(F.slot_prepares, 0);
	while (N.work != W_APPLY) {
		assert_int_equal(up_node_next_ms(&N), 0);
		up_node_tick(&N);
	}
	assert_int_equal(F.slot_prepares, 1);
	assert_int_equal(F.results, 0);
	up_node_tick(&N);
	/* A repeated VERIFY while applying gets no early answer. */
	e_verify(0x5e550001);
	assert_int_equal(F.results, 0);
	assert_int_equal(up_node_get_state(&N, NULL, NULL),
	    UP_NS_DOWNLOADED);
	ticks = e_apply();
	assert_true(ticks + 1 >= e_nlen / UP_NODE_APPLY_STEP);
	st = up_node_get_state(&N, NULL, NULL);
	assert_int_equal(st, UP_NS_VERIFIED);
	assert_memory_equal(F.slot, e_new, e_nlen);
	assert_int_equal(F.results, 1);
	assert_int_equal(F.result_state, UP_NS_VERIFIED);
	/* Repeated VERIFY: the same answer, no second apply. */
	e_verify(0x5e550001);
	assert_int_equal(F.results, 2);
	assert_int_equal(F.slot_prepares, 1);
}

static void
test_engine_delta_declines(void **state)
{
	(void)state;
	/* A port without a package area, or no decoder memory. */
	e_boot(&e_port_old, true);
	e_offer(1, "1.0.0", UP_DELTA_VCDIFF, 1000, 2000);
	assert_int_equal(F.accept_code, UP_R_UNSUPPORTED);
	e_boot(&e_port, false);
	e_offer(2, "1.0.0", UP_DELTA_VCDIFF, 1000, 2000);
	assert_int_equal(F.accept_code, UP_R_UNSUPPORTED);
	e_boot(&e_port, true);
	/* The base it does not run; an unknown delta format. */
	e_offer(3, "0.9.0", UP_DELTA_VCDIFF, 1000, 2000);
	assert_int_equal(F.accept_code, UP_R_BASE_MISMATCH);
	e_offer(4, "1.0.0", 7, 1000, 2000);
	assert_int_equal(F.accept_code, UP_R_UNSUPPORTED);
	/* Too big for the package area, or the image for the slot. */
	F.pkg_cap = 999;
	e_offer(5, "1.0.0", UP_DELTA_VCDIFF, 1000, 2000);
	assert_int_equal(F.accept_code, UP_R_NO_SPACE);
	F.pkg_cap = E_SLOT;
	e_offer(6, "1.0.0", UP_DELTA_VCDIFF, 1000, E_SLOT + 1);
	assert_int_equal(F.accept_code, UP_R_NO_SPACE);
	assert_int_equal(up_node_get_state(&N, NULL, NULL), UP_NS_IDLE);
	assert_int_equal(F.pkg_prepares, 0);
	/* Both fit: accepted. */
	e_offer(7, "1.0.0", UP_DELTA_VCDIFF, E_SLOT, E_SLOT);
	assert_int_equal(F.accept_code, UP_R_INITIAL);
}

/* A base that is not what the delta was made from: FAILED(integrity). */
static void
test_engine_delta_wrong_base(void **state)
{
	uint8_t		 res;

	(void)state;
	memcpy(F.base, e_old, FW_OLD);
	F.base[4242] ^= 0x10;
	e_boot(&e_port, true);
	e_offer(9, "1.0.0", UP_DELTA_VCDIFF, (uint32_t)e_dlen,
	    (uint32_t)e_nlen);
	e_send_all(9, e_delta, e_dlen);
	e_verify(9);
	(void)e_apply();
	assert_int_equal(up_node_get_state(&N, NULL, &res), UP_NS_FAILED);
	assert_int_equal(res, UP_R_INTEGRITY);
	assert_int_equal(F.result_state, UP_NS_FAILED);
	assert_int_equal(F.result_code, UP_R_INTEGRITY);
}

/* A malformed delta (signed, but broken): FAILED(failed), no crash. */
static void
test_engine_delta_malformed(void **state)
{
	uint8_t		*bad, res;

	(void)state;
	memcpy(F.base, e_old, FW_OLD);
	bad = malloc(e_dlen);
	memcpy(bad, e_delta, e_dlen);
	memset(bad + e_dlen / 2, 0xff, 64);
	e_boot(&e_port, true);
	/* Signed as it is (the digest of the broken bytes). */
	e_pkg_bytes = bad;
	e_offer(10, "1.0.0", UP_DELTA_VCDIFF, (uint32_t)e_dlen,
	    (uint32_t)e_nlen);
	e_pkg_bytes = e_delta;
	e_send_all(10, bad, e_dlen);
	e_verify(10);
	(void)e_apply();
	assert_int_equal(up_node_get_state(&N, NULL, &res), UP_NS_FAILED);
	assert_true(res == UP_R_FAILED || res == UP_R_INTEGRITY);
	free(bad);
	/* A package that fails its own check is never applied. */
	memset(&F.slot_prepares, 0, sizeof(F.slot_prepares));
	e_offer(11, "1.0.0", UP_DELTA_VCDIFF, (uint32_t)e_dlen,
	    (uint32_t)e_nlen);
	e_send_all(11, e_delta, e_dlen);
	F.sig_result = UP_R_SIGNATURE;
	e_verify(11);
	(void)e_apply();
	assert_int_equal(F.slot_prepares, 0);
	assert_int_equal(up_node_get_state(&N, NULL, &res), UP_NS_FAILED);
	assert_int_equal(res, UP_R_SIGNATURE);
}

/* A power cut in the middle of the apply: DOWNLOADED after the reboot,
 * the next VERIFY applies again from the start. */
static void
test_engine_delta_powercut(void **state)
{
	(void)state;
	memcpy(F.base, e_old, FW_OLD);
	e_boot(&e_port, true);
	e_offer(12, "1.0.0", UP_DELTA_VCDIFF, (uint32_t)e_dlen,
	    (uint32_t)e_nlen);
	e_send_all(12, e_delta, e_dlen);
	e_verify(12);
	while (N.work != W_APPLY)
		up_node_tick(&N);
	up_node_tick(&N);
	assert_int_equal(N.work, W_APPLY);
	e_boot(&e_port, true);
	assert_int_equal(N.work, W_NONE);
	assert_int_equal(up_node_get_state(&N, NULL, NULL),
	    UP_NS_DOWNLOADED);
	e_verify(12);
	(void)e_apply();
	assert_int_equal(up_node_get_state(&N, NULL, NULL), UP_NS_VERIFIED);
	assert_memory_equal(F.slot, e_new, e_nlen);
}

/* An ABORT in the middle of an apply stops it: IDLE, nothing more. */
static void
test_engine_delta_abort(void **state)
{
	struct up_msg	 m;
	unsigned int	 writes;

	(void)state;
	memcpy(F.base, e_old, FW_OLD);
	e_boot(&e_port, true);
	e_offer(13, "1.0.0", UP_DELTA_VCDIFF, (uint32_t)e_dlen,
	    (uint32_t)e_nlen);
	e_send_all(13, e_delta, e_dlen);
	e_verify(13);
	while (N.work != W_APPLY)
		up_node_tick(&N);
	up_node_tick(&N);
	assert_int_equal(N.work, W_APPLY);
	memset(&m, 0, sizeof(m));
	m.type = UP_T_ABORT;
	m.session = 13;
	m.u.target.reason = UP_R_ABORTED;
	assert_int_equal(e_feed(&m), UP_OK);
	assert_int_equal(N.work, W_NONE);
	assert_int_equal(up_node_get_state(&N, NULL, NULL), UP_NS_IDLE);
	writes = F.slot_writes;
	up_node_tick(&N);
	assert_int_equal(F.slot_writes, writes);
	assert_true(up_node_next_ms(&N) > 0);
}

static int
e_group_teardown(void **state)
{
	(void)state;
	free(e_old);
	free(e_new);
	free(e_delta);
	return (0);
}

int
main(void)
{
	const struct CMUnitTest decoder[] = {
		cmocka_unit_test(test_memory_bound),
		cmocka_unit_test(test_vectors),
		cmocka_unit_test(test_identical),
		cmocka_unit_test(test_appended),
		cmocka_unit_test(test_changed_bytes),
		cmocka_unit_test(test_shuffled_blocks),
		cmocka_unit_test(test_firmware_1mib),
		cmocka_unit_test(test_xdelta_options),
		cmocka_unit_test(test_truncated_corrupt),
	};
	const struct CMUnitTest engine[] = {
		cmocka_unit_test_setup(test_engine_delta, e_setup),
		cmocka_unit_test_setup(test_engine_delta_declines, e_setup),
		cmocka_unit_test_setup(test_engine_delta_wrong_base,
		    e_setup),
		cmocka_unit_test_setup(test_engine_delta_malformed, e_setup),
		cmocka_unit_test_setup(test_engine_delta_powercut, e_setup),
		cmocka_unit_test_setup(test_engine_delta_abort, e_setup),
	};
	char		 cmd[128];
	int		 rc;

	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_up_vcdiff.XXXXXX");
	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		return (1);
	}
	rc = cmocka_run_group_tests_name("vcdiff decoder", decoder, NULL,
	    NULL);
	rc |= cmocka_run_group_tests_name("node engine deltas", engine,
	    e_group_setup, e_group_teardown);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		rc |= 1;
	return (rc);
}
