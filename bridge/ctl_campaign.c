/*
 * ctl_campaign.c: the control commands about campaigns: campaigns (one
 * record per campaign), campaign ID (one record with per-node rows),
 * campaign ID pause|resume|cancel, and watch/unwatch (live progress,
 * pushed by control_cron).  Rollouts (scheduler campaigns, id = the
 * deployment id) add approve, force-cancel and export (CSV).  The tags
 * and topology a rollout selects and orders by are node facts, set in
 * ctl_node.c (node-tag, node-topology).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "upbridged.h"

static enum ctl_ret	 ctl_campaigns_exec(struct ctl_req *, char **);
static enum ctl_ret	 ctl_campaign_exec(struct ctl_req *, char **);
static enum ctl_ret	 ctl_watch_exec(struct ctl_req *, char **);
static enum ctl_ret	 ctl_unwatch_exec(struct ctl_req *, char **);

const struct ctl_cmd ctl_campaign_cmds[] = {
	{ .name = "campaigns", .usage = "", .args_min = 0, .args_max = 0,
	  .exec = ctl_campaigns_exec },
	{ .name = "campaign", .usage = "ID [approve|pause|resume|cancel|"
	  "force-cancel|export]", .args_min = 1, .args_max = 3,
	  .exec = ctl_campaign_exec },
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
	all = fanout_rollouts_json(req->ub->fanout);
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
	char		*csv;
	int		 rc;

	if (req->argc == 1) {
		/* A rollout (deployment id) first, then a package campaign. */
		if ((c = fanout_rollout_json(f, id)) == NULL &&
		    (c = fanout_campaign_json(f, id)) == NULL) {
			xasprintf(cause, "unknown campaign \"%s\"", id);
			return (CTL_ERROR);
		}
		control__reply(req, c);
		return (CTL_DONE);
	}

	action = req->argv[1];
	if (strcmp(action, "export") == 0) {
		if (req->argc == 3 && strcmp(req->argv[2], "csv") != 0) {
			xasprintf(cause, "unknown export format \"%s\" (csv)",
			    req->argv[2]);
			return (CTL_ERROR);
		}
		if ((csv = fanout_rollout_csv(f, id)) == NULL) {
			xasprintf(cause, "unknown rollout \"%s\"", id);
			return (CTL_ERROR);
		}
		control__reply(req, json_pack("{s:s}", "csv", csv));
		free(csv);
		return (CTL_DONE);
	}
	if (req->argc != 2) {
		/* Only export takes a third word (its format). */
		xasprintf(cause, "usage: campaign %s",
		    ctl_campaign_cmds[1].usage);
		return (CTL_ERROR);
	}
	if ((rc = fanout_rollout_action(f, id, action, cause)) != 1) {
		if (rc != 0)
			return (CTL_ERROR);
		log_info("control: uid %lu: rollout %s %s",
		    (unsigned long)req->uid, id, action);
		return (CTL_DONE);
	}
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
