// SPDX-License-Identifier: GPL-2.0
/*
 * Scale: many queues, deep queues.
 *
 * many_queues creates 100,000 named queues (fewer if the guest's memory
 * would not hold them, with the figure printed), checks the control
 * device's errors at that size (EEXIST for a taken name, ENOSPC exactly at
 * max_queues), and destroys them. It prints the cost of the first and the
 * last 1,000 creates and the memory one idle queue takes (the benchmark
 * holds the targets; nothing here is timed against a bound).
 *
 * idle_open_queues_keep_one_chunk: a drained queue that is still open
 * keeps one page of its message log, not all the pages its messages took.
 *
 * deep_flush and deep_destroy put 1,000,000 messages in one queue and
 * flush it, or destroy it with a file open: every message must go, and
 * its memory come back; the kernel log gate catches a soft lockup.
 *
 * BPQ_SCALE_QUEUES in the environment sets how many queues to try.
 */
#include <sys/uio.h>
#include <sys/wait.h>

#include "bpq_test.h"
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"
#include "kselftest_harness.h"
#pragma GCC diagnostic pop

#define SCALE_QUEUES	100000
#define SPAN		1000		/* creates timed at each end */
#define QUEUE_BUDGET	(16 << 10)	/* memory allowed per queue to try */
#define DEEP_MSGS	1000000
#define DEEP_LEN	8
#define BATCH		1024

/* A /proc/meminfo field in bytes, or -1 */
static long long meminfo(const char *field)
{
	char line[256];
	long long kb = -1;
	size_t len = strlen(field);
	FILE *f = fopen("/proc/meminfo", "re");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, field, len) && line[len] == ':') {
			kb = strtoll(line + len + 1, NULL, 10);
			break;
		}
	fclose(f);
	return kb < 0 ? -1 : kb * 1024;
}

/* Free pages waiting in the per-CPU lists, which MemFree leaves out */
static long long pcp_free(void)
{
	FILE *f = fopen("/proc/zoneinfo", "r");
	unsigned long n;
	long long sum = 0;
	char line[256];

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, " count: %lu", &n) == 1)
			sum += (long long)n * getpagesize();
	fclose(f);
	return sum;
}

/* Memory in use: what left the free lists, the slab included */
static long long mem_used(void)
{
	return meminfo("MemTotal") - meminfo("MemFree") - pcp_free();
}

static int max_queues_set(unsigned long n)
{
	char val[32];

	snprintf(val, sizeof(val), "%lu", n);
	return bpq_param_write("max_queues", val);
}

static unsigned long scale_count(void)
{
	const char *env = getenv("BPQ_SCALE_QUEUES");
	unsigned long want = env ? strtoul(env, NULL, 10) : SCALE_QUEUES;
	long long avail = meminfo("MemAvailable") - (256LL << 20);
	unsigned long fit = avail > 0 ? avail / QUEUE_BUDGET : 0;

	return want < fit ? want : fit;
}

FIXTURE(scale) {
};

FIXTURE_SETUP(scale)
{
}

FIXTURE_TEARDOWN(scale)
{
}

TEST_F_TIMEOUT(scale, many_queues, 1200)
{
	unsigned long n = scale_count(), i, made = 0;
	int64_t start, t0 = 0, first_ns = 0, last_ns = 0;
	long long before, after;
	char saved[32], name[BPQ_NAME_MAX], buf[64];
	int cfd, *idx, ret;

	ASSERT_LE(SPAN * 2UL, n) TH_LOG("memory for %lu queues only", n);
	ASSERT_LT(0, bpq_param_read("max_queues", saved, sizeof(saved)));
	/* bad values change nothing */
	EXPECT_EQ(-EINVAL, max_queues_set(0));
	EXPECT_EQ(-EINVAL, max_queues_set(1048577));
	ASSERT_LT(0, bpq_param_read("max_queues", buf, sizeof(buf)));
	EXPECT_STREQ(saved, buf);
	ASSERT_EQ(0, max_queues_set(1048576));
	cfd = bpq_control_open();
	ASSERT_LE(0, cfd);
	idx = calloc(n, sizeof(*idx));
	ASSERT_NE(NULL, idx);

	before = mem_used();
	start = now_ns();
	for (i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "scale-%lu", i);
		if (i == 0 || i == n - SPAN)
			t0 = now_ns();
		ret = bpq_create(cfd, name);
		if (ret < 0)
			break;
		idx[made++] = ret;
		if (!(made % 10000))
			printf("# %lu queues, %.1f s\n", made,
			       (now_ns() - start) / 1e9);
		if (i == SPAN - 1)
			first_ns = now_ns() - t0;
		else if (i == n - 1)
			last_ns = now_ns() - t0;
	}
	after = mem_used();
	EXPECT_EQ(n, made) TH_LOG("create %lu: %s", made, strerror(-ret));

	if (made == n) {
		printf("# figures: queues %lu, first %d creates %.1f us each, last %d %.1f us each (%.2fx), %lld bytes per idle queue\n",
		       n, SPAN, first_ns / 1e3 / SPAN, SPAN,
		       last_ns / 1e3 / SPAN, (double)last_ns / first_ns,
		       (after - before) / (long long)n);
		/* a taken name, found among all the others */
		EXPECT_EQ(-EEXIST, bpq_create(cfd, "scale-0"));
		snprintf(name, sizeof(name), "scale-%lu", n / 2);
		EXPECT_EQ(-EEXIST, bpq_create(cfd, name));
		ASSERT_EQ(0, bpq_sysfs_read(idx[n / 2], "name", buf,
					    sizeof(buf)));
		EXPECT_STREQ(name, buf);
		EXPECT_TRUE(bpq_wait_node(idx[n - 1], true, 10000));
		/* the numbers below the last one are all taken: the limit */
		ASSERT_EQ(0, max_queues_set(idx[n - 1] + 1));
		EXPECT_EQ(-ENOSPC, bpq_create(cfd, "scale-one-more"));
		ASSERT_EQ(0, max_queues_set(1048576));
		ret = bpq_create(cfd, "scale-one-more");
		EXPECT_EQ(idx[n - 1] + 1, ret);
		if (ret >= 0)
			EXPECT_EQ(0, bpq_destroy(cfd, ret));
	}

	t0 = now_ns();
	for (i = 0; i < made; i++)
		EXPECT_EQ(0, bpq_destroy(cfd, idx[i]));
	printf("# figures: destroyed %lu queues in %.1f ms\n", made,
	       (now_ns() - t0) / 1e6);
	/* names are free again */
	ret = bpq_create(cfd, "scale-0");
	EXPECT_LE(0, ret);
	if (ret >= 0)
		EXPECT_EQ(0, bpq_destroy(cfd, ret));
	free(idx);
	close(cfd);
	EXPECT_EQ(0, bpq_param_write("max_queues", saved));
}

/* Memory in use, the free pages waiting in the per-CPU lists counted free */
static long long mem_used_exact(void)
{
	char line[256];
	long long pcp = 0, n;
	FILE *f;

	bpq_write_file("/proc/sys/vm/stat_refresh", "1");
	f = fopen("/proc/zoneinfo", "re");
	if (f) {
		while (fgets(line, sizeof(line), f))
			if (sscanf(line, " count: %lld", &n) == 1)
				pcp += n * getpagesize();
		fclose(f);
	}
	return mem_used() - pcp;
}

#define IDLE_QUEUES	256
#define IDLE_MSGS	600		/* 64 B each: twelve pages of log */
#define LOG_PAGE	4096

/* Fill and drain each queue as root without CAP_SYS_RESOURCE */
static int idle_fill_child(const int *fd)
{
	char msg[64] = "idle";
	int i, j;

	if (drop_cap(CAP_SYS_RESOURCE))
		return 100;
	for (i = 0; i < IDLE_QUEUES; i++) {
		for (j = 0; j < IDLE_MSGS; j++)
			if (write(fd[i], msg, sizeof(msg)) != sizeof(msg)) {
				fprintf(stderr, "# queue %d message %d: %s\n",
					i, j, strerror(errno));
				return 1;
			}
		for (j = 0; j < IDLE_MSGS; j++)
			if (read(fd[i], msg, sizeof(msg)) != sizeof(msg))
				return 2;
	}
	return 0;
}

/*
 * A queue that held messages and drained keeps one page of its log for
 * the next ones while it is open, not the twelve its messages took. The
 * pages are charged to their writer's user: with user_max_bytes at two
 * pages a queue (and the twelve one queue takes while full), the last
 * queues could not be filled if the drained ones kept more. The memory
 * in use is printed, and held to a loose line: a debug kernel adds a few
 * pages a queue of its own. A debug kernel creates and destroys a queue
 * in some 30 ms.
 */
TEST_F_TIMEOUT(scale, idle_open_queues_keep_one_chunk, 600)
{
	static int idx[IDLE_QUEUES], fd[IDLE_QUEUES];
	char name[BPQ_NAME_MAX], saved[64], limit[64];
	long long before, after;
	int cfd, i, status;
	pid_t pid;

	ASSERT_LT(0, bpq_param_read("user_max_bytes", saved, sizeof(saved)));
	cfd = bpq_control_open();
	ASSERT_LE(0, cfd);
	for (i = 0; i < IDLE_QUEUES; i++) {
		snprintf(name, sizeof(name), "scale-idle-%d", i);
		idx[i] = bpq_create(cfd, name);
		ASSERT_LE(0, idx[i]);
	}
	for (i = 0; i < IDLE_QUEUES; i++) {
		ASSERT_TRUE(bpq_wait_node(idx[i], true, 10000));
		fd[i] = bpq_open(idx[i], O_RDWR | O_NONBLOCK);
		ASSERT_LE(0, fd[i]);
		ASSERT_EQ(0, bpq_configure(fd[i], BPQ_STRATEGY_BLOCK, 1024));
	}
	snprintf(limit, sizeof(limit), "%d", (IDLE_QUEUES * 2 + 16) * LOG_PAGE);
	ASSERT_EQ(0, bpq_param_write("user_max_bytes", limit));
	before = mem_used_exact();
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid)
		_exit(idle_fill_child(fd));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	after = mem_used_exact();
	EXPECT_EQ(0, bpq_param_write("user_max_bytes", saved));
	EXPECT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
	printf("# figures: %d drained open queues hold %lld bytes each\n",
	       IDLE_QUEUES, (after - before) / IDLE_QUEUES);
	EXPECT_LT(after - before, IDLE_QUEUES * LOG_PAGE * 8LL);
	for (i = 0; i < IDLE_QUEUES; i++) {
		close(fd[i]);
		EXPECT_EQ(0, bpq_destroy(cfd, idx[i]));
	}
	close(cfd);
}

FIXTURE(deep) {
	int cfd;
	int q;
	int fd;
	long long before;	/* memory in use before the messages */
};

FIXTURE_SETUP(deep)
{
	struct bpq_config cfg;

	self->cfd = bpq_control_open();
	ASSERT_LE(0, self->cfd);
	self->q = bpq_create(self->cfd, "scale-deep");
	ASSERT_LE(0, self->q);
	ASSERT_TRUE(bpq_wait_node(self->q, true, 10000));
	self->fd = bpq_open(self->q, O_RDWR | O_NONBLOCK);
	ASSERT_LE(0, self->fd);
	bpq_default_config(&cfg);
	cfg.capacity_msgs = 1 << 20;
	cfg.capacity_bytes = 1 << 30;
	ASSERT_EQ(0, bpq_set_config(self->fd, &cfg));
	self->before = mem_used();
}

FIXTURE_TEARDOWN(deep)
{
	if (self->fd >= 0)
		close(self->fd);
	if (self->q >= 0)
		bpq_destroy(self->cfd, self->q);
	close(self->cfd);
}

/* DEEP_MSGS messages of DEEP_LEN bytes, in batches */
static int fill(int fd)
{
	static char payload[BATCH][DEEP_LEN];
	struct bpq_iovec iov[BATCH];
	struct bpq_send_batch b = {
		.size = sizeof(b),
		.flags = BPQ_IO_NONBLOCK,
		.msgs = (uintptr_t)iov,
	};
	int i, sent = 0, ret;

	for (i = 0; i < BATCH; i++)
		iov[i] = (struct bpq_iovec){
			.base = (uintptr_t)payload[i], .len = DEEP_LEN };
	while (sent < DEEP_MSGS) {
		b.count = DEEP_MSGS - sent < BATCH ? DEEP_MSGS - sent : BATCH;
		ret = bpq_ioctl(fd, BPQ_IOC_SEND_BATCH, &b);
		if (ret <= 0)
			return ret ? ret : -EIO;
		sent += ret;
	}
	return sent;
}

/* The memory the messages took has come back (within 16 MiB: others') */
static bool mem_back(long long before)
{
	int tries;

	for (tries = 0; tries < 50; tries++) {
		if (mem_used() < before + (16LL << 20))
			return true;
		sleep_ms(100);
	}
	return false;
}

TEST_F(deep, flush)
{
	struct bpq_stats st;
	char buf[DEEP_LEN];

	ASSERT_EQ(DEEP_MSGS, fill(self->fd));
	EXPECT_EQ((__u64)DEEP_MSGS, bpq_depth(self->fd));
	printf("# figures: %d messages of %d bytes took %lld bytes\n",
	       DEEP_MSGS, DEEP_LEN, mem_used() - self->before);
	EXPECT_EQ(DEEP_MSGS, bpq_flush(self->fd));
	EXPECT_EQ(0ULL, bpq_depth(self->fd));
	ASSERT_EQ(0, bpq_get_stats(self->fd, &st));
	EXPECT_EQ((__u64)DEEP_MSGS, st.flushed);
	EXPECT_TRUE(bpq_stats_balanced(&st));
	EXPECT_EQ(-1, read(self->fd, buf, sizeof(buf)));
	EXPECT_EQ(EAGAIN, errno);
	EXPECT_TRUE(mem_back(self->before));
	/* and the queue works on */
	EXPECT_EQ(DEEP_LEN, write(self->fd, "deep-msg", DEEP_LEN));
	EXPECT_EQ(DEEP_LEN, read(self->fd, buf, sizeof(buf)));
}

TEST_F(deep, destroy_open)
{
	ASSERT_EQ(DEEP_MSGS, fill(self->fd));
	ASSERT_EQ(0, bpq_destroy(self->cfd, self->q));
	self->q = -1;
	EXPECT_EQ(-1, write(self->fd, "x", 1));
	EXPECT_EQ(ENODEV, errno);
	/* the last reference frees the messages */
	close(self->fd);
	self->fd = -1;
	EXPECT_TRUE(mem_back(self->before));
}

TEST_HARNESS_MAIN
