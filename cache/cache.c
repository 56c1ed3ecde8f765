/*
 * cache.c: the content-addressed blob store.
 *
 * A blob is named by the SHA-256 of its bytes.  Complete, verified blobs
 * live in DIR/blobs/<first 2 hex>/<hex>; a download under way or
 * interrupted lives in DIR/partial/<hex>.part.  The index (state, size,
 * bytes on disk, last use) and the pins are tables in the daemon's
 * database (cache_db.c).  docs/cache.md describes the layout, the states
 * and what happens after a crash.
 *
 * The files are the truth for bytes, the index for meaning: cache_open()
 * reconciles the two (no hashing, only stat), and whole-file hashing is
 * done only in caller-budgeted steps (cache_writer_prime,
 * cache_check_step) so the daemon's loop never blocks on a big blob.
 */

#include <sys/types.h>
#include <sys/queue.h>
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "up.h"

#include "cache.h"
#include "cache_internal.h"

#define CACHE_DIR_MODE		0750
#define CACHE_FILE_MODE		0640
#define CACHE_PART_SUFFIX	".part"

/*
 * `c' is NULL once the cache is freed under an open writer or check:
 * then every call on it fails cleanly.
 */
struct cache_writer {
	LIST_ENTRY(cache_writer) entry;
	struct cache	*c;
	uint8_t		 sha[CACHE_SHA_LEN];
	char		 hex[CACHE_HEX_LEN + 1];
	uint64_t	 size;
	uint64_t	 off;		/* bytes on disk, next write */
	uint64_t	 primed;	/* bytes of off hashed */
	int		 fd;
	struct cache_sha *hash;
	uint8_t		*buf;		/* priming; NULL once primed */

	/*
	 * Chunk verification (cut-through), when the blob has a chunk list:
	 * `verified' is the end of the last chunk that matched its hash,
	 * `ok' the whole-file digest at that point, so a bad chunk can be
	 * dropped without hashing the prefix again.
	 */
	uint32_t	 chunk_size;	/* 0: no chunk list */
	uint32_t	 nchunks;
	uint8_t		*chunks;	/* nchunks * 32 */
	struct cache_sha *chash;	/* the chunk being received */
	struct cache_sha *ok;
	uint64_t	 verified;
};

struct cache_check {
	LIST_ENTRY(cache_check) entry;
	struct cache	*c;
	uint8_t		 sha[CACHE_SHA_LEN];
	char		 hex[CACHE_HEX_LEN + 1];
	uint64_t	 size;		/* expected, from the index */
	uint64_t	 disk;		/* file size found at start */
	uint64_t	 off;
	int		 fd;
	int		 result;	/* 1 running, 0 whole, -1 bad */
	struct cache_sha *hash;
	uint8_t			*buf;
};

/* One index row, as read. */
struct cache_row {
	uint8_t		 sha[CACHE_SHA_LEN];
	int		 state;
	uint64_t	 size;
	uint64_t	 have;
	int64_t		 last_used;
	int64_t		 seq;
	int		 pins;
};

static const char *
cache_state_name(int state)
{
	switch (state) {
	case CACHE_ABSENT:
		return ("absent");
	case CACHE_PARTIAL:
		return ("partial");
	case CACHE_COMPLETE:
		return ("complete");
	case CACHE_CORRUPT:
		return ("corrupt");
	}
	return ("unknown");
}

/* "100 MiB", "1.5 KiB", "30 B": sizes in causes people read. */
static void
cache_fmt_size(uint64_t n, char *buf, size_t len)
{
	const uint64_t	 kib = 1024, mib = 1024 * 1024;

	if (n >= mib && n % mib == 0)
		snprintf(buf, len, "%llu MiB", (unsigned long long)(n / mib));
	else if (n >= mib)
		snprintf(buf, len, "%.1f MiB", (double)n / mib);
	else if (n >= kib && n % kib == 0)
		snprintf(buf, len, "%llu KiB", (unsigned long long)(n / kib));
	else if (n >= kib)
		snprintf(buf, len, "%.1f KiB", (double)n / kib);
	else
		snprintf(buf, len, "%llu B", (unsigned long long)n);
}

static int
cache_blob_path(const struct cache *c, const uint8_t sha[CACHE_SHA_LEN],
    char *buf, size_t len)
{
	char	 hex[CACHE_HEX_LEN + 1];
	int	 n;

	cache_hex(sha, hex);
	n = snprintf(buf, len, "%s/%.2s/%s", c->blobdir, hex, hex);
	return (n < 0 || (size_t)n >= len ? -1 : 0);
}

static int
cache_part_path(const struct cache *c, const uint8_t sha[CACHE_SHA_LEN],
    char *buf, size_t len)
{
	char	 hex[CACHE_HEX_LEN + 1];
	int	 n;

	cache_hex(sha, hex);
	n = snprintf(buf, len, "%s/%s" CACHE_PART_SUFFIX, c->partdir, hex);
	return (n < 0 || (size_t)n >= len ? -1 : 0);
}

/* unlink() that treats "already gone" as success. */
static int
cache_unlink(const char *path)
{
	if (unlink(path) == -1 && errno != ENOENT) {
		up_logf(UP_LOG_WARN, "cache: unlink %s: %s", path,
		    strerror(errno));
		return (-1);
	}
	return (0);
}

/* "dir/name", malloc'd, or NULL. */
static char *
cache_join(const char *dir, const char *name)
{
	char	*s;

	if (asprintf(&s, "%s/%s", dir, name) == -1)
		return (NULL);
	return (s);
}

/* mkdir -p with CACHE_DIR_MODE; the last component must be a dir. */
static int
cache_mkdirs(const char *path, char **cause)
{
	struct stat	 sb;
	char		*p, *s;

	if ((p = strdup(path)) == NULL) {
		cache__cause(cause, "out of memory");
		return (-1);
	}
	for (s = p + 1; *s != '\0'; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, CACHE_DIR_MODE) == -1 && errno != EEXIST) {
			cache__cause(cause, "mkdir %s: %s", p, strerror(errno));
			free(p);
			return (-1);
		}
		*s = '/';
	}
	free(p);
	if (mkdir(path, CACHE_DIR_MODE) == -1 && errno != EEXIST) {
		cache__cause(cause, "mkdir %s: %s", path, strerror(errno));
		return (-1);
	}
	if (stat(path, &sb) == -1 || !S_ISDIR(sb.st_mode)) {
		cache__cause(cause, "%s: not a directory", path);
		return (-1);
	}
	return (0);
}

/* Makes a rename or a new file in `dir' durable. */
static int
cache_fsync_dir(const char *dir, char **cause)
{
	int	 fd;

	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1 ||
	    fsync(fd) == -1) {
		cache__cause(cause, "fsync %s: %s", dir, strerror(errno));
		if (fd != -1)
			close(fd);
		return (-1);
	}
	close(fd);
	return (0);
}

/* pread() of exactly len bytes; returns len, a short count at EOF, -1. */
static ssize_t
cache_pread(int fd, void *buf, size_t len, uint64_t off)
{
	size_t	 done = 0;
	ssize_t	 n;

	while (done < len) {
		n = pread(fd, (uint8_t *)buf + done, len - done,
		    (off_t)(off + done));
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			return (-1);
		if (n == 0)
			break;
		done += (size_t)n;
	}
	return ((ssize_t)done);
}

/* ------------------------------------------------------------------ */
/* index rows                                                          */

static void
cache_row_read(sqlite3_stmt *st, int col, struct cache_row *r)
{
	r->state = sqlite3_column_int(st, col);
	r->size = cache__column_u64(st, col + 1);
	r->have = cache__column_u64(st, col + 2);
	r->last_used = sqlite3_column_int64(st, col + 3);
	r->seq = sqlite3_column_int64(st, col + 4);
	r->pins = sqlite3_column_int(st, col + 5);
}

/* 1 found, 0 not in the index, -1 db error. */
static int
cache_row_get(struct cache *c, const uint8_t sha[CACHE_SHA_LEN],
    struct cache_row *r)
{
	sqlite3_stmt	*st;
	int		 rc;

	memset(r, 0, sizeof *r);
	memcpy(r->sha, sha, CACHE_SHA_LEN);
	st = cache__stmt(c, CACHE_ST_BLOB_GET);
	cache__bind_sha(st, 1, sha);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		sqlite3_reset(st);
		return (0);
	}
	if (rc != SQLITE_ROW)
		return (cache__db_fail(c, st, NULL, "index"));
	cache_row_read(st, 0, r);
	sqlite3_reset(st);
	return (1);
}

/*
 * Every index row, least recently used first, into an owned array.
 * Collected before anything else runs, so callers may change the index
 * while they walk the copy.
 */
static int
cache_rows_all(struct cache *c, struct cache_row **rows, size_t *nrows)
{
	sqlite3_stmt	*st;
	struct cache_row *r = NULL, *nr;
	size_t		 n = 0, cap = 0;
	int		 rc;

	st = cache__stmt(c, CACHE_ST_BLOB_ALL);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == cap) {
			cap = cap == 0 ? 16 : cap * 2;
			if ((nr = reallocarray(r, cap, sizeof *r)) == NULL) {
				free(r);
				sqlite3_reset(st);
				return (-1);
			}
			r = nr;
		}
		memset(&r[n], 0, sizeof r[n]);
		if (cache__column_sha(st, 0, r[n].sha) == -1)
			continue;	/* not ours to read; left alone */
		cache_row_read(st, 1, &r[n]);
		n++;
	}
	if (rc != SQLITE_DONE) {
		free(r);
		return (cache__db_fail(c, st, NULL, "index"));
	}
	sqlite3_reset(st);
	*rows = r;
	*nrows = n;
	return (0);
}

static int
cache_row_put(struct cache *c, const uint8_t sha[CACHE_SHA_LEN], int state,
    uint64_t size, uint64_t have, char **cause)
{
	sqlite3_stmt	*st;

	st = cache__stmt(c, CACHE_ST_BLOB_PUT);
	cache__bind_sha(st, 1, sha);
	sqlite3_bind_int(st, 2, state);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)size);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)have);
	sqlite3_bind_int64(st, 5, (sqlite3_int64)time(NULL));
	sqlite3_bind_int64(st, 6, ++c->seq);
	return (cache__run(c, st, cause));
}

static int
cache_row_state(struct cache *c, const uint8_t sha[CACHE_SHA_LEN], int state,
    uint64_t have)
{
	sqlite3_stmt	*st;

	st = cache__stmt(c, CACHE_ST_BLOB_STATE);
	cache__bind_sha(st, 1, sha);
	sqlite3_bind_int(st, 2, state);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)have);
	return (cache__run(c, st, NULL));
}

static int
cache_row_del(struct cache *c, const uint8_t sha[CACHE_SHA_LEN])
{
	sqlite3_stmt	*st;

	st = cache__stmt(c, CACHE_ST_BLOB_DEL);
	cache__bind_sha(st, 1, sha);
	return (cache__run(c, st, NULL));
}

static int
cache_row_used(struct cache *c, const uint8_t sha[CACHE_SHA_LEN])
{
	sqlite3_stmt	*st;

	st = cache__stmt(c, CACHE_ST_BLOB_USED);
	cache__bind_sha(st, 1, sha);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)time(NULL));
	sqlite3_bind_int64(st, 3, ++c->seq);
	return (cache__run(c, st, NULL));
}

/* Pins of sha, and the first owner (for causes).  -1 on db error. */
static int
cache_pins(struct cache *c, const uint8_t sha[CACHE_SHA_LEN], char *owner,
    size_t len)
{
	sqlite3_stmt	*st;
	int		 n;

	st = cache__stmt(c, CACHE_ST_PIN_COUNT);
	cache__bind_sha(st, 1, sha);
	if (sqlite3_step(st) != SQLITE_ROW)
		return (cache__db_fail(c, st, NULL, "pins"));
	n = sqlite3_column_int(st, 0);
	if (owner != NULL)
		cache__column_text(st, 1, owner, len);
	sqlite3_reset(st);
	return (n);
}

static struct cache_writer *
cache_writer_find(struct cache *c, const uint8_t sha[CACHE_SHA_LEN])
{
	struct cache_writer	*w;

	LIST_FOREACH(w, &c->writers, entry) {
		if (memcmp(w->sha, sha, CACHE_SHA_LEN) == 0)
			return (w);
	}
	return (NULL);
}

/* Bytes of the row's file on disk now. */
static uint64_t
cache_row_disk(struct cache *c, const struct cache_row *r)
{
	struct cache_writer	*w;

	switch (r->state) {
	case CACHE_COMPLETE:
		return (r->size);
	case CACHE_PARTIAL:
		if ((w = cache_writer_find(c, r->sha)) != NULL)
			return (w->off);
		return (r->have);
	}
	return (0);
}

/*
 * Bytes the row counts against the quota: a partial with an open writer
 * has reserved its whole size, an idle partial only what it holds.
 */
static uint64_t
cache_row_charge(struct cache *c, const struct cache_row *r)
{
	if (r->state == CACHE_PARTIAL && cache_writer_find(c, r->sha) != NULL)
		return (r->size);
	return (cache_row_disk(c, r));
}

/*
 * A blob found bad (size or digest): its files go, so it is never sent,
 * and the row says CORRUPT, so it is fetched again.  Pins stay: the
 * campaign still needs the package.
 */
static void
cache_mark_corrupt(struct cache *c, const uint8_t sha[CACHE_SHA_LEN],
    const char *why)
{
	char	 path[PATH_MAX], hex[CACHE_HEX_LEN + 1];

	cache_hex(sha, hex);
	up_logf(UP_LOG_WARN, "cache: blob %s corrupt (%s), removed", hex, why);
	if (cache_blob_path(c, sha, path, sizeof path) == 0)
		cache_unlink(path);
	if (cache_part_path(c, sha, path, sizeof path) == 0)
		cache_unlink(path);
	cache_row_state(c, sha, CACHE_CORRUPT, 0);
}

/* ------------------------------------------------------------------ */
/* open: reconcile the index with the files                            */

/* One index row against its files.  -1 only on a db error. */
static int
cache_reconcile_row(struct cache *c, const struct cache_row *r)
{
	struct stat	 sb;
	char		 blob[PATH_MAX], part[PATH_MAX];
	char		 hex[CACHE_HEX_LEN + 1];

	cache_hex(r->sha, hex);
	if (cache_blob_path(c, r->sha, blob, sizeof blob) == -1 ||
	    cache_part_path(c, r->sha, part, sizeof part) == -1)
		return (-1);

	switch (r->state) {
	case CACHE_COMPLETE:
		if (stat(blob, &sb) == -1 || !S_ISREG(sb.st_mode)) {
			up_logf(UP_LOG_WARN, "cache: blob %s missing", hex);
			return (cache_row_del(c, r->sha));
		}
		if ((uint64_t)sb.st_size != r->size) {
			cache_mark_corrupt(c, r->sha, "wrong size on disk");
			return (0);
		}
		return (0);
	case CACHE_PARTIAL:
		if (stat(part, &sb) == -1) {
			/*
			 * Renamed into blobs/ but the index change was not
			 * committed before a crash: move it back and let the
			 * resumed writer re-hash it before it counts.
			 */
			if (stat(blob, &sb) == 0 && S_ISREG(sb.st_mode) &&
			    (uint64_t)sb.st_size <= r->size &&
			    rename(blob, part) == 0) {
				up_logf(UP_LOG_INFO, "cache: blob %s back to "
				    "partial, unverified", hex);
				return (cache_row_state(c, r->sha,
				    CACHE_PARTIAL, (uint64_t)sb.st_size));
			}
			return (cache_row_del(c, r->sha));
		}
		if (!S_ISREG(sb.st_mode) || (uint64_t)sb.st_size > r->size) {
			up_logf(UP_LOG_WARN, "cache: partial %s bad, dropped",
			    hex);
			cache_unlink(part);
			return (cache_row_del(c, r->sha));
		}
		if ((uint64_t)sb.st_size != r->have)
			return (cache_row_state(c, r->sha, CACHE_PARTIAL,
			    (uint64_t)sb.st_size));
		return (0);
	case CACHE_CORRUPT:
		cache_unlink(blob);
		cache_unlink(part);
		return (0);
	}
	up_logf(UP_LOG_WARN, "cache: index row %s has bad state %d, dropped",
	    hex, r->state);
	cache_unlink(blob);
	cache_unlink(part);
	return (cache_row_del(c, r->sha));
}

/*
 * The digest a file name in a cache directory stands for: a lower-case
 * 64-hex name plus `suffix', as we write them.  0, or -1 for any other
 * name.
 */
static int
cache_name_sha(const char *name, const char *suffix,
    uint8_t sha[CACHE_SHA_LEN])
{
	char		 hex[CACHE_HEX_LEN + 1], canon[CACHE_HEX_LEN + 1];
	size_t		 len = strlen(name), slen = strlen(suffix);

	if (len != CACHE_HEX_LEN + slen ||
	    strcmp(name + CACHE_HEX_LEN, suffix) != 0)
		return (-1);
	memcpy(hex, name, CACHE_HEX_LEN);
	hex[CACHE_HEX_LEN] = '\0';
	if (cache_unhex(hex, sha) == -1)
		return (-1);
	cache_hex(sha, canon);
	return (strcmp(canon, hex) == 0 ? 0 : -1);
}

/*
 * Whether the file `name' in a cache directory belongs to a row in
 * `want' state: a lower-case 64-hex name (plus suffix) we could have
 * written.
 */
static int
cache_name_wanted(struct cache *c, const char *name, const char *suffix,
    const char *prefix, int want)
{
	struct cache_row r;
	uint8_t		 sha[CACHE_SHA_LEN];

	if (cache_name_sha(name, suffix, sha) == -1)
		return (0);
	if (prefix != NULL && strncmp(name, prefix, 2) != 0)
		return (0);
	if (cache_row_get(c, sha, &r) != 1)
		return (0);
	return (r.state == want);
}

/*
 * A partial file without an index row: the writer's row was written in
 * the daemon's open transaction and a crash came before its commit (the
 * first second of a download).  The file is the truth for bytes: if a
 * package of the (committed) package table is that blob and the file is
 * not longer than it, the file becomes a PARTIAL row again and the next
 * writer re-hashes it (cache_writer_prime: chunk by chunk where a chunk
 * list exists, the whole digest at finish), so the download resumes
 * instead of starting over.  Anything else is left to the sweep.
 */
static int
cache_adopt_partials(struct cache *c)
{
	DIR		*d;
	struct dirent	*de;
	struct stat	 sb;
	struct cache_row r;
	struct cache_pkg pkg;
	uint8_t		 sha[CACHE_SHA_LEN];
	int		 rc = 0;

	if ((d = opendir(c->partdir)) == NULL)
		return (0);	/* the sweep says why */
	while ((de = readdir(d)) != NULL) {
		if (cache_name_sha(de->d_name, CACHE_PART_SUFFIX, sha) == -1)
			continue;
		if (fstatat(dirfd(d), de->d_name, &sb,
		    AT_SYMLINK_NOFOLLOW) == -1 || !S_ISREG(sb.st_mode))
			continue;
		if (cache_row_get(c, sha, &r) != 0)
			continue;	/* has a row (or a db error) */
		if (cache_pkg_by_sha(c, sha, &pkg) != 0 ||
		    (uint64_t)sb.st_size > pkg.size)
			continue;
		if (cache_row_put(c, sha, CACHE_PARTIAL, pkg.size,
		    (uint64_t)sb.st_size, NULL) == -1) {
			rc = -1;
			break;
		}
		up_logf(UP_LOG_INFO, "cache: partial %.16s... of package "
		    "'%s' kept (%llu of %llu bytes; its index row was lost "
		    "in a crash)", de->d_name, pkg.id,
		    (unsigned long long)sb.st_size,
		    (unsigned long long)pkg.size);
	}
	closedir(d);
	return (rc);
}

/*
 * Removes every file in `path' not wanted by the index (all files when
 * suffix is NULL).  Directories are left alone.
 */
static int
cache_sweep_dir(struct cache *c, const char *path, const char *suffix,
    const char *prefix, int want)
{
	DIR		*d;
	struct dirent	*de;
	struct stat	 sb;
	char		 file[PATH_MAX];

	if ((d = opendir(path)) == NULL) {
		up_logf(UP_LOG_WARN, "cache: opendir %s: %s", path,
		    strerror(errno));
		return (-1);
	}
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		if (fstatat(dirfd(d), de->d_name, &sb,
		    AT_SYMLINK_NOFOLLOW) == -1)
			continue;
		if (S_ISDIR(sb.st_mode))
			continue;	/* not ours to remove */
		if (S_ISREG(sb.st_mode) && suffix != NULL &&
		    cache_name_wanted(c, de->d_name, suffix, prefix, want))
			continue;
		if ((size_t)snprintf(file, sizeof file, "%s/%s", path,
		    de->d_name) >= sizeof file)
			continue;
		up_logf(UP_LOG_INFO, "cache: removing stray %s", file);
		cache_unlink(file);
	}
	closedir(d);
	return (0);
}

static int
cache_is_prefix_dir(const char *name)
{
	const char	*hex = "0123456789abcdef";

	return (strlen(name) == 2 && strchr(hex, name[0]) != NULL &&
	    strchr(hex, name[1]) != NULL);
}

/*
 * Brings index and disk into agreement without reading blob contents
 * (sizes only; cache_check_* re-hashes later, in steps).
 */
static int
cache_reconcile(struct cache *c, char **cause)
{
	struct cache_row *rows;
	DIR		*d;
	struct dirent	*de;
	char		 sub[PATH_MAX];
	size_t		 n, i;

	if (cache_rows_all(c, &rows, &n) == -1) {
		cache__cause(cause, "cannot read the cache index");
		return (-1);
	}
	for (i = 0; i < n; i++) {
		if (cache_reconcile_row(c, &rows[i]) == -1) {
			free(rows);
			cache__cause(cause, "cannot update the cache index");
			return (-1);
		}
	}
	free(rows);

	if (cache_adopt_partials(c) == -1) {
		cache__cause(cause, "cannot update the cache index");
		return (-1);
	}
	cache_sweep_dir(c, c->partdir, CACHE_PART_SUFFIX, NULL,
	    CACHE_PARTIAL);
	if ((d = opendir(c->blobdir)) == NULL) {
		cache__cause(cause, "opendir %s: %s", c->blobdir,
		    strerror(errno));
		return (-1);
	}
	while ((de = readdir(d)) != NULL) {
		if (!cache_is_prefix_dir(de->d_name))
			continue;
		if ((size_t)snprintf(sub, sizeof sub, "%s/%s", c->blobdir,
		    de->d_name) >= sizeof sub)
			continue;
		cache_sweep_dir(c, sub, "", de->d_name, CACHE_COMPLETE);
	}
	closedir(d);
	/* Files directly in blobs/ are never ours. */
	cache_sweep_dir(c, c->blobdir, NULL, NULL, CACHE_COMPLETE);
	return (0);
}

struct cache *
cache_open(sqlite3 *db, const char *dir, uint64_t quota, char **cause)
{
	struct cache	*c;
	sqlite3_stmt	*st;

	if (db == NULL || dir == NULL || *dir == '\0') {
		cache__cause(cause, "cache: no database or directory");
		return (NULL);
	}
	if ((c = calloc(1, sizeof *c)) == NULL) {
		cache__cause(cause, "out of memory");
		return (NULL);
	}
	c->db = db;
	c->quota = quota;
	LIST_INIT(&c->writers);
	LIST_INIT(&c->checks);
	c->dir = strdup(dir);
	c->blobdir = cache_join(dir, "blobs");
	c->partdir = cache_join(dir, "partial");
	if (c->dir == NULL || c->blobdir == NULL || c->partdir == NULL) {
		cache__cause(cause, "out of memory");
		goto fail;
	}
	if (cache_mkdirs(c->dir, cause) == -1 ||
	    cache_mkdirs(c->blobdir, cause) == -1 ||
	    cache_mkdirs(c->partdir, cause) == -1)
		goto fail;
	if (cache__migrate(db, "cache", cache__schema, cache__nschema,
	    cause) == -1)
		goto fail;
	if (cache__prepare(c, cause) == -1)
		goto fail;

	st = cache__stmt(c, CACHE_ST_SEQ_MAX);
	if (sqlite3_step(st) != SQLITE_ROW) {
		cache__db_fail(c, st, cause, "index");
		goto fail;
	}
	c->seq = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);

	if (cache_reconcile(c, cause) == -1)
		goto fail;
	up_logf(UP_LOG_INFO, "cache: open in %s", dir);
	return (c);

fail:
	cache_free(c);
	return (NULL);
}

void
cache_free(struct cache *c)
{
	struct cache_writer	*w;
	struct cache_check	*k;

	if (c == NULL)
		return;
	/* Writers and checks outliving us fail cleanly from now on. */
	while ((w = LIST_FIRST(&c->writers)) != NULL) {
		LIST_REMOVE(w, entry);
		w->c = NULL;
	}
	while ((k = LIST_FIRST(&c->checks)) != NULL) {
		LIST_REMOVE(k, entry);
		k->c = NULL;
	}
	cache__finalize(c);
	free(c->dir);
	free(c->blobdir);
	free(c->partdir);
	free(c);
}

/* ------------------------------------------------------------------ */
/* lookups                                                             */

static uint64_t
cache_row_verified(struct cache *c, const struct cache_row *r)
{
	struct cache_writer	*w;

	if (r->state == CACHE_COMPLETE)
		return (r->size);
	if (r->state == CACHE_PARTIAL &&
	    (w = cache_writer_find(c, r->sha)) != NULL)
		return (w->verified);
	return (0);
}

static void
cache_row_entry(struct cache *c, const struct cache_row *r,
    struct cache_entry *e)
{
	memset(e, 0, sizeof *e);
	memcpy(e->sha256, r->sha, CACHE_SHA_LEN);
	e->state = (enum cache_state)r->state;
	e->size = r->size;
	e->have = cache_row_disk(c, r);
	e->pins = r->pins;
	e->last_used = r->last_used;
	e->verified = cache_row_verified(c, r);
}

int
cache_lookup(struct cache *c, const uint8_t sha[CACHE_SHA_LEN],
    struct cache_entry *e)
{
	struct cache_row r;
	int		 rc, pins;

	if ((rc = cache_row_get(c, sha, &r)) == -1)
		return (-1);
	if (rc == 1) {
		cache_row_entry(c, &r, e);
		return (0);
	}
	if ((pins = cache_pins(c, sha, NULL, 0)) == -1)
		return (-1);
	memset(e, 0, sizeof *e);
	memcpy(e->sha256, sha, CACHE_SHA_LEN);
	e->state = CACHE_ABSENT;
	e->pins = pins;
	return (0);
}

int
cache_path(struct cache *c, const uint8_t sha[CACHE_SHA_LEN], char *buf,
    size_t len)
{
	struct cache_row r;
	int		 rc;

	if ((rc = cache_row_get(c, sha, &r)) == -1)
		return (-1);
	if (rc == 1 && r.state == CACHE_COMPLETE)
		return (cache_blob_path(c, sha, buf, len));
	return (cache_part_path(c, sha, buf, len));
}

int
cache_open_blob(struct cache *c, const uint8_t sha[CACHE_SHA_LEN])
{
	struct cache_row r;
	struct stat	 sb;
	char		 path[PATH_MAX], hex[CACHE_HEX_LEN + 1];
	int		 fd, saved;

	if (cache_row_get(c, sha, &r) != 1 || r.state != CACHE_COMPLETE)
		return (-1);
	if (cache_blob_path(c, sha, path, sizeof path) == -1)
		return (-1);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		saved = errno;
		cache_hex(sha, hex);
		up_logf(UP_LOG_WARN, "cache: blob %s: %s", hex,
		    strerror(saved));
		if (saved == ENOENT)
			cache_row_del(c, sha);
		return (-1);
	}
	/* A blob cut short behind our back is never handed out. */
	if (fstat(fd, &sb) == -1 || (uint64_t)sb.st_size != r.size) {
		close(fd);
		cache_mark_corrupt(c, sha, "wrong size on disk");
		return (-1);
	}
	cache_row_used(c, sha);
	return (fd);
}

int
cache_open_read(struct cache *c, const uint8_t sha[CACHE_SHA_LEN])
{
	struct cache_row r;
	char		 path[PATH_MAX];
	int		 fd, tries;

	/*
	 * The partial may be renamed into blobs/ between the lookup and the
	 * open (the writer finished): then look again, once.
	 */
	for (tries = 0; tries < 2; tries++) {
		if (cache_row_get(c, sha, &r) != 1)
			return (-1);
		if (r.state == CACHE_COMPLETE)
			return (cache_open_blob(c, sha));
		if (r.state != CACHE_PARTIAL ||
		    cache_part_path(c, sha, path, sizeof path) == -1)
			return (-1);
		if ((fd = open(path, O_RDONLY | O_CLOEXEC)) != -1)
			return (fd);
		if (errno != ENOENT)
			return (-1);
	}
	return (-1);
}

uint64_t
cache_writer_verified(struct cache *c, const uint8_t sha[CACHE_SHA_LEN])
{
	struct cache_writer	*w;

	if ((w = cache_writer_find(c, sha)) == NULL)
		return (UINT64_MAX);
	return (w->verified);
}

uint64_t
cache_verified(struct cache *c, const uint8_t sha[CACHE_SHA_LEN])
{
	struct cache_row r;
	uint64_t	 v;

	if ((v = cache_writer_verified(c, sha)) != UINT64_MAX)
		return (v);
	if (cache_row_get(c, sha, &r) != 1)
		return (0);
	return (cache_row_verified(c, &r));
}

/* ------------------------------------------------------------------ */
/* quota                                                               */

/*
 * Makes room for `size' bytes of `sha' (which may already hold some):
 * evicts unpinned complete blobs, least recently used first, but only
 * once it knows that evicting them is enough; otherwise nothing changes
 * and the cause says what holds the space.
 */
static int
cache_reserve(struct cache *c, const uint8_t sha[CACHE_SHA_LEN],
    uint64_t size, char **cause)
{
	struct cache_row *rows;
	char		 path[PATH_MAX], hex[CACHE_HEX_LEN + 1];
	char		 q[32], p[32], s[32], pt[32];
	uint64_t	 total = 0, freeable = 0, pinned = 0, partial = 0;
	uint64_t	 charge;
	size_t		 n, i;

	if (c->quota == 0)
		return (0);
	if (cache_rows_all(c, &rows, &n) == -1) {
		cache__cause(cause, "cannot read the cache index");
		return (-1);
	}
	for (i = 0; i < n; i++) {
		if (memcmp(rows[i].sha, sha, CACHE_SHA_LEN) == 0)
			continue;
		charge = cache_row_charge(c, &rows[i]);
		total += charge;
		if (rows[i].pins > 0)
			pinned += charge;
		else if (rows[i].state == CACHE_COMPLETE)
			freeable += charge;
		else
			partial += charge;
	}
	if (total + size <= c->quota) {
		free(rows);
		return (0);
	}
	if (size > c->quota || total - freeable + size > c->quota) {
		cache_fmt_size(c->quota, q, sizeof q);
		cache_fmt_size(pinned, p, sizeof p);
		cache_fmt_size(size, s, sizeof s);
		cache_fmt_size(partial, pt, sizeof pt);
		if (partial > 0)
			cache__cause(cause, "cache quota %s: %s pinned, %s in "
			    "partial downloads, cannot fit %s", q, p, pt, s);
		else
			cache__cause(cause, "cache quota %s: %s pinned, "
			    "cannot fit %s", q, p, s);
		free(rows);
		return (-1);
	}
	/* rows are in use order: the least recently used go first. */
	for (i = 0; i < n && total + size > c->quota; i++) {
		if (memcmp(rows[i].sha, sha, CACHE_SHA_LEN) == 0 ||
		    rows[i].pins > 0 || rows[i].state != CACHE_COMPLETE)
			continue;
		cache_hex(rows[i].sha, hex);
		if (cache_blob_path(c, rows[i].sha, path, sizeof path) == -1 ||
		    cache_unlink(path) == -1 ||
		    cache_row_del(c, rows[i].sha) == -1) {
			cache__cause(cause, "cannot evict blob %s", hex);
			free(rows);
			return (-1);
		}
		total -= rows[i].size;
		c->evictions++;
		up_logf(UP_LOG_INFO, "cache: evicted %s (%llu bytes)", hex,
		    (unsigned long long)rows[i].size);
	}
	free(rows);
	return (0);
}

/* ------------------------------------------------------------------ */
/* writer                                                              */

static void
cache_writer_free(struct cache_writer *w)
{
	if (w->c != NULL)
		LIST_REMOVE(w, entry);
	if (w->fd != -1)
		close(w->fd);
	cache_sha_free(w->hash);
	cache_sha_free(w->chash);
	cache_sha_free(w->ok);
	free(w->chunks);
	free(w->buf);
	free(w);
}

/*
 * Loads the blob's chunk list, if it has one that fits its size.
 * 0, or -1 when memory runs out.
 */
static int
cache_writer_load_chunks(struct cache_writer *w, struct cache *c)
{
	uint8_t		*h;
	uint32_t	 cs, n;

	if (cache_chunks_get(c, w->sha, &cs, &h, &n) != 1)
		return (0);
	if ((w->size + cs - 1) / cs != n) {
		up_logf(UP_LOG_WARN, "cache: chunk list of %s does not fit "
		    "its size, ignored", w->hex);
		free(h);
		return (0);
	}
	if ((w->chash = cache_sha_new()) == NULL ||
	    (w->ok = cache_sha_new()) == NULL) {
		free(h);
		return (-1);
	}
	w->chunks = h;
	w->chunk_size = cs;
	w->nchunks = n;
	return (0);
}

/*
 * Hashes n bytes at offset `pos' (pos == bytes absorbed so far) into
 * the whole-file digest and, with a chunk list, into the chunk digest;
 * each chunk is compared with its listed hash as it completes.  Returns
 * 0, or -1 on a mismatch: then the digest is back at `verified' and
 * *cause says which chunk.
 */
static int
cache_writer_absorb(struct cache_writer *w, uint64_t pos, const uint8_t *p,
    size_t n, char **cause)
{
	uint8_t		 got[CACHE_SHA_LEN];
	char		 ghex[CACHE_HEX_LEN + 1], whex[CACHE_HEX_LEN + 1];
	uint64_t	 end;
	uint32_t	 idx;
	size_t		 take;

	if (w->chunk_size == 0) {
		cache_sha_update(w->hash, p, n);
		return (0);
	}
	while (n > 0) {
		idx = (uint32_t)(pos / w->chunk_size);
		end = (uint64_t)(idx + 1) * w->chunk_size;
		if (end > w->size)
			end = w->size;
		take = n;
		if (take > end - pos)
			take = (size_t)(end - pos);
		cache_sha_update(w->hash, p, take);
		cache_sha_update(w->chash, p, take);
		pos += take;
		p += take;
		n -= take;
		if (pos != end)
			continue;
		cache_sha_final(w->chash, got);
		if (memcmp(got, w->chunks + (size_t)idx * CACHE_SHA_LEN,
		    CACHE_SHA_LEN) != 0) {
			cache_hex(got, ghex);
			cache_hex(w->chunks + (size_t)idx * CACHE_SHA_LEN,
			    whex);
			cache__cause(cause, "chunk %u of %u: sha256 mismatch: "
			    "expected %s, got %s", idx + 1, w->nchunks, whex,
			    ghex);
			cache_sha_copy(w->hash, w->ok);
			return (-1);
		}
		w->verified = end;
		cache_sha_copy(w->ok, w->hash);
	}
	return (0);
}

/*
 * A chunk failed: the file goes back to the verified prefix, and so does
 * the writer (the digests already are).
 */
static void
cache_writer_cut(struct cache_writer *w)
{
	up_logf(UP_LOG_WARN, "cache: blob %s: bad chunk, cut back to the "
	    "verified %llu bytes", w->hex, (unsigned long long)w->verified);
	if (ftruncate(w->fd, (off_t)w->verified) == -1)
		up_logf(UP_LOG_WARN, "cache: truncate partial %s: %s",
		    w->hex, strerror(errno));
	w->off = w->primed = w->verified;
	if (w->c != NULL)
		cache_row_state(w->c, w->sha, CACHE_PARTIAL, w->off);
}

struct cache_writer *
cache_writer_open(struct cache *c, const uint8_t sha[CACHE_SHA_LEN],
    uint64_t size, char **cause)
{
	struct cache_writer	*w;
	struct cache_row	 r;
	struct stat		 sb;
	char			 part[PATH_MAX], hex[CACHE_HEX_LEN + 1];
	uint64_t		 have = 0;
	int			 rc, resume = 0, flags;

	cache_hex(sha, hex);
	if (size > INT64_MAX) {
		cache__cause(cause, "blob %s: size %llu too large", hex,
		    (unsigned long long)size);
		return (NULL);
	}
	if (cache_writer_find(c, sha) != NULL) {
		cache__cause(cause, "blob %s is already being written", hex);
		return (NULL);
	}
	if ((rc = cache_row_get(c, sha, &r)) == -1) {
		cache__cause(cause, "cannot read the cache index");
		return (NULL);
	}
	if (rc == 1 && r.state == CACHE_COMPLETE) {
		cache__cause(cause, "blob %s is already complete", hex);
		return (NULL);
	}
	if (cache_part_path(c, sha, part, sizeof part) == -1) {
		cache__cause(cause, "blob %s: path too long", hex);
		return (NULL);
	}
	/*
	 * Resume only what was started for the same size: the digest names
	 * the content, so a different size means a bad manifest, and the
	 * old bytes are not trusted.
	 */
	if (rc == 1 && r.state == CACHE_PARTIAL && r.size == size &&
	    stat(part, &sb) == 0 && S_ISREG(sb.st_mode) &&
	    (uint64_t)sb.st_size <= size) {
		resume = 1;
		have = (uint64_t)sb.st_size;
	}
	if (cache_reserve(c, sha, size, cause) == -1)
		return (NULL);

	if ((w = calloc(1, sizeof *w)) == NULL) {
		cache__cause(cause, "out of memory");
		return (NULL);
	}
	w->fd = -1;
	memcpy(w->sha, sha, CACHE_SHA_LEN);
	memcpy(w->hex, hex, sizeof w->hex);
	w->size = size;
	w->off = have;
	if ((w->hash = cache_sha_new()) == NULL ||
	    (have > 0 && (w->buf = malloc(CACHE_IO_CHUNK)) == NULL) ||
	    cache_writer_load_chunks(w, c) == -1) {
		cache__cause(cause, "out of memory");
		goto fail;
	}
	flags = O_RDWR | O_CREAT | O_CLOEXEC | (resume ? 0 : O_TRUNC);
	if ((w->fd = open(part, flags, CACHE_FILE_MODE)) == -1) {
		cache__cause(cause, "%s: %s", part, strerror(errno));
		goto fail;
	}
	if (cache_row_put(c, sha, CACHE_PARTIAL, size, have, cause) == -1)
		goto fail;
	w->c = c;
	LIST_INSERT_HEAD(&c->writers, w, entry);
	up_logf(UP_LOG_DEBUG, "cache: writing %s at %llu of %llu", hex,
	    (unsigned long long)have, (unsigned long long)size);
	return (w);

fail:
	cache_writer_free(w);
	return (NULL);
}

/*
 * The digest of a resumed blob must cover the bytes already on disk, so
 * they are hashed again, `budget' bytes per call, before the writer
 * accepts new ones.
 */
int
cache_writer_prime(struct cache_writer *w, size_t budget, char **cause)
{
	uint64_t	 left;
	size_t		 want;
	ssize_t		 n;

	if (w->c == NULL) {
		cache__cause(cause, "cache closed");
		return (-1);
	}
	if (budget == 0)
		budget = CACHE_STEP_DEFAULT;
	while (w->primed < w->off && budget > 0) {
		left = w->off - w->primed;
		want = CACHE_IO_CHUNK;
		if (want > budget)
			want = budget;
		if (want > left)
			want = (size_t)left;
		n = cache_pread(w->fd, w->buf, want, w->primed);
		if (n == -1) {
			cache__cause(cause, "partial %s: %s", w->hex,
			    strerror(errno));
			return (-1);
		}
		if ((size_t)n != want) {
			cache__cause(cause, "partial %s: shorter than %llu "
			    "bytes", w->hex, (unsigned long long)w->off);
			return (-1);
		}
		if (cache_writer_absorb(w, w->primed, w->buf, want,
		    NULL) == -1) {
			/* A torn tail after a crash: resume from the prefix. */
			cache_writer_cut(w);
			break;
		}
		w->primed += want;
		budget -= want;
	}
	if (w->primed < w->off)
		return (1);
	free(w->buf);
	w->buf = NULL;
	return (0);
}

uint64_t
cache_writer_offset(const struct cache_writer *w)
{
	return (w->off);
}

int
cache_writer_write(struct cache_writer *w, const void *buf, size_t len,
    char **cause)
{
	const uint8_t	*p = buf;
	ssize_t		 n;

	if (w->c == NULL) {
		cache__cause(cause, "cache closed");
		return (-1);
	}
	if (w->primed < w->off) {
		cache__cause(cause, "partial %s not re-hashed yet (%llu of "
		    "%llu bytes): call cache_writer_prime", w->hex,
		    (unsigned long long)w->primed,
		    (unsigned long long)w->off);
		return (-1);
	}
	if (len > w->size - w->off) {
		cache__cause(cause, "write beyond size of %s: %llu + %zu > "
		    "%llu", w->hex, (unsigned long long)w->off, len,
		    (unsigned long long)w->size);
		return (-1);
	}
	while (len > 0) {
		n = pwrite(w->fd, p, len, (off_t)w->off);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			cache__cause(cause, "partial %s: %s", w->hex,
			    strerror(errno));
			return (-1);
		}
		/* What reached the file is hashed and counted. */
		if (cache_writer_absorb(w, w->off, p, (size_t)n,
		    cause) == -1) {
			cache_writer_cut(w);
			return (-1);
		}
		w->off += (uint64_t)n;
		w->primed = w->off;
		p += n;
		len -= (size_t)n;
	}
	return (0);
}

int
cache_writer_finish(struct cache_writer *w, char **cause)
{
	struct cache	*c = w->c;
	uint8_t		 got[CACHE_SHA_LEN];
	char		 ghex[CACHE_HEX_LEN + 1];
	char		 part[PATH_MAX], blob[PATH_MAX], sub[PATH_MAX];

	if (c == NULL) {
		cache__cause(cause, "cache closed");
		cache_writer_free(w);
		return (-1);
	}
	if (w->primed < w->off || w->off != w->size) {
		cache__cause(cause, "blob %s incomplete: %llu of %llu bytes",
		    w->hex, (unsigned long long)w->off,
		    (unsigned long long)w->size);
		cache_writer_close(w);
		return (-1);
	}
	cache_sha_final(w->hash, got);
	if (cache_part_path(c, w->sha, part, sizeof part) == -1 ||
	    cache_blob_path(c, w->sha, blob, sizeof blob) == -1 ||
	    (size_t)snprintf(sub, sizeof sub, "%s/%.2s", c->blobdir,
	    w->hex) >= sizeof sub) {
		cache__cause(cause, "blob %s: path too long", w->hex);
		cache_writer_close(w);
		return (-1);
	}
	if (memcmp(got, w->sha, CACHE_SHA_LEN) != 0) {
		cache_hex(got, ghex);
		cache__cause(cause, "sha256 mismatch: expected %s, got %s",
		    w->hex, ghex);
		cache_mark_corrupt(c, w->sha, "sha256 mismatch");
		cache_writer_free(w);
		return (-1);
	}

	/*
	 * Data, then the name, then the directory: after a crash the blob
	 * is either whole under its name or still partial.
	 */
	if (fsync(w->fd) == -1) {
		cache__cause(cause, "fsync %s: %s", part, strerror(errno));
		cache_writer_close(w);
		return (-1);
	}
	if ((mkdir(sub, CACHE_DIR_MODE) == -1 && errno != EEXIST) ||
	    rename(part, blob) == -1) {
		cache__cause(cause, "%s: %s", blob, strerror(errno));
		cache_writer_close(w);
		return (-1);
	}
	if (cache_fsync_dir(sub, cause) == -1) {
		/* Not durable: drop it rather than trust it after a crash. */
		cache_unlink(blob);
		cache_row_del(c, w->sha);
		cache_writer_free(w);
		return (-1);
	}
	if (cache_row_put(c, w->sha, CACHE_COMPLETE, w->size, w->size,
	    cause) == -1) {
		cache_writer_free(w);
		return (-1);
	}
	up_logf(UP_LOG_INFO, "cache: blob %s complete (%llu bytes)", w->hex,
	    (unsigned long long)w->size);
	cache_writer_free(w);
	return (0);
}

void
cache_writer_close(struct cache_writer *w)
{
	if (w == NULL)
		return;
	if (w->c != NULL) {
		/* A failed write may have left bytes past what we count. */
		if (ftruncate(w->fd, (off_t)w->off) == -1)
			up_logf(UP_LOG_WARN, "cache: truncate partial %s: %s",
			    w->hex, strerror(errno));
		cache_row_state(w->c, w->sha, CACHE_PARTIAL, w->off);
	}
	cache_writer_free(w);
}

/* ------------------------------------------------------------------ */
/* check                                                               */

struct cache_check *
cache_check_start(struct cache *c, const uint8_t sha[CACHE_SHA_LEN],
    char **cause)
{
	struct cache_check	*k;
	struct cache_row	 r;
	struct stat		 sb;
	char			 path[PATH_MAX], hex[CACHE_HEX_LEN + 1];
	int			 rc;

	cache_hex(sha, hex);
	if ((rc = cache_row_get(c, sha, &r)) == -1) {
		cache__cause(cause, "cannot read the cache index");
		return (NULL);
	}
	if (rc == 0 || r.state != CACHE_COMPLETE) {
		cache__cause(cause, "blob %s is not complete (%s)", hex,
		    cache_state_name(rc == 0 ? CACHE_ABSENT : r.state));
		return (NULL);
	}
	if (cache_blob_path(c, sha, path, sizeof path) == -1) {
		cache__cause(cause, "blob %s: path too long", hex);
		return (NULL);
	}
	if ((k = calloc(1, sizeof *k)) == NULL) {
		cache__cause(cause, "out of memory");
		return (NULL);
	}
	k->fd = -1;
	if ((k->hash = cache_sha_new()) == NULL ||
	    (k->buf = malloc(CACHE_IO_CHUNK)) == NULL) {
		cache__cause(cause, "out of memory");
		goto fail;
	}
	if ((k->fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		rc = errno;
		cache__cause(cause, "blob %s: %s", hex, strerror(rc));
		if (rc == ENOENT)
			cache_row_del(c, sha);
		goto fail;
	}
	if (fstat(k->fd, &sb) == -1) {
		cache__cause(cause, "blob %s: %s", hex, strerror(errno));
		goto fail;
	}
	memcpy(k->sha, sha, CACHE_SHA_LEN);
	memcpy(k->hex, hex, sizeof k->hex);
	k->size = r.size;
	k->disk = (uint64_t)sb.st_size;
	k->result = 1;
	k->c = c;
	LIST_INSERT_HEAD(&c->checks, k, entry);
	return (k);

fail:
	if (k->fd != -1)
		close(k->fd);
	cache_sha_free(k->hash);
	free(k->buf);
	free(k);
	return (NULL);
}

/*
 * Marks the checked blob corrupt, unless the file under its name is no
 * longer the one we read (removed and fetched again meanwhile).
 */
static int
cache_check_bad(struct cache_check *k, char **cause, const char *why)
{
	struct stat	 a, b;
	char		 path[PATH_MAX];

	cache__cause(cause, "blob %s corrupt: %s", k->hex, why);
	k->result = -1;
	if (k->c == NULL)
		return (-1);
	if (cache_blob_path(k->c, k->sha, path, sizeof path) == 0 &&
	    fstat(k->fd, &a) == 0 && stat(path, &b) == 0 &&
	    (a.st_dev != b.st_dev || a.st_ino != b.st_ino))
		return (-1);
	cache_mark_corrupt(k->c, k->sha, why);
	return (-1);
}

int
cache_check_step(struct cache_check *k, size_t budget, char **cause)
{
	uint8_t		 got[CACHE_SHA_LEN];
	char		 why[160], ghex[CACHE_HEX_LEN + 1];
	size_t		 want;
	ssize_t		 n;

	if (k->result != 1) {
		if (k->result == -1)
			cache__cause(cause, "blob %s corrupt", k->hex);
		return (k->result);
	}
	if (k->c == NULL) {
		cache__cause(cause, "cache closed");
		return (-1);
	}
	if (k->disk != k->size) {
		snprintf(why, sizeof why, "size %llu on disk, expected %llu",
		    (unsigned long long)k->disk, (unsigned long long)k->size);
		return (cache_check_bad(k, cause, why));
	}
	if (budget == 0)
		budget = CACHE_STEP_DEFAULT;
	while (k->off < k->size && budget > 0) {
		want = CACHE_IO_CHUNK;
		if (want > budget)
			want = budget;
		if (want > k->size - k->off)
			want = (size_t)(k->size - k->off);
		n = cache_pread(k->fd, k->buf, want, k->off);
		if (n == -1) {
			snprintf(why, sizeof why, "read: %s", strerror(errno));
			return (cache_check_bad(k, cause, why));
		}
		if ((size_t)n != want)
			return (cache_check_bad(k, cause, "file shrank"));
		cache_sha_update(k->hash, k->buf, want);
		k->off += want;
		budget -= want;
	}
	if (k->off < k->size)
		return (1);
	cache_sha_final(k->hash, got);
	if (memcmp(got, k->sha, CACHE_SHA_LEN) != 0) {
		cache_hex(got, ghex);
		snprintf(why, sizeof why, "sha256 mismatch: got %s", ghex);
		return (cache_check_bad(k, cause, why));
	}
	k->result = 0;
	return (0);
}

void
cache_check_free(struct cache_check *k)
{
	if (k == NULL)
		return;
	if (k->c != NULL)
		LIST_REMOVE(k, entry);
	close(k->fd);
	cache_sha_free(k->hash);
	free(k->buf);
	free(k);
}

/* ------------------------------------------------------------------ */
/* pins, removal, usage                                                */

int
cache_pin(struct cache *c, const uint8_t sha[CACHE_SHA_LEN],
    const char *owner)
{
	sqlite3_stmt	*st;

	if (owner == NULL || *owner == '\0')
		return (-1);
	st = cache__stmt(c, CACHE_ST_PIN_ADD);
	cache__bind_sha(st, 1, sha);
	sqlite3_bind_text(st, 2, owner, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)time(NULL));
	return (cache__run(c, st, NULL));
}

int
cache_unpin(struct cache *c, const uint8_t sha[CACHE_SHA_LEN],
    const char *owner)
{
	sqlite3_stmt	*st;

	if (owner == NULL || *owner == '\0')
		return (-1);
	st = cache__stmt(c, CACHE_ST_PIN_DEL);
	cache__bind_sha(st, 1, sha);
	sqlite3_bind_text(st, 2, owner, -1, SQLITE_TRANSIENT);
	return (cache__run(c, st, NULL));
}

int
cache_remove(struct cache *c, const uint8_t sha[CACHE_SHA_LEN],
    char **cause)
{
	struct cache_row r;
	char		 hex[CACHE_HEX_LEN + 1], owner[128];
	char		 blob[PATH_MAX], part[PATH_MAX];
	int		 pins, rc;

	cache_hex(sha, hex);
	if ((pins = cache_pins(c, sha, owner, sizeof owner)) == -1 ||
	    (rc = cache_row_get(c, sha, &r)) == -1) {
		cache__cause(cause, "cannot read the cache index");
		return (-1);
	}
	if (pins > 0) {
		cache__cause(cause, "blob %s is pinned by %d owner%s (%s)",
		    hex, pins, pins == 1 ? "" : "s", owner);
		return (-1);
	}
	if (cache_writer_find(c, sha) != NULL) {
		cache__cause(cause, "blob %s is being written", hex);
		return (-1);
	}
	if (rc == 0)
		return (0);
	if (cache_blob_path(c, sha, blob, sizeof blob) == -1 ||
	    cache_part_path(c, sha, part, sizeof part) == -1 ||
	    cache_unlink(blob) == -1 || cache_unlink(part) == -1) {
		cache__cause(cause, "blob %s: cannot remove its file", hex);
		return (-1);
	}
	if (cache_row_del(c, sha) == -1) {
		cache__cause(cause, "cannot update the cache index");
		return (-1);
	}
	up_logf(UP_LOG_INFO, "cache: removed %s", hex);
	return (0);
}

void
cache_usage(struct cache *c, struct cache_usage *u)
{
	struct cache_row *rows;
	uint64_t	 disk;
	size_t		 n, i;

	memset(u, 0, sizeof *u);
	u->quota = c->quota;
	u->evictions = c->evictions;
	if (cache_rows_all(c, &rows, &n) == -1)
		return;
	for (i = 0; i < n; i++) {
		if (rows[i].state != CACHE_COMPLETE &&
		    rows[i].state != CACHE_PARTIAL)
			continue;
		disk = cache_row_disk(c, &rows[i]);
		u->used += disk;
		if (rows[i].pins > 0)
			u->pinned += disk;
		u->blobs++;
	}
	free(rows);
}

int
cache_foreach(struct cache *c, void (*fn)(void *, const struct cache_entry *),
    void *arg)
{
	struct cache_row *rows;
	struct cache_entry e;
	size_t		 n, i;

	if (cache_rows_all(c, &rows, &n) == -1)
		return (-1);
	for (i = 0; i < n; i++) {
		cache_row_entry(c, &rows[i], &e);
		fn(arg, &e);
	}
	free(rows);
	return (0);
}
