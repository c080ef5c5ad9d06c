// SPDX-License-Identifier: GPL-2.0
/*
 * Per-user accounting of queued bytes, so that one user cannot pin an
 * unbounded amount of kernel memory in queues (as pipe-user-pages-soft
 * does for pipes). Messages are charged by the pages of their queue's log
 * (msg.c): each page holds a reference on the user of the writer it was
 * allocated for, so the charge follows the messages, not the file.
 */
#include <linux/capability.h>
#include <linux/cred.h>
#include <linux/hashtable.h>
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/spinlock.h>

#include "bpq.h"

static unsigned long user_max_bytes = 256UL << 20;
module_param(user_max_bytes, ulong, 0644);
MODULE_PARM_DESC(user_max_bytes,
		 "Bytes one user may have queued in all queues (default 256 MiB, 0: no limit)");

struct bpq_user {
	struct hlist_node node;
	kuid_t uid;
	refcount_t ref;
	atomic64_t bytes;
};

static DEFINE_HASHTABLE(bpq_users, 6);
static DEFINE_SPINLOCK(bpq_users_lock);

struct bpq_user *bpq_user_get(void)
{
	kuid_t uid = current_euid();
	struct bpq_user *u, *new;

	new = kzalloc(sizeof(*new), GFP_KERNEL);
	if (!new)
		return NULL;
	spin_lock(&bpq_users_lock);
	hash_for_each_possible(bpq_users, u, node, __kuid_val(uid)) {
		if (uid_eq(u->uid, uid)) {
			refcount_inc(&u->ref);
			spin_unlock(&bpq_users_lock);
			kfree(new);
			return u;
		}
	}
	new->uid = uid;
	refcount_set(&new->ref, 1);
	hash_add(bpq_users, &new->node, __kuid_val(uid));
	spin_unlock(&bpq_users_lock);
	return new;
}

void bpq_user_put(struct bpq_user *u)
{
	/* refcount_dec_and_lock(), spelled out so that sparse follows it */
	if (refcount_dec_not_one(&u->ref))
		return;
	spin_lock(&bpq_users_lock);
	if (refcount_dec_and_test(&u->ref))
		hash_del(&u->node);
	else
		u = NULL;
	spin_unlock(&bpq_users_lock);
	kfree(u);
}

/* @may_exceed: CAP_SYS_RESOURCE lets the caller past the limit */
static int bpq_user_charge(struct bpq_user *u, size_t len, bool may_exceed)
{
	unsigned long limit = READ_ONCE(user_max_bytes);
	s64 old = atomic64_read(&u->bytes);

	do {
		if (limit && old + len > limit &&
		    (!may_exceed || !capable(CAP_SYS_RESOURCE)))
			return -ENOMEM;
	} while (!atomic64_try_cmpxchg(&u->bytes, &old, old + len));
	refcount_inc(&u->ref);
	return 0;
}

/* Is @u the user of the calling task's effective uid? */
bool bpq_user_is_current(const struct bpq_user *u)
{
	return uid_eq(u->uid, current_euid());
}

/*
 * Charge a page of a queue's log (msg.c) to @u, the writer's own user,
 * under q->lock: only within the limit, as capable() is for pages
 * allocated before the lock. Takes a reference for the page.
 */
bool bpq_user_try_charge(struct bpq_user *u, size_t len)
{
	return !bpq_user_charge(u, len, false);
}

/*
 * Charge @len bytes to the calling writer's user, whoever opened the file;
 * @hint, the opener, is that user nearly always. Returns the user charged,
 * holding a reference for the message, or an ERR_PTR: -ENOMEM above the
 * limit.
 */
struct bpq_user *bpq_user_charge_current(struct bpq_user *hint, size_t len)
{
	struct bpq_user *u = hint;
	int ret;

	if (!uid_eq(u->uid, current_euid())) {
		u = bpq_user_get();
		if (!u)
			return ERR_PTR(-ENOMEM);
	}
	ret = bpq_user_charge(u, len, true);
	if (u != hint)
		bpq_user_put(u);
	return ret ? ERR_PTR(ret) : u;
}

void bpq_user_uncharge(struct bpq_user *u, size_t len)
{
	atomic64_sub(len, &u->bytes);
	bpq_user_put(u);
}
