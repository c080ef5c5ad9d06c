#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Guest script of "make demo" (busybox sh; the VM's init has loaded bpq.ko).
# One producer writes 200 messages at 200 a second into /dev/bpq0, a queue
# of 16 messages, while one consumer takes 100 a second: for a second it
# offers twice what can be taken. The same overload meets each strategy in
# turn, then a pipeline of two queues, without and with a link; after each
# run the queues' own counters say what happened.
#
# bpq-sample reads the queues' counters every 50 ms during each run. At the
# end the samples go out on the guest's third serial port, which vm.sh
# saves in its OUT/data.log; scripts/demo-plot.sh draws them on the host.

DEV=/dev/bpq0
SYS=/sys/class/bpq/bpq0
COUNT=200
PACE=200
RATE=100
INTERVAL_MS=50
SAMPLES=/tmp/samples
DATA_PORT=/dev/ttyS2

say() {
	echo
	echo "==== $*"
}

# counters [SYSFS_DIR]: what the queue (bpq0) counted
counters() {
	dir=${1:-$SYS}
	(cd "$dir/stats" && grep . enqueued_msgs dequeued_msgs dropped_newest \
		dropped_oldest backpressure_applied blocked_ns throttled_ns \
		credit_starvation credit_starved_ns held_ns) | sed 's/^/    /'
	echo "    depth_msgs:$(cat "$dir/depth_msgs")  credits_available:$(cat "$dir/credits_available")"
}

# overload RUN TITLE QUEUES [bpq-overload options] DEVICE: the overload,
# sampled; RUN names the samples, TITLE is their row's in the plot
overload() {
	run=$1
	echo "$2" >"$SAMPLES/$run.title"
	echo "$run" >>"$SAMPLES/runs"
	queues=$3
	shift 3
	# shellcheck disable=SC2086 # QUEUES is a list of words
	bpq-sample -i "$INTERVAL_MS" -o "$SAMPLES/$run.dat" $queues -- \
		bpq-overload -n "$COUNT" -p "$PACE" -r "$RATE" "$@" |
		sed 's/^/  /'
}

# run STRATEGY [overload options]: reset bpq0 to STRATEGY and overload it
run() {
	strategy=$1
	shift
	echo "$strategy" >"$SYS/strategy"
	echo 1 >"$SYS/stats/reset"
	overload "$strategy" "$strategy, capacity $(cat "$SYS/capacity_msgs")" \
		bpq0 "$@" "$DEV"
	echo "  counters:"
	counters
}

# pipeline RUN TITLE: the overload through demo-in ($in) and demo-out ($out)
pipeline() {
	for q in "$in" "$out"; do
		echo 1 >"/sys/class/bpq/$q/stats/reset"
	done
	overload "$1" "$2" "demo-in demo-out" -u "/dev/$in" "/dev/$out"
	for q in "$in" "$out"; do
		echo "  counters of $(cat "/sys/class/bpq/$q/name"):"
		counters "/sys/class/bpq/$q"
	done
}

# The samples, each run's between markers, to the host.
send_samples() {
	if [ ! -c "$DATA_PORT" ]; then
		echo "demo.sh: no $DATA_PORT, the samples stay in $SAMPLES"
		return
	fi
	{
		echo "BPQ-DEMO-TITLE make demo: $COUNT messages offered at $PACE/s to a consumer that takes $RATE/s, sampled every $INTERVAL_MS ms"
		while read -r run; do
			echo "BPQ-DEMO-RUN $run $(cat "$SAMPLES/$run.title")"
			cat "$SAMPLES/$run.dat"
			echo "BPQ-DEMO-RUN-END $run"
		done <"$SAMPLES/runs"
	} >"$DATA_PORT"
	say "the samples of $(wc -l <"$SAMPLES/runs") runs go to the host, to be plotted"
}

mkdir -p "$SAMPLES"
: >"$SAMPLES/runs"

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
overload adaptive "adaptive, capacity 64, target 50 ms" bpq0 "$DEV" &
for t in 1 2; do
	sleep 1
	echo "  t=${t}s  rate=$(cat "$SYS/rate")/s  depth=$(cat "$SYS/depth_msgs")  throughput=$(cat "$SYS/throughput")/s"
done
wait
echo "  counters:"
counters
echo "  latency histogram (upper bound in ns, deliveries), non-empty buckets:"
awk '$2 > 0 { print "    " $0 }' "$SYS/stats/latency_hist"

say "a pipeline: producer -> demo-in (block) -> relay -> demo-out (drop-newest) -> consumer"
in=$(bpqctl create demo-in strategy=block capacity_msgs=16)
out=$(bpqctl create demo-out strategy=drop-newest capacity_msgs=16 \
	high_watermark=100 low_watermark=75)
echo "  demo-in is $in, demo-out is $out (under pressure from full until below 75 %)"
echo "  not linked, the relay never waits: demo-out refuses what the consumer"
echo "  cannot take, and the producer never knows"
pipeline unlinked "pipeline, not linked"

say "the same pipeline, linked: bpqctl link demo-in demo-out"
echo "  while demo-out is under pressure, demo-in holds its writer: the producer"
echo "  waits (held_ns) instead of feeding what demo-out would refuse"
bpqctl link demo-in demo-out
echo "  demo-in downstream: $(cat "/sys/class/bpq/$in/downstream")"
pipeline linked "pipeline, linked"
bpqctl destroy demo-in
bpqctl destroy demo-out

say "the same queue through bpqctl"
echo block >"$SYS/strategy"
bpqctl show bpq0
bpqctl stats bpq0 --prometheus | grep -E '^bpq_(enqueued|dequeued|messages_dropped)_total'

send_samples
