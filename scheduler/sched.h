/*
 * sched.h: campaign decisions, the one public header of scheduler/.
 *
 * The scheduler decides *what* and *when*; it sends nothing itself.  This
 * first version decides what each node gets: the newest package of the
 * current manifest that fits the node's hardware and component and is
 * newer than what it runs (a full image, or a delta whose base is exactly
 * the running version).  Staged rollout, windows, gates and dependency
 * ordering come with the scheduler issue and extend this header.
 */
#ifndef SCHED_H
#define SCHED_H

#include <stddef.h>
#include <stdint.h>

#include "cache.h"
#include "up.h"

/* What the scheduler needs to know about a node. */
struct sched_node {
	uint64_t	 node_id;
	char		 hw[UP_NAME_MAX + 1];
	size_t		 ncomp;
	struct up_component comp[UP_MAX_COMPONENTS];
};

/* sched_version.c */
/*
 * Compares two version strings: dot-separated numeric fields compared as
 * numbers ("1.10.0" > "1.9.3"), a missing field counts as 0, a
 * pre-release suffix after '-' sorts before the release ("2.0.0-rc1" <
 * "2.0.0"), other text compared bytewise.  Returns <0, 0, >0.
 */
int		 sched_version_cmp(const char *, const char *);

/* sched_choose.c */
/*
 * For one component of `node', picks from pkgs[n] the package to offer:
 * compatible hardware (pkg->nhw == 0 or hw listed), same component,
 * version newer than the running one; among the newest such version a
 * delta from the running version is preferred when it is smaller than the
 * full image.  Returns the chosen package (borrowed from pkgs) or NULL when
 * the node is up to date or nothing fits.
 */
const struct cache_pkg *sched_choose(const struct cache_pkg *pkgs, size_t n,
		    const struct sched_node *node, const char *component);

/* True if the package's hardware list admits `hw'. */
int		 sched_hw_ok(const struct cache_pkg *, const char *hw);

#endif /* SCHED_H */
