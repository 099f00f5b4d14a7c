# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What ``vmx_info`` and ``ovatool info`` report about a VM."""
from __future__ import annotations

import os
from typing import Any, Dict

from .formats.disk import open_disk
from .errors import OvatoolError
from .formats.guestos import map_guest_os
from .export.pipeline import allocated_bytes
from .formats.vmx import DiskRef, VirtualMachine, load_vm


def disk_info(ref: DiskRef, allocation: bool = False) -> Dict[str, Any]:
    item: Dict[str, Any] = {"path": ref.path, "file_name": ref.file_name, "controller": ref.controller,
                            "unit": ref.unit, "missing": not os.path.exists(ref.path)}
    if item["missing"]:
        return item
    try:
        with open_disk(ref.path) as disk:
            item.update(create_type=disk.create_type, capacity_bytes=disk.capacity,
                        files=list(disk.files))
            if allocation:
                item["allocated_bytes"] = allocated_bytes(disk)
    except OvatoolError as exc:
        item["error"] = str(exc)
    return item


def vm_info(vm: VirtualMachine, allocation: bool = False) -> Dict[str, Any]:
    vim_id, cim_id = map_guest_os(vm.guest_os)
    return {
        "vmx": os.path.abspath(vm.vmx_path),
        "name": vm.name,
        "guest_os": vm.guest_os,
        "guest_id": vim_id,
        "cim_os_type": cim_id,
        "cpus": vm.cpus,
        "cores_per_socket": vm.cores_per_socket,
        "memory_mb": vm.memory_mb,
        "firmware": vm.firmware,
        "secure_boot": vm.secure_boot,
        "hardware_version": vm.hardware_version,
        "encrypted": vm.encrypted,
        "vtpm": vm.vtpm,
        "nvram": vm.nvram,
        "warnings": list(vm.warnings),
        "controllers": [{"name": c.name, "type": c.virtual_dev} for c in vm.controllers],
        "disks": [disk_info(ref, allocation) for ref in vm.disks],
        "cdroms": [{"controller": c.controller, "unit": c.unit, "type": c.device_type, "file_name": c.file_name}
                   for c in vm.cdroms],
        "nics": [{"index": n.index, "type": n.virtual_dev, "network": n.network,
                  "connection_type": n.connection_type, "address_type": n.address_type} for n in vm.nics],
    }


def read_vm_info(path: str, allocation: bool = False) -> Dict[str, Any]:
    return vm_info(load_vm(os.path.abspath(os.path.expanduser(path))), allocation)
