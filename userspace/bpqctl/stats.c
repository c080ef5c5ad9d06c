// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bpqctl.h"

static const char usage[] =
	"stats [Q] [--json | --prometheus [--output FILE]]";

/*
 * Write the Prometheus text of @s to @path the way node_exporter's textfile
 * collector wants it: into a temporary file beside it, synced, then renamed
 * over @path, so that a scrape sees the old file or the new one, whole.
 * The temporary name begins with a dot and does not end in ".prom", so the
 * collector never reads it. The rename itself is not synced: after a crash
 * either file may be there, each complete.
 *
 * A rename replaces whatever has the name, so only a regular file is
 * replaced: not a link (made to point elsewhere), a device (/dev/stdout
 * as root) or a directory.
 */
static int write_prometheus(const char *path, const struct queue_snap *s,
			    int n)
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
	print_prometheus(f, s, n);
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
	err_msg("stats: %s: %s", path, why);
	return EXIT_FAIL;
}

int stats_main(int argc, char **argv)
{
	enum { TEXT, JSON, PROM } fmt = TEXT;
	struct queue_snap one, *s = &one;
	const char *q = NULL, *output = NULL;
	int i, n = 1, fd, idx, ret, status = EXIT_OK;

	for (i = 1; i < argc; i++) {
		if (is_help(argv[i]))
			return print_usage(usage);
		else if (!strcmp(argv[i], "--json") || !strcmp(argv[i], "-j"))
			fmt = JSON;
		else if (!strcmp(argv[i], "--prometheus"))
			fmt = PROM;
		else if (!strcmp(argv[i], "--output") ||
			 !strcmp(argv[i], "-o")) {
			if (i + 1 == argc || !argv[i + 1][0])
				return usage_fail(usage,
						  "stats: %s needs a file name",
						  argv[i]);
			output = argv[++i];
		} else if (argv[i][0] == '-' || q)
			return usage_fail(usage, "stats: unexpected '%s'",
					  argv[i]);
		else
			q = argv[i];
	}
	if (output && fmt != PROM)
		return usage_fail(usage, "stats: --output needs --prometheus");
	if (q) {
		fd = open_queue("stats", q, O_QUERY, &idx);
		if (fd < 0)
			return EXIT_FAIL;
		ret = snap_load_fd(fd, idx, &one);
		close(fd);
		if (ret < 0) {
			err_msg("stats %s: %s", q, strerror(-ret));
			return EXIT_FAIL;
		}
	} else {
		status = load_all("stats", &s, &n);
	}
	if (fmt == PROM && output) {
		if (write_prometheus(output, s, n) != EXIT_OK)
			status = EXIT_FAIL;
	} else if (fmt == PROM) {
		print_prometheus(stdout, s, n);
	} else if (q) {
		print_stats(stdout, s, fmt == JSON);
	} else {
		if (fmt == JSON)
			fputc('[', stdout);
		for (i = 0; i < n; i++) {
			if (fmt == JSON && i)
				fputc(',', stdout);
			print_stats(stdout, &s[i], fmt == JSON);
		}
		if (fmt == JSON)
			fputs("]\n", stdout);
	}
	if (s != &one)
		free(s);
	return status;
}
