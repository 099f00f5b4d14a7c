# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""An OVF folder (``format: ovf``): the same files as the OVA, side by side.

Offers the OVA writer's interface (reserve / member / fill / close) so the
export writes both the same way. The files go into a hidden temporary folder
that the caller renames into place when everything is written.
"""
from __future__ import annotations

import os
from typing import Dict, List, Tuple

from ..formats.manifest import new_hash

BUFFER = 1 << 20


class _FileMember:
    def __init__(self, writer: "FolderWriter", name: str) -> None:
        self.writer = writer
        self.name = name
        self.size = 0
        self.hash = new_hash(writer.algorithm)
        self.file = open(os.path.join(writer.folder, name), "xb", buffering=BUFFER)  # pylint: disable=consider-using-with

    def write(self, data) -> None:
        self.file.write(data)
        self.hash.update(data)
        self.size += len(data)

    def close(self) -> str:
        self.file.flush()
        os.fsync(self.file.fileno())
        self.file.close()
        digest = self.hash.hexdigest()
        self.writer.digests.append((self.name, digest))
        self.writer.sizes[self.name] = self.size
        return digest


class FolderWriter:
    def __init__(self, folder: str, algorithm: str) -> None:
        self.folder = folder
        self.algorithm = algorithm
        self.digests: List[Tuple[str, str]] = []
        self.sizes: Dict[str, int] = {}
        self.position = 0

    def reserve(self, name: str, size: int) -> Tuple[str, int]:
        return name, size

    def member(self, name: str) -> _FileMember:
        return _FileMember(self, name)

    def fill(self, slot: Tuple[str, int], data: bytes) -> str:
        name = slot[0]
        with open(os.path.join(self.folder, name), "xb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        self.sizes[name] = len(data)
        digest = new_hash(self.algorithm)
        digest.update(data)
        return digest.hexdigest()

    def close(self) -> None:
        self.position = sum(self.sizes.values())
