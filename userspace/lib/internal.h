/* SPDX-License-Identifier: MIT */
/*
 * libbpq's private helpers, shared by its files; not installed.
 */
#ifndef _BPQ_LIB_INTERNAL_H
#define _BPQ_LIB_INTERNAL_H

#include <linux/bpq.h>

/* timeout_ms < 0: as the file says; 0: never wait; > 0: bounded. */
static inline __u32 bpq_io_flags(int timeout_ms)
{
	if (timeout_ms < 0)
		return 0;
	if (timeout_ms == 0)
		return BPQ_IO_NONBLOCK;
	return BPQ_IO_TIMEOUT;
}

#endif /* _BPQ_LIB_INTERNAL_H */
