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

#endif /* _BPQ_COMPAT_H */
