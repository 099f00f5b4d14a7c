# -*- coding: utf-8 -*-
# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The options of ova_export_wait, written once for its module (on the host) and its action plugin (on the
controller)."""

from __future__ import annotations

ARGUMENT_SPEC = dict(
    jobs=dict(type="list", elements="dict", required=True),
    progress_dir=dict(type="path"),
    timeout=dict(type="int", default=86400),
    poll=dict(type="int", default=5),
    progress_interval=dict(type="int", default=30),
    reconnect_timeout=dict(type="int", default=300),
    cleanup=dict(type="bool", default=True),
    async_dir=dict(type="path"),
    hold=dict(type="float", default=0),
    s3=dict(type="dict", no_log=True),
    renew=dict(type="list", elements="dict", no_log=True, default=[]),
)


def controller_spec() -> dict:
    """The same options as the action plugin validates them: paths name files on the host, so the controller
    must not expand them (``~`` is the remote user's home there)."""
    return {name: dict(spec, type="str") if spec.get("type") == "path" else dict(spec)
            for name, spec in ARGUMENT_SPEC.items()}
