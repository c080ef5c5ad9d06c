// SPDX-License-Identifier: GPL-2.0
/*
 * The settings of a queue by their sysfs names, and partial changes to a
 * struct bpq_config that are applied in one BPQ_IOC_SET_CONFIG.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "bpqctl.h"

#define SETTING(f) { #f, offsetof(struct bpq_config, f), \
		     sizeof(((struct bpq_config *)0)->f), NULL, NULL, 0 }
#define NAMED_SETTING(f, to, from) { #f, offsetof(struct bpq_config, f), \
				     sizeof(((struct bpq_config *)0)->f), \
				     to, from, 0 }
/* named in text as sysfs names it, a number in JSON */
#define MIXED_SETTING(f, to, from) { #f, offsetof(struct bpq_config, f), \
				     sizeof(((struct bpq_config *)0)->f), \
				     to, from, 1 }

/* auto_credit as sysfs has it: 0, 1 or "ack" (written also as 2) */
static const char *auto_credit_name(unsigned int v)
{
	static const char *const names[] = {
		[BPQ_AUTO_CREDIT_OFF] = "0",
		[BPQ_AUTO_CREDIT_DELIVERY] = "1",
		[BPQ_AUTO_CREDIT_ACK] = "ack",
	};

	return v < sizeof(names) / sizeof(names[0]) ? names[v] : NULL;
}

static int auto_credit_parse(const char *name)
{
	if (!name)
		return -EINVAL;
	if (!strcmp(name, "0"))
		return BPQ_AUTO_CREDIT_OFF;
	if (!strcmp(name, "1"))
		return BPQ_AUTO_CREDIT_DELIVERY;
	if (!strcmp(name, "2") || !strcmp(name, "ack"))
		return BPQ_AUTO_CREDIT_ACK;
	return -EINVAL;
}

/* strategy first (list, show and stats print it apart), then the rest */
const struct setting settings[] = {
	NAMED_SETTING(strategy, bpq_strategy_name, bpq_strategy_parse),
	SETTING(capacity_msgs),
	SETTING(capacity_bytes),
	SETTING(max_msg_size),
	SETTING(high_watermark),
	SETTING(low_watermark),
	SETTING(write_timeout_ms),
	MIXED_SETTING(auto_credit, auto_credit_name, auto_credit_parse),
	SETTING(target_latency_us),
	SETTING(min_rate),
	SETTING(max_rate),
	SETTING(adjust_interval_ms),
	SETTING(increase_pct),
	SETTING(decrease_pct),
	NAMED_SETTING(hangup, bpq_hangup_name, bpq_hangup_parse),
	NAMED_SETTING(ack_mode, bpq_ack_mode_name, bpq_ack_mode_parse),
	SETTING(initial_cwnd),
	SETTING(min_cwnd),
	SETTING(max_cwnd),
	SETTING(initial_ssthresh),
	SETTING(ack_timeout_ms),
	NAMED_SETTING(read_mode, bpq_read_mode_name, bpq_read_mode_parse),
};

const unsigned int nr_settings = sizeof(settings) / sizeof(settings[0]);

int setting_find(const char *name)
{
	unsigned int i;

	for (i = 0; i < nr_settings; i++)
		if (!strcmp(settings[i].name, name))
			return i;
	return -ENOENT;
}

/* Decimal (or 0x hex) digits only, no sign, no trailing junk. */
int parse_u64(const char *s, uint64_t max, uint64_t *out)
{
	unsigned long long v;
	char *end;

	if (!s || !((*s >= '0' && *s <= '9')))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 0);
	if (*end || errno || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

uint64_t setting_get(int idx, const struct bpq_config *cfg)
{
	const char *p = (const char *)cfg + settings[idx].offset;
	uint32_t v32;
	uint64_t v64;

	if (settings[idx].width == 8) {
		memcpy(&v64, p, 8);
		return v64;
	}
	memcpy(&v32, p, 4);
	return v32;
}

void setting_put(int idx, struct bpq_config *cfg, uint64_t v)
{
	char *p = (char *)cfg + settings[idx].offset;
	uint32_t v32 = v;

	if (settings[idx].width == 8)
		memcpy(p, &v, 8);
	else
		memcpy(p, &v32, 4);
}

/* The value's name for a named setting ("unknown" if it has none), else NULL. */
const char *setting_name(int idx, const struct bpq_config *cfg)
{
	const char *name;

	if (!settings[idx].to_name)
		return NULL;
	name = settings[idx].to_name(setting_get(idx, cfg));
	return name ? name : "unknown";
}

int setting_parse(int idx, const char *text, struct bpq_config *cfg)
{
	uint64_t v;
	int s;

	if (settings[idx].from_name) {
		s = settings[idx].from_name(text);
		if (s < 0)
			return s;
		v = s;
	} else if (parse_u64(text, settings[idx].width == 8 ? UINT64_MAX :
				     UINT32_MAX, &v)) {
		return -EINVAL;
	}
	setting_put(idx, cfg, v);
	return 0;
}

void change_set(struct config_change *c, int idx, uint64_t v)
{
	setting_put(idx, &c->val, v);
	c->have |= 1U << idx;
}

static int change_has(const struct config_change *c, const char *name)
{
	return !!(c->have & (1U << setting_find(name)));
}

/*
 * The kernel wants low_watermark <= high_watermark; lowering only the high
 * one (from the default 100/100) takes the low one along, so that
 * "high_watermark=80" alone does what it says. Likewise it wants
 * min_cwnd <= initial_cwnd <= max_cwnd: a min_cwnd or max_cwnd given
 * without initial_cwnd takes initial_cwnd along into its range.
 */
void change_apply(const struct config_change *c, struct bpq_config *cfg)
{
	unsigned int i;

	for (i = 0; i < nr_settings; i++)
		if (c->have & (1U << i))
			setting_put(i, cfg, setting_get(i, &c->val));
	if (change_has(c, "high_watermark") && !change_has(c, "low_watermark") &&
	    cfg->low_watermark > cfg->high_watermark)
		cfg->low_watermark = cfg->high_watermark;
	if (!change_has(c, "initial_cwnd")) {
		if (change_has(c, "max_cwnd") && cfg->initial_cwnd > cfg->max_cwnd)
			cfg->initial_cwnd = cfg->max_cwnd;
		if (change_has(c, "min_cwnd") && cfg->initial_cwnd < cfg->min_cwnd)
			cfg->initial_cwnd = cfg->min_cwnd;
	}
}
