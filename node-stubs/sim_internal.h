/*
 * sim_internal.h: inside the medium simulator core (sim_core.c,
 * sim_line.c, sim_medium.c).  Personalities use upsim.h only.
 */
#ifndef SIM_INTERNAL_H
#define SIM_INTERNAL_H

#include "upsim.h"

/*
 * The shortest real time between two wake-ups of one pump: a line
 * taking characters, the medium delivering them.  A batch is then
 * handed over at once, each character stamped with its exact simulated
 * time; the last character known is always delivered on its time.
 */
#define SIM_WAKE_MIN_NS		(500 * SIM_NS_PER_US)
/* How long (real time) a finished transmission is kept for the overlap
 * checks of characters that a late wake-up stamped in the past. */
#define SIM_TX_KEEP_NS		(100 * SIM_NS_PER_MS)
/* First allocation of a wire run; it doubles up to SIM_TX_MAX. */
#define SIM_TX_CAP0		256

struct sim {
	struct event_base *base;
	struct sim_conf	 conf;
	const struct sim_personality *pers;
	void		*priv;
	uint64_t	 t0;		/* CLOCK_MONOTONIC ns at sim_new */
	bool		 started;
	unsigned int	 nep;
	struct sim_ep	*ep[SIM_EP_MAX];

	/* sim_medium.c */
	struct sim_tx	*txs;		/* oldest first */
	struct sim_tx	**txtail;
	uint64_t	 tx_ids;
	uint64_t	 gap_ns;
	struct event	*ev_medium;
	bool		 medium_running;
};

/* sim_core.c */
uint64_t	 sim__mono_ns(void);
/* Simulated duration -> the real time it takes. */
uint64_t	 sim__to_real(const struct sim *, uint64_t sim_ns);
uint64_t	 sim__from_real(const struct sim *, uint64_t real_ns);

/* sim_line.c */
int		 sim__line_start(struct sim_ep *, char **cause);
void		 sim__line_free(struct sim_ep *);
/*
 * Takes what the endpoint's UART has finished sending by now, if it is
 * sending: the medium calls it for every endpoint before it decides what
 * reaches whom, so that a talker's characters are known however late the
 * simulator ran (a loaded host).
 */
void		 sim__line_catch_up(struct sim_ep *);

/* sim_medium.c */
int		 sim__medium_start(struct sim *, char **cause);
void		 sim__medium_free(struct sim *);
/* An endpoint was detached, attached or reset. */
void		 sim__medium_detach(struct sim_ep *);
void		 sim__medium_reset(struct sim_ep *);
/* An endpoint's line went idle: its open wire run may end. */
void		 sim__medium_poke(struct sim *);

#endif /* SIM_INTERNAL_H */
