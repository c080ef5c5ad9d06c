// SPDX-License-Identifier: GPL-2.0
/*
 * libbpq against the real module (run in the test guest, as root): every
 * wrapper once, its return value and its -errno. Creates its own queue
 * "libbpq-test" and destroys it. Prints TAP; exits 1 if a test failed,
 * 4 (kselftest SKIP) without the module.
 */
#include <errno.h>
#include <fcntl.h>
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
out:
	bpq_destroy(idx);
	ok(bpq_strategy_parse(bpq_strategy_name(BPQ_STRATEGY_ADAPTIVE)) ==
	   BPQ_STRATEGY_ADAPTIVE, "strategy names");
	printf("1..%d\n", nr_tests);
	return nr_failed ? 1 : 0;
}
