#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# /init of the test VM built by scripts/vm.sh (busybox sh, runs as PID 1).
#
# Loads /bpq.ko, runs each program listed in /tests/list, and reports one
# TAP-like line per step on the second serial port (/dev/ttyS1):
#   ok NAME | ok NAME # SKIP | not ok NAME (reason)
# then writes BPQ-VM-DONE there and powers off. A panic, hang or timeout
# therefore shows up on the host as a missing BPQ-VM-DONE.
#
# Settings come from /etc/bpq-vm.conf: MODE (tests or shell), TEST_TIMEOUT
# (seconds per test, 0 for none), MODULE_ARGS (passed to insmod),
# DEBUG_GATES (1 on the debug kernel: kmemleak cleared before insmod and
# checked after rmmod, and lockdep must still be on at the end).

export PATH=/usr/local/bin:/sbin:/bin:/usr/sbin:/usr/bin
export HOME=/root
export LD_LIBRARY_PATH=/usr/local/lib

MODE=tests
TEST_TIMEOUT=300
MODULE_ARGS=
DEBUG_GATES=0
. /etc/bpq-vm.conf

RESULT=/dev/ttyS1
MARKER=bpq-test-start:
KSELFTEST_SKIP=4
KMEMLEAK=/sys/kernel/debug/kmemleak
# Taint bits a test run may add: O (out-of-tree module), E (unsigned module).
TAINT_ALLOWED=$((4096 | 8192))
BAD_LOG='BUG:|WARNING:|Oops|KASAN|UBSAN|circular locking|inconsistent lock'
BAD_LOG="$BAD_LOG|sleeping function called|suspicious RCU|hung_task"
BAD_LOG="$BAD_LOG|soft lockup|Call Trace"

failures=0

mount_filesystems() {
	/bin/busybox --install -s
	mount -t proc proc /proc
	mount -t sysfs sysfs /sys
	mount -t devtmpfs devtmpfs /dev
	exec </dev/console >/dev/console 2>&1
	mkdir -p /dev/pts /dev/shm
	mount -t devpts devpts /dev/pts
	mount -t tmpfs tmpfs /dev/shm
	mount -t tmpfs tmpfs /tmp
	mount -t cgroup2 cgroup2 /sys/fs/cgroup
	if [ -d /sys/kernel/debug ]; then
		mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
	fi
	ip link set lo up 2>/dev/null
	hostname bpq-vm
}

report() {
	echo "$*" >"$RESULT"
}

# Kernel log lines written after the last "$MARKER $1" line; the whole log if
# the marker has already been pushed out of the ring buffer.
log_since_marker() {
	local n

	dmesg | sed 's/^\[[^]]*\] //' >/tmp/kmsg
	n=$(grep -n -x -F "$MARKER $1" /tmp/kmsg | tail -n 1 | cut -d : -f 1)
	tail -n +"$((${n:-0} + 1))" /tmp/kmsg
}

# Between "bpq-faults: injected allocation failures begin" and "... end"
# (selftests/faults_test.sh, insmod under failslab) the kernel's own reports
# of a failed allocation (warn_alloc: a header and a bare stack dump) are
# expected; everything else that BAD_LOG names still counts there.
bad_log_line() {
	log_since_marker "$1" |
		awk '/bpq-faults: injected allocation failures begin/ { f = 1 }
		     /bpq-faults: injected allocation failures end/ { f = 0 }
		     !(f && /Call Trace/)' |
		grep -E "$BAD_LOG" | head -n 1 | cut -c 1-120
}

# Kill process group $1 unless it is gone within $2 seconds.
watchdog() {
	local pgid="$1" left="$2"

	while [ "$left" -gt 0 ]; do
		kill -0 "$pgid" 2>/dev/null || return 0
		sleep 1
		left=$((left - 1))
	done
	kill -s KILL -- "-$pgid" 2>/dev/null
}

# Run COMMAND in a process group of its own, killed after TEST_TIMEOUT
# seconds (busybox timeout is not used: it may run in the shell's process).
run_with_timeout() {
	local pid watcher='' rc

	setsid "$@" &
	pid=$!
	if [ "$TEST_TIMEOUT" -gt 0 ]; then
		watchdog "$pid" "$TEST_TIMEOUT" &
		watcher=$!
	fi
	wait "$pid"
	rc=$?
	# Leftover children would disturb the next test and rmmod.
	kill -s KILL -- "-$pid" 2>/dev/null
	if [ -n "$watcher" ]; then
		kill "$watcher" 2>/dev/null
		wait "$watcher" 2>/dev/null
	fi
	return "$rc"
}

# run_step NAME COMMAND...: run COMMAND, check its status and the kernel log
# it caused, and report the verdict for NAME. Returns the verdict.
run_step() {
	local name="$1" start rc elapsed bad reason=''
	shift

	echo "<6>$MARKER $name" >/dev/kmsg
	start=$(date +%s)
	run_with_timeout "$@" </dev/null
	rc=$?
	elapsed=$(($(date +%s) - start))
	bad=$(bad_log_line "$name")

	if [ -n "$bad" ]; then
		reason="kernel log: $bad"
	elif [ "$rc" -eq 137 ] && [ "$TEST_TIMEOUT" -gt 0 ] &&
		[ "$elapsed" -ge "$TEST_TIMEOUT" ]; then
		reason="timeout after ${TEST_TIMEOUT}s"
	elif [ "$rc" -ne 0 ] && [ "$rc" -ne "$KSELFTEST_SKIP" ]; then
		reason="exit status $rc"
	fi

	if [ -n "$reason" ]; then
		report "not ok $name ($reason)"
		echo "# not ok $name ($reason) [${elapsed}s]"
		failures=$((failures + 1))
		return 1
	fi
	if [ "$rc" -eq "$KSELFTEST_SKIP" ]; then
		report "ok $name # SKIP"
		echo "# ok $name # SKIP [${elapsed}s]"
	else
		report "ok $name"
		echo "# ok $name [${elapsed}s]"
	fi
	return 0
}

run_test() {
	local name="$1"

	echo "# ---- $name ----"
	cd /tests || return 1
	run_step "$name" "./$name"
	cd /
}

run_tests() {
	local name

	while read -r name; do
		[ -n "$name" ] && run_test "$name"
	done </tests/list
}

check_taint() {
	local before="$1" after new

	after=$(cat /proc/sys/kernel/tainted)
	new=$((after & ~before & ~TAINT_ALLOWED))
	if [ "$new" -eq 0 ]; then
		report "ok taint"
	else
		report "not ok taint (tainted $before -> $after)"
		echo "# not ok taint (tainted $before -> $after)"
	fi
}

# Lockdep turns itself off (debug_locks: 0) after its first report, which
# does not always WARN.
check_lockdep() {
	local on

	on=$(awk '/debug_locks:/ { print $2 }' /proc/lockdep_stats 2>/dev/null)
	case $on in
	1) report "ok lockdep" ;;
	"") report "not ok lockdep (no /proc/lockdep_stats)" ;;
	*)
		report "not ok lockdep (debug_locks: $on)"
		echo "# not ok lockdep (debug_locks: $on)"
		;;
	esac
}

# "clear" only forgets objects a scan has already reported, so scan first:
# what boot left unreferenced is then not blamed on the tests.
kmemleak_clear() {
	{ echo scan >"$KMEMLEAK" && echo clear >"$KMEMLEAK"; } 2>/dev/null ||
		echo "# kmemleak: cannot scan and clear $KMEMLEAK"
}

# Objects are reported once unreferenced for 5 s: scan, wait, scan again,
# and save the report in $1.
kmemleak_scan() {
	echo scan >"$KMEMLEAK" 2>/dev/null || return 1
	sleep 6
	echo scan >"$KMEMLEAK" && cat "$KMEMLEAK" >"$1"
}

# Called once before rmmod, where the module's frames in the backtraces
# still have names, and once after it, which also finds what the module
# only referenced from its own data and did not free on exit. The gate
# counts the leaks known after rmmod (reports add up).
check_kmemleak() {
	local n

	if ! kmemleak_scan /tmp/kmemleak; then
		report "not ok kmemleak (cannot scan $KMEMLEAK)"
		return
	fi
	n=$(grep -c '^unreferenced object' /tmp/kmemleak)
	if [ "$n" -eq 0 ]; then
		report "ok kmemleak"
		return
	fi
	report "not ok kmemleak ($n leaks)"
	echo "# not ok kmemleak ($n leaks):"
	if [ -s /tmp/kmemleak.loaded ]; then
		echo "# found before rmmod:"
		head -n 80 /tmp/kmemleak.loaded
	fi
	echo "# found after rmmod:"
	head -n 80 /tmp/kmemleak
}

show_module_users() {
	local fd

	echo "# processes with a bpq file open:"
	for fd in /proc/[0-9]*/fd/*; do
		case $(readlink "$fd") in
		/dev/bpq*) echo "#   $fd: $(cat "${fd%/fd/*}/comm")" ;;
		esac
	done
}

interactive_shell() {
	echo "# bpq.ko loaded; exit the shell to power off."
	setsid cttyhack sh -l
}

finish() {
	report BPQ-VM-DONE
	sync
	poweroff -f
	sleep 10
}

main() {
	local taint_before

	mount_filesystems
	taint_before=$(cat /proc/sys/kernel/tainted)
	if [ "$DEBUG_GATES" = 1 ]; then
		kmemleak_clear
	fi

	# shellcheck disable=SC2086 # MODULE_ARGS is a list of words
	if run_step insmod insmod /bpq.ko $MODULE_ARGS; then
		if [ "$MODE" = shell ]; then
			interactive_shell
		else
			run_tests
			if [ "$DEBUG_GATES" = 1 ]; then
				kmemleak_scan /tmp/kmemleak.loaded
			fi
			run_step rmmod rmmod bpq || show_module_users
		fi
	fi
	if [ "$DEBUG_GATES" = 1 ] && [ "$MODE" != shell ]; then
		check_kmemleak
		check_lockdep
	fi
	check_taint "$taint_before"
	finish
}

main
