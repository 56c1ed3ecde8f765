/*
 * db.c: the daemon's one SQLite database.
 *
 * WAL mode, a busy timeout, `synchronous' from the config and foreign
 * keys on.  bridge/ opens it and lends the handle to cache/, uplink/ and
 * its own modules; each owns its tables and numbered migrations, recorded
 * in schema_version(component, version).
 *
 * Writes are batched: one write transaction stays open and the daemon's
 * housekeeping timer commits it every commit_interval_ms
 * (db_commit_now), so a kill -9 loses at most that much progress.  Code
 * that must not lose a write (a node's result) commits at once.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "upbridged.h"

#define DB_BUSY_TIMEOUT_MS	5000
/*
 * Memory (issue 3: the daemon within 8 MiB).  SQLite's default page
 * cache is 2 MiB per connection; the daemon's working set is a few
 * hundred pages (the registry is in memory, the cache index and the
 * outbox are small), and the kernel's page cache holds the file anyway,
 * so 64 KiB costs nothing measurable in speed (128 KiB until the
 * static build's peak RSS went over 8 MiB again, 2026-12-08).  A
 * transaction bigger than that spills to the WAL.  No mmap: mapped
 * database pages would be
 * counted in the daemon's RSS; temporary tables and sorts stay in
 * files, not in the heap.
 */
#define DB_MEMORY_PRAGMAS \
	"PRAGMA cache_size=-64; PRAGMA mmap_size=0; PRAGMA temp_store=FILE"

static const char *const db_schema_version_sql =
    "CREATE TABLE IF NOT EXISTS schema_version ("
    "component TEXT PRIMARY KEY, version INTEGER)";

static int	 db_exec(sqlite3 *, const char *, char **);
static int	 db_get_version(sqlite3 *, const char *, int *, char **);

/* Runs SQL; on error fills *cause (if not NULL) with SQLite's message. */
static int
db_exec(sqlite3 *db, const char *sql, char **cause)
{
	char	*err = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
		if (cause != NULL)
			xasprintf(cause, "%s", err != NULL ? err :
			    sqlite3_errmsg(db));
		sqlite3_free(err);
		return (-1);
	}
	return (0);
}

sqlite3 *
db_open(const char *path, int synchronous, char **cause)
{
	sqlite3		*db = NULL;
	sqlite3_stmt	*st = NULL;
	const char	*mode;
	char		*err = NULL;
	char		 sql[64];
	int		 rc;

	rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		xasprintf(cause, "%s: %s", path, db != NULL ?
		    sqlite3_errmsg(db) : sqlite3_errstr(rc));
		goto fail;
	}
	sqlite3_extended_result_codes(db, 1);
	/*
	 * No lookaside: SQLite's per-connection pool of small allocations
	 * (about 120 KiB by default) serves a few statements a second
	 * here; malloc does as well.
	 */
	(void)sqlite3_db_config(db, SQLITE_DBCONFIG_LOOKASIDE, NULL, 0, 0);
	if (sqlite3_busy_timeout(db, DB_BUSY_TIMEOUT_MS) != SQLITE_OK)
		goto sqlfail;

	/* journal_mode answers with the mode it ended in. */
	if (sqlite3_prepare_v2(db, "PRAGMA journal_mode=WAL", -1, &st,
	    NULL) != SQLITE_OK || sqlite3_step(st) != SQLITE_ROW)
		goto sqlfail;
	mode = (const char *)sqlite3_column_text(st, 0);
	if (mode == NULL || strcasecmp(mode, "wal") != 0) {
		xasprintf(cause, "%s: cannot use WAL mode (journal mode is "
		    "%s)", path, mode != NULL ? mode : "unknown");
		goto fail;
	}
	sqlite3_finalize(st);
	st = NULL;

	snprintf(sql, sizeof(sql), "PRAGMA synchronous=%s",
	    synchronous >= 2 ? "FULL" : "NORMAL");
	if (db_exec(db, sql, &err) != 0 ||
	    db_exec(db, "PRAGMA foreign_keys=ON", &err) != 0 ||
	    db_exec(db, DB_MEMORY_PRAGMAS, &err) != 0 ||
	    db_exec(db, db_schema_version_sql, &err) != 0) {
		xasprintf(cause, "%s: %s", path, err);
		free(err);
		goto fail;
	}
	if (db_begin(db) != 0)
		goto sqlfail;
	return (db);

sqlfail:
	xasprintf(cause, "%s: %s", path, sqlite3_errmsg(db));
fail:
	sqlite3_finalize(st);
	sqlite3_close(db);
	return (NULL);
}

void
db_close(sqlite3 *db)
{
	sqlite3_stmt	*st;
	int		 rc;

	if (db == NULL)
		return;
	if (!sqlite3_get_autocommit(db) &&
	    db_exec(db, "COMMIT", NULL) != 0) {
		log_warnx("%s: commit: %s", __func__, sqlite3_errmsg(db));
		db_exec(db, "ROLLBACK", NULL);
	}
	/* Leave a small database file and an empty WAL behind. */
	if (db_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL) != 0)
		log_warnx("%s: checkpoint: %s", __func__, sqlite3_errmsg(db));
	if ((rc = sqlite3_close(db)) != SQLITE_OK) {
		/* A module kept a statement: name it, then force it. */
		for (st = sqlite3_next_stmt(db, NULL); st != NULL;
		    st = sqlite3_next_stmt(db, st))
			log_warnx("%s: statement not finalized: %s", __func__,
			    sqlite3_sql(st));
		sqlite3_close_v2(db);
	}
}

int
db_begin(sqlite3 *db)
{
	if (!sqlite3_get_autocommit(db))
		return (0);
	if (db_exec(db, "BEGIN", NULL) != 0) {
		log_warnx("%s: %s", __func__, sqlite3_errmsg(db));
		return (-1);
	}
	return (0);
}

int
db_commit_now(sqlite3 *db)
{
	int	 rc = 0;

	if (!sqlite3_get_autocommit(db) &&
	    db_exec(db, "COMMIT", NULL) != 0) {
		/*
		 * The transaction stays open (SQLITE_BUSY) or was rolled
		 * back by SQLite (I/O error, disk full): either way the next
		 * tick tries again with what is left.
		 */
		log_warnx("%s: commit: %s", __func__, sqlite3_errmsg(db));
		rc = -1;
	}
	if (db_begin(db) != 0)
		rc = -1;
	return (rc);
}

static int
db_get_version(sqlite3 *db, const char *component, int *version,
    char **cause)
{
	sqlite3_stmt	*st;
	int		 rc;

	*version = 0;
	if (sqlite3_prepare_v2(db,
	    "SELECT version FROM schema_version WHERE component = ?", -1,
	    &st, NULL) != SQLITE_OK) {
		xasprintf(cause, "schema_version: %s", sqlite3_errmsg(db));
		return (-1);
	}
	sqlite3_bind_text(st, 1, component, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*version = sqlite3_column_int(st, 0);
	else if (rc != SQLITE_DONE) {
		xasprintf(cause, "schema_version: %s", sqlite3_errmsg(db));
		sqlite3_finalize(st);
		return (-1);
	}
	sqlite3_finalize(st);
	return (0);
}

int
db_migrate(sqlite3 *db, const char *component, const char *const *steps,
    int nsteps, char **cause)
{
	sqlite3_stmt	*st = NULL;
	char		*err = NULL;
	int		 version, i;

	if (db_exec(db, db_schema_version_sql, &err) != 0) {
		xasprintf(cause, "schema_version: %s", err);
		free(err);
		return (-1);
	}
	if (db_get_version(db, component, &version, cause) != 0)
		return (-1);
	if (version > nsteps) {
		xasprintf(cause, "the database's \"%s\" schema is version %d "
		    "but this upbridged knows only up to %d: it was written "
		    "by a newer upbridged; refusing to use it", component,
		    version, nsteps);
		return (-1);
	}
	if (version < 0) {
		xasprintf(cause, "the database's \"%s\" schema version %d "
		    "is invalid", component, version);
		return (-1);
	}
	if (version == nsteps)
		return (0);

	/* All steps or none: a savepoint works inside the open batch. */
	if (db_exec(db, "SAVEPOINT db_migrate", &err) != 0)
		goto fail;
	for (i = version; i < nsteps; i++) {
		if (db_exec(db, steps[i], &err) != 0) {
			xasprintf(cause, "\"%s\" migration %d: %s", component,
			    i + 1, err);
			free(err);
			err = NULL;
			goto rollback;
		}
	}
	if (sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO schema_version "
	    "(component, version) VALUES (?, ?)", -1, &st, NULL) != SQLITE_OK)
		goto sqlrollback;
	sqlite3_bind_text(st, 1, component, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 2, nsteps);
	if (sqlite3_step(st) != SQLITE_DONE)
		goto sqlrollback;
	sqlite3_finalize(st);
	st = NULL;
	if (db_exec(db, "RELEASE db_migrate", &err) != 0)
		goto fail;
	log_info("database: \"%s\" schema migrated from version %d to %d",
	    component, version, nsteps);
	return (0);

sqlrollback:
	xasprintf(cause, "schema_version: %s", sqlite3_errmsg(db));
rollback:
	sqlite3_finalize(st);
	db_exec(db, "ROLLBACK TO db_migrate", NULL);
	db_exec(db, "RELEASE db_migrate", NULL);
	return (-1);
fail:
	xasprintf(cause, "\"%s\" migration: %s", component, err);
	free(err);
	return (-1);
}
