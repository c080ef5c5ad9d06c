// SPDX-License-Identifier: MIT
/*
 * Settings, counters, credits, acknowledgments and the stream of one open
 * queue, and the control device.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
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

int bpq_grant(int fd, uint64_t credits)
{
	struct bpq_grant g = { .size = sizeof(g), .credits = credits };
	int ret;

	ret = ioctl(fd, BPQ_IOC_GRANT, &g);
	return ret < 0 ? -errno : ret;
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
