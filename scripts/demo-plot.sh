#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The host's half of "make demo": draw the samples the guest took during
# each overload run (scripts/demo.sh, bpq-sample) in one PNG with gnuplot.
#
# Usage: scripts/demo-plot.sh DATA OUT
#   DATA  what the guest wrote to its data port (vm.sh's OUT/data.log):
#         optionally a line "BPQ-DEMO-TITLE TEXT", then per run a line
#         "BPQ-DEMO-RUN NAME TITLE", bpq-sample's output and
#         "BPQ-DEMO-RUN-END NAME"
#   OUT   directory for samples/NAME.dat, overload.gp and overload.png
#
# One row per run, in the guest's order, and one column per measure:
# depth, messages admitted and dropped per interval, sojourn, and the time
# writers waited to be admitted; one line per queue of the run. Each
# column has one y range for all its rows and every panel the same time
# axis, so that the rows compare at a glance. Prints the PNG's path last.

set -eu

die() {
	echo "demo-plot.sh: $*" >&2
	exit 1
}

[ $# -eq 2 ] || die "usage: scripts/demo-plot.sh DATA OUT"
data=$1
out=$2
[ -s "$data" ] || die "$data: no samples came back from the guest"
command -v gnuplot >/dev/null ||
	die "no gnuplot (scripts/deps.sh installs gnuplot-nox)"

samples=$out/samples
png=$out/overload.png
gp=$out/overload.gp
rm -rf "$samples"
mkdir -p "$samples"

# Split DATA (a serial port's: CR LF) into one file per run, and
# runs.txt: "NAME TITLE", one line per run in order.
tr -d '\r' <"$data" | awk -v dir="$samples" '
	$1 == "BPQ-DEMO-TITLE" { sub(/^[^ ]+ /, ""); print > (dir "/title.txt") }
	$1 == "BPQ-DEMO-RUN" {
		file = dir "/" $2 ".dat"
		line = $0
		sub(/^[^ ]+ /, "", line)
		print line > (dir "/runs.txt")
		next
	}
	$1 == "BPQ-DEMO-RUN-END" { close(file); file = ""; next }
	file != "" { print > file }
'
[ -s "$samples/runs.txt" ] || die "$data: no run in it"

# col_max N: the largest value of column N over every run
col_max() {
	awk -v c="$1" '!/^#/ && NF && $c != "-" && $c + 0 > m { m = $c + 0 }
		END { print m + 0 }' "$samples"/*.dat
}

# range_top VALUE MIN: the top of a y range, at least MIN, with room
# above VALUE for a key
range_top() {
	awk -v v="$1" -v min="$2" 'BEGIN { v *= 1.3; print (v < min ? min : v) }'
}

tmax=$(col_max 1)
depth_top=$(range_top "$(col_max 2)" 4)
admitted_top=$(range_top "$(col_max 3)" 4)
dropped_top=$(range_top "$(col_max 4)" 4)
sojourn_top=$(range_top "$(printf '%s\n' "$(col_max 6)" "$(col_max 8)" |
	sort -g | tail -n 1)" 10)
wait_top=$(range_top "$(col_max 9)" 10)
nruns=$(wc -l <"$samples/runs.txt")
title="bpq under overload, one row per run"
if [ -s "$samples/title.txt" ]; then
	title=$(cat "$samples/title.txt")
fi
# The sampling interval: the median step between samples, to the ms
interval_ms=$(awk '/^#/ || !NF { prev = ""; next }
	prev != "" { print int(($1 - prev) * 1000 + 0.5) } { prev = $1 }' \
	"$samples"/*.dat | sort -n | awk '{ v[NR] = $1 }
	END { print NR ? v[int((NR + 1) / 2)] : 50 }')
interval_s=$(awk -v ms="$interval_ms" 'BEGIN { print ms / 1000 }')

if gnuplot -e 'set terminal pngcairo' 2>/dev/null; then
	terminal=pngcairo
else
	terminal=png
fi
# 300 pixels a row, 110 above them for the titles, 50 below for the axis
width=2000
height=$((300 * nruns + 160))
layout=$(awk -v h="$height" 'BEGIN {
	printf "margins 0.075,0.99,%.4f,%.4f spacing 0.03,%.4f",
		50 / h, 1 - 110 / h, 30 / h }')

# The run being drawn: its samples, and a label and a capacity per queue.
file=
labels=()
capacities=()

# panel ROW TITLE TOP: the settings of the next panel (titles on the top
# row only)
panel() {
	if [ "$1" -eq 1 ]; then
		echo "set title \"$2\" font \",11\""
	else
		echo "unset title"
	fi
	echo "set yrange [0:$3]"
}

# series USING STYLE: a plot of one series per queue of the run
series() {
	local using=$1 style=$2 sep="" i

	printf 'plot '
	for ((i = 0; i < ${#labels[@]}; i++)); do
		printf '%s"%s" index %d using %s with %s lc %d lw 2 title "%s"' \
			"$sep" "$file" "$i" "$using" "$style" "$((i + 1))" \
			"${labels[i]}"
		sep=$', \\\n\t'
	done
	echo
}

# sojourn: the age of the oldest queued message at each sample, a line;
# over each interval a band, the latency_hist bucket of the median sojourn
# of the messages delivered in it
sojourn() {
	local sep="" i

	printf 'plot '
	for ((i = 0; i < ${#labels[@]}; i++)); do
		# shellcheck disable=SC2016 # gnuplot's $1, $7, $8: columns
		printf '%s"%s" index %d using ($1-%s/2):(($7+$8)/2):($1-%s):1:7:8 with boxxyerror fs solid noborder lc %d notitle' \
			"$sep" "$file" "$i" "$interval_s" "$interval_s" \
			"$((i + 3))"
		printf ', \\\n\t"%s" index %d using 1:6 with lines lc %d lw 2 title "%s"' \
			"$file" "$i" "$((i + 1))" "${labels[i]}"
		sep=$', \\\n\t'
	done
	echo
}

# plot_run ROW NAME TITLE: the gnuplot commands for one run's row
plot_run() {
	local row=$1 name=$2 run_title=$3 queue strategy capacity i

	file=$samples/$name.dat
	labels=()
	capacities=()
	while read -r _ _ queue _ _ strategy _ capacity; do
		labels+=("$queue ($strategy)")
		capacities+=("$capacity")
	done < <(grep '^# queue ' "$file")
	[ "${#labels[@]}" -gt 0 ] || die "$file: no queue in it"

	echo "# ---- $name: $run_title"
	# a key in the row's first panel, if it has more than one queue
	if [ "${#labels[@]}" -gt 1 ]; then
		echo "set key top right font \",10\" samplen 2"
	else
		echo "unset key"
	fi
	if [ "$row" -eq "$nruns" ]; then
		echo 'set xlabel "time (s)"'
	else
		echo 'unset xlabel'
	fi
	# the run's title, its first comma a line break
	echo "set ylabel \"${run_title/, /\\n}\" font \",12\""
	panel "$row" "depth (messages; dashed: capacity)" "$depth_top"
	for capacity in "${capacities[@]}"; do
		if awk -v c="$capacity" -v t="$depth_top" \
			'BEGIN { exit !(c + 0 > 0 && c + 0 <= t) }'; then
			echo "set arrow from graph 0, first $capacity to graph 1, first $capacity nohead dt 2 lc rgb \"gray40\""
		fi
	done
	series 1:2 lines
	echo "unset arrow"
	echo "unset ylabel"
	echo "unset key"
	panel "$row" "admitted per $interval_ms ms" "$admitted_top"
	series 1:3 fsteps
	panel "$row" "dropped per $interval_ms ms (refused + evicted)" \
		"$dropped_top"
	series 1:4 fsteps
	panel "$row" "sojourn (ms)" "$sojourn_top"
	sojourn
	panel "$row" "writers waiting (% of the interval)" "$wait_top"
	series 1:9 fsteps
}

{
	cat <<EOF
# generated by scripts/demo-plot.sh
set terminal $terminal noenhanced size $width,$height font "sans,10"
set output "$png"
set datafile missing "-"
set grid lc rgb "gray85"
set xrange [0:$tmax]
set ytics nomirror
set linetype 1 lc rgb "#1f5fbf"
set linetype 2 lc rgb "#e07000"
set linetype 3 lc rgb "#b4cbee"
set linetype 4 lc rgb "#f6cd9c"
set multiplot layout $nruns,5 title "$title\\nsojourn: the line is the age of the oldest queued message at each sample (head_age_us); the band, the latency_hist bucket (a factor of 2 wide) holding the median sojourn of the messages delivered in the interval" font ",13" $layout
EOF
	row=0
	while read -r name run_title; do
		row=$((row + 1))
		plot_run "$row" "$name" "$run_title"
	done <"$samples/runs.txt"
	echo "unset multiplot"
} >"$gp"

gnuplot "$gp"
echo "demo: the overload runs, plotted: $png"
