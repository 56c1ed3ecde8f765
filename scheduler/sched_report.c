/*
 * sched_report.c: the campaign as JSON (control socket, report stream)
 * and CSV (`upctl campaign <id> export --csv').
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sched_internal.h"

static json_t *
jtime(int64_t t)
{
	char	 buf[21];

	if (t == 0)
		return (json_null());
	sched_format_time(t, buf);
	return (json_string(buf));
}

static const char *
path_str(const struct sched_campaign *c, const struct sched_item *it)
{
	size_t	 i;

	if (it->nsteps == 0)
		return ("none");
	if (it->nsteps > 1)
		return ("chain");
	for (i = 0; i < c->npkgs; i++)
		if (strcmp(c->pkgs[i].id, it->steps[0]) == 0)
			return (c->pkgs[i].kind == UP_KIND_DELTA ? "delta" :
			    "full");
	return ("?");
}

/*
 * From the first attempt's start to the last one's end, in milliseconds
 * as the caller measured them (sched_item_attempt); without them, the
 * item's own times, which are whole seconds.
 */
static int64_t
duration_ms(const struct sched_item *it)
{
	if (it->started_ms != 0 && it->finished_ms >= it->started_ms)
		return (it->finished_ms - it->started_ms);
	if (it->started == 0 || it->finished < it->started)
		return (0);
	return ((it->finished - it->started) * 1000);
}

json_t *
sched_item_json(const struct sched_campaign *c, size_t i)
{
	const struct sched_item	*it = &c->items[i];
	json_t			*o, *a;
	char			 id[24];
	int			 s, st;

	snprintf(id, sizeof(id), "0x%016" PRIx64, it->node_id);
	st = c->members[it->member].stage;
	a = json_array();
	for (s = 0; s < it->nsteps; s++)
		json_array_append_new(a, json_string(it->steps[s]));
	o = json_object();
	json_object_set_new(o, "type", json_string("result"));
	json_object_set_new(o, "node", json_string(id));
	json_object_set_new(o, "campaign", json_string(c->id));
	json_object_set_new(o, "deployment",
	    json_string(c->policy.deployment));
	json_object_set_new(o, "component", json_string(it->component));
	json_object_set_new(o, "from", json_string(it->from));
	json_object_set_new(o, "to", json_string(it->to));
	json_object_set_new(o, "path", json_string(path_str(c, it)));
	json_object_set_new(o, "packages", a);
	json_object_set_new(o, "stage", json_string(st >= 0 &&
	    st < (int)c->nstages ? c->stages[st].name : ""));
	json_object_set_new(o, "state", json_string(
	    sched_istate_str(it->state)));
	/* The last word on the item, or not (docs/campaigns.md, Reports). */
	json_object_set_new(o, "final", json_boolean(
	    sched_item_final_record(it)));
	json_object_set_new(o, "result", json_integer(it->result));
	json_object_set_new(o, "result_str",
	    json_string(up_result_str(it->result)));
	json_object_set_new(o, "reason", json_string(it->reason));
	json_object_set_new(o, "wait", json_string(it->wait));
	json_object_set_new(o, "bytes", json_integer((json_int_t)it->bytes));
	json_object_set_new(o, "bytes_sent",
	    json_integer((json_int_t)it->bytes_sent));
	json_object_set_new(o, "retries", json_integer(it->tries > 0 ?
	    it->tries - 1 : 0));
	json_object_set_new(o, "duration_ms", json_integer(duration_ms(it)));
	json_object_set_new(o, "started", jtime(it->started));
	json_object_set_new(o, "finished", jtime(it->finished));
	return (o);
}

json_t *
sched_report_json(const struct sched_campaign *c)
{
	struct sched_counts	 k;
	json_t			*o, *a, *s;
	size_t			 i;

	o = json_object();
	json_object_set_new(o, "id", json_string(c->id));
	json_object_set_new(o, "deployment",
	    json_string(c->policy.deployment));
	json_object_set_new(o, "state", json_string(sched_cstate_str(
	    c->state)));
	json_object_set_new(o, "reason", json_string(c->reason));
	json_object_set_new(o, "stage", json_string(c->nstages > 0 ?
	    c->stages[c->stage].name : ""));
	json_object_set_new(o, "created", jtime(c->created));
	json_object_set_new(o, "started", jtime(c->started));
	json_object_set_new(o, "finished", jtime(c->finished));
	/* A finished campaign has nothing to wake for. */
	json_object_set_new(o, "next_wake", c->next_wake == INT64_MAX ||
	    c->state == SCHED_C_DONE || c->state == SCHED_C_CANCELLED ?
	    json_null() : jtime(c->next_wake));
	a = json_array();
	for (i = 0; i < c->nstages; i++) {
		sched_stage_counts(c, (int)i, &k);
		s = json_object();
		json_object_set_new(s, "name", json_string(c->stages[i].name));
		json_object_set_new(s, "state",
		    json_string(sched_sstate_str(c->srt[i].state)));
		json_object_set_new(s, "nodes", json_integer(k.nodes));
		json_object_set_new(s, "pending", json_integer(k.pending));
		json_object_set_new(s, "active", json_integer(k.active));
		json_object_set_new(s, "succeeded", json_integer(k.succeeded));
		json_object_set_new(s, "failed", json_integer(k.failed));
		json_object_set_new(s, "skipped", json_integer(k.skipped));
		json_object_set_new(s, "cancelled", json_integer(k.cancelled));
		json_object_set_new(s, "expired", json_integer(k.expired));
		json_object_set_new(s, "success_rate",
		    json_integer(k.success_pct));
		json_object_set_new(s, "success_threshold",
		    json_integer(c->stages[i].success_pct));
		json_object_set_new(s, "failure_limit",
		    json_integer(c->stages[i].failure_pct));
		json_object_set_new(s, "started", jtime(c->srt[i].started));
		json_object_set_new(s, "finished", jtime(c->srt[i].finished));
		json_array_append_new(a, s);
	}
	json_object_set_new(o, "stages", a);
	a = json_array();
	for (i = 0; i < c->nitems; i++)
		json_array_append_new(a, sched_item_json(c, i));
	json_object_set_new(o, "items", a);
	return (o);
}

json_t *
sched_event_json(const struct sched_campaign *c,
    const struct sched_decision *d)
{
	json_t	*o;

	o = json_object();
	json_object_set_new(o, "type", json_string("campaign"));
	json_object_set_new(o, "campaign", json_string(c->id));
	json_object_set_new(o, "deployment",
	    json_string(c->policy.deployment));
	json_object_set_new(o, "event", json_string(sched_event_str(
	    d->event)));
	json_object_set_new(o, "stage", json_string(d->stage >= 0 &&
	    d->stage < (int)c->nstages ? c->stages[d->stage].name : ""));
	json_object_set_new(o, "state", json_string(sched_cstate_str(
	    c->state)));
	json_object_set_new(o, "reason", json_string(d->text));
	return (o);
}

/* Appends to a growing buffer; returns -1 on allocation failure. */
struct buf {
	char	*s;
	size_t	 len, cap;
};

static int
buf_add(struct buf *b, const char *s, size_t n)
{
	char	*t;
	size_t	 cap;

	if (b->len + n + 1 > b->cap) {
		cap = b->cap ? b->cap : 1024;
		while (cap < b->len + n + 1)
			cap *= 2;
		if ((t = realloc(b->s, cap)) == NULL)
			return (-1);
		b->s = t;
		b->cap = cap;
	}
	memcpy(b->s + b->len, s, n);
	b->len += n;
	b->s[b->len] = '\0';
	return (0);
}

/* RFC 4180 §2: quote a field holding a comma, quote, CR or LF. */
static int
csv_field(struct buf *b, const char *s, int last)
{
	const char	*p;

	if (strpbrk(s, ",\"\r\n") == NULL) {
		if (buf_add(b, s, strlen(s)) == -1)
			return (-1);
	} else {
		if (buf_add(b, "\"", 1) == -1)
			return (-1);
		for (p = s; *p != '\0'; p++)
			if (buf_add(b, p, 1) == -1 ||
			    (*p == '"' && buf_add(b, "\"", 1) == -1))
				return (-1);
		if (buf_add(b, "\"", 1) == -1)
			return (-1);
	}
	return (buf_add(b, last ? "\r\n" : ",", last ? 2 : 1));
}

char *
sched_report_csv(const struct sched_campaign *c)
{
	static const char *const head[] = { "campaign", "deployment",
	    "node", "component", "from", "to", "path", "packages", "stage",
	    "state", "result", "result_str", "reason", "bytes", "bytes_sent",
	    "retries", "duration_ms", "started", "finished" };
	const size_t		 nh = sizeof(head) / sizeof(head[0]);
	struct buf		 b = { NULL, 0, 0 };
	const struct sched_item	*it;
	char			 f[19][SCHED_REASON_MAX + 1], t[21];
	size_t			 i, j;
	int			 s, st;

	for (j = 0; j < nh; j++)
		if (csv_field(&b, head[j], j == nh - 1) == -1)
			goto oom;
	for (i = 0; i < c->nitems; i++) {
		it = &c->items[i];
		st = c->members[it->member].stage;
		snprintf(f[0], sizeof(f[0]), "%s", c->id);
		snprintf(f[1], sizeof(f[1]), "%s", c->policy.deployment);
		snprintf(f[2], sizeof(f[2]), "0x%016" PRIx64, it->node_id);
		snprintf(f[3], sizeof(f[3]), "%s", it->component);
		snprintf(f[4], sizeof(f[4]), "%s", it->from);
		snprintf(f[5], sizeof(f[5]), "%s", it->to);
		snprintf(f[6], sizeof(f[6]), "%s", path_str(c, it));
		f[7][0] = '\0';
		for (s = 0; s < it->nsteps; s++)
			snprintf(f[7] + strlen(f[7]), sizeof(f[7]) -
			    strlen(f[7]), "%s%s", s ? " " : "", it->steps[s]);
		snprintf(f[8], sizeof(f[8]), "%s", st >= 0 && st <
		    (int)c->nstages ? c->stages[st].name : "");
		snprintf(f[9], sizeof(f[9]), "%s", sched_istate_str(it->state));
		snprintf(f[10], sizeof(f[10]), "%d", it->result);
		snprintf(f[11], sizeof(f[11]), "%s", up_result_str(it->result));
		snprintf(f[12], sizeof(f[12]), "%s", it->reason[0] ?
		    it->reason : it->wait);
		snprintf(f[13], sizeof(f[13]), "%" PRIu64, it->bytes);
		snprintf(f[14], sizeof(f[14]), "%" PRIu64, it->bytes_sent);
		snprintf(f[15], sizeof(f[15]), "%u", it->tries > 0 ?
		    it->tries - 1 : 0);
		snprintf(f[16], sizeof(f[16]), "%" PRId64, duration_ms(it));
		f[17][0] = f[18][0] = '\0';
		if (it->started != 0) {
			sched_format_time(it->started, t);
			snprintf(f[17], sizeof(f[17]), "%s", t);
		}
		if (it->finished != 0) {
			sched_format_time(it->finished, t);
			snprintf(f[18], sizeof(f[18]), "%s", t);
		}
		for (j = 0; j < nh; j++)
			if (csv_field(&b, f[j], j == nh - 1) == -1)
				goto oom;
	}
	return (b.s);
oom:
	free(b.s);
	return (NULL);
}
