// SPDX-License-Identifier: GPL-2.0
/*
 * Holds: a queue's effective pressure is its watermarks' OR any hold.
 *
 *  - each user reason (admin, cluster, system) on each strategy: writers
 *    meet the hold as they meet watermark pressure (block, credit,
 *    adaptive, window wait: EAGAIN without waiting; drop-newest refuses,
 *    ENOBUFS; drop-oldest takes the message), pressure is 1, hold and
 *    pressure_source name it, EPOLLPRI comes and goes with it, and the
 *    writers go in once it is cleared;
 *  - a writer held back, and nothing else in its way, counts in
 *    stats/held_ns, not blocked_ns, and is let in by the release;
 *  - watermark and hold together: pressure_source names both, pressure
 *    lasts while either does;
 *  - the sysfs files pressure and stream wake a poll() on each edge;
 *  - head_age_us (the oldest message's wait) and writers_waiting;
 *  - bad input: the kernel's reasons (link, group), unknown names, no
 *    sign: EINVAL, nothing changed.
 *
 * Each test gets a queue of its own from /dev/bpq-control.
 */
#define _GNU_SOURCE
#include "bpq_test.h"
/* kselftest_harness.h of 6.1 has an unused parameter: keep -Wextra clean. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"
#include "kselftest_harness.h"
#pragma GCC diagnostic pop
/* the harness compares its operands as given: 0 against a __u64 is fine */
#pragma GCC diagnostic ignored "-Wsign-compare"

static const char *const user_reasons[] = { "admin", "cluster", "system" };

FIXTURE(hold) {
	int cfd;
	int q;
	int fd;		/* blocking */
	int nfd;	/* O_NONBLOCK */
};

FIXTURE_VARIANT(hold) {
	__u32 strategy;
	int refused;	/* what a held writer meets: EAGAIN, ENOBUFS, 0 */
};

FIXTURE_VARIANT_ADD(hold, block) {
	.strategy = BPQ_STRATEGY_BLOCK, .refused = EAGAIN,
};

FIXTURE_VARIANT_ADD(hold, drop_newest) {
	.strategy = BPQ_STRATEGY_DROP_NEWEST, .refused = ENOBUFS,
};

FIXTURE_VARIANT_ADD(hold, drop_oldest) {
	.strategy = BPQ_STRATEGY_DROP_OLDEST, .refused = 0,
};

FIXTURE_VARIANT_ADD(hold, credit) {
	.strategy = BPQ_STRATEGY_CREDIT, .refused = EAGAIN,
};

FIXTURE_VARIANT_ADD(hold, adaptive) {
	.strategy = BPQ_STRATEGY_ADAPTIVE, .refused = EAGAIN,
};

FIXTURE_VARIANT_ADD(hold, window) {
	.strategy = BPQ_STRATEGY_WINDOW, .refused = EAGAIN,
};

FIXTURE_SETUP(hold)
{
	struct bpq_config cfg;

	self->fd = self->nfd = -1;
	self->q = bpq_test_queue("hold", &self->cfd);
	ASSERT_LE(0, self->q) TH_LOG("queue: %s", strerror(-self->q));
	self->fd = bpq_open(self->q, O_RDWR);
	ASSERT_LE(0, self->fd) TH_LOG("%m - open /dev/bpq%d", self->q);
	self->nfd = bpq_open(self->q, O_RDWR | O_NONBLOCK);
	ASSERT_LE(0, self->nfd);
	ASSERT_EQ(0, bpq_get_config(self->fd, &cfg));
	cfg.strategy = variant->strategy;
	/* nothing but the hold in a writer's way: tokens, credits, window */
	cfg.min_rate = 1000000;
	cfg.max_rate = 1000000;
	cfg.initial_cwnd = 64;
	cfg.max_cwnd = 64;
	ASSERT_EQ(0, bpq_set_config(self->fd, &cfg));
	if (variant->strategy == BPQ_STRATEGY_CREDIT)
		ASSERT_EQ(0, bpq_ioctl(self->fd, BPQ_IOC_GRANT,
				       &(struct bpq_grant){
					       .size = sizeof(struct bpq_grant),
					       .credits = 1000 }));
}

FIXTURE_TEARDOWN(hold)
{
	if (self->nfd >= 0)
		close(self->nfd);
	EXPECT_EQ(0, bpq_test_queue_end(self->cfd, self->q, self->fd));
}

static void expect_attr(struct __test_metadata *_metadata, int q,
			const char *attr, const char *want)
{
	char buf[128];

	ASSERT_EQ(0, bpq_sysfs_read(q, attr, buf, sizeof(buf)));
	EXPECT_STREQ(want, buf) TH_LOG("%s", attr);
}

TEST_F(hold, each_reason_meets_writers_as_pressure)
{
	struct bpq_stats st;
	char plus[16], minus[16];
	unsigned int i;
	__u64 depth;

	expect_attr(_metadata, self->q, "hold", "none");
	expect_attr(_metadata, self->q, "pressure_source", "none");
	for (i = 0; i < ARRAY_LEN(user_reasons); i++) {
		snprintf(plus, sizeof(plus), "+%s", user_reasons[i]);
		snprintf(minus, sizeof(minus), "-%s", user_reasons[i]);
		EXPECT_EQ(0, poll_events(self->nfd) & POLLPRI);
		ASSERT_EQ(0, bpq_sysfs_write(self->q, "hold", plus));
		expect_attr(_metadata, self->q, "hold", user_reasons[i]);
		expect_attr(_metadata, self->q, "pressure_source",
			    user_reasons[i]);
		EXPECT_EQ(1, bpq_sysfs_u64(self->q, "pressure"));
		EXPECT_EQ(POLLPRI, poll_events(self->nfd) & POLLPRI);
		depth = bpq_depth(self->fd);
		EXPECT_EQ(variant->refused ? -variant->refused : 1,
			  bpq_write(self->nfd, "x", 1)) TH_LOG("%s", plus);
		EXPECT_EQ(depth + !variant->refused, bpq_depth(self->fd));
		if (variant->refused == EAGAIN)
			EXPECT_EQ(0, poll_events(self->nfd) & POLLOUT);
		ASSERT_EQ(0, bpq_sysfs_write(self->q, "hold", minus));
		expect_attr(_metadata, self->q, "hold", "none");
		EXPECT_EQ(0, bpq_sysfs_u64(self->q, "pressure"));
		EXPECT_EQ(0, poll_events(self->nfd) & POLLPRI);
		EXPECT_EQ(POLLOUT, poll_events(self->nfd) & POLLOUT);
		EXPECT_EQ(1, bpq_write(self->nfd, "y", 1)) TH_LOG("%s", minus);
	}
	ASSERT_EQ(0, bpq_get_stats(self->fd, &st));
	EXPECT_EQ(0, st.holds);
	EXPECT_EQ(0, st.pressure);
	EXPECT_TRUE(bpq_stats_balanced(&st));
	if (variant->refused == ENOBUFS)
		EXPECT_EQ(3, st.dropped_newest);
}

/* Reasons add up; clearing one leaves the others. */
TEST_F(hold, reasons_add_up)
{
	struct bpq_stats st;

	ASSERT_EQ(0, bpq_sysfs_write(self->q, "hold", "+system"));
	ASSERT_EQ(0, bpq_sysfs_write(self->q, "hold", "+admin\n"));
	ASSERT_EQ(0, bpq_sysfs_write(self->q, "hold", "+admin"));
	expect_attr(_metadata, self->q, "hold", "admin system");
	ASSERT_EQ(0, bpq_get_stats(self->fd, &st));
	EXPECT_EQ(BPQ_HOLD_ADMIN | BPQ_HOLD_SYSTEM, st.holds);
	EXPECT_EQ(0, st.watermark);
	EXPECT_EQ(1, st.pressure);
	ASSERT_EQ(0, bpq_sysfs_write(self->q, "hold", "-admin"));
	ASSERT_EQ(0, bpq_sysfs_write(self->q, "hold", "-cluster"));
	expect_attr(_metadata, self->q, "hold", "system");
	EXPECT_EQ(1, bpq_sysfs_u64(self->q, "pressure"));
	ASSERT_EQ(0, bpq_sysfs_write(self->q, "hold", "-system"));
	EXPECT_EQ(0, bpq_sysfs_u64(self->q, "pressure"));
}

TEST_F(hold, bad_input_changes_nothing)
{
	static const char *const bad[] = {
		"+link", "-link", "+group", "-group", "admin", "+", "-", "\n",
		"+bogus", "+admin extra", "*admin", "+ADMIN", "+adm",
	};
	unsigned int i;

	ASSERT_EQ(0, bpq_sysfs_write(self->q, "hold", "+cluster"));
	for (i = 0; i < ARRAY_LEN(bad); i++) {
		EXPECT_EQ(-EINVAL, bpq_sysfs_write(self->q, "hold", bad[i]))
			TH_LOG("bad input %u", i);
	}
	expect_attr(_metadata, self->q, "hold", "cluster");
	EXPECT_EQ(-EACCES, bpq_sysfs_write(self->q, "pressure_source", "x"));
}

/* A writer held back only by the hold: held_ns, and the release lets it in. */
TEST_F(hold, held_writer_counted_and_released)
{
	struct io_thread w;
	struct bpq_stats st;
	int64_t t0;

	if (variant->refused != EAGAIN)
		SKIP(return, "writers of this strategy do not wait");
	ASSERT_EQ(0, bpq_sysfs_write(self->q, "hold", "+admin"));
	t0 = now_ns();
	ASSERT_EQ(0, io_thread_start(&w, self->fd, IO_WRITE, "held", 4));
	ASSERT_TRUE(io_thread_blocked(&w, 5000));
	EXPECT_EQ(1, bpq_sysfs_u64(self->q, "writers_waiting"));
	sleep_ms(100);
	EXPECT_FALSE(io_thread_done(&w));
	ASSERT_EQ(0, bpq_sysfs_write(self->q, "hold", "-admin"));
	ASSERT_TRUE(io_thread_wait(&w, 5000));
	EXPECT_EQ(4, w.ret);
	ASSERT_EQ(0, bpq_get_stats(self->fd, &st));
	EXPECT_EQ(0, st.writers_waiting);
	EXPECT_LE(90000000ULL, st.held_ns);
	EXPECT_GE((__u64)(now_ns() - t0), st.held_ns);
	EXPECT_EQ(0, st.blocked_ns);
	EXPECT_EQ(1, st.backpressure_applied);
}

/* The watermarks and a hold at once: pressure lasts while either does. */
TEST_F(hold, watermark_and_hold)
{
	struct bpq_config cfg;
	unsigned int i;

	ASSERT_EQ(0, bpq_get_config(self->fd, &cfg));
	cfg.strategy = BPQ_STRATEGY_DROP_OLDEST;
	cfg.capacity_msgs = 10;
	cfg.high_watermark = 50;
	cfg.low_watermark = 30;
	ASSERT_EQ(0, bpq_set_config(self->fd, &cfg));
	for (i = 0; i < 5; i++)
		ASSERT_EQ(1, bpq_write(self->fd, "w", 1));
	expect_attr(_metadata, self->q, "pressure_source", "watermark");
	ASSERT_EQ(0, bpq_sysfs_write(self->q, "hold", "+admin"));
	expect_attr(_metadata, self->q, "pressure_source", "watermark admin");
	ASSERT_LE(0, bpq_flush(self->fd));
	expect_attr(_metadata, self->q, "pressure_source", "admin");
	EXPECT_EQ(1, bpq_sysfs_u64(self->q, "pressure"));
	ASSERT_EQ(0, bpq_sysfs_write(self->q, "hold", "-admin"));
	expect_attr(_metadata, self->q, "pressure_source", "none");
	EXPECT_EQ(0, bpq_sysfs_u64(self->q, "pressure"));
}

struct sysfs_waiter {
	pthread_t thr;
	int fd;
	int started;	/* atomic */
	short revents;
};

static void *sysfs_wait_fn(void *arg)
{
	struct sysfs_waiter *w = arg;
	struct pollfd p = { .fd = w->fd, .events = POLLPRI };

	__atomic_store_n(&w->started, 1, __ATOMIC_RELEASE);
	if (poll(&p, 1, 10000) == 1)
		w->revents = p.revents;
	return NULL;
}

/* Open a sysfs file and read it, as a poller must before it waits. */
static int sysfs_open_read(int q, const char *attr)
{
	char path[128], buf[64];
	int fd;

	bpq_sysfs_path(path, sizeof(path), q, attr);
	fd = open(path, O_RDONLY);
	if (fd >= 0 && read(fd, buf, sizeof(buf)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static void sysfs_wait_start(struct __test_metadata *_metadata,
			     struct sysfs_waiter *w, int q, const char *attr)
{
	memset(w, 0, sizeof(*w));
	w->fd = sysfs_open_read(q, attr);
	ASSERT_LE(0, w->fd) TH_LOG("%s", attr);
	ASSERT_EQ(0, pthread_create(&w->thr, NULL, sysfs_wait_fn, w));
	while (!__atomic_load_n(&w->started, __ATOMIC_ACQUIRE))
		sched_yield();
	sleep_ms(50);	/* into its poll */
}

static short sysfs_wait_end(struct sysfs_waiter *w)
{
	pthread_join(w->thr, NULL);
	close(w->fd);
	return w->revents;
}

/* pressure and stream wake their pollers on every edge. */
TEST_F(hold, sysfs_files_wake_pollers)
{
	struct sysfs_waiter w;

	sysfs_wait_start(_metadata, &w, self->q, "pressure");
	ASSERT_EQ(0, bpq_sysfs_write(self->q, "hold", "+admin"));
	EXPECT_NE(0, sysfs_wait_end(&w) & (POLLPRI | POLLERR));
	sysfs_wait_start(_metadata, &w, self->q, "pressure");
	ASSERT_EQ(0, bpq_sysfs_write(self->q, "hold", "-admin"));
	EXPECT_NE(0, sysfs_wait_end(&w) & (POLLPRI | POLLERR));

	sysfs_wait_start(_metadata, &w, self->q, "stream");
	ASSERT_EQ(0, bpq_shutdown(self->fd, BPQ_SHUTDOWN_COMPLETE, 0));
	EXPECT_NE(0, sysfs_wait_end(&w) & (POLLPRI | POLLERR));
	sysfs_wait_start(_metadata, &w, self->q, "stream");
	ASSERT_EQ(0, bpq_shutdown(self->fd, BPQ_SHUTDOWN_REOPEN, 0));
	EXPECT_NE(0, sysfs_wait_end(&w) & (POLLPRI | POLLERR));

	/* writes that make no edge, then one that does */
	ASSERT_EQ(0, bpq_sysfs_write(self->q, "hold", "+cluster"));
	sysfs_wait_start(_metadata, &w, self->q, "pressure");
	ASSERT_EQ(0, bpq_sysfs_write(self->q, "hold", "+cluster"));
	ASSERT_EQ(0, bpq_sysfs_write(self->q, "hold", "+admin"));
	ASSERT_EQ(0, bpq_sysfs_write(self->q, "hold", "-admin"));
	ASSERT_EQ(0, bpq_sysfs_write(self->q, "hold", "-cluster"));
	EXPECT_NE(0, sysfs_wait_end(&w) & (POLLPRI | POLLERR));
}

/* head_age_us: the oldest queued message's wait; 0 on an empty queue. */
TEST_F(hold, head_age)
{
	char buf[8];
	__u64 age;

	EXPECT_EQ(0, bpq_sysfs_u64(self->q, "head_age_us"));
	ASSERT_EQ(1, bpq_write(self->fd, "a", 1));
	sleep_ms(100);
	ASSERT_EQ(1, bpq_write(self->fd, "b", 1));
	age = bpq_sysfs_u64(self->q, "head_age_us");
	EXPECT_LE(100000, age);
	EXPECT_GT(60000000, age);
	ASSERT_EQ(1, bpq_read(self->fd, buf, sizeof(buf)));
	EXPECT_GT(age, bpq_sysfs_u64(self->q, "head_age_us"));
	ASSERT_EQ(1, bpq_read(self->fd, buf, sizeof(buf)));
	EXPECT_EQ(0, bpq_sysfs_u64(self->q, "head_age_us"));
}

TEST_HARNESS_MAIN
