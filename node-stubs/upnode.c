/*
 * upnode.c: a simulated end node (docs/upnode.md).
 *
 * upnode --id N --hw MODEL --component NAME=VERSION [--component ...]
 *     --state-dir DIR --pubkey PUBLIC.pem [--transport NAME]
 *     [--link-opt KEY=VALUE ...] [--group 239.255.42.1] [--port 4242]
 *     [--iface 127.0.0.1] [--slot-size BYTES] [--drop-pct P] [--seed S]
 *     [--crash-at POINT] [--reject CODE] [--health ok|fail] [-v]
 *     [--fec-rows N]
 *
 * One process is one node: the portable engine of up/ (up_node.c) on the
 * POSIX port of node_port.c and the link --transport picks (node_link.c;
 * the UDP multicast of node_lan.c by default), driven by a plain poll()
 * loop whose timeout is the engine's next timer.  Exit 0 on
 * SIGTERM/SIGINT, 1 on a runtime error, 2 on a usage error, 3 at a
 * --crash-at point.
 */
#include <sys/types.h>

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

#include "up.h"
#include "upnode.h"

/* Frames handled per fd and poll round, so timers still run under load. */
#define RX_BURST	256

static volatile sig_atomic_t quit;
static bool		 verbose;

static struct node_conf	 conf;
static struct node_port	 port;
static struct node_link	*link_;
static struct node_link_caps link_caps;
static struct up_node_link up_link;
static uint8_t		*rxbuf;
static struct up_node	 engine;
static uint8_t		*bitmap;
/* The source the link last learnt the gateway from (handle_frame). */
static struct node_link_src gw_src;
static bool		 gw_src_known;
/*
 * TS004 parity decoding (docs/up-node-engine.md, "Parity"): four groups
 * of 64 blocks in progress with room for every row, about 380 KB.
 */
#define NODE_FEC_WS	(UP_NODE_FEC_SLOTS * (sizeof(struct up_fec_dec) + \
    64 * UP_FRAME_MAX) + 2 * UP_FRAME_MAX + 16)
static uint64_t		 fec_ws[NODE_FEC_WS / 8 + 1];
/* The engine's hash reads: one pread per step, not per 1,426 bytes. */
static uint8_t		 hash_buf[UP_NODE_VERIFY_STEP];
static uint64_t		 drop_rng;
static void		 oob_reset(void);

static void __attribute__((__noreturn__))
usage(void)
{
	fprintf(stderr,
	    "usage: upnode --id N --hw MODEL --component NAME=VERSION "
	    "[--component ...]\n"
	    "              --state-dir DIR --pubkey PUBLIC.pem "
	    "[--transport NAME]\n"
	    "              [--link-opt KEY=VALUE ...] "
	    "[--group 239.255.42.1] [--port 4242]\n"
	    "              [--iface 127.0.0.1] [--slot-size BYTES] "
	    "[--drop-pct P] [--seed S]\n"
	    "              [--crash-at POINT] [--reject CODE] "
	    "[--health ok|fail] [--time-scale S] [-v]\n"
	    "              [--fec-rows N]\n"
	    "POINT: offer, block:N, rows:N, verified, activate, confirm\n"
	    "--transport help lists the links and their options\n");
	exit(2);
}

static void __attribute__((__noreturn__, __format__(__printf__, 1, 2)))
badarg(const char *fmt, ...)
{
	va_list		 ap;

	fprintf(stderr, "upnode: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	usage();
}

static void __attribute__((__format__(__printf__, 2, 0)))
log_hook(int level, const char *fmt, va_list ap)
{
	if (level >= UP_LOG_DEBUG && !verbose)
		return;
	fprintf(stderr, "upnode: ");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

static void
on_signal(int sig)
{
	quit = 1;
}

/* ------------------------------------------------------------------ */
/* Command line                                                       */

static uint64_t
parse_u64(const char *opt, const char *s, int base)
{
	unsigned long long v;
	char		*end;

	errno = 0;
	if (base == 0)
		base = (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) ? 16 : 10;
	if (s[0] == '-' || s[0] == '\0')
		badarg("%s: bad number: %s", opt, s);
	v = strtoull(s, &end, base);
	if (errno != 0 || *end != '\0')
		badarg("%s: bad number: %s", opt, s);
	return (v);
}

static void
parse_component(const char *s)
{
	struct up_component *c;
	const char	*eq;
	size_t		 nl;
	unsigned int	 i;

	if (conf.ncomp >= UP_MAX_COMPONENTS)
		badarg("at most %d components", UP_MAX_COMPONENTS);
	if ((eq = strchr(s, '=')) == NULL || eq == s || eq[1] == '\0')
		badarg("--component: NAME=VERSION: %s", s);
	nl = (size_t)(eq - s);
	if (nl > UP_NAME_MAX || strlen(eq + 1) > UP_VER_MAX)
		badarg("--component: name or version too long: %s", s);
	c = &conf.comp[conf.ncomp];
	memcpy(c->name, s, nl);
	c->name[nl] = '\0';
	snprintf(c->version, sizeof(c->version), "%s", eq + 1);
	for (i = 0; i < conf.ncomp; i++)
		if (strcmp(conf.comp[i].name, c->name) == 0)
			badarg("--component: %s given twice", c->name);
	conf.ncomp++;
}

static uint32_t
parse_size(const char *s)
{
	unsigned long long v;
	char		*end;

	errno = 0;
	if (s[0] == '-' || s[0] == '\0')
		badarg("--slot-size: bad size: %s", s);
	v = strtoull(s, &end, 10);
	if (errno != 0)
		badarg("--slot-size: bad size: %s", s);
	if (*end == 'k' || *end == 'K') {
		v *= 1024;
		end++;
	} else if (*end == 'm' || *end == 'M') {
		v *= 1024 * 1024;
		end++;
	}
	if (*end != '\0' || v == 0 || v > NODE_SLOT_SIZE_MAX)
		badarg("--slot-size: 1 to %u bytes (K and M suffixes): %s",
		    NODE_SLOT_SIZE_MAX, s);
	return ((uint32_t)v);
}

static void
parse_crash(const char *s)
{
	if (strcmp(s, "offer") == 0)
		conf.crash = NODE_CRASH_OFFER;
	else if (strcmp(s, "verified") == 0)
		conf.crash = NODE_CRASH_VERIFIED;
	else if (strcmp(s, "activate") == 0)
		conf.crash = NODE_CRASH_ACTIVATE;
	else if (strcmp(s, "confirm") == 0)
		conf.crash = NODE_CRASH_CONFIRM;
	else if (strncmp(s, "block:", 6) == 0) {
		conf.crash = NODE_CRASH_BLOCK;
		conf.crash_block = (uint32_t)parse_u64("--crash-at", s + 6,
		    10);
		if (conf.crash_block == 0)
			badarg("--crash-at: block:N needs N >= 1");
	} else if (strncmp(s, "rows:", 5) == 0) {
		conf.crash = NODE_CRASH_ROWS;
		conf.crash_rows = (uint32_t)parse_u64("--crash-at", s + 5,
		    10);
		if (conf.crash_rows == 0)
			badarg("--crash-at: rows:N needs N >= 1");
	} else
		badarg("--crash-at: unknown point: %s", s);
}

/* A result code by number or by name ("declined", "low_battery"). */
static int
parse_result(const char *s)
{
	uint64_t	 v;
	int		 r;

	if (s[0] >= '0' && s[0] <= '9') {
		v = parse_u64("--reject", s, 10);
		if (v == 0 || v > 255)
			badarg("--reject: a code from 1 to 255: %s", s);
		return ((int)v);
	}
	for (r = 1; r <= UP_R_DOWNGRADE; r++)
		if (strcmp(up_result_str(r), s) == 0)
			return (r);
	badarg("--reject: unknown result code: %s", s);
}

/* `upnode --transport help': the links and their options. */
static void __attribute__((__noreturn__))
list_links(void)
{
	const struct node_link_ops *const *l;
	const struct node_link_opt *o;

	for (l = node_link_list(); *l != NULL; l++) {
		printf("%s: %s\n", (*l)->name, (*l)->help);
		for (o = (*l)->options; o != NULL && o->name != NULL; o++)
			printf("    %-12s %s (%s%s)\n", o->name, o->help,
			    o->def != NULL ? "default " : "required",
			    o->def != NULL ? o->def : "");
	}
	exit(0);
}

/* One link option, from --link-opt KEY=VALUE or a shorthand (--group). */
static void
add_link_opt(const char *opt, const char *key, const char *value)
{
	struct node_link_kv *kv;

	if (conf.nlinkopt >= NODE_LINK_OPTS_MAX)
		badarg("%s: at most %d link options", opt,
		    NODE_LINK_OPTS_MAX);
	kv = &conf.linkopt[conf.nlinkopt++];
	kv->key = key;
	kv->value = value;
}

static void
parse_link_opt(char *s)
{
	char		*eq;

	if ((eq = strchr(s, '=')) == NULL || eq == s)
		badarg("--link-opt: KEY=VALUE: %s", s);
	*eq = '\0';
	add_link_opt("--link-opt", s, eq + 1);
}

/*
 * Every link option against the chosen link's table, once the link is
 * known (--transport may come after them).  The shorthands name the
 * option they stand for in the error.
 */
static void
check_link_opts(void)
{
	const struct node_link_opt *o;
	const char	*why;
	unsigned int	 i;

	for (i = 0; i < conf.nlinkopt; i++) {
		why = node_link_opt_check(conf.link, conf.linkopt[i].key,
		    conf.linkopt[i].value);
		if (why != NULL)
			badarg("--transport %s: %s: %s: %s", conf.link->name,
			    conf.linkopt[i].key, why, conf.linkopt[i].value);
	}
	for (o = conf.link->options; o != NULL && o->name != NULL; o++)
		if (o->def == NULL && node_conf_link_opt(&conf, o->name) ==
		    NULL)
			badarg("--transport %s: --link-opt %s=... is required",
			    conf.link->name, o->name);
}

static void
parse_args(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "id", required_argument, NULL, 'i' },
		{ "hw", required_argument, NULL, 'H' },
		{ "component", required_argument, NULL, 'c' },
		{ "state-dir", required_argument, NULL, 'd' },
		{ "pubkey", required_argument, NULL, 'k' },
		{ "transport", required_argument, NULL, 'T' },
		{ "link-opt", required_argument, NULL, 'o' },
		{ "group", required_argument, NULL, 'g' },
		{ "port", required_argument, NULL, 'p' },
		{ "iface", required_argument, NULL, 'I' },
		{ "slot-size", required_argument, NULL, 's' },
		{ "drop-pct", required_argument, NULL, 'D' },
		{ "seed", required_argument, NULL, 'S' },
		{ "time-scale", required_argument, NULL, 't' },
		{ "crash-at", required_argument, NULL, 'C' },
		{ "reject", required_argument, NULL, 'R' },
		{ "health", required_argument, NULL, 'h' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "fec-rows", required_argument, NULL, 'F' },
		{ NULL, 0, NULL, 0 }
	};
	char		*end;
	bool		 seeded = false;
	int		 ch;

	conf.link = node_link_list()[0];
	conf.slot_size = NODE_SLOT_SIZE_DEFAULT;
	conf.time_scale = 1;
	conf.health_ok = true;
	conf.fec_rows = -1;

	while ((ch = getopt_long(argc, argv, "v", longopts, NULL)) != -1) {
		switch (ch) {
		case 'i':
			conf.id = parse_u64("--id", optarg, 0);
			if (conf.id == 0)
				badarg("--id: must not be 0");
			break;
		case 'H':
			if (optarg[0] == '\0' || strlen(optarg) > UP_NAME_MAX)
				badarg("--hw: 1 to %d bytes", UP_NAME_MAX);
			snprintf(conf.hw, sizeof(conf.hw), "%s", optarg);
			break;
		case 'c':
			parse_component(optarg);
			break;
		case 'd':
			conf.state_dir = optarg;
			break;
		case 'k':
			conf.pubkey = optarg;
			break;
		case 'T':
			if (strcmp(optarg, "help") == 0)
				list_links();
			if ((conf.link = node_link_find(optarg)) == NULL)
				badarg("--transport: unknown link: %s "
				    "(--transport help lists them)", optarg);
			break;
		case 'o':
			parse_link_opt(optarg);
			break;
		/* The LAN's options by their historical names. */
		case 'g':
			add_link_opt("--group", "group", optarg);
			break;
		case 'p':
			add_link_opt("--port", "port", optarg);
			break;
		case 'I':
			add_link_opt("--iface", "iface", optarg);
			break;
		case 's':
			conf.slot_size = parse_size(optarg);
			break;
		case 'D':
			errno = 0;
			conf.drop_pct = strtod(optarg, &end);
			if (errno != 0 || *end != '\0' || optarg[0] == '\0' ||
			    !(conf.drop_pct >= 0 && conf.drop_pct <= 100))
				badarg("--drop-pct: 0 to 100: %s", optarg);
			break;
		case 'S':
			conf.seed = parse_u64("--seed", optarg, 0);
			seeded = true;
			break;
		case 't':
			errno = 0;
			conf.time_scale = strtod(optarg, &end);
			if (errno != 0 || *end != '\0' || optarg[0] == '\0' ||
			    !(conf.time_scale >= 1 && conf.time_scale <= 1000))
				badarg("--time-scale: 1 to 1000: %s", optarg);
			break;
		case 'C':
			parse_crash(optarg);
			break;
		case 'R':
			conf.reject = parse_result(optarg);
			break;
		case 'h':
			if (strcmp(optarg, "ok") == 0)
				conf.health_ok = true;
			else if (strcmp(optarg, "fail") == 0)
				conf.health_ok = false;
			else
				badarg("--health: ok or fail: %s", optarg);
			break;
		case 'v':
			conf.verbose = true;
			break;
		case 'F':
			if (parse_u64("--fec-rows", optarg, 10) >
			    UP_FEC_K_MAX)
				badarg("--fec-rows: 0 to %d: %s",
				    UP_FEC_K_MAX, optarg);
			conf.fec_rows = (int)parse_u64("--fec-rows", optarg,
			    10);
			break;
		default:
			usage();
		}
	}
	if (optind != argc)
		badarg("unexpected argument: %s", argv[optind]);
	if (conf.id == 0 || conf.hw[0] == '\0' || conf.ncomp == 0 ||
	    conf.state_dir == NULL || conf.pubkey == NULL)
		badarg("--id, --hw, --component, --state-dir and --pubkey "
		    "are required");
	check_link_opts();
	if (!seeded)
		conf.seed = (uint64_t)time(NULL) << 20 ^ (uint64_t)getpid();
}

/* ------------------------------------------------------------------ */
/* Boot and the loop                                                  */

static void __attribute__((__noreturn__))
die(const char *what, char *cause)
{
	fprintf(stderr, "upnode: %s: %s\n", what,
	    cause != NULL ? cause : strerror(errno));
	free(cause);
	exit(1);
}

/*
 * The engine's view of the link (docs/up-protocol.md §11.1): a link
 * whose frames are smaller than a full UP frame speaks the compact form.
 */
static void
node_up_link(const struct node_link_caps *c, struct up_node_link *l)
{
	memset(l, 0, sizeof(*l));
	if (c->mtu_up < UP_FRAME_MAX)
		l->uplink_mtu = (uint16_t)c->mtu_up;
	if ((c->flags & NODE_LINK_COMPACT) != 0 || c->mtu_up < UP_FRAME_MAX ||
	    c->rx_max < UP_FRAME_MAX)
		l->flags |= UP_NL_COMPACT;
	if ((c->flags & NODE_LINK_WEAK_CHECK) != 0)
		l->flags |= UP_NL_CRC;
	if ((c->flags & NODE_LINK_ADDRESSED) != 0)
		l->flags |= UP_NL_ADDRESSED;
	l->slots = c->boot_slots;
	l->slot_ms = c->boot_slot_ms;
}

/*
 * (Re)boot: the simulated bootloader, then a fresh engine restored from
 * state.bin, exactly as after a power cycle: nothing of the old engine's
 * RAM survives.
 */
static void
node_boot(void)
{
	struct up_node_info info;
	char		*cause = NULL;
	unsigned int	 i;
	int		 e;

	memset(&engine, 0, sizeof(engine));
	memset(bitmap, 0, port.bitmap_cap);
	oob_reset();
	gw_src_known = false;
	if (node_port_boot(&port, &info, &cause) == -1)
		die("boot", cause);
	if (conf.link->boot != NULL)
		conf.link->boot(link_);
	/* What the link can bring us whole (§4.1 max_frame). */
	if (link_caps.rx_max < info.max_frame)
		info.max_frame = (uint16_t)link_caps.rx_max;
	up_node_init(&engine, &node_port_ops, &port, &info, bitmap,
	    port.bitmap_cap);
	up_node_set_link(&engine, &up_link);
	up_node_set_save_every(&engine, NODE_SAVE_EVERY);
	up_node_set_delta_mem(&engine, &port.vcd, port.vcd_buf,
	    sizeof(port.vcd_buf));
	up_node_set_fec_workspace(&engine, fec_ws, sizeof(fec_ws));
	/* --fec-rows: a node short of RAM, its rows beyond in rows.bin. */
	if (conf.fec_rows >= 0)
		up_node_set_fec_rows(&engine, (uint16_t)conf.fec_rows);
	up_node_set_hash_buf(&engine, hash_buf, sizeof(hash_buf));
	for (i = 0; i < info.ncomp; i++)
		up_logf(UP_LOG_INFO, "node %016llx: runs %s=%s (slot %c)",
		    (unsigned long long)conf.id, info.comp[i].name,
		    info.comp[i].version, 'A' + port.boot.active);
	if ((e = up_node_start(&engine, NULL)) != UP_OK)
		die("start", strdup(up_strerror(e)));
	if (conf.link->engine != NULL)
		conf.link->engine(link_, &engine);
}

/* --drop-pct: lose this share of received frames, reproducibly. */
static bool
drop_frame(void)
{
	double		 r;

	if (conf.drop_pct <= 0)
		return (false);
	r = (double)(node_rand(&drop_rng) >> 11) / 9007199254740992.0;
	return (r * 100 < conf.drop_pct);
}

static bool
is_gateway_type(uint8_t type)
{
	switch (type) {
	case UP_T_DISCOVER:
	case UP_T_OFFER:
	case UP_T_DATA:
	case UP_T_PARITY:
	case UP_T_XOR:
	case UP_T_STATUS_REQ:
	case UP_T_VERIFY:
	case UP_T_ACTIVATE:
	case UP_T_RESULT_ACK:
	case UP_T_ABORT:
		return (true);
	default:
		return (false);
	}
}

static void
handle_frame(const uint8_t *buf, size_t len, const struct node_link_src *src)
{
	static struct up_msg m;
	char		 from[64];
	uint8_t		 type;
	int		 e;

	/*
	 * Replies go to the sender of the gateway's frames, learnt before
	 * the engine answers this one.  Only a frame that decodes whole
	 * may move it; from the source it was learnt from nothing is to
	 * learn, and the frame is not decoded twice (its CRC is the node's
	 * largest cost per byte).
	 */
	if (conf.link->gateway != NULL && (!gw_src_known ||
	    src->len != gw_src.len ||
	    memcmp(src->b, gw_src.b, src->len) != 0) &&
	    up_peek(buf, len, &type, NULL) == UP_OK &&
	    is_gateway_type(type) && up_decode(buf, len, &m) == UP_OK) {
		conf.link->gateway(link_, src);
		gw_src = *src;
		gw_src_known = true;
	}
	if ((e = up_node_input(&engine, buf, len)) != UP_OK) {
		if (conf.link->src_fmt == NULL ||
		    conf.link->src_fmt(src, from, sizeof(from)) == -1)
			snprintf(from, sizeof(from), "the %s link",
			    conf.link->name);
		up_logf(UP_LOG_DEBUG, "frame from %s: %s", from,
		    up_strerror(e));
	}
}

/* The link holds frames it read ahead for this fd (node_link_ops). */
static bool
link_pending(const struct pollfd *pfd)
{
	return (conf.link->pending != NULL &&
	    conf.link->pending(link_, pfd));
}

static void
drain(const struct pollfd *pfd)
{
	struct node_link_src src;
	ssize_t		 n = 0;
	int		 count = 0;

	while (count++ < RX_BURST && (n = conf.link->recv(link_, pfd, rxbuf,
	    link_caps.rx_max, &src)) > 0) {
		if (drop_frame())
			continue;
		handle_frame(rxbuf, (size_t)n, &src);
		if (port.reboot_pending) {
			up_logf(UP_LOG_INFO, "node %016llx: rebooting",
			    (unsigned long long)conf.id);
			node_boot();
		}
	}
	if (n == -1)
		up_logf(UP_LOG_WARN, "recv: %s", strerror(errno));
}

/*
 * Blocks out of band (docs/up-node-engine.md): pieces of the package the
 * link delivered by other means than DATA frames (a carrier module's
 * file transfer, node_plc.c) are gathered here into the session's
 * blocks, each handed to the engine once whole (up_node_put_block).  The
 * staging copy is RAM, as on a device that keeps a block buffer: it is
 * lost with a reboot, and what the module then no longer repeats comes
 * in DATA frames, repaired from the node's STATUS like any loss.
 */
static struct {
	uint32_t	 session;
	uint32_t	 size;
	uint16_t	 bsize;
	uint32_t	 nblocks;
	uint8_t		*buf;		/* size bytes */
	uint8_t		*have;		/* a bit a byte of buf */
	uint32_t	*cnt;		/* bytes of each block gathered */
	uint8_t		*put;		/* a bit a block: handed over */
	uint32_t	 ready;		/* whole, not handed over yet */
	uint8_t		 piece[8192];
} oob;

static void
oob_reset(void)
{
	free(oob.buf);
	free(oob.have);
	free(oob.cnt);
	free(oob.put);
	oob.buf = oob.have = oob.put = NULL;
	oob.cnt = NULL;
	oob.session = oob.size = oob.nblocks = oob.ready = 0;
	oob.bsize = 0;
}

static bool
oob_session(uint32_t session, const struct up_offer *o)
{
	if (oob.buf != NULL && oob.session == session &&
	    oob.size == o->size && oob.bsize == o->block_size)
		return (true);
	oob_reset();
	if (o->size == 0 || o->block_size == 0 || o->nblocks == 0)
		return (false);
	oob.buf = malloc(o->size);
	oob.have = calloc(1, ((size_t)o->size + 7) / 8);
	oob.cnt = calloc(o->nblocks, sizeof(*oob.cnt));
	oob.put = calloc(1, ((size_t)o->nblocks + 7) / 8);
	if (oob.buf == NULL || oob.have == NULL || oob.cnt == NULL ||
	    oob.put == NULL) {
		oob_reset();
		return (false);
	}
	oob.session = session;
	oob.size = o->size;
	oob.bsize = o->block_size;
	oob.nblocks = o->nblocks;
	return (true);
}

/* Whole blocks to the engine; UP_ESTATE (not that far yet): later. */
static void
oob_put(void)
{
	uint32_t	 b, lo, len;
	int		 rc;

	for (b = 0; oob.ready > 0 && b < oob.nblocks; b++) {
		lo = b * (uint32_t)oob.bsize;
		len = b + 1 == oob.nblocks ? oob.size - lo : oob.bsize;
		if (oob.cnt[b] != len || (oob.put[b / 8] & (1u << (b % 8))))
			continue;
		rc = up_node_put_block(&engine, oob.session, b, oob.buf + lo,
		    len);
		if (rc == UP_ESTATE)
			return;
		if (rc != UP_OK)
			up_logf(UP_LOG_WARN, "node %016llx: block %u out of "
			    "band: %s", (unsigned long long)conf.id, b,
			    up_strerror(rc));
		oob.put[b / 8] |= (uint8_t)(1u << (b % 8));
		oob.ready--;
	}
}

static void
node_oob(void)
{
	uint64_t	 off, i;
	uint32_t	 session = 0, b, lo, len;
	uint64_t	 size = 0;
	ssize_t		 n;
	uint8_t		 st;

	if (conf.link->oob == NULL)
		return;
	st = up_node_get_state(&engine, &session, NULL);
	if (st == UP_NS_RECEIVING && oob_session(session, &engine.offer))
		size = oob.size;
	else if (oob.buf != NULL)
		/* Not receiving (any more): what was staged is no one's,
		 * even if the same session is accepted again after an
		 * ABORT (its engine starts that over). */
		oob_reset();
	if (st == UP_NS_DOWNLOADED || st == UP_NS_VERIFIED ||
	    st == UP_NS_ACTIVATING) {
		/*
		 * It holds the whole package already (it came another way,
		 * or from an earlier distribution): pieces of a file that
		 * long are taken and dropped, so the module counts the
		 * station done instead of repeating them until it gives
		 * the station up.
		 */
		while (conf.link->oob(link_, engine.offer.size, &off,
		    oob.piece, sizeof(oob.piece)) > 0)
			;
		return;
	}
	while ((n = conf.link->oob(link_, size, &off, oob.piece,
	    sizeof(oob.piece))) > 0) {
		if (off > oob.size || (uint64_t)n > oob.size - off)
			continue;
		memcpy(oob.buf + off, oob.piece, (size_t)n);
		for (i = off; i < off + (uint64_t)n; i++) {
			if (oob.have[i / 8] & (1u << (i % 8)))
				continue;
			oob.have[i / 8] |= (uint8_t)(1u << (i % 8));
			b = (uint32_t)(i / oob.bsize);
			lo = b * (uint32_t)oob.bsize;
			len = b + 1 == oob.nblocks ? oob.size - lo :
			    oob.bsize;
			if (++oob.cnt[b] == len)
				oob.ready++;
		}
	}
	if (size != 0)
		oob_put();
}

int
main(int argc, char **argv)
{
	struct sigaction sa;
	struct pollfd	 pfd[NODE_LINK_FDS_MAX];
	struct timespec	 ts;
	sigset_t	 block, orig;
	char		*cause = NULL;
	uint32_t	 ms;
	int		 i, n, nfd;

	parse_args(argc, argv);
	verbose = conf.verbose;
	up_log_set_hook(log_hook);
	/* Same seed, different nodes: independent losses (per-node drop). */
	drop_rng = conf.seed ^ (conf.id * 0x9e3779b97f4a7c15ULL);

	/* Signals only interrupt ppoll(): no race with the flag check. */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigprocmask(SIG_BLOCK, &block, &orig);
	sigdelset(&orig, SIGTERM);
	sigdelset(&orig, SIGINT);

	if (node_port_open(&port, &conf, &cause) == -1)
		die("open", cause);
	if ((link_ = conf.link->open(&conf, port.dirfd, &cause)) == NULL)
		die(conf.link->name, cause);
	port.link = link_;
	conf.link->caps(link_, &link_caps);
	node_up_link(&link_caps, &up_link);
	if ((rxbuf = malloc(link_caps.rx_max)) == NULL)
		die("receive buffer", NULL);
	if ((bitmap = malloc(port.bitmap_cap)) == NULL)
		die("bitmap", NULL);
	node_boot();

	while (!quit) {
		nfd = conf.link->pollfds(link_, pfd, NODE_LINK_FDS_MAX);
		for (i = 0; i < nfd; i++)
			pfd[i].revents = 0;
		ms = up_node_next_ms(&engine);
		/* The engine's timers are on the (scaled) node clock. */
		if (conf.time_scale > 1)
			ms = (uint32_t)((double)ms / conf.time_scale);
		/* Frames the link read ahead are due now. */
		for (i = 0; i < nfd; i++)
			if (link_pending(&pfd[i]))
				ms = 0;
		ts.tv_sec = ms / 1000;
		ts.tv_nsec = (long)(ms % 1000) * 1000000;
		n = ppoll(pfd, (nfds_t)nfd, &ts, &orig);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			die("poll", NULL);
		}
		for (i = 0; i < nfd; i++)
			if (pfd[i].revents != 0 || link_pending(&pfd[i]))
				drain(&pfd[i]);
		node_oob();
		up_node_tick(&engine);
		if (port.reboot_pending) {
			up_logf(UP_LOG_INFO, "node %016llx: rebooting",
			    (unsigned long long)conf.id);
			node_boot();
		}
	}

	/* A clean stop keeps every block received so far. */
	(void)up_node_flush(&engine);
	up_logf(UP_LOG_INFO, "node %016llx: stopped",
	    (unsigned long long)conf.id);
	conf.link->close(link_);
	node_port_close(&port);
	oob_reset();
	free(rxbuf);
	free(bitmap);
	return (0);
}
