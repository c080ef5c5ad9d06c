// SPDX-License-Identifier: GPL-2.0
/*
 * Streams: the end of what a queue carries, as a pipe's last close says
 * it. A producer completes the stream or fails it with an errno, a
 * consumer cancels it (BPQ_IOC_SHUTDOWN, sysfs stream, or the last close
 * of one side with the hangup setting). Writers then fail with EPIPE;
 * readers drain what is queued and then meet end of file, or ECONNRESET
 * after a failure. Reopening starts a new epoch once nothing is left.
 *
 * The state lives under q->lock, and the data path looks at it only
 * where it already looks at q->dead: a writer before it queues, a reader
 * that finds nothing to take.
 */
#include <linux/poll.h>
#include <linux/sched/signal.h>
#include <linux/string.h>

#include "bpq.h"

/*
 * The names of the errno values a failed stream may carry, for sysfs
 * stream (the kernel's own table, errname(), is not there in every
 * build). ENOSYS stays a number: it means a bad system call alone.
 */
struct bpq_errname {
	u8 err;
	char name[16];
};

#define E(e)	{ e, #e }
static const struct bpq_errname bpq_errnames[] = {
	E(EPERM), E(ENOENT), E(ESRCH), E(EINTR), E(EIO), E(ENXIO), E(E2BIG),
	E(ENOEXEC), E(EBADF), E(ECHILD), E(EAGAIN), E(ENOMEM), E(EACCES),
	E(EFAULT), E(ENOTBLK), E(EBUSY), E(EEXIST), E(EXDEV), E(ENODEV),
	E(ENOTDIR), E(EISDIR), E(EINVAL), E(ENFILE), E(EMFILE), E(ENOTTY),
	E(ETXTBSY), E(EFBIG), E(ENOSPC), E(ESPIPE), E(EROFS), E(EMLINK),
	E(EPIPE), E(EDOM), E(ERANGE), E(EDEADLK), E(ENAMETOOLONG), E(ENOLCK),
	E(ENOTEMPTY), E(ELOOP), E(ENOMSG), E(EIDRM), E(ECHRNG), E(EL2NSYNC),
	E(EL3HLT), E(EL3RST), E(ELNRNG), E(EUNATCH), E(ENOCSI), E(EL2HLT),
	E(EBADE), E(EBADR), E(EXFULL), E(ENOANO), E(EBADRQC), E(EBADSLT),
	E(EBFONT), E(ENOSTR), E(ENODATA), E(ETIME), E(ENOSR), E(ENONET),
	E(ENOPKG), E(EREMOTE), E(ENOLINK), E(EADV), E(ESRMNT), E(ECOMM),
	E(EPROTO), E(EMULTIHOP), E(EDOTDOT), E(EBADMSG), E(EOVERFLOW),
	E(ENOTUNIQ), E(EBADFD), E(EREMCHG), E(ELIBACC), E(ELIBBAD), E(ELIBSCN),
	E(ELIBMAX), E(ELIBEXEC), E(EILSEQ), E(ERESTART), E(ESTRPIPE), E(EUSERS),
	E(ENOTSOCK), E(EDESTADDRREQ), E(EMSGSIZE), E(EPROTOTYPE),
	E(ENOPROTOOPT), E(EPROTONOSUPPORT), E(ESOCKTNOSUPPORT), E(EOPNOTSUPP),
	E(EPFNOSUPPORT), E(EAFNOSUPPORT), E(EADDRINUSE), E(EADDRNOTAVAIL),
	E(ENETDOWN), E(ENETUNREACH), E(ENETRESET), E(ECONNABORTED),
	E(ECONNRESET), E(ENOBUFS), E(EISCONN), E(ENOTCONN), E(ESHUTDOWN),
	E(ETOOMANYREFS), E(ETIMEDOUT), E(ECONNREFUSED), E(EHOSTDOWN),
	E(EHOSTUNREACH), E(EALREADY), E(EINPROGRESS), E(ESTALE), E(EUCLEAN),
	E(ENOTNAM), E(ENAVAIL), E(EISNAM), E(EREMOTEIO), E(EDQUOT),
	E(ENOMEDIUM), E(EMEDIUMTYPE), E(ECANCELED), E(ENOKEY), E(EKEYEXPIRED),
	E(EKEYREVOKED), E(EKEYREJECTED), E(EOWNERDEAD), E(ENOTRECOVERABLE),
	E(ERFKILL), E(EHWPOISON),
};

#undef E

static const char * const bpq_stream_names[] = {
	[BPQ_STREAM_OPEN] = "open",
	[BPQ_STREAM_COMPLETED] = "completed",
	[BPQ_STREAM_FAILED] = "failed",
	[BPQ_STREAM_CANCELLED] = "cancelled",
};

/* A producer's failure: an errno a reader could be given, not a retry */
static bool bpq_stream_errno_ok(u32 err)
{
	return err && err <= BPQ_ERRNO_MAX && err != EAGAIN && err != EINTR;
}

/*
 * Once the stream has ended and nothing of it is left to come, readers
 * meet its end: the waiting ones are woken to find it, a ring's reader
 * sees it in the control page (after the tail that holds the last
 * record), pollers hear EPOLLHUP. Under q->lock, wherever messages
 * leave.
 */
void bpq_stream_check(struct bpq_queue *q, struct bpq_defer *df)
{
	lockdep_assert_held(&q->lock);
	if (!bpq_stream_drained(q))
		return;
	bpq_settle_readers(q, 0, df);	/* to look again, and find the end */
	if (q->ring) {
		/* after the tail of its last record: end of file past it */
		smp_store_release(&q->ring->ctl->end, q->stream);
		/* its syncers queue themselves under q->lock, which we hold */
		wake_up_interruptible_all(&q->ring->wait);
	}
	bpq_wake_pollers(q, df, EPOLLIN | EPOLLRDNORM | EPOLLHUP | EPOLLRDHUP);
	if (q->fasync)
		kill_fasync(&q->fasync, SIGIO, POLL_HUP);
}

/* End the open stream @q as @state says: writers out, then readers. */
static void bpq_stream_end(struct bpq_queue *q, u32 state, u32 err,
			   struct bpq_defer *df)
{
	__poll_t mask = EPOLLRDHUP | EPOLLOUT | EPOLLWRNORM;

	lockdep_assert_held(&q->lock);
	q->stream = state;
	q->stream_error = err;
	bpq_notify(q->kn_stream);
	bpq_settle_writers(q, -EPIPE, df);
	if (state == BPQ_STREAM_CANCELLED)
		mask |= EPOLLERR;
	bpq_wake_pollers(q, df, mask);
	bpq_stream_check(q, df);
}

/* The consumer cancels, if it has not: under q->lock. */
void bpq_stream_cancel(struct bpq_queue *q, struct bpq_defer *df)
{
	if (q->stream != BPQ_STREAM_CANCELLED)
		bpq_stream_end(q, BPQ_STREAM_CANCELLED, 0, df);
}

static void bpq_stream_reopen(struct bpq_queue *q, struct bpq_defer *df)
{
	q->stream = BPQ_STREAM_OPEN;
	q->stream_error = 0;
	q->stream_epoch++;
	bpq_notify(q->kn_stream);
	if (q->ring)
		WRITE_ONCE(q->ring->ctl->end, 0);
	bpq_room_made(q, df);
}

/*
 * Apply shutdown @flags (one kind, as bpq_shutdown() checked, its
 * discard aside) to @q under q->lock. Returns 0 or an errno.
 */
static int bpq_stream_shut(struct bpq_queue *q, u32 flags, u32 err,
			   struct bpq_defer *df)
{
	u32 kind = flags & ~BPQ_SHUTDOWN_DISCARD;
	u32 want = kind == BPQ_SHUTDOWN_FAIL ? BPQ_STREAM_FAILED :
		   BPQ_STREAM_COMPLETED;

	lockdep_assert_held(&q->lock);
	switch (kind) {
	case BPQ_SHUTDOWN_COMPLETE:
	case BPQ_SHUTDOWN_FAIL:
		if (q->stream == want)
			return 0;	/* a failure keeps its first errno */
		if (q->stream == BPQ_STREAM_CANCELLED)
			return -EPIPE;
		if (q->stream)
			return -EBUSY;
		bpq_stream_end(q, want, err, df);
		return 0;
	case BPQ_SHUTDOWN_CANCEL:
		bpq_stream_cancel(q, df);
		return 0;
	default:	/* BPQ_SHUTDOWN_REOPEN */
		if (!q->stream)
			return 0;
		if (q->depth_msgs || (q->ring && q->ring->busy))
			return -EBUSY;
		bpq_stream_reopen(q, df);
		return 0;
	}
}

/* Returns what BPQ_IOC_SHUTDOWN returns. */
static int bpq_stream_apply(struct bpq_queue *q, u32 flags, u32 err)
{
	struct bpq_defer df __bpq_noinit;
	int ret;

	if (flags & BPQ_SHUTDOWN_DISCARD)
		return bpq_flush(q, true);
	bpq_defer_init(&df);
	spin_lock(&q->lock);
	if (q->dead)
		ret = -ENODEV;
	else
		ret = bpq_stream_shut(q, flags, err, &df);
	bpq_unlock(q, &df);
	return ret;
}

/*
 * BPQ_IOC_SHUTDOWN from the file @bf: a producer's end needs it to act
 * for the writers, a consumer's cancel for the readers (bpq_file_may()).
 */
int bpq_shutdown(struct bpq_file *bf, u32 flags, u32 err)
{
	u32 kind = flags & ~BPQ_SHUTDOWN_DISCARD;

	if (flags & ~BPQ_SHUTDOWN_FLAGS || hweight32(kind) != 1)
		return -EINVAL;
	if ((flags & BPQ_SHUTDOWN_DISCARD) && kind != BPQ_SHUTDOWN_CANCEL)
		return -EINVAL;
	if (kind == BPQ_SHUTDOWN_FAIL ? !bpq_stream_errno_ok(err) : err)
		return -EINVAL;
	if ((kind & (BPQ_SHUTDOWN_COMPLETE | BPQ_SHUTDOWN_FAIL)) &&
	    !bpq_file_may(bf, FMODE_WRITE))
		return -EBADF;
	if (kind == BPQ_SHUTDOWN_CANCEL && !bpq_file_may(bf, FMODE_READ))
		return -EBADF;
	return bpq_stream_apply(bf->q, flags, err);
}

/*
 * The stream's state as sysfs stream says it, a line: "open",
 * "completed", "failed EIO", "cancelled".
 */
int bpq_stream_format(struct bpq_queue *q, char *buf, size_t size)
{
	u32 state, err, i;

	spin_lock(&q->lock);
	state = q->stream;
	err = q->stream_error;
	spin_unlock(&q->lock);
	if (state != BPQ_STREAM_FAILED)
		return scnprintf(buf, size, "%s\n", bpq_stream_names[state]);
	for (i = 0; i < ARRAY_SIZE(bpq_errnames); i++)
		if (bpq_errnames[i].err == err)
			return scnprintf(buf, size, "failed %s\n",
					 bpq_errnames[i].name);
	return scnprintf(buf, size, "failed %u\n", err);
}

/* An errno by name (EIO) or number (5), or 0 */
static u32 bpq_errno_parse(const char *s)
{
	u32 err, i;

	if (!kstrtou32(s, 10, &err))
		return err <= BPQ_ERRNO_MAX ? err : 0;
	for (i = 0; i < ARRAY_SIZE(bpq_errnames); i++)
		if (!strcmp(s, bpq_errnames[i].name))
			return bpq_errnames[i].err;
	return 0;
}

/*
 * sysfs stream, written: "open" reopens, "completed", "cancelled" and
 * "failed ERRNO" (a name or a number) end the stream as the shutdown of
 * that kind would.
 */
int bpq_stream_store(struct bpq_queue *q, const char *buf)
{
	char word[24], *arg;
	u32 flags, err = 0;

	if (strscpy(word, buf, sizeof(word)) < 0)
		return -EINVAL;
	arg = strim(word);
	if (!strcmp(arg, "open")) {
		flags = BPQ_SHUTDOWN_REOPEN;
	} else if (!strcmp(arg, "completed")) {
		flags = BPQ_SHUTDOWN_COMPLETE;
	} else if (!strcmp(arg, "cancelled")) {
		flags = BPQ_SHUTDOWN_CANCEL;
	} else if (!strncmp(arg, "failed ", 7)) {
		flags = BPQ_SHUTDOWN_FAIL;
		err = bpq_errno_parse(skip_spaces(arg + 7));
		if (!bpq_stream_errno_ok(err))
			return -EINVAL;
	} else {
		return -EINVAL;
	}
	return bpq_stream_apply(q, flags, err);
}

/*
 * Does an open as @mode start @q's ended stream again? As a FIFO's next
 * reader and writer meet in a new stream: with hangup writers an open
 * for reading or writing of a completed stream, with hangup readers an open for reading of a
 * cancelled one, once nothing of the old stream is left.
 */
static bool bpq_stream_reopens(struct bpq_queue *q, fmode_t mode)
{
	/* an ioctl-only open (a supervisor's, a monitor's) is of no side */
	if (!mode || !bpq_stream_drained(q))
		return false;
	if (q->stream == BPQ_STREAM_COMPLETED)
		return q->cfg.hangup & BPQ_HANGUP_WRITERS;
	return q->stream == BPQ_STREAM_CANCELLED && (mode & FMODE_READ) &&
	       (q->cfg.hangup & BPQ_HANGUP_READERS);
}

/*
 * A file of @q opened as @mode is counted on its sides, and may start
 * the stream again (bpq_stream_reopens()). Returns -ENODEV for a dead
 * queue.
 */
int bpq_stream_opened(struct bpq_queue *q, fmode_t mode, u64 *lost_seen)
{
	struct bpq_defer df __bpq_noinit;
	int ret = 0;

	bpq_defer_init(&df);
	spin_lock(&q->lock);
	if (q->dead) {
		ret = -ENODEV;
		goto out;
	}
	*lost_seen = q->lost;
	q->nr_files++;
	if (mode & FMODE_READ)
		q->nr_readers++;
	if (mode & FMODE_WRITE)
		q->nr_writers++;
	if (q->stream && bpq_stream_reopens(q, mode))
		bpq_stream_reopen(q, &df);
out:
	bpq_unlock(q, &df);
	return ret;
}

/*
 * A file of @q opened as @mode was released: the last one of a side ends
 * an open stream as the hangup setting says.
 */
void bpq_stream_closed(struct bpq_queue *q, fmode_t mode)
{
	struct bpq_defer df __bpq_noinit;

	bpq_defer_init(&df);
	spin_lock(&q->lock);
	if ((mode & FMODE_WRITE) && !--q->nr_writers && !q->stream && !q->dead &&
	    (q->cfg.hangup & BPQ_HANGUP_WRITERS))
		bpq_stream_end(q, BPQ_STREAM_COMPLETED, 0, &df);
	if ((mode & FMODE_READ) && !--q->nr_readers && !q->stream && !q->dead &&
	    (q->cfg.hangup & BPQ_HANGUP_READERS))
		bpq_stream_end(q, BPQ_STREAM_CANCELLED, 0, &df);
	if (!--q->nr_files)
		bpq_log_idle(q, &df);
	bpq_unlock(q, &df);
}
