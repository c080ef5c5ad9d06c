// SPDX-License-Identifier: GPL-2.0
/*
 * What every subcommand needs: messages, usage errors, opening a queue,
 * errno names.
 */
#define _GNU_SOURCE	/* strerrorname_np() */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "bpqctl.h"

void err_msg(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int usage_fail(const char *usage, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nUsage: %s %s\n", prog, usage);
	return EXIT_USAGE;
}

int is_help(const char *arg)
{
	return !strcmp(arg, "-h") || !strcmp(arg, "--help");
}

int wants_help(int argc, char **argv)
{
	int i;

	for (i = 1; i < argc; i++)
		if (is_help(argv[i]))
			return 1;
	return 0;
}

int print_usage(const char *usage)
{
	printf("Usage: %s %s\n", prog, usage);
	return EXIT_OK;
}

/*
 * bpq_open(), and for O_QUERY (access mode 3, which needs read and write
 * permission) O_RDONLY where the user may only read the device.
 */
int queue_open(const char *q, int flags)
{
	int fd = bpq_open(q, flags);

	if (fd == -EACCES && flags == O_QUERY)
		fd = bpq_open(q, O_RDONLY | O_NONBLOCK);
	return fd;
}

/* Open Q for cmd; on failure say which and return -errno. */
int open_queue(const char *cmd, const char *q, int flags, int *index)
{
	int fd, idx;

	fd = queue_open(q, flags);
	if (fd < 0) {
		err_msg("%s %s: %s", cmd, q, strerror(-fd));
		return fd;
	}
	idx = bpq_index_of(fd);
	if (idx < 0) {
		err_msg("%s %s: not a bpq queue: %s", cmd, q, strerror(-idx));
		close(fd);
		return idx;
	}
	if (index)
		*index = idx;
	return fd;
}

int snap_load_fd(int fd, unsigned int index, struct queue_snap *s)
{
	int ret;

	memset(s, 0, sizeof(*s));
	s->index = index;
	ret = bpq_queue_name(index, s->name, sizeof(s->name));
	if (ret < 0)
		snprintf(s->name, sizeof(s->name), "bpq%u", index);
	ret = bpq_get_config(fd, &s->cfg);
	if (!ret)
		ret = bpq_get_stats(fd, &s->st);
	return ret;
}

int snap_load(unsigned int index, struct queue_snap *s)
{
	char path[32];
	int fd, ret;

	snprintf(path, sizeof(path), "/dev/bpq%u", index);
	fd = queue_open(path, O_QUERY);
	if (fd < 0)
		return fd;
	ret = snap_load_fd(fd, index, s);
	close(fd);
	return ret;
}

/*
 * The errno an error code stands for, as the kernel's sysfs file "stream"
 * writes it ("EIO"), or its number if the C library knows no name.
 */
const char *errno_name(int err, char *buf, size_t len)
{
	const char *name = strerrorname_np(err);

	if (name)
		return name;
	snprintf(buf, len, "%d", err);
	return buf;
}

/*
 * An errno by name (EIO, eio, or an alias such as EWOULDBLOCK) or number:
 * the number, or -EINVAL. Numbers are passed on as they are, for the kernel
 * to judge; names are looked up among 1 to 4095.
 */
int errno_parse(const char *s)
{
	static const struct {
		const char *alias, *name;
	} aliases[] = {
		{ "EWOULDBLOCK", "EAGAIN" },
		{ "EDEADLOCK", "EDEADLK" },
		{ "ENOTSUP", "EOPNOTSUPP" },
	};
	const char *name;
	uint64_t v;
	unsigned int i;
	int e;

	if (!s)
		return -EINVAL;
	if (*s >= '0' && *s <= '9')
		return parse_u64(s, INT32_MAX, &v) ? -EINVAL : (int)v;
	for (i = 0; i < sizeof(aliases) / sizeof(aliases[0]); i++)
		if (!strcasecmp(s, aliases[i].alias))
			s = aliases[i].name;
	for (e = 1; e < 4096; e++) {
		name = strerrorname_np(e);
		if (name && !strcasecmp(s, name))
			return e;
	}
	return -EINVAL;
}
