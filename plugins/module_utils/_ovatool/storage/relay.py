# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""An SFTP upload relayed by the controller for a host without paramiko: streamed, nothing staged.

The controller (paramiko, the SFTP credentials) reads the file from the host in chunks (``fetch(offset,
length)``, one remote command each) and writes them to the SFTP server as it goes; memory holds one chunk. The
destination is the host-side one (storage/sftp): temporary name, rename, size check, idempotence by size and
SHA256 (the host hashes the file; the controller hashes what it relays and compares).
"""
from __future__ import annotations

import hashlib
import io
import time
from dataclasses import replace
from typing import Any, Callable, Dict

from ..errors import OvatoolError
from .common import MB, UploadOptions, into_folder, redact
from .sftp import SftpDestination

CHUNK = 8 * 1024 * 1024


class ChunkedReader(io.RawIOBase):
    """``size`` bytes read in order through ``fetch(offset, length)``, one chunk in memory at a time; hashed once
    each (``seek`` back, for a transfer that goes on after a cut, reads again without hashing twice)."""

    def __init__(self, fetch: Callable[[int, int], bytes], size: int, chunk: int = CHUNK) -> None:
        super().__init__()
        self.fetch = fetch
        self.size = size
        self.chunk = chunk
        self.offset = 0  # of ``buffer`` in the file
        self.buffer = b""
        self.at = 0  # in ``buffer``
        self.sha256 = hashlib.sha256()
        self.hashed = 0  # bytes of the file in ``sha256``

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        if whence != 0 or not 0 <= offset <= self.hashed:
            raise OvatoolError(f"the relay cannot go to {offset} (it has read {self.hashed} bytes)")
        self.offset, self.buffer, self.at = offset, b"", 0
        return offset

    def read(self, size: int = -1) -> bytes:
        if self.at >= len(self.buffer):
            self.offset += len(self.buffer)
            self.at = 0
            self.buffer = b""
            if self.offset >= self.size:
                return b""
            length = min(self.chunk, self.size - self.offset)
            self.buffer = self.fetch(self.offset, length)
            if len(self.buffer) != length:
                raise OvatoolError(f"the host sent {len(self.buffer)} bytes at {self.offset}, not {length}")
            if self.offset + length > self.hashed:
                self.sha256.update(memoryview(self.buffer)[self.hashed - self.offset:])
                self.hashed = self.offset + length
        count = len(self.buffer) - self.at if size is None or size < 0 else min(size, len(self.buffer) - self.at)
        data = self.buffer[self.at:self.at + count]
        self.at += count
        return data


def relay_sftp(options: UploadOptions, size: int, sha256: str, fetch: Callable[[int, int], bytes],
               chunk: int = CHUNK) -> Dict[str, Any]:
    """ova_upload's result for ``options.src`` (on the host, ``size`` bytes, ``sha256``) sent to ``options.dest``
    (sftp://) from here. Key and known_hosts files are read here, on the controller."""
    options = replace(options, dest=into_folder(options.dest, options.src))
    result: Dict[str, Any] = {"src": options.src, "url": redact(options.dest), "size": size, "sha256": sha256,
                              "via": "controller"}
    began = time.monotonic()
    with SftpDestination(options) as target:
        if target.existing(size, sha256) and not options.force:
            return dict(result, changed=False, msg="the destination already holds this file (same size and SHA256)")
        if options.check_mode:
            return dict(result, changed=True, msg="would upload")
        reader = ChunkedReader(fetch, size, chunk)

        def same_file() -> None:
            if reader.sha256.hexdigest() != sha256:
                raise OvatoolError("the file changed on the host while it was relayed", options.src)

        target.put_stream(reader, size, sha256, same_file)
        target.check(size, sha256)
    seconds = time.monotonic() - began
    return dict(result, changed=True, seconds=round(seconds, 3), mbps=round(size / MB / seconds, 1) if seconds else 0.0)
