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
