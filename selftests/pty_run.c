// SPDX-License-Identifier: GPL-2.0
/*
 * pty_run: run a command on a new pseudo-terminal of a given size, as a
 * user would in a terminal window, and press Ctrl-C once it has drawn
 * enough. A helper for the guest scripts (bpqctl_test.sh), whose busybox
 * has no way to give a program a terminal.
 *
 *   pty_run [-c COLS] [-r ROWS] [-m TEXT [-n N]] [-t SECS] [-k SECS]
 *           [-u UID] [-o FILE] CMD [ARG...]
 *
 * CMD runs in a session of its own whose controlling terminal is the pty,
 * on its stdin, stdout and stderr, as UID (and the same GID, no
 * supplementary groups) with -u. Everything it writes to the terminal is
 * copied to FILE (default: stdout), unaltered: escape sequences, and the
 * \r that the terminal adds before each \n.
 *
 * With -m, once the output holds TEXT N times (default 1), pty_run types
 * the terminal's interrupt character (^C): the line discipline sends
 * SIGINT to the foreground process group, as for a key press. It does so
 * after SECS seconds (-t, default 20) in any case. Without -m, CMD is
 * expected to end by itself within those SECS. A CMD still running -k SECS
 * (default 5) after that is killed with its process group.
 *
 * Reports on stderr:
 *   pty_run: interrupt sent after N bytes   (only if it was)
 *   pty_run: exit status N | killed by signal N | timed out, killed
 *   pty_run: terminal modes unchanged | terminal modes changed
 * and exits with CMD's status, 128 + the signal that killed it, 124 if it
 * had to be killed, or 125 for an error of its own.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define EXIT_ERROR	125
#define EXIT_TIMEOUT	124

static void die(const char *what)
{
	fprintf(stderr, "pty_run: %s: %s\n", what, strerror(errno));
	exit(EXIT_ERROR);
}

static void usage(void)
{
	fputs("Usage: pty_run [-c COLS] [-r ROWS] [-m TEXT [-n N]] [-t SECS]\n"
	      "               [-k SECS] [-u UID] [-o FILE] CMD [ARG...]\n",
	      stderr);
	exit(EXIT_ERROR);
}

static long number(const char *s)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < 0)
		usage();
	return v;
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static void write_all(int fd, const char *buf, size_t len)
{
	ssize_t n;

	while (len) {
		n = write(fd, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			die("write");
		buf += n;
		len -= n;
	}
}

/*
 * Occurrences of mark in the output so far: the output goes through
 * carry, which keeps the last strlen(mark) - 1 bytes of the one before so
 * that a mark split between two reads is found.
 */
struct counter {
	const char *mark;
	size_t len;
	char *carry;
	size_t kept;
	long found;
};

static void count(struct counter *c, const char *buf, size_t len)
{
	char *p, *end;

	if (!c->len)
		return;
	memcpy(c->carry + c->kept, buf, len);
	end = c->carry + c->kept + len;
	for (p = c->carry; (p = memmem(p, end - p, c->mark, c->len));
	     p += c->len)
		c->found++;
	c->kept = c->kept + len < c->len - 1 ? c->kept + len : c->len - 1;
	memmove(c->carry, end - c->kept, c->kept);
}

static void child(int slave, int master, uid_t uid, char **argv)
{
	if (setsid() < 0 || ioctl(slave, TIOCSCTTY, 0) < 0)
		die("controlling terminal");
	if (dup2(slave, 0) < 0 || dup2(slave, 1) < 0 || dup2(slave, 2) < 0)
		die("dup2");
	close(slave);
	close(master);
	if (uid != (uid_t)-1 &&
	    (setgroups(0, NULL) || setgid(uid) || setuid(uid)))
		die("setuid");
	execvp(argv[0], argv);
	fprintf(stderr, "pty_run: %s: %s\n", argv[0], strerror(errno));
	_exit(127);
}

int main(int argc, char **argv)
{
	long cols = 80, rows = 24, times = 1, wait_s = 20, grace_s = 5;
	int master, slave, out = 1, opt, status, changed;
	int exited = 0, eof = 0, killed = 0;
	long long t, intr_at, kill_at = -1, end_at;
	struct counter c = { .mark = "" };
	struct termios before, after;
	uid_t uid = (uid_t)-1;
	size_t total = 0;
	struct winsize ws;
	struct pollfd pfd;
	char buf[4096];
	ssize_t n;
	pid_t pid;

	while ((opt = getopt(argc, argv, "+c:r:m:n:t:k:u:o:")) != -1) {
		switch (opt) {
		case 'c':
			cols = number(optarg);
			break;
		case 'r':
			rows = number(optarg);
			break;
		case 'm':
			c.mark = optarg;
			break;
		case 'n':
			times = number(optarg);
			break;
		case 't':
			wait_s = number(optarg);
			break;
		case 'k':
			grace_s = number(optarg);
			break;
		case 'u':
			uid = number(optarg);
			break;
		case 'o':
			out = open(optarg, O_WRONLY | O_CREAT | O_TRUNC |
				   O_CLOEXEC, 0644);
			if (out < 0)
				die(optarg);
			break;
		default:
			usage();
		}
	}
	if (optind >= argc || cols > 65535 || rows > 65535)
		usage();
	c.len = strlen(c.mark);
	c.carry = malloc(c.len + sizeof(buf));
	if (!c.carry)
		die("malloc");

	master = posix_openpt(O_RDWR | O_NOCTTY);
	if (master < 0 || grantpt(master) || unlockpt(master))
		die("/dev/ptmx");
	slave = open(ptsname(master), O_RDWR | O_NOCTTY);
	if (slave < 0)
		die("pty slave");
	memset(&ws, 0, sizeof(ws));
	ws.ws_col = cols;
	ws.ws_row = rows;
	if (ioctl(slave, TIOCSWINSZ, &ws) || tcgetattr(slave, &before))
		die("pty settings");

	pid = fork();
	if (pid < 0)
		die("fork");
	if (!pid)
		child(slave, master, uid, argv + optind);
	/* from now on reading the master fails (EIO) once CMD has closed it */
	close(slave);

	t = now_ms();
	intr_at = t + wait_s * 1000;
	/* the bound on everything, even if CMD leaves processes behind */
	end_at = t + (wait_s + grace_s + 2) * 1000;
	for (;;) {
		t = now_ms();
		if (!exited && waitpid(pid, &status, WNOHANG) == pid)
			exited = 1;
		if ((exited && eof) || t >= end_at)
			break;
		if (!exited && kill_at < 0 &&
		    ((c.len && c.found >= times) || t >= intr_at)) {
			if (c.len) {
				/* VINTR as it is now: CMD may have changed it */
				if (tcgetattr(master, &after))
					die("tcgetattr");
				write_all(master, (char *)&after.c_cc[VINTR], 1);
				fprintf(stderr,
					"pty_run: interrupt sent after %zu bytes\n",
					total);
			}
			kill_at = t + grace_s * 1000;
		}
		if (!exited && !killed && kill_at >= 0 && t >= kill_at) {
			kill(-pid, SIGKILL);
			kill(pid, SIGKILL);
			killed = 1;
		}
		if (eof) {
			usleep(10000);
			continue;
		}
		pfd.fd = master;
		pfd.events = POLLIN;
		if (poll(&pfd, 1, 50) < 0 && errno != EINTR)
			die("poll");
		if (!pfd.revents)
			continue;
		n = read(master, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			eof = 1;
			continue;
		}
		write_all(out, buf, n);
		count(&c, buf, n);
		total += n;
	}
	if (!exited) {
		fprintf(stderr, "pty_run: timed out, %s\n",
			killed ? "killed but not gone" : "still running");
		return EXIT_TIMEOUT;
	}

	if (tcgetattr(master, &after))
		die("tcgetattr");
	changed = before.c_iflag != after.c_iflag ||
		  before.c_oflag != after.c_oflag ||
		  before.c_cflag != after.c_cflag ||
		  before.c_lflag != after.c_lflag ||
		  memcmp(before.c_cc, after.c_cc, sizeof(before.c_cc));
	if (killed)
		fprintf(stderr, "pty_run: timed out, killed\n");
	else if (WIFEXITED(status))
		fprintf(stderr, "pty_run: exit status %d\n",
			WEXITSTATUS(status));
	else
		fprintf(stderr, "pty_run: killed by signal %d\n",
			WTERMSIG(status));
	fprintf(stderr, "pty_run: terminal modes %s\n",
		changed ? "changed" : "unchanged");
	if (killed)
		return EXIT_TIMEOUT;
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return 128 + WTERMSIG(status);
}
