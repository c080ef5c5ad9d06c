#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Guest script (busybox sh, root): the Python package bpq against the
# module, by the unittest suite userspace/python/tests/guest: every Queue
# method, each errno as its exception, bpq.asyncio (tasks exchanging
# messages exactly once, cancellation, the end of the stream, pressure
# edges on a hold), bpq.Stage and the pattern classes of bpq.pattern;
# then examples/pipeline.py, three processes joined by three queues.
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

# examples/pipeline.py: bpq-pipeline's job, a process a stage
pipeline=$(command -v bpq-pipeline.py || echo "$dir/../userspace/examples/pipeline.py")
out=/tmp/python_test.out.$$
N=300
# pipeline_run N ARGS...: its output shown, then checked line by line
pipeline_run() {
	python3 "$pipeline" "$@" >"$out" 2>&1 </dev/null
	prc=$?
	sed 's/^/# /' "$out"
	n=$((n + 1))
	if [ "$prc" -eq 0 ]; then
		echo "ok $n - bpq-pipeline.py $* exits 0"
	else
		echo "not ok $n - bpq-pipeline.py $* (exit $prc)"
		failures=$((failures + 1))
	fi
}
has() {
	n=$((n + 1))
	if grep -qF -- "$2" "$out"; then
		echo "ok $n - $1"
	else
		echo "not ok $n - $1 (no line: $2)"
		failures=$((failures + 1))
	fi
}
n=1
pipeline_run -n $N -w 4 -d 500
has "pipeline.py: the source sent all" "source: $N records sent, 0 poisoned"
has "pipeline.py: the worker transformed all, then saw the end" \
	"worker: $N records transformed, then end of stream"
has "pipeline.py: the sink received all, then saw the end" \
	"sink: $N records received, then end of stream"
has "pipeline.py: none failed, lost or bad" \
	"sink: $N processed, 0 failed (nacked), 0 lost, 0 bad"
has "pipeline.py: pipeline-work counted each acknowledgment" \
	"  pipeline-work   acknowledged $N, nacked 0, unacknowledged 0"
has "pipeline.py: drop-oldest kept the latest 8" \
	"recent: 8 results kept, $((N - 8)) evicted"
has "pipeline.py: the latest result is the last record, uppercased" \
	"latest result, message $N: RECORD $(printf %06d $((N - 1)))"
n=$((n + 1))
if grep -q "pipeline-work .* credit .*writers held back [1-9]" "$out"; then
	echo "ok $n - pipeline.py: the credit window held the worker back"
else
	echo "not ok $n - pipeline.py: the credit window held the worker back"
	failures=$((failures + 1))
fi
pipeline_run -n $N -w 4 -d 200 -f 10
has "pipeline.py -f: the sink NACKed the poisoned, processed the rest" \
	"sink: $((N - N / 10)) processed, $((N / 10)) failed (nacked), 0 lost, 0 bad"
has "pipeline.py -f: pipeline-work counted the NACKs" \
	"  pipeline-work   acknowledged $N, nacked $((N / 10)), unacknowledged 0"
rm -f "$out"

n=$((n + 1))
if [ "$(queues)" -eq "$before" ]; then
	echo "ok $n - the suite and the example destroyed their queues"
else
	echo "not ok $n - queues left: $(queues) now, $before before"
	failures=$((failures + 1))
fi
[ "$failures" -eq 0 ]
