# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""export_all.yml over real SSH: two sshd hosts on loopback, each with its own VMs and vmrun double, and one
host that is down. The running VM is stopped softly and restarted, every OVA arrives bit-exact, a broken VM
and the unreachable host are named, and a second run changes nothing."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from support import doubles, ovacheck, servers, vmfactory
from support.ansiblerun import BIN, ROOT, ansible_env

pytestmark = pytest.mark.xdist_group(name="servers")


@pytest.fixture()
def hosts(tmp_path, images):
    if shutil.which("ssh") is None:
        pytest.fail("the ssh client is not installed (openssh-client)", pytrace=False)
    started = []
    layout = {}
    try:
        for name in ("hv1", "hv2"):
            sshd = servers.Sshd(str(tmp_path / f"{name}-sshd"))
            started.append(sshd)
            root = tmp_path / name
            vms = root / "vms"
            (vms / "app").mkdir(parents=True)
            vmfactory.convert(images["odd"], str(vms / "app" / "app.vmdk"), "monolithicSparse")
            app = vmfactory.write_vmx(str(vms / "app" / "app.vmx"), f"{name} app", [("scsi0:0", "app.vmdk")])
            tools = root / "bin"
            tools.mkdir()
            doubles.install(tools, "vmrun")
            running = [app] if name == "hv1" else []
            (tools / "vmrun-state.json").write_text(json.dumps({"running": running}))
            if name == "hv2":
                (vms / "broken").mkdir()
                vmfactory.write_vmx(str(vms / "broken" / "broken.vmx"), "broken", [("scsi0:0", "gone.vmdk")])
            (tmp_path / "shelf" / name).mkdir(parents=True)
            layout[name] = {"sshd": sshd, "root": root, "app": app, "state": tools / "vmrun-state.json",
                            "vmrun": str(tools / "vmrun")}
        yield layout
    finally:
        for sshd in started:
            sshd.close()


def test_export_all_over_ssh(tmp_path, hosts, images):
    inventory = {"all": {"hosts": {}, "vars": {
        "ansible_user": "root", "ansible_python_interpreter": sys.executable,
        "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null",
        "ovatool_upload_dest": f"file://{tmp_path}/shelf/{{{{ inventory_hostname }}}}/"}}}
    for name, host in hosts.items():
        inventory["all"]["hosts"][name] = {
            "ansible_host": "127.0.0.1", "ansible_port": host["sshd"].port,
            "ansible_ssh_private_key_file": host["sshd"].client_key,
            "ovatool_vm_search_paths": [str(host["root"] / "vms")], "ovatool_output_dir": str(host["root"] / "ova"),
            "ovatool_vmrun_path": host["vmrun"]}
    inventory["all"]["hosts"]["down"] = {"ansible_host": "127.0.0.1", "ansible_port": servers.free_port(),
                                         "ovatool_vm_search_paths": ["/nowhere"]}
    path = tmp_path / "inventory.json"
    path.write_text(json.dumps(inventory))
    argv = [os.path.join(BIN, "ansible-playbook"), "-i", str(path), "playbooks/export_all.yml", "-f", "5"]

    def play():
        return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True,
                              env=ansible_env(tmp_path), cwd=ROOT, timeout=900, check=False)

    first = play()
    out = first.stdout
    assert first.returncode != 0
    assert re.search(r"down\s*:\s*ok=\d+\s+changed=0\s+unreachable=1", out), out
    assert re.search(r"hv1\s*:\s*ok=\d+\s+changed=\d+\s+unreachable=0\s+failed=0", out), out
    assert re.search(r"hv2\s*:\s*ok=\d+\s+changed=\d+\s+unreachable=0\s+failed=1", out), out
    assert "1 VM(s) failed" in out and "broken.vmx" in out
    assert re.search(r"hv1 \| .*/app\.vmx: exported to .*/hv1_app\.ova in [\d.]+ s, [\d.]+ MB/s", out), out
    assert re.search(r"hv2 \| .*/broken\.vmx: failed: .*gone\.vmdk", out), out
    for name, host in hosts.items():
        shelf = tmp_path / "shelf" / name
        assert os.listdir(str(shelf)) == [f"{name}_app.ova"], name
        ovacheck.assert_same_disk(images["odd"], ovacheck.extract(str(shelf / f"{name}_app.ova"),
                                                                  f"{name}_app-disk1.vmdk", str(tmp_path)))
        leftovers = [n for n in os.listdir(str(host["root"] / "ova")) if n.endswith(".partial")]
        assert leftovers == [], leftovers
    calls = json.loads(hosts["hv1"]["state"].read_text())["calls"]
    assert ["stop", hosts["hv1"]["app"], "soft"] in calls and ["start", hosts["hv1"]["app"], "nogui"] in calls
    assert json.loads(hosts["hv1"]["state"].read_text())["running"] == [hosts["hv1"]["app"]]
    hv2_calls = json.loads(hosts["hv2"]["state"].read_text()).get("calls", [])
    assert [c for c in hv2_calls if c[0] != "list"] == [], "hv2's VM was off: no power operation"

    os.unlink(hosts["hv2"]["root"] / "vms" / "broken" / "broken.vmx")
    before = len(json.loads(hosts["hv1"]["state"].read_text())["calls"])
    second = play()
    for name in ("hv1", "hv2"):
        assert re.search(rf"{name}\s*:\s*ok=\d+\s+changed=0\s+unreachable=0\s+failed=0", second.stdout), second.stdout
    after = json.loads(hosts["hv1"]["state"].read_text())["calls"][before:]
    assert [c for c in after if c[0] != "list"] == [], "nothing is powered off or on the second time"
