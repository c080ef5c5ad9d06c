#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Boot a kernel in QEMU with bpq.ko and run tests in it.
#
# The guest (scripts/vm-init.sh as /init) loads the module, runs each test,
# unloads the module and checks the taint flags. It reports one line per
# step on its second serial port, which lands in OUT/result.log:
#   ok NAME | ok NAME # SKIP | not ok NAME (reason)
# and BPQ-VM-DONE once it is finished. Here those lines are printed and
# counted; a missing BPQ-VM-DONE (panic, hang, timeout) counts as one more
# failure. The last line printed is "N passed, M failed"; the counts also go
# to the summary file as "N M". Exit status is 0 only if nothing failed.
# What a test writes to the third serial port (/dev/ttyS2) lands as it is
# in OUT/data.log, for the host to read afterwards (the demo's samples).

set -eu

root=$(cd "$(dirname "$0")/.." && pwd)

usage() {
	cat <<EOF
Usage: scripts/vm.sh [options]
  --kernel PATH       kernel image (default: scripts/kimage.sh)
  --module PATH       module to load (default: module/bpq.ko)
  --module-args ARGS  parameters for insmod
  --tests "P1 P2..."  host programs or scripts to copy in and run, in order
  --script FILE       run this one guest script instead of tests (demo)
  --bin "P1 P2..."    extra host programs to copy into the guest's PATH
  --python            also the host's python3 (Debian's /usr/bin/python3),
                      what it needs of its libraries and standard library,
                      the package userspace/python/bpq with libbpq.so.0 and
                      the suite userspace/python/tests/guest (/tests/python)
                      and examples/pipeline.py (bpq-pipeline.py)
  --shell             interactive shell on the console after insmod
  --append "ARGS"     extra kernel command line
  --qemu "ARGS"       extra QEMU arguments, split at spaces (the cluster
                      test's serial ports: a fourth -serial is ttyS3)
  --timeout SECS      whole run, host side (default 600)
  --test-timeout SECS each test, guest side (default 300, 0 for none)
  --mem MB            guest memory (default 1024)
  --smp N             guest CPUs (default 2)
  --icount            count instructions: one vCPU, single-threaded TCG,
                      -icount shift=0,sleep=off (one guest nanosecond is
                      one executed instruction; overrides --smp)
  --out DIR           work directory (default build/vm)
  --summary FILE      where to write "passed failed" (default OUT/summary)
  --quiet             console only to OUT/console.log (tail on failure)
  --debug-gates       debug kernel: also report kmemleak (cleared before
                      insmod, scanned after rmmod) and lockdep (debug_locks)
EOF
	exit "${1:-0}"
}

die() {
	echo "vm.sh: $*" >&2
	exit 2
}

kernel=
module=$root/module/bpq.ko
module_args=
tests=
script=
bins=
python=0
shell=0
append=
qemu_args=
timeout=600
test_timeout=300
mem=1024
smp=2
icount=0
out=$root/build/vm
summary=
quiet=0
debug_gates=0

parse_args() {
	while [ $# -gt 0 ]; do
		case $1 in
		--kernel) kernel=$2; shift ;;
		--module) module=$2; shift ;;
		--module-args) module_args=$2; shift ;;
		--tests) tests=$2; shift ;;
		--script) script=$2; shift ;;
		--bin) bins=$2; shift ;;
		--python) python=1 ;;
		--shell) shell=1 ;;
		--append) append=$2; shift ;;
		--qemu) qemu_args=$2; shift ;;
		--timeout) timeout=$2; shift ;;
		--test-timeout) test_timeout=$2; shift ;;
		--mem) mem=$2; shift ;;
		--smp) smp=$2; shift ;;
		--icount) icount=1 ;;
		--out) out=$2; shift ;;
		--summary) summary=$2; shift ;;
		--quiet) quiet=1 ;;
		--debug-gates) debug_gates=1 ;;
		-h | --help) usage ;;
		*) echo "vm.sh: unknown option $1" >&2; usage 2 ;;
		esac
		shift
	done
	if [ -n "$script" ]; then
		tests=$script
	fi
	if [ -z "$kernel" ]; then
		kernel=$("$root/scripts/kimage.sh")
	fi
}

is_elf() {
	[ "$(head -c 4 "$1" | tr -d '\000')" = "$(printf '\177ELF')" ]
}

# What readelf tells about an ELF file; ldd is not used because it runs the
# program's loader, which fails for 32-bit programs on a 64-bit-only host.
elf_interpreter() {
	readelf -l "$1" | sed -n 's/.*program interpreter: \(.*\)\]$/\1/p'
}

elf_needed() {
	readelf -d "$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]$/\1/p'
}

# Directories the loader searches for a library of FILE: its RUNPATH or
# RPATH, then the system directories of its word size.
elf_lib_dirs() {
	local file=$1 origin

	origin=$(cd "$(dirname "$file")" && pwd)
	readelf -d "$file" | sed -n 's/.*(R.*PATH).*\[\(.*\)\]$/\1/p' |
		tr : '\n' | sed "s|\\\$ORIGIN|$origin|; s|\\\${ORIGIN}|$origin|"
	if readelf -h "$file" | grep -q 'Class: *ELF32'; then
		printf '%s\n' /lib32 /usr/lib32 /lib/i386-linux-gnu \
			/usr/lib/i386-linux-gnu
	else
		printf '%s\n' /lib/x86_64-linux-gnu /usr/lib/x86_64-linux-gnu \
			/lib64 /usr/lib64
	fi
}

find_lib() {
	local file=$1 name=$2 dir

	for dir in $(elf_lib_dirs "$file"); do
		if [ -f "$dir/$name" ]; then
			echo "$dir/$name"
			return 0
		fi
	done
	die "$file needs $name, which was not found"
}

# Where a library goes in the guest: system libraries where they are on the
# host, the project's own (found through RUNPATH) in /usr/local/lib, which is
# in the guest's LD_LIBRARY_PATH.
guest_lib_path() {
	case $1 in
	/lib/* | /lib32/* | /lib64/* | /usr/lib/* | /usr/lib32/* | /usr/lib64/*)
		echo "$1" ;;
	*)
		echo "/usr/local/lib/$(basename "$1")" ;;
	esac
}

# Copy the loader and the shared libraries an ELF program needs, and what
# those need, into DEST.
copy_libs() {
	local file=$1 dest=$2 interp name lib guest

	is_elf "$file" || return 0
	interp=$(elf_interpreter "$file")
	if [ -n "$interp" ] && [ ! -e "$dest$interp" ]; then
		cp -L --parents "$interp" "$dest"
	fi
	for name in $(elf_needed "$file"); do
		lib=$(find_lib "$file" "$name")
		guest=$(guest_lib_path "$lib")
		[ -e "$dest$guest" ] && continue
		install -D -m 755 "$lib" "$dest$guest"
		copy_libs "$lib" "$dest"
	done
}

# The guest's /init links the other applets with "busybox --install -s".
install_busybox() {
	local dest=$1

	mkdir -p "$dest"/{bin,sbin,usr/bin,usr/sbin}
	install -m 755 "$(command -v busybox)" "$dest/bin/busybox"
	ln -s busybox "$dest/bin/sh"
}

install_programs() {
	local dest=$1 dir=$2 list=$3 prog name

	mkdir -p "$dest$dir"
	for prog in $list; do
		[ -f "$prog" ] || die "$prog: no such file"
		name=$(basename "$prog")
		[ -e "$dest$dir/$name" ] && die "$name given twice"
		install -m 755 "$prog" "$dest$dir/$name"
		copy_libs "$prog" "$dest"
	done
}

write_config() {
	local dest=$1 prog mode=tests

	if [ "$shell" = 1 ]; then
		mode=shell
	fi
	cat >"$dest/etc/bpq-vm.conf" <<EOF
MODE=$mode
TEST_TIMEOUT=$test_timeout
MODULE_ARGS="$module_args"
DEBUG_GATES=$debug_gates
EOF
	if [ "$python" = 1 ]; then
		cat >>"$dest/etc/bpq-vm.conf" <<EOF
export PYTHONPATH=$GUEST_PYTHONPATH
EOF
	fi
	: >"$dest/tests/list"
	for prog in $tests; do
		basename "$prog" >>"$dest/tests/list"
	done
}

# --python: where the package goes in the guest (libbpq.so.0 goes to
# /usr/local/lib, already in LD_LIBRARY_PATH)
GUEST_PYTHONPATH=/usr/local/lib/bpq-python
# Of the standard library, what no test imports: other tests, the IDE and
# Tk, pip's wheels, 2to3, the static library, what only builds things, and
# the web's and mail's formats and protocols.
PYTHON_STDLIB_EXCLUDE="test idlelib tkinter turtledemo ensurepip lib2to3
pydoc_data distutils venv sqlite3 curses dbm config-3.*-* site-packages
dist-packages turtle.py email html http xml xmlrpc wsgiref"
# Extension modules left out: test modules, and those linking libraries
# (Tk, curses, readline, OpenSSL, sqlite, dbm) the tests have no use for.
PYTHON_DYNLOAD_EXCLUDE="_test* _ctypes_test* _xxtestfuzz* xxlimited*
_xxsubinterpreters* _tkinter* _curses* readline* _ssl* _hashlib*
_sqlite3* _dbm* _gdbm* nis* ossaudiodev* audioop* _crypt*"

# The host's python3 and what it needs, the bpq package, libbpq.so.0, the
# guest suite and the Python example (bpq-pipeline.py).
install_python() {
	local dest=$1 exe stdlib pat so
	local excludes=()

	exe=$(readlink -f /usr/bin/python3)
	[ -x "$exe" ] || die "--python: no /usr/bin/python3"
	stdlib=/usr/lib/$(basename "$exe")
	[ -f "$stdlib/os.py" ] || die "--python: no standard library $stdlib"
	[ -f "$root/userspace/lib/libbpq.so.0" ] ||
		die "--python: no userspace/lib/libbpq.so.0 (make -C userspace)"

	install -D -m 755 "$exe" "$dest$exe"
	ln -sf "$(basename "$exe")" "$dest/usr/bin/python3"
	copy_libs "$exe" "$dest"

	for pat in $PYTHON_STDLIB_EXCLUDE; do
		excludes+=(--exclude="$(basename "$stdlib")/$pat")
	done
	for pat in $PYTHON_DYNLOAD_EXCLUDE; do
		excludes+=(--exclude="lib-dynload/$pat")
	done
	mkdir -p "$dest/usr/lib"
	tar -C "$(dirname "$stdlib")" "${excludes[@]}" \
		--exclude='*/test' --exclude='*/tests' --exclude='*/idle_test' \
		-cf - "$(basename "$stdlib")" | tar -C "$dest/usr/lib" -xf -
	for so in "$dest$stdlib"/lib-dynload/*.so; do
		copy_libs "$so" "$dest"
	done
	# the compiled modules whose source was left out
	find "$dest$stdlib" -path '*/__pycache__/*.pyc' | while read -r pyc; do
		pyc_source=${pyc%/__pycache__/*}/$(basename "${pyc%%.*}").py
		[ -e "$pyc_source" ] || rm -f "$pyc"
	done

	install -D -m 755 "$root/userspace/lib/libbpq.so.0" \
		"$dest/usr/local/lib/libbpq.so.0"
	copy_libs "$root/userspace/lib/libbpq.so.0" "$dest"
	mkdir -p "$dest$GUEST_PYTHONPATH" "$dest/tests/python"
	tar -C "$root/userspace/python" --exclude=__pycache__ -cf - bpq |
		tar -C "$dest$GUEST_PYTHONPATH" -xf -
	tar -C "$root/userspace/python/tests/guest" --exclude=__pycache__ \
		-cf - . | tar -C "$dest/tests/python" -xf -
	install -m 755 "$root/userspace/examples/pipeline.py" \
		"$dest/usr/bin/bpq-pipeline.py"
}

build_initramfs() {
	local dest=$out/root

	[ -f "$module" ] || die "$module: no such file (run make)"
	rm -rf "$dest"
	mkdir -p "$dest"/{dev,etc,proc,root,sys,tmp}
	if [ "$(id -u)" -eq 0 ]; then
		mknod -m 600 "$dest/dev/console" c 5 1
	fi
	install_busybox "$dest"
	install -m 755 "$root/scripts/vm-init.sh" "$dest/init"
	install -m 644 "$module" "$dest/bpq.ko"
	install_programs "$dest" /tests "$tests"
	# sourced by the guest scripts ("$(dirname "$0")/lib.sh"), not run
	install -m 644 "$root/selftests/lib.sh" "$dest/tests/lib.sh"
	install_programs "$dest" /usr/local/bin "$bins"
	if [ "$python" = 1 ]; then
		install_python "$dest"
	fi
	if [ -f /etc/ld.so.cache ]; then
		cp /etc/ld.so.cache "$dest/etc/"
	fi
	write_config "$dest"
	(cd "$dest" && find . | cpio -o -H newc -R 0:0 --quiet) |
		gzip -1 >"$out/initramfs.cpio.gz"
}

run_qemu() {
	local cmdline result_port=file:$out/result.log accel=tcg,thread=multi
	local data_port=file:$out/data.log
	local timing=()

	cmdline="console=ttyS0 panic=-1 oops=panic panic_on_warn=1"
	cmdline="$cmdline softlockup_panic=1 hung_task_panic=1"
	cmdline="$cmdline quiet loglevel=4 printk.devkmsg=on $append"
	if [ "$icount" = 1 ]; then
		# icount needs one vCPU thread; sleep=off: an idle guest's
		# clock jumps to its next timer instead of waiting in real time
		accel=tcg,thread=single
		smp=1
		timing=(-icount "shift=0,sleep=off")
	fi
	set -- qemu-system-x86_64 -accel "$accel" "${timing[@]}" -cpu max \
		-smp "$smp" -m "$mem" -nodefaults -display none -no-reboot \
		-kernel "$kernel" -initrd "$out/initramfs.cpio.gz" \
		-append "$cmdline" -serial mon:stdio -serial "$result_port" \
		-serial "$data_port"
	# shellcheck disable=SC2206 # --qemu's words, as given
	[ -z "$qemu_args" ] || set -- "$@" $qemu_args
	if [ "$shell" = 1 ]; then
		"$@"
	else
		timeout -k 10 "$timeout" "$@" </dev/null 2>&1
	fi
}

# Print the guest's verdicts and the final count; return non-zero on failure.
report_results() {
	local qemu_rc=$1 results=$out/results passed failed

	sed 's/\r$//' "$out/result.log" >"$results" 2>/dev/null || : >"$results"
	if ! grep -q -x BPQ-VM-DONE "$results"; then
		if [ "$qemu_rc" -eq 124 ] || [ "$qemu_rc" -eq 137 ]; then
			echo "vm.sh: QEMU killed after ${timeout}s"
		fi
		grep '^# ---- .* ----$' "$out/console.log" | tail -n 1 |
			sed 's/^# ---- \(.*\) ----$/vm.sh: last test started: \1/'
		echo "not ok vm (no completion marker: panic/hang/timeout)" \
			>>"$results"
	fi
	passed=$(grep -c '^ok ' "$results" || true)
	failed=$(grep -c '^not ok ' "$results" || true)
	if [ "$quiet" = 1 ] && [ "$failed" -gt 0 ]; then
		echo "vm.sh: last lines of $out/console.log:"
		tail -n 60 "$out/console.log"
	fi
	# what the suites moved and injected ("# figures: ..." lines), by test
	awk '/^# ---- .* ----$/ { name = $3 }
	     sub(/^# figures: /, "") { print "# figures: " name ": " $0 }' \
		"$out/console.log"
	grep -v -x BPQ-VM-DONE "$results"
	echo "$passed $failed" >"$summary"
	echo "$passed passed, $failed failed"
	[ "$failed" -eq 0 ]
}

main() {
	local start qemu_rc

	parse_args "$@"
	mkdir -p "$out"
	out=$(cd "$out" && pwd)
	summary=${summary:-$out/summary}
	mkdir -p "$(dirname "$summary")"
	rm -f "$out/result.log" "$out/console.log" "$out/results" \
		"$out/data.log" "$summary"
	build_initramfs
	if [ "$shell" = 1 ]; then
		run_qemu
		return
	fi

	start=$(date +%s)
	set +e
	if [ "$quiet" = 1 ]; then
		run_qemu | sed 's/\r$//' >"$out/console.log"
	else
		run_qemu | sed -u 's/\r$//' | tee "$out/console.log"
	fi
	qemu_rc=${PIPESTATUS[0]}
	set -e
	echo "vm.sh: guest ran for $(($(date +%s) - start))s"
	report_results "$qemu_rc"
}

main "$@"
