// SPDX-License-Identifier: GPL-2.0
/*
 * Resources and security: node permissions, privileged operations, the
 * per-user byte limit, memory-cgroup charging, huge capacities, fdinfo and
 * sysfs contents, and a user copy stalled by userfaultfd.
 *
 * Every queue a test creates is destroyed and every parameter it changes is
 * restored in the teardown. Code that must run with other credentials runs
 * in a forked child (run_as()); it reports failures on stderr and through
 * its exit status.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/userfaultfd.h>
#include <sys/klog.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>

#include "bpq_test.h"
/* kselftest_harness.h of 6.1 has an unused parameter: keep -Wextra clean. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"
#include "kselftest_harness.h"
#pragma GCC diagnostic pop

#define NOBODY		65534
#define NOBODY2		65533
#define PARAM_USER_MAX	"user_max_bytes"
#define CGROUP_ROOT	"/sys/fs/cgroup"

/* Exit status of a child that found something it cannot test. */
#define CHILD_SKIP	77

/* ---- helpers ---- */

/* In a child: report a failed check and return 1 from the child function. */
#define CHILD_CHECK(cond) do {						\
	if (!(cond)) {							\
		fprintf(stderr, "# child %d: %s:%d: %s (errno: %s)\n",	\
			getpid(), __func__, __LINE__, #cond,		\
			strerror(errno));				\
		return 1;						\
	}								\
} while (0)

#define CHILD_CHECK_EQ(expect, got) do {				\
	long long _e = (expect), _g = (got);				\
	if (_e != _g) {							\
		fprintf(stderr, "# child %d: %s:%d: %s == %s: "	\
			"expected %lld, got %lld\n", getpid(), __func__,\
			__LINE__, #expect, #got, _e, _g);		\
		return 1;						\
	}								\
} while (0)

typedef int (*child_fn)(void *arg);

/*
 * Run @fn(@arg) in a child. With @uid non-zero the child first drops every
 * supplementary group and takes @uid/@gid as real, effective and saved IDs,
 * which clears its capability sets. Returns the child's exit status, or
 * 1000 + the signal that killed it.
 */
static int run_as(uid_t uid, gid_t gid, child_fn fn, void *arg)
{
	int status;
	pid_t pid;

	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		if (uid || gid) {
			if (setgroups(0, NULL) || setresgid(gid, gid, gid) ||
			    setresuid(uid, uid, uid)) {
				perror("# drop privileges");
				_exit(100);
			}
		}
		_exit(fn(arg));
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -errno;
	if (WIFSIGNALED(status))
		return 1000 + WTERMSIG(status);
	return WEXITSTATUS(status);
}

/* The effective capability set of the calling task, from /proc. */
static unsigned long long cap_effective(void)
{
	char line[256];
	unsigned long long v = ~0ULL;
	FILE *f = fopen("/proc/self/status", "re");

	if (!f)
		return v;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "CapEff: %llx", &v) == 1)
			break;
	fclose(f);
	return v;
}

static long long read_ll(const char *path)
{
	char buf[64];

	if (bpq_read_file(path, buf, sizeof(buf)) <= 0)
		return -1;
	return strtoll(buf, NULL, 0);
}

/* "key value" line of a flat-keyed file such as memory.events; -1: none. */
static long long read_key(const char *path, const char *key)
{
	char buf[4096], *p;
	size_t klen = strlen(key);

	if (bpq_read_file(path, buf, sizeof(buf)) < 0)
		return -1;
	for (p = buf; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		if (!strncmp(p, key, klen) && p[klen] == ' ')
			return strtoll(p + klen + 1, NULL, 10);
	return -1;
}

/* The value of "key:\tvalue" in fdinfo text; NULL if absent. */
static const char *fdinfo_value(const char *text, const char *key,
				char *out, size_t len)
{
	size_t klen = strlen(key);
	const char *p = text;

	while (p && *p) {
		if (!strncmp(p, key, klen) && p[klen] == ':') {
			const char *v = p + klen + 1, *e;

			while (*v == ' ' || *v == '\t')
				v++;
			e = strchr(v, '\n');
			if (!e)
				e = v + strlen(v);
			snprintf(out, len, "%.*s", (int)(e - v), v);
			return out;
		}
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return NULL;
}

/*
 * Does @text contain what looks like a kernel address: a run of exactly 16
 * hex digits with at least one letter (raw or hashed %p), or one starting
 * with ffff? Decimal numbers, even 20-digit ones, never match.
 */
static const char *find_pointer(const char *text)
{
	const char *p = text, *start;
	bool letter;
	size_t n;

	while (*p) {
		if (!isxdigit((unsigned char)*p)) {
			p++;
			continue;
		}
		start = p;
		letter = false;
		while (isxdigit((unsigned char)*p)) {
			if (!isdigit((unsigned char)*p))
				letter = true;
			p++;
		}
		n = p - start;
		if ((n == 16 && letter) ||
		    (n >= 12 && !strncasecmp(start, "ffff", 4) && letter))
			return start;
	}
	return NULL;
}

/* ---- fixture: one or two queues of our own, parameters restored ---- */

FIXTURE(sec) {
	int cfd;
	int idx[2];			/* created queues, -1: none */
	char saved_max[64];		/* user_max_bytes as found */
	bool max_changed;
};

FIXTURE_SETUP(sec)
{
	char name[BPQ_NAME_MAX];
	int i;

	self->idx[0] = self->idx[1] = -1;
	self->cfd = bpq_control_open();
	ASSERT_LE(0, self->cfd) TH_LOG("%m - open " BPQ_CONTROL_PATH);
	ASSERT_LT(0, bpq_param_read(PARAM_USER_MAX, self->saved_max,
				    sizeof(self->saved_max)));
	for (i = 0; i < 2; i++) {
		snprintf(name, sizeof(name), "sec-%d-%c", getpid(), 'a' + i);
		self->idx[i] = bpq_create(self->cfd, name);
		ASSERT_LE(0, self->idx[i]) TH_LOG("create %s: %s", name,
						  strerror(-self->idx[i]));
		ASSERT_TRUE(bpq_wait_node(self->idx[i], true, 2000));
	}
}

FIXTURE_TEARDOWN(sec)
{
	int i;

	if (self->max_changed)
		EXPECT_EQ(0, bpq_param_write(PARAM_USER_MAX, self->saved_max));
	for (i = 0; i < 2; i++)
		if (self->idx[i] >= 0)
			EXPECT_EQ(0, bpq_destroy(self->cfd, self->idx[i]));
	close(self->cfd);
}

static int set_user_max(FIXTURE_DATA(sec) *self, unsigned long val)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%lu", val);
	self->max_changed = true;
	return bpq_param_write(PARAM_USER_MAX, buf);
}

static void node_path(char *buf, size_t len, int idx)
{
	snprintf(buf, len, "/dev/bpq%d", idx);
}

/* ---- 1. device nodes ---- */

static int open_denied_child(void *arg)
{
	const char *const *paths = arg;
	static const int modes[] = { O_RDWR, O_RDONLY, O_WRONLY };
	unsigned int i, m;
	int fd;

	CHILD_CHECK_EQ(NOBODY, geteuid());
	CHILD_CHECK_EQ(0, cap_effective());
	CHILD_CHECK_EQ(0, getgroups(0, NULL));
	for (i = 0; paths[i]; i++)
		for (m = 0; m < ARRAY_LEN(modes); m++) {
			errno = 0;
			fd = open(paths[i], modes[m] | O_CLOEXEC);
			if (fd >= 0) {
				fprintf(stderr, "# child: opened %s as uid %d\n",
					paths[i], NOBODY);
				close(fd);
				return 1;
			}
			CHILD_CHECK_EQ(EACCES, errno);
		}
	return 0;
}

TEST_F(sec, node_modes)
{
	char paths[8][64];
	const char *list[9];
	struct stat st;
	int i, n = 0;

	snprintf(paths[n++], sizeof(paths[0]), "%s", BPQ_CONTROL_PATH);
	for (i = 0; i < 4 && n < 6; i++) {
		snprintf(paths[n], sizeof(paths[0]), "/dev/bpq%d", i);
		if (!access(paths[n], F_OK))
			n++;
	}
	node_path(paths[n++], sizeof(paths[0]), self->idx[0]);
	for (i = 0; i < n; i++) {
		ASSERT_EQ(0, stat(paths[i], &st)) TH_LOG("%s: %m", paths[i]);
		EXPECT_TRUE(S_ISCHR(st.st_mode)) TH_LOG("%s", paths[i]);
		EXPECT_EQ(0660U, st.st_mode & 07777)
			TH_LOG("%s: mode %o", paths[i], st.st_mode & 07777);
		EXPECT_EQ(0U, st.st_uid) TH_LOG("%s", paths[i]);
		EXPECT_EQ(0U, st.st_gid) TH_LOG("%s", paths[i]);
		list[i] = paths[i];
	}
	list[n] = NULL;
	ASSERT_EQ(0, run_as(NOBODY, NOBODY, open_denied_child, list));
}

/* ---- 2. privileged operations ---- */

struct priv_args {
	int cfd;		/* control fd opened as root */
	int victim;		/* an existing queue, for DESTROY */
	bool open_inside;	/* also open the control device ourselves */
	int open_errno;		/* what that open must give, 0: success */
};

static int try_privileged(int cfd, int victim)
{
	char name[BPQ_NAME_MAX];

	snprintf(name, sizeof(name), "sec-%d-evil", getpid());
	CHILD_CHECK_EQ(-EPERM, bpq_create(cfd, name));
	CHILD_CHECK_EQ(-EPERM, bpq_destroy(cfd, victim));
	/* checked before the argument is even read */
	CHILD_CHECK_EQ(-EPERM, bpq_ioctl(cfd, BPQ_IOC_CREATE, NULL));
	return 0;
}

static int priv_child(void *arg)
{
	struct priv_args *a = arg;
	int fd, ret;

	ret = try_privileged(a->cfd, a->victim);
	if (ret || !a->open_inside)
		return ret;
	fd = bpq_control_open();
	if (a->open_errno) {
		CHILD_CHECK(fd < 0);
		CHILD_CHECK_EQ(a->open_errno, errno);
		return 0;
	}
	CHILD_CHECK(fd >= 0);
	ret = try_privileged(fd, a->victim);
	close(fd);
	return ret;
}

static int nocap_child(void *arg)
{
	CHILD_CHECK_EQ(0, drop_cap(CAP_SYS_ADMIN));
	CHILD_CHECK_EQ(0, getuid());
	return priv_child(arg);
}

static int write_map(const char *file, const char *map)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/self/%s", file);
	return bpq_write_file(path, map);
}

/* root (or @arg's uid) inside a new user namespace, mapped to itself */
static int userns_child(void *arg)
{
	struct priv_args *a = arg;
	char map[64];
	uid_t uid = getuid();
	gid_t gid = getgid();

	/* dropping privileges made us undumpable: /proc/self is root's */
	CHILD_CHECK_EQ(0, prctl(PR_SET_DUMPABLE, 1, 0, 0, 0));
	if (unshare(CLONE_NEWUSER)) {
		fprintf(stderr, "# unshare(CLONE_NEWUSER): %m\n");
		return CHILD_SKIP;
	}
	CHILD_CHECK_EQ(0, write_map("setgroups", "deny"));
	snprintf(map, sizeof(map), "0 %u 1\n", uid);
	CHILD_CHECK_EQ(0, write_map("uid_map", map));
	snprintf(map, sizeof(map), "0 %u 1\n", gid);
	CHILD_CHECK_EQ(0, write_map("gid_map", map));
	CHILD_CHECK_EQ(0, getuid());
	/* full capabilities, but in the new namespace only */
	CHILD_CHECK(cap_effective() & (1ULL << CAP_SYS_ADMIN));
	return priv_child(a);
}

static bool queue_exists(int idx)
{
	char path[64];

	snprintf(path, sizeof(path), BPQ_SYSFS_CLASS "/bpq%d", idx);
	return access(path, F_OK) == 0;
}

static int lowest_free(void)
{
	int i;

	for (i = 0; queue_exists(i); i++)
		;
	return i;
}

TEST_F(sec, privileged_ops)
{
	struct priv_args a = { .cfd = self->cfd, .victim = self->idx[1] };
	int free_before = lowest_free(), ret;

	/* uid 65534 with a control fd opened by root */
	ASSERT_EQ(0, run_as(NOBODY, NOBODY, priv_child, &a));
	/* uid 0 without CAP_SYS_ADMIN, on the old fd and a new one */
	a.open_inside = true;
	ASSERT_EQ(0, run_as(0, 0, nocap_child, &a));

	/* root in a user namespace mapped to root (unshare -Ur as root) */
	ret = run_as(0, 0, userns_child, &a);
	if (ret == CHILD_SKIP)
		TH_LOG("user namespaces unavailable, not tested");
	else
		ASSERT_EQ(0, ret);

	/* uid 65534 in a user namespace of its own: root there, nobody here */
	a.open_errno = EACCES;
	ret = run_as(NOBODY, NOBODY, userns_child, &a);
	if (ret == CHILD_SKIP)
		TH_LOG("unprivileged user namespaces unavailable, not tested");
	else
		ASSERT_EQ(0, ret);

	/* nothing was created or destroyed */
	ASSERT_TRUE(queue_exists(self->idx[1]));
	ASSERT_EQ(free_before, lowest_free());
}

/*
 * What a file of each side may do (bpq(4), "Who may do what"), as uid
 * 65534: moving messages needs that side, the settings, flush and reset
 * the writers' side, grant and ack the readers', each else EBADF; an
 * ioctl-only open needs both permissions on the node and may do both
 * sides' commands.
 */
static int sides_child(void *arg)
{
	struct bpq_config cfg;
	struct bpq_stats st;
	int idx = *(int *)arg, fd;
	char path[64], c = 'x';

	CHILD_CHECK_EQ(NOBODY, geteuid());
	node_path(path, sizeof(path), idx);
	/* 0644: uid 65534 may read, and so open for reading alone */
	CHILD_CHECK_EQ(-1, bpq_open(idx, O_WRONLY));
	CHILD_CHECK_EQ(EACCES, errno);
	CHILD_CHECK_EQ(-1, bpq_open(idx, O_ACCMODE));
	CHILD_CHECK_EQ(EACCES, errno);
	fd = bpq_open(idx, O_RDONLY | O_NONBLOCK);
	CHILD_CHECK_EQ(1, fd >= 0);
	CHILD_CHECK_EQ(0, bpq_get_config(fd, &cfg));
	CHILD_CHECK_EQ(0, bpq_get_stats(fd, &st));
	CHILD_CHECK_EQ(-EBADF, bpq_set_config(fd, &cfg));
	CHILD_CHECK_EQ(-EBADF, bpq_flush(fd));
	CHILD_CHECK_EQ(-EBADF, bpq_reset_stats(fd));
	CHILD_CHECK_EQ(-EBADF, bpq_shutdown(fd, BPQ_SHUTDOWN_COMPLETE, 0));
	CHILD_CHECK_EQ(-1, write(fd, &c, 1));
	CHILD_CHECK_EQ(EBADF, errno);
	CHILD_CHECK_EQ(0, bpq_ack(fd, 0, 1, 0));	/* nothing delivered */
	CHILD_CHECK_EQ(-EAGAIN, bpq_recv(fd, &c, 1, 0, 0, NULL));
	close(fd);
	if (chmod(path, 0666) == 0)
		return 2;	/* not ours to change */
	return 0;
}

static int sides_rw_child(void *arg)
{
	struct bpq_config cfg;
	int idx = *(int *)arg, fd;
	char c = 'x';

	fd = bpq_open(idx, O_WRONLY | O_NONBLOCK);
	CHILD_CHECK_EQ(1, fd >= 0);
	CHILD_CHECK_EQ(0, bpq_get_config(fd, &cfg));
	CHILD_CHECK_EQ(0, bpq_set_config(fd, &cfg));
	CHILD_CHECK_EQ(1, bpq_write(fd, &c, 1));
	CHILD_CHECK_EQ(-EBADF, bpq_recv(fd, &c, 1, 0, 0, NULL));
	CHILD_CHECK_EQ(-EBADF, bpq_ack(fd, 0, 1, 0));
	CHILD_CHECK_EQ(-EBADF, bpq_shutdown(fd, BPQ_SHUTDOWN_CANCEL, 0));
	CHILD_CHECK_EQ(-1, read(fd, &c, 1));
	CHILD_CHECK_EQ(EBADF, errno);
	close(fd);
	/* ioctl-only: both permissions, both sides' commands, no data */
	fd = bpq_open(idx, O_ACCMODE);
	CHILD_CHECK_EQ(1, fd >= 0);
	CHILD_CHECK_EQ(0, bpq_set_config(fd, &cfg));
	CHILD_CHECK_EQ(1, bpq_flush(fd));
	CHILD_CHECK_EQ(0, bpq_ack(fd, 0, 1, 0));
	CHILD_CHECK_EQ(-EBADF, bpq_recv(fd, &c, 1, 0, 0, NULL));
	CHILD_CHECK_EQ(0, bpq_shutdown(fd, BPQ_SHUTDOWN_CANCEL, 0));
	CHILD_CHECK_EQ(0, bpq_shutdown(fd, BPQ_SHUTDOWN_REOPEN, 0));
	close(fd);
	return 0;
}

TEST_F(sec, sides_as_nobody)
{
	char path[64];

	node_path(path, sizeof(path), self->idx[0]);
	ASSERT_EQ(0, chmod(path, 0644));
	ASSERT_EQ(0, run_as(NOBODY, NOBODY, sides_child, &self->idx[0]));
	ASSERT_EQ(0, chmod(path, 0666));
	ASSERT_EQ(0, run_as(NOBODY, NOBODY, sides_rw_child, &self->idx[0]));
}

struct sysfs_args {
	int idx;
};

static int sysfs_denied_child(void *arg)
{
	static const struct {
		const char *attr, *val;
	} w[] = {
		{ "strategy", "drop-oldest" }, { "capacity_msgs", "7" },
		{ "capacity_bytes", "4096" }, { "max_msg_size", "100" },
		{ "high_watermark", "50" }, { "low_watermark", "10" },
		{ "write_timeout_ms", "5" }, { "auto_credit", "1" },
		{ "target_latency_us", "5" }, { "min_rate", "5" },
		{ "max_rate", "5" }, { "adjust_interval_ms", "5" },
		{ "grant", "5" }, { "stats/reset", "1" }, { "name", "x" },
	};
	struct sysfs_args *a = arg;
	char buf[64];
	unsigned int i;

	CHILD_CHECK_EQ(0, cap_effective());
	for (i = 0; i < ARRAY_LEN(w); i++) {
		int ret = bpq_sysfs_write(a->idx, w[i].attr, w[i].val);

		if (ret != -EACCES)
			fprintf(stderr, "# child: %s: %s\n", w[i].attr,
				strerror(-ret));
		CHILD_CHECK_EQ(-EACCES, ret);
	}
	CHILD_CHECK_EQ(-EACCES, bpq_param_write(PARAM_USER_MAX, "1"));
	/* reading state is not privileged */
	CHILD_CHECK_EQ(0, bpq_sysfs_read(a->idx, "depth_msgs", buf,
					 sizeof(buf)));
	return 0;
}

TEST_F(sec, sysfs_writes_need_root)
{
	struct sysfs_args a = { .idx = self->idx[0] };
	struct bpq_config before, after;
	char max_before[64], max_after[64];
	int fd = bpq_open(self->idx[0], O_RDWR);

	ASSERT_LE(0, fd);
	ASSERT_EQ(0, bpq_get_config(fd, &before));
	ASSERT_LT(0, bpq_param_read(PARAM_USER_MAX, max_before,
				    sizeof(max_before)));
	ASSERT_EQ(0, run_as(NOBODY, NOBODY, sysfs_denied_child, &a));
	ASSERT_EQ(0, bpq_get_config(fd, &after));
	ASSERT_EQ(0, memcmp(&before, &after, sizeof(before)));
	ASSERT_EQ(0ULL, bpq_sysfs_u64(self->idx[0], "credits_available"));
	ASSERT_LT(0, bpq_param_read(PARAM_USER_MAX, max_after,
				    sizeof(max_after)));
	ASSERT_STREQ(max_before, max_after);
	close(fd);
}

/* ---- 3. the per-user limit ---- */

/*
 * A queue's log stores a message in a record of 16 bytes more, and charges
 * its writer by the page: messages of 4080 bytes take a page each.
 */
#define LIM_MSG		4080
#define LIM_MAX		(16 * 4096)

struct fill_args {
	int fd;			/* opened before the fork */
	int idx;		/* or open /dev/bpqN here, if fd < 0 */
	int expect;		/* messages that must be accepted */
	int tag;		/* pattern number of the first message */
	bool check_more;	/* also try writev and a batch at the limit */
	bool no_limit;		/* no ENOMEM expected after the last one */
};

/* Write LIM_MSG-byte messages until the limit: exactly expect, then ENOMEM. */
static int fill_child(void *arg)
{
	struct fill_args *a = arg;
	unsigned char buf[LIM_MSG];
	char path[64];
	int fd = a->fd, i;
	ssize_t ret;

	if (fd < 0) {
		node_path(path, sizeof(path), a->idx);
		fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
		CHILD_CHECK(fd >= 0);
	}
	for (i = 0; i < a->expect; i++) {
		fill_pattern(buf, sizeof(buf), a->tag + i);
		ret = bpq_write(fd, buf, sizeof(buf));
		if (ret != LIM_MSG)
			fprintf(stderr, "# child: message %d of %d: %s\n", i,
				a->expect, strerror(-ret));
		CHILD_CHECK_EQ(LIM_MSG, ret);
	}
	if (!a->no_limit)
		CHILD_CHECK_EQ(-ENOMEM, bpq_write(fd, buf, sizeof(buf)));
	if (a->check_more) {
		struct iovec iov[2] = {
			{ .iov_base = buf, .iov_len = 1 },
			{ .iov_base = buf + 1, .iov_len = 1 },
		};
		struct bpq_iovec v = { .base = (uintptr_t)buf, .len = 1 };
		struct bpq_send_batch sb = {
			.size = sizeof(sb), .msgs = (uintptr_t)&v, .count = 1,
		};

		CHILD_CHECK_EQ(-ENOMEM, bpq_write(fd, buf, 1));
		CHILD_CHECK(writev(fd, iov, 2) < 0);
		CHILD_CHECK_EQ(ENOMEM, errno);
		CHILD_CHECK_EQ(-ENOMEM, bpq_ioctl(fd, BPQ_IOC_SEND_BATCH, &sb));
	}
	if (a->fd < 0)
		close(fd);
	return 0;
}

static void expect_depth(struct __test_metadata *_metadata, int fd,
			 __u64 msgs, __u64 bytes)
{
	struct bpq_stats st;

	ASSERT_EQ(0, bpq_get_stats(fd, &st));
	EXPECT_EQ(msgs, st.depth_msgs);
	EXPECT_EQ(bytes, st.depth_bytes);
	EXPECT_TRUE(bpq_stats_balanced(&st));
}

/* Read @n messages and check their patterns, from @tag on. */
static void drain_check(struct __test_metadata *_metadata, int fd, int n,
			int tag)
{
	unsigned char buf[LIM_MSG];
	int i;

	for (i = 0; i < n; i++) {
		ASSERT_EQ(LIM_MSG, bpq_read(fd, buf, sizeof(buf)));
		ASSERT_TRUE(check_pattern(buf, sizeof(buf), tag + i))
			TH_LOG("message %d corrupted", i);
	}
}

/*
 * Users who opened their own files: uid 65534 fills to the limit and gets
 * ENOMEM with nothing half-queued, uid 65533 is unaffected, the limit
 * covers all queues together, and reads or a flush free it up.
 */
TEST_F(sec, user_limit)
{
	struct fill_args a = { .fd = -1, .idx = self->idx[0] };
	char path[64];
	int fd, fd1;

	ASSERT_EQ(0, set_user_max(self, LIM_MAX));
	/* our own queues: let both users open them */
	node_path(path, sizeof(path), self->idx[0]);
	ASSERT_EQ(0, chmod(path, 0666));
	node_path(path, sizeof(path), self->idx[1]);
	ASSERT_EQ(0, chmod(path, 0666));
	fd = bpq_open(self->idx[0], O_RDWR | O_NONBLOCK);
	ASSERT_LE(0, fd);
	fd1 = bpq_open(self->idx[1], O_RDWR | O_NONBLOCK);
	ASSERT_LE(0, fd1);

	/* 65534: 16 messages of 4 KiB fit, the 17th gets ENOMEM */
	a.expect = 16;
	a.check_more = true;
	ASSERT_EQ(0, run_as(NOBODY, NOBODY, fill_child, &a));
	expect_depth(_metadata, fd, 16, 16 * LIM_MSG);

	/* 65533 has a budget of its own, in the same queue */
	a.tag = 100;
	a.check_more = false;
	ASSERT_EQ(0, run_as(NOBODY2, NOBODY2, fill_child, &a));
	expect_depth(_metadata, fd, 32, 32 * LIM_MSG);

	/* one read frees room for exactly one more message of 65534 */
	drain_check(_metadata, fd, 1, 0);
	a.tag = 200;
	a.expect = 1;
	ASSERT_EQ(0, run_as(NOBODY, NOBODY, fill_child, &a));
	expect_depth(_metadata, fd, 32, 32 * LIM_MSG);
	drain_check(_metadata, fd, 15, 1);
	drain_check(_metadata, fd, 16, 100);
	drain_check(_metadata, fd, 1, 200);
	expect_depth(_metadata, fd, 0, 0);

	/* the limit counts all queues of a user together */
	a.tag = 300;
	a.expect = 10;
	a.no_limit = true;
	ASSERT_EQ(0, run_as(NOBODY, NOBODY, fill_child, &a));
	a.idx = self->idx[1];
	a.tag = 400;
	a.expect = 6;
	a.no_limit = false;
	ASSERT_EQ(0, run_as(NOBODY, NOBODY, fill_child, &a));
	expect_depth(_metadata, fd1, 6, 6 * LIM_MSG);

	/* a flush frees it up */
	ASSERT_EQ(10, bpq_flush(fd));
	ASSERT_EQ(6, bpq_flush(fd1));
	a.idx = self->idx[0];
	a.tag = 500;
	a.expect = 16;
	ASSERT_EQ(0, run_as(NOBODY, NOBODY, fill_child, &a));
	drain_check(_metadata, fd, 16, 500);

	/* 0: no limit */
	ASSERT_EQ(0, set_user_max(self, 0));
	a.tag = 600;
	a.expect = 40;
	a.no_limit = true;
	ASSERT_EQ(0, run_as(NOBODY, NOBODY, fill_child, &a));
	drain_check(_metadata, fd, 40, 600);
	close(fd1);
	close(fd);
}

static int nores_fill_child(void *arg)
{
	CHILD_CHECK_EQ(0, drop_cap(CAP_SYS_RESOURCE));
	return fill_child(arg);
}

/*
 * A file opened by root and used after dropping privileges is limited too;
 * root with CAP_SYS_RESOURCE may go past the limit, root without may not.
 */
TEST_F(sec, user_limit_capability)
{
	struct fill_args a = { .idx = self->idx[0], .expect = 16,
			       .check_more = true };
	unsigned char buf[LIM_MSG] = { 0 };
	int fd, i;

	ASSERT_EQ(0, set_user_max(self, LIM_MAX));
	fd = bpq_open(self->idx[0], O_RDWR | O_NONBLOCK);
	ASSERT_LE(0, fd);
	a.fd = fd;

	ASSERT_EQ(0, run_as(NOBODY, NOBODY, fill_child, &a));
	expect_depth(_metadata, fd, 16, 16 * LIM_MSG);
	ASSERT_EQ(16, bpq_flush(fd));

	ASSERT_EQ(0, run_as(0, 0, nores_fill_child, &a));
	expect_depth(_metadata, fd, 16, 16 * LIM_MSG);

	/* CAP_SYS_RESOURCE: past the limit */
	for (i = 0; i < 24; i++)
		ASSERT_EQ(LIM_MSG, bpq_write(fd, buf, sizeof(buf)));
	expect_depth(_metadata, fd, 40, 40 * LIM_MSG);
	ASSERT_EQ(40, bpq_flush(fd));
	close(fd);
}

/*
 * bpq(4): a message is charged to the user who writes it, whoever opened
 * the file. A file opened by root and handed to two unprivileged users
 * (as a supervisor does): each writer is bounded by its own budget, so
 * the second one is not refused because the first one filled up.
 */
TEST_F(sec, user_limit_follows_writer)
{
	struct fill_args a = { .idx = self->idx[0], .expect = 16 };
	int fd;

	ASSERT_EQ(0, set_user_max(self, LIM_MAX));
	fd = bpq_open(self->idx[0], O_RDWR | O_NONBLOCK);
	ASSERT_LE(0, fd);
	a.fd = fd;
	ASSERT_EQ(0, run_as(NOBODY, NOBODY, fill_child, &a));
	a.tag = 100;
	EXPECT_EQ(0, run_as(NOBODY2, NOBODY2, fill_child, &a))
		TH_LOG("uid %d was charged for what uid %d queued", NOBODY2,
		       NOBODY);
	bpq_flush(fd);
	close(fd);
}

/*
 * Small messages are charged by the pages of the log that stores them
 * (bpq(4)): a user writing 64-byte messages reaches ENOMEM, gets every
 * byte of its charge back once they are read and the queue is closed,
 * and then fits exactly as many again.
 */
#define SMALL_MSG	64
#define SMALL_MAX_MSGS	(LIM_MAX / SMALL_MSG)

struct small_args {
	int idx;
	int tag;
	int pipe_wr;		/* the count goes back here */
};

static int small_fill_child(void *arg)
{
	struct small_args *a = arg;
	unsigned char buf[SMALL_MSG];
	char path[64];
	int fd, n = 0;
	ssize_t ret;

	node_path(path, sizeof(path), a->idx);
	fd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
	CHILD_CHECK(fd >= 0);
	for (;;) {
		fill_pattern(buf, sizeof(buf), a->tag + n);
		ret = bpq_write(fd, buf, sizeof(buf));
		if (ret != SMALL_MSG)
			break;
		CHILD_CHECK(++n <= SMALL_MAX_MSGS);
	}
	CHILD_CHECK_EQ(-ENOMEM, ret);
	close(fd);
	CHILD_CHECK_EQ(sizeof(n), write(a->pipe_wr, &n, sizeof(n)));
	return 0;
}

static int small_fill(struct __test_metadata *_metadata, int idx, int tag)
{
	struct small_args a = { .idx = idx, .tag = tag };
	int pfd[2], n = -1;

	if (pipe(pfd))
		return -1;
	a.pipe_wr = pfd[1];
	EXPECT_EQ(0, run_as(NOBODY, NOBODY, small_fill_child, &a));
	close(pfd[1]);
	if (read(pfd[0], &n, sizeof(n)) != sizeof(n))
		n = -1;
	close(pfd[0]);
	return n;
}

TEST_F(sec, user_limit_small_messages)
{
	unsigned char buf[SMALL_MSG];
	struct bpq_config cfg;
	char path[64];
	int n1, n2, i, fd;

	ASSERT_EQ(0, set_user_max(self, LIM_MAX));
	node_path(path, sizeof(path), self->idx[0]);
	ASSERT_EQ(0, chmod(path, 0666));
	/* room for more than the limit lets in */
	fd = bpq_open(self->idx[0], O_RDWR);
	ASSERT_LE(0, fd);
	bpq_default_config(&cfg);
	cfg.capacity_msgs = 4 * SMALL_MAX_MSGS;
	ASSERT_EQ(0, bpq_set_config(fd, &cfg));
	close(fd);

	n1 = small_fill(_metadata, self->idx[0], 0);
	/* at least half the limit in payload, and never more than all */
	ASSERT_LE(SMALL_MAX_MSGS / 2, n1);
	ASSERT_GE(SMALL_MAX_MSGS, n1);
	fd = bpq_open(self->idx[0], O_RDWR | O_NONBLOCK);
	ASSERT_LE(0, fd);
	expect_depth(_metadata, fd, n1, (__u64)n1 * SMALL_MSG);
	for (i = 0; i < n1; i++) {
		ASSERT_EQ(SMALL_MSG, bpq_read(fd, buf, sizeof(buf)));
		ASSERT_TRUE(check_pattern(buf, sizeof(buf), i))
			TH_LOG("message %d corrupted", i);
	}
	close(fd);

	/* nothing of the first fill is still charged */
	n2 = small_fill(_metadata, self->idx[0], 1000);
	EXPECT_EQ(n1, n2);
	fd = bpq_open(self->idx[0], O_RDWR | O_NONBLOCK);
	ASSERT_LE(0, fd);
	expect_depth(_metadata, fd, n2, (__u64)n2 * SMALL_MSG);
	ASSERT_EQ(n2, bpq_flush(fd));
	close(fd);
}

/* ---- 4. memory cgroup ---- */

#define CG_MSG		65536
#define CG_MAX		(8 << 20)
#define CG_MSG_LIMIT	4096	/* stop there: 256 MiB, the limit failed */

struct cg_args {
	char dir[128];
	int idx;
	int pipe_wr;
};

struct cg_result {
	int count;
	int err;
};

static int cg_child(void *arg)
{
	struct cg_args *a = arg;
	struct cg_result r = { 0, 0 };
	char path[160];
	unsigned char *buf;
	int fd;
	ssize_t ret;

	snprintf(path, sizeof(path), "%s/cgroup.procs", a->dir);
	CHILD_CHECK_EQ(0, bpq_write_file(path, "0"));
	buf = malloc(CG_MSG);
	CHILD_CHECK(buf);
	fd = bpq_open(a->idx, O_WRONLY | O_NONBLOCK);
	CHILD_CHECK(fd >= 0);
	while (r.count < CG_MSG_LIMIT) {
		fill_pattern(buf, CG_MSG, r.count);
		ret = bpq_write(fd, buf, CG_MSG);
		if (ret < 0) {
			r.err = -ret;
			break;
		}
		CHILD_CHECK_EQ(CG_MSG, ret);
		r.count++;
	}
	close(fd);
	free(buf);
	CHILD_CHECK_EQ(sizeof(r), write(a->pipe_wr, &r, sizeof(r)));
	return 0;
}

static bool has_word(const char *text, const char *word)
{
	size_t len = strlen(word);
	const char *p = text;

	while ((p = strstr(p, word))) {
		if ((p == text || p[-1] == ' ') &&
		    (p[len] == ' ' || p[len] == '\n' || !p[len]))
			return true;
		p += len;
	}
	return false;
}

TEST_F(sec, memcg_charge)
{
	struct cg_args a = { .idx = self->idx[0] };
	struct cg_result r = { -1, 0 };
	long long cur_full, cur_empty, kills;
	__u64 queued;
	bool enabled_memory = false;
	struct bpq_config cfg;
	char buf[512], path[192];
	unsigned char *msg;
	int fd, pfd[2], i, ret, tries;

	if (bpq_read_file(CGROUP_ROOT "/cgroup.controllers", buf,
			  sizeof(buf)) < 0)
		SKIP(return, "no cgroup2 at " CGROUP_ROOT);
	if (!has_word(buf, "memory"))
		SKIP(return, "no memory controller");
	ASSERT_LE(0, bpq_read_file(CGROUP_ROOT "/cgroup.subtree_control", buf,
				   sizeof(buf)));
	if (!has_word(buf, "memory")) {
		ASSERT_EQ(0, bpq_write_file(CGROUP_ROOT "/cgroup.subtree_control",
					"+memory"));
		enabled_memory = true;
	}
	snprintf(a.dir, sizeof(a.dir), CGROUP_ROOT "/bpq-sec-%d", getpid());
	ASSERT_EQ(0, mkdir(a.dir, 0755)) TH_LOG("mkdir %s: %m", a.dir);
	snprintf(path, sizeof(path), "%s/memory.max", a.dir);
	snprintf(buf, sizeof(buf), "%d", CG_MAX);
	EXPECT_EQ(0, bpq_write_file(path, buf));
	snprintf(path, sizeof(path), "%s/memory.swap.max", a.dir);
	bpq_write_file(path, "0");	/* absent without swap accounting */

	/* a queue that never refuses, and no per-user limit */
	ASSERT_EQ(0, set_user_max(self, 0));
	fd = bpq_open(self->idx[0], O_RDWR | O_NONBLOCK);
	ASSERT_LE(0, fd);
	bpq_default_config(&cfg);
	cfg.capacity_bytes = 1ULL << 30;
	cfg.capacity_msgs = 1 << 20;
	cfg.max_msg_size = CG_MSG;
	ASSERT_EQ(0, bpq_set_config(fd, &cfg));

	ASSERT_EQ(0, pipe2(pfd, O_CLOEXEC));
	a.pipe_wr = pfd[1];
	ret = run_as(0, 0, cg_child, &a);
	close(pfd[1]);
	EXPECT_EQ((ssize_t)sizeof(r), read(pfd[0], &r, sizeof(r)));
	close(pfd[0]);

	snprintf(path, sizeof(path), "%s/memory.current", a.dir);
	cur_full = read_ll(path);
	snprintf(path, sizeof(path), "%s/memory.events", a.dir);
	kills = read_key(path, "oom_kill");

	/* the writer survived, and was refused with ENOMEM */
	EXPECT_EQ(0, ret) TH_LOG("filler %s",
				 ret == 1000 + SIGKILL ? "OOM-killed" :
				 "failed");
	EXPECT_EQ(0, kills);
	EXPECT_EQ(ENOMEM, r.err) TH_LOG("after %d messages: %s", r.count,
					strerror(r.err));
	EXPECT_LT(0, r.count);
	EXPECT_GE(CG_MAX / CG_MSG, r.count);
	TH_LOG("%d messages of 64 KiB accepted, memory.current %lld",
	       r.count, cur_full);
	/* the queued messages are charged to the filler's cgroup */
	if (r.count > 0)
		EXPECT_LE((long long)r.count * CG_MSG / 2, cur_full);

	/* every accepted message is there, intact, and nothing else */
	queued = bpq_depth(fd);
	if (r.count >= 0)
		expect_depth(_metadata, fd, r.count, (__u64)r.count * CG_MSG);
	msg = malloc(CG_MSG);
	ASSERT_NE(NULL, msg);
	for (i = 0; i < (int)queued; i++) {
		ASSERT_EQ(CG_MSG, bpq_read(fd, msg, CG_MSG));
		ASSERT_TRUE(check_pattern(msg, CG_MSG, i))
			TH_LOG("message %d corrupted", i);
	}
	free(msg);
	EXPECT_EQ(-EAGAIN, bpq_read(fd, buf, sizeof(buf)));

	/* the charge went with the messages */
	snprintf(path, sizeof(path), "%s/memory.current", a.dir);
	cur_empty = read_ll(path);
	TH_LOG("memory.current after draining: %lld", cur_empty);
	EXPECT_GT(cur_full / 4 + 1, cur_empty);
	EXPECT_GT(2LL << 20, cur_empty);

	ASSERT_EQ(0, bpq_reset(fd));
	close(fd);
	for (tries = 0; rmdir(a.dir) && tries < 100; tries++)
		sleep_ms(20);
	EXPECT_GT(100, tries) TH_LOG("rmdir %s: %m", a.dir);
	if (enabled_memory)
		bpq_write_file(CGROUP_ROOT "/cgroup.subtree_control", "-memory");
}

/* ---- 5. huge capacities ---- */

static long long mem_available_kb(void)
{
	char buf[4096], *p;

	if (bpq_read_file("/proc/meminfo", buf, sizeof(buf)) < 0)
		return -1;
	p = strstr(buf, "MemAvailable:");
	return p ? strtoll(p + 13, NULL, 10) : -1;
}

TEST_F(sec, huge_capacity)
{
	struct bpq_config cfg, got;
	long long before, after;
	char buf[64];
	int64_t t0, t;
	int fd;

	fd = bpq_open(self->idx[0], O_RDWR | O_NONBLOCK);
	ASSERT_LE(0, fd);
	before = mem_available_kb();
	bpq_default_config(&cfg);
	cfg.capacity_bytes = 1ULL << 30;
	cfg.capacity_msgs = 1 << 20;
	cfg.max_msg_size = 4 << 20;
	t0 = now_ns();
	ASSERT_EQ(0, bpq_set_config(fd, &cfg));
	t = now_ns() - t0;
	ASSERT_EQ(0, bpq_get_config(fd, &got));
	ASSERT_EQ(0, memcmp(&cfg, &got, sizeof(cfg)));
	/* the same through sysfs */
	ASSERT_EQ(0, bpq_sysfs_write(self->idx[1], "capacity_bytes",
				     "1073741824"));
	ASSERT_EQ(0, bpq_sysfs_write(self->idx[1], "capacity_msgs",
				     "1048576"));
	ASSERT_EQ(0, bpq_sysfs_write(self->idx[1], "max_msg_size", "4194304"));
	after = mem_available_kb();
	TH_LOG("set_config took %lld us, MemAvailable %lld -> %lld kB",
	       (long long)(t / 1000), before, after);
	EXPECT_GT(200000000LL, t);
	EXPECT_GT(16 * 1024, before - after);
	/* one past the bounds is refused */
	cfg.capacity_bytes = (1ULL << 30) + 1;
	EXPECT_EQ(-EINVAL, bpq_set_config(fd, &cfg));
	cfg.capacity_bytes = 1ULL << 30;
	cfg.capacity_msgs = (1 << 20) + 1;
	EXPECT_EQ(-EINVAL, bpq_set_config(fd, &cfg));
	/* and the queue works as ever */
	ASSERT_EQ(5, bpq_write(fd, "hello", 5));
	ASSERT_EQ(5, bpq_read(fd, buf, sizeof(buf)));
	ASSERT_EQ(0, memcmp(buf, "hello", 5));
	EXPECT_EQ(0U, bpq_sysfs_u64(self->idx[0], "utilization"));
	close(fd);
}

/* ---- 6. fdinfo, and no kernel pointers in fdinfo, sysfs or the log ---- */

static void read_fdinfo(struct __test_metadata *_metadata, int fd, char *buf,
			size_t len)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	ASSERT_LT(0, bpq_read_file(path, buf, len));
}

static void expect_fdinfo(struct __test_metadata *_metadata, const char *text,
			  const char *key, const char *want)
{
	char val[128];

	ASSERT_NE(NULL, fdinfo_value(text, key, val, sizeof(val)))
		TH_LOG("no %s in fdinfo:\n%s", key, text);
	EXPECT_STREQ(want, val) TH_LOG("%s", key);
}

TEST_F(sec, fdinfo)
{
	char text[2048], name[BPQ_NAME_MAX], num[32];
	struct bpq_config cfg;
	const char *ptr;
	int fd, fd2, i;

	fd = bpq_open(self->idx[0], O_RDWR | O_NONBLOCK);
	ASSERT_LE(0, fd);
	snprintf(name, sizeof(name), "sec-%d-a", getpid());

	read_fdinfo(_metadata, fd, text, sizeof(text));
	expect_fdinfo(_metadata, text, "bpq-name", name);
	expect_fdinfo(_metadata, text, "bpq-strategy", "block");
	expect_fdinfo(_metadata, text, "bpq-depth-msgs", "0");
	expect_fdinfo(_metadata, text, "bpq-depth-bytes", "0");
	snprintf(num, sizeof(num), "%d", BPQ_DEF_CAPACITY_MSGS);
	expect_fdinfo(_metadata, text, "bpq-capacity-msgs", num);
	snprintf(num, sizeof(num), "%d", BPQ_DEF_CAPACITY_BYTES);
	expect_fdinfo(_metadata, text, "bpq-capacity-bytes", num);
	ptr = find_pointer(text);
	EXPECT_EQ(NULL, ptr) TH_LOG("pointer-like value in fdinfo: %.20s", ptr);

	/* after changes, through the ioctl and through sysfs */
	bpq_default_config(&cfg);
	cfg.strategy = BPQ_STRATEGY_DROP_OLDEST;
	cfg.capacity_msgs = 7;
	cfg.capacity_bytes = 5000;
	ASSERT_EQ(0, bpq_set_config(fd, &cfg));
	for (i = 0; i < 3; i++)
		ASSERT_EQ(10 + i, bpq_write(fd, "0123456789abc", 10 + i));
	fd2 = bpq_open(self->idx[0], O_RDONLY);
	ASSERT_LE(0, fd2);
	read_fdinfo(_metadata, fd2, text, sizeof(text));
	expect_fdinfo(_metadata, text, "bpq-name", name);
	expect_fdinfo(_metadata, text, "bpq-strategy", "drop-oldest");
	expect_fdinfo(_metadata, text, "bpq-depth-msgs", "3");
	expect_fdinfo(_metadata, text, "bpq-depth-bytes", "33");
	expect_fdinfo(_metadata, text, "bpq-capacity-msgs", "7");
	expect_fdinfo(_metadata, text, "bpq-capacity-bytes", "5000");

	ASSERT_EQ(0, bpq_sysfs_write(self->idx[0], "strategy", "credit"));
	ASSERT_EQ(0, bpq_sysfs_write(self->idx[0], "capacity_msgs", "99"));
	ASSERT_EQ(0, bpq_sysfs_write(self->idx[0], "capacity_bytes",
				     "1073741824"));
	ASSERT_LT(0, bpq_read(fd, text, sizeof(text)));
	read_fdinfo(_metadata, fd, text, sizeof(text));
	expect_fdinfo(_metadata, text, "bpq-strategy", "credit");
	expect_fdinfo(_metadata, text, "bpq-depth-msgs", "2");
	expect_fdinfo(_metadata, text, "bpq-depth-bytes", "23");
	expect_fdinfo(_metadata, text, "bpq-capacity-msgs", "99");
	expect_fdinfo(_metadata, text, "bpq-capacity-bytes", "1073741824");
	ptr = find_pointer(text);
	EXPECT_EQ(NULL, ptr) TH_LOG("pointer-like value in fdinfo: %.20s", ptr);

	/* the control device has an fdinfo without any either */
	read_fdinfo(_metadata, self->cfd, text, sizeof(text));
	ptr = find_pointer(text);
	EXPECT_EQ(NULL, ptr) TH_LOG("pointer-like value in fdinfo: %.20s", ptr);
	close(fd2);
	close(fd);
}

/* Read every readable file under @dir (one level of subdirectories). */
static int scan_dir(struct __test_metadata *_metadata, const char *dir,
		    int depth)
{
	char path[512], text[8192];
	const char *ptr;
	struct dirent *de;
	struct stat st;
	int files = 0;
	DIR *d;

	d = opendir(dir);
	if (!d)
		return 0;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (lstat(path, &st))
			continue;
		if (S_ISDIR(st.st_mode)) {
			if (depth > 0)
				files += scan_dir(_metadata, path, depth - 1);
			continue;
		}
		if (!S_ISREG(st.st_mode) || !(st.st_mode & 0444))
			continue;
		if (bpq_read_file(path, text, sizeof(text)) < 0)
			continue;
		files++;
		ptr = find_pointer(text);
		EXPECT_EQ(NULL, ptr)
			TH_LOG("pointer-like value in %s: %.20s", path, ptr);
	}
	closedir(d);
	return files;
}

TEST_F(sec, no_pointers_in_sysfs_or_log)
{
	char path[300], *log, *line, *save;
	const char *ptr;
	struct dirent *de;
	int queues = 0, files = 0, fd, len;
	DIR *d;

	/* some state and counters that are not zero */
	fd = bpq_open(self->idx[0], O_RDWR | O_NONBLOCK);
	ASSERT_LE(0, fd);
	ASSERT_EQ(3, bpq_write(fd, "abc", 3));
	ASSERT_EQ(3, bpq_write(fd, "def", 3));
	ASSERT_EQ(3, bpq_read(fd, path, sizeof(path)));

	d = opendir(BPQ_SYSFS_CLASS);
	ASSERT_NE(NULL, d);
	while ((de = readdir(d))) {
		if (strncmp(de->d_name, "bpq", 3))
			continue;
		snprintf(path, sizeof(path), BPQ_SYSFS_CLASS "/%s",
			 de->d_name);
		queues++;
		files += scan_dir(_metadata, path, 1);
	}
	closedir(d);
	TH_LOG("%d files of %d queues read", files, queues);
	EXPECT_LE(3, queues);
	EXPECT_LE(queues * 30, files);
	/* the module's own parameters */
	files = scan_dir(_metadata, BPQ_PARAM_DIR, 0);
	EXPECT_LE(1, files);
	close(fd);

	/* kernel log lines of the module */
	len = klogctl(10, NULL, 0);	/* SYSLOG_ACTION_SIZE_BUFFER */
	ASSERT_LT(0, len);
	log = calloc(1, len + 1);
	ASSERT_NE(NULL, log);
	len = klogctl(3, log, len);	/* SYSLOG_ACTION_READ_ALL */
	ASSERT_LE(0, len);
	log[len] = '\0';
	for (line = strtok_r(log, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		if (!strstr(line, "bpq"))
			continue;
		ptr = find_pointer(line);
		EXPECT_EQ(NULL, ptr) TH_LOG("pointer-like value in log: %s",
					    line);
	}
	free(log);
}

/* ---- 8. a user copy stalled by userfaultfd ---- */

struct uffd_ctx {
	int uffd;
	char *area;		/* registered, nothing mapped yet */
	size_t page;
};

/* Returns 0, or a reason to skip. */
static const char *uffd_setup(struct uffd_ctx *u, int pages)
{
	struct uffdio_api api = { .api = UFFD_API };
	struct uffdio_register reg = { .mode = UFFDIO_REGISTER_MODE_MISSING };

	u->page = sysconf(_SC_PAGESIZE);
	u->uffd = syscall(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (u->uffd < 0)
		return errno == ENOSYS ? "no userfaultfd" :
					 "userfaultfd not permitted";
	if (ioctl(u->uffd, UFFDIO_API, &api))
		return "UFFDIO_API failed";
	u->area = mmap(NULL, pages * u->page, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (u->area == MAP_FAILED)
		return "mmap failed";
	reg.range.start = (uintptr_t)u->area;
	reg.range.len = pages * u->page;
	if (ioctl(u->uffd, UFFDIO_REGISTER, &reg))
		return "UFFDIO_REGISTER failed";
	return NULL;
}

/* Wait for a fault at @addr's page; true when it has been reported. */
static bool uffd_wait_fault(struct uffd_ctx *u, void *addr, int timeout_ms)
{
	struct pollfd pfd = { .fd = u->uffd, .events = POLLIN };
	struct uffd_msg msg;

	if (poll(&pfd, 1, timeout_ms) != 1)
		return false;
	if (read(u->uffd, &msg, sizeof(msg)) != sizeof(msg))
		return false;
	return msg.event == UFFD_EVENT_PAGEFAULT &&
	       (msg.arg.pagefault.address & ~(u->page - 1)) ==
	       ((uintptr_t)addr & ~(u->page - 1));
}

static int uffd_fill(struct uffd_ctx *u, void *page, int byte)
{
	struct uffdio_copy c = { 0 };
	char *src = aligned_alloc(u->page, u->page);
	int ret;

	if (!src)
		return -ENOMEM;
	memset(src, byte, u->page);
	c.dst = (uintptr_t)page;
	c.src = (uintptr_t)src;
	c.len = u->page;
	ret = ioctl(u->uffd, UFFDIO_COPY, &c) ? -errno : 0;
	free(src);
	return ret;
}

static int uffd_ctx_zero(struct uffd_ctx *u, void *page)
{
	struct uffdio_zeropage z = { 0 };

	z.range.start = (uintptr_t)page;
	z.range.len = u->page;
	return ioctl(u->uffd, UFFDIO_ZEROPAGE, &z) ? -errno : 0;
}

/* One read, write or RECV into/from a given buffer, on its own thread. */
struct stall {
	pthread_t thr;
	int fd;
	int op;			/* 0 read, 1 write, 2 RECV ioctl */
	void *buf;
	size_t len;
	struct bpq_msg_info info;
	ssize_t ret;
	int done;
};

static void *stall_fn(void *arg)
{
	struct stall *s = arg;
	ssize_t ret;

	if (s->op == 0)
		ret = bpq_read(s->fd, s->buf, s->len);
	else if (s->op == 1)
		ret = bpq_write(s->fd, s->buf, s->len);
	else
		ret = bpq_recv(s->fd, s->buf, s->len, 0, 0, &s->info);
	s->ret = ret;
	__atomic_store_n(&s->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static bool stall_wait(struct stall *s, int timeout_ms)
{
	int64_t end = now_ns() + (int64_t)timeout_ms * 1000000;

	while (!__atomic_load_n(&s->done, __ATOMIC_ACQUIRE)) {
		if (now_ns() > end)
			return false;
		sleep_ms(1);
	}
	pthread_join(s->thr, NULL);
	return true;
}

/* What other tasks do on the queue while a copy is stalled. */
struct others {
	pthread_t thr;
	int fd;			/* O_NONBLOCK, another file of the queue */
	int idx;
	int result;		/* 0 all well, else the line that failed */
	int done;
};

static void *others_fn(void *arg)
{
	struct others *o = arg;
	struct bpq_msg_info info;
	struct bpq_stats st;
	struct bpq_config cfg;
	char buf[256];

#define OTHER_CHECK(c) do { if (!(c)) { o->result = __LINE__; goto out; } } while (0)
	OTHER_CHECK(bpq_write(o->fd, "other-1", 7) == 7);
	OTHER_CHECK(bpq_read(o->fd, buf, sizeof(buf)) == 7);
	OTHER_CHECK(!memcmp(buf, "other-1", 7));
	OTHER_CHECK(bpq_write(o->fd, "other-22", 8) == 8);
	OTHER_CHECK(bpq_recv(o->fd, buf, sizeof(buf), 0, 0, &info) == 8);
	OTHER_CHECK(!memcmp(buf, "other-22", 8));
	OTHER_CHECK(bpq_read(o->fd, buf, sizeof(buf)) == -EAGAIN);
	OTHER_CHECK(bpq_get_stats(o->fd, &st) == 0);
	OTHER_CHECK(bpq_get_config(o->fd, &cfg) == 0);
	OTHER_CHECK(bpq_set_config(o->fd, &cfg) == 0);
	OTHER_CHECK(poll_events(o->fd) >= 0);
	OTHER_CHECK(bpq_sysfs_read(o->idx, "depth_msgs", buf, sizeof(buf)) == 0);
	OTHER_CHECK(bpq_sysfs_read(o->idx, "stats/latency_hist", buf,
				   sizeof(buf)) == 0);
#undef OTHER_CHECK
out:
	__atomic_store_n(&o->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

/* Run others_fn while something is stalled: true if it finished in time. */
static bool others_run(struct others *o, int timeout_ms)
{
	int64_t end = now_ns() + (int64_t)timeout_ms * 1000000;

	o->done = 0;
	o->result = 0;
	if (pthread_create(&o->thr, NULL, others_fn, o))
		return false;
	while (!__atomic_load_n(&o->done, __ATOMIC_ACQUIRE)) {
		if (now_ns() > end) {
			pthread_detach(o->thr);
			return false;
		}
		sleep_ms(1);
	}
	pthread_join(o->thr, NULL);
	return true;
}

static void stall_start(struct __test_metadata *_metadata, struct stall *s,
			int fd, int op, void *buf, size_t len)
{
	memset(s, 0, sizeof(*s));
	s->fd = fd;
	s->op = op;
	s->buf = buf;
	s->len = len;
	ASSERT_EQ(0, pthread_create(&s->thr, NULL, stall_fn, s));
}

/*
 * A reader (read(), then the RECV ioctl) and a writer whose user buffer is
 * a missing userfaultfd page stall in the copy; meanwhile another file of
 * the queue writes, reads, and changes settings without waiting. Once the
 * page is supplied the stalled call completes with the right message.
 */
TEST_F(sec, uffd_stalled_copy)
{
	struct others o = { .idx = self->idx[0] };
	struct uffd_ctx u;
	struct stall s;
	struct bpq_stats st;
	const char *why;
	char buf[256];
	int fd, op;

	why = uffd_setup(&u, 5);
	if (why)
		SKIP(return, "%s", why);
	fd = bpq_open(self->idx[0], O_RDWR);
	ASSERT_LE(0, fd);
	o.fd = bpq_open(self->idx[0], O_RDWR | O_NONBLOCK);
	ASSERT_LE(0, o.fd);

	for (op = 0; op < 2; op++) {
		char *page = u.area + op * u.page;
		const char *text = op ? "stalled-recv" : "stalled-read";
		size_t len = strlen(text);

		ASSERT_EQ((ssize_t)len, bpq_write(fd, text, len));
		stall_start(_metadata, &s, fd, op ? 2 : 0, page, u.page);
		ASSERT_TRUE(uffd_wait_fault(&u, page, 5000))
			TH_LOG("no fault reported");
		sleep_ms(20);
		ASSERT_FALSE(__atomic_load_n(&s.done, __ATOMIC_ACQUIRE));

		/* the stalled message still counts as queued */
		ASSERT_EQ(0, bpq_get_stats(o.fd, &st));
		EXPECT_EQ(1U, st.depth_msgs);
		EXPECT_FALSE(poll_events(o.fd) & POLLIN);
		ASSERT_TRUE(others_run(&o, 3000))
			TH_LOG("a call blocked behind the stalled copy");
		EXPECT_EQ(0, o.result) TH_LOG("line %d failed", o.result);
		ASSERT_FALSE(__atomic_load_n(&s.done, __ATOMIC_ACQUIRE));

		if (op) {
			ASSERT_EQ(0, uffd_ctx_zero(&u, page));
		} else {
			ASSERT_EQ(0, uffd_fill(&u, page, 0xEE));
		}
		ASSERT_TRUE(stall_wait(&s, 5000));
		ASSERT_EQ((ssize_t)len, s.ret) TH_LOG("%s", strerror(-s.ret));
		ASSERT_EQ(0, memcmp(page, text, len));
		if (op) {
			EXPECT_EQ(len, s.info.len);
			EXPECT_EQ(0, page[len]);
		} else {
			EXPECT_EQ((char)0xEE, page[len]);
		}
		ASSERT_EQ(0, bpq_get_stats(o.fd, &st));
		EXPECT_EQ(0U, st.depth_msgs);
		EXPECT_TRUE(bpq_stats_balanced(&st));
	}

	/* a writer whose payload is not there yet */
	{
		char *page = u.area + 2 * u.page;

		stall_start(_metadata, &s, fd, 1, page, 100);
		ASSERT_TRUE(uffd_wait_fault(&u, page, 5000));
		ASSERT_TRUE(others_run(&o, 3000))
			TH_LOG("a call blocked behind the stalled copy");
		EXPECT_EQ(0, o.result) TH_LOG("line %d failed", o.result);
		ASSERT_EQ(0U, bpq_depth(o.fd));
		ASSERT_EQ(0, uffd_ctx_zero(&u, page));
		ASSERT_TRUE(stall_wait(&s, 5000));
		ASSERT_EQ(100, s.ret);
		memset(buf, 0x55, sizeof(buf));
		ASSERT_EQ(100, bpq_read(o.fd, buf, sizeof(buf)));
		for (op = 0; op < 100; op++)
			ASSERT_EQ(0, buf[op]);
	}

	/* a writer of a large message, copied in without the lock */
	{
		char *page = u.area + 3 * u.page;
		static char big[8192];

		stall_start(_metadata, &s, fd, 1, page, 2 * u.page);
		ASSERT_TRUE(uffd_wait_fault(&u, page, 5000));
		ASSERT_TRUE(others_run(&o, 3000))
			TH_LOG("a call blocked behind the stalled copy");
		EXPECT_EQ(0, o.result) TH_LOG("line %d failed", o.result);
		ASSERT_EQ(0U, bpq_depth(o.fd));
		ASSERT_EQ(0, uffd_fill(&u, page, 0x11));
		ASSERT_TRUE(uffd_wait_fault(&u, page + u.page, 5000));
		ASSERT_EQ(0, uffd_fill(&u, page + u.page, 0x22));
		ASSERT_TRUE(stall_wait(&s, 5000));
		ASSERT_EQ((ssize_t)(2 * u.page), s.ret);
		ASSERT_EQ((ssize_t)(2 * u.page),
			  bpq_read(o.fd, big, sizeof(big)));
		ASSERT_EQ(0x11, big[0]);
		ASSERT_EQ(0x22, big[2 * u.page - 1]);
	}
	close(o.fd);
	close(fd);
	munmap(u.area, 5 * u.page);
	close(u.uffd);
}

/*
 * A flush while a reader is stalled in the copy of a message: the queue
 * empties at once, the stalled reader lets its message go and waits for
 * the next, and the memory of the flushed messages comes back when it
 * does (its pin kept them).
 */
TEST_F(sec, uffd_flush_while_stalled)
{
	struct uffd_ctx u;
	struct bpq_stats st;
	struct stall s;
	const char *why;
	char big[5000];
	int fd, i;

	why = uffd_setup(&u, 1);
	if (why)
		SKIP(return, "%s", why);
	fd = bpq_open(self->idx[1], O_RDWR);
	ASSERT_LE(0, fd);
	ASSERT_EQ(7, bpq_write(fd, "flushed", 7));
	memset(big, 'b', sizeof(big));
	for (i = 0; i < 20; i++)
		ASSERT_EQ((ssize_t)sizeof(big), bpq_write(fd, big, sizeof(big)));
	stall_start(_metadata, &s, fd, 0, u.area, u.page);
	ASSERT_TRUE(uffd_wait_fault(&u, u.area, 5000));

	ASSERT_EQ(21, bpq_flush(fd));
	ASSERT_EQ(0ULL, bpq_depth(fd));
	ASSERT_EQ(4, bpq_write(fd, "next", 4));
	ASSERT_FALSE(__atomic_load_n(&s.done, __ATOMIC_ACQUIRE));
	ASSERT_EQ(0, uffd_fill(&u, u.area, 0));
	ASSERT_TRUE(stall_wait(&s, 5000));
	ASSERT_EQ(4, s.ret) TH_LOG("%s", strerror(-s.ret));
	ASSERT_EQ(0, memcmp(u.area, "next", 4));
	ASSERT_EQ(0, bpq_get_stats(fd, &st));
	EXPECT_EQ(0U, st.depth_msgs);
	EXPECT_EQ(21ULL, st.flushed);
	EXPECT_TRUE(bpq_stats_balanced(&st));
	close(fd);
	munmap(u.area, u.page);
	close(u.uffd);
}

/* The queue destroyed while a reader is stalled in its copy. */
TEST_F(sec, uffd_destroy_while_stalled)
{
	struct uffd_ctx u;
	struct stall s;
	const char *why;
	int fd;

	why = uffd_setup(&u, 1);
	if (why)
		SKIP(return, "%s", why);
	fd = bpq_open(self->idx[1], O_RDWR);
	ASSERT_LE(0, fd);
	ASSERT_EQ(6, bpq_write(fd, "doomed", 6));
	ASSERT_EQ(4, bpq_write(fd, "left", 4));
	stall_start(_metadata, &s, fd, 0, u.area, u.page);
	ASSERT_TRUE(uffd_wait_fault(&u, u.area, 5000));

	ASSERT_EQ(0, bpq_destroy(self->cfd, self->idx[1]));
	self->idx[1] = -1;
	ASSERT_FALSE(__atomic_load_n(&s.done, __ATOMIC_ACQUIRE));
	ASSERT_EQ(0, uffd_fill(&u, u.area, 0));
	ASSERT_TRUE(stall_wait(&s, 5000));
	/* delivered whole before the end, or refused: never half */
	if (s.ret >= 0) {
		ASSERT_EQ(6, s.ret);
		ASSERT_EQ(0, memcmp(u.area, "doomed", 6));
	} else {
		ASSERT_EQ(-ENODEV, s.ret);
	}
	ASSERT_EQ(-ENODEV, bpq_read(fd, u.area, u.page));
	close(fd);
	munmap(u.area, u.page);
	close(u.uffd);
}

TEST_HARNESS_MAIN
