#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: ova_upload_parts
short_description: The host's half of an upload that the controller runs (digest, presigned S3 part PUTs)
version_added: 1.0.0
description:
  - Used by the action plugin of M(ovatool.vmware.ova_upload) when it uploads from the controller
    (O(ovatool.vmware.ova_upload#module:via=controller)); there is little reason to call it directly.
  - Without O(parts), reports the file's size and SHA256, and the host's Python (with which the controller reads
    the file in chunks when it relays an C(sftp://) upload). With O(parts), sends each byte range of the file with an
    HTTP PUT to its presigned URL, several at once, each retried on its own, and returns the ETags.
  - Needs only Python's standard library on the host, and no credentials - the URLs carry their own signatures.
author: ovatool developers (@ovatool)
requirements:
  - Python 3.8 or newer on the host (the standard library only)
options:
  src:
    description: The file on the host.
    type: path
    required: true
  parts:
    description: The parts to send - C(number), C(offset), C(size) and the presigned C(url) of each.
    type: list
    elements: dict
  threads:
    description: Parts sent at once.
    type: int
    default: 4
  retry_seconds:
    description:
      - A part that fails on a network error or a 5xx/408/429 answer is sent again, with exponential backoff and
        jitter, until the store has not answered any part successfully for this many seconds.
    type: float
    default: 900
    version_added: 1.1.0
  timeout:
    description: Seconds without progress before a part's connection counts as failed.
    type: float
    default: 60
  validate_certs:
    description: Verify TLS certificates. Turning this off is explicit and insecure.
    type: bool
    default: true
  stop_after:
    description:
      - The URLs end soon - no part starts after this many seconds, and a part whose URL the store calls expired is
        not sent; both are listed in RV(left) for the controller to sign again.
      - Without it, every part is sent or the module fails.
    type: float
    version_added: 1.1.0
attributes:
  check_mode:
    support: none
    description: The action plugin of M(ovatool.vmware.ova_upload) decides in check mode without calling this.
  diff_mode:
    support: none
    description: No diff.
"""

EXAMPLES = r"""
- name: Upload from the controller; the host only sends bytes to presigned URLs
  ovatool.vmware.ova_upload:
    src: /exports/appliance.ova
    dest: s3://appliances/releases/
    via: controller
"""

RETURN = r"""
size:
  description: Bytes of the file.
  returned: always
  type: int
sha256:
  description: SHA256 of the file (when O(parts) is not given).
  returned: when O(parts) is not given
  type: str
python:
  description: The host's Python interpreter.
  returned: when O(parts) is not given
  type: str
etags:
  description: The C(number) and C(etag) of each part sent.
  returned: when O(parts) is given
  type: list
  elements: dict
left:
  description: The numbers of the parts not sent, because their URLs ended (O(stop_after)).
  returned: when O(parts) is given
  type: list
  elements: int
  version_added: 1.1.0
"""

import os
import sys

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.ovatool.vmware.plugins.module_utils.common import run_engine
from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.errors import OvatoolError
from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.fileio import file_digest
from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.storage.presigned import Link, put_parts
from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.storage.retry import RetryWindow


def main():
    module = AnsibleModule(
        argument_spec=dict(
            src=dict(type="path", required=True),
            parts=dict(type="list", elements="dict"),
            threads=dict(type="int", default=4),
            retry_seconds=dict(type="float", default=900),
            timeout=dict(type="float", default=60),
            validate_certs=dict(type="bool", default=True),
            stop_after=dict(type="float"),
        ),
    )
    params = module.params

    def action():
        src = params["src"]
        if not os.path.isfile(src):
            raise OvatoolError("no such file" if not os.path.exists(src) else "not a regular file", src)
        size = os.path.getsize(src)
        if params["parts"] is None:
            return {"changed": False, "size": size, "sha256": file_digest(src, "sha256"), "python": sys.executable}
        link = Link(params["timeout"], params["validate_certs"], RetryWindow(params["retry_seconds"]))
        sent = put_parts(src, params["parts"], params["threads"], link, params["stop_after"])
        return {"changed": True, "size": size, "etags": sent["etags"], "left": sent["left"]}

    run_engine(module, action)


if __name__ == "__main__":
    main()
