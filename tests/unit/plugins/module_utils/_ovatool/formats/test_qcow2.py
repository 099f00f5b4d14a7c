# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""formats/qcow2.py against QEMU's docs/interop/qcow2.txt: the header's fields, the L1 and L2 entries, compressed
cluster descriptors, and refcounts that count every reference (read here with struct, not with qemu-img)."""
from __future__ import annotations

import struct
import zlib
from collections import Counter

import pytest

from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.formats.qcow2 import Qcow2Writer

from support.membytes import GRAIN, sample_disk, written

CLUSTER = 65536
OFFSET_MASK = 0x00FFFFFFFFFFFE00  # L1/L2 standard entries: bits 9-55


def header(image: bytes) -> dict:
    names = ("magic", "version", "backing_file_offset", "backing_file_size", "cluster_bits", "size",
             "crypt_method", "l1_size", "l1_table_offset", "refcount_table_offset", "refcount_table_clusters",
             "nb_snapshots", "snapshots_offset", "incompatible", "compatible", "autoclear", "refcount_order",
             "header_length")
    return dict(zip(names, struct.unpack_from(">4sIQIIQIIQQIIQQQQII", image, 0)))


def mapping(image: bytes, head: dict):
    """guest cluster -> (host offset, compressed, compressed size in bytes); and every host cluster referenced."""
    refs = Counter()
    found = {}
    l1 = struct.unpack_from(f">{head['l1_size']}Q", image, head["l1_table_offset"])
    for index, l1_entry in enumerate(l1):
        if not l1_entry:
            continue
        assert l1_entry & (1 << 63), "an L2 table with refcount 1 has COPIED set"
        l2_at = l1_entry & OFFSET_MASK
        assert l2_at % CLUSTER == 0
        refs[l2_at // CLUSTER] += 1
        for slot, entry in enumerate(struct.unpack_from(">8192Q", image, l2_at)):
            if not entry:
                continue
            guest = index * 8192 + slot
            if entry & (1 << 62):  # compressed: x = 62 - (cluster_bits - 8) bits of offset, then sectors - 1
                x = 62 - (16 - 8)
                at = entry & ((1 << x) - 1)
                sectors = ((entry >> x) & ((1 << (62 - x)) - 1)) + 1
                found[guest] = (at, True, sectors * 512)
                for cluster in range(at // CLUSTER, (at + sectors * 512 - 1) // CLUSTER + 1):
                    refs[cluster] += 1
            else:
                assert entry & (1 << 63) and not entry & 1, "a standard data cluster: COPIED, not all-zero"
                at = entry & OFFSET_MASK
                assert at % CLUSTER == 0
                found[guest] = (at, False, CLUSTER)
                refs[at // CLUSTER] += 1
    return found, refs


@pytest.mark.parametrize("compressed", [True, False])
def test_header_tables_and_refcounts_follow_the_specification(compressed):
    data = sample_disk()
    image = written(lambda sink, capacity: Qcow2Writer(sink, capacity, compressed=compressed), data)
    head = header(image)
    assert head["magic"] == b"QFI\xfb" and head["version"] == 3 and head["cluster_bits"] == 16
    assert head["size"] == len(data) and head["crypt_method"] == 0 and head["backing_file_offset"] == 0
    assert head["refcount_order"] == 4 and head["header_length"] == 104 and head["nb_snapshots"] == 0
    assert head["incompatible"] == 0, "no dirty bit, no corrupt bit, no external data"
    assert head["l1_size"] == -(-len(data) // (CLUSTER * 8192))
    assert len(image) % CLUSTER == 0

    found, refs = mapping(image, head)
    nonzero = [g for g in range(-(-len(data) // GRAIN)) if any(data[g * GRAIN:(g + 1) * GRAIN])]
    assert sorted(found) == nonzero, "zero clusters stay unallocated (read as zeros)"
    for guest, (at, packed, size) in found.items():
        want = data[guest * GRAIN:(guest + 1) * GRAIN]
        if packed:
            assert compressed and len(want) == GRAIN
            got = zlib.decompressobj(-12).decompress(image[at:at + size])  # raw deflate, a 4 KiB window
        else:
            got = image[at:at + len(want)]
        assert got[:len(want)] == want, f"guest cluster {guest}"
    assert any(p for _a, p, _s in found.values()) == compressed
    assert not found[3][1], "random data does not shrink: stored as it is"

    # the refcount table points at blocks of 16-bit counts, one per host cluster: each as many as references
    table_at, table_clusters = head["refcount_table_offset"], head["refcount_table_clusters"]
    refs[0] += 1  # the header
    refs.update(range(head["l1_table_offset"] // CLUSTER, head["l1_table_offset"] // CLUSTER + 1))
    blocks = [p for p in struct.unpack_from(f">{table_clusters * CLUSTER // 8}Q", image, table_at) if p]
    refs.update(range(table_at // CLUSTER, table_at // CLUSTER + table_clusters))
    refs.update(p // CLUSTER for p in blocks)
    counts = b"".join(image[p:p + CLUSTER] for p in blocks)
    for cluster in range(len(image) // CLUSTER):
        assert struct.unpack_from(">H", counts, cluster * 2)[0] == refs[cluster], f"host cluster {cluster}"


def test_the_bound_holds_what_the_worst_disk_writes():
    data = bytes(range(256)) * (5 * GRAIN // 256) + b"\x07" * 100
    image = written(lambda sink, capacity: Qcow2Writer(sink, capacity, compressed=True), data)
    assert len(image) <= Qcow2Writer.bound(len(data))
