// SPDX-License-Identifier: GPL-2.0
/*
 * The data path: one send and one receive primitive, over iov_iter, for
 * every way a message moves. bpq_send() serves write(), writev() and
 * BPQ_IOC_SEND_BATCH; bpq_recv() serves read(), readv(), BPQ_IOC_RECV and
 * BPQ_IOC_RECV_BATCH. Each works a chunk of up to BPQ_BATCH_CHUNK
 * messages per hold of q->lock and copies with no lock held. A message
 * leaves the queue only once all of its payload, and its record, reached
 * the reader; a fault leaves it queued and fails the call with EFAULT
 * unless messages before it were delivered.
 */
#include <linux/fs.h>
#include <linux/uaccess.h>
#include <linux/uio.h>

#include "bpq.h"

/*
 * The small fixed records of the I/O commands move field by field in one
 * user-access window: a batch has one per message, and a copy routine
 * per 16 or 32 bytes costs more than the stores.
 */
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

/*
 * Take the next chunk of @tx, from its message @sent, into tx->vecs: how
 * many messages. A bad iovec ends the chunk, and the batch after it,
 * with *@err.
 */
static unsigned int bpq_tx_chunk(struct bpq_tx *tx, u32 sent, int *err)
{
	u32 n, count;

	if (tx->from)
		return tx->n = 1;	/* vecs[0].len is all of it */
	count = min(tx->count - sent, BPQ_BATCH_CHUNK);
	for (n = 0; n < count; n++) {
		*err = bpq_get_iovec(&tx->vecs[n], &tx->uvec[sent + n]);
		if (!*err && (tx->vecs[n].__reserved || !tx->vecs[n].len))
			*err = -EINVAL;
		if (*err)
			break;
	}
	return tx->n = n;
}

/*
 * Allocate and copy in the messages of the chunk that take the ordinary
 * path: the large ones, and the first @slow; the others (NULL) are carved
 * and copied in under the lock (bpq_send_many()). Returns how many, or
 * the error of the first.
 */
static int bpq_copy_in(struct bpq_file *bf, struct bpq_tx *tx,
		       struct bpq_msg **msgs, unsigned int slow)
{
	struct bpq_msg *msg;
	unsigned int i;
	int ret = 0;

	for (i = 0; i < tx->n; i++) {
		if (i >= slow && tx->carve &&
		    tx->vecs[i].len <= BPQ_CHUNK_MSG_MAX) {
			msgs[i] = NULL;
			continue;
		}
		msg = bpq_msg_alloc(bf, tx->vecs[i].len);
		if (IS_ERR(msg)) {
			ret = PTR_ERR(msg);
			break;
		}
		if (!copy_from_iter_full(msg->data, msg->len,
					 bpq_tx_iter(tx, i))) {
			bpq_msg_free(msg);
			ret = -EFAULT;
			break;
		}
		msgs[i] = msg;
	}
	return i ? i : ret;
}

/*
 * Queue the messages of @tx, in order, each as the queue's strategy says:
 * straight into a receive ring when it can (bpq_ring_send()), else as
 * messages queued under one hold of the lock per chunk, the small ones
 * copied in during it. One that could not be copied in there (a fault,
 * no memory without sleeping) is tried again the ordinary way. Returns
 * how many were queued, or the error of the first.
 */
int bpq_send(struct bpq_file *bf, struct bpq_tx *tx)
{
	struct bpq_iovec vecs[BPQ_BATCH_CHUNK] __bpq_noinit;
	struct bpq_queue *q = bf->q;
	unsigned int slow = 0;
	u32 sent = 0;
	int n, ret = 0;

	tx->vecs = vecs;
	/* a chunk is charged to the file's user: its writer must be it */
	tx->carve = bpq_user_is_current(bf->user);
	if (tx->from)
		vecs[0].len = iov_iter_count(tx->from);	/* < MAX_RW_COUNT */
	while (sent < tx->count) {
		if (!bpq_tx_chunk(tx, sent, &ret))
			break;
		if (READ_ONCE(q->ring)) {
			ret = bpq_ring_send(q, tx);
			if (ret < 0)
				break;
			sent += ret;
			if (ret)
				continue;
		}
		n = bpq_copy_in(bf, tx, tx->msgs, slow);
		if (n < 0) {
			ret = n;
			break;
		}
		ret = bpq_send_many(bf, tx, tx->msgs, n);
		if (ret > 0)
			sent += ret;
		slow = tx->stall;
		if (ret != n && !slow)
			break;	/* refused */
	}
	return sent ? sent : ret;
}

/*
 * Copy @msg out as message @i of @rx: its payload, then its record. On a
 * fault, false, and rx->to is as it was. With or without q->lock.
 */
bool bpq_rx_copy(struct bpq_rx *rx, unsigned int i, const struct bpq_msg *msg,
		 u64 lost)
{
	size_t copied = bpq_msg_copy_out(msg, rx->to);

	if (copied == msg->len &&
	    (!rx->info ||
	     !bpq_put_info(&rx->uinfos[i], msg, lost, rx->bytes))) {
		rx->bytes += msg->len;
		return true;
	}
	iov_iter_revert(rx->to, copied);
	return false;
}

/*
 * Receive up to rx->max messages that fit in rx->to, waiting only for the
 * first, as rx->flags say: as many as it can under q->lock
 * (bpq_recv_fast()), the others taken, copied out without the lock and
 * then delivered (bpq_recv_begin() to bpq_recv_end_many()). Returns how
 * many were delivered (rx->bytes says how much payload), or the error of
 * the first.
 */
int bpq_recv(struct bpq_file *bf, struct bpq_rx *rx)
{
	struct bpq_msg *msgs[BPQ_BATCH_CHUNK] __bpq_noinit;
	u32 ends[BPQ_BATCH_CHUNK] __bpq_noinit;	/* rx->bytes after each */
	unsigned int cnt, copied, done, n = 0;
	struct bpq_queue *q = bf->q;
	u32 flags = rx->flags, start;
	struct bpq_loss loss;
	unsigned int stop;
	size_t room;
	u64 mark, lost;
	int ret = 0;

	while (n < rx->max) {
		done = bpq_recv_fast(bf, rx, n, &stop);
		n += done;
		if (done)
			flags |= BPQ_IO_NONBLOCK;
		if (n == rx->max || (stop == BPQ_RX_EMPTY && n))
			break;
		if (!stop)
			continue;
		/* a large message, a fault, a wait, or an error to report */
		room = iov_iter_count(rx->to);
		msgs[0] = bpq_recv_begin(q, bf, room, flags, rx->timeout_ms,
					 &loss);
		if (IS_ERR(msgs[0])) {
			ret = PTR_ERR(msgs[0]);
			break;
		}
		cnt = 1;
		if (rx->max - n > 1)
			cnt += bpq_recv_more(q, msgs + 1,
					     min(rx->max - n,
						 BPQ_BATCH_CHUNK) - 1,
					     room - msgs[0]->len, &mark);
		if (cnt == 1)
			mark = loss.mark;
		start = rx->bytes;
		for (copied = 0; copied < cnt; copied++) {
			/* the loss before the first, and between the takes */
			lost = copied ? copied == 1 ? mark - loss.mark : 0 :
				 loss.count;
			if (!bpq_rx_copy(rx, n + copied, msgs[copied], lost))
				break;
			ends[copied] = rx->bytes;
		}
		done = bpq_recv_end_many(q, bf, msgs, cnt, copied, mark);
		n += done;
		if (done < copied) {
			/* evicted meanwhile: give back what followed it */
			rx->bytes = done ? ends[done - 1] : start;
			iov_iter_revert(rx->to, ends[copied - 1] - rx->bytes);
			continue;
		}
		if (copied < cnt) {
			ret = -EFAULT;
			break;
		}
		/* only the first message is waited for */
		flags |= BPQ_IO_NONBLOCK;
	}
	return n ? n : ret;
}

/*
 * A call that must not sleep: O_NONBLOCK, RWF_NOWAIT, and io_uring's first
 * try, after which it waits in poll instead of in a worker thread.
 */
static u32 bpq_iocb_flags(const struct kiocb *iocb)
{
	if ((iocb->ki_filp->f_flags & O_NONBLOCK) ||
	    (iocb->ki_flags & IOCB_NOWAIT))
		return BPQ_IO_NONBLOCK;
	return 0;
}

/* One message, whole, or an error; the file's loss count moves on. */
ssize_t bpq_read_iter(struct kiocb *iocb, struct iov_iter *to)
{
	struct bpq_rx rx = {
		.to = to,
		.max = 1,
		.flags = bpq_iocb_flags(iocb),
	};
	int ret;

	if (!iov_iter_count(to))
		return 0;
	ret = bpq_recv(iocb->ki_filp->private_data, &rx);
	if (ret < 0)
		return ret;
	return rx.bytes;
}

/* One message of all the bytes, or an error. */
ssize_t bpq_write_iter(struct kiocb *iocb, struct iov_iter *from)
{
	size_t len = iov_iter_count(from);
	struct bpq_tx tx __bpq_noinit;
	int ret;

	if (!len)
		return 0;
	bpq_tx_init(&tx, from, NULL, 1, bpq_iocb_flags(iocb), 0);
	ret = bpq_send(iocb->ki_filp->private_data, &tx);
	if (ret < 0)
		return ret;
	return len;
}
