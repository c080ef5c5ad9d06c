// SPDX-License-Identifier: MIT
/*
 * The receive ring: messages that the writers' own calls put into a
 * mapping of the reader's file, taken without a system call.
 *
 * Ordering, with the kernel as the other side: the kernel writes a record,
 * then publishes tail with a release store; we load tail with acquire
 * before we read the record. We are done with a record before we store
 * head with release, so the kernel never reuses bytes we still read. The
 * kernel sets BPQ_RING_NEED_SYNC, then reads head, when it found no room
 * (a store, then a load); we store head, then read the flag (the same, the
 * other way round). A full barrier between the two on both sides means
 * that at least one of us sees the other's store: either the kernel sees
 * the room, or we see the flag and call BPQ_IOC_RING_SYNC once our head
 * reaches sync_head (a quarter of the ring on, or the tail: as virtio's
 * event index, so that a backlog costs one call per quarter ring, not
 * one per message).
 *
 * End of stream: once the stream has ended and every message it held is in
 * the ring, the kernel stores ctl->end (the stream's state) with release,
 * after the tail that covers those messages. A reader that finds head ==
 * tail loads end with acquire and, if it is set, loads tail once more: a
 * tail published before end is seen then, and if head still equals it,
 * nothing more will come: end of file, or ECONNRESET for a failed stream.
 */
#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "bpq.h"
#include "internal.h"

int bpq_ring_setup(int fd, unsigned int ring_bytes, struct bpq_ring *ring)
{
	struct bpq_ring_setup cmd = {
		.size = sizeof(cmd),
		.ring_bytes = ring_bytes,
	};
	long page = sysconf(_SC_PAGESIZE);
	struct bpq_ring_ctl *ctl;
	void *map;

	if (page <= 0)
		return -EINVAL;
	if (ioctl(fd, BPQ_IOC_RING_SETUP, &cmd) < 0)
		return -errno;
	map = mmap(NULL, cmd.mmap_bytes, PROT_READ | PROT_WRITE, MAP_SHARED,
		   fd, 0);
	if (map == MAP_FAILED)
		return -errno;
	ctl = map;
	if (cmd.mmap_bytes < (unsigned long)page + ring_bytes ||
	    ctl->ring_bytes != ring_bytes) {
		munmap(map, cmd.mmap_bytes);
		return -EPROTO;
	}
	ring->fd = fd;
	ring->ctl = ctl;
	ring->data = (const unsigned char *)map + page;
	ring->mask = ring_bytes - 1;
	ring->head = __atomic_load_n(&ctl->head, __ATOMIC_RELAXED);
	ring->map_len = cmd.mmap_bytes;
	return 0;
}

void bpq_ring_teardown(struct bpq_ring *ring)
{
	if (ring->ctl)
		munmap(ring->ctl, ring->map_len);
	memset(ring, 0, sizeof(*ring));
	ring->fd = -1;
}

/* Hand the room below ring->head back to the kernel. */
static void bpq_ring_publish(struct bpq_ring *ring)
{
	struct bpq_ring_sync cmd = { .size = sizeof(cmd) };

	__atomic_store_n(&ring->ctl->head, ring->head, __ATOMIC_RELEASE);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (!(__atomic_load_n(&ring->ctl->flags, __ATOMIC_ACQUIRE) &
	      BPQ_RING_NEED_SYNC) ||
	    ring->head < __atomic_load_n(&ring->ctl->sync_head,
					 __ATOMIC_RELAXED))
		return;
	/*
	 * An error leaves the flag set: the next advance tries again, and
	 * bpq_ring_wait() syncs before it sleeps and reports the error.
	 */
	while (ioctl(ring->fd, BPQ_IOC_RING_SYNC, &cmd) < 0 && errno == EINTR)
		;
}

/*
 * The ring looked empty (head == *tail): -EAGAIN while the stream goes on;
 * at its end 0, or -ECONNRESET for a failed stream, once a second look at
 * the tail shows that nothing came before the end; 1 if something did, with
 * *tail updated.
 */
static int bpq_ring_at_end(struct bpq_ring *ring, uint64_t *tail)
{
	uint32_t end = __atomic_load_n(&ring->ctl->end, __ATOMIC_ACQUIRE);

	if (!end)
		return -EAGAIN;
	*tail = __atomic_load_n(&ring->ctl->tail, __ATOMIC_ACQUIRE);
	if (ring->head != *tail)
		return 1;
	return end == BPQ_STREAM_FAILED ? -ECONNRESET : 0;
}

int bpq_ring_peek(struct bpq_ring *ring, const void **data,
		  struct bpq_msg_info *info)
{
	const struct bpq_ring_rec *rec;
	uint32_t off, left;
	uint64_t tail;
	int ret;

	for (;;) {
		tail = __atomic_load_n(&ring->ctl->tail, __ATOMIC_ACQUIRE);
		if (ring->head == tail) {
			ret = bpq_ring_at_end(ring, &tail);
			if (ret <= 0)
				return ret;
			continue;	/* records came before the end */
		}
		off = ring->head & ring->mask;
		left = ring->mask + 1 - off;
		rec = (const struct bpq_ring_rec *)(ring->data + off);
		if (left >= sizeof(*rec) && !(rec->flags & BPQ_RING_PAD))
			break;
		/* the rest of the lap is unused: hand it back at once */
		ring->head = (ring->head | ring->mask) + 1;
		bpq_ring_publish(ring);
	}
	/* never read past the data area or the kernel's tail */
	if (rec->len > left - sizeof(*rec) ||
	    BPQ_RING_RECORD(rec->len) > tail - ring->head)
		return -EIO;
	if (data)
		*data = rec + 1;
	if (info) {
		info->seq = rec->seq;
		info->timestamp_ns = rec->timestamp_ns;
		info->lost = rec->lost;
		info->len = rec->len;
		info->offset = 0;
	}
	return rec->len;
}

void bpq_ring_advance(struct bpq_ring *ring)
{
	const struct bpq_ring_rec *rec;

	rec = (const struct bpq_ring_rec *)(ring->data +
					     (ring->head & ring->mask));
	ring->head += BPQ_RING_RECORD(rec->len);
	bpq_ring_publish(ring);
}

static uint64_t bpq_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int bpq_ring_wait(struct bpq_ring *ring, int timeout_ms)
{
	struct bpq_ring_sync cmd = {
		.size = sizeof(cmd),
		.flags = BPQ_RING_WAIT | bpq_io_flags(timeout_ms),
	};
	uint64_t end = 0, now;
	int ret;

	if (timeout_ms > 0)
		end = bpq_now_ms() + timeout_ms;
	for (;;) {
		/*
		 * Skips pads: the kernel wakes us for any record. At the end
		 * of the stream, 0 (a peek says end of file) or -ECONNRESET,
		 * never a wait: the sync returns 0 at once there too.
		 */
		ret = bpq_ring_peek(ring, NULL, NULL);
		if (ret != -EAGAIN)
			return ret < 0 ? ret : 0;
		if (timeout_ms > 0) {
			now = bpq_now_ms();
			if (now >= end)
				return -ETIMEDOUT;
			cmd.timeout_ms = end - now;
		}
		if (ioctl(ring->fd, BPQ_IOC_RING_SYNC, &cmd) < 0)
			return -errno;
	}
}

ssize_t bpq_ring_recv(struct bpq_ring *ring, void *buf, size_t len,
		      struct bpq_msg_info *info, int timeout_ms)
{
	struct bpq_msg_info mi;
	const void *p;
	int ret;

	ret = bpq_ring_peek(ring, &p, &mi);
	if (ret == -EAGAIN) {
		ret = bpq_ring_wait(ring, timeout_ms);
		if (ret < 0)
			return ret;
		ret = bpq_ring_peek(ring, &p, &mi);
	}
	if (ret <= 0)	/* an error, or 0: end of file */
		return ret;
	if ((size_t)ret > len)
		return -EMSGSIZE;
	memcpy(buf, p, ret);
	if (info)
		*info = mi;
	bpq_ring_advance(ring);
	return ret;
}
