#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Guest script (busybox sh, root): the libbpq examples against the module.
#
#  * bpq-pipeline moves every record through its three queues (block,
#    credit with auto_credit=ack, drop-oldest): none lost, none corrupted,
#    each acknowledged, the last 8 results kept and the rest evicted; every
#    stage ends at end of stream, without knowing the count; and it
#    destroys its queues. With -f K, every K-th record is NACKed by the
#    sink, counted as failed and in the queue's nacked, and it still exits 0.
#  * bpq-watch-pressure sees one pressure start and one end per burst.
#
# Needs the examples on PATH (scripts/vm.sh --bin); skips without them.

KSFT_SKIP=4
TMP=/tmp/examples_test.$$
pass=0
fail=0

for p in bpq-pipeline bpq-watch-pressure; do
	command -v $p >/dev/null 2>&1 || {
		echo "# SKIP: $p not on PATH"
		exit $KSFT_SKIP
	}
done
[ -c /dev/bpq-control ] || {
	echo "# SKIP: no /dev/bpq-control"
	exit $KSFT_SKIP
}
mkdir -p "$TMP"

ok() {
	pass=$((pass + 1))
	echo "ok $((pass + fail)) - $1"
}

not_ok() {
	fail=$((fail + 1))
	echo "not ok $((pass + fail)) - $1"
}

# has DESCRIPTION LINE: LINE is a whole line of the output
has() {
	if grep -q -x -F -e "$2" "$TMP/out"; then
		ok "$1"
	else
		not_ok "$1: no line \"$2\""
	fi
}

queues() {
	n=0
	for d in /sys/class/bpq/*; do
		[ -e "$d" ] && n=$((n + 1))
	done
	echo $n
}

# run COMMAND...: output in $TMP/out, shown with "# " in front
run() {
	"$@" >"$TMP/out" 2>&1 </dev/null
	rc=$?
	sed 's/^/# /' "$TMP/out"
	if [ "$rc" -eq 0 ]; then ok "$* exits 0"; else not_ok "$* (exit $rc)"; fi
}

before=$(queues)

# --- bpq-pipeline ---
N=300
run bpq-pipeline -n $N -w 4 -d 500
has "source sent all" "source: $N records sent, 0 poisoned"
has "worker transformed all, then saw the end of stream" \
	"worker: $N records transformed, then end of stream"
has "sink received all, then saw the end of stream" \
	"sink: $N records received, then end of stream"
has "sink: none failed, lost or bad; the window granted, each acknowledged" \
	"sink: $N processed, 0 failed (nacked), 0 lost, 0 bad, 4 credits granted, $N acknowledged"
has "pipeline-work counted the acknowledgments, no NACK" \
	"  pipeline-work   acknowledged $N, nacked 0, unacknowledged 0"
has "drop-oldest kept the latest 8" \
	"recent: 8 results kept, $((N - 8)) evicted"
if grep -q "latest result, message $N: RECORD $(printf %06d $((N - 1)))" \
	"$TMP/out"; then
	ok "the latest result is the last record, uppercased"
else
	not_ok "the latest result is the last record, uppercased"
fi
if grep -q "pipeline-work .* credit .*writers held back [1-9]" "$TMP/out"; then
	ok "the credit window held the worker back"
else
	not_ok "the credit window held the worker back"
fi
if [ "$(queues)" -eq "$before" ]; then
	ok "pipeline destroyed its queues"
else
	not_ok "pipeline destroyed its queues ($(queues) now, $before before)"
fi

# every 10th record poisoned: NACKed, failed, and still exit 0
run bpq-pipeline -n $N -w 4 -d 200 -f 10
has "source sent all, a tenth poisoned" \
	"source: $N records sent, $((N / 10)) poisoned"
has "sink received all, then saw the end of stream (poison)" \
	"sink: $N records received, then end of stream"
has "sink NACKed the poisoned, processed the rest" \
	"sink: $((N - N / 10)) processed, $((N / 10)) failed (nacked), 0 lost, 0 bad, 4 credits granted, $N acknowledged"
has "pipeline-work counted the NACKs" \
	"  pipeline-work   acknowledged $N, nacked $((N / 10)), unacknowledged 0"
if [ "$(queues)" -eq "$before" ]; then
	ok "pipeline -f destroyed its queues"
else
	not_ok "pipeline -f destroyed its queues ($(queues) now, $before before)"
fi

# --- bpq-watch-pressure ---
B=4
run bpq-watch-pressure -b $B -n 100 -p 300
has "one pressure start and one end per burst" \
	"supervisor: $B pressure starts, $B ends"
sent=$(sed -n 's/^producer: \([0-9]*\) sent, .*/\1/p' "$TMP/out")
refused=$(sed -n 's/^producer: [0-9]* sent, \([0-9]*\) refused/\1/p' \
	"$TMP/out")
if [ $((${sent:-0} + ${refused:-0})) -eq $((B * 100)) ] &&
   [ "${refused:-0}" -gt 0 ]; then
	ok "every message sent or refused, some refused"
else
	not_ok "sent ${sent:-?} + refused ${refused:-?} != $((B * 100))"
fi
has "the consumer received every message sent" "consumer: ${sent:-?} received"
if [ "$(queues)" -eq "$before" ]; then
	ok "watch-pressure destroyed its queue"
else
	not_ok "watch-pressure destroyed its queue"
fi

rm -rf "$TMP"
echo "# $pass passed, $fail failed"
[ "$fail" -eq 0 ]
