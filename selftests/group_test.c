// SPDX-License-Identifier: GPL-2.0
/*
 * Groups: capacity and watermarks over the summed depth of their members.
 *
 *  - three queues in a group are all held (hold "group") once their
 *    summed depth reaches its high watermark, a writer of each waits, and
 *    all are let go once it falls below the low one;
 *  - nested: a group within a group is held by the outer one's pressure;
 *  - /sys/class/bpq_group/NAME/ (depth, utilization, pressure, members,
 *    groups, parent, settings that can be changed) and the queue's group;
 *  - leaving, moving, and destroying a member; destroying a group with
 *    members or groups within (EBUSY); bad arguments (EINVAL), names
 *    (EEXIST, ENOENT), nesting too deep (EMLINK), CAP_SYS_ADMIN (EPERM);
 *  - membership changed under traffic: the depth adds up to 0 after.
 *
 * Each test makes its own queues and groups and destroys them.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sys/wait.h>

#include "bpq_test.h"
/* kselftest_harness.h of 6.1 has an unused parameter: keep -Wextra clean. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"
#include "kselftest_harness.h"
#pragma GCC diagnostic pop
/* the harness compares its operands as given: 0 against a __u64 is fine */
#pragma GCC diagnostic ignored "-Wsign-compare"

#define SETTLE_MS	5000
#define NQ		3

static int group_create(int cfd, const char *name, const char *parent,
			__u32 cap, __u32 high, __u32 low)
{
	struct bpq_group_create g = {
		.size = sizeof(g),
		.capacity_msgs = cap,
		.high_watermark = high,
		.low_watermark = low,
	};

	snprintf(g.name, sizeof(g.name), "%s", name);
	snprintf(g.parent, sizeof(g.parent), "%s", parent);
	return bpq_ioctl(cfd, BPQ_IOC_GROUP_CREATE, &g);
}

static int group_destroy(int cfd, const char *name)
{
	struct bpq_group_create g = { .size = sizeof(g) };

	snprintf(g.name, sizeof(g.name), "%s", name);
	return bpq_ioctl(cfd, BPQ_IOC_GROUP_DESTROY, &g);
}

static int group_join(int cfd, int q, const char *name)
{
	struct bpq_group_join j = { .size = sizeof(j), .queue = q };

	snprintf(j.group, sizeof(j.group), "%s", name);
	return bpq_ioctl(cfd, BPQ_IOC_GROUP_JOIN, &j);
}

static int group_read(const char *group, const char *attr, char *buf,
		      size_t len)
{
	char path[128];

	snprintf(path, sizeof(path), "/sys/class/bpq_group/%s/%s", group,
		 attr);
	return bpq_read_value(path, buf, len) < 0 ? -1 : 0;
}

static long group_u64(const char *group, const char *attr)
{
	char buf[64];

	return group_read(group, attr, buf, sizeof(buf)) ? -1 : atol(buf);
}

static bool has_group_hold(int q)
{
	char buf[128];

	return !bpq_sysfs_read(q, "hold", buf, sizeof(buf)) &&
	       strstr(buf, "group");
}

/* Wait until @q's group hold is @want: ms taken, or -1 */
static long settle(int q, bool want)
{
	int64_t t0 = now_ns();

	while (has_group_hold(q) != want) {
		if (now_ns() - t0 > (int64_t)SETTLE_MS * 1000000)
			return -1;
		usleep(200);
	}
	return (now_ns() - t0) / 1000000;
}

FIXTURE(group) {
	int cfd;
	int q[NQ];
	int fd[NQ];
	char g[16];		/* "grp-PID": groups are named from it */
};

FIXTURE_SETUP(group)
{
	char name[BPQ_NAME_MAX];
	int i;

	self->cfd = bpq_control_open();
	ASSERT_LE(0, self->cfd);
	snprintf(self->g, sizeof(self->g), "grp-%d", getpid());
	for (i = 0; i < NQ; i++) {
		snprintf(name, sizeof(name), "%s-q%d", self->g, i);
		self->q[i] = bpq_create(self->cfd, name);
		ASSERT_LE(0, self->q[i]);
		ASSERT_TRUE(bpq_wait_node(self->q[i], true, 5000));
		self->fd[i] = bpq_open(self->q[i], O_RDWR | O_NONBLOCK);
		ASSERT_LE(0, self->fd[i]);
		ASSERT_EQ(0, bpq_configure(self->fd[i], BPQ_STRATEGY_BLOCK,
					   100));
	}
}

FIXTURE_TEARDOWN(group)
{
	char name[BPQ_NAME_MAX];
	int i;

	for (i = 0; i < NQ; i++) {
		close(self->fd[i]);
		EXPECT_EQ(0, bpq_destroy(self->cfd, self->q[i]));
	}
	/* whatever a test left, innermost first */
	snprintf(name, sizeof(name), "%s-in", self->g);
	group_destroy(self->cfd, name);
	group_destroy(self->cfd, self->g);
	close(self->cfd);
}

static int fill(int fd, int n)
{
	while (n--)
		if (bpq_write(fd, "m", 1) != 1)
			return -1;
	return 0;
}

static int drain(int fd, int n)
{
	char buf[8];

	while (n--)
		if (bpq_read(fd, buf, sizeof(buf)) != 1)
			return -1;
	return 0;
}

TEST_F(group, three_queues_held_at_the_watermark)
{
	char buf[256], want[256];
	long ms;
	int i;

	/* 30 messages, held from 15 until below 6 */
	ASSERT_EQ(0, group_create(self->cfd, self->g, "", 30, 50, 20));
	for (i = 0; i < NQ; i++)
		ASSERT_EQ(0, group_join(self->cfd, self->q[i], self->g));
	ASSERT_EQ(0, bpq_sysfs_read(self->q[0], "group", buf, sizeof(buf)));
	EXPECT_STREQ(self->g, buf);
	ASSERT_EQ(0, group_read(self->g, "members", buf, sizeof(buf)));
	snprintf(want, sizeof(want), "%s-q0 %s-q1 %s-q2", self->g, self->g,
		 self->g);
	EXPECT_STREQ(want, buf);

	for (i = 0; i < NQ; i++)
		ASSERT_EQ(0, fill(self->fd[i], 4));
	EXPECT_EQ(12, group_u64(self->g, "depth_msgs"));
	EXPECT_EQ(40, group_u64(self->g, "utilization"));
	EXPECT_EQ(0, group_u64(self->g, "pressure"));
	for (i = 0; i < NQ; i++)
		EXPECT_FALSE(has_group_hold(self->q[i]));

	/* 15: every member held, however little it holds itself */
	ASSERT_EQ(0, fill(self->fd[2], 3));
	EXPECT_EQ(1, group_u64(self->g, "pressure"));
	for (i = 0; i < NQ; i++) {
		ms = settle(self->q[i], true);
		EXPECT_LE(0, ms);
		TH_LOG("bpq%d held in %ld ms", self->q[i], ms);
		ASSERT_EQ(0, bpq_sysfs_read(self->q[i], "pressure_source", buf,
					    sizeof(buf)));
		EXPECT_STREQ("group", buf);
		EXPECT_EQ(-EAGAIN, bpq_write(self->fd[i], "m", 1));
	}

	/* down to 6: still held; to 5: let go */
	ASSERT_EQ(0, drain(self->fd[2], 7));
	ASSERT_EQ(0, drain(self->fd[1], 2));
	EXPECT_EQ(6, group_u64(self->g, "depth_msgs"));
	EXPECT_EQ(1, group_u64(self->g, "pressure"));
	ASSERT_EQ(0, drain(self->fd[0], 1));
	EXPECT_EQ(0, group_u64(self->g, "pressure"));
	for (i = 0; i < NQ; i++) {
		EXPECT_LE(0, settle(self->q[i], false));
		EXPECT_EQ(1, bpq_write(self->fd[i], "m", 1));
	}
	for (i = 0; i < NQ; i++)
		ASSERT_EQ(0, group_join(self->cfd, self->q[i], ""));
	EXPECT_EQ(0, group_u64(self->g, "depth_msgs"));
	EXPECT_EQ(0, group_destroy(self->cfd, self->g));
}

/* A blocked writer of a member is let in when the group falls */
TEST_F(group, a_waiting_writer_goes_on)
{
	struct io_thread w;
	int wfd;

	ASSERT_EQ(0, group_create(self->cfd, self->g, "", 10, 100, 50));
	ASSERT_EQ(0, group_join(self->cfd, self->q[0], self->g));
	ASSERT_EQ(0, group_join(self->cfd, self->q[1], self->g));
	ASSERT_EQ(0, fill(self->fd[1], 10));
	ASSERT_LE(0, settle(self->q[0], true));
	wfd = bpq_open(self->q[0], O_WRONLY);
	ASSERT_LE(0, wfd);
	ASSERT_EQ(0, io_thread_start(&w, wfd, IO_WRITE, "w", 1));
	ASSERT_TRUE(io_thread_blocked(&w, 5000));
	ASSERT_EQ(0, drain(self->fd[1], 6));
	EXPECT_TRUE(io_thread_wait(&w, 5000));
	close(wfd);
	ASSERT_EQ(0, group_join(self->cfd, self->q[0], ""));
	ASSERT_EQ(0, group_join(self->cfd, self->q[1], ""));
}

TEST_F(group, nested)
{
	char in[BPQ_NAME_MAX], buf[128];

	snprintf(in, sizeof(in), "%s-in", self->g);
	ASSERT_EQ(0, group_create(self->cfd, self->g, "", 10, 100, 50));
	ASSERT_EQ(0, group_create(self->cfd, in, self->g, 1000, 100, 100));
	ASSERT_EQ(0, group_read(in, "parent", buf, sizeof(buf)));
	EXPECT_STREQ(self->g, buf);
	ASSERT_EQ(0, group_read(self->g, "groups", buf, sizeof(buf)));
	EXPECT_STREQ(in, buf);
	/* q0 in the inner group, q1 in the outer */
	ASSERT_EQ(0, group_join(self->cfd, self->q[0], in));
	ASSERT_EQ(0, group_join(self->cfd, self->q[1], self->g));
	ASSERT_EQ(0, fill(self->fd[0], 6));
	ASSERT_EQ(0, fill(self->fd[1], 4));
	EXPECT_EQ(6, group_u64(in, "depth_msgs"));
	EXPECT_EQ(10, group_u64(self->g, "depth_msgs"));
	EXPECT_EQ(0, group_u64(in, "pressure"));
	EXPECT_LE(0, settle(self->q[0], true));
	EXPECT_LE(0, settle(self->q[1], true));
	EXPECT_FALSE(has_group_hold(self->q[2]));

	EXPECT_EQ(-EBUSY, group_destroy(self->cfd, self->g));
	EXPECT_EQ(-EBUSY, group_destroy(self->cfd, in));
	/* q0 leaves: 4 left, below 5, both let go */
	ASSERT_EQ(0, group_join(self->cfd, self->q[0], ""));
	EXPECT_EQ(0, group_u64(in, "depth_msgs"));
	EXPECT_EQ(4, group_u64(self->g, "depth_msgs"));
	EXPECT_LE(0, settle(self->q[0], false));
	EXPECT_LE(0, settle(self->q[1], false));
	EXPECT_EQ(0, group_destroy(self->cfd, in));
	ASSERT_EQ(0, group_join(self->cfd, self->q[1], ""));
	EXPECT_EQ(0, group_destroy(self->cfd, self->g));
}

/* Moving to another group, or the queue destroyed: the depth goes too */
TEST_F(group, move_and_destroy_a_member)
{
	char in[BPQ_NAME_MAX], name[BPQ_NAME_MAX], buf[128];
	int q, fd;

	snprintf(in, sizeof(in), "%s-in", self->g);
	ASSERT_EQ(0, group_create(self->cfd, self->g, "", 100, 100, 100));
	ASSERT_EQ(0, group_create(self->cfd, in, "", 100, 100, 100));
	ASSERT_EQ(0, group_join(self->cfd, self->q[0], self->g));
	ASSERT_EQ(0, fill(self->fd[0], 7));
	EXPECT_EQ(7, group_u64(self->g, "depth_msgs"));
	ASSERT_EQ(0, group_join(self->cfd, self->q[0], self->g));	/* again */
	ASSERT_EQ(0, group_join(self->cfd, self->q[0], in));
	EXPECT_EQ(0, group_u64(self->g, "depth_msgs"));
	EXPECT_EQ(7, group_u64(in, "depth_msgs"));
	ASSERT_EQ(0, bpq_sysfs_read(self->q[0], "group", buf, sizeof(buf)));
	EXPECT_STREQ(in, buf);
	ASSERT_EQ(0, group_join(self->cfd, self->q[0], ""));
	ASSERT_EQ(0, bpq_sysfs_read(self->q[0], "group", buf, sizeof(buf)));
	EXPECT_STREQ("", buf);

	snprintf(name, sizeof(name), "%s-x", self->g);
	q = bpq_create(self->cfd, name);
	ASSERT_LE(0, q);
	ASSERT_TRUE(bpq_wait_node(q, true, 5000));
	fd = bpq_open(q, O_RDWR | O_NONBLOCK);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, group_join(self->cfd, q, in));
	ASSERT_EQ(0, fill(fd, 5));
	EXPECT_EQ(5, group_u64(in, "depth_msgs"));
	EXPECT_EQ(-EBUSY, group_destroy(self->cfd, in));
	close(fd);
	ASSERT_EQ(0, bpq_destroy(self->cfd, q));
	EXPECT_EQ(0, group_u64(in, "depth_msgs"));
	ASSERT_EQ(0, group_read(in, "members", buf, sizeof(buf)));
	EXPECT_STREQ("", buf);
	EXPECT_EQ(0, group_destroy(self->cfd, in));
	EXPECT_EQ(0, group_destroy(self->cfd, self->g));
}

TEST_F(group, settings_in_sysfs)
{
	char path[128];

	ASSERT_EQ(0, group_create(self->cfd, self->g, "", 100, 90, 80));
	ASSERT_EQ(0, group_join(self->cfd, self->q[0], self->g));
	ASSERT_EQ(0, fill(self->fd[0], 10));
	EXPECT_FALSE(has_group_hold(self->q[0]));
	snprintf(path, sizeof(path), "/sys/class/bpq_group/%s/capacity_msgs",
		 self->g);
	/* 10 of 11 is above 90 %: held; back to 100: let go */
	ASSERT_EQ(0, bpq_write_file(path, "11"));
	EXPECT_EQ(90, group_u64(self->g, "utilization"));
	EXPECT_LE(0, settle(self->q[0], true));
	ASSERT_EQ(0, bpq_write_file(path, "100"));
	EXPECT_LE(0, settle(self->q[0], false));
	EXPECT_EQ(-EINVAL, bpq_write_file(path, "0"));
	snprintf(path, sizeof(path), "/sys/class/bpq_group/%s/low_watermark",
		 self->g);
	EXPECT_EQ(-EINVAL, bpq_write_file(path, "91"));
	EXPECT_EQ(-EINVAL, bpq_write_file(path, "x"));
	EXPECT_EQ(80, group_u64(self->g, "low_watermark"));
	EXPECT_EQ(100, group_u64(self->g, "capacity_msgs"));
	ASSERT_EQ(0, group_join(self->cfd, self->q[0], ""));
}

TEST_F(group, bad_arguments)
{
	struct bpq_group_create g = { .size = sizeof(g) };
	struct bpq_group_join j = { .size = sizeof(j) };
	char name[BPQ_NAME_MAX];
	int i;

	EXPECT_EQ(-EINVAL, group_create(self->cfd, self->g, "", 0, 50, 50));
	EXPECT_EQ(-EINVAL, group_create(self->cfd, self->g, "", 10, 50, 60));
	EXPECT_EQ(-EINVAL, group_create(self->cfd, self->g, "", 10, 101, 60));
	EXPECT_EQ(-EINVAL, group_create(self->cfd, self->g, "", 10, 50, 0));
	EXPECT_EQ(-EINVAL, group_create(self->cfd, "", "", 10, 50, 50));
	EXPECT_EQ(-EINVAL, group_create(self->cfd, "a/b", "", 10, 50, 50));
	EXPECT_EQ(-EINVAL, group_create(self->cfd, "..", "", 10, 50, 50));
	EXPECT_EQ(-EINVAL, group_create(self->cfd, self->g, "a b", 10, 50,
					50));
	snprintf(g.name, sizeof(g.name), "%s", self->g);
	g.capacity_msgs = g.high_watermark = g.low_watermark = 1;
	g.flags = 1;
	EXPECT_EQ(-EINVAL, bpq_ioctl(self->cfd, BPQ_IOC_GROUP_CREATE, &g));
	g.flags = 0;
	g.__reserved = 1;
	EXPECT_EQ(-EINVAL, bpq_ioctl(self->cfd, BPQ_IOC_GROUP_CREATE, &g));
	EXPECT_EQ(-ENOENT, group_create(self->cfd, self->g, "no-such-group",
					10, 50, 50));
	EXPECT_EQ(-ENOENT, group_destroy(self->cfd, self->g));
	EXPECT_EQ(-ENOENT, group_join(self->cfd, self->q[0], self->g));

	ASSERT_EQ(0, group_create(self->cfd, self->g, "", 10, 50, 50));
	EXPECT_EQ(-EEXIST, group_create(self->cfd, self->g, "", 10, 50, 50));
	EXPECT_EQ(-ENOENT, group_join(self->cfd, 1 << 20, self->g));
	j.queue = self->q[0];
	snprintf(j.group, sizeof(j.group), "%s", self->g);
	j.flags = 1;
	EXPECT_EQ(-EINVAL, bpq_ioctl(self->cfd, BPQ_IOC_GROUP_JOIN, &j));
	g.capacity_msgs = 1;
	EXPECT_EQ(-EINVAL, bpq_ioctl(self->cfd, BPQ_IOC_GROUP_DESTROY, &g));

	/* 8 levels; a ninth is refused */
	for (i = 1; i < 8; i++) {
		char parent[BPQ_NAME_MAX];

		snprintf(parent, sizeof(parent), i == 1 ? "%s" : "%s-l%d",
			 self->g, i - 1);
		snprintf(name, sizeof(name), "%s-l%d", self->g, i);
		ASSERT_EQ(0, group_create(self->cfd, name, parent, 10, 50, 50));
	}
	EXPECT_EQ(-EMLINK, group_create(self->cfd, "grp-too-deep", name, 10,
					50, 50));
	for (i = 7; i >= 1; i--) {
		snprintf(name, sizeof(name), "%s-l%d", self->g, i);
		EXPECT_EQ(0, group_destroy(self->cfd, name));
	}
	EXPECT_EQ(0, group_destroy(self->cfd, self->g));
}

TEST_F(group, needs_cap_sys_admin)
{
	pid_t pid;
	int status;

	ASSERT_EQ(0, group_create(self->cfd, self->g, "", 10, 50, 50));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		if (drop_cap(CAP_SYS_ADMIN))
			_exit(2);
		if (group_create(self->cfd, "grp-nocap", "", 10, 50, 50) !=
		    -EPERM ||
		    group_join(self->cfd, self->q[0], self->g) != -EPERM ||
		    group_destroy(self->cfd, self->g) != -EPERM)
			_exit(1);
		_exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_EQ(0, WEXITSTATUS(status));
	EXPECT_EQ(0, group_destroy(self->cfd, self->g));
}

struct churn {
	int fd;
	volatile bool stop;
	long moved;
};

static void *traffic(void *arg)
{
	struct churn *c = arg;
	char buf[8];

	while (!c->stop) {
		bpq_write(c->fd, "m", 1);
		bpq_write(c->fd, "m", 1);
		bpq_read(c->fd, buf, sizeof(buf));
	}
	return NULL;
}

/* Members join, leave and move while messages come and go: it adds up */
TEST_F_TIMEOUT(group, membership_under_traffic, 120)
{
	char in[BPQ_NAME_MAX];
	struct churn c[NQ];
	pthread_t t[NQ];
	int64_t end;
	long moves = 0;
	int i;

	snprintf(in, sizeof(in), "%s-in", self->g);
	ASSERT_EQ(0, group_create(self->cfd, self->g, "", 60, 50, 25));
	ASSERT_EQ(0, group_create(self->cfd, in, self->g, 20, 80, 40));
	for (i = 0; i < NQ; i++) {
		c[i].fd = self->fd[i];
		c[i].stop = false;
		ASSERT_EQ(0, pthread_create(&t[i], NULL, traffic, &c[i]));
	}
	end = now_ns() + 3000000000LL;
	while (now_ns() < end) {
		i = moves % NQ;
		ASSERT_EQ(0, group_join(self->cfd, self->q[i],
					moves % 3 == 0 ? self->g :
					moves % 3 == 1 ? in : ""));
		moves++;
	}
	for (i = 0; i < NQ; i++) {
		c[i].stop = true;
		pthread_join(t[i], NULL);
	}
	TH_LOG("%ld joins and leaves under traffic", moves);
	/* all in the inner group, then drained: 0 everywhere, none held */
	for (i = 0; i < NQ; i++)
		ASSERT_EQ(0, group_join(self->cfd, self->q[i], in));
	for (i = 0; i < NQ; i++) {
		char buf[8];

		while (bpq_read(self->fd[i], buf, sizeof(buf)) == 1)
			;
	}
	EXPECT_EQ(0, group_u64(in, "depth_msgs"));
	EXPECT_EQ(0, group_u64(self->g, "depth_msgs"));
	for (i = 0; i < NQ; i++) {
		EXPECT_LE(0, settle(self->q[i], false));
		ASSERT_EQ(0, group_join(self->cfd, self->q[i], ""));
	}
	EXPECT_EQ(0, group_destroy(self->cfd, in));
	EXPECT_EQ(0, group_destroy(self->cfd, self->g));
}

TEST_HARNESS_MAIN
