// SPDX-License-Identifier: GPL-2.0
/*
 * Fault injection (debug kernel: FAILSLAB, FAULT_INJECTION_USERCOPY,
 * FAULT_INJECTION_DEBUG_FS and fail-nth).
 *
 *  - fail_nth.*: for every call a user can make (open, close, write of
 *    three sizes, read, every queue ioctl (SHUTDOWN both as a cancel that
 *    discards and as a reopen), open of the control device, CREATE,
 *    DESTROY) write n = 1, 2, ... to /proc/thread-self/fail-nth,
 *    make the call, read fail-nth back (0: the n-th fault site of the call
 *    failed) and go on until a call completes with no fault injected, however
 *    many fault sites this kernel build has. The armed call runs alone on a
 *    thread of its own (nth_run()), so nothing but the call can take the
 *    fault. Each
 *    call must succeed or fail cleanly (ENOMEM, EFAULT), and afterwards:
 *    the state is what the return value says (a message either delivered
 *    or still queued, a config either applied or not, a stream either
 *    ended or reopened or not, a queue either created or not), the
 *    module's refcount is back, a round-trip works
 *    and enqueued = dequeued + dropped_oldest + flushed + depth.
 *  - failslab.stress: producers and consumers whose threads alone have
 *    make-it-fail, with failslab at 10 % (ignore-gfp-wait=N): writes may
 *    fail with ENOMEM, every message accepted is received intact, exactly
 *    once, in per-producer order, and the counters reconcile.
 *  - fail_usercopy.read_loop: a reader (and its writer) with usercopy
 *    faults at 10 %: a read/RECV/RECV_BATCH that faults returns EFAULT and
 *    consumes nothing, a write that faults queues nothing; every message
 *    arrives exactly once, in order.
 *  - module.insmod_nth (only with BPQ_FAULTS_INSMOD=1): finit_module(bpq.ko)
 *    walked with fail-nth (90 s at most): each load succeeds or fails
 *    leaving no trace of the module; the module is then loaded again as
 *    the runner had it. Off by default: faults in the module loader's own
 *    vmalloc()s (kernel_read_file, module_alloc) print warn_alloc stack
 *    dumps, which the runner's kernel-log gate counts as a failure.
 *
 * The leak check is the runner's kmemleak gate (and faults_test.sh).
 * Skips (exit 4) at once on a kernel without fail-nth. Figures (faults
 * injected per call kind, messages, duration) are printed at the end.
 * BPQ_FAULTS_SECONDS (default 4) is the length of each stress part.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <stdarg.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "bpq_test.h"
/* kselftest_harness.h of 6.1 has an unused parameter: keep -Wextra clean. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"
#include "kselftest_harness.h"
#pragma GCC diagnostic pop

#define DEBUGFS		"/sys/kernel/debug"
#define FAIL_NTH	"/proc/thread-self/fail-nth"
#define MAX_STEPS	5000
#define MAGIC		0xb9f417edU
#define BIG_TIMES	100000000L

/* ---- call kinds walked with fail-nth ---- */

enum kind {
	K_OPEN, K_CLOSE, K_WRITE_SMALL, K_WRITE_MID, K_WRITE_LARGE, K_READ,
	K_GET_CONFIG, K_SET_CONFIG, K_GET_STATS, K_RESET_STATS, K_GRANT,
	K_FLUSH, K_RECV, K_SEND_BATCH, K_RECV_BATCH, K_SHUTDOWN, K_REOPEN,
	K_CTL_OPEN, K_CREATE, K_DESTROY, K_INSMOD, NKINDS
};

static const char *const kind_name[NKINDS] = {
	[K_OPEN] = "open", [K_CLOSE] = "close",
	[K_WRITE_SMALL] = "write(100)", [K_WRITE_MID] = "write(3000)",
	[K_WRITE_LARGE] = "write(6000)", [K_READ] = "read",
	[K_GET_CONFIG] = "GET_CONFIG", [K_SET_CONFIG] = "SET_CONFIG",
	[K_GET_STATS] = "GET_STATS", [K_RESET_STATS] = "RESET_STATS",
	[K_GRANT] = "GRANT", [K_FLUSH] = "FLUSH", [K_RECV] = "RECV",
	[K_SEND_BATCH] = "SEND_BATCH", [K_RECV_BATCH] = "RECV_BATCH",
	[K_SHUTDOWN] = "SHUTDOWN", [K_REOPEN] = "SHUTDOWN(REOPEN)",
	[K_CTL_OPEN] = "open(control)", [K_CREATE] = "CREATE",
	[K_DESTROY] = "DESTROY", [K_INSMOD] = "finit_module",
};

/* ---- figures, shared by the forked tests and printed by the parent ---- */

struct figures {
	long injected[NKINDS];
	long errors[NKINDS];	/* calls that failed (all under a fault) */
	long slab_faults, slab_enomem, slab_open_enomem, slab_moved;
	long uc_faults, uc_read_efault, uc_write_efault, uc_moved;
	long ms;
};

BPQ_FIGURES(struct figures)

static void figures_print(void)
{
	long total = 0;
	int k;

	printf("# figures: faults injected by fail-nth per call (failed calls):");
	for (k = 0; k < NKINDS; k++) {
		printf(" %s %ld (%ld)", kind_name[k], fig->injected[k],
		       fig->errors[k]);
		total += fig->injected[k];
	}
	printf("; total %ld\n", total);
	printf("# figures: failslab stress %ld faults, %ld writes ENOMEM, %ld opens ENOMEM, %ld messages moved\n",
	       fig->slab_faults, fig->slab_enomem, fig->slab_open_enomem,
	       fig->slab_moved);
	printf("# figures: fail_usercopy %ld faults, %ld reads EFAULT, %ld writes EFAULT, %ld messages moved\n",
	       fig->uc_faults, fig->uc_read_efault, fig->uc_write_efault,
	       fig->uc_moved);
	printf("# figures: %.1f s\n", (now_ns() - fig_start_ns) / 1e9);
}

/*
 * now_ns() for threads with make-it-fail: where the vDSO falls back to the
 * system call (no TSC under TCG), the copy-out may fault too.
 */
static int64_t fnow_ns(void)
{
	struct timespec ts;

	while (clock_gettime(CLOCK_MONOTONIC, &ts))
		;
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int stress_ms(void)
{
	const char *s = getenv("BPQ_FAULTS_SECONDS");
	double v = s && *s ? strtod(s, NULL) : 4.0;

	return v > 0 ? (int)(v * 1000) : 4000;
}

/* ---- small file helpers ---- */

static long read_long(const char *path)
{
	char buf[64];

	if (bpq_read_value(path, buf, sizeof(buf)) < 0)
		return -1;
	return strtol(buf, NULL, 0);
}

/* ---- fault attributes in debugfs: saved, changed, restored ---- */

#define MAX_SAVED	32

struct saved_attr {
	char path[128];
	char val[64];
};

static struct saved_attr saved[MAX_SAVED];
static int nsaved;

/* Set DEBUGFS/dir/attr to val, remembering the old value; -errno. */
static int fault_set(const char *dir, const char *attr, const char *val)
{
	char path[128], old[64];
	int i;

	snprintf(path, sizeof(path), DEBUGFS "/%s/%s", dir, attr);
	if (bpq_read_value(path, old, sizeof(old)) < 0)
		return -ENOENT;
	for (i = 0; i < nsaved; i++)
		if (!strcmp(saved[i].path, path))
			break;
	if (i == nsaved && nsaved < MAX_SAVED) {
		strcpy(saved[nsaved].path, path);
		strcpy(saved[nsaved].val, old);
		nsaved++;
	}
	return bpq_write_file(path, val);
}

static long fault_get(const char *dir, const char *attr)
{
	char path[128];

	snprintf(path, sizeof(path), DEBUGFS "/%s/%s", dir, attr);
	return read_long(path);
}

static void fault_restore(void)
{
	/* probability first, so nothing fires while the rest is restored */
	int i;

	for (i = 0; i < nsaved; i++)
		if (strstr(saved[i].path, "/probability"))
			bpq_write_file(saved[i].path, saved[i].val);
	for (i = nsaved - 1; i >= 0; i--)
		bpq_write_file(saved[i].path, saved[i].val);
	nsaved = 0;
}

static bool fault_dir(const char *dir)
{
	char path[128];

	snprintf(path, sizeof(path), DEBUGFS "/%s/probability", dir);
	return access(path, W_OK) == 0;
}

/* No report (and no stack dump, which the runner would take for a splat). */
static void fault_quiet(void)
{
	fault_set("failslab", "verbose", "0");
	fault_set("fail_usercopy", "verbose", "0");
	fault_set("fail_page_alloc", "verbose", "0");
}

static int make_it_fail(int on);

/* ---- fail-nth ---- */

static int nth_open(void)
{
	return open(FAIL_NTH, O_RDWR | O_CLOEXEC);
}

static int nth_set(int fd, unsigned int n)
{
	char buf[16];
	int len = snprintf(buf, sizeof(buf), "%u", n);

	return pwrite(fd, buf, len, 0) == len ? 0 : -errno;
}

/*
 * After the call: was its fault injected? Leaves fail-nth at 0. A value
 * left at 1 is consumed by the read itself (EFAULT): not injected either.
 */
static bool nth_injected(int fd)
{
	char buf[16] = "";
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);

	if (n < 0)
		return false;
	if (strtoul(buf, NULL, 10) == 0)
		return true;
	nth_set(fd, 0);			/* may EFAULT itself: 0 either way */
	nth_set(fd, 0);
	return false;
}

/*
 * A call made under fail-nth runs on a thread of its own, which does
 * nothing else while armed: fail-nth counts every fault site the task
 * meets, and one left armed after a call with fewer sites than n fires in
 * whatever comes next. On the test's own thread that could be its stack
 * growing (expand_downwards() allocates a maple-tree node: an injected
 * failure there is a SIGSEGV) or a signal frame being written (SIGSEGV as
 * well). So this thread's stack is a locked mapping that never grows, its
 * signals are blocked, and between arming and reading back it makes the
 * call and nothing else; fail-nth of the test's thread stays 0 throughout.
 */
#define NTH_STACK	(256 << 10)

struct nth_call {
	long (*fn)(void *arg);	/* the call: returns its result, or -1 */
	void *arg;
	unsigned int n;
	long ret;
	int err;		/* errno of a failed call */
	int setup_err;		/* the thread could not arm itself */
	bool injected;
};

static void *nth_thread(void *data)
{
	struct nth_call *c = data;
	sigset_t all;
	int fd;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	fd = nth_open();
	if (fd < 0 || nth_set(fd, 0)) {
		c->setup_err = errno ? errno : EIO;
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	nth_injected(fd);		/* its libc calls are bound now */
	if (nth_set(fd, c->n)) {
		c->setup_err = errno;
		close(fd);
		return NULL;
	}
	c->ret = c->fn(c->arg);
	c->err = c->ret < 0 ? errno : 0;
	c->injected = nth_injected(fd);
	close(fd);
	return NULL;
}

/* Make @fn(@arg) with its n-th fault site failed; 0 or -errno (setup). */
static int nth_run(struct nth_call *c, void *stack)
{
	pthread_attr_t attr;
	pthread_t t;
	int ret;

	c->setup_err = 0;
	c->injected = false;
	ret = pthread_attr_init(&attr);
	if (!ret)
		ret = pthread_attr_setstack(&attr, stack, NTH_STACK);
	if (!ret)
		ret = pthread_create(&t, &attr, nth_thread, c);
	pthread_attr_destroy(&attr);
	if (ret)
		return -ret;
	pthread_join(t, NULL);
	return -c->setup_err;
}

/* The caller thread's stack: populated and locked, so it cannot fault. */
static void *nth_stack_alloc(void)
{
	void *p = mmap(NULL, NTH_STACK, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE | MAP_LOCKED,
		       -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

/* ---- messages: {magic, id, len, crc} + pattern ---- */

struct mhdr {
	__u32 magic;
	__u32 id;
	__u32 len;
	__u32 crc;
};

static size_t msg_make(void *buf, __u32 id, size_t len)
{
	struct mhdr *h = buf;

	h->magic = MAGIC;
	h->id = id;
	h->len = len;
	h->crc = 0;
	fill_pattern(h + 1, len - sizeof(*h), id);
	h->crc = bpq_crc32(0, buf, len);
	return len;
}

/* Is @buf, @n bytes as received, an intact message? Its id, or -1. */
static long msg_check(const void *buf, ssize_t n)
{
	struct mhdr h;
	__u32 crc;

	if (n < (ssize_t)sizeof(h))
		return -1;
	memcpy(&h, buf, sizeof(h));
	if (h.magic != MAGIC || h.len != n)
		return -1;
	crc = h.crc;
	((struct mhdr *)buf)->crc = 0;
	if (bpq_crc32(0, buf, n) != crc)
		return -1;
	((struct mhdr *)buf)->crc = crc;
	return h.id;
}

/* ---- the module ---- */

static long module_refcnt(void)
{
	return read_long("/sys/module/bpq/refcnt");
}

/* Index of the queue named @name, or -1. */
static int queue_by_name(const char *name)
{
	struct dirent *de;
	char val[64];
	int idx = -1;
	DIR *d = opendir(BPQ_SYSFS_CLASS);

	if (!d)
		return -1;
	while ((de = readdir(d))) {
		int i;

		if (sscanf(de->d_name, "bpq%d", &i) != 1)
			continue;
		if (!bpq_sysfs_read(i, "name", val, sizeof(val)) &&
		    !strcmp(val, name)) {
			idx = i;
			break;
		}
	}
	closedir(d);
	return idx;
}

static bool fault_injection_available(void)
{
	return access("/proc/self/fail-nth", F_OK) == 0;
}

/* ===================================================================== */
/* fail-nth walks                                                        */
/* ===================================================================== */

FIXTURE(fail_nth) {
	int cfd;		/* control device */
	int idx;		/* our queue */
	int fd;			/* O_NONBLOCK file of it */
	void *nth_stack;	/* of the thread that makes the calls */
	char path[64];
	char name[BPQ_NAME_MAX];
	__u32 next_id;		/* id of the next message written */
	__u32 expect_id;	/* id of the next message to be received */
	long refcnt;
	unsigned char buf[65536];
	unsigned char out[65536];
};

/* BPQ_FAULTS_ONLY=word: run only the tests whose name has it (debugging). */
static bool selected(const char *name)
{
	const char *only = getenv("BPQ_FAULTS_ONLY");

	return !only || !*only || strstr(name, only);
}

FIXTURE_SETUP(fail_nth)
{
	self->fd = self->cfd = -1;
	self->idx = -1;
	if (!selected(_metadata->name))
		SKIP(return, "BPQ_FAULTS_ONLY");
	if (!fault_injection_available())
		SKIP(return, "no " FAIL_NTH);
	if (!fault_dir("failslab"))
		SKIP(return, "no " DEBUGFS "/failslab");
	self->cfd = bpq_control_open();
	if (self->cfd < 0)
		SKIP(return, "%s: %s", BPQ_CONTROL_PATH, strerror(errno));
	snprintf(self->name, sizeof(self->name), "flt-%d", getpid());
	self->idx = bpq_create(self->cfd, self->name);
	ASSERT_LE(0, self->idx);
	ASSERT_TRUE(bpq_wait_node(self->idx, true, 3000));
	snprintf(self->path, sizeof(self->path), "/dev/bpq%d", self->idx);
	self->fd = open(self->path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	ASSERT_LE(0, self->fd);
	self->nth_stack = nth_stack_alloc();
	ASSERT_NE(NULL, self->nth_stack);
	/* what the armed thread touches is there: it takes no page fault */
	ASSERT_EQ(0, mlockall(MCL_CURRENT | MCL_FUTURE));
	/* failslab fails GFP_KERNEL allocations only with ignore-gfp-wait=N */
	fault_quiet();
	ASSERT_EQ(0, fault_set("failslab", "ignore-gfp-wait", "N"));
	/* and the queue's log takes single pages, which min-order 0 fails */
	if (fault_dir("fail_page_alloc")) {
		ASSERT_EQ(0, fault_set("fail_page_alloc", "ignore-gfp-wait",
				       "N"));
		ASSERT_EQ(0, fault_set("fail_page_alloc", "min-order", "0"));
	}
	self->refcnt = module_refcnt();
}

FIXTURE_TEARDOWN(fail_nth)
{
	fault_restore();
	munlockall();
	if (self->nth_stack)
		munmap(self->nth_stack, NTH_STACK);
	if (self->fd >= 0)
		close(self->fd);
	if (self->cfd >= 0 && self->idx >= 0)
		bpq_destroy(self->cfd, self->idx);
	if (self->cfd >= 0)
		close(self->cfd);
}

/* Write message @next_id without faults. */
static int put_one(FIXTURE_DATA(fail_nth) *self, size_t len)
{
	msg_make(self->buf, self->next_id, len);
	if (bpq_write(self->fd, self->buf, len) != (ssize_t)len)
		return -1;
	self->next_id++;
	return 0;
}

/* Read one message without faults: it must be message @expect_id. */
static int get_one(FIXTURE_DATA(fail_nth) *self)
{
	ssize_t n = bpq_read(self->fd, self->out, sizeof(self->out));

	if (n < 0)
		return (int)n;
	if (msg_check(self->out, n) != self->expect_id)
		return -EBADMSG;
	self->expect_id++;
	return 0;
}

/* Everything the model says is queued comes out, in order. */
static int drain(FIXTURE_DATA(fail_nth) *self)
{
	int ret;

	while (self->expect_id != self->next_id) {
		ret = get_one(self);
		if (ret)
			return ret;
	}
	return bpq_read(self->fd, self->out, sizeof(self->out)) == -EAGAIN ?
	       0 : -EEXIST;
}

static bool clean_error(int err)
{
	return err == ENOMEM || err == EFAULT;
}

/* The checks after every step: the queue is as the model says and works. */
static void after_step(struct __test_metadata *_metadata,
		       FIXTURE_DATA(fail_nth) *self, enum kind k,
		       unsigned int n)
{
	struct bpq_stats st;

	ASSERT_EQ(0, bpq_get_stats(self->fd, &st))
		TH_LOG("%s step %u: GET_STATS", kind_name[k], n);
	ASSERT_TRUE(bpq_stats_balanced(&st))
		TH_LOG("%s step %u: enqueued %llu != dequeued %llu + dropped %llu + flushed %llu + depth %llu",
		       kind_name[k], n, st.enqueued_msgs, st.dequeued_msgs,
		       st.dropped_oldest, st.flushed, st.depth_msgs);
	ASSERT_EQ(self->next_id - self->expect_id, st.depth_msgs)
		TH_LOG("%s step %u: depth", kind_name[k], n);
	ASSERT_EQ(0, drain(self))
		TH_LOG("%s step %u: queued messages lost, changed or added",
		       kind_name[k], n);
	/* a round-trip */
	ASSERT_EQ(0, put_one(self, 64))
		TH_LOG("%s step %u: write after the fault", kind_name[k], n);
	ASSERT_EQ(0, get_one(self))
		TH_LOG("%s step %u: read after the fault", kind_name[k], n);
	ASSERT_EQ(self->refcnt, module_refcnt())
		TH_LOG("%s step %u: module refcount", kind_name[k], n);
}

static const size_t wlen[] = {
	[K_WRITE_SMALL] = 100, [K_WRITE_MID] = 3000, [K_WRITE_LARGE] = 6000,
};

/* A step's call and what it reads and writes. */
struct step {
	FIXTURE_DATA(fail_nth) *self;
	enum kind k;
	int fd2;
	struct bpq_config cfg;
	struct bpq_stats st2;
	struct bpq_msg_info infos[8];
	struct bpq_send_batch sb;
	struct bpq_recv_batch rb;
	struct bpq_recv rcv;
	struct bpq_grant gr;
	struct bpq_simple simple;
	struct bpq_shutdown sd;
	struct bpq_create cr;
	struct bpq_destroy de;
};

/* The call of a step: on the armed thread, nothing but the system call. */
static long step_call(void *arg)
{
	struct step *a = arg;
	long ret;

	switch (a->k) {
	case K_OPEN:
		ret = open(a->self->path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
		break;
	case K_CTL_OPEN:
		ret = open(BPQ_CONTROL_PATH, O_RDWR | O_CLOEXEC);
		break;
	case K_CLOSE:
		ret = close(a->fd2);
		break;
	case K_WRITE_SMALL:
	case K_WRITE_MID:
	case K_WRITE_LARGE:
		ret = write(a->self->fd, a->self->buf, wlen[a->k]);
		break;
	case K_READ:
		ret = read(a->self->fd, a->self->out, sizeof(a->self->out));
		break;
	case K_GET_CONFIG:
		memset(&a->cfg, 0, sizeof(a->cfg));
		a->cfg.size = sizeof(a->cfg);
		ret = ioctl(a->self->fd, BPQ_IOC_GET_CONFIG, &a->cfg);
		break;
	case K_SET_CONFIG:
		ret = ioctl(a->self->fd, BPQ_IOC_SET_CONFIG, &a->cfg);
		break;
	case K_GET_STATS:
		memset(&a->st2, 0, sizeof(a->st2));
		a->st2.size = sizeof(a->st2);
		ret = ioctl(a->self->fd, BPQ_IOC_GET_STATS, &a->st2);
		break;
	case K_RESET_STATS:
		ret = ioctl(a->self->fd, BPQ_IOC_RESET_STATS, &a->simple);
		break;
	case K_GRANT:
		ret = ioctl(a->self->fd, BPQ_IOC_GRANT, &a->gr);
		break;
	case K_FLUSH:
		ret = ioctl(a->self->fd, BPQ_IOC_FLUSH, &a->simple);
		break;
	case K_RECV:
		a->rcv.buf = (uintptr_t)a->self->out;
		a->rcv.buf_len = sizeof(a->self->out);
		ret = ioctl(a->self->fd, BPQ_IOC_RECV, &a->rcv);
		break;
	case K_SEND_BATCH:
		ret = ioctl(a->self->fd, BPQ_IOC_SEND_BATCH, &a->sb);
		break;
	case K_RECV_BATCH:
		a->rb.buf = (uintptr_t)a->self->out;
		a->rb.buf_len = sizeof(a->self->out);
		a->rb.infos = (uintptr_t)a->infos;
		a->rb.max_records = 8;
		ret = ioctl(a->self->fd, BPQ_IOC_RECV_BATCH, &a->rb);
		break;
	case K_SHUTDOWN:
	case K_REOPEN:
		ret = ioctl(a->self->fd, BPQ_IOC_SHUTDOWN, &a->sd);
		break;
	case K_CREATE:
		ret = ioctl(a->self->cfd, BPQ_IOC_CREATE, &a->cr);
		break;
	case K_DESTROY:
		ret = ioctl(a->self->cfd, BPQ_IOC_DESTROY, &a->de);
		break;
	default:
		ret = -1;
		errno = EINVAL;
	}
	return ret;
}


/* One call of kind @k at fail-nth @n: returns whether a fault was injected. */
static bool nth_step(struct __test_metadata *_metadata,
		     FIXTURE_DATA(fail_nth) *self, enum kind k, unsigned int n)
{
	struct step a = {
		.self = self, .k = k, .fd2 = -1,
		.sb = { .size = sizeof(a.sb) },
		.rb = { .size = sizeof(a.rb) },
		.rcv = { .size = sizeof(a.rcv) },
		.gr = { .size = sizeof(a.gr), .credits = 5 },
		.simple = { .size = sizeof(a.simple) },
		.sd = { .size = sizeof(a.sd) },
		.cr = { .size = sizeof(a.cr) },
		.de = { .size = sizeof(a.de) },
	};
	struct nth_call c = { .fn = step_call, .arg = &a, .n = n };
	struct bpq_config cfg2;
	struct bpq_stats st;
	struct bpq_iovec vec[3];
	unsigned char *bufs[3];
	bool injected;
	long ret;
	int err, i, idx2 = -1;
	size_t off;

	/* ---- prepare ---- */
	switch (k) {
	case K_CLOSE:
		a.fd2 = open(self->path, O_RDWR | O_CLOEXEC);
		ASSERT_LE(0, a.fd2);
		break;
	case K_READ:
	case K_RECV:
		ASSERT_EQ(0, put_one(self, 200));
		break;
	case K_RECV_BATCH:
	case K_FLUSH:
		for (i = 0; i < 3; i++)
			ASSERT_EQ(0, put_one(self, 100 + 1000 * i));
		break;
	case K_SHUTDOWN:
		/* a cancel that discards what is queued */
		for (i = 0; i < 3; i++)
			ASSERT_EQ(0, put_one(self, 100 + 1000 * i));
		a.sd.flags = BPQ_SHUTDOWN_CANCEL | BPQ_SHUTDOWN_DISCARD;
		break;
	case K_REOPEN:
		/* a completed, drained stream opened again */
		ASSERT_EQ(0, put_one(self, 100));
		ASSERT_EQ(0, bpq_shutdown(self->fd, BPQ_SHUTDOWN_COMPLETE, 0));
		ASSERT_EQ(0, get_one(self));
		ASSERT_EQ(0, bpq_get_stats(self->fd, &st));
		a.sd.flags = BPQ_SHUTDOWN_REOPEN;
		break;
	case K_SEND_BATCH:
		for (i = 0; i < 3; i++) {
			size_t len = 100 + 2900 * i;

			bufs[i] = self->buf + 8192 * i;
			msg_make(bufs[i], self->next_id + i, len);
			vec[i] = (struct bpq_iovec){
				.base = (uintptr_t)bufs[i], .len = len };
		}
		a.sb.msgs = (uintptr_t)vec;
		a.sb.count = 3;
		break;
	case K_WRITE_SMALL:
	case K_WRITE_MID:
	case K_WRITE_LARGE:
		msg_make(self->buf, self->next_id, wlen[k]);
		break;
	case K_SET_CONFIG:
		ASSERT_EQ(0, bpq_get_config(self->fd, &a.cfg));
		a.cfg.capacity_msgs = a.cfg.capacity_msgs == 200 ? 300 : 200;
		break;
	case K_GRANT:
	case K_RESET_STATS:
		ASSERT_EQ(0, put_one(self, 64));
		ASSERT_EQ(0, get_one(self));
		ASSERT_EQ(0, bpq_get_stats(self->fd, &st));
		break;
	case K_CREATE:
		memcpy(a.cr.name, "flt-nth-create", 14);
		ASSERT_EQ(-1, queue_by_name("flt-nth-create"));
		break;
	case K_DESTROY:
		idx2 = bpq_create(self->cfd, "flt-nth-destroy");
		ASSERT_LE(0, idx2);
		a.de.index = idx2;
		break;
	default:
		break;
	}

	/* ---- the call, alone on its thread ---- */
	err = nth_run(&c, self->nth_stack);
	ASSERT_EQ(0, err)
		TH_LOG("%s step %u: arming fail-nth: %s", kind_name[k], n,
		       strerror(-err));
	ret = c.ret;
	err = c.err;
	injected = c.injected;

	/* ---- what the result says must be so ---- */
	if (getenv("BPQ_FAULTS_TRACE"))
		ksft_print_msg("%s n=%u ret=%ld %s injected=%d\n", kind_name[k],
			       n, ret, ret < 0 ? strerror(err) : "", injected);
	if (ret < 0) {
		FIG_ADD(errors[k], 1);
		EXPECT_TRUE(injected)
			TH_LOG("%s step %u failed (%s) with no fault injected",
			       kind_name[k], n, strerror(err));
		EXPECT_TRUE(clean_error(err))
			TH_LOG("%s step %u: %s is not a clean error",
			       kind_name[k], n, strerror(err));
	}
	switch (k) {
	case K_OPEN:
	case K_CTL_OPEN:
		if (ret >= 0)
			close(ret);
		break;
	case K_CLOSE:
		EXPECT_EQ(0, ret);
		break;
	case K_WRITE_SMALL:
	case K_WRITE_MID:
	case K_WRITE_LARGE:
		if (ret >= 0) {
			EXPECT_EQ((long)wlen[k], ret);
			self->next_id++;
		}
		break;
	case K_READ:
	case K_RECV:
		if (ret >= 0) {
			EXPECT_EQ(self->expect_id, msg_check(self->out, ret))
				TH_LOG("%s step %u: wrong or corrupt message",
				       kind_name[k], n);
			if (k == K_RECV)
				EXPECT_EQ(ret, a.rcv.info.len);
			self->expect_id++;
		}
		/* else: it must still be queued; after_step() reads it */
		break;
	case K_RECV_BATCH:
		for (i = 0, off = 0; i < ret; i++) {
			EXPECT_EQ(off, a.infos[i].offset);
			EXPECT_EQ(self->expect_id,
				  msg_check(self->out + a.infos[i].offset,
					    a.infos[i].len))
				TH_LOG("RECV_BATCH step %u: record %d", n, i);
			off += a.infos[i].len;
			self->expect_id++;
		}
		EXPECT_TRUE(ret < 0 || ret == 3 || injected)
			TH_LOG("RECV_BATCH step %u: %ld of 3", n, ret);
		break;
	case K_SEND_BATCH:
		if (ret > 0)
			self->next_id += ret;
		EXPECT_TRUE(ret < 0 || ret == 3 || injected)
			TH_LOG("SEND_BATCH step %u: %ld of 3", n, ret);
		break;
	case K_GET_CONFIG:
		if (!ret)
			EXPECT_LE(200U, a.cfg.capacity_msgs);
		break;
	case K_SET_CONFIG:
		ASSERT_EQ(0, bpq_get_config(self->fd, &cfg2));
		if (!ret) {
			EXPECT_EQ(a.cfg.capacity_msgs, cfg2.capacity_msgs);
		} else {
			EXPECT_NE(a.cfg.capacity_msgs, cfg2.capacity_msgs)
				TH_LOG("SET_CONFIG step %u failed but applied", n);
		}
		break;
	case K_GET_STATS:
		if (!ret)
			EXPECT_TRUE(bpq_stats_balanced(&a.st2));
		break;
	case K_RESET_STATS:
		ASSERT_EQ(0, bpq_get_stats(self->fd, &a.st2));
		if (!ret) {
			EXPECT_EQ(0ULL, a.st2.dequeued_msgs);
		} else {
			EXPECT_EQ(st.dequeued_msgs, a.st2.dequeued_msgs)
				TH_LOG("RESET_STATS step %u failed but reset", n);
		}
		break;
	case K_GRANT:
		ASSERT_EQ(0, bpq_get_stats(self->fd, &a.st2));
		EXPECT_EQ(st.credits_available + (ret ? 0 : 5),
			  a.st2.credits_available)
			TH_LOG("GRANT step %u: credits", n);
		break;
	case K_FLUSH:
		if (ret >= 0) {
			EXPECT_EQ(3, ret);
			self->expect_id = self->next_id;
		}
		break;
	case K_SHUTDOWN:
		ASSERT_EQ(0, bpq_get_stats(self->fd, &a.st2));
		if (ret >= 0) {
			EXPECT_EQ(3, ret);
			EXPECT_EQ((__u32)BPQ_STREAM_CANCELLED, a.st2.stream);
			self->expect_id = self->next_id;
			/* open again, for the round-trip of after_step() */
			ASSERT_EQ(0, bpq_shutdown(self->fd, BPQ_SHUTDOWN_REOPEN,
						  0));
		} else {
			/* (ASSERT: after_step() expects an open stream) */
			ASSERT_EQ((__u32)BPQ_STREAM_OPEN, a.st2.stream)
				TH_LOG("SHUTDOWN step %u failed (%s) but cancelled",
				       n, strerror(err));
		}
		break;
	case K_REOPEN:
		ASSERT_EQ(0, bpq_get_stats(self->fd, &a.st2));
		if (ret >= 0) {
			EXPECT_EQ(0, ret);
			EXPECT_EQ((__u32)BPQ_STREAM_OPEN, a.st2.stream);
			EXPECT_EQ(st.stream_epoch + 1, a.st2.stream_epoch);
		} else {
			EXPECT_EQ((__u32)BPQ_STREAM_COMPLETED, a.st2.stream)
				TH_LOG("REOPEN step %u failed (%s) but reopened",
				       n, strerror(err));
			EXPECT_EQ(st.stream_epoch, a.st2.stream_epoch);
			ASSERT_EQ(0, bpq_shutdown(self->fd, BPQ_SHUTDOWN_REOPEN,
						  0));
		}
		break;
	case K_CREATE:
		idx2 = queue_by_name("flt-nth-create");
		if (ret >= 0) {
			EXPECT_EQ(ret, idx2);
			EXPECT_EQ(ret, a.cr.index);
		} else {
			EXPECT_EQ(-1, idx2)
				TH_LOG("CREATE step %u failed (%s) but created bpq%d",
				       n, strerror(err), idx2);
		}
		if (idx2 >= 0) {
			/* it works, and goes */
			int qfd;

			ASSERT_TRUE(bpq_wait_node(idx2, true, 3000));
			qfd = bpq_open(idx2, O_RDWR | O_NONBLOCK);
			ASSERT_LE(0, qfd);
			ASSERT_EQ(5, bpq_write(qfd, "hello", 5));
			ASSERT_EQ(5, bpq_read(qfd, self->out, 64));
			close(qfd);
			ASSERT_EQ(0, bpq_destroy(self->cfd, idx2));
		}
		break;
	case K_DESTROY:
		if (ret >= 0) {
			EXPECT_EQ(-1, queue_by_name("flt-nth-destroy"));
		} else {
			EXPECT_EQ(idx2, queue_by_name("flt-nth-destroy"));
		}
		if (queue_by_name("flt-nth-destroy") >= 0)
			ASSERT_EQ(0, bpq_destroy(self->cfd, idx2));
		break;
	default:
		break;
	}
	after_step(_metadata, self, k, n);
	return injected;
}

static void walk(struct __test_metadata *_metadata,
		 FIXTURE_DATA(fail_nth) *self, enum kind k)
{
	unsigned int n;
	bool injected = true;

	if (_metadata->skip)	/* SKIP() in a setup does not stop the test */
		return;
	for (n = 1; n <= MAX_STEPS && injected; n++) {
		injected = nth_step(_metadata, self, k, n);
		if (!_metadata->passed)
			break;
		if (injected)
			FIG_ADD(injected[k], 1);
	}
	ksft_print_msg("%s: %u faults injected, %ld calls failed\n",
		       kind_name[k], n - 2, fig ? fig->errors[k] : -1L);
	EXPECT_FALSE(injected)
		TH_LOG("%s: still injecting faults after %d steps",
		       kind_name[k], MAX_STEPS);
}

#define WALK_TEST(name, kind)						\
	TEST_F_TIMEOUT(fail_nth, name, 180)				\
	{								\
		walk(_metadata, self, kind);				\
	}

/*
 * CREATE whose last user copy (the struct back, with the index) faults:
 * fail_usercopy with space=2 passes the copy in and fails the copy out.
 * The call must then not leave a queue behind that nobody knows of.
 */
TEST_F(fail_nth, create_copyout)
{
	struct bpq_create cr = { .size = sizeof(cr) };
	long ret;
	int err, idx;

	if (_metadata->skip)
		return;
	if (!fault_dir("fail_usercopy"))
		SKIP(return, "no " DEBUGFS "/fail_usercopy");
	memcpy(cr.name, "flt-copyout", 11);
	ASSERT_EQ(0, fault_set("fail_usercopy", "task-filter", "Y"));
	ASSERT_EQ(0, fault_set("fail_usercopy", "interval", "1"));
	ASSERT_EQ(0, fault_set("fail_usercopy", "space", "2"));
	ASSERT_EQ(0, fault_set("fail_usercopy", "times", "1"));
	ASSERT_EQ(0, fault_set("fail_usercopy", "probability", "100"));
	ASSERT_EQ(0, make_it_fail(1));
	ret = ioctl(self->cfd, BPQ_IOC_CREATE, &cr);
	err = errno;
	make_it_fail(0);
	fault_set("fail_usercopy", "probability", "0");
	idx = queue_by_name("flt-copyout");
	if (idx >= 0)
		bpq_destroy(self->cfd, idx);
	ASSERT_EQ(0, fault_get("fail_usercopy", "times"))
		TH_LOG("the fault was not injected");
	ASSERT_GT(0, ret) TH_LOG("CREATE succeeded with its copy-out failed");
	EXPECT_EQ(EFAULT, err);
	EXPECT_EQ(-1, idx)
		TH_LOG("CREATE returned EFAULT but created bpq%d (\"flt-copyout\"): a queue its caller cannot know of",
		       idx);
}

WALK_TEST(open, K_OPEN)
WALK_TEST(close, K_CLOSE)
WALK_TEST(write_small, K_WRITE_SMALL)
WALK_TEST(write_mid, K_WRITE_MID)
WALK_TEST(write_large, K_WRITE_LARGE)
WALK_TEST(read, K_READ)
WALK_TEST(get_config, K_GET_CONFIG)
WALK_TEST(set_config, K_SET_CONFIG)
WALK_TEST(get_stats, K_GET_STATS)
WALK_TEST(reset_stats, K_RESET_STATS)
WALK_TEST(grant, K_GRANT)
WALK_TEST(flush, K_FLUSH)
WALK_TEST(recv, K_RECV)
WALK_TEST(send_batch, K_SEND_BATCH)
WALK_TEST(recv_batch, K_RECV_BATCH)
WALK_TEST(shutdown, K_SHUTDOWN)
WALK_TEST(shutdown_reopen, K_REOPEN)
WALK_TEST(control_open, K_CTL_OPEN)
WALK_TEST(create, K_CREATE)
WALK_TEST(destroy, K_DESTROY)

/* ===================================================================== */
/* failslab at 10 % and fail_usercopy during traffic                      */
/* ===================================================================== */

#define NPROD		2
#define NCONS		2
#define MAXSEQ		(1 << 18)
#define SLAB_MAXLEN	6000

struct traffic {
	const char *path;
	int64_t deadline;
	int64_t hard_deadline;
	int producing;				/* atomic: producers running */
	long accepted[NPROD];			/* seqs 0..accepted-1 queued */
	long received;				/* atomic */
	long accepted_total;			/* atomic */
	long enomem, open_enomem, read_efault, write_efault;	/* atomic */
	unsigned char (*got)[MAXSEQ];		/* [NPROD][MAXSEQ] */
	int bad;				/* atomic: first problem */
	char why[160];
	int prod_id;
};

static void traffic_bad(struct traffic *t, const char *fmt, ...)
{
	va_list ap;

	if (__atomic_exchange_n(&t->bad, 1, __ATOMIC_ACQ_REL))
		return;
	va_start(ap, fmt);
	vsnprintf(t->why, sizeof(t->why), fmt, ap);
	va_end(ap);
}

/* make-it-fail of the calling thread: only these threads see faults */
static int make_it_fail(int on)
{
	int ret, tries = 0;

	/* the write's own copy may fault while make-it-fail is on: retry */
	do
		ret = bpq_write_file("/proc/thread-self/make-it-fail",
				     on ? "1" : "0");
	while (ret == -EFAULT && ++tries < 10000);
	return ret;
}

struct pmsg {
	struct mhdr h;
	__u32 prod;
	__u32 seq;
};

static size_t pmsg_make(void *buf, __u32 prod, __u32 seq)
{
	size_t len = sizeof(struct pmsg) +
		     (seq * 2654435761U + prod * 40503U) %
		     (SLAB_MAXLEN - sizeof(struct pmsg));
	struct pmsg *m = buf;

	m->prod = prod;
	m->seq = seq;
	/* the crc of msg_make() covers prod and seq too */
	fill_pattern((unsigned char *)buf + sizeof(*m), len - sizeof(*m),
		     prod * 7919 + seq);
	m->h.magic = MAGIC;
	m->h.id = prod << 24 | seq;
	m->h.len = len;
	m->h.crc = 0;
	m->h.crc = bpq_crc32(0, buf, len);
	return len;
}

struct prod_arg {
	struct traffic *t;
	int id;
};

static void *slab_producer(void *arg)
{
	struct prod_arg *pa = arg;
	struct traffic *t = pa->t;
	static __thread unsigned char bufs[4][SLAB_MAXLEN];
	struct bpq_iovec vec[4];
	struct bpq_send_batch sb = { .size = sizeof(sb) };
	long seq = 0, ops = 0;
	int fd, fd2, i, cnt;
	ssize_t ret;

	fd = open(t->path, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		traffic_bad(t, "producer open: %s", strerror(errno));
		return NULL;
	}
	make_it_fail(1);
	while (fnow_ns() < t->deadline && seq + 4 < MAXSEQ &&
	       !__atomic_load_n(&t->bad, __ATOMIC_RELAXED)) {
		ops++;
		if (ops % 64 == 0) {
			/* an open under faults: ENOMEM or a working file */
			fd2 = open(t->path, O_RDWR | O_CLOEXEC);
			if (fd2 >= 0) {
				close(fd);
				fd = fd2;
			} else if (errno == ENOMEM) {
				__atomic_add_fetch(&t->open_enomem, 1,
						   __ATOMIC_RELAXED);
			} else {
				traffic_bad(t, "open: %s", strerror(errno));
				break;
			}
		}
		if (ops % 3) {
			ret = write(fd, bufs[0], pmsg_make(bufs[0], pa->id, seq));
			cnt = ret > 0;
		} else {
			for (i = 0; i < 4; i++)
				vec[i] = (struct bpq_iovec){
					.base = (uintptr_t)bufs[i],
					.len = pmsg_make(bufs[i], pa->id,
							 seq + i) };
			sb.msgs = (uintptr_t)vec;
			sb.count = 4;
			ret = ioctl(fd, BPQ_IOC_SEND_BATCH, &sb);
			cnt = ret > 0 ? ret : 0;
		}
		if (ret < 0) {
			if (errno != ENOMEM) {
				traffic_bad(t, "producer %d: %s", pa->id,
					    strerror(errno));
				break;
			}
			__atomic_add_fetch(&t->enomem, 1, __ATOMIC_RELAXED);
			continue;
		}
		seq += cnt;
		__atomic_store_n(&t->accepted[pa->id], seq, __ATOMIC_RELEASE);
		__atomic_add_fetch(&t->accepted_total, cnt, __ATOMIC_RELEASE);
	}
	make_it_fail(0);
	close(fd);
	return NULL;
}

/* One received message: intact, never seen, in order for this consumer. */
static void consume(struct traffic *t, const void *buf, ssize_t n,
		    long *last)
{
	const struct pmsg *m = buf;

	if (msg_check(buf, n) < 0 || n < (ssize_t)sizeof(*m) ||
	    m->prod >= NPROD || m->seq >= MAXSEQ) {
		traffic_bad(t, "corrupt message of %zd bytes", n);
		return;
	}
	if ((long)m->seq <= last[m->prod]) {
		traffic_bad(t, "producer %u: seq %u after %ld", m->prod,
			    m->seq, last[m->prod]);
		return;
	}
	last[m->prod] = m->seq;
	if (__atomic_add_fetch(&t->got[m->prod][m->seq], 1, __ATOMIC_RELAXED) != 1)
		traffic_bad(t, "producer %u: seq %u received twice", m->prod,
			    m->seq);
	__atomic_add_fetch(&t->received, 1, __ATOMIC_RELEASE);
}

static bool traffic_done(struct traffic *t)
{
	return __atomic_load_n(&t->bad, __ATOMIC_RELAXED) ||
	       fnow_ns() > t->hard_deadline ||
	       (!__atomic_load_n(&t->producing, __ATOMIC_ACQUIRE) &&
		__atomic_load_n(&t->received, __ATOMIC_ACQUIRE) ==
		__atomic_load_n(&t->accepted_total, __ATOMIC_ACQUIRE));
}

static void *slab_consumer(void *arg)
{
	struct traffic *t = arg;
	static __thread unsigned char buf[65536];
	struct bpq_msg_info infos[8];
	long last[NPROD], ops = 0;
	ssize_t n;
	int fd, nfd, i;

	for (i = 0; i < NPROD; i++)
		last[i] = -1;
	fd = open(t->path, O_RDWR | O_CLOEXEC);
	nfd = open(t->path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0 || nfd < 0) {
		traffic_bad(t, "consumer open: %s", strerror(errno));
		return NULL;
	}
	make_it_fail(1);
	while (!traffic_done(t)) {
		switch (ops++ % 3) {
		case 0:
			n = bpq_recv(fd, buf, sizeof(buf), BPQ_IO_TIMEOUT, 50,
				     NULL);
			if (n >= 0)
				consume(t, buf, n, last);
			break;
		case 1: {
			struct bpq_recv_batch rb = {
				.size = sizeof(rb), .flags = BPQ_IO_TIMEOUT,
				.buf = (uintptr_t)buf, .buf_len = sizeof(buf),
				.max_records = 8, .infos = (uintptr_t)infos,
				.timeout_ms = 50,
			};

			n = bpq_ioctl(fd, BPQ_IOC_RECV_BATCH, &rb);
			for (i = 0; i < n; i++)
				consume(t, buf + infos[i].offset,
					infos[i].len, last);
			break;
		}
		default: {
			struct pollfd p = { .fd = nfd, .events = POLLIN };

			if (poll(&p, 1, 50) == 1) {
				/* another consumer may take it first */
				n = bpq_read(nfd, buf, sizeof(buf));
				if (n >= 0)
					consume(t, buf, n, last);
				else if (n != -EAGAIN && n != -ENOMEM)
					traffic_bad(t, "read: %s",
						    strerror(-n));
			}
			n = 0;
			break;
		}
		}
		if (n < 0 && n != -ETIMEDOUT && n != -ENOMEM)
			traffic_bad(t, "consumer: %s", strerror(-n));
	}
	make_it_fail(0);
	close(fd);
	close(nfd);
	return NULL;
}

FIXTURE(traffic) {
	int cfd;
	int idx;
	char path[64];
	struct traffic *t;
};

FIXTURE_SETUP(traffic)
{
	char name[BPQ_NAME_MAX];

	self->cfd = self->idx = -1;
	if (!selected(_metadata->name))
		SKIP(return, "BPQ_FAULTS_ONLY");
	if (!fault_injection_available())
		SKIP(return, "no " FAIL_NTH);
	self->cfd = bpq_control_open();
	if (self->cfd < 0)
		SKIP(return, "%s: %s", BPQ_CONTROL_PATH, strerror(errno));
	snprintf(name, sizeof(name), "flt-traffic-%d", getpid());
	self->idx = bpq_create(self->cfd, name);
	ASSERT_LE(0, self->idx);
	ASSERT_TRUE(bpq_wait_node(self->idx, true, 3000));
	snprintf(self->path, sizeof(self->path), "/dev/bpq%d", self->idx);
	self->t = mmap(NULL, sizeof(*self->t), PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, self->t);
	self->t->got = mmap(NULL, NPROD * MAXSEQ, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	ASSERT_NE(MAP_FAILED, self->t->got);
	self->t->path = self->path;
	/* page faults under failslab would only add noise: no faults later */
	mlockall(MCL_CURRENT | MCL_FUTURE);
	fault_quiet();
}

FIXTURE_TEARDOWN(traffic)
{
	fault_restore();
	munlockall();
	if (self->cfd >= 0 && self->idx >= 0)
		bpq_destroy(self->cfd, self->idx);
	if (self->cfd >= 0)
		close(self->cfd);
}

/* Every message accepted was received once, and the counters agree. */
static void traffic_check(struct __test_metadata *_metadata,
			  struct traffic *t, int fd)
{
	struct bpq_stats st;
	long p, s, missing = 0;

	ASSERT_FALSE(t->bad) TH_LOG("%s", t->why);
	for (p = 0; p < NPROD; p++)
		for (s = 0; s < MAXSEQ; s++)
			if (t->got[p][s] != (s < t->accepted[p]))
				missing++;
	EXPECT_EQ(0, missing)
		TH_LOG("%ld messages lost or received though refused", missing);
	EXPECT_EQ(t->accepted_total, t->received);
	ASSERT_EQ(0, bpq_get_stats(fd, &st));
	EXPECT_TRUE(bpq_stats_balanced(&st));
	EXPECT_EQ((__u64)t->accepted_total, st.enqueued_msgs);
	EXPECT_EQ((__u64)t->received, st.dequeued_msgs);
	EXPECT_EQ(0ULL, st.depth_msgs);
}

TEST_F_TIMEOUT(traffic, failslab, 180)
{
	struct prod_arg pa[NPROD];
	pthread_t prod[NPROD], cons[NCONS];
	struct traffic *t = self->t;
	char range[64];
	long times, base = 0, size = 0;
	int i, fd;

	if (_metadata->skip)
		return;
	if (!fault_dir("failslab"))
		SKIP(return, "no " DEBUGFS "/failslab");
	fd = open(self->path, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, bpq_configure(fd, BPQ_STRATEGY_BLOCK, 64));

	/* only allocations under the module's text, where the kernel can */
	if (fault_get("failslab", "require-start") >= 0) {
		FILE *f = fopen("/proc/modules", "r");
		char line[256];

		while (f && fgets(line, sizeof(line), f))
			if (sscanf(line, "bpq %ld %*d %*s %*s %lx", &size,
				   &base) == 2)
				break;
		if (f)
			fclose(f);
		ASSERT_NE(0, base) TH_LOG("no address of bpq in /proc/modules");
		snprintf(range, sizeof(range), "%lu", base);
		ASSERT_EQ(0, fault_set("failslab", "require-start", range));
		snprintf(range, sizeof(range), "%lu", base + size);
		ASSERT_EQ(0, fault_set("failslab", "require-end", range));
		ASSERT_EQ(0, fault_set("failslab", "stacktrace-depth", "32"));
		ksft_print_msg("failslab limited to bpq's text %#lx+%#lx\n",
			       base, size);
	} else {
		ksft_print_msg("no failslab/require-start (FAULT_INJECTION_STACKTRACE_FILTER is !X86_64 in 6.1): task filter only\n");
	}
	ASSERT_EQ(0, fault_set("failslab", "ignore-gfp-wait", "N"));
	ASSERT_EQ(0, fault_set("failslab", "task-filter", "Y"));
	ASSERT_EQ(0, fault_set("failslab", "interval", "1"));
	ASSERT_EQ(0, fault_set("failslab", "space", "0"));
	snprintf(range, sizeof(range), "%ld", BIG_TIMES);
	ASSERT_EQ(0, fault_set("failslab", "times", range));
	ASSERT_EQ(0, fault_set("failslab", "probability", "10"));

	t->deadline = now_ns() + (int64_t)stress_ms() * 1000000;
	t->hard_deadline = t->deadline + 60000000000LL;
	t->producing = 1;
	for (i = 0; i < NCONS; i++)
		ASSERT_EQ(0, pthread_create(&cons[i], NULL, slab_consumer, t));
	for (i = 0; i < NPROD; i++) {
		pa[i] = (struct prod_arg){ .t = t, .id = i };
		ASSERT_EQ(0, pthread_create(&prod[i], NULL, slab_producer,
					    &pa[i]));
	}
	for (i = 0; i < NPROD; i++)
		pthread_join(prod[i], NULL);
	__atomic_store_n(&t->producing, 0, __ATOMIC_RELEASE);
	for (i = 0; i < NCONS; i++)
		pthread_join(cons[i], NULL);
	times = fault_get("failslab", "times");
	fault_set("failslab", "probability", "0");

	FIG_ADD(slab_faults, BIG_TIMES - times);
	FIG_ADD(slab_enomem, t->enomem);
	FIG_ADD(slab_open_enomem, t->open_enomem);
	FIG_ADD(slab_moved, t->received);
	ksft_print_msg("failslab: %ld faults, %ld writes and %ld opens got ENOMEM, %ld of %ld messages received\n",
		       BIG_TIMES - times, t->enomem, t->open_enomem,
		       t->received, t->accepted_total);
	traffic_check(_metadata, t, fd);
	/*
	 * A write allocates no slab memory (messages live in the queue's
	 * log of pages): the opens' ENOMEM show that faults reached bpq.
	 */
	EXPECT_LT(0, t->enomem + t->open_enomem)
		TH_LOG("no call failed: were faults injected?");
	close(fd);
}

/* ---- fail_usercopy: one writer, one reader, both faulted ---- */

#define UC_MSGS		3000

static void *uc_writer(void *arg)
{
	struct traffic *t = arg;
	static __thread unsigned char buf[2048];
	long seq = 0;
	ssize_t ret;
	int fd;

	fd = open(t->path, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		traffic_bad(t, "writer open: %s", strerror(errno));
		return NULL;
	}
	make_it_fail(1);
	while (seq < UC_MSGS && !__atomic_load_n(&t->bad, __ATOMIC_RELAXED) &&
	       fnow_ns() < t->hard_deadline) {
		size_t len = msg_make(buf, seq, 16 + (seq * 37) % 1000);

		ret = write(fd, buf, len);
		if (ret == (ssize_t)len) {
			seq++;
			__atomic_store_n(&t->accepted_total, seq,
					 __ATOMIC_RELEASE);
		} else if (ret < 0 && errno == EFAULT) {
			__atomic_add_fetch(&t->write_efault, 1,
					   __ATOMIC_RELAXED);
		} else if (ret < 0 && errno == ETIMEDOUT) {
			continue;
		} else {
			traffic_bad(t, "write: %zd %s", ret, strerror(errno));
		}
	}
	make_it_fail(0);
	close(fd);
	return NULL;
}

TEST_F_TIMEOUT(traffic, fail_usercopy, 180)
{
	static unsigned char buf[65536];
	struct bpq_msg_info infos[4];
	struct traffic *t = self->t;
	struct bpq_config cfg;
	struct bpq_stats st;
	pthread_t writer;
	char val[32];
	long times, expect = 0, ops = 0;
	ssize_t n;
	int fd, i;

	if (_metadata->skip)
		return;
	if (!fault_dir("fail_usercopy"))
		SKIP(return, "no " DEBUGFS "/fail_usercopy");
	fd = open(self->path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	ASSERT_LE(0, fd);
	bpq_default_config(&cfg);
	cfg.capacity_msgs = 64;
	cfg.write_timeout_ms = 100;	/* a stopped reader cannot hang it */
	ASSERT_EQ(0, bpq_set_config(fd, &cfg));

	ASSERT_EQ(0, fault_set("fail_usercopy", "task-filter", "Y"));
	ASSERT_EQ(0, fault_set("fail_usercopy", "interval", "1"));
	ASSERT_EQ(0, fault_set("fail_usercopy", "space", "0"));
	snprintf(val, sizeof(val), "%ld", BIG_TIMES);
	ASSERT_EQ(0, fault_set("fail_usercopy", "times", val));
	ASSERT_EQ(0, fault_set("fail_usercopy", "probability", "10"));

	t->hard_deadline = now_ns() + 100000000000LL;
	ASSERT_EQ(0, pthread_create(&writer, NULL, uc_writer, t));

	/* the reader: this thread, faulted too */
	ASSERT_EQ(0, make_it_fail(1));
	while (expect < UC_MSGS && !t->bad && fnow_ns() < t->hard_deadline) {
		int op = ops++ % 3;

		if (op == 0) {
			n = bpq_read(fd, buf, sizeof(buf));
		} else if (op == 1) {
			n = bpq_recv(fd, buf, sizeof(buf), 0, 0, NULL);
		} else {
			struct bpq_recv_batch rb = {
				.size = sizeof(rb), .buf = (uintptr_t)buf,
				.buf_len = sizeof(buf), .max_records = 4,
				.infos = (uintptr_t)infos,
			};

			n = bpq_ioctl(fd, BPQ_IOC_RECV_BATCH, &rb);
		}
		if (n == -EAGAIN) {
			t->enomem++;	/* here: EAGAINs seen */
			usleep(200);
			continue;
		}
		if (n == -EFAULT) {
			t->read_efault++;
		} else if (n < 0) {
			traffic_bad(t, "reader op %d: %s", op, strerror(-n));
			break;
		} else if (op < 2) {
			if (msg_check(buf, n) != expect) {
				traffic_bad(t, "op %d: message %ld expected, got %ld",
					    op, expect, msg_check(buf, n));
				break;
			}
			expect++;
		} else {
			for (i = 0; i < n; i++, expect++)
				if (msg_check(buf + infos[i].offset,
					      infos[i].len) != expect) {
					traffic_bad(t, "batch: message %ld expected",
						    expect);
					break;
				}
		}
		/* nothing consumed but what was received (stats may EFAULT) */
		while ((n = bpq_get_stats(fd, &st)) == -EFAULT)
			;
		if (n || (long)st.dequeued_msgs != expect) {
			traffic_bad(t, "dequeued %llu, received %ld",
				    st.dequeued_msgs, expect);
			break;
		}
	}
	make_it_fail(0);
	if (expect < UC_MSGS) {
		/* stuck? one read with no fault, and the state */
		n = bpq_read(fd, buf, sizeof(buf));
		bpq_get_stats(fd, &st);
		ksft_print_msg("fail_usercopy: stopped at %ld after %ld EAGAIN; an unfaulted read now gives %zd (id %ld), depth %llu, dequeued %llu\n",
			       expect, t->enomem, n, n > 0 ? msg_check(buf, n) : -1L,
			       st.depth_msgs, st.dequeued_msgs);
	}
	pthread_join(writer, NULL);
	times = fault_get("fail_usercopy", "times");
	fault_set("fail_usercopy", "probability", "0");
	t->received = expect;

	FIG_ADD(uc_faults, BIG_TIMES - times);
	FIG_ADD(uc_read_efault, t->read_efault);
	FIG_ADD(uc_write_efault, t->write_efault);
	FIG_ADD(uc_moved, expect);
	if (t->bad)
		ksft_print_msg("fail_usercopy: %s\n", t->why);
	ksft_print_msg("fail_usercopy: %ld faults, %ld reads and %ld writes got EFAULT, %ld of %d messages received in order\n",
		       BIG_TIMES - times, t->read_efault, t->write_efault,
		       expect, UC_MSGS);
	ASSERT_FALSE(t->bad) TH_LOG("%s", t->why);
	EXPECT_EQ(UC_MSGS, expect);
	EXPECT_EQ(UC_MSGS, t->accepted_total);
	ASSERT_EQ(0, bpq_get_stats(fd, &st));
	EXPECT_TRUE(bpq_stats_balanced(&st));
	EXPECT_EQ((__u64)UC_MSGS, st.enqueued_msgs);
	EXPECT_EQ((__u64)UC_MSGS, st.dequeued_msgs);
	EXPECT_EQ(0ULL, st.depth_msgs);
	EXPECT_LT(0, t->read_efault) TH_LOG("no read faulted");
	close(fd);
}

/* ===================================================================== */
/* finit_module walked with fail-nth                                      */
/* ===================================================================== */

/* MODULE_ARGS of the runner's /etc/bpq-vm.conf, if any. */
static void module_args(char *args, size_t len)
{
	FILE *f = fopen("/etc/bpq-vm.conf", "r");
	char line[512], *p, *e;

	args[0] = '\0';
	while (f && fgets(line, sizeof(line), f)) {
		if (strncmp(line, "MODULE_ARGS=", 12))
			continue;
		p = line + 12;
		if (*p == '"')
			p++;
		e = p + strcspn(p, "\"\n");
		*e = '\0';
		if (strlen(p) < len)
			memcpy(args, p, strlen(p) + 1);
	}
	if (f)
		fclose(f);
}

static bool module_loaded(void)
{
	return access("/sys/module/bpq", F_OK) == 0;
}

static int unload(void)
{
	int i;

	for (i = 0; i < 500; i++) {
		if (!syscall(SYS_delete_module, "bpq", O_NONBLOCK))
			return 0;
		if (errno != EAGAIN && errno != EBUSY)
			return -errno;
		sleep_ms(10);
	}
	return -EBUSY;
}

FIXTURE(module) {
	int unused;
};

FIXTURE_SETUP(module)
{
}

FIXTURE_TEARDOWN(module)
{
}

struct insmod_call {
	int mfd;
	const char *args;
};

static long insmod_call(void *arg)
{
	struct insmod_call *a = arg;

	return syscall(SYS_finit_module, a->mfd, a->args, 0);
}

TEST_F_TIMEOUT(module, insmod_nth, 180)
{
	const char *path = getenv("BPQ_MODULE") ?: "/bpq.ko";
	char args[256];
	struct insmod_call a = { .args = args };
	struct nth_call c = { .fn = insmod_call, .arg = &a };
	unsigned int n;
	bool injected = true;
	long ret;
	int mfd, err, qfd, failed = 0;
	void *stack;
	int64_t budget = now_ns() + 90000000000LL;

	if (!selected(_metadata->name))
		SKIP(return, "BPQ_FAULTS_ONLY");
	if (!getenv("BPQ_FAULTS_INSMOD") || !*getenv("BPQ_FAULTS_INSMOD"))
		SKIP(return, "BPQ_FAULTS_INSMOD unset: the module loader's own vmalloc failures print warn_alloc stack dumps, which the runner's log gate takes for splats");
	if (!fault_injection_available())
		SKIP(return, "no " FAIL_NTH);
	if (!fault_dir("failslab"))
		SKIP(return, "no " DEBUGFS "/failslab");
	if (access(path, R_OK))
		SKIP(return, "no %s", path);
	for (n = 0; n < 300 && module_refcnt() > 0; n++)
		sleep_ms(10);
	if (!module_loaded() || module_refcnt() != 0)
		SKIP(return, "bpq not loaded, or in use (refcnt %ld)",
		     module_refcnt());
	module_args(args, sizeof(args));
	ASSERT_EQ(0, unload());

	stack = nth_stack_alloc();
	ASSERT_NE(NULL, stack);
	ASSERT_EQ(0, mlockall(MCL_CURRENT | MCL_FUTURE));
	fault_quiet();
	ASSERT_EQ(0, fault_set("failslab", "ignore-gfp-wait", "N"));
	for (n = 1; n <= MAX_STEPS && injected; n++) {
		mfd = open(path, O_RDONLY | O_CLOEXEC);
		ASSERT_LE(0, mfd);
		a.mfd = mfd;
		c.n = n;
		ASSERT_EQ(0, nth_run(&c, stack));
		ret = c.ret;
		err = c.err;
		injected = c.injected;
		close(mfd);
		if (ret) {
			failed++;
			EXPECT_TRUE(injected)
				TH_LOG("step %u: %s with no fault", n,
				       strerror(err));
			EXPECT_TRUE(clean_error(err) || err == ENOSPC)
				TH_LOG("step %u: %s", n, strerror(err));
			EXPECT_FALSE(module_loaded());
			EXPECT_NE(0, access(BPQ_SYSFS_CLASS, F_OK))
				TH_LOG("step %u: class left behind", n);
			EXPECT_NE(0, access("/sys/class/misc/bpq-control",
					    F_OK));
		} else {
			/* loaded despite the fault: it must work */
			EXPECT_TRUE(bpq_wait_node(0, true, 3000));
			qfd = bpq_open(0, O_RDWR | O_NONBLOCK);
			EXPECT_LE(0, qfd);
			if (qfd >= 0) {
				EXPECT_EQ(2, bpq_write(qfd, "hi", 2));
				EXPECT_EQ(2, bpq_read(qfd, args + 200, 16));
				close(qfd);
			}
			if (injected)
				ASSERT_EQ(0, unload());
		}
		if (!_metadata->passed)
			break;
		if (injected)
			FIG_ADD(injected[K_INSMOD], 1);
		if (now_ns() > budget) {
			ksft_print_msg("finit_module: time budget spent at step %u\n",
				       n);
			break;
		}
	}
	munlockall();
	munmap(stack, NTH_STACK);
	fault_restore();
	FIG_ADD(errors[K_INSMOD], failed);
	ksft_print_msg("finit_module: %u steps, %d loads failed\n", n - 1,
		       failed);
	/* leave it loaded as the runner had it */
	if (!module_loaded()) {
		mfd = open(path, O_RDONLY | O_CLOEXEC);
		ASSERT_EQ(0, syscall(SYS_finit_module, mfd, args, 0));
		close(mfd);
	}
	ASSERT_TRUE(bpq_wait_node(0, true, 3000));
}

/* ---- main: skip at once where there is no fault injection ---- */

static void __attribute__((constructor)) __constructor_order_last(void)
{
	if (!__constructor_order)
		__constructor_order = _CONSTRUCTOR_ORDER_BACKWARD;
}

int main(int argc, char **argv)
{
	if (!fault_injection_available() || access(BPQ_CONTROL_PATH, F_OK))
		fig = NULL;	/* no figures for a skip */
	if (!fault_injection_available()) {
		printf("TAP version 13\n1..0 # SKIP no fault injection (/proc/self/fail-nth): not a debug kernel\n");
		return KSFT_SKIP;
	}
	if (access(BPQ_CONTROL_PATH, F_OK)) {
		printf("TAP version 13\n1..0 # SKIP no %s\n", BPQ_CONTROL_PATH);
		return KSFT_SKIP;
	}
	return test_harness_run(argc, argv);
}
