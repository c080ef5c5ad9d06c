#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Run the tests that need no VM: every executable selftests/host/*_test.sh.
# Exit status 0 passes, 4 (kselftest's SKIP) skips, anything else fails.
# Prints "ok NAME" / "ok NAME # SKIP" / "not ok NAME (reason)", then
# "N passed, M failed"; writes "N M" to build/host.summary.

set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
summary=$root/build/host.summary
KSELFTEST_SKIP=4
passed=0
failed=0

run_test() {
	local test=$1 name rc=0

	name=$(basename "$test")
	echo "# ---- $name ----"
	"$test" </dev/null || rc=$?
	if [ "$rc" -eq 0 ]; then
		echo "ok $name"
	elif [ "$rc" -eq "$KSELFTEST_SKIP" ]; then
		echo "ok $name # SKIP"
	else
		echo "not ok $name (exit status $rc)"
		failed=$((failed + 1))
		return
	fi
	passed=$((passed + 1))
}

main() {
	local test

	cd "$root"
	mkdir -p "$root/build"
	rm -f "$summary"
	for test in selftests/host/*_test.sh; do
		[ -e "$test" ] && run_test "$test"
	done
	echo "$passed $failed" >"$summary"
	echo "$passed passed, $failed failed"
	[ "$failed" -eq 0 ]
}

main "$@"
