# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The host's half of an S3 upload run from the controller: PUT byte ranges of a file to presigned URLs.

The controller holds the credentials and boto3: it starts the multipart upload, signs one URL per part and
completes (or aborts) the upload. The host needs only the standard library and never sees a key: each part is a
plain HTTP(S) PUT of ``size`` bytes read from ``offset``, streamed from the file (memory per part in flight is the
HTTP client's block, not the part), retried on its own, several parts at once. Every request of one transfer
retries within one ``RetryWindow`` (storage/retry): until the destination has not answered for
``retry_seconds``.
"""
from __future__ import annotations

import http.client
import os
import ssl
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Optional, Sequence, Tuple
from urllib.parse import SplitResult, urlsplit

from ..errors import OvatoolError
from .retry import RetryWindow, Transient, retrying, transient_status
from .urlbook import UrlExpired

BLOCK = 1 << 20


@dataclass(frozen=True)
class Link:
    """How requests reach the destination: a socket timeout, TLS verification, and the retry window they share."""
    timeout: float = 60
    validate_certs: bool = True
    window: RetryWindow = field(default_factory=RetryWindow)


@dataclass(frozen=True)
class Part:
    number: int
    offset: int
    size: int
    url: str


class _Range:
    """``size`` bytes of an open file from ``offset``, read in blocks (an http.client request body)."""

    def __init__(self, fd: int, offset: int, size: int) -> None:
        self.fd = fd
        self.at = offset
        self.left = size

    def read(self, count: int = BLOCK) -> bytes:
        if self.left <= 0:
            return b""
        data = os.pread(self.fd, min(count if count and count > 0 else BLOCK, self.left), self.at)
        if not data:
            raise OvatoolError("the file became shorter during the upload")
        self.at += len(data)
        self.left -= len(data)
        return data


def connect(url: SplitResult, timeout: float, validate_certs: bool) -> http.client.HTTPConnection:
    if url.scheme == "https":
        context = ssl.create_default_context()
        if not validate_certs:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return http.client.HTTPSConnection(url.hostname, url.port, timeout=timeout, context=context, blocksize=BLOCK)
    if url.scheme != "http":
        raise OvatoolError(f"a presigned URL must be http:// or https://, not {url.scheme}://")
    return http.client.HTTPConnection(url.hostname, url.port, timeout=timeout, blocksize=BLOCK)


def request(method: str, signed_url: str, body: Callable[[], Any], size: int, what: str,
            link: Link) -> Tuple[int, Dict[str, str], str]:
    """One request to a presigned URL, retried on network errors and 5xx/408/429 with a fresh ``body()``
    (bytes, a memoryview or an object with ``read``) of ``size`` bytes while ``link.window`` allows. Returns
    (status, headers, text); raises when the window is over or the answer refuses the request."""
    url = urlsplit(signed_url)
    path = url.path + (f"?{url.query}" if url.query else "")

    def attempt() -> Tuple[int, Dict[str, str], str]:
        connection = connect(url, link.timeout, link.validate_certs)
        try:
            connection.request(method, path, body=body(), headers={"Content-Length": str(size)})
            response = connection.getresponse()
            text = response.read(1 << 16).decode("utf-8", "replace")
        except (OSError, http.client.HTTPException) as exc:
            raise Transient(str(exc)) from None
        finally:
            connection.close()
        # S3 may answer 200 and put an <Error> in the body (CompleteMultipartUpload does)
        if 200 <= response.status < 300 and "<Error>" not in text:
            return response.status, {k.lower(): v for k, v in response.getheaders()}, text
        last = f"{response.status} {response.reason}: {text.strip()[:300]}"
        if response.status == 403 and "expired" in text.lower():  # AWS, MinIO, SeaweedFS: "Request has expired"
            raise UrlExpired(f"{what} failed: {last}")
        if 200 <= response.status < 300 or not transient_status(response.status):
            raise OvatoolError(f"{what} failed: {last}")  # refused (forged signature, no such upload)
        raise Transient(last)

    return retrying(link.window, what, attempt)


def put_part(signed_url: str, number: int, body: Callable[[], Any], size: int, link: Link) -> str:
    """PUT one part; returns its ETag."""
    headers = request("PUT", signed_url, body, size, f"uploading part {number}", link)[1]
    if not headers.get("etag"):
        raise OvatoolError(f"uploading part {number} failed: the server answered without an ETag")
    return headers["etag"]


def put_parts(src: str, parts: Sequence[Dict[str, Any]], threads: int = 4, link: Optional[Link] = None,
              stop_after: Optional[float] = None) -> Dict[str, Any]:
    """PUT each part (``number``, ``offset``, ``size``, ``url``) of ``src``; returns ``etags`` (``[{number, etag}]``)
    and ``left``, the numbers of the parts not sent.

    Without ``stop_after`` every part is sent or the call fails. With it (seconds), the URLs are about to end: no
    part starts after that many seconds, and a part whose URL the store calls expired is left too, for the
    controller to sign again."""
    wanted = [Part(int(p["number"]), int(p["offset"]), int(p["size"]), str(p["url"])) for p in parts]
    began = time.monotonic()
    try:
        fd = os.open(src, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise OvatoolError(f"cannot read the file: {exc.strerror}", src) from None

    def send(part: Part) -> Optional[str]:
        if stop_after is not None and time.monotonic() - began >= stop_after:
            return None
        try:
            return put_part(part.url, part.number, lambda: _Range(fd, part.offset, part.size), part.size,
                            link or Link())
        except UrlExpired:
            if stop_after is None:
                raise
            return None

    try:
        size = os.fstat(fd).st_size
        for part in wanted:
            if part.offset < 0 or part.size < 0 or part.offset + part.size > size:
                raise OvatoolError(f"part {part.number} ({part.offset}+{part.size}) lies outside the file of "
                                   f"{size} bytes", src)
        with ThreadPoolExecutor(max_workers=max(1, threads), thread_name_prefix="ovatool-part") as pool:
            etags = list(pool.map(send, wanted))
    finally:
        os.close(fd)
    return {"etags": [{"number": part.number, "etag": etag} for part, etag in zip(wanted, etags) if etag],
            "left": [part.number for part, etag in zip(wanted, etags) if not etag]}
