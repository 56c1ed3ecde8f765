/*
 * ctl_campaign.c: the control commands about campaigns: campaigns (one
 * record per campaign), campaign ID (one record with per-node rows),
 * campaign ID pause|resume|cancel, and watch/unwatch (live progress,
 * pushed by control_cron).
 */
#include <stdio.h>
#include <string.h>

#include "upbridged.h"

static enum ctl_ret	 ctl_campaigns_exec(struct ctl_req *, char **);
static enum ctl_ret	 ctl_campaign_exec(struct ctl_req *, char **);
static enum ctl_ret	 ctl_watch_exec(struct ctl_req *, char **);
static enum ctl_ret	 ctl_unwatch_exec(struct ctl_req *, char **);

const struct ctl_cmd ctl_campaign_cmds[] = {
	{ .name = "campaigns", .usage = "", .args_min = 0, .args_max = 0,
	  .exec = ctl_campaigns_exec },
	{ .name = "campaign", .usage = "ID [pause|resume|cancel]",
	  .args_min = 1, .args_max = 2, .exec = ctl_campaign_exec },
	{ .name = "watch", .usage = "", .args_min = 0, .args_max = 0,
	  .exec = ctl_watch_exec },
	{ .name = "unwatch", .usage = "", .args_min = 0, .args_max = 0,
	  .exec = ctl_unwatch_exec },
	{ .name = NULL }
};

static enum ctl_ret
ctl_campaigns_exec(struct ctl_req *req, char **cause)
{
	json_t	*all, *c;
	size_t	 i;

	all = fanout_campaigns_json(req->ub->fanout);
	json_array_foreach(all, i, c)
		control__reply(req, json_incref(c));
	json_decref(all);
	return (CTL_DONE);
}

static enum ctl_ret
ctl_campaign_exec(struct ctl_req *req, char **cause)
{
	struct fanout	*f = req->ub->fanout;
	const char	*id = req->argv[0], *action;
	json_t		*c;
	int		 rc;

	if (req->argc == 1) {
		if ((c = fanout_campaign_json(f, id)) == NULL) {
			xasprintf(cause, "unknown campaign \"%s\"", id);
			return (CTL_ERROR);
		}
		control__reply(req, c);
		return (CTL_DONE);
	}

	action = req->argv[1];
	if (strcmp(action, "pause") == 0)
		rc = fanout_campaign_pause(f, id, cause);
	else if (strcmp(action, "resume") == 0)
		rc = fanout_campaign_resume(f, id, cause);
	else if (strcmp(action, "cancel") == 0)
		rc = fanout_campaign_cancel(f, id, cause);
	else {
		xasprintf(cause, "unknown action \"%s\" (pause, resume or "
		    "cancel)", action);
		return (CTL_ERROR);
	}
	if (rc != 0) {
		if (*cause == NULL)
			xasprintf(cause, "campaign \"%s\": %s failed", id,
			    action);
		return (CTL_ERROR);
	}
	log_info("control: uid %lu: campaign %s %s", (unsigned long)req->uid,
	    id, action);
	return (CTL_DONE);
}

static enum ctl_ret
ctl_watch_exec(struct ctl_req *req, char **cause)
{
	if (control__watch(req, cause) != 0)
		return (CTL_ERROR);
	return (CTL_WAIT);
}

static enum ctl_ret
ctl_unwatch_exec(struct ctl_req *req, char **cause)
{
	if (control__unwatch(req, cause) != 0)
		return (CTL_ERROR);
	return (CTL_DONE);
}
