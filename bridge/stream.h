/*
 * stream.h: cut-through fan-out (bridge/stream.c, docs/cache.md
 * "Cut-through"), shared by fanout.c, campaign.c and fo_session.c.
 *
 * A campaign whose package is still downloading starts its sessions as
 * soon as the cache holds a verified prefix (whole chunks that matched
 * the manifest's signed chunk list): the sessions read the partial blob
 * and send only blocks wholly inside that prefix; VERIFY and ACTIVATE
 * wait until the whole-file SHA-256 was checked (package_ready).
 */
#ifndef BRIDGE_STREAM_H
#define BRIDGE_STREAM_H

#include <stdbool.h>
#include <stdint.h>

struct fanout;
struct fo_session;

/*
 * Looks for campaigns waiting for a package that has a verified prefix
 * (polls the cache's open writers while any campaign waits for a
 * download, every STREAM_POLL_MS).  Called when campaigns may have
 * started waiting: a new manifest, start-up, the housekeeping cron.
 */
#define STREAM_POLL_MS	20
void	 stream__watch(struct fanout *);
/* The uplink's package_progress, when the daemon passes it on. */
void	 stream__progress(struct fanout *, const uint8_t *sha,
	    uint64_t verified);
/* The package is complete: VERIFY may follow.  Before campaign's. */
void	 stream__package_ready(struct fanout *, const uint8_t *sha);
/* The download failed: a session on a blob that is gone stops. */
void	 stream__package_failed(struct fanout *, const uint8_t *sha);
void	 stream__fini(struct fanout *);

/* Bytes of the package the session may read and send (its size when
 * the blob is complete). */
uint64_t stream__limit(const struct fo_session *);
/* False while the session's blob is still a partial download. */
bool	 stream__complete(const struct fo_session *);
/* The session's blob fd: complete, or the partial while streaming. */
int	 stream__open(struct fo_session *);

#endif /* BRIDGE_STREAM_H */
