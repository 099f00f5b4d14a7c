# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""ESXi delta disks (vmfsSparse/COWD and seSparse) written for the tests.

No tool here can create them (qemu-img only reads them), so the tests write
them from the layout qemu's block/vmdk.c reads, independently of the engine,
and then use qemu-img's reading of the same files as the oracle.
"""
from __future__ import annotations

import os
import struct
from typing import Dict, Tuple

SECTOR = 512


def _write_descriptor(path: str, create_type: str, extent_type: str, extent_name: str, sectors: int,
                      parent: Tuple[str, str], cid: str = "5eed0001") -> str:
    """``parent``: (file name hint, CID)."""
    parent_hint, parent_cid = parent
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(
            "# Disk DescriptorFile\nversion=1\nencoding=\"UTF-8\"\n"
            f"CID={cid}\nparentCID={parent_cid}\nisNativeSnapshot=\"no\"\ncreateType=\"{create_type}\"\n"
            f"parentFileNameHint=\"{parent_hint}\"\n\n# Extent description\n"
            f"RW {sectors} {extent_type} \"{extent_name}\"\n\n# The Disk Data Base \n#DDB\n\n"
            "ddb.adapterType = \"lsilogic\"\nddb.virtualHWVersion = \"14\"\n")
    return path


def cowd_delta(folder: str, name: str, capacity_sectors: int, grains: Dict[int, bytes], grain_sectors: int,
               parent_hint: str, parent_cid: str) -> str:
    """A vmfsSparse child: descriptor ``name``.vmdk + ``name``-delta.vmdk with the given grains."""
    gtes = 4096
    tables = -(-capacity_sectors // (grain_sectors * gtes))
    gd_offset = 4
    gt_offset = gd_offset + -(-tables * 4 // SECTOR)
    data_offset = gt_offset + tables * (gtes * 4 // SECTOR)
    directory = [gt_offset + i * (gtes * 4 // SECTOR) for i in range(tables)]
    table_entries = [0] * (tables * gtes)
    next_sector = data_offset
    payload = []
    for grain in sorted(grains):
        table_entries[grain] = next_sector
        payload.append((next_sector, grains[grain]))
        next_sector += grain_sectors
    delta = os.path.join(folder, f"{name}-delta.vmdk")
    with open(delta, "wb") as handle:
        handle.write(b"COWD" + struct.pack("<10I", 1, 3, capacity_sectors, grain_sectors, gd_offset, tables,
                                           next_sector, 0, 0, 0).ljust(SECTOR - 4, b"\0"))
        _write_body(handle, (gd_offset, struct.pack(f"<{tables}I", *directory)),
                    (gt_offset, struct.pack(f"<{len(table_entries)}I", *table_entries)), payload, grain_sectors)
    return _write_descriptor(os.path.join(folder, f"{name}.vmdk"), "vmfsSparse", "VMFSSPARSE",
                             os.path.basename(delta), capacity_sectors, (parent_hint, parent_cid))


def _write_body(handle, directory, tables, payload, grain_sectors: int) -> None:
    """The grain directory and the grain tables ((sector, bytes) each), then every grain, padded to a grain."""
    for sector, data in (directory, tables):
        handle.seek(sector * SECTOR)
        handle.write(data)
    for sector, data in payload:
        handle.seek(sector * SECTOR)
        handle.write(data.ljust(grain_sectors * SECTOR, b"\0"))


def sesparse_delta(folder: str, name: str, capacity_sectors: int, grains: Dict[int, bytes], zero_grains,
                   parent_hint: str, parent_cid: str) -> str:
    """A seSparse child (4 KiB grains, 4096-entry u64 tables): descriptor + ``name``-sesparse.vmdk."""
    grain_sectors, gtes = 8, 4096
    tables = -(-capacity_sectors // (grain_sectors * gtes))
    gd_offset, gd_sectors = 2, max(1, -(-tables * 8 // SECTOR))
    tables_offset = gd_offset + gd_sectors
    grains_offset = tables_offset + tables * 64
    table_entries = [0] * (tables * gtes)
    for grain in zero_grains:
        table_entries[grain] = 0x2000000000000000
    payload = []
    for cluster, grain in enumerate(sorted(grains)):
        encoded = ((cluster & 0xFFF) << 48) | (cluster >> 12)
        table_entries[grain] = 0x3000000000000000 | encoded
        payload.append((grains_offset + cluster * grain_sectors, grains[grain]))
    const = struct.pack("<26Q", 0xCAFEBABE, 0x0000000200000001, capacity_sectors, grain_sectors, 64, 0, 0, 0, 0, 0,
                        1, 1, 0, 0, 0, 0, gd_offset, gd_sectors, tables_offset, tables * 64, 0, 0, 0, 0,
                        grains_offset, len(grains) * grain_sectors)
    delta = os.path.join(folder, f"{name}-sesparse.vmdk")
    with open(delta, "wb") as handle:
        handle.write(const.ljust(SECTOR, b"\0"))
        handle.write(struct.pack("<4Q", 0xCAFECAFE, tables, 1, 0).ljust(SECTOR, b"\0"))
        _write_body(handle, (gd_offset, struct.pack(f"<{tables}Q", *[0x1000000000000000 | i for i in range(tables)])),
                    (tables_offset, struct.pack(f"<{len(table_entries)}Q", *table_entries)), payload, grain_sectors)
    return _write_descriptor(os.path.join(folder, f"{name}.vmdk"), "seSparse", "SESPARSE",
                             os.path.basename(delta), capacity_sectors, (parent_hint, parent_cid))
