/*
 * test_bridge_db.c: the daemon's database (bridge/db.c): pragmas, the
 * long-lived write transaction, migrations, a newer schema refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <sys/stat.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "upbridged.h"

static char	 tmpdir[64];
static char	 db_path[128];

static int
setup(void **state)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/ub-db-XXXXXX");
	if (mkdtemp(tmpdir) == NULL)
		return (-1);
	snprintf(db_path, sizeof(db_path), "%s/upbridge.db", tmpdir);
	return (0);
}

static int
teardown(void **state)
{
	char	 p[160];

	unlink(db_path);
	snprintf(p, sizeof(p), "%s-wal", db_path);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", db_path);
	unlink(p);
	rmdir(tmpdir);
	return (0);
}

static sqlite3 *
open_ok(int synchronous)
{
	sqlite3	*db;
	char	*cause = NULL;

	db = db_open(db_path, synchronous, &cause);
	if (db == NULL)
		fail_msg("db_open: %s", cause);
	return (db);
}

/* First column of the first row as an integer (-1 if none). */
static long long
query_int(sqlite3 *db, const char *sql)
{
	sqlite3_stmt	*st;
	long long	 v = -1;

	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL),
	    SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return (v);
}

/* A second, independent connection: sees only committed data. */
static long long
peek_int(const char *sql)
{
	sqlite3		*db;
	long long	 v;

	assert_int_equal(sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY,
	    NULL), SQLITE_OK);
	v = query_int(db, sql);
	sqlite3_close(db);
	return (v);
}

static void
test_open_pragmas(void **state)
{
	sqlite3		*db;
	sqlite3_stmt	*st;

	db = open_ok(1);
	assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1,
	    &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
	sqlite3_finalize(st);
	assert_int_equal(query_int(db, "PRAGMA foreign_keys"), 1);
	assert_int_equal(query_int(db, "PRAGMA synchronous"), 1);
	/* The batch transaction is open. */
	assert_int_equal(sqlite3_get_autocommit(db), 0);
	assert_int_equal(query_int(db, "SELECT count(*) FROM schema_version"),
	    0);
	db_close(db);

	db = open_ok(2);
	assert_int_equal(query_int(db, "PRAGMA synchronous"), 2);
	db_close(db);
}

static void
test_commit_begin(void **state)
{
	sqlite3		*db;
	struct stat	 sb;
	char		 wal[160];

	db = open_ok(1);
	assert_int_equal(sqlite3_exec(db, "CREATE TABLE t (a INTEGER)", NULL,
	    NULL, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "INSERT INTO t VALUES (1)", NULL,
	    NULL, NULL), SQLITE_OK);
	/* Not visible to others before the commit. */
	assert_int_equal(peek_int("SELECT count(*) FROM sqlite_master "
	    "WHERE name = 't'"), 0);
	assert_int_equal(db_commit_now(db), 0);
	assert_int_equal(sqlite3_get_autocommit(db), 0);
	assert_int_equal(peek_int("SELECT count(*) FROM t"), 1);

	/* db_begin inside the batch is a no-op. */
	assert_int_equal(db_begin(db), 0);
	assert_int_equal(sqlite3_exec(db, "INSERT INTO t VALUES (2)", NULL,
	    NULL, NULL), SQLITE_OK);
	assert_int_equal(peek_int("SELECT count(*) FROM t"), 1);

	/* Close commits and truncates the WAL. */
	db_close(db);
	assert_int_equal(peek_int("SELECT count(*) FROM t"), 2);
	snprintf(wal, sizeof(wal), "%s-wal", db_path);
	if (stat(wal, &sb) == 0)
		assert_int_equal(sb.st_size, 0);
}

static const char *const steps_v2[] = {
	"CREATE TABLE nodes (id INTEGER PRIMARY KEY, hw TEXT)",
	"ALTER TABLE nodes ADD COLUMN battery INTEGER;"
	"CREATE INDEX nodes_hw ON nodes (hw)",
};

static void
test_migrate(void **state)
{
	sqlite3	*db;
	char	*cause = NULL;

	db = open_ok(1);
	assert_int_equal(db_migrate(db, "reg", steps_v2, 1, &cause), 0);
	assert_int_equal(query_int(db, "SELECT version FROM schema_version "
	    "WHERE component = 'reg'"), 1);
	assert_int_equal(db_migrate(db, "reg", steps_v2, 2, &cause), 0);
	assert_int_equal(query_int(db, "SELECT version FROM schema_version "
	    "WHERE component = 'reg'"), 2);
	assert_int_equal(sqlite3_exec(db, "INSERT INTO nodes (id, hw, "
	    "battery) VALUES (1, 'x', 50)", NULL, NULL, NULL), SQLITE_OK);
	/* Again: nothing to do, data intact. */
	assert_int_equal(db_migrate(db, "reg", steps_v2, 2, &cause), 0);
	assert_int_equal(query_int(db, "SELECT battery FROM nodes"), 50);
	/* Components are independent. */
	assert_int_equal(db_migrate(db, "other", steps_v2, 0, &cause), 0);
	assert_int_equal(query_int(db, "SELECT count(*) FROM schema_version "
	    "WHERE component = 'other'"), 0);
	db_close(db);

	/* It survives a reopen. */
	db = open_ok(1);
	assert_int_equal(query_int(db, "SELECT version FROM schema_version "
	    "WHERE component = 'reg'"), 2);
	db_close(db);
}

static void
test_migrate_failure_changes_nothing(void **state)
{
	static const char *const bad[] = {
		"CREATE TABLE a (x)",
		"CREATE TABLE b (y); THIS IS NOT SQL",
	};
	sqlite3	*db;
	char	*cause = NULL;

	db = open_ok(1);
	assert_int_equal(db_migrate(db, "m", bad, 1, &cause), 0);
	assert_int_equal(db_migrate(db, "m", bad, 2, &cause), -1);
	assert_non_null(cause);
	assert_non_null(strstr(cause, "\"m\" migration 2: "));
	free(cause);
	cause = NULL;
	assert_int_equal(query_int(db, "SELECT version FROM schema_version "
	    "WHERE component = 'm'"), 1);
	assert_int_equal(query_int(db, "SELECT count(*) FROM sqlite_master "
	    "WHERE name = 'b'"), 0);
	assert_int_equal(query_int(db, "SELECT count(*) FROM sqlite_master "
	    "WHERE name = 'a'"), 1);
	/* The batch transaction is still usable. */
	assert_int_equal(sqlite3_get_autocommit(db), 0);
	assert_int_equal(db_commit_now(db), 0);
	db_close(db);
}

static void
test_newer_schema_refused(void **state)
{
	sqlite3	*db;
	char	*cause = NULL;

	db = open_ok(1);
	assert_int_equal(sqlite3_exec(db, "INSERT INTO schema_version VALUES "
	    "('reg', 5)", NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(db_migrate(db, "reg", steps_v2, 2, &cause), -1);
	assert_string_equal(cause, "the database's \"reg\" schema is version "
	    "5 but this upbridged knows only up to 2: it was written by a "
	    "newer upbridged; refusing to use it");
	free(cause);
	/* Nothing ran. */
	assert_int_equal(query_int(db, "SELECT count(*) FROM sqlite_master "
	    "WHERE name = 'nodes'"), 0);
	assert_int_equal(query_int(db, "SELECT version FROM schema_version "
	    "WHERE component = 'reg'"), 5);
	db_close(db);
}

static void
test_not_a_database(void **state)
{
	sqlite3	*db;
	char	*cause = NULL;
	FILE	*f;

	f = fopen(db_path, "w");
	assert_non_null(f);
	fputs("this is not an SQLite database, just some text that is long "
	    "enough to have a header of one hundred bytes and more, more, "
	    "more and more.\n", f);
	fclose(f);
	db = db_open(db_path, 1, &cause);
	assert_null(db);
	assert_non_null(cause);
	assert_non_null(strstr(cause, db_path));
	assert_non_null(strstr(cause, "not a database"));
	free(cause);

	db = db_open("/nonexistent/dir/upbridge.db", 1, &cause);
	assert_null(db);
	assert_non_null(strstr(cause, "/nonexistent/dir/upbridge.db: "));
	free(cause);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_open_pragmas, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_commit_begin, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_migrate, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_migrate_failure_changes_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_newer_schema_refused,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_not_a_database, setup,
		    teardown),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
