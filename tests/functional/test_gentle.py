# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Gentle on production hosts: every thread of an export runs nicer and in the chosen I/O class, and reads no
faster than the limit."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from support.ansiblerun import adhoc
from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.errors import OvatoolError
from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.export.run import ExportOptions, export_vm

# the export reports, from its progress callback (the reading thread), the nice value and I/O priority of every
# thread of the process at that moment: the compression pool, the writer and the hash thread all exist by then
PROBE = """
import json, os, sys, threading
from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.export.gentle import get_ioprio
from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.export.run import ExportOptions, export_vm
seen = {}
calls = []
def probe(event):
    calls.append(1)
    if seen or len(calls) < 3:  # by the third batch the pool has its threads
        return
    names = {t.native_id: t.name for t in threading.enumerate()}
    for tid in os.listdir("/proc/self/task"):
        seen[tid] = [names.get(int(tid), "?"), os.getpriority(os.PRIO_PROCESS, int(tid)), get_ioprio(int(tid))]
base = os.getpriority(os.PRIO_PROCESS, 0)
result = export_vm(ExportOptions(src=sys.argv[1], dest=sys.argv[2], nice=int(sys.argv[3]), ionice=sys.argv[4],
                                 threads=2, progress=probe))
print(json.dumps({"base": base, "threads": seen, "after": os.getpriority(os.PRIO_PROCESS, 0),
                  "warnings": result["warnings"]}))
"""


@pytest.fixture()
def vm(sparse_vm):
    return sparse_vm


@pytest.mark.parametrize("ionice, klass", [("idle", 3), ("best-effort", 2)])
def test_every_thread_runs_nicer_and_in_the_io_class(vm, ionice, klass):
    done = subprocess.run([sys.executable, "-c", PROBE, vm["vmx"], vm["out"] + "/", "7", ionice],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, check=False)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    threads = report["threads"]
    names = sorted(name for name, _nice, _io in threads.values())
    assert any(n.startswith("ovatool-deflate") for n in names) and "ovatool-writer" in names \
        and "ovatool-hash" in names, names
    for name, nice, ioprio in threads.values():
        assert nice == min(19, report["base"] + 7), (name, nice, report)
        assert ioprio >> 13 == klass and ioprio & 7 == 7, (name, ioprio)
    assert report["warnings"] == []


def test_read_limit_holds_the_reads_back(vm):
    limit = 20.0  # MB/s
    began = time.monotonic()
    result = export_vm(ExportOptions(src=vm["vmx"], dest=vm["out"] + "/", read_limit_mbps=limit))
    elapsed = time.monotonic() - began
    allocated = result["disks"][0]["allocated_bytes"]
    assert allocated > 5 * 1000 * 1000
    # a lower bound only: a slow machine can take longer, never less
    assert elapsed >= allocated / (limit * 1000 * 1000) * 0.95, (elapsed, allocated)


@pytest.mark.parametrize("options, text", [({"ionice": "realtime"}, "ionice one of best-effort, idle, none"),
                                           ({"nice": 25}, "nice must be 0..19 (not 25)"),
                                           ({"read_limit_mbps": -1}, "read_limit_mbps 0 or more")])
def test_bad_values_are_refused_before_anything_is_read(vm, options, text):
    with pytest.raises(OvatoolError, match=text.replace("(", r"\(").replace(")", r"\)")):
        export_vm(ExportOptions(src=vm["vmx"], dest=vm["out"] + "/", **options))
    assert os.listdir(vm["out"]) == []


def test_module_defaults_are_gentle(vm, tmp_path):
    result = adhoc(tmp_path, "ovatool.vmware.ova_export",
                   {"src": vm["vmx"], "dest": vm["out"] + "/", "read_limit_mbps": 500})
    assert result["_rc"] == 0 and result["changed"], result["_stdout"]
    assert not result.get("warnings"), result.get("warnings")
