"""A guest stand-in: what a running VM does to its disks while it is exported from a snapshot - it keeps writing,
with qemu-io, into the files its .vmx names now (the snapshot's deltas), until the snapshot is gone."""

from __future__ import annotations

import fcntl
import os
import threading
from typing import Dict, Optional

from support.vmfactory import qemu_io

MiB = 1024 * 1024


def current_disks(vmx: str) -> Dict[str, str]:
    """{node: disk file} the .vmx names now (its fileName lines)."""
    found = {}
    with open(vmx, encoding="utf-8") as handle:
        for line in handle:
            key, _sep, value = line.partition("=")
            if key.strip().lower().endswith(".filename") and value.strip().strip('"').endswith(".vmdk"):
                found[key.strip()[: -len(".fileName")].lower()] = value.strip().strip('"')
    return found


class Guest(threading.Thread):
    """Writes a new pattern every round into the VM's current disks, holding the double's guest lock, until stop()
    or until the .vmx names other files (the snapshot was removed). With ``wait_for_snapshot``, it first waits
    for the .vmx to name new files (the snapshot a play takes), and writes nothing before."""

    def __init__(self, vmx: str, wait_for_snapshot: bool = False, span_mib: int = 32) -> None:
        super().__init__(daemon=True)
        self.vmx = vmx
        self.initial = current_disks(vmx) if wait_for_snapshot else None
        self.span = span_mib
        self.writes = 0
        self.error: Optional[str] = None
        self._stop_asked = threading.Event()

    def stop(self) -> int:
        self._stop_asked.set()
        self.join(120)
        assert self.error is None, self.error
        return self.writes

    def run(self) -> None:
        folder = os.path.dirname(self.vmx)
        lock_path = os.path.splitext(self.vmx)[0] + ".guest-io.lock"
        deltas: Optional[Dict[str, str]] = None if self.initial else current_disks(self.vmx)
        while not self._stop_asked.is_set():
            with open(lock_path, "a") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                now = current_disks(self.vmx)
                if deltas is None and now != self.initial:
                    deltas = now
                if deltas is not None and now != deltas:
                    return
                try:
                    for name in (deltas or {}).values():
                        offset = (self.writes * 3 % self.span) * MiB + 4096 * (self.writes % 7)
                        qemu_io(os.path.join(folder, name), f"write -P {self.writes % 250 + 1} {offset} 192k")
                except RuntimeError as exc:  # reported by stop()
                    self.error = f"the guest could not write: {exc}"
                    return
                self.writes += 1 if deltas else 0
            self._stop_asked.wait(0.05)
