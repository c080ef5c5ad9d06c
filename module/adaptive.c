// SPDX-License-Identifier: GPL-2.0
/*
 * The adaptive strategy: admission paced by a token bucket whose rate
 * follows the queue's sojourn time towards target_latency_us.
 *
 * Controller, evaluated once per adjust_interval_ms (lazily, on the next
 * enqueue, delivery or admission check, so an idle queue costs nothing and
 * no timer has to be stopped on destroy):
 *  - the interval's sojourn is that of its last delivery, so a burst that
 *    drained within the interval is not punished (CoDel's minimum serves
 *    the same end but sees a growing standing queue only when it is large,
 *    which made the rate swing to 2.5x the service rate and back in
 *    testing); with no delivery, the age of the oldest queued message, or
 *    0 for an empty queue;
 *  - above the target: rate = min(rate * 9/10, dequeue rate measured over
 *    the interval), so a standing queue drains within an interval or two
 *    even when the consumer slowed down sharply;
 *  - at or below the target: rate = rate * 11/10 + 1, but only when a
 *    writer had to wait for a token in the interval: a rate the writers
 *    do not use is not raised (as TCP validates an idle window);
 *  - always within min_rate ... max_rate. A queue enters adaptive at
 *    min_rate and works its way up (slow start).
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
	ad->tat = now;
	ad->interval_start = now;
	ad->deliveries = 0;
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
	u64 sojourn, served;

	if (elapsed < (u64)q->cfg.adjust_interval_ms * NSEC_PER_MSEC)
		return;
	sojourn = ad->deliveries ? ad->last_sojourn : bpq_head_age(q, now);
	if (sojourn > target) {
		served = div64_u64(ad->deliveries * NSEC_PER_SEC, elapsed);
		ad->rate = min(div_u64(ad->rate * 9, 10), served);
	} else if (ad->limited) {
		ad->rate = div_u64(ad->rate * 11, 10) + 1;
	}
	bpq_adaptive_clamp(q);
	ad->interval_start = now;
	ad->deliveries = 0;
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
	q->ad.last_sojourn = sojourn;
}
