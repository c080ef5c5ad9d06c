/* SPDX-License-Identifier: GPL-2.0 */
#ifndef _BPQ_BPQ_H
#define _BPQ_BPQ_H

#include <linux/bits.h>
#include <linux/cdev.h>
#include <linux/device.h>
#include <linux/hrtimer.h>
#include <linux/kref.h>
#include <linux/list.h>
#include <linux/mm.h>
#include <linux/mutex.h>
#include <linux/rhashtable-types.h>
#include <linux/spinlock.h>
#include <linux/types.h>
#include <linux/uio.h>
#include <linux/wait.h>
#include <linux/bpq.h>

/*
 * Locking:
 *
 * bpq_lock (mutex, chrdev.c) serializes creating and destroying queues:
 * the IDA number, the bpq_queues xarray of live queues by number, the
 * bpq_names hash table of them by name, device_add() and device_del().
 * The IDA, the xarray and the hash table take their own
 * internal locks inside it (xa_for_each() and rhashtable lookups read
 * under RCU); ida_free() runs at the last put_device(), with or without
 * bpq_lock. bpq uses no RCU of its own.
 *
 * q->cfg_mutex serializes configuration changes: bpq_set_config() and the
 * read, modify and apply of bpq_update_config() (sysfs). bpq_grant() and
 * bpq_flush() take q->lock alone.
 *
 * q->lock (spinlock, process context only) protects struct bpq_queue from
 * cfg down; the bpq_writer and bpq_reader records on q->writers and
 * q->readers (node, msg, gen, result, paced), which live on their
 * waiter's stack; the message log (msg.c: its pages' order, head, tail,
 * spare and graves) and its records' seq and flags; a ring's tail, busy
 * and owner; and bf->lost_seen. It is never held across a sleep or a
 * page fault: bpq_sleep() drops and retakes it; the copies of small
 * messages made under it (bpq_send_many(), bpq_recv_fast()) run with
 * page faults off, and one that meets a missing page stops and is made
 * again after the page was brought in; larger ones are copied without
 * it, their records pinned. Pages to free go on the hold's struct
 * bpq_defer, freed after the unlock. A page for a small record may be
 * allocated under it with GFP_NOWAIT, charged to its user by atomics
 * alone.
 *
 * Lock order, outermost first (no other nesting):
 *
 *	bpq_lock, or group.c's bpq_group_reg_mutex
 *	  link.c's bpq_link_mutex, or group.c's bpq_group_mutex
 *	  q->cfg_mutex, or q->trig_mutex (trigger.c)
 *	    q->lock
 *	      ring->wait, the scheduler's (the wake-ups left under it),
 *	      the hrtimer base (hrtimer_start()),
 *	      the page allocator and memcg (GFP_NOWAIT, a page),
 *	      fa_lock and the signal locks (kill_fasync(), irq-safe),
 *	      link.c's bpq_dirty_lock, group.c's bpq_group_lock (leaves)
 *	bpq_users_lock	a leaf, under bpq_lock or q->cfg_mutex at most
 *
 * The work items of link.c, group.c and trigger.c take their mutex (none
 * for triggers) and then one q->lock at a time.
 *
 * bpq_lock is not taken under the others, as device_del() waits under it
 * for the sysfs callbacks, which take q->cfg_mutex and q->lock.
 *
 * Sleeping: allowed under bpq_lock and q->cfg_mutex, never under q->lock.
 * bpq_pool_fill() and bpq_ring_alloc() run before taking it, and
 * bpq_pages_free() (bpq_user_put()) and bpq_ring_put() (vunmap())
 * after dropping it; the last put_device() may free messages under
 * bpq_lock. In bpq_ring_send(), a writer copies into the ring holding no
 * lock, with page faults off (a fault ends the copy).
 *
 * Waiters are settled under q->lock and woken after it, as ipc/mqueue.c
 * does with wake_q (which is not exported to modules): bpq_feed_readers(),
 * bpq_admit_writers() and bpq_queue_kill() put the task, with a reference
 * (get_task_struct()), on the caller's struct bpq_defer, and the caller
 * wakes it and drops the reference after its spin_unlock(), in
 * bpq_unlock(), or in bpq_sleep() before it sleeps itself. The waker does
 * not touch the waiter's record, which lives on the waiter's stack, after
 * the unlock; the waiter reads its result only under q->lock, which
 * orders that after the waker's store, so no barrier like mqueue's (for
 * its lockless fast path) is needed. A wake-up that comes after its
 * waiter saw its result and left is spurious, and every sleep of bpq's
 * rechecks. Past BPQ_WAKE_MAX tasks in one hold, the rest are woken under
 * the lock. bpq_wake_pollers() only gathers the events in the same
 * struct, for one wake-up of q->poll_wait after the unlock. Still under
 * q->lock: ring->wait (bpq_ring_publish(), bpq_queue_kill()), since
 * q->ring holds no reference on the ring, and kill_fasync().
 *
 * q->poll_timer (hrtimer, hard irq) is the adaptive strategy's only timer:
 * the controller (adaptive.c) runs under q->lock, lazily, when a message
 * is queued or delivered or a writer checks for its token.
 * bpq_pace_pollers() arms the timer under q->lock, unless q->dead, at the
 * end of each hold of it that goes through bpq_unlock() or bpq_sleep();
 * bpq_poll_mask() only reads, under q->lock, and changes nothing but a
 * trigger's event (trigger.c), which a poll reports once. The
 * timer's callback only wakes q->poll_wait and signals the O_ASYNC files,
 * and must never take q->lock, which is not irq-safe. q->fasync is
 * changed by fasync_helper() under its own fa_lock, without q->lock;
 * kill_fasync() reads the list under RCU. __bpq_set_config() cancels the
 * timer (without waiting: the callback takes no lock) when the strategy
 * is no longer adaptive, bpq_queue_kill() after setting q->dead, and
 * bpq_dev_release() before the free.
 *
 * bpq_users_lock (spinlock, user.c) protects the bpq_users hash and the
 * last drop of u->ref (refcount_dec_not_one() first, without it), so a
 * user found in the hash has a reference. u->bytes is an atomic64,
 * charged by cmpxchg against user_max_bytes, without the lock.
 *
 * Reads without the lock:
 * - q->dead: set once, WRITE_ONCE() under q->lock; READ_ONCE() in
 *   __bpq_set_config() and after the unlock in the getters, as an early
 *   answer. Whatever changes the queue tests it again under q->lock.
 * - q->ring: WRITE_ONCE() under q->lock; READ_ONCE() by writers only to
 *   try the ring's fast path, which tests it again under q->lock.
 * - bf->ring: set once, by smp_store_release() under q->lock after the
 *   ring is built; smp_load_acquire() in bpq_mmap(), bpq_ring_sync() and
 *   fdinfo; plain reads under q->lock, or at release.
 * - the metrics and user_max_bytes parameters: READ_ONCE().
 * - waitqueue_active() in bpq_defer_flush(), after the unlock, and in
 *   bpq_ring_publish(), under it: a poller queues itself before it takes
 *   q->lock, a ring syncer under it, so q->lock orders the test after
 *   their queueing.
 * - a record pinned by a reader (BPQ_MSG_INFLIGHT): its len, payload, seq
 *   and tstamp, copied out after the unlock, do not change while it is
 *   taken (bpq_ring_unreserve() moves seq, but a ring attaches only with
 *   no message in flight); q->lock orders them. Its flags change beside
 *   its len (bpq_msg_mark(), WRITE_ONCE(); bpq_msg_len(), READ_ONCE()).
 * - a record pinned by its writer (BPQ_MSG_RESERVED): its payload, which
 *   only that writer writes, without the lock, and readers do not read
 *   before bpq_commit() cleared the flag under it.
 * - the log's page links (page->lru) within a pinned record: fixed while
 *   it is pinned (msg.c); its pinner walks them without the lock.
 * - the ring's control page, shared with the reader: ctl->tail by
 *   smp_store_release() after the records, ctl->head by smp_load_acquire()
 *   (the reader's acquire and release pair with them); sync_head, smp_wmb(),
 *   flags, then smp_mb() before the head is read again, which pairs with
 *   the reader's full fence between storing its head and reading flags.
 * - the ring's data: bpq_ring_fill() writes it under q->lock; while
 *   ring->busy, the one writer that reserved the room beyond ring->tail
 *   copies into it without the lock, and nobody else moves the tail until
 *   it clears busy and publishes under q->lock (bpq_ring_send()).
 * - q->name and what a struct says is constant: set before publication.
 *
 * Lifetimes:
 * - queue: the struct device's refcount. bpq_queue_create() holds one (it
 *   stands for the xarray entry) until bpq_queue_remove() has erased
 *   that; each open file holds one, which bpq_open() takes under the
 *   xarray's lock. device_del() drains the sysfs callbacks, which hold
 *   none. Destroy only marks the queue dead; the last put_device()
 *   calls bpq_dev_release(), which frees the messages without q->lock,
 *   the number and the queue. bpq_queue_create() returns the queue's
 *   number and creation id, no reference: the caller must not touch the
 *   queue, and undoes a create with bpq_queue_destroy(number, id), which
 *   spares a queue that has since taken the number.
 * - file: struct bpq_file lives from open to release; q and user do not
 *   change.
 * - ring: ring->ref, held by its file from attach to bpq_ring_detach() at
 *   release, and by a writer while it copies in (bpq_ring_send()).
 *   q->ring holds none: it is cleared under q->lock
 *   before the last of those goes. Mapped pages live on with the mapping.
 * - message: a record of its queue's log from the hold of q->lock that
 *   queues it; one pinned by a reader (until bpq_recv_end_many()) or by
 *   its writer (until bpq_commit()) keeps its pages. Evicted meanwhile
 *   it is marked BPQ_MSG_GONE; flushed, its log becomes a grave; either
 *   way its pinner lets it go (bpq_pin_gone()).
 * - log page: the queue's, or a grave's, or the spare, or a writer's
 *   pool's; it holds a reference on the user it is charged to
 *   (page->private).
 * - user: u->ref, held by each open file and each page charged.
 */

/*
 * Kernels built with INIT_STACK_ALL_ZERO (Debian's) zero every automatic
 * variable on entry. The data path's per-call arrays, always written
 * before they are read, opt out: zeroing them cost more than the rest of
 * a 64-byte write and read.
 */
#if __has_attribute(__uninitialized__)
#define __bpq_noinit	__attribute__((__uninitialized__))
#else
#define __bpq_noinit
#endif

#define BPQ_CAPACITY_MSGS_MAX	BIT(20)
#define BPQ_CAPACITY_BYTES_MAX	BIT_ULL(30)
#define BPQ_MSG_SIZE_MAX	(4U << 20)
#define BPQ_BATCH_MAX		1024U
#define BPQ_BATCH_CHUNK		32U	/* messages per lock hold */
#define BPQ_ERRNO_MAX		133	/* a failed stream's errno, at most */
#define BPQ_ACK_TIMEOUT_MAX	3600000	/* ms */
#define BPQ_SHUTDOWN_FLAGS	(BPQ_SHUTDOWN_COMPLETE | BPQ_SHUTDOWN_FAIL | \
				 BPQ_SHUTDOWN_CANCEL | BPQ_SHUTDOWN_DISCARD | \
				 BPQ_SHUTDOWN_REOPEN)

/*
 * A message: a record of the queue's log (msg.c), this header and then
 * the payload, padded to 8 bytes. The header never crosses a page; the
 * payload may run on into the log's next pages. len does not change;
 * seq (its low 32 bits: bpq_msg_seq()) and tstamp are set when it is
 * queued, the flags under q->lock.
 */
struct bpq_msg {
	u64 tstamp;
	u32 seq;
	u32 info;			/* len | BPQ_MSG_* */
};

#define BPQ_MSG_LEN		GENMASK(23, 0)
#define BPQ_MSG_INFLIGHT	BIT(24)	/* a reader is copying it out */
#define BPQ_MSG_RESERVED	BIT(25)	/* its writer is copying it in */
#define BPQ_MSG_GONE		BIT(26)	/* left the queue while one of those */
#define BPQ_MSG_DEAD		BIT(27)	/* left the queue: the log may drop it */
#define BPQ_MSG_OUT		(BPQ_MSG_GONE | BPQ_MSG_DEAD)
#define BPQ_MSG_FLAGS		(~BPQ_MSG_LEN)

static_assert(BPQ_MSG_SIZE_MAX <= BPQ_MSG_LEN);

/* Its length: constant, read without the lock by the task that pins it. */
static inline u32 bpq_msg_len(const struct bpq_msg *msg)
{
	return READ_ONCE(msg->info) & BPQ_MSG_LEN;
}

/* Under q->lock */
static inline u32 bpq_msg_flags(const struct bpq_msg *msg)
{
	return msg->info & BPQ_MSG_FLAGS;
}

static inline void bpq_msg_mark(struct bpq_msg *msg, u32 set, u32 clear)
{
	WRITE_ONCE(msg->info, (msg->info & ~clear) | set);
}

/*
 * The whole sequence number of @msg, from a @next_seq taken under q->lock
 * since it was queued: the queue holds far fewer than 2^32 messages.
 */
static inline u64 bpq_msg_seq(const struct bpq_msg *msg, u64 next_seq)
{
	return next_seq - (u32)((u32)next_seq - msg->seq);
}

/*
 * What a send may take pages for its log records from (msg.c): pages
 * allocated before the lock, charged; and with alloc, pages allocated
 * under it without sleeping, charged to user.
 */
struct bpq_pool {
	struct list_head pages;
	u32 nr;
	u32 need;			/* for the record that did not get them */
	bool alloc;
	struct bpq_user *user;
	struct page *undo_page;		/* the tail before the last record */
	u32 undo_off;
};

/* Copied under q->lock, with page faults off: small messages */
#define BPQ_COPY_LOCKED_MAX	2048U

struct bpq_counters {
	u64 enqueued_msgs;
	u64 enqueued_bytes;
	u64 dequeued_msgs;
	u64 dequeued_bytes;
	u64 dropped_newest;
	u64 dropped_oldest;
	u64 flushed;
	u64 backpressure_applied;
	u64 blocked_ns;
	u64 throttled_ns;
	u64 timeouts;
	u64 credit_starvation;
	u64 credit_starved_ns;
	u64 acked_msgs;
	u64 nacked;
	u64 stale_acks;
	u64 congestion_events;
	u64 ack_timeouts;
	u64 cwnd_limited_ns;
	u64 partial_reads;
	u64 held_ns;
	u64 latency_hist[BPQ_LATENCY_BUCKETS];
	u64 processing_hist[BPQ_LATENCY_BUCKETS];
};

/* The histogram bucket of a time of @ns: below 2^(10 + i) ns */
static inline unsigned int bpq_latency_bucket(u64 ns)
{
	return min_t(unsigned int, fls64(ns >> 10), BPQ_LATENCY_BUCKETS - 1);
}

/* Writers held back, as PSI measures tasks (stall.c); under q->lock */
#define BPQ_STALL_SOME		BIT(0)	/* a writer waits */
#define BPQ_STALL_FULL		BIT(1)	/* and a reader, on the empty queue */
#define BPQ_STALL_KINDS		2
#define BPQ_STALL_AVGS		3	/* 10 s, 60 s, 300 s */

struct bpq_stall {
	u8 state;			/* BPQ_STALL_* since @since */
	u64 since;			/* ns */
	u64 total[BPQ_STALL_KINDS];	/* ns, up to @since */
	u64 avg_total[BPQ_STALL_KINDS];	/* @total at the last period's end */
	u64 avg_next;			/* ns: the end of this period */
	unsigned long avg[BPQ_STALL_KINDS][BPQ_STALL_AVGS]; /* % in FIXED_1 */
};

/* The window strategy's state (window.c) */
struct bpq_window {
	u32 cwnd;
	u32 ssthresh;
	u32 cnt;			/* acks towards avoidance's next +1 */
	bool limited;			/* a writer waited for it this round */
	u64 acked;			/* messages that left the flight */
	u64 round_end;			/* acked at the end of this round */
	u64 recover_end;		/* acked at the end of a recovery */
	u64 last_ack;			/* ns: or the start of the flight */
};

struct bpq_adaptive {
	u64 rate;			/* admitted msgs/s */
	u64 tat;			/* GCRA theoretical arrival time, ns */
	u64 interval_start;		/* ns */
	u64 deliveries;			/* in this interval */
	u64 admitted;			/* in this interval */
	bool limited;			/* a writer waited for a token */
	bool starved;			/* a reader found the queue empty */
};

struct bpq_file;

/*
 * A reader's receive ring (BPQ_IOC_RING_SETUP): pages mapped by the
 * reader, written by the kernel. q->lock guards owner, tail and busy; the
 * rest is constant once allocated. The data beyond tail is the busy
 * writer's.
 */
struct bpq_ring {
	struct kref ref;		/* the owner file's, and writers' copying in */
	struct bpq_file *owner;		/* NULL once its file is released */
	struct page **pages;		/* the control page, then the data */
	unsigned int nr_pages;
	struct bpq_ring_ctl *ctl;	/* all pages, mapped in order */
	u8 *data;
	u32 size;			/* of the data, a power of two */
	u64 tail;			/* published; what ctl->tail says */
	bool busy;			/* a writer copies in beyond tail */
	wait_queue_head_t wait;		/* BPQ_IOC_RING_SYNC, under q->lock */
};

struct bpq_queue {
	struct device dev;		/* its refcount is the queue's */
	char name[BPQ_NAME_MAX];	/* constant once created, NUL-padded */
	struct rhash_head name_node;	/* in chrdev.c's index of names */
	u64 id;				/* creation number, never reused */
	struct mutex cfg_mutex;		/* serializes config changes */
	struct mutex read_mutex;	/* BPQ_READ_STREAM: one read() a time */
	struct hrtimer poll_timer;	/* adaptive: EPOLLOUT when a token is due */
	struct fasync_struct *fasync;	/* O_ASYNC files (fasync_helper()) */
	struct mutex trig_mutex;	/* trigger.c: adding and removing */
	struct delayed_work trig_work;	/* trigger.c: while @triggers */

	spinlock_t lock;		/* everything below */
	struct bpq_config cfg;
	struct list_head writers;	/* struct bpq_writer, FIFO */
	struct list_head readers;	/* struct bpq_reader, FIFO */
	wait_queue_head_t poll_wait;	/* its own lock; woken after q->lock */
	u32 depth_msgs;
	u32 inflight;			/* of depth_msgs, being copied out */
	u32 reserved;			/* of depth_msgs, being copied in */
	u32 pins;			/* records taken or reserved, gone or not */
	u64 depth_bytes;
	u64 next_seq;
	u64 credits;
	bool pressure;			/* effective: watermark || holds */
	bool watermark;			/* the watermarks' pressure */
	u8 holds;			/* BPQ_HOLD_* */
	bool dead;			/* set once; READ_ONCE() unlocked */
	struct kernfs_node *kn_pressure; /* sysfs files polled, or NULL */
	struct kernfs_node *kn_stream;
	u32 nr_up;			/* links upstream (and link.c's mutex) */
	u32 nr_down;			/* links downstream: link.c's mutex */
	struct list_head upstream;	/* link.c's struct bpq_edge, its mutex */
	struct list_head downstream;
	struct list_head dirty_node;	/* link.c: to look upstream of */
	u64 link_seen;			/* link.c: its loop search, by number */
	struct list_head triggers;	/* trigger.c: of the open files */
	struct bpq_group *group;	/* group.c: and its mutex to change */
	u32 group_depth;		/* group.c: counted in the groups */
	bool group_held;		/* group.c: its mutex */
	struct list_head group_node;	/* group.c: its mutex */
	struct bpq_counters stats;
	struct bpq_adaptive ad;
	struct bpq_window win;
	struct bpq_stall stall;
	u64 unacked;			/* delivered, not acknowledged */
	struct bpq_ring *ring;		/* the only reader if set; no ref */
	struct list_head log;		/* its pages (page->lru), oldest first */
	struct page *head_page;		/* the oldest record: head_off in it */
	struct page *tail_page;		/* where the next one goes, or NULL */
	u8 *head_base;			/* page_address(head_page) */
	u8 *tail_base;			/* page_address(tail_page) */
	u32 head_off;
	u32 tail_off;			/* 0 ... PAGE_SIZE */
	u64 log_gen;			/* flushes so far: bpq_grave */
	struct page *log_spare;		/* empty, the next one */
	struct bpq_msg *cursor;		/* none before it to take; NULL: head */
	struct bpq_msg *part;		/* read in part: part_off bytes of it */
	u32 part_off;
	struct list_head graves;	/* flushed logs with records pinned */
	u32 nr_files;			/* open files */
	u32 nr_readers;			/* of them, open for reading */
	u32 nr_writers;			/* of them, open for writing */
	u8 stream;			/* enum bpq_stream_state */
	u8 stream_error;		/* of a failed stream, its errno */
	u64 stream_epoch;		/* reopenings */
	u64 lost;			/* dropped or evicted, never reset */
	u64 tp_start;			/* throughput: window start, ns */
	u64 tp_count;			/* throughput: deliveries in window */
	u64 tp_rate;			/* throughput: msgs/s */
};

/* Per open file */
struct bpq_file {
	struct bpq_queue *q;		/* holds a reference on q->dev */
	struct bpq_user *user;		/* holds a reference */
	struct bpq_ring *ring;		/* set once, gone at release */
	fmode_t mode;			/* FMODE_READ, FMODE_WRITE: its sides */
	u64 lost_seen;			/* q->lock */
	struct bpq_trigger_state *trigger; /* set and read under q->lock */
};

/*
 * May @bf act for the side of @mode (FMODE_READ: the consumers',
 * FMODE_WRITE: the producers')? Open for it, or ioctl-only (O_ACCMODE,
 * which open(2) grants only with both permissions), as a supervisor.
 */
static inline bool bpq_file_may(const struct bpq_file *bf, fmode_t mode)
{
	return (bf->mode & mode) || !bf->mode;
}

static inline struct bpq_queue *bpq_dev_queue(struct device *dev)
{
	return container_of(dev, struct bpq_queue, dev);
}

/*
 * How much of @msg a receive has left to take, from *@off on: a read in
 * BPQ_READ_STREAM mode may have taken its front (q->part). Under q->lock.
 */
static inline u32 bpq_msg_rest(const struct bpq_queue *q,
			       const struct bpq_msg *msg, u32 *off)
{
	*off = msg == q->part ? q->part_off : 0;
	return bpq_msg_len(msg) - *off;
}

/*
 * What one hold of q->lock leaves for after its unlock (bpq_unlock()):
 * messages to free, waiters to wake and poll events to report. The
 * kernel's wake_q does not serve a module (wake_q_add() and wake_up_q()
 * are not exported), so the tasks go in a small array, each with a
 * reference, as wake_q_add() takes one: a settled waiter may read its
 * result and leave, and its task exit, before the wake-up. Beyond
 * BPQ_WAKE_MAX tasks in one hold, the rest are woken under the lock.
 */
#define BPQ_WAKE_MAX	16

struct bpq_grave;
struct bpq_trigger_state;
struct bpq_group;

struct bpq_defer {
	struct list_head pages;		/* the log's, emptied, to free */
	__poll_t poll;			/* for q->poll_wait */
	unsigned int nr_wake;
	struct task_struct *wake[BPQ_WAKE_MAX];
};

/* Declared __bpq_noinit: wake[] is written before it is read. */
static inline void bpq_defer_init(struct bpq_defer *df)
{
	INIT_LIST_HEAD(&df->pages);
	df->poll = 0;
	df->nr_wake = 0;
}

/*
 * What bpq_deliver() needs, taken once per hold of the lock:
 * whether the reporting counters run, and the clock if anything uses it.
 */
struct bpq_delivery {
	bool metrics;
	u64 now;
};

/*
 * What a receive reports as lost, and how far that takes the file; and
 * what it copies of the first message it takes.
 */
struct bpq_loss {
	u64 count;
	u64 mark;
	u64 seq;		/* q->next_seq, for bpq_msg_seq() */
	u64 gen;		/* of the log the messages are in */
	u32 from;		/* of the first: where to copy from */
	u32 take;		/* of the first: how much to copy */
};

/*
 * A send (bpq_send()): one message, all of an iov_iter (write(),
 * writev()), or a batch of them from a user array of struct bpq_iovec
 * (BPQ_IOC_SEND_BATCH), taken a chunk at a time into vecs[0 ... n).
 * Declared __bpq_noinit, set up by bpq_tx_init(): the array is written
 * before it is read, and half a KiB of zeroes per write() costs.
 */
struct bpq_tx {
	struct iov_iter *from;			/* the one message, or NULL */
	const struct bpq_iovec __user *uvec;	/* else the batch */
	u32 count;				/* messages in all */
	u32 flags;				/* BPQ_IO_* */
	u32 timeout_ms;
	unsigned int n;				/* in the chunk */
	struct bpq_iovec *vecs;			/* the chunk's lengths */
	struct iov_iter iter;			/* a batch message's source */
	int stall;				/* BPQ_TX_*: bpq_send_many() */
	struct bpq_msg *pending;		/* reserved, to copy in */
	u64 gen;				/* of the log it is in */
	struct bpq_pool pool;			/* pages for the records */
};

/* Why bpq_send_many() stopped before the end of the chunk */
#define BPQ_TX_PAGES	1	/* pool.need pages are needed */
#define BPQ_TX_FAULT	2	/* the payload's page is not there */
#define BPQ_TX_COPY	3	/* tx->pending is the writer's to copy in */

static inline void bpq_tx_init(struct bpq_tx *tx, struct iov_iter *from,
			       const struct bpq_iovec __user *uvec, u32 count,
			       u32 flags, u32 timeout_ms)
{
	tx->from = from;
	tx->uvec = uvec;
	tx->count = count;
	tx->flags = flags;
	tx->timeout_ms = timeout_ms;
}

/* The source of message @i of the chunk in hand. */
static inline struct iov_iter *bpq_tx_iter(struct bpq_tx *tx, unsigned int i)
{
	if (tx->from)
		return tx->from;
	iov_iter_ubuf(&tx->iter, ITER_SOURCE,
		      u64_to_user_ptr(tx->vecs[i].base), tx->vecs[i].len);
	return &tx->iter;
}

/*
 * A receive (bpq_recv()): up to max messages, their payloads one after
 * another into one iov_iter, and with info each one's struct
 * bpq_msg_info into the user array uinfos (read() and readv() have none).
 */
/* Of bpq_rx.flags, besides BPQ_IO_*: a read in BPQ_READ_STREAM mode */
#define BPQ_IO_STREAM	BIT(31)

struct bpq_rx {
	struct iov_iter *to;
	struct bpq_msg_info __user *uinfos;
	bool info;
	u32 max;
	u32 flags;				/* BPQ_IO_* */
	u32 timeout_ms;
	u32 bytes;				/* out: payload delivered */
};

/* bpq_try_admit(): the writer must wait; not an errno */
#define BPQ_PENDING	1
/* bpq_commit(): the message left the queue before its copy faulted */
#define BPQ_GONE	2

/* A blocked reader, on q->readers: its own stack's (bpq_recv_begin()) */
struct bpq_reader {
	struct list_head node;
	struct task_struct *task;
	struct bpq_msg *msg;		/* handed over, or NULL */
	u64 gen;			/* of the log it is in */
	int result;
};

struct bpq_msg *bpq_log_next_page(struct bpq_queue *q,
				  const struct bpq_msg *msg);

/* The bytes of @len's record in the log (msg.c) */
static inline u32 bpq_rec_size(u32 len)
{
	return sizeof(struct bpq_msg) + ALIGN(len, 8);
}

static inline bool bpq_log_empty(const struct bpq_queue *q)
{
	return q->head_off == q->tail_off && q->head_page == q->tail_page;
}

/* The oldest record of the log, or NULL. Under q->lock. */
static inline struct bpq_msg *bpq_log_first(struct bpq_queue *q)
{
	if (bpq_log_empty(q))
		return NULL;
	return (struct bpq_msg *)(q->head_base + q->head_off);
}

/*
 * The record after @msg, or NULL. Under q->lock. One that starts in the
 * same page is found by address alone: the tail, at most a page's end,
 * is never there.
 */
static inline struct bpq_msg *bpq_log_next(struct bpq_queue *q,
					   const struct bpq_msg *msg)
{
	u32 size = bpq_rec_size(bpq_msg_len(msg));
	u8 *next = (u8 *)msg + size;

	if (likely(offset_in_page(msg) + size <=
		   PAGE_SIZE - sizeof(struct bpq_msg)))
		return next == q->tail_base + q->tail_off ? NULL :
			(struct bpq_msg *)next;
	return bpq_log_next_page(q, msg);
}

/*
 * Has @q's stream ended with nothing of it left to come: no message
 * queued, none being copied into its ring? Then readers meet the end.
 */
static inline bool bpq_stream_drained(const struct bpq_queue *q)
{
	return q->stream && !q->depth_msgs && !(q->ring && q->ring->busy);
}

/* queue.c: the queue; under q->lock where it says lockdep_assert_held() */
void bpq_queue_init(struct bpq_queue *q);
void bpq_settle_writers(struct bpq_queue *q, int result, struct bpq_defer *df);
void bpq_settle_readers(struct bpq_queue *q, int result, struct bpq_defer *df);
void bpq_queue_free_msgs(struct bpq_queue *q);
u32 bpq_detach_msgs(struct bpq_queue *q, struct list_head *doomed,
		    struct bpq_grave **grave);
void bpq_queue_kill(struct bpq_queue *q);
void bpq_unlock(struct bpq_queue *q, struct bpq_defer *df)
	__releases(&q->lock);
int bpq_sleep(struct bpq_queue *q, struct bpq_defer *df, ktime_t deadline)
	__must_hold(&q->lock);
ktime_t bpq_deadline(ktime_t start, u32 flags, u32 timeout_ms, u32 dflt_ms);
void bpq_kill_fasync(struct bpq_queue *q, __poll_t mask);

/* Report @mask to the pollers, after the unlock (bpq_unlock()). */
static inline void bpq_wake_pollers(struct bpq_queue *q,
				    struct bpq_defer *df, __poll_t mask)
{
	lockdep_assert_held(&q->lock);
	df->poll |= mask;
	/* read without the lock, as kill_fasync() does */
	if (q->fasync)
		bpq_kill_fasync(q, mask);
}

void bpq_update_pressure(struct bpq_queue *q, struct bpq_defer *df);
void bpq_admit_writers(struct bpq_queue *q, struct bpq_defer *df);
void bpq_discard(struct bpq_queue *q, struct bpq_msg *msg,
		 struct bpq_defer *df);
struct bpq_msg *bpq_first_avail(struct bpq_queue *q);
struct bpq_msg *bpq_next_avail(struct bpq_queue *q, struct bpq_msg *msg);
void bpq_take(struct bpq_queue *q, struct bpq_msg *msg);
void bpq_read_part(struct bpq_queue *q, struct bpq_msg *msg, u32 off,
		   struct bpq_defer *df);
void bpq_untake(struct bpq_queue *q, struct bpq_msg *msg,
		struct bpq_defer *df);
bool bpq_pin_gone(struct bpq_queue *q, struct bpq_msg *msg, u64 gen,
		  struct bpq_defer *df);
struct bpq_msg *bpq_first_queued(struct bpq_queue *q);
u64 bpq_head_age_us(struct bpq_queue *q);
u64 bpq_head_age(struct bpq_queue *q, u64 now);
bool bpq_too_big(struct bpq_queue *q, u32 len);
struct bpq_delivery bpq_delivery_start(struct bpq_queue *q);
void bpq_deliver(struct bpq_queue *q, struct bpq_msg *msg,
		 const struct bpq_delivery *d, struct bpq_defer *df);
void bpq_room_made(struct bpq_queue *q, struct bpq_defer *df);
void bpq_account_direct(struct bpq_queue *q, u32 msgs, u64 bytes);
u32 bpq_utilization(struct bpq_queue *q);
__poll_t bpq_poll_mask(struct bpq_queue *q, struct bpq_file *bf);
unsigned int bpq_send_many(struct bpq_file *bf, struct bpq_tx *tx,
			   unsigned int from, int *err);
int bpq_commit(struct bpq_file *bf, struct bpq_tx *tx, bool copied);

/* msg.c: the message log */
void bpq_log_init(struct bpq_queue *q);
struct bpq_msg *bpq_log_append(struct bpq_queue *q, u32 len,
			       struct bpq_pool *pool);
void bpq_log_unappend(struct bpq_queue *q, struct bpq_msg *msg,
		      struct bpq_pool *pool);
void bpq_log_trim(struct bpq_queue *q, struct bpq_defer *df);
u64 bpq_log_detach(struct bpq_queue *q, struct list_head *doomed,
		   struct bpq_grave **grave, u32 pins);
void bpq_log_unpin(struct bpq_queue *q, u64 gen, struct bpq_defer *df);
void bpq_log_idle(struct bpq_queue *q, struct bpq_defer *df);
void bpq_log_free(struct bpq_queue *q);
void bpq_pages_free(struct list_head *pages, bool resched);
struct bpq_grave *bpq_grave_alloc(void);
void bpq_pool_init(struct bpq_pool *pool, struct bpq_user *user, bool alloc);
int bpq_pool_fill(struct bpq_pool *pool, struct bpq_user *hint);
void bpq_pool_drain(struct bpq_pool *pool);
u32 bpq_log_pages_max(u32 len);
bool bpq_msg_copy_in(struct bpq_msg *msg, u32 len, struct iov_iter *from);
size_t bpq_msg_copy_out(const struct bpq_msg *msg, u32 from, u32 len,
			struct iov_iter *to);
void bpq_msg_read(const struct bpq_msg *msg, u32 from, u32 len, void *to);

/* config.c */
extern const struct bpq_config bpq_default_config;
int bpq_check_config(const struct bpq_config *cfg);
int bpq_set_config(struct bpq_queue *q, const struct bpq_config *cfg,
		   size_t size);
int bpq_update_config(struct bpq_queue *q,
		      int (*modify)(struct bpq_config *cfg, const char *arg),
		      const char *arg);
int bpq_get_config(struct bpq_queue *q, struct bpq_config *cfg);
int bpq_get_stats(struct bpq_queue *q, struct bpq_stats *st);
int bpq_reset_stats(struct bpq_queue *q);
int bpq_grant(struct bpq_queue *q, u32 flags, u64 credits);
int bpq_flush(struct bpq_queue *q, bool cancel);

/* stream.c */
void bpq_stream_check(struct bpq_queue *q, struct bpq_defer *df);
void bpq_stream_cancel(struct bpq_queue *q, struct bpq_defer *df);
int bpq_shutdown(struct bpq_file *bf, u32 flags, u32 err);
int bpq_stream_format(struct bpq_queue *q, char *buf, size_t size);
int bpq_stream_store(struct bpq_queue *q, const char *buf);
int bpq_stream_opened(struct bpq_queue *q, fmode_t mode, u64 *lost_seen);
void bpq_stream_closed(struct bpq_queue *q, fmode_t mode);

/* io.c */
struct kiocb;
ssize_t bpq_read_iter(struct kiocb *iocb, struct iov_iter *to);
ssize_t bpq_write_iter(struct kiocb *iocb, struct iov_iter *from);
int bpq_send(struct bpq_file *bf, struct bpq_tx *tx);
int bpq_recv(struct bpq_file *bf, struct bpq_rx *rx);

/* ring.c */
struct bpq_ring *bpq_ring_alloc(u32 size);
void bpq_ring_put(struct bpq_ring *ring);
int bpq_ring_mmap(struct bpq_ring *ring, struct vm_area_struct *vma);
bool bpq_ring_takes(u32 size, u32 max_msg_size);
int bpq_ring_attach(struct bpq_queue *q, struct bpq_file *bf, u32 size);
void bpq_ring_detach(struct bpq_queue *q, struct bpq_file *bf);
int bpq_ring_sync(struct bpq_queue *q, struct bpq_file *bf, u32 flags,
		  u32 timeout_ms);
void bpq_ring_fill(struct bpq_queue *q, struct bpq_defer *df);
int bpq_ring_send(struct bpq_queue *q, struct bpq_tx *tx);
u64 bpq_ring_head(const struct bpq_ring *ring);

/* hold.c */
void bpq_notify_init(struct bpq_queue *q);
void bpq_notify_exit(struct bpq_queue *q);
void bpq_notify(struct kernfs_node *kn);
int bpq_hold(struct bpq_queue *q, u32 mask, bool on);
ssize_t bpq_hold_format(u32 holds, bool watermark, char *buf);
int bpq_hold_store(struct bpq_queue *q, const char *buf);

/* stall.c */
void bpq_stall_init(struct bpq_stall *s, u64 now);
void bpq_stall_tick(struct bpq_queue *q);
void bpq_stall_totals(struct bpq_queue *q, u64 *some_us, u64 *full_us);
u64 bpq_stall_total(struct bpq_queue *q, unsigned int kind, u64 now);
ssize_t bpq_stall_format(struct bpq_queue *q, char *buf);

/* group.c */
int bpq_group_init(void);
void bpq_group_exit(void);
int bpq_group_create(const struct bpq_group_create *arg);
int bpq_group_destroy(const char *name);
int bpq_group_join(struct bpq_queue *q, const char *name);
void bpq_group_remove(struct bpq_queue *q);
void bpq_group_account(struct bpq_queue *q);
ssize_t bpq_group_format(struct bpq_queue *q, char *buf);

/* trigger.c */
void bpq_trigger_init(struct bpq_queue *q);
int bpq_trigger_set(struct bpq_queue *q, struct bpq_file *bf,
		    const struct bpq_trigger *arg);
void bpq_trigger_remove(struct bpq_queue *q, struct bpq_file *bf);
bool bpq_trigger_poll(struct bpq_file *bf, bool *has_trigger);
void bpq_trigger_show(struct seq_file *m, struct bpq_queue *q,
		      struct bpq_file *bf);

/* link.c */
void bpq_link_dirty(struct bpq_queue *q);
int bpq_link_add(struct bpq_queue *up, struct bpq_queue *down);
int bpq_link_del(struct bpq_queue *up, struct bpq_queue *down);
void bpq_link_remove_all(struct bpq_queue *q);
ssize_t bpq_link_format(struct bpq_queue *q, bool up, char *buf);
void bpq_link_exit(void);

/* window.c */
u64 bpq_window_inflight(const struct bpq_queue *q);
void bpq_window_start(struct bpq_queue *q, u64 now);
void bpq_window_clamp(struct bpq_queue *q);
u32 bpq_window_state(const struct bpq_queue *q);
void bpq_window_limited(struct bpq_queue *q);
void bpq_window_tick(struct bpq_queue *q, u64 now);
void bpq_window_delivered(struct bpq_queue *q, u64 tstamp, u64 now);
int bpq_ack(struct bpq_queue *q, u32 flags, u32 count, u64 tstamp);

/* adaptive.c */
void bpq_adaptive_start(struct bpq_queue *q, u64 now);
void bpq_adaptive_clamp(struct bpq_queue *q);
void bpq_adaptive_tick(struct bpq_queue *q, u64 now);
u64 bpq_adaptive_ready_at(struct bpq_queue *q);
void bpq_adaptive_admit(struct bpq_queue *q, u64 now);
void bpq_adaptive_delivered(struct bpq_queue *q);

/* chrdev.c */
extern const struct file_operations bpq_fops;
extern struct class bpq_class;
int bpq_chrdev_init(void);
void bpq_chrdev_exit(void);
int bpq_queue_create(const char *name, u64 *id);
int bpq_queue_destroy(u32 index, u64 id);
int bpq_queue_link(u32 up, u32 down, bool add);
int bpq_queue_join(u32 index, const char *group);
void bpq_queue_destroy_all(void);

/* ioctl.c */
long bpq_ioctl(struct file *file, unsigned int cmd, unsigned long arg);

/* sysfs.c */
extern const struct attribute_group *bpq_groups[];
const char *bpq_strategy_name(u32 strategy);

/* user.c */
struct bpq_user *bpq_user_get(void);
struct bpq_user *bpq_user_charge_current(struct bpq_user *hint, size_t len);
void bpq_user_put(struct bpq_user *u);
void bpq_user_uncharge(struct bpq_user *u, size_t len);
bool bpq_user_try_charge(struct bpq_user *u, size_t len);
bool bpq_user_is_current(const struct bpq_user *u);

/* control.c */
int bpq_control_init(void);
bool bpq_name_valid(const char *name, size_t size);
void bpq_control_exit(void);

#endif /* _BPQ_BPQ_H */
