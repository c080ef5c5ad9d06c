# SPDX-License-Identifier: MIT
"""bpq queues in asyncio: await send() and recv(), async for, and the
pressure's edges, on the running event loop.

    import bpq.asyncio

    async def consume() -> None:
        async with bpq.asyncio.open("orders", "r") as q:
            async for msg in q:         # ends at the end of the stream
                print(msg.data)

The queue's file is open O_NONBLOCK: a send or receive that would wait
fails with EAGAIN inside, and the coroutine then waits for the file to
be writable or readable through the loop's add_writer()/add_reader(),
never in a thread. The pressure's edges come from an epoll file of the
queue's own (EPOLLPRI, edge-triggered) that the loop watches as well.

Cancelling is safe: a coroutine takes a message from the kernel only
when it returns it, so a recv() cancelled while it waits loses nothing,
and a cancelled send() has queued nothing.
"""

from __future__ import annotations

import asyncio
import os
import select
from collections.abc import AsyncIterator, Callable, Iterable
from types import TracebackType
from typing import Self, TypeVar

from .queue import Config, Message, Queue, Stats
from .queue import open as _open_queue

T = TypeVar("T")

# what tells of a pressure edge: EPOLLPRI at a rising edge; at a falling
# one the file's poll mask no longer has it, but has EPOLLIN or EPOLLOUT
# as a rule, so those come too (edge-triggered: once per wake-up)
_PRESSURE_EVENTS = (select.EPOLLPRI | select.EPOLLIN | select.EPOLLOUT |
                    select.EPOLLET)
# the one falling edge with neither (pressure ending on an empty queue that
# takes no writes, as a credit queue without credit) is seen this late
PRESSURE_RECHECK = 0.1


class _Waiters:
    """The coroutines waiting for one readiness of the file: one loop
    callback (add_reader or add_writer) for all of them, removed once it
    fired, so that a level-triggered readiness does not spin the loop."""

    def __init__(self, add: Callable[..., None],
                 remove: Callable[[int], bool], fd: int) -> None:
        self._add = add
        self._remove = remove
        self._fd = fd
        self._futures: list[asyncio.Future[None]] = []

    def _fire(self) -> None:
        self._remove(self._fd)
        futures, self._futures = self._futures, []
        for f in futures:
            if not f.done():
                f.set_result(None)

    async def wait(self) -> None:
        """Until the loop says the file is ready (or the caller is
        cancelled, which leaves the others waiting)."""
        fut = asyncio.get_running_loop().create_future()
        if not self._futures:
            self._add(self._fd, self._fire)
        self._futures.append(fut)
        try:
            await fut
        finally:
            if fut in self._futures:
                self._futures.remove(fut)
                if not self._futures:
                    self._remove(self._fd)

    def close(self) -> None:
        if self._futures:
            self._remove(self._fd)
        for f in self._futures:
            f.cancel()
        self._futures.clear()


class AsyncQueue:
    """A bpq.Queue open O_NONBLOCK (self.queue) with coroutines for what
    waits. Use it from one event loop; close it (or async with) when done.
    """

    def __init__(self, queue: Queue) -> None:
        os.set_blocking(queue.fileno(), False)
        self.queue = queue
        loop = asyncio.get_running_loop()
        self._loop = loop
        fd = queue.fileno()
        self._readers = _Waiters(loop.add_reader, loop.remove_reader, fd)
        self._writers = _Waiters(loop.add_writer, loop.remove_writer, fd)
        self._epoll: select.epoll | None = None
        self._edges: _Waiters | None = None
        self._pressure: bool | None = None

    # -- what does not wait: the queue's own ---------------------------

    def fileno(self) -> int:
        return self.queue.fileno()

    @property
    def closed(self) -> bool:
        return self.queue.closed

    @property
    def index(self) -> int:
        return self.queue.index

    @property
    def name(self) -> str:
        return self.queue.name

    @property
    def config(self) -> Config:
        return self.queue.config

    @config.setter
    def config(self, config: Config) -> None:
        self.queue.config = config

    def configure(self, **changes: int | str) -> Config:
        return self.queue.configure(**changes)

    @property
    def stats(self) -> Stats:
        return self.queue.stats

    def grant(self, credits: int) -> None:
        self.queue.grant(credits)

    def flush(self) -> int:
        return self.queue.flush()

    def shutdown(self, *, complete: bool = False, fail: int | None = None,
                 cancel: bool = False, discard: bool = False,
                 reopen: bool = False) -> int:
        """As Queue.shutdown(); waiting coroutines see its effect (EPIPE,
        the end of the stream) when the file wakes them."""
        return self.queue.shutdown(complete=complete, fail=fail,
                                   cancel=cancel, discard=discard,
                                   reopen=reopen)

    def ack(self, count: int = 1, nack: bool = False,
            timestamp_ns: int | None = None) -> int:
        return self.queue.ack(count, nack, timestamp_ns)

    def close(self) -> None:
        """Wake every waiter with CancelledError, close the epoll file
        and the queue's."""
        if self.queue.closed:
            return
        self._readers.close()
        self._writers.close()
        if self._edges is not None:
            self._edges.close()
            self._edges = None
        if self._epoll is not None:
            self._epoll.close()
            self._epoll = None
        self.queue.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<bpq.asyncio.AsyncQueue {self.queue!r}>"

    # -- what waits ----------------------------------------------------

    async def _retry(self, call: Callable[[], T], waiters: _Waiters,
                     timeout: float | None) -> T:
        """call() until it does not fail with EAGAIN, waiting on waiters
        in between; TimeoutError after timeout seconds. Nothing awaits
        between a call() that succeeded and the return."""
        async def attempt() -> T:
            while True:
                try:
                    return call()
                except BlockingIOError:
                    pass
                await waiters.wait()

        if timeout is None:
            return await attempt()
        async with asyncio.timeout(timeout):
            return await attempt()

    async def send(self, data: bytes | bytearray | memoryview,
                   timeout: float | None = None) -> int:
        """Queue one message when the queue lets it in; returns its
        length. BrokenPipeError once the stream has ended."""
        return await self._retry(lambda: self.queue.send(data),
                                 self._writers, timeout)

    async def send_batch(self,
                         messages: Iterable[bytes | bytearray | memoryview],
                         timeout: float | None = None) -> int:
        """Queue all of the messages, in order, waiting for room as it
        takes; returns how many (fewer only if the stream ended after
        some went in)."""
        msgs = list(messages)
        sent = 0
        while sent < len(msgs):
            rest = msgs[sent:]
            try:
                sent += await self._retry(
                    lambda: self.queue.send_batch(rest),
                    self._writers, timeout)
            except BrokenPipeError:
                if not sent:
                    raise
                break
        return sent

    async def recv(self, timeout: float | None = None,
                   max_size: int | None = None) -> Message | None:
        """The oldest message, or None at the end of the stream
        (ConnectionResetError after a failed one)."""
        return await self._retry(
            lambda: self.queue.recv(max_size=max_size), self._readers,
            timeout)

    async def recv_batch(self, max_records: int = 64,
                         max_bytes: int | None = None,
                         timeout: float | None = None) -> list[Message]:
        """Wait for one message, then take all that are there up to
        max_records and max_bytes; [] at the end of the stream."""
        return await self._retry(
            lambda: self.queue.recv_batch(max_records, max_bytes),
            self._readers, timeout)

    async def __aiter__(self) -> AsyncIterator[Message]:
        """Every message until the end of the stream."""
        while (msg := await self.recv()) is not None:
            yield msg

    # -- pressure ------------------------------------------------------

    def _edge_waiters(self) -> _Waiters:
        if self._edges is None:
            ep = select.epoll(1)
            try:
                ep.register(self.fileno(), _PRESSURE_EVENTS)
            except BaseException:
                ep.close()
                raise
            self._epoll = ep
            self._edges = _Waiters(self._loop.add_reader,
                                   self._loop.remove_reader, ep.fileno())
        return self._edges

    def _drain_edges(self) -> None:
        if self._epoll is not None:
            try:
                self._epoll.poll(0)
            except InterruptedError:
                pass

    @property
    def pressure(self) -> bool:
        """Whether the queue is under pressure (its watermarks', or a
        hold), as Stats.pressure says now."""
        return bool(self.queue.stats.pressure)

    async def pressure_changed(self, timeout: float | None = None) -> bool:
        """Until the queue's pressure is other than this method last
        returned (than when first called: the state then), and returns
        the new state: True when pressure started, False when it ended.
        An edge that came and went between two calls is not seen."""
        waiters = self._edge_waiters()
        if self._pressure is None:
            self._pressure = self.pressure

        async def watch() -> bool:
            while True:
                self._drain_edges()
                now = self.pressure
                if now != self._pressure:
                    self._pressure = now
                    return now
                try:
                    async with asyncio.timeout(PRESSURE_RECHECK):
                        await waiters.wait()
                except TimeoutError:
                    pass

        if timeout is None:
            return await watch()
        async with asyncio.timeout(timeout):
            return await watch()


def open(queue: str | int | os.PathLike[str], mode: str = "rw") -> AsyncQueue:
    """bpq.open(queue, mode) with O_NONBLOCK, for the running loop."""
    return AsyncQueue(_open_queue(queue, mode, nonblock=True))


__all__ = ["AsyncQueue", "PRESSURE_RECHECK", "open"]
