# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fixed VHD (Virtual Hard Disk Image Format Specification, Microsoft, 2006; docs/formats.md, VHD).

The disk's bytes, its size rounded up to a whole MiB (Azure takes no other), then the 512-byte footer: cookie
"conectix", fixed disk type, current and original size, a CHS geometry computed as the specification's appendix
does, and a checksum (the one's complement of the byte sum). Zeros are holes in the file.
"""
from __future__ import annotations

import hashlib
import struct
import time
import uuid

from ..errors import OvatoolError
from .grains import GrainBatch
from .imagefile import ImageFile, copy_grains

MIB = 1 << 20
MAX_BYTES = 2040 << 30  # the largest fixed VHD Azure and qemu take (qemu: VHD_MAX_SECTORS)
_EPOCH_2000 = 946684800  # 2000-01-01T00:00:00Z, the footer's time origin
_FOOTER = struct.Struct(">8sIIQI4sI4sQQHBBII16sB427x")
# readers (qemu among them) take the disk's size from the footer only for the creators known to mean it ("win " of
# Hyper-V, "qem2", "d2v ", "CTXS", "tap"), and otherwise from the CHS geometry, which cannot express most sizes and
# would cut the disk short: so "win ", as Hyper-V and Azure's own tools write it
CREATOR = b"win "
DISK_FIXED = 2


def vhd_size(capacity: int) -> int:
    return -(-capacity // MIB) * MIB


def geometry(size: int):
    """(cylinders, heads, sectors per track) for ``size`` bytes: the VHD specification's algorithm."""
    total = min(size // 512, 65535 * 16 * 255)
    if total >= 65535 * 16 * 63:
        spt, heads = 255, 16
        cth = total // spt
    else:
        spt = 17
        cth = total // spt
        heads = max(4, (cth + 1023) // 1024)
        if cth >= heads * 1024 or heads > 16:
            spt, heads = 31, 16
            cth = total // spt
        if cth >= heads * 1024:
            spt, heads = 63, 16
            cth = total // spt
    return cth // heads, heads, spt


def footer(size: int, seed: str, stamp: int) -> bytes:
    cylinders, heads, spt = geometry(size)
    unique = uuid.UUID(bytes=hashlib.sha256(seed.encode("utf-8")).digest()[:16]).bytes
    fields = [b"conectix", 2, 0x00010000, 0xFFFFFFFFFFFFFFFF, max(0, stamp - _EPOCH_2000) & 0xFFFFFFFF, CREATOR,
              0x00010000, b"Wi2k", size, size, cylinders, heads, spt, DISK_FIXED, 0, unique, 0]
    checksum = ~sum(_FOOTER.pack(*fields)) & 0xFFFFFFFF
    fields[14] = checksum
    return _FOOTER.pack(*fields)


class VhdWriter:
    format = "vhd"
    extension = "vhd"
    compressed = False
    holes = 0
    sequential = True

    def __init__(self, out: ImageFile, capacity: int, seed: str, stamp: int = 0) -> None:
        self.size = vhd_size(capacity)
        if self.size > MAX_BYTES:
            raise OvatoolError(f"a fixed VHD holds at most 2040 GiB; this disk has {capacity} bytes")
        self.out = out
        self.footer = footer(self.size, seed, stamp or int(time.time()))

    @staticmethod
    def bound(capacity: int) -> int:
        return vhd_size(capacity) + 512

    def write_batch(self, batch: GrainBatch) -> None:
        copy_grains(self.out, 0, batch)

    def finish(self) -> None:
        self.out.skip_to(self.size)
        self.out.write(self.footer)
        self.out.end()
