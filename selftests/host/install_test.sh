#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# make install DESTDIR=TMP PREFIX=/usr lays out the tree a driver package
# would: the module in /lib/modules/RELEASE/extra with depmod's files
# listing it, libbpq (static, shared with its soname links), both headers,
# a libbpq.pc naming /usr, the man pages, bpqctl, the bash completion, the
# udev rule, the modprobe.d example and the Python package. A small program then compiles and
# links against the installed tree through the installed libbpq.pc, and
# make uninstall removes every file again.
#
# Exit status 0 passes, 4 skips (no kernel build directory), 1 fails.

set -u

KSFT_SKIP=4
root=$(cd "$(dirname "$0")/../.." && pwd)
dest=
failures=0

fail() {
	echo "not ok: $*"
	failures=$((failures + 1))
}

check() {	# check DESCRIPTION COMMAND...
	local desc=$1

	shift
	if "$@"; then echo "ok: $desc"; else fail "$desc"; fi
}

is_link_to() { [ -L "$1" ] && [ "$(readlink "$1")" = "$2" ]; }

main() {
	local kver lib inc pc

	cd "$root" || exit 1
	if [ -z "${KDIR:-}" ] && ! scripts/kdir.sh >/dev/null 2>&1; then
		echo "# SKIP: no kernel build directory"
		exit $KSFT_SKIP
	fi
	dest=$(mktemp -d) || exit 1
	trap 'rm -rf "$dest" "$dest.log"' EXIT

	if ! make -s install DESTDIR="$dest" PREFIX=/usr >"$dest.log" 2>&1; then
		sed 's/^/#   /' "$dest.log"
		rm -f "$dest.log"
		fail "make install DESTDIR=... PREFIX=/usr"
		exit 1
	fi
	rm -f "$dest.log"

	# the module, and depmod run on the tree: the release is the one
	# bpq.ko was built for
	kver=$(modinfo -F vermagic module/bpq.ko | cut -d' ' -f1)
	check "module in lib/modules/$kver/extra" \
		test -f "$dest/lib/modules/$kver/extra/bpq.ko"
	check "it is module/bpq.ko" cmp -s module/bpq.ko \
		"$dest/lib/modules/$kver/extra/bpq.ko"
	check "modules.dep lists extra/bpq.ko" \
		grep -qx 'extra/bpq.ko:' "$dest/lib/modules/$kver/modules.dep"

	# the library: static, shared, soname links
	lib=$dest/usr/lib
	check "libbpq.a" test -f "$lib/libbpq.a"
	check "libbpq.so.0.1" test -f "$lib/libbpq.so.0.1"
	check "libbpq.so.0 -> libbpq.so.0.1" \
		is_link_to "$lib/libbpq.so.0" libbpq.so.0.1
	check "libbpq.so -> libbpq.so.0" is_link_to "$lib/libbpq.so" libbpq.so.0
	check "soname libbpq.so.0" bash -c "readelf -d '$lib/libbpq.so.0.1' |
		grep -q 'SONAME.*\[libbpq.so.0\]'"

	# headers, pkg-config
	inc=$dest/usr/include
	check "<bpq.h>" cmp -s userspace/lib/bpq.h "$inc/bpq.h"
	check "<linux/bpq.h>" cmp -s include/uapi/linux/bpq.h \
		"$inc/linux/bpq.h"
	pc=$lib/pkgconfig/libbpq.pc
	check "libbpq.pc: prefix=/usr" grep -qx 'prefix=/usr' "$pc"
	check "libbpq.pc: libdir=/usr/lib" grep -qx 'libdir=/usr/lib' "$pc"
	check "libbpq.pc: version $(cat VERSION)" \
		grep -qx "Version: $(cat VERSION)" "$pc"

	# man pages, bpqctl, completion
	check "man3/bpq_open.3" test -f "$dest/usr/share/man/man3/bpq_open.3"
	check "man3/libbpq.3" test -f "$dest/usr/share/man/man3/libbpq.3"
	check "man4/bpq.4" test -f "$dest/usr/share/man/man4/bpq.4"
	check "man8/bpqctl.8" test -f "$dest/usr/share/man/man8/bpqctl.8"
	check "every man page" test "$(find userspace/man -name '*.[348]' |
		wc -l)" -eq "$(find "$dest/usr/share/man" -name '*.[348]' |
		wc -l)"
	check "sbin/bpqctl, executable" test -x "$dest/usr/sbin/bpqctl"
	check "bpqctl --version is VERSION" test \
		"$("$dest/usr/sbin/bpqctl" --version)" = "bpqctl $(cat VERSION)"
	check "sbin/bpqd, executable" test -x "$dest/usr/sbin/bpqd"
	check "bpqd --version is VERSION" test \
		"$("$dest/usr/sbin/bpqd" --version)" = "bpqd $(cat VERSION)"
	check "man8/bpqd.8" test -f "$dest/usr/share/man/man8/bpqd.8"
	check "bpqd.service runs /usr/sbin/bpqd" grep -qx \
		'ExecStart=/usr/sbin/bpqd -c /etc/bpq/bpq.yaml' \
		"$dest/lib/systemd/system/bpqd.service"
	check "bash completion" test -f \
		"$dest/usr/share/bash-completion/completions/bpqctl"

	# udev, modprobe.d
	check "udev rule: queues and control 0660 group bpq" bash -c "
		grep -q 'KERNEL==\"bpq\[0-9\]\*\".*MODE=\"0660\", GROUP=\"bpq\"' \
			'$dest/lib/udev/rules.d/60-bpq.rules' &&
		grep -q 'KERNEL==\"bpq-control\".*MODE=\"0660\", GROUP=\"bpq\"' \
			'$dest/lib/udev/rules.d/60-bpq.rules'"
	# shellcheck disable=SC2016 # udev's $attr, literally
	check "udev rule: /dev/bpq/by-name links" grep -q \
		'SYMLINK+="bpq/by-name/$attr{name}"' \
		"$dest/lib/udev/rules.d/60-bpq.rules"
	check "modprobe.d example, commented out" \
		grep -q '^#options bpq nr_queues=' "$dest/etc/modprobe.d/bpq.conf"

	python_test

	link_test

	if make -s uninstall DESTDIR="$dest" PREFIX=/usr >/dev/null 2>&1; then
		check "make uninstall leaves no file but depmod's" test -z \
			"$(find "$dest" -type f -o -type l | grep -v '/modules\.')"
	else
		fail "make uninstall"
	fi

	echo "# $failures failed"
	[ "$failures" -eq 0 ]
}

# The Python package in Debian's dist-packages of /usr, with the metadata
# pip reads, importable by python3 with the installed libbpq.
python_test() {
	local dir=$dest/usr/lib/python3/dist-packages

	if ! command -v python3 >/dev/null; then
		echo "# no python3: the package is not installed"
		return
	fi
	check "python3: every module of the package" test \
		"$(cd userspace/python/bpq && ls ./*.py py.typed)" = \
		"$(cd "$dir/bpq" && ls ./*.py py.typed)"
	check "python3: pip sees bpq $(cat VERSION)" bash -c \
		"python3 -m pip list --path '$dir' 2>/dev/null |
			grep -qE '^bpq +$(cat VERSION)\$'"
	check "python3: import bpq, with the installed libbpq.so.0" \
		test "$(cd / && PYTHONPATH=$dir \
			BPQ_LIBBPQ=$dest/usr/lib/libbpq.so.0 python3 -c \
			'import bpq, bpq.asyncio, bpq.pattern
print(bpq.strategy_name(bpq.Strategy.CREDIT), bpq.__file__)')" = \
		"credit $dir/bpq/__init__.py"
}

# A program built against the installed tree alone: headers and flags from
# its libbpq.pc, linked against its libbpq.so and, separately, libbpq.a.
link_test() {
	local flags prog=$dest/tmp/prog

	export PKG_CONFIG_SYSROOT_DIR=$dest
	export PKG_CONFIG_LIBDIR=$dest/usr/lib/pkgconfig
	flags=$(pkg-config --cflags --libs libbpq 2>&1 | sed 's/ *$//')
	check "pkg-config: -I and -L into DESTDIR (got: $flags)" \
		test "$flags" = "-I$dest/usr/include -L$dest/usr/lib -lbpq"
	mkdir -p "$dest/tmp"
	cat >"$prog.c" <<'PROG'
#include <stdio.h>
#include <bpq.h>

int main(void)
{
	struct bpq_create c = { .size = sizeof(c) };

	/* the UAPI header through <bpq.h>, and a library call */
	printf("%s %zu\n", bpq_strategy_name(BPQ_STRATEGY_DROP_OLDEST),
	       sizeof(c));
	return bpq_strategy_parse("credit") == BPQ_STRATEGY_CREDIT ? 0 : 1;
}
PROG
	# shellcheck disable=SC2086 # $flags is a list of words
	check "compile and link against libbpq.so" \
		cc -Wall -Werror -o "$prog" "$prog.c" $flags
	check "it needs libbpq.so.0" bash -c \
		"readelf -d '$prog' | grep -q 'NEEDED.*\[libbpq.so.0\]'"
	check "it runs" test "$(LD_LIBRARY_PATH=$dest/usr/lib "$prog")" = \
		"drop-oldest 48"
	# shellcheck disable=SC2046
	check "compile and link against libbpq.a" \
		cc -Wall -Werror -o "$prog.static" "$prog.c" \
		$(pkg-config --cflags libbpq) "$dest/usr/lib/libbpq.a"
	check "that one runs without the library" test \
		"$("$prog.static")" = "drop-oldest 48"
	rm -rf "$dest/tmp"
	unset PKG_CONFIG_SYSROOT_DIR PKG_CONFIG_LIBDIR
}

main "$@"
