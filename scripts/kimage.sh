#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Print the kernel image matching a kernel build directory, i.e.
# /boot/vmlinuz-<version> for /lib/modules/<version>/build.
#
# Usage: scripts/kimage.sh [KDIR]   (default: scripts/kdir.sh)

set -eu

# The release the build directory was configured for (what vermagic says).
kernel_version() {
	local kdir=$1

	sed -n 's/^#define UTS_RELEASE "\(.*\)"$/\1/p' \
		"$kdir/include/generated/utsrelease.h"
}

main() {
	local kdir=${1:-} image

	if [ -z "$kdir" ]; then
		kdir=$("$(dirname "$0")/kdir.sh")
	fi
	image=/boot/vmlinuz-$(kernel_version "$kdir")
	if [ ! -r "$image" ]; then
		echo "kimage.sh: $image missing (run scripts/deps.sh)" >&2
		exit 1
	fi
	echo "$image"
}

main "$@"
