// SPDX-License-Identifier: GPL-2.0
/*
 * bpqctl: inspect and configure bpq queues.
 */
#include <string.h>

#include "bpqctl.h"

const char *prog = "bpqctl";

static const struct {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *help;
} subcommands[] = {
	{ "list", list_main, "one line per queue" },
	{ "show", show_main, "settings and state of a queue" },
	{ "set", set_main, "change settings of a queue, all at once" },
	{ "create", create_main, "create a queue (and set it up)" },
	{ "destroy", destroy_main, "destroy a queue" },
	{ "grant", grant_main, "grant credits to a credit queue" },
	{ "flush", flush_main, "discard every queued message" },
	{ "stats", stats_main, "counters, as text, JSON or Prometheus" },
	{ "watch", watch_main, "a live view of the queues" },
	{ "reset", reset_main, "zero the counters of a queue" },
	{ "apply", apply_main, "create and configure queues from a YAML file" },
	{ "alerts", alerts_main, "Prometheus alerting rules from apply's file" },
	{ "shutdown", shutdown_main, "end a queue's stream, or open it again" },
	{ "hold", hold_main, "hold a queue's writers back, or let them go" },
	{ "link", link_main, "let a queue's pressure hold another's writers" },
	{ "unlink", unlink_main, "undo a link" },
	{ "alert", alert_main, "wait for a metric to pass a threshold" },
	{ "group", group_main, "groups of queues: create, join, show" },
	{ "cluster", cluster_main, "the cluster as bpqd sees it" },
};

#define NR_SUBCOMMANDS (sizeof(subcommands) / sizeof(subcommands[0]))

static void show_usage(FILE *f)
{
	unsigned int i;

	fprintf(f, "Usage: %s <cmd> [<args>]\n\n"
		"Available subcommands:\n", prog);
	for (i = 0; i < NR_SUBCOMMANDS; i++)
		fprintf(f, "  %-8s %s\n", subcommands[i].name,
			subcommands[i].help);
	fprintf(f, "\nQ is bpqN, N, a queue name or a device path.\n"
		"'%s <cmd> --help' describes a subcommand.\n", prog);
}

int main(int argc, char **argv)
{
	unsigned int i;

	if (argc < 2) {
		show_usage(stderr);
		return EXIT_USAGE;
	}
	if (is_help(argv[1]) || !strcmp(argv[1], "help")) {
		show_usage(stdout);
		return EXIT_OK;
	}
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V")) {
		printf("bpqctl %s\n", BPQCTL_VERSION);
		return EXIT_OK;
	}
	for (i = 0; i < NR_SUBCOMMANDS; i++)
		if (!strcmp(argv[1], subcommands[i].name))
			return subcommands[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "%s: invalid subcommand '%s'\n", prog, argv[1]);
	show_usage(stderr);
	return EXIT_USAGE;
}
