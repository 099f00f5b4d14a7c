# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""sftp:// destinations with paramiko: a temporary name, renamed when complete; missing folders created."""
from __future__ import annotations

import hashlib
import os
import uuid
from typing import BinaryIO, Callable, Optional
from urllib.parse import unquote, urlsplit

from ..errors import OvatoolError
from .common import CHUNK, MissingLibrary, UploadOptions, redact


class SftpDestination:
    def __init__(self, options: UploadOptions) -> None:
        try:
            import paramiko
        except ImportError:
            raise MissingLibrary("paramiko", "sftp") from None
        parts = urlsplit(options.dest)
        self.path = unquote(parts.path)
        if not parts.hostname or not self.path or self.path.endswith("/"):
            raise OvatoolError(f"{redact(options.dest)!r}: an SFTP destination is sftp://user@host[:port]/path/file")
        self.url = redact(options.dest)
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
            self.sftp = client.open_sftp()
        except (paramiko.SSHException, OSError) as exc:
            client.close()
            raise OvatoolError(f"SFTP connection failed: {exc}", self.url) from None
        self.client = client

    def __enter__(self) -> "SftpDestination":
        return self

    def __exit__(self, *exc: object) -> None:
        self.sftp.close()
        self.client.close()

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
        self._land(lambda temp: self.sftp.put(src, temp, confirm=True))

    def put_stream(self, reader: BinaryIO, size: int, before_rename: Callable[[], None] = lambda: None) -> None:
        """The bytes of ``reader`` (``size`` of them, read in order), as ``put`` lands a file; ``before_rename``
        may refuse them (raise) while they are still under the temporary name."""
        def send(temp: str) -> None:
            self.sftp.putfo(reader, temp, file_size=size, confirm=True)
            before_rename()

        self._land(send)

    def _land(self, send: Callable[[str], object]) -> None:
        """``send(temporary path)``, then the rename into place; the temporary file is removed on failure."""
        folder, name = os.path.split(self.path)
        temp = f"{folder}/.{name}.{uuid.uuid4().hex[:12]}.partial"
        try:
            self._makedirs(folder)
            send(temp)
            try:
                self.sftp.posix_rename(temp, self.path)
            except OSError:  # servers without the posix-rename extension
                if self._size(self.path) is not None:
                    self.sftp.remove(self.path)
                self.sftp.rename(temp, self.path)
        except (OSError, OvatoolError) as exc:
            try:
                self.sftp.remove(temp)
            except OSError:
                pass
            if isinstance(exc, OvatoolError):
                raise
            raise OvatoolError(f"SFTP upload failed: {exc}", self.url) from None

    def check(self, size: int, sha256: str) -> None:
        if self._size(self.path) != size:
            raise OvatoolError("after the upload, the remote file's size differs", self.url)
