// SPDX-License-Identifier: MIT
/*
 * Finding queues: by number ("3", "bpq3"), by name (the sysfs attribute
 * "name" of /sys/class/bpq/bpqN/) or by device path; the names of
 * strategies, stream states, hangup settings, ack modes, window states
 * and read modes.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "bpq.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* names[i], or NULL past the end */
#define NAME_OF(names, i) ((i) < ARRAY_LEN(names) ? (names)[i] : NULL)

/* The index of @name in @names, or -EINVAL */
static int name_find(const char *const *names, unsigned int n,
		     const char *name)
{
	unsigned int i;

	for (i = 0; name && i < n; i++)
		if (!strcmp(name, names[i]))
			return i;
	return -EINVAL;
}

#define NAME_FIND(names, name) name_find(names, ARRAY_LEN(names), name)

static const char *const bpq_strategies[] = {
	[BPQ_STRATEGY_BLOCK] = "block",
	[BPQ_STRATEGY_DROP_NEWEST] = "drop-newest",
	[BPQ_STRATEGY_DROP_OLDEST] = "drop-oldest",
	[BPQ_STRATEGY_CREDIT] = "credit",
	[BPQ_STRATEGY_ADAPTIVE] = "adaptive",
	[BPQ_STRATEGY_WINDOW] = "window",
};

static const char *const bpq_streams[] = {
	[BPQ_STREAM_OPEN] = "open",
	[BPQ_STREAM_COMPLETED] = "completed",
	[BPQ_STREAM_FAILED] = "failed",
	[BPQ_STREAM_CANCELLED] = "cancelled",
};

static const char *const bpq_hangups[] = {
	[BPQ_HANGUP_NONE] = "none",
	[BPQ_HANGUP_WRITERS] = "writers",
	[BPQ_HANGUP_READERS] = "readers",
	[BPQ_HANGUP_BOTH] = "both",
};

static const char *const bpq_ack_modes[] = {
	[BPQ_ACK_MODE_ACK] = "ack",
	[BPQ_ACK_MODE_DELIVERY] = "delivery",
};

static const char *const bpq_window_states[] = {
	[BPQ_WINDOW_SLOW_START] = "slow-start",
	[BPQ_WINDOW_AVOIDANCE] = "avoidance",
	[BPQ_WINDOW_RECOVERY] = "recovery",
};

/* By bit number: BPQ_HOLD_ADMIN is bit 0 */
static const char *const bpq_holds[] = {
	"admin", "cluster", "system", "link", "group",
};

static const char *const bpq_triggers[] = {
	[BPQ_TRIGGER_NONE] = "none",
	[BPQ_TRIGGER_STALL_SOME] = "some",
	[BPQ_TRIGGER_STALL_FULL] = "full",
	[BPQ_TRIGGER_DROPS] = "drops",
	[BPQ_TRIGGER_TIMEOUTS] = "timeouts",
	[BPQ_TRIGGER_HEAD_AGE] = "head_age",
	[BPQ_TRIGGER_UTILIZATION] = "utilization",
};

static const char *const bpq_read_modes[] = {
	[BPQ_READ_MESSAGE] = "message",
	[BPQ_READ_STREAM] = "stream",
};

const char *bpq_strategy_name(unsigned int strategy)
{
	return NAME_OF(bpq_strategies, strategy);
}

/* As name_find(), but '_' in @name also matches '-': "drop_oldest" */
static int name_find_either(const char *const *names, unsigned int n,
			    const char *name)
{
	const char *a, *b;
	unsigned int i;

	for (i = 0; name && i < n; i++) {
		for (a = name, b = names[i]; *b; a++, b++)
			if (*a != *b && !(*a == '_' && *b == '-'))
				break;
		if (!*a && !*b)
			return i;
	}
	return -EINVAL;
}

int bpq_strategy_parse(const char *name)
{
	return name_find_either(bpq_strategies, ARRAY_LEN(bpq_strategies),
				name);
}

const char *bpq_stream_name(unsigned int state)
{
	return NAME_OF(bpq_streams, state);
}

const char *bpq_hangup_name(unsigned int hangup)
{
	return NAME_OF(bpq_hangups, hangup);
}

int bpq_hangup_parse(const char *name)
{
	return NAME_FIND(bpq_hangups, name);
}

const char *bpq_ack_mode_name(unsigned int mode)
{
	return NAME_OF(bpq_ack_modes, mode);
}

int bpq_ack_mode_parse(const char *name)
{
	return NAME_FIND(bpq_ack_modes, name);
}

const char *bpq_window_state_name(unsigned int state)
{
	return NAME_OF(bpq_window_states, state);
}

const char *bpq_read_mode_name(unsigned int mode)
{
	return NAME_OF(bpq_read_modes, mode);
}

int bpq_read_mode_parse(const char *name)
{
	return NAME_FIND(bpq_read_modes, name);
}

const char *bpq_trigger_name(unsigned int metric)
{
	return NAME_OF(bpq_triggers, metric);
}

int bpq_trigger_parse(const char *name)
{
	return NAME_FIND(bpq_triggers, name);
}

/* One BPQ_HOLD_* bit's name; NULL for anything else */
const char *bpq_hold_name(unsigned int hold)
{
	unsigned int i;

	for (i = 0; i < ARRAY_LEN(bpq_holds); i++)
		if (hold == 1U << i)
			return bpq_holds[i];
	return NULL;
}

int bpq_hold_parse(const char *name)
{
	int i = NAME_FIND(bpq_holds, name);

	return i < 0 ? i : 1 << i;
}

/* The sysfs file hold: "+admin" sets that reason, "-admin" clears it. */
int bpq_hold(unsigned int index, unsigned int hold, int on)
{
	const char *name = bpq_hold_name(hold);
	char path[80], val[16];
	ssize_t n;
	int fd;

	if (!name)
		return -EINVAL;
	snprintf(path, sizeof(path), BPQ_SYSFS_CLASS "/bpq%u/hold", index);
	n = snprintf(val, sizeof(val), "%c%s", on ? '+' : '-', name);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (write(fd, val, n) != n)
		n = -errno;
	close(fd);
	return n < 0 ? n : 0;
}

/* "3" or "bpq3" -> 3; anything else -> -EINVAL. */
static int bpq_parse_index(const char *s)
{
	unsigned long n;
	char *end;

	if (!strncmp(s, "bpq", 3))
		s += 3;
	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	n = strtoul(s, &end, 10);
	if (*end || errno || n > 0x7fffffff)
		return -EINVAL;
	return n;
}

static int bpq_exists(unsigned int index)
{
	char path[64];

	snprintf(path, sizeof(path), BPQ_SYSFS_CLASS "/bpq%u", index);
	return access(path, F_OK) == 0;
}

int bpq_queue_name(unsigned int index, char *buf, size_t len)
{
	char path[80];
	ssize_t n;
	int fd;

	if (!len)
		return -EINVAL;
	snprintf(path, sizeof(path), BPQ_SYSFS_CLASS "/bpq%u/name", index);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	if (n < 0)
		n = -errno;
	close(fd);
	if (n < 0)
		return n;
	while (n > 0 && buf[n - 1] == '\n')
		n--;
	buf[n] = '\0';
	return n;
}

static int bpq_cmp_index(const void *a, const void *b)
{
	unsigned int x = *(const unsigned int *)a, y = *(const unsigned int *)b;

	return x < y ? -1 : x > y;
}

int bpq_list(unsigned int *indexes, unsigned int max)
{
	unsigned int n = 0;
	struct dirent *de;
	DIR *dir;
	int i;

	dir = opendir(BPQ_SYSFS_CLASS);
	if (!dir)
		return -errno;
	while ((de = readdir(dir))) {
		if (strncmp(de->d_name, "bpq", 3))
			continue;
		i = bpq_parse_index(de->d_name);
		if (i < 0)
			continue;
		if (n < max)
			indexes[n] = i;
		n++;
	}
	closedir(dir);
	if (indexes && max)
		qsort(indexes, n < max ? n : max, sizeof(*indexes),
		      bpq_cmp_index);
	return n;
}

static int bpq_index_of_rdev(dev_t rdev)
{
	char link[80], target[256];
	const char *base;
	ssize_t n;

	snprintf(link, sizeof(link), "/sys/dev/char/%u:%u", major(rdev),
		 minor(rdev));
	n = readlink(link, target, sizeof(target) - 1);
	if (n < 0)
		return errno == ENOENT ? -ENODEV : -errno;
	target[n] = '\0';
	base = strrchr(target, '/');
	base = base ? base + 1 : target;
	if (strncmp(base, "bpq", 3) || !strstr(target, "/bpq/"))
		return -ENODEV;
	n = bpq_parse_index(base);
	return n < 0 ? -ENODEV : n;
}

int bpq_index_of(int fd)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISCHR(st.st_mode))
		return -ENODEV;
	return bpq_index_of_rdev(st.st_rdev);
}

static int bpq_lookup_name(const char *q)
{
	unsigned int idx[1024];
	char name[BPQ_NAME_MAX + 2];
	int i, n;

	n = bpq_list(idx, sizeof(idx) / sizeof(idx[0]));
	if (n < 0)
		return n;
	for (i = 0; i < n && i < (int)(sizeof(idx) / sizeof(idx[0])); i++)
		if (bpq_queue_name(idx[i], name, sizeof(name)) >= 0 &&
		    !strcmp(name, q))
			return idx[i];
	return -ENOENT;
}

int bpq_lookup(const char *q)
{
	struct stat st;
	int index;

	if (!q || !*q)
		return -EINVAL;
	if (strchr(q, '/')) {
		if (stat(q, &st) < 0)
			return -errno;
		if (!S_ISCHR(st.st_mode))
			return -ENODEV;
		return bpq_index_of_rdev(st.st_rdev);
	}
	index = bpq_parse_index(q);
	if (index >= 0 && bpq_exists(index))
		return index;
	return bpq_lookup_name(q);
}

int bpq_open(const char *q, int flags)
{
	char path[64];
	int fd, index;

	if (q && strchr(q, '/')) {
		fd = open(q, flags | O_CLOEXEC);
		return fd < 0 ? -errno : fd;
	}
	index = bpq_lookup(q);
	if (index < 0)
		return index;
	snprintf(path, sizeof(path), "/dev/bpq%d", index);
	fd = open(path, flags | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}
