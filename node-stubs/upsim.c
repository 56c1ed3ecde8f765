/*
 * upsim.c: the medium simulator program (docs/simulator.md).
 *
 * upsim --personality NAME (--endpoint NAME[,KEY=VALUE...] ... |
 *     --endpoints N) [--baud 9600] [--format 8E1] [--time-scale S]
 *     [--seed S] [--loss PCT] [--delay MS] [--opt KEY=VALUE ...]
 *     [--status FILE] [--status-ms MS] [--control PATH]
 *     [--link-dir DIR] [--duration SEC] [-v]
 *
 * Creates one pty pair per endpoint, prints "NAME PTY" for each and then
 * "ready" on stdout, and runs the medium until SIGTERM/SIGINT,
 * `--duration' or a "quit" command.  The status (ptys, per-endpoint
 * counters, simulated and real time) goes to --status FILE every
 * --status-ms and at exit, and answers the control socket's "status".
 * Exit 0 after a clean stop, 1 on a runtime error, 2 on a usage error.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "upsim.h"

#define EP_SPECS_MAX	SIM_EP_MAX
/* Control clients at once. */
#define CONTROL_MAX	16

static struct sim_conf	 conf;
static struct sim	*sim;
static struct event_base *base;
static const char	*status_path;
static const char	*control_path;
static const char	*link_dir;
static unsigned int	 status_ms = 1000;
static double		 duration_s;
static char		*ep_specs[EP_SPECS_MAX];
static unsigned int	 nspecs;
static unsigned int	 nendpoints;
static struct bufferevent *clients[CONTROL_MAX];

static void __attribute__((__noreturn__))
usage(void)
{
	fprintf(stderr,
	    "usage: upsim --personality NAME (--endpoint NAME[,KEY=VALUE...]"
	    " ... | --endpoints N)\n"
	    "             [--baud 9600] [--format 8E1] [--time-scale S] "
	    "[--seed S]\n"
	    "             [--loss PCT] [--delay MS] [--opt KEY=VALUE ...]\n"
	    "             [--status FILE] [--status-ms MS] [--control PATH]\n"
	    "             [--link-dir DIR] [--duration SEC] [-v]\n"
	    "endpoint keys: loss=PCT delay=MS half-duplex=yes|no "
	    "parity=N|E|O|M|S|auto\n"
	    "--personality help lists the personalities and their options\n");
	exit(2);
}

static void __attribute__((__noreturn__, __format__(__printf__, 1, 2)))
badarg(const char *fmt, ...)
{
	va_list		 ap;

	fprintf(stderr, "upsim: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	usage();
}

static void __attribute__((__noreturn__))
die(const char *what, char *cause)
{
	fprintf(stderr, "upsim: %s: %s\n", what,
	    cause != NULL ? cause : strerror(errno));
	free(cause);
	exit(1);
}

static void __attribute__((__noreturn__))
list_personalities(void)
{
	const struct sim_personality *const *p;
	const struct sim_opt *o;

	for (p = sim_personality_list(); *p != NULL; p++) {
		printf("%s: %s\n", (*p)->name, (*p)->help);
		for (o = (*p)->options; o != NULL && o->name != NULL; o++)
			printf("    --opt %s=... %s (default %s)\n", o->name,
			    o->help, o->def != NULL ? o->def : "none");
		for (o = (*p)->ep_options; o != NULL && o->name != NULL; o++)
			printf("    --endpoint NAME,%s=... %s (default %s)\n",
			    o->name, o->help, o->def != NULL ? o->def :
			    "none");
	}
	exit(0);
}

static double
parse_double(const char *opt, const char *s, double lo, double hi)
{
	char		*end;
	double		 v;

	errno = 0;
	v = strtod(s, &end);
	if (s[0] == '\0' || *end != '\0' || errno != 0 || !(v >= lo) ||
	    !(v <= hi))
		badarg("%s: %g to %g: %s", opt, lo, hi, s);
	return (v);
}

static unsigned long long
parse_ull(const char *opt, const char *s, unsigned long long hi)
{
	unsigned long long v;
	char		*end;

	errno = 0;
	if (s[0] < '0' || s[0] > '9')
		badarg("%s: bad number: %s", opt, s);
	v = strtoull(s, &end, 0);
	if (errno != 0 || *end != '\0' || v > hi)
		badarg("%s: 0 to %llu: %s", opt, hi, s);
	return (v);
}

static void
parse_args(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "personality", required_argument, NULL, 'p' },
		{ "endpoint", required_argument, NULL, 'e' },
		{ "endpoints", required_argument, NULL, 'n' },
		{ "baud", required_argument, NULL, 'b' },
		{ "format", required_argument, NULL, 'f' },
		{ "time-scale", required_argument, NULL, 't' },
		{ "seed", required_argument, NULL, 'S' },
		{ "loss", required_argument, NULL, 'L' },
		{ "delay", required_argument, NULL, 'D' },
		{ "opt", required_argument, NULL, 'o' },
		{ "status", required_argument, NULL, 's' },
		{ "status-ms", required_argument, NULL, 'm' },
		{ "control", required_argument, NULL, 'c' },
		{ "link-dir", required_argument, NULL, 'l' },
		{ "duration", required_argument, NULL, 'd' },
		{ "verbose", no_argument, NULL, 'v' },
		{ NULL, 0, NULL, 0 }
	};
	const struct sim_opt *o;
	const char	*format = "8E1";
	unsigned long long baud = 9600;
	unsigned int	 i;
	char		*eq;
	bool		 seeded = false;
	int		 ch;

	conf.time_scale = 1;
	while ((ch = getopt_long(argc, argv, "v", longopts, NULL)) != -1) {
		switch (ch) {
		case 'p':
			if (strcmp(optarg, "help") == 0)
				list_personalities();
			if ((conf.pers = sim_personality_find(optarg)) ==
			    NULL)
				badarg("--personality: unknown: %s "
				    "(--personality help lists them)", optarg);
			break;
		case 'e':
			if (nspecs >= EP_SPECS_MAX)
				badarg("at most %d endpoints", EP_SPECS_MAX);
			ep_specs[nspecs++] = optarg;
			break;
		case 'n':
			nendpoints = (unsigned int)parse_ull("--endpoints",
			    optarg, SIM_EP_MAX);
			if (nendpoints == 0)
				badarg("--endpoints: at least 1");
			break;
		case 'b':
			baud = parse_ull("--baud", optarg, 4000000);
			if (baud == 0)
				badarg("--baud: not 0");
			break;
		case 'f':
			format = optarg;
			break;
		case 't':
			conf.time_scale = parse_double("--time-scale", optarg,
			    0.001, 100000);
			break;
		case 'S':
			conf.seed = parse_ull("--seed", optarg, ULLONG_MAX);
			seeded = true;
			break;
		case 'L':
			conf.loss_pct = parse_double("--loss", optarg, 0, 100);
			break;
		case 'D':
			conf.delay_ms = parse_double("--delay", optarg, 0,
			    3600e3);
			break;
		case 'o':
			if ((eq = strchr(optarg, '=')) == NULL || eq == optarg)
				badarg("--opt: KEY=VALUE: %s", optarg);
			if (conf.nopt >= SIM_OPTS_MAX)
				badarg("at most %d --opt", SIM_OPTS_MAX);
			*eq = '\0';
			conf.opt[conf.nopt].key = optarg;
			conf.opt[conf.nopt].value = eq + 1;
			conf.nopt++;
			break;
		case 's':
			status_path = optarg;
			break;
		case 'm':
			status_ms = (unsigned int)parse_ull("--status-ms",
			    optarg, 3600000);
			if (status_ms == 0)
				badarg("--status-ms: at least 1");
			break;
		case 'c':
			control_path = optarg;
			break;
		case 'l':
			link_dir = optarg;
			break;
		case 'd':
			duration_s = parse_double("--duration", optarg, 0.001,
			    1e7);
			break;
		case 'v':
			conf.verbose = true;
			break;
		default:
			usage();
		}
	}
	if (optind != argc)
		badarg("unexpected argument: %s", argv[optind]);
	if (conf.pers == NULL)
		badarg("--personality is required");
	if ((nspecs == 0) == (nendpoints == 0))
		badarg("either --endpoint (repeated) or --endpoints N");
	for (i = 0; i < conf.nopt; i++) {
		for (o = conf.pers->options; o != NULL && o->name != NULL; o++)
			if (strcmp(o->name, conf.opt[i].key) == 0)
				break;
		if (o == NULL || o->name == NULL)
			badarg("--opt: %s has no option %s (--personality help)",
			    conf.pers->name, conf.opt[i].key);
	}
	if (sim_fmt_parse(format, (uint32_t)baud, &conf.fmt) == -1)
		badarg("--format: data bits 5-8, parity N/E/O/M/S, stop bits "
		    "1-2 (8E1, 8N1, 8N2): %s", format);
	if (!seeded)
		conf.seed = (uint64_t)time(NULL) << 20 ^ (uint64_t)getpid();
}

/* "NAME[,KEY=VALUE...]" */
static void
add_endpoint(char *spec)
{
	struct sim_ep	*ep;
	char		*name, *kv, *eq, *save = NULL, *cause = NULL;

	name = strtok_r(spec, ",", &save);
	if (name == NULL)
		badarg("--endpoint: empty");
	if ((ep = sim_ep_add(sim, name, &cause)) == NULL) {
		fprintf(stderr, "upsim: --endpoint: %s\n", cause);
		free(cause);
		usage();
	}
	while ((kv = strtok_r(NULL, ",", &save)) != NULL) {
		if ((eq = strchr(kv, '=')) == NULL || eq == kv)
			badarg("--endpoint %s: KEY=VALUE: %s", name, kv);
		*eq = '\0';
		if (sim_ep_set(ep, kv, eq + 1, &cause) == -1) {
			fprintf(stderr, "upsim: --endpoint: %s\n", cause);
			free(cause);
			usage();
		}
	}
}

/* ------------------------------------------------------------------ */
/* Links, status, control                                              */

static void
links_make(void)
{
	struct sim_ep	*ep;
	char		 path[PATH_MAX];
	unsigned int	 i;

	if (link_dir == NULL)
		return;
	if (mkdir(link_dir, 0755) == -1 && errno != EEXIST)
		die(link_dir, NULL);
	for (i = 0; i < sim_nep(sim); i++) {
		ep = sim_ep(sim, i);
		snprintf(path, sizeof(path), "%s/%s", link_dir, ep->name);
		(void)unlink(path);
		if (symlink(ep->pty, path) == -1)
			die(path, NULL);
	}
}

static void
links_remove(void)
{
	char		 path[PATH_MAX];
	unsigned int	 i;

	if (link_dir == NULL)
		return;
	for (i = 0; i < sim_nep(sim); i++) {
		snprintf(path, sizeof(path), "%s/%s", link_dir,
		    sim_ep(sim, i)->name);
		(void)unlink(path);
	}
}

static void
status_write(void)
{
	char		*cause = NULL;

	if (status_path == NULL)
		return;
	if (sim_status_write(sim, status_path, &cause) == -1) {
		fprintf(stderr, "upsim: status: %s\n", cause);
		free(cause);
	}
}

static void
status_cb(evutil_socket_t fd, short what, void *arg)
{
	status_write();
}

static void
quit_cb(evutil_socket_t fd, short what, void *arg)
{
	event_base_loopbreak(base);
}

/* One command line from a control client; one reply line. */
static void
control_read_cb(struct bufferevent *bev, void *arg)
{
	struct evbuffer	*in = bufferevent_get_input(bev);
	struct evbuffer	*out = bufferevent_get_output(bev);
	char		*line, *cause = NULL, *json;
	size_t		 n, jlen;
	FILE		*f;

	while ((line = evbuffer_readln(in, &n, EVBUFFER_EOL_LF)) != NULL) {
		if (strcmp(line, "status") == 0) {
			json = NULL;
			jlen = 0;
			if ((f = open_memstream(&json, &jlen)) != NULL) {
				sim_status_json(sim, f);
				fclose(f);
				evbuffer_add(out, json, jlen);
				evbuffer_add(out, "\n", 1);
			}
			free(json);
		} else if (strcmp(line, "quit") == 0) {
			/* Said before the loop ends, so written now. */
			(void)evbuffer_write(out, bufferevent_getfd(bev));
			if (write(bufferevent_getfd(bev), "ok\n", 3) != 3)
				fprintf(stderr, "upsim: control: %s\n",
				    strerror(errno));
			event_base_loopexit(base, NULL);
		} else if (sim_command(sim, line, &cause) == 0) {
			evbuffer_add_printf(out, "ok\n");
			status_write();
		} else {
			evbuffer_add_printf(out, "error: %s\n",
			    cause != NULL ? cause : "failed");
			free(cause);
			cause = NULL;
		}
		free(line);
	}
}

static void
control_close(struct bufferevent *bev)
{
	size_t		 i;

	for (i = 0; i < CONTROL_MAX; i++)
		if (clients[i] == bev)
			clients[i] = NULL;
	bufferevent_free(bev);
}

static void
control_event_cb(struct bufferevent *bev, short what, void *arg)
{
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
		control_close(bev);
}

static void
control_accept_cb(struct evconnlistener *l, evutil_socket_t fd,
    struct sockaddr *sa, int len, void *arg)
{
	struct bufferevent *bev;
	size_t		 i;

	for (i = 0; i < CONTROL_MAX && clients[i] != NULL; i++)
		;
	if (i == CONTROL_MAX ||
	    (bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE)) ==
	    NULL) {
		close(fd);
		return;
	}
	clients[i] = bev;
	bufferevent_setcb(bev, control_read_cb, NULL, control_event_cb,
	    NULL);
	bufferevent_enable(bev, EV_READ);
}

static struct evconnlistener *
control_open(void)
{
	struct evconnlistener *l;
	struct sockaddr_un sun;

	if (control_path == NULL)
		return (NULL);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(control_path) >= sizeof(sun.sun_path))
		die(control_path, strdup("control socket path too long"));
	strcpy(sun.sun_path, control_path);
	(void)unlink(control_path);
	if ((l = evconnlistener_new_bind(base, control_accept_cb, NULL,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 8,
	    (struct sockaddr *)&sun, sizeof(sun))) == NULL)
		die(control_path, NULL);
	(void)chmod(control_path, 0600);
	return (l);
}

/* The end of a run, for people: simulated and real time, per endpoint. */
static void
summary(void)
{
	const struct sim_stats *st;
	struct sim_ep	*ep;
	unsigned int	 i;

	printf("upsim: %.3f s simulated in %.3f s real (time scale %g)\n",
	    (double)sim_now(sim) / 1e9, (double)sim_real_ns(sim) / 1e9,
	    conf.time_scale);
	for (i = 0; i < sim_nep(sim); i++) {
		ep = sim_ep(sim, i);
		st = &ep->st;
		printf("upsim: %s: tx %llu frames %llu bytes %.3f ms air, "
		    "%llu collisions; rx %llu ok %llu garbled %llu lost "
		    "%llu missed; line errors %llu\n", ep->name,
		    (unsigned long long)st->tx_frames,
		    (unsigned long long)st->tx_bytes,
		    (double)st->airtime_ns / 1e6,
		    (unsigned long long)st->collisions,
		    (unsigned long long)st->rx_frames,
		    (unsigned long long)st->rx_garbled,
		    (unsigned long long)st->rx_lost,
		    (unsigned long long)st->rx_missed,
		    (unsigned long long)st->line_errors);
	}
	fflush(stdout);
}

int
main(int argc, char **argv)
{
	struct event_config *cfg;
	struct event	*ev_status, *ev_term, *ev_int, *ev_dur = NULL;
	struct evconnlistener *ctl;
	struct timeval	 tv;
	char		*cause = NULL, name[16];
	unsigned int	 i;

	parse_args(argc, argv);
	signal(SIGPIPE, SIG_IGN);
	if ((cfg = event_config_new()) == NULL)
		die("libevent", NULL);
	/* Character times are sub-millisecond: timerfd, not epoll's ms. */
	event_config_set_flag(cfg, EVENT_BASE_FLAG_PRECISE_TIMER);
	if ((base = event_base_new_with_config(cfg)) == NULL)
		die("libevent", NULL);
	event_config_free(cfg);

	if ((sim = sim_new(base, &conf, &cause)) == NULL)
		die("start", cause);
	for (i = 0; i < nspecs; i++)
		add_endpoint(ep_specs[i]);
	for (i = 0; i < nendpoints; i++) {
		if (i == 0)
			snprintf(name, sizeof(name), "gw");
		else
			snprintf(name, sizeof(name), "n%u", i);
		if (sim_ep_add(sim, name, &cause) == NULL)
			die("endpoint", cause);
	}
	if (sim_start(sim, &cause) == -1)
		die("start", cause);
	links_make();
	ctl = control_open();

	ev_term = evsignal_new(base, SIGTERM, quit_cb, NULL);
	ev_int = evsignal_new(base, SIGINT, quit_cb, NULL);
	evsignal_add(ev_term, NULL);
	evsignal_add(ev_int, NULL);
	ev_status = event_new(base, -1, EV_PERSIST, status_cb, NULL);
	tv.tv_sec = status_ms / 1000;
	tv.tv_usec = (suseconds_t)(status_ms % 1000) * 1000;
	if (status_path != NULL)
		event_add(ev_status, &tv);
	if (duration_s > 0) {
		ev_dur = evtimer_new(base, quit_cb, NULL);
		tv.tv_sec = (time_t)duration_s;
		tv.tv_usec = (suseconds_t)((duration_s - (double)tv.tv_sec) *
		    1e6);
		evtimer_add(ev_dur, &tv);
	}

	status_write();
	{
		char	 f[32];

		sim_fmt_str(&conf.fmt, f, sizeof(f));
		printf("upsim: %s, %s, %u bits a character, time scale %g\n",
		    conf.pers->name, f, sim_fmt_char_bits(&conf.fmt),
		    conf.time_scale);
	}
	for (i = 0; i < sim_nep(sim); i++)
		printf("%s %s\n", sim_ep(sim, i)->name, sim_ep(sim, i)->pty);
	printf("ready\n");
	fflush(stdout);

	event_base_dispatch(base);

	status_write();
	summary();
	links_remove();
	if (ctl != NULL) {
		evconnlistener_free(ctl);
		(void)unlink(control_path);
	}
	for (i = 0; i < CONTROL_MAX; i++)
		if (clients[i] != NULL)
			control_close(clients[i]);
	event_free(ev_status);
	event_free(ev_term);
	event_free(ev_int);
	if (ev_dur != NULL)
		event_free(ev_dur);
	sim_free(sim);
	event_base_free(base);
	return (0);
}
