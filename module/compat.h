/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The kernel APIs that differ between the kernels bpq supports (Debian 12's
 * 6.1 and 6.12), in one place, as WireGuard's out-of-tree compat.h does:
 * each block gives the older kernel the newer interface, so that the rest
 * of the module is written once, against the newest. Kbuild includes this
 * file before every source file.
 */
#ifndef _BPQ_COMPAT_H
#define _BPQ_COMPAT_H

#include <linux/version.h>

#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 1, 0)
#error "bpq needs Linux 6.1 or later"
#endif

/* 6.2 made the device argument of struct class's devnode() const. */
#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 2, 0)
#define bpq_devnode_device struct device
#else
#define bpq_devnode_device const struct device
#endif

/* 6.3 made vma->vm_flags read-only; these setters replace the writes. */
#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 3, 0)
#include <linux/mm_types.h>

static inline void vm_flags_set(struct vm_area_struct *vma, unsigned long f)
{
	vma->vm_flags |= f;
}

static inline void vm_flags_clear(struct vm_area_struct *vma,
				  unsigned long f)
{
	vma->vm_flags &= ~f;
}
#endif

/*
 * 6.5 added copy_splice_read(): a ->splice_read() that reads into pages of
 * its own, with no lock of the pipe's held across the copy, and then
 * gives them to the pipe. 6.1's generic_file_splice_read() reads into the
 * pipe itself, allocating its pages inside the copy, which bpq makes with
 * a spinlock held (io.c). The same steps, for 6.1:
 */
#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 5, 0)
#include <linux/bvec.h>
#include <linux/fs.h>
#include <linux/gfp.h>
#include <linux/pipe_fs_i.h>
#include <linux/slab.h>
#include <linux/splice.h>
#include <linux/uio.h>

static inline ssize_t copy_splice_read(struct file *in, loff_t *ppos,
				       struct pipe_inode_info *pipe,
				       size_t len, unsigned int flags)
{
	unsigned int used = pipe_occupancy(pipe->head, pipe->tail);
	struct pipe_buffer buf = { .ops = &nosteal_pipe_buf_ops };
	size_t npages, i, remain;
	struct bio_vec *bv;
	struct kiocb kiocb;
	struct iov_iter to;
	ssize_t ret;

	if (used >= pipe->max_usage || !len)
		return 0;
	npages = pipe->max_usage - used;
	len = min_t(size_t, len, npages * PAGE_SIZE);
	npages = DIV_ROUND_UP(len, PAGE_SIZE);
	bv = kcalloc(npages, sizeof(*bv), GFP_KERNEL);
	if (!bv)
		return -ENOMEM;
	for (i = 0, remain = len; i < npages; i++, remain -= PAGE_SIZE) {
		bv[i].bv_page = alloc_page(GFP_USER);
		bv[i].bv_len = min_t(size_t, remain, PAGE_SIZE);
		if (!bv[i].bv_page) {
			ret = -ENOMEM;
			goto out;
		}
	}
	iov_iter_bvec(&to, ITER_DEST, bv, npages, len);
	init_sync_kiocb(&kiocb, in);
	kiocb.ki_pos = *ppos;
	ret = call_read_iter(in, &kiocb, &to);
	if (ret > 0)
		*ppos = kiocb.ki_pos;
	else if (ret == -EFAULT)
		ret = -EAGAIN;	/* what callers of ->splice_read() expect */
out:
	/* the pages read into go to the pipe, which has room for them */
	remain = max_t(ssize_t, ret, 0);
	for (i = 0; i < npages && bv[i].bv_page; i++) {
		buf.page = bv[i].bv_page;
		buf.len = min_t(size_t, remain, PAGE_SIZE);
		remain -= buf.len;
		if (buf.len)
			add_to_pipe(pipe, &buf);
		else
			put_page(buf.page);
	}
	kfree(bv);
	return ret;
}
#endif

#endif /* _BPQ_COMPAT_H */
