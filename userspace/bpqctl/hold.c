// SPDX-License-Identifier: GPL-2.0
/*
 * hold Q [+REASON|-REASON]...: set or clear holds on a queue, through its
 * sysfs file hold (root only); with none, say which are in force and why
 * the queue is under pressure. "+admin" is a pause, "-admin" its resume.
 */
#include <string.h>
#include <unistd.h>

#include "bpqctl.h"

static const char usage[] =
	"hold Q [+admin|-admin|+cluster|-cluster|+system|-system]...";

/* The names of the bits of @holds, or "none" */
static void print_holds(const char *what, unsigned int holds, int watermark)
{
	unsigned int bit;
	int any = 0;

	printf("%s:", what);
	if (watermark) {
		printf(" watermark");
		any = 1;
	}
	for (bit = 1; bit <= BPQ_HOLD_GROUP; bit <<= 1)
		if (holds & bit) {
			printf(" %s", bpq_hold_name(bit));
			any = 1;
		}
	printf("%s\n", any ? "" : " none");
}

int hold_main(int argc, char **argv)
{
	struct bpq_stats st;
	int i, fd, idx, ret, hold;

	if (wants_help(argc, argv))
		return print_usage(usage);
	if (argc < 2)
		return usage_fail(usage, "hold: no queue given");
	for (i = 2; i < argc; i++) {
		hold = (argv[i][0] == '+' || argv[i][0] == '-') ?
		       bpq_hold_parse(argv[i] + 1) : -1;
		if (hold < 0 || !(hold & BPQ_HOLD_USER))
			return usage_fail(usage, "hold: bad hold '%s'",
					  argv[i]);
	}
	fd = open_queue("hold", argv[1], O_QUERY, &idx);
	if (fd < 0)
		return EXIT_FAIL;
	for (i = 2; i < argc; i++) {
		ret = bpq_hold(idx, bpq_hold_parse(argv[i] + 1),
			       argv[i][0] == '+');
		if (ret < 0) {
			err_msg("hold %s %s: %s", argv[1], argv[i],
				strerror(-ret));
			close(fd);
			return EXIT_FAIL;
		}
	}
	ret = bpq_get_stats(fd, &st);
	close(fd);
	if (ret < 0) {
		err_msg("hold %s: %s", argv[1], strerror(-ret));
		return EXIT_FAIL;
	}
	print_holds("hold", st.holds, 0);
	print_holds("pressure_source", st.holds, st.watermark);
	return EXIT_OK;
}
