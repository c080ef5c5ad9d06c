// SPDX-License-Identifier: GPL-2.0
/*
 * Triggers (BPQ_IOC_TRIGGER), as PSI's on /proc/pressure/: one per file,
 * EPOLLPRI once when it fires, at most once per window.
 *
 *  - bad triggers: EINVAL for each bad field, EBUSY for a second one;
 *    BPQ_TRIGGER_NONE removes (fdinfo shows what is set);
 *  - drops: below the threshold nothing; past it one event, none more in
 *    the same window however many drops follow, one in the next;
 *  - stall some while a held writer waits, and not without one;
 *  - timeouts, head age, utilization (a level: once per window while it
 *    lasts);
 *  - with a trigger the file's EPOLLPRI is the trigger's alone; other
 *    files still see pressure;
 *  - grants that set and revoke the balance.
 *
 * What is seen is printed. Each test gets a queue of its own.
 */
#define _GNU_SOURCE
#include <poll.h>

#include "bpq_test.h"
/* kselftest_harness.h of 6.1 has an unused parameter: keep -Wextra clean. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"
#include "kselftest_harness.h"
#pragma GCC diagnostic pop
/* the harness compares its operands as given: 0 against a __u64 is fine */
#pragma GCC diagnostic ignored "-Wsign-compare"

static int set_trigger(int fd, __u32 metric, __u64 threshold, __u32 window_ms)
{
	struct bpq_trigger t = {
		.size = sizeof(t),
		.metric = metric,
		.window_ms = window_ms,
		.threshold = threshold,
	};

	return bpq_ioctl(fd, BPQ_IOC_TRIGGER, &t);
}

/* Did @fd report EPOLLPRI within @ms? */
static bool pri_within(int fd, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLPRI };

	return poll(&p, 1, ms) == 1 && (p.revents & POLLPRI);
}

/* How many EPOLLPRI @fd reports in @ms */
static int pri_count(int fd, int ms)
{
	int64_t end = now_ns() + ms * 1000000LL;
	int n = 0, left;

	while ((left = (end - now_ns()) / 1000000) > 0)
		n += pri_within(fd, left);
	return n;
}

static int grant(int fd, __u32 flags, __u64 credits)
{
	struct bpq_grant g = {
		.size = sizeof(g),
		.flags = flags,
		.credits = credits,
	};

	return bpq_ioctl(fd, BPQ_IOC_GRANT, &g);
}

/* Write @n messages that drop-newest refuses (the queue is full) */
static int drop(int fd, int n)
{
	while (n--)
		if (bpq_write(fd, "x", 1) != -ENOBUFS)
			return -1;
	return 0;
}

FIXTURE(trig) {
	int cfd;
	int q;
	int fd;
};

FIXTURE_SETUP(trig)
{
	self->fd = -1;
	self->q = bpq_test_queue("trig", &self->cfd);
	ASSERT_LE(0, self->q) TH_LOG("queue: %s", strerror(-self->q));
	self->fd = bpq_open(self->q, O_RDWR | O_NONBLOCK);
	ASSERT_LE(0, self->fd);
}

FIXTURE_TEARDOWN(trig)
{
	EXPECT_EQ(0, bpq_test_queue_end(self->cfd, self->q, self->fd));
}

static bool fdinfo_has(int fd, const char *line)
{
	char path[64], buf[2048];

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	return bpq_read_file(path, buf, sizeof(buf)) > 0 && strstr(buf, line);
}

TEST_F(trig, bad_triggers)
{
	struct bpq_trigger t = {
		.size = sizeof(t), .metric = BPQ_TRIGGER_DROPS,
		.window_ms = 1000, .threshold = 1, .flags = 1,
	};

	EXPECT_EQ(-EINVAL, bpq_ioctl(self->fd, BPQ_IOC_TRIGGER, &t));
	EXPECT_EQ(-EINVAL, set_trigger(self->fd, 7, 1, 1000));
	EXPECT_EQ(-EINVAL, set_trigger(self->fd, BPQ_TRIGGER_DROPS, 1, 499));
	EXPECT_EQ(-EINVAL, set_trigger(self->fd, BPQ_TRIGGER_DROPS, 1, 10001));
	EXPECT_EQ(-EINVAL, set_trigger(self->fd, BPQ_TRIGGER_DROPS, 0, 1000));
	EXPECT_EQ(-EINVAL, set_trigger(self->fd, BPQ_TRIGGER_STALL_SOME,
				       1000001, 1000));
	EXPECT_EQ(-EINVAL, set_trigger(self->fd, BPQ_TRIGGER_STALL_FULL,
				       500001, 500));
	EXPECT_EQ(-EINVAL, set_trigger(self->fd, BPQ_TRIGGER_UTILIZATION,
				       101, 1000));
	EXPECT_EQ(-EINVAL, set_trigger(self->fd, BPQ_TRIGGER_NONE, 0, 1000));
	EXPECT_EQ(-EINVAL, set_trigger(self->fd, BPQ_TRIGGER_NONE, 1, 0));
	/* nothing to remove is fine */
	EXPECT_EQ(0, set_trigger(self->fd, BPQ_TRIGGER_NONE, 0, 0));
	EXPECT_FALSE(fdinfo_has(self->fd, "bpq-trigger:"));

	EXPECT_EQ(0, set_trigger(self->fd, BPQ_TRIGGER_STALL_SOME, 1000000,
				 1000));
	EXPECT_TRUE(fdinfo_has(self->fd, "bpq-trigger:\tsome 1000000 1000000\n"));
	EXPECT_EQ(-EBUSY, set_trigger(self->fd, BPQ_TRIGGER_DROPS, 1, 1000));
	EXPECT_EQ(0, set_trigger(self->fd, BPQ_TRIGGER_NONE, 0, 0));
	EXPECT_FALSE(fdinfo_has(self->fd, "bpq-trigger:"));
	EXPECT_EQ(0, set_trigger(self->fd, BPQ_TRIGGER_HEAD_AGE, 1, 10000));
	EXPECT_TRUE(fdinfo_has(self->fd, "bpq-trigger:\thead_age 1 10000000\n"));
}

/* Once per window, not below the threshold, again in the next window */
TEST_F_TIMEOUT(trig, drops_once_per_window, 60)
{
	int64_t t0, fired;
	int n;

	ASSERT_EQ(0, bpq_configure(self->fd, BPQ_STRATEGY_DROP_NEWEST, 2));
	ASSERT_EQ(1, bpq_write(self->fd, "a", 1));
	ASSERT_EQ(1, bpq_write(self->fd, "b", 1));
	ASSERT_EQ(0, set_trigger(self->fd, BPQ_TRIGGER_DROPS, 10, 1000));

	/* 9 drops in a window: below */
	ASSERT_EQ(0, drop(self->fd, 9));
	EXPECT_FALSE(pri_within(self->fd, 1500));

	/* 10 within one: one event, soon */
	t0 = now_ns();
	ASSERT_EQ(0, drop(self->fd, 10));
	ASSERT_TRUE(pri_within(self->fd, 1000));
	fired = now_ns();
	TH_LOG("fired %lld ms after the 10th drop",
	       (long long)(fired - t0) / 1000000);
	/* drops go on: none more in this window, one in the next */
	ASSERT_EQ(0, drop(self->fd, 50));
	n = pri_count(self->fd, 1000 - (now_ns() - fired) / 1000000 - 150);
	EXPECT_EQ(0, n);
	ASSERT_TRUE(pri_within(self->fd, 1500));
	TH_LOG("and again %lld ms after the first",
	       (long long)(now_ns() - fired) / 1000000);
	EXPECT_LE(1000000000, now_ns() - fired);
	/* no new drops: no event, however long */
	EXPECT_FALSE(pri_within(self->fd, 2500));
}

TEST_F_TIMEOUT(trig, stall_some_while_a_writer_is_held, 60)
{
	struct io_thread w;
	int wfd;

	ASSERT_EQ(0, set_trigger(self->fd, BPQ_TRIGGER_STALL_SOME, 200000,
				 1000));
	/* held, but nobody waits: no stall */
	ASSERT_EQ(0, bpq_sysfs_write(self->q, "hold", "+admin"));
	EXPECT_FALSE(pri_within(self->fd, 1500));

	wfd = bpq_open(self->q, O_WRONLY);
	ASSERT_LE(0, wfd);
	ASSERT_EQ(0, io_thread_start(&w, wfd, IO_WRITE, "w", 1));
	ASSERT_TRUE(io_thread_blocked(&w, 5000));
	EXPECT_TRUE(pri_within(self->fd, 2000));
	ASSERT_EQ(0, bpq_sysfs_write(self->q, "hold", "-admin"));
	ASSERT_TRUE(io_thread_wait(&w, 5000));
	close(wfd);
	/* released: the stall stops growing (a last event may come) */
	pri_count(self->fd, 1500);
	EXPECT_FALSE(pri_within(self->fd, 2500));
}

TEST_F_TIMEOUT(trig, timeouts, 60)
{
	struct bpq_config cfg;
	int i, wfd;

	bpq_default_config(&cfg);
	cfg.capacity_msgs = 1;
	cfg.write_timeout_ms = 10;
	ASSERT_EQ(0, bpq_set_config(self->fd, &cfg));
	ASSERT_EQ(1, bpq_write(self->fd, "a", 1));
	ASSERT_EQ(0, set_trigger(self->fd, BPQ_TRIGGER_TIMEOUTS, 3, 2000));
	wfd = bpq_open(self->q, O_WRONLY);
	ASSERT_LE(0, wfd);
	for (i = 0; i < 2; i++)
		ASSERT_EQ(-ETIMEDOUT, bpq_write(wfd, "b", 1));
	EXPECT_FALSE(pri_within(self->fd, 700));
	ASSERT_EQ(-ETIMEDOUT, bpq_write(wfd, "b", 1));
	EXPECT_TRUE(pri_within(self->fd, 1000));
	close(wfd);
}

TEST_F_TIMEOUT(trig, head_age, 60)
{
	char buf[8];
	int64_t t0;

	ASSERT_EQ(0, set_trigger(self->fd, BPQ_TRIGGER_HEAD_AGE, 300000, 500));
	EXPECT_FALSE(pri_within(self->fd, 800));	/* empty */
	t0 = now_ns();
	ASSERT_EQ(1, bpq_write(self->fd, "a", 1));
	ASSERT_TRUE(pri_within(self->fd, 2000));
	TH_LOG("fired at a head age of %lld ms (threshold 300)",
	       (long long)(now_ns() - t0) / 1000000);
	EXPECT_LE(300000000, now_ns() - t0);
	ASSERT_EQ(1, bpq_read(self->fd, buf, sizeof(buf)));
	/* a level: drained, no event; a fresh message, not yet */
	EXPECT_FALSE(pri_within(self->fd, 800));
	ASSERT_EQ(1, bpq_write(self->fd, "b", 1));
	EXPECT_FALSE(pri_within(self->fd, 150));
}

/* A level lasting 2.5 s with a window of 500 ms: one event per window */
TEST_F_TIMEOUT(trig, utilization_once_per_window, 60)
{
	int i, n;

	ASSERT_EQ(0, bpq_configure(self->fd, BPQ_STRATEGY_BLOCK, 10));
	for (i = 0; i < 8; i++)
		ASSERT_EQ(1, bpq_write(self->fd, "a", 1));
	ASSERT_EQ(0, set_trigger(self->fd, BPQ_TRIGGER_UTILIZATION, 90, 500));
	EXPECT_FALSE(pri_within(self->fd, 800));	/* 80 % */
	ASSERT_EQ(1, bpq_write(self->fd, "a", 1));	/* 90 % */
	n = pri_count(self->fd, 2500);
	TH_LOG("%d events in 2.5 s at 90 %% with a 500 ms window", n);
	EXPECT_LE(3, n);
	EXPECT_GE(6, n);
}

/* With a trigger, EPOLLPRI is the trigger's; without, the pressure's */
TEST_F(trig, epollpri_is_the_triggers)
{
	int other;

	other = bpq_open(self->q, O_RDWR);
	ASSERT_LE(0, other);
	ASSERT_EQ(0, set_trigger(self->fd, BPQ_TRIGGER_DROPS, 1000, 1000));
	ASSERT_EQ(0, bpq_sysfs_write(self->q, "hold", "+admin"));
	EXPECT_TRUE(pri_within(other, 0));
	EXPECT_FALSE(pri_within(self->fd, 300));
	/* removed: the file sees the pressure again */
	ASSERT_EQ(0, set_trigger(self->fd, BPQ_TRIGGER_NONE, 0, 0));
	EXPECT_TRUE(pri_within(self->fd, 0));
	ASSERT_EQ(0, bpq_sysfs_write(self->q, "hold", "-admin"));
	close(other);
}

/* Files with triggers on a destroyed queue: ENODEV, and a clean close */
TEST_F(trig, destroy_with_triggers)
{
	int fd[4], i;

	for (i = 0; i < 4; i++) {
		fd[i] = bpq_open(self->q, O_RDWR);
		ASSERT_LE(0, fd[i]);
		ASSERT_EQ(0, set_trigger(fd[i], BPQ_TRIGGER_HEAD_AGE + i % 2,
					 50, 500));
	}
	ASSERT_EQ(0, bpq_destroy(self->cfd, self->q));
	self->q = -1;
	for (i = 0; i < 4; i++) {
		EXPECT_EQ(-ENODEV, set_trigger(fd[i], BPQ_TRIGGER_DROPS, 1,
					       500));
		close(fd[i]);
	}
}

TEST_F(trig, grant_set_and_revoke)
{
	struct bpq_stats st;

	ASSERT_EQ(0, bpq_configure(self->fd, BPQ_STRATEGY_CREDIT, 0));
	ASSERT_EQ(0, grant(self->fd, 0, 5));
	ASSERT_EQ(0, grant(self->fd, BPQ_GRANT_REVOKE, 2));
	ASSERT_EQ(0, bpq_get_stats(self->fd, &st));
	EXPECT_EQ(3, st.credits_available);
	ASSERT_EQ(0, grant(self->fd, BPQ_GRANT_REVOKE, 10));
	ASSERT_EQ(0, bpq_get_stats(self->fd, &st));
	EXPECT_EQ(0, st.credits_available);
	ASSERT_EQ(0, grant(self->fd, BPQ_GRANT_SET, 7));
	ASSERT_EQ(0, bpq_get_stats(self->fd, &st));
	EXPECT_EQ(7, st.credits_available);
	ASSERT_EQ(0, grant(self->fd, BPQ_GRANT_SET, 0));
	ASSERT_EQ(0, bpq_get_stats(self->fd, &st));
	EXPECT_EQ(0, st.credits_available);
	EXPECT_EQ(-EAGAIN, bpq_write(self->fd, "a", 1));

	EXPECT_EQ(-EINVAL, grant(self->fd, BPQ_GRANT_REVOKE, 0));
	EXPECT_EQ(-EINVAL, grant(self->fd, 0, 0));
	EXPECT_EQ(-EINVAL, grant(self->fd, BPQ_GRANT_SET | BPQ_GRANT_REVOKE,
				 1));
	EXPECT_EQ(-EINVAL, grant(self->fd, 4, 1));

	ASSERT_EQ(0, bpq_sysfs_write(self->q, "grant", "=4"));
	ASSERT_EQ(0, bpq_sysfs_write(self->q, "grant", "-1"));
	ASSERT_EQ(0, bpq_get_stats(self->fd, &st));
	EXPECT_EQ(3, st.credits_available);
	EXPECT_EQ(-EINVAL, bpq_sysfs_write(self->q, "grant", "-0"));
	EXPECT_EQ(-EINVAL, bpq_sysfs_write(self->q, "grant", "=x"));
	EXPECT_EQ(-EINVAL, bpq_sysfs_write(self->q, "grant", "0"));
	/* a revoke lets nobody in; a set lets as many as it says */
	ASSERT_EQ(1, bpq_write(self->fd, "a", 1));
	ASSERT_EQ(0, bpq_get_stats(self->fd, &st));
	EXPECT_EQ(2, st.credits_available);
}

TEST_HARNESS_MAIN
