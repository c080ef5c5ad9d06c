#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# bpqctl against the real module (busybox sh, in the test guest): every
# subcommand, its exit status (0 ok, 1 failed operation, 2 bad usage) and
# its output formats. Needs bpqctl on PATH (scripts/vm.sh --bin); skips
# without it. Works on bpq3 and on queues it creates, and puts bpq3 back.
# watch also runs on a terminal, through pty_run (selftests/pty_run.c, on
# PATH the same way); those checks are skipped without it.

KSFT_SKIP=4
Q=bpq3
SYS=/sys/class/bpq/$Q
TMP=/tmp/bpqctl_test.$$
pass=0
fail=0

command -v bpqctl >/dev/null 2>&1 || {
	echo "# SKIP: bpqctl not on PATH"
	exit $KSFT_SKIP
}
[ -d "$SYS" ] || {
	echo "# SKIP: no $SYS"
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

check() {	# check DESCRIPTION COMMAND...: COMMAND succeeds
	desc=$1
	shift
	if "$@"; then ok "$desc"; else not_ok "$desc"; fi
}

# run EXPECTED_RC bpqctl ARGS...: output in $TMP/out and $TMP/err
run() {
	want=$1
	shift
	"$@" >"$TMP/out" 2>"$TMP/err" </dev/null
	rc=$?
	if [ "$rc" -eq "$want" ]; then
		ok "exit $want: $*"
	else
		not_ok "exit $want: $* (got $rc)"
		sed 's/^/#   stdout: /' "$TMP/out"
		sed 's/^/#   stderr: /' "$TMP/err"
	fi
}

out_has() { grep -q -e "$1" "$TMP/out"; }
err_has() { grep -q -F -e "$1" "$TMP/err"; }
sysv() { cat "/sys/class/bpq/$1/$2"; }

# name -> bpqN via sysfs, the way a script without bpqctl would
dev_of() {
	for d in /sys/class/bpq/bpq*; do
		[ "$(cat "$d/name")" = "$1" ] && { basename "$d"; return 0; }
	done
	return 1
}

SETTINGS="strategy capacity_msgs capacity_bytes max_msg_size high_watermark
low_watermark write_timeout_ms auto_credit target_latency_us min_rate max_rate
adjust_interval_ms"
orig=
for k in $SETTINGS; do
	orig="$orig $k=$(sysv $Q "$k")"
done

# --- global usage ---
run 0 bpqctl --version
check "--version prints a version" out_has '^bpqctl [0-9]'
run 0 bpqctl --help
check "--help lists the subcommands" out_has 'apply'
run 0 bpqctl -h
run 2 bpqctl
run 2 bpqctl frobnicate
check "unknown subcommand named" err_has "frobnicate"
for c in list show set create destroy grant flush stats watch reset apply \
	shutdown hold link unlink; do
	run 0 bpqctl "$c" --help
	check "$c --help prints usage" out_has "^Usage: bpqctl $c"
done

# --- list ---
run 0 bpqctl list
check "list shows bpq0..bpq3" sh -c "[ \$(grep -c '^bpq[0-3] ' $TMP/out) -eq 4 ]"
check "list shows $Q's strategy" out_has "^$Q .*$(sysv $Q strategy)"
run 0 bpqctl list --json
check "list --json is an array of objects" sh -c \
	"head -c2 $TMP/out | grep -q '^\[{' && tail -c3 $TMP/out | grep -q '}]'"
check "list --json names $Q" out_has "\"device\":\"$Q\""
run 2 bpqctl list --bogus

# --- show: by bpqN, N, path and name ---
for spec in $Q 3 /dev/$Q "$(sysv $Q name)"; do
	run 0 bpqctl show "$spec"
	check "show $spec: capacity_msgs" out_has "capacity_msgs: $(sysv $Q capacity_msgs)\$"
done
check "show has state" out_has "depth_msgs: "
run 0 bpqctl show $Q --json
check "show --json is one object" sh -c \
	"head -c1 $TMP/out | grep -q '{' && tail -c2 $TMP/out | grep -q '}'"
check "show --json has the settings" out_has "\"adjust_interval_ms\":$(sysv $Q adjust_interval_ms)"
run 1 bpqctl show no-such-queue
check "show names what failed" err_has "bpqctl: show no-such-queue: No such file or directory"
run 2 bpqctl show
run 2 bpqctl show $Q extra

# --- set ---
run 0 bpqctl set $Q capacity_msgs=16 strategy=drop-oldest
check "set capacity_msgs" [ "$(sysv $Q capacity_msgs)" = 16 ]
check "set strategy" [ "$(sysv $Q strategy)" = drop-oldest ]
run 1 bpqctl set $Q capacity_msgs=0
check "set error names queue, key and errno" \
	err_has "bpqctl: set $Q capacity_msgs=0: Invalid argument"
run 1 bpqctl set $Q capacity_msgs=8 min_rate=0
check "set is atomic (nothing applied on error)" [ "$(sysv $Q capacity_msgs)" = 16 ]
run 2 bpqctl set $Q colour=red
check "unknown key named" err_has "'colour'"
run 2 bpqctl set $Q capacity_msgs=abc
run 2 bpqctl set $Q strategy=fast
run 2 bpqctl set $Q capacity_msgs
run 2 bpqctl set $Q
run 1 bpqctl set no-such-queue capacity_msgs=1
run 0 bpqctl set $Q high_watermark=100 low_watermark=100
run 0 bpqctl set $Q high_watermark=80
check "high_watermark alone lowers low_watermark" \
	[ "$(sysv $Q high_watermark)/$(sysv $Q low_watermark)" = 80/80 ]
run 0 bpqctl set $Q high_watermark=100 low_watermark=100

# --- messages, stats, flush, reset ---
run 0 bpqctl reset $Q
for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do
	printf "message %s" "$i" >/dev/$Q
done
run 0 bpqctl stats $Q
check "stats enqueued_msgs" out_has "enqueued_msgs: 20\$"
check "stats dropped_oldest" out_has "dropped_oldest: 4\$"
run 0 bpqctl list
check "list depth/capacity" out_has "^$Q .* 16/16 "
run 0 bpqctl stats $Q --json
check "stats --json counters" out_has '"enqueued_msgs":20,'
check "stats --json histogram" out_has '"latency_hist":\[{"le_ns":1024,"count":'
check "stats --json is one object" sh -c \
	"head -c1 $TMP/out | grep -q '{' && tail -c3 $TMP/out | grep -q ']}'"
timeout 10 dd if=/dev/$Q of=/dev/null bs=4096 count=2 2>/dev/null
run 0 bpqctl stats $Q --prometheus
cp "$TMP/out" "$TMP/prom"
for m in bpq_enqueued_total bpq_dequeued_total bpq_messages_dropped_total \
	 bpq_backpressure_applied_total bpq_queue_utilization \
	 bpq_processing_latency_seconds bpq_throughput_rate \
	 bpq_credits_available bpq_credit_starvation_total; do
	check "prometheus: one HELP and TYPE for $m" sh -c \
		"[ \$(grep -c '^# HELP $m ' $TMP/prom) -eq 1 ] && [ \$(grep -c '^# TYPE $m ' $TMP/prom) -eq 1 ]"
	check "prometheus: $m labelled" grep -q "^$m[_a-z]*{queue=\"$(sysv $Q name)\",strategy=\"drop-oldest\"" "$TMP/prom"
done
check "prometheus: every sample line well-formed" sh -c \
	"! grep -v '^#' $TMP/prom | grep -v -E '^[a-z_]+\{([a-z_]+=\"[^\"]*\",?)+\} [0-9.e+-]+\$'"
check "prometheus: enqueued" grep -q '^bpq_enqueued_total{.*} 20$' "$TMP/prom"
check "prometheus: dropped oldest" grep -q '^bpq_messages_dropped_total{.*reason="oldest"} 4$' "$TMP/prom"
check "prometheus: dequeued" grep -q '^bpq_dequeued_total{.*} 2$' "$TMP/prom"
check "prometheus: utilization 14/16" grep -q '^bpq_queue_utilization{.*} 0.8[78]' "$TMP/prom"
check "prometheus: +Inf bucket = _count = 2" sh -c \
	"grep -q 'le=\"+Inf\"} 2\$' $TMP/prom && grep -q '^bpq_processing_latency_seconds_count{.*} 2\$' $TMP/prom"
check "prometheus: buckets cumulative" sh -c \
	"grep '_bucket{' $TMP/prom | awk '{ split(\$1, m, \"{\"); if (m[1] == prev && \$2 < last) exit 1; prev = m[1]; last = \$2 }'"
for m in bpq_waiting_time_seconds bpq_processing_time_seconds bpq_unacked \
	 bpq_acked_total bpq_nacked_total bpq_stale_acks_total \
	 bpq_congestion_events_total bpq_ack_timeouts_total; do
	check "prometheus: one HELP and TYPE for $m" sh -c \
		"[ \$(grep -c '^# HELP $m ' $TMP/prom) -eq 1 ] && [ \$(grep -c '^# TYPE $m ' $TMP/prom) -eq 1 ]"
done
check "prometheus: the deprecated name is the waiting time, bucket for bucket" sh -c \
	"grep '^bpq_processing_latency_seconds_' $TMP/prom | sed 's/^bpq_processing_latency_seconds_//' >$TMP/prom.old && grep '^bpq_waiting_time_seconds_' $TMP/prom | sed 's/^bpq_waiting_time_seconds_//' >$TMP/prom.new && [ -s $TMP/prom.old ] && cmp -s $TMP/prom.old $TMP/prom.new"
check "prometheus: the deprecated name says so" grep -q '^# HELP bpq_processing_latency_seconds .*Deprecated' "$TMP/prom"
check "prometheus: processing time: no acknowledgment, no sample" grep -q '^bpq_processing_time_seconds_count{.*} 0$' "$TMP/prom"
check "prometheus: no window gauges on a drop-oldest queue" sh -c "! grep -q '^bpq_cwnd{' $TMP/prom"
run 0 bpqctl stats --prometheus
check "prometheus for all queues: one HELP per metric" sh -c \
	"[ \$(grep -c '^# HELP bpq_enqueued_total ' $TMP/out) -eq 1 ] && [ \$(grep -c '^bpq_enqueued_total{' $TMP/out) -ge 4 ]"
run 0 bpqctl stats --json
check "stats --json for all queues is an array" sh -c "head -c2 $TMP/out | grep -q '^\[{'"
run 2 bpqctl stats $Q --yaml

# --- stats --prometheus --output: a file for node_exporter, replaced whole ---
P=$TMP/prom.d
mkdir -p "$P"
inode() { stat -c %i "$1"; }
# two outputs alike but for the throughput, a moving average, and the oldest
# message's age, both of which may move between two reads
same_prom() {
	grep -v -e '^bpq_throughput_rate{' \
		-e '^bpq_oldest_message_age_seconds{' "$1" >"$TMP/prom.a"
	grep -v -e '^bpq_throughput_rate{' \
		-e '^bpq_oldest_message_age_seconds{' "$2" >"$TMP/prom.b"
	cmp -s "$TMP/prom.a" "$TMP/prom.b"
}
no_temp() { [ -z "$(find "$P" -name '.*.prom.*')" ]; }
echo old >"$P/bpq.prom"
old_inode=$(inode "$P/bpq.prom")
run 0 sh -c "umask 077 && exec bpqctl stats --prometheus --output $P/bpq.prom"
bpqctl stats --prometheus >"$TMP/prom.stdout"
check "--output: nothing on stdout" [ ! -s "$TMP/out" ]
check "--output: the file has what stdout gets" \
	same_prom "$P/bpq.prom" "$TMP/prom.stdout"
check "--output: a new file renamed over the old (inode changed)" \
	[ "$(inode "$P/bpq.prom")" != "$old_inode" ]
check "--output: mode 0644 under umask 077" \
	[ "$(stat -c %a "$P/bpq.prom")" = 644 ]
check "--output: no temporary file left" no_temp
run 0 bpqctl stats $Q --prometheus -o "$P/q.prom"
bpqctl stats $Q --prometheus >"$TMP/prom.stdout"
check "-o for one queue: what stdout gets" \
	same_prom "$P/q.prom" "$TMP/prom.stdout"
old_inode=$(inode "$P/bpq.prom")
run 1 bpqctl stats no-such-queue --prometheus --output "$P/bpq.prom"
check "--output: a queue that cannot be read leaves the file alone" \
	[ "$(inode "$P/bpq.prom")" = "$old_inode" ]
run 1 bpqctl stats --prometheus --output "$TMP/no-such-dir/bpq.prom"
check "--output into a missing directory names the file and the error" \
	err_has "bpqctl: stats: $TMP/no-such-dir/bpq.prom: No such file or directory"
check "--output into a missing directory creates nothing" \
	[ ! -e "$TMP/no-such-dir" ]
mkdir "$P/dir.prom"
run 1 bpqctl stats --prometheus --output "$P/dir.prom"
check "--output over a directory fails with the error" \
	err_has "bpqctl: stats: $P/dir.prom: Is a directory"
check "--output: a failed rename leaves no temporary file" no_temp
ln -s bpq.prom "$P/link.prom"
mkfifo "$P/fifo.prom"
for f in link.prom fifo.prom; do
	run 1 bpqctl stats --prometheus --output "$P/$f"
	check "--output does not replace what is no regular file: $f" \
		err_has "bpqctl: stats: $P/$f: not a regular file, not replaced"
done
check "--output: the link is still a link" [ -L "$P/link.prom" ]
check "--output: the fifo is still a fifo" [ -p "$P/fifo.prom" ]
check "--output: refused, no temporary file left" no_temp
# a file system with room for one page: the write fails, nothing is left
mkdir "$P/small"
if mount -t tmpfs -o size=4k tmpfs "$P/small" 2>/dev/null; then
	run 1 bpqctl stats --prometheus --output "$P/small/bpq.prom"
	check "--output on a full file system names the file and the error" \
		err_has "bpqctl: stats: $P/small/bpq.prom: No space left on device"
	check "--output on a full file system leaves nothing behind" \
		[ -z "$(ls -A "$P/small")" ]
	umount "$P/small"
else
	ok "--output on a full file system # SKIP no tmpfs"
fi
run 2 bpqctl stats $Q --output "$P/text.prom"
check "--output without --prometheus is bad usage" \
	err_has "--output needs --prometheus"
run 2 bpqctl stats --json --output "$P/text.prom"
check "--output refused creates nothing" [ ! -e "$P/text.prom" ]
run 2 bpqctl stats --prometheus --output
run 2 bpqctl stats --prometheus --output ""
run 1 bpqctl stats no-such-queue
run 0 bpqctl flush $Q
check "flush prints how many" out_has '^14$'
check "flush empties" [ "$(sysv $Q depth_msgs)" = 0 ]
check "flushed counted" [ "$(sysv $Q stats/flushed)" = 14 ]
run 2 bpqctl flush
run 1 bpqctl flush no-such-queue
run 0 bpqctl reset $Q
check "reset zeroes enqueued" [ "$(sysv $Q stats/enqueued_msgs)" = 0 ]
run 2 bpqctl reset
run 1 bpqctl reset no-such-queue

# --- create, grant, destroy ---
run 0 bpqctl create ctltest capacity_msgs=32 strategy=credit
new=$(cat "$TMP/out")
check "create prints bpqN" sh -c "echo $new | grep -q '^bpq[0-9][0-9]*\$'"
check "create names the queue" [ "$(sysv "$new" name)" = ctltest ]
check "create sets capacity" [ "$(sysv "$new" capacity_msgs)" = 32 ]
check "create sets strategy" [ "$(sysv "$new" strategy)" = credit ]
check "created device node" [ -c "/dev/$new" ]
run 0 bpqctl show ctltest
check "show by created name" out_has "^queue: $new\$"
run 1 bpqctl create ctltest
check "create existing names it" err_has "create ctltest: File exists"
run 1 bpqctl create 'bad/name'
run 1 bpqctl create ctlbad capacity_msgs=0
check "failed create leaves no queue" sh -c "! grep -qx ctlbad /sys/class/bpq/*/name"
run 2 bpqctl create ctlbad2 colour=red
check "bad usage creates nothing" sh -c "! grep -qx ctlbad2 /sys/class/bpq/*/name"
run 2 bpqctl create
run 0 bpqctl grant ctltest 5
check "grant adds credits" [ "$(sysv "$new" credits_available)" = 5 ]
run 0 bpqctl grant "/dev/$new" 7
check "grant by path" [ "$(sysv "$new" credits_available)" = 12 ]
run 2 bpqctl grant ctltest 0
check "grant 0: a bad number" err_has "grant: bad number of credits '0'"
run 2 bpqctl grant ctltest many
run 2 bpqctl grant ctltest
run 1 bpqctl grant no-such-queue 1
run 0 bpqctl destroy ctltest
check "destroy removes the queue" [ ! -e "/sys/class/bpq/$new" ]
run 1 bpqctl destroy ctltest
run 2 bpqctl destroy
run 2 bpqctl destroy a b

# --- watch ---
ESC=$(printf '\033')
CLEAR="${ESC}[H${ESC}[2J"
run 0 bpqctl watch --interval 100 --count 2
check "watch header" out_has '^QUEUE'
check "watch to a file: no escape sequences" sh -c "! grep -q '$ESC' $TMP/out"
check "watch shows every queue" sh -c "[ \$(grep -c '^bpq[0-3] ' $TMP/out) -eq 8 ]"
run 0 bpqctl watch $Q -i 50 -c 3
check "watch Q shows one queue" sh -c "[ \$(grep -c '^bpq' $TMP/out) -eq 3 ]"
check "watch depth bar" out_has '\[\.\.\.*\]'
check "watch: no window but for the window strategy" out_has " -$"
run 1 bpqctl watch no-such-queue --count 1
run 2 bpqctl watch --interval abc
run 2 bpqctl watch --count
# SIGINT ends it with status 0
bpqctl watch --interval 100 >/dev/null 2>&1 &
wpid=$!
sleep 1
kill -INT $wpid
wait $wpid
check "watch ends on SIGINT with 0" [ $? -eq 0 ]

# --- watch on a terminal ---
# on_tty EXPECTED_RC PTY_RUN_ARGS...: run pty_run. What the terminal got,
# less the \r it adds, goes to $TMP/tty; the tables drawn before the last
# clear to $TMP/tables, and the last of those, without escape sequences,
# to $TMP/frame. The table after the last clear is left out: the echo of
# ^C may split it, and on ^C the terminal drops output not yet read.
on_tty() {
	want=$1
	shift
	run "$want" pty_run -o "$TMP/raw" "$@"
	tr -d '\r' <"$TMP/raw" >"$TMP/tty"
	awk -v clr="$CLEAR" '{ l[n++] = $0 } index($0, clr) { last = n - 1 }
		END { for (i = 0; i < last; i++) print l[i] }' \
		"$TMP/tty" >"$TMP/tables"
	awk -v clr="$CLEAR" 'i = index($0, clr) {
		n = 0
		$0 = substr($0, i + length(clr))
	} { f[n++] = $0 } END { for (i = 0; i < n; i++) print f[i] }' \
		"$TMP/tables" | sed "s/${ESC}\[[0-9;?]*[A-Za-z]//g" >"$TMP/frame"
}

# tty_check DESCRIPTION COMMAND...: check, showing the last table if it fails
tty_check() {
	desc=$1
	shift
	if "$@"; then
		ok "$desc"
	else
		not_ok "$desc"
		sed 's/^/#   table: /' "$TMP/frame"
	fi
}

tables() { grep -c -F "${CLEAR}QUEUE" "$TMP/tty"; }
frame_has() { grep -q -E -e "$1" "$TMP/frame"; }
# no line of the tables longer than $1 columns
fits() {
	sed "s/${ESC}\[[0-9;?]*[A-Za-z]//g" "$TMP/tables" |
		awk -v w="$1" 'length($0) > w { exit 1 }'
}
# ON and OFF escape sequences balanced: none of OFF after the last ON
# (the cursor hidden, the alternate screen entered, and not given back)
restored() {
	awk -v off="$1" -v on="$2" '
	function last(s, t,  i, p) {
		p = 0
		while ((i = index(substr(s, p + 1), t)))
			p += i
		return p
	}
	{ s = s $0 "\n" }
	END { exit !(last(s, off) == 0 || last(s, on) > last(s, off)) }
	' "$TMP/tty"
}

nq=$(find /sys/class/bpq -maxdepth 1 -name 'bpq[0-9]*' | wc -l)
if command -v pty_run >/dev/null 2>&1; then
	# a 120x30 terminal, ^C (typed, through the line discipline) after
	# four tables
	on_tty 0 -c 120 -r 30 -m QUEUE -n 4 bpqctl watch --interval 250
	check "watch on a tty: still redrawing at ^C" \
		err_has "pty_run: interrupt sent"
	check "watch on a tty: ^C ends it with 0" err_has "pty_run: exit status 0"
	check "watch on a tty: terminal modes as they were" \
		err_has "pty_run: terminal modes unchanged"
	tty_check "watch on a tty: each table clears the screen first" sh -c \
		"n=\$(grep -c QUEUE $TMP/tables) && [ \$n -ge 3 ] &&
		 [ \$(grep -c -F '$CLEAR' $TMP/tables) -eq \$n ] &&
		 [ \$(grep -c -F '${CLEAR}QUEUE' $TMP/tables) -eq \$n ]"
	tty_check "watch on a tty: a row per queue" \
		[ "$(grep -c '^bpq[0-9]* ' "$TMP/frame")" -eq "$nq" ]
	tty_check "watch on a tty: depth bars" \
		[ "$(grep -c -E '^bpq[0-9]+ .* \[[#.]{20}\] ' "$TMP/frame")" -eq "$nq" ]
	tty_check "watch on a tty: 120 columns hold the whole table" \
		frame_has '^QUEUE .* DROPS  WINDOW$'
	tty_check "watch on a tty: no line wider than 120" fits 120
	tty_check "watch on a tty: cursor left visible" \
		restored "${ESC}[?25l" "${ESC}[?25h"
	tty_check "watch on a tty: alternate screen left" \
		restored "${ESC}[?1049h" "${ESC}[?1049l"

	# narrow: lines are cut at 60 columns, which still show the bar
	on_tty 0 -c 60 -r 30 -m QUEUE -n 3 bpqctl watch -i 250
	tty_check "watch on 60 columns: no line wider" fits 60
	tty_check "watch on 60 columns: depth bar shown" \
		frame_has '^bpq0 .* \[[#.]{20}\]'
	tty_check "watch on 60 columns: columns beyond cut" \
		sh -c "! grep -q DROPS $TMP/frame"

	# short: the table keeps to 3 of the 4 rows, the cursor on the last
	on_tty 0 -c 120 -r 4 -m QUEUE -n 3 bpqctl watch -i 250
	tty_check "watch on 4 rows: header, first queue, the others counted" \
		sh -c "[ \$(wc -l <$TMP/frame) -eq 3 ] &&
		 sed -n 1p $TMP/frame | grep -q '^QUEUE ' &&
		 sed -n 2p $TMP/frame | grep -q '^bpq0 ' &&
		 sed -n 3p $TMP/frame | grep -q -x -F '... and $((nq - 1)) more'"

	# --count on a terminal: ends by itself
	on_tty 0 -c 120 -r 30 -t 30 bpqctl watch -i 50 -c 3
	tty_check "watch --count 3 on a tty: 3 tables" [ "$(tables)" -eq 3 ]

	# ^C while it sleeps through a long interval: it must not wait it out
	on_tty 0 -c 120 -r 30 -m QUEUE -n 1 -k 5 bpqctl watch -i 60000
	check "watch: ^C during a 60 s interval ends it at once" \
		err_has "pty_run: exit status 0"

	# a user who may not open the queues: the errors, one per queue, stay
	# on the screen above the (empty) table, not cleared with the last one
	on_tty 1 -u 65534 -c 120 -r 30 -m QUEUE -n 3 bpqctl watch -i 250
	tty_check "watch on a tty: errors on the screen with the table" sh -c \
		"[ \$(wc -l <$TMP/frame) -eq $((nq + 1)) ] &&
		 sed -n 1p $TMP/frame |
			grep -q -x 'bpqctl: watch: bpq0: Permission denied' &&
		 sed -n $((nq + 1))p $TMP/frame | grep -q '^QUEUE '"
else
	ok "watch on a terminal # SKIP pty_run not on PATH"
fi

# --- apply ---
cat >"$TMP/good.yaml" <<'YAML'
# two queues of the pattern's template
queues:
  orders:
    size: 1000            # capacity_msgs
    strategy: block
    timeout: 2s
    high_watermark: 80
    low_watermark: 60
    max_msg_size: 4096
    hangup: writers
  events:
    strategy: credit
    flow_control: { type: credit, initial_credits: 100, auto_credit: true }
  metrics:
    strategy: adaptive
    timeout: 500ms
    adaptive: { target_latency_ms: 20, adjustment_interval: 100, min_rate: 100, max_rate: 100000 }
YAML
run 0 bpqctl apply "$TMP/good.yaml"
o=$(dev_of orders)
e=$(dev_of events)
m=$(dev_of metrics)
check "apply created orders, events, metrics" [ -n "$o" -a -n "$e" -a -n "$m" ]
check "apply: size" [ "$(sysv "$o" capacity_msgs)" = 1000 ]
check "apply: timeout 2s" [ "$(sysv "$o" write_timeout_ms)" = 2000 ]
check "apply: watermarks" [ "$(sysv "$o" high_watermark)/$(sysv "$o" low_watermark)" = 80/60 ]
check "apply: max_msg_size" [ "$(sysv "$o" max_msg_size)" = 4096 ]
check "apply: hangup" [ "$(sysv "$o" hangup)" = writers ]
check "apply: credit strategy" [ "$(sysv "$e" strategy)" = credit ]
check "apply: initial credits" [ "$(sysv "$e" credits_available)" = 100 ]
check "apply: auto_credit" [ "$(sysv "$e" auto_credit)" = 1 ]
check "apply: adaptive" [ "$(sysv "$m" strategy)/$(sysv "$m" target_latency_us)/$(sysv "$m" adjust_interval_ms)/$(sysv "$m" min_rate)/$(sysv "$m" max_rate)" = adaptive/20000/100/100/100000 ]
check "apply: timeout 500ms" [ "$(sysv "$m" write_timeout_ms)" = 500 ]
run 0 bpqctl apply "$TMP/good.yaml"
check "apply twice updates, creates nothing" sh -c \
	"grep -q 'orders updated' $TMP/out && [ \$(cat /sys/class/bpq/*/name | grep -cx orders) -eq 1 ]"
cat >"$TMP/bad.yaml" <<'YAML'
queues:
  fresh:
    size: 10
  orders:
    colour: red
YAML
run 1 bpqctl apply "$TMP/bad.yaml"
check "apply: unknown key with file and line" err_has "$TMP/bad.yaml:5: unknown key 'colour'"
check "apply: nothing applied from a bad file" sh -c "! grep -qx fresh /sys/class/bpq/*/name"
printf 'queues:\n  orders:\n    size: abc\n' >"$TMP/bad2.yaml"
run 1 bpqctl apply "$TMP/bad2.yaml"
check "apply: bad value with file and line" err_has "$TMP/bad2.yaml:3: bad value for 'size': 'abc'"
check "apply: orders untouched" [ "$(sysv "$o" capacity_msgs)" = 1000 ]
printf 'queues:\n  fresh:\n    size: 5\n  metrics:\n    adaptive: { min_rate: 200000 }\n' >"$TMP/bad3.yaml"
run 1 bpqctl apply "$TMP/bad3.yaml"
check "apply: kernel refusal names the queue" err_has "queue 'metrics': set config: Invalid argument"
check "apply: rolled back the queue it created" sh -c "! grep -qx fresh /sys/class/bpq/*/name"
printf 'queues:\n  fresh:\n    hangup: sometimes\n' >"$TMP/bad4.yaml"
run 1 bpqctl apply "$TMP/bad4.yaml"
check "apply: bad hangup with file and line" \
	err_has "$TMP/bad4.yaml:3: bad value for 'hangup': 'sometimes'"
run 1 bpqctl apply "$TMP/missing.yaml"
run 2 bpqctl apply
# links: to a queue of the file, or one that exists; again, no change
printf 'queues:\n  stage1:\n    downstream: [stage2, orders]\n  stage2:\n' \
	>"$TMP/links.yaml"
run 0 bpqctl apply "$TMP/links.yaml"
st1=$(dev_of stage1)
check "apply: downstream links" \
	[ "$(sysv "$st1" downstream)" = "stage2 orders" ]
run 0 bpqctl apply "$TMP/links.yaml"
check "apply again: the links as they were" \
	[ "$(sysv "$st1" downstream)" = "stage2 orders" ]
printf 'queues:\n  stage3:\n    downstream: nowhere\n' >"$TMP/links2.yaml"
run 1 bpqctl apply "$TMP/links2.yaml"
check "apply: a link to no queue, with file and line" \
	err_has "$TMP/links2.yaml:3: queue 'stage3': link to 'nowhere'"
check "and the queue it made is gone" sh -c "! bpqctl show stage3 2>/dev/null"
printf 'queues:\n  stage2:\n    downstream: stage1\n' >"$TMP/links3.yaml"
run 1 bpqctl apply "$TMP/links3.yaml"
check "apply: a loop is refused" err_has "it would close a loop"
for n in stage1 stage2; do
	bpqctl destroy "$n" || not_ok "destroy $n"
done
for n in orders events metrics; do
	bpqctl destroy "$n" || not_ok "destroy $n"
done

# --- shutdown: the stream of a queue ---
run 0 bpqctl create ctlstream
s=$(cat "$TMP/out")
check "a fresh queue's stream is open, epoch 0" \
	[ "$(sysv "$s" stream)/$(sysv "$s" stream_epoch)" = open/0 ]
run 0 bpqctl show ctlstream
check "show: stream open" out_has '^  stream: open$'
check "show: hangup none" out_has '^  hangup: none$'
check "show: bpqctl counts as neither reader nor writer" sh -c \
	"grep -q '^  readers: 0\$' $TMP/out && grep -q '^  writers: 0\$' $TMP/out"
printf one >"/dev/$s"
run 0 bpqctl shutdown ctlstream
check "shutdown: completed" [ "$(sysv "$s" stream)" = completed ]
check "shutdown prints nothing" [ ! -s "$TMP/out" ]
sh -c "printf two >/dev/$s" 2>/dev/null
check "a write after shutdown fails (EPIPE, SIGPIPE)" [ $? -ne 0 ]
got=$(timeout 10 dd if="/dev/$s" bs=64 count=1 2>/dev/null)
check "the queued message stays readable" [ "$got" = one ]
got=$(timeout 10 cat "/dev/$s")
rc=$?
check "then cat ends at once: end of file" [ "$rc" -eq 0 -a -z "$got" ]
run 0 bpqctl shutdown ctlstream
check "shutdown again: still completed" [ "$(sysv "$s" stream)" = completed ]
run 0 bpqctl shutdown ctlstream --reopen
check "--reopen: open, epoch 1" \
	[ "$(sysv "$s" stream)/$(sysv "$s" stream_epoch)" = open/1 ]
printf m1 >"/dev/$s"
run 0 bpqctl shutdown ctlstream --error EIO
check "--error EIO: failed EIO in sysfs" [ "$(sysv "$s" stream)" = "failed EIO" ]
run 0 bpqctl show ctlstream
check "show: failed EIO" out_has '^  stream: failed EIO$'
check "show: stream_epoch" out_has '^  stream_epoch: 1$'
run 0 bpqctl show ctlstream --json
check "show --json: stream and its error" \
	out_has '"stream":"failed","stream_error":"EIO","stream_epoch":1,'
run 0 bpqctl list
check "list: a failed stream at the end of its line" out_has "^$s .* failed EIO\$"
run 0 bpqctl list --json
check "list --json: the stream" out_has '"stream":"failed"'
run 0 bpqctl stats ctlstream --json
check "stats --json: the stream" out_has '"stream":"failed","stream_error":"EIO"'
run 0 bpqctl stats ctlstream --prometheus
check "prometheus: bpq_stream_state" grep -q \
	'^bpq_stream_state{queue="ctlstream",strategy="block",state="failed"} 1$' "$TMP/out"
check "prometheus: one sample per state" [ "$(grep -c '^bpq_stream_state{' "$TMP/out")" -eq 4 ]
check "prometheus: bpq_stream_error" grep -q \
	'^bpq_stream_error{queue="ctlstream",strategy="block",error="EIO"} 5$' "$TMP/out"
check "prometheus: bpq_stream_epoch, bpq_readers, bpq_writers" sh -c \
	"grep -q '^bpq_stream_epoch{.*} 1\$' $TMP/out &&
	 grep -q '^bpq_readers{.*} 0\$' $TMP/out &&
	 grep -q '^bpq_writers{.*} 0\$' $TMP/out"
run 1 bpqctl shutdown ctlstream
check "complete of a failed stream: the error named" \
	err_has "bpqctl: shutdown ctlstream: Device or resource busy"
run 1 bpqctl shutdown ctlstream --reopen
check "--reopen while a message is queued: EBUSY" \
	err_has "bpqctl: shutdown ctlstream --reopen: Device or resource busy"
run 0 bpqctl shutdown ctlstream --cancel --discard
check "--cancel --discard prints how many it discarded" out_has '^1$'
check "--cancel: cancelled" [ "$(sysv "$s" stream)" = cancelled ]
run 1 bpqctl shutdown ctlstream --error EIO
check "fail of a cancelled stream: EPIPE" \
	err_has "bpqctl: shutdown ctlstream --error EIO: Broken pipe"
run 0 bpqctl shutdown "/dev/$s" --reopen
run 0 bpqctl shutdown ctlstream --error 71
check "--error by number" [ "$(sysv "$s" stream)" = "failed EPROTO" ]
run 0 bpqctl shutdown ctlstream --reopen
run 1 bpqctl shutdown ctlstream --error EAGAIN
check "--error EAGAIN: refused by the kernel" \
	err_has "bpqctl: shutdown ctlstream --error EAGAIN: Invalid argument"
check "a refused shutdown leaves the stream open" [ "$(sysv "$s" stream)" = open ]
run 2 bpqctl shutdown
run 2 bpqctl shutdown ctlstream --error
run 2 bpqctl shutdown ctlstream --error EFOO
check "an unknown errno named" err_has "'EFOO'"
run 2 bpqctl shutdown ctlstream --discard
run 2 bpqctl shutdown ctlstream --cancel --reopen
run 2 bpqctl shutdown ctlstream --bogus
run 2 bpqctl shutdown ctlstream extra
run 1 bpqctl shutdown no-such-queue
check "shutdown of a missing queue names it" \
	err_has "bpqctl: shutdown no-such-queue: No such file or directory"

# --- hangup: a queue as a FIFO ---
run 0 bpqctl set ctlstream hangup=writers
check "set hangup=writers" [ "$(sysv "$s" hangup)" = writers ]
run 0 bpqctl show ctlstream
check "show: hangup writers" out_has '^  hangup: writers$'
run 0 bpqctl show ctlstream --json
check "show --json: hangup by name" out_has '"hangup":"writers"'
echo hi >"/dev/$s"
check "hangup=writers: the writer's close completes" \
	[ "$(sysv "$s" stream)" = completed ]
got=$(timeout 10 cat "/dev/$s")
check "echo hi > Q; cat Q prints hi and ends" [ "$got" = hi ]
epoch=$(sysv "$s" stream_epoch)
echo again >"/dev/$s"
check "a writer's open of the drained stream opens it again" \
	[ "$(sysv "$s" stream_epoch)" -eq $((epoch + 1)) ]
got=$(timeout 10 cat "/dev/$s")
check "and cat ends again" [ "$got" = again ]
run 0 bpqctl shutdown ctlstream --reopen
run 0 bpqctl set ctlstream hangup=readers
run 0 bpqctl show ctlstream
run 0 bpqctl stats --prometheus
check "bpqctl's own close hangs no stream up" [ "$(sysv "$s" stream)" = open ]
exec 3<"/dev/$s"
exec 3<&-
check "hangup=readers: the last reader's close cancels" \
	[ "$(sysv "$s" stream)" = cancelled ]
run 2 bpqctl set ctlstream hangup=sometimes
run 2 bpqctl set ctlstream hangup=1
run 0 bpqctl create ctlfifo hangup=both
f=$(cat "$TMP/out")
check "create with hangup=both" [ "$(sysv "$f" hangup)" = both ]
run 2 bpqctl create ctlfifo2 hangup=all
for n in ctlstream ctlfifo; do
	bpqctl destroy "$n" || not_ok "destroy $n"
done

# --- hold: a pause, and why a queue is under pressure ---
run 0 bpqctl create ctlhold
h=$(cat "$TMP/out")
run 0 bpqctl hold ctlhold
check "hold: none at first" out_has '^hold: none$'
check "hold: no pressure" out_has '^pressure_source: none$'
run 0 bpqctl hold ctlhold +admin +cluster
check "hold +admin +cluster" [ "$(sysv "$h" hold)" = "admin cluster" ]
check "hold prints the holds" out_has '^hold: admin cluster$'
check "hold prints the source" out_has '^pressure_source: admin cluster$'
check "a hold is pressure" [ "$(sysv "$h" pressure)" = 1 ]
run 0 bpqctl show ctlhold
check "show: hold" out_has '^  hold: admin cluster$'
check "show: pressure_source" out_has '^  pressure_source: admin cluster$'
check "show: writers_waiting" out_has '^  writers_waiting: 0$'
check "show: head_age_us" out_has '^  head_age_us: 0$'
run 0 bpqctl show ctlhold --json
check "show --json: holds as arrays" out_has '"hold":\["admin","cluster"\],"pressure_source":\["admin","cluster"\]'
run 0 bpqctl stats ctlhold --prometheus
for m in bpq_held_seconds_total bpq_oldest_message_age_seconds \
	 bpq_writers_waiting; do
	check "prometheus: $m" grep -q "^$m{queue=\"ctlhold\"" "$TMP/out"
done
run 0 bpqctl hold ctlhold -admin
check "hold -admin leaves cluster" [ "$(sysv "$h" hold)" = cluster ]
run 2 bpqctl hold ctlhold +link
check "the kernel's reasons are not for bpqctl" err_has "bad hold '+link'"
run 2 bpqctl hold ctlhold admin
run 2 bpqctl hold ctlhold +everything
run 2 bpqctl hold
run 1 bpqctl hold no-such-queue +admin
check "hold kept after the bad ones" [ "$(sysv "$h" hold)" = cluster ]
run 0 bpqctl hold ctlhold -cluster
check "hold -cluster: none" [ "$(sysv "$h" hold)" = none ]
check "and no pressure" [ "$(sysv "$h" pressure)" = 0 ]
run 0 bpqctl create ctlsink
run 0 bpqctl link ctlhold ctlsink
check "link: downstream in sysfs" [ "$(sysv "$h" downstream)" = ctlsink ]
run 0 bpqctl show ctlhold
check "show: downstream" out_has '^  downstream: ctlsink$'
check "show: upstream, none" out_has '^  upstream:$'
run 0 bpqctl show ctlsink --json
check "show --json: upstream" out_has '"upstream":\["ctlhold"\],"downstream":\[\]'
run 0 bpqctl hold ctlsink +admin
i=0
while [ "$(sysv "$h" hold)" != link ] && [ $i -lt 500 ]; do
	usleep 10000
	i=$((i + 1))
done
check "the sink's hold holds the source" [ "$(sysv "$h" hold)" = link ]
check "pressure_source link" [ "$(sysv "$h" pressure_source)" = link ]
run 1 bpqctl link ctlhold ctlsink
check "link twice: already linked" err_has "already linked"
run 1 bpqctl link ctlsink ctlhold
check "a loop is refused" err_has "it would close a loop"
run 1 bpqctl link ctlhold no-such-queue
run 2 bpqctl link ctlhold
run 0 bpqctl unlink ctlhold ctlsink
check "unlink releases" [ "$(sysv "$h" hold)" = none ]
run 1 bpqctl unlink ctlhold ctlsink
check "unlink twice: not linked" err_has "not linked"
bpqctl destroy ctlsink || not_ok "destroy ctlsink"
bpqctl destroy ctlhold || not_ok "destroy ctlhold"

# --- acknowledgments and the window strategy ---
# no sojourn is long enough to be a congestion signal
run 0 bpqctl create ctlwin strategy=window initial_cwnd=4 min_cwnd=2 \
	max_cwnd=64 initial_ssthresh=32 ack_timeout_ms=0 ack_mode=ack \
	target_latency_us=60000000
w=$(cat "$TMP/out")
check "create strategy=window" [ "$(sysv "$w" strategy)" = window ]
check "create: the window settings" [ "$(sysv "$w" initial_cwnd)/$(sysv "$w" min_cwnd)/$(sysv "$w" max_cwnd)/$(sysv "$w" initial_ssthresh)/$(sysv "$w" ack_timeout_ms)/$(sysv "$w" ack_mode)" = 4/2/64/32/0/ack ]
run 0 bpqctl show ctlwin
check "show: ack_mode by name" out_has '^  ack_mode: ack$'
check "show: cwnd" out_has '^  cwnd: 4$'
check "show: ssthresh" out_has '^  ssthresh: 32$'
check "show: window_state" out_has '^  window_state: slow-start$'
run 0 bpqctl watch ctlwin --interval 50 --count 1
check "watch: the window column" out_has '^QUEUE .* WINDOW$'
check "watch: the window and its state" out_has '^bpq[0-9].* 4 slow-start$'
# two in, one out: two in flight, one of them delivered unacknowledged
printf a >"/dev/$w"
printf b >"/dev/$w"
timeout 10 dd if="/dev/$w" of=/dev/null bs=64 count=1 2>/dev/null
run 0 bpqctl show ctlwin
check "show: inflight 2" out_has '^  inflight: 2$'
check "show: unacked 1" out_has '^  unacked: 1$'
run 0 bpqctl show ctlwin --json
check "show --json: the window" out_has '"unacked":1,"cwnd":4,"ssthresh":32,"inflight":2,"window_state":"slow-start"'
run 0 bpqctl stats ctlwin
check "stats: acked_msgs" out_has '^  acked_msgs: 0$'
check "stats: congestion_events" out_has '^  congestion_events: 0$'
check "stats: cwnd_limited_ns" out_has '^  cwnd_limited_ns: '
check "stats: processing_hist" out_has '^  processing_hist:$'
run 0 bpqctl stats ctlwin --json
check "stats --json: processing_hist" out_has '"processing_hist":\[{"le_ns":1024,"count":0}'
check "stats --json: window counters" out_has '"congestion_events":0,"ack_timeouts":0,"cwnd_limited_ns":'
run 0 bpqctl stats ctlwin --prometheus
check "prometheus: bpq_cwnd" grep -q '^bpq_cwnd{queue="ctlwin",strategy="window"} 4$' "$TMP/out"
check "prometheus: bpq_ssthresh" grep -q '^bpq_ssthresh{queue="ctlwin",strategy="window"} 32$' "$TMP/out"
check "prometheus: bpq_inflight" grep -q '^bpq_inflight{queue="ctlwin",strategy="window"} 2$' "$TMP/out"
check "prometheus: bpq_unacked" grep -q '^bpq_unacked{queue="ctlwin",strategy="window"} 1$' "$TMP/out"
for m in bpq_acked_total bpq_nacked_total bpq_stale_acks_total \
	 bpq_congestion_events_total bpq_ack_timeouts_total; do
	check "prometheus: $m" grep -q "^$m{queue=\"ctlwin\",strategy=\"window\"} 0\$" "$TMP/out"
done
for m in bpq_processing_time_seconds bpq_waiting_time_seconds \
	 bpq_processing_latency_seconds; do
	check "prometheus: histogram $m" grep -q "^$m""_count{queue=\"ctlwin\"" "$TMP/out"
done
run 0 bpqctl set ctlwin max_cwnd=3
check "set max_cwnd=3 alone takes initial_cwnd along" \
	[ "$(sysv "$w" max_cwnd)/$(sysv "$w" initial_cwnd)" = 3/3 ]
run 1 bpqctl set ctlwin min_cwnd=5 max_cwnd=4
check "refused: min_cwnd above max_cwnd" err_has "Invalid argument"
run 1 bpqctl set ctlwin ack_timeout_ms=3600001
run 2 bpqctl set ctlwin ack_mode=sometimes
run 2 bpqctl set ctlwin ack_mode=1
run 0 bpqctl set ctlwin ack_mode=delivery
check "set ack_mode=delivery" [ "$(sysv "$w" ack_mode)" = delivery ]
run 0 bpqctl set ctlwin strategy=credit auto_credit=ack
check "set auto_credit=ack" [ "$(sysv "$w" auto_credit)" = ack ]
run 0 bpqctl show ctlwin
check "show: auto_credit ack" out_has '^  auto_credit: ack$'
check "show: no window state on a credit queue" sh -c "! grep -q '^  cwnd:' $TMP/out"
run 0 bpqctl show ctlwin --json
check "show --json: auto_credit a number" out_has '"auto_credit":2,'
run 0 bpqctl set ctlwin auto_credit=1
check "set auto_credit=1" [ "$(sysv "$w" auto_credit)" = 1 ]
run 2 bpqctl set ctlwin auto_credit=3
run 2 bpqctl set ctlwin strategy=tcp
cat >"$TMP/win.yaml" <<'YAML'
queues:
  ctlwin:
    strategy: window
    window: { ack_mode: ack, initial_cwnd: 8, min_cwnd: 1, max_cwnd: 128, initial_ssthresh: 16, ack_timeout: 2s }
  ctlack:
    flow_control: { type: credit, initial_credits: 5, auto_credit: ack }
YAML
run 0 bpqctl apply "$TMP/win.yaml"
a=$(dev_of ctlack)
check "apply: window settings" [ "$(sysv "$w" strategy)/$(sysv "$w" ack_mode)/$(sysv "$w" initial_cwnd)/$(sysv "$w" max_cwnd)/$(sysv "$w" initial_ssthresh)/$(sysv "$w" ack_timeout_ms)" = window/ack/8/128/16/2000 ]
check "apply: auto_credit ack" [ "$(sysv "$a" auto_credit)" = ack ]
for n in ctlwin ctlack; do
	bpqctl destroy "$n" || not_ok "destroy $n"
done

# --- apply: the pattern's template, as it is written ---
cat >"$TMP/backpressure.yaml" <<'YAML'
# Backpressure configuration template
backpressure:
  queue:
    max_size: 10000
    strategy: drop_oldest  # block, drop_newest, drop_oldest
    high_watermark: 0.8
    low_watermark: 0.5

  flow_control:
    type: credit_based  # credit_based, rate_based, adaptive
    initial_credits: 1000
    credit_batch_size: 100

  adaptive:
    enabled: true
    target_latency_ms: 100
    adjustment_interval_ms: 1000
    min_rate: 10
    max_rate: 10000
    increase_rate: 1.1
    decrease_rate: 0.5

  monitoring:
    metrics_interval_s: 10
    alert_thresholds:
      queue_utilization: 0.9
      drop_rate: 0.01
      blocked_time_ms: 5000
YAML
run 0 bpqctl apply "$TMP/backpressure.yaml"
check "template: default created" out_has '^bpq[0-9]* default created$'
check "template: the note on line 5, drop-oldest" \
	err_has "$TMP/backpressure.yaml:5: note: queue 'default' has strategy drop-oldest"
run 0 bpqctl show default
for kv in "strategy: drop-oldest" "capacity_msgs: 10000" \
	  "high_watermark: 80" "low_watermark: 50" \
	  "target_latency_us: 100000" "min_rate: 10" "max_rate: 10000" \
	  "adjust_interval_ms: 1000" "increase_pct: 10" "decrease_pct: 50" \
	  "credits_available: 0"; do
	check "template: show default: $kv" out_has "^  $kv\$"
done
run 0 bpqctl apply "$TMP/backpressure.yaml"
check "template applied again: updated" out_has '^bpq[0-9]* default updated$'
run 0 bpqctl destroy default

# --- alert: wait for a trigger ---
run 0 bpqctl create ctlalert strategy=drop-newest capacity_msgs=1
al=$(cat "$TMP/out")
run 1 bpqctl alert ctlalert drops 5/1s --timeout 2s
check "alert without drops: timed out" err_has "timed out"
bpqctl alert ctlalert drops 5/1s --timeout 8s >"$TMP/alert.out" 2>&1 &
apid=$!
sleep 1
i=0
while [ $i -lt 11 ]; do
	printf x >"/dev/$al" 2>/dev/null
	i=$((i + 1))
done
check "10 writes refused" [ "$(bpqctl stats ctlalert --json | grep -o '"dropped_newest":[0-9]*')" = '"dropped_newest":10' ]
t0=$(date +%s)
wait $apid
arc=$?
t1=$(date +%s)
check "alert: fires on 10 drops (exit 0)" [ "$arc" -eq 0 ]
check "alert: within a few seconds" [ $((t1 - t0)) -le 4 ]
sed 's/^/#   alert: /' "$TMP/alert.out"
run 2 bpqctl alert ctlalert bogus 1/1s
run 2 bpqctl alert ctlalert drops 1
run 2 bpqctl alert ctlalert drops 1/1s --timeout
run 1 bpqctl alert ctlalert drops 1/100ms
check "alert: the kernel's window named" err_has "the window is 500ms"
run 1 bpqctl alert no-such-queue drops 1/1s --timeout 1s
bpqctl destroy ctlalert || not_ok "destroy ctlalert"

# --- grant: set and revoke ---
run 0 bpqctl create ctlgrant strategy=credit
run 0 bpqctl grant ctlgrant =5
run 0 bpqctl grant ctlgrant -2
run 0 bpqctl show ctlgrant
check "grant =5, -2: credits_available 3" out_has '^  credits_available: 3$'
run 0 bpqctl grant ctlgrant =0
run 0 bpqctl show ctlgrant
check "grant =0: credits_available 0" out_has '^  credits_available: 0$'
run 2 bpqctl grant ctlgrant -0
run 2 bpqctl grant ctlgrant =x
bpqctl destroy ctlgrant || not_ok "destroy ctlgrant"

# --- groups ---
G=/sys/class/bpq_group
gv() { cat "$G/$1/$2"; }
# wait_hold QUEUE_DEV WANT: at most 2 s for the hold file to say WANT
wait_hold() {
	i=0
	while [ "$(sysv "$1" hold)" != "$2" ] && [ $i -lt 200 ]; do
		usleep 10000
		i=$((i + 1))
	done
	[ "$(sysv "$1" hold)" = "$2" ]
}
run 0 bpqctl create ctlga
ga=$(cat "$TMP/out")
run 0 bpqctl create ctlgb
gb=$(cat "$TMP/out")
run 0 bpqctl group create ctlgrp capacity_msgs=4 high_watermark=100 low_watermark=50
check "group create: sysfs" [ "$(gv ctlgrp capacity_msgs)/$(gv ctlgrp high_watermark)/$(gv ctlgrp low_watermark)" = 4/100/50 ]
run 1 bpqctl group create ctlgrp capacity_msgs=4
check "group create twice: File exists" err_has "bpqctl: group create ctlgrp: File exists"
run 2 bpqctl group create ctlgrp2
check "group create: capacity needed" err_has "capacity_msgs=N needed"
run 2 bpqctl group create ctlgrp2 capacity_msgs=4 colour=red
run 2 bpqctl group create ctlgrp2 capacity_msgs=4 high_watermark=101
run 2 bpqctl group create ctlgrp2 capacity_msgs=4 high_watermark=50 low_watermark=60
run 1 bpqctl group create ctlgrp2 capacity_msgs=4 --parent no-such-group
check "group create: the missing parent named" err_has "no group 'no-such-group'"
run 2 bpqctl group frobnicate
run 0 bpqctl group join ctlga ctlgrp
run 0 bpqctl group join "$gb" ctlgrp
run 1 bpqctl group join ctlga no-such-group
check "join: no such group" err_has "group join ctlga no-such-group: no such group"
run 1 bpqctl group join no-such-queue ctlgrp
check "members in sysfs" [ "$(gv ctlgrp members)" = "ctlga ctlgb" ]
check "a queue's group file" [ "$(sysv "$ga" group)" = ctlgrp ]
run 0 bpqctl show ctlga
check "show: group" out_has '^  group: ctlgrp$'
run 0 bpqctl show ctlga --json
check "show --json: group" out_has '"group":"ctlgrp"'
printf 1 >"/dev/$ga"
printf 2 >"/dev/$ga"
printf 3 >"/dev/$gb"
printf 4 >"/dev/$gb"
check "4 of 4: ctlga held by its group" wait_hold "$ga" group
check "4 of 4: ctlgb held by its group" wait_hold "$gb" group
run 0 bpqctl hold ctlga
check "hold prints group" out_has '^hold: group$'
run 0 bpqctl group show ctlgrp
check "group show: members" out_has '^  members: ctlga ctlgb$'
check "group show: depth 4" out_has '^  depth_msgs: 4$'
check "group show: pressure" out_has '^  pressure: 1$'
run 0 bpqctl group list
check "group list: a line" out_has '^ctlgrp .* 4/4 .*100% pressure  ctlga ctlgb$'
run 0 bpqctl group list --json
check "group list --json" out_has '"name":"ctlgrp","parent":null,"capacity_msgs":4,.*"members":\["ctlga","ctlgb"\]'
run 0 bpqctl stats --prometheus
check "prometheus: group depth" out_has '^bpq_group_depth{group="ctlgrp",parent=""} 4$'
check "prometheus: group utilization" out_has '^bpq_group_utilization{group="ctlgrp",parent=""} 1$'
check "prometheus: group pressure" out_has '^bpq_group_pressure{group="ctlgrp",parent=""} 1$'
for d in "$ga" "$ga" "$gb" "$gb"; do
	timeout 10 dd if="/dev/$d" of=/dev/null bs=64 count=1 2>/dev/null
done
check "read out: ctlga's hold gone" wait_hold "$ga" none
check "read out: ctlgb's hold gone" wait_hold "$gb" none
run 1 bpqctl group destroy ctlgrp
check "destroy with members: refused" err_has "group destroy ctlgrp: it has members"
run 0 bpqctl group leave ctlga
run 0 bpqctl group leave ctlgb
check "left: no group" [ -z "$(sysv "$ga" group)" ]
run 0 bpqctl show ctlga
check "show: no group" out_has '^  group:$'
run 0 bpqctl group destroy ctlgrp
check "group destroyed" [ ! -e "$G/ctlgrp" ]
run 1 bpqctl group destroy ctlgrp
run 1 bpqctl group show ctlgrp
cat >"$TMP/groups.yaml" <<'YAML'
queues:
  ctlga: { size: 10 }
  ctlgc:
    group: ctlweb
groups:
  ctlweb:
    capacity: 10
    high_watermark: 0.9
    low_watermark: 70%
    parent: ctlsite
    members: [ctlga]
  ctlsite: { capacity_msgs: 100 }
YAML
run 0 bpqctl apply --check "$TMP/groups.yaml"
check "apply --check: the group" out_has '^group: ctlweb$'
check "apply --check: nothing made" [ ! -e "$G/ctlsite" ]
run 0 bpqctl apply "$TMP/groups.yaml"
check "apply: parent first" out_has '^group ctlsite created$'
check "apply: the group" out_has '^group ctlweb created$'
check "apply: joined" out_has '^bpq[0-9]* ctlga joined ctlweb$'
gc=$(dev_of ctlgc)
check "apply: group settings" [ "$(gv ctlweb capacity_msgs)/$(gv ctlweb high_watermark)/$(gv ctlweb low_watermark)/$(gv ctlweb parent)" = 10/90/70/ctlsite ]
check "apply: parent's groups" [ "$(gv ctlsite groups)" = ctlweb ]
check "apply: members" [ "$(sysv "$ga" group)/$(sysv "$gc" group)" = ctlweb/ctlweb ]
run 0 bpqctl apply "$TMP/groups.yaml"
check "apply twice: updated" out_has '^group ctlweb updated$'
check "apply twice: nothing joined" sh -c "! grep -q joined $TMP/out"
sed -i 's/capacity: 10$/capacity: 20/; s/low_watermark: 70%/low_watermark: 0.95/; s/high_watermark: 0.9/high_watermark: 100/' "$TMP/groups.yaml"
run 0 bpqctl apply "$TMP/groups.yaml"
check "apply: settings changed in sysfs" [ "$(gv ctlweb capacity_msgs)/$(gv ctlweb high_watermark)/$(gv ctlweb low_watermark)" = 20/100/95 ]
sed -i 's/parent: ctlsite/parent: ctlother/' "$TMP/groups.yaml"
run 1 bpqctl apply "$TMP/groups.yaml"
check "apply: another parent refused, with its line" err_has "groups.yaml:6: group 'ctlweb' is within 'ctlsite', not 'ctlother'"
printf 'queues:\n  ctlga:\ngroups:\n  ctlweb: { capacity: 4, color: red }\n' >"$TMP/bad.yaml"
run 1 bpqctl apply "$TMP/bad.yaml"
check "apply: unknown group key, with its line" err_has "bad.yaml:4: unknown key 'color'"
for n in ctlga ctlgb ctlgc; do
	bpqctl destroy "$n" || not_ok "destroy $n"
done
run 0 bpqctl group destroy ctlweb
run 0 bpqctl group destroy ctlsite

# --- put bpq3 back ---
bpqctl set $Q $orig || not_ok "restore $Q"
bpqctl reset $Q
rm -rf "$TMP"

echo "# $pass passed, $fail failed"
[ "$fail" -eq 0 ]
