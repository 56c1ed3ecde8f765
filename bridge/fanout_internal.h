/*
 * fanout_internal.h: what the daemon's campaign files share (bridge/
 * only).  The fan-out engine itself is engine/ (engine/engine.h): these
 * files wire campaigns, the registry, the scheduler and the control
 * socket's views to it.
 *
 *   fanout.c      the engine's clock, callbacks and transports; the API
 *   campaign.c    campaigns, members, persistence, results and reports
 *   fo_session.c  a campaign's session on one link: the engine's
 *                 session and the block source it reads
 *   stream.c      cut-through: sessions on a package still downloading
 *   rollout.c     scheduler campaigns carried out by campaigns
 *   fo_route.c    topology from the link: routes to the registry
 *   fanout_json.c the control socket's views
 *
 * docs/fanout.md describes the daemon's side, docs/engine.md the engine.
 */
#ifndef FANOUT_INTERNAL_H
#define FANOUT_INTERNAL_H

#include <sys/queue.h>

#include <stdbool.h>
#include <stdint.h>

#include "upbridged.h"
#include "engine.h"

struct event;

/* glibc's <sys/queue.h> lacks the _SAFE iterators of the BSDs. */
#ifndef TAILQ_FOREACH_SAFE
#define TAILQ_FOREACH_SAFE(var, head, field, tvar)			\
	for ((var) = TAILQ_FIRST(head);					\
	    (var) != NULL && ((tvar) = TAILQ_NEXT(var, field), 1);	\
	    (var) = (tvar))
#endif

/* ------------------------------------------------------------------ */
/* fanout.c: the daemon's side of the engine                            */

#define FO_NAME_MAX	63
#define FO_MAX_TRIES	3	/* campaign attempts per node (CONN_LOST) */

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

	/* The engine (engine/engine.h) and the one timer it asks for. */
	struct eng		*eng;
	struct event		*eng_ev;
	/* [fanout] time_scale: the engine's clock runs this much faster
	 * than real time from clock_t0 on (simulation only). */
	unsigned int		 time_scale;
	uint64_t		 clock_t0;

	struct fo_deploys	 deploys;
	struct fo_campaigns	 campaigns;

	/* rollout.c: scheduler campaigns (issue 4). */
	struct fo_rollouts	 rollouts;
	struct sched_db		*sdb;
	struct event		*tick_ev;	/* scheduler tick timer */
	bool			 tick_soon;	/* a deferred tick is queued */
	bool			 sched_quiet;	/* carrying out an ABORT */

	struct event		*start_ev;	/* deferred resume work */
	struct event		*place_ev;	/* deferred: parked members */
	bool			 place_soon;
	/* Issue-2 nodes whose delta failed: assigned again (full image). */
	uint64_t		*fallback;
	size_t			 nfallback, fallback_cap;
	/*
	 * When the next provisional record may become final (unix ms;
	 * campaign__cron): the earliest write-off + final_after_s, 0 to
	 * look at the database again.
	 */
	int64_t			 close_next;
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
	sqlite3_stmt		*st_meta_get;
	sqlite3_stmt		*st_meta_put;

	/* fo_route.c: routes the links reported, by link address. */
	struct fo_route		*routes;
	size_t			 nroutes, routes_cap;

	/* Counters. */
	uint64_t		 results;
};

uint64_t fanout__now_us(void);
uint64_t fanout__now_ms(void);
int64_t	 fanout__unix_ms(void);
/* The engine's profile from the config's [fanout] section. */
void	 fanout__params(const struct ub_config *, struct eng_params *);
/* Test hook: report lines go to fn as well as to the uplink. */
void	 fanout__set_report_hook(struct fanout *, fanout_report_fn *,
	    void *);
/* A random u32 != 0. */
uint32_t fanout__random_u32(void);
void	 fanout__strlcpy(char *, const char *, size_t);

/* ------------------------------------------------------------------ */
/* fo_route.c: topology from the link                                   */

struct fo_route;
/* The engine's peer_route: a peer's place in its link's routing tree. */
void	 fanout__route(struct fanout *, struct eng_link *,
	    const struct tp_addr *peer, const struct tp_addr *parent,
	    uint8_t level);
/* A node announced itself on a link from `src'. */
void	 fanout__route_heard(struct fanout *, struct eng_link *,
	    const struct tp_addr *src, uint64_t node);
void	 fanout__route_fini(struct fanout *);

/* ------------------------------------------------------------------ */
/* campaign.c                                                           */

enum fo_cstate {
	FO_C_WAITING,		/* waiting-package */
	FO_C_RUNNING,
	FO_C_PAUSED,
	FO_C_DONE,
	FO_C_CANCELLED
};

/*
 * A member of a campaign: one node getting its package.  Its state is
 * enum eng_mstate (engine.h); while it sits in a session the engine owns
 * the state and reports every change (fanout.c), so `state', `held',
 * `result' and `addr' here are the engine's as last reported, kept for
 * persistence, reports and views, and for members in no session.
 */
struct fo_member {
	uint64_t		 node;
	struct fo_campaign	*c;
	struct fo_session	*s;	/* NULL until a session takes it */
	struct eng_member	*em;	/* in s's engine session */
	struct fo_member	*hnext;	/* campaign hash chain */
	TAILQ_ENTRY(fo_member)	 centry;

	char			 transport[FO_NAME_MAX + 1];
	struct tp_addr		 addr;
	char			 from[UP_VER_MAX + 1];
	enum eng_mstate		 state;
	uint8_t			 result;
	uint32_t		 held;

	/*
	 * Reports (docs/manifest.md, "Final and provisional records"):
	 * its final state may still change (a write-off, cancelled while
	 * activating, taken back within its tries), so its record says
	 * provisional; `closed': the item's final record went (an
	 * issue-2 member's; a rollout's item keeps its own), and only
	 * late_result records follow it.
	 */
	bool			 provisional;
	bool			 closed;
	/*
	 * Not placed in a session: another campaign holds the node's
	 * component (two campaigns never target it at once, issue 7).
	 */
	bool			 parked;

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
	size_t			 nparked;	/* members with `parked' */
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
/* A link's session tag counter (§11.4) in fanout_meta; get: -1 none. */
int	 campaign__ctag_get(struct fanout *, const char *link);
void	 campaign__ctag_put(struct fanout *, const char *link, uint8_t);
void	 campaign__put(struct fo_campaign *);
/*
 * A member reached a final state (m->state and m->result are set): the
 * registry, the rollout, the report, the row, and a commit.  The engine
 * sends RESULT_ACK afterwards.
 */
void	 campaign__final(struct fo_member *, const char *version,
	    bool heard);
/*
 * Housekeeping: an issue-2 member written off final_after_s ago with no
 * word from its node gets its item's final record now (docs/manifest.md,
 * "Final and provisional records").
 */
void	 campaign__cron(struct fanout *);
/*
 * Offer time (issue 7), from the engine's member_offer callback: right
 * before a PENDING member is offered, the node as the registry knows it
 * now.  A node that runs a version not older than the package's is not
 * offered (the member is skipped); a node whose component another
 * campaign holds waits, out of the session (parked).  True: offer it.
 */
bool	 campaign__offer_ok(struct fo_member *);
/*
 * May a final member still come back into its session: an issue-2
 * member written off (lost, busy, reset) within FO_MAX_TRIES, or a
 * rollout member whose item the scheduler will offer this package
 * again?  Such a member's session is still its own.
 */
bool	 campaign__revivable(const struct fo_member *);
/*
 * A node announced a session and a state: a node that holds an
 * unactivated image of a session the gateway no longer runs, or one that
 * is finished for it, gets a targeted ABORT (it goes back to IDLE).
 */
void	 campaign__orphan_check(struct fanout *, const struct registry_node *,
	    const struct up_announce *);
/* Targeted ABORT of `session' to `node' on a transport (not acked). */
void	 campaign__send_abort(struct fanout *, const char *transport,
	    const struct tp_addr *, uint32_t session, uint64_t node,
	    uint8_t reason);
/* Sets a member's state from the daemon's side (join, cancel). */
void	 campaign__set_state(struct fo_member *, enum eng_mstate);
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
const char *campaign__state_str(enum fo_cstate);
const char *campaign__mstate_str(enum eng_mstate);
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
void	 rollout__result(struct fo_member *, enum eng_mstate, uint8_t result);
/* The engine did not offer a member after all: its item is skipped. */
void	 rollout__skipped(struct fo_member *, int result, const char *why);
/* True if the scheduler will offer this member's package again. */
bool	 rollout__will_retry(struct fo_member *);
/* Runs sched_tick soon (deferred: never from inside a caller's work). */
void	 rollout__kick(struct fanout *);
/* From the cron: ticks whatever is due. */
void	 rollout__cron(struct fanout *);
struct fo_rollout *rollout__find(struct fanout *, const char *id);
/*
 * The way a session of rollout `id' carries its package on a link whose
 * module distributes packages (policy "offload"): the engine's
 * eng_session_conf.offload, 0 (as the link says) when no live rollout
 * has that id.
 */
int	 rollout__offload(struct fanout *, const char *id);
/* upctl: approve|pause|resume|cancel|force-cancel; -1 with cause. */
int	 rollout__action(struct fo_rollout *, const char *action,
	    char **cause);
/* Rows of live rollouts for the watch (fanout_progress_json). */
void	 rollout__progress(struct fanout *, json_t *rows);
/*
 * Report record extras for a member's result line (adds to `o', with
 * "final" from the scheduler's item).  Returns 0, or 1 when no result
 * record may go upstream because the item's final record went already
 * (nothing but a late_result follows it), -1 when none is owed.
 */
int	 rollout__report_extra(struct fo_member *, json_t *o);

/* ------------------------------------------------------------------ */
/* fo_session.c: a campaign's session on one link                     */

/*
 * The engine's session of campaign c on one link, and the block source
 * it reads: the package's cache blob, or the partial blob of a download
 * still streaming (stream.c).
 */
struct fo_session {
	struct fanout		*f;
	struct fo_campaign	*c;
	struct eng_session	*es;
	char			 transport[FO_NAME_MAX + 1];
	uint32_t		 id;
	int			 fd;		/* the blob, -1 if closed */
	TAILQ_ENTRY(fo_session)	 centry;	/* campaign's list */

	/* The send rate for the views, sampled about once a second. */
	uint64_t		 rate_ms;
	uint64_t		 rate_bytes;
	uint64_t		 rate_bps;
};

/*
 * Creates a session of campaign c on transport `name' with session id
 * `id' (0: pick one) and block_size (0: the engine picks it when it
 * opens), resuming nblocks, bytes_sent and its compact tag (0: none
 * yet).  Returns NULL with cause.
 */
struct fo_session *session__new(struct fo_campaign *, const char *transport,
	    uint32_t id, uint16_t block_size, uint32_t nblocks,
	    uint64_t bytes_sent, uint8_t tag, char **cause);
void	 session__free(struct fo_session *);
/* Puts a member into the session (its engine member), or takes it out. */
void	 session__add_member(struct fo_session *, struct fo_member *);
void	 session__remove_member(struct fo_session *, struct fo_member *);
/*
 * Runs the session if its campaign runs with its package sendable
 * (opens the blob, starts the engine's session), else does nothing; a
 * running session is poked (a member joined, the blob grew).
 */
void	 session__run(struct fo_session *);
/* Stops sending and timers (pause, cancel, shutdown). */
void	 session__stop(struct fo_session *);
/* Stops and closes the blob (nothing left to do, or it must be read
 * again). */
void	 session__close(struct fo_session *);
struct fo_session *session__find(struct fanout *, uint32_t id);
/* The engine's facts of the session. */
void	 session__info(const struct fo_session *, struct eng_session_info *);
/* Its send rate over about the last second. */
uint64_t session__rate_bps(struct fo_session *);

#endif /* FANOUT_INTERNAL_H */
