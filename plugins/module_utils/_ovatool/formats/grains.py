# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A batch of grains as the export pipeline hands it to every writer of one disk (docs/formats.md, Images).

The pipeline reads a run of 64 KiB grains into a buffer, finds the grains that are all zeros, and (when a writer
needs it) compresses the others into streamOptimized grain records. One batch then feeds every output of the
disk: the VMDK stream takes the records, qcow2 the deflate inside them, raw, VHD and VHDX the bytes themselves.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Tuple

from .vmdk import GRAIN_BYTES, GRAIN_HEAD, SECTOR
ZLIB_HEAD_4K = b"\x48\x0d"  # a zlib header saying "deflate, 4 KiB window": (0x48 * 256 + 0x0d) % 31 == 0


@dataclass
class GrainBatch:
    first: int  # the first grain of the batch
    data: bytearray  # the bytes read (valid only during the call that receives the batch)
    length: int  # bytes of ``data`` that belong to the disk (the last batch may end inside a grain)
    blob: bytes  # grain records of the non-zero grains (empty when nothing needed them compressed)
    entries: List[Tuple[int, int]]  # (grain, sector of its record in ``blob``) of every non-zero grain

    def grain(self, grain: int) -> memoryview:
        """The bytes of ``grain`` (shorter than a grain only at the end of the disk)."""
        at = (grain - self.first) * GRAIN_BYTES
        return memoryview(self.data)[at:min(at + GRAIN_BYTES, self.length)]

    def runs(self, limit: int = 0) -> List[Tuple[int, int]]:
        """(first grain, count) of each run of consecutive non-zero grains, ascending; with ``limit``, no run
        crosses a multiple of ``limit`` grains (a VHDX block). Written as one piece each, a run costs one call."""
        found: List[Tuple[int, int]] = []
        for grain, _sector in self.entries:
            if found and found[-1][0] + found[-1][1] == grain and not (limit and grain % limit == 0):
                found[-1] = (found[-1][0], found[-1][1] + 1)
            else:
                found.append((grain, 1))
        return found

    def span(self, grain: int, count: int) -> memoryview:
        """The bytes of ``count`` grains from ``grain`` (shorter only at the end of the disk)."""
        at = (grain - self.first) * GRAIN_BYTES
        return memoryview(self.data)[at:min(at + count * GRAIN_BYTES, self.length)]

    def deflated(self, sector: int) -> Optional[memoryview]:
        """The raw deflate inside the record at ``sector`` when it was compressed with a 4 KiB window (what qcow2
        stores), else None (stored blocks of a grain that did not compress, or no records at all)."""
        if sector < 0 or not self.blob:
            return None
        at = sector * SECTOR
        size = GRAIN_HEAD.unpack_from(self.blob, at)[1]
        body = at + GRAIN_HEAD.size
        if self.blob[body:body + 2] != ZLIB_HEAD_4K:
            return None
        return memoryview(self.blob)[body + 2:body + size - 4]  # without the zlib header and its Adler-32
