// SPDX-License-Identifier: GPL-2.0
/*
 * Triggers (BPQ_IOC_TRIGGER): one per open file, as PSI's on the files of
 * /proc/pressure/. A trigger watches a metric of its queue against a
 * threshold within a window; when it fires, the file's poll reports
 * EPOLLPRI once.
 *
 * A queue with triggers is looked at by a delayed work item every tenth
 * of the shortest window, under q->lock: counters grow only under the
 * lock, and time-driven values (the stall totals, the head's age) are
 * brought up to date there. Nothing runs for a queue without triggers.
 * Adding and removing are serialized by q->trig_mutex, so the last
 * removal can wait for the work to be done (the work itself takes only
 * q->lock, and requeues itself while triggers remain).
 */
#include <linux/math64.h>
#include <linux/poll.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <linux/workqueue.h>

#include "bpq.h"

struct bpq_trigger_state {
	struct list_head node;		/* q->triggers, under q->lock */
	u32 metric;			/* enum bpq_trigger_metric */
	u64 threshold;			/* in ns for the times, else as given */
	u64 window;			/* ns */
	u64 win_start;			/* ns: the current window's start */
	u64 win_value;			/* the metric then */
	u64 prev_growth;		/* in the window before */
	u64 last_event;			/* ns of the last firing, or 0 */
	u64 last_value;			/* the metric then */
	u64 fired;			/* times */
	bool event;			/* fired, not yet seen by a poll */
};

static bool bpq_trigger_level(u32 metric)
{
	return metric == BPQ_TRIGGER_HEAD_AGE ||
	       metric == BPQ_TRIGGER_UTILIZATION;
}

/* The metric's value now: a total (ns or count) or a level. */
static u64 bpq_trigger_value(struct bpq_queue *q, u32 metric, u64 now)
{
	switch (metric) {
	case BPQ_TRIGGER_STALL_SOME:
		return bpq_stall_total(q, 0, now);
	case BPQ_TRIGGER_STALL_FULL:
		return bpq_stall_total(q, 1, now);
	case BPQ_TRIGGER_DROPS:
		return q->lost;		/* as the stats' drops, never reset */
	case BPQ_TRIGGER_TIMEOUTS:
		return q->stats.timeouts;
	case BPQ_TRIGGER_HEAD_AGE:
		return bpq_head_age(q, now);
	default:
		return bpq_utilization(q);
	}
}

static void bpq_trigger_restart(struct bpq_trigger_state *t, u64 value,
				u64 now)
{
	t->win_start = now;
	t->win_value = value;
	t->prev_growth = 0;
	t->last_value = value;
}

/* Does @t fire now? As PSI's window_update() and update_triggers(). */
static bool bpq_trigger_check(struct bpq_trigger_state *t, u64 value,
			      u64 now)
{
	u64 growth = value, elapsed;

	if (!bpq_trigger_level(t->metric)) {
		/* a reset of the counters starts over */
		if (value < t->win_value || value < t->last_value)
			bpq_trigger_restart(t, value, now);
		elapsed = now - t->win_start;
		if (elapsed >= t->window) {
			t->prev_growth = value - t->win_value;
			t->win_start = now;
			t->win_value = value;
			elapsed = 0;
		}
		growth = value - t->win_value +
			 mul_u64_u64_div_u64(t->prev_growth,
					     t->window - elapsed, t->window);
		/* nothing new since the last firing */
		if (t->last_event && value == t->last_value)
			return false;
	}
	if (growth < t->threshold)
		return false;
	if (t->last_event && now - t->last_event < t->window)
		return false;
	t->last_event = now;
	t->last_value = value;
	t->fired++;
	t->event = true;
	return true;
}

static void bpq_trigger_work(struct work_struct *work)
{
	struct bpq_queue *q = container_of(to_delayed_work(work),
					   struct bpq_queue, trig_work);
	struct bpq_defer df __bpq_noinit;
	struct bpq_trigger_state *t;
	u64 now, period = U64_MAX;
	bool fired = false;

	bpq_defer_init(&df);
	spin_lock(&q->lock);
	/* after the lock: no message stamped later, no trigger set later */
	now = ktime_get_ns();
	list_for_each_entry(t, &q->triggers, node) {
		if (!q->dead)
			fired |= bpq_trigger_check(t, bpq_trigger_value(q,
						   t->metric, now), now);
		period = min(period, t->window / 10);
	}
	if (fired)
		bpq_wake_pollers(q, &df, EPOLLPRI);
	bpq_unlock(q, &df);
	if (period != U64_MAX && !READ_ONCE(q->dead))
		queue_delayed_work(system_wq, &q->trig_work,
				   nsecs_to_jiffies(period) ? : 1);
}

void bpq_trigger_init(struct bpq_queue *q)
{
	mutex_init(&q->trig_mutex);
	INIT_LIST_HEAD(&q->triggers);
	INIT_DELAYED_WORK(&q->trig_work, bpq_trigger_work);
}

static int bpq_trigger_valid(const struct bpq_trigger *arg)
{
	u64 window = (u64)arg->window_ms * NSEC_PER_MSEC;

	if (arg->flags || arg->metric > BPQ_TRIGGER_UTILIZATION)
		return -EINVAL;
	if (arg->metric == BPQ_TRIGGER_NONE)
		return arg->window_ms || arg->threshold ? -EINVAL : 0;
	if (arg->window_ms < BPQ_TRIGGER_WINDOW_MIN ||
	    arg->window_ms > BPQ_TRIGGER_WINDOW_MAX || !arg->threshold)
		return -EINVAL;
	if ((arg->metric == BPQ_TRIGGER_STALL_SOME ||
	     arg->metric == BPQ_TRIGGER_STALL_FULL) &&
	    arg->threshold > div_u64(window, NSEC_PER_USEC))
		return -EINVAL;
	if (arg->metric == BPQ_TRIGGER_UTILIZATION && arg->threshold > 100)
		return -EINVAL;
	if (arg->metric == BPQ_TRIGGER_HEAD_AGE &&
	    arg->threshold > U64_MAX / NSEC_PER_USEC)
		return -EINVAL;
	return 0;
}

/* Remove @bf's trigger, if it has one: BPQ_TRIGGER_NONE, the last close */
void bpq_trigger_remove(struct bpq_queue *q, struct bpq_file *bf)
{
	struct bpq_trigger_state *t;
	bool last;

	mutex_lock(&q->trig_mutex);
	t = bf->trigger;
	if (t) {
		spin_lock(&q->lock);
		list_del(&t->node);
		last = list_empty(&q->triggers);
		WRITE_ONCE(bf->trigger, NULL);
		spin_unlock(&q->lock);
		if (last)
			cancel_delayed_work_sync(&q->trig_work);
		kfree(t);
	}
	mutex_unlock(&q->trig_mutex);
}

int bpq_trigger_set(struct bpq_queue *q, struct bpq_file *bf,
		    const struct bpq_trigger *arg)
{
	struct bpq_trigger_state *t;
	bool first = false;
	u64 now;
	int ret;

	ret = bpq_trigger_valid(arg);
	if (ret)
		return ret;
	if (arg->metric == BPQ_TRIGGER_NONE) {
		bpq_trigger_remove(q, bf);
		return 0;
	}
	t = kzalloc(sizeof(*t), GFP_KERNEL_ACCOUNT);
	if (!t)
		return -ENOMEM;
	t->metric = arg->metric;
	t->window = (u64)arg->window_ms * NSEC_PER_MSEC;
	t->threshold = arg->threshold;
	if (t->metric != BPQ_TRIGGER_DROPS &&
	    t->metric != BPQ_TRIGGER_TIMEOUTS &&
	    t->metric != BPQ_TRIGGER_UTILIZATION)
		t->threshold *= NSEC_PER_USEC;

	mutex_lock(&q->trig_mutex);
	spin_lock(&q->lock);
	if (q->dead) {
		ret = -ENODEV;
	} else if (bf->trigger) {
		ret = -EBUSY;
	} else {
		now = ktime_get_ns();
		bpq_trigger_restart(t, bpq_trigger_value(q, t->metric, now),
				    now);
		first = list_empty(&q->triggers);
		list_add_tail(&t->node, &q->triggers);
		WRITE_ONCE(bf->trigger, t);
	}
	spin_unlock(&q->lock);
	if (!ret && first)
		queue_delayed_work(system_wq, &q->trig_work, 0);
	mutex_unlock(&q->trig_mutex);
	if (ret)
		kfree(t);
	return ret;
}

/* Under q->lock, for poll: has @bf's trigger fired since the last poll? */
bool bpq_trigger_poll(struct bpq_file *bf, bool *has_trigger)
{
	struct bpq_trigger_state *t = bf->trigger;
	bool event;

	*has_trigger = t;
	if (!t)
		return false;
	event = t->event;
	t->event = false;
	return event;
}

/* fdinfo: the file's trigger */
void bpq_trigger_show(struct seq_file *m, struct bpq_queue *q,
		      struct bpq_file *bf)
{
	static const char * const names[] = {
		[BPQ_TRIGGER_STALL_SOME] = "some",
		[BPQ_TRIGGER_STALL_FULL] = "full",
		[BPQ_TRIGGER_DROPS] = "drops",
		[BPQ_TRIGGER_TIMEOUTS] = "timeouts",
		[BPQ_TRIGGER_HEAD_AGE] = "head_age",
		[BPQ_TRIGGER_UTILIZATION] = "utilization",
	};
	struct bpq_trigger_state *t;
	u64 threshold = 0, window = 0, fired = 0;
	u32 metric = 0;

	spin_lock(&q->lock);
	t = bf->trigger;
	if (t) {
		metric = t->metric;
		threshold = t->threshold;
		window = t->window;
		fired = t->fired;
	}
	spin_unlock(&q->lock);
	if (!metric)
		return;
	if (metric != BPQ_TRIGGER_DROPS && metric != BPQ_TRIGGER_TIMEOUTS &&
	    metric != BPQ_TRIGGER_UTILIZATION)
		threshold = div_u64(threshold, NSEC_PER_USEC);
	seq_printf(m, "bpq-trigger:\t%s %llu %llu\nbpq-trigger-fired:\t%llu\n",
		   names[metric], threshold, div_u64(window, NSEC_PER_USEC),
		   fired);
}
