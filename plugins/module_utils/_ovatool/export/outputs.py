# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Where an export's files go: the one factory (``open_outputs``) the export core asks for its output set
(protocols.OutputSet), and the set of local files.

LocalOutputs writes each file under a hidden temporary name beside its destination (output.AtomicOutput, or
output.AtomicFolder for an OVF folder) and renames them into place together once all are complete; a hidden
fingerprint file beside the package tells ``refresh`` a current package from a stale one. An object-store
destination gets storage/objects.ObjectOutputs instead; the export core never learns which it has.
"""
from __future__ import annotations

import os
from contextlib import ExitStack
from typing import Any, Callable, Dict, List, Optional, Tuple

from ..fileio import file_digest, replace_small_file
from ..output import AtomicFolder, AtomicOutput, DestLock, remove_leftovers
from ..protocols import OutputSet
from ..storage import objects
from .plan import ExportOptions, ExportPlan


def fingerprint_path(dest: str) -> str:
    return os.path.join(os.path.dirname(dest), f".{os.path.basename(dest)}.source")


def read_fingerprint(dest: str) -> Optional[str]:
    try:
        with open(fingerprint_path(dest)) as handle:
            return handle.read().strip()
    except OSError:
        return None


def _synced_digest(known: Optional[str], finish: Callable[[], str]) -> Callable[[], str]:
    """A job: finish the file (fsync: its data is on the disk before it is renamed into place), then its digest,
    read back unless it was ``known`` (hashed as it was written)."""
    def job() -> str:
        path = finish()
        return known or file_digest(path, "sha256")
    return job


class LocalOutputs:
    """The files of one export on this host: the package (an OVA file or an OVF folder), the images, the sums."""

    def __init__(self, plan: ExportPlan) -> None:
        self.plan = plan

    def paths(self) -> List[str]:
        return list(self.plan.outputs())

    def existing(self) -> List[str]:
        return [path for path in self.plan.outputs() if os.path.lexists(path)]

    def guard(self, stack: ExitStack, warnings: List[str]) -> None:
        """One export of this destination at a time, and what a killed export of it left removed."""
        dest = self.plan.dest
        stack.enter_context(DestLock(dest, warnings.append))
        for path in self.plan.outputs():
            for leftover in remove_leftovers(path):
                warnings.append(f"removed {leftover}, left by an export of {dest} that was killed")

    def current(self, stamp: str) -> bool:
        """Every file is there, made from sources with this fingerprint."""
        return read_fingerprint(self.plan.dest) == stamp and len(self.existing()) == len(self.plan.outputs())

    def expect(self, stamp: str) -> None:
        """Nothing was planned elsewhere: the sources are read as they are now."""

    def image(self, dest: str, index: int) -> AtomicOutput:
        return AtomicOutput(dest)

    def package(self) -> Any:
        return AtomicFolder(self.plan.dest) if self.plan.format == "ovf" else AtomicOutput(self.plan.dest)

    def _listed(self, package: Any) -> List[Tuple[Callable[[], str], str]]:
        """(how to finish it and get its temporary path, its name in the sums) of each file of the package."""
        if package is None:
            return []
        if isinstance(package, AtomicFolder):
            name = os.path.basename(self.plan.dest)
            return [(lambda path=os.path.join(package.temp, member): path, f"{name}/{member}")
                    for member in sorted(os.listdir(package.temp))]
        return [(package.prepare, os.path.basename(self.plan.dest))]

    def commit(self, package: Any, images: Any, threads: int) -> Dict[str, Any]:
        """Sync and hash every file on ``threads`` threads (one file's sync overlaps another's hashing), write the
        sums, rename the images and the sums into place, then the package; on a failure midway remove the ones
        already renamed, so that no part of a set is left. Returns the result's ``images``, ``sums``, ``sha256``."""
        written: Dict[str, Any] = {}
        if images is not None:
            package_files = self._listed(package)
            listed = [(output.prepare, os.path.basename(output.dest)) for output in images.outputs] + package_files
            known = images.known() + [None] * len(package_files)
            digests = images.digests([_synced_digest(value, finish) for value, (finish, _name) in zip(known, listed)],
                                     threads)
            images.write_sums(digests, [name for _finish, name in listed])
            written["images"] = images.entries([os.path.getsize(output.temp or "") for output in images.outputs],
                                               digests)
            written["sums"] = images.sums.dest
            if self.plan.format == "ova":
                written["sha256"] = digests[-1]
            try:
                for output in images.outputs + [images.sums]:
                    output.commit()
                    images.committed.append(output.dest)
            except OSError:
                images.rollback()
                raise
        if package is not None:
            try:
                package.commit()
            except BaseException:
                if images is not None:
                    images.rollback()
                raise
        return written

    def record(self, stamp: str) -> Dict[str, Any]:
        """The fingerprint, recorded beside the package (a hidden file) for ``refresh``; without it, refresh
        exports again, which is safe."""
        try:
            replace_small_file(fingerprint_path(self.plan.dest), stamp + "\n")
        except OSError:
            pass
        return {}


def open_outputs(plan: ExportPlan, options: ExportOptions) -> OutputSet:
    """The output set of ``plan``: objects for a destination in an object store, else files on this host."""
    if objects.handles(plan.dest):
        return objects.ObjectOutputs(plan.dest, options.upload, options.retry_seconds, options.progress,
                                     len(plan.outputs()) - 1)
    return LocalOutputs(plan)
