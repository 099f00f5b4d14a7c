# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What every disk image writer (raw, VHD, VHDX, qcow2) writes through, and what they share.

An image is written front to back. Zeros are not written but skipped: in a local file they become holes (a sparse
file, read back as zeros); into an object store (``dense``) they are written. The head a format can only know at
the end (qcow2's header, VHDX's allocation table) is ``reserve``d and filled in by ``fill`` when the image is
finished, as the OVA's head is (storage/multipart holds the part that has it until then).
"""
from __future__ import annotations

import hashlib
from typing import Any, BinaryIO, Optional

from ..errors import OvatoolError
from .grains import GrainBatch
from .vmdk import GRAIN_BYTES

_ZEROS = bytes(1 << 20)  # fed to the hash for skipped zeros: a MiB stays in the CPU's cache


class ImageFile:
    """A file written front to back: ``write`` appends, ``skip`` leaves zeros (a hole) to fill or to keep.

    ``hashed``: the file's SHA256 is computed as it is written, zeros included, so that it need not be read back;
    for formats that never ``fill`` (raw, VHD). A ``fill`` drops it (the caller then reads the file back)."""

    def __init__(self, file: BinaryIO, hashed: bool = False, dense: bool = False) -> None:
        self.file = file
        self.position = 0
        self.digest: Optional[Any] = hashlib.sha256() if hashed else None
        self.dense = dense

    def write(self, data: Any) -> None:
        self.file.write(data)
        self.position += len(data)
        if self.digest is not None:
            self.digest.update(data)

    def skip(self, size: int) -> None:
        """``size`` bytes of zeros."""
        if size <= 0:
            return
        if self.dense:
            for _chunk in range(size // len(_ZEROS)):
                self.write(_ZEROS)
            self.write(_ZEROS[:size % len(_ZEROS)])
            return
        self.position += size
        self.file.seek(self.position)
        if self.digest is not None:
            for _chunk in range(size // len(_ZEROS)):
                self.digest.update(_ZEROS)
            self.digest.update(_ZEROS[:size % len(_ZEROS)])

    def reserve(self, size: int) -> int:
        """Leave ``size`` bytes to be filled later (exactly, by ``fill``); returns where they are."""
        at = self.position
        self.digest = None
        self.position += size
        self.file.seek(self.position)
        return at

    def skip_to(self, offset: int) -> None:
        if offset < self.position:
            raise OvatoolError(f"internal error: image data at {offset} after {self.position} was written")
        self.skip(offset - self.position)

    def align(self, size: int) -> None:
        self.skip(-self.position % size)

    def fill(self, offset: int, data: Any) -> None:
        """Write over bytes skipped earlier."""
        self.digest = None
        self.file.seek(offset)
        self.file.write(data)
        self.file.seek(self.position)

    def end(self) -> None:
        """The file ends at the position, even when it ends in skipped zeros."""
        self.file.flush()
        if not self.dense:
            self.file.truncate(self.position)
            self.file.seek(self.position)


def copy_grains(out: ImageFile, base: int, batch: GrainBatch) -> None:
    """The batch's non-zero grains at ``base`` + their offset in the disk; zero grains stay holes."""
    for grain, count in batch.runs():
        out.skip_to(base + grain * GRAIN_BYTES)
        out.write(batch.span(grain, count))
