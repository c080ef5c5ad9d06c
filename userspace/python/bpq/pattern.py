# SPDX-License-Identifier: MIT
"""The backpressure pattern's classes, under the pattern's names, on bpq
queues: the kernel holds the items and applies the strategy, and these
classes give it the pattern's interface.

- BoundedQueue: put()/get() with timeouts, size(), is_full().
- CreditBasedFlowControl: request_credits()/grant_credits(), send()/
  receive() over the credit strategy.
- Publisher, Subscriber, Subscription (also ReactivePublisher, ...):
  Reactive Streams, request(n) being a grant of n credits and cancel()
  the consumer's shutdown.
- AdaptiveBackpressure: the adaptive strategy, its target latency and the
  rate it admits now.
- CongestionControl: the window strategy, TCP Reno's window over the
  items in flight, on_ack() and on_loss().
- KafkaStyleConsumer: poll() of up to max_poll_records, commit().
- BackpressureStreamProcessor: stages (callables) joined by queues, each
  linked to the next so that a slow stage holds the ones before it.

Items are bytes. A class given no queue creates one of its own through
bpq.control (CAP_SYS_ADMIN) and destroys it on close(); given one (a
number, name or path), it uses it and leaves it. Every class is a context
manager.
"""

from __future__ import annotations

import abc
import errno
import itertools
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Self

from . import control
from .errors import QueueFullError
from .names import Strategy, StreamState, strategy_parse
from .queue import Message, Queue, Stats, _Closing
from .queue import open as open_queue
from .stage import Stage

_names = itertools.count()


def _new_name(prefix: str) -> str:
    """A queue name unique to this process and call (at most 31
    characters of [A-Za-z0-9_.-])."""
    return f"{prefix}-{os.getpid()}-{next(_names)}"[:31]


def _strategy(strategy: int | str) -> int:
    return strategy_parse(strategy) if isinstance(strategy, str) \
        else int(strategy)


def _send(q: Queue, item: bytes, timeout: float | None,
          refused: tuple[type[OSError], ...] = ()) -> bool:
    """q.send(): False when no room came within timeout (or the queue
    refused the item with one of refused)."""
    try:
        q.send(item, timeout)
    except (TimeoutError, BlockingIOError):
        return False
    except refused:
        return False
    return True


def _receive(q: Queue, timeout: float | None) -> bytes | None:
    """q.recv()'s data: None after timeout or at the end of the stream."""
    try:
        msg = q.recv(timeout)
    except (TimeoutError, BlockingIOError):
        return None
    return None if msg is None else msg.data


class _QueueUser(_Closing):
    """A queue that the object created (and destroys) or was given, and
    the files it opened on it, closed together."""

    prefix = "pattern"

    def __init__(self, queue: str | int | None = None) -> None:
        self._files: list[Queue] = []
        self._lock = threading.Lock()
        self.owned = queue is None
        if queue is None:
            self.index = control.create(_new_name(self.prefix))
        else:
            self.index = control.lookup(queue)

    def _open(self, mode: str) -> Queue:
        q = open_queue(self.index, mode)
        with self._lock:
            self._files.append(q)
        return q

    def _open_pair(self, **config: int | str) -> None:
        """self.sender and self.receiver, the queue configured; on a
        failure everything is closed (and the queue destroyed if ours)."""
        try:
            self.sender = self._open("w")
            self.receiver = self._open("r")
            self.sender.configure(**config)
        except BaseException:
            self.close()
            raise

    @property
    def closed(self) -> bool:
        return self.index < 0

    def close(self) -> None:
        """Close the files; destroy the queue if the object created it."""
        with self._lock:
            files, self._files = self._files, []
        for q in files:
            q.close()
        if self.owned and self.index >= 0:
            try:
                control.destroy(self.index)
            except FileNotFoundError:
                pass
        self.index = -1


class BoundedQueue(_QueueUser):
    """A queue of at most capacity items; what a put() into a full one
    meets is the strategy's: "block" waits, "drop-newest" refuses the new
    item, "drop-oldest" evicts the oldest. One object can be shared by
    threads: the producers' and consumers' files are their own."""

    prefix = "bounded"

    def __init__(self, capacity: int, strategy: int | str = "block",
                 name: str | int | None = None,
                 max_item_size: int | None = None) -> None:
        super().__init__(name)
        self.capacity = capacity
        try:
            self.queue = self._open("rw")
            changes: dict[str, int | str] = {
                "capacity_msgs": capacity, "strategy": _strategy(strategy)}
            if max_item_size is not None:
                changes["max_msg_size"] = max_item_size
            self.queue.configure(**changes)
        except BaseException:
            self.close()
            raise
        self._local = threading.local()

    def _file(self) -> Queue:
        """This thread's file on the queue (a Queue is not for threads
        to share)."""
        if threading.current_thread() is threading.main_thread():
            return self.queue
        q: Queue | None = getattr(self._local, "queue", None)
        if q is None or q.closed:
            q = self._open("rw")
            self._local.queue = q
        return q

    def put(self, item: bytes, timeout: float | None = None) -> bool:
        """Queue item: True if it went in, False if it was refused (full,
        drop-newest) or no room came within timeout seconds."""
        return _send(self._file(), item, timeout, (QueueFullError,))

    def get(self, timeout: float | None = None) -> bytes | None:
        """The oldest item; None if none came within timeout seconds or
        the stream was ended (close_input()) and drained."""
        return _receive(self._file(), timeout)

    def size(self) -> int:
        """The items queued now."""
        return self.queue.stats.depth_msgs

    def is_full(self) -> bool:
        return self.size() >= self.queue.config.capacity_msgs

    def is_empty(self) -> bool:
        return self.size() == 0

    def close_input(self) -> None:
        """No more items: get() drains the queue, then returns None."""
        self.queue.shutdown(complete=True)

    @property
    def stats(self) -> Stats:
        return self.queue.stats


class CreditBasedFlowControl(_QueueUser):
    """The credit strategy: each item sent costs one credit, and only the
    receiver's grants make credits. A sender that needs more asks with
    request_credits(); grant_credits() grants what was asked (or a given
    number). initial_credits are granted at the start."""

    prefix = "credit"

    def __init__(self, initial_credits: int = 0, capacity: int = 1024,
                 queue: str | int | None = None) -> None:
        super().__init__(queue)
        self._requested = 0
        try:
            self.sender = self._open("w")
            self.receiver = self._open("r")
            # settings are the producer's, grants the consumer's
            self.sender.configure(strategy=Strategy.CREDIT,
                                  capacity_msgs=capacity, auto_credit=0)
            self.receiver.grant_set(initial_credits)
        except BaseException:
            self.close()
            raise

    def available_credits(self) -> int:
        return self.receiver.stats.credits_available

    def request_credits(self, n: int) -> int:
        """Ask the receiver for n more credits; returns the credits
        available now (the grant comes with grant_credits())."""
        if n < 1:
            raise ValueError("request at least one credit")
        with self._lock:
            self._requested += n
        return self.available_credits()

    @property
    def requested(self) -> int:
        """Credits asked for and not yet granted."""
        return self._requested

    def grant_credits(self, n: int | None = None) -> int:
        """Grant n credits, by default those requested; returns how many
        were granted. Senders waiting for credit go in."""
        with self._lock:
            if n is None:
                n = self._requested
            self._requested = max(0, self._requested - n)
        if n > 0:
            self.receiver.grant(n)
        return n

    def send(self, item: bytes, timeout: float | None = None) -> bool:
        """Send item with one credit: False if none came within timeout."""
        return _send(self.sender, item, timeout)

    def receive(self, timeout: float | None = None) -> bytes | None:
        """The next item; None after timeout or at the end of the stream."""
        return _receive(self.receiver, timeout)


# -- Reactive Streams ----------------------------------------------------


class Subscriber(abc.ABC):
    """Reactive Streams' Subscriber: told of its subscription, then of
    each item, up to as many as it requested, and of the end."""

    @abc.abstractmethod
    def on_subscribe(self, subscription: Subscription) -> None:
        """The subscription: request(n) items from it."""

    @abc.abstractmethod
    def on_next(self, item: bytes) -> None:
        """One item (never more than requested)."""

    @abc.abstractmethod
    def on_error(self, error: BaseException) -> None:
        """The publisher failed (ConnectionResetError, its errno in
        Stats.stream_error), or the subscription did; nothing follows."""

    @abc.abstractmethod
    def on_complete(self) -> None:
        """The publisher completed and every item was delivered."""


class Subscription:
    """A subscriber's link to the publisher's queue: request(n) grants n
    credits (the publisher's sends wait for them), cancel() shuts the
    stream down as its consumer (the publisher's sends then fail with
    BrokenPipeError). run() delivers the items in the caller's thread."""

    def __init__(self, publisher: Publisher, subscriber: Subscriber) -> None:
        self.publisher = publisher
        self.subscriber = subscriber
        self.file = publisher._open("r")
        self.cancelled = False
        self.done = False

    def request(self, n: int) -> None:
        """Demand n more items (Reactive Streams' rule 3.9: n <= 0 is an
        error, signalled by on_error)."""
        if self.cancelled or self.done:
            return
        if n <= 0:
            self._finish(ValueError(f"request({n}): n must be positive"))
            self.cancel()
            return
        self.file.grant(n)

    def cancel(self, discard: bool = False) -> None:
        """No more items; discard=True also drops those queued."""
        if self.cancelled:
            return
        self.cancelled = True
        self.file.shutdown(cancel=True, discard=discard)

    def _finish(self, error: BaseException | None) -> None:
        if self.done:
            return
        self.done = True
        if error is None:
            self.subscriber.on_complete()
        else:
            self.subscriber.on_error(error)

    def run(self, timeout: float | None = None) -> bool:
        """Deliver items until the stream ends (on_complete, or on_error
        after a failure), the subscription is cancelled, or nothing came
        within timeout seconds. True once it is over."""
        while not self.done and not self.cancelled:
            try:
                msg = self.file.recv(timeout)
            except (TimeoutError, BlockingIOError):
                return False
            except OSError as e:
                self._finish(e)
                break
            if msg is None:
                self._finish(None)
                break
            self.subscriber.on_next(msg.data)
        return True


class Publisher(_QueueUser):
    """Reactive Streams' Publisher over a credit queue: send() waits for
    the subscribers' demand, complete() and fail() end the stream. One
    subscription at a time gets the items (they are not copied)."""

    prefix = "publisher"

    def __init__(self, capacity: int = 1024,
                 queue: str | int | None = None) -> None:
        super().__init__(queue)
        try:
            self.file = self._open("w")
            self.file.configure(strategy=Strategy.CREDIT, auto_credit=0,
                                capacity_msgs=capacity)
            # a file of neither side may do what either may: the grants
            with open_queue(self.index, "ioctl") as control_file:
                control_file.grant_set(0)
        except BaseException:
            self.close()
            raise

    def subscribe(self, subscriber: Subscriber) -> Subscription:
        """A subscription for subscriber, who is told of it at once."""
        subscription = Subscription(self, subscriber)
        subscriber.on_subscribe(subscription)
        return subscription

    def send(self, item: bytes, timeout: float | None = None) -> bool:
        """Publish item once there is demand: False if none came within
        timeout; BrokenPipeError once the subscription was cancelled."""
        return _send(self.file, item, timeout)

    def complete(self) -> None:
        """The last item was sent: on_complete once it is delivered."""
        self.file.shutdown(complete=True)

    def fail(self, err: int = errno.EIO) -> None:
        """The publisher failed: on_error once what was sent is
        delivered."""
        self.file.shutdown(fail=err)

    @property
    def state(self) -> StreamState:
        return StreamState(self.file.stats.stream)


# -- the adaptive strategy -----------------------------------------------


class AdaptiveBackpressure(_QueueUser):
    """The adaptive strategy: the kernel admits items at a rate between
    min_rate and max_rate (items/s) that it adjusts every
    adjust_interval_ms towards the target latency (the time an item
    waits in the queue)."""

    prefix = "adaptive"

    def __init__(self, target_latency_ms: float = 100, min_rate: int = 10,
                 max_rate: int = 10000, adjust_interval_ms: int = 1000,
                 capacity: int = 10000,
                 queue: str | int | None = None) -> None:
        super().__init__(queue)
        self._open_pair(
            strategy=Strategy.ADAPTIVE, capacity_msgs=capacity,
            target_latency_us=max(1, round(target_latency_ms * 1000)),
            min_rate=min_rate, max_rate=max_rate,
            adjust_interval_ms=adjust_interval_ms)

    @property
    def target_latency_ms(self) -> float:
        return self.receiver.config.target_latency_us / 1000

    @target_latency_ms.setter
    def target_latency_ms(self, ms: float) -> None:
        self.sender.configure(target_latency_us=max(1, round(ms * 1000)))

    def current_rate(self) -> int:
        """The admission rate now, items/s (Stats.rate)."""
        return self.receiver.stats.rate

    def throughput(self) -> int:
        """Items taken per second, a moving average (Stats.throughput)."""
        return self.receiver.stats.throughput

    def send(self, item: bytes, timeout: float | None = None) -> bool:
        """Send item when the rate admits it: False if not within
        timeout."""
        return _send(self.sender, item, timeout)

    def receive(self, timeout: float | None = None) -> bytes | None:
        return _receive(self.receiver, timeout)


# -- TCP-like congestion control -----------------------------------------

class CongestionControl(_QueueUser):
    """The window strategy: items in flight (queued, and received but not
    yet acknowledged) stay below a congestion window that grows with
    acknowledgments (slow start, then congestion avoidance) and halves on
    a loss, as TCP Reno's. The kernel keeps the window and makes send()
    wait while it is full; on_ack() and on_loss() are the receiver's
    signals, and so is an item that waited in the queue longer than
    target_latency_ms (as a delay-based TCP takes a rising RTT)."""

    prefix = "window"

    def __init__(self, initial_window: int = 10, max_window: int = 1000,
                 min_window: int = 1, ssthresh: int | None = None,
                 target_latency_ms: float = 1000, capacity: int = 10000,
                 ack_timeout_ms: int = 1000,
                 queue: str | int | None = None) -> None:
        super().__init__(queue)
        self._open_pair(
            strategy=Strategy.WINDOW, capacity_msgs=capacity,
            initial_cwnd=initial_window, min_cwnd=min_window,
            max_cwnd=max_window,
            initial_ssthresh=ssthresh if ssthresh else max_window,
            target_latency_us=max(1, round(target_latency_ms * 1000)),
            ack_timeout_ms=ack_timeout_ms)

    @property
    def window_size(self) -> int:
        """The congestion window now (Stats.cwnd)."""
        return self.receiver.stats.cwnd

    @property
    def ssthresh(self) -> int:
        """Slow start's threshold (Stats.ssthresh)."""
        return self.receiver.stats.ssthresh

    @property
    def in_flight(self) -> int:
        """Items queued or received and not yet acknowledged."""
        return self.receiver.stats.inflight

    def can_send(self) -> bool:
        """Whether the window has room for one more item now."""
        s = self.receiver.stats
        return s.inflight < s.cwnd

    def send(self, item: bytes, timeout: float | None = None) -> bool:
        """Send item once the window has room: False if not within
        timeout."""
        return _send(self.sender, item, timeout)

    def receive(self, timeout: float | None = None) -> Message | None:
        """The next item with its timestamp (for on_ack()), None after
        timeout or at the end of the stream."""
        try:
            return self.receiver.recv(timeout)
        except (BlockingIOError, TimeoutError):
            return None

    def on_ack(self, count: int = 1, timestamp_ns: int | None = None) -> int:
        """count items were processed: they leave the flight and the window
        grows. Returns how many were in flight."""
        return self.receiver.ack(count, timestamp_ns=timestamp_ns)

    def on_loss(self) -> None:
        """An item could not be processed, or the receiver cannot keep up:
        it is acknowledged with a NACK and the window halves (once a
        window of acknowledgments)."""
        self.receiver.ack(1, nack=True)


# -- Kafka-style polling -------------------------------------------------


class KafkaStyleConsumer(_Closing):
    """Polls records in batches of at most max_poll_records, as a Kafka
    consumer does; commit() acknowledges what the polls returned (the
    queue's acknowledgments: processing_hist, and the credits or window
    of a queue that returns them on acknowledgment)."""

    def __init__(self, queue: str | int | Queue,
                 max_poll_records: int = 500,
                 max_poll_bytes: int | None = None) -> None:
        if not 1 <= max_poll_records <= 1024:
            raise ValueError("max_poll_records is 1 ... 1024")
        self._owned = not isinstance(queue, Queue)
        self.queue = queue if isinstance(queue, Queue) \
            else open_queue(queue, "r")
        self.max_poll_records = max_poll_records
        self.max_poll_bytes = max_poll_bytes
        self.uncommitted = 0
        self.end_of_stream = False
        self._last_ts: int | None = None

    def poll(self, timeout: float | None = None) -> list[Message]:
        """Up to max_poll_records records, once there is one; [] if none
        came within timeout or the stream has ended (end_of_stream)."""
        if self.end_of_stream:
            return []
        try:
            records = self.queue.recv_batch(self.max_poll_records,
                                            self.max_poll_bytes, timeout)
        except (TimeoutError, BlockingIOError):
            return []
        if not records:
            self.end_of_stream = True
        else:
            self.uncommitted += len(records)
            self._last_ts = records[-1].timestamp_ns
        return records

    def __iter__(self) -> Iterator[list[Message]]:
        """Each poll's records until the end of the stream."""
        while batch := self.poll():
            yield batch

    def commit(self) -> int:
        """Acknowledge every record polled since the last commit."""
        n, self.uncommitted = self.uncommitted, 0
        if not n:
            return 0
        acked = 0
        while n > 0:
            count = min(n, 2**32 - 1)
            acked += self.queue.ack(count, timestamp_ns=self._last_ts)
            n -= count
        return acked

    def close(self) -> None:
        if self._owned:
            self.queue.close()


# -- a pipeline ----------------------------------------------------------

StageFn = Callable[[bytes], bytes | None]


class BackpressureStreamProcessor(_Closing):
    """Stages joined by bounded queues: item -> stage 1 -> queue -> stage
    2 -> ... -> the output queue. Each stage is a callable run in a
    thread of its own, taking one item and returning the next stage's
    (None: the item goes no further). Each queue is linked to the next,
    so a slow stage holds every one before it (bpq.link). The input's end
    (close_input()) flows through the stages to results(); an exception
    in a stage fails the stream after it (results() raises
    ConnectionResetError)."""

    def __init__(self, stages: Sequence[StageFn], capacity: int = 100,
                 strategy: int | str = "block") -> None:
        if not stages:
            raise ValueError("a stream processor needs a stage")
        self.stages = list(stages)
        self.errors: list[BaseException] = []
        self._closing = False
        self.queues: list[BoundedQueue] = []
        self._threads: list[threading.Thread] = []
        try:
            for _ in range(len(stages) + 1):
                self.queues.append(BoundedQueue(capacity, strategy))
            for up, down in zip(self.queues, self.queues[1:]):
                control.link(up.index, down.index)
        except BaseException:
            self.close()
            raise
        self._input = self.queues[0].queue

    def start(self) -> Self:
        for i, stage in enumerate(self.stages):
            t = threading.Thread(target=self._run_stage, args=(i, stage),
                                 name=f"bpq-stage-{i}", daemon=True)
            self._threads.append(t)
            t.start()
        return self

    def _run_stage(self, i: int, fn: StageFn) -> None:
        src = self.queues[i]._open("r")
        dst = self.queues[i + 1]._open("w")
        # bpq.Stage carries the ends: the input's end ends the output, an
        # exception fails the output and cancels the input
        def call(msg: Message) -> bytes | None:
            try:
                return fn(msg.data)
            except BaseException as e:
                self.errors.append(e)   # before the stream fails
                raise

        try:
            Stage(call, src, dst, batch=16).run()
        except BaseException as e:  # noqa: B036 (kept for the caller)
            if not self._closing and e not in self.errors:
                self.errors.append(e)

    def submit(self, item: bytes, timeout: float | None = None) -> bool:
        """Feed item to the first stage: False if no room within
        timeout (or refused by a drop-newest queue)."""
        return self.queues[0].put(item, timeout)

    def close_input(self) -> None:
        """No more items: the stages finish what is queued, in order."""
        self._input.shutdown(complete=True)

    def results(self, timeout: float | None = None) -> Iterator[bytes]:
        """The last stage's items until the end of the stream (or
        until none came within timeout)."""
        out = self.queues[-1]
        while (item := out.get(timeout)) is not None:
            yield item

    def join(self, timeout: float | None = None) -> None:
        for t in self._threads:
            t.join(timeout)

    def close(self) -> None:
        """Destroy the queues (stages still waiting see QueueGoneError
        and stop), then close the files."""
        self._closing = True
        for q in self.queues:
            if q.owned and q.index >= 0:
                control.destroy(q.index)
                q.owned = False
        self.join(5.0)
        for q in self.queues:
            q.close()


# The pattern's names for the Reactive Streams classes
ReactivePublisher = Publisher
ReactiveSubscriber = Subscriber
ReactiveSubscription = Subscription

__all__ = ["AdaptiveBackpressure", "BackpressureStreamProcessor",
           "BoundedQueue", "CongestionControl", "CreditBasedFlowControl",
           "KafkaStyleConsumer", "Publisher", "ReactivePublisher",
           "ReactiveSubscriber", "ReactiveSubscription", "StageFn",
           "Subscriber", "Subscription"]
