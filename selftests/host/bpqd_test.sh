#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# bpqd against Redis on this machine, without the module (its queues are
# then "not on this machine"; selftests/cluster/ has the two guests): bad
# files (FILE:LINE, exit 2, nothing done), two nodes joining a real
# redis-server on a UNIX socket, a node killed and dropping out when its
# keys expire, Redis stopped (both fail open after the grace period) and
# started again, a fake server speaking broken RESP or closing mid-reply
# (logged, retried, no crash), bpqctl cluster.
#
# Exit status 0 passes, 4 skips (no redis-server), 1 fails.

set -u

KSFT_SKIP=4
root=$(cd "$(dirname "$0")/../.." && pwd)
bpqd=$root/userspace/bpqd/bpqd
bpqctl=$root/userspace/bpqctl/bpqctl
failures=0
tmp=
pids=()

ok() {	# ok DESCRIPTION COMMAND...
	local desc=$1

	shift
	if "$@"; then
		echo "ok: $desc"
	else
		echo "not ok: $desc"
		failures=$((failures + 1))
	fi
}

cleanup() {
	local p

	for p in "${pids[@]}"; do
		kill "$p" 2>/dev/null
	done
	wait 2>/dev/null
	[ -n "$tmp" ] && rm -rf "$tmp"
}

# wait_for SECONDS COMMAND...: until COMMAND succeeds
wait_for() {
	local end=$((SECONDS + $1))

	shift
	until "$@"; do
		[ "$SECONDS" -ge "$end" ] && return 1
		sleep 0.1
	done
}

start_redis() {
	redis-server --port 0 --unixsocket "$tmp/redis.sock" \
		--unixsocketperm 700 --save '' --appendonly no \
		--logfile "$tmp/redis.log" &
	redis_pid=$!
	pids+=("$redis_pid")
	wait_for 10 test -S "$tmp/redis.sock"
}

# node NAME [FILE]: bpqd in the background, its log in $tmp/NAME.log
node() {
	"$bpqd" -c "${2:-$tmp/c.yaml}" --node "$1" --textfile "$tmp/$1" \
		--status "$tmp/$1/status.json" >>"$tmp/$1.log" 2>&1 &
	pids+=($!)
	eval "pid_$1=$!"
}

nodes_seen() {	# nodes_seen NAME N: NAME's view has N nodes
	[ -e "$tmp/$1/status.json" ] &&
		[ "$(grep -o '"id"' "$tmp/$1/status.json" | wc -l)" -eq "$2" ]
}

logged() { grep -q "$2" "$tmp/$1.log"; }

bad_files() {
	local f=$tmp/bad.yaml out

	printf 'queues:\n  a:\ncluster:\n  redis: { address: "h:1" }\n  colour: red\n' >"$f"
	out=$("$bpqd" -c "$f" --check 2>&1)
	ok "an unknown key: exit 2, FILE:LINE ($out)" \
		test "$?" -eq 2 -a "$out" = "bpqd: $f:5: unknown key 'colour'"
	printf 'queues:\n  a:\ncluster:\n  redis: { address: "h:1" }\n  ttl: 1s\n  report_interval: 2s\n' >"$f"
	out=$("$bpqd" -c "$f" --check 2>&1)
	ok "report_interval above ttl: exit 2 ($out)" test "$?" -eq 2
	printf 'queues:\n  a:\n' >"$f"
	out=$("$bpqd" -c "$f" --check 2>&1)
	ok "no cluster section: exit 2 ($out)" test "$?" -eq 2
	"$bpqd" -c "$tmp/none.yaml" --check >/dev/null 2>&1
	ok "no such file: exit 2" test "$?" -eq 2
	"$bpqd" --frobnicate >/dev/null 2>&1
	ok "an unknown option: exit 2" test "$?" -eq 2
	out=$("$bpqd" -c "$tmp/c.yaml" --check)
	ok "--check says what it would do" grep -q \
		"policy least_loaded, margin 10%" <<<"$out"
}

fake_server() {	# fake_server MODE: broken RESP on $tmp/fake.sock
	python3 - "$tmp/fake.sock" "$1" <<'PY' &
import os, socket, sys, threading
path, mode = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX)
s.bind(path)
s.listen(8)
def serve(c):
    while c.recv(4096):
        if mode == "garbage":
            c.sendall(b"?this is not RESP\r\n")
        else:                   # a bulk string cut short, then closed
            c.sendall(b"$10\r\nhal")
            c.close()
            return
while True:
    threading.Thread(target=serve, args=(s.accept()[0],), daemon=True).start()
PY
	pids+=($!)
	fake_pid=$!
	wait_for 10 test -S "$tmp/fake.sock"
}

broken_servers() {
	local mode

	sed "s|$tmp/redis.sock|$tmp/fake.sock|" "$tmp/c.yaml" >"$tmp/f.yaml"
	for mode in garbage close; do
		rm -f "$tmp/fake.sock"
		fake_server "$mode"
		node "f$mode" "$tmp/f.yaml"
		ok "a server that answers $mode: logged unreachable" \
			wait_for 10 logged "f$mode" "unreachable: PING"
		ok "then fails open after the grace period" \
			wait_for 10 logged "f$mode" "failing open"
		eval "kill \$pid_f$mode"
		eval "wait \$pid_f$mode"
		ok "and stops on SIGTERM with status 0, not a crash" \
			test "$?" -eq 0
		kill "$fake_pid"
	done
	grep -h . "$tmp"/fgarbage.log "$tmp"/fclose.log | sed 's/^/# /'
}

main() {
	command -v redis-server >/dev/null || {
		echo "# SKIP: no redis-server (scripts/deps.sh)"
		exit $KSFT_SKIP
	}
	[ -x "$bpqd" ] || { echo "not ok: no $bpqd (make)"; exit 1; }
	tmp=$(mktemp -d) || exit 1
	trap cleanup EXIT
	cat >"$tmp/c.yaml" <<EOF
queues:
  orders:
    size: 100
cluster:
  redis: { address: "unix:$tmp/redis.sock" }
  key_prefix: "t:"
  ttl: 2s
  report_interval: 200ms
  grace: 1s
  policy: { type: least_loaded, margin: 0.1 }
EOF
	bad_files
	start_redis || { echo "not ok: redis-server"; exit 1; }

	node a
	node b
	ok "two nodes join and see each other" \
		wait_for 10 eval "nodes_seen a 2 && nodes_seen b 2"
	ok "Redis holds both in t:nodes" test \
		"$(redis-cli -s "$tmp/redis.sock" SMEMBERS t:nodes | sort |
			tr '\n' ' ')" = "a b "
	ok "bpqctl cluster shows the view" bash -c \
		"'$bpqctl' cluster --status '$tmp/a/status.json' |
			grep -q '^b  *0% no'"
	ok "--textfile: bpq.prom says Redis is up" grep -qx 'bpqd_redis_up 1' \
		"$tmp/a/bpq.prom"
	ok "--textfile: and two nodes" grep -qx 'bpqd_cluster_nodes 2' \
		"$tmp/a/bpq.prom"
	ok "bpqctl cluster --json is JSON" bash -c \
		"'$bpqctl' cluster --json --status '$tmp/a/status.json' |
			python3 -m json.tool >/dev/null"

	# shellcheck disable=SC2154 # set by node()
	kill -KILL "$pid_b"
	wait "$pid_b" 2>/dev/null
	ok "a killed node's keys expire and it leaves the view" \
		wait_for 10 eval "nodes_seen a 1 && logged a 'node b: gone'"

	kill "$redis_pid"
	ok "Redis stopped: unreachable, then failing open after the grace" \
		wait_for 10 eval "logged a unreachable && logged a 'failing open'"
	ok "--textfile: bpqd_redis_up 0" wait_for 5 grep -qx 'bpqd_redis_up 0' \
		"$tmp/a/bpq.prom"
	ok "bpqctl cluster says so" wait_for 5 bash -c \
		"'$bpqctl' cluster --status '$tmp/a/status.json' |
			grep -q 'unreachable for .*failed open'"
	start_redis
	ok "Redis back: reachable again" wait_for 20 logged a "reachable again"
	# shellcheck disable=SC2154
	kill "$pid_a"
	wait "$pid_a"
	ok "SIGTERM: status 0, its keys and status files gone" test "$?" -eq 0 \
		-a ! -e "$tmp/a/status.json" -a \
		"$(redis-cli -s "$tmp/redis.sock" EXISTS t:node:a)" = 0
	ok "bpqctl cluster then: no bpqd, status 1" bash -c \
		"! '$bpqctl' cluster --status '$tmp/a/status.json' 2>/dev/null"
	sed 's/^/# a: /' "$tmp/a.log"

	broken_servers
	echo "# $failures failed"
	[ "$failures" -eq 0 ]
}

main "$@"
