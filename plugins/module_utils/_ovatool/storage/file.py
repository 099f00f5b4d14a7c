# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""file:// destinations: a temporary file beside the target, fsynced, renamed into place."""
from __future__ import annotations

import os
import shutil
from urllib.parse import unquote, urlsplit

from ..errors import OvatoolError, describe_os_error
from ..output import AtomicOutput
from .common import CHUNK, UploadOptions, file_sha256


class FileDestination:
    def __init__(self, options: UploadOptions) -> None:
        parts = urlsplit(options.dest)
        if parts.netloc not in ("", "localhost"):
            raise OvatoolError(f"file:// URLs name a local path, not host {parts.netloc!r}")
        self.path = unquote(parts.path)
        self.url = options.dest
        if os.path.isdir(self.path):
            raise OvatoolError("the destination is a folder: end it in / to upload into it", self.path)

    def __enter__(self) -> "FileDestination":
        return self

    def __exit__(self, *exc: object) -> None:
        pass  # nothing held open between calls

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
