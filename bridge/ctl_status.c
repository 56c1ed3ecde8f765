/*
 * ctl_status.c: the control commands about the gateway as a whole:
 * status (one record: gateway, uplink, cache and fan-out summaries) and
 * refresh (poll the manifest now).
 */
#include <sys/types.h>

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "upbridged.h"

static enum ctl_ret	 ctl_status_exec(struct ctl_req *, char **);
static enum ctl_ret	 ctl_refresh_exec(struct ctl_req *, char **);

const struct ctl_cmd ctl_status_cmds[] = {
	{ .name = "status", .usage = "", .args_min = 0, .args_max = 0,
	  .exec = ctl_status_exec },
	{ .name = "refresh", .usage = "", .args_min = 0, .args_max = 0,
	  .flags = CTL_F_WRITE, .exec = ctl_refresh_exec },
	{ .name = NULL }
};

static json_t *
ctl_time_json(int64_t t)
{
	struct tm	 tm;
	time_t		 tt = (time_t)t;
	char		 buf[32];

	if (t <= 0 || gmtime_r(&tt, &tm) == NULL)
		return (json_null());
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
	return (json_string(buf));
}

static enum ctl_ret
ctl_status_exec(struct ctl_req *req, char **cause)
{
	struct ub		*ub = req->ub;
	struct uplink_stats	 us;
	struct cache_usage	 cu;
	json_t			*st, *o, *f;
	int64_t			 now = (int64_t)time(NULL);

	st = json_object();
	json_object_set_new(st, "gateway", json_string(ub->conf->gateway_id));
	json_object_set_new(st, "version", json_string(UB_VERSION));
	json_object_set_new(st, "pid", json_integer(getpid()));
	json_object_set_new(st, "started", ctl_time_json(ub->started));
	json_object_set_new(st, "uptime_s", json_integer(ub->started > 0 ?
	    now - ub->started : 0));
	json_object_set_new(st, "nodes", json_integer(
	    (json_int_t)registry_count(ub->registry)));

	memset(&us, 0, sizeof(us));
	uplink_stats(ub->uplink, &us);
	o = json_object();
	json_object_set_new(o, "url", json_string(ub->conf->cloud_url));
	json_object_set_new(o, "bytes_down", json_integer(
	    (json_int_t)us.bytes_down));
	json_object_set_new(o, "manifests", json_integer(
	    (json_int_t)us.manifests));
	json_object_set_new(o, "manifest_rejects", json_integer(
	    (json_int_t)us.manifest_rejects));
	json_object_set_new(o, "downloads_done", json_integer(
	    (json_int_t)us.downloads_done));
	json_object_set_new(o, "reports_pending", json_integer(
	    (json_int_t)us.reports_pending));
	json_object_set_new(o, "reports_acked", json_integer(
	    (json_int_t)us.reports_acked));
	json_object_set_new(o, "http_errors", json_integer(
	    (json_int_t)us.http_errors));
	us.last_error[sizeof(us.last_error) - 1] = '\0';
	json_object_set_new(o, "last_error", us.last_error[0] != '\0' ?
	    json_string(us.last_error) : json_null());
	json_object_set_new(st, "uplink", o);

	memset(&cu, 0, sizeof(cu));
	cache_usage(ub->cache, &cu);
	o = json_object();
	json_object_set_new(o, "quota", json_integer((json_int_t)cu.quota));
	json_object_set_new(o, "used", json_integer((json_int_t)cu.used));
	json_object_set_new(o, "pinned", json_integer((json_int_t)cu.pinned));
	json_object_set_new(o, "blobs", json_integer(cu.blobs));
	json_object_set_new(o, "evictions", json_integer(
	    (json_int_t)cu.evictions));
	json_object_set_new(st, "cache", o);

	f = fanout_status_json(ub->fanout);
	json_object_set_new(st, "fanout", f != NULL ? f : json_null());

	control__reply(req, st);
	return (CTL_DONE);
}

static enum ctl_ret
ctl_refresh_exec(struct ctl_req *req, char **cause)
{
	uplink_poll_now(req->ub->uplink);
	return (CTL_DONE);
}
