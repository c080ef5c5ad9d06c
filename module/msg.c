// SPDX-License-Identifier: GPL-2.0
/*
 * Messages and their store.
 *
 * A small message (up to BPQ_CHUNK_MSG_MAX bytes) is carved from its
 * queue's current chunk, a 16 KiB block, under q->lock, by the writer
 * that copies it in during the same hold (bpq_send_many()); it goes back
 * under q->lock too, when it leaves the queue (bpq_msg_drop()). A chunk
 * counts its live messages; the current one starts over from its
 * beginning whenever they are all gone, so a queue that keeps up reuses
 * the same cache-hot block, and an older one is kept as the spare, or
 * freed, with its last message. The spare goes when the current chunk
 * empties (the queue has drained), so that an idle queue holds one chunk;
 * a queue that no file has open gives back its empty chunks. A chunk is
 * charged as a whole, to the memory cgroup and the user (user_max_bytes)
 * of the writer that needed it: no allocation and no atomic operation per
 * small message. Chunks are allocated without sleeping, under the lock;
 * when that fails, or a copy faults, or the writer is not the file's user,
 * the message takes the ordinary path.
 *
 * The ordinary path: a message of its own, allocated and charged to its
 * writer's user before the writer takes q->lock, and freed after the last
 * holder dropped it (a reap list).
 */
#include <linux/gfp.h>
#include <linux/mm.h>
#include <linux/slab.h>
#include <linux/uio.h>

#include "bpq.h"

#define BPQ_CHUNK_ORDER		2
#define BPQ_CHUNK_SIZE		(PAGE_SIZE << BPQ_CHUNK_ORDER)
/* under q->lock: no sleep, no reserves; a failure takes the ordinary path */
#define BPQ_CHUNK_GFP		(GFP_NOWAIT | __GFP_ACCOUNT | __GFP_NOWARN | \
				 __GFP_NOMEMALLOC | __GFP_COMP)

/* At the start of its block; the messages follow. q->lock. */
struct bpq_chunk {
	struct bpq_user *user;		/* charged with BPQ_CHUNK_SIZE */
	struct bpq_chunk *next;		/* on a struct bpq_defer's list */
	u32 live;			/* messages carved and not dropped */
};

#define BPQ_CHUNK_START		ALIGN(sizeof(struct bpq_chunk), 8)

static_assert(BPQ_CHUNK_START + sizeof(struct bpq_msg) + BPQ_CHUNK_MSG_MAX <=
	      BPQ_CHUNK_SIZE);

static struct bpq_chunk *bpq_msg_chunk(const struct bpq_msg *msg)
{
	/* blocks of 2^order pages are aligned to their size */
	return (void *)((unsigned long)msg & ~(BPQ_CHUNK_SIZE - 1));
}

static void bpq_chunk_free(struct bpq_chunk *chunk)
{
	struct bpq_user *user = chunk->user;

	free_pages((unsigned long)chunk, BPQ_CHUNK_ORDER);
	bpq_user_uncharge(user, BPQ_CHUNK_SIZE);
}

/* @chunk, empty, to be freed after the unlock of this hold of q->lock */
static void bpq_chunk_defer(struct bpq_defer *df, struct bpq_chunk *chunk)
{
	chunk->next = df->chunks;
	df->chunks = chunk;
}

/* After the unlock: the chunks a hold of q->lock emptied. */
void bpq_chunks_free(struct bpq_chunk *chunk)
{
	struct bpq_chunk *next;

	for (; chunk; chunk = next) {
		next = chunk->next;
		bpq_chunk_free(chunk);
	}
}

/*
 * A new current chunk for @q: the spare, or one charged to @user; false
 * if none came. The old one, full, goes with its last message (an empty
 * current chunk starts over instead, and is never replaced).
 */
static bool bpq_chunk_new(struct bpq_queue *q, struct bpq_user *user)
{
	struct bpq_chunk *chunk = q->chunk_spare;

	if (chunk) {
		q->chunk_spare = NULL;
	} else {
		if (!bpq_user_try_charge(user, BPQ_CHUNK_SIZE))
			return false;
		chunk = (void *)__get_free_pages(BPQ_CHUNK_GFP,
						 BPQ_CHUNK_ORDER);
		if (!chunk) {
			/* not the user's last reference: no lock taken */
			bpq_user_uncharge(user, BPQ_CHUNK_SIZE);
			return false;
		}
		chunk->user = user;
		chunk->live = 0;
	}
	q->chunk = chunk;
	q->chunk_used = BPQ_CHUNK_START;
	return true;
}

/*
 * A message of @len bytes carved from @q's current chunk, or a new one,
 * charged to @user if a new one is needed; NULL: take the ordinary path.
 * Its payload is the caller's to fill before anyone else sees it.
 */
struct bpq_msg *bpq_msg_carve(struct bpq_queue *q, struct bpq_user *user,
			      u32 len)
{
	u32 size = ALIGN(sizeof(struct bpq_msg) + len, 8);
	struct bpq_msg *msg;

	lockdep_assert_held(&q->lock);
	if (len > BPQ_CHUNK_MSG_MAX)
		return NULL;
	if ((!q->chunk || q->chunk_used + size > BPQ_CHUNK_SIZE) &&
	    !bpq_chunk_new(q, user))
		return NULL;
	msg = (void *)q->chunk + q->chunk_used;
	q->chunk_used += size;
	q->chunk->live++;
	msg->len = len;
	msg->flags = BPQ_MSG_CHUNK;
	return msg;
}

/*
 * @msg leaves for good, under q->lock: a chunk's message goes back to its
 * chunk now, any other to @df's reap list, freed after the unlock.
 */
void bpq_msg_drop(struct bpq_queue *q, struct bpq_msg *msg,
		  struct bpq_defer *df)
{
	struct bpq_chunk *chunk;

	lockdep_assert_held(&q->lock);
	if (!(msg->flags & BPQ_MSG_CHUNK)) {
		list_add_tail(&msg->node, &df->reap);
		return;
	}
	chunk = bpq_msg_chunk(msg);
	if (--chunk->live)
		return;
	if (chunk == q->chunk) {
		q->chunk_used = BPQ_CHUNK_START;	/* start over */
		if (q->chunk_spare) {			/* drained: one is enough */
			bpq_chunk_defer(df, q->chunk_spare);
			q->chunk_spare = NULL;
		}
	} else if (!q->chunk_spare) {
		q->chunk_spare = chunk;			/* the next one */
	} else {
		bpq_chunk_defer(df, chunk);
	}
}

/*
 * Copy @msg's payload in from @from: all of it, or false with @from as it
 * was. A chunk's message is plain page memory, copied as
 * copy_page_from_iter() copies the page cache's, with _copy_from_iter():
 * its bounds were checked when it was carved, and the hardened-usercopy
 * walk of copy_from_iter(), which costs more than the copy of a small
 * message, knows nothing of chunks.
 */
bool bpq_msg_copy_in(struct bpq_msg *msg, struct iov_iter *from)
{
	size_t n;

	if (!(msg->flags & BPQ_MSG_CHUNK))
		return copy_from_iter_full(bpq_msg_data(msg), msg->len, from);
	n = _copy_from_iter(bpq_msg_data(msg), msg->len, from);
	if (likely(n == msg->len))
		return true;
	iov_iter_revert(from, n);
	return false;
}

/* Copy @msg's payload out to @to, as bpq_msg_copy_in(); how much was. */
size_t bpq_msg_copy_out(const struct bpq_msg *msg, struct iov_iter *to)
{
	if (!(msg->flags & BPQ_MSG_CHUNK))
		return copy_to_iter(bpq_msg_data(msg), msg->len, to);
	return _copy_to_iter(bpq_msg_data(msg), msg->len, to);
}

/*
 * When the last file of @q is closed: an empty current chunk goes, so that
 * a queue nobody has open holds, and charges, only what it stores. An
 * open queue keeps one, ready for the next message.
 */
void bpq_msg_store_trim(struct bpq_queue *q, struct bpq_defer *df)
{
	lockdep_assert_held(&q->lock);
	if (q->chunk && !q->chunk->live) {
		bpq_chunk_defer(df, q->chunk);
		q->chunk = NULL;
	}
	if (q->chunk_spare) {
		bpq_chunk_defer(df, q->chunk_spare);
		q->chunk_spare = NULL;
	}
}

/* At the queue's release, its messages gone: the current chunk. */
void bpq_msg_store_free(struct bpq_queue *q)
{
	if (q->chunk)
		bpq_chunk_free(q->chunk);
	if (q->chunk_spare)
		bpq_chunk_free(q->chunk_spare);
	q->chunk = NULL;
	q->chunk_spare = NULL;
}

/*
 * A message of @len bytes, charged to the writer's memory cgroup and to
 * its user. Sizes above what the queue accepts fail before allocating.
 * Over its cgroup's limit the writer gets ENOMEM, not the OOM killer.
 */
#define BPQ_GFP		(GFP_KERNEL_ACCOUNT | __GFP_RETRY_MAYFAIL | __GFP_NOWARN)
#define BPQ_INLINE_MAX	(PAGE_SIZE / 2)

struct bpq_msg *bpq_msg_alloc(struct bpq_file *bf, size_t len)
{
	struct bpq_msg_own *own;
	struct bpq_user *user;

	if (len > READ_ONCE(bf->q->cfg.max_msg_size))
		return ERR_PTR(-EMSGSIZE);
	user = bpq_user_charge_current(bf->user, len);
	if (IS_ERR(user))
		return ERR_CAST(user);
	if (len <= BPQ_INLINE_MAX) {
		own = kmalloc(sizeof(*own) + len, BPQ_GFP);
		if (own)
			own->data = (u8 *)(own + 1);
	} else {
		own = kmalloc(sizeof(*own), BPQ_GFP);
		if (own) {
			own->data = kvmalloc(len, BPQ_GFP);
			if (!own->data) {
				kfree(own);
				own = NULL;
			}
		}
	}
	if (!own) {
		bpq_user_uncharge(user, len);
		return ERR_PTR(-ENOMEM);
	}
	own->user = user;
	own->msg.len = len;
	own->msg.flags = 0;
	return &own->msg;
}

/* A message of its own (not a chunk's), with no q->lock held */
void bpq_msg_free(struct bpq_msg *msg)
{
	struct bpq_msg_own *own = container_of(msg, struct bpq_msg_own, msg);

	bpq_user_uncharge(own->user, msg->len);
	if (own->data != (u8 *)(own + 1))
		kvfree(own->data);
	kfree(own);
}

void bpq_reap(struct list_head *reap)
{
	struct bpq_msg *msg, *tmp;

	list_for_each_entry_safe(msg, tmp, reap, node)
		bpq_msg_free(msg);
}
