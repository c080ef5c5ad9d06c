// SPDX-License-Identifier: GPL-2.0
/*
 * The adaptive strategy: admission paced by a token bucket whose rate
 * follows the queue's sojourn time towards target_latency_us.
 *
 * Controller, evaluated once per adjust_interval_ms (lazily, on the next
 * enqueue, delivery or admission check, so an idle queue costs nothing and
 * no timer has to be stopped on destroy). By Little's law a queue that
 * serves S msgs/s holds its sojourn at the target when it admits S msgs/s
 * and its backlog is target * S; so the new rate is the service rate
 * measured over the interval, times a factor that pulls the sojourn
 * towards the target:
 *
 *	rate = served * (1 + (target - sojourn) / (4 * target))
 *
 * with the factor kept within 3/4 ... 5/4: a multiplicative decrease while
 * the sojourn is above the target, an increase while below. served is a
 * moving average (weight 1/2 per interval), as single intervals are noisy.
 *  - sojourn is the mean over the interval's deliveries; with none, the
 *    age of the oldest queued message (a stalled consumer), or 0 when
 *    empty;
 *  - a rate is raised only when a writer had to wait for a token in the
 *    interval: a rate the writers do not use is not raised (as TCP
 *    validates an idle window);
 *  - always within min_rate ... max_rate; a queue enters adaptive at
 *    min_rate, and each interval may raise it by a quarter (slow start).
 *
 * Multiplying the current rate by fixed steps (9/10 above, 11/10 below,
 * from the CoDel pattern) was tried first: the queue swung between empty
 * and several times the target, as each step overshoots before the
 * sojourn shows it. Anchoring on the measured service rate removes the
 * swing.
 *
 * The bucket is a GCRA: a message conforms when now >= tat - tau, where tat
 * is the theoretical arrival time of the next message and tau lets a burst
 * through back to back: BPQ_ADAPTIVE_BURST messages, or BPQ_ADAPTIVE_BURST_NS
 * worth of the rate if that is more, so that a writer woken a little late
 * still reaches the rate.
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
	ad->served = 0;
	ad->tat = now;
	ad->interval_start = now;
	ad->deliveries = 0;
	ad->sojourn_sum = 0;
	ad->limited = false;
}

void bpq_adaptive_clamp(struct bpq_queue *q)
{
	q->ad.rate = clamp_t(u64, q->ad.rate, q->cfg.min_rate,
			     q->cfg.max_rate);
}

static u64 bpq_head_age(struct bpq_queue *q, u64 now)
{
	struct bpq_msg *head;

	head = list_first_entry_or_null(&q->msgs, struct bpq_msg, node);
	return head ? now - head->tstamp : 0;
}

void bpq_adaptive_tick(struct bpq_queue *q, u64 now)
{
	struct bpq_adaptive *ad = &q->ad;
	u64 elapsed = now - ad->interval_start;
	u64 target = (u64)q->cfg.target_latency_us * NSEC_PER_USEC;
	u64 sojourn, served, rate;
	s64 err;

	if (elapsed < (u64)q->cfg.adjust_interval_ms * NSEC_PER_MSEC)
		return;
	sojourn = ad->deliveries ? div64_u64(ad->sojourn_sum, ad->deliveries) :
				   bpq_head_age(q, now);
	served = mul_u64_u64_div_u64(ad->deliveries, NSEC_PER_SEC, elapsed);
	ad->served = (ad->served + served) / 2;
	/* factor = 1 + err / 1024, err in -256 ... 256 */
	sojourn = min(sojourn, 2 * target);
	err = div64_s64(((s64)target - (s64)sojourn) * 256, target);
	rate = div_u64(ad->served * (1024 + err), 1024) + 1;
	if (rate < ad->rate || ad->limited)
		ad->rate = rate;
	bpq_adaptive_clamp(q);
	ad->interval_start = now;
	ad->deliveries = 0;
	ad->sojourn_sum = 0;
	ad->limited = false;
}

/* When the next message may be admitted, in ktime_get_ns() time. */
u64 bpq_adaptive_ready_at(struct bpq_queue *q)
{
	u64 interval = bpq_interval_ns(&q->ad);
	u64 tau = (BPQ_ADAPTIVE_BURST - 1) * interval;

	if (interval < BPQ_ADAPTIVE_BURST_NS)
		tau = max(tau, BPQ_ADAPTIVE_BURST_NS - interval);

	return q->ad.tat > tau ? q->ad.tat - tau : 0;
}

void bpq_adaptive_admit(struct bpq_queue *q, u64 now)
{
	q->ad.tat = max(q->ad.tat, now) + bpq_interval_ns(&q->ad);
}

void bpq_adaptive_delivered(struct bpq_queue *q, u64 sojourn)
{
	q->ad.deliveries++;
	q->ad.sojourn_sum += sojourn;
}
