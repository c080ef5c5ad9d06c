// SPDX-License-Identifier: GPL-2.0
/*
 * Functional tests of one bpq queue, run once per strategy.
 *
 * Uses /dev/bpq0 and puts it back to defaults (empty, stats zeroed) after
 * every test.
 */
#define _GNU_SOURCE
#include <sys/epoll.h>
#include <sys/sendfile.h>
#include <sys/uio.h>

#include "bpq_test.h"
/* kselftest_harness.h of 6.1 has an unused parameter: keep -Wextra clean. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"
#include "kselftest_harness.h"
#pragma GCC diagnostic pop

#define QIDX 0

/* Configure @fd: defaults plus the given strategy and bounds (0: default). */
static int setup_queue(int fd, __u32 strategy, __u32 msgs, __u64 bytes,
		       __u32 max_msg)
{
	struct bpq_config cfg;

	bpq_default_config(&cfg);
	cfg.strategy = strategy;
	if (msgs)
		cfg.capacity_msgs = msgs;
	if (bytes)
		cfg.capacity_bytes = bytes;
	if (max_msg)
		cfg.max_msg_size = max_msg;
	return bpq_set_config(fd, &cfg);
}

/* Change single settings of the current configuration. */
static int set_watermarks(int fd, __u32 high, __u32 low)
{
	struct bpq_config cfg;
	int ret = bpq_get_config(fd, &cfg);

	if (ret)
		return ret;
	cfg.high_watermark = high;
	cfg.low_watermark = low;
	return bpq_set_config(fd, &cfg);
}

static int recv_batch(int fd, void *buf, __u32 len, struct bpq_msg_info *infos,
		      __u32 max, __u32 flags, __u32 timeout_ms)
{
	struct bpq_recv_batch b = {
		.size = sizeof(b),
		.flags = flags,
		.buf = (uintptr_t)buf,
		.buf_len = len,
		.max_records = max,
		.infos = (uintptr_t)infos,
		.timeout_ms = timeout_ms,
	};

	return bpq_ioctl(fd, BPQ_IOC_RECV_BATCH, &b);
}

FIXTURE(queue) {
	int fd;		/* blocking */
	int nfd;	/* O_NONBLOCK */
};

FIXTURE_VARIANT(queue) {
	__u32 strategy;
};

FIXTURE_VARIANT_ADD(queue, block) {
	.strategy = BPQ_STRATEGY_BLOCK,
};

FIXTURE_VARIANT_ADD(queue, drop_newest) {
	.strategy = BPQ_STRATEGY_DROP_NEWEST,
};

FIXTURE_VARIANT_ADD(queue, drop_oldest) {
	.strategy = BPQ_STRATEGY_DROP_OLDEST,
};

FIXTURE_SETUP(queue)
{
	self->fd = bpq_open(QIDX, O_RDWR);
	ASSERT_LE(0, self->fd) TH_LOG("%m - open /dev/bpq%d", QIDX);
	self->nfd = bpq_open(QIDX, O_RDWR | O_NONBLOCK);
	ASSERT_LE(0, self->nfd) TH_LOG("%m - open /dev/bpq%d", QIDX);
	ASSERT_EQ(0, bpq_reset(self->fd));
	ASSERT_EQ(0, setup_queue(self->fd, variant->strategy, 0, 0, 0));
}

FIXTURE_TEARDOWN(queue)
{
	EXPECT_EQ(0, bpq_reset(self->fd));
	close(self->nfd);
	close(self->fd);
}

TEST_F(queue, strategy_in_sysfs)
{
	char buf[64];

	ASSERT_EQ(0, bpq_sysfs_read(QIDX, "strategy", buf, sizeof(buf)));
	ASSERT_STREQ(bpq_strategy_name(variant->strategy), buf);
}

TEST_F(queue, round_trip)
{
	static const size_t sizes[] = { 1, 2, 17, 255, 4096, 65535, 65536 };
	static unsigned char buf[65536 + 64];
	struct bpq_stats st;
	size_t i, total = 0;

	for (i = 0; i < ARRAY_LEN(sizes); i++) {
		fill_pattern(buf, sizes[i], i);
		ASSERT_EQ((ssize_t)sizes[i], bpq_write(self->fd, buf, sizes[i]));
		total += sizes[i];
	}
	ASSERT_EQ(0, bpq_get_stats(self->fd, &st));
	ASSERT_EQ(ARRAY_LEN(sizes), st.depth_msgs);
	ASSERT_EQ(total, st.depth_bytes);

	for (i = 0; i < ARRAY_LEN(sizes); i++) {
		memset(buf, 0x5a, sizeof(buf));
		ASSERT_EQ((ssize_t)sizes[i], bpq_read(self->fd, buf, sizeof(buf)));
		ASSERT_TRUE(check_pattern(buf, sizes[i], i));
		/* Bytes beyond the message are left alone. */
		ASSERT_EQ(0x5a, buf[sizes[i]]);
		ASSERT_EQ(0x5a, buf[sizeof(buf) - 1]);
	}
	ASSERT_EQ(-EAGAIN, bpq_read(self->nfd, buf, sizeof(buf)));

	ASSERT_EQ(0, bpq_get_stats(self->fd, &st));
	ASSERT_EQ(ARRAY_LEN(sizes), st.enqueued_msgs);
	ASSERT_EQ(ARRAY_LEN(sizes), st.dequeued_msgs);
	ASSERT_EQ(total, st.enqueued_bytes);
	ASSERT_EQ(total, st.dequeued_bytes);
	ASSERT_EQ(0U, st.depth_msgs);
	ASSERT_EQ(0U, st.depth_bytes);
}

TEST_F(queue, zero_length_write)
{
	char c = 'x';

	ASSERT_EQ(0, bpq_write(self->fd, &c, 0));
	ASSERT_EQ(0, bpq_write(self->fd, NULL, 0));
	ASSERT_EQ(0U, bpq_sysfs_u64(QIDX, "depth_msgs"));
	ASSERT_EQ(0U, bpq_sysfs_u64(QIDX, "stats/enqueued_msgs"));
}

TEST_F(queue, message_sizes)
{
	static unsigned char buf[2048];

	ASSERT_EQ(0, setup_queue(self->fd, variant->strategy, 0, 0, 1000));
	ASSERT_EQ(1000U, bpq_sysfs_u64(QIDX, "max_msg_size"));

	ASSERT_EQ(1, bpq_write_pattern(self->fd, 1, 1));
	ASSERT_EQ(999, bpq_write(self->fd, buf, 999));
	ASSERT_EQ(1000, bpq_write(self->fd, buf, 1000));
	ASSERT_EQ(-EMSGSIZE, bpq_write(self->fd, buf, 1001));
	ASSERT_EQ(-EMSGSIZE, bpq_write(self->fd, buf, sizeof(buf)));

	ASSERT_EQ(0, bpq_read_pattern(self->fd, 1, 1));
	ASSERT_EQ(999, bpq_read(self->fd, buf, sizeof(buf)));
	ASSERT_EQ(1000, bpq_read(self->fd, buf, sizeof(buf)));
	ASSERT_EQ(-EAGAIN, bpq_read(self->nfd, buf, sizeof(buf)));
	ASSERT_EQ(3U, bpq_sysfs_u64(QIDX, "stats/enqueued_msgs"));
}

/* Too large fails at once, even when the queue is full and blocking. */
/*
 * The queue's log keeps a record per message, its payload running on from
 * page to page: every size around a page's edges, and large ones, come
 * back whole and in order, read one by one and in batches, while the log
 * wraps past its pages and gives them back.
 */
static const __u32 log_sizes[] = {
	1, 7, 8, 9, 15, 16, 17, 73, 457, 2040, 2047, 2048, 2049, 2056,
	4063, 4064, 4065, 4079, 4080, 4081, 4088, 4095, 4096, 4097,
	8191, 8192, 8193, 12000, 65536,
};
#define LOG_SIZES	(sizeof(log_sizes) / sizeof(log_sizes[0]))
#define LOG_ROUNDS	4

TEST_F(queue, log_sizes_and_order)
{
	unsigned int n, w = 0, r = 0, i, k;
	struct bpq_msg_info infos[8];
	static unsigned char buf[8 * 65536];
	__u64 seq = 0;
	int ret;

	ASSERT_EQ(0, setup_queue(self->fd, variant->strategy, 1024, 8 << 20,
				 65536));
	for (n = 0; n < LOG_ROUNDS * LOG_SIZES; n++) {
		/* write two, read one: the log grows, then drains */
		for (k = 0; k < 2; k++, w++) {
			__u32 len = log_sizes[w % LOG_SIZES];

			fill_pattern(buf, len, w);
			ASSERT_EQ((ssize_t)len, bpq_write(self->fd, buf, len));
		}
		ret = bpq_recv(self->fd, buf, sizeof(buf), 0, 0, &infos[0]);
		ASSERT_EQ((int)log_sizes[r % LOG_SIZES], ret);
		ASSERT_TRUE(check_pattern(buf, ret, r)) TH_LOG("message %u", r);
		ASSERT_LT(seq, infos[0].seq);
		seq = infos[0].seq;
		r++;
	}
	/* the rest, in batches that take several records at once */
	while (r < w) {
		ret = recv_batch(self->fd, buf, sizeof(buf), infos, 8,
				 BPQ_IO_NONBLOCK, 0);
		ASSERT_LT(0, ret) TH_LOG("%s", strerror(-ret));
		for (i = 0; i < (unsigned int)ret; i++, r++) {
			ASSERT_EQ(log_sizes[r % LOG_SIZES], infos[i].len);
			ASSERT_TRUE(check_pattern(buf + infos[i].offset,
						  infos[i].len, r))
				TH_LOG("message %u", r);
			ASSERT_LT(seq, infos[i].seq);
			seq = infos[i].seq;
		}
	}
	EXPECT_EQ(0ULL, bpq_depth(self->fd));
}

TEST_F(queue, oversize_on_full_queue)
{
	static unsigned char buf[1024];
	struct bpq_config cfg;
	struct bpq_stats st;
	int64_t t0;
	int i;

	ASSERT_EQ(0, setup_queue(self->fd, variant->strategy, 4, 0, 512));
	/* Safety net: a wrongly blocking write ends after 3 s. */
	ASSERT_EQ(0, bpq_set_write_timeout(self->fd, 3000));
	for (i = 0; i < 4; i++) {
		ASSERT_EQ(10, bpq_write_pattern(self->fd, i, 10));
	}

	t0 = now_ns();
	ASSERT_EQ(-EMSGSIZE, bpq_write(self->fd, buf, 513));
	ASSERT_GT(1000000000LL, now_ns() - t0);

	/* Larger than capacity_bytes while below max_msg_size. */
	ASSERT_EQ(0, bpq_get_config(self->fd, &cfg));
	cfg.capacity_bytes = 100;
	ASSERT_EQ(0, bpq_set_config(self->fd, &cfg));
	t0 = now_ns();
	ASSERT_EQ(-EMSGSIZE, bpq_write(self->fd, buf, 101));
	ASSERT_GT(1000000000LL, now_ns() - t0);

	ASSERT_EQ(0, bpq_get_stats(self->fd, &st));
	ASSERT_EQ(4U, st.depth_msgs);
	ASSERT_EQ(4U, st.enqueued_msgs);
	ASSERT_EQ(0U, st.dropped_newest);
	ASSERT_EQ(0U, st.dropped_oldest);
	ASSERT_EQ(0U, st.timeouts);
	for (i = 0; i < 4; i++) {
		ASSERT_EQ(0, bpq_read_pattern(self->fd, i, 10));
	}
}

TEST_F(queue, short_read_buffer)
{
	unsigned char buf[128];
	struct bpq_msg_info info;

	ASSERT_EQ(100, bpq_write_pattern(self->fd, 7, 100));
	ASSERT_EQ(-EMSGSIZE, bpq_read(self->fd, buf, 99));
	ASSERT_EQ(-EMSGSIZE, bpq_read(self->fd, buf, 1));
	ASSERT_EQ(-EMSGSIZE, bpq_recv(self->fd, buf, 99, 0, 0, &info));
	ASSERT_EQ(1U, bpq_depth(self->fd));
	ASSERT_EQ(0U, bpq_sysfs_u64(QIDX, "stats/dequeued_msgs"));

	ASSERT_EQ(100, bpq_read(self->fd, buf, 100));
	ASSERT_TRUE(check_pattern(buf, 100, 7));
	ASSERT_EQ(0U, bpq_depth(self->fd));
}

/* The fifth message on a queue of four, per strategy. */
TEST_F(queue, full_by_count)
{
	struct bpq_stats st;
	int i;

	ASSERT_EQ(0, setup_queue(self->fd, variant->strategy, 4, 0, 0));
	for (i = 0; i < 4; i++) {
		ASSERT_EQ(8 + i, bpq_write_pattern(self->fd, i, 8 + i));
	}

	switch (variant->strategy) {
	case BPQ_STRATEGY_BLOCK:
		ASSERT_EQ(-EAGAIN, bpq_write_pattern(self->nfd, 4, 12));
		break;
	case BPQ_STRATEGY_DROP_NEWEST:
		/* Refused at once even on a blocking file. */
		ASSERT_EQ(-ENOBUFS, bpq_write_pattern(self->fd, 4, 12));
		break;
	case BPQ_STRATEGY_DROP_OLDEST:
		ASSERT_EQ(12, bpq_write_pattern(self->fd, 4, 12));
		break;
	}

	ASSERT_EQ(0, bpq_get_stats(self->fd, &st));
	ASSERT_EQ(4U, st.depth_msgs);
	ASSERT_EQ((__u64)(variant->strategy == BPQ_STRATEGY_DROP_NEWEST),
		  st.dropped_newest);
	ASSERT_EQ((__u64)(variant->strategy == BPQ_STRATEGY_DROP_OLDEST),
		  st.dropped_oldest);
	ASSERT_EQ((__u64)(variant->strategy != BPQ_STRATEGY_DROP_OLDEST),
		  st.backpressure_applied);
	ASSERT_TRUE(bpq_stats_balanced(&st));

	if (variant->strategy == BPQ_STRATEGY_DROP_OLDEST) {
		for (i = 1; i < 5; i++) {
			ASSERT_EQ(0, bpq_read_pattern(self->fd, i, 8 + i));
		}
	} else {
		for (i = 0; i < 4; i++) {
			ASSERT_EQ(0, bpq_read_pattern(self->fd, i, 8 + i));
		}
	}
	ASSERT_EQ(-EAGAIN, bpq_read_pattern(self->nfd, 0, 0));
}

/* The byte bound alone makes the queue full. */
TEST_F(queue, full_by_bytes)
{
	struct bpq_stats st;
	ssize_t ret;

	ASSERT_EQ(0, setup_queue(self->fd, variant->strategy, 0, 100, 100));
	ASSERT_EQ(60, bpq_write_pattern(self->fd, 0, 60));
	ret = bpq_write_pattern(self->nfd, 1, 50);

	ASSERT_EQ(0, bpq_get_stats(self->fd, &st));
	switch (variant->strategy) {
	case BPQ_STRATEGY_BLOCK:
		ASSERT_EQ(-EAGAIN, ret);
		ASSERT_EQ(60U, st.depth_bytes);
		break;
	case BPQ_STRATEGY_DROP_NEWEST:
		ASSERT_EQ(-ENOBUFS, ret);
		ASSERT_EQ(60U, st.depth_bytes);
		ASSERT_EQ(1U, st.dropped_newest);
		break;
	case BPQ_STRATEGY_DROP_OLDEST:
		ASSERT_EQ(50, ret);
		ASSERT_EQ(50U, st.depth_bytes);
		ASSERT_EQ(1U, st.dropped_oldest);
		ASSERT_EQ(0, bpq_read_pattern(self->fd, 1, 50));
		break;
	}
	ASSERT_EQ(1U, st.depth_msgs);
	ASSERT_TRUE(bpq_stats_balanced(&st));
}

#define P_IN	(POLLIN | POLLRDNORM)
#define P_OUT	(POLLOUT | POLLWRNORM)

/* Expected poll bits: readable?, writable?, pressure? */
static short expect_bits(bool in, bool out, bool pri)
{
	return (in ? P_IN : 0) | (out ? P_OUT : 0) | (pri ? POLLPRI : 0);
}

TEST_F(queue, poll_full_edges)
{
	bool drop = variant->strategy != BPQ_STRATEGY_BLOCK;
	int i;

	ASSERT_EQ(0, setup_queue(self->fd, variant->strategy, 4, 0, 0));
	ASSERT_EQ(expect_bits(false, true, false), poll_events(self->fd));
	for (i = 0; i < 3; i++) {
		ASSERT_EQ(8, bpq_write_pattern(self->fd, i, 8));
		ASSERT_EQ(expect_bits(true, true, false), poll_events(self->fd));
	}
	ASSERT_EQ(8, bpq_write_pattern(self->fd, 3, 8));
	ASSERT_EQ(expect_bits(true, drop, true), poll_events(self->fd));
	ASSERT_EQ(1U, bpq_sysfs_u64(QIDX, "pressure"));
	ASSERT_EQ(100U, bpq_sysfs_u64(QIDX, "utilization"));

	ASSERT_EQ(0, bpq_read_pattern(self->fd, 0, 8));
	ASSERT_EQ(expect_bits(true, true, false), poll_events(self->fd));
	ASSERT_EQ(0U, bpq_sysfs_u64(QIDX, "pressure"));
	ASSERT_EQ(3, bpq_flush(self->fd));
	ASSERT_EQ(expect_bits(false, true, false), poll_events(self->fd));
}

/* High 75 %, low 50 % on four messages: pressure from 3 until below 2. */
TEST_F(queue, poll_watermark_edges)
{
	bool block = variant->strategy == BPQ_STRATEGY_BLOCK;
	struct bpq_stats st;
	int i;

	ASSERT_EQ(0, setup_queue(self->fd, variant->strategy, 4, 0, 0));
	ASSERT_EQ(0, set_watermarks(self->fd, 75, 50));

	for (i = 0; i < 2; i++) {
		ASSERT_EQ(8, bpq_write_pattern(self->fd, i, 8));
		ASSERT_EQ(expect_bits(true, true, false), poll_events(self->fd));
	}
	ASSERT_EQ(8, bpq_write_pattern(self->fd, 2, 8));
	ASSERT_EQ(expect_bits(true, !block, true), poll_events(self->fd));
	ASSERT_EQ(0, bpq_get_stats(self->fd, &st));
	ASSERT_EQ(1U, st.pressure);
	ASSERT_EQ(75U, st.utilization);
	if (block) {
		ASSERT_EQ(-EAGAIN, bpq_write_pattern(self->nfd, 9, 8));
	}

	/* 50 % is not below the low watermark: pressure holds. */
	ASSERT_EQ(0, bpq_read_pattern(self->fd, 0, 8));
	ASSERT_EQ(expect_bits(true, !block, true), poll_events(self->fd));
	ASSERT_EQ(1U, bpq_sysfs_u64(QIDX, "pressure"));
	if (block) {
		ASSERT_EQ(-EAGAIN, bpq_write_pattern(self->nfd, 9, 8));
	}

	/* 25 %: pressure ends. */
	ASSERT_EQ(0, bpq_read_pattern(self->fd, 1, 8));
	ASSERT_EQ(expect_bits(true, true, false), poll_events(self->fd));
	ASSERT_EQ(0U, bpq_sysfs_u64(QIDX, "pressure"));

	ASSERT_EQ(0, bpq_read_pattern(self->fd, 2, 8));
	ASSERT_EQ(expect_bits(false, true, false), poll_events(self->fd));
	ASSERT_EQ(0, bpq_get_stats(self->fd, &st));
	ASSERT_TRUE(bpq_stats_balanced(&st));
}

TEST_F(queue, write_timeout)
{
	int64_t t0, dt;
	struct bpq_stats st;
	ssize_t ret;

	ASSERT_EQ(0, setup_queue(self->fd, variant->strategy, 1, 0, 0));
	ASSERT_EQ(0, bpq_set_write_timeout(self->fd, 100));
	ASSERT_EQ(100U, bpq_sysfs_u64(QIDX, "write_timeout_ms"));
	ASSERT_EQ(4, bpq_write_pattern(self->fd, 0, 4));

	t0 = now_ns();
	ret = bpq_write_pattern(self->fd, 1, 4);
	dt = now_ns() - t0;
	ASSERT_EQ(0, bpq_get_stats(self->fd, &st));

	switch (variant->strategy) {
	case BPQ_STRATEGY_BLOCK:
		ASSERT_EQ(-ETIMEDOUT, ret);
		ASSERT_LE(100000000LL, dt);
		ASSERT_GT(5000000000LL, dt);
		ASSERT_EQ(1U, st.timeouts);
		ASSERT_EQ(1U, st.backpressure_applied);
		ASSERT_LT(0U, st.blocked_ns);
		break;
	case BPQ_STRATEGY_DROP_NEWEST:
		ASSERT_EQ(-ENOBUFS, ret);
		ASSERT_GT(100000000LL, dt);
		ASSERT_EQ(0U, st.timeouts);
		break;
	case BPQ_STRATEGY_DROP_OLDEST:
		ASSERT_EQ(4, ret);
		ASSERT_GT(100000000LL, dt);
		ASSERT_EQ(0U, st.timeouts);
		break;
	}
	ASSERT_EQ(1U, st.depth_msgs);
	ASSERT_TRUE(bpq_stats_balanced(&st));
}

TEST_F_TIMEOUT(queue, recv_timeout, 10)
{
	char buf[16];
	int64_t t0, dt;

	t0 = now_ns();
	ASSERT_EQ(-ETIMEDOUT, bpq_recv(self->fd, buf, sizeof(buf),
				       BPQ_IO_TIMEOUT, 100, NULL));
	dt = now_ns() - t0;
	ASSERT_LE(100000000LL, dt);
	ASSERT_GT(5000000000LL, dt);

	ASSERT_EQ(-EAGAIN, bpq_recv(self->fd, buf, sizeof(buf),
				    BPQ_IO_NONBLOCK, 0, NULL));
}

/* BPQ_IO_TIMEOUT with 0 ms: a zero timeout returns at once. */
TEST_F_TIMEOUT(queue, recv_zero_timeout, 10)
{
	struct bpq_msg_info info;
	char buf[16];
	int64_t t0;

	t0 = now_ns();
	ASSERT_EQ(-ETIMEDOUT, bpq_recv(self->fd, buf, sizeof(buf),
				       BPQ_IO_TIMEOUT, 0, NULL));
	ASSERT_GT(500000000LL, now_ns() - t0);
	t0 = now_ns();
	ASSERT_EQ(-ETIMEDOUT, recv_batch(self->fd, buf, sizeof(buf), &info, 1,
					 BPQ_IO_TIMEOUT, 0));
	ASSERT_GT(500000000LL, now_ns() - t0);
}

/* The receive ioctls on an O_NONBLOCK file do not wait either. */
TEST_F_TIMEOUT(queue, recv_nonblocking_file, 10)
{
	struct bpq_msg_info info;
	char buf[16];

	ASSERT_EQ(-EAGAIN, bpq_recv(self->nfd, buf, sizeof(buf), 0, 0, NULL));
	ASSERT_EQ(-EAGAIN, recv_batch(self->nfd, buf, sizeof(buf), &info, 1,
				      0, 0));
}

/* Check the counters at every quiet point of a mixed sequence. */
TEST_F(queue, counters_reconcile)
{
	__u64 enq, deq, drop_new = 0, drop_old = 0, bp = 0;
	struct bpq_stats st;
	char name[64];
	int i, ok = 0;

	ASSERT_EQ(0, setup_queue(self->fd, variant->strategy, 4, 0, 0));
	for (i = 0; i < 6; i++)
		ok += bpq_write_pattern(self->nfd, i, 10) == 10;

	switch (variant->strategy) {
	case BPQ_STRATEGY_BLOCK:
		bp = 2;
		break;
	case BPQ_STRATEGY_DROP_NEWEST:
		bp = 2;
		drop_new = 2;
		break;
	case BPQ_STRATEGY_DROP_OLDEST:
		drop_old = 2;
		break;
	}
	enq = ok;
	ASSERT_EQ(4 + drop_old, enq);
	ASSERT_EQ(0, bpq_get_stats(self->fd, &st));
	ASSERT_TRUE(bpq_stats_balanced(&st));
	ASSERT_EQ(enq, st.enqueued_msgs);
	ASSERT_EQ(enq * 10, st.enqueued_bytes);
	ASSERT_EQ(drop_new, st.dropped_newest);
	ASSERT_EQ(drop_old, st.dropped_oldest);
	ASSERT_EQ(bp, st.backpressure_applied);

	ASSERT_EQ(10, bpq_read(self->fd, name, sizeof(name)));
	ASSERT_EQ(10, bpq_read(self->fd, name, sizeof(name)));
	ASSERT_EQ(0, bpq_get_stats(self->fd, &st));
	ASSERT_TRUE(bpq_stats_balanced(&st));
	ASSERT_EQ(2U, st.dequeued_msgs);
	ASSERT_EQ(20U, st.dequeued_bytes);

	ASSERT_EQ(2, bpq_flush(self->fd));
	ASSERT_EQ(0, bpq_flush(self->fd));
	for (i = 0; i < 3; i++) {
		ASSERT_EQ(10, bpq_write_pattern(self->fd, i, 10));
	}
	ASSERT_EQ(10, bpq_read(self->fd, name, sizeof(name)));
	enq += 3;
	deq = 3;

	ASSERT_EQ(0, bpq_get_stats(self->fd, &st));
	ASSERT_TRUE(bpq_stats_balanced(&st));
	ASSERT_EQ(enq, st.enqueued_msgs);
	ASSERT_EQ(deq, st.dequeued_msgs);
	ASSERT_EQ(2U, st.flushed);
	ASSERT_EQ(2U, st.depth_msgs);
	ASSERT_EQ(20U, st.depth_bytes);

	/* sysfs shows the same numbers. */
	ASSERT_EQ(st.enqueued_msgs, bpq_sysfs_u64(QIDX, "stats/enqueued_msgs"));
	ASSERT_EQ(st.enqueued_bytes, bpq_sysfs_u64(QIDX, "stats/enqueued_bytes"));
	ASSERT_EQ(st.dequeued_msgs, bpq_sysfs_u64(QIDX, "stats/dequeued_msgs"));
	ASSERT_EQ(st.dequeued_bytes, bpq_sysfs_u64(QIDX, "stats/dequeued_bytes"));
	ASSERT_EQ(st.dropped_newest, bpq_sysfs_u64(QIDX, "stats/dropped_newest"));
	ASSERT_EQ(st.dropped_oldest, bpq_sysfs_u64(QIDX, "stats/dropped_oldest"));
	ASSERT_EQ(st.flushed, bpq_sysfs_u64(QIDX, "stats/flushed"));
	ASSERT_EQ(st.backpressure_applied,
		  bpq_sysfs_u64(QIDX, "stats/backpressure_applied"));
	ASSERT_EQ(st.timeouts, bpq_sysfs_u64(QIDX, "stats/timeouts"));
	ASSERT_EQ(st.depth_msgs, bpq_sysfs_u64(QIDX, "depth_msgs"));
	ASSERT_EQ(st.depth_bytes, bpq_sysfs_u64(QIDX, "depth_bytes"));

	/* Reset on an empty queue zeroes every counter. */
	ASSERT_EQ(2, bpq_flush(self->fd));
	ASSERT_EQ(0, bpq_sysfs_write(QIDX, "stats/reset", "1"));
	ASSERT_EQ(0, bpq_get_stats(self->fd, &st));
	ASSERT_EQ(0U, st.enqueued_msgs);
	ASSERT_EQ(0U, st.dequeued_msgs);
	ASSERT_EQ(0U, st.flushed);
	ASSERT_EQ(0U, st.dropped_newest);
	ASSERT_EQ(0U, st.dropped_oldest);
	ASSERT_EQ(0U, st.backpressure_applied);
	ASSERT_EQ(0U, bpq_sysfs_u64(QIDX, "stats/enqueued_msgs"));
}

TEST_F(queue, recv_info)
{
	struct bpq_msg_info info[3];
	unsigned char buf[64];
	__u64 base, prev_ts = 0;
	int64_t t0, t1;
	int i;

	ASSERT_EQ(0, setup_queue(self->fd, variant->strategy, 2, 0, 0));
	t0 = now_ns();
	for (i = 0; i < 2; i++) {
		ASSERT_EQ(5 + i, bpq_write_pattern(self->fd, i, 5 + i));
		sleep_ms(1);
	}
	t1 = now_ns();

	for (i = 0; i < 2; i++) {
		memset(&info[i], 0xa5, sizeof(info[i]));
		ASSERT_EQ(5 + i, bpq_recv(self->fd, buf, sizeof(buf), 0, 0,
					  &info[i]));
		ASSERT_TRUE(check_pattern(buf, 5 + i, i));
		ASSERT_EQ(5U + i, info[i].len);
		ASSERT_EQ(0U, info[i].offset);
		ASSERT_EQ(0U, info[i].lost);
		ASSERT_LE((__u64)t0, info[i].timestamp_ns);
		ASSERT_GE((__u64)t1, info[i].timestamp_ns);
		ASSERT_LE(prev_ts, info[i].timestamp_ns);
		prev_ts = info[i].timestamp_ns;
	}
	base = info[0].seq;
	ASSERT_LE(1U, base);
	ASSERT_EQ(base + 1, info[1].seq);

	/* A flush leaves a hole; numbers are never reused. */
	ASSERT_EQ(3, bpq_write_pattern(self->fd, 2, 3));
	ASSERT_EQ(3, bpq_write_pattern(self->fd, 3, 3));
	ASSERT_EQ(2, bpq_flush(self->fd));
	ASSERT_EQ(3, bpq_write_pattern(self->fd, 4, 3));
	ASSERT_EQ(3, bpq_recv(self->fd, buf, sizeof(buf), 0, 0, &info[0]));
	ASSERT_EQ(base + 4, info[0].seq);
	base = info[0].seq;

	/* Five writes on a queue of two. */
	for (i = 0; i < 5; i++)
		bpq_write_pattern(self->nfd, 10 + i, 4);

	switch (variant->strategy) {
	case BPQ_STRATEGY_BLOCK:
		/* nothing was lost: the first two were kept */
		break;
	case BPQ_STRATEGY_DROP_NEWEST:
		/* refused messages get no number: no hole */
		ASSERT_EQ(4, bpq_recv(self->fd, buf, sizeof(buf), 0, 0, &info[0]));
		ASSERT_EQ(base + 1, info[0].seq);
		ASSERT_TRUE(check_pattern(buf, 4, 10));
		ASSERT_EQ(4, bpq_recv(self->fd, buf, sizeof(buf), 0, 0, &info[1]));
		ASSERT_EQ(base + 2, info[1].seq);
		break;
	case BPQ_STRATEGY_DROP_OLDEST:
		/* three evicted: a hole of three, reported once as lost */
		ASSERT_EQ(4, bpq_recv(self->fd, buf, sizeof(buf), 0, 0, &info[0]));
		ASSERT_EQ(base + 4, info[0].seq);
		ASSERT_EQ(3U, info[0].lost);
		ASSERT_TRUE(check_pattern(buf, 4, 13));
		ASSERT_EQ(4, bpq_recv(self->fd, buf, sizeof(buf), 0, 0, &info[1]));
		ASSERT_EQ(base + 5, info[1].seq);
		ASSERT_EQ(0U, info[1].lost);
		break;
	}
}

/* Build @n iovecs of message i = first + k with length 1 + k. */
static void make_batch(struct bpq_iovec *iov, unsigned char (*bufs)[16], int n)
{
	int k;

	memset(iov, 0, n * sizeof(*iov));
	for (k = 0; k < n; k++) {
		fill_pattern(bufs[k], 1 + k, k);
		iov[k].base = (uintptr_t)bufs[k];
		iov[k].len = 1 + k;
	}
}

static int send_batch(int fd, struct bpq_iovec *iov, int n, __u32 flags)
{
	struct bpq_send_batch b = {
		.size = sizeof(b),
		.flags = flags,
		.msgs = (uintptr_t)iov,
		.count = n,
	};

	return bpq_ioctl(fd, BPQ_IOC_SEND_BATCH, &b);
}

TEST_F(queue, batch_send)
{
	unsigned char bufs[6][16];
	struct bpq_iovec iov[6];
	struct bpq_stats st;
	int k, first = 0;

	make_batch(iov, bufs, 6);
	ASSERT_EQ(3, send_batch(self->fd, iov, 3, 0));
	for (k = 0; k < 3; k++) {
		ASSERT_EQ(0, bpq_read_pattern(self->fd, k, 1 + k));
	}

	/* Six on a queue of four. */
	ASSERT_EQ(0, setup_queue(self->fd, variant->strategy, 4, 0, 0));
	switch (variant->strategy) {
	case BPQ_STRATEGY_BLOCK:
	case BPQ_STRATEGY_DROP_NEWEST:
		ASSERT_EQ(4, send_batch(self->fd, iov, 6, BPQ_IO_NONBLOCK));
		break;
	case BPQ_STRATEGY_DROP_OLDEST:
		ASSERT_EQ(6, send_batch(self->fd, iov, 6, BPQ_IO_NONBLOCK));
		first = 2;
		break;
	}
	ASSERT_EQ(0, bpq_get_stats(self->fd, &st));
	ASSERT_EQ(4U, st.depth_msgs);
	ASSERT_TRUE(bpq_stats_balanced(&st));
	if (variant->strategy == BPQ_STRATEGY_DROP_NEWEST) {
		ASSERT_LE(1U, st.dropped_newest);
	}
	if (variant->strategy == BPQ_STRATEGY_DROP_OLDEST) {
		ASSERT_EQ(2U, st.dropped_oldest);
	}

	/* Nothing admitted at all: the error of the first message. */
	if (variant->strategy == BPQ_STRATEGY_BLOCK) {
		ASSERT_EQ(-EAGAIN, send_batch(self->fd, iov, 2, BPQ_IO_NONBLOCK));
	}
	if (variant->strategy == BPQ_STRATEGY_DROP_NEWEST) {
		ASSERT_EQ(-ENOBUFS, send_batch(self->fd, iov, 2, 0));
	}

	for (k = first; k < first + 4; k++) {
		ASSERT_EQ(0, bpq_read_pattern(self->fd, k, 1 + k));
	}
	ASSERT_EQ(0U, bpq_depth(self->fd));

	/* A too large message stops the batch: the ones before it stay. */
	ASSERT_EQ(0, setup_queue(self->fd, variant->strategy, 0, 0, 2));
	ASSERT_EQ(-EMSGSIZE, send_batch(self->fd, &iov[2], 2, 0));
	ASSERT_EQ(0U, bpq_depth(self->fd));
	ASSERT_EQ(2, send_batch(self->fd, iov, 4, 0));
	ASSERT_EQ(2U, bpq_depth(self->fd));
}

TEST_F_TIMEOUT(queue, batch_recv, 10)
{
	struct bpq_msg_info infos[8];
	unsigned char buf[256];
	int64_t t0;
	int i;

	for (i = 0; i < 5; i++) {
		ASSERT_EQ(10, bpq_write_pattern(self->fd, i, 10));
	}

	/* Bounded by max_records. */
	memset(infos, 0xa5, sizeof(infos));
	ASSERT_EQ(3, recv_batch(self->fd, buf, sizeof(buf), infos, 3, 0, 0));
	for (i = 0; i < 3; i++) {
		ASSERT_EQ(10U, infos[i].len);
		ASSERT_EQ(10U * i, infos[i].offset);
		ASSERT_EQ(0U, infos[i].lost);
		ASSERT_EQ(infos[0].seq + i, infos[i].seq);
		ASSERT_TRUE(check_pattern(buf + infos[i].offset, 10, i));
	}
	/* Untouched beyond max_records. */
	ASSERT_EQ(0xa5a5a5a5a5a5a5a5ULL, infos[3].seq);

	/* Bounded by buf_len: 25 bytes hold two messages of 10. */
	ASSERT_EQ(2, recv_batch(self->fd, buf, 25, infos, 8, 0, 0));
	ASSERT_TRUE(check_pattern(buf, 10, 3));
	ASSERT_TRUE(check_pattern(buf + 10, 10, 4));

	/* The first one does not fit: EMSGSIZE, it stays. */
	ASSERT_EQ(0U, bpq_depth(self->fd));
	ASSERT_EQ(10, bpq_write_pattern(self->fd, 6, 10));
	ASSERT_EQ(-EMSGSIZE, recv_batch(self->fd, buf, 9, infos, 8, 0, 0));
	ASSERT_EQ(1U, bpq_depth(self->fd));
	ASSERT_EQ(1, recv_batch(self->fd, buf, 10, infos, 8, 0, 0));
	ASSERT_TRUE(check_pattern(buf, 10, 6));

	/* Empty. */
	ASSERT_EQ(-EAGAIN, recv_batch(self->fd, buf, sizeof(buf), infos, 8,
				      BPQ_IO_NONBLOCK, 0));
	t0 = now_ns();
	ASSERT_EQ(-ETIMEDOUT, recv_batch(self->fd, buf, sizeof(buf), infos, 8,
					 BPQ_IO_TIMEOUT, 50));
	ASSERT_LE(50000000LL, now_ns() - t0);
}

TEST_F(queue, writev_gathers_readv_scatters)
{
	char a[] = "abc", b[] = "defgh", out1[4], out2[100];
	struct iovec wv[3] = {
		{ a, 3 }, { NULL, 0 }, { b, 5 },
	};
	struct iovec rv[2] = {
		{ out1, sizeof(out1) }, { out2, sizeof(out2) },
	};
	struct iovec small[2] = {
		{ out1, 2 }, { out2, 3 },
	};

	ASSERT_EQ(8, writev(self->fd, wv, 3));
	ASSERT_EQ(1U, bpq_depth(self->fd));
	ASSERT_EQ(-1, readv(self->fd, small, 2));
	ASSERT_EQ(EMSGSIZE, errno);
	ASSERT_EQ(1U, bpq_depth(self->fd));
	ASSERT_EQ(8, readv(self->fd, rv, 2));
	ASSERT_EQ(0, memcmp(out1, "abcd", 4));
	ASSERT_EQ(0, memcmp(out2, "efgh", 4));
	ASSERT_EQ(0U, bpq_depth(self->fd));
}

/* Edge-triggered consumer draining to EAGAIN never misses a message. */
struct et_producer {
	int fd;
	int fd_stats;
	int total;
	int sent;
};

static void *et_produce(void *arg)
{
	struct et_producer *p = arg;
	unsigned int seed = 1;
	int burst, k;

	while (p->sent < p->total) {
		/* Keep well below capacity so no strategy drops. */
		while (bpq_depth(p->fd_stats) > 64)
			usleep(100);
		burst = 1 + rand_r(&seed) % 16;
		for (k = 0; k < burst && p->sent < p->total; k++) {
			if (bpq_write_pattern(p->fd, p->sent, 8) != 8)
				return (void *)1;
			p->sent++;
		}
		usleep(rand_r(&seed) % 300);
	}
	return NULL;
}

TEST_F_TIMEOUT(queue, epoll_edge_triggered, 60)
{
	struct et_producer prod = { .fd = self->fd, .fd_stats = self->fd,
				    .total = 1000 };
	struct epoll_event ev = { .events = EPOLLIN | EPOLLET };
	unsigned char buf[64];
	pthread_t thr;
	int ep, got = 0, n;
	void *res;
	ssize_t ret;

	ep = epoll_create1(EPOLL_CLOEXEC);
	ASSERT_LE(0, ep);
	ASSERT_EQ(0, epoll_ctl(ep, EPOLL_CTL_ADD, self->nfd, &ev));
	ASSERT_EQ(0, pthread_create(&thr, NULL, et_produce, &prod));

	while (got < prod.total) {
		n = epoll_wait(ep, &ev, 1, 3000);
		if (n == 0)
			break;	/* stalled: data queued but no edge */
		ASSERT_EQ(1, n);
		ASSERT_TRUE(!!(ev.events & EPOLLIN));
		for (;;) {
			ret = bpq_read(self->nfd, buf, sizeof(buf));
			if (ret == -EAGAIN)
				break;
			ASSERT_EQ(8, ret);
			ASSERT_TRUE(check_pattern(buf, 8, got));
			got++;
		}
	}
	pthread_join(thr, &res);
	close(ep);
	ASSERT_TRUE(res == NULL);
	ASSERT_EQ(prod.total, got) TH_LOG("stalled with %llu queued",
					  (unsigned long long)bpq_depth(self->fd));
}

TEST_F(queue, nonseekable)
{
	char buf[8] = "x";

	ASSERT_EQ(-1, lseek(self->fd, 0, SEEK_SET));
	ASSERT_EQ(ESPIPE, errno);
	ASSERT_EQ(-1, lseek(self->fd, 0, SEEK_CUR));
	ASSERT_EQ(ESPIPE, errno);
	ASSERT_EQ(-1, pwrite(self->fd, buf, 1, 0));
	ASSERT_EQ(ESPIPE, errno);
	ASSERT_EQ(1, bpq_write(self->fd, buf, 1));
	ASSERT_EQ(-1, pread(self->fd, buf, sizeof(buf), 0));
	ASSERT_EQ(ESPIPE, errno);
	ASSERT_EQ(1U, bpq_depth(self->fd));
}

/*
 * FIONREAD gives the length of the next message, as on a datagram
 * socket, and 0 on an empty queue: a reader can size its buffer.
 */
TEST_F(queue, fionread_next_length)
{
	unsigned char buf[300];
	int n = -1;

	ASSERT_EQ(0, ioctl(self->fd, FIONREAD, &n));
	ASSERT_EQ(0, n);
	ASSERT_EQ(200, bpq_write_pattern(self->fd, 1, 200));
	ASSERT_EQ(5, bpq_write_pattern(self->fd, 2, 5));
	ASSERT_EQ(0, ioctl(self->fd, FIONREAD, &n));
	ASSERT_EQ(200, n);
	ASSERT_EQ(200, bpq_read(self->fd, buf, (size_t)n));
	ASSERT_EQ(0, ioctl(self->nfd, FIONREAD, &n));
	ASSERT_EQ(5, n);
	ASSERT_EQ(5, bpq_read(self->fd, buf, sizeof(buf)));
	ASSERT_EQ(0, ioctl(self->fd, FIONREAD, &n));
	ASSERT_EQ(0, n);
	ASSERT_EQ(-1, ioctl(self->fd, FIONREAD, NULL));
	ASSERT_EQ(EFAULT, errno);
}

/*
 * splice() and sendfile() into a queue: what one call moves out of the
 * pipe (or the file) is one message.
 */
TEST_F(queue, splice_and_sendfile_in)
{
	unsigned char buf[4096], out[4096];
	char path[] = "/tmp/bpq-sendfile-XXXXXX";
	int p[2], tmp;
	off_t off = 0;

	fill_pattern(buf, 1000, 9);
	ASSERT_EQ(0, pipe(p));
	ASSERT_EQ(1000, write(p[1], buf, 1000));
	ASSERT_EQ(1000, splice(p[0], NULL, self->fd, NULL, 1000, 0));
	ASSERT_EQ(1000, bpq_read(self->fd, out, sizeof(out)));
	ASSERT_TRUE(check_pattern(out, 1000, 9));
	close(p[0]);
	close(p[1]);

	tmp = mkstemp(path);
	ASSERT_LE(0, tmp);
	unlink(path);
	fill_pattern(buf, 3000, 4);
	ASSERT_EQ(3000, write(tmp, buf, 3000));
	ASSERT_EQ(3000, sendfile(self->fd, tmp, &off, 3000));
	ASSERT_EQ(1U, bpq_depth(self->fd));
	ASSERT_EQ(3000, bpq_read(self->fd, out, sizeof(out)));
	ASSERT_TRUE(check_pattern(out, 3000, 4));
	close(tmp);
}

/* Tests that only make sense where writers wait. */
FIXTURE(blockq) {
	int fd;
};

FIXTURE_SETUP(blockq)
{
	self->fd = bpq_open(QIDX, O_RDWR);
	ASSERT_LE(0, self->fd) TH_LOG("%m - open /dev/bpq%d", QIDX);
	ASSERT_EQ(0, bpq_reset(self->fd));
}

FIXTURE_TEARDOWN(blockq)
{
	EXPECT_EQ(0, bpq_reset(self->fd));
	close(self->fd);
}

/* Each read admits exactly one blocked writer, oldest first. */
TEST_F(blockq, read_releases_one_writer)
{
	struct io_thread w[3];
	char c;
	int i;

	ASSERT_EQ(0, setup_queue(self->fd, BPQ_STRATEGY_BLOCK, 2, 0, 0));
	ASSERT_EQ(1, bpq_write(self->fd, "a", 1));
	ASSERT_EQ(1, bpq_write(self->fd, "b", 1));
	for (i = 0; i < 3; i++) {
		c = 'c' + i;
		ASSERT_EQ(0, io_thread_start(&w[i], self->fd, IO_WRITE, &c, 1));
		ASSERT_TRUE(io_thread_blocked(&w[i], 5000));
	}
	ASSERT_EQ(3U, bpq_sysfs_u64(QIDX, "stats/backpressure_applied"));

	for (i = 0; i < 3; i++) {
		ASSERT_EQ(1, bpq_read(self->fd, &c, 1));
		ASSERT_EQ('a' + i, c);
		ASSERT_TRUE(io_thread_wait(&w[i], 5000));
		ASSERT_EQ(1, w[i].ret);
		sleep_ms(100);
		ASSERT_EQ(i + 1, count_done(w, 3));
	}
	for (i = 0; i < 2; i++) {
		ASSERT_EQ(1, bpq_read(self->fd, &c, 1));
		ASSERT_EQ('d' + i, c);
	}
	ASSERT_EQ(5U, bpq_sysfs_u64(QIDX, "stats/enqueued_msgs"));
	ASSERT_EQ(0U, bpq_depth(self->fd));
}

/* A writer sleeping on a full queue gets an EPOLLOUT edge after a read. */
TEST_F(blockq, epollout_edge_after_read)
{
	struct epoll_event ev = { .events = EPOLLOUT | EPOLLET };
	char c;
	int ep;

	ASSERT_EQ(0, setup_queue(self->fd, BPQ_STRATEGY_BLOCK, 1, 0, 0));
	ASSERT_EQ(1, bpq_write(self->fd, "a", 1));
	ep = epoll_create1(EPOLL_CLOEXEC);
	ASSERT_LE(0, ep);
	ASSERT_EQ(0, epoll_ctl(ep, EPOLL_CTL_ADD, self->fd, &ev));
	ASSERT_EQ(0, epoll_wait(ep, &ev, 1, 0));
	ASSERT_EQ(1, bpq_read(self->fd, &c, 1));
	ASSERT_EQ(1, epoll_wait(ep, &ev, 1, 2000));
	ASSERT_TRUE(!!(ev.events & EPOLLOUT));
	close(ep);
}

/* write_timeout_ms 0 waits as long as it takes. */
TEST_F(blockq, no_timeout_waits)
{
	struct io_thread w;
	char c;

	ASSERT_EQ(0, setup_queue(self->fd, BPQ_STRATEGY_BLOCK, 1, 0, 0));
	ASSERT_EQ(1, bpq_write(self->fd, "a", 1));
	ASSERT_EQ(0, io_thread_start(&w, self->fd, IO_WRITE, "b", 1));
	ASSERT_TRUE(io_thread_blocked(&w, 5000));
	sleep_ms(300);
	ASSERT_FALSE(io_thread_done(&w));
	ASSERT_EQ(1, bpq_read(self->fd, &c, 1));
	ASSERT_TRUE(io_thread_wait(&w, 5000));
	ASSERT_EQ(1, w.ret);
	ASSERT_EQ(0U, bpq_sysfs_u64(QIDX, "stats/timeouts"));
}

TEST_HARNESS_MAIN
