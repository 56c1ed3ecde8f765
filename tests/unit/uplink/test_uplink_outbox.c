/*
 * test_uplink_outbox.c: the report outbox and the uplink's tables on a
 * real SQLite file: records are kept whole, a batch's number and lines
 * survive reopening the database (so a retry sends the same bytes under
 * the same name), acknowledged lines leave, numbers are never reused,
 * and a newer schema is refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "uplink_internal.h"

struct fx {
	char		 dir[64];
	char		 path[128];
	sqlite3		*db;
	struct uplink_outbox *ob;
};

static void
fx_open(struct fx *f)
{
	char		*cause = NULL;

	assert_int_equal(sqlite3_open(f->path, &f->db), SQLITE_OK);
	if (uplink__store_open(f->db, &cause) != 0)
		fail_msg("store_open: %s", cause);
	f->ob = uplink__outbox_open(f->db, "gw-test-01", &cause);
	if (f->ob == NULL)
		fail_msg("outbox_open: %s", cause);
}

static void
fx_close(struct fx *f)
{
	uplink__outbox_free(f->ob);
	f->ob = NULL;
	assert_int_equal(sqlite3_close(f->db), SQLITE_OK);
	f->db = NULL;
}

static int
setup(void **state)
{
	struct fx	*f;

	f = calloc(1, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "/tmp/ub-outbox-XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return (-1);
	snprintf(f->path, sizeof(f->path), "%s/state.db", f->dir);
	fx_open(f);
	*state = f;
	return (0);
}

static int
teardown(void **state)
{
	struct fx	*f = *state;

	if (f->db != NULL)
		fx_close(f);
	unlink(f->path);
	rmdir(f->dir);
	free(f);
	return (0);
}

static void
add(struct fx *f, int n, int64_t want_seq)
{
	char		 line[128], *cause = NULL;

	snprintf(line, sizeof(line), "{\"type\":\"result\",\"node\":\"%d\"}",
	    n);
	assert_int_equal(uplink__outbox_add(f->ob, line, &cause), want_seq);
}

static void
test_add(void **state)
{
	struct fx	*f = *state;
	char		*cause = NULL, *body;
	size_t		 len;
	unsigned int	 n;
	int64_t		 b;
	int		 fresh;

	add(f, 1, 1);
	assert_int_equal(uplink__outbox_pending(f->ob), 1);
	/* Not a JSON object: refused, nothing stored. */
	assert_int_equal(uplink__outbox_add(f->ob, "[1,2]", &cause), -1);
	assert_non_null(strstr(cause, "not a JSON object"));
	free(cause);
	cause = NULL;
	assert_int_equal(uplink__outbox_add(f->ob, "{\"a\":", &cause), -1);
	free(cause);
	cause = NULL;
	assert_int_equal(uplink__outbox_pending(f->ob), 1);
	/* Given seq and gateway are kept; one record is one line. */
	assert_int_equal(uplink__outbox_add(f->ob,
	    "{\"seq\": 99,\n \"gateway\": \"other\"}", &cause), 2);

	b = uplink__outbox_batch(f->ob, 10, &fresh);
	assert_int_equal(b, 1);
	assert_true(fresh);
	body = uplink__outbox_body(f->ob, b, &len, &n);
	assert_non_null(body);
	assert_int_equal(n, 2);
	assert_string_equal(body,
	    "{\"type\":\"result\",\"node\":\"1\",\"gateway\":\"gw-test-01\","
	    "\"seq\":1}\n"
	    "{\"seq\":99,\"gateway\":\"other\"}\n");
	assert_int_equal(len, strlen(body));
	free(body);
}

static void
test_batches_survive(void **state)
{
	struct fx	*f = *state;
	char		*b1, *b1again, *b2;
	size_t		 len, len2;
	unsigned int	 n;
	int64_t		 b;
	int		 fresh, i;
	json_t		*o;

	for (i = 1; i <= 5; i++)
		add(f, i, i);
	b = uplink__outbox_batch(f->ob, 3, &fresh);
	assert_int_equal(b, 1);
	assert_true(fresh);
	b1 = uplink__outbox_body(f->ob, 1, &len, &n);
	assert_int_equal(n, 3);
	/* Lines 1-3 in order, each a JSON object with its seq. */
	o = json_loadb(b1, strchr(b1, '\n') - b1, 0, NULL);
	assert_int_equal(json_integer_value(json_object_get(o, "seq")), 1);
	json_decref(o);

	/* Crash before the server answered: reopen the database. */
	fx_close(f);
	fx_open(f);
	assert_int_equal(uplink__outbox_pending(f->ob), 5);
	b = uplink__outbox_batch(f->ob, 3, &fresh);
	assert_int_equal(b, 1);		/* the same batch again */
	assert_false(fresh);
	b1again = uplink__outbox_body(f->ob, 1, &len2, &n);
	assert_int_equal(n, 3);
	assert_int_equal(len, len2);
	assert_memory_equal(b1, b1again, len);	/* the same bytes */
	/* More lines meanwhile do not join a batch already formed. */
	add(f, 6, 6);
	free(b1again);
	b1again = uplink__outbox_body(f->ob, 1, &len2, &n);
	assert_int_equal(n, 3);
	assert_memory_equal(b1, b1again, len);
	free(b1again);

	/* Acknowledged: its lines are gone, the next batch is new. */
	assert_int_equal(uplink__outbox_ack(f->ob, 1), 0);
	assert_int_equal(uplink__outbox_pending(f->ob), 3);
	b = uplink__outbox_batch(f->ob, 3, &fresh);
	assert_int_equal(b, 2);
	assert_true(fresh);
	b2 = uplink__outbox_body(f->ob, 2, &len, &n);
	assert_int_equal(n, 3);
	assert_non_null(strstr(b2, "\"seq\":4}"));
	assert_non_null(strstr(b2, "\"seq\":6}"));
	assert_null(strstr(b2, "\"seq\":1}"));
	free(b2);
	assert_int_equal(uplink__outbox_ack(f->ob, 2), 0);
	assert_int_equal(uplink__outbox_pending(f->ob), 0);
	assert_int_equal(uplink__outbox_batch(f->ob, 3, &fresh), 0);

	/* Numbers are never reused, even with every row gone. */
	fx_close(f);
	fx_open(f);
	add(f, 7, 7);
	assert_int_equal(uplink__outbox_batch(f->ob, 3, &fresh), 3);
	free(b1);
}

static void
test_manifest_store(void **state)
{
	struct fx	*f = *state;
	struct uplink_stored st;
	uint8_t		 sha[CACHE_SHA_LEN];

	assert_int_equal(uplink__store_get(f->db, &st), 0);
	memset(sha, 0xab, sizeof(sha));
	assert_int_equal(uplink__store_put(f->db, 41, sha, "{\"m\":1}", 7,
	    "sig", 3), 0);
	assert_int_equal(uplink__store_put(f->db, 42, sha, "{\"m\":2}", 7,
	    "SIG", 3), 0);
	fx_close(f);
	fx_open(f);
	assert_int_equal(uplink__store_get(f->db, &st), 1);
	assert_int_equal(st.serial, 42);
	assert_memory_equal(st.sha256, sha, sizeof(sha));
	assert_int_equal(st.body_len, 7);
	assert_string_equal((char *)st.body, "{\"m\":2}");
	assert_int_equal(st.sig_len, 3);
	assert_memory_equal(st.sig, "SIG", 3);
	uplink__stored_clear(&st);
}

static void
test_schema(void **state)
{
	struct fx	*f = *state;
	sqlite3_stmt	*st;
	char		*cause = NULL;

	/* Opening again is a no-op; the version row says 1. */
	assert_int_equal(uplink__store_open(f->db, &cause), 0);
	assert_int_equal(sqlite3_prepare_v2(f->db, "SELECT version FROM "
	    "schema_version WHERE component = 'uplink'", -1, &st, NULL),
	    SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(st, 0), UPLINK_SCHEMA_VERSION);
	sqlite3_finalize(st);
	/* A database from a newer program is refused. */
	assert_int_equal(sqlite3_exec(f->db, "UPDATE schema_version SET "
	    "version = 99 WHERE component = 'uplink'", NULL, NULL, NULL),
	    SQLITE_OK);
	assert_int_equal(uplink__store_open(f->db, &cause), -1);
	assert_non_null(strstr(cause, "newer"));
	free(cause);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_add, setup, teardown),
		cmocka_unit_test_setup_teardown(test_batches_survive, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_manifest_store, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_schema, setup, teardown),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
