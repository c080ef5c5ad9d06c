// SPDX-License-Identifier: GPL-2.0
#include <string.h>
#include <unistd.h>

#include "bpqctl.h"

static const char usage[] = "grant Q N";

int grant_main(int argc, char **argv)
{
	uint64_t n;
	int fd, ret;

	if (wants_help(argc, argv))
		return print_usage(usage);
	if (argc != 3)
		return usage_fail(usage, "grant: expected a queue and a number");
	if (parse_u64(argv[2], UINT64_MAX, &n))
		return usage_fail(usage, "grant: bad number of credits '%s'",
				  argv[2]);
	fd = open_queue("grant", argv[1], O_QUERY, NULL);
	if (fd < 0)
		return EXIT_FAIL;
	ret = bpq_grant(fd, n);
	close(fd);
	if (ret < 0) {
		err_msg("grant %s %s: %s", argv[1], argv[2], strerror(-ret));
		return EXIT_FAIL;
	}
	return EXIT_OK;
}
