/*
 * test_bridge_registry.c: the node registry: announces, lookups at
 * fleet scale, persistence across a reopen, versions and JSON.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <event2/event.h>

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "upbridged.h"

struct rfx {
	char	 dir[64];
	char	 path[128];
	sqlite3	*db;
};

static int
setup(void **state)
{
	struct rfx	*x;
	char		*cause = NULL;

	x = calloc(1, sizeof(*x));
	strcpy(x->dir, "/tmp/ub-registry-XXXXXX");
	if (mkdtemp(x->dir) == NULL)
		return (-1);
	snprintf(x->path, sizeof(x->path), "%s/state.db", x->dir);
	if ((x->db = db_open(x->path, 1, &cause)) == NULL) {
		fprintf(stderr, "db_open: %s\n", cause);
		return (-1);
	}
	*state = x;
	return (0);
}

static int
teardown(void **state)
{
	struct rfx	*x = *state;
	char		 cmd[128];

	db_close(x->db);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", x->dir);
	if (system(cmd) != 0)
		return (-1);
	free(x);
	return (0);
}

static void
announce(struct up_announce *a, uint64_t id, const char *ver)
{
	memset(a, 0, sizeof(*a));
	a->node_id = id;
	snprintf(a->hw, sizeof(a->hw), "hw-%u", (unsigned)(id % 3));
	a->max_frame = 1472;
	a->free_kib = 1024;
	a->battery = UP_BATTERY_UNKNOWN;
	a->rssi_dbm = -70;
	a->snr_db = UP_SNR_UNKNOWN;
	a->ncomp = 2;
	strcpy(a->comp[0].name, "app");
	strcpy(a->comp[0].version, ver);
	strcpy(a->comp[1].name, "boot");
	strcpy(a->comp[1].version, "2.0");
}

static void
addr(struct tp_addr *t, uint64_t id)
{
	memset(t, 0, sizeof(*t));
	t->len = 8;
	memcpy(t->b, &id, 8);
}

static int
count_rows(sqlite3 *db, const char *sql)
{
	sqlite3_stmt	*st;
	int		 n = -1;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		return (-1);
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return (n);
}

/*
 * glibc's mallinfo2 counts the heap; under ASan or valgrind, which
 * replace malloc, it reads 0 and the heap checks are skipped.
 */
static int
heap_measured(size_t at_start)
{
	if (at_start != 0)
		return (1);
	print_message("heap not measurable here (malloc replaced): "
	    "heap checks skipped\n");
	return (0);
}

static void
count_cb(void *arg, const struct registry_node *n)
{
	(*(size_t *)arg)++;
}

static void
test_fleet(void **state)
{
	struct rfx			*x = *state;
	struct registry			*r;
	struct up_announce		 a;
	struct tp_addr			 t;
	const struct registry_node	*n;
	char				*cause = NULL;
	clock_t				 c0;
	size_t				 seen = 0, heap0, heap;
	uint64_t			 id;

	r = registry_open(x->db, &cause);
	assert_non_null(r);
	c0 = clock();
	heap0 = mallinfo2().uordblks;
	for (id = 1; id <= 10000; id++) {
		announce(&a, id * 7919, "1.0.0");
		addr(&t, id);
		assert_int_equal(registry_announce(r, &a, "lan0", &t, "x",
		    1000), 1);
	}
	/*
	 * Issue 3: the compact record.  The heap grew by the records, the
	 * address pool, the hash table, and SQLite's pages (bounded by
	 * cache_size); it was about 1,100 bytes a node with the full
	 * struct registry_node per node, 180 with a malloc'd record, and
	 * is about 75 with slabs, shared shapes and the pool.
	 */
	heap = mallinfo2().uordblks - heap0;
	print_message("10,000 nodes: %zu bytes of heap (%zu a node)\n", heap,
	    heap / 10000);
	if (heap_measured(heap0))
		assert_true(heap / 10000 < 100);
	/* Known nodes again: not new, and cheap. */
	for (id = 1; id <= 10000; id++) {
		announce(&a, id * 7919, "1.0.0");
		addr(&t, id);
		assert_int_equal(registry_announce(r, &a, "lan0", &t, "x",
		    1010), 0);
	}
	for (id = 1; id <= 10000; id++) {
		n = registry_get(r, id * 7919);
		assert_non_null(n);
		assert_int_equal(n->id, id * 7919);
	}
	print_message("20,000 announces + 10,000 lookups: %.3f s cpu\n",
	    (double)(clock() - c0) / CLOCKS_PER_SEC);
	assert_null(registry_get(r, 12345678));
	assert_int_equal(registry_count(r), 10000);
	registry_foreach(r, count_cb, &seen);
	assert_int_equal(seen, 10000);

	/* Node id 0 is not a node. */
	announce(&a, 0, "1.0.0");
	assert_int_equal(registry_announce(r, &a, "lan0", &t, "x", 1), -1);
	assert_int_equal(registry_count(r), 10000);

	assert_int_equal(registry_set_version(r, 7919, "app", "1.1.0"), 0);
	assert_int_equal(registry_set_version(r, 7919, "extra", "0.1"), 0);
	assert_int_equal(registry_set_version(r, 1, "app", "1.1.0"), -1);
	assert_int_equal(registry_set_state(r, 7919, UP_NS_UPDATED), 0);
	registry_free(r);

	/* Everything came back from SQLite. */
	assert_int_equal(db_commit_now(x->db), 0);
	assert_int_equal(count_rows(x->db, "SELECT count(*) FROM nodes"),
	    10000);
	r = registry_open(x->db, &cause);
	assert_non_null(r);
	assert_int_equal(registry_count(r), 10000);
	n = registry_get(r, 7919);
	assert_non_null(n);
	assert_int_equal(n->ncomp, 3);
	assert_string_equal(n->comp[0].version, "1.1.0");
	assert_string_equal(n->comp[2].name, "extra");
	assert_int_equal(n->state, UP_NS_UPDATED);
	assert_int_equal(n->rssi_dbm, -70);
	assert_int_equal(n->first_seen, 1000);
	assert_int_equal(n->addr.len, 8);
	n = registry_get(r, 10000 * 7919);
	assert_non_null(n);
	assert_string_equal(n->hw, "hw-2");	/* 79190000 % 3 */
	registry_free(r);
}

static void
test_changes_and_json(void **state)
{
	struct rfx			*x = *state;
	struct registry			*r;
	struct up_announce		 a;
	struct tp_addr			 t;
	const struct registry_node	*n;
	json_t				*j;
	char				*cause = NULL;

	r = registry_open(x->db, &cause);
	assert_non_null(r);
	announce(&a, 0x42, "1.0.0");
	addr(&t, 1);
	assert_int_equal(registry_announce(r, &a, "lan0", &t, "10.0.0.1:4242",
	    100), 1);
	/* It moved and updated: the registry follows. */
	announce(&a, 0x42, "1.2.0");
	a.ncomp = 1;
	addr(&t, 2);
	assert_int_equal(registry_announce(r, &a, "lan1", &t, "10.0.1.1:4242",
	    200), 0);
	n = registry_get(r, 0x42);
	assert_string_equal(n->transport, "lan1");
	assert_string_equal(n->addr_text, "10.0.1.1:4242");
	assert_int_equal(n->ncomp, 1);
	assert_string_equal(n->comp[0].version, "1.2.0");
	assert_int_equal(n->first_seen, 100);
	assert_int_equal(n->last_seen, 200);
	assert_int_equal(count_rows(x->db, "SELECT count(*) FROM "
	    "node_components WHERE node = 66"), 1);

	j = registry_node_json(n);
	assert_string_equal(json_string_value(json_object_get(j, "id")),
	    "0x0000000000000042");
	assert_string_equal(json_string_value(json_object_get(j,
	    "transport")), "lan1");
	assert_true(json_is_null(json_object_get(j, "battery")));
	assert_int_equal(json_integer_value(json_object_get(j, "rssi_dbm")),
	    -70);
	assert_string_equal(json_string_value(json_object_get(json_array_get(
	    json_object_get(j, "components"), 0), "version")), "1.2.0");
	assert_string_equal(json_string_value(json_object_get(j, "state")),
	    up_state_str(UP_NS_IDLE));
	json_decref(j);
	registry_free(r);
}

/* Tags and topology (issue 4): set before a node announces, kept. */
static void
test_tags_topology(void **state)
{
	struct rfx			*x = *state;
	struct registry			*r;
	struct up_announce		 a;
	struct tp_addr			 t;
	const struct registry_node	*n;
	json_t				*j;
	char				*cause = NULL, tag[8];
	int				 i;

	r = registry_open(x->db, &cause);
	assert_non_null(r);
	/* Pre-provisioned: the node is not known yet. */
	assert_int_equal(registry_tag(r, 7, "site-a", 1, &cause), 0);
	assert_int_equal(registry_tag(r, 7, "floor:3", 1, &cause), 0);
	assert_int_equal(registry_set_topology(r, 7, 5, 2, SCHED_ROLE_RELAY,
	    &cause), 0);
	/* Bad input: a clear error and nothing written. */
	assert_int_equal(registry_tag(r, 7, "bad tag", 1, &cause), -1);
	assert_non_null(strstr(cause, "bad tag"));
	free(cause);
	cause = NULL;
	assert_int_equal(registry_tag(r, 7, "", 1, &cause), -1);
	free(cause);
	cause = NULL;
	assert_int_equal(registry_set_topology(r, 7, 7, 0, 0, &cause), -1);
	free(cause);
	cause = NULL;
	assert_int_equal(count_rows(x->db, "SELECT count(*) FROM node_tags"),
	    2);

	announce(&a, 7, "1.0.0");
	addr(&t, 7);
	assert_int_equal(registry_announce(r, &a, "lan0", &t, "x", 10), 1);
	n = registry_get(r, 7);
	assert_int_equal(n->ntags, 2);
	assert_string_equal(n->tags[0], "floor:3");
	assert_string_equal(n->tags[1], "site-a");
	assert_int_equal(n->parent, 5);
	assert_int_equal(n->level, 2);
	assert_int_equal(n->role, SCHED_ROLE_RELAY);
	/* Removing one, and the limit of 8. */
	assert_int_equal(registry_tag(r, 7, "floor:3", 0, &cause), 0);
	assert_int_equal(n->ntags, 1);
	for (i = 0; i < REGISTRY_MAX_TAGS - 1; i++) {
		snprintf(tag, sizeof(tag), "t%d", i);
		assert_int_equal(registry_tag(r, 7, tag, 1, &cause), 0);
	}
	assert_int_equal(registry_tag(r, 7, "one-more", 1, &cause), -1);
	free(cause);
	cause = NULL;
	j = registry_node_json(n);
	assert_int_equal(json_array_size(json_object_get(j, "tags")),
	    REGISTRY_MAX_TAGS);
	assert_string_equal(json_string_value(json_object_get(j, "role")),
	    "relay");
	assert_string_equal(json_string_value(json_object_get(j, "parent")),
	    "0x0000000000000005");
	json_decref(j);
	registry_free(r);

	/* Reopened: loaded from the tables. */
	r = registry_open(x->db, &cause);
	assert_non_null(r);
	n = registry_get(r, 7);
	assert_non_null(n);
	assert_int_equal(n->ntags, REGISTRY_MAX_TAGS);
	assert_int_equal(n->parent, 5);
	registry_free(r);
}


/*
 * The strings are shared and counted: versions every node changes to
 * and away from again leave nothing behind, and equal texts are one.
 */
static void
test_strings_shared(void **state)
{
	struct rfx			*x = *state;
	struct registry			*r;
	struct up_announce		 a;
	struct tp_addr			 t;
	const struct registry_node	*n;
	char				*cause = NULL, ver[16];
	size_t				 heap0, heap1, heap2, heap3;
	uint64_t			 id;

	r = registry_open(x->db, &cause);
	assert_non_null(r);
	for (id = 1; id <= 2000; id++) {
		announce(&a, id, "1.0.0");
		addr(&t, id);
		assert_int_equal(registry_announce(r, &a, "lan0", &t, "x",
		    10), 1);
	}
	assert_int_equal(db_commit_now(x->db), 0);
	heap0 = mallinfo2().uordblks;
	/* Every node a distinct version: 2,000 new strings... */
	for (id = 1; id <= 2000; id++) {
		snprintf(ver, sizeof(ver), "9.%u", (unsigned)id);
		assert_int_equal(registry_set_version(r, id, "app", ver), 0);
	}
	heap1 = mallinfo2().uordblks;
	if (heap_measured(heap0))
		assert_true(heap1 > heap0 + 2000 * 8);
	/* ...that go once no node runs them. */
	for (id = 1; id <= 2000; id++)
		assert_int_equal(registry_set_version(r, id, "app", "1.0.0"),
		    0);
	assert_int_equal(db_commit_now(x->db), 0);
	heap2 = mallinfo2().uordblks;
	/*
	 * Again with other texts: the table (grown once) reuses the freed
	 * slots, so nothing is left behind however many versions pass.
	 */
	for (id = 1; id <= 2000; id++) {
		snprintf(ver, sizeof(ver), "8.%u", (unsigned)id);
		assert_int_equal(registry_set_version(r, id, "app", ver), 0);
	}
	for (id = 1; id <= 2000; id++)
		assert_int_equal(registry_set_version(r, id, "app", "1.0.0"),
		    0);
	assert_int_equal(db_commit_now(x->db), 0);
	heap3 = mallinfo2().uordblks;
	print_message("2,000 distinct versions: +%zu bytes; after: %+ld, "
	    "then %+ld\n", heap1 - heap0, (long)heap2 - (long)heap0,
	    (long)heap3 - (long)heap2);
	if (heap_measured(heap0))
		assert_true(heap3 < heap2 + 2000 * 4 &&
		    heap3 + 2000 * 4 > heap2);
	n = registry_get(r, 1999);
	assert_string_equal(n->comp[0].version, "1.0.0");
	assert_string_equal(n->comp[1].name, "boot");
	/* A text longer than its field is cut as the field would cut it. */
	announce(&a, 5000, "1.0.0");
	memset(a.hw, 'h', UP_NAME_MAX);
	a.hw[UP_NAME_MAX] = '\0';
	addr(&t, 5000);
	assert_int_equal(registry_announce(r, &a, "lan0", &t, "x", 10), 1);
	n = registry_get(r, 5000);
	assert_int_equal(strlen(n->hw), UP_NAME_MAX);
	/* An unchanged ANNOUNCE of it is not a change (no row rewrite). */
	assert_int_equal(registry_announce(r, &a, "lan0", &t, "x", 11), 0);
	registry_free(r);
}

/*
 * registry_get's records: a caller may hold one across a loop over many
 * other nodes (session.c's member scans inside campaign code); the same
 * node gives the same record; a held record shows later changes; with
 * the event base the slots come back once the loop turn is over.
 */
static void
release_cb(evutil_socket_t fd, short what, void *arg)
{
	(*(int *)arg)++;
}

static void
test_views(void **state)
{
	struct rfx			*x = *state;
	struct registry			*r;
	struct up_announce		 a;
	struct tp_addr			 t;
	const struct registry_node	*held, *n, *first;
	struct event_base		*base;
	struct event			*ev;
	char				*cause = NULL;
	uint64_t			 id;
	int				 turns = 0;

	r = registry_open(x->db, &cause);
	assert_non_null(r);
	for (id = 1; id <= 200; id++) {
		announce(&a, id, id == 1 ? "1.0.0" : "3.0.0");
		addr(&t, id);
		assert_int_equal(registry_announce(r, &a, "lan0", &t,
		    "10.0.0.1:1", 10), 1);
	}
	held = registry_get(r, 1);
	assert_non_null(held);
	for (id = 2; id <= 200; id++) {
		n = registry_get(r, id);
		assert_int_equal(n->id, id);
		assert_string_equal(n->comp[0].version, "3.0.0");
		assert_ptr_not_equal(n, held);
	}
	assert_int_equal(held->id, 1);
	assert_string_equal(held->comp[0].version, "1.0.0");
	assert_ptr_equal(registry_get(r, 1), held);
	assert_int_equal(registry_set_state(r, 1, UP_NS_UPDATED), 0);
	assert_int_equal(held->state, UP_NS_UPDATED);
	assert_int_equal(registry_set_version(r, 1, "app", "1.1.0"), 0);
	assert_string_equal(held->comp[0].version, "1.1.0");

	/* With the loop: released at the end of the turn. */
	base = event_base_new();
	assert_non_null(base);
	registry_set_base(r, base);
	ev = evtimer_new(base, release_cb, &turns);
	assert_non_null(registry_get(r, 6));
	assert_int_equal(event_base_loop(base, EVLOOP_ONCE), 0);
	first = registry_get(r, 7);
	n = registry_get(r, 8);
	assert_ptr_not_equal(first, n);
	event_active(ev, EV_TIMEOUT, 1);
	assert_int_equal(event_base_loop(base, EVLOOP_ONCE), 0);
	assert_int_equal(turns, 1);
	/* Slot 0 is free again: the next node takes it. */
	assert_ptr_equal(registry_get(r, 9), first);
	assert_int_equal(first->id, 9);
	event_free(ev);
	registry_free(r);
	event_base_free(base);
}

/*
 * Link addresses live in an append-only pool (issue 3): an address of
 * the same size is rewritten in place, another size is appended and the
 * old record becomes garbage, which compaction gives back; every node
 * keeps its own address and text through it all, and in SQLite.
 */
static void
pool_addr(struct tp_addr *t, uint64_t id, unsigned round)
{
	uint32_t	 v = (uint32_t)id * 1000 + round;

	memset(t, 0, sizeof(*t));
	t->len = round % 3 == 0 ? 6 : round % 3 == 1 ? 8 : 18;
	memset(t->b, (int)(id & 0xff), t->len);
	memcpy(t->b, &v, sizeof(v));
}

static void
pool_text(char *buf, size_t len, uint64_t id, unsigned round)
{
	/* Lengths vary with the round: appends, and same-size rewrites. */
	snprintf(buf, len, "10.%u.%u.%u:%u%.*s", round % 7,
	    (unsigned)(id >> 8), (unsigned)(id & 0xff), 4000 + round,
	    (int)(round % 5) * 4, "----------------------------");
}

static void
pool_check(struct registry *r, uint64_t id, unsigned round)
{
	const struct registry_node	*n;
	struct tp_addr			 t;
	char				 text[TP_ADDR_TEXT_MAX];

	pool_addr(&t, id, round);
	pool_text(text, sizeof(text), id, round);
	n = registry_get(r, id);
	assert_non_null(n);
	assert_string_equal(n->addr_text, text);
	assert_int_equal(n->addr.len, t.len);
	assert_memory_equal(n->addr.b, t.b, t.len);
	assert_true(tp_addr_eq(&n->addr, &t));
}

static void
test_addr_pool(void **state)
{
	struct rfx			*x = *state;
	struct registry			*r;
	struct up_announce		 a;
	struct tp_addr			 t;
	const struct registry_node	*held = NULL;
	char				*cause = NULL, text[TP_ADDR_TEXT_MAX];
	char				 longtext[200];
	size_t				 heap1 = 0, heap;
	unsigned			 round;
	uint64_t			 id;

	r = registry_open(x->db, &cause);
	assert_non_null(r);
	for (round = 0; round < 40; round++) {
		for (id = 1; id <= 1000; id++) {
			announce(&a, id, "1.0.0");
			pool_addr(&t, id, round);
			pool_text(text, sizeof(text), id, round);
			assert_int_equal(registry_announce(r, &a, "lan0", &t,
			    text, 100 + round), round == 0);
		}
		if (round == 0)
			held = registry_get(r, 500);
		if (round == 1) {
			assert_int_equal(db_commit_now(x->db), 0);
			heap1 = mallinfo2().uordblks;
		}
		/* A held record follows its node's moves. */
		pool_text(text, sizeof(text), 500, round);
		assert_string_equal(held->addr_text, text);
		pool_check(r, 500, round);
		pool_check(r, 1, round);
		pool_check(r, 1000, round);
	}
	for (id = 1; id <= 1000; id++)
		pool_check(r, id, 39);
	/*
	 * 39 moves of 1,000 nodes, most to a new size: some 900 KiB of
	 * records were appended; compaction kept the pool within about
	 * twice its live bytes (~40 KiB).
	 */
	assert_int_equal(db_commit_now(x->db), 0);
	heap = mallinfo2().uordblks;
	print_message("40 address rounds: heap %+ld bytes since round 1\n",
	    (long)heap - (long)heap1);
	if (heap_measured(heap1))
		assert_true(heap < heap1 + 160 * 1024);

	/* Text is cut to the field; an empty text is kept empty. */
	memset(longtext, 'a', sizeof(longtext) - 1);
	longtext[sizeof(longtext) - 1] = '\0';
	announce(&a, 2000, "1.0.0");
	addr(&t, 2000);
	assert_int_equal(registry_announce(r, &a, "lan0", &t, longtext, 500),
	    1);
	assert_int_equal(strlen(registry_get(r, 2000)->addr_text),
	    TP_ADDR_TEXT_MAX - 1);
	/* (A new text alone is written with the next minute's row.) */
	assert_int_equal(registry_announce(r, &a, "lan0", &t, NULL, 600), 0);
	assert_string_equal(registry_get(r, 2000)->addr_text, "");
	registry_free(r);

	/* The last address of each node is what SQLite kept. */
	assert_int_equal(db_commit_now(x->db), 0);
	r = registry_open(x->db, &cause);
	assert_non_null(r);
	for (id = 1; id <= 1000; id++)
		pool_check(r, id, 39);
	assert_string_equal(registry_get(r, 2000)->addr_text, "");
	registry_free(r);
}

/*
 * Nodes of one model running one firmware share their description; a
 * node that changes (components, hw, transport) gets its own, and
 * registry_foreach visits nodes in the order they were first heard,
 * across the record slabs.
 */
struct order_ctx {
	uint64_t	 ids[1200];
	size_t		 n;
};

static void
order_cb(void *arg, const struct registry_node *n)
{
	struct order_ctx	*o = arg;

	if (o->n < 1200)
		o->ids[o->n] = n->id;
	o->n++;
}

static void
test_shapes_order(void **state)
{
	struct rfx			*x = *state;
	struct registry			*r;
	struct up_announce		 a;
	struct tp_addr			 t;
	const struct registry_node	*n;
	struct order_ctx		*o;
	char				*cause = NULL;
	size_t				 i;
	uint64_t			 id;

	o = calloc(1, sizeof(*o));
	r = registry_open(x->db, &cause);
	assert_non_null(r);
	/* Ids out of order, so first-heard order is not id order. */
	for (i = 0; i < 1200; i++) {
		id = (i * 7919) % 1201 + 1;
		announce(&a, id, "1.0.0");
		addr(&t, id);
		assert_int_equal(registry_announce(r, &a, "lan0", &t, "x",
		    10), 1);
	}
	registry_foreach(r, order_cb, o);
	assert_int_equal(o->n, 1200);
	for (i = 0; i < 1200; i++)
		assert_int_equal(o->ids[i], (i * 7919) % 1201 + 1);

	/* No hw, no components: an empty description. */
	announce(&a, 5000, "1.0.0");
	a.hw[0] = '\0';
	a.ncomp = 0;
	addr(&t, 5000);
	assert_int_equal(registry_announce(r, &a, "", &t, "y", 10), 1);
	n = registry_get(r, 5000);
	assert_string_equal(n->hw, "");
	assert_string_equal(n->transport, "");
	assert_int_equal(n->ncomp, 0);
	/* Then a full one, one component at a time, then others. */
	assert_int_equal(registry_set_version(r, 5000, "app", "3.0"), 0);
	assert_int_equal(registry_set_version(r, 5000, "boot", "1.0"), 0);
	assert_int_equal(n->ncomp, 2);
	assert_string_equal(n->comp[1].name, "boot");
	announce(&a, 5000, "1.0.0");
	assert_int_equal(registry_announce(r, &a, "lan1", &t, "y", 20), 0);
	assert_string_equal(n->transport, "lan1");
	assert_string_equal(n->comp[0].version, "1.0.0");
	assert_string_equal(n->comp[1].version, "2.0");
	/* Its neighbours, of the same shape before, did not move. */
	n = registry_get(r, 1);
	assert_string_equal(n->transport, "lan0");
	assert_int_equal(n->ncomp, 2);
	assert_string_equal(n->comp[0].version, "1.0.0");
	/* All components set to the limit, then one too many. */
	for (i = 2; i < UP_MAX_COMPONENTS; i++) {
		char	 name[8];

		snprintf(name, sizeof(name), "c%zu", i);
		assert_int_equal(registry_set_version(r, 1, name, "0.1"), 0);
	}
	assert_int_equal(registry_set_version(r, 1, "over", "0.1"), -1);
	assert_int_equal(registry_set_version(r, 1, "c2", "0.2"), 0);
	n = registry_get(r, 1);
	assert_int_equal(n->ncomp, UP_MAX_COMPONENTS);
	assert_string_equal(n->comp[2].version, "0.2");
	n = registry_get(r, 2);
	assert_int_equal(n->ncomp, 2);
	registry_free(r);

	/* Reopened: the same descriptions, nodes in id order. */
	r = registry_open(x->db, &cause);
	assert_non_null(r);
	n = registry_get(r, 1);
	assert_int_equal(n->ncomp, UP_MAX_COMPONENTS);
	assert_string_equal(n->comp[0].name, "app");
	n = registry_get(r, 5000);
	assert_string_equal(n->transport, "lan1");
	assert_string_equal(n->hw, "hw-2");
	assert_int_equal(n->ncomp, 2);
	o->n = 0;
	registry_foreach(r, order_cb, o);
	assert_int_equal(o->n, 1201);
	for (i = 1; i < 1200; i++)
		assert_true(o->ids[i - 1] < o->ids[i]);
	registry_free(r);
	free(o);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_fleet, setup, teardown),
		cmocka_unit_test_setup_teardown(test_changes_and_json, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_tags_topology, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_strings_shared, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_views, setup, teardown),
		cmocka_unit_test_setup_teardown(test_addr_pool, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_shapes_order, setup,
		    teardown),
	};

	log_init(1, 0);
	return (cmocka_run_group_tests(tests, NULL, NULL));
}
