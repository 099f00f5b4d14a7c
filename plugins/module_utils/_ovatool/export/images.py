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
from typing import Any, Callable, Dict, List, Optional, Tuple

from ..errors import OvatoolError
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

# each image format's writer (formats/), by its name in ``images``
WRITERS = {writer.format: writer for writer in (Qcow2Writer, VhdxWriter, VhdWriter, RawWriter)}


def _writer(image: str, out: ImageFile, capacity: int, seed: str, plan: ExportPlan, mtime: int) -> BatchWriter:
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


def _digests(jobs: List[Callable[[], str]], threads: int) -> List[str]:
    """Run each job (which returns a file's digest) on ``threads`` threads, in order."""
    with ThreadPoolExecutor(max_workers=max(1, min(threads, len(jobs)))) as pool:
        return list(pool.map(lambda job: job(), jobs))


def _synced_digest(known: Optional[str], finish: Callable[[], str]) -> Callable[[], str]:
    """A job: finish the file (fsync: its data is on the disk before it is renamed into place), then its digest,
    read back unless it was ``known`` (hashed as it was written)."""
    def job() -> str:
        path = finish()
        return known or file_digest(path, "sha256")
    return job


def _object_digest(known: Optional[str], stream: Any) -> Callable[[], str]:
    """A job: an uploaded object's digest, read back through its presigned GET unless it was ``known``."""
    return (lambda: known) if known else stream.object_digest


Opener = Callable[[str, int], Any]  # (path, index among the set's objects) -> AtomicOutput or MultipartStream


def _local(path: str, _index: int) -> AtomicOutput:
    return AtomicOutput(path)


class ImageSet:
    """Opened inside the export's ExitStack: leaving it without committing removes every temporary file (or
    aborts every upload). ``opener`` gives each image and the sums their output: a local file by default, or an
    object of an S3 multipart upload (``remote``: zeros are written, not skipped, and the set is committed by
    ``commit_remote``)."""

    def __init__(self, plan: ExportPlan, capacities: List[int], mtime: int, stack: ExitStack,
                 opener: Optional[Opener] = None) -> None:
        self.plan = plan
        self.remote = opener is not None
        opener = opener or _local
        self.files: List[Tuple[Any, str, int]] = []  # output, format, disk number (1-based)
        self.sinks: List[ImageFile] = []
        self.writers: List[List[BatchWriter]] = []
        for index, capacity in enumerate(capacities):
            own = []
            for image in plan.images:
                output = stack.enter_context(opener(plan.image_path(index, image), len(self.files)))
                seed = f"{plan.name}|disk{index + 1}|{image}|{capacity}|{mtime}"
                sink = ImageFile(output.stream, hashed=WRITERS[image].sequential, dense=self.remote)
                own.append(_writer(image, sink, capacity, seed, plan, mtime))
                self.sinks.append(sink)
                self.files.append((output, image, index + 1))
            self.writers.append(own)
        # format none: the sums are the destination itself
        self.sums = stack.enter_context(opener(plan.sums_path or plan.dest, len(self.files)))
        self.committed: List[Any] = []  # paths renamed into place, or streams completed

    def _write_sums(self, digests: List[str], names: List[str]) -> None:
        self.sums.stream.write("".join(f"{digest}  {name}\n" for digest, name in zip(digests, names)).encode("utf-8"))

    def _known(self) -> List[Optional[str]]:
        return [sink.digest.hexdigest() if sink.digest is not None else None for sink in self.sinks]

    def checksums(self, package: List[Tuple[Callable[[], str], str]],
                  threads: int) -> Tuple[List[Dict[str, Any]], Dict[str, str]]:
        """Sync and hash every file on ``threads`` threads (the package's too: ``package`` lists (how to finish it
        and get its temporary path, its name in the sums)), so that one file's sync overlaps another's hashing,
        and write the sums; returns the images' result entries and the package's hashes."""
        listed = [(output.prepare, os.path.basename(output.dest)) for output, _image, _disk in self.files]
        listed += package
        known = self._known() + [None] * len(package)
        digests = _digests([_synced_digest(value, finish) for value, (finish, _name) in zip(known, listed)], threads)
        self._write_sums(digests, [name for _finish, name in listed])
        images = [{"path": output.dest, "format": image, "disk": disk, "size": os.path.getsize(output.temp or ""),
                   "sha256": value} for (output, image, disk), value in zip(self.files, digests)]
        return images, {name: value for value, (_finish, name) in zip(digests[len(self.files):], package)}

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

    def commit_remote(self, package: Any, threads: int) -> Dict[str, Any]:
        """Complete the images' uploads and the package's, read back what could not be hashed as it was written,
        then upload the sums: the object that says the set is whole. On a failure, the objects already completed
        are deleted. Returns the result's ``images``, ``sha256``, ``sums``, ``sums_size`` and the package's
        upload (``parts``, ``upload_peak_bytes``)."""
        try:
            sizes = []
            for output, _image, _disk in self.files:
                sizes.append(output.commit()["size"])
                self.committed.append(output)
            sent = package.commit()
            self.committed.append(package)
            streams = [output for output, _image, _disk in self.files] + [package]
            digests = _digests([_object_digest(known, stream) for known, stream in zip(self._known() + [None], streams)],
                               threads)
            self._write_sums(digests, [os.path.basename(stream.dest) for stream in streams])
            sums = self.sums.commit()
        except BaseException:
            self.rollback()
            raise
        images = [{"path": output.dest, "format": image, "disk": disk, "size": size, "sha256": digest}
                  for (output, image, disk), size, digest in zip(self.files, sizes, digests)]
        return {"images": images, "sha256": digests[-1], "sums": self.sums.dest, "sums_size": sums["size"],
                "parts": sent["parts"], "upload_peak_bytes": package.peak_held}

    def rollback(self) -> None:
        for done in self.committed:
            try:
                if isinstance(done, str):
                    os.unlink(done)
                else:
                    done.delete()
            except (OSError, OvatoolError):
                pass
        self.committed = []
