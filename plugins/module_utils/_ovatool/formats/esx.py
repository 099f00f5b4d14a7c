# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""ESXi snapshot deltas: vmfsSparse ("COWD") and seSparse extents.

Layouts as qemu's block/vmdk.c reads them (seSparse has no public
specification; these checks are as strict as qemu's):

- COWD: after the magic, u32 version, flags, capacity (sectors), grain size
  (sectors), grain directory offset (sectors), grain directory entries, ...;
  grain tables of 4096 u32 sector offsets.
- seSparse: a 512-byte const header (magic 0xcafebabe, version 0x200000001,
  grain size 8 sectors, grain tables of 64 sectors = 4096 u64 entries, offsets
  of the volatile header, grain directory, grain tables and grains) and a
  volatile header (magic 0xcafecafe, no journal to replay). A directory entry
  0x1000000000000000|n names grain table n; a table entry's top nibble says
  0 unallocated, 1 unmapped and 2 zero (both read as zeros), 3 allocated.
"""
from __future__ import annotations

import os
import struct

from ..errors import DiskFormatError
from .sparse import ZERO_GRAIN, GrainTableExtent
from .vmdk import SECTOR

COWD_MAGIC = b"COWD"
_COWD = struct.Struct("<4s7I")
COWD_GTES = 4096

SESPARSE_MAGIC = 0xCAFEBABE
SESPARSE_VOLATILE_MAGIC = 0xCAFECAFE
SESPARSE_VERSION = 0x0000000200000001
_SE_CONST = struct.Struct("<26Q")
_SE_VOLATILE = struct.Struct("<4Q")


class CowdExtent(GrainTableExtent):
    """An ESXi vmfsSparse delta extent."""

    def __init__(self, path: str, fd: int, file_size: int, sectors: int) -> None:
        self.path = path
        self.fd = fd
        self.file_size = file_size
        head = os.pread(fd, _COWD.size, 0)
        if len(head) < _COWD.size or head[:4] != COWD_MAGIC:
            raise DiskFormatError("not a vmfsSparse extent (no COWD magic)", path)
        _magic, _version, _flags, capacity, grain, gd_offset, gd_entries, _file_sectors = _COWD.unpack(head)
        self._setup(grain, COWD_GTES, capacity, sectors)
        needed = -(-capacity // (grain * COWD_GTES))
        if gd_entries < needed:
            raise DiskFormatError(f"grain directory of {gd_entries} entries, {needed} needed", path)
        self._load_gd(gd_offset, needed)


class SeSparseExtent(GrainTableExtent):
    """An ESXi 6.5+ seSparse delta extent (read-only, like qemu)."""

    table_format = "Q"

    def __init__(self, path: str, fd: int, file_size: int, sectors: int) -> None:
        self.path = path
        self.fd = fd
        self.file_size = file_size
        raw = os.pread(fd, SECTOR, 0)
        if len(raw) < SECTOR:
            raise DiskFormatError("truncated seSparse header", path)
        (magic, version, capacity, grain, table_sectors, flags, r1, r2, r3, r4, volatile_offset, _vsize,
         _jh_offset, _jh_size, _j_offset, _j_size, gd_offset, gd_sectors, tables_offset, _tables_size,
         _fb_offset, _fb_size, _bm_offset, _bm_size, grains_offset, _grains_size) = _SE_CONST.unpack_from(raw)
        if magic != SESPARSE_MAGIC:
            raise DiskFormatError("not a seSparse extent (bad const header magic)", path)
        if version != SESPARSE_VERSION or grain != 8 or table_sectors != 64 or flags or r1 or r2 or r3 or r4:
            raise DiskFormatError(f"unsupported seSparse variant (version {version:#x}, grain size {grain}, "
                                  f"grain table size {table_sectors}, flags {flags:#x})", path)
        volatile = os.pread(fd, _SE_VOLATILE.size, volatile_offset * SECTOR)
        if len(volatile) < _SE_VOLATILE.size:
            raise DiskFormatError("the seSparse volatile header lies outside the file", path)
        v_magic, _free_gt, _txn, replay = _SE_VOLATILE.unpack(volatile)
        if v_magic != SESPARSE_VOLATILE_MAGIC:
            raise DiskFormatError("not a seSparse extent (bad volatile header magic)", path)
        if replay:
            raise DiskFormatError("the seSparse journal needs replaying (the delta was not closed cleanly); "
                                  "power the VM on and off in ESXi, or consolidate its snapshots", path)
        entries_per_table = table_sectors * SECTOR // 8
        self._setup(grain, entries_per_table, capacity, sectors)
        needed = -(-capacity // (grain * entries_per_table))
        if gd_sectors * SECTOR // 8 < needed:
            raise DiskFormatError(f"grain directory of {gd_sectors} sectors is too small", path)
        self._tables_offset = tables_offset
        self._grains_offset = grains_offset
        self._load_gd(gd_offset, needed)

    def _table_sector(self, index: int, entry: int) -> int:
        if entry & 0xFFFFFFFF00000000 != 0x1000000000000000:
            raise DiskFormatError(f"grain directory entry {index} is invalid ({entry:#x})", self.path)
        return self._tables_offset + (entry & 0xFFFFFFFF) * (self.gt_bytes // SECTOR)

    def _entry(self, raw: int) -> int:
        kind = raw >> 60
        if kind == 0:
            if raw:
                raise DiskFormatError(f"invalid unallocated grain table entry {raw:#x}", self.path)
            return 0
        if kind in (1, 2):
            return ZERO_GRAIN
        if kind == 3:
            cluster = ((raw & 0x0FFF000000000000) >> 48) | ((raw & 0x0000FFFFFFFFFFFF) << 12)
            return self._grains_offset + cluster * (self.grain_bytes // SECTOR)
        raise DiskFormatError(f"invalid grain table entry {raw:#x}", self.path)
