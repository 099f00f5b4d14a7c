# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A disk in memory, and a writer of formats/ run over it by the export's own pipeline into memory: what the unit
tests of each format read back byte by byte against the format's specification."""
from __future__ import annotations

import os
import tempfile
from typing import Callable, Iterator, List, Tuple

from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.export.codec import select_codec
from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.export.pipeline import (
    PipelineSettings, run_pipeline)
from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.formats.imagefile import ImageFile

GRAIN = 64 * 1024
TEXT = b"".join(b"line %06d of a text file that compresses well\n" % n for n in range(4000))  # 196 kB: three grains


class MemoryDisk:
    """protocols.DiskReader over ``data``: allocated where ``data`` is not zero, a grain at a time."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.capacity = len(data)

    def allocated_ranges(self) -> Iterator[Tuple[int, int]]:
        for offset in range(0, self.capacity, GRAIN):
            if any(self.data[offset:offset + GRAIN]):
                yield offset, min(GRAIN, self.capacity - offset)

    def read_into(self, offset: int, view: memoryview) -> None:
        chunk = self.data[offset:offset + len(view)]
        view[:len(chunk)] = chunk
        view[len(chunk):] = bytes(len(view) - len(chunk))

    def advise(self, offset: int, length: int) -> None:
        """Nothing to read ahead in memory."""


def sample_disk(grains: int = 40, tail: int = 1000) -> bytes:
    """``grains`` grains and ``tail`` bytes: text (compresses), random bytes (does not), zeros, and data in the
    last, partial grain."""
    data = bytearray(grains * GRAIN + tail)
    data[0:GRAIN] = TEXT[:GRAIN]
    data[3 * GRAIN:4 * GRAIN] = os.urandom(GRAIN)
    data[4 * GRAIN + 100:4 * GRAIN + 200] = b"\x01" * 100  # a grain that is mostly zeros
    data[(grains - 3) * GRAIN:(grains - 2) * GRAIN] = TEXT[GRAIN:2 * GRAIN]
    data[-tail:] = b"\xee" * tail
    assert len(data) == grains * GRAIN + tail
    return bytes(data)


def written(make: Callable[[ImageFile, int], object], data: bytes, dense: bool = False) -> bytes:
    """The bytes the writer ``make(sink, capacity)`` writes for ``data``, fed by the export pipeline."""
    with tempfile.TemporaryFile() as file:  # a file, as the export's: truncate() extends it over trailing zeros
        sink = ImageFile(file, dense=dense)
        writer = make(sink, len(data))
        codec = select_codec("zlib", "fast", 12) if getattr(writer, "compressed", False) else None
        run_pipeline(MemoryDisk(data), [writer], codec, PipelineSettings(threads=2))
        file.seek(0)
        return file.read()


def streamed(make: Callable[[Callable[[bytes], None], int], object], data: bytes) -> bytes:
    """The bytes a writer that takes a ``write`` callable (formats/stream) writes for ``data``."""
    chunks: List[bytes] = []
    writer = make(lambda block: chunks.append(bytes(block)), len(data))
    run_pipeline(MemoryDisk(data), [writer], select_codec("zlib", "fast"), PipelineSettings(threads=2))
    return b"".join(chunks)
