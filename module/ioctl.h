/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The ioctl dispatch shared by the queue devices (ioctl.c) and the
 * control device (control.c): size-first structs, one table of commands
 * each, as iommufd's.
 */
#ifndef _BPQ_IOCTL_H
#define _BPQ_IOCTL_H

#include <linux/build_bug.h>
#include <linux/stddef.h>
#include <linux/bpq.h>

#define BPQ_IO_FLAGS	(BPQ_IO_NONBLOCK | BPQ_IO_TIMEOUT)

/* The commands' structs, on the stack; a larger one is allocated */
union bpq_ucmd_buffer {
	struct bpq_config config;
	struct bpq_recv recv;
	struct bpq_send_batch send_batch;
	struct bpq_recv_batch recv_batch;
	struct bpq_grant grant;
	struct bpq_ring_setup ring_setup;
	struct bpq_ring_sync ring_sync;
	struct bpq_simple simple;
	struct bpq_shutdown shutdown;
	struct bpq_ack ack;
	struct bpq_create create;
	struct bpq_destroy destroy;
};

struct bpq_ucmd {
	struct file *file;
	void *ctx;			/* struct bpq_file, or NULL */
	u32 io_flags;			/* BPQ_IO_NONBLOCK for O_NONBLOCK */
	void __user *ubuffer;
	u32 user_size;
	void *cmd;
};

struct bpq_ioctl_op {
	unsigned int size;
	unsigned int min_size;
	unsigned int ioctl_num;
	bool copy_out;
	u8 access;			/* BPQ_ACCESS_* */
	int (*execute)(struct bpq_ucmd *ucmd);
};

/*
 * What a command needs of the file it comes on (EBADF otherwise): moving
 * messages needs the file open for that, as read() and write() do; the
 * other commands of a side, which touch what other users of the queue
 * meet, need that side or an ioctl-only open (O_ACCMODE: open(2) took
 * both permissions), as a supervisor's.
 */
#define BPQ_ACCESS_ANY		0
#define BPQ_ACCESS_READ		1	/* FMODE_READ */
#define BPQ_ACCESS_WRITE	2	/* FMODE_WRITE */
#define BPQ_ACCESS_CONSUMER	3	/* FMODE_READ or ioctl-only */
#define BPQ_ACCESS_PRODUCER	4	/* FMODE_WRITE or ioctl-only */

/* queue commands are numbered from 0x00, control commands from 0x40 */
#define BPQ_OP_INDEX(cmd)	(_IOC_NR(cmd) & 0x3f)

#define BPQ_IOCTL_OP(_ioctl, _fn, _struct, _last, _out, _access)	\
	[BPQ_OP_INDEX(_ioctl)] = {					\
		.size = sizeof(_struct),				\
		.min_size = offsetofend(_struct, _last),		\
		.ioctl_num = _ioctl,					\
		.copy_out = _out,					\
		.access = _access,					\
		.execute = _fn,						\
	}

const struct bpq_ioctl_op *bpq_ioctl_op(const struct bpq_ioctl_op *ops,
					size_t nr_ops, unsigned int cmd);
long bpq_dispatch(const struct bpq_ioctl_op *op, struct file *file,
		  unsigned long arg);

#endif /* _BPQ_IOCTL_H */
