# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""sftp:// destinations with paramiko: a temporary name, renamed when complete; missing folders created.

A connection the network cuts (the session ends, the server goes away) is opened again, and the transfer goes on
from the size the temporary file has on the server, within the retry window (storage/retry): until the server has
been silent for ``retry_seconds``. What the server refuses on a live connection (no space, no permission) and a
refused login or host key end the upload at once.
"""
from __future__ import annotations

import hashlib
import os
from typing import BinaryIO, Callable, Optional
from urllib.parse import unquote, urlsplit

from ..errors import MissingLibrary, OvatoolError
from .common import CHUNK, UploadOptions, redact
from .retry import RetryWindow, Transient, retrying

BLOCK = 1 << 20  # what one write hands paramiko (it sends 32 KiB requests, pipelined)


def _resumable(reader: BinaryIO) -> Callable[[int], BinaryIO]:
    """``reader`` at a given offset."""
    def at(offset: int) -> BinaryIO:
        reader.seek(offset)
        return reader

    return at


class SftpDestination:
    def __init__(self, options: UploadOptions) -> None:
        try:
            import paramiko
        except ImportError:
            raise MissingLibrary("paramiko", "sftp") from None
        self.paramiko = paramiko
        parts = urlsplit(options.dest)
        self.path = unquote(parts.path)
        if not parts.hostname or not self.path or self.path.endswith("/"):
            raise OvatoolError(f"{redact(options.dest)!r}: an SFTP destination is sftp://user@host[:port]/path/file")
        self.url = redact(options.dest)
        self.options = options
        self.parts = parts
        self.client = None
        self.sftp = None
        self.window = RetryWindow(options.retry_seconds)
        retrying(self.window, "SFTP connection", self._connect, self.url)

    def _connect(self) -> None:
        """A new session; a network failure is Transient, a refused login or host key is not."""
        paramiko, options, parts = self.paramiko, self.options, self.parts
        self._close()
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
                           banner_timeout=options.timeout, auth_timeout=options.timeout,
                           allow_agent=False, look_for_keys=options.private_key is None and not options.password)
            self.sftp = client.open_sftp()
            self.sftp.get_channel().settimeout(options.timeout)
        except (paramiko.AuthenticationException, paramiko.BadHostKeyException) as exc:
            client.close()
            raise OvatoolError(f"SFTP connection failed: {exc}", self.url) from None
        except (paramiko.SSHException, EOFError, OSError) as exc:
            client.close()
            if "known_hosts" in str(exc):  # RejectPolicy: an unknown host key is a refusal, not an outage
                raise OvatoolError(f"SFTP connection failed: {exc}", self.url) from None
            raise Transient(f"SFTP connection failed: {exc}") from None
        self.client = client

    def _alive(self) -> bool:
        transport = self.client.get_transport() if self.client is not None else None
        return bool(transport is not None and transport.is_active())

    def _close(self) -> None:
        for thing in (self.sftp, self.client):
            if thing is not None:
                try:
                    thing.close()
                except Exception:  # pylint: disable=broad-except  # a dead session may fail to close
                    pass
        self.sftp = self.client = None

    def __enter__(self) -> "SftpDestination":
        return self

    def __exit__(self, *exc: object) -> None:
        self._close()

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
        try:
            source = open(src, "rb")  # pylint: disable=consider-using-with
        except OSError as exc:
            raise OvatoolError(f"cannot read the file: {exc.strerror}", src) from None
        with source:
            self._land(_resumable(source), size, sha256)

    def put_stream(self, reader: BinaryIO, size: int, sha256: str,
                   before_rename: Callable[[], None] = lambda: None) -> None:
        """The bytes of ``reader`` (``size`` of them, read in order; ``seek`` takes it back to where a cut
        transfer goes on), as ``put`` lands a file; ``before_rename`` may refuse them (raise) while they are still
        under the temporary name."""
        self._land(_resumable(reader), size, sha256, before_rename)

    def _send(self, temp: str, source: Callable[[int], BinaryIO], size: int, resume: bool) -> None:
        """One attempt: the bytes from the start, or (``resume``: a new session after a cut) from the temporary
        file's present size on; then its size checked."""
        if self.sftp is None:
            self._connect()
        try:
            folder = os.path.dirname(temp)
            self._makedirs(folder)
            offset = (self._size(temp) or 0) if resume else 0
            if offset > size:
                offset = 0
            reader = source(offset)
            with self.sftp.open(temp, "r+b" if offset else "wb") as remote:
                remote.seek(offset)
                remote.set_pipelined(True)
                for block in iter(lambda: reader.read(BLOCK), b""):
                    remote.write(block)
                    self.window.answered()
            landed = self.sftp.stat(temp).st_size
        except (self.paramiko.SSHException, EOFError, OSError) as exc:
            # an SFTP status (no space, no permission) on a session still up is a refusal; a session that ends
            # (EOF, SSH error, a socket error) is an outage, even when the transport has not noticed it yet
            refused = type(exc) in (OSError, IOError, PermissionError, FileNotFoundError) and self._alive()
            if refused:
                raise OvatoolError(f"SFTP upload failed: {exc}", self.url) from None
            self._close()
            raise Transient(f"SFTP connection lost: {exc}") from None
        if landed != size:
            raise OvatoolError(f"SFTP upload failed: {landed} bytes arrived, not {size}", self.url)

    def _land(self, source: Callable[[int], BinaryIO], size: int, sha256: str,
              before_rename: Callable[[], None] = lambda: None) -> None:
        """The bytes, under a temporary name, then the rename into place; the temporary file is removed on
        failure. The temporary name is the file's own (dot, name, SHA256 prefix, ``.partial``): one left by a run
        that lost the server for good is written over by the next run, not left beside it."""
        folder, name = os.path.split(self.path)
        temp = f"{folder}/.{name}.{sha256[:16]}.partial"
        attempts = []

        def attempt() -> None:
            attempts.append(1)
            self._send(temp, source, size, resume=len(attempts) > 1)

        try:
            retrying(self.window, "SFTP upload", attempt, self.url)
            before_rename()
            try:
                self.sftp.posix_rename(temp, self.path)
            except OSError:  # servers without the posix-rename extension
                if self._size(self.path) is not None:
                    self.sftp.remove(self.path)
                self.sftp.rename(temp, self.path)
        except (OSError, OvatoolError) as exc:
            try:
                if self.sftp is not None:
                    self.sftp.remove(temp)
            except (OSError, EOFError, self.paramiko.SSHException):  # the session may be gone too
                pass
            if isinstance(exc, OvatoolError):
                raise
            raise OvatoolError(f"SFTP upload failed: {exc}", self.url) from None

    def check(self, size: int, sha256: str) -> None:
        if self._size(self.path) != size:
            raise OvatoolError("after the upload, the remote file's size differs", self.url)
