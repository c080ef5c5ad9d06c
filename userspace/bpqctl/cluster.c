// SPDX-License-Identifier: GPL-2.0
/*
 * cluster [--json] [--status FILE]: the cluster as this machine's bpqd
 * sees it (nodes, their load and holds, the budget's shares, this node's
 * queues), from the files bpqd rewrites at every report: FILE (JSON,
 * default /run/bpqd/status.json) and its text twin (FILE with .txt for
 * .json). Files older than a minute are from a bpqd that no longer runs.
 */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "bpqctl.h"

static const char usage[] = "cluster [--json] [--status FILE]";

#define STATUS_DEFAULT	"/run/bpqd/status.json"
#define STALE_S		60

int cluster_main(int argc, char **argv)
{
	const char *json_path = STATUS_DEFAULT;
	char path[4096], buf[65536];
	struct stat st;
	size_t n;
	int i, json = 0, ret;

	if (wants_help(argc, argv))
		return print_usage(usage);
	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json")) {
			json = 1;
		} else if (!strcmp(argv[i], "--status") && i + 1 < argc) {
			json_path = argv[++i];
		} else {
			return usage_fail(usage, "unexpected argument '%s'",
					  argv[i]);
		}
	}
	n = strlen(json_path);
	if (json)
		snprintf(path, sizeof(path), "%s", json_path);
	else if (n > 5 && !strcmp(json_path + n - 5, ".json"))
		snprintf(path, sizeof(path), "%.*s.txt", (int)(n - 5),
			 json_path);
	else
		snprintf(path, sizeof(path), "%s.txt", json_path);
	if (stat(path, &st)) {
		err_msg("cluster: %s: %s%s", path, strerror(errno),
			errno == ENOENT ? " (is bpqd running? bpqd(8))" : "");
		return EXIT_FAIL;
	}
	ret = read_text(path, buf, sizeof(buf));
	if (ret < 0) {
		err_msg("cluster: %s: %s", path, strerror(-ret));
		return EXIT_FAIL;
	}
	puts(buf);
	if (time(NULL) - st.st_mtime > STALE_S) {
		err_msg("cluster: %s is %lld s old: bpqd is not running", path,
			(long long)(time(NULL) - st.st_mtime));
		return EXIT_FAIL;
	}
	return EXIT_OK;
}
