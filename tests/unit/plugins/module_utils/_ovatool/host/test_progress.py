# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The progress file a role polls during an async export."""
from __future__ import annotations

import json
import threading
import time

from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.host.progress import (
    ProgressFile, job_status, job_statuses)


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


def test_job_status_reads_async_files_as_async_status_does(tmp_path):
    jobs = tmp_path / "async"
    jobs.mkdir()
    progress = tmp_path / ".vm.vmx.progress.json"
    ProgressFile(str(progress), every=0.0)({"disk": "d", "done_bytes": 50, "total_bytes": 100})
    (jobs / "j1.10").write_text(json.dumps({"started": True, "finished": False, "ansible_job_id": "j1.10"}))
    running = job_status(str(jobs), "j1.10", str(progress))
    assert running["finished"] is False and running["progress"]["percent"] == 50.0
    (jobs / "j1.10").write_text("")  # async_wrapper between open and write: still running
    assert job_status(str(jobs), "j1.10", str(progress))["finished"] is False
    (jobs / "j1.10").write_text(json.dumps({"changed": True, "dest": "/x.ova", "ansible_job_id": "j1.10"}))
    done = job_status(str(jobs), "j1.10", str(progress))
    assert done["finished"] and done["result"]["dest"] == "/x.ova"
    assert not (jobs / "j1.10").exists() and not progress.exists(), "cleanup removes the job and progress files"
    (jobs / "j2.11").write_text(json.dumps({"msg": "Timeout exceeded", "failed": True, "child_pid": 3}))
    assert job_status(str(jobs), "j2.11", cleanup=False)["result"]["msg"] == "Timeout exceeded"
    assert (jobs / "j2.11").exists()
    gone = job_status(str(jobs), "j3.12")
    assert gone["finished"] and "not on the host" in gone["result"]["msg"]
    hostile = job_status(str(jobs), "../../etc/passwd")
    assert hostile["finished"] and "is not an Ansible async job id" in hostile["result"]["msg"]


def test_remove_leftovers_touches_only_its_own_package(tmp_path):
    from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.output import remove_leftovers
    names = [".a.ova.k3j9x_2q.partial", ".a.ova.0lrvleuu.old", ".a.ova.b.ova.k3j9x_2q.partial", ".a.ova.source",
             ".a.ova.lock", "a.ova"]
    for name in names:
        (tmp_path / name).write_text("x")
    assert sorted(remove_leftovers(str(tmp_path / "a.ova"))) == [".a.ova.0lrvleuu.old", ".a.ova.k3j9x_2q.partial"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".a.ova.b.ova.k3j9x_2q.partial", ".a.ova.lock",
                                                          ".a.ova.source", "a.ova"]


def test_job_statuses_answer_as_soon_as_a_job_finishes(tmp_path):
    """Held for up to 30 s, the look at two running jobs answers once one of them writes its result (here after
    0.3 s), not when the hold runs out; with nothing finishing it answers when the hold is over."""
    for jid in ("1.1", "1.2"):
        (tmp_path / jid).write_text(json.dumps({"started": True, "finished": False}))
    jobs = [{"jid": "1.1"}, {"jid": "1.2"}]
    began = time.monotonic()
    statuses = job_statuses(str(tmp_path), jobs, hold=0.2)
    assert [s["finished"] for s in statuses] == [False, False] and time.monotonic() - began >= 0.2
    timer = threading.Timer(0.3, lambda: (tmp_path / "1.2").write_text(json.dumps({"changed": True, "dest": "x"})))
    timer.start()
    began = time.monotonic()
    statuses = job_statuses(str(tmp_path), jobs, hold=30)
    timer.join()
    assert time.monotonic() - began < 10
    assert [s["finished"] for s in statuses] == [False, True] and statuses[1]["result"]["dest"] == "x"
    assert not (tmp_path / "1.2").exists() and (tmp_path / "1.1").exists()  # only a finished job's file is removed


def test_a_note_says_why_the_export_waits(tmp_path):
    """While an upload rides out an outage, the progress file keeps the last progress and adds a note, which
    ova_export_wait prints after the percent; the next progress replaces it."""
    from ansible_collections.ovatool.vmware.plugins.action.ova_export_wait import describe_progress

    path = tmp_path / "p.json"
    progress = ProgressFile(str(path), every=0)
    progress({"disk": "d1", "done_bytes": 50, "total_bytes": 100})
    progress.note("object store unreachable since 45 s, retrying for up to 900 s")
    noted = json.loads(path.read_text())
    assert noted["percent"] == 50.0 and noted["note"].startswith("object store unreachable since 45 s")
    assert describe_progress(noted).endswith("; object store unreachable since 45 s, retrying for up to 900 s")
    progress({"disk": "d1", "done_bytes": 60, "total_bytes": 100})
    assert "note" not in json.loads(path.read_text())
