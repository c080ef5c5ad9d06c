// SPDX-License-Identifier: MIT
/*
 * bpq-watch-pressure: a supervisor told by epoll when a queue comes under
 * pressure and when the pressure ends, while a bursty producer runs.
 *
 * It creates the queue "watch-pressure" through /dev/bpq-control (root):
 * drop-newest, 64 messages, pressure from 75 % full until it is below 25 %.
 * A producer thread sends BURSTS bursts of BURST messages as fast as it can,
 * PAUSE ms apart; a consumer thread takes one message every 2 ms. In each
 * burst the queue fills to the high watermark and, drop-newest, refuses the
 * rest; in the pause the consumer drains it below the low watermark. So the
 * supervisor should see one "pressure started" and one "pressure ended" per
 * burst. (Under block the producer would wait instead of being refused,
 * and pressure could come and go several times in one burst.)
 *
 * How the supervisor waits: poll reports EPOLLPRI for as long as the queue
 * is under pressure, and the module wakes the queue's pollers on both edges.
 * epoll, though, returns an event only if the file's poll mask then has a
 * bit that was asked for, and at the falling edge EPOLLPRI is gone. So the
 * supervisor asks for EPOLLPRI | EPOLLIN, edge-triggered: every wake-up
 * (the pressure edges, and each message queued) returns one event, and
 * whether EPOLLPRI is in it is the queue's state at that moment. A 100 ms
 * timeout covers the one case that returns nothing: pressure ending on an
 * empty queue (a flush).
 *
 * usage: bpq-watch-pressure [-b BURSTS] [-n BURST] [-p PAUSE_MS]
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include <bpq.h>

#define QUEUE		"watch-pressure"
#define MSG_SIZE	64

static struct {
	unsigned long bursts, burst, pause_ms;
	int fd;				/* producer, consumer, supervisor */
	unsigned long sent, refused, received;
	volatile int producer_done, consumer_done;
} w = { .bursts = 5, .burst = 100, .pause_ms = 300 };

static struct timespec start;

static double elapsed_s(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return now.tv_sec - start.tv_sec + (now.tv_nsec - start.tv_nsec) / 1e9;
}

static void sleep_ms(unsigned long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

static void *producer(void *arg)
{
	char msg[MSG_SIZE] = "burst";
	unsigned long b, i;
	ssize_t ret;

	for (b = 0; b < w.bursts; b++) {
		for (i = 0; i < w.burst; i++) {
			ret = bpq_send(w.fd, msg, sizeof(msg), 0);
			if (ret == -ENOBUFS)
				w.refused++;	/* drop-newest under pressure */
			else if (ret < 0)
				fprintf(stderr, "send: %s\n", strerror(-ret));
			else
				w.sent++;
		}
		sleep_ms(w.pause_ms);
	}
	w.producer_done = 1;
	return arg;
}

static void *consumer(void *arg)
{
	char msg[MSG_SIZE];
	ssize_t n;

	for (;;) {
		n = bpq_recv(w.fd, msg, sizeof(msg), NULL, 100);
		if (n >= 0) {
			w.received++;
			sleep_ms(2);
		} else if (n == -ETIMEDOUT && w.producer_done) {
			break;
		} else if (n != -ETIMEDOUT) {
			fprintf(stderr, "receive: %s\n", strerror(-n));
			break;
		}
	}
	w.consumer_done = 1;
	return arg;
}

/* The supervisor: print each edge of pressure until the others are done. */
static int supervise(unsigned long *starts, unsigned long *ends)
{
	struct epoll_event ev = { .events = EPOLLPRI | EPOLLIN | EPOLLET };
	int ep, n, pressure = 0, now;
	struct bpq_stats stats;
	struct pollfd pfd;

	ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, w.fd, &ev) < 0) {
		perror("epoll");
		return -1;
	}
	while (!w.consumer_done) {
		n = epoll_wait(ep, &ev, 1, 100);
		if (n < 0 && errno != EINTR) {
			perror("epoll_wait");
			break;
		}
		if (n <= 0) {
			/* nothing happened: look at the state directly */
			pfd = (struct pollfd){ .fd = w.fd, .events = POLLPRI };
			poll(&pfd, 1, 0);
			ev.events = pfd.revents;
		}
		if (ev.events & (EPOLLERR | EPOLLHUP)) {
			fprintf(stderr, "the queue was destroyed\n");
			break;
		}
		now = !!(ev.events & EPOLLPRI);
		if (now == pressure)
			continue;
		pressure = now;
		if (bpq_get_stats(w.fd, &stats) < 0)
			stats.depth_msgs = 0;
		printf("%8.3f s  pressure %s (%llu messages queued)\n",
		       elapsed_s(), pressure ? "started" : "ended  ",
		       (unsigned long long)stats.depth_msgs);
		if (pressure)
			(*starts)++;
		else
			(*ends)++;
	}
	close(ep);
	return 0;
}

static int setup_queue(unsigned int *index)
{
	struct bpq_config cfg;
	int ret, fd;

	ret = bpq_create(QUEUE, index);
	if (ret < 0) {
		fprintf(stderr, "create %s: %s%s\n", QUEUE, strerror(-ret),
			ret == -EEXIST ?
			" (left from an earlier run? bpqctl destroy it)" : "");
		return ret;
	}
	fd = bpq_open(QUEUE, O_RDWR);
	ret = fd < 0 ? fd : bpq_get_config(fd, &cfg);
	if (!ret) {
		cfg.strategy = BPQ_STRATEGY_DROP_NEWEST;
		cfg.capacity_msgs = 64;
		cfg.high_watermark = 75;
		cfg.low_watermark = 25;
		ret = bpq_set_config(fd, &cfg);
	}
	if (ret < 0) {
		fprintf(stderr, "configure %s: %s\n", QUEUE, strerror(-ret));
		if (fd >= 0)
			close(fd);
		bpq_destroy(*index);
		return ret;
	}
	return fd;
}

int main(int argc, char **argv)
{
	unsigned long starts = 0, ends = 0;
	unsigned int index;
	pthread_t p, c;
	int opt, ret;

	while ((opt = getopt(argc, argv, "b:n:p:")) != -1) {
		switch (opt) {
		case 'b':
			w.bursts = strtoul(optarg, NULL, 0);
			break;
		case 'n':
			w.burst = strtoul(optarg, NULL, 0);
			break;
		case 'p':
			w.pause_ms = strtoul(optarg, NULL, 0);
			break;
		default:
			goto usage;
		}
	}
	if (optind != argc)
		goto usage;

	w.fd = setup_queue(&index);
	if (w.fd < 0)
		return 1;
	printf("watching bpq%u (%s): drop-newest, 64 messages, pressure at 75%%, ends below 25%%\n",
	       index, QUEUE);
	printf("producer: %lu bursts of %lu messages, %lu ms apart; consumer: one message every 2 ms\n",
	       w.bursts, w.burst, w.pause_ms);
	clock_gettime(CLOCK_MONOTONIC, &start);
	pthread_create(&c, NULL, consumer, NULL);
	pthread_create(&p, NULL, producer, NULL);
	ret = supervise(&starts, &ends);
	pthread_join(p, NULL);
	pthread_join(c, NULL);

	printf("producer: %lu sent, %lu refused\n", w.sent, w.refused);
	printf("consumer: %lu received\n", w.received);
	printf("supervisor: %lu pressure starts, %lu ends\n", starts, ends);
	close(w.fd);
	bpq_destroy(index);
	return ret < 0;
usage:
	fprintf(stderr, "usage: %s [-b BURSTS] [-n BURST] [-p PAUSE_MS]\n",
		argv[0]);
	return 2;
}
