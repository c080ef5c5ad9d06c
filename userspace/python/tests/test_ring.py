# SPDX-License-Identifier: MIT
"""bpq.Ring's peek, advance, recv and end of stream through the real
libbpq, on a ring laid out by hand in ordinary memory: what the kernel
would map, without the module (as userspace/tests/host_test.c does)."""

from __future__ import annotations

import ctypes
import struct
import unittest

import support  # noqa: F401  (the package and libbpq of the source tree)

import bpq
from bpq import _lib

RING_BYTES = 4096
CTL_BYTES = 4096
# struct bpq_ring_ctl: head at 0, tail at 64, flags, ring_bytes, sync_head,
# end at 88; struct bpq_ring_rec: len, flags, seq, timestamp_ns, lost
CTL_TAIL, CTL_RING_BYTES, CTL_END = 64, 76, 88
REC = struct.Struct("=IIQQQ")


class FakeRing:
    """A control page and a data area that bpq.Ring reads as a ring."""

    def __init__(self) -> None:
        self.mem = ctypes.create_string_buffer(CTL_BYTES + RING_BYTES)
        self.tail = 0
        struct.pack_into("=I", self.mem, CTL_RING_BYTES, RING_BYTES)
        self.ring = bpq.Ring.__new__(bpq.Ring)
        self.ring._view = None
        self.ring._ring = _lib.BpqRing(
            fd=-1, ctl=ctypes.addressof(self.mem),
            data=ctypes.addressof(self.mem) + CTL_BYTES,
            mask=RING_BYTES - 1, head=0, map_len=0)

    def put(self, payload: bytes, seq: int, lost: int = 0) -> None:
        at = CTL_BYTES + self.tail
        REC.pack_into(self.mem, at, len(payload), 0, seq, 1000 + seq, lost)
        self.mem[at + REC.size:at + REC.size + len(payload)] = payload
        self.tail += REC.size + (len(payload) + 7) // 8 * 8
        struct.pack_into("=Q", self.mem, CTL_TAIL, self.tail)

    def end(self, state: int) -> None:
        struct.pack_into("=I", self.mem, CTL_END, state)

    def head(self) -> int:
        return struct.unpack_from("=Q", self.mem, 0)[0]


class RingTest(unittest.TestCase):
    def setUp(self) -> None:
        self.fake = FakeRing()
        self.ring = self.fake.ring

    def tearDown(self) -> None:
        self.ring._ring.ctl = None     # nothing to unmap

    def test_empty(self) -> None:
        with self.assertRaises(BlockingIOError):
            self.ring.peek()

    def test_peek_in_place_then_advance(self) -> None:
        self.fake.put(b"hello", seq=1, lost=2)
        msg = self.ring.peek()
        assert msg is not None
        self.assertEqual(bytes(msg.data), b"hello")
        self.assertTrue(msg.data.readonly)
        self.assertEqual((msg.seq, msg.timestamp_ns, msg.lost),
                         (1, 1001, 2))
        self.ring.advance()
        self.assertEqual(self.fake.head(), REC.size + 8)
        with self.assertRaises(ValueError):     # released by the advance
            bytes(msg.data)
        with self.assertRaises(BlockingIOError):
            self.ring.peek()

    def test_recv_and_iteration_to_the_end(self) -> None:
        for i in range(1, 4):
            self.fake.put(b"m%d" % i, seq=i)
        self.fake.end(bpq.StreamState.COMPLETED)
        first = self.ring.recv(timeout=0)
        self.assertEqual(first, bpq.Message(b"m1", 1, 1001, 0))
        self.assertEqual([bytes(m.data) for m in self.ring], [b"m2", b"m3"])
        self.assertIsNone(self.ring.recv(timeout=0))

    def test_failed_stream(self) -> None:
        self.fake.end(bpq.StreamState.FAILED)
        with self.assertRaises(ConnectionResetError):
            self.ring.peek()


if __name__ == "__main__":
    unittest.main()
