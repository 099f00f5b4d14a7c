# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""CPU seconds per stage and per thread of one export, for the benchmark's ``--profile``.

Off in normal runs (no Profile is passed, and the stages then read a clock that costs nothing). With one, each
stage adds the CPU time of the thread that ran it (``time.thread_time``), so the sums say where the CPU went
and which thread carries how much: the serial stages (the reader on the calling thread, the writer thread)
bound throughput however many cores compress.
"""
from __future__ import annotations

import threading
import time
from typing import Callable, Dict, Optional, Tuple

STAGES = ("read", "zero detection", "compression", "grain records", "stream framing", "hashing", "writing")
Clock = Callable[[], float]


def no_clock() -> float:
    return 0.0


class Profile:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.cpu: Dict[Tuple[str, str], float] = {}  # (thread name, stage) -> CPU seconds
        self.wall = 0.0

    def add(self, stage: str, seconds: float) -> None:
        key = (threading.current_thread().name, stage)
        with self._lock:
            self.cpu[key] = self.cpu.get(key, 0.0) + seconds

    def by_stage(self) -> Dict[str, float]:
        out: Dict[str, float] = {}
        for (_thread, stage), seconds in self.cpu.items():
            out[stage] = out.get(stage, 0.0) + seconds
        return out

    def by_thread(self) -> Dict[str, float]:
        out: Dict[str, float] = {}
        for (thread, _stage), seconds in self.cpu.items():
            kind = "compression pool" if thread.startswith("ovatool-deflate") else thread
            out[kind] = out.get(kind, 0.0) + seconds
        return out


def clock_of(profile: Optional[Profile]) -> Clock:
    """The clock stages read: the thread's CPU time with a profile, a constant without."""
    return time.thread_time if profile is not None else no_clock
