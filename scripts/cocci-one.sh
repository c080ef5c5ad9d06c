#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Run one of the kernel's coccinelle rules in report mode over module/ and
# print what it finds (one "file:line:col: WARNING ..." line per finding).
# Run by scripts/lint.sh from the repository root, several at a time.
#
# Usage: scripts/cocci-one.sh RULE.cocci
# Environment: COCCI_INCLUDES (-I options), COCCI_LOGDIR (spatch's stderr)

set -eu

main() {
	local rule=$1 options

	# Rules with OCaml scripts need an OCaml compiler at run time.
	if grep -q ocaml "$rule"; then
		return 0
	fi
	options=$(sed -n 's|^// *Options:||p' "$rule")
	# shellcheck disable=SC2086 # option lists
	spatch -D report --no-show-diff --very-quiet --cocci-file "$rule" \
		$options $COCCI_INCLUDES --dir module \
		2>"$COCCI_LOGDIR/$(basename "$rule" .cocci).log"
}

main "$@"
