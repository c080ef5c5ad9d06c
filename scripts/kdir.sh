#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Print the kernel build directory to build bpq against: RELEASE's if given,
# else the running kernel's if its headers are installed, else the newest
# Debian one.
#
# Usage: scripts/kdir.sh [RELEASE]

set -eu

newest_debian_build() {
	printf '%s\n' /lib/modules/*-amd64/build | sort -V | tail -n 1
}

main() {
	local release=${1:-} kdir

	kdir=/lib/modules/${release:-$(uname -r)}/build
	if [ -z "$release" ] && [ ! -d "$kdir" ]; then
		kdir=$(newest_debian_build)
	fi
	if [ ! -d "$kdir" ]; then
		echo "kdir.sh: no kernel build directory (run scripts/deps.sh)" >&2
		exit 1
	fi
	echo "$kdir"
}

main "$@"
