// SPDX-License-Identifier: GPL-2.0
/*
 * /sys/class/bpq/bpqN/: settings, state, and the counters in stats/.
 * One value per file; a bad value fails with EINVAL and changes nothing.
 */
#include <linux/device.h>
#include <linux/kernel.h>
#include <linux/stddef.h>
#include <linux/string.h>
#include <linux/sysfs.h>

#include "bpq.h"

static const char * const bpq_strategy_names[] = {
	[BPQ_STRATEGY_BLOCK] = "block",
	[BPQ_STRATEGY_DROP_NEWEST] = "drop-newest",
	[BPQ_STRATEGY_DROP_OLDEST] = "drop-oldest",
	[BPQ_STRATEGY_CREDIT] = "credit",
	[BPQ_STRATEGY_ADAPTIVE] = "adaptive",
};

const char *bpq_strategy_name(u32 strategy)
{
	if (strategy >= ARRAY_SIZE(bpq_strategy_names))
		return "unknown";
	return bpq_strategy_names[strategy];
}

static ssize_t bpq_store_setting(struct device *dev, size_t count,
				 int (*modify)(struct bpq_config *cfg,
					       const char *buf),
				 const char *buf)
{
	int ret = bpq_update_config(bpq_dev_queue(dev), modify, buf);

	return ret ? ret : count;
}

static ssize_t strategy_show(struct device *dev,
			     struct device_attribute *attr, char *buf)
{
	struct bpq_config cfg;

	bpq_get_config(bpq_dev_queue(dev), &cfg);
	return sysfs_emit(buf, "%s\n", bpq_strategy_name(cfg.strategy));
}

static int bpq_modify_strategy(struct bpq_config *cfg, const char *buf)
{
	int i = sysfs_match_string(bpq_strategy_names, buf);

	if (i < 0)
		return -EINVAL;
	cfg->strategy = i;
	return 0;
}

static ssize_t strategy_store(struct device *dev,
			      struct device_attribute *attr,
			      const char *buf, size_t count)
{
	return bpq_store_setting(dev, count, bpq_modify_strategy, buf);
}
static DEVICE_ATTR_RW(strategy);

#define BPQ_SETTING_ATTR(field, type, parse)				\
static ssize_t field##_show(struct device *dev,				\
			    struct device_attribute *attr, char *buf)	\
{									\
	struct bpq_config cfg;						\
									\
	bpq_get_config(bpq_dev_queue(dev), &cfg);			\
	return sysfs_emit(buf, "%llu\n", (u64)cfg.field);		\
}									\
static int bpq_modify_##field(struct bpq_config *cfg, const char *buf)	\
{									\
	type val;							\
	int ret = parse(buf, 0, &val);					\
									\
	if (ret)							\
		return ret == -ERANGE ? -EINVAL : ret;			\
	cfg->field = val;						\
	return 0;							\
}									\
static ssize_t field##_store(struct device *dev,			\
			     struct device_attribute *attr,		\
			     const char *buf, size_t count)		\
{									\
	return bpq_store_setting(dev, count, bpq_modify_##field, buf);	\
}									\
static DEVICE_ATTR_RW(field)

BPQ_SETTING_ATTR(capacity_msgs, u32, kstrtou32);
BPQ_SETTING_ATTR(capacity_bytes, u64, kstrtou64);
BPQ_SETTING_ATTR(max_msg_size, u32, kstrtou32);
BPQ_SETTING_ATTR(high_watermark, u32, kstrtou32);
BPQ_SETTING_ATTR(low_watermark, u32, kstrtou32);
BPQ_SETTING_ATTR(write_timeout_ms, u32, kstrtou32);
BPQ_SETTING_ATTR(auto_credit, u32, kstrtou32);
BPQ_SETTING_ATTR(target_latency_us, u32, kstrtou32);
BPQ_SETTING_ATTR(min_rate, u32, kstrtou32);
BPQ_SETTING_ATTR(max_rate, u32, kstrtou32);
BPQ_SETTING_ATTR(adjust_interval_ms, u32, kstrtou32);

static ssize_t name_show(struct device *dev, struct device_attribute *attr,
			 char *buf)
{
	return sysfs_emit(buf, "%s\n", bpq_dev_queue(dev)->name);
}
static DEVICE_ATTR_RO(name);

static ssize_t grant_store(struct device *dev, struct device_attribute *attr,
			   const char *buf, size_t count)
{
	u64 n;
	int ret;

	ret = kstrtou64(buf, 0, &n);
	if (ret || !n)
		return -EINVAL;
	ret = bpq_grant(bpq_dev_queue(dev), n);
	return ret ? ret : count;
}
static DEVICE_ATTR_WO(grant);

/* State and counters come from one snapshot, as the stats ioctl does. */
#define BPQ_STAT_ATTR(field)						\
static ssize_t field##_show(struct device *dev,				\
			    struct device_attribute *attr, char *buf)	\
{									\
	struct bpq_stats st;						\
									\
	bpq_get_stats(bpq_dev_queue(dev), &st);				\
	return sysfs_emit(buf, "%llu\n", (u64)st.field);		\
}									\
static DEVICE_ATTR_RO(field)

BPQ_STAT_ATTR(depth_msgs);
BPQ_STAT_ATTR(depth_bytes);
BPQ_STAT_ATTR(utilization);
BPQ_STAT_ATTR(credits_available);
BPQ_STAT_ATTR(rate);
BPQ_STAT_ATTR(throughput);
BPQ_STAT_ATTR(pressure);

static struct attribute *bpq_attrs[] = {
	&dev_attr_strategy.attr,
	&dev_attr_capacity_msgs.attr,
	&dev_attr_capacity_bytes.attr,
	&dev_attr_max_msg_size.attr,
	&dev_attr_high_watermark.attr,
	&dev_attr_low_watermark.attr,
	&dev_attr_write_timeout_ms.attr,
	&dev_attr_auto_credit.attr,
	&dev_attr_target_latency_us.attr,
	&dev_attr_min_rate.attr,
	&dev_attr_max_rate.attr,
	&dev_attr_adjust_interval_ms.attr,
	&dev_attr_name.attr,
	&dev_attr_grant.attr,
	&dev_attr_depth_msgs.attr,
	&dev_attr_depth_bytes.attr,
	&dev_attr_utilization.attr,
	&dev_attr_credits_available.attr,
	&dev_attr_rate.attr,
	&dev_attr_throughput.attr,
	&dev_attr_pressure.attr,
	NULL,
};

static const struct attribute_group bpq_group = {
	.attrs = bpq_attrs,
};

BPQ_STAT_ATTR(enqueued_msgs);
BPQ_STAT_ATTR(enqueued_bytes);
BPQ_STAT_ATTR(dequeued_msgs);
BPQ_STAT_ATTR(dequeued_bytes);
BPQ_STAT_ATTR(dropped_newest);
BPQ_STAT_ATTR(dropped_oldest);
BPQ_STAT_ATTR(flushed);
BPQ_STAT_ATTR(backpressure_applied);
BPQ_STAT_ATTR(blocked_ns);
BPQ_STAT_ATTR(throttled_ns);
BPQ_STAT_ATTR(timeouts);
BPQ_STAT_ATTR(credit_starvation);
BPQ_STAT_ATTR(credit_starved_ns);

static ssize_t latency_hist_show(struct device *dev,
				 struct device_attribute *attr, char *buf)
{
	struct bpq_stats st;
	int i, len = 0;
	u64 bound;

	bpq_get_stats(bpq_dev_queue(dev), &st);
	for (i = 0; i < BPQ_LATENCY_BUCKETS; i++) {
		bound = i < BPQ_LATENCY_BUCKETS - 1 ? 1ULL << (10 + i) :
						      U64_MAX;
		len += sysfs_emit_at(buf, len, "%llu %llu\n", bound,
				     st.latency_hist[i]);
	}
	return len;
}
static DEVICE_ATTR_RO(latency_hist);

/*
 * stats/all: every state and counter above, as "name value" lines, and the
 * histogram as one "latency_hist" line of its counts, from one snapshot:
 * monitoring reads one file per queue, and sees one instant.
 */
struct bpq_stat_field {
	const char *name;
	u16 offset;
	u16 size;			/* 4 or 8 */
};

#define BPQ_STAT_FIELD(field)						\
	{ #field, offsetof(struct bpq_stats, field),			\
	  sizeof_field(struct bpq_stats, field) }

static const struct bpq_stat_field bpq_stat_fields[] = {
	BPQ_STAT_FIELD(depth_msgs),
	BPQ_STAT_FIELD(depth_bytes),
	BPQ_STAT_FIELD(utilization),
	BPQ_STAT_FIELD(credits_available),
	BPQ_STAT_FIELD(rate),
	BPQ_STAT_FIELD(throughput),
	BPQ_STAT_FIELD(pressure),
	BPQ_STAT_FIELD(enqueued_msgs),
	BPQ_STAT_FIELD(enqueued_bytes),
	BPQ_STAT_FIELD(dequeued_msgs),
	BPQ_STAT_FIELD(dequeued_bytes),
	BPQ_STAT_FIELD(dropped_newest),
	BPQ_STAT_FIELD(dropped_oldest),
	BPQ_STAT_FIELD(flushed),
	BPQ_STAT_FIELD(backpressure_applied),
	BPQ_STAT_FIELD(blocked_ns),
	BPQ_STAT_FIELD(throttled_ns),
	BPQ_STAT_FIELD(timeouts),
	BPQ_STAT_FIELD(credit_starvation),
	BPQ_STAT_FIELD(credit_starved_ns),
};

static ssize_t all_show(struct device *dev, struct device_attribute *attr,
			char *buf)
{
	const struct bpq_stat_field *f;
	struct bpq_stats st;
	int i, len = 0;
	u64 val;

	bpq_get_stats(bpq_dev_queue(dev), &st);
	for (i = 0; i < ARRAY_SIZE(bpq_stat_fields); i++) {
		f = &bpq_stat_fields[i];
		if (f->size == sizeof(u32))
			val = *(u32 *)((u8 *)&st + f->offset);
		else
			val = *(u64 *)((u8 *)&st + f->offset);
		len += sysfs_emit_at(buf, len, "%s %llu\n", f->name, val);
	}
	len += sysfs_emit_at(buf, len, "latency_hist");
	for (i = 0; i < BPQ_LATENCY_BUCKETS; i++)
		len += sysfs_emit_at(buf, len, " %llu", st.latency_hist[i]);
	len += sysfs_emit_at(buf, len, "\n");
	return len;
}
static DEVICE_ATTR_RO(all);

static ssize_t reset_store(struct device *dev, struct device_attribute *attr,
			   const char *buf, size_t count)
{
	bool val;

	if (kstrtobool(buf, &val) || !val)
		return -EINVAL;
	bpq_reset_stats(bpq_dev_queue(dev));
	return count;
}
static DEVICE_ATTR_WO(reset);

static struct attribute *bpq_stats_attrs[] = {
	&dev_attr_enqueued_msgs.attr,
	&dev_attr_enqueued_bytes.attr,
	&dev_attr_dequeued_msgs.attr,
	&dev_attr_dequeued_bytes.attr,
	&dev_attr_dropped_newest.attr,
	&dev_attr_dropped_oldest.attr,
	&dev_attr_flushed.attr,
	&dev_attr_backpressure_applied.attr,
	&dev_attr_blocked_ns.attr,
	&dev_attr_throttled_ns.attr,
	&dev_attr_timeouts.attr,
	&dev_attr_credit_starvation.attr,
	&dev_attr_credit_starved_ns.attr,
	&dev_attr_latency_hist.attr,
	&dev_attr_all.attr,
	&dev_attr_reset.attr,
	NULL,
};

static const struct attribute_group bpq_stats_group = {
	.name = "stats",
	.attrs = bpq_stats_attrs,
};

const struct attribute_group *bpq_groups[] = {
	&bpq_group,
	&bpq_stats_group,
	NULL,
};
