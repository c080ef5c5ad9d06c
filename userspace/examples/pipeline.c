// SPDX-License-Identifier: MIT
/*
 * bpq-pipeline: a small stream-processing pipeline, one queue per hand-off,
 * each queue with the strategy that hand-off needs.
 *
 *   source --[pipeline-in: block]--> worker --[pipeline-work: credit]--> sink
 *     sink --[pipeline-recent: drop-oldest]--> a dashboard (here: main, at
 *                                              the end)
 *
 * pipeline-in, block: every record of the source must arrive, so when the
 *   worker falls behind, the source is made to wait. Nothing is lost and
 *   memory stays bounded by the queue's capacity.
 * pipeline-work, credit with auto_credit=ack: the sink pulls. It grants
 *   WINDOW credits up front, and each record it acknowledges when it has
 *   finished with it (bpq_ack(), with the record's enqueue time for the
 *   queue's processing histogram) returns one, so at most WINDOW records are
 *   ever waiting for it, however large the queue. The worker waits for
 *   credit, and through pipeline-in the source waits with it: the slowest
 *   stage sets the pace of the whole pipeline.
 * pipeline-recent, drop-oldest: the sink publishes one result line per
 *   record for a dashboard that only wants the latest ones. Nobody ever
 *   waits on it; when nobody reads, the oldest results are evicted and a
 *   reader learns how many it missed (struct bpq_msg_info.lost).
 *
 * The worker uppercases each record and appends a checksum (FNV-1a); the
 * sink checks the checksum and that no record is missing or out of order.
 * Nobody counts the records but the source: it ends its stream on
 * pipeline-in (bpq_shutdown(), BPQ_SHUTDOWN_COMPLETE) after the last one;
 * the worker reads until bpq_recv() returns 0, end of file, and then ends
 * pipeline-work the same way; the sink reads until end of file. A stage
 * that fails ends its output with BPQ_SHUTDOWN_FAIL (the next stage's
 * receive then fails with ECONNRESET) or cancels its input (the previous
 * stage's send fails with EPIPE), so that no stage waits for a dead one.
 *
 * With -f K every K-th record of the source is poison: the sink cannot
 * process it, so it acknowledges it with BPQ_ACK_NACK (a negative
 * acknowledgment: the queue counts it in nacked; it still returns the
 * credit) and counts it as failed. The exit status is 0 when the only
 * failed records are the poisoned ones and every record arrived, intact
 * and in order.
 *
 * The program creates its queues through /dev/bpq-control (root), runs COUNT
 * records through them, prints what each stage and each queue saw, and
 * destroys the queues.
 *
 * usage: bpq-pipeline [-n COUNT] [-w WINDOW] [-d SINK_DELAY_US] [-f K]
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <bpq.h>

#define TIMEOUT_MS	5000	/* a stage stuck this long is a failure */
#define RECENT		8	/* results pipeline-recent keeps */
#define REC_MAX		128

enum { IN, WORK, RECENT_Q, NR_QUEUES };

static const struct {
	const char *name;
	unsigned int strategy;
	unsigned int capacity_msgs;
	unsigned int auto_credit;
} queues[NR_QUEUES] = {
	[IN] = { "pipeline-in", BPQ_STRATEGY_BLOCK, 16, 0 },
	/* the sink's acknowledgments return the credits */
	[WORK] = { "pipeline-work", BPQ_STRATEGY_CREDIT, 64,
		   BPQ_AUTO_CREDIT_ACK },
	[RECENT_Q] = { "pipeline-recent", BPQ_STRATEGY_DROP_OLDEST, RECENT, 0 },
};

static struct {
	unsigned long count, window, sink_delay_us, poison_every;
	unsigned int index[NR_QUEUES];
	/* one file per end, opened before any stage starts */
	int in_w, in_r, work_w, work_r, recent_w, recent_r;
	/* what each stage did */
	unsigned long sent, poisoned, transformed, received, processed;
	unsigned long nacked, lost, bad, granted, acked;
	int worker_eof, sink_eof;
	volatile int failed;
} p = {
	.count = 1000, .window = 4, .sink_delay_us = 200,
	.in_w = -1, .in_r = -1, .work_w = -1, .work_r = -1,
	.recent_w = -1, .recent_r = -1,
};

static void stage_failed(const char *stage, const char *what, int err)
{
	fprintf(stderr, "%s: %s: %s\n", stage, what, strerror(-err));
	p.failed = 1;
}

/*
 * The end of a stage's output: complete, or failed with @err (a negative
 * errno; one a stream cannot carry becomes EIO).
 */
static void end_output(int fd, int err)
{
	err = -err;
	if (err == EAGAIN || err == EINTR || err > 133)
		err = EIO;
	bpq_shutdown(fd, err ? BPQ_SHUTDOWN_FAIL : BPQ_SHUTDOWN_COMPLETE, err);
}

/* A stage gives up on its input: the stage before it stops at once. */
static void cancel_input(int fd)
{
	bpq_shutdown(fd, BPQ_SHUTDOWN_CANCEL, 0);
}

static int is_poison(unsigned long i)
{
	return p.poison_every && (i + 1) % p.poison_every == 0;
}

static uint32_t fnv1a(const char *s, size_t n)
{
	uint32_t h = 2166136261u;

	while (n--) {
		h ^= (unsigned char)*s++;
		h *= 16777619u;
	}
	return h;
}

static void *source(void *arg)
{
	char rec[REC_MAX];
	unsigned long i;
	ssize_t ret;
	int len;

	for (i = 0; i < p.count && !p.failed; i++) {
		len = snprintf(rec, sizeof(rec), is_poison(i) ?
			       "record %06lu: poison, cannot be processed" :
			       "record %06lu: the quick brown fox", i);
		ret = bpq_send(p.in_w, rec, len, TIMEOUT_MS);
		if (ret < 0) {
			stage_failed("source", "send", ret);
			end_output(p.in_w, ret);
			return arg;
		}
		p.sent++;
		p.poisoned += is_poison(i);
	}
	/* the last record: the worker reads to end of file */
	end_output(p.in_w, 0);
	return arg;
}

static void *worker(void *arg)
{
	char rec[REC_MAX];
	ssize_t n, ret;
	int i;

	for (;;) {
		/* room left for " #" and 8 hex digits and the NUL */
		n = bpq_recv(p.in_r, rec, sizeof(rec) - 11, NULL, TIMEOUT_MS);
		if (n == 0) {
			/* the source's end: ours follows it */
			p.worker_eof = 1;
			end_output(p.work_w, 0);
			break;
		}
		if (n < 0) {
			stage_failed("worker", "receive", n);
			end_output(p.work_w, n);
			break;
		}
		for (i = 0; i < n; i++)
			rec[i] = toupper((unsigned char)rec[i]);
		n += sprintf(rec + n, " #%08x", fnv1a(rec, n));
		/* waits here while the sink has granted no credit */
		ret = bpq_send(p.work_w, rec, n, TIMEOUT_MS);
		if (ret < 0) {
			stage_failed("worker", "send", ret);
			cancel_input(p.in_r);
			break;
		}
		p.transformed++;
	}
	return arg;
}

static void *sink(void *arg)
{
	struct timespec delay = { 0, p.sink_delay_us * 1000 };
	struct bpq_msg_info info;
	char rec[REC_MAX], result[REC_MAX];
	unsigned long expect_seq = 1;
	unsigned int flags;
	const char *hash;
	int ret, len;
	ssize_t n;

	ret = bpq_grant(p.work_r, p.window);
	if (ret < 0) {
		stage_failed("sink", "grant", ret);
		return arg;
	}
	p.granted = p.window;
	for (;;) {
		n = bpq_recv(p.work_r, rec, sizeof(rec) - 1, &info, TIMEOUT_MS);
		if (n == 0) {
			p.sink_eof = 1;		/* the worker's end */
			break;
		}
		if (n < 0) {
			stage_failed("sink", "receive", n);
			cancel_input(p.work_r);
			break;
		}
		rec[n] = '\0';
		p.received++;
		p.lost += info.lost;
		if (info.seq != expect_seq)
			p.bad++;
		expect_seq = info.seq + 1;
		hash = strrchr(rec, '#');
		if (!hash || strtoul(hash + 1, NULL, 16) !=
			     fnv1a(rec, hash - 1 - rec))
			p.bad++;

		flags = BPQ_ACK_TIMESTAMP;
		if (strstr(rec, "POISON")) {
			/* cannot be processed: say so, and go on */
			flags |= BPQ_ACK_NACK;
			p.nacked++;
		} else {
			nanosleep(&delay, NULL);	/* the slow part */
			len = snprintf(result, sizeof(result), "%.14s %s",
				       rec, hash ? hash : "-");
			/* never waits: drop-oldest evicts instead */
			ret = bpq_send(p.recent_w, result, len, 0);
			if (ret < 0)
				stage_failed("sink", "publish", ret);
			p.processed++;
		}

		/*
		 * Done with one record: the acknowledgment returns its credit
		 * (auto_credit=ack), so the worker may send one more, and
		 * its enqueue time goes into the processing histogram.
		 */
		ret = bpq_ack(p.work_r, 1, flags, info.timestamp_ns);
		if (ret < 0) {
			stage_failed("sink", "acknowledge", ret);
			cancel_input(p.work_r);
			break;
		}
		p.acked += ret;
	}
	return arg;
}

static int setup_queue(int q)
{
	struct bpq_config cfg;
	int ret, fd;

	ret = bpq_create(queues[q].name, &p.index[q]);
	if (ret < 0) {
		fprintf(stderr, "create %s: %s%s\n", queues[q].name,
			strerror(-ret), ret == -EEXIST ?
			" (left from an earlier run? bpqctl destroy it)" : "");
		return ret;
	}
	fd = bpq_open(queues[q].name, O_RDWR);
	ret = fd < 0 ? fd : bpq_get_config(fd, &cfg);
	if (!ret) {
		cfg.strategy = queues[q].strategy;
		cfg.capacity_msgs = queues[q].capacity_msgs;
		cfg.auto_credit = queues[q].auto_credit;
		cfg.write_timeout_ms = 0;
		ret = bpq_set_config(fd, &cfg);
	}
	if (ret < 0) {
		fprintf(stderr, "configure %s: %s\n", queues[q].name,
			strerror(-ret));
		if (fd >= 0)
			close(fd);
		bpq_destroy(p.index[q]);
		return ret;
	}
	return fd;
}

static int open_end(int q, int flags)
{
	int fd = bpq_open(queues[q].name, flags);

	if (fd < 0)
		fprintf(stderr, "open %s: %s\n", queues[q].name,
			strerror(-fd));
	return fd;
}

static void print_queue(int q, int fd)
{
	struct bpq_stats s;

	if (bpq_get_stats(fd, &s) < 0)
		return;
	printf("  %-15s bpq%-2u %-11s enqueued %llu, dequeued %llu, evicted %llu, writers held back %llu (%.1f ms waiting for room, %.1f ms for credit)\n",
	       queues[q].name, p.index[q],
	       bpq_strategy_name(queues[q].strategy),
	       (unsigned long long)s.enqueued_msgs,
	       (unsigned long long)s.dequeued_msgs,
	       (unsigned long long)s.dropped_oldest,
	       (unsigned long long)s.backpressure_applied, s.blocked_ns / 1e6,
	       s.credit_starved_ns / 1e6);
	if (q == WORK)
		printf("  %-15s acknowledged %llu, nacked %llu, unacknowledged %llu\n",
		       queues[q].name, (unsigned long long)s.acked_msgs,
		       (unsigned long long)s.nacked,
		       (unsigned long long)s.unacked);
}

static uint64_t queue_nacked(int fd)
{
	struct bpq_stats s;

	return bpq_get_stats(fd, &s) < 0 ? UINT64_MAX : s.nacked;
}

/* What a dashboard reading pipeline-recent now would see. */
static unsigned long read_recent(unsigned long *missed)
{
	struct bpq_msg_info info;
	char result[REC_MAX];
	unsigned long kept = 0;
	ssize_t n;

	*missed = 0;
	while ((n = bpq_recv(p.recent_r, result, sizeof(result) - 1, &info,
			     0)) >= 0) {
		result[n] = '\0';
		*missed += info.lost;
		kept++;
	}
	if (kept)
		printf("recent: latest result, message %llu: %s\n",
		       (unsigned long long)info.seq, result);
	return kept;
}

int main(int argc, char **argv)
{
	int fds[NR_QUEUES] = { -1, -1, -1 };
	unsigned long kept, missed;
	pthread_t t[3];
	int opt, q, created = 0;

	while ((opt = getopt(argc, argv, "n:w:d:f:")) != -1) {
		switch (opt) {
		case 'n':
			p.count = strtoul(optarg, NULL, 0);
			break;
		case 'w':
			p.window = strtoul(optarg, NULL, 0);
			break;
		case 'd':
			p.sink_delay_us = strtoul(optarg, NULL, 0);
			break;
		case 'f':
			p.poison_every = strtoul(optarg, NULL, 0);
			break;
		default:
			goto usage;
		}
	}
	if (optind != argc || !p.count || !p.window ||
	    p.sink_delay_us >= 1000000)
		goto usage;

	for (q = 0; q < NR_QUEUES; q++) {
		fds[q] = setup_queue(q);
		if (fds[q] < 0) {
			p.failed = 1;
			goto out;
		}
		created++;
	}
	/* a reader's file counts losses from its open: open them first */
	p.in_r = open_end(IN, O_RDONLY);
	p.work_r = open_end(WORK, O_RDONLY);
	p.recent_r = open_end(RECENT_Q, O_RDONLY);
	p.in_w = open_end(IN, O_WRONLY);
	p.work_w = open_end(WORK, O_WRONLY);
	p.recent_w = open_end(RECENT_Q, O_WRONLY);
	if (p.in_r < 0 || p.work_r < 0 || p.recent_r < 0 || p.in_w < 0 ||
	    p.work_w < 0 || p.recent_w < 0) {
		p.failed = 1;
		goto out;
	}

	printf("pipeline: %lu records, credit window %lu, sink %lu us per record",
	       p.count, p.window, p.sink_delay_us);
	if (p.poison_every)
		printf(", every %lu. poisoned", p.poison_every);
	putchar('\n');
	pthread_create(&t[0], NULL, sink, NULL);
	pthread_create(&t[1], NULL, worker, NULL);
	pthread_create(&t[2], NULL, source, NULL);
	for (q = 2; q >= 0; q--)
		pthread_join(t[q], NULL);

	printf("source: %lu records sent, %lu poisoned\n", p.sent, p.poisoned);
	printf("worker: %lu records transformed, %s\n", p.transformed,
	       p.worker_eof ? "then end of stream" : "no end of stream");
	printf("sink: %lu records received, %s\n", p.received,
	       p.sink_eof ? "then end of stream" : "no end of stream");
	printf("sink: %lu processed, %lu failed (nacked), %lu lost, %lu bad, %lu credits granted, %lu acknowledged\n",
	       p.processed, p.nacked, p.lost, p.bad, p.granted, p.acked);
	kept = read_recent(&missed);
	printf("recent: %lu results kept, %lu evicted\n", kept, missed);
	printf("queues:\n");
	for (q = 0; q < NR_QUEUES; q++)
		print_queue(q, fds[q]);
	/* failed records are fine if they are the poisoned ones, no others */
	if (p.lost || p.bad || !p.worker_eof || !p.sink_eof ||
	    p.received != p.count || p.nacked != p.poisoned ||
	    queue_nacked(fds[WORK]) != p.nacked)
		p.failed = 1;
out:
	/* close(-1), for a file never opened, is harmless */
	close(p.in_r);
	close(p.work_r);
	close(p.recent_r);
	close(p.in_w);
	close(p.work_w);
	close(p.recent_w);
	for (q = 0; q < created; q++) {
		close(fds[q]);
		bpq_destroy(p.index[q]);
	}
	return p.failed;
usage:
	fprintf(stderr, "usage: %s [-n COUNT] [-w WINDOW] [-d SINK_DELAY_US] [-f K]\n",
		argv[0]);
	return 2;
}
