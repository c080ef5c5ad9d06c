// SPDX-License-Identifier: GPL-2.0
/*
 * Messages: allocated and charged before the writer takes q->lock, freed
 * after the last holder drops it (a reap list).
 */
#include <linux/mm.h>
#include <linux/slab.h>

#include "bpq.h"

/*
 * A message of @len bytes, charged to the writer's memory cgroup and to
 * its user. Sizes above what the queue accepts fail before allocating.
 * Over its cgroup's limit the writer gets ENOMEM, not the OOM killer.
 */
#define BPQ_GFP		(GFP_KERNEL_ACCOUNT | __GFP_RETRY_MAYFAIL | __GFP_NOWARN)
#define BPQ_INLINE_MAX	(PAGE_SIZE / 2)

struct bpq_msg *bpq_msg_alloc(struct bpq_file *bf, size_t len)
{
	struct bpq_user *user;
	struct bpq_msg *msg;

	if (len > READ_ONCE(bf->q->cfg.max_msg_size))
		return ERR_PTR(-EMSGSIZE);
	user = bpq_user_charge_current(bf->user, len);
	if (IS_ERR(user))
		return ERR_CAST(user);
	if (len <= BPQ_INLINE_MAX) {
		msg = kmalloc(struct_size(msg, inline_data, len), BPQ_GFP);
		if (msg)
			msg->data = msg->inline_data;
	} else {
		msg = kmalloc(sizeof(*msg), BPQ_GFP);
		if (msg) {
			msg->data = kvmalloc(len, BPQ_GFP);
			if (!msg->data) {
				kfree(msg);
				msg = NULL;
			}
		}
	}
	if (!msg) {
		bpq_user_uncharge(user, len);
		return ERR_PTR(-ENOMEM);
	}
	msg->user = user;
	msg->len = len;
	msg->flags = 0;
	return msg;
}

void bpq_msg_free(struct bpq_msg *msg)
{
	bpq_user_uncharge(msg->user, msg->len);
	if (msg->data != msg->inline_data)
		kvfree(msg->data);
	kfree(msg);
}

void bpq_reap(struct list_head *reap)
{
	struct bpq_msg *msg, *tmp;

	list_for_each_entry_safe(msg, tmp, reap, node)
		bpq_msg_free(msg);
}
