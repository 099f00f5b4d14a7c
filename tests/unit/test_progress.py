# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The progress file a role polls during an async export."""
from __future__ import annotations

import json

from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.progress import ProgressFile


def test_progress_file_records(tmp_path):
    path = tmp_path / "p.json"
    progress = ProgressFile(str(path), every=0.0)
    assert json.loads(path.read_text())["percent"] == 0.0
    progress({"disk": "vm-disk1.vmdk", "done_bytes": 25, "total_bytes": 100})
    record = json.loads(path.read_text())
    assert record["disk"] == "vm-disk1.vmdk" and record["percent"] == 25.0 and record["finished"] is False
    progress.finish(True)
    assert json.loads(path.read_text())["finished"] is True
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.json"], "no temporary file may remain"


def test_progress_file_is_throttled(tmp_path):
    path = tmp_path / "p.json"
    progress = ProgressFile(str(path), every=3600)
    progress({"disk": "d", "done_bytes": 10, "total_bytes": 100})
    assert json.loads(path.read_text())["percent"] == 0.0  # too soon: not rewritten
    progress({"disk": "d", "done_bytes": 100, "total_bytes": 100})
    assert json.loads(path.read_text())["percent"] == 100.0  # the last one always is
