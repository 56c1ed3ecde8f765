/*
 * test_cache_chunks.c: chunk lists and the verified prefix of a partial
 * blob (cut-through, docs/cache.md "Chunks and the verified prefix"), on
 * a real SQLite file and a real directory under /tmp.
 */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sys/stat.h>

#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "cache.h"

#define CS	4096			/* chunk size */
#define LEN	(3 * CS + 1000)		/* 4 chunks, the last short */
#define NCH	4

struct fix {
	char		 tmp[64];
	char		 dir[128];
	char		 dbpath[128];
	sqlite3		*db;
	struct cache	*c;
	uint8_t		*data;
	uint8_t		 sha[CACHE_SHA_LEN];
	uint8_t		 chunks[NCH * CACHE_SHA_LEN];
};

static int
rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	return (remove(path));
}

static void
reopen(struct fix *f)
{
	char	*cause = NULL;

	cache_free(f->c);
	if ((f->c = cache_open(f->db, f->dir, 0, &cause)) == NULL)
		fail_msg("cache_open: %s", cause);
}

static int
setup(void **state)
{
	struct fix	*f;
	uint32_t	 x = 12345;
	size_t		 i, n;

	f = calloc(1, sizeof *f);
	assert_non_null(f);
	strcpy(f->tmp, "/tmp/ubchunks.XXXXXX");
	assert_non_null(mkdtemp(f->tmp));
	snprintf(f->dir, sizeof f->dir, "%s/cache", f->tmp);
	snprintf(f->dbpath, sizeof f->dbpath, "%s/upbridge.db", f->tmp);
	assert_int_equal(sqlite3_open(f->dbpath, &f->db), SQLITE_OK);
	reopen(f);
	f->data = malloc(LEN);
	assert_non_null(f->data);
	for (i = 0; i < LEN; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		f->data[i] = (uint8_t)x;
	}
	cache_sha256(f->data, LEN, f->sha);
	for (i = 0; i < NCH; i++) {
		n = LEN - i * CS < CS ? LEN - i * CS : CS;
		cache_sha256(f->data + i * CS, n,
		    f->chunks + i * CACHE_SHA_LEN);
	}
	*state = f;
	return (0);
}

static int
teardown(void **state)
{
	struct fix	*f = *state;

	cache_free(f->c);
	assert_int_equal(sqlite3_close(f->db), SQLITE_OK);
	assert_int_equal(nftw(f->tmp, rm_one, 16, FTW_DEPTH | FTW_PHYS), 0);
	free(f->data);
	free(f);
	return (0);
}

static void
put_chunks(struct fix *f)
{
	char	*cause = NULL;

	if (cache_chunks_put(f->c, f->sha, LEN, CS, f->chunks, NCH,
	    &cause) != 0)
		fail_msg("chunks_put: %s", cause);
}

static struct cache_writer *
open_writer(struct fix *f)
{
	struct cache_writer	*w;
	char			*cause = NULL;

	if ((w = cache_writer_open(f->c, f->sha, LEN, &cause)) == NULL)
		fail_msg("writer_open: %s", cause);
	return (w);
}

static void
write_ok(struct cache_writer *w, const uint8_t *p, size_t n)
{
	char	*cause = NULL;

	if (cache_writer_write(w, p, n, &cause) != 0)
		fail_msg("write: %s", cause);
}

static void
part_path(struct fix *f, char *buf, size_t len)
{
	char	 hex[CACHE_HEX_LEN + 1];

	cache_hex(f->sha, hex);
	snprintf(buf, len, "%s/partial/%s.part", f->dir, hex);
}

static off_t
file_size(const char *path)
{
	struct stat	 sb;

	assert_int_equal(stat(path, &sb), 0);
	return (sb.st_size);
}

/* Good chunks move the prefix chunk by chunk; the reader sees them. */
static void
test_prefix_advances(void **state)
{
	struct fix		*f = *state;
	struct cache_writer	*w;
	struct cache_entry	 e;
	uint8_t			 buf[LEN];
	char			*cause = NULL;
	size_t			 off;
	uint64_t		 want;
	int			 fd;

	put_chunks(f);
	w = open_writer(f);
	assert_int_equal(cache_writer_verified(f->c, f->sha), 0);
	fd = cache_open_read(f->c, f->sha);
	assert_true(fd >= 0);
	/* 1000-byte writes: the prefix moves only at chunk ends. */
	for (off = 0; off < LEN; off += 1000) {
		write_ok(w, f->data + off, off + 1000 > LEN ? LEN - off :
		    1000);
		want = (off + 1000) / CS * CS;
		if (off + 1000 >= LEN)
			want = LEN;
		assert_int_equal(cache_writer_verified(f->c, f->sha), want);
		assert_int_equal(cache_verified(f->c, f->sha), want);
		/* What is verified reads back through the partial fd. */
		if (want > 0) {
			assert_int_equal(pread(fd, buf, (size_t)want, 0),
			    (ssize_t)want);
			assert_memory_equal(buf, f->data, (size_t)want);
		}
	}
	assert_int_equal(cache_lookup(f->c, f->sha, &e), 0);
	assert_int_equal(e.state, CACHE_PARTIAL);
	assert_int_equal(e.verified, LEN);
	if (cache_writer_finish(w, &cause) != 0)
		fail_msg("finish: %s", cause);
	/* Renamed into blobs/: the fd opened on the partial still reads. */
	memset(buf, 0, sizeof buf);
	assert_int_equal(pread(fd, buf, LEN, 0), LEN);
	assert_memory_equal(buf, f->data, LEN);
	close(fd);
	assert_int_equal(cache_writer_verified(f->c, f->sha), UINT64_MAX);
	assert_int_equal(cache_verified(f->c, f->sha), LEN);
	assert_int_equal(cache_lookup(f->c, f->sha, &e), 0);
	assert_int_equal(e.state, CACHE_COMPLETE);
	assert_int_equal(e.verified, LEN);
	/* cache_open_read of a complete blob is cache_open_blob. */
	fd = cache_open_read(f->c, f->sha);
	assert_true(fd >= 0);
	close(fd);
}

/* A bad chunk stops the prefix, is cut off, and can be sent again. */
static void
test_bad_chunk(void **state)
{
	struct fix		*f = *state;
	struct cache_writer	*w;
	uint8_t			 bad[CS];
	char			*cause = NULL, path[256];

	put_chunks(f);
	w = open_writer(f);
	write_ok(w, f->data, CS + 100);
	assert_int_equal(cache_writer_verified(f->c, f->sha), CS);
	/* The rest of chunk 2 with one flipped byte. */
	memcpy(bad, f->data + CS + 100, CS - 100);
	bad[500] ^= 0x40;
	assert_int_equal(cache_writer_write(w, bad, CS - 100, &cause), -1);
	assert_non_null(cause);
	assert_non_null(strstr(cause, "chunk 2 of 4: sha256 mismatch"));
	free(cause);
	cause = NULL;
	/* Back to the verified prefix, on disk too. */
	assert_int_equal(cache_writer_verified(f->c, f->sha), CS);
	assert_int_equal(cache_writer_offset(w), CS);
	part_path(f, path, sizeof path);
	assert_int_equal(file_size(path), CS);
	/* The good bytes from there on finish the blob (digest intact). */
	write_ok(w, f->data + CS, LEN - CS);
	assert_int_equal(cache_writer_verified(f->c, f->sha), LEN);
	if (cache_writer_finish(w, &cause) != 0)
		fail_msg("finish after a bad chunk: %s", cause);
	assert_int_equal(cache_verified(f->c, f->sha), LEN);
}

/* A bad last (short) chunk is caught too; finish refuses a short blob. */
static void
test_bad_last_chunk(void **state)
{
	struct fix		*f = *state;
	struct cache_writer	*w;
	uint8_t			 bad[1000];
	char			*cause = NULL;

	put_chunks(f);
	w = open_writer(f);
	write_ok(w, f->data, 3 * CS);
	memcpy(bad, f->data + 3 * CS, 1000);
	bad[999] ^= 1;
	assert_int_equal(cache_writer_write(w, bad, 1000, &cause), -1);
	assert_non_null(strstr(cause, "chunk 4 of 4"));
	free(cause);
	cause = NULL;
	assert_int_equal(cache_writer_verified(f->c, f->sha), 3 * CS);
	assert_int_equal(cache_writer_finish(w, &cause), -1);
	assert_non_null(strstr(cause, "incomplete"));
	free(cause);
	/* The partial stays for resume. */
	assert_int_equal(cache_verified(f->c, f->sha), 0);
}

/* Resume re-verifies what is on disk and keeps the verified prefix. */
static void
test_resume_keeps_prefix(void **state)
{
	struct fix		*f = *state;
	struct cache_writer	*w;
	char			*cause = NULL;

	put_chunks(f);
	w = open_writer(f);
	write_ok(w, f->data, 2 * CS + 500);
	assert_int_equal(cache_writer_verified(f->c, f->sha), 2 * CS);
	cache_writer_close(w);
	reopen(f);	/* a daemon restart */
	w = open_writer(f);
	assert_int_equal(cache_writer_offset(w), 2 * CS + 500);
	assert_int_equal(cache_writer_verified(f->c, f->sha), 0);
	while (cache_writer_prime(w, 1000, &cause) == 1)
		;
	assert_null(cause);
	assert_int_equal(cache_writer_verified(f->c, f->sha), 2 * CS);
	assert_int_equal(cache_writer_offset(w), 2 * CS + 500);
	write_ok(w, f->data + 2 * CS + 500, LEN - 2 * CS - 500);
	if (cache_writer_finish(w, &cause) != 0)
		fail_msg("finish after resume: %s", cause);
}

/* A torn chunk on disk (power loss) is cut off when resuming. */
static void
test_resume_torn_chunk(void **state)
{
	struct fix		*f = *state;
	struct cache_writer	*w;
	char			*cause = NULL, path[256];
	uint8_t			 x = 0xff;
	int			 fd;

	put_chunks(f);
	w = open_writer(f);
	write_ok(w, f->data, 3 * CS);
	cache_writer_close(w);
	part_path(f, path, sizeof path);
	fd = open(path, O_WRONLY);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, &x, 1, CS + 7), 1);	/* chunk 2 */
	close(fd);
	w = open_writer(f);
	while (cache_writer_prime(w, 0, &cause) == 1)
		;
	assert_null(cause);
	assert_int_equal(cache_writer_verified(f->c, f->sha), CS);
	assert_int_equal(cache_writer_offset(w), CS);
	assert_int_equal(file_size(path), CS);
	write_ok(w, f->data + CS, LEN - CS);
	if (cache_writer_finish(w, &cause) != 0)
		fail_msg("finish after a torn chunk: %s", cause);
}

/* Without a chunk list nothing is verified before the whole file. */
static void
test_no_list(void **state)
{
	struct fix		*f = *state;
	struct cache_writer	*w;
	char			*cause = NULL;

	w = open_writer(f);
	write_ok(w, f->data, LEN - 1);
	assert_int_equal(cache_writer_verified(f->c, f->sha), 0);
	assert_int_equal(cache_verified(f->c, f->sha), 0);
	write_ok(w, f->data + LEN - 1, 1);
	assert_int_equal(cache_writer_verified(f->c, f->sha), 0);
	if (cache_writer_finish(w, &cause) != 0)
		fail_msg("finish: %s", cause);
	assert_int_equal(cache_verified(f->c, f->sha), LEN);
	/* Nothing to read for an unknown blob. */
	f->sha[0] ^= 1;
	assert_int_equal(cache_open_read(f->c, f->sha), -1);
	assert_int_equal(cache_verified(f->c, f->sha), 0);
}

/* The list API: bad counts change nothing, get, prune. */
static void
test_list_api(void **state)
{
	struct fix		*f = *state;
	struct cache_pkg	 p;
	uint8_t			*h = NULL;
	uint32_t		 cs, n;
	char			*cause = NULL;

	assert_int_equal(cache_chunks_get(f->c, f->sha, &cs, &h, &n), 0);
	assert_int_equal(cache_chunks_put(f->c, f->sha, LEN, CS, f->chunks,
	    NCH - 1, &cause), -1);
	assert_non_null(strstr(cause, "3 hashes"));
	free(cause);
	cause = NULL;
	assert_int_equal(cache_chunks_put(f->c, f->sha, LEN, 0, f->chunks,
	    NCH, &cause), -1);
	free(cause);
	cause = NULL;
	assert_int_equal(cache_chunks_get(f->c, f->sha, &cs, &h, &n), 0);
	put_chunks(f);
	assert_int_equal(cache_chunks_get(f->c, f->sha, &cs, &h, &n), 1);
	assert_int_equal(cs, CS);
	assert_int_equal(n, NCH);
	assert_memory_equal(h, f->chunks, sizeof f->chunks);
	free(h);
	h = NULL;

	/* Kept while a package names the blob, pruned after. */
	memset(&p, 0, sizeof p);
	strcpy(p.id, "app-1");
	strcpy(p.component, "app");
	strcpy(p.version, "1");
	p.size = LEN;
	memcpy(p.sha256, f->sha, CACHE_SHA_LEN);
	p.image_size = LEN;
	memcpy(p.image_sha256, f->sha, CACHE_SHA_LEN);
	assert_int_equal(cache_pkg_replace(f->c, &p, 1, &cause), 0);
	assert_int_equal(cache_chunks_prune(f->c), 0);
	assert_int_equal(cache_chunks_get(f->c, f->sha, &cs, &h, &n), 1);
	free(h);
	h = NULL;
	assert_int_equal(cache_pkg_replace(f->c, NULL, 0, &cause), 0);
	assert_int_equal(cache_chunks_prune(f->c), 0);
	assert_int_equal(cache_chunks_get(f->c, f->sha, &cs, &h, &n), 0);
	assert_null(h);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
		T(test_prefix_advances),
		T(test_bad_chunk),
		T(test_bad_last_chunk),
		T(test_resume_keeps_prefix),
		T(test_resume_torn_chunk),
		T(test_no_list),
		T(test_list_api),
#undef T
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
