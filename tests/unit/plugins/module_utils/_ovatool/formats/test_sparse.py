# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""formats/sparse.py reads hosted sparse extents as VMware's Virtual Disk Format 5.0 lays them out: a
monolithicSparse file built here field by field (header, embedded descriptor, grain directory, grain table,
grains, a zero-grain entry), and the streamOptimized disk formats/stream.py writes."""
from __future__ import annotations

import struct

import pytest

from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.errors import DiskFormatError
from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.formats.disk import open_disk
from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.formats.stream import StreamVmdkWriter

from support.membytes import GRAIN, TEXT, sample_disk, streamed

SECTOR = 512
CAPACITY = 1024 * 128  # sectors: 64 MiB, two grain tables' span


def monolithic_sparse(grains: dict, zero_grain: int = -1, entry_override: dict = None) -> bytes:
    """A monolithicSparse extent: header at 0, descriptor at sector 1 (20 sectors), GD at 21, two GTs at 22 and
    26, grains from sector 128 on; ``grains`` maps a grain number to its 64 KiB."""
    descriptor = ('# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\ncreateType="monolithicSparse"'
                  f'\n\nRW {CAPACITY} SPARSE "x.vmdk"\n\nddb.adapterType = "lsilogic"\n').encode()
    flags = 1 | 1 << 2  # newline test, zero-grain GTEs (entry 1 = zeros)
    head = struct.pack("<4sIIQQQQIQQQB4sH", b"KDMV", 1, flags, CAPACITY, 128, 1, 20, 512, 0, 21, 128, 0,
                       b"\n \r\n", 0)
    tables = [[0] * 512, [0] * 512]
    body = b""
    for number, sector in enumerate(sorted(grains)):
        tables[sector // 512][sector % 512] = 128 + number * 128
        body += grains[sector]
    if zero_grain >= 0:
        tables[zero_grain // 512][zero_grain % 512] = 1
    for grain, entry in (entry_override or {}).items():
        tables[grain // 512][grain % 512] = entry
    image = bytearray(128 * SECTOR)
    image[:len(head)] = head
    image[SECTOR:SECTOR + len(descriptor)] = descriptor
    image[21 * SECTOR:21 * SECTOR + 8] = struct.pack("<2I", 22, 26)
    for number, table in enumerate(tables):
        image[(22 + 4 * number) * SECTOR:(26 + 4 * number) * SECTOR] = struct.pack("<512I", *table)
    return bytes(image) + body


def test_a_monolithic_sparse_extent_reads_as_its_grains(tmp_path):
    one, two = TEXT[:GRAIN], bytes(range(256)) * (GRAIN // 256)
    path = tmp_path / "x.vmdk"
    path.write_bytes(monolithic_sparse({0: one, 700: two}, zero_grain=5))
    with open_disk(str(path)) as disk:
        assert disk.capacity == CAPACITY * SECTOR and disk.create_type == "monolithicSparse"
        assert list(disk.allocated_ranges()) == [(0, GRAIN), (700 * GRAIN, GRAIN)], "the zero grain holds no data"
        view = memoryview(bytearray(3 * GRAIN))
        disk.read_into(699 * GRAIN, view)
        assert bytes(view) == bytes(GRAIN) + two + bytes(GRAIN)
        view = memoryview(bytearray(GRAIN + 10))
        disk.read_into(0, view)
        assert bytes(view) == one + bytes(10)
        disk.read_into(5 * GRAIN, view)
        assert not any(view)


def test_a_grain_table_entry_into_the_header_is_refused(tmp_path):
    path = tmp_path / "x.vmdk"
    path.write_bytes(monolithic_sparse({0: TEXT[:GRAIN]}, entry_override={3: 10}))  # sector 10: the descriptor
    with pytest.raises(DiskFormatError, match="points into the header"):
        with open_disk(str(path)) as disk:
            disk.read_into(3 * GRAIN, memoryview(bytearray(GRAIN)))


def test_the_stream_disk_the_writer_writes_reads_back_as_the_disk(tmp_path):
    data = sample_disk(grains=600, tail=1024)  # disks are whole sectors
    descriptor = ('# Disk DescriptorFile\nversion=1\nCID=12345678\nparentCID=ffffffff\ncreateType="streamOptimized"'
                  f'\n\nRW {len(data) // SECTOR} SPARSE "s.vmdk"\n')
    path = tmp_path / "s.vmdk"
    path.write_bytes(streamed(lambda write, capacity: StreamVmdkWriter(write, -(-capacity // SECTOR), descriptor),
                              data))
    with open_disk(str(path)) as disk:
        assert disk.create_type == "streamOptimized"
        view = memoryview(bytearray(len(data)))
        disk.read_into(0, view)
        assert bytes(view) == data
