// SPDX-License-Identifier: GPL-2.0
/*
 * A queue's settings and counters: checking and applying a configuration,
 * credits, flush, and the stats snapshot. Each change takes q->lock once
 * and settles the waiters it lets in before the unlock.
 */
#include <linux/ktime.h>
#include <linux/math64.h>
#include <linux/overflow.h>
#include <linux/poll.h>
#include <linux/slab.h>

#include "bpq.h"

const struct bpq_config bpq_default_config = {
	.size = sizeof(struct bpq_config),
	.strategy = BPQ_STRATEGY_BLOCK,
	.capacity_msgs = 256,
	.capacity_bytes = 1 << 20,
	.max_msg_size = 64 << 10,
	.high_watermark = 100,
	.low_watermark = 100,
	.target_latency_us = 10000,
	.min_rate = 100,
	.max_rate = 1000000,
	.adjust_interval_ms = 100,
	.increase_pct = 50,
	.decrease_pct = 50,
	.initial_cwnd = 10,
	.min_cwnd = 1,
	.max_cwnd = BPQ_CAPACITY_MSGS_MAX,
	.initial_ssthresh = BPQ_CAPACITY_MSGS_MAX,
	.ack_timeout_ms = 1000,
};

static void bpq_config_changed(struct bpq_queue *q, struct bpq_defer *df)
{
	bpq_room_made(q, df);
	bpq_wake_pollers(q, df, EPOLLPRI);
}

int bpq_check_config(const struct bpq_config *c)
{
	if (c->flags || c->__reserved)
		return -EINVAL;
	if (c->strategy > BPQ_STRATEGY_WINDOW)
		return -EINVAL;
	if (!c->capacity_msgs || c->capacity_msgs > BPQ_CAPACITY_MSGS_MAX)
		return -EINVAL;
	if (!c->capacity_bytes || c->capacity_bytes > BPQ_CAPACITY_BYTES_MAX)
		return -EINVAL;
	if (!c->max_msg_size || c->max_msg_size > BPQ_MSG_SIZE_MAX)
		return -EINVAL;
	if (!c->low_watermark || c->low_watermark > c->high_watermark ||
	    c->high_watermark > 100)
		return -EINVAL;
	if (c->auto_credit > BPQ_AUTO_CREDIT_ACK)
		return -EINVAL;
	if (!c->target_latency_us || c->target_latency_us > 60000000)
		return -EINVAL;
	if (!c->min_rate || c->max_rate < c->min_rate)
		return -EINVAL;
	if (!c->adjust_interval_ms || c->adjust_interval_ms > 60000)
		return -EINVAL;
	if (c->hangup > BPQ_HANGUP_BOTH)
		return -EINVAL;
	if (c->ack_mode > BPQ_ACK_MODE_DELIVERY)
		return -EINVAL;
	if (!c->min_cwnd || c->min_cwnd > c->initial_cwnd ||
	    c->initial_cwnd > c->max_cwnd ||
	    c->max_cwnd > BPQ_CAPACITY_MSGS_MAX)
		return -EINVAL;
	if (!c->initial_ssthresh ||
	    c->initial_ssthresh > BPQ_CAPACITY_MSGS_MAX)
		return -EINVAL;
	if (c->ack_timeout_ms > BPQ_ACK_TIMEOUT_MAX)
		return -EINVAL;
	if (c->read_mode > BPQ_READ_STREAM)
		return -EINVAL;
	if (!c->increase_pct || c->increase_pct > 1000 ||
	    !c->decrease_pct || c->decrease_pct > 99)
		return -EINVAL;
	return 0;
}

static int __bpq_set_config(struct bpq_queue *q, const struct bpq_config *cfg)
{
	struct bpq_defer df __bpq_noinit;
	int ret;

	bpq_defer_init(&df);
	lockdep_assert_held(&q->cfg_mutex);
	/* a dead queue says so first, whatever the new settings */
	if (READ_ONCE(q->dead))
		return -ENODEV;
	ret = bpq_check_config(cfg);
	if (ret)
		return ret;
	spin_lock(&q->lock);
	if (q->dead) {
		ret = -ENODEV;
	} else if (q->ring &&
		   !bpq_ring_takes(q->ring->size, cfg->max_msg_size)) {
		ret = -EBUSY;
	} else {
		bool restart = cfg->strategy != q->cfg.strategy;

		q->cfg = *cfg;
		q->cfg.size = sizeof(q->cfg);
		if (restart && cfg->strategy == BPQ_STRATEGY_ADAPTIVE)
			bpq_adaptive_start(q, ktime_get_ns());
		if (restart && cfg->strategy == BPQ_STRATEGY_WINDOW)
			bpq_window_start(q, ktime_get_ns());
		bpq_window_clamp(q);
		/* no token to report once the queue paces no more */
		if (cfg->strategy != BPQ_STRATEGY_ADAPTIVE)
			hrtimer_try_to_cancel(&q->poll_timer);
		bpq_adaptive_clamp(q);
		bpq_config_changed(q, &df);
	}
	bpq_unlock(q, &df);
	return ret;
}

/*
 * BPQ_IOC_SET_CONFIG: the first @size bytes of @cfg; a shorter struct,
 * of an older header, leaves the settings beyond it as they are.
 */
int bpq_set_config(struct bpq_queue *q, const struct bpq_config *cfg,
		   size_t size)
{
	struct bpq_config new;
	int ret;

	mutex_lock(&q->cfg_mutex);
	ret = bpq_get_config(q, &new);
	if (!ret) {
		memcpy(&new, cfg, min(size, sizeof(new)));
		ret = __bpq_set_config(q, &new);
	}
	mutex_unlock(&q->cfg_mutex);
	return ret;
}

/* Change some settings: read, @modify, check and apply as one. */
int bpq_update_config(struct bpq_queue *q,
		      int (*modify)(struct bpq_config *cfg, const char *arg),
		      const char *arg)
{
	struct bpq_config cfg;
	int ret;

	mutex_lock(&q->cfg_mutex);
	ret = bpq_get_config(q, &cfg);
	if (!ret)
		ret = modify(&cfg, arg);
	if (!ret)
		ret = __bpq_set_config(q, &cfg);
	mutex_unlock(&q->cfg_mutex);
	return ret;
}

int bpq_get_config(struct bpq_queue *q, struct bpq_config *cfg)
{
	spin_lock(&q->lock);
	*cfg = q->cfg;
	spin_unlock(&q->lock);
	return READ_ONCE(q->dead) ? -ENODEV : 0;
}

/* Add @credits, or with BPQ_GRANT_SET or BPQ_GRANT_REVOKE set or take */
int bpq_grant(struct bpq_queue *q, u32 flags, u64 credits)
{
	struct bpq_defer df __bpq_noinit;
	int ret = 0;

	bpq_defer_init(&df);
	if (flags & ~(BPQ_GRANT_SET | BPQ_GRANT_REVOKE) ||
	    flags == (BPQ_GRANT_SET | BPQ_GRANT_REVOKE))
		return -EINVAL;
	if (!credits && !(flags & BPQ_GRANT_SET))
		return -EINVAL;
	spin_lock(&q->lock);
	if (q->dead) {
		ret = -ENODEV;
	} else if (flags & BPQ_GRANT_SET) {
		q->credits = credits;
		bpq_config_changed(q, &df);
	} else if (flags & BPQ_GRANT_REVOKE) {
		q->credits -= min(q->credits, credits);
		bpq_config_changed(q, &df);
	} else if (q->stream != BPQ_STREAM_CANCELLED) {
		/* a cancelled stream's writers are gone for good */
		if (check_add_overflow(q->credits, credits, &q->credits))
			q->credits = U64_MAX;
		bpq_config_changed(q, &df);
	}
	bpq_unlock(q, &df);
	return ret;
}

/*
 * Discard every queued message; with @cancel, cancel the stream first,
 * in the same hold of the lock, so that no writer adds to what it takes
 * (BPQ_SHUTDOWN_CANCEL | BPQ_SHUTDOWN_DISCARD). Returns how many.
 */
int bpq_flush(struct bpq_queue *q, bool cancel)
{
	/* for the log, if tasks have records of it pinned */
	struct bpq_grave *grave = bpq_grave_alloc();
	struct bpq_defer df __bpq_noinit;
	LIST_HEAD(doomed);
	int ret;

	if (!grave)
		return -ENOMEM;
	bpq_defer_init(&df);
	spin_lock(&q->lock);
	if (q->dead) {
		ret = -ENODEV;
	} else {
		if (cancel)
			bpq_stream_cancel(q, &df);
		ret = bpq_detach_msgs(q, &doomed, &grave);
		q->stats.flushed += ret;
		bpq_config_changed(q, &df);
	}
	bpq_unlock(q, &df);
	/* pages, not messages: no walk of the records */
	bpq_pages_free(&doomed, true);
	kfree(grave);
	return ret;
}

/* Dequeued msgs/s: an average over the last second, decaying when idle. */
static u64 bpq_throughput(struct bpq_queue *q)
{
	u64 now = ktime_get_ns();
	u64 elapsed;

	lockdep_assert_held(&q->lock);
	elapsed = now - q->tp_start;
	if (elapsed >= NSEC_PER_SEC) {
		u64 rate = mul_u64_u64_div_u64(q->tp_count, NSEC_PER_SEC,
					       elapsed);

		/* an EWMA with weight 1/2 per second of history */
		q->tp_rate = (q->tp_rate + rate) / 2;
		if (elapsed >= 2 * NSEC_PER_SEC)
			q->tp_rate = rate;
		q->tp_start = now;
		q->tp_count = 0;
	}
	return q->tp_rate;
}

int bpq_get_stats(struct bpq_queue *q, struct bpq_stats *st)
{
	const struct bpq_counters *c = &q->stats;

	memset(st, 0, sizeof(*st));
	st->size = sizeof(*st);
	spin_lock(&q->lock);
	st->depth_msgs = q->depth_msgs;
	st->depth_bytes = q->depth_bytes;
	st->credits_available = q->credits;
	st->utilization = bpq_utilization(q);
	st->pressure = q->pressure;
	st->throughput = bpq_throughput(q);
	if (q->cfg.strategy == BPQ_STRATEGY_ADAPTIVE)
		st->rate = q->ad.rate;
	if (q->cfg.strategy == BPQ_STRATEGY_WINDOW) {
		bpq_window_tick(q, ktime_get_ns());
		st->cwnd = q->win.cwnd;
		st->ssthresh = q->win.ssthresh;
		st->inflight = bpq_window_inflight(q);
		st->window_state = bpq_window_state(q);
	}
	st->unacked = q->unacked;
	st->acked_msgs = c->acked_msgs;
	st->nacked = c->nacked;
	st->stale_acks = c->stale_acks;
	st->congestion_events = c->congestion_events;
	st->ack_timeouts = c->ack_timeouts;
	st->cwnd_limited_ns = c->cwnd_limited_ns;
	st->partial_reads = c->partial_reads;
	st->holds = q->holds;
	st->watermark = q->watermark;
	st->held_ns = c->held_ns;
	st->head_age_us = bpq_head_age_us(q);
	st->writers_waiting = list_count_nodes(&q->writers);
	bpq_stall_totals(q, &st->stall_some_us, &st->stall_full_us);
	memcpy(st->processing_hist, c->processing_hist,
	       sizeof(st->processing_hist));
	st->enqueued_msgs = c->enqueued_msgs;
	st->enqueued_bytes = c->enqueued_bytes;
	st->dequeued_msgs = c->dequeued_msgs;
	st->dequeued_bytes = c->dequeued_bytes;
	st->dropped_newest = c->dropped_newest;
	st->dropped_oldest = c->dropped_oldest;
	st->flushed = c->flushed;
	st->backpressure_applied = c->backpressure_applied;
	st->blocked_ns = c->blocked_ns;
	st->throttled_ns = c->throttled_ns;
	st->timeouts = c->timeouts;
	st->credit_starvation = c->credit_starvation;
	st->credit_starved_ns = c->credit_starved_ns;
	memcpy(st->latency_hist, c->latency_hist, sizeof(st->latency_hist));
	st->stream = q->stream;
	st->stream_error = q->stream_error;
	st->stream_epoch = q->stream_epoch;
	st->readers = q->nr_readers;
	st->writers = q->nr_writers;
	spin_unlock(&q->lock);
	return READ_ONCE(q->dead) ? -ENODEV : 0;
}

/*
 * Zero the counters. The queued messages stay, so the invariant
 * enqueued = dequeued + dropped_oldest + flushed + depth restarts from the
 * current depth.
 */
int bpq_reset_stats(struct bpq_queue *q)
{
	spin_lock(&q->lock);
	memset(&q->stats, 0, sizeof(q->stats));
	q->stats.enqueued_msgs = q->depth_msgs;
	q->stats.enqueued_bytes = q->depth_bytes;
	spin_unlock(&q->lock);
	return READ_ONCE(q->dead) ? -ENODEV : 0;
}
