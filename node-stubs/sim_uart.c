/*
 * sim_uart.c: serial character formats and the UART bit model of the
 * medium simulator (upsim.h, docs/simulator.md "Line model").
 *
 * A pty moves bytes, not bits: it has no bit rate and no parity.  What a
 * real receiver makes of characters sent at another rate or with another
 * parity is what this file computes, from the bits: a character is a
 * start bit (0), the data bits LSB first, the parity bit if any, and the
 * stop bits (1); the line idles at 1.  The receiver waits for a falling
 * edge, then samples the middle of each bit at its own rate, as a UART
 * with 16x oversampling does, checks parity and the first stop bit, and
 * looks for the next edge from the middle of that stop bit.  After a
 * framing error (a stop bit read as 0) it takes that 0 for the next
 * start bit, as the 16550 does ("it assumes that the framing error was
 * due to the next start bit").
 */
#include <sys/types.h>

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <termios.h>

#include "upsim.h"

static const struct {
	speed_t		 speed;
	uint32_t	 baud;
} speeds[] = {
	{ B50, 50 }, { B75, 75 }, { B110, 110 }, { B134, 134 },
	{ B150, 150 }, { B200, 200 }, { B300, 300 }, { B600, 600 },
	{ B1200, 1200 }, { B1800, 1800 }, { B2400, 2400 }, { B4800, 4800 },
	{ B9600, 9600 }, { B19200, 19200 }, { B38400, 38400 },
	{ B57600, 57600 }, { B115200, 115200 }, { B230400, 230400 },
	{ B460800, 460800 }, { B500000, 500000 }, { B576000, 576000 },
	{ B921600, 921600 }, { B1000000, 1000000 }, { B1152000, 1152000 },
	{ B1500000, 1500000 }, { B2000000, 2000000 },
	{ B2500000, 2500000 }, { B3000000, 3000000 },
	{ B3500000, 3500000 }, { B4000000, 4000000 }
};

int
sim_fmt_parse(const char *s, uint32_t baud, struct sim_fmt *f)
{
	if (strlen(s) != 3 || s[0] < '5' || s[0] > '8' ||
	    strchr("NEOMS", s[1]) == NULL || (s[2] != '1' && s[2] != '2'))
		return (-1);
	f->baud = baud;
	f->data_bits = (uint8_t)(s[0] - '0');
	f->parity = (uint8_t)s[1];
	f->stop_bits = (uint8_t)(s[2] - '0');
	return (0);
}

void
sim_fmt_str(const struct sim_fmt *f, char *buf, size_t len)
{
	snprintf(buf, len, "%u %u%c%u", f->baud, f->data_bits, f->parity,
	    f->stop_bits);
}

bool
sim_fmt_eq(const struct sim_fmt *a, const struct sim_fmt *b)
{
	return (a->baud == b->baud && a->data_bits == b->data_bits &&
	    a->parity == b->parity && a->stop_bits == b->stop_bits);
}

unsigned int
sim_fmt_char_bits(const struct sim_fmt *f)
{
	return (1u + f->data_bits + (f->parity != SIM_PAR_NONE) +
	    f->stop_bits);
}

uint64_t
sim_fmt_char_ns(const struct sim_fmt *f)
{
	if (f->baud == 0)
		return (0);
	/* Rounded to the nearest ns: 1,145,833 ns for 11 bits at 9600. */
	return (((uint64_t)sim_fmt_char_bits(f) * SIM_NS_PER_S + f->baud / 2) /
	    f->baud);
}

void
sim_fmt_from_termios(const struct termios *t, uint8_t parity,
    struct sim_fmt *f)
{
	speed_t		 sp = cfgetospeed(t);
	size_t		 i;

	f->baud = 0;
	for (i = 0; i < sizeof(speeds) / sizeof(speeds[0]); i++)
		if (speeds[i].speed == sp)
			f->baud = speeds[i].baud;
	/*
	 * PARENB and CSIZE do not survive on a pty (upsim.h).  A real
	 * UART's PARENB is read from INPCK, which drivers set with it.
	 */
	f->data_bits = 8;
	if (parity != 0)
		f->parity = parity;
	else if (!(t->c_iflag & INPCK))
		f->parity = SIM_PAR_NONE;
	else if (t->c_cflag & CMSPAR)
		f->parity = (t->c_cflag & PARODD) ? SIM_PAR_MARK :
		    SIM_PAR_SPACE;
	else
		f->parity = (t->c_cflag & PARODD) ? SIM_PAR_ODD :
		    SIM_PAR_EVEN;
	f->stop_bits = (t->c_cflag & CSTOPB) ? 2 : 1;
}

/* The parity bit a transmitter appends to `data'. */
static unsigned int
parity_bit(const struct sim_fmt *f, unsigned int data)
{
	unsigned int	 ones = (unsigned int)__builtin_popcount(data);

	switch (f->parity) {
	case SIM_PAR_EVEN:
		return (ones & 1);
	case SIM_PAR_ODD:
		return (~ones & 1);
	case SIM_PAR_MARK:
		return (1);
	default:
		return (0);
	}
}

/* Bit `j' of the line (idle 1 outside the characters). */
static unsigned int
line_bit(const struct sim_fmt *f, unsigned int cb, const uint8_t *in,
    size_t n, int64_t j)
{
	unsigned int	 pos, data;
	size_t		 k;

	if (j < 0 || (uint64_t)j >= (uint64_t)n * cb)
		return (1);
	k = (size_t)j / cb;
	pos = (unsigned int)((uint64_t)j % cb);
	data = in[k] & ((1u << f->data_bits) - 1);
	if (pos == 0)
		return (0);
	if (pos <= f->data_bits)
		return ((data >> (pos - 1)) & 1);
	if (f->parity != SIM_PAR_NONE && pos == f->data_bits + 1u)
		return (parity_bit(f, data));
	return (1);
}

size_t
sim_uart_convert(const struct sim_fmt *tx, const struct sim_fmt *rx,
    const uint8_t *in, size_t n, uint8_t *out, uint8_t *err, size_t cap)
{
	unsigned int	 cbt, nsample, i, data, par;
	uint64_t	 bt, br, u, t0 = 0, end;
	int64_t		 j;
	size_t		 got = 0;
	uint8_t		 e;
	bool		 forced = false;

	if (sim_fmt_eq(tx, rx) || tx->baud == 0 || rx->baud == 0) {
		/* Same format: what was sent.  An unknown rate: garbage we
		 * cannot model, so the caller flags the mismatch. */
		for (got = 0; got < n && got < cap; got++) {
			out[got] = in[got];
			err[got] = sim_fmt_eq(tx, rx) ? 0 : SIM_CH_FRAME;
		}
		return (got);
	}
	cbt = sim_fmt_char_bits(tx);
	/* The receiver samples start, data, parity and one stop bit. */
	nsample = 1u + rx->data_bits + (rx->parity != SIM_PAR_NONE) + 1u;
	/*
	 * Time in units of 1 / (2 * bt * br) s, so both bit grids are
	 * integers: sender bit j starts at j * 2br, the receiver's
	 * sample i of a character starting at t0 is at t0 + (2i + 1) bt.
	 */
	bt = tx->baud;
	br = rx->baud;
	end = (uint64_t)n * cbt * 2 * br;
	u = 0;
	while (got < cap) {
		if (!forced) {
			/* The next falling edge at or after u: a sender bit
			 * boundary with a 1 before and a 0 after. */
			j = (int64_t)((u + 2 * br - 1) / (2 * br));
			while ((uint64_t)j * 2 * br < end &&
			    !(line_bit(tx, cbt, in, n, j - 1) == 1 &&
			    line_bit(tx, cbt, in, n, j) == 0))
				j++;
			if ((uint64_t)j * 2 * br >= end)
				break;
			t0 = (uint64_t)j * 2 * br;
		}
		forced = false;
#define SAMPLE(i)	line_bit(tx, cbt, in, n, (int64_t)((t0 + \
		    (2 * (uint64_t)(i) + 1) * bt) / (2 * br)))
		if (SAMPLE(0) != 0) {
			/* A glitch, not a start bit: look again after it. */
			u = t0 + 1;
			continue;
		}
		data = 0;
		for (i = 0; i < rx->data_bits; i++)
			data |= SAMPLE(1 + i) << i;
		e = 0;
		if (rx->parity != SIM_PAR_NONE) {
			par = SAMPLE(1 + rx->data_bits);
			if (par != parity_bit(rx, data))
				e |= SIM_CH_PARITY;
		}
		if (SAMPLE(nsample - 1) != 1)
			e |= SIM_CH_FRAME;
		out[got] = (uint8_t)data;
		err[got] = e;
		got++;
		if (e & SIM_CH_FRAME) {
			/* The 0 read as a stop bit starts the next one. */
			t0 += 2 * (uint64_t)(nsample - 1) * bt;
			forced = t0 < end;
			u = t0;
		} else {
			/* Hunt again from the middle of the stop bit. */
			u = t0 + (2 * (uint64_t)(nsample - 1) + 1) * bt;
		}
#undef SAMPLE
	}
	return (got);
}

size_t
sim_uart_iflag(tcflag_t iflag, uint8_t c, uint8_t err, uint8_t *out)
{
	if (err == 0) {
		*out = c;
		return (1);
	}
	/* 8250-style drivers drop on IGNPAR and report errors only with
	 * INPCK; n_tty turns a reported error into '\0'. */
	if (iflag & IGNPAR)
		return (0);
	*out = (iflag & INPCK) ? 0 : c;
	return (1);
}
