# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The images of one export (``images``): a file per disk and format, written in the package's pass, checksummed
in ``<name>.SHA256SUMS`` (GNU coreutils format: ``sha256sum -c`` checks it) and committed with the package, so
that an export leaves every file it was asked for or none of them. Where each file goes (a local file, an object)
is the output set's business (protocols.OutputSet): it opens them and commits the set."""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from typing import Any, Callable, Dict, List, Optional, Tuple, Type

from ..errors import OvatoolError
from ..formats.imagefile import ImageFile
from ..formats.qcow2 import Qcow2Writer
from ..formats.raw import RawWriter
from ..formats.vhd import VhdWriter
from ..formats.vhdx import VhdxWriter
from ..protocols import BatchWriter, ImageWriter
from .codec import STORED_LEVEL
from .plan import ExportPlan

# each image format's writer (formats/), by its name in ``images``
WRITERS: Dict[str, Type[ImageWriter]] = {writer.format: writer
                                         for writer in (Qcow2Writer, VhdxWriter, VhdWriter, RawWriter)}


def _writer(image: str, out: ImageFile, capacity: int, seed: str, plan: ExportPlan, mtime: int) -> ImageWriter:
    if image == "qcow2":
        return Qcow2Writer(out, capacity, compressed=plan.codec.level != STORED_LEVEL)
    if image == "vhdx":
        return VhdxWriter(out, capacity, seed)
    if image == "vhd":
        return VhdWriter(out, capacity, seed, mtime)
    return RawWriter(out, capacity)


def image_objects(plan: ExportPlan, capacities: List[int]) -> List[Dict[str, Any]]:
    """What the controller needs to start an upload per image and one for the sums: URL, size bound, holes."""
    found = [{"url": plan.image_path(index, image), "bound_bytes": WRITERS[image].bound(capacity),
              "holes": WRITERS[image].holes}
             for index, capacity in enumerate(capacities) for image in plan.images]
    if found and plan.sums_path:
        found.append({"url": plan.sums_path, "bound_bytes": 256 * (len(found) + 2), "holes": 0})
    return found


Opener = Callable[[str, int], Any]  # (path, index among the set's outputs) -> an Output (protocols)


class ImageSet:
    """Opened inside the export's ExitStack: leaving it without committing removes every temporary file (or
    aborts every upload). ``opener`` (the output set's ``image``) gives each image and the sums their output;
    an output without holes (an object) gets its zeros written, not skipped."""

    def __init__(self, plan: ExportPlan, capacities: List[int], mtime: int, stack: ExitStack,
                 opener: Opener) -> None:
        self.plan = plan
        self.files: List[Tuple[Any, str, int]] = []  # output, format, disk number (1-based)
        self.sinks: List[ImageFile] = []
        self.writers: List[List[BatchWriter]] = []
        for index, capacity in enumerate(capacities):
            own = []
            for image in plan.images:
                output = stack.enter_context(opener(plan.image_path(index, image), len(self.files)))
                seed = f"{plan.name}|disk{index + 1}|{image}|{capacity}|{mtime}"
                sink = ImageFile(output.stream, hashed=WRITERS[image].sequential, dense=not output.holes)
                own.append(_writer(image, sink, capacity, seed, plan, mtime))
                self.sinks.append(sink)
                self.files.append((output, image, index + 1))
            self.writers.append(own)
        # format none: the sums are the destination itself
        self.sums = stack.enter_context(opener(plan.sums_path or plan.dest, len(self.files)))
        self.committed: List[Any] = []  # paths renamed into place, or streams completed

    @property
    def outputs(self) -> List[Any]:
        """The images' outputs, in plan order (the sums' is ``sums``)."""
        return [output for output, _image, _disk in self.files]

    def write_sums(self, digests: List[str], names: List[str]) -> None:
        self.sums.stream.write("".join(f"{digest}  {name}\n" for digest, name in zip(digests, names)).encode("utf-8"))

    def known(self) -> List[Optional[str]]:
        """Each image's SHA256 when it was hashed as it was written (a sequential format), else None."""
        return [sink.digest.hexdigest() if sink.digest is not None else None for sink in self.sinks]

    @staticmethod
    def digests(jobs: List[Callable[[], str]], threads: int) -> List[str]:
        """Run each job (which returns a file's digest) on ``threads`` threads, in order."""
        with ThreadPoolExecutor(max_workers=max(1, min(threads, len(jobs)))) as pool:
            return list(pool.map(lambda job: job(), jobs))

    def entries(self, sizes: List[int], digests: List[str]) -> List[Dict[str, Any]]:
        """The result's ``images``."""
        return [{"path": output.dest, "format": image, "disk": disk, "size": size, "sha256": digest}
                for (output, image, disk), size, digest in zip(self.files, sizes, digests)]

    def rollback(self) -> None:
        """Undo what was committed: remove the files renamed into place, delete the objects completed."""
        for done in self.committed:
            try:
                if isinstance(done, str):
                    os.unlink(done)
                else:
                    done.delete()
            except (OSError, OvatoolError):
                pass
        self.committed = []
