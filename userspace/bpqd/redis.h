/* SPDX-License-Identifier: GPL-2.0 */
#ifndef _BPQ_BPQD_REDIS_H
#define _BPQ_BPQD_REDIS_H

#include <stdint.h>

#include <hiredis/hiredis.h>

struct redis {
	const char *address;	/* host:port, [v6]:port or unix:/path */
	const char *channel_address;	/* the subscribed connection's */
	uint64_t tokens;	/* PINGs of resync() */
	redisContext *cmd, *sub;
	int pending;		/* commands appended, replies not read */
	int sub_pings;		/* PINGs on the channel not answered */
	uint64_t ops;		/* commands sent */
	char err[256];		/* the last failure */
};

int redis_open(struct redis *r, const char *channel, int timeout_ms);
void redis_close(struct redis *r);
int redis_append(struct redis *r, int argc, const char **argv);
int redis_flush(struct redis *r, redisReply **replies, int errors_ok);
int redis_sub_fd(const struct redis *r);
int redis_sub_read(struct redis *r, void (*from)(const char *text,
						 void *arg), void *arg);
int redis_sub_ping(struct redis *r);

#endif /* _BPQ_BPQD_REDIS_H */
