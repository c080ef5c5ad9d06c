// SPDX-License-Identifier: GPL-2.0
/*
 * libbpq against the real module (run in the test guest, as root): every
 * wrapper once, its return value and its -errno. Creates its own queues
 * "libbpq-test" and "libbpq-ring" and destroys them. Prints TAP; exits 1 if a test failed,
 * 4 (kselftest SKIP) without the module.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
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
out:
	bpq_destroy(idx);
	ok(bpq_strategy_parse(bpq_strategy_name(BPQ_STRATEGY_ADAPTIVE)) ==
	   BPQ_STRATEGY_ADAPTIVE, "strategy names");
	printf("1..%d\n", nr_tests);
	return nr_failed ? 1 : 0;
}
