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
import time
from typing import Any, Dict

MB = 1000 * 1000


class ProgressFile:
    def __init__(self, path: str, every: float = 1.0) -> None:
        self.path = path
        self.every = every
        self.began = time.monotonic()
        self.last = self.began
        self._write({"percent": 0.0, "done_bytes": 0, "total_bytes": 0, "mbps": 0.0, "finished": False})

    def _write(self, data: Dict[str, Any]) -> None:
        temp = f"{self.path}.{os.getpid()}.tmp"
        try:
            with open(temp, "w") as handle:
                json.dump(data, handle)
            os.replace(temp, self.path)
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
        self._write({"disk": event["disk"], "percent": round(100.0 * event["done_bytes"] / total, 1) if total else 100.0,
                     "done_bytes": event["done_bytes"], "total_bytes": total, "mbps": round(rate, 1),
                     "eta_seconds": round((total - event["done_bytes"]) / MB / rate) if rate > 0 else None,
                     "finished": False})

    def finish(self, ok: bool) -> None:
        self._write({"percent": 100.0 if ok else None, "finished": True, "ok": ok,
                     "seconds": round(time.monotonic() - self.began, 1)})
