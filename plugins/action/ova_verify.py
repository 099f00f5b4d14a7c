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
from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.storage import objects, s3control
from ansible_collections.ovatool.vmware.plugins.plugin_utils.action import HostModuleAction


class ActionModule(HostModuleAction):
    MODULE = "ova_verify"

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        args = self.task_args()
        host_args = {k: v for k, v in self._task.args.items()
                     if k not in s3control.CONNECTION_OPTIONS + ("url", "presign_seconds")}
        path = args["path"]
        if objects.handles(path):
            missing = self.missing_boto3(result, "an s3:// path", "; the host needs nothing")
            if missing:
                return missing
            from botocore.exceptions import BotoCoreError, ClientError  # pylint: disable=import-outside-toplevel

            try:
                host_args["url"] = s3control.presigned_get(s3control.client(s3control.S3Settings.from_params(args)),
                                                           path, args["presign_seconds"])
            except (BotoCoreError, ClientError, RuntimeError, OvatoolError) as exc:
                return dict(result, failed=True, msg=f"{path}: {exc}" if path not in str(exc) else str(exc))
        result.update(self.host_module("ova_verify", host_args, task_vars))
        return result
