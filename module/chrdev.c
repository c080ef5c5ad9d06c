// SPDX-License-Identifier: GPL-2.0
/*
 * The queue devices /dev/bpqN: their lifetime and file operations.
 *
 * A queue is a struct device. Each open file holds a reference on it, so
 * destroying a queue only marks it dead: open files then fail with ENODEV
 * until closed, and the last reference frees the messages and the number.
 *
 * Numbers are the lowest free ones below max_queues, every minor of the
 * region; live queues are found by number in an xarray and by name in a
 * hash table, so creating, opening or destroying one costs the same with
 * 10 or 100,000 others. One cdev covers the whole region, as misc devices
 * share theirs, and bpq_open() finds the queue by its minor: the char
 * device map keeps one entry per cdev on a list of its major, which a
 * cdev per queue would make as long as the number of queues.
 */
#include <linux/fs.h>
#include <linux/idr.h>
#include <linux/kdev_t.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/mutex.h>
#include <linux/poll.h>
#include <linux/rhashtable.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <linux/xarray.h>

#include "bpq.h"

/* every minor number a major has */
#define BPQ_MINORS	(MINORMASK + 1)

/* Lowering it leaves the queues there; only creating more fails. */
static int bpq_param_set_max_queues(const char *val,
				    const struct kernel_param *kp)
{
	return param_set_uint_minmax(val, kp, 1, BPQ_MINORS);
}

static unsigned int max_queues = 4096;
static const struct kernel_param_ops bpq_max_queues_ops = {
	.set = bpq_param_set_max_queues,
	.get = param_get_uint,
};
module_param_cb(max_queues, &bpq_max_queues_ops, &max_queues, 0644);
MODULE_PARM_DESC(max_queues, "Queues that may exist at once, 1 to 1048576 (default 4096)");

static dev_t bpq_devt;
static DEFINE_IDA(bpq_ida);
static DEFINE_MUTEX(bpq_lock);		/* serializes create and destroy */
static DEFINE_XARRAY(bpq_queues);	/* live queues by number */
static struct rhashtable bpq_names;	/* live queues by name */
static struct cdev bpq_cdev;		/* every minor of bpq_devt */

static const struct rhashtable_params bpq_names_params = {
	.key_len = BPQ_NAME_MAX,	/* names are NUL-padded */
	.key_offset = offsetof(struct bpq_queue, name),
	.head_offset = offsetof(struct bpq_queue, name_node),
	.automatic_shrinking = true,
};

static char *bpq_devnode(bpq_devnode_device *dev, umode_t *mode)
{
	if (mode)
		*mode = 0660;
	return NULL;
}

struct class bpq_class = {
	.name = "bpq",
	.dev_groups = bpq_groups,
	.devnode = bpq_devnode,
};

/*
 * The live queue numbered @minor, with a reference, or NULL. Its entry
 * stands for a reference that bpq_queue_remove() drops only after erasing
 * it, so one found under the xarray's lock cannot be on its way out.
 */
static struct bpq_queue *bpq_queue_get(unsigned int minor)
{
	struct bpq_queue *q;

	xa_lock(&bpq_queues);
	q = xa_load(&bpq_queues, minor);
	if (q)
		get_device(&q->dev);
	xa_unlock(&bpq_queues);
	return q;
}

static int bpq_open(struct inode *inode, struct file *file)
{
	struct bpq_queue *q;
	struct bpq_file *bf;
	int ret = -ENOMEM;

	q = bpq_queue_get(iminor(inode));
	if (!q)
		return -ENODEV;
	bf = kzalloc(sizeof(*bf), GFP_KERNEL_ACCOUNT);
	if (!bf)
		goto err_put_queue;
	bf->user = bpq_user_get();
	if (!bf->user)
		goto err_free_file;
	bf->mode = file->f_mode & (FMODE_READ | FMODE_WRITE);
	ret = bpq_stream_opened(q, bf->mode, &bf->lost_seen);
	if (ret)
		goto err_put_user;

	bf->q = q;
	file->private_data = bf;
	stream_open(inode, file);
	/* read_iter and write_iter honour IOCB_NOWAIT (io.c) */
	file->f_mode |= FMODE_NOWAIT;
	return 0;

err_put_user:
	bpq_user_put(bf->user);
err_free_file:
	kfree(bf);
err_put_queue:
	put_device(&q->dev);
	return ret;
}

/* O_ASYNC: SIGIO as bpq_kill_fasync() says */
static int bpq_fasync(int fd, struct file *file, int on)
{
	struct bpq_file *bf = file->private_data;

	return fasync_helper(fd, file, on, &bf->q->fasync);
}

static int bpq_release(struct inode *inode, struct file *file)
{
	struct bpq_file *bf = file->private_data;

	bpq_fasync(-1, file, 0);
	bpq_ring_detach(bf->q, bf);
	bpq_trigger_remove(bf->q, bf);
	bpq_stream_closed(bf->q, bf->mode);
	put_device(&bf->q->dev);
	bpq_user_put(bf->user);
	kfree(bf);
	return 0;
}

static __poll_t bpq_poll(struct file *file, poll_table *wait)
{
	struct bpq_file *bf = file->private_data;

	poll_wait(file, &bf->q->poll_wait, wait);
	return bpq_poll_mask(bf->q, bf);
}

static int bpq_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct bpq_file *bf = file->private_data;
	/* pairs with bpq_ring_attach(): the ring is whole once seen */
	struct bpq_ring *ring = smp_load_acquire(&bf->ring);

	return ring ? bpq_ring_mmap(ring, vma) : -EINVAL;
}

static void bpq_show_fdinfo(struct seq_file *m, struct file *file)
{
	struct bpq_file *bf = file->private_data;
	struct bpq_queue *q = bf->q;
	struct bpq_config cfg;
	struct bpq_ring *ring;
	u64 depth_msgs, depth_bytes;
	char stream[32];

	spin_lock(&q->lock);
	cfg = q->cfg;
	depth_msgs = q->depth_msgs;
	depth_bytes = q->depth_bytes;
	spin_unlock(&q->lock);
	bpq_stream_format(q, stream, sizeof(stream));

	seq_printf(m, "bpq-name:\t%s\n", q->name);
	seq_printf(m, "bpq-strategy:\t%s\n", bpq_strategy_name(cfg.strategy));
	seq_printf(m, "bpq-depth-msgs:\t%llu\n", depth_msgs);
	seq_printf(m, "bpq-depth-bytes:\t%llu\n", depth_bytes);
	seq_printf(m, "bpq-capacity-msgs:\t%u\n", cfg.capacity_msgs);
	seq_printf(m, "bpq-capacity-bytes:\t%llu\n", cfg.capacity_bytes);
	seq_printf(m, "bpq-stream:\t%s", stream);
	ring = smp_load_acquire(&bf->ring);	/* as in bpq_mmap() */
	if (ring)
		seq_printf(m, "bpq-ring-bytes:\t%u\n", ring->size);
	bpq_trigger_show(m, q, bf);
}

const struct file_operations bpq_fops = {
	.owner = THIS_MODULE,
	.open = bpq_open,
	.release = bpq_release,
	.read_iter = bpq_read_iter,
	.write_iter = bpq_write_iter,
	/*
	 * sendfile() and splice(): into a queue, each chunk of the pipe one
	 * message; out of it, one message a call, as read() takes it
	 */
	.splice_write = iter_file_splice_write,
	.splice_read = copy_splice_read,
	.poll = bpq_poll,
	.mmap = bpq_mmap,
	.unlocked_ioctl = bpq_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.show_fdinfo = bpq_show_fdinfo,
	.fasync = bpq_fasync,
};

static void bpq_dev_release(struct device *dev)
{
	struct bpq_queue *q = bpq_dev_queue(dev);

	bpq_queue_free_msgs(q);
	ida_free(&bpq_ida, MINOR(dev->devt));
	kfree(q);
}

/*
 * Create a queue; @name NULL names it after its number. Returns the number
 * (and the queue's creation id in @id), or -errno. The queue may be
 * destroyed as soon as bpq_lock is dropped: the caller gets no pointer.
 */
int bpq_queue_create(const char *name, u64 *id)
{
	static u64 next_id;
	struct bpq_queue *q;
	int index, ret;

	q = kzalloc(sizeof(*q), GFP_KERNEL_ACCOUNT);
	if (!q)
		return -ENOMEM;
	bpq_queue_init(q);
	if (name)
		strscpy_pad(q->name, name, sizeof(q->name));

	mutex_lock(&bpq_lock);
	if (name && rhashtable_lookup_fast(&bpq_names, q->name,
					   bpq_names_params)) {
		ret = -EEXIST;
		goto err_free_queue;
	}
	index = ida_alloc_max(&bpq_ida, READ_ONCE(max_queues) - 1,
			      GFP_KERNEL);
	if (index < 0) {
		ret = index;
		goto err_free_queue;
	}
	if (!name)
		snprintf(q->name, sizeof(q->name), "bpq%d", index);

	device_initialize(&q->dev);
	q->dev.class = &bpq_class;
	q->dev.devt = MKDEV(MAJOR(bpq_devt), index);
	q->dev.release = bpq_dev_release;
	/* no power management: no power/ directory of files for nothing */
	device_set_pm_not_required(&q->dev);
	ret = dev_set_name(&q->dev, "bpq%d", index);
	if (ret)
		goto err_put_device;

	ret = xa_insert(&bpq_queues, index, q, GFP_KERNEL);
	if (ret)
		goto err_put_device;
	ret = rhashtable_insert_fast(&bpq_names, &q->name_node,
				     bpq_names_params);
	if (ret)
		goto err_erase;
	q->id = ++next_id;
	ret = device_add(&q->dev);
	if (ret)
		goto err_unname;
	bpq_notify_init(q);
	if (id)
		*id = q->id;
	mutex_unlock(&bpq_lock);
	return index;

err_unname:
	rhashtable_remove_fast(&bpq_names, &q->name_node, bpq_names_params);
err_erase:
	xa_erase(&bpq_queues, index);
	/* a file opened meanwhile (bpq_open()) must find it dead */
	bpq_queue_kill(q);
err_put_device:
	/* the release function frees the number and the queue */
	put_device(&q->dev);
	mutex_unlock(&bpq_lock);
	return ret;
err_free_queue:
	mutex_unlock(&bpq_lock);
	kfree(q);
	return ret;
}

static void bpq_queue_remove(struct bpq_queue *q)
{
	lockdep_assert_held(&bpq_lock);
	bpq_link_remove_all(q);
	bpq_group_remove(q);
	xa_erase(&bpq_queues, MINOR(q->dev.devt));
	rhashtable_remove_fast(&bpq_names, &q->name_node, bpq_names_params);
	bpq_queue_kill(q);
	device_del(&q->dev);
	put_device(&q->dev);
}

/* Destroy queue @index; only if it is the one created as @id, unless 0. */
int bpq_queue_destroy(u32 index, u64 id)
{
	struct bpq_queue *q;

	mutex_lock(&bpq_lock);
	q = xa_load(&bpq_queues, index);
	if (q && id && q->id != id)
		q = NULL;
	if (q)
		bpq_queue_remove(q);
	mutex_unlock(&bpq_lock);
	return q ? 0 : -ENOENT;
}

/* Link queue @up to queue @down (@add), or unlink them */
int bpq_queue_link(u32 up, u32 down, bool add)
{
	struct bpq_queue *uq, *dq;
	int ret = -ENOENT;

	mutex_lock(&bpq_lock);
	uq = xa_load(&bpq_queues, up);
	dq = xa_load(&bpq_queues, down);
	if (uq && dq && add)
		ret = bpq_link_add(uq, dq);
	else if (uq && dq)
		ret = bpq_link_del(uq, dq);
	mutex_unlock(&bpq_lock);
	return ret;
}

int bpq_queue_join(u32 index, const char *group)
{
	struct bpq_queue *q;
	int ret = -ENOENT;

	mutex_lock(&bpq_lock);
	q = xa_load(&bpq_queues, index);
	if (q)
		ret = bpq_group_join(q, group);
	mutex_unlock(&bpq_lock);
	return ret;
}

void bpq_queue_destroy_all(void)
{
	struct bpq_queue *q;
	unsigned long i;

	mutex_lock(&bpq_lock);
	xa_for_each(&bpq_queues, i, q)
		bpq_queue_remove(q);
	mutex_unlock(&bpq_lock);
}

int bpq_chrdev_init(void)
{
	int ret;

	if (!max_queues || max_queues > BPQ_MINORS) {
		pr_err("max_queues=%u is not 1 to %u\n", max_queues,
		       BPQ_MINORS);
		return -EINVAL;
	}
	ret = rhashtable_init(&bpq_names, &bpq_names_params);
	if (ret)
		return ret;
	ret = alloc_chrdev_region(&bpq_devt, 0, BPQ_MINORS, "bpq");
	if (ret)
		goto err_destroy_names;
	cdev_init(&bpq_cdev, &bpq_fops);
	bpq_cdev.owner = THIS_MODULE;
	ret = cdev_add(&bpq_cdev, bpq_devt, BPQ_MINORS);
	if (ret)
		goto err_unregister_region;
	ret = class_register(&bpq_class);
	if (ret)
		goto err_del_cdev;
	return 0;

err_del_cdev:
	cdev_del(&bpq_cdev);
err_unregister_region:
	unregister_chrdev_region(bpq_devt, BPQ_MINORS);
err_destroy_names:
	rhashtable_destroy(&bpq_names);
	return ret;
}

/* After bpq_queue_destroy_all(), with no file open: nothing is left. */
void bpq_chrdev_exit(void)
{
	class_unregister(&bpq_class);
	cdev_del(&bpq_cdev);
	unregister_chrdev_region(bpq_devt, BPQ_MINORS);
	rhashtable_destroy(&bpq_names);
}
