# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Hosted sparse extents ("KDMV"): monolithicSparse and twoGbMaxExtentSparse.

A 512-byte header, a grain directory (GD) of u32 sector offsets to grain
tables (GT), each of ``numGTEsPerGT`` u32 sector offsets to grains of
``grainSize`` sectors. A GTE of 0 is unallocated; 1 is an explicitly zero
grain when flag bit 2 is set. Only allocated grains are ever read, and every
offset is checked against the file before it is used.
"""
from __future__ import annotations

import os
import sys
import zlib
from array import array
from typing import Iterator, Optional, Tuple

from ..errors import DiskFormatError
from ..fileio import pread_into, read_ahead, zero_fill
from ..ranges import merge_ranges
from .vmdk import (FLAG_ZERO_GRAIN_GTE, GD_AT_END, GRAIN_HEAD, MAX_CAPACITY_SECTORS, MAX_GRAIN_SECTORS, SECTOR,
                   SparseHeader, parse_header, record_bound)


def read_embedded_descriptor(fd: int, header: SparseHeader, file_size: int, path: str) -> bytes:
    if header.descriptor_offset == 0 or header.descriptor_size == 0:
        return b""
    start = header.descriptor_offset * SECTOR
    size = header.descriptor_size * SECTOR
    if start + size > file_size or size > 1024 * 1024:
        raise DiskFormatError("embedded descriptor lies outside the file", path)
    return os.pread(fd, size, start)


ZERO_GRAIN = -1  # a grain table entry that says "zeros", shadowing any parent


class GrainTableExtent:
    """A grain directory of grain tables of grain offsets: hosted sparse, COWD and seSparse alike.

    Subclasses set the geometry and ``gd``, and say how to find a grain table
    (``_table_sector``) and what an entry means (``_entry``: a data sector,
    0 for unallocated, or ZERO_GRAIN).
    """

    table_format = "I"
    compressed = False
    path: str
    fd: int
    file_size: int
    capacity: int
    grain_bytes: int
    gtes: int
    gd: array

    def _setup(self, grain_sectors: int, gtes: int, capacity_sectors: int, declared_sectors: int) -> None:
        if grain_sectors == 0 or grain_sectors > MAX_GRAIN_SECTORS or grain_sectors & (grain_sectors - 1):
            raise DiskFormatError(f"invalid grain size of {grain_sectors} sectors", self.path)
        if not 1 <= gtes <= 4096:
            raise DiskFormatError(f"invalid number of grain table entries ({gtes})", self.path)
        if capacity_sectors == 0 or capacity_sectors > MAX_CAPACITY_SECTORS:
            raise DiskFormatError(f"absurd capacity of {capacity_sectors} sectors", self.path)
        if declared_sectors > capacity_sectors:
            raise DiskFormatError(
                f"the descriptor declares {declared_sectors} sectors but the extent holds {capacity_sectors}",
                self.path)
        self.capacity = (declared_sectors or capacity_sectors) * SECTOR
        self.grain_bytes = grain_sectors * SECTOR
        self.gtes = gtes
        self.span_bytes = self.grain_bytes * gtes
        self.gt_bytes = gtes * array(self.table_format).itemsize
        self._cache: dict = {}

    def _read_array(self, offset: int, count: int, what: str) -> array:
        table = array(self.table_format)
        size = count * table.itemsize
        if offset <= 0 or offset + size > self.file_size:
            raise DiskFormatError(f"{what} lies outside the file of {self.file_size} bytes", self.path)
        table.frombytes(os.pread(self.fd, size, offset))
        if sys.byteorder != "little":
            table.byteswap()
        return table

    def _load_gd(self, sector: int, entries: int) -> None:
        self.gd = self._read_array(sector * SECTOR, entries,
                                   f"grain directory at sector {sector} ({entries} entries)")

    def _table_sector(self, index: int, entry: int) -> int:
        return entry

    def _entry(self, raw: int) -> int:
        return raw

    def _grain_table(self, index: int) -> Optional[array]:
        """Grain table ``index`` (None when unallocated), validated, cached."""
        cached = self._cache.get(index)
        if cached is not None:
            return cached
        entry = self.gd[index]
        if entry == 0:
            return None
        sector = self._table_sector(index, entry)
        if sector * SECTOR + self.gt_bytes > self.file_size or sector <= 0:
            raise DiskFormatError(
                f"grain directory entry {index} points past the end of the file (sector {sector})", self.path)
        table = self._read_array(sector * SECTOR, self.gtes, f"grain table {index}")
        if len(self._cache) >= 4:
            self._cache.clear()
        self._cache[index] = table
        return table

    def _grain_sector(self, grain: int) -> int:
        """File sector of a grain's data; 0 unallocated; ZERO_GRAIN when explicitly zero."""
        table = self._grain_table(grain // self.gtes)
        if table is None:
            return 0
        sector = self._entry(table[grain % self.gtes])
        if sector > 0 and sector * SECTOR >= self.file_size:
            raise DiskFormatError(
                f"grain table entry for grain {grain} points past the end of the file (sector {sector})",
                self.path)
        return sector

    def allocated_ranges(self) -> Iterator[Tuple[int, int]]:
        """Byte ranges (offset, length) of grains holding data, ascending, merged."""
        return merge_ranges(self._data_grains())

    def _data_grains(self) -> Iterator[Tuple[int, int]]:
        decode = self._entry
        for gt_index in range(len(self.gd)):
            if self.gd[gt_index] == 0:
                continue
            base = gt_index * self.span_bytes
            if base >= self.capacity:
                break
            table = self._grain_table(gt_index)
            if table is None or not any(table):
                continue
            for slot, entry in enumerate(table):
                if entry == 0 or decode(entry) <= 0:
                    continue
                start = base + slot * self.grain_bytes
                if start >= self.capacity:
                    break
                yield start, min(self.grain_bytes, self.capacity - start)

    def _runs(self, offset: int, length: int) -> Iterator[Tuple[int, int, int, int]]:
        """Where the bytes [offset, offset+length) come from, in order: (file offset, position in the range,
        length, sector). Physically adjacent grains are merged into one run; ``file offset`` is -1 for a grain
        that reads as zeros and -2 for a compressed grain (one run per grain, at ``sector``)."""
        grain_bytes = self.grain_bytes
        pos = offset
        end = offset + length
        run_file = -1  # file offset where the current physical run starts
        run_out = 0  # where that run goes in the range
        run_len = 0
        while pos < end:
            grain = pos // grain_bytes
            within = pos - grain * grain_bytes
            take = min(grain_bytes - within, end - pos)
            sector = self._grain_sector(grain)
            if sector > 0 and not self.compressed and run_len and run_file + run_len == sector * SECTOR + within:
                run_len += take
            else:
                if run_len:
                    yield run_file, run_out, run_len, 0
                    run_len = 0
                if sector > 0 and not self.compressed:
                    run_file, run_out, run_len = sector * SECTOR + within, pos - offset, take
                else:
                    yield (-2 if sector > 0 else -1), pos - offset, take, sector
            pos += take
        if run_len:
            yield run_file, run_out, run_len, 0

    def read_into(self, offset: int, view: memoryview) -> None:
        """Fill ``view`` with bytes [offset, offset+len(view)); unallocated grains read as zeros."""
        for file_offset, at, length, sector in self._runs(offset, len(view)):
            if file_offset >= 0:
                self._fill(view[at:at + length], file_offset)
            elif file_offset == -1:
                zero_fill(view[at:at + length])
            else:
                grain, within = divmod(offset + at, self.grain_bytes)
                view[at:at + length] = self._inflate(grain, sector)[within:within + length]

    def advise(self, offset: int, length: int) -> None:
        """Ask the kernel to start reading the file runs behind [offset, offset+length) (fileio.read_ahead)."""
        for file_offset, _at, run, sector in self._runs(offset, length):
            if file_offset >= 0:
                read_ahead(self.fd, file_offset, run)
            elif file_offset == -2:
                read_ahead(self.fd, sector * SECTOR, record_bound(self.grain_bytes))

    def present_ranges(self, offset: int, length: int) -> Iterator[Tuple[int, int]]:
        """Sub-ranges of [offset, offset+length) this extent defines itself (data or explicit
        zeros), as opposed to leaving them to a parent disk."""
        return merge_ranges(self._defined_grains(offset, offset + length))

    def _defined_grains(self, pos: int, end: int) -> Iterator[Tuple[int, int]]:
        grain_bytes = self.grain_bytes
        while pos < end:
            grain = pos // grain_bytes
            take = min((grain + 1) * grain_bytes, end) - pos
            if self._grain_sector(grain) != 0:
                yield pos, take
            pos += take

    def _fill(self, view: memoryview, file_offset: int) -> None:
        got = pread_into(self.fd, view, file_offset)
        if got < len(view):  # a last grain cut short by the end of the file reads as zeros past it
            zero_fill(view[got:])

    def _inflate(self, grain: int, sector: int) -> bytes:
        raise DiskFormatError("internal error: compressed grains in an uncompressed extent", self.path)


class SparseExtent(GrainTableExtent):
    """One hosted sparse ("KDMV") extent file, or a streamOptimized one (compressed grains)."""

    def __init__(self, path: str, fd: int, header: SparseHeader, file_size: int, sectors: int) -> None:
        self.path = path
        self.fd = fd
        self.header = header
        self.file_size = file_size
        h = header
        if h.gd_offset == GD_AT_END:
            h = self.header = self._footer_header(h)
        self._setup(h.grain_size, h.gtes_per_gt, h.capacity, sectors)
        gd_entries = -(-h.capacity // (h.grain_size * h.gtes_per_gt))
        self._load_gd(h.gd_offset, gd_entries)
        self.compressed = h.compressed
        self._zero_marker = 1 if h.flags & FLAG_ZERO_GRAIN_GTE else None
        # grains live after the header, descriptor and tables: an entry below that points into metadata
        self._first_data = 1 + (h.descriptor_size if h.descriptor_offset else 0)

    def _entry(self, raw: int) -> int:
        if raw == self._zero_marker:
            return ZERO_GRAIN
        if 0 < raw < self._first_data:
            raise DiskFormatError(f"a grain table entry points into the header (sector {raw})", self.path)
        return raw

    def _footer_header(self, header: SparseHeader) -> SparseHeader:
        """A stream disk keeps its grain directory offset in the footer, 1024 bytes before the end."""
        if self.file_size < 3 * SECTOR:
            raise DiskFormatError("truncated stream disk: no footer", self.path)
        try:
            footer = parse_header(os.pread(self.fd, SECTOR, self.file_size - 2 * SECTOR), self.path)
        except DiskFormatError:
            raise DiskFormatError("truncated stream disk: no footer at the end of the file", self.path) from None
        if footer.gd_offset in (0, GD_AT_END):
            raise DiskFormatError("the stream disk's footer has no grain directory offset (truncated?)", self.path)
        return footer

    def _inflate(self, grain: int, sector: int) -> bytes:
        """One compressed grain record (u64 LBA, u32 size, zlib data), checked and inflated."""
        head = os.pread(self.fd, GRAIN_HEAD.size, sector * SECTOR)
        if len(head) < GRAIN_HEAD.size:
            raise DiskFormatError(f"compressed grain {grain} lies past the end of the file", self.path)
        lba, size = GRAIN_HEAD.unpack(head)
        expected_lba = grain * self.header.grain_size
        if lba != expected_lba:
            raise DiskFormatError(f"grain table entry for grain {grain} points at the grain of LBA {lba}",
                                  self.path)
        if size == 0 or sector * SECTOR + GRAIN_HEAD.size + size > self.file_size:
            raise DiskFormatError(f"compressed grain {grain} of {size} bytes runs past the end of the file",
                                  self.path)
        expected = min(self.grain_bytes, self.capacity - grain * self.grain_bytes)
        try:
            data = zlib.decompress(os.pread(self.fd, size, sector * SECTOR + GRAIN_HEAD.size))
        except zlib.error as exc:
            raise DiskFormatError(f"compressed grain {grain} does not inflate: {exc}", self.path) from None
        if len(data) < expected or len(data) > self.grain_bytes:
            raise DiskFormatError(f"compressed grain {grain} inflates to {len(data)} bytes, not {expected}",
                                  self.path)
        return data
