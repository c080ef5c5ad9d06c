#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# The benchmark of "make bench" with tiny counts: every workload on every
# transport still runs and checks its sequence numbers and drop counts, so
# the benchmark cannot rot. It measures nothing worth reading. The
# instruction-counting pass (--icount) runs too, on this guest's ordinary
# clock: its code path, not its figures.
command -v bpq-bench >/dev/null || { echo "bpq-bench not on PATH"; exit 4; }
bpq-bench --quick -o /tmp/bench-smoke.json || exit
exec bpq-bench --quick --icount -o /tmp/bench-smoke-icount.json
