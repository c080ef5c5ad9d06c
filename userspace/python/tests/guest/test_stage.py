# SPDX-License-Identifier: MIT
"""bpq.Stage against the module: records through, the ends carried both
ways, NACKs, END, stop(), timeouts, and the acknowledgments."""

from __future__ import annotations

import errno
import threading
import time
import unittest

import bpq
from bpq.stage import StageThread

from helpers import QueueTestCase

N = 500


def double_but_sevens(msg: bpq.Message) -> list[bytes] | None:
    """Every 7th record filtered out, the others sent twice."""
    if int(msg.data) % 7 == 0:
        return None
    return [msg.data, msg.data]


class StageTest(QueueTestCase):
    def two_queues(self, **config: int | str) -> tuple[int, int]:
        settings: dict[str, int | str] = {"strategy": "block",
                                          "capacity_msgs": 8}
        settings.update(config)
        return self.new_queue(**settings), self.new_queue(**settings)

    def pipeline(self, middle: bpq.stage.StageFunction, a: int, b: int,
                 sink: bpq.stage.StageFunction | None = None,
                 ) -> tuple[list[StageThread], list[bytes]]:
        seen: list[bytes] = []

        def collect(msg: bpq.Message) -> None:
            seen.append(msg.data)

        stages = [
            bpq.Stage((b"%d" % i for i in range(N)), output=a, batch=4,
                      timeout=10),
            bpq.Stage(middle, a, b, batch=16, timeout=10),
            bpq.Stage(sink or collect, b, batch=5, timeout=10),
        ]
        for st in stages:
            self.addCleanup(st.close)
        threads = [StageThread(st) for st in stages]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
            self.assertFalse(t.is_alive())
        return threads, seen

    def test_through(self) -> None:
        a, b = self.two_queues()
        threads, seen = self.pipeline(double_but_sevens, a, b)
        self.assertEqual([t.error for t in threads], [None] * 3)
        kept = [b"%d" % i for i in range(N) if i % 7]
        self.assertEqual(seen, [x for x in kept for _ in range(2)])
        source, middle, sink = (t.stage for t in threads)
        self.assertEqual((source.emitted, middle.received, middle.emitted,
                          sink.received), (N, N, 2 * len(kept),
                                           2 * len(kept)))
        with self.open(a, "ioctl") as qa, self.open(b, "ioctl") as qb:
            sa, sb = qa.stats, qb.stats
        self.assertEqual((sa.acked_msgs, sa.unacked), (N, 0))
        self.assertEqual((sb.acked_msgs, sb.unacked), (2 * len(kept), 0))
        self.assertEqual(sa.stream, bpq.StreamState.COMPLETED)
        self.assertEqual(sb.stream, bpq.StreamState.COMPLETED)
        # acknowledged with the records' timestamps: a processing time
        # for each run of records
        self.assertGreater(sum(sa.processing_hist), 0)

    def test_failure(self) -> None:
        a, b = self.two_queues()

        def fails_at_300(msg: bpq.Message) -> bytes:
            if msg.data == b"300":
                raise ValueError("cannot")
            return msg.data

        threads, seen = self.pipeline(fails_at_300, a, b)
        source, middle, sink = threads
        self.assertIsInstance(middle.error, ValueError)
        self.assertIsInstance(source.error, BrokenPipeError)
        self.assertIsInstance(sink.error, ConnectionResetError)
        self.assertEqual(seen, [b"%d" % i for i in range(300)])
        with self.open(a, "ioctl") as qa, self.open(b, "ioctl") as qb:
            sa, sb = qa.stats, qb.stats
        self.assertEqual(sa.stream, bpq.StreamState.CANCELLED)
        self.assertEqual(sb.stream, bpq.StreamState.FAILED)
        self.assertEqual(sb.stream_error, errno.EIO)
        self.assertEqual(sa.acked_msgs, 300)

    def test_oserror_carries_its_errno(self) -> None:
        a, b = self.two_queues()

        def proto(msg: bpq.Message) -> bytes:
            raise OSError(errno.EPROTO, "bad record")

        threads, _ = self.pipeline(proto, a, b)
        with self.open(b, "ioctl") as qb:
            self.assertEqual(qb.stats.stream_error, errno.EPROTO)
        self.assertIsInstance(threads[2].error, ConnectionResetError)

    def test_nack_and_end(self) -> None:
        a, b = self.two_queues()

        def nack_odd_end_at_20(msg: bpq.Message) -> bpq.stage.Output:
            v = int(msg.data)
            if v == 20:
                return bpq.END
            if v % 2:
                raise bpq.Nack()
            return msg.data

        threads, seen = self.pipeline(nack_odd_end_at_20, a, b)
        source, middle, sink = threads
        self.assertIsNone(middle.error)
        self.assertIsNone(sink.error)
        self.assertIsInstance(source.error, BrokenPipeError)
        self.assertEqual(seen, [b"%d" % i for i in range(0, 20, 2)])
        self.assertEqual(middle.stage.nacked, 10)
        with self.open(a, "ioctl") as qa, self.open(b, "ioctl") as qb:
            sa, sb = qa.stats, qb.stats
        self.assertEqual((sa.nacked, sa.acked_msgs), (10, 21))
        self.assertEqual(sa.stream, bpq.StreamState.CANCELLED)
        self.assertEqual(sb.stream, bpq.StreamState.COMPLETED)

    def test_stop_wakes_a_waiting_stage(self) -> None:
        a, b = self.two_queues()
        st = bpq.Stage(lambda m: m.data, a, b)
        self.addCleanup(st.close)
        t = StageThread(st)
        t.start()
        with self.open(a, "w") as w:
            w.send(b"one")
        time.sleep(0.2)
        st.stop()
        t.join(10)
        self.assertFalse(t.is_alive())
        self.assertIsNone(t.error)
        self.assertEqual((st.received, st.emitted), (1, 1))
        with self.open(b, "r") as r:
            msg = r.recv(timeout=1)
            self.assertEqual(msg.data if msg else None, b"one")
            self.assertIsNone(r.recv(timeout=1))    # completed
        with self.open(a, "ioctl") as qa:
            self.assertEqual(qa.stats.stream, bpq.StreamState.CANCELLED)

    def test_timeout(self) -> None:
        a, _ = self.two_queues()
        with bpq.Stage(lambda m: None, a, timeout=0.05) as st:
            t0 = time.monotonic()
            with self.assertRaises(TimeoutError):
                st.run()
            self.assertGreaterEqual(time.monotonic() - t0, 0.04)

    def test_a_sink_cannot_send(self) -> None:
        a, _ = self.two_queues()
        with self.open(a, "w") as w:
            w.send(b"x")
        with bpq.Stage(lambda m: m.data, a, timeout=1) as st:
            with self.assertRaises(ValueError):
                st.run()

    def test_credit_window_paces_the_stage_before(self) -> None:
        """Under credit with auto_credit ack the sink's acknowledgments
        return the credits: the middle never has more than the window
        of records out."""
        a = self.new_queue(strategy="block", capacity_msgs=64)
        b = self.new_queue(strategy="credit", capacity_msgs=64,
                           auto_credit=2)
        with self.open(b, "ioctl") as qb:
            qb.grant(3)
        most = 0

        def slow(msg: bpq.Message) -> None:
            nonlocal most
            with bpq.open(b, "ioctl") as q:
                s = q.stats
            most = max(most, s.depth_msgs + s.unacked)
            time.sleep(0.002)

        threads, _ = self.pipeline(lambda m: m.data, a, b, sink=slow)
        self.assertEqual([t.error for t in threads], [None] * 3)
        self.assertLessEqual(most, 3)
        with self.open(b, "ioctl") as qb:
            self.assertGreater(qb.stats.credit_starvation, 0)

    def test_bad_arguments(self) -> None:
        a, b = self.two_queues()
        with self.assertRaises(ValueError):
            bpq.Stage(lambda m: None)
        with self.assertRaises(ValueError):
            bpq.Stage(lambda m: None, a, batch=0)
        with self.assertRaises(TypeError):
            bpq.Stage(lambda m: None, output=b)   # a source is iterable
        with self.assertRaises(TypeError):
            bpq.Stage([b"x"], a, b)

    def test_run_stage(self) -> None:
        a, _ = self.two_queues(capacity_msgs=64)
        st = bpq.run_stage([b"a", b"b", b"c"], output=a)
        self.assertEqual(st.emitted, 3)
        got: list[bytes] = []
        bpq.run_stage(lambda m: got.append(m.data), a)
        self.assertEqual(got, [b"a", b"b", b"c"])


if __name__ == "__main__":
    unittest.main()
