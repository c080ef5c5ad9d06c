#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Guest script of "make demo" (busybox sh; the VM's init has loaded bpq.ko).
# One producer writes 200 messages as fast as it can into /dev/bpq0, a
# queue of 16 messages, while one consumer takes 100 a second. The same
# overload meets each strategy in turn; after each run the queue's own
# counters say what happened.

DEV=/dev/bpq0
SYS=/sys/class/bpq/bpq0

say() {
	echo
	echo "==== $*"
}

counters() {
	(cd "$SYS/stats" && grep . enqueued_msgs dequeued_msgs dropped_newest \
		dropped_oldest backpressure_applied blocked_ns throttled_ns \
		credit_starvation credit_starved_ns) | sed 's/^/    /'
	echo "    depth_msgs:$(cat "$SYS/depth_msgs")  credits_available:$(cat "$SYS/credits_available")"
}

# run STRATEGY [overload options]: reset bpq0 to STRATEGY and overload it
run() {
	strategy=$1
	shift
	echo "$strategy" >"$SYS/strategy"
	echo 1 >"$SYS/stats/reset"
	bpq-overload -n 200 -r 100 "$@" "$DEV" | sed 's/^/  /'
	echo "  counters:"
	counters
}

say "bpq is loaded: one device per queue, one sysfs directory each"
ls -l /dev/bpq*
ls "$SYS" "$SYS/stats"

echo 16 >"$SYS/capacity_msgs"

say "block: the producer is held back to the consumer's pace, nothing is lost"
run block

say "drop-newest: the producer is never held back; what does not fit is refused (ENOBUFS)"
run drop-newest

say "drop-oldest: every write succeeds; the oldest messages make room, the consumer sees the gaps"
run drop-oldest

say "credit: each message costs a credit; the consumer grants one per message it takes"
run credit -c 1
echo "  (the producer waited for credit: credit_starvation and credit_starved_ns)"

say "adaptive: admission paced so that messages wait about 50 ms (target_latency_us)"
echo 50000 >"$SYS/target_latency_us"
echo 50 >"$SYS/min_rate"
echo 64 >"$SYS/capacity_msgs"
echo adaptive >"$SYS/strategy"
echo 1 >"$SYS/stats/reset"
bpq-overload -n 400 -r 100 "$DEV" | sed 's/^/  /' &
for t in 1 2 3 4; do
	sleep 1
	echo "  t=${t}s  rate=$(cat "$SYS/rate")/s  depth=$(cat "$SYS/depth_msgs")  throughput=$(cat "$SYS/throughput")/s"
done
wait
echo "  counters:"
counters
echo "  latency histogram (upper bound in ns, deliveries), non-empty buckets:"
awk '$2 > 0 { print "    " $0 }' "$SYS/stats/latency_hist"

say "the same queue through bpqctl"
echo block >"$SYS/strategy"
bpqctl show bpq0
bpqctl stats bpq0 --prometheus | grep -E '^bpq_(enqueued|dequeued|messages_dropped)_total'
