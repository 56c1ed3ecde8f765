/*
 * sched_range.c: version ranges (grammar in sched.h and
 * docs/campaigns.md, "Version ranges").
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sched_internal.h"

static int
range_vchar(int c)
{
	return (isalnum(c) || c == '.' || c == '_' || c == '-' || c == '+' ||
	    c == '~');
}

static int
range_add(struct sched_range *r, enum sched_op op, const char *ver,
    const char *term, char **cause)
{
	if (r->ncmp >= SCHED_MAX_RANGE)
		return (sched__fail(cause, "'%s': more than %d comparators",
		    term, SCHED_MAX_RANGE));
	if (strlen(ver) > CACHE_VER_MAX + 1)
		return (sched__fail(cause, "'%s': version too long", term));
	r->cmp[r->ncmp].op = op;
	strcpy(r->cmp[r->ncmp].ver, ver);
	r->ncmp++;
	return (0);
}

static int
range_version_ok(const char *v, const char *term, char **cause)
{
	size_t	 i;

	if (*v == '\0')
		return (sched__fail(cause, "'%s': missing version", term));
	if (strlen(v) > CACHE_VER_MAX)
		return (sched__fail(cause, "'%s': version too long", term));
	for (i = 0; v[i] != '\0'; i++)
		if (!range_vchar((unsigned char)v[i]))
			return (sched__fail(cause, "'%s': bad character in "
			    "version", term));
	return (0);
}

/*
 * Splits a numeric version "1.2.3[-pre][+build]" into up to 3 fields;
 * returns the number of fields or -1.  Wildcard fields ("x", "X", "*")
 * count as -1 values when `wild' is set.
 */
static int
range_fields(const char *v, long f[3], int wild, int *nwild)
{
	const char	*p = v;
	char		*end;
	int		 n = 0;

	*nwild = 0;
	for (;;) {
		if (n == 3)
			return (-1);
		if (wild && (*p == 'x' || *p == 'X' || *p == '*')) {
			f[n++] = -1;
			(*nwild)++;
			p++;
		} else {
			if (!isdigit((unsigned char)*p) || *nwild > 0)
				return (-1);
			f[n++] = strtol(p, &end, 10);
			if (f[n - 1] > 1000000000L)
				return (-1);
			p = end;
		}
		if (*p == '.') {
			p++;
			continue;
		}
		if (*p == '\0' || ((*p == '-' || *p == '+') && *nwild == 0 &&
		    p[1] != '\0'))
			return (n);
		return (-1);
	}
}

/* "<" bound just below release f[0..n-1] (its pre-releases excluded). */
static void
range_upper(char *buf, size_t len, const long *f, int n)
{
	int	 i, off = 0;

	for (i = 0; i < n; i++)
		off += snprintf(buf + off, len - (size_t)off, "%s%ld",
		    i ? "." : "", f[i]);
	snprintf(buf + off, len - (size_t)off, "-");
}

static int
range_term(struct sched_range *r, const char *t, char **cause)
{
	char		 up[CACHE_VER_MAX + 2], lo[CACHE_VER_MAX + 1];
	const char	*v;
	long		 f[3], g[3];
	int		 n, nw, i, k;

	if (strcmp(t, "*") == 0 || strcmp(t, "x") == 0 || strcmp(t, "X") == 0)
		return (0);
	if (t[0] == '^' || t[0] == '~') {
		v = t + 1;
		if (range_version_ok(v, t, cause) == -1)
			return (-1);
		if ((n = range_fields(v, f, 0, &nw)) < 1)
			return (sched__fail(cause, "'%s': %c needs a numeric "
			    "version", t, t[0]));
		if (t[0] == '^') {
			/* Fix the first non-zero field (or the last one). */
			for (k = 0; k < n - 1 && f[k] == 0; k++)
				;
		} else
			k = n > 1 ? 1 : 0;	/* ~1 = <2, ~1.2[.3] = <1.3 */
		for (i = 0; i <= k; i++)
			g[i] = f[i];
		g[k]++;
		range_upper(up, sizeof(up), g, k + 1);
		if (range_add(r, SCHED_OP_GE, v, t, cause) == -1 ||
		    range_add(r, SCHED_OP_LT, up, t, cause) == -1)
			return (-1);
		return (0);
	}
	if (strncmp(t, ">=", 2) == 0 || strncmp(t, "<=", 2) == 0) {
		if (range_version_ok(t + 2, t, cause) == -1)
			return (-1);
		return (range_add(r, t[0] == '>' ? SCHED_OP_GE : SCHED_OP_LE,
		    t + 2, t, cause));
	}
	if (t[0] == '>' || t[0] == '<' || t[0] == '=') {
		if (range_version_ok(t + 1, t, cause) == -1)
			return (-1);
		return (range_add(r, t[0] == '>' ? SCHED_OP_GT :
		    t[0] == '<' ? SCHED_OP_LT : SCHED_OP_EQ, t + 1, t, cause));
	}
	if (strchr(t, 'x') != NULL || strchr(t, 'X') != NULL ||
	    strchr(t, '*') != NULL) {
		if ((n = range_fields(t, f, 1, &nw)) < 1 || nw == 0)
			return (sched__fail(cause, "'%s': bad wildcard", t));
		k = n - nw;		/* fixed fields */
		if (k == 0)
			return (0);
		lo[0] = '\0';
		for (i = 0; i < k; i++)
			snprintf(lo + strlen(lo), sizeof(lo) - strlen(lo),
			    "%s%ld", i ? "." : "", f[i]);
		for (i = 0; i < k; i++)
			g[i] = f[i];
		g[k - 1]++;
		range_upper(up, sizeof(up), g, k);
		if (range_add(r, SCHED_OP_GE, lo, t, cause) == -1 ||
		    range_add(r, SCHED_OP_LT, up, t, cause) == -1)
			return (-1);
		return (0);
	}
	if (range_version_ok(t, t, cause) == -1)
		return (-1);
	return (range_add(r, SCHED_OP_EQ, t, t, cause));
}

/*
 * True if no version satisfies every comparator.  Versions are totally
 * ordered by sched_version_cmp, so the comparators are intervals and
 * pairs are enough: an exact version must pass all the others, and no
 * lower bound may lie above an upper bound.
 */
static bool
range_empty(const struct sched_range *r)
{
	int	 i, j, c;

	for (i = 0; i < r->ncmp; i++)
		if (r->cmp[i].op == SCHED_OP_EQ &&
		    !sched_range_match(r, r->cmp[i].ver))
			return (true);
	for (i = 0; i < r->ncmp; i++) {
		if (r->cmp[i].op != SCHED_OP_GE && r->cmp[i].op != SCHED_OP_GT)
			continue;
		for (j = 0; j < r->ncmp; j++) {
			if (r->cmp[j].op != SCHED_OP_LE &&
			    r->cmp[j].op != SCHED_OP_LT)
				continue;
			c = sched_version_cmp(r->cmp[i].ver, r->cmp[j].ver);
			if (c > 0 || (c == 0 && (r->cmp[i].op == SCHED_OP_GT ||
			    r->cmp[j].op == SCHED_OP_LT)))
				return (true);
		}
	}
	return (false);
}

int
sched_range_parse(const char *s, struct sched_range *r, char **cause)
{
	char		 term[SCHED_RANGE_TEXT_MAX + 1];
	const char	*p = s, *e;
	size_t		 len;

	memset(r, 0, sizeof(*r));
	while (*s == ' ')
		s++;
	len = strlen(s);
	while (len > 0 && s[len - 1] == ' ')
		len--;
	if (len > SCHED_RANGE_TEXT_MAX)
		return (sched__fail(cause, "'%.*s...': range too long", 16, s));
	memcpy(r->text, s, len);
	r->text[len] = '\0';
	p = r->text;
	while (*p != '\0') {
		while (*p == ' ')
			p++;
		if (*p == '\0')
			break;
		e = p;
		while (*e != '\0' && *e != ' ')
			e++;
		/* ">= 1.5" (operator, space, version) reads as one term. */
		if ((size_t)(e - p) <= 2 && strspn(p, "<>=") ==
		    (size_t)(e - p) && *e == ' ') {
			while (*e == ' ')
				e++;
			while (*e != '\0' && *e != ' ')
				e++;
		}
		len = (size_t)(e - p);
		memcpy(term, p, len);
		term[len] = '\0';
		if (strchr(term, ' ') != NULL) {
			/* Squeeze the space out of "op version". */
			char	*q = term, *w = term;

			for (; *q != '\0'; q++)
				if (*q != ' ')
					*w++ = *q;
			*w = '\0';
		}
		if (range_term(r, term, cause) == -1) {
			r->ncmp = 0;
			return (-1);
		}
		p = e;
	}
	if (range_empty(r)) {
		r->ncmp = 0;
		return (sched__fail(cause, "'%s': matches no version",
		    r->text));
	}
	return (0);
}

bool
sched_range_match(const struct sched_range *r, const char *v)
{
	int	 i, c;

	for (i = 0; i < r->ncmp; i++) {
		c = sched_version_cmp(v, r->cmp[i].ver);
		switch (r->cmp[i].op) {
		case SCHED_OP_EQ:
			if (c != 0)
				return (false);
			break;
		case SCHED_OP_GE:
			if (c < 0)
				return (false);
			break;
		case SCHED_OP_GT:
			if (c <= 0)
				return (false);
			break;
		case SCHED_OP_LE:
			if (c > 0)
				return (false);
			break;
		case SCHED_OP_LT:
			if (c >= 0)
				return (false);
			break;
		}
	}
	return (true);
}
