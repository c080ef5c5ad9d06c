#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Guest script of "make demo" (busybox sh, bpq.ko already loaded by the VM's
# init): show the devices and their sysfs files, then load /dev/bpq0 under
# each strategy and show its counters. To extend it, add a section function
# and call it from main.

DEV=/dev/bpq0
SYS=/sys/class/bpq/bpq0
STRATEGIES="block drop-newest drop-oldest credit adaptive"
CAPACITY=16
MESSAGES=100

heading() {
	echo
	echo "==== $* ===="
}

# Print "file:value" for every readable file below $1 (no empty histogram
# buckets).
show_files() {
	if [ -d "$1" ]; then
		grep -r . "$1" 2>/dev/null | sed "s|^$1/||" |
			grep -v -E '^(stats/)?latency_hist:.* 0$'
	else
		echo "($1 missing)"
	fi
}

show_devices() {
	heading "Devices"
	ls -l /dev/bpq* 2>&1
	heading "sysfs class"
	ls /sys/class/bpq/ 2>&1
}

show_attributes() {
	heading "Attributes of bpq0"
	show_files "$SYS"
}

# Write $2 to attribute $1 of bpq0 when it exists.
set_attr() {
	if [ -e "$SYS/$1" ]; then
		echo "$2" >"$SYS/$1" || echo "(cannot write $2 to $1)"
	fi
}

# The demo program from userspace/, when it was built and copied in.
demo_program() {
	command -v bpq-demo 2>/dev/null && return 0
	[ -x /tests/bpq-demo ] && echo /tests/bpq-demo
}

# Run COMMAND for at most SECS seconds: "bounded SECS COMMAND...".
bounded() {
	local left="$1" pid
	shift

	"$@" &
	pid=$!
	while [ "$left" -gt 0 ] && kill -0 "$pid" 2>/dev/null; do
		sleep 1
		left=$((left - 1))
	done
	kill -s KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
}

write_messages() {
	local i=0

	while [ "$i" -lt "$MESSAGES" ]; do
		echo "message $i" || return 1
		i=$((i + 1))
	done >"$DEV"
}

# Write $MESSAGES messages as fast as possible, then drain the queue. Both
# sides are bounded in time, since a strategy may make the writer wait.
load_queue() {
	local prog

	prog=$(demo_program)
	if [ -n "$prog" ]; then
		bounded 20 "$prog" "$DEV"
		return
	fi
	echo "(no bpq-demo: writing $MESSAGES messages from the shell)"
	bounded 5 write_messages
	echo "writer exit status: $?"
	heading "Counters after writing"
	show_files "$SYS/stats"
	bounded 2 cat "$DEV" >/dev/null
}

demo_strategy() {
	local strategy="$1"

	heading "Strategy $strategy"
	if ! echo "$strategy" >"$SYS/strategy"; then
		echo "(cannot set strategy $strategy)"
		return
	fi
	set_attr capacity_msgs "$CAPACITY"
	set_attr stats/reset 1
	echo "strategy: $(cat "$SYS/strategy"), capacity_msgs: $CAPACITY"
	load_queue
	heading "Counters after draining"
	show_files "$SYS/stats"
}

demo_strategies() {
	local strategy

	if [ ! -f "$SYS/strategy" ]; then
		heading "Strategies"
		echo "($SYS/strategy missing: skipped)"
		return
	fi
	for strategy in $STRATEGIES; do
		demo_strategy "$strategy"
	done
}

main() {
	show_devices
	show_attributes
	demo_strategies
	heading "Done"
}

main
