// SPDX-License-Identifier: GPL-2.0
#include <string.h>
#include <unistd.h>

#include "bpqctl.h"

static const char usage[] = "set Q key=value...";

/*
 * Parse key=value arguments into c, and write them into desc as given, for
 * the error message. Returns 0 or EXIT_USAGE (after saying why).
 */
int parse_changes(const char *cmd, const char *usage, int argc, char **argv,
		  struct config_change *c, char *desc, size_t desclen)
{
	size_t used = 0;
	char key[64];
	const char *eq;
	int i, idx;

	memset(c, 0, sizeof(*c));
	desc[0] = '\0';
	for (i = 0; i < argc; i++) {
		eq = strchr(argv[i], '=');
		if (!eq || eq == argv[i] || (size_t)(eq - argv[i]) >= sizeof(key))
			return usage_fail(usage, "%s: expected key=value, not '%s'",
					  cmd, argv[i]);
		memcpy(key, argv[i], eq - argv[i]);
		key[eq - argv[i]] = '\0';
		idx = setting_find(key);
		if (idx < 0)
			return usage_fail(usage, "%s: unknown key '%s'", cmd,
					  key);
		if (setting_parse(idx, eq + 1, &c->val))
			return usage_fail(usage, "%s: bad value for '%s': '%s'",
					  cmd, key, eq + 1);
		c->have |= 1U << idx;
		if (used < desclen)
			used += snprintf(desc + used, desclen - used, " %s",
					 argv[i]);
	}
	return 0;
}

/* Read, modify, write: every change lands in one BPQ_IOC_SET_CONFIG. */
int set_changes(int fd, const struct config_change *c)
{
	struct bpq_config cfg;
	int ret;

	ret = bpq_get_config(fd, &cfg);
	if (ret < 0)
		return ret;
	change_apply(c, &cfg);
	return bpq_set_config(fd, &cfg);
}

int set_main(int argc, char **argv)
{
	struct config_change c;
	char desc[1024];
	int i, fd, ret;

	for (i = 1; i < argc; i++)
		if (is_help(argv[i]))
			return print_usage(usage);
	if (argc < 3)
		return usage_fail(usage, "set: %s",
				  argc < 2 ? "no queue given" : "no setting given");
	ret = parse_changes("set", usage, argc - 2, argv + 2, &c, desc,
			    sizeof(desc));
	if (ret)
		return ret;
	fd = open_queue("set", argv[1], O_CONTROL, NULL);
	if (fd < 0)
		return EXIT_FAIL;
	ret = set_changes(fd, &c);
	close(fd);
	if (ret < 0) {
		err_msg("set %s%s: %s", argv[1], desc, strerror(-ret));
		return EXIT_FAIL;
	}
	return EXIT_OK;
}
