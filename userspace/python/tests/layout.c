// SPDX-License-Identifier: MIT
/*
 * The layout of the C structures that bpq/_lib.py mirrors with ctypes, as
 * this machine's compiler lays them out: "STRUCT FIELD OFFSET" for every
 * field, then "STRUCT sizeof SIZE". Built and compared by test_layout.py.
 */
#include <stddef.h>
#include <stdio.h>

#include "bpq.h"

#define FIELD(s, f) printf("%s %s %zu\n", #s, #f, offsetof(struct s, f))
#define SIZE(s) printf("%s sizeof %zu\n", #s, sizeof(struct s))

static void config(void)
{
	FIELD(bpq_config, size);
	FIELD(bpq_config, flags);
	FIELD(bpq_config, strategy);
	FIELD(bpq_config, capacity_msgs);
	FIELD(bpq_config, capacity_bytes);
	FIELD(bpq_config, max_msg_size);
	FIELD(bpq_config, high_watermark);
	FIELD(bpq_config, low_watermark);
	FIELD(bpq_config, write_timeout_ms);
	FIELD(bpq_config, auto_credit);
	FIELD(bpq_config, target_latency_us);
	FIELD(bpq_config, min_rate);
	FIELD(bpq_config, max_rate);
	FIELD(bpq_config, adjust_interval_ms);
	FIELD(bpq_config, __reserved);
	FIELD(bpq_config, hangup);
	FIELD(bpq_config, ack_mode);
	FIELD(bpq_config, initial_cwnd);
	FIELD(bpq_config, min_cwnd);
	FIELD(bpq_config, max_cwnd);
	FIELD(bpq_config, initial_ssthresh);
	FIELD(bpq_config, ack_timeout_ms);
	FIELD(bpq_config, read_mode);
	FIELD(bpq_config, increase_pct);
	FIELD(bpq_config, decrease_pct);
	SIZE(bpq_config);
}

static void stats(void)
{
	FIELD(bpq_stats, size);
	FIELD(bpq_stats, flags);
	FIELD(bpq_stats, depth_msgs);
	FIELD(bpq_stats, depth_bytes);
	FIELD(bpq_stats, credits_available);
	FIELD(bpq_stats, utilization);
	FIELD(bpq_stats, pressure);
	FIELD(bpq_stats, rate);
	FIELD(bpq_stats, throughput);
	FIELD(bpq_stats, enqueued_msgs);
	FIELD(bpq_stats, enqueued_bytes);
	FIELD(bpq_stats, dequeued_msgs);
	FIELD(bpq_stats, dequeued_bytes);
	FIELD(bpq_stats, dropped_newest);
	FIELD(bpq_stats, dropped_oldest);
	FIELD(bpq_stats, flushed);
	FIELD(bpq_stats, backpressure_applied);
	FIELD(bpq_stats, blocked_ns);
	FIELD(bpq_stats, throttled_ns);
	FIELD(bpq_stats, timeouts);
	FIELD(bpq_stats, credit_starvation);
	FIELD(bpq_stats, credit_starved_ns);
	FIELD(bpq_stats, latency_hist);
	FIELD(bpq_stats, stream);
	FIELD(bpq_stats, stream_error);
	FIELD(bpq_stats, stream_epoch);
	FIELD(bpq_stats, readers);
	FIELD(bpq_stats, writers);
	FIELD(bpq_stats, unacked);
	FIELD(bpq_stats, acked_msgs);
	FIELD(bpq_stats, nacked);
	FIELD(bpq_stats, stale_acks);
	FIELD(bpq_stats, cwnd);
	FIELD(bpq_stats, ssthresh);
	FIELD(bpq_stats, inflight);
	FIELD(bpq_stats, window_state);
	FIELD(bpq_stats, __pad);
	FIELD(bpq_stats, congestion_events);
	FIELD(bpq_stats, ack_timeouts);
	FIELD(bpq_stats, cwnd_limited_ns);
	FIELD(bpq_stats, processing_hist);
	FIELD(bpq_stats, partial_reads);
	FIELD(bpq_stats, holds);
	FIELD(bpq_stats, watermark);
	FIELD(bpq_stats, held_ns);
	FIELD(bpq_stats, head_age_us);
	FIELD(bpq_stats, writers_waiting);
	FIELD(bpq_stats, __pad3);
	FIELD(bpq_stats, stall_some_us);
	FIELD(bpq_stats, stall_full_us);
	SIZE(bpq_stats);
}

int main(void)
{
	config();
	stats();

	FIELD(bpq_msg_info, seq);
	FIELD(bpq_msg_info, timestamp_ns);
	FIELD(bpq_msg_info, lost);
	FIELD(bpq_msg_info, len);
	FIELD(bpq_msg_info, offset);
	SIZE(bpq_msg_info);

	FIELD(bpq_ring, fd);
	FIELD(bpq_ring, ctl);
	FIELD(bpq_ring, data);
	FIELD(bpq_ring, mask);
	FIELD(bpq_ring, head);
	FIELD(bpq_ring, map_len);
	SIZE(bpq_ring);

	FIELD(iovec, iov_base);
	FIELD(iovec, iov_len);
	SIZE(iovec);
	return 0;
}
