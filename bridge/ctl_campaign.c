/*
 * ctl_campaign.c: the control commands about campaigns: campaigns (one
 * record per campaign), campaign ID (one record with per-node rows),
 * campaign ID pause|resume|cancel, and watch/unwatch (live progress,
 * pushed by control_cron).  Rollouts (scheduler campaigns, id = the
 * deployment id) add approve, force-cancel and export (CSV).  The tags
 * and topology a rollout selects and orders by are set here too
 * (node-tag, node-topology), because targets exist for campaigns.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "upbridged.h"

static enum ctl_ret	 ctl_campaigns_exec(struct ctl_req *, char **);
static enum ctl_ret	 ctl_campaign_exec(struct ctl_req *, char **);
static enum ctl_ret	 ctl_watch_exec(struct ctl_req *, char **);
static enum ctl_ret	 ctl_unwatch_exec(struct ctl_req *, char **);
static enum ctl_ret	 ctl_node_tag_exec(struct ctl_req *, char **);
static enum ctl_ret	 ctl_node_topology_exec(struct ctl_req *, char **);

const struct ctl_cmd ctl_campaign_cmds[] = {
	{ .name = "campaigns", .usage = "", .args_min = 0, .args_max = 0,
	  .exec = ctl_campaigns_exec },
	{ .name = "campaign", .usage = "ID [approve|pause|resume|cancel|"
	  "force-cancel|export]", .args_min = 1, .args_max = 3,
	  .exec = ctl_campaign_exec },
	{ .name = "node-tag", .usage = "ID add|del TAG", .args_min = 3,
	  .args_max = 3, .flags = CTL_F_WRITE, .exec = ctl_node_tag_exec },
	{ .name = "node-topology", .usage = "ID PARENT leaf|relay|"
	  "coordinator|gateway [LEVEL]", .args_min = 3, .args_max = 4,
	  .flags = CTL_F_WRITE, .exec = ctl_node_topology_exec },
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

/* A node id: decimal or 0x-hex, non-zero, the whole string. */
static int
ctl_node_id(const char *s, uint64_t *id, int zero_ok)
{
	char			*end;
	unsigned long long	 v;

	if (*s == '\0' || *s == '-' || *s == '+' || *s == ' ')
		return (-1);
	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno != 0 || *end != '\0' || (v == 0 && !zero_ok))
		return (-1);
	*id = v;
	return (0);
}

static enum ctl_ret
ctl_node_tag_exec(struct ctl_req *req, char **cause)
{
	uint64_t	 id;
	int		 add;

	if (ctl_node_id(req->argv[0], &id, 0) != 0) {
		xasprintf(cause, "bad node id \"%s\" (decimal or 0x-hex, "
		    "not 0)", req->argv[0]);
		return (CTL_ERROR);
	}
	if (strcmp(req->argv[1], "add") == 0)
		add = 1;
	else if (strcmp(req->argv[1], "del") == 0)
		add = 0;
	else {
		xasprintf(cause, "unknown tag action \"%s\" (add or del)",
		    req->argv[1]);
		return (CTL_ERROR);
	}
	if (registry_tag(req->ub->registry, id, req->argv[2], add,
	    cause) != 0)
		return (CTL_ERROR);
	db_commit_now(req->ub->db);
	fanout_node_changed(req->ub->fanout, id);
	log_info("control: uid %lu: node 0x%016" PRIx64 " tag %s %s",
	    (unsigned long)req->uid, id, req->argv[1], req->argv[2]);
	return (CTL_DONE);
}

static enum ctl_ret
ctl_node_topology_exec(struct ctl_req *req, char **cause)
{
	static const char *const roles[] = { "leaf", "relay", "coordinator",
	    "gateway", NULL };
	uint64_t	 id, parent, level = 0;
	int		 role;

	if (ctl_node_id(req->argv[0], &id, 0) != 0 ||
	    ctl_node_id(req->argv[1], &parent, 1) != 0) {
		xasprintf(cause, "bad node id (decimal or 0x-hex)");
		return (CTL_ERROR);
	}
	for (role = 0; roles[role] != NULL; role++)
		if (strcmp(roles[role], req->argv[2]) == 0)
			break;
	if (roles[role] == NULL) {
		xasprintf(cause, "unknown role \"%s\" (leaf, relay, "
		    "coordinator or gateway)", req->argv[2]);
		return (CTL_ERROR);
	}
	if (req->argc == 4 && (ctl_node_id(req->argv[3], &level, 1) != 0 ||
	    level > 255)) {
		xasprintf(cause, "bad level \"%s\" (0-255)", req->argv[3]);
		return (CTL_ERROR);
	}
	if (registry_set_topology(req->ub->registry, id, parent,
	    (uint8_t)level, (uint8_t)role, cause) != 0)
		return (CTL_ERROR);
	db_commit_now(req->ub->db);
	fanout_node_changed(req->ub->fanout, id);
	return (CTL_DONE);
}
