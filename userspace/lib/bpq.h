/* SPDX-License-Identifier: MIT */
/*
 * libbpq: thin wrappers around the bpq character devices.
 *
 * Every function returns a negative errno value on failure (-ENOENT,
 * -EAGAIN, ...) and never reports through errno. Timeouts are in
 * milliseconds: < 0 waits as the queue and the file say (forever, or the
 * queue's write_timeout_ms for a writer), 0 never waits, > 0 bounds the wait.
 */
#ifndef _BPQ_LIB_H
#define _BPQ_LIB_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <linux/bpq.h>

#ifdef __cplusplus
extern "C" {
#endif

#define BPQ_CONTROL_PATH	"/dev/bpq-control"
#define BPQ_SYSFS_CLASS		"/sys/class/bpq"
#define BPQ_GROUP_SYSFS_CLASS	"/sys/class/bpq_group"

int bpq_open(const char *q, int flags);

/*
 * The receives, bpq_ring_peek() and bpq_ring_recv() return 0 for end of
 * file: the queue's stream has ended and everything it held was taken
 * (bpq(4), "Streams"); -ECONNRESET instead when its producer failed it.
 */
ssize_t bpq_send(int fd, const void *buf, size_t len, int timeout_ms);
ssize_t bpq_recv(int fd, void *buf, size_t len, struct bpq_msg_info *info,
		 int timeout_ms);
int bpq_send_batch(int fd, const struct iovec *iov, unsigned int count,
		   int timeout_ms);
int bpq_recv_batch(int fd, void *buf, size_t len, struct bpq_msg_info *infos,
		   unsigned int max_records, int timeout_ms);

/**
 * struct bpq_ring - a receive ring mapped by bpq_ring_setup()
 * @fd: the queue's file that owns the ring; the caller's, never closed here
 * @ctl: the control page: the kernel's tail, the reader's published head
 * @data: the data area, ring_bytes long, where records start at
 *        position & @mask
 * @mask: ring_bytes - 1
 * @head: the reader's position, where its next record starts: a private
 *        copy of what it last stored in @ctl->head, so that the fast path
 *        reads the shared page only for the kernel's tail and flags
 * @map_len: length of the mapping at @ctl, for munmap()
 */
struct bpq_ring {
	int fd;
	struct bpq_ring_ctl *ctl;
	const unsigned char *data;
	uint32_t mask;
	uint64_t head;
	size_t map_len;
};

int bpq_ring_setup(int fd, unsigned int ring_bytes, struct bpq_ring *ring);
void bpq_ring_teardown(struct bpq_ring *ring);
int bpq_ring_peek(struct bpq_ring *ring, const void **data,
		  struct bpq_msg_info *info);
void bpq_ring_advance(struct bpq_ring *ring);
int bpq_ring_wait(struct bpq_ring *ring, int timeout_ms);
ssize_t bpq_ring_recv(struct bpq_ring *ring, void *buf, size_t len,
		      struct bpq_msg_info *info, int timeout_ms);

/**
 * struct bpq_stage - one stage of a pipeline, run by bpq_stage_run()
 * @in_fd: the queue it reads, open for reading; -1 for a source, whose
 *         @fn is called with no record (@data NULL) until it returns
 *         BPQ_STAGE_END
 * @out_fd: the queue it writes, open for writing; -1 for a sink
 * @batch: records taken in one receive, 1 ... 1024 (0: 64)
 * @max_msg: the largest record in or out, in bytes (0: 65536)
 * @timeout_ms: how long one receive or send may wait; < 0 forever. Past
 *              it the stage fails with -ETIMEDOUT.
 * @stop: if not NULL, a flag the caller (a signal handler, another thread)
 *        sets to stop the stage. It is read after each record and when a
 *        wait is interrupted by a signal (a handler installed without
 *        SA_RESTART interrupts one at once).
 * @fn: called for each record; it hands on its results with
 *      bpq_stage_emit() (none, one or many) and returns 0 when done with
 *      the record, BPQ_STAGE_NACK when it cannot process it (the record
 *      is acknowledged as failed and the stage goes on), BPQ_STAGE_END
 *      to end the stream after it, or a negative errno to fail the stage
 * @arg: the caller's, for @fn
 * @received, @emitted, @nacked: out: the records taken, sent and NACKed
 * @priv: libbpq's while the stage runs
 */
struct bpq_stage {
	int in_fd;
	int out_fd;
	unsigned int batch;
	unsigned int max_msg;
	int timeout_ms;
	const volatile sig_atomic_t *stop;
	int (*fn)(struct bpq_stage *st, const void *data, size_t len,
		  const struct bpq_msg_info *info);
	void *arg;
	uint64_t received;
	uint64_t emitted;
	uint64_t nacked;
	void *priv;
};

#define BPQ_STAGE_NACK	1
#define BPQ_STAGE_END	2

int bpq_stage_run(struct bpq_stage *st);
int bpq_stage_emit(struct bpq_stage *st, const void *data, size_t len);

int bpq_get_config(int fd, struct bpq_config *cfg);
int bpq_set_config(int fd, const struct bpq_config *cfg);
int bpq_get_stats(int fd, struct bpq_stats *stats);
int bpq_reset_stats(int fd);
int bpq_grant(int fd, uint64_t credits);
int bpq_grant_flags(int fd, unsigned int flags, uint64_t credits);
int bpq_flush(int fd);
int bpq_shutdown(int fd, unsigned int flags, int error);
int bpq_ack(int fd, unsigned int count, unsigned int flags,
	    uint64_t timestamp_ns);

int bpq_create(const char *name, unsigned int *index);
int bpq_destroy(unsigned int index);
int bpq_link(unsigned int upstream, unsigned int downstream);
int bpq_unlink(unsigned int upstream, unsigned int downstream);
int bpq_group_create(const char *name, const char *parent,
		     unsigned int capacity_msgs, unsigned int high_watermark,
		     unsigned int low_watermark);
int bpq_group_destroy(const char *name);
int bpq_group_join(unsigned int index, const char *group);

const char *bpq_strategy_name(unsigned int strategy);
int bpq_strategy_parse(const char *name);
const char *bpq_stream_name(unsigned int state);
const char *bpq_hangup_name(unsigned int hangup);
int bpq_hangup_parse(const char *name);
const char *bpq_ack_mode_name(unsigned int mode);
int bpq_ack_mode_parse(const char *name);
const char *bpq_window_state_name(unsigned int state);
const char *bpq_read_mode_name(unsigned int mode);
int bpq_read_mode_parse(const char *name);
const char *bpq_hold_name(unsigned int hold);
int bpq_hold_parse(const char *name);
int bpq_hold(unsigned int index, unsigned int hold, int on);
const char *bpq_trigger_name(unsigned int metric);
int bpq_trigger_parse(const char *name);
int bpq_trigger(int fd, unsigned int metric, uint64_t threshold,
		unsigned int window_ms);
int bpq_trigger_wait(int fd, int timeout_ms);

int bpq_index_of(int fd);
int bpq_queue_name(unsigned int index, char *buf, size_t len);
int bpq_lookup(const char *q);
int bpq_list(unsigned int *indexes, unsigned int max);

#ifdef __cplusplus
}
#endif

#endif /* _BPQ_LIB_H */
