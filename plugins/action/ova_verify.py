# -*- coding: utf-8 -*-
# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Controller side of ovatool.vmware.ova_verify: an s3:// OVA is checked where it lies.

The controller (boto3, the credentials) signs one GET URL for the object; the host reads the OVA through it by
range requests (standard library only), with the same checks as for a local file and no local copy. Any other
path runs the module on the host as before.
"""

from __future__ import annotations

from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.errors import OvatoolError
from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.storage import s3control
from ansible_collections.ovatool.vmware.plugins.plugin_utils.action import HostModuleAction


class ActionModule(HostModuleAction):

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        args = {k: v for k, v in self._task.args.items()
                if k not in s3control.CONNECTION_OPTIONS + ("url", "presign_seconds")}
        path = str(args.get("path") or "")
        if path.lower().startswith("s3://"):
            if s3control.boto3_or_none() is None:
                return dict(result, failed=True, msg="an s3:// path needs the boto3 Python package on the controller "
                                                     "(or in the execution environment); the host needs nothing")
            from botocore.exceptions import BotoCoreError, ClientError  # pylint: disable=import-outside-toplevel

            try:
                args["url"] = s3control.presigned_get(s3control.client(self._task.args), path,
                                                      self._task.args.get("presign_seconds"))
            except (BotoCoreError, ClientError, RuntimeError, OvatoolError) as exc:
                return dict(result, failed=True, msg=f"{path}: {exc}" if path not in str(exc) else str(exc))
        result.update(self.host_module("ova_verify", args, task_vars))
        return result
