# -*- coding: utf-8 -*-
# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Glue between Ansible modules and the engine: one domain exception, mapped once."""

from __future__ import annotations

import traceback

from ansible.module_utils.basic import missing_required_lib

from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.errors import MissingLibrary, OvatoolError
from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.host.power import backend


def run_engine(module, action):
    """Call ``action()`` and exit the module with its result dict, or fail with a readable message (a missing
    Python package as Ansible words it, and named in ``missing_library``)."""
    try:
        result = action()
    except MissingLibrary as exc:
        module.fail_json(msg=missing_required_lib(exc.library), missing_library=exc.library)
    except OvatoolError as exc:
        module.fail_json(msg=str(exc))
    except KeyboardInterrupt:
        module.fail_json(msg="interrupted; nothing was left at the destination")
    except Exception as exc:  # an engine bug: say so, keep the traceback for -vvv
        module.fail_json(msg=f"internal error in ovatool: {exc!r}", exception=traceback.format_exc())
    for warning in result.pop("warnings", None) or ():
        module.warn(warning)
    module.exit_json(**result)


def backend_spec() -> dict:
    """The argument spec of doc fragment ovatool.vmware.backend: how to reach VMware on the host."""
    return dict(
        backend=dict(type="str", default="auto", choices=["auto", "vmrun", "vim-cmd"]),
        vmrun_path=dict(type="path"),
        vmrun_type=dict(type="str", choices=["ws", "fusion", "player"]),
        vim_cmd_path=dict(type="path"),
    )


def backend_of(params: dict):
    """The power backend (host/power) the backend_spec options name."""
    return backend(params["backend"], params["vmrun_path"], params["vmrun_type"], params["vim_cmd_path"])


def s3_connection_spec() -> dict:
    """The argument spec of doc fragment ovatool.vmware.s3: the store and the credentials of s3:// URLs."""
    return dict(
        endpoint_url=dict(type="str"),
        access_key=dict(type="str", no_log=False),  # an identifier: masking it would mask its text everywhere
        secret_key=dict(type="str", no_log=True),
        session_token=dict(type="str", no_log=True),
        region=dict(type="str"),
    )


def presign_spec() -> dict:
    """The argument spec of doc fragment ovatool.vmware.s3.presign."""
    return dict(presign_seconds=dict(type="int", default=86400))


def signing_spec() -> dict:
    """The options that sign a package's manifest (ova_export, ova_edit); use with SIGNING_TOGETHER."""
    return dict(
        private_key=dict(type="path"),
        private_key_passphrase=dict(type="str", no_log=True),
        certificate=dict(type="path"),
    )


SIGNING_TOGETHER = [("private_key", "certificate")]
