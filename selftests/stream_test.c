// SPDX-License-Identifier: GPL-2.0
/*
 * Streams: a queue's stream ends (completed, failed, cancelled) and opens
 * again, through BPQ_IOC_SHUTDOWN, sysfs and the hangup setting.
 *
 *  - modes: every transition of the table in the contract, made from a
 *    file of each open mode (EBADF where the mode does not allow the
 *    kind), with and without messages queued; the poll bits each mode
 *    gets and the epoll wakeups; what read, write, writev and the receive
 *    and send commands of the mode return after each end;
 *  - blocked: 1, 10 and 100 readers (read, RECV, RECV_BATCH) and writers
 *    (write, SEND_BATCH) asleep, all woken by each end: writers with
 *    EPIPE, readers after the drain with 0 or ECONNRESET;
 *  - strategies: a write to an ended stream fails with EPIPE whatever the
 *    strategy: it neither waits, nor is refused, nor evicts;
 *  - stream: SIGPIPE, discard and the flushed counter, credit after a
 *    cancel, a message still being copied in at the end (userfaultfd),
 *    reopen and epochs, the sysfs attributes (stream,
 *    stream_epoch, readers, writers, hangup), hangup=writers, readers
 *    and both, SET_CONFIG of the old size, bad arguments, a destroyed
 *    queue.
 *
 * Each test gets a queue of its own from /dev/bpq-control and destroys it.
 * SIGPIPE is blocked in every test, so that one raised is seen (with
 * sigtimedwait()) rather than fatal; the tests of woken writers count it
 * with a handler instead.
 */
#define _GNU_SOURCE
#include <sys/epoll.h>
#include <sys/uio.h>
#include <linux/userfaultfd.h>

#include "bpq_test.h"
/* kselftest_harness.h of 6.1 has an unused parameter: keep -Wextra clean. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"
#include "kselftest_harness.h"
#pragma GCC diagnostic pop
/* the harness compares its operands as given: 0 against a __u64 is fine */
#pragma GCC diagnostic ignored "-Wsign-compare"

#define P_IN		(POLLIN | POLLRDNORM)
#define P_OUT		(POLLOUT | POLLWRNORM)

#define FAIL_ERR	EIO		/* the error a failed stream is given */
#define FAIL_ERR2	ECONNABORTED	/* a second FAIL's, never kept */

/* message n is 8 ... 15 bytes of pattern n */
#define MLEN(n)		(8 + (n) % 8)

static const __u32 ends[] = {
	BPQ_STREAM_COMPLETED, BPQ_STREAM_FAILED, BPQ_STREAM_CANCELLED,
};

static const char *errno_name(__u32 e)
{
	switch (e) {
	case EPERM:
		return "EPERM";
	case EIO:
		return "EIO";
	case ENOSPC:
		return "ENOSPC";
	case EPIPE:
		return "EPIPE";
	case ECONNABORTED:
		return "ECONNABORTED";
	case EHWPOISON:
		return "EHWPOISON";
	default:
		return "?";
	}
}

/* ---- the queue of a test ---- */

static void queue_setup(struct __test_metadata *_metadata, int *cfd, int *q,
			int *fd)
{
	char name[BPQ_NAME_MAX];
	sigset_t set;

	*cfd = *q = *fd = -1;
	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	ASSERT_EQ(0, sigprocmask(SIG_BLOCK, &set, NULL));
	*cfd = bpq_control_open();
	ASSERT_LE(0, *cfd) TH_LOG("%m - open " BPQ_CONTROL_PATH);
	snprintf(name, sizeof(name), "stream-%d", getpid());
	*q = bpq_create(*cfd, name);
	ASSERT_LE(0, *q) TH_LOG("create: %s", strerror(-*q));
	ASSERT_TRUE(bpq_wait_node(*q, true, 5000));
	*fd = bpq_open(*q, O_RDWR);
	ASSERT_LE(0, *fd) TH_LOG("%m - open /dev/bpq%d", *q);
}

static void queue_teardown(struct __test_metadata *_metadata, int cfd, int q,
			   int fd)
{
	if (fd >= 0)
		close(fd);
	if (q >= 0)
		EXPECT_EQ(0, bpq_destroy(cfd, q));
	if (cfd >= 0)
		close(cfd);
}

/* Messages first ... first + n - 1; 0 or the first error. */
static int put(int fd, unsigned int first, unsigned int n)
{
	unsigned int i;
	ssize_t ret;

	for (i = first; i < first + n; i++) {
		ret = bpq_write_pattern(fd, i, MLEN(i));
		if (ret != MLEN(i))
			return ret < 0 ? (int)ret : -EIO;
	}
	return 0;
}

/* Read messages first ... first + n - 1, checked; 0 or the first error. */
static int get(int fd, unsigned int first, unsigned int n)
{
	unsigned int i;
	int ret;

	for (i = first; i < first + n; i++) {
		ret = bpq_read_pattern(fd, i, MLEN(i));
		if (ret)
			return ret;
	}
	return 0;
}

static int configure(int fd, __u32 strategy, __u32 capacity,
		     __u32 write_timeout_ms)
{
	struct bpq_config cfg;

	bpq_default_config(&cfg);
	cfg.strategy = strategy;
	cfg.capacity_msgs = capacity;
	cfg.write_timeout_ms = write_timeout_ms;
	return bpq_set_config(fd, &cfg);
}

static int grant(int fd, __u64 n)
{
	struct bpq_grant g = { .size = sizeof(g), .credits = n };

	return bpq_ioctl(fd, BPQ_IOC_GRANT, &g);
}

static int send_one(int fd, unsigned int n, __u32 flags)
{
	unsigned char buf[16];
	struct bpq_iovec vec = { .base = (uintptr_t)buf, .len = MLEN(n) };
	struct bpq_send_batch b = {
		.size = sizeof(b),
		.flags = flags,
		.msgs = (uintptr_t)&vec,
		.count = 1,
	};

	fill_pattern(buf, MLEN(n), n);
	return bpq_ioctl(fd, BPQ_IOC_SEND_BATCH, &b);
}

static int recv_batch(int fd, __u32 flags)
{
	struct bpq_msg_info infos[4];
	unsigned char buf[512];
	struct bpq_recv_batch b = {
		.size = sizeof(b),
		.flags = flags,
		.buf = (uintptr_t)buf,
		.buf_len = sizeof(buf),
		.max_records = 4,
		.infos = (uintptr_t)infos,
	};

	return bpq_ioctl(fd, BPQ_IOC_RECV_BATCH, &b);
}

static int recv_one(int fd, __u32 flags, __u32 timeout_ms)
{
	unsigned char buf[512];

	return bpq_recv(fd, buf, sizeof(buf), flags, timeout_ms, NULL);
}

/* Open -> @state, by a file open for reading and writing. */
static int end_stream(int fd, __u32 state)
{
	switch (state) {
	case BPQ_STREAM_COMPLETED:
		return bpq_shutdown(fd, BPQ_SHUTDOWN_COMPLETE, 0);
	case BPQ_STREAM_FAILED:
		return bpq_shutdown(fd, BPQ_SHUTDOWN_FAIL, FAIL_ERR);
	case BPQ_STREAM_CANCELLED:
		return bpq_shutdown(fd, BPQ_SHUTDOWN_CANCEL, 0);
	default:
		return 0;
	}
}

/* What a read of an ended, drained stream in @state returns. */
static int eof_result(__u32 state)
{
	return state == BPQ_STREAM_FAILED ? -ECONNRESET : 0;
}

/* sysfs "stream" of @state (@error if failed) */
static void stream_text(char *buf, size_t len, __u32 state, __u32 error)
{
	if (state == BPQ_STREAM_FAILED)
		snprintf(buf, len, "failed %s", errno_name(error));
	else
		snprintf(buf, len, "%s", bpq_stream_name(state));
}

/*
 * The stream is in @state (with @error, if failed) in epoch @epoch, and
 * the stats snapshot and sysfs say so.
 */
static void assert_stream(struct __test_metadata *_metadata, int fd, int q,
			  __u32 state, __u32 error, __u64 epoch)
{
	char buf[64], want[64];
	struct bpq_stats st;

	ASSERT_EQ(0, bpq_get_stats(fd, &st));
	ASSERT_EQ(state, st.stream)
		TH_LOG("stream %s, expected %s", bpq_stream_name(st.stream),
		       bpq_stream_name(state));
	ASSERT_EQ(state == BPQ_STREAM_FAILED ? error : 0, st.stream_error);
	ASSERT_EQ(epoch, st.stream_epoch);
	ASSERT_EQ(0, bpq_sysfs_read(q, "stream", buf, sizeof(buf)));
	stream_text(want, sizeof(want), state, error);
	ASSERT_STREQ(want, buf);
	ASSERT_EQ(epoch, bpq_sysfs_u64(q, "stream_epoch"));
}

/* ---- signals ---- */

/* Take a pending SIGPIPE (blocked): was there one? */
static bool take_sigpipe(void)
{
	struct timespec zero = { 0, 0 };
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	return sigtimedwait(&set, NULL, &zero) == SIGPIPE;
}

/* Is a SIGPIPE pending, for this thread or the process? */
static bool sigpipe_pending(void)
{
	sigset_t set;

	sigemptyset(&set);
	return !sigpending(&set) && sigismember(&set, SIGPIPE);
}

static int sigpipes;	/* atomic: SIGPIPEs handled */

static void on_sigpipe(int sig)
{
	(void)sig;
	__atomic_add_fetch(&sigpipes, 1, __ATOMIC_RELAXED);
}

/* Count SIGPIPE with a handler, unblocked: for threads that get it. */
static int count_sigpipes(void)
{
	struct sigaction sa = { .sa_handler = on_sigpipe };
	sigset_t set;

	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	__atomic_store_n(&sigpipes, 0, __ATOMIC_RELAXED);
	if (sigaction(SIGPIPE, &sa, NULL))
		return -errno;
	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	return sigprocmask(SIG_UNBLOCK, &set, NULL) ? -errno : 0;
}

/* ---- poll ---- */

static short pbits(int fd)
{
	struct pollfd p = {
		.fd = fd,
		.events = P_IN | P_OUT | POLLPRI | POLLRDHUP,
	};

	if (poll(&p, 1, 0) < 0)
		return -1;
	return p.revents;
}

/*
 * The bits of a file (open for reading: @rd, for writing: @wr) of an
 * ended stream: a reader has EPOLLRDHUP, and EPOLLIN and EPOLLHUP once
 * drained; a writer EPOLLOUT, and EPOLLERR after a cancel. Neither gets
 * what belongs to the other.
 */
static void assert_end_bits(struct __test_metadata *_metadata, short b,
			    bool rd, bool wr, bool drained, bool cancelled)
{
	if (rd) {
		EXPECT_EQ(POLLRDHUP, b & POLLRDHUP) TH_LOG("revents %#x", b);
		EXPECT_EQ(P_IN, b & P_IN) TH_LOG("revents %#x", b);
		EXPECT_EQ(drained ? POLLHUP : 0, b & POLLHUP)
			TH_LOG("revents %#x", b);
	} else {
		EXPECT_EQ(0, b & (POLLRDHUP | POLLHUP)) TH_LOG("revents %#x", b);
	}
	if (wr) {
		EXPECT_EQ(P_OUT, b & P_OUT) TH_LOG("revents %#x", b);
		EXPECT_EQ(cancelled ? POLLERR : 0, b & POLLERR)
			TH_LOG("revents %#x", b);
	} else {
		EXPECT_EQ(0, b & POLLERR) TH_LOG("revents %#x", b);
	}
}

/* ===================================================================== */
/* Per open mode                                                         */
/* ===================================================================== */

FIXTURE(modes) {
	int cfd;
	int q;
	int fd;		/* O_RDWR: sets the states up, writes, drains */
	int mfd;	/* the variant's mode, O_NONBLOCK */
};

FIXTURE_VARIANT(modes) {
	int mode;
	bool rd;	/* open for reading */
	bool wr;	/* open for writing */
};

FIXTURE_VARIANT_ADD(modes, rdonly) { .mode = O_RDONLY, .rd = true };
FIXTURE_VARIANT_ADD(modes, wronly) { .mode = O_WRONLY, .wr = true };
FIXTURE_VARIANT_ADD(modes, rdwr) { .mode = O_RDWR, .rd = true, .wr = true };

FIXTURE_SETUP(modes)
{
	self->mfd = -1;
	queue_setup(_metadata, &self->cfd, &self->q, &self->fd);
	self->mfd = bpq_open(self->q, variant->mode | O_NONBLOCK);
	ASSERT_LE(0, self->mfd) TH_LOG("%m - open /dev/bpq%d", self->q);
}

FIXTURE_TEARDOWN(modes)
{
	if (self->mfd >= 0)
		close(self->mfd);
	queue_teardown(_metadata, self->cfd, self->q, self->fd);
}

enum op { OP_COMPLETE, OP_FAIL, OP_CANCEL, OP_DISCARD, OP_REOPEN };

static const char *const op_names[] = {
	[OP_COMPLETE] = "COMPLETE", [OP_FAIL] = "FAIL",
	[OP_CANCEL] = "CANCEL", [OP_DISCARD] = "CANCEL|DISCARD",
	[OP_REOPEN] = "REOPEN",
};

static int do_op(int fd, enum op op)
{
	switch (op) {
	case OP_COMPLETE:
		return bpq_shutdown(fd, BPQ_SHUTDOWN_COMPLETE, 0);
	case OP_FAIL:
		return bpq_shutdown(fd, BPQ_SHUTDOWN_FAIL, FAIL_ERR2);
	case OP_CANCEL:
		return bpq_shutdown(fd, BPQ_SHUTDOWN_CANCEL, 0);
	case OP_DISCARD:
		return bpq_shutdown(fd, BPQ_SHUTDOWN_CANCEL |
					BPQ_SHUTDOWN_DISCARD, 0);
	default:
		return bpq_shutdown(fd, BPQ_SHUTDOWN_REOPEN, 0);
	}
}

#define O	BPQ_STREAM_OPEN
#define C	BPQ_STREAM_COMPLETED
#define F	BPQ_STREAM_FAILED
#define X	BPQ_STREAM_CANCELLED
#define ALL	1000		/* returns the number of messages queued */

/* The contract's table: with messages queued, and without. */
static const struct transition {
	__u32 from;
	enum op op;
	int ret;
	__u32 to;
	int ret_empty;
	__u32 to_empty;
} transitions[] = {
	{ O, OP_COMPLETE,	0,	C,	0,	C },
	{ O, OP_FAIL,		0,	F,	0,	F },
	{ O, OP_CANCEL,		0,	X,	0,	X },
	{ O, OP_DISCARD,	ALL,	X,	ALL,	X },
	{ O, OP_REOPEN,		0,	O,	0,	O },

	{ C, OP_COMPLETE,	0,	C,	0,	C },
	{ C, OP_FAIL,		-EBUSY,	C,	-EBUSY,	C },
	{ C, OP_CANCEL,		0,	X,	0,	X },
	{ C, OP_DISCARD,	ALL,	X,	ALL,	X },
	{ C, OP_REOPEN,		-EBUSY,	C,	0,	O },

	{ F, OP_COMPLETE,	-EBUSY,	F,	-EBUSY,	F },
	{ F, OP_FAIL,		0,	F,	0,	F },
	{ F, OP_CANCEL,		0,	X,	0,	X },
	{ F, OP_DISCARD,	ALL,	X,	ALL,	X },
	{ F, OP_REOPEN,		-EBUSY,	F,	0,	O },

	{ X, OP_COMPLETE,	-EPIPE,	X,	-EPIPE,	X },
	{ X, OP_FAIL,		-EPIPE,	X,	-EPIPE,	X },
	{ X, OP_CANCEL,		0,	X,	0,	X },
	{ X, OP_DISCARD,	ALL,	X,	ALL,	X },
	{ X, OP_REOPEN,		-EBUSY,	X,	0,	O },
};

#undef O
#undef C
#undef F
#undef X

#define NQ	3	/* messages queued in the rows "with messages" */

TEST_F(modes, transitions)
{
	unsigned int i, queued, id = 0;
	struct bpq_stats st0, st;
	int ret, want;
	__u32 to, err;
	__u64 epoch;
	bool allowed;

	for (i = 0; i < ARRAY_LEN(transitions); i++) {
		for (queued = 0; queued <= NQ; queued += NQ) {
			const struct transition *t = &transitions[i];

			/* back to an open, empty stream */
			ASSERT_LE(0, bpq_flush(self->fd));
			ASSERT_EQ(0, bpq_shutdown(self->fd, BPQ_SHUTDOWN_REOPEN, 0));
			ASSERT_EQ(0, put(self->fd, id, queued));
			ASSERT_EQ(0, end_stream(self->fd, t->from));
			ASSERT_EQ(0, bpq_get_stats(self->fd, &st0));
			ASSERT_EQ(t->from, st0.stream);

			ret = do_op(self->mfd, t->op);

			want = queued ? t->ret : t->ret_empty;
			to = queued ? t->to : t->to_empty;
			if (want == ALL)
				want = queued;
			allowed = t->op == OP_REOPEN ||
				  (t->op <= OP_FAIL ? variant->wr : variant->rd);
			if (!allowed) {
				want = -EBADF;
				to = t->from;
			}
			err = t->from == BPQ_STREAM_FAILED ? FAIL_ERR : FAIL_ERR2;
			epoch = st0.stream_epoch +
				(to == BPQ_STREAM_OPEN && t->from != BPQ_STREAM_OPEN);
			ASSERT_EQ(want, ret)
				TH_LOG("%s of %s with %u queued",
				       op_names[t->op], bpq_stream_name(t->from),
				       queued);
			assert_stream(_metadata, self->fd, self->q, to, err,
				      epoch);
			ASSERT_EQ(0, bpq_get_stats(self->fd, &st));
			ASSERT_EQ(st0.flushed + (ret > 0 ? ret : 0), st.flushed);
			ASSERT_EQ(ret > 0 ? 0 : queued, st.depth_msgs)
				TH_LOG("%s of %s with %u queued",
				       op_names[t->op], bpq_stream_name(t->from),
				       queued);
			ASSERT_TRUE(bpq_stats_balanced(&st));

			/* what is queued is there to read, then the end */
			if (ret <= 0)
				ASSERT_EQ(0, get(self->fd, id, queued));
			id += queued;
			ASSERT_EQ(to == BPQ_STREAM_OPEN ? -EAGAIN : eof_result(to),
				  recv_one(self->fd, BPQ_IO_NONBLOCK, 0))
				TH_LOG("%s of %s with %u queued",
				       op_names[t->op], bpq_stream_name(t->from),
				       queued);
		}
	}
}

/* What the calls of the mode return after each end, queued messages first. */
TEST_F(modes, calls_after_each_end)
{
	struct iovec iov = { .iov_base = "abc", .iov_len = 3 };
	unsigned int e, id = 0;
	struct bpq_stats st;
	__u32 end;
	int want;

	for (e = 0; e < ARRAY_LEN(ends); e++) {
		end = ends[e];
		want = eof_result(end);
		ASSERT_EQ(0, put(self->fd, id, 2));
		ASSERT_EQ(0, end_stream(self->fd, end));

		if (variant->wr) {
			EXPECT_EQ(-EPIPE, bpq_write(self->mfd, "x", 1));
			EXPECT_TRUE(take_sigpipe()) TH_LOG("write: no SIGPIPE");
			EXPECT_EQ(-1, writev(self->mfd, &iov, 1));
			EXPECT_EQ(EPIPE, errno);
			EXPECT_TRUE(take_sigpipe()) TH_LOG("writev: no SIGPIPE");
			EXPECT_EQ(-EPIPE, send_one(self->mfd, 99, 0));
			EXPECT_EQ(-EPIPE, send_one(self->mfd, 99,
						   BPQ_IO_NONBLOCK));
			EXPECT_FALSE(sigpipe_pending())
				TH_LOG("SEND_BATCH raised SIGPIPE");
		} else {
			EXPECT_EQ(-EBADF, bpq_write(self->mfd, "x", 1));
			EXPECT_FALSE(take_sigpipe());
		}

		if (variant->rd) {
			unsigned char buf[64];
			struct bpq_msg_info info;

			ASSERT_EQ(0, bpq_read_pattern(self->mfd, id, MLEN(id)));
			ASSERT_EQ(MLEN(id + 1), bpq_recv(self->mfd, buf,
							  sizeof(buf), 0, 0,
							  &info));
			ASSERT_TRUE(check_pattern(buf, MLEN(id + 1), id + 1));
			/* O_NONBLOCK: the end, not EAGAIN; and it stays */
			EXPECT_EQ(want, bpq_read(self->mfd, buf, sizeof(buf)));
			EXPECT_EQ(want, recv_one(self->mfd, 0, 0));
			EXPECT_EQ(want, recv_one(self->mfd, BPQ_IO_TIMEOUT, 0));
			EXPECT_EQ(want, recv_batch(self->mfd, 0));
			EXPECT_EQ(want, bpq_read(self->mfd, buf, sizeof(buf)));
		} else {
			ASSERT_EQ(0, get(self->fd, id, 2));
		}
		id += 2;
		ASSERT_EQ(0, bpq_get_stats(self->fd, &st));
		EXPECT_EQ(id, st.enqueued_msgs);
		EXPECT_EQ(id, st.dequeued_msgs);
		EXPECT_EQ(0, st.depth_msgs);
		EXPECT_EQ(0, st.dropped_newest);
		EXPECT_EQ(0, st.dropped_oldest);
		ASSERT_EQ(0, bpq_shutdown(self->mfd, BPQ_SHUTDOWN_REOPEN, 0));
		assert_stream(_metadata, self->fd, self->q, BPQ_STREAM_OPEN, 0,
			      e + 1);
	}
	/* open again: the mode's calls work as before */
	if (variant->wr) {
		EXPECT_EQ(0, put(self->mfd, id, 1));
	} else {
		EXPECT_EQ(0, put(self->fd, id, 1));
	}
	if (variant->rd) {
		EXPECT_EQ(0, get(self->mfd, id, 1));
		EXPECT_EQ(-EAGAIN, recv_one(self->mfd, 0, 0));
	}
	EXPECT_FALSE(sigpipe_pending());
}

TEST_F(modes, poll_bits)
{
	unsigned int e;
	short b;

	b = pbits(self->mfd);
	EXPECT_EQ(0, b & (POLLRDHUP | POLLHUP | POLLERR)) TH_LOG("%#x", b);
	if (variant->rd) {
		EXPECT_EQ(0, b & P_IN);
	}
	if (variant->wr) {
		EXPECT_EQ(P_OUT, b & P_OUT);
	}

	for (e = 0; e < ARRAY_LEN(ends); e++) {
		bool cancelled = ends[e] == BPQ_STREAM_CANCELLED;

		ASSERT_EQ(0, put(self->fd, e, 1));
		b = pbits(self->mfd);
		EXPECT_EQ(0, b & (POLLRDHUP | POLLHUP | POLLERR));
		if (variant->rd) {
			EXPECT_EQ(P_IN, b & P_IN);
		}
		ASSERT_EQ(0, end_stream(self->fd, ends[e]));
		assert_end_bits(_metadata, pbits(self->mfd), variant->rd,
				variant->wr, false, cancelled);
		ASSERT_EQ(0, get(self->fd, e, 1));
		assert_end_bits(_metadata, pbits(self->mfd), variant->rd,
				variant->wr, true, cancelled);

		ASSERT_EQ(0, bpq_shutdown(self->fd, BPQ_SHUTDOWN_REOPEN, 0));
		b = pbits(self->mfd);
		EXPECT_EQ(0, b & (POLLRDHUP | POLLHUP | POLLERR))
			TH_LOG("reopened: %#x", b);
		if (variant->rd) {
			EXPECT_EQ(0, b & P_IN);
		}
	}

	/* A full queue: a writer may write again once the stream ended. */
	ASSERT_EQ(0, configure(self->fd, BPQ_STRATEGY_BLOCK, 1, 0));
	ASSERT_EQ(0, put(self->fd, 10, 1));
	if (variant->wr) {
		EXPECT_EQ(0, pbits(self->mfd) & P_OUT);
	}
	ASSERT_EQ(0, bpq_shutdown(self->fd, BPQ_SHUTDOWN_COMPLETE, 0));
	assert_end_bits(_metadata, pbits(self->mfd), variant->rd, variant->wr,
			false, false);
}

/* An edge-triggered epoll waiter is woken by the end. */
TEST_F(modes, epoll_woken_by_end)
{
	struct epoll_event ev = {
		.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
	};
	int ep;

	/* a writer that cannot write: the queue is full */
	ASSERT_EQ(0, configure(self->fd, BPQ_STRATEGY_BLOCK, 1, 0));
	if (variant->wr) {
		ASSERT_EQ(0, put(self->fd, 0, 1));
	}
	ep = epoll_create1(EPOLL_CLOEXEC);
	ASSERT_LE(0, ep);
	ASSERT_EQ(0, epoll_ctl(ep, EPOLL_CTL_ADD, self->mfd, &ev));
	/* what was ready before is taken: only a new edge comes now */
	ASSERT_LE(0, epoll_wait(ep, &ev, 1, 0));
	ASSERT_EQ(0, epoll_wait(ep, &ev, 1, 0));

	ASSERT_EQ(0, bpq_shutdown(self->fd, BPQ_SHUTDOWN_COMPLETE, 0));
	ASSERT_EQ(1, epoll_wait(ep, &ev, 1, 5000)) TH_LOG("no wakeup");
	if (variant->rd) {
		EXPECT_EQ(EPOLLRDHUP, ev.events & EPOLLRDHUP)
			TH_LOG("events %#x", ev.events);
	}
	if (variant->wr) {
		EXPECT_EQ(EPOLLOUT, ev.events & EPOLLOUT)
			TH_LOG("events %#x", ev.events);
	}
	if (variant->rd && !variant->wr) {
		/* nothing was queued: drained at once */
		EXPECT_EQ(EPOLLIN | EPOLLHUP, ev.events & (EPOLLIN | EPOLLHUP))
			TH_LOG("events %#x", ev.events);
	}
	close(ep);
}

/* ===================================================================== */
/* Blocked readers and writers                                           */
/* ===================================================================== */

FIXTURE(blocked) {
	int cfd;
	int q;
	int fd;
	struct io_thread *t;
	int n;
};

FIXTURE_VARIANT(blocked) {
	__u32 end;
	bool discard;	/* CANCEL | DISCARD */
	int n;		/* threads */
};

FIXTURE_VARIANT_ADD(blocked, completed_1) { .end = BPQ_STREAM_COMPLETED, .n = 1 };
FIXTURE_VARIANT_ADD(blocked, completed_10) { .end = BPQ_STREAM_COMPLETED, .n = 10 };
FIXTURE_VARIANT_ADD(blocked, completed_100) { .end = BPQ_STREAM_COMPLETED, .n = 100 };
FIXTURE_VARIANT_ADD(blocked, failed_1) { .end = BPQ_STREAM_FAILED, .n = 1 };
FIXTURE_VARIANT_ADD(blocked, failed_10) { .end = BPQ_STREAM_FAILED, .n = 10 };
FIXTURE_VARIANT_ADD(blocked, failed_100) { .end = BPQ_STREAM_FAILED, .n = 100 };
FIXTURE_VARIANT_ADD(blocked, cancelled_1) { .end = BPQ_STREAM_CANCELLED, .n = 1 };
FIXTURE_VARIANT_ADD(blocked, cancelled_10) { .end = BPQ_STREAM_CANCELLED, .n = 10 };
FIXTURE_VARIANT_ADD(blocked, cancelled_100) { .end = BPQ_STREAM_CANCELLED, .n = 100 };
FIXTURE_VARIANT_ADD(blocked, discarded_1) {
	.end = BPQ_STREAM_CANCELLED, .discard = true, .n = 1 };
FIXTURE_VARIANT_ADD(blocked, discarded_10) {
	.end = BPQ_STREAM_CANCELLED, .discard = true, .n = 10 };
FIXTURE_VARIANT_ADD(blocked, discarded_100) {
	.end = BPQ_STREAM_CANCELLED, .discard = true, .n = 100 };

FIXTURE_SETUP(blocked)
{
	self->t = NULL;
	self->n = 0;
	queue_setup(_metadata, &self->cfd, &self->q, &self->fd);
	self->t = calloc(variant->n, sizeof(*self->t));
	ASSERT_TRUE(self->t != NULL);
}

FIXTURE_TEARDOWN(blocked)
{
	int i;

	/* threads still asleep after a failure: the destroy ends them */
	queue_teardown(_metadata, self->cfd, self->q, self->fd);
	for (i = 0; i < self->n; i++)
		if (!io_thread_wait(&self->t[i], 5000))
			_exit(KSFT_FAIL);	/* cannot free what they use */
	free(self->t);
}

/* The variant's end; what a DISCARD returned. */
static int blocked_end(FIXTURE_DATA(blocked) *self,
		       const FIXTURE_VARIANT(blocked) *variant)
{
	if (variant->discard)
		return bpq_shutdown(self->fd, BPQ_SHUTDOWN_CANCEL |
					      BPQ_SHUTDOWN_DISCARD, 0);
	return end_stream(self->fd, variant->end);
}

static const enum io_op read_ops[] = { IO_READ, IO_RECV, IO_RECV_BATCH };

/* Start reader i, one of the three calls, and wait until it sleeps. */
static void start_readers(struct __test_metadata *_metadata,
			  FIXTURE_DATA(blocked) *self, int n)
{
	int i;

	for (i = 0; i < n; i++) {
		ASSERT_EQ(0, io_thread_start(&self->t[i], self->fd,
					     read_ops[i % 3], NULL, 64));
		self->n = i + 1;
	}
	for (i = 0; i < n; i++) {
		ASSERT_TRUE(io_thread_blocked(&self->t[i], 10000))
			TH_LOG("reader %d not asleep", i);
	}
	ASSERT_EQ(0, count_done(self->t, n));
}

/* Every one returns, and within a bound: 0 or all of them. */
static void join_all(struct __test_metadata *_metadata,
		     FIXTURE_DATA(blocked) *self)
{
	int i;

	for (i = 0; i < self->n; i++) {
		ASSERT_TRUE(io_thread_wait(&self->t[i], 10000))
			TH_LOG("thread %d of %d not woken", i, self->n);
	}
	self->n = 0;
}

/* Readers asleep on an empty queue: the end wakes every one of them. */
TEST_F(blocked, readers_woken)
{
	int i, want = eof_result(variant->end);

	start_readers(_metadata, self, variant->n);
	ASSERT_EQ(0, blocked_end(self, variant));
	join_all(_metadata, self);
	for (i = 0; i < variant->n; i++) {
		EXPECT_EQ(want, self->t[i].ret) TH_LOG("reader %d", i);
	}
	assert_stream(_metadata, self->fd, self->q, variant->end, FAIL_ERR, 0);
}

/*
 * Half as many messages as readers, then the end: each message reaches
 * one reader (unless discarded), and the rest, after the drain, get the
 * end.
 */
TEST_F(blocked, readers_drain_then_end)
{
	int i, m = (variant->n + 1) / 2, got = 0, ended = 0, discarded;
	int want = eof_result(variant->end);
	unsigned char *seen;

	seen = calloc(m, 1);
	ASSERT_TRUE(seen != NULL);
	start_readers(_metadata, self, variant->n);
	ASSERT_EQ(0, put(self->fd, 0, m));
	discarded = blocked_end(self, variant);
	ASSERT_LE(0, discarded);
	ASSERT_GE(m, discarded);
	join_all(_metadata, self);
	for (i = 0; i < variant->n; i++) {
		struct io_thread *t = &self->t[i];
		int k;

		if (t->ret == want) {
			ended++;
			continue;
		}
		for (k = 0; k < m; k++)
			if (t->ret == MLEN(k) && check_pattern(t->buf, MLEN(k), k) &&
			    !seen[k])
				break;
		EXPECT_LT(k, m) TH_LOG("reader %d: %zd, not a message or the end",
				       i, t->ret);
		if (k < m) {
			seen[k] = 1;
			got++;
		}
	}
	EXPECT_EQ(m, got + discarded);
	EXPECT_EQ(variant->n - got, ended);
	EXPECT_EQ(want, recv_one(self->fd, BPQ_IO_NONBLOCK, 0));
	free(seen);
}

/* Writers asleep on a full queue: the end wakes every one with EPIPE. */
TEST_F(blocked, writers_woken)
{
	int i, nwrite = 0, ret, want = eof_result(variant->end);
	struct bpq_stats st;
	unsigned char c = 'w';

	ASSERT_EQ(0, configure(self->fd, BPQ_STRATEGY_BLOCK, 1, 0));
	ASSERT_EQ(0, put(self->fd, 0, 1));
	ASSERT_EQ(0, count_sigpipes());
	for (i = 0; i < variant->n; i++) {
		enum io_op op = i % 2 ? IO_SEND_BATCH : IO_WRITE;

		nwrite += op == IO_WRITE;
		ASSERT_EQ(0, io_thread_start(&self->t[i], self->fd, op, &c, 1));
		self->n = i + 1;
	}
	for (i = 0; i < variant->n; i++) {
		ASSERT_TRUE(io_thread_blocked(&self->t[i], 10000))
			TH_LOG("writer %d not asleep", i);
	}
	ASSERT_EQ(0, count_done(self->t, variant->n));

	ret = blocked_end(self, variant);
	ASSERT_EQ(variant->discard ? 1 : 0, ret);
	join_all(_metadata, self);
	for (i = 0; i < variant->n; i++) {
		EXPECT_EQ(-EPIPE, self->t[i].ret) TH_LOG("writer %d", i);
	}
	/* one SIGPIPE per write(), none for SEND_BATCH (it may coalesce) */
	EXPECT_LE(1, __atomic_load_n(&sigpipes, __ATOMIC_RELAXED));
	EXPECT_GE(nwrite, __atomic_load_n(&sigpipes, __ATOMIC_RELAXED));

	/* none of them got in, even where a discard made room */
	ASSERT_EQ(0, bpq_get_stats(self->fd, &st));
	EXPECT_EQ(1, st.enqueued_msgs);
	EXPECT_EQ(variant->discard ? 0 : 1, st.depth_msgs);
	EXPECT_TRUE(bpq_stats_balanced(&st));
	if (!variant->discard) {
		EXPECT_EQ(0, get(self->fd, 0, 1));
	}
	EXPECT_EQ(want, recv_one(self->fd, BPQ_IO_NONBLOCK, 0));
	assert_stream(_metadata, self->fd, self->q, variant->end, FAIL_ERR, 0);
}

/* ===================================================================== */
/* Per strategy                                                          */
/* ===================================================================== */

FIXTURE(strategies) {
	int cfd;
	int q;
	int fd;
	int nfd;	/* O_NONBLOCK */
};

FIXTURE_VARIANT(strategies) {
	__u32 strategy;
};

FIXTURE_VARIANT_ADD(strategies, block) { .strategy = BPQ_STRATEGY_BLOCK };
FIXTURE_VARIANT_ADD(strategies, drop_newest) { .strategy = BPQ_STRATEGY_DROP_NEWEST };
FIXTURE_VARIANT_ADD(strategies, drop_oldest) { .strategy = BPQ_STRATEGY_DROP_OLDEST };
FIXTURE_VARIANT_ADD(strategies, credit) { .strategy = BPQ_STRATEGY_CREDIT };
FIXTURE_VARIANT_ADD(strategies, adaptive) { .strategy = BPQ_STRATEGY_ADAPTIVE };

FIXTURE_SETUP(strategies)
{
	self->nfd = -1;
	queue_setup(_metadata, &self->cfd, &self->q, &self->fd);
	self->nfd = bpq_open(self->q, O_RDWR | O_NONBLOCK);
	ASSERT_LE(0, self->nfd);
	/* a bound on a wrong wait: ETIMEDOUT instead of EPIPE */
	ASSERT_EQ(0, configure(self->fd, variant->strategy, 2, 2000));
}

FIXTURE_TEARDOWN(strategies)
{
	if (self->nfd >= 0)
		close(self->nfd);
	queue_teardown(_metadata, self->cfd, self->q, self->fd);
}

/* A full queue, ended: writes fail with EPIPE, the queue stays as it is. */
TEST_F(strategies, full_queue_write_after_end)
{
	struct bpq_stats st0, st;
	unsigned int e, id = 0;

	for (e = 0; e < ARRAY_LEN(ends); e++) {
		if (variant->strategy == BPQ_STRATEGY_CREDIT) {
			ASSERT_EQ(0, grant(self->fd, 2));
		}
		ASSERT_EQ(0, put(self->fd, id, 2));
		ASSERT_EQ(0, bpq_get_stats(self->fd, &st0));
		ASSERT_EQ(2, st0.depth_msgs);
		ASSERT_EQ(0, end_stream(self->fd, ends[e]));

		EXPECT_EQ(-EPIPE, bpq_write_pattern(self->nfd, 100, 8));
		EXPECT_TRUE(take_sigpipe());
		EXPECT_EQ(-EPIPE, bpq_write_pattern(self->fd, 100, 8));
		EXPECT_TRUE(take_sigpipe());
		EXPECT_EQ(-EPIPE, send_one(self->fd, 100, 0));
		EXPECT_EQ(-EPIPE, send_one(self->nfd, 100, 0));
		EXPECT_FALSE(sigpipe_pending());

		ASSERT_EQ(0, bpq_get_stats(self->fd, &st));
		EXPECT_EQ(st0.enqueued_msgs, st.enqueued_msgs);
		EXPECT_EQ(2, st.depth_msgs);
		EXPECT_EQ(0, st.dropped_newest);
		EXPECT_EQ(0, st.dropped_oldest);
		EXPECT_EQ(0, st.timeouts);
		EXPECT_TRUE(bpq_stats_balanced(&st));

		EXPECT_EQ(0, get(self->nfd, id, 2));
		EXPECT_EQ(eof_result(ends[e]), recv_one(self->nfd, 0, 0));
		id += 2;
		ASSERT_EQ(0, bpq_shutdown(self->fd, BPQ_SHUTDOWN_REOPEN, 0));
	}
}

/* ===================================================================== */
/* One queue, one O_RDWR file                                            */
/* ===================================================================== */

FIXTURE(stream) {
	int cfd;
	int q;
	int fd;		/* O_RDWR; closed (-1) by the tests that count files */
};

FIXTURE_SETUP(stream)
{
	queue_setup(_metadata, &self->cfd, &self->q, &self->fd);
}

FIXTURE_TEARDOWN(stream)
{
	queue_teardown(_metadata, self->cfd, self->q, self->fd);
}

TEST_F(stream, starts_open)
{
	struct bpq_config cfg;
	char buf[64];

	assert_stream(_metadata, self->fd, self->q, BPQ_STREAM_OPEN, 0, 0);
	ASSERT_EQ(0, bpq_get_config(self->fd, &cfg));
	EXPECT_EQ(BPQ_HANGUP_NONE, cfg.hangup);
	EXPECT_EQ(BPQ_READ_MESSAGE, cfg.read_mode);
	ASSERT_EQ(0, bpq_sysfs_read(self->q, "hangup", buf, sizeof(buf)));
	EXPECT_STREQ("none", buf);
	/* REOPEN of an open stream: nothing, no new epoch */
	EXPECT_EQ(0, bpq_shutdown(self->fd, BPQ_SHUTDOWN_REOPEN, 0));
	EXPECT_EQ(0, bpq_sysfs_write(self->q, "stream", "open"));
	assert_stream(_metadata, self->fd, self->q, BPQ_STREAM_OPEN, 0, 0);
}

/* A blocking file: the end is returned at once, never waited for. */
TEST_F(stream, blocking_reads_at_end)
{
	struct iovec iov;
	unsigned char buf[64];
	unsigned int e;
	ssize_t n;
	int want;

	iov.iov_base = buf;
	iov.iov_len = sizeof(buf);
	for (e = 0; e < ARRAY_LEN(ends); e++) {
		want = eof_result(ends[e]);
		ASSERT_EQ(0, put(self->fd, e, 3));
		ASSERT_EQ(0, end_stream(self->fd, ends[e]));
		/* the three in one batch, then the end */
		EXPECT_EQ(3, recv_batch(self->fd, 0));
		EXPECT_EQ(want, bpq_read(self->fd, buf, sizeof(buf)));
		n = readv(self->fd, &iov, 1);
		EXPECT_EQ(want, n < 0 ? -errno : n);
		EXPECT_EQ(want, recv_one(self->fd, 0, 0));
		EXPECT_EQ(want, recv_batch(self->fd, 0));
		EXPECT_EQ(want, recv_batch(self->fd, BPQ_IO_TIMEOUT));
		/* a flush of nothing changes nothing */
		EXPECT_EQ(0, bpq_flush(self->fd));
		EXPECT_EQ(want, recv_one(self->fd, 0, 0));
		ASSERT_EQ(0, bpq_shutdown(self->fd, BPQ_SHUTDOWN_REOPEN, 0));
	}
}

/* A too small buffer still gets EMSGSIZE, and the message stays. */
TEST_F(stream, short_buffer_at_end)
{
	unsigned char buf[4];

	ASSERT_EQ(0, put(self->fd, 0, 1));
	ASSERT_EQ(0, bpq_shutdown(self->fd, BPQ_SHUTDOWN_COMPLETE, 0));
	EXPECT_EQ(-EMSGSIZE, bpq_read(self->fd, buf, sizeof(buf)));
	EXPECT_EQ(1, bpq_depth(self->fd));
	EXPECT_EQ(0, get(self->fd, 0, 1));
	EXPECT_EQ(0, bpq_read(self->fd, buf, sizeof(buf)));
}

/* SIGPIPE with a handler and ignored: EPIPE either way. */
TEST_F(stream, sigpipe_handled_and_ignored)
{
	struct sigaction ign = { .sa_handler = SIG_IGN };

	ASSERT_EQ(0, bpq_shutdown(self->fd, BPQ_SHUTDOWN_COMPLETE, 0));
	ASSERT_EQ(0, count_sigpipes());
	EXPECT_EQ(-EPIPE, bpq_write(self->fd, "x", 1));
	EXPECT_EQ(1, __atomic_load_n(&sigpipes, __ATOMIC_RELAXED));
	EXPECT_EQ(-EPIPE, send_one(self->fd, 0, 0));
	EXPECT_EQ(1, __atomic_load_n(&sigpipes, __ATOMIC_RELAXED));
	sigemptyset(&ign.sa_mask);
	ASSERT_EQ(0, sigaction(SIGPIPE, &ign, NULL));
	EXPECT_EQ(-EPIPE, bpq_write(self->fd, "x", 1));
	EXPECT_EQ(1, __atomic_load_n(&sigpipes, __ATOMIC_RELAXED));
}

TEST_F(stream, discard_counts_as_flushed)
{
	struct bpq_stats st;

	ASSERT_EQ(0, put(self->fd, 0, 5));
	EXPECT_EQ(5, bpq_shutdown(self->fd, BPQ_SHUTDOWN_CANCEL |
					    BPQ_SHUTDOWN_DISCARD, 0));
	ASSERT_EQ(0, bpq_get_stats(self->fd, &st));
	EXPECT_EQ(5, st.flushed);
	EXPECT_EQ(0, st.depth_msgs);
	EXPECT_EQ(0, st.depth_bytes);
	EXPECT_TRUE(bpq_stats_balanced(&st));
	EXPECT_EQ(5, bpq_sysfs_u64(self->q, "stats/flushed"));
	EXPECT_EQ(0, bpq_shutdown(self->fd, BPQ_SHUTDOWN_CANCEL |
					    BPQ_SHUTDOWN_DISCARD, 0));

	/* kept by a cancel, discarded by the next one */
	ASSERT_EQ(0, bpq_shutdown(self->fd, BPQ_SHUTDOWN_REOPEN, 0));
	ASSERT_EQ(0, put(self->fd, 5, 4));
	EXPECT_EQ(0, bpq_shutdown(self->fd, BPQ_SHUTDOWN_CANCEL, 0));
	EXPECT_EQ(4, bpq_depth(self->fd));
	EXPECT_EQ(0, get(self->fd, 5, 1));
	EXPECT_EQ(3, bpq_shutdown(self->fd, BPQ_SHUTDOWN_CANCEL |
					    BPQ_SHUTDOWN_DISCARD, 0));
	/* and FLUSH still adds to the same counter */
	ASSERT_EQ(0, bpq_shutdown(self->fd, BPQ_SHUTDOWN_REOPEN, 0));
	ASSERT_EQ(0, put(self->fd, 9, 2));
	EXPECT_EQ(2, bpq_flush(self->fd));
	ASSERT_EQ(0, bpq_get_stats(self->fd, &st));
	EXPECT_EQ(10, st.flushed);
	EXPECT_EQ(11, st.enqueued_msgs);
	EXPECT_EQ(1, st.dequeued_msgs);
	EXPECT_TRUE(bpq_stats_balanced(&st));
	assert_stream(_metadata, self->fd, self->q, BPQ_STREAM_OPEN, 0, 2);
}

/* A flush of an ended stream drains it: the end comes next. */
TEST_F(stream, flush_of_ended_stream)
{
	ASSERT_EQ(0, put(self->fd, 0, 3));
	ASSERT_EQ(0, bpq_shutdown(self->fd, BPQ_SHUTDOWN_FAIL, FAIL_ERR));
	EXPECT_EQ(3, bpq_flush(self->fd));
	EXPECT_EQ(-ECONNRESET, recv_one(self->fd, 0, 0));
	assert_stream(_metadata, self->fd, self->q, BPQ_STREAM_FAILED,
		      FAIL_ERR, 0);
	EXPECT_EQ(0, bpq_shutdown(self->fd, BPQ_SHUTDOWN_REOPEN, 0));
	assert_stream(_metadata, self->fd, self->q, BPQ_STREAM_OPEN, 0, 1);
}

TEST_F(stream, grant_after_cancel)
{
	struct bpq_stats st;
	__u64 credits;

	ASSERT_EQ(0, configure(self->fd, BPQ_STRATEGY_CREDIT, 16, 0));
	ASSERT_EQ(0, grant(self->fd, 5));
	ASSERT_EQ(0, put(self->fd, 0, 1));
	EXPECT_EQ(4, bpq_sysfs_u64(self->q, "credits_available"));

	ASSERT_EQ(0, bpq_shutdown(self->fd, BPQ_SHUTDOWN_CANCEL, 0));
	EXPECT_EQ(0, grant(self->fd, 3));
	EXPECT_EQ(0, bpq_sysfs_write(self->q, "grant", "3"));
	ASSERT_EQ(0, bpq_get_stats(self->fd, &st));
	EXPECT_EQ(4, st.credits_available);
	EXPECT_EQ(4, bpq_sysfs_u64(self->q, "credits_available"));
	EXPECT_EQ(-EPIPE, bpq_write(self->fd, "x", 1));
	EXPECT_TRUE(take_sigpipe());
	/* bad grants are still bad */
	EXPECT_EQ(-EINVAL, grant(self->fd, 0));

	/* open again, grants count again */
	ASSERT_EQ(0, get(self->fd, 0, 1));
	ASSERT_EQ(0, bpq_shutdown(self->fd, BPQ_SHUTDOWN_REOPEN, 0));
	credits = bpq_sysfs_u64(self->q, "credits_available");
	EXPECT_EQ(0, grant(self->fd, 3));
	EXPECT_EQ(credits + 3, bpq_sysfs_u64(self->q, "credits_available"));
}

/* A writer waiting for credit is woken by a cancel with EPIPE. */
TEST_F(stream, credit_writer_woken_by_cancel)
{
	struct io_thread w;

	ASSERT_EQ(0, configure(self->fd, BPQ_STRATEGY_CREDIT, 16, 0));
	ASSERT_EQ(0, io_thread_start(&w, self->fd, IO_WRITE, "c", 1));
	ASSERT_TRUE(io_thread_blocked(&w, 10000));
	ASSERT_EQ(0, bpq_shutdown(self->fd, BPQ_SHUTDOWN_CANCEL, 0));
	ASSERT_TRUE(io_thread_wait(&w, 10000)) TH_LOG("not woken");
	EXPECT_EQ(-EPIPE, w.ret);
	EXPECT_EQ(0, bpq_depth(self->fd));
	EXPECT_EQ(0, bpq_sysfs_u64(self->q, "stats/enqueued_msgs"));
}

/* ---- a writer whose copy stalls (userfaultfd) at the end ---- */

/* One write() or one-message SEND_BATCH from a buffer, on a thread. */
struct sender {
	pthread_t thr;
	int fd;
	bool batch;
	void *buf;
	size_t len;
	ssize_t ret;
};

static void *sender_fn(void *arg)
{
	struct sender *sd = arg;
	struct bpq_iovec iov = { .base = (uintptr_t)sd->buf, .len = sd->len };
	struct bpq_send_batch b = {
		.size = sizeof(b),
		.msgs = (uintptr_t)&iov,
		.count = 1,
	};

	if (sd->batch)
		sd->ret = bpq_ioctl(sd->fd, BPQ_IOC_SEND_BATCH, &b);
	else
		sd->ret = bpq_write(sd->fd, sd->buf, sd->len);
	return NULL;
}

/*
 * The stream ends while a writer's payload is still being copied in: if
 * the message was admitted it arrives, and no reader sees the end before
 * it (EAGAIN meanwhile); if not, the write fails with EPIPE and the
 * reader gets the end at once. A small payload, and a large one whose
 * second page is missing (copied in part, then stalled).
 */
TEST_F_TIMEOUT(stream, write_copying_at_end, 60)
{
	static const size_t lens[] = { 100, 3000 };
	long page = sysconf(_SC_PAGESIZE);
	unsigned char buf[4096], zero[3000];
	unsigned int e, k = 0, l;
	struct bpq_stats st;
	struct uffd_area u;
	struct sender sd;
	const char *why;
	int op, early, want;

	why = uffd_open(&u, 2 * 2 * 2 * ARRAY_LEN(ends));
	if (why)
		SKIP(return, "%s", why);
	memset(zero, 0, sizeof(zero));
	for (l = 0; l < ARRAY_LEN(lens); l++) {
		for (op = 0; op < 2; op++) {
			for (e = 0; e < ARRAY_LEN(ends); e++, k += 2) {
				unsigned char *p0 = u.area + k * page;

				want = eof_result(ends[e]);
				memset(&sd, 0, sizeof(sd));
				sd.fd = self->fd;
				sd.batch = op;
				sd.len = lens[l];
				/* the payload ends 2000 bytes into the page after */
				sd.buf = p0 + page + 2000 - sd.len;
				if (sd.buf < (void *)(p0 + page)) {
					ASSERT_EQ(0, uffd_zero(&u, p0));
				}
				ASSERT_EQ(0, pthread_create(&sd.thr, NULL,
							    sender_fn, &sd));
				ASSERT_TRUE(uffd_fault_seen(&u, 5000))
					TH_LOG("no fault");
				ASSERT_EQ(0, end_stream(self->fd, ends[e]));
				early = recv_one(self->fd, BPQ_IO_NONBLOCK, 0);
				ASSERT_EQ(0, uffd_zero(&u, p0 + page));
				pthread_join(sd.thr, NULL);
				TH_LOG("%zu bytes by %s copying at %s: %zd, a reader meanwhile %d",
				       sd.len, op ? "SEND_BATCH" : "write()",
				       bpq_stream_name(ends[e]), sd.ret, early);
				if (sd.ret == -EPIPE) {
					EXPECT_EQ(want, early);
				} else {
					EXPECT_EQ(op ? 1 : (ssize_t)sd.len, sd.ret);
					EXPECT_EQ(-EAGAIN, early)
						TH_LOG("the end came before a message admitted");
					EXPECT_EQ((int)sd.len,
						  bpq_recv(self->fd, buf,
							   sizeof(buf),
							   BPQ_IO_NONBLOCK, 0,
							   NULL));
					EXPECT_EQ(0, memcmp(buf, zero, sd.len));
				}
				EXPECT_EQ(want, recv_one(self->fd,
							 BPQ_IO_NONBLOCK, 0));
				ASSERT_EQ(0, bpq_shutdown(self->fd,
							  BPQ_SHUTDOWN_REOPEN,
							  0));
				take_sigpipe();
			}
		}
	}
	ASSERT_EQ(0, bpq_get_stats(self->fd, &st));
	EXPECT_TRUE(bpq_stats_balanced(&st));
	munmap(u.area, u.len);
	close(u.fd);
}

TEST_F(stream, reopen_busy_then_new_epoch)
{
	ASSERT_EQ(0, put(self->fd, 0, 2));
	ASSERT_EQ(0, bpq_shutdown(self->fd, BPQ_SHUTDOWN_COMPLETE, 0));
	EXPECT_EQ(-EBUSY, bpq_shutdown(self->fd, BPQ_SHUTDOWN_REOPEN, 0));
	EXPECT_EQ(-EBUSY, bpq_sysfs_write(self->q, "stream", "open"));
	ASSERT_EQ(0, get(self->fd, 0, 1));
	EXPECT_EQ(-EBUSY, bpq_shutdown(self->fd, BPQ_SHUTDOWN_REOPEN, 0));
	assert_stream(_metadata, self->fd, self->q, BPQ_STREAM_COMPLETED, 0, 0);
	ASSERT_EQ(0, get(self->fd, 1, 1));
	EXPECT_EQ(0, bpq_shutdown(self->fd, BPQ_SHUTDOWN_REOPEN, 0));
	assert_stream(_metadata, self->fd, self->q, BPQ_STREAM_OPEN, 0, 1);
	EXPECT_EQ(0, bpq_shutdown(self->fd, BPQ_SHUTDOWN_REOPEN, 0));
	assert_stream(_metadata, self->fd, self->q, BPQ_STREAM_OPEN, 0, 1);

	/* the new epoch is a stream like the first */
	ASSERT_EQ(0, put(self->fd, 2, 2));
	ASSERT_EQ(0, get(self->fd, 2, 1));
	ASSERT_EQ(0, bpq_shutdown(self->fd, BPQ_SHUTDOWN_FAIL, FAIL_ERR));
	ASSERT_EQ(0, get(self->fd, 3, 1));
	EXPECT_EQ(-ECONNRESET, recv_one(self->fd, 0, 0));
	EXPECT_EQ(0, bpq_sysfs_write(self->q, "stream", "open"));
	assert_stream(_metadata, self->fd, self->q, BPQ_STREAM_OPEN, 0, 2);
	EXPECT_EQ(-EAGAIN, recv_one(self->fd, BPQ_IO_NONBLOCK, 0));
	ASSERT_EQ(0, put(self->fd, 4, 1));
	ASSERT_EQ(0, get(self->fd, 4, 1));
}

/* Every value of sysfs "stream", read and written. */
TEST_F(stream, sysfs_stream)
{
	static const char *const garbage[] = {
		"bogus", "opened", "open now", "complete", "cancel", "failed",
		"failed ", "failed 0", "failed 134", "failed 11",
		"failed EAGAIN", "failed 4", "failed EINTR", "failed -5",
		"failed EBOGUS", "failed 5x", "failed EIO EIO", "completed 5",
		"Completed", "1",
	};
	static const struct {
		const char *write;	/* to sysfs, or NULL: FAIL error */
		__u32 error;
	} fails[] = {
		{ "failed EIO", EIO }, { "failed 5", EIO },
		{ "failed ENOSPC", ENOSPC }, { "failed 103", ECONNABORTED },
		{ "failed EIO\n", EIO }, { NULL, EPERM }, { NULL, EPIPE },
		{ NULL, EHWPOISON },
	};
	struct bpq_stats st;
	__u64 epoch = 0;
	unsigned int i;

	ASSERT_EQ(0, bpq_sysfs_write(self->q, "stream", "completed"));
	assert_stream(_metadata, self->fd, self->q, BPQ_STREAM_COMPLETED, 0, 0);
	EXPECT_EQ(0, bpq_sysfs_write(self->q, "stream", "completed"));
	EXPECT_EQ(-EBUSY, bpq_sysfs_write(self->q, "stream", "failed EIO"));
	ASSERT_EQ(0, bpq_sysfs_write(self->q, "stream", "open"));
	assert_stream(_metadata, self->fd, self->q, BPQ_STREAM_OPEN, 0, ++epoch);

	ASSERT_EQ(0, bpq_sysfs_write(self->q, "stream", "cancelled\n"));
	assert_stream(_metadata, self->fd, self->q, BPQ_STREAM_CANCELLED, 0,
		      epoch);
	EXPECT_EQ(-EPIPE, bpq_sysfs_write(self->q, "stream", "completed"));
	ASSERT_EQ(0, bpq_sysfs_write(self->q, "stream", "open\n"));
	assert_stream(_metadata, self->fd, self->q, BPQ_STREAM_OPEN, 0, ++epoch);

	for (i = 0; i < ARRAY_LEN(fails); i++) {
		if (fails[i].write) {
			ASSERT_EQ(0, bpq_sysfs_write(self->q, "stream",
						     fails[i].write))
				TH_LOG("\"%s\"", fails[i].write);
		} else {
			ASSERT_EQ(0, bpq_shutdown(self->fd, BPQ_SHUTDOWN_FAIL,
						  fails[i].error));
		}
		assert_stream(_metadata, self->fd, self->q, BPQ_STREAM_FAILED,
			      fails[i].error, epoch);
		EXPECT_EQ(-ECONNRESET, recv_one(self->fd, 0, 0));
		/* the first error is kept */
		EXPECT_EQ(0, bpq_sysfs_write(self->q, "stream", "failed 1"));
		assert_stream(_metadata, self->fd, self->q, BPQ_STREAM_FAILED,
			      fails[i].error, epoch);
		ASSERT_EQ(0, bpq_sysfs_write(self->q, "stream", "open"));
		assert_stream(_metadata, self->fd, self->q, BPQ_STREAM_OPEN, 0,
			      ++epoch);
	}

	/* anything else: EINVAL, and nothing changes */
	ASSERT_EQ(0, put(self->fd, 0, 1));
	for (i = 0; i < ARRAY_LEN(garbage); i++) {
		EXPECT_EQ(-EINVAL, bpq_sysfs_write(self->q, "stream",
						   garbage[i]))
			TH_LOG("\"%s\"", garbage[i]);
		assert_stream(_metadata, self->fd, self->q, BPQ_STREAM_OPEN, 0,
			      epoch);
	}
	ASSERT_EQ(0, bpq_sysfs_write(self->q, "stream", "completed"));
	for (i = 0; i < ARRAY_LEN(garbage); i++) {
		EXPECT_EQ(-EINVAL, bpq_sysfs_write(self->q, "stream",
						   garbage[i]))
			TH_LOG("\"%s\"", garbage[i]);
	}
	assert_stream(_metadata, self->fd, self->q, BPQ_STREAM_COMPLETED, 0,
		      epoch);
	ASSERT_EQ(0, bpq_get_stats(self->fd, &st));
	EXPECT_EQ(1, st.depth_msgs);
	EXPECT_EQ(0, st.flushed);
	EXPECT_EQ(0, get(self->fd, 0, 1));
}

/* readers and writers: open files, by mode, in sysfs and the stats. */
TEST_F(stream, sysfs_readers_writers)
{
	struct {
		int mode;
		int fd;
	} f[] = {
		{ O_RDONLY, -1 }, { O_WRONLY, -1 }, { O_RDWR | O_NONBLOCK, -1 },
		{ O_RDONLY | O_NONBLOCK, -1 }, { O_WRONLY | O_NONBLOCK, -1 },
	};
	unsigned int i, r = 1, w = 1;
	struct bpq_stats st;
	int d;

	for (i = 0; i <= ARRAY_LEN(f); i++) {
		ASSERT_EQ(0, bpq_get_stats(self->fd, &st));
		EXPECT_EQ(r, st.readers) TH_LOG("%u files open", i + 1);
		EXPECT_EQ(w, st.writers) TH_LOG("%u files open", i + 1);
		EXPECT_EQ(r, bpq_sysfs_u64(self->q, "readers"));
		EXPECT_EQ(w, bpq_sysfs_u64(self->q, "writers"));
		if (i == ARRAY_LEN(f))
			break;
		f[i].fd = bpq_open(self->q, f[i].mode);
		ASSERT_LE(0, f[i].fd);
		r += (f[i].mode & O_ACCMODE) != O_WRONLY;
		w += (f[i].mode & O_ACCMODE) != O_RDONLY;
	}
	/* a duplicate is the same open file */
	d = dup(self->fd);
	ASSERT_LE(0, d);
	EXPECT_EQ(r, bpq_sysfs_u64(self->q, "readers"));
	EXPECT_EQ(w, bpq_sysfs_u64(self->q, "writers"));
	close(d);
	/* an ended stream changes no count */
	ASSERT_EQ(0, bpq_shutdown(self->fd, BPQ_SHUTDOWN_COMPLETE, 0));
	EXPECT_EQ(r, bpq_sysfs_u64(self->q, "readers"));
	EXPECT_EQ(w, bpq_sysfs_u64(self->q, "writers"));
	for (i = 0; i < ARRAY_LEN(f); i++) {
		close(f[i].fd);
		r -= (f[i].mode & O_ACCMODE) != O_WRONLY;
		w -= (f[i].mode & O_ACCMODE) != O_RDONLY;
		ASSERT_EQ(0, bpq_get_stats(self->fd, &st));
		EXPECT_EQ(r, st.readers);
		EXPECT_EQ(w, st.writers);
		EXPECT_EQ(r, bpq_sysfs_u64(self->q, "readers"));
		EXPECT_EQ(w, bpq_sysfs_u64(self->q, "writers"));
	}
	close(self->fd);
	self->fd = -1;
	EXPECT_EQ(0, bpq_sysfs_u64(self->q, "readers"));
	EXPECT_EQ(0, bpq_sysfs_u64(self->q, "writers"));
}

TEST_F(stream, sysfs_hangup)
{
	static const char *const garbage[] = {
		"all", "writer", "none writers", "Both", "-1", "4",
	};
	struct bpq_config cfg;
	char buf[64];
	__u32 h;
	unsigned int i;

	for (h = BPQ_HANGUP_WRITERS; h <= BPQ_HANGUP_BOTH + 1; h++) {
		__u32 v = h % (BPQ_HANGUP_BOTH + 1);

		ASSERT_EQ(0, bpq_sysfs_write(self->q, "hangup",
					     bpq_hangup_name(v)));
		ASSERT_EQ(0, bpq_get_config(self->fd, &cfg));
		EXPECT_EQ(v, cfg.hangup);
		ASSERT_EQ(0, bpq_sysfs_read(self->q, "hangup", buf, sizeof(buf)));
		EXPECT_STREQ(bpq_hangup_name(v), buf);
	}
	for (h = BPQ_HANGUP_NONE; h <= BPQ_HANGUP_BOTH; h++) {
		ASSERT_EQ(0, bpq_set_hangup(self->fd, h));
		ASSERT_EQ(0, bpq_sysfs_read(self->q, "hangup", buf, sizeof(buf)));
		EXPECT_STREQ(bpq_hangup_name(h), buf);
	}
	ASSERT_EQ(0, bpq_sysfs_write(self->q, "hangup", "readers\n"));
	for (i = 0; i < ARRAY_LEN(garbage); i++) {
		EXPECT_EQ(-EINVAL, bpq_sysfs_write(self->q, "hangup",
						   garbage[i]))
			TH_LOG("\"%s\"", garbage[i]);
	}
	EXPECT_EQ(-EINVAL, bpq_set_hangup(self->fd, BPQ_HANGUP_BOTH + 1));
	EXPECT_EQ(-EINVAL, bpq_set_hangup(self->fd, 0xffffffffU));
	ASSERT_EQ(0, bpq_get_config(self->fd, &cfg));
	cfg.read_mode = 2;
	EXPECT_EQ(-EINVAL, bpq_set_config(self->fd, &cfg));
	ASSERT_EQ(0, bpq_get_config(self->fd, &cfg));
	EXPECT_EQ(BPQ_HANGUP_READERS, cfg.hangup);
	EXPECT_EQ(BPQ_READ_MESSAGE, cfg.read_mode);
	/* a setting: nothing happens to the stream when it changes */
	assert_stream(_metadata, self->fd, self->q, BPQ_STREAM_OPEN, 0, 0);
}

/* SET_CONFIG and GET_CONFIG of the struct before hangup. */
TEST_F(stream, old_config_size)
{
	struct bpq_config cfg, big;
	unsigned char *p = (unsigned char *)&big;
	size_t i;

	ASSERT_EQ(64, offsetof(struct bpq_config, hangup));
	ASSERT_EQ(0, bpq_set_hangup(self->fd, BPQ_HANGUP_WRITERS));
	ASSERT_EQ(0, bpq_get_config(self->fd, &cfg));
	cfg.size = offsetof(struct bpq_config, hangup);
	cfg.capacity_msgs = 77;
	cfg.hangup = BPQ_HANGUP_READERS;	/* beyond size: not read */
	ASSERT_EQ(0, bpq_ioctl(self->fd, BPQ_IOC_SET_CONFIG, &cfg));
	ASSERT_EQ(0, bpq_get_config(self->fd, &cfg));
	EXPECT_EQ(77, cfg.capacity_msgs);
	EXPECT_EQ(BPQ_HANGUP_WRITERS, cfg.hangup);

	/* GET_CONFIG writes no further than the size given */
	memset(&big, 0xa5, sizeof(big));
	big.size = offsetof(struct bpq_config, hangup);
	big.flags = 0;
	ASSERT_EQ(0, bpq_ioctl(self->fd, BPQ_IOC_GET_CONFIG, &big));
	EXPECT_EQ(77, big.capacity_msgs);
	for (i = offsetof(struct bpq_config, hangup); i < sizeof(big); i++)
		EXPECT_EQ(0xa5, p[i]) TH_LOG("byte %zu", i);
}

/* Bad arguments: EINVAL, and neither the stream nor the queue changes. */
TEST_F(stream, bad_arguments)
{
	static const struct {
		__u32 flags, error, reserved;
	} bad[] = {
		{ 0, 0, 0 },
		{ 1U << 5, 0, 0 },
		{ 1U << 31, 0, 0 },
		{ BPQ_SHUTDOWN_COMPLETE | (1U << 5), 0, 0 },
		{ BPQ_SHUTDOWN_CANCEL | (1U << 16), 0, 0 },
		{ BPQ_SHUTDOWN_COMPLETE | BPQ_SHUTDOWN_FAIL, EIO, 0 },
		{ BPQ_SHUTDOWN_COMPLETE | BPQ_SHUTDOWN_CANCEL, 0, 0 },
		{ BPQ_SHUTDOWN_COMPLETE | BPQ_SHUTDOWN_REOPEN, 0, 0 },
		{ BPQ_SHUTDOWN_FAIL | BPQ_SHUTDOWN_CANCEL, EIO, 0 },
		{ BPQ_SHUTDOWN_FAIL | BPQ_SHUTDOWN_REOPEN, EIO, 0 },
		{ BPQ_SHUTDOWN_CANCEL | BPQ_SHUTDOWN_REOPEN, 0, 0 },
		{ BPQ_SHUTDOWN_COMPLETE | BPQ_SHUTDOWN_CANCEL |
		  BPQ_SHUTDOWN_DISCARD, 0, 0 },
		{ BPQ_SHUTDOWN_DISCARD, 0, 0 },
		{ BPQ_SHUTDOWN_DISCARD | BPQ_SHUTDOWN_COMPLETE, 0, 0 },
		{ BPQ_SHUTDOWN_DISCARD | BPQ_SHUTDOWN_FAIL, EIO, 0 },
		{ BPQ_SHUTDOWN_DISCARD | BPQ_SHUTDOWN_REOPEN, 0, 0 },
		{ BPQ_SHUTDOWN_FAIL, 0, 0 },
		{ BPQ_SHUTDOWN_FAIL, 134, 0 },
		{ BPQ_SHUTDOWN_FAIL, EAGAIN, 0 },
		{ BPQ_SHUTDOWN_FAIL, EINTR, 0 },
		{ BPQ_SHUTDOWN_FAIL, 4096, 0 },
		{ BPQ_SHUTDOWN_FAIL, 0xffffffffU, 0 },
		{ BPQ_SHUTDOWN_FAIL, (__u32)-EIO, 0 },
		{ BPQ_SHUTDOWN_COMPLETE, EIO, 0 },
		{ BPQ_SHUTDOWN_CANCEL, EIO, 0 },
		{ BPQ_SHUTDOWN_CANCEL | BPQ_SHUTDOWN_DISCARD, 1, 0 },
		{ BPQ_SHUTDOWN_REOPEN, EIO, 0 },
		{ BPQ_SHUTDOWN_COMPLETE, 0, 1 },
		{ BPQ_SHUTDOWN_FAIL, EIO, 1 },
		{ BPQ_SHUTDOWN_CANCEL, 0, 0x80000000U },
		{ BPQ_SHUTDOWN_REOPEN, 0, 1 },
	};
	struct {
		struct bpq_shutdown s;
		__u32 tail[2];
	} big;
	struct bpq_stats st;
	unsigned int i, round;
	__u32 state;

	ASSERT_EQ(0, put(self->fd, 0, 2));
	/* on an open stream, then on a completed one */
	for (round = 0; round < 2; round++) {
		state = round ? BPQ_STREAM_COMPLETED : BPQ_STREAM_OPEN;
		for (i = 0; i < ARRAY_LEN(bad); i++) {
			struct bpq_shutdown s = {
				.size = sizeof(s),
				.flags = bad[i].flags,
				.error = bad[i].error,
				.__reserved = bad[i].reserved,
			};

			EXPECT_EQ(-EINVAL, bpq_ioctl(self->fd,
						     BPQ_IOC_SHUTDOWN, &s))
				TH_LOG("flags %#x error %u reserved %#x",
				       bad[i].flags, bad[i].error,
				       bad[i].reserved);
		}
		/* sizes */
		memset(&big, 0, sizeof(big));
		big.s.flags = BPQ_SHUTDOWN_CANCEL;
		big.s.size = 0;
		EXPECT_EQ(-EINVAL, bpq_ioctl(self->fd, BPQ_IOC_SHUTDOWN, &big));
		big.s.size = 8;
		EXPECT_EQ(-EINVAL, bpq_ioctl(self->fd, BPQ_IOC_SHUTDOWN, &big));
		big.s.size = sizeof(struct bpq_shutdown) - 1;
		EXPECT_EQ(-EINVAL, bpq_ioctl(self->fd, BPQ_IOC_SHUTDOWN, &big));
		big.s.size = sizeof(big);
		big.tail[1] = 1;
		EXPECT_EQ(-E2BIG, bpq_ioctl(self->fd, BPQ_IOC_SHUTDOWN, &big));
		EXPECT_EQ(-EFAULT, bpq_ioctl(self->fd, BPQ_IOC_SHUTDOWN, NULL));

		assert_stream(_metadata, self->fd, self->q, state, 0, 0);
		ASSERT_EQ(0, bpq_get_stats(self->fd, &st));
		EXPECT_EQ(2, st.depth_msgs);
		EXPECT_EQ(0, st.flushed);
		EXPECT_EQ(0, st.dequeued_msgs);
		if (!round) {
			ASSERT_EQ(0, bpq_shutdown(self->fd,
						  BPQ_SHUTDOWN_COMPLETE, 0));
		}
	}
	/* a larger struct with a zero tail is taken */
	memset(&big, 0, sizeof(big));
	big.s.size = sizeof(big);
	big.s.flags = BPQ_SHUTDOWN_CANCEL;
	EXPECT_EQ(0, bpq_ioctl(self->fd, BPQ_IOC_SHUTDOWN, &big));
	assert_stream(_metadata, self->fd, self->q, BPQ_STREAM_CANCELLED, 0, 0);
	EXPECT_EQ(0, get(self->fd, 0, 2));
}

/* Destroyed: ENODEV everywhere, whatever the stream, and no SIGPIPE. */
TEST_F(stream, destroyed_queue)
{
	static const __u32 ops[] = {
		BPQ_SHUTDOWN_COMPLETE, BPQ_SHUTDOWN_FAIL, BPQ_SHUTDOWN_CANCEL,
		BPQ_SHUTDOWN_CANCEL | BPQ_SHUTDOWN_DISCARD, BPQ_SHUTDOWN_REOPEN,
	};
	unsigned char buf[64];
	struct bpq_stats st;
	unsigned int i;
	int rfd, wfd;

	rfd = bpq_open(self->q, O_RDONLY | O_NONBLOCK);
	wfd = bpq_open(self->q, O_WRONLY | O_NONBLOCK);
	ASSERT_LE(0, rfd);
	ASSERT_LE(0, wfd);
	ASSERT_EQ(0, bpq_sysfs_write(self->q, "hangup", "both"));
	ASSERT_EQ(0, put(self->fd, 0, 1));
	ASSERT_EQ(0, bpq_shutdown(self->fd, BPQ_SHUTDOWN_COMPLETE, 0));
	ASSERT_EQ(0, bpq_destroy(self->cfd, self->q));
	self->q = -1;

	EXPECT_EQ(-ENODEV, bpq_read(rfd, buf, sizeof(buf)));
	EXPECT_EQ(-ENODEV, bpq_read(self->fd, buf, sizeof(buf)));
	EXPECT_EQ(-ENODEV, recv_one(self->fd, 0, 0));
	EXPECT_EQ(-ENODEV, recv_batch(rfd, 0));
	EXPECT_EQ(-ENODEV, bpq_write(wfd, "x", 1));
	EXPECT_EQ(-ENODEV, bpq_write(self->fd, "x", 1));
	EXPECT_EQ(-ENODEV, send_one(self->fd, 0, 0));
	EXPECT_FALSE(sigpipe_pending());
	for (i = 0; i < ARRAY_LEN(ops); i++) {
		EXPECT_EQ(-ENODEV, bpq_shutdown(self->fd, ops[i],
						ops[i] == BPQ_SHUTDOWN_FAIL ?
						EIO : 0));
	}
	EXPECT_EQ(-ENODEV, bpq_get_stats(self->fd, &st));
	EXPECT_EQ(POLLERR | POLLHUP, pbits(rfd) & (POLLERR | POLLHUP));
	EXPECT_EQ(POLLERR | POLLHUP, pbits(wfd) & (POLLERR | POLLHUP));
	EXPECT_EQ(POLLERR | POLLHUP, pbits(self->fd) & (POLLERR | POLLHUP));
	/* the last closes of both sides, with hangup=both, after the end */
	close(wfd);
	close(rfd);
	EXPECT_EQ(-ENODEV, bpq_read(self->fd, buf, sizeof(buf)));
}

/* ---- hangup ---- */

/* hangup=none: closing every reader and writer leaves the stream open. */
TEST_F(stream, hangup_none)
{
	int r, w;

	r = bpq_open(self->q, O_RDONLY | O_NONBLOCK);
	w = bpq_open(self->q, O_WRONLY);
	ASSERT_LE(0, r);
	ASSERT_LE(0, w);
	ASSERT_EQ(0, put(w, 0, 1));
	close(self->fd);
	self->fd = -1;
	close(w);
	EXPECT_EQ(BPQ_STREAM_OPEN, bpq_stream_state(r));
	close(r);
	self->fd = bpq_open(self->q, O_RDWR);
	ASSERT_LE(0, self->fd);
	assert_stream(_metadata, self->fd, self->q, BPQ_STREAM_OPEN, 0, 0);
	EXPECT_EQ(0, get(self->fd, 0, 1));
}

/* hangup=writers: the last close of a writer completes the stream. */
TEST_F(stream, hangup_writers_completes)
{
	int r, w1, w2;

	close(self->fd);
	self->fd = -1;
	ASSERT_EQ(0, bpq_sysfs_write(self->q, "hangup", "writers"));
	r = bpq_open(self->q, O_RDONLY | O_NONBLOCK);
	ASSERT_LE(0, r);
	/* set, but no writer closed: nothing */
	EXPECT_EQ(BPQ_STREAM_OPEN, bpq_stream_state(r));
	w1 = bpq_open(self->q, O_WRONLY);
	w2 = bpq_open(self->q, O_RDWR);
	ASSERT_LE(0, w1);
	ASSERT_LE(0, w2);
	ASSERT_EQ(0, put(w1, 0, 1));
	ASSERT_EQ(0, put(w2, 1, 1));
	close(w1);
	EXPECT_EQ(BPQ_STREAM_OPEN, bpq_stream_state(r))
		TH_LOG("completed with a writer left");
	close(w2);
	assert_stream(_metadata, r, self->q, BPQ_STREAM_COMPLETED, 0, 0);
	EXPECT_EQ(0, bpq_sysfs_u64(self->q, "writers"));
	EXPECT_EQ(0, get(r, 0, 2));
	EXPECT_EQ(0, recv_one(r, 0, 0));
	EXPECT_EQ(0, recv_one(r, 0, 0));
	close(r);
}

/* A writer's open of a completed, drained stream opens it again. */
TEST_F(stream, hangup_writers_reopens)
{
	int r, w;

	close(self->fd);
	self->fd = -1;
	ASSERT_EQ(0, bpq_sysfs_write(self->q, "hangup", "writers"));
	r = bpq_open(self->q, O_RDONLY | O_NONBLOCK);
	ASSERT_LE(0, r);
	w = bpq_open(self->q, O_WRONLY);
	ASSERT_LE(0, w);
	close(w);
	assert_stream(_metadata, r, self->q, BPQ_STREAM_COMPLETED, 0, 0);

	w = bpq_open(self->q, O_WRONLY);
	ASSERT_LE(0, w);
	assert_stream(_metadata, r, self->q, BPQ_STREAM_OPEN, 0, 1);
	ASSERT_EQ(0, put(w, 0, 1));
	close(w);
	assert_stream(_metadata, r, self->q, BPQ_STREAM_COMPLETED, 0, 1);

	/* completed but not drained: an open for writing finds it ended */
	w = bpq_open(self->q, O_WRONLY);
	ASSERT_LE(0, w);
	assert_stream(_metadata, r, self->q, BPQ_STREAM_COMPLETED, 0, 1);
	EXPECT_EQ(-EPIPE, bpq_write(w, "x", 1));
	EXPECT_TRUE(take_sigpipe());
	close(w);
	assert_stream(_metadata, r, self->q, BPQ_STREAM_COMPLETED, 0, 1);
	EXPECT_EQ(0, get(r, 0, 1));
	EXPECT_EQ(0, recv_one(r, 0, 0));

	/* O_RDWR is an open for writing */
	w = bpq_open(self->q, O_RDWR);
	ASSERT_LE(0, w);
	assert_stream(_metadata, r, self->q, BPQ_STREAM_OPEN, 0, 2);

	/* failed, or cancelled, is not completed: no reopen */
	ASSERT_EQ(0, bpq_shutdown(w, BPQ_SHUTDOWN_FAIL, FAIL_ERR));
	close(w);
	assert_stream(_metadata, r, self->q, BPQ_STREAM_FAILED, FAIL_ERR, 2);
	w = bpq_open(self->q, O_WRONLY);
	ASSERT_LE(0, w);
	assert_stream(_metadata, r, self->q, BPQ_STREAM_FAILED, FAIL_ERR, 2);
	close(w);
	ASSERT_EQ(0, bpq_shutdown(r, BPQ_SHUTDOWN_CANCEL, 0));
	w = bpq_open(self->q, O_WRONLY);
	ASSERT_LE(0, w);
	assert_stream(_metadata, r, self->q, BPQ_STREAM_CANCELLED, 0, 2);
	close(w);

	/* hangup=none: an open for writing changes nothing */
	ASSERT_EQ(0, bpq_shutdown(r, BPQ_SHUTDOWN_REOPEN, 0));
	ASSERT_EQ(0, bpq_sysfs_write(self->q, "stream", "completed"));
	ASSERT_EQ(0, bpq_sysfs_write(self->q, "hangup", "none"));
	w = bpq_open(self->q, O_WRONLY);
	ASSERT_LE(0, w);
	assert_stream(_metadata, r, self->q, BPQ_STREAM_COMPLETED, 0, 3);
	close(w);
	close(r);
}

/*
 * hangup=writers: as a FIFO's next reader does, an open for reading of a
 * completed, drained stream starts a new one and waits for its writer;
 * an ioctl-only open (a monitor's) leaves the end as it is.
 */
TEST_F(stream, hangup_writers_reader_open)
{
	unsigned char buf[64];
	int r, w, m;

	close(self->fd);
	self->fd = -1;
	ASSERT_EQ(0, bpq_sysfs_write(self->q, "hangup", "writers"));
	w = bpq_open(self->q, O_WRONLY);
	ASSERT_LE(0, w);
	close(w);
	m = bpq_open(self->q, O_ACCMODE);
	ASSERT_LE(0, m);
	assert_stream(_metadata, m, self->q, BPQ_STREAM_COMPLETED, 0, 0);
	r = bpq_open(self->q, O_RDONLY);
	ASSERT_LE(0, r);
	assert_stream(_metadata, r, self->q, BPQ_STREAM_OPEN, 0, 1);
	EXPECT_EQ(-EAGAIN, bpq_recv(r, buf, sizeof(buf), BPQ_IO_NONBLOCK, 0,
				    NULL));
	close(r);
	close(m);
}

/* hangup=readers: the last close of a reader cancels, keeping messages. */
TEST_F(stream, hangup_readers_cancels)
{
	int r1, r2, r3, w;
	struct bpq_stats st;

	close(self->fd);
	self->fd = -1;
	ASSERT_EQ(0, bpq_sysfs_write(self->q, "hangup", "readers"));
	w = bpq_open(self->q, O_WRONLY | O_NONBLOCK);
	r1 = bpq_open(self->q, O_RDONLY);
	r2 = bpq_open(self->q, O_RDWR);
	ASSERT_LE(0, w);
	ASSERT_LE(0, r1);
	ASSERT_LE(0, r2);
	ASSERT_EQ(0, put(w, 0, 3));
	close(r1);
	EXPECT_EQ(BPQ_STREAM_OPEN, bpq_stream_state(w))
		TH_LOG("cancelled with a reader left");
	close(r2);
	assert_stream(_metadata, w, self->q, BPQ_STREAM_CANCELLED, 0, 0);
	ASSERT_EQ(0, bpq_get_stats(w, &st));
	EXPECT_EQ(3, st.depth_msgs);
	EXPECT_EQ(0, st.flushed);
	EXPECT_EQ(0, st.readers);
	EXPECT_EQ(-EPIPE, bpq_write(w, "x", 1));
	EXPECT_TRUE(take_sigpipe());

	/* a reader's open does not reopen; it reads what was kept */
	r3 = bpq_open(self->q, O_RDONLY);
	ASSERT_LE(0, r3);
	assert_stream(_metadata, w, self->q, BPQ_STREAM_CANCELLED, 0, 0);
	EXPECT_EQ(0, get(r3, 0, 3));
	EXPECT_EQ(0, recv_one(r3, 0, 0));
	close(r3);
	assert_stream(_metadata, w, self->q, BPQ_STREAM_CANCELLED, 0, 0);
	EXPECT_EQ(0, bpq_shutdown(w, BPQ_SHUTDOWN_REOPEN, 0));
	assert_stream(_metadata, w, self->q, BPQ_STREAM_OPEN, 0, 1);
	EXPECT_EQ(0, put(w, 3, 1));
	close(w);
}

/* hangup=readers: a writer asleep on a full queue is woken by it. */
TEST_F(stream, hangup_readers_wakes_writer)
{
	struct io_thread t;
	int r, w;

	ASSERT_EQ(0, configure(self->fd, BPQ_STRATEGY_BLOCK, 1, 0));
	close(self->fd);
	self->fd = -1;
	ASSERT_EQ(0, bpq_sysfs_write(self->q, "hangup", "readers"));
	w = bpq_open(self->q, O_WRONLY);
	r = bpq_open(self->q, O_RDONLY);
	ASSERT_LE(0, w);
	ASSERT_LE(0, r);
	ASSERT_EQ(0, put(w, 0, 1));
	ASSERT_EQ(0, count_sigpipes());
	ASSERT_EQ(0, io_thread_start(&t, w, IO_WRITE, "y", 1));
	ASSERT_TRUE(io_thread_blocked(&t, 10000));
	close(r);
	ASSERT_TRUE(io_thread_wait(&t, 10000)) TH_LOG("writer not woken");
	EXPECT_EQ(-EPIPE, t.ret);
	EXPECT_EQ(1, __atomic_load_n(&sigpipes, __ATOMIC_RELAXED));
	assert_stream(_metadata, w, self->q, BPQ_STREAM_CANCELLED, 0, 0);
	EXPECT_EQ(1, bpq_depth(w));
	close(w);
}

/* hangup=both: each side's last close, as the stream then is. */
TEST_F(stream, hangup_both)
{
	int r, w, r2, w2;
	char buf[64];

	close(self->fd);
	self->fd = -1;
	ASSERT_EQ(0, bpq_sysfs_write(self->q, "hangup", "both"));
	r = bpq_open(self->q, O_RDONLY | O_NONBLOCK);
	w = bpq_open(self->q, O_WRONLY);
	ASSERT_LE(0, r);
	ASSERT_LE(0, w);
	ASSERT_EQ(0, put(w, 0, 1));
	close(w);
	assert_stream(_metadata, r, self->q, BPQ_STREAM_COMPLETED, 0, 0);
	/* the last reader's close cancels an open stream only */
	r2 = bpq_open(self->q, O_RDONLY);
	ASSERT_LE(0, r2);
	close(r);
	close(r2);
	r = bpq_open(self->q, O_RDONLY | O_NONBLOCK);
	ASSERT_LE(0, r);
	assert_stream(_metadata, r, self->q, BPQ_STREAM_COMPLETED, 0, 0);
	EXPECT_EQ(0, get(r, 0, 1));
	EXPECT_EQ(0, recv_one(r, 0, 0));

	w2 = bpq_open(self->q, O_WRONLY);
	ASSERT_LE(0, w2);
	assert_stream(_metadata, r, self->q, BPQ_STREAM_OPEN, 0, 1);
	close(r);
	assert_stream(_metadata, w2, self->q, BPQ_STREAM_CANCELLED, 0, 1);
	EXPECT_EQ(-EPIPE, bpq_write(w2, "x", 1));
	EXPECT_TRUE(take_sigpipe());
	/* the last writer's close completes an open stream only */
	close(w2);
	ASSERT_EQ(0, bpq_sysfs_read(self->q, "stream", buf, sizeof(buf)));
	EXPECT_STREQ("cancelled", buf);
	EXPECT_EQ(1, bpq_sysfs_u64(self->q, "stream_epoch"));
}

/*
 * hangup=readers: an open for reading of a cancelled, drained stream
 * starts a new one, as a new consumer arrives; a writer's open does not.
 */
TEST_F(stream, hangup_readers_reader_open)
{
	int r, w, w2;

	close(self->fd);
	self->fd = -1;
	ASSERT_EQ(0, bpq_sysfs_write(self->q, "hangup", "readers"));
	w = bpq_open(self->q, O_WRONLY | O_NONBLOCK);
	r = bpq_open(self->q, O_RDONLY);
	ASSERT_LE(0, w);
	ASSERT_LE(0, r);
	close(r);
	assert_stream(_metadata, w, self->q, BPQ_STREAM_CANCELLED, 0, 0);
	EXPECT_EQ(-EPIPE, send_one(w, 0, 0));
	w2 = bpq_open(self->q, O_WRONLY | O_NONBLOCK);
	ASSERT_LE(0, w2);
	assert_stream(_metadata, w, self->q, BPQ_STREAM_CANCELLED, 0, 0);
	close(w2);
	r = bpq_open(self->q, O_RDONLY | O_NONBLOCK);
	ASSERT_LE(0, r);
	assert_stream(_metadata, w, self->q, BPQ_STREAM_OPEN, 0, 1);
	EXPECT_EQ(1, send_one(w, 0, 0));
	EXPECT_LT(0, recv_one(r, 0, 0));
	close(r);
	close(w);
}

TEST_HARNESS_MAIN
