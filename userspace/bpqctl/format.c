// SPDX-License-Identifier: GPL-2.0
/*
 * Output of list, show and stats: text for people, JSON for programs (one
 * document per call, like "ip -j"), and the Prometheus text exposition
 * format. Everything here works on snapshots only, so that the host tests
 * can feed it fake ones.
 */
#include <inttypes.h>
#include <string.h>

#include "bpqctl.h"

const char *snap_strategy(const struct queue_snap *s)
{
	const char *name = bpq_strategy_name(s->cfg.strategy);

	return name ? name : "unknown";
}

/* The stream's state as the sysfs file "stream" reads: "failed EIO". */
const char *snap_stream(const struct queue_snap *s, char *buf, size_t len)
{
	const char *name = bpq_stream_name(s->st.stream);
	char num[16];

	if (!name)
		return "unknown";
	if (s->st.stream != BPQ_STREAM_FAILED)
		return name;
	snprintf(buf, len, "%s %s", name,
		 errno_name(s->st.stream_error, num, sizeof(num)));
	return buf;
}

void json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = *s;

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

struct field {
	const char *name;
	size_t offset;
	unsigned int width;
};

#define STATE(f) { #f, offsetof(struct bpq_stats, f), \
		   sizeof(((struct bpq_stats *)0)->f) }

static const struct field state_fields[] = {
	STATE(depth_msgs), STATE(depth_bytes), STATE(utilization),
	STATE(pressure), STATE(credits_available), STATE(rate),
	STATE(throughput), STATE(head_age_us), STATE(writers_waiting),
};

static const struct field counter_fields[] = {
	STATE(enqueued_msgs), STATE(enqueued_bytes), STATE(dequeued_msgs),
	STATE(dequeued_bytes), STATE(dropped_newest), STATE(dropped_oldest),
	STATE(flushed), STATE(backpressure_applied), STATE(blocked_ns),
	STATE(throttled_ns), STATE(timeouts), STATE(credit_starvation),
	STATE(credit_starved_ns), STATE(acked_msgs), STATE(nacked),
	STATE(stale_acks), STATE(partial_reads), STATE(held_ns),
	STATE(stall_some_us), STATE(stall_full_us),
};

/* The window's state (show) and counters (stats); window_state apart. */
static const struct field window_state_fields[] = {
	STATE(cwnd), STATE(ssthresh), STATE(inflight),
};

static const struct field window_counter_fields[] = {
	STATE(congestion_events), STATE(ack_timeouts), STATE(cwnd_limited_ns),
};

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static uint64_t field_get(const struct field *fl, const struct bpq_stats *st)
{
	const char *p = (const char *)st + fl->offset;
	uint32_t v32;
	uint64_t v64;

	if (fl->width == 8) {
		memcpy(&v64, p, 8);
		return v64;
	}
	memcpy(&v32, p, 4);
	return v32;
}

/*
 * The stream's fields after the state of show and the counters of stats:
 * "stream" the state's name, "stream_error" the errno's name of a failed
 * stream (JSON null otherwise).
 */
static void json_stream(FILE *f, const struct queue_snap *s)
{
	const char *name = bpq_stream_name(s->st.stream);
	char num[16];

	fputs(",\"stream\":", f);
	json_string(f, name ? name : "unknown");
	fputs(",\"stream_error\":", f);
	if (s->st.stream == BPQ_STREAM_FAILED)
		json_string(f, errno_name(s->st.stream_error, num, sizeof(num)));
	else
		fputs("null", f);
	fprintf(f, ",\"stream_epoch\":%" PRIu64 ",\"readers\":%u"
		",\"writers\":%u", (uint64_t)s->st.stream_epoch,
		s->st.readers, s->st.writers);
}

static int snap_window(const struct queue_snap *s)
{
	return s->cfg.strategy == BPQ_STRATEGY_WINDOW;
}

/* The window's state by name: "slow-start"; "unknown" for a stray value. */
static const char *snap_window_state(const struct queue_snap *s)
{
	const char *name = bpq_window_state_name(s->st.window_state);

	return name ? name : "unknown";
}

static void text_stream(FILE *f, const struct queue_snap *s)
{
	char buf[48];

	fprintf(f, "  stream: %s\n  stream_epoch: %" PRIu64 "\n"
		"  readers: %u\n  writers: %u\n", snap_stream(s, buf, sizeof(buf)),
		(uint64_t)s->st.stream_epoch, s->st.readers, s->st.writers);
}

/*
 * "hold" (the holds in force) and "pressure_source" (the same, with
 * "watermark" first when the watermarks put the queue under pressure):
 * names separated by spaces, or none; in JSON, arrays of names.
 */
static void reasons(FILE *f, const char *key, unsigned int holds, int wm,
		    int json)
{
	const char *name;
	unsigned int bit;
	int n = 0;

	fprintf(f, json ? ",\"%s\":[" : "  %s:", key);
	for (bit = 0; bit <= BPQ_HOLD_GROUP; bit = bit ? bit << 1 : 1) {
		if (bit ? !(holds & bit) : !wm)
			continue;
		name = bit ? bpq_hold_name(bit) : "watermark";
		if (json)
			fprintf(f, "%s\"%s\"", n ? "," : "", name);
		else
			fprintf(f, " %s", name);
		n++;
	}
	fputs(json ? "]" : n ? "\n" : " none\n", f);
}

/* ,"key":[...] of names separated by spaces */
void json_names(FILE *f, const char *key, const char *list)
{
	const char *p = list;
	size_t n;

	fprintf(f, ",\"%s\":[", key);
	while (*p) {
		n = strcspn(p, " ");
		fprintf(f, "%s\"%.*s\"", p == list ? "" : ",", (int)n, p);
		p += n + !!p[n];
	}
	fputc(']', f);
}

/* Names separated by spaces, in text as they are, in JSON an array */
static void names(FILE *f, const char *key, const char *list, int json)
{
	if (!list)
		return;
	if (json)
		json_names(f, key, list);
	else
		fprintf(f, "  %s:%s%s\n", key, *list ? " " : "", list);
}

static void show_holds(FILE *f, const struct queue_snap *s, int json)
{
	reasons(f, "hold", s->st.holds, 0, json);
	reasons(f, "pressure_source", s->st.holds, s->st.watermark, json);
	names(f, "upstream", s->upstream, json);
	names(f, "downstream", s->downstream, json);
	if (!s->group)
		return;
	if (!json) {
		fprintf(f, "  group:%s%s\n", *s->group ? " " : "", s->group);
		return;
	}
	fputs(",\"group\":", f);
	if (*s->group)
		json_string(f, s->group);
	else
		fputs("null", f);
}

static uint64_t bucket_bound_ns(int i)
{
	return i < BPQ_LATENCY_BUCKETS - 1 ? 1ULL << (10 + i) : UINT64_MAX;
}

static void json_fields(FILE *f, const struct field *fl, unsigned int n,
			const struct bpq_stats *st)
{
	unsigned int i;

	for (i = 0; i < n; i++)
		fprintf(f, ",\"%s\":%" PRIu64, fl[i].name, field_get(&fl[i], st));
}

static void text_fields(FILE *f, const struct field *fl, unsigned int n,
			const struct bpq_stats *st)
{
	unsigned int i;

	for (i = 0; i < n; i++)
		fprintf(f, "  %s: %" PRIu64 "\n", fl[i].name, field_get(&fl[i], st));
}

/* A histogram of latency_hist's buckets: JSON, or text without the zeros. */
static void json_hist(FILE *f, const char *name, const uint64_t *hist)
{
	unsigned int i;

	fprintf(f, ",\"%s\":[", name);
	for (i = 0; i < BPQ_LATENCY_BUCKETS; i++)
		fprintf(f, "%s{\"le_ns\":%" PRIu64 ",\"count\":%" PRIu64 "}",
			i ? "," : "", bucket_bound_ns(i), hist[i]);
	fputc(']', f);
}

static void text_hist(FILE *f, const char *name, const uint64_t *hist)
{
	unsigned int i;

	fprintf(f, "  %s:\n", name);
	for (i = 0; i < BPQ_LATENCY_BUCKETS; i++)
		if (hist[i])
			fprintf(f, "    %s%" PRIu64 " ns: %" PRIu64 "\n",
				i < BPQ_LATENCY_BUCKETS - 1 ? "< " : ">= ",
				i < BPQ_LATENCY_BUCKETS - 1 ?
					bucket_bound_ns(i) :
					bucket_bound_ns(i - 1),
				hist[i]);
}

static void json_head(FILE *f, const struct queue_snap *s)
{
	fprintf(f, "{\"device\":\"bpq%u\",\"index\":%u,\"name\":", s->index,
		s->index);
	json_string(f, s->name);
	fprintf(f, ",\"strategy\":");
	json_string(f, snap_strategy(s));
}

/* A stream that is not open shows at the end of its line in list. */
void print_list(FILE *f, const struct queue_snap *s, int n, int json)
{
	char buf[48];
	int i, w;

	if (json) {
		fputc('[', f);
		for (i = 0; i < n; i++) {
			if (i)
				fputc(',', f);
			json_head(f, &s[i]);
			fprintf(f, ",\"depth_msgs\":%" PRIu64
				",\"capacity_msgs\":%u,\"depth_bytes\":%" PRIu64
				",\"capacity_bytes\":%" PRIu64
				",\"utilization\":%u,\"pressure\":%u",
				(uint64_t)s[i].st.depth_msgs,
				s[i].cfg.capacity_msgs,
				(uint64_t)s[i].st.depth_bytes,
				(uint64_t)s[i].cfg.capacity_bytes,
				s[i].st.utilization, s[i].st.pressure);
			json_stream(f, &s[i]);
			fputc('}', f);
		}
		fputs("]\n", f);
		return;
	}
	for (i = 0, w = 12; i < n; i++)
		if ((int)strlen(s[i].name) > w)
			w = strlen(s[i].name);
	for (i = 0; i < n; i++)
		fprintf(f, "bpq%-4u %-*s %-11s %8" PRIu64 "/%-8u %3u%%%s%s%s\n",
			s[i].index, w, s[i].name, snap_strategy(&s[i]),
			(uint64_t)s[i].st.depth_msgs, s[i].cfg.capacity_msgs,
			s[i].st.utilization,
			s[i].st.pressure ? " pressure" : "",
			s[i].st.stream != BPQ_STREAM_OPEN ? " " : "",
			s[i].st.stream != BPQ_STREAM_OPEN ?
				snap_stream(&s[i], buf, sizeof(buf)) : "");
}

/*
 * A setting's value: its name for strategy, hangup and ack_mode, else a
 * number; auto_credit as sysfs has it (0, 1, ack) in text, a number in
 * JSON.
 */
static void show_setting(FILE *f, int idx, const struct queue_snap *s,
			 int json)
{
	const char *name = setting_name(idx, &s->cfg);

	if (json) {
		fprintf(f, ",\"%s\":", settings[idx].name);
		if (name && !settings[idx].json_number)
			json_string(f, name);
		else
			fprintf(f, "%" PRIu64, setting_get(idx, &s->cfg));
	} else if (name) {
		fprintf(f, "  %s: %s\n", settings[idx].name, name);
	} else {
		fprintf(f, "  %s: %" PRIu64 "\n", settings[idx].name,
			setting_get(idx, &s->cfg));
	}
}

/*
 * JSON has the window's fields for every queue, so that its keys do not
 * depend on the strategy; window_state is null but for a window queue.
 */
static void json_window_state(FILE *f, const struct queue_snap *s)
{
	fprintf(f, ",\"unacked\":%" PRIu64, (uint64_t)s->st.unacked);
	json_fields(f, window_state_fields, ARRAY_SIZE(window_state_fields),
		    &s->st);
	fputs(",\"window_state\":", f);
	if (snap_window(s))
		json_string(f, snap_window_state(s));
	else
		fputs("null", f);
}

void print_show(FILE *f, const struct queue_snap *s, int json)
{
	unsigned int i;

	if (json) {
		json_head(f, s);
		for (i = 1; i < nr_settings; i++)
			show_setting(f, i, s, 1);
		json_fields(f, state_fields, ARRAY_SIZE(state_fields), &s->st);
		show_holds(f, s, 1);
		json_window_state(f, s);
		json_stream(f, s);
		fputs("}\n", f);
		return;
	}
	fprintf(f, "queue: bpq%u\n  name: %s\n  strategy: %s\n", s->index,
		s->name, snap_strategy(s));
	for (i = 1; i < nr_settings; i++)
		show_setting(f, i, s, 0);
	text_fields(f, state_fields, ARRAY_SIZE(state_fields), &s->st);
	show_holds(f, s, 0);
	fprintf(f, "  unacked: %" PRIu64 "\n", (uint64_t)s->st.unacked);
	if (snap_window(s)) {
		text_fields(f, window_state_fields,
			    ARRAY_SIZE(window_state_fields), &s->st);
		fprintf(f, "  window_state: %s\n", snap_window_state(s));
	}
	text_stream(f, s);
}

/*
 * The counters, the window's for a window queue (in JSON for every
 * queue), the stream, then the sojourn times (latency_hist) and the
 * processing times (processing_hist: enqueue to acknowledgment).
 */
void print_stats(FILE *f, const struct queue_snap *s, int json)
{
	if (json) {
		json_head(f, s);
		json_fields(f, counter_fields, ARRAY_SIZE(counter_fields),
			    &s->st);
		json_fields(f, window_counter_fields,
			    ARRAY_SIZE(window_counter_fields), &s->st);
		json_stream(f, s);
		json_hist(f, "latency_hist", (const uint64_t *)s->st.latency_hist);
		json_hist(f, "processing_hist",
			  (const uint64_t *)s->st.processing_hist);
		fputs("}\n", f);
		return;
	}
	fprintf(f, "queue: bpq%u\n  name: %s\n  strategy: %s\n", s->index,
		s->name, snap_strategy(s));
	text_fields(f, counter_fields, ARRAY_SIZE(counter_fields), &s->st);
	if (snap_window(s))
		text_fields(f, window_counter_fields,
			    ARRAY_SIZE(window_counter_fields), &s->st);
	text_stream(f, s);
	text_hist(f, "latency_hist", (const uint64_t *)s->st.latency_hist);
	text_hist(f, "processing_hist", (const uint64_t *)s->st.processing_hist);
}

/* Label values: backslash, double quote and newline escaped. */
static void prom_labels(FILE *f, const struct queue_snap *s, const char *extra)
{
	const char *p;

	fputs("{queue=\"", f);
	for (p = s->name; *p; p++) {
		if (*p == '\\' || *p == '"')
			fputc('\\', f);
		if (*p == '\n')
			fputs("\\n", f);
		else
			fputc(*p, f);
	}
	fprintf(f, "\",strategy=\"%s\"%s%s}", snap_strategy(s),
		extra ? "," : "", extra ? extra : "");
}

static void prom_head(FILE *f, const char *name, const char *type,
		      const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

enum prom_value {
	PV_ENQUEUED, PV_DEQUEUED, PV_BACKPRESSURE, PV_UTILIZATION, PV_DEPTH,
	PV_THROUGHPUT, PV_CREDITS, PV_STARVATION, PV_EPOCH, PV_READERS,
	PV_WRITERS, PV_UNACKED, PV_ACKED, PV_NACKED, PV_STALE_ACKS,
	PV_PARTIAL_READS, PV_HELD, PV_HEAD_AGE, PV_WAITING,
	PV_CONGESTION, PV_ACK_TIMEOUTS, PV_CWND, PV_SSTHRESH, PV_INFLIGHT,
};

static void prom_value(FILE *f, const struct queue_snap *s, enum prom_value v)
{
	const struct bpq_stats *st = &s->st;

	switch (v) {
	case PV_ENQUEUED:
		fprintf(f, " %" PRIu64 "\n", (uint64_t)st->enqueued_msgs);
		break;
	case PV_DEQUEUED:
		fprintf(f, " %" PRIu64 "\n", (uint64_t)st->dequeued_msgs);
		break;
	case PV_BACKPRESSURE:
		fprintf(f, " %" PRIu64 "\n",
			(uint64_t)st->backpressure_applied);
		break;
	case PV_UTILIZATION:
		fprintf(f, " %g\n", st->utilization / 100.0);
		break;
	case PV_DEPTH:
		fprintf(f, " %" PRIu64 "\n", (uint64_t)st->depth_msgs);
		break;
	case PV_THROUGHPUT:
		fprintf(f, " %" PRIu64 "\n", (uint64_t)st->throughput);
		break;
	case PV_CREDITS:
		fprintf(f, " %" PRIu64 "\n", (uint64_t)st->credits_available);
		break;
	case PV_STARVATION:
		fprintf(f, " %" PRIu64 "\n", (uint64_t)st->credit_starvation);
		break;
	case PV_EPOCH:
		fprintf(f, " %" PRIu64 "\n", (uint64_t)st->stream_epoch);
		break;
	case PV_READERS:
		fprintf(f, " %u\n", st->readers);
		break;
	case PV_WRITERS:
		fprintf(f, " %u\n", st->writers);
		break;
	case PV_UNACKED:
		fprintf(f, " %" PRIu64 "\n", (uint64_t)st->unacked);
		break;
	case PV_ACKED:
		fprintf(f, " %" PRIu64 "\n", (uint64_t)st->acked_msgs);
		break;
	case PV_NACKED:
		fprintf(f, " %" PRIu64 "\n", (uint64_t)st->nacked);
		break;
	case PV_STALE_ACKS:
		fprintf(f, " %" PRIu64 "\n", (uint64_t)st->stale_acks);
		break;
	case PV_PARTIAL_READS:
		fprintf(f, " %" PRIu64 "\n", (uint64_t)st->partial_reads);
		break;
	case PV_HELD:
		fprintf(f, " %.9f\n", st->held_ns / 1e9);
		break;
	case PV_HEAD_AGE:
		fprintf(f, " %.6f\n", st->head_age_us / 1e6);
		break;
	case PV_WAITING:
		fprintf(f, " %u\n", st->writers_waiting);
		break;
	case PV_CONGESTION:
		fprintf(f, " %" PRIu64 "\n", (uint64_t)st->congestion_events);
		break;
	case PV_ACK_TIMEOUTS:
		fprintf(f, " %" PRIu64 "\n", (uint64_t)st->ack_timeouts);
		break;
	case PV_CWND:
		fprintf(f, " %u\n", st->cwnd);
		break;
	case PV_SSTHRESH:
		fprintf(f, " %u\n", st->ssthresh);
		break;
	case PV_INFLIGHT:
		fprintf(f, " %" PRIu64 "\n", (uint64_t)st->inflight);
		break;
	}
}

/* window: only window queues have the metric (it means nothing elsewhere) */
static const struct {
	const char *name, *type, *help;
	enum prom_value v;
	int window;
} prom_simple[] = {
	{ "bpq_enqueued_total", "counter",
	  "Messages accepted into the queue.", PV_ENQUEUED, 0 },
	{ "bpq_dequeued_total", "counter",
	  "Messages delivered to readers.", PV_DEQUEUED, 0 },
	{ "bpq_backpressure_applied_total", "counter",
	  "Writers that had to wait or were refused.", PV_BACKPRESSURE, 0 },
	{ "bpq_queue_utilization", "gauge",
	  "Fill level of the tighter capacity bound, 0 to 1.", PV_UTILIZATION, 0 },
	{ "bpq_queue_depth", "gauge",
	  "Messages queued (with a receive ring: those not yet in it).",
	  PV_DEPTH, 0 },
	{ "bpq_throughput_rate", "gauge",
	  "Dequeued messages per second, moving average.", PV_THROUGHPUT, 0 },
	{ "bpq_credits_available", "gauge",
	  "Credit balance of the credit strategy.", PV_CREDITS, 0 },
	{ "bpq_credit_starvation_total", "counter",
	  "Writers that found no credit.", PV_STARVATION, 0 },
	{ "bpq_stream_epoch", "gauge",
	  "Times the stream was opened again after it ended.", PV_EPOCH, 0 },
	{ "bpq_readers", "gauge",
	  "Open files of the queue that may read.", PV_READERS, 0 },
	{ "bpq_writers", "gauge",
	  "Open files of the queue that may write.", PV_WRITERS, 0 },
	{ "bpq_unacked", "gauge",
	  "Delivered messages not yet acknowledged.", PV_UNACKED, 0 },
	{ "bpq_acked_total", "counter",
	  "Messages acknowledged.", PV_ACKED, 0 },
	{ "bpq_nacked_total", "counter",
	  "Acknowledgments that said the reader was congested (NACK).",
	  PV_NACKED, 0 },
	{ "bpq_stale_acks_total", "counter",
	  "Messages acknowledged beyond those delivered, ignored.",
	  PV_STALE_ACKS, 0 },
	{ "bpq_partial_reads_total", "counter",
	  "Reads that took the front of a message (read_mode stream).",
	  PV_PARTIAL_READS, 0 },
	{ "bpq_held_seconds_total", "counter",
	  "Time writers waited only because the queue was held.", PV_HELD, 0 },
	{ "bpq_oldest_message_age_seconds", "gauge",
	  "How long the oldest queued message has waited (consumer lag).",
	  PV_HEAD_AGE, 0 },
	{ "bpq_writers_waiting", "gauge",
	  "Writers waiting to be admitted.", PV_WAITING, 0 },
	{ "bpq_congestion_events_total", "counter",
	  "Reductions of the congestion window (window strategy).",
	  PV_CONGESTION, 0 },
	{ "bpq_ack_timeouts_total", "counter",
	  "Drops of the congestion window to min_cwnd for want of an "
	  "acknowledgment (window strategy).", PV_ACK_TIMEOUTS, 0 },
	{ "bpq_cwnd", "gauge",
	  "Congestion window of the window strategy, in messages.", PV_CWND, 1 },
	{ "bpq_ssthresh", "gauge",
	  "Slow-start threshold of the window strategy, in messages.",
	  PV_SSTHRESH, 1 },
	{ "bpq_inflight", "gauge",
	  "Messages in flight under the window strategy: queued, and "
	  "delivered unacknowledged (ack_mode ack).", PV_INFLIGHT, 1 },
};

/* the simple metrics printed after the latency histograms */
#define PROM_STREAM_FIRST 8

static void prom_simple_metric(FILE *f, const struct queue_snap *s, int n,
			       unsigned int m)
{
	int i, any = 0;

	for (i = 0; i < n; i++)
		any |= !prom_simple[m].window || snap_window(&s[i]);
	if (!any)
		return;
	prom_head(f, prom_simple[m].name, prom_simple[m].type,
		  prom_simple[m].help);
	for (i = 0; i < n; i++) {
		if (prom_simple[m].window && !snap_window(&s[i]))
			continue;
		fputs(prom_simple[m].name, f);
		prom_labels(f, &s[i], NULL);
		prom_value(f, &s[i], prom_simple[m].v);
	}
}

static void prom_dropped(FILE *f, const struct queue_snap *s, int n)
{
	static const char *const reasons[] = { "newest", "oldest", "flushed" };
	char label[32];
	uint64_t v;
	int i, r;

	prom_head(f, "bpq_messages_dropped_total", "counter",
		  "Messages lost: refused (newest), evicted (oldest) or flushed.");
	for (i = 0; i < n; i++) {
		for (r = 0; r < 3; r++) {
			v = r == 0 ? s[i].st.dropped_newest :
			    r == 1 ? s[i].st.dropped_oldest : s[i].st.flushed;
			snprintf(label, sizeof(label), "reason=\"%s\"",
				 reasons[r]);
			fputs("bpq_messages_dropped_total", f);
			prom_labels(f, &s[i], label);
			fprintf(f, " %" PRIu64 "\n", v);
		}
	}
}

/* As node_exporter's pressure metrics: PSI's totals, by kind */
static void prom_stall(FILE *f, const struct queue_snap *s, int n)
{
	int i;

	prom_head(f, "bpq_pressure_stall_seconds_total", "counter",
		  "Time writers were held back: some (a writer waited), full "
		  "(and a reader waited on the empty queue).");
	for (i = 0; i < n; i++) {
		fputs("bpq_pressure_stall_seconds_total", f);
		prom_labels(f, &s[i], "kind=\"some\"");
		fprintf(f, " %.6f\n", s[i].st.stall_some_us / 1e6);
		fputs("bpq_pressure_stall_seconds_total", f);
		prom_labels(f, &s[i], "kind=\"full\"");
		fprintf(f, " %.6f\n", s[i].st.stall_full_us / 1e6);
	}
}

/*
 * Bucket i of latency_hist (and processing_hist) counts times below
 * 2^(10+i) ns, the last one everything longer; the kernel keeps no sum, so
 * _sum takes each bucket at its midpoint (the open last bucket at its
 * lower bound).
 */
static void prom_hist(FILE *f, const struct queue_snap *s, int n,
		      const char *name, const char *help, size_t offset)
{
	char label[64];
	uint64_t cum;
	double sum, lo, hi;
	int i, b;

	prom_head(f, name, "histogram", help);
	for (i = 0; i < n; i++) {
		const uint64_t *hist = (const uint64_t *)
			((const char *)&s[i].st + offset);

		cum = 0;
		sum = 0;
		for (b = 0; b < BPQ_LATENCY_BUCKETS; b++) {
			uint64_t c = hist[b];

			cum += c;
			lo = b ? (double)(1ULL << (9 + b)) : 0;
			hi = b < BPQ_LATENCY_BUCKETS - 1 ?
				(double)(1ULL << (10 + b)) : lo;
			sum += c * (lo + hi) / 2 / 1e9;
			if (b == BPQ_LATENCY_BUCKETS - 1)
				snprintf(label, sizeof(label), "le=\"+Inf\"");
			else
				snprintf(label, sizeof(label), "le=\"%.15g\"",
					 bucket_bound_ns(b) / 1e9);
			fprintf(f, "%s_bucket", name);
			prom_labels(f, &s[i], label);
			fprintf(f, " %" PRIu64 "\n", cum);
		}
		fprintf(f, "%s_sum", name);
		prom_labels(f, &s[i], NULL);
		fprintf(f, " %.9g\n", sum);
		fprintf(f, "%s_count", name);
		prom_labels(f, &s[i], NULL);
		fprintf(f, " %" PRIu64 "\n", cum);
	}
}

/*
 * The sojourn times (latency_hist) as bpq_waiting_time_seconds, and for
 * one release more under their old name bpq_processing_latency_seconds
 * (deprecated: it was no processing time); the processing times
 * (processing_hist: enqueue to acknowledgment) as
 * bpq_processing_time_seconds.
 */
static void prom_latency(FILE *f, const struct queue_snap *s, int n)
{
	prom_hist(f, s, n, "bpq_processing_latency_seconds",
		  "Time from enqueue to delivery; _sum is approximate "
		  "(bucket midpoints). Deprecated: use bpq_waiting_time_seconds.",
		  offsetof(struct bpq_stats, latency_hist));
	prom_hist(f, s, n, "bpq_waiting_time_seconds",
		  "Time spent waiting in the queue, from enqueue to delivery; "
		  "_sum is approximate (bucket midpoints).",
		  offsetof(struct bpq_stats, latency_hist));
	prom_hist(f, s, n, "bpq_processing_time_seconds",
		  "Time from enqueue to acknowledgment, of the acknowledgments "
		  "that gave the enqueue time; _sum is approximate (bucket "
		  "midpoints).", offsetof(struct bpq_stats, processing_hist));
}

/*
 * The stream's state as a state set: one sample per state, 1 for the one
 * the stream is in, so that bpq_stream_state{state="failed"} == 1 selects
 * the failed streams.
 */
static void prom_stream_state(FILE *f, const struct queue_snap *s, int n)
{
	char label[32];
	unsigned int st;
	int i;

	prom_head(f, "bpq_stream_state", "gauge",
		  "1 for the state the stream is in (label state), else 0.");
	for (i = 0; i < n; i++) {
		for (st = BPQ_STREAM_OPEN; st <= BPQ_STREAM_CANCELLED; st++) {
			snprintf(label, sizeof(label), "state=\"%s\"",
				 bpq_stream_name(st));
			fputs("bpq_stream_state", f);
			prom_labels(f, &s[i], label);
			fprintf(f, " %d\n", s[i].st.stream == st);
		}
	}
}

/* The errno of a failed stream, named in the label error ("none": 0). */
static void prom_stream_error(FILE *f, const struct queue_snap *s, int n)
{
	char label[48], num[16];
	int i, failed;

	prom_head(f, "bpq_stream_error", "gauge",
		  "The errno a failed stream's producer gave (label error: "
		  "its name), else 0.");
	for (i = 0; i < n; i++) {
		failed = s[i].st.stream == BPQ_STREAM_FAILED;
		snprintf(label, sizeof(label), "error=\"%s\"",
			 failed ? errno_name(s[i].st.stream_error, num,
					     sizeof(num)) : "none");
		fputs("bpq_stream_error", f);
		prom_labels(f, &s[i], label);
		fprintf(f, " %u\n", failed ? s[i].st.stream_error : 0);
	}
}

void print_prometheus(FILE *f, const struct queue_snap *s, int n)
{
	unsigned int m;

	prom_simple_metric(f, s, n, 0);
	prom_simple_metric(f, s, n, 1);
	prom_dropped(f, s, n);
	for (m = 2; m < PROM_STREAM_FIRST; m++)
		prom_simple_metric(f, s, n, m);
	prom_latency(f, s, n);
	prom_stream_state(f, s, n);
	prom_stream_error(f, s, n);
	for (m = PROM_STREAM_FIRST; m < ARRAY_SIZE(prom_simple); m++)
		prom_simple_metric(f, s, n, m);
	prom_stall(f, s, n);
}
