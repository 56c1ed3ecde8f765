/*
 * cache_pkg.c: the package metadata of the last verified manifest.
 *
 * One row per package in cache_pkgs, its hardware models in cache_pkg_hw
 * and its dependencies in cache_pkg_deps (one row each, with their
 * position), so nothing is packed into a string that would need its own
 * parser.  A new manifest replaces all three tables at once, inside a
 * SAVEPOINT: readers see the old packages or the new ones, never a mix.
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "up.h"

#include "cache.h"
#include "cache_internal.h"

/* A NUL-terminated string in a fixed field; empty allowed or not. */
static int
cache_pkg_str(const char *s, size_t size, int empty_ok)
{
	if (memchr(s, '\0', size) == NULL)
		return (0);
	return (empty_ok || s[0] != '\0');
}

/*
 * Bad input changes nothing: every package is checked before the table
 * is touched.  Duplicate ids are left to the primary key, inside the
 * savepoint.
 */
static int
cache_pkg_valid(const struct cache_pkg *p, size_t i, char **cause)
{
	const char	*why = NULL;
	int		 j;

	if (!cache_pkg_str(p->id, sizeof p->id, 0))
		why = "bad id";
	else if (!cache_pkg_str(p->component, sizeof p->component, 0))
		why = "bad component";
	else if (!cache_pkg_str(p->version, sizeof p->version, 0))
		why = "bad version";
	else if (!cache_pkg_str(p->base_version, sizeof p->base_version, 1))
		why = "bad base version";
	else if (!cache_pkg_str(p->url, sizeof p->url, 1))
		why = "bad url";
	else if (p->nhw < 0 || p->nhw > CACHE_HW_MAX)
		why = "bad number of hardware models";
	else if (p->ndeps < 0 || p->ndeps > 4)
		why = "bad number of dependencies";
	else if (p->sig_len > sizeof p->sig)
		why = "bad signature length";
	else if (p->size > INT64_MAX || p->image_size > INT64_MAX)
		why = "size too large";
	for (j = 0; why == NULL && j < p->nhw; j++) {
		if (!cache_pkg_str(p->hw[j], sizeof p->hw[j], 0))
			why = "bad hardware model";
	}
	for (j = 0; why == NULL && j < p->ndeps; j++) {
		if (!cache_pkg_str(p->dep_component[j],
		    sizeof p->dep_component[j], 0) ||
		    !cache_pkg_str(p->dep_min_version[j],
		    sizeof p->dep_min_version[j], 1))
			why = "bad dependency";
	}
	if (why == NULL)
		return (0);
	if (cache_pkg_str(p->id, sizeof p->id, 0))
		cache__cause(cause, "package \"%s\": %s", p->id, why);
	else
		cache__cause(cause, "package %zu: %s", i, why);
	return (-1);
}

static int
cache_pkg_insert(struct cache *c, const struct cache_pkg *p, char **cause)
{
	sqlite3_stmt	*st;
	int		 j, rc;

	st = cache__stmt(c, CACHE_ST_PKG_INS);
	sqlite3_bind_text(st, 1, p->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, p->component, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, p->version, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 4, p->kind);
	sqlite3_bind_int(st, 5, p->delta_format);
	sqlite3_bind_text(st, 6, p->base_version, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 7, (sqlite3_int64)p->size);
	cache__bind_sha(st, 8, p->sha256);
	sqlite3_bind_int64(st, 9, (sqlite3_int64)p->image_size);
	cache__bind_sha(st, 10, p->image_sha256);
	sqlite3_bind_text(st, 11, p->url, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 12, p->sig, (int)p->sig_len, SQLITE_STATIC);
	sqlite3_bind_int64(st, 13, p->manifest_serial);
	sqlite3_bind_int64(st, 14, p->security_version);
	sqlite3_bind_int(st, 15, p->allow_downgrade != 0);
	rc = sqlite3_step(st);
	if (rc != SQLITE_DONE) {
		if (sqlite3_extended_errcode(c->db) ==
		    SQLITE_CONSTRAINT_PRIMARYKEY) {
			sqlite3_reset(st);
			cache__cause(cause, "duplicate package id \"%s\"",
			    p->id);
			return (-1);
		}
		return (cache__db_fail(c, st, cause, "packages"));
	}
	sqlite3_reset(st);

	for (j = 0; j < p->nhw; j++) {
		st = cache__stmt(c, CACHE_ST_PKG_HW_INS);
		sqlite3_bind_text(st, 1, p->id, -1, SQLITE_STATIC);
		sqlite3_bind_int(st, 2, j);
		sqlite3_bind_text(st, 3, p->hw[j], -1, SQLITE_STATIC);
		if (cache__run(c, st, cause) == -1)
			return (-1);
	}
	for (j = 0; j < p->ndeps; j++) {
		st = cache__stmt(c, CACHE_ST_PKG_DEP_INS);
		sqlite3_bind_text(st, 1, p->id, -1, SQLITE_STATIC);
		sqlite3_bind_int(st, 2, j);
		sqlite3_bind_text(st, 3, p->dep_component[j], -1,
		    SQLITE_STATIC);
		sqlite3_bind_text(st, 4, p->dep_min_version[j], -1,
		    SQLITE_STATIC);
		if (cache__run(c, st, cause) == -1)
			return (-1);
	}
	return (0);
}

int
cache_pkg_replace(struct cache *c, const struct cache_pkg *pkgs, size_t n,
    char **cause)
{
	size_t	 i;

	for (i = 0; i < n; i++) {
		if (cache_pkg_valid(&pkgs[i], i, cause) == -1)
			return (-1);
	}

	/*
	 * A SAVEPOINT, not BEGIN: bridge/db.c keeps a transaction open and
	 * commits it on its timer; this nests inside it (or is a
	 * transaction of its own when none is open).
	 */
	if (cache__run(c, cache__stmt(c, CACHE_ST_PKG_SP_BEGIN), cause) == -1)
		return (-1);
	if (cache__run(c, cache__stmt(c, CACHE_ST_PKG_CLEAR), cause) == -1 ||
	    cache__run(c, cache__stmt(c, CACHE_ST_PKG_HW_CLEAR), cause) == -1 ||
	    cache__run(c, cache__stmt(c, CACHE_ST_PKG_DEP_CLEAR), cause) == -1)
		goto fail;
	for (i = 0; i < n; i++) {
		if (cache_pkg_insert(c, &pkgs[i], cause) == -1)
			goto fail;
	}
	if (cache__run(c, cache__stmt(c, CACHE_ST_PKG_SP_RELEASE),
	    cause) == -1)
		goto fail;
	up_logf(UP_LOG_INFO, "cache: %zu package%s from manifest", n,
	    n == 1 ? "" : "s");
	return (0);

fail:
	cache__run(c, cache__stmt(c, CACHE_ST_PKG_SP_ROLLBACK), NULL);
	cache__run(c, cache__stmt(c, CACHE_ST_PKG_SP_RELEASE), NULL);
	return (-1);
}

/* Hardware models and dependencies of p->id into p. */
static int
cache_pkg_lists(struct cache *c, struct cache_pkg *p)
{
	sqlite3_stmt	*st;
	int		 idx, rc;

	st = cache__stmt(c, CACHE_ST_PKG_HW_GET);
	sqlite3_bind_text(st, 1, p->id, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		idx = sqlite3_column_int(st, 0);
		if (idx < 0 || idx >= CACHE_HW_MAX)
			continue;
		cache__column_text(st, 1, p->hw[idx], sizeof p->hw[idx]);
		if (idx + 1 > p->nhw)
			p->nhw = idx + 1;
	}
	if (rc != SQLITE_DONE)
		return (cache__db_fail(c, st, NULL, "packages"));
	sqlite3_reset(st);

	st = cache__stmt(c, CACHE_ST_PKG_DEP_GET);
	sqlite3_bind_text(st, 1, p->id, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		idx = sqlite3_column_int(st, 0);
		if (idx < 0 || idx >= 4)
			continue;
		cache__column_text(st, 1, p->dep_component[idx],
		    sizeof p->dep_component[idx]);
		cache__column_text(st, 2, p->dep_min_version[idx],
		    sizeof p->dep_min_version[idx]);
		if (idx + 1 > p->ndeps)
			p->ndeps = idx + 1;
	}
	if (rc != SQLITE_DONE)
		return (cache__db_fail(c, st, NULL, "packages"));
	sqlite3_reset(st);
	return (0);
}

int
cache_pkg_get(struct cache *c, const char *id, struct cache_pkg *p)
{
	sqlite3_stmt	*st;
	const void	*sig;
	int		 rc, siglen;

	if (id == NULL)
		return (-1);
	memset(p, 0, sizeof *p);
	st = cache__stmt(c, CACHE_ST_PKG_GET);
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		sqlite3_reset(st);
		return (-1);
	}
	if (rc != SQLITE_ROW)
		return (cache__db_fail(c, st, NULL, "packages"));
	cache__column_text(st, 0, p->id, sizeof p->id);
	cache__column_text(st, 1, p->component, sizeof p->component);
	cache__column_text(st, 2, p->version, sizeof p->version);
	p->kind = sqlite3_column_int(st, 3);
	p->delta_format = sqlite3_column_int(st, 4);
	cache__column_text(st, 5, p->base_version, sizeof p->base_version);
	p->size = cache__column_u64(st, 6);
	cache__column_sha(st, 7, p->sha256);
	p->image_size = cache__column_u64(st, 8);
	cache__column_sha(st, 9, p->image_sha256);
	cache__column_text(st, 10, p->url, sizeof p->url);
	sig = sqlite3_column_blob(st, 11);
	siglen = sqlite3_column_bytes(st, 11);
	if (sig != NULL && siglen > 0 && (size_t)siglen <= sizeof p->sig) {
		memcpy(p->sig, sig, (size_t)siglen);
		p->sig_len = (size_t)siglen;
	}
	p->manifest_serial = sqlite3_column_int64(st, 12);
	p->security_version = (uint32_t)sqlite3_column_int64(st, 13);
	p->allow_downgrade = sqlite3_column_int(st, 14) != 0;
	sqlite3_reset(st);
	return (cache_pkg_lists(c, p));
}

int
cache_pkg_by_sha(struct cache *c, const uint8_t sha[CACHE_SHA_LEN],
    struct cache_pkg *p)
{
	sqlite3_stmt	*st;
	char		 id[CACHE_ID_MAX + 1];
	int		 rc;

	st = cache__stmt(c, CACHE_ST_PKG_BY_SHA);
	cache__bind_sha(st, 1, sha);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		sqlite3_reset(st);
		return (-1);
	}
	if (rc != SQLITE_ROW)
		return (cache__db_fail(c, st, NULL, "packages"));
	cache__column_text(st, 0, id, sizeof id);
	sqlite3_reset(st);
	return (cache_pkg_get(c, id, p));
}

/*
 * The ids are read first, so `fn' may call back into the cache (even
 * replace the table: it then sees what it replaced, by id).
 */
int
cache_pkg_foreach(struct cache *c,
    void (*fn)(void *, const struct cache_pkg *), void *arg)
{
	sqlite3_stmt	*st;
	struct cache_pkg *p;
	char		(*ids)[CACHE_ID_MAX + 1] = NULL;
	char		(*nids)[CACHE_ID_MAX + 1];
	size_t		 n = 0, cap = 0, i;
	int		 rc;

	st = cache__stmt(c, CACHE_ST_PKG_IDS);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == cap) {
			cap = cap == 0 ? 16 : cap * 2;
			if ((nids = reallocarray(ids, cap,
			    sizeof *ids)) == NULL) {
				free(ids);
				sqlite3_reset(st);
				return (-1);
			}
			ids = nids;
		}
		cache__column_text(st, 0, ids[n], sizeof ids[n]);
		n++;
	}
	if (rc != SQLITE_DONE) {
		free(ids);
		return (cache__db_fail(c, st, NULL, "packages"));
	}
	sqlite3_reset(st);

	if ((p = malloc(sizeof *p)) == NULL) {
		free(ids);
		return (-1);
	}
	for (i = 0; i < n; i++) {
		if (cache_pkg_get(c, ids[i], p) == 0)
			fn(arg, p);
	}
	free(p);
	free(ids);
	return (0);
}

/* ------------------------------------------------------------------ */
/* chunk lists (cut-through)                                           */

int
cache_chunks_put(struct cache *c, const uint8_t sha[CACHE_SHA_LEN],
    uint64_t size, uint32_t chunk_size, const uint8_t *hashes, uint32_t n,
    char **cause)
{
	sqlite3_stmt	*st;
	char		 hex[CACHE_HEX_LEN + 1];
	uint64_t	 want;

	cache_hex(sha, hex);
	if (chunk_size == 0 || size == 0 || size > INT64_MAX) {
		cache__cause(cause, "chunks of %.16s...: bad chunk size %u or "
		    "size %llu", hex, chunk_size, (unsigned long long)size);
		return (-1);
	}
	want = (size + chunk_size - 1) / chunk_size;
	if (n != want || n > CACHE_CHUNKS_MAX || hashes == NULL) {
		cache__cause(cause, "chunks of %.16s...: %u hashes, %llu "
		    "bytes in chunks of %u need %llu", hex, n,
		    (unsigned long long)size, chunk_size,
		    (unsigned long long)want);
		return (-1);
	}
	st = cache__stmt(c, CACHE_ST_CHUNKS_PUT);
	cache__bind_sha(st, 1, sha);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)size);
	sqlite3_bind_int64(st, 3, chunk_size);
	sqlite3_bind_blob(st, 4, hashes, (int)(n * CACHE_SHA_LEN),
	    SQLITE_STATIC);
	return (cache__run(c, st, cause));
}

int
cache_chunks_get(struct cache *c, const uint8_t sha[CACHE_SHA_LEN],
    uint32_t *chunk_size, uint8_t **hashes, uint32_t *n)
{
	sqlite3_stmt	*st;
	const void	*blob;
	uint64_t	 size, cs, want;
	int		 rc, len;

	*hashes = NULL;
	*n = 0;
	*chunk_size = 0;
	st = cache__stmt(c, CACHE_ST_CHUNKS_GET);
	cache__bind_sha(st, 1, sha);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		sqlite3_reset(st);
		return (0);
	}
	if (rc != SQLITE_ROW)
		return (cache__db_fail(c, st, NULL, "chunks"));
	size = cache__column_u64(st, 0);
	cs = cache__column_u64(st, 1);
	blob = sqlite3_column_blob(st, 2);
	len = sqlite3_column_bytes(st, 2);
	/* A row we did not write whole is no list at all. */
	if (cs == 0 || cs > UINT32_MAX || size == 0 || blob == NULL ||
	    len <= 0 || len % CACHE_SHA_LEN != 0) {
		sqlite3_reset(st);
		return (0);
	}
	want = (size + cs - 1) / cs;
	if (want != (uint64_t)len / CACHE_SHA_LEN || want > CACHE_CHUNKS_MAX) {
		sqlite3_reset(st);
		return (0);
	}
	if ((*hashes = malloc((size_t)len)) == NULL) {
		sqlite3_reset(st);
		return (-1);
	}
	memcpy(*hashes, blob, (size_t)len);
	*n = (uint32_t)want;
	*chunk_size = (uint32_t)cs;
	sqlite3_reset(st);
	return (1);
}

int
cache_chunks_prune(struct cache *c)
{
	return (cache__run(c, cache__stmt(c, CACHE_ST_CHUNKS_PRUNE), NULL));
}
