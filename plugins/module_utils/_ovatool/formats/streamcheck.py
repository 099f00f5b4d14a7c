# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Structural check of a streamOptimized VMDK lying at some offset of a file (docs/formats.md, streamOptimized).

Header and embedded descriptor; every grain record and marker in order, inside
the member; grains in ascending LBA order within the capacity; the footer and
end-of-stream marker at the very end; the grain directory and tables pointing
at grain records of the right LBA. With ``deep``, every grain is inflated and
its size checked. Findings are returned as sentences, never raised.
"""
from __future__ import annotations

import zlib
from typing import Dict, List, Optional, Tuple

from .descriptor import decode_descriptor, parse_descriptor
from ..errors import DiskFormatError
from ..protocols import RandomAccess
from .vmdk import (FLAG_COMPRESSED, FLAG_MARKERS, GD_AT_END, GRAIN_HEAD, MAGIC, MARKER, MARKER_EOS, MARKER_FOOTER,
                   MARKER_GD, MARKER_GT, MARKER_PROGRESS, SECTOR, parse_header, u32_table)
MAX_FINDINGS = 20


class _Member:
    """Random access to [base, base+size) of a source (``pread(length, offset)``: a local file, a URL)."""

    def __init__(self, source: RandomAccess, base: int, size: int) -> None:
        self.source = source
        self.base = base
        self.size = size

    def read(self, offset: int, length: int) -> bytes:
        if offset < 0 or offset >= self.size:
            return b""
        return self.source.pread(min(length, self.size - offset), self.base + offset)


def check_stream(source: RandomAccess, base: int, size: int, name: str,
                 deep: bool = False) -> Tuple[List[str], Dict[str, int]]:
    """(findings, facts) for the stream disk ``name`` at [base, base+size) of ``source``."""
    member = _Member(source, base, size)
    findings: List[str] = []
    facts: Dict[str, int] = {}

    def say(text: str) -> bool:
        findings.append(f"{name}: {text}")
        return len(findings) < MAX_FINDINGS

    try:
        header = parse_header(member.read(0, SECTOR), name)
    except DiskFormatError as exc:
        say(exc.message)
        return findings, facts
    if not header.flags & FLAG_COMPRESSED or not header.flags & FLAG_MARKERS:
        say("not a streamOptimized disk (the compressed-grains and markers flags are not set)")
        return findings, facts
    if header.compress_algorithm != 1:
        say(f"unknown compression algorithm {header.compress_algorithm}")
    if header.grain_size == 0 or header.grain_size & (header.grain_size - 1) or header.grain_size > 2048:
        say(f"invalid grain size of {header.grain_size} sectors")
        return findings, facts
    facts.update(capacity_bytes=header.capacity * SECTOR, grain_bytes=header.grain_size * SECTOR)
    raw_descriptor = member.read(header.descriptor_offset * SECTOR, header.descriptor_size * SECTOR)
    try:
        descriptor = parse_descriptor(decode_descriptor(raw_descriptor, name, embedded=True), name)
        if descriptor.capacity_sectors != header.capacity:
            say(f"the embedded descriptor declares {descriptor.capacity_sectors} sectors, the header {header.capacity}")
    except DiskFormatError as exc:
        say(f"embedded descriptor: {exc.message}")

    if size < 3 * SECTOR or size % SECTOR:
        say(f"truncated: {size} bytes is not a whole number of sectors ending in footer and end-of-stream marker")
        return findings, facts
    footer_marker = member.read(size - 3 * SECTOR, SECTOR)
    footer = member.read(size - 2 * SECTOR, SECTOR)
    eos = member.read(size - SECTOR, SECTOR)
    gd_offset: Optional[int] = None
    if MARKER.unpack_from(footer_marker)[1:] != (0, MARKER_FOOTER) or footer[:4] != MAGIC:
        say("no footer before the end of the file (truncated or not closed)")
    else:
        try:
            gd_offset = parse_header(footer, name).gd_offset
        except DiskFormatError as exc:
            say(f"the footer is not a valid header: {exc.message}")
    if eos != bytes(SECTOR):
        say("the file does not end with the end-of-stream marker")
    if header.gd_offset != GD_AT_END:
        gd_offset = header.gd_offset

    grains, ok = _walk(member, header, deep, say)
    facts["grains"] = len(grains)
    if not ok:
        return findings, facts
    if gd_offset is not None:
        _check_tables(member, header, gd_offset, grains, say)
    return findings, facts


def _walk(member: _Member, header, deep: bool, say) -> Tuple[Dict[int, int], bool]:
    """Every record from the first grain to EOS; returns {record sector: LBA}."""
    grain_bytes = header.grain_size * SECTOR
    capacity = header.capacity
    position = header.overhead * SECTOR
    grains: Dict[int, int] = {}
    last_lba = -1
    while True:
        head = member.read(position, SECTOR)
        if len(head) < MARKER.size:
            say(f"truncated at byte {position}: the stream ends before its end-of-stream marker")
            return grains, False
        lba, size, kind = MARKER.unpack_from(head)
        if size == 0:
            if kind == MARKER_EOS and lba == 0:
                return grains, True
            if kind not in (MARKER_GT, MARKER_GD, MARKER_FOOTER, MARKER_PROGRESS):
                if not say(f"unknown marker type {kind} at byte {position}"):
                    return grains, False
            position += SECTOR + lba * SECTOR
            continue
        if lba >= capacity or lba % header.grain_size:
            if not say(f"grain at byte {position} has LBA {lba}, outside the disk or not grain-aligned"):
                return grains, False
        elif lba <= last_lba:
            if not say(f"grain at byte {position} (LBA {lba}) is out of order"):
                return grains, False
        end = position + GRAIN_HEAD.size + size
        if end > member.size:
            say(f"grain at byte {position} runs past the end of the file")
            return grains, False
        if deep:
            expected = min(grain_bytes, (capacity - lba) * SECTOR)
            try:
                data = zlib.decompress(member.read(position + GRAIN_HEAD.size, size))
                if len(data) != expected:
                    if not say(f"grain at LBA {lba} inflates to {len(data)} bytes, not {expected}"):
                        return grains, False
            except zlib.error as exc:
                if not say(f"grain at LBA {lba} does not inflate: {exc}"):
                    return grains, False
        grains[position // SECTOR] = lba
        last_lba = max(last_lba, lba)
        position += -(-(GRAIN_HEAD.size + size) // SECTOR) * SECTOR


def _check_tables(member: _Member, header, gd_offset: int, grains: Dict[int, int], say) -> None:
    gtes = header.gtes_per_gt
    span = header.grain_size * gtes
    entries = -(-header.capacity // span)
    raw = member.read(gd_offset * SECTOR, entries * 4)
    if len(raw) != entries * 4:
        say("the grain directory lies outside the file")
        return
    directory = u32_table(raw)
    for index, gt_sector in enumerate(directory):
        if gt_sector == 0:
            continue
        table_raw = member.read(gt_sector * SECTOR, gtes * 4)
        if len(table_raw) != gtes * 4:
            if not say(f"grain directory entry {index} points past the end of the file"):
                return
            continue
        for slot, sector in enumerate(u32_table(table_raw)):
            if sector == 0:
                continue
            expected = index * span + slot * header.grain_size
            if sector * SECTOR >= member.size:
                if not say(f"grain table {index} points past the end of the file (entry {slot})"):
                    return
            elif grains.get(sector) != expected:
                if not say(f"grain table {index} entry {slot} points at sector {sector}, "
                           f"which is not the grain of LBA {expected}"):
                    return
