// SPDX-License-Identifier: GPL-2.0
/*
 * The queue devices /dev/bpqN: their lifetime and file operations.
 *
 * A queue is a struct device with an embedded cdev (as watchdog_dev.c).
 * Each open file holds a reference on the device, so destroying a queue
 * only marks it dead: open files then fail with ENODEV until closed, and
 * the last reference frees the messages and the number.
 */
#include <linux/fs.h>
#include <linux/idr.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/poll.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <linux/xarray.h>

#include "bpq.h"

#define BPQ_MINORS	1024

static dev_t bpq_devt;
static DEFINE_IDA(bpq_ida);
static DEFINE_MUTEX(bpq_lock);		/* serializes create and destroy */
static DEFINE_XARRAY(bpq_queues);	/* live queues by number */

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

static int bpq_open(struct inode *inode, struct file *file)
{
	struct bpq_queue *q = container_of(inode->i_cdev, struct bpq_queue,
					   cdev);
	struct bpq_file *bf;

	bf = kzalloc(sizeof(*bf), GFP_KERNEL_ACCOUNT);
	if (!bf)
		return -ENOMEM;
	bf->user = bpq_user_get();
	if (!bf->user) {
		kfree(bf);
		return -ENOMEM;
	}
	spin_lock(&q->lock);
	if (q->dead) {
		spin_unlock(&q->lock);
		bpq_user_put(bf->user);
		kfree(bf);
		return -ENODEV;
	}
	bf->lost_seen = q->lost;
	q->nr_files++;
	spin_unlock(&q->lock);

	get_device(&q->dev);
	bf->q = q;
	file->private_data = bf;
	stream_open(inode, file);
	/* read_iter and write_iter honour IOCB_NOWAIT (io.c) */
	file->f_mode |= FMODE_NOWAIT;
	return 0;
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
	bpq_queue_closed(bf->q);
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

	spin_lock(&q->lock);
	cfg = q->cfg;
	depth_msgs = q->depth_msgs;
	depth_bytes = q->depth_bytes;
	spin_unlock(&q->lock);

	seq_printf(m, "bpq-name:\t%s\n", q->name);
	seq_printf(m, "bpq-strategy:\t%s\n", bpq_strategy_name(cfg.strategy));
	seq_printf(m, "bpq-depth-msgs:\t%llu\n", depth_msgs);
	seq_printf(m, "bpq-depth-bytes:\t%llu\n", depth_bytes);
	seq_printf(m, "bpq-capacity-msgs:\t%u\n", cfg.capacity_msgs);
	seq_printf(m, "bpq-capacity-bytes:\t%llu\n", cfg.capacity_bytes);
	ring = smp_load_acquire(&bf->ring);	/* as in bpq_mmap() */
	if (ring)
		seq_printf(m, "bpq-ring-bytes:\t%u\n", ring->size);
}

const struct file_operations bpq_fops = {
	.owner = THIS_MODULE,
	.open = bpq_open,
	.release = bpq_release,
	.read_iter = bpq_read_iter,
	.write_iter = bpq_write_iter,
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

static bool bpq_name_taken(const char *name)
{
	struct bpq_queue *q;
	unsigned long i;

	lockdep_assert_held(&bpq_lock);
	xa_for_each(&bpq_queues, i, q)
		if (!strcmp(q->name, name))
			return true;
	return false;
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

	q = kzalloc(sizeof(*q), GFP_KERNEL);
	if (!q)
		return -ENOMEM;
	bpq_queue_init(q);

	mutex_lock(&bpq_lock);
	if (name && bpq_name_taken(name)) {
		ret = -EEXIST;
		goto err_free_queue;
	}
	index = ida_alloc_max(&bpq_ida, BPQ_MINORS - 1, GFP_KERNEL);
	if (index < 0) {
		ret = index;
		goto err_free_queue;
	}
	if (name)
		strscpy(q->name, name, sizeof(q->name));
	else
		snprintf(q->name, sizeof(q->name), "bpq%d", index);

	device_initialize(&q->dev);
	q->dev.class = &bpq_class;
	q->dev.devt = MKDEV(MAJOR(bpq_devt), index);
	q->dev.release = bpq_dev_release;
	ret = dev_set_name(&q->dev, "bpq%d", index);
	if (ret)
		goto err_put_device;
	cdev_init(&q->cdev, &bpq_fops);
	q->cdev.owner = THIS_MODULE;

	ret = xa_insert(&bpq_queues, index, q, GFP_KERNEL);
	if (ret)
		goto err_put_device;
	q->id = ++next_id;
	ret = cdev_device_add(&q->cdev, &q->dev);
	if (ret)
		goto err_erase;
	if (id)
		*id = q->id;
	mutex_unlock(&bpq_lock);
	return index;

err_erase:
	xa_erase(&bpq_queues, index);
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
	bpq_queue_kill(q);
	cdev_device_del(&q->cdev, &q->dev);
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
	if (q) {
		xa_erase(&bpq_queues, index);
		bpq_queue_remove(q);
	}
	mutex_unlock(&bpq_lock);
	return q ? 0 : -ENOENT;
}

void bpq_queue_destroy_all(void)
{
	struct bpq_queue *q;
	unsigned long i;

	mutex_lock(&bpq_lock);
	xa_for_each(&bpq_queues, i, q) {
		xa_erase(&bpq_queues, i);
		bpq_queue_remove(q);
	}
	mutex_unlock(&bpq_lock);
}

int bpq_chrdev_init(void)
{
	int ret;

	ret = alloc_chrdev_region(&bpq_devt, 0, BPQ_MINORS, "bpq");
	if (ret)
		return ret;
	ret = class_register(&bpq_class);
	if (ret)
		goto err_unregister_region;
	return 0;

err_unregister_region:
	unregister_chrdev_region(bpq_devt, BPQ_MINORS);
	return ret;
}

void bpq_chrdev_exit(void)
{
	class_unregister(&bpq_class);
	unregister_chrdev_region(bpq_devt, BPQ_MINORS);
}
