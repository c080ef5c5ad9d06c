#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Guest script (busybox sh, root): the module against rmmod.
#
#  * rmmod fails while any queue or the control device is open, or a reader
#    is blocked, and the module stays usable; it succeeds once they close.
#  * rmmod with a sysfs attribute of a queue held open works, and the open
#    attribute then fails cleanly.
#  * open/close/write/read/fdinfo/sysfs loops run in the background while
#    the foreground rmmods and insmods for a few seconds: no crash (the
#    runner checks the kernel log).
#
# The module is loaded again, with the runner's arguments, when this exits.

# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"
STOP=/tmp/module_test.stop.$$
NODE=
DURATION=${DURATION:-8}

bg_pids=

stop_loops() {
	local pid

	touch "$STOP"
	for pid in $bg_pids; do
		wait "$pid" 2>/dev/null
	done
	bg_pids=
	rm -f "$STOP"
}

# Nothing but device nodes may be left behind in /dev.
check_dev() {
	local f

	for f in /dev/bpq*; do
		[ -e "$f" ] || continue
		if [ ! -c "$f" ]; then
			fail "$f is not a device node"
			rm -f "$f"
		fi
	done
}

cleanup() {
	stop_loops
	rm -f "$NODE"
	exec 3>&- 4>&- 5<&-
	load || echo "not ok: cannot load $MODULE again"
}
trap cleanup EXIT

# Leave rmmod a window now and then.
pause() {
	usleep 2000 2>/dev/null || sleep 1
}

# rmmod must fail now, and leave the module working.
expect_busy() {
	local what=$1

	if rmmod bpq 2>/dev/null; then
		fail "rmmod succeeded with $what"
		load
		return
	fi
	loaded || { fail "module gone after failed rmmod ($what)"; return; }
	[ "$(cat /sys/module/bpq/refcnt)" -gt 0 ] ||
		fail "refcnt 0 with $what"
	roundtrip 0 || fail "queue unusable after failed rmmod ($what)"
	[ -c /dev/bpq-control ] || fail "no /dev/bpq-control ($what)"
	log "rmmod refused with $what"
}

# rmmod must succeed now; load again at once.
expect_unload() {
	local what=$1

	if ! rmmod bpq; then
		fail "rmmod failed after $what"
		return 1
	fi
	[ -e /dev/bpq0 ] && fail "/dev/bpq0 still there after rmmod"
	load || { fail "insmod failed after $what"; return 1; }
	[ -c /dev/bpq0 ] || fail "no /dev/bpq0 after insmod"
	roundtrip 0 || fail "queue unusable after reload"
	return 0
}

if ! loaded || [ ! -c /dev/bpq0 ]; then
	echo "# SKIP: bpq is not loaded"
	exit "$KSFT_SKIP"
fi
if ! rmmod bpq; then
	echo "# SKIP: bpq cannot be unloaded to begin with (something holds it)"
	exit "$KSFT_SKIP"
fi
load || { echo "not ok: insmod"; exit 1; }

# ---- rmmod while something is open ----

exec 3<>/dev/bpq0
expect_busy "/dev/bpq0 open read-write"
exec 3>&-
expect_unload "closing /dev/bpq0"

exec 3</dev/bpq1
expect_busy "/dev/bpq1 open read-only"
exec 3<&-

exec 3<>/dev/bpq-control
expect_busy "/dev/bpq-control open"
exec 3>&-

# a queue with messages in it, open through a second file too
printf 'keep' >/dev/bpq2
exec 3<>/dev/bpq2 4<>/dev/bpq2
expect_busy "two files of a non-empty queue"
exec 3>&- 4>&-

# a reader blocked on an empty queue
cat /dev/bpq3 >/dev/null &
reader=$!
sleep 1
expect_busy "a reader blocked in read()"
kill "$reader"
wait "$reader" 2>/dev/null
expect_unload "the blocked reader was killed"

# a sysfs attribute held open does not hold the module
exec 5</sys/class/bpq/bpq0/depth_msgs
if rmmod bpq; then
	if cat <&5 >/dev/null 2>&1; then
		log "read of an orphaned sysfs attribute succeeded"
	fi
	exec 5<&-
	load || fail "insmod after rmmod with sysfs open"
else
	exec 5<&-
	fail "rmmod failed with only a sysfs attribute open"
fi

# ---- open/close loops against rmmod/insmod ----

# Never open /dev/bpqN for writing from the loops: while the module is out
# that would create a regular file in its place. Writes go through a node
# of our own in /tmp, which gives ENXIO while the module is out.
NODE=/tmp/module_test.$$.bpq1
mknod "$NODE" c "$(cut -d : -f 1 /sys/class/bpq/bpq1/dev)" \
	"$(cut -d : -f 2 /sys/class/bpq/bpq1/dev)" || fail "mknod $NODE"

rm -f "$STOP"
# files of queues and of the control device, opened and closed
(
	while [ ! -e "$STOP" ]; do
		for n in 0 1 2 3; do
			true 3</dev/bpq$n 2>/dev/null
		done
		true 3</dev/bpq-control 2>/dev/null
		pause
	done
) 2>/dev/null &
bg_pids="$bg_pids $!"
# a message in and out through one file, and its fdinfo
(
	while [ ! -e "$STOP" ]; do
		{
			printf 'x' >&3 && dd bs=16 count=1 <&3 >/dev/null 2>&1
			cat /proc/self/fdinfo/3 >/dev/null 2>&1
		} 3<>"$NODE" 2>/dev/null
		pause
	done
) 2>/dev/null &
bg_pids="$bg_pids $!"
# sysfs state, settings and counters
(
	while [ ! -e "$STOP" ]; do
		cat /sys/class/bpq/bpq2/depth_msgs \
		    /sys/class/bpq/bpq2/strategy \
		    /sys/class/bpq/bpq2/stats/enqueued_msgs \
		    /sys/class/bpq/bpq2/stats/latency_hist >/dev/null 2>&1
		[ -e /sys/class/bpq/bpq2/capacity_msgs ] &&
			echo 10 2>/dev/null >/sys/class/bpq/bpq2/capacity_msgs
	done
) 2>/dev/null &
bg_pids="$bg_pids $!"

unloads=0
busy=0
end=$(($(date +%s) + DURATION))
while [ "$(date +%s)" -lt "$end" ]; do
	if rmmod bpq 2>/dev/null; then
		unloads=$((unloads + 1))
	else
		busy=$((busy + 1))
	fi
	load || { fail "insmod failed during the loop"; break; }
done
stop_loops
rm -f "$NODE"
log "rmmod/insmod loop: $unloads unloads, $busy refused while busy"
[ "$unloads" -gt 0 ] || fail "rmmod never succeeded during the loop"

# the loops have ended: the module can go and come back
load
expect_unload "the loops ended"
for n in 0 1 2 3; do
	roundtrip $n || fail "/dev/bpq$n unusable at the end"
done

check_dev
finish module_test
