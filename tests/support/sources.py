# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Bad input must fail cleanly: a readable error, nothing left at the destination, sources unchanged."""
from __future__ import annotations

import hashlib
import os
import struct

import pytest

from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.errors import OvatoolError
from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.export.run import ExportOptions, export_vm


def snapshot(folder: str) -> dict:
    """Content digest and mtime of every file below ``folder``."""
    state = {}
    for base, _dirs, files in os.walk(folder):
        for name in files:
            path = os.path.join(base, name)
            with open(path, "rb") as handle:
                state[path] = (hashlib.sha256(handle.read()).hexdigest(), os.stat(path).st_mtime_ns)
    return state


def fails_cleanly(vm, *needles, **options):
    before = snapshot(vm["folder"])
    with pytest.raises(OvatoolError) as info:
        export_vm(ExportOptions(src=vm["vmx"], dest=vm["out"] + "/", **options))
    message = str(info.value)
    for needle in needles:
        assert needle in message, message
    assert os.listdir(vm["out"]) == [], "something was left at the destination"
    assert snapshot(vm["folder"]) == before, "a source changed"
    return message


def patch(path: str, offset: int, data: bytes) -> None:
    with open(path, "r+b") as handle:
        handle.seek(offset)
        handle.write(data)


def sparse_layout(path: str):
    with open(path, "rb") as handle:
        head = handle.read(512)
        gd_offset = struct.unpack_from("<Q", head, 56)[0]
        handle.seek(gd_offset * 512)
        gt_sector = struct.unpack("<I", handle.read(4))[0]
        handle.seek(gt_sector * 512)
        table = struct.unpack("<512I", handle.read(2048))
    return gd_offset, gt_sector, table
