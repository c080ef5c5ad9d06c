// SPDX-License-Identifier: GPL-2.0
/*
 * The receive ring: BPQ_IOC_RING_SETUP, the mapping, BPQ_IOC_RING_SYNC.
 *
 * The ring is driven by hand here, with raw ioctls and the layout of the
 * UAPI header (struct bpq_ring_ctl, struct bpq_ring_rec), so that these
 * tests check the kernel against the header and not against a library.
 *
 * Each test gets a queue of its own from /dev/bpq-control (sequence numbers
 * from 1, no credit carried over), puts it back to defaults once its ring
 * is gone, and destroys it.
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <linux/userfaultfd.h>

#include "bpq_test.h"
/* kselftest_harness.h of 6.1 has an unused parameter: keep -Wextra clean. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"
#include "kselftest_harness.h"
#pragma GCC diagnostic pop
/* the harness compares its operands as given: 0 against a __u64 is fine */
#pragma GCC diagnostic ignored "-Wsign-compare"

/* max_msg_size of most tests: two of its records fit the smallest ring */
#define MSG_MAX		1000
#define RING_MIN	BPQ_RING_BYTES_MIN
#define REC(len)	((__u64)BPQ_RING_RECORD(len))
#define REC_HDR		sizeof(struct bpq_ring_rec)

#define P_IN		(POLLIN | POLLRDNORM)

static long page_size(void)
{
	return sysconf(_SC_PAGESIZE);
}

/* ---- the ring, by hand ---- */

struct ring {
	int fd;			/* the ring's file, -1: none */
	__u32 bytes;		/* ring_bytes */
	__u32 max_msg;		/* a longer record is malformed */
	size_t map_len;
	void *map;		/* NULL: not mapped */
	struct bpq_ring_ctl *ctl;
	unsigned char *data;
	__u64 head;		/* the reader's position, published to ctl */
	unsigned int lap_ends;	/* lap ends passed: PADs and short tails */
	unsigned int pad_recs;	/* of which PAD records */
	unsigned int syncs;	/* RING_SYNC calls made for NEED_SYNC */
};

static int ioc_setup(int fd, __u32 ring_bytes, __u32 *mmap_bytes)
{
	struct bpq_ring_setup s = {
		.size = sizeof(s),
		.ring_bytes = ring_bytes,
	};
	int ret = bpq_ioctl(fd, BPQ_IOC_RING_SETUP, &s);

	if (mmap_bytes)
		*mmap_bytes = s.mmap_bytes;
	return ret;
}

static int ioc_sync(int fd, __u32 flags, __u32 timeout_ms)
{
	struct bpq_ring_sync s = {
		.size = sizeof(s),
		.flags = flags,
		.timeout_ms = timeout_ms,
	};

	return bpq_ioctl(fd, BPQ_IOC_RING_SYNC, &s);
}

/* mmap() as a test wants it: the address, or NULL with -errno in *err. */
static void *map_ring(int fd, size_t len, int prot, int flags, off_t off,
		      int *err)
{
	void *p = mmap(NULL, len, prot, flags, fd, off);

	if (p == MAP_FAILED) {
		*err = -errno;
		return NULL;
	}
	*err = 0;
	return p;
}

/* A mapping that is only tried: 0 (and unmapped again) or -errno. */
static int try_map(int fd, size_t len, int prot, int flags, off_t off)
{
	void *p;
	int err;

	p = map_ring(fd, len, prot, flags, off, &err);
	if (p)
		munmap(p, len);
	return err;
}

static void ring_init(struct ring *r)
{
	memset(r, 0, sizeof(*r));
	r->fd = -1;
}

/*
 * Give @fd (which the ring then owns) a ring of @ring_bytes and map it.
 * 0 or -errno; -ERANGE if mmap_bytes is not one page plus the ring.
 */
static int ring_open(struct ring *r, int fd, __u32 ring_bytes, __u32 max_msg)
{
	__u32 len = 0;
	int ret;

	ring_init(r);
	r->fd = fd;
	r->bytes = ring_bytes;
	r->max_msg = max_msg;
	if (fd < 0)
		return -EBADF;
	ret = ioc_setup(fd, ring_bytes, &len);
	if (ret)
		return ret;
	if (len != page_size() + (long)ring_bytes)
		return -ERANGE;
	r->map = map_ring(fd, len, PROT_READ | PROT_WRITE, MAP_SHARED, 0, &ret);
	if (!r->map)
		return ret;
	r->map_len = len;
	r->ctl = r->map;
	r->data = (unsigned char *)r->map + page_size();
	return 0;
}

static void ring_unmap(struct ring *r)
{
	if (r->map)
		munmap(r->map, r->map_len);
	r->map = NULL;
	r->ctl = NULL;
	r->data = NULL;
}

static void ring_close(struct ring *r)
{
	ring_unmap(r);
	if (r->fd >= 0)
		close(r->fd);
	r->fd = -1;
}

static __u64 ring_tail(struct ring *r)
{
	return __atomic_load_n(&r->ctl->tail, __ATOMIC_ACQUIRE);
}

static __u32 ring_flags(struct ring *r)
{
	return __atomic_load_n(&r->ctl->flags, __ATOMIC_RELAXED);
}

/* Store @head as the reader does: release, then a full barrier. */
static void ring_store_head(struct ring *r, __u64 head)
{
	__atomic_store_n(&r->ctl->head, head, __ATOMIC_RELEASE);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
}

/* Publish our position; RING_SYNC if the kernel asks. 0 or -errno. */
static int ring_publish(struct ring *r)
{
	int ret;

	ring_store_head(r, r->head);
	if (!(ring_flags(r) & BPQ_RING_NEED_SYNC))
		return 0;
	r->syncs++;
	ret = ioc_sync(r->fd, 0, 0);
	return ret < 0 ? ret : 0;
}

/*
 * The record at our position, past lap ends: 1 and *out, 0 if the ring
 * holds none, -EPROTO if what the kernel published breaks the header's
 * rules (a record past the end or past tail, bad flags or length).
 */
static int ring_next(struct ring *r, struct bpq_ring_rec **out)
{
	struct bpq_ring_rec *rec;
	__u64 tail, off, left;

	for (;;) {
		tail = ring_tail(r);
		if (tail == r->head)
			return 0;
		if (tail - r->head > r->bytes)
			return -EPROTO;
		off = r->head & (r->bytes - 1);
		left = r->bytes - off;
		if (left < REC_HDR) {
			if (tail - r->head < left)
				return -EPROTO;
			r->head += left;
			r->lap_ends++;
			continue;
		}
		rec = (struct bpq_ring_rec *)(r->data + off);
		if (rec->flags & BPQ_RING_PAD) {
			if (rec->flags != BPQ_RING_PAD ||
			    tail - r->head < left)
				return -EPROTO;
			r->head += left;
			r->lap_ends++;
			r->pad_recs++;
			continue;
		}
		if (rec->flags || !rec->len ||
		    (r->max_msg && rec->len > r->max_msg) ||
		    REC(rec->len) > left || REC(rec->len) > tail - r->head)
			return -EPROTO;
		*out = rec;
		return 1;
	}
}

/*
 * Take the next record: its header into *hdr, its payload into @buf (room
 * for max_msg), our position past it (not yet published). 1, 0 or -EPROTO.
 */
static int ring_take(struct ring *r, struct bpq_ring_rec *hdr, void *buf)
{
	struct bpq_ring_rec *rec;
	int ret = ring_next(r, &rec);

	if (ret <= 0)
		return ret;
	*hdr = *rec;
	memcpy(buf, rec + 1, hdr->len);
	r->head += REC(hdr->len);
	return 1;
}

/* Where a record of @len put at @pos ends: past the lap's end if need be. */
static __u64 rec_end(__u32 bytes, __u64 pos, size_t len)
{
	__u64 left = bytes - (pos & (bytes - 1));

	if (left < REC(len))
		pos += left;
	return pos + REC(len);
}

/* ---- messages ---- */

static unsigned char msgbuf[BPQ_RING_MSG_MAX];
static unsigned char rdbuf[BPQ_RING_MSG_MAX];

/* Sizes 1 ... MSG_MAX, the bounds often. */
static size_t var_len(unsigned int n)
{
	switch (n % 5) {
	case 0:
		return MSG_MAX;
	case 1:
		return 1;
	case 2:
		return MSG_MAX - 1 - n % 8;
	default:
		return 1 + (n * 7919U) % MSG_MAX;
	}
}

static ssize_t write_msg(int fd, unsigned int n, size_t len)
{
	fill_pattern(msgbuf, len, n);
	return bpq_write(fd, msgbuf, len);
}

/* Send messages first ... first + count - 1 in one BPQ_IOC_SEND_BATCH. */
static int send_batch(int fd, unsigned int first, unsigned int count,
		      size_t (*len_of)(unsigned int), __u32 flags)
{
	static unsigned char bufs[16][MSG_MAX];
	struct bpq_iovec iov[16];
	struct bpq_send_batch b = {
		.size = sizeof(b),
		.flags = flags,
		.msgs = (uintptr_t)iov,
		.count = count,
	};
	unsigned int k;

	if (count > ARRAY_LEN(iov))
		return -E2BIG;
	memset(iov, 0, sizeof(iov));
	for (k = 0; k < count; k++) {
		iov[k].len = len_of(first + k);
		fill_pattern(bufs[k], iov[k].len, first + k);
		iov[k].base = (uintptr_t)bufs[k];
	}
	return bpq_ioctl(fd, BPQ_IOC_SEND_BATCH, &b);
}

/* What the next record should be: message n, sequence number seq. */
struct expect {
	unsigned int n;
	__u64 seq;
	size_t len;			/* fixed length, or 0 for len_of */
	size_t (*len_of)(unsigned int n);
	__u64 last_ts;
};

static size_t expect_len(const struct expect *e)
{
	return e->len ? e->len : e->len_of(e->n);
}

/*
 * Take the next record, which must be message e->n with e->seq and @lost,
 * and publish our position (RING_SYNC when the kernel asks). With
 * @refill, an empty ring gets one RING_SYNC first, as a reader that
 * finds nothing would do before it sleeps.
 */
static void take_expected(struct __test_metadata *_metadata, struct ring *r,
			  struct expect *e, __u64 lost, bool refill)
{
	struct bpq_ring_rec hdr;
	size_t len = expect_len(e);
	int ret;

	ret = ring_take(r, &hdr, rdbuf);
	if (ret == 0 && refill) {
		ASSERT_LE(0, ioc_sync(r->fd, 0, 0));
		ret = ring_take(r, &hdr, rdbuf);
	}
	ASSERT_EQ(1, ret) TH_LOG("message %u (seq %llu): %s, head %llu tail %llu",
				 e->n, (unsigned long long)e->seq,
				 ret ? "malformed ring" : "ring empty",
				 (unsigned long long)r->head,
				 (unsigned long long)ring_tail(r));
	ASSERT_EQ(e->seq, hdr.seq) TH_LOG("message %u", e->n);
	ASSERT_EQ(len, hdr.len) TH_LOG("message %u", e->n);
	ASSERT_TRUE(check_pattern(rdbuf, len, e->n))
		TH_LOG("message %u: payload differs", e->n);
	ASSERT_EQ(lost, hdr.lost) TH_LOG("message %u", e->n);
	ASSERT_LE(e->last_ts, hdr.timestamp_ns);
	ASSERT_GE((__u64)now_ns(), hdr.timestamp_ns);
	e->last_ts = hdr.timestamp_ns;
	e->n++;
	e->seq++;
	ASSERT_EQ(0, ring_publish(r));
}

/* Take @count messages in order, syncing as a reader must. */
static void take_many(struct __test_metadata *_metadata, struct ring *r,
		      struct expect *e, unsigned int count)
{
	unsigned int i;

	for (i = 0; i < count; i++)
		take_expected(_metadata, r, e, 0, true);
}

/* The ring is empty and stays so after a RING_SYNC. */
static void assert_drained(struct __test_metadata *_metadata, struct ring *r)
{
	struct bpq_ring_rec *rec;

	ASSERT_EQ(0, ioc_sync(r->fd, 0, 0));
	ASSERT_EQ(0, ring_next(r, &rec));
	ASSERT_EQ(r->head, ring_tail(r));
}

static int set_queue(int fd, __u32 strategy, __u32 capacity_msgs,
		     __u32 max_msg)
{
	struct bpq_config cfg;

	bpq_default_config(&cfg);
	cfg.strategy = strategy;
	if (capacity_msgs)
		cfg.capacity_msgs = capacity_msgs;
	cfg.max_msg_size = max_msg;
	return bpq_set_config(fd, &cfg);
}

static void assert_balanced(struct __test_metadata *_metadata, int fd)
{
	struct bpq_stats st;

	ASSERT_EQ(0, bpq_get_stats(fd, &st));
	ASSERT_TRUE(bpq_stats_balanced(&st))
		TH_LOG("enqueued %llu dequeued %llu dropped_oldest %llu flushed %llu depth %llu",
		       (unsigned long long)st.enqueued_msgs,
		       (unsigned long long)st.dequeued_msgs,
		       (unsigned long long)st.dropped_oldest,
		       (unsigned long long)st.flushed,
		       (unsigned long long)st.depth_msgs);
}

/* ---- threads ---- */

/* One RING_SYNC (or RECV) on a helper thread, to watch it sleep. */
struct ioctl_thread {
	pthread_t thr;
	int fd;
	__u32 flags;
	__u32 timeout_ms;
	bool recv;		/* BPQ_IOC_RECV instead of RING_SYNC */
	pid_t tid;
	int started;
	int done;
	int ret;
};

static void *ioctl_thread_fn(void *arg)
{
	struct ioctl_thread *t = arg;
	char buf[64];
	int ret;

	t->tid = bpq_gettid();
	__atomic_store_n(&t->started, 1, __ATOMIC_RELEASE);
	if (t->recv)
		ret = bpq_recv(t->fd, buf, sizeof(buf), t->flags,
			       t->timeout_ms, NULL);
	else
		ret = ioc_sync(t->fd, t->flags, t->timeout_ms);
	t->ret = ret;
	__atomic_store_n(&t->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static int ioctl_thread_start(struct ioctl_thread *t, int fd, bool recv,
			      __u32 flags, __u32 timeout_ms)
{
	int ret;

	memset(t, 0, sizeof(*t));
	t->fd = fd;
	t->recv = recv;
	t->flags = flags;
	t->timeout_ms = timeout_ms;
	ret = pthread_create(&t->thr, NULL, ioctl_thread_fn, t);
	if (ret)
		return -ret;
	while (!__atomic_load_n(&t->started, __ATOMIC_ACQUIRE))
		sched_yield();
	return 0;
}

static bool ioctl_thread_done(struct ioctl_thread *t)
{
	return __atomic_load_n(&t->done, __ATOMIC_ACQUIRE);
}

static bool ioctl_thread_wait(struct ioctl_thread *t, int timeout_ms)
{
	int64_t end = now_ns() + (int64_t)timeout_ms * 1000000;

	while (!ioctl_thread_done(t)) {
		if (now_ns() > end)
			return false;
		sleep_ms(1);
	}
	pthread_join(t->thr, NULL);
	return true;
}

/* A message written after a delay, from another thread. */
struct late_writer {
	pthread_t thr;
	int fd;
	int delay_ms;
	unsigned int n;
	size_t len;
	ssize_t ret;
};

static void *late_writer_fn(void *arg)
{
	struct late_writer *w = arg;
	unsigned char buf[256];

	sleep_ms(w->delay_ms);
	fill_pattern(buf, w->len, w->n);
	w->ret = bpq_write(w->fd, buf, w->len);
	return NULL;
}

static volatile int sig_count;

static void on_signal(int sig)
{
	(void)sig;
	sig_count++;
}

/* ---- the fixture ---- */

FIXTURE(ring) {
	int cfd;
	int q;		/* the queue's number, -1 once destroyed */
	int fd;		/* O_RDWR: writes, stats, config */
	int nfd;	/* O_RDWR | O_NONBLOCK */
	struct ring r;	/* the test's ring, if any */
};

FIXTURE_SETUP(ring)
{
	char name[BPQ_NAME_MAX];

	self->q = -1;
	self->fd = -1;
	self->nfd = -1;
	ring_init(&self->r);
	self->cfd = bpq_control_open();
	ASSERT_LE(0, self->cfd) TH_LOG("%m - open " BPQ_CONTROL_PATH);
	snprintf(name, sizeof(name), "ring-%d", getpid());
	self->q = bpq_create(self->cfd, name);
	ASSERT_LE(0, self->q) TH_LOG("create: %s", strerror(-self->q));
	ASSERT_TRUE(bpq_wait_node(self->q, true, 5000));
	self->fd = bpq_open(self->q, O_RDWR);
	ASSERT_LE(0, self->fd) TH_LOG("%m - open /dev/bpq%d", self->q);
	self->nfd = bpq_open(self->q, O_RDWR | O_NONBLOCK);
	ASSERT_LE(0, self->nfd) TH_LOG("%m - open /dev/bpq%d", self->q);
	ASSERT_EQ(0, set_queue(self->fd, BPQ_STRATEGY_BLOCK, 0, MSG_MAX));
}

FIXTURE_TEARDOWN(ring)
{
	/* the ring first: it holds max_msg_size down */
	ring_close(&self->r);
	if (self->q >= 0) {
		EXPECT_EQ(0, bpq_reset(self->fd));
		EXPECT_EQ(0, bpq_destroy(self->cfd, self->q));
	}
	if (self->nfd >= 0)
		close(self->nfd);
	if (self->fd >= 0)
		close(self->fd);
	close(self->cfd);
}

/* The ring of the fixture's queue on a new O_RDWR file. */
static int open_ring(FIXTURE_DATA(ring) *self, __u32 ring_bytes)
{
	return ring_open(&self->r, bpq_open(self->q, O_RDWR), ring_bytes,
			 MSG_MAX);
}

/* RING_SETUP on a new file that is closed again: the ring goes with it. */
static int try_setup(int q, __u32 ring_bytes)
{
	int fd = bpq_open(q, O_RDWR), ret;

	if (fd < 0)
		return -errno;
	ret = ioc_setup(fd, ring_bytes, NULL);
	close(fd);
	return ret;
}

/* No ring on the queue: a receive answers as usual, not EBUSY. */
static bool no_ring(FIXTURE_DATA(ring) *self)
{
	char buf[8];

	return bpq_depth(self->fd) == 0 &&
	       bpq_read(self->nfd, buf, sizeof(buf)) == -EAGAIN;
}

/* ---- setup and mapping errors ---- */

/* The reader writes its head into the mapping: O_RDWR only. */
TEST_F(ring, setup_needs_read_access)
{
	int wfd = bpq_open(self->q, O_WRONLY);
	int rfd = bpq_open(self->q, O_RDONLY);

	ASSERT_LE(0, wfd);
	ASSERT_LE(0, rfd);
	EXPECT_EQ(-EBADF, ioc_setup(wfd, RING_MIN, NULL));
	EXPECT_EQ(-EBADF, ioc_setup(rfd, RING_MIN, NULL));
	close(wfd);
	close(rfd);
	ASSERT_TRUE(no_ring(self));
	ASSERT_EQ(0, open_ring(self, RING_MIN));
}

TEST_F(ring, setup_bad_arguments)
{
	static const __u32 bad_bytes[] = {
		0, 1, 8, 2048, 4095, 4097, 6144, 12288, 65535,
		BPQ_RING_BYTES_MAX + 1, BPQ_RING_BYTES_MAX * 2, 1U << 31,
		0xffffffffU,
	};
	struct {
		struct bpq_ring_setup s;
		__u64 tail;
	} big;
	struct bpq_ring_setup s;
	unsigned int i;
	int fd;

	fd = bpq_open(self->q, O_RDWR);
	ASSERT_LE(0, fd);
	for (i = 0; i < ARRAY_LEN(bad_bytes); i++) {
		EXPECT_EQ(-EINVAL, ioc_setup(fd, bad_bytes[i], NULL))
			TH_LOG("ring_bytes %u", bad_bytes[i]);
	}

	memset(&s, 0, sizeof(s));
	s.size = sizeof(s);
	s.ring_bytes = RING_MIN;
	s.flags = 1;
	EXPECT_EQ(-EINVAL, bpq_ioctl(fd, BPQ_IOC_RING_SETUP, &s));
	s.flags = 1U << 31;
	EXPECT_EQ(-EINVAL, bpq_ioctl(fd, BPQ_IOC_RING_SETUP, &s));
	s.flags = 0;
	s.size = sizeof(s) - 1;
	EXPECT_EQ(-EINVAL, bpq_ioctl(fd, BPQ_IOC_RING_SETUP, &s));
	s.size = 0;
	EXPECT_EQ(-EINVAL, bpq_ioctl(fd, BPQ_IOC_RING_SETUP, &s));
	EXPECT_EQ(-EFAULT, bpq_ioctl(fd, BPQ_IOC_RING_SETUP, NULL));
	memset(&big, 0, sizeof(big));
	big.s.size = sizeof(big);
	big.s.ring_bytes = RING_MIN;
	big.tail = 1;
	EXPECT_EQ(-E2BIG, bpq_ioctl(fd, BPQ_IOC_RING_SETUP, &big));
	ASSERT_TRUE(no_ring(self));

	/* A larger struct with a zero tail is fine. */
	big.tail = 0;
	ASSERT_EQ(0, bpq_ioctl(fd, BPQ_IOC_RING_SETUP, &big));
	EXPECT_EQ(page_size() + RING_MIN, big.s.mmap_bytes);
	close(fd);
	ASSERT_TRUE(no_ring(self));
}

/* At least twice the record of max_msg_size; max_msg_size <= 64 KiB. */
TEST_F(ring, setup_against_max_msg_size)
{
	/* 2 * (32 + 2016) = 4096 */
	ASSERT_EQ(0, set_queue(self->fd, BPQ_STRATEGY_BLOCK, 0, 2016));
	EXPECT_EQ(0, try_setup(self->q, RING_MIN));
	ASSERT_EQ(0, set_queue(self->fd, BPQ_STRATEGY_BLOCK, 0, 2017));
	EXPECT_EQ(-EINVAL, try_setup(self->q, RING_MIN));
	EXPECT_EQ(0, try_setup(self->q, 2 * RING_MIN));

	ASSERT_EQ(0, set_queue(self->fd, BPQ_STRATEGY_BLOCK, 0,
			       BPQ_RING_MSG_MAX));
	EXPECT_EQ(-EINVAL, try_setup(self->q, 128 << 10));
	EXPECT_EQ(0, try_setup(self->q, 256 << 10));
	ASSERT_EQ(0, set_queue(self->fd, BPQ_STRATEGY_BLOCK, 0,
			       BPQ_RING_MSG_MAX + 1));
	EXPECT_EQ(-EINVAL, try_setup(self->q, 256 << 10));
	EXPECT_EQ(-EINVAL, try_setup(self->q, BPQ_RING_BYTES_MAX));
	ASSERT_TRUE(no_ring(self));

	/*
	 * A message queued under a larger max_msg_size counts too: a ring
	 * it could never enter would leave everything behind it waiting.
	 */
	ASSERT_EQ(0, set_queue(self->fd, BPQ_STRATEGY_BLOCK, 0, 8192));
	ASSERT_EQ(3000, write_msg(self->nfd, 0, 3000));
	ASSERT_EQ(0, set_queue(self->fd, BPQ_STRATEGY_BLOCK, 0, 1024));
	EXPECT_EQ(-EINVAL, try_setup(self->q, RING_MIN));
	ASSERT_EQ(3000, read(self->nfd, rdbuf, sizeof(rdbuf)));
	EXPECT_EQ(0, try_setup(self->q, RING_MIN));
	ASSERT_TRUE(no_ring(self));
}

TEST_F(ring, setup_sizes)
{
	static const __u32 sizes[] = {
		RING_MIN, 2 * RING_MIN, 1 << 20, BPQ_RING_BYTES_MAX,
	};
	unsigned int i;

	for (i = 0; i < ARRAY_LEN(sizes); i++) {
		ASSERT_EQ(0, open_ring(self, sizes[i]))
			TH_LOG("ring_bytes %u", sizes[i]);
		EXPECT_EQ(sizes[i], self->r.ctl->ring_bytes);
		EXPECT_EQ(0, self->r.ctl->head);
		EXPECT_EQ(0, self->r.ctl->tail);
		EXPECT_EQ(0, self->r.ctl->flags);
		/* the whole data area is there */
		EXPECT_EQ(0, self->r.data[sizes[i] - 1]);
		self->r.data[sizes[i] - 1] = 1;
		ring_close(&self->r);
		ASSERT_TRUE(no_ring(self));
	}
}

TEST_F(ring, setup_busy)
{
	struct ioctl_thread rt;
	struct io_thread rd;
	int fd2, fd3;

	ASSERT_EQ(0, open_ring(self, RING_MIN));
	EXPECT_EQ(-EBUSY, ioc_setup(self->r.fd, RING_MIN, NULL));
	fd2 = bpq_open(self->q, O_RDWR);
	ASSERT_LE(0, fd2);
	EXPECT_EQ(-EBUSY, ioc_setup(fd2, RING_MIN, NULL));
	fd3 = dup(self->r.fd);
	ASSERT_LE(0, fd3);
	EXPECT_EQ(-EBUSY, ioc_setup(fd3, RING_MIN, NULL));
	close(fd3);

	/* The ring gone, another file may have one. */
	ring_close(&self->r);
	EXPECT_EQ(0, ioc_setup(fd2, RING_MIN, NULL));
	close(fd2);
	ASSERT_TRUE(no_ring(self));

	/* Not while a reader waits in read() ... */
	ASSERT_EQ(0, io_thread_start(&rd, self->fd, IO_READ, NULL, 64));
	ASSERT_TRUE(io_thread_blocked(&rd, 5000));
	EXPECT_EQ(-EBUSY, try_setup(self->q, RING_MIN));
	ASSERT_EQ(3, write_msg(self->nfd, 1, 3));
	ASSERT_TRUE(io_thread_wait(&rd, 5000));
	EXPECT_EQ(3, rd.ret);

	/* ... or in BPQ_IOC_RECV. */
	ASSERT_EQ(0, ioctl_thread_start(&rt, self->fd, true, 0, 0));
	ASSERT_TRUE(wait_task_sleeping(rt.tid, SYS_ioctl, 5000));
	EXPECT_EQ(-EBUSY, try_setup(self->q, RING_MIN));
	ASSERT_EQ(4, write_msg(self->nfd, 2, 4));
	ASSERT_TRUE(ioctl_thread_wait(&rt, 5000));
	EXPECT_EQ(4, rt.ret);

	/* Readers gone: it works. */
	ASSERT_EQ(0, open_ring(self, RING_MIN));
}

TEST_F(ring, mmap_errors)
{
	long pg = page_size();
	size_t len = pg + RING_MIN;
	__u32 mlen;
	void *p;
	int err, fd2;

	/* No ring yet. */
	fd2 = bpq_open(self->q, O_RDWR);
	ASSERT_LE(0, fd2);
	EXPECT_EQ(-EINVAL, try_map(fd2, len,
				   PROT_READ | PROT_WRITE, MAP_SHARED, 0));

	self->r.fd = bpq_open(self->q, O_RDWR);
	ASSERT_LE(0, self->r.fd);
	ASSERT_EQ(0, ioc_setup(self->r.fd, RING_MIN, &mlen));
	ASSERT_EQ(len, mlen);

	/* Another file of the queue has no ring. */
	EXPECT_EQ(-EINVAL, try_map(fd2, len,
				   PROT_READ | PROT_WRITE, MAP_SHARED, 0));
	close(fd2);

	/* Wrong lengths. */
	EXPECT_EQ(-EINVAL, try_map(self->r.fd, pg,
				   PROT_READ | PROT_WRITE, MAP_SHARED, 0));
	EXPECT_EQ(-EINVAL, try_map(self->r.fd, len - pg,
				   PROT_READ | PROT_WRITE, MAP_SHARED, 0));
	EXPECT_EQ(-EINVAL, try_map(self->r.fd, len + pg,
				   PROT_READ | PROT_WRITE, MAP_SHARED, 0));
	EXPECT_EQ(-EINVAL, try_map(self->r.fd, 2 * len,
				   PROT_READ, MAP_SHARED, 0));

	/* Offsets other than 0. */
	EXPECT_EQ(-EINVAL, try_map(self->r.fd, len,
				   PROT_READ | PROT_WRITE, MAP_SHARED, pg));
	EXPECT_EQ(-EINVAL, try_map(self->r.fd, len - pg,
				   PROT_READ | PROT_WRITE, MAP_SHARED, pg));

	/* Private, executable. */
	EXPECT_EQ(-EINVAL, try_map(self->r.fd, len,
				   PROT_READ | PROT_WRITE, MAP_PRIVATE, 0));
	EXPECT_EQ(-EINVAL, try_map(self->r.fd, len,
				   PROT_READ, MAP_PRIVATE, 0));
	EXPECT_EQ(-EINVAL, try_map(self->r.fd, len,
				   PROT_READ | PROT_WRITE | PROT_EXEC,
				   MAP_SHARED, 0));
	EXPECT_EQ(-EINVAL, try_map(self->r.fd, len,
				   PROT_READ | PROT_EXEC, MAP_SHARED, 0));

	/* The right one works, with the header's first page. */
	p = map_ring(self->r.fd, len, PROT_READ | PROT_WRITE, MAP_SHARED, 0,
		     &err);
	ASSERT_TRUE(!!p) TH_LOG("mmap: %s", strerror(-err));
	self->r.map = p;
	self->r.map_len = len;
	self->r.ctl = p;
	EXPECT_EQ(RING_MIN, self->r.ctl->ring_bytes);
	EXPECT_EQ(0, self->r.ctl->tail);
}

/* A mapping made without PROT_EXEC cannot gain it later. */
TEST_F(ring, mprotect_exec_refused)
{
	ASSERT_EQ(0, open_ring(self, RING_MIN));
	EXPECT_EQ(-1, mprotect(self->r.map, self->r.map_len,
			       PROT_READ | PROT_EXEC));
	EXPECT_EQ(EACCES, errno);
}

TEST_F(ring, sync_errors)
{
	struct {
		struct bpq_ring_sync s;
		__u64 tail;
	} big;
	struct bpq_ring_sync s;
	int fd2;

	/* No ring. */
	EXPECT_EQ(-EINVAL, ioc_sync(self->fd, 0, 0));
	EXPECT_EQ(-EINVAL, ioc_sync(self->fd, BPQ_RING_WAIT, 0));

	ASSERT_EQ(0, open_ring(self, RING_MIN));
	EXPECT_EQ(0, ioc_sync(self->r.fd, 0, 0));
	/* Another file of the queue has none. */
	fd2 = bpq_open(self->q, O_RDWR);
	ASSERT_LE(0, fd2);
	EXPECT_EQ(-EINVAL, ioc_sync(fd2, 0, 0));
	close(fd2);

	EXPECT_EQ(-EINVAL, ioc_sync(self->r.fd, 1U << 3, 0));
	EXPECT_EQ(-EINVAL, ioc_sync(self->r.fd, 1U << 31, 0));
	memset(&s, 0, sizeof(s));
	s.size = sizeof(s);
	s.__reserved = 1;
	EXPECT_EQ(-EINVAL, bpq_ioctl(self->r.fd, BPQ_IOC_RING_SYNC, &s));
	s.__reserved = 0;
	s.size = sizeof(s) - 1;
	EXPECT_EQ(-EINVAL, bpq_ioctl(self->r.fd, BPQ_IOC_RING_SYNC, &s));
	EXPECT_EQ(-EFAULT, bpq_ioctl(self->r.fd, BPQ_IOC_RING_SYNC, NULL));
	memset(&big, 0, sizeof(big));
	big.s.size = sizeof(big);
	big.tail = 1;
	EXPECT_EQ(-E2BIG, bpq_ioctl(self->r.fd, BPQ_IOC_RING_SYNC, &big));
	big.tail = 0;
	EXPECT_EQ(0, bpq_ioctl(self->r.fd, BPQ_IOC_RING_SYNC, &big));
}

/* ---- delivery ---- */

/* A write lands in the ring at once: no system call on the reader's side. */
TEST_F(ring, write_lands_in_ring)
{
	struct expect e = { .n = 7, .seq = 1, .len = 10 };
	struct bpq_stats st;
	int64_t t0, t1;
	struct bpq_ring_rec *rec;

	ASSERT_EQ(0, open_ring(self, RING_MIN));
	t0 = now_ns();
	ASSERT_EQ(10, write_msg(self->nfd, 7, 10));
	t1 = now_ns();
	ASSERT_EQ(REC(10), ring_tail(&self->r));
	EXPECT_EQ(0, ring_flags(&self->r));

	ASSERT_EQ(1, ring_next(&self->r, &rec));
	EXPECT_EQ(0, rec->flags);
	EXPECT_LE((__u64)t0, rec->timestamp_ns);
	EXPECT_GE((__u64)t1, rec->timestamp_ns);

	ASSERT_EQ(0, bpq_get_stats(self->fd, &st));
	EXPECT_EQ(1, st.enqueued_msgs);
	EXPECT_EQ(1, st.dequeued_msgs);
	EXPECT_EQ(10, st.dequeued_bytes);
	EXPECT_EQ(0, st.depth_msgs);
	EXPECT_EQ(0, st.depth_bytes);

	/* RING_SYNC says what the ring holds. */
	EXPECT_EQ(REC(10), ioc_sync(self->r.fd, 0, 0));
	take_expected(_metadata, &self->r, &e, 0, false);
	EXPECT_EQ(REC(10), self->r.ctl->head);
	EXPECT_EQ(0, ioc_sync(self->r.fd, 0, 0));
	EXPECT_EQ(0, self->r.syncs);

	/* Sizes up to max_msg_size, and one more is refused. */
	e.len = MSG_MAX;
	ASSERT_EQ(MSG_MAX, write_msg(self->fd, e.n, MSG_MAX));
	ASSERT_EQ(-EMSGSIZE, write_msg(self->fd, 0, MSG_MAX + 1));
	take_expected(_metadata, &self->r, &e, 0, false);
	assert_drained(_metadata, &self->r);
}

/* 40 records of 136 bytes on a ring of 4096: 30 fit, ten wait. */
static void fill_forty(struct __test_metadata *_metadata,
		       FIXTURE_DATA(ring) *self)
{
	struct bpq_stats st;
	int i;

	for (i = 0; i < 40; i++) {
		ASSERT_EQ(100, write_msg(self->nfd, i, 100)) TH_LOG("write %d", i);
	}
	ASSERT_EQ(0, bpq_get_stats(self->fd, &st));
	EXPECT_EQ(40, st.enqueued_msgs);
	EXPECT_EQ(30, st.dequeued_msgs);
	EXPECT_EQ(3000, st.dequeued_bytes);
	EXPECT_EQ(10, st.depth_msgs);
	EXPECT_EQ(1000, st.depth_bytes);
	EXPECT_EQ(30 * REC(100), ring_tail(&self->r));
	EXPECT_EQ(BPQ_RING_NEED_SYNC, ring_flags(&self->r) & BPQ_RING_NEED_SYNC);
}

/* Messages queued before the setup move into the ring at setup. */
TEST_F(ring, queued_before_setup)
{
	struct expect e = { .seq = 1, .len = 100 };
	struct bpq_stats st;
	int i;

	for (i = 0; i < 40; i++) {
		ASSERT_EQ(100, write_msg(self->nfd, i, 100));
	}
	ASSERT_EQ(0, open_ring(self, RING_MIN));
	ASSERT_EQ(0, bpq_get_stats(self->fd, &st));
	EXPECT_EQ(30, st.dequeued_msgs);
	EXPECT_EQ(10, st.depth_msgs);
	EXPECT_EQ(30 * REC(100), ring_tail(&self->r));
	EXPECT_EQ(BPQ_RING_NEED_SYNC, ring_flags(&self->r) & BPQ_RING_NEED_SYNC);
	take_many(_metadata, &self->r, &e, 40);
	assert_drained(_metadata, &self->r);
	EXPECT_EQ(0, ring_flags(&self->r) & BPQ_RING_NEED_SYNC);
	assert_balanced(_metadata, self->fd);
}

/*
 * Ring full: messages wait in the queue; the reader frees room, sees
 * NEED_SYNC, and RING_SYNC moves them in, in order.
 */
TEST_F(ring, full_ring_waits_then_sync)
{
	struct expect e = { .seq = 1, .len = 100 };
	struct bpq_stats st;
	int i;

	ASSERT_EQ(0, open_ring(self, RING_MIN));
	fill_forty(_metadata, self);

	/* Five taken, head stored, nothing said to the kernel yet. */
	for (i = 0; i < 5; i++) {
		struct bpq_ring_rec hdr;

		ASSERT_EQ(1, ring_take(&self->r, &hdr, rdbuf));
		ASSERT_EQ(e.seq, hdr.seq);
		ASSERT_TRUE(check_pattern(rdbuf, 100, e.n));
		e.seq++;
		e.n++;
	}
	ring_store_head(&self->r, self->r.head);
	ASSERT_EQ(10, bpq_depth(self->fd));
	ASSERT_EQ(30 * REC(100), ring_tail(&self->r));

	/*
	 * The 16 bytes left at the end cannot hold a record: the next lap
	 * starts at 4096, with room up to head + 4096 for five records.
	 */
	EXPECT_EQ(RING_MIN, ioc_sync(self->r.fd, 0, 0));
	EXPECT_EQ(RING_MIN + 5 * REC(100), ring_tail(&self->r));
	ASSERT_EQ(0, bpq_get_stats(self->fd, &st));
	EXPECT_EQ(35, st.dequeued_msgs);
	EXPECT_EQ(5, st.depth_msgs);
	EXPECT_EQ(500, st.depth_bytes);
	EXPECT_EQ(BPQ_RING_NEED_SYNC, ring_flags(&self->r) & BPQ_RING_NEED_SYNC);
	assert_balanced(_metadata, self->fd);

	take_many(_metadata, &self->r, &e, 35);
	EXPECT_EQ(1, self->r.lap_ends);
	EXPECT_EQ(0, self->r.pad_recs);
	assert_drained(_metadata, &self->r);
	EXPECT_EQ(0, ring_flags(&self->r) & BPQ_RING_NEED_SYNC);
	ASSERT_EQ(0, bpq_get_stats(self->fd, &st));
	EXPECT_EQ(40, st.dequeued_msgs);
	EXPECT_EQ(4000, st.dequeued_bytes);
	EXPECT_EQ(0, st.depth_msgs);
	assert_balanced(_metadata, self->fd);
}

/*
 * A backlog read by the rule of the header: RING_SYNC only once the head
 * reaches sync_head. The kernel sets it about a quarter ring on, so 200
 * records of 96 bytes through a 4 KiB ring take some 19 syncs, not one
 * per message.
 */
TEST_F(ring, backlog_syncs_per_quarter_ring)
{
	unsigned int n = 0, syncs = 0, quarters;
	struct bpq_ring_rec hdr;
	int ret;

	ASSERT_EQ(0, open_ring(self, RING_MIN));
	for (n = 0; n < 200; n++)
		ASSERT_EQ(64, write_msg(self->nfd, n, 64));
	for (n = 0; n < 200;) {
		ret = ring_take(&self->r, &hdr, rdbuf);
		ASSERT_LE(0, ret);
		if (!ret) {
			/* empty: what a waiting reader's RING_SYNC does */
			ASSERT_LT(0, ioc_sync(self->r.fd, BPQ_RING_WAIT, 0));
			syncs++;
			continue;
		}
		ASSERT_EQ(++n, hdr.seq);
		ASSERT_TRUE(check_pattern(rdbuf, 64, n - 1));
		ring_store_head(&self->r, self->r.head);
		if ((ring_flags(&self->r) & BPQ_RING_NEED_SYNC) &&
		    self->r.head >= __atomic_load_n(&self->r.ctl->sync_head,
						    __ATOMIC_RELAXED)) {
			ASSERT_LE(0, ioc_sync(self->r.fd, 0, 0));
			syncs++;
		}
	}
	quarters = 200 * REC(64) / (RING_MIN / 4);
	TH_LOG("200 messages, %u syncs (%u quarter rings)", syncs, quarters);
	EXPECT_GE(quarters + 4, syncs);
	EXPECT_EQ(0, bpq_depth(self->fd));
	EXPECT_EQ(0, ring_flags(&self->r) & BPQ_RING_NEED_SYNC);
	assert_drained(_metadata, &self->r);
	assert_balanced(_metadata, self->fd);
}

/* One batch larger than the ring: the rest waits, order kept. */
TEST_F(ring, send_batch_overflows_ring)
{
	struct expect e = { .seq = 1, .len_of = var_len };
	unsigned int n = 0, k;
	int ret;

	ASSERT_EQ(0, open_ring(self, RING_MIN));
	for (k = 0; k < 4; k++) {
		ret = send_batch(self->fd, n, 16, var_len, 0);
		ASSERT_EQ(16, ret);
		n += 16;
	}
	EXPECT_LT(0, bpq_depth(self->fd));
	take_many(_metadata, &self->r, &e, n);
	assert_drained(_metadata, &self->r);
	EXPECT_LE(2, self->r.lap_ends);
	assert_balanced(_metadata, self->fd);
}

/*
 * Many messages of sizes 1 ... max through write() and SEND_BATCH, a
 * reader taking a few at a time: laps, lap ends, order, payloads.
 */
TEST_F_TIMEOUT(ring, order_across_laps, 120)
{
	struct expect e = { .seq = 1, .len_of = var_len };
	const unsigned int total = 3000;
	unsigned int n = 0, round = 0, k, take;
	struct bpq_stats st;
	int ret;

	ASSERT_EQ(0, open_ring(self, 2 * RING_MIN));
	while (n < total) {
		k = 1 + round % 7;
		if (k > total - n)
			k = total - n;
		if (round & 1) {
			ret = send_batch(self->fd, n, k, var_len, 0);
			ASSERT_EQ((int)k, ret) TH_LOG("batch at %u", n);
			n += k;
		} else {
			for (; k; k--, n++) {
				ASSERT_EQ((ssize_t)var_len(n),
					  write_msg(self->fd, n, var_len(n)));
			}
		}
		/* a few at a time, everything when the backlog grows */
		take = 1 + round % 5;
		if (bpq_depth(self->fd) > 100)
			take = n - e.n;
		while (take-- && e.n < n)
			take_expected(_metadata, &self->r, &e, 0, true);
		round++;
	}
	take_many(_metadata, &self->r, &e, n - e.n);
	assert_drained(_metadata, &self->r);

	TH_LOG("%u messages, %llu laps, %u lap ends (%u PAD records), %u syncs",
	       total, (unsigned long long)(self->r.head / self->r.bytes),
	       self->r.lap_ends, self->r.pad_recs, self->r.syncs);
	EXPECT_LE(3, self->r.head / self->r.bytes);
	EXPECT_LE(3, self->r.lap_ends);
	EXPECT_LE(1, self->r.pad_recs);
	EXPECT_LE(1, self->r.syncs);
	ASSERT_EQ(0, bpq_get_stats(self->fd, &st));
	EXPECT_EQ(total, st.enqueued_msgs);
	EXPECT_EQ(total, st.dequeued_msgs);
	EXPECT_EQ(st.enqueued_bytes, st.dequeued_bytes);
	EXPECT_EQ(0, st.depth_msgs);
}

/* Sizes up to BPQ_RING_MSG_MAX, the bounds often. */
static size_t big_len(unsigned int n)
{
	switch (n % 4) {
	case 0:
		return BPQ_RING_MSG_MAX;
	case 1:
		return 1 + n % 7;
	case 2:
		return BPQ_RING_MSG_MAX - 1 - n % 13;
	default:
		return 1 + (n * 40009U) % BPQ_RING_MSG_MAX;
	}
}

/* The largest messages a ring takes, on the smallest ring that takes them. */
TEST_F_TIMEOUT(ring, largest_messages_across_laps, 120)
{
	struct expect e = { .seq = 1, .len_of = big_len };
	const unsigned int total = 300;
	unsigned int n = 0, take;

	ASSERT_EQ(0, set_queue(self->fd, BPQ_STRATEGY_BLOCK, 0,
			       BPQ_RING_MSG_MAX));
	EXPECT_EQ(-EINVAL, try_setup(self->q, 128 << 10));
	ASSERT_EQ(0, ring_open(&self->r, bpq_open(self->q, O_RDWR), 256 << 10,
			       BPQ_RING_MSG_MAX));
	while (n < total) {
		ASSERT_EQ((ssize_t)big_len(n), write_msg(self->fd, n, big_len(n)));
		n++;
		if (n % 3)
			continue;
		/* a few at a time; all before the byte bound could block us */
		take = 1 + n % 4;
		if (bpq_depth(self->fd) > 8)
			take = n - e.n;
		while (take-- && e.n < n)
			take_expected(_metadata, &self->r, &e, 0, true);
	}
	take_many(_metadata, &self->r, &e, n - e.n);
	assert_drained(_metadata, &self->r);
	TH_LOG("%llu laps, %u lap ends (%u PAD records)",
	       (unsigned long long)(self->r.head / self->r.bytes),
	       self->r.lap_ends, self->r.pad_recs);
	EXPECT_LE(10, self->r.lap_ends);
	assert_balanced(_metadata, self->fd);
}

/* ---- strategies ---- */

/*
 * 200-byte messages (records of 232) on a ring of 4096: 17 fit, leaving
 * 152 bytes that take a PAD record; the queue holds two more.
 */
#define FILL_LEN	200
#define FILL_RING	17

static void fill_ring_and_queue(struct __test_metadata *_metadata,
				FIXTURE_DATA(ring) *self, int queued)
{
	int i;

	for (i = 0; i < FILL_RING + queued; i++) {
		ASSERT_EQ(FILL_LEN, write_msg(self->nfd, i, FILL_LEN))
			TH_LOG("write %d", i);
	}
	ASSERT_EQ(FILL_RING * REC(FILL_LEN), ring_tail(&self->r));
	ASSERT_EQ(queued, bpq_depth(self->fd));
}

TEST_F(ring, block_writer_released_by_sync)
{
	struct expect e = { .seq = 1, .len = FILL_LEN };
	struct io_thread w;
	struct bpq_stats st;

	ASSERT_EQ(0, set_queue(self->fd, BPQ_STRATEGY_BLOCK, 2, MSG_MAX));
	ASSERT_EQ(0, open_ring(self, RING_MIN));
	fill_ring_and_queue(_metadata, self, 2);
	EXPECT_EQ(-EAGAIN, write_msg(self->nfd, 19, FILL_LEN));

	fill_pattern(msgbuf, FILL_LEN, 19);
	ASSERT_EQ(0, io_thread_start(&w, self->fd, IO_WRITE, msgbuf,
				     FILL_LEN));
	ASSERT_TRUE(io_thread_blocked(&w, 5000));
	EXPECT_EQ(BPQ_RING_NEED_SYNC, ring_flags(&self->r) & BPQ_RING_NEED_SYNC);

	/* One record taken: room for one in the next lap, after a PAD. */
	take_expected(_metadata, &self->r, &e, 0, false);
	EXPECT_EQ(1, self->r.syncs);
	EXPECT_EQ(RING_MIN + REC(FILL_LEN), ring_tail(&self->r));
	ASSERT_TRUE(io_thread_wait(&w, 5000)) TH_LOG("writer still blocked");
	EXPECT_EQ(FILL_LEN, w.ret);
	ASSERT_EQ(0, bpq_get_stats(self->fd, &st));
	EXPECT_EQ(2, st.depth_msgs);
	EXPECT_LE(2, st.backpressure_applied);
	EXPECT_LT(0, st.blocked_ns);

	take_many(_metadata, &self->r, &e, 19);
	EXPECT_EQ(1, self->r.pad_recs);
	assert_drained(_metadata, &self->r);
	ASSERT_EQ(0, bpq_get_stats(self->fd, &st));
	EXPECT_EQ(20, st.enqueued_msgs);
	EXPECT_EQ(20, st.dequeued_msgs);
	assert_balanced(_metadata, self->fd);
}

TEST_F(ring, block_timeout_and_config_changes)
{
	struct expect e = { .seq = 1, .len = FILL_LEN };
	struct bpq_stats st;
	int64_t t0, dt;

	ASSERT_EQ(0, set_queue(self->fd, BPQ_STRATEGY_BLOCK, 2, MSG_MAX));
	ASSERT_EQ(0, open_ring(self, RING_MIN));
	fill_ring_and_queue(_metadata, self, 2);

	/* A setting that leaves max_msg_size alone is no problem. */
	ASSERT_EQ(0, bpq_set_write_timeout(self->fd, 100));
	t0 = now_ns();
	EXPECT_EQ(-ETIMEDOUT, write_msg(self->fd, 19, FILL_LEN));
	dt = now_ns() - t0;
	EXPECT_LE(100000000LL, dt);
	EXPECT_GT(5000000000LL, dt);
	ASSERT_EQ(0, bpq_get_stats(self->fd, &st));
	EXPECT_EQ(1, st.timeouts);
	EXPECT_EQ(2, st.depth_msgs);

	/* Capacity raised: the waiting room grows, the ring stays as it is. */
	ASSERT_EQ(0, set_queue(self->fd, BPQ_STRATEGY_BLOCK, 4, MSG_MAX));
	ASSERT_EQ(FILL_LEN, write_msg(self->nfd, 19, FILL_LEN));
	ASSERT_EQ(FILL_LEN, write_msg(self->nfd, 20, FILL_LEN));
	EXPECT_EQ(-EAGAIN, write_msg(self->nfd, 21, FILL_LEN));
	EXPECT_EQ(4, bpq_depth(self->fd));
	EXPECT_EQ(FILL_RING * REC(FILL_LEN), ring_tail(&self->r));

	take_many(_metadata, &self->r, &e, 21);
	assert_drained(_metadata, &self->r);
	assert_balanced(_metadata, self->fd);
}

TEST_F(ring, drop_newest)
{
	struct expect e = { .seq = 1, .len = FILL_LEN };
	struct bpq_stats st;

	ASSERT_EQ(0, set_queue(self->fd, BPQ_STRATEGY_DROP_NEWEST, 2,
			       MSG_MAX));
	ASSERT_EQ(0, open_ring(self, RING_MIN));
	fill_ring_and_queue(_metadata, self, 2);

	/* Ring and queue full: refused at once, even on a blocking file. */
	EXPECT_EQ(-ENOBUFS, write_msg(self->fd, 100, FILL_LEN));
	ASSERT_EQ(0, bpq_get_stats(self->fd, &st));
	EXPECT_EQ(1, st.dropped_newest);
	EXPECT_EQ(19, st.enqueued_msgs);
	EXPECT_EQ(2, st.depth_msgs);
	assert_balanced(_metadata, self->fd);

	/*
	 * The drop is reported by the first record the ring gets after it:
	 * message 17, which waited in the queue. Refused messages get no
	 * sequence number.
	 */
	take_many(_metadata, &self->r, &e, FILL_RING);
	take_expected(_metadata, &self->r, &e, 1, true);
	take_expected(_metadata, &self->r, &e, 0, true);
	ASSERT_EQ(FILL_LEN, write_msg(self->fd, e.n, FILL_LEN));
	take_expected(_metadata, &self->r, &e, 0, false);
	assert_drained(_metadata, &self->r);
	assert_balanced(_metadata, self->fd);
}

TEST_F(ring, drop_oldest)
{
	struct expect e = { .seq = 1, .len = FILL_LEN };
	struct bpq_stats st;
	int i;

	ASSERT_EQ(0, set_queue(self->fd, BPQ_STRATEGY_DROP_OLDEST, 2,
			       MSG_MAX));
	ASSERT_EQ(0, open_ring(self, RING_MIN));
	fill_ring_and_queue(_metadata, self, 2);

	/* Three more evict messages 17, 18 and 19: never the ring's. */
	for (i = 19; i < 22; i++) {
		ASSERT_EQ(FILL_LEN, write_msg(self->fd, i, FILL_LEN));
	}
	ASSERT_EQ(0, bpq_get_stats(self->fd, &st));
	EXPECT_EQ(22, st.enqueued_msgs);
	EXPECT_EQ(FILL_RING, st.dequeued_msgs);
	EXPECT_EQ(3, st.dropped_oldest);
	EXPECT_EQ(2, st.depth_msgs);
	assert_balanced(_metadata, self->fd);
	EXPECT_EQ(FILL_RING * REC(FILL_LEN), ring_tail(&self->r));

	take_many(_metadata, &self->r, &e, FILL_RING);
	/* a gap of three in the sequence, reported once */
	e.n += 3;
	e.seq += 3;
	take_expected(_metadata, &self->r, &e, 3, true);
	take_expected(_metadata, &self->r, &e, 0, true);
	assert_drained(_metadata, &self->r);
	ASSERT_EQ(0, bpq_get_stats(self->fd, &st));
	EXPECT_EQ(19, st.dequeued_msgs);
	assert_balanced(_metadata, self->fd);
}

static int grant(int fd, __u64 n)
{
	struct bpq_grant g = { .size = sizeof(g), .credits = n };

	return bpq_ioctl(fd, BPQ_IOC_GRANT, &g);
}

/* Credits still admit: an empty ring is no credit. */
TEST_F(ring, credit_still_admits)
{
	struct expect e = { .seq = 1, .len = 1 };
	struct bpq_stats st;
	int64_t t0;

	ASSERT_EQ(0, set_queue(self->fd, BPQ_STRATEGY_CREDIT, 16, MSG_MAX));
	ASSERT_EQ(0, open_ring(self, RING_MIN));
	EXPECT_EQ(-EAGAIN, write_msg(self->nfd, 0, 1));
	EXPECT_EQ(0, ring_tail(&self->r));
	ASSERT_EQ(0, bpq_get_stats(self->fd, &st));
	EXPECT_EQ(1, st.credit_starvation);
	EXPECT_EQ(0, st.enqueued_msgs);

	ASSERT_EQ(0, bpq_set_write_timeout(self->fd, 100));
	t0 = now_ns();
	EXPECT_EQ(-ETIMEDOUT, write_msg(self->fd, 0, 1));
	EXPECT_LE(100000000LL, now_ns() - t0);

	ASSERT_EQ(0, grant(self->fd, 2));
	EXPECT_EQ(1, write_msg(self->nfd, 0, 1));
	EXPECT_EQ(1, write_msg(self->nfd, 1, 1));
	EXPECT_EQ(-EAGAIN, write_msg(self->nfd, 2, 1));
	EXPECT_EQ(2 * REC(1), ring_tail(&self->r));
	ASSERT_EQ(0, bpq_get_stats(self->fd, &st));
	EXPECT_EQ(0, st.credits_available);
	EXPECT_EQ(2, st.dequeued_msgs);
	EXPECT_EQ(3, st.credit_starvation);

	/* Taking records from the ring grants nothing (auto_credit is 0). */
	take_many(_metadata, &self->r, &e, 2);
	EXPECT_EQ(-EAGAIN, write_msg(self->nfd, 2, 1));
	ASSERT_EQ(0, grant(self->fd, 1));
	EXPECT_EQ(1, write_msg(self->nfd, 2, 1));
	take_many(_metadata, &self->r, &e, 1);
	assert_drained(_metadata, &self->r);
	assert_balanced(_metadata, self->fd);
}

/* The adaptive rate still paces writers although the ring has room. */
TEST_F(ring, adaptive_still_paces)
{
	struct expect e = { .seq = 1, .len = 1 };
	struct bpq_config cfg;
	struct bpq_stats st;
	int i, ok = 0, again = 0;
	ssize_t ret;

	bpq_default_config(&cfg);
	cfg.strategy = BPQ_STRATEGY_ADAPTIVE;
	cfg.max_msg_size = MSG_MAX;
	cfg.min_rate = 10;
	cfg.max_rate = 20;
	ASSERT_EQ(0, bpq_set_config(self->fd, &cfg));
	ASSERT_EQ(0, open_ring(self, RING_MIN));

	/* at 20 msgs/s, 50 quick writes cannot all pass */
	for (i = 0; i < 50; i++) {
		ret = write_msg(self->nfd, ok, 1);
		if (ret == 1)
			ok++;
		else if (ret == -EAGAIN)
			again++;
	}
	EXPECT_EQ(50, ok + again);
	EXPECT_LT(0, again);
	EXPECT_LT(0, ok);
	ASSERT_EQ(0, bpq_get_stats(self->fd, &st));
	EXPECT_EQ(again, st.backpressure_applied);
	EXPECT_EQ(ok, st.dequeued_msgs);
	EXPECT_EQ(0, st.depth_msgs);
	EXPECT_EQ(ok * REC(1), ring_tail(&self->r));
	take_many(_metadata, &self->r, &e, ok);
	assert_drained(_metadata, &self->r);
}

/* ---- RING_SYNC with BPQ_RING_WAIT ---- */

TEST_F_TIMEOUT(ring, sync_wait_nonblock_and_timeout, 20)
{
	struct expect e = { .seq = 1, .len = 5 };
	int64_t t0, dt;
	int fl;

	ASSERT_EQ(0, open_ring(self, RING_MIN));
	EXPECT_EQ(-EAGAIN, ioc_sync(self->r.fd,
				    BPQ_RING_WAIT | BPQ_IO_NONBLOCK, 0));
	fl = fcntl(self->r.fd, F_GETFL);
	ASSERT_EQ(0, fcntl(self->r.fd, F_SETFL, fl | O_NONBLOCK));
	EXPECT_EQ(-EAGAIN, ioc_sync(self->r.fd, BPQ_RING_WAIT, 0));
	ASSERT_EQ(0, fcntl(self->r.fd, F_SETFL, fl));

	t0 = now_ns();
	EXPECT_EQ(-ETIMEDOUT, ioc_sync(self->r.fd,
				       BPQ_RING_WAIT | BPQ_IO_TIMEOUT, 0));
	EXPECT_GT(500000000LL, now_ns() - t0);
	t0 = now_ns();
	EXPECT_EQ(-ETIMEDOUT, ioc_sync(self->r.fd,
				       BPQ_RING_WAIT | BPQ_IO_TIMEOUT, 100));
	dt = now_ns() - t0;
	EXPECT_LE(100000000LL, dt);
	EXPECT_GT(5000000000LL, dt);

	/* A record there: no wait, whatever the flags. */
	ASSERT_EQ(5, write_msg(self->nfd, 0, 5));
	EXPECT_EQ(REC(5), ioc_sync(self->r.fd, BPQ_RING_WAIT, 0));
	EXPECT_EQ(REC(5), ioc_sync(self->r.fd,
				   BPQ_RING_WAIT | BPQ_IO_NONBLOCK, 0));
	EXPECT_EQ(REC(5), ioc_sync(self->r.fd,
				   BPQ_RING_WAIT | BPQ_IO_TIMEOUT, 0));
	take_many(_metadata, &self->r, &e, 1);
	EXPECT_EQ(-EAGAIN, ioc_sync(self->r.fd,
				    BPQ_RING_WAIT | BPQ_IO_NONBLOCK, 0));
}

/* Messages that wait in the queue count: WAIT moves them in first. */
TEST_F_TIMEOUT(ring, sync_wait_fills_first, 20)
{
	struct expect e = { .seq = 1, .len = 100 };
	struct bpq_ring_rec hdr;
	int i;

	ASSERT_EQ(0, open_ring(self, RING_MIN));
	fill_forty(_metadata, self);
	for (i = 0; i < 30; i++) {
		ASSERT_EQ(1, ring_take(&self->r, &hdr, rdbuf));
		e.n++;
		e.seq++;
	}
	ring_store_head(&self->r, self->r.head);
	/* from our head, past the 16 bytes at the end of the lap */
	EXPECT_EQ(RING_MIN + 10 * REC(100) - 30 * REC(100),
		  ioc_sync(self->r.fd, BPQ_RING_WAIT | BPQ_IO_NONBLOCK, 0));
	take_many(_metadata, &self->r, &e, 10);
	assert_drained(_metadata, &self->r);
}

TEST_F_TIMEOUT(ring, sync_wait_woken_by_writer, 20)
{
	struct expect e = { .seq = 1, .len = 5 };
	struct ioctl_thread t;

	ASSERT_EQ(0, open_ring(self, RING_MIN));
	ASSERT_EQ(0, ioctl_thread_start(&t, self->r.fd, false, BPQ_RING_WAIT,
					0));
	ASSERT_TRUE(wait_task_sleeping(t.tid, SYS_ioctl, 5000));
	sleep_ms(50);
	EXPECT_FALSE(__atomic_load_n(&t.done, __ATOMIC_ACQUIRE));
	ASSERT_EQ(5, write_msg(self->nfd, 0, 5));
	ASSERT_TRUE(ioctl_thread_wait(&t, 5000)) TH_LOG("not woken");
	EXPECT_EQ(REC(5), t.ret);
	take_many(_metadata, &self->r, &e, 1);

	/* again with a timeout that is not reached */
	ASSERT_EQ(0, ioctl_thread_start(&t, self->r.fd, false,
					BPQ_RING_WAIT | BPQ_IO_TIMEOUT, 10000));
	ASSERT_TRUE(wait_task_sleeping(t.tid, SYS_ioctl, 5000));
	ASSERT_EQ(5, write_msg(self->fd, 1, 5));
	ASSERT_TRUE(ioctl_thread_wait(&t, 5000)) TH_LOG("not woken");
	EXPECT_EQ(REC(5), t.ret);
	take_many(_metadata, &self->r, &e, 1);
}

TEST_F_TIMEOUT(ring, sync_wait_interrupted, 20)
{
	struct sigaction sa = { .sa_handler = on_signal }, old;
	struct ioctl_thread t;

	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0;	/* no SA_RESTART: EINTR */
	ASSERT_EQ(0, sigaction(SIGUSR1, &sa, &old));
	ASSERT_EQ(0, open_ring(self, RING_MIN));
	ASSERT_EQ(0, ioctl_thread_start(&t, self->r.fd, false, BPQ_RING_WAIT,
					0));
	ASSERT_TRUE(wait_task_sleeping(t.tid, SYS_ioctl, 5000));
	ASSERT_EQ(0, pthread_kill(t.thr, SIGUSR1));
	ASSERT_TRUE(ioctl_thread_wait(&t, 5000)) TH_LOG("not interrupted");
	EXPECT_EQ(-EINTR, t.ret);
	EXPECT_EQ(1, sig_count);
	sigaction(SIGUSR1, &old, NULL);
}

/* The queue destroyed under a waiting reader: ENODEV, the mapping stays. */
TEST_F_TIMEOUT(ring, sync_wait_queue_destroyed, 20)
{
	struct ioctl_thread t;
	struct bpq_ring_rec hdr;
	__u64 tail;

	ASSERT_EQ(0, open_ring(self, RING_MIN));
	ASSERT_EQ(3, write_msg(self->nfd, 0, 3));
	ASSERT_EQ(1, ring_take(&self->r, &hdr, rdbuf));
	ASSERT_EQ(0, ring_publish(&self->r));
	tail = ring_tail(&self->r);

	ASSERT_EQ(0, ioctl_thread_start(&t, self->r.fd, false, BPQ_RING_WAIT,
					0));
	ASSERT_TRUE(wait_task_sleeping(t.tid, SYS_ioctl, 5000));
	ASSERT_EQ(0, bpq_destroy(self->cfd, self->q));
	self->q = -1;
	ASSERT_TRUE(ioctl_thread_wait(&t, 5000)) TH_LOG("not woken");
	EXPECT_EQ(-ENODEV, t.ret);

	EXPECT_EQ(-ENODEV, ioc_sync(self->r.fd, 0, 0));
	EXPECT_EQ(-ENODEV, ioc_sync(self->r.fd, BPQ_RING_WAIT, 0));
	EXPECT_EQ(-ENODEV, write_msg(self->nfd, 1, 3));
	EXPECT_EQ(POLLERR | POLLHUP, poll_events(self->r.fd) &
				     (POLLERR | POLLHUP));
	/* the pages are still there to read and write */
	EXPECT_EQ(tail, ring_tail(&self->r));
	ring_store_head(&self->r, tail);
	EXPECT_EQ(RING_MIN, self->r.ctl->ring_bytes);
}

/* ---- the stream's end ---- */

static __u32 ring_end(struct ring *r)
{
	return __atomic_load_n(&r->ctl->end, __ATOMIC_ACQUIRE);
}

static int shutdown_stream(int fd, __u32 flags, __u32 error)
{
	struct bpq_shutdown s = {
		.size = sizeof(s),
		.flags = flags,
		.error = error,
	};

	return bpq_ioctl(fd, BPQ_IOC_SHUTDOWN, &s);
}

/*
 * Every message in the ring: the end is set at once, past the last
 * record; RING_SYNC WAIT returns what the ring holds, then end of file.
 * A reopen puts the end back to 0.
 */
TEST_F_TIMEOUT(ring, end_after_last_record, 20)
{
	struct expect e = { .seq = 1, .len = 10 };
	int i;

	ASSERT_EQ(0, open_ring(self, RING_MIN));
	EXPECT_EQ(0, ring_end(&self->r));
	for (i = 0; i < 3; i++) {
		ASSERT_EQ(10, write_msg(self->nfd, i, 10));
	}
	EXPECT_EQ(0, ring_end(&self->r));
	ASSERT_EQ(0, shutdown_stream(self->fd, BPQ_SHUTDOWN_COMPLETE, 0));
	EXPECT_EQ(BPQ_STREAM_COMPLETED, ring_end(&self->r));
	EXPECT_EQ(3 * REC(10), ring_tail(&self->r));
	EXPECT_EQ(3 * REC(10), ioc_sync(self->r.fd, BPQ_RING_WAIT, 0));
	take_many(_metadata, &self->r, &e, 3);
	EXPECT_EQ(0, ioc_sync(self->r.fd, BPQ_RING_WAIT, 0));
	EXPECT_EQ(0, ioc_sync(self->r.fd, BPQ_RING_WAIT | BPQ_IO_NONBLOCK, 0));
	EXPECT_EQ(0, ioc_sync(self->r.fd, BPQ_RING_WAIT | BPQ_IO_TIMEOUT, 0));
	EXPECT_EQ(3 * REC(10), ring_tail(&self->r));
	EXPECT_EQ(BPQ_STREAM_COMPLETED, ring_end(&self->r));
	EXPECT_EQ(-EPIPE, send_batch(self->fd, 3, 1, var_len, 0));
	EXPECT_EQ(3 * REC(10), ring_tail(&self->r));

	ASSERT_EQ(0, shutdown_stream(self->fd, BPQ_SHUTDOWN_REOPEN, 0));
	EXPECT_EQ(0, ring_end(&self->r));
	ASSERT_EQ(10, write_msg(self->nfd, 3, 10));
	EXPECT_EQ(0, ring_end(&self->r));
	take_many(_metadata, &self->r, &e, 1);
	EXPECT_EQ(-EAGAIN, ioc_sync(self->r.fd,
				    BPQ_RING_WAIT | BPQ_IO_NONBLOCK, 0));
	assert_balanced(_metadata, self->fd);
}

/*
 * Messages that wait in the queue for room: the end is set only once the
 * last of them is in the ring. A failed stream's reader then gets
 * ECONNRESET from RING_SYNC WAIT.
 */
TEST_F_TIMEOUT(ring, end_after_waiting_messages, 20)
{
	struct expect e = { .seq = 1, .len = 100 };
	struct bpq_stats st;
	int i;

	ASSERT_EQ(0, open_ring(self, RING_MIN));
	fill_forty(_metadata, self);
	ASSERT_EQ(0, shutdown_stream(self->fd, BPQ_SHUTDOWN_FAIL, EIO));
	EXPECT_EQ(0, ring_end(&self->r));
	for (i = 0; i < 40; i++) {
		take_expected(_metadata, &self->r, &e, 0, true);
		ASSERT_EQ(0, bpq_get_stats(self->fd, &st));
		if (st.depth_msgs) {
			ASSERT_EQ(0, ring_end(&self->r))
				TH_LOG("end set with %llu messages waiting",
				       (unsigned long long)st.depth_msgs);
		} else {
			ASSERT_EQ(BPQ_STREAM_FAILED, ring_end(&self->r))
				TH_LOG("end not set after message %d of 40",
				       i + 1);
		}
	}
	EXPECT_EQ(self->r.head, ring_tail(&self->r));
	EXPECT_EQ(-ECONNRESET, ioc_sync(self->r.fd, BPQ_RING_WAIT, 0));
	EXPECT_EQ(-ECONNRESET, ioc_sync(self->r.fd,
					BPQ_RING_WAIT | BPQ_IO_NONBLOCK, 0));
	ASSERT_EQ(0, bpq_get_stats(self->fd, &st));
	EXPECT_EQ(40, st.dequeued_msgs);
	EXPECT_EQ(BPQ_STREAM_FAILED, st.stream);
	EXPECT_EQ(EIO, st.stream_error);

	/* open again: no end, and new records come */
	ASSERT_EQ(0, shutdown_stream(self->fd, BPQ_SHUTDOWN_REOPEN, 0));
	EXPECT_EQ(0, ring_end(&self->r));
	ASSERT_EQ(100, write_msg(self->nfd, 40, 100));
	take_many(_metadata, &self->r, &e, 1);
	assert_balanced(_metadata, self->fd);
}

/* A cancel that discards takes what waits; the ring's records stay. */
TEST_F_TIMEOUT(ring, end_after_cancel_discard, 20)
{
	struct expect e = { .seq = 1, .len = 100 };
	struct bpq_stats st;

	ASSERT_EQ(0, open_ring(self, RING_MIN));
	fill_forty(_metadata, self);
	EXPECT_EQ(10, shutdown_stream(self->fd, BPQ_SHUTDOWN_CANCEL |
						BPQ_SHUTDOWN_DISCARD, 0));
	EXPECT_EQ(BPQ_STREAM_CANCELLED, ring_end(&self->r));
	EXPECT_EQ(30 * REC(100), ring_tail(&self->r));
	ASSERT_EQ(0, bpq_get_stats(self->fd, &st));
	EXPECT_EQ(10, st.flushed);
	EXPECT_EQ(0, st.depth_msgs);
	take_many(_metadata, &self->r, &e, 30);
	EXPECT_EQ(0, ioc_sync(self->r.fd, BPQ_RING_WAIT, 0));
	EXPECT_EQ(30 * REC(100), ring_tail(&self->r));
	assert_balanced(_metadata, self->fd);
}

/* A reader asleep in RING_SYNC WAIT is woken by each end. */
TEST_F_TIMEOUT(ring, end_wakes_sync_waiter, 30)
{
	static const struct {
		__u32 flags, error;
		int ret;
	} ends[] = {
		{ BPQ_SHUTDOWN_COMPLETE, 0, 0 },
		{ BPQ_SHUTDOWN_FAIL, EPIPE, -ECONNRESET },
		{ BPQ_SHUTDOWN_CANCEL, 0, 0 },
		{ BPQ_SHUTDOWN_CANCEL | BPQ_SHUTDOWN_DISCARD, 0, 0 },
	};
	struct ioctl_thread t;
	unsigned int i;

	ASSERT_EQ(0, open_ring(self, RING_MIN));
	for (i = 0; i < ARRAY_LEN(ends); i++) {
		ASSERT_EQ(0, ioctl_thread_start(&t, self->r.fd, false,
						BPQ_RING_WAIT, 0));
		ASSERT_TRUE(wait_task_sleeping(t.tid, SYS_ioctl, 5000));
		EXPECT_FALSE(ioctl_thread_done(&t));
		ASSERT_EQ(0, shutdown_stream(self->fd, ends[i].flags,
					     ends[i].error));
		ASSERT_TRUE(ioctl_thread_wait(&t, 5000))
			TH_LOG("end %u: not woken", i);
		EXPECT_EQ(ends[i].ret, t.ret) TH_LOG("end %u", i);
		EXPECT_NE(0, ring_end(&self->r));
		ASSERT_EQ(0, shutdown_stream(self->fd, BPQ_SHUTDOWN_REOPEN, 0));
		EXPECT_EQ(0, ring_end(&self->r));
	}
}

/* ---- other files while the ring exists ---- */

static int recv_batch(int fd, __u32 flags)
{
	struct bpq_msg_info infos[4];
	char buf[256];
	struct bpq_recv_batch b = {
		.size = sizeof(b),
		.flags = flags,
		.buf = (uintptr_t)buf,
		.buf_len = sizeof(buf),
		.max_records = ARRAY_LEN(infos),
		.infos = (uintptr_t)infos,
	};

	return bpq_ioctl(fd, BPQ_IOC_RECV_BATCH, &b);
}

/* Every receive path of every file says EBUSY, at once. */
static void assert_receives_busy(struct __test_metadata *_metadata,
				 FIXTURE_DATA(ring) *self)
{
	int fds[3] = { self->fd, self->nfd, self->r.fd };
	char buf[256];
	struct iovec iov = { buf, sizeof(buf) };
	unsigned int i;
	int64_t t0;

	for (i = 0; i < ARRAY_LEN(fds); i++) {
		t0 = now_ns();
		EXPECT_EQ(-EBUSY, bpq_read(fds[i], buf, sizeof(buf)))
			TH_LOG("file %u", i);
		EXPECT_EQ(-1, readv(fds[i], &iov, 1));
		EXPECT_EQ(EBUSY, errno);
		EXPECT_EQ(-EBUSY, bpq_recv(fds[i], buf, sizeof(buf), 0, 0,
					   NULL)) TH_LOG("file %u", i);
		EXPECT_EQ(-EBUSY, bpq_recv(fds[i], buf, sizeof(buf),
					   BPQ_IO_NONBLOCK, 0, NULL));
		EXPECT_EQ(-EBUSY, bpq_recv(fds[i], buf, sizeof(buf),
					   BPQ_IO_TIMEOUT, 100, NULL));
		EXPECT_EQ(-EBUSY, recv_batch(fds[i], 0)) TH_LOG("file %u", i);
		EXPECT_EQ(-EBUSY, recv_batch(fds[i], BPQ_IO_NONBLOCK));
		EXPECT_GT(90000000LL, now_ns() - t0) TH_LOG("file %u waited", i);
	}
}

TEST_F_TIMEOUT(ring, receives_busy, 30)
{
	struct bpq_stats st;
	struct io_thread rd;
	int i;

	ASSERT_EQ(0, open_ring(self, RING_MIN));

	/*
	 * A blocking read() on an empty queue: EBUSY, not a sleep. It runs
	 * on a thread so that a wrong wait cannot hang the test.
	 */
	ASSERT_EQ(0, io_thread_start(&rd, self->fd, IO_READ, NULL, 64));
	if (!io_thread_wait(&rd, 2000)) {
		ASSERT_EQ(1, write_msg(self->nfd, 0, 1));
		ring_close(&self->r);
		io_thread_wait(&rd, 5000);
		ASSERT_TRUE(false) TH_LOG("read() slept with a ring on the queue");
	}
	EXPECT_EQ(-EBUSY, rd.ret);
	assert_receives_busy(_metadata, self);

	/* With messages in the ring and waiting in the queue alike. */
	for (i = 0; i < 40; i++) {
		ASSERT_EQ(100, write_msg(self->nfd, i, 100));
	}
	assert_receives_busy(_metadata, self);
	ASSERT_EQ(0, bpq_get_stats(self->fd, &st));
	EXPECT_EQ(10, st.depth_msgs);
	EXPECT_EQ(30, st.dequeued_msgs);
}

TEST_F(ring, set_config_max_msg_size)
{
	struct bpq_config cfg;

	ASSERT_EQ(0, open_ring(self, RING_MIN));
	/* up to what the ring takes: 2 * (32 + 2016) = 4096 */
	EXPECT_EQ(0, set_queue(self->fd, BPQ_STRATEGY_BLOCK, 0, 2016));
	EXPECT_EQ(-EBUSY, set_queue(self->fd, BPQ_STRATEGY_BLOCK, 0, 2017));
	EXPECT_EQ(-EBUSY, set_queue(self->fd, BPQ_STRATEGY_BLOCK, 0,
				    BPQ_RING_MSG_MAX));
	EXPECT_EQ(-EBUSY, set_queue(self->fd, BPQ_STRATEGY_DROP_OLDEST, 0,
				    BPQ_RING_MSG_MAX + 1));
	ASSERT_EQ(0, bpq_get_config(self->fd, &cfg));
	EXPECT_EQ(2016, cfg.max_msg_size);
	EXPECT_EQ(BPQ_STRATEGY_BLOCK, cfg.strategy);
	EXPECT_EQ(2016, write_msg(self->nfd, 0, 2016));
	EXPECT_EQ(-EMSGSIZE, write_msg(self->nfd, 0, 2017));

	/* lower is fine, and holds */
	EXPECT_EQ(0, set_queue(self->fd, BPQ_STRATEGY_DROP_NEWEST, 8, 500));
	EXPECT_EQ(-EMSGSIZE, write_msg(self->nfd, 0, 501));
	EXPECT_EQ(500, write_msg(self->nfd, 0, 500));

	/* the ring gone, anything goes again */
	ring_close(&self->r);
	EXPECT_EQ(0, set_queue(self->fd, BPQ_STRATEGY_BLOCK, 0,
			       BPQ_RING_MSG_MAX + 1));
}

/* Counters at every quiet point, with evictions and a flush. */
TEST_F(ring, stats_reconcile)
{
	struct expect e = { .seq = 1, .len = FILL_LEN };
	struct bpq_stats st;
	int i;

	ASSERT_EQ(0, set_queue(self->fd, BPQ_STRATEGY_DROP_OLDEST, 4,
			       MSG_MAX));
	ASSERT_EQ(0, open_ring(self, RING_MIN));
	for (i = 0; i < 25; i++) {
		ASSERT_EQ(FILL_LEN, write_msg(self->fd, i, FILL_LEN));
		assert_balanced(_metadata, self->fd);
	}
	ASSERT_EQ(0, bpq_get_stats(self->fd, &st));
	EXPECT_EQ(25, st.enqueued_msgs);
	EXPECT_EQ(25 * FILL_LEN, st.enqueued_bytes);
	EXPECT_EQ(FILL_RING, st.dequeued_msgs);
	EXPECT_EQ(FILL_RING * FILL_LEN, st.dequeued_bytes);
	EXPECT_EQ(4, st.dropped_oldest);
	EXPECT_EQ(4, st.depth_msgs);
	EXPECT_EQ(4 * FILL_LEN, st.depth_bytes);
	EXPECT_EQ(st.dequeued_msgs, bpq_sysfs_u64(self->q, "stats/dequeued_msgs"));
	EXPECT_EQ(st.depth_msgs, bpq_sysfs_u64(self->q, "depth_msgs"));

	/* A flush discards what waits, never what is in the ring. */
	EXPECT_EQ(4, bpq_flush(self->fd));
	ASSERT_EQ(0, bpq_get_stats(self->fd, &st));
	EXPECT_EQ(4, st.flushed);
	EXPECT_EQ(0, st.depth_msgs);
	EXPECT_EQ(FILL_RING * REC(FILL_LEN), ring_tail(&self->r));
	assert_balanced(_metadata, self->fd);

	for (i = 25; i < 28; i++) {
		ASSERT_EQ(FILL_LEN, write_msg(self->fd, i, FILL_LEN));
	}
	take_many(_metadata, &self->r, &e, FILL_RING);
	e.n = 25;
	e.seq = 26;
	take_expected(_metadata, &self->r, &e, 4, true);
	take_many(_metadata, &self->r, &e, 2);
	assert_drained(_metadata, &self->r);
	ASSERT_EQ(0, bpq_get_stats(self->fd, &st));
	EXPECT_EQ(28, st.enqueued_msgs);
	EXPECT_EQ(FILL_RING + 3, st.dequeued_msgs);
	EXPECT_EQ(4, st.dropped_oldest);
	EXPECT_EQ(4, st.flushed);
	EXPECT_EQ(0, st.depth_msgs);
	assert_balanced(_metadata, self->fd);
}

/* ---- poll ---- */

TEST_F_TIMEOUT(ring, poll_ring_file, 20)
{
	struct pollfd pfd = { .events = POLLIN };
	struct late_writer w = { .delay_ms = 100, .n = 1, .len = 9 };
	struct expect e = { .seq = 1, .len = 9 };
	short ev;

	ASSERT_EQ(0, open_ring(self, RING_MIN));
	EXPECT_EQ(0, poll_events(self->r.fd) & P_IN);
	ASSERT_EQ(9, write_msg(self->nfd, 0, 9));
	ev = poll_events(self->r.fd);
	EXPECT_EQ(POLLIN, ev & POLLIN);
	EXPECT_EQ(POLLRDNORM, ev & POLLRDNORM);
	take_many(_metadata, &self->r, &e, 1);
	EXPECT_EQ(0, poll_events(self->r.fd) & P_IN);

	/* a sleeping poll() is woken by a writer */
	w.fd = self->nfd;
	pfd.fd = self->r.fd;
	ASSERT_EQ(0, pthread_create(&w.thr, NULL, late_writer_fn, &w));
	EXPECT_EQ(1, poll(&pfd, 1, 5000));
	EXPECT_EQ(POLLIN, pfd.revents & POLLIN);
	pthread_join(w.thr, NULL);
	EXPECT_EQ(9, w.ret);
	take_many(_metadata, &self->r, &e, 1);
	EXPECT_EQ(0, poll_events(self->r.fd) & P_IN);
}

/*
 * Messages waiting for room make the ring's file readable, but a poll
 * only reports: they move in at the sync, not at the poll.
 */
TEST_F(ring, poll_reports_waiting_without_moving_them)
{
	struct expect e = { .n = 30, .seq = 31, .len = 100 };
	struct bpq_ring_rec hdr;
	struct bpq_stats st;
	__u64 tail;
	int i;

	ASSERT_EQ(0, open_ring(self, RING_MIN));
	fill_forty(_metadata, self);
	/* all thirty taken, the head stored, but no RING_SYNC */
	for (i = 0; i < 30; i++) {
		ASSERT_EQ(1, ring_take(&self->r, &hdr, rdbuf));
	}
	ring_store_head(&self->r, self->r.head);
	tail = ring_tail(&self->r);
	EXPECT_EQ(self->r.head, tail);

	EXPECT_EQ(POLLIN, poll_events(self->r.fd) & POLLIN);
	EXPECT_EQ(POLLIN, poll_events(self->r.fd) & POLLIN);
	EXPECT_EQ(tail, ring_tail(&self->r));
	ASSERT_EQ(0, bpq_get_stats(self->fd, &st));
	EXPECT_EQ(10, st.depth_msgs);

	/* the records, and a pad where they wrap */
	ASSERT_LE(10 * REC(100), ioc_sync(self->r.fd, 0, 0));
	take_many(_metadata, &self->r, &e, 10);
	EXPECT_EQ(0, poll_events(self->r.fd) & P_IN);
}

/* ---- the ring's end ---- */

TEST_F(ring, close_leaves_waiting_messages)
{
	struct bpq_msg_info info;
	struct bpq_stats st;
	struct bpq_ring_rec hdr;
	int i;

	ASSERT_EQ(0, open_ring(self, RING_MIN));
	fill_forty(_metadata, self);
	/* three taken, but no RING_SYNC: the ten still wait */
	for (i = 0; i < 3; i++) {
		ASSERT_EQ(1, ring_take(&self->r, &hdr, rdbuf));
	}
	ring_store_head(&self->r, self->r.head);
	ring_close(&self->r);

	/* The ten that waited, in order, by read() and RECV. */
	for (i = 30; i < 40; i++) {
		memset(rdbuf, 0, 128);
		if (i & 1) {
			ASSERT_EQ(100, bpq_read(self->nfd, rdbuf, sizeof(rdbuf)));
		} else {
			ASSERT_EQ(100, bpq_recv(self->nfd, rdbuf, sizeof(rdbuf),
						0, 0, &info));
			EXPECT_EQ(i + 1, info.seq);
		}
		ASSERT_TRUE(check_pattern(rdbuf, 100, i)) TH_LOG("message %d", i);
	}
	EXPECT_EQ(-EAGAIN, bpq_read(self->nfd, rdbuf, sizeof(rdbuf)));
	ASSERT_EQ(0, bpq_get_stats(self->fd, &st));
	EXPECT_EQ(40, st.enqueued_msgs);
	EXPECT_EQ(40, st.dequeued_msgs);
	EXPECT_EQ(0, st.depth_msgs);
	assert_balanced(_metadata, self->fd);

	/* And the queue can have a new ring. */
	ASSERT_EQ(0, open_ring(self, RING_MIN));
	ASSERT_EQ(1, write_msg(self->nfd, 40, 1));
	EXPECT_EQ(REC(1), ring_tail(&self->r));
}

/* The mapping keeps the ring after close(); munmap() ends it. */
TEST_F(ring, ring_lives_until_munmap)
{
	struct expect e = { .seq = 1, .len = 20 };
	char buf[64];
	int fd2;

	ASSERT_EQ(0, open_ring(self, RING_MIN));
	close(self->r.fd);
	self->r.fd = -1;

	EXPECT_EQ(-EBUSY, bpq_read(self->nfd, buf, sizeof(buf)));
	EXPECT_EQ(-EBUSY, try_setup(self->q, RING_MIN));
	ASSERT_EQ(20, write_msg(self->nfd, 0, 20));
	EXPECT_EQ(REC(20), ring_tail(&self->r));
	EXPECT_EQ(0, bpq_depth(self->fd));
	/* reading goes on without a file: no NEED_SYNC, no sync needed */
	take_expected(_metadata, &self->r, &e, 0, false);

	ring_unmap(&self->r);
	ASSERT_TRUE(no_ring(self));
	ASSERT_EQ(5, write_msg(self->nfd, 1, 5));
	EXPECT_EQ(5, bpq_read(self->nfd, buf, sizeof(buf)));
	fd2 = bpq_open(self->q, O_RDWR);
	ASSERT_LE(0, fd2);
	EXPECT_EQ(0, ioc_setup(fd2, RING_MIN, NULL));
	close(fd2);
}

/* A forked child's mapping keeps the ring, as does a part of one. */
TEST_F_TIMEOUT(ring, mapping_outlives_fd_fork_and_split, 30)
{
	struct ring *r = &self->r;
	int go[2], status;
	char c = 0, buf[8];
	pid_t pid;

	ASSERT_EQ(0, open_ring(self, RING_MIN));
	ASSERT_EQ(0, pipe(go));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		struct bpq_ring_rec hdr;
		int ok;

		close(r->fd);
		if (read(go[0], &c, 1) != 1)
			_exit(2);
		ok = ring_take(r, &hdr, rdbuf) == 1 && hdr.len == 6 &&
		     hdr.seq == 1 && check_pattern(rdbuf, 6, 1);
		_exit(ok ? 0 : 1);
	}
	close(go[0]);

	/* our fd and mapping gone, the child's mapping keeps the ring */
	ring_close(r);
	EXPECT_EQ(-EBUSY, bpq_read(self->nfd, buf, sizeof(buf)));
	ASSERT_EQ(6, write_msg(self->nfd, 1, 6));
	EXPECT_EQ(0, bpq_depth(self->fd));
	ASSERT_EQ(1, write(go[1], &c, 1));
	close(go[1]);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
		TH_LOG("the child did not find the record");
	ASSERT_TRUE(no_ring(self));

	/* the first page alone keeps it too; growing the mapping fails */
	ASSERT_EQ(0, open_ring(self, RING_MIN));
	EXPECT_TRUE(mremap(r->map, r->map_len, r->map_len + page_size(),
			   0) == MAP_FAILED);
	ASSERT_EQ(0, munmap(r->data, RING_MIN));
	r->map_len = page_size();
	close(r->fd);
	r->fd = -1;
	ASSERT_EQ(6, write_msg(self->nfd, 2, 6));
	EXPECT_EQ(REC(6), ring_tail(r));
	EXPECT_EQ(-EBUSY, bpq_read(self->nfd, buf, sizeof(buf)));
	ring_unmap(r);
	ASSERT_TRUE(no_ring(self));
}

/* ---- a reader that gets it wrong ---- */

/* Writes that must neither hang nor fail otherwise than for a full queue. */
static void write_some(struct __test_metadata *_metadata,
		       FIXTURE_DATA(ring) *self, unsigned int *n, int count)
{
	ssize_t ret;
	int i;

	for (i = 0; i < count; i++) {
		ret = write_msg(self->nfd, *n, 100);
		ASSERT_TRUE(ret == 100 || ret == -EAGAIN)
			TH_LOG("write: %zd", ret);
		if (ret == 100)
			(*n)++;
	}
}

/*
 * head moved wrong in every way: beyond tail, backwards, unaligned, huge.
 * The kernel must survive it and writers must go on; once the reader
 * stores a sane head again, the ring works as before.
 */
TEST_F_TIMEOUT(ring, garbage_head, 60)
{
	struct ring *r = &self->r;
	struct bpq_ring_rec hdr;
	struct expect e = { .len = 100 };
	unsigned int n = 0, i;
	__u64 tail, prev = 0, bad[8];
	int ret;

	ASSERT_EQ(0, set_queue(self->fd, BPQ_STRATEGY_BLOCK, 8, MSG_MAX));
	ASSERT_EQ(0, open_ring(self, RING_MIN));
	write_some(_metadata, self, &n, 5);

	for (i = 0; i < ARRAY_LEN(bad); i++) {
		tail = ring_tail(r);
		bad[0] = tail + 100000;
		bad[1] = tail + 1;
		bad[2] = tail + RING_MIN + 8;
		bad[3] = 0;
		bad[4] = tail > 3 ? tail - 3 : 3;
		bad[5] = ~0ULL;
		bad[6] = ~0ULL - RING_MIN;
		bad[7] = 1ULL << 63;
		ring_store_head(r, bad[i]);
		ret = ioc_sync(r->fd, 0, 0);
		TH_LOG("head %llu, tail %llu: RING_SYNC %d",
		       (unsigned long long)bad[i], (unsigned long long)tail,
		       ret);
		EXPECT_TRUE(ret >= 0 || ret == -EINVAL || ret == -EIO)
			TH_LOG("RING_SYNC: %d", ret);
		ret = ioc_sync(r->fd, BPQ_RING_WAIT | BPQ_IO_NONBLOCK, 0);
		EXPECT_TRUE(ret >= 0 || ret == -EAGAIN || ret == -EINVAL ||
			    ret == -EIO) TH_LOG("RING_SYNC WAIT: %d", ret);
		poll_events(r->fd);
		write_some(_metadata, self, &n, 40);
		assert_balanced(_metadata, self->fd);
	}

	/*
	 * A sane head again: everything from tail on is well formed, and
	 * what waited comes in order, each payload matching its number.
	 */
	r->head = ring_tail(r);
	ring_store_head(r, r->head);
	ASSERT_LE(0, ioc_sync(r->fd, 0, 0));
	for (;;) {
		ret = ring_take(r, &hdr, rdbuf);
		if (ret == 0) {
			ASSERT_EQ(0, ring_publish(r));
			ASSERT_LE(0, ioc_sync(r->fd, 0, 0));
			ret = ring_take(r, &hdr, rdbuf);
			if (ret == 0)
				break;
		}
		ASSERT_EQ(1, ret) TH_LOG("malformed ring after a sane head");
		ASSERT_EQ(100, hdr.len);
		ASSERT_LE(1, hdr.seq);
		ASSERT_TRUE(check_pattern(rdbuf, 100, hdr.seq - 1))
			TH_LOG("seq %llu", (unsigned long long)hdr.seq);
		if (prev) {
			ASSERT_EQ(prev + 1, hdr.seq) TH_LOG("out of order");
		}
		prev = hdr.seq;
		ASSERT_EQ(0, ring_publish(r));
	}
	/* the last one written was the last one to come */
	if (prev) {
		EXPECT_EQ(n, prev);
	}
	EXPECT_EQ(0, bpq_depth(self->fd));
	assert_balanced(_metadata, self->fd);

	/* Writers and the ring as new. */
	for (i = 0; i < 50; i++) {
		e.n = n;
		e.seq = n + 1;
		ASSERT_EQ(100, write_msg(self->nfd, n, 100));
		n++;
		take_expected(_metadata, r, &e, 0, false);
	}
	assert_drained(_metadata, r);
}

/*
 * The rest of the first page is the kernel's to write, but the reader can
 * scribble on it too: the kernel must keep its own tail and ring size,
 * publish the right tail with its next record, and never read the data
 * area back.
 */
TEST_F(ring, garbage_ctl_and_data)
{
	struct expect e = { .seq = 1, .len = 100 };
	struct ring *r = &self->r;
	int i;

	ASSERT_EQ(0, open_ring(self, RING_MIN));
	ASSERT_EQ(100, write_msg(self->nfd, 0, 100));
	take_many(_metadata, r, &e, 1);

	r->ctl->tail = 0xdeadbeefdeadbeefULL;
	r->ctl->ring_bytes = 0xffffffffU;
	r->ctl->flags = 0xffffffffU;
	memset(r->ctl->__pad_head, 0xa5, sizeof(r->ctl->__pad_head));
	memset(r->data, 0xff, RING_MIN);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	ioc_sync(r->fd, 0, 0);

	for (i = 1; i < 60; i++) {
		ASSERT_EQ(100, write_msg(self->nfd, i, 100));
		ASSERT_EQ(rec_end(r->bytes, r->head, 100), ring_tail(r))
			TH_LOG("message %d: the kernel kept the reader's tail", i);
		take_expected(_metadata, r, &e, 0, false);
	}
	assert_drained(_metadata, r);
	assert_balanced(_metadata, self->fd);
}

/* ---- a writer stalled in its copy ---- */

/* One write() or one-message SEND_BATCH from a buffer, on a thread. */
struct sender {
	pthread_t thr;
	int fd;
	bool batch;
	void *buf;
	size_t len;
	int done;
	ssize_t ret;
};

static void *sender_fn(void *arg)
{
	struct sender *sd = arg;
	struct bpq_iovec iov = {
		.base = (uintptr_t)sd->buf,
		.len = sd->len,
	};
	struct bpq_send_batch b = {
		.size = sizeof(b),
		.msgs = (uintptr_t)&iov,
		.count = 1,
	};

	if (sd->batch)
		sd->ret = bpq_ioctl(sd->fd, BPQ_IOC_SEND_BATCH, &b);
	else
		sd->ret = bpq_write(sd->fd, sd->buf, sd->len);
	__atomic_store_n(&sd->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

/*
 * A writer on the fast path whose payload faults (userfaultfd) while
 * another writer's message comes in: both end up in the ring, and the
 * ring shows them in the order of their sequence numbers and times.
 */
TEST_F_TIMEOUT(ring, stalled_writer_keeps_order, 30)
{
	struct bpq_ring_rec h[2];
	struct uffd_area u;
	struct sender sd;
	const char *why;
	int op, k, ret;
	int64_t t0;

	why = uffd_open(&u, 2);
	if (why)
		SKIP(return, "%s", why);
	ASSERT_EQ(0, open_ring(self, RING_MIN));

	for (op = 0; op < 2; op++) {
		memset(&sd, 0, sizeof(sd));
		sd.fd = self->fd;
		sd.batch = op;
		sd.buf = u.area + op * page_size();
		sd.len = 100;
		ASSERT_EQ(0, pthread_create(&sd.thr, NULL, sender_fn, &sd));
		ASSERT_TRUE(uffd_fault_seen(&u, 5000)) TH_LOG("no fault");

		/* another writer meanwhile is not held up */
		t0 = now_ns();
		ASSERT_EQ(50, write_msg(self->nfd, op, 50));
		EXPECT_GT(1000000000LL, now_ns() - t0);
		ret = ioc_sync(self->r.fd, BPQ_RING_WAIT | BPQ_IO_TIMEOUT, 200);
		TH_LOG("%s stalled: RING_SYNC WAIT with another message queued: %d",
		       op ? "SEND_BATCH" : "write()", ret);
		EXPECT_FALSE(__atomic_load_n(&sd.done, __ATOMIC_ACQUIRE));

		ASSERT_EQ(0, uffd_zero(&u, sd.buf));
		pthread_join(sd.thr, NULL);
		EXPECT_EQ(op ? 1 : 100, sd.ret);

		for (k = 0; k < 2; k++) {
			ret = ring_take(&self->r, &h[k], rdbuf);
			if (ret == 0) {
				ASSERT_LE(0, ioc_sync(self->r.fd, 0, 0));
				ret = ring_take(&self->r, &h[k], rdbuf);
			}
			ASSERT_EQ(1, ret);
			ASSERT_EQ(0, ring_publish(&self->r));
			TH_LOG("record %d: seq %llu, %u bytes", k,
			       (unsigned long long)h[k].seq, h[k].len);
		}
		EXPECT_LT(h[0].seq, h[1].seq)
			TH_LOG("%s: the ring is out of sequence order",
			       op ? "SEND_BATCH" : "write()");
		EXPECT_LE(h[0].timestamp_ns, h[1].timestamp_ns);
		assert_drained(_metadata, &self->r);
	}
	munmap(u.area, u.len);
	close(u.fd);
}

/*
 * A writer whose copy stalls must not hold up the others: a message
 * written meanwhile reaches the reader, the stalled one follows when its
 * page comes. (A stalled copy blocks no other task: bpq(4), The writers.)
 */
TEST_F_TIMEOUT(ring, stalled_writer_holds_up_no_one, 30)
{
	struct sender sd = { .len = 100 };
	struct bpq_ring_rec hdr;
	struct uffd_area u;
	const char *why;
	int ret;

	why = uffd_open(&u, 1);
	if (why)
		SKIP(return, "%s", why);
	ASSERT_EQ(0, open_ring(self, RING_MIN));
	sd.fd = self->fd;
	sd.buf = u.area;
	ASSERT_EQ(0, pthread_create(&sd.thr, NULL, sender_fn, &sd));
	ASSERT_TRUE(uffd_fault_seen(&u, 5000)) TH_LOG("no fault");

	ASSERT_EQ(50, write_msg(self->nfd, 0, 50));
	ret = ioc_sync(self->r.fd, BPQ_RING_WAIT | BPQ_IO_TIMEOUT, 2000);
	EXPECT_LT(0, ret) TH_LOG("RING_SYNC WAIT: %d with %llu message(s) queued",
				 ret, (unsigned long long)bpq_depth(self->fd));
	if (ret > 0) {
		ASSERT_EQ(1, ring_take(&self->r, &hdr, rdbuf));
		EXPECT_EQ(50, hdr.len);
		EXPECT_TRUE(check_pattern(rdbuf, 50, 0));
		ASSERT_EQ(0, ring_publish(&self->r));
	}

	ASSERT_EQ(0, uffd_zero(&u, u.area));
	pthread_join(sd.thr, NULL);
	EXPECT_EQ(100, sd.ret);
	assert_balanced(_metadata, self->fd);
	munmap(u.area, u.len);
	close(u.fd);
}

/* SEND_BATCH of @n messages of @len bytes at @bufs[i]. */
static int send_bufs(int fd, void **bufs, int n, size_t len)
{
	struct bpq_iovec iov[4];
	struct bpq_send_batch b = {
		.size = sizeof(b),
		.msgs = (uintptr_t)iov,
		.count = n,
	};
	int k;

	memset(iov, 0, sizeof(iov));
	for (k = 0; k < n; k++) {
		iov[k].base = (uintptr_t)bufs[k];
		iov[k].len = len;
	}
	return bpq_ioctl(fd, BPQ_IOC_SEND_BATCH, &b);
}

/*
 * A batch that faults part way queues the messages before the fault and
 * leaves no hole in the sequence numbers, nor a loss.
 */
TEST_F(ring, batch_fault_leaves_no_hole)
{
	struct expect e = { .seq = 1, .len = 10 };
	struct bpq_stats st;
	unsigned char good[2][10];
	void *bad, *bufs[3];

	bad = mmap(NULL, page_size(), PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS,
		   -1, 0);
	ASSERT_TRUE(bad != MAP_FAILED);
	ASSERT_EQ(0, open_ring(self, RING_MIN));
	fill_pattern(good[0], 10, 0);
	fill_pattern(good[1], 10, 2);

	/* the second faults: one queued */
	bufs[0] = good[0];
	bufs[1] = bad;
	bufs[2] = good[1];
	EXPECT_EQ(1, send_bufs(self->fd, bufs, 3, 10));
	/* the first faults: nothing */
	bufs[0] = bad;
	EXPECT_EQ(-EFAULT, send_bufs(self->fd, bufs, 1, 10));
	EXPECT_EQ(-EFAULT, send_bufs(self->fd, bufs, 2, 10));

	ASSERT_EQ(10, write_msg(self->nfd, 1, 10));
	take_many(_metadata, &self->r, &e, 2);
	assert_drained(_metadata, &self->r);
	ASSERT_EQ(0, bpq_get_stats(self->fd, &st));
	EXPECT_EQ(2, st.enqueued_msgs);
	EXPECT_EQ(2, st.dequeued_msgs);
	EXPECT_EQ(20, st.dequeued_bytes);
	assert_balanced(_metadata, self->fd);
	munmap(bad, page_size());
}

/* SEND_BATCH from @bufs on a thread. */
struct batch_sender {
	pthread_t thr;
	int fd;
	void *bufs[2];
	int n;
	size_t len;
	int done;
	int ret;
};

static void *batch_sender_fn(void *arg)
{
	struct batch_sender *bs = arg;

	bs->ret = send_bufs(bs->fd, bs->bufs, bs->n, bs->len);
	__atomic_store_n(&bs->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

/*
 * A batch stalled in its first copy, with another writer's message queued
 * meanwhile, then faulting in its second. The fast path copies with page
 * faults off, so the stalled batch left it at once and copies on the
 * ordinary path: the message that came in between is first, the batch's
 * one follows without a hole.
 */
TEST_F_TIMEOUT(ring, stalled_batch_then_fault, 30)
{
	struct bpq_ring_rec h[2];
	struct batch_sender bs = { .n = 2, .len = 100 };
	struct uffd_area u;
	const char *why;
	void *bad;
	int k, ret;

	why = uffd_open(&u, 1);
	if (why)
		SKIP(return, "%s", why);
	bad = mmap(NULL, page_size(), PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS,
		   -1, 0);
	ASSERT_TRUE(bad != MAP_FAILED);
	ASSERT_EQ(0, open_ring(self, RING_MIN));

	bs.fd = self->fd;
	bs.bufs[0] = u.area;
	bs.bufs[1] = bad;
	ASSERT_EQ(0, pthread_create(&bs.thr, NULL, batch_sender_fn, &bs));
	ASSERT_TRUE(uffd_fault_seen(&u, 5000)) TH_LOG("no fault");
	ASSERT_EQ(50, write_msg(self->nfd, 0, 50));
	EXPECT_FALSE(__atomic_load_n(&bs.done, __ATOMIC_ACQUIRE));
	ASSERT_EQ(0, uffd_zero(&u, u.area));
	pthread_join(bs.thr, NULL);
	EXPECT_EQ(1, bs.ret);

	for (k = 0; k < 2; k++) {
		ret = ring_take(&self->r, &h[k], rdbuf);
		if (ret == 0) {
			ASSERT_LE(0, ioc_sync(self->r.fd, 0, 0));
			ret = ring_take(&self->r, &h[k], rdbuf);
		}
		ASSERT_EQ(1, ret);
		ASSERT_EQ(0, ring_publish(&self->r));
		EXPECT_EQ(k + 1, h[k].seq);
		EXPECT_EQ(0, h[k].lost);
		if (!k)
			EXPECT_TRUE(check_pattern(rdbuf, 50, 0));
	}
	EXPECT_EQ(50, h[0].len);
	EXPECT_EQ(100, h[1].len);
	assert_drained(_metadata, &self->r);
	assert_balanced(_metadata, self->fd);

	/* and the next one goes on from there */
	ASSERT_EQ(7, write_msg(self->nfd, 1, 7));
	ASSERT_EQ(1, ring_take(&self->r, &h[0], rdbuf));
	EXPECT_EQ(3, h[0].seq);
	munmap(bad, page_size());
	munmap(u.area, u.len);
	close(u.fd);
}

/*
 * The ring's file closed while a writer's copy stalls: the stalled writer
 * left the fast path at its fault, so the message written meanwhile went
 * into the ring (and counts as delivered there, gone with it), and the
 * stalled one waits for read(); nothing is lost uncounted or delivered
 * twice.
 */
TEST_F_TIMEOUT(ring, ring_closed_under_stalled_writer, 30)
{
	struct sender sd = { .len = 100 };
	int saw50 = 0, saw100 = 0, zeros = 0, k, ret;
	struct bpq_msg_info info;
	struct bpq_stats st;
	struct uffd_area u;
	__u64 prev_seq = 0;
	const char *why;

	why = uffd_open(&u, 1);
	if (why)
		SKIP(return, "%s", why);
	ASSERT_EQ(0, open_ring(self, RING_MIN));
	sd.fd = self->fd;
	sd.buf = u.area;
	ASSERT_EQ(0, pthread_create(&sd.thr, NULL, sender_fn, &sd));
	ASSERT_TRUE(uffd_fault_seen(&u, 5000)) TH_LOG("no fault");
	ASSERT_EQ(50, write_msg(self->nfd, 0, 50));

	ring_close(&self->r);
	EXPECT_FALSE(__atomic_load_n(&sd.done, __ATOMIC_ACQUIRE));
	ASSERT_EQ(0, uffd_zero(&u, u.area));
	pthread_join(sd.thr, NULL);
	EXPECT_EQ(100, sd.ret);

	for (;;) {
		memset(rdbuf, 0x5a, 128);
		ret = bpq_recv(self->nfd, rdbuf, sizeof(rdbuf), 0, 0, &info);
		if (ret < 0)
			break;
		if (ret == 50) {
			EXPECT_TRUE(check_pattern(rdbuf, 50, 0));
			saw50++;
		} else {
			ASSERT_EQ(100, ret);
			for (k = 0; k < 100; k++)
				zeros += !rdbuf[k];
			EXPECT_EQ(100, zeros);
			saw100++;
		}
		EXPECT_LT(prev_seq, info.seq);
		EXPECT_GE(2, info.seq);
		EXPECT_EQ(0, info.lost);
		prev_seq = info.seq;
	}
	EXPECT_EQ(-EAGAIN, ret);
	EXPECT_EQ(0, saw50);
	EXPECT_EQ(1, saw100);
	ASSERT_EQ(0, bpq_get_stats(self->fd, &st));
	EXPECT_EQ(2, st.enqueued_msgs);
	EXPECT_EQ(2, st.dequeued_msgs);
	EXPECT_EQ(0, st.depth_msgs);
	assert_balanced(_metadata, self->fd);

	/* a new ring for the queue */
	ASSERT_EQ(0, open_ring(self, RING_MIN));
	ASSERT_EQ(3, write_msg(self->nfd, 1, 3));
	EXPECT_EQ(REC(3), ring_tail(&self->r));
	munmap(u.area, u.len);
	close(u.fd);
}

/* ---- under load ---- */

#define PRODUCERS	2
#define PER_PRODUCER	4000

struct producer {
	pthread_t thr;
	int q;
	int id;
	bool batch;
	int failed;		/* -errno of the first failure */
};

/* When each sequence number came, and after which. */
struct arrival {
	unsigned int order;	/* 1 for the first record, 0: not seen */
	unsigned int producer;
	unsigned int index;
	__u64 after;		/* seq of the record before it */
};

struct stamp {
	__u32 producer;
	__u32 index;
	__u32 crc;
};

static size_t stamp_len(unsigned int id, unsigned int index)
{
	return sizeof(struct stamp) + (index * 131 + id * 17) % (MSG_MAX -
						sizeof(struct stamp) + 1);
}

static void make_stamp(unsigned char *buf, unsigned int id, unsigned int index)
{
	size_t len = stamp_len(id, index);
	struct stamp s = { .producer = id, .index = index };

	fill_pattern(buf + sizeof(s), len - sizeof(s), index + id);
	s.crc = bpq_crc32(0, buf + sizeof(s), len - sizeof(s));
	memcpy(buf, &s, sizeof(s));
}

static void *producer_fn(void *arg)
{
	static __thread unsigned char bufs[8][MSG_MAX];
	struct producer *p = arg;
	struct bpq_iovec iov[8];
	struct bpq_send_batch b = {
		.size = sizeof(b),
		.msgs = (uintptr_t)iov,
	};
	unsigned int i = 0, k, count;
	int fd = bpq_open(p->q, O_WRONLY), ret;

	if (fd < 0) {
		p->failed = -errno;
		return NULL;
	}
	while (i < PER_PRODUCER) {
		if (!p->batch) {
			make_stamp(bufs[0], p->id, i);
			ret = bpq_write(fd, bufs[0], stamp_len(p->id, i));
			if (ret < 0) {
				p->failed = ret;
				break;
			}
			i++;
			continue;
		}
		count = 1 + i % 8;
		if (count > PER_PRODUCER - i)
			count = PER_PRODUCER - i;
		memset(iov, 0, sizeof(iov));
		for (k = 0; k < count; k++) {
			make_stamp(bufs[k], p->id, i + k);
			iov[k].base = (uintptr_t)bufs[k];
			iov[k].len = stamp_len(p->id, i + k);
		}
		b.count = count;
		ret = bpq_ioctl(fd, BPQ_IOC_SEND_BATCH, &b);
		if (ret <= 0) {
			p->failed = ret ? ret : -EIO;
			break;
		}
		i += ret;
	}
	close(fd);
	return NULL;
}

/*
 * Producers that block against a small queue, one reader on the ring that
 * sleeps in RING_SYNC WAIT: nothing lost, duplicated or reordered, no
 * stall (a wait that times out is a lost wake-up).
 */
TEST_F_TIMEOUT(ring, producers_and_ring_reader, 180)
{
	const unsigned int total = PRODUCERS * PER_PRODUCER;
	struct producer prod[PRODUCERS];
	unsigned int next[PRODUCERS] = { 0 };
	unsigned int got = 0, waits = 0, i, bad = 0;
	struct arrival *arr;
	struct ring *r = &self->r;
	struct bpq_ring_rec hdr;
	struct bpq_stats st;
	struct stamp s;
	__u64 last_seq = 0;
	int ret;

	arr = calloc(total + 1, sizeof(*arr));
	ASSERT_TRUE(!!arr);
	ASSERT_EQ(0, set_queue(self->fd, BPQ_STRATEGY_BLOCK, 16, MSG_MAX));
	ASSERT_EQ(0, open_ring(self, 2 * RING_MIN));
	for (i = 0; i < PRODUCERS; i++) {
		prod[i] = (struct producer){ .q = self->q, .id = i,
					     .batch = i & 1 };
		ASSERT_EQ(0, pthread_create(&prod[i].thr, NULL, producer_fn,
					    &prod[i]));
	}

	while (got < PRODUCERS * PER_PRODUCER) {
		ret = ring_take(r, &hdr, rdbuf);
		if (ret == 0) {
			ret = ioc_sync(r->fd, BPQ_RING_WAIT | BPQ_IO_TIMEOUT,
				       10000);
			waits++;
			if (ret == -ETIMEDOUT)
				break;
			ASSERT_LE(0, ret);
			continue;
		}
		ASSERT_EQ(1, ret) TH_LOG("malformed ring after %u", got);
		ASSERT_LE(sizeof(s), hdr.len);
		memcpy(&s, rdbuf, sizeof(s));
		ASSERT_GT(PRODUCERS, s.producer);
		ASSERT_EQ(next[s.producer], s.index)
			TH_LOG("producer %u: got %u", s.producer, s.index);
		ASSERT_EQ(stamp_len(s.producer, s.index), hdr.len);
		ASSERT_EQ(s.crc, bpq_crc32(0, rdbuf + sizeof(s),
					   hdr.len - sizeof(s)));
		ASSERT_LT(0, hdr.seq);
		ASSERT_GE(total, hdr.seq) TH_LOG("seq %llu",
						 (unsigned long long)hdr.seq);
		ASSERT_EQ(0, arr[hdr.seq].order) TH_LOG("seq %llu twice",
						       (unsigned long long)hdr.seq);
		arr[hdr.seq] = (struct arrival){ .order = got + 1,
						 .producer = s.producer,
						 .index = s.index,
						 .after = last_seq };
		ASSERT_EQ(0, hdr.lost);
		last_seq = hdr.seq;
		next[s.producer]++;
		got++;
		ASSERT_EQ(0, ring_publish(r));
	}
	for (i = 0; i < PRODUCERS; i++) {
		pthread_join(prod[i].thr, NULL);
		EXPECT_EQ(0, prod[i].failed) TH_LOG("producer %u", i);
	}
	ASSERT_EQ(PRODUCERS * PER_PRODUCER, got)
		TH_LOG("stalled: depth %llu, NEED_SYNC %u",
		       (unsigned long long)bpq_depth(self->fd),
		       ring_flags(r) & BPQ_RING_NEED_SYNC);
	TH_LOG("%u messages, %u waits, %u syncs, %llu laps", got, waits,
	       r->syncs, (unsigned long long)(r->head / r->bytes));

	/* The ring in sequence order: each number once, none overtaken. */
	for (i = 2; i <= total; i++) {
		if (arr[i].order > arr[i - 1].order)
			continue;
		if (bad++ < 5)
			TH_LOG("seq %u (producer %u #%u) came %u records before seq %u (producer %u #%u), right after seq %llu",
			       i, arr[i].producer, arr[i].index,
			       arr[i - 1].order - arr[i].order, i - 1,
			       arr[i - 1].producer, arr[i - 1].index,
			       (unsigned long long)arr[i].after);
	}
	free(arr);
	EXPECT_EQ(0, bad) TH_LOG("%u messages overtaken", bad);
	assert_drained(_metadata, r);
	ASSERT_EQ(0, bpq_get_stats(self->fd, &st));
	EXPECT_EQ(got, st.enqueued_msgs);
	EXPECT_EQ(got, st.dequeued_msgs);
	EXPECT_EQ(0, st.depth_msgs);
}

/* ---- churn: every ring path at once ---- */

/*
 * Producers on their own files with every kind of send, a reader on the
 * ring, a thread that keeps changing the strategy and the capacities and
 * flushes, and one that interrupts the waits with a signal. The reader
 * checks every record as it comes; the totals are checked once it has
 * drained the queue; then the queue is destroyed under blocked writers
 * and a waiting reader.
 *
 * A payload starts with the producer's id (one byte) and its own sequence
 * number (seven bytes, little-endian), cut short with the message: a
 * message of 1 ... 7 bytes carries only the low bytes of its number.
 * Past the eighth byte comes a pattern of the two.
 */
#define CHURN_PRODUCERS	3
#define CHURN_MSG_MAX	2000
#define CHURN_RING	(64U << 10)
#define CHURN_BATCH	40
#define CHURN_HDR	8
#define CHURN_SECONDS	6
#define CHURN_MSGS	200000	/* or stop after this many accepted */

_Static_assert(2 * BPQ_RING_RECORD(16384) <= CHURN_RING,
	      "the largest max_msg_size of the churn fits its ring");

enum churn_phase {
	CHURN_RUN,		/* any send, any strategy */
	CHURN_BLOCKED,		/* blocking write() until the queue goes */
};

struct churn_producer {
	pthread_t thr;
	struct churn *c;
	unsigned int id;
	unsigned int seed;
	pid_t tid;
	unsigned char *bufs;	/* CHURN_BATCH payloads of CHURN_MSG_MAX */
	__u64 next_seq;		/* of the next message, from 1 */
	long accepted;		/* messages the kernel took */
	long enobufs, eagain, etimedout, eintr;
	int last;		/* -errno that ended the thread */
	int failed;		/* an unexpected result, or 0 */
	int done;
};

struct churn {
	int q;
	int fd;			/* O_RDWR: config, stats, grants, flush */
	struct ring *r;
	enum churn_phase phase;
	int stop_helpers;
	int stop_producers;
	int draining;		/* the reader ends once all is taken */
	int flushes;		/* flushes begun */
	long flushed;		/* messages they discarded */
	long configs, grants, signals;
	struct churn_producer prod[CHURN_PRODUCERS];

	/* the reader */
	pthread_t reader;
	pid_t reader_tid;
	unsigned char rbuf[CHURN_MSG_MAX];
	__u64 last_seq;		/* of the previous record */
	__u64 last_pseq[CHURN_PRODUCERS + 1];	/* a lower bound, if short */
	long seen[CHURN_PRODUCERS + 1];
	long records, waits, wait_eintr, wait_timeouts, syncs;
	__u64 sum_lost;		/* what the records reported */
	__u64 sum_gap;		/* sequence numbers no record had */
	__u64 gap_unexplained;	/* gaps beyond lost: flushed messages */
	/*
	 * Loss reported before its gap: a message evicted while an older one
	 * was still being copied in is counted with that older one's record,
	 * and its number is missed by a later record. (Refused messages count
	 * here too, and never make a gap: so this only ever excuses more.)
	 */
	__u64 lost_ahead;
	int reader_last;	/* -errno that ended the reader, 0: drained */
	int reader_done;
	char why[200];		/* the reader's first complaint */
};

static bool churn_stopping(int *flag)
{
	return __atomic_load_n(flag, __ATOMIC_ACQUIRE);
}

static void churn_set(int *flag)
{
	__atomic_store_n(flag, 1, __ATOMIC_RELEASE);
}

static unsigned int churn_rand(unsigned int *seed, unsigned int n)
{
	return rand_r(seed) % n;
}

static void churn_payload(unsigned char *buf, size_t len, unsigned int id,
			  __u64 seq)
{
	unsigned char hdr[CHURN_HDR];
	unsigned int k;

	hdr[0] = id;
	for (k = 1; k < CHURN_HDR; k++)
		hdr[k] = seq >> (8 * (k - 1));
	memcpy(buf, hdr, len < CHURN_HDR ? len : CHURN_HDR);
	if (len > CHURN_HDR)
		fill_pattern(buf + CHURN_HDR, len - CHURN_HDR,
			     seq * CHURN_PRODUCERS + id);
}

static size_t churn_len(unsigned int *seed)
{
	switch (churn_rand(seed, 8)) {
	case 0:
		return 1 + churn_rand(seed, CHURN_HDR);	/* 1 ... 8 */
	case 1:
		return CHURN_MSG_MAX;
	default:
		return 1 + churn_rand(seed, CHURN_MSG_MAX);
	}
}

/* Count what the kernel said; false when the producer must end. */
static bool churn_sent(struct churn_producer *p, int ret, unsigned int n)
{
	switch (ret) {
	case -ENOBUFS:
		p->enobufs++;
		return true;
	case -EAGAIN:
		p->eagain++;
		return true;
	case -ETIMEDOUT:
		p->etimedout++;
		return true;
	case -EINTR:
		p->eintr++;
		return true;
	case -ENODEV:
		p->last = ret;
		return false;
	}
	if (ret <= 0 || (unsigned int)ret > n) {
		p->failed = ret ? ret : -EIO;
		p->last = p->failed;
		return false;
	}
	__atomic_add_fetch(&p->accepted, ret, __ATOMIC_RELAXED);
	p->next_seq += ret;
	return true;
}

/* One write() or SEND_BATCH of 1 ... CHURN_BATCH messages, as chance says. */
static int churn_send(struct churn_producer *p, int fd, int nfd,
		      unsigned int *n)
{
	struct bpq_iovec iov[CHURN_BATCH];
	struct bpq_send_batch b = {
		.size = sizeof(b),
		.msgs = (uintptr_t)iov,
	};
	unsigned int op = churn_rand(&p->seed, 8), k;
	unsigned char *buf;
	ssize_t ret;

	*n = op < 3 ? 1 : 1 + churn_rand(&p->seed, CHURN_BATCH);
	memset(iov, 0, sizeof(iov));
	for (k = 0; k < *n; k++) {
		buf = p->bufs + k * CHURN_MSG_MAX;
		iov[k].base = (uintptr_t)buf;
		iov[k].len = churn_len(&p->seed);
		churn_payload(buf, iov[k].len, p->id, p->next_seq + k);
	}
	if (op < 3) {
		ret = bpq_write(op == 2 ? nfd : fd, p->bufs, iov[0].len);
		if (ret == (ssize_t)iov[0].len)
			return 1;
		return ret < 0 ? (int)ret : -EIO;
	}
	b.count = *n;
	switch (churn_rand(&p->seed, 4)) {
	case 0:
		b.flags = BPQ_IO_NONBLOCK;
		break;
	case 1:
		b.flags = BPQ_IO_TIMEOUT;
		b.timeout_ms = churn_rand(&p->seed, 6);
		break;
	}
	return bpq_ioctl(op == 3 ? nfd : fd, BPQ_IOC_SEND_BATCH, &b);
}

/* Blocking write()s, one message at a time, until the queue goes. */
static int churn_send_blocked(struct churn_producer *p, int fd)
{
	size_t len = churn_len(&p->seed);
	ssize_t ret;

	churn_payload(p->bufs, len, p->id, p->next_seq);
	ret = bpq_write(fd, p->bufs, len);
	if (ret == (ssize_t)len)
		return 1;
	return ret < 0 ? (int)ret : -EIO;
}

static void *churn_producer_fn(void *arg)
{
	struct churn_producer *p = arg;
	struct churn *c = p->c;
	int fd = bpq_open(c->q, O_WRONLY);
	int nfd = bpq_open(c->q, O_WRONLY | O_NONBLOCK);
	unsigned int n = 1;
	int ret;

	p->tid = bpq_gettid();
	if (fd < 0 || nfd < 0) {
		p->failed = p->last = -EBADF;
		goto out;
	}
	while (!churn_stopping(&c->stop_producers)) {
		if (c->phase == CHURN_BLOCKED)
			ret = churn_send_blocked(p, fd);
		else
			ret = churn_send(p, fd, nfd, &n);
		if (!churn_sent(p, ret, n))
			break;
	}
out:
	if (fd >= 0)
		close(fd);
	if (nfd >= 0)
		close(nfd);
	__atomic_store_n(&p->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void churn_complain(struct churn *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void churn_complain(struct churn *c, const char *fmt, ...)
{
	va_list ap;

	if (c->why[0])
		return;
	va_start(ap, fmt);
	vsnprintf(c->why, sizeof(c->why), fmt, ap);
	va_end(ap);
}

/* The smallest number above @last whose low @bytes bytes are @low. */
static __u64 churn_seq_above(__u64 last, __u64 low, unsigned int bytes)
{
	__u64 mod, v;

	if (!bytes)
		return last + 1;
	mod = 1ULL << (8 * bytes);
	v = (last + 1) - (last + 1) % mod + low;
	if (v <= last)
		v += mod;
	return v;
}

/* Check one record against everything before it: false on a complaint. */
static bool churn_check(struct churn *c, const struct bpq_ring_rec *h)
{
	const unsigned char *p = c->rbuf;
	unsigned int id = p[0], bytes, k;
	__u64 low = 0, gap, seq, excused = 0;

	if (h->seq <= c->last_seq) {
		churn_complain(c, "record %ld: seq %llu after %llu", c->records,
			       (unsigned long long)h->seq,
			       (unsigned long long)c->last_seq);
		return false;
	}
	gap = h->seq - c->last_seq - 1;
	if (gap < h->lost) {
		c->lost_ahead += h->lost - gap;
	} else if (gap > h->lost) {
		excused = gap - h->lost < c->lost_ahead ? gap - h->lost :
							  c->lost_ahead;
		c->lost_ahead -= excused;
		gap -= excused;
	}
	if (gap > h->lost) {
		/* only a flush takes numbers without reporting a loss */
		if (!churn_stopping(&c->flushes)) {
			churn_complain(c, "seq %llu: %llu missing, lost %llu, no flush",
				       (unsigned long long)h->seq,
				       (unsigned long long)gap,
				       (unsigned long long)h->lost);
			return false;
		}
		c->gap_unexplained += gap - h->lost;
	}
	c->sum_gap += gap + excused;
	c->sum_lost += h->lost;
	c->last_seq = h->seq;

	/* id CHURN_PRODUCERS is the test's own last message */
	if (id > CHURN_PRODUCERS) {
		churn_complain(c, "seq %llu: producer %u", (unsigned long long)h->seq, id);
		return false;
	}
	bytes = (h->len < CHURN_HDR ? h->len : CHURN_HDR) - 1;
	for (k = 0; k < bytes; k++)
		low |= (__u64)p[1 + k] << (8 * k);
	seq = churn_seq_above(c->last_pseq[id], low, bytes);
	if (bytes == CHURN_HDR - 1 && seq != low) {
		churn_complain(c, "seq %llu: producer %u's #%llu after #%llu",
			       (unsigned long long)h->seq, id,
			       (unsigned long long)low,
			       (unsigned long long)c->last_pseq[id]);
		return false;
	}
	if (h->len > CHURN_HDR &&
	    !check_pattern(p + CHURN_HDR, h->len - CHURN_HDR,
			   seq * CHURN_PRODUCERS + id)) {
		churn_complain(c, "seq %llu: producer %u's #%llu (%u bytes) garbled",
			       (unsigned long long)h->seq, id,
			       (unsigned long long)seq, h->len);
		return false;
	}
	c->last_pseq[id] = seq;
	c->seen[id]++;
	c->records++;
	return true;
}

/*
 * The reader's half of the header's protocol: publish head, a full
 * barrier, and RING_SYNC only if the kernel asks and head has reached
 * sync_head.
 */
static int churn_publish(struct churn *c)
{
	struct ring *r = c->r;
	__u64 sync_head;
	__u32 flags;
	int ret;

	ring_store_head(r, r->head);
	flags = __atomic_load_n(&r->ctl->flags, __ATOMIC_ACQUIRE);
	if (!(flags & BPQ_RING_NEED_SYNC))
		return 0;
	sync_head = __atomic_load_n(&r->ctl->sync_head, __ATOMIC_ACQUIRE);
	if (r->head < sync_head)
		return 0;
	c->syncs++;
	ret = ioc_sync(r->fd, 0, 0);
	return ret < 0 ? ret : 0;
}

/* The ring is empty: wait for a record. 0 to go on, else -errno to end. */
static int churn_wait(struct churn *c)
{
	struct ring *r = c->r;
	int ret;

	if (churn_stopping(&c->draining)) {
		/* nothing comes any more: done once the queue is empty too */
		ret = ioc_sync(r->fd, 0, 0);
		if (ret < 0)
			return ret;
		if (!ret && ring_tail(r) == r->head && bpq_depth(c->fd) == 0)
			return 1;
		return 0;
	}
	c->waits++;
	if (c->phase == CHURN_BLOCKED)
		ret = ioc_sync(r->fd, BPQ_RING_WAIT, 0);
	else
		ret = ioc_sync(r->fd, BPQ_RING_WAIT | BPQ_IO_TIMEOUT, 100);
	if (ret == -EINTR)
		c->wait_eintr++;
	else if (ret == -ETIMEDOUT)
		c->wait_timeouts++;
	else if (ret < 0)
		return ret;
	return 0;
}

static void *churn_reader_fn(void *arg)
{
	struct churn *c = arg;
	struct bpq_ring_rec hdr;
	int ret;

	c->reader_tid = bpq_gettid();
	for (;;) {
		ret = ring_take(c->r, &hdr, c->rbuf);
		if (ret < 0) {
			churn_complain(c, "malformed ring at %llu, tail %llu",
				       (unsigned long long)c->r->head,
				       (unsigned long long)ring_tail(c->r));
			break;
		}
		if (ret) {
			if (!churn_check(c, &hdr)) {
				ret = -EPROTO;
				break;
			}
			ret = churn_publish(c);
		} else {
			ret = churn_wait(c);
		}
		if (ret)
			break;
	}
	c->reader_last = ret > 0 ? 0 : ret;
	__atomic_store_n(&c->reader_done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static const __u32 churn_strategies[] = {
	BPQ_STRATEGY_BLOCK, BPQ_STRATEGY_DROP_NEWEST, BPQ_STRATEGY_DROP_OLDEST,
	BPQ_STRATEGY_CREDIT, BPQ_STRATEGY_ADAPTIVE,
};

static int churn_configure(struct churn *c, unsigned int *seed,
			   unsigned int round)
{
	static const __u32 caps[] = { 1, 4, 64, 1024 };
	static const __u32 maxes[] = { CHURN_MSG_MAX, 4096, 16384 };
	struct bpq_config cfg;

	bpq_default_config(&cfg);
	cfg.strategy = churn_strategies[round % ARRAY_LEN(churn_strategies)];
	cfg.capacity_msgs = caps[churn_rand(seed, ARRAY_LEN(caps))];
	cfg.max_msg_size = maxes[churn_rand(seed, ARRAY_LEN(maxes))];
	cfg.write_timeout_ms = churn_rand(seed, 2) ? 0 : 20;
	cfg.auto_credit = 1;
	cfg.min_rate = 200;
	c->configs++;
	return bpq_set_config(c->fd, &cfg);
}

/* Strategy and limits changed every few ms, now and then a flush. */
static void *churn_config_fn(void *arg)
{
	struct churn *c = arg;
	unsigned int seed = 77, round = 0;
	struct bpq_grant g = { .size = sizeof(g) };
	int ret, k;

	while (!churn_stopping(&c->stop_helpers)) {
		ret = churn_configure(c, &seed, round++);
		if (ret) {
			churn_complain(c, "SET_CONFIG: %s", strerror(-ret));
			break;
		}
		for (k = 0; k < 4; k++) {
			g.credits = 1 + churn_rand(&seed, 8);
			if (bpq_ioctl(c->fd, BPQ_IOC_GRANT, &g) == 0)
				c->grants++;
			sleep_ms(1 + churn_rand(&seed, 4));
		}
		if (churn_rand(&seed, 6))
			continue;
		__atomic_add_fetch(&c->flushes, 1, __ATOMIC_RELEASE);
		ret = bpq_flush(c->fd);
		if (ret < 0) {
			churn_complain(c, "FLUSH: %s", strerror(-ret));
			break;
		}
		c->flushed += ret;
	}
	return NULL;
}

/* SIGUSR1 (no SA_RESTART) to a producer or the reader every ms or two. */
static void *churn_signal_fn(void *arg)
{
	struct churn *c = arg;
	unsigned int seed = 5, k;

	while (!churn_stopping(&c->stop_helpers)) {
		k = churn_rand(&seed, CHURN_PRODUCERS + 1);
		if (!pthread_kill(k < CHURN_PRODUCERS ? c->prod[k].thr :
				  c->reader, SIGUSR1))
			c->signals++;
		sleep_ms(1 + churn_rand(&seed, 2));
	}
	return NULL;
}

static int churn_start_producers(struct churn *c)
{
	struct churn_producer *p;
	unsigned int i;
	int ret;

	c->stop_producers = 0;
	for (i = 0; i < CHURN_PRODUCERS; i++) {
		p = &c->prod[i];
		p->done = 0;
		p->tid = 0;
		ret = pthread_create(&p->thr, NULL, churn_producer_fn, p);
		if (ret)
			return -ret;
	}
	return 0;
}

static int churn_start_reader(struct churn *c)
{
	c->reader_done = 0;
	c->reader_tid = 0;
	return -pthread_create(&c->reader, NULL, churn_reader_fn, c);
}

/* Wait for *done within @timeout_ms, then join: false if it did not end. */
static bool churn_join(pthread_t thr, int *done, int timeout_ms)
{
	int64_t end = now_ns() + (int64_t)timeout_ms * 1000000;

	while (!churn_stopping(done)) {
		if (now_ns() > end)
			return false;
		sleep_ms(1);
	}
	pthread_join(thr, NULL);
	return true;
}

static long churn_accepted(struct churn *c)
{
	long n = 0;
	unsigned int i;

	for (i = 0; i < CHURN_PRODUCERS; i++)
		n += __atomic_load_n(&c->prod[i].accepted, __ATOMIC_RELAXED);
	return n;
}

/*
 * Producers, reader and credit all asleep, the ring and queue empty. If
 * not, what is not so goes in @why.
 */
static bool churn_all_asleep(struct churn *c, char *why, size_t len)
{
	struct bpq_stats st;
	unsigned int i;

	if (bpq_get_stats(c->fd, &st) || st.credits_available ||
	    st.depth_msgs || ring_tail(c->r) != c->r->head) {
		snprintf(why, len,
			 "credits %llu, depth %llu, ring tail %llu head %llu",
			 (unsigned long long)st.credits_available,
			 (unsigned long long)st.depth_msgs,
			 (unsigned long long)ring_tail(c->r),
			 (unsigned long long)c->r->head);
		return false;
	}
	for (i = 0; i < CHURN_PRODUCERS; i++)
		if (!task_sleeping_in(c->prod[i].tid, SYS_write)) {
			snprintf(why, len, "producer %u not asleep in write",
				 i);
			return false;
		}
	if (!task_sleeping_in(c->reader_tid, SYS_ioctl)) {
		snprintf(why, len, "reader not asleep in RING_SYNC");
		return false;
	}
	return true;
}

TEST_F_TIMEOUT(ring, ring_under_churn, 120)
{
	struct sigaction sa = { .sa_handler = on_signal }, old;
	struct churn *c;
	pthread_t config, signaler;
	struct bpq_ring_rec hdr;
	struct bpq_stats st;
	int64_t t0, end;
	long accepted = 0, seen = 0, missing;
	unsigned int i;
	bool asleep = false;
	char why[160] = "";

	c = calloc(1, sizeof(*c));
	ASSERT_TRUE(!!c);
	c->q = self->q;
	c->fd = self->fd;
	c->r = &self->r;
	for (i = 0; i < CHURN_PRODUCERS; i++) {
		c->prod[i] = (struct churn_producer){
			.c = c, .id = i, .seed = 1000 + i, .next_seq = 1,
		};
		c->prod[i].bufs = malloc(CHURN_BATCH * CHURN_MSG_MAX);
		ASSERT_TRUE(!!c->prod[i].bufs);
	}
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0;	/* no SA_RESTART: waits end with EINTR */
	ASSERT_EQ(0, sigaction(SIGUSR1, &sa, &old));
	ASSERT_EQ(0, set_queue(self->fd, BPQ_STRATEGY_BLOCK, 0, CHURN_MSG_MAX));
	ASSERT_EQ(0, ring_open(&self->r, bpq_open(self->q, O_RDWR), CHURN_RING,
			       CHURN_MSG_MAX));

	/* Phase 1: everything at once, for a while. */
	t0 = now_ns();
	ASSERT_EQ(0, churn_start_reader(c));
	ASSERT_EQ(0, churn_start_producers(c));
	ASSERT_EQ(0, pthread_create(&config, NULL, churn_config_fn, c));
	ASSERT_EQ(0, pthread_create(&signaler, NULL, churn_signal_fn, c));
	end = t0 + CHURN_SECONDS * 1000000000LL;
	while (now_ns() < end && churn_accepted(c) < CHURN_MSGS &&
	       !churn_stopping(&c->reader_done))
		sleep_ms(10);

	/* Stop the churn, let every writer through, then drain. */
	churn_set(&c->stop_helpers);
	pthread_join(signaler, NULL);
	pthread_join(config, NULL);
	ASSERT_EQ(0, set_queue(self->fd, BPQ_STRATEGY_BLOCK, 1024,
			       CHURN_MSG_MAX));
	churn_set(&c->stop_producers);
	for (i = 0; i < CHURN_PRODUCERS; i++) {
		ASSERT_TRUE(churn_join(c->prod[i].thr, &c->prod[i].done, 10000))
			TH_LOG("producer %u stuck: depth %llu, reader %s", i,
			       (unsigned long long)bpq_depth(self->fd),
			       c->why[0] ? c->why : "fine");
		EXPECT_EQ(0, c->prod[i].failed) TH_LOG("producer %u", i);
	}
	churn_set(&c->draining);
	ASSERT_TRUE(churn_join(c->reader, &c->reader_done, 10000))
		TH_LOG("reader did not drain: depth %llu",
		       (unsigned long long)bpq_depth(self->fd));
	ASSERT_EQ(0, c->why[0]) TH_LOG("%s", c->why);
	ASSERT_EQ(0, c->reader_last) TH_LOG("reader: %s",
					    strerror(-c->reader_last));

	/*
	 * One more message, taken here: its lost reports what dropped
	 * since the last record, so the sums must come out exact.
	 */
	churn_payload(msgbuf, 100, CHURN_PRODUCERS, 1);
	ASSERT_EQ(100, bpq_write(self->fd, msgbuf, 100));
	ASSERT_EQ(1, ring_take(&self->r, &hdr, c->rbuf));
	ASSERT_TRUE(churn_check(c, &hdr)) TH_LOG("%s", c->why);
	ASSERT_EQ(0, churn_publish(c));

	ASSERT_EQ(0, bpq_get_stats(self->fd, &st));
	for (i = 0; i < CHURN_PRODUCERS; i++) {
		accepted += c->prod[i].accepted;
		seen += c->seen[i];
		EXPECT_GE(c->prod[i].accepted, c->seen[i]) TH_LOG("producer %u", i);
		EXPECT_GE(c->prod[i].next_seq - 1, c->last_pseq[i]);
	}
	missing = accepted - seen;
	EXPECT_EQ(0, st.depth_msgs);
	EXPECT_EQ(accepted + 1, st.enqueued_msgs);
	EXPECT_EQ(c->records, st.dequeued_msgs);
	EXPECT_EQ(seen + 1, c->records);
	EXPECT_EQ(st.dropped_oldest + st.flushed, missing);
	EXPECT_EQ(c->flushed, st.flushed);
	EXPECT_EQ(missing, c->sum_gap);
	EXPECT_GE(st.flushed, c->gap_unexplained);
	EXPECT_EQ(st.dropped_newest + st.dropped_oldest, c->sum_lost);
	assert_balanced(_metadata, self->fd);
	TH_LOG("figures: %.1f s, %ld accepted, %ld records (%llu laps), %ld configs, %ld grants, %ld signals",
	       (now_ns() - t0) / 1e9, accepted, c->records,
	       (unsigned long long)(self->r.head / CHURN_RING), c->configs,
	       c->grants, c->signals);
	TH_LOG("figures: dropped_newest %llu, dropped_oldest %llu, flushed %llu in %d flushes",
	       (unsigned long long)st.dropped_newest,
	       (unsigned long long)st.dropped_oldest,
	       (unsigned long long)st.flushed, c->flushes);
	for (i = 0; i < CHURN_PRODUCERS; i++)
		TH_LOG("figures: producer %u: %ld accepted, %ld seen, ENOBUFS %ld, EAGAIN %ld, ETIMEDOUT %ld, EINTR %ld",
		       i, c->prod[i].accepted, c->seen[i], c->prod[i].enobufs,
		       c->prod[i].eagain, c->prod[i].etimedout,
		       c->prod[i].eintr);
	TH_LOG("figures: reader: %ld waits, %ld EINTR, %ld timed out, %ld syncs at sync_head",
	       c->waits, c->wait_eintr, c->wait_timeouts, c->syncs);

	/*
	 * Phase 2: writers asleep on a full ring and a full queue (block,
	 * capacity 1) while no one reads; then credit without auto_credit,
	 * and the reader, which takes all it can and sleeps in RING_SYNC
	 * WAIT while the writers wait for credit. Then the queue goes: every
	 * one of them must see ENODEV at once.
	 */
	c->phase = CHURN_BLOCKED;
	c->draining = 0;
	ASSERT_EQ(0, set_queue(self->fd, BPQ_STRATEGY_BLOCK, 1, CHURN_MSG_MAX));
	ASSERT_EQ(0, churn_start_producers(c));
	for (i = 0; i < CHURN_PRODUCERS; i++) {
		while (!__atomic_load_n(&c->prod[i].tid, __ATOMIC_RELAXED))
			sleep_ms(1);
		ASSERT_TRUE(wait_task_sleeping(c->prod[i].tid, SYS_write, 5000))
			TH_LOG("producer %u does not block", i);
	}
	EXPECT_EQ(1, bpq_depth(self->fd));
	ASSERT_EQ(0, set_queue(self->fd, BPQ_STRATEGY_CREDIT, 1, CHURN_MSG_MAX));
	ASSERT_EQ(0, churn_start_reader(c));
	end = now_ns() + 10000000000LL;
	while (!asleep && now_ns() < end && !churn_stopping(&c->reader_done)) {
		sleep_ms(20);
		/* twice in a row, to be sure they stay so */
		asleep = churn_all_asleep(c, why, sizeof(why));
		if (asleep) {
			sleep_ms(20);
			asleep = churn_all_asleep(c, why, sizeof(why));
		}
	}
	ASSERT_TRUE(asleep)
		TH_LOG("not all asleep: %s%s; %s", c->why,
		       churn_stopping(&c->reader_done) ? "the reader ended" : "",
		       why);
	ASSERT_EQ(0, bpq_destroy(self->cfd, self->q));
	self->q = -1;
	t0 = now_ns();
	for (i = 0; i < CHURN_PRODUCERS; i++) {
		ASSERT_TRUE(churn_join(c->prod[i].thr, &c->prod[i].done, 5000))
			TH_LOG("producer %u still blocked", i);
		EXPECT_EQ(-ENODEV, c->prod[i].last) TH_LOG("producer %u", i);
	}
	ASSERT_TRUE(churn_join(c->reader, &c->reader_done, 5000))
		TH_LOG("reader still waiting");
	EXPECT_EQ(-ENODEV, c->reader_last);
	EXPECT_EQ(0, c->why[0]) TH_LOG("%s", c->why);
	TH_LOG("figures: phase 2: %ld records in all, all ended %.3f s after the destroy",
	       c->records, (now_ns() - t0) / 1e9);

	sigaction(SIGUSR1, &old, NULL);
	for (i = 0; i < CHURN_PRODUCERS; i++)
		free(c->prod[i].bufs);
	free(c);
}

TEST_HARNESS_MAIN
