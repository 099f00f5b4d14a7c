# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Hot export from a snapshot, with real data movement: the vmrun and vim-cmd doubles take snapshots the way
VMware does (a qemu-img child per disk, the .vmx pointed at it, the .vmsd told) and remove them by merging the
delta back (qemu-img commit), while a guest stand-in keeps writing into the deltas with qemu-io. The oracle is
qemu-img compare: the OVA's disks against copies taken at the moment of the snapshot, and the VM's disks after
the removal against the deltas as the guest left them."""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest

from support import doubles, ovacheck, servers, vmfactory
from support.ansiblerun import BIN, ROOT, adhoc, ansible_env, export_all
from support.guest import Guest, current_disks
from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.errors import OvatoolError
from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.export.run import ExportOptions, export_vm
from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.formats.vmsd import read_vmsd
from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.host import snapshot
from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.host.power import VimCmd, Vmrun

POWER_CHANGES = {"stop", "suspend", "reset", "pause", "vmsvc/power.off", "vmsvc/power.shutdown",
                 "vmsvc/power.suspend", "vmsvc/power.reset"}


def compare(first: str, second: str, first_format: str = "raw", second_format: str = "vmdk") -> None:
    done = subprocess.run(["qemu-img", "compare", "-f", first_format, "-F", second_format, first, second],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, check=False)
    assert done.returncode == 0, done.stdout


def to_raw(vmdk: str, raw: str) -> str:
    vmfactory.run(["qemu-img", "convert", "-f", "vmdk", "-O", "raw", vmdk, raw])
    return raw


def sha256(path: str) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest() if hasattr(hashlib, "file_digest") else \
            hashlib.sha256(handle.read()).hexdigest()


class Host:
    """One hypervisor: its VM folder, the tool double (vmrun, or vim-cmd with a datastore) and its state."""

    def __init__(self, tmp_path, kind: str) -> None:
        self.kind = kind
        self.tmp = tmp_path
        self.before_merge = tmp_path / "before-merge"
        self.before_merge.mkdir(parents=True)
        if kind == "vim-cmd":
            self.volumes = tmp_path / "vmfs" / "volumes"
            self.root = self.volumes / "datastore1"
        else:
            self.root = tmp_path / "vms"
        self.root.mkdir(parents=True)
        self.tool = doubles.install(tmp_path / "bin", kind, {"running": [], "vms": {},
                                                             "before_merge": str(self.before_merge)})

    def state(self) -> dict:
        with open(self.tool + "-state.json") as handle:
            return json.load(handle)

    def save(self, state: dict) -> None:
        with open(self.tool + "-state.json", "w") as handle:
            json.dump(state, handle)

    def add_vm(self, name: str, disks: list, tools: bool = False) -> str:
        """A running VM ``name`` with disks [(node, file name)] already in its folder; its .vmx."""
        vmx = vmfactory.write_vmx(str(self.root / name / f"{name}.vmx"), f"{name} VM", disks)
        state = self.state()
        state["running"].append(vmx)
        state["vms"][str(len(state["vms"]) + 1)] = {
            "name": name, "file": f"[datastore1] {name}/{name}.vmx", "state": "on", "vmx": vmx, "tools": tools}
        self.save(state)
        return vmx

    def engine(self):
        if self.kind == "vim-cmd":
            return VimCmd(self.tool, volumes=str(self.volumes))
        return Vmrun(self.tool)

    def snapshots(self):
        return snapshot.snapshots_of(self.engine())

    def calls(self) -> list:
        return self.state().get("calls", [])


def make_disks(host: Host, name: str, layout: str, images) -> list:
    folder = host.root / name
    folder.mkdir(parents=True)
    if layout == "flat":
        vmfactory.make_vmfs(images["odd"], str(folder), name)
        return [("scsi0:0", f"{name}.vmdk")]
    if layout == "split":
        vmfactory.convert(images["gappy"], str(folder / f"{name}.vmdk"), "twoGbMaxExtentSparse")
        return [("scsi0:0", f"{name}.vmdk")]
    vmfactory.convert(images["odd"], str(folder / f"{name}.vmdk"), "monolithicSparse")
    if layout == "two-disks":
        vmfactory.convert(images["gappy"], str(folder / f"{name}-data.vmdk"), "twoGbMaxExtentSparse")
        return [("scsi0:0", f"{name}.vmdk"), ("sata0:1", f"{name}-data.vmdk")]
    return [("scsi0:0", f"{name}.vmdk")]


def user_snapshots(host: Host, vmx: str) -> dict:
    """Two snapshots of the user's own, with guest writes before and between them; {file: sha256} they froze."""
    for label in ("before upgrade", "after upgrade"):
        for node, name in current_disks(vmx).items():
            del node
            vmfactory.qemu_io(os.path.join(os.path.dirname(vmx), name), f"write -P 0x5{len(label) % 9} 1M 256k")
        snapshot.take(vmx, label, host.snapshots(), quiesce="false")
    folder = os.path.dirname(vmx)
    return {name: sha256(os.path.join(folder, name)) for snap in read_vmsd(vmx).snapshots for _node, name in snap.disks}


@pytest.mark.parametrize("kind,layout", [("vmrun", "sparse"), ("vmrun", "split"), ("vim-cmd", "flat"),
                                         ("vmrun", "user-snapshots"), ("vim-cmd", "two-disks")])
def test_a_running_vm_exports_as_its_snapshot_froze_it(tmp_path, images, kind, layout):
    host = Host(tmp_path, kind)
    vmx = host.add_vm("app", make_disks(host, "app", layout, images), tools=True)
    frozen_by_user = user_snapshots(host, vmx) if layout == "user-snapshots" else {}
    user_tree = [(s.uid, s.name, s.parent, s.disks) for s in read_vmsd(vmx).snapshots]
    record = str(tmp_path / "state" / ".snapshot-app.json")
    os.makedirs(os.path.dirname(record))
    os.makedirs(tmp_path / "out")

    taken = snapshot.take(vmx, "ovatool-hot", host.snapshots(), record=record)
    assert taken["changed"] and taken["snapshot"]["name"] == "ovatool-hot"
    assert taken["quiesced"] is (kind == "vim-cmd"), "ESXi quiesces when the tools run; vmrun cannot"
    folder = os.path.dirname(vmx)
    at_snapshot = {node: to_raw(os.path.join(folder, name), str(tmp_path / f"then-{node.replace(':', '_')}.raw"))
                   for node, name in current_disks(vmx).items()}  # the disks as the guest saw them then
    assert all(name.endswith("-000001.vmdk") or name.endswith("-000003.vmdk") for name in current_disks(vmx).values())

    guest = Guest(vmx)
    guest.start()
    try:
        result = export_vm(ExportOptions(src=vmx, dest=str(tmp_path / "out") + "/", snapshot="ovatool-hot"))
    finally:
        while guest.writes < 3 and guest.is_alive():
            guest.join(0.1)
    assert result["snapshot"]["name"] == "ovatool-hot" and result["changed"]
    ova = ovacheck.read_ova(result["dest"])
    disk_names = [n for n in ova["names"] if n.endswith(".vmdk")]
    assert len(disk_names) == len(at_snapshot)
    for disk_name, (node, raw) in zip(disk_names, sorted(at_snapshot.items(), key=lambda item: item[0] != "scsi0:0")):
        ovacheck.assert_same_disk(raw, ovacheck.extract(result["dest"], disk_name, str(tmp_path)))

    removed = snapshot.remove_recorded(record, host.snapshots())
    written = guest.stop()
    assert written >= 3 and removed["left"] is False and not os.path.exists(record)
    for node, name in current_disks(vmx).items():
        merged = os.path.join(folder, name)
        left_by_guest = str(host.before_merge / f"{node.replace(':', '_')}.raw")
        compare(left_by_guest, merged)  # every write the guest made is in the VM's disk now
        differs = subprocess.run(["qemu-img", "compare", "-q", "-f", "raw", "-F", "raw", at_snapshot[node],
                                  left_by_guest], check=False)
        assert differs.returncode == 1, "the guest wrote after the snapshot (else this test proves nothing)"
    assert [(s.uid, s.name, s.parent, s.disks) for s in read_vmsd(vmx).snapshots] == user_tree
    assert {name: sha256(os.path.join(folder, name)) for name in frozen_by_user} == frozen_by_user
    assert not [f for f in os.listdir(folder) if f.endswith("-000003.vmdk" if frozen_by_user else "-000001.vmdk")]
    assert not [call for call in host.calls() if call and call[0] in POWER_CHANGES]
    assert host.state()["running"] == [vmx]


def test_the_snapshot_option_reads_only_frozen_files_and_names_the_snapshots(tmp_path, images):
    host = Host(tmp_path, "vmrun")
    vmx = host.add_vm("web", make_disks(host, "web", "sparse", images))
    user_snapshots(host, vmx)
    with pytest.raises(OvatoolError, match=r'no snapshot called "nope" \(its snapshots: "before upgrade", '
                                           r'"after upgrade"\)'):
        export_vm(ExportOptions(src=vmx, dest=str(tmp_path / "out.ova"), snapshot="nope"))
    snapshot.take(vmx, "before upgrade", host.snapshots(), quiesce="false")  # same name again: vmrun allows it
    assert read_vmsd(vmx).names().count("before upgrade") == 1, "take is idempotent by name"
    assert not os.path.exists(tmp_path / "out.ova")
    # the first user snapshot: the disk as it was then (the write before it, not the one between them)
    result = export_vm(ExportOptions(src=vmx, dest=str(tmp_path / "first.ova"), snapshot="before upgrade"))
    frozen = read_vmsd(vmx).find("before upgrade").disks[0][1]
    reference = to_raw(os.path.join(os.path.dirname(vmx), frozen), str(tmp_path / "first.raw"))
    ovacheck.assert_same_disk(reference, ovacheck.extract(result["dest"], "web_VM-disk1.vmdk", str(tmp_path)))


def test_quiescing_auto_true_and_false(tmp_path, images):
    host = Host(tmp_path, "vim-cmd")
    with_tools = host.add_vm("tools", make_disks(host, "tools", "sparse", images), tools=True)
    without = host.add_vm("bare", make_disks(host, "bare", "sparse", images), tools=False)
    record = str(tmp_path / "bare.json")

    auto = snapshot.take(without, "s", host.snapshots(), quiesce="auto")
    assert auto["consistency"] == "crash-consistent" and auto["quiesced"] is False
    assert any("crash-consistent" in w and "VMware Tools" in w for w in auto["warnings"]), auto["warnings"]
    snapshot.remove(without, "s", host.snapshots())
    with pytest.raises(OvatoolError, match="cannot take a quiesced snapshot: VMware Tools are not running"):
        snapshot.take(without, "q", host.snapshots(), quiesce="true", record=record)
    assert read_vmsd(without).snapshots == () and not os.path.exists(record), "nothing is left"
    quiesced = snapshot.take(with_tools, "q", host.snapshots(), quiesce="yes")
    assert quiesced["consistency"] == "quiesced" and quiesced["warnings"] == []
    assert ["vmsvc/snapshot.create", "1", "q", snapshot.DESCRIPTION, "0", "1"] in host.calls()
    plain = snapshot.take(with_tools, "p", host.snapshots(), quiesce=False)
    assert plain["quiesced"] is False and ["vmsvc/snapshot.create", "1", "p", snapshot.DESCRIPTION, "0", "0"] \
        in host.calls()
    with pytest.raises(OvatoolError, match='quiesce must be auto, true or false, not "maybe"'):
        snapshot.quiesce_mode("maybe")

    workstation = Host(tmp_path / "ws", "vmrun")
    vmx = workstation.add_vm("ws", make_disks(workstation, "ws", "sparse", images))
    with pytest.raises(OvatoolError, match="vmrun cannot quiesce"):
        snapshot.take(vmx, "q", workstation.snapshots(), quiesce="true", record=record)
    assert read_vmsd(vmx).snapshots == () and not os.path.exists(record)
    assert not [c for c in workstation.calls() if c[0] == "snapshot"]


@pytest.mark.parametrize("mode", ["independent-persistent", "independent-nonpersistent"])
def test_an_independent_disk_is_refused_before_any_snapshot(tmp_path, images, mode):
    host = Host(tmp_path, "vmrun")
    disks = make_disks(host, "db", "two-disks", images)
    vmx = host.add_vm("db", disks)
    with open(vmx, "a", encoding="utf-8") as handle:
        handle.write(f'sata0:1.mode = "{mode}"\n')
    record = str(tmp_path / "db.json")
    refused = rf'disk sata0:1 "db-data\.vmdk" is {mode}: snapshots do not capture it.*export it powered off'
    with pytest.raises(OvatoolError, match=refused):
        snapshot.take(vmx, "hot", host.snapshots(), record=record)
    assert not [c for c in host.calls() if c[0] == "snapshot"] and not os.path.exists(record)
    assert not os.path.exists(os.path.splitext(vmx)[0] + ".vmsd")


def test_a_snapshot_being_read_is_not_removed_until_the_export_is_done(tmp_path, images):
    host = Host(tmp_path, "vmrun")
    vmx = host.add_vm("app", make_disks(host, "app", "sparse", images))
    snapshot.take(vmx, "hot", host.snapshots())
    with snapshot.SnapshotLock(vmx, "hot"):  # what an export holds while it reads
        with pytest.raises(OvatoolError, match="an export is still reading from it"):
            snapshot.remove(vmx, "hot", host.snapshots(), wait=0.5)
    assert read_vmsd(vmx).names() == ["hot"]
    assert snapshot.remove(vmx, "hot", host.snapshots(), wait=0.5)["changed"]
    assert read_vmsd(vmx).names() == [] and current_disks(vmx) == {"scsi0:0": "app.vmdk"}


def test_a_recorded_snapshot_that_cannot_be_removed_stays_for_the_next_run(tmp_path, images):
    host = Host(tmp_path, "vmrun")
    vmx = host.add_vm("app", make_disks(host, "app", "sparse", images))
    record = str(tmp_path / "app.json")
    snapshot.take(vmx, "hot", host.snapshots(), record=record)
    state = host.state()
    state["fail_delete"] = [vmx]
    host.save(state)
    stuck = snapshot.remove_recorded(record, host.snapshots())
    assert stuck["left"] is True and os.path.exists(record)
    assert "still there" in stuck["warnings"][0] and "locked" in stuck["warnings"][0]
    state = host.state()
    state["fail_delete"] = []
    host.save(state)
    done = snapshot.remove_recorded(record, host.snapshots())
    assert done["left"] is False and done["changed"] and not os.path.exists(record)
    assert read_vmsd(vmx).names() == []
    again = snapshot.remove_recorded(record, host.snapshots())
    assert again["changed"] is False and again["vmx"] is None


def summary_of(stdout: str) -> dict:
    """The Summary task's msg, from the default callback's JSON."""
    start = stdout.index("TASK [Summary]")
    text = stdout[stdout.index('"msg": {', start) + len('"msg": '):]
    return json.JSONDecoder().raw_decode(text)[0]


def test_export_all_in_snapshot_mode_keeps_the_vms_running(tmp_path, images):
    """The playbook with ovatool_running_vms: snapshot - a running VM (the guest writing all along), a powered-off
    one, one with an independent disk; then a run cut short before its snapshot was removed, and a snapshot that
    cannot be removed."""
    host = Host(tmp_path, "vmrun")
    web = host.add_vm("web", make_disks(host, "web", "sparse", images))
    db = host.add_vm("db", make_disks(host, "db", "two-disks", images))
    with open(db, "a", encoding="utf-8") as handle:
        handle.write('sata0:1.mode = "independent-persistent"\n')
    off = host.add_vm("off", make_disks(host, "off", "split", images))
    state = host.state()
    state["running"].remove(off)
    host.save(state)
    user_snapshots(host, web)
    frozen_by_user = {snap.name: snap.disks for snap in read_vmsd(web).snapshots}
    out = tmp_path / "ova"
    extra = {"ovatool_vm_search_paths": [str(host.root)], "ovatool_output_dir": str(out),
             "ovatool_vmrun_path": host.tool, "ovatool_running_vms": "snapshot", "ovatool_accelerator": False,
             "ovatool_progress_seconds": 0, "ovatool_poll_seconds": 1}
    # nothing writes web's disks until the play's snapshot (the guest stand-in waits for it): this is them then
    then = to_raw(str(host.root / "web" / "web-000002.vmdk"), str(tmp_path / "web-then.raw"))
    before = len(host.calls())
    guest = Guest(web, wait_for_snapshot=True)
    guest.start()
    done = export_all(tmp_path, sys.executable, extra)
    written = guest.stop()
    assert done.returncode != 0, done.stdout  # db is refused
    summary = summary_of(done.stdout)
    assert summary["state_taken"] == {web: "snapshot (crash-consistent)", off: "shutdown"}, summary
    assert len(summary["failed"]) == 1 and summary["failed"][0].startswith(f"{db}: ") \
        and "independent-persistent" in summary["failed"][0], summary["failed"]
    assert summary["snapshots_left"] == [], done.stdout
    assert "crash-consistent, not quiesced: vmrun cannot quiesce" in done.stdout
    assert written >= 1, "the guest wrote while the play ran"
    calls = host.calls()[before:]
    taken = [c for c in calls if c[0] == "snapshot"]
    assert [c[1] for c in taken] == [web], "one snapshot, of the running VM only (db refused, off exported cold)"
    assert not [c for c in calls if c[0] in POWER_CHANGES]
    assert [c for c in calls if c[0] == "deleteSnapshot"] == [["deleteSnapshot", web, taken[0][2]]]
    assert {snap.name: snap.disks for snap in read_vmsd(web).snapshots} == frozen_by_user
    assert current_disks(web) == {"scsi0:0": "web-000002.vmdk"}
    compare(str(host.before_merge / "scsi0_0.raw"), str(host.root / "web" / "web-000002.vmdk"))
    assert sorted(n for n in os.listdir(out) if not n.startswith(".")) == ["off_VM.ova", "web_VM.ova"]
    ovacheck.assert_same_disk(then, ovacheck.extract(str(out / "web_VM.ova"), "web_VM-disk1.vmdk", str(tmp_path)))
    assert not [n for n in os.listdir(out) if n.startswith(".snapshot-")], "no record left"
    assert host.state()["running"] == [web, db]

    # a snapshot that cannot be removed: the export stands, the warning says so, the next run removes it
    record = str(out / f".snapshot-{hashlib.sha1(web.encode()).hexdigest()}.json")
    state = host.state()
    state["fail_delete"] = [web]
    host.save(state)
    os.unlink(db)
    stuck = export_all(tmp_path, sys.executable, dict(extra, ovatool_force=True))
    assert stuck.returncode == 0, stuck.stdout
    summary = summary_of(stuck.stdout)
    assert summary["snapshots_left"] == [web], summary
    assert summary["exported"] == [str(out / "off_VM.ova"), str(out / "web_VM.ova")], summary
    assert summary["state_taken"][web] == "snapshot (crash-consistent)"
    assert re.search(r'\[WARNING\]: the temporary snapshot "ovatool-export-[^"]+" of \S+/web\.vmx is still there: '
                     r".*locked; the next run removes it", stuck.stdout), stuck.stdout
    assert os.path.exists(record) and len(read_vmsd(web).names()) == 3
    state = host.state()
    state["fail_delete"] = []
    host.save(state)
    again = export_all(tmp_path, sys.executable, dict(extra, ovatool_force=True))
    assert again.returncode == 0, again.stdout
    assert summary_of(again.stdout)["snapshots_left"] == []
    assert read_vmsd(web).names() == ["before upgrade", "after upgrade"] and not os.path.exists(record)
    assert current_disks(web) == {"scsi0:0": "web-000002.vmdk"}
    assert not [c for c in host.calls() if c[0] in POWER_CHANGES]


def test_a_controller_killed_mid_export_leaves_a_snapshot_the_next_run_removes(tmp_path):
    host = Host(tmp_path, "vmrun")
    folder = host.root / "slow"
    vmx = vmfactory.noise_vm(str(folder), "Slow", mib=40)
    state = host.state()
    state["running"].append(vmx)
    host.save(state)
    out = tmp_path / "ova"
    extra = {"ovatool_vms": [vmx], "ovatool_output_dir": str(out), "ovatool_vmrun_path": host.tool,
             "ovatool_running_vms": "snapshot", "ovatool_accelerator": False, "ovatool_compression": "max",
             "ovatool_threads": 1, "ovatool_progress_seconds": 0, "ovatool_poll_seconds": 1}
    env = ansible_env(tmp_path)
    play = subprocess.Popen([os.path.join(BIN, "ansible-playbook"), "playbooks/export_all.yml", "-i", "localhost,",
                             "-c", "local", "-e", f"ansible_python_interpreter={sys.executable}",
                             "-e", json.dumps(extra)], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    progress = out / ".slow.vmx.progress.json"
    try:
        deadline = time.monotonic() + 120
        while not progress.exists() and play.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert progress.exists(), "the export did not start"
    finally:
        os.killpg(play.pid, signal.SIGKILL)  # the controller goes away; the export goes on, on the host
        play.wait(30)
    records = [n for n in os.listdir(out) if n.startswith(".snapshot-")]
    assert len(records) == 1 and len(read_vmsd(vmx).names()) == 1, "the snapshot and its note are left"
    taken = read_vmsd(vmx).names()[0]

    done = export_all(tmp_path, sys.executable, extra)
    assert done.returncode == 0, done.stdout
    assert re.search(r"TASK \[ovatool\.vmware\.export : Remove the temporary snapshots\][^\n]*\n"
                     r"changed: \[localhost\] => \(item=\.snapshot-", done.stdout), done.stdout
    assert ["deleteSnapshot", vmx, taken] in host.calls()
    assert read_vmsd(vmx).names() == [] and current_disks(vmx) == {"scsi0:0": "slow.vmdk"}
    assert not [n for n in os.listdir(out) if n.startswith(".snapshot-")]
    assert summary_of(done.stdout)["state_taken"].get(vmx, "").startswith("snapshot"), done.stdout
    assert not [c for c in host.calls() if c[0] in POWER_CHANGES]


@pytest.fixture()
def datastore(tmp_path):
    """A datastore at /vmfs/volumes/<unique name> (a link to a folder of the test), as ESXi paths VMs."""
    if os.geteuid() != 0:
        pytest.skip("an ESXi-style datastore path (/vmfs/volumes/...) needs root, as CI runs the tests")
    made = [path for path in ("/vmfs", "/vmfs/volumes") if not os.path.isdir(path)]
    os.makedirs("/vmfs/volumes", exist_ok=True)
    target = tmp_path / "datastore"
    target.mkdir()
    link = f"/vmfs/volumes/ovatool-test-{os.urandom(4).hex()}"
    os.symlink(str(target), link)
    try:
        yield link
    finally:
        os.unlink(link)
        for path in reversed(made):
            try:
                os.rmdir(path)
            except OSError:  # another test's datastore is still there
                pass


@pytest.mark.xdist_group(name="servers")
def test_export_all_over_ssh_on_a_workstation_and_an_esxi_host(tmp_path, images, datastore, bare_python):
    """Two sshd hosts in snapshot mode: a Workstation-style one (vmrun) and an ESXi-style one (vim-cmd, VMs under
    /vmfs/volumes, a Python with the standard library only); with ansible-playbook, then as AWX runs it."""
    if shutil.which("ssh") is None or shutil.which("ansible-runner", path=BIN) is None:
        pytest.fail("ssh (openssh-client) and ansible-runner are needed", pytrace=False)
    workstation = Host(tmp_path / "ws", "vmrun")
    ws_vm = workstation.add_vm("app", make_disks(workstation, "app", "sparse", images))
    esxi = Host(tmp_path / "esx", "vim-cmd")
    esxi.root = type(esxi.root)(datastore)
    esx_vm = esxi.add_vm("db", make_disks(esxi, "db", "flat", images), tools=True)
    assert esx_vm.startswith("/vmfs/volumes/")
    state = esxi.state()
    state["vms"]["1"]["file"] = f"[{os.path.basename(datastore)}] db/db.vmx"
    esxi.save(state)
    then = {"ws": to_raw(str(workstation.root / "app" / "app.vmdk"), str(tmp_path / "ws-then.raw")),
            "esx": images["odd"]}
    servers_up = []
    try:
        inventory = {"all": {"hosts": {}, "vars": {
            "ansible_user": "root", "ovatool_running_vms": "snapshot", "ovatool_accelerator": False,
            "ovatool_progress_seconds": 0, "ovatool_poll_seconds": 1,
            "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null"}}}
        for name, host, vmx, python in (("ws", workstation, ws_vm, sys.executable),
                                        ("esx", esxi, esx_vm, bare_python)):
            sshd = servers.Sshd(str(tmp_path / f"{name}-sshd"))
            servers_up.append(sshd)
            tool = {"ovatool_vim_cmd_path": host.tool} if host.kind == "vim-cmd" else {"ovatool_vmrun_path": host.tool}
            inventory["all"]["hosts"][name] = dict(
                tool, ansible_host="127.0.0.1", ansible_port=sshd.port, ansible_ssh_private_key_file=sshd.client_key,
                ansible_python_interpreter=python, ovatool_vms=[vmx], ovatool_output_dir=str(tmp_path / name / "ova"))
        inventory_path = tmp_path / "inventory.json"
        inventory_path.write_text(json.dumps(inventory))
        guests = [Guest(ws_vm, wait_for_snapshot=True), Guest(esx_vm, wait_for_snapshot=True)]
        for guest in guests:
            guest.start()
        done = subprocess.run([os.path.join(BIN, "ansible-playbook"), "-i", str(inventory_path),
                               "playbooks/export_all.yml"], cwd=ROOT, env=ansible_env(tmp_path),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True,
                              timeout=900, check=False)
        writes = [guest.stop() for guest in guests]
        assert done.returncode == 0, done.stdout
        assert min(writes) >= 1, writes
        assert re.search(r"ok: \[ws\] => \{\s+\"msg\": \{.*?\"state_taken\": \{\s+\"[^\"]+/app\.vmx\": "
                         r"\"snapshot \(crash-consistent\)\"", done.stdout, re.S), done.stdout
        assert re.search(r"ok: \[esx\] => \{\s+\"msg\": \{.*?\"state_taken\": \{\s+\"/vmfs/volumes/[^\"]+/db\.vmx\": "
                         r"\"snapshot \(quiesced\)\"", done.stdout, re.S), done.stdout
        for name, host, vmx, ova in (("ws", workstation, ws_vm, "app_VM.ova"), ("esx", esxi, esx_vm, "db_VM.ova")):
            path = str(tmp_path / name / "ova" / ova)
            ovacheck.assert_same_disk(then[name], ovacheck.extract(path, ova[:-4] + "-disk1.vmdk", str(tmp_path)))
            assert read_vmsd(vmx).names() == [] and current_disks(vmx) == {"scsi0:0": os.path.basename(
                vmx)[:-4] + ".vmdk"}
            compare(str(host.before_merge / "scsi0_0.raw"), os.path.join(os.path.dirname(vmx),
                                                                         current_disks(vmx)["scsi0:0"]))
            assert not [c for c in host.calls() if c and c[0] in POWER_CHANGES], name
        assert ["vmsvc/get.guest", "1"] in esxi.calls()
        assert any(c[:2] == ["vmsvc/snapshot.create", "1"] and c[4:] == ["0", "1"] for c in esxi.calls())

        # the same fleet as an AWX job template runs it: ansible-runner, the project and inventory in its folder
        private = tmp_path / "job"
        (private / "project").mkdir(parents=True)
        (private / "inventory").mkdir()
        (private / "env").mkdir()
        shutil.copy(os.path.join(ROOT, "playbooks", "export_all.yml"), str(private / "project" / "export_all.yml"))
        shutil.copy(str(inventory_path), str(private / "inventory" / "hosts.json"))
        (private / "env" / "extravars").write_text(json.dumps({"ovatool_force": True}))
        (private / "env" / "envvars").write_text(json.dumps({
            "ANSIBLE_COLLECTIONS_PATH": os.environ.get("ANSIBLE_COLLECTIONS_PATH",
                                                       os.path.join(ROOT, ".build", "collections")),
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-tmp")}))
        before = {name: len(host.calls()) for name, host in (("ws", workstation), ("esx", esxi))}
        job = subprocess.run([shutil.which("ansible-runner", path=BIN), "run", str(private), "-p", "export_all.yml",
                              "--ident", "hot"], env=dict(os.environ, PATH=BIN + os.pathsep + os.environ["PATH"]),
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, timeout=900,
                             check=False)
        assert job.returncode == 0, job.stdout[-4000:]
        events = []
        for path in sorted((private / "artifacts" / "hot" / "job_events").glob("*.json"),
                           key=lambda p: int(p.name.split("-", 1)[0])):
            events.append(json.loads(path.read_text()))
        summaries = {e["event_data"]["host"]: e["event_data"]["res"]["msg"] for e in events
                     if e["event"] == "runner_on_ok" and e["event_data"].get("task") == "Summary"}
        assert summaries["ws"]["state_taken"] == {ws_vm: "snapshot (crash-consistent)"}, summaries
        assert summaries["esx"]["state_taken"] == {esx_vm: "snapshot (quiesced)"}, summaries
        assert summaries["ws"]["snapshots_left"] == [] == summaries["esx"]["snapshots_left"]
        for name, host, vmx in (("ws", workstation, ws_vm), ("esx", esxi, esx_vm)):
            new = host.calls()[before[name]:]
            assert any("snapshot" in c[0].lower() for c in new) and read_vmsd(vmx).names() == [], name
            assert not [c for c in new if c and c[0] in POWER_CHANGES], name
    finally:
        for sshd in servers_up:
            sshd.close()


def test_vm_snapshot_module(tmp_path, images):
    """The module through Ansible: check mode, idempotence, the snapshots and the files they froze, refusals."""
    host = Host(tmp_path, "vmrun")
    vmx = host.add_vm("app", make_disks(host, "app", "sparse", images))
    args = {"vmx": vmx, "name": "hot", "vmrun_path": host.tool, "record": str(tmp_path / "app.json")}
    would = adhoc(tmp_path, "ovatool.vmware.vm_snapshot", dict(args, state="present"), check=True)
    assert would["changed"] is True and would["snapshots"] == [] and would["consistency"] == "crash-consistent"
    assert read_vmsd(vmx).snapshots == () and not os.path.exists(args["record"])
    taken = adhoc(tmp_path, "ovatool.vmware.vm_snapshot", dict(args, state="present"))
    assert taken["changed"] is True and taken["recorded"] is True, taken["_stdout"]
    assert taken["snapshot"]["disks"] == {"scsi0:0": str(host.root / "app" / "app.vmdk")}
    assert "crash-consistent, not quiesced" in taken["_stdout"]
    again = adhoc(tmp_path, "ovatool.vmware.vm_snapshot", dict(args, state="present"))
    assert again["changed"] is False and again["recorded"] is True and again["quiesced"] is False
    listed = adhoc(tmp_path, "ovatool.vmware.vm_snapshot", {"vmx": vmx, "vmrun_path": host.tool})
    assert [s["name"] for s in listed["snapshots"]] == ["hot"] and listed["changed"] is False
    strict = adhoc(tmp_path, "ovatool.vmware.vm_snapshot", dict(args, name="strict", state="present", quiesce=True,
                                                                record=str(tmp_path / "strict.json")))
    assert strict["_rc"] != 0 and "vmrun cannot quiesce" in strict["msg"] and "Traceback" not in strict["_stdout"]
    exported = adhoc(tmp_path, "ovatool.vmware.ova_export",
                     {"src": vmx, "dest": str(tmp_path / "app.ova"), "snapshot": "hot"})
    assert exported["_rc"] == 0 and exported["snapshot"]["name"] == "hot", exported["_stdout"]
    removal = {"record": args["record"], "state": "absent", "vmrun_path": host.tool}
    gone = adhoc(tmp_path, "ovatool.vmware.vm_snapshot", removal, check=True)
    assert gone["changed"] is True and read_vmsd(vmx).names() == ["hot"] and os.path.exists(args["record"])
    gone = adhoc(tmp_path, "ovatool.vmware.vm_snapshot", removal)
    assert gone["changed"] is True and gone["left"] is False and read_vmsd(vmx).names() == []
    assert not os.path.exists(args["record"]) and current_disks(vmx) == {"scsi0:0": "app.vmdk"}
    absent = adhoc(tmp_path, "ovatool.vmware.vm_snapshot", dict(args, state="absent"))
    assert absent["changed"] is False
    unknown = adhoc(tmp_path, "ovatool.vmware.ova_export",
                    {"src": vmx, "dest": str(tmp_path / "x.ova"), "snapshot": "hot"})
    assert unknown["_rc"] != 0 and 'no snapshot called "hot" (its snapshots: none)' in unknown["msg"]
    assert not os.path.exists(tmp_path / "x.ova")


def test_the_command_exports_a_snapshot(tmp_path, images):
    ovatool = shutil.which("ovatool", path=os.path.dirname(sys.executable))
    if ovatool is None:
        pytest.fail("the ovatool command is not installed (scripts/test.sh runs pip install .)", pytrace=False)
    host = Host(tmp_path, "vmrun")
    vmx = host.add_vm("app", make_disks(host, "app", "sparse", images))
    snapshot.take(vmx, "frozen", host.snapshots())
    vmfactory.qemu_io(str(host.root / "app" / "app-000001.vmdk"), "write -P 0x77 0 1M")  # after the snapshot
    done = subprocess.run([ovatool, "export", vmx, "-o", str(tmp_path / "app.ova"), "--snapshot", "frozen"],
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    ovacheck.assert_same_disk(images["odd"], ovacheck.extract(str(tmp_path / "app.ova"), "app_VM-disk1.vmdk",
                                                              str(tmp_path)))
    wrong = subprocess.run([ovatool, "export", vmx, "-o", str(tmp_path / "no.ova"), "--snapshot", "thawed"],
                           capture_output=True, text=True, timeout=300, check=False)
    assert wrong.returncode != 0 and 'no snapshot called "thawed" (its snapshots: "frozen")' in wrong.stderr
    assert "Traceback" not in wrong.stderr and not os.path.exists(tmp_path / "no.ova")
