// SPDX-License-Identifier: GPL-2.0
/*
 * The queue: admission by strategy, FIFO hand-off to waiting writers and
 * readers, eviction and accounting. The queue changes only under q->lock,
 * a spinlock never held across a user copy or a sleep; what runs without
 * it (allocating and freeing messages, the ring writer's copy, the poll
 * timer) is listed under Locking in bpq.h. The copies themselves are in
 * io.c and ring.c, the settings and counters in config.c.
 *
 * Waiting tasks do not race for the queue after a wake-up. Whoever changes
 * the state that a waiter waits on (room, credit, a message) settles the
 * waiter at the head of its FIFO under the lock: a writer's message is
 * queued for it, a reader is handed its message. The waiter is then woken,
 * after the unlock, only to return. So blocked tasks are served strictly
 * in arrival order, and a waiter that leaves early (signal, timeout)
 * cannot lose a wake-up meant for another: it settles the new head itself
 * before it goes.
 */
#include <linux/fs.h>
#include <linux/hrtimer.h>
#include <linux/ktime.h>
#include <linux/log2.h>
#include <linux/math64.h>
#include <linux/moduleparam.h>
#include <linux/poll.h>
#include <linux/sched/signal.h>
#include <linux/sched/task.h>
#include <linux/uaccess.h>
#include <linux/uio.h>

#include "bpq.h"

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

/*
 * A blocked writer, on q->writers: its own stack's (bpq_send_many()).
 * Whoever admits it makes its record, from its pool, and leaves it
 * reserved for it to copy in.
 */
struct bpq_writer {
	struct list_head node;
	struct task_struct *task;
	u32 len;
	struct bpq_pool *pool;		/* holds the pages its record needs */
	struct bpq_msg *msg;		/* reserved for it once admitted */
	u64 gen;			/* of the log msg is in */
	int result;			/* BPQ_PENDING until settled */
	bool paced;			/* asleep until its adaptive token */
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
	mutex_init(&q->read_mutex);
	hrtimer_init(&q->poll_timer, CLOCK_MONOTONIC, HRTIMER_MODE_ABS);
	q->poll_timer.function = bpq_poll_timer_fn;
	spin_lock_init(&q->lock);
	bpq_log_init(q);
	INIT_LIST_HEAD(&q->writers);
	INIT_LIST_HEAD(&q->readers);
	INIT_LIST_HEAD(&q->upstream);
	INIT_LIST_HEAD(&q->downstream);
	INIT_LIST_HEAD(&q->dirty_node);
	bpq_stall_init(&q->stall, ktime_get_ns());
	bpq_trigger_init(q);
	INIT_LIST_HEAD(&q->group_node);
	init_waitqueue_head(&q->poll_wait);
	q->cfg = bpq_default_config;
	q->tp_start = ktime_get_ns();
	bpq_adaptive_start(q, q->tp_start);
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

void bpq_unlock(struct bpq_queue *q, struct bpq_defer *df)
	__releases(&q->lock)
{
	if (q->cfg.strategy == BPQ_STRATEGY_ADAPTIVE)
		bpq_pace_pollers(q);
	bpq_stall_tick(q);
	spin_unlock(&q->lock);
	/* waitqueue_active() after the unlock: see bpq_defer_flush() */
	if (df->nr_wake || (df->poll && waitqueue_active(&q->poll_wait)))
		bpq_defer_flush(q, df);
	if (!list_empty(&df->pages))
		bpq_pages_free(&df->pages, true);
}

/*
 * Take every message off @q at once (bpq_log_detach()): its pages go on
 * @doomed, for bpq_pages_free() after the unlock, or, if readers or
 * writers have records pinned, into *@grave, which their pins keep.
 * Returns how many messages left the queue.
 */
u32 bpq_detach_msgs(struct bpq_queue *q, struct list_head *doomed,
		    struct bpq_grave **grave)
{
	u32 n = q->depth_msgs;

	lockdep_assert_held(&q->lock);
	bpq_log_detach(q, doomed, grave, q->pins);
	q->depth_msgs = 0;
	q->depth_bytes = 0;
	q->inflight = 0;
	q->reserved = 0;
	q->pins = 0;
	return n;
}

/* At the last reference: no file, no waiter, no timer to come. */
void bpq_queue_free_msgs(struct bpq_queue *q)
{
	hrtimer_cancel(&q->poll_timer);
	bpq_log_free(q);
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
void bpq_kill_fasync(struct bpq_queue *q, __poll_t mask)
{
	if ((mask & EPOLLIN) && (q->ring || bpq_first_avail(q)))
		kill_fasync(&q->fasync, SIGIO, POLL_IN);
	if ((mask & EPOLLOUT) && bpq_writable(q))
		kill_fasync(&q->fasync, SIGIO, POLL_OUT);
}

/*
 * The watermarks' pressure, from the high watermark until below the low
 * one; the effective pressure is that or a hold (hold.c). Its edges are
 * EPOLLPRI, SIGIO POLL_PRI and a notification of the sysfs file.
 */
void bpq_update_pressure(struct bpq_queue *q, struct bpq_defer *df)
{
	bool was = q->pressure;

	if (unlikely(q->group) && q->group_depth != q->depth_msgs)
		bpq_group_account(q);
	if (!q->watermark && bpq_at_or_above(q, q->depth_msgs, q->depth_bytes,
					     q->cfg.high_watermark))
		q->watermark = true;
	else if (q->watermark &&
		 !bpq_at_or_above(q, q->depth_msgs, q->depth_bytes,
				  q->cfg.low_watermark))
		q->watermark = false;
	q->pressure = q->watermark || q->holds;
	if (q->pressure != was) {
		bpq_wake_pollers(q, df, EPOLLPRI);
		kill_fasync(&q->fasync, SIGIO, POLL_PRI);
		bpq_notify(q->kn_pressure);
		bpq_link_dirty(q);
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
	case BPQ_STRATEGY_WINDOW:
		return bpq_window_inflight(q) < q->win.cwnd;
	default:
		return true;
	}
}

/* Would a write of one byte go in without waiting? EPOLLOUT. Reads only. */
static bool bpq_writable(struct bpq_queue *q)
{
	if (q->stream)
		return true;	/* EPIPE at once */
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
	if (q->cfg.strategy != BPQ_STRATEGY_ADAPTIVE || q->dead || q->stream ||
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

/*
 * @msg, or the first record after it, that a reader may take; NULL at
 * the tail, or at a record its writer is still copying in: the order
 * waits for it.
 */
static struct bpq_msg *bpq_avail_from(struct bpq_queue *q,
				      struct bpq_msg *msg)
{
	u32 flags;

	for (; msg; msg = bpq_log_next(q, msg)) {
		flags = bpq_msg_flags(msg);
		if (!flags)
			return msg;
		if (flags == BPQ_MSG_RESERVED)
			return NULL;
	}
	return NULL;
}

/*
 * The oldest message a reader may take, or NULL. The walk starts at
 * q->cursor, where the last one ended: records before it are taken,
 * reserved or gone, so that a reader stalled in its copy, and the dead
 * records it keeps in the log behind it, cost nothing here.
 */
struct bpq_msg *bpq_first_avail(struct bpq_queue *q)
{
	struct bpq_msg *msg;

	lockdep_assert_held(&q->lock);
	if (q->depth_msgs == q->inflight + q->reserved)
		return NULL;
	msg = bpq_avail_from(q, q->cursor ?: bpq_log_first(q));
	if (msg)
		q->cursor = msg;
	return msg;
}

/* The next message after @msg that a reader may take, or NULL */
struct bpq_msg *bpq_next_avail(struct bpq_queue *q, struct bpq_msg *msg)
{
	return bpq_avail_from(q, bpq_log_next(q, msg));
}

/* The oldest message in the queue, taken or not, or NULL */
struct bpq_msg *bpq_first_queued(struct bpq_queue *q)
{
	struct bpq_msg *msg;

	lockdep_assert_held(&q->lock);
	if (!q->depth_msgs)
		return NULL;
	for (msg = bpq_log_first(q); msg; msg = bpq_log_next(q, msg))
		if (!(bpq_msg_flags(msg) & BPQ_MSG_OUT))
			return msg;
	return NULL;
}

/* How long the oldest queued message has waited, in µs; 0 if none */
u64 bpq_head_age_us(struct bpq_queue *q)
{
	struct bpq_msg *msg = bpq_first_queued(q);
	u64 now = ktime_get_ns();

	if (!msg || now <= msg->tstamp)
		return 0;
	return div_u64(now - msg->tstamp, NSEC_PER_USEC);
}

/* A reader takes @msg to copy it out without the lock: it pins it. */
void bpq_take(struct bpq_queue *q, struct bpq_msg *msg)
{
	bpq_msg_mark(msg, BPQ_MSG_INFLIGHT, 0);
	q->inflight++;
	q->pins++;
}

/*
 * Has @msg, pinned from the log of generation @gen, left the queue while
 * pinned (evicted, flushed)? Then its pinner lets it go here, and has
 * nothing more to do with it.
 */
bool bpq_pin_gone(struct bpq_queue *q, struct bpq_msg *msg, u64 gen,
		  struct bpq_defer *df)
{
	lockdep_assert_held(&q->lock);
	if (gen != q->log_gen) {
		bpq_log_unpin(q, gen, df);
		return true;
	}
	if (!(bpq_msg_flags(msg) & BPQ_MSG_GONE))
		return false;
	q->pins--;
	bpq_msg_mark(msg, BPQ_MSG_DEAD, 0);
	bpq_log_trim(q, df);
	return true;
}

static void bpq_feed_readers(struct bpq_queue *q, struct bpq_defer *df);

/* A message a reader took but did not deliver is available again. */
void bpq_untake(struct bpq_queue *q, struct bpq_msg *msg,
		struct bpq_defer *df)
{
	bpq_msg_mark(msg, 0, BPQ_MSG_INFLIGHT);
	q->inflight--;
	q->pins--;
	/* in log order, as are sequence numbers */
	if (q->cursor && (s32)(msg->seq - q->cursor->seq) < 0)
		q->cursor = msg;
	bpq_feed_readers(q, df);
	bpq_wake_pollers(q, df, EPOLLIN | EPOLLRDNORM);
}

/* A stream read took @msg's payload up to @off: the rest stays first. */
void bpq_read_part(struct bpq_queue *q, struct bpq_msg *msg, u32 off,
		   struct bpq_defer *df)
{
	q->part = msg;
	q->part_off = off;
	if (READ_ONCE(metrics))
		q->stats.partial_reads++;
	bpq_untake(q, msg, df);
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
		r->gen = q->log_gen;
		r->result = 0;
		bpq_defer_wake(q, df, r->task);
	}
}

/* A message is there to take: readers are handed it, pollers told. */
static void bpq_publish(struct bpq_queue *q, struct bpq_defer *df)
{
	if (!list_empty(&q->readers))
		bpq_feed_readers(q, df);
	bpq_wake_pollers(q, df, EPOLLIN | EPOLLRDNORM);
}

/*
 * Queue @msg, the record just made at the log's tail. One its writer has
 * still to copy in (BPQ_MSG_RESERVED) counts, but is seen by readers only
 * from bpq_commit(). @now: the clock, read once per hold of the lock by
 * the caller.
 */
static void bpq_enqueue(struct bpq_queue *q, struct bpq_msg *msg,
			struct bpq_defer *df, u64 now)
{
	u32 len = bpq_msg_len(msg);

	lockdep_assert_held(&q->lock);
	msg->seq = ++q->next_seq;
	msg->tstamp = now;
	if (q->cfg.strategy == BPQ_STRATEGY_CREDIT)
		q->credits--;
	else if (q->cfg.strategy == BPQ_STRATEGY_ADAPTIVE)
		bpq_adaptive_admit(q, now);
	q->depth_msgs++;
	q->depth_bytes += len;
	if (READ_ONCE(metrics)) {
		q->stats.enqueued_msgs++;
		q->stats.enqueued_bytes += len;
	}
	if (bpq_msg_flags(msg) & BPQ_MSG_RESERVED) {
		q->reserved++;
		q->pins++;
		bpq_update_pressure(q, df);
		return;
	}
	/* a backlog moves in bpq_ring_refill(), one budget per lock hold */
	if (q->ring && q->depth_msgs == 1)
		bpq_ring_fill(q, df);
	bpq_update_pressure(q, df);
	bpq_publish(q, df);
}

/*
 * Remove @msg from the queue without delivering it. A message pinned by a
 * reader or its writer stays with that task, who lets it go.
 */
void bpq_discard(struct bpq_queue *q, struct bpq_msg *msg,
		 struct bpq_defer *df)
{
	u32 flags = bpq_msg_flags(msg);

	lockdep_assert_held(&q->lock);
	if (msg == q->part)
		q->part = NULL;
	q->depth_msgs--;
	q->depth_bytes -= bpq_msg_len(msg);
	if (flags & (BPQ_MSG_INFLIGHT | BPQ_MSG_RESERVED)) {
		if (flags & BPQ_MSG_INFLIGHT)
			q->inflight--;
		else
			q->reserved--;
		bpq_msg_mark(msg, BPQ_MSG_GONE, 0);
	} else {
		bpq_msg_mark(msg, BPQ_MSG_DEAD, 0);
		bpq_log_trim(q, df);
	}
}

/* The oldest message no task has pinned, else the oldest of all */
static struct bpq_msg *bpq_victim(struct bpq_queue *q)
{
	struct bpq_msg *msg = q->cursor ?: bpq_log_first(q);

	for (; msg; msg = bpq_log_next(q, msg))
		if (!bpq_msg_flags(msg))
			return msg;
	return bpq_first_queued(q);
}

/* drop-oldest: evict until @len fits below the high watermark */
static void bpq_make_room(struct bpq_queue *q, u32 len, struct bpq_defer *df)
{
	while (q->depth_msgs &&
	       bpq_above(q, q->depth_msgs + 1, q->depth_bytes + len,
			 q->cfg.high_watermark)) {
		bpq_discard(q, bpq_victim(q), df);
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

bool bpq_too_big(struct bpq_queue *q, u32 len)
{
	return len > q->cfg.max_msg_size || len > q->cfg.capacity_bytes;
}

/*
 * May a message of @len bytes be queued now, as the strategy says?
 * Returns 0 when it may (bpq_enqueue() next, in this hold of the lock), a
 * negative errno when it is refused for good, or BPQ_PENDING when it
 * must wait.
 */
static int bpq_try_admit(struct bpq_queue *q, u32 len, struct bpq_defer *df,
			 u64 now)
{
	/* again for waiting writers: the limits may have shrunk meanwhile */
	if (bpq_too_big(q, len))
		return -EMSGSIZE;
	switch (q->cfg.strategy) {
	case BPQ_STRATEGY_DROP_NEWEST:
		if (q->pressure || !bpq_fits(q, len))
			return bpq_refuse_newest(q);
		break;
	case BPQ_STRATEGY_DROP_OLDEST:
		bpq_make_room(q, len, df);
		break;
	case BPQ_STRATEGY_ADAPTIVE:
		/* the controller moves lazily, here and at delivery */
		bpq_adaptive_tick(q, now);
		fallthrough;
	default:
		if (q->cfg.strategy == BPQ_STRATEGY_WINDOW)
			bpq_window_tick(q, now);	/* its timeout, lazily */
		if (!bpq_has_room(q, len, now))
			return BPQ_PENDING;
	}
	return 0;
}

/*
 * Admit waiting writer @w: its record, made from its pool, reserved for
 * it to copy in after it wakes.
 */
static int bpq_admit_writer(struct bpq_queue *q, struct bpq_writer *w,
			    struct bpq_defer *df, u64 now)
{
	struct bpq_msg *msg = bpq_log_append(q, w->len, w->pool);

	if (!msg)	/* not so: it brought the pages for the worst case */
		return -ENOMEM;
	bpq_msg_mark(msg, BPQ_MSG_RESERVED, 0);
	bpq_enqueue(q, msg, df, now);
	w->msg = msg;
	w->gen = q->log_gen;
	return 0;
}

/*
 * Settle waiting writers, oldest first, as far as the strategy admits;
 * they are woken after the unlock.
 */
void bpq_admit_writers(struct bpq_queue *q, struct bpq_defer *df)
{
	struct bpq_writer *w;
	u64 now = 0;
	int ret;

	lockdep_assert_held(&q->lock);
	while (!list_empty(&q->writers)) {
		w = list_first_entry(&q->writers, struct bpq_writer, node);
		if (!now)
			now = ktime_get_ns();
		ret = bpq_try_admit(q, w->len, df, now);
		if (ret == BPQ_PENDING)
			break;
		if (!ret)
			ret = bpq_admit_writer(q, w, df, now);
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
int bpq_sleep(struct bpq_queue *q, struct bpq_defer *df, ktime_t deadline)
	__must_hold(&q->lock)
{
	int ret = 0;

	lockdep_assert_held(&q->lock);
	if (q->cfg.strategy == BPQ_STRATEGY_ADAPTIVE)
		bpq_pace_pollers(q);
	bpq_stall_tick(q);
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
ktime_t bpq_deadline(ktime_t start, u32 flags, u32 timeout_ms, u32 dflt_ms)
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
	case BPQ_STRATEGY_WINDOW:
		if (q->pressure || !bpq_fits(q, len))
			break;
		bpq_window_limited(q);
		return &q->stats.cwnd_limited_ns;
	}
	/* held, and nothing else in the way */
	if (q->holds && !q->watermark && bpq_fits(q, len))
		return &q->stats.held_ns;
	return &q->stats.blocked_ns;
}

static int bpq_wait_writer(struct bpq_queue *q, struct bpq_writer *w,
			   u32 flags, u32 timeout_ms, struct bpq_defer *df)
{
	u64 *clock = bpq_wait_clock(q, w->len);
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
			   !q->pressure && bpq_fits(q, w->len);
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
 * Queue the messages of @tx's chunk in order from its message @from, each
 * waiting as the strategy says, under one hold of the lock but while
 * waiting. A small message is copied into its record here, with page
 * faults off; a large one, or one whose writer waited, is left reserved
 * for the caller to copy in without the lock and bpq_commit()
 * (tx->stall is BPQ_TX_COPY, and tx->pending the record). A message
 * whose pages are not at hand (BPQ_TX_PAGES), or whose payload's page is
 * not there (BPQ_TX_FAULT), stops it for the caller to bring them and
 * come back. Returns how many were queued from @from; *@err is the
 * error that stopped it, or 0.
 */
unsigned int bpq_send_many(struct bpq_file *bf, struct bpq_tx *tx,
			   unsigned int from, int *err)
{
	struct bpq_defer df __bpq_noinit;
	struct bpq_queue *q = bf->q;
	struct bpq_writer w;
	struct bpq_msg *msg;
	unsigned int i;
	int ret = 0;
	bool ok;
	u32 len;
	u64 now;

	bpq_defer_init(&df);
	tx->stall = 0;
	spin_lock(&q->lock);
	now = ktime_get_ns();	/* one timestamp per hold of the lock */
	for (i = from; i < tx->n; i++) {
		len = tx->vecs[i].len;
		if (unlikely(q->dead || q->stream)) {
			ret = q->dead ? -ENODEV : -EPIPE;
			break;
		}
		if (list_empty(&q->writers))
			ret = bpq_try_admit(q, len, &df, now);
		else if (bpq_too_big(q, len))
			ret = -EMSGSIZE;
		else
			ret = BPQ_PENDING; /* a newcomer never overtakes a waiter */
		if (ret == BPQ_PENDING) {
			/* whoever admits it makes its record from its pool */
			tx->pool.need = bpq_log_pages_max(len);
			if (tx->pool.nr < tx->pool.need &&
			    !(tx->flags & BPQ_IO_NONBLOCK)) {
				tx->stall = BPQ_TX_PAGES;
				ret = 0;
				break;
			}
			w = (struct bpq_writer){ .len = len, .pool = &tx->pool };
			ret = bpq_wait_writer(q, &w, tx->flags, tx->timeout_ms,
					      &df);
			if (!ret) {
				tx->pending = w.msg;
				tx->gen = w.gen;
				tx->stall = BPQ_TX_COPY;
			}
			break;
		}
		if (ret)
			break;
		msg = bpq_log_append(q, len, &tx->pool);
		if (!msg) {
			tx->stall = BPQ_TX_PAGES;
			break;
		}
		if (len > BPQ_COPY_LOCKED_MAX) {
			bpq_msg_mark(msg, BPQ_MSG_RESERVED, 0);
			bpq_enqueue(q, msg, &df, now);
			tx->pending = msg;
			tx->gen = q->log_gen;
			tx->stall = BPQ_TX_COPY;
			break;
		}
		pagefault_disable();
		ok = bpq_msg_copy_in(msg, len, bpq_tx_iter(tx, i));
		pagefault_enable();
		if (!ok) {
			bpq_log_unappend(q, msg, &tx->pool);
			tx->stall = BPQ_TX_FAULT;
			break;
		}
		bpq_enqueue(q, msg, &df, now);
	}
	bpq_unlock(q, &df);
	*err = ret;
	return i - from;
}

/*
 * @msg, reserved, leaves unseen: those after it, which no reader has seen
 * either (readers wait for it), take their sequence numbers one down.
 */
static void bpq_renumber(struct bpq_queue *q, struct bpq_msg *msg)
{
	while ((msg = bpq_log_next(q, msg)))
		msg->seq--;
	q->next_seq--;
}

/*
 * The writer of tx->pending, reserved by bpq_send_many(), has @copied its
 * payload in, or met a fault: the message is there for readers, or
 * leaves as if it never came, and the messages it held back are there.
 * One that left the queue meanwhile (evicted, flushed) is let go: its
 * write is done if it was copied in, else BPQ_GONE (not to try again).
 * Returns 0, -EFAULT (try again once the page is in) or BPQ_GONE.
 */
int bpq_commit(struct bpq_file *bf, struct bpq_tx *tx, bool copied)
{
	struct bpq_msg *msg = tx->pending;
	struct bpq_defer df __bpq_noinit;
	struct bpq_queue *q = bf->q;
	u32 len = bpq_msg_len(msg), depth;
	int ret;

	bpq_defer_init(&df);
	tx->pending = NULL;
	spin_lock(&q->lock);
	/* queued, and left unseen: done, unless its copy faulted */
	if (bpq_pin_gone(q, msg, tx->gen, &df)) {
		ret = copied ? 0 : BPQ_GONE;
		goto out;
	}
	ret = copied ? 0 : -EFAULT;
	q->pins--;
	q->reserved--;
	if (!copied) {
		bpq_renumber(q, msg);
		bpq_msg_mark(msg, BPQ_MSG_DEAD, BPQ_MSG_RESERVED);
		q->depth_msgs--;
		q->depth_bytes -= len;
		if (READ_ONCE(metrics)) {
			q->stats.enqueued_msgs--;
			q->stats.enqueued_bytes -= len;
		}
		if (q->cfg.strategy == BPQ_STRATEGY_CREDIT &&
		    q->credits < U64_MAX)
			q->credits++;
		bpq_log_trim(q, &df);
		bpq_room_made(q, &df);
	} else {
		bpq_msg_mark(msg, 0, BPQ_MSG_RESERVED);
	}
	/* it, or what it held back, is there for readers */
	if (q->ring) {
		depth = q->depth_msgs;
		bpq_ring_fill(q, &df);
		if (q->depth_msgs != depth)
			bpq_room_made(q, &df);
	}
	bpq_publish(q, &df);
out:
	bpq_unlock(q, &df);
	return ret;
}

struct bpq_delivery bpq_delivery_start(struct bpq_queue *q)
{
	struct bpq_delivery d = { .metrics = READ_ONCE(metrics) };

	if (d.metrics || q->cfg.strategy == BPQ_STRATEGY_ADAPTIVE ||
	    q->cfg.strategy == BPQ_STRATEGY_WINDOW)
		d.now = ktime_get_ns();
	return d;
}

static void bpq_account_delivery(struct bpq_queue *q, u32 len, u64 tstamp,
				 const struct bpq_delivery *d)
{
	q->unacked++;
	if (d->metrics) {
		q->stats.dequeued_msgs++;
		q->stats.dequeued_bytes += len;
		q->stats.latency_hist[bpq_latency_bucket(d->now - tstamp)]++;
		q->tp_count++;
	}
	switch (q->cfg.strategy) {
	case BPQ_STRATEGY_ADAPTIVE:
		bpq_adaptive_delivered(q);
		bpq_adaptive_tick(q, d->now);
		break;
	case BPQ_STRATEGY_WINDOW:
		bpq_window_delivered(q, tstamp, d->now);
		break;
	case BPQ_STRATEGY_CREDIT:
		if (q->cfg.auto_credit == BPQ_AUTO_CREDIT_DELIVERY &&
		    q->credits < U64_MAX)
			q->credits++;
		break;
	}
}

/*
 * @msg reached its reader: it leaves the queue, counted in @d (from
 * bpq_delivery_start(), once per hold of the lock), and goes back to the
 * message store.
 */
void bpq_deliver(struct bpq_queue *q, struct bpq_msg *msg,
		 const struct bpq_delivery *d, struct bpq_defer *df)
{
	u32 len = bpq_msg_len(msg);

	lockdep_assert_held(&q->lock);
	if (bpq_msg_flags(msg) & BPQ_MSG_INFLIGHT) {
		q->inflight--;
		q->pins--;
	}
	msg->info = len | BPQ_MSG_DEAD;
	if (unlikely(msg == q->part))
		q->part = NULL;
	q->depth_msgs--;
	q->depth_bytes -= len;
	bpq_account_delivery(q, len, msg->tstamp, d);
	bpq_log_trim(q, df);
}

/*
 * Deliveries (or a change of settings) made room: pressure may end,
 * an ended stream may have drained (bpq_stream_check()), waiting
 * writers go in, and pollers hear EPOLLOUT.
 */
void bpq_room_made(struct bpq_queue *q, struct bpq_defer *df)
{
	bpq_update_pressure(q, df);
	if (unlikely(q->stream))
		bpq_stream_check(q, df);
	bpq_admit_writers(q, df);
	bpq_wake_pollers(q, df, EPOLLOUT | EPOLLWRNORM);
}

/* @msgs messages of @bytes in all, queued and delivered at once: a ring's */
void bpq_account_direct(struct bpq_queue *q, u32 msgs, u64 bytes)
{
	lockdep_assert_held(&q->lock);
	q->unacked += msgs;
	if (!READ_ONCE(metrics))
		return;
	q->stats.enqueued_msgs += msgs;
	q->stats.enqueued_bytes += bytes;
	q->stats.dequeued_msgs += msgs;
	q->stats.dequeued_bytes += bytes;
	q->stats.latency_hist[0] += msgs;	/* a sojourn of 0 */
	q->tp_count += msgs;
}

/* Settle every waiting writer with @result; woken after the unlock. */
void bpq_settle_writers(struct bpq_queue *q, int result, struct bpq_defer *df)
{
	struct bpq_writer *w, *wt;

	lockdep_assert_held(&q->lock);
	list_for_each_entry_safe(w, wt, &q->writers, node) {
		list_del_init(&w->node);
		w->result = result;
		bpq_defer_wake(q, df, w->task);
	}
}

/* Settle every waiting reader with @result: nothing handed over. */
void bpq_settle_readers(struct bpq_queue *q, int result, struct bpq_defer *df)
{
	struct bpq_reader *r, *rt;

	lockdep_assert_held(&q->lock);
	list_for_each_entry_safe(r, rt, &q->readers, node) {
		list_del_init(&r->node);
		r->result = result;
		bpq_defer_wake(q, df, r->task);
	}
}

/*
 * Wake everyone after q->dead was set: settle every waiter with ENODEV.
 * The ring's syncer is woken under the lock: q->ring holds no reference.
 */
void bpq_queue_kill(struct bpq_queue *q)
{
	struct bpq_defer df __bpq_noinit;

	bpq_defer_init(&df);
	spin_lock(&q->lock);
	/* read without the lock by __bpq_set_config() and the getters */
	WRITE_ONCE(q->dead, true);
	bpq_settle_writers(q, -ENODEV, &df);
	bpq_settle_readers(q, -ENODEV, &df);
	if (q->ring)
		wake_up_interruptible_all(&q->ring->wait);
	bpq_stall_tick(q);	/* nobody waits now */
	spin_unlock(&q->lock);
	bpq_defer_flush(q, &df);
	bpq_notify_exit(q);
	/* no poll arms it again: it sees the queue dead first */
	hrtimer_cancel(&q->poll_timer);
	wake_up_interruptible_poll(&q->poll_wait, EPOLLERR | EPOLLHUP);
	kill_fasync(&q->fasync, SIGIO, POLL_HUP);
}

/*
 * What poll reports, read under q->lock and nothing changed, as
 * eventfd_poll() does: the ring is filled by the writers and by
 * BPQ_IOC_RING_SYNC, the adaptive controller and its timer move where
 * messages come and go (bpq_try_admit(), bpq_pace_pollers()).
 */
/*
 * EPOLLIN: a message no reader is copying out; on a ring's file, a record
 * to take, or messages that wait for the room a BPQ_IOC_RING_SYNC would
 * give them; on the other files of a queue with a ring, never.
 */
static bool bpq_readable(struct bpq_queue *q, struct bpq_file *bf)
{
	if (!q->ring)
		return bpq_first_avail(q);
	return bf->ring == q->ring &&
	       (q->ring->tail != bpq_ring_head(q->ring) || q->depth_msgs);
}

/*
 * An ended stream: its readers hear EPOLLRDHUP, and once it has drained
 * EPOLLHUP, with EPOLLIN as a read then returns at once; its writers
 * EPOLLERR if the consumer cancelled (EPOLLOUT: bpq_writable()).
 */
static __poll_t bpq_stream_poll(struct bpq_queue *q, struct bpq_file *bf)
{
	__poll_t mask = 0;

	if (bf->mode & FMODE_READ) {
		mask |= EPOLLRDHUP;
		if (bpq_stream_drained(q))
			mask |= EPOLLIN | EPOLLRDNORM | EPOLLHUP;
	}
	if ((bf->mode & FMODE_WRITE) && q->stream == BPQ_STREAM_CANCELLED)
		mask |= EPOLLERR;
	return mask;
}

__poll_t bpq_poll_mask(struct bpq_queue *q, struct bpq_file *bf)
{
	__poll_t mask = 0;
	bool trigger;

	spin_lock(&q->lock);
	if (q->dead) {
		mask = EPOLLERR | EPOLLHUP;
	} else {
		if (bpq_readable(q, bf))
			mask |= EPOLLIN | EPOLLRDNORM;
		if (bpq_writable(q))
			mask |= EPOLLOUT | EPOLLWRNORM;
		if (bpq_trigger_poll(bf, &trigger) || (!trigger && q->pressure))
			mask |= EPOLLPRI;
		if (q->stream)
			mask |= bpq_stream_poll(q, bf);
	}
	spin_unlock(&q->lock);
	return mask;
}
