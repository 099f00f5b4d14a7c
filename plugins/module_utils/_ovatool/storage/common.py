# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What every upload destination shares: the options, URL handling, and the error for a missing library."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Dict, Optional
from urllib.parse import quote, urlsplit

from ..defaults import HTTP_TIMEOUT, RETRY_SECONDS, UPLOAD_PART_SIZE_MB, UPLOAD_THREADS
from ..fileio import file_digest

MB = 1000 * 1000
CHUNK = 8 * 1024 * 1024
SCHEMES = ("s3", "sftp", "https", "http", "file")


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
    part_size_mb: int = UPLOAD_PART_SIZE_MB
    threads: int = UPLOAD_THREADS
    # SFTP
    private_key: Optional[str] = None
    password: Optional[str] = None
    known_hosts: Optional[str] = None
    host_key_checking: bool = True
    # HTTP
    url_username: Optional[str] = None
    url_password: Optional[str] = None
    headers: Dict[str, str] = field(default_factory=dict)
    timeout: float = HTTP_TIMEOUT
    # SFTP and HTTP: a transfer cut by the network is tried again until the destination has been silent this long
    retry_seconds: float = RETRY_SECONDS


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
