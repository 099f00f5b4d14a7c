#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: ova_info
short_description: Report what an OVA says about its appliance - product, properties, deployment options, networks
version_added: 1.0.0
description:
  - Reads only the OVF descriptor (the first member of an OVA, or an C(.ovf) file), so it is quick on any size of
    appliance. For the integrity of the whole package use M(ovatool.vmware.ova_verify).
  - Returns the product sections with their vApp properties, the annotation, the EULAs, the deployment options,
    the networks, the OVF environment transports and the C(vmw:ExtraConfig) entries, for a pipeline to assert.
author: ovatool developers (@ovatool)
requirements:
  - Python 3.8 or newer on the host (the standard library only)
options:
  path:
    description: An C(.ova), or an C(.ovf).
    type: path
    required: true
extends_documentation_fragment:
  - ovatool.vmware.attributes.read_only
"""

EXAMPLES = r"""
- name: Read what an appliance announces
  ovatool.vmware.ova_info:
    path: /release/appliance-1.4.2.ova
  register: release

- name: Check the stamped version
  ansible.builtin.assert:
    that: release.appliance.product_sections[0].version == "1.4.2"
"""

RETURN = r"""
appliance:
  description: What the descriptor says.
  returned: always
  type: dict
  contains:
    path:
      description: The file read.
      type: str
      returned: always
    ovf:
      description: The descriptor's name.
      type: str
      returned: always
    name:
      description: The virtual system's name.
      type: str
      returned: always
    product_sections:
      description:
        - One entry per ProductSection - C(product), C(vendor), C(version), C(full_version), C(product_url),
          C(vendor_url), C(app_url) where present, C(info), C(class), C(instance), and C(properties) (each with
          C(key), C(type), C(value), C(user_configurable), C(password), C(label), C(description), C(category),
          C(qualifiers), C(values) per configuration).
      type: list
      elements: dict
      returned: always
    annotation:
      description: The annotation text, or null.
      type: str
      returned: always
    eulas:
      description: The licence texts.
      type: list
      elements: str
      returned: always
    configurations:
      description: Deployment options (C(id), C(label), C(description), C(default)).
      type: list
      elements: dict
      returned: always
    default_configuration:
      description: The id of the default deployment option, or null.
      type: str
      returned: always
    networks:
      description: Networks (C(name), C(description)).
      type: list
      elements: dict
      returned: always
    transports:
      description: OVF environment transports of the virtual hardware (C(iso), C(com.vmware.guestInfo)).
      type: list
      elements: str
      returned: always
    extra_configs:
      description: The C(vmw:ExtraConfig) keys and values.
      type: dict
      returned: always
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.ovatool.vmware.plugins.module_utils.common import run_engine
from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.edit import describe


def main():
    module = AnsibleModule(argument_spec=dict(path=dict(type="path", required=True)), supports_check_mode=True)
    run_engine(module, lambda: {"changed": False, "appliance": describe(module.params["path"])})


if __name__ == "__main__":
    main()
