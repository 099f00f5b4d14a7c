# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Read-ahead: the pipeline tells the disk what it will read a few batches early, and the disk turns that into
kernel read-ahead of exactly the file ranges it then reads."""
from __future__ import annotations

import os

import pytest

from support import vmfactory
from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.export import pipeline
from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.formats import flat, sparse
from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.formats.disk import open_disk
from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.formats.vmdk import GRAIN_BYTES


class Recorder:
    def __init__(self) -> None:
        self.advised = []
        self.read = []

    def disk(self, capacity: int):
        recorder = self

        class Disk:
            def __init__(self) -> None:
                self.capacity = capacity

            def advise(self, offset: int, length: int) -> None:
                recorder.advised.append((offset, length))

        return Disk()


def test_batches_are_announced_depth_batches_early():
    recorder = Recorder()
    disk = recorder.disk(100 * GRAIN_BYTES - 512)  # the last grain is cut short
    batches = [(0, 4), (10, 4), (20, 4), (40, 4), (60, 4), (96, 4)]
    seen = []
    for first, length in pipeline.read_ahead(disk, iter(batches), depth=2):
        seen.append((first, length))
        index = len(seen) - 1
        # when a batch is handed out, it and the next two have been announced, and nothing beyond them
        assert len(recorder.advised) == min(index + 3, len(batches))
    assert seen == [(first, min(count * GRAIN_BYTES, disk.capacity - first * GRAIN_BYTES)) for first, count in batches]
    assert recorder.advised == [(first * GRAIN_BYTES, length) for first, length in seen]


@pytest.mark.parametrize("kind", ["monolithicSparse", "monolithicFlat", "streamOptimized"])
def test_advice_covers_exactly_what_is_read(tmp_path, images, monkeypatch, kind):
    vmdk = vmfactory.convert(images["gappy"], str(tmp_path / "disk.vmdk"), kind)
    advised, preads = [], []
    for module in (sparse, flat):
        monkeypatch.setattr(module, "read_ahead", lambda fd, offset, length: advised.append((offset, length)))
        real = module.pread_into
        monkeypatch.setattr(module, "pread_into", lambda fd, view, offset, real=real: (
            preads.append((offset, len(view))), real(fd, view, offset))[1])
    real_pread = os.pread

    def pread(fd: int, size: int, offset: int) -> bytes:
        preads.append((offset, size))
        return real_pread(fd, size, offset)

    monkeypatch.setattr(sparse.os, "pread", pread)
    with open_disk(vmdk) as disk:
        batches = list(pipeline.grain_batches(disk.allocated_ranges(), disk.capacity))
        assert len(batches) > 3
        for first, count in batches:
            offset = first * GRAIN_BYTES
            length = min(count * GRAIN_BYTES, disk.capacity - offset)
            del advised[:]
            disk.advise(offset, length)  # loads the grain tables it needs: their reads are not counted below
            assert advised, f"nothing announced for batch {first}"
            del preads[:]
            buffer = bytearray(length)
            disk.read_into(offset, memoryview(buffer))
            if kind == "streamOptimized":  # one record per grain: its head and data lie in the advised grain span
                assert all(any(start <= at and at + size <= start + span for start, span in advised)
                           for at, size in preads)
            else:
                assert advised == preads
