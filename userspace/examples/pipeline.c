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
 * Each stage is libbpq's bpq_stage_run() with a function of its own: the
 * source makes the records, the worker uppercases each and appends a
 * checksum (FNV-1a), the sink checks the checksum and that no record is
 * missing or out of order. bpq_stage_run() moves them BATCH at a time,
 * acknowledges what the function handed on, and carries the streams' ends:
 * nobody counts the records but the source, whose function says the end
 * after the last one (BPQ_STAGE_END); that ends pipeline-in, the worker's
 * stage reads to its end of file and ends pipeline-work, and the sink's
 * stage reads to that. A stage that fails ends its output with a failure
 * (the next stage's receive then fails with ECONNRESET) and cancels its
 * input (the previous stage's send fails with EPIPE), so that no stage
 * waits for a dead one.
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
 *                     [-b BATCH]
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
	unsigned long count, window, sink_delay_us, poison_every, batch;
	unsigned int index[NR_QUEUES];
	/* one file per end, opened before any stage starts */
	int in_w, in_r, work_w, work_r, recent_w, recent_r;
	/* what each stage did */
	unsigned long next, poisoned, lost, bad;
	uint64_t expect_seq;
	struct bpq_stage source, worker, sink;
	int worker_eof, sink_eof;
	volatile int failed;
} p = {
	.count = 1000, .window = 4, .sink_delay_us = 200, .batch = 8,
	.in_w = -1, .in_r = -1, .work_w = -1, .work_r = -1,
	.recent_w = -1, .recent_r = -1, .expect_seq = 1,
};

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

/* The source makes a record a call, until COUNT of them. */
static int produce(struct bpq_stage *st, const void *data, size_t len,
		   const struct bpq_msg_info *info)
{
	char rec[REC_MAX];
	int n;

	(void)data, (void)len, (void)info;
	if (p.next == p.count)
		return BPQ_STAGE_END;
	n = snprintf(rec, sizeof(rec), is_poison(p.next) ?
		     "record %06lu: poison, cannot be processed" :
		     "record %06lu: the quick brown fox", p.next);
	p.poisoned += is_poison(p.next);
	p.next++;
	return bpq_stage_emit(st, rec, n);
}

/* The worker uppercases a record and appends its checksum. */
static int transform(struct bpq_stage *st, const void *data, size_t len,
		     const struct bpq_msg_info *info)
{
	char rec[REC_MAX];
	size_t i;

	(void)info;
	/* room left for " #" and 8 hex digits and the NUL */
	if (len > sizeof(rec) - 11)
		return -EMSGSIZE;
	for (i = 0; i < len; i++)
		rec[i] = toupper(((const unsigned char *)data)[i]);
	len += sprintf(rec + len, " #%08x", fnv1a(rec, len));
	/* the send waits while the sink has granted no credit */
	return bpq_stage_emit(st, rec, len);
}

/*
 * The sink checks a record, processes it (slowly) and publishes its
 * result; a poisoned one it cannot process, and NACKs. The stage
 * acknowledges each record once its result is out, and that returns its
 * credit (auto_credit=ack) so the worker may send one more.
 */
static int consume(struct bpq_stage *st, const void *data, size_t len,
		   const struct bpq_msg_info *info)
{
	struct timespec delay = { 0, p.sink_delay_us * 1000 };
	char rec[REC_MAX], result[REC_MAX];
	const char *hash;
	int n;

	if (len >= sizeof(rec))
		return -EMSGSIZE;
	memcpy(rec, data, len);
	rec[len] = '\0';
	p.lost += info->lost;
	if (info->seq != p.expect_seq)
		p.bad++;
	p.expect_seq = info->seq + 1;
	hash = strrchr(rec, '#');
	if (!hash || strtoul(hash + 1, NULL, 16) != fnv1a(rec, hash - 1 - rec))
		p.bad++;
	if (strstr(rec, "POISON"))
		return BPQ_STAGE_NACK;	/* cannot be processed: go on */
	nanosleep(&delay, NULL);	/* the slow part */
	n = snprintf(result, sizeof(result), "%.14s %s", rec,
		     hash ? hash : "-");
	/* never waits: drop-oldest evicts instead */
	return bpq_stage_emit(st, result, n);
}

static void *run_stage(void *arg)
{
	struct bpq_stage *st = arg;
	const char *name = st == &p.source ? "source" :
			   st == &p.worker ? "worker" : "sink";
	int ret = bpq_stage_run(st);

	if (ret < 0) {
		fprintf(stderr, "%s: %s\n", name, strerror(-ret));
		p.failed = 1;
	} else if (st == &p.worker) {
		p.worker_eof = 1;	/* the source's end, and ours after it */
	} else if (st == &p.sink) {
		p.sink_eof = 1;
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

/* The queue's count of NACKs and acknowledgments, UINT64_MAX if unknown. */
static uint64_t queue_nacked(int fd)
{
	struct bpq_stats s;

	return bpq_get_stats(fd, &s) < 0 ? UINT64_MAX : s.nacked;
}

static uint64_t queue_acked(int fd)
{
	struct bpq_stats s;

	return bpq_get_stats(fd, &s) < 0 ? UINT64_MAX : s.acked_msgs;
}

/*
 * What a dashboard reading pipeline-recent now would see: the results
 * kept, up to the end of the sink's stream.
 */
static unsigned long read_recent(unsigned long *missed)
{
	struct bpq_msg_info info;
	char result[REC_MAX], latest[REC_MAX];
	unsigned long long seq = 0;
	unsigned long kept = 0;
	ssize_t n;

	*missed = 0;
	while ((n = bpq_recv(p.recent_r, result, sizeof(result) - 1, &info,
			     0)) > 0) {
		result[n] = '\0';
		memcpy(latest, result, n + 1);
		seq = info.seq;
		*missed += info.lost;
		kept++;
	}
	if (kept)
		printf("recent: latest result, message %llu: %s\n", seq, latest);
	return kept;
}

int main(int argc, char **argv)
{
	int fds[NR_QUEUES] = { -1, -1, -1 };
	unsigned long kept, missed;
	pthread_t t[3];
	int opt, q, created = 0;

	while ((opt = getopt(argc, argv, "n:w:d:f:b:")) != -1) {
		switch (opt) {
		case 'b':
			p.batch = strtoul(optarg, NULL, 0);
			break;
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
	if (optind != argc || !p.count || !p.window || !p.batch ||
	    p.batch > 1024 || p.sink_delay_us >= 1000000)
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

	printf("pipeline: %lu records, credit window %lu, sink %lu us per record, batches of %lu",
	       p.count, p.window, p.sink_delay_us, p.batch);
	if (p.poison_every)
		printf(", every %lu. poisoned", p.poison_every);
	putchar('\n');
	opt = bpq_grant(p.work_r, p.window);
	if (opt < 0) {
		fprintf(stderr, "sink: grant: %s\n", strerror(-opt));
		p.failed = 1;
		goto out;
	}
	/* a stage stuck for TIMEOUT_MS fails, and its neighbours after it */
	p.source = (struct bpq_stage){ .in_fd = -1, .out_fd = p.in_w,
		.batch = p.batch, .max_msg = REC_MAX, .timeout_ms = TIMEOUT_MS,
		.fn = produce };
	p.worker = (struct bpq_stage){ .in_fd = p.in_r, .out_fd = p.work_w,
		.batch = p.batch, .max_msg = REC_MAX, .timeout_ms = TIMEOUT_MS,
		.fn = transform };
	p.sink = (struct bpq_stage){ .in_fd = p.work_r, .out_fd = p.recent_w,
		.batch = p.batch, .max_msg = REC_MAX, .timeout_ms = TIMEOUT_MS,
		.fn = consume };
	pthread_create(&t[0], NULL, run_stage, &p.sink);
	pthread_create(&t[1], NULL, run_stage, &p.worker);
	pthread_create(&t[2], NULL, run_stage, &p.source);
	for (q = 2; q >= 0; q--)
		pthread_join(t[q], NULL);

	printf("source: %llu records sent, %lu poisoned\n",
	       (unsigned long long)p.source.emitted, p.poisoned);
	printf("worker: %llu records transformed, %s\n",
	       (unsigned long long)p.worker.emitted,
	       p.worker_eof ? "then end of stream" : "no end of stream");
	printf("sink: %llu records received, %s\n",
	       (unsigned long long)p.sink.received,
	       p.sink_eof ? "then end of stream" : "no end of stream");
	printf("sink: %llu processed, %llu failed (nacked), %lu lost, %lu bad, %lu credits granted, %llu acknowledged\n",
	       (unsigned long long)p.sink.emitted,
	       (unsigned long long)p.sink.nacked, p.lost, p.bad, p.window,
	       (unsigned long long)queue_acked(fds[WORK]));
	kept = read_recent(&missed);
	printf("recent: %lu results kept, %lu evicted\n", kept, missed);
	printf("queues:\n");
	for (q = 0; q < NR_QUEUES; q++)
		print_queue(q, fds[q]);
	/* failed records are fine if they are the poisoned ones, no others */
	if (p.lost || p.bad || !p.worker_eof || !p.sink_eof ||
	    p.sink.received != p.count || p.sink.nacked != p.poisoned ||
	    queue_nacked(fds[WORK]) != p.sink.nacked)
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
	fprintf(stderr, "usage: %s [-n COUNT] [-w WINDOW] [-d SINK_DELAY_US] [-f K] [-b BATCH]\n",
		argv[0]);
	return 2;
}
