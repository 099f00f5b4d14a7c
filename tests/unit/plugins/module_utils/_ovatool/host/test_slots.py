# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Export slots (host/slots): at most N holders at once, the next one waits (and says so once) until a slot is
given back; a holder that dies gives its slot back (the kernel drops the flock)."""
from __future__ import annotations

import subprocess
import sys
import threading
import time

from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.host.slots import ExportSlot


def test_the_third_export_waits_for_a_slot(tmp_path):
    folder = str(tmp_path / "slots")
    said = []
    first, second = ExportSlot(folder, 2), ExportSlot(folder, 2)
    first.__enter__()
    second.__enter__()
    got = threading.Event()

    def third():
        with ExportSlot(folder, 2, said.append, step=0.05):
            got.set()

    thread = threading.Thread(target=third)
    thread.start()
    time.sleep(0.5)
    assert not got.is_set() and said == ["waiting for a free export slot (2 exports at once on this host)"]
    second.__exit__(None, None, None)
    assert got.wait(5)
    thread.join()
    first.__exit__(None, None, None)


def test_a_dead_holder_gives_its_slot_back(tmp_path):
    folder = tmp_path / "slots"
    folder.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", (
        "import fcntl, os, sys, time\nfd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)\n"
        "fcntl.flock(fd, fcntl.LOCK_EX)\nprint('held', flush=True)\ntime.sleep(60)\n"), str(folder / "slot-0")],
        stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    got = threading.Event()
    thread = threading.Thread(target=lambda: ExportSlot(str(folder), 1, step=0.05).__enter__() and got.set())
    thread.start()
    time.sleep(0.3)
    assert not got.is_set()
    holder.kill()
    holder.wait()
    assert got.wait(5)
    thread.join()
