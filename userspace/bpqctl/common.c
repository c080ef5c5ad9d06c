// SPDX-License-Identifier: GPL-2.0
/*
 * What every subcommand needs: messages, usage errors, opening a queue.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
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

/* Open Q for cmd; on failure say which and return -errno. */
int open_queue(const char *cmd, const char *q, int flags, int *index)
{
	int fd, idx;

	fd = bpq_open(q, flags);
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
	fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ret = snap_load_fd(fd, index, s);
	close(fd);
	return ret;
}
