/*
 * upctl.c: the technician's command line, a thin client of upbridged's
 * control socket (ctl_proto.h).
 *
 *	upctl [-s socket] [--json] command [args]
 *
 * Commands are a table (relayctl's token table, flattened): each names
 * its arguments, the shape of its --json output and its printer for
 * people.  Exit status: 0 ok, 1 failed (including "upbridged is not
 * running"), 2 usage.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "upbridged.h"
#include "ctl_proto.h"

#define UPCTL_CONNECT_TIMEOUT_S	5
#define UPCTL_REPLY_TIMEOUT_MS	10000
#define UPCTL_WATCH_TIMEOUT_MS	10000
#define UPCTL_BAR_WIDTH		30
#define UPCTL_EXIT_OK		0
#define UPCTL_EXIT_FAIL		1
#define UPCTL_EXIT_USAGE	2

enum upctl_shape {
	UPCTL_OBJECT,		/* --json: the one data record */
	UPCTL_ARRAY,		/* --json: every data record, as an array */
	UPCTL_NONE		/* --json: {"status":"ok"} */
};

struct upctl_cmd {
	const char	*name;
	const char	*usage;
	int		 args_min;
	int		 args_max;
	enum upctl_shape shape;
	void		 (*print)(json_t *data, char **argv);
};

struct upctl_conn {
	int		 fd;
	const char	*path;
	char		*buf;
	size_t		 len;
	size_t		 cap;
};

static void	 print_fanout(json_t *);
static void	 print_status(json_t *, char **);
static void	 print_nodes(json_t *, char **);
static void	 print_node(json_t *, char **);
static void	 print_campaigns(json_t *, char **);
static void	 print_campaign(json_t *, char **);
static void	 print_done(json_t *, char **);

static const struct upctl_cmd upctl_cmds[] = {
	{ "status", "", 0, 0, UPCTL_OBJECT, print_status },
	{ "nodes", "", 0, 0, UPCTL_ARRAY, print_nodes },
	{ "node", "ID [tag add|del TAG | topology PARENT ROLE [LEVEL] | "
	  "reset]", 1, 5, UPCTL_OBJECT, print_node },
	{ "campaigns", "", 0, 0, UPCTL_ARRAY, print_campaigns },
	{ "campaign", "ID [approve|pause|resume|cancel|force-cancel|"
	  "export --csv]", 1, 2, UPCTL_OBJECT, print_campaign },
	{ "refresh", "", 0, 0, UPCTL_NONE, print_done },
	{ "watch", "[--once | --until-idle]", 0, 0, UPCTL_NONE, NULL },
	{ NULL, NULL, 0, 0, 0, NULL }
};

static int	 json_out;

static void	 usage(void) __attribute__((__noreturn__));
static void	 die(const char *, ...)
		    __attribute__((__format__(printf, 1, 2)))
		    __attribute__((__noreturn__));

static void
usage(void)
{
	const struct upctl_cmd	*c;
	extern char		*__progname;

	fprintf(stderr, "usage: %s [-s socket] [--json] command [args]\n"
	    "commands:\n", __progname);
	for (c = upctl_cmds; c->name != NULL; c++)
		fprintf(stderr, "\t%s%s%s\n", c->name, *c->usage ? " " : "",
		    c->usage);
	exit(UPCTL_EXIT_USAGE);
}

static void
die(const char *fmt, ...)
{
	extern char	*__progname;
	va_list		 ap;

	fprintf(stderr, "%s: ", __progname);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(UPCTL_EXIT_FAIL);
}

/* ------------------------------------------------------------------ */
/* The connection                                                     */

static void
upctl_connect(struct upctl_conn *cn, const char *path)
{
	struct sockaddr_un	 sun;
	struct timeval		 tv = { UPCTL_CONNECT_TIMEOUT_S, 0 };

	memset(cn, 0, sizeof(*cn));
	cn->path = path;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path))
		die("%s: socket path too long", path);
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	if ((cn->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		die("socket: %s", strerror(errno));
	/* A UNIX connect() waits for a full backlog up to SO_SNDTIMEO. */
	setsockopt(cn->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(cn->fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		if (errno == ENOENT || errno == ECONNREFUSED)
			die("cannot connect to %s: %s (is upbridged "
			    "running?)", path, strerror(errno));
		if (errno == EAGAIN || errno == EINPROGRESS)
			die("cannot connect to %s: upbridged does not "
			    "answer", path);
		die("cannot connect to %s: %s", path, strerror(errno));
	}
}

static void
upctl_send(struct upctl_conn *cn, int64_t id, const char *cmd, int argc,
    char **argv)
{
	json_t	*rq, *args;
	char	*s;
	size_t	 len, off;
	ssize_t	 n;
	int	 i;

	args = json_array();
	for (i = 0; i < argc; i++)
		json_array_append_new(args, json_string(argv[i]));
	rq = json_pack("{s:i,s:I,s:s,s:o}", "v", CTL_PROTO_VERSION, "id",
	    (json_int_t)id, "cmd", cmd, "args", args);
	if (rq == NULL || (s = json_dumps(rq, JSON_COMPACT)) == NULL)
		die("cannot encode the request");
	json_decref(rq);
	len = strlen(s);
	s = xreallocarray(s, len + 2, 1);
	s[len++] = '\n';
	for (off = 0; off < len; off += (size_t)n) {
		n = write(cn->fd, s + off, len - off);
		if (n == -1 && errno == EINTR) {
			n = 0;
			continue;
		}
		if (n == -1)
			die("%s: write: %s", cn->path, strerror(errno));
	}
	free(s);
}

/*
 * The next record, or dies: on timeout, on EOF and on a line that is
 * not a JSON object.
 */
static json_t *
upctl_next(struct upctl_conn *cn, int timeout_ms)
{
	struct pollfd	 pfd;
	json_t		*rec;
	json_error_t	 jerr;
	char		*nl;
	size_t		 linelen;
	ssize_t		 n;
	int		 rc;

	for (;;) {
		if (cn->len > 0 &&
		    (nl = memchr(cn->buf, '\n', cn->len)) != NULL) {
			linelen = (size_t)(nl - cn->buf);
			rec = json_loadb(cn->buf, linelen, 0, &jerr);
			memmove(cn->buf, nl + 1, cn->len - linelen - 1);
			cn->len -= linelen + 1;
			if (rec == NULL || !json_is_object(rec))
				die("bad reply from upbridged: %s",
				    rec == NULL ? jerr.text : "not an object");
			return (rec);
		}
		if (cn->cap - cn->len < 65536) {
			cn->cap = cn->cap == 0 ? 131072 : cn->cap * 2;
			if (cn->cap > 256 * 1024 * 1024)
				die("reply line too long");
			cn->buf = xreallocarray(cn->buf, cn->cap, 1);
		}
		pfd.fd = cn->fd;
		pfd.events = POLLIN;
		rc = poll(&pfd, 1, timeout_ms);
		if (rc == -1 && errno == EINTR)
			continue;
		if (rc == -1)
			die("poll: %s", strerror(errno));
		if (rc == 0)
			die("no reply from upbridged within %d s",
			    timeout_ms / 1000);
		n = read(cn->fd, cn->buf + cn->len, cn->cap - cn->len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			die("%s: read: %s", cn->path, strerror(errno));
		if (n == 0)
			die("upbridged closed the connection");
		cn->len += (size_t)n;
	}
}

/* An end record's error, or NULL when it says ok. */
static const char *
upctl_end_error(json_t *rec)
{
	const char	*status, *error;

	status = json_string_value(json_object_get(rec, "status"));
	if (status != NULL && strcmp(status, CTL_STATUS_OK) == 0)
		return (NULL);
	error = json_string_value(json_object_get(rec, "error"));
	return (error != NULL ? error : "failed");
}

/*
 * Runs one request: returns the data records as a new array, or dies
 * with the daemon's error.
 */
static json_t *
upctl_request(struct upctl_conn *cn, const char *cmd, int argc, char **argv)
{
	json_t		*rec, *data, *id;
	const char	*err;
	char		*copy;

	upctl_send(cn, 1, cmd, argc, argv);
	data = json_array();
	for (;;) {
		rec = upctl_next(cn, UPCTL_REPLY_TIMEOUT_MS);
		id = json_object_get(rec, "id");
		if (json_is_true(json_object_get(rec, "end"))) {
			if ((err = upctl_end_error(rec)) != NULL) {
				copy = xstrdup(err);
				json_decref(rec);
				die("%s", copy);
			}
			json_decref(rec);
			return (data);
		}
		if (json_is_integer(id) && json_integer_value(id) == 1 &&
		    json_object_get(rec, "data") != NULL)
			json_array_append(data, json_object_get(rec, "data"));
		json_decref(rec);
	}
}

/* ------------------------------------------------------------------ */
/* Formatting for people                                              */

static const char *
fmt_bytes(double v, char *buf, size_t len)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB",
	    "TiB" };
	int	 u = 0;

	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, len, "%.0f %s", v, units[u]);
	else
		snprintf(buf, len, "%.1f %s", v, units[u]);
	return (buf);
}

static const char *
fmt_rate(double bps, char *buf, size_t len)
{
	if (bps >= 1e6)
		snprintf(buf, len, "%.1f Mbit/s", bps / 1e6);
	else if (bps >= 1e3)
		snprintf(buf, len, "%.1f kbit/s", bps / 1e3);
	else
		snprintf(buf, len, "%.0f bit/s", bps);
	return (buf);
}

static const char *
fmt_duration(long long s, char *buf, size_t len)
{
	if (s < 0)
		s = 0;
	if (s >= 86400)
		snprintf(buf, len, "%lldd %02lldh %02lldm", s / 86400,
		    (s % 86400) / 3600, (s % 3600) / 60);
	else if (s >= 3600)
		snprintf(buf, len, "%lldh %02lldm %02llds", s / 3600,
		    (s % 3600) / 60, s % 60);
	else if (s >= 60)
		snprintf(buf, len, "%lldm %02llds", s / 60, s % 60);
	else
		snprintf(buf, len, "%llds", s);
	return (buf);
}

/* The first of `keys' present in o (NULL-terminated list). */
static json_t *
jget(json_t *o, ...)
{
	va_list		 ap;
	const char	*k;
	json_t		*v = NULL;

	va_start(ap, o);
	while ((k = va_arg(ap, const char *)) != NULL)
		if ((v = json_object_get(o, k)) != NULL && !json_is_null(v))
			break;
	va_end(ap);
	return (k != NULL ? v : NULL);
}

/* A string value, or "?". */
static const char *
jstr(json_t *v)
{
	return (json_is_string(v) ? json_string_value(v) : "?");
}

/* Any scalar as text into buf; "-" when absent. */
static const char *
jtext(json_t *v, char *buf, size_t len)
{
	if (v == NULL || json_is_null(v))
		snprintf(buf, len, "-");
	else if (json_is_string(v))
		snprintf(buf, len, "%s", json_string_value(v));
	else if (json_is_integer(v))
		snprintf(buf, len, "%" JSON_INTEGER_FORMAT,
		    json_integer_value(v));
	else if (json_is_real(v))
		snprintf(buf, len, "%.1f", json_real_value(v));
	else if (json_is_true(v))
		snprintf(buf, len, "yes");
	else if (json_is_false(v))
		snprintf(buf, len, "no");
	else
		snprintf(buf, len, "...");
	return (buf);
}

static double
jnum(json_t *v)
{
	if (json_is_integer(v))
		return ((double)json_integer_value(v));
	if (json_is_real(v))
		return (json_real_value(v));
	return (0);
}

/* A node id as 0x%016x whether it came as a number or as text. */
static const char *
fmt_node(json_t *v, char *buf, size_t len)
{
	if (json_is_integer(v))
		snprintf(buf, len, "0x%016" PRIx64,
		    (uint64_t)json_integer_value(v));
	else
		jtext(v, buf, len);
	return (buf);
}

/* A node id from a number or from decimal/0x-hex text; 0 if neither. */
static uint64_t
node_id_of(json_t *v)
{
	const char	*s;
	char		*end;
	uint64_t	 id;

	if (json_is_integer(v))
		return ((uint64_t)json_integer_value(v));
	if ((s = json_string_value(v)) == NULL)
		return (0);
	id = strtoull(s, &end, 0);
	return (*end == '\0' ? id : 0);
}

static int
node_cmp(const void *a, const void *b)
{
	json_t		*na = *(json_t *const *)a, *nb = *(json_t *const *)b;
	uint64_t	 ia = node_id_of(jget(na, "id", "node", NULL));
	uint64_t	 ib = node_id_of(jget(nb, "id", "node", NULL));

	return (ia < ib ? -1 : ia > ib);
}

/*
 * The registry answers in its hash order; people and scripts want the
 * nodes by id.  Sorts the array of node records in place.
 */
static void
sort_nodes(json_t *data)
{
	json_t	**v;
	size_t	 i, n = json_array_size(data);

	if (n < 2)
		return;
	v = xreallocarray(NULL, n, sizeof(*v));
	for (i = 0; i < n; i++)
		v[i] = json_incref(json_array_get(data, i));
	qsort(v, n, sizeof(*v), node_cmp);
	json_array_clear(data);
	for (i = 0; i < n; i++)
		json_array_append_new(data, v[i]);
	free(v);
}

static const char *
fmt_time(json_t *v, char *buf, size_t len)
{
	struct tm	 tm;
	time_t		 t;
	long long	 ago;
	char		 d[32];

	if (!json_is_integer(v))
		return (jtext(v, buf, len));
	t = (time_t)json_integer_value(v);
	if (t <= 0)
		return (jtext(NULL, buf, len));
	ago = (long long)(time(NULL) - t);
	if (ago >= 0 && ago < 86400)
		snprintf(buf, len, "%s ago", fmt_duration(ago, d, sizeof(d)));
	else {
		localtime_r(&t, &tm);
		strftime(buf, len, "%Y-%m-%d %H:%M", &tm);
	}
	return (buf);
}

/* "app=1.0.0,boot=2.1" from an array of {name,version} or an object. */
static const char *
fmt_components(json_t *v, char *buf, size_t len)
{
	json_t		*c, *val;
	const char	*k;
	size_t		 i, off = 0;
	int		 n;

	buf[0] = '\0';
	if (json_is_array(v)) {
		json_array_foreach(v, i, c) {
			n = snprintf(buf + off, len - off, "%s%s=%s",
			    off ? "," : "",
			    jstr(jget(c, "name", "component", NULL)),
			    jstr(jget(c, "version", NULL)));
			if (n < 0 || (size_t)n >= len - off)
				break;
			off += (size_t)n;
		}
	} else if (json_is_object(v)) {
		json_object_foreach(v, k, val) {
			n = snprintf(buf + off, len - off, "%s%s=%s",
			    off ? "," : "", k, jstr(val));
			if (n < 0 || (size_t)n >= len - off)
				break;
			off += (size_t)n;
		}
	}
	if (buf[0] == '\0')
		snprintf(buf, len, "-");
	return (buf);
}

/*
 * Prints any JSON value for people: scalars as "key: value", arrays of
 * objects as a table of their scalar fields, objects indented.
 */
static void	 print_value(const char *, json_t *, int);

static void
print_table(json_t *rows, int indent)
{
	const char	*k, *keys[16];
	json_t		*row, *v;
	char		 buf[64];
	size_t		 i, nkeys = 0, j;
	int		 width[16];

	row = json_array_get(rows, 0);
	json_object_foreach(row, k, v) {
		if (json_is_object(v) || json_is_array(v) || nkeys == 16)
			continue;
		keys[nkeys] = k;
		width[nkeys] = (int)strlen(k);
		nkeys++;
	}
	json_array_foreach(rows, i, row)
		for (j = 0; j < nkeys; j++) {
			jtext(json_object_get(row, keys[j]), buf, sizeof(buf));
			if ((int)strlen(buf) > width[j])
				width[j] = (int)strlen(buf);
		}
	printf("%*s", indent, "");
	for (j = 0; j < nkeys; j++)
		printf("%-*s  ", width[j], keys[j]);
	printf("\n");
	json_array_foreach(rows, i, row) {
		printf("%*s", indent, "");
		for (j = 0; j < nkeys; j++)
			printf("%-*s  ", width[j], jtext(json_object_get(row,
			    keys[j]), buf, sizeof(buf)));
		printf("\n");
	}
}

static void
print_value(const char *key, json_t *v, int indent)
{
	const char	*k;
	json_t		*e;
	char		 buf[256];
	size_t		 i;

	if (json_is_object(v)) {
		if (key != NULL)
			printf("%*s%s:\n", indent, "", key);
		json_object_foreach(v, k, e)
			print_value(k, e, indent + (key != NULL ? 2 : 0));
	} else if (json_is_array(v)) {
		printf("%*s%s:%s\n", indent, "", key != NULL ? key : "",
		    json_array_size(v) == 0 ? " none" : "");
		if (json_is_object(json_array_get(v, 0)))
			print_table(v, indent + 2);
		else
			json_array_foreach(v, i, e)
				printf("%*s%s\n", indent + 2, "",
				    jtext(e, buf, sizeof(buf)));
	} else
		printf("%*s%-20s %s\n", indent, "", key != NULL ? key : "",
		    jtext(v, buf, sizeof(buf)));
}

/*
 * A transport whose nodes are served one by one (docs/engine.md, "Link
 * shapes"): its slots, polls and each peer (a connection, a polled
 * node), at most 32 of them here; --json has them all.
 */
static void
print_peers(json_t *t)
{
	json_t		*sh = json_object_get(t, "shape"), *peers, *p, *v;
	char		 a[64], b[64], n[256], d[64];
	size_t		 i;

	peers = json_object_get(t, "peers");
	if (!json_is_object(sh) || (json_array_size(peers) == 0 &&
	    jnum(json_object_get(sh, "polls")) == 0))
		return;
	printf("%-12s  %.0f of %.0f slots in use, %.0f queued; %.0f peers "
	    "(%.0f up); %.0f polls (%.0f empty)\n", "",
	    jnum(json_object_get(sh, "served")),
	    jnum(json_object_get(sh, "slots")),
	    jnum(json_object_get(sh, "queued")),
	    (double)json_array_size(peers),
	    jnum(json_object_get(sh, "peers_up")),
	    jnum(json_object_get(sh, "polls")),
	    jnum(json_object_get(sh, "polls_empty")));
	json_array_foreach(peers, i, p) {
		if (i == 32) {
			printf("%-12s  ... %zu more (--json)\n", "",
			    json_array_size(peers) - 32);
			break;
		}
		v = json_object_get(p, "node");
		snprintf(n, sizeof(n), "%s", "");
		if (v != NULL)
			snprintf(n, sizeof(n), " node %s session %s %s",
			    jtext(v, a, sizeof(a)),
			    jtext(json_object_get(p, "session"), b,
			    sizeof(b)), jtext(json_object_get(p, "step"), d,
			    sizeof(d)));
		else if (*jtext(json_object_get(p, "step"), d, sizeof(d)))
			snprintf(n, sizeof(n), " %s", d);
		printf("%-12s  peer %-20s %-10s mtu %-4.0f%s; %.0f connects, "
		    "%.0f drops, %.0f fails\n", "",
		    jtext(json_object_get(p, "addr"), a, sizeof(a)),
		    jtext(json_object_get(p, "state"), b, sizeof(b)),
		    jnum(json_object_get(p, "mtu")), n,
		    jnum(json_object_get(p, "connects")),
		    jnum(json_object_get(p, "drops")),
		    jnum(json_object_get(p, "fails")));
	}
}

/* The engine's part of status: campaigns, sessions, each transport. */
static void
print_fanout(json_t *f)
{
	json_t		*c, *r, *t, *caps, *stats;
	const char	*k;
	char		 a[64], b[64], d[64];
	size_t		 i;

	c = json_object_get(f, "campaigns");
	if (json_is_object(c))
		printf("%-12s%.0f active (%.0f running, %.0f waiting, %.0f "
		    "paused), %.0f sessions\n", "campaigns",
		    jnum(json_object_get(c, "active")),
		    jnum(json_object_get(c, "running")),
		    jnum(json_object_get(c, "waiting")),
		    jnum(json_object_get(c, "paused")),
		    jnum(json_object_get(f, "sessions")));
	r = json_object_get(f, "results");
	if (json_is_object(r))
		printf("%-12s%.0f final, %.0f duplicates, %.0f conflicting, "
		    "%.0f reports\n", "results",
		    jnum(json_object_get(r, "final")),
		    jnum(json_object_get(r, "duplicates")),
		    jnum(json_object_get(r, "conflicting")),
		    jnum(json_object_get(r, "reports")));
	json_array_foreach(json_object_get(f, "transports"), i, t) {
		caps = json_object_get(t, "caps");
		stats = json_object_get(t, "stats");
		printf("%-12s%s (%s) %s, mtu %.0f, %s, node silence limit "
		    "%.0f s\n", i == 0 ?
		    "transports" : "", jtext(json_object_get(t, "name"), a,
		    sizeof(a)), jtext(json_object_get(t, "type"), b,
		    sizeof(b)), json_is_true(json_object_get(t, "up")) ?
		    "up" : "DOWN", jnum(json_object_get(caps, "mtu")),
		    fmt_rate(jnum(json_object_get(caps, "bitrate_bps")), d,
		    sizeof(d)), jnum(json_object_get(t,
		    "node_silence_ms")) / 1000);
		printf("%-12s  tx %.0f frames, %s; rx %.0f frames, %s; "
		    "%.0f errors\n", "",
		    jnum(json_object_get(stats, "tx_frames")),
		    fmt_bytes(jnum(json_object_get(stats, "tx_bytes")), a,
		    sizeof(a)), jnum(json_object_get(stats, "rx_frames")),
		    fmt_bytes(jnum(json_object_get(stats, "rx_bytes")), b,
		    sizeof(b)), jnum(json_object_get(stats, "tx_errors")) +
		    jnum(json_object_get(stats, "rx_errors")));
		print_peers(t);
	}
	/* Anything else the engine adds, shown as it comes. */
	json_object_foreach(f, k, t) {
		if (strcmp(k, "campaigns") == 0 || strcmp(k, "results") == 0 ||
		    strcmp(k, "transports") == 0 || strcmp(k, "sessions") == 0 ||
		    strcmp(k, "nodes") == 0)
			continue;
		print_value(k, t, 0);
	}
}

static void
print_status(json_t *data, char **argv)
{
	json_t		*st = json_array_get(data, 0), *u, *c, *f;
	char		 a[64], b[64], d[64];

	printf("%-12s%s (upbridged %s, pid %s)\n", "gateway",
	    jtext(json_object_get(st, "gateway"), a, sizeof(a)),
	    jtext(json_object_get(st, "version"), b, sizeof(b)),
	    jtext(json_object_get(st, "pid"), d, sizeof(d)));
	printf("%-12s%s (since %s)\n", "uptime",
	    fmt_duration((long long)jnum(json_object_get(st, "uptime_s")), a,
	    sizeof(a)), jtext(json_object_get(st, "started"), b, sizeof(b)));
	printf("%-12s%s known\n", "nodes",
	    jtext(json_object_get(st, "nodes"), a, sizeof(a)));

	u = json_object_get(st, "uplink");
	printf("%-12s%s\n", "cloud", jtext(json_object_get(u, "url"), a,
	    sizeof(a)));
	printf("%-12s%s manifests (%.0f rejected), %.0f downloads, %s "
	    "received\n", "", jtext(json_object_get(u, "manifests"), a,
	    sizeof(a)), jnum(json_object_get(u, "manifest_rejects")),
	    jnum(json_object_get(u, "downloads_done")),
	    fmt_bytes(jnum(json_object_get(u, "bytes_down")), b, sizeof(b)));
	printf("%-12s%.0f reports pending, %.0f delivered, %.0f HTTP "
	    "errors\n", "", jnum(json_object_get(u, "reports_pending")),
	    jnum(json_object_get(u, "reports_acked")),
	    jnum(json_object_get(u, "http_errors")));
	if (json_is_string(json_object_get(u, "last_error")))
		printf("%-12slast error: %s\n", "",
		    json_string_value(json_object_get(u, "last_error")));

	c = json_object_get(st, "cache");
	printf("%-12s%s used", "cache",
	    fmt_bytes(jnum(json_object_get(c, "used")), a, sizeof(a)));
	if (jnum(json_object_get(c, "quota")) > 0)
		printf(" of %s", fmt_bytes(jnum(json_object_get(c, "quota")),
		    b, sizeof(b)));
	printf(", %.0f blobs, %s pinned, %.0f evictions\n",
	    jnum(json_object_get(c, "blobs")),
	    fmt_bytes(jnum(json_object_get(c, "pinned")), d, sizeof(d)),
	    jnum(json_object_get(c, "evictions")));

	f = json_object_get(st, "fanout");
	if (json_is_object(f) && json_object_size(f) > 0)
		print_fanout(f);
}

/*
 * Which campaign holds a node: "dep-a", "dep-a (held)" for an image held
 * at verified, "dep-a (waits)" when another campaign has it first, "-".
 */
static const char *
fmt_held(json_t *n, char *buf, size_t len)
{
	json_t	*c = json_array_get(json_object_get(n, "campaigns"), 0);
	char	 id[64];

	if (!json_is_object(c)) {
		snprintf(buf, len, "-");
		return (buf);
	}
	jtext(json_object_get(c, "campaign"), id, sizeof(id));
	if (json_is_true(json_object_get(c, "parked")))
		snprintf(buf, len, "%s (waits)", id);
	else if (json_is_true(json_object_get(c, "hold")) &&
	    strcmp(jstr(json_object_get(c, "state")), "verified") == 0)
		snprintf(buf, len, "%s (held)", id);
	else
		snprintf(buf, len, "%s", id);
	return (buf);
}

static void
print_nodes(json_t *data, char **argv)
{
	json_t	*n;
	char	 id[32], hw[40], tp[40], addr[64], comp[256], bat[16],
		 rssi[16], seen[40], held[72];
	size_t	 i;

	printf("%-18s  %-12s  %-8s  %-21s  %-24s  %4s  %5s  %-14s  %s\n",
	    "ID", "HW", "LINK", "ADDRESS", "COMPONENTS", "BAT", "RSSI",
	    "LAST SEEN", "CAMPAIGN");
	json_array_foreach(data, i, n) {
		fmt_node(jget(n, "id", "node", NULL), id, sizeof(id));
		jtext(jget(n, "hw", NULL), hw, sizeof(hw));
		jtext(jget(n, "transport", NULL), tp, sizeof(tp));
		jtext(jget(n, "addr", "addr_text", "address", NULL), addr,
		    sizeof(addr));
		fmt_components(jget(n, "components", "comp", NULL), comp,
		    sizeof(comp));
		if (!json_is_integer(jget(n, "battery", NULL)) ||
		    json_integer_value(jget(n, "battery", NULL)) > 100)
			snprintf(bat, sizeof(bat), "-");
		else
			snprintf(bat, sizeof(bat), "%d%%", (int)
			    json_integer_value(jget(n, "battery", NULL)));
		if (!json_is_integer(jget(n, "rssi_dbm", "rssi", NULL)) ||
		    json_integer_value(jget(n, "rssi_dbm", "rssi", NULL)) >=
		    INT16_MAX)
			snprintf(rssi, sizeof(rssi), "-");
		else
			snprintf(rssi, sizeof(rssi), "%d", (int)
			    json_integer_value(jget(n, "rssi_dbm", "rssi",
			    NULL)));
		fmt_time(jget(n, "last_seen_unix", "last_seen", NULL), seen,
		    sizeof(seen));
		fmt_held(n, held, sizeof(held));
		printf("%-18s  %-12s  %-8s  %-21s  %-24s  %4s  %5s  %-14s  "
		    "%s\n", id, hw, tp, addr, comp, bat, rssi, seen, held);
	}
	if (json_array_size(data) == 0)
		printf("(no nodes known yet)\n");
}

static void
print_node(json_t *data, char **argv)
{
	json_t	*n = json_array_get(data, 0);

	if (argv[1] != NULL && strcmp(argv[1], "reset") == 0) {
		printf("node %s: reset, %.0f campaign membership%s released\n",
		    argv[0], jnum(json_object_get(n, "released")),
		    jnum(json_object_get(n, "released")) == 1 ? "" : "s");
		return;
	}
	if (argv[1] != NULL) {
		printf("node %s: %s %s%s%s\n", argv[0], argv[1], argv[2],
		    argv[3] != NULL ? " " : "", argv[3] != NULL ? argv[3] :
		    "");
		return;
	}
	print_value(NULL, n, 0);
}

/* A rollout (scheduler campaign): state, stages, items. */
static void
print_rollout(json_t *c)
{
	json_t		*v, *r;
	const char	*k;
	char		 a[64], b[64], d[64], e[64], g[64], h[64], p[64];
	char		 buf[256];
	size_t		 i;

	json_object_foreach(c, k, v)
		if (!json_is_object(v) && !json_is_array(v))
			printf("%-14s%s\n", k, jtext(v, buf, sizeof(buf)));
	/* Names of the target that match no node yet. */
	json_array_foreach(json_object_get(c, "warnings"), i, v)
		printf("%-14s%s\n", i == 0 ? "WARNING" : "", jtext(v, buf,
		    sizeof(buf)));
	printf("\n%-12s  %-8s  %5s  %5s  %5s  %5s  %5s  %5s  %5s  %5s  %s\n",
	    "STAGE", "STATE", "NODES", "PEND", "ACT", "OK", "FAIL", "SKIP",
	    "CANC", "EXP", "SUCCESS");
	json_array_foreach(json_object_get(c, "stages"), i, r)
		printf("%-12s  %-8s  %5.0f  %5.0f  %5.0f  %5.0f  %5.0f  %5.0f  "
		    "%5.0f  %5.0f  %.0f%%\n", jtext(json_object_get(r, "name"),
		    a, sizeof(a)),
		    jtext(json_object_get(r, "state"), b, sizeof(b)),
		    jnum(json_object_get(r, "nodes")),
		    jnum(json_object_get(r, "pending")),
		    jnum(json_object_get(r, "active")),
		    jnum(json_object_get(r, "succeeded")),
		    jnum(json_object_get(r, "failed")),
		    jnum(json_object_get(r, "skipped")),
		    jnum(json_object_get(r, "cancelled")),
		    jnum(json_object_get(r, "expired")),
		    jnum(json_object_get(r, "success_rate")));
	printf("\n%-18s  %-8s  %-17s  %-6s  %-10s  %-11s  %-10s  %3s  %s\n",
	    "NODE", "COMP", "FROM -> TO", "PATH", "STAGE", "STATE", "RESULT",
	    "TRY", "REASON");
	json_array_foreach(json_object_get(c, "items"), i, r) {
		snprintf(d, sizeof(d), "%s -> %s", jtext(json_object_get(r,
		    "from"), e, sizeof(e)), jtext(json_object_get(r, "to"), g,
		    sizeof(g)));
		/* One buffer per column: printf reads them all at once. */
		printf("%-18s  %-8s  %-17s  %-6s  %-10s  %-11s  %-10s  %3.0f  "
		    "%s\n", fmt_node(json_object_get(r, "node"), a, sizeof(a)),
		    jtext(json_object_get(r, "component"), b, sizeof(b)), d,
		    jtext(json_object_get(r, "path"), p, sizeof(p)),
		    jtext(json_object_get(r, "stage"), g, sizeof(g)),
		    jtext(json_object_get(r, "state"), h, sizeof(h)),
		    jtext(json_object_get(r, "result_str"), e, sizeof(e)),
		    jnum(json_object_get(r, "retries")),
		    jtext(json_object_get(r, *jtext(json_object_get(r,
		    "reason"), buf, sizeof(buf)) != '\0' ? "reason" : "wait"),
		    buf, sizeof(buf)));
	}
}

/*
 * "3 nodes: 2 updated, 1 failed" from the flat counts of a campaign (or
 * a "counts" object), leaving out the zeros.
 */
static const char *
fmt_counts(json_t *c, char *buf, size_t len)
{
	static const char *const flat[] = { "active", "updated", "failed",
	    "declined", "cancelled", NULL };
	json_t		*counts, *v;
	const char	*k;
	size_t		 off = 0, i;
	int		 n;

	buf[0] = '\0';
	if (json_is_number(v = json_object_get(c, "nodes"))) {
		n = snprintf(buf, len, "%.0f node%s:", jnum(v),
		    jnum(v) == 1 ? "" : "s");
		if (n > 0 && (size_t)n < len)
			off = (size_t)n;
	}
	counts = json_object_get(c, "counts");
	if (!json_is_object(counts))
		counts = c;
	json_object_foreach(counts, k, v) {
		for (i = 0; counts == c && flat[i] != NULL; i++)
			if (strcmp(flat[i], k) == 0)
				break;
		if ((counts == c && flat[i] == NULL) || !json_is_number(v) ||
		    jnum(v) == 0)
			continue;
		n = snprintf(buf + off, len - off, "%s %.0f %s",
		    off > 0 && buf[off - 1] != ':' ? "," : "", jnum(v), k);
		if (n < 0 || (size_t)n >= len - off)
			break;
		off += (size_t)n;
	}
	if (buf[0] == '\0')
		snprintf(buf, len, "-");
	return (buf);
}

static void
print_campaigns(json_t *data, char **argv)
{
	json_t	*c;
	char	 id[72], pkg[72], state[32], counts[256];
	size_t	 i;

	printf("%-16s  %-24s  %-15s  %s\n", "ID", "PACKAGE", "STATE",
	    "NODES");
	json_array_foreach(data, i, c) {
		printf("%-16s  %-24s  %-15s  %s\n",
		    jtext(jget(c, "id", "campaign", NULL), id, sizeof(id)),
		    jtext(jget(c, "package", "pkg", NULL), pkg, sizeof(pkg)),
		    jtext(jget(c, "state", NULL), state, sizeof(state)),
		    fmt_counts(c, counts, sizeof(counts)));
	}
	if (json_array_size(data) == 0)
		printf("(no campaigns)\n");
}

static void
print_campaign(json_t *data, char **argv)
{
	json_t		*c = json_array_get(data, 0), *v, *r;
	const char	*k;
	char		 buf[256], a[64], b[64], d[64], e[64], g[64];
	size_t		 i;

	if (argv[1] != NULL && strcmp(argv[1], "export") == 0) {
		v = json_object_get(c, "csv");
		fputs(json_is_string(v) ? json_string_value(v) : "", stdout);
		return;
	}
	if (argv[1] != NULL) {
		printf("campaign %s: %s done\n", argv[0], argv[1]);
		return;
	}
	if (json_is_string(v = json_object_get(c, "kind")) &&
	    strcmp(json_string_value(v), "rollout") == 0) {
		print_rollout(c);
		return;
	}
	if (json_is_string(v) && strcmp(json_string_value(v), "refused") == 0) {
		printf("campaign %s: refused (manifest %.0f, %s): %s\n",
		    argv[0], jnum(json_object_get(c, "manifest_serial")),
		    jtext(json_object_get(c, "refused"), a, sizeof(a)),
		    jtext(json_object_get(c, "reason"), buf, sizeof(buf)));
		return;
	}
	/* Scalars first, then sessions and nodes as tables. */
	json_object_foreach(c, k, v)
		if (!json_is_object(v) && !json_is_array(v))
			printf("%-14s%s\n", k, jtext(v, buf, sizeof(buf)));
	v = json_object_get(c, "sessions");
	if (json_array_size(v) > 0) {
		printf("\n%-10s  %-8s  %-10s  %-15s  %4s  %10s  %s\n",
		    "SESSION", "LINK", "PHASE", "BLOCKS", "PASS", "SENT",
		    "RATE");
		json_array_foreach(v, i, r) {
			snprintf(d, sizeof(d), "%.0f/%.0f needed",
			    jnum(json_object_get(r, "needed")),
			    jnum(json_object_get(r, "nblocks")));
			printf("%-10s  %-8s  %-10s  %-15s  %4.0f  %10s  %s\n",
			    jtext(json_object_get(r, "session"), a, sizeof(a)),
			    jtext(json_object_get(r, "transport"), b,
			    sizeof(b)), jtext(json_object_get(r, "phase"), buf,
			    sizeof(buf)), d, jnum(json_object_get(r, "pass")),
			    fmt_bytes(jnum(json_object_get(r, "bytes_sent")), e,
			    sizeof(e)), fmt_rate(jnum(json_object_get(r,
			    "rate_bps")), g, sizeof(g)));
		}
	}
	v = json_object_get(c, "nodes");
	if (json_is_array(v)) {
		printf("\n%-18s  %-8s  %-11s  %-17s  %-13s  %5s  %s\n", "NODE",
		    "LINK", "STATE", "BLOCKS", "RESULT", "TRIES", "DURATION");
		json_array_foreach(v, i, r) {
			snprintf(d, sizeof(d), "%.0f/%.0f %3.0f%%",
			    jnum(json_object_get(r, "held")),
			    jnum(json_object_get(r, "nblocks")),
			    jnum(json_object_get(r, "pct")));
			if (jnum(json_object_get(r, "duration_ms")) > 0)
				snprintf(e, sizeof(e), "%.1f s", jnum(
				    json_object_get(r, "duration_ms")) / 1000);
			else
				snprintf(e, sizeof(e), "-");
			printf("%-18s  %-8s  %-11s  %-17s  %-13s  %5.0f  %s\n",
			    fmt_node(json_object_get(r, "node"), a, sizeof(a)),
			    jtext(json_object_get(r, "transport"), b,
			    sizeof(b)), jtext(json_object_get(r, "state"), buf,
			    sizeof(buf)), d, jtext(jget(r, "result_str",
			    "result", NULL), g, sizeof(g)),
			    jnum(json_object_get(r, "tries")), e);
		}
	}
	json_object_foreach(c, k, v)
		if ((json_is_object(v) || json_is_array(v)) &&
		    strcmp(k, "sessions") != 0 && strcmp(k, "nodes") != 0)
			print_value(k, v, 0);
}

static void
print_done(json_t *data, char **argv)
{
	printf("manifest poll requested\n");
}

/* ------------------------------------------------------------------ */
/* watch                                                              */

/*
 * One frame of progress bars; returns the number of lines drawn.  The
 * daemon's "pct" of a receiving node is an estimate between its reports
 * when "held_est" is true: the part the node confirmed ("held") is drawn
 * '#', the estimated rest '=', and the percentage gets a '~'.
 */
static int
watch_draw(json_t *rows)
{
	json_t	*r;
	char	 camp[40], node[32], state[16], rate[32];
	char	 bar[UPCTL_BAR_WIDTH + 1];
	double	 pct, held, nblocks, sure;
	size_t	 i;
	int	 lines = 0, fill, sure_fill, j, est;

	if (json_array_size(rows) == 0) {
		printf("no active campaign\n");
		return (1);
	}
	printf("%-16s  %-18s  %-11s  %-*s  %6s  %s\n", "CAMPAIGN", "NODE",
	    "STATE", UPCTL_BAR_WIDTH + 2, "PROGRESS", "", "RATE");
	lines++;
	json_array_foreach(rows, i, r) {
		/* A rollout between nodes: soaking, approval, a window. */
		if (json_is_string(json_object_get(r, "kind"))) {
			printf("%-16s  %-18s  %-11s  %s%s%s\n",
			    jtext(json_object_get(r, "campaign"), camp,
			    sizeof(camp)), "(rollout)",
			    jtext(json_object_get(r, "state"), state,
			    sizeof(state)), jstr(json_object_get(r, "stage")),
			    *jstr(json_object_get(r, "reason")) != '\0' ?
			    ": " : "", jstr(json_object_get(r, "reason")));
			lines++;
			continue;
		}
		held = jnum(json_object_get(r, "held"));
		nblocks = jnum(json_object_get(r, "nblocks"));
		sure = nblocks > 0 ? 100.0 * held / nblocks : 0;
		if (json_is_number(json_object_get(r, "pct")))
			pct = jnum(json_object_get(r, "pct"));
		else
			pct = sure;
		if (pct < 0)
			pct = 0;
		if (pct > 100)
			pct = 100;
		est = json_is_true(json_object_get(r, "held_est"));
		if (!est || sure > pct)
			sure = pct;
		fill = (int)(pct * UPCTL_BAR_WIDTH / 100 + 0.5);
		sure_fill = (int)(sure * UPCTL_BAR_WIDTH / 100 + 0.5);
		for (j = 0; j < UPCTL_BAR_WIDTH; j++)
			bar[j] = j < sure_fill ? '#' : j < fill ? '=' : '.';
		bar[UPCTL_BAR_WIDTH] = '\0';
		if (json_is_number(json_object_get(r, "rate_bps")) &&
		    jnum(json_object_get(r, "rate_bps")) > 0)
			fmt_rate(jnum(json_object_get(r, "rate_bps")), rate,
			    sizeof(rate));
		else
			snprintf(rate, sizeof(rate), "-");
		printf("%-16s  %-18s  %-11s  [%s]  %c%5.1f%%  %s\n",
		    jtext(json_object_get(r, "campaign"), camp, sizeof(camp)),
		    fmt_node(json_object_get(r, "node"), node, sizeof(node)),
		    jtext(json_object_get(r, "state"), state, sizeof(state)),
		    bar, est ? '~' : ' ', pct, rate);
		lines++;
	}
	return (lines);
}

static int
upctl_watch(struct upctl_conn *cn, int once, int until_idle)
{
	json_t		*rec, *rows;
	const char	*err;
	int		 tty = isatty(STDOUT_FILENO), lines = 0, idle;
	char		*s;

	upctl_send(cn, 1, "watch", 0, NULL);
	for (;;) {
		rec = upctl_next(cn, UPCTL_WATCH_TIMEOUT_MS);
		if (json_is_true(json_object_get(rec, "end"))) {
			err = upctl_end_error(rec);
			if (err != NULL) {
				s = xstrdup(err);
				json_decref(rec);
				die("%s", s);
			}
			json_decref(rec);
			return (UPCTL_EXIT_OK);
		}
		if (!json_is_array(rows = json_object_get(rec, "progress"))) {
			json_decref(rec);
			continue;
		}
		idle = json_array_size(rows) == 0;
		if (json_out) {
			s = json_dumps(rows, JSON_COMPACT);
			printf("%s\n", s != NULL ? s : "[]");
			free(s);
		} else {
			/* Redraw in place: up over the last frame, clear. */
			if (tty && lines > 0)
				printf("\033[%dA\033[J", lines);
			else if (lines > 0)
				printf("\n");
			lines = watch_draw(rows);
		}
		fflush(stdout);
		json_decref(rec);
		if (once || (until_idle && idle))
			return (UPCTL_EXIT_OK);
	}
}

/* ------------------------------------------------------------------ */

int
main(int argc, char *argv[])
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "once", no_argument, NULL, 'o' },
		{ "until-idle", no_argument, NULL, 'u' },
		{ "csv", no_argument, NULL, 'c' },
		{ "socket", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	const struct upctl_cmd	*c;
	struct upctl_conn	 cn;
	const char		*sock = CTL_SOCKET_DEFAULT;
	json_t			*data, *out;
	char			*s;
	const char		*cmd;
	char			*rargv[5];
	int			 ch, once = 0, until_idle = 0, nargs, rc;
	int			 csv = 0;

	while ((ch = getopt_long(argc, argv, "hjs:", longopts, NULL)) != -1) {
		switch (ch) {
		case 'j':
			json_out = 1;
			break;
		case 'o':
			once = 1;
			break;
		case 'u':
			until_idle = 1;
			break;
		case 'c':
			csv = 1;
			break;
		case 's':
			sock = optarg;
			break;
		default:
			usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 1)
		usage();
	for (c = upctl_cmds; c->name != NULL; c++)
		if (strcmp(c->name, argv[0]) == 0)
			break;
	if (c->name == NULL) {
		fprintf(stderr, "upctl: unknown command \"%s\"\n", argv[0]);
		usage();
	}
	nargs = argc - 1;
	if (nargs < c->args_min || nargs > c->args_max) {
		fprintf(stderr, "usage: upctl %s %s\n", c->name, c->usage);
		exit(UPCTL_EXIT_USAGE);
	}
	if ((once || until_idle) && strcmp(c->name, "watch") != 0) {
		fprintf(stderr, "upctl: --once and --until-idle go with "
		    "watch\n");
		exit(UPCTL_EXIT_USAGE);
	}
	if (once && until_idle) {
		fprintf(stderr, "upctl: --once or --until-idle, not both\n");
		exit(UPCTL_EXIT_USAGE);
	}
	if (strcmp(c->name, "campaign") == 0 && nargs == 2 &&
	    strcmp(argv[2], "pause") != 0 && strcmp(argv[2], "resume") != 0 &&
	    strcmp(argv[2], "cancel") != 0 &&
	    strcmp(argv[2], "approve") != 0 &&
	    strcmp(argv[2], "force-cancel") != 0 &&
	    strcmp(argv[2], "export") != 0) {
		fprintf(stderr, "usage: upctl campaign %s\n", c->usage);
		exit(UPCTL_EXIT_USAGE);
	}
	if (csv && (strcmp(c->name, "campaign") != 0 || nargs != 2 ||
	    strcmp(argv[2], "export") != 0)) {
		fprintf(stderr, "upctl: --csv goes with campaign ID export\n");
		exit(UPCTL_EXIT_USAGE);
	}
	/* node ID tag add|del TAG, node ID topology PARENT ROLE [LEVEL] */
	cmd = c->name;
	memset(rargv, 0, sizeof(rargv));
	if (strcmp(c->name, "node") == 0 && nargs > 1) {
		if (strcmp(argv[2], "tag") == 0 && nargs == 4)
			cmd = "node-tag";
		else if (strcmp(argv[2], "topology") == 0 &&
		    (nargs == 4 || nargs == 5))
			cmd = "node-topology";
		else if (strcmp(argv[2], "reset") == 0 && nargs == 2)
			cmd = "node-reset";
		else {
			fprintf(stderr, "usage: upctl node %s\n", c->usage);
			exit(UPCTL_EXIT_USAGE);
		}
		/* The daemon's command takes ID then the rest. */
		rargv[0] = argv[1];
		for (rc = 3; rc <= nargs; rc++)
			rargv[rc - 2] = argv[rc];
	}

	upctl_connect(&cn, sock);
	if (strcmp(c->name, "watch") == 0) {
		rc = upctl_watch(&cn, once, until_idle);
		close(cn.fd);
		free(cn.buf);
		return (rc);
	}

	if (cmd != c->name)
		data = upctl_request(&cn, cmd, nargs - 1, rargv);
	else
		data = upctl_request(&cn, c->name, nargs, argv + 1);
	close(cn.fd);
	free(cn.buf);
	if (strcmp(c->name, "nodes") == 0)
		sort_nodes(data);
	if (cmd != c->name) {
		/* node tag/topology/reset: "node ID: tag add X" */
		if (json_out && json_is_object(json_array_get(data, 0))) {
			s = json_dumps(json_array_get(data, 0),
			    JSON_INDENT(2));
			printf("%s\n", s != NULL ? s : "{}");
			free(s);
		} else if (json_out)
			printf("{\"status\": \"%s\"}\n", CTL_STATUS_OK);
		else
			print_node(data, argv + 1);
	} else if (strcmp(c->name, "campaign") == 0 && nargs == 2 &&
	    strcmp(argv[2], "export") == 0)
		/* CSV is the export's format, with or without --json. */
		print_campaign(data, argv + 1);
	else if (json_out) {
		if (c->shape == UPCTL_ARRAY)
			out = json_incref(data);
		else if (c->shape == UPCTL_OBJECT &&
		    json_array_size(data) > 0)
			out = json_incref(json_array_get(data, 0));
		else
			out = json_pack("{s:s}", "status", CTL_STATUS_OK);
		s = json_dumps(out, JSON_INDENT(2) | JSON_ENCODE_ANY);
		printf("%s\n", s != NULL ? s : "null");
		free(s);
		json_decref(out);
	} else
		c->print(data, argv + 1);
	json_decref(data);
	return (UPCTL_EXIT_OK);
}
