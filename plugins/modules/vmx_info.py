#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: vmx_info
short_description: Read a VMware VM's configuration (.vmx) and its disks
version_added: 0.1.0
description:
  - Parses a C(.vmx) file on the host the module runs on (VMware Workstation, Fusion or ESXi)
    and reports the VM's hardware and disks, as the M(ovatool.vmware.ova_export) module sees them.
  - Honours the file's C(.encoding), case-insensitive keys and C(|XX) escapes.
  - Disk files that are not there are reported with RV(vm.disks[].missing=true) instead of failing.
author: ovatool developers (@ovatool)
requirements:
  - Python 3.8 or newer on the host (the standard library only)
options:
  path:
    description: Path of the C(.vmx) file.
    type: path
    required: true
  allocation:
    description:
      - Also walk each disk's metadata and report RV(vm.disks[].allocated_bytes), the bytes an export reads.
      - Reads only grain tables and file holes, never the data.
    type: bool
    default: false
extends_documentation_fragment:
  - ovatool.vmware.attributes.read_only
"""

EXAMPLES = r"""
- name: Describe a Workstation VM
  ovatool.vmware.vmx_info:
    path: /vms/appliance/appliance.vmx
  register: info

- name: Show its disks
  ansible.builtin.debug:
    msg: "{{ info.vm.disks | map(attribute='capacity_bytes') | list }}"
"""

RETURN = r"""
vm:
  description: The VM as read from the C(.vmx).
  returned: success
  type: dict
  contains:
    vmx:
      description: Absolute path of the C(.vmx).
      type: str
      returned: success
    name:
      description: The display name (decoded by the file's C(.encoding)).
      type: str
      returned: success
      sample: Ubuntu 64-bit
    guest_os:
      description: The VMX C(guestOS) value.
      type: str
      returned: success
      sample: ubuntu-64
    guest_id:
      description: The matching vSphere guest id, as written in the OVF.
      type: str
      returned: success
      sample: ubuntu64Guest
    cim_os_type:
      description: The CIM operating system type number written in the OVF.
      type: int
      returned: success
    cpus:
      description: Number of virtual CPUs.
      type: int
      returned: success
    cores_per_socket:
      description: Cores per socket.
      type: int
      returned: success
    memory_mb:
      description: Memory in MiB.
      type: int
      returned: success
    firmware:
      description: C(bios) or C(efi).
      type: str
      returned: success
    secure_boot:
      description: Whether UEFI secure boot is enabled.
      type: bool
      returned: success
    hardware_version:
      description: The virtual hardware version (C(virtualHW.version)).
      type: int
      returned: success
    encrypted:
      description: Whether the VM is encrypted (such a VM cannot be exported).
      type: bool
      returned: success
    vtpm:
      description: Whether the VM has a virtual TPM.
      type: bool
      returned: success
    nvram:
      description: The NVRAM file name, if any.
      type: str
      returned: success
    controllers:
      description: Storage controllers present (C(name) such as C(scsi0), C(type) such as C(lsilogic)).
      type: list
      elements: dict
      returned: success
    disks:
      description: Virtual disks.
      type: list
      elements: dict
      returned: success
      contains:
        path:
          description: Resolved path of the C(.vmdk).
          type: str
        file_name:
          description: The file name as written in the C(.vmx).
          type: str
        controller:
          description: Controller name, for example C(scsi0), C(sata0), C(nvme0), C(ide0).
          type: str
        unit:
          description: Unit number on the controller.
          type: int
        missing:
          description: True when the disk file does not exist.
          type: bool
        create_type:
          description: The VMDK C(createType), when the disk could be opened.
          type: str
        capacity_bytes:
          description: Disk capacity in bytes, when the disk could be opened.
          type: int
        allocated_bytes:
          description: Bytes an export reads (allocated grains), with O(allocation=true).
          type: int
        files:
          description: The files making up the disk (descriptor and extents).
          type: list
          elements: str
        error:
          description: Why the disk could not be opened, when it could not.
          type: str
    cdroms:
      description: CD/DVD drives (C(controller), C(unit), C(type), C(file_name)).
      type: list
      elements: dict
      returned: success
    nics:
      description: Network adapters (C(index), C(type) such as C(vmxnet3), C(network), C(connection_type)).
      type: list
      elements: dict
      returned: success
    warnings:
      description:
        - What was odd about the C(.vmx) but did not stop reading it (for example bytes that are not valid in its
          encoding, replaced). The same sentences are also shown as task warnings.
      type: list
      elements: str
      returned: success
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.ovatool.vmware.plugins.module_utils.common import run_engine
from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.info import read_vm_info


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            allocation=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    run_engine(module, lambda: {"changed": False,
                                "vm": read_vm_info(module.params["path"], module.params["allocation"])})


if __name__ == "__main__":
    main()
