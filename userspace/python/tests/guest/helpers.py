# SPDX-License-Identifier: MIT
"""What the guest suites share: queues of their own, created for a test
and destroyed after it (root, the module loaded)."""

from __future__ import annotations

import itertools
import os
import unittest

import bpq

_names = itertools.count()


def sysfs(index: int, attr: str) -> str:
    with open(f"/sys/class/bpq/bpq{index}/{attr}") as f:
        return f.read().strip()


def set_sysfs(index: int, attr: str, value: str) -> None:
    with open(f"/sys/class/bpq/bpq{index}/{attr}", "w") as f:
        f.write(value)


class QueueTestCase(unittest.TestCase):
    """Each test's queues: new_queue() creates one, destroyed afterwards."""

    @classmethod
    def setUpClass(cls) -> None:
        if not os.path.exists("/dev/bpq-control"):
            raise unittest.SkipTest("no /dev/bpq-control (module)")

    def new_queue(self, **config: int | str) -> int:
        name = f"pyt-{os.getpid()}-{next(_names)}"
        index = bpq.create(name)
        self.addCleanup(self._destroy, index)
        if config:
            with bpq.open(index, "ioctl") as q:
                q.configure(**config)
        return index

    @staticmethod
    def _destroy(index: int) -> None:
        try:
            bpq.destroy(index)
        except FileNotFoundError:
            pass

    def open(self, index: int, mode: str = "rw",
             nonblock: bool = False) -> bpq.Queue:
        q = bpq.open(index, mode, nonblock)
        self.addCleanup(q.close)
        return q
