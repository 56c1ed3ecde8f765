/*
 * test_upnode_live.c: the real upnode binary against a scripted gateway
 * over UDP multicast on loopback (a private group and port, so other
 * tests on this host do not interfere).  Covers the whole session flow of
 * docs/up-protocol.md §5.2: announce, discover, offer/accept, data with
 * gaps, status, repair, verify, activate with the in-process reboot, RESULT
 * resend until RESULT_ACK, SIGTERM; a --crash-at power cut and resume;
 * health check failure (rollback); a forged signature; --reject; repair
 * rounds over a --drop-pct lossy link; the link options (--transport,
 * --link-opt and their errors).
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "up.h"
#include "ub_test.h"

#define NODE		0x77ULL
#define IMG_SIZE	50000
#define BS		1000
#define NB		50
#define SESSION		0x5e550001u

static char		 tmpdir[64], statedir[128], pubpath[128];
static char		 logpath[128], portstr[16], group[32];
static EVP_PKEY		*priv;
static uint8_t		 image[IMG_SIZE];
static int		 gfd = -1, ufd = -1;	/* gateway sockets */
static struct sockaddr_in gaddr;
static pid_t		 child = -1;


static void
rm_dir(const char *path)
{
	char		 p[512];
	struct dirent	*de;
	DIR		*d;

	if ((d = opendir(path)) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		snprintf(p, sizeof(p), "%s/%s", path, de->d_name);
		if (unlink(p) == -1 && errno == EISDIR)
			rm_dir(p);
	}
	closedir(d);
	rmdir(path);
}

static void
dump_log(void)
{
	char		 line[512];
	FILE		*f;

	if ((f = fopen(logpath, "r")) == NULL)
		return;
	fprintf(stderr, "---- upnode log ----\n");
	while (fgets(line, sizeof(line), f) != NULL)
		fputs(line, stderr);
	fclose(f);
}

/* Starts upnode with the common options plus `extra' (NULL-ended). */
static void
spawn(const char *extra[])
{
	const char	*argv[40];
	int		 n = 0, fd;

	argv[n++] = UB_BINARY_DIR "/bin/upnode";
	argv[n++] = "--id";
	argv[n++] = "0x77";
	argv[n++] = "--hw";
	argv[n++] = "sim-1";
	argv[n++] = "--component";
	argv[n++] = "app=1.0.0";
	argv[n++] = "--component";
	argv[n++] = "os=2.3";
	argv[n++] = "--state-dir";
	argv[n++] = statedir;
	argv[n++] = "--pubkey";
	argv[n++] = pubpath;
	argv[n++] = "--group";
	argv[n++] = group;
	argv[n++] = "--port";
	argv[n++] = portstr;
	argv[n++] = "--iface";
	argv[n++] = "127.0.0.1";
	argv[n++] = "--slot-size";
	argv[n++] = "1M";
	argv[n++] = "-v";
	while (extra != NULL && *extra != NULL)
		argv[n++] = *extra++;
	argv[n] = NULL;
	child = fork();
	assert_true(child != -1);
	if (child == 0) {
		fd = open(logpath, O_WRONLY | O_CREAT | O_APPEND, 0644);
		if (fd != -1)
			dup2(fd, 2);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
}

/* Waits for the child; returns its exit status or -1 after 5 s. */
static int
reap(void)
{
	uint64_t	 end = ubt_now_ms() + 5000;
	int		 st;
	pid_t		 p;

	while (ubt_now_ms() < end) {
		p = waitpid(child, &st, WNOHANG);
		if (p == child) {
			child = -1;
			return (WIFEXITED(st) ? WEXITSTATUS(st) : 128);
		}
		usleep(10000);
	}
	return (-1);
}

static void
stop(void)
{
	if (child > 0) {
		kill(child, SIGTERM);
		if (reap() == -1) {
			kill(child, SIGKILL);
			waitpid(child, NULL, 0);
			child = -1;
		}
	}
}

static void
gw_send(const struct up_msg *m)
{
	uint8_t		 buf[UP_FRAME_MAX];
	int		 len;

	len = up_encode(m, buf, sizeof(buf));
	assert_true(len > 0);
	assert_true(sendto(ufd, buf, (size_t)len, 0,
	    (struct sockaddr *)&gaddr, sizeof(gaddr)) == len);
}

/*
 * Waits up to `ms' for a frame of `type' from the node; returns 1 (and
 * whether it came unicast) or 0 on timeout.  Other frames are skipped
 * (our own multicast loops back to the group socket).
 */
static int
gw_recv(uint8_t type, int ms, struct up_msg *m, int *unicast)
{
	static uint8_t	 buf[65536];
	struct pollfd	 pfd[2];
	uint64_t	 end = ubt_now_ms() + (uint64_t)ms;
	ssize_t		 n;
	int		 i, left;

	pfd[0].fd = gfd;
	pfd[1].fd = ufd;
	pfd[0].events = pfd[1].events = POLLIN;
	while ((left = (int)(end - ubt_now_ms())) > 0 && ubt_now_ms() < end) {
		if (poll(pfd, 2, left) <= 0)
			continue;
		for (i = 0; i < 2; i++) {
			if (!(pfd[i].revents & POLLIN))
				continue;
			n = recv(pfd[i].fd, buf, sizeof(buf), 0);
			if (n <= 0)
				continue;
			if (up_decode(buf, (size_t)n, m) != UP_OK ||
			    m->type != type)
				continue;
			if (unicast != NULL)
				*unicast = i == 1;
			return (1);
		}
	}
	return (0);
}

static void
expect(uint8_t type, struct up_msg *m, int *unicast)
{
	if (!gw_recv(type, 5000, m, unicast)) {
		dump_log();
		fail_msg("no frame of type %u from upnode", type);
	}
}

static void
offer_fill(struct up_offer *o)
{
	uint8_t		 desc[2048];
	EVP_MD_CTX	*ctx;
	size_t		 siglen = 64;
	int		 dlen;

	memset(o, 0, sizeof(*o));
	strcpy(o->component, "app");
	strcpy(o->to_version, "1.1.0");
	o->nhw = 1;
	strcpy(o->hw[0], "sim-1");
	o->kind = UP_KIND_FULL;
	o->size = o->image_size = IMG_SIZE;
	EVP_Digest(image, IMG_SIZE, o->sha256, NULL, EVP_sha256(), NULL);
	memcpy(o->image_sha256, o->sha256, 32);
	o->sig_alg = UP_SIG_ED25519;
	o->sig_len = 64;
	dlen = up_desc_encode(o, desc, sizeof(desc));
	assert_true(dlen > 0);
	assert_non_null(ctx = EVP_MD_CTX_new());
	assert_int_equal(EVP_DigestSignInit(ctx, NULL, NULL, NULL, priv), 1);
	assert_int_equal(EVP_DigestSign(ctx, o->sig, &siglen, desc,
	    (size_t)dlen), 1);
	EVP_MD_CTX_free(ctx);
	o->block_size = BS;
	o->nblocks = NB;
	o->deadline_s = 600;
}

static void
send_offer_in(const struct up_offer *o, uint32_t session)
{
	struct up_msg	 m;

	memset(&m, 0, sizeof(m));
	m.type = UP_T_OFFER;
	m.session = session;
	m.u.offer = *o;
	gw_send(&m);
}

static void
send_offer(const struct up_offer *o)
{
	send_offer_in(o, SESSION);
}

static void
send_block(uint32_t i, uint8_t flags)
{
	struct up_msg	 m;

	memset(&m, 0, sizeof(m));
	m.type = UP_T_DATA;
	m.flags = flags;
	m.session = SESSION;
	m.u.data.index = i;
	m.u.data.len = (uint16_t)(i == NB - 1 ? IMG_SIZE - i * BS : BS);
	m.u.data.data = image + i * BS;
	gw_send(&m);
	/* Loopback is lossless unless a receive buffer overflows. */
	if (i % 16 == 15)
		usleep(1000);
}

static void
send_target(uint8_t type, uint64_t node, uint16_t window)
{
	struct up_msg	 m;

	memset(&m, 0, sizeof(m));
	m.type = type;
	m.session = SESSION;
	m.u.target.node_id = node;
	m.u.target.window_ms = window;
	gw_send(&m);
}

static void
send_activate(uint32_t delay)
{
	struct up_msg	 m;

	memset(&m, 0, sizeof(m));
	m.type = UP_T_ACTIVATE;
	m.session = SESSION;
	m.u.activate.delay_ms = delay;
	gw_send(&m);
}

static void
read_running(char *buf, size_t cap)
{
	char		 p[256];
	ssize_t		 n;
	int		 fd;

	snprintf(p, sizeof(p), "%s/running", statedir);
	assert_true((fd = open(p, O_RDONLY)) != -1);
	n = read(fd, buf, cap - 1);
	close(fd);
	assert_true(n >= 0);
	buf[n] = '\0';
}

/* Offer, deliver everything, verify: the node ends VERIFIED or FAILED. */
static void
transfer(const struct up_offer *o, struct up_msg *m)
{
	uint32_t	 i;

	send_offer(o);
	expect(UP_T_ACCEPT, m, NULL);
	assert_int_equal(m->u.accept.code, UP_R_INITIAL);
	for (i = 0; i < NB; i++)
		send_block(i, 0);
	expect(UP_T_STATUS, m, NULL);
	assert_int_equal(m->u.status.state, UP_NS_DOWNLOADED);
	send_target(UP_T_VERIFY, 0, 0);
	expect(UP_T_RESULT, m, NULL);
}

static int
setup(void **state)
{
	struct sockaddr_in sin;
	struct ip_mreq	 mreq;
	unsigned char	 loop = 1;
	int		 one = 1;
	FILE		*f;
	size_t		 i;

	snprintf(tmpdir, sizeof(tmpdir), "/tmp/upnode-live-XXXXXX");
	assert_non_null(mkdtemp(tmpdir));
	snprintf(statedir, sizeof(statedir), "%s/state", tmpdir);
	snprintf(pubpath, sizeof(pubpath), "%s/pub.pem", tmpdir);
	snprintf(logpath, sizeof(logpath), "%s/upnode.log", tmpdir);
	/* A group and port of our own: 239.255.43.x, 30000..39999. */
	snprintf(portstr, sizeof(portstr), "%d", 30000 + getpid() % 10000);
	snprintf(group, sizeof(group), "239.255.43.%d", 1 + getpid() % 250);
	assert_non_null(priv = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519"));
	assert_non_null(f = fopen(pubpath, "w"));
	assert_int_equal(PEM_write_PUBKEY(f, priv), 1);
	fclose(f);
	for (i = 0; i < sizeof(image); i++)
		image[i] = (uint8_t)(i * 31 + (i >> 8));

	memset(&gaddr, 0, sizeof(gaddr));
	gaddr.sin_family = AF_INET;
	inet_pton(AF_INET, group, &gaddr.sin_addr);
	gaddr.sin_port = htons((uint16_t)atoi(portstr));
	/* The gateway listens on the group too (ANNOUNCE before it is
	 * known) and sends from its own unicast socket. */
	assert_true((gfd = socket(AF_INET, SOCK_DGRAM, 0)) != -1);
	setsockopt(gfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	assert_int_equal(bind(gfd, (struct sockaddr *)&gaddr, sizeof(gaddr)),
	    0);
	mreq.imr_multiaddr = gaddr.sin_addr;
	inet_pton(AF_INET, "127.0.0.1", &mreq.imr_interface);
	assert_int_equal(setsockopt(gfd, IPPROTO_IP, IP_ADD_MEMBERSHIP,
	    &mreq, sizeof(mreq)), 0);
	assert_true((ufd = socket(AF_INET, SOCK_DGRAM, 0)) != -1);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
	assert_int_equal(bind(ufd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	setsockopt(ufd, IPPROTO_IP, IP_MULTICAST_IF, &sin.sin_addr,
	    sizeof(sin.sin_addr));
	setsockopt(ufd, IPPROTO_IP, IP_MULTICAST_LOOP, &loop, sizeof(loop));
	return (0);
}

static int
teardown(void **state)
{
	stop();
	close(gfd);
	close(ufd);
	EVP_PKEY_free(priv);
	rm_dir(tmpdir);
	return (0);
}

static void
test_session(void **state)
{
	struct up_offer	 o;
	struct up_msg	 m;
	char		 running[256];
	uint64_t	 t0;
	int		 uni;
	uint32_t	 i;

	spawn(NULL);
	/* Boot: no gateway known yet, so the ANNOUNCE is multicast. */
	expect(UP_T_ANNOUNCE, &m, &uni);
	assert_false(uni);
	assert_true(m.u.announce.node_id == NODE);
	assert_int_equal(m.u.announce.state, UP_NS_IDLE);
	assert_int_equal(m.u.announce.ncomp, 2);
	/* DISCOVER: the answer comes unicast to the gateway. */
	memset(&m, 0, sizeof(m));
	m.type = UP_T_DISCOVER;
	m.u.discover.window_ms = 200;
	gw_send(&m);
	expect(UP_T_ANNOUNCE, &m, &uni);
	assert_true(uni);

	offer_fill(&o);
	send_offer(&o);
	expect(UP_T_ACCEPT, &m, &uni);
	assert_true(uni);
	assert_int_equal(m.u.accept.code, UP_R_INITIAL);
	assert_int_equal(m.u.accept.st.nbits, NB);
	for (i = 0; i < NB; i++)
		if (i != 7 && i != 20)
			send_block(i, 0);
	send_target(UP_T_STATUS_REQ, 0, 200);
	expect(UP_T_STATUS, &m, NULL);
	assert_int_equal(m.u.status.state, UP_NS_RECEIVING);
	assert_int_equal(m.u.status.st.held, NB - 2);
	assert_int_equal(m.u.status.st.first_missing, 7);
	assert_int_equal(m.u.status.st.bits[0], 0x01);
	assert_int_equal(m.u.status.st.bits[1], 0x20);	/* 20 - 7 = 13 */
	send_block(7, UP_F_REPAIR);
	send_block(20, UP_F_REPAIR);
	expect(UP_T_STATUS, &m, NULL);
	assert_int_equal(m.u.status.state, UP_NS_DOWNLOADED);
	assert_int_equal(m.u.status.st.held, NB);

	send_target(UP_T_VERIFY, 0, 0);
	expect(UP_T_RESULT, &m, NULL);
	assert_int_equal(m.u.result.state, UP_NS_VERIFIED);
	assert_int_equal(m.u.result.result, UP_R_INITIAL);

	send_activate(100);
	expect(UP_T_RESULT, &m, NULL);
	assert_int_equal(m.u.result.state, UP_NS_UPDATED);
	assert_int_equal(m.u.result.result, UP_R_SUCCESS);
	assert_string_equal(m.u.result.version, "1.1.0");
	read_running(running, sizeof(running));
	assert_string_equal(running, "app=1.1.0\nos=2.3\n");
	/* Resent after about a second until acknowledged. */
	t0 = ubt_now_ms();
	expect(UP_T_RESULT, &m, NULL);
	assert_true(ubt_now_ms() - t0 >= 700);
	send_target(UP_T_RESULT_ACK, NODE, 0);
	assert_int_equal(gw_recv(UP_T_RESULT, 3000, &m, NULL), 0);

	kill(child, SIGTERM);
	assert_int_equal(reap(), 0);
	/* A restart runs the new version and has nothing to resend. */
	spawn(NULL);
	expect(UP_T_ANNOUNCE, &m, &uni);
	assert_true(uni);		/* the gateway's address was kept */
	assert_int_equal(m.u.announce.state, UP_NS_UPDATED);
	assert_string_equal(m.u.announce.comp[0].version, "1.1.0");
	assert_int_equal(gw_recv(UP_T_RESULT, 1500, &m, NULL), 0);
	/* Its own session again: the gateway has its record, silence. */
	send_offer(&o);
	assert_int_equal(gw_recv(UP_T_ACCEPT, 1500, &m, NULL), 0);
	/* Another session of the version it runs: already. */
	send_offer_in(&o, SESSION + 1);
	expect(UP_T_ACCEPT, &m, NULL);
	assert_int_equal(m.u.accept.code, UP_R_ALREADY);
}

static void
test_crash_resume_rollback(void **state)
{
	static const char *crash[] = { "--crash-at", "block:10", NULL };
	static const char *fail[] = { "--health", "fail", NULL };
	struct up_offer	 o;
	struct up_msg	 m;
	char		 running[256];
	uint32_t	 i;

	spawn(crash);
	expect(UP_T_ANNOUNCE, &m, NULL);
	offer_fill(&o);
	send_offer(&o);
	expect(UP_T_ACCEPT, &m, NULL);
	for (i = 0; i < NB; i++)
		send_block(i, 0);
	assert_int_equal(reap(), 3);

	/* Power back: the session survived. */
	spawn(fail);
	expect(UP_T_ANNOUNCE, &m, NULL);
	assert_int_equal(m.u.announce.session, SESSION);
	assert_int_equal(m.u.announce.state, UP_NS_RECEIVING);
	transfer(&o, &m);
	assert_int_equal(m.u.result.state, UP_NS_VERIFIED);
	send_activate(0);
	/* The new image fails its health check: rolled back. */
	expect(UP_T_RESULT, &m, NULL);
	assert_int_equal(m.u.result.state, UP_NS_FAILED);
	assert_int_equal(m.u.result.result, UP_R_ROLLED_BACK);
	assert_string_equal(m.u.result.version, "1.0.0");
	read_running(running, sizeof(running));
	assert_string_equal(running, "app=1.0.0\nos=2.3\n");
}

static void
test_forged_and_rejected(void **state)
{
	static const char *rej[] = { "--reject", "declined", NULL };
	struct up_offer	 o;
	struct up_msg	 m;

	spawn(NULL);
	expect(UP_T_ANNOUNCE, &m, NULL);
	offer_fill(&o);
	/*
	 * A gateway that swapped the target version: the signature breaks,
	 * and the node sees it at the OFFER, before it erases anything.
	 */
	strcpy(o.to_version, "6.6.6");
	send_offer(&o);
	expect(UP_T_ACCEPT, &m, NULL);
	assert_int_equal(m.u.accept.code, UP_R_SIGNATURE);
	kill(child, SIGTERM);
	assert_int_equal(reap(), 0);

	spawn(rej);
	expect(UP_T_ANNOUNCE, &m, NULL);
	offer_fill(&o);
	send_offer(&o);
	expect(UP_T_ACCEPT, &m, NULL);
	assert_int_equal(m.u.accept.code, UP_R_DECLINED);
}

static void
test_crash_points(void **state)
{
	static const char *c_offer[] = { "--crash-at", "offer", NULL };
	static const char *c_verified[] = { "--crash-at", "verified", NULL };
	static const char *c_activate[] = { "--crash-at", "activate", NULL };
	static const char *c_confirm[] = { "--crash-at", "confirm", NULL };
	struct up_offer	 o;
	struct up_msg	 m;
	char		 running[256];
	uint32_t	 i;

	offer_fill(&o);
	/* offer: nothing of the session is saved. */
	spawn(c_offer);
	expect(UP_T_ANNOUNCE, &m, NULL);
	send_offer(&o);
	assert_int_equal(reap(), 3);
	spawn(c_verified);
	expect(UP_T_ANNOUNCE, &m, NULL);
	assert_int_equal(m.u.announce.session, 0);
	assert_int_equal(m.u.announce.state, UP_NS_IDLE);
	/* verified: VERIFIED is saved, its RESULT never left. */
	send_offer(&o);
	expect(UP_T_ACCEPT, &m, NULL);
	for (i = 0; i < NB; i++)
		send_block(i, 0);
	expect(UP_T_STATUS, &m, NULL);
	send_target(UP_T_VERIFY, 0, 0);
	assert_int_equal(reap(), 3);
	assert_int_equal(gw_recv(UP_T_RESULT, 200, &m, NULL), 0);
	/* activate: boot-once is set, the reboot never happened. */
	spawn(c_activate);
	expect(UP_T_ANNOUNCE, &m, NULL);
	assert_int_equal(m.u.announce.state, UP_NS_VERIFIED);
	send_activate(0);
	assert_int_equal(reap(), 3);
	read_running(running, sizeof(running));
	assert_string_equal(running, "app=1.0.0\nos=2.3\n");
	/* confirm: the next boot takes the new slot, saves UPDATED and
	 * loses power before the RESULT. */
	spawn(c_confirm);
	assert_int_equal(reap(), 3);
	read_running(running, sizeof(running));
	assert_string_equal(running, "app=1.1.0\nos=2.3\n");
	/* Power back: the unacknowledged RESULT goes out. */
	spawn(NULL);
	expect(UP_T_RESULT, &m, NULL);
	assert_int_equal(m.u.result.state, UP_NS_UPDATED);
	assert_int_equal(m.u.result.result, UP_R_SUCCESS);
	assert_string_equal(m.u.result.version, "1.1.0");
}

static void
resend_missing(void *arg, uint32_t i)
{
	int		*n = arg;

	send_block(i, UP_F_REPAIR);
	(*n)++;
}

static void
test_lossy_repair(void **state)
{
	static const char *lossy[] = { "--drop-pct", "30", "--seed", "5",
	    NULL };
	struct up_offer	 o;
	struct up_msg	 m;
	uint32_t	 i;
	int		 round, tries, sent = 0, got;

	spawn(lossy);
	expect(UP_T_ANNOUNCE, &m, NULL);
	offer_fill(&o);
	/* Repeated OFFERs until one gets through (§5.2 step 2). */
	for (tries = 0, got = 0; tries < 20 && !got; tries++) {
		send_offer(&o);
		got = gw_recv(UP_T_ACCEPT, 300, &m, NULL);
	}
	assert_true(got);
	for (i = 0; i < NB; i++)
		send_block(i, 0);
	/* Repair rounds: ask, resend the union of what is missing. */
	for (round = 0; round < 40; round++) {
		send_target(UP_T_STATUS_REQ, 0, 50);
		if (!gw_recv(UP_T_STATUS, 400, &m, NULL))
			continue;
		if (m.u.status.state == UP_NS_DOWNLOADED)
			break;
		up_status_foreach_missing(&m.u.status.st, NB, resend_missing,
		    &sent);
	}
	if (m.u.status.state != UP_NS_DOWNLOADED) {
		dump_log();
		fail_msg("not downloaded after %d rounds", round);
	}
	/* About 30 % of 50 blocks were lost and repaired. */
	assert_true(sent >= 5);
	send_target(UP_T_VERIFY, NODE, 0);
	for (tries = 0, got = 0; tries < 20 && !got; tries++) {
		got = gw_recv(UP_T_RESULT, 300, &m, NULL);
		if (!got)
			send_target(UP_T_VERIFY, NODE, 0);
	}
	assert_true(got);
	assert_int_equal(m.u.result.state, UP_NS_VERIFIED);
}

/*
 * Runs upnode with the required options plus `extra' (NULL-ended) and
 * waits; returns its exit status with stdout and stderr in out[cap].
 */
static int
run_upnode(const char *extra[], char *out, size_t cap)
{
	const char	*argv[40];
	size_t		 len = 0;
	ssize_t		 n;
	pid_t		 pid;
	int		 p[2], st, i = 0;

	argv[i++] = UB_BINARY_DIR "/bin/upnode";
	argv[i++] = "--id";
	argv[i++] = "0x77";
	argv[i++] = "--hw";
	argv[i++] = "sim-1";
	argv[i++] = "--component";
	argv[i++] = "app=1.0.0";
	argv[i++] = "--state-dir";
	argv[i++] = statedir;
	argv[i++] = "--pubkey";
	argv[i++] = pubpath;
	while (extra != NULL && *extra != NULL)
		argv[i++] = *extra++;
	argv[i] = NULL;
	assert_int_equal(pipe(p), 0);
	assert_true((pid = fork()) != -1);
	if (pid == 0) {
		dup2(p[1], 1);
		dup2(p[1], 2);
		close(p[0]);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(p[1]);
	while (len + 1 < cap && (n = read(p[0], out + len, cap - len - 1)) >
	    0)
		len += (size_t)n;
	out[len] = '\0';
	close(p[0]);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	return (WIFEXITED(st) ? WEXITSTATUS(st) : 128);
}

/* --transport and --link-opt: the table, the checks, the LAN by keys. */
static void
test_link_options(void **state)
{
	const char	*help[] = { "--transport", "help", NULL };
	const char	*unknown[] = { "--transport", "nosuch", NULL };
	const char	*badkey[] = { "--link-opt", "nosuch=1", NULL };
	const char	*badgroup[] = { "--link-opt", "group=10.1.1.1", NULL };
	const char	*badport[] = { "--port", "0", NULL };
	const char	*noval[] = { "--link-opt", "group", NULL };
	char		 out[4096], gopt[64], popt[64];
	struct up_msg	 m;
	int		 uni;

	assert_int_equal(run_upnode(help, out, sizeof(out)), 0);
	assert_non_null(strstr(out, "lan: "));
	assert_non_null(strstr(out, "group"));
	assert_non_null(strstr(out, "iface"));
	assert_int_equal(run_upnode(unknown, out, sizeof(out)), 2);
	assert_non_null(strstr(out, "unknown link: nosuch"));
	assert_int_equal(run_upnode(badkey, out, sizeof(out)), 2);
	assert_non_null(strstr(out, "not an option of this link"));
	assert_int_equal(run_upnode(badgroup, out, sizeof(out)), 2);
	assert_non_null(strstr(out, "multicast"));
	assert_int_equal(run_upnode(badport, out, sizeof(out)), 2);
	assert_non_null(strstr(out, "port: 1 to 65535"));
	assert_int_equal(run_upnode(noval, out, sizeof(out)), 2);
	/* Nothing of the node was created by a refused command line. */
	assert_int_equal(access(statedir, F_OK), -1);

	/* The LAN by its option keys instead of --group/--port/--iface. */
	snprintf(gopt, sizeof(gopt), "group=%s", group);
	snprintf(popt, sizeof(popt), "port=%s", portstr);
	{
		const char *argv[] = { UB_BINARY_DIR "/bin/upnode", "--id",
		    "0x77", "--hw", "sim-1", "--component", "app=1.0.0",
		    "--state-dir", statedir, "--pubkey", pubpath,
		    "--transport", "lan", "--link-opt", gopt, "--link-opt",
		    popt, "--link-opt", "iface=127.0.0.1", "-v", NULL };
		int	 fd;

		child = fork();
		assert_true(child != -1);
		if (child == 0) {
			fd = open(logpath, O_WRONLY | O_CREAT | O_APPEND,
			    0644);
			if (fd != -1)
				dup2(fd, 2);
			execv(argv[0], (char *const *)argv);
			_exit(127);
		}
	}
	expect(UP_T_ANNOUNCE, &m, &uni);
	assert_false(uni);
	assert_true(m.u.announce.node_id == NODE);
	/* Replies go unicast to the gateway it learnt. */
	memset(&m, 0, sizeof(m));
	m.type = UP_T_DISCOVER;
	m.u.discover.window_ms = 200;
	gw_send(&m);
	expect(UP_T_ANNOUNCE, &m, &uni);
	assert_true(uni);
	stop();
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_session, setup, teardown),
		cmocka_unit_test_setup_teardown(test_crash_resume_rollback,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_forged_and_rejected, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_lossy_repair, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_crash_points, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_link_options, setup,
		    teardown),
	};

	signal(SIGPIPE, SIG_IGN);
	return (cmocka_run_group_tests(tests, NULL, NULL));
}
