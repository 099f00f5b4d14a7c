# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Snapshots of a VM through the host's own tools, for exports that never stop it.

- Workstation, Fusion: ``vmrun [-T ws|fusion] snapshot VMX NAME``, ``listSnapshots VMX`` (``Total snapshots: N``
  then a name a line), ``deleteSnapshot VMX NAME``. vmrun cannot quiesce a guest.
- ESXi: ``vim-cmd vmsvc/snapshot.create VMID NAME DESCRIPTION INCLUDEMEMORY QUIESCE`` (0/1; memory is never
  included), ``vmsvc/snapshot.get VMID`` (the tree: ``Snapshot Name``, ``Snapshot Id``, children indented by
  ``--``), ``vmsvc/snapshot.remove VMID ID``, ``vmsvc/get.guest VMID`` (``toolsRunningStatus``).

A snapshot is removed through those tools only, never by editing files: removing it is what merges the guest's
writes since (the delta disks) back. The disks a snapshot froze come from the ``.vmsd`` (formats/vmsd).

A **record** (a small JSON file in a state folder, written before the snapshot is taken) marks a snapshot this
collection made; a later run removes what a record names and nothing else, so a run cut short leaves nothing
behind for long and the user's own snapshots are never touched.

While an export reads a snapshot's files it holds a shared lock (``SnapshotLock``) keyed by the VM and the
snapshot's name; removal takes it exclusively, so a snapshot is never removed under an export still reading it
(say, one left running on the host by a controller that was killed).
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import time
from typing import Any, Dict, List, Optional, Tuple

from ..errors import SnapshotError, describe_os_error
from ..fileio import read_json_record, replace_small_file
from ..formats.vmsd import SnapshotTree, independent_disks, read_vmsd
from ..formats.vmx import load_vm
from .power import PowerError, VimCmd, Vmrun

try:
    import fcntl
except ImportError:  # pragma: no cover - not a POSIX host
    fcntl = None  # type: ignore[assignment]

STATES = ("present", "absent", "query")
QUIESCE = ("auto", "true", "false")
LOCK_DIR = "/tmp"  # every host this runs on has it (ESXi's is a ramdisk); the same for every process there
CRASH_CONSISTENT, QUIESCED = "crash-consistent", "quiesced"
DESCRIPTION = "Taken by ovatool.vmware to export the running VM; removed when the export is done"


def quiesce_mode(value: Any) -> str:
    """``auto``, ``true`` or ``false`` from a string or a YAML boolean."""
    text = str(value).strip().lower()
    text = {"yes": "true", "on": "true", "1": "true", "no": "false", "off": "false", "0": "false"}.get(text, text)
    if text not in QUIESCE:
        raise SnapshotError(f'quiesce must be auto, true or false, not "{value}"')
    return text


class VmrunSnapshots:
    """Workstation / Fusion: vmrun names snapshots, the .vmsd holds the rest."""

    name = "vmrun"

    def __init__(self, tool: Vmrun) -> None:
        self.tool = tool

    def listed(self, vmx: str) -> List[Tuple[str, Optional[str]]]:
        """(name, id) of every snapshot; vmrun gives no ids."""
        lines = self.tool._cmd("listSnapshots", vmx).splitlines()
        if not lines or not lines[0].startswith("Total snapshots:"):
            raise SnapshotError(f"unexpected answer from vmrun listSnapshots: {(lines or [''])[0][:80]}", vmx)
        return [(line.strip(), None) for line in lines[1:] if line.strip()]

    def tools_running(self, vmx: str) -> Tuple[bool, str]:
        del vmx
        return False, "vmrun cannot quiesce a guest's file systems"

    def create(self, vmx: str, name: str, quiesce: bool) -> None:
        del quiesce  # never asked for: vmrun cannot
        self.tool._cmd("snapshot", vmx, name)

    def remove(self, vmx: str, name: str, snapshot_id: Optional[str]) -> None:
        del snapshot_id
        self.tool._cmd("deleteSnapshot", vmx, name)


_TREE_LINE = re.compile(r"^(-*)(?:\|-\w+|Snapshot (Name|Id)\s*:\s?(.*))$")


def parse_snapshot_get(text: str) -> List[Tuple[str, str, int]]:
    """(name, id, depth) of each snapshot in ``vim-cmd vmsvc/snapshot.get`` output, in tree order."""
    found: List[Tuple[str, str, int]] = []
    name: Optional[str] = None
    for line in text.splitlines():
        match = _TREE_LINE.match(line.rstrip())
        if not match or not match.group(2):
            continue
        if match.group(2) == "Name":
            name = match.group(3).strip()
        elif name is not None:
            found.append((name, match.group(3).strip(), len(match.group(1)) // 2))
            name = None
    return found


class VimCmdSnapshots:
    """ESXi's host agent: snapshots by id."""

    name = "vim-cmd"

    def __init__(self, tool: VimCmd) -> None:
        self.tool = tool

    def listed(self, vmx: str) -> List[Tuple[str, Optional[str]]]:
        return [(name, snapshot_id) for name, snapshot_id, _depth
                in parse_snapshot_get(self.tool._cmd("vmsvc/snapshot.get", self.tool.vmid(vmx)))]

    def tools_running(self, vmx: str) -> Tuple[bool, str]:
        text = self.tool._cmd("vmsvc/get.guest", self.tool.vmid(vmx))
        match = re.search(r'toolsRunningStatus\s*=\s*"([^"]*)"', text)
        status = match.group(1) if match else "unknown"
        return status == "guestToolsRunning", f"VMware Tools are not running in the guest ({status})"

    def create(self, vmx: str, name: str, quiesce: bool) -> None:
        self.tool._cmd("vmsvc/snapshot.create", self.tool.vmid(vmx), name, DESCRIPTION, "0", "1" if quiesce else "0")

    def remove(self, vmx: str, name: str, snapshot_id: Optional[str]) -> None:
        if not snapshot_id:
            raise SnapshotError(f'vim-cmd did not give the id of snapshot "{name}"', vmx)
        self.tool._cmd("vmsvc/snapshot.remove", self.tool.vmid(vmx), snapshot_id)


def snapshots_of(engine) -> Any:
    """The snapshot operations of a power backend (host/power.backend)."""
    if isinstance(engine, VimCmd):
        return VimCmdSnapshots(engine)
    if isinstance(engine, Vmrun):
        return VmrunSnapshots(engine)
    raise SnapshotError(f"no snapshot support for the backend {getattr(engine, 'name', engine)}")


def lock_path(vmx: str, name: str) -> str:
    key = hashlib.sha1(f"{os.path.realpath(vmx)}\0{name}".encode("utf-8")).hexdigest()[:24]
    return os.path.join(LOCK_DIR, f".ovatool-snapshot-{key}.lock")


class SnapshotLock:
    """Readers (exports) share it; removal holds it alone, waiting up to ``wait`` seconds for readers."""

    def __init__(self, vmx: str, name: str, exclusive: bool = False, wait: float = 0) -> None:
        self.vmx, self.name, self.exclusive, self.wait = vmx, name, exclusive, wait
        self.path = lock_path(vmx, name)
        self.fd = -1

    def __enter__(self) -> "SnapshotLock":
        if fcntl is None:
            return self
        try:
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
        except OSError as exc:
            raise SnapshotError(f"cannot create the lock {self.path}: {describe_os_error(exc)}", self.vmx) from None
        deadline = time.monotonic() + self.wait
        while True:
            try:
                fcntl.flock(self.fd, (fcntl.LOCK_EX if self.exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
                return self
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(self.fd)
                    self.fd = -1
                    doing = ("an export is still reading from it" if self.exclusive
                             else "it is being removed")
                    raise SnapshotError(f'snapshot "{self.name}": {doing}; try again later', self.vmx) from None
                time.sleep(0.2)

    def __exit__(self, *exc: object) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def describe(vmx: str, tools, tree: Optional[SnapshotTree] = None) -> List[Dict[str, Any]]:
    """The VM's snapshots as its tool lists them, each with the disk files it froze (from the .vmsd)."""
    tree = tree or read_vmsd(vmx)
    folder = os.path.dirname(os.path.abspath(vmx))
    by_uid = {snap.uid: snap for snap in tree.snapshots}
    listed = []
    for name, snapshot_id in tools.listed(vmx):
        known = by_uid.get(snapshot_id) if snapshot_id else None
        if known is None:
            named = tree.named(name)
            known = named[0] if len(named) == 1 else None
        unknown = {"name": name, "id": snapshot_id, "parent": None, "description": "", "disks": {}}
        entry = known.as_dict(folder) if known else unknown
        entry.update(name=name, id=snapshot_id or entry["id"])
        listed.append(entry)
    return listed


def _matching(listed: List[Dict[str, Any]], name: str, vmx: str) -> Optional[Dict[str, Any]]:
    found = [snap for snap in listed if snap["name"] == name]
    if len(found) > 1:
        raise SnapshotError(f'the VM has {len(found)} snapshots called "{name}"; name one that is unique', vmx)
    return found[0] if found else None


def _consistency(vmx: str, tools, mode: str) -> Tuple[bool, Optional[str]]:
    """Whether to quiesce, and the warning when ``auto`` falls back to a crash-consistent snapshot."""
    if mode == "false":
        return False, None
    running, why = tools.tools_running(vmx)
    if running:
        return True, None
    if mode == "true":
        raise SnapshotError(f"cannot take a quiesced snapshot: {why} (quiesce auto falls back to a "
                            "crash-consistent one, quiesce false never quiesces)", vmx)
    return False, (f"{vmx}: the snapshot is crash-consistent, not quiesced: {why}; the export holds the disks "
                   "as a power cut would have left them")


def read_record(record: str) -> Optional[Dict[str, Any]]:
    """What an earlier ``present`` noted it was about to create, or None."""
    data = read_json_record(record, "snapshot record", SnapshotError)
    if data is None:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("vmx"), str) or not isinstance(data.get("name"), str):
        raise SnapshotError("the snapshot record is not one vm_snapshot wrote (it needs vmx and name)", record)
    return data


def _result(vmx: str, tools, name: Optional[str], listed: List[Dict[str, Any]]) -> Dict[str, Any]:
    return {"vmx": vmx, "backend": tools.name, "name": name, "changed": False, "snapshots": listed,
            "snapshot": _matching(listed, name, vmx) if name else None, "warnings": []}


def take(vmx: str, name: str, tools, quiesce: str = "auto", record: Optional[str] = None,
         check_mode: bool = False) -> Dict[str, Any]:
    """``present``: the snapshot ``name`` exists (taken now when missing, without memory)."""
    vmx = os.path.abspath(vmx)
    vm = load_vm(vmx)
    result = _result(vmx, tools, name, describe(vmx, tools))
    if result["snapshot"] is not None:
        earlier = read_record(record) if record else None
        result["recorded"] = bool(earlier and earlier["vmx"] == vmx and earlier["name"] == name)
        quiesced = earlier.get("quiesced") if result["recorded"] and earlier else None
        result.update(quiesced=quiesced, consistency=None if quiesced is None
                      else QUIESCED if quiesced else CRASH_CONSISTENT)
        return result
    refused = independent_disks(vm)
    if refused:
        raise SnapshotError("; ".join(refused) + ", so a snapshot would not hold the VM as it is: export it "
                            "powered off", vmx)
    quiesced, warning = _consistency(vmx, tools, quiesce_mode(quiesce))
    result.update(changed=True, quiesced=quiesced, consistency=QUIESCED if quiesced else CRASH_CONSISTENT,
                  recorded=bool(record))
    if warning:
        result["warnings"].append(warning)
    if check_mode:
        return result
    if record:
        if read_record(record) is not None:
            raise SnapshotError("a snapshot record is there already (an earlier run's snapshot not removed yet); "
                                "remove that snapshot first (state absent with this record)", record)
        try:
            replace_small_file(record, json.dumps({"vmx": vmx, "name": name, "backend": tools.name,
                                                   "quiesced": quiesced, "time": int(time.time())}) + "\n", 0o600)
        except OSError as exc:
            raise SnapshotError(f"cannot write the snapshot record: {describe_os_error(exc)}", record) from None
    try:
        try:
            tools.create(vmx, name, quiesced)
        except PowerError as exc:
            if not (quiesced and quiesce_mode(quiesce) == "auto" and "ToolsUnavailable" in exc.message):
                raise
            # the tools stopped between the look and the snapshot: auto takes a crash-consistent one
            result.update(quiesced=False, consistency=CRASH_CONSISTENT)
            result["warnings"].append(f"{vmx}: the snapshot is crash-consistent, not quiesced: the guest's tools "
                                      "stopped answering")
            tools.create(vmx, name, False)
    except (PowerError, SnapshotError) as exc:
        if record:
            _unlink(record)
        raise SnapshotError(f'taking snapshot "{name}" failed: {exc.message}', vmx) from None
    listed = describe(vmx, tools)
    result.update(snapshots=listed, snapshot=_matching(listed, name, vmx))
    if result["snapshot"] is None:
        raise SnapshotError(f'{tools.name} took snapshot "{name}" but does not list it', vmx)
    return result


def remove(vmx: str, name: str, tools, check_mode: bool = False, wait: float = 300) -> Dict[str, Any]:
    """``absent``: no snapshot ``name``; removed through the tool (which merges its delta disks back), once no
    export reads from it."""
    vmx = os.path.abspath(vmx)
    result = _result(vmx, tools, name, describe(vmx, tools))
    found = result["snapshot"]
    if found is None:
        return result
    result["changed"] = True
    if check_mode:
        return result
    with SnapshotLock(vmx, name, exclusive=True, wait=wait):
        try:
            tools.remove(vmx, name, found["id"])
        except PowerError as exc:
            raise SnapshotError(f'removing snapshot "{name}" failed: {exc.message}', vmx) from None
        _unlink(lock_path(vmx, name))
    listed = describe(vmx, tools)
    result.update(snapshots=listed, snapshot=None)
    if _matching(listed, name, vmx) is not None:
        raise SnapshotError(f'{tools.name} still lists snapshot "{name}" after removing it', vmx)
    return result


def remove_recorded(record: str, tools, check_mode: bool = False, wait: float = 300) -> Dict[str, Any]:
    """Remove the snapshot a record names, then the record. One that cannot be removed now stays, with its
    record, for a later run: the result says ``left`` and a warning says why (the export's result stands)."""
    data = read_record(record)
    if data is None:
        return {"vmx": None, "backend": tools.name, "name": None, "changed": False, "snapshots": [],
                "snapshot": None, "left": False, "warnings": [], "msg": "no snapshot recorded: nothing to remove"}
    vmx, name = data["vmx"], data["name"]
    if not os.path.isfile(vmx):
        _unlink(record, check_mode)
        return {"vmx": vmx, "backend": tools.name, "name": name, "changed": True, "snapshots": [], "snapshot": None,
                "left": False, "warnings": [f"{vmx} is gone; its snapshot record was removed"]}
    try:
        result = remove(vmx, name, tools, check_mode, wait)
    except (SnapshotError, PowerError) as exc:
        return {"vmx": vmx, "backend": tools.name, "name": name, "changed": False, "snapshots": [],
                "snapshot": None, "left": True, "msg": str(exc),
                "warnings": [f'the temporary snapshot "{name}" of {vmx} is still there: {exc}; the next run '
                             "removes it (its record stays)"]}
    _unlink(record, check_mode)
    result.update(changed=True, left=False)
    return result


def _unlink(path: str, check_mode: bool = False) -> None:
    if check_mode:
        return
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise SnapshotError(f"cannot remove {path}: {describe_os_error(exc)}", path) from None


def query(vmx: str, name: Optional[str], tools) -> Dict[str, Any]:
    vmx = os.path.abspath(vmx)
    return _result(vmx, tools, name, describe(vmx, tools))
