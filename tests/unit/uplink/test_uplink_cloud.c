/*
 * test_uplink_cloud.c: the real client against a real cloud, nginx with
 * TLS on loopback (tests/e2e/cloud.sh), publishing with the real
 * upmanifest tool:
 *  - a signed manifest is accepted, its packages reach cache/;
 *  - a tampered manifest, a foreign signature, an older serial and a
 *    serial reused with other content are rejected and change nothing;
 *    after a restart the stored manifest is delivered once;
 *  - a package downloads in many ranges and, interrupted, resumes: nginx
 *    sent each byte once, but for at most the one range in flight;
 *  - a server that ignores Range (200) is handled;
 *  - a server that cuts answers mid-body (tests/e2e/cutcloud.py): an
 *    attempt that kept bytes resets the back-off, one that kept nothing
 *    doubles it, and a long attempt is retried at once;
 *  - a corrupt package fails, nothing is cached;
 *  - reports arrive as files, each line exactly once, across an outage;
 *  - a server whose certificate is not from the configured CA is refused.
 * nginx must be installed (scripts/setup); without it this test fails.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <jansson.h>

#include "uplink_internal.h"

#define CLOUD_SH	UB_SOURCE_DIR "/tests/e2e/cloud.sh"
#define CUTCLOUD	UB_SOURCE_DIR "/tests/e2e/cutcloud.py"
#define UPMANIFEST	UB_BINARY_DIR "/bin/upmanifest"
#define GW		"gw-test"
#define PKG_SIZE	(3 * 1024 * 1024 + 12345)
#define RANGE		(256 * 1024)

struct cloud {
	char		 dir[64];	/* temp root */
	char		 cdir[128];	/* cloud.sh DIR */
	char		 www[160];	/* web root of /cloud/ */
	char		 key[128], pub[128];
	int		 port;
	struct event_base *base;
	struct event	*tick;
};

static struct cloud C;
/* The cutcloud.py server running, stopped by the group teardown too. */
static pid_t	 cut_pid;

/* What the callbacks saw. */
struct seen {
	int		 manifests;
	int64_t		 serial;
	size_t		 npkgs;
	int		 ready;
	uint8_t		 ready_sha[CACHE_SHA_LEN];
	int		 failed;
	char		 why[256];
	/* package_progress (cut-through) */
	struct cache	*cache;
	int		 progress;
	uint64_t	 verified;	/* last reported */
	int		 progress_bad;	/* not monotonic, or unreadable */
	int		 progress_after_ready;
};

/* One gateway: its database, cache and client. */
struct gw {
	char		 dir[192];
	sqlite3		*db;
	struct cache	*cache;
	struct cache_key *key;
	struct uplink	*u;
	struct seen	 seen;
};

static int
run(const char *fmt, ...) __attribute__((__format__(__printf__, 1, 2)));

static int
run(const char *fmt, ...)
{
	va_list		 ap;
	char		 cmd[1024];
	int		 rc;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	rc = system(cmd);
	return (WIFEXITED(rc) ? WEXITSTATUS(rc) : -1);
}

static int
free_port(void)
{
	struct sockaddr_in sin;
	socklen_t	 len = sizeof(sin);
	int		 s, port;

	s = socket(AF_INET, SOCK_STREAM, 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(s, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(s, (struct sockaddr *)&sin, &len), 0);
	port = ntohs(sin.sin_port);
	close(s);
	return (port);
}

static void
tick_cb(evutil_socket_t fd, short what, void *arg)
{
}

/* Runs the loop until *flag changes from `from' or timeout_ms passes. */
static int
wait_for(const int *flag, int from, int timeout_ms)
{
	struct timespec	 t0, t;
	long		 ms;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (*flag == from) {
		event_base_loop(C.base, EVLOOP_ONCE);
		clock_gettime(CLOCK_MONOTONIC, &t);
		ms = (t.tv_sec - t0.tv_sec) * 1000 +
		    (t.tv_nsec - t0.tv_nsec) / 1000000;
		if (ms > timeout_ms)
			return (-1);
	}
	return (0);
}

/* Runs the loop for ms milliseconds. */
static void
spin(int ms)
{
	int		 never = 0;

	wait_for(&never, 0, ms);
}

/* Runs the loop a turn at a time until `g' received `n' body bytes. */
static void
loop_until_bytes(struct uplink *u, uint64_t n)
{
	struct uplink_stats s;
	int		 i;

	for (i = 0; i < 100000; i++) {
		uplink_stats(u, &s);
		if (s.bytes_down >= n)
			return;
		event_base_loop(C.base, EVLOOP_ONCE);
	}
}

static uint64_t
cloud_bytes(const char *suffix)
{
	char		 cmd[512], buf[64] = "";
	FILE		*p;

	snprintf(cmd, sizeof(cmd), "sh %s bytes %s %s", CLOUD_SH, C.cdir,
	    suffix);
	p = popen(cmd, "r");
	assert_non_null(p);
	if (fgets(buf, sizeof(buf), p) == NULL)
		buf[0] = '\0';
	pclose(p);
	return (strtoull(buf, NULL, 10));
}

static void
write_file(const char *path, const void *p, size_t len)
{
	FILE		*f;

	f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(p, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

static void
make_package(const char *name, size_t size, unsigned int seed)
{
	char		 path[512];
	uint8_t		*buf;
	size_t		 i;

	buf = malloc(size);
	srandom(seed);
	for (i = 0; i < size; i++)
		buf[i] = (uint8_t)random();
	snprintf(path, sizeof(path), "%s/packages", C.www);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/packages/%s", C.www, name);
	write_file(path, buf, size);
	free(buf);
}

/* Publishes packages app.bin (and bad.bin if bad) with upmanifest. */
static void
publish(int64_t serial, int bad, const char *key)
{
	char		 spec[512], buf[2048];

	snprintf(buf, sizeof(buf),
	    "{\"version\":1,\"packages\":["
	    "{\"id\":\"app-1.1.0\",\"component\":\"app\",\"version\":\"1.1.0\","
	    "\"hw\":[\"sensor-v1\"],\"kind\":\"full\","
	    "\"url\":\"packages/app.bin\"}%s],"
	    "\"deployments\":[{\"id\":\"all\",\"packages\":[\"app-1.1.0\"],"
	    "\"target\":{}}]}",
	    bad ? ",{\"id\":\"bad-1\",\"component\":\"bad\","
	    "\"version\":\"1\",\"kind\":\"full\",\"chunk_size\":0,"
	    "\"url\":\"packages/bad.bin\"}" : "");
	snprintf(spec, sizeof(spec), "%s/spec.json", C.dir);
	write_file(spec, buf, strlen(buf));
	assert_int_equal(run("%s build -k %s -s %s -r %s --serial %lld",
	    UPMANIFEST, key, spec, C.www, (long long)serial), 0);
}

static void
save_manifest(const char *tag)
{
	assert_int_equal(run("cp %s/manifest.json %s/manifest-%s.json && "
	    "cp %s/manifest.json.sig %s/manifest-%s.json.sig", C.www, C.dir,
	    tag, C.www, C.dir, tag), 0);
}

static void
restore_manifest(const char *tag)
{
	assert_int_equal(run("cp %s/manifest-%s.json %s/manifest.json && "
	    "cp %s/manifest-%s.json.sig %s/manifest.json.sig", C.dir, tag,
	    C.www, C.dir, tag, C.www), 0);
}

static void
cb_manifest(void *arg, const struct uplink_manifest *mf)
{
	struct seen	*s = arg;

	s->manifests++;
	s->serial = mf->serial;
	s->npkgs = mf->npkgs;
}

static void
cb_ready(void *arg, const uint8_t sha[CACHE_SHA_LEN])
{
	struct seen	*s = arg;

	s->ready++;
	memcpy(s->ready_sha, sha, CACHE_SHA_LEN);
}

static void
cb_failed(void *arg, const uint8_t sha[CACHE_SHA_LEN], const char *why)
{
	struct seen	*s = arg;

	s->failed++;
	snprintf(s->why, sizeof(s->why), "%s", why);
}

/*
 * The verified prefix grew: it must only grow, come before ready, and
 * read back through the partial blob as the server's bytes.
 */
static void
cb_progress(void *arg, const uint8_t sha[CACHE_SHA_LEN], uint64_t verified)
{
	struct seen	*s = arg;
	struct cache_pkg p;
	uint8_t		*buf, want[CACHE_SHA_LEN], got[CACHE_SHA_LEN];
	char		 path[1024];
	FILE		*f;
	int		 fd;

	s->progress++;
	if (s->ready > 0)
		s->progress_after_ready++;
	if (verified <= s->verified ||
	    verified > cache_verified(s->cache, sha))
		s->progress_bad++;
	s->verified = verified;
	/* Compare the verified prefix with the file on the server. */
	if (cache_pkg_by_sha(s->cache, sha, &p) != 0 ||
	    (buf = malloc(verified)) == NULL) {
		s->progress_bad++;
		return;
	}
	fd = cache_open_read(s->cache, sha);
	if (fd < 0 || pread(fd, buf, verified, 0) != (ssize_t)verified)
		s->progress_bad++;
	if (fd >= 0)
		close(fd);
	cache_sha256(buf, verified, got);
	snprintf(path, sizeof(path), "%s/%s", C.www, p.url);
	if ((f = fopen(path, "rb")) == NULL ||
	    fread(buf, 1, verified, f) != verified)
		s->progress_bad++;
	if (f != NULL)
		fclose(f);
	cache_sha256(buf, verified, want);
	if (memcmp(want, got, CACHE_SHA_LEN) != 0)
		s->progress_bad++;
	free(buf);
}

static const struct uplink_cb cbs = {
	cb_manifest, cb_ready, cb_progress, cb_failed
};

static void
gw_open(struct gw *g, const char *name)
{
	char		 path[256], *cause = NULL;

	memset(g, 0, sizeof(*g));
	snprintf(g->dir, sizeof(g->dir), "%s/%s", C.dir, name);
	mkdir(g->dir, 0700);
	snprintf(path, sizeof(path), "%s/state.db", g->dir);
	assert_int_equal(sqlite3_open(path, &g->db), SQLITE_OK);
	snprintf(path, sizeof(path), "%s/cache", g->dir);
	if ((g->cache = cache_open(g->db, path, 0, &cause)) == NULL)
		fail_msg("cache_open: %s", cause);
	g->seen.cache = g->cache;
	if ((g->key = cache_key_load(C.pub, &cause)) == NULL)
		fail_msg("cache_key_load: %s", cause);
}

static void
gw_start_at(struct gw *g, const char *host, int port, const char *url,
    const char *ca)
{
	struct uplink_config cfg;
	char		 base[128], cafile[256], *cause = NULL;

	snprintf(base, sizeof(base), "https://%s:%d/%s", host, port,
	    url != NULL ? url : "cloud");
	snprintf(cafile, sizeof(cafile), "%s", ca != NULL ? ca : "");
	if (ca == NULL)
		snprintf(cafile, sizeof(cafile), "%s/ca.pem", C.cdir);
	memset(&cfg, 0, sizeof(cfg));
	cfg.base_url = base;
	cfg.ca_file = cafile;
	cfg.gateway_id = GW;
	cfg.cloud_key = g->key;
	cfg.poll_interval_s = 3600;	/* the test polls by hand */
	cfg.report_interval_s = 3600;
	cfg.report_batch_max = 3;
	cfg.range_bytes = RANGE;
	cfg.timeout_s = 5;
	g->u = uplink_new(C.base, g->db, g->cache, &cfg, &cbs, &g->seen,
	    &cause);
	if (g->u == NULL)
		fail_msg("uplink_new: %s", cause);
	assert_int_equal(uplink_start(g->u), 0);
}

static void
gw_start_host(struct gw *g, const char *host, const char *url,
    const char *ca)
{
	gw_start_at(g, host, C.port, url, ca);
}

static void
gw_start(struct gw *g, const char *url, const char *ca)
{
	gw_start_host(g, "127.0.0.1", url, ca);
}

static void
gw_stop(struct gw *g)
{
	uplink_free(g->u);
	g->u = NULL;
}

static void
gw_close(struct gw *g)
{
	gw_stop(g);
	cache_free(g->cache);
	cache_key_free(g->key);
	assert_int_equal(sqlite3_close(g->db), SQLITE_OK);
}

static struct uplink_stats
stats(struct gw *g)
{
	struct uplink_stats s;

	uplink_stats(g->u, &s);
	return (s);
}

/* Polls and waits until a manifest is accepted or rejected. */
static void
poll_wait(struct gw *g, int want_accept)
{
	struct uplink_stats s0 = stats(g), s;
	int		 i;

	uplink_poll_now(g->u);
	for (i = 0; i < 500; i++) {
		spin(10);
		s = stats(g);
		if (s.manifests != s0.manifests ||
		    s.manifest_rejects != s0.manifest_rejects)
			break;
	}
	s = stats(g);
	if (want_accept) {
		if (s.manifests != s0.manifests + 1)
			fail_msg("manifest not accepted: %s", s.last_error);
		assert_int_equal(s.manifest_rejects, s0.manifest_rejects);
	} else {
		assert_int_equal(s.manifests, s0.manifests);
		if (s.manifest_rejects != s0.manifest_rejects + 1)
			fail_msg("manifest not rejected: %s", s.last_error);
	}
}

static int
group_setup(void **state)
{
	struct timeval	 tv = { 0, 5000 };

	if (run("command -v nginx >/dev/null 2>&1 || "
	    "test -x /usr/sbin/nginx") != 0) {
		fprintf(stderr, "test_uplink_cloud: nginx is not installed; "
		    "run scripts/setup (it installs nginx-light)\n");
		return (-1);
	}
	snprintf(C.dir, sizeof(C.dir), "/tmp/ub-uplink-XXXXXX");
	if (mkdtemp(C.dir) == NULL)
		return (-1);
	snprintf(C.cdir, sizeof(C.cdir), "%s/cloud", C.dir);
	snprintf(C.www, sizeof(C.www), "%s/www/cloud", C.cdir);
	snprintf(C.key, sizeof(C.key), "%s/cloud.key.pem", C.dir);
	snprintf(C.pub, sizeof(C.pub), "%s/cloud.pub.pem", C.dir);
	C.port = free_port();
	if (run("sh %s start %s %d", CLOUD_SH, C.cdir, C.port) != 0) {
		fprintf(stderr, "test_uplink_cloud: cloud.sh start failed\n");
		return (-1);
	}
	if (run("%s genkey %s %s", UPMANIFEST, C.key, C.pub) != 0)
		return (-1);
	make_package("app.bin", PKG_SIZE, 1);
	C.base = event_base_new();
	/* Wakes EVLOOP_ONCE up regularly so wait_for can time out. */
	C.tick = event_new(C.base, -1, EV_PERSIST, tick_cb, NULL);
	event_add(C.tick, &tv);
	*state = &C;
	return (0);
}

static int
group_teardown(void **state)
{
	run("sh %s stop %s", CLOUD_SH, C.cdir);
	if (cut_pid > 0) {
		kill(cut_pid, SIGTERM);
		waitpid(cut_pid, NULL, 0);
	}
	if (C.tick != NULL)
		event_free(C.tick);
	if (C.base != NULL)
		event_base_free(C.base);
	if (C.dir[0] != '\0' && getenv("UB_KEEP_TMP") == NULL)
		run("rm -rf %s", C.dir);
	return (0);
}

/* Accept, then every kind of bad manifest, then a restart. */
static void
test_manifests(void **state)
{
	struct gw	 g;
	struct cache_pkg p;
	struct uplink_stats s;
	char		 path[512], okey[256], opub[256];

	publish(1, 0, C.key);
	save_manifest("1");
	gw_open(&g, "gw-manifest");
	gw_start(&g, NULL, NULL);
	/* The first poll runs by itself after uplink_start. */
	assert_int_equal(wait_for(&g.seen.manifests, 0, 5000), 0);
	assert_int_equal(g.seen.serial, 1);
	assert_int_equal(g.seen.npkgs, 1);
	assert_int_equal(cache_pkg_get(g.cache, "app-1.1.0", &p), 0);
	assert_int_equal(p.size, PKG_SIZE);
	assert_int_equal(p.manifest_serial, 1);

	/* The same manifest again: unchanged, no callback. */
	uplink_poll_now(g.u);
	spin(300);
	assert_int_equal(g.seen.manifests, 1);
	s = stats(&g);
	assert_int_equal(s.manifest_rejects, 0);

	/* serial 2 accepted. */
	publish(2, 0, C.key);
	save_manifest("2");
	poll_wait(&g, 1);
	assert_int_equal(g.seen.serial, 2);

	/* Tampered: one byte of manifest.json changed, same signature. */
	snprintf(path, sizeof(path), "%s/manifest.json", C.www);
	assert_int_equal(run("sed -i 's/\"app-1.1.0\"/\"app-1.1.9\"/' %s",
	    path), 0);
	poll_wait(&g, 0);
	assert_non_null(strstr(stats(&g).last_error, "signature"));

	/* Signed with another key. */
	snprintf(okey, sizeof(okey), "%s/other.key.pem", C.dir);
	snprintf(opub, sizeof(opub), "%s/other.pub.pem", C.dir);
	assert_int_equal(run("%s genkey %s %s", UPMANIFEST, okey, opub), 0);
	restore_manifest("2");
	publish(3, 0, okey);
	poll_wait(&g, 0);
	assert_non_null(strstr(stats(&g).last_error, "signature"));

	/* A replay of an older, genuinely signed manifest. */
	restore_manifest("1");
	poll_wait(&g, 0);
	assert_non_null(strstr(stats(&g).last_error, "older"));

	/* The accepted serial again, with other (signed) content. */
	snprintf(path, sizeof(path), "%s/manifest.json", C.www);
	unlink(path);
	make_package("bad.bin", 5000, 7);
	publish(2, 1, C.key);
	poll_wait(&g, 0);
	assert_non_null(strstr(stats(&g).last_error, "other content"));

	/* Nothing changed through all of that. */
	assert_int_equal(g.seen.manifests, 2);
	assert_int_equal(g.seen.serial, 2);
	assert_int_equal(cache_pkg_get(g.cache, "app-1.1.0", &p), 0);
	assert_int_equal(p.manifest_serial, 2);
	assert_int_equal(cache_pkg_get(g.cache, "bad-1", &p), -1);

	/*
	 * Restart: the stored manifest is delivered once at start, and
	 * the replay guard still holds.
	 */
	gw_stop(&g);
	memset(&g.seen, 0, sizeof(g.seen));
	restore_manifest("1");
	gw_start(&g, NULL, NULL);
	assert_int_equal(wait_for(&g.seen.manifests, 0, 5000), 0);
	assert_int_equal(g.seen.serial, 2);
	spin(300);
	s = stats(&g);
	assert_int_equal(g.seen.manifests, 1);
	assert_int_equal(s.manifest_rejects, 1);	/* serial 1 < 2 */
	/* Unchanged serial 2 again: no second callback. */
	restore_manifest("2");
	uplink_poll_now(g.u);
	spin(300);
	assert_int_equal(g.seen.manifests, 1);
	assert_int_equal(stats(&g).manifest_rejects, 1);

	/* A newer one is taken. */
	publish(5, 1, C.key);
	poll_wait(&g, 1);
	assert_int_equal(g.seen.serial, 5);
	assert_int_equal(cache_pkg_get(g.cache, "bad-1", &p), 0);
	gw_close(&g);
}

static const uint8_t *
app_sha(struct gw *g, uint8_t sha[CACHE_SHA_LEN])
{
	struct cache_pkg p;

	assert_int_equal(cache_pkg_get(g->cache, "app-1.1.0", &p), 0);
	memcpy(sha, p.sha256, CACHE_SHA_LEN);
	return (sha);
}

/* Many ranges, an interruption, a resume: each byte crosses once. */
static void
test_download_resume(void **state)
{
	struct gw	 g;
	struct cache_entry e;
	uint8_t		 sha[CACHE_SHA_LEN];
	uint64_t	 before, total;
	int		 ready;

	publish(10, 0, C.key);
	gw_open(&g, "gw-download");
	gw_start(&g, NULL, NULL);
	assert_int_equal(wait_for(&g.seen.manifests, 0, 5000), 0);
	before = cloud_bytes("/packages/app.bin");
	assert_int_equal(uplink_fetch(g.u, app_sha(&g, sha)), 0);
	/* Stop it half way. */
	loop_until_bytes(g.u, PKG_SIZE / 2);
	assert_true(stats(&g).bytes_down >= PKG_SIZE / 2);
	assert_int_equal(g.seen.ready, 0);
	gw_stop(&g);
	assert_int_equal(cache_lookup(g.cache, sha, &e), 0);
	assert_int_not_equal(e.state, CACHE_COMPLETE);

	/* Chunk by chunk (1 MiB): progress came, each prefix verified. */
	assert_true(g.seen.progress >= 1);
	assert_int_equal(g.seen.progress_bad, 0);
	assert_int_equal(g.seen.verified % (1024 * 1024), 0);

	/* A new client resumes where the bytes on disk end. */
	memset(&g.seen, 0, sizeof(g.seen));
	g.seen.cache = g.cache;
	gw_start(&g, NULL, NULL);
	assert_int_equal(wait_for(&g.seen.manifests, 0, 5000), 0);
	assert_int_equal(uplink_fetch(g.u, sha), 0);
	assert_int_equal(wait_for(&g.seen.ready, 0, 20000), 0);
	assert_memory_equal(g.seen.ready_sha, sha, CACHE_SHA_LEN);
	assert_int_equal(g.seen.failed, 0);
	/* The re-verified prefix and the rest were reported, in order. */
	assert_true(g.seen.progress >= 2);
	assert_int_equal(g.seen.progress_bad, 0);
	assert_int_equal(g.seen.progress_after_ready, 0);
	assert_true(g.seen.verified >= 3 * 1024 * 1024);
	assert_int_equal(cache_lookup(g.cache, sha, &e), 0);
	assert_int_equal(e.state, CACHE_COMPLETE);
	assert_int_equal(stats(&g).downloads_done, 1);
	assert_true(stats(&g).bytes_down < PKG_SIZE);

	total = cloud_bytes("/packages/app.bin") - before;
	print_message("package %d bytes; nginx sent %llu\n", PKG_SIZE,
	    (unsigned long long)total);
	assert_true(total >= PKG_SIZE);
	assert_true(total <= PKG_SIZE + RANGE);

	/* Complete already: ready again at once, nothing fetched. */
	before = cloud_bytes("/packages/app.bin");
	ready = g.seen.ready;
	assert_int_equal(uplink_fetch(g.u, sha), 0);
	assert_int_equal(g.seen.ready, ready);	/* deferred, not inline */
	assert_int_equal(wait_for(&g.seen.ready, ready, 2000), 0);
	assert_int_equal(cloud_bytes("/packages/app.bin"), before);

	/* Unknown packages are refused. */
	memset(sha, 0x5a, sizeof(sha));
	assert_int_equal(uplink_fetch(g.u, sha), -1);
	gw_close(&g);
}

/* A server that ignores Range answers 200 with the whole file. */
static void
test_download_no_range(void **state)
{
	struct gw	 g;
	struct cache_entry e;
	uint8_t		 sha[CACHE_SHA_LEN];

	publish(11, 0, C.key);
	gw_open(&g, "gw-norange");
	gw_start(&g, "cloud-norange", NULL);
	assert_int_equal(wait_for(&g.seen.manifests, 0, 5000), 0);
	assert_int_equal(uplink_fetch(g.u, app_sha(&g, sha)), 0);
	loop_until_bytes(g.u, PKG_SIZE / 3);
	gw_stop(&g);
	memset(&g.seen, 0, sizeof(g.seen));
	g.seen.cache = g.cache;
	gw_start(&g, "cloud-norange", NULL);
	assert_int_equal(uplink_fetch(g.u, sha), 0);
	assert_int_equal(wait_for(&g.seen.ready, 0, 20000), 0);
	assert_int_equal(g.seen.failed, 0);
	assert_int_equal(cache_lookup(g.cache, sha, &e), 0);
	assert_int_equal(e.state, CACHE_COMPLETE);
	gw_close(&g);
}

/* The file on the server is not what the manifest signed. */
static void
test_download_corrupt(void **state)
{
	struct gw	 g;
	struct cache_pkg p;
	struct cache_entry e;
	struct stat	 sb;
	char		 path[512];
	int		 fd;

	make_package("bad.bin", 300000, 9);
	publish(12, 1, C.key);
	/* Flip one byte after publishing: same size, other hash. */
	snprintf(path, sizeof(path), "%s/packages/bad.bin", C.www);
	fd = open(path, O_WRONLY);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, "\xff\x00", 2, 150000), 2);
	close(fd);

	gw_open(&g, "gw-corrupt");
	gw_start(&g, NULL, NULL);
	assert_int_equal(wait_for(&g.seen.manifests, 0, 5000), 0);
	assert_int_equal(cache_pkg_get(g.cache, "bad-1", &p), 0);
	assert_int_equal(uplink_fetch(g.u, p.sha256), 0);
	assert_int_equal(wait_for(&g.seen.failed, 0, 10000), 0);
	print_message("package_failed: %s\n", g.seen.why);
	assert_int_equal(g.seen.ready, 0);
	assert_int_equal(cache_lookup(g.cache, p.sha256, &e), 0);
	assert_int_not_equal(e.state, CACHE_COMPLETE);
	assert_int_equal(cache_path(g.cache, p.sha256, path, sizeof(path)),
	    0);
	assert_int_equal(stat(path, &sb), -1);
	assert_int_equal(cache_open_blob(g.cache, p.sha256), -1);
	gw_close(&g);
}

/*
 * A bad chunk (the server's file changed after signing): the download
 * stops at the verified prefix, nothing past it is kept, and once the
 * server is right again the retry goes on from the prefix.
 */
static void
test_download_bad_chunk(void **state)
{
	struct gw	 g;
	struct cache_pkg p;
	struct cache_entry e;
	struct stat	 sb;
	char		 path[512], spec[512], buf[1024];
	uint64_t	 before, total;
	const uint64_t	 mib = 1024 * 1024, size = 2 * 1024 * 1024 + 5000;
	uint8_t		 x;
	int		 fd;

	make_package("chunky.bin", size, 21);
	snprintf(buf, sizeof(buf), "{\"version\":1,\"packages\":["
	    "{\"id\":\"chunky-1\",\"component\":\"chunky\","
	    "\"version\":\"1\",\"kind\":\"full\","
	    "\"url\":\"packages/chunky.bin\"}]}");
	snprintf(spec, sizeof(spec), "%s/spec-chunky.json", C.dir);
	write_file(spec, buf, strlen(buf));
	assert_int_equal(run("%s build -k %s -s %s -r %s --serial 14",
	    UPMANIFEST, C.key, spec, C.www), 0);
	/* Chunk 2 of 3 is wrong on the server. */
	snprintf(path, sizeof(path), "%s/packages/chunky.bin", C.www);
	assert_int_equal(run("cp %s %s.good", path, path), 0);
	fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &x, 1, mib + mib / 2), 1);
	x ^= 0x20;
	assert_int_equal(pwrite(fd, &x, 1, mib + mib / 2), 1);
	close(fd);

	gw_open(&g, "gw-chunk");
	gw_start(&g, NULL, NULL);
	assert_int_equal(wait_for(&g.seen.manifests, 0, 5000), 0);
	assert_int_equal(cache_pkg_get(g.cache, "chunky-1", &p), 0);
	assert_int_equal(uplink_fetch(g.u, p.sha256), 0);
	if (wait_for(&g.seen.failed, 0, 10000) != 0)
		fail_msg("no failure: ready %d, progress %d verified %llu, "
		    "bytes %llu, %s", g.seen.ready, g.seen.progress,
		    (unsigned long long)g.seen.verified,
		    (unsigned long long)stats(&g).bytes_down,
		    stats(&g).last_error);
	print_message("package_failed: %s\n", g.seen.why);
	assert_non_null(strstr(g.seen.why, "chunk 2 of 3: sha256 mismatch"));
	assert_int_equal(g.seen.ready, 0);
	/* Only the first chunk is verified, reported and kept on disk. */
	spin(50);
	assert_int_equal(g.seen.progress_bad, 0);
	assert_int_equal(g.seen.verified, mib);
	assert_int_equal(cache_verified(g.cache, p.sha256), mib);
	assert_int_equal(cache_lookup(g.cache, p.sha256, &e), 0);
	assert_int_equal(e.state, CACHE_PARTIAL);
	assert_int_equal(cache_path(g.cache, p.sha256, path, sizeof(path)),
	    0);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_size, mib);

	/* The server is fixed; the retry (after 2 s) resumes at 1 MiB. */
	snprintf(path, sizeof(path), "%s/packages/chunky.bin", C.www);
	assert_int_equal(run("cp %s.good %s", path, path), 0);
	before = cloud_bytes("/packages/chunky.bin");
	assert_int_equal(wait_for(&g.seen.ready, 0, 15000), 0);
	assert_int_equal(g.seen.progress_bad, 0);
	assert_int_equal(cache_lookup(g.cache, p.sha256, &e), 0);
	assert_int_equal(e.state, CACHE_COMPLETE);
	total = cloud_bytes("/packages/chunky.bin") - before;
	print_message("after the fix nginx sent %llu of %llu bytes\n",
	    (unsigned long long)total, (unsigned long long)size);
	assert_true(total <= size - mib);
	gw_close(&g);
}

/* ------------------------------------------------------------------ */
/* A cloud that cuts answers (tests/e2e/cutcloud.py, a real server)    */

struct cutcloud {
	pid_t		 pid;
	int		 port;
	char		 log[256];
};

static void
cut_start(struct cutcloud *k, const char *script)
{
	struct sockaddr_in sin;
	char		 port[16], root[256], cert[256], key[256];
	int		 i, s, ok = 0;

	memset(k, 0, sizeof(*k));
	k->port = free_port();
	snprintf(port, sizeof(port), "%d", k->port);
	snprintf(k->log, sizeof(k->log), "%s/cut-%d.log", C.dir, k->port);
	snprintf(root, sizeof(root), "%s", C.www);
	snprintf(cert, sizeof(cert), "%s/server.pem", C.cdir);
	snprintf(key, sizeof(key), "%s/server.key", C.cdir);
	k->pid = fork();
	assert_true(k->pid >= 0);
	if (k->pid == 0) {
		if (freopen("/dev/null", "w", stdout) == NULL)
			_exit(127);
		execlp("python3", "python3", CUTCLOUD, "--root", root,
		    "--port", port, "--cert", cert, "--key", key, "--log",
		    k->log, "--match", "cut.bin", "--script", script,
		    (char *)NULL);
		_exit(127);
	}
	cut_pid = k->pid;
	for (i = 0; i < 200 && !ok; i++) {
		s = socket(AF_INET, SOCK_STREAM, 0);
		memset(&sin, 0, sizeof(sin));
		sin.sin_family = AF_INET;
		sin.sin_port = htons(k->port);
		sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		ok = connect(s, (struct sockaddr *)&sin, sizeof(sin)) == 0;
		close(s);
		if (!ok)
			usleep(50000);
	}
	if (!ok)
		fail_msg("cutcloud.py did not listen on %d", k->port);
}

static void
cut_stop(struct cutcloud *k)
{
	if (k->pid > 0) {
		kill(k->pid, SIGTERM);
		waitpid(k->pid, NULL, 0);
	}
	k->pid = 0;
	cut_pid = 0;
}

struct cut_req {
	double		 t0, t1;
	uint64_t	 first;		/* of the Range */
	uint64_t	 sent;
	char		 step[32];
};

/* The GETs of cut.bin in the server's log, in order; returns how many. */
static int
cut_reqs(const struct cutcloud *k, struct cut_req *r, int max)
{
	char		 line[512], meth[16], uri[256], range[64], step[32];
	unsigned long long sent;
	double		 t0, t1;
	int		 code, n = 0;
	FILE		*f;

	if ((f = fopen(k->log, "r")) == NULL)
		return (0);
	while (n < max && fgets(line, sizeof(line), f) != NULL) {
		if (sscanf(line, "%lf %lf %15s %255s %d %llu %63s %31s", &t0,
		    &t1, meth, uri, &code, &sent, range, step) != 8 ||
		    strcmp(meth, "GET") != 0 ||
		    strstr(uri, "cut.bin") == NULL)
			continue;
		r[n].t0 = t0;
		r[n].t1 = t1;
		r[n].sent = sent;
		r[n].first = strncmp(range, "bytes=", 6) == 0 ?
		    strtoull(range + 6, NULL, 10) : 0;
		snprintf(r[n].step, sizeof(r[n].step), "%s", step);
		n++;
	}
	fclose(f);
	/* Lines are written when answers end: order them by start. */
	for (int i = 1; i < n; i++)
		for (int j = i; j > 0 && r[j].t0 < r[j - 1].t0; j--) {
			struct cut_req t = r[j];

			r[j] = r[j - 1];
			r[j - 1] = t;
		}
	return (n);
}

/*
 * Issue 7: the back-off doubled even when every attempt made progress
 * (2, 4, 8, 16, 32, 64 s for six cuts of 100 KB each).  Now an attempt
 * that kept bytes is followed by the next one RETRY_MIN_S (2 s) after it
 * started, or at once when it ran longer; only attempts that kept
 * nothing double the wait.
 */
static void
test_download_cut_backoff(void **state)
{
	struct gw	 g;
	struct cutcloud	 k;
	struct cache_pkg p;
	struct cache_entry e;
	struct cut_req	 r[32];
	char		 spec[512], buf[1024];
	const uint64_t	 size = 700000;
	double		 gap;
	int		 n, i;

	make_package("cut.bin", size, 33);
	snprintf(buf, sizeof(buf), "{\"version\":1,\"packages\":["
	    "{\"id\":\"cut-1\",\"component\":\"cut\",\"version\":\"1\","
	    "\"kind\":\"full\",\"url\":\"packages/cut.bin\"}]}");
	snprintf(spec, sizeof(spec), "%s/spec-cut.json", C.dir);
	write_file(spec, buf, strlen(buf));
	assert_int_equal(run("%s build -k %s -s %s -r %s --serial 15",
	    UPMANIFEST, C.key, spec, C.www), 0);
	/*
	 * Requests, in order: two cut after 100 kB (progress), two dropped
	 * (nothing), one trickling 100 kB over 2.5 s and cut (progress,
	 * longer than RETRY_MIN_S), then whole answers.
	 */
	cut_start(&k, "cut:100000,cut:100000,drop,drop,trickle:100000,full");
	gw_open(&g, "gw-cut");
	gw_start_at(&g, "127.0.0.1", k.port, NULL, NULL);
	if (wait_for(&g.seen.manifests, 0, 5000) != 0)
		fail_msg("no manifest from cutcloud: %s", stats(&g).last_error);
	assert_int_equal(cache_pkg_get(g.cache, "cut-1", &p), 0);
	assert_int_equal(uplink_fetch(g.u, p.sha256), 0);
	if (wait_for(&g.seen.ready, 0, 40000) != 0)
		fail_msg("not downloaded after 40 s: %s",
		    stats(&g).last_error);
	cut_stop(&k);
	assert_int_equal(cache_lookup(g.cache, p.sha256, &e), 0);
	assert_int_equal(e.state, CACHE_COMPLETE);
	assert_int_equal(g.seen.failed, 5);

	n = cut_reqs(&k, r, 32);
	for (i = 0; i < n; i++)
		print_message("GET %d at +%.2f s (ran %.2f s): bytes=%llu- "
		    "%s, sent %llu\n", i, r[i].t0 - r[0].t0,
		    r[i].t1 - r[i].t0, (unsigned long long)r[i].first,
		    r[i].step, (unsigned long long)r[i].sent);
	assert_true(n >= 7);
	/* Each attempt resumed where the bytes kept end. */
	assert_int_equal(r[0].first, 0);
	assert_int_equal(r[1].first, 100000);
	assert_int_equal(r[2].first, 200000);
	assert_int_equal(r[3].first, 200000);
	assert_int_equal(r[4].first, 200000);
	assert_int_equal(r[5].first, 300000);
	/* Progress: 2 s between starts, not 2 then 4. */
	for (i = 0; i < 3; i++) {
		gap = r[i + 1].t0 - r[i].t0;
		if (gap < 1.9 || gap > 3.0)
			fail_msg("GET %d came %.2f s after GET %d, want 2 s",
			    i + 1, gap, i);
	}
	/* The second attempt in a row that kept nothing waits 4 s. */
	gap = r[4].t0 - r[3].t0;
	if (gap < 3.9 || gap > 5.0)
		fail_msg("GET 4 came %.2f s after GET 3, want 4 s", gap);
	/* The trickle ran 2.5 s and kept bytes: retried at once. */
	assert_true(r[4].t1 - r[4].t0 >= 2.0);
	gap = r[5].t0 - r[4].t1;
	if (gap > 0.8)
		fail_msg("GET 5 came %.2f s after GET 4 ended, want at once",
		    gap);
	gw_close(&g);
}

/* Counts report lines under the web root; fails on a duplicate seq. */
static int
count_reports(int *files)
{
	char		 d[256], path[512], line[1024];
	DIR		*dir;
	struct dirent	*de;
	FILE		*f;
	json_t		*o;
	int		 n = 0, seen[64];
	int64_t		 seq;

	memset(seen, 0, sizeof(seen));
	*files = 0;
	snprintf(d, sizeof(d), "%s/reports/%s", C.www, GW);
	if ((dir = opendir(d)) == NULL)
		return (0);
	while ((de = readdir(dir)) != NULL) {
		if (strstr(de->d_name, ".jsonl") == NULL)
			continue;
		(*files)++;
		snprintf(path, sizeof(path), "%s/%s", d, de->d_name);
		f = fopen(path, "r");
		assert_non_null(f);
		while (fgets(line, sizeof(line), f) != NULL) {
			o = json_loads(line, 0, NULL);
			assert_non_null(o);
			assert_string_equal(json_string_value(
			    json_object_get(o, "gateway")), GW);
			seq = json_integer_value(json_object_get(o, "seq"));
			assert_true(seq > 0 && seq < 64);
			if (seen[seq]++)
				fail_msg("report seq %lld stored twice",
				    (long long)seq);
			json_decref(o);
			n++;
		}
		fclose(f);
	}
	closedir(dir);
	return (n);
}

static void
test_reports(void **state)
{
	struct gw	 g;
	struct uplink_stats s;
	char		 line[128];
	int		 i, files, acked;

	publish(20, 0, C.key);
	gw_open(&g, "gw-reports");
	gw_start(&g, NULL, NULL);
	for (i = 1; i <= 5; i++) {
		snprintf(line, sizeof(line), "{\"type\":\"result\","
		    "\"node\":\"0x%016x\",\"result\":1}", i);
		assert_int_equal(uplink_report(g.u, line), 0);
	}
	assert_int_equal(uplink_report(g.u, "not json"), -1);
	assert_int_equal(stats(&g).reports_pending, 5);
	uplink_flush(g.u);
	for (i = 0; i < 500 && stats(&g).reports_acked < 5; i++)
		spin(10);
	s = stats(&g);
	if (s.reports_acked != 5)
		fail_msg("reports not acked: %s", s.last_error);
	assert_int_equal(s.reports_pending, 0);
	assert_int_equal(count_reports(&files), 5);
	assert_int_equal(files, 2);	/* batches of 3 */

	/* Outage: the cloud is down while reports queue. */
	assert_int_equal(run("sh %s stop %s", CLOUD_SH, C.cdir), 0);
	for (i = 6; i <= 8; i++) {
		snprintf(line, sizeof(line), "{\"type\":\"result\","
		    "\"node\":\"0x%016x\",\"result\":1}", i);
		assert_int_equal(uplink_report(g.u, line), 0);
	}
	uplink_flush(g.u);
	for (i = 0; i < 300 && stats(&g).http_errors == s.http_errors; i++)
		spin(10);
	s = stats(&g);
	assert_true(s.http_errors > 0);
	assert_int_equal(s.reports_pending, 3);
	assert_int_equal(s.reports_acked, 5);
	/* Restarted gateway too: the batch formed before is kept. */
	gw_stop(&g);
	assert_int_equal(run("sh %s start %s %d", CLOUD_SH, C.cdir, C.port),
	    0);
	gw_start(&g, NULL, NULL);
	assert_int_equal(uplink_report(g.u, "{\"type\":\"result\","
	    "\"node\":\"0x0000000000000009\"}"), 0);
	uplink_flush(g.u);
	for (i = 0; i < 500 && stats(&g).reports_pending > 0; i++)
		spin(10);
	s = stats(&g);
	if (s.reports_pending != 0)
		fail_msg("reports pending: %s", s.last_error);
	acked = (int)s.reports_acked;
	assert_int_equal(acked, 4);
	assert_int_equal(count_reports(&files), 9);
	assert_int_equal(files, 4);	/* 3 + 2, 3 (batch 3), 1 */
	gw_close(&g);
}

/* A server certificate from another CA: refused, nothing accepted. */
static void
test_tls_wrong_ca(void **state)
{
	struct gw	 g;
	struct uplink_stats s;
	struct cache_pkg p;
	char		 other[256], ca[300];
	int		 i;

	publish(30, 0, C.key);
	/* Another test cloud makes another CA. */
	snprintf(other, sizeof(other), "%s/othercloud", C.dir);
	assert_int_equal(run("sh %s start %s %d && sh %s stop %s", CLOUD_SH,
	    other, free_port(), CLOUD_SH, other), 0);
	snprintf(ca, sizeof(ca), "%s/ca.pem", other);
	gw_open(&g, "gw-tls");
	gw_start(&g, NULL, ca);
	for (i = 0; i < 300 && stats(&g).http_errors == 0; i++)
		spin(10);
	s = stats(&g);
	print_message("wrong CA: %s\n", s.last_error);
	assert_true(s.http_errors > 0);
	assert_non_null(strstr(s.last_error, "TLS"));
	assert_int_equal(s.manifests, 0);
	assert_int_equal(g.seen.manifests, 0);
	assert_int_equal(cache_pkg_get(g.cache, "app-1.1.0", &p), -1);
	/* Reports wait; nothing is lost. */
	assert_int_equal(uplink_report(g.u, "{\"type\":\"x\"}"), 0);
	uplink_flush(g.u);
	spin(200);
	assert_int_equal(stats(&g).reports_pending, 1);
	gw_close(&g);
}

/*
 * A host name: resolved without blocking (evdns, /etc/hosts), sent as
 * SNI and checked against the certificate's DNS names.
 */
static void
test_hostname(void **state)
{
	struct gw	 g;

	publish(40, 0, C.key);
	gw_open(&g, "gw-hostname");
	gw_start_host(&g, "localhost", NULL, NULL);
	if (wait_for(&g.seen.manifests, 0, 5000) != 0)
		fail_msg("no manifest via localhost: %s",
		    stats(&g).last_error);
	assert_int_equal(g.seen.serial, 40);
	gw_close(&g);
}

/* Bad configuration is refused with a cause. */
static void
test_config(void **state)
{
	struct gw	 g;
	struct uplink_config cfg;
	char		 ca[256], *cause = NULL;

	gw_open(&g, "gw-config");
	snprintf(ca, sizeof(ca), "%s/ca.pem", C.cdir);
	memset(&cfg, 0, sizeof(cfg));
	cfg.base_url = "http://127.0.0.1:1/cloud";
	cfg.ca_file = ca;
	cfg.gateway_id = GW;
	cfg.cloud_key = g.key;
	assert_null(uplink_new(C.base, g.db, g.cache, &cfg, &cbs, NULL,
	    &cause));
	assert_non_null(strstr(cause, "https"));
	free(cause);
	cfg.base_url = "https://127.0.0.1:1/cloud";
	cfg.gateway_id = "../etc";
	assert_null(uplink_new(C.base, g.db, g.cache, &cfg, &cbs, NULL,
	    &cause));
	assert_non_null(strstr(cause, "gateway id"));
	free(cause);
	cfg.gateway_id = GW;
	cfg.ca_file = "/nonexistent/ca.pem";
	assert_null(uplink_new(C.base, g.db, g.cache, &cfg, &cbs, NULL,
	    &cause));
	assert_non_null(strstr(cause, "ca_file"));
	free(cause);
	gw_close(&g);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_config),
		cmocka_unit_test(test_manifests),
		cmocka_unit_test(test_download_resume),
		cmocka_unit_test(test_download_no_range),
		cmocka_unit_test(test_download_corrupt),
		cmocka_unit_test(test_download_bad_chunk),
		cmocka_unit_test(test_download_cut_backoff),
		cmocka_unit_test(test_reports),
		cmocka_unit_test(test_tls_wrong_ca),
		cmocka_unit_test(test_hostname),
	};

	return (cmocka_run_group_tests(tests, group_setup, group_teardown));
}
