// SPDX-License-Identifier: GPL-2.0
/*
 * pressure_stall: the time writers are held back, as /proc/pressure/ has
 * it for tasks.
 *
 *  - the format: two lines, "some" and "full", of avg10, avg60, avg300
 *    and total, as PSI writes them;
 *  - a writer held back for 10 s: "some" grows by as much (and its total
 *    in the stats snapshot), avg10 lands where PSI's arithmetic puts it
 *    after that many 2 s periods; "full" does not move; released, the
 *    total stops;
 *  - "full" in a credit deadlock (no credit, a writer and a reader both
 *    waiting), and not for a writer alone nor a reader alone;
 *  - a 50% duty cycle (held 1 s, free 1 s) for 12 s: avg10 within 5
 *    points of PSI's value for 50% samples, total half the time.
 *
 * What is measured is printed. Each test gets a queue of its own.
 */
#define _GNU_SOURCE
#include <math.h>

#include "bpq_test.h"
/* kselftest_harness.h of 6.1 has an unused parameter: keep -Wextra clean. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"
#include "kselftest_harness.h"
#pragma GCC diagnostic pop
/* the harness compares its operands as given: 0 against a __u64 is fine */
#pragma GCC diagnostic ignored "-Wsign-compare"

/* PSI's decay per 2 s period of the 10 s average: 1677 / 2048 */
#define EXP10	(1677.0 / 2048.0)

struct psi {
	double avg[2][3];
	unsigned long long total[2];	/* µs */
};

static int read_psi(int q, struct psi *p)
{
	char buf[256];
	int n;

	if (bpq_sysfs_read(q, "pressure_stall", buf, sizeof(buf)))
		return -1;
	n = sscanf(buf,
		   "some avg10=%lf avg60=%lf avg300=%lf total=%llu "
		   "full avg10=%lf avg60=%lf avg300=%lf total=%llu",
		   &p->avg[0][0], &p->avg[0][1], &p->avg[0][2], &p->total[0],
		   &p->avg[1][0], &p->avg[1][1], &p->avg[1][2], &p->total[1]);
	return n == 8 ? 0 : -1;
}

FIXTURE(stall) {
	int cfd;
	int q;
	int fd;
};

FIXTURE_SETUP(stall)
{
	self->fd = -1;
	self->q = bpq_test_queue("stall", &self->cfd);
	ASSERT_LE(0, self->q) TH_LOG("queue: %s", strerror(-self->q));
	self->fd = bpq_open(self->q, O_RDWR);
	ASSERT_LE(0, self->fd);
}

FIXTURE_TEARDOWN(stall)
{
	EXPECT_EQ(0, bpq_test_queue_end(self->cfd, self->q, self->fd));
}

TEST_F(stall, format)
{
	char buf[256], *nl;

	ASSERT_EQ(0, bpq_sysfs_read(self->q, "pressure_stall", buf,
				    sizeof(buf)));
	nl = strchr(buf, '\n');
	ASSERT_NE(NULL, nl);
	*nl = '\0';
	EXPECT_STREQ("some avg10=0.00 avg60=0.00 avg300=0.00 total=0", buf);
	EXPECT_STREQ("full avg10=0.00 avg60=0.00 avg300=0.00 total=0", nl + 1);
}

/*
 * After n period ends under a stall that began within the first period,
 * avg10 is 100 * (1 - EXP10^(n - 1) * (1 - f * (1 - EXP10))) for the
 * share f of that first period: between 100 * (1 - EXP10^(n - 1)) and
 * 100 * (1 - EXP10^n).
 */
TEST_F_TIMEOUT(stall, writer_held_for_10s, 60)
{
	struct io_thread w;
	struct bpq_stats st;
	struct psi a, b;
	double lo, hi;
	int64_t t0, held;
	int n;

	ASSERT_EQ(0, bpq_sysfs_write(self->q, "hold", "+admin"));
	ASSERT_EQ(0, read_psi(self->q, &a));
	t0 = now_ns();
	ASSERT_EQ(0, io_thread_start(&w, self->fd, IO_WRITE, "w", 1));
	ASSERT_TRUE(io_thread_blocked(&w, 5000));
	sleep_ms(10000);
	ASSERT_EQ(0, read_psi(self->q, &b));
	held = now_ns() - t0;
	ASSERT_EQ(0, bpq_sysfs_write(self->q, "hold", "-admin"));
	ASSERT_TRUE(io_thread_wait(&w, 5000));
	TH_LOG("held %.2f s: some total %.2f s, avg10 %.2f; full total %llu us",
	       held / 1e9, (b.total[0] - a.total[0]) / 1e6, b.avg[0][0],
	       b.total[1]);
	EXPECT_LE(9900000, b.total[0] - a.total[0]);
	EXPECT_GE(held / 1000, b.total[0] - a.total[0]);
	EXPECT_EQ(0, b.total[1]);
	EXPECT_EQ(0.0, b.avg[1][0]);
	/* 10 s: 4 or 5 period ends, and 6 s more of held to a read after */
	n = 5;
	lo = 100 * (1 - pow(EXP10, n - 2));
	hi = 100 * (1 - pow(EXP10, n + 1));
	EXPECT_LE(lo - 1, b.avg[0][0]) TH_LOG("avg10 %.2f", b.avg[0][0]);
	EXPECT_GE(hi + 1, b.avg[0][0]) TH_LOG("avg10 %.2f", b.avg[0][0]);
	EXPECT_LT(b.avg[0][2], b.avg[0][1]);
	EXPECT_LT(b.avg[0][1], b.avg[0][0]);
	/* released: the total stops */
	sleep_ms(300);
	ASSERT_EQ(0, read_psi(self->q, &a));
	ASSERT_EQ(0, bpq_get_stats(self->fd, &st));
	EXPECT_GE(b.total[0] + 300000, a.total[0]);
	EXPECT_LE(a.total[0], st.stall_some_us);
	EXPECT_GE(a.total[0] + 1000, st.stall_some_us);
	EXPECT_EQ(0, st.stall_full_us);
}

/* full: nobody makes progress; not for one side waiting alone */
TEST_F_TIMEOUT(stall, full_in_a_credit_deadlock, 60)
{
	struct io_thread w, r;
	struct bpq_config cfg;
	struct psi a, b;
	int rfd;

	ASSERT_EQ(0, bpq_get_config(self->fd, &cfg));
	cfg.strategy = BPQ_STRATEGY_CREDIT;
	ASSERT_EQ(0, bpq_set_config(self->fd, &cfg));
	rfd = bpq_open(self->q, O_RDWR);
	ASSERT_LE(0, rfd);

	/* a reader alone: no stall */
	ASSERT_EQ(0, read_psi(self->q, &a));
	ASSERT_EQ(0, io_thread_start(&r, rfd, IO_READ, NULL, 16));
	ASSERT_TRUE(io_thread_blocked(&r, 5000));
	sleep_ms(300);
	ASSERT_EQ(0, read_psi(self->q, &b));
	EXPECT_EQ(a.total[0], b.total[0]);
	EXPECT_EQ(a.total[1], b.total[1]);

	/* and a writer without a credit: both wait, full */
	ASSERT_EQ(0, io_thread_start(&w, self->fd, IO_WRITE, "w", 1));
	ASSERT_TRUE(io_thread_blocked(&w, 5000));
	sleep_ms(500);
	ASSERT_EQ(0, read_psi(self->q, &a));
	TH_LOG("deadlock: some %llu us, full %llu us", a.total[0] - b.total[0],
	       a.total[1] - b.total[1]);
	EXPECT_LE(450000, a.total[1] - b.total[1]);
	EXPECT_LE(a.total[1] - b.total[1], a.total[0] - b.total[0]);

	/* a credit: both go on, the stall ends */
	ASSERT_EQ(0, bpq_ioctl(self->fd, BPQ_IOC_GRANT,
			       &(struct bpq_grant){
				       .size = sizeof(struct bpq_grant),
				       .credits = 1 }));
	ASSERT_TRUE(io_thread_wait(&w, 5000));
	ASSERT_TRUE(io_thread_wait(&r, 5000));
	EXPECT_EQ(1, w.ret);
	EXPECT_EQ(1, r.ret);

	/* a writer alone: some, not full */
	ASSERT_EQ(0, read_psi(self->q, &a));
	ASSERT_EQ(0, io_thread_start(&w, self->fd, IO_WRITE, "v", 1));
	ASSERT_TRUE(io_thread_blocked(&w, 5000));
	sleep_ms(300);
	ASSERT_EQ(0, read_psi(self->q, &b));
	EXPECT_LE(250000, b.total[0] - a.total[0]);
	EXPECT_GE(1000, b.total[1] - a.total[1]);
	ASSERT_EQ(0, bpq_ioctl(self->fd, BPQ_IOC_GRANT,
			       &(struct bpq_grant){
				       .size = sizeof(struct bpq_grant),
				       .credits = 1 }));
	ASSERT_TRUE(io_thread_wait(&w, 5000));
	close(rfd);
}

/*
 * Held 1 s, free 1 s, six times: every 2 s period holds 1 s of stall,
 * so avg10 follows 50 * (1 - EXP10^n).
 */
TEST_F_TIMEOUT(stall, duty_cycle_of_half, 90)
{
	struct io_thread w;
	struct psi a, b;
	double lo, hi;
	int i;

	ASSERT_EQ(0, read_psi(self->q, &a));
	for (i = 0; i < 6; i++) {
		ASSERT_EQ(0, bpq_sysfs_write(self->q, "hold", "+admin"));
		ASSERT_EQ(0, io_thread_start(&w, self->fd, IO_WRITE, "d", 1));
		sleep_ms(1000);
		ASSERT_EQ(0, bpq_sysfs_write(self->q, "hold", "-admin"));
		ASSERT_TRUE(io_thread_wait(&w, 5000));
		EXPECT_EQ(1, w.ret);
		sleep_ms(1000);
	}
	ASSERT_EQ(0, read_psi(self->q, &b));
	TH_LOG("six cycles: some total %.2f s, avg10 %.2f, avg60 %.2f",
	       (b.total[0] - a.total[0]) / 1e6, b.avg[0][0], b.avg[0][1]);
	EXPECT_LE(5700000, b.total[0] - a.total[0]);
	EXPECT_GE(6500000, b.total[0] - a.total[0]);
	/* 12 s: 5 or 6 period ends, each of 50% */
	lo = 50 * (1 - pow(EXP10, 5));
	hi = 50 * (1 - pow(EXP10, 6));
	EXPECT_LE(lo - 5, b.avg[0][0]);
	EXPECT_GE(hi + 5, b.avg[0][0]);
}

TEST_HARNESS_MAIN
