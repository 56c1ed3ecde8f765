/*
 * upmanifest: the publisher's tool (docs/manifest.md).
 *
 *   upmanifest genkey PRIVATE.pem PUBLIC.pem
 *   upmanifest build -k PRIVATE.pem -s SPEC.json -r WEBROOT [--serial N]
 *   upmanifest verify -p PUBLIC.pem -r WEBROOT
 *
 * build hashes every package file WEBROOT/<url>, signs each package's UP
 * descriptor (up_desc_encode of the OFFER fields, filled by the same
 * uplink_pkg_offer() the gateway uses, from the same parser's output, so
 * the signed bytes cannot drift), then signs the exact bytes of
 * manifest.json and writes both files atomically.  verify checks what a
 * gateway and a node would check.  Exit 0 ok, 1 failed, 2 usage.
 *
 * build refuses what every node or gateway would refuse, before anything
 * is signed (issue 7): each deployment's policy goes through the
 * gateway's own parser (sched_policy_parse) and the name checks a
 * publisher can make (sched_policy_check: order and atomic components,
 * hardware models the packages are for); each delta is applied to its
 * base image with the nodes' own decoder (up_vcdiff.c) and must give
 * exactly image_sha256, so a delta made with xdelta3's default secondary
 * compression, or from another base than base_version, never ships.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "up.h"
#include "cache.h"
#include "sched.h"
#include "uplink.h"

#define SIG_LEN		64

static void	 usage(void) __attribute__((__noreturn__));
static int	 err(const char *, ...)
		    __attribute__((__format__(__printf__, 1, 2)));

static void
usage(void)
{
	fprintf(stderr,
	    "usage: upmanifest genkey PRIVATE.pem PUBLIC.pem\n"
	    "       upmanifest build -k PRIVATE.pem -s SPEC.json -r WEBROOT "
	    "[--serial N]\n"
	    "       upmanifest verify -p PUBLIC.pem -r WEBROOT\n");
	exit(2);
}

static int
err(const char *fmt, ...)
{
	va_list		 ap;

	fputs("upmanifest: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return (1);
}

/* Reads a whole file (at most max bytes) into a NUL-terminated buffer. */
static char *
read_file(const char *path, size_t max, size_t *lenp)
{
	FILE		*f;
	char		*buf;
	size_t		 n;

	if ((f = fopen(path, "rb")) == NULL)
		return (NULL);
	if ((buf = malloc(max + 1)) == NULL) {
		fclose(f);
		return (NULL);
	}
	n = fread(buf, 1, max + 1, f);
	if (ferror(f) || n > max) {
		if (!ferror(f))
			errno = EFBIG;
		free(buf);
		fclose(f);
		return (NULL);
	}
	fclose(f);
	buf[n] = '\0';
	*lenp = n;
	return (buf);
}

/* Writes `path' atomically: a temp file in the same dir, fsync, rename. */
static int
write_atomic(const char *path, const void *p, size_t len)
{
	char		 tmp[PATH_MAX];
	int		 fd, saved;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid()) >=
	    (int)sizeof(tmp)) {
		errno = ENAMETOOLONG;
		return (-1);
	}
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) ==
	    -1)
		return (-1);
	if (write(fd, p, len) != (ssize_t)len || fsync(fd) != 0) {
		saved = errno;
		close(fd);
		unlink(tmp);
		errno = saved != 0 ? saved : EIO;
		return (-1);
	}
	if (close(fd) != 0 || rename(tmp, path) != 0) {
		saved = errno;
		unlink(tmp);
		errno = saved;
		return (-1);
	}
	return (0);
}

/* ------------------------------------------------------------------ */
/* genkey                                                              */

static int
cmd_genkey(int argc, char **argv)
{
	EVP_PKEY	*pk = NULL;
	FILE		*f = NULL;
	int		 fd, rc = 1;

	if (argc != 3)
		usage();
	if (access(argv[1], F_OK) == 0)
		return (err("%s exists; not overwriting a key", argv[1]));
	if ((pk = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519")) == NULL)
		return (err("cannot generate an Ed25519 key"));
	if ((fd = open(argv[1], O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
	    0600)) == -1 || (f = fdopen(fd, "w")) == NULL) {
		err("%s: %s", argv[1], strerror(errno));
		goto out;
	}
	if (PEM_write_PrivateKey(f, pk, NULL, NULL, 0, NULL, NULL) != 1 ||
	    fflush(f) != 0 || fsync(fileno(f)) != 0) {
		err("%s: cannot write the private key", argv[1]);
		goto out;
	}
	fclose(f);
	if ((f = fopen(argv[2], "w")) == NULL) {
		err("%s: %s", argv[2], strerror(errno));
		goto out;
	}
	if (PEM_write_PUBKEY(f, pk) != 1 || fflush(f) != 0) {
		err("%s: cannot write the public key", argv[2]);
		goto out;
	}
	rc = 0;
out:
	if (f != NULL)
		fclose(f);
	EVP_PKEY_free(pk);
	return (rc);
}

/* ------------------------------------------------------------------ */
/* build                                                               */

static EVP_PKEY *
load_private(const char *path)
{
	FILE		*f;
	EVP_PKEY	*pk;

	if ((f = fopen(path, "r")) == NULL) {
		err("%s: %s", path, strerror(errno));
		return (NULL);
	}
	pk = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	if (pk == NULL) {
		err("%s: not a PEM private key", path);
		return (NULL);
	}
	if (EVP_PKEY_get_id(pk) != EVP_PKEY_ED25519) {
		err("%s: not an Ed25519 key", path);
		EVP_PKEY_free(pk);
		return (NULL);
	}
	return (pk);
}

static int
sign(EVP_PKEY *pk, const void *msg, size_t len, uint8_t sig[SIG_LEN])
{
	EVP_MD_CTX	*md;
	size_t		 siglen = SIG_LEN;
	int		 ok;

	if ((md = EVP_MD_CTX_new()) == NULL)
		return (-1);
	ok = EVP_DigestSignInit(md, NULL, NULL, NULL, pk) == 1 &&
	    EVP_DigestSign(md, sig, &siglen, msg, len) == 1 &&
	    siglen == SIG_LEN;
	EVP_MD_CTX_free(md);
	return (ok ? 0 : -1);
}

/* A path relative to a root, with no way out of it. */
static int
safe_relpath(const char *p)
{
	const char	*s = p, *seg;
	size_t		 n;

	if (*p == '\0' || *p == '/')
		return (0);
	for (;;) {
		seg = s;
		while (*s != '\0' && *s != '/')
			s++;
		n = (size_t)(s - seg);
		if (n == 0 || (n == 1 && seg[0] == '.') ||
		    (n == 2 && seg[0] == '.' && seg[1] == '.'))
			return (0);
		if (*s == '\0')
			return (1);
		s++;
	}
}

/* Default chunk of the chunk list: the gateway's default Range size. */
#define CHUNK_DEFAULT	(1024 * 1024)

/*
 * SHA-256 and size of a file, streamed; with cs > 0 also the SHA-256 of
 * every cs-byte chunk into *chunks (malloc'd, *nchunks * 32 bytes).
 */
static int
hash_file_chunks(const char *path, uint8_t sha[CACHE_SHA_LEN],
    uint64_t *size, uint32_t cs, uint8_t **chunks, uint32_t *nchunks)
{
	struct cache_sha *h, *ch = NULL;
	uint8_t		 buf[65536], *p, *list = NULL, *nl;
	uint64_t	 inchunk = 0;
	size_t		 take, left;
	uint32_t	 nc = 0, cap = 0;
	ssize_t		 n;
	int		 fd, saved;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return (-1);
	if ((h = cache_sha_new()) == NULL ||
	    (cs > 0 && (ch = cache_sha_new()) == NULL)) {
		cache_sha_free(h);
		close(fd);
		errno = ENOMEM;
		return (-1);
	}
	*size = 0;
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		cache_sha_update(h, buf, (size_t)n);
		*size += (uint64_t)n;
		for (p = buf, left = (size_t)n; cs > 0 && left > 0;) {
			take = left;
			if (take > cs - inchunk)
				take = (size_t)(cs - inchunk);
			cache_sha_update(ch, p, take);
			inchunk += take;
			p += take;
			left -= take;
			if (inchunk < cs)
				continue;
			if (nc == cap) {
				cap = cap == 0 ? 64 : cap * 2;
				if ((nl = realloc(list, (size_t)cap *
				    CACHE_SHA_LEN)) == NULL) {
					n = -1;
					errno = ENOMEM;
					break;
				}
				list = nl;
			}
			cache_sha_final(ch, list + (size_t)nc++ *
			    CACHE_SHA_LEN);
			inchunk = 0;
		}
		if (n < 0)
			break;
	}
	/* The last, shorter chunk. */
	if (n == 0 && cs > 0 && inchunk > 0) {
		if (nc == cap && (nl = realloc(list, ((size_t)cap + 1) *
		    CACHE_SHA_LEN)) == NULL) {
			n = -1;
			errno = ENOMEM;
		} else {
			if (nc == cap)
				list = nl;
			cache_sha_final(ch, list + (size_t)nc++ *
			    CACHE_SHA_LEN);
		}
	}
	saved = errno;
	cache_sha_final(h, sha);
	cache_sha_free(h);
	cache_sha_free(ch);
	close(fd);
	if (n < 0) {
		free(list);
		errno = saved;
		return (-1);
	}
	if (chunks != NULL) {
		*chunks = list;
		*nchunks = nc;
	} else
		free(list);
	return (0);
}

/* SHA-256 and size of a file, streamed. */
static int
hash_file(const char *path, uint8_t sha[CACHE_SHA_LEN], uint64_t *size)
{
	return (hash_file_chunks(path, sha, size, 0, NULL, NULL));
}

static json_t *
b64_json(const uint8_t *p, size_t n)
{
	unsigned char	 out[4 * ((SIG_LEN + 2) / 3) + 1];

	if (n > SIG_LEN)
		return (NULL);
	EVP_EncodeBlock(out, p, (int)n);
	return (json_string((const char *)out));
}

static json_t *
hex_json(const uint8_t sha[CACHE_SHA_LEN])
{
	char		 hex[CACHE_HEX_LEN + 1];

	cache_hex(sha, hex);
	return (json_string(hex));
}

static const char *const spec_top_keys[] = {
	"version", "serial", "issued", "packages", "deployments", NULL
};
static const char *const spec_pkg_keys[] = {
	"id", "component", "version", "hw", "kind", "delta_format",
	"base_version", "size", "sha256", "image_size", "image_sha256",
	"image_file", "base_file", "url", "deps", "security_version",
	"allow_downgrade", "chunk_size", NULL
};

static int
known_key(const char *k, const char *const *keys)
{
	size_t		 i;

	for (i = 0; keys[i] != NULL; i++)
		if (strcmp(k, keys[i]) == 0)
			return (1);
	return (0);
}

/* ------------------------------------------------------------------ */
/* Deltas: proven with the nodes' own decoder                          */

/*
 * A delta applied the way a node applies it (up/up_vcdiff.c, the same
 * window buffer a node lends, the target read back when a window does not
 * fit), with the base image as the source and the result hashed.
 */
struct delta_run {
	int		 dfd;		/* the delta */
	int		 sfd;		/* the base image, -1: none */
	int		 wanted_source;	/* the base was read */
	uint8_t		*out;		/* the image so far */
	size_t		 outlen, outcap;
	struct cache_sha *h;
};

static int
dr_pread(int fd, uint32_t off, uint8_t *p, size_t n)
{
	ssize_t		 r;

	while (n > 0) {
		if ((r = pread(fd, p, n, off)) <= 0)
			return (-1);
		p += r;
		n -= (size_t)r;
		off += (uint32_t)r;
	}
	return (0);
}

static int
dr_delta_read(void *ctx, uint32_t off, uint8_t *p, size_t n)
{
	return (dr_pread(((struct delta_run *)ctx)->dfd, off, p, n));
}

static int
dr_source_read(void *ctx, uint32_t off, uint8_t *p, size_t n)
{
	struct delta_run *d = ctx;

	d->wanted_source = 1;
	if (d->sfd == -1)
		return (-1);
	return (dr_pread(d->sfd, off, p, n));
}

static int
dr_target_write(void *ctx, uint32_t off, const uint8_t *p, size_t n)
{
	struct delta_run *d = ctx;
	uint8_t		*nb;
	size_t		 cap;

	if (off != d->outlen)
		return (-1);
	if (d->outlen + n > d->outcap) {
		cap = d->outcap == 0 ? 1 << 20 : d->outcap;
		while (cap < d->outlen + n)
			cap *= 2;
		if ((nb = realloc(d->out, cap)) == NULL)
			return (-1);
		d->out = nb;
		d->outcap = cap;
	}
	memcpy(d->out + d->outlen, p, n);
	d->outlen += n;
	cache_sha_update(d->h, p, n);
	return (0);
}

static int
dr_target_read(void *ctx, uint32_t off, uint8_t *p, size_t n)
{
	struct delta_run *d = ctx;

	if ((uint64_t)off + n > d->outlen)
		return (-1);
	memcpy(p, d->out + off, n);
	return (0);
}

static const struct up_vcd_io delta_io = {
	dr_delta_read, dr_source_read, dr_target_write, dr_target_read
};

#define DELTA_HOWTO \
	"make deltas with: xdelta3 -e -9 -S none -A -n -s OLD NEW OUT"

/*
 * Applies the delta at `dpath' to the base image at `bpath' (NULL: none
 * at hand, then only what precedes the first read of the base is
 * checked, and the delta is refused as unproven).  On success the image
 * it makes is *isize bytes with SHA-256 isha.  Returns 0, or -1 after
 * printing why.
 */
static int
prove_delta(const char *id, const char *base_version, const char *dpath,
    const char *bpath, uint64_t *isize, uint8_t isha[CACHE_SHA_LEN])
{
	static struct up_vcd vcd;	/* about 4 KiB: not on the stack */
	static uint8_t	 window[UP_VCD_WINDOW];
	struct delta_run d;
	struct stat	 sb, bsb;
	int		 rc = -1, e;

	memset(&d, 0, sizeof(d));
	d.sfd = -1;
	if ((d.dfd = open(dpath, O_RDONLY | O_CLOEXEC)) == -1 ||
	    fstat(d.dfd, &sb) != 0) {
		err("package '%s': %s: %s", id, dpath, strerror(errno));
		goto out;
	}
	memset(&bsb, 0, sizeof(bsb));
	if (bpath != NULL && ((d.sfd = open(bpath, O_RDONLY | O_CLOEXEC)) ==
	    -1 || fstat(d.sfd, &bsb) != 0)) {
		err("package '%s': base image %s: %s", id, bpath,
		    strerror(errno));
		goto out;
	}
	if ((uint64_t)sb.st_size > UINT32_MAX ||
	    (uint64_t)bsb.st_size > UINT32_MAX) {
		err("package '%s': delta or base image of 4 GiB or more", id);
		goto out;
	}
	if ((d.h = cache_sha_new()) == NULL) {
		err("out of memory");
		goto out;
	}
	if (up_vcd_init(&vcd, &delta_io, &d, (uint32_t)sb.st_size,
	    bpath != NULL ? (uint32_t)bsb.st_size : UINT32_MAX, UINT32_MAX,
	    window, sizeof(window)) != UP_OK) {
		err("package '%s': cannot start the VCDIFF decoder", id);
		goto out;
	}
	while ((e = up_vcd_run(&vcd, 0)) == UP_VCD_MORE)
		;
	if (e != UP_OK && !(bpath == NULL && d.wanted_source)) {
		if (e == UP_EVERSION)
			err("package '%s': %s: nodes cannot apply this delta: "
			    "%s; %s", id, dpath, up_vcd_why(&vcd), DELTA_HOWTO);
		else if (bpath != NULL && d.wanted_source)
			err("package '%s': %s does not apply to the %s image "
			    "%s: %s (a delta made from another base?)", id,
			    dpath, base_version, bpath, up_vcd_why(&vcd));
		else
			err("package '%s': %s: not a delta nodes can apply: "
			    "%s", id, dpath, up_vcd_why(&vcd));
		goto out;
	}
	if (bpath == NULL) {
		err("package '%s': no %s image to prove the delta applies: "
		    "give \"base_file\" (the %s image), or list the full "
		    "%s package in the spec", id, base_version, base_version,
		    base_version);
		goto out;
	}
	cache_sha_final(d.h, isha);
	*isize = d.outlen;
	rc = 0;
out:
	if (d.dfd != -1)
		close(d.dfd);
	if (d.sfd != -1)
		close(d.sfd);
	cache_sha_free(d.h);
	free(d.out);
	return (rc);
}

static bool
hw_overlap(json_t *a, json_t *b)
{
	size_t		 i, j;
	json_t		*x, *y;

	if (json_array_size(a) == 0 || json_array_size(b) == 0)
		return (true);
	json_array_foreach(a, i, x)
		json_array_foreach(b, j, y)
			if (json_equal(x, y))
				return (true);
	return (false);
}

/*
 * The base image of delta `sp': its "base_file" (relative to the spec's
 * folder), else the file of a full package of the spec with the same
 * component, version base_version and a hardware list in common.  0 and
 * path, 1 when there is none, -1 on a bad name.
 */
static int
delta_base(json_t *sp, json_t *all, const char *webroot,
    const char *specdir, char *path, size_t len)
{
	const char	*bf, *comp, *base, *url;
	json_t		*o;
	size_t		 i;
	int		 n;

	if ((bf = json_string_value(json_object_get(sp, "base_file"))) !=
	    NULL) {
		n = bf[0] == '/' ? snprintf(path, len, "%s", bf) :
		    snprintf(path, len, "%s/%s", specdir, bf);
		return (n < 0 || (size_t)n >= len ? -1 : 0);
	}
	comp = json_string_value(json_object_get(sp, "component"));
	base = json_string_value(json_object_get(sp, "base_version"));
	if (comp == NULL || base == NULL)
		return (1);
	json_array_foreach(all, i, o) {
		if (!json_is_object(o) ||
		    json_string_value(json_object_get(o, "kind")) == NULL ||
		    strcmp(json_string_value(json_object_get(o, "kind")),
		    "full") != 0 ||
		    json_string_value(json_object_get(o, "component")) ==
		    NULL || strcmp(json_string_value(json_object_get(o,
		    "component")), comp) != 0 ||
		    json_string_value(json_object_get(o, "version")) == NULL ||
		    strcmp(json_string_value(json_object_get(o, "version")),
		    base) != 0 ||
		    !hw_overlap(json_object_get(o, "hw"),
		    json_object_get(sp, "hw")) ||
		    (url = json_string_value(json_object_get(o, "url"))) ==
		    NULL || !safe_relpath(url))
			continue;
		n = snprintf(path, len, "%s/%s", webroot, url);
		return (n < 0 || (size_t)n >= len ? -1 : 0);
	}
	return (1);
}

/* The output package object, in the documented member order. */
static json_t *
build_pkg(json_t *sp, size_t idx, json_t *all, const char *webroot,
    const char *specdir)
{
	static const char *const copy1[] = {
		"id", "component", "version", "hw", "kind", "delta_format",
		"base_version", NULL
	};
	json_t		*o, *v;
	const char	*k, *id, *url, *kind, *imgf, *base = "base";
	char		 path[PATH_MAX], bpath[PATH_MAX];
	uint8_t		 sha[CACHE_SHA_LEN], isha[CACHE_SHA_LEN], zero[SIG_LEN];
	uint8_t		 psha[CACHE_SHA_LEN];
	uint8_t		*chunks = NULL;
	uint64_t	 size, isize, psize = 0;
	uint32_t	 cs = CHUNK_DEFAULT, nchunks = 0;
	size_t		 i;
	int		 delta, n;
	json_t		*ca;

	if (!json_is_object(sp)) {
		err("spec: package #%zu: not an object", idx + 1);
		return (NULL);
	}
	id = json_string_value(json_object_get(sp, "id"));
	if (id == NULL) {
		err("spec: package #%zu: id: missing", idx + 1);
		return (NULL);
	}
	json_object_foreach(sp, k, v) {
		if (!known_key(k, spec_pkg_keys)) {
			err("spec: package '%s': unknown member '%s'", id, k);
			return (NULL);
		}
	}
	url = json_string_value(json_object_get(sp, "url"));
	if (url == NULL || !safe_relpath(url)) {
		err("spec: package '%s': url: missing or not a relative path "
		    "inside the web root", id);
		return (NULL);
	}
	/* The chunk list (cut-through); "chunk_size": 0 leaves it out. */
	if ((v = json_object_get(sp, "chunk_size")) != NULL) {
		if (!json_is_integer(v) || (json_integer_value(v) != 0 &&
		    (json_integer_value(v) < UPLINK_CHUNK_MIN ||
		    json_integer_value(v) > UPLINK_CHUNK_MAX))) {
			err("spec: package '%s': chunk_size: 0 or %u to %u",
			    id, UPLINK_CHUNK_MIN, UPLINK_CHUNK_MAX);
			return (NULL);
		}
		cs = (uint32_t)json_integer_value(v);
	}
	if (snprintf(path, sizeof(path), "%s/%s", webroot, url) >=
	    (int)sizeof(path) || hash_file_chunks(path, sha, &size, cs,
	    &chunks, &nchunks) != 0) {
		err("package '%s': %s: %s", id, path, strerror(errno));
		return (NULL);
	}
	if (size == 0 || size > UINT32_MAX) {
		err("package '%s': %s: %" PRIu64 " bytes; UP carries 1 to "
		    "4294967295", id, path, size);
		free(chunks);
		return (NULL);
	}
	/* Given in the spec?  Then it must be what the file is. */
	if ((v = json_object_get(sp, "size")) != NULL &&
	    (!json_is_integer(v) || (uint64_t)json_integer_value(v) != size)) {
		err("package '%s': size in the spec differs from %s (%" PRIu64
		    " bytes)", id, path, size);
		free(chunks);
		return (NULL);
	}
	if ((v = json_object_get(sp, "sha256")) != NULL) {
		uint8_t	 given[CACHE_SHA_LEN];

		if (!json_is_string(v) ||
		    cache_unhex(json_string_value(v), given) != 0 ||
		    memcmp(given, sha, CACHE_SHA_LEN) != 0) {
			err("package '%s': sha256 in the spec differs from "
			    "%s", id, path);
			free(chunks);
		return (NULL);
		}
	}
	kind = json_string_value(json_object_get(sp, "kind"));
	delta = kind != NULL && strcmp(kind, "delta") == 0;
	isize = size;
	memcpy(isha, sha, sizeof(isha));
	if (!delta && json_object_get(sp, "base_file") != NULL) {
		err("package '%s': base_file: only for a delta", id);
		free(chunks);
		return (NULL);
	}
	/* What the delta makes of its base, with the nodes' decoder. */
	if (delta) {
		base = json_string_value(json_object_get(sp, "base_version"));
		if (base == NULL)
			base = "base";
		if ((n = delta_base(sp, all, webroot, specdir, bpath,
		    sizeof(bpath))) == -1) {
			err("package '%s': base_file: path too long", id);
			free(chunks);
			return (NULL);
		}
		if (prove_delta(id, base, path, n == 0 ? bpath : NULL, &psize,
		    psha) != 0) {
			free(chunks);
			return (NULL);
		}
	}
	if (delta && (imgf = json_string_value(json_object_get(sp,
	    "image_file"))) != NULL) {
		n = imgf[0] == '/' ? snprintf(path, sizeof(path), "%s", imgf) :
		    snprintf(path, sizeof(path), "%s/%s", specdir, imgf);
		if (n >= (int)sizeof(path))
			errno = ENAMETOOLONG;
		if (n >= (int)sizeof(path) ||
		    hash_file(path, isha, &isize) != 0) {
			err("package '%s': image_file %s: %s", id, path,
			    strerror(errno));
			free(chunks);
		return (NULL);
		}
	} else if (delta && json_object_get(sp, "image_size") == NULL &&
	    json_object_get(sp, "image_sha256") == NULL) {
		/* Neither given: the image is what the delta makes. */
		isize = psize;
		memcpy(isha, psha, sizeof(isha));
	} else if (delta) {
		v = json_object_get(sp, "image_size");
		if (!json_is_integer(v) || json_integer_value(v) <= 0) {
			err("package '%s': a delta needs image_size and "
			    "image_sha256, image_file, or neither", id);
			free(chunks);
		return (NULL);
		}
		isize = (uint64_t)json_integer_value(v);
		v = json_object_get(sp, "image_sha256");
		if (!json_is_string(v) ||
		    cache_unhex(json_string_value(v), isha) != 0) {
			err("package '%s': image_sha256: not 64 hex digits",
			    id);
			free(chunks);
		return (NULL);
		}
	}

	if (delta && (psize != isize ||
	    memcmp(psha, isha, CACHE_SHA_LEN) != 0)) {
		char	 got[CACHE_HEX_LEN + 1], want[CACHE_HEX_LEN + 1];

		cache_hex(psha, got);
		cache_hex(isha, want);
		err("package '%s': the delta applied to the %s image %s makes "
		    "%" PRIu64 " bytes with sha256 %s, not the image (%" PRIu64
		    " bytes, sha256 %s): a delta made from another base than "
		    "%s, or for another image?", id, base, bpath, psize, got,
		    isize, want, base);
		free(chunks);
		return (NULL);
	}
	if ((o = json_object()) == NULL) {
		free(chunks);
		return (NULL);
	}
	for (i = 0; copy1[i] != NULL; i++)
		if ((v = json_object_get(sp, copy1[i])) != NULL)
			json_object_set(o, copy1[i], v);
	json_object_set_new(o, "size", json_integer((json_int_t)size));
	json_object_set_new(o, "sha256", hex_json(sha));
	json_object_set_new(o, "image_size", json_integer((json_int_t)isize));
	json_object_set_new(o, "image_sha256", hex_json(isha));
	json_object_set(o, "url", json_object_get(sp, "url"));
	if ((v = json_object_get(sp, "deps")) != NULL)
		json_object_set(o, "deps", v);
	/*
	 * Anti-rollback (docs/up-protocol.md §5.4), signed with the
	 * descriptor; the gateway's parser checks them below.  Left out
	 * when 0 and false, so a package without them reads the same to a
	 * gateway that predates them.
	 */
	if ((v = json_object_get(sp, "security_version")) != NULL &&
	    !(json_is_integer(v) && json_integer_value(v) == 0))
		json_object_set(o, "security_version", v);
	if ((v = json_object_get(sp, "allow_downgrade")) != NULL &&
	    !json_is_false(v))
		json_object_set(o, "allow_downgrade", v);
	if (cs > 0) {
		json_object_set_new(o, "chunk_size", json_integer(cs));
		ca = json_array();
		for (i = 0; i < nchunks; i++)
			json_array_append_new(ca, hex_json(chunks +
			    i * CACHE_SHA_LEN));
		json_object_set_new(o, "chunks", ca);
	}
	free(chunks);
	/* A placeholder until the descriptor is signed. */
	memset(zero, 0, sizeof(zero));
	json_object_set_new(o, "up_sig", b64_json(zero, sizeof(zero)));
	return (o);
}

/* The serial of WEBROOT/manifest.json: >0, 0 if none, -1 unreadable. */
static int64_t
published_serial(const char *webroot, char **why)
{
	struct uplink_manifest *mf;
	char		 path[PATH_MAX];
	char		*buf;
	size_t		 len;
	int64_t		 serial;

	snprintf(path, sizeof(path), "%s/manifest.json", webroot);
	if ((buf = read_file(path, UPLINK_MANIFEST_MAX, &len)) == NULL) {
		if (errno == ENOENT)
			return (0);
		if (asprintf(why, "%s: %s", path, strerror(errno)) == -1)
			*why = NULL;
		return (-1);
	}
	mf = uplink_manifest_parse(buf, len, why);
	free(buf);
	if (mf == NULL)
		return (-1);
	serial = mf->serial;
	uplink_manifest_free(mf);
	return (serial);
}

/*
 * Every deployment's policy through the gateway's own parser, and the
 * names a publisher can check: what every gateway would refuse is
 * refused here, before it is signed.
 */
static int
check_deployments(const char *specf, const struct uplink_manifest *mf)
{
	const struct uplink_deployment *ud;
	struct sched_policy p;
	struct sched_known k;
	struct cache_pkg *pkgs;
	char		*cause = NULL;
	size_t		 i, j, l, n;
	int		 rc = 0;

	if ((pkgs = calloc(SCHED_MAX_PKGS, sizeof(*pkgs))) == NULL)
		return (err("out of memory"));
	for (i = 0; i < mf->ndeps && rc == 0; i++) {
		ud = &mf->deps[i];
		if (sched_policy_parse(ud->id,
		    (const char (*)[CACHE_NAME_MAX + 1])ud->hw, ud->nhw,
		    (const char (*)[CACHE_NAME_MAX + 1])ud->tags, ud->ntags,
		    ud->policy_json, &p, &cause) != 0) {
			rc = err("%s: %s", specf, cause != NULL ? cause :
			    "bad policy");
			break;
		}
		for (j = 0, n = 0; j < ud->npkgs && n < SCHED_MAX_PKGS; j++)
			for (l = 0; l < mf->npkgs; l++)
				if (strcmp(mf->pkgs[l].id, ud->pkgs[j]) == 0)
					pkgs[n++] = mf->pkgs[l];
		memset(&k, 0, sizeof(k));
		k.pkgs = pkgs;
		k.npkgs = n;
		if (sched_policy_check(&p, &k, &cause) != 0)
			rc = err("%s: %s", specf, cause != NULL ? cause :
			    "bad names");
		sched_policy_clear(&p);
	}
	free(cause);
	free(pkgs);
	return (rc);
}

static int
cmd_build(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "serial", required_argument, NULL, 'S' },
		{ NULL, 0, NULL, 0 }
	};
	const char	*keyf = NULL, *specf = NULL, *webroot = NULL;
	const char	*k;
	char		 specdir[PATH_MAX], tmp[PATH_MAX], path[PATH_MAX];
	char		 issued[32], *end;
	char		*why = NULL, *out = NULL, *out2 = NULL;
	json_t		*spec = NULL, *root = NULL, *pkgs, *v, *sp, *o;
	json_error_t	 jerr;
	EVP_PKEY	*pk = NULL;
	struct uplink_manifest *mf = NULL;
	struct up_offer	 offer;
	uint8_t		 desc[1024], sig[SIG_LEN];
	int64_t		 serial = 0, old;
	size_t		 i, len;
	struct tm	 tm;
	time_t		 now;
	int		 ch, n, rc = 1;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "k:s:r:", longopts, NULL)) !=
	    -1) {
		switch (ch) {
		case 'k':
			keyf = optarg;
			break;
		case 's':
			specf = optarg;
			break;
		case 'r':
			webroot = optarg;
			break;
		case 'S':
			errno = 0;
			serial = strtoll(optarg, &end, 10);
			if (errno != 0 || *end != '\0' || end == optarg ||
			    serial < 1) {
				err("--serial %s: not a positive integer",
				    optarg);
				usage();
			}
			break;
		default:
			usage();
		}
	}
	if (optind != argc || keyf == NULL || specf == NULL || webroot == NULL)
		usage();
	if ((pk = load_private(keyf)) == NULL)
		return (1);
	snprintf(tmp, sizeof(tmp), "%s", specf);
	snprintf(specdir, sizeof(specdir), "%s", dirname(tmp));

	if ((spec = json_load_file(specf, JSON_REJECT_DUPLICATES, &jerr)) ==
	    NULL) {
		err("%s:%d:%d: %s", specf, jerr.line, jerr.column, jerr.text);
		goto out;
	}
	if (!json_is_object(spec)) {
		err("%s: not a JSON object", specf);
		goto out;
	}
	json_object_foreach(spec, k, v) {
		if (!known_key(k, spec_top_keys)) {
			err("%s: unknown member '%s'", specf, k);
			goto out;
		}
	}
	if ((v = json_object_get(spec, "version")) != NULL &&
	    (!json_is_integer(v) || json_integer_value(v) != 1)) {
		err("%s: version: only format 1 is supported", specf);
		goto out;
	}
	if (serial == 0 && (v = json_object_get(spec, "serial")) != NULL) {
		if (!json_is_integer(v) || json_integer_value(v) < 1) {
			err("%s: serial: not a positive integer", specf);
			goto out;
		}
		serial = json_integer_value(v);
	}
	/* Serials only go up: gateways reject an older one as a replay. */
	old = published_serial(webroot, &why);
	if (old < 0 && serial == 0) {
		err("the published manifest cannot be read (%s); pass "
		    "--serial", why != NULL ? why : "?");
		goto out;
	}
	if (serial == 0)
		serial = old + 1;
	if (old > 0 && serial <= old) {
		err("serial %" PRId64 " is not above the published manifest's "
		    "serial %" PRId64 ": gateways would reject it", serial,
		    old);
		goto out;
	}

	if ((v = json_object_get(spec, "issued")) != NULL &&
	    json_is_string(v))
		snprintf(issued, sizeof(issued), "%s", json_string_value(v));
	else {
		now = time(NULL);
		gmtime_r(&now, &tm);
		strftime(issued, sizeof(issued), "%Y-%m-%dT%H:%M:%SZ", &tm);
	}

	root = json_object();
	json_object_set_new(root, "version", json_integer(1));
	json_object_set_new(root, "serial", json_integer(serial));
	json_object_set_new(root, "issued", json_string(issued));
	pkgs = json_array();
	json_object_set_new(root, "packages", pkgs);
	v = json_object_get(spec, "packages");
	if (!json_is_array(v)) {
		err("%s: packages: missing or not an array", specf);
		goto out;
	}
	json_array_foreach(v, i, sp) {
		if ((o = build_pkg(sp, i, v, webroot, specdir)) == NULL)
			goto out;
		json_array_append_new(pkgs, o);
	}
	if ((v = json_object_get(spec, "deployments")) != NULL)
		json_object_set(root, "deployments", v);
	else
		json_object_set_new(root, "deployments", json_array());

	/*
	 * Parse what we made with the gateway's own parser: it validates
	 * the spec and gives the cache_pkg each descriptor is built from.
	 */
	if ((out = json_dumps(root, JSON_INDENT(2))) == NULL)
		goto oom;
	free(why);
	why = NULL;
	if ((mf = uplink_manifest_parse(out, strlen(out), &why)) == NULL) {
		err("%s: %s", specf, why);
		goto out;
	}
	if (check_deployments(specf, mf) != 0)
		goto out;
	for (i = 0; i < mf->npkgs; i++) {
		if (uplink_pkg_offer(&mf->pkgs[i], &offer) != 0 ||
		    (n = up_desc_encode(&offer, desc, sizeof(desc))) < 0) {
			err("package '%s': cannot encode the UP descriptor",
			    mf->pkgs[i].id);
			goto out;
		}
		if (sign(pk, desc, (size_t)n, sig) != 0) {
			err("package '%s': signing failed", mf->pkgs[i].id);
			goto out;
		}
		json_object_set_new(json_array_get(pkgs, i), "up_sig",
		    b64_json(sig, sizeof(sig)));
	}
	free(out);
	if ((out = json_dumps(root, JSON_INDENT(2))) == NULL)
		goto oom;
	len = strlen(out);
	if ((out2 = malloc(len + 2)) == NULL)
		goto oom;
	memcpy(out2, out, len);
	out2[len++] = '\n';
	out2[len] = '\0';
	if (sign(pk, out2, len, sig) != 0) {
		err("signing the manifest failed");
		goto out;
	}
	snprintf(path, sizeof(path), "%s/manifest.json", webroot);
	if (write_atomic(path, out2, len) != 0) {
		err("%s: %s", path, strerror(errno));
		goto out;
	}
	snprintf(path, sizeof(path), "%s/manifest.json.sig", webroot);
	if (write_atomic(path, sig, sizeof(sig)) != 0) {
		err("%s: %s", path, strerror(errno));
		goto out;
	}
	rc = 0;
	goto out;
oom:
	err("out of memory");
out:
	uplink_manifest_free(mf);
	json_decref(spec);
	json_decref(root);
	free(out);
	free(out2);
	free(why);
	EVP_PKEY_free(pk);
	return (rc);
}

/* ------------------------------------------------------------------ */
/* verify                                                              */

static int
cmd_verify(int argc, char **argv)
{
	const char	*pubf = NULL, *webroot = NULL;
	struct cache_key *key = NULL;
	struct uplink_manifest *mf = NULL;
	struct up_offer	 offer;
	char		 path[PATH_MAX], hex[CACHE_HEX_LEN + 1];
	char		*body = NULL, *sig = NULL, *why = NULL;
	uint8_t		 desc[1024], sha[CACHE_SHA_LEN], *chunks = NULL;
	uint64_t	 size;
	uint32_t	 nchunks = 0, c;
	size_t		 len, siglen, i;
	int		 ch, n, rc = 1, bad = 0;

	optind = 1;
	while ((ch = getopt(argc, argv, "p:r:")) != -1) {
		switch (ch) {
		case 'p':
			pubf = optarg;
			break;
		case 'r':
			webroot = optarg;
			break;
		default:
			usage();
		}
	}
	if (optind != argc || pubf == NULL || webroot == NULL)
		usage();
	if ((key = cache_key_load(pubf, &why)) == NULL) {
		err("%s: %s", pubf, why != NULL ? why : "cannot load");
		goto out;
	}
	snprintf(path, sizeof(path), "%s/manifest.json", webroot);
	if ((body = read_file(path, UPLINK_MANIFEST_MAX, &len)) == NULL) {
		err("%s: %s", path, strerror(errno));
		goto out;
	}
	snprintf(path, sizeof(path), "%s/manifest.json.sig", webroot);
	if ((sig = read_file(path, 1024, &siglen)) == NULL) {
		err("%s: %s", path, strerror(errno));
		goto out;
	}
	if (cache_sig_verify(key, body, len, (const uint8_t *)sig, siglen,
	    &why) != 0) {
		err("manifest.json: signature: %s", why != NULL ? why :
		    "does not verify");
		goto out;
	}
	if ((mf = uplink_manifest_parse(body, len, &why)) == NULL) {
		err("manifest.json: %s", why);
		goto out;
	}
	for (i = 0; i < mf->npkgs; i++) {
		const struct cache_pkg *p = &mf->pkgs[i];

		snprintf(path, sizeof(path), "%s/%s", webroot, p->url);
		free(chunks);
		chunks = NULL;
		if (hash_file_chunks(path, sha, &size,
		    mf->chunks[i].chunk_size, &chunks, &nchunks) != 0) {
			err("package '%s': %s: %s", p->id, path,
			    strerror(errno));
			bad++;
			continue;
		}
		if (size != p->size) {
			err("package '%s': %s has %" PRIu64 " bytes, the "
			    "manifest says %" PRIu64, p->id, path, size,
			    p->size);
			bad++;
			continue;
		}
		if (memcmp(sha, p->sha256, CACHE_SHA_LEN) != 0) {
			cache_hex(sha, hex);
			err("package '%s': %s has sha256 %s, not the "
			    "manifest's", p->id, path, hex);
			bad++;
			continue;
		}
		/* Gateways cut a download at the first chunk that differs. */
		for (c = 0; c < mf->chunks[i].n; c++)
			if (c >= nchunks || memcmp(chunks + (size_t)c *
			    CACHE_SHA_LEN, mf->chunks[i].sha + (size_t)c *
			    CACHE_SHA_LEN, CACHE_SHA_LEN) != 0)
				break;
		if (c < mf->chunks[i].n) {
			err("package '%s': chunks[%u] is not the sha256 of "
			    "that chunk of %s", p->id, c, path);
			bad++;
			continue;
		}
		free(why);
		why = NULL;
		if (uplink_pkg_offer(p, &offer) != 0 ||
		    (n = up_desc_encode(&offer, desc, sizeof(desc))) < 0 ||
		    cache_sig_verify(key, desc, (size_t)n, p->sig, p->sig_len,
		    &why) != 0) {
			err("package '%s': up_sig: %s", p->id,
			    why != NULL ? why : "does not verify");
			bad++;
			continue;
		}
	}
	if (bad == 0) {
		printf("manifest serial %" PRId64 ": %zu package(s), %zu "
		    "deployment(s): ok\n", mf->serial, mf->npkgs, mf->ndeps);
		rc = 0;
	}
out:
	free(chunks);
	uplink_manifest_free(mf);
	cache_key_free(key);
	free(body);
	free(sig);
	free(why);
	return (rc);
}

int
main(int argc, char **argv)
{
	if (argc < 2)
		usage();
	if (strcmp(argv[1], "genkey") == 0)
		return (cmd_genkey(argc - 1, argv + 1));
	if (strcmp(argv[1], "build") == 0)
		return (cmd_build(argc - 1, argv + 1));
	if (strcmp(argv[1], "verify") == 0)
		return (cmd_verify(argc - 1, argv + 1));
	usage();
}
