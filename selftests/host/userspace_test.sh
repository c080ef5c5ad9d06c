#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# libbpq and bpqctl parts that need no module: argument and YAML parsing,
# JSON and Prometheus output, the man pages.
set -e
cd "$(dirname "$0")/../.."
make -s -C userspace check
