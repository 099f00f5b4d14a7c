# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The small interfaces the layers meet at. Structural (``typing.Protocol``): the classes that satisfy them do
not import this module, so formats stay free of export and storage code.

- a disk reader (formats: sparse, flat, ZERO and ESXi extents, whole disks and snapshot chains) is read by the
  export pipeline;
- a package writer (formats/ova.py's tar, export/folder.py's OVF folder) receives the export's members;
- an output set (export/outputs.LocalOutputs, storage/objects.ObjectOutputs) gives an export each file it writes
  (an Output) and commits them together;
- a destination (storage/) receives a finished file;
- a random-access source (fileio.LocalFile, storage/httprange.RangedUrl) is what verify reads an OVA through.
"""
from __future__ import annotations

from contextlib import ExitStack
from typing import Any, BinaryIO, Dict, Iterator, List, Protocol, Tuple


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


class ImageWriter(BatchWriter, Protocol):
    """One disk written in one image format (formats/qcow2, vhdx, vhd, raw), through a formats/imagefile.ImageFile:
    what the image set (export/images) reads of each format's class."""

    format: str  # qcow2, vhdx, vhd, raw
    extension: str
    holes: int  # spans reserved and filled in last: each is one more span of an object upload
    sequential: bool  # written front to back: hashed as it is written, never read back

    @staticmethod
    def bound(capacity: int) -> int:
        """The most bytes the image of a disk of ``capacity`` bytes can take (the size of its object upload)."""


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


class Output(Protocol):
    """One file an export writes (a context manager): a local file under a temporary name, or an object being
    uploaded. Leaving it uncommitted removes the temporary file, or aborts the upload."""

    dest: str
    holes: bool  # a skipped range reads back as zeros (a sparse file); else zeros are written

    @property
    def stream(self) -> BinaryIO:
        ...

    def commit(self) -> Any:
        ...


class OutputSet(Protocol):
    """Every file of one export, wherever they go; the export core asks it for each output and commits them
    together through it, and never names a kind of storage."""

    def paths(self) -> List[str]:
        """The files the export leaves on this host (none for objects)."""

    def existing(self) -> List[str]:
        """Those of them that exist already."""

    def guard(self, stack: ExitStack, warnings: List[str]) -> None:
        """Enter, on ``stack``, whatever keeps a second export of the same destination out; clean what a killed
        one left."""

    def current(self, stamp: str) -> bool:
        """Whether every file exists, made from sources with fingerprint ``stamp``."""

    def expect(self, stamp: str) -> None:
        """Raise when the sources' fingerprint is not the one the destination was prepared for."""

    def package(self) -> Any:
        """The package's output: an Output for an OVA, a folder (output.AtomicFolder) for an OVF package."""

    def image(self, dest: str, index: int) -> Output:
        """The output of an image or of the sums, ``index`` among the image set's."""

    def commit(self, package: Any, images: Any, threads: int) -> Dict[str, Any]:
        """Commit the package and the images (an export/images.ImageSet, or None) all or nothing; returns what
        the result reports of them."""

    def record(self, stamp: str) -> Dict[str, Any]:
        """Keep the sources' fingerprint with the outputs; returns what the result reports of it."""


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
