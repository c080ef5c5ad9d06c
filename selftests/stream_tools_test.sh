#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Guest script (busybox sh, root): a queue's stream as tools that know
# nothing of bpq see it. With hangup=writers the queue behaves as a FIFO:
# the last writer's close completes the stream, a reader gets end of file
# once it has read what is queued, and the next open, for reading or for
# writing, of the drained stream starts a new one: a reader that comes
# first waits for its writer. Unlike a FIFO, each write() is one message
# and each read() takes one whole message (EMSGSIZE if it does not fit),
# and open() does not wait for the other side.
#
#  * echo hi > /dev/bpqN; cat /dev/bpqN: cat prints hi and ends; again;
#    a cat that comes first waits for the echo.
#  * seq 1 100000 > /dev/bpqN & wc -l < /dev/bpqN: 100000, through a
#    queue of 8 messages (seq's 4 KiB writes); and every byte, through cat.
#  * dd: blocks written with bs= come back whole, read by dd up to end of
#    file; a read block smaller than a message fails (EMSGSIZE) and leaves
#    the message queued; a larger one reads short blocks.
#  * head -n 5 < /dev/bpqN ends. stdio reads 4 KiB at a time, so head took
#    the first of seq's 4 KiB messages whole, printed five lines of it and
#    dropped the rest of it; the other messages stay queued for the next
#    reader, and the stream stays completed (a reader's close does nothing).
#  * hangup=both, as a pipe: seq 1 100000 > /dev/bpqN & head -n 5 <
#    /dev/bpqN: head's close cancels the stream, and seq, waiting for room
#    in a queue of 4 messages, dies of SIGPIPE.
#  * read_mode=stream, as a pipe: a shell's "read line < /dev/bpqN" (a
#    byte a time) gets one line and leaves the rest; "while read" counts
#    seq's lines; dd bs=10 count=1 takes ten bytes and leaves the rest.
#
# Works on a queue it creates with bpqctl (scripts/vm.sh --bin) and
# destroys, or without bpqctl on bpq2, which it puts back.

KSFT_SKIP=4
TMP=/tmp/stream_tools_test.$$
pass=0
fail=0

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

same() {	# same DESCRIPTION EXPECTED GOT
	if [ "$2" = "$3" ]; then
		ok "$1"
	else
		not_ok "$1: got \"$3\", expected \"$2\""
	fi
}

sysv() { cat "$SYS/$1"; }

# Wait for background job $1 (at most 60 s, then kill it): its status.
reap() {
	i=0
	while kill -0 "$1" 2>/dev/null && [ $i -lt 600 ]; do
		usleep 100000
		i=$((i + 1))
	done
	kill "$1" 2>/dev/null
	wait "$1"
}

[ -c /dev/bpq-control ] || {
	echo "# SKIP: no /dev/bpq-control"
	exit $KSFT_SKIP
}
mkdir -p "$TMP"

created=
if command -v bpqctl >/dev/null 2>&1; then
	Q=$(bpqctl create "stream-tools-$$" 2>"$TMP/err") && created=$Q
	[ -n "$created" ] || sed 's/^/# bpqctl: /' "$TMP/err"
fi
if [ -z "$created" ]; then
	Q=bpq2
	echo "# no queue from bpqctl: working on $Q"
fi
DEV=/dev/$Q
SYS=/sys/class/bpq/$Q
i=0
while [ ! -c "$DEV" ] && [ $i -lt 100 ]; do
	usleep 20000
	i=$((i + 1))
done
if [ ! -c "$DEV" ] || [ ! -r "$SYS/stream" ]; then
	echo "not ok 1 - $DEV and $SYS/stream"
	rm -rf "$TMP"
	exit 1
fi
orig_capacity=$(sysv capacity_msgs)
orig_hangup=$(sysv hangup)
same "the stream starts open" open "$(sysv stream)"

# --- echo and cat ---
echo writers >"$SYS/hangup"
same "hangup=writers" writers "$(sysv hangup)"
epoch=$(sysv stream_epoch)
echo hi >"$DEV"
same "echo's close completes the stream" completed "$(sysv stream)"
same "echo wrote one message" 1 "$(sysv depth_msgs)"
got=$(timeout 20 cat "$DEV")
same "cat prints hi and ends" "hi 0" "$got $?"
same "cat drained the queue" 0 "$(sysv depth_msgs)"
echo again >"$DEV"
same "echo's open started the stream again" $((epoch + 1)) \
	"$(sysv stream_epoch)"
got=$(timeout 20 cat "$DEV")
same "cat prints again and ends" "again 0" "$got $?"
timeout 20 cat "$DEV" >"$TMP/out" &
pid=$!
n=0
while [ "$(sysv stream)" != open ] && [ $n -lt 200 ]; do
	usleep 100000
	n=$((n + 1))
done
same "cat's open of the drained stream started a new one" \
	"open $((epoch + 2))" "$(sysv stream) $(sysv stream_epoch)"
echo third >"$DEV"
reap $pid
same "the waiting cat prints the next echo and ends" "0 third" \
	"$? $(cat "$TMP/out")"

# --- seq and wc, the writer held back ---
echo 8 >"$SYS/capacity_msgs"
seq 1 100000 >"$DEV" &
pid=$!
n=$(timeout 120 wc -l <"$DEV")
rc=$?
reap $pid
same "seq exits 0" 0 $?
same "wc -l counts every line seq wrote, and ends" "100000 0" "$n $rc"
same "seq's close completed the stream" completed "$(sysv stream)"

seq 1 100000 >"$DEV" &
pid=$!
timeout 120 cat "$DEV" >"$TMP/out"
rc=$?
reap $pid
same "cat ends" 0 $rc
seq 1 100000 >"$TMP/want"
check "cat got every byte, in order" cmp -s "$TMP/want" "$TMP/out"

# --- dd ---
echo 256 >"$SYS/capacity_msgs"
dd if=/dev/urandom of="$TMP/in" bs=4096 count=64 2>/dev/null
dd if="$TMP/in" of="$DEV" bs=4096 2>"$TMP/err"
same "dd writes 64 blocks of 4096" 0 $?
same "one message per block" 64 "$(sysv depth_msgs)"
same "dd's close completed the stream" completed "$(sysv stream)"
timeout 30 dd if="$DEV" of="$TMP/out" bs=4096 2>"$TMP/err"
same "dd reads up to end of file" 0 $?
check "dd read 64 whole blocks" grep -q '^64+0 records in' "$TMP/err"
check "dd read back what it wrote" cmp -s "$TMP/in" "$TMP/out"

dd if="$TMP/in" of="$DEV" bs=65536 2>"$TMP/err"
same "dd writes 4 blocks of 65536 (max_msg_size)" "0 4" "$? $(sysv depth_msgs)"
timeout 30 dd if="$DEV" of="$TMP/out" bs=16384 2>"$TMP/err"
rc=$?
check "a block smaller than the message fails" [ "$rc" -ne 0 ]
check "with EMSGSIZE" grep -q 'Message too long' "$TMP/err"
same "and leaves it queued" 4 "$(sysv depth_msgs)"
timeout 30 dd if="$DEV" of="$TMP/out" bs=65536 2>"$TMP/err"
same "dd bs=65536 reads up to end of file" 0 $?
check "dd read 4 whole blocks" grep -q '^4+0 records in' "$TMP/err"
check "dd read back what it wrote" cmp -s "$TMP/in" "$TMP/out"

dd if="$TMP/in" of="$DEV" bs=4096 2>/dev/null
timeout 30 dd if="$DEV" of="$TMP/out" bs=65536 2>"$TMP/err"
same "dd with blocks larger than the messages ends" 0 $?
check "and reads 64 short blocks" grep -q '^0+64 records in' "$TMP/err"
check "dd read back what it wrote" cmp -s "$TMP/in" "$TMP/out"

# --- head, and the rest ---
seq 1 10000 >"$DEV"
msgs=$(sysv depth_msgs)
bytes=$(sysv depth_bytes)
same "seq's output queued" "$(seq 1 10000 | wc -c)" "$bytes"
got=$(timeout 20 head -n 5 <"$DEV")
same "head -n 5 prints 1 to 5 and ends" "$(seq 1 5) 0" "$got $?"
same "head read one message" $((msgs - 1)) "$(sysv depth_msgs)"
left=$(sysv depth_bytes)
check "the rest of that message went with it" \
	[ "$left" -lt $((bytes - 10)) ]
same "a reader's close leaves the stream completed" completed \
	"$(sysv stream)"
timeout 20 cat "$DEV" >"$TMP/out"
same "the next reader, cat, ends" 0 $?
seq 1 10000 | tail -c "$left" >"$TMP/want"
check "cat got the other messages whole" cmp -s "$TMP/want" "$TMP/out"

# --- hangup=both: head and seq as through a pipe ---
echo both >"$SYS/hangup"
echo 4 >"$SYS/capacity_msgs"
seq 1 100000 >"$DEV" &
pid=$!
# seq fills the queue and waits for room before head comes: what head
# leaves is then queued, whatever the speed of the machine
i=0
while [ "$(sysv depth_msgs)" -lt 4 ] && [ $i -lt 600 ]; do
	usleep 50000
	i=$((i + 1))
done
same "seq filled the queue" 4 "$(sysv depth_msgs)"
got=$(timeout 30 head -n 5 <"$DEV")
same "head -n 5 prints 1 to 5 and ends" "$(seq 1 5) 0" "$got $?"
reap $pid
same "seq, waiting for room, dies of SIGPIPE" 141 $?
same "head's close cancelled the stream" cancelled "$(sysv stream)"
check "what was queued is kept" [ "$(sysv depth_msgs)" -ge 1 ]
timeout 20 cat "$DEV" >/dev/null
same "cat reads it and ends" "0 0" "$? $(sysv depth_msgs)"

# --- read_mode=stream: a shell's read, line by line ---
echo writers >"$SYS/hangup"
echo 256 >"$SYS/capacity_msgs"
echo stream >"$SYS/read_mode"
echo open >"$SYS/stream"
printf 'first line\nsecond line\n' >"$DEV"
read -r a <"$DEV"
read -r b <"$DEV"
same "read line < DEV, twice: a line each" "first line/second line" "$a/$b"
same "and nothing left" 0 "$(sysv depth_msgs)"
check "counted as reads in part" [ "$(sysv stats/partial_reads)" -ge 22 ]
seq 1 1000 >"$DEV"
n=0
while read -r line; do
	n=$((n + 1))
	last=$line
done <"$DEV"
same "while read counts seq's lines, to the end of the stream" "1000 1000" \
	"$n $last"
seq 1 10000 >"$DEV"
got=$(timeout 20 dd bs=10 count=1 <"$DEV" 2>/dev/null | tr '\n' ' ')
same "dd bs=10 count=1 takes ten bytes" "1 2 3 4 5 " "$got"
timeout 20 cat "$DEV" >"$TMP/out"
seq 1 10000 | tail -c +11 >"$TMP/want"
check "and cat the rest, every byte" cmp -s "$TMP/want" "$TMP/out"
echo message >"$SYS/read_mode"

# --- back as it was ---
if [ -n "$created" ]; then
	bpqctl destroy "$Q" >/dev/null 2>"$TMP/err"
	same "queue destroyed" 0 $?
else
	echo "$orig_hangup" >"$SYS/hangup"
	echo "$orig_capacity" >"$SYS/capacity_msgs"
	echo cancelled >"$SYS/stream"
	timeout 20 cat "$DEV" >/dev/null
	echo open >"$SYS/stream"
	same "$Q back as it was" "open $orig_hangup" \
		"$(sysv stream) $(sysv hangup)"
fi

rm -rf "$TMP"
echo "# $pass passed, $fail failed"
[ "$fail" -eq 0 ]
