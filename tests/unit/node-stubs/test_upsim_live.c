/*
 * test_upsim_live.c: the upsim program (docs/simulator.md) as tests and
 * benchmarks use it: started with its endpoints, it prints "NAME PTY"
 * lines and "ready", links the ptys under --link-dir, writes --status,
 * answers its control socket (status, faults, errors, quit), runs on a
 * compressed clock, and refuses a bad command line with exit 2.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "upnode.h"
#include "ub_test.h"

#define UPSIM		UB_BINARY_DIR "/bin/upsim"

static char		 tmpdir[32], status_path[64], ctl_path[64];
static char		 link_dir[64];
static pid_t		 child = -1;
static FILE		*child_out;


/* Starts upsim with `argv' (NULL-ended, argv[0] not included). */
static void
start(const char *args[])
{
	const char	*argv[40];
	int		 p[2], i = 0;

	argv[i++] = UPSIM;
	while (*args != NULL)
		argv[i++] = *args++;
	argv[i] = NULL;
	assert_int_equal(pipe(p), 0);
	assert_true((child = fork()) != -1);
	if (child == 0) {
		dup2(p[1], 1);
		close(p[0]);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(p[1]);
	assert_non_null(child_out = fdopen(p[0], "r"));
}

/* Reads stdout up to "ready"; fills names[i] / ptys[i]. */
static int
read_ready(char names[][32], char ptys[][64], int max)
{
	char		 line[256], n[32], p[64];
	int		 count = 0;

	while (fgets(line, sizeof(line), child_out) != NULL) {
		if (strcmp(line, "ready\n") == 0)
			return (count);
		if (strncmp(line, "upsim:", 6) == 0)
			continue;
		if (sscanf(line, "%31s %63s", n, p) == 2 && count < max) {
			memcpy(names[count], n, sizeof(n));
			memcpy(ptys[count], p, sizeof(p));
			count++;
		}
	}
	return (-1);
}

static int
reap(int ms)
{
	uint64_t	 end = ubt_now_ms() + (uint64_t)ms;
	int		 st;

	while (ubt_now_ms() < end) {
		if (waitpid(child, &st, WNOHANG) == child) {
			child = -1;
			return (WIFEXITED(st) ? WEXITSTATUS(st) : 128);
		}
		usleep(5000);
	}
	return (-1);
}

/* Runs upsim to completion; returns its exit status. */
static int
run(const char *args[])
{
	char		 buf[512];
	int		 rc;

	start(args);
	while (fgets(buf, sizeof(buf), child_out) != NULL)
		;
	fclose(child_out);
	child_out = NULL;
	rc = reap(5000);
	return (rc);
}

static int
ctl_connect(void)
{
	struct sockaddr_un sun;
	int		 fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", ctl_path);
	assert_true((fd = socket(AF_UNIX, SOCK_STREAM, 0)) != -1);
	assert_int_equal(connect(fd, (struct sockaddr *)&sun, sizeof(sun)),
	    0);
	return (fd);
}

/* Sends one command line; returns the reply line (static). */
static const char *
ctl(int fd, const char *cmd)
{
	static char	 reply[65536];
	struct pollfd	 pfd = { fd, POLLIN, 0 };
	size_t		 len = 0;
	ssize_t		 n;

	assert_int_equal(write(fd, cmd, strlen(cmd)), (ssize_t)strlen(cmd));
	assert_int_equal(write(fd, "\n", 1), 1);
	while (len == 0 || reply[len - 1] != '\n') {
		assert_true(poll(&pfd, 1, 5000) == 1);
		n = read(fd, reply + len, sizeof(reply) - len - 1);
		assert_true(n > 0);
		len += (size_t)n;
	}
	reply[len] = '\0';
	return (reply);
}

/* The value of "key": N in a JSON text from `from' on. */
static double
json_num(const char *from, const char *key)
{
	char		 k[64];
	const char	*p;

	snprintf(k, sizeof(k), "\"%s\": ", key);
	if ((p = strstr(from, k)) == NULL)
		fail_msg("no %s in %s", key, from);
	return (strtod(p + strlen(k), NULL));
}

/* The JSON of endpoint `name' within a status text. */
static const char *
json_ep(const char *status, const char *name)
{
	char		 k[64];
	const char	*p;

	snprintf(k, sizeof(k), "{\"name\": \"%s\"", name);
	if ((p = strstr(status, k)) == NULL)
		fail_msg("no endpoint %s", name);
	return (p);
}

static int
setup(void **state)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/upsim-live-XXXXXX");
	assert_non_null(mkdtemp(tmpdir));
	snprintf(status_path, sizeof(status_path), "%s/status.json", tmpdir);
	snprintf(ctl_path, sizeof(ctl_path), "%s/ctl", tmpdir);
	snprintf(link_dir, sizeof(link_dir), "%s/tty", tmpdir);
	return (0);
}

static int
teardown(void **state)
{
	char		 p[384];
	DIR		*d;
	struct dirent	*de;

	if (child > 0) {
		kill(child, SIGKILL);
		waitpid(child, NULL, 0);
		child = -1;
	}
	if (child_out != NULL)
		fclose(child_out);
	child_out = NULL;
	if ((d = opendir(link_dir)) != NULL) {
		while ((de = readdir(d)) != NULL)
			if (de->d_name[0] != '.') {
				snprintf(p, sizeof(p), "%s/%s", link_dir,
				    de->d_name);
				unlink(p);
			}
		closedir(d);
		rmdir(link_dir);
	}
	unlink(status_path);
	unlink(ctl_path);
	rmdir(tmpdir);
	return (0);
}

static void
test_run(void **state)
{
	const char	*args[] = { "--personality", "rs485",
			    "--endpoint", "gw", "--endpoint", "n1,loss=0",
			    "--endpoint", "n2,delay=5", "--baud", "19200",
			    "--format", "8E1", "--time-scale", "10",
			    "--seed", "7", "--status", status_path,
			    "--status-ms", "50", "--control", ctl_path,
			    "--link-dir", link_dir, NULL };
	char		 names[4][32], ptys[4][64], path[256], target[64];
	char		*cause = NULL, got[64];
	const char	*r, *e;
	uint8_t		 data[40];
	size_t		 len = 0;
	ssize_t		 n;
	uint64_t	 end;
	int		 fd_gw, fd_n1, c;
	struct stat	 sb;

	start(args);
	assert_int_equal(read_ready(names, ptys, 4), 3);
	assert_string_equal(names[0], "gw");
	assert_string_equal(names[2], "n2");
	assert_non_null(strstr(ptys[0], "/dev/pts/"));
	/* Every endpoint under --link-dir, like /dev/ttyUSB0. */
	snprintf(path, sizeof(path), "%s/n1", link_dir);
	n = readlink(path, target, sizeof(target) - 1);
	assert_true(n > 0);
	target[n] = '\0';
	assert_string_equal(target, ptys[1]);
	/* The status file exists from the start. */
	assert_int_equal(stat(status_path, &sb), 0);

	snprintf(path, sizeof(path), "%s/gw", link_dir);
	fd_gw = node_serial_open(path, 19200, "8E1", &cause);
	assert_true(fd_gw != -1);
	snprintf(path, sizeof(path), "%s/n1", link_dir);
	fd_n1 = node_serial_open(path, 19200, "8E1", &cause);
	assert_true(fd_n1 != -1);
	memset(data, 0x3c, sizeof(data));
	assert_int_equal(write(fd_gw, data, sizeof(data)), sizeof(data));
	end = ubt_now_ms() + 3000;
	while (len < sizeof(data) && ubt_now_ms() < end) {
		n = read(fd_n1, got, sizeof(got));
		if (n > 0)
			len += (size_t)n;
		else
			usleep(1000);
	}
	assert_int_equal(len, sizeof(data));

	c = ctl_connect();
	/*
	 * Wait for the frame's silence, then read the counters: n1 counts
	 * the frame after its gap, n2 5 ms (simulated) after that, so wait
	 * for both (a loaded host can answer a status between the two).
	 */
	end = ubt_now_ms() + 5000;
	do {
		usleep(5000);
		r = ctl(c, "status");
	} while ((json_num(json_ep(r, "n1"), "rx_frames") < 1 ||
	    json_num(json_ep(r, "n2"), "rx_frames") < 1) && ubt_now_ms() < end);
	assert_non_null(strstr(r, "\"personality\": \"rs485\""));
	assert_non_null(strstr(r, "\"fmt\": \"19200 8E1\""));
	e = json_ep(r, "gw");
	assert_int_equal((int)json_num(e, "tx_frames"), 1);
	assert_int_equal((int)json_num(e, "tx_bytes"), 40);
	/* 40 x 11 bits at 19200 bit/s: 22,916.7 us of simulated time. */
	assert_true(json_num(e, "airtime_us") > 22916 &&
	    json_num(e, "airtime_us") < 22917);
	assert_int_equal((int)json_num(json_ep(r, "n1"), "rx_bytes"), 40);
	/* n2 never opened its line: the frame reached it all the same. */
	assert_int_equal((int)json_num(json_ep(r, "n2"), "rx_frames"), 1);
	assert_true(json_num(json_ep(r, "n2"), "delay_ms") == 5);
	/* Simulated time runs ten times the real one. */
	assert_true(json_num(r, "sim_ms") > 9 * json_num(r, "real_ms"));
	assert_true(json_num(r, "sim_ms") < 11 * json_num(r, "real_ms"));

	/* Faults and settings by name. */
	assert_string_equal(ctl(c, "detach n1"), "ok\n");
	r = ctl(c, "status");
	assert_non_null(strstr(json_ep(r, "n1"), "\"attached\": false"));
	assert_string_equal(ctl(c, "attach n1"), "ok\n");
	assert_string_equal(ctl(c, "loss n2 12.5"), "ok\n");
	assert_string_equal(ctl(c, "reset gw"), "ok\n");
	r = ctl(c, "status");
	assert_true(json_num(json_ep(r, "n2"), "loss_pct") == 12.5);
	assert_int_equal((int)json_num(json_ep(r, "gw"), "resets"), 1);
	assert_int_equal(strncmp(ctl(c, "detach nobody"), "error: ", 7), 0);
	assert_int_equal(strncmp(ctl(c, "loss n2 x"), "error: ", 7), 0);
	assert_int_equal(strncmp(ctl(c, "fly"), "error: ", 7), 0);

	/*
	 * The status file follows (--status-ms 50): read it until it shows
	 * the reset, for 5 s at most (a loaded host may write it late).
	 */
	{
		char	 buf[65536];
		FILE	*f;
		size_t	 k;
		int	 resets = 0;

		end = ubt_now_ms() + 5000;
		do {
			usleep(20000);
			assert_non_null(f = fopen(status_path, "r"));
			k = fread(buf, 1, sizeof(buf) - 1, f);
			fclose(f);
			buf[k] = '\0';
			/* upsim replaces the file whole: never half a text. */
			resets = (int)json_num(json_ep(buf, "gw"), "resets");
		} while (resets != 1 && ubt_now_ms() < end);
		assert_int_equal(resets, 1);
	}

	/* quit: a clean stop, links removed, a last status written. */
	assert_string_equal(ctl(c, "quit"), "ok\n");
	close(c);
	close(fd_gw);
	close(fd_n1);
	{
		char	 line[512];
		int	 summary = 0;

		while (fgets(line, sizeof(line), child_out) != NULL)
			if (strstr(line, "simulated in") != NULL)
				summary = 1;
		assert_true(summary);
	}
	assert_int_equal(reap(5000), 0);
	snprintf(path, sizeof(path), "%s/gw", link_dir);
	assert_int_equal(lstat(path, &sb), -1);
	assert_int_equal(stat(status_path, &sb), 0);
}

/* SIGTERM and --duration end a run cleanly too. */
static void
test_stop(void **state)
{
	const char	*args[] = { "--personality", "rs485", "--endpoints",
			    "3", "--status", status_path, NULL };
	const char	*dur[] = { "--personality", "rs485", "--endpoints",
			    "2", "--duration", "0.2", NULL };
	char		 names[4][32], ptys[4][64];
	uint64_t	 t0;

	start(args);
	assert_int_equal(read_ready(names, ptys, 4), 3);
	assert_string_equal(names[0], "gw");
	assert_string_equal(names[1], "n1");
	assert_string_equal(names[2], "n2");
	kill(child, SIGTERM);
	assert_int_equal(reap(5000), 0);
	fclose(child_out);
	child_out = NULL;
	t0 = ubt_now_ms();
	assert_int_equal(run(dur), 0);
	assert_true(ubt_now_ms() - t0 >= 200);
}

/* Bad command lines: exit 2, nothing started. */
static void
test_usage(void **state)
{
	const char	*none[] = { "--endpoints", "2", NULL };
	const char	*pers[] = { "--personality", "nosuch", "--endpoints",
			    "2", NULL };
	const char	*both[] = { "--personality", "rs485", "--endpoints",
			    "2", "--endpoint", "x", NULL };
	const char	*fmt[] = { "--personality", "rs485", "--endpoints",
			    "2", "--format", "8Q1", NULL };
	const char	*key[] = { "--personality", "rs485", "--endpoint",
			    "a,volume=11", NULL };
	const char	*loss[] = { "--personality", "rs485", "--endpoint",
			    "a,loss=120", NULL };
	const char	*name[] = { "--personality", "rs485", "--endpoint",
			    "a/b", NULL };
	const char	*opt[] = { "--personality", "rs485", "--endpoints",
			    "2", "--opt", "colour=red", NULL };
	const char	*gap[] = { "--personality", "rs485", "--endpoints",
			    "2", "--opt", "gap-chars=0", NULL };
	const char	*scale[] = { "--personality", "rs485", "--endpoints",
			    "2", "--time-scale", "0", NULL };
	const char	*help[] = { "--personality", "help", NULL };

	assert_int_equal(run(none), 2);
	assert_int_equal(run(pers), 2);
	assert_int_equal(run(both), 2);
	assert_int_equal(run(fmt), 2);
	assert_int_equal(run(key), 2);
	assert_int_equal(run(loss), 2);
	assert_int_equal(run(scale), 2);
	assert_int_equal(run(name), 2);
	assert_int_equal(run(opt), 2);
	/* A value the personality refuses when it starts. */
	assert_int_equal(run(gap), 1);
	assert_int_equal(run(help), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_run, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stop, setup, teardown),
		cmocka_unit_test_setup_teardown(test_usage, setup, teardown),
	};

	signal(SIGPIPE, SIG_IGN);
	return (cmocka_run_group_tests(tests, NULL, NULL));
}
