# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""raw: the disk's bytes, nothing else; a sparse file with holes where the disk is zero (docs/formats.md)."""
from __future__ import annotations

from .grains import GrainBatch
from .imagefile import ImageFile, copy_grains


class RawWriter:
    format = "raw"
    extension = "raw"
    compressed = False
    holes = 0
    sequential = True

    def __init__(self, out: ImageFile, capacity: int) -> None:
        self.out = out
        self.capacity = capacity

    @staticmethod
    def bound(capacity: int) -> int:
        return capacity

    def write_batch(self, batch: GrainBatch) -> None:
        copy_grains(self.out, 0, batch)

    def finish(self) -> None:
        self.out.skip_to(self.capacity)
        self.out.end()
