# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""vm_power against doubles of vmrun and vim-cmd that answer as the real tools do and record their calls."""
from __future__ import annotations

import json
import os
import time

import pytest

from support import doubles, vmfactory
from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.host.power import (
    PowerError, VimCmd, Vmrun, restore_recorded, set_power, stop_and_record)
from support.ansiblerun import adhoc


def double(tmp_path, name: str, state: dict) -> str:
    return doubles.install(tmp_path / f"{name}-bin", name, state)


def state_of(tool: str) -> dict:
    with open(os.path.join(os.path.dirname(tool), f"{os.path.basename(tool)}-state.json")) as handle:
        return json.load(handle)


@pytest.fixture()
def vms(tmp_path):
    paths = {}
    for name in ("web", "db", "old"):
        folder = tmp_path / "vms" / name
        folder.mkdir(parents=True)
        paths[name] = vmfactory.write_vmx(str(folder / f"{name}.vmx"), name, [])
    return paths


def test_vmrun_soft_shutdown_and_restart(tmp_path, vms):
    tool = double(tmp_path, "vmrun", {"running": [vms["web"]]})
    engine = Vmrun(tool, "ws")
    off = set_power(vms["web"], "powered_off", engine, pace=(0.01, time.sleep))
    assert off == {"vmx": vms["web"], "backend": "vmrun", "state_before": "powered_on", "state": "powered_off",
                   "changed": True}
    assert set_power(vms["web"], "powered_off", engine)["changed"] is False
    assert set_power(vms["db"], "query", engine)["state"] == "powered_off"
    on = set_power(vms["web"], "powered_on", engine)
    assert on["state"] == "powered_on" and on["changed"]
    calls = state_of(tool)["calls"]
    assert ["-T", "ws", "stop", vms["web"], "soft"] in calls and ["-T", "ws", "start", vms["web"], "nogui"] in calls
    assert not any("hard" in call for call in calls)


def test_vmrun_without_tools_needs_force(tmp_path, vms):
    tool = double(tmp_path, "vmrun", {"running": [vms["db"]], "no_tools": [vms["db"]]})
    engine = Vmrun(tool)
    with pytest.raises(PowerError, match="soft shutdown failed .*VMware Tools are not running.*set force"):
        set_power(vms["db"], "powered_off", engine)
    result = set_power(vms["db"], "powered_off", engine, force=True)
    assert result["hard_power_off"] is True and result["state"] == "powered_off"
    assert ["stop", vms["db"], "hard"] in state_of(tool)["calls"]


def test_vmrun_suspend_and_suspended_vms(tmp_path, vms):
    tool = double(tmp_path, "vmrun", {"running": [vms["old"]]})
    engine = Vmrun(tool)
    assert set_power(vms["old"], "suspended", engine)["state"] == "suspended"
    assert set_power(vms["old"], "query", engine)["state"] == "suspended"
    with pytest.raises(PowerError, match="discards its suspended state"):
        set_power(vms["old"], "powered_off", engine)
    assert set_power(vms["old"], "powered_on", engine)["state"] == "powered_on"


def test_check_mode_changes_nothing(tmp_path, vms):
    tool = double(tmp_path, "vmrun", {"running": [vms["web"]]})
    result = set_power(vms["web"], "powered_off", Vmrun(tool), check_mode=True)
    assert result["changed"] and result["state"] == "powered_off"
    assert state_of(tool)["running"] == [vms["web"]]
    assert [call for call in state_of(tool)["calls"] if call[0] != "list"] == []


def test_vim_cmd(tmp_path):
    volumes = tmp_path / "vmfs" / "volumes"
    folder = volumes / "datastore1" / "web01"
    folder.mkdir(parents=True)
    vmx = vmfactory.write_vmx(str(folder / "web01.vmx"), "web01", [])
    tool = double(tmp_path, "vim-cmd", {"vms": {
        "3": {"name": "other", "file": "[datastore1] other/other.vmx", "state": "on"},
        "7": {"name": "web01", "file": "[datastore1] web01/web01.vmx", "state": "on", "no_tools": False}}})
    engine = VimCmd(tool, volumes=str(volumes))
    assert engine.vmid(vmx) == "7"
    assert set_power(vmx, "powered_off", engine, pace=(0.01, time.sleep))["state_before"] == "powered_on"
    assert ["vmsvc/power.shutdown", "7"] in state_of(tool)["calls"]
    assert set_power(vmx, "powered_on", engine)["state"] == "powered_on"
    assert state_of(tool)["vms"]["3"]["state"] == "on", "another VM was touched"
    with pytest.raises(PowerError, match="not registered"):
        VimCmd(tool, volumes=str(volumes)).vmid(str(volumes / "datastore1" / "ghost" / "ghost.vmx"))


def test_vm_power_module(tmp_path, vms):
    tool = double(tmp_path, "vmrun", {"running": [vms["web"]]})
    args = {"vmx": vms["web"], "state": "powered_off", "backend": "vmrun", "vmrun_path": tool, "timeout": 30}
    check = adhoc(tmp_path, "ovatool.vmware.vm_power", args, check=True)
    assert check["_rc"] == 0 and check["changed"] is True and state_of(tool)["running"] == [vms["web"]]
    first = adhoc(tmp_path, "ovatool.vmware.vm_power", args)
    assert first["_rc"] == 0 and first["state_before"] == "powered_on" and first["state"] == "powered_off"
    second = adhoc(tmp_path, "ovatool.vmware.vm_power", args)
    assert second["_rc"] == 0 and second["changed"] is False
    missing = adhoc(tmp_path, "ovatool.vmware.vm_power", dict(args, vmrun_path=str(tmp_path / "nope")))
    assert missing["_rc"] != 0 and "is not installed here" in missing["msg"]


def test_power_record_survives_a_cut_short_run(tmp_path, vms):
    """A run stops a running VM and dies before restoring it; the next run finds the VM off, but the record
    makes it report the VM as running before and restore it; a VM that was off gets no record."""
    tool = double(tmp_path, "vmrun", {"running": [vms["web"]]})
    engine = Vmrun(tool)
    record = str(tmp_path / ".power-web.json")
    first = stop_and_record(vms["web"], "powered_off", engine, record)
    assert first["state_before"] == "powered_on" and first["recorded_state"] == "powered_on"
    assert os.stat(record).st_mode & 0o777 == 0o600
    # the run is cut short here; the next one:
    again = stop_and_record(vms["web"], "powered_off", engine, record)
    assert again["state_before"] == "powered_off" and again["changed"] is False
    assert again["recorded_state"] == "powered_on", "the earlier run's record says it was running"
    restored = restore_recorded(record, engine)
    assert restored["state"] == "powered_on" and restored["changed"] and not os.path.exists(record)
    assert state_of(tool)["running"] == [vms["web"]]
    assert restore_recorded(record, engine)["changed"] is False, "no record: nothing to restore"
    off = str(tmp_path / ".power-db.json")
    assert stop_and_record(vms["db"], "powered_off", engine, off)["recorded_state"] is None
    assert not os.path.exists(off)


def test_power_record_check_mode_and_bad_records(tmp_path, vms):
    tool = double(tmp_path, "vmrun", {"running": [vms["web"]]})
    engine = Vmrun(tool)
    record = tmp_path / ".power-web.json"
    assert stop_and_record(vms["web"], "powered_off", engine, str(record), check_mode=True)["changed"]
    assert not record.exists() and state_of(tool)["running"] == [vms["web"]]
    record.write_text("{not json")
    with pytest.raises(PowerError, match="not JSON"):
        restore_recorded(str(record), engine)
    record.write_text(json.dumps({"vmx": vms["db"], "state": "powered_on"}))
    with pytest.raises(PowerError, match="is for"):
        restore_recorded(str(record), engine, vms["web"])
    record.write_text(json.dumps({"state": "powered_on"}))
    with pytest.raises(PowerError, match="needs vmx and state"):
        restore_recorded(str(record), engine)


def test_vm_power_module_records_and_restores(tmp_path, vms):
    tool = double(tmp_path, "vmrun", {"running": [vms["web"]]})
    record = str(tmp_path / "records" / ".power-web.json")
    os.makedirs(os.path.dirname(record))
    common = {"backend": "vmrun", "vmrun_path": tool}
    off = adhoc(tmp_path, "ovatool.vmware.vm_power", dict(common, vmx=vms["web"], state="powered_off", record=record))
    assert off["_rc"] == 0 and off["recorded_state"] == "powered_on" and os.path.exists(record)
    back = adhoc(tmp_path, "ovatool.vmware.vm_power", dict(common, record=record, state="restored"))
    assert back["_rc"] == 0 and back["state"] == "powered_on" and not os.path.exists(record)
    nothing = adhoc(tmp_path, "ovatool.vmware.vm_power", dict(common, record=record, state="restored"))
    assert nothing["_rc"] == 0 and nothing["changed"] is False
    no_vmx = adhoc(tmp_path, "ovatool.vmware.vm_power", dict(common, state="powered_off"))
    assert no_vmx["_rc"] != 0 and "vmx is required" in no_vmx["msg"]
