/*
 * uplink_store.c: the uplink's tables in the daemon's SQLite database.
 *
 * uplink/ owns its tables and their forward-only migrations, recorded as
 * the row ("uplink", N) of schema_version, the table every module shares
 * (ARCHITECTURE.md "State").  bridge/db.c keeps one write transaction open
 * and commits it on a timer; so nothing here says BEGIN or COMMIT:
 * migrations run inside a SAVEPOINT, which nests in the caller's
 * transaction or, with none open, is one of its own.
 *
 *   uplink_outbox    report lines waiting for an acknowledged PUT
 *   uplink_batches   batch numbers (never reused: AUTOINCREMENT) and
 *                    which lines they hold, fixed before the first PUT
 *   uplink_manifest  the last accepted manifest, bytes and signature:
 *                    the replay guard (docs/manifest.md "Security")
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "uplink_internal.h"

static const char *const migrations[UPLINK_SCHEMA_VERSION] = {
	/* 1 */
	"CREATE TABLE uplink_outbox("
	"  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  line TEXT NOT NULL,"
	"  batch INTEGER);"
	"CREATE INDEX uplink_outbox_batch ON uplink_outbox(batch);"
	"CREATE TABLE uplink_batches("
	"  batch INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  created INTEGER NOT NULL,"
	"  sent_at INTEGER,"
	"  acked INTEGER NOT NULL DEFAULT 0);"
	"CREATE TABLE uplink_manifest("
	"  id INTEGER PRIMARY KEY CHECK (id = 1),"
	"  serial INTEGER NOT NULL,"
	"  sha256 BLOB NOT NULL,"
	"  body BLOB NOT NULL,"
	"  sig BLOB NOT NULL,"
	"  accepted_at INTEGER NOT NULL);"
};

static int
store_err(sqlite3 *db, const char *what, char **cause)
{
	if (cause != NULL && asprintf(cause, "uplink tables: %s: %s", what,
	    sqlite3_errmsg(db)) == -1)
		*cause = NULL;
	return (-1);
}

int
uplink__store_open(sqlite3 *db, char **cause)
{
	sqlite3_stmt	*st = NULL;
	int		 version = 0, i, rc;
	char		 sql[160];

	if (sqlite3_exec(db, "CREATE TABLE IF NOT EXISTS schema_version("
	    "component TEXT PRIMARY KEY, version INTEGER NOT NULL)", NULL,
	    NULL, NULL) != SQLITE_OK)
		return (store_err(db, "schema_version", cause));
	if (sqlite3_prepare_v2(db, "SELECT version FROM schema_version "
	    "WHERE component = 'uplink'", -1, &st, NULL) != SQLITE_OK)
		return (store_err(db, "schema_version", cause));
	if ((rc = sqlite3_step(st)) == SQLITE_ROW)
		version = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return (store_err(db, "schema_version", cause));
	if (version > UPLINK_SCHEMA_VERSION) {
		if (cause != NULL && asprintf(cause, "uplink tables: schema "
		    "version %d is newer than this program's (%d)", version,
		    UPLINK_SCHEMA_VERSION) == -1)
			*cause = NULL;
		return (-1);
	}
	for (i = version; i < UPLINK_SCHEMA_VERSION; i++) {
		if (sqlite3_exec(db, "SAVEPOINT uplink_migrate", NULL, NULL,
		    NULL) != SQLITE_OK)
			return (store_err(db, "savepoint", cause));
		snprintf(sql, sizeof(sql), "INSERT OR REPLACE INTO "
		    "schema_version(component, version) VALUES('uplink', %d)",
		    i + 1);
		if (sqlite3_exec(db, migrations[i], NULL, NULL, NULL) !=
		    SQLITE_OK ||
		    sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK) {
			store_err(db, "migration", cause);
			sqlite3_exec(db, "ROLLBACK TO uplink_migrate; "
			    "RELEASE uplink_migrate", NULL, NULL, NULL);
			return (-1);
		}
		if (sqlite3_exec(db, "RELEASE uplink_migrate", NULL, NULL,
		    NULL) != SQLITE_OK)
			return (store_err(db, "release", cause));
	}
	return (0);
}

void
uplink__stored_clear(struct uplink_stored *st)
{
	free(st->body);
	free(st->sig);
	memset(st, 0, sizeof(*st));
}

int
uplink__store_get(sqlite3 *db, struct uplink_stored *out)
{
	sqlite3_stmt	*st = NULL;
	const void	*p;
	int		 rc, n;

	memset(out, 0, sizeof(*out));
	if (sqlite3_prepare_v2(db, "SELECT serial, sha256, body, sig FROM "
	    "uplink_manifest WHERE id = 1", -1, &st, NULL) != SQLITE_OK)
		return (-1);
	if ((rc = sqlite3_step(st)) != SQLITE_ROW) {
		sqlite3_finalize(st);
		return (rc == SQLITE_DONE ? 0 : -1);
	}
	out->serial = sqlite3_column_int64(st, 0);
	p = sqlite3_column_blob(st, 1);
	if (p == NULL || sqlite3_column_bytes(st, 1) != CACHE_SHA_LEN)
		goto bad;
	memcpy(out->sha256, p, CACHE_SHA_LEN);
	p = sqlite3_column_blob(st, 2);
	n = sqlite3_column_bytes(st, 2);
	if ((out->body = malloc((size_t)n + 1)) == NULL)
		goto bad;
	if (n > 0)
		memcpy(out->body, p, (size_t)n);
	out->body[n] = '\0';
	out->body_len = (size_t)n;
	p = sqlite3_column_blob(st, 3);
	n = sqlite3_column_bytes(st, 3);
	if ((out->sig = malloc((size_t)n + 1)) == NULL)
		goto bad;
	if (n > 0)
		memcpy(out->sig, p, (size_t)n);
	out->sig_len = (size_t)n;
	sqlite3_finalize(st);
	return (1);
bad:
	sqlite3_finalize(st);
	uplink__stored_clear(out);
	return (-1);
}

int
uplink__store_put(sqlite3 *db, int64_t serial,
    const uint8_t sha[CACHE_SHA_LEN], const void *body, size_t body_len,
    const void *sig, size_t sig_len)
{
	sqlite3_stmt	*st = NULL;
	int		 rc;

	if (sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO uplink_manifest"
	    "(id, serial, sha256, body, sig, accepted_at) VALUES(1, ?, ?, ?, "
	    "?, strftime('%s','now'))", -1, &st, NULL) != SQLITE_OK)
		return (-1);
	sqlite3_bind_int64(st, 1, serial);
	sqlite3_bind_blob(st, 2, sha, CACHE_SHA_LEN, SQLITE_STATIC);
	sqlite3_bind_blob64(st, 3, body, body_len, SQLITE_STATIC);
	sqlite3_bind_blob64(st, 4, sig, sig_len, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return (rc == SQLITE_DONE ? 0 : -1);
}
