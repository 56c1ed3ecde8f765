/*
 * mb_chan.c: a channel, one libmodbus context and the worker thread that
 * runs its blocking calls (mb_internal.h, docs/transports/modbus.md
 * "Off the event loop").
 *
 * The worker takes jobs in order and runs each to its end: a write into
 * a node's FRAME window, a broadcast, a poll of an outbox, a probe of the
 * identity registers, a TCP connect or close.  On a serial bus it keeps
 * the timing libmodbus leaves to the caller (Modbus over Serial Line
 * V1.02 §2.5.1.1): the 3.5-character silence before every request, and
 * a broadcast sent with modbus_send_raw_request() so that no response
 * timeout is waited for a reply that never comes (libmodbus waits one
 * for modbus_write_registers() to unit 0), drained with tcdrain() so
 * the next request starts after its last character, not on top of it.
 */
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "mb_internal.h"

/* Registers of the first poll read: seq, length, MB_POLL_REGS. */
#define POLL_FIRST	(2 + MB_POLL_REGS)

static uint64_t
now_ns(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec);
}

static void
sleep_until(uint64_t ns)
{
	struct timespec	 ts;

	if (ns <= now_ns())
		return;
	ts.tv_sec = (time_t)(ns / 1000000000ULL);
	ts.tv_nsec = (long)(ns % 1000000000ULL);
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) ==
	    EINTR)
		;
}

uint32_t
mb__chars_us(const struct tp *t, size_t n)
{
	return ((uint32_t)(((uint64_t)t->char_ns * n + 999) / 1000));
}

/*
 * The response timeout of a request of req_chars characters: libmodbus
 * starts it when write() returns, which is before the request has left
 * a serial port, so the request's own line time is added.
 */
static void
set_timeout(struct mb_chan *c, size_t req_chars)
{
	struct tp	*t = c->t;
	uint64_t	 us = (uint64_t)t->response_ms * 1000;

	if (t->kind == MB_RTU)
		us += mb__chars_us(t, req_chars) + t->t35_ns / 1000;
	modbus_set_response_timeout(c->ctx, (uint32_t)(us / 1000000),
	    (uint32_t)(us % 1000000));
}

/* Waits for the silence the bus needs before the next request. */
static void
wait_quiet(struct mb_chan *c)
{
	if (c->t->kind == MB_RTU)
		sleep_until(c->quiet_ns);
}

/* The line is busy until now plus the silence (and `extra_us'). */
static void
mark_quiet(struct mb_chan *c, uint32_t extra_us)
{
	c->quiet_ns = now_ns() + c->t->t35_ns + (uint64_t)extra_us * 1000;
}

/*
 * After a failed exchange on a bus: whatever is still arriving (a late
 * or garbled reply) is read and dropped until the line has been quiet
 * for a few character times, so it cannot be taken for the next reply.
 */
static void
drain_line(struct mb_chan *c)
{
	struct tp	*t = c->t;
	struct pollfd	 pfd;
	uint8_t		 junk[256];
	int		 quiet_ms, i;

	if (t->kind != MB_RTU || c->ctx == NULL)
		return;
	quiet_ms = (int)((t->t35_ns * 2) / 1000000) + 5;
	pfd.fd = modbus_get_socket(c->ctx);
	pfd.events = POLLIN;
	for (i = 0; i < 64; i++) {
		if (poll(&pfd, 1, quiet_ms) <= 0)
			break;
		if (read(pfd.fd, junk, sizeof(junk)) <= 0)
			break;
	}
	modbus_flush(c->ctx);
	mark_quiet(c, 0);
}

/*
 * Gives a serial line back raw before libmodbus sets it up.  A pty keeps
 * the termios of the last program that had it (the simulator holds
 * every line open), and never keeps PARENB: the kernel clears it.  So a
 * master started again on its line (after kill -9, a crash) asks
 * libmodbus for the 8E1 the line already shows but for PARENB; the
 * kernel takes the request and drops PARENB again, and glibc's
 * tcsetattr(), which reads the line back, reports EINVAL (seen with
 * strace: TCSETS with PARENB returns 0, TCGETS shows it cleared).  The
 * daemon could not open its bus after a restart.  From raw (no INPCK)
 * libmodbus's request changes the line and is taken.  On a real UART
 * this changes nothing that libmodbus does not set right after.  Best
 * effort: a port that cannot be opened here fails with its reason in
 * modbus_connect().
 */
void
mb__line_reset(const char *device)
{
	struct termios	 t;
	int		 fd;

	if ((fd = open(device, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC)) ==
	    -1)
		return;
	if (tcgetattr(fd, &t) == 0) {
		cfmakeraw(&t);
		t.c_iflag &= ~(tcflag_t)INPCK;
		(void)tcsetattr(fd, TCSANOW, &t);
	}
	close(fd);
}

/* Is errno a failure of the connection or the port itself? */
static bool
link_errno(int e)
{
	switch (e) {
	case EBADF:
	case EIO:
	case ENXIO:
	case ENODEV:
	case EPIPE:
	case ECONNRESET:
	case ECONNREFUSED:
	case ECONNABORTED:
	case ENOTCONN:
	case EHOSTUNREACH:
	case ENETUNREACH:
		return (true);
	default:
		return (false);
	}
}

static void
job_fail(struct mb_chan *c, struct mb_job *j, const char *what, int e)
{
	j->what = what;
	j->err = e;
	/*
	 * Exception 06, Server Device Busy: the node is alive and asks to
	 * be asked again later (Modbus Application Protocol V1.1b3 §7);
	 * the engine backs off instead of counting a failure.
	 */
	j->status = e == EMBXSBUSY ? TP_EBUSY : link_errno(e) ? TP_EIO :
	    TP_ENOPEER;
	if (j->status == TP_EIO && c->t->kind == MB_TCP && c->connected) {
		/* The server went away: this connection is over. */
		modbus_close(c->ctx);
		c->connected = false;
	} else
		drain_line(c);
}

static void
run_send(struct mb_chan *c, struct mb_job *j)
{
	struct tp	*t = c->t;
	uint16_t	 regs[UP_MB_FRAME_N], addr;
	uint8_t		 raw[7 + UP_MB_FRAME_MAX];
	size_t		 n = (j->len + 1) / 2, i;

	addr = up_mb_frame_regs(j->frame, j->len, regs);
	wait_quiet(c);
	if (j->unit == 0) {
		/* Broadcast: unit 0, no reply (§2.1 of the serial line spec). */
		raw[0] = 0;
		raw[1] = 0x10;
		raw[2] = (uint8_t)(addr >> 8);
		raw[3] = (uint8_t)addr;
		raw[4] = 0;
		raw[5] = (uint8_t)n;
		raw[6] = (uint8_t)(2 * n);
		for (i = 0; i < n; i++) {
			raw[7 + 2 * i] = (uint8_t)(regs[i] >> 8);
			raw[8 + 2 * i] = (uint8_t)regs[i];
		}
		if (modbus_send_raw_request(c->ctx, raw, (int)(7 + 2 * n)) ==
		    -1) {
			job_fail(c, j, "broadcast write", errno);
			return;
		}
		/* The next request starts after this one's last character. */
		(void)tcdrain(modbus_get_socket(c->ctx));
		mark_quiet(c, t->bcast_gap_us);
		j->line_us = mb__chars_us(t, 9 + 2 * n) + t->t35_ns / 1000 +
		    t->bcast_gap_us;
		j->status = TP_OK;
		return;
	}
	modbus_set_slave(c->ctx, j->unit);
	set_timeout(c, 9 + 2 * n);
	if (modbus_write_registers(c->ctx, addr, (int)n, regs) == -1) {
		job_fail(c, j, "write FRAME", errno);
		return;
	}
	mark_quiet(c, 0);
	j->line_us = mb__chars_us(t, 9 + 2 * n + 8) + 2 * (t->t35_ns / 1000);
	j->status = TP_OK;
}

static void
run_poll(struct mb_chan *c, struct mb_job *j)
{
	struct tp	*t = c->t;
	uint16_t	 regs[UP_MB_OB_N], seq, len, ack = j->ack;
	size_t		 have, want, n;

	wait_quiet(c);
	modbus_set_slave(c->ctx, j->unit);
	set_timeout(c, 15);
	/* Acknowledge the last frame read and read the outbox, one request. */
	if (modbus_write_and_read_registers(c->ctx, UP_MB_OB_ACK, 1, &ack,
	    UP_MB_OB_SEQ, POLL_FIRST, regs) == -1) {
		job_fail(c, j, "poll outbox", errno);
		return;
	}
	mark_quiet(c, 0);
	j->line_us = mb__chars_us(t, 15 + 5 + 2 * POLL_FIRST) +
	    2 * (t->t35_ns / 1000);
	if (up_mb_ob_decode(regs, &seq, &len) != UP_OK) {
		job_fail(c, j, "poll outbox (bad header)", EMBBADDATA);
		return;
	}
	/* The rest of a long frame, 125 registers a read. */
	have = POLL_FIRST;
	want = 2 + ((size_t)len + 1) / 2;
	while (have < want) {
		n = want - have;
		if (n > UP_MB_READ_MAX)
			n = UP_MB_READ_MAX;
		wait_quiet(c);
		set_timeout(c, 8);
		if (modbus_read_registers(c->ctx, (int)(UP_MB_OB_SEQ + have),
		    (int)n, regs + have) == -1) {
			job_fail(c, j, "read outbox", errno);
			return;
		}
		mark_quiet(c, 0);
		j->line_us += mb__chars_us(t, 8 + 5 + 2 * n) +
		    2 * (t->t35_ns / 1000);
		have += n;
	}
	j->seq = seq;
	j->rxlen = len;
	up_mb_get_bytes(j->rx, regs + 2, len);
	j->status = TP_OK;
}

static void
run_probe(struct mb_chan *c, struct mb_job *j)
{
	uint16_t	 regs[UP_MB_ID_HDR_N];

	wait_quiet(c);
	modbus_set_slave(c->ctx, j->unit);
	set_timeout(c, 8);
	if (modbus_read_input_registers(c->ctx, UP_MB_ID, UP_MB_ID_HDR_N,
	    regs) == -1) {
		job_fail(c, j, "read identity", errno);
		return;
	}
	mark_quiet(c, 0);
	j->line_us = mb__chars_us(c->t, 8 + 5 + 2 * UP_MB_ID_HDR_N) +
	    2 * (c->t->t35_ns / 1000);
	if (up_mb_ident_decode(regs, UP_MB_ID_HDR_N, &j->ident) != UP_OK) {
		/* A Modbus device, but not a UP node (or another map). */
		j->what = "identity (not a UP register map)";
		j->err = EMBBADDATA;
		j->status = TP_ENOPEER;
		return;
	}
	j->status = TP_OK;
}

static void
run_connect(struct mb_chan *c, struct mb_job *j)
{
	struct tp	*t = c->t;

	if (t->kind == MB_RTU) {
		/* The port failed: open it again, as at open(). */
		if (c->connected)
			modbus_close(c->ctx);
		c->connected = false;
		mb__line_reset(t->device);
		if (modbus_connect(c->ctx) == -1) {
			j->what = "open the port";
			j->err = errno;
			j->status = TP_EIO;
			return;
		}
		c->connected = true;
		if (t->rs485 != 0)
			(void)modbus_rtu_set_serial_mode(c->ctx,
			    MODBUS_RTU_RS485);
		mark_quiet(c, 0);
		return;
	}
	if (!c->connected) {
		if (modbus_connect(c->ctx) == -1) {
			j->what = "connect";
			j->err = errno;
			j->status = TP_ENOPEER;
			return;
		}
		c->connected = true;
	}
	run_probe(c, j);
	if (j->status != TP_OK && c->connected) {
		modbus_close(c->ctx);
		c->connected = false;
	}
}

static void
run_job(struct mb_chan *c, struct mb_job *j)
{
	uint64_t	 t0 = now_ns();

	j->status = TP_OK;
	j->err = 0;
	j->what = NULL;
	j->line_us = 0;
	j->rxlen = 0;
	if (c->t->kind == MB_TCP && !c->connected && j->op != MB_OP_CONNECT &&
	    j->op != MB_OP_CLOSE) {
		j->what = "not connected";
		j->err = ENOTCONN;
		j->status = TP_EIO;
		return;
	}
	switch (j->op) {
	case MB_OP_SEND:
		run_send(c, j);
		break;
	case MB_OP_POLL:
		run_poll(c, j);
		break;
	case MB_OP_PROBE:
		run_probe(c, j);
		break;
	case MB_OP_CONNECT:
		run_connect(c, j);
		break;
	case MB_OP_CLOSE:
		if (c->connected)
			modbus_close(c->ctx);
		c->connected = false;
		break;
	}
	/* On TCP the line time is what the exchange took. */
	if (c->t->kind == MB_TCP)
		j->line_us = (uint32_t)((now_ns() - t0) / 1000);
}

static void *
chan_main(void *arg)
{
	struct mb_chan	*c = arg;
	struct tp	*t = c->t;
	struct mb_job	*j;
	char		 x = 'j';

	pthread_mutex_lock(&t->lock);
	for (;;) {
		while (!c->stop && TAILQ_EMPTY(&c->q))
			pthread_cond_wait(&c->cond, &t->lock);
		if (c->stop)
			break;
		j = TAILQ_FIRST(&c->q);
		TAILQ_REMOVE(&c->q, j, entry);
		pthread_mutex_unlock(&t->lock);

		run_job(c, j);

		pthread_mutex_lock(&t->lock);
		TAILQ_INSERT_TAIL(&t->done, j, entry);
		/* A full socketpair already wakes the loop: ignore EAGAIN. */
		(void)!write(t->sp[1], &x, 1);
	}
	pthread_mutex_unlock(&t->lock);
	return (NULL);
}

int
mb__chan_init(struct tp *t, struct mb_chan *c, int peer, char **cause)
{
	memset(c, 0, sizeof(*c));
	c->t = t;
	c->peer = peer;
	TAILQ_INIT(&c->q);
	if (pthread_cond_init(&c->cond, NULL) != 0) {
		*cause = strdup("cannot create a condition variable");
		return (-1);
	}
	if (t->kind == MB_RTU) {
		c->ctx = modbus_new_rtu(t->device, (int)t->baud, t->parity,
		    t->data_bits, t->stop_bits);
	} else {
		char	 port[8];

		snprintf(port, sizeof(port), "%u", t->peers[peer].port);
		c->ctx = modbus_new_tcp_pi(t->peers[peer].host, port);
	}
	if (c->ctx == NULL) {
		if (asprintf(cause, "libmodbus: %s", modbus_strerror(errno)) ==
		    -1)
			*cause = NULL;
		return (-1);
	}
	/*
	 * Between the characters of a reply: a few character times on a
	 * bus, generous enough for a loaded host; libmodbus's 500 ms
	 * default would hold the bus for half a second on every error.
	 */
	modbus_set_byte_timeout(c->ctx, 0, t->kind == MB_RTU ?
	    (uint32_t)(t->char_ns / 1000 * 8 + 20000) : 500000);
	modbus_set_error_recovery(c->ctx, MODBUS_ERROR_RECOVERY_NONE);
	/* libmodbus's own trace of every byte, on stdout and stderr. */
	if (getenv("UB_MODBUS_TRACE") != NULL)
		modbus_set_debug(c->ctx, TRUE);
	return (0);
}

int
mb__chan_start(struct mb_chan *c, char **cause)
{
	if (pthread_create(&c->thread, NULL, chan_main, c) != 0) {
		*cause = strdup("cannot start a worker thread");
		return (-1);
	}
	c->running = true;
	return (0);
}

void
mb__chan_fini(struct mb_chan *c)
{
	struct tp	*t = c->t;

	if (t == NULL)
		return;
	if (c->running) {
		pthread_mutex_lock(&t->lock);
		c->stop = true;
		pthread_cond_signal(&c->cond);
		pthread_mutex_unlock(&t->lock);
		/* A job in progress ends within its response timeout. */
		pthread_join(c->thread, NULL);
		c->running = false;
	}
	if (c->ctx != NULL) {
		modbus_close(c->ctx);
		modbus_free(c->ctx);
		c->ctx = NULL;
	}
	pthread_cond_destroy(&c->cond);
	c->t = NULL;
}

void
mb__chan_push(struct mb_chan *c, struct mb_job *j)
{
	j->chan = c;
	TAILQ_INSERT_TAIL(&c->q, j, entry);
	c->depth++;
	pthread_cond_signal(&c->cond);
}
