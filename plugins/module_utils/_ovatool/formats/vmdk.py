# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The VMDK sparse format's on-disk facts, in one place: sectors, the "KDMV" header, flags, markers and the
geometry of streamOptimized disks. Readers (sparse, streamcheck) and the writer (stream) use these; nothing
else restates them.

Source: VMware's "Virtual Disk Format 5.0" specification (the hosted sparse extent header, the grain
directory and tables, and the stream-optimized markers); docs/formats.md has the details the code relies on.
"""
from __future__ import annotations

import struct
import sys
from array import array
from dataclasses import dataclass
from typing import Any, List, Sequence

from ..errors import DiskFormatError

SECTOR = 512
MAGIC = b"KDMV"
# magic, version, flags, capacity, grainSize, descriptorOffset, descriptorSize, numGTEsPerGT, rgdOffset,
# gdOffset, overHead, uncleanShutdown, the four newline-test characters, compressAlgorithm (all little-endian)
HEADER = struct.Struct("<4sIIQQQQIQQQB4sH")
NEWLINE_TEST = b"\n \r\n"
GD_AT_END = 0xFFFFFFFFFFFFFFFF  # stream disks: the grain directory is found through the footer

FLAG_NEWLINE_TEST = 1 << 0
FLAG_REDUNDANT_GD = 1 << 1
FLAG_ZERO_GRAIN_GTE = 1 << 2
FLAG_COMPRESSED = 1 << 16
FLAG_MARKERS = 1 << 17
COMPRESSION_DEFLATE = 1  # each grain is an RFC 1950 zlib stream (not raw deflate)

MAX_GRAIN_SECTORS = 2048  # 1 MiB; VMware uses 128 (64 KiB), older tools 8..128
MAX_CAPACITY_SECTORS = 64 * 1024 ** 4 // SECTOR  # 64 TiB, above VMware's 62 TiB limit

# streamOptimized: each metadata block is introduced by a one-sector marker (u64 size in sectors, u32 size
# of data in the marker = 0, u32 type); each grain by a record head (u64 LBA, u32 compressed size)
MARKER = struct.Struct("<QII")
GRAIN_HEAD = struct.Struct("<QI")  # a grain record: u64 LBA, u32 size of the zlib stream that follows
MARKER_EOS, MARKER_GT, MARKER_GD, MARKER_FOOTER, MARKER_PROGRESS = 0, 1, 2, 3, 4  # readers skip PROGRESS

# the geometry VMware's own tools write, and so do we
GRAIN_SECTORS = 128
GRAIN_BYTES = GRAIN_SECTORS * SECTOR
GTES_PER_GT = 512
DESCRIPTOR_SECTORS = 20
OVERHEAD_SECTORS = 128  # align(1 + DESCRIPTOR_SECTORS, GRAIN_SECTORS)
MAX_OUTPUT_SECTORS = 0xFFFFFFFF  # grain table entries are u32 sectors


@dataclass
class SparseHeader:
    version: int
    flags: int
    capacity: int  # sectors
    grain_size: int  # sectors
    descriptor_offset: int
    descriptor_size: int
    gtes_per_gt: int
    rgd_offset: int
    gd_offset: int
    overhead: int
    compress_algorithm: int

    @property
    def compressed(self) -> bool:
        return bool(self.flags & FLAG_COMPRESSED)


def parse_header(raw: bytes, path: str) -> SparseHeader:
    if len(raw) < HEADER.size:
        raise DiskFormatError("truncated sparse header", path)
    (magic, version, flags, capacity, grain, desc_off, desc_size, gtes, rgd, gd,
     overhead, _unclean, _newline, algorithm) = HEADER.unpack_from(raw)
    if magic != MAGIC:
        raise DiskFormatError("not a hosted sparse extent (no KDMV magic)", path)
    if version not in (1, 2, 3):
        raise DiskFormatError(f"unsupported sparse extent version {version}", path)
    return SparseHeader(version, flags, capacity, grain, desc_off, desc_size, gtes, rgd, gd, overhead, algorithm)


def stream_header(capacity_sectors: int, gd_offset: int) -> bytes:
    """The header (and footer) sector of a streamOptimized disk as we write it."""
    head = HEADER.pack(
        MAGIC, 3, FLAG_NEWLINE_TEST | FLAG_COMPRESSED | FLAG_MARKERS, capacity_sectors, GRAIN_SECTORS,
        1, DESCRIPTOR_SECTORS, GTES_PER_GT, 0, gd_offset, OVERHEAD_SECTORS, 0, NEWLINE_TEST, COMPRESSION_DEFLATE)
    return head + bytes(SECTOR - len(head))


def marker(num_sectors: int, kind: int) -> bytes:
    return MARKER.pack(num_sectors, 0, kind) + bytes(SECTOR - MARKER.size)


_PAD = bytes(SECTOR)


def record_bound(grain_bytes: int) -> int:
    """The most bytes a compressed grain record of a ``grain_bytes`` grain takes before its padding: the head,
    and zlib's ``compressBound`` (stored blocks and the zlib wrapper around data that does not shrink)."""
    return GRAIN_HEAD.size + grain_bytes + (grain_bytes >> 12) + (grain_bytes >> 14) + (grain_bytes >> 25) + 13


def grain_record_parts(lba_sectors: int, compressed: Sequence[Any]) -> List[Any]:
    """One grain record as [head, the zlib stream's parts..., padding] - u64 LBA, u32 size, zlib data, zeros to a
    sector - so that a caller joining many records copies each grain's data once."""
    size = sum(len(part) for part in compressed)
    return [GRAIN_HEAD.pack(lba_sectors, size), *compressed, _PAD[:-(GRAIN_HEAD.size + size) % SECTOR]]


def u32_table(raw: bytes) -> array:
    """Little-endian u32 entries (grain directory, grain table) as an array of this machine's ints."""
    table = array("I")
    table.frombytes(raw)
    if sys.byteorder != "little":
        table.byteswap()
    return table


def u32_bytes(table: array) -> bytes:
    """The inverse of :func:`u32_table`: the array's entries as little-endian u32s."""
    if sys.byteorder != "little":
        table = array(table.typecode, table)
        table.byteswap()
    return table.tobytes()
