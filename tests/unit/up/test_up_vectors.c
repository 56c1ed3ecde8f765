/*
 * test_up_vectors.c: the test vectors of docs/up-protocol.md §10 against
 * the codec.  The document is read from the source tree at run time, so
 * the code and the normative text cannot drift apart: every `upvector'
 * block must decode as its `expect:' line says (and a valid one must
 * re-encode to the same bytes), every `upcrc' block must match, every
 * `updesc' block must be up_desc_encode() of its OFFER, every `upver'
 * comparison must hold both ways (up_version_cmp), and every message
 * type must have at least one valid vector, in the full form and in the
 * compact form (§10.8, `form: compact').  Status vectors with `missing:'
 * or `need:' are walked with up/up_status.c; every `upseg' block (§10.10)
 * must be what up_seg_build() makes of its message, and must reassemble
 * to it in several orders.
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
#include <openssl/evp.h>

#include "up.h"

#define DOC_PATH	UB_SOURCE_DIR "/docs/up-protocol.md"
#define MAX_VECS	256
#define MAX_BYTES	(UP_FRAME_MAX + 64)
#define MAX_CMPS	32
#define MAX_LINES	80

struct block {
	char		 kind[16];	/* upvector, upcrc, updesc, upseg */
	char		 name[64];
	char		 type[32];
	char		 expect[32];
	char		 alg[16];
	char		 ascii[128];
	char		 value[32];
	char		 cmp[MAX_CMPS][80];	/* upver: "A OP B" */
	int		 ncmp;
	char		 form[16];	/* "compact" or "" */
	char		 missing[128];	/* ranges, "" = none */
	char		 need[128];	/* group:rows,... */
	char		 message[64];	/* upseg: its message */
	long		 nblocks;	/* -1 = not given */
	long		 ngroups;
	long		 described;
	long		 mtu;
	int		 has_ascii;
	int		 has_missing;
	uint8_t		 b[MAX_BYTES];
	size_t		 n;
	size_t		 line_end[MAX_LINES];	/* upseg: frame ends */
	int		 nlines;
	int		 line;
};

static struct block	 blocks[MAX_VECS];
static int		 nblocks_doc;

/* The RFC 8032 §7.1 TEST 1 public key that signs `offer-full' (§10.3). */
static const uint8_t	 rfc8032_pub[32] = {
	0xd7, 0x5a, 0x98, 0x01, 0x82, 0xb1, 0x0a, 0xb7, 0xd5, 0x4b, 0xfe,
	0xd3, 0xc9, 0x64, 0x07, 0x3a, 0x0e, 0xe1, 0x72, 0xf3, 0xda, 0xa6,
	0x23, 0x25, 0xaf, 0x02, 0x1a, 0x68, 0xf7, 0x07, 0x51, 0x1a
};

static const struct {
	const char	*name;
	int		 v;
} names[] = {
	{ "ANNOUNCE", UP_T_ANNOUNCE }, { "DISCOVER", UP_T_DISCOVER },
	{ "OFFER", UP_T_OFFER }, { "ACCEPT", UP_T_ACCEPT },
	{ "DATA", UP_T_DATA }, { "PARITY", UP_T_PARITY },
	{ "STATUS_REQ", UP_T_STATUS_REQ }, { "STATUS", UP_T_STATUS },
	{ "VERIFY", UP_T_VERIFY }, { "ACTIVATE", UP_T_ACTIVATE },
	{ "RESULT", UP_T_RESULT }, { "RESULT_ACK", UP_T_RESULT_ACK },
	{ "ABORT", UP_T_ABORT }, { "XOR", UP_T_XOR }, { "SEG", UP_T_SEG }
}, errs[] = {
	{ "ok", UP_OK }, { "ESHORT", UP_ESHORT }, { "EBADCRC", UP_EBADCRC },
	{ "EVERSION", UP_EVERSION }, { "ETYPE", UP_ETYPE },
	{ "ELEN", UP_ELEN }, { "ERANGE", UP_ERANGE }
};

static int
lookup_type(const char *s)
{
	size_t	 i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(names[i].name, s) == 0)
			return (names[i].v);
	return (-1);
}

static int
lookup_err(const char *s, int *v)
{
	size_t	 i;

	for (i = 0; i < sizeof(errs) / sizeof(errs[0]); i++)
		if (strcmp(errs[i].name, s) == 0) {
			*v = errs[i].v;
			return (0);
		}
	return (-1);
}

static void
copy_val(char *dst, size_t cap, const char *src)
{
	size_t	 n;

	while (*src == ' ' || *src == '\t')
		src++;
	n = strlen(src);
	while (n > 0 && isspace((unsigned char)src[n - 1]))
		n--;
	if (n >= cap)
		fail_msg("value too long: %s", src);
	memcpy(dst, src, n);
	dst[n] = '\0';
}

/* Appends the hex pairs of one line (comment already cut) to b. */
static void
parse_hex(struct block *b, const char *s, int line)
{
	unsigned int	 v;

	for (;;) {
		while (*s == ' ' || *s == '\t')
			s++;
		if (*s == '\0' || *s == '\n' || *s == '\r')
			return;
		if (!isxdigit((unsigned char)s[0]) ||
		    !isxdigit((unsigned char)s[1]) ||
		    (s[2] != '\0' && !isspace((unsigned char)s[2])))
			fail_msg("line %d: bad hex near \"%.8s\"", line, s);
		if (sscanf(s, "%2x", &v) != 1)
			fail_msg("line %d: bad hex", line);
		if (b->n >= MAX_BYTES)
			fail_msg("line %d: vector too long", line);
		b->b[b->n++] = (uint8_t)v;
		s += 2;
	}
}

static void
load_doc(void)
{
	FILE		*f;
	char		 line[4096], *p;
	struct block	*b = NULL;
	int		 lineno = 0, in_hex = 0;

	if (nblocks_doc > 0)
		return;
	if ((f = fopen(DOC_PATH, "r")) == NULL)
		fail_msg("cannot open %s", DOC_PATH);
	while (fgets(line, sizeof(line), f) != NULL) {
		lineno++;
		if (strchr(line, '\n') == NULL && !feof(f))
			fail_msg("line %d too long", lineno);
		if (b == NULL) {
			if (strncmp(line, "```up", 5) != 0)
				continue;
			if (nblocks_doc >= MAX_VECS)
				fail_msg("too many vector blocks");
			b = &blocks[nblocks_doc++];
			memset(b, 0, sizeof(*b));
			copy_val(b->kind, sizeof(b->kind), line + 3);
			b->line = lineno;
			b->nblocks = b->ngroups = b->described = b->mtu = -1;
			in_hex = 0;
			continue;
		}
		if (strncmp(line, "```", 3) == 0) {
			b = NULL;
			continue;
		}
		/* `ascii:' is verbatim; elsewhere `#' starts a comment. */
		if (strncmp(line, "ascii:", 6) == 0 && !in_hex) {
			p = line + 6;
			if (*p == ' ')
				p++;
			p[strcspn(p, "\r\n")] = '\0';
			if (strlen(p) >= sizeof(b->ascii))
				fail_msg("line %d: ascii too long", lineno);
			strcpy(b->ascii, p);
			b->has_ascii = 1;
			continue;
		}
		if ((p = strchr(line, '#')) != NULL)
			*p = '\0';
		if (in_hex) {
			parse_hex(b, line, lineno);
			/* upseg: one frame per line. */
			if (b->n > 0 && (b->nlines == 0 ||
			    b->line_end[b->nlines - 1] != b->n)) {
				if (b->nlines >= MAX_LINES)
					fail_msg("line %d: too many lines",
					    lineno);
				b->line_end[b->nlines++] = b->n;
			}
			continue;
		}
		if ((p = strchr(line, ':')) == NULL) {
			copy_val(line, sizeof(line), line);
			if (line[0] == '\0')
				continue;
			fail_msg("line %d: expected key: value", lineno);
		}
		*p++ = '\0';
		if (strcmp(line, "name") == 0)
			copy_val(b->name, sizeof(b->name), p);
		else if (strcmp(line, "type") == 0)
			copy_val(b->type, sizeof(b->type), p);
		else if (strcmp(line, "expect") == 0)
			copy_val(b->expect, sizeof(b->expect), p);
		else if (strcmp(line, "alg") == 0)
			copy_val(b->alg, sizeof(b->alg), p);
		else if (strcmp(line, "value") == 0)
			copy_val(b->value, sizeof(b->value), p);
		else if (strcmp(line, "cmp") == 0) {
			if (b->ncmp >= MAX_CMPS)
				fail_msg("line %d: too many cmp lines", lineno);
			copy_val(b->cmp[b->ncmp++], sizeof(b->cmp[0]), p);
		}
		else if (strcmp(line, "form") == 0)
			copy_val(b->form, sizeof(b->form), p);
		else if (strcmp(line, "missing") == 0) {
			copy_val(b->missing, sizeof(b->missing), p);
			b->has_missing = 1;
		} else if (strcmp(line, "need") == 0)
			copy_val(b->need, sizeof(b->need), p);
		else if (strcmp(line, "message") == 0)
			copy_val(b->message, sizeof(b->message), p);
		else if (strcmp(line, "nblocks") == 0)
			b->nblocks = strtol(p, NULL, 10);
		else if (strcmp(line, "ngroups") == 0)
			b->ngroups = strtol(p, NULL, 10);
		else if (strcmp(line, "described") == 0)
			b->described = strtol(p, NULL, 10);
		else if (strcmp(line, "mtu") == 0)
			b->mtu = strtol(p, NULL, 10);
		else if (strcmp(line, "hex") == 0) {
			in_hex = 1;
			parse_hex(b, p, lineno);
		} else
			fail_msg("line %d: unknown key %s", lineno, line);
	}
	fclose(f);
	if (b != NULL)
		fail_msg("unterminated vector block at line %d", b->line);
}

static const struct block *
find_vector(const char *name)
{
	int	 i;

	for (i = 0; i < nblocks_doc; i++)
		if (strcmp(blocks[i].kind, "upvector") == 0 &&
		    strcmp(blocks[i].name, name) == 0)
			return (&blocks[i]);
	return (NULL);
}

static void
test_doc_crc(void **state)
{
	int		 i, n32 = 0, n16 = 0;
	unsigned long	 want;
	const struct block *b;

	load_doc();
	for (i = 0; i < nblocks_doc; i++) {
		b = &blocks[i];
		if (strcmp(b->kind, "upcrc") != 0)
			continue;
		assert_true(b->has_ascii);
		want = strtoul(b->value, NULL, 16);
		if (strcmp(b->alg, "crc32") == 0) {
			assert_int_equal(up_crc32(0, b->ascii,
			    strlen(b->ascii)), want);
			n32++;
		} else if (strcmp(b->alg, "crc16") == 0) {
			assert_int_equal(up_crc16_ccitt(UP_CRC16_INIT,
			    b->ascii, strlen(b->ascii)), want);
			n16++;
		} else
			fail_msg("line %d: unknown alg %s", b->line, b->alg);
	}
	assert_true(n32 >= 1);
	assert_true(n16 >= 1);
}

/* Parses "2,4,11-13" into want[] (1 = listed), nblocks entries. */
static void
parse_ranges(const char *s, uint8_t *want, long nblocks)
{
	char		*end;
	long		 a, z, i;

	memset(want, 0, (size_t)nblocks);
	while (*s != '\0') {
		a = strtol(s, &end, 10);
		z = a;
		if (*end == '-')
			z = strtol(end + 1, &end, 10);
		assert_true(a >= 0 && z >= a && z < nblocks);
		for (i = a; i <= z; i++)
			want[i] = 1;
		s = *end == ',' ? end + 1 : end;
	}
}

static uint8_t	 seen_missing[300000];

static void
mark_missing(void *arg, uint32_t idx)
{
	long	*n = arg;

	assert_true(idx < sizeof(seen_missing));
	assert_int_equal(seen_missing[idx], 0);
	seen_missing[idx] = 1;
	(*n)++;
}

static char	 need_seen[256];

static void
put_need(void *arg, uint32_t group, uint32_t need)
{
	size_t	 len = strlen(need_seen);

	(void)arg;
	snprintf(need_seen + len, sizeof(need_seen) - len, "%s%u:%u",
	    len > 0 ? "," : "", (unsigned)group, (unsigned)need);
}

/* The status body of a decoded ACCEPT or STATUS against its keys. */
static void
check_status(const struct block *b, const struct up_msg *m)
{
	static uint8_t	 want[300000];
	const struct up_status_body *st;
	long		 n = 0, i;

	st = m->type == UP_T_ACCEPT ? &m->u.accept.st : &m->u.status.st;
	if (b->has_missing) {
		assert_true(b->nblocks > 0 &&
		    b->nblocks <= (long)sizeof(want));
		assert_int_equal(up_status_check(st, (uint32_t)b->nblocks, 0),
		    UP_OK);
		parse_ranges(b->missing, want, b->nblocks);
		memset(seen_missing, 0, (size_t)b->nblocks);
		up_status_foreach_missing(st, (uint32_t)b->nblocks,
		    mark_missing, &n);
		for (i = 0; i < b->nblocks; i++)
			if (want[i] != seen_missing[i])
				fail_msg("vector %s: block %ld %s", b->name, i,
				    want[i] ? "not missing" : "missing");
		assert_int_equal(up_status_described(st, (uint32_t)b->nblocks,
		    0), b->described >= 0 ? b->described : b->nblocks);
	}
	if (b->need[0] != '\0') {
		assert_true(b->ngroups > 0);
		assert_int_equal(up_status_check(st, 1000000,
		    (uint32_t)b->ngroups), UP_OK);
		need_seen[0] = '\0';
		assert_int_equal(up_status_foreach_need(st,
		    (uint32_t)b->ngroups, put_need, NULL), UP_OK);
		assert_string_equal(need_seen, b->need);
	}
}

static void
test_doc_vectors(void **state)
{
	int		 i, j, t, want = 0, e, n, seen[16], cseen[16];
	int		 nbad = 0, ncbad = 0, compact;
	const struct block *b;
	struct up_msg	 m;
	uint8_t		 out[MAX_BYTES];

	load_doc();
	memset(seen, 0, sizeof(seen));
	memset(cseen, 0, sizeof(cseen));
	for (i = 0; i < nblocks_doc; i++) {
		b = &blocks[i];
		if (strcmp(b->kind, "upvector") != 0)
			continue;
		print_message("vector %s (line %d)\n", b->name, b->line);
		assert_true(b->name[0] != '\0');
		for (j = 0; j < i; j++)
			if (strcmp(blocks[j].name, b->name) == 0 &&
			    strcmp(blocks[j].kind, "upvector") == 0)
				fail_msg("vector %s twice", b->name);
		if ((t = lookup_type(b->type)) < 0)
			fail_msg("vector %s: unknown type %s", b->name,
			    b->type);
		if (lookup_err(b->expect, &want) != 0)
			fail_msg("vector %s: unknown expect %s", b->name,
			    b->expect);
		assert_true(b->n > 0);
		compact = strcmp(b->form, "compact") == 0;
		if (!compact && b->form[0] != '\0')
			fail_msg("vector %s: unknown form %s", b->name,
			    b->form);
		e = compact ? up_cdecode(b->b, b->n, &m) :
		    up_decode(b->b, b->n, &m);
		if (e != want)
			fail_msg("vector %s: decode gives %d (%s), doc says %s",
			    b->name, e, up_strerror(e), b->expect);
		/* Either decoder by the first byte: the same answer. */
		assert_int_equal(up_decode_any(b->b, b->n, &m), e);
		if (want != UP_OK) {
			if (compact)
				ncbad++;
			else
				nbad++;
			continue;
		}
		assert_int_equal(m.type, t);
		assert_int_equal(m.form, compact ? UP_FORM_COMPACT :
		    UP_FORM_FULL);
		n = up_encode(&m, out, sizeof(out));
		if (n != (int)b->n || memcmp(out, b->b, b->n) != 0)
			fail_msg("vector %s: re-encoding differs", b->name);
		if (m.type == UP_T_ACCEPT || m.type == UP_T_STATUS)
			check_status(b, &m);
		if (compact)
			cseen[t] = 1;
		else
			seen[t] = 1;
	}
	for (t = UP_T_ANNOUNCE; t <= UP_T_XOR; t++)
		if (!seen[t])
			fail_msg("no valid vector of type %d", t);
	for (t = UP_T_ANNOUNCE; t <= UP_T_SEG; t++)
		if (!cseen[t])
			fail_msg("no valid compact vector of type %d", t);
	assert_true(nbad >= 10);
	assert_true(ncbad >= 20);
}

/* Reassembles the frames of `b' in the order `ord' (frame indices). */
static void
reassemble(const struct block *b, const struct block *msg, const int *ord,
    int nord)
{
	static uint8_t	 buf[UP_SEG_MSG_MAX];
	struct up_seg_rx rx;
	struct up_msg	 m;
	size_t		 from;
	int		 k, r, f, done = 0;

	up_seg_rx_init(&rx, buf, sizeof(buf));
	for (k = 0; k < nord; k++) {
		f = ord[k];
		from = f > 0 ? b->line_end[f - 1] : 0;
		assert_int_equal(up_cdecode(b->b + from, b->line_end[f] - from,
		    &m), UP_OK);
		assert_int_equal(m.type, UP_T_SEG);
		r = up_seg_rx_put(&rx, &m.u.seg);
		assert_true(r >= 0);
		if (r > 0) {
			assert_false(done);
			assert_int_equal(r, (int)msg->n);
			assert_memory_equal(buf, msg->b, msg->n);
			done = 1;
		}
	}
	if (!done)
		fail_msg("upseg %s: the message did not complete", b->name);
}

static void
test_doc_segments(void **state)
{
	const struct block *b, *msg;
	uint8_t		 out[UP_FRAME_MAX];
	int		 i, f, k, n, nseg = 0, ord[2 * MAX_LINES];
	size_t		 from;

	load_doc();
	for (i = 0; i < nblocks_doc; i++) {
		b = &blocks[i];
		if (strcmp(b->kind, "upseg") != 0)
			continue;
		print_message("upseg %s (line %d)\n", b->name, b->line);
		if ((msg = find_vector(b->message)) == NULL)
			fail_msg("upseg %s: no vector %s", b->name, b->message);
		assert_true(b->mtu >= UP_C_MTU_MIN && b->nlines >= 2);
		/* The sender makes exactly these frames. */
		n = up_seg_count(msg->n, (size_t)b->mtu, 0);
		assert_int_equal(n, b->nlines);
		for (f = 0; f < n; f++) {
			from = f > 0 ? b->line_end[f - 1] : 0;
			/* Who sends it: the X bit of the doc's frames. */
			k = up_seg_build(msg->b, msg->n, (size_t)b->mtu,
			    b->b[0] & UP_C_X, 42, (uint8_t)f, out,
			    sizeof(out));
			assert_int_equal(k, (int)(b->line_end[f] - from));
			assert_true(k <= b->mtu);
			assert_memory_equal(out, b->b + from, (size_t)k);
		}
		/* In order; backwards (the last first); each twice. */
		for (f = 0; f < n; f++)
			ord[f] = f;
		reassemble(b, msg, ord, n);
		for (f = 0; f < n; f++)
			ord[f] = n - 1 - f;
		reassemble(b, msg, ord, n);
		for (f = 0; f < n; f++) {
			ord[2 * f] = (f * 5 + 3) % n;
			ord[2 * f + 1] = (f * 5 + 3) % n;
		}
		/* (5 is prime to every n here but 5, 10, ...: fill in.) */
		for (f = 0; f < n; f++)
			ord[2 * n - 1 - f] = f;
		reassemble(b, msg, ord, 2 * n);
		nseg++;
	}
	assert_true(nseg >= 2);
}

static void
test_doc_desc(void **state)
{
	int		 i, n, ndesc = 0;
	const struct block *b, *v;
	struct up_msg	 m;
	uint8_t		 out[1024];

	load_doc();
	for (i = 0; i < nblocks_doc; i++) {
		b = &blocks[i];
		if (strcmp(b->kind, "updesc") != 0)
			continue;
		if ((v = find_vector(b->name)) == NULL)
			fail_msg("updesc %s: no such vector", b->name);
		assert_int_equal(up_decode(v->b, v->n, &m), UP_OK);
		assert_int_equal(m.type, UP_T_OFFER);
		n = up_desc_encode(&m.u.offer, out, sizeof(out));
		assert_int_equal(n, (int)b->n);
		assert_memory_equal(out, b->b, b->n);
		ndesc++;
	}
	assert_true(ndesc >= 1);
}

/* Ed25519 with the RFC 8032 test key over msg; 1 when it verifies. */
static int
ed25519_ok(const uint8_t *sig, const uint8_t *msg, size_t len)
{
	EVP_PKEY	*pk;
	EVP_MD_CTX	*ctx;
	int		 ok;

	assert_non_null(pk = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519,
	    NULL, rfc8032_pub, sizeof(rfc8032_pub)));
	assert_non_null(ctx = EVP_MD_CTX_new());
	assert_int_equal(EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, pk), 1);
	ok = EVP_DigestVerify(ctx, sig, 64, msg, len) == 1;
	EVP_MD_CTX_free(ctx);
	EVP_PKEY_free(pk);
	return (ok);
}

/*
 * The signatures of `offer-full' (form 1) and `offer-downgrade' (form 2)
 * are real Ed25519 signatures over their descriptors, so the signing
 * tool and the nodes can test against them.
 */
static void
test_doc_signature(void **state)
{
	static const char *const signed_vecs[] = { "offer-full",
	    "offer-downgrade" };
	const struct block *v;
	struct up_msg	 m;
	uint8_t		 desc[1024];
	unsigned int	 i;
	int		 n;

	load_doc();
	for (i = 0; i < 2; i++) {
		assert_non_null(v = find_vector(signed_vecs[i]));
		assert_int_equal(up_decode(v->b, v->n, &m), UP_OK);
		assert_int_equal(m.u.offer.sig_alg, UP_SIG_ED25519);
		assert_int_equal(m.u.offer.sig_len, 64);
		n = up_desc_encode(&m.u.offer, desc, sizeof(desc));
		assert_true(n > 0);
		assert_true(ed25519_ok(m.u.offer.sig, desc, (size_t)n));
		/* And it fails for a changed descriptor. */
		desc[n - 1] ^= 1;
		assert_false(ed25519_ok(m.u.offer.sig, desc, (size_t)n));
	}

	/*
	 * offer-downgrade: the signature binds the security version and the
	 * downgrade flag.  Clearing them gives the form-1 descriptor of the
	 * same package, and the signature does not verify over it.
	 */
	assert_int_equal(m.u.offer.security_version, 7);
	assert_int_equal(m.u.offer.desc_flags, UP_DESC_DOWNGRADE);
	m.u.offer.security_version = 0;
	m.u.offer.desc_flags = 0;
	n = up_desc_encode(&m.u.offer, desc, sizeof(desc));
	assert_memory_equal(desc, "UPD1", 4);
	assert_false(ed25519_ok(m.u.offer.sig, desc, (size_t)n));
	m.u.offer.security_version = 8;
	m.u.offer.desc_flags = UP_DESC_DOWNGRADE;
	n = up_desc_encode(&m.u.offer, desc, sizeof(desc));
	assert_false(ed25519_ok(m.u.offer.sig, desc, (size_t)n));
}

/* §10.7: the order of versions, both ways round. */
static void
test_doc_versions(void **state)
{
	const struct block *b;
	char		 a[64], op[4], c[64];
	int		 i, j, want, got, total = 0;

	load_doc();
	for (i = 0; i < nblocks_doc; i++) {
		b = &blocks[i];
		if (strcmp(b->kind, "upver") != 0)
			continue;
		assert_true(b->ncmp > 0);
		for (j = 0; j < b->ncmp; j++) {
			if (sscanf(b->cmp[j], "%63s %3s %63s", a, op, c) != 3 ||
			    strlen(op) != 1 || strchr("<=>", op[0]) == NULL)
				fail_msg("line %d: bad cmp \"%s\"", b->line,
				    b->cmp[j]);
			want = op[0] == '<' ? -1 : op[0] == '>' ? 1 : 0;
			got = up_version_cmp(a, c);
			got = got < 0 ? -1 : got > 0;
			if (got != want)
				fail_msg("%s: up_version_cmp gives %d",
				    b->cmp[j], got);
			got = up_version_cmp(c, a);
			got = got < 0 ? -1 : got > 0;
			if (got != -want)
				fail_msg("%s reversed: up_version_cmp gives %d",
				    b->cmp[j], got);
			total++;
		}
	}
	assert_true(total >= 20);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_doc_crc),
		cmocka_unit_test(test_doc_vectors),
		cmocka_unit_test(test_doc_segments),
		cmocka_unit_test(test_doc_desc),
		cmocka_unit_test(test_doc_signature),
		cmocka_unit_test(test_doc_versions),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
