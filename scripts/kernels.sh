#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Print the kernel releases "make check" tests, one a line: for each series
# bpq supports (Debian 12 ships 6.1 and 6.12), the newest Debian release of
# it whose headers and image are both installed.
#
# Usage: scripts/kernels.sh
# Environment: BPQ_SERIES (default "6.1 6.12")

set -eu

series=${BPQ_SERIES:-6.1 6.12}

newest_of() {
	local s=$1 dir release found=

	for dir in /lib/modules/"$s".*-amd64/build; do
		[ -d "$dir" ] || continue
		release=${dir#/lib/modules/}
		release=${release%/build}
		# 6.1 must not match 6.12's releases
		case ${release#"$s".} in
		[0-9]*) ;;
		*) continue ;;
		esac
		[ -r "/boot/vmlinuz-$release" ] || continue
		found="$found $release"
	done
	[ -n "$found" ] || return 1
	printf '%s\n' $found | sort -V | tail -n 1
}

main() {
	local s rc=0

	for s in $series; do
		if ! newest_of "$s"; then
			echo "kernels.sh: no Linux $s image and headers" \
				"(run scripts/deps.sh)" >&2
			rc=1
		fi
	done
	return "$rc"
}

main "$@"
