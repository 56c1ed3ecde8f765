/*
 * log.c: the OpenBSD log API (relayd, bgpd, ntpd) for upbridged.
 *
 * In the foreground (-d) messages go to stderr with a timestamp, otherwise
 * to syslog.  Debug messages are printed only when verbose.  Lower folders
 * log through up/'s hook (log_up_hook) and libevent through its own log
 * callback, both routed here.  Every function keeps errno.
 */
#include <sys/time.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#include <event2/event.h>

#include "upbridged.h"

static int		 log_debug_mode = 1;
static int		 log_verbose;
static const char	*log_procname;

static void	 vlog(int, const char *, va_list)
		    __attribute__((__format__(printf, 2, 0)));
static void	 logit(int, const char *, ...)
		    __attribute__((__format__(printf, 2, 3)));
static void	 log_event_cb(int, const char *);
static void	 log_event_fatal_cb(int);

void
log_init(int debug, int facility)
{
	extern char	*__progname;

	log_debug_mode = debug;
	if (log_procname == NULL)
		log_procname = __progname;
	if (!debug)
		openlog(__progname, LOG_PID | LOG_NDELAY, facility);
	tzset();

	/* libevent's own warnings would otherwise go to stderr. */
	event_set_log_callback(log_event_cb);
	event_set_fatal_callback(log_event_fatal_cb);
}

void
log_setverbose(int v)
{
	log_verbose = v;
}

int
log_getverbose(void)
{
	return (log_verbose);
}

void
log_procinit(const char *procname)
{
	if (procname != NULL)
		log_procname = procname;
}

static void
logit(int pri, const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	vlog(pri, fmt, ap);
	va_end(ap);
}

static void
vlog(int pri, const char *fmt, va_list ap)
{
	struct timeval	 tv;
	struct tm	 tm;
	char		 ts[32];
	int		 saved_errno = errno;

	if (pri == LOG_DEBUG && !log_verbose) {
		errno = saved_errno;
		return;
	}
	if (log_debug_mode) {
		gettimeofday(&tv, NULL);
		localtime_r(&tv.tv_sec, &tm);
		strftime(ts, sizeof(ts), "%Y-%m-%d %H:%M:%S", &tm);
		/* One buffered write per line keeps lines whole. */
		flockfile(stderr);
		fprintf(stderr, "%s.%03ld ", ts, (long)(tv.tv_usec / 1000));
		vfprintf(stderr, fmt, ap);
		fputc('\n', stderr);
		fflush(stderr);
		funlockfile(stderr);
	} else
		vsyslog(pri, fmt, ap);
	errno = saved_errno;
}

void
log_warn(const char *emsg, ...)
{
	char	*nfmt;
	va_list	 ap;
	int	 saved_errno = errno;

	va_start(ap, emsg);
	if (emsg == NULL)
		logit(LOG_ERR, "%s", strerror(saved_errno));
	else if (asprintf(&nfmt, "%s: %s", emsg,
	    strerror(saved_errno)) == -1) {
		/* Cannot allocate: print what we have. */
		vlog(LOG_ERR, emsg, ap);
		logit(LOG_ERR, "%s", strerror(saved_errno));
	} else {
		vlog(LOG_ERR, nfmt, ap);
		free(nfmt);
	}
	va_end(ap);
	errno = saved_errno;
}

void
log_warnx(const char *emsg, ...)
{
	va_list	 ap;

	va_start(ap, emsg);
	vlog(LOG_ERR, emsg, ap);
	va_end(ap);
}

void
log_info(const char *emsg, ...)
{
	va_list	 ap;

	va_start(ap, emsg);
	vlog(LOG_INFO, emsg, ap);
	va_end(ap);
}

void
log_debug(const char *emsg, ...)
{
	va_list	 ap;

	if (!log_verbose)
		return;
	va_start(ap, emsg);
	vlog(LOG_DEBUG, emsg, ap);
	va_end(ap);
}

static void __attribute__((__format__(printf, 2, 0)))
vfatalc(int code, const char *emsg, va_list ap)
{
	static char	 s[BUFSIZ];
	const char	*sep;

	if (emsg != NULL) {
		(void)vsnprintf(s, sizeof(s), emsg, ap);
		sep = ": ";
	} else {
		s[0] = '\0';
		sep = "";
	}
	if (code)
		logit(LOG_CRIT, "fatal in %s: %s%s%s",
		    log_procname, s, sep, strerror(code));
	else
		logit(LOG_CRIT, "fatal in %s%s%s", log_procname, sep, s);
}

void
fatal(const char *emsg, ...)
{
	va_list	 ap;

	va_start(ap, emsg);
	vfatalc(errno, emsg, ap);
	va_end(ap);
	exit(1);
}

void
fatalx(const char *emsg, ...)
{
	va_list	 ap;

	va_start(ap, emsg);
	vfatalc(0, emsg, ap);
	va_end(ap);
	exit(1);
}

/*
 * up/'s log hook: cache/, uplink/, transports/ and scheduler/ log through
 * up_logf() because the folder rules keep them from including this file's
 * header.
 */
void
log_up_hook(int level, const char *fmt, va_list ap)
{
	switch (level) {
	case UP_LOG_WARN:
		vlog(LOG_ERR, fmt, ap);
		break;
	case UP_LOG_INFO:
		vlog(LOG_INFO, fmt, ap);
		break;
	default:
		vlog(LOG_DEBUG, fmt, ap);
		break;
	}
}

static void
log_event_cb(int severity, const char *msg)
{
	switch (severity) {
	case EVENT_LOG_DEBUG:
		log_debug("libevent: %s", msg);
		break;
	case EVENT_LOG_MSG:
		log_info("libevent: %s", msg);
		break;
	default:
		log_warnx("libevent: %s", msg);
		break;
	}
}

static void
log_event_fatal_cb(int err)
{
	fatalx("libevent: fatal error %d", err);
}
