# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The snapshot dictionary (.vmsd), the disks a snapshot froze, and vim-cmd's snapshot tree."""
from __future__ import annotations

import pytest

from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.errors import SnapshotError
from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.formats.vmsd import (
    independent_disks, read_vmsd, snapshot_disks)
from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.formats.vmx import load_vm
from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.host.snapshot import (
    parse_snapshot_get, quiesce_mode)

# as Workstation 17 writes it: two snapshots, the second taken on the first, one disk each
VMSD = """.encoding = "UTF-8"
snapshot.lastUID = "2"
snapshot.current = "2"
snapshot0.uid = "1"
snapshot0.filename = "web-Snapshot1.vmsn"
snapshot0.displayName = "before upgrade"
snapshot0.description = "kernel 5.15|0Awith notes"
snapshot0.createTimeHigh = "400926"
snapshot0.createTimeLow = "-1352459939"
snapshot0.numDisks = "2"
snapshot0.disk0.fileName = "web.vmdk"
snapshot0.disk0.node = "scsi0:0"
snapshot0.disk1.fileName = "/vmfs/volumes/ds2/web/data.vmdk"
snapshot0.disk1.node = "SATA0:1"
snapshot1.uid = "2"
snapshot1.filename = "web-Snapshot2.vmsn"
snapshot1.parent = "1"
snapshot1.displayName = "after upgrade"
snapshot1.type = "1"
snapshot1.numDisks = "2"
snapshot1.disk0.fileName = "web-000001.vmdk"
snapshot1.disk0.node = "scsi0:0"
snapshot1.disk1.fileName = "data-000001.vmdk"
snapshot1.disk1.node = "sata0:1"
snapshot.numSnapshots = "2"
"""

VMX = """.encoding = "UTF-8"
displayName = "web"
scsi0.present = "TRUE"
scsi0:0.present = "TRUE"
scsi0:0.fileName = "web-000002.vmdk"
sata0.present = "TRUE"
sata0:1.present = "TRUE"
sata0:1.fileName = "data-000002.vmdk"
"""

# vim-cmd vmsvc/snapshot.get on ESXi 7/8: children indented by "--", VMware's own "Desciption" spelling
SNAPSHOT_GET = """Get Snapshot:
|-ROOT
--Snapshot Name        : before upgrade
--Snapshot Id        : 1
--Snapshot Desciption  : kernel 5.15
--Snapshot Created On  : 12/1/2026 9:12:41
--Snapshot State       : powered off
--|-CHILD
----Snapshot Name        : after upgrade
----Snapshot Id        : 2
----Snapshot Desciption  :
----Snapshot Created On  : 12/2/2026 10:00:00
----Snapshot State       : powered on
----|-CHILD
------Snapshot Name        : ovatool-export-20261207T101500Z-4242
------Snapshot Id        : 5
------Snapshot Desciption  : Snapshot Name: not this one
------Snapshot Created On  : 12/7/2026 10:15:00
------Snapshot State       : powered on
"""


@pytest.fixture()
def vm(tmp_path):
    (tmp_path / "web.vmx").write_text(VMX)
    (tmp_path / "web.vmsd").write_text(VMSD)
    return str(tmp_path / "web.vmx")


def test_the_tree_and_the_files_each_snapshot_froze(vm, tmp_path):
    tree = read_vmsd(vm)
    assert tree.current == "2" and tree.names() == ["before upgrade", "after upgrade"]
    first, second = tree.snapshots
    assert (first.uid, first.parent, first.description) == ("1", None, "kernel 5.15\nwith notes")
    assert second.parent == "1" and second.disks == (("scsi0:0", "web-000001.vmdk"), ("sata0:1", "data-000001.vmdk"))
    assert first.as_dict(str(tmp_path))["disks"] == {"scsi0:0": str(tmp_path / "web.vmdk"),
                                                     "sata0:1": "/vmfs/volumes/ds2/web/data.vmdk"}


def test_snapshot_disks_points_each_disk_at_its_frozen_file(vm, tmp_path):
    snap, refs = snapshot_disks(load_vm(vm), "before upgrade")
    assert snap.uid == "1"
    assert [(r.address, r.file_name, r.path) for r in refs] == [
        ("scsi0:0", "web.vmdk", str(tmp_path / "web.vmdk")),
        ("sata0:1", "/vmfs/volumes/ds2/web/data.vmdk", "/vmfs/volumes/ds2/web/data.vmdk")]


def test_unknown_ambiguous_and_missing(vm, tmp_path):
    with pytest.raises(SnapshotError, match=r'no snapshot called "nope" \(its snapshots: "before upgrade", '
                                            r'"after upgrade"\)'):
        snapshot_disks(load_vm(vm), "nope")
    (tmp_path / "web.vmsd").write_text(VMSD.replace("after upgrade", "before upgrade"))
    with pytest.raises(SnapshotError, match='2 snapshots called "before upgrade"'):
        snapshot_disks(load_vm(vm), "before upgrade")
    (tmp_path / "web.vmsd").write_text(VMSD)
    (tmp_path / "web.vmx").write_text(VMX + 'nvme0.present = "TRUE"\nnvme0:0.present = "TRUE"\n'
                                            'nvme0:0.fileName = "new.vmdk"\n')
    with pytest.raises(SnapshotError, match=r'disk nvme0:0 is not in snapshot "after upgrade" \(added after it was '
                                            r"taken\?\)"):
        snapshot_disks(load_vm(vm), "after upgrade")
    (tmp_path / "web.vmsd").unlink()
    assert read_vmsd(vm).snapshots == () and read_vmsd(vm).current is None
    (tmp_path / "web.vmsd").write_text('snapshot0.displayName = "x"\n')
    with pytest.raises(SnapshotError, match="snapshot0 has no uid"):
        read_vmsd(vm)


@pytest.mark.parametrize("mode", ["independent-persistent", "independent-nonpersistent"])
def test_independent_disks_are_named(vm, tmp_path, mode):
    (tmp_path / "web.vmx").write_text(VMX + f'sata0:1.mode = "{mode}"\nscsi0:0.mode = "persistent"\n')
    loaded = load_vm(vm)
    assert independent_disks(loaded) == [f'disk sata0:1 "data-000002.vmdk" is {mode}: snapshots do not capture it']
    with pytest.raises(SnapshotError, match=mode):
        snapshot_disks(loaded, "after upgrade")


def test_vim_cmd_snapshot_tree():
    assert parse_snapshot_get(SNAPSHOT_GET) == [("before upgrade", "1", 1), ("after upgrade", "2", 2),
                                                ("ovatool-export-20261207T101500Z-4242", "5", 3)]
    assert parse_snapshot_get("Get Snapshot:\n") == []


@pytest.mark.parametrize("value,mode", [("auto", "auto"), (True, "true"), ("yes", "true"), ("False", "false"),
                                        (False, "false"), ("off", "false"), ("1", "true")])
def test_quiesce_takes_strings_and_booleans(value, mode):
    assert quiesce_mode(value) == mode
