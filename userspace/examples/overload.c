// SPDX-License-Identifier: MIT
/*
 * bpq-overload: a producer faster than its consumer, on one queue or two.
 *
 * The producer writes COUNT messages as fast as the queue lets it, or
 * PACE a second with -p; the consumer takes RATE messages a second. What
 * the producer meets depends on the queue's strategy: it is slowed down
 * (block, credit, adaptive), refused (drop-newest), or the consumer sees
 * gaps (drop-oldest). Both sides print what they saw.
 *
 * With -u UPSTREAM the overload crosses two queues, a pipeline of three
 * stages: the producer writes into UPSTREAM, a relay thread moves each
 * message on into DEVICE as soon as it can, and the consumer reads DEVICE.
 * The relay stops once the producer is done and UPSTREAM is empty. Whether the producer feels the consumer's pace then
 * depends on DEVICE's strategy, and on a link from UPSTREAM to DEVICE
 * ("bpqctl link UPSTREAM DEVICE": DEVICE's pressure holds UPSTREAM's
 * writers; bpq(4), "Links").
 *
 * usage: bpq-overload [-n COUNT] [-p PACE] [-r RATE] [-s SIZE] [-c CREDITS]
 *                     [-u UPSTREAM] DEVICE
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include <linux/bpq.h>

struct run {
	const char *path, *upstream;
	int wfd, rfd;		/* opened before either side starts */
	int up_wfd, up_rfd;	/* UPSTREAM's, with -u */
	unsigned long count;
	unsigned long pace;	/* the producer's messages a second, 0: no limit */
	unsigned long rate;
	unsigned long credits;	/* granted per message received, 0: none */
	size_t size;
	/* the consumer's input has no more writer: it drains and stops */
	volatile int input_done;
	/* producer */
	unsigned long sent, refused, other_errors;
	double produce_s;
	/* relay */
	volatile int producer_done;
	unsigned long relayed, relay_refused, relay_errors;
	/* consumer */
	unsigned long received, lost;
	uint64_t last_seq;
	double max_sojourn_ms;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void sleep_until(double t)
{
	struct timespec ts;

	ts.tv_sec = t;
	ts.tv_nsec = (t - ts.tv_sec) * 1e9;
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) ==
	       EINTR)
		;
}

/*
 * One step at PER_S a second: sleep until *next, or not at all if that has
 * passed (a side that was held up does not catch up afterwards), and set
 * *next one step later.
 */
static void pace(double *next, unsigned long per_s)
{
	double now = now_s();

	if (*next < now)
		*next = now;
	sleep_until(*next);
	*next += 1.0 / per_s;
}

/* A write that the queue refused rather than failed. */
static int refused(int err)
{
	return err == ENOBUFS || err == EAGAIN || err == ETIMEDOUT;
}

static void *producer(void *arg)
{
	struct run *run = arg;
	char *buf = calloc(1, run->size);
	double start = now_s(), next = start;
	int fd = run->upstream ? run->up_wfd : run->wfd;
	unsigned long i;

	if (!buf)
		exit(1);
	for (i = 0; i < run->count; i++) {
		if (run->pace)
			pace(&next, run->pace);
		snprintf(buf, run->size, "message %lu", i);
		if (write(fd, buf, run->size) == (ssize_t)run->size)
			run->sent++;
		else if (refused(errno))
			run->refused++;
		else
			run->other_errors++;
	}
	run->produce_s = now_s() - start;
	run->producer_done = 1;
	if (!run->upstream)
		run->input_done = 1;
	close(fd);
	free(buf);
	return NULL;
}

/*
 * The next message of fd, waiting for one while *done is not set, and once
 * it is, taking only what is left. Returns the message's length, or 0 when
 * there is no more: the input is done and drained, its stream has ended,
 * or the receive failed (said on stderr).
 */
static ssize_t take(int fd, char *buf, size_t len, volatile int *done,
		    struct bpq_msg_info *info)
{
	struct bpq_recv r = { .size = sizeof(r) };
	int ret;

	for (;;) {
		r.buf = (uintptr_t)buf;
		r.buf_len = len;
		r.flags = *done ? BPQ_IO_NONBLOCK : BPQ_IO_TIMEOUT;
		r.timeout_ms = 200;
		ret = ioctl(fd, BPQ_IOC_RECV, &r);
		if (ret >= 0) {
			if (info)
				*info = r.info;
			return ret;
		}
		if (errno == ETIMEDOUT)
			continue;	/* without waiting, if done meanwhile */
		if (errno != EAGAIN || !(r.flags & BPQ_IO_NONBLOCK))
			perror("BPQ_IOC_RECV");
		return 0;
	}
}

/* -u: from UPSTREAM into DEVICE, each message as soon as it comes. */
static void *relay(void *arg)
{
	struct run *run = arg;
	char *buf = malloc(run->size);
	ssize_t n;

	if (!buf)
		exit(1);
	while ((n = take(run->up_rfd, buf, run->size, &run->producer_done,
			 NULL)) > 0) {
		if (write(run->wfd, buf, n) == n)
			run->relayed++;
		else if (refused(errno))
			run->relay_refused++;
		else
			run->relay_errors++;
	}
	run->input_done = 1;
	close(run->up_rfd);
	close(run->wfd);
	free(buf);
	return NULL;
}

static void grant(int fd, unsigned long n)
{
	struct bpq_grant g = { .size = sizeof(g), .credits = n };

	if (n && ioctl(fd, BPQ_IOC_GRANT, &g) < 0)
		perror("BPQ_IOC_GRANT");
}

static void *consumer(void *arg)
{
	struct run *run = arg;
	char *buf = malloc(run->size);
	double next = now_s();
	struct bpq_msg_info info;
	int fd = run->rfd;

	if (!buf)
		exit(1);
	grant(fd, run->credits);
	/* once the input is done, drain what is left and stop */
	while (take(fd, buf, run->size, &run->input_done, &info) > 0) {
		struct timespec ts;
		double sojourn;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		sojourn = (ts.tv_sec * 1e9 + ts.tv_nsec - info.timestamp_ns) / 1e6;
		if (sojourn > run->max_sojourn_ms)
			run->max_sojourn_ms = sojourn;
		run->received++;
		run->lost += info.lost;
		run->last_seq = info.seq;
		grant(fd, run->credits);
		pace(&next, run->rate);
	}
	close(fd);
	free(buf);
	return NULL;
}

/* Open the reading end first: the reader's file counts losses from its open. */
static int open_ends(const char *path, int *rfd, int *wfd)
{
	*rfd = open(path, O_RDONLY);
	*wfd = open(path, O_WRONLY);
	if (*rfd < 0 || *wfd < 0) {
		perror(path);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct run run = { .count = 200, .rate = 100, .size = 64 };
	pthread_t p, c, r;
	int opt;

	while ((opt = getopt(argc, argv, "n:p:r:s:c:u:")) != -1) {
		switch (opt) {
		case 'n':
			run.count = strtoul(optarg, NULL, 0);
			break;
		case 'p':
			run.pace = strtoul(optarg, NULL, 0);
			break;
		case 'r':
			run.rate = strtoul(optarg, NULL, 0);
			break;
		case 's':
			run.size = strtoul(optarg, NULL, 0);
			break;
		case 'c':
			run.credits = strtoul(optarg, NULL, 0);
			break;
		case 'u':
			run.upstream = optarg;
			break;
		default:
			goto usage;
		}
	}
	if (optind != argc - 1 || !run.rate || run.size < 16)
		goto usage;
	run.path = argv[optind];
	if (open_ends(run.path, &run.rfd, &run.wfd) < 0 ||
	    (run.upstream &&
	     open_ends(run.upstream, &run.up_rfd, &run.up_wfd) < 0))
		return 1;

	pthread_create(&c, NULL, consumer, &run);
	if (run.upstream)
		pthread_create(&r, NULL, relay, &run);
	pthread_create(&p, NULL, producer, &run);
	pthread_join(p, NULL);
	if (run.upstream)
		pthread_join(r, NULL);
	pthread_join(c, NULL);

	printf("producer: %lu written, %lu refused, %lu other errors in %.2f s\n",
	       run.sent, run.refused, run.other_errors, run.produce_s);
	if (run.upstream)
		printf("relay: %lu moved on, %lu refused, %lu other errors\n",
		       run.relayed, run.relay_refused, run.relay_errors);
	printf("consumer: %lu received at %lu/s, %lu lost (gaps seen), last seq %llu, longest wait in queue %.1f ms\n",
	       run.received, run.rate, run.lost,
	       (unsigned long long)run.last_seq, run.max_sojourn_ms);
	return 0;
usage:
	fprintf(stderr, "usage: %s [-n COUNT] [-p PACE] [-r RATE] [-s SIZE>=16] [-c CREDITS] [-u UPSTREAM] DEVICE\n",
		argv[0]);
	return 2;
}
