# SPDX-License-Identifier: MIT
"""bpq.pattern against the module: each class in a small usage example."""

from __future__ import annotations

import errno
import threading
import time

from helpers import QueueTestCase

import bpq
from bpq.pattern import AdaptiveBackpressure, BackpressureStreamProcessor, \
    BoundedQueue, CongestionControl, CreditBasedFlowControl, \
    KafkaStyleConsumer, Publisher, ReactivePublisher, Subscriber, \
    Subscription


class BoundedQueueTest(QueueTestCase):
    def test_put_get_timeout(self) -> None:
        with BoundedQueue(2) as q:
            index = q.index
            self.assertIn(index, bpq.list_queues())
            self.assertTrue(q.is_empty())
            self.assertTrue(q.put(b"a"))
            self.assertTrue(q.put(b"b", timeout=1))
            self.assertTrue(q.is_full())
            self.assertEqual(q.size(), 2)
            start = time.monotonic()
            self.assertFalse(q.put(b"c", timeout=0.1))   # block: waits
            self.assertGreaterEqual(time.monotonic() - start, 0.09)
            self.assertEqual(q.get(), b"a")
            self.assertEqual(q.get(timeout=1), b"b")
            self.assertIsNone(q.get(timeout=0.05))
            self.assertGreaterEqual(q.stats.timeouts, 1)
        self.assertNotIn(index, bpq.list_queues())

    def test_put_wakes_on_get_from_a_thread(self) -> None:
        with BoundedQueue(1) as q:
            q.put(b"1")
            got: list[bytes | None] = []

            def consume() -> None:
                time.sleep(0.1)
                got.append(q.get(5))

            t = threading.Thread(target=consume)
            t.start()
            self.assertTrue(q.put(b"2", timeout=5))
            t.join()
            self.assertEqual(got, [b"1"])
            self.assertEqual(q.get(0), b"2")

    def test_drop_strategies(self) -> None:
        with BoundedQueue(2, "drop-newest") as q:
            self.assertEqual([q.put(b) for b in (b"1", b"2", b"3")],
                             [True, True, False])
            self.assertEqual(q.get(0), b"1")
        with BoundedQueue(2, bpq.Strategy.DROP_OLDEST) as q:
            self.assertTrue(all(q.put(b) for b in (b"1", b"2", b"3")))
            self.assertEqual([q.get(0), q.get(0)], [b"2", b"3"])

    def test_named_queue_is_left(self) -> None:
        index = self.new_queue()
        with BoundedQueue(3, name=index) as q:
            q.put(b"x")
            q.close_input()
            self.assertEqual(q.get(), b"x")
            self.assertIsNone(q.get())
        self.assertIn(index, bpq.list_queues())


class CreditTest(QueueTestCase):
    def test_request_grant(self) -> None:
        with CreditBasedFlowControl(initial_credits=2) as fc:
            self.assertEqual(fc.available_credits(), 2)
            self.assertTrue(fc.send(b"1"))
            self.assertTrue(fc.send(b"2", timeout=1))
            self.assertFalse(fc.send(b"3", timeout=0.1))  # no credit
            self.assertEqual(fc.request_credits(3), 0)
            self.assertEqual(fc.requested, 3)
            self.assertEqual(fc.grant_credits(), 3)
            self.assertEqual(fc.requested, 0)
            self.assertTrue(fc.send(b"3", timeout=0))
            self.assertEqual(fc.available_credits(), 2)
            self.assertEqual([fc.receive(0) for _ in range(3)],
                             [b"1", b"2", b"3"])
            self.assertIsNone(fc.receive(0.05))
            # a sender waiting for credit goes in at the grant
            fc.receiver.revoke(10)
            t = threading.Timer(0.1, fc.grant_credits, (1,))
            t.start()
            self.assertTrue(fc.send(b"4", timeout=5))
            t.join()


class Recorder(Subscriber):
    """Requests batch items at a time; cancels after cancel_after."""

    def __init__(self, batch: int, cancel_after: int | None = None) -> None:
        self.batch = batch
        self.cancel_after = cancel_after
        self.items: list[bytes] = []
        self.errors: list[BaseException] = []
        self.completed = False
        self.subscription: Subscription | None = None

    def on_subscribe(self, subscription: Subscription) -> None:
        self.subscription = subscription
        subscription.request(self.batch)

    def on_next(self, item: bytes) -> None:
        assert self.subscription is not None
        self.items.append(item)
        if self.cancel_after is not None and \
                len(self.items) >= self.cancel_after:
            self.subscription.cancel()
        elif len(self.items) % self.batch == 0:
            self.subscription.request(self.batch)

    def on_error(self, error: BaseException) -> None:
        self.errors.append(error)

    def on_complete(self) -> None:
        self.completed = True


class ReactiveStreamsTest(QueueTestCase):
    def _publish(self, pub: Publisher, n: int,
                 outcome: list[str]) -> threading.Thread:
        def run() -> None:
            try:
                for i in range(n):
                    if not pub.send(b"%d" % i, timeout=10):
                        outcome.append("timeout")
                        return
                pub.complete()
                outcome.append("completed")
            except BrokenPipeError:
                outcome.append("cancelled")
        t = threading.Thread(target=run)
        t.start()
        return t

    def test_request_n_bounds_the_publisher(self) -> None:
        with Publisher() as pub:
            # no demand yet: nothing goes in
            self.assertFalse(pub.send(b"early", timeout=0.05))
            sub = Recorder(batch=3)
            subscription = pub.subscribe(sub)
            self.assertEqual(pub.file.stats.credits_available, 3)
            outcome: list[str] = []
            t = self._publish(pub, 10, outcome)
            self.assertTrue(subscription.run(timeout=10))
            t.join()
            self.assertEqual(sub.items, [b"%d" % i for i in range(10)])
            self.assertTrue(sub.completed)
            self.assertEqual(sub.errors, [])
            self.assertEqual(outcome, ["completed"])
            # never more queued than requested
            self.assertLessEqual(pub.file.stats.credits_available, 3)

    def test_cancel(self) -> None:
        with Publisher() as pub:
            sub = Recorder(batch=2, cancel_after=3)
            subscription = pub.subscribe(sub)
            outcome: list[str] = []
            t = self._publish(pub, 100, outcome)
            self.assertTrue(subscription.run(timeout=10))
            t.join(10)
            self.assertEqual(sub.items, [b"0", b"1", b"2"])
            self.assertTrue(subscription.cancelled)
            self.assertFalse(sub.completed)
            self.assertEqual(outcome, ["cancelled"])
            self.assertEqual(pub.state, bpq.StreamState.CANCELLED)

    def test_error(self) -> None:
        with Publisher() as pub:
            sub = Recorder(batch=5)
            subscription = pub.subscribe(sub)
            pub.send(b"one")
            pub.fail(errno.EPROTO)
            subscription.run(timeout=10)
            self.assertEqual(sub.items, [b"one"])
            self.assertEqual(len(sub.errors), 1)
            self.assertIsInstance(sub.errors[0], ConnectionResetError)
            self.assertEqual(pub.file.stats.stream_error, errno.EPROTO)

    def test_request_zero_is_an_error(self) -> None:
        with Publisher() as pub:
            sub = Recorder(batch=0)
            pub.subscribe(sub)
            self.assertEqual(len(sub.errors), 1)
            self.assertIsInstance(sub.errors[0], ValueError)


class AdaptiveTest(QueueTestCase):
    def test_rate_and_target(self) -> None:
        with AdaptiveBackpressure(target_latency_ms=50, min_rate=100,
                                  max_rate=5000,
                                  adjust_interval_ms=100) as ab:
            self.assertEqual(ab.target_latency_ms, 50)
            ab.target_latency_ms = 20
            self.assertEqual(ab.receiver.config.target_latency_us, 20000)
            for i in range(20):
                self.assertTrue(ab.send(b"%d" % i, timeout=5))
            self.assertEqual([ab.receive(1) for _ in range(20)],
                             [b"%d" % i for i in range(20)])
            rate = ab.current_rate()
            self.assertGreaterEqual(rate, 100)
            self.assertLessEqual(rate, 5000)
            self.assertGreaterEqual(ab.throughput(), 0)


class CongestionTest(QueueTestCase):
    def test_window_grows_on_acks_and_halves_on_loss(self) -> None:
        # no item waits long enough to be a congestion signal of its own
        with CongestionControl(initial_window=4, max_window=64,
                               target_latency_ms=60000) as cc:
            self.assertEqual(cc.window_size, 4)
            for i in range(4):
                self.assertTrue(cc.send(b"%d" % i, timeout=1))
            # the window is full: the fifth waits, in vain
            self.assertFalse(cc.can_send())
            self.assertFalse(cc.send(b"4", timeout=0.1))
            self.assertEqual(cc.in_flight, 4)
            # slow start: each acknowledgment of a window-limited round
            # grows the window by one
            for _ in range(4):
                msg = cc.receive(1)
                assert msg is not None
                self.assertEqual(cc.on_ack(timestamp_ns=msg.timestamp_ns),
                                 1)
            grown = cc.window_size
            self.assertGreater(grown, 4)
            self.assertTrue(cc.can_send())
            self.assertTrue(cc.send(b"5", timeout=1))
            self.assertIsNotNone(cc.receive(1))
            cc.on_loss()
            self.assertLess(cc.window_size, grown)
            self.assertEqual(cc.ssthresh, cc.window_size)
            self.assertEqual(cc.receiver.stats.congestion_events, 1)
            self.assertEqual(cc.in_flight, 0)

    def test_reactive_names(self) -> None:
        self.assertIs(ReactivePublisher, Publisher)


class KafkaTest(QueueTestCase):
    def test_poll_bounded_by_max_poll_records(self) -> None:
        index = self.new_queue()
        w = self.open(index, "w")
        w.send_batch([b"r%d" % i for i in range(25)])
        with KafkaStyleConsumer(index, max_poll_records=10) as consumer:
            sizes = [len(consumer.poll(1)) for _ in range(3)]
            self.assertEqual(sizes, [10, 10, 5])
            self.assertEqual(consumer.poll(0.05), [])
            self.assertFalse(consumer.end_of_stream)
            self.assertEqual(consumer.uncommitted, 25)
            self.assertEqual(consumer.commit(), 25)
            self.assertEqual(consumer.queue.stats.acked_msgs, 25)
            w.send_batch([b"last%d" % i for i in range(12)])
            w.shutdown(complete=True)
            self.assertEqual([len(b) for b in consumer], [10, 2])
            self.assertTrue(consumer.end_of_stream)
        with self.assertRaises(ValueError):
            KafkaStyleConsumer(index, max_poll_records=0)


class StreamProcessorTest(QueueTestCase):
    def test_stages(self) -> None:
        def only_even(item: bytes) -> bytes | None:
            return item if int(item) % 2 == 0 else None

        stages = [only_even, lambda b: b"<" + b + b">", bytes.upper]
        with BackpressureStreamProcessor(stages, capacity=4) as sp:
            sp.start()
            submitted: list[bool] = []

            def feed() -> None:
                for i in range(40):
                    submitted.append(sp.submit(b"%d" % i, timeout=10))
                sp.close_input()

            feeder = threading.Thread(target=feed)
            feeder.start()
            # taken slowly: the queues fill, each holding the one before
            time.sleep(0.3)
            out = list(sp.results(timeout=10))
            feeder.join(10)
            self.assertEqual(submitted, [True] * 40)
            self.assertEqual(out, [b"<%d>" % i for i in range(0, 40, 2)])
            sp.join(10)
            self.assertEqual(sp.errors, [])
            held = sum(q.stats.backpressure_applied for q in sp.queues)
            self.assertGreater(held, 0)

    def test_a_failing_stage_fails_the_stream(self) -> None:
        def boom(item: bytes) -> bytes:
            if item == b"3":
                raise ValueError("bad item")
            return item

        with BackpressureStreamProcessor([boom], capacity=8) as sp:
            sp.start()
            try:
                for i in range(5):
                    sp.submit(b"%d" % i, timeout=10)
            except BrokenPipeError:     # the failed stage cancelled them
                pass
            got: list[bytes] = []
            with self.assertRaises(ConnectionResetError):
                for item in sp.results(timeout=10):
                    got.append(item)
            self.assertEqual(got, [b"0", b"1", b"2"])
            self.assertEqual(len(sp.errors), 1)
