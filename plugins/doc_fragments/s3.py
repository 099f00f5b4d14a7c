# -*- coding: utf-8 -*-
# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment:
    # Where an s3:// URL is accepted: the store and the credentials (read on the controller where an action
    # plugin signs the requests).
    DOCUMENTATION = r"""
options:
  endpoint_url:
    description: S3 endpoint of an S3-compatible store (MinIO, SeaweedFS, Ceph...). Default AWS.
    type: str
  access_key:
    description: S3 access key; default boto3's usual chain (environment, profile, instance role).
    type: str
  secret_key:
    description: S3 secret key.
    type: str
  session_token:
    description: S3 session token.
    type: str
  region:
    description: S3 region.
    type: str
"""

    # Where the controller signs URLs a host uses (ova_export and ova_upload to s3://).
    PRESIGN = r"""
options:
  presign_seconds:
    description:
      - How long the presigned URLs the host gets live, in seconds; at most 7 days (SigV4's limit), and no longer
        than the controller's credentials when they are temporary (an instance role, STS, IRSA - boto3 knows when
        they end).
      - An asynchronous export that outlives them gets fresh ones from ova_export_wait (give it the same
        credentials in its O(ovatool.vmware.ova_export_wait#module:s3) option); a synchronous one that cannot end
        in time at its O(ovatool.vmware.ova_export#module:read_limit_mbps) fails before a disk is read.
      - An upload from the controller (M(ovatool.vmware.ova_upload)) goes in rounds - the host starts no part after
        three quarters of this lifetime, and the controller signs the parts left again with its current credentials.
    type: int
    default: 86400
    version_added: 1.1.0
"""
