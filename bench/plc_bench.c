/*
 * plc_bench.c: hop 1 and the whole station area of the plc transport's
 * module offload, against the physical limit (docs/benchmarks.md,
 * "PLC").
 *
 *   plc_bench [--bindir build/bin] [--size BYTES] [--segment BYTES]
 *             [--baud 9600] [--module-ms 50] [--stations 30]
 *             [--levels 3] [--loss PCT] [--time-scale 10] [--seed S]
 *
 * Starts `upsim --personality plc' (a module and --stations stations in
 * --levels relay levels, every hop losing --loss %), opens the module's
 * pty with the real plc transport (transports/plc/) on its own loop,
 * plays every station's device on its pty (acknowledging each block
 * the station module hands it), and offloads a package of --size bytes:
 * the transport sends it to the module by AFN 15H F1 in the module's
 * segments, the module distributes it.  Prints one JSON line:
 *
 *  - hop 1: the time from segment 0's first character to the last
 *    segment's acknowledgement, as the simulator measured it, against
 *    T_min = n_seg * [(26 + Lf + 19) * bits/baud + t_module]
 *    (research/transports.md §4.5; 26 bytes of request overhead, a
 *    19-byte answer, the module's t_module per segment), and the exact
 *    T_min over the real segment lengths (the last one is shorter);
 *  - the whole area: the module's distribution, from the file complete
 *    to every device holding every block, and offload start to the
 *    transport reporting the last station done (both simulated s).
 *
 * Only the upsim process it starts is stopped.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "up.h"
#include "transport.h"
#include "q1376.h"
#include "upnode.h"

#define NST_MAX		200

struct dev {
	int		 fd;
	struct event	*ev;
	struct q_rx	 rx;
	uint32_t	 nblocks, nhave;
	uint8_t		*have;
	bool		 done_seen;
};

static struct {
	const char	*bindir;
	uint32_t	 size, segment, baud, module_ms;
	unsigned int	 stations, levels, seed;
	double		 loss, scale;
	char		 dir[64];
	pid_t		 sim;
	struct event_base *base;
	struct dev	 dev[NST_MAX];
	const struct tp_ops *ops;
	struct tp	*tp;
	int		 up;
	unsigned int	 npeer, done;
	bool		 module_done;
	uint64_t	 t_start_ms, t_done_ms;
	uint8_t		*pkg;
} B;

static void
die(const char *fmt, ...)
{
	va_list		 ap;

	va_start(ap, fmt);
	fprintf(stderr, "plc_bench: ");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	if (B.sim > 0)
		kill(B.sim, SIGTERM);
	exit(1);
}

static uint64_t
now_ms(void *arg)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000);
}

/* The host's clock: link time, the simulator's (the testbed's one clock). */
static uint64_t
link_ms(void *arg)
{
	return ((uint64_t)((double)now_ms(arg) * B.scale));
}

/* ------------------------------------------------------------------ */
/* The host of the transport                                            */

static void
h_rx(void *a, struct tp *tp, const struct tp_addr *s, const uint8_t *f,
    size_t l, const struct tp_rxinfo *ri)
{
}

static void
h_writable(void *a, struct tp *tp)
{
}

static void
h_link(void *a, struct tp *tp, enum tp_link_event ev)
{
	if (ev == TP_LINK_UP)
		B.up++;
}

static void
h_peer(void *a, struct tp *tp, const struct tp_addr *p,
    enum tp_peer_event ev, const struct tp_peer_info *info)
{
	if (ev == TP_PEER_FOUND)
		B.npeer++;
}

static int
h_read(void *a, struct tp *tp, uint32_t id, uint64_t off, uint8_t *buf,
    size_t len)
{
	if (off + len > B.size)
		return (-1);
	memcpy(buf, B.pkg + off, len);
	return (0);
}

static void
h_progress(void *a, struct tp *tp, uint32_t id, const struct tp_addr *p,
    enum tp_offload_state st, uint64_t bytes)
{
	if (p == NULL) {
		if (st == TP_OFF_DONE)
			B.module_done = true;
		return;
	}
	if (st == TP_OFF_DONE || st == TP_OFF_FAILED) {
		if (++B.done == B.stations)
			B.t_done_ms = link_ms(NULL);
	}
}

/* ------------------------------------------------------------------ */
/* The devices                                                          */

static void
dev_frame(struct dev *d, const uint8_t *p, size_t len)
{
	struct q_frame	 f;
	const char	*why;
	struct q_frame	 a;
	uint8_t		 du[8], out[64];
	size_t		 off = 5;
	bool		 ok = true;
	uint32_t	 idx, total;
	int		 n;

	if (q_decode(p, len, &f, &why) != 0 || f.afn != 0x15 || f.fn != 1)
		return;
	off = 3;
	total = q_get(f.data, f.len, &off, 2, &ok);
	idx = q_get(f.data, f.len, &off, 4, &ok);
	if (!ok || total == 0 || idx >= total)
		return;
	if (d->have == NULL) {
		d->nblocks = total;
		if ((d->have = calloc(1, (total + 7) / 8)) == NULL)
			die("out of memory");
	}
	if (idx < d->nblocks && !(d->have[idx / 8] & (1u << (idx % 8)))) {
		d->have[idx / 8] |= (uint8_t)(1u << (idx % 8));
		d->nhave++;
	}
	memset(&a, 0, sizeof(a));
	a.c = Q_DIR_UP | Q_COMM_HPLC;
	a.r[5] = Q_SEQ(&f);
	a.afn = 0x15;
	a.fn = 1;
	(void)q_put(du, sizeof(du), 0, idx, 4);
	a.data = du;
	a.len = 4;
	if ((n = q_encode(&a, out, sizeof(out))) > 0 &&
	    write(d->fd, out, (size_t)n) != n)
		die("device write: %s", strerror(errno));
}

static void
dev_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dev	*d = arg;
	const uint8_t	*p;
	uint8_t		 buf[1024];
	size_t		 len;
	ssize_t		 n;
	int		 r;

	while ((n = read(d->fd, buf, sizeof(buf))) > 0) {
		(void)q_rx_feed(&d->rx, buf, (size_t)n);
		while ((r = q_rx_next(&d->rx, &p, &len)) != 0)
			if (r > 0)
				dev_frame(d, p, len);
	}
}

/* ------------------------------------------------------------------ */

static void
brk_cb(evutil_socket_t fd, short what, void *arg)
{
	event_base_loopbreak(B.base);
}

static void
run_until(bool (*cond)(void), unsigned int max_s, const char *what)
{
	struct event	*ev = evtimer_new(B.base, brk_cb, NULL);
	struct timeval	 tv = { 0, 20000 };
	uint64_t	 t0 = now_ms(NULL);

	while (!cond()) {
		if (now_ms(NULL) - t0 > (uint64_t)max_s * 1000)
			die("no %s after %u s", what, max_s);
		evtimer_add(ev, &tv);
		event_base_dispatch(B.base);
	}
	event_free(ev);
}

static bool
c_ready(void)
{
	return (B.up > 0 && B.npeer == B.stations);
}

static bool
c_done(void)
{
	return (B.done == B.stations);
}

/* The gw endpoint's "plc" member of the simulator's status. */
static double
status_num(const char *key)
{
	struct sockaddr_un sun;
	char		 buf[1 << 16], pat[64], *p;
	size_t		 len = 0;
	ssize_t		 n;
	int		 s;

	if ((s = socket(AF_UNIX, SOCK_STREAM, 0)) == -1)
		die("socket: %s", strerror(errno));
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/ctl", B.dir);
	if (connect(s, (struct sockaddr *)&sun, sizeof(sun)) == -1)
		die("control socket: %s", strerror(errno));
	if (write(s, "status\n", 7) != 7)
		die("control socket: %s", strerror(errno));
	while (len < sizeof(buf) - 1 && (n = read(s, buf + len,
	    sizeof(buf) - 1 - len)) > 0) {
		len += (size_t)n;
		if (buf[len - 1] == '\n')
			break;
	}
	close(s);
	buf[len] = '\0';
	snprintf(pat, sizeof(pat), "\"%s\": ", key);
	if ((p = strstr(buf, pat)) == NULL)
		die("status: no %s", key);
	return (strtod(p + strlen(pat), NULL));
}

static void
start_sim(void)
{
	char		*argv[64 + 2 * NST_MAX], bin[512], ep[NST_MAX][48];
	char		 opts[8][96], line[256];
	int		 out[2], a = 0, j;
	unsigned int	 per, k;
	FILE		*f;

	snprintf(bin, sizeof(bin), "%s/upsim", B.bindir);
	argv[a++] = bin;
	argv[a++] = "--personality";
	argv[a++] = "plc";
	argv[a++] = "--link-dir";
	argv[a++] = B.dir;
	argv[a++] = "--control";
	snprintf(opts[0], sizeof(opts[0]), "%s/ctl", B.dir);
	argv[a++] = opts[0];
	argv[a++] = "--time-scale";
	snprintf(opts[1], sizeof(opts[1]), "%g", B.scale);
	argv[a++] = opts[1];
	argv[a++] = "--baud";
	snprintf(opts[2], sizeof(opts[2]), "%u", B.baud);
	argv[a++] = opts[2];
	argv[a++] = "--seed";
	snprintf(opts[3], sizeof(opts[3]), "%u", B.seed);
	argv[a++] = opts[3];
	argv[a++] = "--opt";
	snprintf(opts[4], sizeof(opts[4]), "segment=%u", B.segment);
	argv[a++] = opts[4];
	argv[a++] = "--opt";
	snprintf(opts[5], sizeof(opts[5]), "module-ms=%u", B.module_ms);
	argv[a++] = opts[5];
	argv[a++] = "--opt";
	snprintf(opts[6], sizeof(opts[6]), "max-frame=%u", B.segment + 64);
	argv[a++] = opts[6];
	argv[a++] = "--endpoint";
	argv[a++] = "gw";
	/* Stations spread over the levels; each level's first stations
	 * relay for the next level. */
	per = (B.stations + B.levels - 1) / B.levels;
	for (k = 0; k < B.stations; k++) {
		unsigned int	 lv = k / per;

		if (lv == 0)
			snprintf(ep[k], sizeof(ep[k]), "n%u,loss=%g", k + 1,
			    B.loss);
		else
			snprintf(ep[k], sizeof(ep[k]), "n%u,parent=n%u,loss=%g",
			    k + 1, (lv - 1) * per + (k % (per < 3 ? per : 3)) +
			    1, B.loss);
		argv[a++] = "--endpoint";
		argv[a++] = ep[k];
	}
	argv[a] = NULL;
	if (pipe(out) == -1)
		die("pipe: %s", strerror(errno));
	if ((B.sim = fork()) == -1)
		die("fork: %s", strerror(errno));
	if (B.sim == 0) {
		dup2(out[1], 1);
		close(out[0]);
		execv(bin, argv);
		_exit(127);
	}
	close(out[1]);
	f = fdopen(out[0], "r");
	j = 0;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strncmp(line, "ready", 5) == 0) {
			j = 1;
			break;
		}
	}
	if (!j)
		die("upsim did not start");
	fclose(f);
}

static void
usage(void)
{
	fprintf(stderr, "usage: plc_bench [--bindir DIR] [--size BYTES] "
	    "[--segment BYTES] [--baud N] [--module-ms MS] [--stations N] "
	    "[--levels N] [--loss PCT] [--time-scale S] [--seed S]\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "bindir", required_argument, NULL, 'b' },
		{ "size", required_argument, NULL, 's' },
		{ "segment", required_argument, NULL, 'g' },
		{ "baud", required_argument, NULL, 'r' },
		{ "module-ms", required_argument, NULL, 'm' },
		{ "stations", required_argument, NULL, 'n' },
		{ "levels", required_argument, NULL, 'l' },
		{ "loss", required_argument, NULL, 'x' },
		{ "time-scale", required_argument, NULL, 't' },
		{ "seed", required_argument, NULL, 'e' },
		{ NULL, 0, NULL, 0 }
	};
	struct tp_host	 host;
	struct tp_conf	 tc;
	struct tp_kv	 kv[6];
	struct tp_offload o;
	char		*cause = NULL, path[128], baud[16];
	double		 bits, t_min, t_exact, hop1, dist;
	uint32_t	 nseg, i, last;
	int		 c;

	B.bindir = "build/bin";
	B.size = 100 * 1024;
	B.segment = 1024;
	B.baud = 9600;
	B.module_ms = 50;
	B.stations = 30;
	B.levels = 3;
	B.scale = 10;
	B.seed = 1;
	while ((c = getopt_long(argc, argv, "", lopts, NULL)) != -1) {
		switch (c) {
		case 'b': B.bindir = optarg; break;
		case 's': B.size = (uint32_t)strtoul(optarg, NULL, 10); break;
		case 'g': B.segment = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 'r': B.baud = (uint32_t)strtoul(optarg, NULL, 10); break;
		case 'm': B.module_ms = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 'n': B.stations = (unsigned int)strtoul(optarg, NULL, 10);
			break;
		case 'l': B.levels = (unsigned int)strtoul(optarg, NULL, 10);
			break;
		case 'x': B.loss = strtod(optarg, NULL); break;
		case 't': B.scale = strtod(optarg, NULL); break;
		case 'e': B.seed = (unsigned int)strtoul(optarg, NULL, 10);
			break;
		default: usage();
		}
	}
	if (B.size == 0 || B.stations == 0 || B.stations > NST_MAX ||
	    B.levels == 0 || B.levels > B.stations || B.scale <= 0)
		usage();
	snprintf(B.dir, sizeof(B.dir), "/tmp/plc_bench.%d", (int)getpid());
	if (mkdir(B.dir, 0700) == -1)
		die("%s: %s", B.dir, strerror(errno));
	if ((B.pkg = malloc(B.size)) == NULL)
		die("out of memory");
	srandom(B.seed);
	for (i = 0; i < B.size; i++)
		B.pkg[i] = (uint8_t)random();
	start_sim();

	B.base = event_base_new();
	for (i = 0; i < B.stations; i++) {
		snprintf(path, sizeof(path), "%s/n%u", B.dir, i + 1);
		q_rx_init(&B.dev[i].rx);
		if ((B.dev[i].fd = node_serial_open(path, B.baud, "8E1",
		    &cause)) == -1)
			die("%s", cause);
		B.dev[i].ev = event_new(B.base, B.dev[i].fd,
		    EV_READ | EV_PERSIST, dev_cb, &B.dev[i]);
		event_add(B.dev[i].ev, NULL);
	}
	memset(&host, 0, sizeof(host));
	host.base = B.base;
	host.now_ms = link_ms;
	host.time_scale = B.scale;
	host.rx = h_rx;
	host.writable = h_writable;
	host.link = h_link;
	host.peer = h_peer;
	host.offload_read = h_read;
	host.offload_progress = h_progress;
	if ((B.ops = tp_find("plc")) == NULL)
		die("no plc transport");
	snprintf(path, sizeof(path), "%s/gw", B.dir);
	snprintf(baud, sizeof(baud), "%u", B.baud);
	kv[0] = (struct tp_kv){ "type", "plc" };
	kv[1] = (struct tp_kv){ "device", path };
	kv[2] = (struct tp_kv){ "baud", baud };
	kv[3] = (struct tp_kv){ "status_interval_s", "1" };
	tc.name = "plc0";
	tc.options = B.ops->options;
	tc.kv = kv;
	tc.nkv = 4;
	if (tp_conf_check(&tc, &cause) != 0 ||
	    B.ops->open(&host, &tc, &B.tp, &cause) != 0 ||
	    B.ops->start(B.tp, &cause) != 0)
		die("%s", cause);
	run_until(c_ready, 120, "topology");

	memset(&o, 0, sizeof(o));
	o.id = 1;
	o.size = B.size;
	B.t_start_ms = link_ms(NULL);
	if (B.ops->offload_start(B.tp, &o, &cause) != 0)
		die("%s", cause);
	run_until(c_done, 3600, "stations done");

	/* T_min over n_seg segments of Lf, and exactly. */
	nseg = (B.size + B.segment - 1) / B.segment;
	last = B.size - (nseg - 1) * B.segment;
	bits = 11.0;
	t_min = nseg * ((26.0 + B.segment + 19) * bits / B.baud +
	    B.module_ms / 1000.0);
	t_exact = (nseg - 1) * ((26.0 + B.segment + 19) * bits / B.baud +
	    B.module_ms / 1000.0) + (26.0 + last + 19) * bits / B.baud +
	    B.module_ms / 1000.0;
	hop1 = status_num("transfer_ms") / 1000.0;
	dist = status_num("distribution_ms") / 1000.0;
	printf("{\"size\": %u, \"segment\": %u, \"n_seg\": %u, \"baud\": %u, "
	    "\"t_module_ms\": %u, \"t_min_s\": %.3f, \"t_min_exact_s\": %.3f, "
	    "\"hop1_s\": %.3f, \"hop1_vs_t_min\": %.4f, "
	    "\"within_t_min_over_0.9\": %s, \"stations\": %u, \"levels\": %u, "
	    "\"loss_pct\": %g, \"distribution_s\": %.3f, "
	    "\"offload_start_to_done_s\": %.3f, \"blocks_broadcast\": %.0f, "
	    "\"blocks_unicast\": %.0f, \"queries\": %.0f, "
	    "\"time_scale\": %g}\n",
	    B.size, B.segment, nseg, B.baud, B.module_ms, t_min, t_exact,
	    hop1, hop1 / t_exact, hop1 <= t_min / 0.9 ? "true" : "false",
	    B.stations, B.levels, B.loss, dist,
	    (double)(B.t_done_ms - B.t_start_ms) / 1000.0,
	    status_num("blocks_broadcast"), status_num("blocks_unicast"),
	    status_num("queries"), B.scale);

	B.ops->close(B.tp);
	for (i = 0; i < B.stations; i++)
		close(B.dev[i].fd);
	kill(B.sim, SIGTERM);
	waitpid(B.sim, NULL, 0);
	snprintf(path, sizeof(path), "%s/ctl", B.dir);
	(void)unlink(path);
	(void)rmdir(B.dir);
	return (0);
}
