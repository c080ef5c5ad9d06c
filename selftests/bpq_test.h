/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Helpers shared by the bpq selftests.
 *
 * Functions here return 0 or a non-negative result on success and -errno on
 * failure, so tests can write ASSERT_EQ(-EINVAL, bpq_set_config(...)).
 * They never call ASSERT_*: that is left to the tests.
 */
#ifndef BPQ_TEST_H
#define BPQ_TEST_H

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <linux/bpq.h>
#include <linux/capability.h>
#include <linux/userfaultfd.h>

#define BPQ_CONTROL_PATH	"/dev/bpq-control"
#define BPQ_SYSFS_CLASS		"/sys/class/bpq"

#define BPQ_DEF_CAPACITY_MSGS	256
#define BPQ_DEF_CAPACITY_BYTES	1048576
#define BPQ_DEF_MAX_MSG_SIZE	65536

#define ARRAY_LEN(a)	(sizeof(a) / sizeof((a)[0]))

static inline const char *bpq_strategy_name(__u32 strategy)
{
	static const char *const names[] = {
		[BPQ_STRATEGY_BLOCK] = "block",
		[BPQ_STRATEGY_DROP_NEWEST] = "drop-newest",
		[BPQ_STRATEGY_DROP_OLDEST] = "drop-oldest",
		[BPQ_STRATEGY_CREDIT] = "credit",
		[BPQ_STRATEGY_ADAPTIVE] = "adaptive",
	};

	return strategy < ARRAY_LEN(names) ? names[strategy] : "?";
}

/* ---- time ---- */

static inline int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static inline void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/* ---- ioctl wrappers ---- */

static inline int bpq_ioctl(int fd, unsigned long cmd, void *arg)
{
	int ret = ioctl(fd, cmd, arg);

	return ret < 0 ? -errno : ret;
}

static inline void bpq_default_config(struct bpq_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->size = sizeof(*cfg);
	cfg->strategy = BPQ_STRATEGY_BLOCK;
	cfg->capacity_msgs = BPQ_DEF_CAPACITY_MSGS;
	cfg->capacity_bytes = BPQ_DEF_CAPACITY_BYTES;
	cfg->max_msg_size = BPQ_DEF_MAX_MSG_SIZE;
	cfg->high_watermark = 100;
	cfg->low_watermark = 100;
	cfg->write_timeout_ms = 0;
	cfg->auto_credit = 0;
	cfg->target_latency_us = 10000;
	cfg->min_rate = 100;
	cfg->max_rate = 1000000;
	cfg->adjust_interval_ms = 100;
	cfg->hangup = BPQ_HANGUP_NONE;
	cfg->ack_mode = BPQ_ACK_MODE_ACK;
	cfg->initial_cwnd = 10;
	cfg->min_cwnd = 1;
	cfg->max_cwnd = 1U << 20;
	cfg->initial_ssthresh = 1U << 20;
	cfg->ack_timeout_ms = 1000;
	cfg->increase_pct = 50;
	cfg->decrease_pct = 50;
}

static inline int bpq_get_config(int fd, struct bpq_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->size = sizeof(*cfg);
	return bpq_ioctl(fd, BPQ_IOC_GET_CONFIG, cfg);
}

static inline int bpq_set_config(int fd, const struct bpq_config *cfg)
{
	struct bpq_config c = *cfg;

	c.size = sizeof(c);
	return bpq_ioctl(fd, BPQ_IOC_SET_CONFIG, &c);
}

/* Defaults, with the given strategy and message capacity (0: default). */
static inline int bpq_configure(int fd, __u32 strategy, __u32 capacity_msgs)
{
	struct bpq_config cfg;

	bpq_default_config(&cfg);
	cfg.strategy = strategy;
	if (capacity_msgs)
		cfg.capacity_msgs = capacity_msgs;
	return bpq_set_config(fd, &cfg);
}

/* Change the write timeout of the current configuration. */
static inline int bpq_set_write_timeout(int fd, __u32 ms)
{
	struct bpq_config cfg;
	int ret = bpq_get_config(fd, &cfg);

	if (ret)
		return ret;
	cfg.write_timeout_ms = ms;
	return bpq_set_config(fd, &cfg);
}

static inline int bpq_get_stats(int fd, struct bpq_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->size = sizeof(*st);
	return bpq_ioctl(fd, BPQ_IOC_GET_STATS, st);
}

static inline int bpq_simple_cmd(int fd, unsigned long cmd)
{
	struct bpq_simple s = { .size = sizeof(s) };

	return bpq_ioctl(fd, cmd, &s);
}

static inline int bpq_flush(int fd)
{
	return bpq_simple_cmd(fd, BPQ_IOC_FLUSH);
}

static inline int bpq_reset_stats(int fd)
{
	return bpq_simple_cmd(fd, BPQ_IOC_RESET_STATS);
}

/*
 * Put a queue back to its load-time state: default config, empty, its
 * stream open, counters zeroed (but for stream_epoch).
 */
static inline int bpq_reset(int fd)
{
	struct bpq_shutdown reopen = {
		.size = sizeof(reopen),
		.flags = BPQ_SHUTDOWN_REOPEN,
	};
	struct bpq_config cfg;
	int ret;

	bpq_default_config(&cfg);
	ret = bpq_set_config(fd, &cfg);
	if (ret < 0)
		return ret;
	ret = bpq_flush(fd);
	if (ret < 0)
		return ret;
	ret = bpq_ioctl(fd, BPQ_IOC_SHUTDOWN, &reopen);
	if (ret < 0)
		return ret;
	return bpq_reset_stats(fd);
}

/* Does the snapshot satisfy enqueued = dequeued + dropped_oldest + flushed + depth? */
static inline bool bpq_stats_balanced(const struct bpq_stats *st)
{
	return st->enqueued_msgs == st->dequeued_msgs + st->dropped_oldest +
				    st->flushed + st->depth_msgs;
}

static inline __u64 bpq_depth(int fd)
{
	struct bpq_stats st;

	if (bpq_get_stats(fd, &st))
		return (__u64)-1;
	return st.depth_msgs;
}

static inline int bpq_recv(int fd, void *buf, __u32 len, __u32 flags,
			   __u32 timeout_ms, struct bpq_msg_info *info)
{
	struct bpq_recv r = {
		.size = sizeof(r),
		.flags = flags,
		.buf = (uintptr_t)buf,
		.buf_len = len,
		.timeout_ms = timeout_ms,
	};
	int ret = bpq_ioctl(fd, BPQ_IOC_RECV, &r);

	if (info)
		*info = r.info;
	return ret;
}

/* ---- streams ---- */

/* BPQ_IOC_SHUTDOWN with @flags (BPQ_SHUTDOWN_*) and @error: its result. */
static inline int bpq_shutdown(int fd, __u32 flags, __u32 error)
{
	struct bpq_shutdown s = {
		.size = sizeof(s),
		.flags = flags,
		.error = error,
	};

	return bpq_ioctl(fd, BPQ_IOC_SHUTDOWN, &s);
}

/* enum bpq_stream_state as the sysfs attribute "stream" begins. */
static inline const char *bpq_stream_name(__u32 state)
{
	static const char *const names[] = {
		[BPQ_STREAM_OPEN] = "open",
		[BPQ_STREAM_COMPLETED] = "completed",
		[BPQ_STREAM_FAILED] = "failed",
		[BPQ_STREAM_CANCELLED] = "cancelled",
	};

	return state < ARRAY_LEN(names) ? names[state] : "?";
}

/* enum bpq_hangup as the sysfs attribute "hangup" shows it. */
static inline const char *bpq_hangup_name(__u32 hangup)
{
	static const char *const names[] = {
		[BPQ_HANGUP_NONE] = "none",
		[BPQ_HANGUP_WRITERS] = "writers",
		[BPQ_HANGUP_READERS] = "readers",
		[BPQ_HANGUP_BOTH] = "both",
	};

	return hangup < ARRAY_LEN(names) ? names[hangup] : "?";
}

/* The stream's state (enum bpq_stream_state) or -errno. */
static inline int bpq_stream_state(int fd)
{
	struct bpq_stats st;
	int ret = bpq_get_stats(fd, &st);

	return ret ? ret : (int)st.stream;
}

/* Change the hangup setting of the current configuration. */
static inline int bpq_set_hangup(int fd, __u32 hangup)
{
	struct bpq_config cfg;
	int ret = bpq_get_config(fd, &cfg);

	if (ret)
		return ret;
	cfg.hangup = hangup;
	return bpq_set_config(fd, &cfg);
}

/* Write one message; returns the byte count or -errno. */
static inline ssize_t bpq_write(int fd, const void *buf, size_t len)
{
	ssize_t ret = write(fd, buf, len);

	return ret < 0 ? -errno : ret;
}

static inline ssize_t bpq_read(int fd, void *buf, size_t len)
{
	ssize_t ret = read(fd, buf, len);

	return ret < 0 ? -errno : ret;
}

/* ---- devices ---- */

static inline int bpq_open(int index, int flags)
{
	char path[64];

	snprintf(path, sizeof(path), "/dev/bpq%d", index);
	return open(path, flags | O_CLOEXEC);
}

/* Wait until /dev/bpqN exists (present == true) or is gone. */
static inline bool bpq_wait_node(int index, bool present, int timeout_ms)
{
	char path[64];
	int64_t end = now_ns() + (int64_t)timeout_ms * 1000000;

	snprintf(path, sizeof(path), "/dev/bpq%d", index);
	for (;;) {
		if ((access(path, F_OK) == 0) == present)
			return true;
		if (now_ns() > end)
			return false;
		sleep_ms(5);
	}
}

static inline int bpq_control_open(void)
{
	return open(BPQ_CONTROL_PATH, O_RDWR | O_CLOEXEC);
}

/* Create a queue; returns its index or -errno. */
static inline int bpq_create(int cfd, const char *name)
{
	struct bpq_create c = { .size = sizeof(c) };

	size_t len = strlen(name);

	memcpy(c.name, name, len < sizeof(c.name) ? len : sizeof(c.name));
	return bpq_ioctl(cfd, BPQ_IOC_CREATE, &c);
}

static inline int bpq_destroy(int cfd, int index)
{
	struct bpq_destroy d = { .size = sizeof(d), .index = index };

	return bpq_ioctl(cfd, BPQ_IOC_DESTROY, &d);
}

/*
 * A queue of a test's own: the control device open in *@cfd, the queue,
 * "PREFIX-PID", created and its node there: its index, or -errno.
 */
static inline int bpq_test_queue(const char *prefix, int *cfd)
{
	char name[BPQ_NAME_MAX];
	int q;

	*cfd = bpq_control_open();
	if (*cfd < 0)
		return -errno;
	snprintf(name, sizeof(name), "%s-%d", prefix, getpid());
	q = bpq_create(*cfd, name);
	if (q >= 0 && !bpq_wait_node(q, true, 5000))
		return -ETIMEDOUT;
	return q;
}

/* Close @fd (if open), destroy @q and close @cfd: 0, or destroy's -errno */
static inline int bpq_test_queue_end(int cfd, int q, int fd)
{
	int ret = 0;

	if (fd >= 0)
		close(fd);
	if (q >= 0)
		ret = bpq_destroy(cfd, q);
	if (cfd >= 0)
		close(cfd);
	return ret;
}

/* ---- small files ---- */

/* One read() of a small file into buf, NUL-terminated: length or -errno. */
static inline ssize_t bpq_read_file(const char *path, char *buf, size_t len)
{
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	if (n < 0)
		n = -errno;
	close(fd);
	if (n >= 0)
		buf[n] = '\0';
	return n;
}

/* One value (sysfs, procfs, debugfs): the file less its trailing newline. */
static inline ssize_t bpq_read_value(const char *path, char *buf, size_t len)
{
	ssize_t n = bpq_read_file(path, buf, len);

	if (n > 0 && buf[n - 1] == '\n')
		buf[--n] = '\0';
	return n;
}

/* Write a string to a file in one write(); 0 or -errno. */
static inline int bpq_write_file(const char *path, const char *val)
{
	ssize_t n;
	int fd, ret = 0;

	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = write(fd, val, strlen(val));
	if (n < 0)
		ret = -errno;
	else if ((size_t)n != strlen(val))
		ret = -EIO;
	close(fd);
	return ret;
}

/* ---- sysfs ---- */

static inline void bpq_sysfs_path(char *path, size_t len, int index,
				  const char *attr)
{
	snprintf(path, len, BPQ_SYSFS_CLASS "/bpq%d/%s", index, attr);
}

/* Read a sysfs attribute into buf (NUL-terminated, newline stripped). */
static inline int bpq_sysfs_read(int index, const char *attr, char *buf,
				 size_t len)
{
	char path[128];
	ssize_t n;

	bpq_sysfs_path(path, sizeof(path), index, attr);
	n = bpq_read_value(path, buf, len);
	return n < 0 ? n : 0;
}

/* Returns the value, or (__u64)-1 if the attribute cannot be read. */
static inline __u64 bpq_sysfs_u64(int index, const char *attr)
{
	char buf[64], *end;
	unsigned long long v;

	if (bpq_sysfs_read(index, attr, buf, sizeof(buf)))
		return (__u64)-1;
	errno = 0;
	v = strtoull(buf, &end, 0);
	if (errno || end == buf || *end)
		return (__u64)-1;
	return v;
}

/* Write a string to a sysfs attribute in one write(); 0 or -errno. */
static inline int bpq_sysfs_write(int index, const char *attr, const char *val)
{
	char path[128];

	bpq_sysfs_path(path, sizeof(path), index, attr);
	return bpq_write_file(path, val);
}

/* ---- module parameters ---- */

#define BPQ_PARAM_DIR		"/sys/module/bpq/parameters"

/* A parameter's value, newline stripped: its length or -errno. */
static inline ssize_t bpq_param_read(const char *name, char *buf, size_t len)
{
	char path[128];

	snprintf(path, sizeof(path), BPQ_PARAM_DIR "/%s", name);
	return bpq_read_value(path, buf, len);
}

/* Set a parameter in one write(); 0 or -errno. */
static inline int bpq_param_write(const char *name, const char *val)
{
	char path[128];

	snprintf(path, sizeof(path), BPQ_PARAM_DIR "/%s", name);
	return bpq_write_file(path, val);
}

/* ---- tasks ---- */

/* Remove capability @cap from the effective and permitted sets. */
static inline int drop_cap(int cap)
{
	struct __user_cap_header_struct hdr = {
		.version = _LINUX_CAPABILITY_VERSION_3,
	};
	struct __user_cap_data_struct data[2];

	if (syscall(SYS_capget, &hdr, data))
		return -errno;
	data[cap / 32].effective &= ~(1U << (cap % 32));
	data[cap / 32].permitted &= ~(1U << (cap % 32));
	data[cap / 32].inheritable &= ~(1U << (cap % 32));
	if (syscall(SYS_capset, &hdr, data))
		return -errno;
	return 0;
}

/* Pages that fault until we supply them (userfaultfd). */
struct uffd_area {
	int fd;
	unsigned char *area;
	size_t len;
};

/* NULL, or why there is no userfaultfd (a reason to skip). */
static inline const char *uffd_open(struct uffd_area *u, int pages)
{
	struct uffdio_api api = { .api = UFFD_API };
	struct uffdio_register reg = { .mode = UFFDIO_REGISTER_MODE_MISSING };

	u->len = pages * sysconf(_SC_PAGESIZE);
	u->fd = syscall(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (u->fd < 0)
		return "no userfaultfd";
	if (ioctl(u->fd, UFFDIO_API, &api))
		return "UFFDIO_API failed";
	u->area = mmap(NULL, u->len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (u->area == MAP_FAILED)
		return "mmap failed";
	reg.range.start = (uintptr_t)u->area;
	reg.range.len = u->len;
	if (ioctl(u->fd, UFFDIO_REGISTER, &reg))
		return "UFFDIO_REGISTER failed";
	return NULL;
}

static inline bool uffd_fault_seen(struct uffd_area *u, int timeout_ms)
{
	struct pollfd pfd = { .fd = u->fd, .events = POLLIN };
	struct uffd_msg msg;

	return poll(&pfd, 1, timeout_ms) == 1 &&
	       read(u->fd, &msg, sizeof(msg)) == sizeof(msg) &&
	       msg.event == UFFD_EVENT_PAGEFAULT;
}

static inline int uffd_zero(struct uffd_area *u, void *page)
{
	struct uffdio_zeropage z = {
		.range = { .start = (uintptr_t)page,
			   .len = sysconf(_SC_PAGESIZE) },
	};

	return ioctl(u->fd, UFFDIO_ZEROPAGE, &z) ? -errno : 0;
}

static inline pid_t bpq_gettid(void)
{
	return (pid_t)syscall(SYS_gettid);
}

/*
 * Is task @tid (a thread of ours or a child) sleeping (state S) inside
 * system call @nr (-1: any)?  The syscall check uses /proc/TID/syscall; if
 * that file is missing only the state is checked.
 */
static inline bool task_sleeping_in(pid_t tid, long nr)
{
	char path[64], buf[256], *p;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", tid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	p = strrchr(buf, ')');
	if (!p || p[1] != ' ' || p[2] != 'S')
		return false;

	if (nr < 0)
		return true;
	snprintf(path, sizeof(path), "/proc/%d/syscall", tid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return true;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return true;
	buf[n] = '\0';
	return strtol(buf, NULL, 10) == nr;
}

/* Wait until @tid has been seen sleeping in syscall @nr twice in a row. */
static inline bool wait_task_sleeping(pid_t tid, long nr, int timeout_ms)
{
	int64_t end = now_ns() + (int64_t)timeout_ms * 1000000;
	int seen = 0;

	while (now_ns() < end) {
		seen = task_sleeping_in(tid, nr) ? seen + 1 : 0;
		if (seen >= 2)
			return true;
		sleep_ms(2);
	}
	return false;
}

/*
 * One blocking read, write, RECV, RECV_BATCH or SEND_BATCH (of one
 * message) on a helper thread, so the main thread can watch it sleep and
 * wake it. A RECV_BATCH returns the length of its first message, as the
 * others do.
 */
enum io_op { IO_READ, IO_WRITE, IO_RECV, IO_RECV_BATCH, IO_SEND_BATCH };

struct io_thread {
	pthread_t thr;
	int fd;
	enum io_op op;
	size_t len;
	unsigned char buf[256];
	pid_t tid;		/* set before the call */
	int started;		/* atomic: tid valid, call about to start */
	int done;		/* atomic: call returned */
	ssize_t ret;		/* result, -errno on failure */
	int64_t t_start, t_end;
};

static inline void *io_thread_fn(void *arg)
{
	struct io_thread *t = arg;
	struct bpq_recv r = {
		.size = sizeof(r), .buf = (uintptr_t)t->buf, .buf_len = t->len,
	};
	struct bpq_msg_info info;
	struct bpq_recv_batch rb = {
		.size = sizeof(rb), .buf = (uintptr_t)t->buf,
		.buf_len = t->len, .max_records = 1, .infos = (uintptr_t)&info,
	};
	struct bpq_iovec vec = { .base = (uintptr_t)t->buf, .len = t->len };
	struct bpq_send_batch sb = {
		.size = sizeof(sb), .msgs = (uintptr_t)&vec, .count = 1,
	};
	ssize_t ret;

	t->tid = bpq_gettid();
	t->t_start = now_ns();
	__atomic_store_n(&t->started, 1, __ATOMIC_RELEASE);
	switch (t->op) {
	case IO_READ:
		ret = read(t->fd, t->buf, t->len);
		break;
	case IO_WRITE:
		ret = write(t->fd, t->buf, t->len);
		break;
	case IO_RECV:
		ret = ioctl(t->fd, BPQ_IOC_RECV, &r);
		break;
	case IO_RECV_BATCH:
		ret = ioctl(t->fd, BPQ_IOC_RECV_BATCH, &rb);
		if (ret > 0)
			ret = info.len;
		break;
	default:
		ret = ioctl(t->fd, BPQ_IOC_SEND_BATCH, &sb);
		if (ret > 0)
			ret = t->len;
		break;
	}
	t->ret = ret < 0 ? -errno : ret;
	t->t_end = now_ns();
	__atomic_store_n(&t->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

/* Start the call; returns 0 once the thread is about to make it. */
static inline int io_thread_start(struct io_thread *t, int fd, enum io_op op,
				  const void *data, size_t len)
{
	int ret;

	memset(t, 0, sizeof(*t));
	t->fd = fd;
	t->op = op;
	t->len = len;
	if (data)
		memcpy(t->buf, data, len < sizeof(t->buf) ? len : sizeof(t->buf));
	ret = pthread_create(&t->thr, NULL, io_thread_fn, t);
	if (ret)
		return -ret;
	while (!__atomic_load_n(&t->started, __ATOMIC_ACQUIRE))
		sched_yield();
	return 0;
}

static inline bool io_thread_done(struct io_thread *t)
{
	return __atomic_load_n(&t->done, __ATOMIC_ACQUIRE);
}

/* Wait for the call to return; false if it did not within timeout_ms. */
static inline bool io_thread_wait(struct io_thread *t, int timeout_ms)
{
	int64_t end = now_ns() + (int64_t)timeout_ms * 1000000;

	while (!io_thread_done(t)) {
		if (now_ns() > end)
			return false;
		sleep_ms(1);
	}
	pthread_join(t->thr, NULL);
	return true;
}

/* Is the thread sleeping in its read/write/ioctl? */
static inline bool io_thread_blocked(struct io_thread *t, int timeout_ms)
{
	return wait_task_sleeping(t->tid, t->op == IO_READ ? SYS_read :
					  t->op == IO_WRITE ? SYS_write :
					  SYS_ioctl, timeout_ms);
}

static inline int count_done(struct io_thread *t, int n)
{
	int i, done = 0;

	for (i = 0; i < n; i++)
		done += io_thread_done(&t[i]);
	return done;
}

/* ---- figures ---- */

/*
 * BPQ_FIGURES(type) declares fig, a type in shared memory that the tests
 * the harness forks add to with FIG_ADD(), and has figures_print(), which
 * the test defines, print it ("# figures: ..." lines) once, in the parent,
 * when the program exits. fig is NULL if the mapping failed; a test sets
 * it NULL for no figures. fig_start_ns is when the program started.
 */
#define BPQ_FIGURES(type)						\
static type *fig;							\
static pid_t fig_parent;						\
static int64_t fig_start_ns;						\
static void figures_print(void);					\
__attribute__((constructor)) static void figures_init(void)		\
{									\
	fig = mmap(NULL, sizeof(*fig), PROT_READ | PROT_WRITE,		\
		   MAP_SHARED | MAP_ANONYMOUS, -1, 0);			\
	if (fig == MAP_FAILED)						\
		fig = NULL;						\
	fig_parent = getpid();						\
	fig_start_ns = now_ns();					\
}									\
__attribute__((destructor)) static void figures_exit(void)		\
{									\
	if (fig && getpid() == fig_parent)				\
		figures_print();					\
}

#define FIG_ADD(field, n) \
	do { if (fig) __atomic_add_fetch(&fig->field, (n), __ATOMIC_RELAXED); } while (0)

/* ---- payloads ---- */

static inline uint32_t bpq_crc32(uint32_t crc, const void *data, size_t len)
{
	const unsigned char *p = data;
	int k;

	crc = ~crc;
	while (len--) {
		crc ^= *p++;
		for (k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0xEDB88320U & -(crc & 1));
	}
	return ~crc;
}

/* Deterministic bytes for message @n: easy to generate and to check. */
static inline void fill_pattern(void *buf, size_t len, unsigned int n)
{
	unsigned char *p = buf;
	size_t i;

	for (i = 0; i < len; i++)
		p[i] = (unsigned char)(n * 31 + i * 7 + (i >> 8));
}

static inline bool check_pattern(const void *buf, size_t len, unsigned int n)
{
	const unsigned char *p = buf;
	size_t i;

	for (i = 0; i < len; i++)
		if (p[i] != (unsigned char)(n * 31 + i * 7 + (i >> 8)))
			return false;
	return true;
}

/* Write message @n of @len (at most 256) pattern bytes: the count or -errno. */
static inline ssize_t bpq_write_pattern(int fd, unsigned int n, size_t len)
{
	unsigned char buf[256];

	fill_pattern(buf, len, n);
	return bpq_write(fd, buf, len);
}

/* Read one message and check it is message @n of @len bytes: 0 or -errno. */
static inline int bpq_read_pattern(int fd, unsigned int n, size_t len)
{
	unsigned char buf[512];
	ssize_t ret = bpq_read(fd, buf, sizeof(buf));

	if (ret < 0)
		return ret;
	if ((size_t)ret != len || !check_pattern(buf, len, n))
		return -EBADMSG;
	return 0;
}

static inline short poll_events(int fd)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN | POLLOUT | POLLPRI |
				       POLLRDNORM | POLLWRNORM };

	if (poll(&pfd, 1, 0) < 0)
		return -1;
	return pfd.revents;
}

/* ---- acknowledgments ---- */

/* BPQ_IOC_ACK: the number acknowledged, or -errno. */
static inline int bpq_ack(int fd, __u32 flags, __u32 count, __u64 timestamp_ns)
{
	struct bpq_ack a = {
		.size = sizeof(a),
		.flags = flags,
		.count = count,
		.timestamp_ns = timestamp_ns,
	};

	return bpq_ioctl(fd, BPQ_IOC_ACK, &a);
}

#endif /* BPQ_TEST_H */
