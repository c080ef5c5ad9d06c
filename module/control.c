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

static int bpq_ucmd_create(struct bpq_ucmd *ucmd)
{
	struct bpq_create *cmd = ucmd->cmd;
	const char *digits;
	size_t len;
	u64 id;
	int i, ret;

	if (cmd->flags || cmd->__reserved)
		return -EINVAL;
	len = strnlen(cmd->name, sizeof(cmd->name));
	if (!len || len == sizeof(cmd->name))
		return -EINVAL;
	for (i = 0; i < len; i++)
		if (!isascii(cmd->name[i]) ||
		    (!isalnum(cmd->name[i]) && !strchr("_.-", cmd->name[i])))
			return -EINVAL;
	/* names become /dev/bpq/by-name/NAME */
	if (!strcmp(cmd->name, ".") || !strcmp(cmd->name, ".."))
		return -EINVAL;
	/* "N" and "bpqN" name queues by number: a label must not look so */
	digits = strncmp(cmd->name, "bpq", 3) ? cmd->name : cmd->name + 3;
	if (*digits && strspn(digits, "0123456789") == strlen(digits))
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

static const struct bpq_ioctl_op bpq_control_ops[] = {
	BPQ_IOCTL_OP(BPQ_IOC_CREATE, bpq_ucmd_create,
		     struct bpq_create, __reserved, false, BPQ_ACCESS_ANY),
	BPQ_IOCTL_OP(BPQ_IOC_DESTROY, bpq_ucmd_destroy,
		     struct bpq_destroy, __reserved, false, BPQ_ACCESS_ANY),
	BPQ_IOCTL_OP(BPQ_IOC_LINK, bpq_ucmd_link_add,
		     struct bpq_link, downstream, false, BPQ_ACCESS_ANY),
	BPQ_IOCTL_OP(BPQ_IOC_UNLINK, bpq_ucmd_link_del,
		     struct bpq_link, downstream, false, BPQ_ACCESS_ANY),
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
