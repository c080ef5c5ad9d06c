// SPDX-License-Identifier: GPL-2.0
/*
 * Receive rings: the memory a reader maps and the writers deliver into.
 *
 * This file knows the ring's memory and record layout; queue.c decides
 * what goes in, under q->lock. The kernel only ever writes the data area
 * and reads nothing back from it, so the one word it takes from the
 * reader, the head, can only tell it how much room there is: a reader
 * that moves its head wrongly garbles its own messages, never the
 * kernel's memory, as every position is masked into the data area.
 */
#include <linux/mm.h>
#include <linux/slab.h>
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
u64 bpq_ring_end(const struct bpq_ring *ring, u64 pos, u32 len)
{
	return bpq_ring_start(ring, pos, len) + BPQ_RING_RECORD(len);
}

/*
 * The record for @len bytes at *@pos, reserved before; a lap it skips is
 * marked with a pad where a header fits. *@pos moves past it.
 */
struct bpq_ring_rec *bpq_ring_slot(struct bpq_ring *ring, u64 *pos, u32 len)
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
void bpq_ring_publish(struct bpq_ring *ring, u64 tail)
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
u64 bpq_ring_need_sync(struct bpq_ring *ring, bool need)
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
