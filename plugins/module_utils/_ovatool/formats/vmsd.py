# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The VM's snapshot dictionary (``<vm>.vmsd``) and the disks a snapshot froze.

Facts followed (docs/formats.md, VMSD): the file sits beside the ``.vmx`` with its stem, in the VMX syntax
(``key = "value"``, ``|XX`` escapes); ``snapshot.numSnapshots`` and ``snapshot.current`` (the uid the VM runs
on); per snapshot ``snapshotN.uid``, ``.displayName``, ``.description``, ``.parent`` (a uid), ``.numDisks``,
``.diskK.fileName`` (the disk file that was current when the snapshot was taken, which the VM no longer
writes) and ``.diskK.node`` (``scsi0:0``). Taking a snapshot points the ``.vmx`` at a new child of each
disk; the snapshot's own files stay as they were until it is removed.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, replace
from typing import Dict, List, Optional, Tuple

from ..errors import SnapshotError, VmxError
from .vmx import DiskRef, VirtualMachine, read_vmx, resolve_path

_SNAPSHOT_KEY = re.compile(r"^snapshot(\d+)\.(uid|displayname|description|parent|numdisks)$")
_DISK_KEY = re.compile(r"^snapshot(\d+)\.disk(\d+)\.(filename|node)$")


@dataclass(frozen=True)
class Snapshot:
    uid: str
    name: str
    parent: Optional[str]  # the uid of the snapshot it was taken on, None for a root
    description: str
    disks: Tuple[Tuple[str, str], ...]  # (node like "scsi0:0", the disk file it froze, as written)

    def as_dict(self, folder: str) -> Dict[str, object]:
        """For results: name, id, and the disk files (absolute) it froze, by node."""
        return {"name": self.name, "id": self.uid, "parent": self.parent, "description": self.description,
                "disks": {node: resolve_path(folder, name) for node, name in self.disks}}


@dataclass(frozen=True)
class SnapshotTree:
    path: str  # the .vmsd
    snapshots: Tuple[Snapshot, ...]
    current: Optional[str]  # uid of the snapshot the VM runs on

    def names(self) -> List[str]:
        return [snap.name for snap in self.snapshots]

    def named(self, name: str) -> List[Snapshot]:
        return [snap for snap in self.snapshots if snap.name == name]

    def find(self, name: str) -> Snapshot:
        """The one snapshot called ``name``; unknown or ambiguous names fail, listing the VM's snapshots."""
        found = self.named(name)
        if len(found) == 1:
            return found[0]
        listed = ", ".join(f'"{n}"' for n in self.names()) or "none"
        what = "no snapshot" if not found else f"{len(found)} snapshots"
        raise SnapshotError(f'the VM has {what} called "{name}" (its snapshots: {listed})', self.path)


def vmsd_path(vmx_path: str) -> str:
    """``<folder>/<stem>.vmsd``, beside the ``.vmx``."""
    return os.path.splitext(os.path.abspath(vmx_path))[0] + ".vmsd"


def read_vmsd(vmx_path: str) -> SnapshotTree:
    """The VM's snapshots, in the order the file numbers them; no ``.vmsd``: none."""
    path = vmsd_path(vmx_path)
    if not os.path.exists(path):
        return SnapshotTree(path, (), None)
    try:
        values = read_vmx(path)
    except VmxError as exc:
        raise SnapshotError(f"cannot read the snapshot dictionary: {exc.message}", path) from None
    fields: Dict[int, Dict[str, str]] = {}
    disks: Dict[int, Dict[int, Dict[str, str]]] = {}
    for key, value in values.items():
        match = _SNAPSHOT_KEY.match(key)
        if match:
            fields.setdefault(int(match.group(1)), {})[match.group(2)] = value
            continue
        match = _DISK_KEY.match(key)
        if match:
            disks.setdefault(int(match.group(1)), {}).setdefault(int(match.group(2)), {})[match.group(3)] = value
    snapshots = []
    for number in sorted(fields):
        own = fields[number]
        uid = own.get("uid", "").strip()
        if not uid:
            raise SnapshotError(f"snapshot{number} has no uid", path)
        frozen = tuple((disk.get("node", "").strip().lower(), disk.get("filename", ""))
                       for _index, disk in sorted(disks.get(number, {}).items()) if disk.get("filename"))
        snapshots.append(Snapshot(uid, own.get("displayname", ""), own.get("parent", "").strip() or None,
                                  own.get("description", ""), frozen))
    return SnapshotTree(path, tuple(snapshots), values.get("snapshot.current", "").strip() or None)


def independent_disks(vm: VirtualMachine) -> List[str]:
    """Why a snapshot of ``vm`` would not hold its disks as they are: one line per independent disk."""
    return [f'disk {ref.address} "{ref.file_name}" is {ref.mode}: snapshots do not capture it'
            for ref in vm.disks if ref.independent]


def snapshot_disks(vm: VirtualMachine, name: str) -> Tuple[Snapshot, Tuple[DiskRef, ...]]:
    """The VM's disks as snapshot ``name`` froze them: each DiskRef pointed at the file the ``.vmsd`` records for
    its node (its parents follow from the file itself, as for any chain)."""
    refused = independent_disks(vm)
    if refused:
        raise SnapshotError("; ".join(refused) + ", so no snapshot holds the VM as it was", vm.vmx_path)
    tree = read_vmsd(vm.vmx_path)
    snapshot = tree.find(name)
    frozen = dict(snapshot.disks)
    refs = []
    for ref in vm.disks:
        file_name = frozen.get(ref.address)
        if file_name is None:
            raise SnapshotError(f'disk {ref.address} is not in snapshot "{name}" (added after it was taken?); '
                                f"the snapshot holds {', '.join(sorted(frozen)) or 'no disk'}", tree.path)
        refs.append(replace(ref, file_name=file_name, path=resolve_path(vm.folder, file_name)))
    return snapshot, tuple(refs)


__all__ = ["Snapshot", "SnapshotTree", "read_vmsd", "vmsd_path", "snapshot_disks", "independent_disks"]
