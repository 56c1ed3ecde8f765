/*
 * sim_node.h: simulated end nodes for the fan-out tests, each running
 * the real node engine of up/ (up_node_*) over a tp_mem receiver, with
 * its slot, state and bitmap in memory.  Activation "reboots" the node
 * after boot_delay_ms into the new version (health check passes).  A
 * node runs on its medium's fake clock when it has one (tclock.h).
 */
#ifndef SIM_NODE_H
#define SIM_NODE_H

#include <stdbool.h>
#include <stdint.h>

#include "up.h"
#include "tclock.h"
#include "tp_mem.h"

struct event_base;
struct cache_sha;

struct sim_node {
	struct up_node		 n;
	struct up_node_info	 info;
	struct tp_mem_node	*mn;
	struct event_base	*base;
	struct event		*tick_ev;
	struct event		*boot_ev;
	struct tclock		*tc;		/* the medium's fake clock */
	struct ttimer		 tick_t;	/* ... and its timers */
	struct ttimer		 boot_t;

	uint8_t			*slot;
	uint32_t		 slot_cap;
	uint8_t			*bm;		/* engine's bitmap buffer */
	size_t			 bm_cap;
	struct cache_sha	*sha;		/* port->sha256_* */
	bool			 sha_open;

	/* "Flash": the persisted state and bitmap. */
	uint8_t			 saved_state[UP_NODE_STATE_MAX];
	size_t			 saved_state_len;
	uint8_t			*saved_bm;
	size_t			 saved_bm_len;
	bool			 saved;

	uint32_t		 rng;
	bool			 deaf;		/* ignores every frame */
	bool			 mute;		/* sends nothing */
	bool			 no_xor;	/* an older node: drops XOR */
	bool			 full_only;	/* ... drops compact frames */
	uint32_t		 lose_aborts;	/* the first n ABORTs lost */
	uint32_t		 boot_delay_ms;
	char			 next_version[UP_VER_MAX + 1];
	bool			 rebooting;
	/*
	 * A reboot during verify: at the first VERIFY it receives, the node
	 * hears and says nothing for this long (ms; UINT32_MAX: for good).
	 */
	uint32_t		 down_at_verify_ms;
	uint32_t		 down_until;	/* sim_now_ms(), 0: up */
	bool			 down_done;
	/* Its slot serves another session: every OFFER gets "busy". */
	bool			 busy;

	uint64_t		 dup_data;	/* DATA for blocks held */
	uint64_t		 rx_data;
	/* Link shapes: blocks the module delivered out of band. */
	uint32_t		*oob_cnt;	/* bytes per block */
	uint8_t			*oob_buf;	/* the blocks being gathered */
	uint32_t		 oob_n;
	uint32_t		 oob_session;
	uint64_t		 oob_blocks;	/* up_node_put_block()s */
	uint32_t		 link_mtu;	/* its connection's, 0: none */
	struct up_node_link	 nlink;		/* its node link (compact) */
	bool			 nlink_set;
	uint8_t			 last_result[UP_FRAME_MAX];
	size_t			 last_result_len;
	uint64_t		 results_sent;
	/* Count lists sent (§11.7 form 2): when, and how many while it
	 * held every block. */
#define SIM_NODE_COUNTS_AT	64
	uint64_t		 counts_at[SIM_NODE_COUNTS_AT];	/* us */
	uint64_t		 counts_sent;
	uint64_t		 counts_complete;
};

/*
 * A node with link address `id' on medium m (loss in percent), running
 * component `comp' at `version', hardware `hw', slot of slot_cap bytes.
 * Starts the engine (it announces itself).
 */
struct sim_node	*sim_node_new(struct event_base *, struct tp_mem_medium *m,
		    uint8_t id, uint64_t node_id, const char *hw,
		    const char *comp, const char *version, uint32_t slot_cap,
		    double loss_pct, uint32_t seed);
void		 sim_node_free(struct sim_node *);
uint8_t		 sim_node_state(struct sim_node *, uint32_t *session,
		    uint8_t *result);
const char	*sim_node_version(struct sim_node *, const char *comp);
/* Sends the last RESULT frame again (a duplicate). */
void		 sim_node_resend_result(struct sim_node *);
/*
 * Its node link (docs/up-protocol.md §11.1: UP_NL_COMPACT, _CRC,
 * _ADDRESSED); on a connected medium its uplink MTU then follows its
 * connection's.  Survives reboots.
 */
void		 sim_node_set_link(struct sim_node *, uint8_t flags);

#endif /* SIM_NODE_H */
