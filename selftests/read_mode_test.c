// SPDX-License-Identifier: GPL-2.0
/*
 * read_mode stream: a read() shorter than the next message takes its
 * front and leaves the rest for the next receive, as a pipe does; and
 * splice()/sendfile() out of a queue, one message a call.
 *
 *  - the setting: sysfs and SET_CONFIG, bad values refused;
 *  - short reads, at many sizes, across the log's page boundaries: every
 *    byte once, in order, FIONREAD the rest, depth and delivery counted
 *    at the last byte, stats/partial_reads each short read;
 *  - the rest of a message read in part: to BPQ_IOC_RECV (whole, as
 *    ever), to a read in message mode, into a receive ring; evicted by
 *    drop-oldest or flushed, it is forgotten; a faulting read keeps the
 *    place; the end of a stream waits for the rest;
 *  - reads take turns: one waiting for its turn is interrupted by a
 *    signal (EINTR), a non-blocking one gets EAGAIN; four readers share
 *    the bytes of 200 messages, each exactly once;
 *  - raced: a writer on drop-oldest, two readers taking fronts, rests
 *    and rings, a thread flushing and switching read_mode: every rest
 *    that names its message is that message's tail; the counters balance;
 *  - splice() and sendfile() out: one message a call into a pipe,
 *    EMSGSIZE for one larger than the call (in message mode), 0 at the
 *    end of the stream; sendfile() into a file: EINVAL, as from a socket.
 *
 * Each test gets a queue of its own from /dev/bpq-control.
 */
#define _GNU_SOURCE
#include <sys/sendfile.h>
#include <sys/uio.h>

#include "bpq_test.h"
/* kselftest_harness.h of 6.1 has an unused parameter: keep -Wextra clean. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"
#include "kselftest_harness.h"
#pragma GCC diagnostic pop
/* the harness compares its operands as given: 0 against a __u64 is fine */
#pragma GCC diagnostic ignored "-Wsign-compare"

#define MAX_MSG		16384

FIXTURE(rm) {
	int cfd;
	int q;
	int fd;
};

static int set_read_mode(int fd, __u32 mode)
{
	struct bpq_config cfg;
	int ret = bpq_get_config(fd, &cfg);

	if (ret)
		return ret;
	cfg.read_mode = mode;
	return bpq_set_config(fd, &cfg);
}

FIXTURE_SETUP(rm)
{
	struct bpq_config cfg;

	self->fd = -1;
	self->q = bpq_test_queue("rm", &self->cfd);
	ASSERT_LE(0, self->q) TH_LOG("queue: %s", strerror(-self->q));
	self->fd = bpq_open(self->q, O_RDWR);
	ASSERT_LE(0, self->fd) TH_LOG("%m - open /dev/bpq%d", self->q);
	ASSERT_EQ(0, bpq_get_config(self->fd, &cfg));
	cfg.max_msg_size = MAX_MSG;
	cfg.read_mode = BPQ_READ_STREAM;
	ASSERT_EQ(0, bpq_set_config(self->fd, &cfg));
}

FIXTURE_TEARDOWN(rm)
{
	EXPECT_EQ(0, bpq_test_queue_end(self->cfd, self->q, self->fd));
}

/* Message @n of @len pattern bytes, of any length: 0 or -errno */
static int put(int fd, unsigned int n, size_t len)
{
	static unsigned char buf[MAX_MSG];
	ssize_t ret;

	fill_pattern(buf, len, n);
	ret = bpq_write(fd, buf, len);
	return ret == (ssize_t)len ? 0 : ret < 0 ? (int)ret : -EIO;
}

/* Is @buf bytes @from ... @from + @len - 1 of message @n's pattern? */
static bool pattern_at(const unsigned char *buf, size_t from, size_t len,
		       unsigned int n)
{
	static unsigned char want[MAX_MSG];

	fill_pattern(want, from + len, n);
	return !memcmp(buf, want + from, len);
}

static int fionread(int fd)
{
	int n = -1;

	return ioctl(fd, FIONREAD, &n) ? -errno : n;
}

static struct bpq_stats stats(struct __test_metadata *_metadata, int fd)
{
	struct bpq_stats st;

	EXPECT_EQ(0, bpq_get_stats(fd, &st));
	return st;
}

TEST_F(rm, setting)
{
	struct bpq_config cfg, now;
	char buf[64];

	ASSERT_EQ(0, bpq_sysfs_read(self->q, "read_mode", buf, sizeof(buf)));
	EXPECT_STREQ("stream", buf);
	ASSERT_EQ(0, bpq_sysfs_write(self->q, "read_mode", "message"));
	ASSERT_EQ(0, bpq_get_config(self->fd, &cfg));
	EXPECT_EQ(BPQ_READ_MESSAGE, cfg.read_mode);
	ASSERT_EQ(0, bpq_sysfs_write(self->q, "read_mode", "stream"));
	ASSERT_EQ(0, bpq_get_config(self->fd, &cfg));
	EXPECT_EQ(BPQ_READ_STREAM, cfg.read_mode);
	EXPECT_EQ(-EINVAL, bpq_sysfs_write(self->q, "read_mode", "bytes"));
	EXPECT_EQ(-EINVAL, bpq_sysfs_write(self->q, "read_mode", "1"));
	cfg.read_mode = BPQ_READ_STREAM + 1;
	EXPECT_EQ(-EINVAL, bpq_set_config(self->fd, &cfg));
	cfg.read_mode = 0xffffffffU;
	EXPECT_EQ(-EINVAL, bpq_set_config(self->fd, &cfg));
	ASSERT_EQ(0, bpq_get_config(self->fd, &now));
	EXPECT_EQ(BPQ_READ_STREAM, now.read_mode);
	EXPECT_EQ(MAX_MSG, now.max_msg_size);
	ASSERT_EQ(0, bpq_sysfs_read(self->q, "read_mode", buf, sizeof(buf)));
	EXPECT_STREQ("stream", buf);
}

/* In message mode (the default) a short read fails and takes nothing. */
TEST_F(rm, message_mode_refuses_a_short_read)
{
	unsigned char buf[128];

	ASSERT_EQ(0, set_read_mode(self->fd, BPQ_READ_MESSAGE));
	ASSERT_EQ(0, put(self->fd, 1, 100));
	EXPECT_EQ(-EMSGSIZE, bpq_read(self->fd, buf, 99));
	EXPECT_EQ(100, fionread(self->fd));
	EXPECT_EQ(0, stats(_metadata, self->fd).partial_reads);
	ASSERT_EQ(100, bpq_read(self->fd, buf, 100));
	EXPECT_TRUE(pattern_at(buf, 0, 100, 1));
}

/*
 * Messages of many sizes, read in chunks of many sizes: each byte once,
 * in order; a read never spans two messages; FIONREAD says the rest;
 * the message stays queued, and undelivered, until its last byte.
 */
TEST_F_TIMEOUT(rm, short_reads_take_the_front, 300)
{
	static const size_t lens[] = { 1, 7, 100, 4000, 4096, 5000, 9000,
				       MAX_MSG };
	static const size_t chunks[] = { 1, 3, 64, 4095, 5000 };
	static unsigned char buf[MAX_MSG];
	unsigned int c, i, n = 0;
	struct bpq_stats st;
	__u64 partial = 0;
	size_t off, want;
	ssize_t got;

	for (c = 0; c < ARRAY_LEN(chunks); c++) {
		for (i = 0; i < ARRAY_LEN(lens); i++)
			ASSERT_EQ(0, put(self->fd, n + i, lens[i]));
		for (i = 0; i < ARRAY_LEN(lens); i++) {
			for (off = 0; off < lens[i]; off += got) {
				want = lens[i] - off;
				/* and now and then, what is left (debug: slow) */
				if (!(off / chunks[c] % 61)) {
					EXPECT_EQ((int)want, fionread(self->fd));
					EXPECT_EQ(ARRAY_LEN(lens) - i,
						  bpq_depth(self->fd));
				}
				if (want > chunks[c]) {
					want = chunks[c];
					partial++;
				}
				got = bpq_read(self->fd, buf, chunks[c]);
				ASSERT_EQ((ssize_t)want, got)
					TH_LOG("message %u of %zu, at %zu, chunk %zu",
					       i, lens[i], off, chunks[c]);
				ASSERT_TRUE(pattern_at(buf, off, got, n + i))
					TH_LOG("message %u of %zu, at %zu, chunk %zu",
					       i, lens[i], off, chunks[c]);
			}
		}
		n += ARRAY_LEN(lens);
		EXPECT_EQ(0, bpq_depth(self->fd));
		EXPECT_EQ(0, fionread(self->fd));
	}
	st = stats(_metadata, self->fd);
	EXPECT_EQ(partial, st.partial_reads);
	EXPECT_EQ(st.partial_reads,
		  bpq_sysfs_u64(self->q, "stats/partial_reads"));
	EXPECT_EQ(n, st.dequeued_msgs);
	EXPECT_EQ(st.enqueued_bytes, st.dequeued_bytes);
	EXPECT_TRUE(bpq_stats_balanced(&st));
}

/* readv() takes the front across its buffers, as read() does. */
TEST_F(rm, readv_takes_the_front)
{
	unsigned char a[10], b[20], all[30];
	struct iovec iov[2] = { { a, sizeof(a) }, { b, sizeof(b) } };

	ASSERT_EQ(0, put(self->fd, 5, 100));
	ASSERT_EQ(30, readv(self->fd, iov, 2));
	memcpy(all, a, 10);
	memcpy(all + 10, b, 20);
	EXPECT_TRUE(pattern_at(all, 0, 30, 5));
	ASSERT_EQ(30, readv(self->fd, iov, 2));
	memcpy(all, a, 10);
	memcpy(all + 10, b, 20);
	EXPECT_TRUE(pattern_at(all, 30, 30, 5));
	EXPECT_EQ(40, fionread(self->fd));
}

/* BPQ_IOC_RECV keeps to whole messages: of one read in part, the rest. */
TEST_F(rm, recv_takes_the_rest)
{
	unsigned char buf[200];
	struct bpq_recv r = {
		.size = sizeof(r), .buf = (uintptr_t)buf, .buf_len = 50,
	};

	ASSERT_EQ(0, put(self->fd, 3, 100));
	ASSERT_EQ(10, bpq_read(self->fd, buf, 10));
	EXPECT_EQ(-1, ioctl(self->fd, BPQ_IOC_RECV, &r));
	EXPECT_EQ(EMSGSIZE, errno);
	r.buf_len = sizeof(buf);
	ASSERT_EQ(90, ioctl(self->fd, BPQ_IOC_RECV, &r));
	EXPECT_EQ(90, r.info.len);
	EXPECT_EQ(1, r.info.seq);
	EXPECT_TRUE(pattern_at(buf, 10, 90, 3));
	EXPECT_EQ(0, bpq_depth(self->fd));
	EXPECT_EQ(1, stats(_metadata, self->fd).dequeued_msgs);
	EXPECT_EQ(1, stats(_metadata, self->fd).partial_reads);
}

/* Back in message mode, a read takes the rest whole, or nothing. */
TEST_F(rm, message_mode_takes_the_rest)
{
	unsigned char buf[200];

	ASSERT_EQ(0, put(self->fd, 4, 100));
	ASSERT_EQ(0, put(self->fd, 5, 100));
	ASSERT_EQ(60, bpq_read(self->fd, buf, 60));
	ASSERT_EQ(0, set_read_mode(self->fd, BPQ_READ_MESSAGE));
	EXPECT_EQ(40, fionread(self->fd));
	EXPECT_EQ(-EMSGSIZE, bpq_read(self->fd, buf, 39));
	ASSERT_EQ(40, bpq_read(self->fd, buf, sizeof(buf)));
	EXPECT_TRUE(pattern_at(buf, 60, 40, 4));
	ASSERT_EQ(100, bpq_read(self->fd, buf, sizeof(buf)));
	EXPECT_TRUE(pattern_at(buf, 0, 100, 5));
}

/* drop-oldest evicts the message read in part: the next starts whole. */
TEST_F(rm, evicted_part_is_forgotten)
{
	unsigned char buf[200];
	struct bpq_config cfg;
	struct bpq_stats st;

	ASSERT_EQ(0, bpq_get_config(self->fd, &cfg));
	cfg.strategy = BPQ_STRATEGY_DROP_OLDEST;
	cfg.capacity_msgs = 2;
	ASSERT_EQ(0, bpq_set_config(self->fd, &cfg));
	ASSERT_EQ(0, put(self->fd, 1, 100));
	ASSERT_EQ(0, put(self->fd, 2, 100));
	ASSERT_EQ(30, bpq_read(self->fd, buf, 30));
	ASSERT_EQ(0, put(self->fd, 3, 100));
	EXPECT_EQ(100, fionread(self->fd));
	ASSERT_EQ(100, bpq_read(self->fd, buf, sizeof(buf)));
	EXPECT_TRUE(pattern_at(buf, 0, 100, 2));
	ASSERT_EQ(50, bpq_read(self->fd, buf, 50));
	EXPECT_TRUE(pattern_at(buf, 0, 50, 3));
	st = stats(_metadata, self->fd);
	EXPECT_EQ(1, st.dropped_oldest);
	EXPECT_EQ(2, st.partial_reads);
	EXPECT_TRUE(bpq_stats_balanced(&st));
}

/* A flush forgets the message read in part too. */
TEST_F(rm, flushed_part_is_forgotten)
{
	unsigned char buf[200];

	ASSERT_EQ(0, put(self->fd, 1, 100));
	ASSERT_EQ(30, bpq_read(self->fd, buf, 30));
	ASSERT_EQ(1, bpq_flush(self->fd));
	EXPECT_EQ(0, fionread(self->fd));
	ASSERT_EQ(0, put(self->fd, 2, 100));
	EXPECT_EQ(100, fionread(self->fd));
	ASSERT_EQ(100, bpq_read(self->fd, buf, sizeof(buf)));
	EXPECT_TRUE(pattern_at(buf, 0, 100, 2));
}

/* A receive ring set up after a read in part gets the rest first. */
TEST_F(rm, ring_gets_the_rest)
{
	struct bpq_ring_setup s = { .size = sizeof(s), .ring_bytes = 65536 };
	const struct bpq_ring_ctl *ctl;
	const struct bpq_ring_rec *rec;
	unsigned char buf[64];
	void *map;
	int rfd;

	ASSERT_EQ(0, put(self->fd, 7, 1000));
	ASSERT_EQ(0, put(self->fd, 8, 10));
	ASSERT_EQ(64, bpq_read(self->fd, buf, sizeof(buf)));
	rfd = bpq_open(self->q, O_RDWR);
	ASSERT_LE(0, rfd);
	ASSERT_EQ(0, bpq_ioctl(rfd, BPQ_IOC_RING_SETUP, &s));
	map = mmap(NULL, s.mmap_bytes, PROT_READ, MAP_SHARED, rfd, 0);
	ASSERT_NE(MAP_FAILED, map);
	ctl = map;
	rec = (const void *)((const char *)map + getpagesize());
	ASSERT_EQ(BPQ_RING_RECORD(936) + BPQ_RING_RECORD(10),
		  __atomic_load_n(&ctl->tail, __ATOMIC_ACQUIRE));
	EXPECT_EQ(936, rec->len);
	EXPECT_EQ(1, rec->seq);
	EXPECT_TRUE(pattern_at((const void *)(rec + 1), 64, 936, 7));
	rec = (const void *)((const char *)rec + BPQ_RING_RECORD(936));
	EXPECT_EQ(10, rec->len);
	EXPECT_TRUE(pattern_at((const void *)(rec + 1), 0, 10, 8));
	EXPECT_EQ(2, stats(_metadata, self->fd).dequeued_msgs);
	munmap(map, s.mmap_bytes);
	close(rfd);
}

/* A read that faults takes nothing: the next goes on from the same place. */
TEST_F(rm, fault_keeps_the_place)
{
	unsigned char buf[100];
	void *bad;

	bad = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, bad);
	ASSERT_EQ(0, put(self->fd, 9, 100));
	ASSERT_EQ(20, bpq_read(self->fd, buf, 20));
	EXPECT_EQ(-EFAULT, bpq_read(self->fd, bad, 30));
	EXPECT_EQ(80, fionread(self->fd));
	ASSERT_EQ(30, bpq_read(self->fd, buf, 30));
	EXPECT_TRUE(pattern_at(buf, 20, 30, 9));
	EXPECT_EQ(2, stats(_metadata, self->fd).partial_reads);
	munmap(bad, 4096);
}

/* The end of a stream waits for the rest of a message read in part. */
TEST_F(rm, end_after_the_rest)
{
	unsigned char buf[100];

	ASSERT_EQ(0, put(self->fd, 2, 50));
	ASSERT_EQ(20, bpq_read(self->fd, buf, 20));
	ASSERT_EQ(0, bpq_shutdown(self->fd, BPQ_SHUTDOWN_COMPLETE, 0));
	ASSERT_EQ(20, bpq_read(self->fd, buf, 20));
	EXPECT_TRUE(pattern_at(buf, 20, 20, 2));
	ASSERT_EQ(10, bpq_read(self->fd, buf, 20));
	EXPECT_TRUE(pattern_at(buf, 40, 10, 2));
	EXPECT_EQ(0, bpq_read(self->fd, buf, 20));
}

/* As a shell's "read line" reads: a byte at a time, up to the newline. */
static int read_line(int fd, char *line, size_t len)
{
	size_t n = 0;
	ssize_t ret;
	char c;

	while (n + 1 < len) {
		ret = read(fd, &c, 1);
		if (ret <= 0)
			return ret ? -errno : -ENODATA;
		if (c == '\n')
			break;
		line[n++] = c;
	}
	line[n] = '\0';
	return 0;
}

TEST_F(rm, line_by_line)
{
	char line[64];

	ASSERT_EQ(12, bpq_write(self->fd, "hello\nworld\n", 12));
	ASSERT_EQ(4, bpq_write(self->fd, "bpq\n", 4));
	ASSERT_EQ(0, read_line(self->fd, line, sizeof(line)));
	EXPECT_STREQ("hello", line);
	ASSERT_EQ(0, read_line(self->fd, line, sizeof(line)));
	EXPECT_STREQ("world", line);
	ASSERT_EQ(0, read_line(self->fd, line, sizeof(line)));
	EXPECT_STREQ("bpq", line);
	EXPECT_EQ(14, stats(_metadata, self->fd).partial_reads);
	EXPECT_EQ(0, bpq_depth(self->fd));
}

static void on_usr1(int sig)
{
	(void)sig;
}

/*
 * Reads take turns: while one waits for a message, a second waits for
 * its turn, interruptibly (a signal without SA_RESTART: EINTR); a
 * non-blocking one does not wait (EAGAIN). The first gets the message.
 */
TEST_F(rm, reads_take_turns)
{
	struct sigaction sa = { .sa_handler = on_usr1 };
	struct io_thread first, second;
	unsigned char buf[8];
	int nfd;

	ASSERT_EQ(0, sigaction(SIGUSR1, &sa, NULL));
	nfd = bpq_open(self->q, O_RDONLY | O_NONBLOCK);
	ASSERT_LE(0, nfd);
	ASSERT_EQ(0, io_thread_start(&first, self->fd, IO_READ, NULL, 4));
	ASSERT_TRUE(io_thread_blocked(&first, 5000));
	ASSERT_EQ(0, io_thread_start(&second, self->fd, IO_READ, NULL, 4));
	ASSERT_TRUE(io_thread_blocked(&second, 5000));
	EXPECT_EQ(-EAGAIN, bpq_read(nfd, buf, sizeof(buf)));
	ASSERT_EQ(0, pthread_kill(second.thr, SIGUSR1));
	ASSERT_TRUE(io_thread_wait(&second, 5000));
	EXPECT_EQ(-EINTR, second.ret);
	EXPECT_FALSE(io_thread_done(&first));
	ASSERT_EQ(0, put(self->fd, 6, 10));
	ASSERT_TRUE(io_thread_wait(&first, 5000));
	EXPECT_EQ(4, first.ret);
	EXPECT_TRUE(pattern_at(first.buf, 0, 4, 6));
	EXPECT_EQ(6, fionread(nfd));
	close(nfd);
	signal(SIGUSR1, SIG_DFL);
}

#define SHARE_MSGS	200
#define SHARE_LEN	100
#define SHARE_CHUNK	5
#define SHARE_READERS	4

struct sharer {
	pthread_t thr;
	int fd;
	size_t bytes;
	unsigned int reads;
	int err;
};

static void *share_fn(void *arg)
{
	struct sharer *s = arg;
	unsigned char buf[SHARE_CHUNK];
	ssize_t ret;

	while ((ret = read(s->fd, buf, sizeof(buf))) > 0) {
		s->bytes += ret;
		s->reads++;
	}
	s->err = ret ? errno : 0;
	return NULL;
}

/* Four readers share the bytes of 200 messages: each byte exactly once. */
TEST_F(rm, readers_share_the_bytes)
{
	struct sharer s[SHARE_READERS] = { };
	size_t bytes = 0;
	unsigned int i, reads = 0;
	struct bpq_stats st;

	for (i = 0; i < SHARE_READERS; i++) {
		s[i].fd = self->fd;
		ASSERT_EQ(0, pthread_create(&s[i].thr, NULL, share_fn, &s[i]));
	}
	for (i = 0; i < SHARE_MSGS; i++)
		ASSERT_EQ(0, put(self->fd, i, SHARE_LEN));
	ASSERT_EQ(0, bpq_shutdown(self->fd, BPQ_SHUTDOWN_COMPLETE, 0));
	for (i = 0; i < SHARE_READERS; i++) {
		pthread_join(s[i].thr, NULL);
		EXPECT_EQ(0, s[i].err);
		bytes += s[i].bytes;
		reads += s[i].reads;
	}
	EXPECT_EQ(SHARE_MSGS * SHARE_LEN, bytes);
	EXPECT_EQ(SHARE_MSGS * SHARE_LEN / SHARE_CHUNK, reads);
	st = stats(_metadata, self->fd);
	EXPECT_EQ(SHARE_MSGS * (SHARE_LEN / SHARE_CHUNK - 1), st.partial_reads);
	EXPECT_EQ(SHARE_MSGS, st.dequeued_msgs);
	EXPECT_TRUE(bpq_stats_balanced(&st));
}

/* splice() out: one message a call; one larger than the call, EMSGSIZE. */
TEST_F(rm, splice_out)
{
	static unsigned char buf[MAX_MSG];
	int p[2];

	ASSERT_EQ(0, set_read_mode(self->fd, BPQ_READ_MESSAGE));
	ASSERT_EQ(0, pipe(p));
	ASSERT_EQ(0, put(self->fd, 1, 1000));
	ASSERT_EQ(0, put(self->fd, 2, 9000));
	ASSERT_EQ(1000, splice(self->fd, NULL, p[1], NULL, 65536, 0));
	ASSERT_EQ(9000, splice(self->fd, NULL, p[1], NULL, 65536, 0));
	ASSERT_EQ(1000, read(p[0], buf, 1000));
	EXPECT_TRUE(pattern_at(buf, 0, 1000, 1));
	ASSERT_EQ(9000, read(p[0], buf, 9000));
	EXPECT_TRUE(pattern_at(buf, 0, 9000, 2));

	ASSERT_EQ(0, put(self->fd, 3, 5000));
	EXPECT_EQ(-1, splice(self->fd, NULL, p[1], NULL, 4096, 0));
	EXPECT_EQ(EMSGSIZE, errno);
	EXPECT_EQ(1, bpq_depth(self->fd));
	/* in stream mode, the front, then the rest */
	ASSERT_EQ(0, set_read_mode(self->fd, BPQ_READ_STREAM));
	ASSERT_EQ(4096, splice(self->fd, NULL, p[1], NULL, 4096, 0));
	ASSERT_EQ(904, splice(self->fd, NULL, p[1], NULL, 4096, 0));
	ASSERT_EQ(5000, read(p[0], buf, 5000));
	EXPECT_TRUE(pattern_at(buf, 0, 5000, 3));
	EXPECT_EQ(0, bpq_depth(self->fd));
	close(p[0]);
	close(p[1]);
}

/*
 * sendfile() out into a pipe: one message a call, then 0 at the end of
 * the stream. Into a file the kernel wants a source it can seek (as from
 * a socket): EINVAL.
 */
TEST_F(rm, sendfile_out)
{
	static unsigned char buf[3000];
	char path[] = "/tmp/bpq-sendfile-out-XXXXXX";
	unsigned int i;
	int p[2], tmp;

	ASSERT_EQ(0, set_read_mode(self->fd, BPQ_READ_MESSAGE));
	ASSERT_EQ(0, pipe(p));
	for (i = 0; i < 3; i++)
		ASSERT_EQ(0, put(self->fd, 10 + i, 3000));
	ASSERT_EQ(0, bpq_shutdown(self->fd, BPQ_SHUTDOWN_COMPLETE, 0));
	tmp = mkstemp(path);
	ASSERT_LE(0, tmp);
	unlink(path);
	EXPECT_EQ(-1, sendfile(tmp, self->fd, NULL, 1 << 20));
	EXPECT_EQ(EINVAL, errno);
	close(tmp);
	EXPECT_EQ(3, bpq_depth(self->fd));
	for (i = 0; i < 3; i++) {
		ASSERT_EQ(3000, sendfile(p[1], self->fd, NULL, 1 << 16))
			TH_LOG("%m");
		ASSERT_EQ(3000, read(p[0], buf, sizeof(buf)));
		EXPECT_TRUE(pattern_at(buf, 0, 3000, 10 + i));
	}
	EXPECT_EQ(0, sendfile(p[1], self->fd, NULL, 1 << 16));
	EXPECT_EQ(3, stats(_metadata, self->fd).dequeued_msgs);
	close(p[0]);
	close(p[1]);
}

/* ---- stream reads raced ---- */

/*
 * One writer on drop-oldest; two readers taking fronts (read, readv),
 * rests (RECV) and rings; a third thread flushing, switching read_mode
 * and capacity. Every rest that names its message (RECV's info, a ring
 * record) is the tail of that message, byte for byte; at the end the
 * counters balance, exactly as the writer counted.
 */
#define RACE_LEN(k)	(1 + ((k) * 2654435761U >> 20) % 6000)

struct race {
	int q;
	int fd;			/* the writer's */
	int stop;		/* atomic */
	unsigned long written, reads, rests, rings, flushes, switches;
	char err[256];		/* the first wrong rest, if any */
};

static void race_fail(struct race *r, const char *what, __u64 seq, size_t n)
{
	if (!__atomic_load_n(&r->err[0], __ATOMIC_RELAXED))
		snprintf(r->err, sizeof(r->err), "%s: %zu bytes of seq %llu",
			 what, n, (unsigned long long)seq);
}

/* Is @buf the last @n bytes of the message of sequence number @seq? */
static bool race_rest_ok(const unsigned char *buf, size_t n, __u64 seq)
{
	unsigned int k = seq - 1;
	size_t len = RACE_LEN(k);
	unsigned char *want;
	bool ok;

	if (!seq || n > len)
		return false;
	want = malloc(len);
	if (!want)
		return false;
	fill_pattern(want, len, k);
	ok = !memcmp(buf, want + len - n, n);
	free(want);
	return ok;
}

static void *race_writer(void *arg)
{
	struct race *r = arg;
	unsigned char *buf = malloc(MAX_MSG);
	unsigned int k = 0;
	ssize_t ret;

	while (buf && !__atomic_load_n(&r->stop, __ATOMIC_RELAXED)) {
		fill_pattern(buf, RACE_LEN(k), k);
		ret = write(r->fd, buf, RACE_LEN(k));
		if (ret == (ssize_t)RACE_LEN(k))
			k++;
		else if (ret >= 0 || errno != EAGAIN)
			race_fail(r, "write", k + 1, ret);
		else
			usleep(100);
	}
	r->written = k;
	free(buf);
	return NULL;
}

static void race_ring(struct race *r)
{
	struct bpq_ring_setup s = { .size = sizeof(s), .ring_bytes = 65536 };
	const struct bpq_ring_rec *rec;
	const struct bpq_ring_ctl *ctl;
	void *map;
	int fd = bpq_open(r->q, O_RDWR);

	if (fd < 0)
		return;
	if (!bpq_ioctl(fd, BPQ_IOC_RING_SETUP, &s)) {
		map = mmap(NULL, s.mmap_bytes, PROT_READ, MAP_SHARED, fd, 0);
		if (map != MAP_FAILED) {
			ctl = map;
			rec = (const void *)((const char *)map + getpagesize());
			if (__atomic_load_n(&ctl->tail, __ATOMIC_ACQUIRE) &&
			    !(rec->flags & BPQ_RING_PAD)) {
				if (!race_rest_ok((const void *)(rec + 1),
						  rec->len, rec->seq))
					race_fail(r, "ring", rec->seq,
						  rec->len);
				__atomic_add_fetch(&r->rings, 1,
						   __ATOMIC_RELAXED);
			}
			munmap(map, s.mmap_bytes);
		}
	}
	close(fd);
}

static void *race_reader(void *arg)
{
	struct race *r = arg;
	unsigned char *buf = malloc(MAX_MSG);
	struct bpq_recv rv = { .size = sizeof(rv), .buf = (uintptr_t)buf };
	unsigned int rnd = (unsigned int)(uintptr_t)&rnd;
	struct iovec iov[2];
	ssize_t ret;
	size_t n;
	int fd = bpq_open(r->q, O_RDWR | O_NONBLOCK);

	while (buf && fd >= 0 && !__atomic_load_n(&r->stop, __ATOMIC_RELAXED)) {
		rnd = rnd * 1103515245 + 12345;
		n = 1 + (rnd >> 8) % 5000;
		switch ((rnd >> 24) % 8) {
		case 0:
			rv.buf_len = n;
			ret = ioctl(fd, BPQ_IOC_RECV, &rv);
			if (ret > 0) {
				if (ret != rv.info.len ||
				    !race_rest_ok(buf, ret, rv.info.seq))
					race_fail(r, "RECV", rv.info.seq, ret);
				__atomic_add_fetch(&r->rests, 1,
						   __ATOMIC_RELAXED);
			}
			break;
		case 1:
			if (!((rnd >> 4) % 64))
				race_ring(r);
			continue;
		case 2:
			iov[0].iov_base = buf;
			iov[0].iov_len = n / 2;
			iov[1].iov_base = buf + n / 2;
			iov[1].iov_len = n - n / 2;
			ret = readv(fd, iov, 2);
			break;
		default:
			ret = read(fd, buf, n);
			break;
		}
		if (ret > 0)
			__atomic_add_fetch(&r->reads, 1, __ATOMIC_RELAXED);
		else if (ret < 0 && errno != EAGAIN && errno != EMSGSIZE &&
			 errno != EBUSY)
			race_fail(r, strerror(errno), 0, 0);
		else if (ret < 0 && errno == EAGAIN)
			usleep(50);
	}
	if (fd >= 0)
		close(fd);
	free(buf);
	return NULL;
}

static void *race_disturber(void *arg)
{
	struct race *r = arg;
	unsigned int rnd = 7;
	char cap[16];

	while (!__atomic_load_n(&r->stop, __ATOMIC_RELAXED)) {
		rnd = rnd * 1103515245 + 12345;
		usleep(500 + (rnd >> 8) % 2000);
		switch ((rnd >> 20) % 4) {
		case 0:
			if (bpq_flush(r->fd) >= 0)
				r->flushes++;
			break;
		case 1:
			if (!bpq_sysfs_write(r->q, "read_mode",
					     (rnd >> 10) % 4 ? "stream" :
							       "message"))
				r->switches++;
			break;
		default:
			snprintf(cap, sizeof(cap), "%u", 2 + (rnd >> 12) % 31);
			bpq_sysfs_write(r->q, "capacity_msgs", cap);
			break;
		}
	}
	return NULL;
}

TEST_F_TIMEOUT(rm, stream_reads_raced, 300)
{
	const char *env = getenv("BPQ_STRESS_SECONDS");
	int ms = env ? atoi(env) * 100 : 3000;	/* a tenth of stress_test */
	struct race r = { .q = self->q, .fd = self->fd };
	pthread_t w, rd[2], d;
	struct bpq_config cfg;
	struct bpq_stats st;
	int i;

	ASSERT_EQ(0, bpq_get_config(self->fd, &cfg));
	cfg.strategy = BPQ_STRATEGY_DROP_OLDEST;
	cfg.capacity_msgs = 16;
	ASSERT_EQ(0, bpq_set_config(self->fd, &cfg));
	ASSERT_EQ(0, fcntl(self->fd, F_SETFL, O_NONBLOCK));
	ASSERT_EQ(0, pthread_create(&w, NULL, race_writer, &r));
	for (i = 0; i < 2; i++)
		ASSERT_EQ(0, pthread_create(&rd[i], NULL, race_reader, &r));
	ASSERT_EQ(0, pthread_create(&d, NULL, race_disturber, &r));
	sleep_ms(ms);
	__atomic_store_n(&r.stop, 1, __ATOMIC_RELAXED);
	pthread_join(w, NULL);
	for (i = 0; i < 2; i++)
		pthread_join(rd[i], NULL);
	pthread_join(d, NULL);
	EXPECT_EQ('\0', r.err[0]) TH_LOG("%s", r.err);
	st = stats(_metadata, self->fd);
	TH_LOG("%lu written, %lu received, %lu rings, %lu flushes, %lu mode switches; %llu reads in part, %llu evicted",
	       r.written, r.reads + r.rests, r.rings, r.flushes, r.switches,
	       (unsigned long long)st.partial_reads,
	       (unsigned long long)st.dropped_oldest);
	EXPECT_EQ(r.written, st.enqueued_msgs);
	EXPECT_TRUE(bpq_stats_balanced(&st));
	EXPECT_LT(0, st.partial_reads);
	EXPECT_LT(0, r.rests);
}

TEST_HARNESS_MAIN
