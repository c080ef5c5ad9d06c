// SPDX-License-Identifier: MIT
/*
 * Finding queues: by number ("3", "bpq3"), by name (the sysfs attribute
 * "name" of /sys/class/bpq/bpqN/) or by device path; the names of
 * strategies, stream states, hangup settings, ack modes and window states.
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

static const char *const bpq_strategies[] = {
	[BPQ_STRATEGY_BLOCK] = "block",
	[BPQ_STRATEGY_DROP_NEWEST] = "drop-newest",
	[BPQ_STRATEGY_DROP_OLDEST] = "drop-oldest",
	[BPQ_STRATEGY_CREDIT] = "credit",
	[BPQ_STRATEGY_ADAPTIVE] = "adaptive",
	[BPQ_STRATEGY_WINDOW] = "window",
};

#define BPQ_NR_STRATEGIES (sizeof(bpq_strategies) / sizeof(bpq_strategies[0]))

const char *bpq_strategy_name(unsigned int strategy)
{
	return strategy < BPQ_NR_STRATEGIES ? bpq_strategies[strategy] : NULL;
}

int bpq_strategy_parse(const char *name)
{
	unsigned int i;

	for (i = 0; name && i < BPQ_NR_STRATEGIES; i++)
		if (!strcmp(name, bpq_strategies[i]))
			return i;
	return -EINVAL;
}

static const char *const bpq_streams[] = {
	[BPQ_STREAM_OPEN] = "open",
	[BPQ_STREAM_COMPLETED] = "completed",
	[BPQ_STREAM_FAILED] = "failed",
	[BPQ_STREAM_CANCELLED] = "cancelled",
};

#define BPQ_NR_STREAMS (sizeof(bpq_streams) / sizeof(bpq_streams[0]))

const char *bpq_stream_name(unsigned int state)
{
	return state < BPQ_NR_STREAMS ? bpq_streams[state] : NULL;
}

static const char *const bpq_hangups[] = {
	[BPQ_HANGUP_NONE] = "none",
	[BPQ_HANGUP_WRITERS] = "writers",
	[BPQ_HANGUP_READERS] = "readers",
	[BPQ_HANGUP_BOTH] = "both",
};

#define BPQ_NR_HANGUPS (sizeof(bpq_hangups) / sizeof(bpq_hangups[0]))

const char *bpq_hangup_name(unsigned int hangup)
{
	return hangup < BPQ_NR_HANGUPS ? bpq_hangups[hangup] : NULL;
}

int bpq_hangup_parse(const char *name)
{
	unsigned int i;

	for (i = 0; name && i < BPQ_NR_HANGUPS; i++)
		if (!strcmp(name, bpq_hangups[i]))
			return i;
	return -EINVAL;
}

static const char *const bpq_ack_modes[] = {
	[BPQ_ACK_MODE_ACK] = "ack",
	[BPQ_ACK_MODE_DELIVERY] = "delivery",
};

#define BPQ_NR_ACK_MODES (sizeof(bpq_ack_modes) / sizeof(bpq_ack_modes[0]))

const char *bpq_ack_mode_name(unsigned int mode)
{
	return mode < BPQ_NR_ACK_MODES ? bpq_ack_modes[mode] : NULL;
}

int bpq_ack_mode_parse(const char *name)
{
	unsigned int i;

	for (i = 0; name && i < BPQ_NR_ACK_MODES; i++)
		if (!strcmp(name, bpq_ack_modes[i]))
			return i;
	return -EINVAL;
}

static const char *const bpq_window_states[] = {
	[BPQ_WINDOW_SLOW_START] = "slow-start",
	[BPQ_WINDOW_AVOIDANCE] = "avoidance",
	[BPQ_WINDOW_RECOVERY] = "recovery",
};

#define BPQ_NR_WINDOW_STATES \
	(sizeof(bpq_window_states) / sizeof(bpq_window_states[0]))

const char *bpq_window_state_name(unsigned int state)
{
	return state < BPQ_NR_WINDOW_STATES ? bpq_window_states[state] : NULL;
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
