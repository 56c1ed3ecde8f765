/*
 * sim_rs485.c: the raw RS-485 byte bus personality of the medium
 * simulator (docs/simulator.md, "rs485").
 *
 * A two-wire half-duplex bus: every endpoint's UART drives the same pair
 * of wires, so what one sends, every other one receives, character by
 * character, each at the end of its own character time.  A frame is a
 * run of characters delimited by silence (--opt gap-chars=3.5, Modbus
 * RTU's t3.5; a pause shorter than that keeps the frame open).  The
 * characters go on the wire in the talker's own format and each
 * receiver decodes them with its own (sim_uart.c), so a node set to the
 * wrong rate or parity gets what a real one would.  Two talkers at once
 * garble each other for everyone (no driver wins on a real bus either);
 * a half-duplex transceiver does not hear the bus while it drives it;
 * a receiver's loss draw flips one bit of one of a frame's first
 * characters (line noise: parity catches it where there is parity, the
 * CRC otherwise).
 *
 * This is the bus the Modbus RTU transport and its nodes will run on
 * (libmodbus on both ends), and the proof of the simulator core.
 */
#include <sys/types.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "upsim.h"

static const struct sim_opt rs485_options[] = {
	{ "gap-chars", "3.5",
	    "silence that ends a frame, in characters of the bus format" },
	{ NULL, NULL, NULL }
};

static int
rs485_init(struct sim *sim, char **cause)
{
	const struct sim_conf *conf = sim_conf(sim);
	const char	*s = sim_opt(sim, "gap-chars");
	char		*end;
	double		 gap;
	unsigned int	 i;

	gap = strtod(s, &end);
	if (*end != '\0' || !(gap >= 0.5 && gap <= 1000)) {
		if (asprintf(cause, "rs485: gap-chars: 0.5 to 1000: %s", s) ==
		    -1)
			*cause = NULL;
		return (-1);
	}
	sim_medium_set_gap(sim, (uint64_t)(gap *
	    (double)sim_fmt_char_ns(&conf->fmt)));
	for (i = 0; i < sim_nep(sim); i++)
		sim_ep(sim, i)->fmt = conf->fmt;
	return (0);
}

/* The bus is the line: what the program sends goes on the wires. */
static void
rs485_line_rx(struct sim *sim, struct sim_ep *ep, const uint8_t *b,
    const uint8_t *err, size_t n, const struct sim_fmt *fmt,
    uint64_t t_first, uint64_t unit_ns)
{
	sim_wire_put(sim, ep, 0, b, n, fmt, t_first, unit_ns);
}

static void
rs485_deliver(struct sim *sim, struct sim_ep *rx, const struct sim_tx *tx,
    size_t off, size_t n, enum sim_rx_status status, uint64_t at)
{
	uint8_t		 b[512], err[512];
	size_t		 i, chunk;
	uint64_t	 r;

	switch (status) {
	case SIM_RX_OK:
		sim_line_deliver(rx, tx->buf + off, NULL, n, &tx->fmt, at);
		return;
	case SIM_RX_MISSED:
	case SIM_RX_DETACHED:
		return;
	case SIM_RX_NOISE:
	case SIM_RX_COLLIDED:
		break;
	}
	for (; n > 0; off += chunk, n -= chunk) {
		chunk = n < sizeof(b) ? n : sizeof(b);
		for (i = 0; i < chunk; i++) {
			r = sim_rand(rx);
			if (status == SIM_RX_NOISE) {
				/* One bit flipped: a parity bit catches
				 * it, a CRC does otherwise. */
				b[i] = tx->buf[off + i] ^ (uint8_t)(1u <<
				    (r % tx->fmt.data_bits));
				err[i] = tx->fmt.parity == SIM_PAR_NONE ||
				    tx->fmt.parity == SIM_PAR_MARK ||
				    tx->fmt.parity == SIM_PAR_SPACE ? 0 :
				    SIM_CH_PARITY;
			} else {
				/* Two drivers at once: any level, often
				 * a broken stop bit. */
				b[i] = (uint8_t)(r >> 8);
				err[i] = (r & 1) ? SIM_CH_FRAME : 0;
			}
		}
		sim_line_deliver(rx, b, err, chunk, &tx->fmt, at);
	}
}

const struct sim_personality sim_rs485 = {
	.name = "rs485",
	.help = "a raw RS-485 byte bus: frames are runs of characters "
	    "between silences",
	.options = rs485_options,
	.ep_options = NULL,
	.flags = SIM_P_WIRE,
	.init = rs485_init,
	.line_rx = rs485_line_rx,
	.deliver = rs485_deliver
};
