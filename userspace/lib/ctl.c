// SPDX-License-Identifier: MIT
/*
 * Settings, counters, credits, acknowledgments and the stream of one open
 * queue, and the control device.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "bpq.h"

int bpq_get_config(int fd, struct bpq_config *cfg)
{
	int ret;

	memset(cfg, 0, sizeof(*cfg));
	cfg->size = sizeof(*cfg);
	ret = ioctl(fd, BPQ_IOC_GET_CONFIG, cfg);
	return ret < 0 ? -errno : ret;
}

int bpq_set_config(int fd, const struct bpq_config *cfg)
{
	struct bpq_config c = *cfg;
	int ret;

	c.size = sizeof(c);
	ret = ioctl(fd, BPQ_IOC_SET_CONFIG, &c);
	return ret < 0 ? -errno : ret;
}

int bpq_get_stats(int fd, struct bpq_stats *stats)
{
	int ret;

	memset(stats, 0, sizeof(*stats));
	stats->size = sizeof(*stats);
	ret = ioctl(fd, BPQ_IOC_GET_STATS, stats);
	return ret < 0 ? -errno : ret;
}

static int bpq_simple_ioctl(int fd, unsigned long cmd)
{
	struct bpq_simple s = { .size = sizeof(s) };
	int ret;

	ret = ioctl(fd, cmd, &s);
	return ret < 0 ? -errno : ret;
}

int bpq_reset_stats(int fd)
{
	return bpq_simple_ioctl(fd, BPQ_IOC_RESET_STATS);
}

int bpq_flush(int fd)
{
	return bpq_simple_ioctl(fd, BPQ_IOC_FLUSH);
}

int bpq_grant_flags(int fd, unsigned int flags, uint64_t credits)
{
	struct bpq_grant g = {
		.size = sizeof(g),
		.flags = flags,
		.credits = credits,
	};
	int ret;

	ret = ioctl(fd, BPQ_IOC_GRANT, &g);
	return ret < 0 ? -errno : ret;
}

int bpq_grant(int fd, uint64_t credits)
{
	return bpq_grant_flags(fd, 0, credits);
}

/* One trigger on the file; metric BPQ_TRIGGER_NONE (and 0, 0) removes it */
int bpq_trigger(int fd, unsigned int metric, uint64_t threshold,
		unsigned int window_ms)
{
	struct bpq_trigger t = {
		.size = sizeof(t),
		.metric = metric,
		.window_ms = window_ms,
		.threshold = threshold,
	};
	int ret;

	ret = ioctl(fd, BPQ_IOC_TRIGGER, &t);
	return ret < 0 ? -errno : ret;
}

/*
 * Wait for the file's trigger to fire: 1 when it did, 0 after @timeout_ms
 * (-1: no bound), -ENODEV once the queue is destroyed, or -errno.
 */
int bpq_trigger_wait(int fd, int timeout_ms)
{
	/*
	 * Edge-triggered: the end of a stream (EPOLLHUP) is reported once,
	 * not at every turn, and a wake-up of readers or writers not at all
	 */
	struct epoll_event ev = { .events = EPOLLPRI | EPOLLET };
	struct bpq_config cfg;
	struct timespec now;
	int64_t deadline = 0;
	int ep, ret, left = timeout_ms;

	ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0)
		return -errno;
	ret = epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) ? -errno : 0;
	if (!ret && timeout_ms > 0) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		deadline = now.tv_sec * 1000LL + now.tv_nsec / 1000000 +
			   timeout_ms;
	}
	while (!ret) {
		ret = epoll_wait(ep, &ev, 1, left);
		if (ret < 0) {
			ret = -errno;
			break;
		}
		if (!ret)
			break;
		if (ev.events & EPOLLPRI) {
			ret = 1;
			break;
		}
		/* gone, or only the stream's end? */
		ret = bpq_get_config(fd, &cfg);
		if (ret)
			break;
		if (timeout_ms > 0) {
			clock_gettime(CLOCK_MONOTONIC, &now);
			left = deadline - (now.tv_sec * 1000LL +
					   now.tv_nsec / 1000000);
			if (left <= 0)
				break;
		}
	}
	close(ep);
	return ret;
}

int bpq_shutdown(int fd, unsigned int flags, int error)
{
	struct bpq_shutdown s = {
		.size = sizeof(s),
		.flags = flags,
		.error = error,
	};
	int ret;

	ret = ioctl(fd, BPQ_IOC_SHUTDOWN, &s);
	return ret < 0 ? -errno : ret;
}

int bpq_ack(int fd, unsigned int count, unsigned int flags,
	    uint64_t timestamp_ns)
{
	struct bpq_ack a = {
		.size = sizeof(a),
		.flags = flags,
		.count = count,
		.timestamp_ns = timestamp_ns,
	};
	int ret;

	ret = ioctl(fd, BPQ_IOC_ACK, &a);
	return ret < 0 ? -errno : ret;
}

static int bpq_control(unsigned long cmd, void *arg)
{
	int fd, ret;

	fd = open(BPQ_CONTROL_PATH, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ret = ioctl(fd, cmd, arg);
	if (ret < 0)
		ret = -errno;
	close(fd);
	return ret;
}

int bpq_create(const char *name, unsigned int *index)
{
	struct bpq_create c = { .size = sizeof(c) };
	int ret;

	if (!name || strlen(name) >= sizeof(c.name))
		return -EINVAL;
	strcpy(c.name, name);
	ret = bpq_control(BPQ_IOC_CREATE, &c);
	if (ret < 0)
		return ret;
	if (index)
		*index = c.index;
	return c.index;
}

int bpq_destroy(unsigned int index)
{
	struct bpq_destroy d = { .size = sizeof(d), .index = index };

	return bpq_control(BPQ_IOC_DESTROY, &d);
}

/* Link queue @upstream to queue @downstream: its pressure holds them. */
int bpq_link(unsigned int upstream, unsigned int downstream)
{
	struct bpq_link l = {
		.size = sizeof(l), .upstream = upstream, .downstream = downstream,
	};

	return bpq_control(BPQ_IOC_LINK, &l);
}

int bpq_unlink(unsigned int upstream, unsigned int downstream)
{
	struct bpq_link l = {
		.size = sizeof(l), .upstream = upstream, .downstream = downstream,
	};

	return bpq_control(BPQ_IOC_UNLINK, &l);
}

/* A name for the control device's structures: NULL is "", too long EINVAL */
static int bpq_copy_name(char *dst, size_t len, const char *name)
{
	if (!name)
		name = "";
	if (strlen(name) >= len)
		return -EINVAL;
	strcpy(dst, name);
	return 0;
}

int bpq_group_create(const char *name, const char *parent,
		     unsigned int capacity_msgs, unsigned int high_watermark,
		     unsigned int low_watermark)
{
	struct bpq_group_create c = {
		.size = sizeof(c), .capacity_msgs = capacity_msgs,
		.high_watermark = high_watermark,
		.low_watermark = low_watermark,
	};

	if (!name || !*name || bpq_copy_name(c.name, sizeof(c.name), name) ||
	    bpq_copy_name(c.parent, sizeof(c.parent), parent))
		return -EINVAL;
	return bpq_control(BPQ_IOC_GROUP_CREATE, &c);
}

int bpq_group_destroy(const char *name)
{
	struct bpq_group_create c = { .size = sizeof(c) };

	if (!name || !*name || bpq_copy_name(c.name, sizeof(c.name), name))
		return -EINVAL;
	return bpq_control(BPQ_IOC_GROUP_DESTROY, &c);
}

/* Put queue @index in @group, or take it out of its group ("" or NULL). */
int bpq_group_join(unsigned int index, const char *group)
{
	struct bpq_group_join j = { .size = sizeof(j), .queue = index };

	if (bpq_copy_name(j.group, sizeof(j.group), group))
		return -EINVAL;
	return bpq_control(BPQ_IOC_GROUP_JOIN, &j);
}
