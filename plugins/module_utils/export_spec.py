# -*- coding: utf-8 -*-
# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The argument spec of ova_export, for its module (on the host) and its action plugin (on the controller)."""

from __future__ import annotations

from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool import defaults
from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.export.codec import CODECS
from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.export.gentle import IONICE_CLASSES
from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.export.plan import FORMATS, IMAGE_FORMATS
from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.formats.manifest import ALGORITHMS
from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.formats.ovf import EXPORT_FLAGS
from ansible_collections.ovatool.vmware.plugins.module_utils.common import SIGNING_TOGETHER, signing_spec
from ansible_collections.ovatool.vmware.plugins.module_utils.specs import s3_export_spec


def _upload(images: bool = False) -> dict:
    """One multipart upload the controller started (the OVA's, or an image's): only its URLs are secret."""
    options = dict(
        urls=dict(type="list", elements="str", no_log=True),
        complete_url=dict(type="str", no_log=True),
        abort_url=dict(type="str", no_log=True),
        get_url=dict(type="str", no_log=True),
        delete_url=dict(type="str", no_log=True),
        part_size=dict(type="int"),
        fingerprint=dict(type="str"),
        threads=dict(type="int"),
        timeout=dict(type="float", default=defaults.HTTP_TIMEOUT),
        validate_certs=dict(type="bool", default=True),
        bucket=dict(type="str"),
        key=dict(type="str", no_log=False),
        upload_id=dict(type="str"),
        expires=dict(type="float"),
        lifetime=dict(type="int"),
        renewable=dict(type="bool", default=False),
    )
    if images:
        options["images"] = dict(type="list", elements="dict", options=_upload())
    return options


EXPORT = dict(
    src=dict(type="path", required=True),
    dest=dict(type="path", required=True),
    force=dict(type="bool", default=False),
    refresh=dict(type="bool", default=False),
    name=dict(type="str"),
    threads=dict(type="int", default=defaults.THREADS),
    compression=dict(type="str", default=defaults.COMPRESSION),
    codec=dict(type="str", default=defaults.CODEC, choices=["auto"] + list(CODECS)),
    accelerator_paths=dict(type="list", elements="path", default=[]),
    manifest=dict(type="str", default=defaults.MANIFEST, choices=list(ALGORITHMS)),
    format=dict(type="str", default=defaults.FORMAT, choices=list(FORMATS)),
    images=dict(type="list", elements="str", default=[], choices=list(IMAGE_FORMATS)),
    max_hardware_version=dict(type="int"),
    snapshot=dict(type="str"),
    export_flags=dict(type="list", elements="str", default=[], choices=list(EXPORT_FLAGS)),
    **signing_spec(),
    include_images=dict(type="bool", default=False),
    progress_file=dict(type="path"),
    slots=dict(type="int", default=0),
    slots_dir=dict(type="path"),
    appliance=dict(type="dict"),
    appliances=dict(type="dict"),
    nice=dict(type="int", default=defaults.NICE),
    ionice=dict(type="str", default=defaults.IONICE, choices=list(IONICE_CLASSES)),
    read_limit_mbps=dict(type="float", default=defaults.READ_LIMIT_MBPS),
    validate_certs=dict(type="bool", default=True),
    retry_seconds=dict(type="float", default=defaults.RETRY_SECONDS),
    plan_only=dict(type="bool", default=False),
    upload=dict(type="dict", options=_upload(images=True)),
    **s3_export_spec(),
)
EXPORT_KWARGS = dict(required_together=SIGNING_TOGETHER)
