/*
 * sim_core.c: the medium simulator, its endpoints, its clock, faults and
 * the status report (upsim.h, docs/simulator.md).
 *
 * Adding a personality is one new file defining a const struct
 * sim_personality, one entry in the table below and its line in
 * CMakeLists.txt.
 */
#include <sys/types.h>
#include <sys/stat.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "sim_internal.h"

static const struct sim_personality *const personalities[] = {
	&sim_rs485,
	&sim_lora,
	&sim_plc,
	NULL
};

const struct sim_personality *
sim_personality_find(const char *name)
{
	size_t		 i;

	for (i = 0; personalities[i] != NULL; i++)
		if (strcmp(personalities[i]->name, name) == 0)
			return (personalities[i]);
	return (NULL);
}

const struct sim_personality *const *
sim_personality_list(void)
{
	return (personalities);
}

static char *
sim_cause(const char *fmt, ...)
    __attribute__((__format__(__printf__, 1, 2)));

static char *
sim_cause(const char *fmt, ...)
{
	va_list		 ap;
	char		*s;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) == -1)
		s = NULL;
	va_end(ap);
	return (s);
}

void
sim_debug(const struct sim *sim, const char *fmt, ...)
{
	va_list		 ap;

	if (!sim->conf.verbose)
		return;
	fprintf(stderr, "upsim: %.3f ms: ", (double)sim_now(sim) / 1e6);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* ------------------------------------------------------------------ */
/* The clock                                                           */

uint64_t
sim__mono_ns(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((uint64_t)ts.tv_sec * SIM_NS_PER_S + (uint64_t)ts.tv_nsec);
}

uint64_t
sim__from_real(const struct sim *sim, uint64_t real_ns)
{
	if (sim->conf.time_scale == 1.0)
		return (real_ns);
	return ((uint64_t)llround((double)real_ns * sim->conf.time_scale));
}

uint64_t
sim__to_real(const struct sim *sim, uint64_t sim_ns)
{
	if (sim->conf.time_scale == 1.0)
		return (sim_ns);
	return ((uint64_t)llround((double)sim_ns / sim->conf.time_scale));
}

uint64_t
sim_real_ns(const struct sim *sim)
{
	return (sim__mono_ns() - sim->t0);
}

uint64_t
sim_now(const struct sim *sim)
{
	return (sim__from_real(sim, sim_real_ns(sim)));
}

void
sim_timer_at(struct sim *sim, struct event *ev, uint64_t at)
{
	struct timeval	 tv;
	uint64_t	 now = sim_now(sim), real;

	/* Rounded up: never fire before the simulated time is reached. */
	real = at > now ? sim__to_real(sim, at - now) + 999 : 0;
	tv.tv_sec = (time_t)(real / SIM_NS_PER_S);
	tv.tv_usec = (suseconds_t)(real % SIM_NS_PER_S / 1000);
	evtimer_add(ev, &tv);
}

uint64_t
sim_rand(struct sim_ep *ep)
{
	/* xorshift64* */
	ep->rng ^= ep->rng >> 12;
	ep->rng ^= ep->rng << 25;
	ep->rng ^= ep->rng >> 27;
	return (ep->rng * 0x2545f4914f6cdd1dULL);
}

/* ------------------------------------------------------------------ */
/* The simulator and its endpoints                                     */

struct sim *
sim_new(struct event_base *base, const struct sim_conf *conf, char **cause)
{
	struct sim	*sim;

	if (conf->pers == NULL || !(conf->time_scale > 0) ||
	    conf->fmt.baud == 0) {
		*cause = sim_cause("a personality, a time scale above 0 and "
		    "a line format are required");
		return (NULL);
	}
	if ((sim = calloc(1, sizeof(*sim))) == NULL) {
		*cause = sim_cause("out of memory");
		return (NULL);
	}
	sim->base = base;
	sim->conf = *conf;
	sim->pers = conf->pers;
	sim->txtail = &sim->txs;
	sim->t0 = sim__mono_ns();
	return (sim);
}

static bool
name_ok(const char *s)
{
	size_t		 i;

	if (s[0] == '\0' || strlen(s) > SIM_NAME_MAX)
		return (false);
	for (i = 0; s[i] != '\0'; i++)
		if (!isalnum((unsigned char)s[i]) && strchr("_.-", s[i]) ==
		    NULL)
			return (false);
	return (true);
}

static int
pty_raw_nonblock(int fd)
{
	struct termios	 t;
	int		 fl;

	if (tcgetattr(fd, &t) == -1)
		return (-1);
	cfmakeraw(&t);
	if (tcsetattr(fd, TCSANOW, &t) == -1)
		return (-1);
	if ((fl = fcntl(fd, F_GETFL)) == -1)
		return (-1);
	return (fcntl(fd, F_SETFL, fl | O_NONBLOCK));
}

struct sim_ep *
sim_ep_add(struct sim *sim, const char *name, char **cause)
{
	struct sim_ep	*ep;
	const char	*pts;
	uint64_t	 h;
	size_t		 i;

	if (sim->started) {
		*cause = sim_cause("endpoints are added before the start");
		return (NULL);
	}
	if (!name_ok(name)) {
		*cause = sim_cause("%s: an endpoint name is 1 to %d of "
		    "A-Z a-z 0-9 _ . -", name, SIM_NAME_MAX);
		return (NULL);
	}
	if (sim_ep_find(sim, name) != NULL) {
		*cause = sim_cause("%s: endpoint given twice", name);
		return (NULL);
	}
	if (sim->nep >= SIM_EP_MAX) {
		*cause = sim_cause("at most %d endpoints", SIM_EP_MAX);
		return (NULL);
	}
	if ((ep = calloc(1, sizeof(*ep))) == NULL) {
		*cause = sim_cause("out of memory");
		return (NULL);
	}
	ep->sim = sim;
	ep->idx = sim->nep;
	snprintf(ep->name, sizeof(ep->name), "%s", name);
	ep->master = ep->hold = -1;
	ep->fmt = sim->conf.fmt;
	ep->attached = true;
	ep->half_duplex = true;
	ep->loss = sim->conf.loss_pct / 100;
	ep->delay_ns = (uint64_t)llround(sim->conf.delay_ms *
	    (double)SIM_NS_PER_MS);
	/* Same seed, different endpoints: independent draws. */
	h = sim->conf.seed ^ ((uint64_t)(ep->idx + 1) * 0x9e3779b97f4a7c15ULL);
	for (i = 0; name[i] != '\0'; i++)
		h = (h ^ (unsigned char)name[i]) * 0x100000001b3ULL;
	ep->rng = h != 0 ? h : 1;

	if ((ep->master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC)) ==
	    -1 || grantpt(ep->master) == -1 || unlockpt(ep->master) == -1 ||
	    (pts = ptsname(ep->master)) == NULL) {
		*cause = sim_cause("%s: pty: %s", name, strerror(errno));
		goto fail;
	}
	snprintf(ep->pty, sizeof(ep->pty), "%s", pts);
	/*
	 * Our own slave fd: the master never sees a hang-up.  It also
	 * keeps the slave's line discipline alive while no program has
	 * the line open, so the line starts raw (the kernel's 38400 8N1
	 * otherwise): an echo would come back as characters sent.
	 */
	if ((ep->hold = open(ep->pty, O_RDWR | O_NOCTTY | O_CLOEXEC)) == -1 ||
	    pty_raw_nonblock(ep->hold) == -1 ||
	    pty_raw_nonblock(ep->master) == -1) {
		*cause = sim_cause("%s: %s: %s", name, ep->pty,
		    strerror(errno));
		goto fail;
	}
	sim->ep[sim->nep++] = ep;
	return (ep);
fail:
	if (ep->hold != -1)
		close(ep->hold);
	if (ep->master != -1)
		close(ep->master);
	free(ep);
	return (NULL);
}

static int
parse_double(const char *s, double lo, double hi, double *v)
{
	char		*end;

	errno = 0;
	*v = strtod(s, &end);
	if (s[0] == '\0' || *end != '\0' || errno != 0 || !(*v >= lo) ||
	    !(*v <= hi))
		return (-1);
	return (0);
}

static const struct sim_opt *
opt_find(const struct sim_opt *o, const char *key)
{
	for (; o != NULL && o->name != NULL; o++)
		if (strcmp(o->name, key) == 0)
			return (o);
	return (NULL);
}

int
sim_ep_set(struct sim_ep *ep, const char *key, const char *value,
    char **cause)
{
	double		 v;

	if (strcmp(key, "loss") == 0) {
		if (parse_double(value, 0, 100, &v) == -1)
			goto bad;
		ep->loss = v / 100;
	} else if (strcmp(key, "delay") == 0) {
		if (parse_double(value, 0, 3600e3, &v) == -1)
			goto bad;
		ep->delay_ns = (uint64_t)llround(v * (double)SIM_NS_PER_MS);
	} else if (strcmp(key, "half-duplex") == 0) {
		if (strcmp(value, "yes") == 0)
			ep->half_duplex = true;
		else if (strcmp(value, "no") == 0)
			ep->half_duplex = false;
		else
			goto bad;
	} else if (strcmp(key, "parity") == 0) {
		if (strcmp(value, "auto") == 0)
			ep->parity = 0;
		else if (strlen(value) == 1 && strchr("NEOMS", value[0]) !=
		    NULL)
			ep->parity = (uint8_t)value[0];
		else
			goto bad;
	} else if (opt_find(ep->sim->pers->ep_options, key) != NULL) {
		if (ep->nopt >= SIM_OPTS_MAX) {
			*cause = sim_cause("%s: at most %d options",
			    ep->name, SIM_OPTS_MAX);
			return (-1);
		}
		ep->opt[ep->nopt].key = key;
		ep->opt[ep->nopt].value = value;
		ep->nopt++;
	} else {
		*cause = sim_cause("%s: unknown endpoint option %s "
		    "(loss, delay, half-duplex, parity%s)", ep->name, key,
		    ep->sim->pers->ep_options != NULL &&
		    ep->sim->pers->ep_options->name != NULL ?
		    " or the personality's" : "");
		return (-1);
	}
	return (0);
bad:
	*cause = sim_cause("%s: %s: bad value %s", ep->name, key, value);
	return (-1);
}

int
sim_start(struct sim *sim, char **cause)
{
	const struct sim_opt *o;
	unsigned int	 i;

	for (i = 0; i < sim->conf.nopt; i++)
		if ((o = opt_find(sim->pers->options,
		    sim->conf.opt[i].key)) == NULL) {
			*cause = sim_cause("%s: unknown option %s",
			    sim->pers->name, sim->conf.opt[i].key);
			return (-1);
		}
	if (sim->nep == 0) {
		*cause = sim_cause("no endpoints");
		return (-1);
	}
	if (sim->pers->init != NULL && sim->pers->init(sim, cause) == -1)
		return (-1);
	if (sim__medium_start(sim, cause) == -1)
		return (-1);
	for (i = 0; i < sim->nep; i++)
		if (sim__line_start(sim->ep[i], cause) == -1)
			return (-1);
	sim->started = true;
	return (0);
}

void
sim_free(struct sim *sim)
{
	unsigned int	 i;

	if (sim == NULL)
		return;
	if (sim->started && sim->pers->fini != NULL)
		sim->pers->fini(sim);
	sim__medium_free(sim);
	for (i = 0; i < sim->nep; i++) {
		sim__line_free(sim->ep[i]);
		if (sim->ep[i]->hold != -1)
			close(sim->ep[i]->hold);
		if (sim->ep[i]->master != -1)
			close(sim->ep[i]->master);
		free(sim->ep[i]);
	}
	free(sim);
}

struct event_base *
sim_base(const struct sim *sim)
{
	return (sim->base);
}

const struct sim_conf *
sim_conf(const struct sim *sim)
{
	return (&sim->conf);
}

const struct sim_personality *
sim_pers(const struct sim *sim)
{
	return (sim->pers);
}

unsigned int
sim_nep(const struct sim *sim)
{
	return (sim->nep);
}

struct sim_ep *
sim_ep(const struct sim *sim, unsigned int idx)
{
	return (idx < sim->nep ? sim->ep[idx] : NULL);
}

struct sim_ep *
sim_ep_find(const struct sim *sim, const char *name)
{
	unsigned int	 i;

	for (i = 0; i < sim->nep; i++)
		if (strcmp(sim->ep[i]->name, name) == 0)
			return (sim->ep[i]);
	return (NULL);
}

void *
sim_priv(const struct sim *sim)
{
	return (sim->priv);
}

void
sim_set_priv(struct sim *sim, void *priv)
{
	sim->priv = priv;
}

const char *
sim_opt(const struct sim *sim, const char *key)
{
	const struct sim_opt *o;
	unsigned int	 i;

	for (i = sim->conf.nopt; i > 0; i--)
		if (strcmp(sim->conf.opt[i - 1].key, key) == 0)
			return (sim->conf.opt[i - 1].value);
	o = opt_find(sim->pers->options, key);
	return (o != NULL ? o->def : NULL);
}

const char *
sim_ep_opt(const struct sim_ep *ep, const char *key)
{
	const struct sim_opt *o;
	unsigned int	 i;

	for (i = ep->nopt; i > 0; i--)
		if (strcmp(ep->opt[i - 1].key, key) == 0)
			return (ep->opt[i - 1].value);
	o = opt_find(ep->sim->pers->ep_options, key);
	return (o != NULL ? o->def : NULL);
}

/* ------------------------------------------------------------------ */
/* Faults                                                              */

void
sim_ep_detach(struct sim_ep *ep)
{
	if (!ep->attached)
		return;
	sim_debug(ep->sim, "%s: detached", ep->name);
	ep->attached = false;
	ep->st.detaches++;
	sim__medium_detach(ep);
}

void
sim_ep_attach(struct sim_ep *ep)
{
	if (ep->attached)
		return;
	sim_debug(ep->sim, "%s: attached", ep->name);
	ep->attached = true;
	sim__medium_detach(ep);
}

void
sim_ep_reset(struct sim_ep *ep)
{
	sim_debug(ep->sim, "%s: reset", ep->name);
	ep->st.resets++;
	sim__medium_reset(ep);
	sim_line_flush(ep);
	if (ep->sim->pers->reset != NULL)
		ep->sim->pers->reset(ep->sim, ep);
}

int
sim_command(struct sim *sim, const char *line, char **cause)
{
	char		 buf[256], *argv[8], *p, *save = NULL;
	struct sim_ep	*ep = NULL;
	double		 v;
	int		 argc = 0, r;

	if (strlen(line) >= sizeof(buf)) {
		*cause = sim_cause("command too long");
		return (-1);
	}
	snprintf(buf, sizeof(buf), "%s", line);
	for (p = strtok_r(buf, " \t\r\n", &save); p != NULL && argc < 8;
	    p = strtok_r(NULL, " \t\r\n", &save))
		argv[argc++] = p;
	if (argc == 0) {
		*cause = sim_cause("empty command");
		return (-1);
	}
	if (argc >= 2)
		ep = sim_ep_find(sim, argv[1]);
#define NEED(n, usage) do {						\
	if (argc != (n)) {						\
		*cause = sim_cause("usage: %s", usage);			\
		return (-1);						\
	}								\
	if (ep == NULL) {						\
		*cause = sim_cause("%s: no such endpoint", argv[1]);	\
		return (-1);						\
	}								\
} while (0)
	if (strcmp(argv[0], "detach") == 0) {
		NEED(2, "detach EP");
		sim_ep_detach(ep);
	} else if (strcmp(argv[0], "attach") == 0) {
		NEED(2, "attach EP");
		sim_ep_attach(ep);
	} else if (strcmp(argv[0], "reset") == 0) {
		NEED(2, "reset EP");
		sim_ep_reset(ep);
	} else if (strcmp(argv[0], "loss") == 0) {
		NEED(3, "loss EP PCT");
		if (parse_double(argv[2], 0, 100, &v) == -1) {
			*cause = sim_cause("loss: 0 to 100: %s", argv[2]);
			return (-1);
		}
		ep->loss = v / 100;
	} else if (strcmp(argv[0], "delay") == 0) {
		NEED(3, "delay EP MS");
		if (parse_double(argv[2], 0, 3600e3, &v) == -1) {
			*cause = sim_cause("delay: 0 to 3600000 ms: %s",
			    argv[2]);
			return (-1);
		}
		ep->delay_ns = (uint64_t)llround(v * (double)SIM_NS_PER_MS);
	} else {
		r = 1;
		if (sim->pers->command != NULL)
			r = sim->pers->command(sim, argc, argv, cause);
		if (r == 1) {
			*cause = sim_cause("%s: unknown command", argv[0]);
			return (-1);
		}
		return (r);
	}
#undef NEED
	return (0);
}

/* ------------------------------------------------------------------ */
/* Status                                                              */

/* A JSON string of our own names and paths: escape what JSON needs. */
static void
json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s != '\0'; s++) {
		if (*s == '"' || *s == '\\')
			fprintf(f, "\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			fprintf(f, "\\u%04x", (unsigned char)*s);
		else
			fputc(*s, f);
	}
	fputc('"', f);
}

static void
ep_json(struct sim *sim, struct sim_ep *ep, FILE *f)
{
	const struct sim_stats *st = &ep->st;
	struct sim_fmt	 now;
	tcflag_t	 iflag;
	char		 a[32], b[32];

	sim_line_fmt(ep, &now, &iflag);
	sim_fmt_str(&ep->fmt, a, sizeof(a));
	sim_fmt_str(&now, b, sizeof(b));
	fprintf(f, "{\"name\": ");
	json_str(f, ep->name);
	fprintf(f, ", \"pty\": ");
	json_str(f, ep->pty);
	fprintf(f, ", \"attached\": %s, \"half_duplex\": %s, "
	    "\"loss_pct\": %g, \"delay_ms\": %g, "
	    "\"line\": {\"fmt\": \"%s\", \"set\": \"%s\", \"ok\": %s}, ",
	    ep->attached ? "true" : "false",
	    ep->half_duplex ? "true" : "false", ep->loss * 100,
	    (double)ep->delay_ns / 1e6, a, b,
	    sim_fmt_eq(&ep->fmt, &now) ? "true" : "false");
	fprintf(f, "\"line_in\": %llu, \"line_out\": %llu, "
	    "\"line_errors\": %llu, \"line_mismatch\": %llu, "
	    "\"overruns\": %llu, ",
	    (unsigned long long)st->line_in, (unsigned long long)st->line_out,
	    (unsigned long long)st->line_errors,
	    (unsigned long long)st->line_mismatch,
	    (unsigned long long)st->overruns);
	fprintf(f, "\"tx_frames\": %llu, \"tx_bytes\": %llu, "
	    "\"airtime_us\": %.3f, \"collisions\": %llu, "
	    "\"tx_unheard\": %llu, ",
	    (unsigned long long)st->tx_frames,
	    (unsigned long long)st->tx_bytes, (double)st->airtime_ns / 1e3,
	    (unsigned long long)st->collisions,
	    (unsigned long long)st->tx_unheard);
	fprintf(f, "\"rx_frames\": %llu, \"rx_bytes\": %llu, "
	    "\"rx_garbled\": %llu, \"rx_lost\": %llu, \"rx_missed\": %llu, "
	    "\"rx_detached\": %llu, \"detaches\": %llu, \"resets\": %llu",
	    (unsigned long long)st->rx_frames,
	    (unsigned long long)st->rx_bytes,
	    (unsigned long long)st->rx_garbled,
	    (unsigned long long)st->rx_lost,
	    (unsigned long long)st->rx_missed,
	    (unsigned long long)st->rx_detached,
	    (unsigned long long)st->detaches,
	    (unsigned long long)st->resets);
	if (sim->pers->status != NULL)
		sim->pers->status(sim, ep, f);
	fputc('}', f);
}

void
sim_status_json(struct sim *sim, FILE *f)
{
	uint64_t	 frames = 0, coll = 0, air = 0, real = sim_real_ns(sim);
	uint64_t	 now = sim__from_real(sim, real);
	unsigned int	 i;
	char		 a[32];

	for (i = 0; i < sim->nep; i++) {
		frames += sim->ep[i]->st.tx_frames;
		coll += sim->ep[i]->st.collisions;
		air += sim->ep[i]->st.airtime_ns;
	}
	sim_fmt_str(&sim->conf.fmt, a, sizeof(a));
	fprintf(f, "{\"personality\": \"%s\", \"time_scale\": %g, "
	    "\"seed\": %llu, \"sim_ms\": %.3f, \"real_ms\": %.3f, "
	    "\"medium\": {\"fmt\": \"%s\", \"char_bits\": %u, "
	    "\"char_us\": %.3f}, \"tx_frames\": %llu, \"collisions\": %llu, "
	    "\"airtime_us\": %.3f, \"endpoints\": [",
	    sim->pers->name, sim->conf.time_scale,
	    (unsigned long long)sim->conf.seed, (double)now / 1e6,
	    (double)real / 1e6, a, sim_fmt_char_bits(&sim->conf.fmt),
	    (double)sim_fmt_char_ns(&sim->conf.fmt) / 1e3,
	    (unsigned long long)frames, (unsigned long long)coll,
	    (double)air / 1e3);
	for (i = 0; i < sim->nep; i++) {
		if (i > 0)
			fputs(", ", f);
		ep_json(sim, sim->ep[i], f);
	}
	fputs("]}", f);
}

int
sim_status_write(struct sim *sim, const char *path, char **cause)
{
	char		 tmp[4096];
	FILE		*f;
	int		 fd;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >=
	    sizeof(tmp)) {
		*cause = sim_cause("%s: path too long", path);
		return (-1);
	}
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) ==
	    -1 || (f = fdopen(fd, "w")) == NULL) {
		*cause = sim_cause("%s: %s", tmp, strerror(errno));
		if (fd != -1)
			close(fd);
		return (-1);
	}
	sim_status_json(sim, f);
	fputc('\n', f);
	if (fclose(f) == EOF || rename(tmp, path) == -1) {
		*cause = sim_cause("%s: %s", path, strerror(errno));
		unlink(tmp);
		return (-1);
	}
	return (0);
}
