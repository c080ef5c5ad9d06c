# SPDX-License-Identifier: MIT
"""The constants of include/uapi/linux/bpq.h, and their names as libbpq
(and bpqctl, and sysfs) spell them: strategy_name(Strategy.CREDIT) is
"credit", strategy_parse("drop_oldest") is Strategy.DROP_OLDEST."""

from __future__ import annotations

import enum
import errno
from collections.abc import Callable
from typing import TypeVar

from ._lib import lib
from .errors import check, error

E = TypeVar("E", bound=int)


class Strategy(enum.IntEnum):
    """enum bpq_strategy"""
    BLOCK = 0
    DROP_NEWEST = 1
    DROP_OLDEST = 2
    CREDIT = 3
    ADAPTIVE = 4
    WINDOW = 5


class StreamState(enum.IntEnum):
    """enum bpq_stream_state"""
    OPEN = 0
    COMPLETED = 1
    FAILED = 2
    CANCELLED = 3


class Hangup(enum.IntEnum):
    """enum bpq_hangup"""
    NONE = 0
    WRITERS = 1
    READERS = 2
    BOTH = 3


class ReadMode(enum.IntEnum):
    """enum bpq_read_mode"""
    MESSAGE = 0
    STREAM = 1


class AutoCredit(enum.IntEnum):
    """BPQ_AUTO_CREDIT_*"""
    OFF = 0
    DELIVERY = 1
    ACK = 2


class AckMode(enum.IntEnum):
    """BPQ_ACK_MODE_*"""
    ACK = 0
    DELIVERY = 1


class WindowState(enum.IntEnum):
    """BPQ_WINDOW_*"""
    SLOW_START = 0
    AVOIDANCE = 1
    RECOVERY = 2


class Hold(enum.IntFlag):
    """BPQ_HOLD_*: bits of Stats.holds"""
    ADMIN = 1 << 0
    CLUSTER = 1 << 1
    SYSTEM = 1 << 2
    LINK = 1 << 3
    GROUP = 1 << 4
    USER = ADMIN | CLUSTER | SYSTEM


class TriggerMetric(enum.IntEnum):
    """enum bpq_trigger_metric"""
    NONE = 0
    STALL_SOME = 1
    STALL_FULL = 2
    DROPS = 3
    TIMEOUTS = 4
    HEAD_AGE = 5
    UTILIZATION = 6


def _namer(kind: str) -> Callable[[int], str]:
    """bpq_KIND_name() of libbpq; InvalidArgumentError for no name."""
    def name(value: int) -> str:
        ret: bytes | None = getattr(lib(), f"bpq_{kind}_name")(value)
        if ret is None:
            raise error(errno.EINVAL, f"{kind} {value}")
        return ret.decode()
    name.__name__ = name.__qualname__ = f"{kind}_name"
    return name


def _parser(kind: str, enum_type: Callable[[int], E]) -> Callable[[str], E]:
    """bpq_KIND_parse() of libbpq, the value as enum_type."""
    def parse(name: str) -> E:
        func = getattr(lib(), f"bpq_{kind}_parse")
        return enum_type(check(func(name.encode()), f"{kind} {name!r}"))
    parse.__name__ = parse.__qualname__ = f"{kind}_parse"
    return parse


strategy_name = _namer("strategy")
strategy_parse = _parser("strategy", Strategy)
stream_name = _namer("stream")
hangup_name = _namer("hangup")
hangup_parse = _parser("hangup", Hangup)
ack_mode_name = _namer("ack_mode")
ack_mode_parse = _parser("ack_mode", AckMode)
window_state_name = _namer("window_state")
read_mode_name = _namer("read_mode")
read_mode_parse = _parser("read_mode", ReadMode)
hold_name = _namer("hold")     # of one Hold bit
hold_parse = _parser("hold", Hold)
trigger_name = _namer("trigger")
trigger_parse = _parser("trigger", TriggerMetric)
