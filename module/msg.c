// SPDX-License-Identifier: GPL-2.0
/*
 * The message store: each queue's log.
 *
 * A queue keeps its messages, in the order they were queued, in a log of
 * pages: records of a 16-byte header (struct bpq_msg) and the payload,
 * padded to 8 bytes, one after another. A payload runs on over the end of
 * its page into the next; a header never does, and starts on the next
 * page when fewer than 16 bytes are left. So a message costs its payload
 * and at most 31 bytes more, at every size, and the log's pages are
 * plain order-0 pages, linked through page->lru, oldest first. Each page
 * is charged to the memory cgroup and the user (page->private,
 * user_max_bytes) of the writer it was allocated for, and uncharged when
 * it is freed.
 *
 * Messages leave the queue in any order (a reader's copy ends, one is
 * evicted), the log's memory only from its head: a record that left is
 * marked dead, and bpq_log_trim() moves the head past dead records,
 * freeing the pages it leaves. Emptied, the log starts over at the top
 * of its one page, so a queue that keeps up writes into the same
 * cache-hot page; one more page is kept as the spare. A queue that no
 * file has open gives back its empty page.
 *
 * Under q->lock: the log's order, its head and tail, the records'
 * flags. A record that a reader is copying out, or its writer copying in
 * (a large one), is pinned: the head does not pass it, so its pages stay
 * and their links (page->lru) do not change, and that task walks them
 * without the lock. A flush takes the whole log away at once
 * (bpq_log_detach()); pinned records keep it alive as a grave until the
 * last of them is let go (bpq_log_unpin()), which a pinner knows by the
 * log's generation it took its record from.
 *
 * Records are made under q->lock (bpq_log_append()), in pages taken from
 * the spare, then from the writer's pool of pages allocated before the
 * lock, then, for a small record, allocated there without sleeping.
 */
#include <linux/gfp.h>
#include <linux/mm.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/uio.h>

#include "bpq.h"

#define BPQ_HDR		sizeof(struct bpq_msg)
/* under q->lock: no sleep, no reserves; a failure makes the writer fill its pool */
#define BPQ_LOG_GFP	(GFP_NOWAIT | __GFP_ACCOUNT | __GFP_NOWARN | \
			 __GFP_NOMEMALLOC)
/* before it: over its cgroup's limit the writer gets ENOMEM, not the OOM killer */
#define BPQ_POOL_GFP	(GFP_KERNEL_ACCOUNT | __GFP_RETRY_MAYFAIL | __GFP_NOWARN)
/* pages one record may allocate under the lock */
#define BPQ_LOG_ALLOC_MAX	2

/* A flushed log that pinned records keep (bpq_log_detach()) */
struct bpq_grave {
	struct list_head node;		/* on q->graves */
	struct list_head pages;
	u64 gen;			/* q->log_gen it was */
	u32 pins;			/* records still pinned */
};

static struct bpq_msg *bpq_log_at(struct page *page, u32 off)
{
	return page_address(page) + off;
}

static void bpq_log_set_head(struct bpq_queue *q, struct page *page, u32 off)
{
	q->head_page = page;
	q->head_base = page ? page_address(page) : NULL;
	q->head_off = off;
}

static void bpq_log_set_tail(struct bpq_queue *q, struct page *page, u32 off)
{
	q->tail_page = page;
	q->tail_base = page ? page_address(page) : NULL;
	q->tail_off = off;
}

static struct page *bpq_page_next(struct page *page)
{
	return list_next_entry(page, lru);
}

void bpq_log_init(struct bpq_queue *q)
{
	INIT_LIST_HEAD(&q->log);
	INIT_LIST_HEAD(&q->graves);
}

static void bpq_page_free(struct page *page)
{
	struct bpq_user *user = (struct bpq_user *)page_private(page);

	set_page_private(page, 0);
	__free_page(page);
	bpq_user_uncharge(user, PAGE_SIZE);
}

/* Free @pages (linked by page->lru), no lock held; a long list reschedules. */
void bpq_pages_free(struct list_head *pages, bool resched)
{
	struct page *page, *tmp;
	unsigned int n = 0;

	list_for_each_entry_safe(page, tmp, pages, lru) {
		list_del(&page->lru);
		bpq_page_free(page);
		if (resched && !(++n % 256))
			cond_resched();
	}
}

void bpq_pool_init(struct bpq_pool *pool, struct bpq_user *user, bool alloc)
{
	INIT_LIST_HEAD(&pool->pages);
	pool->nr = 0;
	pool->need = 0;
	pool->alloc = alloc;
	pool->user = user;
}

/*
 * Before the lock: fill @pool up to pool->need pages, each charged to the
 * calling writer's user (@hint, its file's, nearly always).
 */
int bpq_pool_fill(struct bpq_pool *pool, struct bpq_user *hint)
{
	struct bpq_user *user;
	struct page *page;

	while (pool->nr < pool->need) {
		user = bpq_user_charge_current(hint, PAGE_SIZE);
		if (IS_ERR(user))
			return PTR_ERR(user);
		page = alloc_page(BPQ_POOL_GFP);
		if (!page) {
			bpq_user_uncharge(user, PAGE_SIZE);
			return -ENOMEM;
		}
		set_page_private(page, (unsigned long)user);
		list_add(&page->lru, &pool->pages);
		pool->nr++;
	}
	return 0;
}

/* After the lock: the pages the send did not use */
void bpq_pool_drain(struct bpq_pool *pool)
{
	if (!pool->nr)
		return;
	bpq_pages_free(&pool->pages, true);
	pool->nr = 0;
}

/* The most pages a record of @len bytes can add to a log */
u32 bpq_log_pages_max(u32 len)
{
	return 1 + DIV_ROUND_UP(bpq_rec_size(len), PAGE_SIZE);
}

/* A page for the log's tail: the spare, the pool's, or (@alloc) a new one */
static struct page *bpq_log_page(struct bpq_queue *q, struct bpq_pool *pool,
				 bool alloc)
{
	struct page *page = q->log_spare;

	if (page) {
		q->log_spare = NULL;
		return page;
	}
	page = list_first_entry_or_null(&pool->pages, struct page, lru);
	if (page) {
		list_del(&page->lru);
		pool->nr--;
		return page;
	}
	if (!alloc || !bpq_user_try_charge(pool->user, PAGE_SIZE))
		return NULL;
	page = alloc_page(BPQ_LOG_GFP);
	if (!page) {
		/* not the user's last reference: no lock taken */
		bpq_user_uncharge(pool->user, PAGE_SIZE);
		return NULL;
	}
	set_page_private(page, (unsigned long)pool->user);
	return page;
}

/*
 * A record for @len bytes at the log's tail, its header's length set, the
 * rest the caller's to fill before anyone else sees it; NULL when the
 * pages for it are not there (pool->need says how many to bring).
 */
struct bpq_msg *bpq_log_append(struct bpq_queue *q, u32 len,
			       struct bpq_pool *pool)
{
	u32 size = bpq_rec_size(len), off = q->tail_off, extra = 0, i;
	struct page *page = q->tail_page, *p;
	bool empty = bpq_log_empty(q);
	struct bpq_msg *msg;
	LIST_HEAD(fresh);

	lockdep_assert_held(&q->lock);
	pool->undo_page = page;
	pool->undo_off = off;
	if (likely(page && off + size <= PAGE_SIZE)) {
		/* in the tail page, as most are */
		msg = (struct bpq_msg *)(q->tail_base + off);
		msg->info = len;
		q->tail_off = off + size;
		return msg;
	}
	if (!page || off > PAGE_SIZE - BPQ_HDR) {
		page = NULL;		/* the header starts a new page */
		off = 0;
		extra = 1;
	}
	extra += (off + size - 1) >> PAGE_SHIFT;
	for (i = 0; i < extra; i++) {
		p = bpq_log_page(q, pool,
				 pool->alloc && extra <= BPQ_LOG_ALLOC_MAX);
		if (!p) {
			list_splice(&fresh, &pool->pages);
			pool->nr += i;
			/* what this tail needs (the spare is in the pool) */
			pool->need = extra;
			return NULL;
		}
		list_add_tail(&p->lru, &fresh);
	}
	if (!page)
		page = list_first_entry(&fresh, struct page, lru);
	list_splice_tail(&fresh, &q->log);
	msg = bpq_log_at(page, off);
	msg->info = len;
	if (empty)
		bpq_log_set_head(q, page, off);
	bpq_log_set_tail(q, list_last_entry(&q->log, struct page, lru),
			 off + size - (((off + size - 1) >> PAGE_SHIFT) << PAGE_SHIFT));
	return msg;
}

/*
 * Take back @msg, the record bpq_log_append() just made in this hold of
 * q->lock, its pages back to @pool.
 */
void bpq_log_unappend(struct bpq_queue *q, struct bpq_msg *msg,
		      struct bpq_pool *pool)
{
	bool alone = q->head_page == virt_to_page(msg) &&
		     q->head_off == offset_in_page(msg);
	struct page *p;

	lockdep_assert_held(&q->lock);
	if (q->cursor == msg)
		q->cursor = NULL;
	while (!list_empty(&q->log)) {
		p = list_last_entry(&q->log, struct page, lru);
		if (p == pool->undo_page)
			break;
		list_move(&p->lru, &pool->pages);
		pool->nr++;
	}
	bpq_log_set_tail(q, pool->undo_page, pool->undo_off);
	if (alone)
		bpq_log_set_head(q, q->tail_page, q->tail_off);
}

/* Where the record at @page, @off, of @len bytes ends: in (0, PAGE_SIZE] */
static void bpq_log_end(struct page **page, u32 *off, u32 len)
{
	size_t end = *off + bpq_rec_size(len);

	while (end > PAGE_SIZE) {
		*page = bpq_page_next(*page);
		end -= PAGE_SIZE;
	}
	*off = end;
}

/* Where the record after the one at @page, @off starts; false at the tail */
static bool bpq_log_step(const struct bpq_queue *q, struct page **page,
			 u32 *off, u32 len)
{
	bpq_log_end(page, off, len);
	if (*page == q->tail_page && *off == q->tail_off)
		return false;
	if (*off > PAGE_SIZE - BPQ_HDR) {
		*page = bpq_page_next(*page);
		*off = 0;
	}
	return true;
}

/* bpq_log_next() of a record that ends past its page's last header */
struct bpq_msg *bpq_log_next_page(struct bpq_queue *q,
				  const struct bpq_msg *msg)
{
	struct page *page = virt_to_page(msg);
	u32 off = offset_in_page(msg);

	lockdep_assert_held(&q->lock);
	if (!bpq_log_step(q, &page, &off, bpq_msg_len(msg)))
		return NULL;
	return bpq_log_at(page, off);
}

/* A page the head left: the spare, or to free after the unlock */
static void bpq_log_release(struct bpq_queue *q, struct page *page,
			    struct bpq_defer *df)
{
	if (!q->log_spare)
		q->log_spare = page;
	else
		list_add(&page->lru, &df->pages);
}

/*
 * Move the head past the dead records; the pages it leaves go. Emptied,
 * the log starts over at the top of its page, and keeps no spare.
 */
void bpq_log_trim(struct bpq_queue *q, struct bpq_defer *df)
{
	struct bpq_msg *msg;
	struct page *page, *old;
	u32 off;

	lockdep_assert_held(&q->lock);
	while ((msg = bpq_log_first(q)) && (msg->info & BPQ_MSG_DEAD)) {
		if (msg == q->cursor)
			q->cursor = NULL;
		off = q->head_off + bpq_rec_size(bpq_msg_len(msg));
		if (likely(off <= PAGE_SIZE - BPQ_HDR ||
			   (q->head_page == q->tail_page && off == q->tail_off))) {
			q->head_off = off;	/* in the same page */
			continue;
		}
		page = q->head_page;
		off = q->head_off;
		if (!bpq_log_step(q, &page, &off, bpq_msg_len(msg))) {
			page = q->tail_page;
			off = q->tail_off;
		}
		while (q->head_page != page) {
			old = q->head_page;
			q->head_page = bpq_page_next(old);
			list_del(&old->lru);
			bpq_log_release(q, old, df);
		}
		bpq_log_set_head(q, page, off);
	}
	if (q->tail_page && bpq_log_empty(q)) {
		q->head_off = 0;
		q->tail_off = 0;
		if (q->log_spare) {
			list_add(&q->log_spare->lru, &df->pages);
			q->log_spare = NULL;
		}
	}
}

/* For bpq_log_detach(): allocated before the lock, freed if not used */
struct bpq_grave *bpq_grave_alloc(void)
{
	return kmalloc(sizeof(struct bpq_grave), GFP_KERNEL);
}

/*
 * Take the whole log away, in O(1), emptying the queue: onto @doomed, to
 * free after the unlock; or, if @pins of its records are pinned, into
 * *@grave (taken from the caller), kept until bpq_log_unpin() let the
 * last of them go. The caller accounts for the records.
 */
u64 bpq_log_detach(struct bpq_queue *q, struct list_head *doomed,
		   struct bpq_grave **grave, u32 pins)
{
	struct bpq_grave *g = *grave;

	lockdep_assert_held(&q->lock);
	if (!q->tail_page)
		return q->log_gen;
	if (pins) {
		*grave = NULL;
		INIT_LIST_HEAD(&g->pages);
		list_splice_init(&q->log, &g->pages);
		g->gen = q->log_gen;
		g->pins = pins;
		list_add(&g->node, &q->graves);
	} else {
		list_splice_init(&q->log, doomed);
	}
	bpq_log_set_head(q, NULL, 0);
	bpq_log_set_tail(q, NULL, 0);
	q->cursor = NULL;
	q->part = NULL;
	return ++q->log_gen;
}

/* A record of the flushed log of generation @gen is let go. */
void bpq_log_unpin(struct bpq_queue *q, u64 gen, struct bpq_defer *df)
{
	struct bpq_grave *g;

	lockdep_assert_held(&q->lock);
	list_for_each_entry(g, &q->graves, node) {
		if (g->gen != gen)
			continue;
		if (!--g->pins) {
			list_del(&g->node);
			list_splice(&g->pages, &df->pages);
			kfree(g);
		}
		return;
	}
}

/*
 * When the last file of @q is closed: an empty log gives back its page,
 * and the spare goes, so that a queue nobody has open holds, and charges,
 * only what it stores. An open queue keeps one, ready for the next
 * message.
 */
void bpq_log_idle(struct bpq_queue *q, struct bpq_defer *df)
{
	lockdep_assert_held(&q->lock);
	if (q->tail_page && bpq_log_empty(q)) {
		list_splice_init(&q->log, &df->pages);
		bpq_log_set_head(q, NULL, 0);
		bpq_log_set_tail(q, NULL, 0);
	}
	if (q->log_spare) {
		list_add(&q->log_spare->lru, &df->pages);
		q->log_spare = NULL;
	}
}

/* At the queue's release: no file, no pin, no lock needed. */
void bpq_log_free(struct bpq_queue *q)
{
	struct bpq_grave *g, *tmp;

	bpq_pages_free(&q->log, true);
	bpq_log_set_head(q, NULL, 0);
	bpq_log_set_tail(q, NULL, 0);
	q->cursor = NULL;
	if (q->log_spare)
		bpq_page_free(q->log_spare);
	q->log_spare = NULL;
	list_for_each_entry_safe(g, tmp, &q->graves, node) {
		bpq_pages_free(&g->pages, true);
		kfree(g);
	}
	INIT_LIST_HEAD(&q->graves);
}

/*
 * Copy @msg's payload of @len bytes in from @from: all of it, or false
 * with @from as it was. The log's pages are plain page memory, copied as
 * copy_page_from_iter() copies the page cache's, with _copy_from_iter():
 * the record's bounds are the log's own, and the hardened-usercopy walk
 * of copy_from_iter(), which costs more than the copy of a small message,
 * knows nothing of them. The payload's pages are walked as linked when
 * the record was made: its writer's, or a reader's, pin keeps them.
 */
bool bpq_msg_copy_in(struct bpq_msg *msg, u32 len, struct iov_iter *from)
{
	size_t off = offset_in_page(msg) + BPQ_HDR, done = 0, n, c;
	struct page *page;

	if (likely(off + len <= PAGE_SIZE)) {
		n = _copy_from_iter(msg + 1, len, from);
		if (likely(n == len))
			return true;
		iov_iter_revert(from, n);
		return false;
	}
	page = virt_to_page(msg);
	while (done < len) {
		if (off == PAGE_SIZE) {
			page = bpq_page_next(page);
			off = 0;
		}
		n = min_t(size_t, len - done, PAGE_SIZE - off);
		c = _copy_from_iter(page_address(page) + off, n, from);
		done += c;
		off += c;
		if (c != n) {
			iov_iter_revert(from, done);
			return false;
		}
	}
	return true;
}

/*
 * Byte @from of @msg's payload: its page, and *@off its offset there (at
 * most PAGE_SIZE: the walks below step on from the end of a page).
 */
static struct page *bpq_msg_at(const struct bpq_msg *msg, u32 from,
			       size_t *off)
{
	struct page *page = virt_to_page(msg);

	*off = offset_in_page(msg) + BPQ_HDR + from;
	while (*off > PAGE_SIZE) {
		page = bpq_page_next(page);
		*off -= PAGE_SIZE;
	}
	return page;
}

/*
 * Copy @len bytes of @msg's payload, from byte @from on, out to @to, as
 * bpq_msg_copy_in(); how much was.
 */
size_t bpq_msg_copy_out(const struct bpq_msg *msg, u32 from, u32 len,
			struct iov_iter *to)
{
	size_t off = offset_in_page(msg) + BPQ_HDR + from, done = 0, n, c;
	struct page *page;

	if (likely(off + len <= PAGE_SIZE))
		return _copy_to_iter((u8 *)(msg + 1) + from, len, to);
	page = bpq_msg_at(msg, from, &off);
	while (done < len) {
		if (off == PAGE_SIZE) {
			page = bpq_page_next(page);
			off = 0;
		}
		n = min_t(size_t, len - done, PAGE_SIZE - off);
		c = _copy_to_iter(page_address(page) + off, n, to);
		done += c;
		off += c;
		if (c != n)
			break;
	}
	return done;
}

/* Copy @len bytes of @msg's payload, from byte @from on, to a ring */
void bpq_msg_read(const struct bpq_msg *msg, u32 from, u32 len, void *to)
{
	size_t off, n;
	struct page *page = bpq_msg_at(msg, from, &off);

	while (len) {
		if (off == PAGE_SIZE) {
			page = bpq_page_next(page);
			off = 0;
		}
		n = min_t(size_t, len, PAGE_SIZE - off);
		memcpy(to, page_address(page) + off, n);
		to += n;
		len -= n;
		off += n;
	}
}
