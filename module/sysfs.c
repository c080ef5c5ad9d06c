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
	[BPQ_STRATEGY_WINDOW] = "window",
};

const char *bpq_strategy_name(u32 strategy)
{
	if (strategy >= ARRAY_SIZE(bpq_strategy_names))
		return "unknown";
	return bpq_strategy_names[strategy];
}

static const char * const bpq_hangup_names[] = {
	[BPQ_HANGUP_NONE] = "none",
	[BPQ_HANGUP_WRITERS] = "writers",
	[BPQ_HANGUP_READERS] = "readers",
	[BPQ_HANGUP_BOTH] = "both",
};

static const char * const bpq_ack_mode_names[] = {
	[BPQ_ACK_MODE_ACK] = "ack",
	[BPQ_ACK_MODE_DELIVERY] = "delivery",
};

static const char * const bpq_read_mode_names[] = {
	[BPQ_READ_MESSAGE] = "message",
	[BPQ_READ_STREAM] = "stream",
};

static const char * const bpq_window_state_names[] = {
	[BPQ_WINDOW_SLOW_START] = "slow-start",
	[BPQ_WINDOW_AVOIDANCE] = "avoidance",
	[BPQ_WINDOW_RECOVERY] = "recovery",
};

static ssize_t bpq_store_setting(struct device *dev, size_t count,
				 int (*modify)(struct bpq_config *cfg,
					       const char *buf),
				 const char *buf)
{
	int ret = bpq_update_config(bpq_dev_queue(dev), modify, buf);

	return ret ? ret : count;
}

/* A setting's file, written through bpq_modify_<field>() */
#define BPQ_SETTING_STORE(field)					\
static ssize_t field##_store(struct device *dev,			\
			     struct device_attribute *attr,		\
			     const char *buf, size_t count)		\
{									\
	return bpq_store_setting(dev, count, bpq_modify_##field, buf);	\
}									\
static DEVICE_ATTR_RW(field)

/* A setting shown and written by name, from @names */
#define BPQ_NAMED_SETTING_ATTR(field, names)				\
static ssize_t field##_show(struct device *dev,				\
			    struct device_attribute *attr, char *buf)	\
{									\
	struct bpq_config cfg;						\
									\
	bpq_get_config(bpq_dev_queue(dev), &cfg);			\
	return sysfs_emit(buf, "%s\n", names[cfg.field]);		\
}									\
static int bpq_modify_##field(struct bpq_config *cfg, const char *buf)	\
{									\
	int i = sysfs_match_string(names, buf);				\
									\
	if (i < 0)							\
		return -EINVAL;						\
	cfg->field = i;							\
	return 0;							\
}									\
BPQ_SETTING_STORE(field)

/* every value of these is checked, and so has a name */
BPQ_NAMED_SETTING_ATTR(strategy, bpq_strategy_names);
BPQ_NAMED_SETTING_ATTR(hangup, bpq_hangup_names);
BPQ_NAMED_SETTING_ATTR(ack_mode, bpq_ack_mode_names);
BPQ_NAMED_SETTING_ATTR(read_mode, bpq_read_mode_names);

static ssize_t stream_show(struct device *dev, struct device_attribute *attr,
			   char *buf)
{
	return bpq_stream_format(bpq_dev_queue(dev), buf, PAGE_SIZE);
}

static ssize_t stream_store(struct device *dev, struct device_attribute *attr,
			    const char *buf, size_t count)
{
	int ret = bpq_stream_store(bpq_dev_queue(dev), buf);

	return ret < 0 ? ret : count;
}
static DEVICE_ATTR_RW(stream);

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
BPQ_SETTING_STORE(field)

BPQ_SETTING_ATTR(capacity_msgs, u32, kstrtou32);
BPQ_SETTING_ATTR(capacity_bytes, u64, kstrtou64);
BPQ_SETTING_ATTR(max_msg_size, u32, kstrtou32);
BPQ_SETTING_ATTR(high_watermark, u32, kstrtou32);
BPQ_SETTING_ATTR(low_watermark, u32, kstrtou32);
BPQ_SETTING_ATTR(write_timeout_ms, u32, kstrtou32);
BPQ_SETTING_ATTR(target_latency_us, u32, kstrtou32);
BPQ_SETTING_ATTR(min_rate, u32, kstrtou32);
BPQ_SETTING_ATTR(max_rate, u32, kstrtou32);
BPQ_SETTING_ATTR(adjust_interval_ms, u32, kstrtou32);
BPQ_SETTING_ATTR(increase_pct, u32, kstrtou32);
BPQ_SETTING_ATTR(decrease_pct, u32, kstrtou32);
BPQ_SETTING_ATTR(initial_cwnd, u32, kstrtou32);
BPQ_SETTING_ATTR(min_cwnd, u32, kstrtou32);
BPQ_SETTING_ATTR(max_cwnd, u32, kstrtou32);
BPQ_SETTING_ATTR(initial_ssthresh, u32, kstrtou32);
BPQ_SETTING_ATTR(ack_timeout_ms, u32, kstrtou32);

/* auto_credit: 0, 1 (each delivery) or "ack" (each acknowledgment) */
static ssize_t auto_credit_show(struct device *dev,
				struct device_attribute *attr, char *buf)
{
	struct bpq_config cfg;

	bpq_get_config(bpq_dev_queue(dev), &cfg);
	if (cfg.auto_credit == BPQ_AUTO_CREDIT_ACK)
		return sysfs_emit(buf, "ack\n");
	return sysfs_emit(buf, "%u\n", cfg.auto_credit);
}

static int bpq_modify_auto_credit(struct bpq_config *cfg, const char *buf)
{
	if (sysfs_streq(buf, "ack"))
		cfg->auto_credit = BPQ_AUTO_CREDIT_ACK;
	else if (kstrtou32(buf, 0, &cfg->auto_credit))
		return -EINVAL;
	return 0;
}

BPQ_SETTING_STORE(auto_credit);

static ssize_t name_show(struct device *dev, struct device_attribute *attr,
			 char *buf)
{
	return sysfs_emit(buf, "%s\n", bpq_dev_queue(dev)->name);
}
static DEVICE_ATTR_RO(name);

static ssize_t grant_store(struct device *dev, struct device_attribute *attr,
			   const char *buf, size_t count)
{
	u32 flags = 0;
	u64 n;
	int ret;

	/* N (or +N) adds, =N sets the balance, -N takes away */
	if (*buf == '=')
		flags = BPQ_GRANT_SET;
	else if (*buf == '-')
		flags = BPQ_GRANT_REVOKE;
	ret = kstrtou64(buf + !!flags, 0, &n);
	if (ret)
		return -EINVAL;
	ret = bpq_grant(bpq_dev_queue(dev), flags, n);
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
BPQ_STAT_ATTR(stream_epoch);
BPQ_STAT_ATTR(readers);
BPQ_STAT_ATTR(writers);
BPQ_STAT_ATTR(unacked);
BPQ_STAT_ATTR(cwnd);
BPQ_STAT_ATTR(ssthresh);
BPQ_STAT_ATTR(inflight);
BPQ_STAT_ATTR(head_age_us);
BPQ_STAT_ATTR(writers_waiting);

/* hold: "none" or the reasons; takes "+admin", "-admin", "+cluster", ... */
static ssize_t hold_show(struct device *dev, struct device_attribute *attr,
			 char *buf)
{
	struct bpq_stats st;

	bpq_get_stats(bpq_dev_queue(dev), &st);
	return bpq_hold_format(st.holds, false, buf);
}

static ssize_t hold_store(struct device *dev, struct device_attribute *attr,
			  const char *buf, size_t count)
{
	int ret = bpq_hold_store(bpq_dev_queue(dev), buf);

	return ret ? ret : count;
}
static DEVICE_ATTR_RW(hold);

/* Why the queue is under pressure: "none", "watermark", "admin link" ... */
static ssize_t pressure_source_show(struct device *dev,
				    struct device_attribute *attr, char *buf)
{
	struct bpq_stats st;

	bpq_get_stats(bpq_dev_queue(dev), &st);
	return bpq_hold_format(st.holds, st.watermark, buf);
}
static DEVICE_ATTR_RO(pressure_source);

/* As the files of /proc/pressure/: "some avg10=... total=..." and "full ..." */
static ssize_t pressure_stall_show(struct device *dev,
				   struct device_attribute *attr, char *buf)
{
	return bpq_stall_format(bpq_dev_queue(dev), buf);
}
static DEVICE_ATTR_RO(pressure_stall);

/* The names of the linked queues, separated by spaces (link.c) */
static ssize_t upstream_show(struct device *dev,
			     struct device_attribute *attr, char *buf)
{
	return bpq_link_format(bpq_dev_queue(dev), true, buf);
}
static DEVICE_ATTR_RO(upstream);

static ssize_t group_show(struct device *dev, struct device_attribute *attr,
			  char *buf)
{
	return bpq_group_format(bpq_dev_queue(dev), buf);
}
static DEVICE_ATTR_RO(group);

static ssize_t downstream_show(struct device *dev,
			       struct device_attribute *attr, char *buf)
{
	return bpq_link_format(bpq_dev_queue(dev), false, buf);
}
static DEVICE_ATTR_RO(downstream);

static ssize_t window_state_show(struct device *dev,
				 struct device_attribute *attr, char *buf)
{
	struct bpq_stats st;

	bpq_get_stats(bpq_dev_queue(dev), &st);
	return sysfs_emit(buf, "%s\n", bpq_window_state_names[st.window_state]);
}
static DEVICE_ATTR_RO(window_state);

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
	&dev_attr_increase_pct.attr,
	&dev_attr_decrease_pct.attr,
	&dev_attr_hangup.attr,
	&dev_attr_ack_mode.attr,
	&dev_attr_initial_cwnd.attr,
	&dev_attr_min_cwnd.attr,
	&dev_attr_max_cwnd.attr,
	&dev_attr_initial_ssthresh.attr,
	&dev_attr_ack_timeout_ms.attr,
	&dev_attr_read_mode.attr,
	&dev_attr_name.attr,
	&dev_attr_grant.attr,
	&dev_attr_depth_msgs.attr,
	&dev_attr_depth_bytes.attr,
	&dev_attr_utilization.attr,
	&dev_attr_credits_available.attr,
	&dev_attr_rate.attr,
	&dev_attr_throughput.attr,
	&dev_attr_pressure.attr,
	&dev_attr_hold.attr,
	&dev_attr_pressure_source.attr,
	&dev_attr_pressure_stall.attr,
	&dev_attr_upstream.attr,
	&dev_attr_group.attr,
	&dev_attr_downstream.attr,
	&dev_attr_head_age_us.attr,
	&dev_attr_writers_waiting.attr,
	&dev_attr_stream.attr,
	&dev_attr_stream_epoch.attr,
	&dev_attr_readers.attr,
	&dev_attr_writers.attr,
	&dev_attr_unacked.attr,
	&dev_attr_cwnd.attr,
	&dev_attr_ssthresh.attr,
	&dev_attr_inflight.attr,
	&dev_attr_window_state.attr,
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
BPQ_STAT_ATTR(acked_msgs);
BPQ_STAT_ATTR(nacked);
BPQ_STAT_ATTR(stale_acks);
BPQ_STAT_ATTR(congestion_events);
BPQ_STAT_ATTR(ack_timeouts);
BPQ_STAT_ATTR(cwnd_limited_ns);
BPQ_STAT_ATTR(partial_reads);
BPQ_STAT_ATTR(held_ns);

/* A histogram: "<upper bound in ns> <count>" lines, smallest first */
#define BPQ_HIST_ATTR(field)						\
static ssize_t field##_show(struct device *dev,				\
			    struct device_attribute *attr, char *buf)	\
{									\
	struct bpq_stats st;						\
									\
	bpq_get_stats(bpq_dev_queue(dev), &st);				\
	return bpq_hist_emit(buf, st.field);				\
}									\
static DEVICE_ATTR_RO(field)

static int bpq_hist_emit(char *buf, const u64 *hist)
{
	int i, len = 0;
	u64 bound;

	for (i = 0; i < BPQ_LATENCY_BUCKETS; i++) {
		bound = i < BPQ_LATENCY_BUCKETS - 1 ? 1ULL << (10 + i) :
						      U64_MAX;
		len += sysfs_emit_at(buf, len, "%llu %llu\n", bound, hist[i]);
	}
	return len;
}

BPQ_HIST_ATTR(latency_hist);
BPQ_HIST_ATTR(processing_hist);

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
	BPQ_STAT_FIELD(stream_epoch),
	BPQ_STAT_FIELD(readers),
	BPQ_STAT_FIELD(writers),
	BPQ_STAT_FIELD(unacked),
	BPQ_STAT_FIELD(acked_msgs),
	BPQ_STAT_FIELD(nacked),
	BPQ_STAT_FIELD(stale_acks),
	BPQ_STAT_FIELD(cwnd),
	BPQ_STAT_FIELD(ssthresh),
	BPQ_STAT_FIELD(inflight),
	BPQ_STAT_FIELD(congestion_events),
	BPQ_STAT_FIELD(ack_timeouts),
	BPQ_STAT_FIELD(cwnd_limited_ns),
	BPQ_STAT_FIELD(partial_reads),
	BPQ_STAT_FIELD(held_ns),
	BPQ_STAT_FIELD(head_age_us),
	BPQ_STAT_FIELD(writers_waiting),
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
	len += sysfs_emit_at(buf, len, "\nprocessing_hist");
	for (i = 0; i < BPQ_LATENCY_BUCKETS; i++)
		len += sysfs_emit_at(buf, len, " %llu", st.processing_hist[i]);
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
	&dev_attr_acked_msgs.attr,
	&dev_attr_nacked.attr,
	&dev_attr_stale_acks.attr,
	&dev_attr_congestion_events.attr,
	&dev_attr_ack_timeouts.attr,
	&dev_attr_cwnd_limited_ns.attr,
	&dev_attr_partial_reads.attr,
	&dev_attr_held_ns.attr,
	&dev_attr_latency_hist.attr,
	&dev_attr_processing_hist.attr,
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
