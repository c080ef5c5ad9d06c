// SPDX-License-Identifier: GPL-2.0
/*
 * bpq: bounded in-kernel message queues with backpressure strategies.
 */
#include <linux/err.h>
#include <linux/module.h>
#include <linux/moduleparam.h>

#include "bpq.h"

static unsigned int nr_queues = 4;
module_param(nr_queues, uint, 0444);
MODULE_PARM_DESC(nr_queues, "Queues created at load, /dev/bpq0... (default 4, at most 64)");

static int __init bpq_init(void)
{
	unsigned int i;
	int ret;

	if (nr_queues > 64) {
		pr_err("nr_queues=%u is above 64\n", nr_queues);
		return -EINVAL;
	}
	ret = bpq_group_init();
	if (ret)
		return ret;
	ret = bpq_chrdev_init();
	if (ret)
		goto err_group_exit;
	for (i = 0; i < nr_queues; i++) {
		ret = bpq_queue_create(NULL, NULL);
		if (ret < 0)
			goto err_destroy_queues;
	}
	ret = bpq_control_init();
	if (ret)
		goto err_destroy_queues;
	return 0;

err_destroy_queues:
	bpq_queue_destroy_all();
	bpq_chrdev_exit();
err_group_exit:
	bpq_group_exit();
	return ret;
}

static void __exit bpq_exit(void)
{
	bpq_control_exit();
	bpq_queue_destroy_all();
	bpq_link_exit();
	bpq_chrdev_exit();
	bpq_group_exit();
}

module_init(bpq_init);
module_exit(bpq_exit);

MODULE_DESCRIPTION("Bounded message queues with backpressure");
MODULE_AUTHOR("The bpq authors");
MODULE_LICENSE("GPL");
