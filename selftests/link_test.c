// SPDX-License-Identifier: GPL-2.0
/*
 * Links (BPQ_IOC_LINK, BPQ_IOC_UNLINK on /dev/bpq-control): while a
 * downstream queue is under pressure, its upstream queue is held (link),
 * transitively along a pipeline.
 *
 *  - a chain A -> B -> C: a hold on C, and C's own watermarks, hold B and
 *    A within 100 ms (what is measured is printed), and the fall releases
 *    them; a writer of A waiting for it goes in;
 *  - fan-out: A's link hold is the OR of its downstream queues';
 *  - a destroy in the middle of a chain removes its links and releases
 *    what it held; unlink does too;
 *  - upstream and downstream in sysfs; cycles (ELOOP), duplicates
 *    (EEXIST), missing queues and links (ENOENT), the per-queue limit
 *    (EMLINK), flags (EINVAL), CAP_SYS_ADMIN (EPERM): nothing changed;
 *  - link, unlink and destroy raced with pressure edges and traffic.
 *
 * Each test makes its own queues and destroys them.
 */
#define _GNU_SOURCE
#include <sys/wait.h>

#include "bpq_test.h"
/* kselftest_harness.h of 6.1 has an unused parameter: keep -Wextra clean. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"
#include "kselftest_harness.h"
#pragma GCC diagnostic pop
/* the harness compares its operands as given: 0 against a __u64 is fine */
#pragma GCC diagnostic ignored "-Wsign-compare"

#define NQ		4	/* a, b, c, d */
#define SETTLE_MS	5000	/* how long a propagation may take, at most */

static int ioc_link(int cfd, unsigned long cmd, int up, int down, __u32 flags)
{
	struct bpq_link l = {
		.size = sizeof(l), .flags = flags,
		.upstream = up, .downstream = down,
	};

	return bpq_ioctl(cfd, cmd, &l);
}

static int link_q(int cfd, int up, int down)
{
	return ioc_link(cfd, BPQ_IOC_LINK, up, down, 0);
}

static int unlink_q(int cfd, int up, int down)
{
	return ioc_link(cfd, BPQ_IOC_UNLINK, up, down, 0);
}

FIXTURE(link) {
	int cfd;
	int q[NQ];
	int fd[NQ];
};

FIXTURE_SETUP(link)
{
	char name[BPQ_NAME_MAX];
	int i;

	self->cfd = bpq_control_open();
	ASSERT_LE(0, self->cfd) TH_LOG("%m - open " BPQ_CONTROL_PATH);
	for (i = 0; i < NQ; i++)
		self->q[i] = self->fd[i] = -1;
	for (i = 0; i < NQ; i++) {
		snprintf(name, sizeof(name), "link-%d-%c", getpid(), 'a' + i);
		self->q[i] = bpq_create(self->cfd, name);
		ASSERT_LE(0, self->q[i]);
		ASSERT_TRUE(bpq_wait_node(self->q[i], true, 5000));
		self->fd[i] = bpq_open(self->q[i], O_RDWR | O_NONBLOCK);
		ASSERT_LE(0, self->fd[i]);
	}
}

FIXTURE_TEARDOWN(link)
{
	int i;

	for (i = 0; i < NQ; i++) {
		if (self->fd[i] >= 0)
			close(self->fd[i]);
		if (self->q[i] >= 0)
			EXPECT_EQ(0, bpq_destroy(self->cfd, self->q[i]));
	}
	close(self->cfd);
}

/* Does queue @q's hold file list "link" (or not, @want false)? */
static bool has_link_hold(int q)
{
	char buf[128];

	if (bpq_sysfs_read(q, "hold", buf, sizeof(buf)))
		return false;
	return strstr(buf, "link") != NULL;
}

/* Wait until @q's link hold is @want: ms taken, or -1 after SETTLE_MS */
static long settle(int q, bool want)
{
	int64_t t0 = now_ns();

	while (has_link_hold(q) != want) {
		if (now_ns() - t0 > (int64_t)SETTLE_MS * 1000000)
			return -1;
		usleep(200);
	}
	return (now_ns() - t0) / 1000000;
}

static void expect_names(struct __test_metadata *_metadata, int q,
			 const char *attr, const char *want)
{
	char buf[512];

	ASSERT_EQ(0, bpq_sysfs_read(q, attr, buf, sizeof(buf)));
	EXPECT_STREQ(want, buf) TH_LOG("bpq%d/%s", q, attr);
}

static void name_of(int q, char *buf, size_t len)
{
	if (bpq_sysfs_read(q, "name", buf, len))
		snprintf(buf, len, "?");
}

TEST_F(link, chain_holds_the_source)
{
	int a = self->q[0], b = self->q[1], c = self->q[2];
	char nb[BPQ_NAME_MAX + 1], nc[BPQ_NAME_MAX + 1], na[BPQ_NAME_MAX + 1];
	char both[2 * BPQ_NAME_MAX + 2];
	long ms;

	ASSERT_EQ(0, link_q(self->cfd, a, b));
	ASSERT_EQ(0, link_q(self->cfd, b, c));
	name_of(a, na, sizeof(na));
	name_of(b, nb, sizeof(nb));
	name_of(c, nc, sizeof(nc));
	expect_names(_metadata, a, "downstream", nb);
	expect_names(_metadata, b, "upstream", na);
	expect_names(_metadata, b, "downstream", nc);
	expect_names(_metadata, c, "upstream", nb);
	expect_names(_metadata, a, "upstream", "");
	expect_names(_metadata, c, "downstream", "");
	EXPECT_FALSE(has_link_hold(a));

	ASSERT_EQ(0, bpq_sysfs_write(c, "hold", "+admin"));
	ms = settle(a, true);
	ASSERT_LE(0, ms) TH_LOG("A not held");
	TH_LOG("a hold on C held A in %ld ms", ms);
	EXPECT_TRUE(has_link_hold(b));
	expect_names(_metadata, a, "pressure_source", "link");
	EXPECT_EQ(1, bpq_sysfs_u64(a, "pressure"));
	EXPECT_EQ(-EAGAIN, bpq_write(self->fd[0], "x", 1));

	ASSERT_EQ(0, bpq_sysfs_write(c, "hold", "-admin"));
	ms = settle(a, false);
	ASSERT_LE(0, ms) TH_LOG("A not released");
	TH_LOG("and its release let A go in %ld ms", ms);
	EXPECT_FALSE(has_link_hold(b));
	EXPECT_EQ(1, bpq_write(self->fd[0], "x", 1));

	/* a second upstream of C */
	ASSERT_EQ(0, link_q(self->cfd, self->q[3], c));
	snprintf(both, sizeof(both), "%s ", nb);
	name_of(self->q[3], both + strlen(both), BPQ_NAME_MAX + 1);
	expect_names(_metadata, c, "upstream", both);
}

/* C's own watermarks hold A; a writer of A waits, and goes in after. */
TEST_F(link, watermarks_travel_and_release_a_writer)
{
	int a = self->q[0], b = self->q[1], c = self->q[2];
	struct bpq_config cfg;
	struct io_thread w;
	int wfd, i;
	char buf[8];

	ASSERT_EQ(0, link_q(self->cfd, a, b));
	ASSERT_EQ(0, link_q(self->cfd, b, c));
	ASSERT_EQ(0, bpq_get_config(self->fd[2], &cfg));
	cfg.capacity_msgs = 10;
	cfg.high_watermark = 50;
	cfg.low_watermark = 20;
	ASSERT_EQ(0, bpq_set_config(self->fd[2], &cfg));
	for (i = 0; i < 5; i++)
		ASSERT_EQ(1, bpq_write(self->fd[2], "c", 1));
	ASSERT_LE(0, settle(a, true));
	expect_names(_metadata, c, "pressure_source", "watermark");
	wfd = bpq_open(a, O_RDWR);
	ASSERT_LE(0, wfd);
	ASSERT_EQ(0, io_thread_start(&w, wfd, IO_WRITE, "a", 1));
	ASSERT_TRUE(io_thread_blocked(&w, 5000));
	for (i = 0; i < 4; i++)
		ASSERT_EQ(1, bpq_read(self->fd[2], buf, sizeof(buf)));
	ASSERT_LE(0, settle(a, false));
	ASSERT_TRUE(io_thread_wait(&w, 5000));
	EXPECT_EQ(1, w.ret);
	EXPECT_LT(0, bpq_sysfs_u64(a, "stats/held_ns"));
	close(wfd);
}

/* Fan-out: A is held while any of its downstream queues is. */
TEST_F(link, fan_out_ors)
{
	int a = self->q[0], b = self->q[1], c = self->q[2];

	ASSERT_EQ(0, link_q(self->cfd, a, b));
	ASSERT_EQ(0, link_q(self->cfd, a, c));
	ASSERT_EQ(0, bpq_sysfs_write(b, "hold", "+admin"));
	ASSERT_LE(0, settle(a, true));
	ASSERT_EQ(0, bpq_sysfs_write(c, "hold", "+cluster"));
	ASSERT_EQ(0, bpq_sysfs_write(b, "hold", "-admin"));
	usleep(100000);
	EXPECT_TRUE(has_link_hold(a)) TH_LOG("C still under pressure");
	ASSERT_EQ(0, bpq_sysfs_write(c, "hold", "-cluster"));
	ASSERT_LE(0, settle(a, false));
	/* a link to a queue already under pressure holds at once */
	ASSERT_EQ(0, bpq_sysfs_write(self->q[3], "hold", "+system"));
	ASSERT_EQ(0, link_q(self->cfd, a, self->q[3]));
	EXPECT_TRUE(has_link_hold(a));
	ASSERT_EQ(0, unlink_q(self->cfd, a, self->q[3]));
	EXPECT_FALSE(has_link_hold(a));
	expect_names(_metadata, self->q[3], "upstream", "");
}

/* Destroying the middle of a chain removes its links, releasing A. */
TEST_F(link, destroy_mid_chain)
{
	int a = self->q[0], b = self->q[1], c = self->q[2];

	ASSERT_EQ(0, link_q(self->cfd, a, b));
	ASSERT_EQ(0, link_q(self->cfd, b, c));
	ASSERT_EQ(0, bpq_sysfs_write(c, "hold", "+admin"));
	ASSERT_LE(0, settle(a, true));
	close(self->fd[1]);
	self->fd[1] = -1;
	ASSERT_EQ(0, bpq_destroy(self->cfd, b));
	self->q[1] = -1;
	ASSERT_LE(0, settle(a, false));
	expect_names(_metadata, a, "downstream", "");
	expect_names(_metadata, c, "upstream", "");
	EXPECT_EQ(-ENOENT, link_q(self->cfd, a, b));
	/* C's pressure reaches A no more */
	ASSERT_EQ(0, bpq_sysfs_write(c, "hold", "-admin"));
	ASSERT_EQ(0, bpq_sysfs_write(c, "hold", "+admin"));
	usleep(100000);
	EXPECT_FALSE(has_link_hold(a));
}

TEST_F(link, bad_links_change_nothing)
{
	int a = self->q[0], b = self->q[1], c = self->q[2];
	char extra[BPQ_NAME_MAX];
	int more[BPQ_LINKS_MAX], i, n;

	EXPECT_EQ(-ELOOP, link_q(self->cfd, a, a));
	ASSERT_EQ(0, link_q(self->cfd, a, b));
	EXPECT_EQ(-EEXIST, link_q(self->cfd, a, b));
	EXPECT_EQ(-ELOOP, link_q(self->cfd, b, a));
	ASSERT_EQ(0, link_q(self->cfd, b, c));
	EXPECT_EQ(-ELOOP, link_q(self->cfd, c, a));
	EXPECT_EQ(-ENOENT, unlink_q(self->cfd, a, c));
	EXPECT_EQ(-ENOENT, unlink_q(self->cfd, b, a));
	EXPECT_EQ(-ENOENT, link_q(self->cfd, a, 999999));
	EXPECT_EQ(-ENOENT, link_q(self->cfd, 999999, a));
	EXPECT_EQ(-EINVAL, ioc_link(self->cfd, BPQ_IOC_LINK, a, c, 1));
	EXPECT_EQ(-EINVAL, ioc_link(self->cfd, BPQ_IOC_UNLINK, a, b, 1));
	/* the limit: BPQ_LINKS_MAX downstream of D, then EMLINK */
	for (n = 0; n < BPQ_LINKS_MAX; n++) {
		snprintf(extra, sizeof(extra), "link-%d-x%d", getpid(), n);
		more[n] = bpq_create(self->cfd, extra);
		ASSERT_LE(0, more[n]);
		ASSERT_EQ(0, link_q(self->cfd, self->q[3], more[n]));
	}
	EXPECT_EQ(-EMLINK, link_q(self->cfd, self->q[3], a));
	for (i = 0; i < n; i++)
		EXPECT_EQ(0, bpq_destroy(self->cfd, more[i]));
	expect_names(_metadata, self->q[3], "downstream", "");
	EXPECT_EQ(0, link_q(self->cfd, self->q[3], a));
	/* what was there is there */
	EXPECT_EQ(0, unlink_q(self->cfd, a, b));
	EXPECT_EQ(0, unlink_q(self->cfd, b, c));
	EXPECT_EQ(-ENOENT, unlink_q(self->cfd, a, b));
}

/* Make @n queues named link-PID-TAG<i>: 0, or -errno */
static int make_queues(int cfd, const char *tag, int *q, int n)
{
	char name[BPQ_NAME_MAX];
	int i;

	for (i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "link-%d-%s%d", getpid(), tag, i);
		q[i] = bpq_create(cfd, name);
		if (q[i] < 0)
			return q[i];
	}
	return 0;
}

/*
 * Layers of three queues, each linked to all three of the next: many
 * paths, each queue looked at once. Then a chain of 32 links is the
 * longest: one more at its head is refused, as a loop is.
 */
TEST_F(link, wide_graphs_and_long_chains)
{
	int q[34], i, j, layers = 8;

	ASSERT_EQ(0, make_queues(self->cfd, "w", q, 3 * layers));
	for (i = 0; i < layers - 1; i++)
		for (j = 0; j < 9; j++)
			ASSERT_EQ(0, link_q(self->cfd, q[3 * i + j / 3],
					    q[3 * (i + 1) + j % 3]));
	ASSERT_EQ(0, link_q(self->cfd, self->q[0], q[0]));
	EXPECT_EQ(-ELOOP, link_q(self->cfd, q[3 * layers - 1], self->q[0]));
	EXPECT_EQ(-ELOOP, link_q(self->cfd, q[3 * layers - 2], q[1]));
	ASSERT_EQ(0, bpq_sysfs_write(q[3 * layers - 1], "hold", "+admin"));
	EXPECT_LE(0, settle(self->q[0], true));
	for (i = 0; i < 3 * layers; i++)
		EXPECT_EQ(0, bpq_destroy(self->cfd, q[i]));
	EXPECT_LE(0, settle(self->q[0], false));

	ASSERT_EQ(0, make_queues(self->cfd, "c", q, 34));
	for (i = 1; i < 33; i++)
		ASSERT_EQ(0, link_q(self->cfd, q[i], q[i + 1])) TH_LOG("%d", i);
	EXPECT_EQ(-ELOOP, link_q(self->cfd, q[0], q[1]));
	ASSERT_EQ(0, unlink_q(self->cfd, q[32], q[33]));
	EXPECT_EQ(0, link_q(self->cfd, q[0], q[1]));
	for (i = 0; i < 34; i++)
		EXPECT_EQ(0, bpq_destroy(self->cfd, q[i]));
}

/* Only CAP_SYS_ADMIN links, as it creates and destroys. */
TEST_F(link, needs_cap_sys_admin)
{
	pid_t pid = fork();
	int status;

	ASSERT_LE(0, pid);
	if (!pid) {
		if (drop_cap(CAP_SYS_ADMIN))
			_exit(2);
		_exit(link_q(self->cfd, self->q[0], self->q[1]) == -EPERM &&
		      unlink_q(self->cfd, self->q[0], self->q[1]) == -EPERM ?
		      0 : 1);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_EQ(0, WEXITSTATUS(status));
	expect_names(_metadata, self->q[0], "downstream", "");
}

/* ---- raced ---- */

struct racer {
	int cfd;
	int *q;
	int stop;	/* atomic */
	long ops;
};

static void *race_links(void *arg)
{
	struct racer *r = arg;
	unsigned int rnd = 1;
	int up, down;

	while (!__atomic_load_n(&r->stop, __ATOMIC_RELAXED)) {
		rnd = rnd * 1103515245 + 12345;
		up = __atomic_load_n(&r->q[(rnd >> 8) % NQ], __ATOMIC_RELAXED);
		down = __atomic_load_n(&r->q[(rnd >> 12) % NQ],
				       __ATOMIC_RELAXED);
		if ((rnd >> 20) % 2)
			link_q(r->cfd, up, down);
		else
			unlink_q(r->cfd, up, down);
		r->ops++;
	}
	return NULL;
}

static void *race_pressure(void *arg)
{
	struct racer *r = arg;
	unsigned int rnd = 2;
	int q;

	while (!__atomic_load_n(&r->stop, __ATOMIC_RELAXED)) {
		rnd = rnd * 1103515245 + 12345;
		q = __atomic_load_n(&r->q[(rnd >> 8) % NQ], __ATOMIC_RELAXED);
		bpq_sysfs_write(q, "hold", (rnd >> 16) % 2 ? "+admin" :
							   "-admin");
		r->ops++;
	}
	return NULL;
}

/*
 * Links and unlinks, holds on and off, and a queue destroyed and made
 * again, at once: no splat (lockdep and KASAN on the debug kernel), and
 * once all is quiet and every link gone, no link hold is left.
 */
TEST_F_TIMEOUT(link, raced_with_destroy, 120)
{
	struct racer r = { .cfd = self->cfd, .q = self->q };
	pthread_t t[3];
	char name[BPQ_NAME_MAX];
	int64_t end = now_ns() + 2000000000LL;
	long destroys = 0;
	int i, j, nq;

	ASSERT_EQ(0, pthread_create(&t[0], NULL, race_links, &r));
	ASSERT_EQ(0, pthread_create(&t[1], NULL, race_links, &r));
	ASSERT_EQ(0, pthread_create(&t[2], NULL, race_pressure, &r));
	while (now_ns() < end) {
		close(self->fd[3]);
		self->fd[3] = -1;
		ASSERT_EQ(0, bpq_destroy(self->cfd, self->q[3]));
		snprintf(name, sizeof(name), "link-%d-d%ld", getpid(), destroys);
		nq = bpq_create(self->cfd, name);
		ASSERT_LE(0, nq);
		__atomic_store_n(&self->q[3], nq, __ATOMIC_RELAXED);
		ASSERT_TRUE(bpq_wait_node(nq, true, 5000));
		self->fd[3] = bpq_open(nq, O_RDWR | O_NONBLOCK);
		ASSERT_LE(0, self->fd[3]);
		destroys++;
		usleep(10000);
	}
	__atomic_store_n(&r.stop, 1, __ATOMIC_RELAXED);
	for (i = 0; i < 3; i++)
		pthread_join(t[i], NULL);
	TH_LOG("%ld link, unlink and hold calls, %ld destroys", r.ops,
	       destroys);
	for (i = 0; i < NQ; i++) {
		ASSERT_EQ(0, bpq_sysfs_write(self->q[i], "hold", "-admin"));
		for (j = 0; j < NQ; j++)
			unlink_q(self->cfd, self->q[i], self->q[j]);
	}
	for (i = 0; i < NQ; i++) {
		EXPECT_LE(0, settle(self->q[i], false)) TH_LOG("bpq%d", self->q[i]);
		expect_names(_metadata, self->q[i], "downstream", "");
		EXPECT_EQ(0, bpq_sysfs_u64(self->q[i], "pressure"));
	}
}

TEST_HARNESS_MAIN
