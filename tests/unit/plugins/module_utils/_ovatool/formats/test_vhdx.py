# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""formats/vhdx.py against [MS-VHDX]: the file type identifier, both headers and region tables with their
CRC-32C, the metadata items, and a BAT whose payload entries point at the blocks that hold the data."""
from __future__ import annotations

import struct
import uuid

from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.formats.vhdx import VhdxWriter, crc32c

from support.membytes import GRAIN, sample_disk, written

KIB, MIB = 1024, 1 << 20
# the GUIDs [MS-VHDX] 2.2.3 and 2.6 give (stored little-endian, as Windows GUIDs are)
BAT = uuid.UUID("2DC27766-F623-4200-9D64-115E9BFD4A08")
METADATA = uuid.UUID("8B7CA206-4790-4B9A-B8FE-575F050F886E")
FILE_PARAMETERS = uuid.UUID("CAA16737-FA36-4D43-B3B6-33F0AA44E76B")
VIRTUAL_DISK_SIZE = uuid.UUID("2FA54224-CD1B-4876-B211-5DBED83BF4B8")
LOGICAL_SECTOR = uuid.UUID("8141BF1D-A96F-4709-BA47-F233A8FAAB5F")
PHYSICAL_SECTOR = uuid.UUID("CDA348C7-445D-4471-9CC9-E9885251C556")
PAGE83 = uuid.UUID("BECA12AB-B2E6-4523-93EF-C309E000C746")


def with_zero_checksum(block: bytes) -> bytes:
    return block[:4] + bytes(4) + block[8:]


def test_crc32c_is_castagnoli():
    assert crc32c(b"123456789") == 0xE3069283  # the check value of CRC-32C (RFC 3720, B.4)
    assert crc32c(b"") == 0


def test_headers_regions_metadata_and_bat_follow_the_specification():
    data = sample_disk(grains=200)  # a 12.5 MiB disk: two 8 MiB payload blocks
    image = written(lambda sink, capacity: VhdxWriter(sink, capacity, "seed"), data)
    assert image[:8] == b"vhdxfile"
    for at, sequence in ((64 * KIB, 1), (128 * KIB, 2)):
        block = image[at:at + 4 * KIB]
        signature, checksum, number, _file, _data, log_guid, log_version, version, log_length, log_offset = \
            struct.unpack_from("<4sIQ16s16s16sHHIQ", block)
        assert signature == b"head" and checksum == crc32c(with_zero_checksum(block))
        assert number == sequence and version == 1 and log_version == 0
        assert log_guid == bytes(16), "no log to replay"
        assert log_length == MIB and log_offset == MIB
    regions = {}
    for at in (192 * KIB, 256 * KIB):
        table = image[at:at + 64 * KIB]
        signature, checksum, count, _reserved = struct.unpack_from("<4sIII", table)
        assert signature == b"regi" and checksum == crc32c(with_zero_checksum(table)) and count == 2
        for entry in range(count):
            guid, offset, length, required = struct.unpack_from("<16sQII", table, 16 + 32 * entry)
            regions[uuid.UUID(bytes_le=guid)] = (offset, length)
            assert required == 1 and offset % MIB == 0 and length % MIB == 0
    assert set(regions) == {BAT, METADATA}

    meta_at, _length = regions[METADATA]
    signature, _reserved, count = struct.unpack_from("<8sHH", image, meta_at)
    assert signature == b"metadata"
    items = {}
    for entry in range(count):
        guid, offset, length, flags = struct.unpack_from("<16sIII", image, meta_at + 32 + 32 * entry)
        items[uuid.UUID(bytes_le=guid)] = (image[meta_at + offset:meta_at + offset + length], flags)
    block_size, parameter_flags = struct.unpack("<II", items[FILE_PARAMETERS][0])
    assert block_size == 8 * MIB and parameter_flags == 0, "qemu's block size up to 1 GiB; no parent"
    assert struct.unpack("<Q", items[VIRTUAL_DISK_SIZE][0])[0] == len(data)
    assert struct.unpack("<I", items[LOGICAL_SECTOR][0])[0] == 512
    assert struct.unpack("<I", items[PHYSICAL_SECTOR][0])[0] == 512
    assert len(items[PAGE83][0]) == 16
    assert all(flags & 0x4 for _value, flags in items.values()), "every item is IsRequired"

    bat_at, _bat_length = regions[BAT]
    blocks = -(-len(data) // block_size)
    entries = struct.unpack_from(f"<{blocks}Q", image, bat_at)  # chunk ratio 2^23 x 512 / 8 MiB = 512 blocks
    for number, entry in enumerate(entries):
        state, offset = entry & 7, (entry >> 20) << 20
        want = data[number * block_size:(number + 1) * block_size]
        assert state == 6 and offset % MIB == 0, "PAYLOAD_BLOCK_FULLY_PRESENT, at a MiB boundary"
        assert image[offset:offset + len(want)] == want


def test_a_block_of_zeros_takes_no_space():
    data = bytearray(20 * MIB)
    data[:GRAIN] = b"\x09" * GRAIN  # block 0 has data; blocks 1 and 2 are zeros
    image = written(lambda sink, capacity: VhdxWriter(sink, capacity, "seed"), bytes(data))
    entries = struct.unpack_from("<3Q", image, 2 * MIB)
    assert [entry & 7 for entry in entries] == [6, 2, 2], "PAYLOAD_BLOCK_ZERO for the empty ones"
    assert len(image) <= VhdxWriter.bound(len(data))
