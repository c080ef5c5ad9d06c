// SPDX-License-Identifier: GPL-2.0
/*
 * bpq-bench: bpq against its peers (pipe in stream and packet mode,
 * AF_UNIX SOCK_SEQPACKET, POSIX mqueue, and the batched modes of pipes and
 * sockets) in one run, by the method that Documentation/bench.md
 * describes: calibration probes first, then workloads W1-W9, WB (blocked
 * writers), WP (poll readers), MEM (kernel memory per message, by size)
 * and Q (100,000 queues), every measurement repeated with the transports
 * interleaved (A B A B ...), reported as the median and the spread
 * (max - min) / median. W1 at 64 B
 * also runs bpq-plain with the module parameter metrics off
 * (bpq-plain-nometrics, interleaved with the others): the difference is
 * what bpq's per-message counters and latency histogram cost.
 *
 * bpq-ring: the producers send as bpq-batched does (BPQ_IOC_SEND_BATCH,
 * BATCH at a time; W3 one write() per message, as bpq-batched there),
 * the consumer takes the messages from a receive ring with libbpq
 * (bpq_ring_peek(), bpq_ring_advance(), bpq_ring_wait() when empty). It
 * reads each message in place, where the others copy it out: that copy is
 * what a ring saves. Ring and queue together hold DEPTH messages, as
 * every other transport does (see ring_bytes_for()).
 *
 * Every message carries an 8-byte header: producer id in the top 8 bits,
 * a sequence number from 1 in the low 56. Receivers check it in every run
 * and the program fails (exit 1) on any loss, duplicate or reorder that
 * the workload does not allow. Every consumer reads every byte of every
 * message (a checksum).
 *
 * Output: a table on stdout and, with -o FILE, JSON:
 *   { "calibration": {...}, "records": [ {workload, transport, size,
 *     producers, consumers, msgs_per_s, mb_per_s, p50_ns, p99_ns, runs,
 *     spread}, ... ], "extra": [ {workload, transport, size, producers,
 *     consumers, metric, value}, ... ] }
 * W4 records (one-way latency, one per transport and load) also have
 * p999_ns, load (0.1, 0.5, 0.9 of the transport's saturation rate),
 * offered_msgs_per_s and max_backlog; their msgs_per_s is the rate the
 * consumer received at.
 * "extra" holds what has no field in a record: context switches and
 * wake-ups per message, drop counts, fairness, kernel memory per message,
 * the metrics cost taken per repetition, W4's saturation rates.
 *
 * A first round of the first workload runs uncounted (the emulator
 * translates code on first use).
 *
 * --icount: the instruction-counting pass, for a guest that QEMU runs with
 * -icount shift=0,sleep=off on one vCPU, where one nanosecond of
 * CLOCK_MONOTONIC is one executed instruction. It checks that claim on a
 * loop of known length, then runs W1 at 64 B only, and reports for every
 * transport instructions_per_msg (guest instructions per message, writer
 * and reader together: elapsed ns / messages) instead of rates; its JSON
 * records carry "mode": "icount". Without icount the same figures are
 * nanoseconds.
 *
 * Needs root (sysctls, bpq queue creation) and bpq.ko loaded.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <mqueue.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "bpq.h"

#define DEPTH		1024		/* messages, every transport */
#define BATCH		64		/* messages per batched call */
#define STOP		UINT64_MAX	/* header of an end marker */
#define SEQ_MASK	((1ULL << 56) - 1)
#define MAX_REPS	32
#define MAX_PROD	256		/* producer ids fit the header's 8 bits */

/*
 * T_BPQN: bpq-plain with the module parameter metrics off while it runs.
 * The batched peers: T_PIPE_SB writes BATCH messages per write() and reads
 * up to BATCH per read(); T_UNIXM sends and receives BATCH per
 * sendmmsg()/recvmmsg().
 */
enum {
	T_PIPE_S, T_PIPE_P, T_UNIX, T_MQ, T_BPQ, T_BPQB, T_BPQN, T_BPQR,
	T_PIPE_SB, T_UNIXM, NTR
};

static const char *const tr_names[NTR] = {
	"pipe-stream", "pipe-packet", "unix-seqpacket", "mqueue",
	"bpq-plain", "bpq-batched", "bpq-plain-nometrics", "bpq-ring",
	"pipe-stream-batched", "unix-seqpacket-mmsg",
};

#define ARRAY_LEN(a)	((int)(sizeof(a) / sizeof((a)[0])))
#define PARAM_METRICS	"/sys/module/bpq/parameters/metrics"

static int quick;
static int icount;			/* --icount: ns are instructions */
static int init_on_alloc = -1;		/* the guest's, as told; -1 unknown */
static int reps = 5;
static double scale = 1.0;
static const char *only;		/* -W W1,W3: just these */
static char ctx[128];			/* what runs now, for errors */
static double null_ns = NAN;		/* calibration: one null syscall */

static void __attribute__((noreturn, format(printf, 1, 2)))
die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "bpq-bench: FAIL [%s]: ", ctx);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	fflush(stdout);
	exit(1);
}

static void on_alarm(int sig)
{
	static const char msg[] = "bpq-bench: FAIL: a run took too long "
				  "(hang?)\n";
	(void)sig;
	(void)!write(2, msg, sizeof(msg) - 1);
	(void)!write(2, ctx, strlen(ctx));
	(void)!write(2, "\n", 1);
	_exit(1);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static void spin_ns(uint64_t ns)
{
	uint64_t end = now_ns() + ns;

	while (now_ns() < end)
		;
}

/*
 * Wait for the slot at *@next of an absolute schedule, one slot every
 * @period ns, and move *@next on to the following one; returns the time
 * the wait ended. With @sleep_from, a wait longer than that is slept
 * through with clock_nanosleep(TIMER_ABSTIME) up to @sleep_from before the
 * slot, and spun from there; with 0 the whole wait is spun. A caller more
 * than 16 periods behind (preempted) starts the schedule again instead of
 * bursting.
 */
static uint64_t pace(double *next, double period, uint64_t sleep_from)
{
	uint64_t t;

	if (sleep_from && *next > now_ns() + sleep_from) {
		uint64_t wake = *next - sleep_from;
		struct timespec ts = { .tv_sec = wake / 1000000000,
				       .tv_nsec = wake % 1000000000 };

		clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
	}
	while ((t = now_ns()) < *next)
		;
	*next += period;
	if (t > *next + 16 * period)	/* fell behind: no burst */
		*next = t;
	return t;
}

static uint64_t count_of(double base)
{
	double n = base * scale;

	if (quick)
		n /= 20;
	return n < 16 ? 16 : (uint64_t)n;
}

static long csw(int who)
{
	struct rusage ru;

	getrusage(who, &ru);
	return ru.ru_nvcsw + ru.ru_nivcsw;
}

static long vcsw(int who)
{
	struct rusage ru;

	getrusage(who, &ru);
	return ru.ru_nvcsw;
}

static void write_file(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY);

	if (fd < 0)
		return;
	if (write(fd, val, strlen(val)) < 0)
		fprintf(stderr, "bpq-bench: %s: %s\n", path, strerror(errno));
	close(fd);
}

static long long read_num(const char *path)
{
	char buf[64];
	ssize_t n;
	int fd = open(path, O_RDONLY);

	if (fd < 0)
		die("%s: %s", path, strerror(errno));
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		die("%s: cannot read", path);
	buf[n] = 0;
	return strtoll(buf, NULL, 10);
}

static void restore_metrics(void)
{
	write_file(PARAM_METRICS, "1");
}

/*
 * Turn bpq's per-message counters off or on, for T_BPQN; whatever happens,
 * they are on again when the program exits.
 */
static void set_metrics(int on)
{
	static int registered;
	int fd = open(PARAM_METRICS, O_WRONLY);

	if (fd < 0 || write(fd, on ? "1" : "0", 1) != 1)
		die("%s: %s (bpq.ko without the metrics switch?)",
		    PARAM_METRICS, strerror(errno));
	close(fd);
	if (!on && !registered++)
		atexit(restore_metrics);
}

/* ---------------------------------------------------------------------- */
/* Transports */

struct chan {
	int t;
	size_t size;
	int wfd, rfd;
	mqd_t mq;
	int bpq;			/* /dev/bpqN, or -1 */
	struct bpq_ring ring;		/* T_BPQR: on rfd */
};

/* The producers of these send BATCH messages per call. */
static int batched_tx(const struct chan *c)
{
	return c->t == T_BPQB || c->t == T_BPQR || c->t == T_PIPE_SB ||
	       c->t == T_UNIXM;
}

/* The consumers of these receive up to BATCH messages per call. */
static int batched_rx(const struct chan *c)
{
	return c->t == T_BPQB || c->t == T_PIPE_SB || c->t == T_UNIXM;
}

/*
 * T_BPQR: the ring's size, the largest power of two that holds at most
 * DEPTH / 2 records of @size and at least two (the kernel's rule); the
 * queue behind it gets the rest of DEPTH (chan_open()), so that ring and
 * queue together buffer what every other transport does.
 */
static unsigned int ring_bytes_for(size_t size)
{
	uint64_t rec = BPQ_RING_RECORD(size), bytes = BPQ_RING_BYTES_MIN;

	while (bytes < 2 * rec)
		bytes <<= 1;
	while (bytes * 2 <= BPQ_RING_BYTES_MAX && bytes * 2 / rec <= DEPTH / 2)
		bytes <<= 1;
	return bytes;
}

static unsigned int ring_records_for(size_t size)
{
	return ring_bytes_for(size) / BPQ_RING_RECORD(size);
}

/* bpq queues: the low watermark (percent) chan_open() sets */
static unsigned int bpq_low_wm = 100;

static void chan_open(struct chan *c, int t, size_t size, int strategy,
		      unsigned int credits)
{
	static unsigned int serial;
	int fds[2], r, v;
	char path[64];

	memset(c, 0, sizeof(*c));
	c->t = t;
	c->size = size;
	c->bpq = -1;
	c->mq = (mqd_t)-1;
	switch (t) {
	case T_PIPE_S:
	case T_PIPE_SB:
	case T_PIPE_P:
		if (pipe2(fds, t == T_PIPE_P ? O_DIRECT : 0))
			die("pipe2: %s", strerror(errno));
		/* packet mode: one page per message; stream: bytes */
		v = t == T_PIPE_P ? DEPTH * 4096 : DEPTH * (int)size;
		if (v < 4096)
			v = 4096;
		if (fcntl(fds[1], F_SETPIPE_SZ, v) < 0)
			die("F_SETPIPE_SZ %d: %s", v, strerror(errno));
		c->rfd = fds[0];
		c->wfd = fds[1];
		break;
	case T_UNIX:
	case T_UNIXM:
		if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, fds))
			die("socketpair: %s", strerror(errno));
		/* the depth is net.unix.max_dgram_qlen; sndbuf not binding */
		v = DEPTH * ((int)size + 2048);
		if (setsockopt(fds[0], SOL_SOCKET, SO_SNDBUFFORCE, &v,
			       sizeof(v)))
			die("SO_SNDBUFFORCE: %s", strerror(errno));
		c->wfd = fds[0];
		c->rfd = fds[1];
		break;
	case T_MQ: {
		struct mq_attr a = { .mq_maxmsg = DEPTH,
				     .mq_msgsize = (long)size };

		snprintf(path, sizeof(path), "/bpq-bench-%d-%u", getpid(),
			 serial++);
		mq_unlink(path);
		c->mq = mq_open(path, O_RDWR | O_CREAT | O_EXCL, 0600, &a);
		if (c->mq == (mqd_t)-1)
			die("mq_open %zu x %d: %s", size, DEPTH,
			    strerror(errno));
		mq_unlink(path);
		break;
	}
	default: {
		struct bpq_config cfg = { .size = sizeof(cfg) };
		unsigned int index;
		char name[BPQ_NAME_MAX];
		int i;

		snprintf(name, sizeof(name), "bench%d_%u", getpid(), serial++);
		r = bpq_create(name, &index);
		if (r < 0)
			die("bpq_create: %s (bpq.ko loaded? root?)",
			    strerror(-r));
		c->bpq = index;
		snprintf(path, sizeof(path), "/dev/bpq%u", index);
		for (i = 0; (c->wfd = open(path, O_RDWR)) < 0; i++) {
			if (errno != ENOENT || i > 200)
				die("%s: %s", path, strerror(errno));
			usleep(5000);
		}
		c->rfd = c->wfd;
		r = bpq_get_config(c->wfd, &cfg);
		if (r < 0)
			die("bpq_get_config: %s", strerror(-r));
		cfg.strategy = strategy;
		cfg.capacity_msgs = DEPTH;
		if (t == T_BPQR)
			cfg.capacity_msgs -= ring_records_for(size);
		cfg.capacity_bytes = (uint64_t)cfg.capacity_msgs * size;
		cfg.low_watermark = bpq_low_wm;
		cfg.max_msg_size = size;
		cfg.auto_credit = strategy == BPQ_STRATEGY_CREDIT;
		r = bpq_set_config(c->wfd, &cfg);
		if (r < 0)
			die("bpq_set_config: %s", strerror(-r));
		if (credits) {
			r = bpq_grant(c->wfd, credits);
			if (r < 0)
				die("bpq_grant: %s", strerror(-r));
		}
		if (t == T_BPQN)
			set_metrics(0);
		if (t == T_BPQR) {
			/* the reader's own file, as in another process */
			c->rfd = open(path, O_RDWR);
			if (c->rfd < 0)
				die("%s: %s", path, strerror(errno));
			r = bpq_ring_setup(c->rfd, ring_bytes_for(size),
					   &c->ring);
			if (r < 0)
				die("bpq_ring_setup %u: %s (bpq.ko without "
				    "the ring?)", ring_bytes_for(size),
				    strerror(-r));
		}
	}
	}
}

static void chan_close(struct chan *c)
{
	if (c->t == T_MQ) {
		mq_close(c->mq);
		return;
	}
	if (c->t == T_BPQR)
		bpq_ring_teardown(&c->ring);
	close(c->wfd);
	if (c->rfd != c->wfd)
		close(c->rfd);
	if (c->t == T_BPQN)
		set_metrics(1);
	if (c->bpq >= 0) {
		int r = bpq_destroy(c->bpq);

		if (r < 0)
			die("bpq_destroy: %s", strerror(-r));
	}
}

static long long bpq_stat(struct chan *c, const char *name)
{
	char path[128];

	snprintf(path, sizeof(path), BPQ_SYSFS_CLASS "/bpq%d/stats/%s", c->bpq,
		 name);
	return read_num(path);
}

static void put_hdr(char *buf, unsigned int id, uint64_t seq)
{
	uint64_t h = (uint64_t)id << 56 | seq;

	memcpy(buf, &h, sizeof(h));
}

/* Blocking send of one message; 0, or -errno if @soft and it failed. */
static int chan_send_soft(struct chan *c, const char *buf, int soft)
{
	size_t done = 0;
	ssize_t r;

	switch (c->t) {
	case T_PIPE_S:
	case T_PIPE_SB:
		while (done < c->size) {
			r = write(c->wfd, buf + done, c->size - done);
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0)
				die("write: %s", strerror(errno));
			done += r;
		}
		return 0;
	case T_MQ:
		while (mq_send(c->mq, buf, c->size, 0)) {
			if (errno != EINTR)
				die("mq_send: %s", strerror(errno));
		}
		return 0;
	default:
		do {
			r = write(c->wfd, buf, c->size);
		} while (r < 0 && errno == EINTR);
		if (r < 0 && soft)
			return -errno;
		if (r != (ssize_t)c->size)
			die("write %zu: %zd (%s)", c->size, r,
			    r < 0 ? strerror(errno) : "short");
		return 0;
	}
}

static void chan_send(struct chan *c, const char *buf)
{
	chan_send_soft(c, buf, 0);
}

static void bpq_send_many(int fd, struct bpq_iovec *v, unsigned int n)
{
	while (n) {
		struct bpq_send_batch b = {
			.size = sizeof(b),
			.msgs = (uintptr_t)v,
			.count = n,
		};
		int r = ioctl(fd, BPQ_IOC_SEND_BATCH, &b);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			die("BPQ_IOC_SEND_BATCH: %s", strerror(errno));
		v += r;
		n -= r;
	}
}

/* All of @len bytes to a pipe */
static void write_all(int fd, const char *buf, size_t len)
{
	ssize_t r;

	while (len) {
		r = write(fd, buf, len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			die("write: %s", strerror(errno));
		buf += r;
		len -= r;
	}
}

static void sendmmsg_all(int fd, struct bpq_iovec *v, unsigned int n)
{
	struct mmsghdr mh[BATCH];
	struct iovec iov[BATCH];
	unsigned int i;
	int r;

	memset(mh, 0, sizeof(mh));
	for (i = 0; i < n; i++) {
		iov[i].iov_base = (void *)(uintptr_t)v[i].base;
		iov[i].iov_len = v[i].len;
		mh[i].msg_hdr.msg_iov = &iov[i];
		mh[i].msg_hdr.msg_iovlen = 1;
	}
	for (i = 0; i < n; i += r) {
		r = sendmmsg(fd, mh + i, n - i, 0);
		if (r < 0 && errno == EINTR)
			r = 0;
		else if (r <= 0)
			die("sendmmsg: %s", strerror(errno));
	}
}

/* @n messages of @c->size at @buf, one after another, in one call */
static void send_batch(struct chan *c, char *buf, struct bpq_iovec *v,
		       unsigned int n)
{
	switch (c->t) {
	case T_PIPE_SB:
		write_all(c->wfd, buf, n * c->size);
		break;
	case T_UNIXM:
		sendmmsg_all(c->wfd, v, n);
		break;
	default:
		bpq_send_many(c->wfd, v, n);
	}
}

/* Send messages first ... first + n - 1 as producer @id. */
static void produce(struct chan *c, unsigned int id, uint64_t first,
		    uint64_t n)
{
	size_t size = c->size;
	char *buf = calloc(batched_tx(c) ? BATCH : 1, size);
	struct bpq_iovec v[BATCH];
	uint64_t s, k, j;

	if (!buf)
		die("out of memory");
	if (!batched_tx(c)) {
		for (s = 0; s < n; s++) {
			put_hdr(buf, id, first + s);
			chan_send(c, buf);
		}
		free(buf);
		return;
	}
	memset(v, 0, sizeof(v));
	for (j = 0; j < BATCH; j++) {
		v[j].base = (uintptr_t)(buf + j * size);
		v[j].len = size;
	}
	for (s = 0; s < n; s += k) {
		k = n - s < BATCH ? n - s : BATCH;
		for (j = 0; j < k; j++)
			put_hdr(buf + j * size, id, first + s + j);
		send_batch(c, buf, v, k);
	}
	free(buf);
}

/*
 * The receiving side: one message at a time, whatever the transport.
 * T_BPQR reads the message in the ring, and consumes it (advance) when
 * asked for the next one, or at rx_free(): r->msg stays valid until then,
 * as the buffer of the others does.
 */
struct rx {
	struct chan *c;
	char *buf;
	const char *msg;		/* the message rx_next() returned */
	struct bpq_msg_info info[BATCH];
	int n, i;
	int held;			/* T_BPQR: a message peeked, not advanced */
	size_t fill, off;		/* T_PIPE_SB: bytes in buf, next one */
	uint64_t sum;			/* of every payload byte received */
};

/* Every consumer reads every byte of every message, as an application would */
static volatile uint64_t payload_sum;

static uint64_t checksum(const char *p, size_t len)
{
	uint64_t s = 0, w;
	size_t i;

	for (i = 0; i + sizeof(w) <= len; i += sizeof(w)) {
		memcpy(&w, p + i, sizeof(w));
		s += w;
	}
	for (; i < len; i++)
		s += (unsigned char)p[i];
	return s;
}

static void rx_init(struct rx *r, struct chan *c)
{
	memset(r, 0, sizeof(*r));
	r->c = c;
	r->buf = malloc(batched_rx(c) ? BATCH * c->size : c->size);
	if (!r->buf)
		die("out of memory");
}

static void rx_free(struct rx *r)
{
	if (r->held)
		bpq_ring_advance(&r->c->ring);
	payload_sum += r->sum;
	free(r->buf);
}

/* Messages still buffered from the last batch receive. */
static int rx_pending(struct rx *r)
{
	if (r->c->t == T_PIPE_SB)
		return (r->fill - r->off) / r->c->size;
	return r->n - r->i;
}

/* T_UNIXM: up to BATCH messages, at least one */
static void rx_recvmmsg(struct rx *r)
{
	struct mmsghdr mh[BATCH];
	struct iovec iov[BATCH];
	size_t size = r->c->size;
	int i, n;

	memset(mh, 0, sizeof(mh));
	for (i = 0; i < BATCH; i++) {
		iov[i].iov_base = r->buf + i * size;
		iov[i].iov_len = size;
		mh[i].msg_hdr.msg_iov = &iov[i];
		mh[i].msg_hdr.msg_iovlen = 1;
	}
	do {
		n = recvmmsg(r->c->rfd, mh, BATCH, MSG_WAITFORONE, NULL);
	} while (n < 0 && errno == EINTR);
	if (n <= 0)
		die("recvmmsg: %s", n ? strerror(errno) : "EOF");
	for (i = 0; i < n; i++) {
		r->info[i].offset = i * size;
		r->info[i].len = mh[i].msg_len;
	}
	r->n = n;
	r->i = 0;
}

/* T_PIPE_SB: the next message of the stream, reading up to BATCH more */
static const char *rx_stream(struct rx *r)
{
	size_t size = r->c->size, cap = BATCH * size;
	const char *p;
	ssize_t n;

	if (r->fill - r->off < size) {
		memmove(r->buf, r->buf + r->off, r->fill - r->off);
		r->fill -= r->off;
		r->off = 0;
		while (r->fill < size) {
			n = read(r->c->rfd, r->buf + r->fill, cap - r->fill);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				die("read: %s", n ? strerror(errno) : "EOF");
			r->fill += n;
		}
	}
	p = r->buf + r->off;
	r->off += size;
	return p;
}

static uint64_t rx_next(struct rx *r)
{
	struct chan *c = r->c;
	size_t len = 0, size = c->size;
	const char *p = r->buf;
	const void *m;
	ssize_t n;
	uint64_t h;

	switch (c->t) {
	case T_BPQR:
		if (r->held)
			bpq_ring_advance(&c->ring);
		r->held = 0;
		while ((n = bpq_ring_peek(&c->ring, &m, NULL)) == -EAGAIN) {
			n = bpq_ring_wait(&c->ring, -1);
			if (n < 0 && n != -EINTR)
				die("bpq_ring_wait: %s", strerror(-n));
		}
		if (n < 0)
			die("bpq_ring_peek: %s", strerror(-n));
		r->held = 1;
		p = m;
		len = n;
		break;
	case T_PIPE_SB:
		p = rx_stream(r);
		len = size;
		break;
	case T_UNIXM:
		if (r->i == r->n)
			rx_recvmmsg(r);
		p = r->buf + r->info[r->i].offset;
		len = r->info[r->i].len;
		r->i++;
		break;
	case T_BPQB:
		if (r->i == r->n) {
			struct bpq_recv_batch b = {
				.size = sizeof(b),
				.buf = (uintptr_t)r->buf,
				.buf_len = BATCH * size,
				.max_records = BATCH,
				.infos = (uintptr_t)r->info,
			};
			do {
				n = ioctl(c->rfd, BPQ_IOC_RECV_BATCH, &b);
			} while (n < 0 && errno == EINTR);
			if (n <= 0)
				die("BPQ_IOC_RECV_BATCH: %s", strerror(errno));
			r->n = n;
			r->i = 0;
		}
		p = r->buf + r->info[r->i].offset;
		len = r->info[r->i].len;
		r->i++;
		break;
	case T_PIPE_S:
		while (len < size) {
			n = read(c->rfd, r->buf + len, size - len);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				die("read: %s", n ? strerror(errno) : "EOF");
			len += n;
		}
		break;
	case T_MQ:
		do {
			n = mq_receive(c->mq, r->buf, size, NULL);
		} while (n < 0 && errno == EINTR);
		if (n < 0)
			die("mq_receive: %s", strerror(errno));
		len = n;
		break;
	default:
		do {
			n = read(c->rfd, r->buf, size);
		} while (n < 0 && errno == EINTR);
		if (n < 0)
			die("read: %s", strerror(errno));
		len = n;
	}
	if (len != size)
		die("message of %zu bytes, expected %zu", len, size);
	r->msg = p;
	r->sum += checksum(p, len);
	memcpy(&h, p, sizeof(h));
	return h;
}

/* ---------------------------------------------------------------------- */
/* Results */

#define MAX_EX 4

struct res {
	double mps, mbps, p50, p99;
	double p999, offered, backlog;	/* W4 only */
	double ex[MAX_EX];
};

struct record {
	char wl[4];
	char tr[40];
	size_t size;
	int prod, cons;
	double mps, mbps, p50, p99, spread;
	int runs;
	double load;			/* W4: fraction of saturation; or NaN */
	double ipm;			/* --icount: instructions per message */
	double p999, offered, backlog;	/* W4 only */
	double bop;			/* MEM: kernel bytes over the payload */
};

struct extra {
	char wl[4];
	char tr[40];
	size_t size;
	int prod, cons;
	char metric[40];
	double value;
};

static struct record records[512];
static int nrec;
static struct extra extras[1024];
static int nextra;

struct calib {
	double null_ns, memcpy64_ns, memcpy4k_ns, pipe_rtt_ns;
	double ns_per_insn;		/* --icount: the clock check */
} calib = { .ns_per_insn = NAN };

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	double t[MAX_REPS];

	if (!n)
		return NAN;
	memcpy(t, v, n * sizeof(*v));
	qsort(t, n, sizeof(*t), cmp_double);
	return n % 2 ? t[n / 2] : (t[n / 2 - 1] + t[n / 2]) / 2;
}

static double spread_of(double *v, int n)
{
	double lo = v[0], hi = v[0], m = median(v, n);
	int i;

	for (i = 1; i < n; i++) {
		lo = v[i] < lo ? v[i] : lo;
		hi = v[i] > hi ? v[i] : hi;
	}
	return m > 0 ? (hi - lo) / m : NAN;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void percentiles(uint64_t *v, uint64_t n, double *p50, double *p99)
{
	if (!n) {
		*p50 = *p99 = NAN;
		return;
	}
	qsort(v, n, sizeof(*v), cmp_u64);
	*p50 = v[n / 2];
	*p99 = v[(n * 99) / 100 < n ? (n * 99) / 100 : n - 1];
}

static void table_header(void)
{
	if (icount) {
		printf("%-3s %-26s %6s %2s %2s %12s %4s %7s\n", "wl",
		       "transport", "size", "P", "C", "insns/msg", "runs",
		       "spread");
		return;
	}
	printf("%-3s %-26s %6s %2s %2s %11s %9s %10s %10s %4s %6s %9s\n",
	       "wl", "transport", "size", "P", "C", "msgs/s", "MB/s",
	       "p50_ns", "p99_ns", "runs", "spread", "nsys/msg");
}

static void fmt_num(char *buf, size_t len, double v, const char *f)
{
	if (isnan(v))
		snprintf(buf, len, "-");
	else
		snprintf(buf, len, f, v);
}

static void table_row(const struct record *r)
{
	char mps[24], mbps[24], p50[24], p99[24], sp[24], ns[24], name[64];
	double per;

	/* null syscalls per message: the round trip for W3, W4's p50 */
	per = r->wl[1] == '3' || r->wl[1] == '4' ? r->p50 : 1e9 / r->mps;
	fmt_num(mps, sizeof(mps), r->mps, "%.0f");
	fmt_num(mbps, sizeof(mbps), r->mbps, "%.1f");
	fmt_num(p50, sizeof(p50), r->p50, "%.0f");
	fmt_num(p99, sizeof(p99), r->p99, "%.0f");
	if (icount) {
		fmt_num(sp, sizeof(sp), r->spread * 100, "%.2f%%");
		printf("%-3s %-26s %6zu %2d %2d %12.1f %4d %7s\n", r->wl,
		       r->tr, r->size, r->prod, r->cons, r->ipm, r->runs, sp);
		return;
	}
	fmt_num(sp, sizeof(sp), r->spread * 100, "%.0f%%");
	fmt_num(ns, sizeof(ns), per / null_ns, "%.1f");
	if (isnan(r->load))
		snprintf(name, sizeof(name), "%s", r->tr);
	else
		snprintf(name, sizeof(name), "%s @%.0f%%", r->tr,
			 r->load * 100);
	printf("%-3s %-26s %6zu %2d %2d %11s %9s %10s %10s %4d %6s %9s\n",
	       r->wl, name, r->size, r->prod, r->cons, mps, mbps, p50, p99,
	       r->runs, sp, ns);
	if (!isnan(r->load))
		printf("    %-3s %-26s offered %.0f msgs/s, p99.9 %.0f ns, "
		       "max backlog %.0f\n", r->wl, name, r->offered, r->p999,
		       r->backlog);
	fflush(stdout);
}

/*
 * What one measurement is: the workload, its variants (transports, or
 * strategies), and how to run one repetition of one variant.
 */
struct spec {
	const char *wl;
	size_t size;
	int prod, cons;
	int nvar;
	const int *var;			/* transport of each variant */
	const char *const *names;	/* name of each variant, or NULL */
	const char *ex_names[MAX_EX];	/* extra metrics, or NULL */
	struct res (*run)(const struct spec *s, int v);
	uint64_t n;			/* messages, per workload meaning */
	uint64_t arg;			/* per workload */
};

/*
 * --marks FILE: a line at the start and the end of each measurement, for
 * whoever watches the run from outside (scripts/bench.sh records the
 * host's load average at each).
 */
static FILE *marks;

static void mark(const char *what, const struct spec *s)
{
	if (!marks)
		return;
	fprintf(marks, "BPQ-BENCH-MARK %s %s %zu %d %d\n", what, s->wl,
		s->size, s->prod, s->cons);
	fflush(marks);
}

static void add_extra(const struct spec *s, const char *tr,
		      const char *metric, double value)
{
	struct extra *x = &extras[nextra++];

	snprintf(x->wl, sizeof(x->wl), "%s", s->wl);
	snprintf(x->tr, sizeof(x->tr), "%s", tr);
	x->size = s->size;
	x->prod = s->prod;
	x->cons = s->cons;
	snprintf(x->metric, sizeof(x->metric), "%s", metric);
	x->value = value;
	printf("    %-3s %-26s %s = %.3f\n", x->wl, x->tr, x->metric,
	       x->value);
}

/*
 * What the module parameter metrics saves: 1 - plain / nometrics, taken
 * per repetition, where the two ran back to back, so that what drifts
 * between repetitions cancels out; then the median.
 */
static void metrics_cost(const struct spec *s, struct res (*r)[MAX_REPS],
			 int nm)
{
	double v[MAX_REPS];
	int i, k;

	for (i = 0; i < s->nvar && s->var[i] != T_BPQ; i++)
		;
	if (i == s->nvar)
		return;
	for (k = 0; k < reps; k++)
		v[k] = 1 - r[i][k].mps / r[nm][k].mps;
	add_extra(s, tr_names[T_BPQN], "metrics_cost_paired",
		  median(v, reps));
	printf("        per repetition:");
	for (k = 0; k < reps; k++)
		printf(" %.3f", v[k]);
	printf("\n");
}

static void measure(const struct spec *s)
{
	static struct res r[NTR * 2][MAX_REPS];
	static bool warmed;
	double v[MAX_REPS];
	int i, k, rep, e;

	/*
	 * The emulator translates code when it first runs: one round of the
	 * first workload, not counted, so that its first figures do not
	 * carry that.
	 */
	for (i = 0; !warmed && !quick && i < s->nvar; i++) {
		snprintf(ctx, sizeof(ctx), "%s %s size %zu warm-up", s->wl,
			 s->names ? s->names[i] : tr_names[s->var[i]],
			 s->size);
		alarm(300);
		s->run(s, i);
		alarm(0);
	}
	warmed = true;
	mark("begin", s);
	for (rep = 0; rep < reps; rep++) {
		for (i = 0; i < s->nvar; i++) {
			snprintf(ctx, sizeof(ctx), "%s %s size %zu P%d C%d run %d",
				 s->wl, s->names ? s->names[i] :
				 tr_names[s->var[i]], s->size, s->prod,
				 s->cons, rep + 1);
			/* Q's creates and destroys: 20 ms each on a debug kernel */
			alarm(quick && strcmp(s->wl, "Q") ? 60 : 600);
			r[i][rep] = s->run(s, i);
			alarm(0);
		}
	}
	mark("end", s);
	for (i = 0; i < s->nvar; i++) {
		struct record *rec = &records[nrec++];

		snprintf(rec->wl, sizeof(rec->wl), "%s", s->wl);
		snprintf(rec->tr, sizeof(rec->tr), "%s",
			 s->names ? s->names[i] : tr_names[s->var[i]]);
		rec->size = s->size;
		rec->prod = s->prod;
		rec->cons = s->cons;
		rec->runs = reps;
#define MED(field) ({ for (k = 0; k < reps; k++) v[k] = r[i][k].field; \
		      median(v, reps); })
		rec->mps = MED(mps);
		rec->spread = spread_of(v, reps);
		rec->mbps = MED(mbps);
		rec->p50 = MED(p50);
		/* the latency workloads: the spread of the p50 */
		if (!isnan(rec->p50) &&
		    (!strcmp(s->wl, "W3") || !strcmp(s->wl, "W4")))
			rec->spread = spread_of(v, reps);
		rec->p99 = MED(p99);
		rec->p999 = MED(p999);
		rec->offered = MED(offered);
		rec->backlog = MED(backlog);
		rec->load = strcmp(s->wl, "W4") ? NAN : s->arg / 100.0;
		rec->ipm = NAN;
		/* MEM: no rate, the memory figure */
		rec->bop = strcmp(s->wl, "MEM") ? NAN : MED(ex[0]);
		if (icount) {
			/* elapsed ns per message: instructions under icount */
			for (k = 0; k < reps; k++)
				v[k] = 1e9 / r[i][k].mps;
			rec->ipm = median(v, reps);
			rec->spread = spread_of(v, reps);
		}
		if (isnan(rec->bop))
			table_row(rec);
		for (e = 0; e < MAX_EX && s->ex_names[e]; e++)
			add_extra(s, rec->tr, s->ex_names[e], MED(ex[e]));
#undef MED
		if (s->var && s->var[i] == T_BPQN && !icount)
			metrics_cost(s, r, i);
	}
}

/* ---------------------------------------------------------------------- */
/* W1, W2, W5: N producers, one consumer */

struct prod_arg {
	struct chan *c;
	unsigned int id;
	uint64_t n;
	long wakeups;
	pthread_t th;
};

static void *producer_main(void *p)
{
	struct prod_arg *a = p;
	long w0 = vcsw(RUSAGE_THREAD);

	produce(a->c, a->id, 1, a->n);
	a->wakeups = vcsw(RUSAGE_THREAD) - w0;
	return NULL;
}

static struct res run_n1(const struct spec *s, int var)
{
	uint64_t per = s->n / s->prod, warm = per / 10 + 1;
	uint64_t total = s->prod * (per + warm), got, t0 = 0, t1;
	static uint64_t expect[MAX_PROD];
	static struct prod_arg pa[MAX_PROD];
	struct chan c;
	struct rx rx;
	struct res res = { .p50 = NAN, .p99 = NAN };
	long w0 = 0, w1, pw = 0, c0 = 0;
	int i;

	chan_open(&c, s->var[var], s->size, BPQ_STRATEGY_BLOCK, 0);
	rx_init(&rx, &c);
	for (i = 0; i < s->prod; i++) {
		expect[i] = 1;
		pa[i] = (struct prod_arg){ .c = &c, .id = i, .n = per + warm };
		if (pthread_create(&pa[i].th, NULL, producer_main, &pa[i]))
			die("pthread_create");
	}
	for (got = 0; got < total; got++) {
		uint64_t h = rx_next(&rx), id = h >> 56, seq = h & SEQ_MASK;

		if (id >= (uint64_t)s->prod || seq != expect[id])
			die("producer %llu: got seq %llu, expected %llu",
			    (unsigned long long)id, (unsigned long long)seq,
			    (unsigned long long)(id < MAX_PROD ? expect[id] : 0));
		expect[id]++;
		if (got + 1 == s->prod * warm) {
			t0 = now_ns();
			w0 = vcsw(RUSAGE_THREAD);
			c0 = csw(RUSAGE_SELF);
		}
	}
	t1 = now_ns();
	w1 = vcsw(RUSAGE_THREAD);
	/* every thread's context switches, the producers' still running too */
	res.ex[2] = (double)(csw(RUSAGE_SELF) - c0) / (s->prod * per);
	for (i = 0; i < s->prod; i++) {
		pthread_join(pa[i].th, NULL);
		pw += pa[i].wakeups;
	}
	rx_free(&rx);
	chan_close(&c);
	res.mps = (double)(s->prod * per) * 1e9 / (t1 - t0);
	res.mbps = res.mps * s->size / 1e6;
	res.ex[0] = (double)(w1 - w0) / (s->prod * per);
	/* the producers' waits for room, warm-up included */
	res.ex[1] = (double)pw / total;
	return res;
}

/* ---------------------------------------------------------------------- */
/* W6: one producer, N consumers */

struct cons_arg {
	struct chan *c;
	int excl;			/* WP: epoll with EPOLLEXCLUSIVE */
	unsigned char *seen;
	uint64_t nseen;
	atomic_uint_fast64_t *got;
	pthread_t th;
};

static void *poll_reader(void *p);

/* WP: the readers' own file (bpq) or end (pipe), non-blocking */
static void poll_setup(struct chan *c)
{
	char path[64];
	int fl;

	if (c->rfd == c->wfd) {
		snprintf(path, sizeof(path), "/dev/bpq%d", c->bpq);
		c->rfd = open(path, O_RDWR);
		if (c->rfd < 0)
			die("%s: %s", path, strerror(errno));
	}
	fl = fcntl(c->rfd, F_GETFL);
	if (fl < 0 || fcntl(c->rfd, F_SETFL, fl | O_NONBLOCK))
		die("O_NONBLOCK: %s", strerror(errno));
}

static void *consumer_1n(void *p)
{
	struct cons_arg *a = p;
	uint64_t last = 0, n = 0;
	struct rx rx;
	char stop[65536];

	rx_init(&rx, a->c);
	for (;;) {
		uint64_t h = rx_next(&rx), seq = h & SEQ_MASK;

		if (h == STOP)
			break;
		if (h >> 56 || seq <= last || seq >= a->nseen || a->seen[seq])
			die("consumer: seq %llu after %llu (dup/reorder)",
			    (unsigned long long)seq, (unsigned long long)last);
		a->seen[seq] = 1;
		last = seq;
		n++;
	}
	/* a batch may have taken the end markers of the others too */
	memset(stop, 0xff, a->c->size);
	while (rx_pending(&rx)) {
		if (rx_next(&rx) != STOP)
			die("message after the end marker");
		chan_send(a->c, stop);
	}
	atomic_fetch_add(a->got, n);
	rx_free(&rx);
	return NULL;
}

/*
 * W6, and WP: there each reader sleeps in poll() or epoll_wait() on a
 * non-blocking file of its own (odd variants: EPOLLEXCLUSIVE), and they
 * all go to sleep before the producer starts.
 */
static struct res run_1n(const struct spec *s, int var)
{
	uint64_t n = s->n, warm = n / 10 + 1, t0, t1, i;
	atomic_uint_fast64_t got = 0;
	static struct cons_arg ca[MAX_PROD];
	unsigned char *seen = calloc(n + warm + 1, 1);
	int wp = !strcmp(s->wl, "WP"), k;
	char *stop;
	struct chan c;
	struct res res = { .p50 = NAN, .p99 = NAN };
	long c0, c1;

	if (!seen)
		die("out of memory");
	chan_open(&c, s->var[var], s->size, BPQ_STRATEGY_BLOCK, 0);
	if (wp)
		poll_setup(&c);
	for (k = 0; k < s->cons; k++) {
		ca[k] = (struct cons_arg){ .c = &c, .excl = wp && var % 2,
					   .seen = seen,
					   .nseen = n + warm + 1, .got = &got };
		if (pthread_create(&ca[k].th, NULL,
				   wp ? poll_reader : consumer_1n, &ca[k]))
			die("pthread_create");
	}
	if (wp)
		usleep(100000);
	produce(&c, 0, 1, warm);
	t0 = now_ns();
	c0 = csw(RUSAGE_SELF);
	produce(&c, 0, warm + 1, n);
	stop = malloc(s->size);
	memset(stop, 0xff, s->size);
	for (k = 0; k < s->cons; k++)
		chan_send(&c, stop);
	for (k = 0; k < s->cons; k++)
		pthread_join(ca[k].th, NULL);
	t1 = now_ns();
	c1 = csw(RUSAGE_SELF);
	if (got != n + warm)
		die("delivered %llu of %llu", (unsigned long long)got,
		    (unsigned long long)(n + warm));
	for (i = 1; i <= n + warm; i++)
		if (!seen[i])
			die("seq %llu lost", (unsigned long long)i);
	free(stop);
	free(seen);
	chan_close(&c);
	res.mps = (double)n * 1e9 / (t1 - t0);
	res.mbps = res.mps * s->size / 1e6;
	res.ex[0] = (double)(c1 - c0) / n;
	return res;
}

/* ---------------------------------------------------------------------- */
/* W3: ping-pong round trip over two channels */

struct echo_arg {
	struct chan *in, *out;
};

static void *echo_main(void *p)
{
	struct echo_arg *a = p;
	char *buf = calloc(1, a->out->size);
	struct rx rx;

	rx_init(&rx, a->in);
	for (;;) {
		uint64_t h = rx_next(&rx);

		memcpy(buf, &h, sizeof(h));
		chan_send(a->out, buf);
		if (h == STOP)
			break;
	}
	rx_free(&rx);
	free(buf);
	return NULL;
}

static struct res run_pp(const struct spec *s, int var)
{
	uint64_t n = s->n, warm = n / 10 + 1, i, t, tstart = 0;
	uint64_t *lat = malloc(n * sizeof(*lat));
	struct chan a, b;
	struct echo_arg ea = { &a, &b };
	struct res res = { 0 };
	struct rx rx;
	pthread_t th;
	char *buf = calloc(1, s->size);

	if (!lat || !buf)
		die("out of memory");
	chan_open(&a, s->var[var], s->size, BPQ_STRATEGY_BLOCK, 0);
	chan_open(&b, s->var[var], s->size, BPQ_STRATEGY_BLOCK, 0);
	rx_init(&rx, &b);
	if (pthread_create(&th, NULL, echo_main, &ea))
		die("pthread_create");
	for (i = 1; i <= warm + n; i++) {
		if (i == warm + 1)
			tstart = now_ns();
		t = now_ns();
		put_hdr(buf, 0, i);
		chan_send(&a, buf);
		if (rx_next(&rx) != i)
			die("round trip %llu came back wrong",
			    (unsigned long long)i);
		if (i > warm)
			lat[i - warm - 1] = now_ns() - t;
	}
	res.mps = (double)n * 1e9 / (now_ns() - tstart);
	res.mbps = NAN;
	memset(buf, 0xff, s->size);
	chan_send(&a, buf);
	if (rx_next(&rx) != STOP)
		die("no end marker back");
	pthread_join(th, NULL);
	percentiles(lat, n, &res.p50, &res.p99);
	rx_free(&rx);
	chan_close(&a);
	chan_close(&b);
	free(lat);
	free(buf);
	return res;
}

/* ---------------------------------------------------------------------- */
/*
 * W4: one-way latency at a fixed offered rate below saturation: 10, 50
 * and 90 % of what the transport carries 1:1 at 64 B (W1's median of this
 * run, or a short measurement of the same if W1 did not run). Every
 * message carries its sequence number and its CLOCK_MONOTONIC send time;
 * the consumer puts receive time minus send time into a histogram.
 *
 * The producer paces on an absolute schedule. It busy-waits, as W8 does,
 * for the last W4_SPIN_NS before each send: the intervals are 1-10 us on
 * real hardware, shorter than a clock_nanosleep() wake-up and its jitter,
 * so spinning is what keeps the schedule there, to within a clock read.
 * Longer waits (low load under emulation) it sleeps through with
 * clock_nanosleep(TIMER_ABSTIME) and 1 ns of timer slack: a spinning vCPU
 * takes a host CPU that the consumer's vCPU then waits for, milliseconds
 * on a loaded host. A producer more than 16 intervals behind (preempted)
 * starts the schedule again instead of bursting.
 *
 * The consumer blocks as usual, on another CPU than the producer: unpinned,
 * the scheduler may wake it on the waker's CPU (sync wake-ups, or its last
 * CPU), where it waits behind a spinning producer for a load balance,
 * milliseconds. bpq-batched has no one-message path to measure here and
 * is left out; so is bpq-ring, whose W1 rate (its producer batched) is no
 * saturation rate of a one-message write().
 */

#define W4_SPIN_NS	50000

/* Log-linear histogram: exact below 64 ns, then 32 buckets an octave */
#define LH_SUB_BITS	5
#define LH_SUB		(1 << LH_SUB_BITS)
#define LH_BUCKETS	(LH_SUB * (65 - LH_SUB_BITS))

static unsigned int lh_bucket(uint64_t v)
{
	int shift;

	if (v < 2 * LH_SUB)
		return v;
	shift = 63 - __builtin_clzll(v) - LH_SUB_BITS;
	return (shift + 1) * LH_SUB + ((v >> shift) & (LH_SUB - 1));
}

/* The middle of bucket @b: within 1.6 % of any value in it */
static uint64_t lh_value(unsigned int b)
{
	unsigned int shift = b / LH_SUB - 1, sub = b % LH_SUB;

	if (b < 2 * LH_SUB)
		return b;
	return ((uint64_t)(LH_SUB + sub) << shift) + ((1ULL << shift) - 1) / 2;
}

/* The value at or below which @permille of the @n samples are */
static double lh_percentile(const uint64_t *h, uint64_t n,
			    unsigned int permille)
{
	uint64_t rank = (n * permille + 999) / 1000, sum = 0;
	unsigned int b;

	if (!n)
		return NAN;
	for (b = 0; b < LH_BUCKETS; b++) {
		sum += h[b];
		if (sum >= rank)
			return lh_value(b);
	}
	return NAN;
}

static const int w4_tr[] = { T_PIPE_S, T_PIPE_P, T_UNIX, T_MQ, T_BPQ };
#define N_W4_TR		ARRAY_LEN(w4_tr)
static double w4_sat[NTR];	/* msgs/s 1:1 at 64 B, per transport */
static cpu_set_t w4_pcpu, w4_ccpu;	/* the producer's, the consumer's */
static int w4_pin;			/* 0: fewer than two CPUs */

struct lat_arg {
	struct chan *c;
	uint64_t warm, n;		/* not measured, then measured */
	atomic_uint_fast64_t sent;	/* the last sequence number sent */
	uint64_t t_first, t_last, backlog;
	uint64_t hist[LH_BUCKETS];
};

static void *lat_consumer(void *p)
{
	struct lat_arg *a = p;
	uint64_t seq, ts, t, sent;
	struct rx rx;

	rx_init(&rx, a->c);
	for (seq = 1; seq <= a->warm + a->n; seq++) {
		uint64_t h = rx_next(&rx);

		t = now_ns();
		if (h != seq)
			die("seq %llu, expected %llu", (unsigned long long)h,
			    (unsigned long long)seq);
		if (seq <= a->warm)
			continue;
		memcpy(&ts, rx.msg + sizeof(h), sizeof(ts));
		a->hist[lh_bucket(t > ts ? t - ts : 0)]++;
		/* how many were sent after this one and wait behind it */
		sent = atomic_load_explicit(&a->sent, memory_order_relaxed);
		if (sent > seq && sent - seq > a->backlog)
			a->backlog = sent - seq;
		if (seq == a->warm + 1)
			a->t_first = t;
		a->t_last = t;
	}
	rx_free(&rx);
	return NULL;
}

static struct res run_w4(const struct spec *s, int var)
{
	double rate = w4_sat[s->var[var]] * s->arg / 100, period = 1e9 / rate;
	double next;
	/* no more than 2 s of sending (--quick: 0.1 s), for the 10 % load */
	uint64_t n = s->n, cap = rate * (quick ? 0.1 : 2.0) * scale, i, t;
	struct lat_arg *la = calloc(1, sizeof(*la));
	struct res res = { .mbps = NAN };
	char *buf = calloc(1, s->size);
	struct chan c;
	pthread_attr_t attr;
	cpu_set_t old;
	pthread_t th;

	if (!la || !buf)
		die("out of memory");
	n = n < cap ? n : cap;
	n = n < 100 ? 100 : n;
	chan_open(&c, s->var[var], s->size, BPQ_STRATEGY_BLOCK, 0);
	la->c = &c;
	la->warm = n / 10 + 1;
	la->n = n;
	pthread_attr_init(&attr);
	if (w4_pin) {
		if (pthread_getaffinity_np(pthread_self(), sizeof(old), &old) ||
		    pthread_setaffinity_np(pthread_self(), sizeof(w4_pcpu),
					   &w4_pcpu) ||
		    pthread_attr_setaffinity_np(&attr, sizeof(w4_ccpu),
						&w4_ccpu))
			die("CPU affinity: %s", strerror(errno));
	}
	if (pthread_create(&th, &attr, lat_consumer, la))
		die("pthread_create");
	pthread_attr_destroy(&attr);
	usleep(10000);		/* let the consumer block first */
	next = now_ns();
	prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
	for (i = 1; i <= la->warm + n; i++) {
		t = pace(&next, period, W4_SPIN_NS);
		put_hdr(buf, 0, i);
		memcpy(buf + sizeof(uint64_t), &t, sizeof(t));
		chan_send(&c, buf);
		atomic_store_explicit(&la->sent, i, memory_order_relaxed);
	}
	prctl(PR_SET_TIMERSLACK, 0UL, 0UL, 0UL, 0UL);	/* the default */
	pthread_join(th, NULL);
	if (w4_pin && pthread_setaffinity_np(pthread_self(), sizeof(old), &old))
		die("CPU affinity: %s", strerror(errno));
	chan_close(&c);
	res.mps = (double)(n - 1) * 1e9 / (la->t_last - la->t_first);
	res.p50 = lh_percentile(la->hist, n, 500);
	res.p99 = lh_percentile(la->hist, n, 990);
	res.p999 = lh_percentile(la->hist, n, 999);
	res.offered = rate;
	res.backlog = la->backlog;
	free(la);
	free(buf);
	return res;
}

/*
 * The saturation rate of each W4 transport: W1's 64 B record of this run,
 * or, without one, the median of a few shorter W1 runs, interleaved. And
 * the producer's and the consumer's CPU: the first two we may run on.
 */
static void w4_setup(void)
{
	struct spec s = { "W4", 64, 1, 1, N_W4_TR, w4_tr, NULL, { 0 },
			  run_n1, count_of(10000), 0 };
	double v[N_W4_TR][MAX_REPS];
	int i, j, k, nrep = quick ? 1 : 3, missing = 0, cpu[2];
	cpu_set_t all;

	CPU_ZERO(&w4_pcpu);
	CPU_ZERO(&w4_ccpu);
	if (sched_getaffinity(0, sizeof(all), &all))
		die("sched_getaffinity: %s", strerror(errno));
	for (i = 0, k = 0; i < CPU_SETSIZE && k < 2; i++)
		if (CPU_ISSET(i, &all))
			cpu[k++] = i;
	w4_pin = k == 2;
	if (w4_pin) {
		CPU_SET(cpu[0], &w4_pcpu);
		CPU_SET(cpu[1], &w4_ccpu);
		printf("    W4  producer on CPU %d, consumer on CPU %d\n",
		       cpu[0], cpu[1]);
	} else {
		printf("    W4  one CPU: producer and consumer share it\n");
	}
	for (i = 0; i < N_W4_TR; i++) {
		for (j = 0; j < nrec; j++) {
			struct record *r = &records[j];

			if (!strcmp(r->wl, "W1") && r->size == 64 &&
			    r->prod == 1 && r->cons == 1 &&
			    !strcmp(r->tr, tr_names[w4_tr[i]]))
				w4_sat[w4_tr[i]] = r->mps;
		}
		missing += !(w4_sat[w4_tr[i]] > 0);
	}
	if (missing)
		printf("    W4  saturation rates: %s%d shorter W1 64 B run(s)\n",
		       missing < N_W4_TR ? "W1 64 B of this run, or " : "",
		       nrep);
	else
		printf("    W4  saturation rates: W1 64 B of this run\n");
	for (k = 0; missing && k < nrep; k++) {
		for (i = 0; i < N_W4_TR; i++) {
			if (w4_sat[w4_tr[i]] > 0)
				continue;
			snprintf(ctx, sizeof(ctx), "W4 saturation %s run %d",
				 tr_names[w4_tr[i]], k + 1);
			alarm(quick ? 60 : 300);
			v[i][k] = run_n1(&s, i).mps;
			alarm(0);
		}
	}
	for (i = 0; i < N_W4_TR; i++) {
		if (!(w4_sat[w4_tr[i]] > 0))
			w4_sat[w4_tr[i]] = median(v[i], nrep);
		add_extra(&s, tr_names[w4_tr[i]], "saturation_msgs_per_s",
			  w4_sat[w4_tr[i]]);
	}
}

/* ---------------------------------------------------------------------- */
/* W7: bursts of s->arg messages (<= DEPTH) into an idle consumer */

struct burst_arg {
	struct chan *c;
	uint64_t bursts, len;
	int efd;
	long wakeups;
};

static void *burst_consumer(void *p)
{
	struct burst_arg *a = p;
	uint64_t b, i, expect = 1, one = 1;
	struct rx rx;
	long w0;

	rx_init(&rx, a->c);
	w0 = vcsw(RUSAGE_THREAD);
	for (b = 0; b < a->bursts; b++) {
		for (i = 0; i < a->len; i++) {
			uint64_t h = rx_next(&rx);

			if (h != expect)
				die("burst %llu: seq %llu, expected %llu",
				    (unsigned long long)b,
				    (unsigned long long)h,
				    (unsigned long long)expect);
			expect++;
		}
		if (write(a->efd, &one, sizeof(one)) != sizeof(one))
			die("eventfd write: %s", strerror(errno));
	}
	/* the last wait (on the eventfd) is the producer's, not ours */
	a->wakeups = vcsw(RUSAGE_THREAD) - w0;
	rx_free(&rx);
	return NULL;
}

static struct res run_burst(const struct spec *s, int var)
{
	struct burst_arg ba = { .bursts = s->n, .len = s->arg };
	struct res res = { .p50 = NAN, .p99 = NAN };
	uint64_t b, t0, t1, v;
	long pw0, pw1;
	struct chan c;
	pthread_t th;

	chan_open(&c, s->var[var], s->size, BPQ_STRATEGY_BLOCK, 0);
	ba.c = &c;
	ba.efd = eventfd(0, 0);
	if (ba.efd < 0)
		die("eventfd: %s", strerror(errno));
	if (pthread_create(&th, NULL, burst_consumer, &ba))
		die("pthread_create");
	usleep(10000);		/* let the consumer block first */
	t0 = now_ns();
	pw0 = vcsw(RUSAGE_THREAD);
	for (b = 0; b < ba.bursts; b++) {
		produce(&c, 0, b * ba.len + 1, ba.len);
		if (read(ba.efd, &v, sizeof(v)) != sizeof(v))
			die("eventfd read: %s", strerror(errno));
	}
	t1 = now_ns();
	pw1 = vcsw(RUSAGE_THREAD) - ba.bursts;	/* minus the eventfd waits */
	pthread_join(th, NULL);
	if (c.bpq >= 0 && (bpq_stat(&c, "dropped_newest") ||
			   bpq_stat(&c, "dropped_oldest")))
		die("drops in a burst below capacity");
	close(ba.efd);
	chan_close(&c);
	res.mps = (double)(ba.bursts * ba.len) * 1e9 / (t1 - t0);
	res.mbps = res.mps * s->size / 1e6;
	res.ex[0] = (double)ba.wakeups / ba.bursts;
	res.ex[1] = (double)(pw1 > pw0 ? pw1 - pw0 : 0) / ba.bursts;
	return res;
}

/* ---------------------------------------------------------------------- */
/* W8: overload of a slow consumer, drop strategies */

static const int w8_strategy[] = {
	BPQ_STRATEGY_DROP_NEWEST, BPQ_STRATEGY_DROP_NEWEST,
	BPQ_STRATEGY_DROP_OLDEST, BPQ_STRATEGY_DROP_OLDEST,
};
static const int w8_load[] = { 2, 10, 2, 10 };
static const char *const w8_names[] = {
	"bpq-drop-newest@2x", "bpq-drop-newest@10x",
	"bpq-drop-oldest@2x", "bpq-drop-oldest@10x",
};

struct drop_arg {
	struct chan *c;
	uint64_t work_ns;
	atomic_int done;
	uint64_t delivered, gaps, lost, last, t_last;
};

static void *drop_consumer(void *p)
{
	struct drop_arg *a = p;
	char *buf = malloc(a->c->size);
	uint64_t last = 0;

	for (;;) {
		struct bpq_recv r = {
			.size = sizeof(r),
			.flags = BPQ_IO_TIMEOUT,
			.buf = (uintptr_t)buf,
			.buf_len = a->c->size,
			.timeout_ms = 20,
		};
		uint64_t h;
		int n = ioctl(a->c->rfd, BPQ_IOC_RECV, &r);

		if (n < 0 && errno == ETIMEDOUT) {
			if (atomic_load(&a->done))
				break;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n != (int)a->c->size)
			die("BPQ_IOC_RECV: %d (%s)", n, strerror(errno));
		memcpy(&h, buf, sizeof(h));
		if (h <= last)
			die("seq %llu after %llu", (unsigned long long)h,
			    (unsigned long long)last);
		a->gaps += h - last - 1;
		a->lost += r.info.lost;
		last = h;
		a->delivered++;
		a->last = h;
		a->t_last = now_ns();
		spin_ns(a->work_ns);
	}
	free(buf);
	return NULL;
}

static struct res run_drop(const struct spec *s, int var)
{
	struct drop_arg da = { .work_ns = s->arg };
	uint64_t n = s->n * (w8_load[var] == 10 ? 4 : 1), i, refused = 0;
	uint64_t interval = s->arg / w8_load[var], t0, t1;
	double next;
	long long dn, dold;
	struct res res = { .p50 = NAN, .p99 = NAN };
	struct chan c;
	pthread_t th;
	char *buf = calloc(1, s->size);

	chan_open(&c, T_BPQ, s->size, w8_strategy[var], 0);
	da.c = &c;
	if (pthread_create(&th, NULL, drop_consumer, &da))
		die("pthread_create");
	t0 = now_ns();
	next = t0;
	for (i = 1; i <= n; i++) {
		pace(&next, interval, 0);
		put_hdr(buf, 0, i);
		if (chan_send_soft(&c, buf, 1) == -ENOBUFS)
			refused++;
	}
	t1 = now_ns();
	atomic_store(&da.done, 1);
	pthread_join(th, NULL);
	dn = bpq_stat(&c, "dropped_newest");
	dold = bpq_stat(&c, "dropped_oldest");
	if ((uint64_t)dn != refused)
		die("producer saw %llu refusals, sysfs dropped_newest %lld",
		    (unsigned long long)refused, dn);
	/* refusals after the last delivered message leave no gap */
	da.gaps += n - da.last;
	if (da.gaps != (uint64_t)(dn + dold) || da.lost != da.gaps ||
	    da.delivered + da.gaps != n)
		die("sent %llu delivered %llu gaps %llu lost %llu, sysfs "
		    "dropped_newest %lld dropped_oldest %lld",
		    (unsigned long long)n, (unsigned long long)da.delivered,
		    (unsigned long long)da.gaps, (unsigned long long)da.lost,
		    dn, dold);
	chan_close(&c);
	free(buf);
	res.mps = (double)da.delivered * 1e9 / (da.t_last - t0);
	res.mbps = res.mps * s->size / 1e6;
	res.ex[0] = (double)n * 1e9 / (t1 - t0);	/* offered msgs/s */
	res.ex[1] = dn;
	res.ex[2] = dold;
	res.ex[3] = (double)(dn + dold) / n;
	return res;
}

/* ---------------------------------------------------------------------- */
/* W9: overload with blocking writers (block, credit), two producers */

static const int w9_tr[] = { T_PIPE_P, T_UNIX, T_MQ, T_BPQ, T_BPQ };
static const char *const w9_names[] = {
	"pipe-packet", "unix-seqpacket", "mqueue", "bpq-block", "bpq-credit",
};

struct stall_arg {
	struct chan *c;
	unsigned int id, nprod;
	uint64_t n, skip;
	uint64_t *stall;
	atomic_int *done;
	struct stall_arg *all;
	pthread_barrier_t *start;
	atomic_uint_fast64_t sent;
	double fair;		/* set by the first producer to finish */
	pthread_t th;
};

static void *stall_producer(void *p)
{
	struct stall_arg *a = p;
	char *buf = calloc(1, a->c->size);
	uint64_t i, t;

	pthread_barrier_wait(a->start);
	for (i = 1; i <= a->n; i++) {
		put_hdr(buf, a->id, i);
		t = now_ns();
		chan_send(a->c, buf);
		if (i > a->skip)
			a->stall[i - a->skip - 1] = now_ns() - t;
		atomic_store(&a->sent, i);
	}
	/* fairness: how far the others got while this one did all */
	if (atomic_fetch_add(a->done, 1) == 0) {
		uint64_t lo = a->n, hi = a->n, v;
		unsigned int k;

		for (k = 0; k < a->nprod; k++) {
			v = atomic_load(&a->all[k].sent);
			lo = v < lo ? v : lo;
			hi = v > hi ? v : hi;
		}
		a->all[0].fair = (double)lo / hi;
	}
	free(buf);
	return NULL;
}

static struct res run_stall(const struct spec *s, int var)
{
	uint64_t per = s->n, skip = DEPTH / s->prod, m = per - skip, got;
	uint64_t total = per * s->prod, expect[16];
	uint64_t *all = malloc(s->prod * m * sizeof(*all)), t0, t1;
	int credit = var == 4, i;
	atomic_int done = 0;
	static struct stall_arg sa[16];
	pthread_barrier_t start;
	struct res res = { 0 };
	struct chan c;
	struct rx rx;

	if (!all || per <= skip)
		die("W9: bad counts");
	chan_open(&c, w9_tr[var], s->size,
		  credit ? BPQ_STRATEGY_CREDIT : BPQ_STRATEGY_BLOCK,
		  credit ? DEPTH / 4 : 0);
	rx_init(&rx, &c);
	pthread_barrier_init(&start, NULL, s->prod);
	t0 = now_ns();
	for (i = 0; i < s->prod; i++) {
		expect[i] = 1;
		sa[i] = (struct stall_arg){ .c = &c, .id = i, .n = per,
					    .nprod = s->prod, .skip = skip,
					    .stall = all + i * m, .done = &done,
					    .all = sa, .start = &start,
					    .fair = NAN };
		if (pthread_create(&sa[i].th, NULL, stall_producer, &sa[i]))
			die("pthread_create");
	}
	for (got = 0; got < total; got++) {
		uint64_t h = rx_next(&rx), id = h >> 56, seq = h & SEQ_MASK;

		if (id >= (uint64_t)s->prod || seq != expect[id])
			die("producer %llu: seq %llu out of order",
			    (unsigned long long)id, (unsigned long long)seq);
		expect[id]++;
		spin_ns(s->arg);
	}
	t1 = now_ns();
	for (i = 0; i < s->prod; i++)
		pthread_join(sa[i].th, NULL);
	pthread_barrier_destroy(&start);
	rx_free(&rx);
	chan_close(&c);
	res.mps = (double)total * 1e9 / (t1 - t0);
	res.mbps = res.mps * s->size / 1e6;
	percentiles(all, s->prod * m, &res.p50, &res.p99);
	res.ex[0] = sa[0].fair;
	res.ex[1] = all[(s->prod * m * 999) / 1000];
	free(all);
	return res;
}

/* ---------------------------------------------------------------------- */
/* Kernel memory per queued message */

static double slabinfo_bytes(void)
{
	FILE *f = fopen("/proc/slabinfo", "r");
	char line[512], name[128];
	unsigned long active, num, objsize;
	double sum = 0;

	if (!f)
		return NAN;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "%127s %lu %lu %lu", name, &active, &num,
			   &objsize) == 4)
			sum += (double)active * objsize;
	fclose(f);
	return sum;
}

static double meminfo_kb(const char *key)
{
	FILE *f = fopen("/proc/meminfo", "r");
	char line[256];
	size_t len = strlen(key);
	double v = NAN;

	if (!f)
		return NAN;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, len) && line[len] == ':')
			v = strtod(line + len + 1, NULL);
	fclose(f);
	return v;
}

/*
 * Free pages that wait in the per-CPU lists: counted as used by MemFree,
 * and taken or returned there in batches, so they are added back.
 */
static double pcp_free_bytes(void)
{
	FILE *f = fopen("/proc/zoneinfo", "r");
	char line[256];
	unsigned long n;
	double sum = 0;

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, " count: %lu", &n) == 1)
			sum += (double)n * getpagesize();
	fclose(f);
	return sum;
}

/*
 * Slab alone misses what bpq stores small messages in (whole pages, its
 * chunks), so the first figure is all the memory that left the free
 * pages, per-CPU lists included.
 */
static void mem_snapshot(double *m)
{
	write_file("/proc/sys/vm/stat_refresh", "1");
	m[0] = -(meminfo_kb("MemFree") * 1024 + pcp_free_bytes());
	m[1] = slabinfo_bytes();
	m[2] = meminfo_kb("Slab") * 1024;
}

/*
 * Fill KMEM_QUEUES queues with DEPTH messages each (more than one queue
 * only to get past the granularity of the slab counters) and divide; at
 * most KMEM_BYTES of payload per queue (256 messages of 64 KiB).
 */
#define KMEM_QUEUES	8
#define KMEM_BYTES	(16 << 20)

static struct res run_kmem(const struct spec *s, int var)
{
	int m = DEPTH * s->size > KMEM_BYTES ? KMEM_BYTES / s->size : DEPTH;
	double a[3], b[3];
	struct res res = { .mps = NAN, .mbps = NAN, .p50 = NAN, .p99 = NAN };
	struct chan c[KMEM_QUEUES];
	struct rx rx;
	int i, k;

	for (k = 0; k < KMEM_QUEUES; k++)
		chan_open(&c[k], s->var[var], s->size, BPQ_STRATEGY_BLOCK, 0);
	mem_snapshot(a);
	for (k = 0; k < KMEM_QUEUES; k++)
		produce(&c[k], 0, 1, m);
	mem_snapshot(b);
	for (k = 0; k < KMEM_QUEUES; k++) {
		rx_init(&rx, &c[k]);
		for (i = 1; i <= m; i++)
			if (rx_next(&rx) != (uint64_t)i)
				die("seq %d lost", i);
		rx_free(&rx);
		chan_close(&c[k]);
	}
	for (i = 0; i < 3; i++)
		res.ex[i] = (b[i] - a[i]) / (KMEM_QUEUES * m) -
			    (double)s->size;
	return res;
}

/* ---------------------------------------------------------------------- */
/*
 * Q: many queues. Creates s->n named queues (fewer if the memory would not
 * hold them at QUEUE_BUDGET each), timing the first and the last s->arg
 * creates and taking the memory an idle queue costs, then destroys them.
 */
#define QUEUE_BUDGET	(16 << 10)
#define PARAM_MAX_QUEUES	"/sys/module/bpq/parameters/max_queues"

static struct res run_queues(const struct spec *s, int var)
{
	double avail = meminfo_kb("MemAvailable") * 1024 - (512 << 20);
	uint64_t n = s->n, span = s->arg, i, t, first = 0, last = 0, d0;
	unsigned int *idx;
	struct res res = { .mbps = NAN, .p50 = NAN, .p99 = NAN };
	double a[3], b[3];
	char name[BPQ_NAME_MAX], saved[32] = "";
	int fd, r;

	(void)var;
	if (avail / QUEUE_BUDGET < n)
		n = avail > 0 ? avail / QUEUE_BUDGET : 0;
	if (n < 2 * span)
		die("memory for %llu queues only", (unsigned long long)n);
	idx = malloc(n * sizeof(*idx));
	fd = open(PARAM_MAX_QUEUES, O_RDONLY);
	if (!idx || fd < 0 || read(fd, saved, sizeof(saved) - 1) <= 0)
		die("%s: %s", PARAM_MAX_QUEUES, strerror(errno));
	close(fd);
	write_file(PARAM_MAX_QUEUES, "1048576");
	mem_snapshot(a);
	for (i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "benchq%d_%llu", getpid(),
			 (unsigned long long)i);
		t = now_ns();
		r = bpq_create(name, &idx[i]);
		if (r < 0)
			die("bpq_create %llu: %s", (unsigned long long)i,
			    strerror(-r));
		t = now_ns() - t;
		if (i < span)
			first += t;
		else if (i >= n - span)
			last += t;
	}
	mem_snapshot(b);
	d0 = now_ns();
	for (i = 0; i < n; i++) {
		r = bpq_destroy(idx[i]);
		if (r < 0)
			die("bpq_destroy: %s", strerror(-r));
	}
	d0 = now_ns() - d0;
	write_file(PARAM_MAX_QUEUES, saved);
	free(idx);
	/* creates per second, over the two timed spans */
	res.mps = 2.0 * span * 1e9 / (first + last);
	res.ex[0] = (double)n;
	res.ex[1] = first / 1e3 / span;
	res.ex[2] = last / 1e3 / span;
	res.ex[3] = (b[0] - a[0]) / n;
	printf("    Q   bpq: destroying them took %.1f us each\n",
	       d0 / 1e3 / n);
	return res;
}

/* ---------------------------------------------------------------------- */
/*
 * WB: s->prod blocked writers on a full channel, drained by one reader:
 * run_n1 with many producers. bpq-plain-gap has the low watermark at 75 %:
 * writers held back wait until a quarter of the queue is free, and are
 * then let in together, in order.
 */
static const int wb_tr[] = { T_PIPE_P, T_UNIX, T_MQ, T_BPQ, T_BPQ };
static const char *const wb_names[] = {
	"pipe-packet", "unix-seqpacket", "mqueue", "bpq-plain",
	"bpq-plain-gap",
};

static struct res run_wb(const struct spec *s, int var)
{
	struct res res;

	bpq_low_wm = var == 4 ? 75 : 100;
	res = run_n1(s, var);
	bpq_low_wm = 100;
	return res;
}

/* ---------------------------------------------------------------------- */
/*
 * WP: s->cons readers sleep in poll() (or each in its own epoll instance
 * with EPOLLEXCLUSIVE) on one channel and read with O_NONBLOCK; one
 * producer writes. Context switches per message show the thundering herd
 * of waking every poller for every message.
 */
static const int wp_tr[] = { T_PIPE_P, T_PIPE_P, T_BPQ, T_BPQ };
static const char *const wp_names[] = {
	"pipe-packet", "pipe-packet-epollexcl", "bpq-plain",
	"bpq-plain-epollexcl",
};

static void *poll_reader(void *p)
{
	struct cons_arg *a = p;
	struct pollfd pfd = { .fd = a->c->rfd, .events = POLLIN };
	struct epoll_event ev = { .events = EPOLLIN | EPOLLEXCLUSIVE };
	char *buf = malloc(a->c->size);
	uint64_t h, seq, last = 0, n = 0, sum = 0;
	int ep = -1, r;
	ssize_t len;

	if (!buf)
		die("out of memory");
	if (a->excl) {
		ep = epoll_create1(0);
		if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, a->c->rfd, &ev))
			die("epoll: %s", strerror(errno));
	}
	for (;;) {
		len = read(a->c->rfd, buf, a->c->size);
		if (len < 0 && (errno == EAGAIN || errno == EINTR)) {
			do {
				r = a->excl ? epoll_wait(ep, &ev, 1, -1) :
					      poll(&pfd, 1, -1);
			} while (r < 0 && errno == EINTR);
			if (r < 0)
				die("poll: %s", strerror(errno));
			continue;
		}
		if (len != (ssize_t)a->c->size)
			die("read: %s", len < 0 ? strerror(errno) : "short");
		sum += checksum(buf, len);
		memcpy(&h, buf, sizeof(h));
		if (h == STOP)
			break;
		seq = h & SEQ_MASK;
		if (seq <= last || seq >= a->nseen || a->seen[seq])
			die("reader: seq %llu after %llu (dup/reorder)",
			    (unsigned long long)seq, (unsigned long long)last);
		a->seen[seq] = 1;
		last = seq;
		n++;
	}
	payload_sum += sum;
	atomic_fetch_add(a->got, n);
	if (ep >= 0)
		close(ep);
	free(buf);
	return NULL;
}


/* ---------------------------------------------------------------------- */
/* Calibration */

static void *pp_echo(void *p)
{
	int *fds = p;
	char b;

	while (read(fds[0], &b, 1) == 1) {
		if (write(fds[3], &b, 1) != 1 || b == 'q')
			break;
	}
	return NULL;
}

static void calibrate(void)
{
	uint64_t n = count_of(200000), i, t, *rtt;
	static char src[4096], dst[4096];
	double p99;
	int fds[4];
	pthread_t th;
	char b = 'x';

	snprintf(ctx, sizeof(ctx), "calibration");
	t = now_ns();
	for (i = 0; i < n; i++)
		syscall(SYS_getppid);
	calib.null_ns = (double)(now_ns() - t) / n;
	null_ns = calib.null_ns;

	n = count_of(2000000);
	t = now_ns();
	for (i = 0; i < n; i++) {
		memcpy(dst + (i & 7) * 64, src + (i & 7) * 64, 64);
		__asm__ __volatile__("" : : "r"(dst), "r"(src) : "memory");
	}
	calib.memcpy64_ns = (double)(now_ns() - t) / n;

	n = count_of(200000);
	t = now_ns();
	for (i = 0; i < n; i++) {
		memcpy(dst, src, sizeof(src));
		__asm__ __volatile__("" : : "r"(dst), "r"(src) : "memory");
	}
	calib.memcpy4k_ns = (double)(now_ns() - t) / n;

	if (pipe(fds) || pipe(fds + 2))
		die("pipe: %s", strerror(errno));
	if (pthread_create(&th, NULL, pp_echo, fds))
		die("pthread_create");
	n = count_of(4000);
	rtt = malloc(n * sizeof(*rtt));
	if (!rtt)
		die("out of memory");
	for (i = 0; i < n / 10 + n; i++) {
		t = now_ns();
		if (write(fds[1], &b, 1) != 1 || read(fds[2], &b, 1) != 1)
			die("pipe ping-pong: %s", strerror(errno));
		if (i >= n / 10)
			rtt[i - n / 10] = now_ns() - t;
	}
	percentiles(rtt, n, &calib.pipe_rtt_ns, &p99);
	free(rtt);
	b = 'q';
	if (write(fds[1], &b, 1) != 1 || read(fds[2], &b, 1) != 1)
		die("pipe ping-pong: %s", strerror(errno));
	pthread_join(th, NULL);
	for (i = 0; i < 4; i++)
		close(fds[i]);
	printf("calibration: null syscall %.0f ns, memcpy 64 B %.1f ns, "
	       "memcpy 4 KiB %.0f ns, pipe ping-pong p50 %.0f ns "
	       "(%.1f null syscalls)\n",
	       calib.null_ns, calib.memcpy64_ns, calib.memcpy4k_ns,
	       calib.pipe_rtt_ns, calib.pipe_rtt_ns / calib.null_ns);
}

/*
 * --icount: guest nanoseconds per executed instruction, from a loop of
 * known length (dec + jnz: two instructions a turn), timed at n and 2n
 * turns so that the clock reads and the loop's entry cancel out. Each is
 * the fastest of 3 tries. 1.0 when CLOCK_MONOTONIC follows QEMU's
 * instruction counter, plus the timer ticks' share (about 0.1 %). The loops
 * span several ticks, so that another runnable task in the guest (which
 * would take a share of every figure) shows here as well.
 */
static void clock_check(void)
{
#if defined(__x86_64__) || defined(__i386__)
	uint64_t n = count_of(10000000), t[2] = { UINT64_MAX, UINT64_MAX };
	uint64_t i, t0;
	int k, try;

	snprintf(ctx, sizeof(ctx), "clock check");
	for (try = 0; try < 3; try++) {
		for (k = 0; k < 2; k++) {
			i = n << k;
			t0 = now_ns();
			__asm__ __volatile__("1: dec %0\n\tjnz 1b" : "+r"(i));
			t0 = now_ns() - t0;
			t[k] = t0 < t[k] ? t0 : t[k];
		}
	}
	calib.ns_per_insn = (double)(t[1] - t[0]) / (2 * n);
	printf("clock check: %llu instructions took %llu ns, %llu took "
	       "%llu ns: %.4f ns per instruction\n",
	       (unsigned long long)(2 * n), (unsigned long long)t[0],
	       (unsigned long long)(4 * n), (unsigned long long)t[1],
	       calib.ns_per_insn);
#endif
}

/* ---------------------------------------------------------------------- */
/* Setup, output, main */

static void setup_limits(void)
{
	struct rlimit rl = { RLIM_INFINITY, RLIM_INFINITY };
	char v[32];

	if (setrlimit(RLIMIT_MSGQUEUE, &rl))
		fprintf(stderr, "bpq-bench: RLIMIT_MSGQUEUE: %s\n",
			strerror(errno));
	snprintf(v, sizeof(v), "%d", DEPTH);
	write_file("/proc/sys/fs/mqueue/msg_max", v);
	write_file("/proc/sys/net/unix/max_dgram_qlen", v);
	write_file("/proc/sys/fs/mqueue/msgsize_max", "65536");
	write_file("/proc/sys/fs/pipe-max-size", "134217728");
	write_file("/proc/sys/fs/pipe-user-pages-soft", "0");
	signal(SIGALRM, on_alarm);
	signal(SIGPIPE, SIG_IGN);
}

static void json_num(FILE *f, double v)
{
	if (isnan(v) || isinf(v))
		fputs("null", f);
	else if (v == floor(v) && fabs(v) < 1e15)
		fprintf(f, "%.0f", v);
	else
		fprintf(f, "%.6g", v);
}

static void write_json(const char *path)
{
	FILE *f = fopen(path, "w");
	int i;

	if (!f)
		die("%s: %s", path, strerror(errno));
	fprintf(f, "{\n  \"calibration\": {\"null_syscall_ns\": ");
	json_num(f, calib.null_ns);
	fprintf(f, ", \"memcpy_64_ns\": ");
	json_num(f, calib.memcpy64_ns);
	fprintf(f, ", \"memcpy_4096_ns\": ");
	json_num(f, calib.memcpy4k_ns);
	fprintf(f, ", \"pipe_pingpong_ns\": ");
	json_num(f, calib.pipe_rtt_ns);
	fprintf(f, ", \"ns_per_instruction\": ");
	json_num(f, calib.ns_per_insn);
	fprintf(f, ", \"depth\": %d, \"batch\": %d, \"quick\": %s, "
		"\"icount\": %s, \"init_on_alloc\": ", DEPTH, BATCH,
		quick ? "true" : "false", icount ? "true" : "false");
	json_num(f, init_on_alloc < 0 ? NAN : init_on_alloc);
	fprintf(f, "},\n");
	fprintf(f, "  \"records\": [\n");
	for (i = 0; i < nrec; i++) {
		struct record *r = &records[i];

		if (icount) {
			fprintf(f, "    {\"workload\": \"%s\", \"transport\": "
				"\"%s\", \"size\": %zu, \"producers\": %d, "
				"\"consumers\": %d, \"mode\": \"icount\", "
				"\"init_on_alloc\": ", r->wl, r->tr,
				r->size, r->prod, r->cons);
			json_num(f, init_on_alloc < 0 ? NAN : init_on_alloc);
			fputs(", \"instructions_per_msg\": ", f);
			json_num(f, r->ipm);
			fprintf(f, ", \"runs\": %d, \"spread\": ", r->runs);
			json_num(f, r->spread);
			fprintf(f, "}%s\n", i + 1 < nrec ? "," : "");
			continue;
		}
		fprintf(f, "    {\"workload\": \"%s\", \"transport\": \"%s\", "
			"\"size\": %zu, \"producers\": %d, \"consumers\": %d, "
			"\"msgs_per_s\": ", r->wl, r->tr, r->size, r->prod,
			r->cons);
		json_num(f, r->mps);
		fputs(", \"mb_per_s\": ", f);
		json_num(f, r->mbps);
		fputs(", \"p50_ns\": ", f);
		json_num(f, r->p50);
		fputs(", \"p99_ns\": ", f);
		json_num(f, r->p99);
		if (!isnan(r->bop)) {
			fputs(", \"bytes_over_payload\": ", f);
			json_num(f, r->bop);
		}
		if (!isnan(r->load)) {
			fputs(", \"p999_ns\": ", f);
			json_num(f, r->p999);
			fputs(", \"load\": ", f);
			json_num(f, r->load);
			fputs(", \"offered_msgs_per_s\": ", f);
			json_num(f, r->offered);
			fputs(", \"max_backlog\": ", f);
			json_num(f, r->backlog);
		}
		fprintf(f, ", \"runs\": %d, \"spread\": ", r->runs);
		json_num(f, r->spread);
		fprintf(f, "}%s\n", i + 1 < nrec ? "," : "");
	}
	fprintf(f, "  ],\n  \"extra\": [\n");
	for (i = 0; i < nextra; i++) {
		struct extra *x = &extras[i];

		fprintf(f, "    {\"workload\": \"%s\", \"transport\": \"%s\", "
			"\"size\": %zu, \"producers\": %d, \"consumers\": %d, "
			"\"metric\": \"%s\", \"value\": ", x->wl, x->tr,
			x->size, x->prod, x->cons, x->metric);
		json_num(f, x->value);
		fprintf(f, "}%s\n", i + 1 < nextra ? "," : "");
	}
	fprintf(f, "  ]\n}\n");
	if (fclose(f))
		die("%s: %s", path, strerror(errno));
}

static int want(const char *wl)
{
	const char *p;
	size_t n = strlen(wl);

	if (!only)
		return 1;
	for (p = only; (p = strstr(p, wl)); p += n)
		if (p[n] == 0 || p[n] == ',')
			return 1;
	return 0;
}

static void usage(int rc)
{
	fprintf(rc ? stderr : stdout,
		"Usage: bpq-bench [--quick] [--icount] [-o FILE] [-r REPS] "
		"[-s SCALE] [-W W1,W3,...]\n"
		"  --quick   tiny counts, one repetition, a subset: a smoke "
		"test\n"
		"  --icount  the instruction-counting pass: W1 at 64 B only, "
		"in\n"
		"            instructions per message (QEMU -icount shift=0)\n"
		"  -o FILE   write the results as JSON\n"
		"  -r REPS   repetitions per measurement (default 5)\n"
		"  -s SCALE  multiply every message count (default 1)\n"
		"  -W LIST   only these workloads (W1 W2 W3 W4 W5 W6 W7 W8 "
		"W9 WB WP MEM Q)\n"
		"  --marks FILE  a line there as each measurement begins and "
		"ends\n"
		"  --init-on-alloc 0|1  the guest's init_on_alloc, for the "
		"record\n");
	exit(rc);
}

static const int all_tr[] = { T_PIPE_S, T_PIPE_P, T_UNIX, T_MQ, T_BPQ,
			      T_BPQB };
/* W3: also bpq-ring, the ring being one reader's (not W6) */
static const int ring_tr[] = { T_PIPE_S, T_PIPE_P, T_UNIX, T_MQ, T_BPQ,
			       T_BPQB, T_BPQR };
/* W1, W2 at 4 KiB, W5: also the peers' batched modes */
static const int stream_tr[] = { T_PIPE_S, T_PIPE_P, T_UNIX, T_MQ, T_BPQ,
				 T_BPQB, T_BPQR, T_PIPE_SB, T_UNIXM };
/* W1 64 B: also what bpq-plain costs without its per-message counters */
static const int w1_64_tr[] = { T_PIPE_S, T_PIPE_P, T_UNIX, T_MQ, T_BPQ,
				T_BPQN, T_BPQB, T_BPQR, T_PIPE_SB, T_UNIXM };
static const int big_tr[] = { T_PIPE_S, T_UNIX, T_MQ, T_BPQ, T_BPQB,
			      T_BPQR, T_PIPE_SB, T_UNIXM };
static const int mem_tr[] = { T_PIPE_S, T_PIPE_P, T_UNIX, T_MQ, T_BPQ };
/* above a page, pipe-packet would split a message */
static const int mem_big_tr[] = { T_PIPE_S, T_UNIX, T_MQ, T_BPQ };
#define N_ALL_TR	ARRAY_LEN(all_tr)
#define N_RING_TR	ARRAY_LEN(ring_tr)
#define N_STREAM_TR	ARRAY_LEN(stream_tr)
#define N_BIG_TR	ARRAY_LEN(big_tr)
#define N_W1_64_TR	ARRAY_LEN(w1_64_tr)

int main(int argc, char **argv)
{
	const char *out = NULL, *marks_path = NULL;
	static const size_t w1_sizes[] = { 8, 64, 256 };
	static const size_t w2_sizes[] = { 4096, 65536 };
	static const int w5_n[] = { 1, 2, 4 };
	static const int w6_n[] = { 2, 4 };
	static const int w4_load[] = { 10, 50, 90 };	/* % of saturation */
	static const int wb_n[] = { 1, 16, 256 };
	static const size_t mem_sizes[] = { 8, 64, 73, 457, 2048, 4096,
					    65536 };
	uint64_t start = now_ns();
	struct spec s;
	int i;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--quick"))
			quick = 1;
		else if (!strcmp(argv[i], "--icount"))
			icount = 1;
		else if (!strcmp(argv[i], "-o") && i + 1 < argc)
			out = argv[++i];
		else if (!strcmp(argv[i], "-r") && i + 1 < argc)
			reps = atoi(argv[++i]);
		else if (!strcmp(argv[i], "-s") && i + 1 < argc)
			scale = atof(argv[++i]);
		else if (!strcmp(argv[i], "-W") && i + 1 < argc)
			only = argv[++i];
		else if (!strcmp(argv[i], "--marks") && i + 1 < argc)
			marks_path = argv[++i];
		else if (!strcmp(argv[i], "--init-on-alloc") && i + 1 < argc)
			init_on_alloc = atoi(argv[++i]);
		else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help"))
			usage(0);
		else
			usage(2);
	}
	if (quick)
		reps = 1;
	if (reps < 1 || reps > MAX_REPS || !(scale > 0))
		usage(2);
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (marks_path && !(marks = fopen(marks_path, "w")))
		die("%s: %s", marks_path, strerror(errno));
	setup_limits();
	calibrate();
	if (icount) {
		clock_check();
		only = "W1";
	}
	printf("depth %d messages, batch %d, %d repetition(s), interleaved; "
	       "median, spread = (max-min)/median;\n%s\n\n", DEPTH, BATCH,
	       reps, icount ? "insns/msg = guest instructions per message, "
	       "writer and reader together (elapsed ns under -icount "
	       "shift=0)" : "nsys/msg = time per message (W3: p50 round "
	       "trip, W4: p50 one way) in null syscalls");
	table_header();

	if (want("W1")) {
		for (i = 0; i < 3; i++) {
			int m = w1_sizes[i] == 64;

			if ((quick || icount) && !m)
				continue;
			s = (struct spec){ "W1", w1_sizes[i], 1, 1,
					   m ? N_W1_64_TR : N_STREAM_TR,
					   m ? w1_64_tr : stream_tr, NULL,
					   { "consumer_wakeups_per_msg",
					     "producer_wakeups_per_msg" },
					   /* icount: stable to 0.5 % */
					   run_n1, count_of(icount ? 160000 :
							    40000), 0 };
			measure(&s);
		}
	}
	if (want("W2")) {
		for (i = 0; i < 2; i++) {
			int big = w2_sizes[i] > 4096;

			s = (struct spec){ "W2", w2_sizes[i], 1, 1,
					   big ? N_BIG_TR : N_STREAM_TR,
					   big ? big_tr : stream_tr, NULL,
					   { "consumer_wakeups_per_msg",
					     "producer_wakeups_per_msg" },
					   run_n1,
					   count_of(big ? 2000 : 10000), 0 };
			measure(&s);
			if (quick)
				break;
		}
	}
	if (want("W3")) {
		s = (struct spec){ "W3", 64, 1, 1, N_RING_TR, ring_tr, NULL,
				   { 0 }, run_pp, count_of(4000), 0 };
		measure(&s);
	}
	if (want("W4")) {
		w4_setup();
		for (i = 0; i < 3; i++) {
			if (quick && w4_load[i] != 50)
				continue;
			s = (struct spec){ "W4", 64, 1, 1, N_W4_TR, w4_tr, NULL,
					   { 0 }, run_w4, count_of(20000),
					   w4_load[i] };
			measure(&s);
		}
	}
	if (want("W5")) {
		for (i = 0; i < 3; i++) {
			if (quick && w5_n[i] != 2)
				continue;
			s = (struct spec){ "W5", 64, w5_n[i], 1, N_STREAM_TR,
					   stream_tr, NULL,
					   { "consumer_wakeups_per_msg",
					     "producer_wakeups_per_msg" },
					   run_n1, count_of(32000), 0 };
			measure(&s);
		}
	}
	if (want("W6")) {
		for (i = 0; i < 2; i++) {
			if (quick && w6_n[i] != 2)
				continue;
			s = (struct spec){ "W6", 64, 1, w6_n[i], N_ALL_TR,
					   all_tr, NULL, { "csw_per_msg" },
					   run_1n, count_of(20000), 0 };
			measure(&s);
		}
	}
	if (want("W7")) {
		s = (struct spec){ "W7", 64, 1, 1, N_ALL_TR, all_tr, NULL,
				   { "consumer_wakeups_per_burst",
				     "producer_blocks_per_burst" },
				   run_burst, quick ? 3 : 40, DEPTH / 2 };
		measure(&s);
	}
	if (want("W8")) {
		/* consumer: 200 us of work per message */
		s = (struct spec){ "W8", 64, 1, 1, 4, NULL, w8_names,
				   { "offered_msgs_per_s", "dropped_newest",
				     "dropped_oldest", "drop_fraction" },
				   /* even --quick must overflow the queue */
				   run_drop, count_of(4000) > 2600 ?
				   count_of(4000) : 2600, 200000 };
		measure(&s);
	}
	if (want("W9")) {
		/* consumer: 100 us of work per message; stalls after fill */
		s = (struct spec){ "W9", 64, 2, 1, 5, w9_tr, w9_names,
				   { "fairness_min_over_max", "p999_stall_ns" },
				   run_stall, DEPTH / 2 + count_of(1000),
				   100000 };
		measure(&s);
	}
	if (want("WB")) {
		for (i = 0; i < 3; i++) {
			if (quick && wb_n[i] != 16)
				continue;
			s = (struct spec){ "WB", 64, wb_n[i], 1,
					   ARRAY_LEN(wb_tr), wb_tr, wb_names,
					   /* run_n1()'s order */
					   { "consumer_wakeups_per_msg",
					     "producer_wakeups_per_msg",
					     "csw_per_msg" },
					   run_wb, count_of(32000), 0 };
			measure(&s);
		}
	}
	if (want("WP")) {
		for (i = 0; i < 3; i++) {
			if (quick && wb_n[i] != 16)
				continue;
			s = (struct spec){ "WP", 64, 1, wb_n[i],
					   ARRAY_LEN(wp_tr), wp_tr, wp_names,
					   { "csw_per_msg" }, run_1n,
					   count_of(20000), 0 };
			measure(&s);
		}
	}
	if (want("MEM")) {
		int keep = reps;

		/* at least 3 repetitions: one figure moves with the others */
		reps = reps < 3 ? 3 : reps;
		for (i = 0; i < ARRAY_LEN(mem_sizes); i++) {
			int big = mem_sizes[i] > 4096;

			if (quick && mem_sizes[i] != 64 && mem_sizes[i] != 73)
				continue;
			s = (struct spec){ "MEM", mem_sizes[i], 1, 0,
					   big ? ARRAY_LEN(mem_big_tr) :
					   ARRAY_LEN(mem_tr),
					   big ? mem_big_tr : mem_tr, NULL,
					   { "kmem_used_B_over_payload",
					     "kmem_slabinfo_B_over_payload",
					     "kmem_meminfo_slab_B_over_payload" },
					   run_kmem, DEPTH, 0 };
			measure(&s);
		}
		reps = keep;
	}
	if (want("Q")) {
		int keep = reps;
		static const int q_var[] = { T_BPQ };
		static const char *const q_names[] = { "bpq" };

		/* 100,000 queues take a minute or more: one repetition */
		reps = 1;
		s = (struct spec){ "Q", 0, 0, 0, 1, q_var, q_names,
				   { "queues", "create_us_first_1000",
				     "create_us_last_1000",
				     "bytes_per_idle_queue" },
				   /*
				    * --quick: 300, the first and last 100
				    * (a debug kernel's guest makes about 30
				    * a second)
				    */
				   run_queues, quick ? 300 : 100000,
				   quick ? 100 : 1000 };
		measure(&s);
		reps = keep;
	}
	snprintf(ctx, sizeof(ctx), "output");
	if (out)
		write_json(out);
	printf("\nbpq-bench: done in %.1f s, %d records, all sequence checks "
	       "passed\n", (now_ns() - start) / 1e9, nrec);
	return 0;
}
