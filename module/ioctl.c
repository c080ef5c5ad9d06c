// SPDX-License-Identifier: GPL-2.0
/*
 * The ioctl ABI: size-first structs dispatched through one table each for
 * queues and for the control device.
 */
#include <linux/capability.h>
#include <linux/ctype.h>
#include <linux/fs.h>
#include <linux/log2.h>
#include <linux/uaccess.h>

#include "bpq.h"

#define BPQ_IO_FLAGS	(BPQ_IO_NONBLOCK | BPQ_IO_TIMEOUT)
/* queue commands are numbered from 0x00, control commands from 0x40 */
#define BPQ_OP_INDEX(cmd)	(_IOC_NR(cmd) & 0x3f)

union bpq_ucmd_buffer {
	struct bpq_config config;
	struct bpq_stats stats;
	struct bpq_recv recv;
	struct bpq_send_batch send_batch;
	struct bpq_recv_batch recv_batch;
	struct bpq_grant grant;
	struct bpq_ring_setup ring_setup;
	struct bpq_ring_sync ring_sync;
	struct bpq_simple simple;
	struct bpq_create create;
	struct bpq_destroy destroy;
};

struct bpq_ucmd {
	struct file *file;
	void *ctx;			/* struct bpq_file, or NULL */
	u32 io_flags;			/* BPQ_IO_NONBLOCK for O_NONBLOCK */
	void __user *ubuffer;
	u32 user_size;
	void *cmd;
};

struct bpq_ioctl_op {
	unsigned int size;
	unsigned int min_size;
	unsigned int ioctl_num;
	bool copy_out;
	int (*execute)(struct bpq_ucmd *ucmd);
};

#define BPQ_IOCTL_OP(_ioctl, _fn, _struct, _last, _out)			\
	[BPQ_OP_INDEX(_ioctl)] = {					\
		.size = sizeof(_struct) +				\
			BUILD_BUG_ON_ZERO(sizeof(union bpq_ucmd_buffer) < \
					  sizeof(_struct)),		\
		.min_size = offsetofend(_struct, _last),		\
		.ioctl_num = _ioctl,					\
		.copy_out = _out,					\
		.execute = _fn,						\
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
	return bpq_set_config(bpq_ucmd_queue(ucmd), ucmd->cmd);
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
	return bpq_flush(bpq_ucmd_queue(ucmd));
}

static int bpq_ucmd_grant(struct bpq_ucmd *ucmd)
{
	struct bpq_grant *cmd = ucmd->cmd;

	if (cmd->flags)
		return -EINVAL;
	return bpq_grant(bpq_ucmd_queue(ucmd), cmd->credits);
}

/*
 * The small fixed records of the I/O commands move field by field in one
 * user-access window: a batch has one per message, and a copy routine
 * per 16 or 32 bytes costs more than the stores.
 */
static int bpq_put_info(struct bpq_msg_info __user *uinfo,
			const struct bpq_msg *msg, u64 lost, u32 offset)
{
	if (!user_write_access_begin(uinfo, sizeof(*uinfo)))
		return -EFAULT;
	unsafe_put_user(msg->seq, &uinfo->seq, efault);
	unsafe_put_user(msg->tstamp, &uinfo->timestamp_ns, efault);
	unsafe_put_user(lost, &uinfo->lost, efault);
	unsafe_put_user(msg->len, &uinfo->len, efault);
	unsafe_put_user(offset, &uinfo->offset, efault);
	user_write_access_end();
	return 0;
efault:
	user_write_access_end();
	return -EFAULT;
}

static int bpq_get_iovec(struct bpq_iovec *vec,
			 const struct bpq_iovec __user *uvec)
{
	if (!user_read_access_begin(uvec, sizeof(*uvec)))
		return -EFAULT;
	unsafe_get_user(vec->base, &uvec->base, efault);
	unsafe_get_user(vec->len, &uvec->len, efault);
	unsafe_get_user(vec->__reserved, &uvec->__reserved, efault);
	user_read_access_end();
	return 0;
efault:
	user_read_access_end();
	return -EFAULT;
}

/*
 * Copy one message out: payload at @buf, info at @uinfo. The message is
 * removed only when both copies succeeded. Returns its length, -EFAULT,
 * or -EAGAIN when it was evicted meanwhile and the caller should retry.
 */
static int bpq_deliver(struct bpq_file *bf, struct bpq_msg *msg,
		       const struct bpq_loss *loss, void __user *buf,
		       u32 offset, struct bpq_msg_info __user *uinfo)
{
	int len = msg->len;
	bool ok;

	ok = !copy_to_user(buf + offset, msg->data, len) &&
	     !bpq_put_info(uinfo, msg, loss->count, offset);
	if (bpq_recv_end(bf->q, bf, msg, ok, loss))
		return len;
	return ok ? -EAGAIN : -EFAULT;
}

static int bpq_ucmd_recv(struct bpq_ucmd *ucmd)
{
	struct bpq_file *bf = ucmd->ctx;
	struct bpq_recv *cmd = ucmd->cmd;
	struct bpq_msg_info __user *uinfo =
		ucmd->ubuffer + offsetof(struct bpq_recv, info);
	struct bpq_loss loss;
	struct bpq_msg *msg;
	int ret;

	if (cmd->flags & ~BPQ_IO_FLAGS)
		return -EINVAL;
	do {
		msg = bpq_recv_begin(bf->q, bf, cmd->buf_len,
				     cmd->flags | ucmd->io_flags,
				     cmd->timeout_ms, &loss);
		if (IS_ERR(msg))
			return PTR_ERR(msg);
		ret = bpq_deliver(bf, msg, &loss, u64_to_user_ptr(cmd->buf), 0,
				  uinfo);
	} while (ret == -EAGAIN);
	return ret;
}

/*
 * Read up to @count iovecs of a batch, once for both paths: returns how
 * many are valid; the first bad one, if any, ends them with *@err.
 */
static u32 bpq_get_iovecs(struct bpq_iovec *vecs,
			  const struct bpq_iovec __user *uvec, u32 count,
			  int *err)
{
	u32 n;

	for (n = 0; n < count; n++) {
		*err = bpq_get_iovec(&vecs[n], &uvec[n]);
		if (!*err && (vecs[n].__reserved || !vecs[n].len))
			*err = -EINVAL;
		if (*err)
			break;
	}
	return n;
}

/* Allocate and copy in @n messages; how many, or the error of the first. */
static int bpq_copy_in(struct bpq_file *bf, const struct bpq_iovec *vecs,
		       u32 n, struct bpq_msg **msgs)
{
	struct bpq_msg *msg;
	int i, ret = 0;

	for (i = 0; i < n; i++) {
		msg = bpq_msg_alloc(bf, vecs[i].len);
		if (IS_ERR(msg)) {
			ret = PTR_ERR(msg);
			break;
		}
		if (copy_from_user(msg->data, u64_to_user_ptr(vecs[i].base),
				   vecs[i].len)) {
			bpq_msg_free(msg);
			ret = -EFAULT;
			break;
		}
		msgs[i] = msg;
	}
	return i ? i : ret;
}

/*
 * Up to @n messages of a batch straight into the queue's ring. Returns
 * how many were queued there; 0: take the ordinary path.
 */
static int bpq_send_ring(struct bpq_queue *q, const struct bpq_iovec *vecs,
			 u32 n)
{
	u32 lens[BPQ_BATCH_CHUNK];
	struct bpq_ring_send rs;
	unsigned int i;

	for (i = 0; i < n; i++)
		lens[i] = vecs[i].len;
	n = bpq_ring_send_begin(q, lens, n, &rs);
	if (!n)
		return 0;
	/* faults off (bpq_ring_send_begin()): one takes the ordinary path */
	for (i = 0; i < n; i++)
		if (copy_from_user(bpq_ring_send_slot(&rs, lens[i]),
				   u64_to_user_ptr(vecs[i].base), lens[i]))
			break;
	return bpq_ring_send_end(q, &rs, lens, i);
}

static int bpq_ucmd_send_batch(struct bpq_ucmd *ucmd)
{
	struct bpq_file *bf = ucmd->ctx;
	struct bpq_send_batch *cmd = ucmd->cmd;
	struct bpq_iovec __user *uvec = u64_to_user_ptr(cmd->msgs);
	u32 flags = cmd->flags | ucmd->io_flags, sent = 0, nvec;
	struct bpq_iovec vecs[BPQ_BATCH_CHUNK];
	struct bpq_msg *msgs[BPQ_BATCH_CHUNK];
	int n, ret = 0;

	if (cmd->flags & ~BPQ_IO_FLAGS)
		return -EINVAL;
	if (!cmd->count || cmd->count > BPQ_BATCH_MAX)
		return -EINVAL;
	while (sent < cmd->count) {
		/* a bad iovec ends the chunk, and the batch after it */
		nvec = bpq_get_iovecs(vecs, uvec + sent,
				      min(cmd->count - sent, BPQ_BATCH_CHUNK),
				      &ret);
		if (!nvec)
			break;
		if (READ_ONCE(bf->q->ring)) {
			ret = bpq_send_ring(bf->q, vecs, nvec);
			if (ret < 0)
				break;
			sent += ret;
			if (ret)
				continue;
		}
		n = bpq_copy_in(bf, vecs, nvec, msgs);
		if (n < 0) {
			ret = n;
			break;
		}
		ret = bpq_send_many(bf->q, msgs, n, flags, cmd->timeout_ms);
		if (ret > 0)
			sent += ret;
		if (ret != n)
			break;	/* refused */
	}
	return sent ? sent : ret;
}

static int bpq_ucmd_recv_batch(struct bpq_ucmd *ucmd)
{
	struct bpq_file *bf = ucmd->ctx;
	struct bpq_recv_batch *cmd = ucmd->cmd;
	struct bpq_msg_info __user *uinfos = u64_to_user_ptr(cmd->infos);
	void __user *buf = u64_to_user_ptr(cmd->buf);
	u32 flags = cmd->flags | ucmd->io_flags, used = 0, n = 0;
	struct bpq_msg *msgs[BPQ_BATCH_CHUNK];
	u32 ends[BPQ_BATCH_CHUNK];	/* where each payload ends in buf */
	unsigned int cnt, copied, done;
	struct bpq_loss loss;
	int ret = 0;
	u64 mark;

	if ((cmd->flags & ~BPQ_IO_FLAGS) || cmd->__reserved)
		return -EINVAL;
	if (!cmd->max_records || cmd->max_records > BPQ_BATCH_MAX)
		return -EINVAL;
	while (n < cmd->max_records) {
		msgs[0] = bpq_recv_begin(bf->q, bf, cmd->buf_len - used, flags,
					 cmd->timeout_ms, &loss);
		if (IS_ERR(msgs[0])) {
			ret = PTR_ERR(msgs[0]);
			break;
		}
		cnt = 1 + bpq_recv_more(bf->q, msgs + 1,
					min(cmd->max_records - n,
					    BPQ_BATCH_CHUNK) - 1,
					cmd->buf_len - used - msgs[0]->len,
					&mark);
		if (cnt == 1)
			mark = loss.mark;
		for (copied = 0; copied < cnt; copied++) {
			struct bpq_msg *msg = msgs[copied];
			u32 start = copied ? ends[copied - 1] : used;
			u64 lost = 0;

			if (!copied)
				lost = loss.count;
			else if (copied == 1)	/* lost between the takes */
				lost = mark - loss.mark;
			if (copy_to_user(buf + start, msg->data, msg->len) ||
			    bpq_put_info(&uinfos[n + copied], msg, lost, start))
				break;
			ends[copied] = start + msg->len;
		}
		done = bpq_recv_end_many(bf->q, bf, msgs, cnt, copied, mark);
		if (done) {
			n += done;
			used = ends[done - 1];
		}
		if (done < copied)
			continue;	/* evicted meanwhile: take the next ones */
		if (copied < cnt) {
			ret = -EFAULT;
			break;
		}
		/* only the first message is waited for */
		flags |= BPQ_IO_NONBLOCK;
	}
	return n ? n : ret;
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

static int bpq_ucmd_create(struct bpq_ucmd *ucmd)
{
	struct bpq_create *cmd = ucmd->cmd;
	const char *digits;
	size_t len;
	u64 id;
	int i, ret;

	if (cmd->flags || cmd->__reserved)
		return -EINVAL;
	len = strnlen(cmd->name, sizeof(cmd->name));
	if (!len || len == sizeof(cmd->name))
		return -EINVAL;
	for (i = 0; i < len; i++)
		if (!isascii(cmd->name[i]) ||
		    (!isalnum(cmd->name[i]) && !strchr("_.-", cmd->name[i])))
			return -EINVAL;
	/* names become /dev/bpq/by-name/NAME */
	if (!strcmp(cmd->name, ".") || !strcmp(cmd->name, ".."))
		return -EINVAL;
	/* "N" and "bpqN" name queues by number: a label must not look so */
	digits = strncmp(cmd->name, "bpq", 3) ? cmd->name : cmd->name + 3;
	if (*digits && strspn(digits, "0123456789") == strlen(digits))
		return -EINVAL;
	ret = bpq_queue_create(cmd->name, &id);
	if (ret < 0)
		return ret;
	cmd->index = ret;
	/* a queue the caller cannot learn of must not stay behind */
	if (copy_to_user(ucmd->ubuffer, cmd,
			 min_t(u32, ucmd->user_size, sizeof(*cmd)))) {
		bpq_queue_destroy(cmd->index, id);
		return -EFAULT;
	}
	return cmd->index;
}

static int bpq_ucmd_destroy(struct bpq_ucmd *ucmd)
{
	struct bpq_destroy *cmd = ucmd->cmd;

	if (cmd->flags || cmd->__reserved)
		return -EINVAL;
	return bpq_queue_destroy(cmd->index, 0);
}

static const struct bpq_ioctl_op bpq_queue_ops[] = {
	BPQ_IOCTL_OP(BPQ_IOC_GET_CONFIG, bpq_ucmd_get_config,
		     struct bpq_config, __reserved, true),
	BPQ_IOCTL_OP(BPQ_IOC_SET_CONFIG, bpq_ucmd_set_config,
		     struct bpq_config, __reserved, false),
	BPQ_IOCTL_OP(BPQ_IOC_GET_STATS, bpq_ucmd_get_stats,
		     struct bpq_stats, latency_hist, true),
	BPQ_IOCTL_OP(BPQ_IOC_RESET_STATS, bpq_ucmd_reset_stats,
		     struct bpq_simple, flags, false),
	BPQ_IOCTL_OP(BPQ_IOC_GRANT, bpq_ucmd_grant,
		     struct bpq_grant, credits, false),
	BPQ_IOCTL_OP(BPQ_IOC_FLUSH, bpq_ucmd_flush,
		     struct bpq_simple, flags, false),
	BPQ_IOCTL_OP(BPQ_IOC_RECV, bpq_ucmd_recv,
		     struct bpq_recv, info, false),
	BPQ_IOCTL_OP(BPQ_IOC_SEND_BATCH, bpq_ucmd_send_batch,
		     struct bpq_send_batch, timeout_ms, false),
	BPQ_IOCTL_OP(BPQ_IOC_RECV_BATCH, bpq_ucmd_recv_batch,
		     struct bpq_recv_batch, __reserved, false),
	BPQ_IOCTL_OP(BPQ_IOC_RING_SETUP, bpq_ucmd_ring_setup,
		     struct bpq_ring_setup, mmap_bytes, true),
	BPQ_IOCTL_OP(BPQ_IOC_RING_SYNC, bpq_ucmd_ring_sync,
		     struct bpq_ring_sync, __reserved, false),
};

static const struct bpq_ioctl_op bpq_control_ops[] = {
	BPQ_IOCTL_OP(BPQ_IOC_CREATE, bpq_ucmd_create,
		     struct bpq_create, __reserved, false),
	BPQ_IOCTL_OP(BPQ_IOC_DESTROY, bpq_ucmd_destroy,
		     struct bpq_destroy, __reserved, false),
};

/* The published sizes never change; new fields go at the end. */
static_assert(sizeof(struct bpq_config) == 64);
static_assert(sizeof(struct bpq_stats) == 416);
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

static long bpq_dispatch(const struct bpq_ioctl_op *op, struct file *file,
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
	ret = copy_struct_from_user(&buf, op->size, ucmd.ubuffer,
				    ucmd.user_size);
	if (ret)
		return ret;
	ret = op->execute(&ucmd);
	if (ret >= 0 && op->copy_out &&
	    copy_to_user(ucmd.ubuffer, &buf, min(ucmd.user_size, op->size)))
		return -EFAULT;
	return ret;
}

long bpq_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	unsigned int nr = BPQ_OP_INDEX(cmd);

	if (nr >= ARRAY_SIZE(bpq_queue_ops) ||
	    bpq_queue_ops[nr].ioctl_num != cmd)
		return -ENOTTY;
	return bpq_dispatch(&bpq_queue_ops[nr], file, arg);
}

long bpq_control_ioctl(struct file *file, unsigned int cmd,
		       unsigned long arg)
{
	unsigned int nr = BPQ_OP_INDEX(cmd);

	if (nr >= ARRAY_SIZE(bpq_control_ops) ||
	    bpq_control_ops[nr].ioctl_num != cmd)
		return -ENOTTY;
	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	return bpq_dispatch(&bpq_control_ops[nr], file, arg);
}
