// SPDX-License-Identifier: GPL-2.0
/*
 * alerts FILE --prometheus-rules OUT: Prometheus alerting rules from the
 * monitoring sections of apply's FILE, on the metrics that "stats
 * --prometheus" exports. A group for each queue with alert_thresholds,
 * evaluated every metrics_interval if the queue has one; a rule for each
 * threshold, which selects the queue by its label "queue" and fires once
 * its condition has held for a minute:
 *
 *   queue_utilization   bpq_queue_utilization at or above it
 *   queue_depth         bpq_queue_depth at or above it
 *   drop_rate           messages refused (drop-newest) or evicted
 *                       (drop-oldest) over the messages offered (accepted
 *                       or refused), at or above it over the window
 *   blocked_time        the time with a writer blocked (pressure stall
 *                       "some"), per minute over the window, at or above it
 *   head_age            bpq_oldest_message_age_seconds at or above it
 *
 * The window of the rates is a minute, or four metrics intervals where
 * that is longer, so that it always holds samples enough.
 */
#include <string.h>

#include "bpqctl.h"

static const char usage[] = "alerts FILE --prometheus-rules OUT";

static void rule_expr(FILE *f, const struct apply_queue *q, int a,
		      const char *w)
{
	const char *n = q->name;
	uint64_t t = q->threshold[a];

	switch (a) {
	case ALERT_UTILIZATION:
		fprintf(f, "bpq_queue_utilization{queue=\"%s\"} >= %g", n,
			t / 100.0);
		break;
	case ALERT_DEPTH:
		fprintf(f, "bpq_queue_depth{queue=\"%s\"} >= %llu", n,
			(unsigned long long)t);
		break;
	case ALERT_DROP_RATE:
		/* dropped over offered: accepted, or refused */
		fprintf(f, "sum by (queue) (rate(bpq_messages_dropped_total{queue=\"%s\",reason=~\"newest|oldest\"}[%s])) / ",
			n, w);
		fprintf(f, "(sum by (queue) (rate(bpq_enqueued_total{queue=\"%s\"}[%s])) + ",
			n, w);
		fprintf(f, "sum by (queue) (rate(bpq_messages_dropped_total{queue=\"%s\",reason=\"newest\"}[%s]))) >= %g",
			n, w, t / 1e6);
		break;
	case ALERT_BLOCKED:
		fprintf(f, "rate(bpq_pressure_stall_seconds_total{queue=\"%s\",kind=\"some\"}[%s]) * 60 >= %g",
			n, w, t / 1e3);
		break;
	case ALERT_HEAD_AGE:
		fprintf(f, "bpq_oldest_message_age_seconds{queue=\"%s\"} >= %g",
			n, t / 1e3);
		break;
	}
}

static const struct {
	const char *alert, *summary;
} rules[NR_ALERTS] = {
	[ALERT_UTILIZATION] = { "BpqQueueUtilizationHigh",
		"bpq queue {{ $labels.queue }} is {{ $value | humanizePercentage }} full" },
	[ALERT_DEPTH] = { "BpqQueueDepthHigh",
		"bpq queue {{ $labels.queue }} holds {{ $value }} messages" },
	[ALERT_DROP_RATE] = { "BpqDropRateHigh",
		"bpq queue {{ $labels.queue }} drops {{ $value | humanizePercentage }} of the messages offered" },
	[ALERT_BLOCKED] = { "BpqWritersBlocked",
		"writers of bpq queue {{ $labels.queue }} are blocked {{ $value | humanize }}s a minute" },
	[ALERT_HEAD_AGE] = { "BpqConsumerLag",
		"the oldest message of bpq queue {{ $labels.queue }} has waited {{ $value | humanizeDuration }}" },
};

static void rule_description(FILE *f, const struct apply_queue *q, int a,
			     const char *w)
{
	uint64_t t = q->threshold[a];

	switch (a) {
	case ALERT_UTILIZATION:
		fprintf(f, "At or above %llu%% of its capacity for a minute.",
			(unsigned long long)t);
		break;
	case ALERT_DEPTH:
		fprintf(f, "At or above %llu messages for a minute.",
			(unsigned long long)t);
		break;
	case ALERT_DROP_RATE:
		fprintf(f, "Messages refused or evicted over those offered, in the last %s, at or above %g%% for a minute.",
			w, t / 1e4);
		break;
	case ALERT_BLOCKED:
		fprintf(f, "A writer blocked at least %gs a minute, in the last %s, for a minute.",
			t / 1e3, w);
		break;
	case ALERT_HEAD_AGE:
		fprintf(f, "Consumer lag at or above %gs for a minute.",
			t / 1e3);
		break;
	}
}

/* Durations as Prometheus writes them: 1m, 10s, 1500ms */
static void duration(char *buf, size_t len, uint64_t ms)
{
	if (ms % 1000)
		snprintf(buf, len, "%llums", (unsigned long long)ms);
	else if (ms % 60000)
		snprintf(buf, len, "%llus", (unsigned long long)ms / 1000);
	else
		snprintf(buf, len, "%llum", (unsigned long long)ms / 60000);
}

/*
 * Rules files are YAML: the expressions and texts go in single quotes,
 * and hold none (queue names are letters, digits, '_', '.' and '-').
 */
void print_alert_rules(FILE *f, const struct apply_file *af)
{
	const struct apply_queue *q;
	char w[32], interval[32];
	int a, groups = 0;

	for (q = af->queues; q < af->queues + af->nr; q++) {
		if (!q->alerts)
			continue;
		if (!groups++)
			fputs("groups:\n", f);
		fprintf(f, "  - name: bpq-%s\n", q->name);
		if (q->metrics_interval_ms) {
			duration(interval, sizeof(interval),
				 q->metrics_interval_ms);
			fprintf(f, "    interval: %s\n", interval);
		}
		duration(w, sizeof(w), q->metrics_interval_ms > 15000 ?
			 (q->metrics_interval_ms * 4 + 999) / 1000 * 1000 :
			 60000);
		fputs("    rules:\n", f);
		for (a = 0; a < NR_ALERTS; a++) {
			if (!(q->alerts & (1U << a)))
				continue;
			fprintf(f, "      - alert: %s\n        expr: '",
				rules[a].alert);
			rule_expr(f, q, a, w);
			fprintf(f, "'\n        for: 1m\n        labels:\n"
				"          severity: warning\n"
				"        annotations:\n"
				"          summary: '%s'\n"
				"          description: '", rules[a].summary);
			rule_description(f, q, a, w);
			fputs("'\n", f);
		}
	}
	if (!groups)
		fputs("groups: []\n", f);
}

static void print_rules(FILE *f, const void *af)
{
	print_alert_rules(f, af);
}

int alerts_main(int argc, char **argv)
{
	const char *file = NULL, *out = NULL;
	struct apply_file af;
	int i, ret = EXIT_OK;

	for (i = 1; i < argc; i++) {
		if (is_help(argv[i]))
			return print_usage(usage);
		if (!strcmp(argv[i], "--prometheus-rules")) {
			if (i + 1 == argc || !argv[i + 1][0])
				return usage_fail(usage,
						  "alerts: %s needs a file name",
						  argv[i]);
			out = argv[++i];
		} else if ((argv[i][0] == '-' && argv[i][1]) || file) {
			return usage_fail(usage, "alerts: unexpected '%s'",
					  argv[i]);
		} else {
			file = argv[i];
		}
	}
	if (!file)
		return usage_fail(usage, "alerts: no file given");
	if (!out)
		return usage_fail(usage, "alerts: --prometheus-rules OUT is needed");
	if (apply_load("alerts", file, &af))
		return EXIT_FAIL;
	if (strcmp(out, "-")) {
		ret = replace_file("alerts", out, print_rules, &af);
	} else {
		print_alert_rules(stdout, &af);
		if (fflush(stdout) || ferror(stdout)) {
			err_msg("alerts: standard output: write error");
			ret = EXIT_FAIL;
		}
	}
	apply_free(&af);
	return ret;
}
