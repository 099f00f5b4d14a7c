# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Every default an option has, written once: the engine's option types, the modules' argument specs, the action
plugins and the ``ovatool`` command all read them from here (tests/unit/test_defaults.py holds the documentation
and each of them to these values)."""
from __future__ import annotations

# export (ova_export, ``ovatool export``)
COMPRESSION = "fast"
CODEC = "auto"
MANIFEST = "sha256"
FORMAT = "ova"
THREADS = 0  # all cores
NICE = 10  # CPU niceness added for an export's threads: it yields to the VMs
IONICE = "best-effort"
READ_LIMIT_MBPS = 0.0  # no limit

# transfers (exports into s3://, ova_upload, ova_upload_parts)
RETRY_SECONDS = 900.0  # a transfer retries until the store has not answered for this long
HTTP_TIMEOUT = 60.0  # seconds one request may take
PRESIGN_SECONDS = 24 * 3600  # the life of a presigned URL
EXPORT_PART_SIZE_MB = 32  # an export's parts: what it holds in memory per part on the wire
PARTS_THREADS = 4  # parts on the wire at once, per upload a host feeds through presigned URLs
UPLOAD_PART_SIZE_MB = 64  # ova_upload's parts: a finished file, read from the disk
UPLOAD_THREADS = 8
