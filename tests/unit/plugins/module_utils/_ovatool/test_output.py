# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""AtomicOutput hands the package to the disk while it is written, not all at the end."""
from __future__ import annotations

import os
import threading
import time

from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool import output


def test_written_bytes_reach_the_disk_during_the_export(tmp_path, monkeypatch):
    synced = []
    real = os.fdatasync
    monkeypatch.setattr(output, "FLUSH_EVERY", 1 << 20)
    monkeypatch.setattr(output.os, "fdatasync", lambda fd: (synced.append(os.fstat(fd).st_size), real(fd)))
    dest = tmp_path / "x.ova"
    with output.AtomicOutput(str(dest)) as out:
        for _block in range(8):
            out.stream.write(os.urandom(1 << 20))
            out.stream.flush()
            time.sleep(0.3)  # the flusher looks every 0.2 s
        before_commit = list(synced)
        out.commit()
    assert len(before_commit) >= 3, "synced as it grew, before the commit's fsync"
    assert before_commit == sorted(before_commit) and before_commit[0] < 8 << 20
    assert dest.stat().st_size == 8 << 20
    assert [t.name for t in threading.enumerate() if t.name == "ovatool-flush"] == [], "stopped"


def test_a_failed_output_stops_the_flusher_and_leaves_nothing(tmp_path):
    dest = tmp_path / "y.ova"
    try:
        with output.AtomicOutput(str(dest)) as out:
            out.stream.write(b"x" * 1000)
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert os.listdir(str(tmp_path)) == []
    assert out.flusher is None
