#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Guest script (busybox sh, root), debug kernel: the module's load and
# unload under faults, and leaks.
#
#  * insmod under failslab (FAULTS_INSMOD=0 leaves it out): with the task
#    filter set on the insmod process alone (make-it-fail in a subshell that then execs insmod), failslab
#    fails the allocation after `space` bytes, for `space` growing attempt
#    by attempt, then at random (probability 20 %, at most `times` faults).
#    Each insmod either loads a working module or fails leaving nothing
#    behind (no /sys/module/bpq, /sys/class/bpq or /dev/bpq-control); the
#    runner checks the kernel log for splats. Then a plain insmod works.
#  * kmemleak: FAULTS_CYCLES insmod/open/write/read/close/rmmod cycles,
#    then scan, wait, scan: no leak reported that was not reported before
#    this script began. FAULTS_CYCLES (default 1,000;
#    ~0.5 s each on the KASAN kernel under TCG) of them, bounded by
#    FAULTS_CYCLE_SECONDS (default 360): fewer are done, and said, if that
#    runs out first.
#
# Skips (exit 4) at once on a kernel without failslab or kmemleak. The
# module is loaded again, with the runner's arguments, when this exits.

# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"
DBG=/sys/kernel/debug
FAILSLAB=$DBG/failslab
KMEMLEAK=$DBG/kmemleak
CYCLES=${FAULTS_CYCLES:-1000}
CYCLE_SECONDS=${FAULTS_CYCLE_SECONDS:-360}
INSMOD_ATTEMPTS=${FAULTS_INSMOD_ATTEMPTS:-60}
SAVED=/tmp/faults_test.saved.$$

start=$(date +%s)

# Remember a failslab attribute once, then set it.
fs_set() {
	grep -q "^$1 " "$SAVED" 2>/dev/null ||
		echo "$1 $(cat "$FAILSLAB/$1")" >>"$SAVED"
	echo "$2" >"$FAILSLAB/$1"
}

fs_restore() {
	local attr val

	[ -f "$SAVED" ] || return 0
	echo 0 >"$FAILSLAB/probability"
	while read -r attr val; do
		echo "$val" >"$FAILSLAB/$attr"
	done <"$SAVED"
	rm -f "$SAVED"
}

cleanup() {
	fs_restore
	load || echo "not ok: cannot load $MODULE again"
}
trap cleanup EXIT

# roundtrip, once /dev/bpqN is there: its node may lag the load.
roundtrip_wait() {
	wait_cdev "/dev/bpq$1" 100 20000
	roundtrip "$1"
}

# Nothing of the module may be left after a failed insmod.
check_no_trace() {
	loaded && { fail "$1: /sys/module/bpq after a failed insmod"; return; }
	[ -e /sys/class/bpq ] && fail "$1: /sys/class/bpq left behind"
	[ -e /sys/class/misc/bpq-control ] &&
		fail "$1: /sys/class/misc/bpq-control left behind"
	grep -q '^bpq ' /proc/modules && fail "$1: bpq in /proc/modules"
}

# Addresses of the objects kmemleak reports now.
leak_addrs() {
	sed -n 's/^unreferenced object \(0x[0-9a-f]*\).*/\1/p' "$KMEMLEAK" |
		sort
}

if [ ! -d "$FAILSLAB" ] || [ ! -e /proc/self/make-it-fail ] ||
	[ ! -e "$KMEMLEAK" ]; then
	echo "# SKIP: no failslab, make-it-fail or kmemleak (not a debug kernel)"
	exit "$KSFT_SKIP"
fi
if ! echo scan >"$KMEMLEAK" 2>/dev/null; then
	echo "# SKIP: kmemleak is off"
	exit "$KSFT_SKIP"
fi
if ! loaded || ! rmmod bpq; then
	echo "# SKIP: bpq is not loaded or cannot be unloaded"
	exit "$KSFT_SKIP"
fi
# Leaks found before this script are not its own: remember them (a second
# scan after kmemleak's minimum age, so that young objects are judged too).
sleep 6
echo scan >"$KMEMLEAK"
leak_addrs >/tmp/faults_test.leaks.before

# ---- insmod under failslab ----

# Faults in the module loader's own vmalloc()s print warn_alloc stack dumps
# ("vmalloc error: ... Call Trace"): the markers tell the runner's kernel-log
# gate that bare stack dumps are expected until the end marker (it still
# fails the run on BUG, WARNING, KASAN, lockdep and the like).
# FAULTS_INSMOD=0 leaves this part out.
if [ "${FAULTS_INSMOD:-1}" != 1 ]; then
	INSMOD_ATTEMPTS=0
	log "insmod under failslab skipped (FAULTS_INSMOD=0)"
fi
[ "$INSMOD_ATTEMPTS" -eq 0 ] ||
	echo "bpq-faults: injected allocation failures begin" >/dev/kmsg

# Report nothing (a stack dump would read as a splat), fail GFP_KERNEL
# allocations too, of the task with make-it-fail only.
fs_set verbose 0
fs_set ignore-gfp-wait N
fs_set task-filter Y
fs_set interval 1
fs_set probability 0

# One insmod with make-it-fail set: 0 loaded, 1 failed.
insmod_faulted() {
	# shellcheck disable=SC2086 # MODULE_ARGS is a list of words
	(echo 1 >/proc/self/make-it-fail && exec insmod "$MODULE" $MODULE_ARGS) \
		>/dev/null 2>&1
}

ins_ok=0
ins_failed=0
attempt=0
while [ "$attempt" -lt "$INSMOD_ATTEMPTS" ]; do
	attempt=$((attempt + 1))
	if [ "$attempt" -le $((INSMOD_ATTEMPTS / 2)) ]; then
		# the first allocation after `space` bytes fails, once
		fs_set space $(((attempt - 1) * (attempt - 1) * 256))
		fs_set times 1
		fs_set probability 100
	else
		# a few at random
		fs_set space 0
		fs_set times 3
		fs_set probability 20
	fi
	insmod_faulted
	echo 0 >"$FAILSLAB/probability"
	if loaded; then
		ins_ok=$((ins_ok + 1))
		roundtrip_wait 0 ||
			fail "insmod attempt $attempt: loaded but unusable"
		[ -c /dev/bpq-control ] ||
			fail "insmod attempt $attempt: no /dev/bpq-control"
		rmmod bpq || { fail "rmmod after attempt $attempt"; break; }
	else
		ins_failed=$((ins_failed + 1))
		check_no_trace "insmod attempt $attempt"
	fi
done
fs_restore
[ "$INSMOD_ATTEMPTS" -eq 0 ] ||
	echo "bpq-faults: injected allocation failures end" >/dev/kmsg
log "insmod under failslab: $attempt attempts, $ins_failed failed cleanly, $ins_ok loaded"
[ "$INSMOD_ATTEMPTS" -eq 0 ] || [ "$ins_failed" -gt 0 ] ||
	fail "no insmod failed: were faults injected?"
load || fail "plain insmod after the faulted ones"
for n in 0 1 2 3; do
	roundtrip_wait $n ||
		fail "/dev/bpq$n unusable after the faulted insmods"
done

# ---- kmemleak after load/open/close/unload cycles ----

rmmod bpq || fail "rmmod before the cycles"
cycles=0
cstart=$(date +%s)
cend=$((cstart + CYCLE_SECONDS))
while [ "$cycles" -lt "$CYCLES" ]; do
	if [ "$(date +%s)" -ge "$cend" ]; then
		log "cycles: time bound of ${CYCLE_SECONDS}s reached"
		break
	fi
	load || { fail "insmod in cycle $cycles"; break; }
	# open, a message in and out, close (dev node may lag the load)
	wait_cdev /dev/bpq0 100 10000
	{ printf 'c%d' "$cycles" >&3 && dd bs=16 count=1 <&3 >/dev/null 2>&1; } \
		3<>/dev/bpq0 || fail "cycle $cycles: round-trip"
	true 3</dev/bpq-control
	rmmod bpq || { fail "rmmod in cycle $cycles"; break; }
	cycles=$((cycles + 1))
done
csecs=$(($(date +%s) - cstart))
log "cycles: $cycles of $CYCLES insmod/open/write/read/close/rmmod in ${csecs}s"
[ "$cycles" -ge 1 ] || fail "no cycle completed"

# Objects are reported once unreferenced for 5 s: scan, wait, scan.
echo scan >"$KMEMLEAK"
sleep 6
echo scan >"$KMEMLEAK"
leak_addrs >/tmp/faults_test.leaks.after
# (busybox has no comm)
# (busybox grep -v -f EMPTY prints nothing: an empty list needs no filter)
if [ -s /tmp/faults_test.leaks.before ]; then
	grep -v -x -F -f /tmp/faults_test.leaks.before \
		/tmp/faults_test.leaks.after >/tmp/faults_test.leaks.new
else
	cp /tmp/faults_test.leaks.after /tmp/faults_test.leaks.new
fi
new=$(wc -l </tmp/faults_test.leaks.new)
if [ "$new" -ne 0 ]; then
	fail "kmemleak: $new new leaks after $cycles cycles and the faulted insmods"
	head -n 5 /tmp/faults_test.leaks.new | while read -r addr; do
			grep -A 20 "unreferenced object $addr" "$KMEMLEAK" |
				sed 's/^/#   /'
		done
else
	log "kmemleak: no new leak"
fi

load || fail "insmod at the end"
roundtrip_wait 0 || fail "/dev/bpq0 unusable at the end"

log "figures: $ins_failed insmods failed under failslab, $ins_ok loaded;" \
	"$cycles load/unload cycles; $new new leaks; $(($(date +%s) - start))s"
finish faults_test.sh
