/*
 * sched.h: campaign decisions, the one public header of scheduler/.
 *
 * The scheduler decides *what* and *when*; it sends nothing itself, opens
 * no socket and reads no clock of its own.  docs/campaigns.md describes
 * the model; in short:
 *
 *   deployment policy JSON --sched_policy_parse--> struct sched_policy
 *   policy + packages + nodes --sched_campaign_plan--> struct sched_campaign
 *     (items = (node, component) with their route of packages, stages,
 *      a dependency graph; cycles and unsatisfiable constraints refused)
 *   sched_tick(now)        -> decisions: OFFER / ACTIVATE / ABORT / EVENT
 *   sched_node_seen()      <- a node announced (facts, late joiners)
 *   sched_item_verified()  <- a node holds the verified image
 *   sched_item_result()    <- a node's final result
 *   sched_campaign_action()<- upctl approve/pause/resume/cancel/...
 *   sched_db_save/load     -> tables sched_* (restart after kill -9)
 *   sched_report_json/csv  -> views and exports
 *
 * Daemon conventions: 0/-1 (or NULL) and `char **cause' (malloc'd, the
 * caller frees).  Nothing here blocks; nothing calls time(): every
 * decision takes its time from a struct sched_clock the caller passes.
 */
#ifndef SCHED_H
#define SCHED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <sqlite3.h>

#include "cache.h"
#include "up.h"

/* ------------------------------------------------------------------ */
/* Limits (bad input beyond them is an error, never truncated)          */

#define SCHED_MAX_TAGS		8	/* tags per node / per selector */
#define SCHED_MAX_TRANSPORTS	8	/* transports in a target */
#define SCHED_MAX_STAGES	16
#define SCHED_MAX_STAGE_NODES	32	/* explicit node ids per stage */
#define SCHED_MAX_WINDOWS	8
#define SCHED_MAX_CONC		8	/* per-transport concurrency rules */
#define SCHED_MAX_REQUIRES	16	/* component constraints */
#define SCHED_MAX_ATOMIC	8	/* atomic groups */
#define SCHED_MAX_ATOMIC_NODES	16
#define SCHED_MAX_RANGE		4	/* comparators in a version range */
#define SCHED_MAX_STEPS		4	/* packages in a route (delta chain) */
#define SCHED_MAX_PKGS		16	/* == UPLINK_MAX_DEP_PKGS */
#define SCHED_TRANSPORT_MAX	63
#define SCHED_NAME_MAX		31	/* stage and group names */
#define SCHED_REASON_MAX	191
#define SCHED_RANGE_TEXT_MAX	63

/* ------------------------------------------------------------------ */
/* Nodes                                                                */

enum sched_role {
	SCHED_ROLE_LEAF = 0,		/* an end node */
	SCHED_ROLE_RELAY = 1,		/* routes for its children */
	SCHED_ROLE_COORDINATOR = 2,	/* coordinator / CCO carrier module */
	SCHED_ROLE_GATEWAY = 3		/* the gateway's own update */
};

/*
 * What the scheduler needs to know about a node: identity and versions
 * (from ANNOUNCE), where it is (transport instance, broadcast or not),
 * tags, its last reported battery and link quality, and its place in the
 * topology.  Fields a registry does not know yet may stay zero, except
 * battery/rssi/snr which must be UP_*_UNKNOWN when unknown (0 % battery
 * would close the battery gate).  sched_node_init() sets those.
 */
struct sched_node {
	uint64_t	 node_id;
	char		 hw[UP_NAME_MAX + 1];
	size_t		 ncomp;
	struct up_component comp[UP_MAX_COMPONENTS];
	/* Added for issue 4; zero means "unknown / none". */
	char		 transport[SCHED_TRANSPORT_MAX + 1];
	int		 broadcast;	/* its link is a broadcast medium */
	size_t		 ntags;
	char		 tags[SCHED_MAX_TAGS][CACHE_NAME_MAX + 1];
	uint8_t		 battery;	/* percent or UP_BATTERY_UNKNOWN */
	int16_t		 rssi_dbm;	/* or UP_RSSI_UNKNOWN */
	int8_t		 snr_db;	/* or UP_SNR_UNKNOWN */
	int64_t		 reported;	/* unix s of the last report, 0 none */
	uint64_t	 parent;	/* node id it routes through, 0 none */
	uint8_t		 level;		/* hops from the gateway (info) */
	enum sched_role	 role;
};

/* Zeroes `n' and sets battery/rssi/snr to "unknown". */
void		 sched_node_init(struct sched_node *n, uint64_t id);
/* Version `n' runs of `component', or NULL. */
const char	*sched_node_version(const struct sched_node *n,
		    const char *component);

/* ------------------------------------------------------------------ */
/* sched_version.c, sched_range.c: versions and version ranges          */

/*
 * Compares two version strings as the nodes do: up_version_cmp(), the
 * order of docs/up-protocol.md §2.7 (dot-separated numeric fields compared
 * as numbers, "1.10.0" > "1.9.3"; a missing field counts as 0; a
 * pre-release after '-' sorts before its release, "2.0.0-rc1" < "2.0.0";
 * "+build" is ignored; numbers before words, words bytewise).  Returns
 * <0, 0, >0.
 */
int		 sched_version_cmp(const char *, const char *);

/*
 * May package `p' be offered to a node that runs `running' of its
 * component?  Only a newer version, or an older one the cloud signed as
 * a downgrade (p->allow_downgrade, docs/up-protocol.md §5.4).  The one
 * place of the rule: planning, routing, the chooser and the bridge's
 * check at offer time (issue 7: the version re-read then) ask here.
 */
bool		 sched_may_offer(const struct cache_pkg *p,
		    const char *running);

enum sched_op {
	SCHED_OP_EQ = 0, SCHED_OP_GE, SCHED_OP_GT, SCHED_OP_LE, SCHED_OP_LT
};

/*
 * A version range: comparators that must all hold (AND).  ncmp == 0
 * matches every version.  Grammar (docs/campaigns.md, "Version ranges"):
 *   range := "*" | "" | term { " " term }
 *   term  := op VERSION | VERSION | X-RANGE | "^" VERSION | "~" VERSION
 *   op    := ">=" | ">" | "<=" | "<" | "="
 * "1.x" / "1.2.*" is a wildcard, "^1.2.3" means >=1.2.3 <2.0.0 (below
 * 1.0 the first non-zero field is fixed: ^0.2.1 = >=0.2.1 <0.3.0),
 * "~1.2.3" means >=1.2.3 <1.3.0 (and "~1" >=1 <2).  The upper bounds
 * these derive exclude the pre-releases of that bound (<2.0.0 does not
 * admit 2.0.0-rc1).  Versions compare with sched_version_cmp().
 */
struct sched_range {
	int		 ncmp;
	struct {
		enum sched_op	 op;
		char		 ver[CACHE_VER_MAX + 2];
	}		 cmp[SCHED_MAX_RANGE];
	char		 text[SCHED_RANGE_TEXT_MAX + 1];	/* as written */
};

/*
 * Parses a range; -1 with cause ("'1.x.y': bad wildcard") on error.  A
 * range no version can satisfy (">=2.0 <1.0", "=1.0 =1.1") is an error
 * too ("'>=2.0 <1.0': matches no version").
 */
int		 sched_range_parse(const char *, struct sched_range *,
		    char **cause);
/* True if `version' lies in the range. */
bool		 sched_range_match(const struct sched_range *,
		    const char *version);

/* ------------------------------------------------------------------ */
/* sched_choose.c, sched_route.c: which package(s) a node gets          */

/*
 * For one component of `node', picks from pkgs[n] the package to offer:
 * compatible hardware (pkg->nhw == 0 or hw listed), same component,
 * version newer than the running one; among the newest such version a
 * delta from the running version is preferred when it is smaller than the
 * full image.  Returns the chosen package (borrowed from pkgs) or NULL when
 * the node is up to date or nothing fits.  (Issue-2 chooser; the planner
 * uses sched_route(), which also finds delta chains.)
 */
const struct cache_pkg *sched_choose(const struct cache_pkg *pkgs, size_t n,
		    const struct sched_node *node, const char *component);

/* True if the package's hardware list admits `hw'. */
int		 sched_hw_ok(const struct cache_pkg *, const char *hw);

/*
 * The newest version of `component' that pkgs[] can bring a node of
 * model `hw' to (full images and deltas alike), or NULL.
 */
const char	*sched_target_version(const struct cache_pkg *pkgs, size_t n,
		    const char *hw, const char *component);

/* A way from one version to another: 1..SCHED_MAX_STEPS packages. */
struct sched_route {
	int		 nsteps;
	const struct cache_pkg *step[SCHED_MAX_STEPS];	/* borrowed */
	uint64_t	 bytes;		/* sum of the steps' sizes */
	int		 full;		/* the route is one full image */
};

/*
 * Cheapest route by bytes from `from' to `to' for a node of model `hw':
 * the full image of `to', one delta from `from', or a chain of deltas
 * (each step's base is the previous step's version), or a full image of
 * an intermediate version followed by deltas.  `step_cost' bytes are
 * added per step (each step is one more session, verify and reboot), so
 * of two routes of near equal bytes the shorter wins.  If `no_full' the
 * route must not contain a full image.  Returns 0 and fills `r', or -1
 * when there is no route.
 */
int		 sched_route(const struct cache_pkg *pkgs, size_t n,
		    const char *hw, const char *component, const char *from,
		    const char *to, uint64_t step_cost, int no_full,
		    struct sched_route *r);

/*
 * Broadcast media: one session per distinct package serves every node on
 * the medium, so the choice is made per group of nodes (same hw, same
 * component, same target, same base version), not per node.  Each group
 * gets its delta route (one session per distinct base) or joins the one
 * full session.  The cost minimised is
 *   airtime = sum of the sizes of the distinct packages sent
 *           + listen_pct/100 * sum over nodes of the bytes it receives
 * (the second term is the receivers' time on air: battery, flash wear,
 * time the node cannot do its job).  With listen_pct = 0 it is pure
 * channel airtime, and one full session, once needed by a node on an
 * unknown base, serves everybody.  On input groups[] carry base and
 * nnodes; on output route, use_full (1: receives the full image) and the
 * return value is the total cost; (uint64_t)-1 if some group has no way
 * at all.
 */
struct sched_bgroup {
	char		 base[CACHE_VER_MAX + 1];
	size_t		 nnodes;
	struct sched_route route;	/* out: what the group receives */
	int		 use_full;	/* out */
};
uint64_t	 sched_broadcast_choose(const struct cache_pkg *pkgs, size_t n,
		    const char *hw, const char *component, const char *to,
		    unsigned int listen_pct, struct sched_bgroup *groups,
		    size_t ngroups);

/* ------------------------------------------------------------------ */
/* sched_policy.c: the deployment's policy                              */

enum sched_group {
	SCHED_GROUP_ALL = 0,
	SCHED_GROUP_TEST,		/* only nodes carrying test_tag */
	SCHED_GROUP_PRODUCTION		/* only nodes without it */
};

struct sched_target {
	size_t		 nhw;		/* deployment.target.hw; 0 = any */
	char		 hw[CACHE_HW_MAX][CACHE_NAME_MAX + 1];
	size_t		 nphw;		/* policy.target.hw; also required */
	char		 phw[CACHE_HW_MAX][CACHE_NAME_MAX + 1];
	size_t		 ntags;		/* node must carry every one */
	char		 tags[2 * SCHED_MAX_TAGS][CACHE_NAME_MAX + 1];
	size_t		 nxtags;	/* node must carry none */
	char		 xtags[SCHED_MAX_TAGS][CACHE_NAME_MAX + 1];
	size_t		 ntransports;	/* 0 = any */
	char		 transports[SCHED_MAX_TRANSPORTS]
			    [SCHED_TRANSPORT_MAX + 1];
	size_t		 ncomp;		/* node runs component in range */
	struct {
		char			 component[CACHE_NAME_MAX + 1];
		struct sched_range	 range;
	}		 comp[UP_MAX_COMPONENTS];
	enum sched_group group;
	char		 test_tag[CACHE_NAME_MAX + 1];	/* default "test" */
};

enum sched_sel {
	SCHED_SEL_NODES = 0,		/* explicit node ids (canaries) */
	SCHED_SEL_TAGS,			/* nodes carrying any of tags */
	SCHED_SEL_COUNT,		/* the next `amount' nodes */
	SCHED_SEL_PERCENT,		/* up to `amount' % of all (cumul.) */
	SCHED_SEL_REST			/* whatever is left */
};

struct sched_stage {
	char		 name[SCHED_NAME_MAX + 1];
	enum sched_sel	 sel;
	uint32_t	 amount;
	size_t		 nnodes;
	uint64_t	 nodes[SCHED_MAX_STAGE_NODES];
	size_t		 ntags;
	char		 tags[SCHED_MAX_TAGS][CACHE_NAME_MAX + 1];
	uint32_t	 success_pct;	/* advance when succeeded >= this % */
	uint32_t	 failure_pct;	/* halt when failed > this % */
	uint32_t	 soak_s;	/* wait after the threshold is met */
	int		 approve;	/* needs upctl approve before start */
};

/*
 * A maintenance window, local time: open on the days in `days' (bit 0 =
 * Monday ... bit 6 = Sunday) from start_min to end_min (minutes since
 * midnight, end_min may be 1440).  end_min <= start_min crosses
 * midnight: the window opens on a listed day and closes the next day.
 */
struct sched_window {
	uint8_t		 days;
	uint16_t	 start_min;
	uint16_t	 end_min;
};

/*
 * The way a package reaches nodes on a link whose module distributes
 * packages itself (TP_CAP_OFFLOAD: a PLC carrier module, AFN 15H):
 * as the transport instance says (its `offload` option and [fanout]
 * offload), always by the module, or never (UP carries it).
 */
enum sched_offload {
	SCHED_OFFLOAD_AUTO = 0,
	SCHED_OFFLOAD_MODULE,
	SCHED_OFFLOAD_UP
};

enum sched_mode {
	SCHED_MODE_INSTALL_NOW = 0,	/* download, verify, activate */
	SCHED_MODE_DOWNLOAD_ONLY,	/* stop at verified (held) */
	SCHED_MODE_INSTALL_AT		/* activate at install_at */
};

/* Component constraint: `component' at a version in `when' requires
 * `requires' at a version in `range'. */
struct sched_require {
	char		 component[CACHE_NAME_MAX + 1];
	struct sched_range when;
	char		 requires[CACHE_NAME_MAX + 1];
	struct sched_range range;
};

struct sched_atomic {
	char		 name[SCHED_NAME_MAX + 1];
	size_t		 ncomp;		/* 0 = every component */
	char		 comp[UP_MAX_COMPONENTS][CACHE_NAME_MAX + 1];
	size_t		 nnodes;	/* 0 = one group per node */
	uint64_t	 nodes[SCHED_MAX_ATOMIC_NODES];
};

struct sched_policy {
	char		 deployment[CACHE_ID_MAX + 1];
	struct sched_target target;
	int		 approve;	/* campaign waits for approve */
	size_t		 nstages;	/* 0: one stage with every node */
	struct sched_stage stages[SCHED_MAX_STAGES];
	int64_t		 start;		/* unix s, 0 = at once */
	int64_t		 deadline;	/* unix s, 0 = none */
	size_t		 nwindows;	/* 0 = always open */
	struct sched_window windows[SCHED_MAX_WINDOWS];
	int		 has_utc_offset;	/* else the clock's zone */
	int32_t		 utc_offset_s;
	uint8_t		 min_battery;	/* 0 = no gate */
	int		 has_min_rssi, has_min_snr;
	int16_t		 min_rssi_dbm;
	int8_t		 min_snr_db;
	uint32_t	 retries;	/* attempts after the first */
	uint32_t	 retry_interval_s;
	uint32_t	 retry_max_s;
	uint32_t	 backoff;	/* factor per attempt, >= 1 */
	uint32_t	 concurrency;	/* any transport; 0 = no limit */
	size_t		 nconc;
	struct {
		char		 transport[SCHED_TRANSPORT_MAX + 1];
		uint32_t	 max;
	}		 conc[SCHED_MAX_CONC];
	enum sched_mode	 mode;
	int64_t		 install_at;	/* SCHED_MODE_INSTALL_AT */
	uint32_t	 node_timeout_s;	/* watchdog per attempt */
	uint32_t	 listen_pct;	/* sched_broadcast_choose() */
	uint32_t	 step_cost;	/* sched_route() bytes per step */
	enum sched_offload offload;	/* the way, on a link with a module */
	size_t		 nrequires;
	struct sched_require requires[SCHED_MAX_REQUIRES];
	size_t		 norder;	/* components updated in this order */
	char		 order[UP_MAX_COMPONENTS][CACHE_NAME_MAX + 1];
	size_t		 natomic;
	struct sched_atomic atomic[SCHED_MAX_ATOMIC];
	char		*json;		/* the policy as given, compact */
	char		*target_json;	/* deployment target {hw, tags} */
};

/*
 * Parses a deployment's policy (docs/campaigns.md, "Policy").  `id' is
 * the deployment id; hw[nhw] and tags[ntags] are the deployment's target
 * lists (uplink's struct uplink_deployment has these exact types), or
 * NULL/0.  `json' is the policy object (NULL or "" = {}).  Unknown
 * members are errors.  Every error names the item: "deployment 'd1':
 * policy.windows[1]: '25:00-03:00': hour out of range".  Fills `p' (free
 * with sched_policy_clear) and returns 0, or returns -1 with cause and
 * leaves `p' empty.
 */
int		 sched_policy_parse(const char *id,
		    const char (*hw)[CACHE_NAME_MAX + 1], size_t nhw,
		    const char (*tags)[CACHE_NAME_MAX + 1], size_t ntags,
		    const char *json, struct sched_policy *p, char **cause);
void		 sched_policy_clear(struct sched_policy *);
/* Deep copy (the JSON strings too); 0 or -1. */
int		 sched_policy_copy(struct sched_policy *dst,
		    const struct sched_policy *src);

/* Durations "90", "30s", "10m", "2h", "1d": seconds, or -1 with cause. */
int		 sched_parse_duration(const char *, uint32_t *, char **cause);
/* RFC 3339 ("2026-11-22T01:00:00Z", "...+02:00") to unix s; 0 or -1. */
int		 sched_parse_time(const char *, int64_t *, char **cause);
/* Unix s to "2026-11-22T01:00:00Z" into buf[21]. */
void		 sched_format_time(int64_t, char buf[21]);
/* "[DAYS ]HH:MM-HH:MM", DAYS = "mon-fri,sun"; 0 or -1 with cause. */
int		 sched_window_parse(const char *, struct sched_window *,
		    char **cause);

/* ------------------------------------------------------------------ */
/* sched_window.c: time decisions (pure functions of `now')              */

/*
 * The injected clock.  now() is unix seconds; utc_offset() is the local
 * zone's offset from UTC in seconds at time t (windows are local time).
 * sched_clock_system reads time() and localtime_r(); tests pass fakes.
 */
struct sched_clock {
	int64_t		(*now)(void *arg);
	int32_t		(*utc_offset)(void *arg, int64_t t);
	void		*arg;
};
extern const struct sched_clock sched_clock_system;

/*
 * True if a window of `p' is open at `now' (always when p has none).
 * When closed, *next_open (if not NULL) is the next opening time (or
 * INT64_MAX if no window ever opens).  offset is the local offset (the
 * policy's own utc_offset wins when it has one).
 */
bool		 sched_window_open(const struct sched_policy *p, int64_t now,
		    int32_t offset, int64_t *next_open);

/* Delay before retry number `tries' (1 = the first retry): interval *
 * backoff^(tries-1), capped at retry_max_s. */
uint32_t	 sched_retry_delay(const struct sched_policy *, uint32_t tries);

/*
 * The battery/link gate: 1 if a node's last report admits an offer, 0 if
 * not, with why[] ("battery 12% < 30%").  Unknown values pass (mains
 * powered nodes report no battery, wired links no RSSI).
 */
int		 sched_gate_ok(const struct sched_policy *,
		    const struct sched_node *, char *why, size_t len);

/* ------------------------------------------------------------------ */
/* sched_plan.c: campaigns, targets, the dependency graph               */

/* True if the node is a target of the policy (hw, tags, transport,
 * component ranges, test/production group). */
bool		 sched_target_match(const struct sched_target *,
		    const struct sched_node *);

enum sched_cstate {
	SCHED_C_RUNNING = 0,
	SCHED_C_APPROVAL,	/* waits for upctl approve */
	SCHED_C_PAUSED,
	SCHED_C_HALTED,		/* a stage failed; see reason */
	SCHED_C_DONE,		/* every item final */
	SCHED_C_CANCELLED
};

enum sched_sstate {
	SCHED_S_PENDING = 0,
	SCHED_S_ACTIVE,
	SCHED_S_SOAKING,	/* threshold met; soak time running */
	SCHED_S_PASSED,
	SCHED_S_HALTED
};

enum sched_istate {
	SCHED_I_PENDING = 0,	/* not offered yet; `wait' says why */
	SCHED_I_RETRY,		/* an attempt failed; again at next_try */
	SCHED_I_ACTIVE,		/* offered; session under way */
	SCHED_I_HELD,		/* verified; activation held */
	SCHED_I_ACTIVATING,	/* told to activate; awaiting result */
	/* final states */
	SCHED_I_SUCCEEDED,	/* runs `to' and confirmed */
	SCHED_I_DOWNLOADED,	/* download-only: verified, held */
	SCHED_I_FAILED,
	SCHED_I_SKIPPED,
	SCHED_I_CANCELLED,
	SCHED_I_EXPIRED
};
#define SCHED_I_FINAL(s)	((s) >= SCHED_I_SUCCEEDED)

/* One node of a campaign: its facts and its stage. */
struct sched_member {
	struct sched_node node;
	int		 stage;
	int		 dirty;		/* changed since sched_db_save */
};

/* Where a node sits: every node seen, targets or not (a relay that is
 * not updated still orders the nodes behind it).  Sorted by node_id. */
struct sched_topo {
	uint64_t	 node_id;
	uint64_t	 parent;
	enum sched_role	 role;
};

/* One (node, component) of a campaign. */
struct sched_item {
	uint64_t	 node_id;
	size_t		 member;	/* index in members[] */
	char		 component[CACHE_NAME_MAX + 1];
	char		 from[CACHE_VER_MAX + 1];	/* at plan time */
	char		 to[CACHE_VER_MAX + 1];
	int		 nsteps;
	char		 steps[SCHED_MAX_STEPS][CACHE_ID_MAX + 1]; /* pkg ids */
	int		 step;		/* next / current step */
	uint64_t	 bytes;		/* planned bytes of the route */
	int		 atomic;	/* policy.atomic[] index, -1 none; a
					   group without nodes is per node */
	enum sched_istate state;
	int		 result;	/* last enum up_result */
	char		 reason[SCHED_REASON_MAX + 1];	/* final states */
	char		 wait[SCHED_REASON_MAX + 1];	/* why it waits */
	uint32_t	 tries;		/* attempts started */
	int64_t		 next_try;	/* SCHED_I_RETRY */
	int64_t		 deadline;	/* watchdog of the current attempt */
	int64_t		 started, finished;	/* unix s, 0 unset */
	uint64_t	 bytes_sent;
	/* Precise times of the attempts (unix ms, 0 unset), from the
	 * caller (sched_item_attempt); started/finished are seconds. */
	int64_t		 started_ms, finished_ms;
	int		 fell_back;	/* a failed delta step was replaced by
					   the full image (delta fallback) */
	/*
	 * Reports upstream (docs/campaigns.md, "Reports"): a final state
	 * whose truth may still change is provisional (a lost connection,
	 * cancelled or expired while activating: the node may yet report);
	 * `reported' is what went upstream for the item (SCHED_REP_*) and
	 * rep_mark the (tries, state) that record was about.
	 */
	int		 provisional;
	int		 reported;
	uint32_t	 rep_mark;
	int		 dirty;		/* changed since sched_db_save */
};

/* What went upstream for an item (sched_item.reported). */
enum sched_rep {
	SCHED_REP_NONE = 0,
	SCHED_REP_PROVISIONAL,	/* a record a later one may replace */
	SCHED_REP_FINAL		/* the last record: nothing follows it */
};

enum sched_edge_kind {
	SCHED_E_REQUIRE = 0,	/* `to' waits for `from' to succeed */
	SCHED_E_ORDER		/* `to' waits for `from' to be final */
};

struct sched_edge {
	size_t		 from, to;	/* item indexes */
	enum sched_edge_kind kind;
	char		 why[48];	/* "requires", "coordinator", ... */
};

struct sched_stage_rt {
	enum sched_sstate state;
	int64_t		 started, met_at, finished;
	int		 overridden;	/* resumed after a halt */
};

struct sched_campaign {
	char		 id[CACHE_ID_MAX + 1];
	struct sched_policy policy;
	size_t		 npkgs;
	struct cache_pkg pkgs[SCHED_MAX_PKGS];
	enum sched_cstate state;
	enum sched_cstate paused_from;	/* state before pause */
	char		 reason[SCHED_REASON_MAX + 1];	/* halt/done why */
	int		 stage;		/* current stage */
	size_t		 nstages;	/* policy stages (+1 implicit rest) */
	struct sched_stage stages[SCHED_MAX_STAGES + 1];
	struct sched_stage_rt srt[SCHED_MAX_STAGES + 1];
	int64_t		 created, started, finished;
	int64_t		 next_wake;	/* earliest time a tick matters */
	/*
	 * The daemon's: how long after a final state that is provisional
	 * (a write-off; no retry left) its record becomes final if the
	 * campaign still runs (docs/manifest.md, "Final and provisional
	 * records").  Not persisted; SCHED_FINAL_AFTER_S until set.
	 */
	int64_t		 final_after_s;
	size_t		 nmembers, members_cap;
	struct sched_member *members;
	size_t		 ntopo, topo_cap;
	struct sched_topo *topo;
	int		 topo_dirty;
	size_t		 nitems, items_cap;
	struct sched_item *items;
	size_t		 nedges, edges_cap;
	struct sched_edge *edges;	/* derived; rebuilt on load */
	size_t		*edge_in;	/* edges into item i: edges[edge_in[i]
					   .. edge_in[i + 1]) */
	int		 dirty;		/* campaign/stage rows changed */
	int		 members_dirty;	/* some member is dirty */
	int		 saved;		/* rows exist in the database */
};

/*
 * Plans a campaign: selects the targets among nodes[n] (borrowed), picks
 * for each target and component the newest version pkgs[] offer and the
 * cheapest route to it (broadcast media grouped by base version), puts
 * nodes into stages, and builds the dependency graph (component
 * constraints, topology rules, atomic groups).  A cycle, an unsatisfiable
 * constraint or a stage that names an unknown node fails the whole plan
 * with a cause naming the items; nothing is created then.  `policy' is
 * copied.  Returns an owned campaign (free with sched_campaign_free).  A
 * plan with no items is valid (no target needs an update yet): the
 * campaign runs, waiting for targets, and is done only once it has
 * items and all of them are final.
 */
struct sched_campaign *sched_campaign_plan(const char *id,
		    const struct sched_policy *policy,
		    const struct cache_pkg *pkgs, size_t npkgs,
		    const struct sched_node *nodes, size_t n, int64_t now,
		    char **cause);
void		 sched_campaign_free(struct sched_campaign *);

/*
 * A node announced (or its registry record changed).  A member gets its
 * facts (battery, link, versions, transport) updated; a new node that
 * the target selects and that needs an update joins the right stage
 * (its explicit stage, else the first stage not yet passed).  A finished
 * (done) or cancelled campaign never takes a new node: it never reopens.
 * If its constraints cannot be met or it would close a cycle, its items
 * are added as skipped with the reason.  Returns 1 if the node joined, 0
 * if nothing changed membership, -1 on allocation failure.
 */
int		 sched_node_seen(struct sched_campaign *,
		    const struct sched_node *, int64_t now);

/* Member of a node, or NULL. */
struct sched_member *sched_member_get(struct sched_campaign *, uint64_t node);
/* Item of (node, component), or NULL. */
struct sched_item *sched_item_find(struct sched_campaign *, uint64_t node,
		    const char *component);
/* The package of the item's current step (borrowed), or NULL. */
const struct cache_pkg *sched_item_pkg(const struct sched_campaign *,
		    const struct sched_item *);

/* ------------------------------------------------------------------ */
/* sched_names.c: the names a policy uses, against what the gateway knows */

/*
 * What a deployment's names may refer to, all borrowed: the deployment's
 * packages and, on a gateway (`gateway' set), every node of the registry
 * (targets or not) and the names of the transport instances it runs.  A
 * publisher (upmanifest) knows only the packages: `gateway' 0, and the
 * checks that need the rest are left to the gateway.
 */
struct sched_known {
	const struct cache_pkg	*pkgs;
	size_t			 npkgs;
	int			 gateway;
	const struct sched_node	*nodes;
	size_t			 nnodes;
	const char *const	*transports;
	size_t			 ntransports;
};

/*
 * A name nothing attests is an error (docs/campaigns.md, "Names a target
 * uses"): a target hardware model that no package of the deployment is
 * for (and, where a package is for any model, that no node is); a target
 * or concurrency transport the gateway does not run; a target or stage
 * tag no node carries; a target component that no package and no node
 * has; an `order' or atomic component no package brings.  Returns 0, or
 * -1 with a cause naming the item ("deployment 'd1': policy.order[1]:
 * 'modme': no package of the deployment is that component").
 */
int		 sched_policy_check(const struct sched_policy *,
		    const struct sched_known *, char **cause);
/*
 * Known names that match no node yet, and a target that matches no node
 * at all: a JSON array of strings, empty when all is well (new
 * reference).  Computed from `k' each time: a warning goes away when a
 * node that matches appears.
 */
json_t		*sched_policy_warnings(const struct sched_policy *,
		    const struct sched_known *);

/* ------------------------------------------------------------------ */
/* sched_run.c: runtime decisions                                       */

enum sched_dkind {
	SCHED_D_OFFER = 0,	/* offer pkg to node; hold = stop at VERIFIED */
	SCHED_D_ACTIVATE,	/* a held node may activate now */
	SCHED_D_ABORT,		/* stop the node's session (code) */
	SCHED_D_EVENT		/* campaign event for the report stream */
};

enum sched_event {
	SCHED_EV_STARTED = 0, SCHED_EV_STAGE_STARTED, SCHED_EV_STAGE_PASSED,
	SCHED_EV_HALTED, SCHED_EV_DONE, SCHED_EV_EXPIRED, SCHED_EV_CANCELLED,
	SCHED_EV_APPROVAL, SCHED_EV_PAUSED, SCHED_EV_RESUMED
};

struct sched_decision {
	enum sched_dkind kind;
	size_t		 item;		/* index, not for EVENT */
	uint64_t	 node_id;
	char		 component[CACHE_NAME_MAX + 1];
	char		 pkg[CACHE_ID_MAX + 1];	/* OFFER */
	int		 hold;		/* OFFER: do not activate */
	int		 code;		/* ABORT: enum up_result */
	enum sched_event event;		/* EVENT */
	int		 stage;		/* EVENT: stage index or -1 */
	char		 text[SCHED_REASON_MAX + 1];
};

/* A growable list of decisions; zero-initialise, sched_out_free after. */
struct sched_out {
	size_t		 n, cap;
	struct sched_decision *d;
};
void		 sched_out_reset(struct sched_out *);
void		 sched_out_free(struct sched_out *);

/*
 * The periodic decision: deadline, watchdog, stage advance/halt, then
 * for every pending item in order of the graph: stage started, start
 * time, dependencies, window, gates, retry back-off, concurrency; what
 * passes is offered (state ACTIVE).  Held items are activated when their
 * time or their atomic group is ready.  Appends to `out'; returns the
 * number of decisions appended, or -1 on allocation failure.  Sets
 * c->next_wake.  Call from the housekeeping timer, after a result and
 * after an action.
 */
int		 sched_tick(struct sched_campaign *, const struct sched_clock *,
		    struct sched_out *out);

/*
 * A node holds the verified image of its current step.  Download-only:
 * the item is final (DOWNLOADED); install-at and atomic groups: HELD
 * until sched_tick activates.  0, or -1 if no such active item.
 */
int		 sched_item_verified(struct sched_campaign *, uint64_t node,
		    const char *component, int64_t now);

/*
 * A node's final result for its current step (enum up_result; success
 * means it runs the new version and confirmed it, UP_R_ALREADY counts as
 * success).  A chain goes on with its next step; a retryable failure
 * (connection lost, no memory, low battery, aborted, integrity, busy)
 * waits for a retry with back-off while tries remain; other failures are
 * final and their dependants are skipped at the next tick.  A delta step
 * that fails on the node (integrity, unsupported, base mismatch, apply
 * failed or out of memory) is not retried as such: the item falls back
 * to the full image of its target when the campaign has one, at once,
 * and the reason says why.  A result for
 * an item already final is recorded only if it changes the truth (a late
 * success after a cancel or a watchdog write-off).  Returns 0, or -1 if
 * the node/component is not an item.
 */
int		 sched_item_result(struct sched_campaign *, uint64_t node,
		    const char *component, int result, uint64_t bytes_sent,
		    int64_t now);

/*
 * The caller decided not to carry out an item's OFFER after all (the
 * node runs a newer version by now; a newer campaign superseded a held
 * image): the open item becomes SKIPPED with `result' and `reason'.
 * Returns 0, or -1 if the node/component is not an open item.
 */
int		 sched_item_skip(struct sched_campaign *, uint64_t node,
		    const char *component, int result, int64_t now,
		    const char *reason);

/*
 * The precise times (unix ms) of one attempt, as the caller measured
 * them: the item's duration_ms spans its first attempt's start to its
 * last attempt's end.  Without them it is (finished - started) seconds.
 */
void		 sched_item_attempt(struct sched_campaign *, uint64_t node,
		    const char *component, int64_t started_ms,
		    int64_t finished_ms);

/*
 * Reports upstream.  sched_item_report_due says which record an item
 * owes at `now': SCHED_REP_FINAL (a final state, never sent as final),
 * SCHED_REP_PROVISIONAL (a provisional final state not sent yet), or
 * SCHED_REP_NONE.  Nothing is ever due after a final record: a truth
 * may follow only a provisional one.  A provisional state's record is
 * final once the campaign can no longer change it: the campaign is done
 * or cancelled, or final_after_s passed since it ended (the tick wakes
 * for it).  sched_item_reported records what the caller sent (also for
 * the records of attempts, which are provisional while the item is
 * open).
 */
#define SCHED_FINAL_AFTER_S	86400
int		 sched_item_report_due(const struct sched_campaign *,
		    size_t item, int64_t now);
void		 sched_item_reported(struct sched_campaign *, size_t item,
		    int level);
/* True if the item's final record is due or went (not provisional). */
bool		 sched_item_final_record(const struct sched_item *);
/*
 * True while ticks matter: the campaign is not done, or it was
 * cancelled with items still open (a plain cancel lets an activating
 * node finish; the watchdog ends it if it never reports).
 */
bool		 sched_campaign_live(const struct sched_campaign *);

enum sched_action {
	SCHED_A_APPROVE = 0, SCHED_A_PAUSE, SCHED_A_RESUME, SCHED_A_CANCEL,
	SCHED_A_FORCE_CANCEL
};
/* "approve" ... "force-cancel" to the enum; -1 if unknown. */
int		 sched_action_parse(const char *);

/*
 * upctl: approve (a campaign or stage waiting for approval), pause
 * (offer nothing new), resume (a paused or halted campaign; a halted
 * stage is overridden), cancel (pending items cancelled, sessions not yet
 * activating aborted), force-cancel (every non-final item cancelled and
 * aborted, activating ones too).  Appends ABORT and EVENT decisions.
 * An action that does not apply is an error with cause ("campaign '7' is
 * done: cannot pause") and changes nothing.
 */
int		 sched_campaign_action(struct sched_campaign *,
		    enum sched_action, int64_t now, struct sched_out *out,
		    char **cause);

/* Per-stage node counts (a node counts once, by its items' states). */
struct sched_counts {
	unsigned int	 nodes, pending, active, succeeded, failed, skipped,
			 cancelled, expired;
	unsigned int	 success_pct;	/* succeeded * 100 / nodes */
	unsigned int	 failure_pct;	/* failed * 100 / nodes */
};
void		 sched_stage_counts(const struct sched_campaign *, int stage,
		    struct sched_counts *);

const char	*sched_cstate_str(enum sched_cstate);
const char	*sched_sstate_str(enum sched_sstate);
const char	*sched_istate_str(enum sched_istate);
const char	*sched_event_str(enum sched_event);

/* ------------------------------------------------------------------ */
/* sched_db.c: persistence (tables sched_*, migrations "scheduler")     */

struct sched_db;

/*
 * Runs the scheduler's migrations on `db' (borrowed; the daemon keeps a
 * write transaction open and commits on its timer: nothing here BEGINs or
 * COMMITs; multi-row writes go inside a SAVEPOINT) and prepares the
 * statements.  Returns an owned handle or NULL with cause.
 */
struct sched_db	*sched_db_open(sqlite3 *db, char **cause);
void		 sched_db_free(struct sched_db *);

/*
 * Writes what changed since the last save (everything on the first
 * save) inside one SAVEPOINT: all of it or none.  Call after every tick
 * that returned decisions, every result and every action; the caller
 * commits (at once after a result).  0 or -1 with cause.
 */
int		 sched_db_save(struct sched_db *, struct sched_campaign *,
		    char **cause);
/* Loads one campaign (NULL with cause if unknown or unreadable). */
struct sched_campaign *sched_db_load(struct sched_db *, const char *id,
		    char **cause);
/* Ids of every campaign not done or cancelled, for the restart; calls fn
 * for each.  0 or -1. */
int		 sched_db_foreach_active(struct sched_db *,
		    void (*fn)(void *, const char *id), void *arg);
/* Removes a campaign's rows.  0 or -1. */
int		 sched_db_delete(struct sched_db *, const char *id,
		    char **cause);

/* ------------------------------------------------------------------ */
/* sched_report.c: views, exports, report records                       */

/*
 * The whole campaign: {id, deployment, state, reason, stage, created,
 * started, finished, stages:[{name, state, nodes, pending, active,
 * succeeded, failed, skipped, cancelled, expired, success_rate}],
 * items:[record...]}.  New reference.
 */
json_t		*sched_report_json(const struct sched_campaign *);
/*
 * One item as a report record: {type:"result", node, campaign,
 * deployment, component, from, to, path ("full"/"delta"/"chain"),
 * packages, stage, state, result, result_str, reason, bytes,
 * bytes_sent, retries, duration_ms}.  New reference.
 */
json_t		*sched_item_json(const struct sched_campaign *, size_t item);
/* An EVENT decision as {type:"campaign", campaign, deployment, event,
 * stage, state, reason}.  New reference. */
json_t		*sched_event_json(const struct sched_campaign *,
		    const struct sched_decision *);
/*
 * CSV for `upctl campaign <id> export --csv' (RFC 4180: CRLF, quoted
 * fields when needed): header then one line per item.  Malloc'd string
 * (caller frees) or NULL.
 */
char		*sched_report_csv(const struct sched_campaign *);

#endif /* SCHED_H */
