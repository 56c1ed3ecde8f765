/*
 * test_sched.c: version ordering and package choice.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "sched.h"

static void
test_version_cmp(void **state)
{
	assert_true(sched_version_cmp("1.10.0", "1.9.3") > 0);
	assert_true(sched_version_cmp("1.9.3", "1.10.0") < 0);
	assert_int_equal(sched_version_cmp("1.2", "1.2.0"), 0);
	assert_true(sched_version_cmp("2.0.0-rc1", "2.0.0") < 0);
	assert_true(sched_version_cmp("2.0.0", "2.0.0-rc1") > 0);
	assert_true(sched_version_cmp("2.0.0-rc1", "2.0.0-rc2") < 0);
	assert_int_equal(sched_version_cmp("1.0.0+b7", "1.0.0"), 0);
	assert_true(sched_version_cmp("10", "9") > 0);
	/* Non-numeric fields fall back to bytewise order. */
	assert_true(sched_version_cmp("1.x", "1.y") < 0);
}

static void
pkg(struct cache_pkg *p, const char *id, const char *comp, const char *ver,
    const char *hw, int kind, const char *base, uint64_t size)
{
	memset(p, 0, sizeof(*p));
	strcpy(p->id, id);
	strcpy(p->component, comp);
	strcpy(p->version, ver);
	if (hw != NULL) {
		p->nhw = 1;
		strcpy(p->hw[0], hw);
	}
	p->kind = kind;
	if (base != NULL)
		strcpy(p->base_version, base);
	p->size = size;
}

static void
test_choose(void **state)
{
	struct cache_pkg	 pk[5];
	struct sched_node	 n;
	const struct cache_pkg	*c;

	pkg(&pk[0], "a", "app", "1.1.0", "sensor", UP_KIND_FULL, NULL, 1000);
	pkg(&pk[1], "b", "app", "1.2.0", "sensor", UP_KIND_FULL, NULL, 1000);
	pkg(&pk[2], "c", "app", "1.2.0", "sensor", UP_KIND_DELTA, "1.0.0",
	    100);
	pkg(&pk[3], "d", "app", "9.0.0", "other", UP_KIND_FULL, NULL, 1000);
	pkg(&pk[4], "e", "modem", "3.0.0", NULL, UP_KIND_FULL, NULL, 1000);

	memset(&n, 0, sizeof(n));
	n.node_id = 1;
	strcpy(n.hw, "sensor");
	n.ncomp = 1;
	strcpy(n.comp[0].name, "app");
	strcpy(n.comp[0].version, "1.0.0");

	/* Newest compatible version; the smaller delta from 1.0.0 wins. */
	c = sched_choose(pk, 5, &n, "app");
	assert_non_null(c);
	assert_string_equal(c->id, "c");

	/* From 1.1.0 the delta does not apply: the full image. */
	strcpy(n.comp[0].version, "1.1.0");
	c = sched_choose(pk, 5, &n, "app");
	assert_non_null(c);
	assert_string_equal(c->id, "b");

	/* Up to date. */
	strcpy(n.comp[0].version, "1.2.0");
	assert_null(sched_choose(pk, 5, &n, "app"));

	/* A component the node does not run. */
	assert_null(sched_choose(pk, 5, &n, "modem"));

	/* Incompatible hardware. */
	strcpy(n.hw, "gadget");
	strcpy(n.comp[0].version, "1.0.0");
	assert_null(sched_choose(pk, 5, &n, "app"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_version_cmp),
		cmocka_unit_test(test_choose),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
