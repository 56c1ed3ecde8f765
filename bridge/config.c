/*
 * config.c: upbridged.conf, an INI file read with inih into struct
 * ub_config through one declarative option table (tmux options-table.c,
 * Redis static_configs): section, name, type, where it is stored, bounds,
 * default, unit, help text and whether SIGHUP may change it.
 *
 * Sections: [gateway] [cloud] [fanout] and any number of
 * [transport.NAME] (type = PLUGIN plus the plugin's own options, checked
 * against the plugin's table in struct tp_ops).  Every error names
 * file:line, the section and the key; the first one wins and the whole
 * file is refused, so a bad file never changes a running daemon.
 *
 * inih does not give the handler line numbers in Debian's build, so the
 * file is fed through our own reader (ini_parse_stream), which counts
 * lines, refuses over-long ones and sees section headers as they come
 * (inih reports empty sections to nobody).
 */
#include <sys/types.h>

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ini.h>

#include "upbridged.h"
#include "ctl_proto.h"

/* inih's line buffer is INI_MAX_LINE; 3 bytes go to "\r\n\0". */
#define CONF_LINE_MAX		(INI_MAX_LINE - 3)
#define CONF_SUN_PATH_MAX	107	/* sizeof(sun_path) - 1 on Linux */
/* The engine's key of a [transport.NAME] section (ub_transport_conf). */
#define CONF_TP_SILENCE		"node_silence_s"

enum conf_type {
	CONF_STR,		/* char *, xstrdup'd */
	CONF_UINT,		/* unsigned int: number * scale */
	CONF_U32,		/* uint32_t: number * scale */
	CONF_U64,		/* uint64_t: number * scale */
	CONF_CHOICE		/* int: value of the matching choice */
};

struct conf_choice {
	const char	*name;
	int		 value;
};

struct conf_opt {
	const char	*section;
	const char	*name;
	enum conf_type	 type;
	size_t		 off;		/* in struct ub_config */
	long long	 min;		/* numbers: bounds as written */
	long long	 max;
	unsigned long long scale;	/* stored = written * scale */
	const char	*def;		/* as written; NULL = none */
	const struct conf_choice *choices;	/* CONF_CHOICE */
	int		 (*check)(const char *, char **); /* CONF_STR */
	const char	*unit;
	int		 flags;
#define CONF_RELOAD	0x1	/* SIGHUP applies it */
#define CONF_REQUIRED	0x2	/* no default: must be written */
#define CONF_LINK	0x4	/* [fanout]: a transport may override it */
	const char	*help;
};

static int	 conf_check_id(const char *, char **);
static int	 conf_check_abspath(const char *, char **);
static int	 conf_check_sockpath(const char *, char **);
static int	 conf_check_url(const char *, char **);
static int	 conf_check_group(const char *, char **);
static int	 conf_check_proactive(const char *, char **);

static const struct conf_choice conf_log_levels[] = {
	{ "info", 0 },
	{ "debug", 1 },
	{ NULL, 0 }
};

static const struct conf_choice conf_yes_no[] = {
	{ "yes", 1 },
	{ "no", 0 },
	{ NULL, 0 }
};

static const struct conf_choice conf_sync_modes[] = {
	{ "normal", 1 },
	{ "full", 2 },
	{ NULL, 0 }
};

#define OFF(f)	offsetof(struct ub_config, f)

static const struct conf_opt conf_table[] = {
	/* [gateway] */
	{ .section = "gateway", .name = "id", .type = CONF_STR,
	  .off = OFF(gateway_id), .check = conf_check_id,
	  .flags = CONF_REQUIRED,
	  .help = "This gateway's id in reports and upstream paths "
	  "([A-Za-z0-9._-], 1 to 64 characters)." },
	{ .section = "gateway", .name = "state_dir", .type = CONF_STR,
	  .off = OFF(state_dir), .check = conf_check_abspath,
	  .flags = CONF_REQUIRED,
	  .help = "Directory of the database (upbridge.db) and the package "
	  "cache (cache/); created if missing." },
	{ .section = "gateway", .name = "control_socket", .type = CONF_STR,
	  .off = OFF(control_socket), .def = CTL_SOCKET_DEFAULT,
	  .check = conf_check_sockpath,
	  .help = "UNIX socket of upctl (mode 0660)." },
	{ .section = "gateway", .name = "control_group", .type = CONF_STR,
	  .off = OFF(control_group), .check = conf_check_group,
	  .help = "Group that owns the control socket and may use it "
	  "(default: the daemon's group)." },
	{ .section = "gateway", .name = "log_level", .type = CONF_CHOICE,
	  .off = OFF(log_verbose), .def = "info", .choices = conf_log_levels,
	  .flags = CONF_RELOAD,
	  .help = "info, or debug for per-frame traces." },
	{ .section = "gateway", .name = "cache_quota_mb", .type = CONF_U64,
	  .off = OFF(cache_quota), .min = 0, .max = 16777216,
	  .scale = 1024 * 1024, .def = "1024", .unit = "MiB",
	  .help = "Most space the package cache may use; 0 means no quota." },
	{ .section = "gateway", .name = "commit_interval_ms", .type = CONF_UINT,
	  .off = OFF(commit_interval_ms), .min = 100, .max = 60000, .scale = 1,
	  .def = "1000", .unit = "ms", .flags = CONF_RELOAD,
	  .help = "How often batched database writes are committed: the "
	  "most progress a power cut can lose (results commit at once)." },
	{ .section = "gateway", .name = "db_synchronous", .type = CONF_CHOICE,
	  .off = OFF(db_synchronous), .def = "normal",
	  .choices = conf_sync_modes,
	  .help = "SQLite synchronous mode: normal (WAL-safe) or full." },

	/* [cloud] */
	{ .section = "cloud", .name = "url", .type = CONF_STR,
	  .off = OFF(cloud_url), .check = conf_check_url,
	  .flags = CONF_REQUIRED,
	  .help = "Base URL of the cloud store (https://host[:port]/path)." },
	{ .section = "cloud", .name = "ca_file", .type = CONF_STR,
	  .off = OFF(cloud_ca), .check = conf_check_abspath,
	  .flags = CONF_REQUIRED,
	  .help = "PEM CA bundle that verifies the cloud's certificate." },
	{ .section = "cloud", .name = "public_key", .type = CONF_STR,
	  .off = OFF(cloud_key), .check = conf_check_abspath,
	  .flags = CONF_REQUIRED,
	  .help = "The cloud's Ed25519 public key (PEM) that signs "
	  "manifests and packages." },
	{ .section = "cloud", .name = "poll_interval_s", .type = CONF_UINT,
	  .off = OFF(poll_interval_s), .min = 1, .max = 86400, .scale = 1,
	  .def = "60", .unit = "s",
	  .help = "How often the manifest is polled." },
	{ .section = "cloud", .name = "report_interval_s", .type = CONF_UINT,
	  .off = OFF(report_interval_s), .min = 1, .max = 3600, .scale = 1,
	  .def = "5", .unit = "s",
	  .help = "How often queued reports are sent upstream." },
	{ .section = "cloud", .name = "report_batch", .type = CONF_UINT,
	  .off = OFF(report_batch_max), .min = 1, .max = 10000, .scale = 1,
	  .def = "100", .unit = "records",
	  .help = "Most report records in one upload." },
	{ .section = "cloud", .name = "range_kib", .type = CONF_U32,
	  .off = OFF(range_bytes), .min = 4, .max = 65536, .scale = 1024,
	  .def = "1024", .unit = "KiB",
	  .help = "Bytes asked for per HTTP Range request of a download." },
	{ .section = "cloud", .name = "http_timeout_s", .type = CONF_UINT,
	  .off = OFF(http_timeout_s), .min = 1, .max = 600, .scale = 1,
	  .def = "30", .unit = "s",
	  .help = "Timeout of one HTTP request." },

	/* [fanout]: read by the engine through fanout_reconfig(). */
	{ .section = "fanout", .name = "block_size", .type = CONF_UINT,
	  .off = OFF(block_size), .min = 64, .max = 65000, .scale = 1,
	  .def = "1400", .unit = "bytes", .flags = CONF_RELOAD | CONF_LINK,
	  .help = "Largest block payload of a DATA frame; a transport's "
	  "MTU may lower it.  Applies to sessions opened later." },
	{ .section = "fanout", .name = "rate_pct", .type = CONF_UINT,
	  .off = OFF(rate_pct), .min = 1, .max = 100, .scale = 1,
	  .def = "90", .unit = "%", .flags = CONF_RELOAD | CONF_LINK,
	  .help = "Share of a transport's bit rate the fan-out may use." },
	{ .section = "fanout", .name = "offer_window_ms", .type = CONF_UINT,
	  .off = OFF(offer_window_ms), .min = 100, .max = 3600000, .scale = 1,
	  .def = "1500", .unit = "ms", .flags = CONF_RELOAD | CONF_LINK,
	  .help = "Time over which an OFFER is repeated and ACCEPTs are "
	  "collected.  A slow transport derives a longer one from its "
	  "airtime unless its own section sets it." },
	{ .section = "fanout", .name = "offer_repeats", .type = CONF_UINT,
	  .off = OFF(offer_repeats), .min = 1, .max = 20, .scale = 1,
	  .def = "3", .flags = CONF_RELOAD | CONF_LINK,
	  .help = "How many times an OFFER is sent in its window." },
	{ .section = "fanout", .name = "status_window_ms", .type = CONF_UINT,
	  .off = OFF(status_window_ms), .min = 10, .max = 3600000, .scale = 1,
	  .def = "300", .unit = "ms", .flags = CONF_RELOAD | CONF_LINK,
	  .help = "Window in which nodes answer a STATUS_REQ, each after a "
	  "random delay.  A slow transport derives its windows from its "
	  "airtime and the nodes asked unless its own section sets it." },
	{ .section = "fanout", .name = "max_rounds", .type = CONF_UINT,
	  .off = OFF(max_rounds), .min = 1, .max = 1000, .scale = 1,
	  .def = "30", .flags = CONF_RELOAD | CONF_LINK,
	  .help = "Repair rounds before the nodes still missing blocks are "
	  "given up for this session." },
	{ .section = "fanout", .name = "activate_delay_ms", .type = CONF_UINT,
	  .off = OFF(activate_delay_ms), .min = 0, .max = 600000, .scale = 1,
	  .def = "500", .unit = "ms", .flags = CONF_RELOAD | CONF_LINK,
	  .help = "Delay a node waits after ACTIVATE before it switches "
	  "slot and reboots." },
	{ .section = "fanout", .name = "result_timeout_s", .type = CONF_UINT,
	  .off = OFF(result_timeout_s), .min = 1, .max = 86400, .scale = 1,
	  .def = "60", .unit = "s", .flags = CONF_RELOAD | CONF_LINK,
	  .help = "How long after ACTIVATE a node has to report its "
	  "result." },
	{ .section = "fanout", .name = "final_after_s", .type = CONF_UINT,
	  .off = OFF(final_after_s), .min = 0, .max = 30 * 86400, .scale = 1,
	  .def = "86400", .unit = "s", .flags = CONF_RELOAD,
	  .help = "How long after a node was written off (conn_lost, "
	  "cancelled while activating) its item's provisional record "
	  "becomes final, when no campaign will take it again; 0: at once "
	  "(docs/manifest.md, \"Final and provisional records\")." },
	{ .section = "fanout", .name = "discover_interval_s", .type = CONF_UINT,
	  .off = OFF(discover_interval_s), .min = 1, .max = 86400, .scale = 1,
	  .def = "30", .unit = "s", .flags = CONF_RELOAD | CONF_LINK,
	  .help = "How often DISCOVER asks every node to announce itself.  "
	  "A duty-cycled or slow transport derives a longer one from its "
	  "budget or its time unless its own section sets it." },
	{ .section = "fanout", .name = "node_hash_kbs", .type = CONF_UINT,
	  .off = OFF(node_hash_kbs), .min = 0, .max = 10000000, .scale = 1,
	  .def = "0", .unit = "kB/s", .flags = CONF_RELOAD | CONF_LINK,
	  .help = "How fast nodes hash a package before they answer "
	  "VERIFY, which sets how long VERIFY waits; 0: 20000 on a LAN, "
	  "1000 on a small or half-duplex transport's microcontrollers." },
	{ .section = "fanout", .name = "session_deadline_s", .type = CONF_UINT,
	  .off = OFF(session_deadline_s), .min = 10, .max = 604800,
	  .scale = 1, .def = "3600", .unit = "s", .flags = CONF_RELOAD | CONF_LINK,
	  .help = "A session still unfinished after this long is closed; "
	  "its nodes are retried later." },
	{ .section = "fanout", .name = "fec", .type = CONF_CHOICE,
	  .off = OFF(fec), .def = "yes", .choices = conf_yes_no,
	  .flags = CONF_RELOAD | CONF_LINK,
	  .help = "Repair with TS004 parity rows (one row repairs a "
	  "different loss at every node) instead of resending blocks." },
	{ .section = "fanout", .name = "fec_k", .type = CONF_UINT,
	  .off = OFF(fec_k), .min = 2, .max = 128, .scale = 1,
	  .def = "64", .unit = "blocks", .flags = CONF_RELOAD | CONF_LINK,
	  .help = "Blocks per parity group; applies to sessions opened "
	  "later." },
	{ .section = "fanout", .name = "fec_proactive", .type = CONF_STR,
	  .off = OFF(fec_proactive), .def = "auto",
	  .check = conf_check_proactive, .flags = CONF_RELOAD,
	  .help = "Parity rows sent after each group in the first pass: "
	  "auto (from the loss measured so far) or a percent of fec_k." },
	{ .section = "fanout", .name = "xor", .type = CONF_CHOICE,
	  .off = OFF(xor_repair), .def = "yes", .choices = conf_yes_no,
	  .flags = CONF_RELOAD | CONF_LINK,
	  .help = "Repair with XOR frames built from the nodes' STATUS "
	  "answers (one frame repairs a different loss at every node it "
	  "covers); used before parity where a frame has room for the "
	  "block list." },
	{ .section = "fanout", .name = "time_scale", .type = CONF_UINT,
	  .off = OFF(time_scale), .min = 1, .max = 1000, .scale = 1,
	  .def = "1",
	  .help = "Simulation only: the engine's clock, and the clock its "
	  "transports are told of, run this many times real time, to match "
	  "a medium simulator run with the same --time-scale "
	  "(docs/simulator.md).  1 on real links." },
	{ .section = "fanout", .name = "unicast_slots", .type = CONF_UINT,
	  .off = OFF(unicast_slots), .min = 1, .max = 1024, .scale = 1,
	  .def = "4", .unit = "nodes", .flags = CONF_RELOAD | CONF_LINK,
	  .help = "Nodes served one by one at once on a transport that "
	  "cannot broadcast or is polled, where the transport sets no limit "
	  "of its own (a connected transport serves at most its "
	  "max_peers); the others wait their turn, first in first out." },
	{ .section = "fanout", .name = "poll_broadcast", .type = CONF_CHOICE,
	  .off = OFF(poll_broadcast), .def = "yes", .choices = conf_yes_no,
	  .flags = CONF_RELOAD | CONF_LINK,
	  .help = "On a polled bus that can broadcast (Modbus RTU unit 0), "
	  "send the first pass to every node at once, then poll each node "
	  "for what it misses and repair it alone; no: every node is "
	  "served alone from the start." },
	{ .section = "fanout", .name = "node_busy_s", .type = CONF_UINT,
	  .off = OFF(node_busy_s), .min = 10, .max = 86400, .scale = 1,
	  .def = "600", .unit = "s", .flags = CONF_RELOAD | CONF_LINK,
	  .help = "How long a node may keep refusing requests as busy "
	  "(Modbus exception 06) before a session writes it off; a busy "
	  "node is alive and asked again later, waiting longer each time "
	  "(up to 5 s)." },
	{ .section = "fanout", .name = "offload", .type = CONF_CHOICE,
	  .off = OFF(offload), .def = "yes", .choices = conf_yes_no,
	  .flags = CONF_RELOAD | CONF_LINK,
	  .help = "Hand the whole package to a transport's module where it "
	  "distributes files itself (a PLC carrier module); UP then "
	  "verifies, activates and repairs what the module did not "
	  "deliver." },
	{ .section = "fanout", .name = "offload_idle_s", .type = CONF_UINT,
	  .off = OFF(offload_idle_s), .min = 10, .max = 86400, .scale = 1,
	  .def = "3600", .unit = "s", .flags = CONF_RELOAD | CONF_LINK,
	  .help = "A module that reports no progress for this long is given "
	  "up; UP carries the rest of the package." },
};
#define CONF_NOPTS	(sizeof(conf_table) / sizeof(conf_table[0]))
/* ub_config.given has a bit per option. */
typedef char conf_given_fits[CONF_NOPTS <= 64 ? 1 : -1];

#undef OFF

/* What the parser knows about one [transport.NAME] section. */
struct conf_tp {
	int		 line;		/* of the section header */
	int		 type_line;
	int		 silence_line;	/* node_silence_s */
	int		*kv_line;	/* line of each kv */
	size_t		 kv_cap;
};

struct conf_ctx {
	const char		*path;
	FILE			*f;
	struct ub_config	*conf;
	char			*cause;		/* first error */

	char			*buf;		/* getline buffer */
	size_t			 bufsz;
	int			 lineno;

	/* The section being read (as the reader saw its header). */
	char			 section[CONF_LINE_MAX + 1];
	int			 section_ok;	/* keys go somewhere */
	struct ub_transport_conf *tp;		/* or NULL */
	struct conf_tp		*ctp;

	int			 section_line[3]; /* gateway cloud fanout */
	int			 opt_line[CONF_NOPTS];
	struct conf_tp		 tps[UB_MAX_TRANSPORTS];
};

static const char *const conf_sections[] = { "gateway", "cloud", "fanout" };

static void	 conf_error(struct conf_ctx *, int, const char *,
		    const char *, const char *, ...)
		    __attribute__((__format__(printf, 5, 6)));
static int	 conf_section_index(const char *);
static void	 conf_section_begin(struct conf_ctx *, const char *);
static char	*conf_reader(char *, int, void *);
static int	 conf_handler(void *, const char *, const char *,
		    const char *);
static int	 conf_set(struct ub_config *, const struct conf_opt *,
		    const char *, char **);
static int	 conf_parse_number(const char *, long long, long long,
		    long long *, char **);
static int	 conf_transport_check(struct conf_ctx *, size_t);
static int	 conf_bool(const char *, int *);
static void	 conf_free_strings(struct ub_config *);
static void	*conf_field(const struct ub_config *,
		    const struct conf_opt *);
static int	 conf_value_eq(const struct ub_config *,
		    const struct ub_config *, const struct conf_opt *);
static int	 conf_transport_eq(const struct ub_transport_conf *,
		    const struct ub_transport_conf *);

/*
 * Records the first error as "FILE:LINE: [SECTION] KEY: TEXT" (line 0:
 * none; key NULL: about the section; section NULL: about the file).
 */
static void
conf_error(struct conf_ctx *ctx, int line, const char *section,
    const char *key, const char *fmt, ...)
{
	char	*text, *where, *what;
	va_list	 ap;

	if (ctx->cause != NULL)
		return;
	va_start(ap, fmt);
	xvasprintf(&text, fmt, ap);
	va_end(ap);
	if (line > 0)
		xasprintf(&where, "%s:%d", ctx->path, line);
	else
		where = xstrdup(ctx->path);
	if (section == NULL)
		xasprintf(&ctx->cause, "%s: %s", where, text);
	else {
		if (key == NULL)
			xasprintf(&what, "[%s]", section);
		else
			xasprintf(&what, "[%s] %s", section, key);
		xasprintf(&ctx->cause, "%s: %s: %s", where, what, text);
		free(what);
	}
	free(text);
	free(where);
}

static int
conf_section_index(const char *name)
{
	size_t	 i;

	for (i = 0; i < sizeof(conf_sections) / sizeof(conf_sections[0]); i++)
		if (strcmp(conf_sections[i], name) == 0)
			return ((int)i);
	return (-1);
}

static int
conf_transport_name_ok(const char *name)
{
	size_t	 i, len = strlen(name);

	if (len == 0 || len > 63)
		return (0);
	for (i = 0; i < len; i++)
		if (!isalnum((unsigned char)name[i]) && name[i] != '_' &&
		    name[i] != '-')
			return (0);
	return (1);
}

/* A section header seen by the reader, before inih handles its keys. */
static void
conf_section_begin(struct conf_ctx *ctx, const char *name)
{
	struct ub_config	*conf = ctx->conf;
	struct ub_transport_conf *tp;
	const char		*tname;
	size_t			 i;
	int			 idx;

	snprintf(ctx->section, sizeof(ctx->section), "%s", name);
	ctx->section_ok = 0;
	ctx->tp = NULL;
	ctx->ctp = NULL;

	if ((idx = conf_section_index(name)) != -1) {
		if (ctx->section_line[idx] != 0) {
			conf_error(ctx, ctx->lineno, name, NULL,
			    "duplicate section (first at line %d)",
			    ctx->section_line[idx]);
			return;
		}
		ctx->section_line[idx] = ctx->lineno;
		ctx->section_ok = 1;
		return;
	}
	if (strncmp(name, "transport.", 10) != 0) {
		conf_error(ctx, ctx->lineno, name, NULL, "unknown section "
		    "(known: gateway, cloud, fanout, transport.NAME)");
		return;
	}
	tname = name + 10;
	if (!conf_transport_name_ok(tname)) {
		conf_error(ctx, ctx->lineno, name, NULL, "bad transport name "
		    "(use 1 to 63 of [A-Za-z0-9_-])");
		return;
	}
	for (i = 0; i < conf->ntransports; i++) {
		if (strcmp(conf->transports[i].name, tname) == 0) {
			conf_error(ctx, ctx->lineno, name, NULL,
			    "duplicate transport name (first at line %d)",
			    ctx->tps[i].line);
			return;
		}
	}
	if (conf->ntransports == UB_MAX_TRANSPORTS) {
		conf_error(ctx, ctx->lineno, name, NULL,
		    "too many transports (at most %d)", UB_MAX_TRANSPORTS);
		return;
	}
	tp = &conf->transports[conf->ntransports];
	tp->name = xstrdup(tname);
	ctx->tps[conf->ntransports].line = ctx->lineno;
	ctx->tp = tp;
	ctx->ctp = &ctx->tps[conf->ntransports];
	conf->ntransports++;
	ctx->section_ok = 1;
}

/*
 * fgets-style reader for ini_parse_stream: one whole line per call, so
 * ctx->lineno is the line inih is handling when it calls the handler.
 */
static char *
conf_reader(char *str, int num, void *arg)
{
	struct conf_ctx	*ctx = arg;
	ssize_t		 n;
	size_t		 len;
	char		*start, *p, *end;

	if (ctx->cause != NULL)
		return (NULL);	/* the first error is enough */
	if ((n = getline(&ctx->buf, &ctx->bufsz, ctx->f)) == -1)
		return (NULL);
	ctx->lineno++;
	len = (size_t)n;
	if (memchr(ctx->buf, '\0', len) != NULL) {
		conf_error(ctx, ctx->lineno, NULL, NULL, "NUL byte in line");
		return (NULL);
	}
	while (len > 0 && (ctx->buf[len - 1] == '\n' ||
	    ctx->buf[len - 1] == '\r'))
		len--;
	if (len > CONF_LINE_MAX || (int)len + 3 > num) {
		conf_error(ctx, ctx->lineno, NULL, NULL,
		    "line too long (at most %d characters)", CONF_LINE_MAX);
		return (NULL);
	}
	memcpy(str, ctx->buf, len);
	str[len] = '\n';
	str[len + 1] = '\0';

	/* A section header: the same rule inih uses, "[" up to "]". */
	start = str;
	if (ctx->lineno == 1 && (unsigned char)start[0] == 0xef &&
	    (unsigned char)start[1] == 0xbb && (unsigned char)start[2] == 0xbf)
		start += 3;
	p = start;
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p == '\n' || *p == ';' || *p == '#')
		return (str);
	if (*p == '[') {
		if ((end = strchr(p + 1, ']')) == NULL) {
			conf_error(ctx, ctx->lineno, NULL, NULL,
			    "section header without ']'");
			return (NULL);
		}
		*end = '\0';
		conf_section_begin(ctx, p + 1);
		*end = ']';
		return (str);
	}
	/*
	 * inih would take an indented line for the continuation of the
	 * previous value; refuse it rather than guess.
	 */
	if (p != start) {
		conf_error(ctx, ctx->lineno, NULL, NULL,
		    "indented line (continuation lines are not supported)");
		return (NULL);
	}
	if (strpbrk(p, "=:") == NULL) {
		conf_error(ctx, ctx->lineno, NULL, NULL,
		    "syntax error (expected [section], key = value or a "
		    "comment)");
		return (NULL);
	}
	return (str);
}

static int
conf_handler(void *arg, const char *section, const char *name,
    const char *value)
{
	struct conf_ctx		*ctx = arg;
	struct ub_transport_conf *tp = ctx->tp;
	struct conf_tp		*ctp = ctx->ctp;
	const struct conf_opt	*o;
	char			*why;
	size_t			 i;
	long long		 v;

	if (ctx->cause != NULL)
		return (0);
	if (*section == '\0') {
		conf_error(ctx, ctx->lineno, NULL, NULL,
		    "%s: key outside any section", name);
		return (0);
	}
	if (!ctx->section_ok)
		return (0);	/* the section's own error was recorded */

	if (tp == NULL) {
		for (i = 0; i < CONF_NOPTS; i++) {
			o = &conf_table[i];
			if (strcmp(o->section, section) == 0 &&
			    strcmp(o->name, name) == 0)
				break;
		}
		if (i == CONF_NOPTS) {
			conf_error(ctx, ctx->lineno, section, name,
			    "unknown key");
			return (0);
		}
		if (ctx->opt_line[i] != 0) {
			conf_error(ctx, ctx->lineno, section, name,
			    "duplicate key (first at line %d)",
			    ctx->opt_line[i]);
			return (0);
		}
		ctx->opt_line[i] = ctx->lineno;
		if (conf_set(ctx->conf, o, value, &why) != 0) {
			conf_error(ctx, ctx->lineno, section, name, "%s", why);
			free(why);
			return (0);
		}
		ctx->conf->given |= (uint64_t)1 << i;
		return (1);
	}

	/* [transport.NAME]: keep the pairs; checked once type is known. */
	if (*value == '\0') {
		conf_error(ctx, ctx->lineno, section, name, "empty value");
		return (0);
	}
	if (strcmp(name, "type") == 0) {
		if (tp->type != NULL) {
			conf_error(ctx, ctx->lineno, section, name,
			    "duplicate key (first at line %d)", ctp->type_line);
			return (0);
		}
		tp->type = xstrdup(value);
		ctp->type_line = ctx->lineno;
		return (1);
	}
	/* The engine's own per-link key, not the plugin's (CONF_TP_SILENCE). */
	if (strcmp(name, CONF_TP_SILENCE) == 0) {
		if (ctp->silence_line != 0) {
			conf_error(ctx, ctx->lineno, section, name,
			    "duplicate key (first at line %d)",
			    ctp->silence_line);
			return (0);
		}
		if (conf_parse_number(value, 1, 86400, &v, &why) != 0) {
			conf_error(ctx, ctx->lineno, section, name, "%s", why);
			free(why);
			return (0);
		}
		tp->node_silence_s = (unsigned int)v;
		ctp->silence_line = ctx->lineno;
		return (1);
	}
	for (i = 0; i < tp->nkv; i++) {
		if (strcmp(tp->kv[i].key, name) == 0) {
			conf_error(ctx, ctx->lineno, section, name,
			    "duplicate key (first at line %d)",
			    ctp->kv_line[i]);
			return (0);
		}
	}
	if (tp->nkv == ctp->kv_cap) {
		ctp->kv_cap = ctp->kv_cap == 0 ? 8 : ctp->kv_cap * 2;
		tp->kv = xreallocarray(tp->kv, ctp->kv_cap, sizeof(*tp->kv));
		ctp->kv_line = xreallocarray(ctp->kv_line, ctp->kv_cap,
		    sizeof(*ctp->kv_line));
	}
	tp->kv[tp->nkv].key = xstrdup(name);
	tp->kv[tp->nkv].value = xstrdup(value);
	ctp->kv_line[tp->nkv] = ctx->lineno;
	tp->nkv++;
	return (1);
}

/* A decimal integer within [min, max]. */
static int
conf_parse_number(const char *value, long long min, long long max,
    long long *out, char **why)
{
	char		*end;
	long long	 v;

	errno = 0;
	v = strtoll(value, &end, 10);
	if (*value == '\0' || isspace((unsigned char)*value) ||
	    *end != '\0') {
		xasprintf(why, "\"%s\" is not a number", value);
		return (-1);
	}
	if (errno == ERANGE || v < min || v > max) {
		xasprintf(why, "%s is out of range %lld..%lld", value, min,
		    max);
		return (-1);
	}
	*out = v;
	return (0);
}

static void *
conf_field(const struct ub_config *conf, const struct conf_opt *o)
{
	return ((char *)conf + o->off);
}

/* Parses `value' for option `o' and stores it.  0, or -1 with why. */
static int
conf_set(struct ub_config *conf, const struct conf_opt *o, const char *value,
    char **why)
{
	const struct conf_choice *c;
	void			*field = conf_field(conf, o);
	long long		 v;
	char			*list, *tmp;

	switch (o->type) {
	case CONF_STR:
		if (*value == '\0') {
			xasprintf(why, "empty value");
			return (-1);
		}
		if (o->check != NULL && o->check(value, why) != 0)
			return (-1);
		free(*(char **)field);
		*(char **)field = xstrdup(value);
		return (0);
	case CONF_UINT:
	case CONF_U32:
	case CONF_U64:
		if (conf_parse_number(value, o->min, o->max, &v, why) != 0)
			return (-1);
		if (o->type == CONF_UINT)
			*(unsigned int *)field = (unsigned int)(v * o->scale);
		else if (o->type == CONF_U32)
			*(uint32_t *)field = (uint32_t)(v * o->scale);
		else
			*(uint64_t *)field = (uint64_t)v * o->scale;
		return (0);
	case CONF_CHOICE:
		for (c = o->choices; c->name != NULL; c++) {
			if (strcmp(c->name, value) == 0) {
				*(int *)field = c->value;
				return (0);
			}
		}
		list = xstrdup("");
		for (c = o->choices; c->name != NULL; c++) {
			xasprintf(&tmp, "%s%s%s", list, *list ? ", " : "",
			    c->name);
			free(list);
			list = tmp;
		}
		xasprintf(why, "\"%s\" is not one of %s", value, list);
		free(list);
		return (-1);
	}
	xasprintf(why, "bad option type");
	return (-1);
}

static int
conf_bool(const char *value, int *out)
{
	static const char *const yes[] = { "yes", "true", "on", "1" };
	static const char *const no[] = { "no", "false", "off", "0" };
	size_t	 i;

	for (i = 0; i < 4; i++) {
		if (strcasecmp(value, yes[i]) == 0) {
			*out = 1;
			return (0);
		}
		if (strcasecmp(value, no[i]) == 0) {
			*out = 0;
			return (0);
		}
	}
	return (-1);
}

/*
 * Checks one [transport.NAME] section once its type is known: the
 * plugin, each key against the plugin's table (so errors carry the key's
 * line), then tp_conf_check() for what only the plugin knows.
 */
/* The [fanout] option a transport section may override, or NULL. */
static const struct conf_opt *
conf_link_opt(const char *name)
{
	size_t	 i;

	for (i = 0; i < CONF_NOPTS; i++)
		if ((conf_table[i].flags & CONF_LINK) != 0 &&
		    strcmp(conf_table[i].name, name) == 0)
			return (&conf_table[i]);
	return (NULL);
}

int
config_given(const struct ub_config *conf, const char *section,
    const char *name)
{
	size_t	 i;

	for (i = 0; i < CONF_NOPTS; i++)
		if (strcmp(conf_table[i].section, section) == 0 &&
		    strcmp(conf_table[i].name, name) == 0)
			return ((conf->given & ((uint64_t)1 << i)) != 0);
	return (0);
}

/* The plugin has an option of that name (it wins over the profile's). */
static int
conf_tp_has(const struct tp_ops *ops, const char *name)
{
	const struct tp_option	*o;

	if (ops->options == NULL)
		return (0);
	for (o = ops->options; o->name != NULL; o++)
		if (strcmp(o->name, name) == 0)
			return (1);
	return (0);
}

int
config_link(const struct ub_config *conf, const struct ub_transport_conf *tp,
    struct ub_config *out)
{
	const struct conf_opt	*o;
	char			*why;
	size_t			 i;

	*out = *conf;
	for (i = 0; i < tp->nlink; i++) {
		if ((o = conf_link_opt(tp->link_kv[i].key)) == NULL ||
		    o->type == CONF_STR)
			continue;
		/* Numbers and choices only: nothing to allocate. */
		if (conf_set(out, o, tp->link_kv[i].value, &why) != 0) {
			free(why);
			return (-1);
		}
	}
	return (0);
}

static int
conf_transport_check(struct conf_ctx *ctx, size_t n)
{
	struct ub_transport_conf *tp = &ctx->conf->transports[n];
	struct conf_tp		*ctp = &ctx->tps[n];
	const struct tp_option	*opt;
	const struct tp_ops	*const *list;
	const struct conf_opt	*lo;
	struct ub_config	 scratch;
	const char		*reason;
	char			 section[80], *why, *known, *tmp;
	long long		 v;
	size_t			 i, j;
	int			 b;

	snprintf(section, sizeof(section), "transport.%s", tp->name);
	if (tp->type == NULL) {
		conf_error(ctx, ctp->line, section, "type",
		    "missing required key");
		return (-1);
	}
	if ((tp->ops = tp_find(tp->type)) == NULL) {
		known = xstrdup("");
		for (list = tp_list(); *list != NULL; list++) {
			xasprintf(&tmp, "%s%s%s", known, *known ? ", " : "",
			    (*list)->name);
			free(known);
			known = tmp;
		}
		conf_error(ctx, ctp->type_line, section, "type",
		    "unknown transport type \"%s\" (compiled in: %s)",
		    tp->type, *known ? known : "none");
		free(known);
		return (-1);
	}
	if (tp->ops->abi != TP_ABI_VERSION) {
		conf_error(ctx, ctp->type_line, section, "type",
		    "plugin \"%s\" has ABI %d, upbridged needs %d", tp->type,
		    tp->ops->abi, TP_ABI_VERSION);
		return (-1);
	}

	for (i = 0; i < tp->nkv; i++) {
		opt = NULL;
		if (tp->ops->options != NULL) {
			for (opt = tp->ops->options; opt->name != NULL; opt++)
				if (strcmp(opt->name, tp->kv[i].key) == 0)
					break;
		}
		if ((opt == NULL || opt->name == NULL) &&
		    (lo = conf_link_opt(tp->kv[i].key)) != NULL) {
			/* A [fanout] key of this instance's own profile. */
			memset(&scratch, 0, sizeof(scratch));
			if (conf_set(&scratch, lo, tp->kv[i].value,
			    &why) != 0) {
				conf_error(ctx, ctp->kv_line[i], section,
				    tp->kv[i].key, "%s", why);
				free(why);
				return (-1);
			}
			continue;
		}
		if (opt == NULL || opt->name == NULL) {
			conf_error(ctx, ctp->kv_line[i], section,
			    tp->kv[i].key, "unknown key for transport type %s",
			    tp->type);
			return (-1);
		}
		switch (opt->type) {
		case TP_OPT_INT:
			if (conf_parse_number(tp->kv[i].value, opt->min,
			    opt->max, &v, &why) != 0) {
				conf_error(ctx, ctp->kv_line[i], section,
				    tp->kv[i].key, "%s", why);
				free(why);
				return (-1);
			}
			break;
		case TP_OPT_BOOL:
			if (conf_bool(tp->kv[i].value, &b) != 0) {
				conf_error(ctx, ctp->kv_line[i], section,
				    tp->kv[i].key, "\"%s\" is not yes or no",
				    tp->kv[i].value);
				return (-1);
			}
			break;
		case TP_OPT_STRING:
			break;
		}
		if (opt->check != NULL &&
		    (reason = opt->check(tp->kv[i].value)) != NULL) {
			conf_error(ctx, ctp->kv_line[i], section,
			    tp->kv[i].key, "\"%s\": %s", tp->kv[i].value,
			    reason);
			return (-1);
		}
	}

	/* The profile's keys go apart: the plugin sees only its own. */
	for (i = 0, j = 0; i < tp->nkv; i++) {
		if (conf_link_opt(tp->kv[i].key) != NULL &&
		    !conf_tp_has(tp->ops, tp->kv[i].key)) {
			tp->link_kv = xreallocarray(tp->link_kv, tp->nlink + 1,
			    sizeof(*tp->link_kv));
			tp->link_kv[tp->nlink++] = tp->kv[i];
			continue;
		}
		tp->kv[j++] = tp->kv[i];
	}
	tp->nkv = j;
	tp->conf.name = tp->name;
	tp->conf.options = tp->ops->options;
	tp->conf.nkv = tp->nkv;
	tp->conf.kv = tp->kv;
	if (tp_conf_check(&tp->conf, &why) != 0) {
		conf_error(ctx, ctp->line, section, NULL, "%s", why);
		free(why);
		return (-1);
	}
	return (0);
}

struct ub_config *
config_load(const char *path, char **cause)
{
	struct conf_ctx		 ctx;
	struct ub_config	*conf;
	const struct conf_opt	*o;
	char			*why;
	size_t			 i;
	int			 rc, idx;

	memset(&ctx, 0, sizeof(ctx));
	ctx.path = path;
	if ((ctx.f = fopen(path, "r")) == NULL) {
		xasprintf(cause, "%s: %s", path, strerror(errno));
		return (NULL);
	}
	conf = xcalloc(1, sizeof(*conf));
	ctx.conf = conf;

	rc = ini_parse_stream(conf_reader, &ctx, conf_handler, &ctx);
	if (ctx.cause == NULL && ferror(ctx.f))
		conf_error(&ctx, 0, NULL, NULL, "read error");
	if (ctx.cause == NULL && rc > 0)
		conf_error(&ctx, rc, NULL, NULL, "syntax error (expected "
		    "[section], key = value or a comment)");
	else if (ctx.cause == NULL && rc < 0)
		conf_error(&ctx, 0, NULL, NULL, "cannot parse (error %d)", rc);
	fclose(ctx.f);
	free(ctx.buf);

	/* Defaults, then required keys. */
	for (i = 0; ctx.cause == NULL && i < CONF_NOPTS; i++) {
		o = &conf_table[i];
		if (ctx.opt_line[i] != 0)
			continue;
		if (o->flags & CONF_REQUIRED) {
			idx = conf_section_index(o->section);
			conf_error(&ctx, ctx.section_line[idx], o->section,
			    o->name, "missing required key");
			break;
		}
		if (o->def != NULL && conf_set(conf, o, o->def, &why) != 0)
			fatalx("%s: default of %s: %s", __func__, o->name, why);
	}

	if (ctx.cause == NULL && conf->ntransports == 0)
		conf_error(&ctx, 0, NULL, NULL, "no [transport.NAME] section: "
		    "at least one transport is needed");
	for (i = 0; ctx.cause == NULL && i < conf->ntransports; i++)
		conf_transport_check(&ctx, i);

	for (i = 0; i < UB_MAX_TRANSPORTS; i++)
		free(ctx.tps[i].kv_line);
	if (ctx.cause != NULL) {
		config_free(conf);
		*cause = ctx.cause;
		return (NULL);
	}
	return (conf);
}

static void
conf_free_strings(struct ub_config *conf)
{
	const struct conf_opt	*o;
	size_t			 i;

	for (i = 0; i < CONF_NOPTS; i++) {
		o = &conf_table[i];
		if (o->type == CONF_STR)
			free(*(char **)conf_field(conf, o));
	}
}

void
config_free(struct ub_config *conf)
{
	struct ub_transport_conf *tp;
	size_t			 i, j;

	if (conf == NULL)
		return;
	conf_free_strings(conf);
	for (i = 0; i < conf->ntransports; i++) {
		tp = &conf->transports[i];
		free(tp->name);
		free(tp->type);
		for (j = 0; j < tp->nkv; j++) {
			free((char *)tp->kv[j].key);
			free((char *)tp->kv[j].value);
		}
		free(tp->kv);
		for (j = 0; j < tp->nlink; j++) {
			free((char *)tp->link_kv[j].key);
			free((char *)tp->link_kv[j].value);
		}
		free(tp->link_kv);
	}
	free(conf);
}

static int
conf_value_eq(const struct ub_config *a, const struct ub_config *b,
    const struct conf_opt *o)
{
	const void	*fa = conf_field(a, o), *fb = conf_field(b, o);
	const char	*sa, *sb;

	switch (o->type) {
	case CONF_STR:
		sa = *(char *const *)fa;
		sb = *(char *const *)fb;
		if (sa == NULL || sb == NULL)
			return (sa == sb);
		return (strcmp(sa, sb) == 0);
	case CONF_UINT:
		return (*(const unsigned int *)fa == *(const unsigned int *)fb);
	case CONF_U32:
		return (*(const uint32_t *)fa == *(const uint32_t *)fb);
	case CONF_U64:
		return (*(const uint64_t *)fa == *(const uint64_t *)fb);
	case CONF_CHOICE:
		return (*(const int *)fa == *(const int *)fb);
	}
	return (0);
}

/*
 * Same plugin and the same effective value of every option (a default
 * written out is no change).
 */
static int
conf_transport_eq(const struct ub_transport_conf *a,
    const struct ub_transport_conf *b)
{
	const struct tp_option	*o;
	const char		*va, *vb;

	if (strcmp(a->type, b->type) != 0 || a->ops != b->ops ||
	    a->node_silence_s != b->node_silence_s)
		return (0);
	if (a->ops->options == NULL)
		return (1);
	for (o = a->ops->options; o->name != NULL; o++) {
		va = tp_conf_str(&a->conf, o->name);
		vb = tp_conf_str(&b->conf, o->name);
		if (va == NULL || vb == NULL) {
			if (va != vb)
				return (0);
			continue;
		}
		switch (o->type) {
		case TP_OPT_INT:
			if (tp_conf_int(&a->conf, o->name) !=
			    tp_conf_int(&b->conf, o->name))
				return (0);
			break;
		case TP_OPT_BOOL:
			if (tp_conf_bool(&a->conf, o->name) !=
			    tp_conf_bool(&b->conf, o->name))
				return (0);
			break;
		case TP_OPT_STRING:
			if (strcmp(va, vb) != 0)
				return (0);
			break;
		}
	}
	return (1);
}

int
config_reloadable(const struct ub_config *old, const struct ub_config *new,
    char **cause)
{
	const struct conf_opt	*o;
	size_t			 i, j;

	for (i = 0; i < CONF_NOPTS; i++) {
		o = &conf_table[i];
		if ((o->flags & CONF_RELOAD) || conf_value_eq(old, new, o))
			continue;
		xasprintf(cause, "[%s] %s changed: it needs a restart",
		    o->section, o->name);
		return (-1);
	}
	for (i = 0; i < old->ntransports; i++) {
		for (j = 0; j < new->ntransports; j++)
			if (strcmp(old->transports[i].name,
			    new->transports[j].name) == 0)
				break;
		if (j == new->ntransports) {
			xasprintf(cause, "[transport.%s] removed: transports "
			    "change only with a restart",
			    old->transports[i].name);
			return (-1);
		}
		if (!conf_transport_eq(&old->transports[i],
		    &new->transports[j])) {
			xasprintf(cause, "[transport.%s] changed: transports "
			    "change only with a restart",
			    old->transports[i].name);
			return (-1);
		}
	}
	if (new->ntransports != old->ntransports) {
		for (j = 0; j < new->ntransports; j++) {
			for (i = 0; i < old->ntransports; i++)
				if (strcmp(old->transports[i].name,
				    new->transports[j].name) == 0)
					break;
			if (i == old->ntransports)
				break;
		}
		xasprintf(cause, "[transport.%s] added: transports change "
		    "only with a restart", j < new->ntransports ?
		    new->transports[j].name : "?");
		return (-1);
	}
	return (0);
}

/* Prints text word-wrapped at `width', each line indented. */
static void
conf_print_wrapped(FILE *f, const char *text, int indent, int width)
{
	const char	*p = text, *end, *brk;
	int		 room = width - indent;

	while (*p != '\0') {
		end = p + strlen(p);
		if (end - p > room) {
			for (brk = p + room; brk > p && *brk != ' '; brk--)
				;
			if (brk == p)
				brk = p + room;
			end = brk;
		}
		fprintf(f, "%*s%.*s\n", indent, "", (int)(end - p), p);
		p = end;
		while (*p == ' ')
			p++;
	}
}

static void
conf_print_option(FILE *f, const char *name, const char *def,
    const char *range, const char *unit, const char *notes, const char *help)
{
	fprintf(f, "  %s = %s", name, def);
	if (*range != '\0' || (unit != NULL && *unit != '\0') || *notes != '\0')
		fprintf(f, "   (%s%s%s%s%s)", range,
		    *range != '\0' && unit != NULL ? " " : "",
		    unit != NULL ? unit : "",
		    (*range != '\0' || unit != NULL) && *notes != '\0' ?
		    "; " : "", notes);
	fputc('\n', f);
	conf_print_wrapped(f, help != NULL ? help : "", 6, 78);
}

void
config_print_help(FILE *f)
{
	const struct conf_opt	*o;
	const struct conf_choice *c;
	const struct tp_ops	*const *list;
	const struct tp_option	*t;
	const char		*last = NULL;
	char			 range[128], def[128];
	size_t			 i, off;

	fprintf(f, "upbridged.conf options (see upbridged.conf(5)):\n");
	for (i = 0; i < CONF_NOPTS; i++) {
		o = &conf_table[i];
		if (last == NULL || strcmp(last, o->section) != 0)
			fprintf(f, "\n[%s]\n", o->section);
		last = o->section;
		range[0] = '\0';
		if (o->type == CONF_CHOICE) {
			off = 0;
			for (c = o->choices; c->name != NULL; c++)
				off += snprintf(range + off, sizeof(range) -
				    off, "%s%s", off ? " | " : "", c->name);
		} else if (o->type != CONF_STR)
			snprintf(range, sizeof(range), "%lld..%lld", o->min,
			    o->max);
		if (o->flags & CONF_REQUIRED)
			snprintf(def, sizeof(def), "(required)");
		else
			snprintf(def, sizeof(def), "%s",
			    o->def != NULL ? o->def : "(unset)");
		conf_print_option(f, o->name, def, range,
		    o->type == CONF_CHOICE ? NULL : o->unit,
		    (o->flags & CONF_RELOAD) ? "reloadable" : "restart",
		    o->help);
	}

	fprintf(f, "\n[transport.NAME]   (restart; NAME is 1 to 63 of "
	    "[A-Za-z0-9_-])\n");
	fprintf(f, "  type = (required)\n      The plugin:");
	for (list = tp_list(); *list != NULL; list++)
		fprintf(f, " %s", (*list)->name);
	fprintf(f, ".\n");
	conf_print_option(f, CONF_TP_SILENCE, "(from the link)", "1..86400",
	    "s", "", "How long a node on this link may stay silent (a "
	    "reboot, a brown-out) before a session writes it off.  Default: "
	    "10 s plus four frames' time on air at the link's rate and duty "
	    "cycle.");
	fprintf(f, "  Any [fanout] key but fec_proactive may be set here too: "
	    "it overrides [fanout]\n      for this instance "
	    "(reloadable).\n");
	for (list = tp_list(); *list != NULL; list++) {
		fprintf(f, "\n[transport.NAME] with type = %s\n",
		    (*list)->name);
		if ((*list)->options == NULL)
			continue;
		for (t = (*list)->options; t->name != NULL; t++) {
			range[0] = '\0';
			if (t->type == TP_OPT_INT)
				snprintf(range, sizeof(range), "%lld..%lld",
				    t->min, t->max);
			else if (t->type == TP_OPT_BOOL)
				snprintf(range, sizeof(range), "yes | no");
			conf_print_option(f, t->name,
			    t->def != NULL ? t->def : "(required)", range,
			    t->unit, "", t->help);
		}
	}
}

/* Option value checks (CONF_STR). */

static int
conf_check_id(const char *v, char **why)
{
	size_t	 i, len = strlen(v);

	if (len > 64) {
		xasprintf(why, "longer than 64 characters");
		return (-1);
	}
	for (i = 0; i < len; i++) {
		if (!isalnum((unsigned char)v[i]) && v[i] != '.' &&
		    v[i] != '_' && v[i] != '-') {
			xasprintf(why, "\"%s\" has a character outside "
			    "[A-Za-z0-9._-]", v);
			return (-1);
		}
	}
	if (strcmp(v, ".") == 0 || strcmp(v, "..") == 0) {
		xasprintf(why, "\"%s\" is not a usable id", v);
		return (-1);
	}
	return (0);
}

static int
conf_check_abspath(const char *v, char **why)
{
	if (v[0] != '/') {
		xasprintf(why, "\"%s\" is not an absolute path", v);
		return (-1);
	}
	if (strlen(v) >= PATH_MAX) {
		xasprintf(why, "path too long");
		return (-1);
	}
	return (0);
}

static int
conf_check_sockpath(const char *v, char **why)
{
	if (conf_check_abspath(v, why) != 0)
		return (-1);
	if (strlen(v) > CONF_SUN_PATH_MAX) {
		xasprintf(why, "path too long for a UNIX socket (at most %d "
		    "bytes)", CONF_SUN_PATH_MAX);
		return (-1);
	}
	return (0);
}

static int
conf_check_url(const char *v, char **why)
{
	const char	*host;
	size_t		 i;

	if (strncmp(v, "https://", 8) != 0) {
		xasprintf(why, "\"%s\" is not an https:// URL", v);
		return (-1);
	}
	host = v + 8;
	if (*host == '\0' || *host == '/' || *host == ':') {
		xasprintf(why, "\"%s\" has no host", v);
		return (-1);
	}
	for (i = 0; v[i] != '\0'; i++) {
		if (!isgraph((unsigned char)v[i]) || v[i] == '?' ||
		    v[i] == '#') {
			xasprintf(why, "\"%s\": spaces, queries and fragments "
			    "are not allowed", v);
			return (-1);
		}
	}
	return (0);
}

/* "auto" or a whole percent 0..100. */
static int
conf_check_proactive(const char *v, char **why)
{
	char		*end;
	long		 n;

	if (strcmp(v, "auto") == 0)
		return (0);
	errno = 0;
	n = strtol(v, &end, 10);
	if (end == v || *end != '\0' || errno != 0 || n < 0 || n > 100) {
		xasprintf(why, "\"%s\" is neither auto nor a percent 0..100",
		    v);
		return (-1);
	}
	return (0);
}

static int
conf_check_group(const char *v, char **why)
{
	size_t	 i;

	for (i = 0; v[i] != '\0'; i++) {
		if (!isalnum((unsigned char)v[i]) && v[i] != '_' &&
		    v[i] != '-' && v[i] != '.') {
			xasprintf(why, "\"%s\" is not a group name", v);
			return (-1);
		}
	}
	return (0);
}
