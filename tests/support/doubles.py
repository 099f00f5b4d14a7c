"""The doubles of vmrun and vim-cmd, installed into a test's own folder (each keeps its state beside it)."""

from __future__ import annotations

import json
import os
import shutil
from typing import Optional

DOUBLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "doubles")


def install(folder, name: str, state: Optional[dict] = None) -> str:
    """Copy double ``name`` (with vmware_disks.py, which moves the snapshots' data) into ``folder``; its path."""
    folder = str(folder)
    os.makedirs(folder, exist_ok=True)
    target = os.path.join(folder, name)
    shutil.copy(os.path.join(DOUBLES, name), target)
    shutil.copy(os.path.join(DOUBLES, "vmware_disks.py"), os.path.join(folder, "vmware_disks.py"))
    if state is not None:
        with open(os.path.join(folder, f"{name}-state.json"), "w") as handle:
            json.dump(state, handle)
    return target
