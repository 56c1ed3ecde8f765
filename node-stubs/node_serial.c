/*
 * node_serial.c: a serial line for the node links that sit on one (an AT
 * radio modem, a carrier module, an RS-485 bus), and for the tests that
 * play an endpoint of the medium simulator (docs/simulator.md).
 *
 * The termios set here is what a driver of a real UART needs: raw mode
 * (no echo, no line editing, no CR/LF translation, no flow control), the
 * bit rate, 5-8 data bits, the parity bit with INPCK so the kernel
 * checks it, and 1 or 2 stop bits.  On a pty the kernel keeps the speed,
 * CSTOPB, PARODD and the input flags but clears PARENB and forces CS8
 * (drivers/tty/pty.c, pty_set_termios): the simulator therefore reads
 * "parity on" from INPCK, which is one more reason to set it.
 */
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "upnode.h"

static const struct {
	unsigned int	 baud;
	speed_t		 speed;
} speeds[] = {
	{ 300, B300 }, { 600, B600 }, { 1200, B1200 }, { 2400, B2400 },
	{ 4800, B4800 }, { 9600, B9600 }, { 19200, B19200 },
	{ 38400, B38400 }, { 57600, B57600 }, { 115200, B115200 },
	{ 230400, B230400 }, { 460800, B460800 }, { 500000, B500000 },
	{ 576000, B576000 }, { 921600, B921600 }, { 1000000, B1000000 },
	{ 1152000, B1152000 }, { 1500000, B1500000 }, { 2000000, B2000000 },
	{ 0, B0 }
};

speed_t
node_serial_speed(unsigned int baud)
{
	size_t		 i;

	for (i = 0; speeds[i].baud != 0; i++)
		if (speeds[i].baud == baud)
			return (speeds[i].speed);
	return (B0);
}

/*
 * tcsetattr() failed: did the settings take anyway?  A pty's driver
 * clears PARENB (drivers/tty/pty.c) and glibc's tcsetattr reads the
 * termios back and reports EINVAL when PARENB or CREAD did not stick
 * (sysdeps/unix/sysv/linux/tcsetattr.c).  What a pty keeps and the
 * simulator reads (the speed, CSTOPB, PARODD, the input flags) is then
 * set all the same, so that EINVAL is not an error on a pty.
 */
int
node_serial_took(int fd, const struct termios *want)
{
	struct termios	 t;
	int		 saved = errno;

	if (saved != EINVAL || tcgetattr(fd, &t) == -1) {
		errno = saved;
		return (0);
	}
	if (cfgetispeed(&t) != cfgetispeed(want) ||
	    cfgetospeed(&t) != cfgetospeed(want) ||
	    t.c_iflag != want->c_iflag ||
	    (t.c_cflag & (CSTOPB | PARODD)) != (want->c_cflag & (CSTOPB |
	    PARODD))) {
		errno = saved;
		return (0);
	}
	return (1);
}

int
node_serial_open(const char *path, unsigned int baud, const char *format,
    char **cause)
{
	static const tcflag_t csize[] = { CS5, CS6, CS7, CS8 };
	struct termios	 t;
	speed_t		 sp;
	int		 fd;

	if ((sp = node_serial_speed(baud)) == B0) {
		*cause = node_cause("%u: not a serial bit rate", baud);
		return (-1);
	}
	if (strlen(format) != 3 || format[0] < '5' || format[0] > '8' ||
	    strchr("NEO", format[1]) == NULL ||
	    (format[2] != '1' && format[2] != '2')) {
		*cause = node_cause("%s: not a character format (8N1, "
		    "8E1, 8O1, 8N2...)", format);
		return (-1);
	}
	if ((fd = open(path, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC)) ==
	    -1) {
		*cause = node_cause("%s: %s", path, strerror(errno));
		return (-1);
	}
	if (tcgetattr(fd, &t) == -1) {
		*cause = node_cause("%s: not a tty: %s", path,
		    strerror(errno));
		close(fd);
		return (-1);
	}
	cfmakeraw(&t);
	t.c_cflag |= CLOCAL | CREAD;
	t.c_cflag &= ~(CSIZE | PARENB | PARODD | CSTOPB | CRTSCTS);
	t.c_cflag |= csize[format[0] - '5'];
	t.c_iflag &= ~(INPCK | IGNPAR | PARMRK | ISTRIP | IXON | IXOFF |
	    IXANY);
	if (format[1] != 'N') {
		t.c_cflag |= PARENB;
		if (format[1] == 'O')
			t.c_cflag |= PARODD;
		t.c_iflag |= INPCK;
	}
	if (format[2] == '2')
		t.c_cflag |= CSTOPB;
	t.c_cc[VMIN] = 1;
	t.c_cc[VTIME] = 0;
	if (cfsetispeed(&t, sp) == -1 || cfsetospeed(&t, sp) == -1 ||
	    (tcsetattr(fd, TCSANOW, &t) == -1 && !node_serial_took(fd, &t))) {
		*cause = node_cause("%s: termios: %s", path,
		    strerror(errno));
		close(fd);
		return (-1);
	}
	/* What arrived before we were ready is not ours. */
	(void)tcflush(fd, TCIOFLUSH);
	return (fd);
}
