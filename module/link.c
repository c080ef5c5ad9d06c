// SPDX-License-Identifier: GPL-2.0
/*
 * Links: pressure that travels upstream along a pipeline. While a linked
 * downstream queue is under pressure (its watermarks', or a hold's, a
 * link's among them), its upstream queue is held (BPQ_HOLD_LINK), so the
 * slowest stage holds the source at once, not once every queue between
 * them has filled.
 *
 * The links are edges of a graph without cycles, kept under bpq_link_mutex
 * (taken inside chrdev.c's bpq_lock, which keeps the queues alive). A
 * queue's pressure edge (bpq_update_pressure(), under its q->lock) puts the
 * queue on a list of queues to look upstream of, with a reference, if it
 * has an upstream link; a work item then sets or clears each upstream
 * queue's link hold from its downstream queues' pressure, taking one queue
 * lock at a time, never two nested. A hold that changes an upstream
 * queue's pressure puts that queue on the list in turn: the change travels
 * as far as it makes a difference. q->nr_up, the count of upstream links,
 * changes under q->lock too, so an edge either sees the link or happens
 * before the link's first look at the queue's pressure.
 */
#include <linux/slab.h>
#include <linux/workqueue.h>

#include "bpq.h"

/* An edge of the graph: @down's pressure holds @up. */
struct bpq_edge {
	struct bpq_queue *up, *down;
	struct list_head up_node;	/* in down->upstream */
	struct list_head down_node;	/* in up->downstream */
};

static DEFINE_MUTEX(bpq_link_mutex);
static DEFINE_SPINLOCK(bpq_dirty_lock);
static LIST_HEAD(bpq_dirty);		/* queues to look upstream of */

static void bpq_link_work_fn(struct work_struct *work);
static DECLARE_WORK(bpq_link_work, bpq_link_work_fn);

/* Under q->lock, at a pressure edge of @q: look upstream of it. */
void bpq_link_dirty(struct bpq_queue *q)
{
	lockdep_assert_held(&q->lock);
	if (!q->nr_up)
		return;
	spin_lock(&bpq_dirty_lock);
	if (list_empty(&q->dirty_node)) {
		get_device(&q->dev);
		list_add_tail(&q->dirty_node, &bpq_dirty);
	}
	spin_unlock(&bpq_dirty_lock);
	schedule_work(&bpq_link_work);
}

static bool bpq_pressure_of(struct bpq_queue *q)
{
	bool pressure;

	spin_lock(&q->lock);
	pressure = q->pressure;
	spin_unlock(&q->lock);
	return pressure;
}

/* @up is held while any queue downstream of it is under pressure. */
static void bpq_link_eval(struct bpq_queue *up)
{
	struct bpq_edge *e;
	bool held = false;

	lockdep_assert_held(&bpq_link_mutex);
	list_for_each_entry(e, &up->downstream, down_node) {
		held = bpq_pressure_of(e->down);
		if (held)
			break;
	}
	bpq_hold(up, BPQ_HOLD_LINK, held);
}

static void bpq_link_work_fn(struct work_struct *work)
{
	struct bpq_queue *q;
	struct bpq_edge *e;

	mutex_lock(&bpq_link_mutex);
	for (;;) {
		spin_lock(&bpq_dirty_lock);
		q = list_first_entry_or_null(&bpq_dirty, struct bpq_queue,
					     dirty_node);
		if (q)
			list_del_init(&q->dirty_node);
		spin_unlock(&bpq_dirty_lock);
		if (!q)
			break;
		list_for_each_entry(e, &q->upstream, up_node)
			bpq_link_eval(e->up);
		put_device(&q->dev);
	}
	mutex_unlock(&bpq_link_mutex);
}

static struct bpq_edge *bpq_edge_find(struct bpq_queue *up,
				      struct bpq_queue *down)
{
	struct bpq_edge *e;

	list_for_each_entry(e, &up->downstream, down_node)
		if (e->down == down)
			return e;
	return NULL;
}

/*
 * Is @to downstream of @from, or @from itself? Depth-first, each queue
 * visited once (marked with this search's @gen): linear in the links.
 * Deeper than @depth, the answer is yes: such a chain is refused, as a
 * loop is, and the recursion stays bounded.
 */
static bool bpq_reaches(struct bpq_queue *from, struct bpq_queue *to,
			u64 gen, unsigned int depth)
{
	struct bpq_edge *e;

	if (from == to || !depth)
		return true;
	if (from->link_seen == gen)
		return false;
	from->link_seen = gen;
	list_for_each_entry(e, &from->downstream, down_node)
		if (bpq_reaches(e->down, to, gen, depth - 1))
			return true;
	return false;
}

/* A chain longer than this is refused as a loop would be */
#define BPQ_LINK_DEPTH	32

static void bpq_edge_del(struct bpq_edge *e)
{
	struct bpq_queue *down = e->down;

	list_del(&e->down_node);
	list_del(&e->up_node);
	e->up->nr_down--;
	spin_lock(&down->lock);
	down->nr_up--;
	spin_unlock(&down->lock);
	kfree(e);
}

/* Both queues live (bpq_lock held by the caller). */
int bpq_link_add(struct bpq_queue *up, struct bpq_queue *down)
{
	static u64 search;
	struct bpq_edge *e;
	int ret = 0;

	e = kzalloc(sizeof(*e), GFP_KERNEL_ACCOUNT);
	if (!e)
		return -ENOMEM;
	mutex_lock(&bpq_link_mutex);
	if (bpq_edge_find(up, down))
		ret = -EEXIST;
	else if (bpq_reaches(down, up, ++search, BPQ_LINK_DEPTH))
		ret = -ELOOP;
	else if (up->nr_down >= BPQ_LINKS_MAX || down->nr_up >= BPQ_LINKS_MAX)
		ret = -EMLINK;
	if (ret) {
		mutex_unlock(&bpq_link_mutex);
		kfree(e);
		return ret;
	}
	e->up = up;
	e->down = down;
	list_add_tail(&e->down_node, &up->downstream);
	list_add_tail(&e->up_node, &down->upstream);
	up->nr_down++;
	spin_lock(&down->lock);
	down->nr_up++;
	spin_unlock(&down->lock);
	bpq_link_eval(up);
	mutex_unlock(&bpq_link_mutex);
	return 0;
}

int bpq_link_del(struct bpq_queue *up, struct bpq_queue *down)
{
	struct bpq_edge *e;

	mutex_lock(&bpq_link_mutex);
	e = bpq_edge_find(up, down);
	if (e) {
		bpq_edge_del(e);
		bpq_link_eval(up);
	}
	mutex_unlock(&bpq_link_mutex);
	return e ? 0 : -ENOENT;
}

/* A queue being destroyed leaves the graph; those upstream look again. */
void bpq_link_remove_all(struct bpq_queue *q)
{
	struct bpq_edge *e, *next;
	struct bpq_queue *up;

	mutex_lock(&bpq_link_mutex);
	list_for_each_entry_safe(e, next, &q->downstream, down_node)
		bpq_edge_del(e);
	list_for_each_entry_safe(e, next, &q->upstream, up_node) {
		up = e->up;
		bpq_edge_del(e);
		bpq_link_eval(up);
	}
	mutex_unlock(&bpq_link_mutex);
}

/* The names of the queues upstream (@up) or downstream of @q, for sysfs */
ssize_t bpq_link_format(struct bpq_queue *q, bool up, char *buf)
{
	struct bpq_edge *e;
	int len = 0;

	mutex_lock(&bpq_link_mutex);
	if (up) {
		list_for_each_entry(e, &q->upstream, up_node)
			len += sysfs_emit_at(buf, len, "%s%s", len ? " " : "",
					     e->up->name);
	} else {
		list_for_each_entry(e, &q->downstream, down_node)
			len += sysfs_emit_at(buf, len, "%s%s", len ? " " : "",
					     e->down->name);
	}
	mutex_unlock(&bpq_link_mutex);
	return len + sysfs_emit_at(buf, len, "\n");
}

/* At module exit, after every queue is gone */
void bpq_link_exit(void)
{
	flush_work(&bpq_link_work);
}
