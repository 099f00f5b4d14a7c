# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Put a file where people fetch it: S3 (boto3), SFTP (paramiko), HTTP PUT, a local folder.

Every transfer streams (nothing is read into memory whole), lands under a
temporary name or as an incomplete multipart upload until it is complete, and
is checked afterwards (size, and SHA256 where the destination can tell).
A destination that already holds the same size and SHA256 is left alone.
boto3 and paramiko are imported only for their schemes.
"""
from __future__ import annotations

import base64
import hashlib
import http.client
import os
import shutil
import ssl
import time
import uuid
from dataclasses import dataclass, field, replace
from typing import Any, Dict, Optional
from urllib.parse import quote, unquote, urlsplit

from ..errors import OvatoolError, describe_os_error
from ..fileio import file_digest
from ..output import AtomicOutput

MB = 1000 * 1000
CHUNK = 8 * 1024 * 1024


class MissingLibrary(OvatoolError):
    """A Python package needed for this destination is not installed."""

    def __init__(self, library: str, scheme: str) -> None:
        self.library = library
        super().__init__(f"the {library} Python package is needed for {scheme}:// destinations")


@dataclass
class UploadOptions:
    src: str
    dest: str
    force: bool = False
    validate_certs: bool = True
    check_mode: bool = False
    # S3
    endpoint_url: Optional[str] = None
    access_key: Optional[str] = None
    secret_key: Optional[str] = None
    session_token: Optional[str] = None
    region: Optional[str] = None
    part_size_mb: int = 64
    threads: int = 8
    # SFTP
    private_key: Optional[str] = None
    password: Optional[str] = None
    known_hosts: Optional[str] = None
    host_key_checking: bool = True
    # HTTP
    url_username: Optional[str] = None
    url_password: Optional[str] = None
    headers: Dict[str, str] = field(default_factory=dict)
    timeout: float = 60.0


def file_sha256(path: str) -> str:
    return file_digest(path, "sha256")


def redact(url: str) -> str:
    """The URL without any password it may carry, for messages and results."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return parts._replace(netloc=f"{user}:***@{netloc}" if user else netloc).geturl()


def into_folder(dest: str, src: str) -> str:
    """``dest`` as the file's own URL: a ``dest`` whose path ends in ``/`` is a folder (or key prefix) to which
    the source's name is appended, as ``ansible.builtin.copy`` does; any other ``dest`` names the file."""
    parts = urlsplit(dest)
    if not parts.path.endswith("/"):
        return dest
    return parts._replace(path=parts.path + quote(os.path.basename(src), safe="")).geturl()


def upload(options: UploadOptions) -> Dict[str, Any]:
    src = os.path.abspath(os.path.expanduser(options.src))
    if not os.path.isfile(src):
        raise OvatoolError("no such file" if not os.path.exists(src) else "not a regular file", src)
    options = replace(options, dest=into_folder(options.dest, src))
    scheme = urlsplit(options.dest).scheme.lower()
    handlers = {"file": _FileDest, "s3": _S3Dest, "sftp": _SftpDest, "http": _HttpDest, "https": _HttpDest}
    if scheme not in handlers:
        raise OvatoolError(f"unsupported destination {redact(options.dest)!r}: use s3://, sftp://, https://, "
                           "http:// or file://")
    size = os.path.getsize(src)
    began = time.monotonic()
    sha256 = file_sha256(src)
    target = handlers[scheme](options)
    result: Dict[str, Any] = {"src": src, "url": redact(options.dest), "size": size, "sha256": sha256}
    existing = target.existing(size, sha256)
    if existing and not options.force:
        result.update(changed=False, msg="the destination already holds this file (same size and SHA256)")
        return result
    if options.check_mode:
        result.update(changed=True, msg="would upload")
        return result
    began_transfer = time.monotonic()
    target.put(src, size, sha256)
    target.check(size, sha256)
    seconds = time.monotonic() - began_transfer
    result.update(changed=True, seconds=round(time.monotonic() - began, 3),
                  mbps=round(size / MB / seconds, 1) if seconds > 0 else 0.0)
    return result


class _FileDest:
    def __init__(self, options: UploadOptions) -> None:
        parts = urlsplit(options.dest)
        if parts.netloc not in ("", "localhost"):
            raise OvatoolError(f"file:// URLs name a local path, not host {parts.netloc!r}")
        self.path = unquote(parts.path)
        if os.path.isdir(self.path):
            raise OvatoolError("the destination is a folder: end it in / to upload into it", self.path)

    def existing(self, size: int, sha256: str) -> bool:
        return os.path.isfile(self.path) and os.path.getsize(self.path) == size and file_sha256(self.path) == sha256

    def put(self, src: str, size: int, sha256: str) -> None:
        try:
            os.makedirs(os.path.dirname(self.path) or "/", exist_ok=True)
            with AtomicOutput(self.path) as out, open(src, "rb") as source:
                shutil.copyfileobj(source, out.stream, CHUNK)
                out.commit()
        except OSError as exc:
            raise OvatoolError(f"copying failed: {describe_os_error(exc)}", self.path) from None

    def check(self, size: int, sha256: str) -> None:
        if os.path.getsize(self.path) != size:
            raise OvatoolError("the copy has the wrong size", self.path)


class _S3Dest:
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

    def _head(self) -> Optional[Dict[str, Any]]:
        from botocore.exceptions import ClientError

        try:
            return self.client.head_object(Bucket=self.bucket, Key=self.key)
        except ClientError as exc:
            if str(exc.response.get("Error", {}).get("Code")) in ("404", "NoSuchKey", "NotFound"):
                return None
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


class _SftpDest:
    def __init__(self, options: UploadOptions) -> None:
        try:
            import paramiko
        except ImportError:
            raise MissingLibrary("paramiko", "sftp") from None
        parts = urlsplit(options.dest)
        self.path = unquote(parts.path)
        if not parts.hostname or not self.path or self.path.endswith("/"):
            raise OvatoolError(f"{redact(options.dest)!r}: an SFTP destination is sftp://user@host[:port]/path/file")
        client = paramiko.SSHClient()
        if options.host_key_checking:
            client.load_system_host_keys()
            if options.known_hosts:
                client.load_host_keys(options.known_hosts)
            client.set_missing_host_key_policy(paramiko.RejectPolicy())
        else:
            client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
        try:
            client.connect(parts.hostname, port=parts.port or 22, username=parts.username or None,
                           password=options.password or (unquote(parts.password) if parts.password else None),
                           key_filename=options.private_key, timeout=options.timeout,
                           allow_agent=False, look_for_keys=options.private_key is None and not options.password)
        except (paramiko.SSHException, OSError) as exc:
            raise OvatoolError(f"SFTP connection failed: {exc}", redact(options.dest)) from None
        self.client = client
        self.sftp = client.open_sftp()
        self.url = redact(options.dest)

    def _size(self, path: str) -> Optional[int]:
        try:
            return self.sftp.stat(path).st_size
        except OSError:
            return None

    def existing(self, size: int, sha256: str) -> bool:
        if self._size(self.path) != size:
            return False
        digest = hashlib.sha256()
        with self.sftp.open(self.path, "rb") as remote:
            remote.prefetch(size)
            for block in iter(lambda: remote.read(CHUNK), b""):
                digest.update(block)
        return digest.hexdigest() == sha256

    def _makedirs(self, folder: str) -> None:
        """``mkdir -p`` over SFTP: the missing folders of the destination, from the top down."""
        missing = []
        while folder not in ("", "/") and self._size(folder) is None:
            missing.append(folder)
            folder = os.path.dirname(folder)
        for path in reversed(missing):
            self.sftp.mkdir(path)

    def put(self, src: str, size: int, sha256: str) -> None:
        folder, name = os.path.split(self.path)
        temp = f"{folder}/.{name}.{uuid.uuid4().hex[:12]}.partial"
        try:
            self._makedirs(folder)
            self.sftp.put(src, temp, confirm=True)
            try:
                self.sftp.posix_rename(temp, self.path)
            except OSError:  # servers without the posix-rename extension
                if self._size(self.path) is not None:
                    self.sftp.remove(self.path)
                self.sftp.rename(temp, self.path)
        except (OSError, IOError) as exc:
            try:
                self.sftp.remove(temp)
            except OSError:
                pass
            raise OvatoolError(f"SFTP upload failed: {exc}", self.url) from None

    def check(self, size: int, sha256: str) -> None:
        try:
            if self._size(self.path) != size:
                raise OvatoolError("after the upload, the remote file's size differs", self.url)
        finally:
            self.sftp.close()
            self.client.close()


class _HttpDest:
    def __init__(self, options: UploadOptions) -> None:
        parts = urlsplit(options.dest)
        if not parts.hostname:
            raise OvatoolError(f"{redact(options.dest)!r} has no host")
        self.options = options
        self.parts = parts
        self.url = redact(options.dest)
        self.path = quote(unquote(parts.path or "/"), safe="/%") + (f"?{parts.query}" if parts.query else "")
        self.headers = dict(options.headers or {})
        user = options.url_username or (unquote(parts.username) if parts.username else None)
        password = options.url_password or (unquote(parts.password) if parts.password else None)
        if user is not None:
            token = base64.b64encode(f"{user}:{password or ''}".encode()).decode()
            self.headers["Authorization"] = f"Basic {token}"

    def _connection(self) -> http.client.HTTPConnection:
        host, port = self.parts.hostname, self.parts.port
        if self.parts.scheme == "https":
            context = ssl.create_default_context()
            if not self.options.validate_certs:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            return http.client.HTTPSConnection(host, port, timeout=self.options.timeout, context=context,
                                               blocksize=1 << 20)
        return http.client.HTTPConnection(host, port, timeout=self.options.timeout, blocksize=1 << 20)

    def _head(self) -> Optional[http.client.HTTPResponse]:
        connection = self._connection()
        try:
            connection.request("HEAD", self.path, headers=self.headers)
            response = connection.getresponse()
            response.read()
            return response if response.status == 200 else None
        except (OSError, http.client.HTTPException) as exc:
            raise OvatoolError(f"HEAD failed: {exc}", self.url) from None
        finally:
            connection.close()

    def existing(self, size: int, sha256: str) -> bool:
        head = self._head()
        return bool(head) and head.getheader("Content-Length") == str(size) and (
            (head.getheader("X-Checksum-Sha256") or "").lower() == sha256)

    def put(self, src: str, size: int, sha256: str) -> None:
        headers = dict(self.headers, **{"Content-Length": str(size), "X-Checksum-Sha256": sha256,
                                        "Content-Type": "application/octet-stream"})
        connection = self._connection()
        try:
            with open(src, "rb") as body:
                connection.request("PUT", self.path, body=body, headers=headers)  # streamed in blocks
            response = connection.getresponse()
            text = response.read(2048).decode("utf-8", "replace")
        except (OSError, http.client.HTTPException) as exc:
            raise OvatoolError(f"PUT failed: {exc}", self.url) from None
        finally:
            connection.close()
        if response.status not in (200, 201, 204):
            raise OvatoolError(f"PUT answered {response.status} {response.reason}: {text.strip()[:200]}", self.url)

    def check(self, size: int, sha256: str) -> None:
        head = self._head()
        if head is not None and head.getheader("Content-Length") not in (None, str(size)):
            raise OvatoolError("after the upload, the server reports another size", self.url)
