/* SPDX-License-Identifier: (GPL-2.0 WITH Linux-syscall-note) OR MIT */
/*
 * bpq: bounded message queues with backpressure. bpq(4) describes the
 * devices and every command in full.
 *
 * Every ioctl takes a pointer to a struct that begins with __u32 size, the
 * number of bytes userspace passes; the kernel accepts any size from the
 * first published size up, provided that any bytes it does not know are
 * zero (as copy_struct_from_user()).
 *
 * Errors common to every command:
 *  ENOTTY  the command is unknown to this file.
 *  EFAULT  the argument or a buffer it names is not accessible.
 *  EINVAL  size is below the first published size, flags has an unknown
 *          bit, a reserved field is not zero, or a value is out of range.
 *  E2BIG   size is larger than the kernel's struct and the tail is not zero.
 *  ENODEV  the queue was destroyed.
 */
#ifndef _UAPI_LINUX_BPQ_H
#define _UAPI_LINUX_BPQ_H

#include <linux/ioctl.h>
#include <linux/types.h>

#define BPQ_NAME_MAX		32
#define BPQ_LATENCY_BUCKETS	32

/**
 * enum bpq_strategy - what a writer meets when the queue is under pressure
 * @BPQ_STRATEGY_BLOCK: the writer sleeps until its message fits.
 * @BPQ_STRATEGY_DROP_NEWEST: the new message is discarded (ENOBUFS).
 * @BPQ_STRATEGY_DROP_OLDEST: the oldest messages are evicted.
 * @BPQ_STRATEGY_CREDIT: each message costs one credit granted by a reader.
 * @BPQ_STRATEGY_ADAPTIVE: admission paced towards a sojourn-time target.
 * @BPQ_STRATEGY_WINDOW: as block, and the messages in flight stay below
 *                       a congestion window that grows with
 *                       acknowledgments and shrinks on congestion, as
 *                       TCP's (bpq(4), "The window strategy").
 */
enum bpq_strategy {
	BPQ_STRATEGY_BLOCK = 0,
	BPQ_STRATEGY_DROP_NEWEST = 1,
	BPQ_STRATEGY_DROP_OLDEST = 2,
	BPQ_STRATEGY_CREDIT = 3,
	BPQ_STRATEGY_ADAPTIVE = 4,
	BPQ_STRATEGY_WINDOW = 5,
};

/* auto_credit: what returns a credit to the writers of a credit queue */
#define BPQ_AUTO_CREDIT_OFF		0	/* only grants */
#define BPQ_AUTO_CREDIT_DELIVERY	1	/* each delivered message */
#define BPQ_AUTO_CREDIT_ACK		2	/* each acknowledged message */

/* ack_mode of the window strategy: what leaves the flight */
#define BPQ_ACK_MODE_ACK	0	/* an acknowledgment (BPQ_IOC_ACK) */
#define BPQ_ACK_MODE_DELIVERY	1	/* the delivery */

/* window_state of the window strategy */
#define BPQ_WINDOW_SLOW_START	0	/* cwnd < ssthresh: +1 per ack */
#define BPQ_WINDOW_AVOIDANCE	1	/* +1 per cwnd acks */
#define BPQ_WINDOW_RECOVERY	2	/* reduced, for a window of acks */

/**
 * enum bpq_stream_state - where a queue's stream is (bpq(4), "Streams")
 * @BPQ_STREAM_OPEN: writers may write.
 * @BPQ_STREAM_COMPLETED: the producer said it was the last message:
 *                        writes fail with EPIPE, reads drain what is
 *                        queued, then return end of file.
 * @BPQ_STREAM_FAILED: as completed, but after the drain reads fail with
 *                     ECONNRESET; the producer's errno is kept.
 * @BPQ_STREAM_CANCELLED: the consumer gave up: writes fail with EPIPE;
 *                        what is queued may be read, then end of file.
 */
enum bpq_stream_state {
	BPQ_STREAM_OPEN = 0,
	BPQ_STREAM_COMPLETED = 1,
	BPQ_STREAM_FAILED = 2,
	BPQ_STREAM_CANCELLED = 3,
};

/**
 * enum bpq_hangup - what the last close of one side of a queue does
 * @BPQ_HANGUP_NONE: nothing.
 * @BPQ_HANGUP_WRITERS: the last close of a file open for writing
 *                      completes the stream, and an open for reading or
 *                      writing of a completed, drained stream starts a
 *                      new one (as a FIFO's next reader and writer meet).
 * @BPQ_HANGUP_READERS: the last close of a file open for reading cancels
 *                      the stream, keeping what is queued; an open for
 *                      reading of a cancelled, drained stream starts a
 *                      new one.
 * @BPQ_HANGUP_BOTH: both.
 */
enum bpq_hangup {
	BPQ_HANGUP_NONE = 0,
	BPQ_HANGUP_WRITERS = 1,
	BPQ_HANGUP_READERS = 2,
	BPQ_HANGUP_BOTH = 3,
};

/*
 * Holds: reasons for which a queue is under pressure whatever its depth
 * (its effective pressure is its watermarks' OR any hold). Bits of
 * struct bpq_stats.holds, named by the sysfs file hold. The first three
 * are set and cleared from userspace; link and group by the kernel.
 */
#define BPQ_HOLD_ADMIN		(1U << 0)	/* an operator's pause */
#define BPQ_HOLD_CLUSTER	(1U << 1)	/* the cluster's (bpqd) */
#define BPQ_HOLD_SYSTEM		(1U << 2)	/* the machine's (bpqd) */
#define BPQ_HOLD_LINK		(1U << 3)	/* a linked downstream queue */
#define BPQ_HOLD_GROUP		(1U << 4)	/* the queue's group */
#define BPQ_HOLD_USER		(BPQ_HOLD_ADMIN | BPQ_HOLD_CLUSTER | \
				 BPQ_HOLD_SYSTEM)

/**
 * enum bpq_read_mode - what read() does with a buffer shorter than the
 *                      next message
 * @BPQ_READ_MESSAGE: fails with EMSGSIZE, leaving the message queued, as
 *                    every receive call does.
 * @BPQ_READ_STREAM: takes the front of the message and leaves the rest
 *                   for the next receive, as a stream socket or a pipe
 *                   does (stats partial_reads counts such reads); read()
 *                   and readv() calls then take their turns one at a
 *                   time. The message counts as delivered with its last
 *                   byte. BPQ_IOC_RECV and BPQ_IOC_RECV_BATCH keep to
 *                   whole messages, of which a partly read one's rest.
 */
enum bpq_read_mode {
	BPQ_READ_MESSAGE = 0,
	BPQ_READ_STREAM = 1,
};

/*
 * Per-call flags of BPQ_IOC_RECV, BPQ_IOC_SEND_BATCH, BPQ_IOC_RECV_BATCH and
 * BPQ_IOC_RING_SYNC.
 * O_NONBLOCK on the file has the effect of BPQ_IO_NONBLOCK on every call.
 * With BPQ_IO_TIMEOUT, timeout_ms bounds the wait and 0 means "do not wait"
 * (ETIMEDOUT at once); without it a send waits as write() does (bounded by
 * the queue's write_timeout_ms, where 0 means "no bound") and a receive
 * waits without bound.
 */
#define BPQ_IO_NONBLOCK		(1U << 0)	/* never wait: EAGAIN */
#define BPQ_IO_TIMEOUT		(1U << 1)	/* bound the wait by timeout_ms */

/**
 * struct bpq_config - the settings of one queue
 * @size: sizeof(struct bpq_config)
 * @flags: must be 0
 * @strategy: enum bpq_strategy
 * @capacity_msgs: at most this many messages queued, 1 ... 1048576
 * @capacity_bytes: at most this many payload bytes queued, 1 ... 1 GiB
 * @max_msg_size: largest message accepted, 1 ... 4 MiB
 * @high_watermark: pressure starts at this utilization, 1 ... 100 percent
 * @low_watermark: pressure ends below this utilization, 1 ... high_watermark
 * @write_timeout_ms: bound on a waiting writer (ETIMEDOUT), 0 for none
 * @auto_credit: BPQ_AUTO_CREDIT_*: what returns a credit by itself
 * @target_latency_us: adaptive: sojourn-time target, 1 ... 60000000
 * @min_rate: adaptive: lowest admission rate in msgs/s, >= 1
 * @max_rate: adaptive: highest admission rate in msgs/s, >= min_rate
 * @adjust_interval_ms: adaptive: controller period, 1 ... 60000
 * @__reserved: must be 0 for BPQ_IOC_SET_CONFIG; written as 0 by
 *              BPQ_IOC_GET_CONFIG, which reads only @size and @flags
 * @hangup: enum bpq_hangup: what the last close of one side does
 * @ack_mode: window: BPQ_ACK_MODE_*
 * @initial_cwnd: window: the window at the start, min_cwnd ... max_cwnd
 * @min_cwnd: window: the smallest window, >= 1
 * @max_cwnd: window: the largest window, <= 1048576
 * @initial_ssthresh: window: slow start's end at the start, 1 ... 1048576
 * @ack_timeout_ms: window: with messages in flight, this long without an
 *                  acknowledgment drops the window to min_cwnd; 0: never
 * @read_mode: enum bpq_read_mode: what a short read() does
 * @increase_pct: adaptive: the most one interval raises the rate by,
 *                1 ... 1000 percent of the rate served (default 50)
 * @decrease_pct: adaptive: the most one interval lowers it by,
 *                1 ... 99 percent of the rate served (default 50)
 *
 * BPQ_IOC_SET_CONFIG replaces every setting at once: read, modify, write.
 * A @size that ends before a field (a program built against an older
 * header) leaves that field as it is. It never discards a queued
 * message; shrinking a capacity below the current depth only makes
 * writers wait.
 */
struct bpq_config {
	__u32 size;
	__u32 flags;
	__u32 strategy;
	__u32 capacity_msgs;
	__u64 capacity_bytes;
	__u32 max_msg_size;
	__u32 high_watermark;
	__u32 low_watermark;
	__u32 write_timeout_ms;
	__u32 auto_credit;
	__u32 target_latency_us;
	__u32 min_rate;
	__u32 max_rate;
	__u32 adjust_interval_ms;
	__u32 __reserved;
	__u32 hangup;
	__u32 ack_mode;
	__u32 initial_cwnd;
	__u32 min_cwnd;
	__u32 max_cwnd;
	__u32 initial_ssthresh;
	__u32 ack_timeout_ms;
	__u32 read_mode;
	__u32 increase_pct;
	__u32 decrease_pct;
};

/**
 * struct bpq_stats - one consistent snapshot of a queue's state and counters
 * @size: sizeof(struct bpq_stats)
 * @flags: must be 0
 * @depth_msgs: messages queued now (with a ring: waiting outside it)
 * @depth_bytes: payload bytes queued now
 * @credits_available: credit balance of the credit strategy
 * @utilization: percent of the tighter of the two capacity bounds
 * @pressure: 1 while under pressure: from reaching the high watermark
 *            until falling below the low one, or held (@holds)
 * @rate: current admission rate of the adaptive strategy, msgs/s
 * @throughput: dequeued msgs/s, moving average
 * @enqueued_msgs: messages accepted
 * @enqueued_bytes: payload bytes accepted
 * @dequeued_msgs: messages delivered to readers (or into the ring)
 * @dequeued_bytes: payload bytes delivered to readers
 * @dropped_newest: messages refused by drop-newest
 * @dropped_oldest: messages evicted by drop-oldest
 * @flushed: messages discarded by a flush
 * @backpressure_applied: writers that had to wait or were refused
 * @blocked_ns: time writers spent waiting for room
 * @throttled_ns: time writers spent waiting for the adaptive rate
 * @timeouts: waits that ended with ETIMEDOUT
 * @credit_starvation: writers that found no credit
 * @credit_starved_ns: time writers spent waiting for credit
 * @latency_hist: sojourn times; bucket i counts deliveries below
 *                2^(10 + i) ns, the last bucket everything longer
 * @stream: enum bpq_stream_state
 * @stream_error: the errno a failed stream's producer gave, else 0
 * @stream_epoch: how many times the stream was opened again
 * @readers: open files of the queue that may read
 * @writers: open files of the queue that may write
 * @unacked: delivered messages not yet acknowledged (BPQ_IOC_ACK)
 * @acked_msgs: messages acknowledged
 * @nacked: acknowledgments that said congested (BPQ_ACK_NACK)
 * @stale_acks: messages acknowledged beyond those delivered, ignored
 * @cwnd: window: the congestion window
 * @ssthresh: window: the slow-start threshold
 * @inflight: window: queued, and with ack_mode ack delivered unacked
 * @window_state: window: BPQ_WINDOW_*
 * @congestion_events: window: reductions of the window
 * @ack_timeouts: window: drops to min_cwnd for want of an ack
 * @cwnd_limited_ns: window: time writers spent waiting for the window
 * @processing_hist: enqueue to acknowledgment, of the acks that gave
 *                   the enqueue time; buckets as @latency_hist
 * @partial_reads: reads that took the front of a message
 *                 (BPQ_READ_STREAM)
 * @holds: BPQ_HOLD_* now in force
 * @watermark: 1 while the watermarks put the queue under pressure (what
 *             @pressure says is this OR @holds)
 * @held_ns: time writers spent waiting only because of a hold
 * @head_age_us: how long the oldest queued message has waited, in µs
 * @writers_waiting: writers waiting now to be admitted
 * @__pad3: 0
 * @stall_some_us: time at least one writer waited, in µs (the total of
 *                 the sysfs file pressure_stall's "some"; not reset)
 * @stall_full_us: time writers waited while a reader waited on the empty
 *                 queue, in µs (pressure_stall's "full"; not reset)
 *
 * Invariant: enqueued_msgs = dequeued_msgs + dropped_oldest + flushed +
 * depth_msgs.
 */
struct bpq_stats {
	__u32 size;
	__u32 flags;
	__u64 depth_msgs;
	__u64 depth_bytes;
	__u64 credits_available;
	__u32 utilization;
	__u32 pressure;
	__u64 rate;
	__u64 throughput;
	__u64 enqueued_msgs;
	__u64 enqueued_bytes;
	__u64 dequeued_msgs;
	__u64 dequeued_bytes;
	__u64 dropped_newest;
	__u64 dropped_oldest;
	__u64 flushed;
	__u64 backpressure_applied;
	__u64 blocked_ns;
	__u64 throttled_ns;
	__u64 timeouts;
	__u64 credit_starvation;
	__u64 credit_starved_ns;
	__u64 latency_hist[BPQ_LATENCY_BUCKETS];
	__u32 stream;
	__u32 stream_error;
	__u64 stream_epoch;
	__u32 readers;
	__u32 writers;
	__u64 unacked;
	__u64 acked_msgs;
	__u64 nacked;
	__u64 stale_acks;
	__u32 cwnd;
	__u32 ssthresh;
	__u64 inflight;
	__u32 window_state;
	__u32 __pad;
	__u64 congestion_events;
	__u64 ack_timeouts;
	__u64 cwnd_limited_ns;
	__u64 processing_hist[BPQ_LATENCY_BUCKETS];
	__u64 partial_reads;
	__u32 holds;
	__u32 watermark;
	__u64 held_ns;
	__u64 head_age_us;
	__u32 writers_waiting;
	__u32 __pad3;
	__u64 stall_some_us;
	__u64 stall_full_us;
};

/**
 * struct bpq_msg_info - what a receive says about one message
 * @seq: sequence number given at enqueue, from 1, without holes but for
 *       evicted and flushed messages
 * @timestamp_ns: CLOCK_MONOTONIC time of the enqueue
 * @lost: messages dropped or evicted since this file's previous receive
 * @len: payload length
 * @offset: batch receive: where the payload starts in the buffer
 */
struct bpq_msg_info {
	__u64 seq;
	__u64 timestamp_ns;
	__u64 lost;
	__u32 len;
	__u32 offset;
};

/**
 * struct bpq_recv - receive one message with its info (BPQ_IOC_RECV)
 * @size: sizeof(struct bpq_recv)
 * @flags: BPQ_IO_*
 * @buf: where the payload goes
 * @buf_len: room at @buf; EMSGSIZE, message left queued, if too small
 * @timeout_ms: with BPQ_IO_TIMEOUT, ETIMEDOUT after this long
 * @info: out: the message's info
 *
 * Returns the payload length; 0 is end of file (an ended stream,
 * drained), as read() returns.
 */
struct bpq_recv {
	__u32 size;
	__u32 flags;
	__aligned_u64 buf;
	__u32 buf_len;
	__u32 timeout_ms;
	struct bpq_msg_info info;
};

/**
 * struct bpq_iovec - one message of a batch send
 * @base: payload
 * @len: payload length, 1 ... max_msg_size
 * @__reserved: must be 0
 */
struct bpq_iovec {
	__aligned_u64 base;
	__u32 len;
	__u32 __reserved;
};

/**
 * struct bpq_send_batch - queue several messages in one call
 * @size: sizeof(struct bpq_send_batch)
 * @flags: BPQ_IO_*
 * @msgs: array of @count struct bpq_iovec
 * @count: number of messages, 1 ... 1024
 * @timeout_ms: with BPQ_IO_TIMEOUT, the bound on a wait for room
 *
 * Messages are queued in order, each as write() would queue it. Returns how
 * many were queued; an error only if none was (the error of the first).
 */
struct bpq_send_batch {
	__u32 size;
	__u32 flags;
	__aligned_u64 msgs;
	__u32 count;
	__u32 timeout_ms;
};

/**
 * struct bpq_recv_batch - receive several messages in one call
 * @size: sizeof(struct bpq_recv_batch)
 * @flags: BPQ_IO_*
 * @buf: payloads, packed one after another
 * @buf_len: room at @buf (max_bytes); EMSGSIZE if the first message does
 *           not fit, and it stays queued
 * @max_records: room at @infos, 1 ... 1024
 * @infos: array of struct bpq_msg_info, one per message received
 * @timeout_ms: with BPQ_IO_TIMEOUT, the bound on a wait for the first one
 * @__reserved: must be 0
 *
 * Waits for one message, then takes every further one that fits without
 * waiting. Returns the number of messages received; 0 is end of file.
 */
struct bpq_recv_batch {
	__u32 size;
	__u32 flags;
	__aligned_u64 buf;
	__u32 buf_len;
	__u32 max_records;
	__aligned_u64 infos;
	__u32 timeout_ms;
	__u32 __reserved;
};

/**
 * struct bpq_grant - grant credits to the writers of a credit queue
 * @size: sizeof(struct bpq_grant)
 * @flags: 0, or one of BPQ_GRANT_SET and BPQ_GRANT_REVOKE
 * @credits: how many, >= 1 (0 too with BPQ_GRANT_SET)
 *
 * Adds @credits to the balance, which saturates at U64_MAX; with
 * BPQ_GRANT_SET the balance becomes @credits, with BPQ_GRANT_REVOKE it
 * loses @credits, down to 0. Writers waiting for credit go in as far as
 * the new balance lets them.
 */
struct bpq_grant {
	__u32 size;
	__u32 flags;
	__u64 credits;
};

#define BPQ_GRANT_SET		(1U << 0)
#define BPQ_GRANT_REVOKE	(1U << 1)

/**
 * struct bpq_simple - argument of commands that need nothing else
 * @size: sizeof(struct bpq_simple)
 * @flags: must be 0
 *
 * BPQ_IOC_FLUSH returns the number of messages discarded;
 * BPQ_IOC_RESET_STATS returns 0.
 */
struct bpq_simple {
	__u32 size;
	__u32 flags;
};

/**
 * struct bpq_shutdown - end, or open again, the queue's stream
 * @size: sizeof(struct bpq_shutdown)
 * @flags: exactly one of BPQ_SHUTDOWN_COMPLETE, _FAIL, _CANCEL (with
 *         BPQ_SHUTDOWN_DISCARD or not) and _REOPEN
 * @error: with BPQ_SHUTDOWN_FAIL, the producer's errno: 1 ... 133, but
 *         not EAGAIN or EINTR; else 0
 * @__reserved: must be 0
 *
 * COMPLETE and FAIL need the file open for writing, CANCEL open for
 * reading (EBADF). Writers then fail with EPIPE, waiting ones at once;
 * readers drain what is queued, then get end of file (ECONNRESET after
 * FAIL). DISCARD flushes what is queued. The same shutdown again does
 * nothing and returns 0; COMPLETE or FAIL of an ended stream of another
 * kind fails with EBUSY, of a cancelled one with EPIPE; CANCEL always
 * takes effect. REOPEN of an ended stream that still holds messages
 * fails with EBUSY, else the stream is open again in a new epoch (an
 * open stream stays as it is). Returns the number of messages
 * discarded, 0 without DISCARD.
 */
struct bpq_shutdown {
	__u32 size;
	__u32 flags;
	__u32 error;
	__u32 __reserved;
};

#define BPQ_SHUTDOWN_COMPLETE	(1U << 0)
#define BPQ_SHUTDOWN_FAIL	(1U << 1)
#define BPQ_SHUTDOWN_CANCEL	(1U << 2)
#define BPQ_SHUTDOWN_DISCARD	(1U << 3)
#define BPQ_SHUTDOWN_REOPEN	(1U << 4)

/**
 * struct bpq_ack - the reader has processed messages (BPQ_IOC_ACK)
 * @size: sizeof(struct bpq_ack)
 * @flags: BPQ_ACK_NACK, BPQ_ACK_TIMESTAMP
 * @count: how many messages, >= 1, the oldest delivered first
 * @timestamp_ns: with BPQ_ACK_TIMESTAMP, the enqueue time of one of them
 *                (struct bpq_msg_info), not in the future: the time from
 *                it to now goes into processing_hist; else 0
 *
 * Acknowledged messages leave the window strategy's flight and, with
 * auto_credit BPQ_AUTO_CREDIT_ACK, return their credits. BPQ_ACK_NACK
 * says the reader could not keep up: the window strategy takes it as a
 * congestion signal. Acknowledging more than were delivered counts the
 * rest in stale_acks. Returns how many were acknowledged.
 */
struct bpq_ack {
	__u32 size;
	__u32 flags;
	__u32 count;
	__u32 __reserved;
	__u64 timestamp_ns;
};

#define BPQ_ACK_NACK		(1U << 0)
#define BPQ_ACK_TIMESTAMP	(1U << 1)

/**
 * struct bpq_create - create a queue (control device only)
 * @size: sizeof(struct bpq_create)
 * @flags: must be 0
 * @name: label, NUL-terminated, [A-Za-z0-9_.-], unique (EEXIST), neither
 *        all digits nor "bpq" and digits (those name queues by number)
 * @index: out: N of /dev/bpqN
 * @__reserved: must be 0
 *
 * Needs CAP_SYS_ADMIN (EPERM). Returns the new queue's number.
 */
struct bpq_create {
	__u32 size;
	__u32 flags;
	char name[BPQ_NAME_MAX];
	__u32 index;
	__u32 __reserved;
};

/**
 * struct bpq_destroy - destroy a queue (control device only)
 * @size: sizeof(struct bpq_destroy)
 * @flags: must be 0
 * @index: N of /dev/bpqN (ENOENT if there is none)
 * @__reserved: must be 0
 *
 * Open files of the queue then fail with ENODEV. Needs CAP_SYS_ADMIN.
 */
struct bpq_destroy {
	__u32 size;
	__u32 flags;
	__u32 index;
	__u32 __reserved;
};

/**
 * struct bpq_link - link two queues of a pipeline (control device only)
 * @size: sizeof(struct bpq_link)
 * @flags: must be 0
 * @upstream: N of the queue whose writers the other's pressure holds
 * @downstream: N of the queue whose effective pressure holds them
 *
 * BPQ_IOC_LINK: while @downstream is under pressure (of its watermarks or
 * a hold, a link's among them), @upstream is held (BPQ_HOLD_LINK), so the
 * slowest stage of a pipeline holds its source at once. ENOENT if either
 * queue does not exist, EEXIST if the link does, ELOOP if it would close
 * a cycle (a queue linked to itself among them) or make a chain of more
 * than 32 links, EMLINK past
 * BPQ_LINKS_MAX links on either queue. BPQ_IOC_UNLINK removes the link
 * (ENOENT if there is none). Destroying a queue removes its links.
 */
struct bpq_link {
	__u32 size;
	__u32 flags;
	__u32 upstream;
	__u32 downstream;
};

#define BPQ_LINKS_MAX		16	/* upstream, and downstream, per queue */

/**
 * struct bpq_group_create - create a group of queues (control device only)
 * @size: sizeof(struct bpq_group_create)
 * @flags: must be 0
 * @capacity_msgs: the messages its members may hold together, >= 1
 * @high_watermark: at this percent of @capacity_msgs, 1 ... 100, every
 *                  member (and every member of the groups within) is
 *                  held (BPQ_HOLD_GROUP)
 * @low_watermark: ... until the depth falls below this, 1 ... high
 * @__reserved: must be 0
 * @name: as a queue's (struct bpq_create), unique among groups (EEXIST)
 * @parent: the group this one is within, or "" (ENOENT if none such;
 *          EMLINK past BPQ_GROUP_DEPTH levels)
 *
 * A group's depth is the sum of its member queues' depths and of the
 * groups within it. BPQ_IOC_GROUP_DESTROY takes @name alone (the other
 * fields 0) and fails with EBUSY while the group has members or groups
 * within. Needs CAP_SYS_ADMIN (EPERM).
 */
struct bpq_group_create {
	__u32 size;
	__u32 flags;
	__u32 capacity_msgs;
	__u32 high_watermark;
	__u32 low_watermark;
	__u32 __reserved;
	char name[BPQ_NAME_MAX];
	char parent[BPQ_NAME_MAX];
};

#define BPQ_GROUP_DEPTH		8	/* levels of groups within groups */

/**
 * struct bpq_group_join - put a queue in a group, or take it out
 * @size: sizeof(struct bpq_group_join)
 * @flags: must be 0
 * @queue: N of /dev/bpqN (ENOENT)
 * @__reserved: must be 0
 * @group: the group (ENOENT if none such), or "" for none: a queue is in
 *         one group at most, and joining another leaves the first
 *
 * Needs CAP_SYS_ADMIN (EPERM). Destroying a queue takes it out.
 */
struct bpq_group_join {
	__u32 size;
	__u32 flags;
	__u32 queue;
	__u32 __reserved;
	char group[BPQ_NAME_MAX];
};

/**
 * struct bpq_ring_setup - give the file a receive ring (BPQ_IOC_RING_SETUP)
 * @size: sizeof(struct bpq_ring_setup)
 * @flags: must be 0
 * @ring_bytes: size of the data area: a power of two, from 4096 (or the
 *              page size, if larger) to 64 MiB, and at least twice
 *              BPQ_RING_RECORD(max_msg_size)
 * @mmap_bytes: 0 in; out: the length to mmap() at offset 0: one page
 *              holding struct bpq_ring_ctl, then the data area
 *
 * The ring makes the file the queue's only reader: messages are delivered
 * into it by the writers' own calls, in order, as long as it has room, and
 * the reader takes them from its mapping without a system call. What does
 * not fit waits in the queue, under the queue's capacity and strategy, and
 * moves into the ring as the reader frees room. A message counts as
 * delivered (dequeued) when it enters the ring.
 *
 * EBADF: the file is not open for both reading and writing (the reader
 * writes its head into the mapping). EBUSY: the queue has a ring already,
 * a reader waits or copies a message out, or this file has had a ring.
 * EINVAL: @ring_bytes out of range, or the queue's max_msg_size above
 * BPQ_RING_MSG_MAX or too large for the ring. ENOMEM: no memory for it.
 * While the ring exists, read() and the receive commands of every
 * file of the queue fail with EBUSY, and BPQ_IOC_SET_CONFIG with EBUSY if
 * it would raise max_msg_size beyond what the ring takes. The ring goes
 * with the file (its last close, after munmap()).
 *
 * mmap() of the file maps the ring: offset 0, length @mmap_bytes,
 * MAP_SHARED, without PROT_EXEC; EINVAL otherwise, or without a ring.
 */
struct bpq_ring_setup {
	__u32 size;
	__u32 flags;
	__u32 ring_bytes;
	__u32 mmap_bytes;
};

/**
 * struct bpq_ring_ctl - the first page of a ring's mapping
 * @head: the reader's position: bytes consumed since the ring was made.
 *        Only the reader writes it (a release store, after it is done
 *        with the records below it).
 * @tail: the kernel's position: bytes published. Records below @tail are
 *        whole (read it with an acquire load).
 * @flags: BPQ_RING_NEED_SYNC: messages wait in the queue for room
 * @ring_bytes: size of the data area, which follows this page
 * @sync_head: with BPQ_RING_NEED_SYNC, where the kernel wants to hear of
 *             the room: once @head has reached it, a reader (after a full
 *             barrier between its store of @head and its load of @flags,
 *             an acquire load, before this one) calls BPQ_IOC_RING_SYNC.
 *             It is never beyond @tail, so a reader that empties the
 *             ring always gets there; before, it lets the reader take a
 *             quarter of the ring per call.
 * @end: 0 while records may still come; once the stream has ended and
 *       every message it held is in the ring (released after @tail),
 *       its enum bpq_stream_state: past @tail comes end of file, and
 *       with BPQ_STREAM_FAILED, BPQ_IOC_RING_SYNC fails with ECONNRESET.
 *       Set back to 0 when the stream is opened again.
 *
 * Positions only grow; a record at position p is at data offset
 * p & (ring_bytes - 1). The kernel never reads the data area back and
 * trusts @head only to tell how much room there is, so a reader that
 * moves it wrongly can lose or garble its own messages, nothing else.
 */
struct bpq_ring_ctl {
	__u64 head;
	__u64 __pad_head[7];	/* head and tail on their own cache lines */
	__u64 tail;
	__u32 flags;
	__u32 ring_bytes;
	__u64 sync_head;
	__u32 end;
	__u32 __pad_end;
};

#define BPQ_RING_NEED_SYNC	(1U << 0)

/**
 * struct bpq_ring_rec - one record of the data area, 8-byte aligned
 * @len: payload length; the payload follows this header
 * @flags: BPQ_RING_PAD: no message, the rest of this lap is unused
 * @seq: as struct bpq_msg_info
 * @timestamp_ns: as struct bpq_msg_info
 * @lost: messages dropped or evicted since the ring's previous message
 *
 * A record never runs past the end of the data area. Where fewer than
 * sizeof(struct bpq_ring_rec) bytes remain before the end, or a record
 * has BPQ_RING_PAD, the next record starts the next lap: at the position
 * rounded up to a multiple of ring_bytes.
 */
struct bpq_ring_rec {
	__u32 len;
	__u32 flags;
	__u64 seq;
	__u64 timestamp_ns;
	__u64 lost;
};

#define BPQ_RING_PAD		(1U << 0)
#define BPQ_RING_ALIGN		8
#define BPQ_RING_RECORD(len)	(sizeof(struct bpq_ring_rec) + \
				 (((__u64)(len) + BPQ_RING_ALIGN - 1) & \
				  ~(__u64)(BPQ_RING_ALIGN - 1)))
#define BPQ_RING_BYTES_MIN	4096U
#define BPQ_RING_BYTES_MAX	(64U << 20)
#define BPQ_RING_MSG_MAX	(64U << 10)

/**
 * struct bpq_ring_sync - move waiting messages into the ring (BPQ_IOC_RING_SYNC)
 * @size: sizeof(struct bpq_ring_sync)
 * @flags: BPQ_IO_*, BPQ_RING_WAIT
 * @timeout_ms: with BPQ_IO_TIMEOUT, the bound on the wait
 * @__reserved: must be 0
 *
 * Fills the ring's free room (as seen from @head) with messages waiting in
 * the queue and lets waiting writers in. With BPQ_RING_WAIT, then waits
 * until the ring holds a record (@tail != @head): EAGAIN with
 * BPQ_IO_NONBLOCK or O_NONBLOCK, ETIMEDOUT, EINTR as a receive. Returns
 * the bytes the ring holds for the reader. EINVAL on a file without a
 * ring.
 */
struct bpq_ring_sync {
	__u32 size;
	__u32 flags;
	__u32 timeout_ms;
	__u32 __reserved;
};

#define BPQ_RING_WAIT		(1U << 2)

/* What a trigger watches (struct bpq_trigger) */
enum bpq_trigger_metric {
	BPQ_TRIGGER_NONE = 0,		/* remove the file's trigger */
	BPQ_TRIGGER_STALL_SOME = 1,	/* µs of pressure_stall's some */
	BPQ_TRIGGER_STALL_FULL = 2,	/* µs of pressure_stall's full */
	BPQ_TRIGGER_DROPS = 3,		/* messages dropped or evicted */
	BPQ_TRIGGER_TIMEOUTS = 4,	/* waits that ended with ETIMEDOUT */
	BPQ_TRIGGER_HEAD_AGE = 5,	/* µs the oldest message has waited */
	BPQ_TRIGGER_UTILIZATION = 6,	/* percent, as utilization */
};

/**
 * struct bpq_trigger - watch one metric of the queue (BPQ_IOC_TRIGGER)
 * @size: sizeof(struct bpq_trigger)
 * @flags: must be 0
 * @metric: enum bpq_trigger_metric
 * @window_ms: 500 ... 10000
 * @threshold: >= 1, in the metric's unit
 *
 * As a trigger on a file of /proc/pressure/: the file reports EPOLLPRI
 * (once for each poll that sees it) when the trigger fires, and it fires
 * at most once per window. The stall metrics, drops and timeouts fire
 * when they grow by @threshold within a window (a sliding window, as
 * PSI's: the previous window's growth counts in proportion to the part
 * of it still inside), and only after growing since the last firing; a
 * stall threshold above the window is EINVAL. Head age and utilization
 * (at most 100) fire while at or above @threshold. The queue is looked at
 * every tenth of the window.
 *
 * With a trigger the file's EPOLLPRI says only that it fired, no longer
 * that the queue is under pressure. One trigger per file: EBUSY for a
 * second, until BPQ_TRIGGER_NONE (other fields 0) removes it, as does
 * the file's last close.
 */
struct bpq_trigger {
	__u32 size;
	__u32 flags;
	__u32 metric;
	__u32 window_ms;
	__u64 threshold;
};

#define BPQ_TRIGGER_WINDOW_MIN	500U
#define BPQ_TRIGGER_WINDOW_MAX	10000U

#define BPQ_TYPE	0xB9

enum {
	BPQ_CMD_GET_CONFIG = 0x00,
	BPQ_CMD_SET_CONFIG,
	BPQ_CMD_GET_STATS,
	BPQ_CMD_RESET_STATS,
	BPQ_CMD_GRANT,
	BPQ_CMD_FLUSH,
	BPQ_CMD_RECV,
	BPQ_CMD_SEND_BATCH,
	BPQ_CMD_RECV_BATCH,
	BPQ_CMD_RING_SETUP,
	BPQ_CMD_RING_SYNC,
	BPQ_CMD_SHUTDOWN,
	BPQ_CMD_ACK,
	BPQ_CMD_TRIGGER,
	BPQ_CMD_CREATE = 0x40,
	BPQ_CMD_DESTROY,
	BPQ_CMD_LINK,
	BPQ_CMD_UNLINK,
	BPQ_CMD_GROUP_CREATE,
	BPQ_CMD_GROUP_DESTROY,
	BPQ_CMD_GROUP_JOIN,
};

#define BPQ_IOC_GET_CONFIG	_IO(BPQ_TYPE, BPQ_CMD_GET_CONFIG)
#define BPQ_IOC_SET_CONFIG	_IO(BPQ_TYPE, BPQ_CMD_SET_CONFIG)
#define BPQ_IOC_GET_STATS	_IO(BPQ_TYPE, BPQ_CMD_GET_STATS)
#define BPQ_IOC_RESET_STATS	_IO(BPQ_TYPE, BPQ_CMD_RESET_STATS)
#define BPQ_IOC_GRANT		_IO(BPQ_TYPE, BPQ_CMD_GRANT)
#define BPQ_IOC_FLUSH		_IO(BPQ_TYPE, BPQ_CMD_FLUSH)
#define BPQ_IOC_RECV		_IO(BPQ_TYPE, BPQ_CMD_RECV)
#define BPQ_IOC_SEND_BATCH	_IO(BPQ_TYPE, BPQ_CMD_SEND_BATCH)
#define BPQ_IOC_RECV_BATCH	_IO(BPQ_TYPE, BPQ_CMD_RECV_BATCH)
#define BPQ_IOC_RING_SETUP	_IO(BPQ_TYPE, BPQ_CMD_RING_SETUP)
#define BPQ_IOC_RING_SYNC	_IO(BPQ_TYPE, BPQ_CMD_RING_SYNC)
#define BPQ_IOC_SHUTDOWN	_IO(BPQ_TYPE, BPQ_CMD_SHUTDOWN)
#define BPQ_IOC_ACK		_IO(BPQ_TYPE, BPQ_CMD_ACK)
#define BPQ_IOC_TRIGGER		_IO(BPQ_TYPE, BPQ_CMD_TRIGGER)
#define BPQ_IOC_CREATE		_IO(BPQ_TYPE, BPQ_CMD_CREATE)
#define BPQ_IOC_DESTROY		_IO(BPQ_TYPE, BPQ_CMD_DESTROY)
#define BPQ_IOC_LINK		_IO(BPQ_TYPE, BPQ_CMD_LINK)
#define BPQ_IOC_UNLINK		_IO(BPQ_TYPE, BPQ_CMD_UNLINK)
#define BPQ_IOC_GROUP_CREATE	_IO(BPQ_TYPE, BPQ_CMD_GROUP_CREATE)
#define BPQ_IOC_GROUP_DESTROY	_IO(BPQ_TYPE, BPQ_CMD_GROUP_DESTROY)
#define BPQ_IOC_GROUP_JOIN	_IO(BPQ_TYPE, BPQ_CMD_GROUP_JOIN)

#endif /* _UAPI_LINUX_BPQ_H */
