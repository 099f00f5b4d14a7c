#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: ova_upload
short_description: Upload an OVA (or any file) to S3, SFTP, an HTTP server or a local folder
version_added: 0.1.0
description:
  - Streams the file from the host the module runs on; it is never read into memory whole.
  - C(s3://bucket/key) uses a boto3 multipart upload with parallel parts (any S3-compatible store through
    O(endpoint_url)), stores the file's SHA256 as object metadata and checks size and digest with a HEAD afterwards.
  - C(sftp://user@host[:port]/path) uses paramiko, uploads to a temporary name, renames, and checks the size.
  - C(https://...) and C(http://...) send one streaming PUT with C(X-Checksum-Sha256) (Artifactory, Nexus).
  - C(file:///path) copies to a temporary name beside the destination, fsyncs and renames.
  - Idempotent, when the destination already holds a file of the same size and SHA256, nothing is sent.
author: ovatool developers (@ovatool)
requirements:
  - Python 3.8 or newer on the host
  - boto3 for C(s3://) destinations
  - paramiko for C(sftp://) destinations, on the host, or on the controller where it relays (O(via))
options:
  src:
    description: The file to upload.
    type: path
    required: true
  dest:
    description:
      - Destination URL (C(s3://), C(sftp://), C(https://), C(http://) or C(file://)).
      - As with M(ansible.builtin.copy), a O(dest) ending in C(/) is a folder (or key prefix) and the file keeps its
        own name there; any other O(dest) names the file itself.
      - Missing folders are created for C(file://) and C(sftp://), whether O(dest) names the folder or the file
        (an upload to a dated folder needs no separate step). A C(file://) O(dest) that is an existing folder
        but does not end in C(/) is refused rather than guessed.
    type: str
    required: true
  via:
    description:
      - Where the upload runs. V(host) - the module on the host does it all (boto3 or paramiko there for
        C(s3://) and C(sftp://), and the credentials go to the host).
      - V(controller) - for C(s3://), the controller keeps the credentials and boto3, starts a multipart upload
        with the file's SHA256 as metadata and signs one URL per part; the host (standard library only, as on ESXi)
        only PUTs the byte ranges to those URLs; the controller completes the upload, checks size and SHA256, and
        aborts it on any failure. The secret key never reaches the host.
      - For C(sftp://), V(controller) relays - the controller reads the file from the host in chunks and writes it
        to the SFTP server with its own paramiko, streamed (nothing staged on its disk, one 8 MiB chunk in memory);
        O(private_key) and O(known_hosts) are then files on the controller.
      - V(auto) - V(controller) for C(s3://) where the controller has boto3; for C(sftp://) the host when its Python
        has paramiko, else the controller relays; V(host) otherwise.
      - The result's RV(via) says which ran.
    type: str
    choices: [auto, host, controller]
    default: auto
  force:
    description: Upload even when the destination already holds the same size and SHA256.
    type: bool
    default: false
  validate_certs:
    description: Verify TLS certificates (S3 and HTTPS). Turning this off is explicit and insecure.
    type: bool
    default: true
  part_size_mb:
    description: S3 multipart part size in MiB (at least 5).
    type: int
    default: 64
  threads:
    description: S3 parts uploaded at once.
    type: int
    default: 8
  private_key:
    description: SFTP private key file.
    type: path
  password:
    description: SFTP password.
    type: str
  known_hosts:
    description: Extra known_hosts file for SFTP host key checking.
    type: path
  host_key_checking:
    description: Refuse SFTP hosts whose key is not known. Turning this off is explicit and insecure.
    type: bool
    default: true
  url_username:
    description: HTTP basic authentication user.
    type: str
  url_password:
    description: HTTP basic authentication password.
    type: str
  headers:
    description: Extra HTTP headers.
    type: dict
  timeout:
    description: Network timeout in seconds.
    type: float
    default: 60
  retry_seconds:
    description:
      - An upload cut by the network, or answered with a 5xx/408/429, is tried again with exponential backoff and
        jitter until the destination has not answered for this many seconds; an outage shorter than that does
        not fail the upload.
      - C(sftp://) opens a new session and goes on from what the server already has; C(http(s)://) sends the
        PUT again; C(s3://) from the controller (O(via=controller)) sends the part again. C(s3://) uploads with
        boto3 on the host (O(via=host)) use boto3's own retries.
      - What the destination refuses (no space, no permission, a rejected key or signature) fails at once.
    type: float
    default: 900
    version_added: 1.1.0
extends_documentation_fragment:
  - ovatool.vmware.s3
  - ovatool.vmware.s3.presign
attributes:
  check_mode:
    support: full
    description: Reports whether an upload would happen after checking the destination.
  diff_mode:
    support: none
    description: No diff.
"""

EXAMPLES = r"""
- name: Publish an appliance to an S3-compatible store
  ovatool.vmware.ova_upload:
    src: /exports/appliance.ova
    dest: s3://appliances/2026/appliance.ova
    endpoint_url: https://minio.example.com
    access_key: "{{ vault_s3_access }}"
    secret_key: "{{ vault_s3_secret }}"

- name: Or into a dated folder on a file server over SFTP (created if missing; the file keeps its name)
  ovatool.vmware.ova_upload:
    src: /exports/appliance.ova
    dest: "sftp://deploy@files.example.com/srv/appliances/{{ ansible_date_time.date }}/"
    private_key: /home/deploy/.ssh/id_ed25519
"""

RETURN = r"""
missing_library:
  description:
    - The Python package this upload needs where it ran and did not find (V(boto3), V(paramiko)); the task fails.
  returned: when that is why it failed
  type: str
  sample: paramiko
  version_added: 1.1.0
via:
  description: Where the upload ran, V(host) or V(controller).
  returned: always
  type: str
url:
  description: The destination file's URL (with the file name appended to a O(dest) ending in C(/)), without any password.
  returned: always
  type: str
src:
  description: The absolute source path.
  returned: always
  type: str
size:
  description: Bytes of the file.
  returned: always
  type: int
sha256:
  description: SHA256 of the file.
  returned: always
  type: str
seconds:
  description: Time spent hashing and uploading.
  returned: changed and not check mode
  type: float
mbps:
  description: Upload throughput in MB/s.
  returned: changed and not check mode
  type: float
renewals:
  description:
    - For an C(s3://) upload from the controller, the rounds after the first - each signed the URLs of the parts
      not sent yet again, because the earlier URLs were about to end (O(presign_seconds), or temporary credentials).
  returned: changed and not check mode, for s3:// uploads from the controller
  type: int
  version_added: 1.1.0
msg:
  description: Why nothing was sent, or what would be done in check mode.
  returned: when not changed, and in check mode
  type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.ovatool.vmware.plugins.module_utils.common import run_engine
from ansible_collections.ovatool.vmware.plugins.module_utils.specs import UPLOAD
from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.storage.upload import UploadOptions, upload


def main():
    module = AnsibleModule(argument_spec=UPLOAD, supports_check_mode=True)
    params = dict(module.params)
    params.pop("via")  # the action plugin decided: this is the host's turn
    params.pop("presign_seconds")  # read by the action plugin, which signs the URLs of an s3:// upload
    params["headers"] = params["headers"] or {}
    options = UploadOptions(check_mode=module.check_mode, **params)
    run_engine(module, lambda: dict(upload(options), via="host"))


if __name__ == "__main__":
    main()
