#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Build, once, a debug kernel (KASAN, lockdep, UBSAN, kmemleak, fault
# injection, ...) from Debian's linux-source tarball: tinyconfig plus
# scripts/debug-kernel.config. The result is cached outside the tree in
#   $BPQ_CACHE/debug-kernel-<hash>/
#     bzImage   the kernel to boot (scripts/vm.sh --kernel)
#     build/    the configured and built tree (KDIR for out-of-tree modules)
#     config    its .config
#     build.log the build's output
# where <hash> covers the config fragment, this script, the linux-source
# package version and the compiler. A later run with the same inputs only
# prints the directory. The build happens in a temporary directory renamed
# into place at the end, so an interrupted build leaves no half-built cache.
#
# Usage: scripts/debug-kernel.sh [--force]
#   Prints the cache directory on stdout; progress goes to stderr.
#   --force  rebuild even if the cache is current
# Environment: BPQ_CACHE (default ${XDG_CACHE_HOME:-$HOME/.cache}/bpq),
#              KSRC_PKG (default linux-source-6.1), JOBS (default nproc)

set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
self=$root/scripts/debug-kernel.sh
fragment=$root/scripts/debug-kernel.config
pkg=${KSRC_PKG:-linux-source-6.1}
tarball=/usr/src/$pkg.tar.xz
cache=${BPQ_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/bpq}
jobs=${JOBS:-$(nproc)}
force=0

log() {
	echo "debug-kernel.sh: $*" >&2
}

die() {
	log "$*"
	exit 1
}

pkg_version() {
	dpkg-query -W -f='${Version}' "$pkg" 2>/dev/null ||
		die "package $pkg is not installed (run scripts/deps.sh)"
}

cache_key() {
	{
		echo "$pkg $(pkg_version)"
		gcc --version | head -n 1
		cat "$fragment" "$self"
	} | sha256sum | cut -c 1-16
}

# Run the kernel's make without what an outer make (e.g. "make V=1
# check-debug") would pass down through the environment.
kmake() {
	env -u MAKEFLAGS -u MFLAGS -u MAKEOVERRIDES -u MAKELEVEL \
		make -j"$jobs" "$@"
}

# Every "CONFIG_X=v" of the fragment must be in .config as is, and every
# "# CONFIG_X is not set" must not be set there.
verify_config() {
	local config=$1 line name bad=0

	while IFS= read -r line; do
		case $line in
		CONFIG_*=*)
			if ! grep -q -x -F "$line" "$config"; then
				name=${line%%=*}
				log "error: wanted $line, got:" \
					"$(grep -E "^$name=|^# $name is not set" \
						"$config" || echo "$name absent")"
				bad=1
			fi
			;;
		"# CONFIG_"*" is not set")
			name=${line#\# }
			name=${name%% *}
			if grep -q "^$name=" "$config"; then
				log "error: wanted $name unset, got:" \
					"$(grep "^$name=" "$config")"
				bad=1
			fi
			;;
		esac
	done <"$fragment"
	if [ "$bad" = 1 ]; then
		log "Kconfig dropped the options above (unmet dependencies):"
		log "fix $fragment"
		return 1
	fi
}

build() {
	local dest=$1 tmp src start

	tmp=$(mktemp -d "$dest.tmp.XXXXXX")
	chmod 755 "$tmp"
	# shellcheck disable=SC2064 # expand $tmp now
	trap "rm -rf '$tmp'" EXIT
	trap 'exit 130' INT TERM HUP
	src=$tmp/build
	mkdir -p "$src"
	start=$(date +%s)
	log "building in $tmp (full log: build.log there)"
	log "extracting $tarball"
	tar -xJf "$tarball" -C "$src" --strip-components=1

	log "configuring: tinyconfig + ${fragment#"$root"/}"
	(
		cd "$src"
		kmake tinyconfig
		scripts/kconfig/merge_config.sh -m .config "$fragment"
		kmake olddefconfig
	) >"$tmp/build.log" 2>&1 || {
		tail -n 30 "$tmp/build.log" >&2
		die "configuration failed"
	}
	verify_config "$src/.config" || die "configuration incomplete"

	log "compiling bzImage and modules with -j$jobs"
	(
		cd "$src"
		kmake bzImage modules
		kmake modules_prepare
	) >>"$tmp/build.log" 2>&1 || {
		grep -E -m 20 'error|Error' "$tmp/build.log" >&2 || true
		tail -n 30 "$tmp/build.log" >&2
		die "build failed"
	}
	[ -s "$src/Module.symvers" ] || die "no Module.symvers in the build"

	cp "$src/arch/x86/boot/bzImage" "$tmp/bzImage"
	cp "$src/.config" "$tmp/config"
	echo "$(($(date +%s) - start))" >"$tmp/build-seconds"
	log "built in $(cat "$tmp/build-seconds")s"

	rm -rf "$dest"
	mv "$tmp" "$dest"
	trap - EXIT
}

is_built() {
	[ -f "$1/bzImage" ] && [ -f "$1/build/Module.symvers" ]
}

main() {
	local dest

	case ${1:-} in
	--force) force=1 ;;
	"") ;;
	*) echo "Usage: scripts/debug-kernel.sh [--force]" >&2; exit 2 ;;
	esac
	"$root/scripts/deps.sh" >&2
	[ -r "$tarball" ] || die "$tarball missing (run scripts/deps.sh)"
	dest=$cache/debug-kernel-$(cache_key)
	mkdir -p "$cache"
	if [ "$force" = 1 ] || ! is_built "$dest"; then
		# Parallel callers wait here and build only once.
		exec 9>"$cache/.debug-kernel.lock"
		flock 9
		if [ "$force" = 1 ] || ! is_built "$dest"; then
			# Left by interrupted builds (we hold the lock).
			rm -rf "$cache"/debug-kernel-*.tmp.*
			build "$dest"
		fi
		exec 9>&-
	fi
	echo "$dest"
}

main "$@"
