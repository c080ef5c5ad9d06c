// SPDX-License-Identifier: GPL-2.0
/*
 * pressure_stall: how much of the time a queue's writers are held back,
 * in the format of the files of /proc/pressure/ (PSI). "some": at least
 * one writer waits to be admitted; "full": writers wait while a reader
 * waits on the empty queue, so that nobody makes progress (a credit or a
 * window deadlock). Totals in µs, and PSI's running averages over 10 s,
 * 60 s and 300 s, taken every 2 s period with PSI's decay factors
 * (calc_load()).
 *
 * The state changes only under q->lock, and every hold of the lock that
 * may change it ends in bpq_stall_tick() (bpq_unlock(), bpq_sleep()),
 * which looks at the clock only when it did change. The averages are
 * brought up to date there and when read, period by period: the state was
 * the same since the last tick, so what each period held is known
 * exactly, with no timer, however long nothing happened.
 */
#include <linux/sched/loadavg.h>

#include "bpq.h"

#define BPQ_STALL_PERIOD	(2 * NSEC_PER_SEC)

/* PSI's: 1 / exp(2 s / 10 s, 60 s, 300 s), as FIXED_1 fractions */
static const unsigned long bpq_stall_exp[BPQ_STALL_AVGS] = { 1677, 1981,
							     2034 };

void bpq_stall_init(struct bpq_stall *s, u64 now)
{
	memset(s, 0, sizeof(*s));
	s->since = now;
	s->avg_next = now + BPQ_STALL_PERIOD;
}

/* The totals up to @t, the state as it has been since s->since */
static void bpq_stall_add(struct bpq_stall *s, u64 t)
{
	u64 d = t - s->since;

	if (s->state & BPQ_STALL_SOME)
		s->total[0] += d;
	if (s->state & BPQ_STALL_FULL)
		s->total[1] += d;
	s->since = t;
}

/* Past this many periods, each average is wherever the state takes it. */
#define BPQ_STALL_CATCH_UP	1000

/* Bring totals and averages up to @now. */
static void bpq_stall_advance(struct bpq_stall *s, u64 now)
{
	unsigned long pct;
	unsigned int k, i, n = 0;

	if (now < s->since)
		return;
	while (now >= s->avg_next) {
		if (++n > BPQ_STALL_CATCH_UP) {
			s->avg_next += div64_u64(now - s->avg_next,
						 BPQ_STALL_PERIOD) *
				       BPQ_STALL_PERIOD;
			bpq_stall_add(s, s->avg_next);
			for (k = 0; k < BPQ_STALL_KINDS; k++) {
				pct = s->state & BIT(k) ? 100 * FIXED_1 : 0;
				for (i = 0; i < BPQ_STALL_AVGS; i++)
					s->avg[k][i] = pct;
				s->avg_total[k] = s->total[k];
			}
			s->avg_next += BPQ_STALL_PERIOD;
			continue;
		}
		bpq_stall_add(s, s->avg_next);
		for (k = 0; k < BPQ_STALL_KINDS; k++) {
			pct = div64_u64((s->total[k] - s->avg_total[k]) * 100 *
					FIXED_1, BPQ_STALL_PERIOD);
			s->avg_total[k] = s->total[k];
			for (i = 0; i < BPQ_STALL_AVGS; i++)
				s->avg[k][i] = calc_load(s->avg[k][i],
							 bpq_stall_exp[i], pct);
		}
		s->avg_next += BPQ_STALL_PERIOD;
	}
	bpq_stall_add(s, now);
}

/* Under q->lock, at the end of a hold: writers (and readers) waiting? */
void bpq_stall_tick(struct bpq_queue *q)
{
	u8 state = 0;

	if (!list_empty(&q->writers))
		state = BPQ_STALL_SOME |
			(list_empty(&q->readers) ? 0 : BPQ_STALL_FULL);
	if (likely(state == q->stall.state))
		return;
	bpq_stall_advance(&q->stall, ktime_get_ns());
	q->stall.state = state;
}

/* Under q->lock: the totals up to now, in µs (the stats snapshot) */
void bpq_stall_totals(struct bpq_queue *q, u64 *some_us, u64 *full_us)
{
	bpq_stall_advance(&q->stall, ktime_get_ns());
	*some_us = div_u64(q->stall.total[0], NSEC_PER_USEC);
	*full_us = div_u64(q->stall.total[1], NSEC_PER_USEC);
}

/* Under q->lock: the total of kind @kind (0 some, 1 full) up to @now, ns */
u64 bpq_stall_total(struct bpq_queue *q, unsigned int kind, u64 now)
{
	bpq_stall_advance(&q->stall, now);
	return q->stall.total[kind];
}

/* The sysfs file pressure_stall, as the files of /proc/pressure/ read */
ssize_t bpq_stall_format(struct bpq_queue *q, char *buf)
{
	static const char * const kinds[BPQ_STALL_KINDS] = { "some", "full" };
	struct bpq_stall s;
	unsigned int k;
	int len = 0;

	spin_lock(&q->lock);
	bpq_stall_advance(&q->stall, ktime_get_ns());
	s = q->stall;
	spin_unlock(&q->lock);
	for (k = 0; k < BPQ_STALL_KINDS; k++)
		len += sysfs_emit_at(buf, len,
				     "%s avg10=%lu.%02lu avg60=%lu.%02lu avg300=%lu.%02lu total=%llu\n",
				     kinds[k], LOAD_INT(s.avg[k][0]),
				     LOAD_FRAC(s.avg[k][0]),
				     LOAD_INT(s.avg[k][1]),
				     LOAD_FRAC(s.avg[k][1]),
				     LOAD_INT(s.avg[k][2]),
				     LOAD_FRAC(s.avg[k][2]),
				     div_u64(s.total[k], NSEC_PER_USEC));
	return len;
}
