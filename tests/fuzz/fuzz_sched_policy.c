/*
 * fuzz_sched_policy.c: sched_policy_parse on arbitrary bytes.  Whatever
 * the input, it returns a policy within its bounds or -1 with a cause;
 * a policy that parsed reparses from its stored JSON to the same, has
 * its names checked against a small fleet (an error has a cause, the
 * warnings are an array), plans over it and ticks without trouble.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sched.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static int64_t
fz_now(void *arg)
{
	return (*(int64_t *)arg);
}

static int32_t
fz_off(void *arg, int64_t t)
{
	return (3600);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct sched_policy	 p, q;
	struct sched_campaign	*c;
	struct sched_node	 n[3];
	struct cache_pkg	 pk[2];
	struct sched_out	 out = { 0, 0, NULL };
	struct sched_clock	 clk;
	int64_t			 now = 1795392000LL;
	char			*s, *cause = NULL;
	size_t			 i;

	if ((s = malloc(len + 1)) == NULL)
		return (0);
	memcpy(s, data, len);
	s[len] = '\0';
	if (sched_policy_parse("fz", NULL, 0, NULL, 0, s, &p, &cause) != 0) {
		if (cause == NULL || cause[0] == '\0')
			abort();
		free(cause);
		free(s);
		return (0);
	}
	free(s);
	if (cause != NULL || p.nstages > SCHED_MAX_STAGES ||
	    p.nwindows > SCHED_MAX_WINDOWS || p.nrequires >
	    SCHED_MAX_REQUIRES || p.natomic > SCHED_MAX_ATOMIC ||
	    p.nconc > SCHED_MAX_CONC || p.json == NULL)
		abort();
	for (i = 0; i < p.nwindows; i++)
		if (p.windows[i].start_min >= 1440 ||
		    p.windows[i].end_min > 1440 || p.windows[i].days == 0 ||
		    p.windows[i].start_min == p.windows[i].end_min)
			abort();
	if (sched_policy_parse("fz", NULL, 0, NULL, 0, p.json, &q, NULL) != 0 ||
	    strcmp(q.json, p.json) != 0 || q.nstages != p.nstages)
		abort();
	sched_policy_clear(&q);

	memset(pk, 0, sizeof(pk));
	strcpy(pk[0].id, "a");
	strcpy(pk[0].component, "app");
	strcpy(pk[0].version, "2.0");
	pk[0].size = 100;
	pk[1] = pk[0];
	strcpy(pk[1].id, "m");
	strcpy(pk[1].component, "modem");
	for (i = 0; i < 3; i++) {
		sched_node_init(&n[i], i + 1);
		strcpy(n[i].hw, "s1");
		n[i].ncomp = 2;
		strcpy(n[i].comp[0].name, "app");
		strcpy(n[i].comp[0].version, "1.0");
		strcpy(n[i].comp[1].name, "modem");
		strcpy(n[i].comp[1].version, "1.0");
	}
	n[1].parent = 1;
	n[0].role = SCHED_ROLE_RELAY;
	/* The names the policy uses, against what this fleet knows. */
	{
		static const char *const tps[] = { "lan0" };
		struct sched_known	 k = { pk, 2, 1, n, 3, tps, 1 };
		json_t			*w;

		if (sched_policy_check(&p, &k, &cause) != 0) {
			if (cause == NULL || cause[0] == '\0')
				abort();
			free(cause);
			cause = NULL;
		}
		if ((w = sched_policy_warnings(&p, &k)) == NULL ||
		    !json_is_array(w))
			abort();
		json_decref(w);
	}
	c = sched_campaign_plan("fz", &p, pk, 2, n, 3, now, &cause);
	if (c == NULL) {
		if (cause == NULL)
			abort();
		free(cause);
	} else {
		clk.now = fz_now;
		clk.utc_offset = fz_off;
		clk.arg = &now;
		for (i = 0; i < 4; i++) {
			if (sched_tick(c, &clk, &out) < 0)
				abort();
			sched_item_result(c, 1, "app", UP_R_SUCCESS, 1, now);
			sched_item_result(c, 2, "modem", UP_R_CONN_LOST, 1,
			    now);
			now += 3600;
		}
		json_decref(sched_report_json(c));
		free(sched_report_csv(c));
		sched_campaign_free(c);
		sched_out_free(&out);
	}
	sched_policy_clear(&p);
	return (0);
}
