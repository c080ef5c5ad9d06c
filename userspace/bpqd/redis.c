// SPDX-License-Identifier: GPL-2.0
/*
 * bpqd's two Redis connections: one for commands, pipelined, and one
 * subscribed to the cluster's channel. Any failure (refused, timed out,
 * closed mid-reply, a reply that is not RESP) closes both: the caller
 * then counts the time Redis has been unreachable and tries again later.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "redis.h"

static redisContext *connect_to(const char *address, int timeout_ms)
{
	struct timeval tv = { timeout_ms / 1000, timeout_ms % 1000 * 1000 };
	char host[256];
	const char *colon;
	size_t len;
	int port;

	if (!strncmp(address, "unix:", 5))
		return redisConnectUnixWithTimeout(address + 5, tv);
	if (*address == '[') {		/* [v6 address]:port */
		colon = strchr(address, ']');
		len = colon - address - 1;
		address++;
		colon++;
	} else {
		colon = strrchr(address, ':');
		len = colon - address;
	}
	if (len >= sizeof(host))
		return NULL;
	memcpy(host, address, len);
	host[len] = '\0';
	port = atoi(colon + 1);
	return redisConnectWithTimeout(host, port, tv);
}

void redis_close(struct redis *r)
{
	if (r->cmd)
		redisFree(r->cmd);
	if (r->sub)
		redisFree(r->sub);
	r->cmd = r->sub = NULL;
}

/* The failure of @c, or of a reply, in r->err; closes both. */
static int fail(struct redis *r, redisContext *c, const char *what)
{
	if (c && c->err)
		snprintf(r->err, sizeof(r->err), "%s: %s", what, c->errstr);
	else
		snprintf(r->err, sizeof(r->err), "%s", what);
	redis_close(r);
	return -1;
}

/*
 * A connection's state back to a new one's (RESET), then PING with a
 * token of its own, the replies before the token's dropped: a tunnel
 * (a serial line, say) may still carry what an earlier connection over it
 * was sent or answered.
 */
static int resync(struct redis *r, redisContext *c)
{
	redisReply *rep;
	char token[48];
	int match, tries;

	snprintf(token, sizeof(token), "bpqd-%llu-%d",
		 (unsigned long long)++r->tokens, (int)getpid());
	if (redisAppendCommand(c, "RESET") != REDIS_OK ||
	    redisAppendCommand(c, "PING %s", token) != REDIS_OK)
		return fail(r, c, "RESET");
	for (tries = 0; tries < 64; tries++) {
		if (redisGetReply(c, (void **)&rep) != REDIS_OK)
			return fail(r, c, "PING");
		/* a bulk string, or ["pong", token] where still subscribed */
		match = rep->type == REDIS_REPLY_STRING ?
			!strcmp(rep->str, token) :
			rep->type == REDIS_REPLY_ARRAY && rep->elements == 2 &&
			rep->element[1]->type == REDIS_REPLY_STRING &&
			!strcmp(rep->element[1]->str, token);
		freeReplyObject(rep);
		if (match)
			return 0;
	}
	return fail(r, NULL, "PING: no answer among the replies");
}

int redis_open(struct redis *r, const char *channel, int timeout_ms)
{
	struct timeval tv = { timeout_ms / 1000, timeout_ms % 1000 * 1000 };
	redisReply *rep;

	redis_close(r);
	r->cmd = connect_to(r->address, timeout_ms);
	if (!r->cmd || r->cmd->err)
		return fail(r, r->cmd, "connect");
	r->sub = connect_to(r->channel_address, timeout_ms);
	if (!r->sub || r->sub->err)
		return fail(r, r->sub, "connect (channel)");
	if (redisSetTimeout(r->cmd, tv) || redisSetTimeout(r->sub, tv))
		return fail(r, NULL, "setting the timeout");
	if (resync(r, r->cmd) || resync(r, r->sub))
		return -1;
	rep = redisCommand(r->sub, "SUBSCRIBE %s", channel);
	if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements != 3) {
		freeReplyObject(rep);
		return fail(r, r->sub, rep ? "SUBSCRIBE: unexpected reply" :
					     "SUBSCRIBE");
	}
	freeReplyObject(rep);
	r->ops += 5;
	r->pending = 0;
	r->sub_pings = 0;
	return 0;
}

int redis_append(struct redis *r, int argc, const char **argv)
{
	if (!r->cmd)
		return -1;
	if (redisAppendCommandArgv(r->cmd, argc, argv, NULL))
		return fail(r, r->cmd, "append");
	r->pending++;
	r->ops++;
	return 0;
}

/*
 * The replies of the commands appended, in order, into @replies (NULL:
 * dropped); an error reply is a failure too, unless @errors_ok.
 */
int redis_flush(struct redis *r, redisReply **replies, int errors_ok)
{
	redisReply *rep;
	int i, n = r->pending, ret = 0;

	r->pending = 0;
	for (i = 0; i < n; i++) {
		if (!r->cmd || redisGetReply(r->cmd, (void **)&rep) != REDIS_OK) {
			ret = fail(r, r->cmd, "reply");
			break;
		}
		if (rep->type == REDIS_REPLY_ERROR && !errors_ok) {
			snprintf(r->err, sizeof(r->err), "reply: %s", rep->str);
			freeReplyObject(rep);
			redis_close(r);
			ret = -1;
			break;
		}
		if (replies)
			replies[i] = rep;
		else
			freeReplyObject(rep);
	}
	if (ret && replies)
		while (i--)
			freeReplyObject(replies[i]);
	return ret;
}

int redis_sub_fd(const struct redis *r)
{
	return r->sub ? r->sub->fd : -1;
}

/*
 * What the channel brought: the number of messages (their text, the
 * sending node's, for @from), or -1 when the connection failed.
 */
int redis_sub_read(struct redis *r, void (*from)(const char *text,
						 void *arg), void *arg)
{
	redisReply *rep;
	int n = 0;

	if (!r->sub)
		return -1;
	if (redisBufferRead(r->sub) != REDIS_OK)
		return fail(r, r->sub, "channel");
	for (;;) {
		if (redisGetReplyFromReader(r->sub, (void **)&rep) != REDIS_OK)
			return fail(r, r->sub, "channel");
		if (!rep)
			return n;
		if (rep->type != REDIS_REPLY_ARRAY || rep->elements < 1 ||
		    rep->element[0]->type != REDIS_REPLY_STRING) {
			freeReplyObject(rep);
			return fail(r, NULL, "channel: not a message");
		}
		if (!strcmp(rep->element[0]->str, "pong")) {
			r->sub_pings = 0;
		} else if (!strcmp(rep->element[0]->str, "message") &&
			   rep->elements == 3 &&
			   rep->element[2]->type == REDIS_REPLY_STRING) {
			from(rep->element[2]->str, arg);
			n++;
		}
		freeReplyObject(rep);
	}
}

/* A PING on the subscribed connection: the subscription is still there */
int redis_sub_ping(struct redis *r)
{
	int done = 0;

	if (!r->sub)
		return -1;
	if (r->sub_pings > 2)
		return fail(r, NULL, "channel: no answer to PING");
	if (redisAppendCommand(r->sub, "PING") != REDIS_OK)
		return fail(r, r->sub, "channel ping");
	while (!done)
		if (redisBufferWrite(r->sub, &done) != REDIS_OK)
			return fail(r, r->sub, "channel ping");
	r->ops++;
	r->sub_pings++;
	return 0;
}
