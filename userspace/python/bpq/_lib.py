# SPDX-License-Identifier: MIT
"""Loading libbpq.so.0 with ctypes, and the C structures it takes.

The library is looked for, in this order, at the path in the environment
variable BPQ_LIBBPQ, by its soname through the dynamic linker's search
path, and in the build tree (userspace/lib) next to this package when it
runs from the source tree. The structures mirror include/uapi/linux/bpq.h
and userspace/lib/bpq.h field by field, under the same names; the host
test tests/test_layout.py compares their layout with the C compiler's.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
from pathlib import Path

SONAME = "libbpq.so.0"

BPQ_NAME_MAX = 32
BPQ_LATENCY_BUCKETS = 32

c_u32 = ctypes.c_uint32
c_u64 = ctypes.c_uint64


class BpqConfig(ctypes.Structure):
    """struct bpq_config"""

    _fields_ = [
        ("size", c_u32),
        ("flags", c_u32),
        ("strategy", c_u32),
        ("capacity_msgs", c_u32),
        ("capacity_bytes", c_u64),
        ("max_msg_size", c_u32),
        ("high_watermark", c_u32),
        ("low_watermark", c_u32),
        ("write_timeout_ms", c_u32),
        ("auto_credit", c_u32),
        ("target_latency_us", c_u32),
        ("min_rate", c_u32),
        ("max_rate", c_u32),
        ("adjust_interval_ms", c_u32),
        ("__reserved", c_u32),
        ("hangup", c_u32),
        ("ack_mode", c_u32),
        ("initial_cwnd", c_u32),
        ("min_cwnd", c_u32),
        ("max_cwnd", c_u32),
        ("initial_ssthresh", c_u32),
        ("ack_timeout_ms", c_u32),
        ("read_mode", c_u32),
        ("increase_pct", c_u32),
        ("decrease_pct", c_u32),
    ]


class BpqStats(ctypes.Structure):
    """struct bpq_stats"""

    _fields_ = [
        ("size", c_u32),
        ("flags", c_u32),
        ("depth_msgs", c_u64),
        ("depth_bytes", c_u64),
        ("credits_available", c_u64),
        ("utilization", c_u32),
        ("pressure", c_u32),
        ("rate", c_u64),
        ("throughput", c_u64),
        ("enqueued_msgs", c_u64),
        ("enqueued_bytes", c_u64),
        ("dequeued_msgs", c_u64),
        ("dequeued_bytes", c_u64),
        ("dropped_newest", c_u64),
        ("dropped_oldest", c_u64),
        ("flushed", c_u64),
        ("backpressure_applied", c_u64),
        ("blocked_ns", c_u64),
        ("throttled_ns", c_u64),
        ("timeouts", c_u64),
        ("credit_starvation", c_u64),
        ("credit_starved_ns", c_u64),
        ("latency_hist", c_u64 * BPQ_LATENCY_BUCKETS),
        ("stream", c_u32),
        ("stream_error", c_u32),
        ("stream_epoch", c_u64),
        ("readers", c_u32),
        ("writers", c_u32),
        ("unacked", c_u64),
        ("acked_msgs", c_u64),
        ("nacked", c_u64),
        ("stale_acks", c_u64),
        ("cwnd", c_u32),
        ("ssthresh", c_u32),
        ("inflight", c_u64),
        ("window_state", c_u32),
        ("__pad", c_u32),
        ("congestion_events", c_u64),
        ("ack_timeouts", c_u64),
        ("cwnd_limited_ns", c_u64),
        ("processing_hist", c_u64 * BPQ_LATENCY_BUCKETS),
        ("partial_reads", c_u64),
        ("holds", c_u32),
        ("watermark", c_u32),
        ("held_ns", c_u64),
        ("head_age_us", c_u64),
        ("writers_waiting", c_u32),
        ("__pad3", c_u32),
        ("stall_some_us", c_u64),
        ("stall_full_us", c_u64),
    ]


class BpqMsgInfo(ctypes.Structure):
    """struct bpq_msg_info"""

    _fields_ = [
        ("seq", c_u64),
        ("timestamp_ns", c_u64),
        ("lost", c_u64),
        ("len", c_u32),
        ("offset", c_u32),
    ]


class BpqRing(ctypes.Structure):
    """struct bpq_ring of libbpq's bpq.h (the control page stays opaque)"""

    _fields_ = [
        ("fd", ctypes.c_int),
        ("ctl", ctypes.c_void_p),
        ("data", ctypes.c_void_p),
        ("mask", c_u32),
        ("head", c_u64),
        ("map_len", ctypes.c_size_t),
    ]


class Iovec(ctypes.Structure):
    """struct iovec of <sys/uio.h>, for bpq_send_batch()"""

    _fields_ = [
        ("iov_base", ctypes.c_void_p),
        ("iov_len", ctypes.c_size_t),
    ]


_int = ctypes.c_int
_uint = ctypes.c_uint
_str = ctypes.c_char_p
_ptr = ctypes.c_void_p
_ssize = ctypes.c_ssize_t
_P = ctypes.POINTER

# name: (restype, argtypes), as userspace/lib/bpq.h declares them
_PROTOTYPES: dict[str, tuple[type | None, list[type]]] = {
    "bpq_open": (_int, [_str, _int]),
    "bpq_send": (_ssize, [_int, _ptr, ctypes.c_size_t, _int]),
    "bpq_recv": (_ssize, [_int, _ptr, ctypes.c_size_t, _P(BpqMsgInfo), _int]),
    "bpq_send_batch": (_int, [_int, _P(Iovec), _uint, _int]),
    "bpq_recv_batch": (_int, [_int, _ptr, ctypes.c_size_t, _P(BpqMsgInfo),
                              _uint, _int]),
    "bpq_ring_setup": (_int, [_int, _uint, _P(BpqRing)]),
    "bpq_ring_teardown": (None, [_P(BpqRing)]),
    "bpq_ring_peek": (_int, [_P(BpqRing), _P(_ptr), _P(BpqMsgInfo)]),
    "bpq_ring_advance": (None, [_P(BpqRing)]),
    "bpq_ring_wait": (_int, [_P(BpqRing), _int]),
    "bpq_get_config": (_int, [_int, _P(BpqConfig)]),
    "bpq_set_config": (_int, [_int, _P(BpqConfig)]),
    "bpq_get_stats": (_int, [_int, _P(BpqStats)]),
    "bpq_reset_stats": (_int, [_int]),
    "bpq_grant_flags": (_int, [_int, _uint, c_u64]),
    "bpq_flush": (_int, [_int]),
    "bpq_shutdown": (_int, [_int, _uint, _int]),
    "bpq_ack": (_int, [_int, _uint, _uint, c_u64]),
    "bpq_create": (_int, [_str, _P(_uint)]),
    "bpq_destroy": (_int, [_uint]),
    "bpq_link": (_int, [_uint, _uint]),
    "bpq_unlink": (_int, [_uint, _uint]),
    "bpq_group_create": (_int, [_str, _str, _uint, _uint, _uint]),
    "bpq_group_destroy": (_int, [_str]),
    "bpq_group_join": (_int, [_uint, _str]),
    "bpq_hold": (_int, [_uint, _uint, _int]),
    "bpq_trigger": (_int, [_int, _uint, c_u64, _uint]),
    "bpq_trigger_wait": (_int, [_int, _int]),
    "bpq_index_of": (_int, [_int]),
    "bpq_queue_name": (_int, [_uint, _ptr, ctypes.c_size_t]),
    "bpq_lookup": (_int, [_str]),
    "bpq_list": (_int, [_P(_uint), _uint]),
}

# The name functions: bpq_KIND_name(unsigned) and, where it exists,
# bpq_KIND_parse(const char *)
NAME_KINDS = ("strategy", "stream", "hangup", "ack_mode", "window_state",
              "read_mode", "hold", "trigger")
PARSE_KINDS = ("strategy", "hangup", "ack_mode", "read_mode", "hold",
               "trigger")

for _kind in NAME_KINDS:
    _PROTOTYPES[f"bpq_{_kind}_name"] = (_str, [_uint])
for _kind in PARSE_KINDS:
    _PROTOTYPES[f"bpq_{_kind}_parse"] = (_int, [_str])


def _candidates() -> list[str]:
    found = []
    env = os.environ.get("BPQ_LIBBPQ")
    if env:
        found.append(env)
    found.append(SONAME)
    by_name = ctypes.util.find_library("bpq")
    if by_name and by_name != SONAME:
        found.append(by_name)
    # userspace/python/bpq/_lib.py -> userspace/lib/libbpq.so.0
    found.append(str(Path(__file__).resolve().parents[2] / "lib" / SONAME))
    return found


def _declare(lib: ctypes.CDLL) -> ctypes.CDLL:
    for name, (restype, argtypes) in _PROTOTYPES.items():
        func = getattr(lib, name)
        func.restype = restype
        func.argtypes = argtypes
    return lib


@functools.cache
def lib() -> ctypes.CDLL:
    """libbpq, loaded on first use with every function used declared."""
    tried = []
    for path in _candidates():
        try:
            return _declare(ctypes.CDLL(path))
        except OSError as e:
            tried.append(f"{path}: {e}")
        except AttributeError as e:  # an older libbpq without a symbol
            tried.append(f"{path}: {e}")
    raise ImportError("libbpq not found (set BPQ_LIBBPQ to its path): " +
                      "; ".join(tried))
