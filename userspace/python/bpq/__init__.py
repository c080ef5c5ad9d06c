# SPDX-License-Identifier: MIT
"""bpq: bounded in-kernel message queues with backpressure, over libbpq.

    import bpq

    with bpq.open("orders", "w") as q:
        q.send(b"hello")

Errors are OSError subclasses (BlockingIOError, BrokenPipeError,
TimeoutError, FileNotFoundError, bpq.QueueGoneError, ...); see bpq.errors.
"""

from __future__ import annotations

from . import control, errors, names
from .control import create, destroy, group_create, group_destroy, \
    group_join, hold, link, list_queues, lookup, unlink
from .errors import BusyError, InvalidArgumentError, LinkLoopError, \
    MessageTooLongError, NotAQueueError, QueueFullError, QueueGoneError, \
    TooManyLinksError, WrongModeError, check
from .names import AckMode, AutoCredit, Hangup, Hold, ReadMode, Strategy, \
    StreamState, TriggerMetric, WindowState, ack_mode_name, ack_mode_parse, \
    hangup_name, hangup_parse, hold_name, hold_parse, read_mode_name, \
    read_mode_parse, stream_name, strategy_name, strategy_parse, \
    trigger_name, trigger_parse, window_state_name
from .queue import Config, Message, Queue, Ring, RingMessage, Stats, open
from .stage import END, Nack, Stage, StageThread, run_stage

__version__ = "0.1"

__all__ = [
    "END", "AckMode", "AutoCredit", "BusyError", "Config", "Hangup", "Hold",
    "InvalidArgumentError", "LinkLoopError", "Message",
    "MessageTooLongError", "Nack", "NotAQueueError", "Queue",
    "QueueFullError", "QueueGoneError", "ReadMode", "Ring", "RingMessage",
    "Stage", "StageThread", "Stats",
    "Strategy", "StreamState", "TooManyLinksError", "TriggerMetric",
    "WindowState", "WrongModeError", "ack_mode_name", "ack_mode_parse",
    "check", "control", "create", "destroy", "errors", "group_create",
    "group_destroy", "group_join", "hangup_name", "hangup_parse", "hold",
    "hold_name", "hold_parse", "link", "list_queues", "lookup", "names",
    "open", "read_mode_name", "read_mode_parse", "run_stage", "stream_name",
    "strategy_name", "strategy_parse", "trigger_name", "trigger_parse",
    "unlink", "window_state_name",
]
