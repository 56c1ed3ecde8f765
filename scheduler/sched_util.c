/*
 * sched_util.c: small helpers shared by the scheduler's files: causes,
 * bounded copies, calendar arithmetic, node records.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sched_internal.h"

int
sched__fail(char **cause, const char *fmt, ...)
{
	va_list	 ap;

	if (cause == NULL)
		return (-1);
	va_start(ap, fmt);
	if (vasprintf(cause, fmt, ap) == -1)
		*cause = NULL;
	va_end(ap);
	return (-1);
}

int
sched__copy(char *dst, size_t len, const char *src)
{
	size_t	 n = strlen(src);

	if (n >= len)
		return (-1);
	memcpy(dst, src, n + 1);
	return (0);
}

/*
 * Howard Hinnant's days_from_civil / civil_from_days: exact for the
 * proleptic Gregorian calendar, no table, no libc time zone state.
 */
int64_t
sched__days_from_civil(int64_t y, unsigned m, unsigned d)
{
	int64_t		 era;
	unsigned	 yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = (unsigned)(y - era * 400);
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return (era * 146097 + (int64_t)doe - 719468);
}

void
sched__civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
	int64_t		 era;
	unsigned	 doe, yoe, doy, mp;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = (unsigned)(z - era * 146097);
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	*y = (int64_t)yoe + era * 400;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y += *m <= 2;
}

void
sched_node_init(struct sched_node *n, uint64_t id)
{
	memset(n, 0, sizeof(*n));
	n->node_id = id;
	n->battery = UP_BATTERY_UNKNOWN;
	n->rssi_dbm = UP_RSSI_UNKNOWN;
	n->snr_db = UP_SNR_UNKNOWN;
}

const char *
sched_node_version(const struct sched_node *n, const char *component)
{
	size_t	 i;

	for (i = 0; i < n->ncomp && i < UP_MAX_COMPONENTS; i++)
		if (strcmp(n->comp[i].name, component) == 0)
			return (n->comp[i].version);
	return (NULL);
}
