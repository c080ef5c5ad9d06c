# SPDX-License-Identifier: MIT
"""One open bpq queue: bpq.open() and the Queue class.

Timeouts are in seconds (float): None waits as the queue and the file say
(forever, or the queue's write_timeout_ms for a writer; not at all on a
file opened with nonblock=True), 0 never waits (BlockingIOError or
TimeoutError at once), > 0 bounds the wait (TimeoutError). End of a
stream (a queue that was shut down and drained) is None from recv(), an
empty list from recv_batch() and the end of iteration.
"""

from __future__ import annotations

import abc
import ctypes
import dataclasses
import errno
import math
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Any, NamedTuple, Self

from ._lib import BPQ_NAME_MAX, BpqConfig, BpqMsgInfo, BpqRing, BpqStats, \
    Iovec, lib
from .errors import check
from .names import TriggerMetric, ack_mode_parse, hangup_parse, \
    read_mode_parse, strategy_parse, trigger_parse

INT_MAX = 2**31 - 1
BATCH_MAX = 1024            # records of one batch send or receive
BATCH_BYTES_MIN = 64 << 10  # default room of a batch receive

# open(2) access modes by name; "ioctl" is access mode 3 (neither side)
MODES = {"r": os.O_RDONLY, "w": os.O_WRONLY, "rw": os.O_RDWR, "ioctl": 3}

# BPQ_GRANT_*, BPQ_SHUTDOWN_*, BPQ_ACK_*
GRANT_SET = 1 << 0
GRANT_REVOKE = 1 << 1
SHUTDOWN_COMPLETE = 1 << 0
SHUTDOWN_FAIL = 1 << 1
SHUTDOWN_CANCEL = 1 << 2
SHUTDOWN_DISCARD = 1 << 3
SHUTDOWN_REOPEN = 1 << 4
ACK_NACK = 1 << 0
ACK_TIMESTAMP = 1 << 1

# Config fields that take a name as well as a number, in configure()
_PARSERS: dict[str, Callable[[str], int]] = {
    "strategy": strategy_parse,
    "hangup": hangup_parse,
    "ack_mode": ack_mode_parse,
    "read_mode": read_mode_parse,
}


class Message(NamedTuple):
    """One message received, with what struct bpq_msg_info says of it."""
    data: bytes
    seq: int
    timestamp_ns: int
    lost: int


def _message(data: bytes, info: BpqMsgInfo) -> Message:
    return Message(data, info.seq, info.timestamp_ns, info.lost)


@dataclass
class Config:
    """struct bpq_config without size, flags and __reserved. Change
    fields and assign it to Queue.config, or call Queue.configure()."""
    strategy: int
    capacity_msgs: int
    capacity_bytes: int
    max_msg_size: int
    high_watermark: int
    low_watermark: int
    write_timeout_ms: int
    auto_credit: int
    target_latency_us: int
    min_rate: int
    max_rate: int
    adjust_interval_ms: int
    hangup: int
    ack_mode: int
    initial_cwnd: int
    min_cwnd: int
    max_cwnd: int
    initial_ssthresh: int
    ack_timeout_ms: int
    read_mode: int
    increase_pct: int
    decrease_pct: int

    @classmethod
    def from_c(cls, c: BpqConfig) -> Config:
        return cls(**{f.name: getattr(c, f.name)
                      for f in dataclasses.fields(cls)})

    def to_c(self) -> BpqConfig:
        c = BpqConfig()
        c.size = ctypes.sizeof(c)
        for f in dataclasses.fields(self):
            setattr(c, f.name, int(getattr(self, f.name)))
        return c


@dataclass(frozen=True)
class Stats:
    """struct bpq_stats without size, flags and padding; the histograms
    as tuples of BPQ_LATENCY_BUCKETS counts."""
    depth_msgs: int
    depth_bytes: int
    credits_available: int
    utilization: int
    pressure: int
    rate: int
    throughput: int
    enqueued_msgs: int
    enqueued_bytes: int
    dequeued_msgs: int
    dequeued_bytes: int
    dropped_newest: int
    dropped_oldest: int
    flushed: int
    backpressure_applied: int
    blocked_ns: int
    throttled_ns: int
    timeouts: int
    credit_starvation: int
    credit_starved_ns: int
    latency_hist: tuple[int, ...]
    stream: int
    stream_error: int
    stream_epoch: int
    readers: int
    writers: int
    unacked: int
    acked_msgs: int
    nacked: int
    stale_acks: int
    cwnd: int
    ssthresh: int
    inflight: int
    window_state: int
    congestion_events: int
    ack_timeouts: int
    cwnd_limited_ns: int
    processing_hist: tuple[int, ...]
    partial_reads: int
    holds: int
    watermark: int
    held_ns: int
    head_age_us: int
    writers_waiting: int
    stall_some_us: int
    stall_full_us: int

    @classmethod
    def from_c(cls, c: BpqStats) -> Stats:
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            v = getattr(c, f.name)
            values[f.name] = v if isinstance(v, int) else tuple(v)
        return cls(**values)


def timeout_ms(timeout: float | None) -> int:
    """A timeout in seconds as libbpq's milliseconds."""
    if timeout is None:
        return -1
    if timeout <= 0:
        return 0
    return min(math.ceil(timeout * 1000), INT_MAX)


def _waiting(call: Callable[[int], Any], timeout: float | None) -> int:
    """call(timeout_ms), again after EINTR (as PEP 475 has Python's own
    calls do, once signal handlers ran) with the time left."""
    deadline = None
    if timeout is not None and timeout > 0:
        deadline = time.monotonic() + timeout
    ms = timeout_ms(timeout)
    while True:
        ret = int(call(ms))
        if ret != -errno.EINTR:
            return ret
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                return -errno.ETIMEDOUT
            ms = timeout_ms(left)


def _bytes(data: bytes | bytearray | memoryview) -> bytes:
    return data if isinstance(data, bytes) else bytes(data)


class _Closing(abc.ABC):
    """close() at the end of a with statement."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release what the object holds."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None,
                 exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


class Queue(_Closing):
    """An open /dev/bpqN. Close it with close() or a with statement."""

    def __init__(self, fd: int, path: str | None = None) -> None:
        self._fd = fd
        self.path = path
        self._max_msg_size = 0
        self._buf: ctypes.Array[ctypes.c_char] | None = None
        self._rings: list[Ring] = []

    # -- the file ------------------------------------------------------

    def fileno(self) -> int:
        if self._fd < 0:
            raise ValueError("operation on a closed bpq queue")
        return self._fd

    @property
    def closed(self) -> bool:
        return self._fd < 0

    def close(self) -> None:
        """Tear down the file's ring, if any, and close it."""
        for ring in self._rings:
            ring.close()
        self._rings.clear()
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            os.close(fd)

    def __del__(self) -> None:
        if getattr(self, "_fd", -1) >= 0:
            self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"fd={self._fd}"
        return f"<bpq.Queue {self.path!r} {state}>"

    @property
    def index(self) -> int:
        """N of /dev/bpqN."""
        return check(lib().bpq_index_of(self.fileno()))

    @property
    def name(self) -> str:
        """The queue's name (its sysfs attribute name)."""
        buf = ctypes.create_string_buffer(BPQ_NAME_MAX + 2)
        check(lib().bpq_queue_name(self.index, buf, len(buf)))
        return buf.value.decode()

    # -- messages ------------------------------------------------------

    def send(self, data: bytes | bytearray | memoryview,
             timeout: float | None = None) -> int:
        """Queue one message; returns its length."""
        fd, buf = self.fileno(), _bytes(data)
        return check(_waiting(
            lambda ms: lib().bpq_send(fd, buf, len(buf), ms), timeout))

    def _recv_buffer(self, size: int) -> ctypes.Array[ctypes.c_char]:
        if self._buf is None or len(self._buf) < size:
            self._buf = ctypes.create_string_buffer(size)
        return self._buf

    def _msg_size(self, refresh: bool = False) -> int:
        if refresh or not self._max_msg_size:
            self._max_msg_size = self.config.max_msg_size
        return self._max_msg_size

    def recv(self, timeout: float | None = None,
             max_size: int | None = None) -> Message | None:
        """The oldest message, or None at the end of the stream. Without
        max_size, room for the queue's max_msg_size."""
        fd, info = self.fileno(), BpqMsgInfo()
        size = max_size or self._msg_size()
        while True:
            buf = self._recv_buffer(size)
            ret = _waiting(lambda ms: lib().bpq_recv(
                fd, buf, size, ctypes.byref(info), ms), timeout)
            # max_msg_size may have grown since we last looked
            if ret == -errno.EMSGSIZE and max_size is None and \
                    self._msg_size(refresh=True) > size:
                size = self._max_msg_size
                continue
            break
        if check(ret) == 0:
            return None
        return _message(ctypes.string_at(buf, ret), info)

    def __iter__(self) -> Iterator[Message]:
        """Every message until the end of the stream, waiting for each."""
        while (msg := self.recv()) is not None:
            yield msg

    def send_batch(self, messages: Iterable[bytes | bytearray | memoryview],
                   timeout: float | None = None) -> int:
        """Queue the messages in order; returns how many were queued
        (an error only if none was)."""
        fd = self.fileno()
        msgs = [_bytes(m) for m in messages]
        sent = 0
        for start in range(0, len(msgs), BATCH_MAX):
            chunk = msgs[start:start + BATCH_MAX]
            iov = (Iovec * len(chunk))()
            for i, m in enumerate(chunk):
                iov[i].iov_base = ctypes.cast(ctypes.c_char_p(m),
                                              ctypes.c_void_p)
                iov[i].iov_len = len(m)
            ret = _waiting(lambda ms: lib().bpq_send_batch(
                fd, iov, len(chunk), ms), timeout)
            if ret < 0 and sent:
                break
            sent += check(ret)
            if ret < len(chunk):
                break
        return sent

    def recv_batch(self, max_records: int = 64, max_bytes: int | None = None,
                   timeout: float | None = None) -> list[Message]:
        """Wait for one message, then take all that fit in max_records
        (1 ... 1024) and max_bytes without waiting; [] at the end of the
        stream. Without max_bytes, room for max(64 KiB, max_msg_size)."""
        fd = self.fileno()
        size = max_bytes or max(BATCH_BYTES_MIN, self._msg_size())
        buf = self._recv_buffer(size)
        infos = (BpqMsgInfo * max_records)()
        n = check(_waiting(lambda ms: lib().bpq_recv_batch(
            fd, buf, size, infos, max_records, ms), timeout))
        addr = ctypes.addressof(buf)
        return [_message(ctypes.string_at(addr + i.offset, i.len), i)
                for i in infos[:n]]

    # -- settings and counters -----------------------------------------

    @property
    def config(self) -> Config:
        c = BpqConfig()
        c.size = ctypes.sizeof(c)
        check(lib().bpq_get_config(self.fileno(), ctypes.byref(c)))
        self._max_msg_size = c.max_msg_size
        return Config.from_c(c)

    @config.setter
    def config(self, config: Config) -> None:
        check(lib().bpq_set_config(self.fileno(), ctypes.byref(config.to_c())))
        self._max_msg_size = config.max_msg_size

    def configure(self, **changes: int | str) -> Config:
        """Read, change the fields named, write: q.configure(
        capacity_msgs=100, strategy="drop-oldest"). Returns the new
        settings. strategy, hangup, ack_mode and read_mode take names."""
        values = {k: _PARSERS[k](v) if isinstance(v, str) and k in _PARSERS
                  else v for k, v in changes.items()}
        config = dataclasses.replace(self.config, **values)
        self.config = config
        return config

    @property
    def stats(self) -> Stats:
        c = BpqStats()
        c.size = ctypes.sizeof(c)
        check(lib().bpq_get_stats(self.fileno(), ctypes.byref(c)))
        return Stats.from_c(c)

    def reset_stats(self) -> None:
        check(lib().bpq_reset_stats(self.fileno()))

    # -- control -------------------------------------------------------

    def grant(self, credits: int) -> None:
        """Add credits to the balance of a credit queue."""
        check(lib().bpq_grant_flags(self.fileno(), 0, credits))

    def grant_set(self, credits: int) -> None:
        """Make the credit balance credits."""
        check(lib().bpq_grant_flags(self.fileno(), GRANT_SET, credits))

    def revoke(self, credits: int) -> None:
        """Take credits from the balance, down to 0."""
        check(lib().bpq_grant_flags(self.fileno(), GRANT_REVOKE, credits))

    def flush(self) -> int:
        """Discard what is queued; returns how many messages."""
        return check(lib().bpq_flush(self.fileno()))

    def shutdown(self, *, complete: bool = False, fail: int | None = None,
                 cancel: bool = False, discard: bool = False,
                 reopen: bool = False) -> int:
        """End the stream (complete=True, or fail=ERRNO, as the producer;
        cancel=True, with discard=True or not, as the consumer) or open it
        again (reopen=True). Exactly one kind. Returns the number of
        messages discarded."""
        kinds = ((complete, SHUTDOWN_COMPLETE),
                 (fail is not None, SHUTDOWN_FAIL),
                 (cancel, SHUTDOWN_CANCEL), (discard, SHUTDOWN_DISCARD),
                 (reopen, SHUTDOWN_REOPEN))
        flags = sum(bit for on, bit in kinds if on)
        return check(lib().bpq_shutdown(self.fileno(), flags, fail or 0))

    def ack(self, count: int = 1, nack: bool = False,
            timestamp_ns: int | None = None) -> int:
        """Say count delivered messages were processed (nack: that the
        reader could not keep up); timestamp_ns, a Message's, puts its
        processing time in processing_hist. Returns how many were
        acknowledged."""
        flags = ACK_NACK if nack else 0
        if timestamp_ns is not None:
            flags |= ACK_TIMESTAMP
        return check(lib().bpq_ack(self.fileno(), count, flags,
                                   timestamp_ns or 0))

    def trigger(self, metric: int | str, threshold: int = 0,
                window_ms: int = 0) -> None:
        """Watch one metric (a TriggerMetric or its name: "some", "full",
        "drops", "timeouts", "head_age", "utilization"); "none" removes
        the file's trigger."""
        if isinstance(metric, str):
            metric = trigger_parse(metric)
        check(lib().bpq_trigger(self.fileno(), metric, threshold, window_ms))

    def clear_trigger(self) -> None:
        self.trigger(TriggerMetric.NONE)

    def wait_trigger(self, timeout: float | None = None) -> bool:
        """True when the file's trigger fired, False after timeout."""
        fd = self.fileno()
        return check(_waiting(lambda ms: lib().bpq_trigger_wait(fd, ms),
                              timeout)) > 0

    def ring(self, ring_bytes: int) -> Ring:
        """Give the file (open "rw") a receive ring of ring_bytes, a
        power of two; read() and receives then fail with EBUSY."""
        ring = Ring(self, ring_bytes)
        self._rings.append(ring)
        return ring


class RingMessage(NamedTuple):
    """A message in the ring: data is a read-only view of the mapping,
    valid until the ring moves past it."""
    data: memoryview
    seq: int
    timestamp_ns: int
    lost: int


class Ring(_Closing):
    """A receive ring mapped by bpq_ring_setup(): messages taken from
    shared memory without a system call. Obtain it with Queue.ring()."""

    def __init__(self, queue: Queue, ring_bytes: int) -> None:
        self._ring = BpqRing()
        self._view: memoryview | None = None
        check(lib().bpq_ring_setup(queue.fileno(), ring_bytes,
                                   ctypes.byref(self._ring)))

    @property
    def closed(self) -> bool:
        return not self._ring.ctl

    def _ptr(self) -> ctypes._Pointer[BpqRing]:
        if self.closed:
            raise ValueError("operation on a closed bpq ring")
        return ctypes.pointer(self._ring)

    def _drop_view(self) -> None:
        if self._view is not None:
            try:
                self._view.release()
            except BufferError:     # the caller holds a part of it
                pass
            self._view = None

    def close(self) -> None:
        """Unmap the ring (the file keeps it until its last close)."""
        if not self.closed:
            self._drop_view()
            lib().bpq_ring_teardown(ctypes.byref(self._ring))

    def peek(self) -> RingMessage | None:
        """The next message, left in the ring; None at the end of the
        stream; BlockingIOError while the ring is empty."""
        data, info = ctypes.c_void_p(), BpqMsgInfo()
        n = check(lib().bpq_ring_peek(self._ptr(), ctypes.byref(data),
                                      ctypes.byref(info)))
        if n == 0:
            return None
        self._drop_view()
        raw = (ctypes.c_char * n).from_address(data.value or 0)
        self._view = memoryview(raw).cast("B").toreadonly()
        return RingMessage(self._view, info.seq, info.timestamp_ns,
                           info.lost)

    def advance(self) -> None:
        """Hand the message peek() gave back to the kernel."""
        self._drop_view()
        lib().bpq_ring_advance(self._ptr())

    def wait(self, timeout: float | None = None) -> None:
        """Until the ring holds a message, or the stream has ended."""
        ptr = self._ptr()
        check(_waiting(lambda ms: lib().bpq_ring_wait(ptr, ms), timeout))

    def recv(self, timeout: float | None = None) -> Message | None:
        """The next message, copied out; None at the end of the stream."""
        self.wait(timeout)
        msg = self.peek()
        if msg is None:
            return None
        copy = Message(msg.data.tobytes(), msg.seq, msg.timestamp_ns,
                       msg.lost)
        self.advance()
        return copy

    def __iter__(self) -> Iterator[RingMessage]:
        """Every message until the end of the stream, in place: each is
        handed back when the next is asked for."""
        while True:
            self.wait()
            msg = self.peek()
            if msg is None:
                return
            yield msg
            self.advance()


def open(queue: str | int | os.PathLike[str], mode: str = "rw",
         nonblock: bool = False) -> Queue:
    """Open a queue by number (3, "3", "bpq3"), name or device path.
    mode is "r", "w", "rw" or "ioctl" (neither: settings and control)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}")
    q = str(queue) if isinstance(queue, int) else os.fspath(queue)
    flags = MODES[mode] | (os.O_NONBLOCK if nonblock else 0)
    fd = check(lib().bpq_open(os.fsencode(q), flags), q)
    return Queue(fd, q)
