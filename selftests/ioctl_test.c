// SPDX-License-Identifier: GPL-2.0
/*
 * The ioctl ABI and other bad input: every command gets the same treatment
 * (sizes, bad pointers, flags, reserved fields, a struct against a guard
 * page, output bytes), then the config limits, sysfs settings and the
 * read/write paths.
 *
 * Uses /dev/bpq1, and a queue of its own for GRANT (credits cannot be taken
 * back); puts everything back as it found it.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <limits.h>
#include <stddef.h>
#include <sys/mman.h>
#include <sys/uio.h>

#include "bpq_test.h"
/* kselftest_harness.h of 6.1 has an unused parameter: keep -Wextra clean. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"
#include "kselftest_harness.h"
#pragma GCC diagnostic pop

#define QIDX 1

#ifndef IOV_MAX
#define IOV_MAX 1024
#endif

/* An address in the kernel half, never valid for userspace. */
#if defined(__x86_64__)
#define KERNEL_ADDR ((void *)0xffffffff81000000UL)
#else
#define KERNEL_ADDR ((void *)0xc0000000UL)
#endif

/* Big enough for the largest struct plus a tail. */
#define ARG_ROOM 1024

struct ioc_ctx {
	int qfd;		/* queue the command goes to (or control) */
	int qidx;
	int cfd;		/* control device */
	int own_idx;		/* queue created for this test, or -1 */
	__u64 credits;		/* GRANT: balance before */
	__u64 depth;		/* FLUSH: depth before */
	unsigned char buf[64];
	struct bpq_iovec iov;
	struct bpq_msg_info infos[2];
};

struct ioc_case {
	unsigned long cmd;
	unsigned int size;
	unsigned int min_size;	/* the first published size; 0: size */
	bool control;		/* issued on /dev/bpq-control */
	bool own_queue;		/* needs a queue of its own */
	__u32 known_flags;
	unsigned int reserved[2];	/* offsets of __u32 reserved fields */
	unsigned int out_off, out_len;	/* output-only bytes */
	/* Fill a valid argument (and set the queue up for it). */
	void (*prep)(struct __test_metadata *_metadata, struct ioc_ctx *c,
		     void *arg);
	/* Check the result of the valid call and undo its effect. */
	void (*done)(struct __test_metadata *_metadata, struct ioc_ctx *c,
		     void *arg, int ret);
};

/* ---- what a command changes: snapshot and compare ---- */

struct state {
	struct bpq_config cfg;
	__u64 depth, enq, deq, flushed, credits;
	__u64 unacked, acked;
	int nqueues;
};

static int count_queues(void)
{
	struct dirent *d;
	DIR *dir = opendir(BPQ_SYSFS_CLASS);
	int n = 0;

	if (!dir)
		return -1;
	while ((d = readdir(dir)))
		n += d->d_name[0] != '.';
	closedir(dir);
	return n;
}

static void snapshot(struct ioc_ctx *c, int qfd, struct state *s)
{
	struct bpq_stats st;

	memset(s, 0, sizeof(*s));
	s->nqueues = count_queues();
	if (qfd < 0 || bpq_get_config(qfd, &s->cfg) || bpq_get_stats(qfd, &st))
		return;
	s->depth = st.depth_msgs;
	s->enq = st.enqueued_msgs;
	s->deq = st.dequeued_msgs;
	s->flushed = st.flushed;
	s->credits = st.credits_available;
	s->unacked = st.unacked;
	s->acked = st.acked_msgs;
	(void)c;
}

/* The queue whose state a command may change. */
static int state_fd(struct ioc_ctx *c, const struct ioc_case *k)
{
	return k->control ? -1 : c->qfd;
}

#define ASSERT_SAME_STATE(before, after) do {				\
	ASSERT_EQ(0, memcmp(&(before).cfg, &(after).cfg,		\
			    sizeof((before).cfg)));			\
	ASSERT_EQ((before).depth, (after).depth);			\
	ASSERT_EQ((before).enq, (after).enq);				\
	ASSERT_EQ((before).deq, (after).deq);				\
	ASSERT_EQ((before).flushed, (after).flushed);			\
	ASSERT_EQ((before).credits, (after).credits);			\
	ASSERT_EQ((before).unacked, (after).unacked);			\
	ASSERT_EQ((before).acked, (after).acked);			\
	ASSERT_EQ((before).nqueues, (after).nqueues);			\
} while (0)

/* ---- the commands ---- */

static void prep_none(struct __test_metadata *_metadata, struct ioc_ctx *c,
		      void *arg)
{
	(void)_metadata; (void)c; (void)arg;
}

static void done_get_config(struct __test_metadata *_metadata,
			    struct ioc_ctx *c, void *arg, int ret)
{
	struct bpq_config def;

	(void)c;
	ASSERT_EQ(0, ret);
	bpq_default_config(&def);
	ASSERT_EQ(0, memcmp((char *)&def + 8, (char *)arg + 8, sizeof(def) - 8));
}

static void prep_set_config(struct __test_metadata *_metadata,
			    struct ioc_ctx *c, void *arg)
{
	(void)_metadata; (void)c;
	bpq_default_config(arg);
	((struct bpq_config *)arg)->capacity_msgs = 77;
}

static void done_set_config(struct __test_metadata *_metadata,
			    struct ioc_ctx *c, void *arg, int ret)
{
	struct bpq_config cfg;

	(void)arg;
	ASSERT_EQ(0, ret);
	ASSERT_EQ(0, bpq_get_config(c->qfd, &cfg));
	ASSERT_EQ(77U, cfg.capacity_msgs);
	bpq_default_config(&cfg);
	ASSERT_EQ(0, bpq_set_config(c->qfd, &cfg));
}

static void done_get_stats(struct __test_metadata *_metadata,
			   struct ioc_ctx *c, void *arg, int ret)
{
	struct bpq_stats *st = arg;

	(void)c;
	ASSERT_EQ(0, ret);
	ASSERT_EQ(0U, st->depth_msgs);
	ASSERT_TRUE(bpq_stats_balanced(st));
}

/* Make the counters non-zero so a reset shows. */
static void prep_reset_stats(struct __test_metadata *_metadata,
			     struct ioc_ctx *c, void *arg)
{
	(void)arg;
	ASSERT_EQ(1, bpq_write(c->qfd, "x", 1));
	ASSERT_EQ(1, bpq_read(c->qfd, c->buf, sizeof(c->buf)));
}

static void done_reset_stats(struct __test_metadata *_metadata,
			     struct ioc_ctx *c, void *arg, int ret)
{
	struct bpq_stats st;

	(void)arg;
	ASSERT_EQ(0, ret);
	ASSERT_EQ(0, bpq_get_stats(c->qfd, &st));
	ASSERT_EQ(0U, st.enqueued_msgs);
	ASSERT_EQ(0U, st.dequeued_msgs);
}

static void prep_grant(struct __test_metadata *_metadata, struct ioc_ctx *c,
		       void *arg)
{
	struct bpq_stats st;

	ASSERT_EQ(0, bpq_get_stats(c->qfd, &st));
	c->credits = st.credits_available;
	((struct bpq_grant *)arg)->credits = 5;
}

static void done_grant(struct __test_metadata *_metadata, struct ioc_ctx *c,
		       void *arg, int ret)
{
	struct bpq_stats st;

	(void)arg;
	ASSERT_EQ(0, ret);
	ASSERT_EQ(0, bpq_get_stats(c->qfd, &st));
	ASSERT_EQ(c->credits + 5, st.credits_available);
}

static void prep_flush(struct __test_metadata *_metadata, struct ioc_ctx *c,
		       void *arg)
{
	(void)arg;
	ASSERT_EQ(2, bpq_write(c->qfd, "ab", 2));
	c->depth = bpq_depth(c->qfd);
}

static void done_flush(struct __test_metadata *_metadata, struct ioc_ctx *c,
		       void *arg, int ret)
{
	(void)arg;
	ASSERT_EQ((int)c->depth, ret);
	ASSERT_EQ(0U, bpq_depth(c->qfd));
}

static void prep_recv(struct __test_metadata *_metadata, struct ioc_ctx *c,
		      void *arg)
{
	struct bpq_recv *r = arg;

	ASSERT_EQ(0U, bpq_depth(c->qfd));
	ASSERT_EQ(5, bpq_write(c->qfd, "hello", 5));
	r->buf = (uintptr_t)c->buf;
	r->buf_len = sizeof(c->buf);
}

static void done_recv(struct __test_metadata *_metadata, struct ioc_ctx *c,
		      void *arg, int ret)
{
	struct bpq_recv *r = arg;

	ASSERT_EQ(5, ret);
	ASSERT_EQ(5U, r->info.len);
	ASSERT_EQ(0U, r->info.offset);
	ASSERT_EQ(0, memcmp(c->buf, "hello", 5));
	ASSERT_EQ(0U, bpq_depth(c->qfd));
}

static void prep_send_batch(struct __test_metadata *_metadata,
			    struct ioc_ctx *c, void *arg)
{
	struct bpq_send_batch *b = arg;

	(void)_metadata;
	memset(&c->iov, 0, sizeof(c->iov));
	c->iov.base = (uintptr_t)"abc";
	c->iov.len = 3;
	b->msgs = (uintptr_t)&c->iov;
	b->count = 1;
}

static void done_send_batch(struct __test_metadata *_metadata,
			    struct ioc_ctx *c, void *arg, int ret)
{
	(void)arg;
	ASSERT_EQ(1, ret);
	ASSERT_EQ(3, bpq_read(c->qfd, c->buf, sizeof(c->buf)));
	ASSERT_EQ(0, memcmp(c->buf, "abc", 3));
	ASSERT_EQ(0U, bpq_depth(c->qfd));
}

static void prep_recv_batch(struct __test_metadata *_metadata,
			    struct ioc_ctx *c, void *arg)
{
	struct bpq_recv_batch *b = arg;

	ASSERT_EQ(0U, bpq_depth(c->qfd));
	ASSERT_EQ(4, bpq_write(c->qfd, "wxyz", 4));
	b->buf = (uintptr_t)c->buf;
	b->buf_len = sizeof(c->buf);
	b->max_records = 1;
	b->infos = (uintptr_t)c->infos;
}

static void done_recv_batch(struct __test_metadata *_metadata,
			    struct ioc_ctx *c, void *arg, int ret)
{
	(void)arg;
	ASSERT_EQ(1, ret);
	ASSERT_EQ(4U, c->infos[0].len);
	ASSERT_EQ(0U, c->infos[0].offset);
	ASSERT_EQ(0, memcmp(c->buf, "wxyz", 4));
	ASSERT_EQ(0U, bpq_depth(c->qfd));
}

static void unique_name(char *name, size_t len)
{
	static int n;

	snprintf(name, len, "ioctl-test-%d-%d", getpid(), n++);
}

static void prep_create(struct __test_metadata *_metadata, struct ioc_ctx *c,
			void *arg)
{
	(void)_metadata; (void)c;
	unique_name(((struct bpq_create *)arg)->name, BPQ_NAME_MAX);
}

static void done_create(struct __test_metadata *_metadata, struct ioc_ctx *c,
			void *arg, int ret)
{
	struct bpq_create *cr = arg;
	char name[64];

	ASSERT_LE(0, ret);
	ASSERT_EQ((__u32)ret, cr->index);
	ASSERT_EQ(0, bpq_sysfs_read(ret, "name", name, sizeof(name)));
	ASSERT_STREQ(cr->name, name);
	ASSERT_EQ(0, bpq_destroy(c->cfd, ret));
}

static void prep_destroy(struct __test_metadata *_metadata, struct ioc_ctx *c,
			 void *arg)
{
	char name[BPQ_NAME_MAX];
	int idx;

	unique_name(name, sizeof(name));
	idx = bpq_create(c->cfd, name);
	ASSERT_LE(0, idx);
	((struct bpq_destroy *)arg)->index = idx;
}

static void done_destroy(struct __test_metadata *_metadata, struct ioc_ctx *c,
			 void *arg, int ret)
{
	char name[64];

	ASSERT_EQ(0, ret);
	ASSERT_EQ(-ENOENT, bpq_sysfs_read(((struct bpq_destroy *)arg)->index,
					  "name", name, sizeof(name)));
	ASSERT_EQ(-ENOENT, bpq_destroy(c->cfd,
				       ((struct bpq_destroy *)arg)->index));
}

/* One message delivered and not yet acknowledged, to acknowledge. */
static void prep_ack(struct __test_metadata *_metadata, struct ioc_ctx *c,
		     void *arg)
{
	ASSERT_EQ(1, bpq_write(c->qfd, "a", 1));
	ASSERT_EQ(1, bpq_read(c->qfd, c->buf, sizeof(c->buf)));
	((struct bpq_ack *)arg)->count = 1;
}

static void done_ack(struct __test_metadata *_metadata, struct ioc_ctx *c,
		     void *arg, int ret)
{
	struct bpq_stats st;

	(void)arg;
	ASSERT_EQ(1, ret);
	ASSERT_EQ(0, bpq_get_stats(c->qfd, &st));
	ASSERT_EQ(0U, st.unacked);
	ASSERT_EQ(0U, st.stale_acks);
}

#define OUT(type, first)	.out_off = offsetof(type, first),	\
				.out_len = sizeof(type) - offsetof(type, first)
#define RSV(type, field)	offsetof(type, field)

static const struct ioc_case case_get_config = {
	.cmd = BPQ_IOC_GET_CONFIG, .size = sizeof(struct bpq_config),
	.min_size = 64,
	OUT(struct bpq_config, strategy),
	.prep = prep_none, .done = done_get_config,
};

static const struct ioc_case case_set_config = {
	.cmd = BPQ_IOC_SET_CONFIG, .size = sizeof(struct bpq_config),
	.min_size = 64,
	.reserved = { RSV(struct bpq_config, __reserved) },
	.prep = prep_set_config, .done = done_set_config,
};

static const struct ioc_case case_get_stats = {
	.cmd = BPQ_IOC_GET_STATS, .size = sizeof(struct bpq_stats),
	.min_size = 416,
	OUT(struct bpq_stats, depth_msgs),
	.prep = prep_none, .done = done_get_stats,
};

static const struct ioc_case case_reset_stats = {
	.cmd = BPQ_IOC_RESET_STATS, .size = sizeof(struct bpq_simple),
	.prep = prep_reset_stats, .done = done_reset_stats,
};

static const struct ioc_case case_grant = {
	.cmd = BPQ_IOC_GRANT, .size = sizeof(struct bpq_grant),
	.known_flags = BPQ_GRANT_SET | BPQ_GRANT_REVOKE,
	.own_queue = true,
	.prep = prep_grant, .done = done_grant,
};

static const struct ioc_case case_flush = {
	.cmd = BPQ_IOC_FLUSH, .size = sizeof(struct bpq_simple),
	.prep = prep_flush, .done = done_flush,
};

static const struct ioc_case case_recv = {
	.cmd = BPQ_IOC_RECV, .size = sizeof(struct bpq_recv),
	.known_flags = BPQ_IO_NONBLOCK | BPQ_IO_TIMEOUT,
	OUT(struct bpq_recv, info),
	.prep = prep_recv, .done = done_recv,
};

static const struct ioc_case case_send_batch = {
	.cmd = BPQ_IOC_SEND_BATCH, .size = sizeof(struct bpq_send_batch),
	.known_flags = BPQ_IO_NONBLOCK | BPQ_IO_TIMEOUT,
	.prep = prep_send_batch, .done = done_send_batch,
};

static const struct ioc_case case_recv_batch = {
	.cmd = BPQ_IOC_RECV_BATCH, .size = sizeof(struct bpq_recv_batch),
	.known_flags = BPQ_IO_NONBLOCK | BPQ_IO_TIMEOUT,
	.reserved = { RSV(struct bpq_recv_batch, __reserved) },
	.prep = prep_recv_batch, .done = done_recv_batch,
};

static const struct ioc_case case_create = {
	.cmd = BPQ_IOC_CREATE, .size = sizeof(struct bpq_create),
	.control = true,
	.reserved = { RSV(struct bpq_create, __reserved) },
	.out_off = offsetof(struct bpq_create, index), .out_len = 4,
	.prep = prep_create, .done = done_create,
};

static const struct ioc_case case_destroy = {
	.cmd = BPQ_IOC_DESTROY, .size = sizeof(struct bpq_destroy),
	.control = true,
	.reserved = { RSV(struct bpq_destroy, __reserved) },
	.prep = prep_destroy, .done = done_destroy,
};

static const struct ioc_case case_ack = {
	.cmd = BPQ_IOC_ACK, .size = sizeof(struct bpq_ack),
	.own_queue = true,	/* nothing left unacknowledged before */
	.known_flags = BPQ_ACK_NACK | BPQ_ACK_TIMESTAMP,
	.reserved = { RSV(struct bpq_ack, __reserved) },
	.prep = prep_ack, .done = done_ack,
};

/* ---- the fixture: one variant per command ---- */

FIXTURE(ioc) {
	struct ioc_ctx c;
	unsigned char *arg;	/* ARG_ROOM bytes, page aligned */
	unsigned char good[ARG_ROOM];
};

FIXTURE_VARIANT(ioc) {
	const struct ioc_case *k;
};

FIXTURE_VARIANT_ADD(ioc, get_config) { .k = &case_get_config };
FIXTURE_VARIANT_ADD(ioc, set_config) { .k = &case_set_config };
FIXTURE_VARIANT_ADD(ioc, get_stats) { .k = &case_get_stats };
FIXTURE_VARIANT_ADD(ioc, reset_stats) { .k = &case_reset_stats };
FIXTURE_VARIANT_ADD(ioc, grant) { .k = &case_grant };
FIXTURE_VARIANT_ADD(ioc, flush) { .k = &case_flush };
FIXTURE_VARIANT_ADD(ioc, recv) { .k = &case_recv };
FIXTURE_VARIANT_ADD(ioc, send_batch) { .k = &case_send_batch };
FIXTURE_VARIANT_ADD(ioc, recv_batch) { .k = &case_recv_batch };
FIXTURE_VARIANT_ADD(ioc, create) { .k = &case_create };
FIXTURE_VARIANT_ADD(ioc, destroy) { .k = &case_destroy };
FIXTURE_VARIANT_ADD(ioc, ack) { .k = &case_ack };

FIXTURE_SETUP(ioc)
{
	struct ioc_ctx *c = &self->c;
	char name[BPQ_NAME_MAX];

	c->own_idx = -1;
	c->cfd = bpq_control_open();
	ASSERT_LE(0, c->cfd) TH_LOG("%m - open " BPQ_CONTROL_PATH);
	if (variant->k->own_queue) {
		unique_name(name, sizeof(name));
		c->own_idx = bpq_create(c->cfd, name);
		ASSERT_LE(0, c->own_idx);
		ASSERT_TRUE(bpq_wait_node(c->own_idx, true, 2000));
		c->qidx = c->own_idx;
	} else {
		c->qidx = QIDX;
	}
	c->qfd = bpq_open(c->qidx, O_RDWR | O_NONBLOCK);
	ASSERT_LE(0, c->qfd) TH_LOG("%m - open /dev/bpq%d", c->qidx);
	ASSERT_EQ(0, bpq_reset(c->qfd));

	self->arg = mmap(NULL, ARG_ROOM, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_TRUE(self->arg != MAP_FAILED);
}

FIXTURE_TEARDOWN(ioc)
{
	struct ioc_ctx *c = &self->c;

	if (c->qfd >= 0) {
		EXPECT_EQ(0, bpq_reset(c->qfd));
		close(c->qfd);
	}
	if (c->own_idx >= 0) {
		EXPECT_EQ(0, bpq_destroy(c->cfd, c->own_idx));
	}
	close(c->cfd);
	if (self->arg != MAP_FAILED)
		munmap(self->arg, ARG_ROOM);
}

static int ioc_fd(FIXTURE_DATA(ioc) *self, const struct ioc_case *k)
{
	return k->control ? self->c.cfd : self->c.qfd;
}

/* Prepare a valid argument in self->good. */
static void prep_good(struct __test_metadata *_metadata,
		      FIXTURE_DATA(ioc) *self, const struct ioc_case *k)
{
	memset(self->good, 0, sizeof(self->good));
	*(__u32 *)self->good = k->size;
	k->prep(_metadata, &self->c, self->good);
}

/* Issue the valid call and let the case check and undo it. */
static void call_good(struct __test_metadata *_metadata,
		      FIXTURE_DATA(ioc) *self, const struct ioc_case *k)
{
	int ret;

	memcpy(self->arg, self->good, ARG_ROOM);
	ret = bpq_ioctl(ioc_fd(self, k), k->cmd, self->arg);
	k->done(_metadata, &self->c, self->arg, ret);
}

/*
 * Issue the prepared argument with size @size and tail byte @tail at
 * offset k->size; expect @err (0: success, checked by the case).
 */
static void try_size(struct __test_metadata *_metadata,
		     FIXTURE_DATA(ioc) *self, const struct ioc_case *k,
		     __u32 size, unsigned char tail, int err)
{
	struct state before, after;
	int ret;

	prep_good(_metadata, self, k);
	memcpy(self->arg, self->good, ARG_ROOM);
	*(__u32 *)self->arg = size;
	self->arg[k->size] = tail;
	snapshot(&self->c, state_fd(&self->c, k), &before);
	ret = bpq_ioctl(ioc_fd(self, k), k->cmd, self->arg);
	if (!err) {
		k->done(_metadata, &self->c, self->arg, ret);
		return;
	}
	ASSERT_EQ(err, ret) TH_LOG("size %u tail %#x", size, tail);
	snapshot(&self->c, state_fd(&self->c, k), &after);
	ASSERT_SAME_STATE(before, after);
	call_good(_metadata, self, k);
}

TEST_F(ioc, exact_size)
{
	try_size(_metadata, self, variant->k, variant->k->size, 0, 0);
}

/* Below the first published size: a struct that never was */
TEST_F(ioc, short_size)
{
	const struct ioc_case *k = variant->k;
	unsigned int min = k->min_size ?: k->size;

	try_size(_metadata, self, k, min - 1, 0, -EINVAL);
	if (min > 8)
		try_size(_metadata, self, k, 8, 0, -EINVAL);
	try_size(_metadata, self, k, 4, 0, -EINVAL);
	try_size(_metadata, self, k, 0, 0, -EINVAL);
}

TEST_F(ioc, long_size_nonzero_tail)
{
	const struct ioc_case *k = variant->k;

	try_size(_metadata, self, k, k->size + 1, 0xff, -E2BIG);
	try_size(_metadata, self, k, k->size + 64, 0x01, -E2BIG);
}

TEST_F(ioc, long_size_zero_tail)
{
	const struct ioc_case *k = variant->k;

	try_size(_metadata, self, k, k->size + 1, 0, 0);
	try_size(_metadata, self, k, k->size + 64, 0, 0);
}

/* Bad argument pointers: EFAULT and nothing changes. */
TEST_F(ioc, bad_pointer)
{
	const struct ioc_case *k = variant->k;
	void *bad[] = { NULL, (void *)-1L, NULL, KERNEL_ADDR };
	struct state before, after;
	unsigned int i;
	void *page;

	page = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_TRUE(page != MAP_FAILED);
	bad[2] = page;

	prep_good(_metadata, self, k);
	snapshot(&self->c, state_fd(&self->c, k), &before);
	for (i = 0; i < ARRAY_LEN(bad); i++) {
		ASSERT_EQ(-EFAULT, bpq_ioctl(ioc_fd(self, k), k->cmd, bad[i]))
			TH_LOG("argument %p", bad[i]);
	}
	snapshot(&self->c, state_fd(&self->c, k), &after);
	ASSERT_SAME_STATE(before, after);
	call_good(_metadata, self, k);
	munmap(page, 4096);
}

/* A struct ending at a PROT_NONE page works; one byte more faults. */
TEST_F(ioc, against_guard_page)
{
	const struct ioc_case *k = variant->k;
	struct state before, after;
	unsigned char *map, *arg;
	int ret;

	map = mmap(NULL, 8192, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_TRUE(map != MAP_FAILED);
	ASSERT_EQ(0, mprotect(map + 4096, 4096, PROT_NONE));

	/* Crossing into the guard page by one byte. */
	prep_good(_metadata, self, k);
	arg = map + 4096 - (k->size - 1);
	memcpy(arg, self->good, k->size - 1);
	snapshot(&self->c, state_fd(&self->c, k), &before);
	ASSERT_EQ(-EFAULT, bpq_ioctl(ioc_fd(self, k), k->cmd, arg));
	snapshot(&self->c, state_fd(&self->c, k), &after);
	ASSERT_SAME_STATE(before, after);

	/* Ending exactly at the guard page. */
	arg = map + 4096 - k->size;
	memcpy(arg, self->good, k->size);
	ret = bpq_ioctl(ioc_fd(self, k), k->cmd, arg);
	k->done(_metadata, &self->c, arg, ret);
	munmap(map, 8192);
}

TEST_F(ioc, unknown_flags)
{
	const struct ioc_case *k = variant->k;
	struct state before, after;
	int bit;

	prep_good(_metadata, self, k);
	snapshot(&self->c, state_fd(&self->c, k), &before);
	for (bit = 0; bit < 32; bit++) {
		if (k->known_flags & (1U << bit))
			continue;
		memcpy(self->arg, self->good, ARG_ROOM);
		((__u32 *)self->arg)[1] = 1U << bit;
		ASSERT_EQ(-EINVAL, bpq_ioctl(ioc_fd(self, k), k->cmd, self->arg))
			TH_LOG("flag bit %d", bit);
	}
	snapshot(&self->c, state_fd(&self->c, k), &after);
	ASSERT_SAME_STATE(before, after);
	call_good(_metadata, self, k);
}

TEST_F(ioc, reserved_nonzero)
{
	const struct ioc_case *k = variant->k;
	struct state before, after;
	unsigned int i;
	int bit;

	if (!k->reserved[0])
		SKIP(return, "no reserved field");
	prep_good(_metadata, self, k);
	snapshot(&self->c, state_fd(&self->c, k), &before);
	for (i = 0; i < ARRAY_LEN(k->reserved) && k->reserved[i]; i++) {
		for (bit = 0; bit < 32; bit += 31) {
			memcpy(self->arg, self->good, ARG_ROOM);
			*(__u32 *)(self->arg + k->reserved[i]) = 1U << bit;
			ASSERT_EQ(-EINVAL, bpq_ioctl(ioc_fd(self, k), k->cmd,
						     self->arg))
				TH_LOG("reserved at %u", k->reserved[i]);
		}
	}
	snapshot(&self->c, state_fd(&self->c, k), &after);
	ASSERT_SAME_STATE(before, after);
	call_good(_metadata, self, k);
}

/* Output bytes pre-filled with 0xA5 all come back written. */
TEST_F(ioc, output_fully_written)
{
	const struct ioc_case *k = variant->k;
	unsigned int i;
	int ret;

	if (!k->out_len)
		SKIP(return, "no output fields");
	prep_good(_metadata, self, k);
	memcpy(self->arg, self->good, ARG_ROOM);
	memset(self->arg + k->out_off, 0xa5, k->out_len);
	ret = bpq_ioctl(ioc_fd(self, k), k->cmd, self->arg);
	/* No 32-bit word of the output is left as it was. */
	for (i = k->out_off; i + 4 <= k->out_off + k->out_len; i += 4) {
		ASSERT_NE(0xa5a5a5a5U, *(__u32 *)(self->arg + i))
			TH_LOG("byte %u of the output not written", i);
	}
	if (k->cmd == BPQ_IOC_GET_CONFIG) {
		ASSERT_EQ(0U, ((struct bpq_config *)self->arg)->__reserved);
	}
	k->done(_metadata, &self->c, self->arg, ret);
}

/* RECV_BATCH: each info record is written whole. */
TEST_F(ioc, batch_infos_fully_written)
{
	const struct ioc_case *k = variant->k;
	struct bpq_msg_info *info = &self->c.infos[0];
	int ret;

	if (k->cmd != BPQ_IOC_RECV_BATCH)
		SKIP(return, "RECV_BATCH only");
	prep_good(_metadata, self, k);
	memset(self->c.infos, 0xa5, sizeof(self->c.infos));
	memcpy(self->arg, self->good, ARG_ROOM);
	ret = bpq_ioctl(ioc_fd(self, k), k->cmd, self->arg);
	ASSERT_EQ(1, ret);
	ASSERT_NE(0xa5a5a5a5a5a5a5a5ULL, info->seq);
	ASSERT_NE(0xa5a5a5a5a5a5a5a5ULL, info->timestamp_ns);
	ASSERT_EQ(0U, info->lost);
	ASSERT_EQ(4U, info->len);
	ASSERT_EQ(0U, info->offset);
	/* The record beyond max_records is untouched. */
	ASSERT_EQ(0xa5a5a5a5a5a5a5a5ULL, self->c.infos[1].seq);
}

/* ---- config limits ---- */

FIXTURE(cfg) {
	int fd;
	struct bpq_config def;
};

FIXTURE_SETUP(cfg)
{
	self->fd = bpq_open(QIDX, O_RDWR | O_NONBLOCK);
	ASSERT_LE(0, self->fd) TH_LOG("%m - open /dev/bpq%d", QIDX);
	ASSERT_EQ(0, bpq_reset(self->fd));
	bpq_default_config(&self->def);
}

FIXTURE_TEARDOWN(cfg)
{
	EXPECT_EQ(0, bpq_reset(self->fd));
	close(self->fd);
}

#define CFG_FIELD(f)	offsetof(struct bpq_config, f), \
			sizeof(((struct bpq_config *)0)->f), #f

struct cfg_value {
	size_t off, len;
	const char *field;
	__u64 value;
};

static void cfg_put(struct bpq_config *cfg, const struct cfg_value *v)
{
	if (v->len == 8)
		*(__u64 *)((char *)cfg + v->off) = v->value;
	else
		*(__u32 *)((char *)cfg + v->off) = (__u32)v->value;
}

/* ---- commands that do not exist ---- */

TEST_F(cfg, unknown_commands)
{
	unsigned long queue_bad[] = {
		_IO(BPQ_TYPE, 0x3f), _IO(BPQ_TYPE, BPQ_CMD_TRIGGER + 1),
		_IO(BPQ_TYPE, 0x80), _IO(BPQ_TYPE, 0xc1),
		_IOWR(BPQ_TYPE, BPQ_CMD_GET_CONFIG, struct bpq_config),
		_IO('x', 0), _IO('x', BPQ_CMD_SET_CONFIG),
		BPQ_IOC_CREATE, BPQ_IOC_DESTROY, BPQ_IOC_GROUP_JOIN,
	};
	unsigned long control_bad[] = {
		BPQ_IOC_GET_CONFIG, BPQ_IOC_SET_CONFIG, BPQ_IOC_GET_STATS,
		BPQ_IOC_RESET_STATS, BPQ_IOC_GRANT, BPQ_IOC_FLUSH, BPQ_IOC_RECV,
		BPQ_IOC_SEND_BATCH, BPQ_IOC_RECV_BATCH, BPQ_IOC_RING_SETUP,
		BPQ_IOC_RING_SYNC, BPQ_IOC_SHUTDOWN, BPQ_IOC_ACK, BPQ_IOC_TRIGGER,
		_IO(BPQ_TYPE, BPQ_CMD_GROUP_JOIN + 1), _IO(BPQ_TYPE, 0x7f),
		_IO(BPQ_TYPE, 0x00 | 0x80), _IO('x', BPQ_CMD_CREATE),
	};
	struct bpq_config before, after;
	unsigned char arg[1024];
	unsigned int i;
	int qfd = self->fd, cfd, n = count_queues();

	cfd = bpq_control_open();
	ASSERT_LE(0, cfd);
	ASSERT_EQ(0, bpq_get_config(qfd, &before));

	for (i = 0; i < ARRAY_LEN(queue_bad); i++) {
		/* A plausible argument, in case the command is misrouted. */
		memset(arg, 0, sizeof(arg));
		*(__u32 *)arg = sizeof(struct bpq_create);
		strcpy((char *)arg + 8, "bogus");
		ASSERT_EQ(-ENOTTY, bpq_ioctl(qfd, queue_bad[i], arg))
			TH_LOG("queue command %#lx", queue_bad[i]);
	}
	for (i = 0; i < ARRAY_LEN(control_bad); i++) {
		memset(arg, 0, sizeof(arg));
		*(__u32 *)arg = 8;
		ASSERT_EQ(-ENOTTY, bpq_ioctl(cfd, control_bad[i], arg))
			TH_LOG("control command %#lx", control_bad[i]);
	}
	ASSERT_EQ(0, bpq_get_config(qfd, &after));
	ASSERT_EQ(0, memcmp(&before, &after, sizeof(before)));
	ASSERT_EQ(n, count_queues());
	close(cfd);
}

TEST_F(cfg, defaults)
{
	struct bpq_config cfg;

	ASSERT_EQ(0, bpq_get_config(self->fd, &cfg));
	ASSERT_EQ(0, memcmp(&self->def, &cfg, sizeof(cfg)));
}

TEST_F(cfg, out_of_range_refused)
{
	static const struct cfg_value bad[] = {
		{ CFG_FIELD(strategy), 6 },
		{ CFG_FIELD(strategy), 0xffffffff },
		{ CFG_FIELD(capacity_msgs), 0 },
		{ CFG_FIELD(capacity_msgs), 1048577 },
		{ CFG_FIELD(capacity_msgs), 1U << 31 },
		{ CFG_FIELD(capacity_msgs), 0xffffffff },
		{ CFG_FIELD(capacity_bytes), 0 },
		{ CFG_FIELD(capacity_bytes), (1U << 30) + 1 },
		{ CFG_FIELD(capacity_bytes), 1U << 31 },
		{ CFG_FIELD(capacity_bytes), 0xffffffff },
		{ CFG_FIELD(capacity_bytes), 1ULL << 32 },
		{ CFG_FIELD(capacity_bytes), ~0ULL },
		{ CFG_FIELD(max_msg_size), 0 },
		{ CFG_FIELD(max_msg_size), (4U << 20) + 1 },
		{ CFG_FIELD(max_msg_size), 1U << 31 },
		{ CFG_FIELD(max_msg_size), 0xffffffff },
		{ CFG_FIELD(high_watermark), 0 },
		{ CFG_FIELD(high_watermark), 101 },
		{ CFG_FIELD(low_watermark), 0 },
		{ CFG_FIELD(low_watermark), 101 },
		{ CFG_FIELD(adjust_interval_ms), 0 },
		{ CFG_FIELD(adjust_interval_ms), 60001 },
		{ CFG_FIELD(target_latency_us), 0 },
		{ CFG_FIELD(target_latency_us), 60000001 },
		{ CFG_FIELD(min_rate), 0 },
		{ CFG_FIELD(max_rate), 99 },	/* below min_rate 100 */
		{ CFG_FIELD(increase_pct), 0 },
		{ CFG_FIELD(increase_pct), 1001 },
		{ CFG_FIELD(decrease_pct), 0 },
		{ CFG_FIELD(decrease_pct), 100 },
		{ CFG_FIELD(flags), 1 },
		{ CFG_FIELD(__reserved), 1 },
	};
	struct bpq_config cfg, now;
	unsigned int i;

	for (i = 0; i < ARRAY_LEN(bad); i++) {
		cfg = self->def;
		cfg_put(&cfg, &bad[i]);
		ASSERT_EQ(-EINVAL, bpq_set_config(self->fd, &cfg))
			TH_LOG("%s = %llu accepted", bad[i].field,
			       (unsigned long long)bad[i].value);
		ASSERT_EQ(0, bpq_get_config(self->fd, &now));
		ASSERT_EQ(0, memcmp(&self->def, &now, sizeof(now)));
	}

	/* low above high */
	cfg = self->def;
	cfg.high_watermark = 50;
	cfg.low_watermark = 51;
	ASSERT_EQ(-EINVAL, bpq_set_config(self->fd, &cfg));
	ASSERT_EQ(0, bpq_get_config(self->fd, &now));
	ASSERT_EQ(0, memcmp(&self->def, &now, sizeof(now)));
}

TEST_F(cfg, limits_accepted)
{
	static const struct cfg_value good[] = {
		{ CFG_FIELD(strategy), BPQ_STRATEGY_ADAPTIVE },
		{ CFG_FIELD(capacity_msgs), 1 },
		{ CFG_FIELD(capacity_msgs), 1048576 },
		{ CFG_FIELD(capacity_bytes), 1 },
		{ CFG_FIELD(capacity_bytes), 1U << 30 },
		{ CFG_FIELD(max_msg_size), 1 },
		{ CFG_FIELD(max_msg_size), 4U << 20 },
		{ CFG_FIELD(low_watermark), 1 },
		{ CFG_FIELD(adjust_interval_ms), 1 },
		{ CFG_FIELD(adjust_interval_ms), 60000 },
		{ CFG_FIELD(target_latency_us), 1 },
		{ CFG_FIELD(target_latency_us), 60000000 },
		{ CFG_FIELD(min_rate), 1 },
		{ CFG_FIELD(max_rate), 100 },	/* equal to min_rate */
		{ CFG_FIELD(write_timeout_ms), 0xffffffff },
		{ CFG_FIELD(auto_credit), 1 },
	};
	struct bpq_config cfg, now;
	unsigned int i;

	for (i = 0; i < ARRAY_LEN(good); i++) {
		cfg = self->def;
		cfg_put(&cfg, &good[i]);
		ASSERT_EQ(0, bpq_set_config(self->fd, &cfg))
			TH_LOG("%s = %llu refused", good[i].field,
			       (unsigned long long)good[i].value);
		ASSERT_EQ(0, bpq_get_config(self->fd, &now));
		ASSERT_EQ(0, memcmp(&cfg, &now, sizeof(now)));
	}
	/* Watermarks 1/1 and 100/1. */
	cfg = self->def;
	cfg.high_watermark = 1;
	cfg.low_watermark = 1;
	ASSERT_EQ(0, bpq_set_config(self->fd, &cfg));
	cfg.high_watermark = 100;
	ASSERT_EQ(0, bpq_set_config(self->fd, &cfg));
}

/* sysfs settings: good values show in GET_CONFIG, bad ones change nothing. */
TEST_F(cfg, sysfs_settings)
{
	static const struct {
		const char *attr, *good, *bad[4];
	} t[] = {
		{ "capacity_msgs", "17", { "0", "1048577", "abc", "-1" } },
		{ "capacity_bytes", "4096", { "0", "1073741825", "x" } },
		{ "max_msg_size", "100", { "0", "4194305", "x1", "-5" } },
		{ "low_watermark", "80", { "0", "101", "z" } },
		{ "high_watermark", "90", { "0", "101", "79", "9x" } },
		{ "write_timeout_ms", "250", { "-1", "4294967296", "q" } },
		{ "target_latency_us", "5000", { "0", "60000001" } },
		{ "min_rate", "10", { "0" } },
		{ "max_rate", "20", { "9", "0" } },
		{ "adjust_interval_ms", "50", { "0", "60001" } },
		{ "strategy", "drop-oldest", { "bogus", "block2", "Block" } },
	};
	struct bpq_config before, after;
	char buf[64];
	unsigned int i, j;

	for (i = 0; i < ARRAY_LEN(t); i++) {
		ASSERT_EQ(0, bpq_sysfs_write(QIDX, t[i].attr, t[i].good))
			TH_LOG("%s = %s refused", t[i].attr, t[i].good);
		ASSERT_EQ(0, bpq_sysfs_read(QIDX, t[i].attr, buf, sizeof(buf)));
		ASSERT_STREQ(t[i].good, buf);
		ASSERT_EQ(0, bpq_get_config(self->fd, &before));
		for (j = 0; j < ARRAY_LEN(t[i].bad) && t[i].bad[j]; j++) {
			ASSERT_EQ(-EINVAL, bpq_sysfs_write(QIDX, t[i].attr,
							   t[i].bad[j]))
				TH_LOG("%s = '%s' accepted", t[i].attr,
				       t[i].bad[j]);
			ASSERT_EQ(0, bpq_get_config(self->fd, &after));
			ASSERT_EQ(0, memcmp(&before, &after, sizeof(after)));
		}
	}
	ASSERT_EQ(17U, after.capacity_msgs);
	ASSERT_EQ(4096U, after.capacity_bytes);
	ASSERT_EQ(100U, after.max_msg_size);
	ASSERT_EQ(90U, after.high_watermark);
	ASSERT_EQ(80U, after.low_watermark);
	ASSERT_EQ(250U, after.write_timeout_ms);
	ASSERT_EQ((__u32)BPQ_STRATEGY_DROP_OLDEST, after.strategy);

	/* low above high */
	ASSERT_EQ(-EINVAL, bpq_sysfs_write(QIDX, "low_watermark", "91"));
	ASSERT_EQ(80U, bpq_sysfs_u64(QIDX, "low_watermark"));

	/* Every strategy by name. */
	for (i = 0; i <= BPQ_STRATEGY_ADAPTIVE; i++) {
		ASSERT_EQ(0, bpq_sysfs_write(QIDX, "strategy",
					     bpq_strategy_name(i)));
		ASSERT_EQ(0, bpq_get_config(self->fd, &after));
		ASSERT_EQ(i, after.strategy);
	}

	/* Read-only and write-only files. */
	ASSERT_NE(0, bpq_sysfs_write(QIDX, "name", "x"));
	ASSERT_NE(0, bpq_sysfs_write(QIDX, "depth_msgs", "1"));
	ASSERT_NE(0, bpq_sysfs_read(QIDX, "grant", buf, sizeof(buf)));
	ASSERT_NE(0, bpq_sysfs_read(QIDX, "stats/reset", buf, sizeof(buf)));
}

/*
 * stats/all: every state and counter of the snapshot, one "name value" line
 * each and each histogram on one line, equal to BPQ_IOC_GET_STATS and to
 * the files of their own on a queue nobody else uses (throughput, a
 * moving average of time, aside).
 */
TEST_F(cfg, sysfs_stats_all)
{
	char all[4096], name[64], file[80], one[64];
	char *line, *save;
	struct bpq_stats st;
	unsigned long long v, h;
	int i, n, lines = 0, off;
	__u64 *hist;
	char buf[8];

	for (i = 0; i < 5; i++)
		ASSERT_EQ(3, write(self->fd, "abc", 3));
	ASSERT_EQ(3, read(self->fd, buf, sizeof(buf)));
	ASSERT_EQ(0, bpq_sysfs_read(QIDX, "stats/all", all, sizeof(all)));
	ASSERT_EQ(0, bpq_get_stats(self->fd, &st));
	for (line = strtok_r(all, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		hist = !strncmp(line, "latency_hist ", 13) ? st.latency_hist :
		       !strncmp(line, "processing_hist ", 16) ?
		       st.processing_hist : NULL;
		if (hist) {
			off = strchr(line, ' ') - line;
			for (i = 0; i < BPQ_LATENCY_BUCKETS; i++) {
				ASSERT_EQ(1, sscanf(line + off, " %llu%n", &h,
						    &n));
				EXPECT_EQ(hist[i], h);
				off += n;
			}
			EXPECT_EQ('\0', line[off]);
			continue;
		}
		ASSERT_EQ(2, sscanf(line, "%63s %llu", name, &v)) TH_LOG("%s",
									 line);
		lines++;
		if (!strcmp(name, "throughput") || !strcmp(name, "head_age_us"))
			continue;
		/* the state at the top, the counters in stats/ */
		if (bpq_sysfs_read(QIDX, name, one, sizeof(one))) {
			snprintf(file, sizeof(file), "stats/%s", name);
			ASSERT_EQ(0, bpq_sysfs_read(QIDX, file, one,
						    sizeof(one)))
				TH_LOG("no file for %s", name);
		}
		EXPECT_EQ(strtoull(one, NULL, 10), v) TH_LOG("%s", name);
	}
	EXPECT_EQ(37, lines);
	EXPECT_EQ(4ULL, st.depth_msgs);
	EXPECT_EQ(5ULL, st.enqueued_msgs);
	ASSERT_NE(0, bpq_sysfs_write(QIDX, "stats/all", "1"));
}

TEST_F(cfg, sysfs_grant)
{
	struct bpq_grant g = { .size = sizeof(g) };
	char name[BPQ_NAME_MAX];
	int cfd, idx, fd;

	cfd = bpq_control_open();
	ASSERT_LE(0, cfd);
	unique_name(name, sizeof(name));
	idx = bpq_create(cfd, name);
	ASSERT_LE(0, idx);

	EXPECT_EQ(0U, bpq_sysfs_u64(idx, "credits_available"));
	EXPECT_EQ(0, bpq_sysfs_write(idx, "grant", "3"));
	EXPECT_EQ(3U, bpq_sysfs_u64(idx, "credits_available"));
	EXPECT_EQ(-EINVAL, bpq_sysfs_write(idx, "grant", "0"));
	EXPECT_EQ(-EINVAL, bpq_sysfs_write(idx, "grant", "-"));
	EXPECT_EQ(-EINVAL, bpq_sysfs_write(idx, "grant", "--1"));
	EXPECT_EQ(-EINVAL, bpq_sysfs_write(idx, "grant", "=-1"));
	EXPECT_EQ(-EINVAL, bpq_sysfs_write(idx, "grant", "abc"));
	/* Saturates instead of wrapping, by sysfs and by ioctl. */
	EXPECT_EQ(0, bpq_sysfs_write(idx, "grant", "9223372036854775807"));
	EXPECT_EQ(9223372036854775810ULL, bpq_sysfs_u64(idx, "credits_available"));
	EXPECT_EQ(0, bpq_sysfs_write(idx, "grant", "9223372036854775807"));
	EXPECT_EQ(~0ULL, bpq_sysfs_u64(idx, "credits_available"));
	EXPECT_EQ(0, bpq_sysfs_write(idx, "grant", "5"));
	EXPECT_EQ(~0ULL, bpq_sysfs_u64(idx, "credits_available"));
	fd = bpq_open(idx, O_RDWR);
	ASSERT_LE(0, fd);
	g.credits = ~0ULL;
	EXPECT_EQ(0, bpq_ioctl(fd, BPQ_IOC_GRANT, &g));
	EXPECT_EQ(~0ULL, bpq_sysfs_u64(idx, "credits_available"));
	close(fd);

	ASSERT_EQ(0, bpq_destroy(cfd, idx));
	close(cfd);
}

/* Argument checks of the I/O commands beyond the struct itself. */
TEST_F(cfg, io_command_arguments)
{
	struct bpq_msg_info infos[2];
	struct bpq_iovec iov[2];
	struct bpq_grant g = { .size = sizeof(g) };
	struct bpq_send_batch sb = { .size = sizeof(sb), .msgs = (uintptr_t)iov };
	struct bpq_recv_batch rb = {
		.size = sizeof(rb), .buf = (uintptr_t)infos,
		.buf_len = sizeof(infos), .infos = (uintptr_t)infos,
		.flags = BPQ_IO_NONBLOCK,
	};

	memset(iov, 0, sizeof(iov));
	iov[0].base = (uintptr_t)"abc";
	iov[0].len = 3;

	/* GRANT of 0 credits */
	ASSERT_EQ(-EINVAL, bpq_ioctl(self->fd, BPQ_IOC_GRANT, &g));

	/* SEND_BATCH: count 0, over 1024, empty message, reserved, NULLs */
	sb.count = 0;
	ASSERT_EQ(-EINVAL, bpq_ioctl(self->fd, BPQ_IOC_SEND_BATCH, &sb));
	sb.count = 1025;
	ASSERT_EQ(-EINVAL, bpq_ioctl(self->fd, BPQ_IOC_SEND_BATCH, &sb));
	sb.count = 1;
	iov[0].len = 0;
	ASSERT_EQ(-EINVAL, bpq_ioctl(self->fd, BPQ_IOC_SEND_BATCH, &sb));
	iov[0].len = 3;
	iov[0].__reserved = 1;
	ASSERT_EQ(-EINVAL, bpq_ioctl(self->fd, BPQ_IOC_SEND_BATCH, &sb));
	iov[0].__reserved = 0;
	iov[0].base = 0;
	ASSERT_EQ(-EFAULT, bpq_ioctl(self->fd, BPQ_IOC_SEND_BATCH, &sb));
	sb.msgs = 0;
	ASSERT_EQ(-EFAULT, bpq_ioctl(self->fd, BPQ_IOC_SEND_BATCH, &sb));
	ASSERT_EQ(0U, bpq_depth(self->fd));
	ASSERT_EQ(0U, bpq_sysfs_u64(QIDX, "stats/enqueued_msgs"));

	/* RECV_BATCH: max_records 0, over 1024 */
	rb.max_records = 0;
	ASSERT_EQ(-EINVAL, bpq_ioctl(self->fd, BPQ_IOC_RECV_BATCH, &rb));
	rb.max_records = 1025;
	ASSERT_EQ(-EINVAL, bpq_ioctl(self->fd, BPQ_IOC_RECV_BATCH, &rb));
	rb.max_records = 2;
	ASSERT_EQ(-EAGAIN, bpq_ioctl(self->fd, BPQ_IOC_RECV_BATCH, &rb));
}

/* Faults while copying a message leave it queued. */
TEST_F(cfg, faults_leave_messages_queued)
{
	void *volatile nullp = NULL;	/* hidden from -Wnonnull */
	struct bpq_recv r = { .size = sizeof(r), .buf_len = 100 };
	struct bpq_recv_batch rb = {
		.size = sizeof(rb), .buf_len = 4096, .max_records = 1,
	};
	unsigned char *map;

	map = mmap(NULL, 8192, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_TRUE(map != MAP_FAILED);
	ASSERT_EQ(0, mprotect(map + 4096, 4096, PROT_NONE));
	fill_pattern(map, 4096, 3);

	/* A write whose second half is unmapped queues nothing. */
	ASSERT_EQ(-EFAULT, bpq_write(self->fd, map + 4096 - 100, 200));
	ASSERT_EQ(-EFAULT, bpq_write(self->fd, nullp, 10));
	ASSERT_EQ(0U, bpq_depth(self->fd));
	ASSERT_EQ(0U, bpq_sysfs_u64(QIDX, "stats/enqueued_msgs"));

	ASSERT_EQ(200, bpq_write(self->fd, map, 200));

	/* read/RECV/RECV_BATCH into a buffer that faults half way */
	ASSERT_EQ(-EFAULT, bpq_read(self->fd, map + 4096 - 100, 200));
	ASSERT_EQ(-EFAULT, bpq_read(self->fd, nullp, 200));
	r.buf = (uintptr_t)(map + 4096 - 100);
	r.buf_len = 200;
	ASSERT_EQ(-EFAULT, bpq_ioctl(self->fd, BPQ_IOC_RECV, &r));
	rb.buf = (uintptr_t)(map + 4096 - 100);
	rb.buf_len = 200;
	rb.infos = (uintptr_t)map;
	ASSERT_EQ(-EFAULT, bpq_ioctl(self->fd, BPQ_IOC_RECV_BATCH, &rb));
	/* payload fits but the info records fault */
	rb.buf = (uintptr_t)map;
	rb.infos = (uintptr_t)(map + 4096);
	ASSERT_EQ(-EFAULT, bpq_ioctl(self->fd, BPQ_IOC_RECV_BATCH, &rb));
	ASSERT_EQ(1U, bpq_depth(self->fd));
	ASSERT_EQ(0U, bpq_sysfs_u64(QIDX, "stats/dequeued_msgs"));

	memset(map, 0, 4096);
	ASSERT_EQ(200, bpq_read(self->fd, map, 4096));
	ASSERT_TRUE(check_pattern(map, 200, 3));
	munmap(map, 8192);
}

TEST_F(cfg, readv_writev_limits)
{
	static struct iovec many[IOV_MAX + 1];
	struct iovec huge[1] = { { many, (size_t)SSIZE_MAX + 1 } };
	char c = 'x';
	unsigned int i;

	for (i = 0; i < ARRAY_LEN(many); i++) {
		many[i].iov_base = &c;
		many[i].iov_len = 1;
	}
	/* No vector is a zero-length write: nothing queued. */
	ASSERT_EQ(0, writev(self->fd, many, 0));
	ASSERT_EQ(0U, bpq_depth(self->fd));
	ASSERT_EQ(-1, writev(self->fd, many, IOV_MAX + 1));
	ASSERT_EQ(EINVAL, errno);
	/* 6.1 gives EFAULT here, though SUS asks for EINVAL */
	ASSERT_EQ(-1, writev(self->fd, huge, 1));
	ASSERT_TRUE(errno == EINVAL || errno == EFAULT);
	ASSERT_EQ(0U, bpq_depth(self->fd));

	ASSERT_EQ(1, bpq_write(self->fd, &c, 1));
	ASSERT_EQ(0, readv(self->fd, many, 0));
	ASSERT_EQ(-1, readv(self->fd, many, IOV_MAX + 1));
	ASSERT_EQ(EINVAL, errno);
	ASSERT_EQ(-1, readv(self->fd, huge, 1));
	ASSERT_TRUE(errno == EINVAL || errno == EFAULT);
	ASSERT_EQ(1U, bpq_depth(self->fd));
	ASSERT_EQ(0U, bpq_sysfs_u64(QIDX, "stats/dequeued_msgs"));

	/* IOV_MAX vectors gather into one message. */
	ASSERT_EQ(1, bpq_read(self->fd, &c, 1));
	ASSERT_EQ(IOV_MAX, writev(self->fd, many, IOV_MAX));
	ASSERT_EQ(1U, bpq_depth(self->fd));
	ASSERT_EQ((__u64)IOV_MAX, bpq_sysfs_u64(QIDX, "depth_bytes"));
}

TEST_HARNESS_MAIN
