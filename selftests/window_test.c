// SPDX-License-Identifier: GPL-2.0
/*
 * Acknowledgments (BPQ_IOC_ACK) and the window strategy: what an ack
 * takes and counts, bad acks, the processing histogram, NACKs, credits
 * returned by acks (auto_credit "ack"), and the congestion window: its
 * settings, slow start, congestion avoidance, halving on a congestion
 * signal once per window, the ack timeout, no growth while the writers
 * do not fill it, ack_mode delivery, and writers waiting for it.
 *
 * The window tests are single-threaded where they can be: a round is
 * nonblocking writes until EAGAIN (the window was the limit), reads of
 * all of them, then acks of all of them, so that the kernel's rounds
 * (cwnd acks each) end where ours do and every step is known. Sojourn
 * signals and the ack timeout are off unless a test is about them.
 *
 * Each test gets a queue of its own: the unacknowledged count and the
 * window are state that no reset of the counters clears.
 */
#include "bpq_test.h"
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"
#include "kselftest_harness.h"
#pragma GCC diagnostic pop
/* the harness compares its operands as given: 0 against a __u64 is fine */
#pragma GCC diagnostic ignored "-Wsign-compare"

#define WINDOW_MAX	1048576U
#define ACK_TIMEOUT_MAX	3600000U
#define TARGET_MAX_US	60000000U
#define CAPACITY	4096

static int Q = -1;

/* ---- a queue of sequence-numbered 8-byte messages ---- */

struct seqq {
	int fd;			/* O_RDWR | O_NONBLOCK */
	__u64 wseq;		/* the next to write */
	__u64 rseq;		/* the next to read */
};

/*
 * Nonblocking writes of the next sequence numbers until EAGAIN, at most
 * @max: how many went in, or -errno for any other error.
 */
static int fill(struct seqq *s, int max)
{
	ssize_t ret;
	int n;

	for (n = 0; n < max; n++) {
		ret = bpq_write(s->fd, &s->wseq, sizeof(s->wseq));
		if (ret == -EAGAIN)
			break;
		if (ret != sizeof(s->wseq))
			return ret < 0 ? (int)ret : -EIO;
		s->wseq++;
	}
	return n;
}

/* Read @n messages, each the next in sequence: @n, or -errno (-EBADMSG). */
static int drain(struct seqq *s, int n)
{
	ssize_t ret;
	__u64 v[2];
	int i;

	for (i = 0; i < n; i++) {
		ret = bpq_read(s->fd, v, sizeof(v));
		if (ret < 0)
			return ret;
		if (ret != sizeof(v[0]) || v[0] != s->rseq)
			return -EBADMSG;
		s->rseq++;
	}
	return n;
}

static struct bpq_stats snap(struct __test_metadata *_metadata, int fd)
{
	struct bpq_stats st;

	ASSERT_EQ(0, bpq_get_stats(fd, &st));
	return st;
}

/* ack_mode ack, at a quiet point: queued and delivered-unacked messages */
#define EXPECT_FLIGHT(st) \
	EXPECT_EQ((st).depth_msgs + (st).unacked, (st).inflight)

/* The histogram bucket of @ns: bucket i counts below 2^(10 + i) ns. */
static int hist_bucket(__u64 ns)
{
	int i;

	for (i = 0; i < BPQ_LATENCY_BUCKETS - 1; i++)
		if (ns < 1ULL << (10 + i))
			return i;
	return BPQ_LATENCY_BUCKETS - 1;
}

static __u64 hist_sum(const __u64 *hist)
{
	__u64 n = 0;
	int i;

	for (i = 0; i < BPQ_LATENCY_BUCKETS; i++)
		n += hist[i];
	return n;
}

/*
 * The window strategy's settings for these tests: room for every window
 * they reach, no sojourn signal (messages wait as long as a test takes)
 * and no ack timeout.
 */
static void window_config(struct bpq_config *cfg, __u32 initial_cwnd,
			  __u32 initial_ssthresh)
{
	bpq_default_config(cfg);
	cfg->strategy = BPQ_STRATEGY_WINDOW;
	cfg->capacity_msgs = CAPACITY;
	cfg->target_latency_us = TARGET_MAX_US;
	cfg->ack_timeout_ms = 0;
	cfg->initial_cwnd = initial_cwnd;
	cfg->initial_ssthresh = initial_ssthresh;
}

/* @cfg as the window strategy, started afresh: by way of block. */
static int start_window(int fd, struct bpq_config *cfg)
{
	int ret;

	cfg->strategy = BPQ_STRATEGY_BLOCK;
	ret = bpq_set_config(fd, cfg);
	cfg->strategy = BPQ_STRATEGY_WINDOW;
	return ret ? ret : bpq_set_config(fd, cfg);
}

/* Change settings of a running window (no restart: same strategy). */
static int update_config(int fd, const struct bpq_config *cfg)
{
	return bpq_set_config(fd, cfg);
}

/*
 * One round of a window-limited writer: writes until the window says
 * EAGAIN, which must be after exactly @cwnd messages, reads them all.
 * The acks are the caller's.
 */
static void round_trip(struct __test_metadata *_metadata, struct seqq *s,
		       __u32 cwnd)
{
	ASSERT_EQ((int)cwnd, fill(s, CAPACITY));
	ASSERT_EQ((int)cwnd, drain(s, cwnd));
}

static void make_queue(struct __test_metadata *_metadata, int *cfd,
		       struct seqq *s, const char *name)
{
	*cfd = bpq_control_open();
	ASSERT_LE(0, *cfd) TH_LOG("%m - open " BPQ_CONTROL_PATH);
	Q = bpq_create(*cfd, name);
	ASSERT_LE(0, Q) TH_LOG("create: %s", strerror(-Q));
	ASSERT_TRUE(bpq_wait_node(Q, true, 5000));
	memset(s, 0, sizeof(*s));
	s->fd = bpq_open(Q, O_RDWR | O_NONBLOCK);
	ASSERT_LE(0, s->fd) TH_LOG("%m - open /dev/bpq%d", Q);
}

static void drop_queue(struct __test_metadata *_metadata, int cfd,
		       struct seqq *s)
{
	close(s->fd);
	EXPECT_EQ(0, bpq_destroy(cfd, Q));
	close(cfd);
}

/* A fixture whose tests each have a queue of their own, named @label */
#define QUEUE_FIXTURE(name, label)					\
FIXTURE(name) {								\
	int cfd;							\
	struct seqq q;							\
};									\
FIXTURE_SETUP(name)							\
{									\
	make_queue(_metadata, &self->cfd, &self->q, label);		\
}									\
FIXTURE_TEARDOWN(name)							\
{									\
	drop_queue(_metadata, self->cfd, &self->q);			\
}

/* ==== acknowledgments ==== */

QUEUE_FIXTURE(ack, "window-test-ack");

/* An ack takes min(count, unacked); the rest is stale; never below 0. */
TEST_F(ack, counts)
{
	struct bpq_msg_info infos[2];
	struct bpq_recv_batch rb = {
		.size = sizeof(rb), .flags = BPQ_IO_NONBLOCK,
		.max_records = 2, .infos = (uintptr_t)infos,
	};
	int fd = self->q.fd, wfd, rfd, ifd;
	struct bpq_stats st;
	char buf[64];

	/* nothing delivered: all of it stale */
	EXPECT_EQ(0, bpq_ack(fd, 0, 3, 0));
	st = snap(_metadata, fd);
	EXPECT_EQ(0, st.unacked);
	EXPECT_EQ(0, st.acked_msgs);
	EXPECT_EQ(3, st.stale_acks);

	ASSERT_EQ(5, fill(&self->q, 5));
	st = snap(_metadata, fd);
	EXPECT_EQ(0, st.unacked);	/* queued is not delivered */
	ASSERT_EQ(3, drain(&self->q, 3));
	st = snap(_metadata, fd);
	EXPECT_EQ(3, st.unacked);
	EXPECT_EQ(3, bpq_sysfs_u64(Q, "unacked"));

	EXPECT_EQ(2, bpq_ack(fd, 0, 2, 0));
	st = snap(_metadata, fd);
	EXPECT_EQ(1, st.unacked);
	EXPECT_EQ(2, st.acked_msgs);
	EXPECT_EQ(3, st.stale_acks);

	EXPECT_EQ(1, bpq_ack(fd, 0, 5, 0));
	st = snap(_metadata, fd);
	EXPECT_EQ(0, st.unacked);
	EXPECT_EQ(3, st.acked_msgs);
	EXPECT_EQ(7, st.stale_acks);

	EXPECT_EQ(0, bpq_ack(fd, 0, 0xffffffffU, 0));
	st = snap(_metadata, fd);
	EXPECT_EQ(0, st.unacked);
	EXPECT_EQ(3, st.acked_msgs);
	EXPECT_EQ(7ULL + 0xffffffffULL, st.stale_acks);
	EXPECT_EQ(0, st.nacked);
	EXPECT_EQ(0, st.processing_hist[0]);
	EXPECT_EQ(0, hist_sum(st.processing_hist));

	/*
	 * A batch receive delivers as many. The readers' side acks: a
	 * file open for reading, or for ioctls only; not one for writing.
	 */
	rb.buf = (uintptr_t)buf;
	rb.buf_len = sizeof(buf);
	ASSERT_EQ(2, bpq_ioctl(fd, BPQ_IOC_RECV_BATCH, &rb));
	self->q.rseq += 2;
	EXPECT_EQ(2, bpq_sysfs_u64(Q, "unacked"));
	wfd = bpq_open(Q, O_WRONLY);
	ASSERT_LE(0, wfd);
	rfd = bpq_open(Q, O_RDONLY);
	ASSERT_LE(0, rfd);
	ifd = bpq_open(Q, O_ACCMODE);
	ASSERT_LE(0, ifd);
	EXPECT_EQ(-EBADF, bpq_ack(wfd, 0, 1, 0));
	EXPECT_EQ(2, snap(_metadata, fd).unacked);
	EXPECT_EQ(1, bpq_ack(rfd, 0, 1, 0));
	EXPECT_EQ(1, bpq_ack(ifd, 0, 1, 0));
	close(wfd);
	close(rfd);
	close(ifd);

	/* a flush discards what was never delivered: nothing to ack */
	ASSERT_EQ(3, fill(&self->q, 3));
	ASSERT_EQ(3, bpq_flush(fd));
	st = snap(_metadata, fd);
	EXPECT_EQ(0, st.unacked);
	EXPECT_EQ(5, st.acked_msgs);

	/* the files agree with the snapshot */
	EXPECT_EQ(5, bpq_sysfs_u64(Q, "stats/acked_msgs"));
	EXPECT_EQ(7ULL + 0xffffffffULL, bpq_sysfs_u64(Q, "stats/stale_acks"));
	EXPECT_EQ(0, bpq_sysfs_u64(Q, "stats/nacked"));
	EXPECT_EQ(0, bpq_sysfs_u64(Q, "unacked"));
}

/* unacked is state: a reset of the counters keeps it, zeroes the rest */
TEST_F(ack, reset_keeps_unacked)
{
	struct bpq_stats st;

	ASSERT_EQ(4, fill(&self->q, 4));
	ASSERT_EQ(4, drain(&self->q, 4));
	ASSERT_EQ(1, bpq_ack(self->q.fd, BPQ_ACK_NACK, 1, 0));
	ASSERT_EQ(0, bpq_reset_stats(self->q.fd));
	st = snap(_metadata, self->q.fd);
	EXPECT_EQ(3, st.unacked);
	EXPECT_EQ(0, st.acked_msgs);
	EXPECT_EQ(0, st.nacked);
	EXPECT_EQ(3, bpq_ack(self->q.fd, 0, 3, 0));
	st = snap(_metadata, self->q.fd);
	EXPECT_EQ(0, st.unacked);
	EXPECT_EQ(3, st.acked_msgs);
	EXPECT_EQ(0, st.stale_acks);
}

/* Bad acks: EINVAL, and neither the counts nor the histogram move. */
TEST_F(ack, bad_input)
{
	struct bpq_ack a = { .size = sizeof(a), .count = 1 };
	struct bpq_msg_info info;
	struct bpq_stats before, after;
	__u64 v;
	int fd = self->q.fd, bit, i;
	struct {
		const char *what;
		__u32 flags, count, reserved;
		__u64 ts;		/* 1: the message's, 2: the future */
	} bad[] = {
		{ "count 0", 0, 0, 0, 0 },
		{ "NACK, count 0", BPQ_ACK_NACK, 0, 0, 0 },
		{ "reserved 1", 0, 1, 1, 0 },
		{ "reserved 1 << 31", BPQ_ACK_NACK, 1, 1U << 31, 0 },
		{ "timestamp without the flag", 0, 1, 0, 1 },
		{ "NACK, timestamp without the flag", BPQ_ACK_NACK, 1, 0, 1 },
		{ "flag without a timestamp", BPQ_ACK_TIMESTAMP, 1, 0, 0 },
		{ "a timestamp in the future", BPQ_ACK_TIMESTAMP, 1, 0, 2 },
		{ "the end of time", BPQ_ACK_TIMESTAMP | BPQ_ACK_NACK, 1, 0,
		  ~0ULL },
	};

	ASSERT_EQ(2, fill(&self->q, 2));
	ASSERT_EQ(8, bpq_recv(fd, &v, sizeof(v), 0, 0, &info));
	ASSERT_EQ(8, bpq_recv(fd, &v, sizeof(v), 0, 0, NULL));
	before = snap(_metadata, fd);
	ASSERT_EQ(2, before.unacked);

	for (i = 0; i < (int)ARRAY_LEN(bad); i++) {
		a.flags = bad[i].flags;
		a.count = bad[i].count;
		a.__reserved = bad[i].reserved;
		a.timestamp_ns = bad[i].ts == 1 ? info.timestamp_ns :
				 bad[i].ts == 2 ? now_ns() + 10000000000ULL :
				 bad[i].ts;
		EXPECT_EQ(-EINVAL, bpq_ioctl(fd, BPQ_IOC_ACK, &a))
			TH_LOG("%s accepted", bad[i].what);
	}
	a.count = 1;
	a.__reserved = 0;
	a.timestamp_ns = 0;
	for (bit = 2; bit < 32; bit++) {
		a.flags = 1U << bit;
		EXPECT_EQ(-EINVAL, bpq_ioctl(fd, BPQ_IOC_ACK, &a))
			TH_LOG("flag bit %d accepted", bit);
	}

	after = snap(_metadata, fd);
	EXPECT_EQ(before.unacked, after.unacked);
	EXPECT_EQ(before.acked_msgs, after.acked_msgs);
	EXPECT_EQ(before.stale_acks, after.stale_acks);
	EXPECT_EQ(before.nacked, after.nacked);
	EXPECT_EQ(0, memcmp(before.processing_hist, after.processing_hist,
			    sizeof(after.processing_hist)));

	/* the same struct, put right, is taken */
	EXPECT_EQ(1, bpq_ack(fd, BPQ_ACK_TIMESTAMP, 1, info.timestamp_ns));
	EXPECT_EQ(1, bpq_ack(fd, 0, 1, 0));
	after = snap(_metadata, fd);
	EXPECT_EQ(0, after.unacked);
	EXPECT_EQ(1, hist_sum(after.processing_hist));
}

/* A destroyed queue's files: ENODEV. */
TEST_F(ack, destroyed_queue)
{
	int idx, fd;
	char c;

	idx = bpq_create(self->cfd, "window-test-gone");
	ASSERT_LE(0, idx);
	ASSERT_TRUE(bpq_wait_node(idx, true, 5000));
	fd = bpq_open(idx, O_RDWR | O_NONBLOCK);
	ASSERT_LE(0, fd);
	ASSERT_EQ(1, bpq_write(fd, "x", 1));
	ASSERT_EQ(1, bpq_read(fd, &c, 1));
	ASSERT_EQ(0, bpq_destroy(self->cfd, idx));
	EXPECT_EQ(-ENODEV, bpq_ack(fd, 0, 1, 0));
	close(fd);
}

/* processing_hist: one sample per timestamped ack, where the time says. */
TEST_F(ack, processing_hist)
{
	char buf[8192], path[128], *line, *save, *p;
	struct bpq_msg_info info[4];
	struct bpq_stats prev, st;
	unsigned long long bound, count;
	int fd = self->q.fd, i, b, changed, n;
	__u64 v;
	int64_t t0, t1;

	ASSERT_EQ(4, fill(&self->q, 4));
	for (i = 0; i < 4; i++)
		ASSERT_EQ(8, bpq_recv(fd, &v, sizeof(v), 0, 0, &info[i]));
	/* the samples land above the first buckets */
	sleep_ms(5);
	prev = snap(_metadata, fd);
	EXPECT_EQ(0, hist_sum(prev.processing_hist));
	for (i = 0; i < 3; i++) {
		t0 = now_ns();
		ASSERT_EQ(1, bpq_ack(fd, BPQ_ACK_TIMESTAMP |
				     (i == 2 ? BPQ_ACK_NACK : 0), 1,
				     info[i].timestamp_ns));
		t1 = now_ns();
		st = snap(_metadata, fd);
		for (b = -1, changed = 0, n = 0; n < BPQ_LATENCY_BUCKETS; n++) {
			if (st.processing_hist[n] == prev.processing_hist[n])
				continue;
			changed++;
			b = n;
			EXPECT_EQ(prev.processing_hist[n] + 1,
				  st.processing_hist[n]);
		}
		ASSERT_EQ(1, changed);
		EXPECT_LE(hist_bucket(t0 - info[i].timestamp_ns), b);
		EXPECT_GE(hist_bucket(t1 - info[i].timestamp_ns), b);
		EXPECT_LE(hist_bucket(5000000), b);
		prev = st;
	}
	/* without the flag: no sample */
	ASSERT_EQ(1, bpq_ack(fd, 0, 1, 0));
	st = snap(_metadata, fd);
	EXPECT_EQ(0, memcmp(prev.processing_hist, st.processing_hist,
			    sizeof(st.processing_hist)));
	EXPECT_EQ(3, hist_sum(st.processing_hist));
	/* deliveries, not acks, make the latency histogram */
	EXPECT_EQ(4, hist_sum(st.latency_hist));
	EXPECT_EQ(1, st.nacked);

	/* stats/processing_hist: "<bound> <count>" lines, as latency_hist */
	bpq_sysfs_path(path, sizeof(path), Q, "stats/processing_hist");
	ASSERT_LT(0, bpq_read_file(path, buf, sizeof(buf)));
	for (n = 0, line = strtok_r(buf, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save), n++) {
		ASSERT_GT(BPQ_LATENCY_BUCKETS, n);
		ASSERT_EQ(2, sscanf(line, "%llu %llu", &bound, &count));
		EXPECT_EQ(n < BPQ_LATENCY_BUCKETS - 1 ? 1ULL << (10 + n) :
			  ~0ULL, bound);
		EXPECT_EQ(st.processing_hist[n], count) TH_LOG("bucket %d", n);
	}
	EXPECT_EQ(BPQ_LATENCY_BUCKETS, n);

	/* stats/all: one processing_hist line of the counts */
	bpq_sysfs_path(path, sizeof(path), Q, "stats/all");
	ASSERT_LT(0, bpq_read_file(path, buf, sizeof(buf)));
	p = strstr(buf, "\nprocessing_hist ");
	ASSERT_NE(NULL, p);
	p += strlen("\nprocessing_hist");
	for (i = 0; i < BPQ_LATENCY_BUCKETS; i++) {
		ASSERT_EQ(1, sscanf(p, " %llu%n", &count, &n));
		EXPECT_EQ(st.processing_hist[i], count) TH_LOG("bucket %d", i);
		p += n;
	}
	EXPECT_EQ('\n', *p);
}

/* NACK: one per call, whatever the count; no window to halve here. */
TEST_F(ack, nack_counts)
{
	struct bpq_stats st;
	int fd = self->q.fd;

	ASSERT_EQ(5, fill(&self->q, 5));
	ASSERT_EQ(5, drain(&self->q, 5));
	EXPECT_EQ(3, bpq_ack(fd, BPQ_ACK_NACK, 3, 0));
	st = snap(_metadata, fd);
	EXPECT_EQ(1, st.nacked);
	EXPECT_EQ(3, st.acked_msgs);
	EXPECT_EQ(1, bpq_ack(fd, 0, 1, 0));
	EXPECT_EQ(1, snap(_metadata, fd).nacked);
	EXPECT_EQ(1, bpq_ack(fd, BPQ_ACK_NACK, 4, 0));
	EXPECT_EQ(0, bpq_ack(fd, BPQ_ACK_NACK, 1, 0));
	st = snap(_metadata, fd);
	EXPECT_EQ(3, st.nacked);
	EXPECT_EQ(5, st.acked_msgs);
	EXPECT_EQ(4, st.stale_acks);
	EXPECT_EQ(0, st.congestion_events);
	EXPECT_EQ(3, bpq_sysfs_u64(Q, "stats/nacked"));
}

/* ---- auto_credit: credits returned by acks ---- */

static int grant(int fd, __u64 n)
{
	struct bpq_grant g = { .size = sizeof(g), .credits = n };

	return bpq_ioctl(fd, BPQ_IOC_GRANT, &g);
}

static int set_credit(int fd, __u32 auto_credit)
{
	struct bpq_config cfg;

	bpq_default_config(&cfg);
	cfg.strategy = BPQ_STRATEGY_CREDIT;
	cfg.capacity_msgs = 64;
	cfg.auto_credit = auto_credit;
	return bpq_set_config(fd, &cfg);
}

TEST_F(ack, auto_credit_ack_returns_credits)
{
	struct bpq_stats st;
	int fd = self->q.fd;

	ASSERT_EQ(0, set_credit(fd, BPQ_AUTO_CREDIT_ACK));
	ASSERT_EQ(0, grant(fd, 3));
	ASSERT_EQ(3, fill(&self->q, 10));
	EXPECT_EQ(0, bpq_sysfs_u64(Q, "credits_available"));

	/* a delivery returns nothing */
	ASSERT_EQ(3, drain(&self->q, 3));
	st = snap(_metadata, fd);
	EXPECT_EQ(0, st.credits_available);
	EXPECT_EQ(3, st.unacked);
	EXPECT_EQ(0, fill(&self->q, 10));

	/* an ack returns what it takes */
	EXPECT_EQ(2, bpq_ack(fd, 0, 2, 0));
	EXPECT_EQ(2, snap(_metadata, fd).credits_available);
	EXPECT_EQ(2, fill(&self->q, 10));
	EXPECT_EQ(0, snap(_metadata, fd).credits_available);

	/* but not the stale part: one unacked, five acked */
	EXPECT_EQ(1, bpq_ack(fd, BPQ_ACK_NACK, 5, 0));
	st = snap(_metadata, fd);
	EXPECT_EQ(1, st.credits_available);
	EXPECT_EQ(4, st.stale_acks);
	EXPECT_EQ(0, bpq_ack(fd, 0, 1, 0));
	EXPECT_EQ(1, snap(_metadata, fd).credits_available);

	/* the two queued, delivered and acked: three credits */
	ASSERT_EQ(2, drain(&self->q, 2));
	EXPECT_EQ(1, snap(_metadata, fd).credits_available);
	EXPECT_EQ(2, bpq_ack(fd, 0, 2, 0));
	st = snap(_metadata, fd);
	EXPECT_EQ(3, st.credits_available);
	EXPECT_EQ(0, st.unacked);
	EXPECT_EQ(5, st.acked_msgs);
}

/* auto_credit 1 returns credits on delivery, 0 never: acks add none. */
TEST_F(ack, auto_credit_delivery_and_off_ignore_acks)
{
	int fd = self->q.fd;

	ASSERT_EQ(0, set_credit(fd, BPQ_AUTO_CREDIT_DELIVERY));
	ASSERT_EQ(0, grant(fd, 2));
	ASSERT_EQ(2, fill(&self->q, 10));
	ASSERT_EQ(2, drain(&self->q, 2));
	EXPECT_EQ(2, snap(_metadata, fd).credits_available);
	EXPECT_EQ(2, bpq_ack(fd, 0, 2, 0));
	EXPECT_EQ(2, snap(_metadata, fd).credits_available);

	ASSERT_EQ(0, set_credit(fd, BPQ_AUTO_CREDIT_OFF));
	ASSERT_EQ(2, fill(&self->q, 10));
	ASSERT_EQ(2, drain(&self->q, 2));
	EXPECT_EQ(0, snap(_metadata, fd).credits_available);
	EXPECT_EQ(2, bpq_ack(fd, 0, 2, 0));
	EXPECT_EQ(0, snap(_metadata, fd).credits_available);
	EXPECT_EQ(4, snap(_metadata, fd).acked_msgs);
}

/* A writer waiting for credit goes in when an ack returns one. */
TEST_F(ack, auto_credit_ack_admits_waiting_writer)
{
	struct io_thread t;
	struct bpq_stats st;
	__u64 v = 1;
	int bfd;

	ASSERT_EQ(0, set_credit(self->q.fd, BPQ_AUTO_CREDIT_ACK));
	ASSERT_EQ(0, grant(self->q.fd, 1));
	ASSERT_EQ(1, fill(&self->q, 10));
	ASSERT_EQ(1, drain(&self->q, 1));
	bfd = bpq_open(Q, O_WRONLY);
	ASSERT_LE(0, bfd);
	ASSERT_EQ(0, io_thread_start(&t, bfd, IO_WRITE, &v, sizeof(v)));
	ASSERT_TRUE(io_thread_blocked(&t, 5000));
	EXPECT_EQ(0, bpq_depth(self->q.fd));
	EXPECT_FALSE(io_thread_done(&t));
	EXPECT_EQ(1, bpq_ack(self->q.fd, 0, 1, 0));
	ASSERT_TRUE(io_thread_wait(&t, 10000));
	EXPECT_EQ(8, t.ret);
	st = snap(_metadata, self->q.fd);
	EXPECT_EQ(1, st.depth_msgs);
	EXPECT_EQ(0, st.credits_available);
	EXPECT_LE(1, st.credit_starvation);
	self->q.wseq++;
	ASSERT_EQ(1, drain(&self->q, 1));
	close(bfd);
}

/* The consumer cancelled: its acks return no credit, as grants add none. */
TEST_F(ack, auto_credit_ack_not_after_cancel)
{
	struct bpq_stats st;
	int fd = self->q.fd;

	ASSERT_EQ(0, set_credit(fd, BPQ_AUTO_CREDIT_ACK));
	ASSERT_EQ(0, grant(fd, 2));
	ASSERT_EQ(2, fill(&self->q, 10));
	ASSERT_EQ(2, drain(&self->q, 2));
	ASSERT_EQ(0, bpq_shutdown(fd, BPQ_SHUTDOWN_CANCEL, 0));
	EXPECT_EQ(2, bpq_ack(fd, 0, 2, 0));
	st = snap(_metadata, fd);
	EXPECT_EQ(0, st.credits_available);
	EXPECT_EQ(2, st.acked_msgs);
	EXPECT_EQ(0, st.unacked);
}

/* sysfs auto_credit: 0, 1, 2 or "ack", shown as 0, 1 and "ack". */
TEST_F(ack, sysfs_auto_credit)
{
	static const struct {
		const char *in, *shown;
		__u32 value;
	} good[] = {
		{ "ack", "ack", BPQ_AUTO_CREDIT_ACK },
		{ "1", "1", BPQ_AUTO_CREDIT_DELIVERY },
		{ "2", "ack", BPQ_AUTO_CREDIT_ACK },
		{ "0", "0", BPQ_AUTO_CREDIT_OFF },
		{ "ack\n", "ack", BPQ_AUTO_CREDIT_ACK },
	};
	static const char *const bad[] = {
		"3", "acks", "Ack", "-1", "4294967298", "ac",
	};
	struct bpq_config before, after;
	char buf[64];
	unsigned int i;

	for (i = 0; i < ARRAY_LEN(good); i++) {
		ASSERT_EQ(0, bpq_sysfs_write(Q, "auto_credit", good[i].in))
			TH_LOG("'%s' refused", good[i].in);
		ASSERT_EQ(0, bpq_sysfs_read(Q, "auto_credit", buf,
					    sizeof(buf)));
		EXPECT_STREQ(good[i].shown, buf);
		ASSERT_EQ(0, bpq_get_config(self->q.fd, &after));
		EXPECT_EQ(good[i].value, after.auto_credit);
	}
	ASSERT_EQ(0, bpq_get_config(self->q.fd, &before));
	for (i = 0; i < ARRAY_LEN(bad); i++) {
		EXPECT_EQ(-EINVAL, bpq_sysfs_write(Q, "auto_credit", bad[i]))
			TH_LOG("'%s' accepted", bad[i]);
		ASSERT_EQ(0, bpq_get_config(self->q.fd, &after));
		EXPECT_EQ(0, memcmp(&before, &after, sizeof(after)));
	}
	after.auto_credit = 3;
	EXPECT_EQ(-EINVAL, bpq_set_config(self->q.fd, &after));
	EXPECT_EQ(0, bpq_get_config(self->q.fd, &after));
	EXPECT_EQ(0, memcmp(&before, &after, sizeof(after)));
}

/* ==== many writers, many readers that ack what they read ==== */

#define NP		4
#define NC		4
#define PER		1500
#define CREDITS		8
#define NACK_EVERY	97

struct pmsg {
	__u32 prod;
	__u32 seq;
	__u32 crc;		/* of prod, seq and the payload */
	unsigned char payload[20];
};

static __u32 pmsg_crc(const struct pmsg *m)
{
	__u32 crc = bpq_crc32(0, m, offsetof(struct pmsg, crc));

	return bpq_crc32(crc, m->payload, sizeof(m->payload));
}

struct mrun {
	bool window;
	int fd;				/* for the monitor */
	unsigned char seen[NP][PER];
	long received, corrupt, duplicates, errors, bad_acks;
	long acks, nacks;
	int last_error;
	int stop;			/* atomic: the monitor stops */
	long snapshots, violations;
	__u64 max_flight;
};

static void mrun_error(struct mrun *r, int err)
{
	__atomic_add_fetch(&r->errors, 1, __ATOMIC_RELAXED);
	__atomic_store_n(&r->last_error, err, __ATOMIC_RELAXED);
}

struct mworker {
	struct mrun *r;
	int id;
	pthread_t thr;
};

static void *m_producer(void *arg)
{
	struct mworker *w = arg;
	struct pmsg m = { .prod = w->id };
	ssize_t ret;
	int fd = bpq_open(Q, O_WRONLY);

	if (fd < 0) {
		mrun_error(w->r, errno);
		return NULL;
	}
	for (m.seq = 0; m.seq < PER; m.seq++) {
		fill_pattern(m.payload, sizeof(m.payload), m.prod * PER + m.seq);
		m.crc = pmsg_crc(&m);
		ret = bpq_write(fd, &m, sizeof(m));
		if (ret != sizeof(m))
			mrun_error(w->r, ret < 0 ? (int)-ret : EIO);
	}
	close(fd);
	return NULL;
}

static void *m_consumer(void *arg)
{
	struct mworker *w = arg;
	struct mrun *r = w->r;
	struct bpq_msg_info info;
	struct pmsg m;
	__u32 flags;
	long n;
	int fd = bpq_open(Q, O_RDONLY), ret;

	if (fd < 0) {
		mrun_error(r, errno);
		return NULL;
	}
	while (__atomic_load_n(&r->received, __ATOMIC_RELAXED) < NP * PER) {
		ret = bpq_recv(fd, &m, sizeof(m), BPQ_IO_TIMEOUT, 100, &info);
		if (ret == -ETIMEDOUT)
			continue;
		if (ret < 0) {
			mrun_error(r, -ret);
			break;
		}
		if (ret != sizeof(m) || m.prod >= NP || m.seq >= PER ||
		    m.crc != pmsg_crc(&m) ||
		    !check_pattern(m.payload, sizeof(m.payload),
				   m.prod * PER + m.seq)) {
			__atomic_add_fetch(&r->corrupt, 1, __ATOMIC_RELAXED);
		} else if (__atomic_fetch_add(&r->seen[m.prod][m.seq], 1,
					      __ATOMIC_RELAXED)) {
			__atomic_add_fetch(&r->duplicates, 1, __ATOMIC_RELAXED);
		}
		/* every read is acked after it: one is always there to take */
		n = __atomic_add_fetch(&r->acks, 1, __ATOMIC_RELAXED);
		flags = BPQ_ACK_TIMESTAMP;
		if (r->window && n % NACK_EVERY == 0) {
			flags |= BPQ_ACK_NACK;
			__atomic_add_fetch(&r->nacks, 1, __ATOMIC_RELAXED);
		}
		if (bpq_ack(fd, flags, 1, info.timestamp_ns) != 1)
			__atomic_add_fetch(&r->bad_acks, 1, __ATOMIC_RELAXED);
		__atomic_add_fetch(&r->received, 1, __ATOMIC_RELAXED);
	}
	close(fd);
	return NULL;
}

/*
 * Every snapshot balances: with credits, what is available, queued and
 * delivered-unacked is the grant; with the window, the flight is what is
 * queued and delivered-unacked.
 */
static void *m_monitor(void *arg)
{
	struct mrun *r = arg;
	struct bpq_stats st;
	bool ok;

	while (!__atomic_load_n(&r->stop, __ATOMIC_RELAXED)) {
		if (bpq_get_stats(r->fd, &st)) {
			r->violations++;
			break;
		}
		r->snapshots++;
		if (r->window)
			ok = st.inflight == st.depth_msgs + st.unacked;
		else
			ok = st.credits_available + st.depth_msgs +
			     st.unacked == CREDITS;
		r->violations += !ok;
		if (st.depth_msgs + st.unacked > r->max_flight)
			r->max_flight = st.depth_msgs + st.unacked;
		sleep_ms(1);
	}
	return NULL;
}

FIXTURE(mpmc) {
	int cfd;
	struct seqq q;
	struct mrun *r;
};

FIXTURE_VARIANT(mpmc) {
	__u32 strategy;
};

FIXTURE_VARIANT_ADD(mpmc, credit_ack) {
	.strategy = BPQ_STRATEGY_CREDIT,
};

FIXTURE_VARIANT_ADD(mpmc, window) {
	.strategy = BPQ_STRATEGY_WINDOW,
};

FIXTURE_SETUP(mpmc)
{
	struct bpq_config cfg;

	make_queue(_metadata, &self->cfd, &self->q, "window-test-mpmc");
	self->r = calloc(1, sizeof(*self->r));
	ASSERT_NE(NULL, self->r);
	self->r->fd = self->q.fd;
	self->r->window = variant->strategy == BPQ_STRATEGY_WINDOW;
	if (self->r->window) {
		/* NACKs, and the ack timeout if a reader is held up */
		window_config(&cfg, 10, WINDOW_MAX);
		cfg.ack_timeout_ms = 1000;
		cfg.capacity_msgs = 256;
		ASSERT_EQ(0, start_window(self->q.fd, &cfg));
	} else {
		bpq_default_config(&cfg);
		cfg.strategy = BPQ_STRATEGY_CREDIT;
		cfg.auto_credit = BPQ_AUTO_CREDIT_ACK;
		ASSERT_EQ(0, bpq_set_config(self->q.fd, &cfg));
		ASSERT_EQ(0, grant(self->q.fd, CREDITS));
	}
}

FIXTURE_TEARDOWN(mpmc)
{
	free(self->r);
	drop_queue(_metadata, self->cfd, &self->q);
}

TEST_F_TIMEOUT(mpmc, exactly_once_acked, 180)
{
	struct mworker prod[NP], cons[NC];
	struct mrun *r = self->r;
	struct bpq_stats st;
	pthread_t mon;
	long missing = 0;
	int i, j;

	ASSERT_EQ(0, pthread_create(&mon, NULL, m_monitor, r));
	for (i = 0; i < NC; i++) {
		cons[i] = (struct mworker){ .r = r, .id = i };
		ASSERT_EQ(0, pthread_create(&cons[i].thr, NULL, m_consumer,
					    &cons[i]));
	}
	for (i = 0; i < NP; i++) {
		prod[i] = (struct mworker){ .r = r, .id = i };
		ASSERT_EQ(0, pthread_create(&prod[i].thr, NULL, m_producer,
					    &prod[i]));
	}
	for (i = 0; i < NP; i++)
		pthread_join(prod[i].thr, NULL);
	for (i = 0; i < NC; i++)
		pthread_join(cons[i].thr, NULL);
	__atomic_store_n(&r->stop, 1, __ATOMIC_RELAXED);
	pthread_join(mon, NULL);

	ASSERT_EQ(0, r->errors) TH_LOG("last error %d", r->last_error);
	EXPECT_EQ(0, r->corrupt);
	EXPECT_EQ(0, r->duplicates);
	EXPECT_EQ(0, r->bad_acks);
	EXPECT_EQ(NP * PER, r->received);
	for (i = 0; i < NP; i++)
		for (j = 0; j < PER; j++)
			missing += r->seen[i][j] != 1;
	EXPECT_EQ(0, missing);
	EXPECT_LT(0, r->snapshots);
	EXPECT_EQ(0, r->violations);

	st = snap(_metadata, self->q.fd);
	EXPECT_TRUE(bpq_stats_balanced(&st));
	EXPECT_EQ(NP * PER, st.enqueued_msgs);
	EXPECT_EQ(NP * PER, st.dequeued_msgs);
	EXPECT_EQ(NP * PER, st.acked_msgs);
	EXPECT_EQ(0, st.depth_msgs);
	EXPECT_EQ(0, st.unacked);
	EXPECT_EQ(0, st.stale_acks);
	EXPECT_EQ(NP * PER, hist_sum(st.processing_hist));
	EXPECT_EQ(NP * PER, hist_sum(st.latency_hist));
	EXPECT_EQ(r->nacks, st.nacked);
	if (r->window) {
		EXPECT_EQ(0, st.inflight);
		/* the first NACK finds no recovery; later ones may */
		EXPECT_LE(1, st.congestion_events);
		EXPECT_GE(st.nacked, st.congestion_events);
		EXPECT_LE(st.cwnd, WINDOW_MAX);
		EXPECT_LE(1, st.cwnd);
	} else {
		EXPECT_EQ(CREDITS, st.credits_available);
		EXPECT_GE(CREDITS, r->max_flight);
		EXPECT_EQ(0, st.nacked);
	}
	TH_LOG("%ld snapshots, in flight at most %llu; cwnd %u, congestion events %llu, ack timeouts %llu, credit starvation %llu",
	       r->snapshots, (unsigned long long)r->max_flight, st.cwnd,
	       (unsigned long long)st.congestion_events,
	       (unsigned long long)st.ack_timeouts,
	       (unsigned long long)st.credit_starvation);
}

/* ==== the window strategy ==== */

QUEUE_FIXTURE(window, "window-test");

/* Defaults, and a switch to window starts the window from the settings. */
TEST_F(window, start_and_restart)
{
	struct bpq_config cfg, got;
	struct bpq_stats st;
	int fd = self->q.fd;

	/* the defaults: a window of 10, slow start to 1048576 */
	ASSERT_EQ(0, bpq_get_config(fd, &got));
	EXPECT_EQ(BPQ_ACK_MODE_ACK, got.ack_mode);
	EXPECT_EQ(10, got.initial_cwnd);
	EXPECT_EQ(1, got.min_cwnd);
	EXPECT_EQ(WINDOW_MAX, got.max_cwnd);
	EXPECT_EQ(WINDOW_MAX, got.initial_ssthresh);
	EXPECT_EQ(1000, got.ack_timeout_ms);
	ASSERT_EQ(0, bpq_sysfs_write(Q, "strategy", "window"));
	st = snap(_metadata, fd);
	EXPECT_EQ(10, st.cwnd);
	EXPECT_EQ(WINDOW_MAX, st.ssthresh);
	EXPECT_EQ(BPQ_WINDOW_SLOW_START, st.window_state);
	EXPECT_EQ(0, st.inflight);

	window_config(&cfg, 7, 100);
	ASSERT_EQ(0, start_window(fd, &cfg));
	st = snap(_metadata, fd);
	EXPECT_EQ(7, st.cwnd);
	EXPECT_EQ(100, st.ssthresh);
	round_trip(_metadata, &self->q, 7);
	ASSERT_EQ(7, bpq_ack(fd, 0, 7, 0));
	EXPECT_EQ(14, snap(_metadata, fd).cwnd);

	/* other settings change, the window goes on */
	cfg.capacity_msgs = CAPACITY - 1;
	cfg.initial_cwnd = 3;
	ASSERT_EQ(0, update_config(fd, &cfg));
	st = snap(_metadata, fd);
	EXPECT_EQ(14, st.cwnd);
	EXPECT_EQ(100, st.ssthresh);

	/* but stays within min_cwnd ... max_cwnd */
	cfg.max_cwnd = 12;
	ASSERT_EQ(0, update_config(fd, &cfg));
	EXPECT_EQ(12, snap(_metadata, fd).cwnd);
	cfg.min_cwnd = 13;
	cfg.initial_cwnd = 13;
	cfg.max_cwnd = 20;
	ASSERT_EQ(0, update_config(fd, &cfg));
	EXPECT_EQ(13, snap(_metadata, fd).cwnd);

	/* away and back: from the start again */
	cfg.min_cwnd = 1;
	cfg.initial_cwnd = 5;
	cfg.max_cwnd = WINDOW_MAX;
	cfg.initial_ssthresh = 50;
	ASSERT_EQ(0, start_window(fd, &cfg));
	st = snap(_metadata, fd);
	EXPECT_EQ(5, st.cwnd);
	EXPECT_EQ(50, st.ssthresh);
	EXPECT_EQ(BPQ_WINDOW_SLOW_START, st.window_state);
	EXPECT_EQ(5, bpq_sysfs_u64(Q, "cwnd"));
	EXPECT_EQ(50, bpq_sysfs_u64(Q, "ssthresh"));
}

/* Out of range: EINVAL, and neither settings nor window move. */
TEST_F(window, settings_ranges)
{
	static const struct {
		const char *what;
		__u32 min, initial, max, ssthresh, mode, timeout;
	} bad[] = {
		{ "min_cwnd 0", 0, 10, 100, 64, 0, 0 },
		{ "min above max", 20, 20, 19, 64, 0, 0 },
		{ "initial below min", 11, 10, 100, 64, 0, 0 },
		{ "initial above max", 1, 101, 100, 64, 0, 0 },
		{ "initial 0", 1, 0, 100, 64, 0, 0 },
		{ "max above 1048576", 1, 10, WINDOW_MAX + 1, 64, 0, 0 },
		{ "max 2^32 - 1", 1, 10, 0xffffffff, 64, 0, 0 },
		{ "max 0", 1, 10, 0, 64, 0, 0 },
		{ "ssthresh 0", 1, 10, 100, 0, 0, 0 },
		{ "ssthresh above 1048576", 1, 10, 100, WINDOW_MAX + 1, 0, 0 },
		{ "ack_mode 2", 1, 10, 100, 64, 2, 0 },
		{ "ack_mode 2^32 - 1", 1, 10, 100, 64, 0xffffffff, 0 },
		{ "ack_timeout_ms 3600001", 1, 10, 100, 64, 0,
		  ACK_TIMEOUT_MAX + 1 },
		{ "ack_timeout_ms 2^32 - 1", 1, 10, 100, 64, 0, 0xffffffff },
	};
	static const struct {
		__u32 min, initial, max, ssthresh, mode, timeout;
	} good[] = {
		{ 1, 1, 1, 1, 0, 0 },
		{ 1, WINDOW_MAX, WINDOW_MAX, WINDOW_MAX, 1, ACK_TIMEOUT_MAX },
		{ WINDOW_MAX, WINDOW_MAX, WINDOW_MAX, 1, 0, 1 },
		{ 3, 10, 40, 2, 1, 0 },
	};
	struct bpq_config base, cfg, now;
	struct bpq_stats before, after;
	unsigned int i;
	int fd = self->q.fd;

	window_config(&base, 10, 64);
	ASSERT_EQ(0, start_window(fd, &base));
	round_trip(_metadata, &self->q, 10);
	ASSERT_EQ(10, bpq_ack(fd, 0, 10, 0));
	before = snap(_metadata, fd);
	ASSERT_EQ(20, before.cwnd);

	for (i = 0; i < ARRAY_LEN(bad); i++) {
		cfg = base;
		cfg.min_cwnd = bad[i].min;
		cfg.initial_cwnd = bad[i].initial;
		cfg.max_cwnd = bad[i].max;
		cfg.initial_ssthresh = bad[i].ssthresh;
		cfg.ack_mode = bad[i].mode;
		cfg.ack_timeout_ms = bad[i].timeout;
		EXPECT_EQ(-EINVAL, bpq_set_config(fd, &cfg))
			TH_LOG("%s accepted", bad[i].what);
		/* whatever the strategy */
		cfg.strategy = BPQ_STRATEGY_BLOCK;
		EXPECT_EQ(-EINVAL, bpq_set_config(fd, &cfg))
			TH_LOG("%s accepted with block", bad[i].what);
		ASSERT_EQ(0, bpq_get_config(fd, &now));
		EXPECT_EQ(0, memcmp(&base, &now, sizeof(now)))
			TH_LOG("%s changed the settings", bad[i].what);
		after = snap(_metadata, fd);
		EXPECT_EQ(before.cwnd, after.cwnd);
		EXPECT_EQ(before.ssthresh, after.ssthresh);
		EXPECT_EQ(before.window_state, after.window_state);
	}
	cfg = base;
	cfg.read_mode = BPQ_READ_STREAM + 1;
	EXPECT_EQ(-EINVAL, bpq_set_config(fd, &cfg));
	ASSERT_EQ(0, bpq_get_config(fd, &now));
	EXPECT_EQ(0, memcmp(&base, &now, sizeof(now)));

	for (i = 0; i < ARRAY_LEN(good); i++) {
		cfg = base;
		cfg.min_cwnd = good[i].min;
		cfg.initial_cwnd = good[i].initial;
		cfg.max_cwnd = good[i].max;
		cfg.initial_ssthresh = good[i].ssthresh;
		cfg.ack_mode = good[i].mode;
		cfg.ack_timeout_ms = good[i].timeout;
		EXPECT_EQ(0, bpq_set_config(fd, &cfg)) TH_LOG("case %u", i);
		ASSERT_EQ(0, bpq_get_config(fd, &now));
		EXPECT_EQ(0, memcmp(&cfg, &now, sizeof(now)));
		after = snap(_metadata, fd);
		EXPECT_LE(cfg.min_cwnd, after.cwnd);
		EXPECT_GE(cfg.max_cwnd, after.cwnd);
	}
}

/* sysfs: the window's settings by number, ack_mode and states by name */
TEST_F(window, sysfs_names)
{
	static const struct {
		const char *attr, *good, *bad[4];
	} t[] = {
		{ "strategy", "window", { "Window", "window2", "5" } },
		{ "initial_cwnd", "20", { "0", "1048577", "x" } },
		{ "min_cwnd", "5", { "0", "21", "-1" } },
		{ "max_cwnd", "1000", { "19", "1048577", "4294967296" } },
		{ "initial_ssthresh", "64", { "0", "1048577" } },
		{ "ack_timeout_ms", "3600000", { "3600001", "-1" } },
		{ "ack_mode", "delivery", { "2", "bogus", "Delivery" } },
		{ "ack_mode", "ack", { "acks", "ack2" } },
	};
	struct bpq_config before, after;
	struct bpq_stats st;
	unsigned int i, j;
	char buf[64];
	int fd = self->q.fd;

	for (i = 0; i < ARRAY_LEN(t); i++) {
		ASSERT_EQ(0, bpq_sysfs_write(Q, t[i].attr, t[i].good))
			TH_LOG("%s = %s refused", t[i].attr, t[i].good);
		ASSERT_EQ(0, bpq_sysfs_read(Q, t[i].attr, buf, sizeof(buf)));
		EXPECT_STREQ(t[i].good, buf);
		ASSERT_EQ(0, bpq_get_config(fd, &before));
		for (j = 0; j < ARRAY_LEN(t[i].bad) && t[i].bad[j]; j++) {
			EXPECT_EQ(-EINVAL, bpq_sysfs_write(Q, t[i].attr,
							   t[i].bad[j]))
				TH_LOG("%s = '%s' accepted", t[i].attr,
				       t[i].bad[j]);
			ASSERT_EQ(0, bpq_get_config(fd, &after));
			EXPECT_EQ(0, memcmp(&before, &after, sizeof(after)));
		}
	}
	EXPECT_EQ(BPQ_STRATEGY_WINDOW, after.strategy);
	EXPECT_EQ(20, after.initial_cwnd);
	EXPECT_EQ(5, after.min_cwnd);
	EXPECT_EQ(1000, after.max_cwnd);
	EXPECT_EQ(64, after.initial_ssthresh);
	EXPECT_EQ(ACK_TIMEOUT_MAX, after.ack_timeout_ms);
	EXPECT_EQ(BPQ_ACK_MODE_ACK, after.ack_mode);
	ASSERT_EQ(0, bpq_sysfs_write(Q, "ack_mode", "delivery"));
	ASSERT_EQ(0, bpq_get_config(fd, &after));
	EXPECT_EQ(BPQ_ACK_MODE_DELIVERY, after.ack_mode);
	ASSERT_EQ(0, bpq_sysfs_write(Q, "ack_mode", "ack"));

	/* the window's state, by name */
	ASSERT_EQ(0, bpq_sysfs_read(Q, "window_state", buf, sizeof(buf)));
	EXPECT_STREQ("slow-start", buf);
	/* a NACK, even with nothing to take: recovery */
	EXPECT_EQ(0, bpq_ack(fd, BPQ_ACK_NACK, 1, 0));
	ASSERT_EQ(0, bpq_sysfs_read(Q, "window_state", buf, sizeof(buf)));
	EXPECT_STREQ("recovery", buf);
	st = snap(_metadata, fd);
	EXPECT_EQ(BPQ_WINDOW_RECOVERY, st.window_state);
	EXPECT_EQ(5, st.cwnd);		/* 10 halved, min_cwnd 5 */
	EXPECT_EQ(5, st.ssthresh);
	EXPECT_EQ(1, st.congestion_events);
	EXPECT_EQ(5, bpq_sysfs_u64(Q, "cwnd"));
	EXPECT_EQ(5, bpq_sysfs_u64(Q, "ssthresh"));
	EXPECT_EQ(1, bpq_sysfs_u64(Q, "stats/congestion_events"));
	/* a start at or above ssthresh: avoidance */
	ASSERT_EQ(0, bpq_sysfs_write(Q, "strategy", "block"));
	ASSERT_EQ(0, bpq_sysfs_write(Q, "initial_ssthresh", "20"));
	ASSERT_EQ(0, bpq_sysfs_write(Q, "strategy", "window"));
	ASSERT_EQ(0, bpq_sysfs_read(Q, "window_state", buf, sizeof(buf)));
	EXPECT_STREQ("avoidance", buf);
	EXPECT_EQ(BPQ_WINDOW_AVOIDANCE, snap(_metadata, fd).window_state);

	/* the state files are read-only */
	ASSERT_EQ(2, fill(&self->q, 2));
	ASSERT_EQ(1, drain(&self->q, 1));
	EXPECT_EQ(2, bpq_sysfs_u64(Q, "inflight"));
	EXPECT_EQ(1, bpq_sysfs_u64(Q, "unacked"));
	EXPECT_EQ(0, bpq_sysfs_u64(Q, "stats/ack_timeouts"));
	EXPECT_EQ(0, bpq_sysfs_u64(Q, "stats/cwnd_limited_ns"));
	EXPECT_NE(0, bpq_sysfs_write(Q, "cwnd", "100"));
	EXPECT_NE(0, bpq_sysfs_write(Q, "ssthresh", "100"));
	EXPECT_NE(0, bpq_sysfs_write(Q, "inflight", "0"));
	EXPECT_NE(0, bpq_sysfs_write(Q, "unacked", "0"));
	EXPECT_NE(0, bpq_sysfs_write(Q, "window_state", "slow-start"));
	EXPECT_EQ(20, snap(_metadata, fd).cwnd);
}

/*
 * Slow start: +1 per acked message while the window is the limit, so
 * cwnd doubles per round: 10, 20, 40, 80, 160, 320.
 */
TEST_F(window, slow_start_doubles)
{
	struct bpq_config cfg;
	struct bpq_stats st;
	__u32 cwnd = 10, j;
	int fd = self->q.fd, r;

	window_config(&cfg, 10, WINDOW_MAX);
	ASSERT_EQ(0, start_window(fd, &cfg));
	for (r = 0; r < 5; r++, cwnd *= 2) {
		st = snap(_metadata, fd);
		ASSERT_EQ(cwnd, st.cwnd) TH_LOG("round %d", r);
		EXPECT_EQ(BPQ_WINDOW_SLOW_START, st.window_state);
		ASSERT_EQ((int)cwnd, fill(&self->q, CAPACITY));
		st = snap(_metadata, fd);
		EXPECT_EQ(cwnd, st.inflight);
		EXPECT_EQ(cwnd, st.depth_msgs);
		/* this round's EAGAIN, and the last round's two */
		EXPECT_EQ(2 * r + 1, st.backpressure_applied);
		ASSERT_EQ((int)cwnd, drain(&self->q, cwnd));
		/* delivered, not acked: still in flight, and no growth */
		st = snap(_metadata, fd);
		EXPECT_EQ(0, st.depth_msgs);
		EXPECT_EQ(cwnd, st.unacked);
		EXPECT_EQ(cwnd, st.inflight);
		EXPECT_EQ(cwnd, st.cwnd);
		EXPECT_EQ(0, fill(&self->q, 1));
		if (r % 2) {
			EXPECT_EQ((int)cwnd, bpq_ack(fd, 0, cwnd, 0));
			continue;
		}
		for (j = 1; j <= cwnd; j++) {
			ASSERT_EQ(1, bpq_ack(fd, 0, 1, 0));
			st = snap(_metadata, fd);
			EXPECT_EQ(cwnd + j, st.cwnd);
			EXPECT_FLIGHT(st);
		}
	}
	st = snap(_metadata, fd);
	EXPECT_EQ(320, st.cwnd);
	EXPECT_EQ(310, st.acked_msgs);
	EXPECT_EQ(0, st.inflight);
	EXPECT_EQ(0, st.stale_acks);
	EXPECT_EQ(0, st.congestion_events);
	EXPECT_EQ(0, st.cwnd_limited_ns);	/* nobody waited */
}

/* The same with a writer that always waits for the window. */
struct seq_writer {
	pthread_t thr;
	int fd;			/* blocking */
	int n;
	pid_t tid;
	int started, done;	/* atomic */
	int err;
};

static void *seq_writer_fn(void *arg)
{
	struct seq_writer *w = arg;
	ssize_t ret;
	__u64 v;

	w->tid = bpq_gettid();
	__atomic_store_n(&w->started, 1, __ATOMIC_RELEASE);
	for (v = 0; v < (__u64)w->n; v++) {
		ret = bpq_write(w->fd, &v, sizeof(v));
		if (ret != sizeof(v)) {
			w->err = ret < 0 ? (int)-ret : EIO;
			break;
		}
	}
	__atomic_store_n(&w->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static bool wait_depth(int fd, __u64 depth, int timeout_ms)
{
	int64_t end = now_ns() + (int64_t)timeout_ms * 1000000;

	while (bpq_depth(fd) != depth) {
		if (now_ns() > end)
			return false;
		sleep_ms(1);
	}
	return true;
}

TEST_F(window, slow_start_with_waiting_writer)
{
	struct seq_writer w = { .n = 10 + 20 + 40 + 80 };
	struct bpq_config cfg;
	struct bpq_stats st;
	__u32 cwnd;
	int fd = self->q.fd;

	window_config(&cfg, 10, WINDOW_MAX);
	ASSERT_EQ(0, start_window(fd, &cfg));
	w.fd = bpq_open(Q, O_WRONLY);
	ASSERT_LE(0, w.fd);
	ASSERT_EQ(0, pthread_create(&w.thr, NULL, seq_writer_fn, &w));
	while (!__atomic_load_n(&w.started, __ATOMIC_ACQUIRE))
		sched_yield();
	for (cwnd = 10; cwnd <= 80; cwnd *= 2) {
		/* the window full, the writer waiting (but after its last) */
		ASSERT_TRUE(wait_depth(fd, cwnd, 10000)) TH_LOG("cwnd %u", cwnd);
		if (cwnd < 80)
			ASSERT_TRUE(wait_task_sleeping(w.tid, SYS_write, 10000));
		st = snap(_metadata, fd);
		ASSERT_EQ(cwnd, st.cwnd);
		EXPECT_EQ(cwnd, st.inflight);
		EXPECT_EQ(BPQ_WINDOW_SLOW_START, st.window_state);
		ASSERT_EQ((int)cwnd, drain(&self->q, cwnd));
		/* read, not acked: nobody may go in */
		st = snap(_metadata, fd);
		EXPECT_EQ(0, st.depth_msgs);
		EXPECT_EQ(cwnd, st.inflight);
		EXPECT_EQ((int)cwnd, bpq_ack(fd, 0, cwnd, 0));
		EXPECT_EQ(2 * cwnd, snap(_metadata, fd).cwnd);
	}
	pthread_join(w.thr, NULL);
	EXPECT_EQ(0, w.err);
	st = snap(_metadata, fd);
	EXPECT_EQ(160, st.cwnd);
	EXPECT_EQ(0, st.inflight);
	EXPECT_EQ(3, st.backpressure_applied);
	EXPECT_LT(0, st.cwnd_limited_ns);
	EXPECT_EQ(0, st.blocked_ns);
	close(w.fd);
}

/*
 * Congestion avoidance: at or above ssthresh, +1 per window of acks.
 * From 10 with ssthresh 30: 20, then 30 (the rest of that round's acks
 * count towards avoidance), 31, 32, 33, 34.
 */
TEST_F(window, avoidance_adds_one_per_window)
{
	static const __u32 expect[] = { 10, 20, 30, 31, 32, 33, 34 };
	struct bpq_config cfg;
	struct bpq_stats st;
	__u32 cwnd, j, changes, last;
	unsigned int r;
	int fd = self->q.fd;

	window_config(&cfg, 10, 30);
	ASSERT_EQ(0, start_window(fd, &cfg));
	for (r = 0; r < ARRAY_LEN(expect); r++) {
		cwnd = expect[r];
		st = snap(_metadata, fd);
		ASSERT_EQ(cwnd, st.cwnd) TH_LOG("round %u", r);
		EXPECT_EQ(30, st.ssthresh);
		EXPECT_EQ(cwnd < 30 ? BPQ_WINDOW_SLOW_START :
			  BPQ_WINDOW_AVOIDANCE, st.window_state);
		round_trip(_metadata, &self->q, cwnd);
		if (r % 2 == 0) {
			EXPECT_EQ((int)cwnd, bpq_ack(fd, 0, cwnd, 0));
			continue;
		}
		/* one at a time: in avoidance, one step within the window */
		for (j = 0, changes = 0, last = cwnd; j < cwnd; j++) {
			ASSERT_EQ(1, bpq_ack(fd, 0, 1, 0));
			st = snap(_metadata, fd);
			if (st.cwnd != last)
				changes++;
			EXPECT_LE(last, st.cwnd);
			EXPECT_GE(last + 1, st.cwnd);
			last = st.cwnd;
		}
		if (cwnd >= 30)
			EXPECT_EQ(1, changes);
	}
	st = snap(_metadata, fd);
	EXPECT_EQ(35, st.cwnd);

	/* a start above ssthresh is avoidance at once: 4, 5, 6 */
	window_config(&cfg, 4, 2);
	ASSERT_EQ(0, start_window(fd, &cfg));
	for (cwnd = 4; cwnd <= 6; cwnd++) {
		st = snap(_metadata, fd);
		ASSERT_EQ(cwnd, st.cwnd);
		EXPECT_EQ(BPQ_WINDOW_AVOIDANCE, st.window_state);
		round_trip(_metadata, &self->q, cwnd);
		EXPECT_EQ((int)cwnd, bpq_ack(fd, 0, cwnd, 0));
	}
	EXPECT_EQ(7, snap(_metadata, fd).cwnd);
	EXPECT_EQ(2, snap(_metadata, fd).ssthresh);
}

/*
 * No growth while the writers never fill the window (application
 * limited), nor when capacity rather than the window holds them back.
 */
TEST_F(window, no_growth_when_not_window_limited)
{
	struct bpq_config cfg;
	struct bpq_stats st;
	int fd = self->q.fd, r;

	window_config(&cfg, 10, WINDOW_MAX);
	ASSERT_EQ(0, start_window(fd, &cfg));
	for (r = 0; r < 20; r++) {
		ASSERT_EQ(5, fill(&self->q, 5));
		ASSERT_EQ(5, drain(&self->q, 5));
		ASSERT_EQ(5, bpq_ack(fd, 0, 5, 0));
		st = snap(_metadata, fd);
		ASSERT_EQ(10, st.cwnd) TH_LOG("round %d", r);
		EXPECT_FLIGHT(st);
	}
	ASSERT_EQ(9, fill(&self->q, 9));
	ASSERT_EQ(9, drain(&self->q, 9));
	for (r = 0; r < 9; r++)
		ASSERT_EQ(1, bpq_ack(fd, 0, 1, 0));
	st = snap(_metadata, fd);
	EXPECT_EQ(10, st.cwnd);
	EXPECT_EQ(0, st.backpressure_applied);
	EXPECT_EQ(0, st.cwnd_limited_ns);

	/* capacity 5 says EAGAIN before the window does */
	cfg.capacity_msgs = 5;
	ASSERT_EQ(0, update_config(fd, &cfg));
	ASSERT_EQ(5, fill(&self->q, CAPACITY));
	ASSERT_EQ(5, drain(&self->q, 5));
	ASSERT_EQ(5, bpq_ack(fd, 0, 5, 0));
	st = snap(_metadata, fd);
	EXPECT_EQ(10, st.cwnd);
	EXPECT_EQ(1, st.backpressure_applied);

	/* and the window, once it is the limit, grows */
	cfg.capacity_msgs = CAPACITY;
	ASSERT_EQ(0, update_config(fd, &cfg));
	round_trip(_metadata, &self->q, 10);
	ASSERT_EQ(10, bpq_ack(fd, 0, 10, 0));
	EXPECT_EQ(20, snap(_metadata, fd).cwnd);
}

/*
 * At a round's end the window stays "limited" for the next round only if
 * a writer waits right then: here one does, and the next round's acks
 * grow the window though nobody waits during it; the round after, with
 * nobody waiting at its start, does not grow.
 */
TEST_F(window, round_end_keeps_limited_while_writer_waits)
{
	struct bpq_config cfg;
	struct io_thread t;
	__u64 v;
	int fd = self->q.fd, bfd;

	window_config(&cfg, 10, WINDOW_MAX);
	ASSERT_EQ(0, start_window(fd, &cfg));
	ASSERT_EQ(10, fill(&self->q, CAPACITY));
	bfd = bpq_open(Q, O_WRONLY);
	ASSERT_LE(0, bfd);
	v = self->q.wseq++;
	ASSERT_EQ(0, io_thread_start(&t, bfd, IO_WRITE, &v, sizeof(v)));
	ASSERT_TRUE(io_thread_blocked(&t, 5000));
	ASSERT_EQ(10, drain(&self->q, 10));
	/* the round's last ack: the writer still waits at its end */
	ASSERT_EQ(10, bpq_ack(fd, 0, 10, 0));
	ASSERT_TRUE(io_thread_wait(&t, 10000));
	ASSERT_EQ(8, t.ret);
	EXPECT_EQ(20, snap(_metadata, fd).cwnd);

	/* the next round: 20 acks, nobody waiting, +1 each */
	ASSERT_EQ(1, drain(&self->q, 1));
	ASSERT_EQ(1, bpq_ack(fd, 0, 1, 0));
	EXPECT_EQ(21, snap(_metadata, fd).cwnd);
	ASSERT_EQ(5, fill(&self->q, 5));
	ASSERT_EQ(5, drain(&self->q, 5));
	ASSERT_EQ(5, bpq_ack(fd, 0, 5, 0));
	EXPECT_EQ(26, snap(_metadata, fd).cwnd);
	ASSERT_EQ(14, fill(&self->q, 14));
	ASSERT_EQ(14, drain(&self->q, 14));
	ASSERT_EQ(14, bpq_ack(fd, 0, 14, 0));
	EXPECT_EQ(40, snap(_metadata, fd).cwnd);

	/* its end found nobody waiting: no growth now */
	ASSERT_EQ(5, fill(&self->q, 5));
	ASSERT_EQ(5, drain(&self->q, 5));
	ASSERT_EQ(5, bpq_ack(fd, 0, 5, 0));
	EXPECT_EQ(40, snap(_metadata, fd).cwnd);
	EXPECT_EQ(2, snap(_metadata, fd).backpressure_applied);
	close(bfd);
}

/*
 * A NACK every SAW_K acks, and another on the ack after it: the window
 * halves on the first of each pair (ssthresh = max(cwnd / 2, 2), cwnd =
 * ssthresh), ignores the second (recovery: for cwnd acks, no signal and
 * no growth), and grows between: a sawtooth, checked ack by ack.
 */
#define SAW_K		100
#define SAW_PAIRS	20

TEST_F_TIMEOUT(window, nack_sawtooth, 120)
{
	struct bpq_stats before, after;
	struct bpq_config cfg;
	int fd = self->q.fd, n, i, acks = 0, pairs = 0, halvings = 0;
	int ignored = 0, grown = 0, rec = 0, since = 0;
	__u32 floor = 0, peak = 0, lo = ~0U, hi = 0;
	bool nack;

	window_config(&cfg, 10, WINDOW_MAX);
	ASSERT_EQ(0, start_window(fd, &cfg));
	before = snap(_metadata, fd);
	while (acks < SAW_PAIRS * SAW_K + SAW_K / 2) {
		n = fill(&self->q, CAPACITY);
		ASSERT_LT(0, n);
		ASSERT_GT(CAPACITY, n);		/* the window said EAGAIN */
		ASSERT_EQ(n, drain(&self->q, n));
		for (i = 0; i < n; i++) {
			acks++;
			nack = acks % SAW_K == 0 || (acks > SAW_K &&
						     acks % SAW_K == 1);
			pairs += acks % SAW_K == 0;
			ASSERT_EQ(1, bpq_ack(fd, nack ? BPQ_ACK_NACK : 0, 1, 0));
			after = snap(_metadata, fd);
			EXPECT_FLIGHT(after);
			if (nack && before.window_state != BPQ_WINDOW_RECOVERY) {
				EXPECT_EQ(before.congestion_events + 1,
					  after.congestion_events);
				EXPECT_EQ(before.cwnd / 2 > 2 ?
					  before.cwnd / 2 : 2, after.ssthresh)
					TH_LOG("ack %d", acks);
				EXPECT_EQ(after.ssthresh, after.cwnd);
				/* grown since the last, if there was time */
				if (halvings && since >= (int)floor)
					EXPECT_LT(floor, peak)
						TH_LOG("ack %d", acks);
				grown += halvings && floor < peak;
				halvings++;
				floor = after.cwnd;
				peak = after.cwnd;
				rec = after.cwnd;
				since = 0;
			} else {
				EXPECT_EQ(before.congestion_events,
					  after.congestion_events)
					TH_LOG("ack %d", acks);
				EXPECT_EQ(before.ssthresh, after.ssthresh);
				ignored += nack;
				if (before.window_state == BPQ_WINDOW_RECOVERY &&
				    rec > 1)
					EXPECT_EQ(before.cwnd, after.cwnd)
						TH_LOG("ack %d", acks);
				EXPECT_LE(before.cwnd, after.cwnd);
				EXPECT_GE(before.cwnd + 1, after.cwnd);
				since += before.window_state !=
					 BPQ_WINDOW_RECOVERY;
			}
			/* recovery: this ack and cwnd - 1 more */
			if (rec)
				rec--;
			EXPECT_EQ(rec > 0, after.window_state ==
					   BPQ_WINDOW_RECOVERY)
				TH_LOG("ack %d: %d left", acks, rec);
			if (after.cwnd > peak)
				peak = after.cwnd;
			if (halvings && after.cwnd < lo)
				lo = after.cwnd;
			if (halvings && after.cwnd > hi)
				hi = after.cwnd;
			before = after;
		}
	}
	EXPECT_EQ(SAW_PAIRS, pairs);
	EXPECT_EQ(pairs, halvings);
	EXPECT_EQ(pairs, ignored);	/* the second of each pair */
	EXPECT_LE(pairs - 3, grown);
	EXPECT_EQ(halvings, after.congestion_events);
	EXPECT_EQ(pairs * 2, after.nacked);
	EXPECT_EQ(acks, after.acked_msgs);
	EXPECT_EQ(0, after.stale_acks);
	EXPECT_EQ(0, after.ack_timeouts);
	TH_LOG("%d acks: %d halvings, %d NACKs ignored in recovery; cwnd %u ... %u after the first halving",
	       acks, halvings, ignored, lo, hi);
}

/*
 * The ack timeout: messages in flight and no ack for ack_timeout_ms drop
 * the window to min_cwnd, in slow start again, seen at the next stats
 * read, admission or ack; nothing in flight, no timeout.
 */
TEST_F(window, ack_timeout)
{
	struct bpq_iovec iov[5];
	struct bpq_send_batch sb = {
		.size = sizeof(sb), .flags = BPQ_IO_NONBLOCK,
		.msgs = (uintptr_t)iov, .count = 5,
	};
	__u64 vals[5], n;
	struct bpq_config cfg;
	struct bpq_stats st;
	int fd = self->q.fd, i;
	char buf[64];

	window_config(&cfg, 10, WINDOW_MAX);
	cfg.min_cwnd = 2;
	ASSERT_EQ(0, start_window(fd, &cfg));
	round_trip(_metadata, &self->q, 10);
	ASSERT_EQ(10, bpq_ack(fd, 0, 10, 0));
	cfg.ack_timeout_ms = 50;
	ASSERT_EQ(0, update_config(fd, &cfg));
	st = snap(_metadata, fd);
	ASSERT_EQ(20, st.cwnd);
	ASSERT_EQ(0, st.inflight);

	/* five in flight, from one instant: two delivered, three queued */
	for (i = 0; i < 5; i++) {
		vals[i] = self->q.wseq++;
		iov[i] = (struct bpq_iovec){ .base = (uintptr_t)&vals[i],
					     .len = sizeof(vals[i]) };
	}
	ASSERT_EQ(5, bpq_ioctl(fd, BPQ_IOC_SEND_BATCH, &sb));
	ASSERT_EQ(2, drain(&self->q, 2));
	sleep_ms(150);
	st = snap(_metadata, fd);
	EXPECT_EQ(1, st.ack_timeouts);
	EXPECT_EQ(2, st.cwnd);
	EXPECT_EQ(10, st.ssthresh);	/* max(20 / 2, 2, min_cwnd + 1) */
	EXPECT_EQ(BPQ_WINDOW_SLOW_START, st.window_state);
	EXPECT_EQ(5, st.inflight);
	EXPECT_FLIGHT(st);
	ASSERT_EQ(0, bpq_sysfs_read(Q, "window_state", buf, sizeof(buf)));
	EXPECT_STREQ("slow-start", buf);

	/* again, seen by a writer: the window of 2 holds 5 already */
	sleep_ms(150);
	EXPECT_EQ(-EAGAIN, bpq_write(fd, &self->q.wseq, sizeof(__u64)));
	st = snap(_metadata, fd);
	EXPECT_LE(2, st.ack_timeouts);
	EXPECT_EQ(2, st.cwnd);
	EXPECT_EQ(3, st.ssthresh);	/* max(2 / 2, 2, min_cwnd + 1) */
	EXPECT_EQ(2, st.backpressure_applied);

	/* and by an ack */
	n = st.ack_timeouts;
	sleep_ms(150);
	EXPECT_EQ(1, bpq_ack(fd, 0, 1, 0));
	EXPECT_LE(n + 1, snap(_metadata, fd).ack_timeouts);

	/* nothing in flight: no timeout, however long */
	ASSERT_EQ(3, drain(&self->q, 3));
	EXPECT_EQ(4, bpq_ack(fd, 0, 4, 0));
	st = snap(_metadata, fd);
	ASSERT_EQ(0, st.inflight);
	n = st.ack_timeouts;
	sleep_ms(150);
	EXPECT_EQ(n, snap(_metadata, fd).ack_timeouts);

	/* nor with ack_timeout_ms 0 */
	cfg.ack_timeout_ms = 0;
	ASSERT_EQ(0, update_config(fd, &cfg));
	ASSERT_EQ(1, fill(&self->q, 1));
	sleep_ms(150);
	st = snap(_metadata, fd);
	EXPECT_EQ(n, st.ack_timeouts);
	EXPECT_EQ(1, st.inflight);
}

/* A delivery that waited longer than target_latency_us is a signal. */
TEST_F(window, sojourn_is_congestion)
{
	struct bpq_config cfg;
	struct bpq_stats st;
	char buf[64];
	int fd = self->q.fd;

	/* 10 ms against a target of 60 s: nothing */
	window_config(&cfg, 10, WINDOW_MAX);
	ASSERT_EQ(0, start_window(fd, &cfg));
	ASSERT_EQ(3, fill(&self->q, 3));
	sleep_ms(10);
	ASSERT_EQ(3, drain(&self->q, 3));
	st = snap(_metadata, fd);
	EXPECT_EQ(0, st.congestion_events);
	EXPECT_EQ(10, st.cwnd);

	/* against 1 ms: halved, once for the window */
	cfg.target_latency_us = 1000;
	ASSERT_EQ(0, update_config(fd, &cfg));
	ASSERT_EQ(3, fill(&self->q, 3));
	sleep_ms(10);
	ASSERT_EQ(1, drain(&self->q, 1));
	st = snap(_metadata, fd);
	EXPECT_EQ(1, st.congestion_events);
	EXPECT_EQ(5, st.cwnd);
	EXPECT_EQ(5, st.ssthresh);
	EXPECT_EQ(BPQ_WINDOW_RECOVERY, st.window_state);
	EXPECT_EQ(0, st.nacked);
	ASSERT_EQ(2, drain(&self->q, 2));
	EXPECT_EQ(1, snap(_metadata, fd).congestion_events);

	/* five acks end the recovery; the next late one halves again */
	EXPECT_EQ(6, bpq_ack(fd, 0, 6, 0));
	st = snap(_metadata, fd);
	EXPECT_EQ(BPQ_WINDOW_AVOIDANCE, st.window_state);
	EXPECT_EQ(5, st.cwnd);
	ASSERT_EQ(0, bpq_sysfs_read(Q, "window_state", buf, sizeof(buf)));
	EXPECT_STREQ("avoidance", buf);
	ASSERT_EQ(1, fill(&self->q, 1));
	sleep_ms(10);
	ASSERT_EQ(1, drain(&self->q, 1));
	st = snap(_metadata, fd);
	EXPECT_EQ(2, st.congestion_events);
	EXPECT_EQ(2, st.cwnd);
	EXPECT_EQ(2, st.ssthresh);
}

/*
 * ack_mode delivery: the flight is what is queued; each delivery is the
 * ack that grows the window, and acks only count.
 */
TEST_F(window, ack_mode_delivery)
{
	struct bpq_config cfg;
	struct bpq_stats st;
	int fd = self->q.fd;

	window_config(&cfg, 10, WINDOW_MAX);
	cfg.ack_mode = BPQ_ACK_MODE_DELIVERY;
	ASSERT_EQ(0, start_window(fd, &cfg));
	ASSERT_EQ(10, fill(&self->q, CAPACITY));
	st = snap(_metadata, fd);
	EXPECT_EQ(10, st.inflight);
	EXPECT_EQ(10, st.depth_msgs);
	ASSERT_EQ(10, drain(&self->q, 10));
	st = snap(_metadata, fd);
	EXPECT_EQ(20, st.cwnd);
	EXPECT_EQ(0, st.inflight);
	EXPECT_EQ(10, st.unacked);
	EXPECT_EQ(0, st.acked_msgs);

	/* the unacked do not count: twenty go in */
	ASSERT_EQ(20, fill(&self->q, CAPACITY));
	EXPECT_EQ(20, snap(_metadata, fd).inflight);
	ASSERT_EQ(20, drain(&self->q, 20));
	st = snap(_metadata, fd);
	EXPECT_EQ(40, st.cwnd);
	EXPECT_EQ(0, st.inflight);
	EXPECT_EQ(30, st.unacked);

	/* acks, while the window is the limit: counted, no growth */
	ASSERT_EQ(40, fill(&self->q, CAPACITY));
	EXPECT_EQ(30, bpq_ack(fd, 0, 30, 0));
	st = snap(_metadata, fd);
	EXPECT_EQ(40, st.cwnd);
	EXPECT_EQ(30, st.acked_msgs);
	EXPECT_EQ(0, st.unacked);
	EXPECT_EQ(40, st.inflight);
	ASSERT_EQ(40, drain(&self->q, 40));
	st = snap(_metadata, fd);
	EXPECT_EQ(80, st.cwnd);
	EXPECT_EQ(40, st.unacked);
	EXPECT_EQ(40, bpq_ack(fd, 0, 40, 0));
	EXPECT_EQ(80, snap(_metadata, fd).cwnd);

	/* a NACK is a signal in either mode */
	EXPECT_EQ(0, bpq_ack(fd, BPQ_ACK_NACK, 1, 0));
	st = snap(_metadata, fd);
	EXPECT_EQ(40, st.cwnd);
	EXPECT_EQ(40, st.ssthresh);
	EXPECT_EQ(1, st.congestion_events);

	/* back to ack mode: the delivered count again */
	ASSERT_EQ(3, fill(&self->q, 3));
	ASSERT_EQ(3, drain(&self->q, 3));
	ASSERT_EQ(1, fill(&self->q, 1));
	EXPECT_EQ(1, snap(_metadata, fd).inflight);
	cfg.ack_mode = BPQ_ACK_MODE_ACK;
	ASSERT_EQ(0, update_config(fd, &cfg));
	st = snap(_metadata, fd);
	EXPECT_EQ(4, st.inflight);
	EXPECT_FLIGHT(st);
	EXPECT_EQ(40, st.cwnd);
}

/*
 * A writer that waits for the window: counted in backpressure_applied
 * and cwnd_limited_ns, let in by the ack that opens the window (not by
 * the reads), or out at its write timeout.
 */
TEST_F(window, waiting_writer_admitted_by_ack)
{
	struct bpq_config cfg;
	struct bpq_stats st;
	struct io_thread t;
	__u64 v, limited;
	int fd = self->q.fd, bfd;

	window_config(&cfg, 10, WINDOW_MAX);
	ASSERT_EQ(0, start_window(fd, &cfg));
	ASSERT_EQ(10, fill(&self->q, CAPACITY));
	bfd = bpq_open(Q, O_WRONLY);
	ASSERT_LE(0, bfd);
	v = self->q.wseq++;
	ASSERT_EQ(0, io_thread_start(&t, bfd, IO_WRITE, &v, sizeof(v)));
	ASSERT_TRUE(io_thread_blocked(&t, 5000));
	sleep_ms(20);
	ASSERT_EQ(10, drain(&self->q, 10));
	st = snap(_metadata, fd);
	EXPECT_EQ(0, st.depth_msgs);	/* the reads let nobody in */
	EXPECT_EQ(10, st.inflight);
	EXPECT_FALSE(io_thread_done(&t));
	EXPECT_EQ(0, poll_events(fd) & POLLOUT);

	EXPECT_EQ(1, bpq_ack(fd, 0, 1, 0));
	ASSERT_TRUE(io_thread_wait(&t, 10000));
	EXPECT_EQ(8, t.ret);
	st = snap(_metadata, fd);
	EXPECT_EQ(1, st.depth_msgs);
	EXPECT_EQ(11, st.cwnd);		/* the window was the limit */
	EXPECT_EQ(10, st.inflight);
	EXPECT_FLIGHT(st);
	EXPECT_EQ(2, st.backpressure_applied);
	EXPECT_LE(20000000, st.cwnd_limited_ns);
	EXPECT_EQ(0, st.blocked_ns);
	EXPECT_EQ(0, st.timeouts);
	EXPECT_EQ(POLLOUT, poll_events(fd) & POLLOUT);
	limited = st.cwnd_limited_ns;

	/* the window full again: a blocking writer times out */
	ASSERT_EQ(1, fill(&self->q, CAPACITY));
	ASSERT_EQ(0, bpq_set_write_timeout(fd, 100));
	EXPECT_EQ(-ETIMEDOUT, bpq_write(bfd, &v, sizeof(v)));
	st = snap(_metadata, fd);
	EXPECT_EQ(1, st.timeouts);
	EXPECT_LE(limited + 100000000, st.cwnd_limited_ns);
	EXPECT_EQ(0, st.blocked_ns);
	EXPECT_EQ(11, st.inflight);
	ASSERT_EQ(2, drain(&self->q, 2));
	close(bfd);
}

TEST_HARNESS_MAIN
