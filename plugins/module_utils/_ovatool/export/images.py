# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The images of one export (``images``): a file per disk and format, written in the package's pass, checksummed
in ``<name>.SHA256SUMS`` (GNU coreutils format: ``sha256sum -c`` checks it) and committed with the package, so
that an export leaves every file it was asked for or none of them."""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from typing import Any, Dict, List, Tuple

from ..fileio import file_digest
from ..formats.imagefile import ImageFile
from ..formats.qcow2 import Qcow2Writer
from ..formats.raw import RawWriter
from ..formats.vhd import VhdWriter
from ..formats.vhdx import VhdxWriter
from ..output import AtomicOutput
from ..protocols import BatchWriter
from .codec import STORED_LEVEL
from .plan import ExportPlan

# written strictly front to back: hashed as they are written (qcow2 and VHDX fill their head last: read back)
SEQUENTIAL = ("raw", "vhd")


def _writer(image: str, out: ImageFile, capacity: int, seed: str, plan: ExportPlan, mtime: int) -> BatchWriter:
    if image == "qcow2":
        return Qcow2Writer(out, capacity, compressed=plan.codec.level != STORED_LEVEL)
    if image == "vhdx":
        return VhdxWriter(out, capacity, seed)
    if image == "vhd":
        return VhdWriter(out, capacity, seed, mtime)
    return RawWriter(out, capacity)


class ImageSet:
    """Opened inside the export's ExitStack: leaving it without ``commit`` removes every temporary file."""

    def __init__(self, plan: ExportPlan, capacities: List[int], mtime: int, stack: ExitStack) -> None:
        self.plan = plan
        self.files: List[Tuple[AtomicOutput, str, int]] = []  # output, format, disk number (1-based)
        self.sinks: List[ImageFile] = []
        self.writers: List[List[BatchWriter]] = []
        for index, capacity in enumerate(capacities):
            own = []
            for image in plan.images:
                output = stack.enter_context(AtomicOutput(plan.image_path(index, image)))
                seed = f"{plan.name}|disk{index + 1}|{image}|{capacity}|{mtime}"
                sink = ImageFile(output.stream, hashed=image in SEQUENTIAL)
                own.append(_writer(image, sink, capacity, seed, plan, mtime))
                self.sinks.append(sink)
                self.files.append((output, image, index + 1))
            self.writers.append(own)
        # format none: the sums are the destination itself
        self.sums = stack.enter_context(AtomicOutput(plan.sums_path or plan.dest))
        self.committed: List[str] = []

    def checksums(self, package: List[Tuple[str, str]], threads: int) -> Tuple[List[Dict[str, Any]], Dict[str, str]]:
        """Hash every file (the package's too: ``package`` lists (temporary path, name in the sums)) on
        ``threads`` threads and write the sums; returns the images' result entries and the package's hashes."""
        listed = [(output.prepare(), os.path.basename(output.dest)) for output, _image, _disk in self.files]
        listed += package
        known = [sink.digest.hexdigest() if sink.digest is not None else None for sink in self.sinks]
        known += [None] * len(package)
        with ThreadPoolExecutor(max_workers=max(1, min(threads, len(listed)))) as pool:
            digests = list(pool.map(lambda item: item[1] or file_digest(item[0][0], "sha256"), zip(listed, known)))
        lines = "".join(f"{digest}  {name}\n" for digest, (_path, name) in zip(digests, listed))
        self.sums.stream.write(lines.encode("utf-8"))
        images = [{"path": output.dest, "format": image, "disk": disk, "size": os.path.getsize(output.temp or ""),
                   "sha256": digest} for (output, image, disk), digest in zip(self.files, digests)]
        return images, {name: digest for digest, (_path, name) in zip(digests[len(self.files):], package)}

    def commit(self) -> None:
        """Rename the images and the sums into place (the package follows): on a failure midway, remove the
        ones already renamed, so that no part of a set is left."""
        try:
            for output in [output for output, _image, _disk in self.files] + [self.sums]:
                output.commit()
                self.committed.append(output.dest)
        except OSError:
            self.rollback()
            raise

    def rollback(self) -> None:
        for path in self.committed:
            try:
                os.unlink(path)
            except OSError:
                pass
        self.committed = []
