# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""VM power state through ``vmrun`` (Workstation, Fusion, Player) or ``vim-cmd`` (ESXi).

Commands run as argument lists, never through a shell. States are reported as
``powered_on``, ``powered_off`` or ``suspended``.

- ``vmrun [-T ws|fusion|player] list`` prints ``Total running VMs: N`` then one
  .vmx path a line; a VM that is not listed is off, or suspended when its
  checkpoint (``.vmss``) file exists. ``start VMX nogui``, ``stop VMX soft|hard``,
  ``suspend VMX soft``.
- ``vim-cmd vmsvc/getallvms`` prints a header then ``Vmid Name [datastore] path.vmx
  GuestOS Version Annotation`` lines; ``vmsvc/power.getstate VMID`` prints
  ``Powered on``, ``Powered off`` or ``Suspended``; ``power.on``,
  ``power.shutdown`` (guest), ``power.off`` (hard), ``power.suspend``.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

from ..errors import OvatoolError, describe_os_error
from ..fileio import read_json_record, replace_small_file
from ..formats.vmx import read_vmx

ON, OFF, SUSPENDED = "powered_on", "powered_off", "suspended"
STATES = ("powered_off", "powered_on", "shutdown_guest", "suspended", "query")
VMRUN_LOCATIONS = (
    "/usr/bin/vmrun",
    "/usr/local/bin/vmrun",
    "/Applications/VMware Fusion.app/Contents/Library/vmrun",
    "/Applications/VMware Fusion.app/Contents/Public/vmrun",
)
VIM_CMD_LOCATIONS = ("/bin/vim-cmd", "/usr/bin/vim-cmd", "/sbin/vim-cmd")


class PowerError(OvatoolError):
    """A power operation failed or timed out."""


def _run(argv: List[str], timeout: float) -> str:
    try:
        done = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout, check=False,
                              universal_newlines=True)
    except FileNotFoundError:
        raise PowerError(f"{argv[0]} is not installed here") from None
    except subprocess.TimeoutExpired:
        raise PowerError(f"{' '.join(argv[:3])} did not answer within {timeout:.0f} s") from None
    if done.returncode != 0:
        text = (done.stdout + done.stderr).strip().splitlines()
        raise PowerError(f"{' '.join(argv[:3])} failed ({done.returncode}): {text[-1] if text else 'no output'}")
    return done.stdout


class Vmrun:
    """VMware Workstation / Fusion / Player."""

    name = "vmrun"

    def __init__(self, path: Optional[str] = None, product: Optional[str] = None, timeout: float = 120) -> None:
        self.path = path or shutil.which("vmrun") or next((p for p in VMRUN_LOCATIONS if os.path.exists(p)), "vmrun")
        self.product = product
        self.timeout = timeout

    def _cmd(self, *args: str) -> str:
        argv = [self.path] + (["-T", self.product] if self.product else []) + list(args)
        return _run(argv, self.timeout)

    def state(self, vmx: str) -> str:
        listed = self._cmd("list").splitlines()[1:]
        target = os.path.realpath(vmx)
        if any(os.path.realpath(line.strip()) == target for line in listed if line.strip()):
            return ON
        return SUSPENDED if _checkpoint_exists(vmx) else OFF

    def start(self, vmx: str) -> None:
        self._cmd("start", vmx, "nogui")

    def stop(self, vmx: str, hard: bool) -> None:
        self._cmd("stop", vmx, "hard" if hard else "soft")

    def suspend(self, vmx: str) -> None:
        self._cmd("suspend", vmx, "soft")


def _checkpoint_exists(vmx: str) -> bool:
    try:
        values = read_vmx(vmx)
    except OvatoolError:
        return False
    folder = os.path.dirname(os.path.abspath(vmx))
    name = values.get("checkpoint.vmstate") or os.path.splitext(os.path.basename(vmx))[0] + ".vmss"
    return bool(name) and os.path.exists(os.path.join(folder, name))


_VMID_LINE = re.compile(r"^(\d+)\s+.*?\s(\[[^\]]+\]\s+\S.*?\.vmx)\s", re.I)


def datastore_path(vmx: str, volumes: str = "/vmfs/volumes") -> str:
    """/vmfs/volumes/<datastore>/<dir>/<vm>.vmx -> "[<datastore>] <dir>/<vm>.vmx"."""
    relative = os.path.relpath(os.path.abspath(vmx), volumes)
    parts = relative.split(os.sep)
    if relative.startswith("..") or len(parts) < 2:
        raise PowerError(f"{vmx} is not under {volumes}, so ESXi does not know it by a datastore path")
    return f"[{parts[0]}] {'/'.join(parts[1:])}"


class VimCmd:
    """ESXi's host agent command line."""

    name = "vim-cmd"

    def __init__(self, path: Optional[str] = None, timeout: float = 120, volumes: str = "/vmfs/volumes") -> None:
        self.path = path or shutil.which("vim-cmd") or next(
            (p for p in VIM_CMD_LOCATIONS if os.path.exists(p)), "vim-cmd")
        self.timeout = timeout
        self.volumes = volumes

    def _cmd(self, *args: str) -> str:
        return _run([self.path] + list(args), self.timeout)

    def vmid(self, vmx: str) -> str:
        wanted = {datastore_path(vmx, self.volumes)}
        real = os.path.realpath(vmx)
        if real != os.path.abspath(vmx) and real.startswith(self.volumes + "/"):
            wanted.add(datastore_path(real, self.volumes))
        for line in self._cmd("vmsvc/getallvms").splitlines()[1:]:
            match = _VMID_LINE.match(line.strip())
            if match and match.group(2) in wanted:
                return match.group(1)
        raise PowerError(f"{vmx} is not registered on this ESXi host (vim-cmd vmsvc/getallvms)")

    def state(self, vmx: str) -> str:
        text = self._cmd("vmsvc/power.getstate", self.vmid(vmx)).lower()
        if "powered on" in text:
            return ON
        if "suspended" in text:
            return SUSPENDED
        if "powered off" in text:
            return OFF
        raise PowerError(f"unexpected answer from vim-cmd power.getstate: {text.strip()[:80]}")

    def start(self, vmx: str) -> None:
        self._cmd("vmsvc/power.on", self.vmid(vmx))

    def stop(self, vmx: str, hard: bool) -> None:
        self._cmd("vmsvc/power.off" if hard else "vmsvc/power.shutdown", self.vmid(vmx))

    def suspend(self, vmx: str) -> None:
        self._cmd("vmsvc/power.suspend", self.vmid(vmx))


def backend(name: str = "auto", vmrun_path: Optional[str] = None, vmrun_type: Optional[str] = None,
            vim_cmd_path: Optional[str] = None):
    """The backend to use; ``auto`` picks vim-cmd on ESXi (or where it is found), else vmrun."""
    on_esxi = bool(vim_cmd_path or shutil.which("vim-cmd") or any(os.path.exists(p) for p in VIM_CMD_LOCATIONS))
    if name == "vim-cmd" or (name == "auto" and on_esxi):
        return VimCmd(vim_cmd_path)
    if name in ("auto", "vmrun"):
        return Vmrun(vmrun_path, vmrun_type)
    raise PowerError(f'unknown backend "{name}": use auto, vmrun or vim-cmd')


def set_power(vmx: str, state: str, engine, timeout: float = 300, force: bool = False, check_mode: bool = False,
              pace: Tuple[float, Callable[[float], None]] = (2.0, time.sleep)) -> Dict[str, object]:
    """Bring the VM to ``state``; returns state_before, state and changed. ``pace``: seconds between two looks
    at a VM shutting down, and how to wait them."""
    poll, sleep = pace
    if state not in STATES:
        raise PowerError(f'unknown state "{state}": use {", ".join(STATES)}')
    if not os.path.isfile(vmx):
        raise PowerError("no such .vmx", vmx)
    before = engine.state(vmx)
    result: Dict[str, object] = {"vmx": vmx, "backend": engine.name, "state_before": before, "state": before,
                                 "changed": False}
    wanted = {"query": before, "powered_on": ON, "suspended": SUSPENDED}.get(state, OFF)
    if before == wanted:
        return result
    if before == SUSPENDED and wanted == OFF and not force:
        raise PowerError("the VM is suspended; powering it off discards its suspended state: set force to do it",
                         vmx)
    result.update(changed=True, state=wanted)
    if check_mode:
        return result
    if wanted == ON:
        engine.start(vmx)
    elif wanted == SUSPENDED:
        if before != ON:
            raise PowerError("only a running VM can be suspended", vmx)
        engine.suspend(vmx)
    elif before == SUSPENDED:
        engine.stop(vmx, hard=True)
    else:
        try:
            engine.stop(vmx, hard=False)
        except PowerError as exc:  # e.g. no VMware Tools in the guest to shut it down
            if not force:
                raise PowerError(f"soft shutdown failed ({exc.message}); set force to fall back to a hard "
                                 "power-off", vmx) from None
            engine.stop(vmx, hard=True)
            result["hard_power_off"] = True
        deadline = time.monotonic() + timeout
        while engine.state(vmx) == ON:
            if time.monotonic() >= deadline:
                if state == "powered_off" and force:
                    engine.stop(vmx, hard=True)
                    result["hard_power_off"] = True
                    break
                raise PowerError(f"the guest did not shut down within {timeout:.0f} s "
                                 "(set force to fall back to a hard power-off)", vmx)
            sleep(poll)
    result["state"] = engine.state(vmx)
    if result["state"] != wanted:
        raise PowerError(f"the VM is {result['state']}, not {wanted}, after the operation", vmx)
    return result


def read_record(record: str) -> Optional[Dict[str, Any]]:
    """The power state a run recorded before it stopped the VM, or None."""
    data = read_json_record(record, "power record", PowerError)
    if data is None:
        return None
    if not isinstance(data, dict) or data.get("state") != ON or not isinstance(data.get("vmx"), str):
        raise PowerError("the power record is not one vm_power wrote (it needs vmx and state)", record)
    return data


def stop_and_record(vmx: str, state: str, engine, record: str, timeout: float = 300, force: bool = False,
                    check_mode: bool = False) -> Dict[str, object]:
    """``set_power`` that first writes down that the VM was running, in ``record``, for ``restore_recorded``.

    The record outlives the run: when a run is cut short (its SSH connection dropped, the controller was
    stopped) after it powered the VM off, the next run still knows the VM has to go back on, although it
    finds it off. ``recorded_state`` reports what the record says.
    """
    vmx = os.path.abspath(vmx)
    earlier = read_record(record)
    before = engine.state(vmx) if os.path.isfile(vmx) else None
    if before == ON and earlier is None and not check_mode:
        try:
            replace_small_file(record, json.dumps({"vmx": vmx, "state": ON, "time": int(time.time())}) + "\n", 0o600)
        except OSError as exc:
            raise PowerError(f"cannot record the power state before stopping the VM: {describe_os_error(exc)}",
                             record) from None
        earlier = {"vmx": vmx, "state": ON}
    result = set_power(vmx, state, engine, timeout, force, check_mode)
    result["recorded_state"] = earlier["state"] if earlier else (ON if before == ON else None)
    return result


def restore_recorded(record: str, engine, vmx: Optional[str] = None, check_mode: bool = False) -> Dict[str, object]:
    """Put a VM back into the state ``record`` holds, then remove the record; no record: nothing to do."""
    data = read_record(record)
    if data is None:
        return {"vmx": vmx, "backend": engine.name, "changed": False, "recorded_state": None,
                "msg": "no power state recorded: nothing to restore"}
    target = data["vmx"]
    if vmx and os.path.abspath(vmx) != target:
        raise PowerError(f"the power record is for {target}, not {vmx}", record)
    result = set_power(target, data["state"], engine, check_mode=check_mode)
    result["recorded_state"] = data["state"]
    if not check_mode:
        try:
            os.unlink(record)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise PowerError(f"the VM is back {data['state']} but its power record could not be removed: "
                             f"{describe_os_error(exc)}", record) from None
    result["changed"] = True  # the record goes, even when the VM was already back on
    return result
