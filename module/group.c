// SPDX-License-Identifier: GPL-2.0
/*
 * Groups: the pattern's application / service / system levels. A group
 * has a capacity and watermarks over the sum of its members' depths (its
 * member queues' and the groups' within it); from its high watermark
 * until it falls below its low one every queue in it, however deep, is
 * held (BPQ_HOLD_GROUP). /sys/class/bpq_group/NAME/ shows each.
 *
 * Locks, outermost first: chrdev.c's bpq_lock (keeps queues alive) or
 * bpq_group_reg_mutex (a group's creation or destruction, its sysfs
 * directory's too, which waits for the files' show functions), then
 * bpq_group_mutex (the groups, their members, each queue's q->group and
 * the holds the groups put on), q->lock, bpq_group_lock (the depths and
 * pressure of every group). A queue counts its depth into its group, and
 * the groups above, at each change of its own pressure state
 * (bpq_update_pressure(), under q->lock): one spin lock for a queue in a
 * group, one compare for any other. A group whose pressure changes there
 * kicks a work item that brings every member's hold in line, one queue
 * lock at a time, as links do.
 */
#include <linux/device.h>
#include <linux/slab.h>
#include <linux/workqueue.h>

#include "bpq.h"

struct bpq_group {
	struct device dev;		/* its refcount is the group's */
	char name[BPQ_NAME_MAX];
	struct bpq_group *parent;	/* set at creation */
	unsigned int level;		/* 1 at the top */
	struct list_head node;		/* bpq_group_list */
	struct list_head members;	/* queues, by q->group_node */
	unsigned int nr_members;
	unsigned int nr_children;
	/* bpq_group_lock: */
	u64 depth;
	u32 capacity;
	u32 high;			/* percent */
	u32 low;
	bool pressure;
};

/* Creating and destroying, device_add() to device_unregister(): no show */
static DEFINE_MUTEX(bpq_group_reg_mutex);
static DEFINE_MUTEX(bpq_group_mutex);
static DEFINE_SPINLOCK(bpq_group_lock);
static LIST_HEAD(bpq_group_list);

static void bpq_group_work_fn(struct work_struct *work);
static DECLARE_WORK(bpq_group_work, bpq_group_work_fn);

static struct bpq_group *bpq_dev_group(struct device *dev)
{
	return container_of(dev, struct bpq_group, dev);
}

/* Under bpq_group_lock: an edge of @g's pressure? */
static bool bpq_group_edge(struct bpq_group *g)
{
	bool was = g->pressure;

	if (!g->pressure && g->depth * 100 >= (u64)g->capacity * g->high)
		g->pressure = true;
	else if (g->pressure && g->depth * 100 < (u64)g->capacity * g->low)
		g->pressure = false;
	return g->pressure != was;
}

/* Under bpq_group_lock: @delta messages more (or fewer) in @g and above */
static bool bpq_group_add(struct bpq_group *g, s64 delta)
{
	bool edge = false;

	for (; g; g = g->parent) {
		g->depth += delta;
		edge |= bpq_group_edge(g);
	}
	return edge;
}

/* Under q->lock, q->group set: count the queue's depth as it is now. */
void bpq_group_account(struct bpq_queue *q)
{
	bool edge;

	lockdep_assert_held(&q->lock);
	spin_lock(&bpq_group_lock);
	edge = bpq_group_add(q->group, (s64)q->depth_msgs - q->group_depth);
	q->group_depth = q->depth_msgs;
	spin_unlock(&bpq_group_lock);
	if (edge)
		queue_work(system_wq, &bpq_group_work);
}

/* Is a group @q is in, at any level, under pressure? bpq_group_mutex. */
static bool bpq_group_holds(struct bpq_queue *q)
{
	struct bpq_group *g;
	bool held = false;

	spin_lock(&bpq_group_lock);
	for (g = q->group; g && !held; g = g->parent)
		held = g->pressure;
	spin_unlock(&bpq_group_lock);
	return held;
}

/* Under bpq_group_mutex: @q's group hold as its groups say */
static void bpq_group_sync(struct bpq_queue *q)
{
	bool held = bpq_group_holds(q);

	lockdep_assert_held(&bpq_group_mutex);
	if (held != q->group_held) {
		q->group_held = held;
		bpq_hold(q, BPQ_HOLD_GROUP, held);
	}
}

static void bpq_group_work_fn(struct work_struct *work)
{
	struct bpq_group *g;
	struct bpq_queue *q;

	mutex_lock(&bpq_group_mutex);
	list_for_each_entry(g, &bpq_group_list, node)
		list_for_each_entry(q, &g->members, group_node)
			bpq_group_sync(q);
	mutex_unlock(&bpq_group_mutex);
}

static struct bpq_group *bpq_group_find(const char *name)
{
	struct bpq_group *g;

	lockdep_assert_held(&bpq_group_mutex);
	list_for_each_entry(g, &bpq_group_list, node)
		if (!strcmp(g->name, name))
			return g;
	return NULL;
}

/* Under bpq_group_mutex: take @q out of its group, if in one. */
static void bpq_group_leave(struct bpq_queue *q)
{
	struct bpq_group *g = q->group;
	bool edge;

	lockdep_assert_held(&bpq_group_mutex);
	if (!g)
		return;
	spin_lock(&q->lock);
	spin_lock(&bpq_group_lock);
	edge = bpq_group_add(g, -(s64)q->group_depth);
	q->group_depth = 0;
	q->group = NULL;
	spin_unlock(&bpq_group_lock);
	spin_unlock(&q->lock);
	list_del_init(&q->group_node);
	g->nr_members--;
	bpq_group_sync(q);
	if (edge)
		queue_work(system_wq, &bpq_group_work);
}

/* A queue being destroyed (bpq_lock held) leaves its group. */
void bpq_group_remove(struct bpq_queue *q)
{
	mutex_lock(&bpq_group_mutex);
	bpq_group_leave(q);
	mutex_unlock(&bpq_group_mutex);
}

/* Put live @q (bpq_lock held) in the group @name, or in none for "". */
int bpq_group_join(struct bpq_queue *q, const char *name)
{
	struct bpq_group *g = NULL;
	bool edge;
	int ret = 0;

	mutex_lock(&bpq_group_mutex);
	if (*name) {
		g = bpq_group_find(name);
		if (!g) {
			ret = -ENOENT;
			goto out;
		}
	}
	if (q->group == g)
		goto out;
	bpq_group_leave(q);
	if (!g)
		goto out;
	spin_lock(&q->lock);
	if (q->dead) {
		spin_unlock(&q->lock);
		ret = -ENODEV;
		goto out;
	}
	spin_lock(&bpq_group_lock);
	q->group = g;
	q->group_depth = q->depth_msgs;
	edge = bpq_group_add(g, q->group_depth);
	spin_unlock(&bpq_group_lock);
	spin_unlock(&q->lock);
	list_add_tail(&q->group_node, &g->members);
	g->nr_members++;
	bpq_group_sync(q);
	if (edge)
		queue_work(system_wq, &bpq_group_work);
out:
	mutex_unlock(&bpq_group_mutex);
	return ret;
}

/* The name of @q's group, or "" (sysfs: the queue's file group) */
ssize_t bpq_group_format(struct bpq_queue *q, char *buf)
{
	ssize_t len;

	mutex_lock(&bpq_group_mutex);
	len = sysfs_emit(buf, "%s\n", q->group ? q->group->name : "");
	mutex_unlock(&bpq_group_mutex);
	return len;
}

/* ---- /sys/class/bpq_group/NAME/ ---- */

static ssize_t depth_msgs_show(struct device *dev,
			       struct device_attribute *attr, char *buf)
{
	struct bpq_group *g = bpq_dev_group(dev);
	u64 depth;

	spin_lock(&bpq_group_lock);
	depth = g->depth;
	spin_unlock(&bpq_group_lock);
	return sysfs_emit(buf, "%llu\n", depth);
}
static DEVICE_ATTR_RO(depth_msgs);

static ssize_t utilization_show(struct device *dev,
				struct device_attribute *attr, char *buf)
{
	struct bpq_group *g = bpq_dev_group(dev);
	u64 pct;

	spin_lock(&bpq_group_lock);
	pct = div_u64(g->depth * 100, g->capacity);
	spin_unlock(&bpq_group_lock);
	return sysfs_emit(buf, "%llu\n", pct);
}
static DEVICE_ATTR_RO(utilization);

static ssize_t pressure_show(struct device *dev,
			     struct device_attribute *attr, char *buf)
{
	struct bpq_group *g = bpq_dev_group(dev);
	bool pressure;

	spin_lock(&bpq_group_lock);
	pressure = g->pressure;
	spin_unlock(&bpq_group_lock);
	return sysfs_emit(buf, "%d\n", pressure);
}
static DEVICE_ATTR_RO(pressure);

static ssize_t parent_show(struct device *dev, struct device_attribute *attr,
			   char *buf)
{
	struct bpq_group *g = bpq_dev_group(dev);

	return sysfs_emit(buf, "%s\n", g->parent ? g->parent->name : "");
}
static DEVICE_ATTR_RO(parent);

/* The names of the member queues, or of the groups within */
static ssize_t bpq_group_list_show(struct bpq_group *g, bool groups,
				   char *buf)
{
	struct bpq_group *c;
	struct bpq_queue *q;
	int len = 0;

	mutex_lock(&bpq_group_mutex);
	if (groups) {
		list_for_each_entry(c, &bpq_group_list, node)
			if (c->parent == g)
				len += sysfs_emit_at(buf, len, "%s%s",
						     len ? " " : "", c->name);
	} else {
		list_for_each_entry(q, &g->members, group_node)
			len += sysfs_emit_at(buf, len, "%s%s", len ? " " : "",
					     q->name);
	}
	mutex_unlock(&bpq_group_mutex);
	return len + sysfs_emit_at(buf, len, "\n");
}

static ssize_t members_show(struct device *dev,
			    struct device_attribute *attr, char *buf)
{
	return bpq_group_list_show(bpq_dev_group(dev), false, buf);
}
static DEVICE_ATTR_RO(members);

static ssize_t groups_show(struct device *dev, struct device_attribute *attr,
			   char *buf)
{
	return bpq_group_list_show(bpq_dev_group(dev), true, buf);
}
static DEVICE_ATTR_RO(groups);

/* capacity_msgs, high_watermark, low_watermark: read, or set (root) */
static ssize_t bpq_group_setting(struct device *dev, const char *buf,
				 size_t count, size_t offset)
{
	struct bpq_group *g = bpq_dev_group(dev);
	u32 *field = (void *)g + offset;
	u32 v, old;
	bool edge = false;
	int ret;

	ret = kstrtou32(buf, 0, &v);
	if (ret)
		return ret;
	spin_lock(&bpq_group_lock);
	old = *field;
	*field = v;
	if (!g->capacity || !g->low || g->low > g->high || g->high > 100) {
		*field = old;
		ret = -EINVAL;
	} else {
		edge = bpq_group_edge(g);
	}
	spin_unlock(&bpq_group_lock);
	if (edge)
		queue_work(system_wq, &bpq_group_work);
	return ret ? ret : count;
}

static ssize_t bpq_group_setting_show(struct device *dev, char *buf,
				      size_t offset)
{
	struct bpq_group *g = bpq_dev_group(dev);
	u32 v;

	spin_lock(&bpq_group_lock);
	v = *(u32 *)((void *)g + offset);
	spin_unlock(&bpq_group_lock);
	return sysfs_emit(buf, "%u\n", v);
}

#define BPQ_GROUP_SETTING(name, off)					\
static ssize_t name##_show(struct device *dev,				\
			   struct device_attribute *attr, char *buf)	\
{									\
	return bpq_group_setting_show(dev, buf, off);			\
}									\
static ssize_t name##_store(struct device *dev,				\
			    struct device_attribute *attr,		\
			    const char *buf, size_t count)		\
{									\
	return bpq_group_setting(dev, buf, count, off);			\
}									\
static DEVICE_ATTR_RW(name)

BPQ_GROUP_SETTING(capacity_msgs, offsetof(struct bpq_group, capacity));
BPQ_GROUP_SETTING(high_watermark, offsetof(struct bpq_group, high));
BPQ_GROUP_SETTING(low_watermark, offsetof(struct bpq_group, low));

static struct attribute *bpq_group_attrs[] = {
	&dev_attr_capacity_msgs.attr,
	&dev_attr_high_watermark.attr,
	&dev_attr_low_watermark.attr,
	&dev_attr_depth_msgs.attr,
	&dev_attr_utilization.attr,
	&dev_attr_pressure.attr,
	&dev_attr_parent.attr,
	&dev_attr_members.attr,
	&dev_attr_groups.attr,
	NULL,
};
ATTRIBUTE_GROUPS(bpq_group);

static struct class bpq_group_class = {
	.name = "bpq_group",
	.dev_groups = bpq_group_groups,
};

static void bpq_group_release(struct device *dev)
{
	struct bpq_group *g = bpq_dev_group(dev);

	/* its file parent may read the parent's name to the end */
	if (g->parent)
		put_device(&g->parent->dev);
	kfree(g);
}

int bpq_group_create(const struct bpq_group_create *arg)
{
	struct bpq_group *g, *parent = NULL;
	int ret;

	if (!arg->capacity_msgs || !arg->low_watermark ||
	    arg->low_watermark > arg->high_watermark ||
	    arg->high_watermark > 100 ||
	    !bpq_name_valid(arg->name, sizeof(arg->name)) ||
	    (arg->parent[0] &&
	     !bpq_name_valid(arg->parent, sizeof(arg->parent))))
		return -EINVAL;
	g = kzalloc(sizeof(*g), GFP_KERNEL_ACCOUNT);
	if (!g)
		return -ENOMEM;
	strscpy(g->name, arg->name, sizeof(g->name));
	INIT_LIST_HEAD(&g->members);
	g->capacity = arg->capacity_msgs;
	g->high = arg->high_watermark;
	g->low = arg->low_watermark;
	g->level = 1;
	device_initialize(&g->dev);
	g->dev.class = &bpq_group_class;
	g->dev.release = bpq_group_release;
	device_set_pm_not_required(&g->dev);

	mutex_lock(&bpq_group_reg_mutex);
	mutex_lock(&bpq_group_mutex);
	ret = -EEXIST;
	if (bpq_group_find(g->name))
		goto err;
	if (arg->parent[0]) {
		ret = -ENOENT;
		parent = bpq_group_find(arg->parent);
		if (!parent)
			goto err;
		ret = -EMLINK;
		if (parent->level >= BPQ_GROUP_DEPTH)
			goto err;
		g->level = parent->level + 1;
		/* the release function puts it back */
		g->parent = parent;
		get_device(&parent->dev);
	}
	ret = dev_set_name(&g->dev, "%s", g->name);
	if (!ret)
		ret = device_add(&g->dev);
	if (ret)
		goto err;
	/* empty: nothing to add to the depths above */
	if (parent)
		parent->nr_children++;
	list_add_tail(&g->node, &bpq_group_list);
	mutex_unlock(&bpq_group_mutex);
	mutex_unlock(&bpq_group_reg_mutex);
	return 0;

err:
	mutex_unlock(&bpq_group_mutex);
	mutex_unlock(&bpq_group_reg_mutex);
	put_device(&g->dev);
	return ret;
}

/*
 * Take empty @g off the list; the caller unregisters it after dropping
 * bpq_group_mutex, which the files' show functions take: unregistering
 * waits for them.
 */
static void bpq_group_del(struct bpq_group *g)
{
	lockdep_assert_held(&bpq_group_mutex);
	list_del(&g->node);
	if (g->parent)
		g->parent->nr_children--;
}

int bpq_group_destroy(const char *name)
{
	struct bpq_group *g;
	int ret = -ENOENT;

	mutex_lock(&bpq_group_reg_mutex);
	mutex_lock(&bpq_group_mutex);
	g = bpq_group_find(name);
	if (g && (g->nr_members || g->nr_children)) {
		ret = -EBUSY;
	} else if (g) {
		bpq_group_del(g);
		ret = 0;
	}
	mutex_unlock(&bpq_group_mutex);
	/* the name is free once its directory is gone */
	if (!ret)
		device_unregister(&g->dev);
	mutex_unlock(&bpq_group_reg_mutex);
	return ret;
}

int bpq_group_init(void)
{
	return class_register(&bpq_group_class);
}

/* After every queue is gone: the groups go, the innermost first. */
void bpq_group_exit(void)
{
	struct bpq_group *g, *tmp;
	LIST_HEAD(gone);
	bool again = true;

	mutex_lock(&bpq_group_reg_mutex);
	mutex_lock(&bpq_group_mutex);
	while (again) {
		again = false;
		list_for_each_entry_safe(g, tmp, &bpq_group_list, node) {
			if (g->nr_children) {
				again = true;
				continue;
			}
			bpq_group_del(g);
			list_add_tail(&g->node, &gone);
		}
	}
	mutex_unlock(&bpq_group_mutex);
	list_for_each_entry_safe(g, tmp, &gone, node)
		device_unregister(&g->dev);
	mutex_unlock(&bpq_group_reg_mutex);
	flush_work(&bpq_group_work);
	class_unregister(&bpq_group_class);
}
