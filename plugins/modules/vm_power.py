#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: vm_power
short_description: Query and set a VMware VM's power state with vmrun (Workstation, Fusion) or vim-cmd (ESXi)
version_added: 0.1.0
description:
  - Runs on the hypervisor host. Reads the state with C(vmrun list) or C(vim-cmd vmsvc/power.getstate) and changes
    it only when needed (idempotent). Commands run as argument lists, never through a shell.
  - V(powered_off) shuts the guest down softly and waits up to O(timeout) seconds; with O(force) it falls back to a
    hard power-off when the soft shutdown fails or does not finish in time.
  - With O(record), stopping a running VM first writes down that it was running, and V(restored) later powers it
    back on and removes the record. The record outlives an interrupted run (a dropped SSH connection, a stopped
    controller), so the next run still puts the VM back on although it finds it off.
author: ovatool developers (@ovatool)
requirements:
  - Python 3.8 or newer on the host (the standard library only)
  - C(vmrun) (VMware Workstation, Fusion, Player) or C(vim-cmd) (ESXi) on the host
options:
  vmx:
    description:
      - Path of the VM's C(.vmx) (on ESXi under C(/vmfs/volumes)).
      - Required, except with O(state=restored), which takes it from O(record).
    type: path
  state:
    description:
      - V(query) only reports. V(shutdown_guest) is a soft shutdown without the hard fallback.
      - V(powered_off) of a suspended VM discards its suspended state, so it needs O(force).
      - V(restored) powers the VM back on when O(record) says it was running, then removes the record; with no
        record it does nothing.
    type: str
    choices: [powered_off, powered_on, shutdown_guest, suspended, query, restored]
    default: query
  record:
    description:
      - A file on the host where V(powered_off), V(shutdown_guest) and V(suspended) note that the VM was running
        before they stopped it (written only then, mode 0600), for V(restored). Required with V(restored).
      - Give each VM its own file, outside the VM's folder (the exporter never writes there).
    type: path
  timeout:
    description: Seconds to wait for a soft shutdown.
    type: int
    default: 300
  force:
    description: Fall back to a hard power-off when a soft shutdown fails or times out; power off a suspended VM.
    type: bool
    default: false
extends_documentation_fragment:
  - ovatool.vmware.backend
attributes:
  check_mode:
    support: full
    description: Reports what would change.
  diff_mode:
    support: none
    description: No diff.
"""

EXAMPLES = r"""
- name: Shut a Workstation VM down, hard after 2 minutes if the guest does not
  ovatool.vmware.vm_power:
    vmx: /vms/web01/web01.vmx
    state: powered_off
    timeout: 120
    force: true
  register: power

- name: Power it back on if it was on
  ovatool.vmware.vm_power:
    vmx: /vms/web01/web01.vmx
    state: powered_on
  when: power.state_before == 'powered_on'

- name: Stop a VM for a long job, noting on the host that it was running
  ovatool.vmware.vm_power:
    vmx: /vms/web01/web01.vmx
    state: powered_off
    record: /var/tmp/ovatool/.power-web01.json

- name: Put it back as it was (also in a later run, if this one is cut short)
  ovatool.vmware.vm_power:
    record: /var/tmp/ovatool/.power-web01.json
    state: restored
"""

RETURN = r"""
vmx:
  description:
    - The C(.vmx) the task acted on. With V(restored), the one the power record names (null when there was no
      record and O(vmx) was not given).
  returned: always
  type: str
state_before:
  description: The state found (C(powered_on), C(powered_off) or C(suspended)).
  returned: always
  type: str
state:
  description: The state after the task (in check mode, the state it would have).
  returned: always
  type: str
backend:
  description: C(vmrun) or C(vim-cmd).
  returned: always
  type: str
recorded_state:
  description:
    - With O(record), the state the record holds (C(powered_on)), or null when the VM was not running before;
      V(restored) removes the record after using it.
  returned: when O(record) is set
  type: str
hard_power_off:
  description: True when the soft shutdown had to be replaced by a hard power-off.
  returned: when it happened
  type: bool
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.ovatool.vmware.plugins.module_utils.common import backend_of, backend_spec, run_engine
from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.host.power import (
    restore_recorded, set_power, stop_and_record)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            vmx=dict(type="path"),
            state=dict(type="str", default="query",
                       choices=["powered_off", "powered_on", "shutdown_guest", "suspended", "query", "restored"]),
            record=dict(type="path"),
            **backend_spec(),
            timeout=dict(type="int", default=300),
            force=dict(type="bool", default=False),
        ),
        required_if=[("state", "restored", ["record"])],
        supports_check_mode=True,
    )
    params = module.params
    if params["state"] != "restored" and not params["vmx"]:
        module.fail_json(msg="vmx is required unless state is restored")

    def action():
        engine = backend_of(params)
        if params["state"] == "restored":
            return restore_recorded(params["record"], engine, params["vmx"], module.check_mode)
        if params["record"] and params["state"] in ("powered_off", "shutdown_guest", "suspended"):
            return stop_and_record(params["vmx"], params["state"], engine, params["record"], params["timeout"],
                                   params["force"], module.check_mode)
        return set_power(params["vmx"], params["state"], engine, params["timeout"], params["force"],
                         module.check_mode)

    run_engine(module, action)


if __name__ == "__main__":
    main()
