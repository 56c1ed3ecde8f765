/*
 * upbridged.c: main() of the gateway daemon.
 *
 * Reads the config, opens the database, the package cache, the node
 * registry, the fan-out engine with its transports, the uplink and the
 * control socket on one event_base, then runs the loop.  One
 * housekeeping timer drives the periodic work (database commits, the
 * engine's cron, watch updates); signals are libevent events: SIGHUP
 * reloads, SIGTERM and SIGINT stop cleanly.
 */
#include <sys/types.h>
#include <sys/stat.h>
#include <sys/time.h>

#include <sys/file.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <getopt.h>
#include <unistd.h>

#include <event2/event.h>

#include "upbridged.h"

#define UB_CRON_MS		200

struct ub_main {
	struct ub		 ub;
	struct ub_config	*boot_conf;	/* lent to modules: kept */
	int			 verbose_flag;	/* -v given */
	struct event		*ev_hup;
	struct event		*ev_term;
	struct event		*ev_int;
	struct event		*ev_cron;
	uint64_t		 last_commit_ms;
	int			 stopping;
	int			 lock_fd;	/* upbridged.pid */
	char			*lock_path;
};

static void	 usage(void) __attribute__((__noreturn__));
static int	 ub_mkdirs(const char *, mode_t, char **);
static uint64_t	 ub_now_ms(void);
static void	 ub_cron(evutil_socket_t, short, void *);
static void	 ub_sighup(evutil_socket_t, short, void *);
static void	 ub_sigterm(evutil_socket_t, short, void *);
static int	 ub_lock(struct ub_main *, char **);
static void	 ub_lock_write_pid(struct ub_main *);
static int	 ub_commit(void *);
static void	 ub_cb_manifest(void *, const struct uplink_manifest *);
static void	 ub_cb_package_ready(void *, const uint8_t *);
static void	 ub_cb_package_failed(void *, const uint8_t *, const char *);

static void
usage(void)
{
	extern char	*__progname;

	fprintf(stderr, "usage: %s [-dhnv] [-f config]\n", __progname);
	exit(2);
}

static uint64_t
ub_now_ms(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000);
}

/* mkdir -p; the last component gets `mode', parents 0755. */
static int
ub_mkdirs(const char *path, mode_t mode, char **cause)
{
	char		 dir[PATH_MAX], *p;
	struct stat	 sb;

	if (snprintf(dir, sizeof(dir), "%s", path) >= (int)sizeof(dir)) {
		xasprintf(cause, "%s: path too long", path);
		return (-1);
	}
	for (p = dir + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(dir, 0755) == -1 && errno != EEXIST) {
			xasprintf(cause, "mkdir %s: %s", dir, strerror(errno));
			return (-1);
		}
		*p = '/';
	}
	if (mkdir(dir, mode) == -1 && errno != EEXIST) {
		xasprintf(cause, "mkdir %s: %s", dir, strerror(errno));
		return (-1);
	}
	if (stat(dir, &sb) == -1 || !S_ISDIR(sb.st_mode)) {
		xasprintf(cause, "%s: not a directory", dir);
		return (-1);
	}
	return (0);
}

/*
 * One daemon per state directory: a second one would fight over the
 * database's write lock and stall both event loops.  The lock is an
 * flock on state_dir/upbridged.pid, which also names the owner.
 */
static int
ub_lock(struct ub_main *m, char **cause)
{
	char	 buf[32];
	ssize_t	 n;

	xasprintf(&m->lock_path, "%s/upbridged.pid", m->ub.conf->state_dir);
	m->lock_fd = open(m->lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (m->lock_fd == -1) {
		xasprintf(cause, "%s: %s", m->lock_path, strerror(errno));
		return (-1);
	}
	if (flock(m->lock_fd, LOCK_EX | LOCK_NB) == -1) {
		n = pread(m->lock_fd, buf, sizeof(buf) - 1, 0);
		buf[n > 0 ? n : 0] = '\0';
		buf[strcspn(buf, "\n")] = '\0';
		xasprintf(cause, "%s is in use by another upbridged%s%s%s",
		    m->ub.conf->state_dir, *buf != '\0' ? " (pid " : "", buf,
		    *buf != '\0' ? ")" : "");
		close(m->lock_fd);
		m->lock_fd = -1;
		return (-1);
	}
	return (0);
}

static void
ub_lock_write_pid(struct ub_main *m)
{
	char	 buf[32];
	int	 len;

	len = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
	if (ftruncate(m->lock_fd, 0) == -1 ||
	    pwrite(m->lock_fd, buf, (size_t)len, 0) != len)
		log_warn("%s", m->lock_path);
}

/* The uplink makes its writes durable before it talks upstream. */
static int
ub_commit(void *arg)
{
	struct ub	*ub = arg;

	return (db_commit_now(ub->db));
}

/* uplink -> fan-out engine. */
static void
ub_cb_manifest(void *arg, const struct uplink_manifest *m)
{
	struct ub	*ub = arg;

	fanout_manifest(ub->fanout, m);
}

static void
ub_cb_package_ready(void *arg, const uint8_t *sha)
{
	struct ub	*ub = arg;

	fanout_package_ready(ub->fanout, sha);
}

/* A verified prefix grew: cut-through sessions send on at once. */
static void
ub_cb_package_progress(void *arg, const uint8_t *sha, uint64_t verified)
{
	struct ub	*ub = arg;

	fanout_package_progress(ub->fanout, sha, verified);
}

static void
ub_cb_package_failed(void *arg, const uint8_t *sha, const char *why)
{
	struct ub	*ub = arg;

	fanout_package_failed(ub->fanout, sha, why);
}

/* The one housekeeping timer. */
static void
ub_cron(evutil_socket_t fd, short events, void *arg)
{
	struct ub_main	*m = arg;
	struct ub	*ub = &m->ub;
	uint64_t	 now = ub_now_ms();

	if (m->stopping)
		return;
	fanout_cron(ub->fanout);
	if (now - m->last_commit_ms >= ub->conf->commit_interval_ms) {
		m->last_commit_ms = now;
		db_commit_now(ub->db);
#ifdef __GLIBC__
		/*
		 * Memory (docs/benchmarks.md, "Memory"): glibc keeps the
		 * pages of freed chunks inside the heap resident (it trims
		 * only the top); a download's buffers come and go all the
		 * time, so give the free pages back once per commit.
		 */
		(void)malloc_trim(0);
#endif
	}
	control_cron(ub->control);
}

/*
 * SIGHUP: read the file again into a new config; apply it only if every
 * difference can be applied while running, else keep the running one.
 */
static void
ub_sighup(evutil_socket_t fd, short events, void *arg)
{
	struct ub_main		*m = arg;
	struct ub		*ub = &m->ub;
	struct ub_config	*new, *old = ub->conf;
	char			*cause = NULL;

	log_info("reloading %s", ub->conf_path);
	if ((new = config_load(ub->conf_path, &cause)) == NULL) {
		log_warnx("reload: %s; keeping the running configuration",
		    cause);
		free(cause);
		return;
	}
	if (config_reloadable(m->boot_conf, new, &cause) != 0) {
		log_warnx("reload: %s; keeping the running configuration",
		    cause);
		free(cause);
		config_free(new);
		return;
	}
	log_setverbose(m->verbose_flag || new->log_verbose);
	fanout_reconfig(ub->fanout, new);
	ub->conf = new;
	/* The boot config stays: modules borrowed its strings. */
	if (old != m->boot_conf)
		config_free(old);
	log_info("configuration reloaded");
}

static void
ub_sigterm(evutil_socket_t fd, short events, void *arg)
{
	struct ub_main	*m = arg;
	struct ub	*ub = &m->ub;

	if (m->stopping)
		return;
	m->stopping = 1;
	log_info("received signal %d, stopping", (int)fd);
	fanout_shutdown(ub->fanout);
	db_commit_now(ub->db);
	event_base_loopexit(ub->base, NULL);
}

int
main(int argc, char *argv[])
{
	struct ub_main		 m;
	struct ub		*ub = &m.ub;
	struct uplink_config	 ucfg;
	struct uplink_cb	 ucb;
	struct event_config	*evcfg;
	struct timeval		 tv = { 0, UB_CRON_MS * 1000 };
	const char		*conf_path = UB_CONF_DEFAULT;
	char			*cause = NULL, *path;
	int			 ch, debug = 0, noaction = 0, help = 0;
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};

	memset(&m, 0, sizeof(m));
	m.lock_fd = -1;
	while ((ch = getopt_long(argc, argv, "df:hnv", longopts, NULL)) != -1) {
		switch (ch) {
		case 'd':
			debug = 1;
			break;
		case 'f':
			conf_path = optarg;
			break;
		case 'h':
			help = 1;
			break;
		case 'n':
			noaction = 1;
			break;
		case 'v':
			m.verbose_flag = 1;
			break;
		default:
			usage();
		}
	}
	if (argc != optind)
		usage();
	if (help) {
		config_print_help(stdout);
		exit(0);
	}

	/* Start-up errors go to stderr until we are running. */
	log_init(1, LOG_DAEMON);
	log_setverbose(m.verbose_flag);
	up_log_set_hook(log_up_hook);

	if ((m.boot_conf = config_load(conf_path, &cause)) == NULL) {
		fprintf(stderr, "%s\n", cause);
		free(cause);
		exit(1);
	}
	if (noaction) {
		fprintf(stderr, "configuration OK\n");
		config_free(m.boot_conf);
		exit(0);
	}
	ub->conf = m.boot_conf;
	ub->conf_path = xstrdup(conf_path);
	log_setverbose(m.verbose_flag || ub->conf->log_verbose);
	signal(SIGPIPE, SIG_IGN);

	if (ub_mkdirs(ub->conf->state_dir, 0750, &cause) != 0)
		fatalx("state_dir: %s", cause);
	if (ub_lock(&m, &cause) != 0)
		fatalx("%s", cause);
	/*
	 * The pacer arms timers a millisecond or two apart; libevent's
	 * default coarse clock on Linux steps in about 4 ms, so ask for the
	 * precise one.
	 */
	if ((evcfg = event_config_new()) == NULL)
		fatalx("cannot create the event configuration");
	event_config_set_flag(evcfg, EVENT_BASE_FLAG_PRECISE_TIMER);
	ub->base = event_base_new_with_config(evcfg);
	event_config_free(evcfg);
	if (ub->base == NULL)
		fatalx("cannot create the event base");

	xasprintf(&path, "%s/upbridge.db", ub->conf->state_dir);
	ub->db = db_open(path, ub->conf->db_synchronous, &cause);
	free(path);
	if (ub->db == NULL)
		fatalx("database: %s", cause);

	xasprintf(&path, "%s/cache", ub->conf->state_dir);
	ub->cache = cache_open(ub->db, path, ub->conf->cache_quota, &cause);
	free(path);
	if (ub->cache == NULL)
		fatalx("cache: %s", cause);
	if ((ub->cloud_key = cache_key_load(ub->conf->cloud_key,
	    &cause)) == NULL)
		fatalx("cloud public key: %s", cause);

	if ((ub->registry = registry_open(ub->db, &cause)) == NULL)
		fatalx("registry: %s", cause);
	registry_set_base(ub->registry, ub->base);
	if ((ub->fanout = fanout_new(ub->base, ub->conf, ub->db, ub->cache,
	    ub->registry, &cause)) == NULL)
		fatalx("fan-out: %s", cause);

	memset(&ucfg, 0, sizeof(ucfg));
	ucfg.base_url = ub->conf->cloud_url;
	ucfg.ca_file = ub->conf->cloud_ca;
	ucfg.gateway_id = ub->conf->gateway_id;
	ucfg.cloud_key = ub->cloud_key;
	ucfg.poll_interval_s = ub->conf->poll_interval_s;
	ucfg.report_interval_s = ub->conf->report_interval_s;
	ucfg.report_batch_max = ub->conf->report_batch_max;
	ucfg.range_bytes = ub->conf->range_bytes;
	ucfg.timeout_s = ub->conf->http_timeout_s;
	ucfg.commit = ub_commit;
	ucfg.commit_arg = ub;
	memset(&ucb, 0, sizeof(ucb));
	ucb.manifest = ub_cb_manifest;
	ucb.package_ready = ub_cb_package_ready;
	ucb.package_progress = ub_cb_package_progress;
	ucb.package_failed = ub_cb_package_failed;
	if ((ub->uplink = uplink_new(ub->base, ub->db, ub->cache, &ucfg, &ucb,
	    ub, &cause)) == NULL)
		fatalx("uplink: %s", cause);
	fanout_set_uplink(ub->fanout, ub->uplink);

	if (fanout_open_transports(ub->fanout, &cause) != 0)
		fatalx("transports: %s", cause);
	if ((ub->control = control_new(ub->base, ub, ub->conf->control_socket,
	    ub->conf->control_group, &cause)) == NULL)
		fatalx("control socket: %s", cause);
	/* Make what start-up created durable before going live. */
	db_commit_now(ub->db);

	if (!debug) {
		if (daemon(0, 0) == -1)
			fatal("daemon");
		if (event_reinit(ub->base) == -1)
			fatalx("event_reinit");
		log_init(0, LOG_DAEMON);
	}
	ub_lock_write_pid(&m);

	m.ev_hup = evsignal_new(ub->base, SIGHUP, ub_sighup, &m);
	m.ev_term = evsignal_new(ub->base, SIGTERM, ub_sigterm, &m);
	m.ev_int = evsignal_new(ub->base, SIGINT, ub_sigterm, &m);
	m.ev_cron = event_new(ub->base, -1, EV_PERSIST, ub_cron, &m);
	if (m.ev_hup == NULL || m.ev_term == NULL || m.ev_int == NULL ||
	    m.ev_cron == NULL || evsignal_add(m.ev_hup, NULL) == -1 ||
	    evsignal_add(m.ev_term, NULL) == -1 ||
	    evsignal_add(m.ev_int, NULL) == -1 ||
	    evtimer_add(m.ev_cron, &tv) == -1)
		fatalx("cannot set up signals and timers");

	if (uplink_start(ub->uplink) != 0)
		fatalx("uplink: cannot start");
	ub->started = (int64_t)time(NULL);
	m.last_commit_ms = ub_now_ms();
	log_info("upbridged %s started: gateway %s, %zu transport%s, "
	    "control %s", UB_VERSION, ub->conf->gateway_id,
	    ub->conf->ntransports, ub->conf->ntransports == 1 ? "" : "s",
	    ub->conf->control_socket);

	if (event_base_dispatch(ub->base) == -1)
		log_warnx("event loop failed");

	/* Reverse order of creation. */
	event_free(m.ev_cron);
	event_free(m.ev_int);
	event_free(m.ev_term);
	event_free(m.ev_hup);
	control_free(ub->control);
	fanout_free(ub->fanout);
	uplink_free(ub->uplink);
	registry_free(ub->registry);
	cache_key_free(ub->cloud_key);
	cache_free(ub->cache);
	db_close(ub->db);
	event_base_free(ub->base);
	if (ub->conf != m.boot_conf)
		config_free(ub->conf);
	config_free(m.boot_conf);
	free(ub->conf_path);
	unlink(m.lock_path);
	close(m.lock_fd);
	free(m.lock_path);
	log_info("stopped");
	return (0);
}
