/*
 * fanout_internal.h: what the fan-out engine's files share (bridge/
 * only): the pacer, transports, campaigns, members and UP sessions.
 *
 *   pacer.c       per-instance pacing (rate, duty cycle, gap, queue)
 *   fanout.c      the engine: transports, tx loop, rx dispatch, cron
 *   campaign.c    campaigns, members, persistence, results and reports
 *   session.c     one UP session per campaign per transport instance
 *   fanout_json.c the control socket's views
 *
 * docs/fanout.md describes the design.
 */
#ifndef FANOUT_INTERNAL_H
#define FANOUT_INTERNAL_H

#include <sys/queue.h>

#include <stdbool.h>
#include <stdint.h>

#include "upbridged.h"

struct event;

/* glibc's <sys/queue.h> lacks the _SAFE iterators of the BSDs. */
#ifndef TAILQ_FOREACH_SAFE
#define TAILQ_FOREACH_SAFE(var, head, field, tvar)			\
	for ((var) = TAILQ_FIRST(head);					\
	    (var) != NULL && ((tvar) = TAILQ_NEXT(var, field), 1);	\
	    (var) = (tvar))
#endif

/* ------------------------------------------------------------------ */
/* pacer.c                                                              */

/*
 * One pacer per transport instance, the same for every link
 * (research/c-style.md, "Transport plugin interface", pacing):
 *  - a byte rate at bitrate_bps * rate_pct / 100 counting each frame
 *    plus caps.frame_overhead, as a GCRA (virtual scheduling) with a
 *    small burst tolerance, in nanoseconds so that 8,000 frames/s keep
 *    their exact rate;
 *  - duty-cycle credits when duty_cycle_ppm > 0 (LoRaMac-node's
 *    TimeCredits/MaxTimeCredits): refill elapsed * ppm / 1e6, capped at
 *    duty_window_ms * ppm / 1e6, each frame costs its airtime;
 *  - min_gap_us of silence after a frame's estimated end;
 *  - at most tx_queue frames outstanding when the plugin reports
 *    tx_done, and a stop on TP_EAGAIN until writable().
 * Time is the engine's monotonic clock in microseconds.
 */
#define PACER_WAIT	UINT64_MAX	/* wait for writable/tx_done */

struct pacer {
	/* From caps and config. */
	uint64_t	 rate_bps;	/* paced rate; 0 = unlimited */
	uint64_t	 link_bps;	/* caps.bitrate_bps */
	uint32_t	 overhead;	/* link bytes per frame */
	uint32_t	 duty_ppm;
	uint64_t	 duty_cap;	/* credit cap, us * 1e6 units */
	uint32_t	 min_gap_us;
	uint32_t	 tx_queue;
	uint64_t	 burst_ns;	/* GCRA tolerance */

	/* State. */
	uint64_t	 tat_ns;	/* theoretical arrival time */
	uint64_t	 rem;		/* sub-ns remainder of tat */
	uint64_t	 duty_credit;	/* us * 1e6 units */
	uint64_t	 duty_last_us;
	uint64_t	 gap_until_us;
	uint32_t	 inflight;	/* sent, no tx_done yet */
	bool		 track_inflight;	/* the plugin sends tx_done */
	bool		 blocked;	/* TP_EAGAIN, waiting for writable */

	/* Counters. */
	uint64_t	 frames;
	uint64_t	 bytes;		/* frame bytes, without overhead */
	uint64_t	 airtime_us;	/* charged airtime */
	uint64_t	 waits;		/* timer arms for pacing */
	uint64_t	 eagain;
};

void	 pacer__init(struct pacer *, const struct tp_caps *,
	    unsigned int rate_pct, uint64_t now_us);
/* New caps or rate (reload, TP_CAPS_CHANGED); keeps the state. */
void	 pacer__reconf(struct pacer *, const struct tp_caps *,
	    unsigned int rate_pct);
/* Airtime estimate of a frame of len bytes at the link rate, us. */
uint32_t pacer__airtime(const struct pacer *, size_t len);
/*
 * 0 when a frame of len bytes (airtime_us on air) may go at now_us,
 * else the microseconds to wait, or PACER_WAIT when only writable() or
 * tx_done() can unblock.
 */
uint64_t pacer__delay(struct pacer *, uint64_t now_us, size_t len,
	    uint32_t airtime_us);
/* The frame was accepted by the plugin at now_us. */
void	 pacer__sent(struct pacer *, uint64_t now_us, size_t len,
	    uint32_t airtime_us);
void	 pacer__eagain(struct pacer *);
void	 pacer__writable(struct pacer *);
/* A frame left the radio; airtime_us corrects the estimate if > 0. */
void	 pacer__tx_done(struct pacer *, uint32_t est_us, uint32_t airtime_us);
json_t	*pacer__json(struct pacer *, uint64_t now_us);

/* ------------------------------------------------------------------ */
/* fanout.c: the engine and its transports                             */

#define FO_NAME_MAX	63
#define FO_CTRL_RING	64	/* queued control frames per instance */
#define FO_TX_BURST	32	/* frames per tx callback before yielding */
#define FO_TRIES	3	/* targeted asks before a node is written off */
#define FO_MAX_TRIES	3	/* campaign attempts per node (CONN_LOST) */
#define FO_POLL_MS	2000	/* first RESULT poll after the activation delay */
#define FO_POLL_MAX_MS	8000	/* longest gap between RESULT polls */
#define FO_XR_PAIRS	32768	/* (node, block) pairs an XOR round plans */

struct fo_session;

struct fo_ctrl {
	struct tp_addr		 dst;
	struct fo_session	*s;	/* for byte accounting, may be NULL */
	uint16_t		 len;
	uint8_t			 type;
	uint8_t			 frame[UP_FRAME_MAX];
};

struct fo_tp {
	struct fanout		*f;
	char			 name[FO_NAME_MAX + 1];
	char			 type[FO_NAME_MAX + 1];
	const struct tp_ops	*ops;
	struct tp		*tp;
	struct tp_host		 host;
	struct tp_caps		 caps;
	struct pacer		 pacer;
	bool			 up;
	struct event		*tx_ev;

	/* Control frames go before data, in order. */
	struct fo_ctrl		*ring;
	unsigned int		 ring_head;
	unsigned int		 ring_n;

	/* The frame being sent (kept across TP_EAGAIN). */
	const uint8_t		*pend;
	size_t			 pend_len;
	struct tp_addr		 pend_dst;
	struct fo_session	*pend_s;
	bool			 pend_ctrl;
	uint8_t			 pend_type;
	uint8_t			*data_frame;	/* UP_FRAME_MAX, for DATA */

	/* Sessions in a data pass, served round robin. */
	TAILQ_HEAD(, fo_session) data_sessions;

	uint64_t		 cookie;

	/* Engine counters. */
	uint64_t		 rx_frames;
	uint64_t		 rx_bad;
	uint64_t		 rx_ignored;
	uint64_t		 tx_ctrl;
	uint64_t		 tx_data;
	uint64_t		 tx_repair;
	uint64_t		 tx_errors;
	uint64_t		 ctrl_dropped;
};

typedef void	 fanout_report_fn(void *, const char *json_line);

struct fo_deploy;
struct fo_rollout;
struct sched_db;
TAILQ_HEAD(fo_deploys, fo_deploy);
TAILQ_HEAD(fo_rollouts, fo_rollout);
TAILQ_HEAD(fo_campaigns, fo_campaign);
TAILQ_HEAD(fo_sessions, fo_session);

struct fanout {
	struct event_base	*base;
	const struct ub_config	*conf;
	sqlite3			*db;
	struct cache		*cache;
	struct registry		*reg;
	struct uplink		*uplink;

	struct fo_tp		*tps[UB_MAX_TRANSPORTS];
	size_t			 ntps;

	struct fo_deploys	 deploys;
	struct fo_campaigns	 campaigns;
	struct fo_sessions	 sessions;

	/* rollout.c: scheduler campaigns (issue 4). */
	struct fo_rollouts	 rollouts;
	struct sched_db		*sdb;
	struct event		*tick_ev;	/* scheduler tick timer */
	bool			 tick_soon;	/* a deferred tick is queued */
	bool			 sched_quiet;	/* carrying out an ABORT */

	struct event		*start_ev;	/* deferred resume work */
	uint64_t		 last_discover_ms;
	uint64_t		 settle_ms;	/* DISCOVER answers are in */
	bool			 stopping;

	fanout_report_fn	*report_hook;
	void			*report_arg;
	uint64_t		 reports;

	/* campaign.c statements, prepared once. */
	sqlite3_stmt		*st_camp_ins;
	sqlite3_stmt		*st_camp_upd;
	sqlite3_stmt		*st_node_put;
	sqlite3_stmt		*st_sess_put;
	sqlite3_stmt		*st_seq_get;
	sqlite3_stmt		*st_seq_put;

	/* Loss seen by the nodes (ppm), for proactive parity. */
	uint32_t		 fec_loss_ppm;

	/* Engine counters. */
	uint64_t		 rx_unknown_session;
	uint64_t		 results;
	uint64_t		 duplicate_results;
};

uint64_t fanout__now_us(void);
uint64_t fanout__now_ms(void);
int64_t	 fanout__unix_ms(void);
struct fo_tp *fanout__tp(struct fanout *, const char *name);
/*
 * Queues a control frame (encodes `m' into the instance's ring) to
 * `dst', or to the broadcast domain when dst is NULL.  Returns 0, or -1
 * when it cannot be encoded or the ring is full (then it is dropped: the
 * protocol repeats every control frame it needs).
 */
int	 fanout__ctrl(struct fo_tp *, struct fo_session *,
	    const struct tp_addr *dst, const struct up_msg *m);
/* Something may be sendable: run the tx loop soon (deferred). */
void	 fanout__kick(struct fo_tp *);
/* Sessions: enter and leave the instance's data rotation. */
void	 fanout__data_add(struct fo_tp *, struct fo_session *);
void	 fanout__data_remove(struct fo_tp *, struct fo_session *);
/* Forget a session being freed (pending frame, ring accounting). */
void	 fanout__forget_session(struct fo_tp *, struct fo_session *);
/* Test hook: report lines go to fn as well as to the uplink. */
void	 fanout__set_report_hook(struct fanout *, fanout_report_fn *,
	    void *);
/* A random u32 != 0. */
uint32_t fanout__random_u32(void);
void	 fanout__strlcpy(char *, const char *, size_t);

/* ------------------------------------------------------------------ */
/* campaign.c                                                           */

enum fo_cstate {
	FO_C_WAITING,		/* waiting-package */
	FO_C_RUNNING,
	FO_C_PAUSED,
	FO_C_DONE,
	FO_C_CANCELLED
};

/* A member node's state as the gateway sees it. */
enum fo_mstate {
	FO_M_PENDING,		/* assigned, not yet offered */
	FO_M_OFFERED,		/* offered, no answer yet */
	FO_M_RECEIVING,		/* accepted, missing blocks */
	FO_M_DOWNLOADED,	/* holds every block */
	FO_M_VERIFIED,		/* hash and signature checked */
	FO_M_ACTIVATING,	/* told to activate, waiting for RESULT */
	FO_M_UPDATED,		/* final: runs the new version */
	FO_M_FAILED,		/* final */
	FO_M_DECLINED,		/* final: the node declined the offer */
	FO_M_CANCELLED		/* final: the technician cancelled */
};
#define FO_M_FINAL(s)	((s) >= FO_M_UPDATED)

struct fo_member {
	uint64_t		 node;
	struct fo_campaign	*c;
	struct fo_session	*s;	/* NULL until a session takes it */
	struct fo_member	*hnext;	/* campaign hash chain */
	TAILQ_ENTRY(fo_member)	 centry;
	TAILQ_ENTRY(fo_member)	 sentry;

	char			 transport[FO_NAME_MAX + 1];
	struct tp_addr		 addr;
	char			 from[UP_VER_MAX + 1];
	enum fo_mstate		 state;
	uint8_t			 result;

	/* What the node told about its blocks (ACCEPT/STATUS). */
	bool			 known;
	uint32_t		 held;
	uint32_t		 first_missing;

	/* Per-phase bookkeeping. */
	bool			 asked;		/* in the current round */
	bool			 answered;
	uint32_t		 asks;		/* targeted asks this phase */
	uint32_t		 offers;	/* offer rounds unanswered */
	uint32_t		 stall;		/* status rounds w/o progress */
	uint32_t		 progress_held;	/* held at the last round */
	bool			 xr_added;	/* in this round's XOR plan */
	uint64_t		 result_due_ms;	/* ACTIVATING deadline */

	uint32_t		 tries;		/* participations */
	uint64_t		 bytes_base;	/* session bytes at accept */
	uint64_t		 bytes_sent;
	int64_t			 started;	/* unix ms, 0 = not yet */
	int64_t			 finished;
	bool			 reported;
	bool			 hold;		/* rollout: stop at VERIFIED */
	uint64_t		 bytes_told;	/* bytes_sent the rollout has */
};

struct fo_campaign {
	struct fanout		*f;
	int64_t			 rowid;
	char			 id[24];
	char			 deployment[CACHE_ID_MAX + 1];
	char			 package[CACHE_ID_MAX + 1];
	char			 rollout[CACHE_ID_MAX + 1];	/* "" legacy */
	struct cache_pkg	 pkg;
	size_t			 nhw;		/* deployment target */
	char			 hw[CACHE_HW_MAX][CACHE_NAME_MAX + 1];
	enum fo_cstate		 state;
	bool			 ready;		/* blob verified */
	bool			 pinned;
	bool			 fetching;
	struct cache_check	*check;
	struct event		*check_ev;

	TAILQ_HEAD(, fo_member)	 members;
	size_t			 nmembers;
	struct fo_member	**hash;
	size_t			 nhash;
	struct fo_sessions	 sessions;	/* linked by centry */
	TAILQ_ENTRY(fo_campaign) entry;

	int64_t			 created;	/* unix seconds */
	int64_t			 started;
	int64_t			 finished;
};

struct fo_deploy {
	char			 id[CACHE_ID_MAX + 1];
	size_t			 nhw;
	char			 hw[CACHE_HW_MAX][CACHE_NAME_MAX + 1];
	size_t			 ntags;
	size_t			 npkgs;
	struct cache_pkg	*pkgs;
	TAILQ_ENTRY(fo_deploy)	 entry;
};

int	 campaign__init(struct fanout *, char **cause);
void	 campaign__fini(struct fanout *);
/* Loads unfinished campaigns and resumes them after the loop starts. */
int	 campaign__load_all(struct fanout *, char **cause);
/* Deferred start-up work (fetch or verify packages). */
void	 campaign__start_all(struct fanout *);
void	 campaign__manifest(struct fanout *, const struct uplink_manifest *);
void	 campaign__node_seen(struct fanout *, const struct registry_node *,
	    const struct up_announce *);
/* Runs the deployments' assignment for one known node. */
void	 campaign__assign_node(struct fanout *, const struct registry_node *);
void	 campaign__package_ready(struct fanout *, const uint8_t *sha);
void	 campaign__package_failed(struct fanout *, const uint8_t *sha,
	    const char *why);
struct fo_campaign *campaign__find(struct fanout *, const char *id);
struct fo_member *campaign__member(struct fo_campaign *, uint64_t node);
/* Loads the campaign that owned session `id' (late results). */
struct fo_campaign *campaign__load_by_session(struct fanout *, uint32_t id);
/* Writes a member row (batched transaction). */
void	 campaign__put_member(struct fo_member *);
void	 campaign__put_session(struct fo_session *);
void	 campaign__put(struct fo_campaign *);
/*
 * A member reached a final state: persist, update the registry, queue
 * the report and commit.  The caller sends RESULT_ACK afterwards.
 */
void	 campaign__final(struct fo_member *, enum fo_mstate, uint8_t result,
	    const char *version);
/* A member changed state (not final); keeps session counts. */
void	 campaign__set_state(struct fo_member *, enum fo_mstate);
/* Queues the report of a member done at VERIFIED (download-only). */
void	 campaign__report_verified(struct fo_member *);
/* The blob could not be read: stop, verify or fetch it again. */
void	 campaign__blob_error(struct fo_campaign *);
/* A session went idle: maybe the campaign is done. */
void	 campaign__check_done(struct fo_campaign *);
/* Re-queues the reports of results persisted without an uplink. */
void	 campaign__flush_unreported(struct fanout *);
int	 campaign__pause(struct fo_campaign *, char **cause);
int	 campaign__resume(struct fo_campaign *, char **cause);
int	 campaign__cancel(struct fo_campaign *, char **cause);
void	 campaign__free(struct fo_campaign *);
/*
 * Rollouts (rollout.c): the campaign of (rollout, package), created on
 * demand; offer one node (a scheduler OFFER: joins or rejoins even after
 * a final state); release a held node; abort one node.
 */
struct fo_campaign *campaign__for_rollout(struct fanout *, const char *ro,
	    const struct cache_pkg *);
struct fo_member *campaign__offer(struct fo_campaign *, uint64_t node,
	    const char *transport, const struct tp_addr *, const char *from,
	    bool hold);
void	 campaign__release(struct fo_member *);
void	 campaign__abort_member(struct fo_member *, uint8_t code);
/* Verified members that may activate (not held); session.c asks. */
uint32_t campaign__releasable(struct fo_session *);
const char *campaign__state_str(enum fo_cstate);
const char *campaign__mstate_str(enum fo_mstate);
bool	 campaign__active(const struct fo_campaign *);

/* ------------------------------------------------------------------ */
/* rollout.c: scheduler campaigns (docs/campaigns.md, "Integration")    */

struct sched_campaign;

struct fo_rollout {
	struct fanout		*f;
	struct sched_campaign	*sc;
	TAILQ_ENTRY(fo_rollout)	 entry;
};

int	 rollout__init(struct fanout *, char **cause);
void	 rollout__fini(struct fanout *);
/* Deployments with a policy or tags; 1 if `ud' is taken by a rollout. */
int	 rollout__deployment(struct fanout *,
	    const struct uplink_manifest *, const struct uplink_deployment *);
void	 rollout__node_seen(struct fanout *, const struct registry_node *);
/* A member of a rollout campaign verified / reached a final state. */
void	 rollout__verified(struct fo_member *);
void	 rollout__result(struct fo_member *, enum fo_mstate, uint8_t result);
/* Runs sched_tick soon (deferred: never from inside a caller's work). */
void	 rollout__kick(struct fanout *);
/* From the cron: ticks whatever is due. */
void	 rollout__cron(struct fanout *);
struct fo_rollout *rollout__find(struct fanout *, const char *id);
/* upctl: approve|pause|resume|cancel|force-cancel; -1 with cause. */
int	 rollout__action(struct fo_rollout *, const char *action,
	    char **cause);
/* Report record extras for a member's result line (adds to `o'). */
void	 rollout__report_extra(struct fo_member *, json_t *o);

/* ------------------------------------------------------------------ */
/* xrepair.c: XOR repair planning (docs/fanout.md "XOR repair")         */

/*
 * One repair round's plan.  The session feeds it every STATUS answer of
 * the round, then asks for frames: each frame is a list of blocks to XOR
 * (UP XOR, docs/up-protocol.md §4.15) such that every node the frame
 * covers misses exactly one listed block and, as far as its STATUS says,
 * holds all the others.  Memory is bounded by max_pairs (node, missing
 * block) pairs per round; the plan allocates at xr__new and when a round
 * is built, never per frame.
 */
struct xr_plan;

struct xr_plan	*xr__new(uint32_t nblocks, size_t max_pairs);
void		 xr__free(struct xr_plan *);
/* Forgets the round's nodes and frames; keeps the memory. */
void		 xr__reset(struct xr_plan *);
/*
 * Adds one node's STATUS body (call once per node per round): blocks
 * before first_missing are held, the slice says which of
 * [first_missing, first_missing + nbits) are missing, and nothing is
 * known past it.  Returns 0, or -1 when the round would exceed max_pairs
 * (the plan is then unusable until xr__reset: resend the union instead).
 */
int		 xr__add(struct xr_plan *, const struct up_status_body *);
/*
 * Packs every pair into frames whose block lists encode (u32 first index
 * plus LEB128 gaps, §4.15) in at most `room' bytes and hold at most
 * UP_XOR_MAX blocks.  Returns the number of frames.
 */
size_t		 xr__build(struct xr_plan *, size_t room);
/* Frame i of the last build: its *n block indices, increasing. */
const uint32_t	*xr__frame(const struct xr_plan *, size_t i, uint8_t *n);
/* Pairs added this round. */
size_t		 xr__npairs(const struct xr_plan *);

/* ------------------------------------------------------------------ */
/* session.c                                                            */

enum fo_phase {
	FO_P_IDLE,		/* nothing to do until a member changes */
	FO_P_OFFER,		/* OFFER repeats, collecting ACCEPTs */
	FO_P_DATA,		/* a pass over the needed blocks */
	FO_P_STATUS,		/* STATUS_REQ round */
	FO_P_VERIFY,		/* VERIFY round */
	FO_P_ACTIVATE,		/* ACTIVATE repeats */
	FO_P_RESULT,		/* waiting for final RESULTs */
	FO_P_STOPPED		/* paused, cancelled or finished */
};

struct fo_session {
	struct fanout		*f;
	struct fo_campaign	*c;
	struct fo_tp		*t;		/* NULL: instance not open */
	char			 transport[FO_NAME_MAX + 1];
	uint32_t		 id;
	uint16_t		 block_size;
	uint32_t		 nblocks;
	enum fo_phase		 phase;
	TAILQ_ENTRY(fo_session)	 centry;	/* campaign's list */
	TAILQ_ENTRY(fo_session)	 fentry;	/* engine's list */
	TAILQ_ENTRY(fo_session)	 tentry;	/* data rotation */
	bool			 in_data;

	TAILQ_HEAD(, fo_member)	 members;
	size_t			 nmembers;

	struct up_offer		 offer;
	int			 fd;		/* cache blob, -1 if closed */
	uint8_t			*needed_buf;
	struct up_bitmap	 needed;
	uint32_t		 nneeded;
	uint32_t		 cursor;
	uint32_t		 pass;		/* data passes started */
	uint32_t		 step;		/* repeats/asks in the phase */
	uint64_t		 phase_ms;	/* when the phase began */
	struct event		*timer;		/* phase timer */
	struct event		*rtimer;	/* RESULT deadlines and polls */
	uint64_t		 poll_ms;	/* next RESULT poll, 0: none */
	uint32_t		 poll_gap_ms;
	uint32_t		 nstate[FO_M_CANCELLED + 1];
	uint32_t		 unanswered;	/* asked, no answer yet */
	uint32_t		 verify_asked;	/* nodes the VERIFY round asked */
	uint8_t			 verify_nudge;	/* 0, 1 armed, 2 sent */

	uint64_t		 bytes_sent;
	uint64_t		 data_frames;
	uint64_t		 repair_frames;
	uint64_t		 ctrl_frames;
	uint64_t		 rate_ms;	/* rate sampling */
	uint64_t		 rate_bytes;
	uint64_t		 rate_bps;
	int64_t			 started;	/* unix ms */

	/* TS004 parity repair (session.c, docs/fanout.md "Parity repair"). */
	uint16_t		 fec_k;		/* 0: no parity this session */
	uint16_t		 fec_pro;	/* proactive rows per group */
	uint32_t		 fec_ngroups;
	uint32_t		 fec_scan;	/* next group to serve parity */
	uint32_t		 fec_p1_blocks;	/* DATA in the first pass */
	uint16_t		*fec_next;	/* next unused row, per group */
	uint16_t		*fec_plan;	/* rows the round asks for */
	uint16_t		*fec_pend;	/* rows left this pass */
	uint8_t			*fec_flags;	/* FO_FEC_* per group */
	uint8_t			*fec_buf;	/* block_size, pread scratch */
	uint64_t		 parity_frames;
	uint64_t		 fec_fallbacks;	/* groups sent as DATA again */

	/* XOR repair (xrepair.c, docs/fanout.md "XOR repair"). */
	struct xr_plan		*xr;		/* NULL: no XOR this session */
	size_t			 xr_room;	/* bytes for a frame's list */
	bool			 xr_round;	/* this status round plans XOR */
	bool			 xr_over;	/* ... and overflowed the plan */
	size_t			 xr_nframes;	/* XOR frames of this pass */
	size_t			 xr_next;
	uint8_t			*xr_dneed_buf;	/* blocks that go as DATA */
	struct up_bitmap	 xr_dneed;
	uint8_t			*xr_buf;	/* block_size, pread scratch */
	uint64_t		 xor_frames;
};

/*
 * Creates a session of campaign c on transport `name' with session id
 * `id' (0: pick one) and block_size (0: compute from caps and members).
 * The blob must be complete in the cache.  Returns NULL with cause.
 */
struct fo_session *session__new(struct fo_campaign *, const char *transport,
	    uint32_t id, uint16_t block_size, char **cause);
void	 session__free(struct fo_session *);
void	 session__add_member(struct fo_session *, struct fo_member *);
void	 session__remove_member(struct fo_session *, struct fo_member *);
/* Starts or continues work: picks the next phase from member states. */
void	 session__start(struct fo_session *);
/* Stops sending and timers (pause, cancel, shutdown). */
void	 session__stop(struct fo_session *);
/* Releases the fd and bitmap of a session with nothing left to do. */
void	 session__close(struct fo_session *);
/* A member changed (joined, re-admitted): wake an idle session. */
void	 session__poke(struct fo_session *);
/*
 * Fills the next DATA frame of the pass into buf[cap]; returns its
 * length, or 0 when the pass is over (the session then leaves the data
 * rotation and moves on).
 */
size_t	 session__fill_data(struct fo_session *, uint8_t *buf, size_t cap,
	    struct tp_addr *dst);
/* A frame of this session was sent. */
void	 session__sent(struct fo_session *, uint8_t type, size_t len);
/* Frames from nodes, already decoded, with their source address. */
void	 session__accept(struct fo_session *, const struct up_msg *,
	    const struct tp_addr *src);
void	 session__status(struct fo_session *, const struct up_msg *,
	    const struct tp_addr *src);
void	 session__result(struct fo_session *, const struct up_msg *,
	    const struct tp_addr *src);
void	 session__abort(struct fo_session *, const struct up_msg *,
	    const struct tp_addr *src);
/* An ANNOUNCE of a member naming this session. */
void	 session__announced(struct fo_session *, struct fo_member *,
	    const struct up_announce *);
/* Sends ABORT to every node of the session (cancel). */
void	 session__send_abort(struct fo_session *, uint8_t reason);
struct fo_session *session__find(struct fanout *, uint32_t id);
const char *session__phase_str(enum fo_phase);
uint64_t session__rate_bps(struct fo_session *);

#endif /* FANOUT_INTERNAL_H */
