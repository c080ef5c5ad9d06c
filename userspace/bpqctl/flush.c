// SPDX-License-Identifier: GPL-2.0
#include <string.h>
#include <unistd.h>

#include "bpqctl.h"

static const char usage[] = "flush Q";

int flush_main(int argc, char **argv)
{
	int fd, ret;

	if (wants_help(argc, argv))
		return print_usage(usage);
	if (argc != 2)
		return usage_fail(usage, "flush: %s",
				  argc < 2 ? "no queue given" : "too many arguments");
	fd = open_queue("flush", argv[1], O_CONTROL, NULL);
	if (fd < 0)
		return EXIT_FAIL;
	ret = bpq_flush(fd);
	close(fd);
	if (ret < 0) {
		err_msg("flush %s: %s", argv[1], strerror(-ret));
		return EXIT_FAIL;
	}
	printf("%d\n", ret);
	return EXIT_OK;
}
