// SPDX-License-Identifier: GPL-2.0
/*
 * The data path: one send and one receive primitive, over iov_iter, for
 * every way a message moves. bpq_send() serves write(), writev() and
 * BPQ_IOC_SEND_BATCH; bpq_recv() serves read(), readv(), BPQ_IOC_RECV and
 * BPQ_IOC_RECV_BATCH. Each works a chunk of messages per hold of q->lock.
 * Small messages are copied under it with page faults off (the send's in
 * bpq_send_many(), the queue's admission; the receive's here, in
 * bpq_recv_fast()); the others, and one whose page is missing, are copied
 * with no lock held. A message leaves the queue only once all of its
 * payload, and its record, reached the reader; a fault leaves it queued
 * and fails the call with EFAULT unless messages before it were
 * delivered. The receive side's steps under q->lock are here too.
 */
#include <linux/fs.h>
#include <linux/pagemap.h>
#include <linux/ktime.h>
#include <linux/poll.h>
#include <linux/sched.h>
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
			const struct bpq_msg *msg, u32 len, u64 seq, u64 lost,
			u32 offset)
{
	if (!user_write_access_begin(uinfo, sizeof(*uinfo)))
		return -EFAULT;
	unsafe_put_user(seq, &uinfo->seq, efault);
	unsafe_put_user(msg->tstamp, &uinfo->timestamp_ns, efault);
	unsafe_put_user(lost, &uinfo->lost, efault);
	unsafe_put_user(len, &uinfo->len, efault);
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

/* Tries of a copy that faulted, with its pages brought in between */
#define BPQ_FAULT_TRIES	16

/*
 * Queue the messages of @tx, in order, each as the queue's strategy says:
 * straight into a receive ring when it can (bpq_ring_send()), else into
 * the queue's log under one hold of the lock per chunk, the small ones
 * copied in during it (bpq_send_many()). What that leaves to do is done
 * here, with no lock held: bring pages for the records, bring in the
 * page of a payload that faulted, copy in a large message, or one whose
 * writer waited, into its reserved record. That copy runs with page
 * faults off too, as readers wait for it: one that faults gives its
 * record up and the message is made again once its page is in. Returns
 * how many were queued, or the error of the first.
 */
int bpq_send(struct bpq_file *bf, struct bpq_tx *tx)
{
	struct bpq_iovec vecs[BPQ_BATCH_CHUNK] __bpq_noinit;
	struct bpq_queue *q = bf->q;
	unsigned int i, n, faults = 0;
	u32 sent = 0;
	int ret = 0;
	bool ok;

	tx->vecs = vecs;
	tx->pending = NULL;
	/* pages taken under the lock are charged to the file's user */
	bpq_pool_init(&tx->pool, bf->user, bpq_user_is_current(bf->user));
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
		for (i = 0; i < tx->n; ) {
			n = bpq_send_many(bf, tx, i, &ret);
			if (n)
				faults = 0;	/* a count per message */
			i += n;
			if (tx->stall == BPQ_TX_COPY) {
				/* readers wait for it: no fault while they do */
				pagefault_disable();
				ok = bpq_msg_copy_in(tx->pending, tx->vecs[i].len,
						     bpq_tx_iter(tx, i));
				pagefault_enable();
				ret = bpq_commit(bf, tx, ok);
				if (!ret) {
					i++;
					faults = 0;
				} else if (ret == BPQ_GONE) {
					ret = -EFAULT;	/* counted as lost */
					break;
				}
			}
			if (tx->stall == BPQ_TX_PAGES) {
				ret = bpq_pool_fill(&tx->pool, bf->user);
				if (ret)
					break;
			} else if (ret == -EFAULT || tx->stall == BPQ_TX_FAULT) {
				if (++faults > BPQ_FAULT_TRIES ||
				    fault_in_iov_iter_readable(bpq_tx_iter(tx, i),
							       tx->vecs[i].len)) {
					ret = -EFAULT;
					break;
				}
				ret = 0;
			} else if (tx->stall != BPQ_TX_COPY) {
				break;	/* done, or refused */
			}
		}
		sent += i;
		if (i < tx->n)
			break;
	}
	bpq_pool_drain(&tx->pool);
	return sent ? sent : ret;
}

/*
 * Copy @msg out as message @i of @rx: its payload, then its record. On a
 * fault, false, and rx->to is as it was. With or without q->lock.
 */
static bool bpq_rx_copy(struct bpq_rx *rx, unsigned int i,
			const struct bpq_msg *msg, u32 from, u32 len, u64 seq,
			u64 lost)
{
	size_t copied = bpq_msg_copy_out(msg, from, len, rx->to);

	if (copied == len &&
	    (!rx->info ||
	     !bpq_put_info(&rx->uinfos[i], msg, len, seq, lost, rx->bytes))) {
		rx->bytes += len;
		return true;
	}
	iov_iter_revert(rx->to, copied);
	return false;
}

#define BPQ_RX_EMPTY	1	/* bpq_recv_fast() found nothing more */
#define BPQ_RX_SLOW	2	/* the next message takes the ordinary path */

/*
 * Take the oldest available message for copying out, waiting for one as
 * @flags and @timeout_ms say; it stays queued, and counted, until
 * bpq_recv_end_many(). NULL: end of file, the stream ended and drained
 * (a failed one's is -ECONNRESET). @loss gets the messages dropped since
 * the file's last receive, and what to copy: loss->take bytes from
 * loss->from on, the message's rest, or with BPQ_IO_STREAM as much of it
 * as @room holds.
 */
static noinline_for_stack struct bpq_msg *
bpq_recv_begin(struct bpq_queue *q, struct bpq_file *bf, size_t room,
	       u32 flags, u32 timeout_ms, struct bpq_loss *loss)
{
	struct bpq_reader r = { };
	bool keep_place = false;
	struct bpq_defer df __bpq_noinit;
	ktime_t deadline = 0;
	struct bpq_msg *msg;
	int ret;

	bpq_defer_init(&df);
	spin_lock(&q->lock);
	for (;;) {
		msg = r.msg;
		r.msg = NULL;
		if (msg && bpq_pin_gone(q, msg, r.gen, &df)) {
			/* evicted or flushed before we woke: keep our turn */
			keep_place = true;
			msg = NULL;
		}
		if (q->dead) {
			/* a message handed to us stays listed; release frees it */
			msg = ERR_PTR(-ENODEV);
			break;
		}
		if (q->ring) {
			/* it has the queue's one reader */
			msg = ERR_PTR(-EBUSY);
			break;
		}
		if (!msg) {
			msg = bpq_first_avail(q);
			/* a stream goes on where it was, if that is free */
			if (msg && (flags & BPQ_IO_STREAM) && q->part &&
			    !(bpq_msg_flags(q->part) & BPQ_MSG_INFLIGHT))
				msg = q->part;
			if (msg)
				bpq_take(q, msg);
		}
		if (msg) {
			loss->take = bpq_msg_rest(q, msg, &loss->from);
			if (loss->take <= room)
				break;
			/* its front, if no other message is read in part */
			if ((flags & BPQ_IO_STREAM) &&
			    (!q->part || q->part == msg)) {
				loss->take = room;
				break;
			}
			bpq_untake(q, msg, &df);
			msg = ERR_PTR(-EMSGSIZE);
			break;
		}
		if (unlikely(bpq_stream_drained(q))) {
			if (q->stream == BPQ_STREAM_FAILED)
				msg = ERR_PTR(-ECONNRESET);
			break;
		}
		if (q->cfg.strategy == BPQ_STRATEGY_ADAPTIVE)
			q->ad.starved = true;
		if (flags & BPQ_IO_NONBLOCK) {
			msg = ERR_PTR(-EAGAIN);
			break;
		}
		/* the clock only for a wait: most receives find a message */
		if (!deadline)
			deadline = bpq_deadline(ktime_get(), flags, timeout_ms,
						0);
		r.task = current;
		r.result = BPQ_PENDING;
		if (keep_place)
			list_add(&r.node, &q->readers);
		else
			list_add_tail(&r.node, &q->readers);
		ret = bpq_sleep(q, &df, deadline);
		if (r.result == BPQ_PENDING) {
			list_del_init(&r.node);
			if (ret) {
				msg = ERR_PTR(ret);
				break;
			}
			keep_place = true;	/* woken for nothing */
		} else if (r.result < 0) {
			msg = ERR_PTR(r.result);
			break;
		}
	}
	if (!IS_ERR_OR_NULL(msg)) {
		loss->mark = q->lost;
		loss->count = q->lost - bf->lost_seen;
		loss->seq = q->next_seq;
		loss->gen = q->log_gen;
	}
	bpq_unlock(q, &df);
	return msg;
}

/*
 * After bpq_recv_begin(): take up to @max further available messages that
 * fit in @room, in order, under one hold of the lock, from the same log as
 * the first. *mark gets the loss count at that moment.
 */
static unsigned int bpq_recv_more(struct bpq_queue *q,
				  struct bpq_msg **msgs, unsigned int max,
				  size_t room, u64 *mark, struct bpq_loss *loss)
{
	struct bpq_msg *msg;
	unsigned int n = 0;
	u32 len;

	spin_lock(&q->lock);
	if (!q->dead && !q->ring && q->log_gen == loss->gen) {
		for (msg = bpq_first_avail(q); msg && n < max;
		     msg = bpq_next_avail(q, msg)) {
			len = bpq_msg_len(msg);
			if (len > room || msg == q->part)
				break;
			bpq_take(q, msg);
			room -= len;
			msgs[n++] = msg;
		}
		loss->seq = q->next_seq;
	}
	*mark = q->lost;
	spin_unlock(&q->lock);
	return n;
}

/*
 * Finish a receive of the @n messages taken by bpq_recv_begin() and
 * bpq_recv_more(), of which the first @copied reached the reader whole,
 * but the first's payload only up to @part if that is not 0. Those count
 * as delivered, but for the first in part, which stays, the rest of it
 * to take; the others go back to the queue, in place. A message evicted
 * or flushed meanwhile ends the delivered run (its reader lets it go and
 * should take the next one). Returns how many were delivered (or read in
 * part); the loss reported up to @mark is then consumed.
 */
static noinline_for_stack unsigned int
bpq_recv_end_many(struct bpq_queue *q, struct bpq_file *bf,
		  struct bpq_msg **msgs, unsigned int n, unsigned int copied,
		  u32 part, u64 mark, u64 gen)
{
	unsigned int i, delivered = 0;
	struct bpq_delivery d = { };
	struct bpq_defer df __bpq_noinit;
	struct bpq_msg *msg;

	bpq_defer_init(&df);
	spin_lock(&q->lock);
	for (i = 0; i < n; i++) {
		msg = msgs[i];
		if (bpq_pin_gone(q, msg, gen, &df)) {
			copied = min(copied, i);
		} else if (i < copied && !i && part) {
			bpq_read_part(q, msg, part, &df);
			delivered++;
		} else if (i < copied) {
			if (!delivered)
				d = bpq_delivery_start(q);
			bpq_deliver(q, msg, &d, &df);
			delivered++;
		} else {
			bpq_untake(q, msg, &df);
		}
	}
	if (delivered) {
		if (mark > bf->lost_seen)
			bf->lost_seen = mark;
		bpq_room_made(q, &df);
	}
	bpq_unlock(q, &df);
	return delivered;
}

/* What one hold of the lock copies out on the fast path, at most */
#define BPQ_RECV_FAST_BYTES	(64U << 10)

/*
 * The receive fast path: under one hold of q->lock, with page faults off,
 * copy out and deliver the available messages of up to BPQ_COPY_LOCKED_MAX
 * bytes in order, as many as @rx takes from its message @n on, reading
 * the clock once. A larger message, one that does not fit in what is
 * left of rx->to, or a copy that faults, ends it: that message takes the
 * ordinary path (bpq_recv_begin()), as does a wait. Returns how many were
 * delivered; *@stop says why it stopped: BPQ_RX_EMPTY (nothing left to
 * take), BPQ_RX_SLOW (the ordinary path's turn), or 0 (rx->max or the
 * budget of one hold).
 */
static noinline_for_stack unsigned int
bpq_recv_fast(struct bpq_file *bf, struct bpq_rx *rx, unsigned int n,
	      unsigned int *stop)
{
	struct bpq_defer df __bpq_noinit;
	struct bpq_queue *q = bf->q;
	struct bpq_msg *msg, *next;
	struct bpq_delivery d;
	unsigned int done = 0;
	u32 len, bytes = 0;

	bpq_defer_init(&df);
	*stop = BPQ_RX_SLOW;
	spin_lock(&q->lock);
	if (q->dead || q->ring)
		goto out;	/* the ordinary path says why */
	msg = bpq_first_avail(q);
	if (!msg) {
		*stop = BPQ_RX_EMPTY;
		goto out;
	}
	d = bpq_delivery_start(q);
	pagefault_disable();
	for (; msg; msg = next) {
		len = bpq_msg_len(msg);
		if (n + done == rx->max || bytes >= BPQ_RECV_FAST_BYTES) {
			*stop = 0;
			break;
		}
		if (len > BPQ_COPY_LOCKED_MAX || len > iov_iter_count(rx->to) ||
		    unlikely(msg == q->part))
			break;
		next = bpq_next_avail(q, msg);
		/* the loss since the file's last receive goes with the first */
		if (!bpq_rx_copy(rx, n + done, msg, 0, len,
				 bpq_msg_seq(msg, q->next_seq),
				 done ? 0 : q->lost - bf->lost_seen))
			break;
		bpq_deliver(q, msg, &d, &df);
		bytes += len;
		done++;
	}
	pagefault_enable();
	if (!msg)
		*stop = BPQ_RX_EMPTY;
	if (done) {
		bf->lost_seen = q->lost;
		bpq_room_made(q, &df);
	}
out:
	bpq_unlock(q, &df);
	return done;
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
	u32 part;
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
		if (IS_ERR_OR_NULL(msgs[0])) {
			ret = PTR_ERR_OR_ZERO(msgs[0]);	/* 0: end of file */
			break;
		}
		cnt = 1;
		if (rx->max - n > 1)
			cnt += bpq_recv_more(q, msgs + 1,
					     min(rx->max - n,
						 BPQ_BATCH_CHUNK) - 1,
					     room - loss.take, &mark, &loss);
		if (cnt == 1)
			mark = loss.mark;
		start = rx->bytes;
		for (copied = 0; copied < cnt; copied++) {
			/* the loss before the first, and between the takes */
			lost = copied ? copied == 1 ? mark - loss.mark : 0 :
				 loss.count;
			if (!bpq_rx_copy(rx, n + copied, msgs[copied],
					 copied ? 0 : loss.from,
					 copied ? bpq_msg_len(msgs[copied]) :
						  loss.take,
					 bpq_msg_seq(msgs[copied], loss.seq),
					 lost))
				break;
			ends[copied] = rx->bytes;
		}
		/* a stream read may take the front of the first */
		part = loss.from + loss.take;
		if (part == bpq_msg_len(msgs[0]))
			part = 0;
		done = bpq_recv_end_many(q, bf, msgs, cnt, copied, part, mark,
					 loss.gen);
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

/*
 * BPQ_READ_STREAM: reads take turns, as a pipe's do, each going on where
 * the one before left off.
 */
static int bpq_read_turn(struct bpq_queue *q, u32 flags)
{
	if (flags & BPQ_IO_NONBLOCK)
		return mutex_trylock(&q->read_mutex) ? 0 : -EAGAIN;
	return mutex_lock_interruptible(&q->read_mutex) ? -ERESTARTSYS : 0;
}

/*
 * One message, whole, or an error; the file's loss count moves on. In
 * BPQ_READ_STREAM mode, as much of the next message as @to holds.
 */
ssize_t bpq_read_iter(struct kiocb *iocb, struct iov_iter *to)
{
	struct bpq_file *bf = iocb->ki_filp->private_data;
	struct bpq_rx rx = {
		.to = to,
		.max = 1,
		.flags = bpq_iocb_flags(iocb),
	};
	int ret;

	if (!iov_iter_count(to))
		return 0;
	if (unlikely(READ_ONCE(bf->q->cfg.read_mode) == BPQ_READ_STREAM)) {
		ret = bpq_read_turn(bf->q, rx.flags);
		if (ret)
			return ret;
		rx.flags |= BPQ_IO_STREAM;
		ret = bpq_recv(bf, &rx);
		mutex_unlock(&bf->q->read_mutex);
	} else {
		ret = bpq_recv(bf, &rx);
	}
	if (ret < 0)
		return ret;
	return rx.bytes;
}

/* One message of all the bytes, or an error; EPIPE raises SIGPIPE. */
ssize_t bpq_write_iter(struct kiocb *iocb, struct iov_iter *from)
{
	size_t len = iov_iter_count(from);
	struct bpq_tx tx __bpq_noinit;
	int ret;

	if (!len)
		return 0;
	bpq_tx_init(&tx, from, NULL, 1, bpq_iocb_flags(iocb), 0);
	ret = bpq_send(iocb->ki_filp->private_data, &tx);
	if (ret == -EPIPE)
		send_sig(SIGPIPE, current, 0);
	if (ret < 0)
		return ret;
	return len;
}
