#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Add up the "passed failed" counts that lint.sh, host-tests.sh and vm.sh
# leave in their summary files and print one final "N passed, M failed".
# A missing file (the step did not finish) counts as one failure.
# Exit status 0 only if nothing failed.
#
# Usage: scripts/summary.sh FILE...

set -eu

main() {
	local file p f passed=0 failed=0

	for file in "$@"; do
		if [ -r "$file" ] && read -r p f <"$file"; then
			passed=$((passed + p))
			failed=$((failed + f))
		else
			echo "not ok $(basename "$file" .summary) (no summary: the step did not finish)"
			failed=$((failed + 1))
		fi
	done
	echo "$passed passed, $failed failed"
	[ "$failed" -eq 0 ]
}

main "$@"
