#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Build bpq.ko against the kernel build directory KDIR from a copy of the
# module's sources in DIR, and print the module's path. An external
# module's objects are written beside its sources, so each kernel gets its
# own copy and the in-tree build is left alone.
#
# Usage: scripts/build-module.sh KDIR DIR
# Environment: W (default 1), passed to Kbuild.

set -eu

root=$(cd "$(dirname "$0")/.." && pwd)

main() {
	local kdir=${1:?KDIR} dir=${2:?DIR}

	[ -d "$kdir" ] || { echo "build-module.sh: $kdir: no such directory" >&2; exit 1; }
	mkdir -p "$dir/module" "$dir/include/uapi/linux"
	dir=$(cd "$dir" && pwd)
	rm -f "$dir"/module/*.[ch]
	cp -p "$root/Kbuild" "$dir/"
	cp -p "$root/include/uapi/linux/bpq.h" "$dir/include/uapi/linux/"
	cp -p "$root/module/Kbuild" "$dir/module/"
	find "$root/module" -maxdepth 1 -name '*.[ch]' ! -name '*.mod.c' \
		-exec cp -p {} "$dir/module/" \;
	env -u MAKEFLAGS -u MFLAGS -u MAKEOVERRIDES -u MAKELEVEL \
		make -s -C "$kdir" M="$dir" W="${W:-1}" modules >&2
	echo "$dir/module/bpq.ko"
}

main "$@"
