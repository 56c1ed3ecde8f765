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

/*
 * The newer-only rule (docs/campaigns.md, "Versions only go up").  A
 * package may go to a node only if its version is newer than what the
 * node runs, or if the cloud signed it as a downgrade (allow_downgrade,
 * UP_DESC_DOWNGRADE in its descriptor, docs/up-protocol.md §5.4).  The
 * node decides again with its security floor, which the gateway does not
 * know: a signed downgrade may still be declined `downgrade'.
 */
bool
sched_may_offer(const struct cache_pkg *p, const char *running)
{
	int	 c;

	if (p == NULL || running == NULL)
		return (false);
	c = sched_version_cmp(p->version, running);
	return (c > 0 || (c < 0 && p->allow_downgrade));
}
