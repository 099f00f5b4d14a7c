# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""formats/stream.py against VMware's Virtual Disk Format 5.0 (streamOptimized): the header, the embedded
descriptor, grain records in ascending LBA order, GT and GD markers whose tables point at them, the footer with
the real gdOffset and the end-of-stream marker, walked here sector by sector."""
from __future__ import annotations

import struct
import zlib

from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.formats.stream import StreamVmdkWriter

from support.membytes import GRAIN, sample_disk, streamed

SECTOR = 512
HEADER = "<4sIIQQQQIQQQB4sH"
EOS, GT, GD, FOOTER = 0, 1, 2, 3


def header(sector: bytes) -> dict:
    names = ("magic", "version", "flags", "capacity", "grain_size", "descriptor_offset", "descriptor_size",
             "gtes_per_gt", "rgd_offset", "gd_offset", "overhead", "unclean", "newline", "compress")
    return dict(zip(names, struct.unpack_from(HEADER, sector)))


def walk(image: bytes):
    """Every record from the first grain on: ('grain', sector, lba, data) or (marker type, sector, its table)."""
    at = 128 * SECTOR
    while at < len(image):
        value, size = struct.unpack_from("<QI", image, at)
        if size:  # a grain record: u64 LBA, u32 size of the zlib stream
            yield "grain", at // SECTOR, value, zlib.decompress(image[at + 12:at + 12 + size])
            at += -(-(12 + size) // SECTOR) * SECTOR
            continue
        kind = struct.unpack_from("<I", image, at + 12)[0]
        body = image[at + SECTOR:at + SECTOR + value * SECTOR]
        yield kind, at // SECTOR + 1, body
        at += SECTOR + value * SECTOR
        if kind == EOS:
            assert at == len(image), "nothing after the end-of-stream marker"
            return
    raise AssertionError("no end-of-stream marker")


def test_a_stream_disk_as_vmware_writes_it():
    data = sample_disk(grains=700)  # more than one grain table's span (512 grains)
    descriptor = '# Disk DescriptorFile\nversion=1\nCID=12345678\nparentCID=ffffffff\ncreateType="streamOptimized"\n'
    image = streamed(lambda write, capacity: StreamVmdkWriter(write, -(-capacity // SECTOR), descriptor), data)
    assert len(image) % SECTOR == 0
    head = header(image[:SECTOR])
    assert head["magic"] == b"KDMV" and head["version"] == 3
    assert head["flags"] == 1 | 1 << 16 | 1 << 17, "newline test, compressed grains, markers"
    assert head["capacity"] == -(-len(data) // SECTOR) and head["grain_size"] == 128
    assert head["descriptor_offset"] == 1 and head["descriptor_size"] == 20 and head["gtes_per_gt"] == 512
    assert head["gd_offset"] == 0xFFFFFFFFFFFFFFFF, "GD_AT_END: found through the footer"
    assert head["overhead"] == 128 and head["newline"] == b"\n \r\n" and head["compress"] == 1
    assert image[SECTOR:SECTOR + len(descriptor)].decode() == descriptor

    records = list(walk(image))
    grains = {lba: (sector, body) for kind, sector, lba, body in (r for r in records if r[0] == "grain")}
    lbas = [r[2] for r in records if r[0] == "grain"]
    assert lbas == sorted(lbas), "ascending LBA order"
    for lba, (_sector, body) in grains.items():
        want = data[lba * SECTOR:lba * SECTOR + GRAIN]
        assert body[:len(want)] == want and not any(body[len(want):])
    nonzero = [g * 128 for g in range(-(-len(data) // GRAIN)) if any(data[g * GRAIN:(g + 1) * GRAIN])]
    assert sorted(grains) == nonzero, "zero grains are not written"

    tables = {sector: body for kind, sector, body in (r for r in records if r[0] == GT)}
    directory = [body for kind, _sector, body in (r for r in records if r[0] == GD)]
    footers = [body for kind, _sector, body in (r for r in records if r[0] == FOOTER)]
    assert len(directory) == 1 and len(footers) == 1 and records[-1][0] == EOS
    gd_sector = next(sector for kind, sector, *_rest in records if kind == GD)
    assert header(footers[0])["gd_offset"] == gd_sector, "the footer holds the real gdOffset"
    gd = struct.unpack_from(f"<{-(-head['capacity'] // (128 * 512))}I", directory[0])
    pointed = {}
    for number, gt_sector in enumerate(gd):
        if not gt_sector:
            continue
        assert gt_sector in tables, "a GD entry points at a grain table (after its marker)"
        for slot, grain_sector in enumerate(struct.unpack("<512I", tables[gt_sector][:2048])):
            if grain_sector:
                pointed[(number * 512 + slot) * 128] = grain_sector
    assert pointed == {lba: sector for lba, (sector, _body) in grains.items()}, "each GTE points at its grain"
