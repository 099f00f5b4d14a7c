# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Dynamic VHDX ([MS-VHDX] v20160714; docs/formats.md, VHDX), laid out as ``qemu-img convert -O vhdx`` does.

    0       file type identifier "vhdxfile" + creator (UTF-16)
    64 KiB  header 1, 128 KiB header 2 (CRC-32C; no log to replay: log GUID zero)
    192 KiB region table 1, 256 KiB region table 2 (CRC-32C): where the BAT and the metadata are
    1 MiB   the log (1 MiB, empty)
    2 MiB   the BAT (block allocation table), a whole number of MiB: written last
    then    the metadata region (1 MiB): block size, virtual size, disk id, 512-byte logical and physical sectors
    then    payload blocks, each at a MiB boundary, in the order of the disk

Block size as qemu picks it: 8 MiB up to 1 GiB, 16 MiB up to 100 GiB, 32 MiB up to 32 TiB, 64 MiB beyond. A block
holding any non-zero grain is written whole (FULLY_PRESENT, its zero grains holes in the file); a block of zeros
takes no space (PAYLOAD_BLOCK_ZERO, as qemu writes it). A sector-bitmap entry follows every ``chunk ratio``
payload entries in the BAT (2^23 x 512 / block size); it stays NOT_PRESENT, as in every disk without a parent.
"""
from __future__ import annotations

import hashlib
import struct
import sys
import uuid
from array import array
from typing import List, Optional

from .grains import GrainBatch
from .imagefile import ImageFile
from .vmdk import GRAIN_BYTES

KIB, MIB, GIB, TIB = 1 << 10, 1 << 20, 1 << 30, 1 << 40
SECTOR = 512
BAT_AT = 2 * MIB
LOG_AT, LOG_SIZE = MIB, MIB
METADATA_SIZE = MIB
MAX_BYTES = 64 * TIB  # the format's limit

BLOCK_ZERO = 2
BLOCK_FULLY_PRESENT = 6

REGION_BAT = uuid.UUID("2dc27766-f623-4200-9d64-115e9bfd4a08")
REGION_METADATA = uuid.UUID("8b7ca206-4790-4b9a-b8fe-575f050f886e")
META_FILE_PARAMETERS = uuid.UUID("caa16737-fa36-4d43-b3b6-33f0aa44e76b")
META_VIRTUAL_DISK_SIZE = uuid.UUID("2fa54224-cd1b-4876-b211-5dbed83bf4b8")
META_PAGE83 = uuid.UUID("beca12ab-b2e6-4523-93ef-c309e000c746")
META_LOGICAL_SECTOR = uuid.UUID("8141bf1d-a96f-4709-ba47-f233a8faab5f")
META_PHYSICAL_SECTOR = uuid.UUID("cda348c7-445d-4471-9cc9-e9885251c556")
IS_VIRTUAL_DISK, IS_REQUIRED = 0x2, 0x4


def _crc32c_table() -> List[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _bit in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_CRC32C = _crc32c_table()


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli), the checksum of VHDX headers and region tables: a few KiB, once per image."""
    crc = 0xFFFFFFFF
    table = _CRC32C
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _with_crc(block: bytearray) -> bytes:
    struct.pack_into("<I", block, 4, crc32c(bytes(block)))
    return bytes(block)


def block_size_for(capacity: int) -> int:
    if capacity > 32 * TIB:
        return 64 * MIB
    if capacity > 100 * GIB:
        return 32 * MIB
    if capacity > GIB:
        return 16 * MIB
    return 8 * MIB


def _guid(seed: str, what: str) -> bytes:
    return uuid.UUID(bytes=hashlib.sha256(f"{seed}|{what}".encode("utf-8")).digest()[:16], version=4).bytes_le


def _header(sequence: int, seed: str) -> bytes:
    block = bytearray(4 * KIB)
    struct.pack_into("<4sIQ16s16s16sHHIQ", block, 0, b"head", 0, sequence, _guid(seed, "file"),
                     _guid(seed, "data"), bytes(16), 0, 1, LOG_SIZE, LOG_AT)
    return _with_crc(block)


def _region_table(bat_length: int, metadata_at: int) -> bytes:
    block = bytearray(64 * KIB)
    struct.pack_into("<4sIII", block, 0, b"regi", 0, 2, 0)
    struct.pack_into("<16sQII", block, 16, REGION_BAT.bytes_le, BAT_AT, bat_length, 1)
    struct.pack_into("<16sQII", block, 48, REGION_METADATA.bytes_le, metadata_at, METADATA_SIZE, 1)
    return _with_crc(block)


def _metadata(capacity: int, block_size: int, seed: str) -> bytes:
    region = bytearray(METADATA_SIZE)
    items = [(META_FILE_PARAMETERS, struct.pack("<II", block_size, 0), IS_REQUIRED),
             (META_VIRTUAL_DISK_SIZE, struct.pack("<Q", capacity), IS_VIRTUAL_DISK | IS_REQUIRED),
             (META_PAGE83, _guid(seed, "disk"), IS_VIRTUAL_DISK | IS_REQUIRED),
             (META_LOGICAL_SECTOR, struct.pack("<I", SECTOR), IS_VIRTUAL_DISK | IS_REQUIRED),
             (META_PHYSICAL_SECTOR, struct.pack("<I", SECTOR), IS_VIRTUAL_DISK | IS_REQUIRED)]
    struct.pack_into("<8sHH", region, 0, b"metadata", 0, len(items))
    at = 64 * KIB  # item data starts after the 64 KiB table
    for index, (item, data, flags) in enumerate(items):
        struct.pack_into("<16sIII", region, 32 + 32 * index, item.bytes_le, at, len(data), flags)
        region[at:at + len(data)] = data
        at += len(data)
    return bytes(region)


class VhdxWriter:
    format = "vhdx"
    extension = "vhdx"
    compressed = False
    holes = 1
    sequential = False

    def __init__(self, out: ImageFile, capacity: int, seed: str) -> None:
        self.out = out
        self.capacity = capacity
        self.block_size = block_size_for(capacity)
        self.chunk_ratio = (1 << 23) * SECTOR // self.block_size
        self.blocks = -(-capacity // self.block_size)
        entries = self.blocks + (self.blocks - 1) // self.chunk_ratio
        self.bat = array("Q", [0]) * entries
        self.bat_length = -(-entries * 8 // MIB) * MIB
        metadata_at = BAT_AT + self.bat_length
        identifier = b"vhdxfile" + "ovatool".encode("utf-16-le")
        out.write(identifier + bytes(64 * KIB - len(identifier)))
        out.write(_header(1, seed) + bytes(60 * KIB))
        out.write(_header(2, seed) + bytes(60 * KIB))
        region = _region_table(self.bat_length, metadata_at)
        out.write(region)
        out.write(region)
        out.skip_to(BAT_AT)  # the log stays empty
        out.reserve(len(self.bat) * 8)  # the BAT: filled in by finish()
        out.skip_to(metadata_at)
        out.write(_metadata(capacity, self.block_size, seed))
        self.data_at = out.position
        self.current: Optional[int] = None  # the payload block being written
        self.current_at = 0

    @staticmethod
    def bound(capacity: int) -> int:
        """The most bytes the image takes: the head, the BAT, the metadata and every block present."""
        block_size = block_size_for(capacity)
        blocks = -(-capacity // block_size)
        return BAT_AT + -(-(blocks + blocks) * 8 // MIB) * MIB + METADATA_SIZE + blocks * block_size

    def _entry(self, block: int) -> int:
        return block + block // self.chunk_ratio

    def write_batch(self, batch: GrainBatch) -> None:
        out = self.out
        for grain, count in batch.runs(self.block_size // GRAIN_BYTES):
            offset = grain * GRAIN_BYTES
            block = offset // self.block_size
            if block != self.current:
                if self.current is not None:
                    out.skip_to(self.current_at + self.block_size)
                self.current, self.current_at = block, out.position  # a MiB boundary: blocks are whole MiB
                self.bat[self._entry(block)] = self.current_at | BLOCK_FULLY_PRESENT
            out.skip_to(self.current_at + offset % self.block_size)
            out.write(batch.span(grain, count))

    def finish(self) -> None:
        out = self.out
        if self.current is not None:
            out.skip_to(self.current_at + self.block_size)
        for block in range(self.blocks):
            if not self.bat[self._entry(block)]:
                self.bat[self._entry(block)] = BLOCK_ZERO
        table = array("Q", self.bat)
        if sys.byteorder != "little":
            table.byteswap()
        out.fill(BAT_AT, table.tobytes())
        out.end()
