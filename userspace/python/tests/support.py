# SPDX-License-Identifier: MIT
"""What the host tests share: the source tree's paths, and the package and
libbpq of the source tree (unless BPQ_LIBBPQ names another libbpq)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

PYTHON_DIR = Path(__file__).resolve().parents[1]  # userspace/python
ROOT = PYTHON_DIR.parents[1]
UAPI_DIR = ROOT / "include" / "uapi"
LIB_DIR = ROOT / "userspace" / "lib"
PACKAGE_DIR = PYTHON_DIR / "bpq"

if str(PYTHON_DIR) not in sys.path:
    sys.path.insert(0, str(PYTHON_DIR))
if "BPQ_LIBBPQ" not in os.environ and (LIB_DIR / "libbpq.so.0").exists():
    os.environ["BPQ_LIBBPQ"] = str(LIB_DIR / "libbpq.so.0")
