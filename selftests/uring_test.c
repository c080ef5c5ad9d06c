// SPDX-License-Identifier: GPL-2.0
/*
 * bpq with io_uring and the nonblocking calls it relies on: RWF_NOWAIT
 * (IOCB_NOWAIT) gives EAGAIN where a call would sleep, and io_uring reads
 * and writes that must wait do so in poll, not in an io-wq worker thread
 * (iou-wrk-*). Then O_ASYNC: SIGIO with the si_code of the event
 * (POLL_IN, POLL_OUT, POLL_PRI, POLL_HUP).
 *
 * Uses /dev/bpq0 and puts it back to defaults after every test.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <liburing.h>
#include <sys/uio.h>

#include "bpq_test.h"
/* kselftest_harness.h of 6.1 has an unused parameter: keep -Wextra clean. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"
#include "kselftest_harness.h"
#pragma GCC diagnostic pop

#define QIDX		0
#define WAIT_MS		30000	/* bound on anything that should happen */
#define WORKER_MS	2000	/* how long to look for a worker thread */

/* Is an io-wq worker (a thread named iou-wrk-*) among our threads? */
static bool have_io_worker(void)
{
	char path[300], comm[64];
	struct dirent *de;
	bool found = false;
	DIR *dir;

	dir = opendir("/proc/self/task");
	if (!dir)
		return false;
	while (!found && (de = readdir(dir))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/comm",
			 de->d_name);
		if (bpq_read_value(path, comm, sizeof(comm)) > 0 &&
		    !strncmp(comm, "iou-wrk-", 8))
			found = true;
	}
	closedir(dir);
	return found;
}

/* Look for a worker for WORKER_MS: one that is there shows up by then. */
static bool io_worker_appears(void)
{
	int64_t end = now_ns() + (int64_t)WORKER_MS * 1000000;

	while (now_ns() < end) {
		if (have_io_worker())
			return true;
		sleep_ms(20);
	}
	return false;
}

static int setup_queue(int fd, __u32 strategy, __u32 msgs)
{
	return bpq_configure(fd, strategy, msgs);
}

/* One completion within @ms: its result, or -ETIME. */
static int wait_cqe(struct io_uring *ring, int ms, __u64 *data)
{
	struct __kernel_timespec ts = { ms / 1000, (ms % 1000) * 1000000LL };
	struct io_uring_cqe *cqe;
	int ret;

	ret = io_uring_wait_cqe_timeout(ring, &cqe, &ts);
	if (ret < 0)
		return ret;
	ret = cqe->res;
	if (data)
		*data = cqe->user_data;
	io_uring_cqe_seen(ring, cqe);
	return ret;
}

static bool cqe_ready(struct io_uring *ring)
{
	struct io_uring_cqe *cqe;

	return io_uring_peek_cqe(ring, &cqe) == 0;
}

/* Queue an IORING_OP_READ or IORING_OP_WRITE of @buf and submit it. */
static int submit_rw(struct io_uring *ring, int fd, bool write, void *buf,
		     unsigned int len, __u64 data)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(ring);

	if (!sqe)
		return -EBUSY;
	if (write)
		io_uring_prep_write(sqe, fd, buf, len, -1);
	else
		io_uring_prep_read(sqe, fd, buf, len, -1);
	sqe->user_data = data;
	return io_uring_submit(ring);
}

FIXTURE(uring) {
	int fd;
	struct io_uring ring;
	bool have_ring;
};

FIXTURE_SETUP(uring)
{
	self->fd = bpq_open(QIDX, O_RDWR);
	ASSERT_LE(0, self->fd) TH_LOG("%m - open /dev/bpq%d", QIDX);
	ASSERT_EQ(0, bpq_reset(self->fd));
	self->have_ring = !io_uring_queue_init(8, &self->ring, 0);
}

FIXTURE_TEARDOWN(uring)
{
	if (self->have_ring)
		io_uring_queue_exit(&self->ring);
	EXPECT_EQ(0, bpq_reset(self->fd));
	close(self->fd);
}

#define NEED_URING()							\
	do {								\
		if (!self->have_ring)					\
			SKIP(return, "no io_uring in this kernel");	\
	} while (0)

/* Offsets are refused as for pread; -1, the file's position, is not. */
TEST_F(uring, nowait_offsets)
{
	char buf[64];
	struct iovec iov = { buf, sizeof(buf) };

	ASSERT_EQ(-1, preadv2(self->fd, &iov, 1, 0, RWF_NOWAIT));
	ASSERT_EQ(ESPIPE, errno);
	ASSERT_EQ(-1, pwritev2(self->fd, &iov, 1, 0, RWF_NOWAIT));
	ASSERT_EQ(ESPIPE, errno);
	ASSERT_EQ(0ULL, bpq_depth(self->fd));
}

TEST_F(uring, nowait_read_empty)
{
	char buf[64];
	struct iovec iov = { buf, sizeof(buf) };
	struct bpq_stats st;

	ASSERT_EQ(-1, preadv2(self->fd, &iov, 1, -1, RWF_NOWAIT))
		TH_LOG("%m - preadv2 RWF_NOWAIT on an empty queue");
	ASSERT_EQ(EAGAIN, errno);
	ASSERT_EQ(0, bpq_get_stats(self->fd, &st));
	ASSERT_EQ(0ULL, st.depth_msgs);
	ASSERT_EQ(0ULL, st.dequeued_msgs);

	/* a message there is read at once */
	ASSERT_EQ(10, bpq_write_pattern(self->fd, 1, 10));
	ASSERT_EQ(10, preadv2(self->fd, &iov, 1, -1, RWF_NOWAIT));
	ASSERT_TRUE(check_pattern(buf, 10, 1));
	ASSERT_EQ(0ULL, bpq_depth(self->fd));
}

TEST_F(uring, nowait_write_full)
{
	unsigned char buf[16];
	struct iovec iov = { buf, sizeof(buf) };
	struct bpq_stats st;

	ASSERT_EQ(0, setup_queue(self->fd, BPQ_STRATEGY_BLOCK, 2));
	ASSERT_EQ(16, bpq_write_pattern(self->fd, 1, 16));
	fill_pattern(buf, sizeof(buf), 2);
	ASSERT_EQ(16, pwritev2(self->fd, &iov, 1, -1, RWF_NOWAIT));

	fill_pattern(buf, sizeof(buf), 3);
	ASSERT_EQ(-1, pwritev2(self->fd, &iov, 1, -1, RWF_NOWAIT))
		TH_LOG("%m - pwritev2 RWF_NOWAIT on a full queue");
	ASSERT_EQ(EAGAIN, errno);
	ASSERT_EQ(0, bpq_get_stats(self->fd, &st));
	ASSERT_EQ(2ULL, st.depth_msgs);
	ASSERT_EQ(2ULL, st.enqueued_msgs);

	/* nothing changed: the two messages, in order, and no more */
	ASSERT_EQ(0, bpq_read_pattern(self->fd, 1, 16));
	ASSERT_EQ(0, bpq_read_pattern(self->fd, 2, 16));
	ASSERT_EQ(0ULL, bpq_depth(self->fd));
}

/* A read on an empty queue waits in poll, and a write completes it. */
TEST_F(uring, read_waits_in_poll)
{
	unsigned char buf[256];
	__u64 data = 0;

	NEED_URING();
	ASSERT_FALSE(have_io_worker());
	ASSERT_EQ(1, submit_rw(&self->ring, self->fd, false, buf, sizeof(buf),
			       7));
	ASSERT_FALSE(io_worker_appears())
		TH_LOG("the read was handed to an io-wq worker");
	ASSERT_FALSE(cqe_ready(&self->ring));

	ASSERT_EQ(33, bpq_write_pattern(self->fd, 4, 33));
	ASSERT_EQ(33, wait_cqe(&self->ring, WAIT_MS, &data));
	ASSERT_EQ(7ULL, data);
	ASSERT_TRUE(check_pattern(buf, 33, 4));
	ASSERT_EQ(0ULL, bpq_depth(self->fd));
	ASSERT_FALSE(have_io_worker());
}

/*
 * A write on a full queue completes when a read makes room. io_uring's
 * poll also listens for EPOLLPRI, which a queue under pressure reports
 * all along (bpq(4)), so here it may retry the write and then hand it to
 * a worker: write_waits_in_poll has the case without pressure.
 */
TEST_F(uring, write_full_completes)
{
	unsigned char buf[40];
	__u64 data = 0;

	NEED_URING();
	ASSERT_EQ(0, setup_queue(self->fd, BPQ_STRATEGY_BLOCK, 2));
	ASSERT_EQ(40, bpq_write_pattern(self->fd, 1, 40));
	ASSERT_EQ(40, bpq_write_pattern(self->fd, 2, 40));
	fill_pattern(buf, sizeof(buf), 3);
	ASSERT_EQ(1, submit_rw(&self->ring, self->fd, true, buf, sizeof(buf),
			       9));
	sleep_ms(200);
	ASSERT_FALSE(cqe_ready(&self->ring));
	ASSERT_EQ(2ULL, bpq_depth(self->fd));

	ASSERT_EQ(0, bpq_read_pattern(self->fd, 1, 40));
	ASSERT_EQ(40, wait_cqe(&self->ring, WAIT_MS, &data));
	ASSERT_EQ(9ULL, data);
	ASSERT_EQ(0, bpq_read_pattern(self->fd, 2, 40));
	ASSERT_EQ(0, bpq_read_pattern(self->fd, 3, 40));
	ASSERT_EQ(0ULL, bpq_depth(self->fd));
}

static int grant(int fd, __u64 n)
{
	struct bpq_grant g = { .size = sizeof(g), .credits = n };

	return bpq_ioctl(fd, BPQ_IOC_GRANT, &g);
}

/*
 * A write that waits for a credit, on a queue that is not under
 * pressure, waits in poll; the credit a read gives back completes it.
 */
TEST_F(uring, write_waits_in_poll)
{
	struct bpq_config cfg;
	unsigned char buf[40];
	__u64 data = 0;
	int cfd, idx, fd;

	NEED_URING();
	cfd = bpq_control_open();
	ASSERT_LE(0, cfd) TH_LOG("%m - open " BPQ_CONTROL_PATH);
	idx = bpq_create(cfd, "uring-credit");
	ASSERT_LE(0, idx) TH_LOG("create: %s", strerror(-idx));
	ASSERT_TRUE(bpq_wait_node(idx, true, 5000));
	fd = bpq_open(idx, O_RDWR);
	ASSERT_LE(0, fd);
	bpq_default_config(&cfg);
	cfg.strategy = BPQ_STRATEGY_CREDIT;
	cfg.auto_credit = 1;
	ASSERT_EQ(0, bpq_set_config(fd, &cfg));
	ASSERT_EQ(0, grant(fd, 1));
	ASSERT_EQ(40, bpq_write_pattern(fd, 1, 40));

	fill_pattern(buf, sizeof(buf), 2);
	ASSERT_EQ(1, submit_rw(&self->ring, fd, true, buf, sizeof(buf), 9));
	ASSERT_FALSE(io_worker_appears())
		TH_LOG("the write was handed to an io-wq worker");
	ASSERT_FALSE(cqe_ready(&self->ring));
	ASSERT_EQ(1ULL, bpq_depth(fd));

	ASSERT_EQ(0, bpq_read_pattern(fd, 1, 40));
	ASSERT_EQ(40, wait_cqe(&self->ring, WAIT_MS, &data));
	ASSERT_EQ(9ULL, data);
	ASSERT_EQ(0, bpq_read_pattern(fd, 2, 40));
	ASSERT_FALSE(have_io_worker());
	close(fd);
	EXPECT_EQ(0, bpq_destroy(cfd, idx));
	close(cfd);
}

/*
 * io_uring readers, each with several reads in flight, and read(2)
 * readers take N messages from one small queue: each is received once,
 * and all finish. A message of STOP_LEN bytes tells a reader to stop.
 */
#define RACE_MSGS	2000
#define RACE_LEN	8
#define STOP_LEN	1
#define URING_READERS	2
#define URING_DEPTH	4
#define PLAIN_READERS	2

struct race {
	int fd;
	int seen[RACE_MSGS];
	int received;		/* atomic */
	int bad;		/* atomic: wrong length, number or ring */
	int running;		/* atomic: readers not finished */
};

static void race_take(struct race *r, const unsigned char *buf, int len)
{
	unsigned int n;

	if (len != RACE_LEN) {
		__atomic_add_fetch(&r->bad, 1, __ATOMIC_RELAXED);
		return;
	}
	memcpy(&n, buf, sizeof(n));
	if (n >= RACE_MSGS) {
		__atomic_add_fetch(&r->bad, 1, __ATOMIC_RELAXED);
		return;
	}
	__atomic_add_fetch(&r->seen[n], 1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&r->received, 1, __ATOMIC_RELEASE);
}

static void *race_plain_reader(void *arg)
{
	struct race *r = arg;
	unsigned char buf[64];
	ssize_t len;

	for (;;) {
		len = read(r->fd, buf, sizeof(buf));
		if (len == STOP_LEN)
			break;
		if (len < 0) {
			__atomic_add_fetch(&r->bad, 1, __ATOMIC_RELAXED);
			break;
		}
		race_take(r, buf, len);
	}
	__atomic_sub_fetch(&r->running, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void *race_uring_reader(void *arg)
{
	unsigned char bufs[URING_DEPTH][64];
	struct race *r = arg;
	struct io_uring ring;
	int i, res, inflight = 0;
	__u64 slot;

	if (io_uring_queue_init(URING_DEPTH * 2, &ring, 0)) {
		__atomic_add_fetch(&r->bad, 1, __ATOMIC_RELAXED);
		goto out;
	}
	for (i = 0; i < URING_DEPTH; i++) {
		if (submit_rw(&ring, r->fd, false, bufs[i], sizeof(bufs[i]),
			      i) != 1)
			break;
		inflight++;
	}
	/* a stop message ends one read; the others carry on until theirs */
	while (inflight) {
		res = wait_cqe(&ring, WAIT_MS * 4, &slot);
		if (res == STOP_LEN) {
			inflight--;
			continue;
		}
		if (res < 0 || slot >= URING_DEPTH) {
			__atomic_add_fetch(&r->bad, 1, __ATOMIC_RELAXED);
			break;
		}
		race_take(r, bufs[slot], res);
		if (submit_rw(&ring, r->fd, false, bufs[slot],
			      sizeof(bufs[slot]), slot) != 1) {
			__atomic_add_fetch(&r->bad, 1, __ATOMIC_RELAXED);
			break;
		}
	}
	io_uring_queue_exit(&ring);
out:
	__atomic_sub_fetch(&r->running, 1, __ATOMIC_RELEASE);
	return NULL;
}

TEST_F(uring, readers_race)
{
	pthread_t thr[URING_READERS + PLAIN_READERS];
	unsigned char msg[RACE_LEN] = { 0 };
	int64_t end;
	struct race *r;
	unsigned int i;
	int nfd;

	NEED_URING();
	r = calloc(1, sizeof(*r));
	ASSERT_NE(NULL, r);
	r->fd = self->fd;
	r->running = ARRAY_LEN(thr);
	ASSERT_EQ(0, setup_queue(self->fd, BPQ_STRATEGY_BLOCK, 8));
	for (i = 0; i < ARRAY_LEN(thr); i++)
		ASSERT_EQ(0, pthread_create(&thr[i], NULL,
					    i < URING_READERS ?
					    race_uring_reader :
					    race_plain_reader, r));
	for (i = 0; i < RACE_MSGS; i++) {
		memcpy(msg, &i, sizeof(i));
		ASSERT_EQ(RACE_LEN, bpq_write(self->fd, msg, sizeof(msg)));
	}

	end = now_ns() + (int64_t)WAIT_MS * 4 * 1000000;
	while (__atomic_load_n(&r->received, __ATOMIC_ACQUIRE) < RACE_MSGS &&
	       !__atomic_load_n(&r->bad, __ATOMIC_RELAXED) && now_ns() < end)
		sleep_ms(10);
	/* then stop messages until every reader is done */
	nfd = bpq_open(QIDX, O_WRONLY | O_NONBLOCK);
	ASSERT_LE(0, nfd);
	while (__atomic_load_n(&r->running, __ATOMIC_ACQUIRE) &&
	       now_ns() < end) {
		if (bpq_write(nfd, msg, STOP_LEN) == -EAGAIN)
			sleep_ms(10);
	}
	close(nfd);
	ASSERT_EQ(0, __atomic_load_n(&r->running, __ATOMIC_ACQUIRE))
		TH_LOG("readers still waiting, %d messages received",
		       r->received);
	for (i = 0; i < ARRAY_LEN(thr); i++)
		pthread_join(thr[i], NULL);
	EXPECT_EQ(0, r->bad);
	EXPECT_EQ(RACE_MSGS, r->received);
	for (i = 0; i < RACE_MSGS; i++)
		if (r->seen[i] != 1)
			break;
	EXPECT_EQ((unsigned int)RACE_MSGS, i) TH_LOG("message %u received %d times", i,
				       i < RACE_MSGS ? r->seen[i] : 0);
	free(r);
}

/*
 * O_ASYNC: SIGIO, with F_SETSIG's signal and the si_code of the event, to
 * the owner of a file. A plain SIGIO is not queued while one is pending,
 * so where one call sends two the variant with a real-time signal, which
 * is, sees both.
 */
FIXTURE(async) {
	int fd;
	sigset_t set;
};

FIXTURE_VARIANT(async) {
	int sig;	/* 0: SIGRTMIN */
};

FIXTURE_VARIANT_ADD(async, sigio) {
	.sig = SIGIO,
};

FIXTURE_VARIANT_ADD(async, rt) {
	.sig = 0,
};

static int async_on(int fd, int sig)
{
	int flags = fcntl(fd, F_GETFL);

	if (flags < 0 || fcntl(fd, F_SETOWN, getpid()) ||
	    fcntl(fd, F_SETSIG, sig) || fcntl(fd, F_SETFL, flags | O_ASYNC))
		return -errno;
	return 0;
}

/*
 * Take the signals of @set until one for @fd with @code comes, for at
 * most @ms (0: only those pending). Returns true if it came; *others
 * counts those of other codes.
 */
static bool take_sig(const sigset_t *set, int fd, int code, int ms,
		     int *others)
{
	int64_t end = now_ns() + (int64_t)ms * 1000000;
	struct timespec ts = { 0, 0 };
	siginfo_t si;

	for (;;) {
		int64_t left = end - now_ns();

		if (left > 0) {
			ts.tv_sec = left / 1000000000;
			ts.tv_nsec = left % 1000000000;
		} else {
			ts.tv_sec = 0;
			ts.tv_nsec = 0;
		}
		if (sigtimedwait(set, &si, &ts) < 0) {
			if (errno == EINTR)
				continue;
			return false;
		}
		if (si.si_fd == fd && si.si_code == code)
			return true;
		if (others)
			(*others)++;
	}
}

/* Is a signal for @fd with @code pending? Takes every pending one. */
static bool sig_pending(const sigset_t *set, int fd, int code)
{
	bool found = false;

	while (!found && take_sig(set, fd, code, 0, NULL))
		found = true;
	while (take_sig(set, -1, 0, 0, NULL))
		;
	return found;
}

FIXTURE_SETUP(async)
{
	int sig = variant->sig ? variant->sig : SIGRTMIN;

	self->fd = bpq_open(QIDX, O_RDWR);
	ASSERT_LE(0, self->fd) TH_LOG("%m - open /dev/bpq%d", QIDX);
	ASSERT_EQ(0, bpq_reset(self->fd));
	sigemptyset(&self->set);
	sigaddset(&self->set, sig);
	ASSERT_EQ(0, sigprocmask(SIG_BLOCK, &self->set, NULL));
	ASSERT_EQ(0, async_on(self->fd, sig));
	sig_pending(&self->set, -1, 0);
}

FIXTURE_TEARDOWN(async)
{
	EXPECT_EQ(0, bpq_reset(self->fd));
	close(self->fd);
}

TEST_F(async, in_on_write)
{
	ASSERT_FALSE(sig_pending(&self->set, self->fd, POLL_IN));
	ASSERT_EQ(10, bpq_write_pattern(self->fd, 1, 10));
	ASSERT_TRUE(take_sig(&self->set, self->fd, POLL_IN, WAIT_MS, NULL));
	ASSERT_EQ(0, bpq_read_pattern(self->fd, 1, 10));
	/* an empty queue has nothing to report */
	ASSERT_FALSE(sig_pending(&self->set, self->fd, POLL_IN));
}

/*
 * POLL_PRI when the queue reaches its high watermark and when it falls
 * below its low one, and only then.
 */
TEST_F(async, pri_at_watermarks)
{
	struct bpq_config cfg;
	int i;

	bpq_default_config(&cfg);
	cfg.capacity_msgs = 4;
	cfg.high_watermark = 75;
	cfg.low_watermark = 25;
	ASSERT_EQ(0, bpq_set_config(self->fd, &cfg));
	sig_pending(&self->set, -1, 0);

	for (i = 1; i <= 2; i++) {
		ASSERT_EQ(10, bpq_write_pattern(self->fd, i, 10));
		ASSERT_FALSE(sig_pending(&self->set, self->fd, POLL_PRI));
	}
	/* without a ring, the edge comes before the message's POLL_IN */
	ASSERT_EQ(10, bpq_write_pattern(self->fd, 3, 10));
	ASSERT_TRUE(take_sig(&self->set, self->fd, POLL_PRI, WAIT_MS, NULL));
	ASSERT_EQ(1U, bpq_sysfs_u64(QIDX, "pressure"));
	sig_pending(&self->set, -1, 0);

	for (i = 1; i <= 2; i++) {
		ASSERT_EQ(0, bpq_read_pattern(self->fd, i, 10));
		ASSERT_FALSE(sig_pending(&self->set, self->fd, POLL_PRI));
	}
	ASSERT_EQ(0, bpq_read_pattern(self->fd, 3, 10));
	ASSERT_TRUE(take_sig(&self->set, self->fd, POLL_PRI, WAIT_MS, NULL));
	ASSERT_EQ(0U, bpq_sysfs_u64(QIDX, "pressure"));
}

/*
 * POLL_OUT when a write would no longer wait: not while the queue stays
 * under pressure, then with the POLL_PRI of its end, which comes first.
 */
TEST_F(async, out_after_full)
{
	struct bpq_config cfg;
	int i;

	if (variant->sig == SIGIO)
		SKIP(return, "POLL_OUT follows a POLL_PRI: needs a queued signal");
	bpq_default_config(&cfg);
	cfg.capacity_msgs = 4;
	cfg.low_watermark = 50;
	ASSERT_EQ(0, bpq_set_config(self->fd, &cfg));
	for (i = 1; i <= 4; i++)
		ASSERT_EQ(10, bpq_write_pattern(self->fd, i, 10));
	ASSERT_FALSE(poll_events(self->fd) & POLLOUT);
	sig_pending(&self->set, -1, 0);

	for (i = 1; i <= 2; i++) {
		ASSERT_EQ(0, bpq_read_pattern(self->fd, i, 10));
		ASSERT_FALSE(sig_pending(&self->set, self->fd, POLL_OUT));
	}
	ASSERT_EQ(0, bpq_read_pattern(self->fd, 3, 10));
	ASSERT_TRUE(take_sig(&self->set, self->fd, POLL_OUT, WAIT_MS, NULL));
	ASSERT_EQ(10, bpq_write_pattern(self->fd, 5, 10));
}

/*
 * POLL_OUT from the adaptive strategy's timer: a writer refused for want
 * of a token is told when the next one is due, though nobody polls.
 */
TEST_F(async, out_when_token_due)
{
	struct bpq_config cfg;
	int i, nfd, ret = 0;

	bpq_default_config(&cfg);
	cfg.strategy = BPQ_STRATEGY_ADAPTIVE;
	cfg.min_rate = 20;
	cfg.max_rate = 20;
	ASSERT_EQ(0, bpq_set_config(self->fd, &cfg));
	nfd = bpq_open(QIDX, O_WRONLY | O_NONBLOCK);
	ASSERT_LE(0, nfd);
	for (i = 1; i <= 100; i++) {
		ret = bpq_write_pattern(nfd, i, 10);
		if (ret != 10)
			break;
	}
	ASSERT_EQ(-EAGAIN, ret) TH_LOG("write %d", i);
	sig_pending(&self->set, -1, 0);
	ASSERT_TRUE(take_sig(&self->set, self->fd, POLL_OUT, WAIT_MS, NULL));
	EXPECT_EQ(10, bpq_write_pattern(nfd, i, 10));
	close(nfd);
}

/* POLL_HUP when the queue is destroyed under an O_ASYNC file. */
TEST_F(async, hup_on_destroy)
{
	int cfd, idx, fd;

	cfd = bpq_control_open();
	ASSERT_LE(0, cfd) TH_LOG("%m - open " BPQ_CONTROL_PATH);
	idx = bpq_create(cfd, "async-hup");
	ASSERT_LE(0, idx) TH_LOG("create: %s", strerror(-idx));
	ASSERT_TRUE(bpq_wait_node(idx, true, 5000));
	fd = bpq_open(idx, O_RDWR);
	ASSERT_LE(0, fd);
	/*
	 * Only the new file signals: a SIGIO pending for the fixture's would
	 * swallow this one (classic signals do not queue).
	 */
	ASSERT_EQ(0, fcntl(self->fd, F_SETFL,
			   fcntl(self->fd, F_GETFL) & ~O_ASYNC));
	ASSERT_EQ(0, async_on(fd, variant->sig ? variant->sig : SIGRTMIN));
	ASSERT_EQ(0, bpq_destroy(cfd, idx));
	ASSERT_TRUE(take_sig(&self->set, fd, POLL_HUP, WAIT_MS, NULL));
	close(fd);
	close(cfd);
}

TEST_HARNESS_MAIN
