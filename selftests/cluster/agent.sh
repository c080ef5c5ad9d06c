#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Guest script of the cluster test (selftests/cluster/cluster_test.py): one
# machine of the cluster, driven by the host over its fourth serial port.
#
# /dev/ttyS4 and /dev/ttyS5 are QEMU's connections to the host's Redis (a
# UNIX socket there); socat turns each into a local socket for bpqd,
# /run/redis.sock for its commands and /run/redis-sub.sock for its
# channel, one connection at a time. The guest has no network: nothing
# leaves it but these serial lines.
#
# /dev/ttyS3 carries the host's commands, a line each, run with sh -c;
# their output goes back with "| " in front, then "@@ rc=STATUS". "exit"
# ends the script (status 0), and vm-init's gates follow.

ctl=/dev/ttyS3

for t in $ctl /dev/ttyS4 /dev/ttyS5; do
	stty -F "$t" raw -echo || exit 1
done

# bridge SOCKET TTY: the socket's connections to the line, in turn
bridge() {
	while [ ! -e /run/agent.stop ]; do
		socat "UNIX-LISTEN:$1,unlink-early" "OPEN:$2" 2>/dev/null ||
			sleep 0.2
	done
}

mkdir -p /run
# bpqdev NAME: the device of the queue NAME
cat >/usr/local/bin/bpqdev <<'HELPER'
#!/bin/sh
bpqctl list | awk -v n="$1" '$2 == n { print "/dev/" $1 }'
HELPER
chmod 755 /usr/local/bin/bpqdev

bridge /run/redis.sock /dev/ttyS4 &
bridge /run/redis-sub.sock /dev/ttyS5 &

exec 3<>"$ctl"
echo "@@ ready $(uname -r)" >&3
while read -r line <&3; do
	[ "$line" = exit ] && break
	sh -c "$line" >/tmp/agent.out 2>&1 </dev/null
	rc=$?
	sed 's/^/| /' /tmp/agent.out >&3
	echo "@@ rc=$rc" >&3
done

touch /run/agent.stop
killall bpqd 2>/dev/null
sleep 1
killall socat 2>/dev/null
echo "@@ bye" >&3
exit 0
