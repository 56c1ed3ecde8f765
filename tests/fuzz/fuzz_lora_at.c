/*
 * fuzz_lora_at.c: what a LoRa modem's UART may say, from bytes.
 *
 * The input is a stream from the modem, split where the fuzzer likes
 * (the first byte says into how many reads), fed to the bounded line
 * assembler (lora_at.c) and every whole line to the RUI3 dialect's
 * parser (lora_rui3.c), with and without a command in flight, as the
 * lora plugin does.  Invariants (abort if broken): a line is never
 * longer than LORA_LINE_MAX and never holds a byte that is not
 * printable; a received frame is never longer than the buffer offered
 * and its RSSI and SNR are in range; a malformed line always says why;
 * a value points inside the line.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lora_internal.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void
check_line(const char *line, enum lora_line_st st)
{
	struct lora_event	 ev;
	uint8_t			 buf[64];
	size_t			 n = strlen(line), i;
	const char		*cmd;
	int			 k;

	if (n > LORA_LINE_MAX)
		abort();
	for (i = 0; i < n; i++)
		if (line[i] < 0x20 || line[i] > 0x7e)
			abort();
	if (st != LORA_LINE_OK)
		return;
	for (k = 0; k < 2; k++) {
		cmd = k == 0 ? NULL : "AT+P2P=?";
		memset(buf, 0xaa, sizeof(buf));
		/* A buffer the size of a small data rate's frame. */
		lora_dialect_rui3.parse(line, cmd, &ev, buf, 51);
		switch (ev.type) {
		case LORA_EV_RX:
			if (ev.len == 0 || ev.len > 51 ||
			    ev.rssi_dbm < -200 || ev.rssi_dbm > 50 ||
			    ev.snr_db < -64 || ev.snr_db > 64)
				abort();
			/* Nothing written past what was offered. */
			for (i = 51; i < sizeof(buf); i++)
				if (buf[i] != 0xaa)
					abort();
			break;
		case LORA_EV_BAD:
			if (ev.why == NULL)
				abort();
			break;
		case LORA_EV_VALUE:
			if (ev.value < line || ev.value > line + n)
				abort();
			break;
		default:
			break;
		}
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct lora_lines	 l;
	const char		*line;
	enum lora_line_st	 st;
	size_t			 parts, chunk, pos, off, n;

	if (size < 1)
		return (0);
	parts = (size_t)data[0] % 8 + 1;
	data++;
	size--;
	memset(&l, 0, sizeof(l));
	lora_lines_reset(&l);
	chunk = size / parts + 1;
	for (pos = 0; pos < size; pos += n) {
		n = size - pos < chunk ? size - pos : chunk;
		off = 0;
		while ((st = lora_lines_feed(&l, data + pos, n, &off,
		    &line)) != LORA_LINE_NONE) {
			if (off > n)
				abort();
			if (line != NULL)
				check_line(line, st);
		}
	}
	return (0);
}
