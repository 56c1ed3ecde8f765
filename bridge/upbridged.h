/*
 * upbridged.h: the daemon's own header (bridge/).
 *
 * bridge/ wires up/, cache/, transports/, scheduler/ and uplink/ together
 * on one libevent event_base created in main() and passed explicitly.
 * Prototypes are grouped by the file that defines them.
 *
 * Conventions: 0/-1 (or NULL) and `char **cause' (caller frees) where a
 * person reads the reason; fatal() only at start-up or for a broken
 * invariant.
 */
#ifndef UPBRIDGED_H
#define UPBRIDGED_H

#include <sys/types.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>
#include <sqlite3.h>

#include "up.h"
#include "cache.h"
#include "transport.h"
#include "sched.h"
#include "uplink.h"

struct event_base;

#define UB_VERSION		"0.1.0"
#define UB_CONF_DEFAULT		"/etc/upbridge/upbridged.conf"

/* ------------------------------------------------------------------ */
/* log.c: the OpenBSD log API                                          */

/* debug != 0: log to stderr; else syslog.  verbose: 0 info, 1 debug. */
void	 log_init(int debug, int facility);
void	 log_setverbose(int);
int	 log_getverbose(void);
void	 log_procinit(const char *);
void	 log_warn(const char *, ...) __attribute__((__format__(printf, 1, 2)));
void	 log_warnx(const char *, ...) __attribute__((__format__(printf, 1, 2)));
void	 log_info(const char *, ...) __attribute__((__format__(printf, 1, 2)));
void	 log_debug(const char *, ...) __attribute__((__format__(printf, 1, 2)));
void	 fatal(const char *, ...) __attribute__((__format__(printf, 1, 2)))
	    __attribute__((__noreturn__));
void	 fatalx(const char *, ...) __attribute__((__format__(printf, 1, 2)))
	    __attribute__((__noreturn__));
/* The up_log_fn that routes lower folders' logging here. */
void	 log_up_hook(int, const char *, va_list);

/* ------------------------------------------------------------------ */
/* xmalloc.c: allocation that cannot fail (fatal on OOM), tmux-style   */

void	*xmalloc(size_t);
void	*xcalloc(size_t, size_t);
void	*xreallocarray(void *, size_t, size_t);
char	*xstrdup(const char *);
int	 xasprintf(char **, const char *, ...)
	    __attribute__((__format__(printf, 2, 3)));
int	 xvasprintf(char **, const char *, va_list);

/* ------------------------------------------------------------------ */
/* config.c: INI config through one declarative option table           */

#define UB_MAX_TRANSPORTS	16

struct ub_transport_conf {
	char		*name;		/* section "transport.NAME" */
	char		*type;		/* plugin name */
	const struct tp_ops *ops;
	struct tp_conf	 conf;		/* kv owned by this struct */
	struct tp_kv	*kv;
	size_t		 nkv;
	/*
	 * The engine's own keys of the section (not the plugin's):
	 * node_silence_s, how long a silent node is waited for before it
	 * is written off; 0 = derived from the link (docs/fanout.md).
	 */
	unsigned int	 node_silence_s;
	/*
	 * [fanout] keys this instance overrides (its link's profile,
	 * docs/engine.md "Link shapes"), checked, owned; the plugin never
	 * sees them.  config_link() applies them.
	 */
	struct tp_kv	*link_kv;
	size_t		 nlink;
};

struct ub_config {
	/* [gateway] */
	char		*gateway_id;
	char		*state_dir;	/* database and cache live here */
	char		*control_socket;
	char		*control_group;	/* NULL: the daemon's group */
	int		 log_verbose;	/* 0 info, 1 debug */
	uint64_t	 cache_quota;	/* bytes, 0 = none */
	unsigned int	 commit_interval_ms;
	int		 db_synchronous;	/* 1 NORMAL, 2 FULL */

	/* [cloud] */
	char		*cloud_url;
	char		*cloud_ca;
	char		*cloud_key;	/* PEM Ed25519 public key */
	unsigned int	 poll_interval_s;
	unsigned int	 report_interval_s;
	unsigned int	 report_batch_max;
	uint32_t	 range_bytes;
	unsigned int	 http_timeout_s;

	/* [fanout] */
	unsigned int	 block_size;	/* upper bound; mtu may lower it */
	unsigned int	 rate_pct;	/* of the transport's bitrate */
	unsigned int	 offer_window_ms;
	unsigned int	 offer_repeats;
	unsigned int	 status_window_ms;
	unsigned int	 max_rounds;	/* repair rounds before giving up */
	unsigned int	 activate_delay_ms;
	unsigned int	 result_timeout_s;	/* after ACTIVATE */
	unsigned int	 final_after_s;	/* then a final record */
	unsigned int	 discover_interval_s;
	unsigned int	 session_deadline_s;
	int		 fec;		/* TS004 parity repair: 1 = yes */
	unsigned int	 fec_k;		/* blocks per parity group */
	char		*fec_proactive;	/* "auto" or percent of fec_k */
	int		 xor_repair;	/* XOR repair frames: 1 = yes */
	unsigned int	 time_scale;	/* simulation: engine clock speed-up */
	unsigned int	 node_hash_kbs;	/* VERIFY's wait, 0: from the link */
	unsigned int	 unicast_slots;	/* members served alone at once */
	int		 poll_broadcast;	/* polled bus: first pass to all */
	unsigned int	 node_busy_s;	/* a node refusing as busy: kept */
	int		 offload;	/* module offload where offered */
	unsigned int	 offload_idle_s;	/* a silent module is given up */

	/* [transport.*] */
	size_t		 ntransports;
	struct ub_transport_conf transports[UB_MAX_TRANSPORTS];

	/* The options the file set, not defaults (config_given()). */
	uint64_t	 given;
};

/*
 * Reads and checks a config file.  Every error names file:line, the
 * section and the key.  Returns an owned config or NULL with cause.
 */
struct ub_config *config_load(const char *path, char **cause);
void	 config_free(struct ub_config *);
/*
 * Compares a new config with the running one: returns 0 if every
 * difference is reloadable, else -1 with a cause naming the first option
 * that needs a restart.
 */
int	 config_reloadable(const struct ub_config *old,
	    const struct ub_config *new, char **cause);
/* Writes the option table as help text (upbridged -h config). */
void	 config_print_help(FILE *);
/*
 * The config as transport tp sees it: *out is a copy of conf with the
 * [fanout] keys tp's section overrides applied (no allocation: the
 * copy shares conf's strings).  Returns 0, or -1 if one cannot apply.
 */
int	 config_link(const struct ub_config *, const struct ub_transport_conf *,
	    struct ub_config *out);
/* 1 if the file set [section] name, 0 if it is the default. */
int	 config_given(const struct ub_config *, const char *section,
	    const char *name);

/* ------------------------------------------------------------------ */
/* db.c: the one SQLite database                                       */

/*
 * Opens (creating) the database in WAL mode with a busy timeout, creates
 * the schema_version table and keeps one write transaction open: writes
 * are batched and committed every commit_interval_ms by the daemon's
 * housekeeping timer calling db_commit_now(), and at once by whoever must
 * not lose a write (after every per-node result).  synchronous: 1 NORMAL,
 * 2 FULL.  Returns the handle or NULL with cause.
 */
sqlite3	*db_open(const char *path, int synchronous, char **cause);
void	 db_close(sqlite3 *);		/* commits, checkpoints, closes */
int	 db_begin(sqlite3 *);		/* no-op if already in one */
int	 db_commit_now(sqlite3 *);	/* commit and begin again */
/*
 * A module's migrations: `steps' are SQL scripts; the schema_version row
 * of `component' says how many ran.  Refuses a database newer than the
 * code.  Returns 0 or -1 with cause.
 */
int	 db_migrate(sqlite3 *, const char *component, const char *const *steps,
	    int nsteps, char **cause);

/* ------------------------------------------------------------------ */
/* registry.c: the node registry (table nodes, node_components)        */

struct registry;

#define REGISTRY_MAX_TAGS	8	/* == SCHED_MAX_TAGS */

struct registry_node {
	uint64_t	 id;
	char		 hw[UP_NAME_MAX + 1];
	char		 transport[64];		/* instance name */
	struct tp_addr	 addr;
	char		 addr_text[TP_ADDR_TEXT_MAX];
	uint16_t	 max_frame;
	uint32_t	 free_kib;
	uint8_t		 battery;
	int16_t		 rssi_dbm;
	int8_t		 snr_db;
	uint8_t		 state;		/* last reported enum up_node_state */
	int64_t		 first_seen;	/* unix seconds */
	int64_t		 last_seen;
	size_t		 ncomp;
	struct up_component comp[UP_MAX_COMPONENTS];
	/* Issue 4: set by the technician (upctl node ID tag|topology). */
	size_t		 ntags;
	char		 tags[REGISTRY_MAX_TAGS][32];
	uint64_t	 parent;	/* node it routes through, 0 none */
	uint8_t		 level;		/* hops from the gateway */
	uint8_t		 role;		/* enum sched_role */
};

struct registry *registry_open(sqlite3 *, char **cause);
void	 registry_free(struct registry *);
/*
 * The daemon's loop: registry_get's records are released when the loop
 * turn that asked for them is over (without it, only when they run out).
 */
void	 registry_set_base(struct registry *, struct event_base *);
/*
 * Records an ANNOUNCE heard on `transport' from `addr'.  Returns 1 if the
 * node is new, 0 if known, -1 on error.
 */
int	 registry_announce(struct registry *, const struct up_announce *,
	    const char *transport, const struct tp_addr *,
	    const char *addr_text, int64_t now);
/* Borrowed pointer, valid until the next registry call; NULL if unknown. */
const struct registry_node *registry_get(struct registry *, uint64_t id);
int	 registry_set_version(struct registry *, uint64_t id,
	    const char *component, const char *version);
int	 registry_set_state(struct registry *, uint64_t id, uint8_t state);
/*
 * Adds (add = 1) or removes a tag of node `id', known or not yet (tags
 * are kept apart from what ANNOUNCE writes).  0, or -1 with cause for a
 * bad tag or too many tags.
 */
int	 registry_tag(struct registry *, uint64_t id, const char *tag,
	    int add, char **cause);
/* Sets where a node sits: parent (0 none), level, role (enum sched_role). */
int	 registry_set_topology(struct registry *, uint64_t id,
	    uint64_t parent, uint8_t level, uint8_t role, char **cause);
/* The node last heard on `transport' at `a', 0 if none (a scan). */
uint64_t registry_find_addr(struct registry *, const char *transport,
	    const struct tp_addr *);
size_t	 registry_count(struct registry *);
void	 registry_foreach(struct registry *,
	    void (*fn)(void *, const struct registry_node *), void *arg);
/* JSON views for the control socket (new references). */
json_t	*registry_node_json(const struct registry_node *);

/* ------------------------------------------------------------------ */
/* fanout.c, session.c, pacer.c: campaigns and UP sessions              */

struct fanout;

/*
 * The fan-out engine.  Owns the transport instances, the campaigns and
 * the UP sessions; paces every send from the transport's caps; persists
 * campaign and per-node state (tables campaigns, campaign_nodes); writes
 * per-node results to the uplink outbox and commits at once.
 */
struct fanout *fanout_new(struct event_base *, const struct ub_config *,
	    sqlite3 *, struct cache *, struct registry *, char **cause);
void	 fanout_free(struct fanout *);
/* Sets the uplink used for fetching and reports (borrowed). */
void	 fanout_set_uplink(struct fanout *, struct uplink *);
/* Opens and starts every configured transport instance. */
int	 fanout_open_transports(struct fanout *, char **cause);
/* Applies reloadable values of a new config (borrowed until next call). */
void	 fanout_reconfig(struct fanout *, const struct ub_config *);
/* uplink callbacks. */
void	 fanout_manifest(struct fanout *, const struct uplink_manifest *);
void	 fanout_package_ready(struct fanout *, const uint8_t *sha);
/* The verified prefix of a downloading package grew (cut-through). */
void	 fanout_package_progress(struct fanout *, const uint8_t *sha,
	    uint64_t verified);
void	 fanout_package_failed(struct fanout *, const uint8_t *sha,
	    const char *why);
/* Periodic work from the daemon's one housekeeping timer. */
void	 fanout_cron(struct fanout *);
/* Stops sessions cleanly (state persisted) before exit. */
void	 fanout_shutdown(struct fanout *);

/*
 * Views for the control socket, as new jansson references:
 *  status: gateway summary (transports with caps and stats, counts)
 *  campaigns: array of campaign summaries
 *  campaign(id): one campaign with per-node rows, or NULL if unknown
 *  progress: array of per-node progress rows of active campaigns
 *   {campaign, node, state, held, nblocks, pct, result, rate_bps}
 */
json_t	*fanout_status_json(struct fanout *);
json_t	*fanout_campaigns_json(struct fanout *);
json_t	*fanout_campaign_json(struct fanout *, const char *id);
json_t	*fanout_progress_json(struct fanout *);
/* Technician actions; -1 with cause if the campaign is unknown. */
int	 fanout_campaign_pause(struct fanout *, const char *id, char **cause);
int	 fanout_campaign_resume(struct fanout *, const char *id, char **cause);
int	 fanout_campaign_cancel(struct fanout *, const char *id, char **cause);
/*
 * Rollouts: scheduler campaigns, one per deployment with a policy or
 * tags (docs/campaigns.md, "Integration"); their id is the deployment
 * id.  rollout_json: sched_report_json plus the package campaigns, NULL
 * if unknown; rollout_csv: the CSV export (malloc'd) or NULL; action:
 * approve|pause|resume|cancel|force-cancel, 0 ok, -1 with cause, 1 if
 * `id' is no rollout.  rollouts_json: one summary per rollout.
 */
json_t	*fanout_rollout_json(struct fanout *, const char *id);
char	*fanout_rollout_csv(struct fanout *, const char *id);
int	 fanout_rollout_action(struct fanout *, const char *id,
	    const char *action, char **cause);
json_t	*fanout_rollouts_json(struct fanout *);
/* A node's registry record changed (tags, topology): tell the rollouts. */
void	 fanout_node_changed(struct fanout *, uint64_t id);
/*
 * The campaigns that hold node `id' now (memberships not final):
 * [{campaign, rollout, package, component, version, state, hold,
 * parked}], oldest first.  New reference.
 */
json_t	*fanout_node_campaigns_json(struct fanout *, uint64_t id);
/*
 * upctl node ID reset: a targeted ABORT for every session the gateway
 * has the node in, and every membership that is not final ends as
 * cancelled (aborted; a rollout retries it within its budget, an issue-2
 * campaign takes it back when it next shows up).  Returns the number of
 * memberships released, or -1 with cause (unknown node).
 */
int	 fanout_node_reset(struct fanout *, uint64_t id, char **cause);

/* ------------------------------------------------------------------ */
/* control.c + ctl_*.c: the control socket                             */

struct ub;
struct control;

/*
 * Listens on a UNIX stream socket (mode 0660, group from config), checks
 * SO_PEERCRED (root, the daemon's uid, or a member of its group), reads
 * JSON lines {"v":1,"id":N,"cmd":"...",...} and answers with records
 * {"id":N,...} ending with {"id":N,"end":true,"status":"ok"|"error",
 * "error":"..."}.  Requests over 64 KiB, bad JSON or unknown commands get
 * an error record and change nothing.
 */
struct control *control_new(struct event_base *, struct ub *,
	    const char *path, const char *group, char **cause);
void	 control_free(struct control *);
/* Pushes watch updates to subscribed clients (called from cron). */
void	 control_cron(struct control *);

/*
 * The command table (tmux's cmd_entry): one file per family, each
 * exporting a NULL-name terminated array that control.c searches.  The
 * wire format is in ctl_proto.h.
 */
struct ctl_client;

/* One request, lent to a command's exec for the call. */
struct ctl_req {
	struct control		*control;
	struct ctl_client	*client;
	struct ub		*ub;
	int64_t			 id;
	const char		*cmd;
	int			 argc;
	const char *const	*argv;
	uid_t			 uid;		/* of the peer, for logs */
};

enum ctl_ret {
	CTL_DONE,		/* answered: end record "ok" follows */
	CTL_ERROR,		/* end record "error" with *cause follows */
	CTL_WAIT		/* the command ends its reply later (watch) */
};

struct ctl_cmd {
	const char	*name;
	const char	*usage;		/* arguments, for error messages */
	int		 args_min;
	int		 args_max;
	int		 flags;
#define CTL_F_WRITE	0x1		/* changes state: logged with the peer */
	enum ctl_ret	 (*exec)(struct ctl_req *, char **cause);
};

/* ctl_status.c: status, refresh */
extern const struct ctl_cmd ctl_status_cmds[];
/* ctl_node.c: nodes, node */
extern const struct ctl_cmd ctl_node_cmds[];
/* ctl_campaign.c: campaigns, campaign, watch, unwatch */
extern const struct ctl_cmd ctl_campaign_cmds[];

/* A request line checked by control__parse (for control.c and fuzzing). */
#define CTL_ARGS_MAX	16
struct ctl_parsed {
	json_t			*rq;	/* owns argv; caller decrefs */
	const struct ctl_cmd	*cmd;
	int64_t			 id;	/* -1 if it could not be read */
	int			 argc;
	const char		*argv[CTL_ARGS_MAX];
};
int	 control__parse(const char *line, size_t len, struct ctl_parsed *,
	    char **why);

/* For commands: sends {"id":N,"data":DATA} (takes the reference). */
void	 control__reply(struct ctl_req *, json_t *data);
/*
 * watch / unwatch: subscribes the client to progress records (one now,
 * then about one per second) under the request's id, or ends the
 * subscription (its end record goes out first).  0, or -1 with cause.
 */
int	 control__watch(struct ctl_req *, char **cause);
int	 control__unwatch(struct ctl_req *, char **cause);

/* ------------------------------------------------------------------ */
/* upbridged.c: the daemon context                                     */

struct ub {
	struct event_base	*base;
	char			*conf_path;
	struct ub_config	*conf;
	sqlite3			*db;
	struct cache		*cache;
	struct cache_key	*cloud_key;
	struct registry		*registry;
	struct fanout		*fanout;
	struct uplink		*uplink;
	struct control		*control;
	int64_t			 started;	/* unix seconds */
};

#endif /* UPBRIDGED_H */
