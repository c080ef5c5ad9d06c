// SPDX-License-Identifier: GPL-2.0
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bpqctl.h"

static const char usage[] =
	"stats [Q] [--json | --prometheus [--output FILE]]";

struct snaps {
	const struct queue_snap *s;
	int n;
	int all;		/* every queue: the groups too */
};

static void print_snaps(FILE *f, const void *arg)
{
	const struct snaps *a = arg;

	print_prometheus(f, a->s, a->n);
	if (a->all)
		print_group_prometheus(f);
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
		struct snaps a = { s, n, !q };

		if (replace_file("stats", output, print_snaps, &a) != EXIT_OK)
			status = EXIT_FAIL;
	} else if (fmt == PROM) {
		print_prometheus(stdout, s, n);
		if (!q)
			print_group_prometheus(stdout);
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
