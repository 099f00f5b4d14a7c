#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: ova_edit
short_description: Stamp product, properties, EULA, deployment options and more onto an existing OVA
version_added: 1.0.0
description:
  - Applies an appliance spec (the same dict as the O(ovatool.vmware.ova_export#module:appliance) option of
    M(ovatool.vmware.ova_export)) to an OVA written by ovatool or by another tool, and writes a new OVA.
  - The OVF descriptor is rewritten; the sections the spec names replace the existing ones of those kinds, the
    others stay as they were. The manifest is written again with the digest algorithm it had; every other member
    (the disks) is copied byte for byte, never recompressed.
  - With O(private_key) and O(certificate) the new manifest is signed; without them a certificate of the old
    manifest is left out, with a warning.
  - Idempotent, applying the same spec again reports no change. The result replaces O(dest) atomically.
author: ovatool developers (@ovatool)
requirements:
  - Python 3.8 or newer on the host (the standard library only)
  - to sign (O(private_key)), the C(cryptography) package or the C(openssl) command on the host
options:
  path:
    description: The OVA to edit.
    type: path
    required: true
  dest:
    description: Where the edited OVA goes. Default O(path) itself, replaced atomically.
    type: path
  appliance:
    description:
      - The appliance spec; see the O(ovatool.vmware.ova_export#module:appliance) option of M(ovatool.vmware.ova_export).
      - It is checked completely before the OVA is read; a problem fails the task naming its key path.
    type: dict
    required: true
extends_documentation_fragment:
  - ovatool.vmware.signing
attributes:
  check_mode:
    support: full
    description: Reports whether the OVA would change, and the diff, without writing.
  diff_mode:
    support: full
    description: The OVF descriptor before and after.
"""

EXAMPLES = r"""
- name: Stamp the release version onto an image exported once
  ovatool.vmware.ova_edit:
    path: /exports/appliance.ova
    dest: /release/appliance-1.4.2.ova
    appliance:
      product:
        product: Example Appliance
        vendor: Example Inc.
        version: 1.4.2
        properties:
          hostname: {type: string, value: appliance, user_configurable: true, label: Host name}
      eula: "{{ lookup('ansible.builtin.file', 'EULA.txt') }}"
"""

RETURN = r"""
src:
  description: The OVA read.
  returned: always
  type: str
dest:
  description: The OVA written (or that would be written).
  returned: always
  type: str
ovf:
  description: The descriptor's member name.
  returned: always
  type: str
manifest:
  description: The manifest's digest algorithm (the one the OVA had).
  returned: always
  type: str
members:
  description: The members of the OVA read, in order.
  returned: always
  type: list
  elements: str
size:
  description: Bytes of the OVA written.
  returned: when changed and not in check mode
  type: int
signed:
  description: Whether the new manifest was signed.
  returned: when changed and not in check mode
  type: bool
msg:
  description: What was done or would be done.
  returned: when nothing changed, and in check mode
  type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.ovatool.vmware.plugins.module_utils.common import SIGNING_TOGETHER, run_engine, signing_spec
from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.edit import EditOptions, edit_ova


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            dest=dict(type="path"),
            appliance=dict(type="dict", required=True),
            **signing_spec(),
        ),
        required_together=SIGNING_TOGETHER,
        supports_check_mode=True,
    )
    params = module.params

    def action():
        result = edit_ova(EditOptions(
            src=params["path"], dest=params["dest"], appliance=params["appliance"], private_key=params["private_key"],
            private_key_passphrase=params["private_key_passphrase"], certificate=params["certificate"],
            check_mode=module.check_mode))
        diff = result.pop("diff")
        if module._diff:  # pylint: disable=protected-access
            result["diff"] = diff
        return result

    run_engine(module, action)


if __name__ == "__main__":
    main()
