// SPDX-License-Identifier: MIT
/*
 * bpq-sample: queues' counters as time series, for a plot.
 *
 * Every INTERVAL ms (50 by default) it reads each queue's
 * /sys/class/bpq/bpqN/stats/all, one snapshot of every counter taken under
 * the queue's lock, and keeps it. Given a COMMAND, it runs it and samples
 * until it has exited, one interval more; otherwise until SIGINT or
 * SIGTERM. Then it writes one block of lines per queue, in the order of
 * the command line, the blocks separated by two empty lines (gnuplot's
 * "index"), each line one interval:
 *
 *   t_s          end of the interval, seconds since the first sample
 *   depth        depth_msgs at that instant
 *   admitted     messages admitted in the interval (enqueued_msgs)
 *   dropped      refused by drop-newest or evicted by drop-oldest in it
 *   delivered    messages delivered to readers in it (dequeued_msgs)
 *   head_age_ms  how long the oldest queued message had waited, at the end
 *   sojourn_lo_ms, sojourn_hi_ms
 *                the bounds of the latency_hist bucket that holds the
 *                median sojourn (enqueue to delivery) of the messages
 *                delivered in the interval; "-" when none was. The
 *                buckets are powers of two: the median is known to a
 *                factor of two, no better.
 *   wait_pct     writers' time spent waiting to be admitted, whatever
 *                held them (room, credit, the rate, the window, a hold),
 *                as a percentage of the interval. A wait is counted when
 *                it ends, in the interval where it ends, so one long wait
 *                can make an interval exceed 100; so can several writers.
 *
 * Each block begins with comment lines: the queue's name, device, strategy
 * and capacity, then the column names.
 *
 * usage: bpq-sample [-i INTERVAL_MS] [-o FILE] Q... [-- COMMAND [ARG...]]
 *   Q: a queue's number, name or device path, as for bpq_open()
 *   exit status: COMMAND's, or 0 without one; 1 if sampling failed
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <bpq.h>

#define HIST_BUCKETS	32

/* The counters of one snapshot that the columns come from. */
struct sample {
	double t;
	uint64_t depth, enqueued, dropped, dequeued, head_age_us, wait_ns;
	uint64_t hist[HIST_BUCKETS];
};

struct queue {
	const char *arg;
	char dir[64];		/* its sysfs directory */
	char name[64], strategy[32], capacity[32];
	struct sample *samples;
	size_t n, max;
};

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/*
 * Sleep until the CLOCK_MONOTONIC instant @t_ns unless one of the signals
 * of @set, which are blocked, comes first. Returns 1 if one came.
 */
static int sleep_until(int64_t t_ns, const sigset_t *set)
{
	int64_t left = t_ns - now_ns();
	struct timespec ts;

	if (left <= 0)
		return 0;
	ts.tv_sec = left / 1000000000LL;
	ts.tv_nsec = left % 1000000000LL;
	return sigtimedwait(set, NULL, &ts) > 0;
}

/* The first line of a small sysfs file, without its newline; "?" if none. */
static void read_line(const char *dir, const char *file, char *buf,
		      size_t len)
{
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	f = fopen(path, "r");
	if (!f || !fgets(buf, len, f))
		snprintf(buf, len, "?");
	buf[strcspn(buf, "\n")] = '\0';
	if (f)
		fclose(f);
}

static int queue_init(struct queue *q, const char *arg)
{
	int index = bpq_lookup(arg);

	if (index < 0) {
		fprintf(stderr, "bpq-sample: %s: %s\n", arg, strerror(-index));
		return -1;
	}
	q->arg = arg;
	snprintf(q->dir, sizeof(q->dir), "%s/bpq%d", BPQ_SYSFS_CLASS, index);
	read_line(q->dir, "name", q->name, sizeof(q->name));
	read_line(q->dir, "strategy", q->strategy, sizeof(q->strategy));
	read_line(q->dir, "capacity_msgs", q->capacity, sizeof(q->capacity));
	return 0;
}

/* One line "name value..." of stats/all into the sample, if it is used. */
static void parse_stat(struct sample *s, char *line)
{
	static const char *const waits[] = {
		"blocked_ns", "throttled_ns", "credit_starved_ns",
		"cwnd_limited_ns", "held_ns",
	};
	char *name = strtok(line, " "), *val = strtok(NULL, " ");
	unsigned int i;
	uint64_t v;

	if (!name || !val)
		return;
	v = strtoull(val, NULL, 10);
	if (!strcmp(name, "latency_hist")) {
		for (i = 0; i < HIST_BUCKETS && val; i++) {
			s->hist[i] = strtoull(val, NULL, 10);
			val = strtok(NULL, " ");
		}
	} else if (!strcmp(name, "depth_msgs")) {
		s->depth = v;
	} else if (!strcmp(name, "enqueued_msgs")) {
		s->enqueued = v;
	} else if (!strcmp(name, "dequeued_msgs")) {
		s->dequeued = v;
	} else if (!strcmp(name, "dropped_newest") ||
		   !strcmp(name, "dropped_oldest")) {
		s->dropped += v;
	} else if (!strcmp(name, "head_age_us")) {
		s->head_age_us = v;
	} else {
		for (i = 0; i < sizeof(waits) / sizeof(waits[0]); i++)
			if (!strcmp(name, waits[i]))
				s->wait_ns += v;
	}
}

static int take_sample(struct queue *q, double t)
{
	char path[96], buf[8192], *line, *next;
	struct sample *s;
	ssize_t len;
	int fd;

	if (q->n == q->max) {
		q->max = q->max ? 2 * q->max : 256;
		s = realloc(q->samples, q->max * sizeof(*s));
		if (!s)
			return -ENOMEM;
		q->samples = s;
	}
	snprintf(path, sizeof(path), "%s/stats/all", q->dir);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return -errno;
	len = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (len <= 0)
		return len < 0 ? -errno : -ENODATA;
	buf[len] = '\0';

	s = &q->samples[q->n];
	memset(s, 0, sizeof(*s));
	s->t = t;
	for (line = buf; line && *line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		parse_stat(s, line);
	}
	q->n++;
	return 0;
}

/* The median's bucket of the deliveries between two samples, in ms. */
static void print_sojourn(FILE *out, const struct sample *a,
			  const struct sample *b)
{
	uint64_t d[HIST_BUCKETS], total = 0, seen = 0;
	unsigned int i;

	for (i = 0; i < HIST_BUCKETS; i++) {
		d[i] = b->hist[i] - a->hist[i];
		total += d[i];
	}
	if (!total) {
		fprintf(out, " - -");
		return;
	}
	for (i = 0; i < HIST_BUCKETS; i++) {
		seen += d[i];
		if (2 * seen >= total)
			break;
	}
	/* bucket i: from 2^(9+i) ns (0 for the first) below 2^(10+i) ns */
	fprintf(out, " %.3f", i ? (double)(1ULL << (9 + i)) / 1e6 : 0.0);
	if (i < HIST_BUCKETS - 1)
		fprintf(out, " %.3f", (double)(1ULL << (10 + i)) / 1e6);
	else
		fprintf(out, " -");	/* the last has no upper bound */
}

static void print_queue(FILE *out, const struct queue *q)
{
	const struct sample *a, *b;
	double dt;
	size_t i;

	fprintf(out, "# queue %s (%s) strategy %s capacity_msgs %s\n",
		q->name, q->dir + strlen(BPQ_SYSFS_CLASS) + 1, q->strategy,
		q->capacity);
	fprintf(out, "# t_s depth admitted dropped delivered head_age_ms sojourn_lo_ms sojourn_hi_ms wait_pct\n");
	for (i = 1; i < q->n; i++) {
		a = &q->samples[i - 1];
		b = &q->samples[i];
		dt = b->t - a->t;
		fprintf(out, "%.3f %llu %llu %llu %llu %.3f", b->t,
			(unsigned long long)b->depth,
			(unsigned long long)(b->enqueued - a->enqueued),
			(unsigned long long)(b->dropped - a->dropped),
			(unsigned long long)(b->dequeued - a->dequeued),
			b->head_age_us / 1e3);
		print_sojourn(out, a, b);
		fprintf(out, " %.1f\n",
			dt > 0 ? (b->wait_ns - a->wait_ns) / (dt * 1e7) : 0.0);
	}
}

/* COMMAND, with the signal mask bpq-sample had before it blocked its own */
static pid_t start_command(char **argv, const sigset_t *mask)
{
	pid_t pid = fork();

	if (pid == 0) {
		sigprocmask(SIG_SETMASK, mask, NULL);
		execvp(argv[0], argv);
		fprintf(stderr, "bpq-sample: %s: %s\n", argv[0],
			strerror(errno));
		_exit(127);
	}
	if (pid < 0)
		perror("bpq-sample: fork");
	return pid;
}

int main(int argc, char **argv)
{
	int opt, nq, i, status = 0, rc = 0, stop = 0, exited = 0;
	unsigned long interval_ms = 50;
	const char *out_path = NULL;
	struct queue *queues;
	char **command = NULL;
	sigset_t stops, mask;
	int64_t start, next;
	pid_t pid = 0;
	FILE *out;

	while ((opt = getopt(argc, argv, "+i:o:")) != -1) {
		switch (opt) {
		case 'i':
			interval_ms = strtoul(optarg, NULL, 0);
			break;
		case 'o':
			out_path = optarg;
			break;
		default:
			goto usage;
		}
	}
	for (nq = 0; optind + nq < argc; nq++) {
		if (!strcmp(argv[optind + nq], "--")) {
			command = &argv[optind + nq + 1];
			break;
		}
	}
	if (!nq || !interval_ms || (command && !*command))
		goto usage;
	queues = calloc(nq, sizeof(*queues));
	if (!queues)
		return 1;
	for (i = 0; i < nq; i++)
		if (queue_init(&queues[i], argv[optind + i]) < 0)
			return 1;

	/* SIGINT and SIGTERM end the sampling: taken in sleep_until() */
	sigemptyset(&stops);
	sigaddset(&stops, SIGINT);
	sigaddset(&stops, SIGTERM);
	sigprocmask(SIG_BLOCK, &stops, &mask);
	start = now_ns();
	next = start;
	for (;;) {
		for (i = 0; i < nq; i++) {
			int ret = take_sample(&queues[i],
					      (now_ns() - start) / 1e9);

			if (ret < 0) {
				fprintf(stderr, "bpq-sample: %s: %s\n",
					queues[i].arg, strerror(-ret));
				rc = 1;
				stop = 1;
			}
		}
		if (command && !pid && !stop) {
			pid = start_command(command, &mask);
			if (pid < 0)
				return 1;
		}
		/* the sample after the command's exit was the last one */
		if (stop || exited)
			break;
		if (pid > 0 && waitpid(pid, &status, WNOHANG) == pid)
			exited = 1;
		next += interval_ms * 1000000LL;
		stop = sleep_until(next, &stops);
	}
	if (pid > 0 && !exited) {
		kill(pid, SIGTERM);
		waitpid(pid, &status, 0);
	}

	out = out_path ? fopen(out_path, "w") : stdout;
	if (!out) {
		perror(out_path);
		return 1;
	}
	for (i = 0; i < nq; i++) {
		if (i)
			fputs("\n\n", out);
		print_queue(out, &queues[i]);
	}
	if (fclose(out) == EOF) {
		perror(out_path ? out_path : "stdout");
		return 1;
	}
	if (!rc && pid > 0)
		rc = WIFEXITED(status) ? WEXITSTATUS(status) :
					 128 + WTERMSIG(status);
	return rc;
usage:
	fprintf(stderr, "usage: %s [-i INTERVAL_MS] [-o FILE] Q... [-- COMMAND [ARG...]]\n",
		argv[0]);
	return 2;
}
