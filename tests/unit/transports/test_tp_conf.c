/*
 * test_tp_conf.c: the generic parts of transports/: option checking
 * (tp_conf.c), the plugin registry (tp_registry.c), address values
 * (tp_addr.c) and the lan plugin's address text form.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "up.h"
#include "transport.h"
#include "transports_internal.h"

#define NELEM(a)	(sizeof(a) / sizeof((a)[0]))

/* Checks a lan section made of `kv'; returns the cause or NULL. */
static char *
check_lan(const struct tp_kv *kv, size_t nkv)
{
	struct tp_conf	 conf;
	char		*cause = (char *)1;
	int		 rc;

	conf.name = "lan0";
	conf.options = tp_lan_ops.options;
	conf.kv = kv;
	conf.nkv = nkv;
	rc = tp_conf_check(&conf, &cause);
	if (rc == 0) {
		assert_null(cause);
		return (NULL);
	}
	assert_int_equal(rc, -1);
	assert_non_null(cause);
	return (cause);
}

/* Expects one key = value to be refused with `want' in the cause. */
static void
expect_reject(const char *key, const char *value, const char *want)
{
	struct tp_kv	 kv[2] = { { "type", "lan" }, { key, value } };
	char		*cause;

	cause = check_lan(kv, NELEM(kv));
	if (cause == NULL)
		fail_msg("%s = \"%s\" accepted", key, value);
	if (strstr(cause, want) == NULL)
		fail_msg("cause \"%s\" lacks \"%s\"", cause, want);
	free(cause);
}

static void
expect_accept(const char *key, const char *value)
{
	struct tp_kv	 kv[2] = { { "type", "lan" }, { key, value } };
	char		*cause;

	if ((cause = check_lan(kv, NELEM(kv))) != NULL)
		fail_msg("%s = \"%s\" refused: %s", key, value, cause);
}

static void
test_conf_defaults(void **state)
{
	struct tp_kv	 kv[] = { { "type", "lan" } };
	struct tp_conf	 conf = { "lan0", tp_lan_ops.options,
	    NELEM(kv), kv };
	char		*cause = NULL;

	assert_int_equal(tp_conf_check(&conf, &cause), 0);
	assert_null(cause);
	assert_string_equal(tp_conf_str(&conf, "type"), "lan");
	assert_string_equal(tp_conf_str(&conf, "group"), "239.255.42.1");
	assert_string_equal(tp_conf_str(&conf, "interface"), "127.0.0.1");
	assert_int_equal(tp_conf_int(&conf, "port"), 4242);
	assert_int_equal(tp_conf_int(&conf, "ttl"), 1);
	assert_int_equal(tp_conf_int(&conf, "bitrate_mbit"), 100);
	assert_int_equal(tp_conf_int(&conf, "mtu"), 1472);
	assert_int_equal(tp_conf_int(&conf, "tx_queue"), 64);
	assert_int_equal(tp_conf_bool(&conf, "loop"), 1);
	assert_null(tp_conf_str(&conf, "no_such_key"));
	assert_int_equal(tp_conf_int(&conf, "no_such_key"), 0);

	/* No kv at all is a section too. */
	conf.nkv = 0;
	conf.kv = NULL;
	assert_int_equal(tp_conf_check(&conf, NULL), 0);
	assert_int_equal(tp_conf_int(&conf, "port"), 4242);
}

static void
test_conf_values(void **state)
{
	struct tp_kv	 kv[] = {
		{ "type", "lan" }, { "group", "239.1.2.3" },
		{ "port", "5000" }, { "interface", "eth0" },
		{ "loop", "off" }, { "ttl", "0" }, { "mtu", "548" },
		{ "sndbuf_kib", "0" }, { "unicast_port", "65535" }
	};
	struct tp_conf	 conf = { "lan1", tp_lan_ops.options,
	    NELEM(kv), kv };

	assert_int_equal(tp_conf_check(&conf, NULL), 0);
	assert_string_equal(tp_conf_str(&conf, "group"), "239.1.2.3");
	assert_string_equal(tp_conf_str(&conf, "interface"), "eth0");
	assert_int_equal(tp_conf_int(&conf, "port"), 5000);
	assert_int_equal(tp_conf_int(&conf, "ttl"), 0);
	assert_int_equal(tp_conf_int(&conf, "mtu"), 548);
	assert_int_equal(tp_conf_int(&conf, "sndbuf_kib"), 0);
	assert_int_equal(tp_conf_int(&conf, "unicast_port"), 65535);
	assert_int_equal(tp_conf_bool(&conf, "loop"), 0);
	/* Untouched keys still come from the table. */
	assert_int_equal(tp_conf_int(&conf, "bitrate_mbit"), 100);
}

static void
test_conf_accept(void **state)
{
	expect_accept("loop", "yes");
	expect_accept("loop", "NO");
	expect_accept("loop", "True");
	expect_accept("loop", "false");
	expect_accept("loop", "on");
	expect_accept("loop", "OFF");
	expect_accept("loop", "1");
	expect_accept("loop", "0");
	expect_accept("port", "1");
	expect_accept("port", "65535");
	expect_accept("mtu", "65507");
	expect_accept("bitrate_mbit", "100000");
	expect_accept("group", "224.0.0.251");
	expect_accept("group", "239.255.255.255");
	expect_accept("interface", "10.0.0.1");
	expect_accept("interface", "veth-gw0");
	expect_accept("interface", "lo");
	expect_accept("interface", "eth0:1");
}

/* "type" names the plugin: always allowed, whatever the table says. */
static void
test_conf_type_key(void **state)
{
	struct tp_kv	 kv[] = { { "port", "5" }, { "type", "anything" } };
	struct tp_conf	 conf = { "lan0", tp_lan_ops.options,
	    NELEM(kv), kv };
	struct tp_conf	 bare = { "x", NULL, 1, kv + 1 };

	assert_int_equal(tp_conf_check(&conf, NULL), 0);
	assert_string_equal(tp_conf_str(&conf, "type"), "anything");
	assert_int_equal(tp_conf_check(&bare, NULL), 0);
}

static void
test_conf_reject(void **state)
{
	expect_reject("colour", "red",
	    "transport.lan0: unknown key \"colour\" (= \"red\")");
	expect_reject("Port", "1", "unknown key \"Port\"");

	/* Integers: the digits and nothing else. */
	expect_reject("port", "42x",
	    "transport.lan0: port = \"42x\": not an integer, allowed "
	    "1..65535");
	expect_reject("port", "", "port = \"\": not an integer");
	expect_reject("port", " 42", "port = \" 42\": not an integer");
	expect_reject("port", "42 ", "not an integer");
	expect_reject("port", "+42", "not an integer");
	expect_reject("port", "0x10", "not an integer");
	expect_reject("port", "4 2", "not an integer");
	expect_reject("port", "-", "not an integer");
	expect_reject("port", "1.5", "not an integer");

	/* Ranges, with the unit when the table has one. */
	expect_reject("port", "0",
	    "transport.lan0: port = \"0\": out of range, allowed 1..65535");
	expect_reject("port", "65536", "out of range, allowed 1..65535");
	expect_reject("port", "-1", "port = \"-1\": out of range");
	expect_reject("port", "99999999999999999999999",
	    "out of range, allowed 1..65535");
	expect_reject("mtu", "547",
	    "mtu = \"547\": out of range, allowed 548..65507 bytes");
	expect_reject("ttl", "256", "allowed 0..255 hops");
	expect_reject("bitrate_mbit", "0", "allowed 1..100000 Mbit/s");
	expect_reject("tx_queue", "0", "tx_queue = \"0\": out of range");

	/* Bools. */
	expect_reject("loop", "maybe",
	    "transport.lan0: loop = \"maybe\": not a bool, allowed yes/no, "
	    "true/false, on/off, 1/0");
	expect_reject("loop", "", "loop = \"\": not a bool");
	expect_reject("loop", "2", "not a bool");
	expect_reject("loop", "yess", "not a bool");

	/* The plugin's own checks. */
	expect_reject("group", "10.1.2.3",
	    "transport.lan0: group = \"10.1.2.3\": not an IPv4 multicast "
	    "address");
	expect_reject("group", "240.0.0.1", "not an IPv4 multicast");
	expect_reject("group", "239.255.42", "group = \"239.255.42\": not "
	    "an IPv4 address");
	expect_reject("group", "", "not an IPv4 address");
	expect_reject("interface", "0.0.0.0", "interface = \"0.0.0.0\": "
	    "0.0.0.0 names no interface");
	expect_reject("interface", "239.1.1.1", "not a unicast interface");
	expect_reject("interface", "eth0/1", "neither an IPv4 address nor "
	    "an interface name");
	expect_reject("interface", "a-very-long-interface-name",
	    "neither an IPv4 address");
	expect_reject("interface", "", "neither");
	expect_reject("interface", "eth 0", "neither");
}

static void
test_conf_duplicate_and_empty(void **state)
{
	struct tp_kv	 dup[] = {
		{ "type", "lan" }, { "port", "1" }, { "port", "2" }
	};
	struct tp_kv	 empty[] = { { "type", "lan" }, { "", "1" } };
	struct tp_kv	 nullv[] = { { "type", "lan" }, { "port", NULL } };
	char		*cause;

	cause = check_lan(dup, NELEM(dup));
	assert_non_null(cause);
	assert_non_null(strstr(cause, "transport.lan0: key \"port\" given "
	    "twice"));
	free(cause);
	cause = check_lan(empty, NELEM(empty));
	assert_non_null(cause);
	assert_non_null(strstr(cause, "empty key"));
	free(cause);
	cause = check_lan(nullv, NELEM(nullv));
	assert_non_null(cause);
	assert_non_null(strstr(cause, "port = \"\": not an integer"));
	free(cause);
}

/* A plugin table with a required key, units and no check. */
static const struct tp_option req_options[] = {
	{ "device", TP_OPT_STRING, NULL, 0, 0, NULL, "serial device", NULL },
	{ "baud", TP_OPT_INT, "9600", 1200, 115200, "bit/s", NULL, NULL },
	{ "flow", TP_OPT_BOOL, "no", 0, 0, NULL, NULL, NULL },
	{ "neg", TP_OPT_INT, "-5", -10, -1, NULL, NULL, NULL },
	{ NULL, TP_OPT_STRING, NULL, 0, 0, NULL, NULL, NULL }
};

static void
test_conf_required(void **state)
{
	struct tp_kv	 none[] = { { "type", "modbus-rtu" } };
	struct tp_kv	 ok[] = {
		{ "device", "/dev/ttyUSB0" }, { "type", "modbus-rtu" },
		{ "neg", "-10" }
	};
	struct tp_kv	 bad[] = { { "device", "/dev/x" }, { "neg", "0" } };
	struct tp_conf	 conf = { "rtu0", req_options,
	    NELEM(none), none };
	char		*cause = NULL;

	assert_int_equal(tp_conf_check(&conf, &cause), -1);
	assert_non_null(cause);
	assert_string_equal(cause,
	    "transport.rtu0: missing required key \"device\"");
	free(cause);
	assert_null(tp_conf_str(&conf, "device"));

	conf.kv = ok;
	conf.nkv = NELEM(ok);
	cause = NULL;
	assert_int_equal(tp_conf_check(&conf, &cause), 0);
	assert_null(cause);
	assert_string_equal(tp_conf_str(&conf, "device"), "/dev/ttyUSB0");
	assert_int_equal(tp_conf_int(&conf, "baud"), 9600);
	assert_int_equal(tp_conf_int(&conf, "neg"), -10);
	assert_int_equal(tp_conf_bool(&conf, "flow"), 0);

	conf.kv = bad;
	conf.nkv = NELEM(bad);
	assert_int_equal(tp_conf_check(&conf, &cause), -1);
	assert_string_equal(cause, "transport.rtu0: neg = \"0\": out of "
	    "range, allowed -10..-1");
	free(cause);

	/* A NULL options table knows only "type". */
	conf.options = NULL;
	conf.kv = none;
	conf.nkv = NELEM(none);
	assert_int_equal(tp_conf_check(&conf, NULL), 0);
	conf.kv = ok;
	conf.nkv = NELEM(ok);
	assert_int_equal(tp_conf_check(&conf, &cause), -1);
	assert_non_null(strstr(cause, "unknown key \"device\""));
	free(cause);
}

/* ------------------------------------------------------------------ */
/* Registry                                                             */

static int
fake_open(const struct tp_host *h, const struct tp_conf *c, struct tp **tp,
    char **cause)
{
	return (-1);
}

static int
fake_start(struct tp *tp, char **cause)
{
	return (0);
}

static void
fake_close(struct tp *tp)
{
}

static void
fake_caps(struct tp *tp, struct tp_caps *c)
{
}

static int
fake_send(struct tp *tp, const struct tp_addr *a, const struct iovec *iov,
    int n, uint64_t cookie)
{
	return (TP_OK);
}

static int
fake_fmt(const struct tp_addr *a, char *buf, size_t len)
{
	return (-1);
}

static int
fake_parse(const char *s, struct tp_addr *a, char **cause)
{
	return (-1);
}

#define FAKE_OPS(nm, ab, opts, op)					\
	{ .name = nm, .abi = ab, .options = opts, .open = op,		\
	  .start = fake_start, .close = fake_close, .caps = fake_caps,	\
	  .send = fake_send, .addr_fmt = fake_fmt,			\
	  .addr_parse = fake_parse }

static const struct tp_option bad_def_int[] = {
	{ "n", TP_OPT_INT, "100", 1, 10, NULL, NULL, NULL },
	{ NULL, TP_OPT_STRING, NULL, 0, 0, NULL, NULL, NULL }
};
static const struct tp_option bad_def_bool[] = {
	{ "b", TP_OPT_BOOL, "perhaps", 0, 0, NULL, NULL, NULL },
	{ NULL, TP_OPT_STRING, NULL, 0, 0, NULL, NULL, NULL }
};
static const struct tp_option reserved_type[] = {
	{ "type", TP_OPT_STRING, "x", 0, 0, NULL, NULL, NULL },
	{ NULL, TP_OPT_STRING, NULL, 0, 0, NULL, NULL, NULL }
};
static const struct tp_option twice[] = {
	{ "a", TP_OPT_STRING, "x", 0, 0, NULL, NULL, NULL },
	{ "a", TP_OPT_STRING, "y", 0, 0, NULL, NULL, NULL },
	{ NULL, TP_OPT_STRING, NULL, 0, 0, NULL, NULL, NULL }
};

static const struct tp_ops fake_good = FAKE_OPS("good", TP_ABI_VERSION,
    req_options, fake_open);
static const struct tp_ops fake_good2 = FAKE_OPS("good", TP_ABI_VERSION,
    NULL, fake_open);
static const struct tp_ops fake_abi = FAKE_OPS("oldabi", TP_ABI_VERSION + 1,
    NULL, fake_open);
static const struct tp_ops fake_noop = FAKE_OPS("noopen", TP_ABI_VERSION,
    NULL, NULL);
static const struct tp_ops fake_noname = FAKE_OPS(NULL, TP_ABI_VERSION,
    NULL, fake_open);
static const struct tp_ops fake_defint = FAKE_OPS("defint", TP_ABI_VERSION,
    bad_def_int, fake_open);
static const struct tp_ops fake_defbool = FAKE_OPS("defbool",
    TP_ABI_VERSION, bad_def_bool, fake_open);
static const struct tp_ops fake_type = FAKE_OPS("typeopt", TP_ABI_VERSION,
    reserved_type, fake_open);
static const struct tp_ops fake_twice = FAKE_OPS("twice", TP_ABI_VERSION,
    twice, fake_open);

static char	 logbuf[4096];

static void
log_capture(int level, const char *fmt, va_list ap)
{
	size_t	 n = strlen(logbuf);

	if (n < sizeof(logbuf) - 1) {
		vsnprintf(logbuf + n, sizeof(logbuf) - n, fmt, ap);
		n = strlen(logbuf);
		if (n < sizeof(logbuf) - 1)
			strcat(logbuf, "\n");
	}
}

static void
test_registry_lookup(void **state)
{
	const struct tp_ops *const	*l;
	const struct tp_ops		*lan;
	size_t				 n = 0;

	lan = tp_find("lan");
	assert_non_null(lan);
	assert_ptr_equal(lan, &tp_lan_ops);
	assert_string_equal(lan->name, "lan");
	assert_int_equal(lan->abi, TP_ABI_VERSION);
	assert_null(tp_find("LAN"));
	assert_null(tp_find("nosuch"));
	assert_null(tp_find(""));
	assert_null(tp_find(NULL));

	for (l = tp_list(); *l != NULL; l++) {
		assert_int_equal((*l)->abi, TP_ABI_VERSION);
		assert_ptr_equal(tp_find((*l)->name), *l);
		n++;
	}
#ifdef UB_HAVE_MODBUS
	/* lan, lora, plc, ble, modbus-rtu, modbus-tcp */
	assert_int_equal(n, 6);
	assert_non_null(tp_find("modbus-rtu"));
	assert_non_null(tp_find("modbus-tcp"));
#else
	/* lan, lora, plc and ble. */
	assert_int_equal(n, 4);
#endif
	assert_ptr_equal(tp_find("lora"), &tp_lora_ops);
	assert_ptr_equal(tp_find("plc"), &tp_plc_ops);
	assert_ptr_equal(tp_find("ble"), &tp_ble_ops);
	/* Stable between calls. */
	assert_ptr_equal(tp_list(), tp_list());
}

static void
test_registry_filter(void **state)
{
	const struct tp_ops *const	 all[] = {
		&fake_abi, &fake_good, &fake_noop, &fake_noname,
		&fake_defint, &fake_defbool, &fake_type, &fake_twice,
		&fake_good2, &tp_lan_ops, NULL
	};
	const struct tp_ops		*out[NELEM(all)];
	const struct tp_ops		*small[2];
	const char			*why;

	logbuf[0] = '\0';
	up_log_set_hook(log_capture);
	assert_int_equal(tp__registry_filter(all, out, NELEM(out)), 2);
	up_log_set_hook(NULL);
	assert_ptr_equal(out[0], &fake_good);
	assert_ptr_equal(out[1], &tp_lan_ops);
	assert_null(out[2]);
	assert_non_null(strstr(logbuf, "\"oldabi\" left out: built for "
	    "another TP_ABI_VERSION"));
	assert_non_null(strstr(logbuf, "\"noopen\" left out: a mandatory op"));
	assert_non_null(strstr(logbuf, "\"defint\" left out"));
	assert_non_null(strstr(logbuf, "\"good\" left out: name used twice"));

	assert_int_equal(tp__plugin_ok(&fake_defbool, &why), 0);
	assert_non_null(strstr(why, "bool"));
	assert_int_equal(tp__plugin_ok(&fake_type, &why), 0);
	assert_non_null(strstr(why, "reserved"));
	assert_int_equal(tp__plugin_ok(&fake_twice, &why), 0);
	assert_int_equal(tp__plugin_ok(NULL, &why), 0);
	assert_int_equal(tp__plugin_ok(&tp_lan_ops, &why), 1);
	assert_null(why);

	/* The output is bounded and NULL-terminated. */
	assert_int_equal(tp__registry_filter(all, small, NELEM(small)), 1);
	assert_ptr_equal(small[0], &fake_good);
	assert_null(small[1]);
}

/* Every compiled-in plugin's defaults pass its own check. */
static void
test_registry_defaults_valid(void **state)
{
	const struct tp_ops *const	*l;
	struct tp_kv			 kv[] = { { "type", NULL } };
	struct tp_conf			 conf;
	char				*cause = NULL;

	for (l = tp_list(); *l != NULL; l++) {
		kv[0].value = (*l)->name;
		conf.name = "x";
		conf.options = (*l)->options;
		conf.kv = kv;
		conf.nkv = 1;
		if (tp_conf_check(&conf, &cause) != 0 &&
		    strstr(cause, "missing required") == NULL)
			fail_msg("%s: %s", (*l)->name, cause);
		free(cause);
		cause = NULL;
	}
}

/* ------------------------------------------------------------------ */
/* Addresses                                                            */

static void
test_addr_eq(void **state)
{
	struct tp_addr	 a, b, bc1, bc2;

	memset(&a, 0xaa, sizeof(a));
	memset(&b, 0x55, sizeof(b));
	a.len = b.len = 6;
	a.flags = b.flags = 0;
	memcpy(a.b, "\x7f\0\0\x01\x10\x92", 6);
	memcpy(b.b, "\x7f\0\0\x01\x10\x92", 6);
	/* Bytes past len do not count. */
	assert_true(tp_addr_eq(&a, &b));
	b.b[5] ^= 1;
	assert_false(tp_addr_eq(&a, &b));
	b.b[5] ^= 1;
	b.len = 5;
	assert_false(tp_addr_eq(&a, &b));
	b.len = 6;

	memset(&bc1, 0x11, sizeof(bc1));
	tp_addr_broadcast(&bc1);
	assert_int_equal(bc1.flags, TP_ADDR_F_BROADCAST);
	assert_int_equal(bc1.len, 0);
	assert_int_equal(bc1.b[0], 0);
	bc2 = a;
	bc2.flags |= TP_ADDR_F_BROADCAST;
	assert_true(tp_addr_eq(&bc1, &bc2));
	assert_true(tp_addr_eq(&bc1, &bc1));
	assert_false(tp_addr_eq(&bc1, &a));
	assert_false(tp_addr_eq(&a, &bc1));
	/* A corrupt length never reads past the array. */
	a.len = b.len = TP_ADDR_MAX + 1;
	assert_false(tp_addr_eq(&a, &b));
}

static void
test_lan_addr_text(void **state)
{
	static const char *const bad[] = {
		"1.2.3.4:5", "lan:", "lan:1.2.3.4", "lan:1.2.3.4:",
		"lan:1.2.3.4:0", "lan:1.2.3.4:65536", "lan:1.2.3:5",
		"lan:1.2.3.4:5x", "lan:1.2.3.4: 5", "lan:host:80",
		"ble:1.2.3.4:5", "lan:Broadcast", "lan:1.2.3.4.5:6",
		"lan:300.1.1.1:7"
	};
	struct tp_addr	 a, b;
	char		 buf[TP_ADDR_TEXT_MAX], *cause;
	size_t		 i;

	assert_int_equal(tp_lan_ops.addr_parse("lan:10.0.0.7:4242", &a,
	    NULL), 0);
	assert_int_equal(a.len, 6);
	assert_int_equal(a.flags, 0);
	assert_memory_equal(a.b, "\x0a\x00\x00\x07\x10\x92", 6);
	assert_int_equal(tp_lan_ops.addr_fmt(&a, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "lan:10.0.0.7:4242");
	assert_int_equal(tp_lan_ops.addr_parse(buf, &b, NULL), 0);
	assert_true(tp_addr_eq(&a, &b));

	assert_int_equal(tp_lan_ops.addr_parse("lan:255.255.255.255:65535",
	    &a, NULL), 0);
	assert_int_equal(tp_lan_ops.addr_fmt(&a, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "lan:255.255.255.255:65535");
	/* Too small a buffer fails instead of truncating. */
	assert_int_equal(tp_lan_ops.addr_fmt(&a, buf, 10), -1);

	assert_int_equal(tp_lan_ops.addr_parse("lan:broadcast", &a, NULL), 0);
	assert_true(a.flags & TP_ADDR_F_BROADCAST);
	assert_int_equal(tp_lan_ops.addr_fmt(&a, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "lan:broadcast");

	a.flags = 0;
	a.len = 4;
	assert_int_equal(tp_lan_ops.addr_fmt(&a, buf, sizeof(buf)), -1);

	for (i = 0; i < NELEM(bad); i++) {
		cause = NULL;
		if (tp_lan_ops.addr_parse(bad[i], &a, &cause) == 0)
			fail_msg("\"%s\" parsed", bad[i]);
		assert_non_null(cause);
		assert_non_null(strstr(cause, bad[i]));
		assert_non_null(strstr(cause, "lan:A.B.C.D:PORT"));
		free(cause);
	}
	assert_int_equal(tp_lan_ops.addr_parse(NULL, &a, NULL), -1);
}

static void
test_lan_caps_declared(void **state)
{
	const struct tp_option	*o;
	int			 n = 0;

	for (o = tp_lan_ops.options; o->name != NULL; o++) {
		assert_non_null(o->help);
		n++;
	}
	assert_true(n >= 11);
	assert_non_null(tp_lan_ops.stats);
	assert_null(tp_lan_ops.airtime);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_conf_defaults),
		cmocka_unit_test(test_conf_values),
		cmocka_unit_test(test_conf_accept),
		cmocka_unit_test(test_conf_type_key),
		cmocka_unit_test(test_conf_reject),
		cmocka_unit_test(test_conf_duplicate_and_empty),
		cmocka_unit_test(test_conf_required),
		cmocka_unit_test(test_registry_lookup),
		cmocka_unit_test(test_registry_filter),
		cmocka_unit_test(test_registry_defaults_valid),
		cmocka_unit_test(test_addr_eq),
		cmocka_unit_test(test_lan_addr_text),
		cmocka_unit_test(test_lan_caps_declared),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
