# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Random access to a file behind an HTTP(S) URL by Range requests (a presigned S3 GET), standard library only.

What ``verify`` needs to check an OVA in object storage without a local copy: ``pread`` for headers, the
descriptor and stream-disk structures (served from a small cache of blocks, so that many small reads cost few
requests), a streamed digest of a member (one request, read in blocks), and a file object for ``tarfile``.
"""
from __future__ import annotations

import hashlib
import http.client
import io
import re
import threading
import time
from collections import OrderedDict
from typing import Tuple
from urllib.parse import urlsplit

from ..errors import OvatoolError
from .presigned import connect

BLOCK = 1 << 20  # cached reads
CACHED_BLOCKS = 16
STREAM_BLOCK = 8 << 20  # digests
_TOTAL = re.compile(r"bytes \d+-\d+/(\d+)")


class RangedUrl:
    """``size``, ``pread(length, offset)``, ``digest(algorithm, offset, size)`` and ``fileobj()`` over a URL."""

    def __init__(self, url: str, timeout: float = 60, validate_certs: bool = True, retries: int = 3,
                 label: str = "") -> None:
        self.url = urlsplit(url)
        self.timeout = timeout
        self.validate_certs = validate_certs
        self.retries = retries
        self.label = label or f"{self.url.scheme}://{self.url.hostname}{self.url.path}"  # no signature in messages
        self.cache: "OrderedDict[int, bytes]" = OrderedDict()
        self.lock = threading.Lock()
        response, connection = self._get(0, 0)
        try:
            match = _TOTAL.match(response.getheader("Content-Range") or "")
            response.read()
        finally:
            connection.close()
        if not match:
            raise OvatoolError("the server does not answer range requests (no Content-Range)", self.label)
        self.size = int(match.group(1))

    def _get(self, first: int, last: int) -> Tuple[http.client.HTTPResponse, http.client.HTTPConnection]:
        """An open response for bytes [first, last] (the caller reads it and closes the connection)."""
        path = self.url.path + (f"?{self.url.query}" if self.url.query else "")
        problem = ""
        for attempt in range(self.retries + 1):
            connection = connect(self.url, self.timeout, self.validate_certs)
            try:
                connection.request("GET", path, headers={"Range": f"bytes={first}-{last}"})
                response = connection.getresponse()
                if response.status == 206:
                    return response, connection
                problem = f"{response.status} {response.reason}: {response.read(300).decode('utf-8', 'replace')}"
                if response.status == 416 or (response.status < 500 and response.status not in (408, 429)):
                    connection.close()
                    break
            except (OSError, http.client.HTTPException) as exc:
                problem = str(exc)
            connection.close()
            if attempt < self.retries:
                time.sleep(min(8.0, 0.5 * 2 ** attempt))
        raise OvatoolError(f"cannot read bytes {first}-{last}: {problem.strip()}", self.label)

    def _fetch(self, first: int, length: int) -> bytes:
        response, connection = self._get(first, first + length - 1)
        try:
            data = response.read()
        except (OSError, http.client.HTTPException) as exc:
            raise OvatoolError(f"reading bytes at {first} failed: {exc}", self.label) from None
        finally:
            connection.close()
        if len(data) != length:
            raise OvatoolError(f"asked for {length} bytes at {first}, got {len(data)}", self.label)
        return data

    def _block(self, number: int) -> bytes:
        with self.lock:
            data = self.cache.get(number)
            if data is not None:
                self.cache.move_to_end(number)
                return data
        start = number * BLOCK
        data = self._fetch(start, min(BLOCK, self.size - start))
        with self.lock:
            self.cache[number] = data
            while len(self.cache) > CACHED_BLOCKS:
                self.cache.popitem(last=False)
        return data

    def pread(self, length: int, offset: int) -> bytes:
        """Up to ``length`` bytes at ``offset`` (fewer only at the end)."""
        end = min(offset + max(length, 0), self.size)
        pieces = []
        at = offset
        while at < end:
            block = self._block(at // BLOCK)
            inner = at % BLOCK
            piece = block[inner:inner + end - at]
            if not piece:
                break
            pieces.append(piece)
            at += len(piece)
        return b"".join(pieces)

    def digest(self, algorithm: str, offset: int, size: int) -> str:
        """Digest of [offset, offset+size), streamed in one request."""
        digest = hashlib.new(algorithm)
        if size <= 0:
            return digest.hexdigest()
        response, connection = self._get(offset, offset + size - 1)
        try:
            left = size
            while left:
                chunk = response.read(min(STREAM_BLOCK, left))
                if not chunk:
                    raise OvatoolError(f"the server ended the body {left} bytes early", self.label)
                digest.update(chunk)
                left -= len(chunk)
        except (OSError, http.client.HTTPException) as exc:
            raise OvatoolError(f"reading bytes at {offset} failed: {exc}", self.label) from None
        finally:
            connection.close()
        return digest.hexdigest()

    def fileobj(self) -> io.RawIOBase:
        return _Reader(self)


class _Reader(io.RawIOBase):
    """A seekable read-only file over a RangedUrl (for ``tarfile``)."""

    def __init__(self, source: RangedUrl) -> None:
        super().__init__()
        self.source = source
        self.position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.position, io.SEEK_END: self.source.size}[whence]
        self.position = max(0, base + offset)
        return self.position

    def readinto(self, buffer) -> int:
        view = memoryview(buffer).cast("B")
        data = self.source.pread(len(view), self.position)
        view[:len(data)] = data
        self.position += len(data)
        return len(data)
