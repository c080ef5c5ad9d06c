# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=sh
#
# What the guest scripts that unload and load the module share (busybox sh,
# root). Sourced, not run: . "$(dirname "$0")/lib.sh"
#
# Sets KSFT_SKIP, MODULE, MODULE_ARGS (the runner's, from /etc/bpq-vm.conf)
# and failures; fail counts into failures, finish reports it and exits.

# shellcheck disable=SC2034 # used by the scripts that source this
KSFT_SKIP=4
MODULE=/bpq.ko
MODULE_ARGS=
[ -r /etc/bpq-vm.conf ] && . /etc/bpq-vm.conf

failures=0

log() {
	echo "# $*"
}

fail() {
	echo "not ok: $*"
	failures=$((failures + 1))
}

loaded() {
	[ -d /sys/module/bpq ]
}

load() {
	# shellcheck disable=SC2086 # MODULE_ARGS is a list of words
	loaded || insmod "$MODULE" $MODULE_ARGS
}

# Wait until $1 is a character device: at most $2 tries, $3 us apart.
wait_cdev() {
	local i=0

	while [ ! -c "$1" ] && [ $i -lt "$2" ]; do
		usleep "$3" 2>/dev/null || sleep 1
		i=$((i + 1))
	done
}

# A message written to /dev/bpqN comes back.
roundtrip() {
	local q=/dev/bpq$1 got

	printf 'ping-%s' "$1" >"$q" || return 1
	got=$(dd if="$q" bs=64 count=1 2>/dev/null)
	[ "$got" = "ping-$1" ]
}

# "ok NAME" and exit 0 if nothing failed, else "not ok NAME" and exit 1.
finish() {
	if [ "$failures" -gt 0 ]; then
		echo "not ok $1: $failures failures"
		exit 1
	fi
	echo "ok $1"
	exit 0
}
