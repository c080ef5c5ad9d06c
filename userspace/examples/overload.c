// SPDX-License-Identifier: MIT
/*
 * bpq-overload: a producer faster than its consumer, on one queue.
 *
 * The producer writes COUNT messages as fast as the queue lets it; the
 * consumer takes RATE messages a second. What the producer meets depends on
 * the queue's strategy: it is slowed down (block, credit), refused
 * (drop-newest), or the consumer sees gaps (drop-oldest). Both sides print
 * what they saw.
 *
 * usage: bpq-overload [-n COUNT] [-r RATE] [-s SIZE] [-c CREDITS] DEVICE
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
	const char *path;
	int wfd, rfd;		/* opened before either side starts */
	unsigned long count;
	unsigned long rate;
	unsigned long credits;	/* granted per message received, 0: none */
	size_t size;
	volatile int producer_done;
	/* producer */
	unsigned long sent, refused, other_errors;
	double produce_s;
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

static void *producer(void *arg)
{
	struct run *run = arg;
	char *buf = calloc(1, run->size);
	double start = now_s();
	int fd = run->wfd;
	unsigned long i;

	if (!buf)
		exit(1);
	for (i = 0; i < run->count; i++) {
		snprintf(buf, run->size, "message %lu", i);
		if (write(fd, buf, run->size) == (ssize_t)run->size)
			run->sent++;
		else if (errno == ENOBUFS || errno == EAGAIN ||
			 errno == ETIMEDOUT)
			run->refused++;
		else
			run->other_errors++;
	}
	run->produce_s = now_s() - start;
	run->producer_done = 1;
	close(fd);
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
	struct timespec pause = { 0, 1000000000L / run->rate };
	struct bpq_recv r = { .size = sizeof(r) };
	int fd = run->rfd;

	if (!buf)
		exit(1);
	grant(fd, run->credits);
	for (;;) {
		struct timespec ts;
		double sojourn;

		r.buf = (uintptr_t)buf;
		r.buf_len = run->size;
		/* once the producer is done, drain what is left and stop */
		r.flags = run->producer_done ? BPQ_IO_NONBLOCK : BPQ_IO_TIMEOUT;
		r.timeout_ms = 200;
		if (ioctl(fd, BPQ_IOC_RECV, &r) < 0) {
			if (run->producer_done &&
			    (errno == EAGAIN || errno == ETIMEDOUT))
				break;
			if (errno == ETIMEDOUT)
				continue;
			perror("BPQ_IOC_RECV");
			break;
		}
		clock_gettime(CLOCK_MONOTONIC, &ts);
		sojourn = (ts.tv_sec * 1e9 + ts.tv_nsec - r.info.timestamp_ns) / 1e6;
		if (sojourn > run->max_sojourn_ms)
			run->max_sojourn_ms = sojourn;
		run->received++;
		run->lost += r.info.lost;
		run->last_seq = r.info.seq;
		grant(fd, run->credits);
		nanosleep(&pause, NULL);
	}
	close(fd);
	free(buf);
	return NULL;
}

int main(int argc, char **argv)
{
	struct run run = { .count = 200, .rate = 100, .size = 64 };
	pthread_t p, c;
	int opt;

	while ((opt = getopt(argc, argv, "n:r:s:c:")) != -1) {
		switch (opt) {
		case 'n':
			run.count = strtoul(optarg, NULL, 0);
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
		default:
			goto usage;
		}
	}
	if (optind != argc - 1 || !run.rate || run.size < 16)
		goto usage;
	run.path = argv[optind];
	/* the reader's file counts losses from its open: open it first */
	run.rfd = open(run.path, O_RDONLY);
	run.wfd = open(run.path, O_WRONLY);
	if (run.rfd < 0 || run.wfd < 0) {
		perror(run.path);
		return 1;
	}

	pthread_create(&c, NULL, consumer, &run);
	pthread_create(&p, NULL, producer, &run);
	pthread_join(p, NULL);
	pthread_join(c, NULL);

	printf("producer: %lu written, %lu refused, %lu other errors in %.2f s\n",
	       run.sent, run.refused, run.other_errors, run.produce_s);
	printf("consumer: %lu received at %lu/s, %lu lost (gaps seen), last seq %llu, longest wait in queue %.1f ms\n",
	       run.received, run.rate, run.lost,
	       (unsigned long long)run.last_seq, run.max_sojourn_ms);
	return 0;
usage:
	fprintf(stderr, "usage: %s [-n COUNT] [-r RATE] [-s SIZE>=16] [-c CREDITS] DEVICE\n",
		argv[0]);
	return 2;
}
