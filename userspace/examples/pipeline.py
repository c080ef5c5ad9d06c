#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""bpq-pipeline.py: bpq-pipeline's job in Python, a process a stage.

    source --[pipeline-in: block]--> worker --[pipeline-work: credit]--> sink
      sink --[pipeline-recent: drop-oldest]--> a dashboard (the parent)

The parent creates the three queues (root), starts the source, the worker
and the sink as three processes of their own (this file again, with the
stage's name), waits for them, shows what each stage and queue saw, and
destroys the queues. Each stage is a bpq.Stage: the source's is an
iterable of records, the worker's function uppercases a record and appends
its FNV-1a checksum, the sink's checks the checksum and the order,
processes the record slowly and publishes a result line (a poisoned
record it cannot process: it raises bpq.Nack). The stages count nothing
but their own records: the end of the source's stream travels through the
worker to the sink, and a stage that fails fails the stream after it and
cancels the one before, so no process waits for a dead one.

The sink grants WINDOW credits on pipeline-work (auto_credit ack): each
record it has handed on returns one, so the worker is never more than
WINDOW records ahead of it, and through pipeline-in neither is the source.

usage: bpq-pipeline.py [-n COUNT] [-w WINDOW] [-d SINK_DELAY_US] [-f K]
                       [-b BATCH]
Exit status 0 when every record arrived intact and in order and the only
failed records are the poisoned ones.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Iterator

import bpq

TIMEOUT = 5.0       # a stage stuck this long fails
RECENT = 8          # results pipeline-recent keeps
QUEUES: dict[str, tuple[str, dict[str, int | str]]] = {
    "in": ("pipeline-in", {"strategy": "block", "capacity_msgs": 16}),
    # the sink's acknowledgments return the credits
    "work": ("pipeline-work", {"strategy": "credit", "capacity_msgs": 64,
                               "auto_credit": bpq.AutoCredit.ACK}),
    "recent": ("pipeline-recent", {"strategy": "drop-oldest",
                                   "capacity_msgs": RECENT}),
}


def fnv1a(data: bytes) -> int:
    h = 2166136261
    for b in data:
        h = ((h ^ b) * 16777619) & 0xFFFFFFFF
    return h


def poisoned(i: int, every: int) -> bool:
    return every > 0 and (i + 1) % every == 0


# -- the stages, each in a process of its own --------------------------

def source(args: argparse.Namespace) -> dict[str, int]:
    def records() -> Iterator[bytes]:
        for i in range(args.n):
            what = "poison, cannot be processed" if poisoned(i, args.f) \
                else "the quick brown fox"
            yield b"record %06d: %s" % (i, what.encode())

    st = bpq.run_stage(records(), output=QUEUES["in"][0], batch=args.b,
                       timeout=TIMEOUT)
    return {"sent": st.emitted}


def worker(args: argparse.Namespace) -> dict[str, int]:
    def transform(msg: bpq.Message) -> bytes:
        rec = msg.data.upper()
        return rec + b" #%08x" % fnv1a(rec)

    st = bpq.run_stage(transform, QUEUES["in"][0], QUEUES["work"][0],
                       batch=args.b, timeout=TIMEOUT)
    return {"transformed": st.emitted}


def sink(args: argparse.Namespace) -> dict[str, int]:
    seen = {"lost": 0, "bad": 0, "expect": 1}

    def consume(msg: bpq.Message) -> bytes:
        seen["lost"] += msg.lost
        if msg.seq != seen["expect"]:
            seen["bad"] += 1
        seen["expect"] = msg.seq + 1
        rec, _, checksum = msg.data.rpartition(b" #")
        if not checksum or int(checksum, 16) != fnv1a(rec):
            seen["bad"] += 1
        if b"POISON" in rec:
            raise bpq.Nack()        # cannot be processed: go on
        time.sleep(args.d / 1e6)    # the slow part
        return rec[:14] + b" #" + checksum

    with bpq.open(QUEUES["work"][0], "r") as work:
        work.grant(args.w)
        st = bpq.run_stage(consume, work, QUEUES["recent"][0],
                           batch=args.b, timeout=TIMEOUT)
    return {"received": st.received, "processed": st.emitted,
            "nacked": st.nacked, "lost": seen["lost"], "bad": seen["bad"]}


STAGES = {"source": source, "worker": worker, "sink": sink}


# -- the parent --------------------------------------------------------

def run_stages(argv: list[str]) -> dict[str, dict[str, int] | None]:
    procs = {name: subprocess.Popen([sys.executable, __file__, "--stage",
                                     name] + argv, stdout=subprocess.PIPE)
             for name in ("sink", "worker", "source")}
    results: dict[str, dict[str, int] | None] = {}
    for name, p in procs.items():
        out, _ = p.communicate()
        results[name] = json.loads(out) if p.returncode == 0 else None
        if p.returncode:
            print(f"{name}: exit {p.returncode}", file=sys.stderr)
    return results


def show_queues(queues: dict[str, bpq.Queue]) -> None:
    print("queues:")
    for key, q in queues.items():
        s = q.stats
        print(f"  {q.name:<15} bpq{q.index:<2} "
              f"{bpq.strategy_name(q.config.strategy):<11} "
              f"enqueued {s.enqueued_msgs}, dequeued {s.dequeued_msgs}, "
              f"evicted {s.dropped_oldest}, writers held back "
              f"{s.backpressure_applied}")
        if key == "work":
            print(f"  {q.name:<15} acknowledged {s.acked_msgs}, nacked "
                  f"{s.nacked}, unacknowledged {s.unacked}")


def main() -> int:
    ap = argparse.ArgumentParser(
        description="bpq-pipeline's job in Python, a process a stage")
    ap.add_argument("-n", type=int, default=1000, help="records")
    ap.add_argument("-w", type=int, default=4, help="the sink's window")
    ap.add_argument("-d", type=int, default=200,
                    help="the sink's time a record, microseconds")
    ap.add_argument("-f", type=int, default=0, help="every K-th poisoned")
    ap.add_argument("-b", type=int, default=8, help="records a batch")
    ap.add_argument("--stage", choices=STAGES, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.n < 1 or args.w < 1 or not 1 <= args.b <= 1024 or \
            not 0 <= args.d < 1000000 or args.f < 0:
        ap.error("out of range")
    if args.stage:
        print(json.dumps(STAGES[args.stage](args)))
        return 0

    argv = sys.argv[1:]
    created: list[int] = []
    queues: dict[str, bpq.Queue] = {}
    try:
        for key, (name, config) in QUEUES.items():
            created.append(bpq.create(name))
            queues[key] = bpq.open(name, "rw")
            queues[key].configure(write_timeout_ms=0, **config)
        # the dashboard's file counts losses from its open
        recent = bpq.open(QUEUES["recent"][0], "r")
        print(f"pipeline: {args.n} records, credit window {args.w}, sink "
              f"{args.d} us per record, batches of {args.b}, a process "
              f"a stage" + (f", every {args.f}. poisoned" if args.f else ""))
        r = run_stages(argv)
        kept = [m for m in iter(lambda: recent.recv(timeout=0), None)]
        recent.close()
        poison = sum(poisoned(i, args.f) for i in range(args.n))
        if r["source"]:
            print(f"source: {r['source']['sent']} records sent, "
                  f"{poison} poisoned")
        if r["worker"]:
            print(f"worker: {r['worker']['transformed']} records "
                  "transformed, then end of stream")
        s = r["sink"]
        if s:
            print(f"sink: {s['received']} records received, then end of "
                  "stream")
            print(f"sink: {s['processed']} processed, {s['nacked']} failed "
                  f"(nacked), {s['lost']} lost, {s['bad']} bad")
        if kept:
            print(f"recent: latest result, message {kept[-1].seq}: "
                  f"{kept[-1].data.decode()}")
        print(f"recent: {len(kept)} results kept, "
              f"{sum(m.lost for m in kept)} evicted")
        show_queues(queues)
        # failed records are fine if they are the poisoned ones, no others
        good = s is not None and r["source"] is not None and \
            r["worker"] is not None and s["received"] == args.n and \
            s["nacked"] == poison and not s["lost"] and not s["bad"] and \
            queues["work"].stats.nacked == poison
        return 0 if good else 1
    except OSError as e:
        print(f"bpq-pipeline.py: {e}", file=sys.stderr)
        return 1
    finally:
        for q in queues.values():
            q.close()
        for index in created:
            bpq.destroy(index)


if __name__ == "__main__":
    sys.exit(main())
