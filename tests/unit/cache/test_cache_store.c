/*
 * test_cache_store.c: the blob store (cache.c) and the package table
 * (cache_pkg.c) on a real SQLite file and a real directory under /tmp.
 */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "cache.h"

struct fix {
	char		 tmp[64];
	char		 dir[128];	/* cache directory */
	char		 dbpath[128];
	sqlite3		*db;
	struct cache	*c;
};

/* ------------------------------------------------------------------ */
/* helpers                                                             */

static int
rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	return (remove(path));
}

static void
reopen(struct fix *f, uint64_t quota)
{
	char	*cause = NULL;

	cache_free(f->c);
	f->c = cache_open(f->db, f->dir, quota, &cause);
	if (f->c == NULL)
		fail_msg("cache_open: %s", cause);
	assert_null(cause);
}

static int
setup(void **state)
{
	struct fix	*f;

	f = calloc(1, sizeof *f);
	assert_non_null(f);
	strcpy(f->tmp, "/tmp/ubcache.XXXXXX");
	assert_non_null(mkdtemp(f->tmp));
	/* A directory that does not exist yet, two levels deep. */
	snprintf(f->dir, sizeof f->dir, "%s/state/cache", f->tmp);
	snprintf(f->dbpath, sizeof f->dbpath, "%s/upbridge.db", f->tmp);
	assert_int_equal(sqlite3_open(f->dbpath, &f->db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(f->db, "PRAGMA journal_mode=WAL",
	    NULL, NULL, NULL), SQLITE_OK);
	reopen(f, 0);
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
	free(f);
	return (0);
}

static void
exec_sql(struct fix *f, const char *sql)
{
	char	*err = NULL;

	if (sqlite3_exec(f->db, sql, NULL, NULL, &err) != SQLITE_OK)
		fail_msg("%s: %s", sql, err);
}

/* Deterministic bytes, different per seed. */
static uint8_t *
make_data(unsigned int seed, size_t len, uint8_t sha[CACHE_SHA_LEN])
{
	uint8_t		*p;
	uint32_t	 x = seed * 2654435761u + 1;
	size_t		 i;

	p = malloc(len == 0 ? 1 : len);
	assert_non_null(p);
	for (i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		p[i] = (uint8_t)x;
	}
	cache_sha256(p, len, sha);
	return (p);
}

static void
write_chunks(struct cache_writer *w, const uint8_t *p, size_t from,
    size_t to, size_t chunk)
{
	char	*cause = NULL;
	size_t	 n;

	while (from < to) {
		n = to - from < chunk ? to - from : chunk;
		if (cache_writer_write(w, p + from, n, &cause) != 0)
			fail_msg("write: %s", cause);
		from += n;
	}
}

/* A complete blob of `len' bytes from `seed'; its digest into sha. */
static void
put_blob(struct fix *f, unsigned int seed, size_t len,
    uint8_t sha[CACHE_SHA_LEN])
{
	struct cache_writer	*w;
	uint8_t			*p;
	char			*cause = NULL;

	p = make_data(seed, len, sha);
	w = cache_writer_open(f->c, sha, len, &cause);
	if (w == NULL)
		fail_msg("writer_open: %s", cause);
	write_chunks(w, p, 0, len, 1000);
	if (cache_writer_finish(w, &cause) != 0)
		fail_msg("finish: %s", cause);
	free(p);
}

static enum cache_state
state_of(struct fix *f, const uint8_t sha[CACHE_SHA_LEN])
{
	struct cache_entry	 e;

	assert_int_equal(cache_lookup(f->c, sha, &e), 0);
	assert_memory_equal(e.sha256, sha, CACHE_SHA_LEN);
	return (e.state);
}

static void
blob_file(struct fix *f, const uint8_t sha[CACHE_SHA_LEN], char *buf,
    size_t len)
{
	char	 hex[CACHE_HEX_LEN + 1];

	cache_hex(sha, hex);
	snprintf(buf, len, "%s/blobs/%.2s/%s", f->dir, hex, hex);
}

static void
part_file(struct fix *f, const uint8_t sha[CACHE_SHA_LEN], char *buf,
    size_t len)
{
	char	 hex[CACHE_HEX_LEN + 1];

	cache_hex(sha, hex);
	snprintf(buf, len, "%s/partial/%s.part", f->dir, hex);
}

static int
exists(const char *path)
{
	struct stat	 sb;

	return (stat(path, &sb) == 0);
}

/* Reads the whole blob through cache_open_blob and compares. */
static void
assert_blob_reads(struct fix *f, const uint8_t sha[CACHE_SHA_LEN],
    unsigned int seed, size_t len)
{
	uint8_t	 dsha[CACHE_SHA_LEN], *want, *got;
	int	 fd;

	want = make_data(seed, len, dsha);
	assert_memory_equal(dsha, sha, CACHE_SHA_LEN);
	got = malloc(len + 1);
	assert_non_null(got);
	fd = cache_open_blob(f->c, sha);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, got, len + 1, 0), (ssize_t)len);
	assert_memory_equal(got, want, len);
	close(fd);
	free(got);
	free(want);
}

/* ------------------------------------------------------------------ */
/* store                                                               */

static void
test_write_read(void **state)
{
	struct fix		*f = *state;
	struct cache_writer	*w;
	struct cache_entry	 e;
	struct cache_usage	 u;
	uint8_t			 sha[CACHE_SHA_LEN], *p;
	char			 path[256], want[256];
	char			*cause = NULL;
	struct stat		 sb;
	size_t			 len = 10000;

	p = make_data(1, len, sha);
	assert_non_null(w = cache_writer_open(f->c, sha, len, &cause));
	assert_int_equal(cache_writer_offset(w), 0);
	assert_int_equal(cache_writer_prime(w, 100, &cause), 0);

	write_chunks(w, p, 0, 3000, 3000);
	write_chunks(w, p, 3000, 7000, 1500);
	assert_int_equal(cache_writer_offset(w), 7000);
	assert_int_equal(cache_lookup(f->c, sha, &e), 0);
	assert_int_equal(e.state, CACHE_PARTIAL);
	assert_int_equal(e.size, len);
	assert_int_equal(e.have, 7000);
	assert_int_equal(cache_open_blob(f->c, sha), -1);
	assert_int_equal(cache_path(f->c, sha, path, sizeof path), 0);
	part_file(f, sha, want, sizeof want);
	assert_string_equal(path, want);

	/* Too much: refused, nothing written. */
	assert_int_equal(cache_writer_write(w, p, 3001, &cause), -1);
	assert_non_null(strstr(cause, "beyond size"));
	free(cause);
	cause = NULL;

	/* A second writer for the same blob is refused. */
	assert_null(cache_writer_open(f->c, sha, len, &cause));
	assert_non_null(strstr(cause, "already being written"));
	free(cause);
	cause = NULL;

	write_chunks(w, p, 7000, len, 3000);
	assert_int_equal(cache_writer_finish(w, &cause), 0);
	assert_null(cause);

	assert_int_equal(cache_lookup(f->c, sha, &e), 0);
	assert_int_equal(e.state, CACHE_COMPLETE);
	assert_int_equal(e.have, len);
	assert_int_equal(e.pins, 0);
	assert_true(e.last_used > 0);
	assert_int_equal(cache_path(f->c, sha, path, sizeof path), 0);
	blob_file(f, sha, want, sizeof want);
	assert_string_equal(path, want);
	assert_int_equal(stat(want, &sb), 0);
	assert_int_equal(sb.st_size, len);
	part_file(f, sha, want, sizeof want);
	assert_false(exists(want));
	assert_blob_reads(f, sha, 1, len);

	cache_usage(f->c, &u);
	assert_int_equal(u.used, len);
	assert_int_equal(u.blobs, 1);
	assert_int_equal(u.pinned, 0);

	/* Complete blobs are not written again. */
	assert_null(cache_writer_open(f->c, sha, len, &cause));
	assert_non_null(strstr(cause, "already complete"));
	free(cause);

	/* The directory was made with mode 0750. */
	assert_int_equal(stat(f->dir, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0750);
	free(p);
}

static void
test_finish_incomplete_keeps_partial(void **state)
{
	struct fix		*f = *state;
	struct cache_writer	*w;
	struct cache_entry	 e;
	uint8_t			 sha[CACHE_SHA_LEN], *p;
	char			*cause = NULL;

	p = make_data(2, 5000, sha);
	assert_non_null(w = cache_writer_open(f->c, sha, 5000, NULL));
	write_chunks(w, p, 0, 4000, 4000);
	assert_int_equal(cache_writer_finish(w, &cause), -1);
	assert_non_null(strstr(cause, "incomplete: 4000 of 5000"));
	free(cause);
	assert_int_equal(cache_lookup(f->c, sha, &e), 0);
	assert_int_equal(e.state, CACHE_PARTIAL);
	assert_int_equal(e.have, 4000);
	free(p);
}

static void
test_resume_after_close(void **state)
{
	struct fix		*f = *state;
	struct cache_writer	*w;
	struct cache_entry	 e;
	uint8_t			 sha[CACHE_SHA_LEN], *p;
	char			*cause = NULL;
	size_t			 len = 50000;

	p = make_data(3, len, sha);
	assert_non_null(w = cache_writer_open(f->c, sha, len, NULL));
	write_chunks(w, p, 0, 20000, 7000);
	cache_writer_close(w);
	cache_writer_close(NULL);

	assert_int_equal(cache_lookup(f->c, sha, &e), 0);
	assert_int_equal(e.state, CACHE_PARTIAL);
	assert_int_equal(e.have, 20000);

	assert_non_null(w = cache_writer_open(f->c, sha, len, &cause));
	assert_int_equal(cache_writer_offset(w), 20000);
	assert_int_equal(cache_writer_prime(w, 0, &cause), 0);
	write_chunks(w, p, 20000, len, 7000);
	assert_int_equal(cache_writer_finish(w, &cause), 0);
	assert_blob_reads(f, sha, 3, len);
	free(p);
}

static void
test_resume_after_reopen(void **state)
{
	struct fix		*f = *state;
	struct cache_writer	*w;
	struct cache_entry	 e;
	uint8_t			 sha[CACHE_SHA_LEN], *p;
	char			*cause = NULL;
	size_t			 len = 150000, half = 100000;
	int			 rc, steps = 0;

	p = make_data(4, len, sha);
	assert_non_null(w = cache_writer_open(f->c, sha, len, NULL));
	write_chunks(w, p, 0, half, 4096);
	cache_writer_close(w);

	/* A new cache object on the same database and directory. */
	reopen(f, 0);
	assert_int_equal(cache_lookup(f->c, sha, &e), 0);
	assert_int_equal(e.state, CACHE_PARTIAL);
	assert_int_equal(e.have, half);

	assert_non_null(w = cache_writer_open(f->c, sha, len, &cause));
	assert_int_equal(cache_writer_offset(w), half);

	/* New bytes wait until the old ones are hashed again. */
	assert_int_equal(cache_writer_write(w, p + half, 10, &cause), -1);
	assert_non_null(strstr(cause, "not re-hashed yet"));
	free(cause);
	cause = NULL;

	while ((rc = cache_writer_prime(w, 4096, &cause)) == 1) {
		steps++;
		if (steps == 3) {
			assert_int_equal(cache_writer_write(w, p + half, 10,
			    &cause), -1);
			free(cause);
			cause = NULL;
		}
	}
	assert_int_equal(rc, 0);
	/* 100000 bytes in 4096-byte steps: 24 steps say "more". */
	assert_int_equal(steps, 24);
	assert_int_equal(cache_writer_prime(w, 4096, &cause), 0);

	write_chunks(w, p, half, len, 9999);
	assert_int_equal(cache_writer_finish(w, &cause), 0);
	assert_null(cause);
	assert_int_equal(state_of(f, sha), CACHE_COMPLETE);
	assert_blob_reads(f, sha, 4, len);
	free(p);
}

static void
test_corrupt_download(void **state)
{
	struct fix		*f = *state;
	struct cache_writer	*w;
	struct cache_entry	 e;
	uint8_t			 sha[CACHE_SHA_LEN], bsha[CACHE_SHA_LEN];
	uint8_t			*good, *bad;
	char			 path[256], want[400];
	char			 hex[CACHE_HEX_LEN + 1];
	char			 bhex[CACHE_HEX_LEN + 1];
	char			*cause = NULL;
	size_t			 len = 8000;

	good = make_data(5, len, sha);
	bad = make_data(6, len, bsha);
	cache_hex(sha, hex);
	cache_hex(bsha, bhex);

	assert_non_null(w = cache_writer_open(f->c, sha, len, NULL));
	write_chunks(w, bad, 0, len, 3000);
	assert_int_equal(cache_writer_finish(w, &cause), -1);
	snprintf(want, sizeof want, "sha256 mismatch: expected %s, got %s",
	    hex, bhex);
	assert_string_equal(cause, want);
	free(cause);
	cause = NULL;

	assert_int_equal(cache_lookup(f->c, sha, &e), 0);
	assert_int_equal(e.state, CACHE_CORRUPT);
	assert_int_equal(e.have, 0);
	assert_int_equal(cache_open_blob(f->c, sha), -1);
	blob_file(f, sha, path, sizeof path);
	assert_false(exists(path));
	part_file(f, sha, path, sizeof path);
	assert_false(exists(path));
	assert_null(cache_check_start(f->c, sha, &cause));
	assert_non_null(strstr(cause, "not complete (corrupt)"));
	free(cause);
	cause = NULL;

	/* Fetched again, right this time. */
	assert_non_null(w = cache_writer_open(f->c, sha, len, &cause));
	assert_int_equal(cache_writer_offset(w), 0);
	write_chunks(w, good, 0, len, 3000);
	assert_int_equal(cache_writer_finish(w, &cause), 0);
	assert_blob_reads(f, sha, 5, len);
	free(good);
	free(bad);
}

static void
test_check_detects_corruption(void **state)
{
	struct fix		*f = *state;
	struct cache_check	*k;
	uint8_t			 a[CACHE_SHA_LEN], b[CACHE_SHA_LEN];
	char			 path[256];
	char			*cause = NULL;
	int			 fd, rc, steps = 0;

	put_blob(f, 7, 20000, a);
	put_blob(f, 8, 20000, b);

	/* An intact blob passes, in steps. */
	assert_non_null(k = cache_check_start(f->c, a, &cause));
	while ((rc = cache_check_step(k, 3000, &cause)) == 1)
		steps++;
	assert_int_equal(rc, 0);
	assert_int_equal(steps, 6);
	assert_int_equal(cache_check_step(k, 3000, &cause), 0);
	cache_check_free(k);
	assert_int_equal(state_of(f, a), CACHE_COMPLETE);

	/* One flipped byte near the end of b, same size. */
	blob_file(f, b, path, sizeof path);
	assert_true((fd = open(path, O_WRONLY)) >= 0);
	assert_int_equal(pwrite(fd, "\xff\x00", 2, 19990), 2);
	close(fd);

	assert_non_null(k = cache_check_start(f->c, b, &cause));
	steps = 0;
	while ((rc = cache_check_step(k, 5000, &cause)) == 1)
		steps++;
	assert_int_equal(rc, -1);
	assert_int_equal(steps, 3);
	assert_non_null(strstr(cause, "sha256 mismatch"));
	free(cause);
	cause = NULL;
	cache_check_free(k);
	cache_check_free(NULL);

	assert_int_equal(state_of(f, b), CACHE_CORRUPT);
	assert_false(exists(path));
	assert_int_equal(cache_open_blob(f->c, b), -1);
	assert_int_equal(state_of(f, a), CACHE_COMPLETE);
}

/*
 * cache_open checks sizes (not contents), drops what it cannot use and
 * removes files the index does not know.
 */
static void
test_open_reconciles(void **state)
{
	struct fix		*f = *state;
	struct cache_writer	*w;
	struct cache_entry	 e;
	uint8_t			 a[CACHE_SHA_LEN], b[CACHE_SHA_LEN];
	uint8_t			 c[CACHE_SHA_LEN], d[CACHE_SHA_LEN];
	uint8_t			 x[CACHE_SHA_LEN], *p;
	char			 pa[256], pb[256], pc[256], pd[256];
	char			 s1[256], s2[256], s3[256], s4[256];
	char			 hex[CACHE_HEX_LEN + 1];
	char			*cause = NULL;
	int			 fd;

	put_blob(f, 10, 3000, a);	/* will be cut short */
	put_blob(f, 11, 3000, b);	/* will be deleted */
	put_blob(f, 12, 3000, c);	/* stays */
	blob_file(f, a, pa, sizeof pa);
	blob_file(f, b, pb, sizeof pb);
	blob_file(f, c, pc, sizeof pc);
	assert_int_equal(truncate(pa, 2999), 0);
	assert_int_equal(unlink(pb), 0);

	/* Partial whose file grew behind our back by a crash: length wins. */
	p = make_data(13, 9000, d);
	assert_non_null(w = cache_writer_open(f->c, d, 9000, NULL));
	write_chunks(w, p, 0, 2000, 2000);
	cache_writer_close(w);
	part_file(f, d, pd, sizeof pd);
	assert_true((fd = open(pd, O_WRONLY | O_APPEND)) >= 0);
	assert_int_equal(write(fd, p + 2000, 500), 500);
	close(fd);

	/* Strays. */
	free(make_data(14, 10, x));
	cache_hex(x, hex);
	snprintf(s1, sizeof s1, "%s/partial/%s.part", f->dir, hex);
	snprintf(s2, sizeof s2, "%s/partial/junk", f->dir);
	snprintf(s3, sizeof s3, "%s/blobs/%.2s", f->dir, hex);
	mkdir(s3, 0750);
	snprintf(s3, sizeof s3, "%s/blobs/%.2s/%s", f->dir, hex, hex);
	snprintf(s4, sizeof s4, "%s/blobs/stray", f->dir);
	assert_int_equal(close(open(s1, O_CREAT | O_WRONLY, 0600)), 0);
	assert_int_equal(close(open(s2, O_CREAT | O_WRONLY, 0600)), 0);
	assert_int_equal(close(open(s3, O_CREAT | O_WRONLY, 0600)), 0);
	assert_int_equal(close(open(s4, O_CREAT | O_WRONLY, 0600)), 0);

	reopen(f, 0);

	assert_int_equal(state_of(f, a), CACHE_CORRUPT);
	assert_false(exists(pa));
	assert_int_equal(state_of(f, b), CACHE_ABSENT);
	assert_int_equal(state_of(f, c), CACHE_COMPLETE);
	assert_true(exists(pc));
	assert_int_equal(cache_lookup(f->c, d, &e), 0);
	assert_int_equal(e.state, CACHE_PARTIAL);
	assert_int_equal(e.have, 2500);
	assert_true(exists(pd));
	assert_false(exists(s1));
	assert_false(exists(s2));
	assert_false(exists(s3));
	assert_false(exists(s4));
	assert_int_equal(state_of(f, x), CACHE_ABSENT);

	/* The resumed partial still completes. */
	assert_non_null(w = cache_writer_open(f->c, d, 9000, &cause));
	assert_int_equal(cache_writer_offset(w), 2500);
	assert_int_equal(cache_writer_prime(w, 1 << 20, &cause), 0);
	write_chunks(w, p, 2500, 9000, 4000);
	assert_int_equal(cache_writer_finish(w, &cause), 0);
	assert_blob_reads(f, d, 13, 9000);
	free(p);
}

/*
 * A crash after the rename into blobs/ but before the daemon committed
 * the index: the blob goes back to partial and is verified again.
 */
static void
test_crash_after_rename(void **state)
{
	struct fix		*f = *state;
	struct cache_writer	*w;
	struct cache_entry	 e;
	uint8_t			 sha[CACHE_SHA_LEN], *p;
	char			 blob[256], part[256];
	char			*cause = NULL;

	p = make_data(15, 6000, sha);
	assert_non_null(w = cache_writer_open(f->c, sha, 6000, NULL));
	write_chunks(w, p, 0, 6000, 6000);
	cache_writer_close(w);

	exec_sql(f, "BEGIN");
	assert_non_null(w = cache_writer_open(f->c, sha, 6000, &cause));
	assert_int_equal(cache_writer_prime(w, 0, &cause), 0);
	assert_int_equal(cache_writer_finish(w, &cause), 0);
	blob_file(f, sha, blob, sizeof blob);
	part_file(f, sha, part, sizeof part);
	assert_true(exists(blob));
	exec_sql(f, "ROLLBACK");

	reopen(f, 0);
	assert_int_equal(cache_lookup(f->c, sha, &e), 0);
	assert_int_equal(e.state, CACHE_PARTIAL);
	assert_int_equal(e.have, 6000);
	assert_false(exists(blob));
	assert_true(exists(part));

	assert_non_null(w = cache_writer_open(f->c, sha, 6000, &cause));
	assert_int_equal(cache_writer_prime(w, 1000, &cause), 1);
	while (cache_writer_prime(w, 1000, &cause) == 1)
		;
	assert_int_equal(cache_writer_finish(w, &cause), 0);
	assert_blob_reads(f, sha, 15, 6000);
	free(p);
}

/*
 * A crash in the first second of a download: the writer's row was in the
 * daemon's open transaction, never committed, but its bytes are on disk.
 * The partial of a known package is kept and resumes where it ends; one
 * that no package names is still a stray and goes.
 */
static void
test_crash_before_row_commit(void **state)
{
	struct fix		*f = *state;
	struct cache_writer	*w;
	struct cache_entry	 e;
	struct cache_pkg	 pkg;
	uint8_t			 sha[CACHE_SHA_LEN], xsha[CACHE_SHA_LEN];
	uint8_t			*p, *x;
	char			 part[256], xpart[256], *cause = NULL;
	size_t			 len = 300000, got = 120000;

	p = make_data(31, len, sha);
	memset(&pkg, 0, sizeof pkg);
	snprintf(pkg.id, sizeof pkg.id, "app-2.0.0");
	snprintf(pkg.component, sizeof pkg.component, "app");
	snprintf(pkg.version, sizeof pkg.version, "2.0.0");
	snprintf(pkg.url, sizeof pkg.url, "packages/app.bin");
	pkg.size = len;
	memcpy(pkg.sha256, sha, CACHE_SHA_LEN);
	assert_int_equal(cache_pkg_replace(f->c, &pkg, 1, &cause), 0);

	exec_sql(f, "BEGIN");
	assert_non_null(w = cache_writer_open(f->c, sha, len, &cause));
	write_chunks(w, p, 0, got, 4096);
	/* Another blob no package names, also uncommitted. */
	x = make_data(32, 5000, xsha);
	{
		struct cache_writer *xw;

		assert_non_null(xw = cache_writer_open(f->c, xsha, 5000,
		    &cause));
		write_chunks(xw, x, 0, 3000, 1000);
		cache_writer_close(xw);
	}
	cache_writer_close(w);
	part_file(f, sha, part, sizeof part);
	part_file(f, xsha, xpart, sizeof xpart);
	assert_true(exists(part));
	assert_true(exists(xpart));
	exec_sql(f, "ROLLBACK");	/* kill -9: the rows are gone */
	assert_int_equal(state_of(f, sha), CACHE_ABSENT);

	reopen(f, 0);
	assert_int_equal(cache_lookup(f->c, sha, &e), 0);
	assert_int_equal(e.state, CACHE_PARTIAL);
	assert_int_equal(e.size, len);
	assert_int_equal(e.have, got);
	assert_true(exists(part));
	assert_int_equal(state_of(f, xsha), CACHE_ABSENT);
	assert_false(exists(xpart));

	/* It resumes at the bytes held, re-hashed, and completes. */
	assert_non_null(w = cache_writer_open(f->c, sha, len, &cause));
	assert_int_equal(cache_writer_offset(w), got);
	while (cache_writer_prime(w, 65536, &cause) == 1)
		;
	write_chunks(w, p, got, len, 50000);
	assert_int_equal(cache_writer_finish(w, &cause), 0);
	assert_blob_reads(f, sha, 31, len);
	free(p);
	free(x);
}

static void
test_quota_lru(void **state)
{
	struct fix		*f = *state;
	struct cache_usage	 u;
	uint8_t			 a[CACHE_SHA_LEN], b[CACHE_SHA_LEN];
	uint8_t			 c[CACHE_SHA_LEN], d[CACHE_SHA_LEN];
	uint8_t			 e[CACHE_SHA_LEN];
	char			 path[256];
	int			 fd;

	reopen(f, 12 * 1024);
	put_blob(f, 20, 4096, a);
	put_blob(f, 21, 4096, b);
	put_blob(f, 22, 4096, c);
	cache_usage(f->c, &u);
	assert_int_equal(u.quota, 12 * 1024);
	assert_int_equal(u.used, 12 * 1024);
	assert_int_equal(u.blobs, 3);
	assert_int_equal(u.evictions, 0);

	/* Use a: b is now the least recently used. */
	assert_true((fd = cache_open_blob(f->c, a)) >= 0);
	close(fd);

	put_blob(f, 23, 4096, d);
	assert_int_equal(state_of(f, b), CACHE_ABSENT);
	blob_file(f, b, path, sizeof path);
	assert_false(exists(path));
	assert_int_equal(state_of(f, a), CACHE_COMPLETE);
	assert_int_equal(state_of(f, c), CACHE_COMPLETE);
	assert_int_equal(state_of(f, d), CACHE_COMPLETE);
	cache_usage(f->c, &u);
	assert_int_equal(u.evictions, 1);
	assert_int_equal(u.used, 12 * 1024);

	/* The order survives a restart: c is next, then a. */
	reopen(f, 12 * 1024);
	put_blob(f, 24, 8192, e);
	assert_int_equal(state_of(f, c), CACHE_ABSENT);
	assert_int_equal(state_of(f, a), CACHE_ABSENT);
	assert_int_equal(state_of(f, d), CACHE_COMPLETE);
	assert_int_equal(state_of(f, e), CACHE_COMPLETE);
	cache_usage(f->c, &u);
	assert_int_equal(u.evictions, 2);
}

static void
test_quota_pinned(void **state)
{
	struct fix		*f = *state;
	struct cache_usage	 u;
	struct cache_writer	*w;
	uint8_t			 a[CACHE_SHA_LEN], b[CACHE_SHA_LEN];
	uint8_t			 c[CACHE_SHA_LEN], d[CACHE_SHA_LEN];
	uint8_t			*p;
	char			*cause = NULL;

	reopen(f, 12 * 1024);
	put_blob(f, 30, 4096, a);
	put_blob(f, 31, 4096, b);
	put_blob(f, 32, 4096, c);
	assert_int_equal(cache_pin(f->c, a, "campaign-1"), 0);
	assert_int_equal(cache_pin(f->c, b, "campaign-2"), 0);
	cache_usage(f->c, &u);
	assert_int_equal(u.pinned, 8192);

	/* 8 KiB cannot fit beside 8 KiB of pins: nothing is evicted. */
	p = make_data(33, 8192, d);
	assert_null(cache_writer_open(f->c, d, 8192, &cause));
	assert_string_equal(cause,
	    "cache quota 12 KiB: 8 KiB pinned, cannot fit 8 KiB");
	free(cause);
	cause = NULL;
	assert_int_equal(state_of(f, c), CACHE_COMPLETE);
	assert_int_equal(state_of(f, d), CACHE_ABSENT);
	cache_usage(f->c, &u);
	assert_int_equal(u.evictions, 0);

	/* Bigger than the whole quota. */
	assert_null(cache_writer_open(f->c, d, 13 * 1024, &cause));
	assert_non_null(strstr(cause, "cannot fit 13 KiB"));
	free(cause);
	cause = NULL;

	/* 4 KiB fits by evicting c, never a or b. */
	assert_non_null(w = cache_writer_open(f->c, d, 4096, &cause));
	assert_int_equal(state_of(f, c), CACHE_ABSENT);
	assert_int_equal(state_of(f, a), CACHE_COMPLETE);
	assert_int_equal(state_of(f, b), CACHE_COMPLETE);

	/* A writer's reservation counts while it is open. */
	assert_null(cache_writer_open(f->c, c, 4096, &cause));
	assert_string_equal(cause, "cache quota 12 KiB: 8 KiB pinned, "
	    "4 KiB in partial downloads, cannot fit 4 KiB");
	free(cause);
	cause = NULL;
	cache_writer_close(w);
	free(p);
}

static void
test_pins_persist(void **state)
{
	struct fix		*f = *state;
	struct cache_entry	 e;
	uint8_t			 a[CACHE_SHA_LEN], z[CACHE_SHA_LEN];
	char			 path[256];
	char			*cause = NULL;

	put_blob(f, 40, 2000, a);
	assert_int_equal(cache_pin(f->c, a, "campaign-1"), 0);
	assert_int_equal(cache_pin(f->c, a, "campaign-1"), 0);
	assert_int_equal(cache_pin(f->c, a, "campaign-2"), 0);
	assert_int_equal(cache_pin(f->c, a, ""), -1);
	assert_int_equal(cache_pin(f->c, a, NULL), -1);

	assert_int_equal(cache_remove(f->c, a, &cause), -1);
	assert_non_null(strstr(cause, "pinned by 2 owners"));
	free(cause);
	cause = NULL;

	reopen(f, 0);
	assert_int_equal(cache_lookup(f->c, a, &e), 0);
	assert_int_equal(e.state, CACHE_COMPLETE);
	assert_int_equal(e.pins, 2);

	assert_int_equal(cache_unpin(f->c, a, "campaign-1"), 0);
	assert_int_equal(cache_unpin(f->c, a, "nobody"), 0);
	reopen(f, 0);
	assert_int_equal(cache_lookup(f->c, a, &e), 0);
	assert_int_equal(e.pins, 1);
	assert_int_equal(cache_remove(f->c, a, &cause), -1);
	assert_non_null(strstr(cause, "pinned by 1 owner (campaign-2)"));
	free(cause);
	cause = NULL;

	assert_int_equal(cache_unpin(f->c, a, "campaign-2"), 0);
	assert_int_equal(cache_remove(f->c, a, &cause), 0);
	assert_int_equal(state_of(f, a), CACHE_ABSENT);
	blob_file(f, a, path, sizeof path);
	assert_false(exists(path));

	/* A package can be pinned before it is fetched. */
	free(make_data(41, 100, z));
	assert_int_equal(cache_pin(f->c, z, "campaign-3"), 0);
	assert_int_equal(cache_lookup(f->c, z, &e), 0);
	assert_int_equal(e.state, CACHE_ABSENT);
	assert_int_equal(e.pins, 1);
}

static int	 nforeach;

static void
count_entry(void *arg, const struct cache_entry *e)
{
	uint64_t	*total = arg;

	*total += e->size;
	nforeach++;
}

static void
test_unknown_and_foreach(void **state)
{
	struct fix		*f = *state;
	struct cache_entry	 e;
	struct cache_pkg	 pkg;
	uint8_t			 u[CACHE_SHA_LEN], a[CACHE_SHA_LEN];
	uint8_t			 b[CACHE_SHA_LEN];
	uint64_t		 total = 0;
	char			*cause = NULL;

	free(make_data(50, 64, u));
	assert_int_equal(cache_lookup(f->c, u, &e), 0);
	assert_int_equal(e.state, CACHE_ABSENT);
	assert_int_equal(e.pins, 0);
	assert_int_equal(e.size, 0);
	assert_int_equal(cache_open_blob(f->c, u), -1);
	assert_int_equal(cache_pkg_by_sha(f->c, u, &pkg), -1);
	assert_int_equal(cache_pkg_get(f->c, "no-such-package", &pkg), -1);
	assert_null(cache_check_start(f->c, u, &cause));
	assert_non_null(strstr(cause, "not complete (absent)"));
	free(cause);
	assert_int_equal(cache_remove(f->c, u, NULL), 0);

	put_blob(f, 51, 1000, a);
	put_blob(f, 52, 3000, b);
	nforeach = 0;
	assert_int_equal(cache_foreach(f->c, count_entry, &total), 0);
	assert_int_equal(nforeach, 2);
	assert_int_equal(total, 4000);
}

static void
test_schema(void **state)
{
	struct fix	*f = *state;
	sqlite3_stmt	*st;
	char		*cause = NULL;
	struct cache	*c;

	assert_int_equal(sqlite3_prepare_v2(f->db, "SELECT version FROM "
	    "schema_version WHERE component = 'cache'", -1, &st, NULL),
	    SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(st, 0), 3);
	sqlite3_finalize(st);

	/* A database from a newer program is refused. */
	exec_sql(f, "UPDATE schema_version SET version = 99 "
	    "WHERE component = 'cache'");
	assert_null(c = cache_open(f->db, f->dir, 0, &cause));
	assert_non_null(strstr(cause, "version 99"));
	free(cause);
	exec_sql(f, "UPDATE schema_version SET version = 3 "
	    "WHERE component = 'cache'");
}

static void	 fill_pkg(struct cache_pkg *, const char *, unsigned int);

/*
 * Migration 3 (anti-rollback fields): packages stored by a program of
 * before read as security version 0, no downgrade.
 */
static void
test_migrate_anti_rollback(void **state)
{
	struct fix	*f = *state;
	struct cache_pkg in, out;
	char		*cause = NULL;

	fill_pkg(&in, "old", 4);
	assert_int_equal(cache_pkg_replace(f->c, &in, 1, &cause), 0);
	/* Back to the schema of version 2. */
	exec_sql(f, "ALTER TABLE cache_pkgs DROP COLUMN security_version;"
	    "ALTER TABLE cache_pkgs DROP COLUMN allow_downgrade;"
	    "UPDATE schema_version SET version = 2 "
	    "WHERE component = 'cache'");
	reopen(f, 0);
	assert_int_equal(cache_pkg_get(f->c, "old", &out), 0);
	assert_int_equal(out.security_version, 0);
	assert_int_equal(out.allow_downgrade, 0);
	in.security_version = 0;
	in.allow_downgrade = 0;
	assert_memory_equal(&out, &in, sizeof out);
}

/* ------------------------------------------------------------------ */
/* packages                                                            */

static void
fill_pkg(struct cache_pkg *p, const char *id, unsigned int seed)
{
	memset(p, 0, sizeof *p);
	snprintf(p->id, sizeof p->id, "%s", id);
	snprintf(p->component, sizeof p->component, "app");
	snprintf(p->version, sizeof p->version, "1.%u.0", seed);
	p->nhw = 2;
	snprintf(p->hw[0], sizeof p->hw[0], "board-a");
	snprintf(p->hw[1], sizeof p->hw[1], "board-b%u", seed);
	p->kind = 1;
	p->delta_format = 1;
	snprintf(p->base_version, sizeof p->base_version, "1.0.0");
	p->size = 300000000ULL + seed;
	free(make_data(seed, 16, p->sha256));
	p->image_size = 5000000000ULL;
	free(make_data(seed + 1000, 16, p->image_sha256));
	snprintf(p->url, sizeof p->url, "pkgs/app-%u.bin", seed);
	memset(p->sig, (int)seed, sizeof p->sig);
	p->sig[0] = 0;	/* a NUL inside the blob is kept */
	p->sig_len = 64;
	p->ndeps = 1;
	snprintf(p->dep_component[0], sizeof p->dep_component[0], "boot");
	snprintf(p->dep_min_version[0], sizeof p->dep_min_version[0],
	    "2.0");
	/* The signed anti-rollback fields round-trip too. */
	p->security_version = 4000000000u + seed;
	p->allow_downgrade = seed & 1;
	p->manifest_serial = 42;
}

struct seen {
	int	 n;
	char	 ids[4][CACHE_ID_MAX + 1];
};

static void
seen_pkg(void *arg, const struct cache_pkg *p)
{
	struct seen	*s = arg;

	if (s->n < 4)
		snprintf(s->ids[s->n], sizeof s->ids[0], "%s", p->id);
	s->n++;
}

static void
test_pkg_table(void **state)
{
	struct fix		*f = *state;
	struct cache_pkg	 in[3], out;
	struct seen		 s;
	char			*cause = NULL;

	fill_pkg(&in[0], "pkg-b", 1);
	fill_pkg(&in[1], "pkg-a", 2);
	in[1].nhw = 0;
	in[1].ndeps = 0;
	memset(in[1].hw, 0, sizeof in[1].hw);
	memset(in[1].dep_component, 0, sizeof in[1].dep_component);
	memset(in[1].dep_min_version, 0, sizeof in[1].dep_min_version);
	in[1].kind = 0;
	in[1].delta_format = 0;
	memset(in[1].base_version, 0, sizeof in[1].base_version);
	in[1].sig_len = 0;
	memset(in[1].sig, 0, sizeof in[1].sig);
	assert_int_equal(cache_pkg_replace(f->c, in, 2, &cause), 0);
	assert_null(cause);

	assert_int_equal(cache_pkg_get(f->c, "pkg-b", &out), 0);
	assert_memory_equal(&out, &in[0], sizeof out);
	assert_int_equal(cache_pkg_get(f->c, "pkg-a", &out), 0);
	assert_memory_equal(&out, &in[1], sizeof out);
	assert_int_equal(cache_pkg_by_sha(f->c, in[0].sha256, &out), 0);
	assert_string_equal(out.id, "pkg-b");
	assert_int_equal(cache_pkg_by_sha(f->c, in[0].image_sha256, &out), -1);

	memset(&s, 0, sizeof s);
	assert_int_equal(cache_pkg_foreach(f->c, seen_pkg, &s), 0);
	assert_int_equal(s.n, 2);
	assert_string_equal(s.ids[0], "pkg-a");
	assert_string_equal(s.ids[1], "pkg-b");

	/* Survives a reopen. */
	reopen(f, 0);
	assert_int_equal(cache_pkg_get(f->c, "pkg-b", &out), 0);
	assert_memory_equal(&out, &in[0], sizeof out);

	/* Replace: the old set goes. */
	fill_pkg(&in[2], "pkg-c", 3);
	assert_int_equal(cache_pkg_replace(f->c, &in[2], 1, &cause), 0);
	assert_int_equal(cache_pkg_get(f->c, "pkg-a", &out), -1);
	assert_int_equal(cache_pkg_get(f->c, "pkg-b", &out), -1);
	assert_int_equal(cache_pkg_get(f->c, "pkg-c", &out), 0);
	assert_memory_equal(&out, &in[2], sizeof out);

	/* And an empty manifest empties it. */
	assert_int_equal(cache_pkg_replace(f->c, NULL, 0, &cause), 0);
	memset(&s, 0, sizeof s);
	assert_int_equal(cache_pkg_foreach(f->c, seen_pkg, &s), 0);
	assert_int_equal(s.n, 0);
}

static void
check_old_set(struct fix *f, const struct cache_pkg *in)
{
	struct cache_pkg	 out;
	struct seen		 s;

	memset(&s, 0, sizeof s);
	assert_int_equal(cache_pkg_foreach(f->c, seen_pkg, &s), 0);
	assert_int_equal(s.n, 2);
	assert_int_equal(cache_pkg_get(f->c, "pkg-a", &out), 0);
	assert_memory_equal(&out, &in[1], sizeof out);
	assert_int_equal(cache_pkg_get(f->c, "pkg-b", &out), 0);
	assert_memory_equal(&out, &in[0], sizeof out);
	assert_int_equal(cache_pkg_get(f->c, "pkg-new", &out), -1);
}

static void
test_pkg_replace_all_or_nothing(void **state)
{
	struct fix		*f = *state;
	struct cache_pkg	 in[2], bad[3];
	char			*cause = NULL;

	fill_pkg(&in[0], "pkg-b", 1);
	fill_pkg(&in[1], "pkg-a", 2);
	assert_int_equal(cache_pkg_replace(f->c, in, 2, NULL), 0);

	/* The duplicate is only found by the database, mid-way. */
	fill_pkg(&bad[0], "pkg-new", 7);
	fill_pkg(&bad[1], "pkg-dup", 8);
	fill_pkg(&bad[2], "pkg-dup", 9);
	assert_int_equal(cache_pkg_replace(f->c, bad, 3, &cause), -1);
	assert_string_equal(cause, "duplicate package id \"pkg-dup\"");
	free(cause);
	cause = NULL;
	check_old_set(f, in);

	/* Bad fields are refused before anything is touched. */
	fill_pkg(&bad[1], "pkg-x", 8);
	bad[1].nhw = CACHE_HW_MAX + 1;
	assert_int_equal(cache_pkg_replace(f->c, bad, 2, &cause), -1);
	assert_string_equal(cause,
	    "package \"pkg-x\": bad number of hardware models");
	free(cause);
	cause = NULL;
	fill_pkg(&bad[1], "pkg-x", 8);
	memset(bad[1].version, 'v', sizeof bad[1].version);
	assert_int_equal(cache_pkg_replace(f->c, bad, 2, &cause), -1);
	assert_non_null(strstr(cause, "bad version"));
	free(cause);
	cause = NULL;
	check_old_set(f, in);

	/*
	 * Inside the daemon's open transaction (bridge/db.c): a failed
	 * replace rolls back only itself, a good one commits with it.
	 */
	exec_sql(f, "BEGIN");
	fill_pkg(&bad[1], "pkg-dup", 8);
	assert_int_equal(cache_pkg_replace(f->c, bad, 3, &cause), -1);
	free(cause);
	cause = NULL;
	check_old_set(f, in);
	assert_int_equal(sqlite3_get_autocommit(f->db), 0);
	assert_int_equal(cache_pkg_replace(f->c, bad, 2, &cause), 0);
	assert_int_equal(sqlite3_get_autocommit(f->db), 0);
	exec_sql(f, "COMMIT");
	assert_int_equal(cache_pkg_get(f->c, "pkg-a", &bad[2]), -1);
	assert_int_equal(cache_pkg_get(f->c, "pkg-dup", &bad[2]), 0);
	assert_int_equal(cache_pkg_get(f->c, "pkg-new", &bad[2]), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
		T(test_write_read),
		T(test_finish_incomplete_keeps_partial),
		T(test_resume_after_close),
		T(test_resume_after_reopen),
		T(test_corrupt_download),
		T(test_check_detects_corruption),
		T(test_open_reconciles),
		T(test_crash_after_rename),
		T(test_crash_before_row_commit),
		T(test_quota_lru),
		T(test_quota_pinned),
		T(test_pins_persist),
		T(test_unknown_and_foreach),
		T(test_schema),
		T(test_migrate_anti_rollback),
		T(test_pkg_table),
		T(test_pkg_replace_all_or_nothing),
#undef T
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
