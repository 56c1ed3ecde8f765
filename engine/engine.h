/*
 * engine.h: the fan-out engine, the one public header of engine/.
 *
 * The engine moves one package to many nodes over the links it is given,
 * speaking UP (docs/up-protocol.md).  It owns the transport instances
 * ("links", one broadcast domain each) with their pacer, control ring,
 * transmit loop and receive dispatch; the UP sessions (one package on one
 * link) with their phase machine, status rounds, round-trip estimates and
 * repair planners (TS004 parity, XOR); and the members of each session.
 * It knows up/ and transports/transport.h only: no campaigns, no SQLite,
 * no cache, no control socket.  docs/engine.md describes it.
 *
 * The daemon (bridge/) gives it:
 *  - a clock (struct eng_clock): the engine reads time only through it
 *    and has one deadline, which it hands to clock->arm(); the daemon
 *    calls eng_run() when that deadline comes.  A test drives a fake
 *    clock the same way, so every timer of the engine is deterministic;
 *  - the links to open (a tp_ops, its config section and a profile);
 *  - per session, the package descriptor and a block source (struct
 *    eng_source: a cache blob, or a download still streaming that says
 *    how far its verified prefix reaches);
 *  - callbacks (struct eng_cb) through which it hears what happened to
 *    each member, what to persist, and what the engine cannot decide
 *    alone (frames from nodes it does not know).
 *
 * Rules the engine keeps:
 *  - It reports upward only through the callbacks it was given, and only
 *    from its own entry points: eng_run() and the transport callbacks.
 *    No eng_* call the daemon makes fires a callback before it returns:
 *    work that could is deferred to the next eng_run() (the engine arms
 *    the clock for "now").  clock->arm() is the one exception: it only
 *    sets the daemon's timer, and any eng_* call may make it.
 *  - From inside a callback the daemon may call any eng_* function except
 *    eng_free(), eng_run() and eng_session_free(); a member it removes
 *    there is freed when the engine's work in progress is over.
 *  - Nothing is allocated per frame or per block: buffers are sized from
 *    the link's capabilities and the package when a session opens.
 *  - Ownership is stated at each call: "borrowed" means for the call
 *    only; a handle from a _new or _add call is owned by the engine and
 *    freed by the matching _free or _remove call, or by eng_free().
 */
#ifndef ENGINE_H
#define ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "up.h"
#include "transport.h"

struct event_base;

struct eng;		/* one engine */
struct eng_link;	/* one transport instance (broadcast domain) */
struct eng_session;	/* one package on one link */
struct eng_member;	/* one node in one session */

/* ------------------------------------------------------------------ */
/* The clock                                                            */

struct eng_clock {
	void		*arg;
	/* Monotonic microseconds. */
	uint64_t	 (*now_us)(void *arg);
	/*
	 * The engine's next deadline changed: call eng_run() at at_us (on
	 * now_us's scale; a time already past means "as soon as the loop
	 * may"), or never for UINT64_MAX.  Only sets a timer: it must not
	 * call the engine back.
	 */
	void		 (*arm)(void *arg, uint64_t at_us);
	/*
	 * How many times faster than real time now_us runs: 0 or 1 for
	 * the real clock; a simulation on a compressed clock (upsim
	 * --time-scale, docs/simulator.md) sets its factor, and the engine
	 * tells its links (tp_host.time_scale).
	 */
	double		 scale;
};

/* ------------------------------------------------------------------ */
/* A link's profile: how sessions on it behave                         */

#define ENG_FEC_AUTO	(-1)	/* fec_proactive: from the measured loss */

struct eng_params {
	unsigned int	 block_size;	/* upper bound; the mtu may lower it */
	unsigned int	 rate_pct;	/* share of the link's bitrate sent */
	unsigned int	 offer_window_ms;	/* OFFER, ACTIVATE repeats */
	unsigned int	 offer_repeats;
	unsigned int	 status_window_ms;	/* nodes' answer window */
	unsigned int	 max_rounds;	/* status rounds without progress */
	unsigned int	 activate_delay_ms;
	unsigned int	 result_timeout_s;	/* after ACTIVATE */
	unsigned int	 discover_interval_s;	/* 0: when the link opens */
	unsigned int	 session_deadline_s;	/* OFFER's deadline_s */
	/*
	 * How long a node may stay silent (a reboot, a brown-out) before
	 * it is written off: a node that misses its asks (offer, STATUS_REQ,
	 * VERIFY) is written off only once silent this long, ms.  0: from
	 * the link, 10 s plus four frames' time on air at its rate and duty
	 * cycle (link.c).
	 */
	unsigned int	 node_silence_ms;
	/*
	 * How long a node may keep refusing requests as busy (TP_EBUSY:
	 * Modbus exception 06) before it is written off, ms; 0: 10 minutes.
	 * A busy node is alive: it is asked again later, backing off, and
	 * never counted silent (docs/engine.md, "Busy nodes").
	 */
	unsigned int	 node_busy_ms;
	/*
	 * How fast a node hashes the package before it answers VERIFY,
	 * kB/s; 0: from the link (20,000 on a LAN, 1,000 on a small or
	 * half-duplex link's microcontrollers).
	 */
	unsigned int	 node_hash_kbs;
	/*
	 * The values the link's own config section set (ENG_FIX_*): used
	 * as given.  The others are derived from the link (its caps,
	 * airtime and duty cycle) and never below the value here
	 * (docs/engine.md, "The link profile").  given: the values here
	 * the operator chose for every link ([fanout] set them, they are
	 * not defaults): where the link needs longer ones it uses those and
	 * logs a warning naming the key, once per change.
	 */
	uint32_t	 fixed;
	uint32_t	 given;
#define ENG_FIX_OFFER_WINDOW	0x0001
#define ENG_FIX_STATUS_WINDOW	0x0002
#define ENG_FIX_DISCOVER	0x0004
#define ENG_FIX_RESULT_TIMEOUT	0x0008
	bool		 fec;		/* TS004 parity repair */
	unsigned int	 fec_k;		/* blocks per parity group, 0: 64 */
	int		 fec_proactive;	/* % of fec_k, or ENG_FEC_AUTO */
	bool		 xor_repair;	/* XOR repair frames */

	/*
	 * Link shapes (docs/engine.md, "Link shapes").  unicast_slots:
	 * members served alone at once on a link without max_peers (a
	 * polled bus, a unicast-only link), 0: 4.  poll_broadcast: on a
	 * polled link that can broadcast, the first data pass goes to all
	 * (RS-485 unit 0) and only repair is per node; false: every node
	 * is served alone from the start.  offload: a link with a module
	 * that distributes packages (TP_CAP_OFFLOAD) hands it the package;
	 * offload_idle_s: a module that reports no progress for that long
	 * is given up (0: 3600) and UP carries the rest.
	 */
	unsigned int	 unicast_slots;
	bool		 poll_broadcast;
	bool		 offload;
	unsigned int	 offload_idle_s;
};

/* ------------------------------------------------------------------ */
/* Members and sessions                                                 */

/* A member's state as the gateway sees it. */
enum eng_mstate {
	ENG_M_PENDING,		/* assigned, not yet offered */
	ENG_M_OFFERED,		/* offered, no answer yet */
	ENG_M_RECEIVING,	/* accepted, missing blocks */
	ENG_M_DOWNLOADED,	/* holds every block */
	ENG_M_VERIFIED,		/* hash and signature checked */
	ENG_M_ACTIVATING,	/* told to activate, waiting for RESULT */
	ENG_M_UPDATED,		/* final: runs the new version */
	ENG_M_FAILED,		/* final */
	ENG_M_DECLINED,		/* final: the node declined the offer */
	ENG_M_CANCELLED,	/* final: the daemon cancelled it */
	ENG_M_SKIPPED		/* final, the daemon's: not offered after all
				   (never a state of an engine member) */
};
#define ENG_M_NSTATES	(ENG_M_SKIPPED + 1)
#define ENG_M_FINAL(s)	((s) >= ENG_M_UPDATED)

/* A session's phase (docs/engine.md, "Phases"). */
enum eng_phase {
	ENG_P_IDLE,		/* nothing to do until a member changes */
	ENG_P_OFFER,		/* OFFER repeats, collecting ACCEPTs */
	ENG_P_DATA,		/* a pass over the needed blocks */
	ENG_P_STATUS,		/* STATUS_REQ round */
	ENG_P_VERIFY,		/* VERIFY round */
	ENG_P_ACTIVATE,		/* ACTIVATE repeats */
	ENG_P_RESULT,		/* waiting for final RESULTs */
	ENG_P_STOPPED,		/* not started, paused, closed */
	ENG_P_SERVE,		/* members served one by one (unicast) */
	ENG_P_OFFLOAD		/* the link's module distributes */
};

/*
 * How a session uses its link, chosen when it opens from the link's
 * capabilities and profile (docs/engine.md, "Link shapes").
 */
enum eng_shape {
	ENG_SHAPE_BROADCAST,	/* frames to all, one status round per pass */
	ENG_SHAPE_POLLED,	/* a pass to all, then each node alone, polled */
	ENG_SHAPE_UNICAST,	/* each member alone (connected, polled) */
	ENG_SHAPE_OFFLOAD	/* the module distributes, UP does the rest */
};
const char	*eng_shape_str(enum eng_shape);

/*
 * Where a session's package blocks come from (a cache blob, or a
 * download still streaming).  Borrowed from eng_session_start() until
 * eng_session_close() (or _free) returns; the engine calls it only from
 * its own entry points.
 */
struct eng_source {
	void		*arg;
	/*
	 * Reads len bytes at off into buf.  0, or -1 when the blob cannot
	 * be read: the engine then stops the session and fires
	 * session_error.
	 */
	int		 (*read)(void *arg, uint64_t off, uint8_t *buf,
			    size_t len);
	/*
	 * Bytes from offset 0 that may be sent now: the verified prefix of
	 * a package still downloading, the package's size when complete.
	 * When it grows, the daemon calls eng_session_poke().
	 */
	uint64_t	 (*limit)(void *arg);
	/*
	 * True once the whole package was checked (its SHA-256): VERIFY and
	 * ACTIVATE wait for it.  When it turns true, eng_session_poke().
	 */
	bool		 (*complete)(void *arg);
};

/* What happened to a member (the `member' callback). */
enum eng_mev {
	ENG_MEV_STARTED,	/* its first answer in this session */
	ENG_MEV_STATE,		/* its state changed (not to a final one) */
	ENG_MEV_PROGRESS	/* what it holds changed, same state */
};

/*
 * The callbacks (see the rules at the top: they fire only from eng_run()
 * and from the links' events, never from inside a call of the daemon).
 * Every one is required.  `arg' is the first argument of each.
 */
struct eng_cb {
	void	*arg;
	/*
	 * A member changed (eng_member_info() has its new facts: state,
	 * held, address).  Persist it as the daemon likes (batched).
	 */
	void	 (*member)(void *arg, struct eng_member *, enum eng_mev);
	/*
	 * A member reached a final state set by the engine: UPDATED or
	 * FAILED from its RESULT, DECLINED from its ACCEPT, UPDATED with
	 * UP_R_ALREADY, FAILED when the node gave up (ABORT), FAILED with
	 * UP_R_CONN_LOST when the engine wrote it off, or DECLINED with
	 * UP_R_BUSY when it answered every offer round "busy" (`why' then
	 * says why; NULL otherwise).  `version' is what the node now runs
	 * (UPDATED), else NULL.  The result must be durable when this
	 * returns: the engine acknowledges it to the node right after.
	 * It fires again for a member only after a final state that was
	 * not the node's own word (a write-off, a busy decline, the
	 * daemon's cancel: a late RESULT is the truth), or after the
	 * member went back to a non-final state: a RESULT that contradicts
	 * the node's own final word is acknowledged and ignored
	 * (eng_stats.conflicting_results).
	 */
	void	 (*member_final)(void *arg, struct eng_member *,
		    const char *version, const char *why);
	/*
	 * A member in a final state other than UPDATED (written off,
	 * declined busy, cancelled) is heard again in its session: it
	 * accepts the OFFER, or sends STATUS or a VERIFIED RESULT.  Return
	 * true to take it back: it continues from PENDING as if just
	 * assigned (the frame that revealed it is then processed).  If not,
	 * the node holds an image of a session finished for it: the engine
	 * sends it a targeted ABORT, so it never sits there (issue 7).
	 */
	bool	 (*member_revive)(void *arg, struct eng_member *);
	/*
	 * Offer time: a PENDING member is about to be offered.  Return true
	 * to offer it; false when the daemon decided otherwise from here
	 * (it removed the member, or will offer it later).
	 */
	bool	 (*member_offer)(void *arg, struct eng_member *);
	/*
	 * A node that is no member of session s accepted its offer.  The
	 * daemon may add it now (eng_member_add) and return 1; return 0 to
	 * leave it alone (it is the daemon's elsewhere), -1 to have the
	 * engine ABORT it (it was not targeted).
	 */
	int	 (*stranger)(void *arg, struct eng_session *, uint64_t node,
		    const struct tp_addr *src);
	/*
	 * The session's persistent facts changed (eng_session_info(): id,
	 * link, block_size, nblocks, bytes_sent).  With `durable', they and
	 * every member change reported so far must be on disk before this
	 * returns: a frame that depends on them goes out next (a new
	 * session id, ACTIVATE).  A restarted daemon resumes a session by
	 * creating it again with the same id, block size and members.
	 */
	void	 (*session_save)(void *arg, struct eng_session *,
		    bool durable);
	/*
	 * The session's members settled: it went idle, or a member reached
	 * a final state.  The daemon may find its work done and stop or
	 * close the session from here.
	 */
	void	 (*session_settled)(void *arg, struct eng_session *);
	/* The source could not be read; the session stopped. */
	void	 (*session_error)(void *arg, struct eng_session *);
	/* A node announced itself on link l (frame borrowed). */
	void	 (*announce)(void *arg, struct eng_link *,
		    const struct tp_addr *src, const struct up_announce *);
	/*
	 * A node's frame names a session the engine does not have.  The
	 * daemon may create it now (a late RESULT of a finished session):
	 * the engine then looks again and delivers the frame.
	 */
	void	 (*unknown_session)(void *arg, struct eng_link *,
		    uint32_t session, const struct up_msg *);
	/*
	 * Optional: where a peer of link l sits on a link that relays
	 * through its own nodes (a PLC carrier module's routing tree),
	 * as the plugin reported it with TP_PEER_FOUND or TP_PEER_ROUTE:
	 * `level' hops from the gateway's module (1: heard directly, never
	 * 0 here), `parent' the address of the peer that relays for it
	 * (len 0: none).  Both borrowed.  The daemon maps the addresses to
	 * nodes for the scheduler (docs/fanout.md, "Topology from the
	 * link").
	 */
	void	 (*peer_route)(void *arg, struct eng_link *,
		    const struct tp_addr *peer, const struct tp_addr *parent,
		    uint8_t level);
};

/* ------------------------------------------------------------------ */
/* engine.c: the engine, its clock and its timers                      */

/*
 * A new engine.  base is lent to the transport plugins (they own their
 * fds and events); the engine itself never uses it.  clock, cb and
 * defaults are copied.  defaults is every link's profile unless
 * eng_link_open() is given one.
 */
struct eng	*eng_new(struct event_base *base, const struct eng_clock *,
		    const struct eng_cb *, const struct eng_params *defaults);
/* Closes every link and frees every session and member; accepts NULL. */
void		 eng_free(struct eng *);
/*
 * Runs everything due at the clock's now: phase timers, result polls,
 * discovery, transmit loops, and the work eng_* calls deferred.  Then
 * hands the next deadline to clock->arm().
 */
void		 eng_run(struct eng *);
/* The next deadline (clock microseconds), UINT64_MAX for none. */
uint64_t	 eng_next_deadline(struct eng *);
/* A new default profile, applied to every link (config reload). */
void		 eng_set_params(struct eng *, const struct eng_params *);

struct eng_stats {
	uint64_t	 rx_unknown_session;	/* frames for no session */
	uint64_t	 duplicate_results;	/* RESULTs acknowledged again */
	/* RESULTs that contradict the node's final word, ignored. */
	uint64_t	 conflicting_results;
	/* Final RESULTs of nodes that are no member, acknowledged only. */
	uint64_t	 stranger_results;
	uint64_t	 finals;		/* member_final callbacks */
};
void		 eng_stats(struct eng *, struct eng_stats *);

/* ------------------------------------------------------------------ */
/* link.c: transport instances                                          */

/*
 * Opens and starts a transport instance `name' with plugin ops and its
 * config section (borrowed for the call), with profile p (copied; NULL:
 * the engine's defaults).  It sends a DISCOVER at once and then every
 * discover_interval_s.  Sessions created on `name' before it was open
 * start using it.  Returns the link, or NULL with *cause (caller frees).
 */
struct eng_link	*eng_link_open(struct eng *, const char *name,
		    const struct tp_ops *, const struct tp_conf *,
		    const struct eng_params *p, char **cause);
struct eng_link	*eng_link_find(struct eng *, const char *name);
/* Links in the order they were opened; NULL past the last. */
struct eng_link	*eng_link_at(struct eng *, size_t i);
const char	*eng_link_name(const struct eng_link *);
/* A new profile for this link (reload); sessions use it from now on. */
void		 eng_link_set_params(struct eng_link *,
		    const struct eng_params *);
/*
 * The link's session tag counter (§11.4): the daemon persists
 * eng_link_info().ctag_next (it moves when a session opens:
 * session_save) and hands it back when the link opens again, so a
 * restarted gateway does not reuse a tag a sleeping node still holds.
 */
void		 eng_link_set_ctag_next(struct eng_link *, uint8_t next);
/* The plugin's text form of an address; 0, or -1 if it has none. */
int		 eng_link_addr_fmt(struct eng_link *, const struct tp_addr *,
		    char *buf, size_t len);
/*
 * Queues a targeted ABORT(reason) of session `session' to `node' (at
 * `addr' where the link is unicast, NULL: the broadcast domain), three
 * times: for a node that holds a session the engine no longer has.
 */
void		 eng_link_abort(struct eng_link *, uint32_t session,
		    uint64_t node, const struct tp_addr *addr, uint8_t reason);

struct eng_pacer_info {
	uint64_t	 rate_bps;	/* paced rate, 0 = unlimited */
	uint64_t	 link_bps;
	uint32_t	 frame_overhead;
	uint32_t	 duty_cycle_ppm;	/* largest of the bands' */
	/* The first regulated band: budget left in the window now. */
	uint64_t	 duty_credit_us;
	uint64_t	 duty_cap_us;	/* ... and its budget per window */
	/* Every band (caps.band[], or one of duty_cycle_ppm). */
	uint8_t		 nbands;	/* 0: no duty cycle */
	struct {
		uint32_t duty_ppm;
		uint64_t budget_us;	/* per window */
		uint64_t used_us;	/* in the window now */
		uint64_t spent_us;	/* since the link opened */
	}		 band[TP_BANDS_MAX];
	uint32_t	 min_gap_us;
	uint32_t	 tx_queue;
	uint32_t	 inflight;	/* sent, no tx_done yet */
	bool		 blocked;	/* TP_EAGAIN, waiting for writable */
	uint64_t	 backlog_us;	/* paced time still ahead */
	uint64_t	 frames;
	uint64_t	 bytes;
	uint64_t	 airtime_us;	/* airtime (as tx_done measured) */
	uint64_t	 waits;		/* timer arms for pacing */
	uint64_t	 eagain;
};

struct eng_link_info {
	const char	*name;		/* borrowed, valid with the link */
	const char	*type;		/* the plugin's name */
	bool		 up;
	struct tp_caps	 caps;
	struct tp_stats	 tp;		/* the plugin's counters (or 0) */
	uint64_t	 rx_frames;
	uint64_t	 rx_bad;	/* undecodable */
	uint64_t	 rx_ignored;	/* our own frames heard back */
	uint64_t	 tx_ctrl;
	uint64_t	 tx_data;	/* DATA, PARITY and XOR */
	uint64_t	 tx_repair;	/* ... of them in repair passes */
	uint64_t	 tx_errors;
	uint64_t	 ctrl_dropped;	/* control ring full */
	uint64_t	 ctrl_stale;	/* control frames stale when due */
	uint64_t	 quiet_waits;	/* half-duplex: sends held for answers */
	unsigned int	 ctrl_queued;
	unsigned int	 data_sessions;	/* sessions in a data pass */
	uint32_t	 loss_ppm;	/* loss the nodes saw (parity) */
	uint32_t	 node_silence_ms;	/* in use (profile or derived) */
	uint8_t		 ctag_next;	/* the session tag counter (§11.4) */
	/* The link's profile in use (configured or derived). */
	uint32_t	 status_window_ms;	/* floor of a round's window */
	uint32_t	 offer_window_ms;
	uint32_t	 discover_interval_s;	/* 0: at open only */
	uint32_t	 result_timeout_s;
	uint32_t	 poll_ms;	/* first RESULT poll after the delay */
	uint32_t	 node_hash_kbs;
	uint32_t	 frame_us;	/* an mtu frame on air */
	uint32_t	 answer_us;	/* a node's largest answer on air */
	struct eng_pacer_info pacer;
	/* Link shapes: peers, slots for members served alone, polls. */
	size_t		 npeers;	/* known (eng_link_peer_info) */
	uint32_t	 peers_up;	/* connected now */
	uint32_t	 slots;		/* members served alone at once */
	uint32_t	 served;	/* ... now */
	uint32_t	 queued;	/* ... waiting for a slot */
	uint64_t	 polls;		/* polls sent */
	uint64_t	 polls_empty;	/* ... that brought nothing */
	uint64_t	 rx_segments;	/* SEG frames taken */
	uint64_t	 tx_segments;	/* SEG frames sent */
	uint64_t	 down_ms;	/* time the link was down, total */
};
void		 eng_link_info(struct eng_link *, struct eng_link_info *);

/*
 * A peer of a link whose nodes are reached one by one: a connection of
 * a TP_CAP_CONNECT link (BLE, Modbus TCP), or a node a polled link or a
 * discovering link listed (TP_PEER_FOUND).
 */
struct eng_peer_info {
	struct tp_addr	 addr;
	const char	*state;		/* "idle", "connecting", "up", "closing" */
	uint32_t	 mtu;		/* this connection's, 0: the link's */
	int16_t		 rssi_dbm;	/* INT16_MAX: unknown */
	uint64_t	 node;		/* the member it serves now, 0: none */
	uint32_t	 session;	/* ... of this session */
	const char	*step;		/* what is done with it, "" idle */
	uint32_t	 inflight;	/* frames sent, no tx_done yet */
	uint32_t	 connects;	/* connections made */
	uint32_t	 drops;		/* ... lost while in use */
	uint32_t	 fails;		/* connects that failed */
	uint64_t	 tx_frames;
	uint64_t	 tx_bytes;
	uint64_t	 rx_frames;
	uint64_t	 idle_ms;	/* since it was last used or heard */
};
/*
 * Peer i of the link (0, 1, ... in no particular order); -1 past the
 * last.  Strings are static.
 */
int		 eng_link_peer_info(struct eng_link *, size_t i,
		    struct eng_peer_info *);

/* ------------------------------------------------------------------ */
/* session.c: sessions and their members                                */

struct eng_session_conf {
	uint32_t	 id;		/* != 0, unique in the engine */
	const char	*link;		/* the link's name (need not be open) */
	/*
	 * 0: chosen when the session opens, from the profile, the link's
	 * mtu and the members' max_frame.  A resumed session passes what
	 * it had: nodes resume only with the same block size.
	 */
	uint16_t	 block_size;
	uint32_t	 nblocks;	/* recorded with it, 0: unknown */
	uint64_t	 bytes_sent;	/* counter to resume from */
	/*
	 * Its compact session tag (§11.4) to resume with, recorded with it
	 * (eng_session_info().tag after session_save); 0: a new one is
	 * taken from the link's counter when it opens on a compact link.
	 */
	uint8_t		 tag;
	/*
	 * The package descriptor as the cloud signed it (copied); the
	 * engine sets block_size, nblocks and deadline_s.
	 */
	const struct up_offer *offer;
	/*
	 * Module offload on a link that has it (TP_CAP_OFFLOAD): 0 as the
	 * link's profile says, 1 always, -1 never (UP carries the package).
	 */
	int		 offload;
};

/*
 * A new session in state STOPPED, with no member.  udata is the daemon's
 * (eng_session_udata).  Returns NULL with *cause if the id is in use.
 */
struct eng_session *eng_session_new(struct eng *,
		    const struct eng_session_conf *, void *udata,
		    char **cause);
/* Frees the session and its members (no callback); accepts NULL. */
void		 eng_session_free(struct eng_session *);
struct eng_session *eng_session_find(struct eng *, uint32_t id);
void		*eng_session_udata(const struct eng_session *);
/*
 * Runs the session with blocks from src (borrowed until close): it opens
 * (block size, buffers, repair planners; session_save fires, durable for
 * a new id) and picks its next phase from the members' states.  Waits
 * for the link if it is not open.  A session already running is only
 * poked.  Deferred to the next eng_run().
 */
void		 eng_session_start(struct eng_session *,
		    const struct eng_source *src);
/*
 * Something changed that the session should look at: a member joined or
 * was released, the source grew or completed.  Deferred.
 */
void		 eng_session_poke(struct eng_session *);
/*
 * The way (eng_session_conf.offload: 0 as the link says, 1 module
 * offload, -1 UP) set again, e.g. once the daemon knows the campaign's
 * policy after a restart; an offload already begun goes on.
 */
void		 eng_session_set_offload(struct eng_session *, int offload);
/* Stops sending and timers (pause); keeps buffers.  Immediate. */
void		 eng_session_stop(struct eng_session *);
/* Stops and releases buffers; the source is not used any more. */
void		 eng_session_close(struct eng_session *);
/* Queues ABORT(reason) to every node of the session, three times. */
void		 eng_session_abort(struct eng_session *, uint8_t reason);

struct eng_session_info {
	uint32_t	 id;
	const char	*link;		/* borrowed, valid with the session */
	enum eng_phase	 phase;
	bool		 running;	/* started and not stopped */
	uint16_t	 block_size;	/* 0 until it opens */
	uint32_t	 nblocks;
	uint32_t	 needed;	/* blocks still to send this pass */
	uint32_t	 pass;
	uint64_t	 bytes_sent;
	uint64_t	 data_frames;	/* DATA, PARITY and XOR */
	uint64_t	 repair_frames;	/* ... in passes after the first */
	uint64_t	 unicast_frames; /* ... to one member alone (the
					   polled and unicast shapes) */
	uint64_t	 parity_frames;
	uint64_t	 xor_frames;
	uint64_t	 ctrl_frames;
	uint64_t	 fec_fallbacks;	/* groups sent as DATA again */
	uint64_t	 grtt_us;	/* round trip, 0: not measured */
	size_t		 nmembers;
	uint32_t	 nstate[ENG_M_NSTATES];
	enum eng_shape	 shape;
	bool		 frozen;	/* its link is down */
	uint32_t	 served;	/* members served alone now */
	uint32_t	 queued;	/* ... waiting for a slot */
	uint64_t	 polls;		/* polls of its members */
	uint64_t	 offload_bytes;	/* the module took, 0: no offload */
	bool		 compact;	/* UP's compact frames (§11) */
	uint8_t		 tag;		/* its session tag, 0: none */
	uint16_t	 fec_k;		/* parity group size, 0: none */
	uint64_t	 count_rounds;	/* rounds asking count lists */
	uint64_t	 runs_asked;	/* compact STATUS_REQs for run lists
					   in a full-frame session */
	uint64_t	 counts_heard;	/* count lists answered */
	uint64_t	 lone_rounds;	/* lone straggler asked for runs
					   instead of parity (reply.c) */
};
void		 eng_session_info(const struct eng_session *,
		    struct eng_session_info *);
const char	*eng_phase_str(enum eng_phase);
const char	*eng_mstate_str(enum eng_mstate);

struct eng_member_conf {
	uint64_t	 node;
	enum eng_mstate	 state;		/* PENDING, or what was persisted */
	uint8_t		 result;	/* of a final state */
	uint32_t	 held;		/* blocks it held (restart) */
	struct tp_addr	 addr;		/* where it was last heard */
	uint16_t	 max_frame;	/* its ANNOUNCE's, 0: unknown */
	bool		 hold;		/* stop at VERIFIED (no ACTIVATE) */
};

/*
 * Adds node c->node to session s (no callback; the session is not
 * poked).  udata is the daemon's (eng_member_udata).  Returns the
 * member, or NULL if the node is a member already.
 */
struct eng_member *eng_member_add(struct eng_session *,
		    const struct eng_member_conf *, void *udata);
/* Takes the member out of its session and frees it. */
void		 eng_member_remove(struct eng_member *);
struct eng_member *eng_member_find(struct eng_session *, uint64_t node);
void		*eng_member_udata(const struct eng_member *);
struct eng_session *eng_member_session(const struct eng_member *);
/*
 * The member starts over at PENDING (it joins again, or lost the
 * session): offered with the next round, what it holds asked anew.
 * The session is poked.
 */
void		 eng_member_restart(struct eng_member *);
/*
 * Final CANCELLED with result `code' (no callback).  With `tell', a
 * node that was offered gets a targeted ABORT(code), three times.
 */
void		 eng_member_cancel(struct eng_member *, uint8_t code,
		    bool tell);
/* Held members stop at VERIFIED; releasing one pokes the session. */
void		 eng_member_set_hold(struct eng_member *, bool);
/* Where the node was heard last (an ANNOUNCE), its largest frame. */
void		 eng_member_set_addr(struct eng_member *,
		    const struct tp_addr *, uint16_t max_frame);

struct eng_member_info {
	uint64_t	 node;
	enum eng_mstate	 state;
	uint8_t		 result;
	uint32_t	 held;		/* what the node confirmed */
	/*
	 * What it probably holds now: `held' lags a whole data pass (a
	 * node tells only when asked), so during a pass the blocks sent
	 * since its report are counted, spread evenly over what it missed.
	 * Never nblocks until the node says so itself.
	 */
	uint32_t	 est_held;
	uint32_t	 nblocks;	/* of its session, 0 until it opens */
	struct tp_addr	 addr;
	bool		 hold;
	/*
	 * Served alone (unicast, polled links): what it is doing, e.g.
	 * "queued", "connecting", "data"; "" when not served alone.
	 */
	const char	*step;
	uint32_t	 need;		/* blocks still to send it alone */
};
void		 eng_member_info(const struct eng_member *,
		    struct eng_member_info *);

#endif /* ENGINE_H */
