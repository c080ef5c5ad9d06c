// SPDX-License-Identifier: GPL-2.0
#include <string.h>

#include "bpqctl.h"

static const char usage[] = "destroy Q";

int destroy_main(int argc, char **argv)
{
	int index, ret;

	if (wants_help(argc, argv))
		return print_usage(usage);
	if (argc != 2)
		return usage_fail(usage, "destroy: %s",
				  argc < 2 ? "no queue given" : "too many arguments");
	index = bpq_lookup(argv[1]);
	if (index < 0) {
		err_msg("destroy %s: %s", argv[1], strerror(-index));
		return EXIT_FAIL;
	}
	ret = bpq_destroy(index);
	if (ret < 0) {
		err_msg("destroy %s: %s", argv[1], strerror(-ret));
		return EXIT_FAIL;
	}
	return EXIT_OK;
}
