# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The modules and the playbook through Ansible itself (AnsiballZ, module_utils packaging and all)."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from support import doubles, ovacheck, vmfactory
from support.ansiblerun import BIN, ROOT, adhoc, ansible_env


@pytest.fixture()
def vm(tmp_path, images):
    folder = tmp_path / "vms" / "app"
    folder.mkdir(parents=True)
    vmfactory.convert(images["odd"], str(folder / "app.vmdk"), "monolithicSparse")
    vmfactory.convert(images["gappy"], str(folder / "data.vmdk"), "twoGbMaxExtentFlat")
    vmx = vmfactory.write_vmx(str(folder / "app.vmx"), "App Server", [("scsi0:0", "app.vmdk"),
                                                                      ("scsi0:1", "data.vmdk")])
    out = tmp_path / "out"
    out.mkdir()
    return {"vmx": vmx, "out": str(out), "raws": [images["odd"], images["gappy"]], "folder": str(folder)}


def test_ova_export_module(tmp_path, vm):
    result = adhoc(tmp_path, "ovatool.vmware.ova_export", {"src": vm["vmx"], "dest": vm["out"] + "/"})
    assert result["_rc"] == 0, result["_stdout"]
    assert result["changed"] is True and result["dest"] == os.path.join(vm["out"], "App_Server.ova")
    assert [d["href"] for d in result["disks"]] == ["App_Server-disk1.vmdk", "App_Server-disk2.vmdk"]
    assert result["codec"] in ("isal", "zlib-ng", "zlib") and result["threads"] >= 1
    ova = ovacheck.read_ova(result["dest"])
    assert ova["manifest"] == result["digests"]
    for name, raw in zip(["App_Server-disk1.vmdk", "App_Server-disk2.vmdk"], vm["raws"]):
        ovacheck.assert_same_disk(raw, ovacheck.extract(result["dest"], name, str(tmp_path)))

    again = adhoc(tmp_path, "ovatool.vmware.ova_export", {"src": vm["vmx"], "dest": vm["out"] + "/"})
    assert again["_rc"] == 0 and again["changed"] is False


def test_ova_export_check_mode(tmp_path, vm):
    result = adhoc(tmp_path, "ovatool.vmware.ova_export", {"src": vm["vmx"], "dest": vm["out"]}, check=True)
    assert result["_rc"] == 0 and result["changed"] is True, result["_stdout"]
    assert os.listdir(vm["out"]) == []


def test_ova_export_failure_is_readable(tmp_path, vm):
    os.unlink(os.path.join(vm["folder"], "data-f001.vmdk"))
    result = adhoc(tmp_path, "ovatool.vmware.ova_export", {"src": vm["vmx"], "dest": vm["out"] + "/"})
    assert result["_rc"] != 0 and "FAILED" in result["_stdout"]
    assert "data-f001.vmdk" in result["msg"] and "missing" in result["msg"], result["msg"]
    assert "Traceback" not in result["_stdout"] and "exception" not in result
    assert os.listdir(vm["out"]) == []


def test_ova_export_missing_codec_is_named(tmp_path, vm):
    result = adhoc(tmp_path, "ovatool.vmware.ova_export",
                   {"src": vm["vmx"], "dest": vm["out"] + "/", "codec": "isal"})
    try:
        import isal  # noqa: F401  pylint: disable=unused-import
    except ImportError:
        assert result["_rc"] != 0 and "isal" in result["msg"]
    else:
        assert result["_rc"] == 0 and result["codec"] == "isal"


def test_vmx_info_module(tmp_path, vm):
    os.unlink(os.path.join(vm["folder"], "app.vmdk"))
    result = adhoc(tmp_path, "ovatool.vmware.vmx_info", {"path": vm["vmx"], "allocation": True})
    assert result["_rc"] == 0, result["_stdout"]
    info = result["vm"]
    assert info["name"] == "App Server" and info["cpus"] == 2 and info["memory_mb"] == 1024
    assert info["guest_id"] == "ubuntu64Guest" and info["hardware_version"] == 19
    assert info["disks"][0]["missing"] is True and info["disks"][0]["controller"] == "scsi0"
    second = info["disks"][1]
    assert second["missing"] is False and second.get("create_type") == "twoGbMaxExtentFlat", second
    assert second["capacity_bytes"] == os.path.getsize(vm["raws"][1])
    assert 0 < second["allocated_bytes"] < second["capacity_bytes"] // 2
    assert info["nics"] == [{"index": 0, "type": "vmxnet3", "network": "nat", "connection_type": "nat",
                             "address_type": "generated"}]


def test_async_export_and_ova_export_wait(tmp_path, vm):
    """An export started as an async job, then waited for by ova_export_wait (its action plugin and module)."""
    progress = os.path.join(vm["out"], ".app.progress.json")
    started = adhoc(tmp_path, "ovatool.vmware.ova_export",
                    {"src": vm["vmx"], "dest": vm["out"] + "/", "progress_file": progress}, options=("-B", "600", "-P", "0"))
    assert started["_rc"] == 0 and started["ansible_job_id"], started["_stdout"]
    waited = adhoc(tmp_path, "ovatool.vmware.ova_export_wait",
                   {"jobs": [{"jid": started["ansible_job_id"], "name": vm["vmx"], "progress_file": progress},
                             {"name": "planned elsewhere", "changed": False, "msg": "current"}], "poll": 1})
    assert waited["_rc"] == 0 and waited["changed"] is True and waited["failed_jobs"] == 0, waited["_stdout"]
    job = waited["results"][0]
    assert job["item"] == vm["vmx"] and job["dest"] == os.path.join(vm["out"], "App_Server.ova"), job
    assert waited["results"][1] == {"name": "planned elsewhere", "changed": False, "msg": "current",
                                    "item": "planned elsewhere"}
    assert "exported to" in waited["_stdout"] and not os.path.exists(progress)


def test_export_all_playbook(tmp_path, vm, images):
    """The whole chain on localhost with the vmrun double: plan, power off, export, verify, upload, restore."""
    other = tmp_path / "vms" / "nested" / "db"
    other.mkdir(parents=True)
    vmfactory.convert(images["odd"], str(other / "db.vmdk"), "monolithicFlat")
    db_vmx = vmfactory.write_vmx(str(other / "db.vmx"), "Database", [("sata0:0", "db.vmdk")])
    broken = tmp_path / "vms" / "broken"
    broken.mkdir()
    vmfactory.write_vmx(str(broken / "broken.vmx"), "Broken", [("scsi0:0", "gone.vmdk")])
    tools = tmp_path / "bin"
    tools.mkdir()
    vmrun = str(tools / "vmrun")
    doubles.install(tools, "vmrun")
    state_file = tools / "vmrun-state.json"
    state_file.write_text(json.dumps({"running": [vm["vmx"]]}))
    # the upload folder does not exist yet: the upload creates it (a dest ending in / is a folder)
    extra = {"ovatool_vm_search_paths": [str(tmp_path / "vms")], "ovatool_output_dir": str(tmp_path / "ovas"),
             "ovatool_upload_dest": f"file://{tmp_path}/shelf/", "ovatool_vmrun_path": vmrun,
             # every VM gets the vendor's product section and EULA; the database its own product, merged over it
             "ovatool_appliance": {"product": {"product": "Shop", "vendor": "Example Inc.", "version": "2.0"},
                                   "eula": "Use it well."},
             "ovatool_appliances": {"Database": {"product": {"product": "Shop database", "version": "2.0"}}}}
    argv = [os.path.join(BIN, "ansible-playbook"), "playbooks/export_all.yml", "-i", "localhost,",
            "-c", "local", "-e", f"ansible_python_interpreter={sys.executable}", "-e", json.dumps(extra)]

    def play():
        return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True,
                              env=ansible_env(tmp_path), cwd=ROOT, timeout=600, check=False)

    first = play()
    assert first.returncode != 0, "the broken VM must fail the host, after the others were done"
    assert "1 VM(s) failed" in first.stdout and "broken.vmx" in first.stdout, first.stdout
    assert sorted(n for n in os.listdir(tmp_path / "ovas") if not n.startswith(".")) == [
        "App_Server.ova", "Database.ova"]
    assert sorted(os.listdir(tmp_path / "shelf")) == ["App_Server.ova", "Database.ova"]
    with open(tmp_path / "shelf" / "Database.ova", "rb") as a, open(tmp_path / "ovas" / "Database.ova", "rb") as b:
        assert a.read() == b.read()
    ovacheck.assert_same_disk(vm["raws"][0], ovacheck.extract(str(tmp_path / "shelf" / "App_Server.ova"),
                                                              "App_Server-disk1.vmdk", str(tmp_path)))
    stamped = {name: ovacheck.read_ova(str(tmp_path / "ovas" / f"{name}.ova"))["envelope"]
               for name in ("App_Server", "Database")}
    products = {name: [p.text for p in env.iter(f"{{{ovacheck.OVF_NS}}}Product")] for name, env in stamped.items()}
    assert products == {"App_Server": ["Shop"], "Database": ["Shop database"]}, products
    assert all([e.text for e in env.iter(f"{{{ovacheck.OVF_NS}}}License")] == ["Use it well."]
               for env in stamped.values()), "the common EULA reaches every VM"
    calls = json.loads(state_file.read_text())["calls"]
    assert ["stop", vm["vmx"], "soft"] in calls and ["start", vm["vmx"], "nogui"] in calls
    assert not any(call[0] in ("stop", "start") and call[1] == db_vmx for call in calls), "db was off: untouched"
    assert json.loads(state_file.read_text())["running"] == [vm["vmx"]]
    assert re.search(r"localhost \| .*/app\.vmx: exported to .*/App_Server\.ova in [\d.]+ s", first.stdout)
    assert sorted(os.listdir(tmp_path / "ovas")) == [".App_Server.ova.source", ".Database.ova.source",
                                                     "App_Server.ova", "Database.ova"], "progress files cleaned up"

    os.unlink(broken / "broken.vmx")
    argv[1] = "ovatool.vmware.export_all"  # the same playbook, addressed as installed collections allow
    second = play()
    assert second.returncode == 0, second.stdout
    assert re.search(r"localhost\s*:\s*ok=\d+\s+changed=0\b", second.stdout), second.stdout
    calls_after = json.loads(state_file.read_text())["calls"]
    assert [c for c in calls_after[len(calls):] if c[0] != "list"] == [], "nothing powered off the second time"


def test_async_export_with_progress_file(tmp_path, vm):
    """The module run with async/poll like a role will: the progress file ends finished and ok."""
    progress = tmp_path / "progress.json"
    playbook = tmp_path / "async.yml"
    playbook.write_text(json.dumps([{"hosts": "localhost", "gather_facts": False, "tasks": [
        {"name": "export", "ovatool.vmware.ova_export": {"src": vm["vmx"], "dest": vm["out"] + "/",
                                                         "progress_file": str(progress)},
         "async": 600, "poll": 0, "register": "job"},
        {"name": "wait", "ansible.builtin.async_status": {"jid": "{{ job.ansible_job_id }}"}, "register": "done",
         "until": "done.finished", "retries": 120, "delay": 1},
        {"name": "show", "ansible.builtin.debug": {"msg": "{{ done.dest }} {{ done.size }}"}}]}]))
    done = subprocess.run([os.path.join(BIN, "ansible-playbook"), str(playbook), "-i", "localhost,", "-c", "local",
                           "-e", f"ansible_python_interpreter={sys.executable}"], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, universal_newlines=True, env=ansible_env(tmp_path), cwd=ROOT,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stdout
    record = json.loads(progress.read_text())
    assert record["finished"] is True and record["ok"] is True
    ovacheck.read_ova(os.path.join(vm["out"], "App_Server.ova"))
