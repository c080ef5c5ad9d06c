# SPDX-License-Identifier: MIT
"""Queues and groups as a whole, through /dev/bpq-control and sysfs:
create, destroy, link, hold, groups, lookup. Creating, destroying,
linking and groups need CAP_SYS_ADMIN (PermissionError)."""

from __future__ import annotations

import builtins
import ctypes
import errno

from ._lib import lib
from .errors import check
from .names import hold_parse

LIST_MAX = 4096     # queues list() reports at the most


def create(name: str) -> int:
    """Create the queue name; returns N of its /dev/bpqN."""
    index = ctypes.c_uint()
    check(lib().bpq_create(name.encode(), ctypes.byref(index)), name)
    return index.value


def destroy(index: int) -> None:
    """Destroy /dev/bpqN; its open files then fail with QueueGoneError."""
    check(lib().bpq_destroy(index))


def link(upstream: int, downstream: int) -> None:
    """Hold upstream's writers while downstream is under pressure."""
    check(lib().bpq_link(upstream, downstream))


def unlink(upstream: int, downstream: int) -> None:
    check(lib().bpq_unlink(upstream, downstream))


def hold(index: int, reason: int | str, on: bool = True) -> None:
    """Set (or, with on=False, clear) one hold of the queue: a Hold bit
    or its name, "admin", "cluster" or "system"."""
    if isinstance(reason, str):
        reason = hold_parse(reason)
    check(lib().bpq_hold(index, reason, int(on)))


def group_create(name: str, capacity_msgs: int, high_watermark: int,
                 low_watermark: int, parent: str = "") -> None:
    """Create a group of queues, within the group parent if given."""
    check(lib().bpq_group_create(name.encode(), parent.encode(),
                                 capacity_msgs, high_watermark,
                                 low_watermark), name)


def group_destroy(name: str) -> None:
    check(lib().bpq_group_destroy(name.encode()), name)


def group_join(index: int, group: str | None) -> None:
    """Put the queue in group, or with None take it out of its group."""
    check(lib().bpq_group_join(index, (group or "").encode()), group)


def lookup(queue: str | int) -> int:
    """N of the queue with this number, name or device path."""
    q = str(queue)
    return check(lib().bpq_lookup(q.encode()), q)


def list_queues() -> builtins.list[int]:
    """The numbers of every queue, in order ([] without the module)."""
    indexes = (ctypes.c_uint * LIST_MAX)()
    ret = lib().bpq_list(indexes, LIST_MAX)
    if ret == -errno.ENOENT:    # no /sys/class/bpq: no module, no queue
        return []
    return builtins.list(indexes[:min(check(ret), LIST_MAX)])


list = list_queues
