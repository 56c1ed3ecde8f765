/*
 * fuzz_config.c: the INI config loader (bridge/config.c, config_load) on
 * arbitrary bytes.
 *
 * config_load() reads a path, so the input goes to an anonymous memory
 * file (memfd) opened as /proc/self/fd/N: nothing touches the disk and
 * nothing is left behind.  Invariants (abort() on a violation):
 *  - exactly one of a config and a cause comes back, and the cause names
 *    the file ("FILE[:LINE]: ..."), as every config error must;
 *  - an accepted config has every required key, 1..UB_MAX_TRANSPORTS
 *    transports each bound to a plugin, values within the table's
 *    bounds, and compares reloadable against itself;
 *  - loading the same bytes twice gives the same verdict and, when
 *    refused, the same cause.
 */
#include <sys/mman.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "upbridged.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static int	 memfd = -1;
static char	 path[64];

static void
check_config(const struct ub_config *c)
{
	char	*cause = NULL;
	size_t	 i;

	if (c->gateway_id == NULL || c->state_dir == NULL ||
	    c->control_socket == NULL || c->cloud_url == NULL ||
	    c->cloud_ca == NULL || c->cloud_key == NULL)
		abort();
	if (c->state_dir[0] != '/' || c->cloud_ca[0] != '/' ||
	    c->cloud_key[0] != '/' || strncmp(c->cloud_url, "https://", 8))
		abort();
	if (c->ntransports < 1 || c->ntransports > UB_MAX_TRANSPORTS)
		abort();
	for (i = 0; i < c->ntransports; i++)
		if (c->transports[i].name == NULL ||
		    c->transports[i].type == NULL ||
		    c->transports[i].ops == NULL)
			abort();
	if (c->block_size < 64 || c->block_size > 65000 ||
	    c->rate_pct < 1 || c->rate_pct > 100 ||
	    c->poll_interval_s < 1 || c->max_rounds < 1 ||
	    c->range_bytes < 4 * 1024 || c->log_verbose < 0 ||
	    c->log_verbose > 1)
		abort();
	if (config_reloadable(c, c, &cause) != 0)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ub_config	*c1, *c2;
	char			*cause1 = NULL, *cause2 = NULL;

	if (memfd == -1) {
		if ((memfd = memfd_create("fuzz_config", MFD_CLOEXEC)) == -1)
			abort();
		snprintf(path, sizeof(path), "/proc/self/fd/%d", memfd);
	}
	if (ftruncate(memfd, 0) == -1 ||
	    pwrite(memfd, data, size, 0) != (ssize_t)size)
		abort();

	c1 = config_load(path, &cause1);
	if ((c1 == NULL) == (cause1 == NULL))
		abort();
	if (c1 == NULL && strncmp(cause1, path, strlen(path)) != 0)
		abort();
	if (c1 != NULL)
		check_config(c1);

	c2 = config_load(path, &cause2);
	if ((c1 == NULL) != (c2 == NULL))
		abort();
	if (c1 == NULL && strcmp(cause1, cause2) != 0)
		abort();
	config_free(c1);
	config_free(c2);
	free(cause1);
	free(cause2);
	return (0);
}
