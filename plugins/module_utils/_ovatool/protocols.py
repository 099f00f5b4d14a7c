# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The small interfaces the layers meet at. Structural (``typing.Protocol``): the classes that satisfy them do
not import this module, so formats stay free of export and storage code.

- a disk reader (formats: sparse, flat, ZERO and ESXi extents, whole disks and snapshot chains) is read by the
  export pipeline;
- a package writer (formats/ova.py's tar, export/folder.py's OVF folder) receives the export's members;
- a destination (storage/) receives a finished file;
- a random-access source (fileio.LocalFile, storage/httprange.RangedUrl) is what verify reads an OVA through.
"""
from __future__ import annotations

from typing import Dict, Iterator, List, Protocol, Tuple


class DiskReader(Protocol):
    """Random access to a virtual disk's bytes, with a map of where its data may be."""

    capacity: int  # bytes

    def allocated_ranges(self) -> Iterator[Tuple[int, int]]:
        """(offset, length) byte ranges that may hold non-zero data, ascending and merged."""

    def read_into(self, offset: int, view: memoryview) -> None:
        """Fill ``view`` with the bytes at ``offset``; unallocated parts read as zeros."""

    def advise(self, offset: int, length: int) -> None:
        """Hint that [offset, offset+length) will be read soon: start reading it without waiting."""


class BatchWriter(Protocol):
    """Where the pipeline puts one disk: the streamOptimized VMDK and each image format (formats/imagefile)."""

    compressed: bool  # it takes deflated grains: the pipeline compresses only when a writer does

    def write_batch(self, batch) -> None:
        """One formats/grains.GrainBatch, in ascending grain order."""

    def finish(self) -> None:
        ...


class RandomAccess(Protocol):
    """A file read by offset: on this host, or behind a URL."""

    size: int

    def pread(self, length: int, offset: int) -> bytes:
        """Up to ``length`` bytes at ``offset`` (fewer only at the end)."""

    def digest(self, algorithm: str, offset: int, size: int) -> str:
        """Hex digest of [offset, offset+size)."""

    def fileobj(self):
        """A seekable binary file object over the same bytes (for ``tarfile``)."""


class Member(Protocol):
    """One file being written into a package."""

    size: int

    def write(self, data) -> None:
        ...

    def close(self) -> str:
        """Finish the member; returns its digest (the package's manifest algorithm)."""


class PackageWriter(Protocol):
    """Where an export's members go (a tar stream or a folder). The head members (.ovf, .mf, .cert) are
    reserved first and filled last, once every size and digest is known."""

    digests: List[Tuple[str, str]]
    sizes: Dict[str, int]
    position: int

    def reserve(self, name: str, size: int):
        ...

    def member(self, name: str) -> Member:
        ...

    def fill(self, slot, data: bytes) -> str:
        ...

    def close(self) -> None:
        ...


class Destination(Protocol):
    """A place a finished file is uploaded to (storage/). A context manager: leaving it closes every
    connection it opened, whatever happened."""

    url: str

    def __enter__(self) -> "Destination":
        ...

    def __exit__(self, *exc: object) -> None:
        ...

    def existing(self, size: int, sha256: str) -> bool:
        """Whether the destination already holds this file (same size and SHA256)."""

    def put(self, src: str, size: int, sha256: str) -> None:
        """Send the file; it appears under its final name only when complete."""

    def check(self, size: int, sha256: str) -> None:
        """Raise when what arrived is not what was sent."""
