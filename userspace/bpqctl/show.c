// SPDX-License-Identifier: GPL-2.0
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bpqctl.h"

static const char usage[] = "show Q [--json]";

/* The sysfs file @attr of queue @idx, newline dropped; NULL if unread */
static char *sysfs_text(unsigned int idx, const char *attr)
{
	char path[80], *buf = malloc(2048);

	snprintf(path, sizeof(path), BPQ_SYSFS_CLASS "/bpq%u/%s", idx, attr);
	if (buf && read_text(path, buf, 2048) < 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

int show_main(int argc, char **argv)
{
	const char *q = NULL;
	struct queue_snap s;
	int i, fd, idx, ret, json = 0;

	for (i = 1; i < argc; i++) {
		if (is_help(argv[i]))
			return print_usage(usage);
		else if (!strcmp(argv[i], "--json") || !strcmp(argv[i], "-j"))
			json = 1;
		else if (argv[i][0] == '-' || q)
			return usage_fail(usage, "show: unexpected '%s'",
					  argv[i]);
		else
			q = argv[i];
	}
	if (!q)
		return usage_fail(usage, "show: no queue given");
	fd = open_queue("show", q, O_QUERY, &idx);
	if (fd < 0)
		return EXIT_FAIL;
	ret = snap_load_fd(fd, idx, &s);
	close(fd);
	if (ret < 0) {
		err_msg("show %s: %s", q, strerror(-ret));
		return EXIT_FAIL;
	}
	s.upstream = sysfs_text(idx, "upstream");
	s.downstream = sysfs_text(idx, "downstream");
	s.group = sysfs_text(idx, "group");
	print_show(stdout, &s, json);
	free(s.group);
	free(s.upstream);
	free(s.downstream);
	return EXIT_OK;
}
