/*
 * lora_phy.c: the arithmetic of a LoRa radio (docs/transports/lora.md,
 * "Time on air", "Duty cycle").
 *
 * Time on air follows Semtech's formula (SX1272/73 datasheet 4.1.1.7,
 * AN1200.13; SX1261/2 datasheet 6.1.4 gives the same numbers for SF7 to
 * SF12).  It is computed in integer nanoseconds: a symbol lasts
 * 2^SF / BW, exactly 1.024 ms at SF7/125 kHz, and every term of the
 * formula is a whole number of quarter symbols, so the result is exact,
 * not rounded (SF7/125 kHz, 255 bytes, CRC on, explicit header, CR 4/5,
 * preamble 8: 399.616 ms; SF12: 9019.392 ms).
 *
 * The EU868 sub-bands are those of ETSI EN 300 220-2 V3.2.1 as
 * LoRaWAN's regional parameters and the operators' tables use them
 * (../shared/research/transports.md §1.3): 0.1 % in 863-865 and
 * 868.7-869.2 MHz, 1 % in 865-868.6 and 869.7-870, 10 % in 869.4-869.65,
 * each over an hour of observation.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "lora_internal.h"

uint64_t
lora_tsym_ns(const struct lora_phy *p)
{
	/* 2^SF / (BW kHz * 1000) s = 2^SF * 1e6 / BW ns. */
	return (((uint64_t)1 << p->sf) * 1000000ULL / p->bw_khz);
}

int
lora_ldro(const struct lora_phy *p)
{
	if (p->ldro >= 0)
		return (p->ldro != 0);
	/*
	 * Semtech mandates it above 16 ms a symbol: SF11 and SF12 at
	 * 125 kHz, SF12 at 250 kHz (LoRaMac-node's radio drivers switch it
	 * on for exactly these).
	 */
	return (lora_tsym_ns(p) > 16000000ULL);
}

uint64_t
lora_toa_ns(const struct lora_phy *p, size_t len, uint32_t preamble)
{
	uint64_t	 tsym = lora_tsym_ns(p);
	int64_t		 num, den, nsym;
	uint64_t	 quarters;
	int		 de = lora_ldro(p);

	if (preamble == 0)
		preamble = p->preamble;
	num = 8 * (int64_t)len - 4 * (int64_t)p->sf + 28 +
	    (p->crc ? 16 : 0) - (p->implicit ? 20 : 0);
	den = 4 * ((int64_t)p->sf - 2 * de);
	nsym = 0;
	if (num > 0)
		nsym = (num + den - 1) / den * (p->cr + 4);
	nsym += 8;
	/* (Npreamble + 4.25 + Npayload) symbols, in quarter symbols. */
	quarters = 4 * (uint64_t)preamble + 17 + 4 * (uint64_t)nsym;
	return (quarters * tsym / 4);
}

uint32_t
lora_preamble_for_ms(const struct lora_phy *p, uint32_t ms)
{
	uint64_t	 tsym = lora_tsym_ns(p);
	uint64_t	 n;

	n = ((uint64_t)ms * 1000000ULL + tsym - 1) / tsym;
	if (n < p->preamble)
		n = p->preamble;
	return (n > 65535 ? 65535 : (uint32_t)n);
}

uint32_t
lora_mtu(const struct lora_phy *p)
{
	uint64_t	 tsym = lora_tsym_ns(p);

	if (tsym >= 8192000ULL)
		return (51);
	if (tsym >= 4096000ULL)
		return (115);
	return (222);
}

uint64_t
lora_bitrate(const struct lora_phy *p)
{
	/* SF bits per symbol, BW/2^SF symbols per s, 4/(4 + CR) coded. */
	return ((uint64_t)p->sf * p->bw_khz * 1000 * 4 /
	    (((uint64_t)1 << p->sf) * (4 + p->cr)));
}

const char *
lora_phy_check(const struct lora_phy *p)
{
	if (p->sf < LORA_SF_MIN || p->sf > LORA_SF_MAX)
		return ("spreading factor: 7 to 12");
	if (p->bw_khz != 125 && p->bw_khz != 250 && p->bw_khz != 500)
		return ("bandwidth: 125, 250 or 500 kHz");
	if (p->cr < 1 || p->cr > 4)
		return ("coding rate: 1 to 4 (4/5 to 4/8)");
	if (p->preamble < 5)
		return ("preamble: at least 5 symbols");
	if (p->freq_hz < 150000000 || p->freq_hz > 960000000)
		return ("frequency: 150 to 960 MHz");
	if (p->ldro < -1 || p->ldro > 1)
		return ("low data rate optimisation: auto, 0 or 1");
	return (NULL);
}

/* ------------------------------------------------------------------ */
/* Regions                                                              */

static const struct lora_band eu868_bands[] = {
	{ "K", 863000000, 865000000, 1000 },	/* 0.1 % */
	{ "L", 865000000, 868000000, 10000 },	/* 1 % */
	{ "M", 868000000, 868600000, 10000 },	/* 1 % */
	{ "N", 868700000, 869200000, 1000 },	/* 0.1 % */
	{ "P", 869400000, 869650000, 100000 },	/* 10 % */
	{ "Q", 869700000, 870000000, 10000 }	/* 1 % */
};

static const struct lora_region regions[] = {
	{ "eu868", sizeof(eu868_bands) / sizeof(eu868_bands[0]),
	    eu868_bands },
	{ "none", 0, NULL }
};

const struct lora_region *
lora_region_find(const char *name)
{
	size_t		 i;

	for (i = 0; i < sizeof(regions) / sizeof(regions[0]); i++)
		if (strcmp(regions[i].name, name) == 0)
			return (&regions[i]);
	return (NULL);
}

int
lora_region_band(const struct lora_region *r, const struct lora_phy *p)
{
	uint32_t	 half = (uint32_t)p->bw_khz * 500;
	unsigned int	 i;

	if (p->freq_hz < half)
		return (-1);
	for (i = 0; i < r->nbands; i++) {
		if (p->freq_hz - half >= r->bands[i].lo_hz &&
		    p->freq_hz + half <= r->bands[i].hi_hz)
			return ((int)i);
	}
	return (-1);
}
