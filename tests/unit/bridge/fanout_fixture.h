/*
 * fanout_fixture.h: the campaigns' test fixture (test_bridge_fanout.c):
 * a temp dir with a real SQLite database and cache, the registry, a
 * tp_mem medium, the daemon's engine wiring (fanout_*) with no uplink
 * (results go to a report hook), and simulated nodes running up/'s node
 * engine, on the real clock.
 */
#ifndef FANOUT_FIXTURE_H
#define FANOUT_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include "fanout_internal.h"
#include "sim_node.h"
#include "tp_mem.h"
#include "ub_test.h"

#define FX_MAX_NODES	24
#define FX_MAX_REPORTS	64

struct fx {
	char			 dir[64];
	struct event_base	*base;
	struct event		*beat;
	sqlite3			*db;
	struct cache		*cache;
	struct registry		*reg;
	struct fanout		*f;
	struct ub_config	 conf;
	struct tp_mem_params	 params;
	struct tp_mem_medium	*m;
	struct sim_node		*nodes[FX_MAX_NODES];
	int			 nnodes;

	uint8_t			*pkg;
	size_t			 pkg_len;
	struct cache_pkg	 cp;
	struct uplink_deployment dep;
	struct uplink_manifest	 mf;

	int			 nreports;
	char			*reports[FX_MAX_REPORTS];
};

/* The test's fixture, freed by the teardown if an assertion failed. */
extern struct fx	*cur_fx;

void		 fx_report(void *, const char *);
void		 fx_beat(int, short, void *);
/* Runs the loop until pred() or timeout; returns pred(). */
bool		 fx_run(struct fx *, bool (*)(struct fx *), unsigned int);
bool		 fx_never(struct fx *);
void		 fx_sleep(struct fx *, unsigned int);
void		 fx_conf(struct fx *, const struct tp_ops *);
void		 fx_default_params(struct tp_mem_params *);
void		 fx_put_blob(struct fx *, size_t, uint32_t);
void		 fx_engine(struct fx *);
/* Temp dir, db, cache, registry, medium and engine; no nodes yet. */
struct fx	*fx_new(const struct tp_ops *, const struct tp_mem_params *,
		    size_t);
void		 fx_free(struct fx *);
struct sim_node	*fx_node(struct fx *, uint64_t, uint32_t, double);
bool		 fx_all_known(struct fx *);
int		 fx_nstate(struct fx *, uint8_t);
/* The campaign's state, or "" if none. */
const char	*fx_cstate(struct fx *, char *, size_t);
bool		 fx_done(struct fx *);
bool		 fx_all_acked(struct fx *);
void		 fx_start(struct fx *);

#endif /* FANOUT_FIXTURE_H */
