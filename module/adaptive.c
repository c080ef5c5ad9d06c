// SPDX-License-Identifier: GPL-2.0
/*
 * The adaptive strategy: admission paced by a token bucket whose rate
 * follows the queue's sojourn time towards target_latency_us.
 *
 * Controller, evaluated once per adjust_interval_ms (lazily, on the next
 * enqueue, delivery or admission check, so an idle queue costs nothing and
 * no timer has to be stopped on destroy). By Little's law the sojourn time
 * of a queue is its backlog over its service rate, and a queue admitting
 * what it serves keeps its backlog. So with S the delivery rate measured
 * over the interval and D the depth at its end:
 *
 *	sojourn = D / S
 *	rate = S * (1 + (target - sojourn) / (2 * interval))
 *
 * the factor kept within 1 - decrease_pct/100 ... 1 + increase_pct/100
 * (1/2 ... 3/2 by default): a multiplicative decrease while the
 * sojourn is above the target, an increase while below, proportional to
 * the error, so that the backlog closes half its distance to target * S
 * per interval.
 *  - the sojourn is estimated from the backlog rather than measured at
 *    delivery, where it lags by the sojourn itself; with no delivery in
 *    the interval the consumer has stalled or the queue is idle: a queue
 *    whose oldest message is older than the target drops to min_rate, an
 *    idle one keeps its rate;
 *  - a queue that ran empty in the interval (a reader found nothing) was
 *    served as fast as it was fed, so S is the admitted rate and says
 *    nothing of the consumer's speed: below the target such a rate is
 *    raised by at least a quarter per interval, or by increase_pct if
 *    that is less (probing, as slow start does), and the overshoot
 *    shows up as backlog the next interval;
 *  - a rate is raised only when a writer had to wait for a token in the
 *    interval and writers were admitted at 7/8 of the rate or more: a
 *    rate the writers do not use, or cannot reach because they are
 *    scheduled late, is not raised (as TCP validates its window);
 *  - always within min_rate ... max_rate; a queue enters adaptive at
 *    min_rate and works its way up.
 *
 * Fixed steps on the rate (9/10 above the target, 11/10 below, as in the
 * CoDel pattern) and steps driven by the sojourn measured at delivery were
 * tried first: both let the backlog swing between empty and several times
 * the target.
 *
 * The bucket is a GCRA: a message conforms when now >= tat - tau, where tat
 * is the theoretical arrival time of the next message and tau lets a burst
 * through back to back: BPQ_ADAPTIVE_BURST messages, or the rate's worth of
 * BPQ_ADAPTIVE_BURST_NS or of half the target if that is more, so that a
 * writer woken late still reaches the rate, while a burst adds at most half
 * the target to the sojourn.
 */
#include <linux/math64.h>

#include "bpq.h"

#define BPQ_ADAPTIVE_BURST	4
#define BPQ_ADAPTIVE_BURST_NS	(5 * NSEC_PER_MSEC)

static u64 bpq_interval_ns(const struct bpq_adaptive *ad)
{
	return div64_u64(NSEC_PER_SEC, ad->rate);
}

void bpq_adaptive_start(struct bpq_queue *q, u64 now)
{
	struct bpq_adaptive *ad = &q->ad;

	ad->rate = q->cfg.min_rate;
	ad->tat = now;
	ad->interval_start = now;
	ad->deliveries = 0;
	ad->admitted = 0;
	ad->limited = false;
	ad->starved = false;
}

void bpq_adaptive_clamp(struct bpq_queue *q)
{
	lockdep_assert_held(&q->lock);
	q->ad.rate = clamp_t(u64, q->ad.rate, q->cfg.min_rate,
			     q->cfg.max_rate);
}

u64 bpq_head_age(struct bpq_queue *q, u64 now)
{
	struct bpq_msg *head;

	/* a message may be stamped after @now was read */
	head = bpq_first_queued(q);
	return head && now > head->tstamp ? now - head->tstamp : 0;
}

void bpq_adaptive_tick(struct bpq_queue *q, u64 now)
{
	struct bpq_adaptive *ad = &q->ad;
	u64 elapsed = now - ad->interval_start;
	u64 interval = (u64)q->cfg.adjust_interval_ms * NSEC_PER_MSEC;
	u64 target = (u64)q->cfg.target_latency_us * NSEC_PER_USEC;
	u64 served, admitted, sojourn, rate = ad->rate;
	s64 err;

	lockdep_assert_held(&q->lock);
	if (elapsed < interval)
		return;
	served = mul_u64_u64_div_u64(ad->deliveries, NSEC_PER_SEC, elapsed);
	admitted = mul_u64_u64_div_u64(ad->admitted, NSEC_PER_SEC, elapsed);
	if (served) {
		sojourn = mul_u64_u64_div_u64(q->depth_msgs, NSEC_PER_SEC,
					      served);
		sojourn = min(sojourn, target + interval);
		/* factor = 1 + err / 1024, within the configured steps */
		err = div64_s64(((s64)target - (s64)sojourn) * 512,
				(s64)interval);
		err = clamp_t(s64, err, -(s64)q->cfg.decrease_pct * 1024 / 100,
			      (s64)q->cfg.increase_pct * 1024 / 100);
		rate = div_u64(served * (1024 + err), 1024) + 1;
		/* the consumer waited: S is what we let in, not its speed */
		if (ad->starved && sojourn < target)
			rate = max(rate, ad->rate + div_u64(ad->rate *
				   min(q->cfg.increase_pct, 25U), 100));
	} else if (bpq_head_age(q, now) > target) {
		rate = 0;
	}
	/* raise only a rate the writers wanted and reached (7/8 of it) */
	if (rate < ad->rate ||
	    (ad->limited && admitted >= ad->rate - ad->rate / 8))
		ad->rate = rate;
	bpq_adaptive_clamp(q);
	ad->interval_start = now;
	ad->deliveries = 0;
	ad->admitted = 0;
	ad->limited = false;
	ad->starved = false;
}

/* When the next message may be admitted, in ktime_get_ns() time. */
u64 bpq_adaptive_ready_at(struct bpq_queue *q)
{
	u64 interval = bpq_interval_ns(&q->ad);
	u64 tau = (BPQ_ADAPTIVE_BURST - 1) * interval;
	u64 span = max_t(u64, BPQ_ADAPTIVE_BURST_NS,
			 (u64)q->cfg.target_latency_us * NSEC_PER_USEC / 2);

	lockdep_assert_held(&q->lock);
	if (interval < span)
		tau = max(tau, span - interval);

	return q->ad.tat > tau ? q->ad.tat - tau : 0;
}

void bpq_adaptive_admit(struct bpq_queue *q, u64 now)
{
	lockdep_assert_held(&q->lock);
	q->ad.tat = max(q->ad.tat, now) + bpq_interval_ns(&q->ad);
	q->ad.admitted++;
}

void bpq_adaptive_delivered(struct bpq_queue *q)
{
	lockdep_assert_held(&q->lock);
	q->ad.deliveries++;
}
