// SPDX-License-Identifier: GPL-2.0
/*
 * Concurrency: many producers and consumers per strategy, blocked readers
 * and writers and everything that may wake them (data, room, capacity,
 * timeout, signals, destroy), settings changed under load.
 *
 * Uses /dev/bpq2 and queues it creates itself; leaves /dev/bpq2 at its
 * defaults and destroys what it created.
 */
#define _GNU_SOURCE
#include <sys/wait.h>

#include "bpq_test.h"
/* kselftest_harness.h of 6.1 has an unused parameter: keep -Wextra clean. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"
#include "kselftest_harness.h"
#pragma GCC diagnostic pop

#define QIDX 2

#define NPROD 4
#define NCONS 4
#define NMSG 2000
#define STOP_ID 0xffffffffU

/* ---- producers and consumers ---- */

struct tmsg {
	__u32 prod;
	__u32 seq;
	__u32 len;		/* payload bytes used */
	__u32 crc;		/* over everything above and the payload */
	unsigned char payload[48];
};

static __u32 tmsg_crc(const struct tmsg *m)
{
	__u32 crc = bpq_crc32(0, m, offsetof(struct tmsg, crc));

	return bpq_crc32(crc, m->payload, m->len);
}

static size_t tmsg_make(struct tmsg *m, __u32 prod, __u32 seq)
{
	m->prod = prod;
	m->seq = seq;
	m->len = seq % (sizeof(m->payload) + 1);
	fill_pattern(m->payload, m->len, prod * NMSG + seq);
	m->crc = tmsg_crc(m);
	return offsetof(struct tmsg, payload) + m->len;
}

struct mpmc {
	int qidx;
	int nmsg;
	/* results, updated atomically */
	unsigned char seen[NPROD][NMSG];
	long sent[NPROD];
	long refused[NPROD];	/* ENOBUFS */
	long received;
	long duplicates;
	long corrupt;
	long misordered;
	long errors;		/* unexpected errno, see last_error */
	int last_error;
};

struct worker {
	struct mpmc *m;
	int id;
	pthread_t thr;
};

static void note_error(struct mpmc *m, int err)
{
	__atomic_add_fetch(&m->errors, 1, __ATOMIC_RELAXED);
	__atomic_store_n(&m->last_error, err, __ATOMIC_RELAXED);
}

static void *producer(void *arg)
{
	struct worker *w = arg;
	struct mpmc *m = w->m;
	struct tmsg msg;
	ssize_t ret;
	size_t len;
	int fd, seq;

	fd = bpq_open(m->qidx, O_RDWR);
	if (fd < 0) {
		note_error(m, errno);
		return NULL;
	}
	for (seq = 0; seq < m->nmsg; seq++) {
		len = tmsg_make(&msg, w->id, seq);
		ret = bpq_write(fd, &msg, len);
		if (ret == -ENOBUFS)
			m->refused[w->id]++;
		else if (ret != (ssize_t)len)
			note_error(m, (int)-ret);
		m->sent[w->id]++;
	}
	close(fd);
	return NULL;
}

static void *consumer(void *arg)
{
	struct worker *w = arg;
	struct mpmc *m = w->m;
	long last[NPROD];
	struct tmsg msg;
	ssize_t ret;
	int fd, p;

	for (p = 0; p < NPROD; p++)
		last[p] = -1;
	fd = bpq_open(m->qidx, O_RDWR);
	if (fd < 0) {
		note_error(m, errno);
		return NULL;
	}
	for (;;) {
		memset(&msg, 0, sizeof(msg));
		ret = bpq_read(fd, &msg, sizeof(msg));
		if (ret < 0) {
			note_error(m, (int)-ret);
			break;
		}
		if (ret >= (ssize_t)offsetof(struct tmsg, payload) &&
		    msg.prod == STOP_ID)
			break;
		if (ret < (ssize_t)offsetof(struct tmsg, payload) ||
		    msg.prod >= NPROD || msg.seq >= (__u32)m->nmsg ||
		    msg.len > sizeof(msg.payload) ||
		    (size_t)ret != offsetof(struct tmsg, payload) + msg.len ||
		    msg.crc != tmsg_crc(&msg)) {
			__atomic_add_fetch(&m->corrupt, 1, __ATOMIC_RELAXED);
			continue;
		}
		if (__atomic_fetch_add(&m->seen[msg.prod][msg.seq], 1,
				       __ATOMIC_RELAXED))
			__atomic_add_fetch(&m->duplicates, 1, __ATOMIC_RELAXED);
		if ((long)msg.seq <= last[msg.prod])
			__atomic_add_fetch(&m->misordered, 1, __ATOMIC_RELAXED);
		last[msg.prod] = msg.seq;
		__atomic_add_fetch(&m->received, 1, __ATOMIC_RELAXED);
	}
	close(fd);
	return NULL;
}

/* Wait until the queue is empty; false after timeout_ms. */
static bool wait_drained(int fd, int timeout_ms)
{
	int64_t end = now_ns() + (int64_t)timeout_ms * 1000000;

	while (bpq_depth(fd) != 0) {
		if (now_ns() > end)
			return false;
		sleep_ms(2);
	}
	return true;
}

/*
 * Run the producers and consumers; @during runs on the main thread while
 * they work (may be NULL). Stops the consumers with one stop message each
 * once the producers are done and the queue is drained.
 */
static int run_mpmc(int fd, struct mpmc *m, void (*during)(int fd, void *),
		    void *arg)
{
	struct worker prod[NPROD], cons[NCONS];
	struct tmsg stop = { .prod = STOP_ID };
	struct bpq_config cfg;
	int i, ret = 0;

	for (i = 0; i < NCONS; i++) {
		cons[i] = (struct worker){ .m = m, .id = i };
		pthread_create(&cons[i].thr, NULL, consumer, &cons[i]);
	}
	for (i = 0; i < NPROD; i++) {
		prod[i] = (struct worker){ .m = m, .id = i };
		pthread_create(&prod[i].thr, NULL, producer, &prod[i]);
	}
	if (during)
		during(fd, arg);
	for (i = 0; i < NPROD; i++)
		pthread_join(prod[i].thr, NULL);
	if (!wait_drained(fd, 20000))
		ret = -ETIMEDOUT;
	/* Room for the stop messages whatever the settings are now. */
	bpq_get_config(fd, &cfg);
	cfg.capacity_msgs = BPQ_DEF_CAPACITY_MSGS;
	cfg.capacity_bytes = BPQ_DEF_CAPACITY_BYTES;
	cfg.max_msg_size = BPQ_DEF_MAX_MSG_SIZE;
	cfg.strategy = BPQ_STRATEGY_BLOCK;
	bpq_set_config(fd, &cfg);
	for (i = 0; i < NCONS; i++)
		bpq_write(fd, &stop, offsetof(struct tmsg, payload));
	for (i = 0; i < NCONS; i++)
		pthread_join(cons[i].thr, NULL);
	return ret;
}

static long total_sent(struct mpmc *m)
{
	long n = 0;
	int i;

	for (i = 0; i < NPROD; i++)
		n += m->sent[i];
	return n;
}

static long total_refused(struct mpmc *m)
{
	long n = 0;
	int i;

	for (i = 0; i < NPROD; i++)
		n += m->refused[i];
	return n;
}

FIXTURE(mpmc) {
	int fd;
	struct mpmc *m;
};

FIXTURE_VARIANT(mpmc) {
	__u32 strategy;
};

FIXTURE_VARIANT_ADD(mpmc, block) {
	.strategy = BPQ_STRATEGY_BLOCK,
};

FIXTURE_VARIANT_ADD(mpmc, drop_newest) {
	.strategy = BPQ_STRATEGY_DROP_NEWEST,
};

FIXTURE_VARIANT_ADD(mpmc, drop_oldest) {
	.strategy = BPQ_STRATEGY_DROP_OLDEST,
};

FIXTURE_SETUP(mpmc)
{
	self->fd = bpq_open(QIDX, O_RDWR);
	ASSERT_LE(0, self->fd) TH_LOG("%m - open /dev/bpq%d", QIDX);
	ASSERT_EQ(0, bpq_reset(self->fd));
	ASSERT_EQ(0, bpq_configure(self->fd, variant->strategy, 16));
	self->m = calloc(1, sizeof(*self->m));
	ASSERT_TRUE(self->m != NULL);
	self->m->qidx = QIDX;
	self->m->nmsg = NMSG;
}

FIXTURE_TEARDOWN(mpmc)
{
	EXPECT_EQ(0, bpq_reset(self->fd));
	close(self->fd);
	free(self->m);
}

/* Check the results of run_mpmc() against the queue's counters. */
static void check_mpmc(struct __test_metadata *_metadata, int fd,
		       struct mpmc *m, __u32 strategy, bool exact)
{
	long sent = total_sent(m), refused = total_refused(m);
	struct bpq_stats st;

	ASSERT_EQ(0, m->errors) TH_LOG("last error %d", m->last_error);
	ASSERT_EQ(0, m->corrupt);
	ASSERT_EQ(0, m->duplicates);
	ASSERT_EQ(0, m->misordered);
	ASSERT_EQ((long)NPROD * m->nmsg, sent);

	ASSERT_EQ(0, bpq_get_stats(fd, &st));
	ASSERT_TRUE(bpq_stats_balanced(&st));
	ASSERT_EQ(0U, st.depth_msgs);
	/* the stop messages were counted too */
	ASSERT_EQ((__u64)(m->received + NCONS), st.dequeued_msgs);
	ASSERT_EQ((__u64)refused, st.dropped_newest);
	ASSERT_EQ((__u64)sent, m->received + refused + st.dropped_oldest);

	if (!exact)
		return;
	switch (strategy) {
	case BPQ_STRATEGY_BLOCK:
		ASSERT_EQ(sent, m->received);
		ASSERT_EQ(0U, st.dropped_oldest);
		ASSERT_EQ(0, refused);
		break;
	case BPQ_STRATEGY_DROP_NEWEST:
		ASSERT_EQ(0U, st.dropped_oldest);
		break;
	case BPQ_STRATEGY_DROP_OLDEST:
		ASSERT_EQ(0, refused);
		break;
	}
}

TEST_F_TIMEOUT(mpmc, producers_consumers, 120)
{
	int64_t t0 = now_ns();

	ASSERT_EQ(0, run_mpmc(self->fd, self->m, NULL, NULL));
	TH_LOG("%ld sent, %ld received, %ld refused in %lld ms",
	       total_sent(self->m), self->m->received, total_refused(self->m),
	       (long long)(now_ns() - t0) / 1000000);
	check_mpmc(_metadata, self->fd, self->m, variant->strategy, true);
}

/* Flip strategy, capacity and watermarks while the load runs. */
static void change_settings(int fd, void *arg)
{
	static const __u32 strategies[] = {
		BPQ_STRATEGY_BLOCK, BPQ_STRATEGY_DROP_NEWEST,
		BPQ_STRATEGY_DROP_OLDEST,
	};
	struct mpmc *m = arg;
	struct bpq_config cfg;
	unsigned int seed = 7, i = 0;

	while (total_sent(m) < (long)NPROD * m->nmsg) {
		bpq_default_config(&cfg);
		cfg.strategy = strategies[rand_r(&seed) % 3];
		cfg.capacity_msgs = 1 + rand_r(&seed) % 32;
		cfg.high_watermark = 50 + rand_r(&seed) % 51;
		cfg.low_watermark = 1 + rand_r(&seed) % cfg.high_watermark;
		if (bpq_set_config(fd, &cfg))
			note_error(m, errno);
		if (++i % 4 == 0)
			sleep_ms(1);
	}
	/* End on a strategy that lets everyone finish. */
	bpq_configure(fd, BPQ_STRATEGY_DROP_OLDEST, 0);
}

TEST_F_TIMEOUT(mpmc, settings_changed_under_load, 120)
{
	ASSERT_EQ(0, run_mpmc(self->fd, self->m, change_settings, self->m));
	check_mpmc(_metadata, self->fd, self->m, variant->strategy, false);
}

/* Two threads replace the whole config at once: one of the two wins. */
static void *set_config_loop(void *arg)
{
	struct bpq_config cfg = *(struct bpq_config *)arg;
	int fd = bpq_open(QIDX, O_RDWR), i;

	for (i = 0; i < 500 && fd >= 0; i++)
		if (bpq_set_config(fd, &cfg))
			return (void *)1;
	if (fd >= 0)
		close(fd);
	return fd < 0 ? (void *)1 : NULL;
}

TEST_F(mpmc, config_changes_raced)
{
	struct bpq_config a, b, now;
	pthread_t ta, tb;
	void *ra, *rb;

	bpq_default_config(&a);
	bpq_default_config(&b);
	a.strategy = BPQ_STRATEGY_DROP_NEWEST;
	a.capacity_msgs = 11;
	a.high_watermark = 90;
	a.low_watermark = 10;
	b.strategy = BPQ_STRATEGY_DROP_OLDEST;
	b.capacity_msgs = 22;
	b.capacity_bytes = 2222;
	b.max_msg_size = 222;
	ASSERT_EQ(0, pthread_create(&ta, NULL, set_config_loop, &a));
	ASSERT_EQ(0, pthread_create(&tb, NULL, set_config_loop, &b));
	pthread_join(ta, &ra);
	pthread_join(tb, &rb);
	ASSERT_TRUE(ra == NULL);
	ASSERT_TRUE(rb == NULL);
	ASSERT_EQ(0, bpq_get_config(self->fd, &now));
	ASSERT_TRUE(!memcmp(&now, &a, sizeof(a)) || !memcmp(&now, &b, sizeof(b)));
}

/* ---- blocked readers and writers ---- */

static int sig_count;

static void on_signal(int sig)
{
	(void)sig;
	__atomic_add_fetch(&sig_count, 1, __ATOMIC_RELAXED);
}

static int install_handler(bool restart)
{
	struct sigaction sa = { .sa_handler = on_signal };

	sigemptyset(&sa.sa_mask);
	sa.sa_flags = restart ? SA_RESTART : 0;
	return sigaction(SIGUSR1, &sa, NULL);
}

FIXTURE(wake) {
	int fd;
};

FIXTURE_SETUP(wake)
{
	self->fd = bpq_open(QIDX, O_RDWR);
	ASSERT_LE(0, self->fd) TH_LOG("%m - open /dev/bpq%d", QIDX);
	ASSERT_EQ(0, bpq_reset(self->fd));
	sig_count = 0;
}

FIXTURE_TEARDOWN(wake)
{
	EXPECT_EQ(0, bpq_reset(self->fd));
	close(self->fd);
}

/* Fill a block queue of @cap messages. */
static int fill_queue(int fd, __u32 cap)
{
	__u32 i;
	int ret = bpq_configure(fd, BPQ_STRATEGY_BLOCK, cap);

	for (i = 0; !ret && i < cap; i++)
		ret = bpq_write(fd, "f", 1) == 1 ? 0 : -EIO;
	return ret;
}

static int set_capacity(int fd, __u32 cap)
{
	struct bpq_config cfg;
	int ret = bpq_get_config(fd, &cfg);

	if (ret)
		return ret;
	cfg.capacity_msgs = cap;
	return bpq_set_config(fd, &cfg);
}

TEST_F(wake, reader_by_data)
{
	struct io_thread r;

	ASSERT_EQ(0, io_thread_start(&r, self->fd, IO_READ, NULL, 16));
	ASSERT_TRUE(io_thread_blocked(&r, 5000));
	ASSERT_EQ(3, bpq_write(self->fd, "abc", 3));
	ASSERT_TRUE(io_thread_wait(&r, 5000));
	ASSERT_EQ(3, r.ret);
	ASSERT_EQ(0, memcmp(r.buf, "abc", 3));
}

TEST_F(wake, readers_fifo)
{
	struct io_thread r[3];
	int i;

	for (i = 0; i < 3; i++) {
		ASSERT_EQ(0, io_thread_start(&r[i], self->fd, IO_READ, NULL, 16));
		ASSERT_TRUE(io_thread_blocked(&r[i], 5000));
	}
	for (i = 0; i < 3; i++) {
		ASSERT_EQ(1, bpq_write(self->fd, "0123" + i, 1));
		ASSERT_TRUE(io_thread_wait(&r[i], 5000));
		ASSERT_EQ(1, r[i].ret);
		ASSERT_EQ('0' + i, r[i].buf[0]);
		sleep_ms(50);
		ASSERT_EQ(i + 1, count_done(r, 3));
	}
}

TEST_F(wake, reader_signal_eintr)
{
	struct io_thread r;

	ASSERT_EQ(0, install_handler(false));
	ASSERT_EQ(0, io_thread_start(&r, self->fd, IO_READ, NULL, 16));
	ASSERT_TRUE(io_thread_blocked(&r, 5000));
	ASSERT_EQ(0, pthread_kill(r.thr, SIGUSR1));
	ASSERT_TRUE(io_thread_wait(&r, 5000));
	ASSERT_EQ(-EINTR, r.ret);
	ASSERT_EQ(1, sig_count);
	/* The interrupted read takes nothing. */
	ASSERT_EQ(1, bpq_write(self->fd, "x", 1));
	ASSERT_EQ(1U, bpq_depth(self->fd));
	ASSERT_EQ(0U, bpq_sysfs_u64(QIDX, "stats/dequeued_msgs"));
}

TEST_F(wake, reader_signal_restart)
{
	struct io_thread r;

	ASSERT_EQ(0, install_handler(true));
	ASSERT_EQ(0, io_thread_start(&r, self->fd, IO_READ, NULL, 16));
	ASSERT_TRUE(io_thread_blocked(&r, 5000));
	ASSERT_EQ(0, pthread_kill(r.thr, SIGUSR1));
	while (!__atomic_load_n(&sig_count, __ATOMIC_RELAXED))
		sleep_ms(1);
	/* Back asleep in the same read. */
	ASSERT_TRUE(io_thread_blocked(&r, 5000));
	ASSERT_FALSE(io_thread_done(&r));
	ASSERT_EQ(2, bpq_write(self->fd, "hi", 2));
	ASSERT_TRUE(io_thread_wait(&r, 5000));
	ASSERT_EQ(2, r.ret);
	ASSERT_EQ(0, memcmp(r.buf, "hi", 2));
}

/* Closing the fd in another thread does not disturb a blocked read. */
TEST_F(wake, reader_fd_closed_meanwhile)
{
	struct io_thread r;
	int fd2 = bpq_open(QIDX, O_RDWR);

	ASSERT_LE(0, fd2);
	ASSERT_EQ(0, io_thread_start(&r, fd2, IO_READ, NULL, 16));
	ASSERT_TRUE(io_thread_blocked(&r, 5000));
	ASSERT_EQ(0, close(fd2));
	ASSERT_EQ(1, bpq_write(self->fd, "c", 1));
	ASSERT_TRUE(io_thread_wait(&r, 5000));
	ASSERT_EQ(1, r.ret);
}

TEST_F(wake, writer_by_read)
{
	struct io_thread w;
	char c;

	ASSERT_EQ(0, fill_queue(self->fd, 1));
	ASSERT_EQ(0, io_thread_start(&w, self->fd, IO_WRITE, "w", 1));
	ASSERT_TRUE(io_thread_blocked(&w, 5000));
	ASSERT_EQ(1, bpq_read(self->fd, &c, 1));
	ASSERT_TRUE(io_thread_wait(&w, 5000));
	ASSERT_EQ(1, w.ret);
	ASSERT_EQ(1, bpq_read(self->fd, &c, 1));
	ASSERT_EQ('w', c);
}

TEST_F(wake, writer_by_timeout)
{
	struct bpq_config cfg;
	struct io_thread w;

	ASSERT_EQ(0, fill_queue(self->fd, 1));
	ASSERT_EQ(0, bpq_get_config(self->fd, &cfg));
	cfg.write_timeout_ms = 200;
	ASSERT_EQ(0, bpq_set_config(self->fd, &cfg));
	ASSERT_EQ(0, io_thread_start(&w, self->fd, IO_WRITE, "w", 1));
	ASSERT_TRUE(io_thread_wait(&w, 5000));
	ASSERT_EQ(-ETIMEDOUT, w.ret);
	ASSERT_LE(200000000LL, w.t_end - w.t_start);
	ASSERT_EQ(1U, bpq_depth(self->fd));
	ASSERT_EQ(1U, bpq_sysfs_u64(QIDX, "stats/timeouts"));
}

TEST_F(wake, writer_signal_eintr)
{
	struct io_thread w;

	ASSERT_EQ(0, install_handler(false));
	ASSERT_EQ(0, fill_queue(self->fd, 1));
	ASSERT_EQ(0, io_thread_start(&w, self->fd, IO_WRITE, "w", 1));
	ASSERT_TRUE(io_thread_blocked(&w, 5000));
	ASSERT_EQ(0, pthread_kill(w.thr, SIGUSR1));
	ASSERT_TRUE(io_thread_wait(&w, 5000));
	ASSERT_EQ(-EINTR, w.ret);
	/* Nothing queued by the interrupted write, even once there is room. */
	ASSERT_EQ(1U, bpq_sysfs_u64(QIDX, "stats/enqueued_msgs"));
	ASSERT_EQ(1, bpq_flush(self->fd));
	sleep_ms(50);
	ASSERT_EQ(0U, bpq_depth(self->fd));
	ASSERT_EQ(1U, bpq_sysfs_u64(QIDX, "stats/enqueued_msgs"));
}

TEST_F(wake, writer_signal_restart)
{
	struct io_thread w;
	char c;

	ASSERT_EQ(0, install_handler(true));
	ASSERT_EQ(0, fill_queue(self->fd, 1));
	ASSERT_EQ(0, io_thread_start(&w, self->fd, IO_WRITE, "w", 1));
	ASSERT_TRUE(io_thread_blocked(&w, 5000));
	ASSERT_EQ(0, pthread_kill(w.thr, SIGUSR1));
	while (!__atomic_load_n(&sig_count, __ATOMIC_RELAXED))
		sleep_ms(1);
	ASSERT_TRUE(io_thread_blocked(&w, 5000));
	ASSERT_FALSE(io_thread_done(&w));
	ASSERT_EQ(1, bpq_read(self->fd, &c, 1));
	ASSERT_TRUE(io_thread_wait(&w, 5000));
	ASSERT_EQ(1, w.ret);
	/* Queued exactly once. */
	ASSERT_EQ(2U, bpq_sysfs_u64(QIDX, "stats/enqueued_msgs"));
	ASSERT_EQ(1U, bpq_depth(self->fd));
}

/*
 * More waiters settled in one hold of the queue's lock than the module
 * wakes after its unlock (16): the rest are woken under it.
 */
#define MANY_WAITERS	24

static void start_readers(struct __test_metadata *_metadata,
			  struct io_thread *r, int n, int fd)
{
	int i;

	for (i = 0; i < n; i++) {
		ASSERT_EQ(0, io_thread_start(&r[i], fd, IO_READ, NULL, 16));
		ASSERT_TRUE(io_thread_blocked(&r[i], 5000));
	}
}

/* One batch hands a message to each blocked reader, oldest first. */
TEST_F(wake, many_readers_by_one_batch)
{
	struct io_thread r[MANY_WAITERS];
	struct bpq_iovec vec[MANY_WAITERS];
	struct bpq_send_batch sb = {
		.size = sizeof(sb),
		.msgs = (uintptr_t)vec,
		.count = MANY_WAITERS,
	};
	char data[MANY_WAITERS];
	int i;

	start_readers(_metadata, r, MANY_WAITERS, self->fd);
	for (i = 0; i < MANY_WAITERS; i++) {
		data[i] = 'A' + i;
		vec[i] = (struct bpq_iovec){
			.base = (uintptr_t)&data[i],
			.len = 1,
		};
	}
	ASSERT_EQ(MANY_WAITERS, ioctl(self->fd, BPQ_IOC_SEND_BATCH, &sb));
	for (i = 0; i < MANY_WAITERS; i++) {
		ASSERT_TRUE(io_thread_wait(&r[i], 5000));
		ASSERT_EQ(1, r[i].ret);
		EXPECT_EQ('A' + i, r[i].buf[0]);
	}
}

/* Growing the capacity admits exactly as many blocked writers as fit. */
TEST_F(wake, writers_by_capacity_growth)
{
	struct io_thread w[3];
	char c;
	int i;

	ASSERT_EQ(0, fill_queue(self->fd, 2));
	for (i = 0; i < 3; i++) {
		c = 'a' + i;
		ASSERT_EQ(0, io_thread_start(&w[i], self->fd, IO_WRITE, &c, 1));
		ASSERT_TRUE(io_thread_blocked(&w[i], 5000));
	}
	ASSERT_EQ(3U, bpq_sysfs_u64(QIDX, "stats/backpressure_applied"));

	ASSERT_EQ(0, set_capacity(self->fd, 4));
	ASSERT_TRUE(io_thread_wait(&w[0], 5000));
	ASSERT_TRUE(io_thread_wait(&w[1], 5000));
	sleep_ms(200);
	ASSERT_EQ(2, count_done(w, 3));
	ASSERT_TRUE(io_thread_blocked(&w[2], 1000));
	ASSERT_EQ(4U, bpq_depth(self->fd));

	ASSERT_EQ(0, set_capacity(self->fd, 5));
	ASSERT_TRUE(io_thread_wait(&w[2], 5000));
	ASSERT_EQ(5U, bpq_depth(self->fd));
	for (i = 0; i < 3; i++) {
		ASSERT_EQ(1, w[i].ret);
	}

	/* FIFO: the blocked writers were admitted in order. */
	for (i = 0; i < 2; i++) {
		ASSERT_EQ(1, bpq_read(self->fd, &c, 1));
	}
	for (i = 0; i < 3; i++) {
		ASSERT_EQ(1, bpq_read(self->fd, &c, 1));
		ASSERT_EQ('a' + i, c);
	}
}

/* A task blocked in write is ended by SIGKILL at once (sleeps in S). */
TEST_F(wake, sigkill_ends_blocked_writer)
{
	int status, i;
	pid_t pid;

	ASSERT_EQ(0, fill_queue(self->fd, 1));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		bpq_write(self->fd, "k", 1);
		_exit(0);
	}
	ASSERT_TRUE(wait_task_sleeping(pid, SYS_write, 5000));
	ASSERT_EQ(0, kill(pid, SIGKILL));
	for (i = 0; i < 1000 && waitpid(pid, &status, WNOHANG) == 0; i++)
		sleep_ms(1);
	ASSERT_GT(1000, i) TH_LOG("blocked writer did not die at once");
	ASSERT_TRUE(WIFSIGNALED(status));
	ASSERT_EQ(1U, bpq_depth(self->fd));
	ASSERT_EQ(1U, bpq_sysfs_u64(QIDX, "stats/enqueued_msgs"));
}

/* SIGSTOP/SIGCONT make no spurious EINTR: the read just goes on. */
TEST_F(wake, sigstop_no_eintr)
{
	char buf[8];
	int status;
	pid_t pid;

	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0)
		_exit(bpq_read(self->fd, buf, sizeof(buf)) == 2 ? 0 : 1);
	ASSERT_TRUE(wait_task_sleeping(pid, SYS_read, 5000));
	ASSERT_EQ(0, kill(pid, SIGSTOP));
	sleep_ms(50);
	ASSERT_EQ(0, kill(pid, SIGCONT));
	sleep_ms(50);
	ASSERT_EQ(2, bpq_write(self->fd, "ok", 2));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_EQ(0, WEXITSTATUS(status));
}

/* ---- destroy wakes everyone with ENODEV ---- */

FIXTURE(destroy) {
	int cfd;
	int idx;	/* -1 once destroyed */
	int fd;
};

FIXTURE_SETUP(destroy)
{
	char name[BPQ_NAME_MAX];

	self->fd = -1;
	self->idx = -1;
	self->cfd = bpq_control_open();
	ASSERT_LE(0, self->cfd) TH_LOG("%m - open " BPQ_CONTROL_PATH);
	snprintf(name, sizeof(name), "conc-test-%d", getpid());
	self->idx = bpq_create(self->cfd, name);
	ASSERT_LE(0, self->idx);
	ASSERT_TRUE(bpq_wait_node(self->idx, true, 2000));
	self->fd = bpq_open(self->idx, O_RDWR);
	ASSERT_LE(0, self->fd);
}

FIXTURE_TEARDOWN(destroy)
{
	if (self->fd >= 0)
		close(self->fd);
	if (self->idx >= 0) {
		EXPECT_EQ(0, bpq_destroy(self->cfd, self->idx));
	}
	close(self->cfd);
}

static void destroy_queue(struct __test_metadata *_metadata,
			  FIXTURE_DATA(destroy) *self)
{
	ASSERT_EQ(0, bpq_destroy(self->cfd, self->idx));
	self->idx = -1;
}

TEST_F(destroy, wakes_reader)
{
	struct io_thread r;

	ASSERT_EQ(0, io_thread_start(&r, self->fd, IO_READ, NULL, 16));
	ASSERT_TRUE(io_thread_blocked(&r, 5000));
	destroy_queue(_metadata, self);
	ASSERT_TRUE(io_thread_wait(&r, 5000));
	ASSERT_EQ(-ENODEV, r.ret);
}

TEST_F(destroy, wakes_writer)
{
	struct io_thread w;

	ASSERT_EQ(0, fill_queue(self->fd, 1));
	ASSERT_EQ(0, io_thread_start(&w, self->fd, IO_WRITE, "w", 1));
	ASSERT_TRUE(io_thread_blocked(&w, 5000));
	destroy_queue(_metadata, self);
	ASSERT_TRUE(io_thread_wait(&w, 5000));
	ASSERT_EQ(-ENODEV, w.ret);
}

TEST_F(destroy, wakes_many_readers)
{
	struct io_thread r[MANY_WAITERS];
	int i;

	start_readers(_metadata, r, MANY_WAITERS, self->fd);
	destroy_queue(_metadata, self);
	for (i = 0; i < MANY_WAITERS; i++) {
		ASSERT_TRUE(io_thread_wait(&r[i], 5000));
		ASSERT_EQ(-ENODEV, r[i].ret);
	}
}

struct recv_thread {
	int fd;
	int ret;
	pid_t tid;
	int started;
};

static void *recv_fn(void *arg)
{
	struct recv_thread *t = arg;
	char buf[16];

	t->tid = bpq_gettid();
	__atomic_store_n(&t->started, 1, __ATOMIC_RELEASE);
	t->ret = bpq_recv(t->fd, buf, sizeof(buf), 0, 0, NULL);
	return NULL;
}

TEST_F(destroy, wakes_recv_ioctl)
{
	struct recv_thread t = { .fd = self->fd };
	pthread_t thr;

	ASSERT_EQ(0, pthread_create(&thr, NULL, recv_fn, &t));
	while (!__atomic_load_n(&t.started, __ATOMIC_ACQUIRE))
		sched_yield();
	ASSERT_TRUE(wait_task_sleeping(t.tid, SYS_ioctl, 5000));
	destroy_queue(_metadata, self);
	pthread_join(thr, NULL);
	ASSERT_EQ(-ENODEV, t.ret);
}

static void *poll_fn(void *arg)
{
	struct recv_thread *t = arg;
	struct pollfd pfd = { .fd = t->fd, .events = POLLIN };

	t->tid = bpq_gettid();
	__atomic_store_n(&t->started, 1, __ATOMIC_RELEASE);
	t->ret = poll(&pfd, 1, 10000) == 1 ? pfd.revents : -1;
	return NULL;
}

TEST_F(destroy, wakes_poll)
{
	struct recv_thread t = { .fd = self->fd };
	pthread_t thr;

	ASSERT_EQ(0, pthread_create(&thr, NULL, poll_fn, &t));
	while (!__atomic_load_n(&t.started, __ATOMIC_ACQUIRE))
		sched_yield();
	/* poll may be poll or ppoll underneath: only check the state */
	ASSERT_TRUE(wait_task_sleeping(t.tid, -1, 5000));
	destroy_queue(_metadata, self);
	pthread_join(thr, NULL);
	ASSERT_EQ(POLLERR | POLLHUP, t.ret & (POLLERR | POLLHUP));
}

TEST_HARNESS_MAIN
