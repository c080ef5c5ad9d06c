// SPDX-License-Identifier: GPL-2.0
/*
 * A live table of the queues, redrawn every interval until SIGINT:
 * depth as a bar, enqueue and dequeue rates over the last interval, drops.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bpqctl.h"

static const char usage[] =
	"watch [Q] [--interval MS] [--count N]";

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

#define BAR_WIDTH 20

static void bar(char *out, unsigned int percent)
{
	unsigned int i, fill = (percent > 100 ? 100 : percent) * BAR_WIDTH / 100;

	out[0] = '[';
	for (i = 0; i < BAR_WIDTH; i++)
		out[1 + i] = i < fill ? '#' : '.';
	out[1 + BAR_WIDTH] = ']';
	out[2 + BAR_WIDTH] = '\0';
}

static const struct queue_snap *find(const struct queue_snap *s, int n,
				     unsigned int index)
{
	int i;

	for (i = 0; i < n; i++)
		if (s[i].index == index)
			return &s[i];
	return NULL;
}

static void draw(const struct queue_snap *s, int n,
		 const struct queue_snap *prev, int nprev, double dt, int tty)
{
	const struct queue_snap *p;
	char b[BAR_WIDTH + 3];
	double enq, deq;
	int i;

	if (tty)
		fputs("\033[H\033[2J", stdout);
	printf("%-7s %-16s %-11s %-22s %-17s %9s %9s %10s\n", "QUEUE", "NAME",
	       "STRATEGY", "DEPTH", "MSGS/CAPACITY", "ENQ/s", "DEQ/s",
	       "DROPS");
	for (i = 0; i < n; i++) {
		p = find(prev, nprev, s[i].index);
		enq = deq = 0;
		if (p && dt > 0 && s[i].st.enqueued_msgs >= p->st.enqueued_msgs &&
		    s[i].st.dequeued_msgs >= p->st.dequeued_msgs) {
			enq = (s[i].st.enqueued_msgs - p->st.enqueued_msgs) / dt;
			deq = (s[i].st.dequeued_msgs - p->st.dequeued_msgs) / dt;
		}
		bar(b, s[i].st.utilization);
		printf("bpq%-4u %-16s %-11s %s %8" PRIu64 "/%-8u %9.0f %9.0f %10"
		       PRIu64 "\n", s[i].index, s[i].name, snap_strategy(&s[i]), b,
		       (uint64_t)s[i].st.depth_msgs, s[i].cfg.capacity_msgs, enq,
		       deq, (uint64_t)(s[i].st.dropped_newest +
				       s[i].st.dropped_oldest + s[i].st.flushed));
	}
	fflush(stdout);
}

static int load(const char *q, struct queue_snap **s, int *n)
{
	int fd, idx, ret;

	if (!q)
		return load_all("watch", s, n);
	*s = calloc(1, sizeof(**s));
	if (!*s)
		return EXIT_FAIL;
	fd = open_queue("watch", q, O_RDONLY_NB, &idx);
	if (fd < 0)
		return EXIT_FAIL;
	ret = snap_load_fd(fd, idx, *s);
	close(fd);
	if (ret < 0) {
		err_msg("watch %s: %s", q, strerror(-ret));
		return EXIT_FAIL;
	}
	*n = 1;
	return EXIT_OK;
}

int watch_main(int argc, char **argv)
{
	struct queue_snap *cur = NULL, *prev = NULL;
	uint64_t interval = 1000, count = 0, shown = 0;
	int i, n = 0, nprev = 0, status = EXIT_OK, tty;
	const char *q = NULL;
	struct sigaction sa;
	struct timespec ts;
	double t, tprev = 0;

	for (i = 1; i < argc; i++) {
		if (is_help(argv[i]))
			return print_usage(usage);
		if (!strcmp(argv[i], "--interval") || !strcmp(argv[i], "-i") ||
		    !strcmp(argv[i], "--count") || !strcmp(argv[i], "-c")) {
			int is_count = argv[i][1] == 'c' || argv[i][2] == 'c';

			if (i + 1 >= argc ||
			    parse_u64(argv[i + 1], is_count ? UINT64_MAX : 3600000,
				      is_count ? &count : &interval) ||
			    (!is_count && !interval))
				return usage_fail(usage, "watch: bad value for '%s'",
						  argv[i]);
			i++;
		} else if (argv[i][0] == '-' || q) {
			return usage_fail(usage, "watch: unexpected '%s'",
					  argv[i]);
		} else {
			q = argv[i];
		}
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	tty = isatty(STDOUT_FILENO);
	while (!stop) {
		status = load(q, &cur, &n);
		if (status != EXIT_OK && q)
			break;
		t = now_s();
		draw(cur, n, prev, nprev, t - tprev, tty);
		free(prev);
		prev = cur;
		nprev = n;
		cur = NULL;
		tprev = t;
		if (count && ++shown >= count)
			break;
		ts.tv_sec = interval / 1000;
		ts.tv_nsec = interval % 1000 * 1000000;
		while (!stop && nanosleep(&ts, &ts) < 0 && errno == EINTR)
			;
	}
	free(cur);
	free(prev);
	return status;
}
