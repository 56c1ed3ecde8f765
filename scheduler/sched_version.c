/*
 * sched_version.c: ordering of version strings.
 */
#include <ctype.h>
#include <string.h>

#include "sched.h"

/*
 * Reads one numeric field at *pp; returns -1 if the field is not all
 * digits (then the caller falls back to a bytewise comparison).
 */
static long long
sched__field(const char **pp, size_t *len)
{
	const char	*p = *pp;
	long long	 v = 0;
	size_t		 n = 0;

	while (p[n] != '\0' && p[n] != '.' && p[n] != '-' && p[n] != '+') {
		if (!isdigit((unsigned char)p[n]) || v > 1000000000LL)
			return (-1);
		v = v * 10 + (p[n] - '0');
		n++;
	}
	*len = n;
	*pp = p + n;
	return (v);
}

int
sched_version_cmp(const char *a, const char *b)
{
	const char	*pa = a, *pb = b;
	const char	*ra, *rb;
	long long	 va, vb;
	size_t		 la, lb;

	for (;;) {
		if (*pa == '\0' || *pa == '-' || *pa == '+')
			va = 0, la = 0;
		else if ((va = sched__field(&pa, &la)) < 0)
			return (strcmp(a, b));
		if (*pb == '\0' || *pb == '-' || *pb == '+')
			vb = 0, lb = 0;
		else if ((vb = sched__field(&pb, &lb)) < 0)
			return (strcmp(a, b));
		if (va != vb)
			return (va < vb ? -1 : 1);
		if (*pa == '.')
			pa++;
		if (*pb == '.')
			pb++;
		if ((*pa == '\0' || *pa == '-' || *pa == '+') &&
		    (*pb == '\0' || *pb == '-' || *pb == '+'))
			break;
	}
	/* Pre-release: "1.0-rc1" < "1.0"; build metadata (+...) ignored. */
	ra = (*pa == '-') ? pa + 1 : NULL;
	rb = (*pb == '-') ? pb + 1 : NULL;
	if (ra == NULL && rb == NULL)
		return (0);
	if (ra == NULL)
		return (1);
	if (rb == NULL)
		return (-1);
	return (strcmp(ra, rb) < 0 ? -1 : strcmp(ra, rb) > 0);
}
