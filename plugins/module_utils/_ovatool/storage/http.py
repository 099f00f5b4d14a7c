# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""http:// and https:// destinations: one streaming PUT with X-Checksum-Sha256 (Artifactory, Nexus).

A PUT cut by the network, or answered 5xx/408/429, is sent again whole (a PUT replaces the resource) within the
retry window (storage/retry): until the server has been silent for ``retry_seconds``."""
from __future__ import annotations

import base64
import http.client
import ssl
from typing import Optional
from urllib.parse import quote, unquote, urlsplit

from ..errors import OvatoolError
from .common import UploadOptions, redact
from .retry import RetryWindow, Transient, retrying, transient_status


class HttpDestination:
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
        self.window = RetryWindow(options.retry_seconds)

    def __enter__(self) -> "HttpDestination":
        return self

    def __exit__(self, *exc: object) -> None:
        pass  # every request opens and closes its own connection

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
        def attempt() -> http.client.HTTPResponse:
            connection = self._connection()
            try:
                connection.request("HEAD", self.path, headers=self.headers)
                response = connection.getresponse()
                response.read()
            except (OSError, http.client.HTTPException) as exc:
                raise Transient(str(exc)) from None
            finally:
                connection.close()
            if transient_status(response.status):
                raise Transient(f"{response.status} {response.reason}")
            return response

        response = retrying(self.window, "HEAD", attempt, self.url)
        return response if response.status == 200 else None

    def existing(self, size: int, sha256: str) -> bool:
        head = self._head()
        return bool(head) and head.getheader("Content-Length") == str(size) and (
            (head.getheader("X-Checksum-Sha256") or "").lower() == sha256)

    def put(self, src: str, size: int, sha256: str) -> None:
        headers = dict(self.headers, **{"Content-Length": str(size), "X-Checksum-Sha256": sha256,
                                        "Content-Type": "application/octet-stream"})

        def attempt() -> None:
            connection = self._connection()
            try:
                with open(src, "rb") as body:
                    connection.request("PUT", self.path, body=body, headers=headers)  # streamed in blocks
                response = connection.getresponse()
                text = response.read(2048).decode("utf-8", "replace")
            except OSError as exc:
                if exc.filename == src:  # the source itself, not the network
                    raise OvatoolError(f"cannot read the file: {exc.strerror}", src) from None
                raise Transient(str(exc)) from None
            except http.client.HTTPException as exc:
                raise Transient(str(exc)) from None
            finally:
                connection.close()
            if response.status not in (200, 201, 204):
                answer = f"{response.status} {response.reason}: {text.strip()[:200]}"
                if transient_status(response.status):
                    raise Transient(answer)
                raise OvatoolError(f"PUT answered {answer}", self.url)

        retrying(self.window, "PUT", attempt, self.url)

    def check(self, size: int, sha256: str) -> None:
        head = self._head()
        if head is not None and head.getheader("Content-Length") not in (None, str(size)):
            raise OvatoolError("after the upload, the server reports another size", self.url)
