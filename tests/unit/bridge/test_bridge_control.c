/*
 * test_bridge_control.c: the control socket (bridge/control.c and the
 * ctl_*.c command families) on a real UNIX socket and event loop, in
 * front of a fake engine: the fanout_*, registry_*, uplink and cache
 * functions the commands call are defined here, so the test checks the
 * socket, the protocol and the command table alone, and can count what
 * a request changed.
 *
 * Every bad request must get an error end record and change nothing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "upbridged.h"
#include "ctl_proto.h"

/* ------------------------------------------------------------------ */
/* The fake engine                                                    */

static struct {
	int	 pauses, resumes, cancels, polls, resets;
	int	 status_calls;
	size_t	 status_pad;	/* bytes of filler in status */
	int	 progress_rows;
} fake;

static struct registry_node fake_nodes[2];

json_t *
fanout_status_json(struct fanout *f)
{
	json_t	*o;
	char	*pad;

	fake.status_calls++;
	o = json_pack("{s:s,s:i}", "engine", "fake", "sessions", 2);
	if (fake.status_pad > 0) {
		pad = malloc(fake.status_pad + 1);
		memset(pad, 'x', fake.status_pad);
		pad[fake.status_pad] = '\0';
		json_object_set_new(o, "pad", json_string(pad));
		free(pad);
	}
	return (o);
}

json_t *
fanout_campaigns_json(struct fanout *f)
{
	return (json_pack("[{s:s,s:s},{s:s,s:s}]", "id", "c1", "state",
	    "active", "id", "c2", "state", "done"));
}

json_t *
fanout_campaign_json(struct fanout *f, const char *id)
{
	if (strcmp(id, "c1") != 0)
		return (NULL);
	return (json_pack("{s:s,s:[{s:s}]}", "id", "c1", "nodes", "node",
	    "0x0000000000000001"));
}

json_t *
fanout_progress_json(struct fanout *f)
{
	json_t	*a = json_array();
	int	 i;

	for (i = 0; i < fake.progress_rows; i++)
		json_array_append_new(a, json_pack("{s:s,s:s,s:s,s:i,s:i}",
		    "campaign", "c1", "node", i == 0 ? "0x0000000000000001" :
		    "0x0000000000000002", "state", "receiving", "held", 5,
		    "nblocks", 10));
	return (a);
}

static int
fake_action(const char *id, int *counter, char **cause)
{
	if (strcmp(id, "c1") != 0) {
		xasprintf(cause, "unknown campaign \"%s\"", id);
		return (-1);
	}
	(*counter)++;
	return (0);
}

int
fanout_campaign_pause(struct fanout *f, const char *id, char **cause)
{
	return (fake_action(id, &fake.pauses, cause));
}

int
fanout_campaign_resume(struct fanout *f, const char *id, char **cause)
{
	return (fake_action(id, &fake.resumes, cause));
}

int
fanout_campaign_cancel(struct fanout *f, const char *id, char **cause)
{
	return (fake_action(id, &fake.cancels, cause));
}

/* Rollouts and node tags (issue 4): none in this fake engine. */
json_t *
fanout_rollout_json(struct fanout *f, const char *id)
{
	return (NULL);
}

char *
fanout_rollout_csv(struct fanout *f, const char *id)
{
	return (NULL);
}

int
fanout_rollout_action(struct fanout *f, const char *id, const char *action,
    char **cause)
{
	return (1);
}

json_t *
fanout_rollouts_json(struct fanout *f)
{
	return (json_array());
}

void
fanout_node_changed(struct fanout *f, uint64_t id)
{
}

json_t *
fanout_node_campaigns_json(struct fanout *f, uint64_t id)
{
	/* Node 1 is held by a rollout's download-only campaign. */
	if (id != 1)
		return (json_array());
	return (json_pack("[{s:s, s:s, s:b}]", "campaign", "dl-only",
	    "state", "verified", "hold", 1));
}

int
fanout_node_reset(struct fanout *f, uint64_t id, char **cause)
{
	if (id != 1 && id != 2) {
		xasprintf(cause, "unknown node 0x%016llx",
		    (unsigned long long)id);
		return (-1);
	}
	fake.resets++;
	return (id == 1 ? 1 : 0);
}

int
registry_tag(struct registry *r, uint64_t id, const char *tag, int add,
    char **cause)
{
	return (0);
}

int
registry_set_topology(struct registry *r, uint64_t id, uint64_t parent,
    uint8_t level, uint8_t role, char **cause)
{
	return (0);
}

const struct registry_node *
registry_get(struct registry *r, uint64_t id)
{
	if (id == 1 || id == 2)
		return (&fake_nodes[id - 1]);
	return (NULL);
}

size_t
registry_count(struct registry *r)
{
	return (2);
}

void
registry_foreach(struct registry *r,
    void (*fn)(void *, const struct registry_node *), void *arg)
{
	fn(arg, &fake_nodes[0]);
	fn(arg, &fake_nodes[1]);
}

json_t *
registry_node_json(const struct registry_node *n)
{
	char	 id[32];

	snprintf(id, sizeof(id), "0x%016llx", (unsigned long long)n->id);
	return (json_pack("{s:s,s:s}", "id", id, "hw", n->hw));
}

void
uplink_stats(struct uplink *u, struct uplink_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->manifests = 3;
	st->bytes_down = 1000;
}

void
uplink_poll_now(struct uplink *u)
{
	fake.polls++;
}

void
cache_usage(struct cache *c, struct cache_usage *u)
{
	memset(u, 0, sizeof(*u));
	u->quota = 1 << 20;
	u->used = 4096;
	u->blobs = 1;
}

/* ------------------------------------------------------------------ */
/* Fixture: an event loop, a control socket, a client                 */

struct fx {
	char			 dir[64];
	char			 path[128];
	struct event_base	*base;
	struct ub_config	 conf;
	struct ub		 ub;
	struct control		*ctl;
	int			 fd;
	char			 buf[1 << 20];
	size_t			 len;
};

static int
client_connect(const char *path)
{
	struct sockaddr_un	 sun;
	int			 fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (fd == -1)
		return (-1);
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		close(fd);
		return (-1);
	}
	return (fd);
}

static int
setup(void **state)
{
	struct fx	*fx;
	char		*cause = NULL;

	fx = calloc(1, sizeof(*fx));
	snprintf(fx->dir, sizeof(fx->dir), "/tmp/ub-ctl-XXXXXX");
	if (mkdtemp(fx->dir) == NULL)
		return (-1);
	/* A directory that does not exist yet: control_new makes it. */
	snprintf(fx->path, sizeof(fx->path), "%s/run/ctl.sock", fx->dir);
	memset(&fake, 0, sizeof(fake));
	fake_nodes[0].id = 1;
	snprintf(fake_nodes[0].hw, sizeof(fake_nodes[0].hw), "hw-a");
	fake_nodes[1].id = 2;
	snprintf(fake_nodes[1].hw, sizeof(fake_nodes[1].hw), "hw-b");

	fx->base = event_base_new();
	fx->conf.gateway_id = "gw-test";
	fx->conf.cloud_url = "https://127.0.0.1/cloud";
	fx->ub.base = fx->base;
	fx->ub.conf = &fx->conf;
	fx->ub.started = 1;
	/* The fakes ignore their object. */
	fx->ub.fanout = (struct fanout *)fx;
	fx->ub.registry = (struct registry *)fx;
	fx->ub.uplink = (struct uplink *)fx;
	fx->ub.cache = (struct cache *)fx;
	fx->ctl = control_new(fx->base, &fx->ub, fx->path, NULL, &cause);
	if (fx->ctl == NULL) {
		fprintf(stderr, "control_new: %s\n", cause);
		return (-1);
	}
	fx->fd = client_connect(fx->path);
	if (fx->fd == -1)
		return (-1);
	*state = fx;
	return (0);
}

static int
teardown(void **state)
{
	struct fx	*fx = *state;
	char		 p[160];

	if (fx->fd != -1)
		close(fx->fd);
	control_free(fx->ctl);
	event_base_free(fx->base);
	snprintf(p, sizeof(p), "%s/run", fx->dir);
	rmdir(p);
	rmdir(fx->dir);
	free(fx);
	return (0);
}

static void
pump(struct fx *fx)
{
	event_base_loop(fx->base, EVLOOP_NONBLOCK);
}

static void
send_raw(struct fx *fx, const char *s, size_t len)
{
	size_t	 off = 0;
	ssize_t	 n;

	while (off < len) {
		n = write(fx->fd, s + off, len - off);
		if (n == -1 && errno == EAGAIN) {
			pump(fx);
			continue;
		}
		assert_true(n > 0);
		off += (size_t)n;
	}
}

static void
send_line(struct fx *fx, const char *s)
{
	send_raw(fx, s, strlen(s));
	send_raw(fx, "\n", 1);
}

/*
 * The next record from the daemon, running its loop meanwhile; NULL on
 * EOF (sets *eof) or after about two seconds.
 */
static json_t *
next_record_eof(struct fx *fx, int *eof)
{
	struct pollfd	 pfd;
	json_error_t	 jerr;
	json_t		*rec;
	char		*nl;
	size_t		 n;
	ssize_t		 r;
	int		 i;

	*eof = 0;
	for (i = 0; i < 2000; i++) {
		if ((nl = memchr(fx->buf, '\n', fx->len)) != NULL) {
			n = (size_t)(nl - fx->buf);
			rec = json_loadb(fx->buf, n, 0, &jerr);
			if (rec == NULL)
				fail_msg("bad record: %s", jerr.text);
			memmove(fx->buf, nl + 1, fx->len - n - 1);
			fx->len -= n + 1;
			return (rec);
		}
		pump(fx);
		pfd.fd = fx->fd;
		pfd.events = POLLIN;
		if (poll(&pfd, 1, 1) <= 0)
			continue;
		r = read(fx->fd, fx->buf + fx->len, sizeof(fx->buf) - fx->len);
		if (r <= 0) {
			*eof = 1;
			return (NULL);
		}
		fx->len += (size_t)r;
	}
	return (NULL);
}

static json_t *
next_record(struct fx *fx)
{
	json_t	*rec;
	int	 eof;

	rec = next_record_eof(fx, &eof);
	if (rec == NULL)
		fail_msg("no record (eof %d)", eof);
	return (rec);
}

/* Expects an error end record with this id (-1: null) and message. */
static void
expect_error(struct fx *fx, const char *line, json_int_t id,
    const char *error)
{
	json_t	*rec;

	send_line(fx, line);
	rec = next_record(fx);
	if (id < 0)
		assert_true(json_is_null(json_object_get(rec, "id")));
	else
		assert_int_equal(json_integer_value(json_object_get(rec, "id")),
		    id);
	assert_true(json_is_true(json_object_get(rec, "end")));
	assert_string_equal(json_string_value(json_object_get(rec, "status")),
	    "error");
	if (strncmp(error, "...", 3) == 0)
		assert_non_null(strstr(json_string_value(json_object_get(rec,
		    "error")), error + 3));
	else
		assert_string_equal(json_string_value(json_object_get(rec,
		    "error")), error);
	json_decref(rec);
}

static void
expect_end_ok(struct fx *fx, json_int_t id)
{
	json_t	*rec;

	rec = next_record(fx);
	assert_int_equal(json_integer_value(json_object_get(rec, "id")), id);
	assert_true(json_is_true(json_object_get(rec, "end")));
	assert_string_equal(json_string_value(json_object_get(rec, "status")),
	    "ok");
	json_decref(rec);
}

/* ------------------------------------------------------------------ */

static void
test_socket_mode(void **state)
{
	struct fx	*fx = *state;
	struct stat	 sb;
	char		*cause = NULL;
	struct control	*second;

	assert_int_equal(stat(fx->path, &sb), 0);
	assert_true(S_ISSOCK(sb.st_mode));
	assert_int_equal(sb.st_mode & 0777, 0660);

	/* Somebody listens there: a second daemon must not steal it. */
	second = control_new(fx->base, &fx->ub, fx->path, NULL, &cause);
	assert_null(second);
	assert_non_null(strstr(cause, "another upbridged is listening"));
	free(cause);
	cause = NULL;

	/* Not a socket: refused, left alone. */
	second = control_new(fx->base, &fx->ub, fx->dir, NULL, &cause);
	assert_null(second);
	assert_non_null(strstr(cause, "exists and is not a socket"));
	free(cause);
	cause = NULL;

	/* An unknown group is an error. */
	second = control_new(fx->base, &fx->ub, "/tmp/ub-nope.sock",
	    "no-such-group-ub", &cause);
	assert_null(second);
	assert_non_null(strstr(cause, "no-such-group-ub"));
	free(cause);
}

static void
test_stale_socket(void **state)
{
	struct fx		*fx = *state;
	struct sockaddr_un	 sun;
	struct control		*ctl;
	char			 path[100], *cause = NULL;
	int			 fd, c;

	/* A socket nobody listens on any more. */
	snprintf(path, sizeof(path), "%s/stale.sock", fx->dir);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	close(fd);
	ctl = control_new(fx->base, &fx->ub, path, NULL, &cause);
	assert_non_null(ctl);
	c = client_connect(path);
	assert_true(c != -1);
	close(c);
	control_free(ctl);
	/* control_free removes its socket. */
	assert_int_equal(access(path, F_OK), -1);
}

static void
test_status(void **state)
{
	struct fx	*fx = *state;
	json_t		*rec, *d;

	send_line(fx, "{\"v\":1,\"id\":7,\"cmd\":\"status\"}");
	rec = next_record(fx);
	assert_int_equal(json_integer_value(json_object_get(rec, "id")), 7);
	d = json_object_get(rec, "data");
	assert_string_equal(json_string_value(json_object_get(d, "gateway")),
	    "gw-test");
	assert_string_equal(json_string_value(json_object_get(d, "version")),
	    UB_VERSION);
	assert_int_equal(json_integer_value(json_object_get(d, "nodes")), 2);
	assert_string_equal(json_string_value(json_object_get(
	    json_object_get(d, "fanout"), "engine")), "fake");
	assert_int_equal(json_integer_value(json_object_get(
	    json_object_get(d, "uplink"), "manifests")), 3);
	assert_int_equal(json_integer_value(json_object_get(
	    json_object_get(d, "cache"), "used")), 4096);
	assert_true(json_integer_value(json_object_get(d, "uptime_s")) > 0);
	json_decref(rec);
	expect_end_ok(fx, 7);

	/* args: [] is fine, and \r\n line ends too. */
	send_line(fx, "{\"v\":1,\"id\":8,\"cmd\":\"refresh\",\"args\":[]}\r");
	expect_end_ok(fx, 8);
	assert_int_equal(fake.polls, 1);
}

static void
test_nodes(void **state)
{
	struct fx	*fx = *state;
	json_t		*rec, *d;

	send_line(fx, "{\"v\":1,\"id\":1,\"cmd\":\"nodes\"}");
	rec = next_record(fx);
	d = json_object_get(rec, "data");
	assert_string_equal(json_string_value(json_object_get(d, "hw")),
	    "hw-a");
	json_decref(rec);
	rec = next_record(fx);
	d = json_object_get(rec, "data");
	assert_string_equal(json_string_value(json_object_get(d, "hw")),
	    "hw-b");
	json_decref(rec);
	expect_end_ok(fx, 1);

	fake.progress_rows = 2;
	send_line(fx, "{\"v\":1,\"id\":2,\"cmd\":\"node\",\"args\":"
	    "[\"0x1\"]}");
	rec = next_record(fx);
	d = json_object_get(rec, "data");
	assert_string_equal(json_string_value(json_object_get(d, "id")),
	    "0x0000000000000001");
	/* Only this node's progress row. */
	assert_int_equal(json_array_size(json_object_get(d, "progress")), 1);
	json_decref(rec);
	expect_end_ok(fx, 2);

	expect_error(fx, "{\"v\":1,\"id\":3,\"cmd\":\"node\",\"args\":[\"9\"]}",
	    3, "unknown node 0x0000000000000009");
	expect_error(fx, "{\"v\":1,\"id\":4,\"cmd\":\"node\",\"args\":"
	    "[\"0x1zz\"]}", 4, "bad node id \"0x1zz\" (decimal or 0x-hex, "
	    "not 0)");
	expect_error(fx, "{\"v\":1,\"id\":5,\"cmd\":\"node\",\"args\":[\"0\"]}",
	    5, "bad node id \"0\" (decimal or 0x-hex, not 0)");

	/* Issue 7: which campaign holds a node, in node and nodes. */
	send_line(fx, "{\"v\":1,\"id\":6,\"cmd\":\"node\",\"args\":"
	    "[\"1\"]}");
	rec = next_record(fx);
	d = json_object_get(rec, "data");
	assert_string_equal(json_string_value(json_object_get(d, "held_by")),
	    "dl-only");
	assert_int_equal(json_array_size(json_object_get(d, "campaigns")), 1);
	json_decref(rec);
	expect_end_ok(fx, 6);
	send_line(fx, "{\"v\":1,\"id\":7,\"cmd\":\"nodes\"}");
	rec = next_record(fx);
	assert_string_equal(json_string_value(json_object_get(
	    json_object_get(rec, "data"), "held_by")), "dl-only");
	json_decref(rec);
	rec = next_record(fx);
	assert_true(json_is_null(json_object_get(json_object_get(rec,
	    "data"), "held_by")));
	json_decref(rec);
	expect_end_ok(fx, 7);

	/* node-reset: released; a bad id is echoed, nothing changes. */
	send_line(fx, "{\"v\":1,\"id\":8,\"cmd\":\"node-reset\",\"args\":"
	    "[\"0x1\"]}");
	rec = next_record(fx);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(
	    rec, "data"), "released")), 1);
	json_decref(rec);
	expect_end_ok(fx, 8);
	assert_int_equal(fake.resets, 1);
	expect_error(fx, "{\"v\":1,\"id\":9,\"cmd\":\"node-reset\",\"args\":"
	    "[\"x7\"]}", 9, "bad node id \"x7\" (decimal or 0x-hex, not 0)");
	expect_error(fx, "{\"v\":1,\"id\":10,\"cmd\":\"node-reset\","
	    "\"args\":[\"9\"]}", 10, "unknown node 0x0000000000000009");
	assert_int_equal(fake.resets, 1);
	expect_error(fx, "{\"v\":1,\"id\":11,\"cmd\":\"node-topology\","
	    "\"args\":[\"0x1\",\"zz\",\"leaf\"]}", 11, "bad parent node id "
	    "\"zz\" (decimal or 0x-hex, 0 for none)");
	expect_error(fx, "{\"v\":1,\"id\":12,\"cmd\":\"node-topology\","
	    "\"args\":[\"q\",\"0\",\"leaf\"]}", 12, "bad node id \"q\" "
	    "(decimal or 0x-hex, not 0)");
}

static void
test_campaigns(void **state)
{
	struct fx	*fx = *state;
	json_t		*rec;

	send_line(fx, "{\"v\":1,\"id\":1,\"cmd\":\"campaigns\"}");
	rec = next_record(fx);
	assert_string_equal(json_string_value(json_object_get(
	    json_object_get(rec, "data"), "id")), "c1");
	json_decref(rec);
	rec = next_record(fx);
	assert_string_equal(json_string_value(json_object_get(
	    json_object_get(rec, "data"), "id")), "c2");
	json_decref(rec);
	expect_end_ok(fx, 1);

	send_line(fx, "{\"v\":1,\"id\":2,\"cmd\":\"campaign\",\"args\":"
	    "[\"c1\"]}");
	rec = next_record(fx);
	assert_int_equal(json_array_size(json_object_get(json_object_get(rec,
	    "data"), "nodes")), 1);
	json_decref(rec);
	expect_end_ok(fx, 2);

	send_line(fx, "{\"v\":1,\"id\":3,\"cmd\":\"campaign\",\"args\":"
	    "[\"c1\",\"pause\"]}");
	expect_end_ok(fx, 3);
	send_line(fx, "{\"v\":1,\"id\":4,\"cmd\":\"campaign\",\"args\":"
	    "[\"c1\",\"resume\"]}");
	expect_end_ok(fx, 4);
	send_line(fx, "{\"v\":1,\"id\":5,\"cmd\":\"campaign\",\"args\":"
	    "[\"c1\",\"cancel\"]}");
	expect_end_ok(fx, 5);
	assert_int_equal(fake.pauses, 1);
	assert_int_equal(fake.resumes, 1);
	assert_int_equal(fake.cancels, 1);

	expect_error(fx, "{\"v\":1,\"id\":6,\"cmd\":\"campaign\",\"args\":"
	    "[\"zz\"]}", 6, "unknown campaign \"zz\"");
	expect_error(fx, "{\"v\":1,\"id\":7,\"cmd\":\"campaign\",\"args\":"
	    "[\"zz\",\"pause\"]}", 7, "unknown campaign \"zz\"");
	expect_error(fx, "{\"v\":1,\"id\":8,\"cmd\":\"campaign\",\"args\":"
	    "[\"c1\",\"explode\"]}", 8, "unknown action \"explode\" (pause, "
	    "resume or cancel)");
	assert_int_equal(fake.pauses, 1);
	assert_int_equal(fake.resumes, 1);
	assert_int_equal(fake.cancels, 1);
}

static void
test_bad_requests(void **state)
{
	struct fx	*fx = *state;

	expect_error(fx, "{\"v\":1,\"id\":1,\"cmd\":", -1, "...bad JSON: ");
	expect_error(fx, "not json at all", -1, "...bad JSON: ");
	expect_error(fx, "{\"v\":1,\"id\":1,\"cmd\":\"status\"} trailing", -1,
	    "...bad JSON: ");
	expect_error(fx, "[1,2,3]", -1, "a request must be a JSON object");
	expect_error(fx, "{\"v\":1,\"cmd\":\"refresh\"}", -1, "missing id");
	expect_error(fx, "{\"v\":1,\"id\":\"1\",\"cmd\":\"refresh\"}", -1,
	    "id must be an integer from 0 to 2^53-1");
	expect_error(fx, "{\"v\":1,\"id\":-4,\"cmd\":\"refresh\"}", -1,
	    "id must be an integer from 0 to 2^53-1");
	expect_error(fx, "{\"id\":11,\"cmd\":\"refresh\"}", 11,
	    "missing v (the protocol version)");
	expect_error(fx, "{\"v\":2,\"id\":12,\"cmd\":\"refresh\"}", 12,
	    "unsupported protocol version (this upbridged speaks v 1)");
	expect_error(fx, "{\"v\":\"1\",\"id\":13,\"cmd\":\"refresh\"}", 13,
	    "unsupported protocol version (this upbridged speaks v 1)");
	expect_error(fx, "{\"v\":1,\"id\":14,\"cmd\":\"reboot\"}", 14,
	    "unknown command \"reboot\"");
	expect_error(fx, "{\"v\":1,\"id\":15}", 15, "missing cmd (a string)");
	expect_error(fx, "{\"v\":1,\"id\":16,\"cmd\":7}", 16,
	    "missing cmd (a string)");
	expect_error(fx, "{\"v\":1,\"id\":17,\"cmd\":\"refresh\",\"x\":1}", 17,
	    "unknown key \"x\"");
	expect_error(fx,
	    "{\"v\":1,\"id\":18,\"cmd\":\"refresh\",\"args\":\"a\"}",
	    18, "args must be an array of strings");
	expect_error(fx, "{\"v\":1,\"id\":19,\"cmd\":\"campaign\",\"args\":"
	    "[1,\"pause\"]}", 19, "args must be an array of strings");
	expect_error(fx, "{\"v\":1,\"id\":20,\"cmd\":\"refresh\",\"args\":"
	    "[\"now\"]}", 20, "usage: refresh");
	expect_error(fx, "{\"v\":1,\"id\":21,\"cmd\":\"campaign\"}", 21,
	    "usage: campaign ID [approve|pause|resume|cancel|force-cancel|"
	    "export]");
	expect_error(fx, "{\"v\":1,\"id\":22,\"cmd\":\"campaign\",\"args\":"
	    "[\"c1\",\"pause\",\"now\"]}", 22,
	    "usage: campaign ID [approve|pause|resume|cancel|force-cancel|"
	    "export]");
	expect_error(fx, "{\"v\":1,\"id\":23,\"id\":24,\"cmd\":\"refresh\"}",
	    -1, "...duplicate object key");
	expect_error(fx, "{\"v\":1,\"id\":25,\"cmd\":\"unwatch\"}", 25,
	    "not watching");

	/* Nothing changed, and the connection still works. */
	assert_int_equal(fake.polls, 0);
	assert_int_equal(fake.pauses, 0);
	send_line(fx, "{\"v\":1,\"id\":30,\"cmd\":\"refresh\"}");
	expect_end_ok(fx, 30);
	assert_int_equal(fake.polls, 1);
}

static void
test_oversize(void **state)
{
	struct fx	*fx = *state;
	json_t		*rec;
	char		*big;
	size_t		 n = CTL_LINE_MAX + 100;
	int		 eof;

	/* A complete line of exactly the limit is fine (bad JSON here). */
	big = malloc(n + 1);
	memset(big, ' ', n);
	memcpy(big, "{\"v\":1,\"id\":1,\"cmd\":\"refresh\"}", 31);
	big[CTL_LINE_MAX] = '\0';
	send_line(fx, big);
	expect_end_ok(fx, 1);

	/* One byte more, and no end: an error, then hang-up. */
	memset(big, 'a', n);
	send_raw(fx, big, n);
	rec = next_record(fx);
	assert_true(json_is_null(json_object_get(rec, "id")));
	assert_string_equal(json_string_value(json_object_get(rec, "error")),
	    "request too long (at most 65536 bytes)");
	json_decref(rec);
	assert_null(next_record_eof(fx, &eof));
	assert_int_equal(eof, 1);
	free(big);
	assert_int_equal(fake.polls, 1);
}

static void
test_watch(void **state)
{
	struct fx	*fx = *state;
	json_t		*rec;
	int		 eof;

	fake.progress_rows = 2;
	send_line(fx, "{\"v\":1,\"id\":40,\"cmd\":\"watch\"}");
	/* The first update at once. */
	rec = next_record(fx);
	assert_int_equal(json_integer_value(json_object_get(rec, "id")), 40);
	assert_int_equal(json_array_size(json_object_get(rec, "progress")), 2);
	json_decref(rec);

	/* Cron pushes one per period, not more. */
	control_cron(fx->ctl);
	rec = next_record(fx);
	assert_int_equal(json_integer_value(json_object_get(rec, "id")), 40);
	assert_true(json_is_array(json_object_get(rec, "progress")));
	json_decref(rec);
	control_cron(fx->ctl);
	fake.progress_rows = 0;
	/* Other commands still work while watching. */
	send_line(fx, "{\"v\":1,\"id\":41,\"cmd\":\"refresh\"}");
	expect_end_ok(fx, 41);
	expect_error(fx, "{\"v\":1,\"id\":42,\"cmd\":\"watch\"}", 42,
	    "already watching (request 40)");

	/* unwatch ends the watch (its end record first), then itself. */
	send_line(fx, "{\"v\":1,\"id\":43,\"cmd\":\"unwatch\"}");
	expect_end_ok(fx, 40);
	expect_end_ok(fx, 43);

	/* Nothing more comes. */
	sleep(1);
	control_cron(fx->ctl);
	assert_null(next_record_eof(fx, &eof));
	assert_int_equal(eof, 0);
}

/*
 * A client that sends requests and never reads: the daemon stops
 * reading it above the high-water mark instead of buffering without
 * bound, and resumes once it drains.
 */
static void
test_backpressure(void **state)
{
	struct fx	*fx = *state;
	json_t		*rec;
	int		 i, ends = 0, stalled;

	fake.status_pad = 256 * 1024;
	fcntl(fx->fd, F_SETFL, O_NONBLOCK);
	for (i = 0; i < 30; i++)
		send_line(fx, "{\"v\":1,\"id\":1,\"cmd\":\"status\"}");
	for (i = 0; i < 200; i++) {
		pump(fx);
		usleep(1000);
	}
	stalled = fake.status_calls;
	assert_true(stalled < 30);
	assert_true(stalled >= 4);	/* 1 MiB / 256 KiB */

	fcntl(fx->fd, F_SETFL, 0);
	while (ends < 30) {
		rec = next_record(fx);
		if (json_is_true(json_object_get(rec, "end")))
			ends++;
		json_decref(rec);
	}
	assert_int_equal(fake.status_calls, 30);
}

/* A peer that is not root, us, or in the group is refused. */
static void
test_peer_refused(void **state)
{
	struct fx	*fx = *state;
	pid_t		 pid;
	int		 status, i;

	if (geteuid() != 0)
		skip();
	/* The file mode would stop it first; open it to test the check. */
	assert_int_equal(chmod(fx->path, 0666), 0);
	assert_int_equal(chmod(fx->dir, 0755), 0);
	pid = fork();
	assert_true(pid != -1);
	if (pid == 0) {
		char	 buf[4096];
		ssize_t	 n;
		size_t	 len = 0;
		int	 fd;

		if (setgid(65534) == -1 || setuid(65534) == -1)
			_exit(3);
		if ((fd = client_connect(fx->path)) == -1)
			_exit(4);
		while ((n = read(fd, buf + len, sizeof(buf) - 1 - len)) > 0)
			len += (size_t)n;
		buf[len] = '\0';
		/* One error record, then the daemon hangs up. */
		if (strstr(buf, "\"status\":\"error\"") == NULL ||
		    strstr(buf, "permission denied: uid 65534") == NULL ||
		    strstr(buf, "\"id\":null") == NULL)
			_exit(5);
		_exit(0);
	}
	for (i = 0; i < 5000; i++) {
		pump(fx);
		if (waitpid(pid, &status, WNOHANG) == pid)
			break;
		usleep(1000);
	}
	assert_true(i < 5000);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(fake.polls, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_socket_mode, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_stale_socket, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_status, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nodes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_campaigns, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_bad_requests, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_oversize, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_watch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_backpressure, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_peer_refused, setup,
		    teardown),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
