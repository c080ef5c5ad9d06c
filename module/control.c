// SPDX-License-Identifier: GPL-2.0
/*
 * /dev/bpq-control: creates and destroys queues at run time, as
 * /dev/loop-control does for loop devices, and links them (link.c).
 * CAP_SYS_ADMIN only.
 */
#include <linux/capability.h>
#include <linux/ctype.h>
#include <linux/fs.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/string.h>
#include <linux/uaccess.h>

#include "bpq.h"
#include "ioctl.h"

/*
 * A name of a queue or group: NUL-terminated within @size, of
 * [A-Za-z0-9_.-], neither "." nor ".." (queues' names become
 * /dev/bpq/by-name/NAME), nor digits alone or "bpq" and digits ("N" and
 * "bpqN" name queues by number: a label must not look so).
 */
bool bpq_name_valid(const char *name, size_t size)
{
	const char *digits;
	size_t len, i;

	len = strnlen(name, size);
	if (!len || len == size)
		return false;
	for (i = 0; i < len; i++)
		if (!isascii(name[i]) ||
		    (!isalnum(name[i]) && !strchr("_.-", name[i])))
			return false;
	if (!strcmp(name, ".") || !strcmp(name, ".."))
		return false;
	digits = strncmp(name, "bpq", 3) ? name : name + 3;
	return !*digits || strspn(digits, "0123456789") != strlen(digits);
}

static int bpq_ucmd_create(struct bpq_ucmd *ucmd)
{
	struct bpq_create *cmd = ucmd->cmd;
	u64 id;
	int ret;

	if (cmd->flags || cmd->__reserved)
		return -EINVAL;
	if (!bpq_name_valid(cmd->name, sizeof(cmd->name)))
		return -EINVAL;
	ret = bpq_queue_create(cmd->name, &id);
	if (ret < 0)
		return ret;
	cmd->index = ret;
	/* a queue the caller cannot learn of must not stay behind */
	if (copy_to_user(ucmd->ubuffer, cmd,
			 min_t(u32, ucmd->user_size, sizeof(*cmd)))) {
		bpq_queue_destroy(cmd->index, id);
		return -EFAULT;
	}
	return cmd->index;
}

static int bpq_ucmd_destroy(struct bpq_ucmd *ucmd)
{
	struct bpq_destroy *cmd = ucmd->cmd;

	if (cmd->flags || cmd->__reserved)
		return -EINVAL;
	return bpq_queue_destroy(cmd->index, 0);
}

static int bpq_ucmd_link(struct bpq_ucmd *ucmd, bool add)
{
	struct bpq_link *cmd = ucmd->cmd;

	if (cmd->flags)
		return -EINVAL;
	return bpq_queue_link(cmd->upstream, cmd->downstream, add);
}

static int bpq_ucmd_link_add(struct bpq_ucmd *ucmd)
{
	return bpq_ucmd_link(ucmd, true);
}

static int bpq_ucmd_link_del(struct bpq_ucmd *ucmd)
{
	return bpq_ucmd_link(ucmd, false);
}

static int bpq_ucmd_group_create(struct bpq_ucmd *ucmd)
{
	struct bpq_group_create *cmd = ucmd->cmd;

	if (cmd->flags || cmd->__reserved)
		return -EINVAL;
	return bpq_group_create(cmd);
}

static int bpq_ucmd_group_destroy(struct bpq_ucmd *ucmd)
{
	struct bpq_group_create *cmd = ucmd->cmd;

	if (cmd->flags || cmd->capacity_msgs || cmd->high_watermark ||
	    cmd->low_watermark || cmd->__reserved || cmd->parent[0] ||
	    !bpq_name_valid(cmd->name, sizeof(cmd->name)))
		return -EINVAL;
	return bpq_group_destroy(cmd->name);
}

static int bpq_ucmd_group_join(struct bpq_ucmd *ucmd)
{
	struct bpq_group_join *cmd = ucmd->cmd;

	if (cmd->flags || cmd->__reserved ||
	    (cmd->group[0] && !bpq_name_valid(cmd->group, sizeof(cmd->group))))
		return -EINVAL;
	return bpq_queue_join(cmd->queue, cmd->group);
}

static const struct bpq_ioctl_op bpq_control_ops[] = {
	BPQ_IOCTL_OP(BPQ_IOC_CREATE, bpq_ucmd_create,
		     struct bpq_create, __reserved, false, BPQ_ACCESS_ANY),
	BPQ_IOCTL_OP(BPQ_IOC_DESTROY, bpq_ucmd_destroy,
		     struct bpq_destroy, __reserved, false, BPQ_ACCESS_ANY),
	BPQ_IOCTL_OP(BPQ_IOC_LINK, bpq_ucmd_link_add,
		     struct bpq_link, downstream, false, BPQ_ACCESS_ANY),
	BPQ_IOCTL_OP(BPQ_IOC_UNLINK, bpq_ucmd_link_del,
		     struct bpq_link, downstream, false, BPQ_ACCESS_ANY),
	BPQ_IOCTL_OP(BPQ_IOC_GROUP_CREATE, bpq_ucmd_group_create,
		     struct bpq_group_create, parent, false, BPQ_ACCESS_ANY),
	BPQ_IOCTL_OP(BPQ_IOC_GROUP_DESTROY, bpq_ucmd_group_destroy,
		     struct bpq_group_create, parent, false, BPQ_ACCESS_ANY),
	BPQ_IOCTL_OP(BPQ_IOC_GROUP_JOIN, bpq_ucmd_group_join,
		     struct bpq_group_join, group, false, BPQ_ACCESS_ANY),
};

static long bpq_control_ioctl(struct file *file, unsigned int cmd,
			      unsigned long arg)
{
	const struct bpq_ioctl_op *op;

	op = bpq_ioctl_op(bpq_control_ops, ARRAY_SIZE(bpq_control_ops), cmd);
	if (!op)
		return -ENOTTY;
	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	return bpq_dispatch(op, file, arg);
}

static const struct file_operations bpq_control_fops = {
	.owner = THIS_MODULE,
	.open = nonseekable_open,
	.unlocked_ioctl = bpq_control_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.llseek = noop_llseek,
};

static struct miscdevice bpq_control_dev = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "bpq-control",
	.fops = &bpq_control_fops,
	.mode = 0660,
};

int bpq_control_init(void)
{
	return misc_register(&bpq_control_dev);
}

void bpq_control_exit(void)
{
	misc_deregister(&bpq_control_dev);
}
