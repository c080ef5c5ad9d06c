// SPDX-License-Identifier: GPL-2.0
/*
 * The adaptive strategy: a producer offering far more than its consumer
 * serves is paced so that messages wait about target_latency_us.
 */
#include <math.h>

#include "bpq_test.h"
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"
#include "kselftest_harness.h"
#pragma GCC diagnostic pop
#pragma GCC diagnostic ignored "-Wsign-compare"

#define SERVICE_RATE	2000		/* consumer, msgs/s */
#define TARGET_US	20000
#define TARGET_MSGS	40		/* at least, of backlog at the target */
#define SLACK_NS	2000000		/* consumer wake-ups at most every 2 ms */
#define CAPACITY	1024
#define SETTLE_MS	8000
#define MEASURE_MS	4000
#define MAX_SAMPLES	(SERVICE_RATE * (MEASURE_MS / 1000) * 2)

static int Q = -1;

/* BPQ_ADAPTIVE_STRICT=1: also the bounds only a quiet machine meets */
static bool strict(void)
{
	const char *s = getenv("BPQ_ADAPTIVE_STRICT");

	return s && !strcmp(s, "1");
}
static int service_rate = SERVICE_RATE;
static int target_us = TARGET_US;

struct run {
	volatile int stop;
	volatile int measuring;
	int64_t start;
	unsigned long offered, admitted, refused;
	unsigned long served, served_measuring;
	unsigned long nsamples;
	int64_t sojourn[MAX_SAMPLES];
	__u64 max_depth;
	double rate_sum;
	unsigned long rate_n;
};

static void *producer(void *arg)
{
	struct run *run = arg;
	int fd = bpq_open(Q, O_WRONLY);
	char msg[32] = "adaptive";

	while (!run->stop) {
		run->offered++;
		if (bpq_write(fd, msg, sizeof(msg)) == sizeof(msg))
			run->admitted++;
		else
			run->refused++;
	}
	close(fd);
	return NULL;
}

/*
 * Serves service_rate msgs/s on a schedule of absolute times, so that
 * coarse sleeps are made up for by the next slots.
 */
static void *consumer(void *arg)
{
	struct run *run = arg;
	int fd = bpq_open(Q, O_RDONLY);
	int64_t next = now_ns(), now;
	struct bpq_msg_info info;
	struct timespec ts;
	char buf[64];

	while (!run->stop) {
		now = now_ns();
		if (now < next) {
			/* wake a little after the slot: serve a few per wake-up */
			ts.tv_sec = (next + SLACK_NS) / 1000000000LL;
			ts.tv_nsec = (next + SLACK_NS) % 1000000000LL;
			clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts,
					NULL);
			continue;
		}
		next += 1000000000LL / service_rate;
		if (next < now - 100000000LL)	/* fell far behind: resync */
			next = now;
		if (bpq_recv(fd, buf, sizeof(buf), BPQ_IO_TIMEOUT, 100,
			     &info) < 0)
			continue;
		run->served++;
		if (run->measuring) {
			run->served_measuring++;
			if (run->nsamples < MAX_SAMPLES)
				run->sojourn[run->nsamples++] =
					now_ns() - (int64_t)info.timestamp_ns;
		}
	}
	close(fd);
	return NULL;
}

/*
 * The test needs a producer that can offer several times what the consumer
 * serves. A debug kernel (KASAN, lockdep) under emulation writes some 12k
 * messages/s back to back, and far fewer once a paced writer sleeps and
 * wakes per message: there the consumer serves a sixteenth of the writes
 * and an eighth of the reads this kernel manages back to back,
 * and the target grows to keep TARGET_MSGS of backlog, so that the same
 * bounds are checked, scaled. On the kernels we ship for, 2000/s and 20 ms.
 */
static void calibrate(struct __test_metadata *_metadata, int fd)
{
	int i, n = CAPACITY / 2, w_rate, r_rate;
	struct bpq_config cfg;
	char buf[64] = "calibrate";
	int64_t t0, t1, t2;

	ASSERT_EQ(0, bpq_get_config(fd, &cfg));
	cfg.strategy = BPQ_STRATEGY_BLOCK;
	ASSERT_EQ(0, bpq_set_config(fd, &cfg));
	t0 = now_ns();
	for (i = 0; i < n; i++)
		ASSERT_EQ(32, bpq_write(fd, buf, 32));
	t1 = now_ns();
	for (i = 0; i < n; i++)
		ASSERT_EQ(32, bpq_read(fd, buf, sizeof(buf)));
	t2 = now_ns();
	w_rate = (int)(n * 1e9 / (t1 - t0));
	r_rate = (int)(n * 1e9 / (t2 - t1));
	service_rate = SERVICE_RATE;
	if (service_rate > w_rate / 16)
		service_rate = w_rate / 16;
	if (service_rate > r_rate / 8)
		service_rate = r_rate / 8;
	if (service_rate < 10)
		service_rate = 10;
	target_us = TARGET_US;
	if ((int64_t)target_us * service_rate < TARGET_MSGS * 1000000LL)
		target_us = (int)(TARGET_MSGS * 1000000LL / service_rate);
	TH_LOG("this kernel: %d writes/s, %d reads/s back to back; consumer at %d msgs/s, target %d ms",
	       w_rate, r_rate, service_rate, target_us / 1000);

	cfg.strategy = BPQ_STRATEGY_ADAPTIVE;
	cfg.target_latency_us = target_us;
	cfg.min_rate = service_rate / 4;
	ASSERT_EQ(0, bpq_set_config(fd, &cfg));
}

static int cmp64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

FIXTURE(adaptive) {
	int cfd;
	int fd;
};

FIXTURE_SETUP(adaptive)
{
	struct bpq_config cfg;

	self->cfd = bpq_control_open();
	ASSERT_LE(0, self->cfd) TH_LOG("%m - open " BPQ_CONTROL_PATH);
	Q = bpq_create(self->cfd, "adaptive-test");
	ASSERT_LE(0, Q) TH_LOG("create: %s", strerror(-Q));
	ASSERT_TRUE(bpq_wait_node(Q, true, 5000));
	self->fd = bpq_open(Q, O_RDWR);
	ASSERT_LE(0, self->fd);
	bpq_default_config(&cfg);
	cfg.strategy = BPQ_STRATEGY_ADAPTIVE;
	cfg.capacity_msgs = CAPACITY;
	cfg.target_latency_us = TARGET_US;
	cfg.adjust_interval_ms = 100;
	cfg.min_rate = 500;
	cfg.max_rate = 1000000;
	ASSERT_EQ(0, bpq_set_config(self->fd, &cfg));
}

FIXTURE_TEARDOWN(adaptive)
{
	close(self->fd);
	EXPECT_EQ(0, bpq_destroy(self->cfd, Q));
	close(self->cfd);
}

TEST_F_TIMEOUT(adaptive, converges_to_target, 120)
{
	struct run *run = calloc(1, sizeof(*run));
	double p50, p90, mean_rate, served_rate;
	pthread_t p, c;
	struct bpq_stats st;
	int64_t t;

	ASSERT_NE(NULL, run);
	EXPECT_EQ(500, bpq_sysfs_u64(Q, "rate"));
	calibrate(_metadata, self->fd);
	EXPECT_EQ(service_rate / 4, bpq_sysfs_u64(Q, "rate"));
	run->start = now_ns();
	pthread_create(&c, NULL, consumer, run);
	pthread_create(&p, NULL, producer, run);

	TH_LOG("    t_ms    rate  depth  throughput");
	for (t = 0; t < SETTLE_MS + MEASURE_MS; t += 250) {
		__u64 depth, rate;

		sleep_ms(250);
		if (t + 250 == SETTLE_MS)
			run->measuring = 1;
		depth = bpq_sysfs_u64(Q, "depth_msgs");
		rate = bpq_sysfs_u64(Q, "rate");
		if (depth > run->max_depth)
			run->max_depth = depth;
		if (run->measuring) {
			run->rate_sum += rate;
			run->rate_n++;
		}
		TH_LOG("%8lld %7llu %6llu %11llu", (long long)t + 250,
		       (unsigned long long)rate, (unsigned long long)depth,
		       (unsigned long long)bpq_sysfs_u64(Q, "throughput"));
	}
	run->stop = 1;
	pthread_join(p, NULL);
	pthread_join(c, NULL);

	ASSERT_LT(100, run->nsamples);
	qsort(run->sojourn, run->nsamples, sizeof(int64_t), cmp64);
	p50 = run->sojourn[run->nsamples / 2] / 1e6;
	p90 = run->sojourn[run->nsamples * 9 / 10] / 1e6;
	mean_rate = run->rate_sum / run->rate_n;
	served_rate = run->served_measuring * 1000.0 / MEASURE_MS;
	ASSERT_EQ(0, bpq_get_stats(self->fd, &st));
	TH_LOG("sojourn p50 %.1f ms p90 %.1f ms (target %d ms); rate %.0f/s, served %.0f/s; max depth %llu of %d",
	       p50, p90, target_us / 1000, mean_rate, served_rate,
	       (unsigned long long)run->max_depth, CAPACITY);
	TH_LOG("offered %lu, admitted %lu; throttled %.1f s, blocked %.1f s",
	       run->offered, run->admitted, st.throttled_ns / 1e9,
	       st.blocked_ns / 1e9);

	/*
	 * Uncontrolled, the queue would fill: messages would wait
	 * CAPACITY / TARGET_MSGS, some 25 times the target or more. A
	 * controlled one keeps the median under 4 x the target and the tail
	 * under 10 x, whatever the host does to an emulated guest: a
	 * consumer descheduled for tens of ms leaves backlog that the
	 * controller can only see afterwards, and a loaded host does that
	 * often. Over-throttling shows as an admitted rate below the served
	 * one (checked below); a short wait alone is no failure (on a loaded
	 * debug kernel the median was 8 ms against 70). How close it comes
	 * (0.5 ... 2 x, tail 3 x) is for a quiet machine: checked with
	 * BPQ_ADAPTIVE_STRICT=1.
	 */
	EXPECT_GE(target_us / 1000.0 * 4, p50);
	EXPECT_GE(target_us / 1000.0 * 10, p90);
	if (strict()) {
		EXPECT_LE(target_us / 1000.0 * 0.5, p50);
		EXPECT_GE(target_us / 1000.0 * 2, p50);
		EXPECT_GE(target_us / 1000.0 * 3, p90);
	}
	EXPECT_GT(CAPACITY / 2, run->max_depth);
	EXPECT_EQ(0, st.dropped_newest + st.dropped_oldest);
	EXPECT_EQ(0, run->refused);
	EXPECT_GT(0.3, fabs(mean_rate - served_rate) / served_rate);
	EXPECT_LT(0, st.throttled_ns);
	EXPECT_TRUE(bpq_stats_balanced(&st));
	free(run);
}

TEST_F(adaptive, nonblocking_writer_over_rate_gets_eagain)
{
	struct bpq_stats st;
	int nfd, i, ok = 0, again = 0;
	ssize_t n;

	nfd = bpq_open(Q, O_WRONLY | O_NONBLOCK);
	ASSERT_LE(0, nfd);
	/* at 200 msgs/s with a burst of a few, 50 quick writes cannot all pass */
	for (i = 0; i < 50; i++) {
		n = bpq_write(nfd, "x", 1);
		if (n == 1)
			ok++;
		else if (n == -EAGAIN)
			again++;
	}
	EXPECT_EQ(50, ok + again);
	EXPECT_LT(0, again);
	EXPECT_LT(0, ok);
	ASSERT_EQ(0, bpq_get_stats(self->fd, &st));
	EXPECT_EQ(again, st.backpressure_applied);
	EXPECT_EQ(ok, st.depth_msgs);
	close(nfd);
}

/*
 * poll() reports EPOLLOUT when the next token is due: the timer is armed
 * by the writes that spent the tokens, not by the poll, which only reads.
 */
TEST_F(adaptive, poll_out_when_token_due)
{
	struct pollfd pfd = { .events = POLLOUT };
	struct bpq_config cfg;
	int i, ret = 0;

	/* one token a second: poll() sleeps, and only the timer wakes it */
	ASSERT_EQ(0, bpq_get_config(self->fd, &cfg));
	cfg.min_rate = 1;
	cfg.max_rate = 1;
	ASSERT_EQ(0, bpq_set_config(self->fd, &cfg));
	pfd.fd = bpq_open(Q, O_WRONLY | O_NONBLOCK);
	ASSERT_LE(0, pfd.fd);
	for (i = 0; i < 100; i++) {
		ret = bpq_write(pfd.fd, "x", 1);
		if (ret != 1)
			break;
	}
	ASSERT_EQ(-EAGAIN, ret);
	ASSERT_EQ(1, poll(&pfd, 1, 10000));
	EXPECT_EQ(POLLOUT, pfd.revents & POLLOUT);
	EXPECT_EQ(1, bpq_write(pfd.fd, "x", 1));
	close(pfd.fd);
}

TEST_F(adaptive, rate_is_clamped_by_config)
{
	struct bpq_config cfg;

	ASSERT_EQ(0, bpq_get_config(self->fd, &cfg));
	cfg.min_rate = 5000;
	cfg.max_rate = 6000;
	ASSERT_EQ(0, bpq_set_config(self->fd, &cfg));
	EXPECT_EQ(5000, bpq_sysfs_u64(Q, "rate"));
	cfg.min_rate = 10;
	cfg.max_rate = 20;
	ASSERT_EQ(0, bpq_set_config(self->fd, &cfg));
	EXPECT_EQ(20, bpq_sysfs_u64(Q, "rate"));
	cfg.max_rate = 5;
	EXPECT_EQ(-EINVAL, bpq_set_config(self->fd, &cfg));
	EXPECT_EQ(20, bpq_sysfs_u64(Q, "rate"));
}

TEST_HARNESS_MAIN
