# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""s3:// destinations with boto3: a multipart upload with parallel parts, the SHA256 kept as object metadata."""
from __future__ import annotations

from typing import Any, Dict, Optional
from urllib.parse import unquote, urlsplit

from ..errors import MissingLibrary, OvatoolError
from .common import UploadOptions


class S3Destination:
    def __init__(self, options: UploadOptions) -> None:
        try:
            import boto3
            from boto3.s3.transfer import TransferConfig
            from botocore.config import Config
        except ImportError:
            raise MissingLibrary("boto3", "s3") from None
        parts = urlsplit(options.dest)
        self.bucket = parts.netloc
        self.key = unquote(parts.path.lstrip("/"))
        if not self.bucket or not self.key or self.key.endswith("/"):
            raise OvatoolError(f"{options.dest!r}: an S3 destination is s3://bucket/key")
        session = boto3.session.Session(aws_access_key_id=options.access_key,
                                        aws_secret_access_key=options.secret_key,
                                        aws_session_token=options.session_token, region_name=options.region)
        self.client = session.client("s3", endpoint_url=options.endpoint_url, verify=options.validate_certs,
                                     config=Config(retries={"max_attempts": 5, "mode": "standard"},
                                                   max_pool_connections=max(10, options.threads * 2)))
        part = max(5, options.part_size_mb) * 1024 * 1024
        self.transfer = TransferConfig(multipart_threshold=part, multipart_chunksize=part,
                                       max_concurrency=max(1, options.threads), use_threads=True)
        self.url = options.dest

    def __enter__(self) -> "S3Destination":
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.close()

    def _head(self) -> Optional[Dict[str, Any]]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return self.client.head_object(Bucket=self.bucket, Key=self.key)
        except ClientError as exc:
            if str(exc.response.get("Error", {}).get("Code")) in ("404", "NoSuchKey", "NotFound"):
                return None
            raise OvatoolError(f"S3 HEAD failed: {exc}", self.url) from None
        except BotoCoreError as exc:  # no connection, bad endpoint, credentials missing
            raise OvatoolError(f"S3 HEAD failed: {exc}", self.url) from None

    def existing(self, size: int, sha256: str) -> bool:
        head = self._head()
        return bool(head) and head["ContentLength"] == size and head.get("Metadata", {}).get("sha256") == sha256

    def put(self, src: str, size: int, sha256: str) -> None:
        from boto3.exceptions import S3UploadFailedError
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.upload_file(src, self.bucket, self.key, Config=self.transfer,
                                    ExtraArgs={"Metadata": {"sha256": sha256},
                                               "ContentType": "application/x-virtualbox-ova"
                                               if src.lower().endswith(".ova") else "application/octet-stream"})
        except (S3UploadFailedError, BotoCoreError, ClientError) as exc:
            raise OvatoolError(f"S3 upload failed: {exc}", self.url) from None

    def check(self, size: int, sha256: str) -> None:
        head = self._head()
        if not head or head["ContentLength"] != size or head.get("Metadata", {}).get("sha256") != sha256:
            raise OvatoolError("after the upload, the object's size or SHA256 metadata differs", self.url)
