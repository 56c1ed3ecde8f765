/*
 * sched_version.c: ordering of version strings.
 *
 * The scheduler orders versions exactly as the nodes do: up_version_cmp()
 * (docs/up-protocol.md §2.7) is the one implementation.  A node refuses an
 * offer it considers older than what it runs (anti-rollback), so a
 * scheduler with its own order could plan an update every node declines.
 */
#include "sched.h"

int
sched_version_cmp(const char *a, const char *b)
{
	return (up_version_cmp(a, b));
}
