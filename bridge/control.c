/*
 * control.c: the control socket that upctl talks to.
 *
 * A UNIX stream socket (relayd/bgpd control.c): created under a umask so
 * it is born 0660, chowned to the control group, peers checked with
 * SO_PEERCRED.  Each connection is a bufferevent carrying JSON lines
 * (ctl_proto.h); a request is checked whole before its command runs, so a
 * bad one gets an error end record and changes nothing.  Commands live in
 * a table, one file per family (ctl_status.c, ctl_node.c,
 * ctl_campaign.c).
 *
 * Back-pressure (bgpd CTL_MSG_HIGH_MARK): once a client has more than
 * CTL_HIGH_WATER bytes of output queued we stop reading its requests and
 * drop its watch updates, and resume below CTL_LOW_WATER.
 */
#include <sys/types.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>

#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "upbridged.h"
#include "ctl_proto.h"

#define CTL_BACKLOG		16

struct ctl_client {
	TAILQ_ENTRY(ctl_client)	 entry;
	struct control		*control;
	struct bufferevent	*bev;
	pid_t			 pid;
	uid_t			 uid;
	gid_t			 gid;
	int			 flags;
#define CTL_CLIENT_CLOSING	0x1	/* flush the output, then free */
#define CTL_CLIENT_THROTTLED	0x2	/* over the high-water mark */
	int64_t			 watch_id;	/* -1: not watching */
	uint64_t		 watch_dropped;
};
TAILQ_HEAD(ctl_clients, ctl_client);

struct control {
	struct event_base	*base;
	struct ub		*ub;
	char			*path;
	gid_t			 gid;		/* of the socket */
	struct evconnlistener	*listener;
	struct event		*resume;	/* EMFILE back-off */
	struct ctl_clients	 clients;
	uint64_t		 last_watch_ms;
};

static int	 control_mkdirs(const char *, char **);
static int	 control_prepare_path(const char *, char **);
static void	 control_accept(struct evconnlistener *, evutil_socket_t,
		    struct sockaddr *, int, void *);
static void	 control_accept_error(struct evconnlistener *, void *);
static void	 control_resume(evutil_socket_t, short, void *);
static int	 control_peer_ok(struct control *, uid_t, gid_t);
static void	 control_read(struct bufferevent *, void *);
static void	 control_write(struct bufferevent *, void *);
static void	 control_event(struct bufferevent *, short, void *);
static void	 control_client_free(struct ctl_client *);
static void	 control_client_close(struct ctl_client *);
static void	 control_send(struct ctl_client *, json_t *);
static void	 control_end(struct ctl_client *, int64_t, const char *);
static void	 control_request(struct ctl_client *, const char *, size_t);
static const struct ctl_cmd *control_find(const char *);
static uint64_t	 control_now_ms(void);

static const struct ctl_cmd *
control_find(const char *name)
{
	static const struct ctl_cmd *const tables[] = {
		ctl_status_cmds, ctl_node_cmds, ctl_campaign_cmds, NULL
	};
	const struct ctl_cmd	*cmd;
	size_t			 i;

	for (i = 0; tables[i] != NULL; i++)
		for (cmd = tables[i]; cmd->name != NULL; cmd++)
			if (strcmp(cmd->name, name) == 0)
				return (cmd);
	return (NULL);
}

static uint64_t
control_now_ms(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000);
}

/* Creates the missing directories above the socket, mode 0755. */
static int
control_mkdirs(const char *path, char **cause)
{
	char	 dir[PATH_MAX], *p;

	if (snprintf(dir, sizeof(dir), "%s", path) >= (int)sizeof(dir)) {
		xasprintf(cause, "%s: path too long", path);
		return (-1);
	}
	if ((p = strrchr(dir, '/')) == NULL || p == dir)
		return (0);
	*p = '\0';
	for (p = dir + 1; ; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		if (*p == '/')
			*p = '\0';
		else
			p = NULL;
		if (mkdir(dir, 0755) == -1 && errno != EEXIST) {
			xasprintf(cause, "mkdir %s: %s", dir, strerror(errno));
			return (-1);
		}
		if (p == NULL)
			break;
		*p = '/';
	}
	return (0);
}

/*
 * Removes a socket left by a daemon that died, but never one somebody is
 * still listening on, and never anything that is not a socket.
 */
static int
control_prepare_path(const char *path, char **cause)
{
	struct sockaddr_un	 sun;
	struct stat		 sb;
	int			 fd, rc;

	if (lstat(path, &sb) == -1) {
		if (errno == ENOENT)
			return (0);
		xasprintf(cause, "%s: %s", path, strerror(errno));
		return (-1);
	}
	if (!S_ISSOCK(sb.st_mode)) {
		xasprintf(cause, "%s: exists and is not a socket", path);
		return (-1);
	}
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1) {
		xasprintf(cause, "socket: %s", strerror(errno));
		return (-1);
	}
	rc = connect(fd, (struct sockaddr *)&sun, sizeof(sun));
	close(fd);
	if (rc == 0) {
		xasprintf(cause, "%s: another upbridged is listening there",
		    path);
		return (-1);
	}
	if (errno != ECONNREFUSED && errno != ENOENT) {
		xasprintf(cause, "%s: %s", path, strerror(errno));
		return (-1);
	}
	log_info("control: removing stale socket %s", path);
	if (unlink(path) == -1 && errno != ENOENT) {
		xasprintf(cause, "unlink %s: %s", path, strerror(errno));
		return (-1);
	}
	return (0);
}

struct control *
control_new(struct event_base *base, struct ub *ub, const char *path,
    const char *group, char **cause)
{
	struct control		*ctl;
	struct sockaddr_un	 sun;
	struct group		*gr;
	mode_t			 old_umask;
	gid_t			 gid;
	int			 fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		xasprintf(cause, "%s: path too long for a UNIX socket", path);
		return (NULL);
	}
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);

	gid = getegid();
	if (group != NULL) {
		errno = 0;
		if ((gr = getgrnam(group)) == NULL) {
			xasprintf(cause, "control group %s: %s", group,
			    errno != 0 ? strerror(errno) : "no such group");
			return (NULL);
		}
		gid = gr->gr_gid;
	}

	if (control_mkdirs(path, cause) != 0 ||
	    control_prepare_path(path, cause) != 0)
		return (NULL);

	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0)) == -1) {
		xasprintf(cause, "socket: %s", strerror(errno));
		return (NULL);
	}
	/* Born 0660: no window in which others could connect. */
	old_umask = umask(S_IXUSR | S_IXGRP | S_IRWXO);
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		xasprintf(cause, "bind %s: %s", path, strerror(errno));
		umask(old_umask);
		close(fd);
		return (NULL);
	}
	umask(old_umask);
	if (chmod(path, 0660) == -1 ||
	    (group != NULL && chown(path, (uid_t)-1, gid) == -1)) {
		xasprintf(cause, "%s: %s", path, strerror(errno));
		goto fail;
	}
	if (listen(fd, CTL_BACKLOG) == -1) {
		xasprintf(cause, "listen %s: %s", path, strerror(errno));
		goto fail;
	}

	ctl = xcalloc(1, sizeof(*ctl));
	ctl->base = base;
	ctl->ub = ub;
	ctl->path = xstrdup(path);
	ctl->gid = gid;
	TAILQ_INIT(&ctl->clients);
	ctl->listener = evconnlistener_new(base, control_accept, ctl,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0, fd);
	if (ctl->listener == NULL) {
		xasprintf(cause, "%s: cannot listen (libevent)", path);
		free(ctl->path);
		free(ctl);
		goto fail;
	}
	evconnlistener_set_error_cb(ctl->listener, control_accept_error);
	ctl->resume = evtimer_new(base, control_resume, ctl);
	if (ctl->resume == NULL)
		fatalx("%s: evtimer_new", __func__);
	log_info("control: listening on %s", path);
	return (ctl);

fail:
	close(fd);
	unlink(path);
	return (NULL);
}

void
control_free(struct control *ctl)
{
	struct ctl_client	*c;

	if (ctl == NULL)
		return;
	while ((c = TAILQ_FIRST(&ctl->clients)) != NULL)
		control_client_free(c);
	evconnlistener_free(ctl->listener);
	event_free(ctl->resume);
	if (unlink(ctl->path) == -1 && errno != ENOENT)
		log_warn("%s: unlink %s", __func__, ctl->path);
	free(ctl->path);
	free(ctl);
}

/*
 * Out of file descriptors: stop accepting for a second instead of
 * spinning on a listener that is always readable (relayd, tmux).
 */
static void
control_accept_error(struct evconnlistener *listener, void *arg)
{
	struct control	*ctl = arg;
	struct timeval	 tv = { 1, 0 };
	int		 err = EVUTIL_SOCKET_ERROR();

	if (err == EMFILE || err == ENFILE || err == ENOBUFS ||
	    err == ENOMEM) {
		log_warnx("control: accept: %s; pausing for 1 s",
		    strerror(err));
		evconnlistener_disable(listener);
		evtimer_add(ctl->resume, &tv);
		return;
	}
	if (err != EINTR && err != EAGAIN && err != ECONNABORTED)
		log_warnx("control: accept: %s", strerror(err));
}

static void
control_resume(evutil_socket_t fd, short events, void *arg)
{
	struct control	*ctl = arg;

	evconnlistener_enable(ctl->listener);
}

/* Root, our own user, or a member of the socket's group. */
static int
control_peer_ok(struct control *ctl, uid_t uid, gid_t gid)
{
	struct passwd	*pw;
	gid_t		 groups[64];
	int		 ngroups = 64, i;

	if (uid == 0 || uid == geteuid() || gid == ctl->gid)
		return (1);
	if ((pw = getpwuid(uid)) == NULL)
		return (0);
	if (getgrouplist(pw->pw_name, pw->pw_gid, groups, &ngroups) == -1)
		ngroups = 64;	/* the first 64 were filled */
	for (i = 0; i < ngroups; i++)
		if (groups[i] == ctl->gid)
			return (1);
	return (0);
}

static void
control_accept(struct evconnlistener *listener, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct control		*ctl = arg;
	struct ctl_client	*c;
	struct ucred		 cred;
	socklen_t		 len = sizeof(cred);
	char			*why;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == -1) {
		log_warn("control: SO_PEERCRED");
		close(fd);
		return;
	}
	evutil_make_socket_nonblocking(fd);
	c = xcalloc(1, sizeof(*c));
	c->control = ctl;
	c->pid = cred.pid;
	c->uid = cred.uid;
	c->gid = cred.gid;
	c->watch_id = -1;
	c->bev = bufferevent_socket_new(ctl->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL) {
		log_warnx("control: cannot create a bufferevent");
		close(fd);
		free(c);
		return;
	}
	TAILQ_INSERT_TAIL(&ctl->clients, c, entry);
	bufferevent_setcb(c->bev, control_read, control_write, control_event,
	    c);
	/* Read no more than one maximal line ahead. */
	bufferevent_setwatermark(c->bev, EV_READ, 0, CTL_LINE_MAX + 2);
	bufferevent_setwatermark(c->bev, EV_WRITE, CTL_LOW_WATER, 0);

	if (!control_peer_ok(ctl, cred.uid, cred.gid)) {
		log_warnx("control: refused pid %ld uid %lu gid %lu",
		    (long)cred.pid, (unsigned long)cred.uid,
		    (unsigned long)cred.gid);
		xasprintf(&why, "permission denied: uid %lu is not root, the "
		    "daemon's user or in the control group",
		    (unsigned long)cred.uid);
		control_end(c, -1, why);
		free(why);
		control_client_close(c);
		return;
	}
	log_debug("control: client pid %ld uid %lu connected",
	    (long)cred.pid, (unsigned long)cred.uid);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

static void
control_client_free(struct ctl_client *c)
{
	TAILQ_REMOVE(&c->control->clients, c, entry);
	bufferevent_free(c->bev);
	free(c);
}

/* Stops reading; frees the client once its output is written. */
static void
control_client_close(struct ctl_client *c)
{
	c->flags |= CTL_CLIENT_CLOSING;
	c->watch_id = -1;
	bufferevent_disable(c->bev, EV_READ);
	if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0) {
		control_client_free(c);
		return;
	}
	/* control_write fires when the output is drained. */
	bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
	bufferevent_enable(c->bev, EV_WRITE);
}

/* Queues one record (takes the reference). */
static void
control_send(struct ctl_client *c, json_t *rec)
{
	struct evbuffer	*out = bufferevent_get_output(c->bev);
	char		*s;

	if (rec == NULL)
		fatalx("%s: out of memory", __func__);
	s = json_dumps(rec, JSON_COMPACT);
	json_decref(rec);
	if (s == NULL)
		fatalx("%s: json_dumps", __func__);
	evbuffer_add(out, s, strlen(s));
	evbuffer_add(out, "\n", 1);
	free(s);
	if (evbuffer_get_length(out) > CTL_HIGH_WATER &&
	    !(c->flags & CTL_CLIENT_THROTTLED)) {
		c->flags |= CTL_CLIENT_THROTTLED;
		bufferevent_disable(c->bev, EV_READ);
		log_debug("control: pid %ld is slow, throttled", (long)c->pid);
	}
}

/* The end record: status ok when `error' is NULL.  id -1 is null. */
static void
control_end(struct ctl_client *c, int64_t id, const char *error)
{
	json_t	*rec;

	rec = json_object();
	json_object_set_new(rec, "id", id >= 0 ? json_integer(id) :
	    json_null());
	json_object_set_new(rec, "end", json_true());
	json_object_set_new(rec, "status", json_string(error == NULL ?
	    CTL_STATUS_OK : CTL_STATUS_ERROR));
	if (error != NULL)
		json_object_set_new(rec, "error", json_string(error));
	control_send(c, rec);
}

void
control__reply(struct ctl_req *req, json_t *data)
{
	json_t	*rec;

	rec = json_object();
	json_object_set_new(rec, "id", json_integer(req->id));
	json_object_set_new(rec, "data", data != NULL ? data : json_null());
	control_send(req->client, rec);
}

static void
control_read(struct bufferevent *bev, void *arg)
{
	struct ctl_client	*c = arg;
	struct evbuffer		*in = bufferevent_get_input(bev);
	char			*line;
	size_t			 n;

	while (!(c->flags & (CTL_CLIENT_CLOSING | CTL_CLIENT_THROTTLED))) {
		line = evbuffer_readln(in, &n, EVBUFFER_EOL_LF);
		if (line == NULL) {
			if (evbuffer_get_length(in) > CTL_LINE_MAX)
				goto toolong;
			return;
		}
		if (n > 0 && line[n - 1] == '\r')
			line[--n] = '\0';
		if (n > CTL_LINE_MAX) {
			free(line);
			goto toolong;
		}
		if (n > 0)
			control_request(c, line, n);
		free(line);
	}
	return;

toolong:
	/* Resynchronising inside a stream of bytes is guesswork: hang up. */
	log_warnx("control: pid %ld sent a request over %d bytes",
	    (long)c->pid, CTL_LINE_MAX);
	control_end(c, -1, "request too long (at most 65536 bytes)");
	control_client_close(c);
}

static void
control_write(struct bufferevent *bev, void *arg)
{
	struct ctl_client	*c = arg;
	struct evbuffer		*in = bufferevent_get_input(bev);

	if (c->flags & CTL_CLIENT_CLOSING) {
		if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
			control_client_free(c);
		return;
	}
	/* Below the low-water mark again: resume reading. */
	if (c->flags & CTL_CLIENT_THROTTLED) {
		c->flags &= ~CTL_CLIENT_THROTTLED;
		if (c->watch_dropped > 0)
			log_debug("control: pid %ld caught up after %llu "
			    "dropped updates", (long)c->pid,
			    (unsigned long long)c->watch_dropped);
		c->watch_dropped = 0;
		bufferevent_enable(bev, EV_READ);
		if (evbuffer_get_length(in) > 0)
			control_read(bev, c);
	}
}

static void
control_event(struct bufferevent *bev, short what, void *arg)
{
	struct ctl_client	*c = arg;

	if (what & BEV_EVENT_ERROR)
		log_debug("control: pid %ld: %s", (long)c->pid,
		    evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
		log_debug("control: pid %ld disconnected", (long)c->pid);
		control_client_free(c);
	}
}

/*
 * Checks one request line whole (ctl_proto.h) without running it: on 0,
 * `p' holds the command, the id and the arguments, which point into
 * p->rq (the caller json_decref()s it, also on -1).  On -1, *why says
 * what is wrong and p->id is the id if it could be read, else -1.
 */
int
control__parse(const char *line, size_t len, struct ctl_parsed *p,
    char **why)
{
	json_t			*rq, *v, *jid, *jcmd, *jargs, *a;
	json_error_t		 jerr;
	const char		*key;
	size_t			 i;

	memset(p, 0, sizeof(*p));
	p->id = -1;
	*why = NULL;
	rq = p->rq = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
	if (rq == NULL) {
		xasprintf(why, "bad JSON: %s (column %d)", jerr.text,
		    jerr.column);
		return (-1);
	}
	if (!json_is_object(rq)) {
		*why = xstrdup("a request must be a JSON object");
		return (-1);
	}
	jid = json_object_get(rq, "id");
	if (jid == NULL) {
		*why = xstrdup("missing id");
		return (-1);
	}
	if (!json_is_integer(jid) || json_integer_value(jid) < 0 ||
	    json_integer_value(jid) > CTL_ID_MAX) {
		*why = xstrdup("id must be an integer from 0 to 2^53-1");
		return (-1);
	}
	p->id = json_integer_value(jid);
	v = json_object_get(rq, "v");
	if (v == NULL) {
		*why = xstrdup("missing v (the protocol version)");
		return (-1);
	}
	if (!json_is_integer(v) || json_integer_value(v) !=
	    CTL_PROTO_VERSION) {
		xasprintf(why, "unsupported protocol version (this upbridged "
		    "speaks v %d)", CTL_PROTO_VERSION);
		return (-1);
	}
	json_object_foreach(rq, key, a) {
		if (strcmp(key, "v") != 0 && strcmp(key, "id") != 0 &&
		    strcmp(key, "cmd") != 0 && strcmp(key, "args") != 0) {
			xasprintf(why, "unknown key \"%s\"", key);
			return (-1);
		}
	}
	jcmd = json_object_get(rq, "cmd");
	if (jcmd == NULL || !json_is_string(jcmd)) {
		*why = xstrdup("missing cmd (a string)");
		return (-1);
	}
	if ((jargs = json_object_get(rq, "args")) != NULL) {
		if (!json_is_array(jargs)) {
			*why = xstrdup("args must be an array of strings");
			return (-1);
		}
		if (json_array_size(jargs) > CTL_ARGS_MAX) {
			xasprintf(why, "too many args (at most %d)",
			    CTL_ARGS_MAX);
			return (-1);
		}
		json_array_foreach(jargs, i, a) {
			if (!json_is_string(a)) {
				*why = xstrdup("args must be an array of "
				    "strings");
				return (-1);
			}
			p->argv[p->argc++] = json_string_value(a);
		}
	}
	if ((p->cmd = control_find(json_string_value(jcmd))) == NULL) {
		xasprintf(why, "unknown command \"%s\"",
		    json_string_value(jcmd));
		return (-1);
	}
	if (p->argc < p->cmd->args_min || p->argc > p->cmd->args_max) {
		xasprintf(why, "usage: %s%s%s", p->cmd->name,
		    *p->cmd->usage != '\0' ? " " : "", p->cmd->usage);
		p->cmd = NULL;
		return (-1);
	}
	return (0);
}

/*
 * One request line.  Everything is checked before the command runs: a
 * bad request is answered with an error and changes nothing.
 */
static void
control_request(struct ctl_client *c, const char *line, size_t len)
{
	const struct ctl_cmd	*cmd;
	struct ctl_parsed	 p;
	struct ctl_req		 req;
	char			*cause = NULL, *why = NULL;
	enum ctl_ret		 ret;

	if (control__parse(line, len, &p, &why) != 0)
		goto bad;
	cmd = p.cmd;

	memset(&req, 0, sizeof(req));
	req.control = c->control;
	req.client = c;
	req.ub = c->control->ub;
	req.id = p.id;
	req.cmd = cmd->name;
	req.argc = p.argc;
	req.argv = p.argv;
	req.uid = c->uid;
	if (cmd->flags & CTL_F_WRITE)
		log_info("control: uid %lu pid %ld: %s%s%s",
		    (unsigned long)c->uid, (long)c->pid, cmd->name,
		    p.argc > 0 ? " " : "", p.argc > 0 ? p.argv[0] : "");
	else
		log_debug("control: pid %ld: %s", (long)c->pid, cmd->name);
	ret = cmd->exec(&req, &cause);
	switch (ret) {
	case CTL_DONE:
		control_end(c, p.id, NULL);
		break;
	case CTL_ERROR:
		control_end(c, p.id, cause != NULL ? cause : "failed");
		free(cause);
		break;
	case CTL_WAIT:
		break;
	}
	json_decref(p.rq);
	return;

bad:
	log_debug("control: pid %ld: bad request: %s", (long)c->pid, why);
	control_end(c, p.id, why);
	free(why);
	json_decref(p.rq);
}

/* The progress array, as a watch record's value. */
static json_t *
control_progress(struct control *ctl)
{
	json_t	*p;

	p = fanout_progress_json(ctl->ub->fanout);
	return (p != NULL ? p : json_array());
}

static void
control_send_progress(struct ctl_client *c, const char *progress)
{
	struct evbuffer	*out = bufferevent_get_output(c->bev);

	/* Drop updates while the client cannot keep up. */
	if (evbuffer_get_length(out) > CTL_HIGH_WATER ||
	    (c->flags & CTL_CLIENT_THROTTLED)) {
		c->watch_dropped++;
		return;
	}
	evbuffer_add_printf(out, "{\"id\":%lld,\"progress\":%s}\n",
	    (long long)c->watch_id, progress);
}

int
control__watch(struct ctl_req *req, char **cause)
{
	struct ctl_client	*c = req->client;
	json_t			*p;
	char			*s;

	if (c->watch_id != -1) {
		xasprintf(cause, "already watching (request %lld)",
		    (long long)c->watch_id);
		return (-1);
	}
	c->watch_id = req->id;
	p = control_progress(c->control);
	if ((s = json_dumps(p, JSON_COMPACT)) == NULL)
		fatalx("%s: json_dumps", __func__);
	json_decref(p);
	control_send_progress(c, s);
	free(s);
	return (0);
}

int
control__unwatch(struct ctl_req *req, char **cause)
{
	struct ctl_client	*c = req->client;
	int64_t			 id = c->watch_id;

	if (id == -1) {
		xasprintf(cause, "not watching");
		return (-1);
	}
	c->watch_id = -1;
	control_end(c, id, NULL);
	return (0);
}

void
control_cron(struct control *ctl)
{
	struct ctl_client	*c;
	uint64_t		 now = control_now_ms();
	json_t			*p;
	char			*s;
	int			 any = 0;

	if (now - ctl->last_watch_ms < CTL_WATCH_PERIOD_MS)
		return;
	TAILQ_FOREACH(c, &ctl->clients, entry)
		if (c->watch_id != -1)
			any = 1;
	if (!any)
		return;
	ctl->last_watch_ms = now;

	/* One snapshot for every watcher. */
	p = control_progress(ctl);
	if ((s = json_dumps(p, JSON_COMPACT)) == NULL)
		fatalx("%s: json_dumps", __func__);
	json_decref(p);
	TAILQ_FOREACH(c, &ctl->clients, entry)
		if (c->watch_id != -1 && !(c->flags & CTL_CLIENT_CLOSING))
			control_send_progress(c, s);
	free(s);
}
