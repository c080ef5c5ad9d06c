# SPDX-License-Identifier: MIT
"""bpq.Queue and bpq.control against the module: every method, and each
errno the module gives as its exception."""

from __future__ import annotations

import ctypes
import errno
import os
import time

from helpers import QueueTestCase, sysfs

import bpq


class MessagesTest(QueueTestCase):
    def test_send_recv_info(self) -> None:
        q = self.open(self.new_queue())
        before = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
        self.assertEqual(q.send(b"first"), 5)
        self.assertEqual(q.send(bytearray(b"second"), timeout=1), 6)
        self.assertEqual(q.send(memoryview(b"third"), timeout=0), 5)
        a, b, c = q.recv(), q.recv(timeout=1), q.recv(timeout=0)
        assert a is not None and b is not None and c is not None
        self.assertEqual([a.data, b.data, c.data],
                         [b"first", b"second", b"third"])
        self.assertEqual([b.seq - a.seq, c.seq - b.seq], [1, 1])
        self.assertEqual(a.lost, 0)
        self.assertGreaterEqual(a.timestamp_ns, before)
        self.assertLessEqual(a.timestamp_ns, b.timestamp_ns)

    def test_recv_grows_to_max_msg_size(self) -> None:
        q = self.open(self.new_queue(max_msg_size=64))
        self.assertEqual(q.config.max_msg_size, 64)
        # max_msg_size raised by another file after a receive sized 64
        q.send(b"x")
        self.assertEqual(q.recv(timeout=1).data, b"x")  # type: ignore
        with bpq.open(q.index, "ioctl") as other:
            other.configure(max_msg_size=4096)
        q.send(b"y" * 3000)
        msg = q.recv(timeout=1)
        assert msg is not None
        self.assertEqual(msg.data, b"y" * 3000)

    def test_batches(self) -> None:
        q = self.open(self.new_queue())
        msgs = [f"m{i}".encode() for i in range(10)]
        self.assertEqual(q.send_batch(msgs), 10)
        first = q.recv_batch(4, timeout=1)
        self.assertEqual([m.data for m in first], msgs[:4])
        # max_bytes: "m4" + "m5" fit in 5 bytes, "m6" not
        self.assertEqual([m.data for m in q.recv_batch(64, max_bytes=5)],
                         msgs[4:6])
        rest = q.recv_batch(64, timeout=0)
        self.assertEqual([m.data for m in rest], msgs[6:])
        self.assertEqual([m.seq for m in first + rest],
                         sorted(m.seq for m in first + rest))
        with self.assertRaises(TimeoutError):
            q.recv_batch(8, timeout=0.05)
        # more than one batch call's 1024 records
        big = [b"%d" % i for i in range(1500)]
        q.configure(capacity_msgs=2000)
        self.assertEqual(q.send_batch(big), 1500)
        got: list[bytes] = []
        while len(got) < 1500:
            got += [m.data for m in q.recv_batch(1024, timeout=1)]
        self.assertEqual(got, big)

    def test_iteration_ends_at_end_of_stream(self) -> None:
        q = self.open(self.new_queue())
        q.send_batch([b"a", b"b"])
        q.shutdown(complete=True)
        self.assertEqual([m.data for m in q], [b"a", b"b"])
        self.assertIsNone(q.recv())
        self.assertEqual(q.recv_batch(), [])


class SettingsTest(QueueTestCase):
    def test_config(self) -> None:
        index = self.new_queue()
        q = self.open(index, "ioctl")
        config = q.configure(capacity_msgs=7, strategy="drop-oldest",
                             high_watermark=80, low_watermark=40)
        self.assertEqual(q.config, config)
        self.assertEqual(q.config.capacity_msgs, 7)
        self.assertEqual(q.config.strategy, bpq.Strategy.DROP_OLDEST)
        self.assertEqual(sysfs(index, "capacity_msgs"), "7")
        self.assertEqual(sysfs(index, "strategy"), "drop-oldest")
        config.capacity_msgs = 9
        q.config = config
        self.assertEqual(sysfs(index, "capacity_msgs"), "9")
        self.assertEqual(q.index, index)
        self.assertEqual(q.name, sysfs(index, "name"))
        self.assertEqual(bpq.lookup(q.name), index)
        self.assertIn(index, bpq.list_queues())

    def test_stats(self) -> None:
        q = self.open(self.new_queue(capacity_msgs=4,
                                     strategy="drop-oldest"))
        q.send_batch([b"abc"] * 6)
        st = q.stats
        self.assertEqual((st.depth_msgs, st.depth_bytes), (4, 12))
        self.assertEqual((st.enqueued_msgs, st.dropped_oldest), (6, 2))
        self.assertEqual(st.utilization, 100)
        self.assertEqual(st.stream, bpq.StreamState.OPEN)
        self.assertEqual(len(st.latency_hist), 32)
        msg = q.recv()
        assert msg is not None
        self.assertEqual(msg.lost, 2)
        self.assertEqual(q.stats.dequeued_msgs, 1)
        q.reset_stats()
        self.assertEqual(q.stats.dequeued_msgs, 0)
        self.assertEqual(q.stats.depth_msgs, 3)

    def test_grants(self) -> None:
        q = self.open(self.new_queue(strategy="credit", auto_credit=0))
        q.grant_set(5)
        self.assertEqual(q.stats.credits_available, 5)
        q.grant(3)
        self.assertEqual(q.stats.credits_available, 8)
        q.revoke(2)
        self.assertEqual(q.stats.credits_available, 6)
        q.revoke(100)
        self.assertEqual(q.stats.credits_available, 0)
        with self.assertRaises(TimeoutError):
            q.send(b"no credit", timeout=0.05)
        q.grant(1)
        q.send(b"one credit", timeout=0)
        self.assertEqual(q.stats.credits_available, 0)
        self.assertGreaterEqual(q.stats.credit_starvation, 1)

    def test_flush(self) -> None:
        q = self.open(self.new_queue())
        q.send_batch([b"1", b"2", b"3"])
        self.assertEqual(q.flush(), 3)
        self.assertEqual(q.stats.depth_msgs, 0)
        self.assertEqual(q.stats.flushed, 3)
        self.assertEqual(q.flush(), 0)


class StreamTest(QueueTestCase):
    def test_complete(self) -> None:
        index = self.new_queue()
        w, r = self.open(index, "w"), self.open(index, "r")
        w.send(b"last")
        self.assertEqual(w.shutdown(complete=True), 0)
        self.assertEqual(w.shutdown(complete=True), 0)   # again: nothing
        with self.assertRaises(BrokenPipeError):
            w.send(b"late")
        self.assertEqual(r.stats.stream, bpq.StreamState.COMPLETED)
        self.assertEqual(sysfs(index, "stream"), "completed")
        self.assertEqual([m.data for m in r], [b"last"])
        # open again once drained
        w.shutdown(reopen=True)
        w.send(b"again")
        self.assertEqual(r.recv().data, b"again")  # type: ignore
        self.assertEqual(r.stats.stream_epoch, 1)

    def test_fail(self) -> None:
        index = self.new_queue()
        w, r = self.open(index, "w"), self.open(index, "r")
        w.send(b"before")
        w.shutdown(fail=errno.EIO)
        self.assertEqual(r.stats.stream, bpq.StreamState.FAILED)
        self.assertEqual(r.stats.stream_error, errno.EIO)
        self.assertEqual(r.recv().data, b"before")  # type: ignore
        with self.assertRaises(ConnectionResetError):
            r.recv()
        with self.assertRaises(bpq.BusyError):
            w.shutdown(complete=True)

    def test_cancel(self) -> None:
        index = self.new_queue()
        w, r = self.open(index, "w"), self.open(index, "r")
        w.send_batch([b"a", b"b", b"c"])
        self.assertEqual(r.shutdown(cancel=True), 0)
        with self.assertRaises(BrokenPipeError):
            w.send(b"d")
        self.assertEqual(r.stats.stream, bpq.StreamState.CANCELLED)
        self.assertEqual(r.recv().data, b"a")  # type: ignore
        self.assertEqual(r.shutdown(cancel=True, discard=True), 2)
        self.assertIsNone(r.recv())
        with self.assertRaises(bpq.WrongModeError):
            w.shutdown(cancel=True)     # the consumer's, on a writer


class AckTriggerRingTest(QueueTestCase):
    def test_ack(self) -> None:
        q = self.open(self.new_queue())
        q.send_batch([b"1", b"2", b"3"])
        msgs = q.recv_batch(3)
        self.assertEqual(q.stats.unacked, 3)
        self.assertEqual(q.ack(timestamp_ns=msgs[0].timestamp_ns), 1)
        self.assertEqual(q.ack(1, nack=True), 1)
        self.assertEqual(q.ack(5), 1)        # 4 stale
        st = q.stats
        self.assertEqual((st.acked_msgs, st.nacked, st.unacked), (3, 1, 0))
        self.assertEqual(st.stale_acks, 4)
        self.assertEqual(sum(st.processing_hist), 1)

    def test_credit_back_on_ack(self) -> None:
        q = self.open(self.new_queue(strategy="credit", auto_credit=2))
        q.grant_set(1)
        q.send(b"x")
        self.assertEqual(q.stats.credits_available, 0)
        q.recv()
        q.ack()
        self.assertEqual(q.stats.credits_available, 1)

    def test_trigger(self) -> None:
        q = self.open(self.new_queue(capacity_msgs=4))
        q.trigger("utilization", threshold=50, window_ms=500)
        self.assertFalse(q.wait_trigger(timeout=0.2))
        with self.assertRaises(bpq.BusyError):
            q.trigger(bpq.TriggerMetric.DROPS, 1, 500)
        q.send_batch([b"1", b"2", b"3"])
        self.assertTrue(q.wait_trigger(timeout=5))
        q.clear_trigger()
        q.trigger(bpq.TriggerMetric.DROPS, 1, 500)
        q.clear_trigger()

    def test_ring(self) -> None:
        index = self.new_queue(max_msg_size=256)
        q = self.open(index, "rw")
        w = self.open(index, "w")
        ring = q.ring(4096)
        w.send_batch([b"r1", b"r2", b"r3"])
        msg = ring.recv(timeout=1)
        assert msg is not None
        self.assertEqual(msg.data, b"r1")
        peeked = ring.peek()
        assert peeked is not None
        self.assertEqual(bytes(peeked.data), b"r2")
        self.assertEqual(peeked.seq, msg.seq + 1)
        ring.advance()
        with self.assertRaises(bpq.BusyError):
            q.recv(timeout=0)
        w.shutdown(complete=True)
        self.assertEqual([bytes(m.data) for m in ring], [b"r3"])
        self.assertIsNone(ring.recv())
        with self.assertRaises(bpq.BusyError):
            q.ring(4096)
        q.close()
        self.assertTrue(ring.closed)


class ErrnoTest(QueueTestCase):
    """Each errno the module gives, as its exception."""

    def test_eagain(self) -> None:
        q = self.open(self.new_queue(), nonblock=True)
        with self.assertRaises(BlockingIOError) as cm:
            q.recv()
        self.assertEqual(cm.exception.errno, errno.EAGAIN)

    def test_epipe(self) -> None:
        q = self.open(self.new_queue())
        q.shutdown(complete=True)
        with self.assertRaises(BrokenPipeError):
            q.send(b"x", timeout=1)
        with self.assertRaises(BrokenPipeError):
            q.send_batch([b"x"])

    def test_etimedout(self) -> None:
        q = self.open(self.new_queue(capacity_msgs=1))
        with self.assertRaises(TimeoutError):
            q.recv(timeout=0.05)
        q.send(b"full")
        start = time.monotonic()
        with self.assertRaises(TimeoutError) as cm:
            q.send(b"no room", timeout=0.1)
        self.assertEqual(cm.exception.errno, errno.ETIMEDOUT)
        self.assertGreaterEqual(time.monotonic() - start, 0.09)

    def test_enoent(self) -> None:
        with self.assertRaises(FileNotFoundError):
            bpq.open("no-such-queue.pyt")
        index = self.new_queue()
        bpq.destroy(index)
        with self.assertRaises(FileNotFoundError):
            bpq.destroy(index)
        with self.assertRaises(FileNotFoundError):
            bpq.lookup(index)

    def test_eexist(self) -> None:
        index = self.new_queue()
        with self.assertRaises(FileExistsError):
            bpq.create(sysfs(index, "name"))

    def test_eperm_without_cap_sys_admin(self) -> None:
        pid = os.fork()
        if pid == 0:        # the child: CAP_SYS_ADMIN dropped, then create
            code = 3
            try:
                drop_cap_sys_admin()
                bpq.create(f"pyt-eperm-{os.getpid()}")
                code = 1
            except PermissionError as e:
                code = 0 if e.errno == errno.EPERM else 2
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        self.assertEqual(os.waitstatus_to_exitcode(status), 0,
                         "1: created anyway, 2: EACCES, 3: capset failed")

    def test_enobufs(self) -> None:
        q = self.open(self.new_queue(capacity_msgs=1,
                                     strategy="drop-newest"))
        q.send(b"in")
        with self.assertRaises(bpq.QueueFullError) as cm:
            q.send(b"refused")
        self.assertEqual(cm.exception.errno, errno.ENOBUFS)
        self.assertEqual(q.stats.dropped_newest, 1)

    def test_emsgsize(self) -> None:
        q = self.open(self.new_queue(max_msg_size=16))
        with self.assertRaises(bpq.MessageTooLongError):
            q.send(b"x" * 17)
        q.send(b"12345")
        with self.assertRaises(bpq.MessageTooLongError):
            q.recv(max_size=2)
        self.assertEqual(q.recv(max_size=5).data, b"12345")  # type: ignore

    def test_enodev(self) -> None:
        index = self.new_queue()
        q = self.open(index)
        bpq.destroy(index)
        with self.assertRaises(bpq.QueueGoneError):
            q.send(b"x")
        with self.assertRaises(bpq.QueueGoneError):
            q.stats

    def test_econnreset(self) -> None:
        q = self.open(self.new_queue())
        q.shutdown(fail=errno.EPROTO)
        with self.assertRaises(ConnectionResetError):
            q.recv()
        self.assertEqual(q.stats.stream_error, errno.EPROTO)

    def test_einval_ebadf(self) -> None:
        index = self.new_queue()
        with self.assertRaises(bpq.InvalidArgumentError):
            self.open(index, "ioctl").configure(capacity_msgs=0)
        with self.assertRaises(bpq.WrongModeError):
            self.open(index, "r").send(b"x")


# capget/capset(2), version 3: two 32-bit halves of each set
_CAPGET, _CAPSET = 125, 126          # x86_64
_CAP_VERSION_3 = 0x20080522
_CAP_SYS_ADMIN = 21


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32),
                ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


def drop_cap_sys_admin() -> None:
    """Drop CAP_SYS_ADMIN from this process's effective and permitted
    sets, staying root otherwise."""
    libc = ctypes.CDLL(None, use_errno=True)
    hdr = _CapHeader(_CAP_VERSION_3, 0)
    data = (_CapData * 2)()
    if libc.syscall(_CAPGET, ctypes.byref(hdr), data) != 0:
        raise OSError(ctypes.get_errno(), "capget")
    data[0].effective &= ~(1 << _CAP_SYS_ADMIN)
    data[0].permitted &= ~(1 << _CAP_SYS_ADMIN)
    if libc.syscall(_CAPSET, ctypes.byref(hdr), data) != 0:
        raise OSError(ctypes.get_errno(), "capset")
