# SPDX-License-Identifier: MIT
"""Host tests of the bpq package that need no module: the errors, the
names through the real libbpq, the settings and counters conversions,
opening what is not a queue, and the static checks."""

from __future__ import annotations

import ctypes
import dataclasses
import errno
import importlib.util
import os
import subprocess
import sys
import unittest

from support import PACKAGE_DIR, ROOT

import bpq
from bpq import _lib
from bpq.queue import timeout_ms

# errno: the exception check() raises for it
EXPECTED: dict[int, type[OSError]] = {
    errno.EAGAIN: BlockingIOError,
    errno.EPIPE: BrokenPipeError,
    errno.ETIMEDOUT: TimeoutError,
    errno.ENOENT: FileNotFoundError,
    errno.EEXIST: FileExistsError,
    errno.EPERM: PermissionError,
    errno.EACCES: PermissionError,
    errno.ECONNRESET: ConnectionResetError,
    errno.EINTR: InterruptedError,
    errno.ENODEV: bpq.QueueGoneError,
    errno.EINVAL: bpq.InvalidArgumentError,
    errno.EMSGSIZE: bpq.MessageTooLongError,
    errno.ENOBUFS: bpq.QueueFullError,
    errno.EBUSY: bpq.BusyError,
    errno.ELOOP: bpq.LinkLoopError,
    errno.EMLINK: bpq.TooManyLinksError,
    errno.EBADF: bpq.WrongModeError,
    errno.ENOTTY: bpq.NotAQueueError,
}


class ImportTest(unittest.TestCase):
    def test_public_names(self) -> None:
        for name in bpq.__all__:
            with self.subTest(name=name):
                self.assertTrue(hasattr(bpq, name))

    def test_version_is_the_projects(self) -> None:
        version = (ROOT / "VERSION").read_text().strip()
        self.assertEqual(bpq.__version__, version)
        self.assertIn(f'version = "{version}"',
                      (PACKAGE_DIR.parent / "pyproject.toml").read_text())

    def test_libbpq_from_the_build_tree(self) -> None:
        self.assertTrue(os.path.samefile(bpq._lib.lib()._name,
                                         os.environ["BPQ_LIBBPQ"]))


class ErrorsTest(unittest.TestCase):
    def test_mapping(self) -> None:
        for err, cls in EXPECTED.items():
            with self.subTest(errno=errno.errorcode[err]):
                with self.assertRaises(OSError) as cm:
                    bpq.check(-err)
                self.assertIs(type(cm.exception), cls)
                self.assertEqual(cm.exception.errno, err)
                self.assertEqual(cm.exception.strerror, os.strerror(err))

    def test_other_errno_is_plain_oserror(self) -> None:
        with self.assertRaises(OSError) as cm:
            bpq.check(-errno.EPROTO)
        self.assertIs(type(cm.exception), OSError)

    def test_success_passes_through(self) -> None:
        self.assertEqual(bpq.check(0), 0)
        self.assertEqual(bpq.check(42), 42)

    def test_filename(self) -> None:
        with self.assertRaises(bpq.QueueGoneError) as cm:
            bpq.check(-errno.ENODEV, "orders")
        self.assertEqual(cm.exception.filename, "orders")


class NamesTest(unittest.TestCase):
    def round_trip(self, name: object, parse: object,
                   values: list[int]) -> None:
        assert callable(name) and callable(parse)
        for value in values:
            with self.subTest(value=value):
                self.assertEqual(parse(name(value)), value)

    def test_round_trips(self) -> None:
        self.round_trip(bpq.strategy_name, bpq.strategy_parse,
                        list(bpq.Strategy))
        self.round_trip(bpq.hangup_name, bpq.hangup_parse, list(bpq.Hangup))
        self.round_trip(bpq.ack_mode_name, bpq.ack_mode_parse,
                        list(bpq.AckMode))
        self.round_trip(bpq.read_mode_name, bpq.read_mode_parse,
                        list(bpq.ReadMode))
        self.round_trip(bpq.trigger_name, bpq.trigger_parse,
                        list(bpq.TriggerMetric))
        self.round_trip(bpq.hold_name, bpq.hold_parse,
                        [h for h in bpq.Hold if h != bpq.Hold.USER])

    def test_some_names(self) -> None:
        self.assertEqual(bpq.strategy_name(bpq.Strategy.DROP_OLDEST),
                         "drop-oldest")
        self.assertIs(bpq.strategy_parse("drop_oldest"),
                      bpq.Strategy.DROP_OLDEST)
        self.assertEqual(bpq.hold_parse("link"), bpq.Hold.LINK)
        self.assertEqual(bpq.trigger_name(bpq.TriggerMetric.HEAD_AGE),
                         "head_age")

    def test_names_without_parse(self) -> None:
        self.assertEqual([bpq.stream_name(s) for s in bpq.StreamState],
                         ["open", "completed", "failed", "cancelled"])
        self.assertEqual(
            [bpq.window_state_name(s) for s in bpq.WindowState],
            ["slow-start", "avoidance", "recovery"])

    def test_unknown(self) -> None:
        with self.assertRaises(bpq.InvalidArgumentError):
            bpq.strategy_name(len(bpq.Strategy))
        with self.assertRaises(bpq.InvalidArgumentError):
            bpq.strategy_parse("fastest")
        with self.assertRaises(bpq.InvalidArgumentError):
            bpq.hold_name(int(bpq.Hold.USER))


class ConversionTest(unittest.TestCase):
    def test_config_fields(self) -> None:
        c_names = [n for n, *_ in _lib.BpqConfig._fields_
                   if n not in ("size", "flags", "__reserved")]
        self.assertEqual([f.name for f in dataclasses.fields(bpq.Config)],
                         c_names)

    def test_config_round_trip(self) -> None:
        c = _lib.BpqConfig()
        for i, (name, *_) in enumerate(_lib.BpqConfig._fields_):
            setattr(c, name, 1000 + i)
        c.capacity_bytes = 1 << 40     # the one 64-bit field
        config = bpq.Config.from_c(c)
        self.assertEqual(config.strategy, 1002)
        self.assertEqual(config.capacity_bytes, 1 << 40)
        back = config.to_c()
        self.assertEqual(back.size, ctypes.sizeof(_lib.BpqConfig))
        self.assertEqual((back.flags, getattr(back, "__reserved")), (0, 0))
        self.assertEqual(bpq.Config.from_c(back), config)

    def test_stats_fields(self) -> None:
        c_names = [n for n, *_ in _lib.BpqStats._fields_
                   if n not in ("size", "flags", "__pad", "__pad3")]
        self.assertEqual([f.name for f in dataclasses.fields(bpq.Stats)],
                         c_names)

    def test_stats_from_c(self) -> None:
        c = _lib.BpqStats()
        for i, (name, ctype) in enumerate(_lib.BpqStats._fields_):
            if issubclass(ctype, ctypes.Array):
                getattr(c, name)[:] = range(i, i + len(getattr(c, name)))
            else:
                setattr(c, name, i)
        c.stall_full_us = 1 << 63
        stats = bpq.Stats.from_c(c)
        self.assertEqual(stats.depth_msgs, 2)
        self.assertEqual(stats.stall_full_us, 1 << 63)
        self.assertEqual(stats.latency_hist, tuple(range(22, 22 + 32)))
        self.assertEqual(len(stats.processing_hist),
                         _lib.BPQ_LATENCY_BUCKETS)
        with self.assertRaises(dataclasses.FrozenInstanceError):
            stats.depth_msgs = 0    # type: ignore[misc]

    def test_timeouts(self) -> None:
        self.assertEqual(timeout_ms(None), -1)
        self.assertEqual(timeout_ms(0), 0)
        self.assertEqual(timeout_ms(-1), 0)
        self.assertEqual(timeout_ms(0.0001), 1)
        self.assertEqual(timeout_ms(2.5), 2500)
        self.assertEqual(timeout_ms(1e12), 2**31 - 1)


class OpenTest(unittest.TestCase):
    def test_missing_queue(self) -> None:
        with self.assertRaises(FileNotFoundError) as cm:
            bpq.open("no-such-queue.python-test")
        self.assertEqual(cm.exception.filename, "no-such-queue.python-test")
        with self.assertRaises(FileNotFoundError):
            bpq.open("/nonexistent/bpq0", "r")

    def test_bad_mode(self) -> None:
        with self.assertRaises(ValueError):
            bpq.open("0", "a")

    def test_not_a_queue(self) -> None:
        with bpq.open(os.devnull, "r") as q:
            self.assertGreaterEqual(q.fileno(), 0)
            with self.assertRaises(bpq.NotAQueueError):
                q.stats
            with self.assertRaises(bpq.QueueGoneError):
                q.index
        self.assertTrue(q.closed)
        with self.assertRaises(ValueError):
            q.fileno()

    def test_lookup_missing(self) -> None:
        with self.assertRaises(FileNotFoundError):
            bpq.lookup("no-such-queue.python-test")
        self.assertIsInstance(bpq.list_queues(), list)


class StaticTest(unittest.TestCase):
    def test_compileall(self) -> None:
        subprocess.run([sys.executable, "-m", "compileall", "-q",
                        str(PACKAGE_DIR)], check=True)

    @unittest.skipUnless(importlib.util.find_spec("mypy"), "mypy missing")
    def test_mypy_strict(self) -> None:
        # the package, and the example written against it
        example = ROOT / "userspace" / "examples" / "pipeline.py"
        out = subprocess.run([sys.executable, "-m", "mypy", "--strict",
                              "--cache-dir", os.devnull, str(PACKAGE_DIR),
                              str(example)], capture_output=True, text=True,
                             env=dict(os.environ,
                                      MYPYPATH=str(PACKAGE_DIR.parent)))
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)


if __name__ == "__main__":
    unittest.main()
