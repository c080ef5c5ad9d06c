# SPDX-License-Identifier: MIT
"""A pipeline's stage: bpq.Stage, libbpq's bpq_stage_run() for Python.

    def shout(msg: bpq.Message) -> bytes:
        return msg.data.upper()

    bpq.Stage(shout, input="words", output="loud").run()

A stage takes records from its input queue a batch at a time, calls its
function on each, sends what the function returns (bytes, an iterable of
bytes, or None for nothing) to its output queue, and only then
acknowledges the batch, so that an acknowledgment means "handed on" (a
credit queue with auto_credit ack, or the window strategy, then lets the
stage before go on exactly as fast). A source has no input: it sends
what an iterable yields. A sink has no output.

Ends travel both ways, as in C: the input's end of stream ends the output
(complete) and run() returns; the input's failure fails the output and
run() raises ConnectionResetError; an exception from the function fails
the output (with the exception's errno, else EIO), cancels the input and
is raised from run(); a cancelled output (BrokenPipeError) cancels the
input. The function raises Nack for a record it cannot process (it is
acknowledged as failed and the stage goes on) and returns END to end the
stream after the record. stop(), from any thread, ends the output
complete and cancels the input once the batch in hand is handed on.
"""

from __future__ import annotations

import errno
import os
import select
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Final

from .errors import error
from .queue import BATCH_MAX, Message, Queue, _Closing, open as _open


class Nack(Exception):
    """Raised by a stage's function: this record cannot be processed.
    It is acknowledged with a NACK (the queue counts it in nacked) and
    the stage goes on."""


class _End:
    def __repr__(self) -> str:
        return "bpq.END"


END: Final = _End()
"""Returned by a stage's function: the stream ends after this record."""

Data = bytes | bytearray | memoryview
Output = Data | Iterable[Data] | _End | None
StageFunction = Callable[[Message], Output]


def _fail_errno(e: BaseException) -> int:
    """The errno a failed stream can carry for e: 1 ... 133, not EAGAIN or
    EINTR; EIO for anything else."""
    err = e.errno if isinstance(e, OSError) else None
    if not err or err in (errno.EAGAIN, errno.EINTR) or not 0 < err <= 133:
        return errno.EIO
    return err


class Stage(_Closing):
    """One stage: input -> fn -> output. input and output are Queues,
    used and left open, or anything bpq.open() takes, opened here ("r",
    "w") and closed by close(). With input None, fn is the source: an
    iterable of bytes. batch is the records taken in one receive (1 ...
    1024); timeout (seconds) bounds each wait, else TimeoutError."""

    def __init__(self, fn: StageFunction | Iterable[Data],
                 input: Queue | str | int | None = None,
                 output: Queue | str | int | None = None, *,
                 batch: int = 64, timeout: float | None = None) -> None:
        if input is None and output is None:
            raise ValueError("a stage needs an input or an output")
        if not 1 <= batch <= BATCH_MAX:
            raise ValueError(f"batch must be 1 ... {BATCH_MAX}")
        if input is None:
            if callable(fn) or not isinstance(fn, Iterable):
                raise TypeError("a source's fn is an iterable of bytes")
        elif not callable(fn):
            raise TypeError("fn must be callable: fn(message) -> output")
        self.fn = fn
        self.batch = batch
        self.timeout = timeout
        self.received = 0
        self.emitted = 0
        self.nacked = 0
        self._owned: list[Queue] = []
        self.input = self._queue(input, "r")
        self.output = self._queue(output, "w")
        self._stopping = False
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._out: list[Data] = []

    def _queue(self, q: Queue | str | int | None, mode: str) -> Queue | None:
        if q is None or isinstance(q, Queue):
            return q
        opened = _open(q, mode)
        self._owned.append(opened)
        return opened

    @property
    def closed(self) -> bool:
        return self._wake_r < 0

    def close(self) -> None:
        for q in self._owned:
            q.close()
        self._owned.clear()
        if self._wake_r >= 0:
            os.close(self._wake_r)
            os.close(self._wake_w)
            self._wake_r = self._wake_w = -1

    def stop(self) -> None:
        """Stop the stage (any thread, or a signal handler): what it has
        in hand is handed on, then its output ends complete and its input
        is cancelled, and run() returns."""
        self._stopping = True
        try:
            os.write(self._wake_w, b"x")
        except (BlockingIOError, OSError):
            pass

    # -- the loop ------------------------------------------------------

    def run(self) -> None:
        """Run until the end of the input (or of the source, or END, or
        stop()); raise what failed the stage after ending the streams."""
        try:
            if self.input is None:
                self._run_source()
                cancel = False
            else:
                cancel = self._run()
        except ConnectionResetError:
            # the input failed: the output fails as it did
            self._end(errno.ECONNRESET, cancel=False)
            raise
        except BrokenPipeError:
            # the output was cancelled: so is the input
            self._end(None, cancel=True)
            raise
        except BaseException as e:
            self._end(_fail_errno(e), cancel=True)
            raise
        self._end(0, cancel)

    def _end(self, err: int | None, cancel: bool) -> None:
        """err 0: the output ends complete; an errno: it fails; None: it
        is left alone. cancel: the input is given up."""
        if self.output is not None and err is not None:
            try:
                if err:
                    self.output.shutdown(fail=err)
                else:
                    self.output.shutdown(complete=True)
            except OSError:
                pass
        if cancel and self.input is not None:
            try:
                self.input.shutdown(cancel=True)
            except OSError:
                pass

    def _emit(self, out: Output) -> None:
        if out is None or isinstance(out, _End):
            return
        if self.output is None:
            raise ValueError("a sink's function returned data to send")
        if isinstance(out, (bytes, bytearray, memoryview)):
            self._out.append(out)
        else:
            self._out.extend(out)

    def _flush(self) -> None:
        while self._out:
            assert self.output is not None
            sent = self.output.send_batch(self._out, self.timeout)
            self.emitted += sent
            del self._out[:sent]

    def _run_source(self) -> None:
        assert not callable(self.fn)
        items: Iterator[Data] = iter(self.fn)
        for item in items:
            self._out.append(item)
            if len(self._out) >= self.batch:
                self._flush()
            if self._stopping:
                break
        self._flush()

    def _wait_input(self, q: Queue) -> None:
        """Wait until the input has something (or has ended) or stop()."""
        p = select.poll()
        p.register(q.fileno(), select.POLLIN | select.POLLRDHUP)
        p.register(self._wake_r, select.POLLIN)
        ms = None if self.timeout is None else max(0, self.timeout * 1000)
        if not p.poll(ms):
            raise error(errno.ETIMEDOUT)

    def _run(self) -> bool:
        """The input to its end (False), or to END or stop() (True: the
        input is given up)."""
        q = self.input
        assert q is not None and callable(self.fn)
        fn = self.fn
        while not self._stopping:
            try:
                msgs = q.recv_batch(self.batch, timeout=0)
            except BlockingIOError:
                self._wait_input(q)
                continue
            if not msgs:
                return False    # the input's end of stream
            done: list[bool] = []   # each record: processed (or NACKed)
            end = False
            try:
                for msg in msgs:
                    self.received += 1
                    try:
                        out = fn(msg)
                    except Nack:
                        self.nacked += 1
                        done.append(False)
                        continue
                    self._emit(out)
                    done.append(True)
                    if isinstance(out, _End):
                        end = True
                        break
            finally:
                # what was done before a failure is handed on and acked
                self._flush()
                self._ack(msgs, done)
            if end:
                return True
        return True

    def _ack(self, msgs: list[Message], done: list[bool]) -> None:
        """Acknowledge the records done, oldest first: runs of processed
        ones in one call, each NACK in one of its own."""
        assert self.input is not None
        i = 0
        while i < len(done):
            run = 1
            if done[i]:
                while i + run < len(done) and done[i + run]:
                    run += 1
            self.input.ack(run, nack=not done[i],
                           timestamp_ns=msgs[i].timestamp_ns)
            i += run


def run_stage(fn: StageFunction | Iterable[Data],
              input: Queue | str | int | None = None,
              output: Queue | str | int | None = None, *, batch: int = 64,
              timeout: float | None = None) -> Stage:
    """Make a Stage, run it to its end, close it; returns it (its
    counters). Raises what failed it."""
    with Stage(fn, input, output, batch=batch, timeout=timeout) as st:
        st.run()
    return st


class StageThread(threading.Thread):
    """A daemon thread running stage.run(); afterwards .error holds the
    exception that failed the stage, None if it ended well."""

    def __init__(self, stage: Stage, name: str | None = None) -> None:
        super().__init__(name=name, daemon=True)
        self.stage = stage
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.stage.run()
        except BaseException as e:  # noqa: B036 (kept for the caller)
            self.error = e


__all__ = ["END", "Nack", "Stage", "StageFunction", "StageThread",
           "run_stage"]
