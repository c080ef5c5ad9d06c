#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Extract, once, the few files bpq needs from Debian's linux-source tarball
# (checkpatch, .clang-format, coccinelle scripts, kselftest headers) into a
# cache outside the tree, and print the directory.
#
# Usage: scripts/ksrc.sh
# Environment: BPQ_CACHE (default ${XDG_CACHE_HOME:-$HOME/.cache}/bpq),
#              KSRC_PKG (default linux-source-6.1)

set -eu

pkg=${KSRC_PKG:-linux-source-6.1}
tarball=/usr/src/$pkg.tar.xz
cache=${BPQ_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/bpq}

# Paths inside the tarball's top-level directory. Changing this list makes the
# next run extract again.
members="
.clang-format
scripts/checkpatch.pl
scripts/spelling.txt
scripts/const_structs.checkpatch
scripts/coccicheck
scripts/coccinelle
tools/testing/selftests/kselftest.h
tools/testing/selftests/kselftest_harness.h
Documentation/dev-tools/checkpatch.rst
"

die() {
	echo "ksrc.sh: $*" >&2
	exit 1
}

pkg_version() {
	dpkg-query -W -f='${Version}' "$pkg" 2>/dev/null ||
		die "package $pkg is not installed (run scripts/deps.sh)"
}

# The tarball's top-level directory, e.g. "linux-source-6.1".
top_dir() {
	tar -tJf "$tarball" | head -n 1 | cut -d / -f 1
}

member_list() {
	# shellcheck disable=SC2086 # one member per word
	printf '%s\n' $members
}

is_current() {
	member_list | cmp -s - "$1/.bpq-members" 2>/dev/null
}

extract() {
	local dest=$1 top tmp

	top=$(top_dir)
	[ -n "$top" ] || die "cannot read $tarball"
	tmp=$(mktemp -d "$dest.tmp.XXXXXX")
	trap 'rm -rf "$tmp"' EXIT
	echo "ksrc.sh: extracting from $tarball (about a minute, once)" >&2
	member_list | sed "s|^|$top/|" |
		tar -xJf "$tarball" -C "$tmp" --strip-components=1 \
			--wildcards --files-from=-
	chmod 755 "$tmp"
	member_list >"$tmp/.bpq-members"
	rm -rf "$dest"
	mv "$tmp" "$dest"
	trap - EXIT
}

main() {
	local dest

	[ -r "$tarball" ] || die "$tarball missing (run scripts/deps.sh)"
	dest=$cache/$pkg-$(pkg_version)
	mkdir -p "$cache"
	if ! is_current "$dest"; then
		# Parallel make jobs may get here together: extract only once.
		exec 9>"$cache/.lock"
		flock 9
		if ! is_current "$dest"; then
			rm -rf "$dest".tmp.*
			extract "$dest"
		fi
		exec 9>&-
	fi
	echo "$dest"
}

main "$@"
