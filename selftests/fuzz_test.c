// SPDX-License-Identifier: GPL-2.0
/*
 * A bounded random-operation fuzzer: several threads issue random valid and
 * invalid calls for a fixed time on /dev/bpq0..3, on queues they create and
 * destroy through /dev/bpq-control, on the control device and in sysfs.
 *
 * Every result is checked against what that call may return: a table of
 * allowed errnos per call, narrowed to one errno where the arguments alone
 * decide it (a bad struct size, a bad pointer, an invalid field), and
 * success where it must succeed. Every message read is checked byte for
 * byte (writers write a self-describing pattern), every stats snapshot must
 * balance, every config read back must be valid.
 *
 * Nothing waits without bound: a blocking call is preceded by a per-thread
 * timer that interrupts it (SIGUSR2, no SA_RESTART: EINTR), and a watchdog
 * ends the run if a worker makes no progress for 10 s.
 *
 *   BPQ_FUZZ_SECONDS  run time (default 20)
 *   BPQ_FUZZ_SEED     replay a run: the seed printed at the start
 *   BPQ_FUZZ_THREADS  workers (default 6)
 *
 * Output is TAP; the exit status is 0 if every check held. At the end the
 * queues it created are destroyed and /dev/bpq0..3 are back at their
 * defaults.
 */
#define _GNU_SOURCE
#include <limits.h>
#include <stdarg.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/uio.h>

#include "bpq_test.h"

#define MAX_THREADS	32
#define NFIXED		4		/* /dev/bpq0..3 */
#define NFDS		8		/* open queue files per thread */
#define MAX_CREATED	6
#define MAX_INDEX	1024		/* BPQ_MINORS */
#define MSG_MAX		(4U << 20)	/* largest max_msg_size */
#define BUF_SZ		(MSG_MAX + 8192)
#define END_MAX		4096		/* longest message written at a buffer's end */
#define NSLOTS		16		/* batch send: distinct messages */
#define SLOT_SZ		8192
#define NVECS		(1024 + 8)
#define STALL_SECS	10
#define NERRNO		134
#define CAP_BYTES_MAX	(16U << 20)	/* what the fuzzer lets a queue hold */
#define KERNEL_PTR	((void *)0xffff888000000000UL)

typedef unsigned __int128 emask;
#define EM(e)		((emask)1 << (e))

#define KINDS(X)							\
	X(write) X(writev) X(read) X(readv)				\
	X(get_config) X(set_config) X(get_stats) X(reset_stats)		\
	X(grant) X(flush) X(recv) X(send_batch) X(recv_batch)		\
	X(bad_ioctl) X(create) X(destroy) X(control_misc) X(link)	\
	X(poll) X(epoll) X(sysfs_write) X(sysfs_read)			\
	X(open) X(close) X(seek_mmap) X(trigger) X(group)

enum kind {
#define X(n) K_##n,
	KINDS(X)
#undef X
	NKINDS
};

static const char *const kind_names[] = {
#define X(n) #n,
	KINDS(X)
#undef X
};

/* Relative frequency of each kind. */
static const unsigned int kind_weight[NKINDS] = {
	[K_write] = 14, [K_writev] = 5, [K_read] = 14, [K_readv] = 5,
	[K_get_config] = 4, [K_set_config] = 6, [K_get_stats] = 5,
	[K_reset_stats] = 2, [K_grant] = 3, [K_flush] = 2, [K_recv] = 8,
	[K_send_batch] = 6, [K_recv_batch] = 6, [K_bad_ioctl] = 3,
	[K_create] = 2, [K_destroy] = 1, [K_control_misc] = 2, [K_link] = 2,
	[K_poll] = 3,
	[K_epoll] = 4, [K_sysfs_write] = 5, [K_sysfs_read] = 2, [K_open] = 4,
	[K_close] = 2, [K_seek_mmap] = 1, [K_trigger] = 2, [K_group] = 2,
};

static struct {
	uint64_t seed;
	int seconds;
	int nthreads;
	int stop;			/* atomic */
	int failures;			/* atomic */
	bool root;
	void *bad_page;			/* PROT_NONE */
	long page;

	pthread_mutex_t lock;		/* the created queues */
	int created[MAX_CREATED];
	char names[MAX_CREATED][BPQ_NAME_MAX];
	int ncreated;

	uint32_t max_msg[MAX_INDEX];	/* last max_msg_size seen */

	/* figures, atomic */
	uint64_t ops[NKINDS];
	uint64_t errs[NERRNO];
	uint64_t calls, succeeded;
	uint64_t msgs_written, msgs_read, bytes_read;
	uint64_t creates, destroys, configs, sysfs_writes, snapshots;
	uint64_t interrupted;
} G = { .lock = PTHREAD_MUTEX_INITIALIZER };

struct fz_fd {
	int fd;				/* -1: free */
	int idx;
	bool fixed;			/* one of bpq0..3: never destroyed */
	bool nonblock;
	int acc;			/* O_RDONLY, O_WRONLY or O_RDWR */
	bool in_ep;
};

struct fz {
	int id;
	pthread_t thr;
	pid_t tid;
	uint64_t rng;
	struct fz_fd fds[NFDS];
	int cfd, epfd;
	unsigned char *wbuf, *rbuf;	/* BUF_SZ, then a PROT_NONE page */
	unsigned char *ibuf;		/* ioctl structs: 2 pages, then PROT_NONE */
	unsigned char *slots;		/* NSLOTS * SLOT_SZ */
	struct bpq_iovec *vecs;		/* NVECS */
	struct bpq_msg_info *infos;	/* 1024 */
	timer_t timer;
	bool armed;
	uint64_t nops;
	uint64_t progress;		/* atomic, for the watchdog */
	char op[384];
};

static struct fz threads[MAX_THREADS];

#define add(var, n)	__atomic_add_fetch(&(var), (n), __ATOMIC_RELAXED)

static bool stopping(void)
{
	return __atomic_load_n(&G.stop, __ATOMIC_RELAXED);
}

/* ---- randomness: splitmix64 for seeding, xorshift64* per thread ---- */

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static uint64_t rnd64(struct fz *t)
{
	t->rng ^= t->rng >> 12;
	t->rng ^= t->rng << 25;
	t->rng ^= t->rng >> 27;
	return t->rng * 0x2545f4914f6cdd1dULL;
}

static uint32_t rnd(struct fz *t, uint32_t n)
{
	return n ? (uint32_t)(rnd64(t) >> 32) % n : 0;
}

static bool chance(struct fz *t, unsigned int pct)
{
	return rnd(t, 100) < pct;
}

#define PICK(t, arr)	((arr)[rnd((t), ARRAY_LEN(arr))])

/* ---- reporting ---- */

static const char *ename(int e)
{
	const char *s = strerrorname_np(e);

	return s ? s : "E?";
}

static void mask_str(emask m, char *buf, size_t len)
{
	size_t n = 0;
	int e;

	buf[0] = '\0';
	for (e = 1; e < 128 && n < len; e++)
		if (m & EM(e))
			n += snprintf(buf + n, len - n, "%s%s", n ? "," : "",
				      ename(e));
}

static void fail(struct fz *t, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	printf("# FAIL: thread %d, operation %llu: %s: %s\n", t->id,
	       (unsigned long long)t->nops, t->op, msg);
	fflush(stdout);
	add(G.failures, 1);
	__atomic_store_n(&G.stop, 1, __ATOMIC_RELAXED);
}

/*
 * Account for one call of kind @k that returned @ret (>= 0, or -errno) and
 * check it: an error must be in @allowed, success must be allowed.
 * Returns true on an accepted success.
 */
static bool check(struct fz *t, enum kind k, long ret, emask allowed,
		  bool may_succeed)
{
	char set[256];
	int e;

	add(G.ops[k], 1);
	add(G.calls, 1);
	t->nops++;
	if (ret >= 0) {
		if (!may_succeed) {
			mask_str(allowed, set, sizeof(set));
			fail(t, "returned %ld, expected an error in {%s}", ret,
			     set);
			return false;
		}
		add(G.succeeded, 1);
		return true;
	}
	e = (int)-ret;
	if (e < NERRNO)
		add(G.errs[e], 1);
	if (e == EINTR)
		add(G.interrupted, 1);
	if (e >= 128 || !(allowed & EM(e))) {
		mask_str(allowed, set, sizeof(set));
		fail(t, "unexpected errno %s (%d); allowed {%s}%s", ename(e), e,
		     set, may_succeed ? " or success" : "");
	}
	return false;
}

#define OP(t, ...)	snprintf((t)->op, sizeof((t)->op), __VA_ARGS__)

/* ---- payloads: a pattern relative to the message start, its length first ---- */

#define PAT(i)	((unsigned char)((i) * 7 + ((i) >> 8) + 0x5a))

/* Set the header of a message of @len bytes at @p whose body is PAT already. */
static void set_hdr(unsigned char *p, size_t len)
{
	uint32_t a = (uint32_t)len, b = ~a;
	size_t i;

	if (len >= 8) {
		memcpy(p, &a, 4);
		memcpy(p + 4, &b, 4);
	} else {
		for (i = 0; i < len; i++)
			p[i] = PAT(i);
	}
}

static void fill_msg(unsigned char *p, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		p[i] = PAT(i);
	set_hdr(p, len);
}

/* Is this a message some writer wrote? Long ones are sampled at both ends. */
static bool msg_ok(const unsigned char *p, size_t len)
{
	uint32_t a, b;
	size_t i = 0, lim = len < 65536 ? len : 65536;

	if (len >= 8) {
		memcpy(&a, p, 4);
		memcpy(&b, p + 4, 4);
		if (a != len || b != ~a)
			return false;
		i = 8;
	}
	for (; i < lim; i++)
		if (p[i] != PAT(i))
			return false;
	for (i = len - 4096 > lim && len > 4096 ? len - 4096 : lim; i < len; i++)
		if (p[i] != PAT(i))
			return false;
	return true;
}

/* ---- the blocking-call timer ---- */

static void on_sigusr2(int sig)
{
	(void)sig;
}

/*
 * Periodic: a first shot that fires before the call goes to sleep (a slow
 * kernel, a preempted thread) is followed by more, so no call sleeps for
 * good.
 */
static void arm(struct fz *t)
{
	struct itimerspec its = {
		.it_value = { 0, (long)(1 + rnd(t, 25)) * 1000000L },
		.it_interval = { 0, 20 * 1000000L },
	};

	timer_settime(t->timer, 0, &its, NULL);
	t->armed = true;
}

static void disarm(struct fz *t)
{
	struct itimerspec its = { };

	timer_settime(t->timer, 0, &its, NULL);
	t->armed = false;
}

/* ---- queue files ---- */

static const char *acc_name(int acc)
{
	return acc == O_RDONLY ? "ro" : acc == O_WRONLY ? "wo" : "rw";
}

static char *fd_desc(struct fz_fd *f, char *buf, size_t len)
{
	snprintf(buf, len, "fd %d (bpq%d, %s, %s%s)", f->fd, f->idx,
		 f->fixed ? "fixed" : "created", acc_name(f->acc),
		 f->nonblock ? ", O_NONBLOCK" : "");
	return buf;
}

static struct fz_fd *pick_fd(struct fz *t)
{
	int i, n = 0, idx[NFDS];

	for (i = 0; i < NFDS; i++)
		if (t->fds[i].fd >= 0)
			idx[n++] = i;
	return n ? &t->fds[idx[rnd(t, n)]] : NULL;
}

/* Errors any call on @f may give: its queue destroyed, its wait interrupted. */
static emask qmask(struct fz *t, struct fz_fd *f)
{
	return (f->fixed ? 0 : EM(ENODEV)) | (t->armed ? EM(EINTR) : 0);
}

static uint32_t max_msg(int idx)
{
	uint32_t m = __atomic_load_n(&G.max_msg[idx], __ATOMIC_RELAXED);

	return m ? m : BPQ_DEF_MAX_MSG_SIZE;
}

static void note_max_msg(int idx, uint32_t m)
{
	if (idx >= 0 && idx < MAX_INDEX)
		__atomic_store_n(&G.max_msg[idx], m, __ATOMIC_RELAXED);
}

static size_t pick_len(struct fz *t, uint32_t max)
{
	static const size_t huge[] = {
		(size_t)1 << 31, (size_t)1 << 40, SSIZE_MAX, SIZE_MAX,
	};
	size_t small = max < 512 ? max : 512;

	switch (rnd(t, 10)) {
	case 0: return 0;
	case 1: return 1;
	case 2: return max - 1;
	case 3: return max;
	case 4: return (size_t)max + 1;
	case 5: return chance(t, 30) ? PICK(t, huge) : 1 + rnd(t, small);
	case 6: return 1 + rnd(t, max);
	default: return 1 + rnd(t, small);
	}
}

static bool is_huge(size_t len)
{
	return len > BUF_SZ;
}

/* Where a user buffer points. */
enum ptr_kind {
	P_OK,		/* start of our buffer */
	P_END,		/* ends where the PROT_NONE guard starts: valid */
	P_STRADDLE,	/* second half in the guard page */
	P_NULL, P_ONE, P_NONE, P_KERN,
	NPTR
};

static const char *const ptr_names[] = {
	"buf", "buf-end", "straddle", "NULL", "(void *)1", "PROT_NONE",
	"kernel",
};

static int pick_ptr(struct fz *t, size_t len, size_t end_max)
{
	int k = chance(t, 82) ? (chance(t, 80) ? P_OK : P_END) :
			       P_STRADDLE + (int)rnd(t, NPTR - P_STRADDLE);

	if ((k == P_END && len > end_max) ||
	    (k == P_STRADDLE && (len > BUF_SZ || len < 2)))
		k = P_OK;
	return k;
}

static bool ptr_bad(int k)
{
	return k >= P_STRADDLE;
}

static unsigned char *ptr_for(unsigned char *buf, size_t len, int k)
{
	switch (k) {
	case P_END: return buf + BUF_SZ - len;
	case P_STRADDLE: return buf + BUF_SZ - len / 2;
	case P_NULL: return NULL;
	case P_ONE: return (unsigned char *)1;
	case P_NONE: return G.bad_page;
	case P_KERN: return KERNEL_PTR;
	default: return buf;
	}
}

/* The longest prefix of a @len-byte buffer of kind @k that is mapped. */
static size_t ptr_room(size_t len, int k)
{
	switch (k) {
	case P_OK: case P_END: return len;
	case P_STRADDLE: return len / 2;
	default: return 0;
	}
}

/* ---- ioctl framing: struct size and placement ---- */

enum frame {
	F_EXACT, F_EDGE, F_SHORT, F_LONG_ZERO, F_LONG_GARBAGE, F_HUGE,
	F_BADPTR,
};

static const char *const frame_names[] = {
	"exact", "at page end", "short", "long, zero tail", "long, garbage tail",
	"huge size", "bad pointer",
};

/*
 * Issue @cmd with struct @s (@sz bytes, first published size @min_sz) in a
 * random framing. *forced gets the errno the framing alone decides (0 for
 * none). Output of the kernel is copied back into @s.
 */
/* The first published sizes: anything shorter never was a struct */
#define CONFIG_SIZE_VER0	64
#define STATS_SIZE_VER0		416

static long framed_ioctl(struct fz *t, int fd, unsigned long cmd, void *s,
			 size_t sz, size_t min_sz, int *forced, char *desc,
			 size_t desc_len)
{
	size_t room = 2 * G.page, usize = sz;
	unsigned char *p = t->ibuf;
	void *arg = p;
	int fr = F_EXACT, k;
	long ret;

	*forced = 0;
	switch (rnd(t, 20)) {
	case 0: case 1: fr = F_EDGE; break;
	case 2: fr = F_SHORT; break;
	case 3: fr = F_LONG_ZERO; break;
	case 4: fr = F_LONG_GARBAGE; break;
	case 5: fr = chance(t, 50) ? F_HUGE : F_BADPTR; break;
	}
	memset(p, 0, room);
	switch (fr) {
	case F_EDGE:
		p += room - sz;
		arg = p;
		break;
	case F_SHORT:
		usize = rnd(t, (uint32_t)min_sz);
		*forced = EINVAL;
		break;
	case F_LONG_ZERO:
		usize = sz + (chance(t, 50) ? 8 * (1 + rnd(t, 8)) : room - sz);
		break;
	case F_LONG_GARBAGE:
		usize = sz + 1 + rnd(t, (uint32_t)(room - sz));
		p[sz + rnd(t, (uint32_t)(usize - sz))] = 1 + rnd(t, 255);
		*forced = E2BIG;
		break;
	case F_HUGE:
		/* the zero tail runs into the guard page */
		p += room - sz - 64;
		arg = p;
		usize = chance(t, 50) ? 0xffffffffU : 1U << 20;
		*forced = EFAULT;
		break;
	case F_BADPTR:
		k = P_NULL + (int)rnd(t, NPTR - P_NULL);
		arg = ptr_for(NULL, 0, k);
		*forced = EFAULT;
		break;
	}
	*(uint32_t *)s = (uint32_t)usize;
	if (fr != F_BADPTR)
		memcpy(p, s, sz);
	snprintf(desc, desc_len, "size %zu (%s)", usize, frame_names[fr]);
	ret = ioctl(fd, cmd, arg);
	ret = ret < 0 ? -errno : ret;
	if (fr != F_BADPTR)
		memcpy(s, p, sz);
	if (fr == F_LONG_ZERO && ret >= 0) {
		size_t i;

		for (i = sz; i < usize; i++)
			if (p[i]) {
				fail(t, "byte %zu beyond the struct written", i);
				break;
			}
	}
	return ret;
}

/* ---- configs ---- */

/* bpq_check_config() as include/uapi/linux/bpq.h documents it. */
static int config_errno(const struct bpq_config *c)
{
	if (c->flags || c->__reserved || c->read_mode > 1)
		return EINVAL;
	if (c->strategy > BPQ_STRATEGY_WINDOW)
		return EINVAL;
	if (!c->capacity_msgs || c->capacity_msgs > (1U << 20))
		return EINVAL;
	if (!c->capacity_bytes || c->capacity_bytes > (1ULL << 30))
		return EINVAL;
	if (!c->max_msg_size || c->max_msg_size > MSG_MAX)
		return EINVAL;
	if (!c->low_watermark || c->low_watermark > c->high_watermark ||
	    c->high_watermark > 100)
		return EINVAL;
	if (c->auto_credit > BPQ_AUTO_CREDIT_ACK)
		return EINVAL;
	if (!c->target_latency_us || c->target_latency_us > 60000000)
		return EINVAL;
	if (!c->min_rate || c->max_rate < c->min_rate)
		return EINVAL;
	if (!c->adjust_interval_ms || c->adjust_interval_ms > 60000)
		return EINVAL;
	if (c->hangup > BPQ_HANGUP_BOTH || c->ack_mode > BPQ_ACK_MODE_DELIVERY)
		return EINVAL;
	if (!c->min_cwnd || c->min_cwnd > c->initial_cwnd ||
	    c->initial_cwnd > c->max_cwnd || c->max_cwnd > (1U << 20))
		return EINVAL;
	if (!c->initial_ssthresh || c->initial_ssthresh > (1U << 20) ||
	    c->ack_timeout_ms > 3600000)
		return EINVAL;
	if (!c->increase_pct || c->increase_pct > 1000 ||
	    !c->decrease_pct || c->decrease_pct > 99)
		return EINVAL;
	return 0;
}

/* Mostly valid, each field now and then out of range. */
static void rand_config(struct fz *t, struct bpq_config *c)
{
	static const uint32_t caps[] = {
		1, 2, 3, 4, 16, 64, 256, 1000, 65536, 1U << 20,
	};
	static const uint32_t bad_caps[] = {
		0, (1U << 20) + 1, 1U << 31, 0xffffffffU,
	};
	static const uint64_t bytes[] = {
		1, 64, 4096, 65536, 1 << 20, CAP_BYTES_MAX,
	};
	static const uint64_t bad_bytes[] = {
		0, (1ULL << 30) + 1, 1ULL << 32, ~0ULL,
	};
	static const uint32_t sizes[] = {
		1, 7, 64, 4096, 65536, MSG_MAX,
	};
	static const uint32_t bad_sizes[] = { 0, MSG_MAX + 1, 0xffffffffU };
	static const uint32_t timeouts[] = { 0, 1, 5, 20, 50 };
	static const uint32_t rates[] = { 1, 100, 1000, 100000 };

	bpq_default_config(c);
	c->strategy = chance(t, 3) ? 6 + rnd(t, 100) : rnd(t, 6);
	c->capacity_msgs = chance(t, 3) ? PICK(t, bad_caps) :
			   chance(t, 50) ? PICK(t, caps) : 1 + rnd(t, 300);
	c->capacity_bytes = chance(t, 3) ? PICK(t, bad_bytes) :
			    chance(t, 60) ? PICK(t, bytes) :
			    1 + rnd(t, CAP_BYTES_MAX);
	c->max_msg_size = chance(t, 3) ? PICK(t, bad_sizes) :
			  chance(t, 60) ? PICK(t, sizes) : 1 + rnd(t, 100000);
	c->high_watermark = chance(t, 3) ? (chance(t, 50) ? 0 : 101 + rnd(t, 5)) :
			    chance(t, 50) ? 100 : 1 + rnd(t, 100);
	c->low_watermark = chance(t, 3) ? (chance(t, 50) ? 0 : c->high_watermark + 1) :
			   1 + rnd(t, c->high_watermark ? c->high_watermark : 1);
	c->write_timeout_ms = PICK(t, timeouts);
	c->auto_credit = chance(t, 2) ? 3 + rnd(t, 10) : rnd(t, 3);
	c->target_latency_us = chance(t, 2) ? (chance(t, 50) ? 0 : 60000001) :
			       1 + rnd(t, 100000);
	c->min_rate = chance(t, 2) ? 0 : PICK(t, rates);
	c->max_rate = chance(t, 3) ? c->min_rate - 1 :
		      c->min_rate + rnd(t, 1000000);
	c->adjust_interval_ms = chance(t, 2) ? (chance(t, 50) ? 0 : 60001) :
				1 + rnd(t, 1000);
	if (chance(t, 2))
		c->flags = 1U << rnd(t, 32);
	if (chance(t, 2))
		c->__reserved = 1 + rnd(t, 1000);
	/* the stream stays open: no hangup here, only a bad one */
	if (chance(t, 2))
		c->hangup = 4 + rnd(t, 100);
	c->ack_mode = chance(t, 2) ? 2 + rnd(t, 10) : rnd(t, 2);
	c->min_cwnd = chance(t, 2) ? 0 : 1 + rnd(t, 8);
	c->initial_cwnd = c->min_cwnd + rnd(t, 16) - (chance(t, 2) ? 1 : 0);
	c->max_cwnd = chance(t, 2) ? (1U << 20) + 1 :
		      c->initial_cwnd + rnd(t, 1000);
	c->initial_ssthresh = chance(t, 2) ? 0 : 1 + rnd(t, 1000);
	c->ack_timeout_ms = chance(t, 2) ? 3600001 : rnd(t, 2000);
	/* reads stay whole (the checks read headers): only a bad read_mode */
	if (chance(t, 2))
		c->read_mode = 2 + rnd(t, 100);
	c->increase_pct = chance(t, 2) ? (chance(t, 50) ? 0 : 1001) :
			  1 + rnd(t, 1000);
	c->decrease_pct = chance(t, 2) ? (chance(t, 50) ? 0 : 100) :
			  1 + rnd(t, 99);
}

/* ---- read and write ---- */

static void op_write(struct fz *t)
{
	struct fz_fd *f = pick_fd(t);
	size_t len;
	int k;
	unsigned char *p;
	char fdd[96];
	emask allowed;
	bool may;
	long ret;

	if (!f)
		return;
	len = pick_len(t, max_msg(f->idx));
	k = pick_ptr(t, len, END_MAX);
	p = ptr_for(t->wbuf, len, k);
	if (k == P_OK && !is_huge(len))
		set_hdr(p, len);
	else if (k == P_END)
		fill_msg(p, len);
	OP(t, "write(%s, %s, %zu)", fd_desc(f, fdd, sizeof(fdd)), ptr_names[k],
	   len);
	if (!f->nonblock)
		arm(t);
	ret = write(f->fd, p, len);
	ret = ret < 0 ? -errno : ret;
	allowed = EM(ENOBUFS) | EM(EMSGSIZE) | EM(ENOMEM) | qmask(t, f) |
		  (f->nonblock ? EM(EAGAIN) : EM(ETIMEDOUT));
	disarm(t);
	may = !ptr_bad(k) && !is_huge(len);
	if (ptr_bad(k) || is_huge(len))
		allowed |= EM(EFAULT);
	if (!len)
		may = true;
	if (f->acc == O_RDONLY) {
		allowed = EM(EBADF);
		may = false;
	}
	if (check(t, K_write, ret, allowed, may)) {
		if ((size_t)ret != len)
			fail(t, "wrote %ld bytes of %zu", ret, len);
		else if (len)
			add(G.msgs_written, 1);
	}
}

/* Check one message received into @p (from a buffer of kind @k). */
static void got_msg(struct fz *t, const unsigned char *p, size_t n, int k)
{
	if (k == P_OK || k == P_END || k == P_STRADDLE) {
		if (!msg_ok(p, n))
			fail(t, "message of %zu bytes is corrupt", n);
	}
	add(G.msgs_read, 1);
	add(G.bytes_read, n);
}

static void op_read(struct fz *t)
{
	struct fz_fd *f = pick_fd(t);
	size_t len;
	int k;
	unsigned char *p;
	char fdd[96];
	emask allowed;
	bool may;
	long ret;

	if (!f)
		return;
	len = pick_len(t, max_msg(f->idx));
	k = pick_ptr(t, len, BUF_SZ);
	p = ptr_for(t->rbuf, len, k);
	OP(t, "read(%s, %s, %zu)", fd_desc(f, fdd, sizeof(fdd)), ptr_names[k],
	   len);
	if (!f->nonblock)
		arm(t);
	ret = read(f->fd, p, len);
	ret = ret < 0 ? -errno : ret;
	allowed = EM(EMSGSIZE) | qmask(t, f) | (f->nonblock ? EM(EAGAIN) : 0);
	disarm(t);
	may = !ptr_bad(k) || k == P_STRADDLE || !len;
	if (ptr_bad(k) || is_huge(len))
		allowed |= EM(EFAULT);
	if (f->acc == O_WRONLY) {
		allowed = EM(EBADF);
		may = false;
	}
	if (!check(t, K_read, ret, allowed, may))
		return;
	if ((size_t)ret > ptr_room(len, k) || (!len && ret))
		fail(t, "read %ld bytes into %zu (%zu mapped)", ret, len,
		     ptr_room(len, k));
	else if (ret)
		got_msg(t, p, ret, k);
}

/*
 * readv/writev: zero vectors, too many, a total over SSIZE_MAX, a bad
 * vector array, or a split of the buffer whose last piece may be bad.
 */
static void op_rwv(struct fz *t, bool is_write)
{
	struct fz_fd *f = pick_fd(t);
	enum kind kind = is_write ? K_writev : K_readv;
	struct iovec iov[IOV_MAX + 1], *vp = iov;
	unsigned char *buf = is_write ? t->wbuf : t->rbuf;
	size_t len = 0, good = 0, piece;
	int i, n = 0, mode = rnd(t, 12), bk = P_OK;
	const char *what;
	char fdd[96];
	emask allowed = 0;
	bool may = true;
	long ret;

	if (!f)
		return;
	switch (mode) {
	case 0:
		what = "no vectors";
		n = 0;
		break;
	case 1:
		what = "IOV_MAX + 1 vectors";
		n = IOV_MAX + 1;
		for (i = 0; i < n; i++)
			iov[i] = (struct iovec){ buf, 1 };
		allowed = EM(EINVAL);
		may = false;
		break;
	case 2:
		what = "total over SSIZE_MAX";
		n = 2;
		iov[0] = (struct iovec){ buf, SSIZE_MAX };
		iov[1] = (struct iovec){ buf, chance(t, 50) ? SSIZE_MAX : 2 };
		allowed = EM(EINVAL) | EM(EFAULT);
		may = false;
		break;
	case 3:
		what = "bad vector array";
		n = 1 + rnd(t, 4);
		vp = (struct iovec *)ptr_for(NULL, 0, P_NULL + rnd(t, 4));
		allowed = EM(EFAULT);
		may = false;
		break;
	default:
		what = "split";
		len = chance(t, 85) ? 1 + rnd(t, 2048) :
		      pick_len(t, max_msg(f->idx));
		if (is_huge(len))
			len = (size_t)max_msg(f->idx) + 1;
		n = 1 + rnd(t, 4);
		for (i = 0, piece = 0; i < n; i++) {
			size_t l = i == n - 1 ? len - piece :
				   rnd(t, (uint32_t)(len - piece + 1));

			iov[i] = (struct iovec){ buf + piece, l };
			piece += l;
		}
		good = len;
		if (chance(t, 15) && iov[n - 1].iov_len) {
			bk = P_STRADDLE + (int)rnd(t, NPTR - P_STRADDLE);
			if (bk == P_STRADDLE)
				bk = P_NONE;
			iov[n - 1].iov_base = ptr_for(NULL, 0, bk);
			good = len - iov[n - 1].iov_len;
			allowed |= EM(EFAULT);
		}
		if (is_write) {
			set_hdr(buf, len);
			allowed |= EM(ENOBUFS) | EM(EMSGSIZE) | EM(ENOMEM) |
				   (f->nonblock ? EM(EAGAIN) : EM(ETIMEDOUT));
			may = bk == P_OK || !len;
		} else {
			allowed |= EM(EMSGSIZE) | (f->nonblock ? EM(EAGAIN) : 0);
		}
		break;
	}
	if (mode >= 4 && !f->nonblock)
		arm(t);
	OP(t, "%s(%s, %d vectors: %s, %zu bytes%s%s)",
	   is_write ? "writev" : "readv", fd_desc(f, fdd, sizeof(fdd)), n, what,
	   len, bk != P_OK ? ", last at " : "", bk != P_OK ? ptr_names[bk] : "");
	ret = is_write ? writev(f->fd, vp, n) : readv(f->fd, vp, n);
	ret = ret < 0 ? -errno : ret;
	if (mode >= 4)
		allowed |= qmask(t, f);
	disarm(t);
	/* the vectors are imported before the file's mode is looked at */
	if ((is_write && f->acc == O_RDONLY) || (!is_write && f->acc == O_WRONLY)) {
		allowed = EM(EBADF) | (allowed & (EM(EINVAL) | EM(EFAULT)));
		may = false;
	}
	if (!check(t, kind, ret, allowed, may))
		return;
	if (mode == 0 || !len) {
		if (ret)
			fail(t, "returned %ld for nothing to transfer", ret);
	} else if (is_write) {
		if ((size_t)ret != len)
			fail(t, "wrote %ld of %zu", ret, len);
		else
			add(G.msgs_written, 1);
	} else if ((size_t)ret > good) {
		fail(t, "read %ld bytes into %zu good ones", ret, good);
	} else if (ret) {
		got_msg(t, buf, ret, P_OK);
	}
}

/* ---- queue ioctls ---- */

/* What a queue command needs of its file: its side (bpq(4)) */
#define NEED_R	1	/* open for reading: receive, grant, ack */
#define NEED_W	2	/* open for writing: send, settings, flush */

/*
 * A file without the side @need gets EBADF before anything is looked
 * at; then framing errors decide alone; otherwise @allowed.
 */
static bool ioctl_check(struct fz *t, const struct fz_fd *f, int need,
			enum kind k, long ret, int forced, emask allowed,
			bool may)
{
	if (f && (((need & NEED_R) && f->acc == O_WRONLY) ||
		  ((need & NEED_W) && f->acc == O_RDONLY)))
		return check(t, k, ret, EM(EBADF), false);
	if (forced)
		return check(t, k, ret, EM(forced), false);
	return check(t, k, ret, allowed, may);
}

static void op_get_config(struct fz *t)
{
	struct fz_fd *f = pick_fd(t);
	struct bpq_config c;
	char fdd[96], fr[64];
	int forced;
	long ret;

	if (!f)
		return;
	memset(&c, 0xa5, sizeof(c));
	c.flags = chance(t, 5) ? 1U << rnd(t, 32) : 0;
	ret = framed_ioctl(t, f->fd, BPQ_IOC_GET_CONFIG, &c, sizeof(c),
			   CONFIG_SIZE_VER0, &forced, fr, sizeof(fr));
	OP(t, "GET_CONFIG(%s, %s, flags %#x)", fd_desc(f, fdd, sizeof(fdd)), fr,
	   c.flags);
	if (!ioctl_check(t, f, 0, K_get_config, ret, forced,
			 c.flags ? EM(EINVAL) : qmask(t, f), !c.flags))
		return;
	if (c.size != sizeof(c) || c.__reserved || config_errno(&c))
		fail(t, "invalid config read back: size %u strategy %u cap %u/%llu max %u wm %u/%u reserved %u",
		     c.size, c.strategy, c.capacity_msgs,
		     (unsigned long long)c.capacity_bytes, c.max_msg_size,
		     c.high_watermark, c.low_watermark, c.__reserved);
	else
		note_max_msg(f->idx, c.max_msg_size);
}

static void op_set_config(struct fz *t)
{
	struct fz_fd *f = pick_fd(t);
	struct bpq_config c;
	char fdd[96], fr[64];
	int forced, want;
	long ret;

	if (!f)
		return;
	rand_config(t, &c);
	want = config_errno(&c);
	ret = framed_ioctl(t, f->fd, BPQ_IOC_SET_CONFIG, &c, sizeof(c),
			   CONFIG_SIZE_VER0, &forced, fr, sizeof(fr));
	OP(t, "SET_CONFIG(%s, %s, flags %#x strategy %u cap %u/%llu max %u wm %u/%u wto %u ac %u lat %u rate %u-%u adj %u rsv %u)",
	   fd_desc(f, fdd, sizeof(fdd)), fr, c.flags, c.strategy,
	   c.capacity_msgs, (unsigned long long)c.capacity_bytes,
	   c.max_msg_size, c.high_watermark, c.low_watermark,
	   c.write_timeout_ms, c.auto_credit, c.target_latency_us, c.min_rate,
	   c.max_rate, c.adjust_interval_ms, c.__reserved);
	if (ioctl_check(t, f, NEED_W, K_set_config, ret, forced,
			(want ? EM(want) : 0) | qmask(t, f), !want)) {
		add(G.configs, 1);
		note_max_msg(f->idx, c.max_msg_size);
		if (ret)
			fail(t, "returned %ld", ret);
	}
}

static void op_get_stats(struct fz *t)
{
	struct fz_fd *f = pick_fd(t);
	struct bpq_stats st;
	char fdd[96], fr[64];
	int forced;
	long ret;

	if (!f)
		return;
	memset(&st, 0xa5, sizeof(st));
	st.flags = chance(t, 5) ? 1U << rnd(t, 32) : 0;
	ret = framed_ioctl(t, f->fd, BPQ_IOC_GET_STATS, &st, sizeof(st),
			   STATS_SIZE_VER0, &forced, fr, sizeof(fr));
	OP(t, "GET_STATS(%s, %s, flags %#x)", fd_desc(f, fdd, sizeof(fdd)), fr,
	   st.flags);
	if (!ioctl_check(t, f, 0, K_get_stats, ret, forced,
			 st.flags ? EM(EINVAL) : qmask(t, f), !st.flags))
		return;
	add(G.snapshots, 1);
	if (st.size != sizeof(st) || st.flags)
		fail(t, "size %u flags %u read back", st.size, st.flags);
	if (!bpq_stats_balanced(&st))
		fail(t, "unbalanced snapshot: enqueued %llu != dequeued %llu + dropped_oldest %llu + flushed %llu + depth %llu",
		     (unsigned long long)st.enqueued_msgs,
		     (unsigned long long)st.dequeued_msgs,
		     (unsigned long long)st.dropped_oldest,
		     (unsigned long long)st.flushed,
		     (unsigned long long)st.depth_msgs);
	if (st.pressure > 1)
		fail(t, "pressure %u", st.pressure);
}

static void op_simple(struct fz *t, enum kind k)
{
	struct fz_fd *f = pick_fd(t);
	struct bpq_simple s = { };
	unsigned long cmd = k == K_flush ? BPQ_IOC_FLUSH : BPQ_IOC_RESET_STATS;
	char fdd[96], fr[64];
	int forced;
	long ret;

	if (!f)
		return;
	s.flags = chance(t, 5) ? 1U << rnd(t, 32) : 0;
	ret = framed_ioctl(t, f->fd, cmd, &s, sizeof(s), sizeof(s), &forced,
			   fr, sizeof(fr));
	OP(t, "%s(%s, %s, flags %#x)", k == K_flush ? "FLUSH" : "RESET_STATS",
	   fd_desc(f, fdd, sizeof(fdd)), fr, s.flags);
	if (ioctl_check(t, f, NEED_W, k, ret, forced,
			s.flags ? EM(EINVAL) : qmask(t, f), !s.flags) &&
	    k == K_reset_stats && ret)
		fail(t, "returned %ld", ret);
}

static void op_grant(struct fz *t)
{
	static const uint64_t credits[] = {
		0, 1, 2, 100, 1000000, ~0ULL, ~0ULL - 1,
	};
	struct fz_fd *f = pick_fd(t);
	struct bpq_grant g = { };
	char fdd[96], fr[64];
	int forced;
	bool bad, bad_flags;
	long ret;

	if (!f)
		return;
	/* sometimes a set or revoke (bits 0, 1), both, or an unknown bit */
	g.flags = chance(t, 5) ? 1U << rnd(t, 32) : chance(t, 10) ? 3 : 0;
	g.credits = chance(t, 50) ? PICK(t, credits) : rnd(t, 1000);
	bad_flags = (g.flags & ~(BPQ_GRANT_SET | BPQ_GRANT_REVOKE)) ||
		    g.flags == (BPQ_GRANT_SET | BPQ_GRANT_REVOKE);
	bad = bad_flags || (!g.credits && !(g.flags & BPQ_GRANT_SET));
	ret = framed_ioctl(t, f->fd, BPQ_IOC_GRANT, &g, sizeof(g), sizeof(g),
			   &forced, fr, sizeof(fr));
	OP(t, "GRANT(%s, %s, flags %#x, %llu)", fd_desc(f, fdd, sizeof(fdd)),
	   fr, g.flags, (unsigned long long)g.credits);
	/* a dead queue may say so before it looks at the count */
	ioctl_check(t, f, NEED_R, K_grant, ret, forced,
		    (bad ? EM(EINVAL) : 0) |
		    (bad_flags ? 0 : qmask(t, f)), !bad);
}

/* The flags of a receive or send: sometimes an unknown bit. */
static uint32_t io_flags(struct fz *t)
{
	uint32_t fl = rnd(t, 4);

	if (chance(t, 4))
		fl |= 1U << (2 + rnd(t, 30));
	return fl;
}

static bool would_block(struct fz_fd *f, uint32_t fl)
{
	return !f->nonblock && !(fl & BPQ_IO_NONBLOCK);
}

/* What a wait may end with, given the call's flags and the file's. */
static emask wait_errs(struct fz_fd *f, uint32_t fl, bool is_send)
{
	if (!would_block(f, fl))
		return EM(EAGAIN);
	if (fl & BPQ_IO_TIMEOUT)
		return EM(ETIMEDOUT);
	return is_send ? EM(ETIMEDOUT) : 0;	/* write_timeout_ms */
}

static void op_recv(struct fz *t)
{
	struct fz_fd *f = pick_fd(t);
	struct bpq_recv r = { };
	size_t len;
	char fdd[96], fr[64];
	int forced, k;
	unsigned char *p;
	bool bad;
	long ret;

	if (!f)
		return;
	r.flags = io_flags(t);
	r.timeout_ms = chance(t, 30) ? 0 : rnd(t, 20);
	len = pick_len(t, max_msg(f->idx));
	if (len > 0xffffffffU)
		len = 0xffffffffU;
	k = pick_ptr(t, len, BUF_SZ);
	p = ptr_for(t->rbuf, len, k);
	r.buf = (uintptr_t)p;
	r.buf_len = (uint32_t)len;
	bad = r.flags & ~(BPQ_IO_NONBLOCK | BPQ_IO_TIMEOUT);
	if (!bad && would_block(f, r.flags))
		arm(t);
	ret = framed_ioctl(t, f->fd, BPQ_IOC_RECV, &r, sizeof(r), sizeof(r),
			   &forced, fr, sizeof(fr));
	OP(t, "RECV(%s, %s, flags %#x, timeout %u, %s, %u)",
	   fd_desc(f, fdd, sizeof(fdd)), fr, r.flags, r.timeout_ms,
	   ptr_names[k], r.buf_len);
	if (!ioctl_check(t, f, NEED_R, K_recv, ret, forced,
			 bad ? EM(EINVAL) :
			 EM(EMSGSIZE) | wait_errs(f, r.flags, false) |
			 qmask(t, f) |
			 (ptr_bad(k) || is_huge(len) ? EM(EFAULT) : 0),
			 !bad)) {
		disarm(t);
		return;
	}
	disarm(t);
	if ((size_t)ret > ptr_room(len, k) || ret != r.info.len || !r.info.seq || r.info.offset)
		fail(t, "returned %ld: info len %u seq %llu offset %u, room %zu",
		     ret, r.info.len, (unsigned long long)r.info.seq,
		     r.info.offset, ptr_room(len, k));
	else
		got_msg(t, p, ret, k);
}

static void op_send_batch(struct fz *t)
{
	struct fz_fd *f = pick_fd(t);
	struct bpq_send_batch b = { };
	uint32_t i, n, max, first_bad;
	char fdd[96], fr[64], what[64] = "";
	int forced, want = 0, k;
	emask allowed;
	long ret;

	if (!f)
		return;
	max = max_msg(f->idx);
	b.flags = io_flags(t);
	b.timeout_ms = chance(t, 30) ? 0 : rnd(t, 20);
	n = chance(t, 5) ? (chance(t, 50) ? 0 : 1025) :
	    chance(t, 3) ? 1024 : 1 + rnd(t, 24);
	b.count = n;
	/* the first NSLOTS vectors name their own slot, the rest repeat them */
	for (i = 0; i < NSLOTS && i < n; i++) {
		uint32_t len = chance(t, 80) ? 1 + rnd(t, 512) :
			       1 + rnd(t, SLOT_SZ);

		fill_msg(t->slots + i * SLOT_SZ, len);
		t->vecs[i] = (struct bpq_iovec){
			.base = (uintptr_t)(t->slots + i * SLOT_SZ),
			.len = len,
		};
	}
	for (; i < n && i < NVECS; i++)
		t->vecs[i] = t->vecs[i % NSLOTS];
	/* the first vector that cannot be queued for its own sake */
	first_bad = n;
	if (n && n <= 1024 && chance(t, 15)) {
		i = chance(t, 50) ? 0 : rnd(t, n);
		switch (rnd(t, 4)) {
		case 0:
			t->vecs[i].len = 0;
			snprintf(what, sizeof(what), ", vec %u len 0", i);
			first_bad = i;
			break;
		case 1:
			t->vecs[i].__reserved = 1 + rnd(t, 100);
			snprintf(what, sizeof(what), ", vec %u reserved", i);
			first_bad = i;
			break;
		case 2:
			k = P_NULL + (int)rnd(t, NPTR - P_NULL);
			t->vecs[i].base = (uintptr_t)ptr_for(NULL, 0, k);
			snprintf(what, sizeof(what), ", vec %u at %s", i,
				 ptr_names[k]);
			first_bad = i;
			break;
		default:
			/* too long, unless max_msg_size grew meanwhile */
			t->vecs[i].len = max + 1;
			t->vecs[i].base = (uintptr_t)t->wbuf;
			set_hdr(t->wbuf, max + 1);
			snprintf(what, sizeof(what), ", vec %u len %u", i,
				 max + 1);
			break;
		}
	}
	b.msgs = (uintptr_t)t->vecs;
	if (n && chance(t, 4)) {
		k = P_NULL + (int)rnd(t, NPTR - P_NULL);
		b.msgs = (uintptr_t)ptr_for(NULL, 0, k);
		snprintf(what, sizeof(what), ", vectors at %s", ptr_names[k]);
		want = EFAULT;
	}
	/* checked in this order: flags and count, the array, vector 0 */
	if ((b.flags & ~(BPQ_IO_NONBLOCK | BPQ_IO_TIMEOUT)) || !n || n > 1024)
		want = EINVAL;
	else if (!want && first_bad == 0 &&
		 (!t->vecs[0].len || t->vecs[0].__reserved))
		want = EINVAL;
	if (!want && would_block(f, b.flags))
		arm(t);
	ret = framed_ioctl(t, f->fd, BPQ_IOC_SEND_BATCH, &b, sizeof(b),
			   sizeof(b), &forced, fr, sizeof(fr));
	OP(t, "SEND_BATCH(%s, %s, flags %#x, timeout %u, count %u%s)",
	   fd_desc(f, fdd, sizeof(fdd)), fr, b.flags, b.timeout_ms, n, what);
	allowed = want ? EM(want) :
		  EM(ENOBUFS) | EM(EMSGSIZE) | EM(ENOMEM) |
		  wait_errs(f, b.flags, true) | qmask(t, f) |
		  (first_bad == 0 ? EM(EFAULT) : 0);
	disarm(t);
	if (!ioctl_check(t, f, NEED_W, K_send_batch, ret, forced, allowed,
			 !want && first_bad > 0))
		return;
	if (ret < 1 || ret > n || (uint32_t)ret > first_bad)
		fail(t, "queued %ld of %u, first bad %u", ret, n, first_bad);
	else
		add(G.msgs_written, ret);
}

static void op_recv_batch(struct fz *t)
{
	static const uint32_t recs[] = { 1, 2, 16, 1024 };
	struct fz_fd *f = pick_fd(t);
	struct bpq_recv_batch b = { };
	uint32_t i, used = 0;
	size_t len;
	char fdd[96], fr[64];
	int forced, k, ik = P_OK;
	unsigned char *p;
	bool bad;
	long ret;

	if (!f)
		return;
	b.flags = io_flags(t);
	b.timeout_ms = chance(t, 30) ? 0 : rnd(t, 20);
	b.max_records = chance(t, 4) ? (chance(t, 50) ? 0 : 1025) :
			chance(t, 50) ? PICK(t, recs) : 1 + rnd(t, 64);
	if (chance(t, 3))
		b.__reserved = 1 + rnd(t, 100);
	len = chance(t, 30) ? pick_len(t, max_msg(f->idx)) : 1 + rnd(t, 65536);
	if (len > BUF_SZ)
		len = BUF_SZ;
	k = pick_ptr(t, len, BUF_SZ);
	p = ptr_for(t->rbuf, len, k);
	b.buf = (uintptr_t)p;
	b.buf_len = (uint32_t)len;
	b.infos = (uintptr_t)t->infos;
	if (chance(t, 5)) {
		ik = P_NULL + (int)rnd(t, NPTR - P_NULL);
		b.infos = (uintptr_t)ptr_for(NULL, 0, ik);
	}
	bad = (b.flags & ~(BPQ_IO_NONBLOCK | BPQ_IO_TIMEOUT)) || b.__reserved ||
	      !b.max_records || b.max_records > 1024;
	if (!bad && would_block(f, b.flags))
		arm(t);
	ret = framed_ioctl(t, f->fd, BPQ_IOC_RECV_BATCH, &b, sizeof(b),
			   sizeof(b), &forced, fr, sizeof(fr));
	OP(t, "RECV_BATCH(%s, %s, flags %#x, timeout %u, %s %u, %u records at %s, reserved %u)",
	   fd_desc(f, fdd, sizeof(fdd)), fr, b.flags, b.timeout_ms,
	   ptr_names[k], b.buf_len, b.max_records, ptr_names[ik],
	   b.__reserved);
	if (!ioctl_check(t, f, NEED_R, K_recv_batch, ret, forced,
			 bad ? EM(EINVAL) :
			 EM(EMSGSIZE) | wait_errs(f, b.flags, false) |
			 qmask(t, f) |
			 (ptr_bad(k) || ptr_bad(ik) ? EM(EFAULT) : 0),
			 !bad)) {
		disarm(t);
		return;
	}
	disarm(t);
	if (ret < 1 || (uint32_t)ret > b.max_records || ptr_bad(ik)) {
		fail(t, "returned %ld", ret);
		return;
	}
	for (i = 0; i < (uint32_t)ret; i++) {
		struct bpq_msg_info *in = &t->infos[i];

		if (in->offset != used || !in->len || !in->seq ||
		    (size_t)in->offset + in->len > ptr_room(len, k)) {
			fail(t, "record %u of %ld: offset %u (expected %u) len %u seq %llu, room %zu",
			     i, ret, in->offset, used, in->len,
			     (unsigned long long)in->seq, ptr_room(len, k));
			return;
		}
		got_msg(t, p + in->offset, in->len, k);
		used += in->len;
	}
}

/* An ioctl the queue does not know: ENOTTY, whatever the argument. */
static void op_bad_ioctl(struct fz *t)
{
	static const unsigned int types[] = { BPQ_TYPE, BPQ_TYPE, 0xb8, 0xba };
	static const unsigned long known[] = {
		BPQ_IOC_GET_CONFIG, BPQ_IOC_SET_CONFIG, BPQ_IOC_GET_STATS,
		BPQ_IOC_RESET_STATS, BPQ_IOC_GRANT, BPQ_IOC_FLUSH,
		BPQ_IOC_RECV, BPQ_IOC_SEND_BATCH, BPQ_IOC_RECV_BATCH,
		BPQ_IOC_RING_SETUP, BPQ_IOC_RING_SYNC,
	};
	struct fz_fd *f = pick_fd(t);
	unsigned long cmd;
	unsigned int i;
	char fdd[96];
	long ret;

	if (!f)
		return;
	do {
		unsigned int nr = chance(t, 50) ? rnd(t, 12) :
				  chance(t, 50) ? 0x40 + rnd(t, 4) : rnd(t, 256);

		cmd = _IOC(rnd(t, 4), PICK(t, types), nr, rnd(t, 1 << 14));
		for (i = 0; i < ARRAY_LEN(known); i++)
			if (cmd == known[i])
				cmd = 0;
	} while (!cmd);
	memset(t->ibuf, 0, 64);
	*(uint32_t *)t->ibuf = 8 + rnd(t, 64);
	OP(t, "ioctl(%s, %#lx)", fd_desc(f, fdd, sizeof(fdd)), cmd);
	ret = ioctl(f->fd, cmd, chance(t, 50) ? (void *)t->ibuf : NULL);
	check(t, K_bad_ioctl, ret < 0 ? -errno : ret, EM(ENOTTY), false);
}

/* ---- the control device ---- */

static void rand_name(struct fz *t, char *name)
{
	static const char chars[] =
		"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-";
	int i, n = snprintf(name, BPQ_NAME_MAX, "fz%d-", t->id);
	int len = n + 1 + rnd(t, BPQ_NAME_MAX - 1 - n);

	for (i = n; i < len; i++)
		name[i] = chars[rnd(t, sizeof(chars) - 1)];
	name[len] = '\0';
}

static void destroy_created(struct fz *t, int idx)
{
	long ret;

	OP(t, "DESTROY(bpq%d) of a queue it created", idx);
	ret = bpq_destroy(t->cfd, idx);
	if (check(t, K_destroy, ret, 0, true))
		add(G.destroys, 1);
}

/* A new queue: set it up (nobody else knows it yet), then publish it. */
static void adopt_created(struct fz *t, int idx, const char *name)
{
	struct bpq_config c;
	int fd, ret;

	OP(t, "open and SET_CONFIG of new queue bpq%d", idx);
	fd = bpq_open(idx, O_RDWR);
	if (!check(t, K_open, fd < 0 ? -errno : fd, 0, true)) {
		destroy_created(t, idx);
		return;
	}
	bpq_default_config(&c);
	c.write_timeout_ms = 20;
	ret = bpq_set_config(fd, &c);
	check(t, K_set_config, ret, 0, true);
	close(fd);
	note_max_msg(idx, c.max_msg_size);

	pthread_mutex_lock(&G.lock);
	if (G.ncreated < MAX_CREATED) {
		G.created[G.ncreated] = idx;
		strcpy(G.names[G.ncreated], name);
		G.ncreated++;
		idx = -1;
	}
	pthread_mutex_unlock(&G.lock);
	if (idx >= 0)
		destroy_created(t, idx);
}

static void op_create(struct fz *t)
{
	static const char *const bad_names[] = {
		"", "a b", "a/b", "x\xff", ".", "..", "0", "123", "bpq0", "bpq12",
		"tab\there", "new\nline", "semi;colon", "star*",
	};
	struct bpq_create c = { };
	const char *what = "valid";
	char fr[64];
	int forced, want = 0, dup = 0;
	long ret;

	switch (rnd(t, 10)) {
	case 0:
		what = "invalid";
		strcpy(c.name, PICK(t, bad_names));
		want = EINVAL;
		break;
	case 1:
		what = "no NUL";
		memset(c.name, 'n', sizeof(c.name));
		want = EINVAL;
		break;
	case 2:
		what = "a name in use";
		pthread_mutex_lock(&G.lock);
		if (G.ncreated) {
			strcpy(c.name, G.names[rnd(t, G.ncreated)]);
			dup = 1;
		}
		pthread_mutex_unlock(&G.lock);
		if (!dup)
			rand_name(t, c.name);
		break;
	case 3:
		what = "flags or reserved";
		rand_name(t, c.name);
		if (chance(t, 50))
			c.flags = 1U << rnd(t, 32);
		else
			c.__reserved = 1 + rnd(t, 1000);
		want = EINVAL;
		break;
	default:
		rand_name(t, c.name);
		c.index = rnd(t, 3) ? 0 : rnd64(t);	/* out only */
		break;
	}
	ret = framed_ioctl(t, t->cfd, BPQ_IOC_CREATE, &c, sizeof(c), sizeof(c),
			   &forced, fr, sizeof(fr));
	OP(t, "CREATE(%s, %s name \"%.32s\")", fr, what, c.name);
	if (!ioctl_check(t, NULL, 0, K_create, ret, forced,
			 want ? EM(want) :
			 EM(EEXIST) | EM(ENOSPC) | EM(ENOMEM) |
			 (G.root ? 0 : EM(EPERM)), !want))
		return;
	if (ret >= MAX_INDEX || ret < NFIXED || (uint32_t)ret != c.index) {
		fail(t, "index %ld, struct says %u", ret, c.index);
		return;
	}
	add(G.creates, 1);
	adopt_created(t, (int)ret, c.name);
}

static void op_destroy(struct fz *t)
{
	struct bpq_destroy d = { };
	char fr[64];
	int forced, idx = -1, want = ENOENT, i;
	long ret;

	if (chance(t, 75)) {
		pthread_mutex_lock(&G.lock);
		if (G.ncreated) {
			i = rnd(t, G.ncreated);
			idx = G.created[i];
			G.ncreated--;
			G.created[i] = G.created[G.ncreated];
			strcpy(G.names[i], G.names[G.ncreated]);
		}
		pthread_mutex_unlock(&G.lock);
	}
	if (idx >= 0) {
		destroy_created(t, idx);
		return;
	}
	/* no such queue, or invalid fields: nothing is destroyed */
	d.index = chance(t, 50) ? MAX_INDEX + rnd(t, 100000) : 0xffffffffU - rnd(t, 4);
	if (chance(t, 30)) {
		d.index = rnd(t, NFIXED);
		if (chance(t, 50))
			d.flags = 1U << rnd(t, 32);
		else
			d.__reserved = 1 + rnd(t, 1000);
		want = EINVAL;
	}
	ret = framed_ioctl(t, t->cfd, BPQ_IOC_DESTROY, &d, sizeof(d), sizeof(d),
			   &forced, fr, sizeof(fr));
	OP(t, "DESTROY(%s, index %u, flags %#x, reserved %u)", fr, d.index,
	   d.flags, d.__reserved);
	ioctl_check(t, NULL, 0, K_destroy, ret, forced,
		    EM(want) | (G.root ? 0 : EM(EPERM)), false);
}

/* Unknown commands, queue commands, read and write on the control device. */
static void op_control_misc(struct fz *t)
{
	static const unsigned long cmds[] = {
		BPQ_IOC_GET_CONFIG, BPQ_IOC_SET_CONFIG, BPQ_IOC_GET_STATS,
		BPQ_IOC_FLUSH, BPQ_IOC_RECV, _IO(BPQ_TYPE, BPQ_CMD_GROUP_JOIN + 1),
		_IO(BPQ_TYPE, 0x7f), _IOWR(BPQ_TYPE, BPQ_CMD_CREATE, 48),
		_IOW(BPQ_TYPE, BPQ_CMD_DESTROY, 16), _IO(0xb8, 0x40),
	};
	char c = 0;
	long ret;

	switch (rnd(t, 4)) {
	case 0:
		OP(t, "read(control)");
		ret = read(t->cfd, &c, 1);
		check(t, K_control_misc, ret < 0 ? -errno : ret, EM(EINVAL),
		      false);
		break;
	case 1:
		OP(t, "write(control)");
		ret = write(t->cfd, &c, 1);
		check(t, K_control_misc, ret < 0 ? -errno : ret, EM(EINVAL),
		      false);
		break;
	default: {
		unsigned long cmd = PICK(t, cmds);

		memset(t->ibuf, 0, 64);
		*(uint32_t *)t->ibuf = 64;
		OP(t, "ioctl(control, %#lx)", cmd);
		ret = ioctl(t->cfd, cmd, t->ibuf);
		check(t, K_control_misc, ret < 0 ? -errno : ret, EM(ENOTTY),
		      false);
	}
	}
}

static int pick_idx(struct fz *t, bool *fixed);

/*
 * Link or unlink two queues, fixed or created (or a number of none):
 * each result one the contract allows. Links left between the fixed
 * queues are removed at the end.
 */
static void op_link(struct fz *t)
{
	struct bpq_link l = { .size = sizeof(l) };
	unsigned long cmd = chance(t, 50) ? BPQ_IOC_LINK : BPQ_IOC_UNLINK;
	emask allowed = EM(ENOENT);
	bool fixed;
	long ret;

	l.upstream = pick_idx(t, &fixed);
	l.downstream = chance(t, 5) ? MAX_INDEX + rnd(t, 100) :
				      (uint32_t)pick_idx(t, &fixed);
	if (chance(t, 5))
		l.flags = 1U << rnd(t, 32);
	if (l.flags)
		allowed = EM(EINVAL);
	else if (cmd == BPQ_IOC_LINK)
		allowed |= EM(EEXIST) | EM(ELOOP) | EM(EMLINK) | EM(ENOMEM);
	OP(t, "ioctl(control, %s %u -> %u, flags %#x)",
	   cmd == BPQ_IOC_LINK ? "LINK" : "UNLINK", l.upstream,
	   l.downstream, l.flags);
	ret = ioctl(t->cfd, cmd, &l);
	check(t, K_link, ret < 0 ? -errno : ret, allowed, true);
}

/*
 * Triggers: mostly valid, each field now and then out of range, on any
 * file, set while one is set (EBUSY), removed, or left to the close.
 */
static void op_trigger(struct fz *t)
{
	static const uint32_t windows[] = { 0, 1, 499, 500, 501, 1000, 10000,
					    10001, ~0U };
	static const uint64_t thresholds[] = { 0, 1, 100, 101, 499999, 500000,
					       10000000, ~0ULL };
	struct fz_fd *f = pick_fd(t);
	struct bpq_trigger tr = { };
	char fdd[96], fr[64];
	int forced;
	bool bad;
	long ret;

	if (!f)
		return;
	tr.metric = rnd(t, 8);
	tr.window_ms = chance(t, 70) ? 500 + rnd(t, 9501) : PICK(t, windows);
	tr.threshold = chance(t, 60) ? 1 + rnd(t, 100) : PICK(t, thresholds);
	if (!tr.metric && chance(t, 80))
		tr.window_ms = tr.threshold = 0;
	if (chance(t, 5))
		tr.flags = 1U << rnd(t, 32);
	bad = tr.flags || tr.metric > BPQ_TRIGGER_UTILIZATION;
	if (tr.metric == BPQ_TRIGGER_NONE)
		bad |= tr.window_ms || tr.threshold;
	else
		bad |= tr.window_ms < 500 || tr.window_ms > 10000 ||
		       !tr.threshold ||
		       (tr.metric <= BPQ_TRIGGER_STALL_FULL &&
			tr.threshold > tr.window_ms * 1000ULL) ||
		       (tr.metric == BPQ_TRIGGER_UTILIZATION &&
			tr.threshold > 100) ||
		       (tr.metric == BPQ_TRIGGER_HEAD_AGE &&
			tr.threshold > ~0ULL / 1000);
	ret = framed_ioctl(t, f->fd, BPQ_IOC_TRIGGER, &tr, sizeof(tr),
			   sizeof(tr), &forced, fr, sizeof(fr));
	OP(t, "TRIGGER(%s, %s, metric %u, %u ms, %llu, flags %#x)",
	   fd_desc(f, fdd, sizeof(fdd)), fr, tr.metric, tr.window_ms,
	   (unsigned long long)tr.threshold, tr.flags);
	ioctl_check(t, f, 0, K_trigger, ret, forced,
		    bad ? EM(EINVAL) : EM(EBUSY) | EM(ENOMEM) | qmask(t, f),
		    !bad);
}

/* Groups named fz-g0..3 made, destroyed, joined and left, nested */
static void op_group(struct fz *t)
{
	struct bpq_group_create g = { .size = sizeof(g) };
	struct bpq_group_join j = { .size = sizeof(j) };
	emask allowed = EM(ENOENT);
	bool fixed;
	long ret;

	switch (rnd(t, 3)) {
	case 0:
		snprintf(g.name, sizeof(g.name), "fz-g%u", rnd(t, 4));
		if (chance(t, 50))
			snprintf(g.parent, sizeof(g.parent), "fz-g%u",
				 rnd(t, 4));
		g.capacity_msgs = chance(t, 5) ? 0 : 1 + rnd(t, 64);
		g.high_watermark = chance(t, 5) ? 101 : 1 + rnd(t, 100);
		g.low_watermark = chance(t, 5) ? 0 : 1 + rnd(t, g.high_watermark);
		if (chance(t, 5))
			g.flags = 1U << rnd(t, 32);
		if (g.flags || !g.capacity_msgs || !g.low_watermark ||
		    g.low_watermark > g.high_watermark ||
		    g.high_watermark > 100)
			allowed = EM(EINVAL);
		else
			allowed |= EM(EEXIST) | EM(EMLINK) | EM(ENOMEM);
		OP(t, "ioctl(control, GROUP_CREATE %s in \"%s\", %u %u %u)",
		   g.name, g.parent, g.capacity_msgs, g.high_watermark,
		   g.low_watermark);
		ret = ioctl(t->cfd, BPQ_IOC_GROUP_CREATE, &g);
		break;
	case 1:
		snprintf(g.name, sizeof(g.name), "fz-g%u", rnd(t, 4));
		allowed |= EM(EBUSY);
		OP(t, "ioctl(control, GROUP_DESTROY %s)", g.name);
		ret = ioctl(t->cfd, BPQ_IOC_GROUP_DESTROY, &g);
		break;
	default:
		j.queue = pick_idx(t, &fixed);
		if (chance(t, 70))
			snprintf(j.group, sizeof(j.group), "fz-g%u", rnd(t, 4));
		allowed |= EM(ENODEV);
		OP(t, "ioctl(control, GROUP_JOIN %u \"%s\")", j.queue, j.group);
		ret = ioctl(t->cfd, BPQ_IOC_GROUP_JOIN, &j);
		break;
	}
	if (!G.root)
		allowed = EM(EPERM);
	check(t, K_group, ret < 0 ? -errno : ret, allowed,
	      G.root && allowed != EM(EINVAL));
}

/* ---- poll and epoll ---- */

static void check_revents(struct fz *t, struct fz_fd *f, unsigned int ev)
{
	unsigned int ok = POLLIN | POLLRDNORM | POLLOUT | POLLWRNORM | POLLPRI;

	if (!f->fixed)
		ok |= POLLERR | POLLHUP;
	if (ev & ~ok)
		fail(t, "events %#x on bpq%d (%s)", ev, f->idx,
		     f->fixed ? "fixed" : "created");
}

static void op_poll(struct fz *t)
{
	struct pollfd pfd[NFDS];
	struct fz_fd *map[NFDS];
	int i, n = 0, tmo = rnd(t, 4);
	long ret;

	for (i = 0; i < NFDS; i++) {
		if (t->fds[i].fd < 0 || chance(t, 30))
			continue;
		map[n] = &t->fds[i];
		pfd[n].fd = t->fds[i].fd;
		pfd[n].events = chance(t, 80) ? POLLIN | POLLOUT | POLLPRI :
						rnd(t, 0x10000);
		pfd[n].revents = 0;
		n++;
	}
	OP(t, "poll(%d files, %d ms)", n, tmo);
	ret = poll(pfd, n, tmo);
	if (!check(t, K_poll, ret < 0 ? -errno : ret, 0, true))
		return;
	for (i = 0; i < n; i++)
		check_revents(t, map[i], pfd[i].revents);
}

static void op_epoll(struct fz *t)
{
	struct epoll_event ev[NFDS];
	struct fz_fd *f = pick_fd(t);
	int i, n, slot, op;
	long ret;

	if (!f || chance(t, 40)) {
		n = rnd(t, 3);
		OP(t, "epoll_wait(%d ms)", n);
		ret = epoll_wait(t->epfd, ev, NFDS, n);
		if (!check(t, K_epoll, ret < 0 ? -errno : ret, 0, true))
			return;
		for (i = 0; i < ret; i++) {
			slot = (int)ev[i].data.u64;
			if (slot < 0 || slot >= NFDS || t->fds[slot].fd < 0 ||
			    !t->fds[slot].in_ep) {
				fail(t, "event for slot %d not registered", slot);
				return;
			}
			check_revents(t, &t->fds[slot], ev[i].events);
		}
		return;
	}
	slot = (int)(f - t->fds);
	ev[0].data.u64 = slot;
	ev[0].events = EPOLLIN | EPOLLOUT | EPOLLPRI |
		       (chance(t, 50) ? EPOLLET : 0) |
		       (chance(t, 10) ? EPOLLONESHOT : 0);
	op = PICK(t, ((const int[]){ EPOLL_CTL_ADD, EPOLL_CTL_ADD,
				     EPOLL_CTL_MOD, EPOLL_CTL_DEL }));
	OP(t, "epoll_ctl(%s, bpq%d, %#x)",
	   op == EPOLL_CTL_ADD ? "ADD" : op == EPOLL_CTL_MOD ? "MOD" : "DEL",
	   f->idx, ev[0].events);
	ret = epoll_ctl(t->epfd, op, f->fd, ev);
	ret = ret < 0 ? -errno : ret;
	if (op == EPOLL_CTL_ADD) {
		if (check(t, K_epoll, ret, f->in_ep ? EM(EEXIST) : 0, !f->in_ep))
			f->in_ep = true;
	} else {
		if (check(t, K_epoll, ret, f->in_ep ? 0 : EM(ENOENT), f->in_ep) &&
		    op == EPOLL_CTL_DEL)
			f->in_ep = false;
	}
}

/* ---- sysfs ---- */

struct attr_vals {
	const char *attr;
	const char *const *vals;
};

static const char *const v_num[] = {
	"0", "1", "2", "3", "7", "16", "50", "99", "100", "101", "255", "1000",
	"65535", "65536", "4194304", "4194305", "1048576", "1048577",
	"4294967295", "4294967296", "18446744073709551615",
	"18446744073709551616", "-1", "0x10", "010", "  7", "7\n", "7\n\n",
	"7 ", "+5", "1e3", "abc", "", "\n", "0x", "99999999999999999999999",
	NULL,
};
static const char *const v_bytes[] = {
	"0", "1", "64", "4096", "65536", "1048576", "16777216", "16777217x",
	"1073741825", "18446744073709551615", "-1", "abc", "", "0x1000\n", NULL,
};
static const char *const v_strategy[] = {
	"block", "drop-newest", "drop-oldest", "credit", "adaptive", "window",
	"credit\n", "Block", "drop", "drop-newest ", "", "\n", "5", "0",
	"block\nx", "adaptive\n\n", NULL,
};
static const char *const v_grant[] = {
	"0", "1", "1000", "18446744073709551615", "18446744073709551616",
	"-1", "x", "", "0x10", NULL,
};
static const char *const v_reset[] = {
	"1", "y", "Y", "on", "0", "n", "off", "x", "", "2", NULL,
};

static const struct attr_vals sysfs_rw[] = {
	{ "strategy", v_strategy },
	{ "capacity_msgs", v_num },
	{ "capacity_bytes", v_bytes },
	{ "max_msg_size", v_num },
	{ "high_watermark", v_num },
	{ "low_watermark", v_num },
	{ "write_timeout_ms", v_num },
	{ "auto_credit", v_num },
	{ "target_latency_us", v_num },
	{ "min_rate", v_num },
	{ "max_rate", v_num },
	{ "adjust_interval_ms", v_num },
	{ "increase_pct", v_num },
	{ "decrease_pct", v_num },
	{ "grant", v_grant },
	{ "stats/reset", v_reset },
};

static const char *const sysfs_ro[] = {
	"name", "depth_msgs", "depth_bytes", "utilization",
	"credits_available", "rate", "throughput", "pressure",
	"stats/enqueued_msgs", "stats/dequeued_msgs", "stats/dropped_oldest",
	"stats/flushed", "stats/timeouts", "stats/latency_hist", "stats/all",
};

static int pick_idx(struct fz *t, bool *fixed)
{
	int idx = -1;

	if (chance(t, 40)) {
		pthread_mutex_lock(&G.lock);
		if (G.ncreated)
			idx = G.created[rnd(t, G.ncreated)];
		pthread_mutex_unlock(&G.lock);
	}
	*fixed = idx < 0;
	return idx < 0 ? (int)rnd(t, NFIXED) : idx;
}

static void op_sysfs_write(struct fz *t)
{
	char val[4200], path[128];
	const struct attr_vals *a;
	const char *attr;
	size_t len, n;
	bool fixed, ro = chance(t, 5);
	emask allowed;
	int idx = pick_idx(t, &fixed), fd;
	long ret;

	if (ro) {
		attr = PICK(t, sysfs_ro);
		strcpy(val, "1");
	} else {
		a = &sysfs_rw[rnd(t, ARRAY_LEN(sysfs_rw))];
		attr = a->attr;
		for (n = 0; a->vals[n]; n++)
			;
		if (chance(t, 5)) {
			/* garbage, sometimes longer than a page */
			len = chance(t, 20) ? 4097 + rnd(t, 90) : 1 + rnd(t, 40);
			for (n = 0; n < len; n++)
				val[n] = 1 + rnd(t, 255);
			val[0] = 'g';
			val[len] = '\0';
		} else {
			strcpy(val, a->vals[rnd(t, n)]);
		}
	}
	OP(t, "sysfs write bpq%d/%s \"%.40s\"%s (%zu bytes)", idx, attr, val,
	   strlen(val) > 40 ? "..." : "", strlen(val));
	bpq_sysfs_path(path, sizeof(path), idx, attr);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	allowed = fixed ? 0 : EM(ENOENT) | EM(ENODEV);
	if (fd < 0) {
		check(t, K_sysfs_write, -errno, allowed | (ro ? EM(EACCES) : 0),
		      false);
		return;
	}
	ret = write(fd, val, strlen(val));
	ret = ret < 0 ? -errno : ret;
	close(fd);
	allowed |= EM(EINVAL) | (strlen(val) > 4096 ? EM(E2BIG) : 0);
	if (ro)
		allowed |= EM(EIO) | EM(EACCES);
	if (check(t, K_sysfs_write, ret, allowed, !ro)) {
		add(G.sysfs_writes, 1);
		if (!strcmp(attr, "max_msg_size"))
			note_max_msg(idx, (uint32_t)strtoul(val, NULL, 0));
		if ((size_t)ret != strlen(val))
			fail(t, "wrote %ld of %zu", ret, strlen(val));
	}
}

static void op_sysfs_read(struct fz *t)
{
	static const char *const names[] = {
		"block", "drop-newest", "drop-oldest", "credit", "adaptive",
		"window",
	};
	char buf[4096], *end;
	bool fixed;
	int idx = pick_idx(t, &fixed), ret;
	unsigned int i, j, a = rnd(t, ARRAY_LEN(sysfs_rw) + ARRAY_LEN(sysfs_ro));
	const char *attr = a < ARRAY_LEN(sysfs_rw) - 2 ? sysfs_rw[a].attr :
			   sysfs_ro[a % ARRAY_LEN(sysfs_ro)];

	OP(t, "sysfs read bpq%d/%s", idx, attr);
	ret = bpq_sysfs_read(idx, attr, buf, sizeof(buf));
	if (!check(t, K_sysfs_read, ret, fixed ? 0 : EM(ENOENT) | EM(ENODEV),
		   true))
		return;
	if (!strcmp(attr, "strategy")) {
		for (i = j = 0; i < ARRAY_LEN(names); i++)
			j |= !strcmp(buf, names[i]);
		if (!j)
			fail(t, "strategy \"%s\"", buf);
	} else if (!strcmp(attr, "name") || !strcmp(attr, "stats/latency_hist") ||
		   !strcmp(attr, "stats/all") ||
		   (!strcmp(attr, "auto_credit") && !strcmp(buf, "ack"))) {
		if (!buf[0])
			fail(t, "\"%.60s\"", buf);
	} else {
		errno = 0;
		strtoull(buf, &end, 10);
		if (errno || end == buf || *end)
			fail(t, "not a number: \"%.60s\"", buf);
	}
}

/* ---- open, close, seek ---- */

static void close_slot(struct fz *t, struct fz_fd *f)
{
	char fdd[96];
	int ret;

	OP(t, "close(%s)", fd_desc(f, fdd, sizeof(fdd)));
	ret = close(f->fd);
	check(t, K_close, ret < 0 ? -errno : 0, 0, true);
	f->fd = -1;
	f->in_ep = false;
}

static void open_slot(struct fz *t, struct fz_fd *f, int idx, bool fixed)
{
	int acc = chance(t, 80) ? O_RDWR : chance(t, 50) ? O_RDONLY : O_WRONLY;
	bool nb = chance(t, 50);
	int fd;

	if (f->fd >= 0)
		close_slot(t, f);
	OP(t, "open(/dev/bpq%d, %s%s) %s", idx, acc_name(acc),
	   nb ? " | O_NONBLOCK" : "", fixed ? "fixed" : "created");
	fd = bpq_open(idx, acc | (nb ? O_NONBLOCK : 0));
	/* a created queue may be gone, or going */
	if (!check(t, K_open, fd < 0 ? -errno : fd,
		   EM(ENOMEM) | (fixed ? 0 : EM(ENOENT) | EM(ENXIO) | EM(ENODEV)),
		   true))
		return;
	*f = (struct fz_fd){ .fd = fd, .idx = idx, .fixed = fixed,
			     .nonblock = nb, .acc = acc };
}

static void op_open(struct fz *t)
{
	bool fixed;
	int idx = pick_idx(t, &fixed);

	open_slot(t, &t->fds[rnd(t, NFDS)], idx, fixed);
}

static void op_close(struct fz *t)
{
	struct fz_fd *f = pick_fd(t);

	if (f)
		close_slot(t, f);
}

static void op_seek_mmap(struct fz *t)
{
	struct fz_fd *f = pick_fd(t);
	char fdd[96], c = 0;
	void *m;
	long ret;

	if (!f)
		return;
	switch (rnd(t, 4)) {
	case 0:
		OP(t, "lseek(%s)", fd_desc(f, fdd, sizeof(fdd)));
		ret = lseek(f->fd, rnd(t, 100), SEEK_SET);
		break;
	case 1:
		OP(t, "pread(%s)", fd_desc(f, fdd, sizeof(fdd)));
		ret = pread(f->fd, &c, 1, 0);
		break;
	case 2:
		OP(t, "pwrite(%s)", fd_desc(f, fdd, sizeof(fdd)));
		ret = pwrite(f->fd, &c, 1, 0);
		break;
	default:
		OP(t, "mmap(%s)", fd_desc(f, fdd, sizeof(fdd)));
		m = mmap(NULL, G.page, PROT_READ, MAP_SHARED, f->fd, 0);
		ret = m == MAP_FAILED ? -1 : 0;
		if (!ret)
			munmap(m, G.page);
		/* no file here has a ring to map */
		if (ret < 0 && errno == EACCES && f->acc == O_WRONLY)
			errno = EINVAL;
		check(t, K_seek_mmap, ret < 0 ? -errno : 0, EM(EINVAL), false);
		return;
	}
	check(t, K_seek_mmap, ret < 0 ? -errno : ret, EM(ESPIPE), false);
}

/* ---- workers ---- */

static void *map_guarded(size_t len)
{
	unsigned char *p = mmap(NULL, len + G.page, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	if (mprotect(p + len, G.page, PROT_NONE))
		return NULL;
	return p;
}

static int worker_setup(struct fz *t)
{
	struct sigevent sev = { .sigev_notify = SIGEV_THREAD_ID,
				.sigev_signo = SIGUSR2 };
	size_t i;
	int j;

	t->tid = bpq_gettid();
	sev._sigev_un._tid = t->tid;
	if (timer_create(CLOCK_MONOTONIC, &sev, &t->timer))
		return -errno;
	t->wbuf = map_guarded(BUF_SZ);
	t->rbuf = map_guarded(BUF_SZ);
	t->ibuf = map_guarded(2 * G.page);
	t->slots = malloc(NSLOTS * SLOT_SZ);
	t->vecs = calloc(NVECS, sizeof(*t->vecs));
	t->infos = calloc(1024, sizeof(*t->infos));
	if (!t->wbuf || !t->rbuf || !t->ibuf || !t->slots || !t->vecs ||
	    !t->infos)
		return -ENOMEM;
	for (i = 0; i < BUF_SZ; i++)
		t->wbuf[i] = PAT(i);
	t->cfd = bpq_control_open();
	t->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (t->cfd < 0 || t->epfd < 0)
		return -errno;
	for (j = 0; j < NFDS; j++)
		t->fds[j].fd = -1;
	for (j = 0; j < NFIXED; j++)
		open_slot(t, &t->fds[j], j, true);
	return 0;
}

static unsigned int weight_total;

static enum kind pick_kind(struct fz *t)
{
	unsigned int r = rnd(t, weight_total), k;

	for (k = 0; k < NKINDS; k++) {
		if (r < kind_weight[k])
			return k;
		r -= kind_weight[k];
	}
	return K_write;
}

static void *worker(void *arg)
{
	struct fz *t = arg;
	int ret, i;

	ret = worker_setup(t);
	if (ret) {
		OP(t, "setup");
		fail(t, "%s", strerror(-ret));
		return NULL;
	}
	while (!stopping()) {
		switch (pick_kind(t)) {
		case K_write: op_write(t); break;
		case K_writev: op_rwv(t, true); break;
		case K_read: op_read(t); break;
		case K_readv: op_rwv(t, false); break;
		case K_get_config: op_get_config(t); break;
		case K_set_config: op_set_config(t); break;
		case K_get_stats: op_get_stats(t); break;
		case K_reset_stats: op_simple(t, K_reset_stats); break;
		case K_flush: op_simple(t, K_flush); break;
		case K_grant: op_grant(t); break;
		case K_recv: op_recv(t); break;
		case K_send_batch: op_send_batch(t); break;
		case K_recv_batch: op_recv_batch(t); break;
		case K_bad_ioctl: op_bad_ioctl(t); break;
		case K_create:
			if (__atomic_load_n(&G.ncreated, __ATOMIC_RELAXED) >=
			    MAX_CREATED)
				op_destroy(t);
			else
				op_create(t);
			break;
		case K_destroy: op_destroy(t); break;
		case K_link: op_link(t); break;
		case K_control_misc: op_control_misc(t); break;
		case K_poll: op_poll(t); break;
		case K_epoll: op_epoll(t); break;
		case K_sysfs_write: op_sysfs_write(t); break;
		case K_sysfs_read: op_sysfs_read(t); break;
		case K_open: op_open(t); break;
		case K_close: op_close(t); break;
		case K_seek_mmap: op_seek_mmap(t); break;
		case K_trigger: op_trigger(t); break;
		case K_group: op_group(t); break;
		default: break;
		}
		__atomic_add_fetch(&t->progress, 1, __ATOMIC_RELAXED);
	}
	for (i = 0; i < NFDS; i++)
		if (t->fds[i].fd >= 0)
			close(t->fds[i].fd);
	close(t->epfd);
	close(t->cfd);
	timer_delete(t->timer);
	return NULL;
}

/* ---- the watchdog ---- */

static int workers_done;	/* atomic */

static void dump_task(pid_t tid)
{
	char path[64], buf[2048];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stack", tid);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n > 0) {
		buf[n] = '\0';
		printf("# kernel stack of %d:\n%s", tid, buf);
	}
}

static void *watchdog(void *arg)
{
	uint64_t last[MAX_THREADS] = { };
	int64_t since[MAX_THREADS];
	int i;

	(void)arg;
	for (i = 0; i < G.nthreads; i++)
		since[i] = now_ns();
	while (!__atomic_load_n(&workers_done, __ATOMIC_ACQUIRE)) {
		sleep_ms(200);
		for (i = 0; i < G.nthreads; i++) {
			uint64_t p = __atomic_load_n(&threads[i].progress,
						     __ATOMIC_RELAXED);

			if (p != last[i]) {
				last[i] = p;
				since[i] = now_ns();
				continue;
			}
			if (now_ns() - since[i] < STALL_SECS * 1000000000LL)
				continue;
			printf("# FAIL: watchdog: thread %d made no progress for %d s, in: %s\n",
			       i, STALL_SECS, threads[i].op);
			dump_task(threads[i].tid);
			printf("# seed %#llx (BPQ_FUZZ_SEED=%#llx replays it)\n",
			       (unsigned long long)G.seed,
			       (unsigned long long)G.seed);
			printf("not ok 1 fuzz\n");
			fflush(stdout);
			_exit(1);
		}
	}
	return NULL;
}

/* ---- the end: clean up, check, report ---- */

static int finish_queue(int idx)
{
	struct bpq_stats st;
	struct bpq_config cfg, def;
	int fd = bpq_open(idx, O_RDWR), bad = 0;

	if (fd < 0) {
		printf("# FAIL: open /dev/bpq%d: %s\n", idx, strerror(errno));
		return 1;
	}
	if (bpq_get_stats(fd, &st)) {
		printf("# FAIL: bpq%d: GET_STATS: %s\n", idx, strerror(errno));
		close(fd);
		return 1;
	}
	printf("# bpq%d: enqueued %llu = dequeued %llu + dropped_oldest %llu + flushed %llu + depth %llu%s; dropped_newest %llu, timeouts %llu\n",
	       idx, (unsigned long long)st.enqueued_msgs,
	       (unsigned long long)st.dequeued_msgs,
	       (unsigned long long)st.dropped_oldest,
	       (unsigned long long)st.flushed,
	       (unsigned long long)st.depth_msgs,
	       bpq_stats_balanced(&st) ? "" : " (UNBALANCED)",
	       (unsigned long long)st.dropped_newest,
	       (unsigned long long)st.timeouts);
	bad |= !bpq_stats_balanced(&st);
	if (bpq_reset(fd)) {
		printf("# FAIL: bpq%d: reset to defaults: %s\n", idx,
		       strerror(errno));
		bad = 1;
	}
	bpq_default_config(&def);
	if (bpq_get_config(fd, &cfg) || memcmp(&cfg, &def, sizeof(cfg)) ||
	    bpq_get_stats(fd, &st) || st.depth_msgs || st.enqueued_msgs ||
	    !bpq_stats_balanced(&st)) {
		printf("# FAIL: bpq%d is not at its defaults after the reset\n",
		       idx);
		bad = 1;
	}
	close(fd);
	return bad;
}

static void print_figures(double secs)
{
	char line[256];
	size_t n = 0;
	int k, e;

	printf("# figures: seed %#llx, %d threads, %.1f s: %llu calls (%.0f/s), %llu succeeded\n",
	       (unsigned long long)G.seed, G.nthreads, secs,
	       (unsigned long long)G.calls, G.calls / secs,
	       (unsigned long long)G.succeeded);
	printf("# messages: %llu written, %llu read (%llu bytes); queues: %llu created, %llu destroyed; %llu configs set, %llu sysfs writes, %llu snapshots balanced, %llu calls interrupted\n",
	       (unsigned long long)G.msgs_written,
	       (unsigned long long)G.msgs_read,
	       (unsigned long long)G.bytes_read,
	       (unsigned long long)G.creates, (unsigned long long)G.destroys,
	       (unsigned long long)G.configs,
	       (unsigned long long)G.sysfs_writes,
	       (unsigned long long)G.snapshots,
	       (unsigned long long)G.interrupted);
	line[0] = '\0';
	for (k = 0; k < NKINDS; k++) {
		n += snprintf(line + n, sizeof(line) - n, " %s %llu",
			      kind_names[k], (unsigned long long)G.ops[k]);
		if (n > 90 || k == NKINDS - 1) {
			printf("# ops:%s\n", line);
			n = 0;
			line[0] = '\0';
		}
	}
	for (e = 1; e < NERRNO; e++) {
		if (!G.errs[e])
			continue;
		n += snprintf(line + n, sizeof(line) - n, " %s %llu", ename(e),
			      (unsigned long long)G.errs[e]);
		if (n > 90) {
			printf("# errors:%s\n", line);
			n = 0;
			line[0] = '\0';
		}
	}
	if (n)
		printf("# errors:%s\n", line);
}

static long env_long(const char *name, long dflt)
{
	const char *s = getenv(name);

	return s && *s ? strtol(s, NULL, 0) : dflt;
}

int main(void)
{
	struct sigaction sa = { .sa_handler = on_sigusr2 };
	pthread_t wd;
	uint64_t x;
	int64_t t0;
	double secs;
	int i, bad = 0, cfd, fd;
	const char *s;

	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("TAP version 13\n1..1\n");
	G.page = sysconf(_SC_PAGESIZE);
	G.root = geteuid() == 0;
	G.seconds = (int)env_long("BPQ_FUZZ_SECONDS", 20);
	G.nthreads = (int)env_long("BPQ_FUZZ_THREADS", 6);
	if (G.nthreads < 1 || G.nthreads > MAX_THREADS)
		G.nthreads = 6;
	s = getenv("BPQ_FUZZ_SEED");
	if (s && *s) {
		G.seed = strtoull(s, NULL, 0);
	} else {
		x = (uint64_t)now_ns() ^ ((uint64_t)getpid() << 32);
		G.seed = splitmix64(&x);
	}
	printf("# seed %#llx (BPQ_FUZZ_SEED=%#llx replays it), %d threads, %d s\n",
	       (unsigned long long)G.seed, (unsigned long long)G.seed,
	       G.nthreads, G.seconds);

	cfd = bpq_control_open();
	if (cfd < 0) {
		printf("ok 1 fuzz # SKIP %s: %s\n", BPQ_CONTROL_PATH,
		       strerror(errno));
		return 4;
	}
	close(cfd);
	G.bad_page = mmap(NULL, G.page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS,
			  -1, 0);
	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR2, &sa, NULL);	/* no SA_RESTART: EINTR */

	/* Start from the defaults, with writers' waits bounded. */
	for (i = 0; i < NFIXED; i++) {
		struct bpq_config c;

		fd = bpq_open(i, O_RDWR);
		bpq_default_config(&c);
		c.write_timeout_ms = 50;
		if (fd < 0 || bpq_reset(fd) || bpq_set_config(fd, &c)) {
			printf("not ok 1 fuzz # /dev/bpq%d: %s\n", i,
			       strerror(errno));
			return 1;
		}
		close(fd);
	}

	for (i = 0; i < NKINDS; i++)
		weight_total += kind_weight[i];
	x = G.seed;
	for (i = 0; i < G.nthreads; i++) {
		threads[i].id = i;
		threads[i].rng = splitmix64(&x) | 1;
	}
	t0 = now_ns();
	pthread_create(&wd, NULL, watchdog, NULL);
	for (i = 0; i < G.nthreads; i++)
		pthread_create(&threads[i].thr, NULL, worker, &threads[i]);
	while (!stopping() && now_ns() - t0 < G.seconds * 1000000000LL)
		sleep_ms(50);
	__atomic_store_n(&G.stop, 1, __ATOMIC_RELAXED);
	for (i = 0; i < G.nthreads; i++)
		pthread_join(threads[i].thr, NULL);
	__atomic_store_n(&workers_done, 1, __ATOMIC_RELEASE);
	pthread_join(wd, NULL);
	secs = (now_ns() - t0) / 1e9;

	/* Destroy what is left of the created queues. */
	cfd = bpq_control_open();
	for (i = 0; i < G.ncreated; i++) {
		int ret = bpq_destroy(cfd, G.created[i]);

		if (ret) {
			printf("# FAIL: destroy of created bpq%d: %s\n",
			       G.created[i], strerror(-ret));
			bad = 1;
		} else {
			G.destroys++;
		}
	}
	if (G.creates != G.destroys) {
		printf("# FAIL: %llu queues created, %llu destroyed\n",
		       (unsigned long long)G.creates,
		       (unsigned long long)G.destroys);
		bad = 1;
	}
	for (i = 0; i < NFIXED * NFIXED; i++) {
		struct bpq_link l = {
			.size = sizeof(l), .upstream = i / NFIXED,
			.downstream = i % NFIXED,
		};

		bpq_ioctl(cfd, BPQ_IOC_UNLINK, &l);
	}
	/* the fixed queues leave the groups, which go, innermost first */
	for (i = 0; i < NFIXED; i++) {
		struct bpq_group_join j = { .size = sizeof(j), .queue = i };

		bpq_ioctl(cfd, BPQ_IOC_GROUP_JOIN, &j);
	}
	for (i = 0; i < 4 * 4; i++) {
		struct bpq_group_create g = { .size = sizeof(g) };

		snprintf(g.name, sizeof(g.name), "fz-g%d", i % 4);
		bpq_ioctl(cfd, BPQ_IOC_GROUP_DESTROY, &g);
	}
	close(cfd);
	for (i = 0; i < NFIXED; i++)
		bad |= finish_queue(i);

	print_figures(secs);
	bad |= G.failures != 0;
	if (bad)
		printf("# replay: BPQ_FUZZ_SEED=%#llx (timing makes replays approximate)\n",
		       (unsigned long long)G.seed);
	printf("%s 1 fuzz\n", bad ? "not ok" : "ok");
	return bad ? 1 : 0;
}
