/*
 * engine_internal.h: what the engine's files share (engine/ only).
 *
 *   engine.c   the engine: clock, deadlines, deferred work, callbacks
 *   link.c     links: transport instances, control ring, tx loop, rx
 *   pacer.c    per-link pacing (rate, duty cycle, gap, queue)
 *   session.c  a session's life and its members
 *   phase.c    the phase machine: offer, data pass, verify
 *   status.c   status rounds and the round-trip estimate
 *   answer.c   what the nodes say: ACCEPT, STATUS, RESULT, ABORT
 *   result.c   ACTIVATE, result deadlines and polls
 *   parity.c   TS004 parity repair
 *   xor.c      XOR repair frames (the session's side)
 *   xrepair.c  XOR repair planning
 *   peer.c     peers of a link, slots and the fair queue of members
 *              served alone, connections (TP_CAP_CONNECT)
 *   unicast.c  a member served alone: its own offer, data, status,
 *              verify, activate and result, from its exact needed set
 *   poll.c     polled links (TP_CAP_POLLED): polls instead of windows
 *   offload.c  module offload (TP_CAP_OFFLOAD)
 *   cframe.c   UP's compact form on links that use it (§11): frames,
 *              session tags, segmentation and reassembly
 *
 * State lives in the struct it describes: a link's in struct eng_link, a
 * session's (phase, round trip, repair plans) in struct eng_session, a
 * member's in struct eng_member.  docs/engine.md has the design.
 */
#ifndef ENGINE_INTERNAL_H
#define ENGINE_INTERNAL_H

#include <sys/queue.h>

#include <stdbool.h>
#include <stdint.h>

#include "engine.h"

/* glibc's <sys/queue.h> lacks the _SAFE iterators of the BSDs. */
#ifndef TAILQ_FOREACH_SAFE
#define TAILQ_FOREACH_SAFE(var, head, field, tvar)			\
	for ((var) = TAILQ_FIRST(head);					\
	    (var) != NULL && ((tvar) = TAILQ_NEXT(var, field), 1);	\
	    (var) = (tvar))
#endif

#define ENG_NEVER	UINT64_MAX	/* no deadline */
#define ENG_NAME_MAX	63
#define ENG_MAX_LINKS	16
#define ENG_CTRL_RING	64	/* queued control frames per link */
#define ENG_TX_BURST	32	/* frames per tx run before yielding */
#define ENG_TRIES	3	/* targeted asks before a write-off */
#define ENG_POLL_MS	2000	/* first RESULT poll after the delay */
#define ENG_POLL_MAX_MS	8000	/* longest gap between RESULT polls */
#define ENG_XR_PAIRS	32768	/* (node, block) pairs an XOR round plans */
#define ENG_SILENCE_MS	10000	/* node_silence_ms from a fast link */
#define ENG_BUSY_MS	600000	/* node_busy_ms by default */
#define ENG_BUSY_MIN_MS	50	/* first wait after a busy refusal */
#define ENG_BUSY_MAX_MS	5000	/* ... doubling up to this */
#define ENG_USLOTS	4	/* members served alone at once, by default */
#define ENG_PEERS_MAX	1024	/* peers a link keeps track of */
#define ENG_RETRY_MS	1000	/* a dropped connection: back in the queue */
#define ENG_OFFLOAD_IDLE_S 3600	/* a silent module is given up */
#define ENG_DISC_SHARE	10	/* discovery: 1/10 of the budget or time */
#define ENG_DISC_MIN	8	/* nodes a DISCOVER's schedule is sized for */

/* Logging through up/'s hook (the daemon points it at its log). */
#define eng__warnx(...)	up_logf(UP_LOG_WARN, __VA_ARGS__)
#define eng__info(...)	up_logf(UP_LOG_INFO, __VA_ARGS__)
#define eng__debug(...)	up_logf(UP_LOG_DEBUG, __VA_ARGS__)

/* ------------------------------------------------------------------ */
/* duty.c                                                               */

/*
 * duty.c: the duty-cycle ledger of one regulated band, over a sliding
 * window (ETSI EN 300 220: on-air time per hour).  A frame's airtime is
 * booked in the slot of its end; a slot leaves once its whole span lies
 * a window in the past, so the ledger never undercounts a window.
 */
#define LEDGER_SLOTS		256	/* slots per window */
#define LEDGER_RING		512	/* slots kept (a window and more) */
#define ENG_DUTY_WINDOW_MS	3600000	/* default window: 1 h */

struct eng_ledger {
	uint32_t	 ppm;		/* 0: unregulated, nothing allocated */
	uint64_t	 window_us;
	uint64_t	 budget_us;	/* window * ppm / 1e6 */
	uint64_t	 slot_us;
	uint64_t	 tail;		/* oldest slot still in the window */
	uint64_t	 head;		/* newest slot booked */
	uint64_t	 total;		/* airtime booked in [tail, head] */
	uint64_t	*no;		/* LEDGER_RING: slot number of entry */
	uint64_t	*used;		/* LEDGER_RING: airtime booked, us */
	uint64_t	 spent;		/* airtime ever booked (counter) */
};

/* (Re)configures a band; keeps what is booked.  ppm 0 frees it. */
void	 eng__ledger_conf(struct eng_ledger *, uint32_t ppm,
	    uint32_t window_ms, uint64_t now_us);
void	 eng__ledger_free(struct eng_ledger *);
/* Airtime in the window now, us. */
uint64_t eng__ledger_used(struct eng_ledger *, uint64_t now_us);
/* 0 when air_us more fits the window now, else the us to wait. */
uint64_t eng__ledger_wait(struct eng_ledger *, uint64_t now_us,
	    uint32_t air_us);
/* Books a frame sent now; returns its slot (for eng__ledger_adjust). */
uint64_t eng__ledger_charge(struct eng_ledger *, uint64_t now_us,
	    uint32_t air_us);
/* Corrects a booked frame by delta_us (tx_done's measured airtime). */
void	 eng__ledger_adjust(struct eng_ledger *, uint64_t slot,
	    int64_t delta_us);

/* ------------------------------------------------------------------ */
/* pacer.c                                                              */

/*
 * One pacer per link, the same for every link (research/c-style.md,
 * "Transport plugin interface", pacing):
 *  - a byte rate at bitrate_bps * rate_pct / 100 counting each frame
 *    plus caps.frame_overhead, as a GCRA (virtual scheduling) with a
 *    small burst tolerance, in nanoseconds so that 8,000 frames/s keep
 *    their exact rate;
 *  - a duty-cycle ledger per regulated band (duty.c): caps.band[] when
 *    caps.nbands > 0, else one band of caps.duty_cycle_ppm; each frame
 *    is booked in the band the plugin's band() op names for it;
 *  - min_gap_us of silence after a frame's estimated end;
 *  - at most tx_queue frames outstanding when the plugin reports
 *    tx_done, and a stop on TP_EAGAIN until writable().
 * Time is the engine's clock in microseconds.
 */
#define PACER_WAIT	UINT64_MAX	/* wait for writable/tx_done */

struct pacer {
	/* From caps and the profile. */
	uint64_t	 rate_bps;	/* paced rate; 0 = unlimited */
	uint64_t	 link_bps;	/* caps.bitrate_bps */
	uint32_t	 overhead;	/* link bytes per frame */
	uint32_t	 duty_ppm;	/* largest share of any band, 0: none */
	uint8_t		 nbands;	/* ledgers in use (1 without bands) */
	struct eng_ledger band[TP_BANDS_MAX];
	uint32_t	 min_gap_us;
	uint32_t	 tx_queue;
	uint64_t	 burst_ns;	/* GCRA tolerance */
	uint64_t	 batch_ns;	/* added to a rate wait; 0: none */

	/* State. */
	uint64_t	 tat_ns;	/* theoretical arrival time */
	uint64_t	 rem;		/* sub-ns remainder of tat */
	uint64_t	 gap_until_us;
	uint64_t	 air_until_us;	/* the frames handed over end, est. */
	uint32_t	 inflight;	/* sent, no tx_done yet */
	bool		 track_inflight;	/* the plugin sends tx_done */
	bool		 blocked;	/* TP_EAGAIN, waiting for writable */

	/* Counters. */
	uint64_t	 frames;
	uint64_t	 bytes;		/* frame bytes, without overhead */
	uint64_t	 airtime_us;	/* charged airtime (corrected) */
	uint64_t	 waits;		/* timer arms for pacing */
	uint64_t	 eagain;
};

void	 pacer__init(struct pacer *, const struct tp_caps *,
	    unsigned int rate_pct, uint64_t now_us);
/* New caps or rate (reload, TP_CAPS_CHANGED); keeps the state. */
void	 pacer__reconf(struct pacer *, const struct tp_caps *,
	    unsigned int rate_pct, uint64_t now_us);
void	 pacer__free(struct pacer *);
/* Airtime estimate of a frame of len bytes at the link rate, us. */
uint32_t pacer__airtime(const struct pacer *, size_t len);
/*
 * 0 when a frame of len bytes (airtime_us on air, in duty band `band')
 * may go at now_us, else the microseconds to wait, or PACER_WAIT when
 * only writable() or tx_done() can unblock.
 */
uint64_t pacer__delay(struct pacer *, uint64_t now_us, size_t len,
	    uint32_t airtime_us, unsigned int band);
/*
 * The frame was accepted by the plugin at now_us (len 0: a poll);
 * returns the ledger slot it was booked in (for pacer__tx_done).
 */
uint64_t pacer__sent(struct pacer *, uint64_t now_us, size_t len,
	    uint32_t airtime_us, unsigned int band);
void	 pacer__eagain(struct pacer *);
void	 pacer__writable(struct pacer *);
/*
 * A frame left the radio.  The frame was charged `charged_us' in band
 * `band', slot `slot' (pacer__sent); a measured airtime_us > 0 replaces
 * that charge.  known: the frame is the engine's (its record was found);
 * otherwise only the count of frames in flight moves.
 */
void	 pacer__tx_done(struct pacer *, bool known, unsigned int band,
	    uint64_t slot, uint32_t charged_us, uint32_t airtime_us);
/* The figures for eng_link_info. */
void	 pacer__info(struct pacer *, uint64_t now_us,
	    struct eng_pacer_info *);

/* ------------------------------------------------------------------ */
/* xrepair.c: XOR repair planning (docs/engine.md "XOR repair")         */

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
/* The engine, links, sessions and members                             */

TAILQ_HEAD(eng_sessions, eng_session);
TAILQ_HEAD(eng_members, eng_member);

struct eng {
	struct event_base	*base;		/* lent to the plugins */
	struct eng_clock	 clock;
	struct eng_cb		 cb;
	struct eng_params	 defaults;

	struct eng_link		*links[ENG_MAX_LINKS];
	size_t			 nlinks;
	struct eng_sessions	 sessions;

	uint64_t		 armed;		/* deadline given to arm() */
	unsigned int		 busy;		/* inside an entry point */
	bool			 pending;	/* deferred session work */
	bool			 post;		/* deferred callbacks to fire */
	bool			 posting;	/* firing deferred callbacks */
	struct eng_members	 graveyard;	/* removed while busy */

	struct eng_stats	 stats;
};

/* A control frame, encoded once when queued. */
struct eng_ctrl {
	struct tp_addr		 dst;
	struct eng_session	*s;	/* for byte accounting, may be NULL */
	/*
	 * A request to a member served alone: its wait for the answer
	 * starts when the frame leaves (unicast.c), not when queued.
	 */
	struct eng_member	*m;
	uint64_t		 node;	/* its target, 0: every node */
	uint32_t		 epoch;	/* s->epoch when queued */
	uint32_t		 reply_ms;	/* answers come within, 0: none */
	uint16_t		 len;
	uint8_t			 type;
	uint8_t			 frame[UP_FRAME_MAX];
};

/* peer.c: a peer of a link (docs/engine.md, "Link shapes"). */
enum eng_pstate {
	ENG_PS_IDLE,		/* known, not connected (or no connections) */
	ENG_PS_CONNECTING,	/* connect() asked, no answer yet */
	ENG_PS_UP,		/* connected: frames may go */
	ENG_PS_CLOSING		/* its last frames go, then disconnect() */
};

struct eng_peer {
	struct eng_link		*l;
	uint32_t		 idx;		/* in l->peers, stable */
	struct tp_addr		 addr;
	enum eng_pstate		 state;
	uint32_t		 mtu;		/* this connection's, 0: caps */
	int16_t			 rssi_dbm;
	/* Who uses it: a member served alone, or a discovery visit. */
	struct eng_member	*m;
	bool			 visit;		/* DISCOVER, then its ANNOUNCE */
	bool			 visit_want;	/* a visit is due */
	bool			 slot;		/* holds one of l->slots */
	bool			 disc;		/* disconnect() called */
	uint64_t		 visit_at;	/* visit's answer deadline, us */
	uint64_t		 visited_ms;	/* last visit, 0: never */
	/*
	 * A visit without an answer (a server not listening yet, a node
	 * rebooting, its ANNOUNCE lost) is made again, not before
	 * visit_nb (us), after 1, 2, 4 ... 32 s (visit_fails in a row).
	 */
	uint64_t		 visit_nb;
	uint32_t		 visit_fails;
	uint64_t		 used_ms;	/* last used or heard */
	uint32_t		 queued;	/* its frames in the ring */
	uint32_t		 inflight;	/* sent, no tx_done yet */
	uint32_t		 connects;
	uint32_t		 drops;
	uint32_t		 fails;
	uint64_t		 tx_frames;
	uint64_t		 tx_bytes;
	uint64_t		 rx_frames;

	/*
	 * Polls (poll.c): on a polled link nothing comes from the node
	 * unless it is polled.  Queued in the link's pollq (not before
	 * poll_at), then in its pollfly until tx_done(poll_cookie).  rm is
	 * the member a session-level poll round waits for (a member served
	 * alone is `m').
	 */
	TAILQ_ENTRY(eng_peer)	 pentry;
	uint8_t			 pq;		/* ENG_PQ_* */
	uint64_t		 poll_at;
	uint64_t		 poll_cookie;
	uint32_t		 poll_est;	/* poll_time charged, us */
	uint64_t		 poll_slot;	/* ... in this duty slot */
	uint8_t			 poll_band;	/* ... and band */
	bool			 poll_rx;	/* a frame came during it */
	struct eng_member	*rm;
	uint32_t		 rpolls;	/* polls of that round */

	/* Segmented messages from this node (cframe.c), lazily. */
	struct up_seg_rx	 seg;
	uint8_t			*seg_buf;	/* UP_FRAME_MAX */
};
#define ENG_PQ_NONE	0
#define ENG_PQ_WAIT	1	/* in l->pollq */
#define ENG_PQ_FLY	2	/* in l->pollfly */
TAILQ_HEAD(eng_queue, eng_member);
TAILQ_HEAD(eng_peerq, eng_peer);

/*
 * A frame handed to the plugin, kept until its tx_done (or until the
 * ring wraps, for plugins that send none): what it was charged, for the
 * duty-cycle correction, and what waits for it to leave (its session's
 * timer, a half-duplex link's quiet time).  docs/engine.md, "Timers".
 */
struct eng_txrec {
	uint64_t		 cookie;	/* 0: done */
	struct eng_session	*s;	/* NULL: none, or freed since */
	uint64_t		 slot;	/* its duty ledger slot */
	uint32_t		 charged_us;
	uint32_t		 reply_ms;
	uint8_t			 type;
	uint8_t			 band;
	bool			 anchor;	/* s waits for it to leave */
};
#define ENG_TXREC	256	/* frames remembered per link */

/*
 * The link's profile in use (profile.c): configured values where the
 * link's section fixed them, else derived from its caps, airtime and
 * duty cycle, never below the configured ones.
 */
struct eng_profile {
	uint32_t		 duty_ppm;	/* of the broadcast band */
	uint32_t		 frame_us;	/* an mtu frame on air */
	uint32_t		 answer_bytes;	/* a node's largest frame */
	uint32_t		 answer_us;	/* ... on air */
	uint32_t		 turn_ms;	/* reply slot margin */
	bool			 slow;		/* answers need reply slots */
	uint32_t		 status_window_ms;	/* a round's floor */
	uint32_t		 offer_window_ms;
	uint32_t		 discover_s;	/* 0: at open only */
	uint32_t		 poll_ms;	/* RESULT polls: first gap */
	uint32_t		 poll_max_ms;	/* ... longest gap */
	uint32_t		 result_timeout_s;
	uint32_t		 hash_kbs;	/* node hashing, kB/s */
};

struct eng_link {
	struct eng		*e;
	char			 name[ENG_NAME_MAX + 1];
	char			 type[ENG_NAME_MAX + 1];
	const struct tp_ops	*ops;
	struct tp		*tp;
	struct tp_host		 host;
	struct tp_caps		 caps;
	struct eng_params	 p;		/* its configured profile */
	struct eng_profile	 pf;		/* ... in use (profile.c) */
	struct pacer		 pacer;
	bool			 up;
	uint64_t		 tx_at;		/* tx loop due, ENG_NEVER */

	/* Control frames go before data, in order. */
	struct eng_ctrl		*ring;
	unsigned int		 ring_head;
	unsigned int		 ring_n;

	/* The frame being sent (kept across TP_EAGAIN). */
	const uint8_t		*pend;
	size_t			 pend_len;
	struct tp_addr		 pend_dst;
	struct eng_session	*pend_s;
	struct eng_member	*pend_m;	/* ctrl: a member's request */
	struct eng_peer		*pend_p;	/* a poll of this peer */
	bool			 pend_ctrl;
	uint8_t			 pend_type;
	uint8_t			*data_frame;	/* UP_FRAME_MAX, for DATA */

	/* Sessions in a data pass, served round robin. */
	struct eng_sessions	 data_sessions;
	unsigned int		 ndata;

	uint64_t		 cookie;

	/* Frames handed to the plugin (ring of ENG_TXREC). */
	struct eng_txrec	*txr;
	unsigned int		 txr_head;
	unsigned int		 txr_n;
	/*
	 * Half-duplex: nothing is sent before this (clock us), so that the
	 * answers to a request that left get the air (docs/engine.md,
	 * "Half-duplex links").
	 */
	uint64_t		 quiet_until;
	uint64_t		 quiet_cookie;	/* a request not left yet */

	/* Discovery: DISCOVER rounds and the wait for their answers. */
	uint64_t		 discover_at;	/* next round, us; ENG_NEVER */
	uint64_t		 settle_ms;	/* its ANNOUNCEs are in */
	uint16_t		 disc_slots;	/* its reply schedule (§11.9) */
	uint16_t		 disc_slot_ms;
	uint32_t		 disc_count;	/* ANNOUNCEs since it went */

	/* Loss seen by the nodes (ppm), for proactive parity. */
	uint32_t		 loss_ppm;
	/* p.node_silence_ms, or derived from the caps (link.c). */
	uint32_t		 silence_ms;

	/*
	 * Link shapes.  Peers (peer.c): connections of a connect link, or
	 * nodes a polled link listed; indexed by eng_peer.idx.  Slots: at
	 * most `slots' members are served alone at once (max_peers, or the
	 * profile's unicast_slots); the others wait in `uqueue', first in
	 * first out, each not before its u_nb.  Polls (poll.c): members
	 * waiting for a poll, in order, and those whose poll is out.
	 */
	struct eng_peer		**peers;
	size_t			 npeers;	/* used entries of peers[] */
	size_t			 cpeers;	/* allocated */
	uint32_t		 slots;
	uint32_t		 nslots;	/* slots in use */
	struct eng_queue	 uqueue;
	uint32_t		 nqueued;
	uint64_t		 sched_at;	/* the queue's next eligible, us */
	uint64_t		 visit_at;	/* earliest visit deadline, us */
	uint32_t		 nclosing;	/* peers CLOSING */
	struct eng_peerq	 pollq;		/* waiting for a poll */
	struct eng_peerq	 pollfly;	/* poll sent, no tx_done yet */
	uint64_t		 polls;
	uint64_t		 polls_empty;
	uint64_t		 down_us;	/* when it went down, 0: up */
	uint64_t		 down_total_us;
	uint64_t		 tx_segments;
	uint64_t		 rx_segments;

	/*
	 * Compact form (cframe.c, docs/up-protocol.md §11): the link's
	 * session tags, the message being sent in segments (a copy with
	 * its CRC-16; l->pend stays the message until its last segment),
	 * and the reassembly of node messages on a link without peers.
	 */
	struct up_ctags		 ctags;
	uint8_t			*seg_msg;	/* UP_FRAME_MAX + CRC */
	size_t			 seg_len;	/* 0: not segmenting */
	uint8_t			 seg_n;
	uint8_t			 seg_i;
	uint8_t			 seg_mtag;
	uint8_t			*seg_frame;	/* one segment */
	size_t			 seg_flen;
	struct up_seg_rx	 seg_rx;
	uint8_t			*seg_rxbuf;	/* UP_FRAME_MAX */

	/* Counters. */
	uint64_t		 rx_frames;
	uint64_t		 rx_bad;
	uint64_t		 rx_ignored;
	uint64_t		 tx_ctrl;
	uint64_t		 tx_data;
	uint64_t		 tx_repair;
	uint64_t		 tx_errors;
	uint64_t		 ctrl_dropped;
	uint64_t		 ctrl_stale;	/* dropped: stale when due */
	uint64_t		 quiet_waits;	/* sends held for answers */
};

struct eng_member {
	struct eng_session	*s;
	void			*udata;
	uint64_t		 node;
	struct eng_member	*hnext;		/* session hash chain */
	TAILQ_ENTRY(eng_member)	 entry;		/* session's list */
	TAILQ_ENTRY(eng_member)	 gentry;	/* engine's graveyard */

	struct tp_addr		 addr;
	uint16_t		 max_frame;
	enum eng_mstate		 state;
	uint8_t			 result;
	/*
	 * A final state that is the node's own word (its RESULT, its
	 * ACCEPT's decline, its ABORT), not the engine's write-off or
	 * busy decline nor the daemon's cancel: reported once, and a
	 * RESULT that contradicts it is not a second final result.
	 */
	bool			 node_final;
	bool			 hold;		/* stop at VERIFIED */
	bool			 gone;		/* removed while busy */
	/*
	 * The silence clock (issue 7): when the node was last heard (any
	 * frame of it, its ANNOUNCE through eng_member_set_addr) or offered,
	 * clock ms.  A write-off waits for the link's silence_ms.
	 */
	uint64_t		 heard_ms;
	/*
	 * Busy (TP_EBUSY, Modbus exception 06): the node refused a frame
	 * or a poll for now.  busy_since_ms: its first refusal since it was
	 * last heard, clock ms, 0 when not busy; busy_gap_ms: the wait
	 * before it is asked again, doubling from ENG_BUSY_MIN_MS up to
	 * ENG_BUSY_MAX_MS; busy_until_us: the end of that wait (refusals of
	 * frames that left before it do not double it again).  Busy for
	 * the link's node_busy_ms in all, it is written off (member.c).
	 */
	uint64_t		 busy_since_ms;
	uint64_t		 busy_until_us;
	uint32_t		 busy_gap_ms;

	/* What the node told about its blocks (ACCEPT/STATUS). */
	bool			 known;
	uint32_t		 held;
	uint32_t		 first_missing;
	uint64_t		 joined_ms;	/* its first answer, clock ms */

	/* Per-phase bookkeeping. */
	bool			 asked;		/* in the current round */
	bool			 answered;
	uint32_t		 offers;	/* offer rounds unanswered */
	uint32_t		 stall;		/* status rounds w/o progress */
	uint32_t		 progress_held;	/* held at the last round */
	bool			 xr_added;	/* in this round's XOR plan */
	/* What its compact ACCEPT said it can use (UP_ACAP_*, §11.5.4). */
	uint8_t			 acaps;
	bool			 acaps_known;
	uint64_t		 result_due_ms;	/* ACTIVATING deadline */

	/*
	 * Served alone (unicast.c): on a link where each member gets its
	 * own frames (connect, unicast-only, the repair of a polled link).
	 * Queued in the link's uqueue (qentry) or active in the session's
	 * uactive list (aentry), holding one of the link's slots and, on a
	 * connect link, a peer.  `need' is its exact needed set, from its
	 * own ACCEPT or STATUS, allocated while it is active.
	 */
	uint8_t			 ustep;		/* enum eng_ustep */
	TAILQ_ENTRY(eng_member)	 qentry;	/* link's uqueue */
	TAILQ_ENTRY(eng_member)	 aentry;	/* session's uactive */
	uint64_t		 u_nb;		/* queued: not before, us */
	uint64_t		 u_at;		/* its timer, us */
	uint64_t		 u_deadline;	/* answer awaited until, us */
	uint32_t		 u_tries;	/* requests unanswered */
	uint32_t		 u_fails;	/* connections lost, no answer */
	uint32_t		 u_rep;		/* ACTIVATE repeats */
	uint32_t		 u_gap_ms;	/* result visits back off */
	bool			 u_sent;	/* the request left */
	bool			 u_heard;	/* answered since */
	struct eng_peer		*peer;
	uint8_t			*need_buf;
	struct up_bitmap	 need;
	uint32_t		 nneed;
	uint32_t		 ucursor;
	uint32_t		 u_polls;	/* polls in this wait */
	bool			 plan_wait;	/* its set waits for the plan */
	bool			 u_data;	/* data went since its status */
	bool			 u_keep;	/* a final RESULT: unicast.c acks */
	bool			 u_confirm;	/* its ACK's tx_done tells */
	uint64_t		 u_cookie;	/* its RESULT_ACK's tx cookie */
	bool			 off;		/* in its session's offload */
	bool			 off_tried;	/* was handed to a module once */
};

struct eng_session {
	struct eng		*e;
	struct eng_link		*l;		/* NULL: link not open yet */
	char			 link[ENG_NAME_MAX + 1];
	void			*udata;
	uint32_t		 id;
	uint16_t		 block_size;
	uint32_t		 nblocks;
	enum eng_phase		 phase;
	TAILQ_ENTRY(eng_session) entry;		/* engine's list */
	TAILQ_ENTRY(eng_session) tentry;	/* link's data rotation */
	bool			 in_data;

	/* Members, listed and hashed by node id. */
	struct eng_members	 members;
	size_t			 nmembers;
	struct eng_member	**hash;
	size_t			 nhash;
	uint32_t		 nstate[ENG_M_NSTATES];

	/* What the daemon set. */
	struct up_offer		 offer;
	struct eng_source	 src;
	bool			 running;	/* started, not stopped */
	bool			 opened;	/* has been open once */
	bool			 start_pending;	/* deferred: start */
	bool			 poke_pending;	/* deferred: look again */
	bool			 settle_pending;	/* deferred callback */
	bool			 error_pending;	/* deferred callback */

	/* The link's shape (docs/engine.md, "Link shapes"). */
	enum eng_shape		 shape;
	bool			 compact;	/* §11 frames (cframe.c) */
	uint8_t			 cflags;	/* their trailers: UP_CF_CRC */
	uint8_t			 tag;		/* its tag on the link */
	bool			 tagged;	/* holds that tag */
	bool			 polled;	/* answers come by polls */
	int			 offload_conf;	/* eng_session_conf.offload */
	struct eng_queue	 uactive;	/* served alone now */
	uint32_t		 nuactive;
	uint32_t		 nuqueued;	/* ... waiting for a slot */
	struct eng_member	*ufill;		/* round robin of the data */
	uint32_t		 round_polls;	/* poll round: polls left */
	bool			 poll_round;	/* the phase waits on polls */
	uint64_t		 polls;
	/*
	 * The repair planner of a polled bus (rplan.c): after a pass to
	 * all, members with a known needed set wait (plan_wait, counted
	 * here) until the plan: re-broadcast or each node alone.
	 */
	bool			 plan_open;
	uint32_t		 nplan_wait;
	uint32_t		 plans;		/* plans made */
	uint32_t		 rebcast;	/* blocks re-broadcast */
	uint64_t		 frozen_us;	/* link down since, 0: not */
	bool			 mtu_short;	/* a block no longer fits */
	/* Offload (offload.c). */
	uint8_t			 off_state;	/* ENG_OFF_* */
	uint64_t		 off_bytes;	/* the module took */
	uint64_t		 off_idle_at;	/* give up at, us */
	uint32_t		 off_peers;	/* peers not done or failed */

	/* The data pass. */
	uint8_t			*needed_buf;	/* NULL: not open */
	struct up_bitmap	 needed;
	uint32_t		 nneeded;
	uint32_t		 cursor;
	uint32_t		 pass;		/* data passes started */

	/* The phase machine. */
	uint32_t		 step;		/* repeats/asks in the phase */
	/*
	 * Timers from the real send time (phase.c): the requests of the
	 * phase's current batch carry `epoch' (older ones are stale when
	 * they come due); `txq' of the session's control frames are queued
	 * or on the way, and a window armed with eng__arm_after() starts
	 * when the last of them has left.
	 */
	uint32_t		 epoch;
	uint32_t		 txq;
	bool			 arm_wait;
	uint64_t		 arm_ms;
	uint64_t		 phase_ms;	/* when the phase began */
	uint64_t		 timer_at;	/* phase timer, us */
	uint64_t		 rtimer_at;	/* result timer, us */
	uint64_t		 poll_ms;	/* next RESULT poll, 0: none */
	uint32_t		 poll_gap_ms;
	uint32_t		 unanswered;	/* asked, no answer yet */
	uint32_t		 verify_asked;	/* asked by the VERIFY round */
	uint8_t			 verify_nudge;	/* 0, 1 armed, 2 sent */

	/* Round trip (status.c): samples and the estimate. */
	uint64_t		 offer_us;	/* last OFFER queued */
	uint64_t		 ask_us;	/* STATUS_REQ to all queued */
	uint64_t		 round_us;	/* quickest answer to it */
	uint64_t		 grtt_us;	/* 0: not measured yet */
	bool			 rtt_from_status; /* grtt from a status round */

	/* Counters. */
	uint64_t		 bytes_sent;
	uint64_t		 data_frames;
	uint64_t		 repair_frames;
	uint64_t		 unicast_frames;	/* block frames to one */
	uint64_t		 ctrl_frames;

	/* TS004 parity repair (parity.c). */
	uint16_t		 fec_k;		/* 0: no parity this session */
	uint16_t		 fec_pro;	/* proactive rows per group */
	uint32_t		 fec_ngroups;
	uint32_t		 fec_scan;	/* next group to serve parity */
	uint32_t		 fec_p1_blocks;	/* DATA in the first pass */
	uint16_t		*fec_next;	/* next unused row, per group */
	uint16_t		*fec_plan;	/* rows the round asks for */
	uint16_t		*fec_pend;	/* rows left this pass */
	uint8_t			*fec_flags;	/* ENG_FEC_* per group */
	uint8_t			*fec_buf;	/* block_size, read scratch */
	uint64_t		 parity_frames;
	uint64_t		 fec_fallbacks;	/* groups sent as DATA again */

	/* XOR repair (xor.c). */
	struct xr_plan		*xr;		/* NULL: no XOR this session */
	size_t			 xr_room;	/* bytes for a frame's list */
	bool			 xr_round;	/* this round plans XOR */
	bool			 xr_over;	/* ... and overflowed */
	size_t			 xr_nframes;	/* XOR frames of this pass */
	size_t			 xr_next;
	uint8_t			*xr_dneed_buf;	/* blocks that go as DATA */
	struct up_bitmap	 xr_dneed;
	uint8_t			*xr_buf;	/* block_size, read scratch */
	uint64_t		 xor_frames;

	/*
	 * Reply schedules and status forms (reply.c): the schedule the
	 * session's current requests carry (compact frames on a slow link,
	 * §11.9; 0: the full form's window), the status form the round
	 * asks for (§11.7: UP_SB_* | UP_SQ_MISSING), and the round's
	 * aggregate of run and count lists (up_status_agg).
	 */
	uint16_t		 sched_slots;
	uint16_t		 sched_slot_ms;
	uint64_t		 sched_wait_ms;	/* VERIFY: its schedule's */
	uint8_t			 sched_req;
	bool			 sq_missing;	/* silent: presumed complete */
	bool			 want_runs;	/* counts failed: ask runs */
	bool			 fec_counted;	/* count plans this round */
	struct up_status_agg	 agg;
	uint8_t			*agg_bits;	/* NULL: no aggregate */
	uint8_t			*agg_need;
	uint64_t		 count_rounds;	/* rounds asking counts */
	/*
	 * Nodes no member that took this session up (aborted): ACTIVATE
	 * then names each member, so that one whose ABORTs were all lost
	 * cannot install at an ACTIVATE to all.
	 */
	uint32_t		 strangers;
	uint64_t		 runs_asked;	/* compact asks in full sessions */
	uint64_t		 counts_heard;	/* count lists answered */
	uint32_t		 round_counts;	/* ... this round, missing */
	uint64_t		 round_node;	/* ... the last one's node */
	uint64_t		 lone_rounds;	/* lone straggler: runs, DATA */
};

/* ------------------------------------------------------------------ */
/* engine.c                                                             */

void	*eng__xcalloc(size_t, size_t);
void	*eng__xreallocarray(void *, size_t, size_t);
void	 eng__strlcpy(char *, const char *, size_t);
uint64_t eng__now_us(struct eng *);
uint64_t eng__now_ms(struct eng *);
/*
 * An entry point of the engine begins (eng_run, a plugin's callback):
 * callbacks may fire until eng__leave, which fires the deferred ones
 * (session_settled, session_error), frees removed members and arms the
 * clock for the next deadline.
 */
void	 eng__enter(struct eng *);
void	 eng__leave(struct eng *);
/* A daemon call changed deadlines: arm the clock unless busy. */
void	 eng__touch(struct eng *);

/* ------------------------------------------------------------------ */
/* link.c                                                               */

/*
 * Queues a control frame (encodes `m' into the link's ring) to `dst',
 * or to the broadcast domain when dst is NULL.  Returns 0, or -1 when it
 * cannot be encoded or the ring is full (then it is dropped: the
 * protocol repeats every control frame it needs).
 */
int	 eng__ctrl(struct eng_link *, struct eng_session *,
	    const struct tp_addr *dst, const struct up_msg *m);
/* The same for a member's request: eng__u_sent(mb) when it leaves. */
int	 eng__ctrl_to(struct eng_link *, struct eng_session *,
	    struct eng_member *mb, const struct tp_addr *dst,
	    const struct up_msg *m);
/* Forget a member being removed (its requests in the ring). */
void	 eng__forget_member(struct eng_link *, struct eng_member *);
/* Something may be sendable: run the tx loop soon (deferred). */
void	 eng__kick(struct eng_link *);
/* Sessions: enter and leave the link's data rotation. */
void	 eng__data_add(struct eng_link *, struct eng_session *);
void	 eng__data_remove(struct eng_link *, struct eng_session *);
/* Forget a session being freed (pending frame, ring accounting). */
void	 eng__forget_session(struct eng_link *, struct eng_session *);
/* The link's tx loop and discovery, from eng_run. */
void	 eng__link_run(struct eng_link *, uint64_t now_us);
uint64_t eng__link_deadline(const struct eng_link *);
void	 eng__link_close(struct eng_link *);
/* The largest frame the link carries (its mtu, at most UP_FRAME_MAX). */
size_t	 eng__link_mtu(const struct eng_link *);

/* ------------------------------------------------------------------ */
/* profile.c                                                            */

/* (Re)computes l->pf and l->silence_ms from l->caps and l->p. */
void	 eng__profile(struct eng_link *);
/* Time on air of a len-byte frame to all (the plugin's model). */
uint32_t eng__air(struct eng_link *, size_t len);
/* A len-byte frame to dst: the plugin's airtime(), else the rate's. */
uint32_t eng__link_airtime(struct eng_link *, const struct tp_addr *,
	    size_t len);
/*
 * The reply schedule for n answers of `frames' frames each (§11.9):
 * slots and slot length; one-millisecond slots on a fast link.
 */
void	 eng__schedule(struct eng_link *, unsigned int n, unsigned int frames,
	    uint16_t *slots, uint16_t *slot_ms);
/* ... and how long those answers take to come in, ms. */
uint64_t eng__schedule_ms(struct eng_link *, unsigned int n,
	    unsigned int frames);
/* How long after m left its answers may come, ms (0: none). */
uint32_t eng__reply_ms(struct eng_link *, const struct up_msg *);
/* Frames of a node's ANNOUNCE (about 100 bytes) in uplink segments. */
unsigned int eng__ann_frames(const struct eng_link *);
/*
 * How long the answers to a DISCOVER take to come in, ms: on a slow
 * compact link the reply schedule of n ANNOUNCEs (n at least
 * ENG_DISC_MIN), else the status window.
 */
uint64_t eng__disc_ms(struct eng_link *, unsigned int n);

/* ------------------------------------------------------------------ */
/* reply.c: reply schedules, status forms, count lists                 */

/*
 * The schedule and window of a request of `type' that n nodes answer:
 * sets s->sched_* (what cframe.c writes into compact requests on a
 * slow link) and returns how long the answers take to come in, ms (at
 * least the link's floor).
 */
uint64_t eng__ask_schedule(struct eng_session *, uint8_t type,
	    unsigned int n);
/* A status round begins: its form (runs, or counts only from nodes
 * missing something where uplink airtime is dear). */
void	 eng__status_form(struct eng_session *);
/* The aggregate of a round's lists (up_status_agg). */
void	 eng__agg_open(struct eng_session *);
void	 eng__agg_free(struct eng_session *);
void	 eng__agg_round(struct eng_session *);
void	 eng__agg_add(struct eng_session *, const struct up_status_body *);
/* A member's count list (§11.7 form 2): its need, planned as parity. */
void	 eng__counts_apply(struct eng_session *, struct eng_member *,
	    const struct up_status_body *);
/* A round that asked only nodes missing something ends: the silent
 * ones are presumed complete (VERIFY tells). */
void	 eng__sq_missing_end(struct eng_session *);
/*
 * The lone straggler (reply.c): after a status round whose count lists
 * came from one member, the only one still receiving, whether asking it
 * alone for its run list and sending its blocks costs less air than the
 * parity its list asks for.  Pure; the figures in microseconds.
 */
bool	 eng__lone_cheaper(struct eng_link *, uint32_t nblocks,
	    uint32_t missing, uint32_t deficit, uint32_t groups);
/* ... and if so, the round's parity plan gives way to it. */
void	 eng__lone_check(struct eng_session *);

/* ------------------------------------------------------------------ */
/* session.c                                                            */

/* The session's profile: its link's, else the engine's defaults. */
const struct eng_params *eng__params(const struct eng_session *);
/* The link the session sends on, resolved by name; NULL if not open. */
struct eng_link *eng__session_link(struct eng_session *);
bool	 eng__runnable(const struct eng_session *);
struct eng_member *eng__member(struct eng_session *, uint64_t node);
/* State changes made by the engine: counts, then the callback. */
void	 eng__set_state(struct eng_member *, enum eng_mstate);
void	 eng__progress(struct eng_member *);
void	 eng__started(struct eng_member *);
/*
 * A final state from the node (or the engine's write-off, why != NULL):
 * bookkeeping, then member_final.
 */
void	 eng__final(struct eng_member *, enum eng_mstate, uint8_t result,
	    const char *version, const char *why);
void	 eng__write_off(struct eng_member *, const char *why);
/* Heard from `src' now: its address and its silence clock. */
void	 eng__heard(struct eng_member *, const struct tp_addr *src);
/* A busy refusal (TP_EBUSY): when to ask again, us; busy for too long. */
uint64_t eng__busy(struct eng_member *);
bool	 eng__busy_over(const struct eng_member *);
/* Silent for at least the link's silence_ms (a write-off may go). */
bool	 eng__silent(const struct eng_member *);
/*
 * A member that did not take the offer within ENG_TRIES rounds: one that
 * answered busy is declined with that reason; a silent one is written
 * off once silent long enough.
 */
void	 eng__offer_lost(struct eng_member *);
/* Offer time: PENDING members the daemon lets go become OFFERED. */
bool	 eng__offer_member(struct eng_member *);
/* Marks the member answered in the current round. */
void	 eng__answered(struct eng_member *);
/* Deferred callbacks, fired by eng__leave. */
void	 eng__settle(struct eng_session *);
void	 eng__blob_error(struct eng_session *);
/* Frames. */
void	 eng__send(struct eng_session *, const struct eng_member *,
	    struct up_msg *);
void	 eng__target(struct eng_session *, uint8_t type,
	    const struct eng_member *, uint64_t window, uint8_t reason);
void	 eng__ask(struct eng_session *, uint8_t type, enum eng_mstate,
	    uint64_t window);
void	 eng__send_offer(struct eng_session *);
void	 eng__send_activate(struct eng_session *, const struct eng_member *);
void	 eng__abort_node(struct eng_session *, uint64_t node,
	    const struct tp_addr *src);
void	 eng__to_node(struct eng_session *, uint8_t type, uint64_t node,
	    const struct tp_addr *src);
/* Reads a block range of the package; false after a read error. */
bool	 eng__read(struct eng_session *, uint64_t off, uint8_t *, size_t);
/* The package bytes block i carries. */
size_t	 eng__block_len(const struct eng_session *, uint32_t i);
/* The needed set and a node's status body. */
void	 eng__need(struct eng_session *, uint32_t);
void	 eng__apply(struct eng_session *, struct eng_member *,
	    const struct up_status_body *, bool first);
/* From eng_run: deferred start and pokes. */
void	 eng__session_start_now(struct eng_session *);
void	 eng__session_poke_now(struct eng_session *);
/* A frame of this session was sent. */
void	 eng__sent(struct eng_session *, uint8_t type, size_t len,
	    bool unicast);
uint64_t eng__session_deadline(const struct eng_session *);

/* ------------------------------------------------------------------ */
/* phase.c                                                              */

/* The link's floor for an answer window (profile.c) and margin, ms. */
uint64_t eng__window(const struct eng_session *);
uint64_t eng__margin(const struct eng_session *);
/* Arms the phase timer ms from now. */
void	 eng__arm(struct eng_session *, uint64_t ms);
/*
 * Arms it ms after the session's queued frames have left (now if none
 * is queued): the window of a request starts when the request is on
 * the air, not when it was queued behind pacing.
 */
void	 eng__arm_after(struct eng_session *, uint64_t ms);
/* The requests queued from here on are a new batch (older ones stale). */
void	 eng__batch(struct eng_session *);
/* A control frame of s of `type' left at left_us (or was dropped). */
void	 eng__frame_left(struct eng_session *, uint8_t type,
	    uint64_t left_us);
void	 eng__disarm(struct eng_session *);
/* Picks the next phase from the members' states. */
void	 eng__decide(struct eng_session *);
/* Ends the current phase early when nobody is left to wait for. */
void	 eng__check(struct eng_session *);
/* The phase timer fired. */
void	 eng__phase_timer(struct eng_session *);
/*
 * Fills the next block frame of the pass into buf[cap]; returns its
 * length, or 0 when the pass is over (the session then leaves the data
 * rotation and moves on).
 */
size_t	 eng__fill_data(struct eng_session *, uint8_t *buf, size_t cap,
	    struct tp_addr *dst);
void	 eng__verify_progress(struct eng_session *);

/* ------------------------------------------------------------------ */
/* status.c                                                             */

void	 eng__status_begin(struct eng_session *);
void	 eng__status_tick(struct eng_session *);
void	 eng__status_end(struct eng_session *);
/* Round-trip samples: an ACCEPT, a STATUS during a round to all. */
void	 eng__rtt_accept(struct eng_session *);
void	 eng__rtt_status(struct eng_session *);

/* ------------------------------------------------------------------ */
/* answer.c: frames from nodes, decoded, with their source address      */

void	 eng__rx_accept(struct eng_session *, const struct up_msg *,
	    const struct tp_addr *src);
void	 eng__rx_status(struct eng_session *, const struct up_msg *,
	    const struct tp_addr *src);
void	 eng__rx_result(struct eng_session *, const struct up_msg *,
	    const struct tp_addr *src);
void	 eng__rx_abort(struct eng_session *, const struct up_msg *,
	    const struct tp_addr *src);
/* An ANNOUNCE naming session s, heard on link l. */
void	 eng__rx_announce(struct eng_session *, struct eng_link *,
	    const struct tp_addr *src, const struct up_announce *);

/* ------------------------------------------------------------------ */
/* result.c                                                             */

/* Verified members that may activate (not held). */
uint32_t eng__releasable(const struct eng_session *);
void	 eng__activate_begin(struct eng_session *);
void	 eng__activate_tick(struct eng_session *);

/* Members go ACTIVATING: deadlines and the first poll. */
void	 eng__activating(struct eng_session *);
/* A restarted session's ACTIVATING members: fresh deadlines, poll. */
void	 eng__result_resume(struct eng_session *);
/* Re-arms the result timer from the members' deadlines. */
void	 eng__result_arm(struct eng_session *);
void	 eng__result_timer(struct eng_session *);

/* ------------------------------------------------------------------ */
/* parity.c                                                             */

#define ENG_FEC_DATA	0x01	/* this round: plain DATA for it */
#define ENG_FEC_SENT	0x02	/* parity went to the group this pass */
#define ENG_FEC_PREV	0x04	/* ... and in the previous repair pass */
#define ENG_FEC_COUNT	0x08	/* planned from count lists (§11.7) */
#define ENG_FEC_EXTRA	2	/* rows beyond a count list's need */

void	 eng__fec_open(struct eng_session *);
void	 eng__fec_free(struct eng_session *);
uint16_t eng__fec_proactive(const struct eng_session *);
uint16_t eng__fec_rows_n99(uint16_t k, uint32_t loss_ppm);
uint16_t eng__fec_pro_group(const struct eng_session *, uint32_t g);
/* A node's status body describing blocks [0, end). */
void	 eng__fec_note(struct eng_session *, const struct up_status_body *,
	    bool first, uint32_t end);
void	 eng__fec_round(struct eng_session *);
void	 eng__fec_plan(struct eng_session *);
void	 eng__fec_measure(struct eng_session *);
/* The next PARITY frame before block `next'; 0 none, -1 read error. */
size_t	 eng__fill_parity(struct eng_session *, uint8_t *buf, size_t cap,
	    uint32_t next);

/* ------------------------------------------------------------------ */
/* xor.c                                                                */

void	 eng__xr_open(struct eng_session *);
void	 eng__xr_free(struct eng_session *);
void	 eng__xr_round(struct eng_session *);
/* A node's status body (a slice or a run list) describing [0, end). */
void	 eng__xr_note(struct eng_session *, struct eng_member *,
	    const struct up_status_body *, bool first, uint32_t end);
bool	 eng__xr_plan(struct eng_session *);
/* The next XOR frame of the pass; 0 none, -1 read error. */
size_t	 eng__fill_xor(struct eng_session *, uint8_t *buf, size_t cap);

/* ------------------------------------------------------------------ */
/* peer.c: peers, slots and the queue of members served alone          */

/* The link's peer for addr, NULL if none (get: created if need be). */
struct eng_peer *eng__peer_find(struct eng_link *, const struct tp_addr *);
struct eng_peer *eng__peer_get(struct eng_link *, const struct tp_addr *);
/* The largest frame to dst: its connection's mtu, else the link's. */
size_t	 eng__dst_mtu(struct eng_link *, const struct tp_addr *);
/* Slots from the caps and the profile (open, caps change, reload). */
void	 eng__slots(struct eng_link *);
/* A member served alone joins the end of the queue, not before nb_us. */
void	 eng__uqueue(struct eng_member *, uint64_t nb_us);
void	 eng__udequeue(struct eng_member *);
/* Hands free slots to queued members (and discovery visits). */
void	 eng__sched(struct eng_link *);
/* The member or visit is done with its peer: disconnect once idle. */
void	 eng__peer_release(struct eng_peer *);
/* A frame to / from a peer (accounting; a visit hears its ANNOUNCE). */
void	 eng__peer_queued(struct eng_link *, const struct tp_addr *, int);
void	 eng__peer_sent(struct eng_peer *, size_t len);
void	 eng__peer_tx_done(struct eng_link *, uint64_t cookie, int status);
void	 eng__peer_rx(struct eng_link *, const struct tp_addr *,
	    const struct up_msg *);
/* Closes idle peers whose frames are out (from the tx loop). */
void	 eng__peer_idle(struct eng_link *);
/* The plugin's peer callback. */
void	 eng__peer_event(struct eng_link *, const struct tp_addr *,
	    enum tp_peer_event, const struct tp_peer_info *);
/* The link went down / came up: connections are gone. */
void	 eng__peers_down(struct eng_link *);
uint64_t eng__peers_deadline(const struct eng_link *);
void	 eng__peers_run(struct eng_link *, uint64_t now_us);
void	 eng__peers_free(struct eng_link *);
const char *eng__pstate_str(enum eng_pstate);

/* ------------------------------------------------------------------ */
/* unicast.c: a member served alone                                     */

enum eng_ustep {
	ENG_U_NONE,		/* not served alone */
	ENG_U_QUEUED,		/* waiting for a slot */
	ENG_U_CONNECT,		/* slot taken, connecting */
	ENG_U_OFFER,		/* OFFER sent, waiting for its ACCEPT */
	ENG_U_STATUS,		/* STATUS_REQ sent, waiting */
	ENG_U_DATA,		/* its needed blocks go out */
	ENG_U_VERIFY,		/* VERIFY sent, waiting */
	ENG_U_ACTIVATE,		/* ACTIVATE repeats */
	ENG_U_RESULT,		/* VERIFY as a poll for its RESULT */
	ENG_U_ACKED		/* RESULT_ACK sent: did it arrive? */
};
const char *eng__ustep_str(uint8_t);

/* rplan.c: the repair planner of a polled bus */
struct eng_plan_cost {
	uint32_t	 bcast_us;	/* a whole block to all */
	uint32_t	 bcast_last_us;	/* the last block to all */
	uint32_t	 one_us;	/* a whole block to one, confirmed */
	uint32_t	 one_last_us;
	uint32_t	 ask_us;	/* a STATUS_REQ to one and its poll */
};
/*
 * The blocks worth broadcasting again, from the needed sets of n nodes
 * (borrowed), set in out (nblocks bits, cleared by the caller); returns
 * how many, 0: each node alone.  *saved_us: line time saved.
 */
uint32_t eng__plan_choose(const struct up_bitmap *const *needs, size_t n,
	    uint32_t nblocks, const struct eng_plan_cost *,
	    struct up_bitmap *out, int64_t *saved_us);
/* The member's set waits for the plan (true) or is served now. */
bool	 eng__plan_park(struct eng_member *);
void	 eng__plan_unpark(struct eng_member *);
/* Plans if every receiving member answered; true: a pass to all. */
bool	 eng__plan_round(struct eng_session *);

/* Session shapes that serve members alone (now or after a pass). */
bool	 eng__unicast(const struct eng_session *);
/* The SERVE phase: queue what needs serving; false: nothing does. */
bool	 eng__u_serve(struct eng_session *);
/* A slot (and, on a connect link, its connection) is the member's. */
void	 eng__u_begin(struct eng_member *);
/* Its connection came up / went down (connect links). */
void	 eng__u_peer_up(struct eng_member *);
void	 eng__u_peer_down(struct eng_member *, bool connecting);
/* A request of it left (the ring), an answer came from it. */
void	 eng__u_sent(struct eng_member *);
void	 eng__u_heard(struct eng_member *, uint8_t type);
/* A poll of it ended without what it waits for. */
void	 eng__u_poll_empty(struct eng_member *);
/*
 * The node refused, busy (TP_EBUSY), its request (the frame u_cookie
 * names), a poll, or another frame (data): it waits and is asked again.
 */
enum eng_ubusy {
	ENG_UB_REQUEST,
	ENG_UB_POLL,
	ENG_UB_FRAME
};
void	 eng__u_busy(struct eng_member *, enum eng_ubusy);
/* Acknowledges its final RESULT (then waits to see the ACK arrived). */
void	 eng__u_ack(struct eng_member *);
/* tx_done of its RESULT_ACK or ACTIVATE on a link confirming frames. */
void	 eng__u_ack_done(struct eng_member *, int status);
/* Gives the slot back; with requeue, back in the queue at nb_us. */
void	 eng__u_release(struct eng_member *, bool requeue, uint64_t nb_us);
/* Out of every list: the member is removed or its session closes. */
void	 eng__u_forget(struct eng_member *);
void	 eng__u_forget_session(struct eng_session *);
/* Its exact needed set from a status body (ACCEPT, STATUS). */
void	 eng__u_status(struct eng_member *, const struct up_status_body *);
/* The next DATA frame of a member served alone; 0: none ready now. */
size_t	 eng__u_fill(struct eng_session *, uint8_t *buf, size_t cap,
	    struct tp_addr *dst);
uint64_t eng__u_deadline(const struct eng_session *);
void	 eng__u_run(struct eng_session *, uint64_t now_us);

/* ------------------------------------------------------------------ */
/* poll.c: polled links                                                 */

/* Polls the peer not before at_us (a member served alone, a visit). */
void	 eng__poll(struct eng_peer *, uint64_t at_us);
void	 eng__poll_cancel(struct eng_peer *);
/* The first peer whose poll is due, taken out of the queue. */
struct eng_peer *eng__poll_next(struct eng_link *, uint64_t now_us);
void	 eng__poll_sent(struct eng_peer *, uint64_t cookie, uint32_t est);
/* tx_done of a poll: true when cookie was one. */
bool	 eng__poll_done(struct eng_link *, uint64_t cookie, int status,
	    uint32_t airtime_us);
/* The session's phase waits on polls of the asked members in `st'. */
void	 eng__poll_round(struct eng_session *, enum eng_mstate);
/* The phase is over: the session's round polls count no more. */
void	 eng__poll_round_end(struct eng_session *);
uint64_t eng__poll_deadline(const struct eng_link *);

/* ------------------------------------------------------------------ */
/* offload.c: module offload                                            */

#define ENG_OFF_NONE	0	/* not offloaded (yet) */
#define ENG_OFF_RUN	1	/* the module has it */
#define ENG_OFF_DONE	2	/* over: UP carries what is left */
#define ENG_OFF_START	3	/* asked for: offload_start() in eng_run */

bool	 eng__off_wanted(const struct eng_session *);
bool	 eng__off_pending(const struct eng_member *);
void	 eng__off_begin(struct eng_session *);
void	 eng__off_cancel(struct eng_session *);
void	 eng__off_timer(struct eng_session *);
int	 eng__off_read(struct eng_link *, uint32_t id, uint64_t off,
	    uint8_t *buf, size_t len);
void	 eng__off_progress(struct eng_link *, uint32_t id,
	    const struct tp_addr *, enum tp_offload_state, uint64_t bytes);

/* ------------------------------------------------------------------ */
/* cframe.c: the compact form                                           */

/* The link's default form is compact (TP_CAP_COMPACT). */
bool	 eng__link_compact(const struct eng_link *);
/* Trailers compact frames need on the link: UP_CF_CRC without an FCS. */
uint8_t	 eng__link_cflags(const struct eng_link *);
void	 eng__cf_link_open(struct eng_link *);
void	 eng__cf_link_close(struct eng_link *);
/* The session's form, tag and block size bound at open; its tag back. */
void	 eng__cf_open(struct eng_session *);
void	 eng__cf_close(struct eng_session *);
/* A control message in the form of its session (or link): *out. */
void	 eng__cf_msg(struct eng_link *, struct eng_session *,
	    const struct up_msg *in, struct up_msg *out);
/*
 * Seals block i of a compact session read at buf + up_cdata_off(i);
 * returns the frame length, 0 on error.
 */
size_t	 eng__cf_seal(struct eng_session *, uint8_t *buf, size_t cap,
	    uint8_t type, uint32_t i, size_t len);
/* Where block i's bytes go in a DATA frame of the session. */
size_t	 eng__data_off(const struct eng_session *, uint32_t i);
/*
 * The tx loop: the pending message is larger than its destination
 * takes.  Prepares its segments (compact: true) or says it cannot be
 * sent (full frames cannot be segmented: false).
 */
bool	 eng__cf_segment(struct eng_link *, size_t mtu);
/*
 * A SEG frame from src: true when it completed a message, copied into
 * out[UP_FRAME_MAX] (*len), ready to decode.
 */
bool	 eng__cf_reassemble(struct eng_link *, const struct tp_addr *src,
	    const struct up_msg *seg, uint8_t *out, size_t *len);
/* A node frame without its node id (§11.2): the id from its address. */
void	 eng__cf_node_id(struct eng_link *, const struct tp_addr *src,
	    struct up_msg *);
/* The end of what a status body describes (§11.7); 0: it is invalid. */
bool	 eng__status_ok(const struct eng_session *,
	    const struct up_status_body *, uint32_t *end);

/* ------------------------------------------------------------------ */
/* Freezing (session.c): link down is not node failure                  */

void	 eng__freeze(struct eng_session *, uint64_t now_us);
void	 eng__thaw(struct eng_session *, uint64_t now_us);
/* New caps: block frames, parity, XOR re-planned for the mtu. */
void	 eng__replan(struct eng_session *);
/* How long a VERIFY answer may take (hashing), ms. */
uint64_t eng__verify_wait(const struct eng_session *);
/* A member by its link address (compact frames without node id). */
struct eng_member *eng__member_by_addr(struct eng_session *,
	    const struct tp_addr *);

#endif /* ENGINE_INTERNAL_H */
