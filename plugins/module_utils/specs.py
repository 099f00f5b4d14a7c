# -*- coding: utf-8 -*-
# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The argument specs of the modules that have an action plugin, written once: the module validates its
parameters against its spec on the host, and the action plugin against the same spec on the controller, before
it does anything (plugin_utils/action.HostModuleAction). Every default is a constant of _ovatool/defaults.
ova_export's, which needs the engine's vocabularies, is in export_spec (each module ships only what it imports)."""

from __future__ import annotations

from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool import defaults
from ansible_collections.ovatool.vmware.plugins.module_utils.common import presign_spec, s3_connection_spec

VIA = ("auto", "host", "controller")  # ova_upload: who moves the bytes


def s3_export_spec() -> dict:
    """What the controller alone reads of an export into ``s3://``: the store, the credentials, the parts."""
    return dict(
        **s3_connection_spec(),
        **presign_spec(),
        part_size_mb=dict(type="int", default=defaults.EXPORT_PART_SIZE_MB),
        upload_threads=dict(type="int", default=defaults.PARTS_THREADS),
    )


UPLOAD = dict(
    src=dict(type="path", required=True),
    dest=dict(type="str", required=True),
    force=dict(type="bool", default=False),
    via=dict(type="str", default="auto", choices=list(VIA)),
    validate_certs=dict(type="bool", default=True),
    **s3_connection_spec(),
    **presign_spec(),
    part_size_mb=dict(type="int", default=defaults.UPLOAD_PART_SIZE_MB),
    threads=dict(type="int", default=defaults.UPLOAD_THREADS),
    private_key=dict(type="path"),
    password=dict(type="str", no_log=True),
    known_hosts=dict(type="path"),
    host_key_checking=dict(type="bool", default=True),
    url_username=dict(type="str"),
    url_password=dict(type="str", no_log=True),
    headers=dict(type="dict"),
    timeout=dict(type="float", default=defaults.HTTP_TIMEOUT),
    retry_seconds=dict(type="float", default=defaults.RETRY_SECONDS),
)

VERIFY = dict(
    path=dict(type="str", required=True),
    deep=dict(type="bool", default=False),
    require_manifest=dict(type="bool", default=False),
    threads=dict(type="int", default=defaults.THREADS),
    validate_certs=dict(type="bool", default=True),
    url=dict(type="str", no_log=True),
    **s3_connection_spec(),
    **presign_spec(),
)

EXPORT_WAIT = dict(
    jobs=dict(type="list", elements="dict", required=True),
    progress_dir=dict(type="path"),
    timeout=dict(type="int", default=86400),
    poll=dict(type="int", default=5),
    progress_interval=dict(type="int", default=30),
    reconnect_timeout=dict(type="int", default=300),
    cleanup=dict(type="bool", default=True),
    async_dir=dict(type="path"),
    hold=dict(type="float", default=0),
    # read by the action plugin alone (it renews upload URLs): only the secrets are no_log, so that no figure
    # of the results (a lifetime of 60 s, a size) is masked because it equals one of these options' values
    s3=dict(type="dict", options=dict(validate_certs=dict(type="bool", default=True), **s3_export_spec())),
    # fresh URLs the action plugin hands to the host
    renew=dict(type="list", elements="dict", default=[], options=dict(
        progress_file=dict(type="path"),
        urls=dict(type="dict", options=dict(
            upload_id=dict(type="str"),
            expires=dict(type="float"),
            parts=dict(type="dict", no_log=True),
            complete_url=dict(type="str", no_log=True),
            abort_url=dict(type="str", no_log=True),
            get_url=dict(type="str", no_log=True),
            delete_url=dict(type="str", no_log=True),
        )),
    )),
)

ACCELERATOR = dict(
    state_dir=dict(type="path", required=True),
    wheelhouse=dict(type="path"),
    cache_dir=dict(type="path"),
    download=dict(type="bool", default=True),
    required=dict(type="bool", default=False),
    wheels=dict(type="list", elements="dict"),
)


def controller_view(spec: dict) -> dict:
    """The spec as an action plugin validates the task's arguments on the controller: paths name files on the
    host, so the controller must not expand them (``~`` is the remote user's home there)."""
    view = {}
    for name, option in spec.items():
        option = dict(option, type="str") if option.get("type") == "path" else dict(option)
        if option.get("elements") == "path":
            option["elements"] = "str"
        if "options" in option:
            option["options"] = controller_view(option["options"])
        view[name] = option
    return view
