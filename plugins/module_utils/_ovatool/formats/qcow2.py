# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""qcow2 version 3 (QEMU's docs/interop/qcow2.txt; docs/formats.md, qcow2), written front to back.

    cluster 0      the header (104 bytes, version 3, 64 KiB clusters, 16-bit refcounts): written last
    then           data clusters in the order of the disk; each L2 table right after the 512 MiB of the disk it
                   maps (8192 entries), as soon as that span is done
    at the end     the L1 table, the refcount table and the refcount blocks (they count themselves too)

A grain of the VMDK is a cluster (64 KiB). Zero and unallocated grains stay unallocated (L2 entry 0, read as
zeros). A compressed cluster is raw deflate with a window of at most 4 KiB (what QEMU inflates with), put at the
next sector; its L2 entry holds the byte offset and the count of further 512-byte sectors. A cluster that does
not shrink below 64 KiB, the disk's last partial cluster, and every cluster under ``compression: none`` are stored
as they are, at a cluster boundary, with the COPIED flag (refcount 1). A host cluster's refcount is the number of
entries that point into it.
"""
from __future__ import annotations

import struct
import sys
from array import array
from typing import Optional

from .grains import GrainBatch
from .imagefile import ImageFile

CLUSTER_BITS = 16
CLUSTER = 1 << CLUSTER_BITS
L2_ENTRIES = CLUSTER // 8
REFCOUNTS_PER_BLOCK = CLUSTER // 2  # refcount_order 4: 16 bits each
COPIED = 1 << 63
COMPRESSED = 1 << 62
CSIZE_SHIFT = 62 - (CLUSTER_BITS - 8)
SECTOR = 512
_HEADER = struct.Struct(">4sIQIIQIIQQIIQQQQII")


def _big_endian(table: array) -> bytes:
    copy = array(table.typecode, table)
    if sys.byteorder == "little":
        copy.byteswap()
    return copy.tobytes()


class Qcow2Writer:
    format = "qcow2"
    extension = "qcow2"
    holes = 1
    sequential = False

    def __init__(self, out: ImageFile, capacity: int, compressed: bool) -> None:
        self.out = out
        self.capacity = capacity
        self.compressed = compressed
        self.l1 = array("Q", [0]) * max(1, -(-capacity // (CLUSTER * L2_ENTRIES)))
        self.l2: Optional[array] = None
        self.l2_index = -1
        self.refcounts = array("H")  # per host cluster
        out.reserve(CLUSTER)  # the header: filled in by finish()
        self._count(0, CLUSTER)

    @staticmethod
    def bound(capacity: int) -> int:
        """The most bytes the image of a disk of ``capacity`` bytes takes: every cluster stored (a compressed one
        is smaller than a cluster plus its alignment), its L2 tables, the L1 table and the refcounts."""
        clusters = -(-capacity // CLUSTER)
        tables = -(-clusters // L2_ENTRIES)
        return CLUSTER * (2 + clusters + tables + -(-tables * 8 // CLUSTER)) + (clusters + tables) * SECTOR \
            + 8 * CLUSTER + clusters * 4

    def _count(self, offset: int, length: int) -> None:
        """One more reference to every host cluster that [offset, offset + length) touches."""
        last = (offset + length - 1) // CLUSTER
        if len(self.refcounts) <= last:
            self.refcounts.extend([0] * (last + 1 - len(self.refcounts)))
        for cluster in range(offset // CLUSTER, last + 1):
            self.refcounts[cluster] += 1

    def _table_at(self, data: bytes) -> int:
        """Write a table (L2, L1...) at the next cluster; returns where."""
        out = self.out
        out.align(CLUSTER)
        at = out.position
        size = len(data) + -len(data) % CLUSTER
        out.write(data + bytes(size - len(data)))
        self._count(at, size)
        return at

    def _flush_l2(self) -> None:
        if self.l2 is not None:
            self.l1[self.l2_index] = self._table_at(_big_endian(self.l2)) | COPIED
        self.l2 = None

    def write_batch(self, batch: GrainBatch) -> None:
        out = self.out
        for grain, sector in batch.entries:
            index = grain // L2_ENTRIES
            if index != self.l2_index or self.l2 is None:
                self._flush_l2()
                self.l2_index = index
                self.l2 = array("Q", [0]) * L2_ENTRIES
            table = self.l2
            packed = batch.deflated(sector) if self.compressed else None
            data = batch.grain(grain)
            if packed is not None and len(data) == CLUSTER and len(packed) < CLUSTER:
                out.align(SECTOR)
                at = out.position
                sectors = -(-len(packed) // SECTOR)
                out.write(packed)
                out.align(SECTOR)
                entry = COMPRESSED | (sectors - 1) << CSIZE_SHIFT | at
                self._count(at, sectors * SECTOR)
            else:
                out.align(CLUSTER)
                at = out.position
                out.write(data)
                out.skip(CLUSTER - len(data))
                entry = COPIED | at
                self._count(at, CLUSTER)
            table[grain % L2_ENTRIES] = entry

    def finish(self) -> None:
        out = self.out
        self._flush_l2()
        l1_at = self._table_at(_big_endian(self.l1))
        out.align(CLUSTER)
        used = out.position // CLUSTER
        # the refcount table and blocks cover every cluster, themselves included
        blocks = table = 0
        while True:
            total = used + blocks + table
            need_blocks = -(-total // REFCOUNTS_PER_BLOCK)
            need_table = -(-need_blocks * 8 // CLUSTER)
            if (need_blocks, need_table) == (blocks, table):
                break
            blocks, table = need_blocks, need_table
        table_at = out.position
        blocks_at = table_at + table * CLUSTER
        self._count(table_at, (table + blocks) * CLUSTER)
        pointers = array("Q", [blocks_at + n * CLUSTER for n in range(blocks)])
        out.write(_big_endian(pointers) + bytes(table * CLUSTER - 8 * blocks))
        counts = array("H", self.refcounts)
        counts.extend([0] * (blocks * REFCOUNTS_PER_BLOCK - len(counts)))
        out.write(_big_endian(counts))
        header = _HEADER.pack(b"QFI\xfb", 3, 0, 0, CLUSTER_BITS, self.capacity, 0, len(self.l1), l1_at, table_at,
                              table, 0, 0, 0, 0, 0, 4, _HEADER.size)
        out.fill(0, header + bytes(CLUSTER - len(header)))
        out.end()
