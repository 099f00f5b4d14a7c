# -*- coding: utf-8 -*-
# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The controller's S3 side (boto3, the credentials): multipart uploads the host feeds through presigned URLs.

Shared by the ova_upload and ova_export action plugins and by the ``ovatool`` command. The host never gets a
key: only URLs signed (SigV4) for one part, or for completing or aborting one upload, valid ``PRESIGN_SECONDS``.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple
from urllib.parse import unquote, urlsplit

PRESIGN_SECONDS = 24 * 3600
FINGERPRINT = "ovatool-fingerprint"  # object metadata: what an exported OVA was made from
# the options of ova_upload and ova_export that only the controller reads (the host never gets them)
CONNECTION_OPTIONS = ("endpoint_url", "access_key", "secret_key", "session_token", "region")


def boto3_or_none():
    try:
        import boto3  # pylint: disable=import-outside-toplevel

        return boto3
    except ImportError:
        return None


def split(url: str) -> Tuple[str, str]:
    """``s3://bucket/key`` -> (bucket, key); an empty part means the URL names no object."""
    parts = urlsplit(url)
    return parts.netloc, unquote(parts.path.lstrip("/"))


def client(args: Dict[str, Any]):
    """A boto3 S3 client from the options (``endpoint_url``, ``access_key``, ``secret_key``, ``session_token``,
    ``region``, ``validate_certs``), else boto3's usual chain."""
    from botocore.config import Config  # pylint: disable=import-outside-toplevel

    boto3 = boto3_or_none()
    if boto3 is None:
        raise RuntimeError("the boto3 Python package is needed on the controller (or in the execution environment)")
    session = boto3.session.Session(
        aws_access_key_id=args.get("access_key"), aws_secret_access_key=args.get("secret_key"),
        aws_session_token=args.get("session_token"), region_name=args.get("region"))
    return session.client("s3", endpoint_url=args.get("endpoint_url"), verify=bool(args.get("validate_certs", True)),
                          config=Config(retries={"max_attempts": 5, "mode": "standard"},
                                        signature_version="s3v4"))  # SigV4 URLs: what every region accepts


def head(s3, bucket: str, key: str) -> Optional[Dict[str, Any]]:
    """The object's HEAD, or None when there is no such object."""
    from botocore.exceptions import ClientError  # pylint: disable=import-outside-toplevel

    try:
        return s3.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if str(exc.response.get("Error", {}).get("Code")) in ("404", "NoSuchKey", "NotFound"):
            return None
        raise


def content_type(key: str) -> str:
    return "application/x-virtualbox-ova" if key.lower().endswith(".ova") else "application/octet-stream"


def start(s3, bucket: str, key: str, metadata: Dict[str, str]) -> str:
    return s3.create_multipart_upload(Bucket=bucket, Key=key, Metadata=metadata,
                                      ContentType=content_type(key))["UploadId"]


def part_url(s3, bucket: str, key: str, upload_id: str, number: int) -> str:
    return s3.generate_presigned_url("upload_part", ExpiresIn=PRESIGN_SECONDS, Params={
        "Bucket": bucket, "Key": key, "UploadId": upload_id, "PartNumber": number})


def presigned_upload(s3, bucket: str, key: str, upload_id: str, parts: int) -> Dict[str, Any]:
    """Everything the host needs to write the upload and to end it either way."""
    ids = {"Bucket": bucket, "Key": key, "UploadId": upload_id}
    return {"urls": [part_url(s3, bucket, key, upload_id, number) for number in range(1, parts + 1)],
            "complete_url": s3.generate_presigned_url("complete_multipart_upload", ExpiresIn=PRESIGN_SECONDS,
                                                      Params=ids),
            "abort_url": s3.generate_presigned_url("abort_multipart_upload", ExpiresIn=PRESIGN_SECONDS, Params=ids)}


def abort(s3, bucket: str, key: str, upload_id: str) -> None:
    """Abort, quietly: the upload may be gone already (the host aborted or completed it)."""
    from botocore.exceptions import BotoCoreError, ClientError  # pylint: disable=import-outside-toplevel

    try:
        s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
    except (BotoCoreError, ClientError):
        pass


def abort_stale(s3, bucket: str, key: str) -> List[str]:
    """Abort the incomplete uploads to exactly ``key`` (left by a run that was killed or lost its host); returns
    when each had been started."""
    found = []
    listed = s3.list_multipart_uploads(Bucket=bucket, Prefix=key)
    for upload in listed.get("Uploads", []):
        if upload.get("Key") == key:
            abort(s3, bucket, key, upload["UploadId"])
            found.append(str(upload.get("Initiated", "at an unknown time")))
    return found

