# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""formats/vhd.py against the Virtual Hard Disk Image Format Specification (fixed disks): the data, then a
512-byte big-endian footer with the one's complement checksum, the CHS geometry and the creator readers trust."""
from __future__ import annotations

import struct
import uuid

import pytest

from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.formats.vhd import VhdWriter, geometry

from support.membytes import sample_disk, written

MIB = 1 << 20


def test_a_fixed_vhd_is_the_disk_then_its_footer():
    data = sample_disk()
    stamp = 1765000000
    image = written(lambda sink, capacity: VhdWriter(sink, capacity, "seed", stamp), data)
    size = -(-len(data) // MIB) * MIB  # rounded up to a MiB (what Azure takes)
    assert len(image) == size + 512
    assert image[:len(data)] == data and not any(image[len(data):size])
    foot = image[size:]
    (cookie, features, version, data_offset, timestamp, creator, creator_version, creator_os, original, current,
     cylinders, heads, spt, disk_type, checksum, unique, saved) = struct.unpack(">8sIIQI4sI4sQQHBBII16sB427x", foot)
    assert cookie == b"conectix" and features == 2 and version == 0x00010000
    assert data_offset == 0xFFFFFFFFFFFFFFFF, "a fixed disk has no dynamic header"
    assert timestamp == stamp - 946684800, "seconds since 2000-01-01 UTC"
    assert creator == b"win " and creator_os == b"Wi2k" and creator_version == 0x00010000
    assert original == current == size and disk_type == 2 and saved == 0
    assert checksum == ~(sum(foot[:64]) + sum(foot[68:])) & 0xFFFFFFFF
    assert uuid.UUID(bytes=unique).bytes == unique and any(unique)
    assert (cylinders, heads, spt) == geometry(size)


@pytest.mark.parametrize("size,chs", [
    (MIB * 10, (301, 4, 17)),  # small disks: 17 sectors per track, 4 heads
    (127 * 1024 * MIB, (65278, 16, 255)),  # past 65535 x 16 x 63 sectors: 255 sectors per track, 16 heads
    (3 * 1024 * 1024 * MIB, (65535, 16, 255)),  # capped at the largest geometry
])
def test_geometry_is_the_specification_s_algorithm(size, chs):
    # worked by hand from the specification's pseudo-code (Appendix: CHS calculation)
    assert geometry(size) == chs
