#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The UAPI header must compile on its own, twice included, as C99, as C++
# and for 32-bit x86, with warnings as errors. Skips (exit 4) until the
# header exists.

set -eu

root=$(cd "$(dirname "$0")/../.." && pwd)
header=$root/include/uapi/linux/bpq.h
KSELFTEST_SKIP=4

compile() {
	local what=$1
	shift

	if printf '#include <linux/bpq.h>\n#include <linux/bpq.h>\n' |
		"$@" -Wall -Wextra -Werror -I "$root/include/uapi" \
			-fsyntax-only -; then
		echo "# ok $what"
	else
		echo "# not ok $what"
		return 1
	fi
}

main() {
	local ok=0

	if [ ! -f "$header" ]; then
		echo "# SKIP: $header does not exist yet"
		exit "$KSELFTEST_SKIP"
	fi
	compile c99 gcc -std=c99 -x c || ok=1
	compile c++ g++ -x c++ || ok=1
	compile m32 gcc -m32 -std=c99 -x c || ok=1
	exit "$ok"
}

main "$@"
