// SPDX-License-Identifier: GPL-2.0
/*
 * The YAML file of "bpqctl apply" (and "bpqctl alerts"). Its root holds
 * one of two keys. The first shape, queues by name:
 *
 *   queues:
 *     NAME:
 *       size: 1000              capacity_msgs; also max_size
 *       strategy: credit        drop_oldest is drop-oldest (any strategy)
 *       timeout: 500            write_timeout_ms; also "500ms", "2s"
 *       high_watermark: 80      percent: 80, "80%", or a fraction: 0.8
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
 *       monitoring: { ... }     as below
 *       downstream: [b, c]      links: b's or c's pressure holds NAME
 *                               (a name alone for one)
 *       group: web              put the queue in a group (see groups)
 *
 * The second, the backpressure pattern's template as it is written
 * (userspace/examples/backpressure.yaml):
 *
 *   backpressure:
 *     queue: { name: default, max_size: 10000, strategy: drop_oldest,
 *              high_watermark: 0.8, low_watermark: 0.5 }
 *     flow_control: { type: credit_based, initial_credits: 1000,
 *                     credit_batch_size: 100 }
 *     adaptive: { enabled: true, target_latency_ms: 100,
 *                 adjustment_interval_ms: 1000, min_rate: 10,
 *                 max_rate: 10000, increase_rate: 1.1, decrease_rate: 0.5 }
 *     monitoring: { metrics_interval_s: 10, alert_thresholds: {
 *                   queue_utilization: 0.9, drop_rate: 0.01,
 *                   blocked_time_ms: 5000 } }
 *     queues: { NAME: ..., ... }
 *     links: [[a, b], [b, c]]
 *     groups: { ... }
 *     cluster: { ... }
 *
 * queue, flow_control, adaptive and monitoring describe one queue, named
 * by queue's name ("default" without one); queues holds more, each in
 * the first shape or in this sectioned one (a queue: key with the
 * others beside it, no name: the key names it). The queue section takes
 * the first shape's keys but flow_control, adaptive and monitoring.
 *
 *   flow_control:
 *     type                      credit or credit_based: strategy credit;
 *                               rate_based: strategy adaptive at a fixed
 *                               rate (min_rate = max_rate = rate);
 *                               adaptive: strategy adaptive; none
 *     initial_credits: N        granted once the queue is configured
 *     auto_credit               as above
 *     credit_batch_size: N      the credits a consumer grants at a time:
 *                               advisory, kept by no setting
 *     rate: N                   messages per second, for rate_based
 *   adaptive:
 *     enabled: true             asks for strategy adaptive; false: the
 *                               settings are stored only
 *     target_latency_ms         also target_latency: 100ms
 *     adjustment_interval_ms    also adjustment_interval: 1s
 *     min_rate, max_rate
 *     increase_rate: 1.1        the most an interval multiplies the rate
 *                               by: increase_pct 10 (1.01 ... 11.0)
 *     decrease_rate: 0.5        the least it multiplies it by on a
 *                               decrease: decrease_pct 50 (0.99 ... 0.01)
 *     increase_pct, decrease_pct  the same as the settings
 *   monitoring:
 *     metrics_interval_s: 10    also metrics_interval: 10s; 1 s ... 1 h:
 *                               how often the alerts' rules are evaluated
 *     alert_thresholds:
 *       queue_utilization: 0.9  a fraction or a percentage
 *       queue_depth: 5000       messages
 *       drop_rate: 0.01         messages refused or evicted over those
 *                               offered; a fraction or "1%"
 *       blocked_time_ms: 5000   time a minute with a writer blocked
 *                               (pressure stall "some"); also blocked_time
 *       head_age_ms: 2000       the oldest message's wait (consumer lag);
 *                               also head_age
 *
 * A strategy the other keys contradict (the template's drop_oldest with
 * type credit_based and enabled: true) is an error in the first shape.
 * In the sectioned one, the queue section's strategy governs, the other
 * sections' settings are stored all the same but for the initial
 * credits, which are not granted, and apply says so in a note.
 *
 *   links:                      a list of [upstream, downstream] pairs,
 *     - [orders, billing]       as "bpqctl link orders billing"
 *   groups:                     groups of queues (bpq(4), Groups), in the
 *     NAME:                     root of either shape (and in backpressure)
 *       capacity: 1000          capacity_msgs, also; needed
 *       high_watermark: 0.8     a fraction or a percent; 80 if not given
 *       low_watermark: 60%      60 if not given (high's if that is less)
 *       parent: NAME            a group of the file, or one that exists
 *       members: [a, b]         queues of the file, or ones that exist;
 *                               a queue's group: key says the same, and
 *                               a queue in two groups is an error
 *   cluster:                    for the daemon bpqd (bpqd(8)), in the root
 *     node_id: node1            or in backpressure; apply checks it only
 *     redis: { address: "host:6379" }   or "unix:/path"; channel_address:
 *                               the subscribed connection's, if not the same
 *     key_prefix: "bpq:"
 *     ttl: 15s
 *     report_interval: 1s       below ttl
 *     grace: 3s                 Redis unreachable this long: holds cleared
 *     memory_pressure: 10%      the machine's memory stall (PSI "some")
 *     memory_window: 1s         within which holds the queues (+system)
 *     policy: { type: least_loaded, margin: 0.1 }  or { type: budget,
 *                               budget: 10000, queue: NAME } (messages a
 *                               second, split among the nodes)
 *
 * The names of values (strategies, flow_control's and policy's types)
 * take '_' and '-' alike; keys are spelled as they are here.
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

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* What a queue's keys said, checked once the queue is read */
struct qstate {
	int sectioned;			/* the template's shape */
	unsigned int section_mask;	/* the keys its queue section takes */
	const yaml_node_t *strategy;	/* the strategy key's value */
	const yaml_node_t *flow;	/* flow_control's type */
	int flow_strategy;		/* the strategy it asks for, or -1 */
	int rate_based;
	const yaml_node_t *rate;	/* flow_control's rate */
	uint64_t rate_val;
	const yaml_node_t *enabled;	/* adaptive's enabled: true */
};

/* The cluster section's keys that later checks name */
struct cluster {
	const yaml_node_t *report, *type, *margin, *budget, *address, *grace,
			  *queue, *window;
};

/* backpressure's keys, as section_keys has them */
#define NR_SECTIONS	4	/* queue, flow_control, adaptive, monitoring */
#define BP_QUEUES	4
#define BP_LINKS	5
#define BP_CLUSTER	6
#define BP_GROUPS	7
#define NR_BP_KEYS	8

struct parse {
	const char *file;
	yaml_document_t doc;
	struct apply_file *af;
	const yaml_node_t *key;		/* walk(): the key being handled */
	struct qstate qs;
	struct cluster cl;
	int links_cap;
	int groups_cap, members_cap;
	struct apply_group *grp;	/* the group being read */
	int grp_high, grp_low;		/* its watermarks were given */
	/* backpressure's keys (section_keys): values, and the keys */
	const yaml_node_t *bp[NR_BP_KEYS], *bp_key[NR_BP_KEYS];
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

static int empty(const yaml_node_t *n)
{
	return scalar(n) && !*scalar(n);
}

static int line_of(const yaml_node_t *n)
{
	return n->start_mark.line + 1;
}

static int bad_value(struct parse *p, const yaml_node_t *n, const char *key)
{
	const char *v = scalar(n);

	if (!v)
		return perr(p, n, "bad value for '%s': not a scalar", key);
	return perr(p, n, "bad value for '%s': '%s'", key, v);
}

/* s is want, where '_' and '-' are the same */
static int name_is(const char *s, const char *want)
{
	for (; s && *s && *want; s++, want++)
		if (*s != *want && !(strchr("_-", *s) && strchr("_-", *want)))
			return 0;
	return s && !*s && !*want;
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
static const struct unit ms_from_s_units[] = {	/* seconds, to ms */
	{ "", 1000, 1 }, { NULL, 0, 0 },
};

/*
 * A decimal number, "12" or "0.125", as a whole number of 10^-scale:
 * ("0.125", 3) is 125. No sign, no exponent, no digit beyond the scale
 * but zeros. *point: it had a decimal point.
 */
static int parse_decimal(const char *s, unsigned int scale, uint64_t *out,
			 int *point)
{
	unsigned int decimals = 0, digits = 0, d;
	uint64_t v = 0;

	*point = 0;
	for (; s && *s; s++) {
		if (*s == '.' && !*point) {
			*point = 1;
			continue;
		}
		if (*s < '0' || *s > '9')
			return -EINVAL;
		d = *s - '0';
		digits++;
		if (*point && decimals == scale) {
			if (d)
				return -EINVAL;
			continue;
		}
		if (v > (UINT64_MAX - d) / 10)
			return -EINVAL;
		v = v * 10 + d;
		decimals += *point;
	}
	if (!digits)
		return -EINVAL;
	for (; decimals < scale; decimals++) {
		if (v > UINT64_MAX / 10)
			return -EINVAL;
		v *= 10;
	}
	*out = v;
	return 0;
}

/*
 * A share in 10^-scale (2: percent, 6: parts per million): "x%", a
 * fraction with a decimal point, or a number without one, a percentage
 * if bare_percent, else a fraction ("1" is all).
 */
static int parse_share(const char *s, unsigned int scale, int bare_percent,
		       uint64_t *out)
{
	size_t len = s ? strlen(s) : 0;
	char buf[32];
	int point;

	if (len && s[len - 1] == '%') {
		if (len > sizeof(buf))
			return -EINVAL;
		memcpy(buf, s, len - 1);
		buf[len - 1] = '\0';
		return parse_decimal(buf, scale - 2, out, &point);
	}
	if (parse_decimal(s, scale, out, &point))
		return -EINVAL;
	if (bare_percent && !point)
		*out /= 100;
	return 0;
}

/* Whole percent: 80, "80%" or 0.8 */
static int parse_percent(const char *s, uint64_t *out)
{
	return parse_share(s, 2, 1, out);
}

/* Parts per million: 0.01, "1%" */
static int parse_ppm(const char *s, uint64_t *out)
{
	return parse_share(s, 6, 0, out);
}

/* increase_rate 1.1: increase_pct 10 */
static int parse_increase(const char *s, uint64_t *out)
{
	int point;

	if (parse_decimal(s, 2, out, &point) || *out <= 100)
		return -EINVAL;
	*out -= 100;
	return 0;
}

/* decrease_rate 0.5: decrease_pct 50 */
static int parse_decrease(const char *s, uint64_t *out)
{
	int point;

	if (parse_decimal(s, 2, out, &point) || !*out || *out >= 100)
		return -EINVAL;
	*out = 100 - *out;
	return 0;
}

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

/*
 * One key: what it sets (or, for what is not a setting, a tag that its
 * other spellings share), how its number is written, its range, where
 * it may stand.
 */
struct key {
	const char *name;
	const char *setting;	/* NULL: handled by the caller */
	const struct unit *units;
	int (*parse)(const char *s, uint64_t *out);	/* or this */
	uint64_t min, max;
	unsigned int where;	/* 0: in every table it is in, else K_* */
};

#define K_FLAT		1U	/* a queue's mapping, first shape */
#define K_SECTION	2U	/* the queue section, sectioned */
#define K_ROOT		4U	/* the root queue's section */

#define NUM(k, s, u, lo, hi) \
	{ .name = k, .setting = s, .units = u, .min = lo, .max = hi }
#define FN(k, s, f, lo, hi) \
	{ .name = k, .setting = s, .parse = f, .min = lo, .max = hi }
#define NAMED(k)	{ .name = k, .setting = k }
#define OTHER(k, w)	{ .name = k, .where = w }
#define END		{ .name = NULL }

static const struct key queue_keys[] = {
	NUM("size", "capacity_msgs", plain_units, 1, 1048576),
	NUM("max_size", "capacity_msgs", plain_units, 1, 1048576),
	NUM("capacity_bytes", "capacity_bytes", byte_units, 1, 1ULL << 30),
	NUM("max_msg_size", "max_msg_size", byte_units, 1, 4 << 20),
	NUM("timeout", "write_timeout_ms", ms_units, 0, UINT32_MAX),
	FN("high_watermark", "high_watermark", parse_percent, 1, 100),
	FN("low_watermark", "low_watermark", parse_percent, 1, 100),
	NAMED("hangup"),
	NAMED("read_mode"),
	OTHER("strategy", 0),
	OTHER("window", 0),
	OTHER("downstream", 0),
	OTHER("flow_control", K_FLAT),
	OTHER("adaptive", K_FLAT),
	OTHER("monitoring", K_FLAT),
	OTHER("name", K_ROOT),
	OTHER("group", 0),
	END,
};

/* A sectioned queue; the first four are the backpressure root's too */
static const struct key section_keys[] = {
	OTHER("queue", 0),
	OTHER("flow_control", 0),
	OTHER("adaptive", 0),
	OTHER("monitoring", 0),
	OTHER("queues", K_ROOT),
	OTHER("links", K_ROOT),
	OTHER("cluster", K_ROOT),
	OTHER("groups", K_ROOT),
	END,
};

/* a group of the groups section; setting: a tag for walk()'s check */
static const struct key group_keys[] = {
	NUM("capacity", "capacity_msgs", plain_units, 1, UINT32_MAX),
	NUM("capacity_msgs", "capacity_msgs", plain_units, 1, UINT32_MAX),
	FN("high_watermark", NULL, parse_percent, 1, 100),
	FN("low_watermark", NULL, parse_percent, 1, 100),
	OTHER("parent", 0),
	OTHER("members", 0),
	END,
};

static const struct key window_keys[] = {
	NAMED("ack_mode"),
	NUM("initial_cwnd", "initial_cwnd", plain_units, 1, 1048576),
	NUM("min_cwnd", "min_cwnd", plain_units, 1, 1048576),
	NUM("max_cwnd", "max_cwnd", plain_units, 1, 1048576),
	NUM("initial_ssthresh", "initial_ssthresh", plain_units, 1, 1048576),
	NUM("ack_timeout", "ack_timeout_ms", ms_units, 0, 3600000),
	END,
};

static const struct key adaptive_keys[] = {
	OTHER("enabled", 0),
	NUM("target_latency_ms", "target_latency_us", us_from_ms_units, 1,
	    60000000),
	NUM("target_latency", "target_latency_us", us_from_ms_units, 1,
	    60000000),
	NUM("adjustment_interval", "adjust_interval_ms", ms_units, 1, 60000),
	NUM("adjustment_interval_ms", "adjust_interval_ms", ms_units, 1,
	    60000),
	NUM("min_rate", "min_rate", plain_units, 1, UINT32_MAX),
	NUM("max_rate", "max_rate", plain_units, 1, UINT32_MAX),
	FN("increase_rate", "increase_pct", parse_increase, 1, 1000),
	NUM("increase_pct", "increase_pct", plain_units, 1, 1000),
	FN("decrease_rate", "decrease_pct", parse_decrease, 1, 99),
	NUM("decrease_pct", "decrease_pct", plain_units, 1, 99),
	END,
};

static const struct key flow_keys[] = {
	OTHER("type", 0),
	OTHER("auto_credit", 0),
	NUM("initial_credits", NULL, plain_units, 1, UINT64_MAX),
	NUM("credit_batch_size", NULL, plain_units, 1, UINT32_MAX),
	NUM("rate", NULL, plain_units, 1, UINT32_MAX),
	END,
};

static const struct key monitoring_keys[] = {
	NUM("metrics_interval_s", "interval", ms_from_s_units, 1000, 3600000),
	NUM("metrics_interval", "interval", ms_units, 1000, 3600000),
	OTHER("alert_thresholds", 0),
	END,
};

/* tags: alert_names[enum apply_alert] */
static const struct key alert_keys[] = {
	FN("queue_utilization", "queue_utilization", parse_percent, 1, 100),
	NUM("queue_depth", "queue_depth", plain_units, 1, 1048576),
	FN("drop_rate", "drop_rate", parse_ppm, 1, 1000000),
	NUM("blocked_time_ms", "blocked_time", ms_units, 1, 60000),
	NUM("blocked_time", "blocked_time", ms_units, 1, 60000),
	NUM("head_age_ms", "head_age", ms_units, 1, 86400000),
	NUM("head_age", "head_age", ms_units, 1, 86400000),
	END,
};

static const char *const alert_names[NR_ALERTS] = {
	[ALERT_UTILIZATION] = "queue_utilization",
	[ALERT_DEPTH] = "queue_depth",
	[ALERT_DROP_RATE] = "drop_rate",
	[ALERT_BLOCKED] = "blocked_time",
	[ALERT_HEAD_AGE] = "head_age",
};

/* the cluster section and its redis and policy mappings */
static const struct key cluster_keys[] = {
	OTHER("node_id", 0),
	OTHER("redis", 0),
	OTHER("key_prefix", 0),
	NUM("ttl", NULL, ms_units, 1000, 86400000),
	NUM("report_interval", NULL, ms_units, 100, 3600000),
	NUM("grace", NULL, ms_units, 0, 86400000),
	FN("memory_pressure", NULL, parse_percent, 1, 100),
	NUM("memory_window", NULL, ms_units, 500, 10000),
	OTHER("policy", 0),
	END,
};

static const struct key redis_keys[] = {
	OTHER("address", 0),
	OTHER("channel_address", 0),
	END,
};

static const struct key policy_keys[] = {
	OTHER("type", 0),
	FN("margin", NULL, parse_percent, 0, 100),
	NUM("budget", NULL, plain_units, 1, UINT32_MAX),
	OTHER("queue", 0),
	END,
};

static const struct key *key_find(const struct key *keys, unsigned int mask,
				  const char *name)
{
	for (; keys->name; keys++)
		if (!strcmp(keys->name, name) &&
		    (!keys->where || (keys->where & mask)))
			return keys;
	return NULL;
}

static int key_number(struct parse *p, const struct key *k,
		      const yaml_node_t *v, uint64_t *out)
{
	int ret = k->parse ? k->parse(scalar(v), out) :
			     parse_scaled(scalar(v), k->units, k->max, out);

	if (ret || *out < k->min || *out > k->max)
		return bad_value(p, v, k->name);
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

static void set(struct apply_queue *q, const char *setting, uint64_t v)
{
	change_set(&q->change, setting_find(setting), v);
}

/*
 * Walk a mapping (or nothing: "key:" alone): reject non-string and
 * duplicate keys and two spellings of one setting, look each key up in
 * keys (those for mask), and hand it to fn.
 */
typedef int (*pair_fn)(struct parse *p, struct apply_queue *q,
		       const struct key *k, const yaml_node_t *v);

static int walk(struct parse *p, struct apply_queue *q, const yaml_node_t *map,
		const char *what, const struct key *keys, unsigned int mask,
		pair_fn fn)
{
	yaml_node_pair_t *a, *b;
	const yaml_node_t *k;
	const struct key *key, *other;
	int ret;

	if (empty(map))
		return 0;
	if (map->type != YAML_MAPPING_NODE)
		return perr(p, map, "%s must be a mapping", what);
	for (a = map->data.mapping.pairs.start; a < map->data.mapping.pairs.top;
	     a++) {
		k = yaml_document_get_node(&p->doc, a->key);
		if (!scalar(k))
			return perr(p, k, "keys of %s must be scalars", what);
		key = key_find(keys, mask, scalar(k));
		if (!key)
			return perr(p, k, "unknown key '%s'", scalar(k));
		for (b = map->data.mapping.pairs.start; b < a; b++) {
			const char *bn = scalar(yaml_document_get_node(&p->doc,
								       b->key));

			if (!strcmp(scalar(k), bn))
				return perr(p, k, "duplicate key '%s'", bn);
			other = key_find(keys, mask, bn);
			if (key->setting && other->setting &&
			    !strcmp(key->setting, other->setting))
				return perr(p, k, "'%s' and '%s' are the same setting",
					    bn, scalar(k));
		}
		p->key = k;
		ret = fn(p, q, key, yaml_document_get_node(&p->doc, a->value));
		if (ret)
			return ret;
	}
	return 0;
}

/*
 * A setting: by name as sysfs names it (hangup, read_mode, ack_mode),
 * else a number.
 */
static int setting_pair(struct parse *p, struct apply_queue *q,
			const struct key *k, const yaml_node_t *v)
{
	int i = setting_find(k->setting), s;
	uint64_t n;

	if (!k->units && !k->parse) {
		s = settings[i].from_name(scalar(v));
		if (s < 0)
			return bad_value(p, v, k->name);
		n = s;
	} else if (key_number(p, k, v, &n)) {
		return -EINVAL;
	}
	change_set(&q->change, i, n);
	return 0;
}

static int adaptive_pair(struct parse *p, struct apply_queue *q,
			 const struct key *k, const yaml_node_t *v)
{
	uint64_t on;

	if (k->setting)
		return setting_pair(p, q, k, v);
	if (parse_bool(scalar(v), &on))
		return bad_value(p, v, k->name);
	p->qs.enabled = on ? v : NULL;
	return 0;
}

static const struct {
	const char *name;
	int strategy;		/* -1: none */
} flow_types[] = {
	{ "credit", BPQ_STRATEGY_CREDIT },
	{ "credit_based", BPQ_STRATEGY_CREDIT },
	{ "rate_based", BPQ_STRATEGY_ADAPTIVE },
	{ "adaptive", BPQ_STRATEGY_ADAPTIVE },
	{ "none", -1 },
};

static int flow_pair(struct parse *p, struct apply_queue *q,
		     const struct key *k, const yaml_node_t *v)
{
	unsigned int i;
	uint64_t n;

	if (!strcmp(k->name, "type")) {
		for (i = 0; i < ARRAY_SIZE(flow_types); i++)
			if (name_is(scalar(v), flow_types[i].name))
				break;
		if (i == ARRAY_SIZE(flow_types))
			return bad_value(p, v, k->name);
		p->qs.flow = v;
		p->qs.flow_strategy = flow_types[i].strategy;
		p->qs.rate_based = !strcmp(flow_types[i].name, "rate_based");
		return 0;
	}
	if (!strcmp(k->name, "auto_credit")) {
		if (scalar(v) && !strcmp(scalar(v), "ack"))
			n = BPQ_AUTO_CREDIT_ACK;
		else if (parse_bool(scalar(v), &n))
			return bad_value(p, v, k->name);
		set(q, "auto_credit", n);
		return 0;
	}
	if (key_number(p, k, v, &n))
		return -EINVAL;
	if (!strcmp(k->name, "initial_credits")) {
		q->initial_credits = n;
	} else if (!strcmp(k->name, "credit_batch_size")) {
		q->credit_batch = n;
	} else {
		p->qs.rate = v;
		p->qs.rate_val = n;
	}
	return 0;
}

static int alert_pair(struct parse *p, struct apply_queue *q,
		      const struct key *k, const yaml_node_t *v)
{
	unsigned int i;
	uint64_t n;

	if (key_number(p, k, v, &n))
		return -EINVAL;
	for (i = 0; strcmp(alert_names[i], k->setting); i++)
		;
	q->threshold[i] = n;
	q->alerts |= 1U << i;
	return 0;
}

static int monitoring_pair(struct parse *p, struct apply_queue *q,
			   const struct key *k, const yaml_node_t *v)
{
	if (!k->setting)
		return walk(p, q, v, "alert_thresholds", alert_keys, 0,
			    alert_pair);
	return key_number(p, k, v, &q->metrics_interval_ms);
}

/* A name of up to max - 1 letters, digits, '_', '.' and '-' */
static int valid_ident(const char *s, size_t max)
{
	size_t len = s ? strlen(s) : 0;

	if (!len || len >= max)
		return 0;
	return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
			 "0123456789_.-") == len;
}

static int valid_name(const char *s)
{
	return valid_ident(s, BPQ_NAME_MAX);
}

/* downstream: a queue's name, or a sequence of them */
static int downstream_pair(struct parse *p, struct apply_queue *q,
			   const yaml_node_t *v)
{
	const yaml_node_item_t *it, *first = &v->data.sequence.items.start[0];
	const yaml_node_t *n = v;
	int i;

	q->down_line = line_of(v);
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

/*
 * Every key a queue may have, in either shape: the tables that walk()
 * is given decide which it may have where.
 */
static int queue_pair(struct parse *p, struct apply_queue *q,
		      const struct key *k, const yaml_node_t *v)
{
	int s;

	if (k->setting)
		return setting_pair(p, q, k, v);
	if (!strcmp(k->name, "strategy")) {
		s = bpq_strategy_parse(scalar(v));
		if (s < 0)
			return bad_value(p, v, k->name);
		p->qs.strategy = v;
		set(q, "strategy", s);
		return 0;
	}
	if (!strcmp(k->name, "name")) {
		if (!scalar(v) || !valid_name(scalar(v)))
			return perr(p, v, "bad queue name '%s'",
				    scalar(v) ? scalar(v) : "");
		strcpy(q->name, scalar(v));
		return 0;
	}
	if (!strcmp(k->name, "group")) {
		if (!scalar(v) || !valid_name(scalar(v)))
			return bad_value(p, v, k->name);
		strcpy(q->group, scalar(v));
		q->group_line = line_of(v);
		return 0;
	}
	if (!strcmp(k->name, "queue"))
		return walk(p, q, v, "queue", queue_keys, p->qs.section_mask,
			    queue_pair);
	if (!strcmp(k->name, "flow_control"))
		return walk(p, q, v, "flow_control", flow_keys, 0, flow_pair);
	if (!strcmp(k->name, "adaptive"))
		return walk(p, q, v, "adaptive", adaptive_keys, 0,
			    adaptive_pair);
	if (!strcmp(k->name, "window"))
		return walk(p, q, v, "window", window_keys, 0, setting_pair);
	if (!strcmp(k->name, "monitoring"))
		return walk(p, q, v, "monitoring", monitoring_keys, 0,
			    monitoring_pair);
	return downstream_pair(p, q, v);
}

/* rate_based: min_rate = max_rate = rate */
static int fixed_rate(struct parse *p, struct apply_queue *q)
{
	static const char *const rates[] = { "min_rate", "max_rate" };
	const struct qstate *s = &p->qs;
	int i;

	if (s->rate_based && !s->rate)
		return perr(p, s->flow, "flow_control type '%s' needs a rate",
			    scalar(s->flow));
	if (!s->rate)
		return 0;
	if (!s->rate_based)
		return perr(p, s->rate, "'rate' is for flow_control type 'rate_based'");
	for (i = 0; i < 2; i++) {
		if (has(q, rates[i]) && val(q, rates[i]) != s->rate_val)
			return perr(p, s->rate, "rate %llu and %s %llu differ: rate_based fixes the rate",
				    (unsigned long long)s->rate_val, rates[i],
				    (unsigned long long)val(q, rates[i]));
		set(q, rates[i], s->rate_val);
	}
	return 0;
}

/*
 * The note of a sectioned queue that has @strategy, not @to, which
 * @flow_type (or NULL) or adaptive's enabled asks for, or which its
 * initial credits need.
 */
static void note_strategy(struct apply_queue *q, int strategy, int to,
			  const char *flow_type, int adaptive)
{
	size_t size = sizeof(q->note), n;
	char what[64] = "";

	if (flow_type)
		snprintf(what, sizeof(what), "flow_control (%s)%s", flow_type,
			 adaptive ? " and adaptive" : "");
	else if (adaptive)
		strcpy(what, "adaptive");
	n = snprintf(q->note, size, "queue '%s' has strategy %s: its ",
		     q->name, bpq_strategy_name(strategy));
	if (*what)
		n += snprintf(q->note + n, size - n,
			      "%s settings are stored but not in force%s",
			      what, q->no_grant ? ", and its " : "");
	if (q->no_grant)
		n += snprintf(q->note + n, size - n,
			      "%llu initial credits are not granted",
			      (unsigned long long)q->initial_credits);
	n += snprintf(q->note + n, size - n,
		      "; to switch: bpqctl set %s strategy=%s", q->name,
		      bpq_strategy_name(to));
	if (q->no_grant && to == BPQ_STRATEGY_CREDIT)
		snprintf(q->note + n, size - n, " && bpqctl grant %s %llu",
			 q->name, (unsigned long long)q->initial_credits);
}

/*
 * The strategy: the strategy key's, else the one flow_control's type
 * asks for, else adaptive for adaptive's enabled: true. Asked for and
 * not given, it is an error in the first shape, a note in the sectioned
 * one, where initial credits for a queue that is not a credit queue are
 * not granted either.
 */
static int resolve_strategy(struct parse *p, struct apply_queue *q)
{
	const struct qstate *s = &p->qs;
	const yaml_node_t *by = s->strategy;
	int strategy = -1, flow_off, adaptive_off, to;

	if (s->strategy) {
		strategy = val(q, "strategy");
	} else if (s->flow_strategy >= 0) {
		strategy = s->flow_strategy;
		by = s->flow;
	} else if (s->enabled) {
		strategy = BPQ_STRATEGY_ADAPTIVE;
		by = s->enabled;
	}
	if (strategy < 0)
		return 0;
	set(q, "strategy", strategy);
	flow_off = s->flow_strategy >= 0 && s->flow_strategy != strategy;
	adaptive_off = s->enabled && strategy != BPQ_STRATEGY_ADAPTIVE;
	if (!s->sectioned && flow_off)
		return perr(p, s->flow, "flow_control type '%s' needs strategy '%s'",
			    scalar(s->flow),
			    bpq_strategy_name(s->flow_strategy));
	if (!s->sectioned && adaptive_off)
		return perr(p, s->enabled, "adaptive enabled needs strategy 'adaptive'");
	q->no_grant = s->sectioned && q->initial_credits &&
		      strategy != BPQ_STRATEGY_CREDIT;
	if (!flow_off && !adaptive_off && !q->no_grant)
		return 0;
	to = flow_off ? s->flow_strategy :
	     adaptive_off ? BPQ_STRATEGY_ADAPTIVE : BPQ_STRATEGY_CREDIT;
	note_strategy(q, strategy, to, flow_off ? scalar(s->flow) : NULL,
		      adaptive_off);
	q->note_line = line_of(by);
	return 0;
}

/* Once a queue's keys are read: what they say together. */
static int finish_queue(struct parse *p, struct apply_queue *q,
			const yaml_node_t *v)
{
	if (fixed_rate(p, q))
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
	return resolve_strategy(p, q);
}

static void qstate_init(struct parse *p, int sectioned, unsigned int mask)
{
	memset(&p->qs, 0, sizeof(p->qs));
	p->qs.flow_strategy = -1;
	p->qs.sectioned = sectioned;
	p->qs.section_mask = mask;
}

/* The value of key in map, or NULL */
static const yaml_node_t *map_get(struct parse *p, const yaml_node_t *map,
				  const char *key)
{
	yaml_node_pair_t *a;
	const char *k;

	if (map->type != YAML_MAPPING_NODE)
		return NULL;
	for (a = map->data.mapping.pairs.start; a < map->data.mapping.pairs.top;
	     a++) {
		k = scalar(yaml_document_get_node(&p->doc, a->key));
		if (k && !strcmp(k, key))
			return yaml_document_get_node(&p->doc, a->value);
	}
	return NULL;
}

/* A queue of a queues mapping: the first shape, or sectioned. */
static int parse_queue(struct parse *p, struct apply_queue *q,
		       const yaml_node_t *kn, const yaml_node_t *v)
{
	const char *name = scalar(kn);

	if (!name || !valid_name(name))
		return perr(p, kn, "bad queue name '%s'", name ? name : "");
	strcpy(q->name, name);
	q->line = line_of(kn);
	if (empty(v))
		return 0;	/* "NAME:" alone: create with the defaults */
	if (map_get(p, v, "queue")) {
		qstate_init(p, 1, K_SECTION);
		if (walk(p, q, v, "a queue", section_keys, 0, queue_pair))
			return -EINVAL;
	} else {
		qstate_init(p, 0, 0);
		if (walk(p, q, v, "a queue", queue_keys, K_FLAT, queue_pair))
			return -EINVAL;
	}
	return finish_queue(p, q, v);
}

static int add_link(struct parse *p, const char *up, const char *down,
		    int line)
{
	struct apply_file *af = p->af;
	struct apply_link *l;

	for (l = af->links; l < af->links + af->nr_links; l++)
		if (!strcmp(l->up, up) && !strcmp(l->down, down))
			return 0;	/* given by links and downstream */
	if (af->nr_links == p->links_cap) {
		l = realloc(af->links, (p->links_cap + 8) * sizeof(*l));
		if (!l)
			return perr(p, NULL, "out of memory");
		af->links = l;
		p->links_cap += 8;
	}
	l = &af->links[af->nr_links++];
	strcpy(l->up, up);
	strcpy(l->down, down);
	l->line = line;
	return 0;
}

/* links: [[up, down], ...] */
static int parse_links(struct parse *p, const yaml_node_t *v)
{
	const yaml_node_item_t *it;
	const yaml_node_t *n, *ends[2];
	int first = p->af->nr_links, i;

	if (empty(v))
		return 0;
	if (v->type != YAML_SEQUENCE_NODE)
		return perr(p, v, "links must be a list of [upstream, downstream] pairs");
	for (it = v->data.sequence.items.start; it < v->data.sequence.items.top;
	     it++) {
		n = yaml_document_get_node(&p->doc, *it);
		if (n->type != YAML_SEQUENCE_NODE ||
		    n->data.sequence.items.top - n->data.sequence.items.start != 2)
			return perr(p, n, "a link is a pair [upstream, downstream]");
		for (i = 0; i < 2; i++) {
			ends[i] = yaml_document_get_node(
				&p->doc, n->data.sequence.items.start[i]);
			if (!scalar(ends[i]) || !valid_name(scalar(ends[i])))
				return bad_value(p, ends[i], "links");
		}
		if (!strcmp(scalar(ends[0]), scalar(ends[1])))
			return perr(p, n, "'%s' linked to itself",
				    scalar(ends[0]));
		for (i = first; i < p->af->nr_links; i++)
			if (!strcmp(p->af->links[i].up, scalar(ends[0])) &&
			    !strcmp(p->af->links[i].down, scalar(ends[1])))
				return perr(p, n, "link '%s' to '%s' twice",
					    scalar(ends[0]), scalar(ends[1]));
		if (add_link(p, scalar(ends[0]), scalar(ends[1]), line_of(n)))
			return -EINVAL;
	}
	return 0;
}

/* host:port, [v6 address]:port, or unix:/path */
static int valid_address(const char *s)
{
	const char *colon;
	uint64_t port;

	if (!s || strpbrk(s, " \t"))
		return 0;
	if (!strncmp(s, "unix:", 5))
		return s[5] == '/' && s[6];
	if (*s == '[') {
		colon = strchr(s, ']');
		if (!colon || colon == s + 1 || *++colon != ':')
			return 0;
	} else {
		colon = strchr(s, ':');
		if (!colon || colon == s || strchr(colon + 1, ':'))
			return 0;
	}
	return !parse_u64(colon + 1, 65535, &port) && port;
}

static int cluster_pair(struct parse *p, struct apply_queue *q,
			const struct key *k, const yaml_node_t *v)
{
	struct apply_cluster *ac = &p->af->cluster;
	struct cluster *c = &p->cl;
	const char *s = scalar(v);
	uint64_t n;

	if (!strcmp(k->name, "redis")) {
		if (walk(p, q, v, "redis", redis_keys, 0, cluster_pair))
			return -EINVAL;
		return c->address ? 0 : perr(p, v, "redis needs an address");
	}
	if (!strcmp(k->name, "policy")) {
		if (scalar(v))	/* the type alone */
			return cluster_pair(p, q, &policy_keys[0], v);
		return walk(p, q, v, "policy", policy_keys, 0, cluster_pair);
	}
	if (!strcmp(k->name, "node_id")) {
		if (!valid_ident(s, sizeof(ac->node_id)))
			return bad_value(p, v, k->name);
		strcpy(ac->node_id, s);
		return 0;
	}
	if (!strcmp(k->name, "key_prefix")) {
		if (!s || !*s || strlen(s) >= sizeof(ac->prefix) ||
		    strpbrk(s, " \t\r\n"))
			return bad_value(p, v, k->name);
		strcpy(ac->prefix, s);
		return 0;
	}
	if (!strcmp(k->name, "address") || !strcmp(k->name, "channel_address")) {
		char *to = k->name[0] == 'a' ? ac->address :
					       ac->channel_address;

		if (k->name[0] == 'a')
			c->address = v;
		if (!valid_address(s) || strlen(s) >= sizeof(ac->address))
			return bad_value(p, v, k->name);
		strcpy(to, s);
		return 0;
	}
	if (!strcmp(k->name, "queue")) {
		c->queue = v;
		if (!valid_name(s))
			return bad_value(p, v, k->name);
		strcpy(ac->queue, s);
		return 0;
	}
	if (!strcmp(k->name, "type")) {
		c->type = v;
		ac->policy = name_is(s, "least_loaded") ? CLUSTER_LEAST_LOADED :
			     name_is(s, "budget") ? CLUSTER_BUDGET : 0;
		return ac->policy ? 0 : bad_value(p, v, k->name);
	}
	if (key_number(p, k, v, &n))
		return -EINVAL;
	if (!strcmp(k->name, "ttl")) {
		ac->ttl_ms = n;
	} else if (!strcmp(k->name, "report_interval")) {
		c->report = v;
		ac->report_ms = n;
	} else if (!strcmp(k->name, "grace")) {
		c->grace = v;
		ac->grace_ms = n;
	} else if (!strcmp(k->name, "memory_pressure")) {
		ac->memory_pct = n;
	} else if (!strcmp(k->name, "memory_window")) {
		c->window = v;
		ac->memory_window_ms = n;
	} else if (!strcmp(k->name, "margin")) {
		c->margin = v;
		ac->margin_pct = n;
	} else {
		c->budget = v;
		ac->budget = n;
	}
	return 0;
}

/*
 * cluster: bpqd's (bpqd(8)); bpqctl apply checks it and leaves it. The
 * defaults: key_prefix bpq:, ttl 15s, report_interval 1s (below ttl),
 * grace three report intervals, margin 10%; budget's queue the file's
 * only queue.
 */
static int parse_cluster(struct parse *p, const yaml_node_t *v)
{
	struct apply_cluster *ac = &p->af->cluster;
	struct cluster *c = &p->cl;

	memset(c, 0, sizeof(*c));
	if (ac->line)
		return perr(p, p->key, "duplicate key 'cluster'");
	ac->line = line_of(v);
	if (walk(p, NULL, v, "cluster", cluster_keys, 0, cluster_pair))
		return -EINVAL;
	if (!ac->prefix[0])
		strcpy(ac->prefix, CLUSTER_PREFIX_DEFAULT);
	if (!ac->ttl_ms)
		ac->ttl_ms = CLUSTER_TTL_DEFAULT;
	if (!ac->report_ms)
		ac->report_ms = ac->ttl_ms / 2 < CLUSTER_REPORT_DEFAULT ?
				ac->ttl_ms / 2 : CLUSTER_REPORT_DEFAULT;
	if (ac->report_ms >= ac->ttl_ms)
		return perr(p, c->report ? c->report : v,
			    "report_interval %llums is not below ttl %llums",
			    (unsigned long long)ac->report_ms,
			    (unsigned long long)ac->ttl_ms);
	if (!c->grace)
		ac->grace_ms = 3 * ac->report_ms;
	if ((c->margin || c->budget || c->queue) && !ac->policy)
		return perr(p, c->margin ? c->margin : c->budget ? c->budget :
			    c->queue, "policy needs a type");
	if (c->margin && ac->policy != CLUSTER_LEAST_LOADED)
		return perr(p, c->margin, "'margin' is for policy least_loaded");
	if (!c->margin)
		ac->margin_pct = CLUSTER_MARGIN_DEFAULT;
	if ((c->budget || c->queue) && ac->policy != CLUSTER_BUDGET)
		return perr(p, c->budget ? c->budget : c->queue,
			    "'%s' is for policy budget",
			    c->budget ? "budget" : "queue");
	if (ac->policy == CLUSTER_BUDGET && !c->budget)
		return perr(p, c->type, "policy budget needs a budget");
	if (c->window && !ac->memory_pct)
		return perr(p, c->window,
			    "'memory_window' is for memory_pressure");
	if (ac->memory_pct && !ac->memory_window_ms)
		ac->memory_window_ms = 1000;
	if (!c->address)
		return perr(p, v, "cluster needs redis: { address: ... }");
	return 0;
}

/* budget's queue: given, else the file's only one */
static int check_cluster(struct parse *p)
{
	struct apply_cluster *ac = &p->af->cluster;
	int i;

	if (ac->policy != CLUSTER_BUDGET)
		return 0;
	if (!ac->queue[0]) {
		if (p->af->nr != 1)
			return perr(p, p->cl.type,
				    "policy budget needs a queue: the file has %d",
				    p->af->nr);
		strcpy(ac->queue, p->af->queues[0].name);
		return 0;
	}
	for (i = 0; i < p->af->nr; i++)
		if (!strcmp(p->af->queues[i].name, ac->queue))
			return 0;
	return perr(p, p->cl.queue, "budget's queue '%s' is not in the file",
		    ac->queue);
}

/* A queues mapping into af->queues, after the nr there are. */
static int parse_queues(struct parse *p, const yaml_node_t *queues)
{
	struct apply_file *af = p->af;
	yaml_node_pair_t *a;
	const yaml_node_t *k;
	int i;

	if (empty(queues))
		return 0;
	if (queues->type != YAML_MAPPING_NODE)
		return perr(p, queues, "'queues' must be a mapping");
	for (a = queues->data.mapping.pairs.start;
	     a < queues->data.mapping.pairs.top; a++) {
		k = yaml_document_get_node(&p->doc, a->key);
		for (i = 0; i < af->nr; i++)
			if (scalar(k) && !strcmp(scalar(k), af->queues[i].name))
				return perr(p, k, "duplicate queue '%s'",
					    scalar(k));
		if (parse_queue(p, &af->queues[af->nr], k,
				yaml_document_get_node(&p->doc, a->value)))
			return -EINVAL;
		af->nr++;
	}
	return 0;
}

/* As perr(), at a line number */
static int __attribute__((format(printf, 3, 4)))
perr_line(struct parse *p, int line, const char *fmt, ...)
{
	size_t len;
	va_list ap;

	len = snprintf(p->err, p->errlen, "%s:%d: ", p->file, line);
	if (len < p->errlen) {
		va_start(ap, fmt);
		vsnprintf(p->err + len, p->errlen - len, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

/*
 * Queue @queue in group @group, by a members list or a group key (at
 * @line): the same twice is fine, two groups are not.
 */
static int add_member(struct parse *p, const char *queue, const char *group,
		      int line)
{
	struct apply_file *af = p->af;
	struct apply_member *m;

	for (m = af->members; m < af->members + af->nr_members; m++) {
		if (strcmp(m->queue, queue))
			continue;
		if (!strcmp(m->group, group))
			return 0;
		return perr_line(p, line, "queue '%s' in group '%s', and in "
				 "'%s' at line %d: a queue is in one group",
				 queue, group, m->group, m->line);
	}
	if (af->nr_members == p->members_cap) {
		m = realloc(af->members, (p->members_cap + 8) * sizeof(*m));
		if (!m)
			return perr(p, NULL, "out of memory");
		af->members = m;
		p->members_cap += 8;
	}
	m = &af->members[af->nr_members++];
	strcpy(m->queue, queue);
	strcpy(m->group, group);
	m->line = line;
	return 0;
}

/* members: a queue's name, or a list of them */
static int members_pair(struct parse *p, const yaml_node_t *v)
{
	const yaml_node_item_t *it;
	const yaml_node_t *n;
	int i, n_items;

	if (empty(v))
		return 0;
	if (v->type == YAML_SCALAR_NODE) {
		if (!valid_name(scalar(v)))
			return bad_value(p, v, "members");
		return add_member(p, scalar(v), p->grp->name, line_of(v));
	}
	if (v->type != YAML_SEQUENCE_NODE)
		return perr(p, v, "members must be a list of queues");
	n_items = v->data.sequence.items.top - v->data.sequence.items.start;
	for (i = 0; i < n_items; i++) {
		it = &v->data.sequence.items.start[i];
		n = yaml_document_get_node(&p->doc, *it);
		if (!scalar(n) || !valid_name(scalar(n)))
			return bad_value(p, n, "members");
		if (add_member(p, scalar(n), p->grp->name, line_of(n)))
			return -EINVAL;
	}
	return 0;
}

static int group_pair(struct parse *p, struct apply_queue *q,
		      const struct key *k, const yaml_node_t *v)
{
	struct apply_group *g = p->grp;
	uint64_t n;

	(void)q;
	if (!strcmp(k->name, "members"))
		return members_pair(p, v);
	if (!strcmp(k->name, "parent")) {
		if (!scalar(v) || !valid_name(scalar(v)))
			return bad_value(p, v, k->name);
		if (!strcmp(scalar(v), g->name))
			return perr(p, v, "group '%s' within itself", g->name);
		strcpy(g->parent, scalar(v));
		return 0;
	}
	if (key_number(p, k, v, &n))
		return -EINVAL;
	if (!strcmp(k->name, "high_watermark")) {
		g->high = n;
		p->grp_high = 1;
	} else if (!strcmp(k->name, "low_watermark")) {
		g->low = n;
		p->grp_low = 1;
	} else {
		g->capacity = n;
	}
	return 0;
}

/* groups: { NAME: { capacity, high_watermark, ... }, ... } */
static int parse_groups(struct parse *p, const yaml_node_t *groups)
{
	struct apply_file *af = p->af;
	struct apply_group *g;
	const yaml_node_t *k, *v;
	yaml_node_pair_t *a;
	const char *name;
	int i;

	if (empty(groups))
		return 0;
	if (groups->type != YAML_MAPPING_NODE)
		return perr(p, groups, "'groups' must be a mapping");
	for (a = groups->data.mapping.pairs.start;
	     a < groups->data.mapping.pairs.top; a++) {
		k = yaml_document_get_node(&p->doc, a->key);
		v = yaml_document_get_node(&p->doc, a->value);
		name = scalar(k);
		if (!name || !valid_name(name))
			return perr(p, k, "bad group name '%s'",
				    name ? name : "");
		for (i = 0; i < af->nr_groups; i++)
			if (!strcmp(name, af->groups[i].name))
				return perr(p, k, "duplicate group '%s'", name);
		if (af->nr_groups == p->groups_cap) {
			g = realloc(af->groups,
				    (p->groups_cap + 8) * sizeof(*g));
			if (!g)
				return perr(p, NULL, "out of memory");
			af->groups = g;
			p->groups_cap += 8;
		}
		g = &af->groups[af->nr_groups++];
		memset(g, 0, sizeof(*g));
		strcpy(g->name, name);
		g->line = line_of(k);
		p->grp = g;
		p->grp_high = p->grp_low = 0;
		if (walk(p, NULL, v, "a group", group_keys, 0, group_pair))
			return -EINVAL;
		if (!g->capacity)
			return perr(p, k, "group '%s': no capacity", name);
		if (!p->grp_high)
			g->high = GROUP_HIGH_DEFAULT;
		if (!p->grp_low)
			g->low = g->high < GROUP_LOW_DEFAULT ? g->high :
							       GROUP_LOW_DEFAULT;
		if (g->low > g->high)
			return perr(p, k, "group '%s': low_watermark %u is "
				    "above high_watermark %u%s", name, g->low,
				    g->high, p->grp_high ? "" :
				    " (the default)");
	}
	return 0;
}

static int group_index(const struct apply_file *af, const char *name)
{
	int i;

	for (i = 0; i < af->nr_groups; i++)
		if (!strcmp(af->groups[i].name, name))
			return i;
	return -1;
}

/*
 * Parents before the groups within: a group whose parent is in the file
 * comes after it. A parent outside the file must exist when applied.
 */
static int order_groups(struct parse *p)
{
	struct apply_file *af = p->af;
	struct apply_group tmp;
	int i, j, depth, moved;

	for (i = 0; i < af->nr_groups; i++) {
		depth = 1;
		for (j = group_index(af, af->groups[i].parent); j >= 0;
		     j = group_index(af, af->groups[j].parent)) {
			if (j == i)
				return perr_line(p, af->groups[i].line,
						 "group '%s' is within itself "
						 "(through its parents)",
						 af->groups[i].name);
			if (++depth > BPQ_GROUP_DEPTH)
				return perr_line(p, af->groups[i].line,
						 "group '%s': more than %d "
						 "levels of groups",
						 af->groups[i].name,
						 BPQ_GROUP_DEPTH);
		}
	}
	do {	/* no cycle: this ends */
		moved = 0;
		for (i = 0; i < af->nr_groups; i++) {
			j = group_index(af, af->groups[i].parent);
			if (j > i) {
				tmp = af->groups[i];
				memmove(&af->groups[i], &af->groups[i + 1],
					(j - i) * sizeof(tmp));
				af->groups[j] = tmp;
				moved = 1;
				break;
			}
		}
	} while (moved);
	return 0;
}

static int section_pair(struct parse *p, struct apply_queue *q,
			const struct key *k, const yaml_node_t *v)
{
	(void)q;
	p->bp[k - section_keys] = v;
	p->bp_key[k - section_keys] = p->key;
	return 0;
}

/*
 * backpressure: the root queue's sections (first in af->queues), the
 * queues, the links, the cluster.
 */
static int parse_backpressure(struct parse *p, const yaml_node_t *bp)
{
	const yaml_node_t *const *found = p->bp, *queues;
	struct apply_file *af = p->af;
	struct apply_queue *q;
	int i, n = 1;

	if (walk(p, NULL, bp, "backpressure", section_keys, K_ROOT,
		 section_pair))
		return -EINVAL;
	queues = found[BP_QUEUES];
	if (queues && queues->type == YAML_MAPPING_NODE)
		n += queues->data.mapping.pairs.top -
		     queues->data.mapping.pairs.start;
	af->queues = calloc(n, sizeof(*af->queues));
	if (!af->queues)
		return perr(p, NULL, "out of memory");
	for (i = 0; i < NR_SECTIONS && !found[i]; i++)
		;
	if (i < NR_SECTIONS) {
		q = &af->queues[af->nr++];
		strcpy(q->name, "default");
		q->line = line_of(p->bp_key[i]);
		qstate_init(p, 1, K_SECTION | K_ROOT);
		for (i = 0; i < NR_SECTIONS; i++)
			if (found[i] && queue_pair(p, q, &section_keys[i],
						   found[i]))
				return -EINVAL;
		if (finish_queue(p, q, found[0] ? found[0] : bp))
			return -EINVAL;
	}
	if (queues && parse_queues(p, queues))
		return -EINVAL;
	if (found[BP_CLUSTER] && parse_cluster(p, found[BP_CLUSTER]))
		return -EINVAL;
	if (found[BP_GROUPS] && parse_groups(p, found[BP_GROUPS]))
		return -EINVAL;
	return found[BP_LINKS] ? parse_links(p, found[BP_LINKS]) : 0;
}

/* The root: queues, or backpressure */
static int parse_doc(struct parse *p)
{
	const yaml_node_t *root, *k, *v = NULL, *groups = NULL, *cluster = NULL;
	struct apply_file *af = p->af;
	yaml_node_pair_t *a;
	const char *name, *shape = NULL;
	int i, j, ret;

	root = yaml_document_get_root_node(&p->doc);
	if (!root)
		return perr(p, NULL, "empty file");
	if (root->type != YAML_MAPPING_NODE)
		return perr(p, root, "expected a mapping with key 'queues' or 'backpressure'");
	for (a = root->data.mapping.pairs.start;
	     a < root->data.mapping.pairs.top; a++) {
		k = yaml_document_get_node(&p->doc, a->key);
		name = scalar(k) ? scalar(k) : "";
		if (!strcmp(name, "groups")) {
			if (groups)
				return perr(p, k, "duplicate key 'groups'");
			groups = yaml_document_get_node(&p->doc, a->value);
			continue;
		}
		if (!strcmp(name, "cluster")) {
			if (cluster)
				return perr(p, k, "duplicate key 'cluster'");
			p->key = k;
			cluster = yaml_document_get_node(&p->doc, a->value);
			continue;
		}
		if (strcmp(name, "queues") && strcmp(name, "backpressure"))
			return perr(p, k, "unknown key '%s'", name);
		if (v)
			return perr(p, k, "'%s' after '%s': a file has one of them (backpressure has queues)",
				    name, shape);
		v = yaml_document_get_node(&p->doc, a->value);
		shape = name;
	}
	if (!v)
		return perr(p, root, "no key 'queues' or 'backpressure'");
	name = shape;
	if (!strcmp(name, "backpressure")) {
		ret = parse_backpressure(p, v);
	} else {
		i = v->type == YAML_MAPPING_NODE ?
			v->data.mapping.pairs.top - v->data.mapping.pairs.start : 0;
		af->queues = calloc(i ? i : 1, sizeof(*af->queues));
		if (!af->queues)
			return perr(p, NULL, "out of memory");
		ret = parse_queues(p, v);
	}
	for (i = 0; !ret && i < af->nr; i++)
		for (j = 0; !ret && j < af->queues[i].nr_down; j++)
			ret = add_link(p, af->queues[i].name,
				       af->queues[i].downstream[j],
				       af->queues[i].down_line);
	if (!ret && groups)
		ret = parse_groups(p, groups);
	if (!ret && cluster)
		ret = parse_cluster(p, cluster);
	if (!ret)
		ret = check_cluster(p);
	for (i = 0; !ret && i < af->nr; i++)
		if (af->queues[i].group[0])
			ret = add_member(p, af->queues[i].name,
					 af->queues[i].group,
					 af->queues[i].group_line);
	return ret ? ret : order_groups(p);
}

int apply_parse(const char *file, const char *text, size_t len,
		struct apply_file *out, char *err, size_t errlen)
{
	struct parse p = {
		.file = file, .af = out, .err = err, .errlen = errlen,
	};
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
	ret = parse_doc(&p);
	yaml_document_delete(&p.doc);
	yaml_parser_delete(&parser);
	if (ret)
		apply_free(out);
	return ret;
}

static char *read_all(FILE *f, size_t *len)
{
	size_t cap = 4096, n = 0, r;
	char *buf = malloc(cap), *nb;

	while (buf && (r = fread(buf + n, 1, cap - n, f)) > 0) {
		n += r;
		if (n == cap) {
			nb = realloc(buf, cap * 2);
			if (!nb) {
				free(buf);
				return NULL;
			}
			buf = nb;
			cap *= 2;
		}
	}
	if (buf && ferror(f)) {
		free(buf);
		return NULL;
	}
	*len = n;
	return buf;
}

/* Read and check FILE ("-": standard input) for cmd; 0 or EXIT_FAIL. */
int apply_load(const char *cmd, const char *file, struct apply_file *af)
{
	char err[512], *text;
	size_t len;
	FILE *f;
	int ret;

	f = strcmp(file, "-") ? fopen(file, "r") : stdin;
	if (!f) {
		err_msg("%s %s: %s", cmd, file, strerror(errno));
		return EXIT_FAIL;
	}
	text = read_all(f, &len);
	if (f != stdin)
		fclose(f);
	if (!text) {
		err_msg("%s %s: cannot read", cmd, file);
		return EXIT_FAIL;
	}
	ret = apply_parse(file, text, len, af, err, sizeof(err));
	free(text);
	if (ret) {
		err_msg("%s", err);
		return EXIT_FAIL;
	}
	return 0;
}

void apply_notes(const char *file, const struct apply_file *af)
{
	int i;

	for (i = 0; i < af->nr; i++)
		if (af->queues[i].note[0])
			err_msg("%s:%d: note: %s", file,
				af->queues[i].note_line, af->queues[i].note);
}

/*
 * What apply would do: each queue's settings as show prints them, what
 * is not a setting, then the links.
 */
void apply_print(FILE *f, const struct apply_file *af)
{
	const struct apply_group *g;
	const struct apply_queue *q;
	const char *name;
	unsigned int s;
	int i;

	for (q = af->queues; q < af->queues + af->nr; q++) {
		fprintf(f, "queue: %s\n  line: %d\n", q->name, q->line);
		for (s = 0; s < nr_settings; s++) {
			if (!(q->change.have & (1U << s)))
				continue;
			name = setting_name(s, &q->change.val);
			if (name)
				fprintf(f, "  %s: %s\n", settings[s].name, name);
			else
				fprintf(f, "  %s: %llu\n", settings[s].name,
					(unsigned long long)
					setting_get(s, &q->change.val));
		}
		if (q->initial_credits)
			fprintf(f, "  initial_credits: %llu%s\n",
				(unsigned long long)q->initial_credits,
				q->no_grant ? " (not granted)" : "");
		if (q->credit_batch)
			fprintf(f, "  credit_batch_size: %llu (advisory)\n",
				(unsigned long long)q->credit_batch);
		if (q->metrics_interval_ms)
			fprintf(f, "  metrics_interval_ms: %llu\n",
				(unsigned long long)q->metrics_interval_ms);
		for (i = 0; i < NR_ALERTS; i++)
			if (q->alerts & (1U << i))
				fprintf(f, "  alert %s: %llu%s\n", alert_names[i],
					(unsigned long long)q->threshold[i],
					i == ALERT_UTILIZATION ? "%" :
					i == ALERT_DROP_RATE ? " ppm" :
					i == ALERT_DEPTH ? "" : " ms");
	}
	for (i = 0; i < af->nr_links; i++)
		fprintf(f, "link: %s %s\n", af->links[i].up, af->links[i].down);
	for (g = af->groups; g < af->groups + af->nr_groups; g++) {
		fprintf(f, "group: %s\n  line: %d\n", g->name, g->line);
		if (g->parent[0])
			fprintf(f, "  parent: %s\n", g->parent);
		fprintf(f, "  capacity_msgs: %u\n  high_watermark: %u\n"
			"  low_watermark: %u\n", g->capacity, g->high, g->low);
	}
	for (i = 0; i < af->nr_members; i++)
		fprintf(f, "member: %s %s\n", af->members[i].queue,
			af->members[i].group);
}

void apply_free(struct apply_file *af)
{
	free(af->queues);
	free(af->links);
	free(af->groups);
	free(af->members);
	memset(af, 0, sizeof(*af));
}
