// SPDX-License-Identifier: GPL-2.0
/*
 * What every subcommand needs: messages, usage errors, opening a queue,
 * errno names, replacing a file whole.
 */
#define _GNU_SOURCE	/* strerrorname_np() */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
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

/* The text of file @path (sysfs), newline dropped: its length, or -errno */
int read_text(const char *path, char *buf, size_t len)
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
	if (n < 0)
		return n;
	while (n > 0 && buf[n - 1] == '\n')
		n--;
	buf[n] = '\0';
	return n;
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

/*
 * Write what @print prints to @path the way node_exporter's textfile
 * collector (or Prometheus, rereading its rule files) wants it: into a
 * temporary file beside it, synced, then renamed over @path, so that a
 * reader sees the old file or the new one, whole. The temporary name
 * begins with a dot and ends in neither ".prom" nor ".yaml", so the
 * collector never reads it. The rename itself is not synced: after a
 * crash either file may be there, each complete.
 *
 * A rename replaces whatever has the name, so only a regular file is
 * replaced: not a link (made to point elsewhere), a device (/dev/stdout
 * as root) or a directory. Returns EXIT_OK, or EXIT_FAIL after saying
 * why for @cmd.
 */
int replace_file(const char *cmd, const char *path,
		 void (*print)(FILE *f, const void *arg), const void *arg)
{
	const char *slash = strrchr(path, '/'), *why = NULL;
	int dirlen = slash ? (int)(slash - path) + 1 : 0, fd;
	char *tmp = malloc(strlen(path) + sizeof(".XXXXXX") + 1);
	struct stat st;
	FILE *f;

	if (!tmp) {
		why = strerror(ENOMEM);
		goto out;
	}
	sprintf(tmp, "%.*s.%s.XXXXXX", dirlen, path, path + dirlen);
	fd = mkstemp(tmp);
	if (fd < 0) {
		why = strerror(errno);
		goto out;
	}
	f = fdopen(fd, "w");
	if (!f) {
		why = strerror(errno);
		close(fd);
		goto out_unlink;
	}
	errno = 0;
	print(f, arg);
	if (fchmod(fd, 0644) || fflush(f) || ferror(f) || fsync(fd))
		why = strerror(errno ? errno : EIO);
	if (fclose(f) && !why)
		why = strerror(errno);
	if (!why && !lstat(path, &st) && !S_ISREG(st.st_mode))
		why = S_ISDIR(st.st_mode) ? strerror(EISDIR) :
		      "not a regular file, not replaced";
	if (!why && rename(tmp, path))
		why = strerror(errno);
out_unlink:
	if (why)
		unlink(tmp);
out:
	free(tmp);
	if (!why)
		return EXIT_OK;
	err_msg("%s: %s: %s", cmd, path, why);
	return EXIT_FAIL;
}
