// SPDX-License-Identifier: GPL-2.0
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "bpqctl.h"

static const char usage[] = "create NAME [key=value...]";

int create_main(int argc, char **argv)
{
	struct config_change c;
	unsigned int index;
	char desc[1024], path[32];
	int i, fd, ret;

	for (i = 1; i < argc; i++)
		if (is_help(argv[i]))
			return print_usage(usage);
	if (argc < 2)
		return usage_fail(usage, "create: no name given");
	ret = parse_changes("create", usage, argc - 2, argv + 2, &c, desc,
			    sizeof(desc));
	if (ret)
		return ret;
	ret = bpq_create(argv[1], &index);
	if (ret < 0) {
		err_msg("create %s: %s", argv[1], strerror(-ret));
		return EXIT_FAIL;
	}
	if (c.have) {
		snprintf(path, sizeof(path), "/dev/bpq%u", index);
		fd = queue_open(path, O_CONTROL);
		ret = fd < 0 ? fd : set_changes(fd, &c);
		if (fd >= 0)
			close(fd);
		if (ret < 0) {
			/* all or nothing: do not leave a half-made queue */
			err_msg("create %s%s: %s", argv[1], desc,
				strerror(-ret));
			bpq_destroy(index);
			return EXIT_FAIL;
		}
	}
	printf("bpq%u\n", index);
	return EXIT_OK;
}
