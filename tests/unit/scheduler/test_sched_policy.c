/*
 * test_sched_policy.c: version ranges, windows, durations, times, and the
 * policy parser (values and exact error messages).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "sched_fixture.h"

static bool
in(const char *range, const char *v)
{
	struct sched_range	 r;
	char			*cause = NULL;

	if (sched_range_parse(range, &r, &cause) != 0) {
		fprintf(stderr, "%s: %s\n", range, cause);
		abort();
	}
	return (sched_range_match(&r, v));
}

static void
test_ranges(void **state)
{
	assert_true(in(">=1.5 <2.0", "1.5"));
	assert_true(in(">=1.5 <2.0", "1.9.9"));
	assert_false(in(">=1.5 <2.0", "2.0"));
	assert_false(in(">=1.5 <2.0", "1.4.9"));
	assert_true(in(">= 1.5", "1.10"));		/* operator, space */
	assert_true(in("1.x", "1.0.0"));
	assert_true(in("1.x", "1.99"));
	assert_false(in("1.x", "2.0.0-rc1"));	/* pre-release of the bound */
	assert_false(in("1.x", "0.9"));
	assert_true(in("1.2.*", "1.2.7"));
	assert_false(in("1.2.*", "1.3.0"));
	assert_true(in("^1.2.3", "1.9.0"));
	assert_false(in("^1.2.3", "1.2.2"));
	assert_false(in("^1.2.3", "2.0.0"));
	assert_true(in("^0.2.3", "0.2.9"));
	assert_false(in("^0.2.3", "0.3.0"));
	assert_true(in("~1.2.3", "1.2.9"));
	assert_false(in("~1.2.3", "1.3.0"));
	assert_true(in("~1", "1.7"));
	assert_false(in("~1", "2.0"));
	assert_true(in("=1.0.0", "1.0"));		/* 1.0 == 1.0.0 */
	assert_false(in("=1.0.0", "1.0.1"));
	assert_true(in("1.0.0", "1.0.0"));
	assert_true(in("*", "0.0.1"));
	assert_true(in("", "7"));
	assert_true(in(">1.0 <=1.2", "1.2"));
	assert_false(in(">1.0 <=1.2", "1.0"));
}

static void
test_range_errors(void **state)
{
	struct sched_range	 r;
	char			*cause = NULL;

	assert_int_equal(sched_range_parse("1.x.3", &r, &cause), -1);
	assert_string_equal(cause, "'1.x.3': bad wildcard");
	free(cause);
	assert_int_equal(sched_range_parse(">=", &r, &cause), -1);
	assert_string_equal(cause, "'>=': missing version");
	free(cause);
	assert_int_equal(sched_range_parse("^abc", &r, &cause), -1);
	assert_string_equal(cause, "'^abc': ^ needs a numeric version");
	free(cause);
	assert_int_equal(sched_range_parse(">1 <2 >0 <3 =1", &r, &cause), -1);
	assert_string_equal(cause, "'=1': more than 4 comparators");
	free(cause);
	assert_int_equal(sched_range_parse("1.0;rm", &r, &cause), -1);
	assert_string_equal(cause, "'1.0;rm': bad character in version");
	free(cause);
}

static void
test_windows(void **state)
{
	struct sched_policy	 p;
	int64_t			 next;

	/* 01:00-05:00 every day, UTC. */
	policy_ok(&p, "{\"windows\":[\"01:00-05:00\"],\"utc_offset\":\"Z\"}");
	assert_false(sched_window_open(&p, T_MON + 30 * 60, 0, &next));
	assert_int_equal(next, T_MON + 3600);
	assert_true(sched_window_open(&p, T_MON + 3600, 0, NULL));
	assert_true(sched_window_open(&p, T_MON + 5 * 3600 - 1, 0, NULL));
	assert_false(sched_window_open(&p, T_MON + 5 * 3600, 0, &next));
	assert_int_equal(next, T_MON + 86400 + 3600);	/* tomorrow 01:00 */
	sched_policy_clear(&p);

	/* Crossing midnight, Friday and Saturday nights only. */
	policy_ok(&p, "{\"windows\":\"fri,sat 22:00-03:00\"}");
	/* Monday 01:00: Sunday (day before) not listed: closed. */
	assert_false(sched_window_open(&p, T_MON + 3600, 0, &next));
	assert_int_equal(next, T_MON + 4 * 86400 + 22 * 3600);	/* Fri 22:00 */
	/* Friday 23:00 open, Saturday 02:59 open (Friday's window). */
	assert_true(sched_window_open(&p, T_MON + 4 * 86400 + 23 * 3600, 0,
	    NULL));
	assert_true(sched_window_open(&p, T_MON + 5 * 86400 + 2 * 3600 +
	    59 * 60, 0, NULL));
	/* Sunday 02:00 open (Saturday's), Monday 02:00 closed. */
	assert_true(sched_window_open(&p, T_MON + 6 * 86400 + 2 * 3600, 0,
	    NULL));
	assert_false(sched_window_open(&p, T_MON + 7 * 86400 + 2 * 3600, 0,
	    NULL));
	/* Saturday 12:00: closed until Saturday 22:00. */
	assert_false(sched_window_open(&p, T_MON + 5 * 86400 + 12 * 3600, 0,
	    &next));
	assert_int_equal(next, T_MON + 5 * 86400 + 22 * 3600);
	/* The clock's local offset: UTC+2, Friday 20:30 UTC = 22:30 local. */
	assert_true(sched_window_open(&p, T_MON + 4 * 86400 + 20 * 3600 +
	    1800, 7200, NULL));
	assert_false(sched_window_open(&p, T_MON + 4 * 86400 + 20 * 3600 +
	    1800, 0, &next));
	assert_int_equal(next, T_MON + 4 * 86400 + 22 * 3600);
	sched_policy_clear(&p);

	/* Week-wrapping day range and the policy's own offset. */
	policy_ok(&p, "{\"windows\":[\"sat-mon 00:00-24:00\"],"
	    "\"utc_offset\":\"-05:00\"}");
	/* Monday 03:00 UTC is Sunday 22:00 at -05:00: open. */
	assert_true(sched_window_open(&p, T_MON + 3 * 3600, 3600, NULL));
	/* Tuesday 06:00 UTC = Tuesday 01:00 local: closed till Saturday. */
	assert_false(sched_window_open(&p, T_MON + 86400 + 6 * 3600, 0,
	    &next));
	assert_int_equal(next, T_MON + 5 * 86400 + 5 * 3600);
	sched_policy_clear(&p);

	/* No windows: always open. */
	policy_ok(&p, "{}");
	assert_true(sched_window_open(&p, T_MON, 0, &next));
	assert_int_equal(next, T_MON);
	sched_policy_clear(&p);
}

static void
test_times(void **state)
{
	int64_t		 t;
	uint32_t	 d;
	char		 buf[21], *cause = NULL;

	assert_int_equal(sched_parse_time("2026-11-23T00:00:00Z", &t, NULL), 0);
	assert_int_equal(t, T_MON);
	assert_int_equal(sched_parse_time("2026-11-23T02:00:00+02:00", &t,
	    NULL), 0);
	assert_int_equal(t, T_MON);
	assert_int_equal(sched_parse_time("2026-11-23T00:00:00.25Z", &t,
	    NULL), 0);
	assert_int_equal(t, T_MON);
	sched_format_time(T_MON + 3661, buf);
	assert_string_equal(buf, "2026-11-23T01:01:01Z");
	assert_int_equal(sched_parse_time("2026-02-29T00:00:00Z", &t, &cause),
	    -1);
	assert_string_equal(cause, "'2026-02-29T00:00:00Z': date or time out "
	    "of range");
	free(cause);
	assert_int_equal(sched_parse_time("2026-11-23 00:00", &t, &cause), -1);
	free(cause);
	assert_int_equal(sched_parse_duration("90", &d, NULL), 0);
	assert_int_equal(d, 90);
	assert_int_equal(sched_parse_duration("10m", &d, NULL), 0);
	assert_int_equal(d, 600);
	assert_int_equal(sched_parse_duration("2h", &d, NULL), 0);
	assert_int_equal(d, 7200);
	assert_int_equal(sched_parse_duration("1d", &d, NULL), 0);
	assert_int_equal(d, 86400);
	assert_int_equal(sched_parse_duration("5w", &d, &cause), -1);
	assert_string_equal(cause, "'5w': not a duration (30s, 10m, 2h, 1d)");
	free(cause);
}

static const char *full_policy =
"{"
" \"target\": {\"hw\": [\"sensor-v1\"], \"tags\": [\"north\"],"
"   \"exclude_tags\": [\"lab\"], \"transports\": [\"lan0\"],"
"   \"components\": {\"app\": \">=1.0 <2\"}, \"group\": \"production\"},"
" \"approve\": true,"
" \"stages\": ["
"   {\"name\": \"canary\", \"nodes\": [\"0x1\", 2], \"success\": 100,"
"    \"failure\": 0, \"soak\": \"10m\"},"
"   {\"name\": \"ten\", \"percent\": 10, \"approve\": true},"
"   50, {\"rest\": true, \"failure\": 20}],"
" \"start\": \"2026-11-23T00:00:00Z\","
" \"deadline\": \"2026-11-30T00:00:00Z\","
" \"windows\": [\"mon-fri 01:00-05:00\", \"sat,sun 22:00-06:00\"],"
" \"utc_offset\": \"+01:00\","
" \"gates\": {\"min_battery\": 30, \"min_rssi\": -110, \"min_snr\": -5},"
" \"retry\": {\"count\": 3, \"interval\": \"30s\", \"max_interval\": \"1h\","
"   \"backoff\": 2},"
" \"concurrency\": {\"*\": 100, \"lora0\": 1},"
" \"mode\": \"install-at\", \"install_at\": \"2026-11-24T02:00:00Z\","
" \"node_timeout\": \"2h\", \"listen_weight\": 50, \"step_cost\": 0,"
" \"offload\": \"up\","
" \"requires\": [{\"component\": \"mcu\", \"version\": \"2.x\","
"   \"requires\": \"modem\", \"range\": \">=1.5\"}],"
" \"order\": [\"modem\", \"mcu\"],"
" \"atomic\": [{\"name\": \"radio\", \"components\": [\"modem\", \"mcu\"]}]"
"}";

static void
test_policy_full(void **state)
{
	struct sched_policy	 p, q;
	const char		 hw[1][CACHE_NAME_MAX + 1] = { "sensor-v1" };
	char			*cause = NULL;

	assert_int_equal(sched_policy_parse("d1", hw, 1, NULL, 0, full_policy,
	    &p, &cause), 0);
	assert_int_equal(p.target.nhw, 1);
	assert_int_equal(p.target.nphw, 1);
	assert_int_equal(p.target.ntags, 1);
	assert_string_equal(p.target.xtags[0], "lab");
	assert_string_equal(p.target.comp[0].component, "app");
	assert_int_equal(p.target.group, SCHED_GROUP_PRODUCTION);
	assert_true(p.approve);
	assert_int_equal(p.nstages, 4);
	assert_int_equal(p.stages[0].sel, SCHED_SEL_NODES);
	assert_int_equal(p.stages[0].nnodes, 2);
	assert_int_equal(p.stages[0].nodes[0], 1);
	assert_int_equal(p.stages[0].nodes[1], 2);
	assert_int_equal(p.stages[0].soak_s, 600);
	assert_int_equal(p.stages[0].failure_pct, 0);
	assert_int_equal(p.stages[1].sel, SCHED_SEL_PERCENT);
	assert_true(p.stages[1].approve);
	assert_int_equal(p.stages[1].success_pct, 90);	/* default */
	assert_int_equal(p.stages[2].amount, 50);
	assert_string_equal(p.stages[2].name, "stage3");
	assert_int_equal(p.stages[3].sel, SCHED_SEL_REST);
	assert_int_equal(p.start, T_MON);
	assert_int_equal(p.deadline, T_MON + 7 * 86400);
	assert_int_equal(p.nwindows, 2);
	assert_int_equal(p.windows[0].days, 0x1f);
	assert_int_equal(p.windows[1].days, 0x60);
	assert_int_equal(p.windows[1].start_min, 22 * 60);
	assert_int_equal(p.windows[1].end_min, 6 * 60);
	assert_int_equal(p.utc_offset_s, 3600);
	assert_int_equal(p.min_battery, 30);
	assert_int_equal(p.min_rssi_dbm, -110);
	assert_int_equal(p.min_snr_db, -5);
	assert_int_equal(p.retries, 3);
	assert_int_equal(p.retry_interval_s, 30);
	assert_int_equal(p.retry_max_s, 3600);
	assert_int_equal(p.concurrency, 100);
	assert_int_equal(p.nconc, 1);
	assert_int_equal(p.conc[0].max, 1);
	assert_int_equal(p.mode, SCHED_MODE_INSTALL_AT);
	assert_int_equal(p.install_at, T_MON + 86400 + 7200);
	assert_int_equal(p.node_timeout_s, 7200);
	assert_int_equal(p.listen_pct, 50);
	assert_int_equal(p.offload, SCHED_OFFLOAD_UP);
	assert_int_equal(p.nrequires, 1);
	assert_true(sched_range_match(&p.requires[0].when, "2.3"));
	assert_false(sched_range_match(&p.requires[0].range, "1.4"));
	assert_int_equal(p.norder, 2);
	assert_int_equal(p.natomic, 1);
	assert_int_equal(p.atomic[0].ncomp, 2);
	/* The copy is deep, and the stored JSON reparses to the same. */
	assert_int_equal(sched_policy_copy(&q, &p), 0);
	assert_ptr_not_equal(q.json, p.json);
	assert_string_equal(q.json, p.json);
	sched_policy_clear(&q);
	assert_int_equal(sched_policy_parse("d1", hw, 1, NULL, 0, p.json, &q,
	    NULL), 0);
	assert_int_equal(q.nstages, 4);
	assert_string_equal(q.json, p.json);
	sched_policy_clear(&q);
	sched_policy_clear(&p);

	/* Defaults and the manifest doc's shorthand "stages": [10, 100]. */
	policy_ok(&p, "{\"stages\":[10,100]}");
	assert_int_equal(p.nstages, 2);
	assert_int_equal(p.stages[1].amount, 100);
	assert_int_equal(p.retries, 2);
	assert_int_equal(p.mode, SCHED_MODE_INSTALL_NOW);
	sched_policy_clear(&p);
	policy_ok(&p, NULL);
	assert_int_equal(p.nstages, 0);
	assert_string_equal(p.json, "{}");
	sched_policy_clear(&p);
}

static const struct {
	const char	*json;
	const char	*err;
} bad[] = {
	{ "{\"windows\":[\"01:00-05:00\",\"25:00-03:00\"]}",
	  "deployment 'd1': policy.windows[1]: '25:00-03:00': hour out of "
	  "range" },
	{ "{\"windows\":[\"01:60-05:00\"]}",
	  "deployment 'd1': policy.windows[0]: '01:60-05:00': minute out of "
	  "range" },
	{ "{\"windows\":[\"xyz 01:00-05:00\"]}",
	  "deployment 'd1': policy.windows[0]: 'xyz 01:00-05:00': bad day "
	  "'xyz' (mon..sun)" },
	{ "{\"windows\":[\"03:00-03:00\"]}",
	  "deployment 'd1': policy.windows[0]: '03:00-03:00': empty window" },
	/* Issue 7: parsed to a window with no days that never opened. */
	{ "{\"windows\":[\"00:00-04:00\",\" 00:00-03:00\"]}",
	  "deployment 'd1': policy.windows[1]: ' 00:00-03:00': leading "
	  "space (expected [DAYS ]HH:MM-HH:MM)" },
	{ "{\"windows\":[\"mon, 00:00-03:00\"]}",
	  "deployment 'd1': policy.windows[0]: 'mon, 00:00-03:00': day list "
	  "ends in ','" },
	/* Issue 7: a range that matches nothing at all. */
	{ "{\"target\":{\"components\":{\"app\":\">=2.0 <1.0\"}}}",
	  "deployment 'd1': policy.target.components.app: '>=2.0 <1.0': "
	  "matches no version" },
	{ "{\"target\":{\"components\":{\"app\":\"1.0 1.1\"}}}",
	  "deployment 'd1': policy.target.components.app: '1.0 1.1': "
	  "matches no version" },
	{ "{\"target\":{\"components\":{\"app\":\">1.0 <=1.0\"}}}",
	  "deployment 'd1': policy.target.components.app: '>1.0 <=1.0': "
	  "matches no version" },
	{ "{\"windows\":[\"1-5\"]}",
	  "deployment 'd1': policy.windows[0]: '1-5': expected [DAYS "
	  "]HH:MM-HH:MM" },
	{ "{\"window\":\"night\"}",
	  "deployment 'd1': policy: unknown member 'window'" },
	{ "{\"stages\":[{\"percent\":150}]}",
	  "deployment 'd1': policy.stages[0].percent: 150: not in 1..100" },
	{ "{\"stages\":[50, 10]}",
	  "deployment 'd1': policy.stages[1]: percent 10 after 50: "
	  "percentages are cumulative and cannot shrink" },
	{ "{\"stages\":[{\"count\":3,\"percent\":5}]}",
	  "deployment 'd1': policy.stages[0]: needs exactly one of nodes, "
	  "tags, count, percent, rest" },
	{ "{\"stages\":[{\"nodes\":[\"0xzz\"]}]}",
	  "deployment 'd1': policy.stages[0].nodes[0]: '0xzz': not a node "
	  "id" },
	{ "{\"stages\":[{\"name\":\"a\",\"count\":1},"
	  "{\"name\":\"a\",\"count\":1}]}",
	  "deployment 'd1': policy.stages[1]: name 'a' repeated" },
	{ "{\"target\":{\"components\":{\"app\":\">=1.0!\"}}}",
	  "deployment 'd1': policy.target.components.app: '>=1.0!': bad "
	  "character in version" },
	{ "{\"target\":{\"group\":\"beta\"}}",
	  "deployment 'd1': policy.target.group: 'beta': not all, test or "
	  "production" },
	{ "{\"requires\":[{\"component\":\"mcu\",\"requires\":\"modem\","
	  "\"range\":\"~x\"}]}",
	  "deployment 'd1': policy.requires[0].range: '~x': ~ needs a "
	  "numeric version" },
	{ "{\"requires\":[{\"component\":\"mcu\",\"requires\":\"mcu\","
	  "\"range\":\"1\"}]}",
	  "deployment 'd1': policy.requires[0].requires: 'mcu' cannot require "
	  "itself" },
	{ "{\"offload\":\"yes\"}",
	  "deployment 'd1': policy.offload: 'yes': not auto, module or up" },
	{ "{\"mode\":\"install-at\"}",
	  "deployment 'd1': policy.install_at: missing (required by mode "
	  "install-at)" },
	{ "{\"install_at\":\"2026-11-24T02:00:00Z\"}",
	  "deployment 'd1': policy.install_at: only with mode install-at" },
	{ "{\"start\":\"2026-11-24T00:00:00Z\","
	  "\"deadline\":\"2026-11-23T00:00:00Z\"}",
	  "deployment 'd1': policy.deadline: not after the start" },
	{ "{\"retry\":{\"interval\":\"soon\"}}",
	  "deployment 'd1': policy.retry.interval: 'soon': not a duration "
	  "(30s, 10m, 2h, 1d)" },
	{ "{\"gates\":{\"min_battery\":101}}",
	  "deployment 'd1': policy.gates.min_battery: 101: not in 0..100" },
	{ "{\"atomic\":[{\"name\":\"a\",\"components\":[\"x\"]}]}",
	  "deployment 'd1': policy.atomic[0]: one component on each node is "
	  "not a group" },
	{ "{\"utc_offset\":\"CET\"}",
	  "deployment 'd1': policy.utc_offset: 'CET': not +HH:MM" },
	{ "[]", "deployment 'd1': policy: not an object" },
	{ "{\"approve\":true,\"approve\":false}",
	  "deployment 'd1': policy: line 1: duplicate object key near "
	  "'\"approve\"'" },
};

static void
test_policy_errors(void **state)
{
	size_t	 i;
	char	*e;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		e = policy_err(bad[i].json);
		if (strcmp(e, bad[i].err) != 0)
			fprintf(stderr, "case %zu:\n got  %s\n want %s\n", i,
			    e, bad[i].err);
		assert_string_equal(e, bad[i].err);
		free(e);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ranges),
		cmocka_unit_test(test_range_errors),
		cmocka_unit_test(test_windows),
		cmocka_unit_test(test_times),
		cmocka_unit_test(test_policy_full),
		cmocka_unit_test(test_policy_errors),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
