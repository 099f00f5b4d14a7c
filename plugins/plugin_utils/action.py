# -*- coding: utf-8 -*-
# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What the collection's action plugins share: they run on the controller and call this collection's modules on
the host, once or several times per task.

Each plugin names its module (``MODULE``); ``task_args()`` validates the task's arguments against that module's own
argument spec (module_utils/specs) before anything is done, so a wrong option fails on the controller as it would
on the host, and the plugin reads typed values with their defaults. ``missing_boto3()`` is the one check that the
controller has what an ``s3://`` URL needs.
"""

from __future__ import annotations

from ansible.plugins.action import ActionBase

from ansible_collections.ovatool.vmware.plugins.module_utils import export_spec, specs
from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.storage import s3control

# module name -> (its argument spec, the other AnsibleModule checks it is created with)
SPECS = {
    "ova_export": (export_spec.EXPORT, export_spec.EXPORT_KWARGS),
    "ova_upload": (specs.UPLOAD, {}),
    "ova_verify": (specs.VERIFY, {}),
    "ova_export_wait": (specs.EXPORT_WAIT, {}),
    "ova_accelerator": (specs.ACCELERATOR, {}),
}


class HostModuleAction(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = True
    _supports_check_mode = True
    _supports_async = False
    MODULE = ""  # the module (ovatool.vmware.<MODULE>) whose spec the task's arguments are validated against

    def task_args(self):
        """The task's arguments validated against the module's spec, with its defaults (paths unexpanded: they
        name files on the host); an invalid one fails the task here (AnsibleActionFail)."""
        spec, checks = SPECS[self.MODULE]
        _valid, args = self.validate_argument_spec(argument_spec=specs.controller_view(spec), **checks)
        return args

    @staticmethod
    def missing_boto3(result, what, more=""):
        """None when boto3 is on the controller; else ``result`` failed, saying that ``what`` needs it there
        (and ``more``), with ``missing_library`` naming it."""
        if s3control.boto3_or_none() is not None:
            return None
        return dict(result, failed=True, missing_library="boto3",
                    msg=f"{what} needs the boto3 Python package on the controller (or in the execution environment)"
                    f"{more}")

    def host_module(self, name, args, task_vars, wrap_async=False):
        """Run ``ovatool.vmware.<name>`` on the host; its temporary files go when it is done (an async job's
        wrapper removes its own)."""
        answer = self._execute_module(module_name=f"ovatool.vmware.{name}", module_args=args, task_vars=task_vars,
                                      wrap_async=wrap_async)
        if not wrap_async:
            self._remove_tmp_path(self._connection._shell.tmpdir)
        return answer
