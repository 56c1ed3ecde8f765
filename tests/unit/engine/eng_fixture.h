/*
 * eng_fixture.h: the engine driven alone, on a fake clock, over tp_mem,
 * with simulated nodes running up/'s node engine.
 *
 * The fixture is a small daemon of its own: it gives the engine a clock
 * (tclock.h), a link (a tp_mem medium), one session with a package held
 * in memory as its block source, and callbacks that record what the
 * engine reports.  Announced nodes whose hardware matches are made
 * members (at start, and later when they announce: dynamic membership);
 * a member written off for silence is taken back up to three times.  No
 * SQLite, cache or campaign is involved.
 *
 * Time: efx_run() delivers the medium's frames (zero-time libevent
 * events) and, when nothing is left to deliver, jumps the clock to the
 * next timer (the engine's one deadline, the nodes' timers) and runs it.
 * Runs are deterministic and take no real time.
 */
#ifndef ENG_FIXTURE_H
#define ENG_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine.h"
#include "sim_node.h"
#include "tclock.h"
#include "tp_mem.h"

#define EFX_MAX_NODES	24

/* What the fixture's daemon knows of a node. */
struct efx_node {
	uint64_t		 id;
	bool			 announced;
	bool			 targeted;	/* its hw matches the package */
	struct tp_addr		 addr;
	uint16_t		 max_frame;
	struct eng_member	*m;		/* NULL: not a member */
	enum eng_mstate		 state;		/* as reported */
	uint8_t			 result;
	uint32_t		 held;
	uint32_t		 recv_held;	/* most held while RECEIVING */
	unsigned int		 tries;
	unsigned int		 finals;	/* member_final callbacks */
	unsigned int		 started;	/* ENG_MEV_STARTED */
	char			 version[UP_VER_MAX + 1];
	char			 why[64];	/* of the last write-off */
};

struct efx {
	struct event_base	*base;
	struct tclock		 tc;
	struct ttimer		 eng_t;		/* the engine's deadline */
	struct eng		*e;
	struct eng_params	 params;
	struct tp_mem_params	 mp;
	struct tp_mem_medium	*m;
	struct eng_link		*l;
	struct sim_node		*nodes[EFX_MAX_NODES];
	int			 nnodes;
	struct efx_node		 kn[EFX_MAX_NODES];	/* by node index */

	/* The package, its descriptor and the source's state. */
	uint8_t			*pkg;
	size_t			 pkg_len;
	struct up_offer		 offer;
	char			 hw[UP_NAME_MAX + 1];	/* target, "" any */
	uint64_t		 limit;		/* verified prefix */
	bool			 complete;
	bool			 read_fails;

	struct eng_session	*s;
	uint32_t		 sid;
	uint16_t		 block_size;	/* of the session once open */
	bool			 auto_join;	/* announced nodes join */

	/* What the engine reported. */
	unsigned int		 saves;
	unsigned int		 durable_saves;
	unsigned int		 settled;
	unsigned int		 errors;
	unsigned int		 strangers;
	unsigned int		 announces;
	unsigned int		 unknown;
	unsigned int		 callbacks;	/* every callback */
	/* Set: the next member callback removes that member. */
	struct eng_member	*remove_on_cb;
	/* member_offer: nodes the daemon does not let go (removed). */
	uint64_t		 veto_node;
	unsigned int		 offers_asked;
};

/* The test's fixture, freed by the teardown if an assertion failed. */
extern struct efx	*cur_efx;

void		 efx_default_params(struct eng_params *);
void		 efx_default_link(struct tp_mem_params *);
/*
 * A fixture with a package of pkg_len bytes, the engine, and its link
 * open on a medium with caps mp (NULL: a 50 Mbit/s LAN); no node yet.
 * p (NULL: efx_default_params) is the link's profile.
 */
struct efx	*efx_new(const struct tp_ops *, const struct tp_mem_params *mp,
		    const struct eng_params *p, size_t pkg_len);
void		 efx_free(struct efx *);
/* A new engine with its link open (efx_new's; after eng_free: restart). */
void		 efx_engine(struct efx *, const struct tp_ops *);
/* A node (hw "hw-a", app 1.0.0) with loss in percent. */
struct sim_node	*efx_node(struct efx *, uint64_t id, uint32_t slot,
		    double loss);
struct sim_node	*efx_node_hw(struct efx *, uint64_t id, const char *hw,
		    uint32_t slot, double loss);
/* ... running component `comp' (1.0.0). */
struct sim_node	*efx_node_comp(struct efx *, uint64_t id, const char *hw,
		    const char *comp, uint32_t slot, double loss);
struct efx_node	*efx_known(struct efx *, uint64_t id);
/*
 * Runs until pred() or timeout_ms of fake time; returns pred().  Fails
 * the test when nothing is left to happen before pred().
 */
bool		 efx_run(struct efx *, bool (*)(struct efx *),
		    unsigned int timeout_ms);
bool		 efx_never(struct efx *);
void		 efx_sleep(struct efx *, unsigned int ms);
bool		 efx_all_known(struct efx *);
/* Every member final and every node acknowledged and booted. */
bool		 efx_done(struct efx *);
int		 efx_nstate(struct efx *, uint8_t up_node_state);
int		 efx_nfinal(struct efx *, enum eng_mstate);
/*
 * Creates the session (id sid, or a fresh one), makes every announced
 * targeted node a member and starts it with the package as its source
 * (complete unless the test set limit/complete before).
 */
void		 efx_start(struct efx *);
void		 efx_session(struct efx *, uint32_t id, uint16_t block_size);
void		 efx_join_all(struct efx *);
void		 efx_go(struct efx *);
/* Frames of a type sent, DATA bytes, ... */
struct tp_mem_counts *efx_counts(struct efx *);

#endif /* ENG_FIXTURE_H */
