#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The Python package userspace/python, as far as it goes without the
# module: the ctypes structures against the C layout, the errors, the
# names through the build tree's libbpq.so.0, mypy --strict (when mypy is
# installed), and an offline pip install into a scratch directory that
# is then imported from there.
#
# Exit status 0 passes, 4 skips (no python3 at all), 1 fails.

set -u

KSFT_SKIP=4
root=$(cd "$(dirname "$0")/../.." && pwd)
tmp=
status=0

# Debian's python3, not whatever a version manager puts first in PATH
find_python() {
	if [ -x /usr/bin/python3 ]; then
		echo /usr/bin/python3
	else
		command -v python3
	fi
}

# pip install --target, offline, then import bpq from there alone. From
# a copy: setuptools leaves build/ and bpq.egg-info where it builds.
pip_smoke() {
	cp -r "$root/userspace/python" "$tmp/src" &&
		"$python" -m pip install -q --no-index --no-build-isolation \
		--no-deps --disable-pip-version-check --target "$tmp/site" \
		"$tmp/src" >"$tmp/pip.log" 2>&1 ||
		{ sed 's/^/#   /' "$tmp/pip.log"; return 1; }
	(cd "$tmp" && PYTHONPATH="$tmp/site" \
		BPQ_LIBBPQ="$root/userspace/lib/libbpq.so.0" "$python" -c '
import sys, bpq
assert bpq.__file__.startswith(sys.argv[1]), bpq.__file__
assert bpq.strategy_name(bpq.Strategy.CREDIT) == "credit"
' "$tmp/site/") &&
		[ -f "$tmp/site/bpq/py.typed" ]
}

main() {
	cd "$root" || exit 1
	python=$(find_python) || { echo "# SKIP: no python3"; exit $KSFT_SKIP; }
	echo "# $python: $("$python" --version 2>&1)"

	# libbpq.so.0, as userspace_test.sh gets it: the userspace Makefile
	if ! make -s -C userspace lib/libbpq.so.0.1; then
		echo "not ok: make -C userspace (libbpq.so.0)"
		exit 1
	fi
	tmp=$(mktemp -d) || exit 1
	trap 'rm -rf "$tmp"' EXIT

	# unittest runs test_layout (cc and include/uapi) and mypy, if any
	"$python" -m mypy --version >/dev/null 2>&1 ||
		echo "# mypy missing: the type check is skipped"
	if BPQ_LIBBPQ="$root/userspace/lib/libbpq.so.0" \
		"$python" -m unittest discover -s userspace/python/tests; then
		echo "ok: python3 -m unittest (userspace/python/tests)"
	else
		echo "not ok: python3 -m unittest (userspace/python/tests)"
		status=1
	fi
	if ! "$python" -m pip --version >/dev/null 2>&1; then
		echo "# no pip for $python (python3-pip): install test skipped"
	elif pip_smoke; then
		echo "ok: pip install --target, offline, and import"
	else
		echo "not ok: pip install --target, offline, and import"
		status=1
	fi
	exit $status
}

main "$@"
