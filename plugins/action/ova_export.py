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

from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.storage import s3control
from ansible_collections.ovatool.vmware.plugins.plugin_utils.action import HostModuleAction


class ActionModule(HostModuleAction):
    _supports_async = True

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        args = dict(self._task.args)
        wrap_async = bool(self._task.async_val) and not self._connection.has_native_async
        # the credentials and the controller's own settings never go to the host
        host_args = {k: v for k, v in args.items() if k not in s3control.EXPORT_OPTIONS}
        if not str(args.get("dest") or "").lower().startswith("s3://"):
            result.update(self.host_module("ova_export", host_args, task_vars, wrap_async))
            return result
        if s3control.boto3_or_none() is None:
            return dict(result, failed=True, msg="an s3:// dest needs the boto3 Python package on the controller "
                                                 "(or in the execution environment); the host needs nothing")

        def on_host(upload):
            return self.host_module("ova_export", dict(host_args, upload=upload), task_vars,
                                    wrap_async and not upload.get("plan"))

        result.update(s3control.export_to_s3(args, on_host, self._task.check_mode, detached=wrap_async))
        return result
