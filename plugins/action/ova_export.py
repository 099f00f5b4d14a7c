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
parts as it writes it (nothing staged on its disk) and completes the upload, or aborts it on any failure.
"""

from __future__ import annotations

from ansible.plugins.action import ActionBase

from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.storage.multipart import plan_parts
from ansible_collections.ovatool.vmware.plugins.plugin_utils import s3 as s3util

MiB = 1024 * 1024
# read here only: the credentials and the controller's own settings never go to the host
CONTROLLER_ONLY = s3util.CONNECTION_OPTIONS + ("part_size_mb", "upload_threads")
PLAN_ONLY = ("bound_bytes", "holes")


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = True
    _supports_check_mode = True
    _supports_async = True

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        args = dict(self._task.args)
        wrap_async = bool(self._task.async_val) and not self._connection.has_native_async
        if str(args.get("dest") or "").lower().startswith("s3://"):
            return self._s3(args, task_vars, result, wrap_async)
        host_args = {k: v for k, v in args.items() if k not in CONTROLLER_ONLY}
        result.update(self._execute_module(module_args=host_args, task_vars=task_vars, wrap_async=wrap_async))
        if not wrap_async:
            self._remove_tmp_path(self._connection._shell.tmpdir)
        return result

    def _module(self, args, task_vars, wrap_async=False):
        return self._execute_module(module_name="ovatool.vmware.ova_export", module_args=args, task_vars=task_vars,
                                    wrap_async=wrap_async)

    def _s3(self, args, task_vars, result, wrap_async):
        from botocore.exceptions import BotoCoreError, ClientError  # pylint: disable=import-outside-toplevel

        host_args = {k: v for k, v in args.items() if k not in CONTROLLER_ONLY}
        if s3util.boto3_or_none() is None:
            return dict(result, failed=True, msg="an s3:// dest needs the boto3 Python package on the controller "
                                                 "(or in the execution environment); the host needs nothing")
        planned = self._module(dict(host_args, upload={"plan": True}), task_vars)
        self._remove_tmp_path(self._connection._shell.tmpdir)
        if planned.get("failed"):
            return dict(result, **planned)
        dest = planned["dest"]
        bucket, key = s3util.split(dest)
        if not bucket or not key:
            return dict(result, failed=True, msg=f"{dest!r}: an S3 destination is s3://bucket/key or s3://bucket/prefix/")
        result.update({k: v for k, v in planned.items() if k not in PLAN_ONLY + ("changed", "msg")})
        upload_id = None
        s3 = None
        try:
            s3 = s3util.client(args)
            found = s3util.head(s3, bucket, key)
            if found is not None and not args.get("force"):
                if not args.get("refresh"):
                    return dict(result, changed=False, msg=f"{dest} exists; use force to overwrite it")
                if found.get("Metadata", {}).get(s3util.FINGERPRINT) == planned["fingerprint"]:
                    return dict(result, changed=False, current=True,
                                msg=f"{dest} is current: the sources have not changed")
                result["stale"] = True
            if self._task.check_mode:
                return dict(result, changed=True, msg=planned.get("msg"))
            warnings = [f"aborted an incomplete upload to {dest} started {when}, left by an export that was killed "
                        "or lost its host" for when in s3util.abort_stale(s3, bucket, key)]
            part_size, count = plan_parts(int(planned["bound_bytes"]), int(args.get("part_size_mb") or 32) * MiB,
                                          int(planned["holes"]))
            upload_id = s3util.start(s3, bucket, key, {s3util.FINGERPRINT: planned["fingerprint"]})
            upload = dict(s3util.presigned_upload(s3, bucket, key, upload_id, count), part_size=part_size,
                          fingerprint=planned["fingerprint"], threads=int(args.get("upload_threads") or 4),
                          validate_certs=bool(args.get("validate_certs", True)))
            answer = self._module(dict(host_args, upload=upload), task_vars, wrap_async)
            if not wrap_async:
                self._remove_tmp_path(self._connection._shell.tmpdir)
            if warnings:
                answer["warnings"] = list(answer.get("warnings") or []) + warnings
            if answer.get("failed"):
                return dict(result, **answer)
            if wrap_async:
                upload_id = None  # the job on the host completes the upload, or aborts it
                return dict(result, **answer)
            written = s3util.head(s3, bucket, key)
            upload_id = None
            if written is None or written["ContentLength"] != answer.get("size") \
                    or written.get("Metadata", {}).get(s3util.FINGERPRINT) != planned["fingerprint"]:
                return dict(result, failed=True, msg=f"after the export, {dest} is missing or its size or fingerprint "
                                                     "differs from what the host wrote")
            return dict(result, **answer)
        except (BotoCoreError, ClientError, RuntimeError) as exc:
            return dict(result, failed=True, msg=f"S3 export to {dest} failed: {exc}")
        finally:
            if upload_id is not None and s3 is not None:  # the host failed, or never started: nothing stays behind
                s3util.abort(s3, bucket, key, upload_id)
