// SPDX-License-Identifier: MIT
/*
 * Messages in and out: write()/read() when the queue's own settings apply,
 * the ioctls when the caller bounds the wait or wants the message info.
 * A message is never empty, so a receive that returns 0 is end of file: the
 * stream ended and was drained.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "bpq.h"
#include "internal.h"

ssize_t bpq_send(int fd, const void *buf, size_t len, int timeout_ms)
{
	struct bpq_iovec vec = { .base = (uintptr_t)buf, .len = len };
	struct bpq_send_batch cmd = {
		.size = sizeof(cmd),
		.flags = bpq_io_flags(timeout_ms),
		.msgs = (uintptr_t)&vec,
		.count = 1,
		.timeout_ms = timeout_ms > 0 ? timeout_ms : 0,
	};
	ssize_t ret;

	if (timeout_ms < 0) {
		ret = write(fd, buf, len);
		return ret < 0 ? -errno : ret;
	}
	if (len > UINT32_MAX)
		return -EMSGSIZE;
	if (!len)
		return 0;
	ret = ioctl(fd, BPQ_IOC_SEND_BATCH, &cmd);
	if (ret < 0)
		return -errno;
	return len;
}

ssize_t bpq_recv(int fd, void *buf, size_t len, struct bpq_msg_info *info,
		 int timeout_ms)
{
	struct bpq_recv cmd = {
		.size = sizeof(cmd),
		.flags = bpq_io_flags(timeout_ms),
		.buf = (uintptr_t)buf,
		.buf_len = len > UINT32_MAX ? UINT32_MAX : len,
		.timeout_ms = timeout_ms > 0 ? timeout_ms : 0,
	};
	int ret;

	ret = ioctl(fd, BPQ_IOC_RECV, &cmd);
	if (ret < 0)
		return -errno;
	if (info)
		*info = cmd.info;
	return ret;
}

int bpq_send_batch(int fd, const struct iovec *iov, unsigned int count,
		   int timeout_ms)
{
	struct bpq_send_batch cmd = {
		.size = sizeof(cmd),
		.flags = bpq_io_flags(timeout_ms),
		.count = count,
		.timeout_ms = timeout_ms > 0 ? timeout_ms : 0,
	};
	struct bpq_iovec *vec;
	unsigned int i;
	int ret;

	if (!count)
		return 0;
	vec = calloc(count, sizeof(*vec));
	if (!vec)
		return -ENOMEM;
	for (i = 0; i < count; i++) {
		if (iov[i].iov_len > UINT32_MAX) {
			free(vec);
			return -EMSGSIZE;
		}
		vec[i].base = (uintptr_t)iov[i].iov_base;
		vec[i].len = iov[i].iov_len;
	}
	cmd.msgs = (uintptr_t)vec;
	ret = ioctl(fd, BPQ_IOC_SEND_BATCH, &cmd);
	if (ret < 0)
		ret = -errno;
	free(vec);
	return ret;
}

int bpq_recv_batch(int fd, void *buf, size_t len, struct bpq_msg_info *infos,
		   unsigned int max_records, int timeout_ms)
{
	struct bpq_recv_batch cmd = {
		.size = sizeof(cmd),
		.flags = bpq_io_flags(timeout_ms),
		.buf = (uintptr_t)buf,
		.buf_len = len > UINT32_MAX ? UINT32_MAX : len,
		.max_records = max_records,
		.infos = (uintptr_t)infos,
		.timeout_ms = timeout_ms > 0 ? timeout_ms : 0,
	};
	int ret;

	ret = ioctl(fd, BPQ_IOC_RECV_BATCH, &cmd);
	return ret < 0 ? -errno : ret;
}
