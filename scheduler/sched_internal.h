/*
 * sched_internal.h: what the files of scheduler/ share.
 */
#ifndef SCHED_INTERNAL_H
#define SCHED_INTERNAL_H

#include <stdarg.h>

#include "sched.h"

/* Fills *cause (if not NULL) with a formatted message; returns -1. */
int		 sched__fail(char **cause, const char *fmt, ...)
		    __attribute__((format(printf, 2, 3)));
/* Bounded copy; 0, or -1 if it does not fit. */
int		 sched__copy(char *dst, size_t len, const char *src);

/* Days since 1970-01-01 of a proleptic Gregorian date, and back. */
int64_t		 sched__days_from_civil(int64_t y, unsigned m, unsigned d);
void		 sched__civil_from_days(int64_t z, int64_t *y, unsigned *m,
		    unsigned *d);

/* sched_plan.c */
int		 sched__member_add(struct sched_campaign *,
		    const struct sched_node *, int stage);
struct sched_item *sched__item_add(struct sched_campaign *);
int		 sched__build_edges(struct sched_campaign *, char **cause);
int		 sched__stage_add_rest(struct sched_campaign *);
size_t		 sched__member_find(const struct sched_campaign *, uint64_t);
#define SCHED_NOMEMBER	((size_t)-1)
int		 sched__topo_set(struct sched_campaign *, uint64_t id,
		    uint64_t parent, enum sched_role);
const struct sched_topo *sched__topo_get(const struct sched_campaign *,
		    uint64_t id);

/* sched_run.c */
void		 sched__item_final(struct sched_item *, enum sched_istate,
		    int result, int64_t now, const char *fmt, ...)
		    __attribute__((format(printf, 5, 6)));

#endif /* SCHED_INTERNAL_H */
