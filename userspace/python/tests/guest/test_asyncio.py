# SPDX-License-Identifier: MIT
"""bpq.asyncio against the module: producers and consumers as tasks,
cancellation, the end of the stream, the pressure's edges."""

from __future__ import annotations

import asyncio
import subprocess
import threading
import unittest

from helpers import QueueTestCase

import bpq
import bpq.asyncio

PRODUCERS = CONSUMERS = 4
PER_PRODUCER = 200


def hold(index: int, change: str) -> None:
    """echo +admin > /sys/class/bpq/bpqN/hold, by the shell."""
    subprocess.run(["sh", "-c", f"echo {change} > "
                    f"/sys/class/bpq/bpq{index}/hold"], check=True)


class AsyncTest(QueueTestCase, unittest.IsolatedAsyncioTestCase):
    async def asyncSetUp(self) -> None:
        # the test loop runs in debug mode: keep its checks, but not its
        # reports of callbacks slow only because the VM is emulated
        asyncio.get_running_loop().slow_callback_duration = 5.0

    async def test_producers_consumers_exactly_once(self) -> None:
        index = self.new_queue(capacity_msgs=8)
        producer = bpq.asyncio.open(index, "w")
        consumer = bpq.asyncio.open(index, "r")
        self.addCleanup(producer.close)
        self.addCleanup(consumer.close)
        got: list[list[bytes]] = [[] for _ in range(CONSUMERS)]

        async def produce(p: int) -> None:
            for i in range(PER_PRODUCER):
                await producer.send(f"{p}:{i}".encode())

        async def consume(c: int) -> None:
            async for msg in consumer:
                got[c].append(msg.data)

        consumers = [asyncio.create_task(consume(c))
                     for c in range(CONSUMERS)]
        await asyncio.wait_for(
            asyncio.gather(*(produce(p) for p in range(PRODUCERS))), 120)
        producer.shutdown(complete=True)
        await asyncio.wait_for(asyncio.gather(*consumers), 120)

        everything = [m for part in got for m in part]
        expected = [f"{p}:{i}".encode() for p in range(PRODUCERS)
                    for i in range(PER_PRODUCER)]
        self.assertEqual(len(everything), len(expected))
        self.assertEqual(sorted(everything), sorted(expected))
        self.assertEqual(consumer.stats.dequeued_msgs, len(expected))

    async def test_cancelled_recv_loses_nothing(self) -> None:
        index = self.new_queue()
        q = bpq.asyncio.open(index)
        self.addCleanup(q.close)
        waiting = asyncio.create_task(q.recv())
        await asyncio.sleep(0.1)
        self.assertFalse(waiting.done())
        waiting.cancel()
        with self.assertRaises(asyncio.CancelledError):
            await waiting
        await q.send(b"after the cancel")
        self.assertEqual(q.stats.dequeued_msgs, 0)
        msg = await q.recv(timeout=5)
        assert msg is not None
        self.assertEqual(msg.data, b"after the cancel")

    async def test_cancel_after_wakeup(self) -> None:
        """Woken by the message, cancelled before it ran: the message
        stays for the next receive."""
        index = self.new_queue()
        q = bpq.asyncio.open(index)
        self.addCleanup(q.close)
        waiting = asyncio.create_task(q.recv())
        await asyncio.sleep(0.05)
        with bpq.open(index, "w") as w:
            w.send(b"kept")
        # let the loop see the file readable, then cancel at once
        await asyncio.sleep(0)
        waiting.cancel()
        try:
            first = await waiting
        except asyncio.CancelledError:
            first = None
        msg = first or await q.recv(timeout=5)
        assert msg is not None
        self.assertEqual(msg.data, b"kept")
        self.assertEqual(q.stats.dequeued_msgs, 1)

    async def test_timeout(self) -> None:
        q = bpq.asyncio.open(self.new_queue())
        self.addCleanup(q.close)
        with self.assertRaises(TimeoutError):
            await q.recv(timeout=0.1)
        self.assertEqual(q.stats.dequeued_msgs, 0)

    async def test_async_for_ends_at_end_of_stream(self) -> None:
        q = bpq.asyncio.open(self.new_queue())
        self.addCleanup(q.close)
        self.assertEqual(await q.send_batch([b"a", b"b", b"c"]), 3)
        q.shutdown(complete=True)
        self.assertEqual([m.data async for m in q], [b"a", b"b", b"c"])
        self.assertIsNone(await q.recv())
        with self.assertRaises(BrokenPipeError):
            await q.send(b"late")

    async def test_end_of_stream_wakes_a_waiting_consumer(self) -> None:
        index = self.new_queue()
        q = bpq.asyncio.open(index, "r")
        self.addCleanup(q.close)
        waiting = asyncio.create_task(q.recv())
        await asyncio.sleep(0.05)
        with bpq.open(index, "w") as w:
            w.shutdown(fail=5)
        with self.assertRaises(ConnectionResetError):
            await asyncio.wait_for(waiting, 5)

    async def test_send_waits_for_room(self) -> None:
        index = self.new_queue(capacity_msgs=1)
        q = bpq.asyncio.open(index)
        self.addCleanup(q.close)
        await q.send(b"1")
        sending = asyncio.create_task(q.send(b"2"))
        await asyncio.sleep(0.1)
        self.assertFalse(sending.done())
        self.assertEqual((await q.recv()).data, b"1")  # type: ignore
        await asyncio.wait_for(sending, 5)
        self.assertEqual((await q.recv()).data, b"2")  # type: ignore
        with self.assertRaises(TimeoutError):
            await q.recv_batch(timeout=0.05)

    async def test_pressure_changed_on_hold(self) -> None:
        index = self.new_queue()
        q = bpq.asyncio.open(index)
        self.addCleanup(q.close)
        self.assertFalse(q.pressure)
        watching = asyncio.create_task(q.pressure_changed())
        await asyncio.sleep(0.1)
        self.assertFalse(watching.done())
        # the shell's write, from a thread: the loop stays free
        await asyncio.to_thread(hold, index, "+admin")
        self.assertTrue(await asyncio.wait_for(watching, 5))
        await asyncio.to_thread(hold, index, "-admin")
        self.assertFalse(await asyncio.wait_for(q.pressure_changed(), 5))

    async def test_pressure_changed_on_watermarks(self) -> None:
        index = self.new_queue(capacity_msgs=10, high_watermark=50,
                               low_watermark=20)
        q = bpq.asyncio.open(index)
        self.addCleanup(q.close)
        watching = asyncio.create_task(q.pressure_changed(timeout=10))
        await asyncio.sleep(0.05)
        await q.send_batch([b"x"] * 5)
        self.assertTrue(await watching)
        await q.recv_batch(4)
        self.assertFalse(await q.pressure_changed(timeout=10))
        with self.assertRaises(TimeoutError):
            await q.pressure_changed(timeout=0.2)

    async def test_many_waiters_one_file(self) -> None:
        """Receivers sharing one file: one message wakes them, one takes
        it, the others wait on."""
        index = self.new_queue()
        q = bpq.asyncio.open(index)
        self.addCleanup(q.close)
        tasks = [asyncio.create_task(q.recv(timeout=10)) for _ in range(3)]
        await asyncio.sleep(0.05)
        done = threading.Event()

        def produce() -> None:
            with bpq.open(index, "w") as w:
                for i in range(3):
                    w.send(b"%d" % i)
            done.set()

        await asyncio.to_thread(produce)
        got = sorted(m.data for m in await asyncio.gather(*tasks) if m)
        self.assertEqual(got, [b"0", b"1", b"2"])
        self.assertTrue(done.is_set())


if __name__ == "__main__":
    unittest.main()
