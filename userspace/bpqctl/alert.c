// SPDX-License-Identifier: GPL-2.0
/*
 * alert Q METRIC THRESHOLD/WINDOW [--timeout T]: put a trigger on a file
 * of the queue and wait for it to fire, as a monitor of /proc/pressure/
 * does. Exit 0 when it fired, 1 on the timeout (or an error).
 *
 * METRIC: some, full (pressure_stall), head_age: THRESHOLD a time, a bare
 * number in µs as PSI's; drops, timeouts: a count; utilization: a
 * percent. WINDOW and T: times, a bare number in ms.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bpqctl.h"

static const char usage[] =
	"alert Q some|full|drops|timeouts|head_age|utilization "
	"THRESHOLD/WINDOW [--timeout T]";

/* A time: N, Nus, Nms or Ns; a bare N in units of @bare_us. In µs. */
static int parse_time_us(const char *s, uint64_t bare_us, uint64_t *us)
{
	static const struct { const char *suffix; uint64_t us; } units[] = {
		{ "us", 1 }, { "ms", 1000 }, { "s", 1000000 },
	};
	unsigned long long v;
	uint64_t mult = bare_us;
	unsigned int i;
	char *end;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -EINVAL;
	if (*end) {
		for (i = 0; i < sizeof(units) / sizeof(units[0]); i++)
			if (!strcmp(end, units[i].suffix))
				break;
		if (i == sizeof(units) / sizeof(units[0]))
			return -EINVAL;
		mult = units[i].us;
	}
	if (v > UINT64_MAX / mult)
		return -EINVAL;
	*us = v * mult;
	return 0;
}

static int parse_threshold(int metric, const char *s, uint64_t *out)
{
	char buf[32];
	size_t len;

	switch (metric) {
	case BPQ_TRIGGER_STALL_SOME:
	case BPQ_TRIGGER_STALL_FULL:
	case BPQ_TRIGGER_HEAD_AGE:
		return parse_time_us(s, 1, out);
	case BPQ_TRIGGER_UTILIZATION:
		len = strlen(s);
		if (len && len < sizeof(buf) && s[len - 1] == '%') {
			memcpy(buf, s, len - 1);
			buf[len - 1] = '\0';
			s = buf;
		}
		return parse_u64(s, 100, out);
	default:
		return parse_u64(s, UINT64_MAX, out);
	}
}

int alert_main(int argc, char **argv)
{
	uint64_t threshold, window_us, timeout_us = 0;
	int metric, fd, ret, timeout_ms = -1;
	char *spec, *slash;

	if (wants_help(argc, argv))
		return print_usage(usage);
	if (argc == 6 && !strcmp(argv[4], "--timeout")) {
		if (parse_time_us(argv[5], 1000, &timeout_us) ||
		    timeout_us / 1000 > INT32_MAX)
			return usage_fail(usage, "alert: bad timeout '%s'",
					  argv[5]);
		timeout_ms = timeout_us / 1000;
	} else if (argc != 4) {
		return usage_fail(usage, "alert: expected a queue, a metric "
				  "and THRESHOLD/WINDOW");
	}
	metric = bpq_trigger_parse(argv[2]);
	if (metric <= BPQ_TRIGGER_NONE)
		return usage_fail(usage, "alert: unknown metric '%s'", argv[2]);
	spec = strdup(argv[3]);
	if (!spec)
		return usage_fail(usage, "alert: out of memory");
	slash = strchr(spec, '/');
	if (slash)
		*slash++ = '\0';
	if (!slash || parse_threshold(metric, spec, &threshold) ||
	    parse_time_us(slash, 1000, &window_us) ||
	    window_us / 1000 > UINT32_MAX) {
		free(spec);
		return usage_fail(usage, "alert: bad THRESHOLD/WINDOW '%s'",
				  argv[3]);
	}
	free(spec);

	fd = open_queue("alert", argv[1], O_QUERY, NULL);
	if (fd < 0)
		return EXIT_FAIL;
	ret = bpq_trigger(fd, metric, threshold, window_us / 1000);
	if (ret < 0) {
		err_msg("alert %s %s %s: %s%s", argv[1], argv[2], argv[3],
			strerror(-ret), ret == -EINVAL ?
			" (the window is 500ms ... 10s; a stall within it, "
			"a utilization at most 100)" : "");
		close(fd);
		return EXIT_FAIL;
	}
	ret = bpq_trigger_wait(fd, timeout_ms);
	close(fd);
	if (ret < 0) {
		err_msg("alert %s: %s", argv[1], strerror(-ret));
		return EXIT_FAIL;
	}
	if (!ret) {
		err_msg("alert %s %s %s: timed out", argv[1], argv[2], argv[3]);
		return EXIT_FAIL;
	}
	printf("%s: %s %s\n", argv[1], argv[2], argv[3]);
	return EXIT_OK;
}
