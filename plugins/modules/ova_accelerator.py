#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: ova_accelerator
short_description: Bring ISA-L and zlib-ng from the controller to a host's Python, with no pip on the host
version_added: 1.1.0
description:
  - Gives the exports on a host the fast deflate of ISA-L (C(isal)) and zlib-ng (C(zlib-ng)) without pip, venv,
    network or compiler on the host, as on ESXi or an air-gapped Linux host. The controller does the work.
  - The controller asks the host's Python for the facts that decide which wheels it loads (implementation,
    version, platform, machine, libc and its version), picks fitting wheels from O(wheelhouse), then from its
    cache O(cache_dir) (filled by C(pip download) from the index the controller's pip is set up for, when
    O(download) and an index is reachable), and copies only the wheels the host does not have yet.
  - On the host each wheel is unpacked (a wheel is a zip) into C(<state_dir>/.accel/<sha256 of the wheel>/)
    through a temporary folder renamed into place, so runs that start at once do not harm each other; then each
    codec is imported and tried from there in a separate process. Folders whose codec does not load are removed.
  - Pass the returned RV(paths) to M(ovatool.vmware.ova_export)'s O(ovatool.vmware.ova_export#module:accelerator_paths);
    the export role does this (C(export_accelerator)).
  - Without O(required), anything that goes wrong (no fitting wheel, a damaged wheel, no index, a host that refuses
    foreign shared objects, as ESXi 8 does) ends in one warning and no accelerator; the exports then use the
    standard library's zlib.
author: ovatool developers (@ovatool)
requirements:
  - Python 3.8 or newer on the host (the standard library only)
  - on the controller, wheels in O(wheelhouse) or O(cache_dir), or pip and a reachable package index
options:
  state_dir:
    description: Folder on the host under which the wheels are unpacked (in C(.accel/)).
    type: path
    required: true
  wheelhouse:
    description:
      - Folder of wheels on the controller, looked at first (an air-gapped controller, an execution environment).
      - Default, the environment variable E(OVATOOL_WHEELHOUSE) of the controller when set.
    type: path
  cache_dir:
    description:
      - Folder on the controller for the wheels that C(pip download) fetches.
      - Default, C(ovatool/wheels) in E(XDG_CACHE_HOME) or C(~/.cache).
    type: path
  download:
    description: Let the controller's pip download the wheels that neither folder holds.
    type: bool
    default: true
  required:
    description: Fail the task when no accelerator can be used on the host (instead of a warning).
    type: bool
    default: false
  wheels:
    description:
      - Used between the action plugin and the host; do not set it.
      - The wheels to unpack and check on the host, each with C(codec), C(sha256) and, when copied, C(file).
    type: list
    elements: dict
attributes:
  action:
    support: full
    description: The controller picks and copies the wheels.
  check_mode:
    support: full
    description: Reports what would be copied; copies and unpacks nothing.
  diff_mode:
    support: none
    description: No diff.
"""

EXAMPLES = r"""
- name: Bring ISA-L to an ESXi or air-gapped host from a folder of wheels on the controller
  ovatool.vmware.ova_accelerator:
    state_dir: /var/tmp/ovatool
    wheelhouse: /srv/wheelhouse
  register: accel

- name: Export with it
  ovatool.vmware.ova_export:
    src: /vms/web01/web01.vmx
    dest: /exports/
    accelerator_paths: "{{ accel.paths }}"
"""

RETURN = r"""
codecs:
  description: The accelerated codecs that load on the host from RV(paths) (V(isal), V(zlib-ng)).
  returned: always
  type: list
  elements: str
paths:
  description: Folders to put on the exporter's import path (O(ovatool.vmware.ova_export#module:accelerator_paths)).
  returned: always
  type: list
  elements: str
wheels:
  description: File names of the wheels chosen for the host.
  returned: when the host's Python could be asked
  type: list
  elements: str
copied:
  description: The wheels copied to the host by this run (none when it had them all).
  returned: when wheels were chosen
  type: list
  elements: str
interpreter:
  description: The host Python's facts that decide which wheels fit.
  returned: when the host's Python could be asked
  type: dict
installed:
  description: SHA256s of the wheels already unpacked on the host (the first call of the action plugin).
  returned: when O(wheels) is not given
  type: list
  elements: str
problems:
  description: Per codec, why it cannot be used on the host (the host's half).
  returned: when O(wheels) is given
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.ovatool.vmware.plugins.module_utils.specs import ACCELERATOR
from ansible_collections.ovatool.vmware.plugins.module_utils.common import run_engine
from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.host import accel


def main():
    module = AnsibleModule(argument_spec=ACCELERATOR, supports_check_mode=True)
    params = module.params

    def action():
        if params["wheels"] is None or module.check_mode:
            return {"changed": False, "interpreter": accel.interpreter(), "installed": accel.installed(params["state_dir"])}
        return accel.bring(params["state_dir"], params["wheels"], params["required"])

    run_engine(module, action)


if __name__ == "__main__":
    main()
