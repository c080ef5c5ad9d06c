// SPDX-License-Identifier: GPL-2.0
/*
 * link A B, unlink A B: while B is under pressure, A is held (bpq(4),
 * "Links"): the pressure of a pipeline's slowest stage travels to its
 * source at once. Through the control device, as create and destroy.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "bpqctl.h"

static int link_cmd(int argc, char **argv, int add)
{
	const char *cmd = add ? "link" : "unlink";
	char usage[64];
	int up, down, ret;

	snprintf(usage, sizeof(usage), "%s UPSTREAM DOWNSTREAM", cmd);
	if (wants_help(argc, argv))
		return print_usage(usage);
	if (argc != 3)
		return usage_fail(usage, "%s: %s", cmd,
				  argc < 3 ? "two queues needed" :
					     "too many arguments");
	up = bpq_lookup(argv[1]);
	down = up < 0 ? up : bpq_lookup(argv[2]);
	if (down < 0) {
		err_msg("%s %s: %s", cmd, argv[up < 0 ? 1 : 2],
			strerror(-down));
		return EXIT_FAIL;
	}
	ret = add ? bpq_link(up, down) : bpq_unlink(up, down);
	if (ret < 0) {
		err_msg("%s %s %s: %s", cmd, argv[1], argv[2],
			ret == -ELOOP ? "it would close a loop" :
			ret == -EEXIST ? "already linked" :
			ret == -ENOENT && !add ? "not linked" :
			strerror(-ret));
		return EXIT_FAIL;
	}
	return EXIT_OK;
}

int link_main(int argc, char **argv)
{
	return link_cmd(argc, argv, 1);
}

int unlink_main(int argc, char **argv)
{
	return link_cmd(argc, argv, 0);
}
