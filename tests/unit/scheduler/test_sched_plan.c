/*
 * test_sched_plan.c: target selection, the full/delta/chain chooser
 * (per node and per base-version group on a broadcast medium), stage
 * assignment and the dependency planner (ordering, ranges, cycles,
 * unsatisfiable constraints, atomic groups, topology).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "sched_fixture.h"

static void
test_target_match(void **state)
{
	struct sched_policy	 p;
	struct sched_node	 n;
	const char		 hw[2][CACHE_NAME_MAX + 1] = { "s1", "s2" };
	const char		 tags[1][CACHE_NAME_MAX + 1] = { "north" };

	assert_int_equal(sched_policy_parse("d1", hw, 2, tags, 1,
	    "{\"target\":{\"tags\":[\"floor3\"],\"exclude_tags\":[\"lab\"],"
	    "\"transports\":[\"lan0\",\"lora0\"],"
	    "\"components\":{\"app\":\"1.x\"}}}", &p, NULL), 0);
	mknode(&n, 1, "s1", "lan0", "app", "1.4");
	addtag(&n, "north");
	addtag(&n, "floor3");
	assert_true(sched_target_match(&p.target, &n));
	strcpy(n.hw, "s3");				/* hw */
	assert_false(sched_target_match(&p.target, &n));
	strcpy(n.hw, "s2");
	assert_true(sched_target_match(&p.target, &n));
	strcpy(n.transport, "ble0");			/* transport */
	assert_false(sched_target_match(&p.target, &n));
	strcpy(n.transport, "lora0");
	strcpy(n.comp[0].version, "2.0");		/* version range */
	assert_false(sched_target_match(&p.target, &n));
	strcpy(n.comp[0].version, "1.0");
	n.ntags = 1;					/* needs both tags */
	assert_false(sched_target_match(&p.target, &n));
	addtag(&n, "floor3");
	addtag(&n, "lab");				/* excluded */
	assert_false(sched_target_match(&p.target, &n));
	n.ntags = 2;
	assert_true(sched_target_match(&p.target, &n));
	strcpy(n.comp[0].name, "boot");			/* component */
	assert_false(sched_target_match(&p.target, &n));
	sched_policy_clear(&p);

	/* Test and production groups. */
	policy_ok(&p, "{\"target\":{\"group\":\"test\"}}");
	mknode(&n, 1, "s1", "lan0", "app", "1.0");
	assert_false(sched_target_match(&p.target, &n));
	addtag(&n, "test");
	assert_true(sched_target_match(&p.target, &n));
	sched_policy_clear(&p);
	policy_ok(&p, "{\"target\":{\"group\":\"production\","
	    "\"test_tag\":\"qa\"}}");
	assert_true(sched_target_match(&p.target, &n));
	addtag(&n, "qa");
	assert_false(sched_target_match(&p.target, &n));
	sched_policy_clear(&p);
}

/* full 1000; deltas 1.0->1.1 (100), 1.1->1.2 (120), 1.0->1.2 (400),
 * 0.9->1.0 (150). */
static void
route_pkgs(struct cache_pkg *pk)
{
	mkpkg(&pk[0], "app-1.2", "app", "1.2", "s1", UP_KIND_FULL, NULL, 1000);
	mkpkg(&pk[1], "d10-11", "app", "1.1", "s1", UP_KIND_DELTA, "1.0", 100);
	mkpkg(&pk[2], "d11-12", "app", "1.2", "s1", UP_KIND_DELTA, "1.1", 120);
	mkpkg(&pk[3], "d10-12", "app", "1.2", "s1", UP_KIND_DELTA, "1.0", 400);
	mkpkg(&pk[4], "d09-10", "app", "1.0", "s1", UP_KIND_DELTA, "0.9", 150);
	mkpkg(&pk[5], "app-1.1", "app", "1.1", "s1", UP_KIND_FULL, NULL, 900);
}

static void
test_route(void **state)
{
	struct cache_pkg	 pk[6];
	struct sched_route	 r;

	route_pkgs(pk);
	assert_string_equal(sched_target_version(pk, 6, "s1", "app"), "1.2");
	assert_null(sched_target_version(pk, 6, "s2", "app"));
	/* Chain 1.0 -> 1.1 -> 1.2 (220) beats the direct delta (400). */
	assert_int_equal(sched_route(pk, 6, "s1", "app", "1.0", "1.2", 0, 0,
	    &r), 0);
	assert_int_equal(r.nsteps, 2);
	assert_string_equal(r.step[0]->id, "d10-11");
	assert_string_equal(r.step[1]->id, "d11-12");
	assert_int_equal(r.bytes, 220);
	assert_false(r.full);
	/* A per-step cost makes the single delta cheaper. */
	assert_int_equal(sched_route(pk, 6, "s1", "app", "1.0", "1.2", 200, 0,
	    &r), 0);
	assert_int_equal(r.nsteps, 1);
	assert_string_equal(r.step[0]->id, "d10-12");
	/* Three deltas 0.9 -> 1.0 -> 1.1 -> 1.2 = 370 < 1000. */
	assert_int_equal(sched_route(pk, 6, "s1", "app", "0.9", "1.2", 0, 0,
	    &r), 0);
	assert_int_equal(r.nsteps, 3);
	assert_int_equal(r.bytes, 370);
	/* Unknown base: the full image. */
	assert_int_equal(sched_route(pk, 6, "s1", "app", "0.5", "1.2", 0, 0,
	    &r), 0);
	assert_int_equal(r.nsteps, 1);
	assert_true(r.full);
	assert_string_equal(r.step[0]->id, "app-1.2");
	/* Unknown base and no full image: no route. */
	assert_int_equal(sched_route(pk, 6, "s1", "app", "0.5", "1.2", 0, 1,
	    &r), -1);
	/* Nothing to do is not a route. */
	assert_int_equal(sched_route(pk, 6, "s1", "app", "1.2", "1.2", 0, 0,
	    &r), -1);
	/* Wrong hardware. */
	assert_int_equal(sched_route(pk, 6, "s9", "app", "1.0", "1.2", 0, 0,
	    &r), -1);
	/* Issue-2 chooser still works. */
	{
		struct sched_node	 n;

		mknode(&n, 1, "s1", "lan0", "app", "1.1");
		assert_string_equal(sched_choose(pk, 6, &n, "app")->id,
		    "d11-12");
	}
}

static void
test_broadcast_groups(void **state)
{
	struct cache_pkg	 pk[4];
	struct sched_bgroup	 g[3];
	uint64_t		 cost;

	mkpkg(&pk[0], "full", "app", "2.0", "s1", UP_KIND_FULL, NULL, 10000);
	mkpkg(&pk[1], "d10", "app", "2.0", "s1", UP_KIND_DELTA, "1.0", 800);
	mkpkg(&pk[2], "d11", "app", "2.0", "s1", UP_KIND_DELTA, "1.1", 600);
	mkpkg(&pk[3], "d19", "app", "2.0", "s1", UP_KIND_DELTA, "1.9", 9000);
	memset(g, 0, sizeof(g));
	strcpy(g[0].base, "1.0");
	g[0].nnodes = 5;
	strcpy(g[1].base, "1.1");
	g[1].nnodes = 3;
	strcpy(g[2].base, "0.7");		/* unknown base */
	g[2].nnodes = 1;
	/* Receivers count (listen 100 %): each known base gets its delta
	 * session, the unknown one the full session. */
	cost = sched_broadcast_choose(pk, 4, "s1", "app", "2.0", 100, g, 3);
	assert_false(g[0].use_full);
	assert_string_equal(g[0].route.step[0]->id, "d10");
	assert_false(g[1].use_full);
	assert_string_equal(g[1].route.step[0]->id, "d11");
	assert_true(g[2].use_full);
	assert_string_equal(g[2].route.step[0]->id, "full");
	/* airtime 800 + 600 + 10000, listening 5*800 + 3*600 + 10000. */
	assert_int_equal(cost, 11400 + 4000 + 1800 + 10000);
	/* Pure airtime: the full session must go out anyway, so everybody
	 * listens to it and no delta session is sent. */
	cost = sched_broadcast_choose(pk, 4, "s1", "app", "2.0", 0, g, 3);
	assert_true(g[0].use_full && g[1].use_full && g[2].use_full);
	assert_int_equal(cost, 10000);
	/* Known bases only: deltas, no full session. */
	cost = sched_broadcast_choose(pk, 4, "s1", "app", "2.0", 0, g, 2);
	assert_false(g[0].use_full || g[1].use_full);
	assert_int_equal(cost, 1400);
	/* A delta nearly as big as the image, one node: the full image. */
	strcpy(g[0].base, "1.9");
	g[0].nnodes = 1;
	strcpy(g[1].base, "0.7");
	g[1].nnodes = 1;
	cost = sched_broadcast_choose(pk, 4, "s1", "app", "2.0", 100, g, 2);
	assert_true(g[0].use_full);
	assert_int_equal(cost, 10000 + 2 * 10000);
	/* No full image and an unknown base: impossible. */
	assert_int_equal(sched_broadcast_choose(&pk[1], 3, "s1", "app", "2.0",
	    100, g, 2), UINT64_MAX);
}

static struct sched_campaign *
plan(const char *json, const struct cache_pkg *pk, size_t npk,
    const struct sched_node *nodes, size_t n, char **cause)
{
	struct sched_policy	 p;
	struct sched_campaign	*c;

	policy_ok(&p, json);
	c = sched_campaign_plan("c1", &p, pk, npk, nodes, n, T_MON, cause);
	sched_policy_clear(&p);
	return (c);
}

/* True if item a must wait for item b (an edge b -> a). */
static bool
waits(struct sched_campaign *c, uint64_t na, const char *ca, uint64_t nb,
    const char *cb, enum sched_edge_kind *kind)
{
	struct sched_item	*a = sched_item_find(c, na, ca);
	struct sched_item	*b = sched_item_find(c, nb, cb);
	size_t			 i = (size_t)(a - c->items), e;

	assert_non_null(a);
	assert_non_null(b);
	for (e = c->edge_in[i]; e < c->edge_in[i + 1]; e++)
		if (c->edges[e].from == (size_t)(b - c->items)) {
			if (kind != NULL)
				*kind = c->edges[e].kind;
			return (true);
		}
	return (false);
}

static void
test_plan_routes_and_broadcast(void **state)
{
	struct cache_pkg	 pk[4];
	struct sched_node	 n[5];
	struct sched_campaign	*c;
	char			*cause = NULL;
	size_t			 i;

	mkpkg(&pk[0], "full", "app", "2.0", "s1", UP_KIND_FULL, NULL, 10000);
	mkpkg(&pk[1], "d10", "app", "2.0", "s1", UP_KIND_DELTA, "1.0", 800);
	mkpkg(&pk[2], "d11", "app", "2.0", "s1", UP_KIND_DELTA, "1.1", 600);
	mkpkg(&pk[3], "boot", "boot", "3.0", NULL, UP_KIND_FULL, NULL, 50);
	mknode(&n[0], 1, "s1", "lan0", "app", "1.0");
	mknode(&n[1], 2, "s1", "lan0", "app", "1.1");
	mknode(&n[2], 3, "s1", "lan0", "app", "0.7");
	mknode(&n[3], 4, "s1", "lan0", "app", "2.0");	/* up to date */
	mknode(&n[4], 5, "s2", "lan0", "app", "1.0");	/* no package */
	for (i = 0; i < 5; i++)
		n[i].broadcast = 1;
	addcomp(&n[0], "boot", "2.0");
	c = plan("{}", pk, 4, n, 5, &cause);
	assert_non_null(c);
	/* Node 4 is up to date: not a member; node 5 has no package. */
	assert_int_equal(c->nmembers, 3);
	assert_int_equal(c->nitems, 4);
	assert_string_equal(sched_item_find(c, 1, "app")->steps[0], "d10");
	assert_string_equal(sched_item_find(c, 2, "app")->steps[0], "d11");
	assert_string_equal(sched_item_find(c, 3, "app")->steps[0], "full");
	assert_string_equal(sched_item_find(c, 1, "boot")->steps[0], "boot");
	assert_int_equal(sched_item_find(c, 1, "app")->bytes, 800);
	/* One stage "all" without thresholds. */
	assert_int_equal(c->nstages, 1);
	assert_string_equal(c->stages[0].name, "all");
	sched_campaign_free(c);

	/* No full image: the unknown base cannot be served; skipped. */
	c = plan("{}", &pk[1], 2, n, 3, &cause);
	assert_non_null(c);
	assert_int_equal(sched_item_find(c, 3, "app")->state,
	    SCHED_I_SKIPPED);
	assert_string_equal(sched_item_find(c, 3, "app")->reason,
	    "no route from 0.7 to 2.0: no full image for hw 's1' and no "
	    "delta chain from 0.7");
	assert_int_equal(sched_item_find(c, 1, "app")->state,
	    SCHED_I_PENDING);
	sched_campaign_free(c);
}

/*
 * Versions only go up, unless the cloud signed the package as a
 * downgrade (allow_downgrade, docs/up-protocol.md §5.4): then nodes
 * above it get it, in one step, full or a delta from what they run.
 */
static void
test_plan_signed_downgrade(void **state)
{
	struct cache_pkg	 pk[3];
	struct sched_node	 n[4];
	struct sched_campaign	*c;
	struct sched_route	 r;
	char			*cause = NULL;

	mkpkg(&pk[0], "app-1.5", "app", "1.5", "s1", UP_KIND_FULL, NULL, 900);
	mknode(&n[0], 1, "s1", "lan0", "app", "2.0");
	mknode(&n[1], 2, "s1", "lan0", "app", "1.0");
	mknode(&n[2], 3, "s1", "lan0", "app", "1.5");
	mknode(&n[3], 4, "s1", "lan0", "app", "2.1");
	/* Not signed as a downgrade: only the node below gets it. */
	assert_false(sched_may_offer(&pk[0], "2.0"));
	assert_true(sched_may_offer(&pk[0], "1.0"));
	assert_false(sched_may_offer(&pk[0], "1.5"));
	c = plan("{}", pk, 1, n, 4, &cause);
	assert_non_null(c);
	assert_int_equal(c->nitems, 1);
	assert_non_null(sched_item_find(c, 2, "app"));
	sched_campaign_free(c);
	assert_int_equal(sched_route(pk, 1, "s1", "app", "2.0", "1.5", 0, 0,
	    &r), -1);

	/* Signed as one: every node not on 1.5 gets it. */
	pk[0].allow_downgrade = 1;
	assert_true(sched_may_offer(&pk[0], "2.0"));
	assert_false(sched_may_offer(&pk[0], "1.5"));
	c = plan("{}", pk, 1, n, 4, &cause);
	assert_non_null(c);
	assert_int_equal(c->nitems, 3);
	assert_string_equal(sched_item_find(c, 1, "app")->steps[0],
	    "app-1.5");
	assert_string_equal(sched_item_find(c, 1, "app")->to, "1.5");
	assert_string_equal(sched_item_find(c, 4, "app")->steps[0],
	    "app-1.5");
	assert_null(sched_item_find(c, 3, "app"));
	sched_campaign_free(c);

	/* A signed delta 2.0 -> 1.5 is cheaper for the node on 2.0; a
	 * route never goes down and up again. */
	mkpkg(&pk[1], "d20-15", "app", "1.5", "s1", UP_KIND_DELTA, "2.0", 90);
	pk[1].allow_downgrade = 1;
	mkpkg(&pk[2], "d10-20", "app", "2.0", "s1", UP_KIND_DELTA, "1.0", 10);
	assert_int_equal(sched_route(pk, 3, "s1", "app", "2.0", "1.5", 0, 0,
	    &r), 0);
	assert_int_equal(r.nsteps, 1);
	assert_string_equal(r.step[0]->id, "d20-15");
	assert_int_equal(sched_route(pk, 3, "s1", "app", "1.0", "1.5", 0, 0,
	    &r), 0);
	assert_int_equal(r.nsteps, 1);
	assert_string_equal(r.step[0]->id, "app-1.5");
	/* Without the signed delta, 2.1 has only the full image. */
	assert_int_equal(sched_route(pk, 3, "s1", "app", "2.1", "1.5", 0, 1,
	    &r), -1);
}

static void
test_plan_stages(void **state)
{
	struct cache_pkg	 pk[1];
	struct sched_node	 n[20];
	struct sched_campaign	*c;
	char			*cause = NULL;
	size_t			 i;
	int			 per[8] = { 0 };

	mkpkg(&pk[0], "full", "app", "2.0", NULL, UP_KIND_FULL, NULL, 100);
	for (i = 0; i < 20; i++) {
		mknode(&n[i], 100 - i, "s1", "lan0", "app", "1.0");
		if (i == 7 || i == 8)
			addtag(&n[i], "test");
	}
	c = plan("{\"stages\":[{\"name\":\"canary\",\"nodes\":[\"0x55\"]},"
	    "{\"name\":\"qa\",\"tags\":[\"test\"]},{\"name\":\"ten\","
	    "\"percent\":25},{\"name\":\"three\",\"count\":3}]}", pk, 1, n, 20,
	    &cause);
	assert_non_null(c);
	assert_int_equal(c->nstages, 5);	/* + implicit "rest" */
	assert_string_equal(c->stages[4].name, "rest");
	for (i = 0; i < c->nmembers; i++)
		per[c->members[i].stage]++;
	assert_int_equal(per[0], 1);		/* canary: node 0x55 */
	assert_int_equal(sched_member_get(c, 0x55)->stage, 0);
	assert_int_equal(per[1], 2);		/* the two test nodes */
	assert_int_equal(sched_member_get(c, 93)->stage, 1);
	assert_int_equal(per[2], 2);		/* up to 25 % of 20 = 5 */
	assert_int_equal(per[3], 3);
	assert_int_equal(per[4], 12);
	/* Plan order is node id order: stage "ten" took the lowest ids. */
	assert_int_equal(sched_member_get(c, 81)->stage, 2);
	assert_int_equal(sched_member_get(c, 82)->stage, 2);
	sched_campaign_free(c);

	/* A canary that is not a target / unknown: plan error. */
	assert_null(plan("{\"target\":{\"tags\":[\"test\"]},\"stages\":"
	    "[{\"name\":\"canary\",\"nodes\":[100]}]}", pk, 1, n, 20, &cause));
	assert_string_equal(cause, "deployment 'd1': policy.stages[0] "
	    "'canary': node 0x0000000000000064 is not a target");
	free(cause);
	assert_null(plan("{\"stages\":[{\"name\":\"c\","
	    "\"nodes\":[\"0x999\"]}]}", pk, 1, n, 20, &cause));
	assert_string_equal(cause, "deployment 'd1': policy.stages[0] 'c': "
	    "node 0x0000000000000999 is unknown");
	free(cause);
}

static void
test_plan_dependencies(void **state)
{
	struct cache_pkg	 pk[4];
	struct sched_node	 n[3];
	struct sched_campaign	*c;
	enum sched_edge_kind	 k;
	char			*cause = NULL;

	mkpkg(&pk[0], "mcu-2.1", "mcu", "2.1", NULL, UP_KIND_FULL, NULL, 100);
	mkpkg(&pk[1], "modem-1.6", "modem", "1.6", NULL, UP_KIND_FULL, NULL,
	    100);
	mkpkg(&pk[2], "app-3", "app", "3.0", NULL, UP_KIND_FULL, NULL, 100);
	pk[2].ndeps = 1;			/* app 3.0 needs boot >= 2 */
	strcpy(pk[2].dep_component[0], "boot");
	strcpy(pk[2].dep_min_version[0], "2.0");
	mkpkg(&pk[3], "boot-2", "boot", "2.0", NULL, UP_KIND_FULL, NULL, 100);
	/* Node 1: modem 1.0, mcu 1.0 -> mcu 2.1 needs modem >= 1.5. */
	mknode(&n[0], 1, "s1", "lan0", "mcu", "1.0");
	addcomp(&n[0], "modem", "1.0");
	/* Node 2: modem 1.5 already: no wait. */
	mknode(&n[1], 2, "s1", "lan0", "mcu", "1.0");
	addcomp(&n[1], "modem", "1.5");
	/* Node 3: app needs boot >= 2.0 (package dep), boot 1 -> 2. */
	mknode(&n[2], 3, "s1", "lan0", "app", "2.0");
	addcomp(&n[2], "boot", "1.0");
	c = plan("{\"requires\":[{\"component\":\"mcu\",\"version\":\"2.x\","
	    "\"requires\":\"modem\",\"range\":\">=1.5 <2\"}]}", pk, 4, n, 3,
	    &cause);
	if (c == NULL)
		fprintf(stderr, "%s\n", cause);
	assert_non_null(c);
	assert_true(waits(c, 1, "mcu", 1, "modem", &k));
	assert_int_equal(k, SCHED_E_REQUIRE);
	assert_false(waits(c, 1, "modem", 1, "mcu", NULL));
	assert_false(waits(c, 2, "mcu", 2, "modem", NULL));
	assert_true(waits(c, 3, "app", 3, "boot", &k));
	sched_campaign_free(c);

	/* Unsatisfiable: the deployment's modem is outside the range. */
	c = plan("{\"requires\":[{\"component\":\"mcu\",\"requires\":"
	    "\"modem\",\"range\":\">=1.7\"}]}", pk, 4, n, 1, &cause);
	assert_null(c);
	assert_string_equal(cause, "node 0x0000000000000001 mcu 2.1 requires "
	    "modem '>=1.7', but the campaign moves modem from 1.0 to 1.6");
	free(cause);
	/* A component the node does not run. */
	c = plan("{\"requires\":[{\"component\":\"mcu\",\"requires\":"
	    "\"radio\",\"range\":\"1.x\"}]}", pk, 4, n, 1, &cause);
	assert_null(c);
	assert_string_equal(cause, "node 0x0000000000000001 mcu 2.1 requires "
	    "radio '1.x': the node does not run radio and the deployment does "
	    "not bring it");
	free(cause);
	/* Cycle: mcu needs modem and modem needs mcu. */
	c = plan("{\"requires\":[{\"component\":\"mcu\",\"requires\":"
	    "\"modem\",\"range\":\">=1.6\"},{\"component\":\"modem\","
	    "\"requires\":\"mcu\",\"range\":\">=2\"}]}", pk, 4, n, 1, &cause);
	assert_null(c);
	assert_string_equal(cause, "dependency cycle: node 0x0000000000000001 "
	    "mcu 2.1 -> node 0x0000000000000001 modem 1.6 -> node "
	    "0x0000000000000001 mcu 2.1");
	free(cause);
	/* order: modem first, then mcu. */
	c = plan("{\"order\":[\"modem\",\"mcu\"]}", pk, 4, n, 1, &cause);
	assert_non_null(c);
	assert_true(waits(c, 1, "mcu", 1, "modem", NULL));
	sched_campaign_free(c);
	/* An atomic group cannot also be ordered inside. */
	c = plan("{\"order\":[\"modem\",\"mcu\"],\"atomic\":[{\"name\":"
	    "\"radio\",\"components\":[\"modem\",\"mcu\"]}]}", pk, 4, n, 1,
	    &cause);
	assert_null(c);
	assert_string_equal(cause, "atomic group 'radio': node "
	    "0x0000000000000001 mcu 2.1 waits for node 0x0000000000000001 "
	    "modem 1.6 (order) in the same group, which activates together");
	free(cause);
	c = plan("{\"atomic\":[{\"name\":\"radio\",\"components\":[\"modem\","
	    "\"mcu\"]}]}", pk, 4, n, 2, &cause);
	assert_non_null(c);
	assert_int_equal(sched_item_find(c, 1, "mcu")->atomic, 0);
	assert_int_equal(sched_item_find(c, 2, "modem")->atomic, 0);
	sched_campaign_free(c);
}

static void
test_plan_topology(void **state)
{
	struct cache_pkg	 pk[1];
	struct sched_node	 n[6];
	struct sched_campaign	*c;
	enum sched_edge_kind	 k;
	char			*cause = NULL;

	mkpkg(&pk[0], "fw", "fw", "2.0", NULL, UP_KIND_FULL, NULL, 100);
	/* CCO 1 <- relay 2 (not updated) <- relay 3 <- leaves 4, 5;
	 * gateway 6. */
	mknode(&n[0], 1, "cco", "plc0", "fw", "1.0");
	n[0].role = SCHED_ROLE_COORDINATOR;
	mknode(&n[1], 2, "sta", "plc0", "fw", "2.0");	/* up to date */
	n[1].role = SCHED_ROLE_RELAY;
	n[1].parent = 1;
	mknode(&n[2], 3, "sta", "plc0", "fw", "1.0");
	n[2].role = SCHED_ROLE_RELAY;
	n[2].parent = 2;
	mknode(&n[3], 4, "sta", "plc0", "fw", "1.0");
	n[3].parent = 3;
	mknode(&n[4], 5, "sta", "plc0", "fw", "1.0");
	n[4].parent = 3;
	mknode(&n[5], 6, "gw", "self", "fw", "1.0");
	n[5].role = SCHED_ROLE_GATEWAY;
	c = plan("{\"stages\":[{\"name\":\"canary\",\"nodes\":[3]}]}", pk, 1,
	    n, 6, &cause);
	assert_non_null(c);
	assert_int_equal(c->nmembers, 5);
	/* Coordinator before everything behind it (through relay 2, which
	 * is not in the campaign). */
	assert_true(waits(c, 4, "fw", 1, "fw", &k));
	assert_int_equal(k, SCHED_E_REQUIRE);
	assert_true(waits(c, 3, "fw", 1, "fw", NULL));
	/* Relay 3 after the leaves that route through it. */
	assert_true(waits(c, 3, "fw", 4, "fw", &k));
	assert_int_equal(k, SCHED_E_ORDER);
	assert_true(waits(c, 3, "fw", 5, "fw", NULL));
	assert_false(waits(c, 4, "fw", 3, "fw", NULL));
	/* The gateway last. */
	assert_true(waits(c, 6, "fw", 1, "fw", NULL));
	assert_true(waits(c, 6, "fw", 3, "fw", NULL));
	assert_true(waits(c, 6, "fw", 5, "fw", NULL));
	/* The canary relay waits for leaves of the "rest" stage: it is
	 * moved there instead of deadlocking the rollout. */
	assert_int_equal(sched_member_get(c, 3)->stage, 1);
	sched_campaign_free(c);

	/* A routing loop is refused. */
	n[0].parent = 4;
	n[0].role = SCHED_ROLE_RELAY;
	c = plan("{}", pk, 1, n, 6, &cause);
	assert_null(c);
	assert_non_null(strstr(cause, "cycle"));
	free(cause);
}

/* The cause of a policy that sched_policy_check must refuse (malloc'd). */
static char *
names_err(const char *json, const struct sched_known *k)
{
	struct sched_policy	 p;
	char			*cause = NULL;

	policy_ok(&p, json);
	if (sched_policy_check(&p, k, &cause) == 0) {
		fprintf(stderr, "names accepted but should not be: %s\n", json);
		abort();
	}
	sched_policy_clear(&p);
	return (cause);
}

static void
names_ok(const char *json, const struct sched_known *k)
{
	struct sched_policy	 p;
	char			*cause = NULL;

	policy_ok(&p, json);
	if (sched_policy_check(&p, k, &cause) != 0)
		fail_msg("names refused: %s: %s", json, cause);
	sched_policy_clear(&p);
}

static void
assert_names_err(const char *json, const struct sched_known *k,
    const char *want)
{
	char	*cause = names_err(json, k);

	assert_string_equal(cause, want);
	free(cause);
}

/* The warnings of a policy, joined by " | " into buf. */
static const char *
names_warn(const char *json, const struct sched_known *k, char *buf,
    size_t len)
{
	struct sched_policy	 p;
	json_t			*a, *v;
	size_t			 i;

	policy_ok(&p, json);
	a = sched_policy_warnings(&p, k);
	assert_non_null(a);
	buf[0] = '\0';
	json_array_foreach(a, i, v)
		snprintf(buf + strlen(buf), len - strlen(buf), "%s%s",
		    i > 0 ? " | " : "", json_string_value(v));
	json_decref(a);
	sched_policy_clear(&p);
	return (buf);
}

/*
 * Issue 7: a target naming a model, transport, tag or component that
 * matches nothing, or an order naming an unknown component, planned an
 * empty or unconstrained campaign.  Unknown names are errors naming the
 * item; known names with no node yet are warnings.
 */
static void
test_names(void **state)
{
	struct cache_pkg	 pk[3];
	struct sched_node	 n[2];
	struct sched_known	 k;
	const char		*tps[] = { "lan0", "lora0" };
	char			 buf[1024];
	struct sched_policy	 p;
	char			*cause = NULL;
	const char		 dhw[1][CACHE_NAME_MAX + 1] = { "sensr-v1" };

	mkpkg(&pk[0], "app-2", "app", "2.0", "s1", UP_KIND_FULL, NULL, 1000);
	mkpkg(&pk[1], "app-2-s2", "app", "2.0", "s2", UP_KIND_FULL, NULL,
	    1000);
	mkpkg(&pk[2], "modem-3", "modem", "3.0", "s1", UP_KIND_FULL, NULL,
	    500);
	pk[2].ndeps = 1;
	strcpy(pk[2].dep_component[0], "boot");
	strcpy(pk[2].dep_min_version[0], "2");
	mknode(&n[0], 1, "s1", "lan0", "app", "1.0");
	addcomp(&n[0], "modem", "2.0");
	addtag(&n[0], "north");
	mknode(&n[1], 2, "s1", "lan0", "app", "1.5");
	addtag(&n[1], "lab");
	memset(&k, 0, sizeof(k));
	k.pkgs = pk;
	k.npkgs = 3;
	k.nodes = n;
	k.nnodes = 2;
	k.transports = tps;
	k.ntransports = 2;
	k.gateway = 1;

	/* What every name attests. */
	names_ok("{\"target\":{\"hw\":[\"s1\",\"s2\"],\"tags\":[\"north\"],"
	    "\"exclude_tags\":[\"fragile\"],\"transports\":[\"lan0\","
	    "\"lora0\"],\"components\":{\"app\":\"1.x\",\"boot\":\">=1\"}},"
	    "\"stages\":[{\"tags\":[\"lab\"]},{\"rest\":true}],"
	    "\"order\":[\"modem\",\"app\"],"
	    "\"atomic\":[{\"name\":\"g\",\"components\":[\"app\",\"modem\"]}],"
	    "\"concurrency\":{\"lora0\":2}}", &k);

	/* Unknown names, each named. */
	assert_names_err("{\"target\":{\"hw\":[\"s9\"]}}", &k,
	    "deployment 'd1': policy.target hw 's9': no package of the "
	    "deployment is for it");
	assert_names_err("{\"target\":{\"transports\":[\"lan0\",\"lan9\"]}}",
	    &k, "deployment 'd1': policy.target.transports: 'lan9': this "
	    "gateway has no such transport");
	assert_names_err("{\"concurrency\":{\"ble0\":1}}", &k,
	    "deployment 'd1': policy.concurrency: 'ble0': this gateway has no "
	    "such transport");
	assert_names_err("{\"target\":{\"tags\":[\"nroth\"]}}", &k,
	    "deployment 'd1': target tag 'nroth': no node carries it (tag "
	    "nodes first: upctl node ID tag add nroth)");
	assert_names_err("{\"stages\":[{\"name\":\"canary\",\"tags\":"
	    "[\"canary\"]}]}", &k, "deployment 'd1': policy.stages[0] "
	    "'canary' tag 'canary': no node carries it (tag nodes first: "
	    "upctl node ID tag add canary)");
	assert_names_err("{\"target\":{\"components\":{\"ap\":\"1.x\"}}}", &k,
	    "deployment 'd1': policy.target.components: 'ap': no package of "
	    "the deployment and no node has that component");
	assert_names_err("{\"order\":[\"app\",\"modme\"]}", &k,
	    "deployment 'd1': policy.order[1]: 'modme': no package of the "
	    "deployment is that component");
	assert_names_err("{\"atomic\":[{\"name\":\"g\",\"components\":"
	    "[\"app\",\"boot\"]}]}", &k, "deployment 'd1': "
	    "policy.atomic[0].components: 'boot': no package of the "
	    "deployment is that component");
	/* The deployment's own target list (not the policy's). */
	assert_int_equal(sched_policy_parse("d1", dhw, 1, NULL, 0, "{}", &p,
	    NULL), 0);
	assert_int_equal(sched_policy_check(&p, &k, &cause), -1);
	assert_string_equal(cause, "deployment 'd1': target hw 'sensr-v1': "
	    "no package of the deployment is for it");
	free(cause);
	sched_policy_clear(&p);

	/*
	 * The publisher (upmanifest) knows the packages only: what needs
	 * the registry or the transports is left to the gateway.
	 */
	k.gateway = 0;
	names_ok("{\"target\":{\"tags\":[\"nroth\"],\"transports\":"
	    "[\"lan9\"],\"components\":{\"ap\":\"1\"}}}", &k);
	assert_names_err("{\"order\":[\"app\",\"modme\"]}", &k,
	    "deployment 'd1': policy.order[1]: 'modme': no package of the "
	    "deployment is that component");
	assert_names_err("{\"target\":{\"hw\":[\"s9\"]}}", &k,
	    "deployment 'd1': policy.target hw 's9': no package of the "
	    "deployment is for it");
	/* A package for any model: a model is known if a node is it. */
	pk[2].nhw = 0;
	names_ok("{\"target\":{\"hw\":[\"s9\"]}}", &k);
	k.gateway = 1;
	assert_names_err("{\"target\":{\"hw\":[\"s9\"]}}", &k,
	    "deployment 'd1': policy.target hw 's9': no package names it and "
	    "no node is that model");
	strcpy(n[1].hw, "s9");
	names_ok("{\"target\":{\"hw\":[\"s9\"]}}", &k);
	strcpy(n[1].hw, "s1");
	pk[2].nhw = 1;

	/* Known names that match no node yet: warnings, not errors. */
	names_ok("{\"target\":{\"hw\":[\"s2\"],\"transports\":[\"lora0\"]}}",
	    &k);
	assert_string_equal(names_warn("{\"target\":{\"hw\":[\"s2\"],"
	    "\"transports\":[\"lora0\"]}}", &k, buf, sizeof(buf)),
	    "target hw 's2': no node of that model yet | target transport "
	    "'lora0': no node on it yet | the target matches no node yet "
	    "(2 nodes known)");
	assert_string_equal(names_warn("{\"target\":{\"exclude_tags\":"
	    "[\"fragile\"],\"components\":{\"app\":\">=3\"}}}", &k, buf,
	    sizeof(buf)), "exclude tag 'fragile': no node carries it, it "
	    "excludes nothing | target component app '>=3': no node runs a "
	    "version in that range | the target matches no node yet (2 nodes "
	    "known)");
	assert_string_equal(names_warn("{\"target\":{\"group\":\"test\"}}",
	    &k, buf, sizeof(buf)), "group test: no node carries the test tag "
	    "'test' yet | the target matches no node yet (2 nodes known)");
	/* A stage whose tags only non-targets carry. */
	assert_string_equal(names_warn("{\"target\":{\"tags\":[\"north\"]},"
	    "\"stages\":[{\"name\":\"lab\",\"tags\":[\"lab\"]},"
	    "{\"rest\":true}]}", &k, buf, sizeof(buf)),
	    "stage 'lab': no target carries its tags yet");
	/* All well: no warning. */
	assert_string_equal(names_warn("{\"target\":{\"hw\":[\"s1\"]}}", &k,
	    buf, sizeof(buf)), "");
	/* A warning goes when a node that matches appears. */
	strcpy(n[1].hw, "s2");
	assert_string_equal(names_warn("{\"target\":{\"hw\":[\"s2\"]}}", &k,
	    buf, sizeof(buf)), "");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_target_match),
		cmocka_unit_test(test_route),
		cmocka_unit_test(test_broadcast_groups),
		cmocka_unit_test(test_plan_routes_and_broadcast),
		cmocka_unit_test(test_plan_signed_downgrade),
		cmocka_unit_test(test_plan_stages),
		cmocka_unit_test(test_plan_dependencies),
		cmocka_unit_test(test_plan_topology),
		cmocka_unit_test(test_names),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
