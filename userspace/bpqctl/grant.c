// SPDX-License-Identifier: GPL-2.0
/*
 * grant Q N: add N credits to a credit queue's balance; =N sets the
 * balance (0 too), -N takes N away (down to 0).
 */
#include <string.h>
#include <unistd.h>

#include "bpqctl.h"

static const char usage[] = "grant Q N|=N|-N";

int grant_main(int argc, char **argv)
{
	const char *num;
	unsigned int flags = 0;
	uint64_t n;
	int fd, ret;

	if (wants_help(argc, argv))
		return print_usage(usage);
	if (argc != 3)
		return usage_fail(usage, "grant: expected a queue and a number");
	num = argv[2];
	if (*num == '=')
		flags = BPQ_GRANT_SET;
	else if (*num == '-')
		flags = BPQ_GRANT_REVOKE;
	if (parse_u64(num + !!flags, UINT64_MAX, &n) ||
	    (!n && flags != BPQ_GRANT_SET))
		return usage_fail(usage, "grant: bad number of credits '%s'",
				  argv[2]);
	fd = open_queue("grant", argv[1], O_QUERY, NULL);
	if (fd < 0)
		return EXIT_FAIL;
	ret = bpq_grant_flags(fd, flags, n);
	close(fd);
	if (ret < 0) {
		err_msg("grant %s %s: %s", argv[1], argv[2], strerror(-ret));
		return EXIT_FAIL;
	}
	return EXIT_OK;
}
