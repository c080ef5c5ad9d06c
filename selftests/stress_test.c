// SPDX-License-Identifier: GPL-2.0
/*
 * Stress: what concurrency_test does not do, for a bounded time.
 *
 *  - producers and consumers on every strategy while another thread keeps
 *    changing strategy (all five), capacity and watermarks: no duplicate,
 *    no corruption, per-consumer order, and exact counts: every message a
 *    producer saw accepted was received or evicted, every refusal and
 *    timeout it saw is in the counters;
 *  - destroy raced against blocked readers, writers, RECV/SEND_BATCH/
 *    RECV_BATCH callers, poll and epoll waiters, in a loop;
 *  - BPQ_IOC_SET_CONFIG and sysfs writes of different values raced while
 *    writers run: every config seen, and the last, is one that was written;
 *  - SIGUSR1 (no SA_RESTART) in a tight loop at blocked readers and
 *    writers: an interrupted call consumes and queues nothing;
 *  - a thread that ends and reopens the stream (every kind of
 *    BPQ_IOC_SHUTDOWN and sysfs "stream", each result checked against
 *    its model of the stream) raced against writers, readers, a flusher
 *    and strategy switches, and in every other round a destroy: at quiet
 *    points (all of them parked) the stream is as the model says and
 *    enqueued = dequeued + dropped_oldest + flushed + depth, each counter
 *    exactly what the workers' calls returned.
 *
 * Works on queues it creates and destroys. BPQ_STRESS_SECONDS (default 30)
 * scales the whole run; the figures are printed at the end.
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <sys/epoll.h>
#include <sys/wait.h>

#include "bpq_test.h"
/* kselftest_harness.h of 6.1 has an unused parameter: keep -Wextra clean. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"
#include "kselftest_harness.h"
#pragma GCC diagnostic pop

#define NPROD		3
#define NCONS		3
#define MAXSEQ		(1 << 20)
#define STOP_ID		0xffffffffU

/* ---- figures, shared by the forked tests and printed by the parent ---- */

struct figures {
	long moved;		/* messages received */
	long configs;		/* config changes applied */
	long destroys;
	long woken_by_destroy;	/* calls ended by a destroy */
	long signals;
	long eintr;
	long evicted;
	long refused;
	long timeouts;
	long stream_ops;	/* shutdowns and reopens */
	long reopens;		/* of which opened an ended stream */
	long seconds_ms;
};

BPQ_FIGURES(struct figures)

static void figures_print(void)
{
	printf("# figures: %ld messages moved (%ld evicted, %ld refused, %ld timed out), %ld config changes, %ld destroys ending %ld blocked calls, %ld signals sent, %ld calls interrupted, %ld stream ends and reopens (%ld reopened), %ld.%03ld s\n",
	       fig->moved, fig->evicted, fig->refused, fig->timeouts,
	       fig->configs, fig->destroys, fig->woken_by_destroy,
	       fig->signals, fig->eintr, fig->stream_ops, fig->reopens,
	       fig->seconds_ms / 1000, fig->seconds_ms % 1000);
}

/* Milliseconds of the whole run given to one part (of 30 s by default). */
static int budget_ms(int ms_of_30s)
{
	const char *s = getenv("BPQ_STRESS_SECONDS");
	double total = s && *s ? strtod(s, NULL) : 30.0;

	if (total <= 0)
		total = 30.0;
	return (int)(ms_of_30s * total / 30.0);
}

static int scaled_count(int n_of_30s, int min)
{
	int n = budget_ms(n_of_30s * 1000) / 1000;

	return n < min ? min : n;
}

/* A queue of our own: created in setup, destroyed in teardown. */
static int create_queue(int cfd, const char *what)
{
	static int n;
	char name[BPQ_NAME_MAX];
	int idx;

	snprintf(name, sizeof(name), "stress-%s-%d-%d", what, getpid(), n++);
	idx = bpq_create(cfd, name);
	if (idx >= 0 && !bpq_wait_node(idx, true, 2000))
		return -ENOENT;
	return idx;
}

/* ---- messages: {producer, seq, payload} with a crc32 over all of it ---- */

struct smsg {
	__u32 prod;
	__u32 seq;
	__u32 len;		/* payload bytes used */
	__u32 crc;		/* over the fields above and the payload */
	unsigned char payload[64];
};

#define SMSG_HDR	offsetof(struct smsg, payload)

static __u32 smsg_crc(const struct smsg *m)
{
	__u32 crc = bpq_crc32(0, m, offsetof(struct smsg, crc));

	return bpq_crc32(crc, m->payload, m->len);
}

static size_t smsg_make(struct smsg *m, __u32 prod, __u32 seq)
{
	m->prod = prod;
	m->seq = seq;
	m->len = (seq * 7 + prod) % (sizeof(m->payload) + 1);
	fill_pattern(m->payload, m->len, prod * 7919 + seq);
	m->crc = smsg_crc(m);
	return SMSG_HDR + m->len;
}

/* Is @m, @n bytes as read, a well-formed message of one of @nprod producers? */
static bool smsg_valid(const struct smsg *m, ssize_t n, __u32 nprod)
{
	return n >= (ssize_t)SMSG_HDR && m->prod < nprod && m->seq < MAXSEQ &&
	       m->len <= sizeof(m->payload) && (size_t)n == SMSG_HDR + m->len &&
	       m->crc == smsg_crc(m) &&
	       check_pattern(m->payload, m->len, m->prod * 7919 + m->seq);
}

/* ---- 1. producers and consumers while everything changes ---- */

enum { ST_NONE, ST_OK, ST_FAILED };

struct load {
	int idx;
	int64_t deadline;
	int stop_consumers;		/* atomic */
	unsigned char *status;		/* [NPROD][MAXSEQ]: what the write said */
	unsigned char *received;	/* [NPROD][MAXSEQ]: times received */
	long sent[NPROD];		/* attempts */
	long ok[NPROD];
	long refused[NPROD];		/* ENOBUFS */
	long timedout[NPROD];		/* ETIMEDOUT */
	long received_total;
	long corrupt, duplicates, misordered;
	long errors;
	int last_error;
	long configs;
};

struct lworker {
	struct load *l;
	int id;
	pthread_t thr;
};

static void load_error(struct load *l, int err)
{
	__atomic_add_fetch(&l->errors, 1, __ATOMIC_RELAXED);
	__atomic_store_n(&l->last_error, err, __ATOMIC_RELAXED);
}

static void *load_producer(void *arg)
{
	struct lworker *w = arg;
	struct load *l = w->l;
	unsigned char *status = l->status + (size_t)w->id * MAXSEQ;
	struct smsg m;
	ssize_t ret;
	size_t len;
	__u32 seq;
	int fd = bpq_open(l->idx, O_RDWR);

	if (fd < 0) {
		load_error(l, errno);
		return NULL;
	}
	for (seq = 0; seq < MAXSEQ && now_ns() < l->deadline; seq++) {
		len = smsg_make(&m, w->id, seq);
		ret = bpq_write(fd, &m, len);
		l->sent[w->id]++;
		if (ret == (ssize_t)len) {
			status[seq] = ST_OK;
			l->ok[w->id]++;
			continue;
		}
		status[seq] = ST_FAILED;
		if (ret == -ENOBUFS)
			l->refused[w->id]++;
		else if (ret == -ETIMEDOUT)
			l->timedout[w->id]++;
		else
			load_error(l, (int)-ret);
	}
	close(fd);
	return NULL;
}

static void *load_consumer(void *arg)
{
	struct lworker *w = arg;
	struct load *l = w->l;
	long last[NPROD];
	struct smsg m;
	ssize_t ret;
	int fd = bpq_open(l->idx, O_RDWR), p;

	if (fd < 0) {
		load_error(l, errno);
		return NULL;
	}
	for (p = 0; p < NPROD; p++)
		last[p] = -1;
	for (;;) {
		memset(&m, 0, sizeof(m));
		ret = bpq_read(fd, &m, sizeof(m));
		if (ret < 0) {
			load_error(l, (int)-ret);
			break;
		}
		if (ret == (ssize_t)SMSG_HDR && m.prod == STOP_ID)
			break;
		if (!smsg_valid(&m, ret, NPROD)) {
			__atomic_add_fetch(&l->corrupt, 1, __ATOMIC_RELAXED);
			continue;
		}
		if (__atomic_fetch_add(&l->received[(size_t)m.prod * MAXSEQ + m.seq],
				       1, __ATOMIC_RELAXED))
			__atomic_add_fetch(&l->duplicates, 1, __ATOMIC_RELAXED);
		if ((long)m.seq <= last[m.prod])
			__atomic_add_fetch(&l->misordered, 1, __ATOMIC_RELAXED);
		last[m.prod] = m.seq;
		__atomic_add_fetch(&l->received_total, 1, __ATOMIC_RELAXED);
	}
	close(fd);
	return NULL;
}

/* A random config among all strategies, every writer's wait bounded. */
static void random_config(unsigned int *seed, struct bpq_config *c)
{
	bpq_default_config(c);
	c->strategy = rand_r(seed) % 5;
	c->capacity_msgs = 1 + rand_r(seed) % 48;
	c->capacity_bytes = 1024 + rand_r(seed) % 16384;
	c->high_watermark = 40 + rand_r(seed) % 61;
	c->low_watermark = 1 + rand_r(seed) % c->high_watermark;
	c->write_timeout_ms = 10 + rand_r(seed) % 60;
	c->auto_credit = rand_r(seed) % 2;
	c->target_latency_us = 500 + rand_r(seed) % 20000;
	c->min_rate = 2000;
	c->max_rate = 2000 + rand_r(seed) % 1000000;
	c->adjust_interval_ms = 5 + rand_r(seed) % 50;
}

FIXTURE(reconfig) {
	int cfd;
	int idx;
	int fd;
	struct load *l;
};

FIXTURE_VARIANT(reconfig) {
	__u32 strategy;		/* the one in force at the start */
};

FIXTURE_VARIANT_ADD(reconfig, block) { .strategy = BPQ_STRATEGY_BLOCK };
FIXTURE_VARIANT_ADD(reconfig, drop_newest) { .strategy = BPQ_STRATEGY_DROP_NEWEST };
FIXTURE_VARIANT_ADD(reconfig, drop_oldest) { .strategy = BPQ_STRATEGY_DROP_OLDEST };
FIXTURE_VARIANT_ADD(reconfig, credit) { .strategy = BPQ_STRATEGY_CREDIT };
FIXTURE_VARIANT_ADD(reconfig, adaptive) { .strategy = BPQ_STRATEGY_ADAPTIVE };

FIXTURE_SETUP(reconfig)
{
	struct bpq_config cfg;

	self->fd = -1;
	self->cfd = bpq_control_open();
	ASSERT_LE(0, self->cfd) TH_LOG("%m - open " BPQ_CONTROL_PATH);
	self->idx = create_queue(self->cfd, "load");
	ASSERT_LE(0, self->idx);
	self->fd = bpq_open(self->idx, O_RDWR);
	ASSERT_LE(0, self->fd);
	bpq_default_config(&cfg);
	cfg.strategy = variant->strategy;
	cfg.capacity_msgs = 16;
	cfg.write_timeout_ms = 50;
	cfg.min_rate = 2000;
	ASSERT_EQ(0, bpq_set_config(self->fd, &cfg));
	self->l = calloc(1, sizeof(*self->l));
	ASSERT_TRUE(self->l != NULL);
	self->l->status = calloc(NPROD, MAXSEQ);
	self->l->received = calloc(NPROD, MAXSEQ);
	ASSERT_TRUE(self->l->status && self->l->received);
	self->l->idx = self->idx;
}

FIXTURE_TEARDOWN(reconfig)
{
	if (self->fd >= 0)
		close(self->fd);
	if (self->idx >= 0)
		EXPECT_EQ(0, bpq_destroy(self->cfd, self->idx));
	close(self->cfd);
	if (self->l) {
		free(self->l->status);
		free(self->l->received);
		free(self->l);
	}
}

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

static long sum(const long *v)
{
	long n = 0;
	int i;

	for (i = 0; i < NPROD; i++)
		n += v[i];
	return n;
}

TEST_F_TIMEOUT(reconfig, strategies_changed_under_load, 300)
{
	struct lworker prod[NPROD], cons[NCONS];
	struct smsg stop = { .prod = STOP_ID };
	struct load *l = self->l;
	struct bpq_config cfg;
	struct bpq_stats st;
	unsigned int seed = 1 + variant->strategy;
	long ok, evicted, unbalanced = 0, late = 0;
	int64_t t0 = now_ns();
	size_t i;
	int p;

	l->deadline = t0 + (int64_t)budget_ms(3000) * 1000000;
	for (p = 0; p < NCONS; p++) {
		cons[p] = (struct lworker){ .l = l, .id = p };
		ASSERT_EQ(0, pthread_create(&cons[p].thr, NULL, load_consumer,
					    &cons[p]));
	}
	for (p = 0; p < NPROD; p++) {
		prod[p] = (struct lworker){ .l = l, .id = p };
		ASSERT_EQ(0, pthread_create(&prod[p].thr, NULL, load_producer,
					    &prod[p]));
	}

	/* Change everything while they run; credit is granted generously. */
	while (now_ns() < l->deadline) {
		random_config(&seed, &cfg);
		if (rand_r(&seed) % 4 == 0) {
			static const char *const names[] = {
				"block", "drop-newest", "drop-oldest",
				"credit", "adaptive",
			};

			if (!bpq_sysfs_write(self->idx, "strategy",
					     names[rand_r(&seed) % 5]))
				l->configs++;
		} else if (!bpq_set_config(self->fd, &cfg)) {
			l->configs++;
		} else {
			load_error(l, errno);
		}
		if (rand_r(&seed) % 2) {
			struct bpq_grant g = { .size = sizeof(g),
					       .credits = 1000 };

			EXPECT_EQ(0, bpq_ioctl(self->fd, BPQ_IOC_GRANT, &g));
		} else {
			EXPECT_EQ(0, bpq_sysfs_write(self->idx, "grant", "1000"));
		}
		if (bpq_get_stats(self->fd, &st) || !bpq_stats_balanced(&st))
			unbalanced++;
		if (rand_r(&seed) % 3 == 0)
			sleep_ms(1);
	}
	for (p = 0; p < NPROD; p++)
		pthread_join(prod[p].thr, NULL);

	/* Room and credit for everyone left, then one stop per consumer. */
	ASSERT_EQ(0, bpq_configure(self->fd, BPQ_STRATEGY_BLOCK, 0));
	ASSERT_TRUE(wait_drained(self->fd, 20000));
	for (p = 0; p < NCONS; p++)
		ASSERT_EQ((ssize_t)SMSG_HDR, bpq_write(self->fd, &stop, SMSG_HDR));
	for (p = 0; p < NCONS; p++)
		pthread_join(cons[p].thr, NULL);

	ASSERT_EQ(0, bpq_get_stats(self->fd, &st));
	ok = sum(l->ok);
	evicted = (long)st.dropped_oldest;
	/* a message received must be one whose write said so */
	for (i = 0; i < (size_t)NPROD * MAXSEQ; i++)
		if (l->received[i] && l->status[i] != ST_OK)
			late++;
	TH_LOG("%s start: %ld sent, %ld accepted, %ld received, %ld evicted, %ld refused, %ld timed out, %ld config changes in %lld ms",
	       bpq_strategy_name(variant->strategy), sum(l->sent), ok,
	       l->received_total, evicted, sum(l->refused), sum(l->timedout),
	       l->configs, (long long)(now_ns() - t0) / 1000000);
	FIG_ADD(moved, l->received_total);
	FIG_ADD(evicted, evicted);
	FIG_ADD(refused, sum(l->refused));
	FIG_ADD(timeouts, sum(l->timedout));
	FIG_ADD(configs, l->configs);
	FIG_ADD(seconds_ms, (now_ns() - t0) / 1000000);

	ASSERT_EQ(0, l->errors) TH_LOG("last error %d", l->last_error);
	ASSERT_EQ(0, unbalanced);
	ASSERT_EQ(0, l->corrupt);
	ASSERT_EQ(0, l->duplicates);
	ASSERT_EQ(0, l->misordered);
	ASSERT_EQ(0, late) TH_LOG("received messages whose write failed");
	ASSERT_TRUE(bpq_stats_balanced(&st));
	ASSERT_EQ(0U, st.depth_msgs);
	ASSERT_EQ(0U, st.flushed);
	/* exact: accepted = received + evicted, refusals and timeouts counted */
	ASSERT_EQ(ok, l->received_total + evicted);
	ASSERT_EQ((__u64)sum(l->refused), st.dropped_newest);
	ASSERT_EQ((__u64)sum(l->timedout), st.timeouts);
	ASSERT_EQ((__u64)(ok + NCONS), st.enqueued_msgs);
	ASSERT_EQ((__u64)(l->received_total + NCONS), st.dequeued_msgs);
	ASSERT_EQ(sum(l->sent), ok + sum(l->refused) + sum(l->timedout));
}

/* ---- 2. destroy against everything blocked on the queue ---- */

/* Nothing to set up: a fixture only for TEST_F_TIMEOUT. */
FIXTURE(stress) {
	int unused;
};

FIXTURE_SETUP(stress)
{
	self->unused = 0;
}

FIXTURE_TEARDOWN(stress)
{
}

enum bcall {
	B_READ, B_WRITE, B_RECV, B_SEND_BATCH, B_RECV_BATCH, B_POLL, B_EPOLL,
	NBCALLS
};

static const char *const bcall_names[] = {
	"read", "write", "RECV", "SEND_BATCH", "RECV_BATCH", "poll",
	"epoll_wait",
};

struct bthread {
	pthread_t thr;
	enum bcall call;
	int fd;
	int epfd;
	pid_t tid;
	int started;		/* atomic */
	int done;		/* atomic */
	long ret;		/* -errno, or revents for poll/epoll */
};

static void *bthread_fn(void *arg)
{
	struct bthread *b = arg;
	char buf[64] = "x";
	struct bpq_iovec vec = { .base = (uintptr_t)buf, .len = 1 };
	struct bpq_recv r = { .size = sizeof(r), .buf = (uintptr_t)buf,
			      .buf_len = sizeof(buf) };
	struct bpq_send_batch sb = { .size = sizeof(sb),
				     .msgs = (uintptr_t)&vec, .count = 1 };
	struct bpq_msg_info infos[4];
	struct bpq_recv_batch rb = { .size = sizeof(rb), .buf = (uintptr_t)buf,
				     .buf_len = sizeof(buf), .max_records = 4,
				     .infos = (uintptr_t)infos };
	struct pollfd pfd = { .fd = b->fd, .events = POLLIN | POLLOUT };
	struct epoll_event ev;
	long ret;

	b->tid = bpq_gettid();
	__atomic_store_n(&b->started, 1, __ATOMIC_RELEASE);
	switch (b->call) {
	case B_READ:
		ret = bpq_read(b->fd, buf, sizeof(buf));
		break;
	case B_WRITE:
		ret = bpq_write(b->fd, buf, 1);
		break;
	case B_RECV:
		ret = bpq_ioctl(b->fd, BPQ_IOC_RECV, &r);
		break;
	case B_SEND_BATCH:
		ret = bpq_ioctl(b->fd, BPQ_IOC_SEND_BATCH, &sb);
		break;
	case B_RECV_BATCH:
		ret = bpq_ioctl(b->fd, BPQ_IOC_RECV_BATCH, &rb);
		break;
	case B_POLL:
		ret = poll(&pfd, 1, 10000);
		ret = ret == 1 ? pfd.revents : ret < 0 ? -errno : 0;
		break;
	default:
		ret = epoll_wait(b->epfd, &ev, 1, 10000);
		ret = ret == 1 ? (long)ev.events : ret < 0 ? -errno : 0;
		break;
	}
	b->ret = ret;
	__atomic_store_n(&b->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

/* Are they all asleep (state S)? Wait up to @ms for it. */
static bool all_sleeping(struct bthread *b, int n, int ms)
{
	int i;

	for (i = 0; i < n; i++)
		if (!wait_task_sleeping(b[i].tid, -1, ms))
			return false;
	return true;
}

TEST_F_TIMEOUT(stress, destroy_races_blocked_callers, 300)
{
	int iters = scaled_count(50, 5), it, i, cfd, idx, fd, woken = 0;
	struct bthread b[2 * NBCALLS];
	int64_t t0 = now_ns();
	unsigned int seed = 42;

	cfd = bpq_control_open();
	ASSERT_LE(0, cfd) TH_LOG("%m - open " BPQ_CONTROL_PATH);
	for (it = 0; it < iters; it++) {
		struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT | EPOLLET };
		int fd2, epfd2, order = rand_r(&seed) % 4;
		bool wait_asleep = it % 3 != 2;
		struct bpq_config cfg;

		idx = create_queue(cfd, "destroy");
		ASSERT_LE(0, idx);
		fd = bpq_open(idx, O_RDWR);
		ASSERT_LE(0, fd);
		/* credit without credit: writers and readers both wait */
		bpq_default_config(&cfg);
		cfg.strategy = BPQ_STRATEGY_CREDIT;
		cfg.capacity_msgs = 1;
		ASSERT_EQ(0, bpq_set_config(fd, &cfg));

		/*
		 * A registration nobody waits on, on its own file, torn down
		 * in one of four orders around the destroy.
		 */
		fd2 = bpq_open(idx, O_RDWR);
		epfd2 = epoll_create1(EPOLL_CLOEXEC);
		ASSERT_LE(0, fd2);
		ASSERT_LE(0, epfd2);
		ASSERT_EQ(0, epoll_ctl(epfd2, EPOLL_CTL_ADD, fd2, &ev));
		if (order == 0) {
			close(fd2);
			fd2 = -1;
		} else if (order == 1) {
			close(epfd2);
			epfd2 = -1;
		}

		/* two of each call, each on its own file or epoll instance */
		for (i = 0; i < 2 * NBCALLS; i++) {
			memset(&b[i], 0, sizeof(b[i]));
			b[i].call = i % NBCALLS;
			b[i].fd = bpq_open(idx, O_RDWR);
			ASSERT_LE(0, b[i].fd);
			b[i].epfd = -1;
			if (b[i].call == B_EPOLL) {
				b[i].epfd = epoll_create1(EPOLL_CLOEXEC);
				ASSERT_LE(0, b[i].epfd);
				ASSERT_EQ(0, epoll_ctl(b[i].epfd, EPOLL_CTL_ADD,
						       i % 2 ? fd : b[i].fd,
						       &ev));
			}
			ASSERT_EQ(0, pthread_create(&b[i].thr, NULL, bthread_fn,
						    &b[i]));
		}
		for (i = 0; i < 2 * NBCALLS; i++)
			while (!__atomic_load_n(&b[i].started, __ATOMIC_ACQUIRE))
				sched_yield();
		if (wait_asleep) {
			int early = -1;

			ASSERT_TRUE(all_sleeping(b, 2 * NBCALLS, 5000));
			for (i = 0; i < 2 * NBCALLS; i++)
				if (__atomic_load_n(&b[i].done, __ATOMIC_ACQUIRE))
					early = i;
			ASSERT_EQ(-1, early)
				TH_LOG("%s returned %ld before the destroy",
				       bcall_names[b[early].call], b[early].ret);
		}

		ASSERT_EQ(0, bpq_destroy(cfd, idx));
		FIG_ADD(destroys, 1);

		for (i = 0; i < 2 * NBCALLS; i++) {
			int64_t end = now_ns() + 5000000000LL;

			while (!__atomic_load_n(&b[i].done, __ATOMIC_ACQUIRE) &&
			       now_ns() < end)
				sleep_ms(1);
			ASSERT_TRUE(__atomic_load_n(&b[i].done, __ATOMIC_ACQUIRE))
				TH_LOG("iteration %d: %s not woken by the destroy",
				       it, bcall_names[b[i].call]);
			pthread_join(b[i].thr, NULL);
			if (b[i].call == B_POLL || b[i].call == B_EPOLL) {
				ASSERT_EQ(POLLERR | POLLHUP,
					  b[i].ret & (POLLERR | POLLHUP))
					TH_LOG("iteration %d: %s gave %#lx",
					       it, bcall_names[b[i].call],
					       b[i].ret);
			} else {
				ASSERT_EQ(-ENODEV, b[i].ret)
					TH_LOG("iteration %d: %s", it,
					       bcall_names[b[i].call]);
			}
			woken++;
		}
		/* the files stay usable for ENODEV only, then close */
		ASSERT_EQ(-ENODEV, bpq_write(fd, "y", 1));
		ASSERT_EQ(POLLERR | POLLHUP,
			  poll_events(fd) & (POLLERR | POLLHUP));
		if (order == 3) {
			close(fd2);
			fd2 = -1;
		}
		if (epfd2 >= 0)
			close(epfd2);
		if (fd2 >= 0)
			close(fd2);
		for (i = 0; i < 2 * NBCALLS; i++) {
			if (rand_r(&seed) % 2 && b[i].epfd >= 0) {
				close(b[i].epfd);
				b[i].epfd = -1;
			}
			close(b[i].fd);
			if (b[i].epfd >= 0)
				close(b[i].epfd);
		}
		close(fd);
		ASSERT_TRUE(bpq_wait_node(idx, false, 2000));
	}
	close(cfd);
	FIG_ADD(woken_by_destroy, woken);
	FIG_ADD(seconds_ms, (now_ns() - t0) / 1000000);
	TH_LOG("%d destroys, each ending %d blocked calls, in %lld ms", iters,
	       2 * NBCALLS, (long long)(now_ns() - t0) / 1000000);
}

/* ---- 3. SET_CONFIG and sysfs raced, with writers running ---- */

struct race {
	int idx;
	int64_t deadline;
	struct bpq_config allowed[12];
	int nallowed;
	long changes;
	long bad_seen;		/* a config read that is none of the allowed */
	long errors;
	int last_error;
	struct bpq_config cfg[2];
	int which;
};

struct rthread {
	struct race *r;
	int role;
	pthread_t thr;
};

static bool config_allowed(struct race *r, const struct bpq_config *c)
{
	int i;

	for (i = 0; i < r->nallowed; i++)
		if (!memcmp(c, &r->allowed[i], sizeof(*c)))
			return true;
	return false;
}

static void race_error(struct race *r, int err)
{
	__atomic_add_fetch(&r->errors, 1, __ATOMIC_RELAXED);
	__atomic_store_n(&r->last_error, err, __ATOMIC_RELAXED);
}

enum { R_SET_A, R_SET_C, R_SYSFS_CAP, R_SYSFS_STRATEGY, R_GET, R_WRITER,
       R_READER, NROLES };

static void *race_fn(void *arg)
{
	struct rthread *t = arg;
	struct race *r = t->r;
	struct bpq_config c;
	char buf[512];
	int fd = bpq_open(r->idx, O_RDWR | O_NONBLOCK), ret;
	long n = 0;

	if (fd < 0) {
		race_error(r, errno);
		return NULL;
	}
	while (now_ns() < r->deadline) {
		switch (t->role) {
		case R_SET_A:
		case R_SET_C:
			ret = bpq_set_config(fd, &r->cfg[t->role == R_SET_C]);
			if (ret)
				race_error(r, -ret);
			else
				n++;
			break;
		case R_SYSFS_CAP:
			ret = bpq_sysfs_write(r->idx, "capacity_msgs", "22");
			if (ret)
				race_error(r, -ret);
			else
				n++;
			break;
		case R_SYSFS_STRATEGY:
			ret = bpq_sysfs_write(r->idx, "strategy", "drop-oldest");
			if (ret)
				race_error(r, -ret);
			else
				n++;
			break;
		case R_GET:
			if (bpq_get_config(fd, &c))
				race_error(r, errno);
			else if (!config_allowed(r, &c))
				__atomic_add_fetch(&r->bad_seen, 1,
						   __ATOMIC_RELAXED);
			break;
		case R_WRITER:
			ret = (int)bpq_write(fd, buf, 1 + rand() % 300);
			if (ret < 0 && ret != -EAGAIN && ret != -ENOBUFS &&
			    ret != -EMSGSIZE)
				race_error(r, -ret);
			break;
		default:
			ret = (int)bpq_read(fd, buf, sizeof(buf));
			if (ret < 0 && ret != -EAGAIN)
				race_error(r, -ret);
			break;
		}
	}
	__atomic_add_fetch(&r->changes, n, __ATOMIC_RELAXED);
	close(fd);
	return NULL;
}

TEST_F_TIMEOUT(stress, config_ioctl_vs_sysfs, 300)
{
	struct rthread t[NROLES + 1];
	struct race *r = calloc(1, sizeof(*r));
	struct bpq_config now, base[3];
	struct bpq_stats st;
	int cfd, idx, fd, i, b, m;
	int64_t t0 = now_ns();
	char val[64];

	ASSERT_TRUE(r != NULL);
	cfd = bpq_control_open();
	ASSERT_LE(0, cfd);
	idx = create_queue(cfd, "race");
	ASSERT_LE(0, idx);
	fd = bpq_open(idx, O_RDWR);
	ASSERT_LE(0, fd);
	r->idx = idx;

	/* Two full configs that differ in every field... */
	bpq_default_config(&r->cfg[0]);
	r->cfg[0].strategy = BPQ_STRATEGY_DROP_NEWEST;
	r->cfg[0].capacity_msgs = 11;
	r->cfg[0].capacity_bytes = 1111;
	r->cfg[0].max_msg_size = 111;
	r->cfg[0].high_watermark = 90;
	r->cfg[0].low_watermark = 10;
	r->cfg[0].write_timeout_ms = 1;
	r->cfg[0].auto_credit = 1;
	r->cfg[0].target_latency_us = 1111;
	r->cfg[0].min_rate = 111;
	r->cfg[0].max_rate = 11111;
	r->cfg[0].adjust_interval_ms = 11;
	bpq_default_config(&r->cfg[1]);
	r->cfg[1].strategy = BPQ_STRATEGY_ADAPTIVE;
	r->cfg[1].capacity_msgs = 33;
	r->cfg[1].capacity_bytes = 3333;
	r->cfg[1].max_msg_size = 333;
	r->cfg[1].high_watermark = 80;
	r->cfg[1].low_watermark = 30;
	r->cfg[1].write_timeout_ms = 3;
	r->cfg[1].auto_credit = 0;
	r->cfg[1].target_latency_us = 3333;
	r->cfg[1].min_rate = 333;
	r->cfg[1].max_rate = 33333;
	r->cfg[1].adjust_interval_ms = 33;
	/* ...and what the two sysfs writers may have made of any of them. */
	bpq_default_config(&base[0]);
	base[1] = r->cfg[0];
	base[2] = r->cfg[1];
	for (b = 0; b < 3; b++) {
		for (m = 0; m < 4; m++) {
			struct bpq_config *c = &r->allowed[r->nallowed++];

			*c = base[b];
			if (m & 1)
				c->capacity_msgs = 22;
			if (m & 2)
				c->strategy = BPQ_STRATEGY_DROP_OLDEST;
		}
	}
	ASSERT_EQ(0, bpq_get_config(fd, &now));
	ASSERT_TRUE(config_allowed(r, &now));

	r->deadline = now_ns() + (int64_t)budget_ms(3000) * 1000000;
	for (i = 0; i <= NROLES; i++) {
		t[i] = (struct rthread){ .r = r, .role = i < NROLES ? i : R_WRITER };
		ASSERT_EQ(0, pthread_create(&t[i].thr, NULL, race_fn, &t[i]));
	}
	for (i = 0; i <= NROLES; i++)
		pthread_join(t[i].thr, NULL);

	ASSERT_EQ(0, bpq_get_config(fd, &now));
	TH_LOG("%ld config changes; final strategy %s, capacity %u, bytes %llu",
	       r->changes, bpq_strategy_name(now.strategy), now.capacity_msgs,
	       (unsigned long long)now.capacity_bytes);
	FIG_ADD(configs, r->changes);
	FIG_ADD(seconds_ms, (now_ns() - t0) / 1000000);
	ASSERT_EQ(0, r->errors) TH_LOG("last error %d", r->last_error);
	ASSERT_EQ(0, r->bad_seen) TH_LOG("configs read that nobody wrote");
	ASSERT_TRUE(config_allowed(r, &now));
	/* sysfs says the same */
	ASSERT_EQ(now.capacity_msgs, bpq_sysfs_u64(idx, "capacity_msgs"));
	ASSERT_EQ(now.capacity_bytes, bpq_sysfs_u64(idx, "capacity_bytes"));
	ASSERT_EQ(0, bpq_sysfs_read(idx, "strategy", val, sizeof(val)));
	ASSERT_STREQ(bpq_strategy_name(now.strategy), val);
	ASSERT_EQ(0, bpq_get_stats(fd, &st));
	ASSERT_TRUE(bpq_stats_balanced(&st));

	close(fd);
	ASSERT_EQ(0, bpq_destroy(cfd, idx));
	close(cfd);
	free(r);
}

/* ---- 4. signals at blocked readers and writers ---- */

#define SIG_NW	2
#define SIG_NR	2

struct sigload {
	int idx;
	int stop_writers;	/* atomic */
	int stop_readers;	/* atomic */
	unsigned char *received;	/* [SIG_NW][MAXSEQ] */
	long sent[SIG_NW];	/* queued, by the calls' own account */
	long eintr_w, eintr_r;
	long received_total;
	long corrupt, duplicates, misordered;
	long errors;
	int last_error;
	pthread_t thr[SIG_NW + SIG_NR];
	int ids[SIG_NW + SIG_NR];
	int done[SIG_NW + SIG_NR];	/* atomic */
};

static struct sigload *sl;
static int sig_seen;

static void on_sigusr1(int sig)
{
	(void)sig;
	__atomic_add_fetch(&sig_seen, 1, __ATOMIC_RELAXED);
}

static void sl_error(int err)
{
	__atomic_add_fetch(&sl->errors, 1, __ATOMIC_RELAXED);
	__atomic_store_n(&sl->last_error, err, __ATOMIC_RELAXED);
}

static void *sig_writer(void *arg)
{
	int id = *(int *)arg, fd = bpq_open(sl->idx, O_RDWR), k, i;
	struct smsg m[4];
	struct bpq_iovec vec[4];
	struct bpq_send_batch b = { .size = sizeof(b), .msgs = (uintptr_t)vec };
	unsigned int seed = id + 1;
	__u32 seq = 0;
	long ret;

	if (fd < 0) {
		sl_error(errno);
		goto out;
	}
	while (!__atomic_load_n(&sl->stop_writers, __ATOMIC_RELAXED) &&
	       seq + 4 < MAXSEQ) {
		if (rand_r(&seed) % 2) {
			ret = bpq_write(fd, &m[0], smsg_make(&m[0], id, seq));
			k = ret > 0 ? 1 : (int)ret;
		} else {
			b.count = 1 + rand_r(&seed) % 3;
			for (i = 0; i < (int)b.count; i++) {
				vec[i].base = (uintptr_t)&m[i];
				vec[i].len = smsg_make(&m[i], id, seq + i);
				vec[i].__reserved = 0;
			}
			k = bpq_ioctl(fd, BPQ_IOC_SEND_BATCH, &b);
		}
		if (k > 0) {
			seq += k;
		} else if (k == -EINTR) {
			sl->eintr_w++;	/* nothing queued: same seq again */
		} else {
			sl_error(-k);
			break;
		}
		if (rand_r(&seed) % 8 == 0)
			sched_yield();
	}
	sl->sent[id] = seq;
	close(fd);
out:
	__atomic_store_n(&sl->done[id], 1, __ATOMIC_RELEASE);
	return NULL;
}

static void sig_got(struct smsg *m, ssize_t n, long *last)
{
	if (!smsg_valid(m, n, SIG_NW)) {
		__atomic_add_fetch(&sl->corrupt, 1, __ATOMIC_RELAXED);
		return;
	}
	if (__atomic_fetch_add(&sl->received[(size_t)m->prod * MAXSEQ + m->seq],
			       1, __ATOMIC_RELAXED))
		__atomic_add_fetch(&sl->duplicates, 1, __ATOMIC_RELAXED);
	if ((long)m->seq <= last[m->prod])
		__atomic_add_fetch(&sl->misordered, 1, __ATOMIC_RELAXED);
	last[m->prod] = m->seq;
	__atomic_add_fetch(&sl->received_total, 1, __ATOMIC_RELAXED);
}

static void *sig_reader(void *arg)
{
	int id = *(int *)arg, fd = bpq_open(sl->idx, O_RDWR), i, n;
	unsigned char buf[4 * sizeof(struct smsg)];
	struct bpq_msg_info infos[4];
	struct bpq_recv_batch rb = { .size = sizeof(rb), .buf = (uintptr_t)buf,
				     .buf_len = sizeof(buf),
				     .infos = (uintptr_t)infos };
	long last[SIG_NW] = { -1, -1 };
	unsigned int seed = id + 100;
	struct smsg m;
	long ret;

	if (fd < 0) {
		sl_error(errno);
		goto out;
	}
	for (;;) {
		switch (rand_r(&seed) % 3) {
		case 0:
			memset(&m, 0, sizeof(m));
			ret = bpq_read(fd, &m, sizeof(m));
			if (ret > 0)
				sig_got(&m, ret, last);
			break;
		case 1:
			memset(&m, 0, sizeof(m));
			ret = bpq_recv(fd, &m, sizeof(m), 0, 0, NULL);
			if (ret > 0)
				sig_got(&m, ret, last);
			break;
		default:
			rb.max_records = 1 + rand_r(&seed) % 4;
			n = bpq_ioctl(fd, BPQ_IOC_RECV_BATCH, &rb);
			for (i = 0; i < n; i++) {
				memcpy(&m, buf + infos[i].offset, infos[i].len);
				sig_got(&m, infos[i].len, last);
			}
			ret = n;
			break;
		}
		if (ret == -EINTR) {
			sl->eintr_r++;	/* nothing taken */
			if (__atomic_load_n(&sl->stop_readers, __ATOMIC_ACQUIRE))
				break;
		} else if (ret <= 0) {
			sl_error((int)-ret);
			break;
		}
		if (rand_r(&seed) % 4 == 0)
			sched_yield();
	}
	close(fd);
out:
	__atomic_store_n(&sl->done[id], 1, __ATOMIC_RELEASE);
	return NULL;
}

/* Signal every worker not yet done; returns how many were signalled. */
static int signal_all(int first, int n)
{
	int i, sent = 0;

	for (i = first; i < first + n; i++)
		if (!__atomic_load_n(&sl->done[i], __ATOMIC_ACQUIRE) &&
		    !pthread_kill(sl->thr[i], SIGUSR1))
			sent++;
	return sent;
}

TEST_F_TIMEOUT(stress, signals_at_blocked_callers, 300)
{
	struct sigaction sa = { .sa_handler = on_sigusr1 };
	struct bpq_config cfg;
	struct bpq_stats st;
	long signals = 0, missing = 0, extra = 0, total = 0;
	int64_t t0 = now_ns(), deadline;
	int cfd, idx, fd, i;
	size_t s;

	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0;	/* no SA_RESTART: EINTR */
	ASSERT_EQ(0, sigaction(SIGUSR1, &sa, NULL));
	sl = calloc(1, sizeof(*sl));
	ASSERT_TRUE(sl != NULL);
	sl->received = calloc(SIG_NW, MAXSEQ);
	ASSERT_TRUE(sl->received != NULL);

	cfd = bpq_control_open();
	ASSERT_LE(0, cfd);
	idx = create_queue(cfd, "signal");
	ASSERT_LE(0, idx);
	sl->idx = idx;
	fd = bpq_open(idx, O_RDWR);
	ASSERT_LE(0, fd);
	/* small, blocking, no bound on a wait: only signals end them */
	bpq_default_config(&cfg);
	cfg.capacity_msgs = 3;
	ASSERT_EQ(0, bpq_set_config(fd, &cfg));

	for (i = 0; i < SIG_NW + SIG_NR; i++) {
		sl->ids[i] = i;
		ASSERT_EQ(0, pthread_create(&sl->thr[i], NULL,
					    i < SIG_NW ? sig_writer : sig_reader,
					    &sl->ids[i]));
	}
	deadline = t0 + (int64_t)budget_ms(4000) * 1000000;
	while (now_ns() < deadline) {
		signals += signal_all(0, SIG_NW + SIG_NR);
		if (signals % 64 == 0)
			sched_yield();
	}
	/* Writers stop at their next return; a blocked one is signalled out. */
	__atomic_store_n(&sl->stop_writers, 1, __ATOMIC_RELEASE);
	while (signal_all(0, SIG_NW))
		signals++, sleep_ms(1);
	for (i = 0; i < SIG_NW; i++)
		pthread_join(sl->thr[i], NULL);
	ASSERT_TRUE(wait_drained(fd, 20000));
	__atomic_store_n(&sl->stop_readers, 1, __ATOMIC_RELEASE);
	while (signal_all(SIG_NW, SIG_NR))
		signals++, sleep_ms(1);
	for (i = SIG_NW; i < SIG_NW + SIG_NR; i++)
		pthread_join(sl->thr[i], NULL);

	for (i = 0; i < SIG_NW; i++) {
		total += sl->sent[i];
		for (s = 0; s < MAXSEQ; s++) {
			unsigned char n = sl->received[(size_t)i * MAXSEQ + s];

			if ((long)s < sl->sent[i] && !n)
				missing++;
			else if ((long)s >= sl->sent[i] && n)
				extra++;
		}
	}
	ASSERT_EQ(0, bpq_get_stats(fd, &st));
	TH_LOG("%ld signals sent, %ld writes and %ld reads interrupted, %ld messages moved in %lld ms",
	       signals, sl->eintr_w, sl->eintr_r, sl->received_total,
	       (long long)(now_ns() - t0) / 1000000);
	FIG_ADD(signals, signals);
	FIG_ADD(eintr, sl->eintr_w + sl->eintr_r);
	FIG_ADD(moved, sl->received_total);
	FIG_ADD(seconds_ms, (now_ns() - t0) / 1000000);

	ASSERT_EQ(0, sl->errors) TH_LOG("last error %d", sl->last_error);
	ASSERT_EQ(0, sl->corrupt);
	ASSERT_EQ(0, sl->duplicates) TH_LOG("an interrupted write queued");
	ASSERT_EQ(0, missing) TH_LOG("an interrupted read consumed");
	ASSERT_EQ(0, extra);
	ASSERT_EQ(0, sl->misordered);
	ASSERT_EQ(total, sl->received_total);
	ASSERT_EQ((__u64)total, st.enqueued_msgs);
	ASSERT_EQ((__u64)total, st.dequeued_msgs);
	ASSERT_EQ(0U, st.depth_msgs);
	ASSERT_TRUE(bpq_stats_balanced(&st));
	ASSERT_LT(0, sl->eintr_w + sl->eintr_r) TH_LOG("no call was interrupted");

	close(fd);
	ASSERT_EQ(0, bpq_destroy(cfd, idx));
	close(cfd);
	free(sl->received);
	free(sl);
}

/* ---- 5. the stream ended and reopened while everything runs ---- */

#define SR_NW		2	/* writers */
#define SR_NR		2	/* readers */
#define SR_NWORKERS	(SR_NW + SR_NR + 3)	/* + flusher, config, stream */

enum { SR_WRITER, SR_READER, SR_FLUSHER, SR_CONFIG, SR_STREAM };

struct srace {
	int idx;
	int stop;		/* atomic: workers return */
	int pause;		/* atomic: workers park at their next turn */
	int parked;		/* atomic */
	int exited;		/* atomic */
	int destroyed;		/* atomic: the queue is being destroyed */
	unsigned char *status;	/* [SR_NW][MAXSEQ]: what the write said */
	unsigned char *received;	/* [SR_NW][MAXSEQ]: times received */
	long ok;		/* messages accepted */
	long received_total;
	long flushed;		/* FLUSH returns, summed */
	long discarded;		/* CANCEL | DISCARD returns, summed */
	long epipe;		/* writes refused by an ended stream */
	long ends_read;		/* reads that returned 0 or ECONNRESET */
	long corrupt, duplicates, misordered;
	long configs;
	long errors;
	char error[160];	/* the first */
	/* the stream thread's model of the stream */
	__u32 state;
	__u32 stream_error;
	__u64 epoch;
	long stream_ops, reopens;
};

struct sworker {
	struct srace *s;
	int role;
	int id;
	pthread_t thr;
};

static void sr_error(struct srace *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void sr_error(struct srace *s, const char *fmt, ...)
{
	va_list ap;

	if (__atomic_fetch_add(&s->errors, 1, __ATOMIC_ACQ_REL))
		return;
	va_start(ap, fmt);
	vsnprintf(s->error, sizeof(s->error), fmt, ap);
	va_end(ap);
}

/* Park while the main thread looks at the quiet queue; false: stop. */
static bool sr_turn(struct srace *s)
{
	if (__atomic_load_n(&s->pause, __ATOMIC_ACQUIRE)) {
		__atomic_add_fetch(&s->parked, 1, __ATOMIC_ACQ_REL);
		while (__atomic_load_n(&s->pause, __ATOMIC_ACQUIRE) &&
		       !__atomic_load_n(&s->stop, __ATOMIC_ACQUIRE))
			sleep_ms(1);
		__atomic_sub_fetch(&s->parked, 1, __ATOMIC_ACQ_REL);
	}
	return !__atomic_load_n(&s->stop, __ATOMIC_ACQUIRE);
}

/* The queue is gone: the worker's call said ENODEV after the destroy. */
static bool sr_gone(struct srace *s, long ret)
{
	return __atomic_load_n(&s->destroyed, __ATOMIC_ACQUIRE) &&
	       (ret == -ENODEV || ret == -ENOENT);
}

static void sr_writer(struct sworker *w, int fd)
{
	struct srace *s = w->s;
	unsigned char *status = s->status + (size_t)w->id * MAXSEQ;
	struct smsg m[3];
	struct bpq_iovec vec[3];
	struct bpq_send_batch b = {
		.size = sizeof(b), .flags = BPQ_IO_TIMEOUT, .timeout_ms = 50,
		.msgs = (uintptr_t)vec,
	};
	unsigned int seed = 11 + w->id;
	bool batch;
	__u32 seq = 0;
	size_t len;
	int i, n, k;
	long ret;

	while (seq + 3 < MAXSEQ && sr_turn(s)) {
		batch = rand_r(&seed) % 2;
		if (!batch) {
			n = 1;
			len = smsg_make(&m[0], w->id, seq);
			ret = bpq_write(fd, &m[0], len);
			k = ret == (long)len;
		} else {
			n = 1 + rand_r(&seed) % 3;
			for (i = 0; i < n; i++) {
				vec[i].base = (uintptr_t)&m[i];
				vec[i].len = smsg_make(&m[i], w->id, seq + i);
				vec[i].__reserved = 0;
			}
			b.count = n;
			ret = bpq_ioctl(fd, BPQ_IOC_SEND_BATCH, &b);
			k = ret > 0 ? (int)ret : 0;
		}
		for (i = 0; i < n; i++)
			status[seq + i] = i < k ? ST_OK : ST_FAILED;
		seq += n;
		if (k) {
			__atomic_add_fetch(&s->ok, k, __ATOMIC_RELAXED);
		} else if (ret == -EPIPE) {
			__atomic_add_fetch(&s->epipe, 1, __ATOMIC_RELAXED);
			usleep(200);
		} else if (ret == -ENOBUFS || ret == -ETIMEDOUT ||
			   ret == -EAGAIN) {
			continue;
		} else if (sr_gone(s, ret)) {
			break;
		} else {
			sr_error(s, "writer %d: %s returned %ld", w->id,
				 batch ? "SEND_BATCH" : "write", ret);
			break;
		}
	}
}

static void sr_got(struct srace *s, const void *buf, ssize_t n, long *last)
{
	struct smsg m;

	memset(&m, 0, sizeof(m));
	if (n > 0 && (size_t)n <= sizeof(m))
		memcpy(&m, buf, n);
	if (!smsg_valid(&m, n, SR_NW)) {
		__atomic_add_fetch(&s->corrupt, 1, __ATOMIC_RELAXED);
		return;
	}
	if (__atomic_fetch_add(&s->received[(size_t)m.prod * MAXSEQ + m.seq],
			       1, __ATOMIC_RELAXED))
		__atomic_add_fetch(&s->duplicates, 1, __ATOMIC_RELAXED);
	if ((long)m.seq <= last[m.prod])
		__atomic_add_fetch(&s->misordered, 1, __ATOMIC_RELAXED);
	last[m.prod] = m.seq;
	__atomic_add_fetch(&s->received_total, 1, __ATOMIC_RELAXED);
}

/* One receive of any kind, what it got counted: its result. */
static long sr_receive(struct srace *s, int fd, int nfd, unsigned int pick,
		       long *last)
{
	unsigned char buf[4 * sizeof(struct smsg)];
	struct bpq_msg_info infos[4];
	struct bpq_recv_batch rb = {
		.size = sizeof(rb), .flags = BPQ_IO_TIMEOUT, .timeout_ms = 20,
		.buf = (uintptr_t)buf, .buf_len = sizeof(buf),
		.max_records = 4, .infos = (uintptr_t)infos,
	};
	long ret;
	int i;

	switch (pick % 3) {
	case 0:
		ret = bpq_read(nfd, buf, sizeof(buf));
		if (ret > 0)
			sr_got(s, buf, ret, last);
		break;
	case 1:
		ret = bpq_recv(fd, buf, sizeof(buf), BPQ_IO_TIMEOUT, 20, NULL);
		if (ret > 0)
			sr_got(s, buf, ret, last);
		break;
	default:
		ret = bpq_ioctl(fd, BPQ_IOC_RECV_BATCH, &rb);
		for (i = 0; i < ret; i++)
			sr_got(s, buf + infos[i].offset, infos[i].len, last);
		break;
	}
	return ret;
}

static void sr_reader(struct sworker *w, int fd, int nfd)
{
	struct srace *s = w->s;
	unsigned int seed = 23 + w->id;
	long last[SR_NW], ret;
	int p;

	for (p = 0; p < SR_NW; p++)
		last[p] = -1;
	while (sr_turn(s)) {
		ret = sr_receive(s, fd, nfd, rand_r(&seed), last);
		if (ret > 0)
			continue;
		if (ret == 0 || ret == -ECONNRESET) {
			__atomic_add_fetch(&s->ends_read, 1, __ATOMIC_RELAXED);
			sleep_ms(1);
		} else if (ret == -EAGAIN) {
			usleep(300);
		} else if (ret == -ETIMEDOUT) {
			continue;
		} else if (sr_gone(s, ret)) {
			break;
		} else {
			sr_error(s, "reader %d: %ld", w->id, ret);
			break;
		}
	}
}

static void sr_flusher(struct sworker *w, int fd)
{
	struct srace *s = w->s;
	unsigned int seed = 31;
	int ret;

	while (sr_turn(s)) {
		ret = bpq_flush(fd);
		if (ret >= 0) {
			__atomic_add_fetch(&s->flushed, ret, __ATOMIC_RELAXED);
		} else if (sr_gone(s, ret)) {
			break;
		} else {
			sr_error(s, "FLUSH: %d", ret);
			break;
		}
		sleep_ms(2 + rand_r(&seed) % 6);
	}
}

/* Strategy, capacity, everything changed; credit granted now and then. */
static void sr_config(struct sworker *w, int fd)
{
	static const char *const names[] = {
		"block", "drop-newest", "drop-oldest", "credit", "adaptive",
	};
	struct srace *s = w->s;
	unsigned int seed = 37;
	struct bpq_config cfg;
	int ret;

	while (sr_turn(s)) {
		random_config(&seed, &cfg);
		if (rand_r(&seed) % 4 == 0)
			ret = bpq_sysfs_write(s->idx, "strategy",
					      names[rand_r(&seed) % 5]);
		else
			ret = bpq_set_config(fd, &cfg);
		if (!ret)
			ret = rand_r(&seed) % 2 ?
			      bpq_sysfs_write(s->idx, "grant", "1000") :
			      bpq_ioctl(fd, BPQ_IOC_GRANT, &(struct bpq_grant){
					.size = sizeof(struct bpq_grant),
					.credits = 1000 });
		if (!ret) {
			s->configs++;
		} else if (sr_gone(s, ret)) {
			break;
		} else {
			sr_error(s, "config: %d", ret);
			break;
		}
		sleep_ms(1 + rand_r(&seed) % 4);
	}
}

enum { SO_COMPLETE, SO_FAIL, SO_CANCEL, SO_DISCARD, SO_REOPEN };

static const char *const so_names[] = {
	"COMPLETE", "FAIL", "CANCEL", "CANCEL|DISCARD", "REOPEN",
};

/*
 * Every kind of end and the reopen, by ioctl or by sysfs, each result
 * checked against the model, which only this thread changes. A reopen
 * of an ended stream may find messages (EBUSY) or none (0, a new epoch).
 */
static void sr_stream(struct sworker *w, int fd)
{
	static const unsigned char pick_op[] = {
		SO_REOPEN, SO_REOPEN, SO_REOPEN, SO_REOPEN, SO_COMPLETE,
		SO_COMPLETE, SO_FAIL, SO_CANCEL, SO_DISCARD, SO_FAIL,
	};
	struct srace *s = w->s;
	unsigned int seed = 41, op;
	__u32 err = 0, flags = 0;
	char text[32];
	bool by_sysfs;
	int ret, want;

	while (sr_turn(s)) {
		op = pick_op[rand_r(&seed) % sizeof(pick_op)];
		by_sysfs = op != SO_DISCARD && rand_r(&seed) % 4 == 0;
		err = 0;
		switch (op) {
		case SO_COMPLETE:
			flags = BPQ_SHUTDOWN_COMPLETE;
			snprintf(text, sizeof(text), "completed");
			break;
		case SO_FAIL:
			err = 1 + rand_r(&seed) % 133;
			if (err == EAGAIN || err == EINTR)
				err = EIO;
			flags = BPQ_SHUTDOWN_FAIL;
			snprintf(text, sizeof(text), "failed %u", err);
			break;
		case SO_CANCEL:
			flags = BPQ_SHUTDOWN_CANCEL;
			snprintf(text, sizeof(text), "cancelled");
			break;
		case SO_DISCARD:
			flags = BPQ_SHUTDOWN_CANCEL | BPQ_SHUTDOWN_DISCARD;
			break;
		default:
			flags = BPQ_SHUTDOWN_REOPEN;
			snprintf(text, sizeof(text), "open");
			break;
		}
		ret = by_sysfs ? bpq_sysfs_write(s->idx, "stream", text) :
				 bpq_shutdown(fd, flags, err);
		if (sr_gone(s, ret))
			break;
		s->stream_ops++;

		switch (op) {
		case SO_COMPLETE:
			want = s->state == BPQ_STREAM_OPEN ||
			       s->state == BPQ_STREAM_COMPLETED ? 0 :
			       s->state == BPQ_STREAM_FAILED ? -EBUSY : -EPIPE;
			if (ret == want && !ret)
				s->state = BPQ_STREAM_COMPLETED;
			break;
		case SO_FAIL:
			want = s->state == BPQ_STREAM_OPEN ||
			       s->state == BPQ_STREAM_FAILED ? 0 :
			       s->state == BPQ_STREAM_COMPLETED ? -EBUSY : -EPIPE;
			if (ret == want && s->state == BPQ_STREAM_OPEN) {
				s->state = BPQ_STREAM_FAILED;
				s->stream_error = err;
			}
			break;
		case SO_CANCEL:
		case SO_DISCARD:
			want = ret >= 0 && op == SO_DISCARD ? ret : 0;
			if (ret == want) {
				s->state = BPQ_STREAM_CANCELLED;
				s->stream_error = 0;
				__atomic_add_fetch(&s->discarded, ret,
						   __ATOMIC_RELAXED);
			}
			break;
		default:
			want = s->state == BPQ_STREAM_OPEN || ret != -EBUSY ?
			       0 : -EBUSY;
			if (ret == 0 && s->state != BPQ_STREAM_OPEN) {
				s->state = BPQ_STREAM_OPEN;
				s->stream_error = 0;
				s->epoch++;
				s->reopens++;
			}
			break;
		}
		if (ret != want) {
			sr_error(s, "%s%s of a %s stream: %d, expected %d",
				 so_names[op], by_sysfs ? " (sysfs)" : "",
				 bpq_stream_name(s->state), ret, want);
			break;
		}
		/* an open stream stays open a while, for the traffic */
		sleep_ms(s->state == BPQ_STREAM_OPEN ? 2 + rand_r(&seed) % 6 :
			 rand_r(&seed) % 2);
	}
}

static void *sr_worker(void *arg)
{
	struct sworker *w = arg;
	struct srace *s = w->s;
	int fd = bpq_open(s->idx, O_RDWR);
	int nfd = bpq_open(s->idx, O_RDWR | O_NONBLOCK);

	if (fd < 0 || nfd < 0) {
		sr_error(s, "open: %s", strerror(errno));
	} else {
		switch (w->role) {
		case SR_WRITER:
			sr_writer(w, fd);
			break;
		case SR_READER:
			sr_reader(w, fd, nfd);
			break;
		case SR_FLUSHER:
			sr_flusher(w, fd);
			break;
		case SR_CONFIG:
			sr_config(w, fd);
			break;
		default:
			sr_stream(w, fd);
			break;
		}
	}
	if (fd >= 0)
		close(fd);
	if (nfd >= 0)
		close(nfd);
	__atomic_add_fetch(&s->exited, 1, __ATOMIC_ACQ_REL);
	return NULL;
}

static bool sr_wait(int *counter, int n, int timeout_ms)
{
	int64_t end = now_ns() + (int64_t)timeout_ms * 1000000;

	while (__atomic_load_n(counter, __ATOMIC_ACQUIRE) != n) {
		if (now_ns() > end)
			return false;
		sleep_ms(1);
	}
	return true;
}

/* Everyone parked: the stream is the model's, every counter adds up. */
static void sr_quiet_check(struct __test_metadata *_metadata,
			   struct srace *s, int fd)
{
	unsigned char buf[4 * sizeof(struct smsg)];
	struct bpq_stats st;
	char c = 'p';
	struct bpq_iovec vec = { .base = (uintptr_t)&c, .len = 1 };
	struct bpq_send_batch b = {
		.size = sizeof(b), .flags = BPQ_IO_NONBLOCK,
		.msgs = (uintptr_t)&vec, .count = 1,
	};

	ASSERT_EQ(0, s->errors) TH_LOG("%s", s->error);
	ASSERT_EQ(0, bpq_get_stats(fd, &st));
	ASSERT_TRUE(bpq_stats_balanced(&st))
		TH_LOG("enqueued %llu != dequeued %llu + dropped %llu + flushed %llu + depth %llu",
		       (unsigned long long)st.enqueued_msgs,
		       (unsigned long long)st.dequeued_msgs,
		       (unsigned long long)st.dropped_oldest,
		       (unsigned long long)st.flushed,
		       (unsigned long long)st.depth_msgs);
	ASSERT_EQ((__u64)s->ok, st.enqueued_msgs);
	ASSERT_EQ((__u64)(s->received_total + s->corrupt), st.dequeued_msgs);
	ASSERT_EQ((__u64)(s->flushed + s->discarded), st.flushed);
	ASSERT_EQ(s->state, st.stream)
		TH_LOG("stream %s, the model says %s",
		       bpq_stream_name(st.stream), bpq_stream_name(s->state));
	ASSERT_EQ(s->stream_error, st.stream_error);
	ASSERT_EQ(s->epoch, st.stream_epoch);
	if (s->state == BPQ_STREAM_OPEN)
		return;
	ASSERT_EQ(-EPIPE, bpq_ioctl(fd, BPQ_IOC_SEND_BATCH, &b));
	if (!st.depth_msgs) {
		ASSERT_EQ(s->state == BPQ_STREAM_FAILED ? -ECONNRESET : 0,
			  bpq_recv(fd, buf, sizeof(buf), BPQ_IO_NONBLOCK, 0,
				   NULL));
	}
}

TEST_F_TIMEOUT(stress, stream_ends_raced, 300)
{
	struct sigaction ign = { .sa_handler = SIG_IGN };
	int rounds = scaled_count(4, 2), round, i, cfd, fd;
	struct sworker w[SR_NWORKERS];
	int64_t t0 = now_ns(), end;
	long checks = 0, late, last[SR_NW];
	struct bpq_stats st;
	struct srace *s;
	size_t k;

	/* the writers' write() raises SIGPIPE on an ended stream */
	sigemptyset(&ign.sa_mask);
	ASSERT_EQ(0, sigaction(SIGPIPE, &ign, NULL));
	cfd = bpq_control_open();
	ASSERT_LE(0, cfd);
	for (round = 0; round < rounds; round++) {
		bool destroy = round % 2;
		struct bpq_config cfg;

		s = calloc(1, sizeof(*s));
		ASSERT_TRUE(s != NULL);
		s->status = calloc(SR_NW, MAXSEQ);
		s->received = calloc(SR_NW, MAXSEQ);
		ASSERT_TRUE(s->status && s->received);
		s->idx = create_queue(cfd, "stream");
		ASSERT_LE(0, s->idx);
		fd = bpq_open(s->idx, O_RDWR);
		ASSERT_LE(0, fd);
		bpq_default_config(&cfg);
		cfg.capacity_msgs = 16;
		cfg.write_timeout_ms = 50;
		ASSERT_EQ(0, bpq_set_config(fd, &cfg));

		for (i = 0; i < SR_NWORKERS; i++) {
			w[i] = (struct sworker){ .s = s };
			if (i < SR_NW) {
				w[i].role = SR_WRITER;
				w[i].id = i;
			} else if (i < SR_NW + SR_NR) {
				w[i].role = SR_READER;
				w[i].id = i - SR_NW;
			} else {
				w[i].role = SR_FLUSHER + i - SR_NW - SR_NR;
			}
			ASSERT_EQ(0, pthread_create(&w[i].thr, NULL, sr_worker,
						    &w[i]));
		}

		end = now_ns() + (int64_t)budget_ms(5000) / rounds * 1000000;
		while (now_ns() < end) {
			sleep_ms(20 + rand() % 40);
			__atomic_store_n(&s->pause, 1, __ATOMIC_RELEASE);
			ASSERT_TRUE(sr_wait(&s->parked, SR_NWORKERS -
					    __atomic_load_n(&s->exited,
							    __ATOMIC_ACQUIRE),
					    10000))
				TH_LOG("round %d: workers not parked: %s", round,
				       s->error);
			sr_quiet_check(_metadata, s, fd);
			checks++;
			__atomic_store_n(&s->pause, 0, __ATOMIC_RELEASE);
		}

		if (destroy) {
			/* everything still running: ENODEV ends them */
			__atomic_store_n(&s->destroyed, 1, __ATOMIC_RELEASE);
			ASSERT_EQ(0, bpq_destroy(cfd, s->idx));
			FIG_ADD(destroys, 1);
		} else {
			__atomic_store_n(&s->stop, 1, __ATOMIC_RELEASE);
		}
		ASSERT_TRUE(sr_wait(&s->exited, SR_NWORKERS, 10000))
			TH_LOG("round %d: workers still running after the %s",
			       round, destroy ? "destroy" : "stop");
		for (i = 0; i < SR_NWORKERS; i++)
			pthread_join(w[i].thr, NULL);
		ASSERT_EQ(0, s->errors) TH_LOG("round %d: %s", round, s->error);

		if (!destroy) {
			/* what is left, then the end (or EAGAIN, open) */
			long ret;

			for (i = 0; i < SR_NW; i++)
				last[i] = -1;
			sr_quiet_check(_metadata, s, fd);
			while ((ret = sr_receive(s, fd, fd, 1, last)) > 0)
				;
			ASSERT_EQ(s->state == BPQ_STREAM_OPEN ? -ETIMEDOUT :
				  s->state == BPQ_STREAM_FAILED ? -ECONNRESET :
				  0, ret);
			ASSERT_EQ(0, bpq_get_stats(fd, &st));
			ASSERT_EQ(0U, st.depth_msgs);
			/* every message accepted: received or discarded */
			ASSERT_EQ((__u64)s->ok, s->received_total +
				  st.dropped_oldest + st.flushed);
			for (k = 0, late = 0; k < (size_t)SR_NW * MAXSEQ; k++)
				if (s->received[k] && s->status[k] != ST_OK)
					late++;
			ASSERT_EQ(0, late)
				TH_LOG("received messages whose write failed");
		}
		ASSERT_EQ(0, s->corrupt);
		ASSERT_EQ(0, s->duplicates);
		ASSERT_EQ(0, s->misordered);
		TH_LOG("round %d%s: %ld accepted, %ld received, %ld EPIPE, %ld ends read, %ld flushed, %ld discarded, %ld stream ops (%ld reopens), %ld configs",
		       round, destroy ? " (destroyed)" : "", s->ok,
		       s->received_total, s->epipe, s->ends_read, s->flushed,
		       s->discarded, s->stream_ops, s->reopens, s->configs);
		FIG_ADD(moved, s->received_total);
		FIG_ADD(configs, s->configs);
		FIG_ADD(stream_ops, s->stream_ops);
		FIG_ADD(reopens, s->reopens);
		close(fd);
		if (!destroy) {
			ASSERT_EQ(0, bpq_destroy(cfd, s->idx));
		}
		free(s->status);
		free(s->received);
		free(s);
	}
	close(cfd);
	FIG_ADD(seconds_ms, (now_ns() - t0) / 1000000);
	TH_LOG("%d rounds, %ld quiet points checked, in %lld ms", rounds,
	       checks, (long long)(now_ns() - t0) / 1000000);
}

TEST_HARNESS_MAIN
