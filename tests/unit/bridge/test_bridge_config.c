/*
 * test_bridge_config.c: upbridged.conf parsing (bridge/config.c): a good
 * file, every kind of error with its exact message, and what SIGHUP may
 * change.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "upbridged.h"

static char	 tmpdir[64];
static char	 conf_path[128];

/* Lines 1-10; tests append from line 11. */
static const char base_conf[] =
    "[gateway]\n"
    "id = gw-test-01\n"
    "state_dir = /var/lib/upbridge\n"
    "[cloud]\n"
    "url = https://127.0.0.1:8443/cloud\n"
    "ca_file = /etc/upbridge/ca.pem\n"
    "public_key = /etc/upbridge/cloud.pub.pem\n"
    "[transport.lan0]\n"
    "type = lan\n"
    "group = 239.255.42.1\n";

static int
setup(void **state)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/ub-config-XXXXXX");
	if (mkdtemp(tmpdir) == NULL)
		return (-1);
	snprintf(conf_path, sizeof(conf_path), "%s/upbridged.conf", tmpdir);
	return (0);
}

static int
teardown(void **state)
{
	unlink(conf_path);
	rmdir(tmpdir);
	return (0);
}

static void
write_conf(const char *a, const char *b)
{
	FILE	*f;

	f = fopen(conf_path, "w");
	assert_non_null(f);
	fputs(a, f);
	if (b != NULL)
		fputs(b, f);
	assert_int_equal(fclose(f), 0);
}

static struct ub_config *
load(const char *a, const char *b)
{
	struct ub_config	*c;
	char			*cause = NULL;

	write_conf(a, b);
	c = config_load(conf_path, &cause);
	if (c == NULL)
		fail_msg("unexpected error: %s", cause);
	return (c);
}

/* Loads and expects exactly "<path><suffix>" as the error. */
static void
expect_error(const char *a, const char *b, const char *suffix)
{
	struct ub_config	*c;
	char			*cause = NULL, want[2048];

	write_conf(a, b);
	c = config_load(conf_path, &cause);
	assert_null(c);
	assert_non_null(cause);
	snprintf(want, sizeof(want), "%s%s", conf_path, suffix);
	assert_string_equal(cause, want);
	free(cause);
}

static void
test_good(void **state)
{
	struct ub_config	*c;
	struct ub_transport_conf *tp;

	c = load(base_conf,
	    "bitrate_mbit = 10   ; inline comment\n"
	    "loop = yes\n"
	    "[fanout]\n"
	    "block_size = 1024\n"
	    "rate_pct = 50\n"
	    "# comment\n"
	    "\n"
	    "[transport.lan1]\n"
	    "type = lan\n"
	    "port = 4343\n");
	assert_string_equal(c->gateway_id, "gw-test-01");
	assert_string_equal(c->state_dir, "/var/lib/upbridge");
	assert_string_equal(c->cloud_url, "https://127.0.0.1:8443/cloud");
	assert_string_equal(c->cloud_ca, "/etc/upbridge/ca.pem");
	assert_string_equal(c->cloud_key, "/etc/upbridge/cloud.pub.pem");
	assert_int_equal(c->block_size, 1024);
	assert_int_equal(c->rate_pct, 50);
	assert_int_equal(c->ntransports, 2);

	tp = &c->transports[0];
	assert_string_equal(tp->name, "lan0");
	assert_string_equal(tp->type, "lan");
	assert_non_null(tp->ops);
	assert_string_equal(tp->ops->name, "lan");
	assert_string_equal(tp->conf.name, "lan0");
	assert_int_equal(tp->conf.nkv, 3);
	assert_string_equal(tp_conf_str(&tp->conf, "group"), "239.255.42.1");
	assert_int_equal(tp_conf_int(&tp->conf, "bitrate_mbit"), 10);
	assert_int_equal(tp_conf_bool(&tp->conf, "loop"), 1);
	tp = &c->transports[1];
	assert_string_equal(tp->name, "lan1");
	assert_int_equal(tp_conf_int(&tp->conf, "port"), 4343);
	assert_int_equal(tp->node_silence_s, 0);	/* from the link */
	config_free(c);

	/*
	 * Issue 7: the engine's own key of a link, not the plugin's: kept
	 * in the section's struct, not handed to the plugin.
	 */
	c = load(base_conf, "node_silence_s = 25\n");
	tp = &c->transports[0];
	assert_int_equal(tp->node_silence_s, 25);
	assert_int_equal(tp->conf.nkv, 1);
	assert_null(tp_conf_str(&tp->conf, "node_silence_s"));
	config_free(c);
}

static void
test_defaults(void **state)
{
	struct ub_config	*c;

	c = load(base_conf, NULL);
	assert_string_equal(c->control_socket, "/run/upbridge/upbridged.sock");
	assert_null(c->control_group);
	assert_int_equal(c->log_verbose, 0);
	assert_true(c->cache_quota == 1024ULL * 1024 * 1024);
	assert_int_equal(c->commit_interval_ms, 1000);
	assert_int_equal(c->db_synchronous, 1);
	assert_int_equal(c->poll_interval_s, 60);
	assert_int_equal(c->report_interval_s, 5);
	assert_int_equal(c->report_batch_max, 100);
	assert_int_equal(c->range_bytes, 1024 * 1024);
	assert_int_equal(c->http_timeout_s, 30);
	assert_int_equal(c->block_size, 1400);
	assert_int_equal(c->rate_pct, 90);
	assert_int_equal(c->offer_window_ms, 1500);
	assert_int_equal(c->offer_repeats, 3);
	assert_int_equal(c->status_window_ms, 300);
	assert_int_equal(c->max_rounds, 30);
	assert_int_equal(c->activate_delay_ms, 500);
	assert_int_equal(c->result_timeout_s, 60);
	assert_int_equal(c->discover_interval_s, 30);
	assert_int_equal(c->session_deadline_s, 3600);
	config_free(c);
}

static void
test_every_option(void **state)
{
	struct ub_config	*c;

	c = load(
	    "[gateway]\n"
	    "id = gw.A-9_z\n"
	    "state_dir = /tmp/s\n"
	    "control_socket = /tmp/s/ctl.sock\n"
	    "control_group = wheel\n"
	    "log_level = debug\n"
	    "cache_quota_mb = 0\n"
	    "commit_interval_ms = 250\n"
	    "db_synchronous = full\n"
	    "[cloud]\n"
	    "url = https://example.org/x\n"
	    "ca_file = /ca.pem\n"
	    "public_key = /k.pem\n"
	    "poll_interval_s = 2\n"
	    "report_interval_s = 3\n"
	    "report_batch = 7\n"
	    "range_kib = 64\n"
	    "http_timeout_s = 9\n"
	    "[fanout]\n"
	    "block_size = 64\n"
	    "rate_pct = 100\n"
	    "offer_window_ms = 100\n"
	    "offer_repeats = 1\n"
	    "status_window_ms = 10\n"
	    "max_rounds = 1000\n"
	    "activate_delay_ms = 0\n"
	    "result_timeout_s = 5\n"
	    "discover_interval_s = 7\n"
	    "session_deadline_s = 10\n"
	    "[transport.x]\n"
	    "type = lan\n", NULL);
	assert_string_equal(c->gateway_id, "gw.A-9_z");
	assert_string_equal(c->control_socket, "/tmp/s/ctl.sock");
	assert_string_equal(c->control_group, "wheel");
	assert_int_equal(c->log_verbose, 1);
	assert_true(c->cache_quota == 0);
	assert_int_equal(c->commit_interval_ms, 250);
	assert_int_equal(c->db_synchronous, 2);
	assert_int_equal(c->poll_interval_s, 2);
	assert_int_equal(c->report_interval_s, 3);
	assert_int_equal(c->report_batch_max, 7);
	assert_int_equal(c->range_bytes, 64 * 1024);
	assert_int_equal(c->http_timeout_s, 9);
	assert_int_equal(c->block_size, 64);
	assert_int_equal(c->rate_pct, 100);
	assert_int_equal(c->offer_window_ms, 100);
	assert_int_equal(c->offer_repeats, 1);
	assert_int_equal(c->status_window_ms, 10);
	assert_int_equal(c->max_rounds, 1000);
	assert_int_equal(c->activate_delay_ms, 0);
	assert_int_equal(c->result_timeout_s, 5);
	assert_int_equal(c->discover_interval_s, 7);
	assert_int_equal(c->session_deadline_s, 10);
	assert_int_equal(c->ntransports, 1);
	assert_int_equal(c->transports[0].nkv, 0);
	config_free(c);
}

static void
test_errors_values(void **state)
{
	expect_error(base_conf, "[fanout]\nblock_size = 70000\n",
	    ":12: [fanout] block_size: 70000 is out of range 64..65000");
	expect_error(base_conf, "[fanout]\nblock_size = 63\n",
	    ":12: [fanout] block_size: 63 is out of range 64..65000");
	expect_error(base_conf, "[fanout]\nrate_pct = fast\n",
	    ":12: [fanout] rate_pct: \"fast\" is not a number");
	expect_error(base_conf, "[fanout]\nrate_pct = 5x\n",
	    ":12: [fanout] rate_pct: \"5x\" is not a number");
	expect_error(base_conf, "[fanout]\nrate_pct =\n",
	    ":12: [fanout] rate_pct: \"\" is not a number");
	expect_error(base_conf, "[fanout]\nmax_rounds = "
	    "99999999999999999999999\n", ":12: [fanout] max_rounds: "
	    "99999999999999999999999 is out of range 1..1000");
	expect_error(base_conf, "[gateway]\n",
	    ":11: [gateway]: duplicate section (first at line 1)");
	expect_error(base_conf, "[cloud]\n",
	    ":11: [cloud]: duplicate section (first at line 4)");
	expect_error("[gateway]\nlog_level = loud\n", NULL,
	    ":2: [gateway] log_level: \"loud\" is not one of info, debug");
	expect_error("[gateway]\ndb_synchronous = off\n", NULL,
	    ":2: [gateway] db_synchronous: \"off\" is not one of normal, "
	    "full");
	expect_error("[gateway]\nid = gw/1\n", NULL,
	    ":2: [gateway] id: \"gw/1\" has a character outside "
	    "[A-Za-z0-9._-]");
	expect_error("[gateway]\nstate_dir = var/lib\n", NULL,
	    ":2: [gateway] state_dir: \"var/lib\" is not an absolute path");
	expect_error("[cloud]\nurl = http://x/\n", NULL,
	    ":2: [cloud] url: \"http://x/\" is not an https:// URL");
	expect_error("[gateway]\ncontrol_socket = /tmp/"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.sock\n", NULL,
	    ":2: [gateway] control_socket: path too long for a UNIX socket "
	    "(at most 107 bytes)");
	expect_error("[gateway]\nid =\n", NULL,
	    ":2: [gateway] id: empty value");
}

static void
test_errors_structure(void **state)
{
	expect_error(base_conf, "[fanout]\nblok_size = 1\n",
	    ":12: [fanout] blok_size: unknown key");
	expect_error(base_conf, "[gatway]\nid = x\n",
	    ":11: [gatway]: unknown section (known: gateway, cloud, fanout, "
	    "transport.NAME)");
	expect_error(base_conf, "[fanout]\nblock_size = 100\n"
	    "block_size = 200\n",
	    ":13: [fanout] block_size: duplicate key (first at line 12)");
	expect_error("id = x\n", NULL, ":1: id: key outside any section");
	expect_error(base_conf, "garbage\n", ":11: syntax error (expected "
	    "[section], key = value or a comment)");
	expect_error(base_conf, "[fanout\n",
	    ":11: section header without ']'");
	expect_error(base_conf, "[fanout]\n  block_size = 100\n",
	    ":12: indented line (continuation lines are not supported)");
	expect_error(base_conf, "[fanout]\nblock_size = 100\n"
	    "    200\n",
	    ":13: indented line (continuation lines are not supported)");
}

static void
test_errors_missing(void **state)
{
	/* Without "id" (line 2). */
	expect_error("[gateway]\n"
	    "state_dir = /var/lib/upbridge\n"
	    "[cloud]\n"
	    "url = https://127.0.0.1:8443/cloud\n"
	    "ca_file = /etc/upbridge/ca.pem\n"
	    "public_key = /etc/upbridge/cloud.pub.pem\n"
	    "[transport.lan0]\n"
	    "type = lan\n", NULL,
	    ":1: [gateway] id: missing required key");
	/* Without a [cloud] section at all: no line to name. */
	expect_error("[gateway]\n"
	    "id = gw-test-01\n"
	    "state_dir = /var/lib/upbridge\n"
	    "[transport.lan0]\n"
	    "type = lan\n", NULL,
	    ": [cloud] url: missing required key");
	expect_error("[gateway]\n"
	    "id = gw-test-01\n"
	    "state_dir = /var/lib/upbridge\n"
	    "[cloud]\n"
	    "url = https://127.0.0.1:8443/cloud\n"
	    "public_key = /etc/upbridge/cloud.pub.pem\n"
	    "[transport.lan0]\n"
	    "type = lan\n", NULL,
	    ":4: [cloud] ca_file: missing required key");
	/* No transport. */
	expect_error("[gateway]\n"
	    "id = gw-test-01\n"
	    "state_dir = /var/lib/upbridge\n"
	    "[cloud]\n"
	    "url = https://127.0.0.1:8443/cloud\n"
	    "ca_file = /etc/upbridge/ca.pem\n"
	    "public_key = /etc/upbridge/cloud.pub.pem\n", NULL,
	    ": no [transport.NAME] section: at least one transport is "
	    "needed");
}

static void
test_errors_transport(void **state)
{
	struct ub_config	*c;
	char			*cause = NULL;

	expect_error(base_conf, "[transport.lan0]\ntype = lan\n",
	    ":11: [transport.lan0]: duplicate transport name (first at line "
	    "8)");
	expect_error(base_conf, "[transport.lan1]\ntype = lan\n"
	    "port = 70000\n",
	    ":13: [transport.lan1] port: 70000 is out of range 1..65535");
	expect_error(base_conf, "[transport.lan1]\ntype = lan\n"
	    "port = http\n",
	    ":13: [transport.lan1] port: \"http\" is not a number");
	expect_error(base_conf, "[transport.lan1]\ntype = lan\n"
	    "loop = maybe\n",
	    ":13: [transport.lan1] loop: \"maybe\" is not yes or no");
	expect_error(base_conf, "[transport.lan1]\ntype = lan\n"
	    "colour = blue\n",
	    ":13: [transport.lan1] colour: unknown key for transport type "
	    "lan");
	/* Keys before "type" are checked once the type is known. */
	expect_error(base_conf, "[transport.lan1]\nttl = 300\ntype = lan\n",
	    ":12: [transport.lan1] ttl: 300 is out of range 0..255");
	expect_error(base_conf, "[transport.lan1]\nport = 1\n",
	    ":11: [transport.lan1] type: missing required key");
	expect_error(base_conf, "[transport.lan1]\ntype = lan\n"
	    "type = lan\n",
	    ":13: [transport.lan1] type: duplicate key (first at line 12)");
	expect_error(base_conf, "[transport.lan1]\ntype = lan\n"
	    "port = 1\nport = 2\n",
	    ":14: [transport.lan1] port: duplicate key (first at line 13)");
	expect_error(base_conf, "node_silence_s = 0\n",
	    ":11: [transport.lan0] node_silence_s: 0 is out of range 1..86400");
	expect_error(base_conf, "node_silence_s = 5\nnode_silence_s = 6\n",
	    ":12: [transport.lan0] node_silence_s: duplicate key (first at "
	    "line 11)");
	expect_error(base_conf, "[transport.bad name]\ntype = lan\n",
	    ":11: [transport.bad name]: bad transport name (use 1 to 63 of "
	    "[A-Za-z0-9_-])");

	/* The plugin's own check of a value names the key and line too. */
	write_conf(base_conf, "[transport.lan1]\ntype = lan\n"
	    "group = 10.0.0.1\n");
	c = config_load(conf_path, &cause);
	assert_null(c);
	assert_non_null(cause);
	assert_non_null(strstr(cause, ":13: [transport.lan1] group: "
	    "\"10.0.0.1\": "));
	free(cause);

	/* An unknown plugin lists the compiled-in ones. */
	write_conf(base_conf, "[transport.p]\ntype = pigeon\n");
	c = config_load(conf_path, &cause);
	assert_null(c);
	assert_non_null(strstr(cause, ":12: [transport.p] type: unknown "
	    "transport type \"pigeon\" (compiled in: "));
	assert_non_null(strstr(cause, "lan"));
	free(cause);
}

static void
test_errors_file(void **state)
{
	struct ub_config	*c;
	char			*cause = NULL, want[256], line[300];

	c = config_load("/nonexistent/upbridged.conf", &cause);
	assert_null(c);
	assert_string_equal(cause, "/nonexistent/upbridged.conf: No such "
	    "file or directory");
	free(cause);

	memset(line, 'a', sizeof(line));
	memcpy(line, "# ", 2);
	line[sizeof(line) - 2] = '\n';
	line[sizeof(line) - 1] = '\0';
	write_conf(base_conf, line);
	c = config_load(conf_path, &cause);
	assert_null(c);
	snprintf(want, sizeof(want), "%s:11: line too long (at most 197 "
	    "characters)", conf_path);
	assert_string_equal(cause, want);
	free(cause);
}

static void
test_reloadable(void **state)
{
	struct ub_config	*a, *b;
	char			*cause = NULL;

	a = load(base_conf, "[fanout]\nrate_pct = 50\n");

	/* Fan-out tuning, log level, commit interval: reloadable. */
	b = load("[gateway]\nlog_level = debug\ncommit_interval_ms = 300\n"
	    "id = gw-test-01\nstate_dir = /var/lib/upbridge\n"
	    "[cloud]\nurl = https://127.0.0.1:8443/cloud\n"
	    "ca_file = /etc/upbridge/ca.pem\n"
	    "public_key = /etc/upbridge/cloud.pub.pem\n"
	    "[transport.lan0]\ngroup = 239.255.42.1\ntype = lan\n"
	    "[fanout]\nrate_pct = 70\nmax_rounds = 5\n", NULL);
	assert_int_equal(config_reloadable(a, b, &cause), 0);
	assert_null(cause);
	config_free(b);

	/* Writing a plugin's default out is no change. */
	b = load(base_conf, "port = 4242\nloop = on\n");
	assert_int_equal(config_reloadable(a, b, &cause), 0);
	config_free(b);

	/* Cloud intervals are fixed when the uplink is created. */
	b = load("[gateway]\nid = gw-test-01\nstate_dir = /var/lib/upbridge\n"
	    "[cloud]\nurl = https://127.0.0.1:8443/cloud\n"
	    "ca_file = /etc/upbridge/ca.pem\n"
	    "public_key = /etc/upbridge/cloud.pub.pem\n"
	    "poll_interval_s = 10\n"
	    "[transport.lan0]\ntype = lan\ngroup = 239.255.42.1\n", NULL);
	assert_int_equal(config_reloadable(a, b, &cause), -1);
	assert_string_equal(cause, "[cloud] poll_interval_s changed: it needs "
	    "a restart");
	free(cause);
	cause = NULL;
	config_free(b);

	/* Restart-only: state_dir. */
	b = load("[gateway]\nid = gw-test-01\nstate_dir = /srv/ub\n",
	    base_conf + strlen("[gateway]\nid = gw-test-01\n"
	    "state_dir = /var/lib/upbridge\n"));
	assert_int_equal(config_reloadable(a, b, &cause), -1);
	assert_string_equal(cause, "[gateway] state_dir changed: it needs a "
	    "restart");
	free(cause);
	cause = NULL;
	config_free(b);

	/* A transport option. */
	b = load(base_conf, "port = 4343\n");
	assert_int_equal(config_reloadable(a, b, &cause), -1);
	assert_string_equal(cause, "[transport.lan0] changed: transports "
	    "change only with a restart");
	free(cause);
	cause = NULL;
	config_free(b);

	/* A transport added, then one removed. */
	b = load(base_conf, "[transport.lan9]\ntype = lan\n");
	assert_int_equal(config_reloadable(a, b, &cause), -1);
	assert_string_equal(cause, "[transport.lan9] added: transports "
	    "change only with a restart");
	free(cause);
	cause = NULL;
	assert_int_equal(config_reloadable(b, a, &cause), -1);
	assert_string_equal(cause, "[transport.lan9] removed: transports "
	    "change only with a restart");
	free(cause);
	cause = NULL;
	config_free(b);

	config_free(a);
}

static void
test_help(void **state)
{
	char	*buf = NULL;
	size_t	 len = 0;
	FILE	*f;

	f = open_memstream(&buf, &len);
	assert_non_null(f);
	config_print_help(f);
	fclose(f);
	assert_non_null(strstr(buf, "[fanout]\n  block_size = 1400   "
	    "(64..65000 bytes; reloadable)"));
	assert_non_null(strstr(buf, "  id = (required)"));
	assert_non_null(strstr(buf, "[transport.NAME] with type = lan"));
	free(buf);
}

/* The commented example in docs/ is valid and shows the defaults. */
static void
test_example_file(void **state)
{
	struct ub_config	*c;
	char			*cause = NULL;

	c = config_load(UB_SOURCE_DIR "/docs/upbridged.conf.example", &cause);
	if (c == NULL)
		fail_msg("%s", cause);
	assert_string_equal(c->gateway_id, "gw-test-01");
	assert_int_equal(c->block_size, 1400);
	assert_int_equal(c->session_deadline_s, 3600);
	assert_int_equal(c->ntransports, 1);
	config_free(c);
}

/* Every option of the table is documented in upbridged.conf(5). */
static void
test_man_page_complete(void **state)
{
	char	*help = NULL, *man, *line, *save, *name, want[128];
	size_t	 len = 0;
	long	 n;
	FILE	*f;

	f = open_memstream(&help, &len);
	config_print_help(f);
	fclose(f);
	f = fopen(UB_SOURCE_DIR "/docs/upbridged.conf.5", "r");
	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	man = calloc(1, (size_t)n + 1);
	assert_int_equal(fread(man, 1, (size_t)n, f), (size_t)n);
	fclose(f);

	/* Option lines of the help look like "  name = default". */
	for (line = strtok_r(help, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		if (strncmp(line, "  ", 2) != 0 || line[2] == ' ' ||
		    strstr(line, " = ") == NULL)
			continue;
		name = line + 2;
		name[strcspn(name, " ")] = '\0';
		snprintf(want, sizeof(want), ".It Ic %s ", name);
		if (strstr(man, want) == NULL) {
			snprintf(want, sizeof(want), "Ic %s Ar", name);
			if (strstr(man, want) == NULL)
				fail_msg("upbridged.conf.5 lacks %s", name);
		}
	}
	free(man);
	free(help);
}

/*
 * A transport section may override [fanout] keys for its own link; the
 * plugin never sees them, and they are checked like [fanout]'s.
 */
static void
test_link_overrides(void **state)
{
	struct ub_config	*c, lc;
	size_t			 i;

	c = load(base_conf, "[fanout]\nstatus_window_ms = 300\n"
	    "[transport.bus0]\ntype = lan\nstatus_window_ms = 2000\n"
	    "offload = no\nunicast_slots = 8\nport = 4243\n");
	assert_int_equal(c->ntransports, 2);
	assert_int_equal(c->transports[1].nlink, 3);
	assert_int_equal(c->transports[1].nkv, 1);
	assert_string_equal(c->transports[1].kv[0].key, "port");
	assert_int_equal(c->transports[0].nlink, 0);
	assert_int_equal(config_link(c, &c->transports[1], &lc), 0);
	assert_int_equal(lc.status_window_ms, 2000);
	assert_int_equal(lc.offload, 0);
	assert_int_equal(lc.unicast_slots, 8);
	assert_int_equal(c->status_window_ms, 300);
	assert_int_equal(c->offload, 1);
	assert_int_equal(config_link(c, &c->transports[0], &lc), 0);
	assert_int_equal(lc.status_window_ms, 300);
	for (i = 0; i < c->ntransports; i++)
		assert_non_null(c->transports[i].ops);
	/*
	 * [fanout] values the file wrote, even equal to the default, are
	 * the operator's (a slow link that needs more warns of them);
	 * defaults are not.
	 */
	assert_int_equal(config_given(c, "fanout", "status_window_ms"), 1);
	assert_int_equal(config_given(c, "fanout", "offer_window_ms"), 0);
	assert_int_equal(config_given(c, "gateway", "id"), 1);
	assert_int_equal(config_given(c, "fanout", "nosuch"), 0);
	config_free(c);

	expect_error(base_conf, "[transport.bus0]\ntype = lan\n"
	    "status_window_ms = 5\n",
	    ":13: [transport.bus0] status_window_ms: 5 is out of range "
	    "10..3600000");
	expect_error(base_conf, "[transport.bus0]\ntype = lan\n"
	    "poll_broadcast = maybe\n",
	    ":13: [transport.bus0] poll_broadcast: \"maybe\" is not one of "
	    "yes, no");
	/* Not every [fanout] key: fec_proactive stays global. */
	expect_error(base_conf, "[transport.bus0]\ntype = lan\n"
	    "fec_proactive = 10\n",
	    ":13: [transport.bus0] fec_proactive: unknown key for transport "
	    "type lan");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_every_option),
		cmocka_unit_test(test_errors_values),
		cmocka_unit_test(test_errors_structure),
		cmocka_unit_test(test_errors_missing),
		cmocka_unit_test(test_errors_transport),
		cmocka_unit_test(test_errors_file),
		cmocka_unit_test(test_reloadable),
		cmocka_unit_test(test_help),
		cmocka_unit_test(test_example_file),
		cmocka_unit_test(test_man_page_complete),
		cmocka_unit_test(test_link_overrides),
	};

	return (cmocka_run_group_tests(tests, setup, teardown));
}
