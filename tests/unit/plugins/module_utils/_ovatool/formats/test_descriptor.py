# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""VMDK descriptors from the corpus and from qemu-img, and broken ones."""
from __future__ import annotations

import glob
import os

import pytest

from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.formats import descriptor as desc
from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.formats.disk import open_disk
from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.errors import DiskFormatError


def test_every_corpus_descriptor_parses(corpus):
    files = sorted(glob.glob(os.path.join(corpus, "vmdk_descriptors", "*")))
    assert len(files) >= 10
    for path in files:
        with open(path, "rb") as handle:
            parsed = desc.parse_descriptor(desc.decode_descriptor(handle.read(), path), path)
        assert parsed.create_type in ("twoGbMaxExtentSparse", "monolithicSparse", "streamOptimized", "vmfs",
                                      "monolithicFlat", "twoGbMaxExtentFlat", "vmfsSparse"), path
        assert parsed.capacity_sectors > 0, path
        assert all(e.access in ("RW", "RDONLY", "NOACCESS") for e in parsed.extents)
        if parsed.create_type.startswith("twoGb"):
            assert len(parsed.extents) > 1 or "vmdkrs" in path
        if "-000001" in path:
            assert parsed.has_parent and parsed.parent_hint


def test_trailing_spaces_and_values(corpus):
    path = os.path.join(corpus, "vmdk_descriptors", "govmomi_ttylinux_streamOptimized_EMBEDDED.txt")
    with open(path, "rb") as handle:
        parsed = desc.parse_descriptor(desc.decode_descriptor(handle.read(), path), path)
    assert parsed.cid == 0xBB17CC39 and not parsed.has_parent
    assert parsed.extents[0].access == "RDONLY" and parsed.extents[0].sectors == 61440
    assert parsed.ddb["ddb.adapterType"] == "lsilogic"


def test_windows_949_descriptor(corpus):
    path = os.path.join(corpus, "vmdk_descriptors", "chea-young_Ubuntu 64-bit_twoGbMaxExtentSparse.vmdk")
    with open(path, "rb") as handle:
        parsed = desc.parse_descriptor(desc.decode_descriptor(handle.read(), path), path)
    assert parsed.encoding == "windows-949-2000"
    assert parsed.extents[-1].file_name == "Ubuntu 64-bit-s006.vmdk"
    assert parsed.capacity_sectors == 5 * 8323072 + 327680


@pytest.mark.parametrize("text,message", [
    ("version=1\n", "no createType"),
    ('createType="monolithicFlat"\n', "lists no extents"),
    ('createType="monolithicFlat"\nRW 100 FLAT\n', "needs a file name"),
    ('createType="monolithicFlat"\nRW 100 WEIRD "x"\n', "unknown extent type"),
    ('createType="monolithicFlat"\n%%% garbage %%%\n', "does not parse"),
    ('createType="monolithicFlat"\nCID=zz\nRW 1 FLAT "x"\n', "not a hexadecimal"),
])
def test_bad_descriptors(text, message):
    with pytest.raises(DiskFormatError, match=message):
        desc.parse_descriptor(text, "x.vmdk")


def test_embedded_descriptor_ends_at_the_first_nul():
    """qemu-img leaves stray bytes after the NUL of an embedded descriptor now and then (seen in CI)."""
    raw = b'# Disk DescriptorFile\nversion=1\ncreateType="monolithicSparse"\nRW 8 SPARSE "a.vmdk"\n\x00\n\x07junk'
    for embedded in (True, False):  # qemu-img pads descriptor files the same way
        parsed = desc.parse_descriptor(desc.decode_descriptor(raw + bytes(300), "a.vmdk", embedded), "a.vmdk")
        assert parsed.capacity_sectors == 8
    with pytest.raises(DiskFormatError, match="no text before binary data"):
        desc.decode_descriptor(b"\x00\x01\x02 binary", "a.vmdk")


def test_render_stream_descriptor_parses_back():
    text = desc.render_stream_descriptor('we"ird.vmdk', 204800, (0x1234ABCD, "a" * 32), "lsilogic", 19)
    parsed = desc.parse_descriptor(text, "x")
    assert parsed.create_type == "streamOptimized" and parsed.cid == 0x1234ABCD
    assert parsed.extents[0].sectors == 204800 and parsed.extents[0].file_name == "we_ird.vmdk"
    assert parsed.ddb["ddb.geometry.heads"] == "255" and parsed.ddb["ddb.geometry.cylinders"] == "12"


def test_corpus_images_open(corpus):
    """Real sparse files written by other tools open and their allocation walks."""
    for path in glob.glob(os.path.join(corpus, "images", "*", "*.vmdk")):
        if path.endswith(("-s001.vmdk", "-flat.vmdk")):
            continue
        try:
            disk = open_disk(path)
        except DiskFormatError as exc:  # incomplete corpus sets (a delta without its file) say so clearly
            assert "is missing" in str(exc) or "footer" in str(exc), str(exc)
            continue
        with disk:
            ranges = list(disk.allocated_ranges())
            assert all(0 <= o and o + n <= disk.capacity for o, n in ranges)
            if ranges:
                disk.read(ranges[0][0], min(ranges[0][1], 65536))
