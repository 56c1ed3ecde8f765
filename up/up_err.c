/*
 * up_err.c: names of error codes, result codes and node states.
 *
 * The result and state names are the strings the gateway puts in its
 * reports ("result_str", "state"), so they are part of the upstream
 * format: change them only together with docs/up-protocol.md §5.1 and §7.
 */
#include <stddef.h>

#include "up.h"

const char *
up_strerror(int e)
{
	switch (e) {
	case UP_OK:
		return ("ok");
	case UP_ESHORT:
		return ("frame or field truncated");
	case UP_EBADCRC:
		return ("bad frame CRC");
	case UP_EVERSION:
		return ("unsupported protocol version");
	case UP_ETYPE:
		return ("unknown message type");
	case UP_ELEN:
		return ("inconsistent or oversized length");
	case UP_ERANGE:
		return ("field value out of range");
	case UP_ENOSPC:
		return ("output buffer too small");
	case UP_EINVAL:
		return ("invalid argument");
	case UP_ESTATE:
		return ("message not valid in this state");
	case UP_EPORT:
		return ("platform operation failed");
	}
	return ("unknown error");
}

/* Indexed by enum up_result; LwM2M Object 5 "Update Result" for 0..9. */
static const char *const up_result_names[] = {
	"initial",		/* 0 */
	"success",		/* 1 */
	"no_space",		/* 2 */
	"no_memory",		/* 3 */
	"conn_lost",		/* 4 */
	"integrity",		/* 5 */
	"unsupported",		/* 6 */
	"invalid_uri",		/* 7 */
	"failed",		/* 8 */
	"protocol",		/* 9 */
	"signature",		/* 10 */
	"rolled_back",		/* 11 */
	"dependency",		/* 12 */
	"incompatible",		/* 13 */
	"declined",		/* 14 */
	"aborted",		/* 15 */
	"base_mismatch",	/* 16 */
	"low_battery",		/* 17 */
	"already",		/* 18 */
	"busy",			/* 19 */
	"downgrade"		/* 20 */
};

const char *
up_result_str(int r)
{
	if (r < 0 || (size_t)r >= sizeof(up_result_names) /
	    sizeof(up_result_names[0]))
		return ("unknown");
	return (up_result_names[r]);
}

static const char *const up_state_names[] = {
	"idle",			/* 0 */
	"receiving",		/* 1 */
	"downloaded",		/* 2 */
	"verified",		/* 3 */
	"activating",		/* 4 */
	"updated",		/* 5 */
	"failed"		/* 6 */
};

const char *
up_state_str(int s)
{
	if (s < 0 || (size_t)s >= sizeof(up_state_names) /
	    sizeof(up_state_names[0]))
		return ("unknown");
	return (up_state_names[s]);
}
