# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Open a .vmdk (descriptor file or monolithic sparse file) as one virtual disk.

The virtual disk joins its extents end to end and offers two operations the
export pipeline needs: the byte ranges that may hold data (everything else
is zeros) and reading a byte range. Sources are opened read-only.
"""
from __future__ import annotations

import os
from typing import Iterator, List, Optional, Tuple, Union

from .chain import open_chain
from .descriptor import MAX_DESCRIPTOR_BYTES, Descriptor, decode_descriptor, parse_descriptor
from ..errors import DiskFormatError, OvatoolError, os_error
from .esx import COWD_MAGIC, CowdExtent, SeSparseExtent
from .flat import FlatExtent, ZeroExtent
from ..ranges import merge_ranges
from .sparse import SparseExtent, read_embedded_descriptor
from .vmdk import MAGIC, MAX_CAPACITY_SECTORS, SECTOR, parse_header

Extent = Union[FlatExtent, SparseExtent, ZeroExtent, CowdExtent, SeSparseExtent]

_UNSUPPORTED = {
    "VMFSRDM": "raw device mappings (VMFSRDM) hold no disk data that can be exported",
    "VMFSRAW": "raw device extents (VMFSRAW) hold no disk data that can be exported",
}


def _open_ro(path: str) -> Tuple[int, int]:
    flags = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise DiskFormatError(os_error(exc, path, "cannot open").message, path) from None
    try:
        size = os.fstat(fd).st_size
    except OSError as exc:
        os.close(fd)
        raise DiskFormatError(os_error(exc, path).message, path) from None
    return fd, size


class VirtualDisk:
    """A VMDK as a sequence of extents; ``capacity`` is in bytes."""

    def __init__(self, path: str, descriptor: Descriptor) -> None:
        self.path = path
        self.descriptor = descriptor
        self.create_type = descriptor.create_type
        self.capacity = descriptor.capacity_sectors * SECTOR
        self.extents: List[Tuple[int, Extent]] = []
        self.files: List[str] = [path]
        self._fds: List[int] = []

    # -- life cycle -----------------------------------------------------
    def close(self) -> None:
        for fd in self._fds:
            try:
                os.close(fd)
            except OSError:
                pass
        self._fds = []

    def __enter__(self) -> "VirtualDisk":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- data -----------------------------------------------------------
    def allocated_ranges(self) -> Iterator[Tuple[int, int]]:
        """(offset, length) byte ranges that may hold non-zero data, ascending and merged."""
        return merge_ranges((start + offset, length) for start, extent in self.extents
                            for offset, length in extent.allocated_ranges())

    def _overlapping(self, offset: int, length: int) -> Iterator[Tuple[int, Extent, int, int]]:
        """(extent start, extent, lo, hi) for each extent overlapping [offset, offset+length)."""
        for start, extent in self.extents:
            end = start + extent.capacity
            if end <= offset:
                continue
            if start >= offset + length:
                break
            yield start, extent, max(offset, start), min(offset + length, end)

    def read_into(self, offset: int, view: memoryview) -> None:
        """Fill ``view`` with bytes [offset, offset+len(view)) of the virtual disk."""
        length = len(view)
        if offset < 0 or offset + length > self.capacity:
            raise DiskFormatError(f"read past the end of the disk ({offset}+{length})", self.path)
        for start, extent, lo, hi in self._overlapping(offset, length):
            try:
                extent.read_into(lo - start, view[lo - offset:hi - offset])
            except OSError as exc:
                where = extent.path or self.path
                raise DiskFormatError(os_error(exc, where, f"read error at byte {lo - start}").message,
                                      where) from None

    def advise(self, offset: int, length: int) -> None:
        """Start reading the files behind [offset, offset+length) ahead of ``read_into`` (a hint)."""
        for start, extent, lo, hi in self._overlapping(offset, length):
            extent.advise(lo - start, hi - lo)

    def present_ranges(self, offset: int, length: int) -> Iterator[Tuple[int, int]]:
        """Sub-ranges this disk defines itself (the rest comes from its parent in a chain)."""
        for start, extent, lo, hi in self._overlapping(offset, length):
            for sub_offset, sub_length in extent.present_ranges(lo - start, hi - lo):
                yield start + sub_offset, sub_length

    def read(self, offset: int, length: int) -> bytearray:
        """Bytes [offset, offset+length) of the virtual disk, in a new buffer."""
        buffer = bytearray(length)
        self.read_into(offset, memoryview(buffer))
        return buffer

    # -- building -------------------------------------------------------
    def _add(self, extent: Extent) -> None:
        start = sum(extent.capacity for _start, extent in self.extents)
        self.extents.append((start, extent))


def _descriptor_and_kind(path: str, fd: int, size: int) -> Tuple[Descriptor, Optional[object]]:
    head = os.pread(fd, 512, 0)
    if head[:4] == MAGIC:
        header = parse_header(head, path)
        raw = read_embedded_descriptor(fd, header, size, path)
        if not raw.strip(b"\x00").strip():
            raise DiskFormatError(
                "a sparse extent without an embedded descriptor; open its descriptor .vmdk instead", path)
        return parse_descriptor(decode_descriptor(raw, path, embedded=True), path), header
    if head[:4] == COWD_MAGIC:
        raise DiskFormatError("an ESXi vmfsSparse (COWD) delta extent; open its descriptor .vmdk instead", path)
    if size > MAX_DESCRIPTOR_BYTES:
        raise DiskFormatError(
            "neither a VMDK descriptor nor a sparse VMDK (a flat extent? open its descriptor .vmdk)", path)
    raw = os.pread(fd, size, 0)
    return parse_descriptor(decode_descriptor(raw, path), path), None


def open_disk(path: str):
    """Open a .vmdk for reading, with its snapshot parents if it is a child; the caller closes it."""
    return open_chain(path, _open_layer)


def _open_layer(path: str) -> VirtualDisk:
    """Open one .vmdk (one layer of a chain) for reading."""
    fd, size = _open_ro(path)
    try:
        descriptor, embedded_header = _descriptor_and_kind(path, fd, size)
    except OvatoolError:
        os.close(fd)
        raise
    except OSError as exc:
        os.close(fd)
        raise DiskFormatError(os_error(exc, path, "cannot read").message, path) from None
    disk = VirtualDisk(path, descriptor)
    disk._fds.append(fd)
    if descriptor.capacity_sectors > MAX_CAPACITY_SECTORS or descriptor.capacity_sectors == 0:
        disk.close()
        raise DiskFormatError(f"absurd capacity of {descriptor.capacity_sectors} sectors in the descriptor", path)
    try:
        folder = os.path.dirname(os.path.abspath(path))
        if embedded_header is not None:
            if len(descriptor.extents) != 1 or descriptor.extents[0].type != "SPARSE":
                raise DiskFormatError("an embedded descriptor must list exactly one SPARSE extent", path)
            line = descriptor.extents[0]
            disk._add(SparseExtent(path, fd, embedded_header, size, line.sectors))
            return disk
        for line in descriptor.extents:
            if line.type in _UNSUPPORTED:
                raise DiskFormatError(_UNSUPPORTED[line.type], path)
            if line.type == "ZERO":
                disk._add(ZeroExtent(line.sectors))
                continue
            extent_path = os.path.join(folder, line.file_name.replace("\\", "/"))
            if not os.path.exists(extent_path):
                raise DiskFormatError(f'extent file "{line.file_name}" is missing', path)
            efd, esize = _open_ro(extent_path)
            disk._fds.append(efd)
            disk.files.append(extent_path)
            if line.type in ("FLAT", "VMFS"):
                disk._add(FlatExtent(extent_path, efd, esize, line.offset, line.sectors))
            elif line.type == "VMFSSPARSE":
                disk._add(CowdExtent(extent_path, efd, esize, line.sectors))
            elif line.type == "SESPARSE":
                disk._add(SeSparseExtent(extent_path, efd, esize, line.sectors))
            else:
                header = parse_header(os.pread(efd, 512, 0), extent_path)
                disk._add(SparseExtent(extent_path, efd, header, esize, line.sectors))
        return disk
    except OSError as exc:
        disk.close()
        raise DiskFormatError(os_error(exc, path, "cannot read").message, path) from None
    except BaseException:
        disk.close()
        raise
