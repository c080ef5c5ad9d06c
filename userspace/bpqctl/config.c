// SPDX-License-Identifier: GPL-2.0
/*
 * The YAML file of "bpqctl apply", in the shape of the backpressure
 * pattern's configuration template:
 *
 *   queues:
 *     NAME:
 *       size: 1000              capacity_msgs
 *       strategy: block
 *       timeout: 500            write_timeout_ms; also "500ms", "2s"
 *       high_watermark: 80
 *       low_watermark: 60
 *       max_msg_size: 4096
 *       capacity_bytes: 1M
 *       hangup: writers         none, writers, readers or both
 *       read_mode: stream       message or stream
 *       flow_control: { type: credit, initial_credits: 100, auto_credit: true }
 *                               auto_credit: a boolean, or ack
 *       adaptive: { target_latency_ms: 20, adjustment_interval: 100,
 *                   min_rate: 100, max_rate: 100000 }
 *       window: { ack_mode: ack, initial_cwnd: 10, min_cwnd: 1,
 *                 max_cwnd: 1000, initial_ssthresh: 64, ack_timeout: 1s }
 *                               the settings of strategy: window
 *       downstream: [b, c]      links: b's or c's pressure holds NAME
 *                               (a name alone for one)
 *
 * The whole file is checked before anything is applied; the first problem
 * is reported as "FILE:LINE: ...".
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <yaml.h>

#include "bpqctl.h"

struct parse {
	const char *file;
	yaml_document_t doc;
	char *err;
	size_t errlen;
};

static int __attribute__((format(printf, 3, 4)))
perr(struct parse *p, const yaml_node_t *n, const char *fmt, ...)
{
	size_t len;
	va_list ap;

	len = snprintf(p->err, p->errlen, "%s:%lu: ", p->file,
		       n ? (unsigned long)n->start_mark.line + 1 : 1UL);
	if (len < p->errlen) {
		va_start(ap, fmt);
		vsnprintf(p->err + len, p->errlen - len, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

static const char *scalar(const yaml_node_t *n)
{
	return n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value :
					     NULL;
}

static int bad_value(struct parse *p, const yaml_node_t *n, const char *key)
{
	const char *v = scalar(n);

	if (!v)
		return perr(p, n, "bad value for '%s': not a scalar", key);
	return perr(p, n, "bad value for '%s': '%s'", key, v);
}

/* A number with an optional unit suffix: units[] maps suffix -> factor. */
struct unit {
	const char *suffix;
	uint64_t mul, div;
};

static int parse_scaled(const char *s, const struct unit *units, uint64_t max,
			uint64_t *out)
{
	unsigned long long v;
	const struct unit *u;
	char *end;

	if (!s || *s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -EINVAL;
	for (u = units; u->suffix; u++)
		if (!strcmp(end, u->suffix))
			break;
	if (!u->suffix)
		return -EINVAL;
	if (v > max / u->mul * u->div || v * u->mul % u->div)
		return -EINVAL;
	v = v * u->mul / u->div;
	if (v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

static const struct unit plain_units[] = {
	{ "", 1, 1 }, { NULL, 0, 0 },
};
static const struct unit byte_units[] = {
	{ "", 1, 1 }, { "k", 1024, 1 }, { "K", 1024, 1 }, { "KiB", 1024, 1 },
	{ "M", 1 << 20, 1 }, { "MiB", 1 << 20, 1 }, { "G", 1 << 30, 1 },
	{ "GiB", 1 << 30, 1 }, { NULL, 0, 0 },
};
static const struct unit ms_units[] = {	/* durations in ms */
	{ "", 1, 1 }, { "ms", 1, 1 }, { "s", 1000, 1 }, { "m", 60000, 1 },
	{ "us", 1, 1000 }, { NULL, 0, 0 },
};
static const struct unit us_from_ms_units[] = {	/* ms by default, to us */
	{ "", 1000, 1 }, { "ms", 1000, 1 }, { "s", 1000000, 1 },
	{ "us", 1, 1 }, { NULL, 0, 0 },
};
static const struct unit percent_units[] = {
	{ "", 1, 1 }, { "%", 1, 1 }, { NULL, 0, 0 },
};

static int parse_bool(const char *s, uint64_t *out)
{
	static const char *const yes[] = { "true", "yes", "on", "1" };
	static const char *const no[] = { "false", "no", "off", "0" };
	unsigned int i;

	for (i = 0; s && i < 4; i++) {
		if (!strcasecmp(s, yes[i])) {
			*out = 1;
			return 0;
		}
		if (!strcasecmp(s, no[i])) {
			*out = 0;
			return 0;
		}
	}
	return -EINVAL;
}

/* One numeric key: where it goes, how it is written, its range. */
struct key {
	const char *name;
	const char *setting;	/* NULL: handled by the caller */
	const struct unit *units;
	uint64_t min, max;
};

static const struct key queue_keys[] = {
	{ "size", "capacity_msgs", plain_units, 1, 1048576 },
	{ "capacity_bytes", "capacity_bytes", byte_units, 1, 1ULL << 30 },
	{ "max_msg_size", "max_msg_size", byte_units, 1, 4 << 20 },
	{ "timeout", "write_timeout_ms", ms_units, 0, UINT32_MAX },
	{ "high_watermark", "high_watermark", percent_units, 1, 100 },
	{ "low_watermark", "low_watermark", percent_units, 1, 100 },
	{ "strategy", NULL, NULL, 0, 0 },
	{ "hangup", "hangup", NULL, 0, 0 },
	{ "read_mode", "read_mode", NULL, 0, 0 },
	{ "flow_control", NULL, NULL, 0, 0 },
	{ "adaptive", NULL, NULL, 0, 0 },
	{ "window", NULL, NULL, 0, 0 },
	{ "downstream", NULL, NULL, 0, 0 },
	{ NULL, NULL, NULL, 0, 0 },
};

static const struct key window_keys[] = {
	{ "ack_mode", "ack_mode", NULL, 0, 0 },
	{ "initial_cwnd", "initial_cwnd", plain_units, 1, 1048576 },
	{ "min_cwnd", "min_cwnd", plain_units, 1, 1048576 },
	{ "max_cwnd", "max_cwnd", plain_units, 1, 1048576 },
	{ "initial_ssthresh", "initial_ssthresh", plain_units, 1, 1048576 },
	{ "ack_timeout", "ack_timeout_ms", ms_units, 0, 3600000 },
	{ NULL, NULL, NULL, 0, 0 },
};

static const struct key adaptive_keys[] = {
	{ "target_latency_ms", "target_latency_us", us_from_ms_units, 1,
	  60000000 },
	{ "adjustment_interval", "adjust_interval_ms", ms_units, 1, 60000 },
	{ "min_rate", "min_rate", plain_units, 1, UINT32_MAX },
	{ "max_rate", "max_rate", plain_units, 1, UINT32_MAX },
	{ NULL, NULL, NULL, 0, 0 },
};

static const struct key flow_keys[] = {
	{ "type", NULL, NULL, 0, 0 },
	{ "initial_credits", NULL, plain_units, 1, UINT64_MAX },
	{ "auto_credit", NULL, NULL, 0, 0 },
	{ NULL, NULL, NULL, 0, 0 },
};

static const struct key *key_find(const struct key *keys, const char *name)
{
	for (; keys->name; keys++)
		if (!strcmp(keys->name, name))
			return keys;
	return NULL;
}

static int key_number(struct parse *p, const struct key *k,
		      const yaml_node_t *v, uint64_t *out)
{
	if (parse_scaled(scalar(v), k->units, k->max, out) || *out < k->min)
		return bad_value(p, v, k->name);
	return 0;
}

/*
 * A key with a setting and no units: a setting written by name, as sysfs
 * names it (hangup, read_mode, ack_mode). 1: not such a key.
 */
static int key_named(struct parse *p, struct apply_queue *q,
		     const struct key *k, const yaml_node_t *v)
{
	int i, s;

	if (!k->setting || k->units)
		return 1;
	i = setting_find(k->setting);
	s = settings[i].from_name(scalar(v));
	if (s < 0)
		return bad_value(p, v, k->name);
	change_set(&q->change, i, s);
	return 0;
}

static int has(const struct apply_queue *q, const char *setting)
{
	return !!(q->change.have & (1U << setting_find(setting)));
}

static uint64_t val(const struct apply_queue *q, const char *setting)
{
	return setting_get(setting_find(setting), &q->change.val);
}

/*
 * Walk a mapping: reject non-string and duplicate keys, look each one up in
 * keys, and hand it to fn.
 */
typedef int (*pair_fn)(struct parse *p, struct apply_queue *q,
		       const struct key *k, const yaml_node_t *v);

static int walk(struct parse *p, struct apply_queue *q, const yaml_node_t *map,
		const char *what, const struct key *keys, pair_fn fn)
{
	yaml_node_pair_t *a, *b;
	const yaml_node_t *k;
	const struct key *key;
	int ret;

	if (map->type != YAML_MAPPING_NODE)
		return perr(p, map, "%s must be a mapping", what);
	for (a = map->data.mapping.pairs.start; a < map->data.mapping.pairs.top;
	     a++) {
		k = yaml_document_get_node(&p->doc, a->key);
		if (!scalar(k))
			return perr(p, k, "keys of %s must be scalars", what);
		for (b = map->data.mapping.pairs.start; b < a; b++)
			if (!strcmp(scalar(k), scalar(yaml_document_get_node(
						       &p->doc, b->key))))
				return perr(p, k, "duplicate key '%s'",
					    scalar(k));
		key = key_find(keys, scalar(k));
		if (!key)
			return perr(p, k, "unknown key '%s'", scalar(k));
		ret = fn(p, q, key, yaml_document_get_node(&p->doc, a->value));
		if (ret)
			return ret;
	}
	return 0;
}

static int adaptive_pair(struct parse *p, struct apply_queue *q,
			 const struct key *k, const yaml_node_t *v)
{
	uint64_t n;

	if (key_number(p, k, v, &n))
		return -EINVAL;
	change_set(&q->change, setting_find(k->setting), n);
	return 0;
}

static int window_pair(struct parse *p, struct apply_queue *q,
		       const struct key *k, const yaml_node_t *v)
{
	uint64_t n;
	int ret = key_named(p, q, k, v);

	if (ret <= 0)
		return ret;
	if (key_number(p, k, v, &n))
		return -EINVAL;
	change_set(&q->change, setting_find(k->setting), n);
	return 0;
}

static int flow_pair(struct parse *p, struct apply_queue *q,
		     const struct key *k, const yaml_node_t *v)
{
	uint64_t n;

	if (!strcmp(k->name, "type")) {
		if (!scalar(v) || (strcmp(scalar(v), "credit") &&
				   strcmp(scalar(v), "none")))
			return bad_value(p, v, k->name);
		if (!strcmp(scalar(v), "credit")) {
			if (has(q, "strategy") &&
			    val(q, "strategy") != BPQ_STRATEGY_CREDIT)
				return perr(p, v,
					    "flow_control type 'credit' needs strategy 'credit'");
			change_set(&q->change, setting_find("strategy"),
				   BPQ_STRATEGY_CREDIT);
		}
	} else if (!strcmp(k->name, "auto_credit")) {
		if (scalar(v) && !strcmp(scalar(v), "ack"))
			n = BPQ_AUTO_CREDIT_ACK;
		else if (parse_bool(scalar(v), &n))
			return bad_value(p, v, k->name);
		change_set(&q->change, setting_find("auto_credit"), n);
	} else {
		if (key_number(p, k, v, &n))
			return -EINVAL;
		q->initial_credits = n;
	}
	return 0;
}

static int valid_name(const char *s)
{
	size_t len = strlen(s);

	if (!len || len >= BPQ_NAME_MAX)
		return 0;
	return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
			 "0123456789_.-") == len;
}

/* downstream: a queue's name, or a sequence of them */
static int downstream_pair(struct parse *p, struct apply_queue *q,
			   const yaml_node_t *v)
{
	const yaml_node_item_t *it, *first = &v->data.sequence.items.start[0];
	const yaml_node_t *n = v;
	int i;

	q->down_line = v->start_mark.line + 1;
	if (v->type == YAML_SEQUENCE_NODE && first == v->data.sequence.items.top)
		return 0;	/* [] */
	for (it = first; ; it++) {
		if (v->type == YAML_SEQUENCE_NODE)
			n = yaml_document_get_node(&p->doc, *it);
		if (!n || !scalar(n) || !valid_name(scalar(n)))
			return bad_value(p, n ? n : v, "downstream");
		for (i = 0; i < q->nr_down; i++)
			if (!strcmp(q->downstream[i], scalar(n)))
				return perr(p, n, "'%s' twice in downstream",
					    scalar(n));
		if (q->nr_down == BPQ_LINKS_MAX)
			return perr(p, n, "more than %d queues downstream",
				    BPQ_LINKS_MAX);
		strcpy(q->downstream[q->nr_down++], scalar(n));
		if (v->type != YAML_SEQUENCE_NODE ||
		    it + 1 == v->data.sequence.items.top)
			return 0;
	}
}

static int queue_pair(struct parse *p, struct apply_queue *q,
		      const struct key *k, const yaml_node_t *v)
{
	uint64_t n;
	int s;

	if (!strcmp(k->name, "strategy")) {
		s = bpq_strategy_parse(scalar(v));
		if (s < 0)
			return bad_value(p, v, k->name);
		if (has(q, "strategy") && val(q, "strategy") != (uint64_t)s)
			return perr(p, v,
				    "flow_control type 'credit' needs strategy 'credit'");
		change_set(&q->change, setting_find("strategy"), s);
		return 0;
	}
	s = key_named(p, q, k, v);
	if (s <= 0)
		return s;
	if (!strcmp(k->name, "flow_control"))
		return walk(p, q, v, "flow_control", flow_keys, flow_pair);
	if (!strcmp(k->name, "adaptive"))
		return walk(p, q, v, "adaptive", adaptive_keys, adaptive_pair);
	if (!strcmp(k->name, "window"))
		return walk(p, q, v, "window", window_keys, window_pair);
	if (!strcmp(k->name, "downstream"))
		return downstream_pair(p, q, v);
	if (key_number(p, k, v, &n))
		return -EINVAL;
	change_set(&q->change, setting_find(k->setting), n);
	return 0;
}


static int parse_queue(struct parse *p, struct apply_queue *q,
		       const yaml_node_t *kn, const yaml_node_t *v)
{
	const char *name = scalar(kn);

	if (!name || !valid_name(name))
		return perr(p, kn, "bad queue name '%s'", name ? name : "");
	strcpy(q->name, name);
	q->line = kn->start_mark.line + 1;
	if (v->type == YAML_SCALAR_NODE && !*scalar(v))
		return 0;	/* "NAME:" alone: create with the defaults */
	if (walk(p, q, v, "a queue", queue_keys, queue_pair))
		return -EINVAL;
	if (has(q, "high_watermark") && has(q, "low_watermark") &&
	    val(q, "low_watermark") > val(q, "high_watermark"))
		return perr(p, v, "low_watermark %llu is above high_watermark %llu",
			    (unsigned long long)val(q, "low_watermark"),
			    (unsigned long long)val(q, "high_watermark"));
	if (has(q, "min_rate") && has(q, "max_rate") &&
	    val(q, "min_rate") > val(q, "max_rate"))
		return perr(p, v, "min_rate %llu is above max_rate %llu",
			    (unsigned long long)val(q, "min_rate"),
			    (unsigned long long)val(q, "max_rate"));
	if (has(q, "min_cwnd") && has(q, "initial_cwnd") &&
	    val(q, "min_cwnd") > val(q, "initial_cwnd"))
		return perr(p, v, "min_cwnd %llu is above initial_cwnd %llu",
			    (unsigned long long)val(q, "min_cwnd"),
			    (unsigned long long)val(q, "initial_cwnd"));
	if (has(q, "initial_cwnd") && has(q, "max_cwnd") &&
	    val(q, "initial_cwnd") > val(q, "max_cwnd"))
		return perr(p, v, "initial_cwnd %llu is above max_cwnd %llu",
			    (unsigned long long)val(q, "initial_cwnd"),
			    (unsigned long long)val(q, "max_cwnd"));
	if (has(q, "min_cwnd") && has(q, "max_cwnd") &&
	    val(q, "min_cwnd") > val(q, "max_cwnd"))
		return perr(p, v, "min_cwnd %llu is above max_cwnd %llu",
			    (unsigned long long)val(q, "min_cwnd"),
			    (unsigned long long)val(q, "max_cwnd"));
	return 0;
}

static int parse_doc(struct parse *p, struct apply_file *out)
{
	yaml_node_t *root, *queues = NULL, *k;
	yaml_node_pair_t *a, *b;
	int n;

	root = yaml_document_get_root_node(&p->doc);
	if (!root)
		return perr(p, NULL, "empty file");
	if (root->type != YAML_MAPPING_NODE)
		return perr(p, root, "expected a mapping with key 'queues'");
	for (a = root->data.mapping.pairs.start;
	     a < root->data.mapping.pairs.top; a++) {
		k = yaml_document_get_node(&p->doc, a->key);
		if (!scalar(k) || strcmp(scalar(k), "queues"))
			return perr(p, k, "unknown key '%s'",
				    scalar(k) ? scalar(k) : "");
		if (queues)
			return perr(p, k, "duplicate key 'queues'");
		queues = yaml_document_get_node(&p->doc, a->value);
	}
	if (!queues)
		return perr(p, root, "no key 'queues'");
	if (queues->type == YAML_SCALAR_NODE && !*scalar(queues))
		return 0;
	if (queues->type != YAML_MAPPING_NODE)
		return perr(p, queues, "'queues' must be a mapping");
	n = queues->data.mapping.pairs.top - queues->data.mapping.pairs.start;
	out->queues = calloc(n ? n : 1, sizeof(*out->queues));
	if (!out->queues)
		return perr(p, NULL, "out of memory");
	for (a = queues->data.mapping.pairs.start;
	     a < queues->data.mapping.pairs.top; a++) {
		k = yaml_document_get_node(&p->doc, a->key);
		for (b = queues->data.mapping.pairs.start; b < a; b++)
			if (scalar(k) && !strcmp(scalar(k), scalar(
				    yaml_document_get_node(&p->doc, b->key))))
				return perr(p, k, "duplicate queue '%s'",
					    scalar(k));
		if (parse_queue(p, &out->queues[out->nr], k,
				yaml_document_get_node(&p->doc, a->value)))
			return -EINVAL;
		out->nr++;
	}
	return 0;
}

int apply_parse(const char *file, const char *text, size_t len,
		struct apply_file *out, char *err, size_t errlen)
{
	struct parse p = { .file = file, .err = err, .errlen = errlen };
	yaml_parser_t parser;
	int ret;

	memset(out, 0, sizeof(*out));
	if (!yaml_parser_initialize(&parser))
		return perr(&p, NULL, "out of memory");
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	if (!yaml_parser_load(&parser, &p.doc)) {
		snprintf(err, errlen, "%s:%lu: %s%s%s", file,
			 (unsigned long)parser.problem_mark.line + 1,
			 parser.problem ? parser.problem : "syntax error",
			 parser.context ? " " : "",
			 parser.context ? parser.context : "");
		yaml_parser_delete(&parser);
		return -EINVAL;
	}
	ret = parse_doc(&p, out);
	yaml_document_delete(&p.doc);
	yaml_parser_delete(&parser);
	if (ret)
		apply_free(out);
	return ret;
}

void apply_free(struct apply_file *af)
{
	free(af->queues);
	af->queues = NULL;
	af->nr = 0;
}
