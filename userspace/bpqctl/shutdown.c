// SPDX-License-Identifier: GPL-2.0
/*
 * shutdown Q: end the queue's stream (complete it, fail it with an errno,
 * cancel it) or open it again. Each opens the queue as that side would:
 * for writing to complete or fail, for reading to cancel (so that the
 * permissions of the device decide who may), for ioctls only to reopen (so
 * that closing it hangs nothing up).
 */
#include <string.h>
#include <unistd.h>

#include "bpqctl.h"

static const char usage[] =
	"shutdown Q [--error ERRNO | --cancel [--discard] | --reopen]";

int shutdown_main(int argc, char **argv)
{
	unsigned int flags = BPQ_SHUTDOWN_COMPLETE;
	const char *q = NULL, *errarg = NULL;
	int i, fd, ret, error = 0, open_flags, discard = 0, kinds = 0;
	char desc[64];

	for (i = 1; i < argc; i++) {
		if (is_help(argv[i]))
			return print_usage(usage);
		if (!strcmp(argv[i], "--error") || !strcmp(argv[i], "-e")) {
			if (i + 1 == argc)
				return usage_fail(usage,
						  "shutdown: %s needs an errno",
						  argv[i]);
			errarg = argv[++i];
			error = errno_parse(errarg);
			if (error < 0)
				return usage_fail(usage,
						  "shutdown: bad errno '%s'",
						  errarg);
			flags = BPQ_SHUTDOWN_FAIL;
			kinds++;
		} else if (!strcmp(argv[i], "--cancel")) {
			flags = BPQ_SHUTDOWN_CANCEL;
			kinds++;
		} else if (!strcmp(argv[i], "--discard")) {
			discard = 1;
		} else if (!strcmp(argv[i], "--reopen")) {
			flags = BPQ_SHUTDOWN_REOPEN;
			kinds++;
		} else if (argv[i][0] == '-' || q) {
			return usage_fail(usage, "shutdown: unexpected '%s'",
					  argv[i]);
		} else {
			q = argv[i];
		}
	}
	if (!q)
		return usage_fail(usage, "shutdown: no queue given");
	if (kinds > 1)
		return usage_fail(usage, "shutdown: only one of --error, "
				  "--cancel and --reopen");
	if (discard && flags != BPQ_SHUTDOWN_CANCEL)
		return usage_fail(usage, "shutdown: --discard needs --cancel");
	if (discard)
		flags |= BPQ_SHUTDOWN_DISCARD;

	if (flags & (BPQ_SHUTDOWN_COMPLETE | BPQ_SHUTDOWN_FAIL))
		open_flags = O_WRONLY | O_NONBLOCK;
	else if (flags & BPQ_SHUTDOWN_CANCEL)
		open_flags = O_RDONLY | O_NONBLOCK;
	else
		open_flags = O_CONTROL;
	if (errarg)
		snprintf(desc, sizeof(desc), " --error %s", errarg);
	else
		snprintf(desc, sizeof(desc), "%s%s",
			 flags & BPQ_SHUTDOWN_CANCEL ? " --cancel" :
			 flags & BPQ_SHUTDOWN_REOPEN ? " --reopen" : "",
			 discard ? " --discard" : "");

	fd = open_queue("shutdown", q, open_flags, NULL);
	if (fd < 0)
		return EXIT_FAIL;
	ret = bpq_shutdown(fd, flags, error);
	close(fd);
	if (ret < 0) {
		err_msg("shutdown %s%s: %s", q, desc, strerror(-ret));
		return EXIT_FAIL;
	}
	if (discard)
		printf("%d\n", ret);
	return EXIT_OK;
}
