/*
 * fuzz_manifest.c: uplink_manifest_parse on arbitrary bytes.  Whatever
 * the input, it returns a manifest whose every string fits its array and
 * every count its bound, or NULL with a cause; never both, never neither.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "uplink.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct uplink_manifest *mf;
	struct up_offer	 o;
	char		*cause = NULL;
	size_t		 i, j;

	mf = uplink_manifest_parse((const char *)data, len, &cause);
	if (mf == NULL) {
		if (cause == NULL || cause[0] == '\0')
			abort();
		free(cause);
		return (0);
	}
	if (cause != NULL || mf->serial < 1 ||
	    mf->npkgs > UPLINK_MAX_PACKAGES ||
	    mf->ndeps > UPLINK_MAX_DEPLOYMENTS)
		abort();
	for (i = 0; i < mf->npkgs; i++) {
		const struct cache_pkg *p = &mf->pkgs[i];

		if (strlen(p->id) > CACHE_ID_MAX || p->size == 0 ||
		    p->size > UINT32_MAX || p->nhw > CACHE_HW_MAX ||
		    p->ndeps > 4 || p->sig_len != 64 ||
		    strlen(p->url) > CACHE_URL_MAX)
			abort();
		if (uplink_pkg_offer(p, &o) != 0)
			abort();
	}
	for (i = 0; i < mf->ndeps; i++) {
		const struct uplink_deployment *d = &mf->deps[i];

		if (d->npkgs == 0 || d->npkgs > UPLINK_MAX_DEP_PKGS ||
		    d->policy_json == NULL || d->policy_json[0] != '{')
			abort();
		for (j = 0; j < d->npkgs; j++)
			if (strlen(d->pkgs[j]) > CACHE_ID_MAX)
				abort();
	}
	uplink_manifest_free(mf);
	return (0);
}
