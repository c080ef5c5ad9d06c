// SPDX-License-Identifier: GPL-2.0
/*
 * Acknowledgments and the window strategy.
 *
 * A reader acknowledges the messages it has processed (BPQ_IOC_ACK),
 * the oldest delivered first; the queue counts what was delivered and
 * not yet acknowledged (q->unacked). An acknowledgment may bring the
 * enqueue time of one of its messages, for the processing histogram, and
 * may say the reader is congested (a NACK).
 *
 * The window strategy admits as block does, and keeps the messages in
 * flight (queued, and delivered but unacknowledged unless ack_mode is
 * delivery) below cwnd, a congestion window moved as Linux's TCP Reno
 * moves its own (net/ipv4/tcp_cong.c):
 *  - below ssthresh (slow start) cwnd grows by one per acknowledged
 *    message, up to ssthresh, the rest of the acknowledgment going to
 *  - congestion avoidance, where cwnd grows by one per cwnd messages
 *    acknowledged (cnt counts them, as snd_cwnd_cnt);
 *  - only while the window was the limit: a writer had to wait for it
 *    in the current round (a window's worth of acknowledgments), as
 *    tcp_is_cwnd_limited() keeps an application-limited sender's window;
 *  - a congestion signal (a NACK, or a delivery whose sojourn was above
 *    target_latency_us) sets ssthresh = max(cwnd / 2, 2) and cwnd =
 *    ssthresh, once per window: until a window's worth of messages more
 *    is acknowledged (recovery), further signals do nothing;
 *  - ack_timeout_ms with messages in flight and no acknowledgment sets
 *    cwnd = min_cwnd and slow start again, with ssthresh halved as
 *    TCP's timeout does (but above min_cwnd).
 * With ack_mode delivery a delivery counts as the acknowledgment of its
 * message. The timeout is seen lazily, where the queue is used (an
 * admission, an acknowledgment, a stats snapshot): it admits no one, so
 * no timer need wake anybody for it.
 */
#include <linux/ktime.h>
#include <linux/minmax.h>

#include "bpq.h"

/* Messages in flight, as the window counts them */
u64 bpq_window_inflight(const struct bpq_queue *q)
{
	if (q->cfg.ack_mode == BPQ_ACK_MODE_DELIVERY)
		return q->depth_msgs;
	return q->depth_msgs + q->unacked;
}

/*
 * A queue turns to the window strategy: the window starts from its
 * settings, and the flight from what is queued alone: deliveries no one
 * acknowledged before (nobody had to) would hold writers back for good;
 * their late acknowledgments count as stale.
 */
void bpq_window_start(struct bpq_queue *q, u64 now)
{
	struct bpq_window *win = &q->win;

	q->unacked = 0;
	win->cwnd = q->cfg.initial_cwnd;
	win->ssthresh = q->cfg.initial_ssthresh;
	win->cnt = 0;
	win->limited = false;
	win->round_end = win->acked + win->cwnd;
	win->recover_end = win->acked;
	win->last_ack = now;
}

/* After a change of settings: the window within them */
void bpq_window_clamp(struct bpq_queue *q)
{
	struct bpq_window *win = &q->win;

	win->cwnd = clamp(win->cwnd, q->cfg.min_cwnd, q->cfg.max_cwnd);
}

u32 bpq_window_state(const struct bpq_queue *q)
{
	const struct bpq_window *win = &q->win;

	if (win->acked < win->recover_end)
		return BPQ_WINDOW_RECOVERY;
	if (win->cwnd < win->ssthresh)
		return BPQ_WINDOW_SLOW_START;
	return BPQ_WINDOW_AVOIDANCE;
}

/* A writer waits for the window: growth is earned this round. */
void bpq_window_limited(struct bpq_queue *q)
{
	q->win.limited = true;
}

/* A congestion signal: halve, once per window. */
static void bpq_window_congestion(struct bpq_queue *q)
{
	struct bpq_window *win = &q->win;

	if (win->acked < win->recover_end)
		return;
	win->ssthresh = max(win->cwnd / 2, 2U);
	win->cwnd = clamp(win->ssthresh, q->cfg.min_cwnd, q->cfg.max_cwnd);
	win->cnt = 0;
	win->recover_end = win->acked + win->cwnd;
	q->stats.congestion_events++;
}

/*
 * Slow start: +1 per acknowledged message up to ssthresh. Returns the
 * acknowledgments left over for congestion avoidance.
 */
static u32 bpq_window_slow_start(struct bpq_window *win, u32 acked)
{
	u32 cwnd = min(win->cwnd + acked, win->ssthresh);

	acked -= cwnd - win->cwnd;
	win->cwnd = cwnd;
	return acked;
}

/* Congestion avoidance: +1 per @w acknowledged messages. */
static void bpq_window_avoid(struct bpq_window *win, u32 w, u32 acked)
{
	/* counted at a larger window before: let it go gently */
	if (win->cnt >= w) {
		win->cnt = 0;
		win->cwnd++;
	}
	win->cnt += acked;
	if (win->cnt >= w) {
		u32 delta = win->cnt / w;

		win->cnt -= delta * w;
		win->cwnd += delta;
	}
}

/* @acked messages left the flight: grow the window if it was the limit. */
static void bpq_window_grow(struct bpq_queue *q, u32 acked)
{
	struct bpq_window *win = &q->win;

	win->acked += acked;
	if (win->limited && win->acked >= win->recover_end) {
		if (win->cwnd < win->ssthresh)
			acked = bpq_window_slow_start(win, acked);
		if (acked)
			bpq_window_avoid(win, win->cwnd, acked);
		win->cwnd = min(win->cwnd, q->cfg.max_cwnd);
	}
	if (win->acked >= win->round_end) {
		/* a new round: earned again, unless writers wait now */
		win->round_end = win->acked + win->cwnd;
		win->limited = !list_empty(&q->writers);
	}
}

/*
 * The ack timeout, seen lazily at @now: messages in flight and no
 * acknowledgment for ack_timeout_ms. An idle queue restarts the clock.
 */
void bpq_window_tick(struct bpq_queue *q, u64 now)
{
	struct bpq_window *win = &q->win;
	u32 timeout = q->cfg.ack_timeout_ms;

	lockdep_assert_held(&q->lock);
	if (!bpq_window_inflight(q)) {
		win->last_ack = now;
		return;
	}
	if (!timeout || now - win->last_ack < (u64)timeout * NSEC_PER_MSEC)
		return;
	win->ssthresh = min(max3(win->cwnd / 2, 2U, q->cfg.min_cwnd + 1),
			    q->cfg.max_cwnd);
	win->cwnd = q->cfg.min_cwnd;
	win->cnt = 0;
	win->recover_end = win->acked;
	win->last_ack = now;
	q->stats.ack_timeouts++;
}

/*
 * A delivery at @now, for the window: its sojourn (@now - @tstamp) may be
 * a congestion signal; with ack_mode delivery it is the acknowledgment
 * too.
 */
void bpq_window_delivered(struct bpq_queue *q, u64 tstamp, u64 now)
{
	if (now - tstamp > (u64)q->cfg.target_latency_us * NSEC_PER_USEC)
		bpq_window_congestion(q);
	if (q->cfg.ack_mode == BPQ_ACK_MODE_DELIVERY) {
		q->win.last_ack = now;
		bpq_window_grow(q, 1);
	}
}

/* BPQ_IOC_ACK: see struct bpq_ack. */
int bpq_ack(struct bpq_queue *q, u32 flags, u32 count, u64 tstamp)
{
	struct bpq_defer df __bpq_noinit;
	u64 now = ktime_get_ns();
	bool window;
	u32 n;

	if (flags & ~(BPQ_ACK_NACK | BPQ_ACK_TIMESTAMP) || !count)
		return -EINVAL;
	if (flags & BPQ_ACK_TIMESTAMP ? !tstamp || tstamp > now : tstamp)
		return -EINVAL;
	bpq_defer_init(&df);
	spin_lock(&q->lock);
	if (q->dead) {
		bpq_unlock(q, &df);
		return -ENODEV;
	}
	n = min_t(u64, count, q->unacked);
	q->unacked -= n;
	q->stats.acked_msgs += n;
	q->stats.stale_acks += count - n;
	if (flags & BPQ_ACK_TIMESTAMP)
		q->stats.processing_hist[bpq_latency_bucket(now - tstamp)]++;
	if (flags & BPQ_ACK_NACK)
		q->stats.nacked++;
	window = q->cfg.strategy == BPQ_STRATEGY_WINDOW;
	if (window) {
		bpq_window_tick(q, now);
		if (n)
			q->win.last_ack = now;
		if (flags & BPQ_ACK_NACK)
			bpq_window_congestion(q);
		if (n && q->cfg.ack_mode == BPQ_ACK_MODE_ACK)
			bpq_window_grow(q, n);
	}
	if (q->cfg.strategy == BPQ_STRATEGY_CREDIT &&
	    q->cfg.auto_credit == BPQ_AUTO_CREDIT_ACK &&
	    q->stream != BPQ_STREAM_CANCELLED)
		q->credits = q->credits + n < q->credits ? U64_MAX :
			     q->credits + n;
	/* the window, or the credits, may let writers in */
	if (n && (window || q->cfg.strategy == BPQ_STRATEGY_CREDIT))
		bpq_room_made(q, &df);
	bpq_unlock(q, &df);
	return n;
}
