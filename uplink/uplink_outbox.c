/*
 * uplink_outbox.c: the report outbox (tables in uplink_store.c).
 *
 * A report line is in SQLite before uplink_report() returns and leaves
 * only when the server acknowledged the PUT of the batch holding it.  A
 * batch's number and lines are written before its first PUT, so a retry
 * -- after a timeout, an outage or a restart -- sends the same name with
 * the same bytes, and the server's store (PUT is idempotent by name)
 * keeps each line exactly once (docs/manifest.md "Reports").  Batch and
 * line numbers come from AUTOINCREMENT keys: never reused, even after
 * the rows are gone.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "uplink_internal.h"

enum {
	S_ADD,
	S_SETLINE,
	S_OLDEST,
	S_NEWBATCH,
	S_ASSIGN,
	S_LINES,
	S_DELLINES,
	S_DELBATCH,
	S_SENT,
	S_PENDING,
	S_COUNT
};

static const char *const outbox_sql[S_COUNT] = {
	[S_ADD] = "INSERT INTO uplink_outbox(line) VALUES(?)",
	[S_SETLINE] = "UPDATE uplink_outbox SET line = ? WHERE seq = ?",
	[S_OLDEST] = "SELECT MIN(batch) FROM uplink_batches WHERE acked = 0",
	[S_NEWBATCH] = "INSERT INTO uplink_batches(created) "
	    "VALUES(strftime('%s','now'))",
	[S_ASSIGN] = "UPDATE uplink_outbox SET batch = ?1 WHERE seq IN "
	    "(SELECT seq FROM uplink_outbox WHERE batch IS NULL "
	    "ORDER BY seq LIMIT ?2)",
	[S_LINES] = "SELECT line FROM uplink_outbox WHERE batch = ? "
	    "ORDER BY seq",
	[S_DELLINES] = "DELETE FROM uplink_outbox WHERE batch = ?",
	[S_DELBATCH] = "DELETE FROM uplink_batches WHERE batch = ?",
	[S_SENT] = "UPDATE uplink_batches SET sent_at = "
	    "strftime('%s','now') WHERE batch = ?",
	[S_PENDING] = "SELECT COUNT(*) FROM uplink_outbox",
};

struct uplink_outbox {
	sqlite3		*db;
	char		*gateway_id;
	sqlite3_stmt	*st[S_COUNT];
};

static sqlite3_stmt *
stmt(struct uplink_outbox *ob, int i)
{
	sqlite3_reset(ob->st[i]);
	sqlite3_clear_bindings(ob->st[i]);
	return (ob->st[i]);
}

struct uplink_outbox *
uplink__outbox_open(sqlite3 *db, const char *gateway_id, char **cause)
{
	struct uplink_outbox *ob;
	int		 i;

	if ((ob = calloc(1, sizeof(*ob))) == NULL ||
	    (ob->gateway_id = strdup(gateway_id)) == NULL) {
		free(ob);
		*cause = strdup("out of memory");
		return (NULL);
	}
	ob->db = db;
	for (i = 0; i < S_COUNT; i++) {
		if (sqlite3_prepare_v3(db, outbox_sql[i], -1,
		    SQLITE_PREPARE_PERSISTENT, &ob->st[i], NULL) != SQLITE_OK) {
			if (asprintf(cause, "outbox: %s", sqlite3_errmsg(db))
			    == -1)
				*cause = NULL;
			uplink__outbox_free(ob);
			return (NULL);
		}
	}
	return (ob);
}

void
uplink__outbox_free(struct uplink_outbox *ob)
{
	int		 i;

	if (ob == NULL)
		return;
	for (i = 0; i < S_COUNT; i++)
		sqlite3_finalize(ob->st[i]);
	free(ob->gateway_id);
	free(ob);
}

int64_t
uplink__outbox_add(struct uplink_outbox *ob, const char *line, char **cause)
{
	json_t		*o;
	json_error_t	 jerr;
	sqlite3_stmt	*st;
	char		*out = NULL;
	int64_t		 seq;

	o = json_loads(line, JSON_REJECT_DUPLICATES, &jerr);
	if (o == NULL || !json_is_object(o)) {
		if (asprintf(cause, "report: not a JSON object%s%s",
		    o == NULL ? ": " : "", o == NULL ? jerr.text : "") == -1)
			*cause = NULL;
		json_decref(o);
		return (-1);
	}
	st = stmt(ob, S_ADD);
	sqlite3_bind_text(st, 1, "", -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE)
		goto dberr;
	seq = sqlite3_last_insert_rowid(ob->db);
	/* The record's own sequence number and sender, unless given. */
	if (json_object_get(o, "gateway") == NULL)
		json_object_set_new(o, "gateway",
		    json_string(ob->gateway_id));
	if (json_object_get(o, "seq") == NULL)
		json_object_set_new(o, "seq", json_integer(seq));
	/* Compact JSON has no newline: one record is one line. */
	if ((out = json_dumps(o, JSON_COMPACT)) == NULL) {
		*cause = strdup("report: out of memory");
		json_decref(o);
		goto undo;
	}
	json_decref(o);
	st = stmt(ob, S_SETLINE);
	sqlite3_bind_text(st, 1, out, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 2, seq);
	free(out);
	if (sqlite3_step(st) != SQLITE_DONE) {
		if (asprintf(cause, "report: %s", sqlite3_errmsg(ob->db)) ==
		    -1)
			*cause = NULL;
		goto undo;
	}
	return (seq);
dberr:
	if (asprintf(cause, "report: %s", sqlite3_errmsg(ob->db)) == -1)
		*cause = NULL;
	json_decref(o);
	return (-1);
undo:
	/* No half-written record may be sent: drop the placeholder row. */
	{
		char	 sql[96];

		snprintf(sql, sizeof(sql), "DELETE FROM uplink_outbox "
		    "WHERE seq = %lld", (long long)seq);
		sqlite3_exec(ob->db, sql, NULL, NULL, NULL);
	}
	return (-1);
}

int64_t
uplink__outbox_batch(struct uplink_outbox *ob, unsigned int max, int *fresh)
{
	sqlite3_stmt	*st;
	int64_t		 batch = 0;

	*fresh = 0;
	st = stmt(ob, S_OLDEST);
	if (sqlite3_step(st) != SQLITE_ROW)
		return (-1);
	if (sqlite3_column_type(st, 0) != SQLITE_NULL)
		batch = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	if (batch > 0)
		return (batch);

	if (uplink__outbox_pending(ob) <= 0)
		return (0);
	st = stmt(ob, S_NEWBATCH);
	if (sqlite3_step(st) != SQLITE_DONE)
		return (-1);
	batch = sqlite3_last_insert_rowid(ob->db);
	st = stmt(ob, S_ASSIGN);
	sqlite3_bind_int64(st, 1, batch);
	sqlite3_bind_int64(st, 2, max > 0 ? max : 1);
	if (sqlite3_step(st) != SQLITE_DONE)
		return (-1);
	if (sqlite3_changes(ob->db) == 0) {
		/* Every pending line is in a batch already. */
		st = stmt(ob, S_DELBATCH);
		sqlite3_bind_int64(st, 1, batch);
		sqlite3_step(st);
		return (0);
	}
	*fresh = 1;
	return (batch);
}

char *
uplink__outbox_body(struct uplink_outbox *ob, int64_t batch, size_t *lenp,
    unsigned int *nlines)
{
	sqlite3_stmt	*st;
	char		*buf = NULL, *nb;
	size_t		 len = 0, cap = 0, n;
	const char	*line;
	int		 rc;

	*nlines = 0;
	st = stmt(ob, S_LINES);
	sqlite3_bind_int64(st, 1, batch);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		line = (const char *)sqlite3_column_text(st, 0);
		n = (size_t)sqlite3_column_bytes(st, 0);
		if (line == NULL)
			continue;
		if (len + n + 2 > cap) {
			cap = (len + n + 2) * 2;
			if ((nb = realloc(buf, cap)) == NULL) {
				free(buf);
				sqlite3_reset(st);
				return (NULL);
			}
			buf = nb;
		}
		memcpy(buf + len, line, n);
		len += n;
		buf[len++] = '\n';
		(*nlines)++;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		free(buf);
		return (NULL);
	}
	if (buf == NULL && (buf = malloc(1)) == NULL)
		return (NULL);
	buf[len] = '\0';
	*lenp = len;
	st = stmt(ob, S_SENT);
	sqlite3_bind_int64(st, 1, batch);
	sqlite3_step(st);
	return (buf);
}

int
uplink__outbox_ack(struct uplink_outbox *ob, int64_t batch)
{
	sqlite3_stmt	*st;

	st = stmt(ob, S_DELLINES);
	sqlite3_bind_int64(st, 1, batch);
	if (sqlite3_step(st) != SQLITE_DONE)
		return (-1);
	st = stmt(ob, S_DELBATCH);
	sqlite3_bind_int64(st, 1, batch);
	if (sqlite3_step(st) != SQLITE_DONE)
		return (-1);
	return (0);
}

int64_t
uplink__outbox_pending(struct uplink_outbox *ob)
{
	sqlite3_stmt	*st;
	int64_t		 n;

	st = stmt(ob, S_PENDING);
	if (sqlite3_step(st) != SQLITE_ROW)
		return (-1);
	n = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	return (n);
}
