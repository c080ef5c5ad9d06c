// SPDX-License-Identifier: GPL-2.0
/*
 * Receive rings: the memory a reader maps and the writers deliver into.
 *
 * This file owns everything about rings: their memory and record layout,
 * attaching and detaching, filling them from the queue under q->lock,
 * BPQ_IOC_RING_SYNC, and the writers' fast path. The kernel only ever
 * writes the data area
 * and reads nothing back from it, so the one word it takes from the
 * reader, the head, can only tell it how much room there is: a reader
 * that moves its head wrongly garbles its own messages, never the
 * kernel's memory, as every position is masked into the data area.
 */
#include <linux/mm.h>
#include <linux/poll.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/uio.h>
#include <linux/vmalloc.h>

#include "bpq.h"

/* Positions are u64, read and published with single loads and stores. */
#ifndef CONFIG_64BIT
#error "bpq's receive rings need a 64-bit kernel"
#endif

struct bpq_ring *bpq_ring_alloc(u32 size)
{
	struct bpq_ring *ring;
	unsigned int i;

	ring = kzalloc(sizeof(*ring), GFP_KERNEL_ACCOUNT);
	if (!ring)
		return NULL;
	kref_init(&ring->ref);
	init_waitqueue_head(&ring->wait);
	ring->size = size;
	ring->nr_pages = 1 + size / PAGE_SIZE;
	ring->pages = kvcalloc(ring->nr_pages, sizeof(*ring->pages),
			       GFP_KERNEL_ACCOUNT);
	if (!ring->pages)
		goto fail;
	for (i = 0; i < ring->nr_pages; i++) {
		ring->pages[i] = alloc_page(GFP_KERNEL_ACCOUNT | __GFP_ZERO |
					    __GFP_RETRY_MAYFAIL | __GFP_NOWARN);
		if (!ring->pages[i])
			goto fail;
	}
	ring->ctl = vmap(ring->pages, ring->nr_pages, VM_MAP, PAGE_KERNEL);
	if (!ring->ctl)
		goto fail;
	ring->data = (u8 *)ring->ctl + PAGE_SIZE;
	ring->ctl->ring_bytes = size;
	return ring;
fail:
	bpq_ring_put(ring);
	return NULL;
}

static void bpq_ring_free(struct kref *ref)
{
	struct bpq_ring *ring = container_of(ref, struct bpq_ring, ref);
	unsigned int i;

	if (ring->ctl)
		vunmap(ring->ctl);
	for (i = 0; ring->pages && i < ring->nr_pages; i++)
		if (ring->pages[i])
			__free_page(ring->pages[i]);
	kvfree(ring->pages);
	kfree(ring);
}

/* Not under q->lock: the last reference unmaps, which may sleep. */
void bpq_ring_put(struct bpq_ring *ring)
{
	might_sleep();
	kref_put(&ring->ref, bpq_ring_free);
}

int bpq_ring_mmap(struct bpq_ring *ring, struct vm_area_struct *vma)
{
	if (vma->vm_pgoff || vma_pages(vma) != ring->nr_pages)
		return -EINVAL;
	/* a private copy would hide the head from us */
	if (!(vma->vm_flags & VM_SHARED) || (vma->vm_flags & VM_EXEC))
		return -EINVAL;
	vm_flags_clear(vma, VM_MAYEXEC);
	vm_flags_set(vma, VM_DONTEXPAND | VM_DONTDUMP);
	return vm_map_pages(vma, ring->pages, ring->nr_pages);
}

/* Can a ring of @size bytes hold two of the largest messages allowed? */
bool bpq_ring_takes(u32 size, u32 max_msg_size)
{
	return max_msg_size <= BPQ_RING_MSG_MAX &&
	       2 * BPQ_RING_RECORD(max_msg_size) <= size;
}

/*
 * The reader's head, as far as it can be true: not beyond what was
 * published, nor more than a ring behind it.
 */
u64 bpq_ring_head(const struct bpq_ring *ring)
{
	/* pairs with the reader's release: it is done with what is below */
	u64 head = smp_load_acquire(&ring->ctl->head);

	if (head > ring->tail)
		return ring->tail;
	if (ring->tail - head > ring->size)
		return ring->tail - ring->size;
	return head;
}

/* Where a record of @len bytes goes at @pos: there, or the next lap. */
static u64 bpq_ring_start(const struct bpq_ring *ring, u64 pos, u32 len)
{
	u32 left = ring->size - (pos & (ring->size - 1));

	return left < BPQ_RING_RECORD(len) ? pos + left : pos;
}

/*
 * Where a record of @len bytes after @pos would end; the ring has room
 * for it if that is no more than a ring beyond @head.
 */
static u64 bpq_ring_end(const struct bpq_ring *ring, u64 pos, u32 len)
{
	return bpq_ring_start(ring, pos, len) + BPQ_RING_RECORD(len);
}

/*
 * The record for @len bytes at *@pos, reserved before; a lap it skips is
 * marked with a pad where a header fits. *@pos moves past it.
 */
static struct bpq_ring_rec *bpq_ring_slot(struct bpq_ring *ring, u64 *pos,
					  u32 len)
{
	u64 start = bpq_ring_start(ring, *pos, len);
	u32 left = start - *pos;
	struct bpq_ring_rec *rec;

	if (left >= sizeof(*rec)) {
		rec = (void *)(ring->data + (*pos & (ring->size - 1)));
		*rec = (struct bpq_ring_rec){ .flags = BPQ_RING_PAD };
	}
	*pos = start + BPQ_RING_RECORD(len);
	return (void *)(ring->data + (start & (ring->size - 1)));
}

/* Make what is below @tail visible to the reader, and wake it. */
static void bpq_ring_publish(struct bpq_ring *ring, u64 tail)
{
	ring->tail = tail;
	/* records first, then the position that shows them */
	smp_store_release(&ring->ctl->tail, tail);
	/* waiters queue themselves under q->lock, which we hold */
	if (waitqueue_active(&ring->wait))
		wake_up_interruptible(&ring->wait);
}

/*
 * Ask the reader to call BPQ_IOC_RING_SYNC once it has taken a quarter of
 * the ring, or all of it, or stop asking. Returns the head to fill up to:
 * read after the flag is set, so that either the reader sees the flag or
 * we see its new head (as virtio's event index).
 */
static u64 bpq_ring_need_sync(struct bpq_ring *ring, bool need)
{
	u64 head = bpq_ring_head(ring);

	if (!need) {
		if (READ_ONCE(ring->ctl->flags) & BPQ_RING_NEED_SYNC)
			WRITE_ONCE(ring->ctl->flags, 0);
		return head;
	}
	WRITE_ONCE(ring->ctl->sync_head,
		   min(head + ring->size / 4, ring->tail));
	smp_wmb(); /* the reader reads the flag first, then where to sync */
	WRITE_ONCE(ring->ctl->flags, BPQ_RING_NEED_SYNC);
	smp_mb(); /* pairs with the reader's barrier after its head */
	return bpq_ring_head(ring);
}

/*
 * Receive rings. A ring is the queue's one reader, and always ready: a
 * message moves into it as soon as it is queued and the ring has room,
 * and counts as delivered there. What does not fit waits in the queue,
 * under its capacity and strategy, until the reader has made room and
 * says so (BPQ_IOC_RING_SYNC, asked for by BPQ_RING_NEED_SYNC).
 */

/* What one hold of the lock moves into a ring, beyond a message a pass */
#define BPQ_RING_FILL_BYTES	(64U << 10)	/* of records */
#define BPQ_RING_FILL_MSGS	256U

static void bpq_ring_write(struct bpq_queue *q, struct bpq_ring_rec *rec,
			   u32 len, u64 seq, u64 tstamp)
{
	struct bpq_file *bf = q->ring->owner;

	*rec = (struct bpq_ring_rec){
		.len = len,
		.seq = seq,
		.timestamp_ns = tstamp,
		.lost = q->lost - bf->lost_seen,
	};
	bf->lost_seen = q->lost;
}

/*
 * Move waiting messages into the ring, oldest first, while it has room
 * and the budget lasts. What is left waiting has the reader asked to
 * sync; if its head moved meanwhile, one more pass, which moves at least
 * one message, so that a reader who emptied the ring before it saw the
 * flag is not left waiting. Two passes at most: a reader that keeps
 * moving its head cannot hold us here.
 */
void bpq_ring_fill(struct bpq_queue *q, struct bpq_defer *df)
{
	struct bpq_ring *ring = q->ring;
	u32 bytes = 0, msgs = 0, moved;
	struct bpq_delivery d = { };
	struct bpq_ring_rec *rec;
	struct bpq_msg *msg;
	u64 head, seen, pos;
	bool again = true;

	lockdep_assert_held(&q->lock);
	/* a writer copying in beyond the tail fills after itself */
	if (!ring || ring->busy)
		return;
	head = bpq_ring_head(ring);
	for (;;) {
		pos = ring->tail;
		moved = 0;
		while ((msg = bpq_first_avail(q))) {
			u32 from, len = bpq_msg_rest(q, msg, &from);
			u32 rec_len = BPQ_RING_RECORD(len);

			if (bpq_ring_end(ring, pos, len) - head > ring->size)
				break;
			if (moved && (bytes + rec_len > BPQ_RING_FILL_BYTES ||
				      msgs == BPQ_RING_FILL_MSGS))
				break;
			if (!msgs)
				d = bpq_delivery_start(q);
			bytes += rec_len;
			msgs++;
			moved++;
			rec = bpq_ring_slot(ring, &pos, len);
			bpq_ring_write(q, rec, len,
				       bpq_msg_seq(msg, q->next_seq),
				       msg->tstamp);
			bpq_msg_read(msg, from, len, rec + 1);
			bpq_deliver(q, msg, &d, df);
		}
		if (moved) {
			bpq_ring_publish(ring, pos);
			bpq_wake_pollers(q, df, EPOLLIN | EPOLLRDNORM);
		}
		if (!msg) {
			bpq_ring_need_sync(ring, false);
			return;
		}
		seen = bpq_ring_need_sync(ring, true);
		if (seen == head || !again)
			return;
		head = seen;
		again = false;
	}
}

/* Fill the ring, and let in the writers that the room it made admits. */
static void bpq_ring_refill(struct bpq_queue *q, struct bpq_defer *df)
{
	u32 depth = q->depth_msgs;

	bpq_ring_fill(q, df);
	if (q->depth_msgs != depth)
		bpq_room_made(q, df);
}

/* Can @bf have a ring of @size bytes now? */
static int bpq_ring_check(struct bpq_queue *q, struct bpq_file *bf, u32 size)
{
	struct bpq_msg *msg;

	if (q->dead)
		return -ENODEV;
	if (bf->ring || q->ring || !list_empty(&q->readers) || q->inflight)
		return -EBUSY;
	if (!bpq_ring_takes(size, q->cfg.max_msg_size))
		return -EINVAL;
	/* and what a larger max_msg_size let in before */
	for (msg = bpq_log_first(q); msg; msg = bpq_log_next(q, msg))
		if (!(bpq_msg_flags(msg) & BPQ_MSG_OUT) &&
		    !bpq_ring_takes(size, bpq_msg_len(msg)))
			return -EINVAL;
	return 0;
}

int bpq_ring_attach(struct bpq_queue *q, struct bpq_file *bf, u32 size)
{
	struct bpq_defer df __bpq_noinit;
	struct bpq_ring *ring;
	int ret;

	bpq_defer_init(&df);
	/* the errors first, then the memory (up to 64 MiB), then again */
	spin_lock(&q->lock);
	ret = bpq_ring_check(q, bf, size);
	spin_unlock(&q->lock);
	if (ret)
		return ret;
	ring = bpq_ring_alloc(size);
	if (!ring)
		return -ENOMEM;
	spin_lock(&q->lock);
	ret = bpq_ring_check(q, bf, size);
	if (!ret) {
		ring->owner = bf;
		WRITE_ONCE(q->ring, ring);
		/* bpq_mmap() reads it without the lock */
		smp_store_release(&bf->ring, ring);
		bpq_ring_refill(q, &df);
		if (q->stream)
			bpq_stream_check(q, &df);
	}
	bpq_unlock(q, &df);
	if (ret)
		bpq_ring_put(ring);
	return ret;
}

/* The queue gets plain readers back. */
static void bpq_ring_unlink(struct bpq_queue *q, struct bpq_defer *df)
{
	lockdep_assert_held(&q->lock);
	WRITE_ONCE(q->ring, NULL);
	if (q->depth_msgs)
		bpq_wake_pollers(q, df, EPOLLIN | EPOLLRDNORM);
}

/*
 * At the last close of the ring's file. A writer copying into the ring
 * meanwhile unlinks it when it is done (bpq_ring_send_end()), so that
 * its sequence numbers stay exact; the file is not used after this.
 */
void bpq_ring_detach(struct bpq_queue *q, struct bpq_file *bf)
{
	struct bpq_ring *ring = bf->ring;
	struct bpq_defer df __bpq_noinit;

	bpq_defer_init(&df);
	if (!ring)
		return;
	spin_lock(&q->lock);
	ring->owner = NULL;
	if (!ring->busy)
		bpq_ring_unlink(q, &df);
	bpq_unlock(q, &df);
	bpq_ring_put(ring);
}

/*
 * BPQ_IOC_RING_SYNC: fill the ring; with BPQ_RING_WAIT, wait until it holds
 * a record. Returns the bytes it holds.
 */
int bpq_ring_sync(struct bpq_queue *q, struct bpq_file *bf, u32 flags,
		  u32 timeout_ms)
{
	/* as in bpq_mmap(): set once, whole when seen */
	struct bpq_ring *ring = smp_load_acquire(&bf->ring);
	struct bpq_defer df __bpq_noinit;
	ktime_t deadline = 0;
	DEFINE_WAIT(wait);
	u64 held = 0;
	int ret = 0;

	bpq_defer_init(&df);
	if (!ring)
		return -EINVAL;
	spin_lock(&q->lock);
	for (;;) {
		if (q->dead) {
			ret = -ENODEV;
			break;
		}
		bpq_ring_refill(q, &df);
		held = ring->tail - bpq_ring_head(ring);
		/* a record that came with the timeout or signal still counts */
		if (held || ret || !(flags & BPQ_RING_WAIT))
			break;
		if (bpq_stream_drained(q)) {
			/* end of file */
			if (q->stream == BPQ_STREAM_FAILED)
				ret = -ECONNRESET;
			break;
		}
		if (flags & BPQ_IO_NONBLOCK) {
			ret = -EAGAIN;
			break;
		}
		if (!deadline)
			deadline = bpq_deadline(ktime_get(), flags, timeout_ms,
						0);
		prepare_to_wait(&ring->wait, &wait, TASK_INTERRUPTIBLE);
		ret = bpq_sleep(q, &df, deadline);
		finish_wait(&ring->wait, &wait);
	}
	bpq_unlock(q, &df);
	return held ? held : ret;
}

/* A writer's reservation in the ring (bpq_ring_reserve()) */
struct bpq_ring_send {
	struct bpq_ring *ring;
	u64 pos;			/* where the next record goes */
	u64 seq;			/* of the first message */
	u64 tstamp;
	u64 lost;			/* for the first record */
	u64 lost_seen;			/* the owner's, before */
	unsigned int n;			/* messages reserved */
};

/*
 * Reserve room beyond the tail for the first messages of @tx's chunk, as
 * many as fit and the bound on one copy allows, with the sequence
 * numbers, time and loss count they have as queued now. Returns how many,
 * or 0: the ordinary path.
 */
static unsigned int bpq_ring_reserve(struct bpq_queue *q,
				     const struct bpq_tx *tx,
				     struct bpq_ring_send *rs)
{
	struct bpq_defer df __bpq_noinit;
	struct bpq_ring *ring;
	unsigned int i = 0;
	u64 head, pos;

	bpq_defer_init(&df);
	spin_lock(&q->lock);
	ring = q->ring;
	if (!ring || ring->busy || q->dead || q->stream)
		goto out;
	/* a backlog the reader has made room for goes first */
	if (q->depth_msgs)
		bpq_ring_refill(q, &df);
	if (q->pressure || q->depth_msgs || !list_empty(&q->writers))
		goto out;
	if (q->cfg.strategy == BPQ_STRATEGY_CREDIT ||
	    q->cfg.strategy >= BPQ_STRATEGY_ADAPTIVE)
		goto out;
	head = bpq_ring_head(ring);
	for (pos = ring->tail; i < tx->n; i++) {
		u32 len = tx->vecs[i].len;
		u64 end;

		if (bpq_too_big(q, len) || len > BPQ_RING_MSG_MAX)
			break;
		end = bpq_ring_end(ring, pos, len);
		/* room, and a bound on the copy that holds the others up */
		if (end - head > ring->size ||
		    (i && end - ring->tail > BPQ_RING_FILL_BYTES))
			break;
		pos = end;
	}
	if (!i)
		goto out;
	ring->busy = true;
	kref_get(&ring->ref);
	*rs = (struct bpq_ring_send){
		.ring = ring,
		.pos = ring->tail,
		.seq = q->next_seq + 1,
		.tstamp = ktime_get_ns(),
		.lost = q->lost - ring->owner->lost_seen,
		.lost_seen = ring->owner->lost_seen,
		.n = i,
	};
	q->next_seq += i;
	ring->owner->lost_seen = q->lost;
out:
	bpq_unlock(q, &df);
	return i;
}

/* Where the payload of reserved message @i goes, its header written. */
static void *bpq_ring_send_slot(struct bpq_ring_send *rs, unsigned int i,
				u32 len)
{
	struct bpq_ring_rec *rec = bpq_ring_slot(rs->ring, &rs->pos, len);

	*rec = (struct bpq_ring_rec){
		.len = len,
		.seq = rs->seq + i,
		.timestamp_ns = rs->tstamp,
		.lost = i ? 0 : rs->lost,
	};
	return rec + 1;
}

/*
 * Give back the reservation of @k messages that were not copied in. The
 * ring is the only reader, so no one has seen the sequence numbers of the
 * messages queued since: they move down to close the gap.
 */
static void bpq_ring_unreserve(struct bpq_queue *q, struct bpq_ring_send *rs,
			       unsigned int k, bool none)
{
	struct bpq_msg *msg;

	lockdep_assert_held(&q->lock);
	for (msg = bpq_log_first(q); msg; msg = bpq_log_next(q, msg))
		msg->seq -= k;
	q->next_seq -= k;
	if (none && rs->ring->owner)
		rs->ring->owner->lost_seen = rs->lost_seen;
}

/*
 * Publish the first @copied messages reserved, now in their records.
 * They count as delivered even if the ring's file was closed meanwhile,
 * as messages unread in it then; the ring is unlinked after them.
 * Returns @copied, or -ENODEV.
 */
static int bpq_ring_sent(struct bpq_queue *q, struct bpq_ring_send *rs,
			 const struct bpq_tx *tx, unsigned int copied)
{
	struct bpq_ring *ring = rs->ring;
	struct bpq_defer df __bpq_noinit;
	unsigned int i;
	u64 bytes = 0;
	int ret;

	bpq_defer_init(&df);
	spin_lock(&q->lock);
	ring->busy = false;
	if (q->dead) {
		if (!ring->owner)
			bpq_ring_unlink(q, &df);
		ret = -ENODEV;
		goto out;
	}
	if (copied < rs->n)
		bpq_ring_unreserve(q, rs, rs->n - copied, !copied);
	if (copied) {
		u64 pos = ring->tail;

		for (i = 0; i < copied; i++) {
			pos = bpq_ring_end(ring, pos, tx->vecs[i].len);
			bytes += tx->vecs[i].len;
		}
		bpq_ring_publish(ring, pos);
		bpq_wake_pollers(q, &df, EPOLLIN | EPOLLRDNORM);
		bpq_account_direct(q, copied, bytes);
	}
	if (!ring->owner)
		bpq_ring_unlink(q, &df);
	else
		bpq_ring_refill(q, &df);	/* those who queued meanwhile */
	/* the stream may have ended while we copied: we were its last */
	if (q->stream)
		bpq_stream_check(q, &df);
	ret = copied;
out:
	bpq_unlock(q, &df);
	bpq_ring_put(ring);
	return ret;
}

/*
 * The writers' fast path, for the chunk in hand of @tx. While nothing
 * waits in the queue, a strategy that needs no credit or token admits
 * every message at once, and it may go straight from the writer's buffer
 * into the ring, with no allocation. One writer at a time reserves room
 * beyond the tail (ring->busy) and copies without the lock; others
 * meanwhile queue as usual and follow it into the ring when it
 * publishes. The copy is short (at most BPQ_RING_FILL_BYTES of records)
 * and runs with page faults off: a page that is not there ends it, and
 * that message takes the ordinary path, so that a writer whose fault
 * takes long (userfaultfd, FUSE) holds up no one. Preemption stays on: a
 * writer preempted here holds no lock, and delays only the messages
 * queued behind it. Returns how many of the chunk's
 * messages are in the ring (0: take the ordinary path), or -ENODEV.
 */
int bpq_ring_send(struct bpq_queue *q, struct bpq_tx *tx)
{
	struct bpq_ring_send rs;
	unsigned int i;

	if (!bpq_ring_reserve(q, tx, &rs))
		return 0;
	pagefault_disable();
	for (i = 0; i < rs.n; i++) {
		u32 len = tx->vecs[i].len;

		if (!copy_from_iter_full(bpq_ring_send_slot(&rs, i, len), len,
					 bpq_tx_iter(tx, i)))
			break;
	}
	pagefault_enable();
	return bpq_ring_sent(q, &rs, tx, i);
}
