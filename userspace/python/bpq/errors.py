# SPDX-License-Identifier: MIT
"""libbpq's negative errno returns as Python exceptions.

Every error is an OSError with its errno and os.strerror() text. Python
already gives most errno values their own subclass (EAGAIN:
BlockingIOError, EPIPE: BrokenPipeError, ETIMEDOUT: TimeoutError, ENOENT:
FileNotFoundError, EEXIST: FileExistsError, EPERM and EACCES:
PermissionError, ECONNRESET: ConnectionResetError, EINTR:
InterruptedError, ...); the ones below name those that matter to bpq and
that Python leaves as a bare OSError.
"""

from __future__ import annotations

import errno
import os


class QueueGoneError(OSError):
    """ENODEV: the queue was destroyed, or the file is not a bpq queue."""


class InvalidArgumentError(OSError):
    """EINVAL: a value out of range, an unknown flag or name."""


class MessageTooLongError(OSError):
    """EMSGSIZE: the message exceeds max_msg_size, or the buffer."""


class QueueFullError(OSError):
    """ENOBUFS: refused by the drop-newest strategy."""


class BusyError(OSError):
    """EBUSY: a ring, a trigger or a stream state stands in the way."""


class LinkLoopError(OSError):
    """ELOOP: a link would close a cycle or make too long a chain."""


class TooManyLinksError(OSError):
    """EMLINK: too many links on a queue, or groups nested too deep."""


class WrongModeError(OSError):
    """EBADF: the file is not open for what the call needs."""


class NotAQueueError(OSError):
    """ENOTTY: the file does not know the command (not a bpq device)."""


ERRORS: dict[int, type[OSError]] = {
    errno.ENODEV: QueueGoneError,
    errno.EINVAL: InvalidArgumentError,
    errno.EMSGSIZE: MessageTooLongError,
    errno.ENOBUFS: QueueFullError,
    errno.EBUSY: BusyError,
    errno.ELOOP: LinkLoopError,
    errno.EMLINK: TooManyLinksError,
    errno.EBADF: WrongModeError,
    errno.ENOTTY: NotAQueueError,
}


def error(err: int, filename: str | None = None) -> OSError:
    """The exception for the (positive) errno value err."""
    cls = ERRORS.get(err, OSError)
    if filename is None:
        return cls(err, os.strerror(err))
    return cls(err, os.strerror(err), filename)


def check(ret: int, filename: str | None = None) -> int:
    """ret itself when it is >= 0, else raise the error of -ret."""
    if ret < 0:
        raise error(-ret, filename)
    return ret
