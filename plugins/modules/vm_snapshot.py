#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: vm_snapshot
short_description: Take, list and remove a VMware VM's snapshots with vmrun (Workstation, Fusion) or vim-cmd (ESXi)
version_added: 1.1.0
description:
  - Runs on the hypervisor host. Lists a VM's snapshots with C(vmrun listSnapshots) or
    C(vim-cmd vmsvc/snapshot.get), and the disk files each one froze from the VM's C(.vmsd).
  - V(present) takes a snapshot called O(name) when the VM has none of that name (idempotent), without the
    guest's memory. Taking one never changes the VM's power state, so a running VM goes on running; its disks
    stop changing (the guest writes into new delta disks), which is what O(ovatool.vmware.ova_export#module:snapshot)
    reads.
  - V(absent) removes it through the host's tool (C(vmrun deleteSnapshot), C(vim-cmd vmsvc/snapshot.remove)),
    which merges what the guest wrote since back into the disks. Never by editing files. It waits up to
    O(timeout) seconds for exports still reading the snapshot's files.
  - With O(record), V(present) first notes on the host that this task creates the snapshot, and V(absent) with
    that O(record) (and no O(name)) removes only the snapshot the record names, then the record. A run cut short
    leaves the record, so the next run still removes its snapshot; snapshots without a record are never touched
    that way. A recorded snapshot that cannot be removed now stays with its record, the task warns and reports
    RV(left), and a later run tries again.
  - A VM with an independent disk (C(independent-persistent), C(independent-nonpersistent)) is refused by
    V(present) - snapshots do not capture those disks.
  - Commands run as argument lists, never through a shell.
author: ovatool developers (@ovatool)
requirements:
  - Python 3.8 or newer on the host (the standard library only)
  - C(vmrun) (VMware Workstation, Fusion) or C(vim-cmd) (ESXi) on the host
options:
  vmx:
    description:
      - Path of the VM's C(.vmx) (on ESXi under C(/vmfs/volumes)).
      - Required, except with O(state=absent) and O(record), which takes it from the record.
    type: path
  name:
    description:
      - The snapshot's name (its C(displayName)). Required with V(present); with V(absent), unless O(record) is
        given; with V(query), the snapshot to report as RV(snapshot).
    type: str
  state:
    description: V(query) only reports.
    type: str
    choices: [present, absent, query]
    default: query
  quiesce:
    description:
      - V(auto) quiesces the guest's file systems when VMware Tools run in it (ESXi), and otherwise takes a
        crash-consistent snapshot with a warning saying so. C(vmrun) cannot quiesce, so on Workstation and Fusion
        V(auto) is always crash-consistent.
      - V(true) fails when the snapshot cannot be quiesced, saying why, and leaves nothing. V(false) never
        quiesces.
      - YAML booleans are taken too.
    type: raw
    default: auto
  record:
    description:
      - A file on the host (mode 0600) noting the snapshot this task creates, written before it is taken.
      - Give each VM its own file, outside the VM's folder.
    type: path
  timeout:
    description: Seconds V(absent) waits for exports still reading the snapshot before it gives up.
    type: int
    default: 300
extends_documentation_fragment:
  - ovatool.vmware.backend
attributes:
  check_mode:
    support: full
    description: Reports what would change, and changes nothing.
  diff_mode:
    support: none
    description: No diff.
"""

EXAMPLES = r"""
- name: Take a snapshot of a running VM (quiesced when VMware Tools run)
  ovatool.vmware.vm_snapshot:
    vmx: /vmfs/volumes/datastore1/web01/web01.vmx
    name: before-export
    state: present
    record: /var/tmp/ovatool/.snapshot-web01.json
  register: snap

- name: Export the disks as the snapshot froze them, while the VM runs
  ovatool.vmware.ova_export:
    src: /vmfs/volumes/datastore1/web01/web01.vmx
    dest: /vmfs/volumes/datastore1/exports/
    snapshot: before-export

- name: Remove the snapshot (its delta disks merge back), also after a run that was cut short
  ovatool.vmware.vm_snapshot:
    record: /var/tmp/ovatool/.snapshot-web01.json
    state: absent

- name: List a VM's snapshots and the disk files each froze
  ovatool.vmware.vm_snapshot:
    vmx: /vms/app/app.vmx
  register: snapshots
"""

RETURN = r"""
vmx:
  description: The C(.vmx) the task acted on (with O(record), the one it names; null when there was no record).
  returned: always
  type: str
name:
  description: The snapshot's name.
  returned: always
  type: str
backend:
  description: C(vmrun) or C(vim-cmd).
  returned: always
  type: str
snapshots:
  description: The VM's snapshots after the task (in check mode, as they are), in the tool's order.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Its name.
      type: str
    id:
      description: Its id (ESXi's C(Snapshot Id), else the C(.vmsd)'s uid).
      type: str
    parent:
      description: The id of the snapshot it was taken on; null for the first.
      type: str
    description:
      description: Its description.
      type: str
    disks:
      description: The disk file each disk node held when the snapshot was taken (what it froze), by node.
      type: dict
      sample: {"scsi0:0": "/vms/app/app.vmdk"}
snapshot:
  description: The snapshot called O(name), as in RV(snapshots); null when there is none.
  returned: always
  type: dict
quiesced:
  description:
    - Whether the snapshot was quiesced; null for a snapshot this task did not take and no record describes.
  returned: with O(state=present)
  type: bool
consistency:
  description: C(quiesced) or C(crash-consistent) (null when unknown, as RV(quiesced)).
  returned: with O(state=present)
  type: str
recorded:
  description: With O(state=present), whether O(record) names this snapshot.
  returned: with O(state=present)
  type: bool
left:
  description:
    - With O(state=absent) and O(record), true when the recorded snapshot could not be removed now; it stays,
      with its record, for a later run, and a warning says why.
  returned: with O(state=absent) and O(record)
  type: bool
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.ovatool.vmware.plugins.module_utils.common import backend_of, backend_spec, run_engine
from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.host import snapshot
from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.host.snapshot import STATES


def main():
    module = AnsibleModule(
        argument_spec=dict(
            vmx=dict(type="path"),
            name=dict(type="str"),
            state=dict(type="str", default="query", choices=list(STATES)),
            quiesce=dict(type="raw", default="auto"),
            record=dict(type="path"),
            timeout=dict(type="int", default=300),
            **backend_spec(),
        ),
        required_if=[("state", "present", ["vmx", "name"]), ("state", "query", ["vmx"])],
        supports_check_mode=True,
    )
    params = module.params
    if params["state"] == "absent" and not params["record"] and not (params["vmx"] and params["name"]):
        module.fail_json(msg="state absent needs vmx and name, or record")

    def action():
        tools = snapshot.snapshots_of(backend_of(params))
        quiesce = snapshot.quiesce_mode(params["quiesce"])
        if params["state"] == "present":
            return snapshot.take(params["vmx"], params["name"], tools, quiesce, params["record"], module.check_mode)
        if params["state"] == "absent" and params["record"] and not params["name"]:
            return snapshot.remove_recorded(params["record"], tools, module.check_mode, params["timeout"])
        if params["state"] == "absent":
            return snapshot.remove(params["vmx"], params["name"], tools, module.check_mode, params["timeout"])
        return snapshot.query(params["vmx"], params["name"], tools)

    run_engine(module, action)


if __name__ == "__main__":
    main()
