// SPDX-License-Identifier: MIT
/*
 * A pipeline's stage: records in from one queue, through the caller's
 * function, out to the next, with the streams' ends carried along.
 *
 * The input is taken a batch at a time. What the function emits for the
 * batch is sent at once after it (bpq_send_batch(), waiting for room as
 * the output queue's strategy says), and only then is the batch
 * acknowledged, so an acknowledgment means "handed on": under the credit
 * strategy with auto_credit ack, or the window strategy, the stage before
 * is let on exactly as fast as this one hands on.
 *
 * Ends travel both ways: the input's end of stream ends the output
 * (complete), the input's failure fails it, a failure here fails the
 * output and cancels the input, and a cancelled output (EPIPE) cancels
 * the input. No stage is left waiting for a dead one.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bpq.h"

#define STAGE_BATCH	64
#define STAGE_MSG	65536
#define STAGE_BATCH_MAX	1024
#define STAGE_MSG_MAX	(4U << 20)
/* what one receive or one send may carry at most, beyond one record */
#define STAGE_BUF	(256U << 10)

struct stage_ctx {
	unsigned char *in;		/* the batch received */
	size_t in_len;
	struct bpq_msg_info *infos;
	unsigned char *res;		/* each record's fn result */
	unsigned char *out;		/* what was emitted, not yet sent */
	size_t out_len, out_used;
	struct iovec *iov;
	unsigned int iov_max, iov_used;
};

static size_t stage_buf_len(const struct bpq_stage *st)
{
	size_t all = (size_t)st->batch * st->max_msg;

	if (all <= STAGE_BUF)
		return all;
	return st->max_msg > STAGE_BUF ? st->max_msg : STAGE_BUF;
}

static void stage_free(struct stage_ctx *c)
{
	free(c->in);
	free(c->infos);
	free(c->res);
	free(c->out);
	free(c->iov);
}

static int stage_alloc(struct bpq_stage *st, struct stage_ctx *c)
{
	size_t len = stage_buf_len(st);

	memset(c, 0, sizeof(*c));
	c->iov_max = st->batch;
	c->iov = calloc(c->iov_max, sizeof(*c->iov));
	c->out_len = len;
	c->out = malloc(len);
	if (st->in_fd >= 0) {
		c->in_len = len;
		c->in = malloc(len);
		c->infos = calloc(st->batch, sizeof(*c->infos));
		c->res = calloc(st->batch, 1);
	}
	if (!c->iov || !c->out ||
	    (st->in_fd >= 0 && (!c->in || !c->infos || !c->res))) {
		stage_free(c);
		return -ENOMEM;
	}
	return 0;
}

/* Send what was emitted; a signal does not abandon it. */
static int stage_flush(struct bpq_stage *st, struct stage_ctx *c)
{
	unsigned int done = 0;
	int ret;

	while (done < c->iov_used) {
		ret = bpq_send_batch(st->out_fd, c->iov + done,
				     c->iov_used - done, st->timeout_ms);
		if (ret == -EINTR)
			continue;
		if (ret < 0)
			return ret;
		done += ret;
		st->emitted += ret;
	}
	c->iov_used = 0;
	c->out_used = 0;
	return 0;
}

int bpq_stage_emit(struct bpq_stage *st, const void *data, size_t len)
{
	struct stage_ctx *c = st->priv;
	int ret;

	if (!c || st->out_fd < 0)
		return -EBADF;
	if (!len || len > st->max_msg)
		return -EMSGSIZE;
	if (c->iov_used == c->iov_max || len > c->out_len - c->out_used) {
		ret = stage_flush(st, c);
		if (ret < 0)
			return ret;
	}
	memcpy(c->out + c->out_used, data, len);
	c->iov[c->iov_used].iov_base = c->out + c->out_used;
	c->iov[c->iov_used].iov_len = len;
	c->iov_used++;
	c->out_used += len;
	return 0;
}

/*
 * Acknowledge the first @n records of the batch, the oldest first: runs
 * of processed ones in one call, each NACK in a call of its own (the queue
 * counts a NACK once a call).
 */
static int stage_ack(struct bpq_stage *st, struct stage_ctx *c,
		     unsigned int n)
{
	unsigned int i = 0, run, flags;
	int ret;

	while (i < n) {
		run = 1;
		if (c->res[i] != BPQ_STAGE_NACK)
			while (i + run < n && c->res[i + run] != BPQ_STAGE_NACK)
				run++;
		flags = BPQ_ACK_TIMESTAMP;
		if (c->res[i] == BPQ_STAGE_NACK)
			flags |= BPQ_ACK_NACK;
		ret = bpq_ack(st->in_fd, run, flags, c->infos[i].timestamp_ns);
		if (ret < 0)
			return ret;
		i += run;
	}
	return 0;
}

static int stage_stopped(const struct bpq_stage *st)
{
	return st->stop && *st->stop;
}

/*
 * The stage ends: @err 0 ends the output complete, a negative errno fails
 * it; @cancel gives up the input.
 */
static int stage_end(struct bpq_stage *st, int err, int cancel)
{
	int e = -err;

	if (st->out_fd >= 0 && err != -EPIPE) {
		/* what a stream's failure cannot carry becomes EIO */
		if (e == EAGAIN || e == EINTR || e > 133)
			e = EIO;
		bpq_shutdown(st->out_fd, err ? BPQ_SHUTDOWN_FAIL :
			     BPQ_SHUTDOWN_COMPLETE, err ? e : 0);
	}
	if (cancel && st->in_fd >= 0)
		bpq_shutdown(st->in_fd, BPQ_SHUTDOWN_CANCEL, 0);
	return err;
}

/* A source: fn makes the records until it says the end. */
static int stage_source(struct bpq_stage *st, struct stage_ctx *c)
{
	int ret, end;

	for (;;) {
		end = stage_stopped(st);
		if (!end) {
			ret = st->fn(st, NULL, 0, NULL);
			if (ret < 0 || ret > BPQ_STAGE_END)
				return stage_end(st, ret < 0 ? ret : -EINVAL,
						 0);
			end = ret == BPQ_STAGE_END;
		}
		if (end || c->iov_used >= st->batch) {
			ret = stage_flush(st, c);
			if (ret < 0)
				return stage_end(st, ret, 0);
		}
		if (end)
			return stage_end(st, 0, 0);
	}
}

/* One batch through fn: 0 to go on, 1 at its end, or a negative errno. */
static int stage_batch(struct bpq_stage *st, struct stage_ctx *c, int n)
{
	const unsigned char *data;
	int i, ret, err = 0, end = 0;

	for (i = 0; i < n && !end; i++) {
		data = c->in + c->infos[i].offset;
		ret = st->fn(st, data, c->infos[i].len, &c->infos[i]);
		st->received++;
		if (ret < 0 || ret > BPQ_STAGE_END) {
			/* the record that failed is not acknowledged */
			err = ret < 0 ? ret : -EINVAL;
			break;
		}
		st->nacked += ret == BPQ_STAGE_NACK;
		end = ret == BPQ_STAGE_END;
		c->res[i] = ret;
	}
	ret = st->out_fd >= 0 ? stage_flush(st, c) : 0;
	if (!ret)
		ret = stage_ack(st, c, i);
	if (ret < 0)
		return ret;
	return err ?: end;
}

int bpq_stage_run(struct bpq_stage *st)
{
	struct stage_ctx c;
	int n, ret;

	if (!st || !st->fn || (st->in_fd < 0 && st->out_fd < 0) ||
	    st->batch > STAGE_BATCH_MAX || st->max_msg > STAGE_MSG_MAX)
		return -EINVAL;
	if (!st->batch)
		st->batch = STAGE_BATCH;
	if (!st->max_msg)
		st->max_msg = STAGE_MSG;
	ret = stage_alloc(st, &c);
	if (ret < 0)
		return ret;
	st->priv = &c;

	if (st->in_fd < 0) {
		ret = stage_source(st, &c);
		goto out;
	}
	for (;;) {
		if (stage_stopped(st)) {
			ret = stage_end(st, 0, 1);
			break;
		}
		n = bpq_recv_batch(st->in_fd, c.in, c.in_len, c.infos,
				   st->batch, st->timeout_ms);
		if (n == -EINTR)
			continue;
		if (n <= 0) {
			/*
			 * 0: the input's end, which the output follows; its
			 * failure (ECONNRESET) goes on downstream as it came.
			 */
			ret = stage_end(st, n, n && n != -ECONNRESET);
			break;
		}
		ret = stage_batch(st, &c, n);
		if (ret) {
			/* BPQ_STAGE_END: the output ends, the input is given up */
			ret = stage_end(st, ret < 0 ? ret : 0, 1);
			break;
		}
	}
out:
	st->priv = NULL;
	stage_free(&c);
	return ret;
}
