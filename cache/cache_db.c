/*
 * cache_db.c: the cache's tables in the daemon's SQLite database: the
 * numbered migrations, the prepared statements and small helpers.
 *
 * bridge/db.c opens the database and lends it; it keeps one write
 * transaction open and commits it on a timer (ARCHITECTURE.md "State").
 * So nothing here says BEGIN or COMMIT: work that must be all or nothing
 * (a migration, a package table swap) runs in a SAVEPOINT, which nests
 * inside the daemon's transaction, or is a transaction of its own when
 * none is open.
 */

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "up.h"

#include "cache.h"
#include "cache_internal.h"

/*
 * Forward-only migrations; cache__schema[i] takes the schema from
 * version i to i + 1.  Never edit a step that has shipped: add one.
 *
 * Digests are stored as lower-case hex TEXT so that an operator with the
 * sqlite3 shell reads the same names as in blobs/.  `use_seq' orders
 * uses exactly (LRU eviction); last_used (unix seconds) is for people.
 */
const char *const cache__schema[] = {
	/* 1: blobs, pins, packages */
	"CREATE TABLE cache_blobs ("
	"  sha256 TEXT PRIMARY KEY NOT NULL,"
	"  state INTEGER NOT NULL,"
	"  size INTEGER NOT NULL,"
	"  have INTEGER NOT NULL DEFAULT 0,"
	"  last_used INTEGER NOT NULL DEFAULT 0,"
	"  use_seq INTEGER NOT NULL DEFAULT 0);"
	"CREATE INDEX cache_blobs_lru ON cache_blobs (use_seq);"
	"CREATE TABLE cache_pins ("
	"  sha256 TEXT NOT NULL,"
	"  owner TEXT NOT NULL,"
	"  since INTEGER NOT NULL,"
	"  PRIMARY KEY (sha256, owner));"
	"CREATE TABLE cache_pkgs ("
	"  id TEXT PRIMARY KEY NOT NULL,"
	"  component TEXT NOT NULL,"
	"  version TEXT NOT NULL,"
	"  kind INTEGER NOT NULL,"
	"  delta_format INTEGER NOT NULL,"
	"  base_version TEXT NOT NULL,"
	"  size INTEGER NOT NULL,"
	"  sha256 TEXT NOT NULL,"
	"  image_size INTEGER NOT NULL,"
	"  image_sha256 TEXT NOT NULL,"
	"  url TEXT NOT NULL,"
	"  sig BLOB NOT NULL,"
	"  manifest_serial INTEGER NOT NULL);"
	"CREATE INDEX cache_pkgs_sha ON cache_pkgs (sha256, id);"
	"CREATE TABLE cache_pkg_hw ("
	"  pkg_id TEXT NOT NULL,"
	"  idx INTEGER NOT NULL,"
	"  hw TEXT NOT NULL,"
	"  PRIMARY KEY (pkg_id, idx));"
	"CREATE TABLE cache_pkg_deps ("
	"  pkg_id TEXT NOT NULL,"
	"  idx INTEGER NOT NULL,"
	"  component TEXT NOT NULL,"
	"  min_version TEXT NOT NULL,"
	"  PRIMARY KEY (pkg_id, idx));",
	/*
	 * 2: per-chunk hashes of a blob (cut-through, docs/cache.md), keyed
	 * by content like the blobs: n * 32 raw bytes.
	 */
	"CREATE TABLE cache_chunks ("
	"  sha256 TEXT PRIMARY KEY NOT NULL,"
	"  size INTEGER NOT NULL,"
	"  chunk_size INTEGER NOT NULL,"
	"  hashes BLOB NOT NULL);",
	/*
	 * 3: the anti-rollback fields of a package's signed descriptor
	 * (docs/up-protocol.md §5.4); rows of before mean 0 and no.
	 */
	"ALTER TABLE cache_pkgs ADD COLUMN security_version INTEGER NOT NULL "
	"  DEFAULT 0;"
	"ALTER TABLE cache_pkgs ADD COLUMN allow_downgrade INTEGER NOT NULL "
	"  DEFAULT 0;",
};
const int cache__nschema = sizeof cache__schema / sizeof cache__schema[0];

#define CACHE_PINS_OF(b)						\
	"(SELECT count(*) FROM cache_pins p WHERE p.sha256 = " b ".sha256)"

static const char *const cache_sql[CACHE_ST_MAX] = {
	[CACHE_ST_BLOB_GET] =
	    "SELECT state, size, have, last_used, use_seq, "
	    CACHE_PINS_OF("b") " FROM cache_blobs b WHERE sha256 = ?1",
	[CACHE_ST_BLOB_ALL] =
	    "SELECT sha256, state, size, have, last_used, use_seq, "
	    CACHE_PINS_OF("b") " FROM cache_blobs b ORDER BY use_seq, sha256",
	[CACHE_ST_BLOB_PUT] =
	    "INSERT INTO cache_blobs (sha256, state, size, have, last_used, "
	    "use_seq) VALUES (?1, ?2, ?3, ?4, ?5, ?6) "
	    "ON CONFLICT (sha256) DO UPDATE SET state = excluded.state, "
	    "size = excluded.size, have = excluded.have, "
	    "last_used = excluded.last_used, use_seq = excluded.use_seq",
	[CACHE_ST_BLOB_STATE] =
	    "UPDATE cache_blobs SET state = ?2, have = ?3 WHERE sha256 = ?1",
	[CACHE_ST_BLOB_USED] =
	    "UPDATE cache_blobs SET last_used = ?2, use_seq = ?3 "
	    "WHERE sha256 = ?1",
	[CACHE_ST_BLOB_DEL] =
	    "DELETE FROM cache_blobs WHERE sha256 = ?1",
	[CACHE_ST_SEQ_MAX] =
	    "SELECT coalesce(max(use_seq), 0) FROM cache_blobs",
	[CACHE_ST_PIN_ADD] =
	    "INSERT OR IGNORE INTO cache_pins (sha256, owner, since) "
	    "VALUES (?1, ?2, ?3)",
	[CACHE_ST_PIN_DEL] =
	    "DELETE FROM cache_pins WHERE sha256 = ?1 AND owner = ?2",
	[CACHE_ST_PIN_COUNT] =
	    "SELECT count(*), min(owner) FROM cache_pins WHERE sha256 = ?1",
	[CACHE_ST_PKG_SP_BEGIN] = "SAVEPOINT cache_pkg_replace",
	[CACHE_ST_PKG_SP_RELEASE] = "RELEASE cache_pkg_replace",
	[CACHE_ST_PKG_SP_ROLLBACK] = "ROLLBACK TO cache_pkg_replace",
	[CACHE_ST_PKG_CLEAR] = "DELETE FROM cache_pkgs",
	[CACHE_ST_PKG_HW_CLEAR] = "DELETE FROM cache_pkg_hw",
	[CACHE_ST_PKG_DEP_CLEAR] = "DELETE FROM cache_pkg_deps",
	[CACHE_ST_PKG_INS] =
	    "INSERT INTO cache_pkgs (id, component, version, kind, "
	    "delta_format, base_version, size, sha256, image_size, "
	    "image_sha256, url, sig, manifest_serial, security_version, "
	    "allow_downgrade) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, "
	    "?10, ?11, ?12, ?13, ?14, ?15)",
	[CACHE_ST_PKG_HW_INS] =
	    "INSERT INTO cache_pkg_hw (pkg_id, idx, hw) VALUES (?1, ?2, ?3)",
	[CACHE_ST_PKG_DEP_INS] =
	    "INSERT INTO cache_pkg_deps (pkg_id, idx, component, "
	    "min_version) VALUES (?1, ?2, ?3, ?4)",
	[CACHE_ST_PKG_GET] =
	    "SELECT id, component, version, kind, delta_format, base_version, "
	    "size, sha256, image_size, image_sha256, url, sig, "
	    "manifest_serial, security_version, allow_downgrade "
	    "FROM cache_pkgs WHERE id = ?1",
	[CACHE_ST_PKG_BY_SHA] =
	    "SELECT id FROM cache_pkgs WHERE sha256 = ?1 ORDER BY id LIMIT 1",
	[CACHE_ST_PKG_HW_GET] =
	    "SELECT idx, hw FROM cache_pkg_hw WHERE pkg_id = ?1 ORDER BY idx",
	[CACHE_ST_PKG_DEP_GET] =
	    "SELECT idx, component, min_version FROM cache_pkg_deps "
	    "WHERE pkg_id = ?1 ORDER BY idx",
	[CACHE_ST_PKG_IDS] = "SELECT id FROM cache_pkgs ORDER BY id",
	[CACHE_ST_CHUNKS_PUT] =
	    "INSERT OR REPLACE INTO cache_chunks (sha256, size, chunk_size, "
	    "hashes) VALUES (?1, ?2, ?3, ?4)",
	[CACHE_ST_CHUNKS_GET] =
	    "SELECT size, chunk_size, hashes FROM cache_chunks "
	    "WHERE sha256 = ?1",
	[CACHE_ST_CHUNKS_PRUNE] =
	    "DELETE FROM cache_chunks WHERE sha256 NOT IN "
	    "(SELECT sha256 FROM cache_pkgs)",
};

/* Sets *cause (when cause is not NULL) to a malloc'd message. */
void
cache__cause(char **cause, const char *fmt, ...)
{
	va_list	 ap;

	if (cause == NULL)
		return;
	va_start(ap, fmt);
	if (vasprintf(cause, fmt, ap) == -1)
		*cause = NULL;
	va_end(ap);
}

static int
cache_exec(sqlite3 *db, const char *sql, char **cause, const char *what)
{
	char	*err = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
		cache__cause(cause, "%s: %s", what,
		    err != NULL ? err : sqlite3_errmsg(db));
		sqlite3_free(err);
		return (-1);
	}
	return (0);
}

/*
 * Runs the migrations of `component' that have not run yet, each with
 * its schema_version bump, in one SAVEPOINT: a failed step leaves the
 * database as it was.  A database newer than the code is refused rather
 * than used with a schema we do not know.  bridge/db.c's db_migrate()
 * uses the same schema_version table; this copy keeps cache/ free of
 * bridge/ (folder rules) and usable on its own in tests.
 */
int
cache__migrate(sqlite3 *db, const char *component,
    const char *const *steps, int nsteps, char **cause)
{
	sqlite3_stmt	*st = NULL;
	char		*sql;
	int		 version = 0, i, rc;

	if (cache_exec(db, "CREATE TABLE IF NOT EXISTS schema_version ("
	    "component TEXT PRIMARY KEY, version INTEGER NOT NULL)", cause,
	    "schema_version") == -1)
		return (-1);
	if (cache_exec(db, "SAVEPOINT cache_migrate", cause,
	    "migrate") == -1)
		return (-1);

	if (sqlite3_prepare_v2(db, "SELECT version FROM schema_version "
	    "WHERE component = ?1", -1, &st, NULL) != SQLITE_OK)
		goto dberr;
	sqlite3_bind_text(st, 1, component, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		version = sqlite3_column_int(st, 0);
	else if (rc != SQLITE_DONE)
		goto dberr;
	sqlite3_finalize(st);
	st = NULL;

	if (version < 0 || version > nsteps) {
		cache__cause(cause, "database schema of %s is version %d, "
		    "this program knows up to %d", component, version, nsteps);
		goto fail;
	}
	for (i = version; i < nsteps; i++) {
		if (cache_exec(db, steps[i], cause, "migration") == -1)
			goto fail;
		sql = sqlite3_mprintf("INSERT OR REPLACE INTO schema_version "
		    "(component, version) VALUES (%Q, %d)", component, i + 1);
		if (sql == NULL) {
			cache__cause(cause, "migration: out of memory");
			goto fail;
		}
		rc = cache_exec(db, sql, cause, "schema_version");
		sqlite3_free(sql);
		if (rc == -1)
			goto fail;
		up_logf(UP_LOG_INFO, "cache: schema of %s now version %d",
		    component, i + 1);
	}
	return (cache_exec(db, "RELEASE cache_migrate", cause, "migrate"));

dberr:
	cache__cause(cause, "schema_version: %s", sqlite3_errmsg(db));
fail:
	sqlite3_finalize(st);
	sqlite3_exec(db, "ROLLBACK TO cache_migrate", NULL, NULL, NULL);
	sqlite3_exec(db, "RELEASE cache_migrate", NULL, NULL, NULL);
	return (-1);
}

/*
 * Statements are prepared once per cache object and kept (the daemon
 * runs them for its whole life: SQLITE_PREPARE_PERSISTENT).
 */
int
cache__prepare(struct cache *c, char **cause)
{
	int	 i;

	for (i = 0; i < CACHE_ST_MAX; i++) {
		if (sqlite3_prepare_v3(c->db, cache_sql[i], -1,
		    SQLITE_PREPARE_PERSISTENT, &c->st[i], NULL) != SQLITE_OK) {
			cache__cause(cause, "prepare: %s",
			    sqlite3_errmsg(c->db));
			cache__finalize(c);
			return (-1);
		}
	}
	return (0);
}

void
cache__finalize(struct cache *c)
{
	int	 i;

	for (i = 0; i < CACHE_ST_MAX; i++) {
		sqlite3_finalize(c->st[i]);
		c->st[i] = NULL;
	}
}

/* A statement, reset and with its bindings cleared, ready to bind. */
sqlite3_stmt *
cache__stmt(struct cache *c, enum cache_stmt id)
{
	sqlite3_stmt	*st = c->st[id];

	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return (st);
}

/* Steps a statement that returns no rows; 0 or -1 with *cause. */
int
cache__run(struct cache *c, sqlite3_stmt *st, char **cause)
{
	int	 rc;

	rc = sqlite3_step(st);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		return (cache__db_fail(c, st, cause, "db"));
	sqlite3_reset(st);
	return (0);
}

/*
 * Records a failed statement: the message is taken before the reset (a
 * reset may replace it), logged and put into *cause.  Returns -1.
 */
int
cache__db_fail(struct cache *c, sqlite3_stmt *st, char **cause,
    const char *what)
{
	const char	*msg;
	char		*copy;

	msg = sqlite3_errmsg(c->db);
	copy = strdup(msg != NULL ? msg : "unknown error");
	up_logf(UP_LOG_WARN, "cache: %s: %s", what,
	    copy != NULL ? copy : "out of memory");
	cache__cause(cause, "%s: %s", what,
	    copy != NULL ? copy : "out of memory");
	free(copy);
	if (st != NULL)
		sqlite3_reset(st);
	return (-1);
}

void
cache__bind_sha(sqlite3_stmt *st, int idx, const uint8_t sha[CACHE_SHA_LEN])
{
	char	 hex[CACHE_HEX_LEN + 1];

	cache_hex(sha, hex);
	sqlite3_bind_text(st, idx, hex, CACHE_HEX_LEN, SQLITE_TRANSIENT);
}

int
cache__column_sha(sqlite3_stmt *st, int col, uint8_t sha[CACHE_SHA_LEN])
{
	const unsigned char	*s;

	s = sqlite3_column_text(st, col);
	if (s == NULL)
		return (-1);
	return (cache_unhex((const char *)s, sha));
}

/* Sizes are never negative; a negative value in the db reads as 0. */
uint64_t
cache__column_u64(sqlite3_stmt *st, int col)
{
	sqlite3_int64	 v;

	v = sqlite3_column_int64(st, col);
	return (v < 0 ? 0 : (uint64_t)v);
}

void
cache__column_text(sqlite3_stmt *st, int col, char *buf, size_t len)
{
	const unsigned char	*s;

	s = sqlite3_column_text(st, col);
	snprintf(buf, len, "%s", s != NULL ? (const char *)s : "");
}
