#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""bpqd's cluster test: two QEMU guests as two machines and a real
redis-server on the host.

Redis listens on a UNIX socket only (no TCP port at all). Each guest
reaches it through two serial ports that QEMU connects to that socket
(selftests/cluster/agent.sh bridges them to local sockets for bpqd); the
guests have no network. The host drives each guest over a third serial
port: a line of shell out, its output and status back.

Scenarios, each with assertions on sysfs, bpqd's status file and logs, and
Redis: the nodes join and see each other; load on one node's queue makes
that node hold it (+cluster) while the other takes work, within two
report intervals, and releases after; a budget of messages a second for a
queue on both nodes is kept in total and follows the demand; a killed
bpqd's keys expire and the other node releases; Redis stopped, both fail
open after the grace period, and coordination comes back with it. Then
both guests' gates (clean kernel log, no new taint, module unloaded).

usage: cluster_test.py --kernel IMAGE --module BPQ.KO --out DIR
Prints "ok N - ..." lines and "N passed, M failed"; exit 0 if none failed.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[2]
REPORT_MS = 500         # bpqd's report interval in the test
TTL_MS = 3000
GRACE_MS = 2000


def config(queue: str, policy: str) -> str:
    """bpqctl apply's file with one queue and a cluster section."""
    return f"""
queues:
{queue}
cluster:
  redis:
    address: "unix:/run/redis.sock"
    channel_address: "unix:/run/redis-sub.sock"
  key_prefix: "test:"
  ttl: {TTL_MS}ms
  report_interval: {REPORT_MS}ms
  grace: {GRACE_MS}ms
  memory_pressure: 5%
  memory_window: 1s
  policy: {policy}
"""


CONFIG_LEAST = config(
    "  work:\n    size: 100\n    strategy: block\n"
    "    monitoring: { alert_thresholds: { queue_utilization: 0.5 } }",
    "{ type: least_loaded, margin: 0.1 }")
BUDGET = 200
CONFIG_BUDGET = config(
    "  ingest:\n    size: 1000\n    strategy: adaptive\n"
    "    flow_control: { type: rate_based, rate: 100000 }",
    f"{{ type: budget, budget: {BUDGET}, queue: ingest }}")


class Tap:
    def __init__(self) -> None:
        self.n = 0
        self.failed = 0

    def ok(self, cond: bool, what: str) -> bool:
        self.n += 1
        if not cond:
            self.failed += 1
        print(f"{'' if cond else 'not '}ok {self.n} - {what}", flush=True)
        return cond

    def note(self, text: str) -> None:
        print(f"# {text}", flush=True)


class Guest:
    """One machine: scripts/vm.sh running agent.sh, and its control port."""

    def __init__(self, name: str, tmp: Path, args: argparse.Namespace,
                 redis_sock: Path) -> None:
        self.name = name
        self.ctl_path = tmp / f"{name}-ctl.sock"
        self.out = Path(args.out) / f"vm-{name}"
        socat = shutil.which("socat")
        if not socat:
            raise RuntimeError("no socat (scripts/deps.sh)")
        bins = " ".join(str(ROOT / p) for p in (
            "userspace/bpqctl/bpqctl", "userspace/bpqd/bpqd",
            "userspace/examples/bpq-overload")) + " " + socat
        qemu = (f"-serial unix:{self.ctl_path},server=on,wait=off "
                f"-chardev socket,id=rc,path={redis_sock},reconnect=1 "
                f"-chardev socket,id=rs,path={redis_sock},reconnect=1 "
                "-device pci-serial-2x,chardev1=rc,chardev2=rs")
        self.log = open(Path(args.out) / f"{name}-vm.log", "w")
        self.proc = subprocess.Popen(
            [str(ROOT / "scripts/vm.sh"), "--kernel", args.kernel,
             "--module", args.module, "--bin", bins,
             "--script", str(ROOT / "selftests/cluster/agent.sh"),
             "--out", str(self.out), "--timeout", str(args.timeout),
             "--test-timeout", str(args.timeout - 60), "--mem", "1024",
             "--append", "8250.nr_uarts=8", "--qemu", qemu, "--quiet"],
            stdout=self.log, stderr=subprocess.STDOUT)
        self.sock: socket.socket | None = None
        self.rfile: Any = None

    def connect(self, timeout: float) -> None:
        """Connect to the control port as soon as QEMU listens: what the
        guest writes there before is lost."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                s = socket.socket(socket.AF_UNIX)
                s.connect(str(self.ctl_path))
                break
            except OSError:
                s.close()
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError(f"{self.name}: no control port")
                time.sleep(0.5)
        self.sock = s
        self.rfile = s.makefile("rb")

    def ready(self, timeout: float) -> str:
        """Wait for the agent's first line; the guest's kernel release."""
        assert self.sock is not None
        self.sock.settimeout(timeout)
        while True:
            raw: bytes = self.rfile.readline()
            line = raw.decode(errors="replace").strip()
            if not line:
                raise RuntimeError(f"{self.name}: control port closed")
            if line.startswith("@@ ready"):
                return line[len("@@ ready"):].strip()

    def run(self, cmd: str, timeout: float = 120) -> tuple[int, str]:
        assert self.sock is not None
        self.sock.settimeout(timeout)
        self.sock.sendall(cmd.encode() + b"\n")
        out: list[str] = []
        while True:
            raw = self.rfile.readline()
            if not raw:
                raise RuntimeError(f"{self.name}: control port closed")
            line = raw.decode(errors="replace").rstrip("\r\n")
            if line.startswith("@@ rc="):
                return int(line[6:]), "\n".join(out)
            if line.startswith("| "):
                out.append(line[2:])

    def sh(self, cmd: str, timeout: float = 120) -> str:
        rc, out = self.run(cmd, timeout)
        if rc:
            raise RuntimeError(f"{self.name}: {cmd}: exit {rc}: {out}")
        return out

    def write(self, path: str, text: str) -> None:
        b64 = base64.b64encode(text.encode()).decode()
        self.sh(f"echo {b64} | base64 -d > {path}")

    def status(self) -> dict[str, Any]:
        rc, out = self.run("cat /run/bpqd/status.json")
        try:
            status: dict[str, Any] = json.loads(out) if rc == 0 else {}
        except ValueError:
            status = {}
        return status

    def sysfs(self, queue: str, attr: str) -> str:
        return self.sh(f"cat /sys/class/bpq/$(basename $(bpqdev {queue}))"
                       f"/{attr}")

    def start_bpqd(self, config: str) -> None:
        self.write("/etc/bpq.yaml", config)
        self.sh("bpqctl apply /etc/bpq.yaml")
        self.sh(f"setsid bpqd -c /etc/bpq.yaml --node {self.name} "
                ">>/tmp/bpqd.log 2>&1 < /dev/null &")

    def stop_bpqd(self, signal: str = "TERM") -> None:
        self.run(f"killall -{signal} bpqd; sleep 1")

    def bpqd_log(self) -> str:
        return self.run("cat /tmp/bpqd.log")[1]

    def finish(self, timeout: float) -> tuple[int, str]:
        if self.sock is not None:
            try:
                self.sock.settimeout(30)
                self.sock.sendall(b"exit\n")
                while (raw := self.rfile.readline()) and \
                        not raw.startswith(b"@@ bye"):
                    pass
            except OSError:
                pass
            self.sock.close()
            self.sock = None
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.log.close()
        results = (self.out / "results")
        return rc, results.read_text() if results.exists() else ""


def wait_for(what: Callable[[], bool], timeout: float,
             step: float = 0.2) -> float | None:
    """Seconds until what() held, None if it did not within timeout."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if what():
            return time.monotonic() - t0
        time.sleep(step)
    return None


def held(g: Guest, queue: str) -> bool:
    return "cluster" in g.sysfs(queue, "hold").split()


def start_redis(tmp: Path) -> subprocess.Popen[bytes]:
    sock = tmp / "redis.sock"
    p = subprocess.Popen(
        ["redis-server", "--port", "0", "--unixsocket", str(sock),
         "--unixsocketperm", "700", "--save", "", "--appendonly", "no",
         "--logfile", str(tmp / "redis.log")])
    if wait_for(sock.exists, 10) is None:
        raise RuntimeError("redis-server did not start")
    return p


def redis_cli(tmp: Path, *args: str) -> str:
    return subprocess.run(["redis-cli", "-s", str(tmp / "redis.sock"),
                           *args], capture_output=True, text=True,
                          timeout=10).stdout.strip()


def enqueued(g: Guest, queue: str) -> tuple[float, int]:
    """The guest's clock (s) and the queue's enqueued_msgs, read together
    in the guest: a command's round trip takes up to a second under
    emulation, too much for a rate over ten."""
    out = g.sh("cut -d' ' -f1 /proc/uptime; cat /sys/class/bpq/"
               f"$(basename $(bpqdev {queue}))/stats/enqueued_msgs")
    up, n = out.split()
    return float(up), int(n)


def rate(before: tuple[float, int], after: tuple[float, int]) -> float:
    return (after[1] - before[1]) / (after[0] - before[0])


def scenarios(t: Tap, a: Guest, b: Guest, tmp: Path) -> None:
    interval = REPORT_MS / 1000

    # --- join ---
    for g in (a, b):
        g.start_bpqd(CONFIG_LEAST)
    seen = wait_for(lambda: len(a.status().get("nodes", [])) == 2 and
                    len(b.status().get("nodes", [])) == 2, 30)
    t.ok(seen is not None, f"join: each node sees both ({seen or 0:.1f} s)")
    members = set(redis_cli(tmp, "SMEMBERS", "test:nodes").split())
    t.ok(members == {"a", "b"}, f"join: Redis's test:nodes is {members}")
    keys = set(redis_cli(tmp, "KEYS", "test:*").split())
    t.ok({"test:node:a", "test:node:b", "test:node:a:work",
          "test:node:b:work"} <= keys, "join: each node's keys")
    ttl = int(redis_cli(tmp, "PTTL", "test:node:a:work") or -1)
    t.ok(0 < ttl <= TTL_MS, f"join: the keys expire (PTTL {ttl} ms)")

    # --- least_loaded: load on a: a holds, b takes work ---
    a.sh("d=$(bpqdev work); i=0; while [ $i -lt 60 ]; do echo m > $d; "
         "i=$((i + 1)); done")
    t0 = time.monotonic()
    delay = wait_for(lambda: held(a, "work"), 10 * interval)
    t.ok(delay is not None and delay <= 2 * interval + 1.5,
         f"least_loaded: a at 60% holds +cluster within two intervals "
         f"({delay if delay is not None else -1:.2f} s; interval "
         f"{interval} s)")
    if delay is not None:
        t.note(f"figures: propagation to the loaded node's hold "
               f"{time.monotonic() - t0:.2f} s")
    t.ok(not held(b, "work"), "least_loaded: b, the least loaded, does not")
    t.ok(wait_for(lambda: "alert: queue work: queue_utilization" in
                  a.bpqd_log(), 15) is not None,
         "monitoring: a's bpqd logged the utilization alert (50%)")
    # a says it holds at its next report
    t.ok(wait_for(lambda: any(n["id"] == "a" and n["load"] == 60 and
                              n["held"] for n in b.status().get("nodes", [])),
                  4 * interval) is not None,
         "least_loaded: b's view: a at 60%, held")
    a.sh("bpqctl flush work")
    gone = wait_for(lambda: not held(a, "work"), 10 * interval)
    t.ok(gone is not None, f"least_loaded: drained, a releases "
         f"({gone if gone is not None else -1:.2f} s)")

    # b loaded now: b holds, a does not
    b.sh("d=$(bpqdev work); i=0; while [ $i -lt 70 ]; do echo m > $d; "
         "i=$((i + 1)); done")
    delay = wait_for(lambda: held(b, "work"), 10 * interval)
    t.ok(delay is not None and not held(a, "work"),
         f"least_loaded: b at 70% holds, a does not "
         f"({delay if delay is not None else -1:.2f} s)")

    # --- a's bpqd killed: its keys expire, b is alone and releases ---
    a.stop_bpqd("KILL")
    released = wait_for(lambda: not held(b, "work"),
                        TTL_MS / 1000 + 6 * interval)
    t.ok(released is not None,
         f"kill: a's keys expire, b releases "
         f"({released if released is not None else -1:.2f} s, ttl "
         f"{TTL_MS / 1000} s)")
    t.ok("node a: gone" in b.bpqd_log(), "kill: b's log says a has gone")
    t.ok(redis_cli(tmp, "EXISTS", "test:node:a") == "0",
         "kill: a's key expired in Redis")

    # --- Redis stopped: both fail open; back, coordination too ---
    a.start_bpqd(CONFIG_LEAST)
    back = wait_for(lambda: held(b, "work"), 10 * interval)
    t.ok(back is not None, "redis: a back, b (70%) holds again")
    redis = getattr(scenarios, "redis")
    redis.terminate()
    redis.wait(10)
    t0 = time.monotonic()
    opened = wait_for(lambda: not held(b, "work"), GRACE_MS / 1000 + 15)
    t.ok(opened is not None and opened >= GRACE_MS / 1000 - 0.5,
         f"redis: stopped, b fails open after the grace period "
         f"({opened if opened is not None else -1:.2f} s, grace "
         f"{GRACE_MS / 1000} s)")
    for g in (a, b):
        t.ok("failing open" in g.bpqd_log() and
             "unreachable" in g.bpqd_log(),
             f"redis: {g.name} logged it unreachable and failing open")
    setattr(scenarios, "redis", start_redis(tmp))
    again = wait_for(lambda: held(b, "work"), 30)
    t.ok(again is not None, f"redis: restarted, b holds again "
         f"({again if again is not None else -1:.2f} s)")
    t.ok(all("reachable again" in g.bpqd_log() for g in (a, b)),
         "redis: both logged it reachable again")
    # --- the system level: memory pressure on a holds a's queue ---
    a.sh("echo +memory > /sys/fs/cgroup/cgroup.subtree_control; "
         "mkdir -p /sys/fs/cgroup/hog; echo 8M > /sys/fs/cgroup/hog/memory.high")
    a.sh("setsid sh -c 'echo $$ > /sys/fs/cgroup/hog/cgroup.procs; exec dd "
         "if=/dev/zero of=/dev/null bs=32M count=100000' "
         ">/dev/null 2>&1 </dev/null &")
    sys_held = wait_for(lambda: "system" in a.sysfs("work", "hold").split(),
                        20)
    t.ok(sys_held is not None,
         f"system: memory pressure on a holds its queue (+system) "
         f"({sys_held if sys_held is not None else -1:.2f} s)")
    t.note("a's /proc/pressure/memory: " +
           a.run("head -1 /proc/pressure/memory")[1])
    a.run("killall dd")
    let_go = wait_for(lambda: "system" not in
                      a.sysfs("work", "hold").split(), 20)
    t.ok(let_go is not None, "system: the pressure gone, a lets it go")
    t.ok("system" not in b.sysfs("work", "hold").split(),
         "system: b, without memory pressure, never held (+system)")

    for g in (a, b):
        ops = g.status().get("redis_ops_per_s", 0)
        t.note(f"figures: {g.name}: {ops:.1f} Redis operations a second "
               f"(report every {REPORT_MS} ms)")
    for g in (a, b):
        g.stop_bpqd()
        g.sh("bpqctl destroy work")
        t.ok("cluster" not in g.run("cat /sys/class/bpq/*/hold")[1],
             f"stop: {g.name}'s bpqd leaves no hold")

    # --- budget: BUDGET msgs/s for ingest, split by demand ---
    for g in (a, b):
        g.start_bpqd(CONFIG_BUDGET)
    a.sh("setsid bpq-overload -n 100000000 -r 1000000 $(bpqdev ingest) "
         ">/tmp/overload.log 2>&1 </dev/null &")
    time.sleep(6 * interval)
    a0 = enqueued(a, "ingest")
    time.sleep(10)
    rate_a = rate(a0, enqueued(a, "ingest"))
    t.ok(BUDGET * 0.75 <= rate_a <= BUDGET * 1.1,
         f"budget: a alone with demand gets about all {BUDGET} msgs/s "
         f"({rate_a:.0f})")
    b.sh("setsid bpq-overload -n 100000000 -r 1000000 $(bpqdev ingest) "
         ">/tmp/overload.log 2>&1 </dev/null &")
    time.sleep(8 * interval)
    a0, b0 = enqueued(a, "ingest"), enqueued(b, "ingest")
    time.sleep(10)
    ra = rate(a0, enqueued(a, "ingest"))
    rb = rate(b0, enqueued(b, "ingest"))
    t.ok(ra + rb <= BUDGET * 1.1,
         f"budget: the total is kept ({ra:.0f} + {rb:.0f} = "
         f"{ra + rb:.0f} <= {BUDGET} + 10 %)")
    t.ok(rb >= BUDGET * 0.3 and ra >= BUDGET * 0.3,
         f"budget: it follows the demand to b ({ra:.0f}, {rb:.0f})")
    for g in (a, b):
        g.run("killall bpq-overload")
        g.stop_bpqd()
        cfg = g.sh("bpqctl show ingest")
        t.ok("max_rate: 100000" in cfg or "max_rate 100000" in cfg,
             f"budget: {g.name}'s bpqd gone, the queue's own rate back")
        g.sh("bpqctl destroy ingest")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kernel", required=True)
    ap.add_argument("--module", required=True)
    ap.add_argument("--out", default="build/cluster")
    ap.add_argument("--timeout", type=int, default=1200)
    ap.add_argument("--summary", help='where to write "passed failed"')
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    # the sockets in a short path of their own (a UNIX socket's path has
    # at most 107 bytes, and a clone may be deep); the logs in out
    tmp = Path(tempfile.mkdtemp(prefix="bpq-cluster."))
    t = Tap()
    redis = start_redis(tmp)
    setattr(scenarios, "redis", redis)
    guests = [Guest(n, tmp, args, tmp / "redis.sock") for n in ("a", "b")]
    try:
        for g in guests:
            g.connect(60)
        for g in guests:
            release = g.ready(600)
            t.note(f"{g.name}: booted, Linux {release}")
        scenarios(t, guests[0], guests[1], tmp)
    except (RuntimeError, OSError, ValueError) as e:
        t.ok(False, f"the scenarios ran to the end ({e})")
        for g in guests:
            try:
                t.note(f"{g.name}'s bpqd log:\n" + g.bpqd_log())
            except (RuntimeError, OSError):
                pass
    finally:
        for g in guests:
            rc, results = g.finish(300)
            for line in results.splitlines():
                if line.startswith(("ok ", "not ok ")):
                    t.ok(line.startswith("ok "), f"{g.name}: {line}")
            t.ok(rc == 0, f"{g.name}: vm.sh exit {rc}")
        redis = getattr(scenarios, "redis")
        redis.terminate()
        redis.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{t.n - t.failed} passed, {t.failed} failed")
    if args.summary:
        Path(args.summary).write_text(f"{t.n - t.failed} {t.failed}\n")
    return 1 if t.failed else 0


if __name__ == "__main__":
    sys.exit(main())
