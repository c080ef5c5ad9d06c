#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Guest script (busybox sh, root): the Python package bpq against the
# module, by the unittest suite userspace/python/tests/guest: every Queue
# method, each errno as its exception, bpq.asyncio (tasks exchanging
# messages exactly once, cancellation, the end of the stream, pressure
# edges on a hold) and the pattern classes of bpq.pattern.
#
# Needs python3 with the package and libbpq.so.0 (scripts/vm.sh --python
# puts them and the suite, as /tests/python, in the guest); skips without
# them. From a source tree it runs the tree's suite and package.

KSFT_SKIP=4
dir=$(cd "$(dirname "$0")" && pwd)

if [ -d "$dir/python" ]; then
	suite=$dir/python
else
	suite=$dir/../userspace/python/tests/guest
	export PYTHONPATH="$dir/../userspace/python${PYTHONPATH:+:$PYTHONPATH}"
fi

command -v python3 >/dev/null 2>&1 || {
	echo "# SKIP: no python3 (scripts/vm.sh --python)"
	exit $KSFT_SKIP
}
[ -d "$suite" ] || {
	echo "# SKIP: no suite at $suite"
	exit $KSFT_SKIP
}
python3 -c 'import bpq, bpq.asyncio, bpq.pattern' || {
	echo "# SKIP: python3 cannot import bpq (PYTHONPATH=${PYTHONPATH:-})"
	exit $KSFT_SKIP
}
[ -c /dev/bpq-control ] || {
	echo "# SKIP: no /dev/bpq-control"
	exit $KSFT_SKIP
}

queues() {
	n=0
	for d in /sys/class/bpq/bpq*; do
		[ -e "$d" ] && n=$((n + 1))
	done
	echo $n
}

before=$(queues)
start=$(date +%s)
rc_file=/tmp/python_test.rc.$$
# busybox sh has no PIPESTATUS: the status comes back through a file
{
	python3 -m unittest discover -v -s "$suite" -t "$suite" 2>&1
	echo $? >"$rc_file"
} | sed 's/^/# /'
rc=$(cat "$rc_file" 2>/dev/null || echo 1)
rm -f "$rc_file"
echo "# unittest: exit $rc after $(($(date +%s) - start))s"

failures=0
if [ "$rc" -eq 0 ]; then
	echo "ok 1 - python3 -m unittest (userspace/python/tests/guest)"
else
	echo "not ok 1 - python3 -m unittest (userspace/python/tests/guest)"
	failures=$((failures + 1))
fi
if [ "$(queues)" -eq "$before" ]; then
	echo "ok 2 - the suite destroyed its queues"
else
	echo "not ok 2 - queues left: $(queues) now, $before before"
	failures=$((failures + 1))
fi
[ "$failures" -eq 0 ]
