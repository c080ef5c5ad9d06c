// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bpqctl.h"

static const char usage[] = "list [--json]";

/* Load every queue; queues destroyed meanwhile are left out. */
int load_all(const char *cmd, struct queue_snap **out, int *nr)
{
	unsigned int *idx;
	int n, i, ret, status = EXIT_OK;
	struct queue_snap *s;

	*out = NULL;
	*nr = 0;
	n = bpq_list(NULL, 0);
	if (n < 0) {
		err_msg("%s: %s: %s", cmd, BPQ_SYSFS_CLASS, strerror(-n));
		return EXIT_FAIL;
	}
	idx = calloc(n + 1, sizeof(*idx));
	s = calloc(n + 1, sizeof(*s));
	if (!idx || !s) {
		err_msg("%s: %s", cmd, strerror(ENOMEM));
		free(idx);
		free(s);
		return EXIT_FAIL;
	}
	/* a queue created meanwhile is left for the next call */
	ret = bpq_list(idx, n);
	if (ret < n)
		n = ret < 0 ? 0 : ret;
	for (i = 0; i < n; i++) {
		ret = snap_load(idx[i], &s[*nr]);
		if (ret == -ENOENT || ret == -ENODEV || ret == -ENXIO)
			continue;
		if (ret < 0) {
			err_msg("%s: bpq%u: %s", cmd, idx[i], strerror(-ret));
			status = EXIT_FAIL;
			continue;
		}
		(*nr)++;
	}
	free(idx);
	*out = s;
	return status;
}

int list_main(int argc, char **argv)
{
	struct queue_snap *s;
	int i, n, json = 0, status;

	for (i = 1; i < argc; i++) {
		if (is_help(argv[i]))
			return print_usage(usage);
		else if (!strcmp(argv[i], "--json") || !strcmp(argv[i], "-j"))
			json = 1;
		else
			return usage_fail(usage, "list: unexpected '%s'",
					  argv[i]);
	}
	status = load_all("list", &s, &n);
	print_list(stdout, s, n, json);
	free(s);
	return status;
}
