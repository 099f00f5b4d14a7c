# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""At most N exports at once on a host, whoever started them: ``flock`` on one of N slot files.

The export role starts every VM's export at once (one task for the whole fleet, so that Ansible runs every host
in step) and lets the host hold all but N of them here, before a disk is read. The slots live in a folder of
their own (``.ovatool-slots`` in the state folder); the files stay (removing a lock file races with the next
process that opens it), and the kernel drops a slot when its holder dies.
"""
from __future__ import annotations

import os
import time
from typing import Callable, Optional

from ..errors import OutputError, describe_os_error

try:
    import fcntl
except ImportError:  # not POSIX: no slots (the exports all run)
    fcntl = None  # type: ignore[assignment]


class ExportSlot:
    """Wait for one of ``count`` slots in ``folder``; ``on_wait`` is told once when all are taken."""

    def __init__(self, folder: str, count: int, on_wait: Optional[Callable[[str], None]] = None,
                 step: float = 0.5) -> None:
        self.folder = folder
        self.count = max(1, int(count))
        self.on_wait = on_wait
        self.step = step
        self.fd = -1

    def _try(self, number: int) -> bool:
        path = os.path.join(self.folder, f"slot-{number}")
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self.fd = fd
        return True

    def __enter__(self) -> "ExportSlot":
        if fcntl is None:
            return self
        try:
            os.makedirs(self.folder, mode=0o755, exist_ok=True)
            told = False
            while not any(self._try(number) for number in range(self.count)):
                if not told and self.on_wait is not None:
                    self.on_wait(f"waiting for a free export slot ({self.count} exports at once on this host)")
                    told = True
                time.sleep(self.step)  # a signal ends the wait (CancelOnSignal raises here)
        except OSError as exc:
            raise OutputError(f"cannot take an export slot: {describe_os_error(exc)}", self.folder) from None
        return self

    def __exit__(self, *exc: object) -> None:
        if self.fd >= 0:
            os.close(self.fd)  # closing drops the flock
            self.fd = -1
