# -*- coding: utf-8 -*-
# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Controller side of ovatool.vmware.ova_export: exports straight into S3, with the credentials kept here.

A local O(dest) runs the module on the host as any module runs (async included). For ``s3://`` the host first
reports what it would write (the sources' fingerprint and a bound on the OVA's size, from the metadata only);
the controller compares the fingerprint with the object's metadata (idempotence), aborts an incomplete upload
an earlier run left on that key, starts a multipart upload carrying the fingerprint, and hands the host only
presigned URLs: one per part, one to complete and one to abort the upload. The host streams the OVA into the
parts as it writes it (nothing staged on its disk) and completes the upload, or aborts it on any failure
(storage/s3control.export_to_s3 and storage/multipart).
"""

from __future__ import annotations

from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.storage import objects, s3control
from ansible_collections.ovatool.vmware.plugins.plugin_utils.action import HostModuleAction


class ActionModule(HostModuleAction):
    _supports_async = True
    MODULE = "ova_export"

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        args = self.task_args()
        wrap_async = bool(self._task.async_val) and not self._connection.has_native_async
        # the credentials and the controller's own settings never go to the host
        host_args = {k: v for k, v in self._task.args.items() if k not in s3control.EXPORT_OPTIONS}
        if not objects.handles(args["dest"]):
            result.update(self.host_module("ova_export", host_args, task_vars, wrap_async))
            return result
        missing = self.missing_boto3(result, "an s3:// dest", "; the host needs nothing")
        if missing:
            return missing
        job = s3control.ObjectExport(
            plan=lambda: self.host_module("ova_export", dict(host_args, plan_only=True), task_vars),
            run=lambda upload: self.host_module("ova_export", dict(host_args, upload=upload), task_vars, wrap_async),
            force=args["force"], refresh=args["refresh"], read_limit_mbps=args["read_limit_mbps"],
            check_mode=self._task.check_mode, detached=wrap_async)
        result.update(s3control.export_to_s3(s3control.S3Settings.from_params(args), job))
        return result
