# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Put a file where people fetch it: S3 (boto3), SFTP (paramiko), HTTP PUT, a local folder.

Every transfer streams (nothing is read into memory whole), lands under a temporary name or as an incomplete
multipart upload until it is complete, and is checked afterwards (size, and SHA256 where the destination can
tell). A destination that already holds the same size and SHA256 is left alone. boto3 and paramiko are imported
only for their schemes (storage/s3.py, storage/sftp.py).
"""
from __future__ import annotations

import os
import time
from dataclasses import replace
from typing import Any, Callable, Dict
from urllib.parse import urlsplit

from ..protocols import Destination
from ..errors import MissingLibrary, OvatoolError
from .common import MB, SCHEMES, UploadOptions, file_sha256, into_folder, redact
from .file import FileDestination
from .http import HttpDestination
from .s3 import S3Destination
from .sftp import SftpDestination

DESTINATIONS: Dict[str, Callable[[UploadOptions], Destination]] = {
    "file": FileDestination, "s3": S3Destination, "sftp": SftpDestination, "http": HttpDestination,
    "https": HttpDestination}


def upload(options: UploadOptions) -> Dict[str, Any]:
    src = os.path.abspath(os.path.expanduser(options.src))
    if not os.path.isfile(src):
        raise OvatoolError("no such file" if not os.path.exists(src) else "not a regular file", src)
    options = replace(options, dest=into_folder(options.dest, src))
    scheme = urlsplit(options.dest).scheme.lower()
    if scheme not in DESTINATIONS:
        raise OvatoolError(f"unsupported destination {redact(options.dest)!r}: use "
                           f"{', '.join(s + '://' for s in SCHEMES)}")
    size = os.path.getsize(src)
    began = time.monotonic()
    sha256 = file_sha256(src)
    result: Dict[str, Any] = {"src": src, "url": redact(options.dest), "size": size, "sha256": sha256}
    with DESTINATIONS[scheme](options) as target:
        if target.existing(size, sha256) and not options.force:
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


__all__ = ["MissingLibrary", "UploadOptions", "upload"]
