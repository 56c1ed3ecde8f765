/*
 * up_version.c: the order of version strings (docs/up-protocol.md §2.7).
 *
 * One implementation serves the node engine (dependencies, anti-rollback,
 * superseding a held image) and the gateway's scheduler (which version is
 * newer), so the two ends can never disagree on "older".  The order is
 * Semantic Versioning's, made total for any string: build metadata after
 * '+' is ignored, a '-' starts a pre-release that sorts before its
 * release, and dot-separated fields compare as numbers when both are
 * digits (of any length: nothing is converted, so nothing overflows),
 * numbers before words, words byte by byte.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "up.h"

static bool
ver_numeric(const char *p, size_t n)
{
	size_t		 i;

	for (i = 0; i < n; i++)
		if (p[i] < '0' || p[i] > '9')
			return (false);
	return (true);
}

/*
 * One field.  An empty field is the number 0.  Two numbers compare by
 * value: leading zeros are skipped, then the longer digit string is the
 * larger, then bytes decide.  A number sorts before a non-number; two
 * non-numbers compare as unsigned bytes, a proper prefix first.
 */
static int
ver_field_cmp(const char *a, size_t la, const char *b, size_t lb)
{
	bool		 na, nb;
	size_t		 n;
	int		 c;

	na = ver_numeric(a, la);
	nb = ver_numeric(b, lb);
	if (na != nb)
		return (na ? -1 : 1);
	if (na) {
		while (la > 0 && *a == '0') {
			a++;
			la--;
		}
		while (lb > 0 && *b == '0') {
			b++;
			lb--;
		}
		if (la != lb)
			return (la < lb ? -1 : 1);
	}
	n = la < lb ? la : lb;
	if ((c = memcmp(a, b, n)) != 0)
		return (c < 0 ? -1 : 1);
	if (la != lb)
		return (la < lb ? -1 : 1);
	return (0);
}

/*
 * The dot-separated fields of a[0, la) and b[0, lb), left to right; the
 * shorter list is padded with empty fields, which are 0 ("1.2" ==
 * "1.2.0").
 */
static int
ver_fields_cmp(const char *a, size_t la, const char *b, size_t lb)
{
	size_t		 i = 0, j = 0, ea, eb;
	int		 c;

	while (i < la || j < lb) {
		for (ea = i; ea < la && a[ea] != '.'; ea++)
			;
		for (eb = j; eb < lb && b[eb] != '.'; eb++)
			;
		if ((c = ver_field_cmp(a + i, ea - i, b + j, eb - j)) != 0)
			return (c);
		i = ea < la ? ea + 1 : la;
		j = eb < lb ? eb + 1 : lb;
	}
	return (0);
}

int
up_version_cmp(const char *a, const char *b)
{
	const char	*pa, *pb;
	size_t		 la, lb, ca, cb;
	int		 c;

	/* Build metadata never orders versions. */
	la = strcspn(a, "+");
	lb = strcspn(b, "+");
	pa = memchr(a, '-', la);
	pb = memchr(b, '-', lb);
	ca = pa != NULL ? (size_t)(pa - a) : la;
	cb = pb != NULL ? (size_t)(pb - b) : lb;
	if ((c = ver_fields_cmp(a, ca, b, cb)) != 0)
		return (c);
	/* A pre-release comes before its release. */
	if (pa == NULL || pb == NULL)
		return (pa == pb ? 0 : (pa == NULL ? 1 : -1));
	return (ver_fields_cmp(pa + 1, la - ca - 1, pb + 1, lb - cb - 1));
}
