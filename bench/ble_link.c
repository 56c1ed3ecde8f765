/*
 * ble_link.c: goodput of the ble transport against its link model's
 * limit (docs/benchmarks.md, "BLE"; research/transports.md §2.4).
 *
 * The gateway side is the real plugin (transports/ble/, on a libevent
 * loop, simulated peripherals through its sim_dir); each node is a
 * child process running the real node link (node-stubs/node_ble.c) with
 * its connection-event model, and taking every frame as upnode would.
 * Frames are Write Commands of ATT_MTU − 3 bytes, sent as the engine
 * does: until the plugin says TP_EAGAIN, again at writable().  Each node
 * measures the time from its first frame to its last; goodput is its
 * frames times their size over that time plus one connection interval
 * (the first event's frames arrived within it: this errs low).  The limit is
 * the model's own rule, evaluated for the same settings with the central
 * always having data and the peripheral nothing: min(pdus, exchanges
 * that fit the interval) LL PDUs per event.
 *
 * This measures the link layer of the transport (plugin, ATT client,
 * credit flow, node link); the package-level figure through the engine
 * and UP comes from the end-to-end bench.
 */
#include <sys/types.h>
#include <sys/wait.h>

#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "up.h"
#include "transport.h"
#include "upnode.h"

#define MAXNODES	8

struct opts {
	int		 frames;
	int		 nodes;
	unsigned int	 interval_us;
	unsigned int	 pdus;
	unsigned int	 dl;
	const char	*phy;
	unsigned int	 mtu;
	unsigned int	 buffers;
	unsigned int	 queue;
	bool		 mic;
	bool		 json;
	bool		 verbose;
};

struct gw {
	struct event_base	*base;
	const struct tp_ops	*ops;
	struct tp		*tp;
	struct tp_addr		 addr[MAXNODES];
	bool			 found[MAXNODES];
	bool			 up[MAXNODES];
	bool			 down[MAXNODES];
	int			 sent[MAXNODES];
	int			 nodes;
	int			 writable;
	bool			 eagain;
};

static bool	 verbose;

static void
log_hook(int level, const char *fmt, va_list ap)
{
	if (!verbose && level != UP_LOG_WARN)
		return;
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

static uint64_t
now_ns(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec);
}

static uint64_t
now_ms(void *arg)
{
	return (now_ns() / 1000000);
}

/* The model's air time of one LL PDU (node_ble.c's pdu_ns). */
static double
pdu_us(const struct opts *o, unsigned int payload)
{
	bool	 m2 = strcmp(o->phy, "2M") == 0;
	double	 bytes = (m2 ? 2 : 1) + 4 + 2 + payload + 3 +
		    (o->mic && payload > 0 ? 4 : 0);

	return (bytes * 8 / (m2 ? 2.0 : 1.0));
}

/*
 * Bytes of ATT value per second the model lets through, the central
 * always full: frames of mtu − 3 bytes, each an L2CAP PDU of mtu + 4
 * cut into LL PDUs of at most data_length.
 */
static double
model_limit(const struct opts *o)
{
	const int	 events = 10000;
	unsigned int	 left = o->mtu + 4, m, k;
	double		 t, d;
	long		 frames = 0;
	int		 e;

	for (e = 0; e < events; e++) {
		for (t = 0, k = 0; k < o->pdus; k++) {
			m = left < o->dl ? left : o->dl;
			d = pdu_us(o, m) + 150 + pdu_us(o, 0) + 150;
			if (k > 0 && t + d > o->interval_us)
				break;
			t += d;
			left -= m;
			if (left == 0) {
				frames++;
				left = o->mtu + 4;
			}
		}
	}
	return ((double)frames * (o->mtu - 3) /
	    ((double)events * o->interval_us / 1e6));
}

/* ------------------------------------------------------------------ */
/* A node: a child process                                              */

static volatile sig_atomic_t	 stop;

static void
on_term(int sig)
{
	stop = 1;
}

static void
node_main(const struct opts *o, const char *dir, int id, int wfd)
{
	struct node_conf	 conf;
	struct node_link	*l;
	struct node_link_src	 src;
	struct pollfd		 pfd[NODE_LINK_FDS_MAX];
	uint8_t			 buf[600];
	uint64_t		 t_first = 0, t_last = 0;
	char			 v[8][16], *cause = NULL, line[128];
	int			 i, n, got = 0;
	ssize_t			 r;

	signal(SIGTERM, on_term);
	memset(&conf, 0, sizeof(conf));
	conf.id = (uint64_t)id;
	conf.link = &node_link_ble;
#define OPT(k, fmt, val) do {						\
	snprintf(v[conf.nlinkopt], sizeof(v[0]), fmt, val);		\
	conf.linkopt[conf.nlinkopt].key = k;				\
	conf.linkopt[conf.nlinkopt].value = v[conf.nlinkopt];		\
	conf.nlinkopt++;						\
} while (0)
	conf.linkopt[conf.nlinkopt].key = "dir";
	conf.linkopt[conf.nlinkopt++].value = dir;
	OPT("interval_us", "%u", o->interval_us);
	OPT("pdus", "%u", o->pdus);
	OPT("data_length", "%u", o->dl);
	OPT("phy", "%s", o->phy);
	OPT("mtu", "%u", o->mtu);
	OPT("buffers", "%u", o->buffers);
	OPT("mic", "%s", o->mic ? "yes" : "no");
#undef OPT
	if ((l = node_link_ble.open(&conf, -1, &cause)) == NULL) {
		fprintf(stderr, "node %d: %s\n", id, cause);
		_exit(1);
	}
	node_link_ble.boot(l);
	while (!stop && got < o->frames) {
		n = node_link_ble.pollfds(l, pfd, NODE_LINK_FDS_MAX);
		for (i = 0; i < n; i++)
			pfd[i].revents = 0;
		if (poll(pfd, (nfds_t)n, 100) == -1 && errno != EINTR)
			break;
		for (i = 0; i < n; i++) {
			if (pfd[i].revents == 0)
				continue;
			while ((r = node_link_ble.recv(l, &pfd[i], buf,
			    sizeof(buf), &src)) > 0) {
				if (got++ == 0)
					t_first = now_ns();
				t_last = now_ns();
			}
		}
	}
	n = snprintf(line, sizeof(line), "%d %d %llu %llu\n", id, got,
	    (unsigned long long)t_first, (unsigned long long)t_last);
	(void)write(wfd, line, (size_t)n);
	/* Stay until told, so the gateway sees no disconnect mid-run. */
	while (!stop)
		pause();
	node_link_ble.close(l);
	_exit(0);
}

/* ------------------------------------------------------------------ */
/* The gateway                                                          */

static int
gw_index(struct gw *g, const struct tp_addr *a)
{
	int	 i;

	for (i = 0; i < g->nodes; i++)
		if (tp_addr_eq(&g->addr[i], a))
			return (i);
	return (-1);
}

static void
h_peer(void *arg, struct tp *tp, const struct tp_addr *a,
    enum tp_peer_event e, const struct tp_peer_info *info)
{
	struct gw	*g = arg;
	int		 i = gw_index(g, a);

	if (i < 0)
		return;
	if (e == TP_PEER_FOUND)
		g->found[i] = true;
	else if (e == TP_PEER_UP)
		g->up[i] = true;
	else if (e == TP_PEER_DOWN) {
		g->up[i] = false;
		g->down[i] = true;
	}
}

static void
h_writable(void *arg, struct tp *tp)
{
	struct gw	*g = arg;

	g->writable++;
	g->eagain = false;
}

static void
fill(struct gw *g, const struct opts *o)
{
	static uint8_t	 frame[600];
	struct iovec	 iov = { frame, 0 };
	int		 i, rc;
	bool		 more = true;

	iov.iov_len = o->mtu - 3;
	/* Round-robin, as the engine's unicast sessions take turns. */
	while (more && !g->eagain) {
		more = false;
		for (i = 0; i < g->nodes && !g->eagain; i++) {
			if (!g->up[i] || g->sent[i] >= o->frames)
				continue;
			rc = g->ops->send(g->tp, &g->addr[i], &iov, 1,
			    (uint64_t)g->sent[i]);
			if (rc == TP_OK) {
				g->sent[i]++;
				more = true;
			} else if (rc == TP_EAGAIN)
				g->eagain = true;
		}
	}
}

static void
usage(void)
{
	fprintf(stderr, "usage: ble_link [--frames N] [--nodes K] "
	    "[--interval-us US] [--pdus P]\n"
	    "                [--data-length D] [--phy 1M|2M] [--mtu M] "
	    "[--buffers B]\n"
	    "                [--queue Q] [--mic] [--json] [-v]\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "frames", required_argument, NULL, 'f' },
		{ "nodes", required_argument, NULL, 'n' },
		{ "interval-us", required_argument, NULL, 'i' },
		{ "pdus", required_argument, NULL, 'p' },
		{ "data-length", required_argument, NULL, 'd' },
		{ "phy", required_argument, NULL, 'P' },
		{ "mtu", required_argument, NULL, 'm' },
		{ "buffers", required_argument, NULL, 'b' },
		{ "queue", required_argument, NULL, 'q' },
		{ "mic", no_argument, NULL, 'M' },
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 }
	};
	struct opts	 o = { 2000, 1, 15000, 6, 251, "2M", 247, 16, 16,
			    false, false, false };
	struct gw	 g;
	struct tp_host	 host;
	struct tp_kv	 kv[6];
	struct tp_conf	 conf;
	char		 dir[64], q[16], peers[16], mtu[16], *cause = NULL;
	char		 a[64], line[256];
	pid_t		 pid[MAXNODES];
	int		 pfd[2], i, c, all;
	uint64_t	 deadline;
	double		 limit, gp, sum = 0, worst = 1e18;
	FILE		*res;
	int		 id, got;
	unsigned long long t0, t1;

	while ((c = getopt_long(argc, argv, "v", longopts, NULL)) != -1) {
		switch (c) {
		case 'f': o.frames = atoi(optarg); break;
		case 'n': o.nodes = atoi(optarg); break;
		case 'i': o.interval_us = (unsigned)atoi(optarg); break;
		case 'p': o.pdus = (unsigned)atoi(optarg); break;
		case 'd': o.dl = (unsigned)atoi(optarg); break;
		case 'P': o.phy = optarg; break;
		case 'm': o.mtu = (unsigned)atoi(optarg); break;
		case 'b': o.buffers = (unsigned)atoi(optarg); break;
		case 'q': o.queue = (unsigned)atoi(optarg); break;
		case 'M': o.mic = true; break;
		case 'j': o.json = true; break;
		case 'v': o.verbose = verbose = true; break;
		default: usage();
		}
	}
	if (o.frames < 2 || o.nodes < 1 || o.nodes > MAXNODES ||
	    o.mtu < 23 || o.mtu > 517 || o.dl < 27 || o.dl > 251 ||
	    (strcmp(o.phy, "1M") != 0 && strcmp(o.phy, "2M") != 0))
		usage();
	up_log_set_hook(log_hook);
	snprintf(dir, sizeof(dir), "/tmp/ble_link.XXXXXX");
	if (mkdtemp(dir) == NULL || pipe(pfd) == -1) {
		perror("ble_link");
		return (1);
	}
	for (i = 0; i < o.nodes; i++) {
		if ((pid[i] = fork()) == -1) {
			perror("fork");
			return (1);
		}
		if (pid[i] == 0) {
			close(pfd[0]);
			node_main(&o, dir, i + 1, pfd[1]);
		}
	}
	close(pfd[1]);

	memset(&g, 0, sizeof(g));
	g.nodes = o.nodes;
	g.base = event_base_new();
	g.ops = tp_find("ble");
	for (i = 0; i < o.nodes; i++) {
		snprintf(a, sizeof(a), "ble:C0:00:00:00:00:%02X/random", i + 1);
		(void)g.ops->addr_parse(a, &g.addr[i], NULL);
	}
	memset(&host, 0, sizeof(host));
	host.base = g.base;
	host.arg = &g;
	host.now_ms = now_ms;
	host.peer = h_peer;
	host.writable = h_writable;
	snprintf(q, sizeof(q), "%u", o.queue);
	snprintf(peers, sizeof(peers), "%d", o.nodes);
	snprintf(mtu, sizeof(mtu), "%u", o.mtu);
	kv[0] = (struct tp_kv){ "sim_dir", dir };
	kv[1] = (struct tp_kv){ "scan_period_ms", "50" };
	kv[2] = (struct tp_kv){ "peer_queue", q };
	kv[3] = (struct tp_kv){ "max_peers", peers };
	kv[4] = (struct tp_kv){ "mtu", mtu };
	conf.name = "ble0";
	conf.options = g.ops->options;
	conf.nkv = 5;
	conf.kv = kv;
	if (tp_conf_check(&conf, &cause) == -1 ||
	    g.ops->open(&host, &conf, &g.tp, &cause) == -1 ||
	    g.ops->start(g.tp, &cause) == -1) {
		fprintf(stderr, "ble_link: %s\n", cause);
		return (1);
	}

	deadline = now_ms(NULL) + 10000;
	for (all = 0; !all && now_ms(NULL) < deadline; ) {
		event_base_loop(g.base, EVLOOP_ONCE);
		for (all = 1, i = 0; i < o.nodes; i++) {
			if (g.found[i] && !g.up[i] && !g.down[i])
				(void)g.ops->connect(g.tp, &g.addr[i]);
			all &= g.up[i];
		}
	}
	if (!all) {
		fprintf(stderr, "ble_link: nodes not connected\n");
		return (1);
	}
	deadline = now_ms(NULL) + 600000;
	res = fdopen(pfd[0], "r");
	/* Sending until every node has all its frames. */
	for (;;) {
		fill(&g, &o);
		event_base_loop(g.base, EVLOOP_ONCE);
		for (all = 1, i = 0; i < o.nodes; i++)
			all &= g.sent[i] >= o.frames;
		if (all || now_ms(NULL) > deadline)
			break;
	}
	/* The last frames leave the queues while the nodes report. */
	limit = model_limit(&o);
	for (i = 0; i < o.nodes; i++) {
		struct pollfd	 rp = { pfd[0], POLLIN, 0 };

		while (poll(&rp, 1, 0) == 0)
			event_base_loop(g.base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
		if (fgets(line, sizeof(line), res) == NULL ||
		    sscanf(line, "%d %d %llu %llu", &id, &got, &t0, &t1) != 4)
			break;
		/*
		 * got frames in the events from the first's to the last's:
		 * counted as taking one interval more than first to last,
		 * which errs low by at most one event.
		 */
		gp = (double)got * (o.mtu - 3) / ((double)(t1 - t0) / 1e9 +
		    o.interval_us / 1e6);
		sum += gp;
		if (gp < worst)
			worst = gp;
		if (o.verbose)
			fprintf(stderr, "node %d: %d frames, %.1f B/s\n", id,
			    got, gp);
	}
	if (o.json)
		printf("{\"bench\":\"ble_link\",\"nodes\":%d,\"frames\":%d,"
		    "\"interval_us\":%u,\"pdus\":%u,\"data_length\":%u,"
		    "\"phy\":\"%s\",\"mic\":%s,\"mtu\":%u,\"buffers\":%u,"
		    "\"limit_Bps\":%.0f,\"goodput_Bps\":%.0f,"
		    "\"worst_Bps\":%.0f,\"fraction\":%.3f}\n", o.nodes,
		    o.frames, o.interval_us, o.pdus, o.dl, o.phy,
		    o.mic ? "true" : "false", o.mtu, o.buffers, limit,
		    sum / o.nodes, worst, worst / limit);
	else
		printf("%s PHY, DL %u, MTU %u, CI %.2f ms, %u PDUs/event, "
		    "%u buffers, %d node(s) x %d frames: limit %.1f kB/s, "
		    "goodput %.1f kB/s per node (worst %.1f) = %.1f %% of "
		    "the limit\n", o.phy, o.dl, o.mtu, o.interval_us / 1000.0,
		    o.pdus, o.buffers, o.nodes, o.frames, limit / 1000,
		    sum / o.nodes / 1000, worst / 1000, 100 * worst / limit);
	for (i = 0; i < o.nodes; i++)
		kill(pid[i], SIGTERM);
	for (i = 0; i < o.nodes; i++)
		waitpid(pid[i], NULL, 0);
	g.ops->close(g.tp);
	event_base_free(g.base);
	rmdir(dir);
	return (worst / limit >= 0.8 ? 0 : 3);
}
