# SPDX-License-Identifier: MIT
"""The ctypes structures of bpq._lib against the C compiler's layout
(layout.c, built here with cc) and against the headers' field lists."""

from __future__ import annotations

import ctypes
import os
import re
import shutil
import subprocess
import tempfile
import unittest
from pathlib import Path

from support import LIB_DIR, UAPI_DIR

from bpq import _lib

MIRRORS: dict[str, type[ctypes.Structure]] = {
    "bpq_config": _lib.BpqConfig,
    "bpq_stats": _lib.BpqStats,
    "bpq_msg_info": _lib.BpqMsgInfo,
    "bpq_ring": _lib.BpqRing,
    "iovec": _lib.Iovec,
}

HEADERS = (UAPI_DIR / "linux" / "bpq.h", LIB_DIR / "bpq.h")


def header_fields(struct: str) -> list[str]:
    """The member names of struct in the project's headers, in order."""
    for header in HEADERS:
        m = re.search(r"^struct %s \{\n(.*?)^\};" % struct,
                      header.read_text(), re.M | re.S)
        if m:
            body = re.sub(r"/\*.*?\*/", "", m.group(1), flags=re.S)
            return re.findall(r"(\w+)\s*(?:\[[^]]*\])?\s*;", body)
    raise AssertionError(f"struct {struct} not found in {HEADERS}")


def c_layout() -> dict[str, dict[str, int]]:
    """{struct: {field: offset, "sizeof": size}} from layout.c."""
    cc = os.environ.get("CC", "cc")
    if not shutil.which(cc):
        raise unittest.SkipTest(f"no C compiler ({cc})")
    src = Path(__file__).with_name("layout.c")
    with tempfile.TemporaryDirectory() as tmp:
        exe = Path(tmp) / "layout"
        subprocess.run([cc, "-Wall", "-Werror", "-isystem", str(UAPI_DIR),
                        "-I", str(LIB_DIR), "-o", str(exe), str(src)],
                       check=True)
        out = subprocess.run([str(exe)], check=True, capture_output=True,
                             text=True).stdout
    layout: dict[str, dict[str, int]] = {}
    for line in out.splitlines():
        struct, field, value = line.split()
        layout.setdefault(struct, {})[field] = int(value)
    return layout


class LayoutTest(unittest.TestCase):
    layout: dict[str, dict[str, int]]

    @classmethod
    def setUpClass(cls) -> None:
        cls.layout = c_layout()

    def test_every_struct_printed(self) -> None:
        self.assertEqual(set(self.layout), set(MIRRORS))

    def test_sizes(self) -> None:
        for struct, mirror in MIRRORS.items():
            with self.subTest(struct=struct):
                self.assertEqual(ctypes.sizeof(mirror),
                                 self.layout[struct]["sizeof"])

    def test_offsets(self) -> None:
        for struct, mirror in MIRRORS.items():
            c = {k: v for k, v in self.layout[struct].items()
                 if k != "sizeof"}
            py = {name: getattr(mirror, name).offset
                  for name, *_ in mirror._fields_}
            with self.subTest(struct=struct):
                self.assertEqual(py, c)

    def test_fields_as_in_headers(self) -> None:
        """A field added to a header must reach layout.c and _lib.py."""
        for struct, mirror in MIRRORS.items():
            if struct == "iovec":   # the C library's, not ours
                continue
            names = [name for name, *_ in mirror._fields_]
            printed = [k for k in self.layout[struct] if k != "sizeof"]
            with self.subTest(struct=struct):
                self.assertEqual(names, header_fields(struct))
                self.assertEqual(printed, names)


if __name__ == "__main__":
    unittest.main()
