// SPDX-License-Identifier: GPL-2.0
/*
 * /dev/bpq-control: creating and destroying queues at run time.
 *
 * Every queue a test creates is destroyed in the teardown, whatever
 * happened in between.
 */
#define _GNU_SOURCE
#include <sys/epoll.h>
#include <sys/stat.h>

#include "bpq_test.h"
/* kselftest_harness.h of 6.1 has an unused parameter: keep -Wextra clean. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"
#include "kselftest_harness.h"
#pragma GCC diagnostic pop

#define MAX_CREATED 8

FIXTURE(ctl) {
	int cfd;
	int created[MAX_CREATED];	/* indexes still to destroy, -1: none */
	int nr_created;
};

FIXTURE_SETUP(ctl)
{
	int i;

	for (i = 0; i < MAX_CREATED; i++)
		self->created[i] = -1;
	self->cfd = bpq_control_open();
	ASSERT_LE(0, self->cfd) TH_LOG("%m - open " BPQ_CONTROL_PATH);
}

FIXTURE_TEARDOWN(ctl)
{
	int i;

	for (i = 0; i < MAX_CREATED; i++)
		if (self->created[i] >= 0) {
			EXPECT_EQ(0, bpq_destroy(self->cfd, self->created[i]));
		}
	close(self->cfd);
}

static void test_name(char *buf, size_t len, const char *tag)
{
	snprintf(buf, len, "ctl-%d-%s", getpid(), tag);
}

/* Create and remember a queue; returns its index or -errno. */
static int create(FIXTURE_DATA(ctl) *self, const char *tag)
{
	char name[BPQ_NAME_MAX];
	int idx;

	test_name(name, sizeof(name), tag);
	idx = bpq_create(self->cfd, name);
	if (idx >= 0 && self->nr_created < MAX_CREATED)
		self->created[self->nr_created++] = idx;
	return idx;
}

/* Destroy a queue made by create() and forget it. */
static int destroy(FIXTURE_DATA(ctl) *self, int idx)
{
	int i, ret = bpq_destroy(self->cfd, idx);

	for (i = 0; i < MAX_CREATED && !ret; i++)
		if (self->created[i] == idx)
			self->created[i] = -1;
	return ret;
}

static bool queue_exists(int idx)
{
	char path[64];

	snprintf(path, sizeof(path), BPQ_SYSFS_CLASS "/bpq%d", idx);
	return access(path, F_OK) == 0;
}

/* The lowest N with no /sys/class/bpq/bpqN. */
static int lowest_free(void)
{
	int i;

	for (i = 0; queue_exists(i); i++)
		;
	return i;
}

TEST_F(ctl, create_destroy)
{
	char name[BPQ_NAME_MAX], buf[64];
	struct bpq_create c = { .size = sizeof(c) };
	struct bpq_config cfg, def;
	struct bpq_msg_info info;
	struct stat stb;
	int idx, expect = lowest_free(), fd;

	test_name(name, sizeof(name), "a");
	strcpy(c.name, name);
	c.index = 0xdead;
	idx = bpq_ioctl(self->cfd, BPQ_IOC_CREATE, &c);
	ASSERT_EQ(expect, idx);
	self->created[self->nr_created++] = idx;
	ASSERT_EQ((__u32)idx, c.index);

	/* Visible in sysfs with its name, and as a node. */
	ASSERT_EQ(0, bpq_sysfs_read(idx, "name", buf, sizeof(buf)));
	ASSERT_STREQ(name, buf);
	ASSERT_TRUE(bpq_wait_node(idx, true, 2000));
	snprintf(buf, sizeof(buf), "/dev/bpq%d", idx);
	ASSERT_EQ(0, stat(buf, &stb));
	ASSERT_TRUE(S_ISCHR(stb.st_mode));

	/* A fresh queue: defaults, empty, sequence numbers from 1. */
	fd = bpq_open(idx, O_RDWR);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, bpq_get_config(fd, &cfg));
	bpq_default_config(&def);
	ASSERT_EQ(0, memcmp(&def, &cfg, sizeof(cfg)));
	ASSERT_EQ(0U, bpq_depth(fd));
	ASSERT_EQ(2, bpq_write(fd, "hi", 2));
	ASSERT_EQ(2, bpq_recv(fd, buf, sizeof(buf), 0, 0, &info));
	ASSERT_EQ(1U, info.seq);
	close(fd);

	ASSERT_EQ(0, destroy(self, idx));
	ASSERT_FALSE(queue_exists(idx));
	ASSERT_TRUE(bpq_wait_node(idx, false, 2000));
	ASSERT_EQ(-ENOENT, bpq_destroy(self->cfd, idx));
}

/* Numbers: the next free one, reused after destroy. */
TEST_F(ctl, next_free_number)
{
	int a, b, c, expect;

	expect = lowest_free();
	a = create(self, "a");
	ASSERT_EQ(expect, a);
	expect = lowest_free();
	b = create(self, "b");
	ASSERT_EQ(expect, b);
	ASSERT_EQ(0, destroy(self, a));
	c = create(self, "c");
	ASSERT_EQ(a, c);
}

TEST_F(ctl, duplicate_name)
{
	char name[BPQ_NAME_MAX];
	int n;

	ASSERT_LE(0, create(self, "dup"));
	test_name(name, sizeof(name), "dup");
	n = lowest_free();
	ASSERT_EQ(-EEXIST, bpq_create(self->cfd, name));
	ASSERT_EQ(n, lowest_free());
}

TEST_F(ctl, bad_names)
{
	static const char *const bad[] = {
		"", "a/b", "a b", "tab\there", "caf\xc3\xa9", "new\nline",
		"semi;colon", "7", "0042", "bpq3", "bpq12",
	};
	struct bpq_create c = { .size = sizeof(c) };
	unsigned int i;
	int n = lowest_free();

	for (i = 0; i < ARRAY_LEN(bad); i++) {
		ASSERT_EQ(-EINVAL, bpq_create(self->cfd, bad[i]))
			TH_LOG("name '%s' accepted", bad[i]);
	}
	/* All 32 bytes used: no terminating NUL. */
	memset(c.name, 'a', sizeof(c.name));
	ASSERT_EQ(-EINVAL, bpq_ioctl(self->cfd, BPQ_IOC_CREATE, &c));
	ASSERT_EQ(n, lowest_free());
}

TEST_F(ctl, longest_name)
{
	char name[BPQ_NAME_MAX], buf[64];
	int idx;

	memset(name, 'z', sizeof(name));
	snprintf(name, 12, "%d-", getpid());
	name[strlen(name)] = 'z';
	name[BPQ_NAME_MAX - 1] = '\0';
	ASSERT_EQ(31U, strlen(name));
	idx = bpq_create(self->cfd, name);
	ASSERT_LE(0, idx);
	self->created[self->nr_created++] = idx;
	ASSERT_EQ(0, bpq_sysfs_read(idx, "name", buf, sizeof(buf)));
	ASSERT_STREQ(name, buf);
}

TEST_F(ctl, destroy_unknown)
{
	ASSERT_EQ(-ENOENT, bpq_destroy(self->cfd, lowest_free()));
	ASSERT_EQ(-ENOENT, bpq_destroy(self->cfd, 100000));
	ASSERT_EQ(-ENOENT, bpq_destroy(self->cfd, -1));
}

/* Open files of a destroyed queue: ENODEV, and poll says ERR|HUP. */
TEST_F(ctl, open_file_after_destroy)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT };
	struct bpq_grant g = { .size = sizeof(g), .credits = 1 };
	struct bpq_config cfg;
	struct bpq_stats st;
	struct pollfd pfd;
	char buf[16];
	int idx, fd, ep;

	idx = create(self, "gone");
	ASSERT_LE(0, idx);
	ASSERT_TRUE(bpq_wait_node(idx, true, 2000));
	fd = bpq_open(idx, O_RDWR | O_NONBLOCK);
	ASSERT_LE(0, fd);
	ASSERT_EQ(3, bpq_write(fd, "abc", 3));
	ep = epoll_create1(EPOLL_CLOEXEC);
	ASSERT_LE(0, ep);
	ASSERT_EQ(0, epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev));

	ASSERT_EQ(0, bpq_get_config(fd, &cfg));
	ASSERT_EQ(0, destroy(self, idx));

	EXPECT_EQ(-ENODEV, bpq_read(fd, buf, sizeof(buf)));
	EXPECT_EQ(-ENODEV, bpq_write(fd, "x", 1));
	EXPECT_EQ(-ENODEV, bpq_get_config(fd, &cfg));
	EXPECT_EQ(-ENODEV, bpq_set_config(fd, &cfg));
	EXPECT_EQ(-ENODEV, bpq_get_stats(fd, &st));
	EXPECT_EQ(-ENODEV, bpq_reset_stats(fd));
	EXPECT_EQ(-ENODEV, bpq_flush(fd));
	EXPECT_EQ(-ENODEV, bpq_recv(fd, buf, sizeof(buf), 0, 0, NULL));
	EXPECT_EQ(-ENODEV, bpq_ioctl(fd, BPQ_IOC_GRANT, &g));

	pfd = (struct pollfd){ .fd = fd, .events = POLLIN | POLLOUT };
	ASSERT_EQ(1, poll(&pfd, 1, 1000));
	ASSERT_EQ(POLLERR | POLLHUP, pfd.revents & (POLLERR | POLLHUP));
	ASSERT_EQ(1, epoll_wait(ep, &ev, 1, 1000));
	ASSERT_EQ((__u32)(EPOLLERR | EPOLLHUP),
		  ev.events & (EPOLLERR | EPOLLHUP));

	/* The number is free again while the old file is still open. */
	ASSERT_FALSE(queue_exists(idx));
	close(ep);
	close(fd);
}

/* epoll torn down in either order against destroy. */
TEST_F(ctl, epoll_close_orders)
{
	struct epoll_event ev = { .events = EPOLLIN };
	int idx, fd, ep, order;

	for (order = 0; order < 3; order++) {
		idx = create(self, order == 0 ? "ep0" : order == 1 ? "ep1" : "ep2");
		ASSERT_LE(0, idx);
		ASSERT_TRUE(bpq_wait_node(idx, true, 2000));
		fd = bpq_open(idx, O_RDWR);
		ASSERT_LE(0, fd);
		ep = epoll_create1(EPOLL_CLOEXEC);
		ASSERT_LE(0, ep);
		ASSERT_EQ(0, epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev));
		switch (order) {
		case 0:		/* destroy, close fd, close epoll */
			ASSERT_EQ(0, destroy(self, idx));
			close(fd);
			close(ep);
			break;
		case 1:		/* close epoll, destroy, close fd */
			close(ep);
			ASSERT_EQ(0, destroy(self, idx));
			close(fd);
			break;
		case 2:		/* destroy, close epoll, close fd */
			ASSERT_EQ(0, destroy(self, idx));
			close(ep);
			close(fd);
			break;
		}
	}
}

/* The control device carries no messages. */
TEST_F(ctl, control_not_a_queue)
{
	char buf[8];

	/* read/write on the control device do not queue anything */
	ASSERT_GT(0, bpq_write(self->cfd, "x", 1));
	ASSERT_GT(0, bpq_read(self->cfd, buf, sizeof(buf)));
	ASSERT_EQ(-ENOTTY, bpq_flush(self->cfd));
}

TEST_HARNESS_MAIN
