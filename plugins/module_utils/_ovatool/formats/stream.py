# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""streamOptimized VMDK writer, exactly as VMware writes it (docs/formats.md).

Header (gdOffset = GD_AT_END), embedded descriptor at sector 1, padding to
the first grain at sector 128; grains (u64 LBA, u32 size, zlib data, padded
to 512) in ascending LBA order; after each 512-grain span with data a GT
marker and its grain table; at the end a GD marker and the grain directory,
a footer marker with a header copy holding the real gdOffset, and EOS.
"""
from __future__ import annotations

from array import array
from typing import Callable, List, Optional, Tuple

from ..errors import OvatoolError
from .vmdk import (DESCRIPTOR_SECTORS, GD_AT_END, GRAIN_SECTORS, GTES_PER_GT, MARKER_EOS, MARKER_FOOTER, MARKER_GD,
                   MARKER_GT, MAX_OUTPUT_SECTORS, OVERHEAD_SECTORS, SECTOR, marker, stream_header, u32_bytes)


class StreamVmdkWriter:
    """Writes one streamOptimized disk through ``write`` (a file-like sink)."""

    compressed = True  # its grains are the batch's deflated ones

    def __init__(self, write: Callable[[bytes], None], capacity_sectors: int, descriptor: str) -> None:
        self._write = write
        self.capacity_sectors = capacity_sectors
        self.num_gts = -(-capacity_sectors // (GRAIN_SECTORS * GTES_PER_GT))
        self.gd = array("I", bytes(4 * self.num_gts))
        self._gt: Optional[array] = None
        self._gt_index = -1
        self._last_grain = -1
        self.position = 0  # sectors written so far
        desc = descriptor.encode("utf-8")
        if len(desc) > DESCRIPTOR_SECTORS * SECTOR:
            raise OvatoolError("the stream descriptor is too long")
        self._emit(stream_header(capacity_sectors, GD_AT_END))
        self._emit(desc + bytes(DESCRIPTOR_SECTORS * SECTOR - len(desc)))
        self._emit(bytes((OVERHEAD_SECTORS - 1 - DESCRIPTOR_SECTORS) * SECTOR))

    def _emit(self, data) -> None:
        if len(data):
            self._write(data)
            self.position += len(data) // SECTOR

    def _flush_gt(self) -> None:
        if self._gt is not None and any(self._gt):
            self._emit(marker(GTES_PER_GT * 4 // SECTOR, MARKER_GT))
            self.gd[self._gt_index] = self.position
            self._emit(u32_bytes(self._gt))
        self._gt = None

    def write_grains(self, blob: bytes, entries: List[Tuple[int, int]]) -> None:
        """Append grain records; ``entries`` gives (grain index, sector offset in blob), ascending."""
        view = memoryview(blob)
        cursor = 0  # sectors of blob already emitted
        for grain, rel in entries:
            if grain <= self._last_grain:
                raise OvatoolError(f"internal error: grain {grain} written out of order")
            self._last_grain = grain
            gt_index = grain // GTES_PER_GT
            if gt_index != self._gt_index:
                if self._gt is not None:
                    # the grain table of the finished span goes right after its grains
                    self._emit(view[cursor * SECTOR:rel * SECTOR])
                    cursor = rel
                    self._flush_gt()
                self._gt_index = gt_index
                self._gt = array("I", bytes(4 * GTES_PER_GT))
            self._gt[grain % GTES_PER_GT] = self.position + rel - cursor
        self._emit(view[cursor * SECTOR:])
        if self.position > MAX_OUTPUT_SECTORS:
            raise OvatoolError("the compressed disk exceeds 2 TiB, the limit of the streamOptimized format")

    def write_batch(self, batch) -> None:
        """The pipeline's batch (formats/grains.GrainBatch): its grain records."""
        self.write_grains(batch.blob, batch.entries)

    def finish(self) -> None:
        self._flush_gt()
        gd_sectors = -(-self.num_gts * 4 // SECTOR)
        self._emit(marker(gd_sectors, MARKER_GD))
        gd_offset = self.position
        gd = u32_bytes(self.gd)
        self._emit(gd + bytes(gd_sectors * SECTOR - len(gd)))
        self._emit(marker(1, MARKER_FOOTER))
        self._emit(stream_header(self.capacity_sectors, gd_offset))
        self._emit(marker(0, MARKER_EOS))
