#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Style and static checks, offline, with the kernel's own tools:
#   lint-checkpatch  checkpatch.pl --strict on the module and UAPI header
#   lint-sparse[-RELEASE]  a W=1 C=2 build (for each kernel in KERNELS, or
#                    else for KDIR): any sparse or compiler warning fails
#   lint-coccinelle  the kernel's coccinelle rules in report mode on module/
# Prints "ok NAME" / "not ok NAME" per check, then "N passed, M failed";
# writes "N M" to build/lint.summary. Exit status 0 only if all passed.
#
# Environment: KDIR, KSRC (default: scripts/kdir.sh, scripts/ksrc.sh),
# KERNELS (releases, space-separated, with headers in /lib/modules),
# CHECKPATCH_IGNORE (comma-separated checkpatch types to ignore).

set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
build=$root/build
summary=$build/lint.summary
passed=0
failed=0

# Files checkpatch reads, relative to the repository root.
checkpatch_files="module/*.c module/*.h include/uapi/linux/bpq.h"
CHECKPATCH_IGNORE=${CHECKPATCH_IGNORE:-}

verdict() {
	local name=$1 ok=$2

	if [ "$ok" = 1 ]; then
		echo "ok $name"
		passed=$((passed + 1))
	else
		echo "not ok $name"
		failed=$((failed + 1))
	fi
}

# The files of $checkpatch_files that exist, less kbuild's generated ones.
existing_files() {
	local f

	for f in $checkpatch_files; do
		case $f in
		*.mod.c | module/compat.h) continue ;;
		esac
		[ -f "$f" ] && echo "$f"
	done
	return 0
}

run_checkpatch() {
	local ksrc=$1 log=$build/lint/checkpatch.log files ignore='' rc=0

	files=$(existing_files)
	if [ -z "$files" ]; then
		echo "# lint-checkpatch: no files to check yet"
		return 0
	fi
	if [ -n "$CHECKPATCH_IGNORE" ]; then
		ignore=--ignore=$CHECKPATCH_IGNORE
	fi
	# shellcheck disable=SC2086 # word lists
	perl "$ksrc/scripts/checkpatch.pl" --no-tree --strict --terse \
		--show-types $ignore -f $files >"$log" 2>&1 || rc=$?
	# compat.h is the one place where the kernel's version is tested
	perl "$ksrc/scripts/checkpatch.pl" --no-tree --strict --terse \
		--show-types \
		--ignore="${CHECKPATCH_IGNORE:+$CHECKPATCH_IGNORE,}LINUX_VERSION_CODE,CONSTANT_COMPARISON" \
		-f module/compat.h >>"$log" 2>&1 || rc=$?
	grep -v '^total: 0 errors, 0 warnings, 0 checks' "$log" || true
	return "$rc"
}

# Build a copy of the tree so that every file is compiled again (warnings
# are only printed when a file is compiled) and the real build is left alone.
run_sparse() {
	local kdir=$1 tree=$build/lint/tree log=$build/lint/sparse.log rc=0

	rm -rf "$tree"
	mkdir -p "$tree"
	tar -C "$root" --exclude=./build --exclude=./.git -cf - . |
		tar -C "$tree" -xf -
	make -s -C "$kdir" M="$tree" clean >/dev/null 2>&1
	make -s -C "$kdir" M="$tree" W=1 C=2 CHECK=sparse modules \
		>"$log" 2>&1 || rc=$?
	sed -e "s|$tree/||g" -e '/^Skipping BTF generation/d' "$log"
	[ "$rc" -eq 0 ] && ! grep -q -E 'warning:|error:' "$log"
}

# The kernel's coccinelle rules (what "make coccicheck MODE=report" runs),
# one spatch per rule and per CPU at a time.
run_coccinelle() {
	local kdir=$1 ksrc=$2 src=$1 out=$build/lint/coccinelle.log rc=0

	# Debian splits the headers: /lib/modules/VERSION/source has the rest.
	if [ -d "${kdir%/*}/source" ]; then
		src=${kdir%/*}/source
	fi
	export COCCI_LOGDIR=$build/lint/coccinelle
	export COCCI_INCLUDES="-I $src/include -I $src/arch/x86/include
		-I $kdir/include -I $kdir/arch/x86/include/generated
		-I include/uapi"
	rm -rf "$COCCI_LOGDIR"
	mkdir -p "$COCCI_LOGDIR"
	find "$ksrc/scripts/coccinelle" -name '*.cocci' | sort |
		xargs -P "$(nproc)" -n 1 scripts/cocci-one.sh >"$out" || rc=$?
	cat "$out"
	if [ "$rc" -ne 0 ]; then
		echo "# spatch failed: see $COCCI_LOGDIR/*.log"
	fi
	[ "$rc" -eq 0 ] && [ ! -s "$out" ]
}

main() {
	local kdir=${KDIR:-} ksrc=${KSRC:-} ok release

	cd "$root"
	mkdir -p "$build/lint"
	rm -f "$summary"
	kdir=${kdir:-$(scripts/kdir.sh)}
	ksrc=${ksrc:-$(scripts/ksrc.sh)}

	ok=1
	run_checkpatch "$ksrc" || ok=0
	verdict lint-checkpatch "$ok"

	for release in ${KERNELS:-}; do
		ok=1
		run_sparse "/lib/modules/$release/build" || ok=0
		verdict "lint-sparse-$release" "$ok"
	done
	if [ -z "${KERNELS:-}" ]; then
		ok=1
		run_sparse "$kdir" || ok=0
		verdict lint-sparse "$ok"
	fi

	ok=1
	run_coccinelle "$kdir" "$ksrc" || ok=0
	verdict lint-coccinelle "$ok"

	echo "$passed $failed" >"$summary"
	echo "$passed passed, $failed failed"
	[ "$failed" -eq 0 ]
}

main "$@"
