#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: ova_verify
short_description: Check an OVA (or an OVF with its files) for everything an importer relies on
version_added: 0.1.0
description:
  - Reads the archive in place (nothing is extracted, nothing outside it is touched) and checks
    the tar layout (the C(.ovf) first, plain member names, regular files only, sizes inside the archive),
    the OVF (parsed with DOCTYPE and entities refused; every referenced file present, chunked files too,
    with the declared C(ovf:size)), the manifest (every line, C(SHA1)/C(SHA256)/C(SHA512), both
    C(SHA256(x)= h) and C(SHA256 (x) = h) forms, members missing from it), the signing certificate when
    present, and the structure of every streamOptimized disk.
  - Digests and disk checks of different members run in parallel.
  - An C(s3://bucket/key.ova) O(path) is checked where it lies, with the same findings as a local file and no
    local copy - the controller (boto3, the credentials) signs one GET URL, and the host reads the OVA through
    it by HTTP range requests with the standard library.
  - Fails with RV(problems) listing every finding; succeeds with what was checked.
author: ovatool developers (@ovatool)
requirements:
  - Python 3.8 or newer on the host (the standard library only)
  - to check a signature (a C(.cert) member), the C(cryptography) package or the C(openssl) command on the host
  - for an C(s3://) O(path), boto3 on the controller (or in the execution environment)
options:
  path:
    description: An C(.ova), or an C(.ovf) whose files lie beside it, or an C(s3://bucket/key) OVA.
    type: str
    required: true
  validate_certs:
    description: Verify the TLS certificate of an C(https) S3 endpoint. Turning this off is explicit and insecure.
    type: bool
    default: true
  url:
    description:
      - Set by the action plugin for an C(s3://) O(path) (a presigned GET URL); do not set it.
    type: str
  deep:
    description: Also inflate every grain of every streamOptimized disk and check its size.
    type: bool
    default: false
  require_manifest:
    description: Fail when there is no C(.mf) manifest.
    type: bool
    default: false
  threads:
    description: Members checked at once; V(0) means one per available core.
    type: int
    default: 0
extends_documentation_fragment:
  - ovatool.vmware.attributes.read_only
  - ovatool.vmware.s3
  - ovatool.vmware.s3.presign
"""

EXAMPLES = r"""
- name: Verify a freshly exported appliance
  ovatool.vmware.ova_verify:
    path: /exports/appliance.ova
    require_manifest: true
    deep: true

- name: Verify an OVA in S3 without copying it (the credentials stay on the controller)
  ovatool.vmware.ova_verify:
    path: s3://appliances/releases/appliance.ova
    endpoint_url: https://s3.example.com
    access_key: "{{ vault_s3_access_key }}"
    secret_key: "{{ vault_s3_secret_key }}"
"""

RETURN = r"""
ok:
  description: True when no problem was found.
  returned: always
  type: bool
problems:
  description: Findings a person can act on, one sentence each.
  returned: always
  type: list
  elements: str
  sample: ["member appliance-disk1.vmdk: SHA256 differs from the manifest"]
ovf_version:
  description: The OVF version of the descriptor, C(1.x) or C(2.0) (by its namespace).
  returned: when the descriptor parses and is in an OVF 1.x or 2.0 namespace
  type: str
  sample: "1.x"
path:
  description: Absolute path checked.
  returned: always
  type: str
format:
  description: C(ova) or C(ovf).
  returned: always
  type: str
members:
  description: Archive members in order (C(name), C(size)).
  returned: always
  type: list
  elements: dict
algorithm:
  description: Manifest digest algorithm.
  returned: when there is a manifest
  type: str
digests_checked:
  description: Members whose digest was recomputed and compared.
  returned: when the OVF could be read
  type: int
disks:
  description: streamOptimized disks and what their check found (C(name), C(capacity_bytes), C(grains), C(problems)).
  returned: when the OVF could be read
  type: list
  elements: dict
signature:
  description: Whether a certificate is present, whether it verifies, and how it was checked.
  returned: when the OVF could be read
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.ovatool.vmware.plugins.module_utils.common import run_engine
from ansible_collections.ovatool.vmware.plugins.module_utils.specs import VERIFY
from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.errors import OvatoolError
from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.verify import verify


def main():
    module = AnsibleModule(argument_spec=VERIFY, supports_check_mode=True)

    def action():
        params = module.params
        if params["path"].lower().startswith("s3://") and not params["url"]:
            raise OvatoolError("an s3:// path is read through a URL the controller signs (the ova_verify action)",
                               params["path"])
        result = verify(params["path"], params["deep"], params["require_manifest"], params["threads"],
                        url=params["url"], validate_certs=params["validate_certs"])
        result["changed"] = False
        if not result["ok"]:
            module.fail_json(msg=f"{result['path']}: {len(result['problems'])} problem(s): "
                                 + "; ".join(result["problems"][:5]), **result)
        return result

    run_engine(module, action)


if __name__ == "__main__":
    main()
