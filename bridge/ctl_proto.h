/*
 * ctl_proto.h: the control protocol between upbridged (control.c,
 * ctl_*.c) and upctl, shared so both ends agree on every constant.
 *
 * Transport: a UNIX stream socket, mode 0660.  Both directions carry JSON
 * objects, one per line ("JSON lines", '\n'-terminated, UTF-8).
 *
 * Request:
 *	{"v":1,"id":N,"cmd":"NAME","args":["ARG",...]}
 *   v	 protocol version, must be CTL_PROTO_VERSION;
 *   id	 the client's number for the request, an integer 0..2^53;
 *	 every record of the reply carries it;
 *   cmd the command (status, refresh, nodes, node, campaigns, campaign,
 *	 watch, unwatch);
 *   args optional array of strings.
 * Unknown keys, a missing id, a wrong version, bad JSON or a line longer
 * than CTL_LINE_MAX are refused with an error end record; nothing changes.
 *
 * Reply: zero or more records, then one end record:
 *	{"id":N,"data":VALUE}			one item of the answer
 *	{"id":N,"progress":[ROW,...]}		a watch update, ~1/s
 *	{"id":N,"end":true,"status":"ok"}
 *	{"id":N,"end":true,"status":"error","error":"TEXT"}
 * A reply to a request whose id could not be read has "id":null.  A
 * `watch' request gets progress records until the client sends `unwatch'
 * (which ends both) or disconnects.
 */
#ifndef CTL_PROTO_H
#define CTL_PROTO_H

#define CTL_PROTO_VERSION	1

/* Where upbridged listens unless the config says otherwise. */
#define CTL_SOCKET_DEFAULT	"/run/upbridge/upbridged.sock"

/* Longest request line, without its '\n'. */
#define CTL_LINE_MAX		(64 * 1024)

/*
 * Output buffered for one client above which the daemon stops reading its
 * requests and drops its watch updates, and below which it resumes (bgpd's
 * CTL_MSG_HIGH_MARK / LOW_MARK).
 */
#define CTL_HIGH_WATER		(1024 * 1024)
#define CTL_LOW_WATER		(256 * 1024)

/* Period of watch updates. */
#define CTL_WATCH_PERIOD_MS	1000

/* Largest integer id (JSON numbers are exact up to 2^53). */
#define CTL_ID_MAX		9007199254740991LL

/* Values of "status" in an end record. */
#define CTL_STATUS_OK		"ok"
#define CTL_STATUS_ERROR	"error"

#endif /* CTL_PROTO_H */
