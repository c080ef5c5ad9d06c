#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Install the Debian packages bpq needs to build, lint and test, but only
# those that are missing. Silent when nothing is missing.
#
# Usage: scripts/deps.sh   (as root, or with sudo available)

set -eu

packages="
make
gcc
g++
libc6-dev
perl
xz-utils
linux-headers-amd64
linux-image-amd64
linux-headers-6.12.107+deb12-amd64
linux-image-6.12.107+deb12-amd64
linux-source-6.1
qemu-system-x86
busybox-static
cpio
sparse
coccinelle
gcc-multilib
libelf-dev
bc
flex
bison
dwarves
kmod
python3
python3-pip
python3-setuptools
mypy
libyaml-dev
libhiredis-dev
redis-server
socat
liburing-dev
pkg-config
gnuplot-nox
prometheus
"

is_installed() {
	local status

	status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null) ||
		return 1
	case $status in
	ii*) return 0 ;;
	*) return 1 ;;
	esac
}

missing_packages() {
	local p

	for p in $packages; do
		is_installed "$p" || echo "$p"
	done
}

as_root() {
	if [ "$(id -u)" -eq 0 ]; then
		"$@"
	else
		sudo "$@"
	fi
}

main() {
	local missing

	missing=$(missing_packages)
	[ -n "$missing" ] || return 0
	# shellcheck disable=SC2086 # $missing is a list of names
	echo "deps.sh: installing:" $missing
	as_root apt-get update -q
	# shellcheck disable=SC2086
	as_root env DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -q --no-install-recommends $missing
}

main "$@"
