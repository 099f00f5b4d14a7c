# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A small JSON progress file, for whoever watches a long export from outside (a role polling it over SSH).

Written at most once a second, atomically (temporary file + rename), so a reader never sees half a file:
{"disk": "vm-disk1.vmdk", "percent": 42.0, "done_bytes": ..., "total_bytes": ..., "mbps": 512.3,
 "eta_seconds": 7, "finished": false}
"""
from __future__ import annotations

import json
import os
import re
import time
from typing import Any, Callable, Dict, List, Optional

from ..fileio import replace_small_file
from ..storage.urlbook import renewal_path

MB = 1000 * 1000


class ProgressFile:
    def __init__(self, path: str, every: float = 1.0) -> None:
        self.path = path
        self.every = every
        self.began = time.monotonic()
        self.last = self.began
        self.current: Dict[str, Any] = {"percent": 0.0, "done_bytes": 0, "total_bytes": 0, "mbps": 0.0,
                                        "finished": False}
        self.attached: Dict[str, Callable[[], Any]] = {}
        self._write(self.current)

    def attach(self, key: str, report: Callable[[], Any]) -> None:
        """Every write, from this one on, also carries ``key``: what ``report()`` says then (an upload's parts
        not sent yet)."""
        self.attached[key] = report
        self._write(self.current)

    def _write(self, data: Dict[str, Any]) -> None:
        if not data.get("finished"):
            data = dict(data, **{key: report() for key, report in self.attached.items()})
        try:
            replace_small_file(self.path, json.dumps(data))
        except OSError:
            pass  # progress is a courtesy: never fail an export for it

    def __call__(self, event: Dict[str, Any]) -> None:
        now = time.monotonic()
        if now - self.last < self.every and event["done_bytes"] < event["total_bytes"]:
            return
        self.last = now
        elapsed = max(now - self.began, 1e-6)
        rate = event["done_bytes"] / MB / elapsed
        total = event["total_bytes"]
        self.current = {"disk": event["disk"],
                        "percent": round(100.0 * event["done_bytes"] / total, 1) if total else 100.0,
                        "done_bytes": event["done_bytes"], "total_bytes": total, "mbps": round(rate, 1),
                        "eta_seconds": round((total - event["done_bytes"]) / MB / rate) if rate > 0 else None,
                        "finished": False}
        self._write(self.current)

    def note(self, text: str) -> None:
        """Say why the export is not moving (``"object store unreachable since 45 s, retrying"``) beside the last
        progress; the next progress replaces it."""
        self._write(dict(self.current, note=text))

    def finish(self, ok: bool) -> None:
        self._write({"percent": 100.0 if ok else None, "finished": True, "ok": ok,
                     "seconds": round(time.monotonic() - self.began, 1)})


def read_progress(path: str) -> Optional[Dict[str, Any]]:
    """What a ProgressFile holds now, or None when it is not there (yet) or not readable."""
    try:
        with open(path) as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def job_statuses(async_dir: str, jobs: List[Dict[str, Any]], cleanup: bool = True, hold: float = 0.0,
                 step: float = 0.1) -> List[Dict[str, Any]]:
    """``job_status`` of each job (``jid``, ``progress_file``); with ``hold``, looked at again every ``step``
    seconds until one of them has finished or ``hold`` seconds have passed, so that the controller hears of a
    finished export at once instead of at its next poll."""
    deadline = time.monotonic() + max(0.0, hold)
    while True:
        statuses = [job_status(async_dir, str(job.get("jid", "")), job.get("progress_file"), cleanup) for job in jobs]
        if any(status["finished"] for status in statuses) or time.monotonic() >= deadline:
            return statuses
        time.sleep(step)


def job_status(async_dir: str, jid: str, progress_file: Optional[str] = None, cleanup: bool = True) -> Dict[str, Any]:
    """One Ansible async job, as ``async_status`` reads it, with the progress file of its export.

    The job file holds ``{"started": true, "finished": false, ...}`` while the module runs and the module's
    result when it is done (or async_wrapper's ``Timeout exceeded`` after it killed the job). Once a finished
    result has been read, ``cleanup`` removes the job file and the progress file.
    """
    status: Dict[str, Any] = {"jid": jid, "finished": False, "result": None,
                              "progress": read_progress(progress_file) if progress_file else None}
    if not re.match(r"^\w[\w.-]*$", jid):
        status.update(finished=True, result={"failed": True, "msg": f"{jid!r} is not an Ansible async job id"})
        return status
    path = os.path.join(async_dir, jid)
    try:
        with open(path) as handle:
            data = json.load(handle)
    except FileNotFoundError:
        status.update(finished=True, result={"failed": True, "msg": f"the async job {jid} is not on the host "
                                             f"(looked for {path}); it was cleaned up or never started"})
        return status
    except (OSError, ValueError):
        return status  # being written: still running
    if not isinstance(data, dict):
        status.update(finished=True, result={"failed": True, "msg": f"the async job file {path} is not a result"})
        return status
    if "started" in data and not data.get("finished"):
        return status
    status.update(finished=True, result=data)
    if cleanup:
        for leftover in (path, progress_file, progress_file and renewal_path(progress_file)):
            if leftover:
                try:
                    os.unlink(leftover)
                except OSError:
                    pass
    return status
