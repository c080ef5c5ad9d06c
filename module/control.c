// SPDX-License-Identifier: GPL-2.0
/*
 * /dev/bpq-control: creates and destroys queues at run time, as
 * /dev/loop-control does for loop devices.
 */
#include <linux/fs.h>
#include <linux/miscdevice.h>
#include <linux/module.h>

#include "bpq.h"

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
