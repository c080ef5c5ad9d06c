// SPDX-License-Identifier: GPL-2.0
/*
 * The queue devices' ioctls: each command's struct is checked here and
 * handed to the file that does the work (config.c, io.c, ring.c).
 */
#include <linux/fs.h>
#include <linux/log2.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/uio.h>
#include <asm/ioctls.h>

#include "bpq.h"
#include "ioctl.h"

static struct bpq_queue *bpq_file_queue(struct file *file)
{
	return ((struct bpq_file *)file->private_data)->q;
}

static struct bpq_queue *bpq_ucmd_queue(struct bpq_ucmd *ucmd)
{
	return ((struct bpq_file *)ucmd->ctx)->q;
}

static int bpq_ucmd_get_config(struct bpq_ucmd *ucmd)
{
	struct bpq_config *cfg = ucmd->cmd;

	if (cfg->flags)
		return -EINVAL;
	return bpq_get_config(bpq_ucmd_queue(ucmd), cfg);
}

static int bpq_ucmd_set_config(struct bpq_ucmd *ucmd)
{
	return bpq_set_config(bpq_ucmd_queue(ucmd), ucmd->cmd,
			      ucmd->user_size);
}

static int bpq_ucmd_get_stats(struct bpq_ucmd *ucmd)
{
	struct bpq_stats *st = ucmd->cmd;

	if (st->flags)
		return -EINVAL;
	return bpq_get_stats(bpq_ucmd_queue(ucmd), st);
}

static int bpq_ucmd_reset_stats(struct bpq_ucmd *ucmd)
{
	struct bpq_simple *cmd = ucmd->cmd;

	if (cmd->flags)
		return -EINVAL;
	return bpq_reset_stats(bpq_ucmd_queue(ucmd));
}

static int bpq_ucmd_flush(struct bpq_ucmd *ucmd)
{
	struct bpq_simple *cmd = ucmd->cmd;

	if (cmd->flags)
		return -EINVAL;
	return bpq_flush(bpq_ucmd_queue(ucmd), false);
}

static int bpq_ucmd_grant(struct bpq_ucmd *ucmd)
{
	struct bpq_grant *cmd = ucmd->cmd;

	return bpq_grant(bpq_ucmd_queue(ucmd), cmd->flags, cmd->credits);
}

static int bpq_ucmd_recv(struct bpq_ucmd *ucmd)
{
	struct bpq_recv *cmd = ucmd->cmd;
	struct iov_iter to;
	struct bpq_rx rx = {
		.to = &to,
		.uinfos = ucmd->ubuffer + offsetof(struct bpq_recv, info),
		.info = true,
		.max = 1,
		.flags = cmd->flags | ucmd->io_flags,
		.timeout_ms = cmd->timeout_ms,
	};
	int ret;

	if (cmd->flags & ~BPQ_IO_FLAGS)
		return -EINVAL;
	iov_iter_ubuf(&to, ITER_DEST, u64_to_user_ptr(cmd->buf), cmd->buf_len);
	ret = bpq_recv(ucmd->ctx, &rx);
	if (ret < 0)
		return ret;
	return rx.bytes;
}

static int bpq_ucmd_send_batch(struct bpq_ucmd *ucmd)
{
	struct bpq_send_batch *cmd = ucmd->cmd;
	struct bpq_tx tx __bpq_noinit;

	if (cmd->flags & ~BPQ_IO_FLAGS)
		return -EINVAL;
	if (!cmd->count || cmd->count > BPQ_BATCH_MAX)
		return -EINVAL;
	bpq_tx_init(&tx, NULL, u64_to_user_ptr(cmd->msgs), cmd->count,
		    cmd->flags | ucmd->io_flags, cmd->timeout_ms);
	return bpq_send(ucmd->ctx, &tx);
}

static int bpq_ucmd_recv_batch(struct bpq_ucmd *ucmd)
{
	struct bpq_recv_batch *cmd = ucmd->cmd;
	struct iov_iter to;
	struct bpq_rx rx = {
		.to = &to,
		.uinfos = u64_to_user_ptr(cmd->infos),
		.info = true,
		.max = cmd->max_records,
		.flags = cmd->flags | ucmd->io_flags,
		.timeout_ms = cmd->timeout_ms,
	};

	if ((cmd->flags & ~BPQ_IO_FLAGS) || cmd->__reserved)
		return -EINVAL;
	if (!cmd->max_records || cmd->max_records > BPQ_BATCH_MAX)
		return -EINVAL;
	iov_iter_ubuf(&to, ITER_DEST, u64_to_user_ptr(cmd->buf), cmd->buf_len);
	return bpq_recv(ucmd->ctx, &rx);
}

static int bpq_ucmd_ring_setup(struct bpq_ucmd *ucmd)
{
	struct bpq_ring_setup *cmd = ucmd->cmd;
	int ret;

	if (cmd->flags || cmd->mmap_bytes)
		return -EINVAL;
	if (!is_power_of_2(cmd->ring_bytes) ||
	    cmd->ring_bytes < max_t(u32, BPQ_RING_BYTES_MIN, PAGE_SIZE) ||
	    cmd->ring_bytes > BPQ_RING_BYTES_MAX)
		return -EINVAL;
	/* the reader maps the ring writable, to move its head */
	if ((ucmd->file->f_mode & (FMODE_READ | FMODE_WRITE)) !=
	    (FMODE_READ | FMODE_WRITE))
		return -EBADF;
	ret = bpq_ring_attach(bpq_ucmd_queue(ucmd), ucmd->ctx,
			      cmd->ring_bytes);
	if (!ret)
		cmd->mmap_bytes = PAGE_SIZE + cmd->ring_bytes;
	return ret;
}

static int bpq_ucmd_ring_sync(struct bpq_ucmd *ucmd)
{
	struct bpq_ring_sync *cmd = ucmd->cmd;

	if ((cmd->flags & ~(BPQ_IO_FLAGS | BPQ_RING_WAIT)) || cmd->__reserved)
		return -EINVAL;
	return bpq_ring_sync(bpq_ucmd_queue(ucmd), ucmd->ctx,
			     cmd->flags | ucmd->io_flags, cmd->timeout_ms);
}

static int bpq_ucmd_shutdown(struct bpq_ucmd *ucmd)
{
	struct bpq_shutdown *cmd = ucmd->cmd;
	struct bpq_file *bf = ucmd->ctx;

	if (cmd->__reserved)
		return -EINVAL;
	return bpq_shutdown(bf, cmd->flags, cmd->error);
}

static int bpq_ucmd_ack(struct bpq_ucmd *ucmd)
{
	struct bpq_ack *cmd = ucmd->cmd;

	if (cmd->__reserved)
		return -EINVAL;
	return bpq_ack(bpq_ucmd_queue(ucmd), cmd->flags, cmd->count,
		       cmd->timestamp_ns);
}

static int bpq_ucmd_trigger(struct bpq_ucmd *ucmd)
{
	return bpq_trigger_set(bpq_ucmd_queue(ucmd), ucmd->ctx, ucmd->cmd);
}

static const struct bpq_ioctl_op bpq_queue_ops[] = {
	BPQ_IOCTL_OP(BPQ_IOC_GET_CONFIG, bpq_ucmd_get_config,
		     struct bpq_config, __reserved, true, BPQ_ACCESS_ANY),
	BPQ_IOCTL_OP(BPQ_IOC_SET_CONFIG, bpq_ucmd_set_config,
		     struct bpq_config, __reserved, false, BPQ_ACCESS_PRODUCER),
	BPQ_IOCTL_OP(BPQ_IOC_GET_STATS, bpq_ucmd_get_stats,
		     struct bpq_stats, latency_hist, true, BPQ_ACCESS_ANY),
	BPQ_IOCTL_OP(BPQ_IOC_RESET_STATS, bpq_ucmd_reset_stats,
		     struct bpq_simple, flags, false, BPQ_ACCESS_PRODUCER),
	BPQ_IOCTL_OP(BPQ_IOC_GRANT, bpq_ucmd_grant,
		     struct bpq_grant, credits, false, BPQ_ACCESS_CONSUMER),
	BPQ_IOCTL_OP(BPQ_IOC_FLUSH, bpq_ucmd_flush,
		     struct bpq_simple, flags, false, BPQ_ACCESS_PRODUCER),
	BPQ_IOCTL_OP(BPQ_IOC_RECV, bpq_ucmd_recv,
		     struct bpq_recv, info, false, BPQ_ACCESS_READ),
	BPQ_IOCTL_OP(BPQ_IOC_SEND_BATCH, bpq_ucmd_send_batch,
		     struct bpq_send_batch, timeout_ms, false, BPQ_ACCESS_WRITE),
	BPQ_IOCTL_OP(BPQ_IOC_RECV_BATCH, bpq_ucmd_recv_batch,
		     struct bpq_recv_batch, __reserved, false, BPQ_ACCESS_READ),
	BPQ_IOCTL_OP(BPQ_IOC_RING_SETUP, bpq_ucmd_ring_setup,
		     struct bpq_ring_setup, mmap_bytes, true, BPQ_ACCESS_ANY),
	BPQ_IOCTL_OP(BPQ_IOC_RING_SYNC, bpq_ucmd_ring_sync,
		     struct bpq_ring_sync, __reserved, false, BPQ_ACCESS_READ),
	BPQ_IOCTL_OP(BPQ_IOC_SHUTDOWN, bpq_ucmd_shutdown,
		     struct bpq_shutdown, __reserved, false, BPQ_ACCESS_ANY),
	BPQ_IOCTL_OP(BPQ_IOC_ACK, bpq_ucmd_ack,
		     struct bpq_ack, timestamp_ns, false, BPQ_ACCESS_CONSUMER),
	BPQ_IOCTL_OP(BPQ_IOC_TRIGGER, bpq_ucmd_trigger,
		     struct bpq_trigger, threshold, false, BPQ_ACCESS_ANY),
};

/* The published sizes never change; new fields go at the end. */
static_assert(sizeof(struct bpq_config) == 104);
static_assert(offsetofend(struct bpq_config, read_mode) == 96);
static_assert(offsetofend(struct bpq_config, __reserved) == 64);
static_assert(sizeof(struct bpq_stats) == 832);
static_assert(offsetofend(struct bpq_stats, latency_hist) == 416);
static_assert(sizeof(struct bpq_shutdown) == 16);
static_assert(sizeof(struct bpq_ack) == 24);
static_assert(sizeof(struct bpq_msg_info) == 32);
static_assert(sizeof(struct bpq_recv) == 56);
static_assert(sizeof(struct bpq_iovec) == 16);
static_assert(sizeof(struct bpq_send_batch) == 24);
static_assert(sizeof(struct bpq_recv_batch) == 40);
static_assert(sizeof(struct bpq_grant) == 16);
static_assert(sizeof(struct bpq_ring_setup) == 16);
static_assert(sizeof(struct bpq_ring_sync) == 16);
static_assert(sizeof(struct bpq_ring_rec) == 32);
static_assert(offsetof(struct bpq_ring_ctl, tail) == 64);
static_assert(sizeof(struct bpq_simple) == 8);
static_assert(sizeof(struct bpq_create) == 48);
static_assert(sizeof(struct bpq_destroy) == 16);
static_assert(sizeof(struct bpq_link) == 16);
static_assert(sizeof(struct bpq_trigger) == 24);
static_assert(sizeof(struct bpq_group_create) == 88);
static_assert(sizeof(struct bpq_group_join) == 48);

/* The command @cmd in @ops, or NULL: ENOTTY. */
const struct bpq_ioctl_op *bpq_ioctl_op(const struct bpq_ioctl_op *ops,
					size_t nr_ops, unsigned int cmd)
{
	unsigned int nr = BPQ_OP_INDEX(cmd);

	if (nr >= nr_ops || ops[nr].ioctl_num != cmd)
		return NULL;
	return &ops[nr];
}

long bpq_dispatch(const struct bpq_ioctl_op *op, struct file *file,
		  unsigned long arg)
{
	union bpq_ucmd_buffer buf;
	struct bpq_ucmd ucmd = {
		.file = file,
		.ctx = file->private_data,
		.io_flags = (file->f_flags & O_NONBLOCK) ? BPQ_IO_NONBLOCK : 0,
		.ubuffer = (void __user *)arg,
		.cmd = &buf,
	};
	int ret;

	if (get_user(ucmd.user_size, (u32 __user *)ucmd.ubuffer))
		return -EFAULT;
	if (ucmd.user_size < op->min_size)
		return -EINVAL;
	/* the stats snapshot, two histograms, is too large for the stack */
	if (op->size > sizeof(buf)) {
		ucmd.cmd = kmalloc(op->size, GFP_KERNEL);
		if (!ucmd.cmd)
			return -ENOMEM;
	}
	ret = copy_struct_from_user(ucmd.cmd, op->size, ucmd.ubuffer,
				    ucmd.user_size);
	if (!ret)
		ret = op->execute(&ucmd);
	if (ret >= 0 && op->copy_out &&
	    copy_to_user(ucmd.ubuffer, ucmd.cmd, min(ucmd.user_size, op->size)))
		ret = -EFAULT;
	if (ucmd.cmd != &buf)
		kfree(ucmd.cmd);
	return ret;
}

/* May the file @bf do what needs @access? */
static bool bpq_access_ok(const struct bpq_file *bf, u8 access)
{
	switch (access) {
	case BPQ_ACCESS_READ:
		return bf->mode & FMODE_READ;
	case BPQ_ACCESS_WRITE:
		return bf->mode & FMODE_WRITE;
	case BPQ_ACCESS_CONSUMER:
		return bpq_file_may(bf, FMODE_READ);
	case BPQ_ACCESS_PRODUCER:
		return bpq_file_may(bf, FMODE_WRITE);
	default:
		return true;
	}
}

/*
 * FIONREAD: the length of the next message a read would take (of a
 * message read in part, its rest), 0 if none, as a datagram socket says,
 * so that a reader can size its buffer.
 */
static int bpq_fionread(struct bpq_queue *q, int __user *arg)
{
	struct bpq_msg *msg;
	u32 len = 0, off;

	spin_lock(&q->lock);
	msg = q->ring ? NULL : bpq_first_avail(q);
	if (msg)
		len = bpq_msg_rest(q, msg, &off);
	spin_unlock(&q->lock);
	if (READ_ONCE(q->dead))
		return -ENODEV;
	return put_user(len, arg);
}

long bpq_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	const struct bpq_ioctl_op *op;

	if (cmd == FIONREAD)
		return bpq_fionread(bpq_file_queue(file), (int __user *)arg);
	op = bpq_ioctl_op(bpq_queue_ops, ARRAY_SIZE(bpq_queue_ops), cmd);
	if (!op)
		return -ENOTTY;
	if (!bpq_access_ok(file->private_data, op->access))
		return -EBADF;
	return bpq_dispatch(op, file, arg);
}
