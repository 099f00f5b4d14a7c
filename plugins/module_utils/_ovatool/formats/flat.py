# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Flat extents (FLAT, VMFS) and ZERO extents.

A flat extent is a plain run of sectors in a file, starting at a sector
offset. Its holes are found with SEEK_DATA/SEEK_HOLE where the OS has them,
so a thin-provisioned flat file is read only where it holds data.
"""
from __future__ import annotations

import errno
import os
from typing import Iterator, Tuple

from ..errors import DiskFormatError
from ..fileio import pread_into, read_ahead, zero_fill
from .vmdk import SECTOR

_SEEK_DATA = getattr(os, "SEEK_DATA", None)
_SEEK_HOLE = getattr(os, "SEEK_HOLE", None)


class FlatExtent:
    def __init__(self, path: str, fd: int, file_size: int, offset_sectors: int, sectors: int) -> None:
        self.path = path
        self.fd = fd
        self.base = offset_sectors * SECTOR
        self.capacity = sectors * SECTOR
        if self.base + self.capacity > file_size:
            raise DiskFormatError(
                f"flat extent is shorter than declared: {file_size} bytes in the file, "
                f"{self.base + self.capacity} needed", path)

    def allocated_ranges(self) -> Iterator[Tuple[int, int]]:
        if _SEEK_DATA is None or _SEEK_HOLE is None:
            yield 0, self.capacity
            return
        end = self.base + self.capacity
        pos = self.base
        while pos < end:
            try:
                data = os.lseek(self.fd, pos, _SEEK_DATA)
            except OSError as exc:
                if exc.errno == errno.ENXIO:  # no data after pos
                    return
                if exc.errno in (errno.EINVAL, errno.ENOTSUP, getattr(errno, "EOPNOTSUPP", errno.ENOTSUP)):
                    yield pos - self.base, end - pos
                    return
                raise
            if data >= end:
                return
            hole = min(os.lseek(self.fd, data, _SEEK_HOLE), end)
            yield data - self.base, hole - data
            pos = hole

    def present_ranges(self, offset: int, length: int) -> Iterator[Tuple[int, int]]:
        yield offset, length

    def advise(self, offset: int, length: int) -> None:
        read_ahead(self.fd, self.base + offset, length)

    def read_into(self, offset: int, view: memoryview) -> None:
        if pread_into(self.fd, view, self.base + offset) != len(view):
            raise DiskFormatError(
                f"short read at byte {self.base + offset}: the flat extent ends early", self.path)


class ZeroExtent:
    """A ZERO extent (or a sparse-less gap): reads as zeros, holds nothing."""

    path = ""

    def __init__(self, sectors: int) -> None:
        self.capacity = sectors * SECTOR

    def allocated_ranges(self) -> Iterator[Tuple[int, int]]:
        return iter(())

    def present_ranges(self, offset: int, length: int) -> Iterator[Tuple[int, int]]:
        yield offset, length

    def advise(self, offset: int, length: int) -> None:
        pass  # nothing to read

    def read_into(self, offset: int, view: memoryview) -> None:
        zero_fill(view)
