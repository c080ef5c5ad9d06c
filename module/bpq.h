/* SPDX-License-Identifier: GPL-2.0 */
#ifndef _BPQ_BPQ_H
#define _BPQ_BPQ_H

#include <linux/bits.h>
#include <linux/cdev.h>
#include <linux/device.h>
#include <linux/hrtimer.h>
#include <linux/kref.h>
#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/spinlock.h>
#include <linux/types.h>
#include <linux/wait.h>
#include <linux/bpq.h>

#define BPQ_CAPACITY_MSGS_MAX	BIT(20)
#define BPQ_CAPACITY_BYTES_MAX	BIT_ULL(30)
#define BPQ_MSG_SIZE_MAX	(4U << 20)
#define BPQ_BATCH_MAX		1024U
#define BPQ_BATCH_CHUNK		32U	/* messages per lock hold */

/* struct bpq_msg.flags */
#define BPQ_MSG_INFLIGHT	BIT(0)	/* a reader is copying it out */
#define BPQ_MSG_GONE		BIT(1)	/* evicted or flushed while in flight */

struct bpq_user;

/*
 * A message. Small payloads follow the header in one allocation; large
 * ones get their own, so that a 64 KiB payload does not round up to a
 * 128 KiB block.
 */
struct bpq_msg {
	struct list_head node;
	struct bpq_user *user;		/* charged with len bytes */
	u8 *data;
	u64 seq;
	u64 tstamp;
	u32 len;
	u32 flags;
	u8 inline_data[];
};

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
	u64 latency_hist[BPQ_LATENCY_BUCKETS];
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
 * reader, written by the kernel. q->lock guards what is not constant.
 */
struct bpq_ring {
	struct kref ref;		/* the owner file's, and writers' copying in */
	struct bpq_file *owner;
	struct page **pages;		/* the control page, then the data */
	unsigned int nr_pages;
	struct bpq_ring_ctl *ctl;	/* all pages, mapped in order */
	u8 *data;
	u32 size;			/* of the data, a power of two */
	u64 tail;			/* published; what ctl->tail says */
	bool busy;			/* a writer copies in beyond tail */
	wait_queue_head_t wait;		/* BPQ_IOC_RING_SYNC waiters */
};

/* A writer's reservation in a ring (bpq_ring_send_begin()) */
struct bpq_ring_send {
	struct bpq_ring *ring;
	u64 pos;			/* where the next record goes */
	u64 seq;			/* of the first message */
	u64 tstamp;
	u64 lost;			/* for the first record */
	u64 lost_seen;			/* the owner's, before */
	unsigned int n;			/* messages reserved */
	unsigned int done;		/* records written */
};

struct bpq_queue {
	struct device dev;
	struct cdev cdev;
	char name[BPQ_NAME_MAX];
	struct mutex cfg_mutex;		/* serializes config changes */
	struct hrtimer poll_timer;	/* adaptive: EPOLLOUT when a token is due */
	struct fasync_struct *fasync;	/* O_ASYNC files (fasync_helper()) */

	spinlock_t lock;		/* everything below */
	struct bpq_config cfg;
	struct list_head msgs;		/* oldest first, in-flight ones too */
	struct list_head writers;	/* struct bpq_writer, FIFO */
	struct list_head readers;	/* struct bpq_reader, FIFO */
	wait_queue_head_t poll_wait;
	u32 depth_msgs;
	u32 inflight;			/* of depth_msgs, being copied out */
	u64 depth_bytes;
	u64 next_seq;
	u64 credits;
	bool pressure;
	bool dead;
	struct bpq_counters stats;
	struct bpq_adaptive ad;
	struct bpq_ring *ring;		/* the only reader, if set */
	u64 lost;			/* dropped or evicted, never reset */
	u64 tp_start;			/* throughput: window start, ns */
	u64 tp_count;			/* throughput: deliveries in window */
	u64 tp_rate;			/* throughput: msgs/s */
};

/* Per open file */
struct bpq_file {
	struct bpq_queue *q;
	struct bpq_user *user;
	struct bpq_ring *ring;		/* set once, gone at release */
	u64 lost_seen;
};

static inline struct bpq_queue *bpq_dev_queue(struct device *dev)
{
	return container_of(dev, struct bpq_queue, dev);
}

/* queue.c */

/* What a receive reports as lost, and how far that takes the file. */
struct bpq_loss {
	u64 count;
	u64 mark;
};

void bpq_queue_init(struct bpq_queue *q);
void bpq_queue_free_msgs(struct bpq_queue *q);
void bpq_queue_kill(struct bpq_queue *q);
int bpq_check_config(const struct bpq_config *cfg);
int bpq_set_config(struct bpq_queue *q, const struct bpq_config *cfg);
int bpq_update_config(struct bpq_queue *q,
		      int (*modify)(struct bpq_config *cfg, const char *arg),
		      const char *arg);
int bpq_get_config(struct bpq_queue *q, struct bpq_config *cfg);
int bpq_get_stats(struct bpq_queue *q, struct bpq_stats *st);
int bpq_reset_stats(struct bpq_queue *q);
int bpq_grant(struct bpq_queue *q, u64 credits);
int bpq_flush(struct bpq_queue *q);
u64 bpq_lost_total(struct bpq_queue *q);
u32 bpq_utilization(struct bpq_queue *q);
__poll_t bpq_poll_mask(struct bpq_queue *q, struct bpq_file *bf);
int bpq_ring_attach(struct bpq_queue *q, struct bpq_file *bf, u32 size);
void bpq_ring_detach(struct bpq_queue *q, struct bpq_file *bf);
int bpq_ring_sync(struct bpq_queue *q, struct bpq_file *bf, u32 flags,
		  u32 timeout_ms);
unsigned int bpq_ring_send_begin(struct bpq_queue *q, const u32 *lens,
				 unsigned int n, struct bpq_ring_send *rs);
void *bpq_ring_send_slot(struct bpq_ring_send *rs, u32 len);
int bpq_ring_send_end(struct bpq_queue *q, struct bpq_ring_send *rs,
		      const u32 *lens, unsigned int copied);

struct bpq_msg *bpq_msg_alloc(struct bpq_file *bf, size_t len);
void bpq_msg_free(struct bpq_msg *msg);
int bpq_send(struct bpq_queue *q, struct bpq_msg *msg, u32 flags,
	     u32 timeout_ms);
int bpq_send_many(struct bpq_queue *q, struct bpq_msg **msgs, unsigned int n,
		  u32 flags, u32 timeout_ms);
unsigned int bpq_recv_more(struct bpq_queue *q, struct bpq_msg **msgs,
			   unsigned int max, size_t room, u64 *mark);
unsigned int bpq_recv_end_many(struct bpq_queue *q, struct bpq_file *bf,
			       struct bpq_msg **msgs, unsigned int n,
			       unsigned int copied, u64 mark);
struct bpq_msg *bpq_recv_begin(struct bpq_queue *q, struct bpq_file *bf,
			       size_t room, u32 flags, u32 timeout_ms,
			       struct bpq_loss *loss);
bool bpq_recv_end(struct bpq_queue *q, struct bpq_file *bf,
		  struct bpq_msg *msg, bool delivered,
		  const struct bpq_loss *loss);

/* ring.c */
struct bpq_ring *bpq_ring_alloc(u32 size);
void bpq_ring_put(struct bpq_ring *ring);
int bpq_ring_mmap(struct bpq_ring *ring, struct vm_area_struct *vma);
bool bpq_ring_takes(u32 size, u32 max_msg_size);
u64 bpq_ring_head(const struct bpq_ring *ring);
u64 bpq_ring_end(const struct bpq_ring *ring, u64 pos, u32 len);
struct bpq_ring_rec *bpq_ring_slot(struct bpq_ring *ring, u64 *pos, u32 len);
void bpq_ring_publish(struct bpq_ring *ring, u64 tail);
u64 bpq_ring_need_sync(struct bpq_ring *ring, bool need);

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
struct bpq_queue *bpq_queue_create(const char *name);
int bpq_queue_destroy(u32 index);
void bpq_queue_destroy_all(void);

/* ioctl.c */
long bpq_ioctl(struct file *file, unsigned int cmd, unsigned long arg);
long bpq_control_ioctl(struct file *file, unsigned int cmd,
		       unsigned long arg);
ssize_t bpq_recv_batch(struct bpq_file *bf, struct bpq_recv_batch *rb);

/* sysfs.c */
extern const struct attribute_group *bpq_groups[];
const char *bpq_strategy_name(u32 strategy);

/* user.c */
struct bpq_user *bpq_user_get(void);
struct bpq_user *bpq_user_charge_current(struct bpq_user *hint, size_t len);
void bpq_user_put(struct bpq_user *u);
void bpq_user_uncharge(struct bpq_user *u, size_t len);

/* control.c */
int bpq_control_init(void);
void bpq_control_exit(void);

#endif /* _BPQ_BPQ_H */
