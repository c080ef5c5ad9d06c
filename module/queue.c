// SPDX-License-Identifier: GPL-2.0
/*
 * The queue: admission by strategy, FIFO hand-off to waiting writers and
 * readers, eviction and accounting. The queue changes only under q->lock,
 * a spinlock never held across a user copy or a sleep; what runs without
 * it (allocating and freeing messages, the ring writer's copy, the poll
 * timer) is listed under Locking in bpq.h.
 *
 * Waiting tasks do not race for the queue after a wake-up. Whoever changes
 * the state that a waiter waits on (room, credit, a message) settles the
 * waiter at the head of its FIFO under the lock: a writer's message is
 * queued for it, a reader is handed its message. The waiter is then woken
 * only to return. So blocked tasks are served strictly in arrival order,
 * and a waiter that leaves early (signal, timeout) cannot lose a wake-up
 * meant for another: it settles the new head itself before it goes.
 */
#include <linux/fs.h>
#include <linux/hrtimer.h>
#include <linux/ktime.h>
#include <linux/log2.h>
#include <linux/math64.h>
#include <linux/mm.h>
#include <linux/moduleparam.h>
#include <linux/poll.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "bpq.h"

#define BPQ_PENDING	1

/*
 * Like the block layer's queue/iostats: with it off, enqueue and delivery
 * skip the counters that only report (enqueued and dequeued messages and
 * bytes, the latency histogram, the throughput window), which then stay
 * as they are; what the strategies need is kept. It is there to measure
 * what those counters cost, and for whoever wants that last percent.
 * Once they count again, enqueued = dequeued + dropped_oldest + flushed +
 * depth holds only from the next stats reset.
 */
static bool metrics = true;
module_param(metrics, bool, 0644);
MODULE_PARM_DESC(metrics,
		 "Count messages, bytes and sojourn times per message (default 1; 0 freezes those counters)");

struct bpq_writer {
	struct list_head node;
	struct task_struct *task;
	struct bpq_msg *msg;
	int result;			/* BPQ_PENDING until settled */
	bool paced;			/* asleep until its adaptive token */
};

struct bpq_reader {
	struct list_head node;
	struct task_struct *task;
	struct bpq_msg *msg;		/* handed over, or NULL */
	int result;
};

/*
 * What one hold of q->lock leaves for after its unlock: messages to free,
 * waiters to wake and poll events to report. The kernel's wake_q does not
 * serve a module (wake_q_add() and wake_up_q() are not exported), so the
 * tasks go in a small array, each with a reference, as wake_q_add() takes
 * one: a settled waiter may read its result and leave, and its task exit,
 * before the wake-up. Beyond BPQ_WAKE_MAX tasks in one hold, the rest are
 * woken under the lock, as they were before.
 */
#define BPQ_WAKE_MAX	16

struct bpq_defer {
	struct list_head reap;
	__poll_t poll;			/* for q->poll_wait */
	unsigned int nr_wake;
	struct task_struct *wake[BPQ_WAKE_MAX];
};

#define DEFINE_BPQ_DEFER(name) \
	struct bpq_defer name = { .reap = LIST_HEAD_INIT(name.reap) }

static const struct bpq_config bpq_default_config = {
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
};

static enum hrtimer_restart bpq_poll_timer_fn(struct hrtimer *t)
{
	struct bpq_queue *q = container_of(t, struct bpq_queue, poll_timer);

	wake_up_interruptible_poll(&q->poll_wait, EPOLLOUT | EPOLLWRNORM);
	kill_fasync(&q->fasync, SIGIO, POLL_OUT);
	return HRTIMER_NORESTART;
}

void bpq_queue_init(struct bpq_queue *q)
{
	mutex_init(&q->cfg_mutex);
	hrtimer_init(&q->poll_timer, CLOCK_MONOTONIC, HRTIMER_MODE_ABS);
	q->poll_timer.function = bpq_poll_timer_fn;
	spin_lock_init(&q->lock);
	INIT_LIST_HEAD(&q->msgs);
	INIT_LIST_HEAD(&q->writers);
	INIT_LIST_HEAD(&q->readers);
	init_waitqueue_head(&q->poll_wait);
	q->cfg = bpq_default_config;
	q->tp_start = ktime_get_ns();
	bpq_adaptive_start(q, q->tp_start);
}

/*
 * A message of @len bytes, charged to the writer's memory cgroup and to
 * its user. Sizes above what the queue accepts fail before allocating.
 * Over its cgroup's limit the writer gets ENOMEM, not the OOM killer.
 */
#define BPQ_GFP		(GFP_KERNEL_ACCOUNT | __GFP_RETRY_MAYFAIL | __GFP_NOWARN)
#define BPQ_INLINE_MAX	(PAGE_SIZE / 2)

struct bpq_msg *bpq_msg_alloc(struct bpq_file *bf, size_t len)
{
	struct bpq_user *user;
	struct bpq_msg *msg;

	if (len > READ_ONCE(bf->q->cfg.max_msg_size))
		return ERR_PTR(-EMSGSIZE);
	user = bpq_user_charge_current(bf->user, len);
	if (IS_ERR(user))
		return ERR_CAST(user);
	if (len <= BPQ_INLINE_MAX) {
		msg = kmalloc(struct_size(msg, inline_data, len), BPQ_GFP);
		if (msg)
			msg->data = msg->inline_data;
	} else {
		msg = kmalloc(sizeof(*msg), BPQ_GFP);
		if (msg) {
			msg->data = kvmalloc(len, BPQ_GFP);
			if (!msg->data) {
				kfree(msg);
				msg = NULL;
			}
		}
	}
	if (!msg) {
		bpq_user_uncharge(user, len);
		return ERR_PTR(-ENOMEM);
	}
	msg->user = user;
	msg->len = len;
	msg->flags = 0;
	return msg;
}

void bpq_msg_free(struct bpq_msg *msg)
{
	bpq_user_uncharge(msg->user, msg->len);
	if (msg->data != msg->inline_data)
		kvfree(msg->data);
	kfree(msg);
}

static void bpq_reap(struct list_head *reap)
{
	struct bpq_msg *msg, *tmp;

	list_for_each_entry_safe(msg, tmp, reap, node)
		bpq_msg_free(msg);
}

/*
 * Wake @task after the unlock, as wake_up_process() would now. The caller
 * has settled the waiter, or left it listed, under q->lock, and does not
 * touch its record again; the waiter reads its result under q->lock, so
 * the lock orders the two, and a wake-up that comes late is a spurious
 * one, which every sleep of the waiter's rechecks. The running task needs
 * none: wake_up_process() on it would do nothing.
 */
static void bpq_defer_wake(struct bpq_queue *q, struct bpq_defer *df,
			   struct task_struct *task)
{
	lockdep_assert_held(&q->lock);
	if (task == current)
		return;
	if (df->nr_wake < ARRAY_SIZE(df->wake))
		df->wake[df->nr_wake++] = get_task_struct(task);
	else
		wake_up_process(task);
}

/* After the unlock: the wake-ups @df collected. Not the messages. */
static void bpq_defer_flush(struct bpq_queue *q, struct bpq_defer *df)
{
	unsigned int i;

	for (i = 0; i < df->nr_wake; i++) {
		wake_up_process(df->wake[i]);
		put_task_struct(df->wake[i]);
	}
	df->nr_wake = 0;
	/*
	 * Lockless check after the unlock, still safe: bpq_poll() queues
	 * itself before it takes q->lock to read the state, so either it
	 * took the lock after us and saw the state we changed, or its
	 * queueing came before our hold of the lock, and so before this.
	 */
	if (df->poll && waitqueue_active(&q->poll_wait))
		wake_up_interruptible_poll(&q->poll_wait, df->poll);
	df->poll = 0;
}

static void bpq_pace_pollers(struct bpq_queue *q);

static void bpq_unlock(struct bpq_queue *q, struct bpq_defer *df)
	__releases(&q->lock)
{
	bpq_pace_pollers(q);
	spin_unlock(&q->lock);
	bpq_defer_flush(q, df);
	bpq_reap(&df->reap);
}

void bpq_queue_free_msgs(struct bpq_queue *q)
{
	hrtimer_cancel(&q->poll_timer);
	bpq_reap(&q->msgs);
	INIT_LIST_HEAD(&q->msgs);
}

static bool bpq_fits(struct bpq_queue *q, u32 len)
{
	return q->depth_msgs < q->cfg.capacity_msgs &&
	       q->depth_bytes + len <= q->cfg.capacity_bytes;
}

/* Would the queue, holding @msgs and @bytes, be above @pct percent? */
static bool bpq_above(struct bpq_queue *q, u64 msgs, u64 bytes, u32 pct)
{
	return msgs * 100 > (u64)pct * q->cfg.capacity_msgs ||
	       bytes * 100 > (u64)pct * q->cfg.capacity_bytes;
}

/* Would the queue, holding @msgs and @bytes, be at or above @pct percent? */
static bool bpq_at_or_above(struct bpq_queue *q, u64 msgs, u64 bytes, u32 pct)
{
	return msgs * 100 >= (u64)pct * q->cfg.capacity_msgs ||
	       bytes * 100 >= (u64)pct * q->cfg.capacity_bytes;
}

u32 bpq_utilization(struct bpq_queue *q)
{
	u64 m, b;

	lockdep_assert_held(&q->lock);
	m = div_u64((u64)q->depth_msgs * 100, q->cfg.capacity_msgs);
	b = div64_u64(q->depth_bytes * 100, q->cfg.capacity_bytes);
	return max(m, b);
}

static bool bpq_writable(struct bpq_queue *q);

/*
 * SIGIO to the O_ASYNC files, for what poll now reports of @mask: POLL_IN
 * when there is a message to read, POLL_OUT when a write would not wait.
 * POLL_PRI goes on the pressure edges alone (bpq_update_pressure()), not
 * with every EPOLLPRI wake-up. Under q->lock, as ipc/mqueue.c signals
 * under its info->lock: kill_fasync() takes fa_lock, the owner's lock,
 * tasklist_lock and the target's siglock, all irq-safe, none of them held
 * by anyone who then takes q->lock; fasync_helper() (bpq_fasync()) does
 * not take q->lock either.
 */
static void bpq_kill_fasync(struct bpq_queue *q, __poll_t mask)
{
	if ((mask & EPOLLIN) && (q->ring || q->depth_msgs > q->inflight))
		kill_fasync(&q->fasync, SIGIO, POLL_IN);
	if ((mask & EPOLLOUT) && bpq_writable(q))
		kill_fasync(&q->fasync, SIGIO, POLL_OUT);
}

/* Report @mask to the pollers after the unlock (bpq_defer_flush()). */
static void bpq_wake_pollers(struct bpq_queue *q, struct bpq_defer *df,
			     __poll_t mask)
{
	lockdep_assert_held(&q->lock);
	df->poll |= mask;
	/* read without the lock, as kill_fasync() does */
	if (q->fasync)
		bpq_kill_fasync(q, mask);
}

static void bpq_update_pressure(struct bpq_queue *q, struct bpq_defer *df)
{
	bool was = q->pressure;

	if (!was && bpq_at_or_above(q, q->depth_msgs, q->depth_bytes,
				    q->cfg.high_watermark))
		q->pressure = true;
	else if (was && !bpq_at_or_above(q, q->depth_msgs, q->depth_bytes,
					 q->cfg.low_watermark))
		q->pressure = false;
	if (q->pressure != was) {
		bpq_wake_pollers(q, df, EPOLLPRI);
		kill_fasync(&q->fasync, SIGIO, POLL_PRI);
	}
}

/* Is the adaptive strategy's next token due at @now? Reads only. */
static bool bpq_token_due(struct bpq_queue *q, u64 now)
{
	return now >= bpq_adaptive_ready_at(q);
}

/* @now: the clock, for the adaptive strategy only (else unused) */
static bool bpq_has_room(struct bpq_queue *q, u32 len, u64 now)
{
	if (q->pressure || !bpq_fits(q, len))
		return false;
	switch (q->cfg.strategy) {
	case BPQ_STRATEGY_CREDIT:
		return q->credits;
	case BPQ_STRATEGY_ADAPTIVE:
		return bpq_token_due(q, now);
	default:
		return true;
	}
}

/* Would a write of one byte go in without waiting? EPOLLOUT. Reads only. */
static bool bpq_writable(struct bpq_queue *q)
{
	switch (q->cfg.strategy) {
	case BPQ_STRATEGY_DROP_NEWEST:
	case BPQ_STRATEGY_DROP_OLDEST:
		return true;
	case BPQ_STRATEGY_ADAPTIVE:
		return list_empty(&q->writers) &&
		       bpq_has_room(q, 1, ktime_get_ns());
	default:
		return list_empty(&q->writers) && bpq_has_room(q, 1, 0);
	}
}

/*
 * At the end of every hold of q->lock that may have changed the queue
 * (bpq_unlock(), bpq_sleep()): when only the adaptive strategy's rate
 * holds writers back, the timer reports EPOLLOUT (and SIGIO) when the next
 * token is due. Armed here, where the token and the room change, rather
 * than by poll, which only reads; re-armed only when that time moved.
 */
static void bpq_pace_pollers(struct bpq_queue *q)
{
	u64 due;

	lockdep_assert_held(&q->lock);
	if (q->cfg.strategy != BPQ_STRATEGY_ADAPTIVE || q->dead ||
	    !list_empty(&q->writers) || q->pressure || !bpq_fits(q, 1))
		return;
	due = bpq_adaptive_ready_at(q);
	if (due <= ktime_get_ns())
		return;
	if (hrtimer_is_queued(&q->poll_timer) &&
	    ktime_to_ns(hrtimer_get_expires(&q->poll_timer)) == due)
		return;
	hrtimer_start(&q->poll_timer, ns_to_ktime(due), HRTIMER_MODE_ABS);
}

static struct bpq_msg *bpq_first_avail(struct bpq_queue *q)
{
	struct bpq_msg *msg;

	if (q->depth_msgs == q->inflight)
		return NULL;
	list_for_each_entry(msg, &q->msgs, node)
		if (!(msg->flags & BPQ_MSG_INFLIGHT))
			return msg;
	return NULL;
}

static void bpq_take(struct bpq_queue *q, struct bpq_msg *msg)
{
	msg->flags |= BPQ_MSG_INFLIGHT;
	q->inflight++;
}

static void bpq_feed_readers(struct bpq_queue *q, struct bpq_defer *df);

/* A message a reader took but did not deliver is available again. */
static void bpq_untake(struct bpq_queue *q, struct bpq_msg *msg,
		       struct bpq_defer *df)
{
	msg->flags &= ~BPQ_MSG_INFLIGHT;
	q->inflight--;
	bpq_feed_readers(q, df);
	bpq_wake_pollers(q, df, EPOLLIN | EPOLLRDNORM);
}

/*
 * Hand available messages to waiting readers, oldest reader first; they
 * are woken after the unlock.
 */
static void bpq_feed_readers(struct bpq_queue *q, struct bpq_defer *df)
{
	struct bpq_reader *r;
	struct bpq_msg *msg;

	lockdep_assert_held(&q->lock);
	while (!list_empty(&q->readers) && (msg = bpq_first_avail(q))) {
		r = list_first_entry(&q->readers, struct bpq_reader, node);
		list_del_init(&r->node);
		bpq_take(q, msg);
		r->msg = msg;
		r->result = 0;
		bpq_defer_wake(q, df, r->task);
	}
}

static void bpq_ring_fill(struct bpq_queue *q, struct bpq_defer *df);

/* @now: the clock, read once per hold of the lock by the caller */
static void bpq_enqueue(struct bpq_queue *q, struct bpq_msg *msg,
			struct bpq_defer *df, u64 now)
{
	lockdep_assert_held(&q->lock);
	msg->seq = ++q->next_seq;
	msg->tstamp = now;
	if (q->cfg.strategy == BPQ_STRATEGY_CREDIT)
		q->credits--;
	else if (q->cfg.strategy == BPQ_STRATEGY_ADAPTIVE)
		bpq_adaptive_admit(q, msg->tstamp);
	list_add_tail(&msg->node, &q->msgs);
	q->depth_msgs++;
	q->depth_bytes += msg->len;
	if (READ_ONCE(metrics)) {
		q->stats.enqueued_msgs++;
		q->stats.enqueued_bytes += msg->len;
	}
	/* a backlog moves in bpq_ring_refill(), one budget per lock hold */
	if (list_is_singular(&q->msgs))
		bpq_ring_fill(q, df);
	bpq_update_pressure(q, df);
	bpq_feed_readers(q, df);
	bpq_wake_pollers(q, df, EPOLLIN | EPOLLRDNORM);
}

/*
 * Remove @msg from the queue without delivering it. A message being copied
 * out stays with its reader, who frees it and tries again.
 */
static void bpq_discard(struct bpq_queue *q, struct bpq_msg *msg,
			struct list_head *reap)
{
	lockdep_assert_held(&q->lock);
	q->depth_msgs--;
	q->depth_bytes -= msg->len;
	if (msg->flags & BPQ_MSG_INFLIGHT) {
		q->inflight--;
		msg->flags |= BPQ_MSG_GONE;
		list_del_init(&msg->node);
	} else {
		list_move_tail(&msg->node, reap);
	}
}

/* drop-oldest: evict until @len fits below the high watermark */
static void bpq_make_room(struct bpq_queue *q, u32 len, struct bpq_defer *df)
{
	struct bpq_msg *victim;

	while (!list_empty(&q->msgs) &&
	       bpq_above(q, q->depth_msgs + 1, q->depth_bytes + len,
			 q->cfg.high_watermark)) {
		victim = bpq_first_avail(q);
		if (!victim)
			victim = list_first_entry(&q->msgs, struct bpq_msg,
						  node);
		bpq_discard(q, victim, &df->reap);
		q->stats.dropped_oldest++;
		q->lost++;
	}
	bpq_update_pressure(q, df);
}

static int bpq_refuse_newest(struct bpq_queue *q)
{
	q->stats.dropped_newest++;
	q->stats.backpressure_applied++;
	q->lost++;
	return -ENOBUFS;
}

static bool bpq_too_big(struct bpq_queue *q, u32 len)
{
	return len > q->cfg.max_msg_size || len > q->cfg.capacity_bytes;
}

/*
 * Admit @msg if the strategy allows it now. Returns 0 when queued, a
 * negative errno when refused for good, or BPQ_PENDING when it must wait.
 */
static int bpq_try_admit(struct bpq_queue *q, struct bpq_msg *msg,
			 struct bpq_defer *df, u64 now)
{
	/* again for waiting writers: the limits may have shrunk meanwhile */
	if (bpq_too_big(q, msg->len))
		return -EMSGSIZE;
	switch (q->cfg.strategy) {
	case BPQ_STRATEGY_DROP_NEWEST:
		if (q->pressure || !bpq_fits(q, msg->len))
			return bpq_refuse_newest(q);
		break;
	case BPQ_STRATEGY_DROP_OLDEST:
		bpq_make_room(q, msg->len, df);
		break;
	case BPQ_STRATEGY_ADAPTIVE:
		/* the controller moves lazily, here and at delivery */
		bpq_adaptive_tick(q, now);
		fallthrough;
	default:
		if (!bpq_has_room(q, msg->len, now))
			return BPQ_PENDING;
	}
	bpq_enqueue(q, msg, df, now);
	return 0;
}

/*
 * Settle waiting writers, oldest first, as far as the strategy admits;
 * they are woken after the unlock.
 */
static void bpq_admit_writers(struct bpq_queue *q, struct bpq_defer *df)
{
	struct bpq_writer *w;
	u64 now = 0;
	int ret;

	lockdep_assert_held(&q->lock);
	while (!list_empty(&q->writers)) {
		w = list_first_entry(&q->writers, struct bpq_writer, node);
		if (!now)
			now = ktime_get_ns();
		ret = bpq_try_admit(q, w->msg, df, now);
		if (ret == BPQ_PENDING)
			break;
		list_del_init(&w->node);
		w->result = ret;
		bpq_defer_wake(q, df, w->task);
	}
	/* a new head of a paced queue must go and wait for its token */
	w = list_first_entry_or_null(&q->writers, struct bpq_writer, node);
	if (w && !w->paced && q->cfg.strategy == BPQ_STRATEGY_ADAPTIVE)
		bpq_defer_wake(q, df, w->task);
}

/*
 * Sleep until woken or @deadline (KTIME_MAX: none). Called and returns with
 * q->lock held; the caller rechecks its own state after the return. The
 * wake-ups @df collected go out first: those woken may be what we wait
 * for.
 */
static int bpq_sleep(struct bpq_queue *q, struct bpq_defer *df,
		     ktime_t deadline)
	__must_hold(&q->lock)
{
	int ret = 0;

	lockdep_assert_held(&q->lock);
	bpq_pace_pollers(q);
	set_current_state(TASK_INTERRUPTIBLE);
	spin_unlock(&q->lock);
	/* wakes others only, never us (bpq_defer_wake()) */
	bpq_defer_flush(q, df);
	if (deadline == KTIME_MAX)
		schedule();
	else if (!schedule_hrtimeout_range(&deadline, 0, HRTIMER_MODE_ABS))
		ret = -ETIMEDOUT;
	spin_lock(&q->lock);
	if (signal_pending(current))
		ret = -ERESTARTSYS;
	return ret;
}

/*
 * The end of a wait that starts at @start: with BPQ_IO_TIMEOUT, @timeout_ms
 * from now (0: do not wait); else @dflt_ms, where 0 means no bound.
 */
static ktime_t bpq_deadline(ktime_t start, u32 flags, u32 timeout_ms,
			    u32 dflt_ms)
{
	if (!(flags & BPQ_IO_TIMEOUT)) {
		if (!dflt_ms)
			return KTIME_MAX;
		timeout_ms = dflt_ms;
	}
	return ktime_add_ms(start, timeout_ms);
}

/* Why a writer has to wait: each reason has its own time counter. */
static u64 *bpq_wait_clock(struct bpq_queue *q, u32 len)
{
	switch (q->cfg.strategy) {
	case BPQ_STRATEGY_CREDIT:
		if (q->credits)
			break;
		q->stats.credit_starvation++;
		return &q->stats.credit_starved_ns;
	case BPQ_STRATEGY_ADAPTIVE:
		if (q->pressure || !bpq_fits(q, len))
			break;
		q->ad.limited = true;
		return &q->stats.throttled_ns;
	}
	return &q->stats.blocked_ns;
}

static int bpq_wait_writer(struct bpq_queue *q, struct bpq_writer *w,
			   u32 flags, u32 timeout_ms, struct bpq_defer *df)
{
	u64 *clock = bpq_wait_clock(q, w->msg->len);
	ktime_t start, deadline, wake;
	int ret;

	q->stats.backpressure_applied++;
	if (flags & BPQ_IO_NONBLOCK)
		return -EAGAIN;
	start = ktime_get();
	deadline = bpq_deadline(start, flags, timeout_ms,
				q->cfg.write_timeout_ms);

	w->task = current;
	w->result = BPQ_PENDING;
	list_add_tail(&w->node, &q->writers);
	do {
		wake = deadline;
		w->paced = q->cfg.strategy == BPQ_STRATEGY_ADAPTIVE &&
			   list_first_entry(&q->writers, struct bpq_writer,
					    node) == w &&
			   !q->pressure && bpq_fits(q, w->msg->len);
		if (w->paced)
			wake = min_t(ktime_t, wake,
				     ns_to_ktime(bpq_adaptive_ready_at(q)));
		ret = bpq_sleep(q, df, wake);
		w->paced = false;
		if (w->result != BPQ_PENDING)
			break;
		if (ret == -ETIMEDOUT && wake < deadline)
			ret = 0;	/* our token is due, not our deadline */
		if (!ret) {
			bpq_admit_writers(q, df);
			continue;
		}
		list_del_init(&w->node);
		w->result = ret;
		if (ret == -ETIMEDOUT)
			q->stats.timeouts++;
		/* the new head may fit where we did not */
		bpq_admit_writers(q, df);
		bpq_wake_pollers(q, df, EPOLLOUT | EPOLLWRNORM);
	} while (w->result == BPQ_PENDING);

	*clock += ktime_to_ns(ktime_sub(ktime_get(), start));
	return w->result;
}

/*
 * Queue @msgs in order, each waiting as the strategy says, under one hold
 * of the lock but while waiting. Returns how many were queued, or the
 * error of the first. The queue owns those; the rest are freed here.
 */
int bpq_send_many(struct bpq_queue *q, struct bpq_msg **msgs, unsigned int n,
		  u32 flags, u32 timeout_ms)
{
	DEFINE_BPQ_DEFER(df);
	struct bpq_writer w;
	unsigned int i, j;
	int ret = 0;
	u64 now;

	spin_lock(&q->lock);
	now = ktime_get_ns();	/* one timestamp per hold of the lock */
	for (i = 0; i < n; i++) {
		if (q->dead)
			ret = -ENODEV;
		else if (bpq_too_big(q, msgs[i]->len))
			ret = -EMSGSIZE;
		else if (list_empty(&q->writers))
			ret = bpq_try_admit(q, msgs[i], &df, now);
		else
			ret = BPQ_PENDING; /* a newcomer never overtakes a waiter */
		if (ret == BPQ_PENDING) {
			w = (struct bpq_writer){ .msg = msgs[i] };
			ret = bpq_wait_writer(q, &w, flags, timeout_ms, &df);
			now = ktime_get_ns();	/* the lock was dropped */
		}
		if (ret)
			break;
	}
	bpq_unlock(q, &df);

	/* msgs[i] was refused, those after it never tried */
	for (j = i; j < n; j++)
		bpq_msg_free(msgs[j]);
	return i ? i : ret;
}

int bpq_send(struct bpq_queue *q, struct bpq_msg *msg, u32 flags,
	     u32 timeout_ms)
{
	/* 1 when queued, else the error */
	return min(bpq_send_many(q, &msg, 1, flags, timeout_ms), 0);
}

/*
 * Take the oldest available message for copying out; it stays queued, and
 * counted, until bpq_recv_end(). *lost gets the messages dropped since
 * *lost_seen.
 */
struct bpq_msg *bpq_recv_begin(struct bpq_queue *q, struct bpq_file *bf,
			       size_t room, u32 flags, u32 timeout_ms,
			       struct bpq_loss *loss)
{
	struct bpq_reader r = { };
	bool keep_place = false;
	DEFINE_BPQ_DEFER(df);
	ktime_t deadline = 0;
	struct bpq_msg *msg;
	int ret;

	spin_lock(&q->lock);
	for (;;) {
		msg = r.msg;
		r.msg = NULL;
		if (msg && (msg->flags & BPQ_MSG_GONE)) {
			/* evicted before we woke: drop it, keep our turn */
			list_add(&msg->node, &df.reap);
			keep_place = true;
			msg = NULL;
		}
		if (q->dead) {
			/* a message handed to us stays listed; release frees it */
			msg = ERR_PTR(-ENODEV);
			break;
		}
		if (q->ring) {
			/* it has the queue's one reader */
			msg = ERR_PTR(-EBUSY);
			break;
		}
		if (!msg) {
			msg = bpq_first_avail(q);
			if (msg)
				bpq_take(q, msg);
		}
		if (msg) {
			if (msg->len > room) {
				bpq_untake(q, msg, &df);
				msg = ERR_PTR(-EMSGSIZE);
			}
			break;
		}
		if (q->cfg.strategy == BPQ_STRATEGY_ADAPTIVE)
			q->ad.starved = true;
		if (flags & BPQ_IO_NONBLOCK) {
			msg = ERR_PTR(-EAGAIN);
			break;
		}
		/* the clock only for a wait: most receives find a message */
		if (!deadline)
			deadline = bpq_deadline(ktime_get(), flags, timeout_ms,
						0);
		r.task = current;
		r.result = BPQ_PENDING;
		if (keep_place)
			list_add(&r.node, &q->readers);
		else
			list_add_tail(&r.node, &q->readers);
		ret = bpq_sleep(q, &df, deadline);
		if (r.result == BPQ_PENDING) {
			list_del_init(&r.node);
			if (ret) {
				msg = ERR_PTR(ret);
				break;
			}
			keep_place = true;	/* woken for nothing */
		} else if (r.result < 0) {
			msg = ERR_PTR(r.result);
			break;
		}
	}
	if (!IS_ERR(msg)) {
		loss->mark = q->lost;
		loss->count = q->lost - bf->lost_seen;
	}
	bpq_unlock(q, &df);
	return msg;
}

/*
 * What bpq_account_delivery() needs, taken once per hold of the lock:
 * whether the reporting counters run, and the clock if anything uses it.
 */
struct bpq_delivery {
	bool metrics;
	u64 now;
};

static struct bpq_delivery bpq_delivery_start(struct bpq_queue *q)
{
	struct bpq_delivery d = { .metrics = READ_ONCE(metrics) };

	if (d.metrics || q->cfg.strategy == BPQ_STRATEGY_ADAPTIVE)
		d.now = ktime_get_ns();
	return d;
}

static void bpq_account_delivery(struct bpq_queue *q, u32 len, u64 tstamp,
				 const struct bpq_delivery *d)
{
	if (d->metrics) {
		u64 sojourn = d->now - tstamp;
		unsigned int bucket = min_t(unsigned int, fls64(sojourn >> 10),
					    BPQ_LATENCY_BUCKETS - 1);

		q->stats.dequeued_msgs++;
		q->stats.dequeued_bytes += len;
		q->stats.latency_hist[bucket]++;
		q->tp_count++;
	}
	if (q->cfg.strategy == BPQ_STRATEGY_ADAPTIVE) {
		bpq_adaptive_delivered(q);
		bpq_adaptive_tick(q, d->now);
	}
	if (q->cfg.strategy == BPQ_STRATEGY_CREDIT && q->cfg.auto_credit &&
	    q->credits < U64_MAX)
		q->credits++;
}

/*
 * Finish what bpq_recv_begin() started: @delivered says whether the whole
 * payload reached the reader. Returns true when the message counts as
 * delivered, and the loss it reported is then consumed; false when it
 * stays queued, or when it was evicted meanwhile (then the reader should
 * try again). Frees @msg unless it stays queued.
 */
bool bpq_recv_end(struct bpq_queue *q, struct bpq_file *bf,
		  struct bpq_msg *msg, bool delivered,
		  const struct bpq_loss *loss)
{
	DEFINE_BPQ_DEFER(df);
	bool gone;

	spin_lock(&q->lock);
	gone = msg->flags & BPQ_MSG_GONE;
	if (gone) {
		/* counted as evicted or flushed already */
	} else if (delivered) {
		struct bpq_delivery d = bpq_delivery_start(q);

		q->inflight--;
		list_del(&msg->node);
		q->depth_msgs--;
		q->depth_bytes -= msg->len;
		bpq_account_delivery(q, msg->len, msg->tstamp, &d);
		if (loss->mark > bf->lost_seen)
			bf->lost_seen = loss->mark;
		bpq_update_pressure(q, &df);
		bpq_admit_writers(q, &df);
		bpq_wake_pollers(q, &df, EPOLLOUT | EPOLLWRNORM);
	} else {
		bpq_untake(q, msg, &df);
	}
	bpq_unlock(q, &df);

	if (gone || delivered)
		bpq_msg_free(msg);
	return !gone && delivered;
}

/*
 * After bpq_recv_begin(): take up to @max further available messages that
 * fit in @room, in order, under one hold of the lock. *mark gets the loss
 * count at that moment.
 */
unsigned int bpq_recv_more(struct bpq_queue *q, struct bpq_msg **msgs,
			   unsigned int max, size_t room, u64 *mark)
{
	struct bpq_msg *msg;
	unsigned int n = 0;

	spin_lock(&q->lock);
	if (!q->dead && q->depth_msgs > q->inflight) {
		list_for_each_entry(msg, &q->msgs, node) {
			if (n == max || msg->len > room)
				break;
			if (msg->flags & BPQ_MSG_INFLIGHT)
				continue;
			bpq_take(q, msg);
			room -= msg->len;
			msgs[n++] = msg;
		}
	}
	*mark = q->lost;
	spin_unlock(&q->lock);
	return n;
}

/*
 * bpq_recv_end() for @n messages at once, of which the first @copied
 * reached the reader. A message evicted meanwhile ends the delivered run:
 * those after it go back to the queue. Returns how many were delivered;
 * the loss reported up to @mark is then consumed.
 */
unsigned int bpq_recv_end_many(struct bpq_queue *q, struct bpq_file *bf,
			       struct bpq_msg **msgs, unsigned int n,
			       unsigned int copied, u64 mark)
{
	unsigned int i, delivered = 0;
	struct bpq_delivery d = { };
	DEFINE_BPQ_DEFER(df);
	struct bpq_msg *msg;

	spin_lock(&q->lock);
	for (i = 0; i < n; i++) {
		msg = msgs[i];
		if (msg->flags & BPQ_MSG_GONE) {
			list_add(&msg->node, &df.reap);
			copied = min(copied, i);
		} else if (i < copied) {
			q->inflight--;
			list_move(&msg->node, &df.reap);
			q->depth_msgs--;
			q->depth_bytes -= msg->len;
			if (!delivered)
				d = bpq_delivery_start(q);
			bpq_account_delivery(q, msg->len, msg->tstamp, &d);
			delivered++;
		} else {
			bpq_untake(q, msg, &df);
		}
	}
	if (delivered) {
		if (mark > bf->lost_seen)
			bf->lost_seen = mark;
		bpq_update_pressure(q, &df);
		bpq_admit_writers(q, &df);
		bpq_wake_pollers(q, &df, EPOLLOUT | EPOLLWRNORM);
	}
	bpq_unlock(q, &df);
	return delivered;
}

/*
 * Wake everyone after q->dead was set: settle every waiter with ENODEV.
 * The ring's syncer is woken under the lock: q->ring holds no reference.
 */
void bpq_queue_kill(struct bpq_queue *q)
{
	struct bpq_writer *w, *wt;
	struct bpq_reader *r, *rt;
	DEFINE_BPQ_DEFER(df);

	spin_lock(&q->lock);
	/* read without the lock by __bpq_set_config() and the getters */
	WRITE_ONCE(q->dead, true);
	list_for_each_entry_safe(w, wt, &q->writers, node) {
		list_del_init(&w->node);
		w->result = -ENODEV;
		bpq_defer_wake(q, &df, w->task);
	}
	list_for_each_entry_safe(r, rt, &q->readers, node) {
		list_del_init(&r->node);
		r->result = -ENODEV;
		bpq_defer_wake(q, &df, r->task);
	}
	if (q->ring)
		wake_up_interruptible_all(&q->ring->wait);
	spin_unlock(&q->lock);
	bpq_defer_flush(q, &df);
	/* no poll arms it again: it sees the queue dead first */
	hrtimer_cancel(&q->poll_timer);
	wake_up_interruptible_poll(&q->poll_wait, EPOLLERR | EPOLLHUP);
	kill_fasync(&q->fasync, SIGIO, POLL_HUP);
}

static void bpq_config_changed(struct bpq_queue *q, struct bpq_defer *df)
{
	bpq_update_pressure(q, df);
	bpq_admit_writers(q, df);
	bpq_wake_pollers(q, df, EPOLLOUT | EPOLLWRNORM | EPOLLPRI);
}

int bpq_check_config(const struct bpq_config *c)
{
	if (c->flags || c->__reserved)
		return -EINVAL;
	if (c->strategy > BPQ_STRATEGY_ADAPTIVE)
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
	if (c->auto_credit > 1)
		return -EINVAL;
	if (!c->target_latency_us || c->target_latency_us > 60000000)
		return -EINVAL;
	if (!c->min_rate || c->max_rate < c->min_rate)
		return -EINVAL;
	if (!c->adjust_interval_ms || c->adjust_interval_ms > 60000)
		return -EINVAL;
	return 0;
}

static int __bpq_set_config(struct bpq_queue *q, const struct bpq_config *cfg)
{
	DEFINE_BPQ_DEFER(df);
	int ret;

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
		bool restart = cfg->strategy == BPQ_STRATEGY_ADAPTIVE &&
			       q->cfg.strategy != BPQ_STRATEGY_ADAPTIVE;

		q->cfg = *cfg;
		q->cfg.size = sizeof(q->cfg);
		if (restart)
			bpq_adaptive_start(q, ktime_get_ns());
		bpq_adaptive_clamp(q);
		bpq_config_changed(q, &df);
	}
	bpq_unlock(q, &df);
	return ret;
}

int bpq_set_config(struct bpq_queue *q, const struct bpq_config *cfg)
{
	int ret;

	mutex_lock(&q->cfg_mutex);
	ret = __bpq_set_config(q, cfg);
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

int bpq_grant(struct bpq_queue *q, u64 credits)
{
	DEFINE_BPQ_DEFER(df);
	int ret = 0;

	if (!credits)
		return -EINVAL;
	spin_lock(&q->lock);
	if (q->dead) {
		ret = -ENODEV;
	} else {
		if (check_add_overflow(q->credits, credits, &q->credits))
			q->credits = U64_MAX;
		bpq_config_changed(q, &df);
	}
	bpq_unlock(q, &df);
	return ret;
}

int bpq_flush(struct bpq_queue *q)
{
	struct bpq_msg *msg, *tmp;
	DEFINE_BPQ_DEFER(df);
	int n = 0;

	spin_lock(&q->lock);
	if (q->dead) {
		spin_unlock(&q->lock);
		return -ENODEV;
	}
	list_for_each_entry_safe(msg, tmp, &q->msgs, node) {
		bpq_discard(q, msg, &df.reap);
		n++;
	}
	q->stats.flushed += n;
	bpq_config_changed(q, &df);
	bpq_unlock(q, &df);
	return n;
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

/*
 * Receive rings. A ring is the queue's one reader, and always ready: a
 * message moves into it as soon as it is queued and the ring has room,
 * and counts as delivered there. What does not fit waits in the queue,
 * under its capacity and strategy, until the reader has made room and
 * says so (BPQ_IOC_RING_SYNC, asked for by BPQ_RING_NEED_SYNC).
 */

/* What one hold of the lock moves into a ring, beyond a message a pass */
#define BPQ_RING_FILL_BYTES	(64U << 10)	/* of records */
#define BPQ_RING_FILL_MSGS	256U

static void bpq_ring_write(struct bpq_queue *q, struct bpq_ring_rec *rec,
			   u32 len, u64 seq, u64 tstamp)
{
	struct bpq_file *bf = q->ring->owner;

	*rec = (struct bpq_ring_rec){
		.len = len,
		.seq = seq,
		.timestamp_ns = tstamp,
		.lost = q->lost - bf->lost_seen,
	};
	bf->lost_seen = q->lost;
}

/*
 * Move waiting messages into the ring, oldest first, while it has room
 * and the budget lasts. What is left waiting has the reader asked to
 * sync; if its head moved meanwhile, one more pass, which moves at least
 * one message, so that a reader who emptied the ring before it saw the
 * flag is not left waiting. Two passes at most: a reader that keeps
 * moving its head cannot hold us here.
 */
static void bpq_ring_fill(struct bpq_queue *q, struct bpq_defer *df)
{
	struct bpq_ring *ring = q->ring;
	u32 bytes = 0, msgs = 0, moved;
	struct bpq_delivery d = { };
	struct bpq_ring_rec *rec;
	struct bpq_msg *msg;
	u64 head, seen, pos;
	bool again = true;

	lockdep_assert_held(&q->lock);
	/* a writer copying in beyond the tail fills after itself */
	if (!ring || ring->busy)
		return;
	head = bpq_ring_head(ring);
	for (;;) {
		pos = ring->tail;
		moved = 0;
		while ((msg = list_first_entry_or_null(&q->msgs, struct bpq_msg,
						       node))) {
			u32 rec_len = BPQ_RING_RECORD(msg->len);

			if (bpq_ring_end(ring, pos, msg->len) - head >
			    ring->size)
				break;
			if (moved && (bytes + rec_len > BPQ_RING_FILL_BYTES ||
				      msgs == BPQ_RING_FILL_MSGS))
				break;
			if (!msgs)
				d = bpq_delivery_start(q);
			bytes += rec_len;
			msgs++;
			moved++;
			rec = bpq_ring_slot(ring, &pos, msg->len);
			bpq_ring_write(q, rec, msg->len, msg->seq, msg->tstamp);
			memcpy(rec + 1, msg->data, msg->len);
			list_move_tail(&msg->node, &df->reap);
			q->depth_msgs--;
			q->depth_bytes -= msg->len;
			bpq_account_delivery(q, msg->len, msg->tstamp, &d);
		}
		if (moved) {
			bpq_ring_publish(ring, pos);
			bpq_wake_pollers(q, df, EPOLLIN | EPOLLRDNORM);
		}
		if (!msg) {
			bpq_ring_need_sync(ring, false);
			return;
		}
		seen = bpq_ring_need_sync(ring, true);
		if (seen == head || !again)
			return;
		head = seen;
		again = false;
	}
}

/* Fill the ring, and let in the writers that the room it made admits. */
static void bpq_ring_refill(struct bpq_queue *q, struct bpq_defer *df)
{
	u32 depth = q->depth_msgs;

	bpq_ring_fill(q, df);
	if (q->depth_msgs == depth)
		return;
	bpq_update_pressure(q, df);
	bpq_admit_writers(q, df);
	bpq_wake_pollers(q, df, EPOLLOUT | EPOLLWRNORM);
}

/* Can @bf have a ring of @size bytes now? */
static int bpq_ring_check(struct bpq_queue *q, struct bpq_file *bf, u32 size)
{
	struct bpq_msg *msg;

	if (q->dead)
		return -ENODEV;
	if (bf->ring || q->ring || !list_empty(&q->readers) || q->inflight)
		return -EBUSY;
	if (!bpq_ring_takes(size, q->cfg.max_msg_size))
		return -EINVAL;
	/* and what a larger max_msg_size let in before */
	list_for_each_entry(msg, &q->msgs, node)
		if (!bpq_ring_takes(size, msg->len))
			return -EINVAL;
	return 0;
}

int bpq_ring_attach(struct bpq_queue *q, struct bpq_file *bf, u32 size)
{
	DEFINE_BPQ_DEFER(df);
	struct bpq_ring *ring;
	int ret;

	/* the errors first, then the memory (up to 64 MiB), then again */
	spin_lock(&q->lock);
	ret = bpq_ring_check(q, bf, size);
	spin_unlock(&q->lock);
	if (ret)
		return ret;
	ring = bpq_ring_alloc(size);
	if (!ring)
		return -ENOMEM;
	spin_lock(&q->lock);
	ret = bpq_ring_check(q, bf, size);
	if (!ret) {
		ring->owner = bf;
		WRITE_ONCE(q->ring, ring);
		/* bpq_mmap() reads it without the lock */
		smp_store_release(&bf->ring, ring);
		bpq_ring_refill(q, &df);
	}
	bpq_unlock(q, &df);
	if (ret)
		bpq_ring_put(ring);
	return ret;
}

/* The queue gets plain readers back. */
static void bpq_ring_unlink(struct bpq_queue *q, struct bpq_defer *df)
{
	lockdep_assert_held(&q->lock);
	WRITE_ONCE(q->ring, NULL);
	if (q->depth_msgs)
		bpq_wake_pollers(q, df, EPOLLIN | EPOLLRDNORM);
}

/*
 * At the last close of the ring's file. A writer copying into the ring
 * meanwhile unlinks it when it is done (bpq_ring_send_end()), so that
 * its sequence numbers stay exact; the file is not used after this.
 */
void bpq_ring_detach(struct bpq_queue *q, struct bpq_file *bf)
{
	struct bpq_ring *ring = bf->ring;
	DEFINE_BPQ_DEFER(df);

	if (!ring)
		return;
	spin_lock(&q->lock);
	ring->owner = NULL;
	if (!ring->busy)
		bpq_ring_unlink(q, &df);
	bpq_unlock(q, &df);
	bpq_ring_put(ring);
}

/*
 * BPQ_IOC_RING_SYNC: fill the ring; with BPQ_RING_WAIT, wait until it holds
 * a record. Returns the bytes it holds.
 */
int bpq_ring_sync(struct bpq_queue *q, struct bpq_file *bf, u32 flags,
		  u32 timeout_ms)
{
	/* as in bpq_mmap(): set once, whole when seen */
	struct bpq_ring *ring = smp_load_acquire(&bf->ring);
	DEFINE_BPQ_DEFER(df);
	ktime_t deadline = 0;
	DEFINE_WAIT(wait);
	u64 held = 0;
	int ret = 0;

	if (!ring)
		return -EINVAL;
	spin_lock(&q->lock);
	for (;;) {
		if (q->dead) {
			ret = -ENODEV;
			break;
		}
		bpq_ring_refill(q, &df);
		held = ring->tail - bpq_ring_head(ring);
		/* a record that came with the timeout or signal still counts */
		if (held || ret || !(flags & BPQ_RING_WAIT))
			break;
		if (flags & BPQ_IO_NONBLOCK) {
			ret = -EAGAIN;
			break;
		}
		if (!deadline)
			deadline = bpq_deadline(ktime_get(), flags, timeout_ms,
						0);
		prepare_to_wait(&ring->wait, &wait, TASK_INTERRUPTIBLE);
		ret = bpq_sleep(q, &df, deadline);
		finish_wait(&ring->wait, &wait);
	}
	bpq_unlock(q, &df);
	return held ? held : ret;
}

/*
 * The writers' fast path. While nothing waits in the queue, a strategy
 * that needs no credit or token admits every message at once, and it may
 * go straight from the writer's buffer into the ring, with no allocation.
 * One writer at a time reserves room beyond the tail (ring->busy), with
 * the sequence numbers, time and loss count its messages have as queued
 * now, and copies without the lock; others meanwhile queue as usual and
 * follow it into the ring when it publishes. The copy is short (at most
 * BPQ_RING_FILL_BYTES of records) and runs with preemption and page
 * faults off, from here to bpq_ring_send_end(): a page that is not there
 * ends it, and that message takes the ordinary path, so that a writer
 * whose fault takes long (userfaultfd, FUSE) or who is preempted holds up
 * no one. Returns how many of the @n messages of @lens bytes to copy in
 * at @rs, or 0: the ordinary path.
 */
unsigned int bpq_ring_send_begin(struct bpq_queue *q, const u32 *lens,
				 unsigned int n, struct bpq_ring_send *rs)
{
	DEFINE_BPQ_DEFER(df);
	struct bpq_ring *ring;
	unsigned int i = 0;
	u64 head, pos;

	spin_lock(&q->lock);
	ring = q->ring;
	if (!ring || ring->busy || q->dead)
		goto out;
	/* a backlog the reader has made room for goes first */
	if (!list_empty(&q->msgs))
		bpq_ring_refill(q, &df);
	if (q->pressure || !list_empty(&q->msgs) || !list_empty(&q->writers))
		goto out;
	if (q->cfg.strategy == BPQ_STRATEGY_CREDIT ||
	    q->cfg.strategy == BPQ_STRATEGY_ADAPTIVE)
		goto out;
	head = bpq_ring_head(ring);
	for (pos = ring->tail; i < n && !bpq_too_big(q, lens[i]); i++) {
		u64 end = bpq_ring_end(ring, pos, lens[i]);

		/* room, and a bound on the copy that holds the others up */
		if (end - head > ring->size ||
		    (i && end - ring->tail > BPQ_RING_FILL_BYTES))
			break;
		pos = end;
	}
	if (!i)
		goto out;
	ring->busy = true;
	kref_get(&ring->ref);
	*rs = (struct bpq_ring_send){
		.ring = ring,
		.pos = ring->tail,
		.seq = q->next_seq + 1,
		.tstamp = ktime_get_ns(),
		.lost = q->lost - ring->owner->lost_seen,
		.lost_seen = ring->owner->lost_seen,
		.n = i,
	};
	q->next_seq += i;
	ring->owner->lost_seen = q->lost;
out:
	bpq_unlock(q, &df);
	if (i) {
		preempt_disable();
		pagefault_disable();
	}
	return i;
}

/* Where the payload of the next reserved message goes, its header written. */
void *bpq_ring_send_slot(struct bpq_ring_send *rs, u32 len)
{
	struct bpq_ring_rec *rec = bpq_ring_slot(rs->ring, &rs->pos, len);

	*rec = (struct bpq_ring_rec){
		.len = len,
		.seq = rs->seq + rs->done,
		.timestamp_ns = rs->tstamp,
		.lost = rs->done ? 0 : rs->lost,
	};
	rs->done++;
	return rec + 1;
}

/*
 * Give back the reservation of @k messages that were not copied in. The
 * ring is the only reader, so no one has seen the sequence numbers of the
 * messages queued since: they move down to close the gap.
 */
static void bpq_ring_unreserve(struct bpq_queue *q, struct bpq_ring_send *rs,
			       unsigned int k, bool none)
{
	struct bpq_msg *msg;

	lockdep_assert_held(&q->lock);
	list_for_each_entry(msg, &q->msgs, node)
		msg->seq -= k;
	q->next_seq -= k;
	if (none && rs->ring->owner)
		rs->ring->owner->lost_seen = rs->lost_seen;
}

/*
 * Publish the first @copied messages reserved by bpq_ring_send_begin(),
 * of @lens bytes, now in their records. They count as delivered even if
 * the ring's file was closed meanwhile, as messages unread in it then;
 * the ring is unlinked after them. Page faults and preemption are back
 * on from here. Returns @copied, or -ENODEV.
 */
int bpq_ring_send_end(struct bpq_queue *q, struct bpq_ring_send *rs,
		      const u32 *lens, unsigned int copied)
{
	struct bpq_ring *ring = rs->ring;
	DEFINE_BPQ_DEFER(df);
	unsigned int i;
	u64 bytes = 0;
	int ret;

	pagefault_enable();
	preempt_enable();
	spin_lock(&q->lock);
	ring->busy = false;
	if (q->dead) {
		if (!ring->owner)
			bpq_ring_unlink(q, &df);
		ret = -ENODEV;
		goto out;
	}
	if (copied < rs->n)
		bpq_ring_unreserve(q, rs, rs->n - copied, !copied);
	if (copied) {
		u64 pos = ring->tail;

		for (i = 0; i < copied; i++) {
			pos = bpq_ring_end(ring, pos, lens[i]);
			bytes += lens[i];
		}
		bpq_ring_publish(ring, pos);
		bpq_wake_pollers(q, &df, EPOLLIN | EPOLLRDNORM);
		/* queued and delivered at once: a sojourn of 0 */
		if (READ_ONCE(metrics)) {
			q->stats.enqueued_msgs += copied;
			q->stats.enqueued_bytes += bytes;
			q->stats.dequeued_msgs += copied;
			q->stats.dequeued_bytes += bytes;
			q->stats.latency_hist[0] += copied;
			q->tp_count += copied;
		}
	}
	if (!ring->owner)
		bpq_ring_unlink(q, &df);
	else
		bpq_ring_refill(q, &df);	/* those who queued meanwhile */
	ret = copied;
out:
	bpq_unlock(q, &df);
	bpq_ring_put(ring);
	return ret;
}

/*
 * What poll reports, read under q->lock and nothing changed, as
 * eventfd_poll() does: the ring is filled by the writers and by
 * BPQ_IOC_RING_SYNC, the adaptive controller and its timer move where
 * messages come and go (bpq_try_admit(), bpq_pace_pollers()).
 */
__poll_t bpq_poll_mask(struct bpq_queue *q, struct bpq_file *bf)
{
	__poll_t mask = 0;

	spin_lock(&q->lock);
	if (q->dead) {
		mask = EPOLLERR | EPOLLHUP;
	} else {
		/*
		 * On the ring's file: a record to take, or messages that
		 * wait for the room a BPQ_IOC_RING_SYNC would give them.
		 */
		if (q->ring ? bf->ring == q->ring &&
			      (q->ring->tail != bpq_ring_head(q->ring) ||
			       q->depth_msgs) :
			      q->depth_msgs > q->inflight)
			mask |= EPOLLIN | EPOLLRDNORM;
		if (bpq_writable(q))
			mask |= EPOLLOUT | EPOLLWRNORM;
		if (q->pressure)
			mask |= EPOLLPRI;
	}
	spin_unlock(&q->lock);
	return mask;
}
