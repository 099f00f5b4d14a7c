# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Single-pass OVA (tar) writer (docs/formats.md, OVA).

The ``.ovf`` must be the first member and the ``.mf`` the second, yet both
depend on the disks that follow. So the head of the archive is reserved
(the ``.mf`` has a size known up front, the ``.ovf`` is padded with trailing
white space to a reserved length), each disk is streamed straight into its
member and its header patched with the size once done, and the head is
written last. No temporary copy of any disk is made.

Headers come from ``tarfile.TarInfo.tobuf(GNU_FORMAT)``: USTAR fields, GNU
base-256 sizes for members of 8 GiB and more (vSphere refuses PAX headers).
"""
from __future__ import annotations

import tarfile
import time
from typing import BinaryIO, List, Tuple

from ..errors import OvatoolError
from ..fileio import BackgroundHash
from .manifest import new_hash

BLOCK = 512
RECORD = 20 * BLOCK
MAX_MEMBER_NAME = 99


def tar_header(name: str, size: int, mtime: int) -> bytes:
    """One 512-byte header for a regular file member."""
    if len(name.encode("utf-8")) > MAX_MEMBER_NAME:
        raise OvatoolError(f"internal error: member name {name!r} is too long for a USTAR header")
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = mtime
    info.mode = 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    info.type = tarfile.REGTYPE
    buf = info.tobuf(tarfile.GNU_FORMAT, encoding="utf-8", errors="strict")
    if len(buf) != BLOCK:
        raise OvatoolError(f"internal error: header for {name!r} is {len(buf)} bytes")
    return buf


def padding(size: int) -> int:
    return -size % BLOCK


class Reservation:
    def __init__(self, name: str, offset: int, size: int) -> None:
        self.name = name
        self.offset = offset
        self.size = size


class MemberWriter:
    """A member being streamed: ``write`` appends data, ``close`` patches the header."""

    def __init__(self, archive: "OvaWriter", name: str) -> None:
        self.archive = archive
        self.name = name
        self.header_offset = archive.position
        self.size = 0
        profile = archive.profile
        # hashed on a thread of its own, beside the writing (data handed over is immutable: bytes or views of them)
        self.hash = BackgroundHash(archive.algorithm, None if profile is None else
                                   lambda seconds: profile.add("hashing", seconds))
        archive.skip(BLOCK)  # the header, written in close(): a hole until then (storage/multipart relies on it)

    def write(self, data) -> None:
        profile = self.archive.profile
        if profile is None:
            self.archive._raw_write(data)
        else:
            began = time.thread_time()
            self.archive._raw_write(data)
            written = time.thread_time() - began
            profile.add("writing", written)
            profile.add("stream framing", -written)  # the caller counts the whole call as framing
        self.hash.update(data)
        self.size += len(data)

    def close(self) -> str:
        archive = self.archive
        archive._raw_write(bytes(padding(self.size)))
        end = archive.position
        archive.file.seek(self.header_offset)
        archive.file.write(tar_header(self.name, self.size, archive.mtime))
        archive.file.seek(end)
        digest = self.hash.hexdigest()
        archive.digests.append((self.name, digest))
        archive.sizes[self.name] = self.size
        return digest


class OvaWriter:
    def __init__(self, file: BinaryIO, mtime: int, algorithm: str, profile=None) -> None:
        self.profile = profile  # an export/profile.Profile (duck-typed: formats know nothing of exports)
        self.file = file
        self.mtime = mtime
        self.algorithm = algorithm
        self.position = 0
        self.digests: List[Tuple[str, str]] = []
        self.sizes: dict = {}

    def _raw_write(self, data) -> None:
        self.file.write(data)
        self.position += len(data)

    def skip(self, size: int) -> None:
        """Leave ``size`` bytes to be written later (by seeking back): a hole, never written twice."""
        self.position += size
        self.file.seek(self.position)

    def reserve(self, name: str, size: int) -> Reservation:
        """Keep room for a member written later, at the current position."""
        reservation = Reservation(name, self.position, size)
        self.skip(BLOCK + size + padding(size))
        return reservation

    def member(self, name: str) -> MemberWriter:
        return MemberWriter(self, name)

    def fill(self, reservation: Reservation, data: bytes) -> str:
        """Write a reserved member; ``data`` must have exactly the reserved size."""
        if len(data) != reservation.size:
            raise OvatoolError(
                f"internal error: {reservation.name} is {len(data)} bytes, {reservation.size} were reserved")
        end = self.position
        self.file.seek(reservation.offset)
        self.file.write(tar_header(reservation.name, len(data), self.mtime))
        self.file.write(data)
        self.file.write(bytes(padding(len(data))))
        self.file.seek(end)
        digest = new_hash(self.algorithm)
        digest.update(data)
        self.sizes[reservation.name] = len(data)
        return digest.hexdigest()

    def add(self, name: str, data: bytes) -> None:
        """A whole member known up front (header, data, padding)."""
        self.begin_member(name, len(data))
        self._raw_write(data)
        self.end_member(0, len(data))

    def begin_member(self, name: str, size: int) -> None:
        """The header of a member whose ``size`` bytes the caller writes next (possibly past this writer)."""
        self._raw_write(tar_header(name, size, self.mtime))
        self.sizes[name] = size

    def end_member(self, written_elsewhere: int, size: int = -1) -> None:
        """After a member's data: count what was written to the file directly, then pad to a block."""
        self.position += written_elsewhere
        total = written_elsewhere if size < 0 else size
        self._raw_write(bytes(padding(total)))

    def close(self) -> None:
        """End-of-archive: two zero blocks, padded to a whole 10 KiB record like tar does."""
        trailer = 2 * BLOCK
        trailer += -(self.position + trailer) % RECORD
        self._raw_write(bytes(trailer))
