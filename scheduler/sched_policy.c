/*
 * sched_policy.c: the deployment's policy object (docs/campaigns.md,
 * "Policy").  Parsed whole with jansson before anything is applied;
 * unknown members are errors (a misspelt optional member must not pass
 * as absent), every error names its item with a JSON path.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sched_internal.h"

struct pctx {
	const char	*dep;
	char		**cause;
	char		 path[128];
};

static int
perr(struct pctx *x, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int
perr(struct pctx *x, const char *fmt, ...)
{
	va_list	 ap;
	char	*msg;

	if (x->cause == NULL)
		return (-1);
	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) == -1)
		msg = NULL;
	va_end(ap);
	if (asprintf(x->cause, "deployment '%s': policy%s: %s", x->dep,
	    x->path, msg != NULL ? msg : "?") == -1)
		*x->cause = NULL;
	free(msg);
	return (-1);
}

/* Appends to the error path; returns the old length for pop(). */
static size_t
push(struct pctx *x, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static size_t
push(struct pctx *x, const char *fmt, ...)
{
	size_t	 n = strlen(x->path);
	va_list	 ap;

	va_start(ap, fmt);
	vsnprintf(x->path + n, sizeof(x->path) - n, fmt, ap);
	va_end(ap);
	return (n);
}

static void
pop(struct pctx *x, size_t n)
{
	x->path[n] = '\0';
}

/* Takes a cause from a helper and re-raises it with the path. */
static int
perr_cause(struct pctx *x, char *sub)
{
	int	 rc;

	rc = perr(x, "%s", sub != NULL ? sub : "invalid");
	free(sub);
	return (rc);
}

static int
check_members(struct pctx *x, json_t *o, const char *const *known)
{
	const char	*k;
	json_t		*v;
	size_t		 i;

	json_object_foreach(o, k, v) {
		for (i = 0; known[i] != NULL; i++)
			if (strcmp(k, known[i]) == 0)
				break;
		if (known[i] == NULL)
			return (perr(x, "unknown member '%s'", k));
	}
	return (0);
}

/* A name: 1..max bytes, printable, no space, quote, comma or backslash. */
static int
get_name(struct pctx *x, json_t *v, char *dst, size_t max)
{
	const char	*s;
	size_t		 i;

	if (!json_is_string(v))
		return (perr(x, "not a string"));
	s = json_string_value(v);
	if (*s == '\0')
		return (perr(x, "empty"));
	if (strlen(s) > max)
		return (perr(x, "'%s': longer than %zu bytes", s, max));
	for (i = 0; s[i] != '\0'; i++)
		if (!isgraph((unsigned char)s[i]) || s[i] == '"' ||
		    s[i] == ',' || s[i] == '\\')
			return (perr(x, "'%s': bad character", s));
	strcpy(dst, s);
	return (0);
}

static int
get_int(struct pctx *x, json_t *v, json_int_t lo, json_int_t hi,
    json_int_t *out)
{
	if (!json_is_integer(v))
		return (perr(x, "not an integer"));
	*out = json_integer_value(v);
	if (*out < lo || *out > hi)
		return (perr(x, "%" JSON_INTEGER_FORMAT ": not in %"
		    JSON_INTEGER_FORMAT "..%" JSON_INTEGER_FORMAT, *out, lo,
		    hi));
	return (0);
}

static int
get_bool(struct pctx *x, json_t *v, int *out)
{
	if (!json_is_boolean(v))
		return (perr(x, "not true or false"));
	*out = json_is_true(v);
	return (0);
}

static int
get_dur(struct pctx *x, json_t *v, uint32_t *out)
{
	char	*sub = NULL;

	if (json_is_integer(v)) {
		if (json_integer_value(v) < 0 ||
		    json_integer_value(v) > 366 * 86400)
			return (perr(x, "%" JSON_INTEGER_FORMAT ": not a "
			    "duration", json_integer_value(v)));
		*out = (uint32_t)json_integer_value(v);
		return (0);
	}
	if (!json_is_string(v))
		return (perr(x, "not a duration"));
	if (sched_parse_duration(json_string_value(v), out, &sub) == -1)
		return (perr_cause(x, sub));
	return (0);
}

static int
get_time(struct pctx *x, json_t *v, int64_t *out)
{
	char	*sub = NULL;

	if (json_is_integer(v)) {
		if (json_integer_value(v) < 0)
			return (perr(x, "negative time"));
		*out = json_integer_value(v);
		return (0);
	}
	if (!json_is_string(v))
		return (perr(x, "not a time"));
	if (sched_parse_time(json_string_value(v), out, &sub) == -1)
		return (perr_cause(x, sub));
	return (0);
}

static int
get_node_id(struct pctx *x, json_t *v, uint64_t *out)
{
	const char		*s;
	char			*end;
	unsigned long long	 u;

	if (json_is_integer(v)) {
		if (json_integer_value(v) <= 0)
			return (perr(x, "not a node id"));
		*out = (uint64_t)json_integer_value(v);
		return (0);
	}
	if (!json_is_string(v))
		return (perr(x, "not a node id"));
	s = json_string_value(v);
	errno = 0;
	if (strncmp(s, "0x", 2) == 0 || strncmp(s, "0X", 2) == 0) {
		/* strtoull would take a sign or spaces: digits only. */
		if (s[2] == '\0' || strspn(s + 2, "0123456789abcdefABCDEF") !=
		    strlen(s + 2))
			return (perr(x, "'%s': not a node id", s));
		u = strtoull(s + 2, &end, 16);
	} else {
		if (*s == '\0' || strspn(s, "0123456789") != strlen(s))
			return (perr(x, "'%s': not a node id", s));
		u = strtoull(s, &end, 10);
	}
	if (*end != '\0' || errno != 0 || u == 0)
		return (perr(x, "'%s': not a node id", s));
	*out = u;
	return (0);
}

/* An array of names into dst[max][len]; no repeats. */
static int
get_names(struct pctx *x, json_t *v, char *dst, size_t len, size_t max,
    size_t *n)
{
	json_t	*e;
	size_t	 i, j, p;

	if (!json_is_array(v))
		return (perr(x, "not an array"));
	if (json_array_size(v) > max)
		return (perr(x, "more than %zu entries", max));
	json_array_foreach(v, i, e) {
		p = push(x, "[%zu]", i);
		if (get_name(x, e, dst + (*n + i) * len, len - 1) == -1)
			return (-1);
		for (j = 0; j < *n + i; j++)
			if (strcmp(dst + j * len, dst + (*n + i) * len) == 0)
				return (perr(x, "'%s': repeated",
				    dst + j * len));
		pop(x, p);
	}
	*n += json_array_size(v);
	return (0);
}

static int
get_range(struct pctx *x, json_t *v, struct sched_range *r)
{
	char	*sub = NULL;

	if (!json_is_string(v))
		return (perr(x, "not a version range"));
	if (sched_range_parse(json_string_value(v), r, &sub) == -1)
		return (perr_cause(x, sub));
	return (0);
}

/* ------------------------------------------------------------------ */

static int
parse_target(struct pctx *x, json_t *o, struct sched_policy *p)
{
	static const char *const known[] = { "hw", "tags", "exclude_tags",
	    "transports", "components", "group", "test_tag", NULL };
	struct sched_target	*t = &p->target;
	const char		*k, *g;
	json_t			*v;
	size_t			 n;

	if (!json_is_object(o))
		return (perr(x, "not an object"));
	if (check_members(x, o, known) == -1)
		return (-1);
	json_object_foreach(o, k, v) {
		n = push(x, ".%s", k);
		if (strcmp(k, "hw") == 0) {
			if (get_names(x, v, &t->phw[0][0], sizeof(t->phw[0]),
			    CACHE_HW_MAX, &t->nphw) == -1)
				return (-1);
		} else if (strcmp(k, "tags") == 0) {
			if (json_is_array(v) && json_array_size(v) +
			    t->ntags > 2 * SCHED_MAX_TAGS)
				return (perr(x, "more than %d tags with the "
				    "deployment's", 2 * SCHED_MAX_TAGS));
			if (get_names(x, v, &t->tags[0][0], sizeof(t->tags[0]),
			    2 * SCHED_MAX_TAGS - t->ntags, &t->ntags) == -1)
				return (-1);
		} else if (strcmp(k, "exclude_tags") == 0) {
			if (get_names(x, v, &t->xtags[0][0],
			    sizeof(t->xtags[0]), SCHED_MAX_TAGS,
			    &t->nxtags) == -1)
				return (-1);
		} else if (strcmp(k, "transports") == 0) {
			if (get_names(x, v, &t->transports[0][0],
			    sizeof(t->transports[0]), SCHED_MAX_TRANSPORTS,
			    &t->ntransports) == -1)
				return (-1);
		} else if (strcmp(k, "components") == 0) {
			const char	*ck;
			json_t		*cv;
			size_t		 m;

			if (!json_is_object(v))
				return (perr(x, "not an object"));
			if (json_object_size(v) > UP_MAX_COMPONENTS)
				return (perr(x, "more than %d components",
				    UP_MAX_COMPONENTS));
			json_object_foreach(v, ck, cv) {
				m = push(x, ".%s", ck);
				if (strlen(ck) == 0 || strlen(ck) >
				    CACHE_NAME_MAX)
					return (perr(x, "bad component name"));
				strcpy(t->comp[t->ncomp].component, ck);
				if (get_range(x, cv,
				    &t->comp[t->ncomp].range) == -1)
					return (-1);
				t->ncomp++;
				pop(x, m);
			}
		} else if (strcmp(k, "group") == 0) {
			if (!json_is_string(v))
				return (perr(x, "not a string"));
			g = json_string_value(v);
			if (strcmp(g, "all") == 0)
				t->group = SCHED_GROUP_ALL;
			else if (strcmp(g, "test") == 0)
				t->group = SCHED_GROUP_TEST;
			else if (strcmp(g, "production") == 0)
				t->group = SCHED_GROUP_PRODUCTION;
			else
				return (perr(x, "'%s': not all, test or "
				    "production", g));
		} else if (strcmp(k, "test_tag") == 0) {
			if (get_name(x, v, t->test_tag, CACHE_NAME_MAX) == -1)
				return (-1);
		}
		pop(x, n);
	}
	return (0);
}

static int
parse_stage(struct pctx *x, json_t *o, struct sched_policy *p, size_t idx,
    uint32_t *last_pct)
{
	static const char *const known[] = { "name", "nodes", "tags",
	    "count", "percent", "rest", "success", "failure", "soak",
	    "approve", NULL };
	struct sched_stage	*s = &p->stages[idx];
	const char		*k;
	json_t			*v, *e;
	json_int_t		 iv;
	size_t			 n, m, i, j;
	int			 nsel = 0, b;

	snprintf(s->name, sizeof(s->name), "stage%zu", idx + 1);
	s->success_pct = 90;
	s->failure_pct = 10;
	if (json_is_integer(o)) {
		/* Shorthand: a number is a cumulative percentage. */
		if (get_int(x, o, 1, 100, &iv) == -1)
			return (-1);
		s->sel = SCHED_SEL_PERCENT;
		s->amount = (uint32_t)iv;
		goto check_pct;
	}
	if (!json_is_object(o))
		return (perr(x, "not an object or a percentage"));
	if (check_members(x, o, known) == -1)
		return (-1);
	json_object_foreach(o, k, v) {
		n = push(x, ".%s", k);
		if (strcmp(k, "name") == 0) {
			if (get_name(x, v, s->name, SCHED_NAME_MAX) == -1)
				return (-1);
		} else if (strcmp(k, "nodes") == 0) {
			nsel++;
			s->sel = SCHED_SEL_NODES;
			if (!json_is_array(v) || json_array_size(v) == 0)
				return (perr(x, "not a non-empty array"));
			if (json_array_size(v) > SCHED_MAX_STAGE_NODES)
				return (perr(x, "more than %d nodes",
				    SCHED_MAX_STAGE_NODES));
			json_array_foreach(v, i, e) {
				m = push(x, "[%zu]", i);
				if (get_node_id(x, e, &s->nodes[i]) == -1)
					return (-1);
				for (j = 0; j < i; j++)
					if (s->nodes[j] == s->nodes[i])
						return (perr(x, "repeated "
						    "node"));
				pop(x, m);
			}
			s->nnodes = json_array_size(v);
		} else if (strcmp(k, "tags") == 0) {
			nsel++;
			s->sel = SCHED_SEL_TAGS;
			if (get_names(x, v, &s->tags[0][0], sizeof(s->tags[0]),
			    SCHED_MAX_TAGS, &s->ntags) == -1)
				return (-1);
			if (s->ntags == 0)
				return (perr(x, "empty"));
		} else if (strcmp(k, "count") == 0) {
			nsel++;
			s->sel = SCHED_SEL_COUNT;
			if (get_int(x, v, 1, 1000000, &iv) == -1)
				return (-1);
			s->amount = (uint32_t)iv;
		} else if (strcmp(k, "percent") == 0) {
			nsel++;
			s->sel = SCHED_SEL_PERCENT;
			if (get_int(x, v, 1, 100, &iv) == -1)
				return (-1);
			s->amount = (uint32_t)iv;
		} else if (strcmp(k, "rest") == 0) {
			nsel++;
			s->sel = SCHED_SEL_REST;
			if (get_bool(x, v, &b) == -1)
				return (-1);
			if (!b)
				return (perr(x, "only true makes sense"));
		} else if (strcmp(k, "success") == 0) {
			if (get_int(x, v, 0, 100, &iv) == -1)
				return (-1);
			s->success_pct = (uint32_t)iv;
		} else if (strcmp(k, "failure") == 0) {
			if (get_int(x, v, 0, 100, &iv) == -1)
				return (-1);
			s->failure_pct = (uint32_t)iv;
		} else if (strcmp(k, "soak") == 0) {
			if (get_dur(x, v, &s->soak_s) == -1)
				return (-1);
		} else if (strcmp(k, "approve") == 0) {
			if (get_bool(x, v, &s->approve) == -1)
				return (-1);
		}
		pop(x, n);
	}
	if (nsel != 1)
		return (perr(x, "needs exactly one of nodes, tags, count, "
		    "percent, rest"));
check_pct:
	if (s->sel == SCHED_SEL_PERCENT) {
		if (s->amount < *last_pct)
			return (perr(x, "percent %u after %u: percentages are "
			    "cumulative and cannot shrink", s->amount,
			    *last_pct));
		*last_pct = s->amount;
	}
	for (i = 0; i < idx; i++)
		if (strcmp(p->stages[i].name, s->name) == 0)
			return (perr(x, "name '%s' repeated", s->name));
	return (0);
}

static int
parse_windows(struct pctx *x, json_t *v, struct sched_policy *p)
{
	json_t	*e;
	size_t	 i, n;
	char	*sub = NULL;

	if (json_is_string(v)) {
		/* One window may be given as a plain string. */
		if (sched_window_parse(json_string_value(v), &p->windows[0],
		    &sub) == -1)
			return (perr_cause(x, sub));
		p->nwindows = 1;
		return (0);
	}
	if (!json_is_array(v))
		return (perr(x, "not an array"));
	if (json_array_size(v) > SCHED_MAX_WINDOWS)
		return (perr(x, "more than %d windows", SCHED_MAX_WINDOWS));
	json_array_foreach(v, i, e) {
		n = push(x, "[%zu]", i);
		if (!json_is_string(e))
			return (perr(x, "not a string"));
		if (sched_window_parse(json_string_value(e), &p->windows[i],
		    &sub) == -1)
			return (perr_cause(x, sub));
		pop(x, n);
	}
	p->nwindows = json_array_size(v);
	return (0);
}

static int
parse_offset(struct pctx *x, json_t *v, struct sched_policy *p)
{
	const char	*s;
	int		 h, m;
	char		 sign, c;

	if (!json_is_string(v))
		return (perr(x, "not a string"));
	s = json_string_value(v);
	if (strcmp(s, "Z") == 0 || strcmp(s, "UTC") == 0) {
		p->has_utc_offset = 1;
		p->utc_offset_s = 0;
		return (0);
	}
	if (strlen(s) != 6 ||
	    sscanf(s, "%c%2d:%2d%c", &sign, &h, &m, &c) != 3 ||
	    (sign != '+' && sign != '-') || !isdigit((unsigned char)s[1]) ||
	    !isdigit((unsigned char)s[4]) || h > 14 || m > 59)
		return (perr(x, "'%s': not +HH:MM", s));
	p->has_utc_offset = 1;
	p->utc_offset_s = (sign == '-' ? -1 : 1) * (h * 3600 + m * 60);
	return (0);
}

static int
parse_gates(struct pctx *x, json_t *o, struct sched_policy *p)
{
	static const char *const known[] = { "min_battery", "min_rssi",
	    "min_snr", NULL };
	const char	*k;
	json_t		*v;
	json_int_t	 iv;
	size_t		 n;

	if (!json_is_object(o))
		return (perr(x, "not an object"));
	if (check_members(x, o, known) == -1)
		return (-1);
	json_object_foreach(o, k, v) {
		n = push(x, ".%s", k);
		if (strcmp(k, "min_battery") == 0) {
			if (get_int(x, v, 0, 100, &iv) == -1)
				return (-1);
			p->min_battery = (uint8_t)iv;
		} else if (strcmp(k, "min_rssi") == 0) {
			if (get_int(x, v, -200, 0, &iv) == -1)
				return (-1);
			p->has_min_rssi = 1;
			p->min_rssi_dbm = (int16_t)iv;
		} else if (strcmp(k, "min_snr") == 0) {
			if (get_int(x, v, -50, 50, &iv) == -1)
				return (-1);
			p->has_min_snr = 1;
			p->min_snr_db = (int8_t)iv;
		}
		pop(x, n);
	}
	return (0);
}

static int
parse_retry(struct pctx *x, json_t *o, struct sched_policy *p)
{
	static const char *const known[] = { "count", "interval",
	    "max_interval", "backoff", NULL };
	const char	*k;
	json_t		*v;
	json_int_t	 iv;
	size_t		 n;

	if (!json_is_object(o))
		return (perr(x, "not an object"));
	if (check_members(x, o, known) == -1)
		return (-1);
	json_object_foreach(o, k, v) {
		n = push(x, ".%s", k);
		if (strcmp(k, "count") == 0) {
			if (get_int(x, v, 0, 100, &iv) == -1)
				return (-1);
			p->retries = (uint32_t)iv;
		} else if (strcmp(k, "interval") == 0) {
			if (get_dur(x, v, &p->retry_interval_s) == -1)
				return (-1);
		} else if (strcmp(k, "max_interval") == 0) {
			if (get_dur(x, v, &p->retry_max_s) == -1)
				return (-1);
		} else if (strcmp(k, "backoff") == 0) {
			if (get_int(x, v, 1, 10, &iv) == -1)
				return (-1);
			p->backoff = (uint32_t)iv;
		}
		pop(x, n);
	}
	if (p->retry_max_s < p->retry_interval_s)
		p->retry_max_s = p->retry_interval_s;
	return (0);
}

static int
parse_conc(struct pctx *x, json_t *v, struct sched_policy *p)
{
	const char	*k;
	json_t		*e;
	json_int_t	 iv;
	size_t		 n;

	if (json_is_integer(v)) {
		if (get_int(x, v, 1, 1000000, &iv) == -1)
			return (-1);
		p->concurrency = (uint32_t)iv;
		return (0);
	}
	if (!json_is_object(v))
		return (perr(x, "not a number or an object"));
	json_object_foreach(v, k, e) {
		n = push(x, ".%s", k);
		if (get_int(x, e, 1, 1000000, &iv) == -1)
			return (-1);
		if (strcmp(k, "*") == 0)
			p->concurrency = (uint32_t)iv;
		else {
			if (p->nconc == SCHED_MAX_CONC)
				return (perr(x, "more than %d transports",
				    SCHED_MAX_CONC));
			if (*k == '\0' || strlen(k) > SCHED_TRANSPORT_MAX)
				return (perr(x, "bad transport name"));
			strcpy(p->conc[p->nconc].transport, k);
			p->conc[p->nconc++].max = (uint32_t)iv;
		}
		pop(x, n);
	}
	return (0);
}

static int
parse_requires(struct pctx *x, json_t *v, struct sched_policy *p)
{
	static const char *const known[] = { "component", "version",
	    "requires", "range", NULL };
	struct sched_require	*r;
	json_t			*e, *f;
	size_t			 i, n, m;

	if (!json_is_array(v))
		return (perr(x, "not an array"));
	if (json_array_size(v) > SCHED_MAX_REQUIRES)
		return (perr(x, "more than %d constraints",
		    SCHED_MAX_REQUIRES));
	json_array_foreach(v, i, e) {
		n = push(x, "[%zu]", i);
		r = &p->requires[i];
		if (!json_is_object(e))
			return (perr(x, "not an object"));
		if (check_members(x, e, known) == -1)
			return (-1);
		m = push(x, ".component");
		if (get_name(x, json_object_get(e, "component"), r->component,
		    CACHE_NAME_MAX) == -1)
			return (-1);
		pop(x, m);
		m = push(x, ".requires");
		if (get_name(x, json_object_get(e, "requires"), r->requires,
		    CACHE_NAME_MAX) == -1)
			return (-1);
		if (strcmp(r->requires, r->component) == 0)
			return (perr(x, "'%s' cannot require itself",
			    r->component));
		pop(x, m);
		m = push(x, ".version");
		if ((f = json_object_get(e, "version")) != NULL &&
		    get_range(x, f, &r->when) == -1)
			return (-1);
		pop(x, m);
		m = push(x, ".range");
		if ((f = json_object_get(e, "range")) == NULL)
			return (perr(x, "missing"));
		if (get_range(x, f, &r->range) == -1)
			return (-1);
		pop(x, m);
		pop(x, n);
	}
	p->nrequires = json_array_size(v);
	return (0);
}

static int
parse_atomic(struct pctx *x, json_t *v, struct sched_policy *p)
{
	static const char *const known[] = { "name", "components", "nodes",
	    NULL };
	struct sched_atomic	*a;
	json_t			*e, *f, *g;
	size_t			 i, j, k, n, m;

	if (!json_is_array(v))
		return (perr(x, "not an array"));
	if (json_array_size(v) > SCHED_MAX_ATOMIC)
		return (perr(x, "more than %d groups", SCHED_MAX_ATOMIC));
	json_array_foreach(v, i, e) {
		n = push(x, "[%zu]", i);
		a = &p->atomic[i];
		if (!json_is_object(e))
			return (perr(x, "not an object"));
		if (check_members(x, e, known) == -1)
			return (-1);
		m = push(x, ".name");
		if (get_name(x, json_object_get(e, "name"), a->name,
		    SCHED_NAME_MAX) == -1)
			return (-1);
		for (j = 0; j < i; j++)
			if (strcmp(p->atomic[j].name, a->name) == 0)
				return (perr(x, "'%s' repeated", a->name));
		pop(x, m);
		if ((f = json_object_get(e, "components")) != NULL) {
			m = push(x, ".components");
			if (get_names(x, f, &a->comp[0][0], sizeof(a->comp[0]),
			    UP_MAX_COMPONENTS, &a->ncomp) == -1)
				return (-1);
			pop(x, m);
		}
		if ((f = json_object_get(e, "nodes")) != NULL) {
			m = push(x, ".nodes");
			if (!json_is_array(f))
				return (perr(x, "not an array"));
			if (json_array_size(f) > SCHED_MAX_ATOMIC_NODES)
				return (perr(x, "more than %d nodes",
				    SCHED_MAX_ATOMIC_NODES));
			json_array_foreach(f, j, g) {
				size_t	 q = push(x, "[%zu]", j);

				if (get_node_id(x, g, &a->nodes[j]) == -1)
					return (-1);
				for (k = 0; k < j; k++)
					if (a->nodes[k] == a->nodes[j])
						return (perr(x, "repeated "
						    "node"));
				pop(x, q);
			}
			a->nnodes = json_array_size(f);
			pop(x, m);
		}
		if (a->ncomp == 0 && a->nnodes == 0)
			return (perr(x, "needs components or nodes"));
		if (a->ncomp == 1 && a->nnodes == 0)
			return (perr(x, "one component on each node is not a "
			    "group"));
		pop(x, n);
	}
	p->natomic = json_array_size(v);
	return (0);
}

static void
policy_defaults(struct sched_policy *p)
{
	strcpy(p->target.test_tag, "test");
	p->retries = 2;
	p->retry_interval_s = 60;
	p->retry_max_s = 3600;
	p->backoff = 2;
	p->node_timeout_s = 6 * 3600;
	p->listen_pct = 100;
	p->step_cost = 4096;
	p->mode = SCHED_MODE_INSTALL_NOW;
}

static int
policy_members(struct pctx *x, json_t *root, struct sched_policy *p)
{
	static const char *const known[] = { "target", "approve", "stages",
	    "start", "deadline", "windows", "utc_offset", "gates", "retry",
	    "concurrency", "mode", "install_at", "node_timeout",
	    "listen_weight", "step_cost", "requires", "order", "atomic",
	    "offload", NULL };
	const char	*k, *mode;
	json_t		*v, *e;
	json_int_t	 iv;
	uint32_t	 last_pct = 0;
	size_t		 n, m;
	size_t		 i;
	int		 has_install_at = 0;

	if (check_members(x, root, known) == -1)
		return (-1);
	json_object_foreach(root, k, v) {
		n = push(x, ".%s", k);
		if (strcmp(k, "target") == 0) {
			if (parse_target(x, v, p) == -1)
				return (-1);
		} else if (strcmp(k, "approve") == 0) {
			if (get_bool(x, v, &p->approve) == -1)
				return (-1);
		} else if (strcmp(k, "stages") == 0) {
			if (!json_is_array(v))
				return (perr(x, "not an array"));
			if (json_array_size(v) > SCHED_MAX_STAGES)
				return (perr(x, "more than %d stages",
				    SCHED_MAX_STAGES));
			json_array_foreach(v, i, e) {
				m = push(x, "[%zu]", i);
				if (parse_stage(x, e, p, i, &last_pct) == -1)
					return (-1);
				pop(x, m);
			}
			p->nstages = json_array_size(v);
		} else if (strcmp(k, "start") == 0) {
			if (get_time(x, v, &p->start) == -1)
				return (-1);
		} else if (strcmp(k, "deadline") == 0) {
			if (get_time(x, v, &p->deadline) == -1)
				return (-1);
		} else if (strcmp(k, "windows") == 0) {
			if (parse_windows(x, v, p) == -1)
				return (-1);
		} else if (strcmp(k, "utc_offset") == 0) {
			if (parse_offset(x, v, p) == -1)
				return (-1);
		} else if (strcmp(k, "gates") == 0) {
			if (parse_gates(x, v, p) == -1)
				return (-1);
		} else if (strcmp(k, "retry") == 0) {
			if (parse_retry(x, v, p) == -1)
				return (-1);
		} else if (strcmp(k, "concurrency") == 0) {
			if (parse_conc(x, v, p) == -1)
				return (-1);
		} else if (strcmp(k, "mode") == 0) {
			if (!json_is_string(v))
				return (perr(x, "not a string"));
			mode = json_string_value(v);
			if (strcmp(mode, "install-now") == 0)
				p->mode = SCHED_MODE_INSTALL_NOW;
			else if (strcmp(mode, "download-only") == 0)
				p->mode = SCHED_MODE_DOWNLOAD_ONLY;
			else if (strcmp(mode, "install-at") == 0)
				p->mode = SCHED_MODE_INSTALL_AT;
			else
				return (perr(x, "'%s': not install-now, "
				    "download-only or install-at", mode));
		} else if (strcmp(k, "offload") == 0) {
			if (!json_is_string(v))
				return (perr(x, "not a string"));
			mode = json_string_value(v);
			if (strcmp(mode, "auto") == 0)
				p->offload = SCHED_OFFLOAD_AUTO;
			else if (strcmp(mode, "module") == 0)
				p->offload = SCHED_OFFLOAD_MODULE;
			else if (strcmp(mode, "up") == 0)
				p->offload = SCHED_OFFLOAD_UP;
			else
				return (perr(x, "'%s': not auto, module or up",
				    mode));
		} else if (strcmp(k, "install_at") == 0) {
			if (get_time(x, v, &p->install_at) == -1)
				return (-1);
			has_install_at = 1;
		} else if (strcmp(k, "node_timeout") == 0) {
			if (get_dur(x, v, &p->node_timeout_s) == -1)
				return (-1);
			if (p->node_timeout_s == 0)
				return (perr(x, "must be at least 1 s"));
		} else if (strcmp(k, "listen_weight") == 0) {
			if (get_int(x, v, 0, 1000, &iv) == -1)
				return (-1);
			p->listen_pct = (uint32_t)iv;
		} else if (strcmp(k, "step_cost") == 0) {
			if (get_int(x, v, 0, UINT32_MAX, &iv) == -1)
				return (-1);
			p->step_cost = (uint32_t)iv;
		} else if (strcmp(k, "requires") == 0) {
			if (parse_requires(x, v, p) == -1)
				return (-1);
		} else if (strcmp(k, "order") == 0) {
			if (get_names(x, v, &p->order[0][0],
			    sizeof(p->order[0]), UP_MAX_COMPONENTS,
			    &p->norder) == -1)
				return (-1);
		} else if (strcmp(k, "atomic") == 0) {
			if (parse_atomic(x, v, p) == -1)
				return (-1);
		}
		pop(x, n);
	}
	if (p->mode == SCHED_MODE_INSTALL_AT && !has_install_at)
		return (push(x, ".install_at"), perr(x, "missing (required "
		    "by mode install-at)"));
	if (p->mode != SCHED_MODE_INSTALL_AT && has_install_at)
		return (push(x, ".install_at"), perr(x, "only with mode "
		    "install-at"));
	if (p->deadline != 0 && p->deadline <= p->start)
		return (push(x, ".deadline"), perr(x, "not after the start"));
	return (0);
}

int
sched_policy_parse(const char *id, const char (*hw)[CACHE_NAME_MAX + 1],
    size_t nhw, const char (*tags)[CACHE_NAME_MAX + 1], size_t ntags,
    const char *json, struct sched_policy *p, char **cause)
{
	struct pctx	 x;
	json_t		*root = NULL, *tj = NULL, *a;
	json_error_t	 jerr;
	size_t		 i;

	memset(p, 0, sizeof(*p));
	memset(&x, 0, sizeof(x));
	x.dep = id;
	x.cause = cause;
	if (sched__copy(p->deployment, sizeof(p->deployment), id) == -1)
		return (sched__fail(cause, "deployment '%.20s...': id too "
		    "long", id));
	policy_defaults(p);
	if (nhw > CACHE_HW_MAX || ntags > 2 * SCHED_MAX_TAGS) {
		sched__fail(cause, "deployment '%s': target: too many hw "
		    "models or tags", id);
		goto fail;
	}
	for (i = 0; i < nhw; i++)
		if (sched__copy(p->target.hw[i], sizeof(p->target.hw[i]),
		    hw[i]) == -1)
			goto toolong;
	p->target.nhw = nhw;
	for (i = 0; i < ntags; i++)
		if (sched__copy(p->target.tags[i], sizeof(p->target.tags[i]),
		    tags[i]) == -1)
			goto toolong;
	p->target.ntags = ntags;

	if (json == NULL || *json == '\0')
		json = "{}";
	root = json_loads(json, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL) {
		sched__fail(cause, "deployment '%s': policy: line %d: %s", id,
		    jerr.line, jerr.text);
		goto fail;
	}
	if (!json_is_object(root)) {
		perr(&x, "not an object");
		goto fail;
	}
	if (policy_members(&x, root, p) == -1)
		goto fail;

	/* Kept as given, so a restart parses exactly the same policy. */
	p->json = json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS);
	tj = json_object();
	a = json_array();
	for (i = 0; i < nhw; i++)
		json_array_append_new(a, json_string(hw[i]));
	json_object_set_new(tj, "hw", a);
	a = json_array();
	for (i = 0; i < ntags; i++)
		json_array_append_new(a, json_string(tags[i]));
	json_object_set_new(tj, "tags", a);
	p->target_json = json_dumps(tj, JSON_COMPACT);
	json_decref(tj);
	json_decref(root);
	if (p->json == NULL || p->target_json == NULL) {
		sched__fail(cause, "deployment '%s': out of memory", id);
		goto fail;
	}
	return (0);
toolong:
	sched__fail(cause, "deployment '%s': target: name too long", id);
fail:
	json_decref(root);
	sched_policy_clear(p);
	return (-1);
}

void
sched_policy_clear(struct sched_policy *p)
{
	free(p->json);
	free(p->target_json);
	memset(p, 0, sizeof(*p));
}

int
sched_policy_copy(struct sched_policy *dst, const struct sched_policy *src)
{
	*dst = *src;
	dst->json = dst->target_json = NULL;
	if ((src->json != NULL && (dst->json = strdup(src->json)) == NULL) ||
	    (src->target_json != NULL &&
	    (dst->target_json = strdup(src->target_json)) == NULL)) {
		sched_policy_clear(dst);
		return (-1);
	}
	return (0);
}

/* ------------------------------------------------------------------ */
/* Durations, times, windows                                            */

int
sched_parse_duration(const char *s, uint32_t *out, char **cause)
{
	unsigned long long	 v = 0;
	const char		*p = s;
	unsigned int		 mul = 1;

	if (!isdigit((unsigned char)*p))
		return (sched__fail(cause, "'%s': not a duration (30s, 10m, "
		    "2h, 1d)", s));
	while (isdigit((unsigned char)*p)) {
		v = v * 10 + (unsigned)(*p++ - '0');
		if (v > 366ULL * 86400)
			return (sched__fail(cause, "'%s': too long", s));
	}
	switch (*p) {
	case '\0':
	case 's':
		break;
	case 'm':
		mul = 60;
		break;
	case 'h':
		mul = 3600;
		break;
	case 'd':
		mul = 86400;
		break;
	default:
		return (sched__fail(cause, "'%s': not a duration (30s, 10m, "
		    "2h, 1d)", s));
	}
	if (*p != '\0' && p[1] != '\0')
		return (sched__fail(cause, "'%s': not a duration (30s, 10m, "
		    "2h, 1d)", s));
	if (v * mul > 366ULL * 86400)
		return (sched__fail(cause, "'%s': too long", s));
	*out = (uint32_t)(v * mul);
	return (0);
}

static int
num(const char *s, int n, int *out)
{
	int	 i, v = 0;

	for (i = 0; i < n; i++) {
		if (!isdigit((unsigned char)s[i]))
			return (-1);
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return (0);
}

int
sched_parse_time(const char *s, int64_t *out, char **cause)
{
	static const int mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31,
	    30, 31 };
	int		 y, mo, d, h, mi, se, oh, om, sign;
	const char	*p;

	/* YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM), RFC 3339 §5.6. */
	if (strlen(s) < 20 || num(s, 4, &y) || s[4] != '-' ||
	    num(s + 5, 2, &mo) || s[7] != '-' || num(s + 8, 2, &d) ||
	    (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
	    num(s + 11, 2, &h) || s[13] != ':' || num(s + 14, 2, &mi) ||
	    s[16] != ':' || num(s + 17, 2, &se))
		return (sched__fail(cause, "'%s': not an RFC 3339 time", s));
	if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] ||
	    (mo == 2 && d == 29 && !((y % 4 == 0 && y % 100 != 0) ||
	    y % 400 == 0)) || h > 23 || mi > 59 || se > 60)
		return (sched__fail(cause, "'%s': date or time out of range",
		    s));
	p = s + 19;
	if (*p == '.') {
		p++;
		if (!isdigit((unsigned char)*p))
			return (sched__fail(cause, "'%s': bad fraction", s));
		while (isdigit((unsigned char)*p))
			p++;
	}
	if ((*p == 'Z' || *p == 'z') && p[1] == '\0')
		oh = om = 0, sign = 1;
	else if ((*p == '+' || *p == '-') && strlen(p) == 6 &&
	    num(p + 1, 2, &oh) == 0 && p[3] == ':' && num(p + 4, 2, &om) == 0 &&
	    oh <= 23 && om <= 59)
		sign = (*p == '-') ? -1 : 1;
	else
		return (sched__fail(cause, "'%s': needs Z or +HH:MM", s));
	if (se == 60)
		se = 59;	/* a leap second: close enough for a schedule */
	*out = sched__days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 +
	    h * 3600 + mi * 60 + se - sign * (oh * 3600 + om * 60);
	return (0);
}

void
sched_format_time(int64_t t, char buf[21])
{
	int64_t		 y, days;
	unsigned	 m, d, rem;
	char		 tmp[64];

	days = t >= 0 ? t / 86400 : (t - 86399) / 86400;
	rem = (unsigned)(t - days * 86400);
	sched__civil_from_days(days, &y, &m, &d);
	snprintf(tmp, sizeof(tmp), "%04u-%02u-%02uT%02u:%02u:%02uZ",
	    (unsigned)(y % 10000 + 10000) % 10000, m % 100, d % 100,
	    rem / 3600 % 100, rem / 60 % 60, rem % 60);
	memcpy(buf, tmp, 20);
	buf[20] = '\0';
}

static int
window_day(const char *s, size_t len)
{
	static const char *const names[] = { "mon", "tue", "wed", "thu",
	    "fri", "sat", "sun" };
	int	 i;

	if (len != 3)
		return (-1);
	for (i = 0; i < 7; i++)
		if (strncasecmp(s, names[i], 3) == 0)
			return (i);
	return (-1);
}

static int
window_hhmm(const char *s, const char *w, int end, uint16_t *out,
    char **cause)
{
	int	 h, m;

	if (num(s, 2, &h) == -1 || s[2] != ':' || num(s + 3, 2, &m) == -1)
		return (sched__fail(cause, "'%s': expected [DAYS ]HH:MM-HH:MM",
		    w));
	if (h > 24 || (h == 24 && (!end || m != 0)))
		return (sched__fail(cause, "'%s': hour out of range", w));
	if (m > 59)
		return (sched__fail(cause, "'%s': minute out of range", w));
	*out = (uint16_t)(h * 60 + m);
	return (0);
}

int
sched_window_parse(const char *w, struct sched_window *win, char **cause)
{
	const char	*p = w, *sp, *e, *dash;
	int		 a, b, i;

	memset(win, 0, sizeof(*win));
	/*
	 * A leading space would make an empty day list: a window that never
	 * opens (issue 7).  Say so instead of guessing what was meant.
	 */
	if (*w == ' ')
		return (sched__fail(cause, "'%s': leading space (expected "
		    "[DAYS ]HH:MM-HH:MM)", w));
	if ((sp = strchr(w, ' ')) != NULL) {
		/* Days: "mon-fri,sun"; a range may wrap ("fri-mon"). */
		if (sp[-1] == ',')
			return (sched__fail(cause, "'%s': day list ends in "
			    "','", w));
		while (p < sp) {
			e = p;
			while (e < sp && *e != ',')
				e++;
			dash = memchr(p, '-', (size_t)(e - p));
			if (dash != NULL) {
				a = window_day(p, (size_t)(dash - p));
				b = window_day(dash + 1,
				    (size_t)(e - dash - 1));
			} else
				a = b = window_day(p, (size_t)(e - p));
			if (a < 0 || b < 0)
				return (sched__fail(cause, "'%s': bad day "
				    "'%.*s' (mon..sun)", w, (int)(e - p), p));
			for (i = a;; i = (i + 1) % 7) {
				win->days |= (uint8_t)(1 << i);
				if (i == b)
					break;
			}
			p = (e < sp) ? e + 1 : e;
		}
		p = sp + 1;
		while (*p == ' ')
			p++;
	} else
		win->days = 0x7f;
	if (strlen(p) != 11 || p[5] != '-')
		return (sched__fail(cause, "'%s': expected [DAYS ]HH:MM-HH:MM",
		    w));
	if (window_hhmm(p, w, 0, &win->start_min, cause) == -1 ||
	    window_hhmm(p + 6, w, 1, &win->end_min, cause) == -1)
		return (-1);
	if (win->start_min == win->end_min ||
	    (win->start_min == 0 && win->end_min == 0))
		return (sched__fail(cause, "'%s': empty window", w));
	if (win->days == 0)
		return (sched__fail(cause, "'%s': no days", w));
	return (0);
}
