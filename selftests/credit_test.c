// SPDX-License-Identifier: GPL-2.0
/*
 * The credit strategy: every message costs one credit that the consumer
 * grants; auto_credit turns the balance into a sliding window.
 */
#include "bpq_test.h"
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"
#include "kselftest_harness.h"
#pragma GCC diagnostic pop
/* the harness compares its operands as given: 0 against a __u64 is fine */
#pragma GCC diagnostic ignored "-Wsign-compare"

/* Each test gets a queue of its own, so no credit balance carries over. */
static int Q = -1;

static int grant(int fd, __u64 n)
{
	struct bpq_grant g = { .size = sizeof(g), .credits = n };

	return bpq_ioctl(fd, BPQ_IOC_GRANT, &g);
}

static int set_credit(int fd, __u32 capacity, __u32 auto_credit,
		      __u32 timeout_ms)
{
	struct bpq_config cfg;

	bpq_default_config(&cfg);
	cfg.strategy = BPQ_STRATEGY_CREDIT;
	cfg.capacity_msgs = capacity;
	cfg.auto_credit = auto_credit;
	cfg.write_timeout_ms = timeout_ms;
	return bpq_set_config(fd, &cfg);
}

FIXTURE(credit) {
	int cfd;
	int fd;
};

FIXTURE_SETUP(credit)
{
	self->cfd = bpq_control_open();
	ASSERT_LE(0, self->cfd) TH_LOG("%m - open " BPQ_CONTROL_PATH);
	Q = bpq_create(self->cfd, "credit-test");
	ASSERT_LE(0, Q) TH_LOG("create: %s", strerror(-Q));
	ASSERT_TRUE(bpq_wait_node(Q, true, 5000));
	self->fd = bpq_open(Q, O_RDWR | O_NONBLOCK);
	ASSERT_LE(0, self->fd) TH_LOG("%m - open /dev/bpq%d", Q);
	ASSERT_EQ(0, set_credit(self->fd, 16, 0, 0));
}

FIXTURE_TEARDOWN(credit)
{
	close(self->fd);
	EXPECT_EQ(0, bpq_destroy(self->cfd, Q));
	close(self->cfd);
}

TEST_F(credit, no_credit_no_write)
{
	struct bpq_stats st;
	int64_t t0;
	int bfd;

	ASSERT_EQ(0, bpq_sysfs_u64(Q, "credits_available"));
	EXPECT_EQ(-EAGAIN, bpq_write(self->fd, "x", 1));
	ASSERT_EQ(0, bpq_get_stats(self->fd, &st));
	EXPECT_EQ(1, st.credit_starvation);
	EXPECT_EQ(0, st.depth_msgs);
	EXPECT_EQ(0, st.enqueued_msgs);

	/* a blocking writer waits its timeout out, counted as starvation */
	ASSERT_EQ(0, set_credit(self->fd, 16, 0, 100));
	bfd = bpq_open(Q, O_RDWR);
	ASSERT_LE(0, bfd);
	t0 = now_ns();
	EXPECT_EQ(-ETIMEDOUT, bpq_write(bfd, "x", 1));
	EXPECT_LE(100000000, now_ns() - t0);
	ASSERT_EQ(0, bpq_get_stats(self->fd, &st));
	EXPECT_EQ(2, st.credit_starvation);
	EXPECT_LE(100000000, st.credit_starved_ns);
	EXPECT_EQ(1, st.timeouts);
	EXPECT_EQ(0, st.depth_msgs);
	close(bfd);
}

TEST_F(credit, grant_admits_exactly_k)
{
	struct bpq_stats st;
	int i;

	ASSERT_EQ(0, grant(self->fd, 3));
	EXPECT_EQ(3, bpq_sysfs_u64(Q, "credits_available"));
	for (i = 0; i < 3; i++)
		ASSERT_EQ(1, bpq_write(self->fd, "x", 1));
	EXPECT_EQ(-EAGAIN, bpq_write(self->fd, "x", 1));
	ASSERT_EQ(0, bpq_get_stats(self->fd, &st));
	EXPECT_EQ(3, st.depth_msgs);
	EXPECT_EQ(0, st.credits_available);

	/* the same through sysfs */
	ASSERT_EQ(0, bpq_sysfs_write(Q, "grant", "2"));
	EXPECT_EQ(1, bpq_write(self->fd, "x", 1));
	EXPECT_EQ(1, bpq_write(self->fd, "x", 1));
	EXPECT_EQ(-EAGAIN, bpq_write(self->fd, "x", 1));
}

TEST_F(credit, bad_grants)
{
	struct bpq_grant g = { .size = sizeof(g), .flags = 4, .credits = 1 };

	EXPECT_EQ(-EINVAL, grant(self->fd, 0));
	EXPECT_EQ(-EINVAL, bpq_ioctl(self->fd, BPQ_IOC_GRANT, &g));
	EXPECT_EQ(-EINVAL, bpq_sysfs_write(Q, "grant", "0"));
	EXPECT_EQ(-EINVAL, bpq_sysfs_write(Q, "grant", "="));
	EXPECT_EQ(-EINVAL, bpq_sysfs_write(Q, "grant", "abc"));
	EXPECT_EQ(0, bpq_sysfs_u64(Q, "credits_available"));
}

TEST_F(credit, balance_saturates)
{
	char buf[64];

	ASSERT_EQ(0, grant(self->fd, UINT64_MAX - 1));
	ASSERT_EQ(0, grant(self->fd, 5));
	ASSERT_EQ(0, bpq_sysfs_read(Q, "credits_available", buf, sizeof(buf)));
	EXPECT_STREQ("18446744073709551615", buf);
	ASSERT_EQ(0, bpq_sysfs_write(Q, "grant", "9223372036854775807"));
	ASSERT_EQ(0, bpq_sysfs_read(Q, "credits_available", buf, sizeof(buf)));
	EXPECT_STREQ("18446744073709551615", buf);
}

TEST_F(credit, credits_never_lift_capacity)
{
	struct bpq_stats st;
	int i;

	ASSERT_EQ(0, set_credit(self->fd, 4, 0, 0));
	ASSERT_EQ(0, grant(self->fd, 100));
	for (i = 0; i < 4; i++)
		ASSERT_EQ(1, bpq_write(self->fd, "x", 1));
	EXPECT_EQ(-EAGAIN, bpq_write(self->fd, "x", 1));
	ASSERT_EQ(0, bpq_get_stats(self->fd, &st));
	EXPECT_EQ(4, st.depth_msgs);
	EXPECT_EQ(96, st.credits_available);
	EXPECT_EQ(0, st.credit_starvation);
	EXPECT_EQ(1, st.backpressure_applied);
}

struct writer {
	pthread_t thr;
	int fd;
	int id;
	volatile int done;
	ssize_t ret;
};

static void *blocked_writer(void *arg)
{
	struct writer *w = arg;
	char c = 'a' + w->id;

	w->ret = bpq_write(w->fd, &c, 1);
	w->done = 1;
	return NULL;
}

TEST_F(credit, grant_wakes_exactly_k_in_order)
{
	struct writer w[3];
	int bfd, i, n;
	char c;

	bfd = bpq_open(Q, O_RDWR);
	ASSERT_LE(0, bfd);
	for (i = 0; i < 3; i++) {
		w[i] = (struct writer){ .fd = bfd, .id = i };
		ASSERT_EQ(0, pthread_create(&w[i].thr, NULL, blocked_writer,
					    &w[i]));
		/* start them one by one so that their order is known */
		sleep_ms(100);
	}
	ASSERT_EQ(0, grant(self->fd, 2));
	sleep_ms(300);
	for (n = 0, i = 0; i < 3; i++)
		n += w[i].done;
	EXPECT_EQ(2, n);
	EXPECT_TRUE(w[0].done && w[1].done && !w[2].done);
	EXPECT_EQ(2, bpq_depth(self->fd));
	ASSERT_EQ(0, grant(self->fd, 1));
	for (i = 0; i < 3; i++) {
		pthread_join(w[i].thr, NULL);
		EXPECT_EQ(1, w[i].ret);
	}
	for (i = 0; i < 3; i++) {
		ASSERT_EQ(1, bpq_read(self->fd, &c, 1));
		EXPECT_EQ('a' + i, c);
	}
	close(bfd);
}

/* N producers and consumers through a sliding window of W credits. */
#define NP	4
#define NC	4
#define PER	1500
#define W	8

struct window_run {
	volatile int stop;
	int fd;
	unsigned int next[NP];		/* per producer, next expected seq */
	unsigned long received, errors, max_depth;
	pthread_mutex_t lock;
};

struct wmsg {
	__u32 producer;
	__u32 seq;
};

static void *window_producer(void *arg)
{
	struct window_run *run = arg;
	static int ids;
	struct wmsg m = { .producer = __sync_fetch_and_add(&ids, 1) };
	int fd = bpq_open(Q, O_WRONLY);

	for (m.seq = 0; m.seq < PER; m.seq++)
		if (bpq_write(fd, &m, sizeof(m)) != sizeof(m))
			__sync_fetch_and_add(&run->errors, 1);
	close(fd);
	return NULL;
}

static void *window_consumer(void *arg)
{
	struct window_run *run = arg;
	int fd = bpq_open(Q, O_RDONLY);
	struct wmsg m;
	ssize_t n;

	while (__sync_fetch_and_add(&run->received, 0) < NP * PER) {
		n = bpq_recv(fd, &m, sizeof(m), BPQ_IO_TIMEOUT, 100, NULL);
		if (n == -ETIMEDOUT)
			continue;
		if (n != sizeof(m) || m.producer >= NP) {
			__sync_fetch_and_add(&run->errors, 1);
			break;
		}
		pthread_mutex_lock(&run->lock);
		/*
		 * Consumers compete, so per-producer order is only checked
		 * as "no duplicates, nothing skipped" on the whole.
		 */
		run->next[m.producer]++;
		run->received++;
		pthread_mutex_unlock(&run->lock);
	}
	close(fd);
	return NULL;
}

static void *window_monitor(void *arg)
{
	struct window_run *run = arg;
	__u64 d;

	while (!run->stop) {
		d = bpq_depth(run->fd);
		if (d != (__u64)-1 && d > run->max_depth)
			run->max_depth = d;
		sleep_ms(1);
	}
	return NULL;
}

TEST_F(credit, auto_credit_window)
{
	struct window_run run = { .fd = self->fd };
	pthread_t p[NP], c[NC], mon;
	struct bpq_stats st;
	int i;

	pthread_mutex_init(&run.lock, NULL);
	ASSERT_EQ(0, set_credit(self->fd, 256, 1, 0));
	ASSERT_EQ(0, grant(self->fd, W));
	pthread_create(&mon, NULL, window_monitor, &run);
	for (i = 0; i < NC; i++)
		pthread_create(&c[i], NULL, window_consumer, &run);
	for (i = 0; i < NP; i++)
		pthread_create(&p[i], NULL, window_producer, &run);
	for (i = 0; i < NP; i++)
		pthread_join(p[i], NULL);
	for (i = 0; i < NC; i++)
		pthread_join(c[i], NULL);
	run.stop = 1;
	pthread_join(mon, NULL);

	EXPECT_EQ(0, run.errors);
	EXPECT_EQ(NP * PER, run.received);
	for (i = 0; i < NP; i++)
		EXPECT_EQ(PER, run.next[i]);
	EXPECT_GE(W, run.max_depth);
	ASSERT_EQ(0, bpq_get_stats(self->fd, &st));
	EXPECT_EQ(NP * PER, st.enqueued_msgs);
	EXPECT_EQ(NP * PER, st.dequeued_msgs);
	EXPECT_EQ(0, st.depth_msgs);
	/* every delivered message returned its credit */
	EXPECT_EQ(W, st.credits_available);
	TH_LOG("window %d: max depth seen %lu, starvation %llu", W,
	       run.max_depth, (unsigned long long)st.credit_starvation);
}

/* Strategy switches under load lose nothing and duplicate nothing. */
struct switch_run {
	volatile int producer_done;
	unsigned long sent, received, bad;
};

static void *switch_producer(void *arg)
{
	struct switch_run *run = arg;
	int fd = bpq_open(Q, O_WRONLY);
	__u32 i;

	for (i = 0; i < 3000; i++) {
		if (bpq_write(fd, &i, sizeof(i)) == sizeof(i))
			run->sent++;
	}
	run->producer_done = 1;
	close(fd);
	return NULL;
}

static void *switch_consumer(void *arg)
{
	struct switch_run *run = arg;
	int fd = bpq_open(Q, O_RDONLY);
	__u32 v, expect = 0;
	ssize_t n;

	for (;;) {
		n = bpq_recv(fd, &v, sizeof(v), BPQ_IO_TIMEOUT, 50, NULL);
		if (n == -ETIMEDOUT) {
			if (run->producer_done)
				break;
			continue;
		}
		if (n != sizeof(v) || v != expect)
			run->bad++;
		expect = v + 1;
		run->received++;
		grant(fd, 1);
	}
	close(fd);
	return NULL;
}

TEST_F(credit, switch_block_credit_block)
{
	struct switch_run run = { 0 };
	pthread_t p, c;
	struct bpq_stats st;
	int i;

	ASSERT_EQ(0, bpq_configure(self->fd, BPQ_STRATEGY_BLOCK, 8));
	pthread_create(&c, NULL, switch_consumer, &run);
	pthread_create(&p, NULL, switch_producer, &run);
	for (i = 0; i < 20 && !run.producer_done; i++) {
		sleep_ms(20);
		ASSERT_EQ(0, set_credit(self->fd, 8, 0, 0));
		sleep_ms(20);
		ASSERT_EQ(0, bpq_configure(self->fd, BPQ_STRATEGY_BLOCK, 8));
	}
	pthread_join(p, NULL);
	pthread_join(c, NULL);
	EXPECT_EQ(3000, run.sent);
	EXPECT_EQ(3000, run.received);
	EXPECT_EQ(0, run.bad);
	ASSERT_EQ(0, bpq_get_stats(self->fd, &st));
	EXPECT_TRUE(bpq_stats_balanced(&st));
	EXPECT_EQ(0, st.depth_msgs);
}

TEST_HARNESS_MAIN
