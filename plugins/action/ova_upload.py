# -*- coding: utf-8 -*-
# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Controller side of ovatool.vmware.ova_upload: S3 uploads whose credentials never leave the controller.

For ``s3://`` (``via: controller``, and ``auto`` where boto3 is on the controller) the controller starts the
multipart upload with the SHA256 as object metadata, signs one URL per part, and hands the host only those URLs
(module ovatool.vmware.ova_upload_parts, standard library only); then it completes the upload, checks size and
SHA256 with a HEAD, and aborts the upload on any failure.

For ``sftp://`` the host uploads when it has paramiko; otherwise (``via: auto``), or always with ``via:
controller``, the controller relays: it reads the file from the host in chunks (one remote command each, base64)
and writes them to the SFTP server with its own paramiko as they arrive, nothing staged on its disk, one chunk in
memory (storage/relay). Every other case runs the module on the host as before.
"""

from __future__ import annotations

import base64
import math
import shlex
import time
from urllib.parse import urlsplit

from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.errors import MissingLibrary, OvatoolError
from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.storage.common import (
    MB, UploadOptions, into_folder, redact)
from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.storage.relay import relay_sftp
from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.storage.multipart import MAX_PARTS, MIN_PART
from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.storage import s3control as s3util
from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.storage.retry import RetryWindow
from ansible_collections.ovatool.vmware.plugins.plugin_utils.action import HostModuleAction

# the host starts no part after this share of its URLs' lifetime: what is left is signed again for the next round
STOP_AFTER = 0.75
# run by the host's Python for one chunk of a relayed upload: the bytes, base64 (a remote command's output is text)
READ_CHUNK = ("import base64, sys\nwith open(sys.argv[1], 'rb') as f:\n    f.seek(int(sys.argv[2]))\n"
              "    sys.stdout.write(base64.b64encode(f.read(int(sys.argv[3]))).decode())")


class ActionModule(HostModuleAction):
    MODULE = "ova_upload"

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        args = self.task_args()
        host_args = dict(self._task.args)
        via = args["via"]
        scheme = urlsplit(args["dest"]).scheme.lower()
        if scheme == "s3" and via != "host" and (via == "controller" or s3util.boto3_or_none() is not None):
            missing = self.missing_boto3(result, "via: controller")
            if missing:
                return missing
            return self._s3(args, task_vars or {}, result)
        if scheme == "sftp" and via != "host":
            if via == "auto":  # the host when it has paramiko; else the controller relays
                answer = self.host_module("ova_upload", host_args, task_vars)
                if answer.get("missing_library") != "paramiko":
                    return dict(result, **answer)
            return self._sftp(args, task_vars or {}, result)
        if via == "controller":
            return dict(result, failed=True, msg=f"via: controller is available for s3:// and sftp:// destinations; "
                                                 f"{scheme}:// uploads run on the host (via: host or auto)")
        answer = self.host_module("ova_upload", host_args, task_vars)
        result.update(answer)
        return result

    def _sftp(self, args, task_vars, result):
        """The controller relays: it reads the file from the host in chunks and writes it to the SFTP server."""
        src = args["src"]
        facts = self._host({"src": src}, task_vars)
        if facts.get("failed"):
            return dict(result, failed=True, msg=f"reading {src} on the host failed: {facts.get('msg')}")
        python = facts["python"]

        def fetch(offset, length):
            done = self._low_level_execute_command(
                " ".join(shlex.quote(word) for word in (python, "-c", READ_CHUNK, src, str(offset), str(length))))
            if done.get("rc") != 0:
                raise OvatoolError(f"reading {src} on the host failed: {str(done.get('stderr')).strip()[-300:]}")
            return base64.b64decode(done["stdout"])

        options = UploadOptions(
            src=src, dest=args["dest"], force=args["force"], check_mode=self._task.check_mode,
            private_key=args["private_key"], password=args["password"], known_hosts=args["known_hosts"],
            host_key_checking=args["host_key_checking"], timeout=args["timeout"], retry_seconds=args["retry_seconds"])
        try:
            return dict(result, **relay_sftp(options, int(facts["size"]), facts["sha256"], fetch))
        except OvatoolError as exc:
            text = str(exc)
            return dict(result, failed=True, via="controller",
                        msg=text + (" (on the controller)" if isinstance(exc, MissingLibrary) else ""))

    def _host(self, args, task_vars):
        return self.host_module("ova_upload_parts", args, task_vars)

    def _send_parts(self, signer, parts, host, task_vars):
        """Every part, in rounds: the parts not sent yet get URLs signed now, and the host sends what it can
        while they live (it starts none after STOP_AFTER of their lifetime, and leaves those the store calls
        expired). Temporary credentials that boto3 refreshes thus outlast an upload of any length. A round that
        sends nothing is tried again only when an outage took the whole of it (up to retry_seconds without a part
        sent); URLs refused sooner than they should end mean wrong clocks or credentials, and fail. Returns the
        parts' ETags in order and the number of rounds."""
        etags, rounds, progress = [], 0, time.monotonic()
        while parts:
            seconds = signer.lifetime()
            rounds += 1
            began = time.monotonic()
            sent = self._host(dict(host, parts=[dict(part, url=signer.url(part["number"], seconds)) for part in parts],
                                   stop_after=seconds * STOP_AFTER), task_vars)
            if sent.get("failed"):
                raise RuntimeError(f"the host could not send the parts: {sent.get('msg')}")
            now = time.monotonic()
            if sent.get("etags"):
                progress = now
            elif now - began < seconds * STOP_AFTER or now - progress >= host["retry_seconds"]:
                raise RuntimeError(
                    f"the store refused the URLs of round {rounds} as expired, and no part was sent while they lived "
                    f"({seconds} s): check the clocks of the controller and the store, raise presign_seconds, or give "
                    "the controller credentials that last longer (or that boto3 can refresh)")
            etags += sent.get("etags") or []
            left = set(sent.get("left") or [])
            parts = [part for part in parts if part["number"] in left]
        return sorted(etags, key=lambda part: part["number"]), rounds

    def _s3(self, args, task_vars, result):
        from botocore.exceptions import BotoCoreError, ClientError  # pylint: disable=import-outside-toplevel

        src = args["src"]
        dest = into_folder(args["dest"], src)
        bucket, key = s3util.split(dest)
        if not bucket or not key:
            return dict(result, failed=True, msg=f"{redact(dest)!r}: an S3 destination is s3://bucket/key")
        validate = args["validate_certs"]
        began = time.monotonic()
        facts = self._host({"src": src}, task_vars)
        if facts.get("failed"):
            return dict(result, failed=True, msg=f"reading {src} on the host failed: {facts.get('msg')}")
        size, sha256 = facts["size"], facts["sha256"]
        result.update(src=src, url=redact(dest), size=size, sha256=sha256, via="controller")
        client = s3util.client(s3util.S3Settings.from_params(args))
        upload_id = None
        window = RetryWindow(args["retry_seconds"])
        try:
            head = s3util.call(window, "S3 HEAD", lambda: s3util.head(client, bucket, key))
            if head and head["ContentLength"] == size and head.get("Metadata", {}).get("sha256") == sha256 \
                    and not args["force"]:
                return dict(result, changed=False, msg="the destination already holds this file (same size and SHA256)")
            if self._task.check_mode:
                return dict(result, changed=True, msg="would upload")
            part_size = max(MIN_PART, args["part_size_mb"] * 1024 * 1024,
                            math.ceil(size / MAX_PARTS))
            upload_id = s3util.call(window, "starting the upload",
                                    lambda: s3util.start(client, bucket, key, {"sha256": sha256}))
            parts = [{"number": number, "offset": offset, "size": min(part_size, size - offset)}
                     for number, offset in enumerate(range(0, max(size, 1), part_size), 1)]
            host = {"src": src, "threads": args["threads"], "timeout": args["timeout"], "validate_certs": validate,
                    "retry_seconds": args["retry_seconds"]}
            etags, rounds = self._send_parts(_Signer(client, {"Bucket": bucket, "Key": key, "UploadId": upload_id},
                                                     args["presign_seconds"]), parts, host, task_vars)
            result["renewals"] = rounds - 1
            done = {"Parts": [{"PartNumber": p["number"], "ETag": p["etag"]} for p in etags]}
            s3util.call(window, "completing the upload", lambda: client.complete_multipart_upload(
                Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload=done))
            upload_id = None
            head = s3util.call(window, "S3 HEAD", lambda: s3util.head(client, bucket, key))
            if not head or head["ContentLength"] != size or head.get("Metadata", {}).get("sha256") != sha256:
                return dict(result, failed=True, msg="after the upload, the object's size or SHA256 metadata differs")
        except (BotoCoreError, ClientError, RuntimeError, KeyError, OvatoolError) as exc:
            return dict(result, failed=True, msg=f"S3 upload failed: {exc}")
        finally:
            if upload_id is not None:  # nothing half-done stays behind
                s3util.abort(client, bucket, key, upload_id)
        seconds = time.monotonic() - began
        return dict(result, changed=True, seconds=round(seconds, 3), mbps=round(size / MB / seconds, 1) if seconds else 0.0)


class _Signer:
    """Signs the part URLs of one multipart upload, each round with the controller's current credentials."""

    def __init__(self, client, ids, presign_seconds):
        self.client, self.ids, self.presign_seconds = client, ids, presign_seconds

    def lifetime(self):
        return s3util.lifetime(self.client, self.presign_seconds)

    def url(self, number, seconds):
        return s3util.part_url(self.client, self.ids, number, seconds)
