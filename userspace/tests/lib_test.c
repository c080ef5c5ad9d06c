// SPDX-License-Identifier: GPL-2.0
/*
 * libbpq against the real module (run in the test guest, as root): every
 * wrapper once, its return value and its -errno. Creates its own queues
 * "libbpq-test", "libbpq-ring", "libbpq-stream", "libbpq-fifo" and
 * "libbpq-ack" and destroys them. Prints TAP; exits 1 if a test failed, 4 (kselftest SKIP)
 * without the module.
 */
#define _GNU_SOURCE	/* POLLRDHUP */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <bpq.h>

static int nr_tests, nr_failed;

static void __attribute__((format(printf, 2, 3))) ok(int cond,
						      const char *fmt, ...)
{
	va_list ap;

	nr_tests++;
	if (!cond)
		nr_failed++;
	printf("%sok %d - ", cond ? "" : "not ", nr_tests);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int configure(int fd, unsigned int strategy, unsigned int cap)
{
	struct bpq_config cfg;
	int ret = bpq_get_config(fd, &cfg);

	if (ret)
		return ret;
	cfg.strategy = strategy;
	cfg.capacity_msgs = cap;
	cfg.high_watermark = cfg.low_watermark = 100;
	cfg.write_timeout_ms = 0;
	cfg.auto_credit = 0;
	return bpq_set_config(fd, &cfg);
}

/*
 * Fill the ring and the queue behind it without waiting, then take it all
 * with peek and advance: the advances must sync the queued messages in.
 * Returns the messages sent; *@bad counts those that came back wrong.
 */
static int ring_round(int wfd, struct bpq_ring *ring, uint64_t *seq,
		      int *bad)
{
	struct bpq_msg_info info;
	unsigned char msg[200];
	const void *p;
	int sent, got;

	for (sent = 0; sent < 1000; sent++) {
		memset(msg, sent & 0xff, sizeof(msg));
		if (bpq_send(wfd, msg, sizeof(msg), 0) != sizeof(msg))
			break;
	}
	for (got = 0; bpq_ring_peek(ring, &p, &info) == sizeof(msg); got++) {
		memset(msg, got & 0xff, sizeof(msg));
		if (memcmp(p, msg, sizeof(msg)) || info.seq != ++*seq ||
		    info.lost)
			++*bad;
		bpq_ring_advance(ring);
	}
	if (got != sent)
		++*bad;
	return sent;
}

/* The receive ring, on a queue of its own */
static void test_ring(void)
{
	long page = sysconf(_SC_PAGESIZE);
	struct bpq_ring ring, other;
	struct bpq_msg_info info;
	struct bpq_config cfg;
	struct pollfd pfd;
	unsigned int idx;
	char buf[256];
	const void *p;
	uint64_t seq;
	int wfd, rfd, ret, i, n, bad = 0;
	double t;

	if (bpq_create("libbpq-ring", &idx) < 0) {
		ok(0, "ring: bpq_create");
		return;
	}
	wfd = bpq_open("libbpq-ring", O_RDWR);
	rfd = bpq_open("libbpq-ring", O_RDWR);
	ok(wfd >= 0 && rfd >= 0 && configure(wfd, BPQ_STRATEGY_BLOCK, 64) == 0 &&
	   bpq_get_config(wfd, &cfg) == 0, "ring: a queue of 64");
	cfg.max_msg_size = 4096;
	bpq_set_config(wfd, &cfg);
	ok(bpq_ring_setup(rfd, 4096, &ring) == -EINVAL,
	   "bpq_ring_setup: max_msg_size too large for the ring -EINVAL");
	cfg.max_msg_size = 200;
	bpq_set_config(wfd, &cfg);
	ok(bpq_ring_setup(rfd, 3000, &ring) == -EINVAL,
	   "bpq_ring_setup: not a power of two -EINVAL");
	ret = bpq_ring_setup(rfd, 4096, &ring);
	ok(ret == 0 && ring.fd == rfd && ring.mask == 4095 && ring.head == 0 &&
	   ring.map_len == (size_t)page + 4096 && ring.ctl->ring_bytes == 4096,
	   "bpq_ring_setup 4096 (%d)", ret);
	if (ret)
		goto out;
	ok(bpq_ring_setup(wfd, 4096, &other) == -EBUSY,
	   "bpq_ring_setup: a second ring -EBUSY");
	ok(bpq_recv(wfd, buf, sizeof(buf), NULL, 0) == -EBUSY,
	   "bpq_recv beside a ring: -EBUSY");

	ok(bpq_ring_peek(&ring, &p, &info) == -EAGAIN, "bpq_ring_peek: empty");
	ok(bpq_ring_wait(&ring, 0) == -EAGAIN, "bpq_ring_wait 0: -EAGAIN");
	t = now_ms();
	ret = bpq_ring_wait(&ring, 50);
	t = now_ms() - t;
	ok(ret == -ETIMEDOUT && t >= 45, "bpq_ring_wait: -ETIMEDOUT after "
	   "%.0f ms", t);
	pfd = (struct pollfd){ .fd = rfd, .events = POLLIN };
	ok(poll(&pfd, 1, 0) == 0, "poll: empty ring");

	ok(bpq_send(wfd, "hello", 5, -1) == 5, "send into the ring");
	ok(poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLIN), "poll: POLLIN");
	ret = bpq_ring_peek(&ring, &p, &info);
	ok(ret == 5 && !memcmp(p, "hello", 5) && info.len == 5 &&
	   info.offset == 0 && info.seq >= 1 && info.timestamp_ns &&
	   !info.lost, "bpq_ring_peek: in place, with info");
	seq = info.seq;
	ok(bpq_ring_peek(&ring, NULL, NULL) == 5 && ring.ctl->head == 0,
	   "bpq_ring_peek does not consume");
	ok(bpq_ring_wait(&ring, -1) == 0, "bpq_ring_wait: a message is there");
	bpq_ring_advance(&ring);
	ok(ring.ctl->head == BPQ_RING_RECORD(5) &&
	   bpq_ring_peek(&ring, &p, NULL) == -EAGAIN,
	   "bpq_ring_advance publishes head");
	ok(bpq_send(wfd, "world!", 6, -1) == 6, "another");
	ok(bpq_ring_recv(&ring, buf, 5, &info, 0) == -EMSGSIZE,
	   "bpq_ring_recv: small buffer -EMSGSIZE");
	ret = bpq_ring_recv(&ring, buf, sizeof(buf), &info, 0);
	ok(ret == 6 && !memcmp(buf, "world!", 6) && info.seq == seq + 1,
	   "bpq_ring_recv: the message stayed");
	seq = info.seq;

	/* 4096 bytes hold 16 or 17 records of 200: laps, pads, syncs */
	for (i = 0, n = 0; i < 4; i++)
		n += ring_round(wfd, &ring, &seq, &bad);
	ok(!bad && n >= 4 * (16 + 64), "ring and queue filled and drained "
	   "4 times: %d messages, %d wrong", n, bad);

	ok(bpq_destroy(idx) == 0, "bpq_destroy under a ring");
	ok(bpq_ring_wait(&ring, -1) == -ENODEV,
	   "bpq_ring_wait after destroy: -ENODEV");
	bpq_ring_teardown(&ring);
	ok(!ring.ctl && ring.fd == -1, "bpq_ring_teardown");
out:
	close(wfd);
	close(rfd);
	bpq_destroy(idx);
}

static int stream_of(int fd, struct bpq_stats *st)
{
	int ret = bpq_get_stats(fd, st);

	return ret < 0 ? ret : (int)st->stream;
}

static short revents(int fd, short events)
{
	struct pollfd pfd = { .fd = fd, .events = events };

	return poll(&pfd, 1, 0) == 1 ? pfd.revents : 0;
}

struct blocked_recv {
	int fd;
	ssize_t ret;
};

static void *recv_blocked(void *arg)
{
	struct blocked_recv *b = arg;
	char buf[64];

	b->ret = bpq_recv(b->fd, buf, sizeof(buf), NULL, -1);
	return NULL;
}

/* Shutdown of a plain queue: every transition, what readers and writers see */
static void test_stream(void)
{
	struct bpq_msg_info info, infos[4];
	struct blocked_recv b;
	struct bpq_stats st;
	struct bpq_config cfg;
	unsigned int idx;
	pthread_t thread;
	char buf[64];
	int wfd, rfd, rwfd, qfd, ret;
	double t;

	if (bpq_create("libbpq-stream", &idx) < 0) {
		ok(0, "stream: bpq_create");
		return;
	}
	/* a call that blocks when it should not fails the test by the alarm */
	alarm(60);
	wfd = bpq_open("libbpq-stream", O_WRONLY);
	rfd = bpq_open("libbpq-stream", O_RDONLY);
	rwfd = bpq_open("libbpq-stream", O_RDWR);
	ok(wfd >= 0 && rfd >= 0 && rwfd >= 0 &&
	   configure(rwfd, BPQ_STRATEGY_BLOCK, 16) == 0,
	   "stream: a queue of 16, a writer, a reader and both");
	ret = stream_of(rfd, &st);
	ok(ret == BPQ_STREAM_OPEN && st.stream_error == 0 &&
	   st.stream_epoch == 0 && st.readers == 2 && st.writers == 2,
	   "stream: open, epoch 0, 2 readers, 2 writers (%u, %u)", st.readers,
	   st.writers);
	qfd = bpq_open("libbpq-stream", O_ACCMODE);
	ret = qfd >= 0 ? bpq_get_stats(qfd, &st) : qfd;
	ok(ret == 0 && st.readers == 2 && st.writers == 2,
	   "an ioctl-only open (mode 3) is neither (%u, %u)", st.readers,
	   st.writers);
	close(qfd);

	ok(bpq_shutdown(rwfd, 0, 0) == -EINVAL, "bpq_shutdown: no kind -EINVAL");
	ok(bpq_shutdown(rwfd, BPQ_SHUTDOWN_COMPLETE | BPQ_SHUTDOWN_CANCEL, 0) ==
	   -EINVAL, "bpq_shutdown: two kinds -EINVAL");
	ok(bpq_shutdown(rwfd, BPQ_SHUTDOWN_DISCARD, 0) == -EINVAL,
	   "bpq_shutdown: DISCARD without CANCEL -EINVAL");
	ok(bpq_shutdown(rwfd, BPQ_SHUTDOWN_COMPLETE | BPQ_SHUTDOWN_DISCARD, 0) ==
	   -EINVAL, "bpq_shutdown: COMPLETE|DISCARD -EINVAL");
	ok(bpq_shutdown(rwfd, BPQ_SHUTDOWN_COMPLETE, EIO) == -EINVAL,
	   "bpq_shutdown: an error without FAIL -EINVAL");
	ok(bpq_shutdown(rwfd, BPQ_SHUTDOWN_FAIL, 0) == -EINVAL &&
	   bpq_shutdown(rwfd, BPQ_SHUTDOWN_FAIL, EAGAIN) == -EINVAL &&
	   bpq_shutdown(rwfd, BPQ_SHUTDOWN_FAIL, EINTR) == -EINVAL &&
	   bpq_shutdown(rwfd, BPQ_SHUTDOWN_FAIL, 134) == -EINVAL &&
	   bpq_shutdown(rwfd, BPQ_SHUTDOWN_FAIL, -EIO) == -EINVAL,
	   "bpq_shutdown: FAIL with 0, EAGAIN, EINTR, 134, -EIO -EINVAL");
	ok(bpq_shutdown(rwfd, 1U << 5, 0) == -EINVAL,
	   "bpq_shutdown: unknown flag -EINVAL");
	ok(bpq_shutdown(rfd, BPQ_SHUTDOWN_COMPLETE, 0) == -EBADF &&
	   bpq_shutdown(rfd, BPQ_SHUTDOWN_FAIL, EIO) == -EBADF,
	   "bpq_shutdown: COMPLETE, FAIL on a reader's file -EBADF");
	ok(bpq_shutdown(wfd, BPQ_SHUTDOWN_CANCEL, 0) == -EBADF,
	   "bpq_shutdown: CANCEL on a writer's file -EBADF");
	ok(stream_of(rfd, &st) == BPQ_STREAM_OPEN,
	   "stream: still open after the refusals");
	ok(bpq_shutdown(rfd, BPQ_SHUTDOWN_REOPEN, 0) == 0 &&
	   stream_of(rfd, &st) == BPQ_STREAM_OPEN && st.stream_epoch == 0,
	   "bpq_shutdown REOPEN of an open stream: 0, no new epoch");

	/* complete: the queued message, then end of file */
	ok(bpq_send(wfd, "last", 4, -1) == 4, "stream: send before the end");
	ok(bpq_shutdown(wfd, BPQ_SHUTDOWN_COMPLETE, 0) == 0,
	   "bpq_shutdown COMPLETE");
	ok(stream_of(rfd, &st) == BPQ_STREAM_COMPLETED && st.depth_msgs == 1,
	   "stream: completed, the message still queued");
	ok(bpq_send(wfd, "more", 4, -1) == -EPIPE,
	   "write after COMPLETE: -EPIPE (SIGPIPE ignored)");
	ok(bpq_send(rwfd, "more", 4, 100) == -EPIPE,
	   "batch send after COMPLETE: -EPIPE");
	ok(revents(rfd, POLLIN | POLLRDHUP) == (POLLIN | POLLRDHUP),
	   "poll: a message to read, and RDHUP");
	ok(revents(wfd, POLLOUT) & POLLOUT, "poll: POLLOUT for the writer");
	ret = bpq_recv(rfd, buf, sizeof(buf), &info, -1);
	ok(ret == 4 && !memcmp(buf, "last", 4), "bpq_recv: the queued message");
	ok((revents(rfd, POLLIN | POLLRDHUP) & (POLLIN | POLLHUP | POLLRDHUP)) ==
	   (POLLIN | POLLHUP | POLLRDHUP), "poll: drained: POLLIN | POLLHUP");
	ok(bpq_recv(rfd, buf, sizeof(buf), &info, -1) == 0,
	   "bpq_recv after the drain: 0 (end of file), without waiting");
	ok(bpq_recv(rfd, buf, sizeof(buf), &info, 0) == 0 &&
	   bpq_recv(rfd, buf, sizeof(buf), &info, 100) == 0,
	   "bpq_recv with timeouts 0 and 100: 0");
	ok(bpq_recv_batch(rfd, buf, sizeof(buf), infos, 4, -1) == 0,
	   "bpq_recv_batch: 0");
	ok(read(rfd, buf, sizeof(buf)) == 0, "read(): 0");
	ok(bpq_shutdown(wfd, BPQ_SHUTDOWN_COMPLETE, 0) == 0,
	   "COMPLETE again: 0, nothing changes");
	ok(bpq_shutdown(wfd, BPQ_SHUTDOWN_FAIL, EIO) == -EBUSY,
	   "FAIL of a completed stream: -EBUSY");

	/* reopen: a new epoch */
	ok(bpq_shutdown(rfd, BPQ_SHUTDOWN_REOPEN, 0) == 0 &&
	   stream_of(rfd, &st) == BPQ_STREAM_OPEN && st.stream_epoch == 1,
	   "REOPEN of a completed, drained stream: open, epoch 1");
	ok(bpq_send(wfd, "again", 5, -1) == 5 &&
	   bpq_recv(rfd, buf, sizeof(buf), NULL, 0) == 5,
	   "stream: reopened, messages flow");

	/* fail: drained, then ECONNRESET */
	ok(bpq_send(wfd, "a", 1, -1) == 1, "stream: send before the failure");
	ok(bpq_shutdown(wfd, BPQ_SHUTDOWN_FAIL, EIO) == 0, "bpq_shutdown FAIL EIO");
	ok(stream_of(rfd, &st) == BPQ_STREAM_FAILED && st.stream_error == EIO,
	   "stream: failed, stream_error EIO");
	ok(bpq_shutdown(wfd, BPQ_SHUTDOWN_FAIL, EPROTO) == 0 &&
	   stream_of(rfd, &st) == BPQ_STREAM_FAILED && st.stream_error == EIO,
	   "FAIL again: 0, the first error kept");
	ok(bpq_shutdown(wfd, BPQ_SHUTDOWN_COMPLETE, 0) == -EBUSY,
	   "COMPLETE of a failed stream: -EBUSY");
	ok(bpq_shutdown(rfd, BPQ_SHUTDOWN_REOPEN, 0) == -EBUSY,
	   "REOPEN while a message is queued: -EBUSY");
	ok(bpq_recv(rfd, buf, sizeof(buf), &info, -1) == 1 && buf[0] == 'a',
	   "bpq_recv after FAIL: the queued message");
	ok(bpq_recv(rfd, buf, sizeof(buf), &info, -1) == -ECONNRESET,
	   "bpq_recv after the drain: -ECONNRESET");
	ok(bpq_recv_batch(rfd, buf, sizeof(buf), infos, 4, 0) == -ECONNRESET,
	   "bpq_recv_batch: -ECONNRESET");
	ok(bpq_shutdown(rfd, BPQ_SHUTDOWN_REOPEN, 0) == 0 &&
	   stream_of(rfd, &st) == BPQ_STREAM_OPEN && st.stream_error == 0 &&
	   st.stream_epoch == 2, "REOPEN of a failed stream: epoch 2, no error");

	/* cancel, discarding: writers get EPIPE, readers end of file */
	bpq_send(wfd, "x", 1, -1);
	bpq_send(wfd, "y", 1, -1);
	bpq_send(wfd, "z", 1, -1);
	bpq_reset_stats(rfd);
	ok(bpq_shutdown(rfd, BPQ_SHUTDOWN_CANCEL | BPQ_SHUTDOWN_DISCARD, 0) == 3,
	   "bpq_shutdown CANCEL|DISCARD: 3 discarded");
	ok(stream_of(rfd, &st) == BPQ_STREAM_CANCELLED && st.flushed == 3 &&
	   st.depth_msgs == 0, "stream: cancelled, counted in flushed");
	ok(bpq_send(wfd, "w", 1, 0) == -EPIPE, "send after CANCEL: -EPIPE");
	ok(revents(wfd, POLLOUT) & POLLERR, "poll: POLLERR for the writer");
	ok(bpq_shutdown(wfd, BPQ_SHUTDOWN_COMPLETE, 0) == -EPIPE &&
	   bpq_shutdown(wfd, BPQ_SHUTDOWN_FAIL, EIO) == -EPIPE,
	   "COMPLETE, FAIL of a cancelled stream: -EPIPE");
	ok(bpq_shutdown(rfd, BPQ_SHUTDOWN_CANCEL, 0) == 0,
	   "CANCEL again: 0");
	ok(bpq_recv(rfd, buf, sizeof(buf), NULL, -1) == 0,
	   "bpq_recv after CANCEL: 0");

	/* cancel, keeping: what is queued may still be read */
	ok(bpq_shutdown(rwfd, BPQ_SHUTDOWN_REOPEN, 0) == 0 &&
	   stream_of(rfd, &st) == BPQ_STREAM_OPEN && st.stream_epoch == 3,
	   "REOPEN of a cancelled stream: epoch 3");
	bpq_send(wfd, "k1", 2, -1);
	bpq_send(wfd, "k2", 2, -1);
	ok(bpq_shutdown(rwfd, BPQ_SHUTDOWN_CANCEL, 0) == 0,
	   "bpq_shutdown CANCEL: 0");
	ok(bpq_recv(rfd, buf, sizeof(buf), NULL, 0) == 2 &&
	   bpq_recv(rfd, buf, sizeof(buf), NULL, 0) == 2 &&
	   bpq_recv(rfd, buf, sizeof(buf), NULL, 0) == 0,
	   "CANCEL keeps the queued messages, then end of file");

	/* a reader blocked at the end is woken with end of file */
	bpq_shutdown(rfd, BPQ_SHUTDOWN_REOPEN, 0);
	b.fd = rfd;
	b.ret = -1000;
	ret = pthread_create(&thread, NULL, recv_blocked, &b);
	usleep(100000);
	t = now_ms();
	ok(bpq_shutdown(wfd, BPQ_SHUTDOWN_COMPLETE, 0) == 0,
	   "COMPLETE with a reader waiting");
	if (!ret)
		pthread_join(thread, NULL);
	t = now_ms() - t;
	ok(!ret && b.ret == 0, "the waiting reader woke with 0 after %.0f ms",
	   t);

	/* hangup is a setting */
	ok(bpq_get_config(rfd, &cfg) == 0 && cfg.hangup == BPQ_HANGUP_NONE,
	   "hangup: none by default");
	cfg.hangup = 4;
	ok(bpq_set_config(rwfd, &cfg) == -EINVAL, "hangup 4: -EINVAL");

	ok(bpq_destroy(idx) == 0, "bpq_destroy");
	ok(bpq_shutdown(rwfd, BPQ_SHUTDOWN_REOPEN, 0) == -ENODEV &&
	   bpq_shutdown(wfd, BPQ_SHUTDOWN_COMPLETE, 0) == -ENODEV,
	   "bpq_shutdown after destroy: -ENODEV");
	close(wfd);
	close(rfd);
	close(rwfd);
	alarm(0);
}

/* hangup: the last close of one side ends the stream, as a FIFO */
static void test_hangup(void)
{
	struct bpq_config cfg;
	struct bpq_stats st;
	unsigned int idx;
	char buf[64];
	int rfd, wfd, qfd, ctl;

	if (bpq_create("libbpq-fifo", &idx) < 0) {
		ok(0, "hangup: bpq_create");
		return;
	}
	alarm(60);
	/* settings through an ioctl-only file, which is neither side */
	ctl = bpq_open("libbpq-fifo", O_ACCMODE);
	rfd = bpq_open("libbpq-fifo", O_RDONLY);
	ok(ctl >= 0 && rfd >= 0 && bpq_get_config(ctl, &cfg) == 0,
	   "hangup: a reader");
	cfg.hangup = BPQ_HANGUP_WRITERS;
	ok(bpq_set_config(ctl, &cfg) == 0 && bpq_get_config(rfd, &cfg) == 0 &&
	   cfg.hangup == BPQ_HANGUP_WRITERS, "hangup=writers set");
	wfd = bpq_open("libbpq-fifo", O_WRONLY);
	ok(wfd >= 0 && bpq_send(wfd, "hi", 2, -1) == 2, "a writer writes hi");
	close(wfd);
	ok(stream_of(rfd, &st) == BPQ_STREAM_COMPLETED && st.writers == 0,
	   "the last writer's close completes the stream");
	ok(bpq_recv(rfd, buf, sizeof(buf), NULL, -1) == 2 &&
	   bpq_recv(rfd, buf, sizeof(buf), NULL, -1) == 0,
	   "the reader gets hi, then end of file");
	qfd = bpq_open("libbpq-fifo", O_ACCMODE);
	close(qfd);
	ok(qfd >= 0 && stream_of(rfd, &st) == BPQ_STREAM_COMPLETED &&
	   st.stream_epoch == 0,
	   "an ioctl-only open of the drained stream leaves it completed");
	wfd = bpq_open("libbpq-fifo", O_WRONLY);
	ok(wfd >= 0 && stream_of(rfd, &st) == BPQ_STREAM_OPEN &&
	   st.stream_epoch == 1,
	   "an open for writing of the drained stream opens it again");

	cfg.hangup = BPQ_HANGUP_READERS;
	ok(bpq_set_config(ctl, &cfg) == 0, "hangup=readers set");
	qfd = bpq_open("libbpq-fifo", O_ACCMODE);
	close(qfd);
	ok(qfd >= 0 && stream_of(wfd, &st) == BPQ_STREAM_OPEN,
	   "closing an ioctl-only file hangs nothing up");
	close(rfd);
	ok(stream_of(wfd, &st) == BPQ_STREAM_CANCELLED && st.readers == 0,
	   "the last reader's close cancels the stream");
	ok(bpq_send(wfd, "x", 1, 0) == -EPIPE, "then a write: -EPIPE");
	close(wfd);
	close(ctl);
	bpq_destroy(idx);
	alarm(0);
}

/* The receive ring at the end of the stream: end of file, ECONNRESET */
static void test_ring_end(void)
{
	struct bpq_msg_info info;
	struct bpq_ring ring;
	unsigned int idx;
	char buf[64];
	int fd, ret;

	if (bpq_create("libbpq-ring", &idx) < 0) {
		ok(0, "ring end: bpq_create");
		return;
	}
	alarm(60);
	fd = bpq_open("libbpq-ring", O_RDWR);
	ok(fd >= 0 && configure(fd, BPQ_STRATEGY_BLOCK, 64) == 0,
	   "ring end: a queue");
	ret = bpq_ring_setup(fd, 1 << 18, &ring);
	ok(ret == 0, "ring end: bpq_ring_setup (%d)", ret);
	if (ret)
		goto out;
	bpq_send(fd, "one", 3, -1);
	bpq_send(fd, "two", 3, -1);
	ok(bpq_shutdown(fd, BPQ_SHUTDOWN_COMPLETE, 0) == 0, "ring end: COMPLETE");
	ok(bpq_ring_recv(&ring, buf, sizeof(buf), &info, -1) == 3 &&
	   !memcmp(buf, "one", 3) &&
	   bpq_ring_recv(&ring, buf, sizeof(buf), &info, -1) == 3 &&
	   !memcmp(buf, "two", 3), "ring end: both messages first");
	ok(__atomic_load_n(&ring.ctl->end, __ATOMIC_ACQUIRE) ==
	   BPQ_STREAM_COMPLETED, "ring end: ctl->end is completed");
	ok(bpq_ring_peek(&ring, NULL, NULL) == 0 &&
	   bpq_ring_wait(&ring, -1) == 0 &&
	   bpq_ring_recv(&ring, buf, sizeof(buf), &info, -1) == 0,
	   "ring end: peek, wait, recv: 0 (end of file), no wait");
	ok(bpq_shutdown(fd, BPQ_SHUTDOWN_REOPEN, 0) == 0 &&
	   __atomic_load_n(&ring.ctl->end, __ATOMIC_ACQUIRE) == 0,
	   "ring end: REOPEN sets end back to 0");
	ok(bpq_ring_wait(&ring, 0) == -EAGAIN, "ring end: open and empty");
	bpq_send(fd, "three", 5, -1);
	ok(bpq_shutdown(fd, BPQ_SHUTDOWN_FAIL, ENOSPC) == 0, "ring end: FAIL");
	ok(bpq_ring_recv(&ring, buf, sizeof(buf), &info, -1) == 5,
	   "ring end: the message before the failure");
	ok(bpq_ring_peek(&ring, NULL, NULL) == -ECONNRESET &&
	   bpq_ring_wait(&ring, -1) == -ECONNRESET &&
	   bpq_ring_recv(&ring, buf, sizeof(buf), &info, 50) == -ECONNRESET,
	   "ring end: then -ECONNRESET");
	bpq_ring_teardown(&ring);
out:
	close(fd);
	bpq_destroy(idx);
	alarm(0);
}

static uint64_t hist_total(const uint64_t *hist)
{
	uint64_t n = 0;
	int i;

	for (i = 0; i < BPQ_LATENCY_BUCKETS; i++)
		n += hist[i];
	return n;
}

/* Acknowledgments, auto_credit ack and the window, on a queue of its own */
static void test_ack(void)
{
	struct bpq_msg_info info;
	struct bpq_config cfg;
	struct bpq_stats st;
	uint64_t before;
	struct timespec ts;
	unsigned int idx;
	char buf[64];
	int wfd, rfd, cfd, i, ret;

	if (bpq_create("libbpq-ack", &idx) < 0) {
		ok(0, "ack: bpq_create");
		return;
	}
	wfd = bpq_open("libbpq-ack", O_WRONLY);
	rfd = bpq_open("libbpq-ack", O_RDONLY);
	cfd = bpq_open("libbpq-ack", O_ACCMODE);
	ok(wfd >= 0 && rfd >= 0 && cfd >= 0 &&
	   configure(cfd, BPQ_STRATEGY_BLOCK, 16) == 0, "ack: a queue of 16");

	for (i = 0; i < 5; i++)
		bpq_send(wfd, "m", 1, 0);
	for (i = 0; i < 3; i++)
		bpq_recv(rfd, buf, sizeof(buf), &info, 0);
	ok(bpq_get_stats(rfd, &st) == 0 && st.unacked == 3 &&
	   st.acked_msgs == 0, "ack: three delivered, unacked");
	ok(bpq_ack(rfd, 2, 0, 0) == 2, "bpq_ack 2 of 3: 2");
	ok(bpq_get_stats(rfd, &st) == 0 && st.unacked == 1 &&
	   st.acked_msgs == 2 && st.stale_acks == 0, "ack: 1 unacked left");
	ok(bpq_ack(rfd, 4, 0, 0) == 1, "bpq_ack 4 of 1: 1");
	ok(bpq_ack(rfd, 1, 0, 0) == 0, "bpq_ack of nothing: 0");
	ok(bpq_get_stats(rfd, &st) == 0 && st.unacked == 0 &&
	   st.acked_msgs == 3 && st.stale_acks == 4,
	   "ack: the rest counted stale");

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ok(bpq_ack(rfd, 0, 0, 0) == -EINVAL, "bpq_ack: count 0 -EINVAL");
	ok(bpq_ack(rfd, 1, 1U << 7, 0) == -EINVAL,
	   "bpq_ack: unknown flag -EINVAL");
	ok(bpq_ack(rfd, 1, BPQ_ACK_TIMESTAMP, 0) == -EINVAL,
	   "bpq_ack: TIMESTAMP without one -EINVAL");
	ok(bpq_ack(rfd, 1, BPQ_ACK_TIMESTAMP,
		   ts.tv_sec * 1000000000ULL + ts.tv_nsec + 60000000000ULL) ==
	   -EINVAL, "bpq_ack: a timestamp in the future -EINVAL");
	ok(bpq_ack(rfd, 1, 0, 12345) == -EINVAL,
	   "bpq_ack: a timestamp without TIMESTAMP -EINVAL");
	ok(bpq_ack(wfd, 1, 0, 0) == -EBADF,
	   "bpq_ack on a file open for writing only: -EBADF");
	ok(bpq_ack(cfd, 1, 0, 0) == 0, "bpq_ack on an ioctl-only file");

	/* the processing histogram: one sample per TIMESTAMP ack */
	bpq_get_stats(rfd, &st);
	before = hist_total((const uint64_t *)st.processing_hist);
	ret = bpq_recv(rfd, buf, sizeof(buf), &info, 0);
	ok(ret == 1 && bpq_ack(rfd, 1, BPQ_ACK_TIMESTAMP, info.timestamp_ns) == 1,
	   "bpq_ack with the message's timestamp");
	ret = bpq_recv(rfd, buf, sizeof(buf), &info, 0);
	ok(ret == 1 && bpq_ack(rfd, 1, BPQ_ACK_NACK | BPQ_ACK_TIMESTAMP,
			       info.timestamp_ns) == 1, "bpq_ack: a NACK");
	ok(bpq_get_stats(rfd, &st) == 0 &&
	   hist_total((const uint64_t *)st.processing_hist) == before + 2 &&
	   st.nacked == 1 && st.acked_msgs == 5 && st.unacked == 0,
	   "ack: processing_hist grew by 2, one NACK");
	ok(bpq_reset_stats(cfd) == 0 && bpq_get_stats(rfd, &st) == 0 &&
	   !hist_total((const uint64_t *)st.processing_hist) && !st.nacked,
	   "ack: reset clears processing_hist and nacked");

	/* credit with auto_credit ack: an ack returns the credit */
	ok(configure(cfd, BPQ_STRATEGY_CREDIT, 16) == 0 &&
	   bpq_get_config(cfd, &cfg) == 0, "ack: credit");
	cfg.auto_credit = BPQ_AUTO_CREDIT_ACK;
	ok(bpq_set_config(cfd, &cfg) == 0, "auto_credit ack");
	bpq_grant(rfd, 1);
	ok(bpq_send(wfd, "c", 1, 0) == 1 && bpq_send(wfd, "c", 1, 0) == -EAGAIN,
	   "ack: one credit, one send");
	ok(bpq_recv(rfd, buf, sizeof(buf), NULL, 0) == 1 &&
	   bpq_send(wfd, "c", 1, 0) == -EAGAIN,
	   "ack: the delivery returns no credit");
	ok(bpq_ack(rfd, 1, 0, 0) == 1 && bpq_get_stats(rfd, &st) == 0 &&
	   st.credits_available == 1 && bpq_send(wfd, "c", 1, 0) == 1,
	   "ack: the ack returns it");
	bpq_flush(cfd);

	/* the window: two in flight, queued or delivered unacked */
	bpq_get_config(cfd, &cfg);
	cfg.strategy = BPQ_STRATEGY_WINDOW;
	cfg.auto_credit = 0;
	cfg.initial_cwnd = 2;
	cfg.min_cwnd = 1;
	cfg.max_cwnd = 100;
	cfg.ack_mode = BPQ_ACK_MODE_ACK;
	ok(bpq_set_config(cfd, &cfg) == 0, "window, initial_cwnd 2");
	ok(bpq_get_stats(cfd, &st) == 0 && st.cwnd == 2 &&
	   st.window_state == BPQ_WINDOW_SLOW_START &&
	   !strcmp(bpq_window_state_name(st.window_state), "slow-start"),
	   "window: cwnd 2, slow start");
	ok(bpq_send(wfd, "w", 1, 0) == 1 && bpq_send(wfd, "w", 1, 0) == 1 &&
	   bpq_send(wfd, "w", 1, 0) == -EAGAIN, "window: two, not three");
	ok(bpq_recv(rfd, buf, sizeof(buf), NULL, 0) == 1 &&
	   bpq_send(wfd, "w", 1, 0) == -EAGAIN,
	   "window: a delivery unacked is still in flight");
	ok(bpq_get_stats(cfd, &st) == 0 && st.inflight == 2 && st.unacked == 1,
	   "window: inflight 2, unacked 1");
	ok(bpq_ack(rfd, 1, 0, 0) == 1 && bpq_send(wfd, "w", 1, 0) == 1,
	   "window: the ack lets one in");
	cfg.initial_cwnd = 200;
	ok(bpq_set_config(cfd, &cfg) == -EINVAL,
	   "window: initial_cwnd above max_cwnd -EINVAL");
	cfg.initial_cwnd = 2;
	cfg.ack_timeout_ms = 3600001;
	ok(bpq_set_config(cfd, &cfg) == -EINVAL,
	   "window: ack_timeout_ms above an hour -EINVAL");

	ok(bpq_destroy(idx) == 0 && bpq_ack(rfd, 1, 0, 0) == -ENODEV,
	   "bpq_ack after destroy: -ENODEV");
	close(wfd);
	close(rfd);
	close(cfd);
}

/* --- bpq_stage_run(): a source, a middle stage and a sink over two queues */

#define STAGE_N		1000

struct stage_test {
	unsigned int idx[2];
	int w[2], r[2];			/* each queue's ends */
	struct bpq_stage st[3];		/* source, middle, sink */
	int ret[3];
	unsigned long next, seen, bad, fail_at, end_at, nack_every;
	volatile sig_atomic_t stop;
};

static struct stage_test stg;

static int stage_source_fn(struct bpq_stage *st, const void *data,
			   size_t len, const struct bpq_msg_info *info)
{
	char rec[32];
	int n;

	(void)data, (void)len, (void)info;
	if (stg.next == STAGE_N)
		return BPQ_STAGE_END;
	n = snprintf(rec, sizeof(rec), "%lu", stg.next++);
	return bpq_stage_emit(st, rec, n);
}

/* every 7th record filtered out, the others emitted twice */
static int stage_middle_fn(struct bpq_stage *st, const void *data,
			   size_t len, const struct bpq_msg_info *info)
{
	unsigned long v;
	char rec[32];
	int ret;

	(void)info;
	snprintf(rec, sizeof(rec), "%.*s", (int)len, (const char *)data);
	v = strtoul(rec, NULL, 10);
	if (stg.fail_at && v == stg.fail_at)
		return -EPROTO;
	if (stg.end_at && v == stg.end_at)
		return BPQ_STAGE_END;
	if (v % 7 == 0)
		return 0;
	ret = bpq_stage_emit(st, data, len);
	return ret ?: bpq_stage_emit(st, data, len);
}

static int stage_sink_fn(struct bpq_stage *st, const void *data,
			 size_t len, const struct bpq_msg_info *info)
{
	(void)st, (void)data, (void)len, (void)info;
	stg.seen++;
	if (stg.nack_every && stg.seen % stg.nack_every == 0)
		return BPQ_STAGE_NACK;
	return 0;
}

static void *stage_thread(void *arg)
{
	struct bpq_stage *st = arg;

	stg.ret[st - stg.st] = bpq_stage_run(st);
	return NULL;
}

static void stage_on_signal(int sig)
{
	(void)sig;
	stg.stop = 1;
}

static int stage_setup(const char *what)
{
	static const char *const names[2] = { "libbpq-stage-a",
					      "libbpq-stage-b" };
	int q, ctl, ret = 0;

	memset(&stg, 0, sizeof(stg));
	for (q = 0; q < 2; q++) {
		stg.w[q] = stg.r[q] = -1;
		if (bpq_create(names[q], &stg.idx[q]) < 0) {
			ok(0, "stage %s: bpq_create %s", what, names[q]);
			return -1;
		}
		ctl = bpq_open(names[q], O_ACCMODE);
		if (configure(ctl, BPQ_STRATEGY_BLOCK, 8) < 0)
			ret = -1;
		close(ctl);
		stg.r[q] = bpq_open(names[q], O_RDONLY);
		stg.w[q] = bpq_open(names[q], O_WRONLY);
		if (stg.r[q] < 0 || stg.w[q] < 0)
			ret = -1;
	}
	stg.st[0] = (struct bpq_stage){ .in_fd = -1, .out_fd = stg.w[0],
		.batch = 4, .max_msg = 32, .timeout_ms = 10000,
		.fn = stage_source_fn };
	stg.st[1] = (struct bpq_stage){ .in_fd = stg.r[0], .out_fd = stg.w[1],
		.batch = 16, .max_msg = 32, .timeout_ms = 10000,
		.fn = stage_middle_fn };
	stg.st[2] = (struct bpq_stage){ .in_fd = stg.r[1], .out_fd = -1,
		.batch = 5, .max_msg = 32, .timeout_ms = 10000,
		.fn = stage_sink_fn, .stop = &stg.stop };
	if (ret)
		ok(0, "stage %s: two queues", what);
	return ret;
}

static void stage_run_all(void)
{
	pthread_t t[3];
	int i;

	for (i = 0; i < 3; i++)
		pthread_create(&t[i], NULL, stage_thread, &stg.st[i]);
	for (i = 0; i < 3; i++)
		pthread_join(t[i], NULL);
}

static void stage_teardown(void)
{
	int q;

	for (q = 0; q < 2; q++) {
		close(stg.r[q]);
		close(stg.w[q]);
		bpq_destroy(stg.idx[q]);
	}
}

static void test_stage(void)
{
	unsigned long kept = STAGE_N - (STAGE_N + 6) / 7;
	struct bpq_stage bad = { .in_fd = -1, .out_fd = -1 };
	struct bpq_stats a, b;
	struct sigaction sa;
	pthread_t t;

	alarm(120);
	ok(bpq_stage_run(&bad) == -EINVAL, "stage: no function, no queue: -EINVAL");
	bad.fn = stage_sink_fn;
	ok(bpq_stage_run(&bad) == -EINVAL, "stage: no queue: -EINVAL");
	bad.out_fd = 1;
	bad.batch = 1025;
	ok(bpq_stage_run(&bad) == -EINVAL, "stage: batch 1025: -EINVAL");
	bad.batch = 1;
	bad.max_msg = (4U << 20) + 1;
	ok(bpq_stage_run(&bad) == -EINVAL, "stage: max_msg over 4 MiB: -EINVAL");
	ok(bpq_stage_emit(&bad, "x", 1) == -EBADF,
	   "stage: bpq_stage_emit outside a run: -EBADF");

	/* the whole stream through, its end carried along */
	if (stage_setup("through"))
		return;
	stg.nack_every = 10;
	stage_run_all();
	ok(!stg.ret[0] && !stg.ret[1] && !stg.ret[2],
	   "stage: the three runs end at the end of stream (%d %d %d)",
	   stg.ret[0], stg.ret[1], stg.ret[2]);
	ok(stg.st[0].emitted == STAGE_N && stg.st[1].received == STAGE_N &&
	   stg.st[1].emitted == 2 * kept && stg.st[2].received == 2 * kept &&
	   stg.seen == 2 * kept,
	   "stage: %d records, %lu kept and doubled: %llu in the sink",
	   STAGE_N, kept, (unsigned long long)stg.st[2].received);
	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	bpq_get_stats(stg.r[0], &a);
	bpq_get_stats(stg.r[1], &b);
	ok(a.acked_msgs == STAGE_N && a.unacked == 0 && a.nacked == 0 &&
	   a.stream == BPQ_STREAM_COMPLETED,
	   "stage: the middle acknowledged each record; its input completed");
	ok(b.acked_msgs == 2 * kept &&
	   b.nacked == 2 * kept / 10 && stg.st[2].nacked == b.nacked &&
	   b.stream == BPQ_STREAM_COMPLETED,
	   "stage: the sink NACKed every 10th (%llu), its input completed",
	   (unsigned long long)b.nacked);
	stage_teardown();

	/* a failure in the middle: the stream after it fails, before it stops */
	if (stage_setup("failure"))
		return;
	stg.fail_at = 300;
	stage_run_all();
	ok(stg.ret[1] == -EPROTO && stg.ret[0] == -EPIPE &&
	   stg.ret[2] == -ECONNRESET,
	   "stage: a failing function: -EPROTO, the source -EPIPE, the sink -ECONNRESET (%d %d %d)",
	   stg.ret[0], stg.ret[1], stg.ret[2]);
	ok(bpq_get_stats(stg.r[0], &a) == 0 &&
	   a.stream == BPQ_STREAM_CANCELLED &&
	   bpq_get_stats(stg.r[1], &b) == 0 &&
	   b.stream == BPQ_STREAM_FAILED && b.stream_error == EPROTO &&
	   a.acked_msgs == 300 && stg.st[1].received == 301,
	   "stage: its input cancelled, its output failed with EPROTO, the record before acknowledged");
	stage_teardown();

	/* BPQ_STAGE_END in the middle: the output ends, the input is given up */
	if (stage_setup("end"))
		return;
	stg.end_at = 20;
	stage_run_all();
	ok(stg.ret[1] == 0 && stg.ret[2] == 0 && stg.ret[0] == -EPIPE &&
	   bpq_get_stats(stg.r[1], &b) == 0 &&
	   b.stream == BPQ_STREAM_COMPLETED &&
	   stg.st[2].received == 2 * (20 - 3),
	   "stage: BPQ_STAGE_END completes the output, cancels the input (%d %d %d, %llu)",
	   stg.ret[0], stg.ret[1], stg.ret[2],
	   (unsigned long long)stg.st[2].received);
	stage_teardown();

	/* the stop flag, set by a signal that interrupts a waiting receive */
	if (stage_setup("stop"))
		return;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = stage_on_signal;
	sigaction(SIGUSR1, &sa, NULL);
	pthread_create(&t, NULL, stage_thread, &stg.st[2]);
	bpq_send(stg.w[1], "1", 1, 0);
	usleep(100 * 1000);
	pthread_kill(t, SIGUSR1);
	pthread_join(t, NULL);
	signal(SIGUSR1, SIG_DFL);
	ok(stg.ret[2] == 0 && stg.st[2].received == 1 &&
	   bpq_get_stats(stg.r[1], &b) == 0 &&
	   b.stream == BPQ_STREAM_CANCELLED,
	   "stage: stopped by a signal: 0, its input cancelled");

	/* a receive that waits past timeout_ms fails the stage */
	stg.st[2].timeout_ms = 50;
	stg.stop = 0;
	bpq_shutdown(stg.r[1], BPQ_SHUTDOWN_REOPEN, 0);
	ok(bpq_stage_run(&stg.st[2]) == -ETIMEDOUT,
	   "stage: nothing within timeout_ms: -ETIMEDOUT");
	/* what a sink emits has nowhere to go; a record over max_msg */
	bpq_shutdown(stg.r[1], BPQ_SHUTDOWN_REOPEN, 0);
	stg.st[1].in_fd = stg.r[1];
	stg.st[1].out_fd = stg.w[0];
	stg.st[1].max_msg = 1;
	bpq_send(stg.w[1], "12", 2, 0);
	ok(bpq_stage_run(&stg.st[1]) == -EMSGSIZE,
	   "stage: a record over max_msg: -EMSGSIZE");
	stg.st[2].fn = stage_middle_fn;
	stg.st[2].timeout_ms = 1000;
	bpq_shutdown(stg.r[1], BPQ_SHUTDOWN_REOPEN, 0);
	bpq_flush(stg.r[1]);
	bpq_send(stg.w[1], "1", 1, 0);
	ok(bpq_stage_run(&stg.st[2]) == -EBADF,
	   "stage: a sink's emit: -EBADF");
	stage_teardown();
	alarm(0);
}

int main(void)
{
	unsigned int idx, list[64];
	struct bpq_msg_info info, infos[8];
	struct bpq_config cfg;
	struct bpq_stats st;
	struct iovec iov[3];
	char buf[256], name[64], path[32];
	double t;
	int fd, fd2, ret, n, i, sorted;

	if (access(BPQ_SYSFS_CLASS, F_OK)) {
		printf("1..0 # SKIP no %s\n", BPQ_SYSFS_CLASS);
		return 4;
	}

	/* create, find, open */
	ret = bpq_create("libbpq-test", &idx);
	ok(ret >= 0 && (unsigned int)ret == idx, "bpq_create returns the index");
	ok(bpq_create("libbpq-test", NULL) == -EEXIST, "bpq_create: -EEXIST");
	ok(bpq_create("bad/name", NULL) == -EINVAL, "bpq_create: bad name -EINVAL");
	ok(bpq_create("a-name-that-is-far-too-long-for-bpq", NULL) == -EINVAL,
	   "bpq_create: long name -EINVAL");
	snprintf(name, sizeof(name), "bpq%u", idx);
	ok(bpq_lookup("libbpq-test") == (int)idx, "bpq_lookup by name");
	ok(bpq_lookup(name) == (int)idx, "bpq_lookup bpqN");
	snprintf(path, sizeof(path), "/dev/bpq%u", idx);
	ok(bpq_lookup(path) == (int)idx, "bpq_lookup path");
	ok(bpq_lookup("no-such-queue") == -ENOENT, "bpq_lookup: -ENOENT");
	ok(bpq_lookup("/dev/null") == -ENODEV, "bpq_lookup: /dev/null -ENODEV");
	ok(bpq_queue_name(idx, name, sizeof(name)) == 11 &&
	   !strcmp(name, "libbpq-test"), "bpq_queue_name");
	n = bpq_list(list, 64);
	for (i = 1, sorted = 1; i < n && i < 64; i++)
		sorted &= list[i - 1] < list[i];
	ok(n >= 5 && sorted, "bpq_list: %d queues, sorted", n);
	ok(bpq_list(NULL, 0) == n, "bpq_list counts");

	fd = bpq_open("libbpq-test", O_RDWR);
	ok(fd >= 0, "bpq_open by name");
	if (fd < 0)
		goto out;
	ok(bpq_index_of(fd) == (int)idx, "bpq_index_of");
	fd2 = bpq_open("0", O_RDONLY);
	ok(fd2 >= 0 && bpq_index_of(fd2) == 0, "bpq_open \"0\"");
	close(fd2);
	ok(bpq_open("no-such-queue", O_RDWR) == -ENOENT, "bpq_open: -ENOENT");
	ok(bpq_index_of(0) < 0 || 1, "bpq_index_of on stdin does not crash");

	/* config */
	ok(configure(fd, BPQ_STRATEGY_BLOCK, 4) == 0, "bpq_set_config");
	ok(bpq_get_config(fd, &cfg) == 0 && cfg.capacity_msgs == 4 &&
	   cfg.strategy == BPQ_STRATEGY_BLOCK, "bpq_get_config reads it back");
	cfg.capacity_msgs = 0;
	ok(bpq_set_config(fd, &cfg) == -EINVAL, "bpq_set_config: -EINVAL");

	/* send and receive */
	ok(bpq_reset_stats(fd) == 0, "bpq_reset_stats");
	ok(bpq_send(fd, "one", 3, -1) == 3, "bpq_send with write()");
	ok(bpq_send(fd, "two", 3, 100) == 3, "bpq_send with a timeout");
	ok(bpq_send(fd, "", 0, 100) == 0, "bpq_send: empty message is 0");
	ret = bpq_recv(fd, buf, sizeof(buf), &info, -1);
	ok(ret == 3 && !memcmp(buf, "one", 3) && info.len == 3 && info.seq >= 1 &&
	   info.lost == 0 && info.timestamp_ns, "bpq_recv with info");
	ret = bpq_recv(fd, buf, 2, &info, 0);
	ok(ret == -EMSGSIZE, "bpq_recv: small buffer -EMSGSIZE");
	ret = bpq_recv(fd, buf, sizeof(buf), NULL, 0);
	ok(ret == 3 && !memcmp(buf, "two", 3), "bpq_recv: message stayed");
	ok(bpq_recv(fd, buf, sizeof(buf), &info, 0) == -EAGAIN,
	   "bpq_recv: empty, timeout 0 -EAGAIN");
	t = now_ms();
	ret = bpq_recv(fd, buf, sizeof(buf), &info, 50);
	t = now_ms() - t;
	ok(ret == -ETIMEDOUT && t >= 45, "bpq_recv: -ETIMEDOUT after %.0f ms", t);

	/* a full block queue */
	for (i = 0; i < 4; i++)
		bpq_send(fd, "x", 1, 0);
	ok(bpq_send(fd, "y", 1, 0) == -EAGAIN, "bpq_send: full, timeout 0 -EAGAIN");
	t = now_ms();
	ret = bpq_send(fd, "y", 1, 50);
	t = now_ms() - t;
	ok(ret == -ETIMEDOUT && t >= 45, "bpq_send: -ETIMEDOUT after %.0f ms", t);
	ok(bpq_flush(fd) == 4, "bpq_flush returns the count");

	/* batches */
	iov[0].iov_base = "alpha";
	iov[0].iov_len = 5;
	iov[1].iov_base = "be";
	iov[1].iov_len = 2;
	iov[2].iov_base = "gamma!";
	iov[2].iov_len = 6;
	ok(bpq_send_batch(fd, iov, 3, -1) == 3, "bpq_send_batch");
	ret = bpq_recv_batch(fd, buf, sizeof(buf), infos, 8, 0);
	ok(ret == 3 && infos[0].len == 5 && infos[1].len == 2 &&
	   infos[2].len == 6 && !memcmp(buf + infos[1].offset, "be", 2) &&
	   !memcmp(buf + infos[2].offset, "gamma!", 6) &&
	   infos[1].seq == infos[0].seq + 1, "bpq_recv_batch");
	ok(bpq_recv_batch(fd, buf, sizeof(buf), infos, 8, 0) == -EAGAIN,
	   "bpq_recv_batch: empty -EAGAIN");

	/* drop-oldest: the reader sees the loss */
	ok(configure(fd, BPQ_STRATEGY_DROP_OLDEST, 2) == 0, "drop-oldest");
	for (i = 0; i < 5; i++)
		bpq_send(fd, "z", 1, 0);
	ret = bpq_recv(fd, buf, sizeof(buf), &info, 0);
	ok(ret == 1 && info.lost == 3, "bpq_recv: lost %llu",
	   (unsigned long long)info.lost);
	ok(bpq_get_stats(fd, &st) == 0 && st.dropped_oldest == 3 &&
	   st.enqueued_msgs == st.dequeued_msgs + st.dropped_oldest +
	   st.flushed + st.depth_msgs, "bpq_get_stats: invariant");

	/* drop-newest */
	ok(configure(fd, BPQ_STRATEGY_DROP_NEWEST, 1) == 0, "drop-newest");
	bpq_flush(fd);
	bpq_send(fd, "a", 1, -1);
	ok(bpq_send(fd, "b", 1, -1) == -ENOBUFS, "bpq_send: -ENOBUFS");

	/* credit */
	bpq_flush(fd);
	ok(configure(fd, BPQ_STRATEGY_CREDIT, 16) == 0, "credit");
	ok(bpq_send(fd, "c", 1, 0) == -EAGAIN, "bpq_send: no credit -EAGAIN");
	ok(bpq_grant(fd, 2) == 0, "bpq_grant");
	ok(bpq_send(fd, "c", 1, 0) == 1 && bpq_send(fd, "c", 1, 0) == 1,
	   "two sends on two credits");
	ok(bpq_send(fd, "c", 1, 0) == -EAGAIN, "third send: -EAGAIN");
	ok(bpq_grant(fd, 0) == -EINVAL, "bpq_grant 0: -EINVAL");

	/* destroy */
	ok(bpq_destroy(idx) == 0, "bpq_destroy");
	ok(bpq_send(fd, "d", 1, 0) == -ENODEV, "send after destroy: -ENODEV");
	ok(bpq_get_stats(fd, &st) == -ENODEV, "stats after destroy: -ENODEV");
	ok(bpq_destroy(idx) == -ENOENT, "bpq_destroy again: -ENOENT");
	close(fd);
	test_ring();
	/* a write to an ended stream raises SIGPIPE, as on a pipe */
	signal(SIGPIPE, SIG_IGN);
	test_stream();
	test_hangup();
	test_ring_end();
	test_ack();
	test_stage();
out:
	bpq_destroy(idx);
	ok(bpq_strategy_parse(bpq_strategy_name(BPQ_STRATEGY_ADAPTIVE)) ==
	   BPQ_STRATEGY_ADAPTIVE, "strategy names");
	ok(bpq_hangup_parse(bpq_hangup_name(BPQ_HANGUP_BOTH)) ==
	   BPQ_HANGUP_BOTH && !strcmp(bpq_stream_name(BPQ_STREAM_FAILED),
				      "failed"), "hangup and stream names");
	ok(bpq_ack_mode_parse(bpq_ack_mode_name(BPQ_ACK_MODE_DELIVERY)) ==
	   BPQ_ACK_MODE_DELIVERY &&
	   !strcmp(bpq_strategy_name(BPQ_STRATEGY_WINDOW), "window"),
	   "ack mode and window names");
	printf("1..%d\n", nr_tests);
	return nr_failed ? 1 : 0;
}
