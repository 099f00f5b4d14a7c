# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Gentle on a production host: CPU niceness, I/O priority and a read rate limit for an export.

On Linux both the nice value and the I/O priority belong to a thread, and a new thread takes them from the
thread that starts it. So they are set on the calling thread before the export starts any thread, and every
thread of the export (readers, compressors, writer, hash) runs with them; the caller's own values are put back
afterwards where the system allows it (raising priority again needs root).

The I/O priority is set with the ``ioprio_set`` system call through ctypes (the standard library has no wrapper);
where that is not available (not Linux, an unknown architecture, ESXi) the export goes on at normal I/O priority
and says so in a warning.
"""
from __future__ import annotations

import os
import platform
import threading
import time
from typing import List, Optional

from ..errors import OvatoolError

IONICE_CLASSES = ("best-effort", "idle", "none")
_CLASS = {"best-effort": 2, "idle": 3}
_IOPRIO_CLASS_SHIFT = 13
_IOPRIO_WHO_PROCESS = 1
# ioprio_set / ioprio_get system call numbers by machine (Linux's syscall tables)
_SYSCALLS = {"x86_64": (251, 252), "amd64": (251, 252), "aarch64": (30, 31), "arm64": (30, 31),
             "i386": (289, 290), "i686": (289, 290), "ppc64le": (273, 274), "ppc64": (273, 274),
             "s390x": (282, 283), "armv7l": (314, 315), "riscv64": (30, 31)}


def _ioprio_calls():
    numbers = _SYSCALLS.get(platform.machine().lower())
    if numbers is None or not os.uname().sysname == "Linux":
        return None
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return libc.syscall, numbers, ctypes
    except (OSError, AttributeError):
        return None


def get_ioprio(tid: int = 0) -> Optional[int]:
    calls = _ioprio_calls()
    if calls is None:
        return None
    syscall, (_set, get), _ctypes = calls
    value = syscall(get, _IOPRIO_WHO_PROCESS, tid)
    return None if value < 0 else value


def _set_ioprio(value: int) -> bool:
    calls = _ioprio_calls()
    if calls is None:
        return False
    syscall, (set_call, _get), ctypes = calls
    if syscall(set_call, _IOPRIO_WHO_PROCESS, 0, value) != 0:
        raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
    return True


class Gentle:
    """A context manager: the calling thread (and every thread it starts meanwhile) runs ``nice`` steps nicer and
    in the I/O class ``ionice`` (at its lowest priority level)."""

    def __init__(self, nice: int = 0, ionice: str = "none", warnings: Optional[List[str]] = None) -> None:
        if ionice not in IONICE_CLASSES:
            raise OvatoolError(f'ionice "{ionice}" is not one of {", ".join(IONICE_CLASSES)}')
        if not 0 <= nice <= 19:
            raise OvatoolError(f"nice {nice} is not from 0 to 19")
        self.nice = nice
        self.ionice = ionice
        self.warnings = warnings if warnings is not None else []
        self._nice_before: Optional[int] = None
        self._ioprio_before: Optional[int] = None

    def __enter__(self) -> "Gentle":
        if self.nice:
            try:
                self._nice_before = os.getpriority(os.PRIO_PROCESS, 0)
                os.setpriority(os.PRIO_PROCESS, 0, min(19, self._nice_before + self.nice))
            except (OSError, AttributeError) as exc:
                self.warnings.append(f"cannot lower the CPU priority (nice {self.nice}): {exc}")
                self._nice_before = None
        if self.ionice != "none":
            try:
                before = get_ioprio()
                if _set_ioprio((_CLASS[self.ionice] << _IOPRIO_CLASS_SHIFT) | 7):
                    self._ioprio_before = before
                else:
                    self.warnings.append(f"I/O priority {self.ionice} is not available on this host "
                                         "(no ioprio_set); the export runs at normal I/O priority")
            except OSError as exc:
                self.warnings.append(f"cannot set the I/O priority to {self.ionice}: {exc.strerror}")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._nice_before is not None:
            try:
                os.setpriority(os.PRIO_PROCESS, 0, self._nice_before)
            except OSError:
                pass  # only root may raise it again; a module process ends here anyway
        if self._ioprio_before is not None:
            try:
                _set_ioprio(self._ioprio_before)
            except OSError:
                pass


class ReadLimit:
    """At most ``mbps`` MB (10^6 bytes) a second through ``consume``; shared by every reader of an export."""

    def __init__(self, mbps: float, clock=time.monotonic, sleep=time.sleep) -> None:
        if mbps < 0:
            raise OvatoolError(f"read_limit_mbps {mbps} is negative")
        self.rate = mbps * 1000 * 1000
        self.clock = clock
        self.sleep = sleep
        self.began: Optional[float] = None
        self.done = 0
        self._lock = threading.Lock()

    def consume(self, count: int) -> None:
        if not self.rate:
            return
        with self._lock:
            now = self.clock()
            if self.began is None:
                self.began = now
            self.done += count
            ahead = self.done / self.rate - (now - self.began)
        if ahead > 0:
            self.sleep(ahead)
